//! One IMAP session, from greeting to LOGOUT: NOT AUTHENTICATED (CAPABILITY, STARTTLS,
//! LOGIN, AUTHENTICATE PLAIN), AUTHENTICATED (folders: LIST, LSUB, STATUS, CREATE, DELETE,
//! RENAME, SUBSCRIBE, APPEND, SELECT/EXAMINE, NAMESPACE, ENABLE, ID) and SELECTED (FETCH,
//! STORE, SEARCH, COPY, MOVE, EXPUNGE, UID variants, CLOSE, UNSELECT, IDLE, CHECK).
//!
//! Other sessions, POP3 and local delivery change the folder under a session; they poke the
//! account ([`mailbox::watch`]), and a selected session rescans before its next command (or
//! at once while IDLE) and sends the untagged EXISTS, EXPUNGE and FETCH updates; EXPUNGE
//! only where RFC 9051 §7.5.1 allows it (not during FETCH, STORE or SEARCH).

use super::Deps;
use super::message::{self, MessageView};
use super::read::{self, Failure, Raw};
use super::reply;
use super::search::{self, Bounds};
use super::selected::{Selected, Update, info_of};
use crate::engine::access::MailboxLogin;
use crate::engine::current::Current;
use crate::engine::events::{EventKind, Level};
use crate::engine::listener::{self, Io, Seat, Stream, new_session_id};
use crate::engine::store::mailbox::{self, Account, Folder, keywords, watch};
use crate::engine::tls::HandshakeError;
use crate::engine::wire::{ReadError, Wire};
use base64::Engine as _;
use imap_codec::decode::{CommandDecodeError, Decoder};
use imap_codec::encode::Encoder;
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::core::{AString, Vec1};
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::fetch::{
    MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName,
};
use imap_codec::imap_types::flag::{Flag, FlagFetch, StoreResponse, StoreType};
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::response::{Data, Response};
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::SequenceSet;
use imap_codec::imap_types::status::StatusDataItemName;
use imap_codec::{CommandCodec, ResponseCodec};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// `BAD` commands after which the session is closed.
pub const MAX_ERRORS: u32 = 20;
/// Queued response octets after which a FETCH flushes before the next message.
const FLUSH_AT: usize = 256 * 1024;

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
        selected: None,
        rev2: false,
        errors: 0,
        unflushed: 0,
        doomed: false,
    };
    let on = if s.seat.implicit_tls {
        "IMAP (implicit TLS)"
    } else {
        "IMAP"
    };
    s.log(Level::Info, format!("connect from {peer} on {on}"));
    let reason = s.run().await;
    s.log(Level::Info, format!("disconnect ({reason})"));
}

/// The AUTHENTICATED state.
struct User {
    /// The account's address.
    address: String,
    /// The hash the login was checked against (a changed password ends the session).
    hash: String,
    /// Its folders.
    account: Account,
    /// Change notices for the account.
    watch: watch::Watch,
}

/// What the command loop does next.
enum Next {
    /// Read the next command.
    Continue,
    /// Run the TLS handshake (after STARTTLS).
    StartTls,
    /// Close, for this reason.
    Close(String),
}

/// How a command ended: `OK`, `NO` or `BAD` with this text.
enum Done {
    Ok(String),
    No(String),
    Bad(String),
}

fn ok() -> Done {
    Done::Ok(reply::DONE.into())
}

fn no(t: &str) -> Done {
    Done::No(t.into())
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
    /// `Some` once logged in.
    user: Option<User>,
    /// `Some` in the SELECTED state.
    selected: Option<Selected>,
    /// The client enabled IMAP4rev2 (ENABLE): ESEARCH answers SEARCH.
    rev2: bool,
    /// Bad commands so far.
    errors: u32,
    /// Octets of data responses queued since the last flush.
    unflushed: usize,
    /// A `* BYE` was sent (the selected folder's UIDVALIDITY changed): close after the
    /// command.
    doomed: bool,
}

/// Quotes a string for a status line or a hand-built response (`"` and `\` escaped).
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A list of numbers as an IMAP set (`1:3,7`).
fn set_of(nums: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < nums.len() {
        let start = nums[i];
        let mut end = start;
        while i + 1 < nums.len() && nums[i + 1] == end + 1 {
            i += 1;
            end = nums[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if end == start {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// A mailbox name as the client gave it.
fn name_of(m: &Mailbox<'_>) -> String {
    match m {
        Mailbox::Inbox => "INBOX".into(),
        Mailbox::Other(o) => String::from_utf8_lossy(o.as_ref()).into_owned(),
    }
}

fn astring(a: &AString<'_>) -> String {
    String::from_utf8_lossy(a.as_ref()).into_owned()
}

/// IMAP LIST pattern matching: `*` matches anything, `%` anything but `/`.
fn wildcard(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|i| wildcard(rest, &name[i..])),
        Some((b'%', rest)) => (0..=name.len())
            .take_while(|&i| i == 0 || name[i - 1] != b'/')
            .any(|i| wildcard(rest, &name[i..])),
        Some((c, rest)) => name
            .split_first()
            .is_some_and(|(n, nrest)| n == c && wildcard(rest, nrest)),
    }
}

/// The internal date of a message file: whole seconds, UTC (a time IMAP cannot express,
/// before year 0 or after 9999, becomes the epoch).
fn internal_date(t: SystemTime) -> DateTime {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let utc = chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default();
    let fixed = utc.fixed_offset();
    DateTime::try_from(fixed).unwrap_or_else(|_| {
        DateTime::unvalidated(chrono::DateTime::<chrono::Utc>::default().fixed_offset())
    })
}

impl Session {
    fn log(&self, level: Level, text: String) {
        self.deps
            .events
            .session(level, &self.id, EventKind::Imap { text });
    }

    /// Queues one line (CRLF added), logged at Debug.
    fn line(&mut self, line: &str) {
        self.log(Level::Debug, format!(">>> {line}"));
        self.wire.queue(line);
        self.wire.queue("\r\n");
    }

    /// Queues a data response serialised by imap-codec (not logged: FETCH can be large).
    fn data(&mut self, d: Data<'_>) {
        let bytes = ResponseCodec::new().encode(&Response::Data(d)).dump();
        self.unflushed += bytes.len();
        self.wire.queue_bytes(&bytes);
    }

    fn timeout(&self) -> Duration {
        self.cur.config.imap.idle_timeout.0
    }

    async fn run(&mut self) -> String {
        self.wire.set_write_timeout(self.timeout());
        if self.seat.implicit_tls
            && let Err(e) = self.handshake().await
        {
            return e.to_string();
        }
        let caps = self.capabilities();
        self.line(&format!("* OK [CAPABILITY {caps}] {}", reply::GREETING));
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

    /// Whether a password may be sent on this connection now.
    fn login_allowed(&self) -> bool {
        self.tls.is_some() || self.cur.config.imap.plaintext_login.allows(self.peer.ip())
    }

    fn starttls_offered(&self) -> bool {
        self.tls.is_none() && self.cur.tls.is_some() && self.cur.config.imap.explicit_ssl
    }

    /// The CAPABILITY list for the current state.
    fn capabilities(&self) -> String {
        let mut c = vec!["IMAP4rev1", "IMAP4rev2"];
        if self.user.is_none() {
            if self.starttls_offered() {
                c.push("STARTTLS");
            }
            if self.login_allowed() {
                c.push("AUTH=PLAIN");
                c.push("SASL-IR");
            } else {
                c.push("LOGINDISABLED");
            }
        }
        c.extend([
            "LITERAL+",
            "ENABLE",
            "IDLE",
            "NAMESPACE",
            "ID",
            "UIDPLUS",
            "MOVE",
            "UNSELECT",
            "SPECIAL-USE",
        ]);
        c.join(" ")
    }

    async fn command_loop(&mut self) -> Next {
        loop {
            if let Err(e) = self.wire.flush().await {
                return Next::Close(format!("write error: {e}"));
            }
            self.cur = self.deps.current.borrow().clone();
            let (shutdown, closed) = (self.deps.shutdown.clone(), self.seat.closed.clone());
            let timeout = self.timeout();
            let got = tokio::select! {
                biased;
                r = read::command(&mut self.wire, timeout) => r,
                _ = shutdown.cancelled() => {
                    self.line(&format!("* BYE {}", reply::SHUTTING_DOWN));
                    return Next::Close("server shutting down".into());
                }
                _ = closed.cancelled() => {
                    self.line(&format!("* BYE {}", reply::LISTENER_CLOSED));
                    return Next::Close("listener closed".into());
                }
            };
            self.cur = self.deps.current.borrow().clone();
            if let Some(u) = &self.user
                && !self
                    .deps
                    .gate
                    .mailbox_login_in_force(&self.cur, &self.id, &u.address, &u.hash)
            {
                self.line(&format!("* BYE {}", reply::LOGIN_REVOKED));
                return Next::Close("login revoked".into());
            }
            let next = match got {
                Ok(raw) => self.command(raw).await,
                Err(Failure::TooLong(tag)) => {
                    self.log(
                        Level::Debug,
                        format!("<<< (line over {} octets)", read::MAX_LINE),
                    );
                    self.tagged(&tag, Done::Bad(reply::TOO_LONG.into()));
                    Next::Continue
                }
                Err(Failure::LiteralTooBig(tag)) => {
                    self.tagged(&tag, Done::No(reply::LITERAL_TOO_BIG.into()));
                    Next::Continue
                }
                Err(Failure::NonSyncTooBig(_)) => {
                    self.line(&format!("* BYE {}", reply::NONSYNC_TOO_BIG));
                    return Next::Close("literal too big".into());
                }
                Err(Failure::Wire(ReadError::Timeout)) => {
                    self.line(&format!("* BYE {}", reply::TIMEOUT));
                    return Next::Close("idle time-out".into());
                }
                Err(Failure::Wire(ReadError::Closed)) => {
                    return Next::Close("client closed the connection".into());
                }
                Err(Failure::Wire(e)) => return Next::Close(format!("read error: {e}")),
            };
            match next {
                Next::Continue if self.doomed => {
                    return Next::Close("UIDVALIDITY changed".into());
                }
                Next::Continue if self.errors >= MAX_ERRORS => {
                    self.line(&format!("* BYE {}", reply::TOO_MANY_ERRORS));
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

    /// Queues the tagged completion.
    fn tagged(&mut self, tag: &str, done: Done) {
        let line = match done {
            Done::Ok(t) => format!("{tag} OK {t}"),
            // A NO is an answer (no such folder, a wrong password the gate counts itself);
            // only BAD, a protocol error, counts towards the error limit.
            Done::No(t) => format!("{tag} NO {t}"),
            Done::Bad(t) => {
                self.errors += 1;
                format!("{tag} BAD {t}")
            }
        };
        self.line(&line);
    }

    async fn command(&mut self, raw: Raw) -> Next {
        self.log(Level::Debug, format!("<<< {}", raw.redacted()));
        // LIST-EXTENDED's options (imap-codec parses plain LIST only).
        let (bytes, list_opts) = match super::list::strip(&raw.bytes) {
            Some((b, o)) => (std::borrow::Cow::Owned(b), o),
            None => (
                std::borrow::Cow::Borrowed(&raw.bytes[..]),
                super::list::Options::default(),
            ),
        };
        let cmd = match CommandCodec::new().decode(&bytes) {
            Ok((&[], cmd)) => cmd,
            Ok(_)
            | Err(CommandDecodeError::Incomplete)
            | Err(CommandDecodeError::LiteralFound { .. })
            | Err(CommandDecodeError::Failed) => {
                self.tagged(&raw.tag(), Done::Bad(reply::BAD_SYNTAX.into()));
                return Next::Continue;
            }
        };
        let tag = cmd.tag.as_ref().to_string();
        let Command { body, .. } = cmd;
        let (authed, selected) = (self.user.is_some(), self.selected.is_some());
        // Updates other sessions made, before the command (EXPUNGE only where allowed).
        if selected {
            let expunge = !matches!(
                body,
                CommandBody::Fetch { uid: false, .. }
                    | CommandBody::Store { uid: false, .. }
                    | CommandBody::Search { uid: false, .. }
            );
            let changed = self
                .user
                .as_ref()
                .is_some_and(|u| u.watch.has_changed().unwrap_or(false));
            if changed {
                self.sync(expunge).await;
            }
        }
        let done = match body {
            CommandBody::Capability => {
                let caps = self.capabilities();
                self.line(&format!("* CAPABILITY {caps}"));
                ok()
            }
            CommandBody::Noop | CommandBody::Check => {
                if selected {
                    self.sync(true).await;
                }
                ok()
            }
            CommandBody::Logout => {
                self.line(&format!("* BYE {}", reply::LOGOUT));
                self.tagged(&tag, ok());
                return Next::Close("LOGOUT".into());
            }
            CommandBody::Id { .. } => {
                self.line("* ID (\"name\" \"Postern\")");
                ok()
            }
            CommandBody::StartTLS if !authed => {
                if self.tls.is_some() {
                    Done::Bad(reply::TLS_ACTIVE.into())
                } else if !self.starttls_offered() {
                    no(reply::TLS_UNAVAILABLE)
                } else {
                    self.tagged(&tag, Done::Ok(reply::STARTTLS_GO.into()));
                    return Next::StartTls;
                }
            }
            CommandBody::Login { username, password } if !authed => {
                if !self.login_allowed() {
                    no(reply::PRIVACY_REQUIRED)
                } else {
                    let (u, p) = (astring(&username), astring(password.declassify()));
                    match self.login(u, p).await {
                        Ok(d) => d,
                        Err(close) => {
                            self.tagged(&tag, no(&close));
                            return Next::Close("blocked (failed logins)".into());
                        }
                    }
                }
            }
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            } if !authed => {
                if !self.login_allowed() {
                    no(reply::PRIVACY_REQUIRED)
                } else if !mechanism.to_string().eq_ignore_ascii_case("PLAIN") {
                    no(reply::UNKNOWN_MECHANISM)
                } else {
                    let data = match initial_response {
                        Some(d) => Ok(d.declassify().to_vec()),
                        None => self.sasl_continue().await,
                    };
                    match data {
                        Err(Some(close)) => return Next::Close(close),
                        Err(None) => Done::Bad(reply::AUTH_CANCELLED.into()),
                        Ok(raw) => match decode_plain(&raw) {
                            None => Done::Bad(reply::AUTH_MALFORMED.into()),
                            Some((u, p)) => match self.login(u, p).await {
                                Ok(d) => d,
                                Err(close) => {
                                    self.tagged(&tag, no(&close));
                                    return Next::Close("blocked (failed logins)".into());
                                }
                            },
                        },
                    }
                }
            }
            CommandBody::Enable { capabilities } if authed => {
                let mut on = Vec::new();
                for c in capabilities.as_ref() {
                    let name = c.to_string();
                    if name.eq_ignore_ascii_case("IMAP4rev2") {
                        self.rev2 = true;
                        on.push(name);
                    }
                }
                if !on.is_empty() {
                    self.line(&format!("* ENABLED {}", on.join(" ")));
                }
                ok()
            }
            CommandBody::Namespace if authed => {
                self.line("* NAMESPACE ((\"\" \"/\")) NIL NIL");
                ok()
            }
            CommandBody::List {
                reference,
                mailbox_wildcard,
            } if authed => {
                self.list(&name_of(&reference), &mailbox_wildcard, false, list_opts)
                    .await
            }
            CommandBody::Lsub {
                reference,
                mailbox_wildcard,
            } if authed => {
                let o = super::list::Options::default();
                self.list(&name_of(&reference), &mailbox_wildcard, true, o)
                    .await
            }
            CommandBody::Status {
                mailbox,
                item_names,
            } if authed => self.status(&name_of(&mailbox), &item_names).await,
            CommandBody::Create { mailbox } if authed => {
                let name = name_of(&mailbox);
                let name = name.trim_end_matches('/').to_string();
                let a = self.account();
                if !mailbox::valid_name(&name) {
                    no(reply::BAD_NAME)
                } else if a.exists(&name) {
                    no(reply::EXISTS)
                } else {
                    self.blocking(move || a.create(&name)).await
                }
            }
            CommandBody::Delete { mailbox } if authed => {
                let name = name_of(&mailbox);
                let a = self.account();
                if name.eq_ignore_ascii_case("INBOX") {
                    no(reply::INBOX_FIXED)
                } else if !mailbox::valid_name(&name) || !a.exists(&name) {
                    no(reply::NO_MAILBOX)
                } else {
                    if self.selected.as_ref().is_some_and(|s| s.name == name) {
                        self.selected = None;
                    }
                    self.blocking(move || a.delete(&name)).await
                }
            }
            CommandBody::Rename { from, to } if authed => {
                let (from, to) = (name_of(&from), name_of(&to));
                let a = self.account();
                if from.eq_ignore_ascii_case("INBOX") {
                    no(reply::INBOX_FIXED)
                } else if !mailbox::valid_name(&from) || !a.exists(&from) {
                    no(reply::NO_MAILBOX)
                } else if !mailbox::valid_name(&to) {
                    no(reply::BAD_NAME)
                } else if a.exists(&to) {
                    no(reply::EXISTS)
                } else {
                    self.blocking(move || a.rename(&from, &to)).await
                }
            }
            CommandBody::Subscribe { mailbox } if authed => {
                let (a, name) = (self.account(), name_of(&mailbox));
                self.blocking(move || a.subscribe(&name, true)).await
            }
            CommandBody::Unsubscribe { mailbox } if authed => {
                let (a, name) = (self.account(), name_of(&mailbox));
                self.blocking(move || a.subscribe(&name, false)).await
            }
            CommandBody::Select { mailbox, .. } if authed => {
                self.select(name_of(&mailbox), false).await
            }
            CommandBody::Examine { mailbox, .. } if authed => {
                self.select(name_of(&mailbox), true).await
            }
            CommandBody::Append {
                mailbox,
                flags,
                date,
                message,
            } if authed => {
                let data = match &message {
                    imap_codec::imap_types::extensions::binary::LiteralOrLiteral8::Literal(l) => {
                        l.data().to_vec()
                    }
                    imap_codec::imap_types::extensions::binary::LiteralOrLiteral8::Literal8(l) => {
                        l.data.to_vec()
                    }
                };
                let date = date.map(|d| SystemTime::from(*d.as_ref()));
                self.append(name_of(&mailbox), &flags, date, data).await
            }
            CommandBody::Idle if selected || authed => return self.idle(&tag).await,
            CommandBody::Close if selected => {
                let s = self.selected.as_ref().expect("selected");
                if !s.read_only {
                    self.expunge(None, false).await;
                }
                self.selected = None;
                ok()
            }
            CommandBody::Unselect if selected => {
                self.selected = None;
                ok()
            }
            CommandBody::Expunge if selected => self.expunge(None, true).await,
            CommandBody::ExpungeUid { sequence_set } if selected => {
                self.expunge(Some(sequence_set), true).await
            }
            CommandBody::Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
                ..
            } if selected => {
                let items = match macro_or_item_names {
                    MacroOrMessageDataItemNames::Macro(m) => {
                        m.expand().into_iter().map(|i| i.into_static()).collect()
                    }
                    MacroOrMessageDataItemNames::MessageDataItemNames(v) => v,
                };
                self.fetch(&sequence_set, items, uid).await
            }
            CommandBody::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                ..
            } if selected => self.store(&sequence_set, kind, response, &flags, uid).await,
            CommandBody::Search { criteria, uid, .. } if selected => {
                self.search(&tag, criteria, uid).await
            }
            CommandBody::Copy {
                sequence_set,
                mailbox,
                uid,
            } if selected => {
                self.copy(&sequence_set, name_of(&mailbox), uid, false)
                    .await
            }
            CommandBody::Move {
                sequence_set,
                mailbox,
                uid,
            } if selected => self.copy(&sequence_set, name_of(&mailbox), uid, true).await,
            _ => Done::Bad(reply::WRONG_STATE.into()),
        };
        self.tagged(&tag, done);
        Next::Continue
    }

    fn account(&self) -> Account {
        self.user.as_ref().expect("authenticated").account.clone()
    }

    /// Runs a folder operation on a blocking thread: `OK`, or `NO [SERVERBUG]` (logged).
    async fn blocking(&mut self, f: impl FnOnce() -> std::io::Result<()> + Send + 'static) -> Done {
        match tokio::task::spawn_blocking(f).await {
            Ok(Ok(())) => {
                self.poke();
                ok()
            }
            Ok(Err(e)) => {
                self.log(Level::Error, format!("mailbox operation failed: {e}"));
                no(reply::SERVER_BUG)
            }
            Err(e) => {
                self.log(Level::Error, format!("mailbox operation failed: {e}"));
                no(reply::SERVER_BUG)
            }
        }
    }

    /// Tells the account's other sessions that something changed.
    /// This session's own notice is taken as seen when nobody else's came meanwhile: its
    /// view already holds its change, and a rescan of a big folder after every STORE would
    /// cost a directory listing each time.
    fn poke(&mut self) {
        if let Some(u) = self.user.as_mut() {
            let pending = u.watch.has_changed().unwrap_or(true);
            let before = *u.watch.borrow();
            watch::poke(u.account.dir());
            if !pending && *u.watch.borrow() == before.wrapping_add(1) {
                u.watch.mark_unchanged();
            }
        }
    }

    /// Reads AUTHENTICATE's response line: `Ok(data)`, `Err(None)` when cancelled,
    /// `Err(Some(reason))` when the session must end.
    async fn sasl_continue(&mut self) -> Result<Vec<u8>, Option<String>> {
        self.wire.queue("+ \r\n");
        if let Err(e) = self.wire.flush().await {
            return Err(Some(format!("write error: {e}")));
        }
        match self.wire.read_line(read::MAX_LINE, self.timeout()).await {
            Ok(l) if l == b"*" => Err(None),
            Ok(l) => base64::engine::general_purpose::STANDARD
                .decode(&l)
                .map_err(|_| None),
            Err(e) => Err(Some(format!("during AUTHENTICATE: {e}"))),
        }
    }

    /// The gate checks the password (lockout shared with SMTP AUTH and POP3). `Err` with
    /// the `NO` text when the client is now blocked (the session then ends).
    async fn login(&mut self, user: String, pass: String) -> Result<Done, String> {
        let (deps, cur) = (self.deps.clone(), self.cur.clone());
        let (address, hash) = match deps
            .gate
            .mailbox_login(&cur, &self.id, self.peer, user, pass)
            .await
        {
            MailboxLogin::Success { address, hash } => (address, hash),
            MailboxLogin::Failure(None) => return Ok(no(reply::AUTH_FAILED)),
            MailboxLogin::Failure(Some(r)) | MailboxLogin::Blocked(r) => {
                return Err(r.plain_text());
            }
            MailboxLogin::Busy => return Ok(no(reply::AUTH_BUSY)),
        };
        let Some(account) = Account::new(&deps.mailroot, &address) else {
            return Ok(no(reply::SERVER_BUG));
        };
        let a = account.clone();
        if let Ok(Err(e)) | Err(e) = tokio::task::spawn_blocking(move || a.prepare())
            .await
            .map_err(std::io::Error::other)
        {
            self.log(
                Level::Error,
                format!("{address}: cannot open the mailbox: {e}"),
            );
            return Ok(no(reply::SERVER_BUG));
        }
        self.log(Level::Info, format!("logged in as {address}"));
        self.user = Some(User {
            watch: watch::subscribe(account.dir()),
            address,
            hash,
            account,
        });
        let caps = self.capabilities();
        Ok(Done::Ok(format!("[CAPABILITY {caps}] Logged in")))
    }

    /// Rescans the selected folder and sends what changed.
    async fn sync(&mut self, expunge: bool) {
        if let Some(u) = self.user.as_mut() {
            u.watch.mark_unchanged();
        }
        let Some(sel) = self.selected.as_ref() else {
            return;
        };
        let folder = sel.folder.clone();
        let Ok(Ok(scan)) = tokio::task::spawn_blocking(move || folder.scan()).await else {
            return;
        };
        let sel = self.selected.as_mut().expect("selected");
        if scan.uidvalidity != sel.uidvalidity {
            // The UID list was lost and made again: the client's UIDs mean nothing now, and
            // only a new SELECT (a new session) can tell it so safely.
            self.line(&format!("* BYE {}", reply::UIDVALIDITY_CHANGED));
            self.doomed = true;
            return;
        }
        let updates = sel.sync(scan, expunge);
        self.send_updates(updates, false);
    }

    fn send_updates(&mut self, updates: Vec<Update>, with_uid: bool) {
        for u in updates {
            match u {
                Update::Expunge(n) => self.line(&format!("* {n} EXPUNGE")),
                Update::Exists(n) => self.line(&format!("* {n} EXISTS")),
                Update::Flags(n) => self.flags_response(n, with_uid),
            }
        }
    }

    /// `* N FETCH (FLAGS (...))`, with the UID when asked.
    fn flags_response(&mut self, n: u32, with_uid: bool) {
        let sel = self.selected.as_ref().expect("selected");
        let e = &sel.entries[n as usize - 1];
        let mut items = vec![MessageDataItem::Flags(
            e.flags.iter().cloned().map(FlagFetch::Flag).collect(),
        )];
        if with_uid && let Some(uid) = NonZeroU32::new(e.message.uid) {
            items.push(MessageDataItem::Uid(uid));
        }
        if let Some(seq) = NonZeroU32::new(n) {
            self.data(Data::Fetch {
                seq,
                items: Vec1::unvalidated(items),
            });
        }
    }

    /// LIST or LSUB; `\Subscribed` only when LIST-EXTENDED's options ask for it (RFC 5258).
    async fn list(
        &mut self,
        reference: &str,
        pattern: &ListMailbox<'_>,
        lsub: bool,
        opts: super::list::Options,
    ) -> Done {
        let pattern = match pattern {
            ListMailbox::Token(t) => String::from_utf8_lossy(t.as_ref()).into_owned(),
            ListMailbox::String(s) => String::from_utf8_lossy(s.as_ref()).into_owned(),
        };
        let verb = if lsub { "LSUB" } else { "LIST" };
        if pattern.is_empty() && !lsub {
            self.line("* LIST (\\Noselect) \"/\" \"\"");
            return ok();
        }
        let full = format!("{reference}{pattern}");
        let a = self.account();
        let Ok(Ok((folders, subs))) = tokio::task::spawn_blocking(move || {
            Ok::<_, std::io::Error>((a.folders()?, a.subscriptions()?))
        })
        .await
        else {
            return no(reply::SERVER_BUG);
        };
        let names: &[String] = if lsub || opts.subscribed_only {
            &subs
        } else {
            &folders
        };
        for name in names {
            let matched = if name == "INBOX" {
                wildcard(full.to_ascii_uppercase().as_bytes(), b"INBOX")
            } else {
                wildcard(full.as_bytes(), name.as_bytes())
            };
            if !matched {
                continue;
            }
            let mut attrs = Vec::new();
            let children = folders.iter().any(|f| f.starts_with(&format!("{name}/")));
            attrs.push(if children {
                "\\HasChildren"
            } else {
                "\\HasNoChildren"
            });
            if !lsub && (opts.subscribed_only || opts.return_subscribed) && subs.contains(name) {
                attrs.push("\\Subscribed");
            }
            let special = mailbox::SPECIAL_USE.iter().find(|(n, _)| n == name);
            if let Some((_, attr)) = special {
                attrs.push(attr);
            } else if opts.special_only {
                continue;
            }
            if !folders.contains(name) {
                attrs = if lsub {
                    vec!["\\Noselect"]
                } else {
                    vec!["\\NonExistent", "\\Subscribed"]
                };
            }
            self.line(&format!(
                "* {verb} ({}) \"/\" {}",
                attrs.join(" "),
                quoted(name)
            ));
        }
        ok()
    }

    async fn status(&mut self, name: &str, items: &[StatusDataItemName]) -> Done {
        let a = self.account();
        if !a.exists(name) && !name.eq_ignore_ascii_case("INBOX") {
            return no(reply::NO_MAILBOX);
        }
        let folder = a.folder(name);
        let Ok(Ok(scan)) = tokio::task::spawn_blocking(move || folder.scan()).await else {
            return no(reply::SERVER_BUG);
        };
        let mut out = Vec::new();
        for i in items {
            match i {
                StatusDataItemName::Messages => {
                    out.push(format!("MESSAGES {}", scan.messages.len()))
                }
                StatusDataItemName::Recent => out.push("RECENT 0".into()),
                StatusDataItemName::UidNext => out.push(format!("UIDNEXT {}", scan.uidnext)),
                StatusDataItemName::UidValidity => {
                    out.push(format!("UIDVALIDITY {}", scan.uidvalidity))
                }
                StatusDataItemName::Unseen => out.push(format!(
                    "UNSEEN {}",
                    scan.messages.iter().filter(|m| !m.has_flag('S')).count()
                )),
                StatusDataItemName::Deleted => out.push(format!(
                    "DELETED {}",
                    scan.messages.iter().filter(|m| m.has_flag('T')).count()
                )),
                StatusDataItemName::DeletedStorage => out.push(format!(
                    "DELETED-STORAGE {}",
                    scan.messages
                        .iter()
                        .filter(|m| m.has_flag('T'))
                        .map(|m| m.size)
                        .sum::<u64>()
                )),
            }
        }
        self.line(&format!("* STATUS {} ({})", quoted(name), out.join(" ")));
        ok()
    }

    async fn select(&mut self, name: String, read_only: bool) -> Done {
        self.selected = None;
        let a = self.account();
        if !name.eq_ignore_ascii_case("INBOX") && (!mailbox::valid_name(&name) || !a.exists(&name))
        {
            return no(reply::NO_MAILBOX);
        }
        let name = if name.eq_ignore_ascii_case("INBOX") {
            "INBOX".to_string()
        } else {
            name
        };
        let folder = a.folder(&name);
        let f = folder.clone();
        // What was in new/ has now been seen by a reader: moved to cur/.
        let opened = tokio::task::spawn_blocking(move || {
            let mut scan = f.scan()?;
            if !read_only {
                let mut moved = false;
                for m in scan.messages.iter_mut().filter(|m| m.in_new) {
                    let flags = m.flags().to_string();
                    f.set_flags(m, &flags)?;
                    moved = true;
                }
                if moved {
                    f.sync()?;
                }
            }
            Ok::<_, std::io::Error>(scan)
        })
        .await;
        let Ok(Ok(scan)) = opened else {
            return no(reply::SERVER_BUG);
        };
        if let Some(u) = self.user.as_mut() {
            u.watch.mark_unchanged();
        }
        let sel = Selected::new(name.clone(), folder, read_only, scan);
        let kw: Vec<String> = sel.keywords.clone();
        let flags = format!(
            "\\Answered \\Flagged \\Deleted \\Seen \\Draft{}",
            kw.iter().map(|k| format!(" {k}")).collect::<String>()
        );
        self.line(&format!("* {} EXISTS", sel.exists()));
        if !self.rev2 {
            // IMAP4rev1 requires it; Postern keeps no \Recent (RFC 9051 dropped it).
            self.line("* 0 RECENT");
        }
        self.line(&format!("* FLAGS ({flags})"));
        self.line(&format!(
            "* OK [PERMANENTFLAGS ({flags} \\*)] Flags permitted"
        ));
        self.line(&format!(
            "* OK [UIDVALIDITY {}] UIDs valid",
            sel.uidvalidity
        ));
        self.line(&format!(
            "* OK [UIDNEXT {}] Predicted next UID",
            sel.uidnext
        ));
        if let Some(i) = sel
            .entries
            .iter()
            .position(|e| !e.flags.contains(&Flag::Seen))
        {
            self.line(&format!("* OK [UNSEEN {}] First unseen", i + 1));
        }
        if self.rev2 {
            self.line(&format!("* LIST () \"/\" {}", quoted(&name)));
        }
        self.selected = Some(sel);
        Done::Ok(if read_only {
            "[READ-ONLY] EXAMINE completed".into()
        } else {
            "[READ-WRITE] SELECT completed".into()
        })
    }

    /// The indexes (0-based) a sequence set or UID set names, in folder order. Each
    /// message is tested against the set's ranges, so `1:4294967295` costs no more than `*`.
    fn targets(&self, set: &SequenceSet, uid: bool) -> Vec<usize> {
        let sel = self.selected.as_ref().expect("selected");
        let max_uid = sel.entries.last().map_or(0, |e| e.message.uid);
        let max_seq = sel.entries.len() as u32;
        (0..sel.entries.len())
            .filter(|&i| {
                if uid {
                    search::in_set(set, sel.entries[i].message.uid, max_uid)
                } else {
                    search::in_set(set, i as u32 + 1, max_seq)
                }
            })
            .collect()
    }

    /// Whether a sequence set names only sequence numbers beyond the folder somewhere (a
    /// `BAD`, RFC 9051 §6.4.4 and §9 `seq-number`).
    fn out_of_range(&self, set: &SequenceSet) -> bool {
        use imap_codec::imap_types::sequence::{SeqOrUid, Sequence};
        let n = self.selected.as_ref().map_or(0, |s| s.entries.len()) as u32;
        // `*` is the last message, or nothing in an empty folder (`1:*` then names nothing).
        let over = |s: &SeqOrUid| matches!(s, SeqOrUid::Value(v) if v.get() > n);
        set.0.as_ref().iter().any(|s| match s {
            Sequence::Single(a) => over(a),
            // A range reaching past the end (a client's stale count) is served in part.
            Sequence::Range(a, b) => over(a) && over(b),
        })
    }

    async fn fetch(
        &mut self,
        set: &SequenceSet,
        mut items: Vec<MessageDataItemName<'_>>,
        uid: bool,
    ) -> Done {
        if !uid && self.out_of_range(set) {
            return Done::Bad("Invalid message sequence number".into());
        }
        if uid && !items.contains(&MessageDataItemName::Uid) {
            items.insert(0, MessageDataItemName::Uid);
        }
        let sets_seen = items.iter().any(|i| {
            matches!(
                i,
                MessageDataItemName::BodyExt { peek: false, .. }
                    | MessageDataItemName::Rfc822
                    | MessageDataItemName::Rfc822Text
                    | MessageDataItemName::Binary { peek: false, .. }
            )
        });
        let needs_body = message::needs_body(&items);
        let header_only = message::header_only(&items);
        let needs_date = items.contains(&MessageDataItemName::InternalDate);
        let targets = self.targets(set, uid);
        let mut gone = false;
        let mut seen_changed = Vec::new();
        for i in targets {
            let sel = self.selected.as_mut().expect("selected");
            let folder = sel.folder.clone();
            let entry = &mut sel.entries[i];
            if entry.gone {
                gone = true;
                continue;
            }
            // Plain file I/O on this task, as POP3's RETR (see ARCHITECTURE.md).
            let raw = if needs_body {
                match read_message(&folder, &mut entry.message, header_only) {
                    Ok(v) => v,
                    Err(_) => {
                        gone = true;
                        continue;
                    }
                }
            } else {
                Vec::new()
            };
            let date = if needs_date {
                folder
                    .mtime(&mut entry.message)
                    .unwrap_or(SystemTime::UNIX_EPOCH)
            } else {
                SystemTime::UNIX_EPOCH
            };
            if sets_seen && !sel.read_only && !entry.flags.contains(&Flag::Seen) {
                entry.flags.push(Flag::Seen);
                seen_changed.push(i);
            }
            let (Some(seq), Some(uidn)) = (
                NonZeroU32::new(i as u32 + 1),
                NonZeroU32::new(entry.message.uid),
            ) else {
                continue;
            };
            let mut out = message::fetch(
                &MessageView {
                    seq,
                    uid: uidn,
                    flags: &entry.flags,
                    internal_date: internal_date(date),
                    size: entry.message.size.min(u32::MAX as u64) as u32,
                    raw: &raw,
                },
                &items,
            );
            if sets_seen
                && seen_changed.last() == Some(&i)
                && !items.contains(&MessageDataItemName::Flags)
            {
                out.push(MessageDataItem::Flags(
                    entry.flags.iter().cloned().map(FlagFetch::Flag).collect(),
                ));
            }
            if out.is_empty() {
                continue;
            }
            self.data(Data::Fetch {
                seq,
                items: Vec1::unvalidated(out),
            });
            // Sent as it is made: a FETCH of a whole folder never piles up in memory.
            if self.unflushed >= FLUSH_AT {
                self.unflushed = 0;
                if let Err(e) = self.wire.flush().await {
                    self.log(Level::Info, format!("write error: {e}"));
                    break;
                }
            }
        }
        if !seen_changed.is_empty() {
            self.write_flags(&seen_changed).await;
        }
        if gone { no(reply::EXPUNGED) } else { ok() }
    }

    /// Writes the flags of these entries to their file names.
    async fn write_flags(&mut self, idx: &[usize]) {
        let sel = self.selected.as_ref().expect("selected");
        let folder = sel.folder.clone();
        let jobs: Vec<(usize, mailbox::Message, String, Vec<String>)> = idx
            .iter()
            .map(|&i| {
                let e = &sel.entries[i];
                let (letters, words) = info_of(&e.flags);
                (i, e.message.clone(), letters, words)
            })
            .collect();
        let done = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            for (i, mut m, letters, words) in jobs {
                let kw = keywords::letters(folder.dir(), &words).unwrap_or_default();
                if folder
                    .set_flags(&mut m, &format!("{letters}{kw}"))
                    .unwrap_or(false)
                {
                    out.push((i, m));
                }
            }
            out
        })
        .await
        .unwrap_or_default();
        let sel = self.selected.as_mut().expect("selected");
        for (i, m) in done {
            if let Some(e) = sel.entries.get_mut(i) {
                e.message = m;
            }
        }
        sel.keywords = keywords::read(sel.folder.dir()).unwrap_or_default();
        self.poke();
    }

    async fn store(
        &mut self,
        set: &SequenceSet,
        kind: StoreType,
        response: StoreResponse,
        flags: &[Flag<'_>],
        uid: bool,
    ) -> Done {
        if self.selected.as_ref().is_some_and(|s| s.read_only) {
            return no(reply::READ_ONLY);
        }
        if !uid && self.out_of_range(set) {
            return Done::Bad("Invalid message sequence number".into());
        }
        let targets = self.targets(set, uid);
        let sel = self.selected.as_mut().expect("selected");
        let mut changed = Vec::new();
        for &i in &targets {
            let e = &mut sel.entries[i];
            if e.gone {
                continue;
            }
            let mut new: Vec<Flag<'static>> = match kind {
                StoreType::Replace => Vec::new(),
                _ => e.flags.clone(),
            };
            for f in flags {
                let f = f.clone().into_static();
                match kind {
                    StoreType::Remove => new.retain(|x| *x != f),
                    _ => {
                        if !new.contains(&f) {
                            new.push(f)
                        }
                    }
                }
            }
            if new != e.flags {
                e.flags = new;
                changed.push(i);
            }
        }
        if !changed.is_empty() {
            self.write_flags(&changed).await;
        }
        if response == StoreResponse::Answer {
            for i in targets {
                self.flags_response(i as u32 + 1, uid);
            }
        }
        ok()
    }

    async fn search(&mut self, tag: &str, criteria: Vec1<SearchKey<'_>>, uid: bool) -> Done {
        let key = SearchKey::And(criteria);
        let needs_body = search::needs_body(&key);
        let header_only = search::header_only(&key);
        let sel = self.selected.as_mut().expect("selected");
        let bounds = Bounds {
            max_seq: sel.entries.len() as u32,
            max_uid: sel.entries.last().map_or(0, |e| e.message.uid),
        };
        let folder = sel.folder.clone();
        let mut hits = Vec::new();
        for (i, e) in sel.entries.iter_mut().enumerate() {
            if e.gone {
                continue;
            }
            let raw = if needs_body {
                read_message(&folder, &mut e.message, header_only).unwrap_or_default()
            } else {
                Vec::new()
            };
            let date = folder
                .mtime(&mut e.message)
                .unwrap_or(SystemTime::UNIX_EPOCH);
            let (Some(seq), Some(u)) = (
                NonZeroU32::new(i as u32 + 1),
                NonZeroU32::new(e.message.uid),
            ) else {
                continue;
            };
            let view = MessageView {
                seq,
                uid: u,
                flags: &e.flags,
                internal_date: internal_date(date),
                size: e.message.size.min(u32::MAX as u64) as u32,
                raw: &raw,
            };
            if search::matches(&key, &view, &bounds) {
                hits.push(if uid { u.get() } else { seq.get() });
            }
        }
        if self.rev2 {
            let all = if hits.is_empty() {
                String::new()
            } else {
                format!(" ALL {}", set_of(&hits))
            };
            let u = if uid { " UID" } else { "" };
            self.line(&format!("* ESEARCH (TAG {}){u}{all}", quoted(tag)));
        } else {
            let list: String = hits.iter().map(|n| format!(" {n}")).collect();
            self.line(&format!("* SEARCH{list}"));
        }
        ok()
    }

    /// EXPUNGE (all `\Deleted`) or UID EXPUNGE (those also in `uids`); `tell` sends the
    /// untagged EXPUNGEs (CLOSE removes silently).
    async fn expunge(&mut self, uids: Option<SequenceSet>, tell: bool) -> Done {
        let sel = self.selected.as_ref().expect("selected");
        if sel.read_only {
            return no(reply::READ_ONLY);
        }
        let in_set: Vec<usize> = match &uids {
            Some(s) => self.targets(s, true),
            None => (0..sel.entries.len()).collect(),
        };
        let doomed: Vec<usize> = in_set
            .into_iter()
            .filter(|&i| sel.entries[i].flags.contains(&Flag::Deleted))
            .collect();
        if doomed.is_empty() {
            return ok();
        }
        let folder = sel.folder.clone();
        let msgs: Vec<mailbox::Message> = doomed
            .iter()
            .map(|&i| sel.entries[i].message.clone())
            .collect();
        let done = tokio::task::spawn_blocking(move || {
            for mut m in msgs {
                folder.delete(&mut m)?;
            }
            folder.sync()
        })
        .await;
        if !matches!(done, Ok(Ok(()))) {
            return no(reply::SERVER_BUG);
        }
        let sel = self.selected.as_mut().expect("selected");
        for &i in doomed.iter().rev() {
            sel.entries.remove(i);
        }
        if tell {
            for &i in doomed.iter().rev() {
                self.line(&format!("* {} EXPUNGE", i + 1));
            }
        }
        self.poke();
        ok()
    }

    async fn copy(&mut self, set: &SequenceSet, target: String, uid: bool, mv: bool) -> Done {
        if mv && self.selected.as_ref().is_some_and(|s| s.read_only) {
            return no(reply::READ_ONLY);
        }
        if !uid && self.out_of_range(set) {
            return Done::Bad("Invalid message sequence number".into());
        }
        let a = self.account();
        if !target.eq_ignore_ascii_case("INBOX")
            && (!mailbox::valid_name(&target) || !a.exists(&target))
        {
            return no(reply::TRY_CREATE);
        }
        let to = a.folder(&target);
        let targets = self.targets(set, uid);
        let sel = self.selected.as_ref().expect("selected");
        let from = sel.folder.clone();
        let host = self.cur.config.server.hostname.clone();
        let jobs: Vec<(usize, mailbox::Message, Vec<Flag<'static>>)> = targets
            .iter()
            .filter(|&&i| !sel.entries[i].gone)
            .map(|&i| {
                (
                    i,
                    sel.entries[i].message.clone(),
                    sel.entries[i].flags.clone(),
                )
            })
            .collect();
        let done = tokio::task::spawn_blocking(move || {
            let mut placed = Vec::new();
            for (i, mut m, flags) in jobs {
                let (letters, words) = info_of(&flags);
                let kw = keywords::letters(to.dir(), &words)?;
                if let Some(base) =
                    from.transfer(&mut m, &to, &host, &format!("{letters}{kw}"), !mv)?
                {
                    placed.push((i, m.uid, base));
                }
            }
            to.sync()?;
            if mv {
                from.sync()?;
            }
            let scan = to.scan()?;
            let uid_of: std::collections::HashMap<&str, u32> = scan
                .messages
                .iter()
                .map(|m| (m.base.as_str(), m.uid))
                .collect();
            let out: Vec<(usize, u32, u32)> = placed
                .iter()
                .filter_map(|(i, src, base)| uid_of.get(base.as_str()).map(|d| (*i, *src, *d)))
                .collect();
            Ok::<_, std::io::Error>((scan.uidvalidity, out))
        })
        .await;
        let Ok(Ok((validity, placed))) = done else {
            return no(reply::SERVER_BUG);
        };
        self.poke();
        // A copy into the selected folder itself: the client hears of it now.
        if !mv
            && self
                .selected
                .as_ref()
                .is_some_and(|s| s.folder.dir() == a.folder(&target).dir())
        {
            self.sync(true).await;
        }
        if placed.is_empty() {
            return if targets.is_empty() {
                ok()
            } else {
                no(reply::EXPUNGED)
            };
        }
        let code = format!(
            "[COPYUID {validity} {} {}]",
            placed
                .iter()
                .map(|p| p.1.to_string())
                .collect::<Vec<_>>()
                .join(","),
            placed
                .iter()
                .map(|p| p.2.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        if !mv {
            return Done::Ok(format!("{code} COPY completed"));
        }
        self.line(&format!("* OK {code} Moved"));
        let mut idx: Vec<usize> = placed.iter().map(|p| p.0).collect();
        idx.sort_unstable();
        let sel = self.selected.as_mut().expect("selected");
        for &i in idx.iter().rev() {
            sel.entries.remove(i);
        }
        for &i in idx.iter().rev() {
            self.line(&format!("* {} EXPUNGE", i + 1));
        }
        ok()
    }

    async fn append(
        &mut self,
        target: String,
        flags: &[Flag<'_>],
        date: Option<SystemTime>,
        data: Vec<u8>,
    ) -> Done {
        let a = self.account();
        if !target.eq_ignore_ascii_case("INBOX")
            && (!mailbox::valid_name(&target) || !a.exists(&target))
        {
            return no(reply::TRY_CREATE);
        }
        let to: Folder = a.folder(&target);
        let host = self.cur.config.server.hostname.clone();
        let (letters, words) = info_of(flags);
        let done = tokio::task::spawn_blocking(move || {
            let kw = keywords::letters(to.dir(), &words)?;
            let base = to.append(&host, &data, &format!("{letters}{kw}"), date)?;
            let scan = to.scan()?;
            let uid = scan
                .messages
                .iter()
                .find(|m| m.base == base)
                .map_or(0, |m| m.uid);
            Ok::<_, std::io::Error>((scan.uidvalidity, uid))
        })
        .await;
        match done {
            Ok(Ok((v, uid))) => {
                self.log(Level::Info, format!("APPEND to {target}: UID {uid}"));
                if self.selected.is_some() {
                    self.sync(true).await;
                }
                Done::Ok(format!("[APPENDUID {v} {uid}] APPEND completed"))
            }
            _ => no(reply::SERVER_BUG),
        }
    }

    /// IDLE (RFC 2177): updates as they happen until `DONE`.
    async fn idle(&mut self, tag: &str) -> Next {
        self.line(&format!("+ {}", reply::IDLING));
        if self.selected.is_some() {
            self.sync(true).await;
        }
        let timeout = self.timeout();
        loop {
            if let Err(e) = self.wire.flush().await {
                return Next::Close(format!("write error: {e}"));
            }
            let (shutdown, closed) = (self.deps.shutdown.clone(), self.seat.closed.clone());
            let mut w = self.user.as_ref().expect("authenticated").watch.clone();
            let got = tokio::select! {
                biased;
                r = self.wire.read_line(read::MAX_LINE, timeout) => Some(r),
                _ = w.changed() => None,
                _ = shutdown.cancelled() => {
                    self.line(&format!("* BYE {}", reply::SHUTTING_DOWN));
                    return Next::Close("server shutting down".into());
                }
                _ = closed.cancelled() => {
                    self.line(&format!("* BYE {}", reply::LISTENER_CLOSED));
                    return Next::Close("listener closed".into());
                }
            };
            match got {
                None => {
                    if self.selected.is_some() {
                        self.sync(true).await;
                        if self.doomed {
                            return Next::Close("UIDVALIDITY changed".into());
                        }
                    } else if let Some(u) = self.user.as_mut() {
                        u.watch.mark_unchanged();
                    }
                }
                Some(Ok(l)) if l.eq_ignore_ascii_case(b"DONE") => {
                    self.tagged(tag, ok());
                    return Next::Continue;
                }
                Some(Ok(_)) | Some(Err(ReadError::TooLong)) => {
                    self.tagged(tag, Done::Bad("Expected DONE".into()));
                    return Next::Continue;
                }
                Some(Err(ReadError::Timeout)) => {
                    self.line(&format!("* BYE {}", reply::TIMEOUT));
                    return Next::Close("idle time-out".into());
                }
                Some(Err(ReadError::Closed)) => {
                    return Next::Close("client closed the connection".into());
                }
                Some(Err(e)) => return Next::Close(format!("read error: {e}")),
            }
        }
    }
}

/// A message's bytes: all of them, or (`header_only`) the start through the blank line that
/// ends its header block, read 16 KiB at a time, so a header FETCH or SEARCH does not read
/// attachments.
fn read_message(
    folder: &Folder,
    m: &mut mailbox::Message,
    header_only: bool,
) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut f = folder.open(m)?;
    if !header_only {
        let mut v = Vec::with_capacity(m.size as usize);
        f.read_to_end(&mut v)?;
        return Ok(v);
    }
    let mut v = Vec::new();
    let mut chunk = vec![0; 16 * 1024];
    loop {
        let n = f.read(&mut chunk)?;
        if n == 0 {
            return Ok(v);
        }
        v.extend_from_slice(&chunk[..n]);
        if let Some(len) = message::header::complete_header_len(&v) {
            v.truncate(len);
            return Ok(v);
        }
    }
}

/// `authzid NUL authcid NUL password` (RFC 4616); the login is the authcid.
fn decode_plain(raw: &[u8]) -> Option<(String, String)> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_wildcards() {
        assert!(wildcard(b"*", b"Archive/2024"));
        assert!(wildcard(b"%", b"Archive"));
        assert!(!wildcard(b"%", b"Archive/2024"));
        assert!(wildcard(b"Archive/%", b"Archive/2024"));
        assert!(!wildcard(b"Sent", b"Sent2"));
    }

    #[test]
    fn sets_are_compressed() {
        assert_eq!(set_of(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(set_of(&[]), "");
    }
}
