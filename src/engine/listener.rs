//! Listening sockets for every protocol (SMTP, POP3, IMAP): binding Listen Only on IP
//! and a port, and the accept loop, which enforces the protocol's Max Connections per port
//! and asks the access gate about the client's IP ([`Gate::accept`]: per-IP limits and
//! blocks, shared by every protocol) before a session starts. What a session says is the
//! protocol's business: the loop hands each accepted connection to a [`Service`]. What every
//! session does alike with its connection is here too: [`upgrade`] to TLS and, before a
//! STARTTLS handshake, [`drop_pipelined`].

use crate::engine::access::Gate;
use crate::engine::config::{Config, MailServiceConfig, ServiceDefaults};
use crate::engine::current::Current;
use crate::engine::events::{EventBus, EventKind, Level};
use crate::engine::reply::Reply;
use crate::engine::role::Role;
use crate::engine::tls::{self, Detached, HandshakeError};
use crate::engine::wire::Wire;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Which protocol a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// SMTP (the role says which).
    Smtp,
    /// POP3 (RFC 1939).
    Pop3,
    /// IMAP4rev2 (RFC 9051).
    Imap,
}

/// The listeners a mailbox service (`pop3.*`, `imap.*`) asks for: none when it is off, else
/// the plain port (STLS/STARTTLS when Use Explicit SSL is on) and, with Use Implicit SSL, the
/// SSL Port. A mailbox listener's role is `Incoming`: it never relays.
pub fn mail_service_specs<K: ServiceDefaults>(
    p: &MailServiceConfig<K>,
    protocol: Protocol,
) -> Vec<ListenerSpec> {
    if !p.enabled {
        return Vec::new();
    }
    let spec = |port, implicit_tls| ListenerSpec {
        protocol,
        listen_ip: p.listen_ip.clone(),
        port,
        role: Role::Incoming,
        implicit_tls,
    };
    let mut out = vec![spec(p.port, false)];
    if p.implicit_ssl {
        out.push(spec(p.ssl_port, true));
    }
    out
}

/// One listener the configuration asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    /// The protocol its sessions speak.
    pub protocol: Protocol,
    /// Listen Only on IP (empty = all addresses), as configured.
    pub listen_ip: String,
    /// Port.
    pub port: u16,
    /// What an SMTP listener's sessions may do (POP3 listeners: `Incoming`, never relaying).
    pub role: Role,
    /// TLS from the first byte (465, 995 style).
    pub implicit_tls: bool,
}

impl ListenerSpec {
    /// Name for the status strip: `incoming`, `outgoing (implicit TLS)`, `POP3`, ...
    pub fn name(&self) -> String {
        let base = match self.protocol {
            Protocol::Smtp => self.role.name(),
            Protocol::Pop3 => "POP3",
            Protocol::Imap => "IMAP",
        };
        if self.implicit_tls {
            format!("{base} (implicit TLS)")
        } else {
            base.to_string()
        }
    }

    /// Name for log lines: `incoming SMTP`, `POP3 (implicit TLS)`, ...
    pub fn title(&self) -> String {
        match self.protocol {
            Protocol::Smtp => format!("{} SMTP", self.name()),
            Protocol::Pop3 | Protocol::Imap => self.name(),
        }
    }

    /// `ip:port` as configured, for messages.
    pub fn describe(&self) -> String {
        let ip = if self.listen_ip.is_empty() {
            "*"
        } else {
            &self.listen_ip
        };
        format!("{ip}:{}", self.port)
    }
}

/// One listener as the status strip shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ListenerStatus {
    /// incoming, outgoing, incoming+outgoing, ... (implicit TLS).
    pub name: String,
    /// `ip:port` as configured.
    pub configured: String,
    /// The bound address while it is up.
    pub addr: Option<SocketAddr>,
    /// Why it is down.
    pub error: Option<String>,
    /// Open sessions.
    pub sessions: usize,
}

/// Shared between the supervisor (which updates it) and handles (which read it).
pub type ListenerTable =
    Arc<std::sync::Mutex<Vec<(ListenerStatus, Option<Arc<std::sync::atomic::AtomicUsize>>)>>>;

/// The rows of the table now, with each listener's open sessions.
pub fn rows(table: &ListenerTable) -> Vec<ListenerStatus> {
    table
        .lock()
        .expect("listener table")
        .iter()
        .map(|(s, active)| {
            let mut s = s.clone();
            s.sessions = active
                .as_ref()
                .map(|a| a.load(Ordering::Relaxed))
                .unwrap_or(0);
            s
        })
        .collect()
}

/// What a session knows of the listener it came in on, live: the listener's role can change
/// with the configuration (outgoing SMTP turned on or off on a shared port), and when the
/// listener is closed its idle sessions are told so and closed.
#[derive(Clone)]
pub struct Seat {
    /// What the listener's sessions may do, as of now.
    pub role: watch::Receiver<Role>,
    /// Cancelled when the listener is closed.
    pub closed: CancellationToken,
    /// TLS from the first byte.
    pub implicit_tls: bool,
}

impl Seat {
    /// A seat whose role never changes and which is never closed (tests).
    pub fn fixed(role: Role, implicit_tls: bool) -> Seat {
        Seat {
            role: watch::channel(role).1,
            closed: CancellationToken::new(),
            implicit_tls,
        }
    }
}

/// A new session id: time-based prefix (unique across restarts) and a counter.
pub fn new_session_id() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let start = START.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    });
    format!("{start:X}{:05X}", SEQ.fetch_add(1, Ordering::Relaxed))
}

/// A stream a session can run over: TCP, TLS over TCP, or an in-memory duplex (tests).
pub trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

/// A session's stream, boxed so it is one type before and after STARTTLS.
pub type Io = Box<dyn Stream>;

/// Turns a session's connection into TLS in place (STARTTLS, STLS, or the first thing on an
/// implicit-TLS port), for every protocol: the handshake on the bare stream, then a new
/// `Wire` over the encrypted one. Returns the protocol version, for the log.
pub async fn upgrade(
    wire: &mut Wire<Io>,
    acceptor: &TlsAcceptor,
    write_timeout: std::time::Duration,
) -> Result<String, HandshakeError> {
    let plain = std::mem::replace(wire, Wire::new(Box::new(Detached))).into_inner();
    let (stream, version) = tls::handshake(acceptor, plain).await?;
    *wire = Wire::new(Box::new(stream));
    wire.set_write_timeout(write_timeout);
    Ok(version)
}

/// After the reply to STARTTLS or STLS is flushed: plaintext the client pipelined behind the
/// command is dropped, never read as if TLS protected it (CVE-2011-0411), and logged.
pub fn drop_pipelined(wire: &mut Wire<Io>, events: &EventBus, session: &str) {
    let octets = wire.discard_input();
    if octets > 0 {
        events.session(
            Level::Warn,
            session,
            EventKind::PlaintextDiscarded { octets },
        );
    }
}

/// A session's future, as a service hands it to the listener.
pub type SessionFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A protocol as the listeners see it: its connection limit, how it words a refusal at
/// accept, and its sessions.
pub trait Service: Send + Sync + 'static {
    /// Simultaneous sessions per listening port (Max Connections).
    fn max_connections(&self, cfg: &Config) -> usize;
    /// The line sent to a client refused at accept (too many connections, blocked IP).
    fn refusal(&self, reply: &Reply) -> String;
    /// Serves one accepted connection from greeting to close.
    fn serve(&self, stream: TcpStream, peer: SocketAddr, seat: Seat) -> SessionFuture;
}

/// What every listener needs from the engine.
#[derive(Clone)]
pub struct Common {
    /// The configuration in force.
    pub current: watch::Receiver<Arc<Current>>,
    /// Asked at every accept.
    pub gate: Gate,
    /// Where accept failures are logged.
    pub events: EventBus,
    /// Cancelled when the engine stops.
    pub shutdown: CancellationToken,
}

/// Why a listener could not be opened (the text goes to the log and the status strip).
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// Listen Only on IP is a host name that does not resolve.
    #[error("cannot resolve `{host}`: {source}")]
    Resolve {
        /// The name.
        host: String,
        /// The resolver's error.
        source: std::io::Error,
    },
    /// Listen Only on IP is a host name without addresses.
    #[error("`{0}` has no address")]
    NoAddress(String),
    /// bind(2) or listen(2) failed; `hint` says what to do about the common causes.
    #[error("{source}{hint}")]
    Bind {
        /// The OS error.
        source: std::io::Error,
        /// " (ports below 1024 need privilege: ...)" and the like, or empty.
        hint: &'static str,
    },
}

/// Resolves Listen Only on IP (an IP, a host name, or empty for all addresses) and binds.
pub async fn bind(spec: &ListenerSpec) -> Result<TcpListener, BindError> {
    let addr: SocketAddr = if spec.listen_ip.is_empty() {
        SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), spec.port)
    } else if let Ok(ip) = spec.listen_ip.parse::<IpAddr>() {
        SocketAddr::new(ip, spec.port)
    } else {
        let mut addrs = tokio::net::lookup_host((spec.listen_ip.as_str(), spec.port))
            .await
            .map_err(|source| BindError::Resolve {
                host: spec.listen_ip.clone(),
                source,
            })?;
        addrs
            .next()
            .ok_or_else(|| BindError::NoAddress(spec.listen_ip.clone()))?
    };
    let result = match TcpListener::bind(addr).await {
        // No IPv6 on this machine: all IPv4 addresses instead.
        Err(_) if spec.listen_ip.is_empty() => {
            TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], spec.port))).await
        }
        r => r,
    };
    result.map_err(|source| {
        let hint = match source.kind() {
            std::io::ErrorKind::PermissionDenied if spec.port < 1024 => {
                " (ports below 1024 need privilege: run `sudo setcap cap_net_bind_service=+ep $(command -v postern)` or choose a port above 1023)"
            }
            std::io::ErrorKind::AddrInUse => " (another program is using this port)",
            _ => "",
        };
        BindError::Bind { source, hint }
    })
}

/// A running listener, owned by the engine's supervisor.
pub struct Running {
    /// What it was started for.
    pub spec: ListenerSpec,
    /// Bound address.
    pub addr: SocketAddr,
    /// Open sessions on this port.
    pub active: Arc<AtomicUsize>,
    /// Role changes without rebinding (e.g. outgoing enabled on the incoming port).
    pub role: watch::Sender<Role>,
    /// Stops the accept loop; idle sessions of this listener are told so and closed.
    pub stop: CancellationToken,
    /// The accept loop.
    pub task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Starts accepting on `listener`, handing sessions to `service`.
    pub fn start(
        spec: ListenerSpec,
        listener: TcpListener,
        common: Common,
        service: Arc<dyn Service>,
        tracker: TaskTracker,
    ) -> std::io::Result<Running> {
        let addr = listener.local_addr()?;
        let active = Arc::new(AtomicUsize::new(0));
        let (role_tx, role_rx) = watch::channel(spec.role);
        let stop = CancellationToken::new();
        let seat = Seat {
            role: role_rx,
            closed: stop.clone(),
            implicit_tls: spec.implicit_tls,
        };
        let task = tokio::spawn(accept_loop(
            listener,
            seat,
            active.clone(),
            common,
            service,
            tracker,
        ));
        Ok(Running {
            spec,
            addr,
            active,
            role: role_tx,
            stop,
            task,
        })
    }

    /// Stops accepting (idle sessions are closed) and waits until the socket is closed.
    pub async fn close(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// Decrements the open-session count when a session ends, however it ends.
struct ActiveGuard(Arc<AtomicUsize>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn accept_loop(
    listener: TcpListener,
    seat: Seat,
    active: Arc<AtomicUsize>,
    common: Common,
    service: Arc<dyn Service>,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = seat.closed.cancelled() => return,
            _ = common.shutdown.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: report, pause briefly, keep serving.
                common.events.emit(
                    Level::Error,
                    None,
                    EventKind::AcceptFailed {
                        error: e.to_string(),
                    },
                );
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
        let _ = stream.set_nodelay(true);
        let open = active.fetch_add(1, Ordering::AcqRel);
        let guard = ActiveGuard(active.clone());
        let cur = common.current.borrow().clone();
        let limit = service.max_connections(&cur.config);
        let per_ip = match common.gate.accept(&cur, peer, open, limit) {
            Ok(g) => g,
            Err(reply) => {
                drop(guard);
                let line = service.refusal(&reply);
                tracker.spawn(refuse(stream, seat.implicit_tls, line));
                continue;
            }
        };
        let session = service.serve(stream, peer, seat.clone());
        tracker.spawn(async move {
            let _guards = (guard, per_ip);
            session.await;
        });
    }
}

/// Answers a connection over the limit and closes it.
async fn refuse(mut stream: TcpStream, implicit_tls: bool, line: String) {
    if !implicit_tls {
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            stream.write_all(line.as_bytes()),
        )
        .await;
    }
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(protocol: Protocol, role: Role, implicit_tls: bool) -> ListenerSpec {
        ListenerSpec {
            protocol,
            listen_ip: String::new(),
            port: 1,
            role,
            implicit_tls,
        }
    }

    #[test]
    fn the_status_strip_and_log_names_of_each_protocol() {
        let imap = spec(Protocol::Imap, Role::Incoming, false);
        assert_eq!((imap.name(), imap.title()), ("IMAP".into(), "IMAP".into()));
        let imaps = spec(Protocol::Imap, Role::Incoming, true);
        assert_eq!(imaps.name(), "IMAP (implicit TLS)");
        assert_eq!(
            spec(Protocol::Pop3, Role::Incoming, true).name(),
            "POP3 (implicit TLS)"
        );
        let smtp = spec(Protocol::Smtp, Role::Outgoing, false);
        assert_eq!(smtp.title(), format!("{} SMTP", Role::Outgoing.name()));
    }
}
