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
//! transaction is settled makes us try the next one; when none is left every recipient gets a
//! temporary failure with the last error. Once a server has answered for a recipient, that
//! answer is final for this attempt.
//!
//! Only this module opens outbound sockets. Logs go to the SMTP Out view (`EventKind::Delivery`) with the queue id
//! as the session: MX lookups, deliveries and failures always; with "More Detailed Logging"
//! also every connection attempt, DNS answer, command sent and reply received.

mod client;
pub mod data;
mod reply;
pub(crate) mod tls;

pub use client::{HostFailure, Login, TlsPolicy};

use crate::engine::config::{Config, DeliveryMode, OutboundTls, RelayTls};
use crate::engine::dns::{DnsError, MxAnswer, Resolver};
use crate::engine::events::{EventBus, EventKind, Level};
use crate::engine::store::body::Body;
use client::{BoxStream, CONNECT_TIMEOUT, MAX_RCPTS_PER_TRANSACTION, Params, Session};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::net::TcpStream;

/// MX hosts tried for one domain at most (the lowest preferences).
const MAX_MX_HOSTS: usize = 10;
/// Addresses tried per host at most.
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
}

impl DeliveryCtx {
    /// A context that contacts MX hosts on port 25.
    pub fn new(config: Arc<Config>, resolver: Resolver, events: EventBus) -> DeliveryCtx {
        DeliveryCtx {
            config,
            resolver,
            events,
            mx_port: 25,
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
/// lines. Returns one status per recipient, in the order of `rcpts`.
pub async fn deliver(
    ctx: &DeliveryCtx,
    log_id: &str,
    domain: &str,
    from: &str,
    rcpts: &[String],
    message: &Body,
) -> Vec<RcptStatus> {
    let log = Log {
        events: &ctx.events,
        id: log_id,
        detailed: ctx.config.outgoing_mails.detailed_logging,
    };
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
        let statuses = route_and_send(ctx, &log, domain, from, &wanted, message).await;
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
    log: &Log<'_>,
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
    send_via(ctx, log, &route, from, rcpts, message).await
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

/// Tries the route's hosts and their addresses until one settles the recipients.
async fn send_via(
    ctx: &DeliveryCtx,
    log: &Log<'_>,
    route: &Route,
    from: &str,
    rcpts: &[String],
    message: &Body,
) -> Vec<RcptStatus> {
    let eight_bit = body_has_8bit(message);
    let helo = ctx.config.server.hostname.as_str();
    let mut last_error = String::from("no mail host to try");
    for host in &route.hosts {
        let addrs = match ctx.resolver.ip_addrs(host).await {
            Ok(a) if a.is_empty() => {
                last_error = format!("{host}: host has no address");
                log.warn(&last_error);
                continue;
            }
            Ok(a) => a,
            Err(e) => {
                last_error = format!("{host}: address lookup failed: {e}");
                log.warn(&last_error);
                continue;
            }
        };
        if host.parse::<IpAddr>().is_err() {
            log.detail(&format!(
                "DNS: {host} has address {}",
                addrs
                    .iter()
                    .map(IpAddr::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        for ip in addrs.into_iter().take(MAX_ADDRESSES_PER_HOST) {
            if loops_back(&ctx.config, ip, route.port) {
                let domain = rcpts
                    .first()
                    .and_then(|r| r.rsplit_once('@'))
                    .map_or("", |(_, d)| d);
                let why = format!(
                    "5.4.6 mail for {domain} loops back to myself ({host}[{ip}]:{})",
                    route.port
                );
                log.warn(&why);
                return vec![RcptStatus::Permanent(why); rcpts.len()];
            }
            let p = Params {
                helo,
                host,
                ip,
                tls: route.tls,
                login: route.login.as_ref(),
                verify: route.verify.as_ref(),
            };
            match attempt(log, &p, route.port, from, rcpts, message, eight_bit).await {
                Ok(statuses) => {
                    for (rcpt, s) in rcpts.iter().zip(&statuses) {
                        if let RcptStatus::Delivered(reply) = s {
                            log.info(&format!("delivered to <{rcpt}> via {host}[{ip}]: {reply}"));
                        }
                    }
                    return statuses;
                }
                Err(HostFailure(e)) => {
                    log.warn(&e);
                    last_error = e;
                }
            }
        }
    }
    vec![RcptStatus::Temporary(format!("4.4.1 {last_error}")); rcpts.len()]
}

/// One connection: connect, introduce ourselves, run transactions of at most 100 recipients,
/// QUIT. `Err` means nothing was settled and the next address may be tried.
#[allow(clippy::too_many_arguments)]
async fn attempt(
    log: &Log<'_>,
    p: &Params<'_>,
    port: u16,
    from: &str,
    rcpts: &[String],
    message: &Body,
    eight_bit: bool,
) -> Result<Vec<RcptStatus>, HostFailure> {
    let addr = SocketAddr::new(p.ip, port);
    let at = format!("{}[{}]:{port}", p.host, p.ip);
    log.detail(&format!("connecting to {at}"));
    let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Err(_) => {
            return Err(HostFailure(format!(
                "{at}: connection timed out after {} s",
                CONNECT_TIMEOUT.as_secs()
            )));
        }
        Ok(Err(e)) => return Err(HostFailure(format!("{at}: cannot connect: {e}"))),
        Ok(Ok(t)) => t,
    };
    let _ = tcp.set_nodelay(true);
    log.detail(&format!("connected to {at}"));
    let io: BoxStream = if p.tls == TlsPolicy::Implicit {
        let tls = tokio::time::timeout(
            client::TLS_TIMEOUT,
            p.verify
                .cloned()
                .unwrap_or_else(tls::connector)
                .connect(tls::server_name(p.host, p.ip), tcp),
        )
        .await
        .map_err(|_| HostFailure(format!("{at}: TLS handshake timed out")))?
        .map_err(|e| HostFailure(format!("{at}: TLS handshake failed: {e}")))?;
        log.detail(&format!("{at}: TLS established (implicit)"));
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let mut session = Session::open(io, p, log).await?;
    let mut statuses = Vec::with_capacity(rcpts.len());
    for (n, chunk) in rcpts.chunks(MAX_RCPTS_PER_TRANSACTION).enumerate() {
        match session.transaction(from, chunk, message, eight_bit).await {
            Ok(s) => statuses.extend(s),
            // Nothing settled yet on this connection: another host may do better.
            Err((e, false)) if n == 0 => return Err(e),
            Err((HostFailure(e), dot_sent)) => {
                let why = if dot_sent {
                    format!("4.4.2 {e} after the message was sent; it may have been delivered")
                } else {
                    format!("4.4.2 {e}")
                };
                statuses.resize(rcpts.len(), RcptStatus::Temporary(why));
                return Ok(statuses);
            }
        }
    }
    session.quit().await;
    Ok(statuses)
}

/// The outgoing log of one delivery.
pub(crate) struct Log<'a> {
    /// The bus.
    events: &'a EventBus,
    /// Queue id, shown as the session.
    id: &'a str,
    /// More Detailed Logging.
    detailed: bool,
}

impl Log<'_> {
    fn emit(&self, level: Level, text: &str) {
        self.events.session(
            level,
            self.id,
            EventKind::Delivery {
                text: text.to_string(),
            },
        );
    }

    /// Basic log: lookups and successes.
    pub(crate) fn info(&self, text: &str) {
        self.emit(Level::Info, text);
    }

    /// Basic log: failures.
    pub(crate) fn warn(&self, text: &str) {
        self.emit(Level::Warn, text);
    }

    /// Detailed log only: connections, commands, replies, DNS answers.
    pub(crate) fn detail(&self, text: &str) {
        if self.detailed {
            self.emit(Level::Debug, text);
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
}
