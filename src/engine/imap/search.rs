//! SEARCH for one message: whether a search key matches it. (A minimal stand-in: ALL,
//! sequence sets, UID, the flag keys, AND/OR/NOT; the full version replaces this file.)

use super::message::MessageView;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

/// What `*` means in sequence sets.
pub struct Bounds {
    /// The highest sequence number.
    pub max_seq: u32,
    /// The highest UID.
    pub max_uid: u32,
}

/// Whether `n` is in `set`, `*` standing for `max`.
fn contains(set: &SequenceSet, n: u32, max: u32) -> bool {
    let v = |s: &SeqOrUid| match s {
        SeqOrUid::Value(v) => v.get(),
        SeqOrUid::Asterisk => max,
    };
    set.0.as_ref().iter().any(|s| match s {
        Sequence::Single(x) => v(x) == n,
        Sequence::Range(a, b) => {
            let (a, b) = (v(a).min(v(b)), v(a).max(v(b)));
            (a..=b).contains(&n)
        }
    })
}

/// Whether `key` matches `msg`.
pub fn matches(key: &SearchKey<'_>, msg: &MessageView, bounds: &Bounds) -> bool {
    let has = |f: &Flag| msg.flags.contains(f);
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().all(|k| matches(k, msg, bounds)),
        SearchKey::Or(a, b) => matches(a, msg, bounds) || matches(b, msg, bounds),
        SearchKey::Not(k) => !matches(k, msg, bounds),
        SearchKey::All => true,
        SearchKey::SequenceSet(s) => contains(s, msg.seq.get(), bounds.max_seq),
        SearchKey::Uid(s) => contains(s, msg.uid.get(), bounds.max_uid),
        SearchKey::Answered => has(&Flag::Answered),
        SearchKey::Unanswered => !has(&Flag::Answered),
        SearchKey::Deleted => has(&Flag::Deleted),
        SearchKey::Undeleted => !has(&Flag::Deleted),
        SearchKey::Draft => has(&Flag::Draft),
        SearchKey::Undraft => !has(&Flag::Draft),
        SearchKey::Flagged => has(&Flag::Flagged),
        SearchKey::Unflagged => !has(&Flag::Flagged),
        SearchKey::Seen => has(&Flag::Seen),
        SearchKey::Unseen => !has(&Flag::Seen),
        SearchKey::Keyword(k) => msg
            .flags
            .iter()
            .any(|f| matches!(f, Flag::Keyword(a) if a.as_ref().eq_ignore_ascii_case(k.as_ref()))),
        SearchKey::Unkeyword(k) => !msg
            .flags
            .iter()
            .any(|f| matches!(f, Flag::Keyword(a) if a.as_ref().eq_ignore_ascii_case(k.as_ref()))),
        _ => false,
    }
}

/// Whether `key` needs the message's bytes.
pub fn needs_body(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().any(needs_body),
        SearchKey::Or(a, b) => needs_body(a) || needs_body(b),
        SearchKey::Not(k) => needs_body(k),
        _ => false,
    }
}
