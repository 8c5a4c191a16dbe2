//! The live half: each wanted record looked up through the engine's [`Resolver`], all rows at
//! once, each bounded by [`LOOKUP_BOUND`], then judged by [`super::judge`]. The forward row
//! adds one reverse row per address found (in Independent mode, where this server's own
//! address sends).

use super::judge::{self, Verdict};
use super::{Kind, RType, Row, State, Wanted, hostname};
use crate::engine::config::{Config, DeliveryMode, normalize_domain};
use crate::engine::dns::{DnsError, Resolver};
use mail_auth::SpfResult;
use mail_auth::spf::verify::SpfParameters;
use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;
use tokio::task::JoinSet;

/// The longest one row's lookups may take (the resolver's own retries fit inside).
pub const LOOKUP_BOUND: Duration = Duration::from_secs(15);

/// Checks every record of `wanted` against DNS; the rows come back in the order of `wanted`
/// (reverse rows right after the forward row).
pub async fn check(resolver: &Resolver, cfg: &Config, wanted: Vec<Wanted>) -> Vec<Row> {
    let mut set = JoinSet::new();
    for (i, w) in wanted.into_iter().enumerate() {
        let resolver = resolver.clone();
        let cfg = cfg.clone();
        set.spawn(async move { (i, check_one(&resolver, &cfg, w).await) });
    }
    let mut done = Vec::new();
    while let Some(r) = set.join_next().await {
        if let Ok(r) = r {
            done.push(r);
        }
    }
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().flat_map(|(_, rows)| rows).collect()
}

/// `fut` within [`LOOKUP_BOUND`], a timeout being a temporary failure.
async fn bounded<T>(fut: impl Future<Output = Result<T, DnsError>>) -> Result<T, DnsError> {
    tokio::time::timeout(LOOKUP_BOUND, fut)
        .await
        .unwrap_or_else(|_| Err(DnsError::Temporary("timed out".into())))
}

fn row(wanted: Wanted, found: Vec<String>, (state, sentence): Verdict) -> Row {
    Row {
        wanted,
        found,
        state,
        sentence,
    }
}

fn unchecked(wanted: Wanted, e: &DnsError) -> Row {
    let sentence = format!("Could not ask DNS about {}: {e}.", wanted.name);
    row(wanted, Vec::new(), (State::Unchecked, sentence))
}

async fn check_one(resolver: &Resolver, cfg: &Config, w: Wanted) -> Vec<Row> {
    let host = hostname(cfg);
    match w.kind {
        Kind::Mx => match bounded(resolver.mx(&w.domain)).await {
            Ok(answer) => {
                let (found, verdict) = judge::mx(&w.domain, &answer, &host);
                vec![row(w, found, verdict)]
            }
            Err(e) => vec![unchecked(w, &e)],
        },
        Kind::Forward => forward(resolver, cfg, w).await,
        Kind::Reverse => Vec::new(),
        Kind::Spf => vec![spf(resolver, cfg, w).await],
        Kind::Dkim | Kind::Dmarc => match bounded(resolver.txt(&w.name)).await {
            Ok(txts) => {
                let verdict = match &w.selector {
                    Some(s) => judge::dkim(s, &txts),
                    None => judge::dmarc(&w.domain, &txts),
                };
                vec![row(w, txts, verdict)]
            }
            Err(e) => vec![unchecked(w, &e)],
        },
    }
}

async fn forward(resolver: &Resolver, cfg: &Config, w: Wanted) -> Vec<Row> {
    let host = w.domain.clone();
    let addrs = match bounded(resolver.ip_addrs(&host)).await {
        Ok(a) => a,
        Err(e) => return vec![unchecked(w, &e)],
    };
    let found = addrs.iter().map(IpAddr::to_string).collect();
    let mut rows = vec![row(w, found, judge::forward(&host, &addrs))];
    // In Relay mode the relay host sends: its reverse name counts, not ours.
    let independent = cfg.outgoing_mails.mode == DeliveryMode::Independent;
    if !independent {
        return rows;
    }
    for ip in addrs {
        let wanted = Wanted {
            kind: Kind::Reverse,
            domain: host.clone(),
            name: reverse_name(ip),
            rtype: RType::Ptr,
            value: host.clone(),
            selector: None,
        };
        rows.push(match bounded(resolver.ptr(ip)).await {
            Ok(ptrs) => {
                let verdict = judge::reverse(ip, &ptrs, &host, independent);
                let found = ptrs.iter().map(|p| format!("{p}.")).collect();
                row(wanted, found, verdict)
            }
            Err(e) => unchecked(wanted, &e),
        });
    }
    rows
}

async fn spf(resolver: &Resolver, cfg: &Config, w: Wanted) -> Row {
    let txts = match bounded(resolver.txt(&w.domain)).await {
        Ok(t) => t,
        Err(e) => return unchecked(w, &e),
    };
    let found: Vec<String> = txts.iter().filter(|t| judge::is_spf(t)).cloned().collect();
    if let Err(verdict) = judge::spf_record(&w.domain, &txts) {
        return row(w, found, verdict);
    }
    // Who sends: this server, or the relay host.
    let host = hostname(cfg);
    let (who, sender_host) = match cfg.outgoing_mails.mode {
        DeliveryMode::Independent => (format!("this server ({host})"), host.clone()),
        DeliveryMode::Relay => {
            let relay = normalize_domain(&cfg.outgoing_mails.relay.host);
            (format!("the relay host ({relay})"), relay)
        }
    };
    let addrs = match bounded(resolver.ip_addrs(&sender_host)).await {
        Ok(a) => a,
        Err(e) => return unchecked(w, &e),
    };
    let auth = resolver.authenticator();
    let sender = format!("postmaster@{}", w.domain);
    let mut results = Vec::new();
    for ip in addrs {
        let params = SpfParameters::verify_mail_from(ip, &host, &host, &sender);
        let result = tokio::time::timeout(LOOKUP_BOUND, auth.verify_spf(params))
            .await
            .map_or(SpfResult::TempError, |o| o.result());
        results.push((ip, result));
    }
    let verdict = judge::spf_results(&w.domain, &who, &results);
    row(w, found, verdict)
}

/// The name the PTR of `ip` lives at (`in-addr.arpa` / `ip6.arpa`), without the trailing dot.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::new();
            for b in v6.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
            }
            s + "ip6.arpa"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_name("192.0.2.7".parse().unwrap()),
            "7.2.0.192.in-addr.arpa"
        );
        let v6 = reverse_name("2001:db8::1".parse().unwrap());
        assert!(v6.starts_with("1.0.0.0."), "{v6}");
        assert!(v6.ends_with(".8.b.d.0.1.0.0.2.ip6.arpa"), "{v6}");
    }

    #[tokio::test]
    async fn a_dead_dns_server_is_could_not_check_not_missing() {
        let r = Resolver::new(&["127.0.0.1:9".to_string()]).unwrap();
        let mut cfg = Config::default();
        cfg.server.hostname = "mail.example.test".into();
        cfg.domains = vec!["example.test".into()];
        let rows = check(&r, &cfg, super::super::plan(&cfg, &Vec::new(), None)).await;
        assert_eq!(rows.len(), 4);
        for r in rows {
            assert_eq!(r.state, State::Unchecked, "{r:?}");
        }
    }
}
