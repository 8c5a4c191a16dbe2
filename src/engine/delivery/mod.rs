//! Outbound delivery: where a message for a domain goes, and the SMTP sessions that take it
//! there. The queue (`engine::queue`) decides when to deliver; this module decides how, and
//! answers with one [`RcptStatus`] per recipient.
//!
//! Routing, as the Outgoing Mails dialog describes it:
//! - Relay mode: every mail goes to `outgoing_mails.relay` (AUTH PLAIN/LOGIN when a user name is
//!   set; TLS none, STARTTLS required, or implicit). Domain maps are ignored.
//! - Independent mode: a Domain Mapping "Via SMTP" entry for the domain wins; else the MX hosts
//!   in preference order, each of their addresses in turn; no MX means the domain itself
//!   (RFC 5321 5.1); a null MX (RFC 7505) or a domain that does not exist fails every recipient
//!   permanently; DNS trouble fails them temporarily. STARTTLS follows `outbound_tls`.
//!
//! A host that cannot be reached, greets with an error, breaks off or times out before the
//! transaction is settled makes us try the next one; so does a temporary refusal of the whole
//! transaction (a 4xx to MAIL, to every RCPT, to DATA or to the final dot: RFC 5321 5.1, as
//! Postfix does), for the recipients it refused; when none is left every open recipient gets
//! a temporary failure with its last error. A server that took the message for some
//! recipients settles the others too: its 4xx stands, and no other host is asked. Its
//! permanent answers are always final, and so is a session that broke after the final dot
//! (the message may have arrived). When the STARTTLS handshake with a host fails under
//! opportunistic TLS, the same address is tried again at once without STARTTLS (Postfix's
//! `may` level); never when a login would be sent. Every delivery is bounded by [`Limits`]:
//! 5 addresses, 2 sessions, 10 minutes.
//!
//! Only this module opens outbound sockets. Logs go to the SMTP Out view (`EventKind::Delivery`) with the queue id
//! as the session: MX lookups, deliveries and failures always; with "More Detailed Logging"
//! also every connection attempt, DNS answer, command sent and reply received.

mod cache;
mod client;
pub mod data;
pub mod downgrade;
mod limits;
mod reply;
pub mod sign;
pub mod testmail;
pub(crate) mod tls;

pub use cache::ConnCache;
pub use client::{HostFailure, Login, OpenError, TlsPolicy};
pub use limits::{Limits, MAX_ADDRESSES, MAX_SESSIONS, TIME_LIMIT};

use crate::engine::config::{Config, DeliveryMode, OutboundTls, RelayTls};
use crate::engine::dkim::{DomainKey, Signers};
use crate::engine::dns::{DnsError, MxAnswer, Resolver};
use crate::engine::events::{EventBus, EventKind, Level};
use crate::engine::store::body::Body;
use client::{BoxStream, CONNECT_TIMEOUT, MAX_RCPTS_PER_TRANSACTION, Params, Session};
use limits::{Budget, Exhausted};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// MX hosts tried for one domain at most (the lowest preferences).
const MAX_MX_HOSTS: usize = 10;
/// Addresses tried per host at most, so that a host with many addresses leaves some of the
/// [`MAX_ADDRESSES`] for the next MX host.
const MAX_ADDRESSES_PER_HOST: usize = 4;

/// What delivery needs from the engine.
pub struct DeliveryCtx {
    /// The configuration in force (`server.hostname`, `outgoing_mails.*`).
    pub config: Arc<Config>,
    /// MX and address lookups.
    pub resolver: Resolver,
    /// Where the outgoing log lines go.
    pub events: EventBus,
    /// The port MX hosts (and implicit-MX domains) are contacted on: 25 except in tests.
    pub mx_port: u16,
    /// The DKIM keys of the local domains: a message whose `From:` is in one is signed.
    pub dkim: Signers,
    /// Sessions kept open for the next delivery to the same server.
    pub cache: Arc<ConnCache>,
}

impl DeliveryCtx {
    /// A context that contacts MX hosts on port 25.
    pub fn new(config: Arc<Config>, resolver: Resolver, events: EventBus) -> DeliveryCtx {
        DeliveryCtx {
            config,
            resolver,
            events,
            mx_port: 25,
            dkim: Signers::default(),
            cache: ConnCache::new(),
        }
    }
}

/// The outcome for one recipient of one delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum RcptStatus {
    /// The server took responsibility; its reply to the end of DATA.
    Delivered(String),
    /// Try again later; why not now.
    Temporary(String),
    /// Give up and tell the sender; why.
    Permanent(String),
}

/// Delivers one message to `rcpts`, which all share `domain` (in Relay mode any domains).
/// `from` is the envelope sender ("" for the null sender); `log_id` is the queue id for log
/// lines. Returns one status per recipient, in the order of `rcpts`. Bounded by
/// [`Limits::default`].
pub async fn deliver(
    ctx: &DeliveryCtx,
    log_id: &str,
    domain: &str,
    from: &str,
    rcpts: &[String],
    message: &Body,
) -> Vec<RcptStatus> {
    let limits = Limits::default();
    deliver_with(ctx, &limits, log_id, domain, from, rcpts, message).await
}

/// [`deliver`] within other [`Limits`] (tests use a short time limit).
pub async fn deliver_with(
    ctx: &DeliveryCtx,
    limits: &Limits,
    log_id: &str,
    domain: &str,
    from: &str,
    rcpts: &[String],
    message: &Body,
) -> Vec<RcptStatus> {
    let log = Log::new(
        &ctx.events,
        log_id,
        ctx.config.outgoing_mails.detailed_logging,
    );
    if rcpts.is_empty() {
        return Vec::new();
    }
    // Addresses go into command lines: nothing that could end or extend a line.
    let unsafe_addr = |a: &str| {
        a.bytes()
            .any(|b| b < 0x20 || b == 0x7f || b == b'<' || b == b'>')
    };
    if unsafe_addr(from) {
        let text = format!(
            "5.1.7 sender address `{}` cannot be sent in SMTP",
            from.escape_debug()
        );
        log.warn(&format!("not delivered: {text}"));
        return vec![RcptStatus::Permanent(text); rcpts.len()];
    }
    let mut result: Vec<Option<RcptStatus>> = rcpts
        .iter()
        .map(|r| {
            (unsafe_addr(r) || r.is_empty()).then(|| {
                RcptStatus::Permanent(format!(
                    "5.1.3 recipient address `{}` cannot be sent in SMTP",
                    r.escape_debug()
                ))
            })
        })
        .collect();
    let open: Vec<usize> = (0..rcpts.len()).filter(|&i| result[i].is_none()).collect();
    if !open.is_empty() {
        let wanted: Vec<String> = open.iter().map(|&i| rcpts[i].clone()).collect();
        let statuses = route_and_send(ctx, &log, limits, domain, from, &wanted, message).await;
        for (&i, s) in open.iter().zip(statuses) {
            result[i] = Some(s);
        }
    }
    let result: Vec<RcptStatus> = result
        .into_iter()
        .map(|s| s.expect("every recipient settled"))
        .collect();
    for (rcpt, status) in rcpts.iter().zip(&result) {
        match status {
            RcptStatus::Delivered(_) => {}
            RcptStatus::Temporary(why) => {
                log.warn(&format!("delivery to <{rcpt}> deferred: {why}"))
            }
            RcptStatus::Permanent(why) => log.warn(&format!("delivery to <{rcpt}> failed: {why}")),
        }
    }
    result
}

/// Where one attempt goes: hosts in order, the port, TLS, login.
struct Route {
    /// Host names or IP literals, in the order to try.
    hosts: Vec<String>,
    /// Port on every host.
    port: u16,
    /// STARTTLS policy.
    tls: TlsPolicy,
    /// Relay login.
    login: Option<Login>,
    /// Verifying TLS connector (relay host with `verify_certificate`).
    verify: Option<tokio_rustls::TlsConnector>,
}

async fn route_and_send(
    ctx: &DeliveryCtx,
    log: &Log,
    limits: &Limits,
    domain: &str,
    from: &str,
    rcpts: &[String],
    message: &Body,
) -> Vec<RcptStatus> {
    let om = &ctx.config.outgoing_mails;
    let all = |s: RcptStatus| vec![s; rcpts.len()];
    let route = if om.mode == DeliveryMode::Relay {
        let r = &om.relay;
        Route {
            hosts: vec![r.host.clone()],
            port: r.port,
            tls: match r.tls {
                RelayTls::None => TlsPolicy::Never,
                RelayTls::StartTls => TlsPolicy::Required,
                RelayTls::Implicit => TlsPolicy::Implicit,
            },
            login: (!r.username.is_empty()).then(|| Login {
                user: r.username.clone(),
                password: r.password.clone(),
            }),
            verify: if r.verify_certificate && r.tls != RelayTls::None {
                match tls::verified_connector(&r.ca_file) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        log.warn(&format!("relay host certificate cannot be verified: {e}"));
                        return all(RcptStatus::Temporary(format!("4.7.5 {e}")));
                    }
                }
            } else {
                None
            },
        }
    } else {
        let tls = match om.outbound_tls {
            OutboundTls::None => TlsPolicy::Never,
            OutboundTls::Opportunistic => TlsPolicy::Opportunistic,
            OutboundTls::Required => TlsPolicy::Required,
        };
        let bare = domain.trim_end_matches('.');
        if let Some(map) = om
            .domain_maps
            .iter()
            .find(|m| m.domain.trim_end_matches('.').eq_ignore_ascii_case(bare))
        {
            log.info(&format!(
                "{bare}: Domain Mapping \"Via SMTP\" to {}:{}",
                map.host, map.port
            ));
            Route {
                hosts: vec![map.host.clone()],
                port: map.port,
                tls,
                login: None,
                verify: None,
            }
        } else if let Some(ip) = address_literal(bare) {
            Route {
                hosts: vec![ip.to_string()],
                port: ctx.mx_port,
                tls,
                login: None,
                verify: None,
            }
        } else {
            let hosts = match ctx.resolver.mx(bare).await {
                Ok(MxAnswer::Hosts(mx)) => {
                    log.info(&format!(
                        "MX lookup for {bare}: {}",
                        mx.iter()
                            .map(|(p, h)| format!("{h} ({p})"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                    for (_, h) in mx.iter().filter(|(_, h)| h.parse::<IpAddr>().is_ok()) {
                        log.warn(&format!(
                            "the MX of {bare} names an IP address ({h}), not a host name \
                             (RFC 5321 5.1); delivering to that address as its owner meant"
                        ));
                    }
                    mx.into_iter().take(MAX_MX_HOSTS).map(|(_, h)| h).collect()
                }
                Ok(MxAnswer::Implicit) => {
                    log.info(&format!("MX lookup for {bare}: no MX records, delivering to the domain's own address"));
                    vec![bare.to_string()]
                }
                Ok(MxAnswer::NullMx) => {
                    log.info(&format!(
                        "MX lookup for {bare}: null MX, the domain accepts no mail"
                    ));
                    return all(RcptStatus::Permanent(format!(
                        "5.1.10 domain {bare} does not accept mail (null MX, RFC 7505)"
                    )));
                }
                Ok(MxAnswer::NoSuchDomain) => {
                    log.info(&format!("MX lookup for {bare}: no such domain"));
                    return all(RcptStatus::Permanent(format!(
                        "5.1.2 domain {bare} does not exist or has no mail host"
                    )));
                }
                Err(DnsError::Config(e)) => {
                    log.warn(&format!("MX lookup for {bare} impossible: {e}"));
                    return all(RcptStatus::Permanent(format!("5.1.2 {e}")));
                }
                Err(e) => {
                    log.warn(&format!("MX lookup for {bare} failed: {e}"));
                    return all(RcptStatus::Temporary(format!(
                        "4.4.3 MX lookup for {bare}: {e}"
                    )));
                }
            };
            Route {
                hosts,
                port: ctx.mx_port,
                tls,
                login: None,
                verify: None,
            }
        }
    };
    let keys = dkim_keys(ctx, log, message);
    let env = Envelope {
        from,
        rcpts,
        message,
        eight_bit: body_has_8bit(message),
        dkim: keys.as_deref().map(Vec::as_slice),
    };
    send_via(ctx, log, &route, limits, &env).await
}

/// Whether `ip:port` is one of this server's own SMTP listeners: an MX, domain map or relay
/// host pointing back at us would make a relayed mail go round until its hop count runs out.
fn loops_back(cfg: &Config, ip: IpAddr, port: u16) -> bool {
    let s = &cfg.smtp;
    let ours = port == s.incoming.port
        || (s.outgoing.enabled && port == s.outgoing.port)
        || s.tls.implicit_port == Some(port);
    ours && crate::engine::local_ips::is_local_ip(ip, &crate::engine::local_ips::cached())
}

/// `[192.0.2.1]` or `[IPv6:2001:db8::1]` (RFC 5321 4.1.3).
fn address_literal(domain: &str) -> Option<IpAddr> {
    let inner = domain.strip_prefix('[')?.strip_suffix(']')?;
    let ip = inner
        .strip_prefix("IPv6:")
        .or_else(|| inner.strip_prefix("ipv6:"))
        .unwrap_or(inner);
    ip.parse().ok()
}

/// Whether the message has octets above 127 (read in chunks; `false` if it cannot be read,
/// which the transfer itself then reports).
fn body_has_8bit(message: &Body) -> bool {
    let mut found = false;
    let _ = message.for_each_chunk(|c| {
        found = found || data::has_8bit(c);
        Ok(())
    });
    found
}

/// The DKIM keys for `message`: those of the domain of its `From:` when that is a local
/// domain with keys (read from the header section; blocking when the body is in a file).
fn dkim_keys(ctx: &DeliveryCtx, log: &Log, message: &Body) -> Option<Arc<Vec<DomainKey>>> {
    if ctx.dkim.is_empty() {
        return None;
    }
    let domain = crate::engine::dkim::from_domain(message)?;
    let keys = ctx.dkim.for_domain(&domain);
    if keys.is_none() {
        log.detail(format_args!(
            "not DKIM-signed: From: domain {domain} is not a local domain with a key"
        ));
    }
    keys
}

/// What is sent: the envelope and the message.
struct Envelope<'a> {
    /// The envelope sender ("" for the null sender).
    from: &'a str,
    /// The recipients, all of them; a session is given the ones still open.
    rcpts: &'a [String],
    /// The message.
    message: &'a Body,
    /// Whether the message has octets above 127.
    eight_bit: bool,
    /// The keys that sign it: its `From:` is in a local domain with keys.
    dkim: Option<&'a [DomainKey]>,
}

/// What one session made of one recipient.
#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    /// Settled for this delivery: delivered, refused for good, or deferred where asking
    /// another host would be pointless or could send the message twice.
    Settled(RcptStatus),
    /// Refused temporarily by a server that took nothing in this session: the next host may
    /// take it (RFC 5321 5.1). Why, for the deferral if no host does.
    TryNext(String),
}

/// The verdicts of one session, from its statuses, each with whether it is the server's
/// answer (not our conclusion from a broken connection). A server that took the message for
/// nobody is working badly or not at all for now: its temporary refusals go to the next host.
/// One that took it for some recipients is working: its refusals of the others stand.
fn verdicts(statuses: Vec<(RcptStatus, bool)>) -> Vec<Verdict> {
    let took_some = statuses
        .iter()
        .any(|(s, _)| matches!(s, RcptStatus::Delivered(_)));
    statuses
        .into_iter()
        .map(|(s, answered)| match s {
            RcptStatus::Temporary(why) if answered && !took_some => Verdict::TryNext(why),
            s => Verdict::Settled(s),
        })
        .collect()
}

/// Where the recipients of one delivery stand between sessions.
struct Progress {
    /// Each recipient's final status, once it has one.
    settled: Vec<Option<RcptStatus>>,
    /// A server's temporary refusal of a recipient still open, kept for its deferral.
    refused: Vec<Option<String>>,
}

impl Progress {
    fn new(n: usize) -> Progress {
        Progress {
            settled: vec![None; n],
            refused: vec![None; n],
        }
    }

    /// The indices of the recipients still open.
    fn open(&self) -> Vec<usize> {
        (0..self.settled.len())
            .filter(|&i| self.settled[i].is_none())
            .collect()
    }

    /// Records what the session with `at` (`host[ip]`) made of the recipients `open`; returns
    /// whether some are left for the next host.
    fn record(
        &mut self,
        log: &Log,
        rcpts: &[String],
        open: &[usize],
        at: &str,
        v: Vec<Verdict>,
    ) -> bool {
        let mut again = false;
        for (&i, v) in open.iter().zip(v) {
            match v {
                Verdict::Settled(s) => {
                    if let RcptStatus::Delivered(reply) = &s {
                        log.info(&format!("delivered to <{}> via {at}: {reply}", rcpts[i]));
                    }
                    self.settled[i] = Some(s);
                }
                Verdict::TryNext(why) => {
                    log.warn(&format!(
                        "{at} deferred <{}>: {why}; trying the next host, if any",
                        rcpts[i]
                    ));
                    self.refused[i] = Some(why);
                    again = true;
                }
            }
        }
        again
    }

    /// The final statuses: the recipients still open are deferred with their last server's
    /// refusal, else with `last_error`, and why no further host was tried.
    fn finish(self, last_error: &str, stopped: Option<Exhausted>) -> Vec<RcptStatus> {
        self.settled
            .into_iter()
            .zip(self.refused)
            .map(|(s, why)| {
                s.unwrap_or_else(|| {
                    let why = why.unwrap_or_else(|| format!("4.4.1 {last_error}"));
                    RcptStatus::Temporary(match stopped {
                        Some(x) => format!("{why}; not trying further hosts: {x}"),
                        None => why,
                    })
                })
            })
            .collect()
    }
}

/// Tries the route's hosts and their addresses, within the limits, until every recipient is
/// settled or none is left to try.
async fn send_via(
    ctx: &DeliveryCtx,
    log: &Log,
    route: &Route,
    limits: &Limits,
    env: &Envelope<'_>,
) -> Vec<RcptStatus> {
    let rcpts = env.rcpts;
    let mut budget = Budget::start(*limits, Instant::now());
    let mut progress = Progress::new(rcpts.len());
    let mut last_error = String::from("no mail host to try");
    let mut stopped = None;
    'hosts: for host in &route.hosts {
        if let Some(x) = budget.exhausted(Instant::now()) {
            stopped = Some(x);
            break;
        }
        let Some(addrs) = host_addresses(ctx, log, host, &mut last_error).await else {
            continue;
        };
        for ip in addrs.into_iter().take(MAX_ADDRESSES_PER_HOST) {
            if let Some(x) = budget.exhausted(Instant::now()) {
                stopped = Some(x);
                break 'hosts;
            }
            let open = progress.open();
            if loops_back(&ctx.config, ip, route.port) {
                let why = loop_error(rcpts, host, ip, route.port);
                log.warn(&why);
                for &i in &open {
                    progress.settled[i] = Some(RcptStatus::Permanent(why.clone()));
                }
                break 'hosts;
            }
            budget.address_tried();
            let p = Params {
                helo: ctx.config.server.hostname.as_str(),
                host,
                ip,
                tls: route.tls,
                login: route.login.as_ref(),
                verify: route.verify.as_ref(),
                deadline: budget.deadline(),
            };
            let wanted: Vec<String> = open.iter().map(|&i| rcpts[i].clone()).collect();
            let env = Envelope {
                rcpts: &wanted,
                ..*env
            };
            match try_address(ctx, log, &p, route.port, &env, &mut budget).await {
                Ok(verdicts) => {
                    let at = format!("{host}[{ip}]");
                    if !progress.record(log, rcpts, &open, &at, verdicts) {
                        break 'hosts;
                    }
                }
                Err(HostFailure(e)) => {
                    log.warn(&e);
                    last_error = e;
                }
            }
        }
    }
    if let Some(x) = stopped {
        log.warn(&format!("not trying further hosts: {x}"));
    }
    progress.finish(&last_error, stopped)
}

/// The addresses of `host` (`None`, with `last_error` set and logged, when it has none).
async fn host_addresses(
    ctx: &DeliveryCtx,
    log: &Log,
    host: &str,
    last_error: &mut String,
) -> Option<Vec<IpAddr>> {
    let addrs = match ctx.resolver.ip_addrs(host).await {
        Ok(a) if a.is_empty() => {
            *last_error = format!("{host}: host has no address");
            log.warn(last_error);
            return None;
        }
        Ok(a) => crate::engine::dns::address_order(a),
        Err(e) => {
            *last_error = format!("{host}: address lookup failed: {e}");
            log.warn(last_error);
            return None;
        }
    };
    if host.parse::<IpAddr>().is_err() {
        log.detail(format_args!(
            "DNS: {host} has address {}",
            addrs
                .iter()
                .map(IpAddr::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Some(addrs)
}

/// The permanent failure for a route that leads back to this server.
fn loop_error(rcpts: &[String], host: &str, ip: IpAddr, port: u16) -> String {
    let domain = rcpts
        .first()
        .and_then(|r| r.rsplit_once('@'))
        .map_or("", |(_, d)| d);
    format!("5.4.6 mail for {domain} loops back to myself ({host}[{ip}]:{port})")
}

/// One address: a session as the route asks; when its STARTTLS handshake fails and the policy
/// allows it (opportunistic, no login), a second session at once without STARTTLS, as
/// Postfix's `smtp_tls_security_level = may` does. `Err`: try the next address.
async fn try_address(
    ctx: &DeliveryCtx,
    log: &Log,
    p: &Params<'_>,
    port: u16,
    env: &Envelope<'_>,
    budget: &mut Budget,
) -> Result<Vec<Verdict>, HostFailure> {
    match attempt(ctx, log, p, port, env, budget).await {
        Err(OpenError::TlsHandshake { peer, why }) if p.may_retry_without_tls() => {
            log.warn(&format!(
                "TLS handshake with {peer} failed ({why}); retrying without TLS"
            ));
            let plain = Params {
                tls: TlsPolicy::Never,
                ..*p
            };
            Ok(attempt(ctx, log, &plain, port, env, budget).await?)
        }
        r => Ok(r?),
    }
}

/// One connection: a kept one to the same address when the cache has one that still answers
/// ([`cache`]), else a new one (connect, introduce ourselves); then transactions of at most
/// 100 recipients, and the session is kept for the next delivery or closed with QUIT. `Err`
/// means nothing was settled and the next address may be tried (or this one again without
/// TLS, for [`OpenError::TlsHandshake`]). A session that settles something counts against
/// the budget; a kept one that breaks before that is replaced by a new one at once.
async fn attempt(
    ctx: &DeliveryCtx,
    log: &Log,
    p: &Params<'_>,
    port: u16,
    env: &Envelope<'_>,
    budget: &mut Budget,
) -> Result<Vec<Verdict>, OpenError> {
    let key = cache::Key {
        helo: p.helo.to_string(),
        host: p.host.to_string(),
        ip: p.ip,
        port,
        tls: p.tls,
        login: p.login.map(|l| l.user.clone()),
        verified: p.verify.is_some(),
    };
    while let Some(mut session) = ctx.cache.take(&key) {
        session.adopt(log, p.deadline);
        if !session.probe().await {
            log.detail(format_args!(
                "{}: the kept connection no longer answers; not using it",
                session.peer()
            ));
            continue;
        }
        log.detail(format_args!(
            "{}: reusing the kept connection",
            session.peer()
        ));
        match transactions(ctx, key.clone(), session, env).await {
            Ok(v) => {
                budget.session_held();
                return Ok(v);
            }
            Err(e) => log.detail(format_args!(
                "the kept connection broke before anything was settled ({e}); opening a new one"
            )),
        }
    }
    let io = connect(log, p, port).await?;
    let session = Session::open(io, p, log).await?;
    budget.session_held();
    transactions(ctx, key, session, env).await
}

/// The transactions of one delivery on an open session (at most 100 recipients each); then
/// the session is kept in the cache for the next delivery. `Err`: the session broke before
/// the first transaction settled anything.
async fn transactions(
    ctx: &DeliveryCtx,
    key: cache::Key,
    mut session: Session,
    env: &Envelope<'_>,
) -> Result<Vec<Verdict>, OpenError> {
    let rcpts = env.rcpts;
    let mut statuses = Vec::with_capacity(rcpts.len());
    for (n, chunk) in rcpts.chunks(MAX_RCPTS_PER_TRANSACTION).enumerate() {
        let sent = session
            .transaction(env.from, chunk, env.message, env.eight_bit, env.dkim)
            .await;
        match sent {
            Ok(s) => statuses.extend(s.into_iter().map(|s| (s, true))),
            // Nothing settled yet on this connection: another host may do better.
            Err((e, false)) if n == 0 => return Err(e.into()),
            Err((HostFailure(e), dot_sent)) => {
                let why = if dot_sent {
                    format!("4.4.2 {e} after the message was sent; it may have been delivered")
                } else {
                    format!("4.4.2 {e}")
                };
                statuses.resize(rcpts.len(), (RcptStatus::Temporary(why), false));
                return Ok(verdicts(statuses));
            }
        }
    }
    let om = &ctx.config.outgoing_mails;
    if om.connection_cache_time.0.is_zero() {
        session.quit().await;
    } else {
        ctx.cache.put(
            key,
            session,
            om.connection_cache_time.0,
            om.max_connections_per_domain as usize,
        );
    }
    Ok(verdicts(statuses))
}

/// The TCP connection (and with implicit TLS the handshake), within the timeouts and the
/// deadline.
async fn connect(log: &Log, p: &Params<'_>, port: u16) -> Result<BoxStream, HostFailure> {
    let addr = SocketAddr::new(p.ip, port);
    let at = format!("{}[{}]:{port}", p.host, p.ip);
    log.detail(format_args!("connecting to {at}"));
    let wait = p.within(CONNECT_TIMEOUT);
    let tcp = match tokio::time::timeout(wait, TcpStream::connect(addr)).await {
        Err(_) => {
            return Err(HostFailure(format!(
                "{at}: connection timed out after {} s",
                wait.as_secs()
            )));
        }
        Ok(Err(e)) => return Err(HostFailure(format!("{at}: cannot connect: {e}"))),
        Ok(Ok(t)) => t,
    };
    let _ = tcp.set_nodelay(true);
    log.detail(format_args!("connected to {at}"));
    if p.tls != TlsPolicy::Implicit {
        return Ok(Box::new(tcp));
    }
    let tls = tokio::time::timeout(
        p.within(client::TLS_TIMEOUT),
        p.verify
            .cloned()
            .unwrap_or_else(tls::connector)
            .connect(tls::server_name(p.host, p.ip), tcp),
    )
    .await
    .map_err(|_| HostFailure(format!("{at}: TLS handshake timed out")))?
    .map_err(|e| HostFailure(format!("{at}: TLS handshake failed: {e}")))?;
    log.detail(format_args!("{at}: TLS established (implicit)"));
    Ok(Box::new(tls))
}

/// The outgoing log of one delivery (owned, so that a connection kept for reuse carries
/// it from one delivery to the next: [`cache`]).
#[derive(Clone)]
pub(crate) struct Log {
    /// The bus.
    events: EventBus,
    /// Queue id, shown as the session.
    id: Arc<str>,
    /// More Detailed Logging.
    detailed: bool,
}

impl Log {
    /// The log of delivery `id` (`detailed`: More Detailed Logging).
    pub(crate) fn new(events: &EventBus, id: &str, detailed: bool) -> Log {
        Log {
            events: events.clone(),
            id: Arc::from(id),
            detailed,
        }
    }

    fn emit(&self, level: Level, text: String) {
        self.events
            .session(level, &self.id, EventKind::Delivery { text });
    }

    /// Basic log: lookups and successes.
    pub(crate) fn info(&self, text: &str) {
        self.emit(Level::Info, text.to_string());
    }

    /// Basic log: failures.
    pub(crate) fn warn(&self, text: &str) {
        self.emit(Level::Warn, text.to_string());
    }

    /// Detailed log only: connections, commands, replies, DNS answers. Asked for by More
    /// Detailed Logging, so written at Info: they reach the log file at its default level.
    /// The line is only formatted when it is kept (a delivery makes a dozen).
    pub(crate) fn detail(&self, text: std::fmt::Arguments<'_>) {
        if self.detailed {
            self.emit(Level::Info, text.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_literals() {
        assert_eq!(
            address_literal("[192.0.2.1]"),
            Some(IpAddr::from([192, 0, 2, 1]))
        );
        assert_eq!(address_literal("[IPv6:::1]"), Some("::1".parse().unwrap()));
        assert_eq!(address_literal("example.com"), None);
        assert_eq!(address_literal("[example.com]"), None);
    }

    fn temp(t: &str) -> RcptStatus {
        RcptStatus::Temporary(t.into())
    }

    #[test]
    fn a_server_that_took_nothing_sends_its_soft_refusals_on() {
        // 4xx to MAIL or to every RCPT: all to the next host.
        assert_eq!(
            verdicts(vec![(temp("451 mail"), true), (temp("451 mail"), true)]),
            vec![
                Verdict::TryNext("451 mail".into()),
                Verdict::TryNext("451 mail".into())
            ]
        );
        // Hard refusals are final; the soft ones still go on.
        let gone = RcptStatus::Permanent("550 gone".into());
        assert_eq!(
            verdicts(vec![(gone.clone(), true), (temp("452 full"), true)]),
            vec![Verdict::Settled(gone), Verdict::TryNext("452 full".into())]
        );
    }

    #[test]
    fn a_server_that_took_some_settles_the_rest_and_a_broken_session_is_final() {
        let ok = RcptStatus::Delivered("250 ok".into());
        assert_eq!(
            verdicts(vec![(ok.clone(), true), (temp("452 full"), true)]),
            vec![Verdict::Settled(ok), Verdict::Settled(temp("452 full"))]
        );
        // Our own conclusion from a connection lost after the dot: never sent again elsewhere.
        let lost = temp("4.4.2 lost after the message was sent; it may have been delivered");
        assert_eq!(
            verdicts(vec![(temp("451 mail"), true), (lost.clone(), false)]),
            vec![Verdict::TryNext("451 mail".into()), Verdict::Settled(lost)]
        );
    }
}
