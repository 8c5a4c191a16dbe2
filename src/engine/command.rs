//! [`Command`]: what a front end (or the control socket) can ask of the running engine, and
//! [`ReloadReport`], what a reload did. Its own module so the control socket and the handle
//! both sit above it.

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

/// What a front end can ask of the engine.
#[derive(Debug)]
pub enum Command {
    /// Re-read the configuration file now (it is also polled every second); the report of
    /// what the running server did goes to the sender, when there is one.
    Reload(Option<oneshot::Sender<ReloadReport>>),
}

/// What happened to the configuration file at a reload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReloadOutcome {
    /// A changed configuration was applied.
    Applied,
    /// The file says what is already in force.
    Unchanged,
    /// The file does not load or validate; the configuration in force stays.
    Rejected(String),
}

/// What one reload did to one listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ListenerChange {
    /// A new listener is accepting connections.
    Started {
        /// `incoming SMTP`, `POP3`, ...
        name: String,
        /// The bound address.
        addr: String,
    },
    /// A listener is no longer wanted and was closed.
    Stopped {
        /// Its name.
        name: String,
        /// The address it had.
        addr: String,
    },
    /// A listener moved to another port or address.
    Moved {
        /// Its name.
        name: String,
        /// The address it had.
        from: String,
        /// The address it has now.
        to: String,
    },
    /// A listener could not be opened where the configuration asks.
    Failed {
        /// Its name.
        name: String,
        /// What it tried to bind (`ip:port` as configured).
        addr: String,
        /// Why.
        error: String,
        /// The address the listener it was to replace still listens on.
        kept: Option<String>,
    },
}

impl std::fmt::Display for ListenerChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenerChange::Started { name, addr } => write!(f, "{name} started on {addr}"),
            ListenerChange::Stopped { name, addr } => write!(f, "{name} on {addr} stopped"),
            ListenerChange::Moved { name, from, to } => {
                write!(f, "{name} moved from {from} to {to}")
            }
            ListenerChange::Failed {
                name,
                addr,
                error,
                kept,
            } => {
                write!(f, "{name} {addr}: {error}")?;
                match kept {
                    Some(old) => write!(f, " — the old listener on {old} keeps listening"),
                    None => write!(f, " — it is not listening"),
                }
            }
        }
    }
}

/// What the running server did with a reload: whether the file was applied, which settings
/// changed (dotted keys, or whole sections when many changed; never values), and what
/// happened to the listeners.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadReport {
    /// Applied, unchanged or rejected.
    pub outcome: ReloadOutcome,
    /// The settings that changed.
    pub changed: Vec<String>,
    /// Listeners started, stopped, moved, or that failed to open.
    pub listeners: Vec<ListenerChange>,
}

impl ReloadReport {
    /// Whether a listener failed to open.
    pub fn has_failure(&self) -> bool {
        matches!(self.outcome, ReloadOutcome::Rejected(_))
            || self
                .listeners
                .iter()
                .any(|l| matches!(l, ListenerChange::Failed { .. }))
    }

    /// The report in sentences, one per line: what changed, then each listener.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![match &self.outcome {
            ReloadOutcome::Applied if self.changed.is_empty() => {
                "The running server applied the configuration.".to_string()
            }
            ReloadOutcome::Applied => format!(
                "The running server applied the change ({}).",
                self.changed.join(", ")
            ),
            ReloadOutcome::Unchanged => {
                "The running server already had this configuration.".to_string()
            }
            ReloadOutcome::Rejected(e) => {
                format!("The running server kept its configuration: {e}")
            }
        }];
        out.extend(
            self.listeners
                .iter()
                .map(|l| format!("{}.", capitalise(&l.to_string()))),
        );
        out
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
