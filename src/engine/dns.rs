//! The one DNS resolver of the engine: MX lookups for delivery (RFC 5321 5.1, RFC 7505 null MX),
//! addresses of mail hosts, and the A/TXT/PTR lookups of DNSBL, SPF and reverse-DNS checks.
//!
//! It wraps hickory-resolver. The name servers are the configured `outgoing_mails.dns_hosts`
//! (`ip` or `ip:port`, so tests can point it at a DNS server on a high loopback port) or, when
//! none are given, the system's `resolv.conf`. Every name is looked up as a fully qualified name,
//! so search domains never turn `example.com` into `example.com.corp.lan`.
//!
//! Answers are sorted into what the caller has to decide on: "this name does not exist / has no
//! such record" is an answer (`Ok`), while a server failure or a timeout is
//! [`DnsError::Temporary`], which a sender must retry later and never turn into a bounce.

use crate::engine::config::validate::parse_dns_host;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

/// How long one query waits for one server before it tries again.
const QUERY_TIMEOUT: Duration = Duration::from_secs(4);
/// Tries per query (across the configured servers).
const QUERY_ATTEMPTS: usize = 2;
/// Upper bound for one whole lookup, however the resolver retries inside.
const LOOKUP_DEADLINE: Duration = Duration::from_secs(30);

/// Why a lookup gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// SERVFAIL, REFUSED, a timeout, an unreachable server: ask again later.
    #[error("temporary DNS failure: {0}")]
    Temporary(String),
    /// The resolver cannot be set up, or the name is no domain name and cannot be asked about.
    #[error("DNS configuration: {0}")]
    Config(String),
}

/// What the MX records of a domain say about where its mail goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MxAnswer {
    /// MX hosts, lowest preference first (equal preferences in random order, RFC 5321 5.1),
    /// names without the trailing dot.
    Hosts(Vec<(u16, String)>),
    /// No MX records, but the domain has A/AAAA records: it is its own mail host (implicit MX).
    Implicit,
    /// `MX 0 .`: the domain accepts no mail at all (RFC 7505).
    NullMx,
    /// NXDOMAIN, or a domain with neither MX nor address records: mail to it cannot be delivered.
    NoSuchDomain,
}

/// The engine's resolver. Cheap to clone; clones share one cache.
#[derive(Clone)]
pub struct Resolver {
    /// hickory's resolver, with its cache and name-server pool.
    inner: Arc<TokioResolver>,
}

impl Resolver {
    /// A resolver asking `dns_hosts` (`ip`, `ip:port`, `[v6]:port`), or the system's name
    /// servers from `resolv.conf` when the list is empty.
    pub fn new(dns_hosts: &[String]) -> Result<Resolver, DnsError> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = if dns_hosts.is_empty() {
            TokioResolver::builder(provider).map_err(|e| {
                DnsError::Config(format!("cannot read the system's DNS configuration: {e}"))
            })?
        } else {
            let mut servers = Vec::with_capacity(dns_hosts.len());
            for host in dns_hosts {
                let addr = parse_dns_host(host).ok_or_else(|| {
                    DnsError::Config(format!("`{host}` is not an IP address or ip:port"))
                })?;
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                servers.push(NameServerConfig::new(addr.ip(), true, vec![udp, tcp]));
            }
            TokioResolver::builder_with_config(ResolverConfig::from_name_servers(servers), provider)
        };
        let opts: &mut ResolverOpts = builder.options_mut();
        opts.timeout = QUERY_TIMEOUT;
        opts.attempts = QUERY_ATTEMPTS;
        opts.ndots = 0;
        if !dns_hosts.is_empty() {
            // Given servers are the whole truth: no hosts file.
            opts.use_hosts_file = ResolveHosts::Never;
        }
        let inner = builder
            .build()
            .map_err(|e| DnsError::Config(e.to_string()))?;
        Ok(Resolver {
            inner: Arc::new(inner),
        })
    }

    /// mail-auth's authenticator (SPF, DKIM, DMARC) over this resolver: the same name
    /// servers, options and cache.
    pub fn authenticator(&self) -> mail_auth::MessageAuthenticator {
        mail_auth::MessageAuthenticator((*self.inner).clone())
    }

    /// MX records of `domain`, sorted by preference, with RFC 5321 5.1 (no MX: the domain's
    /// own addresses) and RFC 7505 (null MX) already applied.
    pub async fn mx(&self, domain: &str) -> Result<MxAnswer, DnsError> {
        let name = fqdn(domain)?;
        match self.lookup(name.clone(), RecordType::MX).await {
            Ok(records) => {
                let mut mx: Vec<(u16, String)> = records
                    .into_iter()
                    .filter_map(|r| match r {
                        RData::MX(mx) => Some((mx.preference, host_string(&mx.exchange))),
                        _ => None,
                    })
                    .collect();
                if mx.is_empty() {
                    // Only a CNAME chain came back: as good as no MX.
                    return self.implicit(name).await;
                }
                let null = mx.iter().filter(|(_, h)| h.is_empty()).count();
                if null == mx.len() {
                    return Ok(MxAnswer::NullMx);
                }
                // RFC 7505 3: a null MX must be alone; mixed with real hosts, use the hosts.
                mx.retain(|(_, h)| !h.is_empty());
                shuffle_equal_preferences(&mut mx);
                Ok(MxAnswer::Hosts(mx))
            }
            Err(Missing::NoSuchName) => Ok(MxAnswer::NoSuchDomain),
            Err(Missing::NoData) => self.implicit(name).await,
            Err(Missing::Failed(e)) => Err(e),
        }
    }

    /// No MX: the domain is its own mail host when it has an address, else mail cannot go there.
    async fn implicit(&self, name: Name) -> Result<MxAnswer, DnsError> {
        if self.addresses(name).await?.is_empty() {
            Ok(MxAnswer::NoSuchDomain)
        } else {
            Ok(MxAnswer::Implicit)
        }
    }

    /// A and AAAA addresses of `host`, IPv4 first. An IP literal is returned as it is; a name
    /// that does not exist or has no addresses gives an empty list.
    pub async fn ip_addrs(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        let literal = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = literal.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        self.addresses(fqdn(host)?).await
    }

    async fn addresses(&self, name: Name) -> Result<Vec<IpAddr>, DnsError> {
        let (v4, v6) = tokio::join!(
            self.lookup(name.clone(), RecordType::A),
            self.lookup(name, RecordType::AAAA)
        );
        let mut out = Vec::new();
        let mut failure = None;
        for result in [v4, v6] {
            match result {
                Ok(records) => out.extend(records.into_iter().filter_map(|r| match r {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                    _ => None,
                })),
                Err(Missing::NoSuchName | Missing::NoData) => {}
                Err(Missing::Failed(e)) => failure = Some(e),
            }
        }
        // One family failing while the other answered is good enough to deliver.
        match failure {
            Some(e) if out.is_empty() => Err(e),
            _ => Ok(out),
        }
    }

    /// A records of `name` (DNSBL queries). NXDOMAIN and NODATA give an empty list.
    pub async fn ipv4(&self, name: &str) -> Result<Vec<Ipv4Addr>, DnsError> {
        let records = self.lookup_or_empty(fqdn(name)?, RecordType::A).await?;
        Ok(records
            .into_iter()
            .filter_map(|r| match r {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect())
    }

    /// TXT records of `name`, each record's strings joined (RFC 7208 3.3), invalid UTF-8
    /// replaced. NXDOMAIN and NODATA give an empty list.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let records = self.lookup_or_empty(fqdn(name)?, RecordType::TXT).await?;
        Ok(records
            .into_iter()
            .filter_map(|r| match r {
                RData::TXT(t) => Some(
                    t.txt_data
                        .iter()
                        .map(|s| String::from_utf8_lossy(s))
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect())
    }

    /// Names in the PTR records of `ip` (reverse DNS), without the trailing dot.
    /// NXDOMAIN and NODATA give an empty list.
    pub async fn ptr(&self, ip: IpAddr) -> Result<Vec<String>, DnsError> {
        let mut name = Name::from(ip);
        name.set_fqdn(true);
        let records = self.lookup_or_empty(name, RecordType::PTR).await?;
        Ok(records
            .into_iter()
            .filter_map(|r| match r {
                RData::PTR(p) => Some(host_string(&p.0)),
                _ => None,
            })
            .collect())
    }

    async fn lookup_or_empty(&self, name: Name, rtype: RecordType) -> Result<Vec<RData>, DnsError> {
        match self.lookup(name, rtype).await {
            Ok(r) => Ok(r),
            Err(Missing::NoSuchName | Missing::NoData) => Ok(Vec::new()),
            Err(Missing::Failed(e)) => Err(e),
        }
    }

    /// One query; the records of the answer section of type `rtype` (and CNAMEs on the way).
    async fn lookup(&self, name: Name, rtype: RecordType) -> Result<Vec<RData>, Missing> {
        let what = format!("{rtype} {name}");
        match tokio::time::timeout(LOOKUP_DEADLINE, self.inner.lookup(name, rtype)).await {
            Err(_) => Err(Missing::Failed(DnsError::Temporary(format!(
                "{what}: timed out"
            )))),
            Ok(Ok(lookup)) => Ok(lookup.answers().iter().map(|r| r.data.clone()).collect()),
            Ok(Err(e)) if e.is_nx_domain() => Err(Missing::NoSuchName),
            Ok(Err(e)) if e.is_no_records_found() => Err(Missing::NoData),
            Ok(Err(e)) => Err(Missing::Failed(classify(&what, e))),
        }
    }
}

/// How a query came back without records.
enum Missing {
    /// NXDOMAIN.
    NoSuchName,
    /// The name exists but has no record of that type (NOERROR, empty answer).
    NoData,
    /// No usable answer at all.
    Failed(DnsError),
}

/// Every failure of a query is worth asking again later: SERVFAIL, REFUSED, timeouts,
/// unreachable servers, and undecodable answers alike.
fn classify(what: &str, e: NetError) -> DnsError {
    DnsError::Temporary(format!("{what}: {e}"))
}

/// `domain` as a fully qualified name (IDNs in punycode).
fn fqdn(domain: &str) -> Result<Name, DnsError> {
    let mut name = Name::from_utf8(domain)
        .map_err(|e| DnsError::Config(format!("`{domain}` is not a domain name: {e}")))?;
    name.set_fqdn(true);
    Ok(name)
}

/// A host name as text, without the trailing dot (the root becomes "").
fn host_string(name: &Name) -> String {
    let s = name.to_ascii();
    s.strip_suffix('.').unwrap_or(&s).to_ascii_lowercase()
}

/// Sorts by preference and shuffles each run of equal preferences (RFC 5321 5.1).
/// A host's addresses in the order they are tried: shuffled within each family, then the
/// families interleaved, starting with a family chosen at random, so that when the first
/// address fails (a host whose IPv6 or IPv4 is broken) the next one is of the other family,
/// whatever cap on addresses applies.
pub fn address_order(addrs: Vec<IpAddr>) -> Vec<IpAddr> {
    use rand::RngExt;
    use rand::seq::SliceRandom;
    let mut rng = rand::rng();
    let six_first = rng.random_bool(0.5);
    let (mut v6, mut v4): (Vec<IpAddr>, Vec<IpAddr>) = addrs.into_iter().partition(IpAddr::is_ipv6);
    v6.shuffle(&mut rng);
    v4.shuffle(&mut rng);
    interleave(v6, v4, six_first)
}

/// `a` and `b` taken in turn, starting with `a` when `a_first`, the rest of the longer after.
fn interleave(a: Vec<IpAddr>, b: Vec<IpAddr>, a_first: bool) -> Vec<IpAddr> {
    let (first, second) = if a_first { (a, b) } else { (b, a) };
    let mut out = Vec::with_capacity(first.len() + second.len());
    let (mut i, mut j) = (first.into_iter(), second.into_iter());
    loop {
        match (i.next(), j.next()) {
            (None, None) => return out,
            (x, y) => out.extend(x.into_iter().chain(y)),
        }
    }
}

fn shuffle_equal_preferences(mx: &mut [(u16, String)]) {
    use rand::seq::SliceRandom;
    mx.sort_by_key(|(p, _)| *p);
    let mut rng = rand::rng();
    let mut start = 0;
    while start < mx.len() {
        let end = start
            + mx[start..]
                .iter()
                .take_while(|(p, _)| *p == mx[start].0)
                .count();
        mx[start..end].shuffle(&mut rng);
        start = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_take_turns_whoever_starts() {
        let v6: Vec<IpAddr> = ["2001:db8::1", "2001:db8::2", "2001:db8::3"]
            .map(|a| a.parse().unwrap())
            .into();
        let v4: Vec<IpAddr> = ["192.0.2.1"].map(|a| a.parse().unwrap()).into();
        let order = interleave(v6.clone(), v4.clone(), false);
        assert_eq!(order, [v4[0], v6[0], v6[1], v6[2]]);
        let order = interleave(v6.clone(), v4.clone(), true);
        assert_eq!(order, [v6[0], v4[0], v6[1], v6[2]]);
        // Whatever the shuffle, the first two are of different families, and nothing is lost.
        for _ in 0..20 {
            let all: Vec<IpAddr> = v6.iter().chain(&v4).copied().collect();
            let order = address_order(all.clone());
            assert_ne!(order[0].is_ipv6(), order[1].is_ipv6(), "{order:?}");
            let mut sorted = order.clone();
            sorted.sort();
            let mut want = all;
            want.sort();
            assert_eq!(sorted, want);
        }
    }

    #[test]
    fn equal_preferences_stay_in_their_band() {
        let mut mx = vec![
            (20, "c".to_string()),
            (10, "a".to_string()),
            (10, "b".to_string()),
            (5, "z".to_string()),
        ];
        shuffle_equal_preferences(&mut mx);
        assert_eq!(mx[0], (5, "z".to_string()));
        let mut mid: Vec<_> = mx[1..3].iter().map(|(_, h)| h.clone()).collect();
        mid.sort();
        assert_eq!(mid, ["a", "b"]);
        assert_eq!(mx[3], (20, "c".to_string()));
    }

    #[test]
    fn bad_dns_hosts_are_config_errors() {
        let r = Resolver::new(&["not an ip".to_string()]);
        assert!(matches!(r, Err(DnsError::Config(_))));
    }

    #[test]
    fn names_become_fully_qualified() {
        assert_eq!(
            fqdn("Example.COM").unwrap().to_ascii().to_lowercase(),
            "example.com."
        );
        assert_eq!(
            host_string(&fqdn("Mx.Example.com.").unwrap()),
            "mx.example.com"
        );
        assert_eq!(host_string(&Name::root()), "");
        assert!(matches!(fqdn("a..b"), Err(DnsError::Config(_))));
        assert!(
            fqdn("bücher.example")
                .unwrap()
                .to_ascii()
                .starts_with("xn--")
        );
    }

    #[tokio::test]
    async fn ip_literals_need_no_query() {
        // A server that cannot answer: literals must not ask it.
        let r = Resolver::new(&["127.0.0.1:9".to_string()]).unwrap();
        assert_eq!(
            r.ip_addrs("192.0.2.7").await.unwrap(),
            vec![IpAddr::from([192, 0, 2, 7])]
        );
        assert_eq!(
            r.ip_addrs("[::1]").await.unwrap(),
            vec!["::1".parse::<IpAddr>().unwrap()]
        );
    }
}
