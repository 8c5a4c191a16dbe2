//! SPF (RFC 7208): `check_host()` for the MAIL FROM domain, or the HELO name for the null
//! sender, through the engine's [`Resolver`].
//!
//! Implemented: the mechanisms `all`, `include`, `a`, `mx`, `ptr`, `ip4`, `ip6`, `exists`
//! with their qualifiers and dual CIDR lengths; the `redirect` modifier (`exp` is parsed and
//! checked but no explanation is fetched, unknown modifiers are ignored); the macros of
//! section 7 that may appear in a domain-spec (`s l o d i p v h`, transformers, delimiters,
//! URL-escaping upper-case letters, `%%` `%_` `%-`); the limit of 10 DNS-querying terms,
//! 10 MX hosts, 10 PTR names and 2 void lookups (4.6.4); and a 20-second bound on the whole
//! evaluation (temperror when exceeded). Any syntax error in a record is a permerror before
//! anything in it is evaluated (4.6).
//!
//! Differences from the letter of the RFC: for an IPv6 client the `a` and `mx` mechanisms ask
//! for A and AAAA together, so a failing AAAA query next to a working A query is not a
//! temperror; and a domain-spec that expands to a name DNS cannot carry does not match.

use crate::engine::dns::{DnsError, MxAnswer, Resolver};
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::pin::Pin;
use std::time::Duration;

/// Terms that query DNS (`include a mx ptr exists redirect`) per evaluation.
pub const MAX_DNS_TERMS: u32 = 10;
/// Lookups that found nothing (NXDOMAIN or no records) per evaluation.
pub const MAX_VOID_LOOKUPS: u32 = 2;
/// MX hosts one `mx` mechanism may name.
const MAX_MX_HOSTS: usize = 10;
/// PTR names considered by `ptr` and `%{p}`.
const MAX_PTR_NAMES: usize = 10;
/// The longest a whole evaluation may take (RFC 7208 4.6.4 asks for at least 20 seconds).
const EVALUATION_DEADLINE: Duration = Duration::from_secs(20);

/// The result of `check_host()` (RFC 7208 2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpfResult {
    /// The client is authorized.
    Pass,
    /// The client is explicitly not authorized.
    Fail,
    /// Probably not authorized (`~`).
    SoftFail,
    /// The domain makes no assertion (`?`, or nothing matched).
    Neutral,
    /// No SPF record, or no valid domain to check.
    None,
    /// A transient DNS error; try again later.
    TempError,
    /// The record is broken or exceeds the lookup limits.
    PermError,
}

impl SpfResult {
    /// The lower-case name used in `Received-SPF:` and `Authentication-Results:`.
    pub fn as_str(self) -> &'static str {
        match self {
            SpfResult::Pass => "pass",
            SpfResult::Fail => "fail",
            SpfResult::SoftFail => "softfail",
            SpfResult::Neutral => "neutral",
            SpfResult::None => "none",
            SpfResult::TempError => "temperror",
            SpfResult::PermError => "permerror",
        }
    }
}

impl fmt::Display for SpfResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A result with the reason, for the log and the warning header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpfOutcome {
    /// The result.
    pub result: SpfResult,
    /// Why, e.g. "example.com: `-all` matched".
    pub reason: String,
}

/// RFC 7208 `check_host(ip, domain, sender)`: `domain` is the MAIL FROM domain (or the HELO
/// name for the null sender), `sender` the MAIL FROM address (empty for the null sender, which
/// then counts as `postmaster@domain`), `helo` the HELO/EHLO name (for `%{h}`).
pub async fn check_host(
    resolver: &Resolver,
    ip: IpAddr,
    domain: &str,
    sender: &str,
    helo: &str,
) -> SpfResult {
    check(resolver, ip, domain, sender, helo).await.result
}

/// [`check_host`] with the reason for the result.
pub async fn check(
    resolver: &Resolver,
    ip: IpAddr,
    domain: &str,
    sender: &str,
    helo: &str,
) -> SpfOutcome {
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let sender = sender.trim().trim_start_matches('<').trim_end_matches('>');
    let (local, sender_domain) = match sender.rsplit_once('@') {
        Some((l, d)) if !d.is_empty() => (l, d.to_ascii_lowercase()),
        Some((l, _)) => (l, domain.clone()),
        None => ("", domain.clone()),
    };
    let local = if local.is_empty() {
        "postmaster"
    } else {
        local
    };
    let mut ctx = Ctx {
        resolver,
        ip: ip.to_canonical(),
        sender: format!("{local}@{sender_domain}"),
        local: local.to_string(),
        sender_domain,
        helo: helo.trim().to_string(),
        dns_terms: 0,
        voids: 0,
    };
    if !valid_domain(&domain) {
        return SpfOutcome {
            result: SpfResult::None,
            reason: format!("`{domain}` is not a domain name SPF can check"),
        };
    }
    let run = ctx.eval(domain.clone());
    match tokio::time::timeout(EVALUATION_DEADLINE, run).await {
        Ok(Ok(v)) => SpfOutcome {
            result: v.result,
            reason: v.reason,
        },
        Ok(Err(Stop::Temp(reason))) => SpfOutcome {
            result: SpfResult::TempError,
            reason,
        },
        Ok(Err(Stop::Perm(reason))) => SpfOutcome {
            result: SpfResult::PermError,
            reason,
        },
        Err(_) => SpfOutcome {
            result: SpfResult::TempError,
            reason: format!("{domain}: SPF evaluation took longer than {EVALUATION_DEADLINE:?}"),
        },
    }
}

/// A result reached by evaluating a record.
#[derive(Debug)]
struct Verdict {
    /// Pass, Fail, SoftFail, Neutral or None.
    result: SpfResult,
    /// Why.
    reason: String,
}

/// What ends an evaluation at once, whatever record it is in.
#[derive(Debug)]
enum Stop {
    /// temperror, and why.
    Temp(String),
    /// permerror, and why.
    Perm(String),
}

/// A qualifier (RFC 7208 4.6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Qualifier {
    /// `+` (the default).
    Pass,
    /// `-`.
    Fail,
    /// `~`.
    SoftFail,
    /// `?`.
    Neutral,
}

impl Qualifier {
    fn result(self) -> SpfResult {
        match self {
            Qualifier::Pass => SpfResult::Pass,
            Qualifier::Fail => SpfResult::Fail,
            Qualifier::SoftFail => SpfResult::SoftFail,
            Qualifier::Neutral => SpfResult::Neutral,
        }
    }
}

/// One piece of a macro-string (RFC 7208 7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// Literal text (including what `%%`, `%_` and `%-` stand for).
    Literal(String),
    /// `%{...}`.
    Macro {
        /// The letter, lower case.
        letter: char,
        /// Upper-case letter: URL-escape the value.
        escape: bool,
        /// Keep this many right-hand parts.
        keep: Option<usize>,
        /// Reverse the parts first.
        reverse: bool,
        /// Characters to split on (default ".").
        delimiters: String,
    },
}

/// A domain-spec: a macro-string checked against the domain-end rule.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DomainSpec(Vec<Token>);

/// A mechanism (RFC 7208 5).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mechanism {
    /// `all`.
    All,
    /// `include:<domain-spec>`.
    Include(DomainSpec),
    /// `a[:<domain-spec>][/v4][//v6]`.
    A(Option<DomainSpec>, u8, u8),
    /// `mx[:<domain-spec>][/v4][//v6]`.
    Mx(Option<DomainSpec>, u8, u8),
    /// `ptr[:<domain-spec>]`.
    Ptr(Option<DomainSpec>),
    /// `ip4:<network>[/len]`.
    Ip4(Ipv4Addr, u8),
    /// `ip6:<network>[/len]`.
    Ip6(Ipv6Addr, u8),
    /// `exists:<domain-spec>`.
    Exists(DomainSpec),
}

/// A qualifier and a mechanism, with its text for reasons.
#[derive(Debug, Clone)]
struct Directive {
    /// What a match means.
    qualifier: Qualifier,
    /// What to test.
    mechanism: Mechanism,
    /// The term as written.
    text: String,
}

/// A parsed record.
#[derive(Debug, Clone, Default)]
struct Record {
    /// Mechanisms, in order.
    directives: Vec<Directive>,
    /// `redirect=`, with its text.
    redirect: Option<(DomainSpec, String)>,
}

/// The state of one evaluation: the client, the sender and the shared lookup counters.
struct Ctx<'r> {
    /// Where to ask.
    resolver: &'r Resolver,
    /// The client (IPv4-mapped addresses as IPv4).
    ip: IpAddr,
    /// `%{s}`.
    sender: String,
    /// `%{l}`.
    local: String,
    /// `%{o}`.
    sender_domain: String,
    /// `%{h}`.
    helo: String,
    /// DNS-querying terms evaluated so far.
    dns_terms: u32,
    /// Void lookups so far.
    voids: u32,
}

/// Boxed future for the recursive evaluation.
type EvalFuture<'a> = Pin<Box<dyn Future<Output = Result<Verdict, Stop>> + Send + 'a>>;

impl<'r> Ctx<'r> {
    /// `check_host()` for `domain` (already validated): fetch, parse, evaluate.
    fn eval<'a>(&'a mut self, domain: String) -> EvalFuture<'a> {
        Box::pin(async move {
            let txts = self
                .resolver
                .txt(&domain)
                .await
                .map_err(|e| Stop::Temp(format!("{domain}: SPF record lookup failed: {e}")))?;
            let spf: Vec<&String> = txts.iter().filter(|t| is_spf_record(t)).collect();
            let text = match spf.as_slice() {
                [] => {
                    return Ok(Verdict {
                        result: SpfResult::None,
                        reason: format!("{domain} has no SPF record"),
                    });
                }
                [one] => one.as_str(),
                _ => {
                    return Err(Stop::Perm(format!(
                        "{domain} has {} SPF records",
                        spf.len()
                    )));
                }
            };
            let record = parse_record(text)
                .map_err(|e| Stop::Perm(format!("{domain}: bad SPF record: {e}")))?;
            for d in &record.directives {
                if self.matches(&d.mechanism, &domain, &d.text).await? {
                    return Ok(Verdict {
                        result: d.qualifier.result(),
                        reason: format!("{domain}: `{}` matched", d.text),
                    });
                }
            }
            if let Some((spec, text)) = &record.redirect {
                self.count_dns_term(&domain, text)?;
                let target = self.expand_domain(spec, &domain).await?;
                if !valid_domain(&target) {
                    return Err(Stop::Perm(format!(
                        "{domain}: `{text}` names no valid domain"
                    )));
                }
                let inner = self.eval(target.clone()).await?;
                if inner.result == SpfResult::None {
                    return Err(Stop::Perm(format!(
                        "{domain}: `{text}`: {target} has no SPF record"
                    )));
                }
                return Ok(Verdict {
                    result: inner.result,
                    reason: format!("{domain}: `{text}`, then {}", inner.reason),
                });
            }
            Ok(Verdict {
                result: SpfResult::Neutral,
                reason: format!("{domain}: no mechanism matched"),
            })
        })
    }

    /// Counts one DNS-querying term; permerror past [`MAX_DNS_TERMS`].
    fn count_dns_term(&mut self, domain: &str, term: &str) -> Result<(), Stop> {
        self.dns_terms += 1;
        if self.dns_terms > MAX_DNS_TERMS {
            return Err(Stop::Perm(format!(
                "{domain}: `{term}` exceeds the limit of {MAX_DNS_TERMS} DNS lookups"
            )));
        }
        Ok(())
    }

    /// Counts one void lookup; permerror past [`MAX_VOID_LOOKUPS`].
    fn count_void(&mut self, domain: &str, term: &str) -> Result<(), Stop> {
        self.voids += 1;
        if self.voids > MAX_VOID_LOOKUPS {
            return Err(Stop::Perm(format!(
                "{domain}: `{term}` exceeds the limit of {MAX_VOID_LOOKUPS} void lookups"
            )));
        }
        Ok(())
    }

    /// A DNS failure inside a term: temperror for a temporary one; a name DNS cannot carry
    /// (`Config`) only means the term does not match.
    fn dns_failure(domain: &str, term: &str, e: DnsError) -> Result<bool, Stop> {
        match e {
            DnsError::Temporary(m) => Err(Stop::Temp(format!("{domain}: `{term}`: {m}"))),
            DnsError::Config(_) => Ok(false),
        }
    }

    /// Whether a mechanism matches the client.
    async fn matches(&mut self, m: &Mechanism, domain: &str, term: &str) -> Result<bool, Stop> {
        match m {
            Mechanism::All => Ok(true),
            Mechanism::Ip4(net, len) => Ok(match self.ip {
                IpAddr::V4(ip) => in_net4(ip, *net, *len),
                IpAddr::V6(_) => false,
            }),
            Mechanism::Ip6(net, len) => Ok(match self.ip {
                IpAddr::V6(ip) => in_net6(ip, *net, *len),
                IpAddr::V4(_) => false,
            }),
            Mechanism::Include(spec) => {
                self.count_dns_term(domain, term)?;
                let target = self.expand_domain(spec, domain).await?;
                if !valid_domain(&target) {
                    return Err(Stop::Perm(format!(
                        "{domain}: `{term}` names no valid domain"
                    )));
                }
                let inner = self.eval(target.clone()).await?;
                match inner.result {
                    SpfResult::Pass => Ok(true),
                    SpfResult::Fail | SpfResult::SoftFail | SpfResult::Neutral => Ok(false),
                    SpfResult::None => Err(Stop::Perm(format!(
                        "{domain}: `{term}`: {target} has no SPF record"
                    ))),
                    // Errors leave `eval` as `Stop`; these arms cannot be reached.
                    SpfResult::TempError => Err(Stop::Temp(inner.reason)),
                    SpfResult::PermError => Err(Stop::Perm(inner.reason)),
                }
            }
            Mechanism::A(spec, v4, v6) => {
                self.count_dns_term(domain, term)?;
                let target = self.target(spec.as_ref(), domain).await?;
                if !valid_domain(&target) {
                    return Ok(false);
                }
                let addrs = match self.addresses(&target).await {
                    Ok(a) => a,
                    Err(e) => return Self::dns_failure(domain, term, e),
                };
                if addrs.is_empty() {
                    self.count_void(domain, term)?;
                }
                Ok(addrs.iter().any(|a| self.in_cidr(*a, *v4, *v6)))
            }
            Mechanism::Mx(spec, v4, v6) => {
                self.count_dns_term(domain, term)?;
                let target = self.target(spec.as_ref(), domain).await?;
                if !valid_domain(&target) {
                    return Ok(false);
                }
                let hosts = match self.resolver.mx(&target).await {
                    Ok(MxAnswer::Hosts(h)) => h,
                    Ok(MxAnswer::NullMx) => Vec::new(),
                    // RFC 7208 5.4: no implicit MX here.
                    Ok(MxAnswer::Implicit | MxAnswer::NoSuchDomain) => {
                        self.count_void(domain, term)?;
                        Vec::new()
                    }
                    Err(e) => return Self::dns_failure(domain, term, e),
                };
                if hosts.len() > MAX_MX_HOSTS {
                    return Err(Stop::Perm(format!(
                        "{domain}: `{term}`: {target} has {} MX hosts (at most {MAX_MX_HOSTS})",
                        hosts.len()
                    )));
                }
                for (_, host) in &hosts {
                    let addrs = match self.addresses(host).await {
                        Ok(a) => a,
                        Err(e) => return Self::dns_failure(domain, term, e),
                    };
                    if addrs.iter().any(|a| self.in_cidr(*a, *v4, *v6)) {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Mechanism::Ptr(spec) => {
                self.count_dns_term(domain, term)?;
                let target = self.target(spec.as_ref(), domain).await?;
                let names = self.validated_names(domain, term).await?;
                Ok(names.iter().any(|n| is_same_or_sub(n, &target)))
            }
            Mechanism::Exists(spec) => {
                self.count_dns_term(domain, term)?;
                let target = self.expand_domain(spec, domain).await?;
                if !valid_domain(&target) {
                    return Ok(false);
                }
                match self.resolver.ipv4(&target).await {
                    Ok(a) if a.is_empty() => {
                        self.count_void(domain, term)?;
                        Ok(false)
                    }
                    Ok(_) => Ok(true),
                    Err(e) => Self::dns_failure(domain, term, e),
                }
            }
        }
    }

    /// The domain a mechanism applies to: its domain-spec expanded, or the current domain.
    async fn target(&mut self, spec: Option<&DomainSpec>, domain: &str) -> Result<String, Stop> {
        match spec {
            Some(s) => self.expand_domain(s, domain).await,
            None => Ok(domain.to_string()),
        }
    }

    /// Addresses of `host` in the client's family. A host "name" that is an address text
    /// (as an attacker's PTR or MX record may hold) has none.
    async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        if host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() {
            return Ok(Vec::new());
        }
        match self.ip {
            IpAddr::V4(_) => Ok(self
                .resolver
                .ipv4(host)
                .await?
                .into_iter()
                .map(IpAddr::V4)
                .collect()),
            IpAddr::V6(_) => Ok(self
                .resolver
                .ip_addrs(host)
                .await?
                .into_iter()
                .filter(IpAddr::is_ipv6)
                .collect()),
        }
    }

    /// Whether `addr` is within the mechanism's CIDR length of the client.
    fn in_cidr(&self, addr: IpAddr, v4: u8, v6: u8) -> bool {
        match (self.ip, addr.to_canonical()) {
            (IpAddr::V4(ip), IpAddr::V4(a)) => in_net4(ip, a, v4),
            (IpAddr::V6(ip), IpAddr::V6(a)) => in_net6(ip, a, v6),
            _ => false,
        }
    }

    /// The client's PTR names that resolve back to it (RFC 7208 5.5), at most
    /// [`MAX_PTR_NAMES`] considered. A failing PTR query gives no names.
    async fn validated_names(&mut self, domain: &str, term: &str) -> Result<Vec<String>, Stop> {
        let names = match self.resolver.ptr(self.ip).await {
            Ok(n) => n,
            Err(_) => return Ok(Vec::new()),
        };
        if names.is_empty() {
            self.count_void(domain, term)?;
        }
        let mut valid = Vec::new();
        for name in names.into_iter().take(MAX_PTR_NAMES) {
            if let Ok(addrs) = self.addresses(&name).await
                && addrs.iter().any(|a| a.to_canonical() == self.ip)
            {
                valid.push(name.to_ascii_lowercase());
            }
        }
        Ok(valid)
    }

    /// Expands a domain-spec and shortens it to 253 characters from the left (RFC 7208 7.3).
    async fn expand_domain(&mut self, spec: &DomainSpec, domain: &str) -> Result<String, Stop> {
        let needs_p = spec
            .0
            .iter()
            .any(|t| matches!(t, Token::Macro { letter: 'p', .. }));
        let p = if needs_p {
            self.count_dns_term(domain, "%{p}")?;
            let names = self.validated_names(domain, "%{p}").await?;
            let pick = names
                .iter()
                .find(|n| n.eq_ignore_ascii_case(domain))
                .or_else(|| names.iter().find(|n| is_same_or_sub(n, domain)))
                .or_else(|| names.first());
            pick.cloned().unwrap_or_else(|| "unknown".to_string())
        } else {
            String::new()
        };
        let mut out = String::new();
        for t in &spec.0 {
            match t {
                Token::Literal(s) => out.push_str(s),
                Token::Macro {
                    letter,
                    escape,
                    keep,
                    reverse,
                    delimiters,
                } => {
                    let value = match letter {
                        's' => self.sender.clone(),
                        'l' => self.local.clone(),
                        'o' => self.sender_domain.clone(),
                        'd' => domain.to_string(),
                        'i' => dotted_ip(self.ip),
                        'p' => p.clone(),
                        'v' => if self.ip.is_ipv4() { "in-addr" } else { "ip6" }.to_string(),
                        'h' => self.helo.clone(),
                        // The parser lets no other letter through in a domain-spec.
                        other => return Err(Stop::Perm(format!("macro %{{{other}}} not allowed"))),
                    };
                    let value = transform(&value, *keep, *reverse, delimiters);
                    if *escape {
                        out.push_str(&url_escape(&value));
                    } else {
                        out.push_str(&value);
                    }
                }
            }
        }
        let mut name = out.trim_end_matches('.').to_string();
        while name.len() > 253 {
            match name.split_once('.') {
                Some((_, rest)) => name = rest.to_string(),
                None => break,
            }
        }
        Ok(name)
    }
}

/// Whether a TXT record is an SPF version 1 record: "v=spf1" alone or followed by a space.
fn is_spf_record(txt: &str) -> bool {
    let t = txt.as_bytes();
    t.len() >= 6 && t[..6].eq_ignore_ascii_case(b"v=spf1") && (t.len() == 6 || t[6] == b' ')
}

/// Parses a whole record; any syntax error fails it (RFC 7208 4.6).
fn parse_record(text: &str) -> Result<Record, String> {
    let mut record = Record::default();
    let mut exp_seen = false;
    for term in text.split(' ').skip(1).filter(|t| !t.is_empty()) {
        if let Some((name, value)) = modifier(term) {
            if name.eq_ignore_ascii_case("redirect") {
                if record.redirect.is_some() {
                    return Err("two redirect= modifiers".into());
                }
                record.redirect = Some((domain_spec(value)?, term.to_string()));
            } else if name.eq_ignore_ascii_case("exp") {
                if exp_seen {
                    return Err("two exp= modifiers".into());
                }
                exp_seen = true;
                domain_spec(value)?;
            } else {
                // Unknown modifiers are ignored, but must be well formed.
                parse_macro_string(value, true).map_err(|e| format!("`{term}`: {e}"))?;
            }
            continue;
        }
        record
            .directives
            .push(parse_directive(term).map_err(|e| format!("`{term}`: {e}"))?);
    }
    Ok(record)
}

/// `name=value` when `term` is a modifier (name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." )).
fn modifier(term: &str) -> Option<(&str, &str)> {
    let (name, value) = term.split_once('=')?;
    let mut chars = name.chars();
    let first = chars.next()?;
    let ok = first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    ok.then_some((name, value))
}

/// One directive: `[qualifier] mechanism`.
fn parse_directive(term: &str) -> Result<Directive, String> {
    let (qualifier, rest) = match term.as_bytes().first() {
        Some(b'+') => (Qualifier::Pass, &term[1..]),
        Some(b'-') => (Qualifier::Fail, &term[1..]),
        Some(b'~') => (Qualifier::SoftFail, &term[1..]),
        Some(b'?') => (Qualifier::Neutral, &term[1..]),
        _ => (Qualifier::Pass, term),
    };
    let split = rest.find([':', '/']).unwrap_or(rest.len());
    let (name, arg) = rest.split_at(split);
    let name = name.to_ascii_lowercase();
    let mechanism = match name.as_str() {
        "all" if arg.is_empty() => Mechanism::All,
        "include" => Mechanism::Include(required_spec(arg)?),
        "exists" => Mechanism::Exists(required_spec(arg)?),
        "a" | "mx" => {
            let (spec, v4, v6) = spec_and_cidr(arg)?;
            if name == "a" {
                Mechanism::A(spec, v4, v6)
            } else {
                Mechanism::Mx(spec, v4, v6)
            }
        }
        "ptr" => match arg.strip_prefix(':') {
            Some(s) => Mechanism::Ptr(Some(domain_spec(s)?)),
            None if arg.is_empty() => Mechanism::Ptr(None),
            None => return Err("unexpected text after ptr".into()),
        },
        "ip4" => {
            let arg = arg.strip_prefix(':').ok_or("ip4 needs an address")?;
            let (addr, len) = match arg.split_once('/') {
                Some((a, l)) => (a, cidr_length(l, 32)?),
                None => (arg, 32),
            };
            Mechanism::Ip4(
                addr.parse()
                    .map_err(|_| format!("`{addr}` is not an IPv4 address"))?,
                len,
            )
        }
        "ip6" => {
            let arg = arg.strip_prefix(':').ok_or("ip6 needs an address")?;
            let (addr, len) = match arg.rsplit_once('/') {
                Some((a, l)) => (a, cidr_length(l, 128)?),
                None => (arg, 128),
            };
            Mechanism::Ip6(
                addr.parse()
                    .map_err(|_| format!("`{addr}` is not an IPv6 address"))?,
                len,
            )
        }
        _ => return Err("unknown mechanism".into()),
    };
    Ok(Directive {
        qualifier,
        mechanism,
        text: term.to_string(),
    })
}

/// `:<domain-spec>`, required.
fn required_spec(arg: &str) -> Result<DomainSpec, String> {
    domain_spec(arg.strip_prefix(':').ok_or("needs `:domain`")?)
}

/// `[:<domain-spec>][/v4][//v6]` of `a` and `mx`.
fn spec_and_cidr(arg: &str) -> Result<(Option<DomainSpec>, u8, u8), String> {
    let mut rest = arg;
    let mut v6 = 128;
    let mut v4 = 32;
    if let Some(i) = rest.rfind("//")
        && rest[i + 2..].bytes().all(|b| b.is_ascii_digit())
    {
        v6 = cidr_length(&rest[i + 2..], 128)?;
        rest = &rest[..i];
    }
    if let Some(i) = rest.rfind('/')
        && rest[i + 1..].bytes().all(|b| b.is_ascii_digit())
    {
        v4 = cidr_length(&rest[i + 1..], 32)?;
        rest = &rest[..i];
    }
    let spec = match rest.strip_prefix(':') {
        Some(s) => Some(domain_spec(s)?),
        None if rest.is_empty() => None,
        None => return Err(format!("unexpected `{rest}`")),
    };
    Ok((spec, v4, v6))
}

/// A CIDR length: no leading zeros, at most `max`.
fn cidr_length(text: &str, max: u8) -> Result<u8, String> {
    let ok = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'))
        && text.len() <= 3;
    match text.parse::<u16>() {
        Ok(n) if ok && n <= u16::from(max) => Ok(n as u8),
        _ => Err(format!("bad CIDR length `/{text}` (0 to {max})")),
    }
}

/// A domain-spec: macro-string with no exp-only letters, ending in a macro or `.toplabel`.
fn domain_spec(text: &str) -> Result<DomainSpec, String> {
    let tokens = parse_macro_string(text, false)?;
    match tokens.last() {
        None => return Err("empty domain".into()),
        Some(Token::Macro { .. }) => {}
        Some(Token::Literal(tail)) => {
            let tail = tail.strip_suffix('.').unwrap_or(tail);
            let (_, top) = tail
                .rsplit_once('.')
                .ok_or_else(|| format!("`{text}`: no top label"))?;
            if !is_toplabel(top) {
                return Err(format!("`{text}`: `{top}` is not a top-level label"));
            }
        }
    }
    Ok(DomainSpec(tokens))
}

/// toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
fn is_toplabel(l: &str) -> bool {
    let b = l.as_bytes();
    if b.is_empty() || !b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-') {
        return false;
    }
    if b.contains(&b'-') {
        b[0].is_ascii_alphanumeric() && b[b.len() - 1].is_ascii_alphanumeric()
    } else {
        b.iter().any(u8::is_ascii_alphabetic)
    }
}

/// Parses a macro-string (RFC 7208 7.1). `exp_letters` allows `c`, `r` and `t`.
fn parse_macro_string(text: &str, exp_letters: bool) -> Result<Vec<Token>, String> {
    let mut tokens: Vec<Token> = Vec::new();
    let mut literal = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            if !('\x21'..='\x7e').contains(&c) {
                return Err(format!("character {c:?} not allowed"));
            }
            literal.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => literal.push('%'),
            Some('_') => literal.push(' '),
            Some('-') => literal.push_str("%20"),
            Some('{') => {
                let mut body = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => body.push(c),
                        None => return Err("unterminated %{".into()),
                    }
                }
                if !literal.is_empty() {
                    tokens.push(Token::Literal(std::mem::take(&mut literal)));
                }
                tokens.push(parse_macro(&body, exp_letters)?);
            }
            _ => return Err("`%` must be followed by `{`, `%`, `_` or `-`".into()),
        }
    }
    if !literal.is_empty() {
        tokens.push(Token::Literal(literal));
    }
    Ok(tokens)
}

/// The inside of `%{...}`: letter, transformers, delimiters.
fn parse_macro(body: &str, exp_letters: bool) -> Result<Token, String> {
    let mut chars = body.chars();
    let letter = chars.next().ok_or("empty macro %{}")?;
    let lower = letter.to_ascii_lowercase();
    let allowed = "slodipvh".contains(lower) || (exp_letters && "crt".contains(lower));
    if !letter.is_ascii_alphabetic() || !allowed {
        return Err(format!("unknown or misplaced macro letter `{letter}`"));
    }
    let rest: String = chars.collect();
    let digits_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let keep = if digits_end == 0 {
        None
    } else {
        match rest[..digits_end].parse::<usize>() {
            Ok(n) if (1..=128).contains(&n) => Some(n),
            _ => return Err(format!("bad macro transformer `{}`", &rest[..digits_end])),
        }
    };
    let mut rest = &rest[digits_end..];
    let reverse = match rest.strip_prefix(['r', 'R']) {
        Some(r) => {
            rest = r;
            true
        }
        None => false,
    };
    if let Some(bad) = rest.chars().find(|c| !".-+,/_=".contains(*c)) {
        return Err(format!("bad macro delimiter `{bad}`"));
    }
    Ok(Token::Macro {
        letter: lower,
        escape: letter.is_ascii_uppercase(),
        keep,
        reverse,
        delimiters: rest.to_string(),
    })
}

/// Splits on the delimiters, reverses, keeps the right-hand parts, joins with dots (7.3).
fn transform(value: &str, keep: Option<usize>, reverse: bool, delimiters: &str) -> String {
    if keep.is_none() && !reverse && delimiters.is_empty() {
        return value.to_string();
    }
    let delimiters = if delimiters.is_empty() {
        "."
    } else {
        delimiters
    };
    let mut parts: Vec<&str> = value.split(|c| delimiters.contains(c)).collect();
    if reverse {
        parts.reverse();
    }
    if let Some(n) = keep
        && n < parts.len()
    {
        parts.drain(..parts.len() - n);
    }
    parts.join(".")
}

/// URL-escapes everything but the unreserved characters (RFC 3986).
fn url_escape(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `%{i}`: dotted quad, or 32 dot-separated nibbles for IPv6.
fn dotted_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let mut parts = Vec::with_capacity(32);
            for b in v6.octets() {
                parts.push(format!("{:x}", b >> 4));
                parts.push(format!("{:x}", b & 0x0f));
            }
            parts.join(".")
        }
    }
}

/// Whether `name` is `target` or a subdomain of it (case-insensitive, trailing dots ignored).
fn is_same_or_sub(name: &str, target: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let target = target.trim_end_matches('.').to_ascii_lowercase();
    name == target || name.ends_with(&format!(".{target}"))
}

/// A name check_host() can work on: at most 253 octets, at least two labels, every label 1 to
/// 63 octets of letters, digits, `-` and `_` (or non-ASCII, for IDNs), the last one not all
/// digits, so address literals and dotted quads are not domains (RFC 7208 4.3).
fn valid_domain(domain: &str) -> bool {
    let d = domain.strip_suffix('.').unwrap_or(domain);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars()
                .all(|c| !c.is_ascii() || c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    !d.is_empty()
        && d.len() <= 253
        && d.contains('.')
        && d.split('.').all(label_ok)
        && !d
            .rsplit('.')
            .next()
            .is_some_and(|top| top.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether `ip` is in `net/len`.
fn in_net4(ip: Ipv4Addr, net: Ipv4Addr, len: u8) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    };
    u32::from(ip) & mask == u32::from(net) & mask
}

/// Whether `ip` is in `net/len`.
fn in_net6(ip: Ipv6Addr, net: Ipv6Addr, len: u8) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len.min(128)))
    };
    u128::from(ip) & mask == u128::from(net) & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A context whose resolver is never asked (no `%{p}` below).
    fn ctx<'r>(resolver: &'r Resolver, ip: &str) -> Ctx<'r> {
        Ctx {
            resolver,
            ip: ip.parse().unwrap(),
            sender: "strong-bad@email.example.com".into(),
            local: "strong-bad".into(),
            sender_domain: "email.example.com".into(),
            helo: "mx.example.org".into(),
            dns_terms: 0,
            voids: 0,
        }
    }

    #[tokio::test]
    async fn rfc7208_macro_examples() {
        let r = Resolver::new(&["127.0.0.1:9".to_string()]).unwrap();
        let mut c = ctx(&r, "192.0.2.3");
        let cases = [
            ("%{s}", "strong-bad@email.example.com"),
            ("%{o}", "email.example.com"),
            ("%{d}", "email.example.com"),
            ("%{d4}", "email.example.com"),
            ("%{d3}", "email.example.com"),
            ("%{d2}", "example.com"),
            ("%{d1}", "com"),
            ("%{dr}", "com.example.email"),
            ("%{d2r}", "example.email"),
            ("%{l}", "strong-bad"),
            ("%{l-}", "strong.bad"),
            ("%{lr}", "strong-bad"),
            ("%{lr-}", "bad.strong"),
            ("%{l1r-}", "strong"),
            (
                "%{ir}.%{v}._spf.%{d2}",
                "3.2.0.192.in-addr._spf.example.com",
            ),
            ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
            (
                "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}",
                "bad.strong.lp.3.2.0.192.in-addr._spf.example.com",
            ),
            (
                "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}",
                "3.2.0.192.in-addr.strong.lp._spf.example.com",
            ),
            (
                "%{d2}.trusted-domains.example.net",
                "example.com.trusted-domains.example.net",
            ),
            ("%{h}", "mx.example.org"),
            ("%{S}", "strong-bad%40email.example.com"),
        ];
        for (spec, want) in cases {
            let spec = parse_macro_string(spec, false).map(DomainSpec).unwrap();
            assert_eq!(
                c.expand_domain(&spec, "email.example.com").await.unwrap(),
                want
            );
        }
        let mut c6 = ctx(&r, "2001:db8::cb01");
        let spec = domain_spec("%{ir}.%{v}._spf.%{d2}").unwrap();
        assert_eq!(
            c6.expand_domain(&spec, "email.example.com").await.unwrap(),
            "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"
        );
    }

    #[tokio::test]
    async fn long_expansions_are_cut_from_the_left() {
        let r = Resolver::new(&["127.0.0.1:9".to_string()]).unwrap();
        let mut c = ctx(&r, "192.0.2.3");
        c.local = ["abcdefghij"; 40].join(".");
        let spec = domain_spec("%{l}.example.com").unwrap();
        let name = c.expand_domain(&spec, "example.com").await.unwrap();
        assert!(
            name.len() <= 253 && name.ends_with("abcdefghij.example.com"),
            "{name}"
        );
    }

    #[test]
    fn records_parse() {
        let r = parse_record(
            "v=spf1 +ip4:192.0.2.0/24 ip6:2001:db8::/32 a mx/24 a:x.example//64 \
                              ~ptr -include:_spf.example.net ?exists:%{i}.bl.example \
                              redirect=other.example exp=explain.%{d} foo=bar -all",
        )
        .unwrap();
        let m: Vec<_> = r
            .directives
            .iter()
            .map(|d| (d.qualifier, d.mechanism.clone()))
            .collect();
        assert_eq!(
            m[0],
            (
                Qualifier::Pass,
                Mechanism::Ip4("192.0.2.0".parse().unwrap(), 24)
            )
        );
        assert_eq!(
            m[1],
            (
                Qualifier::Pass,
                Mechanism::Ip6("2001:db8::".parse().unwrap(), 32)
            )
        );
        assert_eq!(m[2], (Qualifier::Pass, Mechanism::A(None, 32, 128)));
        assert_eq!(m[3], (Qualifier::Pass, Mechanism::Mx(None, 24, 128)));
        assert!(matches!(
            &m[4],
            (Qualifier::Pass, Mechanism::A(Some(_), 32, 64))
        ));
        assert_eq!(m[5], (Qualifier::SoftFail, Mechanism::Ptr(None)));
        assert!(matches!(&m[6], (Qualifier::Fail, Mechanism::Include(_))));
        assert!(matches!(&m[7], (Qualifier::Neutral, Mechanism::Exists(_))));
        assert_eq!(m[8], (Qualifier::Fail, Mechanism::All));
        assert!(r.redirect.is_some());
    }

    #[test]
    fn syntax_errors_are_caught() {
        for bad in [
            "v=spf1 ip4:192.0.2.0/33",
            "v=spf1 ip4:192.0.2.0/024",
            "v=spf1 ip4:300.0.0.1",
            "v=spf1 ip6:2001:db8::/129",
            "v=spf1 include",
            "v=spf1 include:nodots",
            "v=spf1 a:1.2.3.4",
            "v=spf1 all:x",
            "v=spf1 frobnicate",
            "v=spf1 exists:%{x}.example.com",
            "v=spf1 exists:%{c}.example.com",
            "v=spf1 exists:%{d0}.example.com",
            "v=spf1 exists:%{d.example.com",
            "v=spf1 exists:%a.example.com",
            "v=spf1 redirect=a.example redirect=b.example",
            "v=spf1 exp=a.example exp=b.example",
            "v=spf1 mx:example.com/24/",
        ] {
            assert!(parse_record(bad).is_err(), "{bad} should not parse");
        }
        assert!(parse_record("v=spf1").unwrap().directives.is_empty());
        assert!(parse_record("v=spf1   -all  ").is_ok());
        assert!(parse_record("v=spf1 a:mail.example.com.").is_ok());
        assert!(parse_record("v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d}").is_ok());
    }

    #[test]
    fn spf_record_selection() {
        assert!(is_spf_record("v=spf1 -all"));
        assert!(is_spf_record("V=SPF1"));
        assert!(!is_spf_record("v=spf10 -all"));
        assert!(!is_spf_record("v=spf1-all"));
        assert!(!is_spf_record("google-site-verification=x"));
    }

    #[test]
    fn networks() {
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert!(in_net4(ip("192.0.2.77"), ip("192.0.2.0"), 24));
        assert!(!in_net4(ip("192.0.3.1"), ip("192.0.2.0"), 24));
        assert!(in_net4(ip("10.9.9.9"), ip("192.0.2.0"), 0));
        assert!(in_net4(ip("192.0.2.1"), ip("192.0.2.1"), 32));
        let ip6 = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        assert!(in_net6(ip6("2001:db8:1::5"), ip6("2001:db8::"), 32));
        assert!(!in_net6(ip6("2001:db9::5"), ip6("2001:db8::"), 32));
        assert!(in_net6(ip6("::1"), ip6("::1"), 128));
    }

    #[test]
    fn domains_and_labels() {
        assert!(valid_domain("example.com"));
        assert!(valid_domain("example.com."));
        assert!(!valid_domain("localhost"));
        assert!(!valid_domain("a..example"));
        assert!(!valid_domain(&format!("{}.example", "x".repeat(64))));
        assert!(!valid_domain("[192.0.2.1]"));
        assert!(!valid_domain("192.0.2.1"));
        assert!(!valid_domain("bad domain.example"));
        assert!(valid_domain("_spf.example.com"));
        assert!(valid_domain("bücher.example"));
        assert!(is_toplabel("com") && is_toplabel("x-1") && is_toplabel("a1"));
        assert!(!is_toplabel("123") && !is_toplabel("-a") && !is_toplabel("a-"));
        assert!(is_same_or_sub("Mail.Example.com.", "example.com"));
        assert!(!is_same_or_sub("badexample.com", "example.com"));
    }
}
