//! One SMTP session (RFC 5321 with PIPELINING, SIZE, 8BITMIME, ENHANCEDSTATUSCODES, STARTTLS
//! and AUTH PLAIN/LOGIN), generic over the stream so tests can drive it in memory.
//!
//! Commands are parsed by smtp-proto; each verb has its own handler. The session reads the
//! current configuration at every decision, so a reload applies to open sessions too. A
//! message is answered `250` only after every local copy is fsynced.

use super::conn::{Conn, DataEnd, DataError, MAX_AUTH_LINE, MAX_COMMAND_LINE, ReadError};
use super::{Current, Role, Shared};
use crate::engine::access::relay::{self, Login, Verdict};
use crate::engine::config::normalize_domain;
use crate::engine::events::{Channel, EventKind, Level};
use crate::engine::store::{maildir, password};
use base64::Engine as _;
use smtp_proto::{AUTH_LOGIN, AUTH_PLAIN, MAIL_BODY_7BIT, MAIL_BODY_8BITMIME, Request};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// How long a TLS handshake may take.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// RFC 5321 6.3: a message that has passed this many MTAs is looping.
const MAX_HOPS: usize = 50;

/// How many `Received:` fields the header section of `msg` has.
fn received_headers(msg: &[u8]) -> usize {
    let end = msg
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(msg.len());
    msg[..end]
        .split(|&b| b == b'\n')
        .filter(|l| l.len() >= 9 && l[..9].eq_ignore_ascii_case(b"received:"))
        .count()
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

/// Serves one accepted connection from greeting to close, including a STARTTLS upgrade.
pub async fn serve<S>(io: S, peer: SocketAddr, role: Role, implicit_tls: bool, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut s = Session::new(peer, role, shared);
    s.event(
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
    let reason = if implicit_tls {
        match s.handshake(io).await {
            Ok(tls) => s.run(s.conn(tls), true).await,
            Err(reason) => reason,
        }
    } else {
        match s.run_plain(s.conn(io)).await {
            Ok(reason) => reason,
            Err(io) => match s.handshake(io).await {
                Ok(tls) => s.run(s.conn(tls), false).await,
                Err(reason) => reason,
            },
        }
    };
    s.event(Level::Info, EventKind::SessionClosed { reason });
}

/// A recipient accepted at RCPT.
#[derive(Debug, Clone)]
enum Recipient {
    /// A local account: delivered to its Maildir directly.
    Local(LocalRcpt),
    /// Another domain: queued for delivery (only for a session that may relay).
    Remote(String),
}

/// A local recipient accepted at RCPT.
#[derive(Debug, Clone)]
struct LocalRcpt {
    /// `user@domain` as stored in the account list.
    address: String,
    /// Domain part.
    domain: String,
    /// User part.
    user: String,
}

/// The mail transaction between MAIL and the end of DATA.
#[derive(Debug)]
struct Transaction {
    /// Envelope sender; empty for the null sender `<>`.
    from: String,
    /// Accepted recipients, without duplicates.
    rcpts: Vec<Recipient>,
}

/// What the command loop wants next.
enum Next {
    /// Read the next command.
    Continue,
    /// Close the connection, for this reason.
    Close(String),
    /// Hand the stream to the TLS handshake.
    StartTls,
}

/// Per-connection state.
struct Session {
    /// Session id, in every log line and in `Received:`.
    id: String,
    /// Client address.
    peer: SocketAddr,
    /// What the listener allows.
    role: Role,
    /// Engine-wide state.
    shared: Arc<Shared>,
    /// Name given in HELO/EHLO; `None` before it.
    helo: Option<String>,
    /// Whether the client used EHLO.
    esmtp: bool,
    /// TLS protocol in use, if any.
    tls: Option<String>,
    /// Authenticated login, if any.
    auth: Option<Login>,
    /// Open mail transaction.
    tx: Option<Transaction>,
    /// Error replies sent so far.
    errors: u32,
    /// Messages accepted in this session (for message ids).
    messages: u32,
    /// Recipients refused so far (tarpitting).
    rcpt_failures: u32,
    /// Warnings the abuse checks chose to tag messages with (`X-Postern-Warning:`).
    tags: Vec<String>,
    /// Set by a handler that wants the session closed after its reply.
    close_after: Option<String>,
    /// Set by a handler that wants its reply held back this long (tarpit).
    delay: Duration,
}

impl Session {
    fn new(peer: SocketAddr, role: Role, shared: Arc<Shared>) -> Self {
        Session {
            id: new_session_id(),
            peer,
            role,
            shared,
            helo: None,
            esmtp: false,
            tls: None,
            auth: None,
            tx: None,
            errors: 0,
            messages: 0,
            rcpt_failures: 0,
            tags: Vec::new(),
            close_after: None,
            delay: Duration::ZERO,
        }
    }

    /// A connection whose writes time out like commands do.
    fn conn<S: AsyncRead + AsyncWrite + Unpin>(&self, io: S) -> Conn<S> {
        let mut c = Conn::new(io);
        c.set_write_timeout(self.current().config.smtp.timeouts.command.0);
        c
    }

    /// A line for the Security log view.
    fn security_note(&self, text: String) {
        self.shared.events.session(
            Level::Warn,
            Channel::Security,
            &self.id,
            EventKind::Note { text },
        );
    }

    /// The resolver for the `what` check, or `None` (said in the log) when there is none.
    fn resolver(
        &self,
        cfg: &crate::engine::config::Config,
        what: &str,
    ) -> Option<crate::engine::dns::Resolver> {
        match self.shared.dns.get(&cfg.outgoing_mails.dns_hosts) {
            Ok(r) => Some(r),
            Err(e) => {
                self.event(
                    Level::Warn,
                    EventKind::Note {
                        text: format!("{what} skipped: {e}"),
                    },
                );
                None
            }
        }
    }

    fn current(&self) -> Arc<Current> {
        self.shared.current.borrow().clone()
    }

    fn event(&self, level: Level, kind: EventKind) {
        let channel = match kind {
            EventKind::AuthFailed { .. } | EventKind::ConnectionRefused { .. } => Channel::Security,
            _ => Channel::SmtpIn,
        };
        self.shared.events.session(level, channel, &self.id, kind);
    }

    /// Queues a one-line reply; error replies count towards the session's error limit.
    fn reply<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        conn: &mut Conn<S>,
        code: u16,
        text: &str,
    ) {
        let line = format!("{code} {text}");
        self.event(Level::Debug, EventKind::Reply { text: line.clone() });
        conn.queue(&line);
        conn.queue("\r\n");
        if code >= 400 {
            self.errors += 1;
        }
    }

    /// True (after saying so) when the client has used up its error allowance.
    fn too_many_errors<S: AsyncRead + AsyncWrite + Unpin>(&mut self, conn: &mut Conn<S>) -> bool {
        if self.errors >= self.current().config.smtp.max_errors_per_session {
            self.reply(conn, 421, "4.7.0 Too many errors, closing connection");
            true
        } else {
            false
        }
    }

    async fn handshake<S>(&mut self, io: S) -> Result<tokio_rustls::server::TlsStream<S>, String>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let Some(acceptor) = self.current().tls.clone() else {
            return Err("TLS is not available".into());
        };
        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(io)).await {
            Ok(Ok(tls)) => {
                let version = tls
                    .get_ref()
                    .1
                    .protocol_version()
                    .map(|v| format!("{v:?}"))
                    .unwrap_or_default();
                self.event(
                    Level::Info,
                    EventKind::TlsEstablished {
                        version: version.clone(),
                    },
                );
                self.tls = Some(version);
                Ok(tls)
            }
            Ok(Err(e)) => Err(format!("TLS handshake failed: {e}")),
            Err(_) => Err("TLS handshake timed out".into()),
        }
    }

    /// Runs a plaintext session; `Err(stream)` means STARTTLS was accepted.
    async fn run_plain<S>(&mut self, conn: Conn<S>) -> Result<String, S>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut conn = conn;
        match self.command_loop(&mut conn, true).await {
            Next::StartTls => Err(conn.into_inner()),
            Next::Close(reason) => Ok(reason),
            Next::Continue => unreachable!("the command loop only returns to close or upgrade"),
        }
    }

    /// Runs a session over TLS (after STARTTLS, or on the implicit-TLS port).
    async fn run<S>(&mut self, mut conn: Conn<S>, greet: bool) -> String
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        match self.command_loop(&mut conn, greet).await {
            Next::Close(reason) => reason,
            _ => "closed".into(),
        }
    }

    async fn command_loop<S>(&mut self, conn: &mut Conn<S>, greet: bool) -> Next
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        if greet {
            let cur = self.current();
            if let Some(why) = relay::refuse_at_connect(self.role, self.peer.ip(), &cur.config) {
                self.shared.events.session(
                    Level::Warn,
                    Channel::Security,
                    &self.id,
                    EventKind::ConnectionRefused {
                        peer: self.peer,
                        reason: why.into(),
                    },
                );
                self.reply(conn, 554, &format!("5.7.1 {why}"));
                let _ = conn.flush().await;
                return Next::Close("refused by access control".into());
            }
            if let Some(refusal) = self.dnsbl(&cur).await {
                self.reply(conn, refusal.0, &refusal.1);
                let _ = conn.flush().await;
                return Next::Close("listed in DNS block lists".into());
            }
            let host = cur.config.server.hostname.clone();
            self.reply(conn, 220, &format!("{host} ESMTP Postern"));
        }
        loop {
            let timeout = self.current().config.smtp.timeouts.command.0;
            let shutdown = self.shared.shutdown.clone();
            let line = tokio::select! {
                r = conn.read_line(MAX_COMMAND_LINE, timeout) => r,
                _ = shutdown.cancelled() => {
                    self.reply(conn, 421, "4.3.2 Service shutting down, closing connection");
                    let _ = conn.flush().await;
                    return Next::Close("server shutting down".into());
                }
            };
            let line = match line {
                Ok(l) => l,
                Err(ReadError::TooLong) => {
                    self.event(
                        Level::Debug,
                        EventKind::Command {
                            line: "(command line over 512 octets)".into(),
                        },
                    );
                    self.reply(conn, 500, "5.5.2 Line too long");
                    if self.too_many_errors(conn) {
                        let _ = conn.flush().await;
                        return Next::Close("too many errors".into());
                    }
                    continue;
                }
                Err(ReadError::Timeout) => {
                    self.reply(
                        conn,
                        421,
                        "4.4.2 Timeout waiting for a command, closing connection",
                    );
                    let _ = conn.flush().await;
                    return Next::Close("timeout".into());
                }
                Err(ReadError::Closed) => {
                    return Next::Close("client closed the connection".into());
                }
                Err(ReadError::Io(e)) => return Next::Close(format!("read error: {e}")),
            };
            let next = self.command(conn, line).await;
            if !self.delay.is_zero() {
                tokio::time::sleep(std::mem::take(&mut self.delay)).await;
            }
            let next = match self.close_after.take() {
                Some(reason) => Next::Close(reason),
                None => next,
            };
            let next = match next {
                Next::Continue if self.too_many_errors(conn) => {
                    Next::Close("too many errors".into())
                }
                other => other,
            };
            match next {
                Next::Continue => {}
                Next::Close(reason) => {
                    let _ = conn.flush().await;
                    return Next::Close(reason);
                }
                Next::StartTls => {
                    if let Err(e) = conn.flush().await {
                        return Next::Close(format!("write error: {e}"));
                    }
                    let dropped = conn.discard_input();
                    if dropped > 0 {
                        self.event(Level::Warn, EventKind::Note {
                            text: format!("discarded {dropped} octets the client sent after STARTTLS before the TLS handshake"),
                        });
                    }
                    return Next::StartTls;
                }
            }
        }
    }

    async fn command<S>(&mut self, conn: &mut Conn<S>, line: Vec<u8>) -> Next
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let shown = redact(&line);
        self.event(Level::Debug, EventKind::Command { line: shown });
        let request = match parse_command(&line) {
            Ok(r) => r,
            Err((code, text)) => {
                self.reply(conn, code, &text);
                return Next::Continue;
            }
        };
        match request {
            Request::Ehlo { host } => self.ehlo(conn, host, true),
            Request::Helo { host } => self.ehlo(conn, host, false),
            Request::Mail { from } => {
                if let Some((code, text)) = self.mail_checks(&from).await {
                    self.reply(conn, code, &text);
                } else {
                    self.mail(conn, from);
                }
            }
            Request::Rcpt { to } => self.rcpt(conn, to),
            Request::Data => return self.data(conn).await,
            Request::Rset => {
                self.tx = None;
                self.reply(conn, 250, "2.0.0 OK");
            }
            Request::Noop { .. } => self.reply(conn, 250, "2.0.0 OK"),
            Request::Quit => {
                self.reply(conn, 221, "2.0.0 Bye");
                return Next::Close("QUIT".into());
            }
            Request::Help { .. } => self.reply(
                conn,
                214,
                "2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT HELP VRFY STARTTLS AUTH",
            ),
            Request::Vrfy { .. } => self.reply(
                conn,
                252,
                "2.5.0 Cannot VRFY user, but will accept message and attempt delivery",
            ),
            Request::StartTls => return self.starttls(conn),
            Request::Auth {
                mechanism,
                initial_response,
            } => {
                self.auth(conn, mechanism, initial_response).await;
            }
            Request::Expn { .. }
            | Request::Bdat { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. }
            | Request::Lhlo { .. } => self.reply(conn, 502, "5.5.1 Command not implemented"),
        }
        Next::Continue
    }

    fn ehlo<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        conn: &mut Conn<S>,
        host: String,
        esmtp: bool,
    ) {
        if host.trim().is_empty() {
            self.reply(conn, 501, "5.5.4 Syntax: EHLO hostname");
            return;
        }
        self.tx = None;
        self.helo = Some(host.clone());
        self.esmtp = esmtp;
        let cur = self.current();
        let cfg = &cur.config;
        if !esmtp {
            self.reply(
                conn,
                250,
                &format!("{} Hello {host} [{}]", cfg.server.hostname, self.peer.ip()),
            );
            return;
        }
        let mut lines = vec![
            format!("{} Hello {host} [{}]", cfg.server.hostname, self.peer.ip()),
            "PIPELINING".to_string(),
            format!("SIZE {}", cfg.smtp.max_message_size),
            "8BITMIME".to_string(),
            "ENHANCEDSTATUSCODES".to_string(),
        ];
        if self.tls.is_none() && cur.tls.is_some() {
            lines.push("STARTTLS".into());
        }
        if self.auth_allowed(cfg) {
            lines.push("AUTH PLAIN LOGIN".into());
        }
        lines.push("HELP".into());
        let n = lines.len();
        let mut text = String::new();
        for (i, l) in lines.iter().enumerate() {
            text.push_str(&format!("250{}{l}\r\n", if i + 1 == n { ' ' } else { '-' }));
        }
        self.event(
            Level::Debug,
            EventKind::Reply {
                text: lines.join(" / "),
            },
        );
        conn.queue(&text);
    }

    fn auth_allowed(&self, cfg: &crate::engine::config::Config) -> bool {
        self.tls.is_some() || !cfg.smtp.tls.auth_requires_tls
    }

    fn mail<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        conn: &mut Conn<S>,
        from: smtp_proto::MailFrom<String>,
    ) {
        if self.helo.is_none() {
            return self.reply(conn, 503, "5.5.1 Send HELO or EHLO first");
        }
        if self.tx.is_some() {
            return self.reply(conn, 503, "5.5.1 Nested MAIL command");
        }
        let unsupported = from.flags & !(MAIL_BODY_7BIT | MAIL_BODY_8BITMIME) != 0
            || from.env_id.is_some()
            || from.trans_id.is_some()
            || from.by != 0
            || from.hold_for != 0
            || from.hold_until != 0
            || from.mtrk.is_some()
            || from.solicit.is_some()
            || from.mt_priority != 0;
        if unsupported {
            return self.reply(conn, 555, "5.5.4 MAIL parameter not supported");
        }
        if !self.esmtp && from.flags != 0 {
            return self.reply(conn, 555, "5.5.4 MAIL parameters need EHLO");
        }
        let cur = self.current();
        if cur.config.access.sender_must_match_login
            && let Some(Login::Account(user)) = &self.auth
            && crate::engine::config::normalize_address(&from.address) != *user
        {
            self.event(
                Level::Warn,
                EventKind::Note {
                    text: format!("sender <{}> refused: logged in as {user}", from.address),
                },
            );
            return self.reply(
                conn,
                553,
                "5.7.1 Sender address does not belong to the logged-in user",
            );
        }
        let max = cur.config.smtp.max_message_size;
        if from.size as u64 > max {
            return self.reply(
                conn,
                552,
                &format!("5.3.4 Message size exceeds fixed maximum message size ({max} octets)"),
            );
        }
        self.tx = Some(Transaction {
            from: from.address,
            rcpts: Vec::new(),
        });
        self.reply(conn, 250, "2.1.0 Sender OK");
    }

    fn rcpt<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        conn: &mut Conn<S>,
        to: smtp_proto::RcptTo<String>,
    ) {
        let cur = self.current();
        let cfg = &cur.config;
        let Some(tx) = self.tx.as_ref() else {
            return self.reply(conn, 503, "5.5.1 Need MAIL command first");
        };
        if to.flags != 0 || to.orcpt.is_some() || to.rrvs != 0 {
            return self.reply(conn, 555, "5.5.4 RCPT parameter not supported");
        }
        if tx.rcpts.len() >= cfg.smtp.max_recipients_per_mail as usize {
            return self.reply(conn, 452, "4.5.3 Too many recipients");
        }
        // smtp-proto gives `<postmaster>` (no domain) as an empty address.
        let address = if to.address.is_empty() {
            match cfg
                .domains
                .iter()
                .find(|d| cfg.account(&format!("postmaster@{d}")).is_some())
            {
                Some(d) => format!("postmaster@{d}"),
                None => {
                    return self.refuse_rcpt(
                        conn,
                        "postmaster",
                        550,
                        "5.1.1 No postmaster mailbox here",
                        "no postmaster account",
                    );
                }
            }
        } else {
            to.address
        };
        let Some((user, domain)) = address.rsplit_once('@') else {
            return self.refuse_rcpt(
                conn,
                &address,
                501,
                "5.1.3 Bad recipient address syntax",
                "no domain",
            );
        };
        if !cfg.is_local_domain(domain) {
            return match relay::may_relay(self.role, self.peer.ip(), self.auth.as_ref(), cfg) {
                Verdict::Deny(why) => {
                    self.shared.events.session(
                        Level::Warn,
                        Channel::Security,
                        &self.id,
                        EventKind::RecipientRejected {
                            rcpt: address.clone(),
                            reason: format!("relaying denied: {why}"),
                        },
                    );
                    self.reply(conn, 550, "5.7.1 Relaying denied");
                    self.rcpt_failed(conn)
                }
                Verdict::Allow(why) => {
                    let remote =
                        relay::forward_path(&format!("{user}@{}", normalize_domain(domain)));
                    self.event(
                        Level::Info,
                        EventKind::Note {
                            text: format!("relaying to <{remote}> allowed: {why}"),
                        },
                    );
                    let tx = self.tx.as_mut().expect("checked above");
                    if !tx
                        .rcpts
                        .iter()
                        .any(|r| matches!(r, Recipient::Remote(a) if *a == remote))
                    {
                        tx.rcpts.push(Recipient::Remote(remote));
                    }
                    self.reply(conn, 250, "2.1.5 Recipient OK")
                }
            };
        }
        let Some(account) = cfg.account(&format!("{user}@{domain}")) else {
            return self.refuse_rcpt(
                conn,
                &address,
                550,
                "5.1.1 User unknown in local recipient table",
                "no such local account",
            );
        };
        let (user, domain) = account
            .address
            .rsplit_once('@')
            .expect("validated account address");
        let rcpt = LocalRcpt {
            address: account.address.clone(),
            domain: normalize_domain(domain),
            user: user.to_string(),
        };
        let tx = self.tx.as_mut().expect("checked above");
        if !tx
            .rcpts
            .iter()
            .any(|r| matches!(r, Recipient::Local(l) if l.address == rcpt.address))
        {
            tx.rcpts.push(Recipient::Local(rcpt));
        }
        self.reply(conn, 250, "2.1.5 Recipient OK");
    }

    fn refuse_rcpt<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        conn: &mut Conn<S>,
        rcpt: &str,
        code: u16,
        text: &str,
        reason: &str,
    ) {
        self.event(
            Level::Info,
            EventKind::RecipientRejected {
                rcpt: rcpt.to_string(),
                reason: reason.to_string(),
            },
        );
        self.reply(conn, code, text);
        self.rcpt_failed(conn);
    }

    /// Tarpitting: a refused recipient slows the session down and, past the threshold,
    /// blocks the client's address.
    fn rcpt_failed<S: AsyncRead + AsyncWrite + Unpin>(&mut self, conn: &mut Conn<S>) {
        self.rcpt_failures += 1;
        let cur = self.current();
        if crate::engine::access::is_safe_ip(self.peer.ip(), &cur.config) {
            return;
        }
        let (delay, block) =
            self.shared
                .abuse
                .rcpt_failed(self.peer.ip(), self.rcpt_failures, &cur.config);
        self.delay = delay;
        if let Some(r) = block {
            self.security_note(format!("blocked: {}", r.reason));
            self.reply(conn, r.code, &r.text);
            self.close_after = Some("blocked by tarpitting".into());
        }
    }

    /// Checks at MAIL: an address under a block, then SPF and reverse DNS (each off, refuse,
    /// or tag). Safe IPs and logged-in clients are not checked.
    async fn mail_checks(&mut self, from: &smtp_proto::MailFrom<String>) -> Option<(u16, String)> {
        let cur = self.current();
        let cfg = &cur.config;
        let ip = self.peer.ip();
        if crate::engine::access::is_safe_ip(ip, cfg) || self.helo.is_none() || self.tx.is_some() {
            return None;
        }
        if let Some(r) = self.shared.abuse.blocked(ip, cfg) {
            self.security_note(format!("MAIL refused: {}", r.reason));
            return Some((r.code, r.text));
        }
        if self.auth.is_some() || !(cfg.abuse.spf.enabled || cfg.abuse.rdns.enabled) {
            return None;
        }
        let resolver = self.resolver(cfg, "SPF/rDNS checks")?;
        let helo = self.helo.clone().unwrap_or_default();
        if cfg.abuse.rdns.enabled
            && let Err(why) = crate::engine::access::rdns::rdns_check(&resolver, ip, &helo).await
        {
            self.security_note(format!("reverse DNS check failed: {why}"));
            match cfg.abuse.rdns.action {
                crate::engine::config::Action::Refuse => {
                    return Some((550, format!("5.7.25 Reverse DNS check failed: {why}")));
                }
                crate::engine::config::Action::Tag => {
                    self.tags.push(format!("reverse DNS check failed: {why}"))
                }
            }
        }
        if cfg.abuse.spf.enabled {
            let domain = from
                .address
                .rsplit_once('@')
                .map(|(_, d)| d.to_string())
                .unwrap_or_else(|| helo.clone());
            let out =
                crate::engine::access::spf::check(&resolver, ip, &domain, &from.address, &helo)
                    .await;
            use crate::engine::access::spf::SpfResult;
            if out.result == SpfResult::Fail {
                self.security_note(format!("SPF fail: {}", out.reason));
                match cfg.abuse.spf.action {
                    crate::engine::config::Action::Refuse => {
                        return Some((
                            550,
                            format!("5.7.23 SPF check failed for {domain}: {}", out.reason),
                        ));
                    }
                    crate::engine::config::Action::Tag => {
                        self.tags.push(format!("SPF fail: {}", out.reason))
                    }
                }
            } else {
                self.event(
                    Level::Debug,
                    EventKind::Note {
                        text: format!("SPF {}: {}", out.result, out.reason),
                    },
                );
            }
        }
        None
    }

    /// DNSBL check at connect: `Some(reply)` when the client must be refused.
    async fn dnsbl(&mut self, cur: &Current) -> Option<(u16, String)> {
        let cfg = &cur.config;
        let rbl = &cfg.abuse.rbl;
        let ip = self.peer.ip();
        if !rbl.enabled || rbl.zones.is_empty() || crate::engine::access::is_safe_ip(ip, cfg) {
            return None;
        }
        let resolver = self.resolver(cfg, "DNSBL check")?;
        let (listed, warnings) =
            crate::engine::access::dnsbl::listed_in(&resolver, ip, &rbl.zones).await;
        for w in warnings {
            self.event(Level::Warn, EventKind::Note { text: w });
        }
        if listed.is_empty() || (listed.len() as u32) < rbl.trigger {
            return None;
        }
        let zones = listed.join(", ");
        self.security_note(format!("{ip} listed in {zones}"));
        match rbl.action {
            crate::engine::config::Action::Refuse => Some((
                554,
                format!("5.7.1 Service unavailable; client [{ip}] is listed in {zones}"),
            )),
            crate::engine::config::Action::Tag => {
                self.tags
                    .push(format!("client [{ip}] is listed in {zones}"));
                None
            }
        }
    }

    async fn data<S: AsyncRead + AsyncWrite + Unpin>(&mut self, conn: &mut Conn<S>) -> Next {
        match &self.tx {
            None => {
                self.reply(conn, 503, "5.5.1 Need MAIL command first");
                return Next::Continue;
            }
            Some(tx) if tx.rcpts.is_empty() => {
                self.reply(
                    conn,
                    503,
                    "5.5.1 Need RCPT command first (no valid recipients)",
                );
                return Next::Continue;
            }
            Some(_) => {}
        }
        let cur = self.current();
        let limits = &cur.config.smtp;
        self.reply(conn, 354, "End data with <CR><LF>.<CR><LF>");
        let end = conn
            .read_data(
                limits.max_message_size as usize,
                limits.timeouts.data.0,
                limits.min_data_rate,
            )
            .await;
        let tx = self.tx.take().expect("checked above");
        match end {
            Err(DataError::BareLineEnding) => {
                self.event(
                    Level::Warn,
                    EventKind::MessageRejected {
                        reason: "bare CR or LF in message data (possible SMTP smuggling)".into(),
                    },
                );
                self.reply(conn, 521, "5.5.2 Bare CR or LF in message data is not allowed (RFC 5321 2.3.8), closing connection");
                Next::Close("bare CR or LF in DATA".into())
            }
            Err(DataError::Read(ReadError::Timeout)) => {
                self.reply(
                    conn,
                    421,
                    "4.4.2 Timeout waiting for message data, closing connection",
                );
                Next::Close("timeout in DATA".into())
            }
            Err(DataError::Read(e)) => Next::Close(format!("during DATA: {e}")),
            Ok(DataEnd::TooBig) => {
                self.event(
                    Level::Info,
                    EventKind::MessageRejected {
                        reason: "too big".into(),
                    },
                );
                let max = limits.max_message_size;
                self.reply(
                    conn,
                    552,
                    &format!(
                        "5.3.4 Message size exceeds fixed maximum message size ({max} octets)"
                    ),
                );
                Next::Continue
            }
            Ok(DataEnd::LineTooLong) => {
                self.event(
                    Level::Info,
                    EventKind::MessageRejected {
                        reason: "a line over 1000 octets".into(),
                    },
                );
                self.reply(
                    conn,
                    500,
                    "5.5.2 Message has a line longer than 1000 octets",
                );
                Next::Continue
            }
            Ok(DataEnd::Complete(mut body)) => {
                if received_headers(&body) >= MAX_HOPS {
                    self.event(
                        Level::Warn,
                        EventKind::MessageRejected {
                            reason: format!("more than {MAX_HOPS} Received headers (mail loop)"),
                        },
                    );
                    self.reply(conn, 554, "5.4.6 Too many hops (mail loop?)");
                    return Next::Continue;
                }
                let ip = self.peer.ip();
                if !crate::engine::access::is_safe_ip(ip, &cur.config)
                    && let Err(r) = self
                        .shared
                        .abuse
                        .transfer(ip, body.len() as u64, &cur.config)
                {
                    self.shared.events.session(
                        Level::Warn,
                        Channel::Security,
                        &self.id,
                        EventKind::MessageRejected {
                            reason: r.reason.clone(),
                        },
                    );
                    self.reply(conn, r.code, &r.text);
                    return Next::Continue;
                }
                if !self.tags.is_empty() {
                    let mut tagged: Vec<u8> = self
                        .tags
                        .iter()
                        .flat_map(|t| {
                            format!("X-Postern-Warning: {}\r\n", sanitize(t)).into_bytes()
                        })
                        .collect();
                    tagged.extend_from_slice(&body);
                    body = tagged;
                }
                self.deliver(conn, &cur, tx, body).await;
                Next::Continue
            }
        }
    }

    /// The `Received:` header for this message; `for` names the recipient when there is one.
    fn received(&self, host: &str, id: &str, for_rcpt: Option<&str>) -> String {
        let date = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_default();
        let proto = match (self.esmtp, self.tls.is_some(), self.auth.is_some()) {
            (false, _, _) => "SMTP",
            (true, false, false) => "ESMTP",
            (true, true, false) => "ESMTPS",
            (true, false, true) => "ESMTPA",
            (true, true, true) => "ESMTPSA",
        };
        let ip = match self.peer.ip() {
            std::net::IpAddr::V4(v4) => v4.to_string(),
            std::net::IpAddr::V6(v6) => format!("IPv6:{v6}"),
        };
        let helo = sanitize(self.helo.as_deref().unwrap_or_default());
        let to = for_rcpt
            .map(|r| format!("\r\n\tfor <{r}>"))
            .unwrap_or_default();
        format!(
            "Received: from {helo} ([{ip}])\r\n\tby {host} (Postern) with {proto} id {id}{to};\r\n\t{date}\r\n"
        )
    }

    /// Puts the message where it goes: remote recipients into the queue first (synced to disk),
    /// then local recipients into their Maildirs; `250` only when both are safe. If the local
    /// part fails, the queued copy is taken back so a retry by the client cannot duplicate it.
    async fn deliver<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        conn: &mut Conn<S>,
        cur: &Current,
        tx: Transaction,
        body: Vec<u8>,
    ) {
        self.messages += 1;
        let msg_id = format!("{}.{}", self.id, self.messages);
        let host = cur.config.server.hostname.clone();
        let size = body.len();
        let locals: Vec<&LocalRcpt> = tx
            .rcpts
            .iter()
            .filter_map(|r| match r {
                Recipient::Local(l) => Some(l),
                _ => None,
            })
            .collect();
        let remotes: Vec<String> = tx
            .rcpts
            .iter()
            .filter_map(|r| match r {
                Recipient::Remote(a) => Some(a.clone()),
                _ => None,
            })
            .collect();

        let mut queued = None;
        if !remotes.is_empty() {
            let one = (remotes.len() == 1).then(|| remotes[0].as_str());
            let mut data = self.received(&host, &msg_id, one).into_bytes();
            data.extend_from_slice(&body);
            match self
                .shared
                .queue
                .enqueue(&tx.from, &remotes, data, &self.peer.ip().to_string())
                .await
            {
                Ok(qid) => queued = Some(qid),
                Err(e) => {
                    self.event(
                        Level::Error,
                        EventKind::MessageRejected {
                            reason: format!("cannot write to the queue: {e}"),
                        },
                    );
                    return self.reply(
                        conn,
                        452,
                        "4.3.1 Insufficient system storage, try again later",
                    );
                }
            }
        }
        if !locals.is_empty() {
            let boxes: Vec<maildir::Recipient> = locals
                .iter()
                .map(|r| {
                    let mut headers = format!(
                        "Return-Path: <{}>\r\nDelivered-To: {}\r\n",
                        tx.from, r.address
                    );
                    headers.push_str(&self.received(&host, &msg_id, Some(&r.address)));
                    maildir::Recipient {
                        domain: r.domain.clone(),
                        user: r.user.clone(),
                        headers: headers.into_bytes(),
                    }
                })
                .collect();
            let root = self.shared.mailroot.clone();
            let h = host.clone();
            let result =
                tokio::task::spawn_blocking(move || maildir::deliver(&root, &h, &boxes, &body))
                    .await;
            let failure = match result {
                Ok(Ok(_)) => None,
                Ok(Err(e)) => Some(format!("cannot write to the mailbox: {e}")),
                Err(e) => Some(format!("delivery task failed: {e}")),
            };
            if let Some(reason) = failure {
                if let Some(qid) = queued {
                    self.shared.queue.forget(qid).await;
                }
                self.event(Level::Error, EventKind::MessageRejected { reason });
                return self.reply(
                    conn,
                    452,
                    "4.3.1 Insufficient system storage, try again later",
                );
            }
        }
        self.shared.stats.delivered_local(locals.len());
        let mut to: Vec<String> = locals.iter().map(|r| r.address.clone()).collect();
        to.extend(remotes.iter().cloned());
        self.event(
            Level::Info,
            EventKind::Delivered {
                id: msg_id.clone(),
                from: tx.from.clone(),
                to,
                size,
            },
        );
        match queued {
            Some(qid) => {
                let qid = crate::engine::queue::id_text(qid);
                self.reply(conn, 250, &format!("2.0.0 Ok: queued as {qid}"))
            }
            None => self.reply(conn, 250, &format!("2.0.0 Ok: delivered as {msg_id}")),
        }
    }

    fn starttls<S: AsyncRead + AsyncWrite + Unpin>(&mut self, conn: &mut Conn<S>) -> Next {
        if self.tls.is_some() {
            self.reply(conn, 503, "5.5.1 TLS already active");
            return Next::Continue;
        }
        if self.current().tls.is_none() {
            self.reply(conn, 454, "4.7.0 TLS not available");
            return Next::Continue;
        }
        self.reply(conn, 220, "2.0.0 Ready to start TLS");
        // RFC 3207 4.2: forget everything learnt before TLS.
        self.helo = None;
        self.esmtp = false;
        self.tx = None;
        self.auth = None;
        Next::StartTls
    }

    async fn auth<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        conn: &mut Conn<S>,
        mechanism: u64,
        initial: String,
    ) {
        let cfg = self.current().config.clone();
        if self.helo.is_none() {
            return self.reply(conn, 503, "5.5.1 Send EHLO first");
        }
        if self.auth.is_some() {
            return self.reply(conn, 503, "5.5.1 Already authenticated");
        }
        if self.tx.is_some() {
            return self.reply(
                conn,
                503,
                "5.5.1 AUTH not permitted during a mail transaction",
            );
        }
        if !self.auth_allowed(&cfg) {
            return self.reply(
                conn,
                538,
                "5.7.11 Encryption required for requested authentication mechanism",
            );
        }
        let ip = self.peer.ip();
        let safe = crate::engine::access::is_safe_ip(ip, &cfg);
        if !safe && let Some(r) = self.shared.abuse.blocked(ip, &cfg) {
            self.security_note(format!("AUTH refused: {}", r.reason));
            self.reply(conn, r.code, &r.text);
            self.close_after = Some("blocked (failed logins)".into());
            return;
        }
        let credentials = match mechanism {
            AUTH_PLAIN => self.auth_plain(conn, initial).await,
            AUTH_LOGIN => self.auth_login(conn, initial).await,
            _ => return self.reply(conn, 504, "5.5.4 Unrecognized authentication type"),
        };
        let (user, pass) = match credentials {
            Ok(c) => c,
            Err((code, text)) => return self.reply(conn, code, text),
        };
        // A local account, or the single Allow Only The Following relay user.
        let sa = &cfg.access.smtp_auth;
        let (stored, login) = match cfg.account(&user) {
            Some(acc) => (
                Some(acc.password.clone()),
                Login::Account(acc.address.clone()),
            ),
            None if sa.enabled
                && !sa.allow_any_account
                && !sa.only_user.is_empty()
                && user == sa.only_user =>
            {
                (
                    Some(sa.only_password.clone()),
                    Login::RelayUser(user.clone()),
                )
            }
            None => (None, Login::Account(user.clone())),
        };
        let ok = tokio::task::spawn_blocking(move || match stored {
            Some(hash) => password::verify(&hash, &pass),
            None => {
                password::verify(password::decoy(), &pass);
                false
            }
        })
        .await
        .unwrap_or(false);
        if ok {
            self.event(Level::Info, EventKind::AuthSucceeded { user: user.clone() });
            self.auth = Some(login);
            self.reply(conn, 235, "2.7.0 Authentication successful");
        } else {
            self.event(Level::Warn, EventKind::AuthFailed { user });
            self.reply(conn, 535, "5.7.8 Authentication credentials invalid");
            if !safe && let Some(r) = self.shared.abuse.auth_failed(ip, &cfg) {
                self.security_note(format!("locked out: {}", r.reason));
                self.reply(conn, r.code, &r.text);
                self.close_after = Some("locked out after failed logins".into());
            }
        }
    }

    /// Reads one AUTH continuation line; `*` cancels.
    async fn auth_line<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        conn: &mut Conn<S>,
        prompt: &str,
    ) -> Result<Vec<u8>, (u16, &'static str)> {
        conn.queue(&format!("334 {prompt}\r\n"));
        let timeout = self.current().config.smtp.timeouts.command.0;
        let line = conn
            .read_line(MAX_AUTH_LINE, timeout)
            .await
            .map_err(|_| (501, "5.5.2 Cannot read authentication data"))?;
        if line == b"*" {
            return Err((501, "5.0.0 Authentication cancelled"));
        }
        decode64(&line)
    }

    async fn auth_plain<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        conn: &mut Conn<S>,
        initial: String,
    ) -> Result<(String, String), (u16, &'static str)> {
        let raw = if initial.is_empty() {
            self.auth_line(conn, "").await?
        } else if initial == "=" {
            Vec::new()
        } else {
            decode64(initial.as_bytes())?
        };
        let mut parts = raw.split(|&b| b == 0);
        let (_authz, user, pass) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(z), Some(u), Some(p), None) => (z, u, p),
            _ => return Err((501, "5.5.2 Malformed PLAIN response")),
        };
        utf8_pair(user, pass)
    }

    async fn auth_login<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        conn: &mut Conn<S>,
        initial: String,
    ) -> Result<(String, String), (u16, &'static str)> {
        let user = if initial.is_empty() {
            self.auth_line(conn, "VXNlcm5hbWU6").await?
        } else {
            decode64(initial.as_bytes())?
        };
        let pass = self.auth_line(conn, "UGFzc3dvcmQ6").await?;
        utf8_pair(&user, &pass)
    }
}

fn decode64(b: &[u8]) -> Result<Vec<u8>, (u16, &'static str)> {
    base64::engine::general_purpose::STANDARD
        .decode(b)
        .map_err(|_| (501, "5.5.2 Invalid base64 data"))
}

fn utf8_pair(user: &[u8], pass: &[u8]) -> Result<(String, String), (u16, &'static str)> {
    match (std::str::from_utf8(user), std::str::from_utf8(pass)) {
        (Ok(u), Ok(p)) => Ok((u.to_string(), p.to_string())),
        _ => Err((501, "5.5.2 Credentials are not UTF-8")),
    }
}

/// The command as it may appear in a log: AUTH data is replaced, control bytes escaped.
fn redact(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let mut words = text.split_ascii_whitespace();
    if words.next().is_some_and(|w| w.eq_ignore_ascii_case("AUTH")) {
        return match words.next() {
            Some(mech) => format!("AUTH {mech} ****"),
            None => "AUTH".into(),
        };
    }
    sanitize(&text)
}

/// Printable ASCII only (for logs and the Received header).
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(200)
        .collect()
}

/// Parses one command line (without its CRLF) as the session does. Besides smtp-proto's
/// syntax: a CR inside the line is refused (smtp-proto would drop it inside a path, changing
/// the address); MAIL and RCPT paths must be mailboxes (printable ASCII, a domain name, as no
/// SMTPUTF8 is offered); the sender comes back in forward-path form (local part re-quoted when
/// it is not a dot-atom), as it will be written to the next hop.
pub fn parse_command(line: &[u8]) -> Result<Request<String>, (u16, String)> {
    if line.contains(&b'\r') {
        return Err((500, "5.5.2 Bare CR in command line".into()));
    }
    let mut l = Vec::with_capacity(line.len() + 2);
    l.extend_from_slice(line);
    l.extend_from_slice(b"\r\n");
    let request = Request::parse(&mut l.iter())
        .map_err(|e| parse_error_reply(&e))?
        .into_owned();
    match request {
        Request::Mail { mut from } => {
            if !from.address.is_empty() {
                if let Err(why) = mailbox_error(&from.address) {
                    return Err((553, format!("5.1.7 Bad sender address: {why}")));
                }
                from.address = relay::forward_path(&from.address);
            }
            Ok(Request::Mail { from })
        }
        Request::Rcpt { to } => {
            if !to.address.is_empty()
                && let Err(why) = mailbox_error(&to.address)
            {
                return Err((553, format!("5.1.3 Bad recipient address: {why}")));
            }
            Ok(Request::Rcpt { to })
        }
        other => Ok(other),
    }
}

/// Why `address` (as smtp-proto gives it: unquoted) is not a mailbox we handle, if it is not.
fn mailbox_error(address: &str) -> Result<(), &'static str> {
    let (local, domain) = address.rsplit_once('@').ok_or("no domain")?;
    if !address.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err("only printable ASCII is accepted (no SMTPUTF8)");
    }
    if local.is_empty() || local.len() > 64 {
        return Err("the local part must have 1 to 64 characters");
    }
    if !crate::engine::config::validate::is_hostname(domain) {
        return Err("the domain is not a domain name");
    }
    Ok(())
}

/// The reply for a command smtp-proto could not parse.
fn parse_error_reply(e: &smtp_proto::Error) -> (u16, String) {
    use smtp_proto::Error::*;
    match e {
        UnknownCommand => (500, "5.5.2 Command unrecognized".into()),
        InvalidSenderAddress => (501, "5.1.7 Bad sender address syntax".into()),
        InvalidRecipientAddress => (501, "5.1.3 Bad recipient address syntax".into()),
        SyntaxError { syntax } => (501, format!("5.5.4 Syntax: {syntax}")),
        InvalidParameter { param } => (501, format!("5.5.4 Invalid parameter {param}")),
        UnsupportedParameter { param } => (
            555,
            format!("5.5.4 Unsupported parameter {}", sanitize(param)),
        ),
        _ => (501, "5.5.4 Syntax error".into()),
    }
}
