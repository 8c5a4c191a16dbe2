//! The command line's own logic, kept out of `main.rs` so it can be tested: default paths and
//! the queue's output. What the commands do to the configuration file is
//! [`crate::engine::config::edit`].

use std::path::PathBuf;

/// Default configuration file and data directory (XDG locations on Linux).
pub fn default_paths() -> (PathBuf, PathBuf) {
    match directories::ProjectDirs::from("", "", "postern") {
        Some(d) => (
            d.config_dir().join("postern.ron"),
            d.data_dir().to_path_buf(),
        ),
        None => (PathBuf::from("postern.ron"), PathBuf::from("postern-data")),
    }
}

/// `postern queue ...`: through the control socket when a server runs on the data
/// directory, else directly on the spool (holding the data directory's lock meanwhile).
pub mod queue {
    use crate::engine::control::{self, ControlError, Request, Response};
    use crate::engine::lock::DataDirLock;
    use crate::engine::queue::spool::{Record, Spool};
    use crate::engine::queue::{QueueCommand, QueueEntry, RcptState, Target, id_text, now_secs};
    use anyhow::{Context, Result, bail};
    use std::path::Path;

    /// Runs a request against the live server, or offline.
    pub fn run(data_dir: &Path, req: Request) -> Result<Response> {
        match control::request(data_dir, &req) {
            Ok(r) => Ok(r),
            Err(ControlError::NotRunning(_)) => offline(data_dir, req),
            Err(e) => Err(e.into()),
        }
    }

    fn offline(data_dir: &Path, req: Request) -> Result<Response> {
        let _lock = DataDirLock::acquire(data_dir)?;
        let dir = data_dir.join("spool");
        let (spool, replayed) = Spool::open(&dir)
            .with_context(|| format!("cannot open the spool in {}", dir.display()))?;
        let rt = tokio::runtime::Builder::new_current_thread().build()?;
        let entries: Vec<QueueEntry> = replayed
            .messages
            .iter()
            .map(|(m, _)| QueueEntry {
                meta: m.clone(),
                in_flight: false,
                history: Vec::new(),
            })
            .collect();
        let targets = |t: &Target| -> Vec<usize> {
            (0..replayed.messages.len())
                .filter(|&i| {
                    matches!(t, Target::All)
                        || matches!(t, Target::Id(id) if *id == replayed.messages[i].0.id)
                })
                .collect()
        };
        let resp = match req {
            Request::List => Response::List(entries),
            Request::Show(id) => match replayed.messages.iter().find(|(m, _)| m.id == id) {
                Some((m, loc)) => {
                    let data = spool.read(*loc)?;
                    let e = QueueEntry {
                        meta: m.clone(),
                        in_flight: false,
                        history: Vec::new(),
                    };
                    Response::Show(Some((e, String::from_utf8_lossy(&data).into_owned())))
                }
                None => Response::Show(None),
            },
            Request::Queue(cmd) => {
                let t = match &cmd {
                    QueueCommand::Retry(t)
                    | QueueCommand::Delete(t)
                    | QueueCommand::Hold(t)
                    | QueueCommand::Release(t) => t.clone(),
                };
                let idx = targets(&t);
                rt.block_on(async {
                    for &i in &idx {
                        let mut m = replayed.messages[i].0.clone();
                        let rec = match cmd {
                            QueueCommand::Delete(_) => Record::Remove(m.id),
                            QueueCommand::Retry(_) => {
                                m.next_try = now_secs();
                                Record::Update(m)
                            }
                            QueueCommand::Hold(_) => {
                                m.held = true;
                                Record::Update(m)
                            }
                            QueueCommand::Release(_) => {
                                m.held = false;
                                m.next_try = now_secs();
                                Record::Update(m)
                            }
                        };
                        spool.append(rec).await?;
                    }
                    anyhow::Ok(())
                })?;
                Response::Count(idx.len())
            }
            Request::Reload => bail!("no server is running on {}", data_dir.display()),
        };
        rt.block_on(spool.flush());
        Ok(resp)
    }

    fn age(secs: u64) -> String {
        match secs {
            s if s < 60 => format!("{s}s"),
            s if s < 3600 => format!("{}m", s / 60),
            s if s < 86400 => format!("{}h", s / 3600),
            s => format!("{}d", s / 86400),
        }
    }

    /// The list as `postern queue list` prints it (like mailq).
    pub fn format_list(entries: &[QueueEntry]) -> String {
        let now = now_secs();
        let mut out = String::new();
        if entries.is_empty() {
            return "Mail queue is empty\n".into();
        }
        out.push_str("ID               AGE   SIZE      TRIES NEXT       SENDER / RECIPIENTS\n");
        for e in entries {
            let m = &e.meta;
            let next = if m.held {
                "on hold".to_string()
            } else if e.in_flight {
                "now".to_string()
            } else if m.next_try <= now {
                "due".to_string()
            } else {
                format!("in {}", age(m.next_try - now))
            };
            let from = if m.from.is_empty() {
                "<>".to_string()
            } else {
                format!("<{}>", m.from)
            };
            out.push_str(&format!(
                "{:16} {:5} {:9} {:5} {:10} {}\n",
                id_text(m.id),
                age(now.saturating_sub(m.created)),
                m.size,
                m.attempts,
                next,
                from
            ));
            for r in &m.rcpts {
                let state = match r.state {
                    RcptState::Pending => "",
                    RcptState::Delivered => " (delivered)",
                    RcptState::Failed => " (failed)",
                };
                out.push_str(&format!("{:50}<{}>{state}\n", "", r.addr));
                if !r.last_error.is_empty() {
                    out.push_str(&format!("{:52}last error: {}\n", "", r.last_error));
                }
            }
        }
        let n = entries.len();
        out.push_str(&format!(
            "-- {n} message{} in the queue\n",
            if n == 1 { "" } else { "s" }
        ));
        out
    }

    /// Parses `ID` or `--all` into a target.
    pub fn target(id: Option<&str>, all: bool) -> Result<Target> {
        match (id, all) {
            (_, true) => Ok(Target::All),
            (Some(s), false) => crate::engine::queue::parse_id(s)
                .map(Target::Id)
                .with_context(|| format!("`{s}` is not a queue id")),
            (None, false) => bail!("give a queue id or --all"),
        }
    }
}
