//! One IMAP session, from greeting to LOGOUT: NOT AUTHENTICATED (CAPABILITY, STARTTLS,
//! LOGIN, AUTHENTICATE PLAIN), AUTHENTICATED (folders: LIST, LSUB, STATUS, CREATE, DELETE,
//! RENAME, SUBSCRIBE, APPEND, SELECT/EXAMINE, NAMESPACE, ENABLE, ID) and SELECTED (FETCH,
//! STORE, SEARCH, COPY, MOVE, EXPUNGE, UID variants, CLOSE, UNSELECT, IDLE, CHECK).
//!
//! Other sessions, POP3 and local delivery change the folder under a session; they poke the
//! account ([`mailbox::watch`]), and a selected session rescans before its next command (or
//! at once while IDLE) and sends the untagged EXISTS, EXPUNGE and FETCH updates; EXPUNGE
//! only where RFC 9051 §7.5.1 allows it (not during FETCH, STORE or SEARCH).
//!
//! This file runs the command loop and dispatches; the longer commands are one file per
//! group: [`auth`] (LOGIN, AUTHENTICATE), [`folders`] (LIST, STATUS, SELECT, APPEND),
//! [`messages`] (FETCH, STORE, SEARCH, EXPUNGE, COPY, MOVE), [`idle`].

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
use crate::engine::store::mailbox::quota::Quota;
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

mod auth;
mod folders;
mod idle;
mod messages;
mod quota;

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
            "QUOTA",
            "QUOTA=RES-STORAGE",
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
                        Ok(raw) => match auth::decode_plain(&raw) {
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
            CommandBody::GetQuotaRoot { mailbox } if authed => {
                self.get_quota_root(name_of(&mailbox)).await
            }
            CommandBody::GetQuota { root } if authed => self.get_quota(&astring(&root)).await,
            CommandBody::SetQuota { .. } if authed => no(reply::QUOTA_FIXED),
            _ => Done::Bad(reply::WRONG_STATE.into()),
        };
        self.tagged(&tag, done);
        Next::Continue
    }

    fn account(&self) -> Account {
        self.user.as_ref().expect("authenticated").account.clone()
    }

    /// The logged-in account's Max Account Size accounting, under the limit in force now.
    fn quota(&self) -> Quota {
        let u = self.user.as_ref().expect("authenticated");
        let limit = self
            .cur
            .config
            .accounts
            .iter()
            .find(|acc| acc.address == u.address)
            .map_or(0, |acc| acc.max_size);
        u.account.quota(limit)
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_are_compressed() {
        assert_eq!(set_of(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(set_of(&[]), "");
    }
}
