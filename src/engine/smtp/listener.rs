//! SMTP's listeners: which sockets the configuration asks for (incoming, outgoing, implicit
//! TLS), and SMTP as a [`Service`] of the shared accept loop (`engine::listener`).

use super::session::{self, Deps};
use crate::engine::config::Config;
use crate::engine::listener::{ListenerSpec, Protocol, Seat, Service, SessionFuture};
use crate::engine::reply::Reply;
use crate::engine::role::Role;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpStream;

/// SMTP sessions, for the listeners.
pub struct Smtp(pub Arc<Deps>);

impl Service for Smtp {
    fn max_connections(&self, cfg: &Config) -> usize {
        cfg.smtp.max_connections_per_port as usize
    }

    fn refusal(&self, reply: &Reply) -> String {
        reply.wire()
    }

    fn serve(&self, stream: TcpStream, peer: SocketAddr, seat: Seat) -> SessionFuture {
        Box::pin(session::serve(stream, peer, seat, self.0.clone()))
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
        protocol: Protocol::Smtp,
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
            protocol: Protocol::Smtp,
            listen_ip: s.outgoing.listen_ip.clone(),
            port: s.outgoing.port,
            role: Role::Outgoing,
            implicit_tls: false,
        });
    }
    if let Some(port) = s.tls.implicit_port {
        let outgoing = s.outgoing.enabled;
        out.push(ListenerSpec {
            protocol: Protocol::Smtp,
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
