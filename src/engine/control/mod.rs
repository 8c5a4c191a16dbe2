//! The control socket: `DATA/control.sock`, a Unix socket only the data directory's owner can
//! open, through which `postern queue ...` and `postern access blocked|unblock` reach a running
//! server (headless or GUI). One JSON request line, one JSON response line.

pub mod offline;

use super::access::Gate;
use super::access::abuse::BlockInfo;
use super::command::{Command, ReloadReport};
use super::current::Current;
use super::listener::{ListenerStatus, ListenerTable};
use super::queue::{Page, PageQuery, Queue, QueueCommand, QueueEntry};
use super::stats::{Stats, StatsSnapshot};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Longest request accepted.
const MAX_REQUEST: usize = 64 * 1024;

/// A request to the running engine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    /// A page of the queue list (the list is never sent whole: `postern queue list` reads
    /// it page by page, after the last id it printed).
    Page(PageQuery),
    /// One message with its content.
    Show(u64),
    /// Retry, delete, hold, release.
    Queue(QueueCommand),
    /// Re-read the configuration now and say what the running server did.
    Reload,
    /// The listeners (each with its error) and today's mail counters.
    Status,
    /// The blocks in force (lockouts, tarpit blocks).
    Blocked,
    /// Lift the block of an IP (or of its IPv6 network) and clear its failure counts.
    Unblock(IpAddr),
}

/// The engine's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Response {
    /// A page of the queue list.
    Page(Page),
    /// One message and its content (lossy UTF-8), or none.
    Show(Option<(QueueEntry, String)>),
    /// How many messages a command touched.
    Count(usize),
    /// The blocks in force.
    Blocks(Vec<BlockInfo>),
    /// The block lifted, or none when the IP was not blocked.
    Unblocked(Option<BlockInfo>),
    /// What a reload did.
    Reloaded(ReloadReport),
    /// The listeners and today's counters.
    Status(StatusReport),
    /// Done.
    Ok,
    /// The request could not be served.
    Error(String),
}

/// What `postern status` shows: the listeners (up with the address, or down with why) and
/// today's mail counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// Every listener the configuration asks for.
    pub listeners: Vec<ListenerStatus>,
    /// Today's counters.
    pub stats: StatsSnapshot,
}

/// How long the socket waits for a reload's report.
const RELOAD_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Why the control socket could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Nothing is listening (no server running on this data directory).
    #[error("no running Postern answers on {0}")]
    NotRunning(PathBuf),
    /// Talking to it failed.
    #[error("control socket {path}: {message}")]
    Io {
        /// The socket.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

/// The socket's path in a data directory.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("control.sock")
}

/// What the socket serves from: the queue, the supervisor's commands, and the gate's blocks
/// under the configuration in force.
pub struct Served {
    /// The outgoing queue.
    pub queue: Queue,
    /// Commands to the supervisor (reload).
    pub commands: mpsc::UnboundedSender<Command>,
    /// The policy gate (its abuse tables).
    pub gate: Gate,
    /// The configuration in force.
    pub current: watch::Receiver<Arc<Current>>,
    /// The listener table the supervisor keeps.
    pub listeners: ListenerTable,
    /// The mail counters.
    pub stats: Arc<Stats>,
}

/// Serves the socket until `stop`; removes it afterwards.
pub fn serve(
    data_dir: &Path,
    served: Served,
    stop: CancellationToken,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let served = Arc::new(served);
    let path = socket_path(data_dir);
    // We own the data directory (the lock is held), so a leftover socket is stale.
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                _ = stop.cancelled() => break,
                r = listener.accept() => match r { Ok((s, _)) => s, Err(_) => continue },
            };
            let served = served.clone();
            tokio::spawn(async move {
                let Served {
                    queue,
                    commands,
                    gate,
                    current,
                    listeners,
                    stats,
                } = &*served;
                let (r, mut w) = stream.into_split();
                let mut line = String::new();
                let mut r = tokio::io::BufReader::new(r).take(MAX_REQUEST as u64);
                if r.read_line(&mut line).await.is_err() {
                    return;
                }
                let resp = match serde_json::from_str::<Request>(&line) {
                    Err(e) => Response::Error(format!("bad request: {e}")),
                    Ok(Request::Page(q)) => Response::Page(queue.page(q).await),
                    Ok(Request::Show(id)) => Response::Show(
                        queue
                            .show(id)
                            .await
                            .map(|(e, data)| (e, String::from_utf8_lossy(&data).into_owned())),
                    ),
                    Ok(Request::Queue(cmd)) => Response::Count(queue.command(cmd).await),
                    Ok(Request::Reload) => {
                        let (tx, rx) = tokio::sync::oneshot::channel();
                        let _ = commands.send(Command::Reload(Some(tx)));
                        match tokio::time::timeout(RELOAD_WAIT, rx).await {
                            Ok(Ok(report)) => Response::Reloaded(report),
                            Ok(Err(_)) => Response::Error("the server is stopping".into()),
                            Err(_) => Response::Error("the reload did not finish in time".into()),
                        }
                    }
                    Ok(Request::Status) => Response::Status(StatusReport {
                        listeners: super::listener::rows(listeners),
                        stats: stats.snapshot(),
                    }),
                    Ok(Request::Blocked) => {
                        let cur = current.borrow().clone();
                        Response::Blocks(gate.blocks(&cur))
                    }
                    Ok(Request::Unblock(ip)) => {
                        let cur = current.borrow().clone();
                        Response::Unblocked(gate.unblock(&cur, ip, "the command line"))
                    }
                };
                let mut out = serde_json::to_vec(&resp).unwrap_or_default();
                out.push(b'\n');
                let _ = w.write_all(&out).await;
            });
        }
        let _ = std::fs::remove_file(&path);
    }))
}

use tokio::io::AsyncReadExt as _;

/// Sends one request to the server running on `data_dir` (blocking).
pub fn request(data_dir: &Path, req: &Request) -> Result<Response, ControlError> {
    let path = socket_path(data_dir);
    let io = |e: std::io::Error| ControlError::Io {
        path: path.clone(),
        message: e.to_string(),
    };
    let mut s = match std::os::unix::net::UnixStream::connect(&path) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Err(ControlError::NotRunning(path));
        }
        Err(e) => return Err(io(e)),
    };
    let mut line = serde_json::to_vec(req).expect("request serialises");
    line.push(b'\n');
    s.write_all(&line).map_err(io)?;
    let mut resp = String::new();
    BufReader::new(s).read_line(&mut resp).map_err(io)?;
    serde_json::from_str(&resp).map_err(|e| ControlError::Io {
        path: path.clone(),
        message: e.to_string(),
    })
}
