//! Typed engine events: what the log panes show and the log files keep. Each kind names its
//! log view ([`EventKind::channel`]); every value is escaped where events are formatted.
//!
//! Every part of the engine reports through one [`EventBus`]. An event goes to a bounded
//! in-memory ring (what a newly opened pane shows), to live subscribers (broadcast), to the daily
//! log file writer, and to `tracing`. The bus also holds an optional "wake" callback the GUI
//! hands in, so the engine can ask for a repaint without knowing what a window is.

mod bus;

pub use bus::{EventBus, MAIL_TARGET, RING_CAPACITY};

use std::fmt;
use std::net::SocketAddr;
use std::time::SystemTime;

/// Which log view an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// SMTP sessions on our listeners.
    SmtpIn,
    /// Outbound delivery.
    SmtpOut,
    /// Authentication, refusals, limits.
    Security,
    /// Start, stop, listeners, configuration.
    System,
    /// POP3 sessions.
    Pop3,
    /// IMAP sessions.
    Imap,
}

impl Channel {
    /// The view's name as log lines write it (`SmtpIn`, `SmtpOut`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Channel::SmtpIn => "SmtpIn",
            Channel::SmtpOut => "SmtpOut",
            Channel::Security => "Security",
            Channel::System => "System",
            Channel::Pop3 => "Pop3",
            Channel::Imap => "Imap",
        }
    }
}

/// Severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Protocol detail (commands and replies).
    Debug,
    /// Normal operation.
    Info,
    /// Something refused or degraded.
    Warn,
    /// Something broken.
    Error,
}

impl Level {
    /// The level as log lines write it (`DEBUG`, `INFO`, `WARN`, `ERROR`).
    pub fn upper(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// The engine started with this configuration file and data directory.
    Started {
        /// Configuration file.
        config: String,
        /// Data directory.
        data_dir: String,
    },
    /// Graceful shutdown began.
    Stopping,
    /// A listener is accepting connections.
    ListenerUp {
        /// incoming, outgoing, incoming+outgoing, implicit-tls.
        name: String,
        /// Bound address.
        addr: SocketAddr,
    },
    /// A listener was closed (configuration change or shutdown).
    ListenerDown {
        /// Listener name.
        name: String,
        /// Address it had.
        addr: SocketAddr,
    },
    /// A listener could not be opened.
    ListenerFailed {
        /// Listener name.
        name: String,
        /// What it tried to bind.
        addr: String,
        /// Why it failed, with a hint.
        error: String,
    },
    /// A changed configuration file was applied.
    ConfigReloaded,
    /// A changed configuration file was not applied.
    ConfigRejected {
        /// The loader's error (file, line, field).
        error: String,
    },
    /// A client connected.
    SessionOpened {
        /// Listener name.
        listener: String,
        /// Client address.
        peer: SocketAddr,
    },
    /// The session ended.
    SessionClosed {
        /// Why, e.g. "QUIT", "timeout", "client closed".
        reason: String,
    },
    /// A connection was refused before a session started.
    ConnectionRefused {
        /// Client address.
        peer: SocketAddr,
        /// Why.
        reason: String,
    },
    /// A command line from the client (AUTH data is never shown).
    Command {
        /// The line without CRLF.
        line: String,
    },
    /// Our reply.
    Reply {
        /// The reply text, possibly multi-line joined with " / ".
        text: String,
    },
    /// TLS is up on this session.
    TlsEstablished {
        /// Protocol version.
        version: String,
    },
    /// AUTH succeeded.
    AuthSucceeded {
        /// Login name.
        user: String,
    },
    /// AUTH failed.
    AuthFailed {
        /// Login name tried, when one was given.
        user: String,
    },
    /// A recipient was refused.
    RecipientRejected {
        /// The address.
        rcpt: String,
        /// Why.
        reason: String,
    },
    /// A message was written to local mailboxes.
    Delivered {
        /// Message id.
        id: String,
        /// Envelope sender.
        from: String,
        /// Local recipients.
        to: Vec<String>,
        /// Size in octets.
        size: usize,
    },
    /// A queued message left the queue: every recipient delivered or failed.
    QueueFinished {
        /// Queue id.
        id: String,
        /// Recipients delivered.
        delivered: usize,
        /// Recipients given up on (a failure notice follows unless the sender is `<>`).
        failed: usize,
    },
    /// A message was refused after DATA.
    MessageRejected {
        /// Why.
        reason: String,
    },
    /// A recipient in another domain was accepted for relaying.
    RelayAllowed {
        /// The forward path.
        rcpt: String,
        /// Which Access Control rule allowed it.
        why: String,
    },
    /// A recipient in another domain was refused: this client may not relay.
    RelayDenied {
        /// The address.
        rcpt: String,
        /// Which Access Control rule refused it.
        why: String,
    },
    /// A check on the client (DNSBL, SPF, reverse DNS) failed; the gate refused or tagged.
    CheckFailed {
        /// Which check: "DNSBL", "SPF", "reverse DNS".
        check: String,
        /// What it found.
        detail: String,
    },
    /// A check on the client ran and did not fail (protocol detail).
    CheckPassed {
        /// Which check.
        check: String,
        /// Its result.
        detail: String,
    },
    /// The message authentication results of one inbound message (SPF, DKIM, DMARC), as in
    /// its `Authentication-Results:` field.
    MailAuth {
        /// The message id.
        id: String,
        /// `spf=pass dkim=pass dmarc=pass`, with the domains checked.
        results: String,
    },
    /// A logged-in user's message named another address in its `From:` header.
    FromRefused {
        /// The address of the `From:` header.
        from: String,
        /// The login.
        login: String,
    },
    /// `Authentication-Results:` fields claiming our host name were cut from an incoming
    /// message (RFC 8601 §5).
    ForgedResults {
        /// The message id.
        id: String,
        /// How many fields.
        count: usize,
        /// Our host name (the authserv-id they claimed).
        host: String,
    },
    /// A check could not run (no resolver); the client was let through.
    CheckSkipped {
        /// Which check(s).
        check: String,
        /// Why.
        error: String,
    },
    /// A client under (or newly put under) a block: lockout, tarpit.
    ClientBlocked {
        /// At which point: "AUTH refused", "MAIL refused", "locked out", "blocked".
        at: String,
        /// The block and its cause.
        reason: String,
    },
    /// An administrator lifted a block (Abuse & Spam's Unblock, `postern access unblock`).
    ClientUnblocked {
        /// The client: an IP, or an IPv6 network.
        client: String,
        /// Who: "the window", "the command line".
        by: String,
        /// The block that was lifted.
        reason: String,
    },
    /// A per-IP transfer limit refused a message.
    TransferLimit {
        /// The limit and the traffic.
        reason: String,
    },
    /// A session's login ended because its account was removed or its password changed.
    LoginRevoked {
        /// The login name.
        user: String,
    },
    /// A client broke a protocol rule that smuggling or abuse relies on.
    ProtocolAbuse {
        /// What it did.
        what: String,
    },
    /// A logged-in client gave an envelope sender its login may not use.
    SenderRefused {
        /// The sender.
        sender: String,
        /// The login.
        login: String,
    },
    /// Plaintext pipelined behind STARTTLS was thrown away (CVE-2011-0411).
    PlaintextDiscarded {
        /// How many octets.
        octets: usize,
    },
    /// The configuration makes an open relay.
    OpenRelay {
        /// The warning, naming what is open.
        warning: String,
    },
    /// A setting that is valid but unsafe (other than an open relay).
    ConfigWarning {
        /// What is unsafe and what to do.
        warning: String,
    },
    /// No certificate: STARTTLS and the implicit-TLS port are off.
    TlsUnavailable {
        /// Why.
        error: String,
    },
    /// accept(2) failed on a listener (too many open files, ...).
    AcceptFailed {
        /// The OS error.
        error: String,
    },
    /// How one delivery attempt ended for one recipient of a queued message.
    RecipientOutcome {
        /// The recipient.
        rcpt: String,
        /// Which attempt (1 = the first).
        attempt: u32,
        /// Delivered, deferred, failed or given up.
        outcome: Outcome,
        /// The next hop's reply or the error (empty for a give-up).
        detail: String,
    },
    /// A line of the outgoing log: MX lookups, connections, replies, failures, the queue.
    Delivery {
        /// The text.
        text: String,
    },
    /// A line of a POP3 session: connect, commands and replies (passwords redacted), TLS,
    /// login, close (the POP3 view; refusals and failed logins are Security events).
    Pop3 {
        /// The text.
        text: String,
    },
    /// A line of an IMAP session: connect, commands (LOGIN and AUTHENTICATE data redacted)
    /// and status replies, TLS, login, close (the IMAP view; refusals and failed logins are
    /// Security events).
    Imap {
        /// The text.
        text: String,
    },
    /// Anything else worth a line (System view).
    Note {
        /// The text.
        text: String,
    },
}

impl EventKind {
    /// The log view this kind of event belongs to: decided here, for every event, once.
    pub fn channel(&self) -> Channel {
        use EventKind::*;
        match self {
            SessionOpened { .. }
            | SessionClosed { .. }
            | Command { .. }
            | Reply { .. }
            | TlsEstablished { .. }
            | AuthSucceeded { .. }
            | RecipientRejected { .. }
            | RelayAllowed { .. }
            | Delivered { .. }
            | MessageRejected { .. }
            | CheckPassed { .. }
            | MailAuth { .. } => Channel::SmtpIn,
            ConnectionRefused { .. }
            | AuthFailed { .. }
            | RelayDenied { .. }
            | CheckFailed { .. }
            | ClientBlocked { .. }
            | ClientUnblocked { .. }
            | TransferLimit { .. }
            | SenderRefused { .. }
            | ForgedResults { .. }
            | FromRefused { .. }
            | ProtocolAbuse { .. }
            | LoginRevoked { .. }
            | PlaintextDiscarded { .. }
            | OpenRelay { .. }
            | ConfigWarning { .. } => Channel::Security,
            QueueFinished { .. } | RecipientOutcome { .. } | Delivery { .. } => Channel::SmtpOut,
            Pop3 { .. } => Channel::Pop3,
            Imap { .. } => Channel::Imap,
            Started { .. }
            | Stopping
            | ListenerUp { .. }
            | ListenerDown { .. }
            | ListenerFailed { .. }
            | ConfigReloaded
            | ConfigRejected { .. }
            | CheckSkipped { .. }
            | TlsUnavailable { .. }
            | AcceptFailed { .. }
            | Note { .. } => Channel::System,
        }
    }
}

/// Whether `c` must not reach a log line as it is: a control character (C0, DEL, C1) or a
/// bidirectional formatting character.
fn must_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Writes through to a formatter with every character of [`must_escape`] escaped (`\x0d`,
/// `\u{202e}`), so that no logged value (a client's HELO, an address, a reply from a remote
/// server) can forge a log line, move the cursor or reorder what a reader sees. Escapes as it
/// goes: no copy of the line is made.
struct Escaping<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl fmt::Write for Escaping<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(i) = rest.find(must_escape) {
            self.0.write_str(&rest[..i])?;
            let c = rest[i..].chars().next().expect("found at i");
            if (c as u32) < 0x100 {
                write!(self.0, "\\x{:02x}", c as u32)?;
            } else {
                write!(self.0, "\\u{{{:04x}}}", c as u32)?;
            }
            rest = &rest[i + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

/// How a delivery attempt ended for one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted by the next hop (or written to a local mailbox).
    Delivered,
    /// A temporary failure: tried again later.
    Deferred,
    /// A permanent failure (5xx).
    Failed,
    /// The re-send attempts are used up.
    GivenUp,
}

/// One event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Increasing number, unique for this engine run.
    pub seq: u64,
    /// When it happened.
    pub time: SystemTime,
    /// Severity.
    pub level: Level,
    /// Log view.
    pub channel: Channel,
    /// SMTP session id, if it belongs to one.
    pub session: Option<String>,
    /// What happened.
    pub kind: EventKind,
}

impl fmt::Display for EventKind {
    /// The event as one log line, control characters escaped (see [`Escaping`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write as _;
        write!(Escaping(f), "{}", Raw(self))
    }
}

/// An event's text before escaping.
struct Raw<'a>(&'a EventKind);

impl fmt::Display for Raw<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use EventKind::*;
        match self.0 {
            Started { config, data_dir } => {
                write!(f, "started (config {config}, data directory {data_dir})")
            }
            Stopping => write!(f, "stopping: no new connections, closing idle sessions"),
            Pop3 { text } | Imap { text } => write!(f, "{text}"),
            ListenerUp { name, addr } => write!(f, "{name} listening on {addr}"),
            ListenerDown { name, addr } => write!(f, "{name} on {addr} closed"),
            ListenerFailed { name, addr, error } => {
                write!(f, "{name} cannot listen on {addr}: {error}")
            }
            ConfigReloaded => write!(f, "configuration reloaded"),
            ConfigRejected { error } => {
                write!(
                    f,
                    "configuration change not applied, still using the previous one: {error}"
                )
            }
            SessionOpened { listener, peer } => write!(f, "connect from {peer} on {listener}"),
            SessionClosed { reason } => write!(f, "disconnect ({reason})"),
            ConnectionRefused { peer, reason } => write!(f, "refused {peer}: {reason}"),
            Command { line } => write!(f, "<<< {line}"),
            Reply { text } => write!(f, ">>> {text}"),
            TlsEstablished { version } => write!(f, "TLS established ({version})"),
            AuthSucceeded { user } => write!(f, "authenticated as {user}"),
            AuthFailed { user } => write!(f, "authentication failed for `{user}`"),
            RecipientRejected { rcpt, reason } => write!(f, "recipient <{rcpt}> refused: {reason}"),
            Delivered { id, from, to, size } => write!(
                f,
                "accepted {id} from <{from}> for {} ({size} octets)",
                to.iter()
                    .map(|t| format!("<{t}>"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            QueueFinished {
                id,
                delivered,
                failed,
            } => write!(
                f,
                "{id} left the queue: {delivered} recipient(s) delivered, {failed} failed"
            ),
            MessageRejected { reason } => write!(f, "message refused: {reason}"),
            RelayAllowed { rcpt, why } => write!(f, "relaying to <{rcpt}> allowed: {why}"),
            RelayDenied { rcpt, why } => {
                write!(f, "recipient <{rcpt}> refused: relaying denied: {why}")
            }
            CheckFailed { check, detail } => write!(f, "{check} check failed: {detail}"),
            CheckPassed { check, detail } => write!(f, "{check}: {detail}"),
            MailAuth { id, results } => write!(f, "message {id}: {results}"),
            FromRefused { from, login } => {
                write!(f, "From: {from} refused: logged in as {login}")
            }
            ForgedResults { id, count, host } => write!(
                f,
                "message {id}: {count} Authentication-Results field(s) claiming {host} removed"
            ),
            CheckSkipped { check, error } => write!(f, "{check} skipped: {error}"),
            ClientBlocked { at, reason } => write!(f, "{at}: {reason}"),
            ClientUnblocked { client, by, reason } => write!(
                f,
                "{client} unblocked from {by}; its failure counts are cleared (was {reason})"
            ),
            TransferLimit { reason } => write!(f, "message refused: {reason}"),
            SenderRefused { sender, login } => {
                write!(f, "sender <{sender}> refused: logged in as {login}")
            }
            ProtocolAbuse { what } => write!(f, "refused: {what}"),
            LoginRevoked { user } => write!(
                f,
                "login of {user} revoked: the account was changed or removed"
            ),
            PlaintextDiscarded { octets } => write!(
                f,
                "discarded {octets} octets the client sent after STARTTLS before the TLS handshake"
            ),
            OpenRelay { warning } => write!(f, "{warning}"),
            ConfigWarning { warning } => write!(f, "warning: {warning}"),
            TlsUnavailable { error } => write!(
                f,
                "TLS disabled (no STARTTLS, no implicit-TLS port): {error}"
            ),
            AcceptFailed { error } => write!(f, "accept failed: {error}"),
            RecipientOutcome {
                rcpt,
                attempt,
                outcome,
                detail,
            } => match outcome {
                Outcome::Delivered => write!(f, "attempt {attempt}: <{rcpt}> delivered: {detail}"),
                Outcome::Deferred => write!(f, "attempt {attempt}: <{rcpt}> deferred: {detail}"),
                Outcome::Failed => {
                    write!(
                        f,
                        "attempt {attempt}: <{rcpt}> failed permanently: {detail}"
                    )
                }
                Outcome::GivenUp => write!(f, "<{rcpt}> given up after {attempt} attempts"),
            },
            Delivery { text } | Note { text } => write!(f, "{text}"),
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = time::OffsetDateTime::from(self.time);
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03} {:5} {:8}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond(),
            self.level.upper(),
            self.channel.name(),
        )?;
        if let Some(s) = &self.session {
            write!(f, " [{s}]")?;
        }
        write!(f, " {}", self.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_is_bounded_and_ordered() {
        let bus = EventBus::new();
        for i in 0..RING_CAPACITY + 5 {
            bus.emit(
                Level::Info,
                None,
                EventKind::Note {
                    text: i.to_string(),
                },
            );
        }
        let r = bus.recent();
        assert_eq!(r.len(), RING_CAPACITY);
        assert_eq!(r[0].kind, EventKind::Note { text: "5".into() });
    }

    #[test]
    fn protocol_detail_nobody_wants_is_not_made() {
        let bus = EventBus::new();
        let command = || EventKind::Command {
            line: "NOOP".into(),
        };
        // A window's bus keeps everything in its ring.
        assert!(bus.wants(Level::Debug, Channel::SmtpIn));
        // Headless: the ring and the file keep Info; a Debug line goes nowhere.
        bus.set_ring_level(Level::Info);
        bus.set_file_level(Level::Info);
        assert!(!bus.wants(Level::Debug, Channel::SmtpIn));
        assert!(bus.wants(Level::Info, Channel::SmtpIn));
        bus.session(Level::Debug, "s1", command());
        bus.session(
            Level::Info,
            "s1",
            EventKind::Note {
                text: "kept".into(),
            },
        );
        assert_eq!(bus.recent().len(), 1, "only the Info line is kept");
        // A log pane listening wants everything, and gets it.
        let mut live = bus.subscribe();
        assert!(bus.wants(Level::Debug, Channel::SmtpIn));
        bus.session(Level::Debug, "s1", command());
        assert_eq!(live.try_recv().unwrap().kind, command());
        assert_eq!(bus.recent().len(), 1, "the ring still keeps Info and up");
        drop(live);
        // The file at Debug wants it too.
        bus.set_file_level(Level::Debug);
        assert!(bus.wants(Level::Debug, Channel::SmtpIn));
    }

    #[test]
    fn lines_carry_the_session_id() {
        let bus = EventBus::new();
        bus.session(
            Level::Info,
            "s42",
            EventKind::Command {
                line: "NOOP".into(),
            },
        );
        assert!(bus.recent()[0].to_string().contains("[s42] <<< NOOP"));
        assert_eq!(bus.recent()[0].channel, Channel::SmtpIn);
    }

    #[test]
    fn control_characters_never_reach_a_log_line() {
        let kind = EventKind::Command {
            line: "EHLO a\r\n2026-01-01 INFO forged\x1b[2J\u{202E}gnp.exe\u{85}".into(),
        };
        let line = kind.to_string();
        assert_eq!(
            line,
            "<<< EHLO a\\x0d\\x0a2026-01-01 INFO forged\\x1b[2J\\u{202e}gnp.exe\\x85"
        );
        assert!(!line.chars().any(|c| c.is_control()));
        assert_eq!(
            EventKind::Note {
                text: "plain".into()
            }
            .to_string(),
            "plain"
        );
    }
}
