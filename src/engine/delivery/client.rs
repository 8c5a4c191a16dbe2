//! The outbound SMTP client: one session with one server, from greeting to QUIT.
//!
//! It is as strict as our server. Every read has a timeout (RFC 5321 4.5.3.2), every write too,
//! and every wait up to the message data also ends at the delivery's deadline
//! ([`Params::deadline`]); a reply line is at most 512 octets, a reply at most 100 lines and
//! 4096 octets of text; multi-line replies must keep one code; whatever the server sent after
//! its `220` to our STARTTLS is dropped unread before the handshake (CVE-2011-0411). A failed
//! TLS handshake under opportunistic TLS without a login is reported apart
//! ([`OpenError::TlsHandshake`]) so the caller can retry the address in plaintext; a login is
//! never sent over such a retry. A `552` to RCPT is taken as `452` (RFC 5321 4.5.3.1.10).
//! PIPELINING (RFC 2920) is used when offered. Lines are read by the shared [`Wire`]; replies
//! are read and checked by [`reply`], EHLO capabilities parsed by smtp-proto. The session
//! works over any `AsyncRead + AsyncWrite` stream, so unit tests drive it over an in-memory
//! pipe.

use super::data::{Blocks, Encoder};
use super::downgrade::{self, PlanError};
use super::reply::{self, Reply};
use super::sign;
use super::{Log, RcptStatus};
use crate::engine::dkim::DomainKey;
use crate::engine::store::body::Body;
use crate::engine::wire::Wire;
use base64::Engine as _;
use smtp_proto::{
    AUTH_LOGIN, AUTH_PLAIN, EXT_8BIT_MIME, EXT_AUTH, EXT_PIPELINING, EXT_SIZE, EXT_SMTP_UTF8,
    EXT_START_TLS, EhloResponse,
};
use std::io;
use std::net::IpAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

/// Recipients per transaction: RFC 5321 4.5.3.1.8 makes every server take at least 100.
pub const MAX_RCPTS_PER_TRANSACTION: usize = 100;

/// Waiting for a TCP connection to be accepted.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Waiting for the greeting (RFC 5321 4.5.3.2.1: 5 minutes).
pub const GREETING_TIMEOUT: Duration = Duration::from_secs(300);
/// Waiting for the reply to EHLO, MAIL, RCPT, RSET, AUTH, STARTTLS (RFC 5321: 5 minutes).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);
/// The wait for the reply to the RSET that checks a kept connection before reuse: a live
/// server answers at once; a slow answer costs less than a fresh connection would.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
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

/// A byte stream a session can run over: TCP, TLS over TCP, or a test pipe.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// The stream type of a session, boxed so STARTTLS can swap plain for TLS.
pub type BoxStream = Box<dyn Stream>;

/// Why a session with this host is over before anything was settled: try the next host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HostFailure(pub String);

impl HostFailure {
    /// The connection to `peer` broke while reading or writing.
    pub(super) fn connection_lost(peer: &str, e: io::Error) -> HostFailure {
        HostFailure(format!("{peer}: connection lost: {e}"))
    }
}

/// Why a session could not be opened (greeting, EHLO, STARTTLS, AUTH).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Nothing to be done with this host now: try the next one.
    #[error("{0}")]
    Host(#[from] HostFailure),
    /// The server said `220` to STARTTLS but the TLS handshake failed, and the policy is
    /// opportunistic without a login: the same address may be tried again without STARTTLS
    /// (Postfix's `smtp_tls_security_level = may`).
    #[error("{peer}: TLS handshake failed: {why}")]
    TlsHandshake {
        /// `host[ip]`.
        peer: String,
        /// What the TLS library said.
        why: String,
    },
}

impl From<OpenError> for HostFailure {
    fn from(e: OpenError) -> HostFailure {
        match e {
            OpenError::Host(h) => h,
            e => HostFailure(e.to_string()),
        }
    }
}

/// STARTTLS policy for one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

/// What a session needs to know besides the stream.
#[derive(Clone, Copy)]
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
    /// When the delivery's time is up: every wait before the message data ends here at the
    /// latest (the data itself and the reply to its final dot keep their own timeouts, so a
    /// big message on a slow link is not cut off, nor a delivered one sent twice).
    pub deadline: Instant,
}

impl Params<'_> {
    /// Whether a failed STARTTLS handshake may be followed by a plaintext session with the same
    /// address: only under opportunistic TLS, and never when a login would be sent.
    pub fn may_retry_without_tls(&self) -> bool {
        self.tls == TlsPolicy::Opportunistic && self.login.is_none() && self.verify.is_none()
    }

    /// The waiting time `t`, cut short by the deadline.
    pub fn within(&self, t: Duration) -> Duration {
        t.min(self.deadline.saturating_duration_since(Instant::now()))
    }
}

/// A session after the greeting, EHLO, STARTTLS and AUTH: ready for transactions.
pub struct Session {
    /// The connection with its read buffer.
    conn: Wire<BoxStream>,
    /// Where log lines go.
    log: Log,
    /// `host[ip]`, for messages.
    peer: String,
    /// The server's EHLO reply as smtp-proto parsed it (after STARTTLS: the one sent over
    /// TLS; after HELO: empty, no extensions).
    caps: EhloResponse<String>,
    /// The delivery's deadline ([`Params::deadline`]).
    deadline: Instant,
    /// When the connection was made (a kept session is reused only while young).
    opened: Instant,
    /// A kept session's check is owed: its RSET goes out in front of the next MAIL FROM, in
    /// the same pipelined group ([`Session::probe`]).
    rset_owed: bool,
}

impl Session {
    /// Reads the greeting and introduces us: EHLO (HELO if EHLO is refused), STARTTLS as the
    /// policy asks, EHLO again, AUTH when a login is given. With `TlsPolicy::Implicit` the
    /// stream must already be TLS.
    pub async fn open(io: BoxStream, p: &Params<'_>, log: &Log) -> Result<Session, OpenError> {
        let peer = format!("{}[{}]", p.host, p.ip);
        let mut s = Session {
            conn: Wire::new(io),
            log: log.clone(),
            peer,
            caps: EhloResponse::default(),
            deadline: p.deadline,
            opened: Instant::now(),
            rset_owed: false,
        };
        let greeting = s.read_reply(GREETING_TIMEOUT).await?;
        if !greeting.positive() {
            return Err(s.refused("greeting", &greeting).into());
        }
        s.hello(p.helo).await?;
        match p.tls {
            TlsPolicy::Never | TlsPolicy::Implicit => {}
            TlsPolicy::Opportunistic | TlsPolicy::Required => {
                if s.caps.has_capability(EXT_START_TLS) {
                    s = s.starttls(p).await?;
                } else if p.tls == TlsPolicy::Required {
                    s.quit().await;
                    return Err(OpenError::Host(HostFailure(format!(
                        "{} does not offer STARTTLS, and TLS is required",
                        s.peer
                    ))));
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
        let (reply, raw) = self.read_reply_raw(COMMAND_TIMEOUT).await?;
        if reply.positive() {
            // The lines passed `reply::read`; smtp-proto still refuses a code other than 250.
            self.caps = EhloResponse::parse(&mut raw.iter())
                .map_err(|e| HostFailure(format!("{}: malformed EHLO reply: {e}", self.peer)))?;
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
        self.caps = EhloResponse::default();
        Ok(())
    }

    async fn starttls(mut self, p: &Params<'_>) -> Result<Session, OpenError> {
        self.send("STARTTLS");
        let reply = self.read_reply(COMMAND_TIMEOUT).await?;
        if reply.code != 220 {
            if p.tls == TlsPolicy::Required {
                return Err(self.refused("STARTTLS", &reply).into());
            }
            // Opportunistic: the server took it back before any handshake; go on in plaintext.
            self.log.detail(format_args!(
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
            conn,
            log,
            peer,
            opened,
            ..
        } = self;
        let io = conn.into_inner();
        let handshake = tokio::time::timeout(
            p.within(TLS_TIMEOUT),
            p.verify
                .cloned()
                .unwrap_or_else(super::tls::connector)
                .connect(super::tls::server_name(p.host, p.ip), io),
        )
        .await;
        let failed = |why: String| {
            let e = OpenError::TlsHandshake {
                peer: peer.clone(),
                why,
            };
            if p.may_retry_without_tls() {
                e
            } else {
                OpenError::Host(e.into())
            }
        };
        let tls = match handshake {
            Err(_) => return Err(failed("timed out".into())),
            Ok(Err(e)) => return Err(failed(e.to_string())),
            Ok(Ok(tls)) => tls,
        };
        let (_, state) = tls.get_ref();
        log.detail(format_args!(
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
            caps: EhloResponse::default(),
            deadline: p.deadline,
            opened,
            rset_owed: false,
        };
        s.hello(p.helo).await?;
        Ok(s)
    }

    async fn auth(&mut self, login: &Login) -> Result<(), HostFailure> {
        let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
        let mechanisms = self.caps.auth();
        let reply = if mechanisms & AUTH_PLAIN != 0 {
            let token = b64(format!("\0{}\0{}", login.user, login.password).as_bytes());
            self.send_redacted(&format!("AUTH PLAIN {token}"), "AUTH PLAIN <credentials>");
            self.read_reply(COMMAND_TIMEOUT).await?
        } else if mechanisms & AUTH_LOGIN != 0 {
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
                if self.caps.has_capability(EXT_AUTH) {
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
        message: &Body,
        eight_bit: bool,
        dkim: Option<&[DomainKey]>,
    ) -> Result<Vec<RcptStatus>, (HostFailure, bool)> {
        let broken = |e: HostFailure| (e, false);
        let size = message.len() as usize;
        let mut params = String::new();
        if self.caps.has_capability(EXT_SIZE) {
            // 0: SIZE announced without a limit.
            let limit = self.caps.size;
            if limit > 0 && size > limit {
                let text = format!(
                    "5.3.4 message of {size} octets is larger than the {limit} octets {} accepts",
                    self.peer
                );
                return Ok(vec![RcptStatus::Permanent(text); rcpts.len()]);
            }
            params.push_str(&format!(" SIZE={size}"));
        }
        // RFC 6152 3: no 8-bit octets to a server without 8BITMIME. The 8-bit parts go out in
        // quoted-printable (SIZE above still announces the original size, as Postfix does:
        // an estimate, RFC 1870), or the message fails for this host when it cannot be
        // converted faithfully.
        let mut plan = None;
        if eight_bit && self.caps.has_capability(EXT_8BIT_MIME) {
            params.push_str(" BODY=8BITMIME");
        } else if eight_bit {
            match downgrade::plan(message) {
                Ok(p) => plan = Some(p),
                Err(PlanError::Unconvertible(why)) => {
                    let text = format!(
                        "5.6.3 conversion required but not supported: {} does not offer \
                         8BITMIME and {why}",
                        self.peer
                    );
                    return Ok(vec![RcptStatus::Permanent(text); rcpts.len()]);
                }
                Err(e @ PlanError::Read(_)) => return Err(broken(HostFailure(e.to_string()))),
            }
        }
        let utf8 = !from.is_ascii() || rcpts.iter().any(|r| !r.is_ascii());
        if utf8 {
            if !self.caps.has_capability(EXT_SMTP_UTF8) {
                let text = format!(
                    "5.6.7 {} does not support non-ASCII addresses (SMTPUTF8)",
                    self.peer
                );
                return Ok(vec![RcptStatus::Permanent(text); rcpts.len()]);
            }
            params.push_str(" SMTPUTF8");
        }
        // Signed after the choice above: the signature covers the octets this host gets
        // (downgraded or not), and goes first.
        let signature = match dkim {
            Some(keys) => match sign::signature_fields(message, plan.as_ref(), keys) {
                Ok(fields) => {
                    let selectors: Vec<&str> = keys.iter().map(|k| k.selector.as_str()).collect();
                    self.log
                        .detail(format_args!("DKIM-signed with {}", selectors.join(", ")));
                    Some(fields)
                }
                Err(e) => {
                    self.log
                        .warn(&format!("sent without a DKIM signature: {e}"));
                    None
                }
            },
            None => None,
        };
        let pipelining = self.caps.has_capability(EXT_PIPELINING);
        // A kept session's RSET leads the group (RFC 2920 3.1: RSET may appear anywhere in
        // one); its answer is read first, and anything but 250 means the connection is not
        // usable: nothing was settled, the delivery takes a new one.
        let rset = std::mem::take(&mut self.rset_owed);
        if rset {
            self.send("RSET");
        }
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
            if rset {
                self.check_rset().await.map_err(broken)?;
            }
            let mail = self.read_reply(COMMAND_TIMEOUT).await.map_err(broken)?;
            for _ in rcpts {
                let r = self.read_reply(COMMAND_TIMEOUT).await.map_err(broken)?;
                statuses.push((!r.positive()).then(|| self.rcpt_status(&r)));
            }
            let data_reply = self.read_reply(DATA_INIT_TIMEOUT).await.map_err(broken)?;
            if !mail.positive() {
                if data_reply.code == 354 {
                    self.abort_data().await.map_err(broken)?;
                }
                self.reset().await;
                return Ok(vec![self.status(&mail, "MAIL FROM"); rcpts.len()]);
            }
            return self
                .finish(statuses, data_reply, message, plan, signature)
                .await;
        }
        for rcpt in rcpts {
            self.send(&format!("RCPT TO:<{rcpt}>"));
            let r = self.read_reply(COMMAND_TIMEOUT).await.map_err(broken)?;
            statuses.push((!r.positive()).then(|| self.rcpt_status(&r)));
        }
        if statuses.iter().all(Option::is_some) {
            self.reset().await;
            return Ok(statuses.into_iter().flatten().collect());
        }
        self.send("DATA");
        let data_reply = self.read_reply(DATA_INIT_TIMEOUT).await.map_err(broken)?;
        self.finish(statuses, data_reply, message, plan, signature)
            .await
    }

    /// After the reply to DATA: sends the message when the server is ready for it and a
    /// recipient was accepted, and settles every recipient still open. With a `plan` the
    /// message is converted to 7 bits on the way ([`downgrade`]).
    async fn finish(
        &mut self,
        mut statuses: Vec<Option<RcptStatus>>,
        data_reply: Reply,
        message: &Body,
        plan: Option<downgrade::Plan>,
        signature: Option<Vec<u8>>,
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
        self.log.detail(format_args!(
            ">>> ({} octets of message data)",
            message.len()
        ));
        if plan.is_some() {
            self.log.detail(format_args!(
                "8-bit parts converted to quoted-printable: {} does not offer 8BITMIME",
                self.peer
            ));
        }
        // Read, (converted,) encoded and sent a block at a time: a big message is never in
        // memory whole. The signature goes out with the first block and the final dot with the
        // last, so a small message is one write.
        let mut blocks = Blocks::new(message, plan, Encoder::default());
        let mut out = Vec::new();
        if let Some(fields) = signature {
            blocks.prepend(&fields, &mut out);
        }
        let unreadable = |e: io::Error| {
            let e = HostFailure(format!("cannot read the message from the spool: {e}"));
            (e, false)
        };
        while blocks.next_block(&mut out).map_err(unreadable)? {
            if blocks.read_whole() {
                break;
            }
            self.write(&out, DATA_BLOCK_TIMEOUT)
                .await
                .map_err(|e| (e, true))?;
            out.clear();
        }
        let encoder = blocks.finish(&mut out);
        encoder.end(&mut out);
        self.write(&out, DATA_BLOCK_TIMEOUT)
            .await
            .map_err(|e| (e, true))?;
        let end = self.read_end_of_data_reply().await.map_err(|e| (e, true))?;
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

    /// Takes up a session kept open by an earlier delivery: its log lines go to delivery
    /// `log` from now on, within that delivery's `deadline`.
    pub fn adopt(&mut self, log: &Log, deadline: Instant) {
        self.log = log.clone();
        self.deadline = deadline;
    }

    /// Whether a session that sat idle is still usable: RSET answered with 250 within
    /// [`PROBE_TIMEOUT`] (RFC 5321 4.1.1.5; Postfix checks a cached connection the same
    /// way). A server that closed it meanwhile answers nothing, or 421.
    ///
    /// To a server that offers PIPELINING the RSET is not sent alone: it goes out with the next
    /// transaction's MAIL FROM, which reads its answer first (one round trip less per reused
    /// connection, as KumoMTA pipelines it).
    pub async fn probe(&mut self) -> bool {
        if self.caps.has_capability(EXT_PIPELINING) {
            self.rset_owed = true;
            return true;
        }
        self.send("RSET");
        match self.check_rset().await {
            Ok(()) => true,
            Err(e) => {
                self.log.detail(format_args!("{}", e.0));
                false
            }
        }
    }

    /// The answer to a kept session's RSET (sent alone by [`Session::probe`], or in front of a
    /// transaction): anything but 250 within [`PROBE_TIMEOUT`] means the connection is not
    /// usable.
    async fn check_rset(&mut self) -> Result<(), HostFailure> {
        match self.read_reply(PROBE_TIMEOUT).await {
            Ok(r) if r.code == 250 => Ok(()),
            Ok(r) => Err(HostFailure(format!(
                "{}: kept connection unusable: RSET answered {}",
                self.peer, r.code
            ))),
            Err(e) => Err(HostFailure(format!(
                "{}: kept connection unusable: {}",
                self.peer, e.0
            ))),
        }
    }

    /// `host[ip]` of the server.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// When the connection was made.
    pub fn opened(&self) -> Instant {
        self.opened
    }

    /// A new deadline for what the session does next (closing a kept session).
    pub fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }

    /// QUIT and close; the reply hardly matters.
    pub async fn quit(&mut self) {
        self.send("QUIT");
        let _ = self.read_reply(QUIT_TIMEOUT).await;
    }

    /// A recipient status from a negative reply to RCPT: as [`Self::status`], except that
    /// `552` is temporary. RFC 5321 4.5.3.1.10: clients must treat a `552` (too many
    /// recipients, or storage exceeded, sent by old servers) at RCPT as `452`.
    fn rcpt_status(&self, reply: &Reply) -> RcptStatus {
        if reply.code == 552 {
            return RcptStatus::Temporary(format!(
                "{} said: {} (in reply to RCPT TO; taken as 452, RFC 5321 4.5.3.1.10)",
                self.peer,
                reply.text()
            ));
        }
        self.status(reply, "RCPT TO")
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
        self.log.detail(format_args!(">>> {line}"));
        self.queue_line(line);
    }

    fn send_redacted(&mut self, line: &str, shown: &str) {
        self.log.detail(format_args!(">>> {shown}"));
        self.queue_line(line);
    }

    fn queue_line(&mut self, line: &str) {
        self.conn.queue(line);
        self.conn.queue("\r\n");
    }

    /// Sends queued commands and then `bytes`, within `timeout`.
    async fn write(&mut self, bytes: &[u8], timeout: Duration) -> Result<(), HostFailure> {
        self.conn.queue_bytes(bytes);
        self.flush(timeout).await
    }

    /// The waiting time `t`, cut short by the delivery's deadline.
    fn within(&self, t: Duration) -> Duration {
        t.min(self.deadline.saturating_duration_since(Instant::now()))
    }

    async fn flush(&mut self, timeout: Duration) -> Result<(), HostFailure> {
        self.conn.set_write_timeout(timeout);
        match self.conn.flush().await {
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Err(HostFailure(format!(
                "{}: timed out sending to the server",
                self.peer
            ))),
            Err(e) => Err(HostFailure::connection_lost(&self.peer, e)),
            Ok(()) => Ok(()),
        }
    }

    /// Reads one (possibly multi-line) reply, sending queued commands first.
    async fn read_reply(&mut self, timeout: Duration) -> Result<Reply, HostFailure> {
        self.read_reply_raw(timeout).await.map(|(reply, _)| reply)
    }

    /// Reads one reply (see [`reply::read`]), sending queued commands first; also returns it
    /// as received, for the EHLO parser. Both waits end at the deadline at the latest.
    async fn read_reply_raw(&mut self, timeout: Duration) -> Result<(Reply, Vec<u8>), HostFailure> {
        let wait = self.within(COMMAND_TIMEOUT);
        self.flush(wait)
            .await
            .map_err(|e| self.out_of_time(e, wait < COMMAND_TIMEOUT))?;
        let wait = self.within(timeout);
        reply::read(&mut self.conn, &self.peer, &self.log, wait)
            .await
            .map_err(|e| self.out_of_time(e, wait < timeout))
    }

    /// A failure of a wait the deadline `cut` short, once the deadline has come, says so.
    fn out_of_time(&self, e: HostFailure, cut: bool) -> HostFailure {
        if cut && Instant::now() >= self.deadline {
            HostFailure(format!("{e} (the delivery's time limit was reached)"))
        } else {
            e
        }
    }

    /// Reads the reply to the final dot, waiting RFC 5321's full ten minutes whatever the
    /// deadline: giving up on a server that is still taking the message would make us send
    /// it again.
    async fn read_end_of_data_reply(&mut self) -> Result<Reply, HostFailure> {
        reply::read(&mut self.conn, &self.peer, &self.log, DATA_END_TIMEOUT)
            .await
            .map(|(reply, _)| reply)
    }
}

#[cfg(test)]
mod tests {
    //! Misbehaving servers that no real peer imitates on demand, scripted over an in-memory
    //! pipe (with real TLS where STARTTLS is involved).
    use super::*;
    use crate::engine::events::EventBus;
    use tokio::io::{
        AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream, duplex,
    };

    fn params(tls: TlsPolicy) -> Params<'static> {
        Params {
            helo: "sender.test",
            host: "peer.test",
            ip: IpAddr::from([192, 0, 2, 1]),
            tls,
            login: None,
            verify: None,
            deadline: Instant::now() + Duration::from_secs(600),
        }
    }

    fn log(events: &EventBus) -> Log {
        Log::new(events, "T", true)
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
            .map(drop)
            .map_err(HostFailure::from);
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
            .transaction(
                "a@x",
                &["b@y".into()],
                &Body::from_bytes(b"0123456789ab\r\n".to_vec()),
                false,
                None,
            )
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
            "RCPT TO:<over@y>" => "552 5.2.2 over quota\r\n".into(),
            "DATA" => "354 go\r\n".into(),
            _ => "250 ok\r\n".into(),
        }));
        let log = log(&events);
        let mut s = Session::open(Box::new(client), &params(TlsPolicy::Never), &log)
            .await
            .unwrap();
        let rcpts: Vec<String> = ["ok@y", "gone@y", "busy@y", "over@y"]
            .map(String::from)
            .into();
        let st = s
            .transaction(
                "a@x",
                &rcpts,
                &Body::from_bytes(b"hi\r\n".to_vec()),
                true,
                None,
            )
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
        // RFC 5321 4.5.3.1.10: a 552 to RCPT is a 452.
        assert!(
            matches!(&st[3], RcptStatus::Temporary(t) if t.contains("552 5.2.2") && t.contains("taken as 452")),
            "{st:?}"
        );
        s.quit().await;
        drop(s);
        let seen = srv.await.unwrap();
        assert_eq!(seen[1], "MAIL FROM:<a@x> SIZE=4 BODY=8BITMIME");
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
            let tls = crate::engine::tls::test_acceptor("peer.test")
                .accept(io)
                .await
                .unwrap();
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
            s.caps.has_capability(EXT_PIPELINING)
                && !s.caps.has_capability(EXT_AUTH)
                && !s.caps.has_capability(EXT_START_TLS),
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

    /// A server that offers STARTTLS, says 220 to it, then answers the ClientHello with
    /// plaintext: a handshake that fails.
    async fn open_with_broken_tls(p: &Params<'_>) -> OpenError {
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
            w.write_all(b"220 go ahead\r\n").await.unwrap();
            let mut hello = [0u8; 5];
            r.read_exact(&mut hello).await.unwrap();
            let _ = w.write_all(b"500 this is not TLS\r\n").await;
            // Keep the pipe open until the client gives up.
            let mut rest = Vec::new();
            let _ = r.read_to_end(&mut rest).await;
        });
        let log = log(&events);
        let e = match Session::open(Box::new(client), p, &log).await {
            Ok(_) => panic!("the handshake cannot succeed"),
            Err(e) => e,
        };
        srv.abort();
        e
    }

    #[tokio::test]
    async fn a_failed_handshake_is_retried_in_plaintext_only_when_opportunistic_without_login() {
        let e = open_with_broken_tls(&params(TlsPolicy::Opportunistic)).await;
        assert!(
            matches!(&e, OpenError::TlsHandshake { peer, .. } if peer == "peer.test[192.0.2.1]"),
            "{e:?}"
        );
        // TLS required: the failure stands, and names the handshake.
        let e = open_with_broken_tls(&params(TlsPolicy::Required)).await;
        assert!(
            matches!(&e, OpenError::Host(h) if h.0.contains("TLS handshake failed")),
            "{e:?}"
        );
        // A login would follow: never in plaintext because TLS failed.
        let login = Login {
            user: "u".into(),
            password: "p".into(),
        };
        let with_login = Params {
            login: Some(&login),
            ..params(TlsPolicy::Opportunistic)
        };
        assert!(!with_login.may_retry_without_tls());
        let e = open_with_broken_tls(&with_login).await;
        assert!(matches!(&e, OpenError::Host(_)), "{e:?}");
    }

    #[tokio::test]
    async fn ehlo_capabilities_come_from_smtp_proto() {
        let events = EventBus::new();
        let reply = |c: &str| {
            if c.starts_with("EHLO") {
                "250-peer.test\r\n250-auth LOGIN\r\n250-SIZE\r\n250-smtputf8\r\n250 STARTTLS\r\n"
                    .into()
            } else {
                "250 ok\r\n".into()
            }
        };
        let (client, server) = duplex(1 << 16);
        let srv = tokio::spawn(serve(server, "220 hi\r\n", reply));
        let log = log(&events);
        let mut s = Session::open(Box::new(client), &params(TlsPolicy::Never), &log)
            .await
            .unwrap();
        assert_eq!(s.caps.auth(), AUTH_LOGIN);
        assert!(s.caps.has_capability(EXT_SIZE) && s.caps.size == 0);
        assert!(s.caps.has_capability(EXT_SMTP_UTF8) && s.caps.has_capability(EXT_START_TLS));
        assert!(!s.caps.has_capability(EXT_PIPELINING));
        s.quit().await;
        drop(s);
        drop(srv);
        // A positive EHLO reply must be a 250 (smtp-proto's rule, RFC 5321 4.1.1.1).
        let r = open_with(
            |_| "220-peer.test\r\n220 PIPELINING\r\n".into(),
            "220 hi\r\n",
            &events,
        )
        .await;
        assert!(r.unwrap_err().0.contains("malformed EHLO reply"));
    }
}
