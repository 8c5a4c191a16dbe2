//! One POP3 session, from greeting to close: AUTHORIZATION (CAPA, STLS, USER/PASS, AUTH
//! PLAIN), TRANSACTION over the account's INBOX (STAT, LIST, UIDL, TOP, RETR, DELE, RSET,
//! NOOP) and, at QUIT, UPDATE: the messages marked deleted are removed and the retrieved ones
//! flagged seen. A session that ends any other way changes nothing (RFC 1939).
//!
//! The message list is scanned once at login (RFC 1939: the maildrop does not change under
//! a session); mail delivered meanwhile shows in the next session. Messages are read from
//! disk in 64 KiB chunks and sent as they are read, dot-stuffed and with CRLF line ends.
//! UIDLs are the IMAP UID and UIDVALIDITY (Dovecot's `%08Xu%08Xv`), so they survive restarts.

use super::parse::{self, Command};
use super::{BusyGuard, Deps, reply};
use crate::engine::access::MailboxLogin;
use crate::engine::current::Current;
use crate::engine::delivery::data::Encoder;
use crate::engine::events::{EventKind, Level};
use crate::engine::listener::{self, Io, Seat, Stream, new_session_id};
use crate::engine::store::mailbox::{self, Folder, Message};
use crate::engine::tls::HandshakeError;
use crate::engine::wire::{ReadError, Wire};
use base64::Engine as _;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Longest command line (RFC 2449 says 255 octets; AUTH with SASL-IR may need more).
pub const MAX_LINE: usize = 1024;
/// Longest AUTH continuation line.
const MAX_AUTH_LINE: usize = 12288;
/// Bad commands after which the session is closed.
pub const MAX_ERRORS: u32 = 10;
/// Commands a session may send besides two per message (RETR and DELE of each).
const SPARE_COMMANDS: usize = 1000;
/// Octets read from a message file at a time.
const CHUNK: usize = 64 * 1024;

/// Serves one accepted connection.
pub async fn serve<S: Stream + 'static>(io: S, peer: SocketAddr, seat: Seat, deps: Arc<Deps>) {
    let cur = deps.current.borrow().clone();
    let mut s = Session {
        wire: Wire::new(Box::new(io)),
        id: new_session_id(),
        peer,
        cur,
        seat,
        deps,
        tls: None,
        user: None,
        mailbox: None,
        errors: 0,
        commands: 0,
    };
    let on = if s.seat.implicit_tls {
        "POP3 (implicit TLS)"
    } else {
        "POP3"
    };
    s.log(Level::Info, format!("connect from {peer} on {on}"));
    let reason = s.run().await;
    s.log(Level::Info, format!("disconnect ({reason})"));
}

/// One message as this session sees it.
struct Entry {
    /// The file, UID and size.
    message: Message,
    /// Marked by DELE (undone by RSET).
    deleted: bool,
    /// Sent whole by RETR: flagged seen at UPDATE.
    retrieved: bool,
}

/// The TRANSACTION state: the account's INBOX as listed at login.
struct Mailbox {
    /// The account, for the exclusive lock and the login check.
    address: String,
    /// The password hash the login was checked against.
    hash: String,
    /// INBOX.
    folder: Folder,
    /// For the UIDLs.
    uidvalidity: u32,
    /// Message number n is `entries[n - 1]`.
    entries: Vec<Entry>,
    /// RFC 1939's exclusive lock on the account.
    _busy: BusyGuard,
}

impl Mailbox {
    /// Messages not marked deleted, and their total size.
    fn stat(&self) -> (usize, u64) {
        self.entries
            .iter()
            .filter(|e| !e.deleted)
            .fold((0, 0), |(n, s), e| (n + 1, s + e.message.size))
    }

    /// The UIDL of an entry.
    fn uidl(&self, e: &Entry) -> String {
        format!("{:08X}{:08X}", e.message.uid, self.uidvalidity)
    }
}

/// What the command loop does next.
enum Next {
    /// Read the next command.
    Continue,
    /// Run the TLS handshake (after STLS).
    StartTls,
    /// Close, for this reason.
    Close(String),
}

struct Session {
    /// The client connection.
    wire: Wire<Io>,
    /// Session id, on every log line.
    id: String,
    /// Client address.
    peer: SocketAddr,
    /// The configuration in force as of the current command.
    cur: Arc<Current>,
    /// The listener, live.
    seat: Seat,
    /// Gate, events, shutdown, mail root.
    deps: Arc<Deps>,
    /// TLS version once encrypted.
    tls: Option<String>,
    /// The name given by USER.
    user: Option<String>,
    /// `Some` in the TRANSACTION state.
    mailbox: Option<Mailbox>,
    /// Bad commands so far.
    errors: u32,
    /// Commands so far.
    commands: usize,
}

impl Session {
    fn log(&self, level: Level, text: String) {
        self.deps
            .events
            .session(level, &self.id, EventKind::Pop3 { text });
    }

    /// Queues one reply line; `-ERR` counts towards the error limit.
    fn reply(&mut self, line: &str) {
        self.log(Level::Debug, format!(">>> {line}"));
        self.wire.queue(line);
        self.wire.queue("\r\n");
        if line.starts_with("-ERR") {
            self.errors += 1;
        }
    }

    fn timeout(&self) -> Duration {
        self.cur.config.pop3.idle_timeout.0
    }

    async fn run(&mut self) -> String {
        self.wire.set_write_timeout(self.timeout());
        if self.seat.implicit_tls
            && let Err(e) = self.handshake().await
        {
            return e.to_string();
        }
        self.reply(&reply::greeting(&self.cur.config.server.hostname));
        loop {
            match self.command_loop().await {
                Next::StartTls => {
                    if let Err(e) = self.handshake().await {
                        return e.to_string();
                    }
                }
                Next::Close(reason) => {
                    let _ = self.wire.flush().await;
                    return reason;
                }
                Next::Continue => unreachable!("the command loop returns only to close or upgrade"),
            }
        }
    }

    async fn handshake(&mut self) -> Result<(), HandshakeError> {
        let Some(acceptor) = self.cur.tls.clone() else {
            return Err(HandshakeError::Unavailable);
        };
        let timeout = self.timeout();
        let version = listener::upgrade(&mut self.wire, &acceptor, timeout).await?;
        self.log(Level::Info, format!("TLS established ({version})"));
        self.tls = Some(version);
        Ok(())
    }

    async fn command_loop(&mut self) -> Next {
        loop {
            if let Err(e) = self.wire.flush().await {
                return Next::Close(format!("write error: {e}"));
            }
            self.cur = self.deps.current.borrow().clone();
            let (shutdown, closed) = (self.deps.shutdown.clone(), self.seat.closed.clone());
            let line = tokio::select! {
                biased;
                r = self.wire.read_line(MAX_LINE, self.timeout()) => r,
                _ = shutdown.cancelled() => {
                    self.reply(reply::SHUTTING_DOWN);
                    return Next::Close("server shutting down".into());
                }
                _ = closed.cancelled() => {
                    self.reply(reply::LISTENER_CLOSED);
                    return Next::Close("listener closed".into());
                }
            };
            self.cur = self.deps.current.borrow().clone();
            if let Some(m) = &self.mailbox
                && !self
                    .deps
                    .gate
                    .mailbox_login_in_force(&self.cur, &self.id, &m.address, &m.hash)
            {
                self.reply(reply::LOGIN_REVOKED);
                return Next::Close("login revoked".into());
            }
            let next = match line {
                Ok(line) => {
                    self.commands += 1;
                    let allowed =
                        SPARE_COMMANDS + 2 * self.mailbox.as_ref().map_or(0, |m| m.entries.len());
                    if self.commands > allowed {
                        self.reply(reply::TOO_MANY_COMMANDS);
                        return Next::Close("too many commands".into());
                    }
                    self.command(&line).await
                }
                Err(ReadError::TooLong) => {
                    self.log(Level::Debug, format!("<<< (line over {MAX_LINE} octets)"));
                    self.reply(reply::LINE_TOO_LONG);
                    Next::Continue
                }
                Err(ReadError::Timeout) => {
                    self.reply(reply::TIMEOUT);
                    return Next::Close("idle time-out".into());
                }
                Err(ReadError::Closed) => {
                    return Next::Close("client closed the connection".into());
                }
                Err(ReadError::Io(e)) => return Next::Close(format!("read error: {e}")),
            };
            match next {
                Next::Continue if self.errors >= MAX_ERRORS => {
                    self.reply(reply::TOO_MANY_ERRORS);
                    return Next::Close("too many errors".into());
                }
                Next::Continue => {}
                Next::StartTls => {
                    if let Err(e) = self.wire.flush().await {
                        return Next::Close(format!("write error: {e}"));
                    }
                    listener::drop_pipelined(&mut self.wire, &self.deps.events, &self.id);
                    return Next::StartTls;
                }
                close => return close,
            }
        }
    }

    async fn command(&mut self, line: &[u8]) -> Next {
        self.log(Level::Debug, format!("<<< {}", parse::redact(line)));
        let cmd = match parse::parse(line) {
            Ok(c) => c,
            Err(e) => {
                self.reply(&e);
                return Next::Continue;
            }
        };
        let transaction = self.mailbox.is_some();
        match cmd {
            Command::Capa => self.capa(),
            Command::Quit if transaction => return self.update().await,
            Command::Quit => {
                self.reply(reply::BYE);
                return Next::Close("QUIT".into());
            }
            Command::Stls if !transaction => return self.stls(),
            Command::User(u) if !transaction => self.user_cmd(u),
            Command::Pass(p) if !transaction => return self.pass(p).await,
            Command::Auth { mechanism, initial } if !transaction => {
                return self.auth(mechanism, initial).await;
            }
            Command::Stat if transaction => {
                let (n, size) = self.mb().stat();
                self.reply(&reply::stat(n, size));
            }
            Command::List(n) if transaction => self.list(n, false),
            Command::Uidl(n) if transaction => self.list(n, true),
            Command::Retr(n) if transaction => return self.send(n, None).await,
            Command::Top(n, lines) if transaction => return self.send(n, Some(lines)).await,
            Command::Dele(n) if transaction => match self.entry(n) {
                Ok(_) => {
                    self.mb_mut().entries[n - 1].deleted = true;
                    self.reply(&reply::deleted(n));
                }
                Err(e) => self.reply(&e),
            },
            Command::Rset if transaction => {
                for e in &mut self.mb_mut().entries {
                    e.deleted = false;
                }
                let (n, size) = self.mb().stat();
                self.reply(&reply::reset(n, size));
            }
            Command::Noop if transaction => self.reply(reply::NOOP),
            _ => self.reply(reply::WRONG_STATE),
        }
        Next::Continue
    }

    fn mb(&self) -> &Mailbox {
        self.mailbox.as_ref().expect("TRANSACTION state")
    }

    fn mb_mut(&mut self) -> &mut Mailbox {
        self.mailbox.as_mut().expect("TRANSACTION state")
    }

    /// Message `n`, if it exists and is not marked deleted; else the `-ERR` text.
    fn entry(&self, n: usize) -> Result<&Entry, String> {
        match self.mb().entries.get(n - 1) {
            None => Err(reply::NO_SUCH_MESSAGE.into()),
            Some(e) if e.deleted => Err(reply::already_deleted(n)),
            Some(e) => Ok(e),
        }
    }

    /// Whether a password may be sent on this connection now.
    fn login_allowed(&self) -> bool {
        self.tls.is_some() || self.cur.config.pop3.plaintext_login.allows(self.peer.ip())
    }

    fn capa(&mut self) {
        let mut lines = vec![reply::CAPA.to_string()];
        if self.mailbox.is_none() {
            if self.tls.is_none() && self.cur.tls.is_some() && self.cur.config.pop3.explicit_ssl {
                lines.push("STLS".into());
            }
            if self.login_allowed() {
                lines.push("USER".into());
                lines.push("SASL PLAIN".into());
            }
        }
        lines.extend(
            ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"].map(String::from),
        );
        lines.push("EXPIRE NEVER".into());
        lines.push("IMPLEMENTATION Postern".into());
        lines.push(".".into());
        for l in lines {
            self.reply(&l);
        }
    }

    fn stls(&mut self) -> Next {
        if self.tls.is_some() {
            self.reply(reply::TLS_ACTIVE);
        } else if self.cur.tls.is_none() || !self.cur.config.pop3.explicit_ssl {
            self.reply(reply::TLS_UNAVAILABLE);
        } else {
            self.reply(reply::STLS_READY);
            self.user = None;
            return Next::StartTls;
        }
        Next::Continue
    }

    fn user_cmd(&mut self, user: String) {
        if !self.login_allowed() {
            return self.reply(reply::TLS_REQUIRED);
        }
        self.user = Some(user);
        self.reply(reply::USER_OK);
    }

    async fn pass(&mut self, pass: String) -> Next {
        if !self.login_allowed() {
            self.reply(reply::TLS_REQUIRED);
            return Next::Continue;
        }
        let Some(user) = self.user.take() else {
            self.reply(reply::USER_FIRST);
            return Next::Continue;
        };
        self.login(user, pass).await
    }

    /// AUTH PLAIN (RFC 5034), with or without an initial response; AUTH alone lists the
    /// mechanisms.
    async fn auth(&mut self, mechanism: Option<String>, initial: Option<String>) -> Next {
        let Some(mechanism) = mechanism else {
            if self.login_allowed() {
                for l in ["+OK", "PLAIN", "."] {
                    self.reply(l);
                }
            } else {
                self.reply(reply::TLS_REQUIRED);
            }
            return Next::Continue;
        };
        if !self.login_allowed() {
            self.reply(reply::TLS_REQUIRED);
            return Next::Continue;
        }
        if mechanism != "PLAIN" {
            self.reply(reply::UNKNOWN_MECHANISM);
            return Next::Continue;
        }
        let data = match initial {
            Some(i) if i == "=" => Vec::new(),
            Some(i) => i.into_bytes(),
            None => {
                self.reply(reply::AUTH_CONTINUE);
                if let Err(e) = self.wire.flush().await {
                    return Next::Close(format!("write error: {e}"));
                }
                match self.wire.read_line(MAX_AUTH_LINE, self.timeout()).await {
                    Ok(l) if l == b"*" => {
                        self.reply(reply::AUTH_CANCELLED);
                        return Next::Continue;
                    }
                    Ok(l) => l,
                    Err(ReadError::TooLong) => {
                        self.reply(reply::LINE_TOO_LONG);
                        return Next::Continue;
                    }
                    Err(e) => return Next::Close(format!("during AUTH: {e}")),
                }
            }
        };
        let Some((user, pass)) = decode_plain(&data) else {
            self.reply(reply::AUTH_MALFORMED);
            return Next::Continue;
        };
        self.login(user, pass).await
    }

    /// The gate checks the password (lockout shared with SMTP); then the mailbox is locked
    /// and listed.
    async fn login(&mut self, user: String, pass: String) -> Next {
        let (deps, cur) = (self.deps.clone(), self.cur.clone());
        let (address, hash) = match deps
            .gate
            .mailbox_login(&cur, &self.id, self.peer, user, pass)
            .await
        {
            MailboxLogin::Success { address, hash } => (address, hash),
            MailboxLogin::Failure(None) => {
                self.reply(reply::AUTH_FAILED);
                return Next::Continue;
            }
            MailboxLogin::Failure(Some(r)) | MailboxLogin::Blocked(r) => {
                self.reply(&reply::blocked(&super::plain_text(&r)));
                return Next::Close("blocked (failed logins)".into());
            }
            MailboxLogin::Busy => {
                self.reply(reply::AUTH_BUSY);
                return Next::Continue;
            }
        };
        let Some(busy) = BusyGuard::take(&deps.busy, &address) else {
            self.log(Level::Info, format!("{address}: mailbox in use"));
            self.reply(reply::IN_USE);
            return Next::Continue;
        };
        let Some(account) = mailbox::Account::new(&deps.mailroot, &address) else {
            self.reply(reply::MAILBOX_ERROR);
            return Next::Continue;
        };
        let opened = tokio::task::spawn_blocking(move || open_inbox(&account)).await;
        let (folder, scan) = match opened {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => {
                self.log(Level::Error, format!("{address}: cannot open INBOX: {e}"));
                self.reply(reply::MAILBOX_ERROR);
                return Next::Continue;
            }
            Err(e) => {
                self.log(Level::Error, format!("{address}: cannot open INBOX: {e}"));
                self.reply(reply::MAILBOX_ERROR);
                return Next::Continue;
            }
        };
        self.log(
            Level::Info,
            format!("logged in as {address} ({} messages)", scan.messages.len()),
        );
        let mb = Mailbox {
            address,
            hash,
            folder,
            uidvalidity: scan.uidvalidity,
            entries: scan
                .messages
                .into_iter()
                .map(|message| Entry {
                    message,
                    deleted: false,
                    retrieved: false,
                })
                .collect(),
            _busy: busy,
        };
        let (n, size) = mb.stat();
        self.mailbox = Some(mb);
        self.reply(&reply::logged_in(n, size));
        Next::Continue
    }

    /// LIST or UIDL, of one message or all.
    fn list(&mut self, n: Option<usize>, uidl: bool) {
        let value = |mb: &Mailbox, e: &Entry| {
            if uidl {
                mb.uidl(e)
            } else {
                e.message.size.to_string()
            }
        };
        if let Some(n) = n {
            let line = match self.entry(n) {
                Ok(e) => reply::one(n, &value(self.mb(), e)),
                Err(e) => e,
            };
            return self.reply(&line);
        }
        let mb = self.mb();
        let (count, size) = mb.stat();
        let mut lines = vec![if uidl {
            reply::UIDL.to_string()
        } else {
            reply::list(count, size)
        }];
        for (i, e) in mb.entries.iter().enumerate() {
            if !e.deleted {
                lines.push(format!("{} {}", i + 1, value(mb, e)));
            }
        }
        self.reply(&lines[0].clone());
        // The listing itself is not logged line by line.
        for l in &lines[1..] {
            self.wire.queue(l);
            self.wire.queue("\r\n");
        }
        self.wire.queue(".\r\n");
    }

    /// RETR (`lines` = `None`) or TOP: the message read in chunks, dot-stuffed, CRLF line
    /// ends, then `.`.
    async fn send(&mut self, n: usize, lines: Option<u64>) -> Next {
        if let Err(e) = self.entry(n) {
            self.reply(&e);
            return Next::Continue;
        }
        // Plain file I/O on this task, a page-cache sized chunk at a time, as the SMTP side
        // copies bodies (see ARCHITECTURE.md): a thread hop per read would cost more.
        let mut message = self.mb().entries[n - 1].message.clone();
        let size = message.size;
        let Ok(file) = self.mb().folder.open(&mut message) else {
            self.reply(reply::MESSAGE_GONE);
            return Next::Continue;
        };
        self.mb_mut().entries[n - 1].message = message;
        self.reply(&match lines {
            None => reply::retr(size),
            Some(_) => reply::TOP.to_string(),
        });
        let mut reader = Chunks {
            file: Some(file),
            top: lines.map(Top::new),
            buf: vec![0; CHUNK],
        };
        let mut encoder = Encoder::default();
        let mut out = Vec::with_capacity(CHUNK + CHUNK / 32);
        loop {
            match reader.next() {
                Ok(Some(chunk)) => {
                    out.clear();
                    encoder.feed(chunk, &mut out);
                    self.wire.queue_bytes(&out);
                }
                Ok(None) => break,
                // Never a `.` after part of a message: the client must not take it as whole.
                Err(e) => {
                    self.log(Level::Error, format!("reading message {n}: {e}"));
                    return Next::Close(format!("cannot read message {n}: {e}"));
                }
            }
            if out.len() >= CHUNK / 2
                && let Err(e) = self.wire.flush().await
            {
                return Next::Close(format!("write error: {e}"));
            }
        }
        out.clear();
        encoder.end(&mut out);
        self.wire.queue_bytes(&out);
        if lines.is_none() {
            self.mb_mut().entries[n - 1].retrieved = true;
        }
        Next::Continue
    }

    /// QUIT in TRANSACTION: the UPDATE state.
    async fn update(&mut self) -> Next {
        let Some(mut mb) = self.mailbox.take() else {
            return Next::Close("QUIT".into());
        };
        let folder = mb.folder.clone();
        let mut entries = std::mem::take(&mut mb.entries);
        let done = tokio::task::spawn_blocking(move || {
            let mut deleted = 0;
            let mut failed = 0;
            for e in &mut entries {
                if e.deleted {
                    match folder.delete(&mut e.message) {
                        Ok(()) => deleted += 1,
                        Err(_) => failed += 1,
                    }
                } else if e.retrieved && !e.message.has_flag('S') {
                    let _ = folder.update_flags(&mut e.message, |now| format!("{now}S"));
                }
            }
            let left = entries.iter().filter(|e| !e.deleted).count();
            let synced = folder.sync().is_ok();
            // IMAP sessions on the account see the deletions and flags.
            mailbox::watch::poke(folder.dir());
            (deleted, failed, left, synced)
        })
        .await;
        match done {
            Ok((deleted, 0, left, true)) => {
                self.log(
                    Level::Info,
                    format!("{}: {deleted} messages deleted, {left} left", mb.address),
                );
                self.reply(&reply::updated(deleted, left));
            }
            _ => {
                self.log(Level::Error, format!("{}: update failed", mb.address));
                self.reply(reply::UPDATE_FAILED);
            }
        }
        Next::Close("QUIT".into())
    }
}

/// Lists INBOX (making the account's folders where missing) and moves what it found in
/// `new/` to `cur/`: the client has now been told about those messages. Blocking.
fn open_inbox(account: &mailbox::Account) -> std::io::Result<(Folder, mailbox::Scan)> {
    account.prepare()?;
    let folder = account.inbox();
    let mut scan = folder.scan()?;
    let mut moved = false;
    scan.messages.retain_mut(|m| {
        if !m.in_new {
            return true;
        }
        moved = true;
        folder.to_cur(m).unwrap_or(false)
    });
    if moved {
        folder.sync()?;
    }
    Ok((folder, scan))
}

/// `authzid NUL authcid NUL password`, base64 (RFC 4616); the login is the authcid.
fn decode_plain(b64: &[u8]) -> Option<(String, String)> {
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let mut parts = raw.split(|&b| b == 0);
    let (_authz, user, pass) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || user.is_empty() {
        return None;
    }
    Some((
        String::from_utf8(user.to_vec()).ok()?,
        String::from_utf8(pass.to_vec()).ok()?,
    ))
}

/// A message file read in chunks, cut after the header and `n` body lines for TOP.
struct Chunks {
    /// The open file; `None` once the end (or TOP's cut) is reached.
    file: Option<std::fs::File>,
    /// TOP's line counter.
    top: Option<Top>,
    /// The chunk buffer, reused.
    buf: Vec<u8>,
}

impl Chunks {
    /// The next chunk, or `None` at the end.
    fn next(&mut self) -> std::io::Result<Option<&[u8]>> {
        let Some(file) = self.file.as_mut() else {
            return Ok(None);
        };
        let mut n = file.read(&mut self.buf)?;
        if n == 0 {
            self.file = None;
            return Ok(None);
        }
        if let Some(top) = &mut self.top
            && let Some(cut) = top.cut(&self.buf[..n])
        {
            n = cut;
            self.file = None;
        }
        Ok(Some(&self.buf[..n]))
    }
}

/// Where TOP stops: after the blank line ending the header section and `lines` more lines.
#[derive(Debug)]
pub struct Top {
    /// Still in the header section.
    in_header: bool,
    /// The current line has nothing but its line end so far.
    line_empty: bool,
    /// Body lines still to send.
    left: u64,
}

impl Top {
    /// TOP with `lines` body lines.
    pub fn new(lines: u64) -> Top {
        Top {
            in_header: true,
            line_empty: true,
            left: lines,
        }
    }

    /// How much of `chunk` to send when the cut falls inside it; `None` to send it all.
    pub fn cut(&mut self, chunk: &[u8]) -> Option<usize> {
        if !self.in_header && self.left == 0 {
            return Some(0);
        }
        for (i, &b) in chunk.iter().enumerate() {
            match b {
                b'\n' => {
                    if self.in_header {
                        if self.line_empty {
                            self.in_header = false;
                            if self.left == 0 {
                                return Some(i + 1);
                            }
                        }
                    } else {
                        self.left -= 1;
                        if self.left == 0 {
                            return Some(i + 1);
                        }
                    }
                    self.line_empty = true;
                }
                b'\r' => {}
                _ => self.line_empty = false,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn top(message: &[u8], lines: u64, chunk: usize) -> Vec<u8> {
        let mut t = Top::new(lines);
        let mut out = Vec::new();
        for c in message.chunks(chunk) {
            match t.cut(c) {
                Some(n) => {
                    out.extend_from_slice(&c[..n]);
                    break;
                }
                None => out.extend_from_slice(c),
            }
        }
        out
    }

    #[test]
    fn top_cuts_after_the_header_and_n_lines_in_any_chunking() {
        let m = b"A: 1\r\nB: 2\r\n\r\none\r\ntwo\r\nthree\r\n";
        for chunk in [1, 2, 5, 100] {
            assert_eq!(top(m, 0, chunk), b"A: 1\r\nB: 2\r\n\r\n", "chunk {chunk}");
            assert_eq!(top(m, 2, chunk), b"A: 1\r\nB: 2\r\n\r\none\r\ntwo\r\n");
            assert_eq!(top(m, 9, chunk), m.to_vec());
        }
    }

    #[test]
    fn auth_plain_needs_three_parts() {
        let b = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
        assert_eq!(
            decode_plain(b(b"\0alice\0pw").as_bytes()),
            Some(("alice".into(), "pw".into()))
        );
        assert_eq!(decode_plain(b(b"alice\0pw").as_bytes()), None);
        assert_eq!(decode_plain(b"!!!"), None);
    }
}
