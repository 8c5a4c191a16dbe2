//! IMAP4rev2 (RFC 9051), answering IMAP4rev1 clients (RFC 3501) too, over each account's
//! Maildir++ folders. Protocol only, as `pop3` is: the listeners, TLS, the password check,
//! the failed-login lockout and the per-IP limits are the engine's shared machinery
//! (`engine::listener`, `engine::tls`, `access::Gate::mailbox_login`), and the folders are
//! `store::mailbox`. Commands are parsed and FETCH data serialised with duesee's
//! `imap-codec`; the framing (lines, literals and their limits, `+` continuations) is
//! [`read`], over the engine's one line reader (`wire::Wire`), so STARTTLS drops pipelined
//! plaintext as SMTP and POP3 do. [`list`] takes LIST-EXTENDED's options off a LIST, [`session`] is the state machine, [`selected`] a selected
//! folder as the session shows it (sequence numbers, the untagged updates), [`reply`] every
//! reply text, [`message`] FETCH items and [`search`] SEARCH keys of one message.

pub mod list;
pub mod message;
pub mod read;
pub mod reply;
pub mod search;
pub mod selected;
pub mod session;

use crate::engine::access::Gate;
use crate::engine::config::Config;
use crate::engine::current::Current;
use crate::engine::events::EventBus;
use crate::engine::listener::{self, ListenerSpec, Protocol, Seat, Service, SessionFuture};
use crate::engine::reply::Reply;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What an IMAP session needs from the engine.
pub struct Deps {
    /// The configuration in force; read before every command.
    pub current: watch::Receiver<Arc<Current>>,
    /// Logins (shared lockout with SMTP AUTH and POP3).
    pub gate: Gate,
    /// Where the session logs.
    pub events: EventBus,
    /// Cancelled when the engine stops.
    pub shutdown: CancellationToken,
    /// `DATA/mailboxes`.
    pub mailroot: PathBuf,
}

/// IMAP sessions, for the listeners.
pub struct Imap(pub Arc<Deps>);

impl Service for Imap {
    fn max_connections(&self, cfg: &Config) -> usize {
        cfg.imap.max_connections as usize
    }

    fn refusal(&self, r: &Reply) -> String {
        format!("* BYE {}\r\n", r.plain_text())
    }

    fn serve(&self, stream: TcpStream, peer: SocketAddr, seat: Seat) -> SessionFuture {
        Box::pin(session::serve(stream, peer, seat, self.0.clone()))
    }
}

/// The IMAP listeners `cfg` asks for: the plain port (with STARTTLS when Use Explicit SSL is
/// on) and the implicit-TLS SSL Port.
pub fn wanted(cfg: &Config) -> Vec<ListenerSpec> {
    listener::mail_service_specs(&cfg.imap, Protocol::Imap)
}
