//! The outbound SMTP client: one session with one server, from greeting to QUIT.
//!
//! It is as strict as our server. Every read has a timeout (RFC 5321 4.5.3.2), every write too;
//! a reply line is at most 512 octets and a reply at most 100 lines; multi-line replies must keep
//! one code; whatever the server sent after its `220` to our STARTTLS is dropped unread before
//! the handshake (CVE-2011-0411). PIPELINING (RFC 2920) is used when offered. The session works
//! over any `AsyncRead + AsyncWrite` stream, so unit tests drive it over an in-memory pipe.

use super::{Log, RcptStatus};
use base64::Engine as _;
use std::io;
use std::net::IpAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// RFC 5321 4.5.3.1.5: a reply line is at most 512 octets including CRLF.
pub const MAX_REPLY_LINE: usize = 512;
/// The most lines we read of one reply (an EHLO reply has one per extension).
pub const MAX_REPLY_LINES: usize = 100;
/// Recipients per transaction: RFC 5321 4.5.3.1.8 makes every server take at least 100.
pub const MAX_RCPTS_PER_TRANSACTION: usize = 100;

/// Waiting for a TCP connection to be accepted.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Waiting for the greeting (RFC 5321 4.5.3.2.1: 5 minutes).
pub const GREETING_TIMEOUT: Duration = Duration::from_secs(300);
/// Waiting for the reply to EHLO, MAIL, RCPT, RSET, AUTH, STARTTLS (RFC 5321: 5 minutes).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);
/// Waiting for the 354 after DATA (RFC 5321 4.5.3.2.4: 2 minutes).
pub const DATA_INIT_TIMEOUT: Duration = Duration::from_secs(120);
/// Writing one block of message data (RFC 5321 4.5.3.2.5: 3 minutes).
pub const DATA_BLOCK_TIMEOUT: Duration = Duration::from_secs(180);
/// Waiting for the reply after the final dot (RFC 5321 4.5.3.2.6: 10 minutes).
pub const DATA_END_TIMEOUT: Duration = Duration::from_secs(600);
/// The TLS handshake.
pub const TLS_TIMEOUT: Duration = Duration::from_secs(60);
/// Waiting for the reply to QUIT; the mail is already settled then.
pub const QUIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Size of the blocks the message is written in, each with its own timeout.
const DATA_BLOCK: usize = 64 * 1024;

/// A byte stream a session can run over: TCP, TLS over TCP, or a test pipe.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// The stream type of a session, boxed so STARTTLS can swap plain for TLS.
pub type BoxStream = Box<dyn Stream>;

/// Why a session with this host is over before anything was settled: try the next host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HostFailure(pub String);

/// One reply of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// The text of each line, without code and separator.
    pub lines: Vec<String>,
}

impl Reply {
    /// The reply as one line for logs and statuses: "250 first / second".
    pub fn text(&self) -> String {
        format!("{} {}", self.code, self.lines.join(" / "))
            .trim_end()
            .to_string()
    }

    fn positive(&self) -> bool {
        (200..300).contains(&self.code)
    }
}

/// STARTTLS policy for one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsPolicy {
    /// Never send STARTTLS.
    Never,
    /// STARTTLS when the server offers it.
    Opportunistic,
    /// No STARTTLS, no mail.
    Required,
    /// The connection is TLS from the first byte (a relay's implicit-TLS port).
    Implicit,
}

/// Login for a relay host.
#[derive(Debug, Clone)]
pub struct Login {
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
}

/// Extensions the server announced in its EHLO reply.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// EHLO worked (else HELO: no extensions at all).
    pub esmtp: bool,
    /// RFC 2920.
    pub pipelining: bool,
    /// RFC 3207.
    pub starttls: bool,
    /// RFC 1870 limit, when announced with a number (0 = no limit given).
    pub size: Option<u64>,
    /// RFC 6152.
    pub eight_bit_mime: bool,
    /// RFC 6531.
    pub smtputf8: bool,
    /// AUTH PLAIN offered.
    pub auth_plain: bool,
    /// AUTH LOGIN offered.
    pub auth_login: bool,
    /// Any AUTH offered.
    pub auth: bool,
}

impl Capabilities {
    fn parse(reply: &Reply) -> Capabilities {
        let mut caps = Capabilities {
            esmtp: true,
            ..Capabilities::default()
        };
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "PIPELINING" => caps.pipelining = true,
                "STARTTLS" => caps.starttls = true,
                "SIZE" => caps.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
                "8BITMIME" => caps.eight_bit_mime = true,
                "SMTPUTF8" => caps.smtputf8 = true,
                "AUTH" => {
                    caps.auth = true;
                    for m in words {
                        match m.to_ascii_uppercase().as_str() {
                            "PLAIN" => caps.auth_plain = true,
                            "LOGIN" => caps.auth_login = true,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        caps
    }
}

/// What a session needs to know besides the stream.
pub struct Params<'a> {
    /// Our name for EHLO/HELO.
    pub helo: &'a str,
    /// The host name we connected to (for SNI and logs).
    pub host: &'a str,
    /// The address we connected to.
    pub ip: IpAddr,
    /// STARTTLS policy.
    pub tls: TlsPolicy,
    /// AUTH, for relay hosts with a user name.
    pub login: Option<&'a Login>,
    /// A certificate-verifying connector (relay host); `None` = any certificate (MX hosts).
    pub verify: Option<&'a tokio_rustls::TlsConnector>,
}

/// A session after the greeting, EHLO, STARTTLS and AUTH: ready for transactions.
pub struct Session<'a> {
    /// The connection with its read buffer.
    conn: Wire<BoxStream>,
    /// Where log lines go.
    log: &'a Log<'a>,
    /// `host[ip]`, for messages.
    peer: String,
    /// The server's extensions (after STARTTLS: the ones announced over TLS).
    caps: Capabilities,
}

impl<'a> Session<'a> {
    /// Reads the greeting and introduces us: EHLO (HELO if EHLO is refused), STARTTLS as the
    /// policy asks, EHLO again, AUTH when a login is given. With `TlsPolicy::Implicit` the
    /// stream must already be TLS.
    pub async fn open(
        io: BoxStream,
        p: &Params<'_>,
        log: &'a Log<'a>,
    ) -> Result<Session<'a>, HostFailure> {
        let peer = format!("{}[{}]", p.host, p.ip);
        let mut s = Session {
            conn: Wire::new(io),
            log,
            peer,
            caps: Capabilities::default(),
        };
        let greeting = s.read_reply(GREETING_TIMEOUT).await?;
        if !greeting.positive() {
            return Err(s.refused("greeting", &greeting));
        }
        s.hello(p.helo).await?;
        match p.tls {
            TlsPolicy::Never | TlsPolicy::Implicit => {}
            TlsPolicy::Opportunistic | TlsPolicy::Required => {
                if s.caps.starttls {
                    s = s.starttls(p).await?;
                } else if p.tls == TlsPolicy::Required {
                    s.quit().await;
                    return Err(HostFailure(format!(
                        "{} does not offer STARTTLS, and TLS is required",
                        s.peer
                    )));
                }
            }
        }
        if let Some(login) = p.login {
            s.auth(login).await?;
        }
        Ok(s)
    }

    async fn hello(&mut self, helo: &str) -> Result<(), HostFailure> {
        self.send(&format!("EHLO {helo}"));
        let reply = self.read_reply(COMMAND_TIMEOUT).await?;
        if reply.positive() {
            self.caps = Capabilities::parse(&reply);
            return Ok(());
        }
        if !(500..600).contains(&reply.code) {
            return Err(self.refused("EHLO", &reply));
        }
        self.send(&format!("HELO {helo}"));
        let reply = self.read_reply(COMMAND_TIMEOUT).await?;
        if !reply.positive() {
            return Err(self.refused("HELO", &reply));
        }
        self.caps = Capabilities::default();
        Ok(())
    }

    async fn starttls(mut self, p: &Params<'_>) -> Result<Session<'a>, HostFailure> {
        self.send("STARTTLS");
        let reply = self.read_reply(COMMAND_TIMEOUT).await?;
        if reply.code != 220 {
            if p.tls == TlsPolicy::Required {
                return Err(self.refused("STARTTLS", &reply));
            }
            // Opportunistic: the server took it back before any handshake; go on in plaintext.
            self.log.detail(&format!(
                "{}: STARTTLS refused, continuing without TLS",
                self.peer
            ));
            return Ok(self);
        }
        let dropped = self.conn.discard_input();
        if dropped > 0 {
            self.log.warn(&format!(
                "{}: discarded {dropped} octets sent after the STARTTLS reply, before the TLS handshake",
                self.peer
            ));
        }
        let Session {
            conn, log, peer, ..
        } = self;
        let io = conn.into_inner();
        let tls = tokio::time::timeout(
            TLS_TIMEOUT,
            p.verify
                .cloned()
                .unwrap_or_else(super::tls::connector)
                .connect(super::tls::server_name(p.host, p.ip), io),
        )
        .await
        .map_err(|_| HostFailure(format!("{peer}: TLS handshake timed out")))?
        .map_err(|e| HostFailure(format!("{peer}: TLS handshake failed: {e}")))?;
        let (_, state) = tls.get_ref();
        log.detail(&format!(
            "{peer}: TLS established ({}, {})",
            state
                .protocol_version()
                .map(|v| format!("{v:?}"))
                .unwrap_or_default(),
            state
                .negotiated_cipher_suite()
                .map(|c| format!("{:?}", c.suite()))
                .unwrap_or_default()
        ));
        let mut s = Session {
            conn: Wire::new(Box::new(tls) as BoxStream),
            log,
            peer,
            caps: Capabilities::default(),
        };
        s.hello(p.helo).await?;
        Ok(s)
    }

    async fn auth(&mut self, login: &Login) -> Result<(), HostFailure> {
        let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
        let reply = if self.caps.auth_plain {
            let token = b64(format!("\0{}\0{}", login.user, login.password).as_bytes());
            self.send_redacted(&format!("AUTH PLAIN {token}"), "AUTH PLAIN <credentials>");
            self.read_reply(COMMAND_TIMEOUT).await?
        } else if self.caps.auth_login {
            self.send("AUTH LOGIN");
            let mut reply = self.read_reply(COMMAND_TIMEOUT).await?;
            for (secret, shown) in [
                (&login.user, "<user name>"),
                (&login.password, "<password>"),
            ] {
                if reply.code != 334 {
                    break;
                }
                self.send_redacted(&b64(secret.as_bytes()), shown);
                reply = self.read_reply(COMMAND_TIMEOUT).await?;
            }
            reply
        } else {
            self.quit().await;
            return Err(HostFailure(format!(
                "{} offers no AUTH PLAIN or LOGIN{}, but a login is configured",
                self.peer,
                if self.caps.auth {
                    ""
                } else {
                    " (no AUTH at all)"
                }
            )));
        };
        if reply.code != 235 {
            self.quit().await;
            return Err(self.refused("AUTH", &reply));
        }
        Ok(())
    }

    /// One mail transaction for at most [`MAX_RCPTS_PER_TRANSACTION`] recipients; one status
    /// per recipient. `Err` when the connection broke before the message was settled: the
    /// bool says whether the final dot had been sent (then the outcome is unknown).
    pub async fn transaction(
        &mut self,
        from: &str,
        rcpts: &[String],
        data: &[u8],
        size: usize,
        eight_bit: bool,
    ) -> Result<Vec<RcptStatus>, (HostFailure, bool)> {
        let broken = |e: HostFailure| (e, false);
        let mut params = String::new();
        if let Some(limit) = self.caps.size {
            if limit > 0 && size as u64 > limit {
                let text = format!(
                    "5.3.4 message of {size} octets is larger than the {limit} octets {} accepts",
                    self.peer
                );
                return Ok(vec![RcptStatus::Permanent(text); rcpts.len()]);
            }
            params.push_str(&format!(" SIZE={size}"));
        }
        if eight_bit && self.caps.eight_bit_mime {
            params.push_str(" BODY=8BITMIME");
        }
        let utf8 = !from.is_ascii() || rcpts.iter().any(|r| !r.is_ascii());
        if utf8 {
            if !self.caps.smtputf8 {
                let text = format!(
                    "5.6.7 {} does not support non-ASCII addresses (SMTPUTF8)",
                    self.peer
                );
                return Ok(vec![RcptStatus::Permanent(text); rcpts.len()]);
            }
            params.push_str(" SMTPUTF8");
        }
        let pipelining = self.caps.pipelining;
        self.send(&format!("MAIL FROM:<{from}>{params}"));
        if !pipelining {
            let mail = self.read_reply(COMMAND_TIMEOUT).await.map_err(broken)?;
            if mail.code == 421 {
                // Closing down (RFC 5321 3.8): nothing settled here, another host may take it.
                return Err(broken(self.refused("MAIL FROM", &mail)));
            }
            if !mail.positive() {
                self.reset().await;
                return Ok(vec![self.status(&mail, "MAIL FROM"); rcpts.len()]);
            }
        }
        let mut statuses: Vec<Option<RcptStatus>> = Vec::with_capacity(rcpts.len());
        if pipelining {
            for rcpt in rcpts {
                self.send(&format!("RCPT TO:<{rcpt}>"));
            }
            self.send("DATA");
            let mail = self.read_reply(COMMAND_TIMEOUT).await.map_err(broken)?;
            for _ in rcpts {
                let r = self.read_reply(COMMAND_TIMEOUT).await.map_err(broken)?;
                statuses.push((!r.positive()).then(|| self.status(&r, "RCPT TO")));
            }
            let data_reply = self.read_reply(DATA_INIT_TIMEOUT).await.map_err(broken)?;
            if !mail.positive() {
                if data_reply.code == 354 {
                    self.abort_data().await.map_err(broken)?;
                }
                self.reset().await;
                return Ok(vec![self.status(&mail, "MAIL FROM"); rcpts.len()]);
            }
            return self.finish(statuses, data_reply, data).await;
        }
        for rcpt in rcpts {
            self.send(&format!("RCPT TO:<{rcpt}>"));
            let r = self.read_reply(COMMAND_TIMEOUT).await.map_err(broken)?;
            statuses.push((!r.positive()).then(|| self.status(&r, "RCPT TO")));
        }
        if statuses.iter().all(Option::is_some) {
            self.reset().await;
            return Ok(statuses.into_iter().flatten().collect());
        }
        self.send("DATA");
        let data_reply = self.read_reply(DATA_INIT_TIMEOUT).await.map_err(broken)?;
        self.finish(statuses, data_reply, data).await
    }

    /// After the reply to DATA: sends the message when the server is ready for it and a
    /// recipient was accepted, and settles every recipient still open.
    async fn finish(
        &mut self,
        mut statuses: Vec<Option<RcptStatus>>,
        data_reply: Reply,
        data: &[u8],
    ) -> Result<Vec<RcptStatus>, (HostFailure, bool)> {
        let anyone = statuses.iter().any(Option::is_none);
        if data_reply.code != 354 {
            let status = self.status(&data_reply, "DATA");
            for s in statuses.iter_mut().filter(|s| s.is_none()) {
                *s = Some(status.clone());
            }
            self.reset().await;
            return Ok(statuses.into_iter().flatten().collect());
        }
        if !anyone {
            // 354 although every recipient was refused (RFC 2920 3.1): send an empty message,
            // which the server must refuse, to get back in step.
            self.abort_data().await.map_err(|e| (e, false))?;
            return Ok(statuses.into_iter().flatten().collect());
        }
        self.log
            .detail(&format!(">>> ({} octets of message data)", data.len()));
        for block in data.chunks(DATA_BLOCK) {
            self.write(block, DATA_BLOCK_TIMEOUT)
                .await
                .map_err(|e| (e, true))?;
        }
        let end = self
            .read_reply(DATA_END_TIMEOUT)
            .await
            .map_err(|e| (e, true))?;
        let status = if end.positive() {
            RcptStatus::Delivered(end.text())
        } else {
            self.status(&end, "end of DATA")
        };
        for s in statuses.iter_mut().filter(|s| s.is_none()) {
            *s = Some(status.clone());
        }
        Ok(statuses.into_iter().flatten().collect())
    }

    /// Ends a DATA phase we do not want to use with an empty message.
    async fn abort_data(&mut self) -> Result<(), HostFailure> {
        self.send(".");
        self.read_reply(DATA_END_TIMEOUT).await.map(|_| ())
    }

    /// RSET after a transaction that did not reach the end of DATA; failures are ignored
    /// (the next command will notice).
    async fn reset(&mut self) {
        self.send("RSET");
        let _ = self.read_reply(COMMAND_TIMEOUT).await;
    }

    /// QUIT and close; the reply hardly matters.
    pub async fn quit(&mut self) {
        self.send("QUIT");
        let _ = self.read_reply(QUIT_TIMEOUT).await;
    }

    /// A recipient status from a negative reply.
    fn status(&self, reply: &Reply, to: &str) -> RcptStatus {
        let text = format!("{} said: {} (in reply to {to})", self.peer, reply.text());
        match reply.code {
            500..=599 => RcptStatus::Permanent(text),
            _ => RcptStatus::Temporary(text),
        }
    }

    fn refused(&self, what: &str, reply: &Reply) -> HostFailure {
        HostFailure(format!("{} refused {what}: {}", self.peer, reply.text()))
    }

    fn send(&mut self, line: &str) {
        self.log.detail(&format!(">>> {line}"));
        self.queue_line(line);
    }

    fn send_redacted(&mut self, line: &str, shown: &str) {
        self.log.detail(&format!(">>> {shown}"));
        self.queue_line(line);
    }

    fn queue_line(&mut self, line: &str) {
        self.conn.queue(line.as_bytes());
        self.conn.queue(b"\r\n");
    }

    /// Sends queued commands and then `bytes`, within `timeout`.
    async fn write(&mut self, bytes: &[u8], timeout: Duration) -> Result<(), HostFailure> {
        self.conn.queue(bytes);
        self.flush(timeout).await
    }

    async fn flush(&mut self, timeout: Duration) -> Result<(), HostFailure> {
        match tokio::time::timeout(timeout, self.conn.flush()).await {
            Err(_) => Err(HostFailure(format!(
                "{}: timed out sending to the server",
                self.peer
            ))),
            Ok(Err(e)) => Err(self.io_failure(e)),
            Ok(Ok(())) => Ok(()),
        }
    }

    fn io_failure(&self, e: io::Error) -> HostFailure {
        HostFailure(format!("{}: connection lost: {e}", self.peer))
    }

    /// Reads one (possibly multi-line) reply, sending queued commands first.
    async fn read_reply(&mut self, timeout: Duration) -> Result<Reply, HostFailure> {
        self.flush(COMMAND_TIMEOUT).await?;
        let mut code = None;
        let mut lines = Vec::new();
        loop {
            if lines.len() == MAX_REPLY_LINES {
                return Err(HostFailure(format!(
                    "{}: reply longer than {MAX_REPLY_LINES} lines",
                    self.peer
                )));
            }
            let raw = self
                .conn
                .read_line(MAX_REPLY_LINE, timeout)
                .await
                .map_err(|e| match e {
                    ReadError::TooLong => HostFailure(format!(
                        "{}: reply line longer than {MAX_REPLY_LINE} octets",
                        self.peer
                    )),
                    ReadError::Closed => {
                        HostFailure(format!("{}: connection closed by the server", self.peer))
                    }
                    ReadError::Timeout => HostFailure(format!(
                        "{}: no reply within {} s",
                        self.peer,
                        timeout.as_secs()
                    )),
                    ReadError::Io(e) => self.io_failure(e),
                })?;
            let (c, last, text) = parse_line(&raw).ok_or_else(|| {
                HostFailure(format!(
                    "{}: malformed reply line `{}`",
                    self.peer,
                    printable(&raw)
                ))
            })?;
            if *code.get_or_insert(c) != c {
                return Err(HostFailure(format!(
                    "{}: multi-line reply changes its code ({} then {c})",
                    self.peer,
                    code.unwrap_or(c)
                )));
            }
            self.log
                .detail(&format!("<<< {c}{}{text}", if last { " " } else { "-" }));
            lines.push(text);
            if last {
                return Ok(Reply { code: c, lines });
            }
        }
    }
}

/// Splits "250-text" / "250 text" / "250" into code, whether it is the last line, and text.
fn parse_line(raw: &[u8]) -> Option<(u16, bool, String)> {
    if raw.len() < 3 || !raw[..3].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code: u16 = std::str::from_utf8(&raw[..3]).ok()?.parse().ok()?;
    if !(200..600).contains(&code) {
        return None;
    }
    let last = match raw.get(3) {
        None | Some(b' ') => true,
        Some(b'-') => false,
        Some(_) => return None,
    };
    let text = raw.get(4..).map(printable).unwrap_or_default();
    Some((code, last, text))
}

/// Reply text safe for logs: invalid UTF-8 and control characters replaced.
fn printable(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Why no reply line could be read.
#[derive(Debug)]
enum ReadError {
    /// Longer than allowed.
    TooLong,
    /// The server closed the connection.
    Closed,
    /// Nothing arrived in time.
    Timeout,
    /// The socket failed.
    Io(io::Error),
}

/// The client side of a connection: a bounded read buffer and an output buffer.
struct Wire<S> {
    /// The stream.
    io: S,
    /// Received bytes; `buf[start..]` is not consumed yet.
    buf: Vec<u8>,
    /// Offset of the first unconsumed byte.
    start: usize,
    /// Commands queued but not yet written (pipelining sends them in one write).
    out: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<S> {
    fn new(io: S) -> Self {
        Wire {
            io,
            buf: Vec::with_capacity(4096),
            start: 0,
            out: Vec::with_capacity(1024),
        }
    }

    fn queue(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    async fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.io.write_all(&self.out).await?;
            self.out.clear();
        }
        self.io.flush().await
    }

    /// Drops what was received but not read; returns how many octets that was.
    fn discard_input(&mut self) -> usize {
        let n = self.buf.len() - self.start;
        self.buf.clear();
        self.start = 0;
        n
    }

    fn into_inner(self) -> S {
        self.io
    }

    /// One line of at most `max` octets (LF included), returned without CRLF.
    async fn read_line(&mut self, max: usize, timeout: Duration) -> Result<Vec<u8>, ReadError> {
        loop {
            let pending = &self.buf[self.start..];
            if let Some(i) = pending.iter().position(|&b| b == b'\n') {
                if i + 1 > max {
                    return Err(ReadError::TooLong);
                }
                let mut line = pending[..i].to_vec();
                self.start += i + 1;
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            if pending.len() >= max {
                return Err(ReadError::TooLong);
            }
            if self.start == self.buf.len() {
                self.buf.clear();
                self.start = 0;
            }
            let len = self.buf.len();
            self.buf.resize(len + 4096, 0);
            let r = tokio::time::timeout(timeout, self.io.read(&mut self.buf[len..])).await;
            let n = match r {
                Err(_) => Err(ReadError::Timeout),
                Ok(Err(e)) => Err(ReadError::Io(e)),
                Ok(Ok(0)) => Err(ReadError::Closed),
                Ok(Ok(n)) => Ok(n),
            };
            self.buf.truncate(len + *n.as_ref().unwrap_or(&0));
            n?;
        }
    }
}

#[cfg(test)]
mod tests {
    //! Misbehaving servers that no real peer imitates on demand, scripted over an in-memory
    //! pipe (with real TLS where STARTTLS is involved).
    use super::*;
    use crate::engine::events::EventBus;
    use tokio::io::{AsyncBufReadExt, BufReader, DuplexStream, duplex};

    fn params(tls: TlsPolicy) -> Params<'static> {
        Params {
            helo: "sender.test",
            host: "peer.test",
            ip: IpAddr::from([192, 0, 2, 1]),
            tls,
            login: None,
            verify: None,
        }
    }

    fn log(events: &EventBus) -> Log<'_> {
        Log {
            events,
            id: "T",
            detailed: true,
        }
    }

    fn lines(events: &EventBus) -> Vec<String> {
        events.recent().iter().map(|e| e.kind.to_string()).collect()
    }

    /// A server that greets, then answers each command line with `answer(line)`; after a
    /// 354 it takes message data up to the dot. Returns the command lines it saw.
    async fn serve(
        io: DuplexStream,
        greeting: &'static str,
        answer: impl Fn(&str) -> String + Send + 'static,
    ) -> Vec<String> {
        let (r, mut w) = tokio::io::split(io);
        let mut r = BufReader::new(r);
        w.write_all(greeting.as_bytes()).await.unwrap();
        let mut seen = Vec::new();
        let mut line = String::new();
        let mut in_data = false;
        loop {
            line.clear();
            if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                return seen;
            }
            if in_data {
                if line == ".\r\n" {
                    in_data = false;
                    w.write_all(b"250 2.0.0 queued\r\n").await.unwrap();
                }
                continue;
            }
            let cmd = line.trim_end().to_string();
            let reply = answer(&cmd);
            seen.push(cmd);
            in_data = reply.starts_with("354");
            if w.write_all(reply.as_bytes()).await.is_err() {
                return seen;
            }
        }
    }

    fn ehlo(extra: &str) -> String {
        format!("250-peer.test\r\n{extra}250 8BITMIME\r\n")
    }

    async fn open_with(
        reply_to: impl Fn(&str) -> String + Send + 'static,
        greeting: &'static str,
        events: &EventBus,
    ) -> Result<(), HostFailure> {
        let (client, server) = duplex(1 << 16);
        let srv = tokio::spawn(serve(server, greeting, reply_to));
        let log = log(events);
        let r = Session::open(Box::new(client), &params(TlsPolicy::Never), &log)
            .await
            .map(drop);
        drop(srv);
        r
    }

    #[tokio::test]
    async fn malformed_replies_end_the_session() {
        let events = EventBus::new();
        // A multi-line reply that changes its code.
        let r = open_with(
            |_| "250-peer.test\r\n550 no\r\n".into(),
            "220 hi\r\n",
            &events,
        )
        .await;
        assert!(r.unwrap_err().0.contains("changes its code"));
        // Over-long reply line.
        let long: &'static str = Box::leak(format!("220 {}\r\n", "x".repeat(600)).into_boxed_str());
        let r = open_with(|_| String::new(), long, &events).await;
        assert!(r.unwrap_err().0.contains("longer than 512"));
        // Endless multi-line reply.
        let endless = |_: &str| "250-more\r\n".repeat(150);
        let r = open_with(endless, "220 hi\r\n", &events).await;
        assert!(r.unwrap_err().0.contains("longer than 100 lines"));
        // Not a reply at all.
        let r = open_with(|_| String::new(), "HTTP/1.1 400 Bad Request\r\n", &events).await;
        assert!(r.unwrap_err().0.contains("malformed reply"));
        // An error greeting: try another host.
        let r = open_with(|_| String::new(), "554 go away\r\n", &events).await;
        assert!(r.unwrap_err().0.contains("refused greeting: 554 go away"));
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let events = EventBus::new();
        let (client, _server) = duplex(1024);
        let log = log(&events);
        let mut s = Session {
            conn: Wire::new(Box::new(client) as BoxStream),
            log: &log,
            peer: "peer.test[192.0.2.1]".into(),
            caps: Capabilities::default(),
        };
        // The real waits are minutes (RFC 5321 4.5.3.2); the mechanism is the same.
        let r = s.read_reply(Duration::from_secs(1)).await;
        assert_eq!(
            r.unwrap_err().0,
            "peer.test[192.0.2.1]: no reply within 1 s"
        );
    }

    #[tokio::test]
    async fn oversized_mail_is_refused_before_sending() {
        let events = EventBus::new();
        let (client, server) = duplex(1 << 16);
        let srv = tokio::spawn(serve(server, "220 hi\r\n", |c| {
            if c.starts_with("EHLO") {
                ehlo("250-SIZE 10\r\n")
            } else {
                "250 ok\r\n".into()
            }
        }));
        let log = log(&events);
        let mut s = Session::open(Box::new(client), &params(TlsPolicy::Never), &log)
            .await
            .unwrap();
        let st = s
            .transaction("a@x", &["b@y".into()], b"0123456789ab\r\n.\r\n", 14, false)
            .await
            .unwrap();
        assert!(
            matches!(&st[..], [RcptStatus::Permanent(t)] if t.contains("5.3.4")),
            "{st:?}"
        );
        s.quit().await;
        drop(s);
        let seen = srv.await.unwrap();
        assert!(!seen.iter().any(|c| c.starts_with("MAIL")), "{seen:?}");
    }

    #[tokio::test]
    async fn pipelined_transaction_with_mixed_recipients() {
        let events = EventBus::new();
        let (client, server) = duplex(1 << 16);
        let srv = tokio::spawn(serve(server, "220 hi\r\n", |c| match c {
            c if c.starts_with("EHLO") => ehlo("250-PIPELINING\r\n250-SIZE 1000\r\n"),
            "RCPT TO:<gone@y>" => "550 5.1.1 no such user\r\n".into(),
            "RCPT TO:<busy@y>" => "452 4.2.2 mailbox full\r\n".into(),
            "DATA" => "354 go\r\n".into(),
            _ => "250 ok\r\n".into(),
        }));
        let log = log(&events);
        let mut s = Session::open(Box::new(client), &params(TlsPolicy::Never), &log)
            .await
            .unwrap();
        let rcpts: Vec<String> = ["ok@y", "gone@y", "busy@y"].map(String::from).into();
        let st = s
            .transaction("a@x", &rcpts, b"hi\r\n.\r\n", 4, true)
            .await
            .unwrap();
        assert!(
            matches!(&st[0], RcptStatus::Delivered(r) if r == "250 2.0.0 queued"),
            "{st:?}"
        );
        assert!(
            matches!(&st[1], RcptStatus::Permanent(t) if t.contains("550 5.1.1")),
            "{st:?}"
        );
        assert!(
            matches!(&st[2], RcptStatus::Temporary(t) if t.contains("452 4.2.2")),
            "{st:?}"
        );
        s.quit().await;
        drop(s);
        let seen = srv.await.unwrap();
        assert_eq!(seen[1], "MAIL FROM:<a@x> SIZE=4 BODY=8BITMIME");
    }

    /// A TLS acceptor with a throwaway self-signed certificate.
    fn acceptor() -> tokio_rustls::TlsAcceptor {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["peer.test".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let key = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .unwrap();
        tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))
    }

    #[tokio::test]
    async fn plaintext_sent_with_the_starttls_reply_is_discarded() {
        let events = EventBus::new();
        let (client, server) = duplex(1 << 16);
        let srv = tokio::spawn(async move {
            let (r, mut w) = tokio::io::split(server);
            let mut r = BufReader::new(r);
            let mut line = String::new();
            w.write_all(b"220 hi\r\n").await.unwrap();
            r.read_line(&mut line).await.unwrap();
            w.write_all(ehlo("250-STARTTLS\r\n").as_bytes())
                .await
                .unwrap();
            line.clear();
            r.read_line(&mut line).await.unwrap();
            assert_eq!(line, "STARTTLS\r\n");
            // A man in the middle appends a forged reply in plaintext.
            w.write_all(b"220 go ahead\r\n250-forged\r\n250 AUTH PLAIN\r\n")
                .await
                .unwrap();
            let io = r.into_inner().unsplit(w);
            let tls = acceptor().accept(io).await.unwrap();
            let (r, mut w) = tokio::io::split(tls);
            let mut r = BufReader::new(r);
            line.clear();
            r.read_line(&mut line).await.unwrap();
            assert_eq!(line, "EHLO sender.test\r\n");
            w.write_all(b"250-peer.test\r\n250 PIPELINING\r\n")
                .await
                .unwrap();
            line.clear();
            r.read_line(&mut line).await.unwrap();
            line
        });
        let log = log(&events);
        let mut s = Session::open(Box::new(client), &params(TlsPolicy::Required), &log)
            .await
            .unwrap();
        // The capabilities are the ones sent over TLS, not the forged ones.
        assert!(
            s.caps.pipelining && !s.caps.auth && !s.caps.starttls,
            "{:?}",
            s.caps
        );
        s.quit().await;
        assert_eq!(srv.await.unwrap(), "QUIT\r\n");
        let l = lines(&events);
        assert!(
            l.iter().any(|l| l.contains("discarded 28 octets")),
            "{l:#?}"
        );
        assert!(l.iter().any(|l| l.contains("TLS established")), "{l:#?}");
    }

    #[test]
    fn reply_lines_parse() {
        assert_eq!(parse_line(b"250 ok"), Some((250, true, "ok".into())));
        assert_eq!(parse_line(b"250-ok"), Some((250, false, "ok".into())));
        assert_eq!(parse_line(b"250"), Some((250, true, String::new())));
        assert_eq!(parse_line(b"250 a\x07b"), Some((250, true, "a?b".into())));
        assert_eq!(parse_line(b"25 ok"), None);
        assert_eq!(parse_line(b"250x"), None);
        assert_eq!(parse_line(b"999 no"), None);
    }
}
