//! SEARCH keys (RFC 9051 §6.4.4) against one message: [`matches`] evaluates imap-types'
//! `SearchKey` tree over a [`MessageView`], [`needs_body`] says whether the session must read
//! the message's file first. Pure: no I/O.
//!
//! Postern keeps no `\Recent` (RFC 9051 dropped it), so RECENT and NEW match nothing and OLD
//! matches everything. Dates compare calendar days and ignore the time and zone: INTERNALDATE
//! for BEFORE/ON/SINCE, the Date: field for SENTBEFORE/SENTON/SENTSINCE (a message without a
//! readable Date: matches none of those). String keys are case-insensitive substrings of the
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
            SearchKey::SentBefore(d) => self.sent_day().is_some_and(|s| s < *d.as_ref()),
            SearchKey::SentOn(d) => self.sent_day().is_some_and(|s| s == *d.as_ref()),
            SearchKey::SentSince(d) => self.sent_day().is_some_and(|s| s >= *d.as_ref()),
            SearchKey::From(s) => self.field_contains(b"From", s),
            SearchKey::To(s) => self.field_contains(b"To", s),
            SearchKey::Cc(s) => self.field_contains(b"Cc", s),
            SearchKey::Bcc(s) => self.field_contains(b"Bcc", s),
            SearchKey::Subject(s) => self.field_contains(b"Subject", s),
            SearchKey::Header(name, s) => self.field_contains(&astring(name), s),
            SearchKey::Body(s) => self.body_contains(&needle(s)),
            SearchKey::Text(s) => {
                let n = needle(s);
                header::fields(self.header).any(|f| {
                    contains(&String::from_utf8_lossy(f.name), &n)
                        || contains(&header::decoded(f.value), &n)
                }) || self.body_contains(&n)
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

    /// The Date: field's calendar day, in the zone it was written in.
    fn sent_day(&self) -> Option<NaiveDate> {
        let f = header::first(self.header, b"Date")?;
        match mail_parser::parsers::MessageStream::new(f.value).parse_date() {
            mail_parser::HeaderValue::DateTime(d) => {
                NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
            }
            _ => None,
        }
    }

    /// Whether a field called `name` holds the key's string (an empty string matches any
    /// message that has the field, RFC 9051 §6.4.4 HEADER).
    fn field_contains(&self, name: &[u8], s: &AString<'_>) -> bool {
        let n = needle(s);
        header::fields(self.header)
            .filter(|f| f.is(name))
            .any(|f| n.is_empty() || contains(&header::decoded(f.value), &n))
    }

    fn body_contains(&self, n: &str) -> bool {
        let Some(m) = self
            .mime
            .get_or_init(|| MessageParser::default().parse(self.msg.raw))
        else {
            return false;
        };
        text_contains(m, n, 0)
    }
}

/// Whether a text part of `m` (or of a message inside it) holds `n`.
fn text_contains(m: &Message<'_>, n: &str, depth: usize) -> bool {
    m.parts.iter().any(|p| match &p.body {
        PartType::Text(t) | PartType::Html(t) => contains(t, n),
        PartType::Message(inner) if depth < 16 => text_contains(inner, n, depth + 1),
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
mod tests {}
