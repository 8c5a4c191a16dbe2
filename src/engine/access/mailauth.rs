//! Inbound message authentication at the end of DATA: DKIM verification (RFC 6376, RFC 8463)
//! of the message as received, DMARC (RFC 7489) with relaxed/strict alignment of the SPF and
//! DKIM domains to the `From:` domain, and the `Authentication-Results:` field (RFC 8601) that
//! reports them with the SPF result of MAIL; and the forged `Authentication-Results:` fields
//! (those claiming our authserv-id, RFC 8601 §5) to cut from the message.
//!
//! mail-auth does the signatures, the key and policy records, and the alignment, through the
//! engine's resolver. Memory stays bounded whatever the message size: mail-auth parses only
//! the header section (it must end within the [`super::gate::HEAD_SCANNED`] octets the
//! session reads, otherwise nothing is verified and the results say so), and the body hashes
//! its signatures ask for are computed here over the body read in chunks, with mail-auth's
//! own canonicalising hasher, before mail-auth checks them.

use super::spf::SpfOutcome;
use crate::engine::dns::Resolver;
use crate::engine::store::body::Body;
use mail_auth::common::crypto::{HashAlgorithm, HashContext, HashImpl, Sha1, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimError;
use mail_auth::dkim::canonicalize::BodyHasher;
use mail_auth::dmarc::Policy;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::{AuthenticatedMessage, AuthenticationResults, DkimOutput, DkimResult, DmarcResult};
use std::net::IpAddr;
use std::ops::Range;
use std::time::Duration;

/// The longest DKIM and DMARC together may take for one message (their DNS lookups); past
/// it both are `temperror`.
pub const CHECK_DEADLINE: Duration = Duration::from_secs(20);

/// Signatures verified per message, the first ones in the header (OpenDKIM's
/// `MaximumSignaturesToVerify` is 3): each costs a key lookup and, with its own
/// canonicalization or `l=`, another pass of hashing over the body.
pub const MAX_SIGNATURES: usize = 5;

/// Octets of the body read at a time while hashing it.
const CHUNK: usize = 64 * 1024;

/// What one message is checked with.
pub struct Inputs<'a> {
    /// Our host name: the authserv-id.
    pub hostname: &'a str,
    /// The client's address.
    pub ip: IpAddr,
    /// The HELO/EHLO name.
    pub helo: &'a str,
    /// The envelope sender (empty for `<>`).
    pub mail_from: &'a str,
    /// The SPF result of the envelope sender (or HELO name for `<>`).
    pub spf: &'a SpfOutcome,
    /// The start of the message (see [`header_section`]).
    pub head: &'a [u8],
    /// The whole message.
    pub body: &'a Body,
    /// Verify DKIM signatures.
    pub dkim: bool,
    /// Evaluate DMARC (needs `dkim`).
    pub dmarc: bool,
}

/// What the checks found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Results {
    /// The `Authentication-Results:` field, CRLF-terminated.
    pub field: String,
    /// One line for the log: `spf=pass dkim=pass dmarc=pass` with the domains.
    pub summary: String,
    /// `Some((From: domain, policy))` when DMARC failed under `p=quarantine` or `p=reject`.
    pub dmarc_failed: Option<(String, &'static str)>,
}

/// The complete header section of a message of `size` octets starting with `head`, through
/// its blank line; the whole message when it has no body and is all in `head`; `None` when
/// the header section does not end within `head`.
pub fn header_section(head: &[u8], size: u64) -> Option<&[u8]> {
    if head.starts_with(b"\r\n") {
        return Some(&head[..2]);
    }
    match head.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(p) => Some(&head[..p + 4]),
        None if head.len() as u64 == size => Some(head),
        None => None,
    }
}

/// The addresses in the `From:` fields of a header section, lower case; `None` when there
/// is a `From:` field with no address that can be read (then nobody can tell whose it is).
pub fn from_addresses(section: &[u8]) -> Option<Vec<String>> {
    let Some(msg) = AuthenticatedMessage::parse(section) else {
        return Some(Vec::new());
    };
    let fields = msg
        .headers
        .iter()
        .filter(|(name, _)| name.trim_ascii().eq_ignore_ascii_case(b"from"))
        .count();
    if fields > 0 && msg.from.is_empty() {
        return None;
    }
    Some(msg.from.clone())
}

/// Runs DKIM and DMARC on the message and writes the results, with `spf`'s.
pub async fn check(resolver: &Resolver, i: &Inputs<'_>) -> Results {
    let spf_out = i.spf.to_mail_auth();
    let ar = AuthenticationResults::new(i.hostname).with_spf_mailfrom_result(
        &spf_out,
        i.ip,
        i.mail_from,
        i.helo,
    );
    let mut summary = format!("spf={} ({})", i.spf.result, i.spf.domain);
    let section = header_section(i.head, i.body.len());
    let parsed = section.and_then(AuthenticatedMessage::parse);
    let Some(mut msg) = parsed.filter(|_| i.dkim) else {
        let why = if !i.dkim {
            "not checked"
        } else if section.is_none() {
            "header section too long to check"
        } else {
            "no header fields"
        };
        summary.push_str(&format!(" dkim=none dmarc=none ({why})"));
        return Results {
            field: with_extra(
                ar.to_header(),
                &format!("dkim=none ({why});\r\n\tdmarc=none"),
            ),
            summary,
            dmarc_failed: None,
        };
    };
    if msg.dkim_headers.len() > MAX_SIGNATURES {
        summary.push_str(&format!(
            " ({} DKIM signatures, the first {MAX_SIGNATURES} checked)",
            msg.dkim_headers.len()
        ));
        msg.dkim_headers.truncate(MAX_SIGNATURES);
        let needed: Vec<_> = msg
            .dkim_headers
            .iter()
            .map(|h| (h.header.cb, HashAlgorithm::from(h.header.a), h.header.l))
            .collect();
        msg.body_hashes
            .retain(|(cb, ha, l, _)| needed.contains(&(*cb, *ha, *l)));
    }
    let offset = section.map_or(0, |s| s.len() as u64);
    if let Err(e) = hash_body(&mut msg, i.body, offset) {
        summary.push_str(&format!(
            " dkim=temperror dmarc=temperror (body unreadable: {e})"
        ));
        return Results {
            field: with_extra(ar.to_header(), "dkim=temperror;\r\n\tdmarc=temperror"),
            summary,
            dmarc_failed: None,
        };
    }
    let auth = resolver.authenticator();
    let from = msg.from().to_string();
    let deadline = tokio::time::Instant::now() + CHECK_DEADLINE;
    let timed_out = |mut summary: String, ar: AuthenticationResults<'_>| {
        summary.push_str(" dkim=temperror dmarc=temperror (no answer in time)");
        Results {
            field: with_extra(ar.to_header(), "dkim=temperror;\r\n\tdmarc=temperror"),
            summary,
            dmarc_failed: None,
        }
    };
    let Ok(verified) = tokio::time::timeout_at(deadline, auth.verify_dkim(&msg)).await else {
        return timed_out(summary, ar);
    };
    // A body that does not match its signature's hash failed verification (RFC 6376 6.3,
    // RFC 8601 2.7.1 "fail"); mail-auth calls it neutral.
    let dkim: Vec<DkimOutput<'_>> = verified
        .iter()
        .map(|d| match d.result() {
            DkimResult::Neutral(e @ mail_auth::Error::Dkim(DkimError::FailedBodyHashMatch)) => {
                let out = DkimOutput::fail(e.clone());
                match d.signature() {
                    Some(sig) => out.with_signature(sig),
                    None => out,
                }
            }
            _ => d.clone(),
        })
        .collect();
    let dmarc = if i.dmarc {
        let params = DmarcParameters::new(&msg, &dkim, &i.spf.domain, &spf_out);
        match tokio::time::timeout_at(deadline, auth.verify_dmarc(params)).await {
            Ok(out) => Some(out),
            Err(_) => return timed_out(summary, ar),
        }
    } else {
        None
    };
    let mut ar = ar.with_dkim_results(&dkim, &from);
    let mut extra = String::new();
    if dkim.is_empty() {
        extra.push_str("dkim=none");
        summary.push_str(" dkim=none");
    }
    for d in &dkim {
        summary.push_str(&format!(" dkim={}", dkim_name(d.result())));
        if let Some(s) = d.signature() {
            summary.push_str(&format!(" ({} s={})", s.d, s.s));
        }
    }
    let mut dmarc_failed = None;
    match &dmarc {
        Some(dm) => {
            ar = ar.with_dmarc_result(dm);
            let policy = policy_name(dm.policy());
            summary.push_str(&format!(
                " dmarc={} ({} p={policy})",
                dmarc_name(&dm.result()),
                if dm.domain().is_empty() {
                    "no From: domain"
                } else {
                    dm.domain()
                },
            ));
            if matches!(dm.result(), DmarcResult::Fail(_))
                && matches!(dm.policy(), Policy::Quarantine | Policy::Reject)
            {
                dmarc_failed = Some((dm.domain().to_string(), policy));
            }
        }
        None => {
            if !extra.is_empty() {
                extra.push_str(";\r\n\t");
            }
            extra.push_str("dmarc=none (not checked)");
            summary.push_str(" dmarc=none (not checked)");
        }
    }
    let field = if extra.is_empty() {
        ar.to_header()
    } else {
        with_extra(ar.to_header(), &extra)
    };
    Results {
        field,
        summary,
        dmarc_failed,
    }
}

/// `field` (CRLF-terminated) with `extra` results appended.
fn with_extra(field: String, extra: &str) -> String {
    let head = field.trim_end_matches("\r\n");
    let head = head.strip_suffix("; none").unwrap_or(head);
    format!("{head};\r\n\t{extra}\r\n")
}

/// Fills in the body hashes the message's signatures ask for, over the body of `body` from
/// `offset` on, read in chunks.
fn hash_body(msg: &mut AuthenticatedMessage<'_>, body: &Body, offset: u64) -> std::io::Result<()> {
    enum Hasher {
        Sha1(BodyHasher<<Sha1 as HashImpl>::Context>),
        Sha256(BodyHasher<<Sha256 as HashImpl>::Context>),
    }
    if msg.body_hashes.is_empty() {
        return Ok(());
    }
    let mut hashers: Vec<Hasher> = msg
        .body_hashes
        .iter()
        .map(|(cb, ha, l, _)| match ha {
            HashAlgorithm::Sha1 => Hasher::Sha1(BodyHasher::new(Sha1::hasher(), *cb, *l)),
            HashAlgorithm::Sha256 => Hasher::Sha256(BodyHasher::new(Sha256::hasher(), *cb, *l)),
        })
        .collect();
    let mut buf = Vec::new();
    let mut at = offset;
    while at < body.len() {
        body.read_at(at, CHUNK, &mut buf)?;
        if buf.is_empty() {
            break;
        }
        for h in &mut hashers {
            match h {
                Hasher::Sha1(h) => h.write(&buf),
                Hasher::Sha256(h) => h.write(&buf),
            }
        }
        at += buf.len() as u64;
    }
    for (h, slot) in hashers.into_iter().zip(msg.body_hashes.iter_mut()) {
        let out = match h {
            Hasher::Sha1(h) => h.finish().0.complete(),
            Hasher::Sha256(h) => h.finish().0.complete(),
        };
        slot.3 = out.as_ref().to_vec();
    }
    Ok(())
}

fn dkim_name(r: &DkimResult) -> &'static str {
    match r {
        DkimResult::Pass => "pass",
        DkimResult::Neutral(_) => "neutral",
        DkimResult::Fail(_) => "fail",
        DkimResult::PermError(_) => "permerror",
        DkimResult::TempError(_) => "temperror",
        DkimResult::None => "none",
    }
}

fn dmarc_name(r: &DmarcResult) -> &'static str {
    match r {
        DmarcResult::Pass => "pass",
        DmarcResult::Fail(_) => "fail",
        DmarcResult::TempError(_) => "temperror",
        DmarcResult::PermError(_) => "permerror",
        DmarcResult::None => "none",
    }
}

fn policy_name(p: Policy) -> &'static str {
    match p {
        Policy::Reject => "reject",
        Policy::Quarantine => "quarantine",
        Policy::None | Policy::Unspecified => "none",
    }
}

/// The `Authentication-Results:` fields of a header section whose authserv-id is `ours`
/// (case-insensitive): octet ranges of the whole fields, continuation lines included, to be
/// cut from the message (RFC 8601 §5: a receiver removes such fields arriving from outside).
pub fn forged_results(section: &[u8], ours: &str) -> Vec<Range<u64>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < section.len() {
        // The field runs to the first line end not followed by a space or tab.
        let mut end = start;
        loop {
            match section[end..].windows(2).position(|w| w == b"\r\n") {
                Some(p) => {
                    end += p + 2;
                    if !matches!(section.get(end), Some(b' ' | b'\t')) {
                        break;
                    }
                }
                None => {
                    end = section.len();
                    break;
                }
            }
        }
        let field = &section[start..end];
        if field == b"\r\n" {
            break;
        }
        if let Some(colon) = field.iter().position(|&b| b == b':')
            && field[..colon]
                .trim_ascii()
                .eq_ignore_ascii_case(b"authentication-results")
            && authserv_id(&field[colon + 1..]).is_some_and(|id| id.eq_ignore_ascii_case(ours))
        {
            out.push(start as u64..end as u64);
        }
        start = end;
    }
    out
}

/// The authserv-id at the start of an `Authentication-Results:` value, after any folding
/// white space and comments; unquoted when it is a quoted string.
fn authserv_id(value: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(value);
    let mut rest = text.as_ref();
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix('(') {
            // Skip a (possibly nested) comment.
            let mut depth = 1;
            let mut end = None;
            for (i, c) in r.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = Some(i + 1);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            rest = &r[end?..];
        } else {
            break;
        }
    }
    if let Some(q) = rest.strip_prefix('"') {
        return q.split_once('"').map(|(id, _)| id.to_string());
    }
    let id: String = rest
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != ';' && *c != '(')
        .collect();
    (!id.is_empty()).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_fields_are_found_with_their_continuations() {
        let s = b"Received: x\r\nAuthentication-Results: MX.test;\r\n\tspf=pass\r\n\
                  authentication-results : (c (nested)) \"mx.test\"; dkim=pass\r\n\
                  Authentication-Results: other.test; spf=fail\r\n\
                  Authentication-Results:mx.testing; none\r\nSubject: a\r\n\r\n";
        let cut = forged_results(s, "mx.test");
        let text: Vec<&str> = cut
            .iter()
            .map(|r| std::str::from_utf8(&s[r.start as usize..r.end as usize]).unwrap())
            .collect();
        assert_eq!(
            text,
            [
                "Authentication-Results: MX.test;\r\n\tspf=pass\r\n",
                "authentication-results : (c (nested)) \"mx.test\"; dkim=pass\r\n",
            ]
        );
        assert!(
            forged_results(
                b"Subject: a\r\n\r\nAuthentication-Results: mx.test; x\r\n",
                "mx.test"
            )
            .is_empty()
        );
    }

    #[test]
    fn header_sections() {
        assert_eq!(
            header_section(b"A: b\r\n\r\nbody", 10),
            Some(&b"A: b\r\n\r\n"[..])
        );
        assert_eq!(header_section(b"A: b\r\n", 6), Some(&b"A: b\r\n"[..]));
        assert_eq!(header_section(b"A: b\r\n", 600), None);
        assert_eq!(header_section(b"\r\nbody", 6), Some(&b"\r\n"[..]));
    }

    #[test]
    fn from_addresses_are_read_or_refused() {
        assert_eq!(
            from_addresses(b"From: Alice <Alice@X.test>\r\n\r\n"),
            Some(vec!["alice@x.test".to_string()])
        );
        assert_eq!(from_addresses(b"Subject: none\r\n\r\n"), Some(vec![]));
        assert_eq!(from_addresses(b"From: nobody at all\r\n\r\n"), None);
    }
}
