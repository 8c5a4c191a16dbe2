//! Compact text for a long queue: the strings of a queued message ([`Text`]: sender,
//! recipients, client, subject, last errors, history lines) are shared, immutable `Arc<str>`,
//! and an [`Interner`] makes equal strings one allocation. A backlog of 400,000 mails from
//! one client to one relay host then holds one copy of the client's address, of the sender,
//! of the recipient and of the error the relay host's absence gave, not 400,000 of each.
//!
//! On disk a `Text` is a JSON string, as `String` was: the spool's format does not change.

use super::{Meta, Rcpt};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Borrow;
use std::collections::HashSet;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// An immutable string, shared by cloning (a pointer, no copy).
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Text(Arc<str>);

impl Text {
    /// The string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `self` and `other` are the same copy (not only equal).
    pub fn same(&self, other: &Text) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text(Arc::from(s))
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text(Arc::from(s))
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        String::deserialize(d).map(Text::from)
    }
}

/// How many distinct strings an interner keeps before it starts afresh. Common values (a
/// client address, a relay host's error) come back at once; rare ones (most subjects) pass
/// through, and the table stays small whatever the queue's length.
const CAPACITY: usize = 4096;

/// Makes equal strings one shared allocation. Bounded: when full, it forgets everything it
/// knows (strings already shared stay shared; later ones start new groups).
#[derive(Default)]
pub struct Interner {
    /// The strings known.
    known: HashSet<Text>,
}

impl Interner {
    /// The shared copy of `s`. A string not known yet is copied (so a copy made on another
    /// thread, by the replay, is not what stays in memory) and becomes known.
    pub fn text(&mut self, s: &str) -> Text {
        if let Some(t) = self.known.get(s) {
            return t.clone();
        }
        if self.known.len() >= CAPACITY {
            self.known = HashSet::new();
        }
        let t = Text::from(s);
        self.known.insert(t.clone());
        t
    }

    /// `meta` with every string shared and the recipient list exactly as long as it is (a
    /// list decoded from JSON has room for four).
    pub fn meta(&mut self, meta: Meta) -> Meta {
        Meta {
            from: self.text(&meta.from),
            client: self.text(&meta.client),
            subject: self.text(&meta.subject),
            rcpts: meta
                .rcpts
                .iter()
                .map(|r| Rcpt {
                    addr: self.text(&r.addr),
                    state: r.state,
                    last_error: self.text(&r.last_error),
                    notified: r.notified,
                })
                .collect(),
            ..meta
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_strings_become_one_allocation_and_the_table_stays_bounded() {
        let mut i = Interner::default();
        let a = i.text("127.0.0.1");
        let b = i.text(&String::from("127.0.0.1"));
        assert!(a.same(&b));
        let m1 = i.meta(crate::engine::queue::test_meta(1));
        let m2 = i.meta(crate::engine::queue::test_meta(2));
        assert!(m1.from.same(&m2.from));
        assert!(m1.client.same(&a));
        assert!(m1.rcpts[0].last_error.same(&m2.rcpts[0].last_error));
        assert_eq!(m1.rcpts.capacity(), 1);
        assert_eq!(m2, crate::engine::queue::test_meta(2));
        for n in 0..2 * CAPACITY {
            i.text(&n.to_string());
        }
        assert!(i.known.len() <= CAPACITY);
        // Still the same text once forgotten.
        assert_eq!(&*i.text("127.0.0.1"), "127.0.0.1");
    }

    #[test]
    fn the_spool_keeps_its_format_strings_are_json_strings_as_before() {
        // A record's state as the version with `String` fields wrote it.
        let old = r#"{"id":1,"created":10,"from":"a@b.test","rcpts":[{"addr":"c@d.test","state":"Pending","last_error":"451 later","notified":false}],"attempts":2,"next_try":500,"held":false,"warned":false,"size":3,"client":"127.0.0.1","subject":"Test"}"#;
        let meta: Meta = serde_json::from_str(old).unwrap();
        assert_eq!(meta, crate::engine::queue::test_meta(1));
        assert_eq!(serde_json::to_string(&meta).unwrap(), old);
        // And one from before the subject and the notice flag were kept.
        let older = r#"{"id":1,"created":10,"from":"","rcpts":[{"addr":"c@d.test","state":"Failed","last_error":"550 no"}],"attempts":1,"next_try":5,"held":false,"warned":false,"size":3,"client":"local"}"#;
        let meta: Meta = serde_json::from_str(older).unwrap();
        assert!(meta.from.is_empty() && meta.subject.is_empty());
        assert_eq!(meta.rcpts[0].last_error, "550 no");
    }
}
