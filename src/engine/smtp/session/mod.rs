//! One SMTP session (RFC 5321 with PIPELINING, SIZE, 8BITMIME, ENHANCEDSTATUSCODES, STARTTLS
//! and AUTH PLAIN/LOGIN) from greeting to close. This file only runs the command loop and
//! dispatches; each verb group has its own file ([`ehlo`], [`mail`], [`rcpt`], [`data`],
//! [`auth`], [`starttls`]) and [`parse`] is the one command parser.
//!
//! The session owns its stream (any `AsyncRead + AsyncWrite`, boxed, so a test drives it over
//! `tokio::io::duplex`). It holds no policy: it asks the [`Gate`] and acts on the answer, and
//! hands whole messages to the [`Intake`]. It reads the configuration in force before every
//! command, so a reload applies to open sessions too.

mod auth;
mod data;
mod ehlo;
mod mail;
pub mod parse;
mod rcpt;
mod starttls;
#[cfg(test)]
mod tests;

pub use parse::parse_command;

use super::conn::{Conn, MAX_COMMAND_LINE, ReadError};
use super::intake::Intake;
use crate::engine::access::gate::{CheckCache, Client, Decision, Gate, Refusal};
use crate::engine::access::recipient::Recipient;
use crate::engine::access::relay::Login;
use crate::engine::current::Current;
use crate::engine::events::{Channel, EventBus, EventKind, Level};
pub use crate::engine::listener::{Seat, Stream, new_session_id};
use crate::engine::reply::{self, Reply};
use crate::engine::role::Role;
use crate::engine::stats::Counter;
use smtp_proto::Request;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The session's stream, boxed so the session is one type before and after STARTTLS.
type Io = Box<dyn Stream>;

/// What a session needs from the engine, and nothing more.
pub struct Deps {
    /// The configuration in force; read before every command.
    pub current: watch::Receiver<Arc<Current>>,
    /// Every policy decision.
    pub gate: Gate,
    /// Where accepted messages go.
    pub intake: Arc<dyn Intake>,
    /// Where the session logs.
    pub events: EventBus,
    /// Cancelled when the engine stops: idle sessions answer 421 and close.
    pub shutdown: CancellationToken,
}

/// Serves one accepted connection from greeting to close, including a STARTTLS upgrade.
pub async fn serve<S: Stream + 'static>(io: S, peer: SocketAddr, seat: Seat, deps: Arc<Deps>) {
    let implicit_tls = seat.implicit_tls;
    let role = *seat.role.borrow();
    let mut s = Session::new(Box::new(io), peer, seat, deps);
    s.log(
        Level::Info,
        EventKind::SessionOpened {
            listener: if implicit_tls {
                format!("{} (implicit TLS)", role.name())
            } else {
                role.name().into()
            },
            peer,
        },
    );
    let reason = s.run(implicit_tls).await;
    s.log(Level::Info, EventKind::SessionClosed { reason });
}

/// The mail transaction between MAIL and the end of DATA.
#[derive(Debug)]
struct Transaction {
    /// Envelope sender; empty for the null sender `<>`.
    from: String,
    /// Accepted recipients, without duplicates.
    rcpts: Vec<Recipient>,
    /// The size the client declared at MAIL (`SIZE=`; 0 when it did not).
    size: u64,
    /// Warnings the gate tagged this transaction with at MAIL (`X-Postern-Warning:`).
    tags: Vec<String>,
}

/// What the command loop does after a command.
enum Next {
    /// Read the next command.
    Continue,
    /// Close the connection, for this reason.
    Close(String),
    /// Run the TLS handshake, then go on.
    StartTls,
}

/// Per-connection state.
struct Session {
    /// The client connection.
    conn: Conn<Io>,
    /// Session id, in every log line and in `Received:`.
    id: String,
    /// Client address.
    peer: SocketAddr,
    /// What the listener allows, as of the current command.
    role: Role,
    /// The listener, live.
    seat: Seat,
    /// Gate, intake, events, shutdown.
    deps: Arc<Deps>,
    /// The configuration in force, as of the current command.
    cur: Arc<Current>,
    /// Name given in HELO/EHLO; `None` before it.
    helo: Option<String>,
    /// Whether the client used EHLO.
    esmtp: bool,
    /// TLS protocol in use, if any.
    tls: Option<String>,
    /// Authenticated login, if any, and the password hash it was checked against (a changed
    /// or removed account ends the login).
    auth: Option<(Login, String)>,
    /// Open mail transaction.
    tx: Option<Transaction>,
    /// Error replies sent so far.
    errors: u32,
    /// Commands that made no progress since the last accepted message (NOOP, RSET, VRFY,
    /// HELP, a repeated HELO/EHLO).
    junk: u32,
    /// Messages accepted in this session (for message ids).
    messages: u32,
    /// Recipients refused so far (tarpitting).
    rcpt_failures: u32,
    /// Warnings the gate tagged the session with at connect (DNSBL), for every message.
    tags: Vec<String>,
    /// The DNS checks already made at MAIL in this session.
    checks: CheckCache,
    /// Set by a handler that wants the session closed after its reply.
    close_after: Option<String>,
    /// Set by a handler that wants its reply held back this long (tarpit).
    delay: Duration,
}

impl Session {
    fn new(io: Io, peer: SocketAddr, seat: Seat, deps: Arc<Deps>) -> Self {
        let cur = deps.current.borrow().clone();
        let role = *seat.role.borrow();
        let mut s = Session {
            conn: Conn::new(io),
            id: new_session_id(),
            peer,
            role,
            seat,
            deps,
            cur,
            helo: None,
            esmtp: false,
            tls: None,
            auth: None,
            tx: None,
            errors: 0,
            junk: 0,
            messages: 0,
            rcpt_failures: 0,
            tags: Vec::new(),
            checks: CheckCache::default(),
            close_after: None,
            delay: Duration::ZERO,
        };
        s.conn
            .set_write_timeout(s.cur.config.smtp.timeouts.command.0);
        s
    }

    /// What the gate is told about this client.
    fn client(&self) -> Client<'_> {
        Client {
            session: &self.id,
            peer: self.peer,
            role: self.role,
            helo: self.helo.as_deref(),
            login: self.auth.as_ref().map(|(l, _)| l),
        }
    }

    fn log(&self, level: Level, kind: EventKind) {
        self.deps.events.session(level, &self.id, kind);
    }

    /// Queues a reply; error replies count towards the session's error limit.
    fn reply(&mut self, r: Reply) {
        if self.deps.events.wants(Level::Debug, Channel::SmtpIn) {
            self.log(Level::Debug, EventKind::Reply { text: r.logged() });
        }
        self.conn.queue_fmt(format_args!("{}", r.on_wire()));
        if r.is_error() {
            self.errors += 1;
        }
    }

    /// Counts a refused connection, recipient or mail in the engine's counters.
    fn count_refused(&self) {
        self.deps.gate.stats().count(Counter::Refused);
    }

    /// Sends a gate refusal; a closing one ends the session after the reply.
    fn refuse(&mut self, r: Refusal) {
        self.reply(r.reply);
        if let Some(why) = r.close {
            self.close_after = Some(why.into());
        }
    }

    /// Acts on a gate decision: `Some(tags)` to go on (tags to put on the message), `None`
    /// when refused (the refusal has been sent).
    fn admit(&mut self, d: Decision) -> Option<Vec<String>> {
        match d {
            Decision::Pass => Some(Vec::new()),
            Decision::Tag(tags) => Some(tags),
            Decision::Refuse(r) => {
                self.refuse(r);
                None
            }
        }
    }

    /// True (after saying so) when the client has used up its error allowance.
    fn too_many_errors(&mut self) -> bool {
        if self.errors >= self.cur.config.smtp.max_errors_per_session {
            self.reply(reply::TOO_MANY_ERRORS);
            true
        } else {
            false
        }
    }

    /// The whole session: implicit TLS first if asked, the greeting, the command loop, and a
    /// STARTTLS upgrade when the client asks for one. Returns why it ended.
    async fn run(&mut self, implicit_tls: bool) -> String {
        if implicit_tls && let Err(e) = self.handshake().await {
            return e.to_string();
        }
        if let Some(reason) = self.greet().await {
            return reason;
        }
        loop {
            match self.command_loop().await {
                Next::StartTls => {
                    if let Err(e) = self.handshake().await {
                        return e.to_string();
                    }
                }
                Next::Close(reason) => {
                    let _ = self.conn.flush().await;
                    return reason;
                }
                Next::Continue => unreachable!("the command loop returns only to close or upgrade"),
            }
        }
    }

    /// The gate's connect checks, then `220`; `Some(reason)` when the client was refused.
    async fn greet(&mut self) -> Option<String> {
        let deps = self.deps.clone();
        let cur = self.cur.clone();
        let decision = deps.gate.connect(&cur, &self.client()).await;
        let Some(tags) = self.admit(decision) else {
            self.count_refused();
            let _ = self.conn.flush().await;
            return Some(self.close_after.take().unwrap_or_else(|| "refused".into()));
        };
        self.tags = tags;
        self.reply(reply::greeting(&cur.config.server.hostname));
        None
    }

    /// Reads and runs commands until the session closes or upgrades to TLS.
    async fn command_loop(&mut self) -> Next {
        loop {
            self.cur = self.deps.current.borrow().clone();
            let timeout = self.cur.config.smtp.timeouts.command.0;
            let shutdown = self.deps.shutdown.clone();
            let closed = self.seat.closed.clone();
            let line = tokio::select! {
                // In this order: a command already here is read; at shutdown, the shutdown
                // reply wins over the closed listener's.
                biased;
                r = self.conn.read_line(MAX_COMMAND_LINE, timeout) => r,
                _ = shutdown.cancelled() => {
                    self.reply(reply::SHUTTING_DOWN);
                    return Next::Close("server shutting down".into());
                }
                _ = closed.cancelled() => {
                    self.reply(reply::LISTENER_CLOSED);
                    return Next::Close("listener closed".into());
                }
            };
            // The configuration, role and login in force when the command arrived: a reload
            // applies here, to open sessions too.
            self.cur = self.deps.current.borrow().clone();
            self.role = *self.seat.role.borrow();
            if let Some((login, hash)) = &self.auth
                && let Decision::Refuse(r) =
                    self.deps
                        .gate
                        .login_in_force(&self.cur, &self.client(), login, hash)
            {
                self.refuse(r);
                return Next::Close(self.close_after.take().unwrap_or_default());
            }
            let next = match line {
                Ok(line) => self.command(line).await,
                Err(ReadError::TooLong) => {
                    self.log(
                        Level::Debug,
                        EventKind::Command {
                            line: "(command line over 512 octets)".into(),
                        },
                    );
                    self.reply(reply::LINE_TOO_LONG);
                    Next::Continue
                }
                Err(ReadError::Timeout) => {
                    self.reply(reply::COMMAND_TIMEOUT);
                    return Next::Close("timeout".into());
                }
                Err(ReadError::Closed) => {
                    return Next::Close("client closed the connection".into());
                }
                Err(ReadError::Io(e)) => return Next::Close(format!("read error: {e}")),
            };
            if !self.delay.is_zero() {
                tokio::time::sleep(std::mem::take(&mut self.delay)).await;
            }
            let next = match self.close_after.take() {
                Some(reason) => Next::Close(reason),
                None => next,
            };
            match next {
                Next::Continue if self.too_many_errors() => {
                    return Next::Close("too many errors".into());
                }
                Next::Continue => {}
                Next::StartTls => match self.conn.flush().await {
                    Err(e) => return Next::Close(format!("write error: {e}")),
                    Ok(()) => {
                        // Plaintext pipelined behind STARTTLS is never executed.
                        let octets = self.conn.discard_input();
                        if octets > 0 {
                            self.log(Level::Warn, EventKind::PlaintextDiscarded { octets });
                        }
                        return Next::StartTls;
                    }
                },
                close => return close,
            }
        }
    }

    /// Runs one command line.
    async fn command(&mut self, line: Vec<u8>) -> Next {
        if self.deps.events.wants(Level::Debug, Channel::SmtpIn) {
            self.log(
                Level::Debug,
                EventKind::Command {
                    line: parse::redact(&line),
                },
            );
        }
        let request = match parse_command(&line) {
            Ok(r) => r,
            Err(r) => {
                self.reply(r);
                return Next::Continue;
            }
        };
        let junk = match &request {
            Request::Noop { .. } | Request::Rset | Request::Vrfy { .. } | Request::Help { .. } => {
                true
            }
            Request::Ehlo { .. } | Request::Helo { .. } => self.helo.is_some(),
            _ => false,
        };
        if junk {
            self.junk += 1;
            if self.junk > self.cur.config.smtp.max_junk_commands {
                self.reply(reply::TOO_MANY_JUNK_COMMANDS);
                return Next::Close("too many commands without a message".into());
            }
        }
        match request {
            Request::Ehlo { host } => self.ehlo(host, true),
            Request::Helo { host } => self.ehlo(host, false),
            Request::Mail { from } => self.mail(from).await,
            Request::Rcpt { to } => self.rcpt(to),
            Request::Data => return self.data().await,
            Request::Rset => {
                self.tx = None;
                self.reply(reply::OK);
            }
            Request::Noop { .. } => self.reply(reply::OK),
            Request::Quit => {
                self.reply(reply::BYE);
                return Next::Close("QUIT".into());
            }
            Request::Help { .. } => self.reply(reply::HELP),
            Request::Vrfy { .. } => self.reply(reply::VRFY),
            Request::StartTls => return self.starttls(),
            Request::Auth {
                mechanism,
                initial_response,
            } => self.auth(mechanism, initial_response).await,
            Request::Expn { .. }
            | Request::Bdat { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. }
            | Request::Lhlo { .. } => self.reply(reply::NOT_IMPLEMENTED),
        }
        Next::Continue
    }
}
