//! POP3 (RFC 1939 with CAPA RFC 2449, STLS RFC 2595, AUTH PLAIN RFC 5034) over each account's
//! INBOX. Protocol only, as `smtp::session` is: the listeners, TLS, the password check, the
//! failed-login lockout and the per-IP limits are the engine's shared machinery
//! (`engine::listener`, `engine::tls`, `access::Gate::mailbox_login`), and the mailbox is
//! `store::mailbox`. [`parse`] is the command parser, [`reply`] every reply text,
//! [`session`] the state machine (AUTHORIZATION, TRANSACTION, UPDATE).

pub mod parse;
pub mod reply;
pub mod session;

use crate::engine::access::Gate;
use crate::engine::config::Config;
use crate::engine::current::Current;
use crate::engine::events::EventBus;
use crate::engine::listener::{self, ListenerSpec, Protocol, Seat, Service, SessionFuture};
use crate::engine::reply::Reply;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What a POP3 session needs from the engine.
pub struct Deps {
    /// The configuration in force; read before every command.
    pub current: watch::Receiver<Arc<Current>>,
    /// Logins (shared lockout with SMTP AUTH).
    pub gate: Gate,
    /// Where the session logs.
    pub events: EventBus,
    /// Cancelled when the engine stops.
    pub shutdown: CancellationToken,
    /// `DATA/mailboxes`.
    pub mailroot: PathBuf,
    /// Accounts with a POP3 session in the TRANSACTION state (RFC 1939's exclusive lock;
    /// one process owns the data directory, so a set in memory is the whole truth).
    pub busy: Arc<Mutex<HashSet<String>>>,
}

/// POP3 sessions, for the listeners.
pub struct Pop3(pub Arc<Deps>);

impl Service for Pop3 {
    fn max_connections(&self, cfg: &Config) -> usize {
        cfg.pop3.max_connections as usize
    }

    fn refusal(&self, r: &Reply) -> String {
        format!("{}\r\n", reply::refused(&plain_text(r)))
    }

    fn serve(&self, stream: TcpStream, peer: SocketAddr, seat: Seat) -> SessionFuture {
        Box::pin(session::serve(stream, peer, seat, self.0.clone()))
    }
}

/// An SMTP reply's text without its enhanced status code (`4.7.0 `), for a POP3 `-ERR`.
pub fn plain_text(r: &Reply) -> String {
    r.plain_text()
}

/// The POP3 listeners `cfg` asks for: the plain port (with STLS when Use Explicit SSL is on)
/// and the implicit-TLS SSL Port.
pub fn wanted(cfg: &Config) -> Vec<ListenerSpec> {
    listener::mail_service_specs(&cfg.pop3, Protocol::Pop3)
}

/// Holds an account's POP3 lock; released when dropped, however the session ends.
pub struct BusyGuard {
    /// The set and the account to remove.
    slot: (Arc<Mutex<HashSet<String>>>, String),
}

impl BusyGuard {
    /// Takes the account's lock, or `None` when another session has it.
    pub fn take(set: &Arc<Mutex<HashSet<String>>>, address: &str) -> Option<BusyGuard> {
        let mut s = set.lock().unwrap_or_else(|p| p.into_inner());
        s.insert(address.to_string()).then(|| BusyGuard {
            slot: (set.clone(), address.to_string()),
        })
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        let (set, address) = &self.slot;
        set.lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(address);
    }
}
