//! The policy gate: every decision about an SMTP client, from the accepted connection to the
//! end of DATA, answered as [`Decision::Pass`], [`Decision::Tag`] or [`Decision::Refuse`].
//!
//! The session holds no policy of its own: it asks the gate at accept, connect, AUTH, MAIL,
//! RCPT and the end of DATA, and acts on the answer. The gate owns the Safe IP rule (asked
//! once per decision, through [`Current::is_safe_ip`]), the per-IP abuse tables, the DNS
//! checks, and every security log line. What can be decided from data alone lives in pure
//! functions ([`super::relay`], [`super::recipient`], [`hop_count`], [`dnsbl_verdict`]); the
//! gate adds the lookups, the tables and the logging around them.

use super::abuse::{Abuse, ConnectionGuard};
use super::recipient::{self, RcptVerdict, Recipient};
use super::relay::{self, Login};
use super::{dnsbl, mailauth, rdns, spf};
use crate::engine::config::{Action, normalize_address};
use crate::engine::current::Current;
use crate::engine::dns::{DnsError, Resolver};
use crate::engine::events::{EventBus, EventKind, Level};
use crate::engine::reply::{self, Reply};
use crate::engine::role::Role;
use crate::engine::stats::{Counter, Stats};
use crate::engine::store::body::Body;
use crate::engine::store::password;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// RFC 5321 6.3: a message that has passed this many MTAs is looping.
pub const MAX_HOPS: usize = 50;
/// The end-of-data checks read the first this many octets of a message (its header section;
/// like Postfix's `header_size_limit`, what lies beyond is not looked at).
pub const HEAD_SCANNED: usize = 64 * 1024;

/// The gate's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go on.
    Pass,
    /// Go on, and put these warnings on the message (`X-Postern-Warning:`).
    Tag(Vec<String>),
    /// Answer this and do not go on.
    Refuse(Refusal),
}

/// A refusal: the reply, and whether the session must close after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What the client is told.
    pub reply: Reply,
    /// `Some(reason)` when the session closes after the reply (the reason is logged).
    pub close: Option<&'static str>,
}

impl Refusal {
    /// A refusal after which the session goes on.
    pub fn reply(reply: Reply) -> Refusal {
        Refusal { reply, close: None }
    }

    /// A refusal after which the session closes.
    pub fn closing(reply: Reply, why: &'static str) -> Refusal {
        Refusal {
            reply,
            close: Some(why),
        }
    }
}

/// What the gate knows about a client when it decides.
#[derive(Debug, Clone, Copy)]
pub struct Client<'a> {
    /// The session id (every log line carries it).
    pub session: &'a str,
    /// The client's address and port.
    pub peer: SocketAddr,
    /// What the listener it came in on allows.
    pub role: Role,
    /// The HELO/EHLO name, once given.
    pub helo: Option<&'a str>,
    /// The login, once authenticated.
    pub login: Option<&'a Login>,
}

impl Client<'_> {
    /// The client's IP address.
    pub fn ip(&self) -> IpAddr {
        self.peer.ip()
    }
}

/// How an AUTH attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Logged in; with the password hash checked, so a later change can end the login.
    Success(Login, String),
    /// Wrong user or password; `Some` when this failure locked the client out.
    Failure(Option<Refusal>),
    /// Too many password checks are running: try again later (`454 4.7.0`).
    Busy,
}

/// How a mailbox login (POP3, IMAP) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailboxLogin {
    /// Logged in to this account; with the password hash checked, so a later change of the
    /// account can end the login.
    Success {
        /// The account's address.
        address: String,
        /// The hash the password was checked against.
        hash: String,
    },
    /// Wrong user or password; `Some` (the lockout's reply) when this failure locked the
    /// client out: the session closes.
    Failure(Option<Reply>),
    /// The client's IP is blocked (failed logins, tarpit): the session closes.
    Blocked(Reply),
    /// Too many password checks are running: try again later.
    Busy,
}

/// How long an AUTH waits for a free password check before it is told to come back.
const AUTH_WAIT: Duration = Duration::from_secs(10);

/// What the DNS checks at MAIL found in one session, so a client that sends many
/// transactions costs one reverse-DNS lookup per HELO name and one SPF evaluation per sender.
#[derive(Debug, Default)]
pub struct CheckCache {
    /// The HELO name checked and the reverse-DNS result.
    rdns: Option<(String, Result<(), String>)>,
    /// Recent (domain, sender) pairs and their SPF outcome, newest last.
    spf: Vec<((String, String), spf::SpfOutcome)>,
}

/// A whole message at the end of DATA, as the gate sees it.
pub struct Message<'a> {
    /// The message id (`SESSION.N`), for the log.
    pub id: &'a str,
    /// The envelope sender (empty for `<>`).
    pub from: &'a str,
    /// Some recipient is relayed (the client submits rather than delivers to us).
    pub relayed: bool,
    /// The first [`HEAD_SCANNED`] octets.
    pub head: &'a [u8],
    /// The whole message.
    pub body: &'a Body,
}

/// What the gate found in a message's content.
#[derive(Debug)]
pub struct Content {
    /// Go on (with warnings to add), or refuse.
    pub decision: Decision,
    /// The `Authentication-Results:` field to add (CRLF-terminated), empty for mail that is
    /// not inbound (a logged-in client, a Safe IP, relayed mail).
    pub results: String,
    /// `Authentication-Results:` fields claiming our authserv-id: octet ranges of the
    /// message to cut before it is stored.
    pub forged: Vec<Range<u64>>,
    /// The client submits rather than delivers to us (logged in, relaying, or a client the
    /// IP ranges let relay without a login): an MSA's additions apply (RFC 6409 8).
    pub submitted: bool,
}

/// SPF outcomes a session remembers.
const SPF_CACHE: usize = 8;

/// The resolver for the configured DNS hosts, rebuilt when they change.
#[derive(Default)]
pub struct DnsCache(Mutex<Option<(Vec<String>, Resolver)>>);

impl DnsCache {
    /// A resolver for `hosts` (empty = the system's), or the reason there is none.
    pub fn get(&self, hosts: &[String]) -> Result<Resolver, DnsError> {
        let mut slot = self.0.lock().expect("dns cache");
        if let Some((h, r)) = slot.as_ref()
            && h == hosts
        {
            return Ok(r.clone());
        }
        let r = Resolver::new(hosts)?;
        *slot = Some((hosts.to_vec(), r.clone()));
        Ok(r)
    }
}

/// The policy gate. Cheap to clone; one per engine.
#[derive(Clone)]
pub struct Gate {
    /// Where decisions are logged.
    events: EventBus,
    /// Per-IP connection counts, lockouts, tarpit blocks, transfer limits.
    abuse: Abuse,
    /// The resolver for DNSBL, SPF and rDNS.
    dns: Arc<DnsCache>,
    /// Password checks that may run at once, engine-wide: each argon2 check takes 19 MiB and
    /// a core for a while, so unauthenticated clients must not be able to start hundreds.
    auth_slots: Arc<tokio::sync::Semaphore>,
    /// The mail counters: refusals are counted where they are decided or sent.
    stats: Arc<Stats>,
}

impl Gate {
    /// A gate with empty abuse tables.
    pub fn new(events: EventBus) -> Gate {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Gate {
            events,
            abuse: Abuse::new(),
            dns: Arc::new(DnsCache::default()),
            auth_slots: Arc::new(tokio::sync::Semaphore::new(cores.max(2))),
            stats: Arc::new(Stats::default()),
        }
    }

    /// The gate counting into the engine's counters (a new gate has its own).
    pub fn counting(mut self, stats: Arc<Stats>) -> Gate {
        self.stats = stats;
        self
    }

    /// The mail counters (sessions count the refusals they send).
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    fn log(&self, level: Level, session: Option<&str>, kind: EventKind) {
        self.events.emit(level, session, kind);
    }

    /// At accept, before a session of any protocol exists: the port's Max Connections
    /// (`open` sessions are already running on it, `limit` may), then the per-IP limit and
    /// running blocks, counted across every protocol. The guard holds the client's per-IP
    /// slot for the session's life.
    pub fn accept(
        &self,
        cur: &Current,
        peer: SocketAddr,
        open: usize,
        limit: usize,
    ) -> Result<ConnectionGuard, Reply> {
        let cfg = &cur.config;
        let refused = |reason: String, reply: Reply| {
            self.stats.count(Counter::Refused);
            self.log(
                Level::Warn,
                None,
                EventKind::ConnectionRefused { peer, reason },
            );
            Err(reply)
        };
        if open >= limit {
            return refused(
                format!("more than {limit} connections on this port"),
                reply::TOO_MANY_CONNECTIONS,
            );
        }
        let ip = peer.ip();
        match self.abuse.connect(ip, cur.is_safe_ip(ip), cfg) {
            Ok(guard) => Ok(guard),
            Err(r) => refused(r.reason, r.reply),
        }
    }

    /// Before the greeting: a separate outgoing port refuses a client the settings could
    /// never privilege; DNS block lists refuse or tag.
    pub async fn connect(&self, cur: &Current, c: &Client<'_>) -> Decision {
        if let Some(why) = relay::refuse_at_connect(c.role, c.ip(), cur) {
            self.log(
                Level::Warn,
                Some(c.session),
                EventKind::ConnectionRefused {
                    peer: c.peer,
                    reason: why.into(),
                },
            );
            return Decision::Refuse(Refusal::closing(
                reply::access_denied(why),
                "refused by access control",
            ));
        }
        let rbl = &cur.config.abuse.rbl;
        if !rbl.enabled || rbl.zones.is_empty() || cur.is_safe_ip(c.ip()) {
            return Decision::Pass;
        }
        let Some(resolver) = self.resolver(cur, c, "DNSBL check") else {
            return Decision::Pass;
        };
        let (listed, warnings) = dnsbl::listed_in(&resolver, c.ip(), &rbl.zones).await;
        for w in warnings {
            self.log(Level::Warn, Some(c.session), EventKind::Note { text: w });
        }
        let decision = dnsbl_verdict(c.ip(), &listed, rbl.trigger, rbl.action);
        if decision != Decision::Pass {
            self.check_failed(
                c,
                "DNSBL",
                format!("{} listed in {}", c.ip(), listed.join(", ")),
            );
        }
        decision
    }

    /// Before AUTH runs: a client under a block is refused and the session closed.
    pub fn auth_start(&self, cur: &Current, c: &Client<'_>) -> Decision {
        if cur.is_safe_ip(c.ip()) {
            return Decision::Pass;
        }
        match self.abuse.blocked(c.ip(), &cur.config) {
            Some(r) => {
                self.blocked(c, "AUTH refused", r.reason);
                Decision::Refuse(Refusal::closing(r.reply, "blocked (failed logins)"))
            }
            None => Decision::Pass,
        }
    }

    /// Checks `user`/`pass` against the local accounts and the Allow Only The Following
    /// user. A failure counts towards the failed-login lockout (Safe IPs excepted); an
    /// unknown user costs the same time as a wrong password.
    pub async fn authenticate(
        &self,
        cur: &Current,
        c: &Client<'_>,
        user: String,
        pass: String,
    ) -> AuthOutcome {
        let out = self
            .check_login(cur, c.session, c.peer, user.clone(), pass, true)
            .await;
        if matches!(out, AuthOutcome::Success(..)) {
            self.log(
                Level::Info,
                Some(c.session),
                EventKind::AuthSucceeded { user },
            );
        }
        out
    }

    /// A login to read mail (POP3, IMAP): the same accounts, password checks,
    /// failed-login lockout and per-IP blocks as SMTP AUTH, so a password guesser gains
    /// nothing by switching protocols. Only accounts can log in (never the relay-only user).
    /// The caller logs a success in its own view.
    pub async fn mailbox_login(
        &self,
        cur: &Current,
        session: &str,
        peer: SocketAddr,
        user: String,
        pass: String,
    ) -> MailboxLogin {
        if !cur.is_safe_ip(peer.ip())
            && let Some(r) = self.abuse.blocked(peer.ip(), &cur.config)
        {
            self.blocked_session(session, "login refused", r.reason);
            return MailboxLogin::Blocked(r.reply);
        }
        match self
            .check_login(cur, session, peer, user, pass, false)
            .await
        {
            AuthOutcome::Success(Login::Account(address), hash) => {
                MailboxLogin::Success { address, hash }
            }
            AuthOutcome::Success(Login::RelayUser(_), _) | AuthOutcome::Failure(None) => {
                MailboxLogin::Failure(None)
            }
            AuthOutcome::Failure(Some(r)) => MailboxLogin::Failure(Some(r.reply)),
            AuthOutcome::Busy => MailboxLogin::Busy,
        }
    }

    /// Whether a mailbox login still stands: its account exists with the password it was
    /// checked against (logged when it does not).
    pub fn mailbox_login_in_force(
        &self,
        cur: &Current,
        session: &str,
        address: &str,
        hash: &str,
    ) -> bool {
        let login = Login::Account(address.to_string());
        if relay::login_in_force(&login, hash, &cur.config) {
            return true;
        }
        self.log(
            Level::Warn,
            Some(session),
            EventKind::LoginRevoked {
                user: address.to_string(),
            },
        );
        false
    }

    /// The password check behind every login: `relay_user` admits the Allow Only The
    /// Following user too. Logs a failure; counts it towards the lockout.
    async fn check_login(
        &self,
        cur: &Current,
        session: &str,
        peer: SocketAddr,
        user: String,
        pass: String,
        relay_user: bool,
    ) -> AuthOutcome {
        let cfg = &cur.config;
        let sa = &cfg.access.smtp_auth;
        let (stored, login) = match cfg.account(&user) {
            Some(acc) => (
                Some(acc.password.clone()),
                Login::Account(acc.address.clone()),
            ),
            None if relay_user
                && sa.enabled
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
        let Ok(Ok(slot)) =
            tokio::time::timeout(AUTH_WAIT, self.auth_slots.clone().acquire_owned()).await
        else {
            self.log(
                Level::Warn,
                Some(session),
                EventKind::ProtocolAbuse {
                    what: "AUTH while every password check was busy: told to try later".into(),
                },
            );
            return AuthOutcome::Busy;
        };
        let checked = stored.clone();
        let ok = tokio::task::spawn_blocking(move || match checked {
            Some(hash) => password::verify(&hash, &pass),
            None => {
                password::verify(password::decoy(), &pass);
                false
            }
        })
        .await
        .unwrap_or(false);
        drop(slot);
        if ok && let Some(hash) = stored {
            return AuthOutcome::Success(login, hash);
        }
        self.log(Level::Warn, Some(session), EventKind::AuthFailed { user });
        if cur.is_safe_ip(peer.ip()) {
            return AuthOutcome::Failure(None);
        }
        AuthOutcome::Failure(self.abuse.auth_failed(peer.ip(), cfg).map(|r| {
            self.blocked_session(session, "locked out", r.reason);
            Refusal::closing(r.reply, "locked out after failed logins")
        }))
    }

    /// Before every command of a logged-in session: the login stands only while its account
    /// (or the Allow Only The Following user) still exists with the password it was checked
    /// against. Otherwise the session is told `421` and closed.
    pub fn login_in_force(
        &self,
        cur: &Current,
        c: &Client<'_>,
        login: &Login,
        hash: &str,
    ) -> Decision {
        if relay::login_in_force(login, hash, &cur.config) {
            return Decision::Pass;
        }
        self.log(
            Level::Warn,
            Some(c.session),
            EventKind::LoginRevoked {
                user: login.name().to_string(),
            },
        );
        Decision::Refuse(Refusal::closing(reply::LOGIN_REVOKED, "login revoked"))
    }

    /// At MAIL (after the protocol checks): a client under a block; a sender the login may
    /// not use; then, for clients that are neither Safe IPs nor logged in, reverse DNS and
    /// SPF (each off, refuse, or tag).
    pub async fn mail(
        &self,
        cur: &Current,
        c: &Client<'_>,
        from: &str,
        cache: &mut CheckCache,
    ) -> Decision {
        let cfg = &cur.config;
        let safe = cur.is_safe_ip(c.ip());
        if !safe && let Some(r) = self.abuse.blocked(c.ip(), cfg) {
            self.blocked(c, "MAIL refused", r.reason);
            return Decision::Refuse(Refusal::reply(r.reply));
        }
        if cfg.access.sender_must_match_login
            && let Some(Login::Account(user)) = c.login
            && normalize_address(from) != *user
        {
            self.log(
                Level::Warn,
                Some(c.session),
                EventKind::SenderRefused {
                    sender: from.to_string(),
                    login: user.clone(),
                },
            );
            return Decision::Refuse(Refusal::reply(reply::SENDER_NOT_OWNED));
        }
        if safe || c.login.is_some() || !(cfg.abuse.spf.enabled || cfg.abuse.rdns.enabled) {
            return Decision::Pass;
        }
        let Some(resolver) = self.resolver(cur, c, "SPF/rDNS checks") else {
            return Decision::Pass;
        };
        let helo = c.helo.unwrap_or_default();
        let mut tags = Vec::new();
        if cfg.abuse.rdns.enabled {
            let known = cache.rdns.as_ref().filter(|(h, _)| h == helo);
            let result = match known {
                Some((_, r)) => r.clone(),
                None => {
                    let r = rdns::rdns_check(&resolver, c.ip(), helo).await;
                    cache.rdns = Some((helo.to_string(), r.clone()));
                    r
                }
            };
            if let Err(why) = result {
                self.check_failed(c, "reverse DNS", why.clone());
                match cfg.abuse.rdns.action {
                    Action::Refuse => {
                        return Decision::Refuse(Refusal::reply(reply::rdns_failed(&why)));
                    }
                    Action::Tag => tags.push(format!("reverse DNS check failed: {why}")),
                }
            }
        }
        if cfg.abuse.spf.enabled {
            let out = self.spf(&resolver, c, from, cache).await;
            let domain = out.domain.clone();
            if out.result == spf::SpfResult::Fail {
                self.check_failed(c, "SPF", out.reason.clone());
                match cfg.abuse.spf.action {
                    Action::Refuse => {
                        return Decision::Refuse(Refusal::reply(reply::spf_failed(
                            &domain,
                            &out.reason,
                        )));
                    }
                    Action::Tag => tags.push(format!("SPF fail: {}", out.reason)),
                }
            } else {
                self.log(
                    Level::Debug,
                    Some(c.session),
                    EventKind::CheckPassed {
                        check: "SPF".into(),
                        detail: format!("{}: {}", out.result, out.reason),
                    },
                );
            }
        }
        if tags.is_empty() {
            Decision::Pass
        } else {
            Decision::Tag(tags)
        }
    }

    /// At RCPT: where `address` goes (see [`recipient::resolve`]), logged; `Err` is the
    /// refusal to send (the caller then reports a failed recipient with [`Gate::rcpt_failed`]).
    pub fn rcpt(&self, cur: &Current, c: &Client<'_>, address: &str) -> Result<Recipient, Reply> {
        match recipient::resolve(address, c.role, c.ip(), c.login, cur) {
            RcptVerdict::Local(l) => Ok(Recipient::Local(l)),
            RcptVerdict::Relay { address, why } => {
                self.log(
                    Level::Info,
                    Some(c.session),
                    EventKind::RelayAllowed {
                        rcpt: address.clone(),
                        why: why.into(),
                    },
                );
                Ok(Recipient::Remote(address))
            }
            RcptVerdict::RelayDenied { address, why } => {
                self.log(
                    Level::Warn,
                    Some(c.session),
                    EventKind::RelayDenied {
                        rcpt: address,
                        why: why.into(),
                    },
                );
                Err(reply::RELAY_DENIED)
            }
            RcptVerdict::Unknown {
                address,
                reply,
                why,
            } => {
                self.log(
                    Level::Info,
                    Some(c.session),
                    EventKind::RecipientRejected {
                        rcpt: address,
                        reason: why.into(),
                    },
                );
                Err(reply)
            }
        }
    }

    /// Tarpitting after the `n`th refused recipient of a session: the delay before the next
    /// reply and, past the threshold, a block (the session then closes).
    pub fn rcpt_failed(
        &self,
        cur: &Current,
        c: &Client<'_>,
        n: u32,
    ) -> (Duration, Option<Refusal>) {
        if cur.is_safe_ip(c.ip()) {
            return (Duration::ZERO, None);
        }
        let (delay, block) = self.abuse.rcpt_failed(c.ip(), n, &cur.config);
        let block = block.map(|r| {
            self.blocked(c, "blocked", r.reason);
            Refusal::closing(r.reply, "blocked by tarpitting")
        });
        (delay, block)
    }

    /// At DATA, when the client has already sent more before our `354`: Postfix's
    /// `smtpd_forbid_unauth_pipelining`. Refused, and the session closed, unless the client
    /// is logged in or a Safe IP.
    pub fn pipelined_past_data(&self, cur: &Current, c: &Client<'_>) -> Decision {
        if c.login.is_some() || cur.is_safe_ip(c.ip()) {
            return Decision::Pass;
        }
        self.log(
            Level::Warn,
            Some(c.session),
            EventKind::ProtocolAbuse {
                what: "sent message data before the 354 (unauthenticated pipelining past DATA)"
                    .into(),
            },
        );
        Decision::Refuse(Refusal::closing(
            reply::PIPELINED_PAST_DATA,
            "pipelining past DATA",
        ))
    }

    /// At the end of DATA, before the message is stored: a mail loop, then the per-IP
    /// hourly transfer limits (which count the message when it passes). `head` is the
    /// message's first [`HEAD_SCANNED`] octets, `size` its length.
    pub fn end_of_data(&self, cur: &Current, c: &Client<'_>, head: &[u8], size: u64) -> Decision {
        if hop_count(head) >= MAX_HOPS {
            self.log(
                Level::Warn,
                Some(c.session),
                EventKind::MessageRejected {
                    reason: format!("more than {MAX_HOPS} Received headers (mail loop)"),
                },
            );
            return Decision::Refuse(Refusal::reply(reply::MAIL_LOOP));
        }
        if cur.is_safe_ip(c.ip()) {
            return Decision::Pass;
        }
        match self.abuse.transfer(c.ip(), size, &cur.config) {
            Ok(()) => Decision::Pass,
            Err(r) => {
                self.log(
                    Level::Warn,
                    Some(c.session),
                    EventKind::TransferLimit { reason: r.reason },
                );
                Decision::Refuse(Refusal::reply(r.reply))
            }
        }
    }

    /// At the end of DATA, before [`Gate::end_of_data`]: the message's content. A `From:`
    /// the login may not use (`access.sender_must_match_login`, the rule of [`Gate::mail`]
    /// applied to the header); forged `Authentication-Results:` fields; and for inbound mail
    /// (not submitted, see [`Content::submitted`], and not from a Safe IP) SPF, DKIM and DMARC, the
    /// `Authentication-Results:` field, and DMARC's `p=quarantine`/`p=reject` honoured by
    /// `auth.dmarc.action`.
    pub async fn content(
        &self,
        cur: &Current,
        c: &Client<'_>,
        m: &Message<'_>,
        cache: &mut CheckCache,
    ) -> Content {
        let cfg = &cur.config;
        let section = mailauth::header_section(m.head, m.body.len());
        // A client the IP ranges let relay without a login is one of ours (a LAN machine, a
        // printer), whether or not this message is relayed.
        let range_client = cfg.access.ip_range.enabled
            && !cfg.access.smtp_auth.enabled
            && matches!(
                relay::may_relay(c.role, c.ip(), None, cur),
                relay::Verdict::Allow(_)
            );
        let mut content = Content {
            decision: Decision::Pass,
            results: String::new(),
            forged: Vec::new(),
            submitted: c.login.is_some() || m.relayed || range_client,
        };
        if cfg.access.sender_must_match_login
            && let Some(Login::Account(user)) = c.login
        {
            let froms = section.and_then(mailauth::from_addresses);
            let bad = match &froms {
                None => Some("(no address that can be read)".to_string()),
                Some(list) => list.iter().find(|f| normalize_address(f) != *user).cloned(),
            };
            if let Some(from) = bad {
                self.log(
                    Level::Warn,
                    Some(c.session),
                    EventKind::FromRefused {
                        from,
                        login: user.clone(),
                    },
                );
                content.decision = Decision::Refuse(Refusal::reply(reply::FROM_NOT_OWNED));
                return content;
            }
        }
        let host = &cfg.server.hostname;
        if let Some(section) = section {
            content.forged = mailauth::forged_results(section, host);
            if !content.forged.is_empty() {
                self.log(
                    Level::Warn,
                    Some(c.session),
                    EventKind::ForgedResults {
                        id: m.id.to_string(),
                        count: content.forged.len(),
                        host: host.clone(),
                    },
                );
            }
        }
        if content.submitted || cur.is_safe_ip(c.ip()) {
            return content;
        }
        let Some(resolver) = self.resolver(cur, c, "SPF/DKIM/DMARC checks") else {
            content.results = format!("Authentication-Results: {host}; none (no resolver)\r\n");
            return content;
        };
        let helo = c.helo.unwrap_or_default();
        let spf = self.spf(&resolver, c, m.from, cache).await;
        let auth = &cfg.auth;
        let inputs = mailauth::Inputs {
            hostname: host,
            ip: c.ip(),
            helo,
            mail_from: m.from,
            spf: &spf,
            head: m.head,
            body: m.body,
            dkim: auth.dkim.verify,
            dmarc: auth.dmarc.enabled && auth.dkim.verify,
        };
        let results = mailauth::check(&resolver, &inputs).await;
        self.log(
            Level::Info,
            Some(c.session),
            EventKind::MailAuth {
                id: m.id.to_string(),
                results: results.summary.clone(),
            },
        );
        content.results = results.field;
        if let Some((domain, policy)) = results.dmarc_failed {
            // The domain comes from the message: only printable ASCII reaches the reply.
            let domain: String = domain
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .take(253)
                .collect();
            self.check_failed(
                c,
                "DMARC",
                format!("{domain} (policy {policy}) for message {}", m.id),
            );
            content.decision = match auth.dmarc.action {
                Action::Refuse => {
                    Decision::Refuse(Refusal::reply(reply::dmarc_failed(&domain, policy)))
                }
                Action::Tag => Decision::Tag(vec![format!(
                    "DMARC fail for {domain} (its policy: {policy})"
                )]),
            };
        }
        content
    }

    /// The SPF outcome for the sender `from` (or the HELO name for `<>`), from the session's
    /// cache when MAIL already checked it.
    async fn spf(
        &self,
        resolver: &Resolver,
        c: &Client<'_>,
        from: &str,
        cache: &mut CheckCache,
    ) -> spf::SpfOutcome {
        let helo = c.helo.unwrap_or_default();
        let domain = from
            .rsplit_once('@')
            .map(|(_, d)| d.to_string())
            .unwrap_or_else(|| helo.to_string());
        let key = (domain.clone(), from.to_string());
        if let Some((_, out)) = cache.spf.iter().find(|(k, _)| *k == key) {
            return out.clone();
        }
        let out = spf::check(resolver, c.ip(), &domain, from, helo).await;
        if cache.spf.len() == SPF_CACHE {
            cache.spf.remove(0);
        }
        cache.spf.push((key, out.clone()));
        out
    }

    fn blocked(&self, c: &Client<'_>, at: &str, reason: String) {
        self.blocked_session(c.session, at, reason)
    }

    fn blocked_session(&self, session: &str, at: &str, reason: String) {
        self.log(
            Level::Warn,
            Some(session),
            EventKind::ClientBlocked {
                at: at.into(),
                reason,
            },
        );
    }

    fn check_failed(&self, c: &Client<'_>, check: &str, detail: String) {
        self.log(
            Level::Warn,
            Some(c.session),
            EventKind::CheckFailed {
                check: check.into(),
                detail,
            },
        );
    }

    /// The resolver for `what`, or `None` (said in the log) when there is none.
    fn resolver(&self, cur: &Current, c: &Client<'_>, what: &str) -> Option<Resolver> {
        match self.dns.get(&cur.config.outgoing_mails.dns_hosts) {
            Ok(r) => Some(r),
            Err(e) => {
                self.log(
                    Level::Warn,
                    Some(c.session),
                    EventKind::CheckSkipped {
                        check: what.into(),
                        error: e.to_string(),
                    },
                );
                None
            }
        }
    }
}

/// How many `Received:` fields the header section of `msg` has.
pub fn hop_count(msg: &[u8]) -> usize {
    let end = msg
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(msg.len());
    msg[..end]
        .split(|&b| b == b'\n')
        .filter(|l| l.len() >= 9 && l[..9].eq_ignore_ascii_case(b"received:"))
        .count()
}

/// The DNSBL decision for a client found in `listed` zones: refuse or tag once at least
/// `trigger` zones list it.
pub fn dnsbl_verdict(ip: IpAddr, listed: &[String], trigger: u32, action: Action) -> Decision {
    if listed.is_empty() || (listed.len() as u32) < trigger {
        return Decision::Pass;
    }
    let zones = listed.join(", ");
    match action {
        Action::Refuse => Decision::Refuse(Refusal::closing(
            reply::dnsbl_listed(ip, &zones),
            "listed in DNS block lists",
        )),
        Action::Tag => Decision::Tag(vec![format!("client [{ip}] is listed in {zones}")]),
    }
}

mod blocks;

#[cfg(test)]
mod tests;
