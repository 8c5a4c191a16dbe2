//! Typed engine events: what the log panes show and the log files keep.
//!
//! Every part of the engine reports through one [`EventBus`]. An event goes to a bounded
//! in-memory ring (what a newly opened pane shows), to live subscribers (broadcast), to the daily
//! log file writer, and to `tracing`. The bus also holds an optional "wake" callback the GUI
//! hands in, so the engine can ask for a repaint without knowing what a window is.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tokio::sync::{broadcast, mpsc};

/// Which log view an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// SMTP sessions on our listeners.
    SmtpIn,
    /// Outbound delivery.
    SmtpOut,
    /// Authentication, refusals, limits.
    Security,
    /// Start, stop, listeners, configuration.
    System,
}

/// Severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Protocol detail (commands and replies).
    Debug,
    /// Normal operation.
    Info,
    /// Something refused or degraded.
    Warn,
    /// Something broken.
    Error,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// The engine started with this configuration file and data directory.
    Started {
        /// Configuration file.
        config: String,
        /// Data directory.
        data_dir: String,
    },
    /// Graceful shutdown began.
    Stopping,
    /// A listener is accepting connections.
    ListenerUp {
        /// incoming, outgoing, incoming+outgoing, implicit-tls.
        name: String,
        /// Bound address.
        addr: SocketAddr,
    },
    /// A listener was closed (configuration change or shutdown).
    ListenerDown {
        /// Listener name.
        name: String,
        /// Address it had.
        addr: SocketAddr,
    },
    /// A listener could not be opened.
    ListenerFailed {
        /// Listener name.
        name: String,
        /// What it tried to bind.
        addr: String,
        /// Why it failed, with a hint.
        error: String,
    },
    /// A changed configuration file was applied.
    ConfigReloaded,
    /// A changed configuration file was not applied.
    ConfigRejected {
        /// The loader's error (file, line, field).
        error: String,
    },
    /// A client connected.
    SessionOpened {
        /// Listener name.
        listener: String,
        /// Client address.
        peer: SocketAddr,
    },
    /// The session ended.
    SessionClosed {
        /// Why, e.g. "QUIT", "timeout", "client closed".
        reason: String,
    },
    /// A connection was refused before a session started.
    ConnectionRefused {
        /// Client address.
        peer: SocketAddr,
        /// Why.
        reason: String,
    },
    /// A command line from the client (AUTH data is never shown).
    Command {
        /// The line without CRLF.
        line: String,
    },
    /// Our reply.
    Reply {
        /// The reply text, possibly multi-line joined with " / ".
        text: String,
    },
    /// TLS is up on this session.
    TlsEstablished {
        /// Protocol version.
        version: String,
    },
    /// AUTH succeeded.
    AuthSucceeded {
        /// Login name.
        user: String,
    },
    /// AUTH failed.
    AuthFailed {
        /// Login name tried, when one was given.
        user: String,
    },
    /// A recipient was refused.
    RecipientRejected {
        /// The address.
        rcpt: String,
        /// Why.
        reason: String,
    },
    /// A message was written to local mailboxes.
    Delivered {
        /// Message id.
        id: String,
        /// Envelope sender.
        from: String,
        /// Local recipients.
        to: Vec<String>,
        /// Size in octets.
        size: usize,
    },
    /// A queued message left the queue: every recipient delivered or failed.
    QueueFinished {
        /// Queue id.
        id: String,
        /// Recipients delivered.
        delivered: usize,
        /// Recipients given up on (a failure notice follows unless the sender is `<>`).
        failed: usize,
    },
    /// A message was refused after DATA.
    MessageRejected {
        /// Why.
        reason: String,
    },
    /// Anything else worth a line.
    Note {
        /// The text.
        text: String,
    },
}

/// One event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Increasing number, unique for this engine run.
    pub seq: u64,
    /// When it happened.
    pub time: SystemTime,
    /// Severity.
    pub level: Level,
    /// Log view.
    pub channel: Channel,
    /// SMTP session id, if it belongs to one.
    pub session: Option<String>,
    /// What happened.
    pub kind: EventKind,
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use EventKind::*;
        match self {
            Started { config, data_dir } => {
                write!(f, "started (config {config}, data directory {data_dir})")
            }
            Stopping => write!(f, "stopping: no new connections, closing idle sessions"),
            ListenerUp { name, addr } => write!(f, "{name} SMTP listening on {addr}"),
            ListenerDown { name, addr } => write!(f, "{name} SMTP on {addr} closed"),
            ListenerFailed { name, addr, error } => {
                write!(f, "{name} SMTP cannot listen on {addr}: {error}")
            }
            ConfigReloaded => write!(f, "configuration reloaded"),
            ConfigRejected { error } => {
                write!(
                    f,
                    "configuration change not applied, still using the previous one: {error}"
                )
            }
            SessionOpened { listener, peer } => write!(f, "connect from {peer} on {listener}"),
            SessionClosed { reason } => write!(f, "disconnect ({reason})"),
            ConnectionRefused { peer, reason } => write!(f, "refused {peer}: {reason}"),
            Command { line } => write!(f, "<<< {line}"),
            Reply { text } => write!(f, ">>> {text}"),
            TlsEstablished { version } => write!(f, "TLS established ({version})"),
            AuthSucceeded { user } => write!(f, "authenticated as {user}"),
            AuthFailed { user } => write!(f, "authentication failed for `{user}`"),
            RecipientRejected { rcpt, reason } => write!(f, "recipient <{rcpt}> refused: {reason}"),
            Delivered { id, from, to, size } => write!(
                f,
                "accepted {id} from <{from}> for {} ({size} octets)",
                to.iter()
                    .map(|t| format!("<{t}>"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            QueueFinished {
                id,
                delivered,
                failed,
            } => write!(
                f,
                "{id} left the queue: {delivered} recipient(s) delivered, {failed} failed"
            ),
            MessageRejected { reason } => write!(f, "message refused: {reason}"),
            Note { text } => write!(f, "{text}"),
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = time::OffsetDateTime::from(self.time);
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03} {:5} {:8}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond(),
            format!("{:?}", self.level).to_uppercase(),
            format!("{:?}", self.channel),
        )?;
        if let Some(s) = &self.session {
            write!(f, " [{s}]")?;
        }
        write!(f, " {}", self.kind)
    }
}

/// How many events the in-memory ring keeps.
pub const RING_CAPACITY: usize = 10_000;

type Wake = Box<dyn Fn() + Send + Sync>;

struct Inner {
    /// The most recent events, oldest first.
    ring: Mutex<VecDeque<Event>>,
    /// Live subscribers (log panes).
    live: broadcast::Sender<Event>,
    /// The log-file writer, when one runs. Bounded: when the disk cannot keep up (a client
    /// flooding commands), events are counted as dropped rather than held in memory.
    file: Mutex<Option<mpsc::Sender<Event>>>,
    /// Events the log-file writer had no room for since it last said so.
    dropped: AtomicU64,
    /// Next sequence number.
    seq: AtomicU64,
    /// Called after each event so a UI can repaint; set by the GUI.
    wake: Mutex<Option<Wake>>,
}

/// Where events go. Cheap to clone.
#[derive(Clone)]
pub struct EventBus(Arc<Inner>);

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    /// A bus with no subscribers.
    pub fn new() -> Self {
        EventBus(Arc::new(Inner {
            ring: Mutex::new(VecDeque::with_capacity(1024)),
            live: broadcast::channel(4096).0,
            file: Mutex::new(None),
            dropped: AtomicU64::new(0),
            seq: AtomicU64::new(1),
            wake: Mutex::new(None),
        }))
    }

    /// Reports an event.
    pub fn emit(&self, level: Level, channel: Channel, session: Option<&str>, kind: EventKind) {
        let ev = Event {
            seq: self.0.seq.fetch_add(1, Ordering::Relaxed),
            time: SystemTime::now(),
            level,
            channel,
            session: session.map(str::to_string),
            kind,
        };
        match level {
            Level::Debug => tracing::debug!(target: "postern", "{ev}"),
            Level::Info => tracing::info!(target: "postern", "{ev}"),
            Level::Warn => tracing::warn!(target: "postern", "{ev}"),
            Level::Error => tracing::error!(target: "postern", "{ev}"),
        }
        if let Some(tx) = self.0.file.lock().expect("file lock").as_ref()
            && tx.try_send(ev.clone()).is_err()
        {
            self.0.dropped.fetch_add(1, Ordering::Relaxed);
        }
        {
            let mut ring = self.0.ring.lock().expect("ring lock");
            if ring.len() == RING_CAPACITY {
                ring.pop_front();
            }
            ring.push_back(ev.clone());
        }
        let _ = self.0.live.send(ev);
        if let Some(wake) = self.0.wake.lock().expect("wake lock").as_ref() {
            wake();
        }
    }

    /// Shorthand for an event of a session.
    pub fn session(&self, level: Level, channel: Channel, id: &str, kind: EventKind) {
        self.emit(level, channel, Some(id), kind);
    }

    /// The events still in the ring, oldest first.
    pub fn recent(&self) -> Vec<Event> {
        self.0
            .ring
            .lock()
            .expect("ring lock")
            .iter()
            .cloned()
            .collect()
    }

    /// Live events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.0.live.subscribe()
    }

    /// How many events the log file missed since the last call (and resets the count).
    pub fn take_dropped(&self) -> u64 {
        self.0.dropped.swap(0, Ordering::Relaxed)
    }

    /// Sends every following event to `tx` as well (the log-file writer).
    pub fn attach_file_writer(&self, tx: mpsc::Sender<Event>) {
        *self.0.file.lock().expect("file lock") = Some(tx);
    }

    /// Stops feeding the log-file writer (it then drains and ends).
    pub fn detach_file_writer(&self) {
        self.0.file.lock().expect("file lock").take();
    }

    /// Installs the callback run after each event (a UI's repaint request).
    pub fn set_wake(&self, wake: impl Fn() + Send + Sync + 'static) {
        *self.0.wake.lock().expect("wake lock") = Some(Box::new(wake));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_is_bounded_and_ordered() {
        let bus = EventBus::new();
        for i in 0..RING_CAPACITY + 5 {
            bus.emit(
                Level::Info,
                Channel::System,
                None,
                EventKind::Note {
                    text: i.to_string(),
                },
            );
        }
        let r = bus.recent();
        assert_eq!(r.len(), RING_CAPACITY);
        assert_eq!(r[0].kind, EventKind::Note { text: "5".into() });
    }

    #[test]
    fn lines_carry_the_session_id() {
        let bus = EventBus::new();
        bus.session(
            Level::Info,
            Channel::SmtpIn,
            "s42",
            EventKind::Command {
                line: "NOOP".into(),
            },
        );
        assert!(bus.recent()[0].to_string().contains("[s42] <<< NOOP"));
    }
}
