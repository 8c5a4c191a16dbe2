//! SPF (RFC 7208): `check_host()` for the MAIL FROM domain, or the HELO name for the null
//! sender. The evaluation is mail-auth's (records, mechanisms, macros, the limit of 10
//! DNS-querying terms), run through the engine's [`Resolver`] (its name servers, options and
//! cache, see [`Resolver::authenticator`]); this module adds our bound on the whole evaluation
//! ([`EVALUATION_DEADLINE`], temperror when exceeded) and the result in our words.
//!
//! Not done by mail-auth, so not done here: the limit of 2 void lookups (RFC 7208 4.6.4 says
//! SHOULD); a record with too many void lookups is evaluated to its end instead of being a
//! permerror.

use crate::engine::dns::Resolver;
use mail_auth::spf::verify::SpfParameters;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

/// The longest a whole evaluation may take (RFC 7208 4.6.4 asks for at least 20 seconds).
pub const EVALUATION_DEADLINE: Duration = Duration::from_secs(20);

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

    /// mail-auth's name for it.
    pub fn to_mail_auth(self) -> mail_auth::SpfResult {
        match self {
            SpfResult::Pass => mail_auth::SpfResult::Pass,
            SpfResult::Fail => mail_auth::SpfResult::Fail,
            SpfResult::SoftFail => mail_auth::SpfResult::SoftFail,
            SpfResult::Neutral => mail_auth::SpfResult::Neutral,
            SpfResult::None => mail_auth::SpfResult::None,
            SpfResult::TempError => mail_auth::SpfResult::TempError,
            SpfResult::PermError => mail_auth::SpfResult::PermError,
        }
    }

    fn from_mail_auth(r: mail_auth::SpfResult) -> SpfResult {
        match r {
            mail_auth::SpfResult::Pass => SpfResult::Pass,
            mail_auth::SpfResult::Fail => SpfResult::Fail,
            mail_auth::SpfResult::SoftFail => SpfResult::SoftFail,
            mail_auth::SpfResult::Neutral => SpfResult::Neutral,
            mail_auth::SpfResult::None => SpfResult::None,
            mail_auth::SpfResult::TempError => SpfResult::TempError,
            mail_auth::SpfResult::PermError => SpfResult::PermError,
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
    /// Why, e.g. "example.com does not allow 192.0.2.1".
    pub reason: String,
    /// The domain whose record was checked (lower case; DMARC aligns it with `From:`).
    pub domain: String,
}

impl SpfOutcome {
    /// mail-auth's form, for DMARC.
    pub fn to_mail_auth(&self) -> mail_auth::SpfOutput {
        mail_auth::SpfOutput::new(self.domain.clone()).with_result(self.result.to_mail_auth())
    }
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
    let ip = ip.to_canonical();
    let outcome = |result: SpfResult, reason: String| SpfOutcome {
        result,
        reason,
        domain: domain.clone(),
    };
    if !valid_domain(&domain) {
        return outcome(
            SpfResult::None,
            format!("`{domain}` is not a domain name SPF can check"),
        );
    }
    // mail-auth takes the domain from the sender; an empty sender is postmaster@domain.
    let sender = match sender.rsplit_once('@') {
        Some((l, d)) if !l.is_empty() && d.eq_ignore_ascii_case(&domain) => sender.to_string(),
        Some((l, _)) if !l.is_empty() => format!("{l}@{domain}"),
        _ => format!("postmaster@{domain}"),
    };
    // RFC 7208 4.5: two SPF records are a permerror; mail-auth would use the first that
    // parses, so the domain's own records are counted first (the answer stays in the
    // resolver's cache, which mail-auth's lookup shares).
    if let Ok(txts) = resolver.txt(&domain).await
        && txts.iter().filter(|t| is_spf_record(t)).count() > 1
    {
        return outcome(
            SpfResult::PermError,
            format!("{domain} publishes more than one SPF record"),
        );
    }
    let helo = helo.trim();
    let auth = resolver.authenticator();
    // `%{r}` is "unknown" (RFC 7208 7.3): the check does not know our host name.
    let run = auth.verify_spf(SpfParameters::verify_mail_from(
        ip, helo, "unknown", &sender,
    ));
    let result = match tokio::time::timeout(EVALUATION_DEADLINE, run).await {
        Ok(out) => SpfResult::from_mail_auth(out.result()),
        Err(_) => {
            return outcome(
                SpfResult::TempError,
                format!(
                    "{domain}: no result within {} seconds",
                    EVALUATION_DEADLINE.as_secs()
                ),
            );
        }
    };
    let reason = match result {
        SpfResult::Pass => format!("{domain} allows {ip}"),
        SpfResult::Fail => format!("{domain} does not allow {ip}"),
        SpfResult::SoftFail => format!("{domain} probably does not allow {ip} (~)"),
        SpfResult::Neutral => format!("{domain} says nothing about {ip}"),
        SpfResult::None => format!("{domain} has no SPF record"),
        SpfResult::TempError => format!("{domain}: DNS failed while checking its SPF record"),
        SpfResult::PermError => {
            format!("{domain}: its SPF record is broken or needs too many DNS lookups")
        }
    };
    outcome(result, reason)
}

/// Whether a TXT record is an SPF record (`v=spf1` alone or followed by a space).
fn is_spf_record(txt: &str) -> bool {
    let t = txt.as_bytes();
    t.len() >= 6 && t[..6].eq_ignore_ascii_case(b"v=spf1") && (t.len() == 6 || t[6] == b' ')
}

/// A name SPF can check: dotted labels of letters, digits, `-` and `_` (and non-ASCII, which
/// the lookup converts), with a top label that is not all digits; no address literal.
fn valid_domain(domain: &str) -> bool {
    let domain = domain.trim_end_matches('.');
    if domain.is_empty() || domain.len() > 253 || !domain.contains('.') {
        return false;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    labels.iter().all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
    }) && labels
        .last()
        .is_some_and(|t| !t.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn results_map_both_ways() {
        for r in [
            SpfResult::Pass,
            SpfResult::Fail,
            SpfResult::SoftFail,
            SpfResult::Neutral,
            SpfResult::None,
            SpfResult::TempError,
            SpfResult::PermError,
        ] {
            assert_eq!(SpfResult::from_mail_auth(r.to_mail_auth()), r);
        }
    }
}
