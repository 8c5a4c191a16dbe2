//! Listening sockets: which listeners the configuration asks for, and the accept loop of each,
//! which enforces Max Connections Per Port before a session starts.

use super::session::{self, Deps, Seat};
use crate::engine::config::Config;
use crate::engine::events::{EventKind, Level};
use crate::engine::reply::Reply;
use crate::engine::role::Role;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// One listener the configuration asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    /// Listen Only on IP (empty = all addresses), as configured.
    pub listen_ip: String,
    /// Port.
    pub port: u16,
    /// What its sessions may do.
    pub role: Role,
    /// TLS from the first byte (465 style).
    pub implicit_tls: bool,
}

impl ListenerSpec {
    /// Name for logs and status.
    pub fn name(&self) -> String {
        if self.implicit_tls {
            format!("{} (implicit TLS)", self.role.name())
        } else {
            self.role.name().to_string()
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

/// The listeners `cfg` asks for: incoming, outgoing (one listener with both roles only when it
/// shares the port *and* the address; on the same port with another address each address is
/// bound with its own role, so relaying is never offered on the incoming address), and the
/// implicit-TLS port (serving the outgoing role when outgoing SMTP is enabled).
pub fn wanted(cfg: &Config) -> Vec<ListenerSpec> {
    let s = &cfg.smtp;
    let shared_port = s.outgoing.enabled
        && s.outgoing.port == s.incoming.port
        && s.outgoing.listen_ip.trim() == s.incoming.listen_ip.trim();
    let mut out = vec![ListenerSpec {
        listen_ip: s.incoming.listen_ip.clone(),
        port: s.incoming.port,
        role: if shared_port {
            Role::Both
        } else {
            Role::Incoming
        },
        implicit_tls: false,
    }];
    if s.outgoing.enabled && !shared_port {
        out.push(ListenerSpec {
            listen_ip: s.outgoing.listen_ip.clone(),
            port: s.outgoing.port,
            role: Role::Outgoing,
            implicit_tls: false,
        });
    }
    if let Some(port) = s.tls.implicit_port {
        let outgoing = s.outgoing.enabled;
        out.push(ListenerSpec {
            listen_ip: if outgoing {
                s.outgoing.listen_ip.clone()
            } else {
                s.incoming.listen_ip.clone()
            },
            port,
            role: if outgoing {
                Role::Outgoing
            } else {
                Role::Incoming
            },
            implicit_tls: true,
        });
    }
    out
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
    /// Stops the accept loop; idle sessions of this listener are told `421` and closed.
    pub stop: CancellationToken,
    /// The accept loop.
    pub task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Starts accepting on `listener`.
    pub fn start(
        spec: ListenerSpec,
        listener: TcpListener,
        deps: Arc<Deps>,
        tracker: TaskTracker,
    ) -> std::io::Result<Running> {
        let addr = listener.local_addr()?;
        let active = Arc::new(AtomicUsize::new(0));
        let (role_tx, role_rx) = watch::channel(spec.role);
        let stop = CancellationToken::new();
        let task = tokio::spawn(accept_loop(
            listener,
            spec.implicit_tls,
            role_rx,
            active.clone(),
            stop.clone(),
            deps,
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

    /// Stops accepting (idle sessions get `421`) and waits until the socket is closed.
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
    implicit_tls: bool,
    role: watch::Receiver<Role>,
    active: Arc<AtomicUsize>,
    stop: CancellationToken,
    deps: Arc<Deps>,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.cancelled() => return,
            _ = deps.shutdown.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: report, pause briefly, keep serving.
                deps.events.emit(
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
        let cur = deps.current.borrow().clone();
        let per_ip = match deps.gate.accept(&cur, peer, open) {
            Ok(g) => g,
            Err(reply) => {
                drop(guard);
                tracker.spawn(refuse(stream, implicit_tls, reply));
                continue;
            }
        };
        let deps = deps.clone();
        let seat = Seat {
            role: role.clone(),
            closed: stop.clone(),
            implicit_tls,
        };
        tracker.spawn(async move {
            let _guards = (guard, per_ip);
            session::serve(stream, peer, seat, deps).await;
        });
    }
}

/// Answers a connection over the limit and closes it.
async fn refuse(mut stream: TcpStream, implicit_tls: bool, reply: Reply) {
    if !implicit_tls {
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            stream.write_all(reply.wire().as_bytes()),
        )
        .await;
    }
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(cfg: &Config) -> Vec<(String, u16, Role)> {
        wanted(cfg)
            .into_iter()
            .map(|w| (w.listen_ip, w.port, w.role))
            .collect()
    }

    #[test]
    fn one_port_two_addresses_is_two_listeners_with_their_own_roles() {
        let mut c = Config::default();
        c.smtp.incoming.port = 2525;
        c.smtp.incoming.listen_ip = "192.0.2.1".into();
        c.smtp.outgoing.enabled = true;
        c.smtp.outgoing.port = 2525;
        c.smtp.outgoing.listen_ip = "10.0.0.1".into();
        assert_eq!(
            roles(&c),
            [
                ("192.0.2.1".into(), 2525, Role::Incoming),
                ("10.0.0.1".into(), 2525, Role::Outgoing)
            ]
        );
        c.smtp.outgoing.listen_ip = "192.0.2.1".into();
        assert_eq!(roles(&c), [("192.0.2.1".into(), 2525, Role::Both)]);
        c.smtp.outgoing.port = 2526;
        assert_eq!(
            roles(&c),
            [
                ("192.0.2.1".into(), 2525, Role::Incoming),
                ("192.0.2.1".into(), 2526, Role::Outgoing)
            ]
        );
    }
}
