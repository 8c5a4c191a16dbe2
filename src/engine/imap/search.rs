//! SEARCH keys (RFC 9051 §6.4.4) against one message: [`matches`] evaluates imap-types'
//! `SearchKey` tree over a [`MessageView`], [`needs_body`] says whether the session must read
//! the message's file first. Pure: no I/O.
//!
//! Postern keeps no `\Recent` (RFC 9051 dropped it), so RECENT and NEW match nothing and OLD
//! matches everything. Dates compare calendar days and ignore the time and zone: INTERNALDATE
//! for BEFORE/ON/SINCE, the Date: field for SENTBEFORE/SENTON/SENTSINCE (a message without a
//! readable Date: was sent on 1 January 1970, as Dovecot 2.3 takes it). String keys are case-insensitive substrings of the
//! RFC 2047-decoded text; BODY looks in the decoded text parts, TEXT in the header too.

use super::message::{MessageView, header};
use chrono::NaiveDate;
use imap_codec::imap_types::core::AString;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::{Sequence, SequenceSet};
use mail_parser::{Message, MessageParser, PartType};
use std::cell::OnceCell;
use std::num::NonZeroU32;

/// What `*` means in sequence sets: the highest message sequence number and the highest UID
/// in the mailbox.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// The number of messages (the last sequence number).
    pub max_seq: u32,
    /// The highest UID in the mailbox.
    pub max_uid: u32,
}

/// Whether `msg` matches `key`.
pub fn matches(key: &SearchKey<'_>, msg: &MessageView, bounds: &Bounds) -> bool {
    let hl = header::header_len(msg.raw);
    let ctx = Ctx {
        msg,
        bounds,
        header: &msg.raw[..hl],
        mime: OnceCell::new(),
    };
    ctx.eval(key)
}

/// Whether `key` needs the message's bytes: false when it only looks at flags, sequence
/// numbers, UIDs, the size and INTERNALDATE.
pub fn needs_body(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().any(needs_body),
        SearchKey::Or(a, b) => needs_body(a) || needs_body(b),
        SearchKey::Not(k) => needs_body(k),
        SearchKey::Bcc(_)
        | SearchKey::Body(_)
        | SearchKey::Cc(_)
        | SearchKey::From(_)
        | SearchKey::Header(..)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_)
        | SearchKey::Subject(_)
        | SearchKey::Text(_)
        | SearchKey::To(_) => true,
        _ => false,
    }
}

/// Whether `key` looks at nothing past the header block: then `raw` may be only the message's
/// start through its header's blank line (see `message::header_only`).
pub fn header_only(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().all(header_only),
        SearchKey::Or(a, b) => header_only(a) && header_only(b),
        SearchKey::Not(k) => header_only(k),
        SearchKey::Body(_) | SearchKey::Text(_) => false,
        _ => true,
    }
}

/// Whether `n` is in `set`, `*` being `largest` (RFC 9051 §9: `n:m` is the same as `m:n`,
/// and `*` stands for the largest number in use even when that is below the other end).
pub fn in_set(set: &SequenceSet, n: u32, largest: u32) -> bool {
    let largest = NonZeroU32::new(largest).unwrap_or(NonZeroU32::MIN);
    set.0.as_ref().iter().any(|s| match s {
        Sequence::Single(v) => v.expand(largest).get() == n,
        Sequence::Range(a, b) => {
            let (a, b) = (a.expand(largest).get(), b.expand(largest).get());
            a.min(b) <= n && n <= a.max(b)
        }
    })
}

struct Ctx<'a> {
    msg: &'a MessageView<'a>,
    bounds: &'a Bounds,
    header: &'a [u8],
    mime: OnceCell<Option<Message<'a>>>,
}

impl Ctx<'_> {
    fn eval(&self, key: &SearchKey<'_>) -> bool {
        let msg = self.msg;
        match key {
            SearchKey::And(keys) => keys.as_ref().iter().all(|k| self.eval(k)),
            SearchKey::Or(a, b) => self.eval(a) || self.eval(b),
            SearchKey::Not(k) => !self.eval(k),
            SearchKey::All => true,
            SearchKey::SequenceSet(set) => in_set(set, msg.seq.get(), self.bounds.max_seq),
            SearchKey::Uid(set) => in_set(set, msg.uid.get(), self.bounds.max_uid),
            SearchKey::Answered => self.has(&Flag::Answered),
            SearchKey::Deleted => self.has(&Flag::Deleted),
            SearchKey::Draft => self.has(&Flag::Draft),
            SearchKey::Flagged => self.has(&Flag::Flagged),
            SearchKey::Seen => self.has(&Flag::Seen),
            SearchKey::Unanswered => !self.has(&Flag::Answered),
            SearchKey::Undeleted => !self.has(&Flag::Deleted),
            SearchKey::Undraft => !self.has(&Flag::Draft),
            SearchKey::Unflagged => !self.has(&Flag::Flagged),
            SearchKey::Unseen => !self.has(&Flag::Seen),
            SearchKey::Keyword(k) => self.has_keyword(k.inner()),
            SearchKey::Unkeyword(k) => !self.has_keyword(k.inner()),
            // No \Recent: NEW is RECENT UNSEEN, OLD is NOT RECENT.
            SearchKey::Recent | SearchKey::New => false,
            SearchKey::Old => true,
            SearchKey::Larger(n) => msg.size > *n,
            SearchKey::Smaller(n) => msg.size < *n,
            SearchKey::Before(d) => self.internal_day() < *d.as_ref(),
            SearchKey::On(d) => self.internal_day() == *d.as_ref(),
            SearchKey::Since(d) => self.internal_day() >= *d.as_ref(),
            SearchKey::SentBefore(d) => self.sent_day() < *d.as_ref(),
            SearchKey::SentOn(d) => self.sent_day() == *d.as_ref(),
            SearchKey::SentSince(d) => self.sent_day() >= *d.as_ref(),
            SearchKey::From(s) => self.field_contains(b"From", s),
            SearchKey::To(s) => self.field_contains(b"To", s),
            SearchKey::Cc(s) => self.field_contains(b"Cc", s),
            SearchKey::Bcc(s) => self.field_contains(b"Bcc", s),
            SearchKey::Subject(s) => self.field_contains(b"Subject", s),
            SearchKey::Header(name, s) => self.field_contains(&astring(name), s),
            SearchKey::Body(s) => self.body_contains(&needle(s), false),
            // The header, the text parts and the headers of messages inside (Dovecot's TEXT).
            SearchKey::Text(s) => {
                let n = needle(s);
                header_contains(self.header, &n) || self.body_contains(&n, true)
            }
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    fn has(&self, flag: &Flag<'_>) -> bool {
        self.msg.flags.iter().any(|f| f == flag)
    }

    fn has_keyword(&self, k: &str) -> bool {
        self.msg
            .flags
            .iter()
            .any(|f| matches!(f, Flag::Keyword(a) if a.inner().eq_ignore_ascii_case(k)))
    }

    fn internal_day(&self) -> NaiveDate {
        self.msg.internal_date.as_ref().date_naive()
    }

    /// The Date: field's calendar day, in the zone it was written in; 1 January 1970 when there
    /// is none or it cannot be read, as Dovecot takes it (so SENTBEFORE finds such messages).
    fn sent_day(&self) -> NaiveDate {
        header::first(self.header, b"Date")
            .and_then(
                |f| match mail_parser::parsers::MessageStream::new(f.value).parse_date() {
                    mail_parser::HeaderValue::DateTime(d) => NaiveDate::from_ymd_opt(
                        i32::from(d.year),
                        u32::from(d.month),
                        u32::from(d.day),
                    ),
                    _ => None,
                },
            )
            .unwrap_or(NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date"))
    }

    /// Whether a field called `name` holds the key's string (an empty string matches any
    /// message that has the field, RFC 9051 §6.4.4 HEADER).
    fn field_contains(&self, name: &[u8], s: &AString<'_>) -> bool {
        let n = needle(s);
        header::fields(self.header)
            .filter(|f| f.is(name))
            .any(|f| n.is_empty() || contains(&header::decoded(f.value), &n))
    }

    fn body_contains(&self, n: &str, headers: bool) -> bool {
        let Some(m) = self
            .mime
            .get_or_init(|| MessageParser::default().parse(self.msg.raw))
        else {
            return false;
        };
        text_contains(m, n, headers, 0)
    }
}

/// Whether a field of a raw header block holds `n` (as written or decoded).
fn header_contains(header: &[u8], n: &str) -> bool {
    header::fields(header).any(|f| {
        contains(&String::from_utf8_lossy(f.all), n) || contains(&header::decoded(f.value), n)
    })
}

/// Whether a text part of `m`, or of a message inside it (and with `headers`, that message's
/// header), holds `n`.
fn text_contains(m: &Message<'_>, n: &str, headers: bool, depth: usize) -> bool {
    m.parts.iter().any(|p| match &p.body {
        PartType::Text(t) | PartType::Html(t) => contains(t, n),
        PartType::Message(inner) if depth < 16 => {
            let inner_header = inner.parts.first().map_or(&[][..], |root| {
                let raw: &[u8] = &inner.raw_message;
                let end = (root.offset_body as usize).min(raw.len());
                &raw[(root.offset_header as usize).min(end)..end]
            });
            (headers && header_contains(inner_header, n))
                || text_contains(inner, n, headers, depth + 1)
        }
        _ => false,
    })
}

fn astring(a: &AString<'_>) -> Vec<u8> {
    match a {
        AString::Atom(atom) => atom.inner().as_bytes().to_vec(),
        AString::String(s) => s.clone().into_inner().into_owned(),
    }
}

/// The key's string, lower-cased for a case-insensitive comparison.
fn needle(a: &AString<'_>) -> String {
    String::from_utf8_lossy(&astring(a)).to_lowercase()
}

/// Case-insensitive substring (`n` is already lower case).
fn contains(haystack: &str, n: &str) -> bool {
    if n.is_empty() {
        return true;
    }
    if haystack.is_ascii() && n.is_ascii() {
        let (h, n) = (haystack.as_bytes(), n.as_bytes());
        return h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n));
    }
    haystack.to_lowercase().contains(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::imap::message::tests::{
        ALTERNATIVE, BARE, ENCODED, FORWARD, MIXED, PLAIN, view,
    };
    use imap_codec::CommandCodec;
    use imap_codec::decode::Decoder;
    use imap_codec::imap_types::ToStatic;
    use imap_codec::imap_types::command::CommandBody;

    /// The criteria of `SEARCH <criteria>` as imap-codec parses them, ANDed.
    fn key(criteria: &str) -> SearchKey<'static> {
        // A quoted string holds ASCII only: UTF-8 goes as a literal (RFC 9051 §4.3).
        let mut cmd = String::from("a SEARCH ");
        for (i, part) in criteria.split('"').enumerate() {
            if i % 2 == 0 {
                cmd.push_str(part);
            } else if part.is_ascii() {
                cmd.push_str(&format!("\"{part}\""));
            } else {
                cmd.push_str(&format!("{{{}+}}\r\n{part}", part.len()));
            }
        }
        cmd.push_str("\r\n");
        let (_, parsed) = CommandCodec::default().decode(cmd.as_bytes()).unwrap();
        let CommandBody::Search { criteria, .. } = parsed.body else {
            panic!("not a SEARCH")
        };
        SearchKey::And(criteria).to_static()
    }

    const BOUNDS: Bounds = Bounds {
        max_seq: 20,
        max_uid: 400,
    };

    /// Whether the message (seq 12, UID 300, internal date 17-Jul-1996 02:44:25 -0700) with
    /// `flags` matches `criteria`.
    fn hit(raw: &[u8], flags: &[Flag<'static>], criteria: &str) -> bool {
        matches(&key(criteria), &view(raw, flags), &BOUNDS)
    }

    #[test]
    fn flags_and_their_negations() {
        let flags = [
            Flag::Seen,
            Flag::Flagged,
            Flag::Keyword("$Label1".try_into().unwrap()),
        ];
        for (criteria, want) in [
            ("ALL", true),
            ("SEEN", true),
            ("UNSEEN", false),
            ("FLAGGED", true),
            ("UNFLAGGED", false),
            ("ANSWERED", false),
            ("UNANSWERED", true),
            ("DELETED", false),
            ("UNDELETED", true),
            ("DRAFT", false),
            ("UNDRAFT", true),
            ("KEYWORD $label1", true),
            ("KEYWORD $Junk", false),
            ("UNKEYWORD $Label1", false),
            ("UNKEYWORD $Junk", true),
            // No \Recent is ever set.
            ("RECENT", false),
            ("NEW", false),
            ("OLD", true),
            ("NOT SEEN", false),
            ("OR ANSWERED FLAGGED", true),
            ("OR ANSWERED DRAFT", false),
            ("SEEN FLAGGED UNDELETED", true),
            ("SEEN (DELETED OR FLAGGED DRAFT)", false),
        ] {
            assert_eq!(hit(PLAIN, &flags, criteria), want, "SEARCH {criteria}");
        }
    }

    #[test]
    fn sequence_and_uid_sets_with_star() {
        // seq 12 of 20, UID 300 of at most 400.
        for (criteria, want) in [
            ("12", true),
            ("1:11,13:*", false),
            ("10:15", true),
            ("15:10", true),
            ("*", false),
            ("UID 300", true),
            ("UID 1:299,301:*", false),
            ("UID 250:*", true),
            ("NOT UID 300", false),
        ] {
            assert_eq!(hit(PLAIN, &[], criteria), want, "SEARCH {criteria}");
        }
        // `*` is the largest number in use, so `n:*` holds it even when n is larger.
        let last = Bounds {
            max_seq: 12,
            max_uid: 300,
        };
        assert!(matches(&key("*"), &view(PLAIN, &[]), &last));
        assert!(matches(&key("UID 500:*"), &view(PLAIN, &[]), &last));
    }

    #[test]
    fn size_and_dates() {
        // PLAIN is 411 octets; its INTERNALDATE is 17-Jul-1996, its Date: 17-Jul-1996.
        for (criteria, want) in [
            ("LARGER 410", true),
            ("LARGER 411", false),
            ("SMALLER 412", true),
            ("SMALLER 411", false),
            ("ON 17-Jul-1996", true),
            ("BEFORE 17-Jul-1996", false),
            ("BEFORE 18-Jul-1996", true),
            ("SINCE 17-Jul-1996", true),
            ("SINCE 18-Jul-1996", false),
            ("SENTON 17-Jul-1996", true),
            ("SENTBEFORE 17-Jul-1996", false),
            ("SENTSINCE 16-Jul-1996", true),
            ("SENTSINCE 18-Jul-1996", false),
        ] {
            assert_eq!(hit(PLAIN, &[], criteria), want, "SEARCH {criteria}");
        }
        // Sent dates use the Date: field's own calendar day, not the internal date.
        assert!(hit(ALTERNATIVE, &[], "SENTON 1-Dec-2026"));
        assert!(hit(ALTERNATIVE, &[], "ON 17-Jul-1996"));
        // No Date: field: sent in 1970, as Dovecot answers.
        assert!(hit(BARE, &[], "SENTBEFORE 1-Jan-1990"));
        assert!(!hit(BARE, &[], "SENTSINCE 1-Jan-1990"));
        assert!(hit(BARE, &[], "SENTON 1-Jan-1970"));
    }

    #[test]
    fn header_keys_match_decoded_text_case_insensitively() {
        for (raw, criteria, want) in [
            (PLAIN, "FROM \"terry gray\"", true),
            (PLAIN, "FROM gray@CAC", true),
            (PLAIN, "FROM klensin", false),
            (PLAIN, "CC klensin", true),
            (PLAIN, "TO imap@", true),
            (PLAIN, "BCC imap", false),
            (PLAIN, "SUBJECT \"wg MTG\"", true),
            (PLAIN, "HEADER Message-ID B27397", true),
            (PLAIN, "HEADER mime-version \"\"", true),
            (PLAIN, "HEADER X-Spam \"\"", false),
            // RFC 2047 words are decoded before comparing.
            (ENCODED, "SUBJECT \"caf\u{e9}\u{e9}\"", true),
            (ENCODED, "SUBJECT \"CAF\u{c9}\"", true),
            (ENCODED, "SUBJECT utf-8", false),
            (ENCODED, "FROM \"j\u{f6}rg\"", true),
            (ENCODED, "CC \"smith, bob\"", true),
        ] {
            assert_eq!(hit(raw, &[], criteria), want, "SEARCH {criteria}");
        }
    }

    #[test]
    fn body_and_text() {
        for (raw, criteria, want) in [
            (PLAIN, "BODY \"meet at 3:30\"", true),
            (PLAIN, "BODY afternoon", false),
            (PLAIN, "BODY \"wg mtg\"", false),
            (PLAIN, "TEXT \"wg mtg\"", true),
            (PLAIN, "TEXT \"second LINE\"", true),
            // Quoted-printable is decoded; charset too.
            (ALTERNATIVE, "BODY \"caf\u{e9} at noon\"", true),
            (ALTERNATIVE, "BODY C3", false),
            // A base64 attachment is not text.
            (MIXED, "BODY PDF", false),
            (MIXED, "BODY attached", true),
            // A forwarded message's text counts.
            (FORWARD, "BODY \"inner body\"", true),
            (FORWARD, "TEXT forwarding", true),
            (BARE, "BODY \"just TEXT\"", true),
            // TEXT also reads the header of a message inside; BODY does not (Dovecot alike).
            (FORWARD, "TEXT dave", true),
            (FORWARD, "BODY dave", false),
            (FORWARD, "TEXT content-type", true),
            (FORWARD, "BODY content-type", false),
            // A message that is all header has no body.
            (b"no header at all", "TEXT \"header at all\"", true),
            (b"no header at all", "BODY \"header at all\"", false),
        ] {
            assert_eq!(hit(raw, &[], criteria), want, "SEARCH {criteria}");
        }
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let mut fwd = Vec::new();
        for _ in 0..2000 {
            fwd.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        fwd.extend_from_slice(b"Subject: leaf\r\n\r\nleaf\r\n");
        assert!(!hit(&fwd, &[], "OR TEXT nothing BODY nothing"));
    }

    #[test]
    fn which_keys_need_the_message() {
        for (criteria, want) in [
            ("ALL", false),
            ("SEEN UNDELETED KEYWORD $x", false),
            ("1:* UID 5:* LARGER 10 SMALLER 100", false),
            ("BEFORE 1-Jan-2020 ON 1-Jan-2020 SINCE 1-Jan-2020", false),
            ("NOT OR NEW OLD", false),
            ("SENTON 1-Jan-2020", true),
            ("SUBJECT x", true),
            ("OR SEEN BODY x", true),
            ("NOT HEADER X-A b", true),
            ("TEXT x", true),
            ("FROM a", true),
        ] {
            assert_eq!(needs_body(&key(criteria)), want, "SEARCH {criteria}");
        }
        for (criteria, want) in [
            ("FROM a SUBJECT b SENTON 1-Jan-2020 SEEN", true),
            ("NOT OR HEADER X-A b CC c", true),
            ("OR FROM a BODY b", false),
            ("NOT TEXT b", false),
        ] {
            assert_eq!(header_only(&key(criteria)), want, "SEARCH {criteria}");
        }
        // The header alone gives the same answers for header keys.
        let hl = header::header_len(PLAIN);
        for criteria in [
            "FROM gray",
            "SUBJECT minutes",
            "SENTON 17-Jul-1996",
            "CC nobody",
        ] {
            assert_eq!(
                hit(&PLAIN[..hl], &[], criteria),
                hit(PLAIN, &[], criteria),
                "SEARCH {criteria}"
            );
        }
        // Without the bytes, the metadata keys still answer.
        let mut m = view(b"", &[Flag::Seen]);
        m.size = 5000;
        assert!(matches(&key("SEEN LARGER 4000 UID 300"), &m, &BOUNDS));
    }
}
