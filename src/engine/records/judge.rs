//! The comparisons behind each row, pure: from what DNS returned, a [`State`] and one sentence
//! a small-office admin understands. No lookups here; `check` feeds these.

use super::State;
use crate::engine::dkim::Selector;
use crate::engine::dns::MxAnswer;
use mail_auth::SpfResult;
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::dmarc::{Dmarc, Policy};
use mail_auth::spf::Spf;
use std::net::IpAddr;

/// A row's state and its sentence.
pub type Verdict = (State, String);

/// What the MX of `domain` says, against `host` (this server).
pub fn mx(domain: &str, answer: &MxAnswer, host: &str) -> (Vec<String>, Verdict) {
    match answer {
        MxAnswer::Hosts(hosts) => {
            let found: Vec<String> = hosts.iter().map(|(p, h)| format!("{p} {h}.")).collect();
            let names: Vec<&str> = hosts.iter().map(|(_, h)| h.as_str()).collect();
            let verdict = if names.contains(&host) {
                if names.len() == 1 {
                    (
                        State::Ok,
                        format!("Mail for {domain} comes to this server."),
                    )
                } else {
                    (
                        State::Ok,
                        format!(
                            "Mail for {domain} comes to this server, and also to {}.",
                            others(&names, host)
                        ),
                    )
                }
            } else {
                (
                    State::Wrong,
                    format!(
                        "Mail for {domain} goes to {}, not to this server ({host}).",
                        names.join(", ")
                    ),
                )
            };
            (found, verdict)
        }
        MxAnswer::Implicit => (
            vec!["(no MX record; the domain's own address is used)".into()],
            (
                State::Missing,
                format!(
                    "{domain} has no MX record: senders try the domain's own address; publish an MX naming {host}."
                ),
            ),
        ),
        MxAnswer::NullMx => (
            vec!["0 .".into()],
            (
                State::Wrong,
                format!("{domain} publishes a null MX: it says it accepts no mail at all."),
            ),
        ),
        MxAnswer::NoSuchDomain => (
            Vec::new(),
            (
                State::Missing,
                format!("{domain} has no MX record and no address in DNS."),
            ),
        ),
    }
}

fn others(names: &[&str], host: &str) -> String {
    names
        .iter()
        .filter(|n| **n != host)
        .copied()
        .collect::<Vec<_>>()
        .join(", ")
}

/// The host name's addresses.
pub fn forward(host: &str, addrs: &[IpAddr]) -> Verdict {
    if addrs.is_empty() {
        (
            State::Missing,
            format!(
                "{host} has no address in DNS: other servers cannot find this one, and they \
                 refuse mail from a name that does not resolve."
            ),
        )
    } else if addrs.iter().all(|ip| !is_public(*ip)) {
        let list: Vec<String> = addrs.iter().map(IpAddr::to_string).collect();
        (
            State::Wrong,
            format!(
                "{host} resolves only to {}, an address other servers on the Internet cannot \
                 reach: publish this server's public address.",
                list.join(", ")
            ),
        )
    } else {
        (
            State::Ok,
            format!("{host} resolves to this server's addresses."),
        )
    }
}

/// Whether another server on the Internet could reach `ip`: not loopback, private (RFC
/// 1918, unique local), link-local, shared (RFC 6598) or unspecified.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (o[0] == 100 && (o[1] & 0xc0) == 64))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// The reverse names of `ip` (one of the host name's addresses, so the forward direction is
/// confirmed already) against `host`. `independent`: this server delivers itself, so a
/// mismatch matters (and Relay mode is the cure most home users need).
pub fn reverse(ip: IpAddr, ptrs: &[String], host: &str, independent: bool) -> Verdict {
    let relay_hint = if independent {
        " Most receivers junk or refuse mail from such an address: if your ISP cannot set it, \
         use Relay mode through your ISP's smarthost."
    } else {
        ""
    };
    if ptrs.iter().any(|p| p == host) {
        (
            State::Ok,
            format!("{ip} names {host} back: forward and reverse DNS match the HELO name."),
        )
    } else if ptrs.is_empty() {
        (
            State::Missing,
            format!("{ip} has no reverse name (PTR); it should be {host}.{relay_hint}"),
        )
    } else {
        (
            State::Wrong,
            format!(
                "{ip}'s reverse name is {}, not {host} (the HELO name).{relay_hint}",
                ptrs.join(", ")
            ),
        )
    }
}

/// Whether a TXT value is an SPF record: `v=spf1` alone or followed by a space (RFC 7208 4.5).
pub fn is_spf(txt: &str) -> bool {
    let t = txt.trim_start();
    t.len() >= 6
        && t[..6].eq_ignore_ascii_case("v=spf1")
        && (t.len() == 6 || t.as_bytes()[6] == b' ')
}

/// The one SPF record among the TXT records of `domain`, parsed; or why there is none usable.
pub fn spf_record(domain: &str, txts: &[String]) -> Result<String, Verdict> {
    let spf: Vec<&String> = txts.iter().filter(|t| is_spf(t)).collect();
    match spf.as_slice() {
        [] => Err((
            State::Missing,
            format!(
                "{domain} has no SPF record: receivers cannot tell which servers may send its mail."
            ),
        )),
        [one] => match Spf::parse(one.trim().as_bytes()) {
            Ok(_) => Ok(one.trim().to_string()),
            Err(e) => Err((
                State::Wrong,
                format!(
                    "The SPF record of {domain} does not parse ({e}): receivers treat it as an error."
                ),
            )),
        },
        many => Err((
            State::Wrong,
            format!(
                "{domain} has {} SPF records: there must be exactly one (receivers treat more as an error); merge them.",
                many.len()
            ),
        )),
    }
}

/// The SPF results of the published record for each address that sends (`who`: this server
/// or the relay host).
pub fn spf_results(domain: &str, who: &str, results: &[(IpAddr, SpfResult)]) -> Verdict {
    if results.is_empty() {
        return (
            State::Unchecked,
            format!("{who} has no address in DNS to test the SPF record of {domain} with."),
        );
    }
    if results
        .iter()
        .any(|(_, r)| matches!(r, SpfResult::TempError))
    {
        return (
            State::Unchecked,
            format!("A DNS lookup failed while evaluating the SPF record of {domain}."),
        );
    }
    let bad: Vec<String> = results
        .iter()
        .filter(|(_, r)| *r != SpfResult::Pass)
        .map(|(ip, r)| format!("{ip} ({})", spf_word(*r)))
        .collect();
    if bad.is_empty() {
        (
            State::Ok,
            format!("The SPF record of {domain} authorises {who}."),
        )
    } else {
        (
            State::Wrong,
            format!(
                "The SPF record of {domain} does not authorise {who}: {}.",
                bad.join(", ")
            ),
        )
    }
}

fn spf_word(r: SpfResult) -> &'static str {
    match r {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    }
}

/// The tags of a DKIM or DMARC TXT value: `k=v` pairs split at `;`, names lower case, values
/// trimmed (a value's inner white space is kept; [`dkim_p`] removes it from `p=`).
pub fn tags(txt: &str) -> Vec<(String, String)> {
    txt.split(';')
        .filter_map(|t| {
            let (k, v) = t.split_once('=')?;
            Some((k.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect()
}

/// The `p=` of a DKIM key record with all white space (folding, the joins of split strings)
/// and stray quotes removed; `None` without a `p=`.
pub fn dkim_p(txt: &str) -> Option<String> {
    tags(txt).into_iter().find(|(k, _)| k == "p").map(|(_, v)| {
        v.chars()
            .filter(|c| !c.is_whitespace() && *c != '"')
            .collect()
    })
}

/// The published TXT records of a selector against our key.
pub fn dkim(selector: &Selector, txts: &[String]) -> Verdict {
    let old = if selector.active {
        ""
    } else {
        " (an old key, kept until mail it signed has arrived)"
    };
    let keys: Vec<&String> = txts.iter().filter(|t| dkim_p(t).is_some()).collect();
    match keys.as_slice() {
        [] => (
            State::Missing,
            format!(
                "No DKIM key is published for selector {}{old}: receivers cannot verify the mail it signs.",
                selector.name
            ),
        ),
        [one] => {
            let p = dkim_p(one).unwrap_or_default();
            let k = tags(one)
                .into_iter()
                .find(|(k, _)| k == "k")
                .map_or("rsa".to_string(), |(_, v)| v.to_ascii_lowercase());
            if p.is_empty() {
                (
                    State::Wrong,
                    format!(
                        "The key of selector {} is published as revoked (empty p=).",
                        selector.name
                    ),
                )
            } else if p != selector.public_key || k != selector.algo.k() {
                (
                    State::Wrong,
                    format!(
                        "The key published for selector {} is not this server's key: copy the value shown here.",
                        selector.name
                    ),
                )
            } else {
                (
                    State::Ok,
                    format!(
                        "The published key of selector {} matches this server's{old}.",
                        selector.name
                    ),
                )
            }
        }
        many => (
            State::Wrong,
            format!(
                "Selector {} has {} key records: there must be one.",
                selector.name,
                many.len()
            ),
        ),
    }
}

/// The TXT records of `_dmarc.DOMAIN`.
pub fn dmarc(domain: &str, txts: &[String]) -> Verdict {
    let recs: Vec<&String> = txts
        .iter()
        .filter(|t| {
            t.trim_start()
                .get(..8)
                .is_some_and(|v| v.eq_ignore_ascii_case("v=DMARC1"))
        })
        .collect();
    match recs.as_slice() {
        [] => (
            State::Missing,
            format!(
                "{domain} has no DMARC record: large mail providers want one (p=none is enough to start)."
            ),
        ),
        [one] => match Dmarc::parse(one.trim().as_bytes()) {
            Ok(d) => match d.p {
                Policy::Unspecified => (
                    State::Wrong,
                    format!("The DMARC record of {domain} has no policy (p=)."),
                ),
                p => (
                    State::Ok,
                    format!(
                        "{domain} publishes a DMARC policy ({}).",
                        match p {
                            Policy::None => "p=none: report only",
                            Policy::Quarantine => "p=quarantine",
                            _ => "p=reject",
                        }
                    ),
                ),
            },
            Err(e) => (
                State::Wrong,
                format!("The DMARC record of {domain} does not parse ({e})."),
            ),
        },
        many => (
            State::Wrong,
            format!(
                "{domain} has {} DMARC records: receivers ignore them all when there is more than one.",
                many.len()
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::dkim::Algo;

    fn sel(active: bool) -> Selector {
        Selector {
            name: "p20261202".into(),
            algo: Algo::Rsa,
            active,
            public_key: "MIIBIjANBgkqh+/abc=".into(),
        }
    }

    #[test]
    fn dkim_keys_compare_without_white_space_or_quotes() {
        let s = sel(true);
        // As a DNS provider might return it: strings joined, folded, quotes left in.
        for txt in [
            "v=DKIM1; k=rsa; p=MIIBIjANBgkqh+/abc=",
            "v=DKIM1;k=rsa;p=MIIBIjAN Bgkqh+/abc=",
            "v=DKIM1; p=MIIBIjAN\"\"Bgkqh+/\r\n abc= ",
            "k=RSA; p=MIIBIjANBgkqh+/abc=; t=s",
        ] {
            assert_eq!(dkim(&s, &[txt.into()]).0, State::Ok, "{txt}");
        }
        let (st, why) = dkim(&s, &["v=DKIM1; k=rsa; p=MIIBother".into()]);
        assert_eq!(st, State::Wrong);
        assert!(why.contains("not this server's key"), "{why}");
        // An Ed25519 record under an RSA selector is not ours either.
        assert_eq!(
            dkim(&s, &["v=DKIM1; k=ed25519; p=MIIBIjANBgkqh+/abc=".into()]).0,
            State::Wrong
        );
        assert_eq!(dkim(&s, &["v=DKIM1; k=rsa; p=".into()]).0, State::Wrong);
        assert_eq!(dkim(&s, &[]).0, State::Missing);
        assert_eq!(dkim(&s, &["unrelated text".into()]).0, State::Missing);
        let two = ["p=MIIBIjANBgkqh+/abc=".to_string(), "p=x".into()];
        assert_eq!(dkim(&s, &two).0, State::Wrong);
        assert!(dkim(&sel(false), &[]).1.contains("old key"));
    }

    #[test]
    fn spf_wants_exactly_one_record_that_parses() {
        let d = "example.test";
        assert!(is_spf("v=spf1 mx ~all"));
        assert!(is_spf("V=SPF1"));
        assert!(!is_spf("v=spf10 mx"));
        assert!(!is_spf("google-site-verification=x"));
        let (st, why) = spf_record(d, &["other".into()]).unwrap_err();
        assert_eq!(st, State::Missing, "{why}");
        assert_eq!(
            spf_record(d, &["v=spf1 mx ~all".into(), "other".into()]).unwrap(),
            "v=spf1 mx ~all"
        );
        let (st, why) =
            spf_record(d, &["v=spf1 mx ~all".into(), "v=spf1 a -all".into()]).unwrap_err();
        assert_eq!(st, State::Wrong);
        assert!(why.contains("2 SPF records"), "{why}");
        let (st, _) = spf_record(d, &["v=spf1 mx ~al".into()]).unwrap_err();
        assert_eq!(st, State::Wrong);
    }

    #[test]
    fn spf_results_pass_for_every_sending_address() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        let d = "example.test";
        assert_eq!(
            spf_results(
                d,
                "this server",
                &[(a, SpfResult::Pass), (b, SpfResult::Pass)]
            )
            .0,
            State::Ok
        );
        let (st, why) = spf_results(
            d,
            "this server",
            &[(a, SpfResult::Pass), (b, SpfResult::SoftFail)],
        );
        assert_eq!(st, State::Wrong);
        assert!(why.contains("2001:db8::1 (softfail)"), "{why}");
        assert_eq!(
            spf_results(d, "x", &[(a, SpfResult::TempError)]).0,
            State::Unchecked
        );
        assert_eq!(spf_results(d, "x", &[]).0, State::Unchecked);
    }

    #[test]
    fn dmarc_wants_one_record_with_a_policy() {
        let d = "example.test";
        assert_eq!(dmarc(d, &[]).0, State::Missing);
        let (st, why) = dmarc(
            d,
            &["v=DMARC1; p=none; rua=mailto:postmaster@example.test".into()],
        );
        assert_eq!(st, State::Ok);
        assert!(why.contains("p=none"), "{why}");
        assert_eq!(
            dmarc(d, &["v=DMARC1; rua=mailto:a@b".into()]).0,
            State::Wrong
        );
        let two = ["v=DMARC1; p=none".to_string(), "v=DMARC1; p=reject".into()];
        assert_eq!(dmarc(d, &two).0, State::Wrong);
        assert_eq!(dmarc(d, &["v=spf1 mx".into()]).0, State::Missing);
    }

    #[test]
    fn mx_and_reverse_names() {
        let h = "mail.example.test";
        let (_, (st, _)) = mx("example.test", &MxAnswer::Hosts(vec![(10, h.into())]), h);
        assert_eq!(st, State::Ok);
        let (found, (st, why)) = mx(
            "example.test",
            &MxAnswer::Hosts(vec![(10, "mx.provider.example".into())]),
            h,
        );
        assert_eq!(st, State::Wrong);
        assert_eq!(found, ["10 mx.provider.example."]);
        assert!(why.contains("goes to mx.provider.example"), "{why}");
        assert_eq!(mx("e", &MxAnswer::Implicit, h).1.0, State::Missing);
        assert_eq!(mx("e", &MxAnswer::NullMx, h).1.0, State::Wrong);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(reverse(ip, &[h.into()], h, true).0, State::Ok);
        let (st, why) = reverse(ip, &["dsl-1.isp.example".into()], h, true);
        assert_eq!(st, State::Wrong);
        assert!(why.contains("Relay mode"), "{why}");
        let (st, why) = reverse(ip, &[], h, false);
        assert_eq!(st, State::Missing);
        assert!(!why.contains("Relay mode"), "{why}");
        assert_eq!(forward(h, &[]).0, State::Missing);
        assert_eq!(forward(h, &[ip]).0, State::Ok);
        // A desktop's name in /etc/hosts, or a LAN address: not reachable from outside.
        let lan: Vec<IpAddr> = ["127.0.1.1", "192.168.1.5", "fd00::5", "100.64.0.1"]
            .map(|a| a.parse().unwrap())
            .into();
        let (st, why) = forward(h, &lan);
        assert_eq!(st, State::Wrong);
        assert!(why.contains("cannot reach"), "{why}");
        assert_eq!(forward(h, &[lan[1], ip]).0, State::Ok);
    }
}
