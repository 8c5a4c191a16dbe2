//! The DNS records a local domain needs for its mail to arrive, and whether DNS has them now:
//! for each domain of `domains` its MX, SPF, DKIM (every selector of `engine::dkim`) and
//! DMARC records, and for the server the forward (A/AAAA) and reverse (PTR) names of
//! `server.hostname`, the name it gives in HELO.
//!
//! [`plan`] is pure: from the configuration and the DKIM selectors, what to publish
//! ([`Wanted`], with zone-file lines to paste). [`judge`] is pure too: from what a lookup
//! returned, a [`State`] and one sentence in plain words. [`check`] asks DNS through the
//! engine's resolver (so `outgoing_mails.dns_hosts` applies), every lookup bounded in time; a
//! lookup that fails is [`State::Unchecked`], never [`State::Missing`].
//!
//! SPF: in Independent mode this server sends, so `v=spf1 mx ~all` (the MX is this server);
//! in Relay mode the relay host sends, so `v=spf1 a:RELAYHOST ~all` (a provider that publishes
//! its own SPF include is better named by that `include:`, which we cannot know). The check
//! evaluates the published record with mail-auth's SPF for each address that sends (the host
//! name's addresses, or the relay host's) and wants `pass`.

pub mod check;
pub mod judge;

use crate::engine::config::{Config, DeliveryMode, normalize_domain};
use crate::engine::dkim::{DkimError, KeyStore, Selector};
use std::fmt;

pub use check::check;

/// What a row is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The domain's MX: its mail comes to `server.hostname`.
    Mx,
    /// The host name's addresses (A/AAAA).
    Forward,
    /// The PTR of one of the host name's addresses, which must name the host name again.
    Reverse,
    /// The domain's SPF TXT record.
    Spf,
    /// One DKIM selector's TXT record.
    Dkim,
    /// `_dmarc.DOMAIN`'s TXT record.
    Dmarc,
}

/// A DNS record type, as the rows show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RType {
    /// Mail exchanger.
    Mx,
    /// IPv4 address (the forward row shows `A/AAAA`).
    A,
    /// Reverse name.
    Ptr,
    /// Text.
    Txt,
}

impl fmt::Display for RType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RType::Mx => "MX",
            RType::A => "A/AAAA",
            RType::Ptr => "PTR",
            RType::Txt => "TXT",
        })
    }
}

/// One record to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// What it is about.
    pub kind: Kind,
    /// The local domain it belongs to, or the host name for the server's rows.
    pub domain: String,
    /// The DNS name, without the trailing dot.
    pub name: String,
    /// Its type.
    pub rtype: RType,
    /// The value to publish, as a DNS provider's form takes it (TXT unquoted and whole).
    pub value: String,
    /// For a DKIM row: the selector, and whether it is an old key kept published.
    pub selector: Option<Selector>,
}

impl Wanted {
    /// The record as a zone-file line (TXT split into quoted strings of at most 255 octets);
    /// a record whose value we cannot know (an address) is a comment saying what to put.
    pub fn zone_line(&self) -> String {
        let name = format!("{}.", self.name);
        match (self.kind, self.rtype) {
            (Kind::Forward, _) => format!(
                "{name} IN A <this server's public IPv4 address> ; and AAAA for IPv6, if it has one"
            ),
            (Kind::Reverse, _) => format!(
                "; {name} IN PTR {}. ; the reverse name is set by whoever gives you the address (your ISP)",
                self.value
            ),
            (_, RType::Mx) => format!("{name} IN MX {}", self.value),
            (_, RType::Txt) => format!("{name} IN TXT {}", quote_txt(&self.value)),
            (_, rtype) => format!("{name} IN {rtype} {}", self.value),
        }
    }
}

/// A TXT value as zone-file strings: quoted, split every 255 octets, `"` and `\` escaped.
pub fn quote_txt(value: &str) -> String {
    value
        .as_bytes()
        .chunks(255)
        .map(|c| {
            let s = String::from_utf8_lossy(c);
            format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The state of one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// DNS has what it should.
    Ok,
    /// DNS has no such record.
    Missing,
    /// DNS has a record that is not the right one.
    Wrong,
    /// The lookup failed (timeout, SERVFAIL): nothing can be said.
    Unchecked,
}

impl State {
    /// The word the command line and the dialog show.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Missing => "missing",
            State::Wrong => "wrong",
            State::Unchecked => "could not check",
        }
    }

    /// Whether this row needs the admin's attention (a script's failure).
    pub fn is_problem(self) -> bool {
        matches!(self, State::Missing | State::Wrong)
    }
}

/// One checked record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// What should be published.
    pub wanted: Wanted,
    /// What DNS returns now, one entry per record (empty when nothing).
    pub found: Vec<String>,
    /// The verdict.
    pub state: State,
    /// The difference, in one sentence.
    pub sentence: String,
}

/// What [`plan`] needs beyond the configuration: each local domain's DKIM selectors.
pub type Selectors = Vec<(String, Vec<Selector>)>;

/// The suggested DMARC record to start with: report only, reports to postmaster.
pub fn dmarc_value(domain: &str) -> String {
    format!("v=DMARC1; p=none; rua=mailto:postmaster@{domain}")
}

/// The suggested SPF record for the delivery mode.
pub fn spf_value(cfg: &Config) -> String {
    match cfg.outgoing_mails.mode {
        DeliveryMode::Independent => "v=spf1 mx ~all".to_string(),
        DeliveryMode::Relay => {
            format!(
                "v=spf1 a:{} ~all",
                normalize_domain(&cfg.outgoing_mails.relay.host)
            )
        }
    }
}

/// The host name as the records use it: lower case, no trailing dot.
pub fn hostname(cfg: &Config) -> String {
    normalize_domain(&cfg.server.hostname)
}

/// The DKIM selectors of every local domain, as the key directory holds them now.
pub fn selectors(cfg: &Config, keys: &KeyStore) -> Result<Selectors, DkimError> {
    cfg.domains
        .iter()
        .map(|d| {
            let d = normalize_domain(d);
            let s = keys.list(&d)?;
            Ok((d, s))
        })
        .collect()
}

/// The records to publish: per local domain (or only `only`) its MX, SPF, each DKIM selector
/// and DMARC; then the server's forward name. (Reverse rows depend on the addresses found,
/// so [`check`] adds them.)
pub fn plan(cfg: &Config, selectors: &Selectors, only: Option<&str>) -> Vec<Wanted> {
    let host = hostname(cfg);
    let mut out = Vec::new();
    let only = only.map(normalize_domain);
    for domain in cfg.domains.iter().map(|d| normalize_domain(d)) {
        if only.as_ref().is_some_and(|o| *o != domain) {
            continue;
        }
        let row = |kind, name: String, rtype, value: String| Wanted {
            kind,
            domain: domain.clone(),
            name,
            rtype,
            value,
            selector: None,
        };
        out.push(row(
            Kind::Mx,
            domain.clone(),
            RType::Mx,
            format!("10 {host}."),
        ));
        out.push(row(Kind::Spf, domain.clone(), RType::Txt, spf_value(cfg)));
        let none = Vec::new();
        let sels = selectors
            .iter()
            .find(|(d, _)| *d == domain)
            .map_or(&none, |(_, s)| s);
        for s in sels {
            out.push(Wanted {
                selector: Some(s.clone()),
                ..row(Kind::Dkim, s.dns_name(&domain), RType::Txt, s.txt())
            });
        }
        out.push(row(
            Kind::Dmarc,
            format!("_dmarc.{domain}"),
            RType::Txt,
            dmarc_value(&domain),
        ));
    }
    out.push(Wanted {
        kind: Kind::Forward,
        domain: host.clone(),
        name: host.clone(),
        rtype: RType::A,
        value: "this server's public address".to_string(),
        selector: None,
    });
    out
}

/// What `postern dns records` prints: the records as zone-file lines under a comment per
/// domain, with the reverse-DNS advice for the server.
pub fn zone_text(cfg: &Config, wanted: &[Wanted]) -> String {
    let mut out = String::new();
    let mut last = None;
    for w in wanted {
        if last != Some(&w.domain) {
            if w.kind == Kind::Forward {
                out.push_str(&format!(
                    "; the server: {} is the name it gives when it sends (HELO)\n",
                    w.domain
                ));
            } else {
                out.push_str(&format!("; {}\n", w.domain));
            }
            last = Some(&w.domain);
        }
        if let Some(s) = &w.selector
            && !s.active
        {
            out.push_str("; an old DKIM key: keep it published until mail it signed has arrived\n");
        }
        out.push_str(&w.zone_line());
        out.push('\n');
        if w.kind == Kind::Forward {
            match cfg.outgoing_mails.mode {
                DeliveryMode::Independent => out.push_str(&format!(
                    "; reverse DNS: the PTR of each of those addresses must name {}. \
                     (your ISP sets it; if it cannot, use Relay mode through its smarthost)\n",
                    w.domain
                )),
                DeliveryMode::Relay => out.push_str(&format!(
                    "; Relay mode: {} sends your mail, so its reverse DNS counts, not this server's\n",
                    normalize_domain(&cfg.outgoing_mails.relay.host)
                )),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::dkim::Algo;

    fn cfg() -> Config {
        let mut c = Config::default();
        c.server.hostname = "Mail.Example.test".into();
        c.domains = vec!["example.test".into(), "other.test".into()];
        c
    }

    fn sel(name: &str, active: bool) -> Selector {
        Selector {
            name: name.into(),
            algo: Algo::Rsa,
            active,
            public_key: "MIIBkey".into(),
        }
    }

    #[test]
    fn a_plan_per_domain_then_the_server() {
        let sels = vec![(
            "example.test".to_string(),
            vec![sel("p20260101", false), sel("p20261202", true)],
        )];
        let p = plan(&cfg(), &sels, None);
        let kinds: Vec<_> = p.iter().map(|w| (w.kind, w.name.as_str())).collect();
        assert_eq!(
            kinds,
            [
                (Kind::Mx, "example.test"),
                (Kind::Spf, "example.test"),
                (Kind::Dkim, "p20260101._domainkey.example.test"),
                (Kind::Dkim, "p20261202._domainkey.example.test"),
                (Kind::Dmarc, "_dmarc.example.test"),
                (Kind::Mx, "other.test"),
                (Kind::Spf, "other.test"),
                (Kind::Dmarc, "_dmarc.other.test"),
                (Kind::Forward, "mail.example.test"),
            ]
        );
        assert_eq!(p[0].value, "10 mail.example.test.");
        assert_eq!(p[1].value, "v=spf1 mx ~all");
        assert_eq!(p[3].value, "v=DKIM1; k=rsa; p=MIIBkey");
        assert_eq!(
            p[4].value,
            "v=DMARC1; p=none; rua=mailto:postmaster@example.test"
        );
        let only = plan(&cfg(), &sels, Some("Other.Test."));
        assert_eq!(only.len(), 4);
        assert!(only[..3].iter().all(|w| w.domain == "other.test"));
    }

    #[test]
    fn relay_mode_names_the_relay_host_in_spf() {
        let mut c = cfg();
        c.outgoing_mails.mode = DeliveryMode::Relay;
        c.outgoing_mails.relay.host = "smtp.ISP.example".into();
        assert_eq!(spf_value(&c), "v=spf1 a:smtp.isp.example ~all");
        let text = zone_text(&c, &plan(&c, &Vec::new(), None));
        assert!(text.contains("smtp.isp.example sends your mail"), "{text}");
    }

    #[test]
    fn zone_lines_quote_and_split_long_text() {
        let long = "v=DKIM1; k=rsa; p=".to_string() + &"A".repeat(400);
        let q = quote_txt(&long);
        assert_eq!(q.matches('"').count(), 4, "{q}");
        assert_eq!(q.replace("\" \"", "").trim_matches('"'), long);
        assert_eq!(quote_txt(r#"a"b\c"#), r#""a\"b\\c""#);
        let text = zone_text(&cfg(), &plan(&cfg(), &Vec::new(), None));
        assert!(
            text.contains("example.test. IN MX 10 mail.example.test.\n"),
            "{text}"
        );
        assert!(
            text.contains("_dmarc.example.test. IN TXT \"v=DMARC1; p=none; rua=mailto:postmaster@example.test\"\n"),
            "{text}"
        );
        assert!(text.contains("must name mail.example.test."), "{text}");
    }
}
