//! The due index: the messages that may get an attempt (not running, not held, with a
//! recipient pending), grouped by destination and ordered by when they are due. Dispatch reads
//! only the destinations with room and, in each, only the messages it starts, so its cost
//! does not grow with the queue: a backlog of thousands of messages for one relay host that
//! allows two connections costs two look-ups, not a walk over the backlog.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// Index of the messages that may get an attempt. The manager keeps it current: every change
/// of a message's state ends in [`DueIndex::set`] for it.
#[derive(Default)]
pub(super) struct DueIndex {
    /// Per destination ("" for local recipients only), (next try, id) in order.
    by_dest: BTreeMap<Arc<str>, BTreeSet<(u64, u64)>>,
    /// Where each indexed message is: (destination, next try). The destination is the
    /// key's own string, shared: one copy per destination, not one per queued message.
    at: HashMap<u64, (Arc<str>, u64)>,
    /// The destination served first in the last round; the next round starts after it.
    last_first: Option<String>,
}

impl DueIndex {
    /// Puts message `id` under `key` (destination, next try), or takes it out (`None`).
    pub(super) fn set(&mut self, id: u64, key: Option<(String, u64)>) {
        let same = match (self.at.get(&id), &key) {
            (Some((d, t)), Some((dest, next))) => **d == **dest && t == next,
            (None, None) => true,
            _ => false,
        };
        if same {
            return;
        }
        if let Some((dest, t)) = self.at.remove(&id)
            && let Some(set) = self.by_dest.get_mut(&*dest)
        {
            set.remove(&(t, id));
            if set.is_empty() {
                self.by_dest.remove(&*dest);
            }
        }
        if let Some((dest, t)) = key {
            let shared = match self.by_dest.get_key_value(dest.as_str()) {
                Some((k, _)) => k.clone(),
                None => Arc::from(dest),
            };
            self.by_dest
                .entry(shared.clone())
                .or_default()
                .insert((t, id));
            self.at.insert(id, (shared, t));
        }
    }

    /// Empties the index (before it is built again, after a configuration change).
    pub(super) fn clear(&mut self) {
        self.by_dest.clear();
        self.at.clear();
    }

    /// How many messages are indexed.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.at.len()
    }

    /// Where message `id` is indexed (for the debug builds' consistency check).
    #[cfg(debug_assertions)]
    pub(super) fn key(&self, id: u64) -> Option<(String, u64)> {
        self.at.get(&id).map(|(d, t)| (d.to_string(), *t))
    }

    /// How many messages are indexed (for the debug builds' consistency check).
    #[cfg(debug_assertions)]
    pub(super) fn indexed(&self) -> usize {
        self.at.len()
    }

    /// The messages due at `now`, as (id, destination), at most `room` of them. Destinations
    /// take turns (one message each per round, starting after the one that started the last
    /// call), and each gives at most `room_for(dest)` messages; within a destination the
    /// earliest due goes first. `skip(id, dest)` is asked first for each message of a
    /// destination: a message it claims (returns true for) is handed to it instead, costs no
    /// room, and the destination goes on to its next message (dead destinations whose mail
    /// is deferred without a connection).
    pub(super) fn take(
        &mut self,
        now: u64,
        mut room: usize,
        mut room_for: impl FnMut(&str) -> usize,
        mut skip: impl FnMut(u64, &str) -> bool,
    ) -> Vec<(u64, String)> {
        // Destinations in turn order: those after the last round's first, then the rest.
        let order: Vec<&Arc<str>> = match &self.last_first {
            Some(last) => {
                let after = self
                    .by_dest
                    .range::<str, _>((
                        std::ops::Bound::Excluded(last.as_str()),
                        std::ops::Bound::Unbounded,
                    ))
                    .map(|(d, _)| d);
                let before = self
                    .by_dest
                    .range::<str, _>((
                        std::ops::Bound::Unbounded,
                        std::ops::Bound::Included(last.as_str()),
                    ))
                    .map(|(d, _)| d);
                after.chain(before).collect()
            }
            None => self.by_dest.keys().collect(),
        };
        // Per destination: an iterator over its due messages and the room it has.
        let mut lanes: Vec<(&Arc<str>, _, usize)> = order
            .into_iter()
            .map(|d| {
                let due = self.by_dest[d].iter().take_while(move |(t, _)| *t <= now);
                (d, due, room_for(d))
            })
            .collect();
        let mut out = Vec::new();
        let mut first = None;
        while room > 0 && !lanes.is_empty() {
            lanes.retain_mut(|(dest, due, left)| {
                if room == 0 {
                    return true;
                }
                loop {
                    let Some(&(_, id)) = due.next() else {
                        return false;
                    };
                    if skip(id, dest) {
                        continue;
                    }
                    if *left == 0 {
                        return false;
                    }
                    *left -= 1;
                    room -= 1;
                    first.get_or_insert_with(|| dest.to_string());
                    out.push((id, dest.to_string()));
                    return *left > 0;
                }
            });
        }
        if first.is_some() {
            self.last_first = first;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(items: &[(u64, &str, u64)]) -> DueIndex {
        let mut ix = DueIndex::default();
        for &(id, dest, t) in items {
            ix.set(id, Some((dest.into(), t)));
        }
        ix
    }

    #[test]
    fn only_due_messages_within_each_destinations_room() {
        let mut ix = index(&[
            (1, "a", 10),
            (2, "a", 11),
            (3, "a", 12),
            (4, "b", 10),
            (5, "b", 99),
        ]);
        let got = ix.take(20, 10, |d| if d == "a" { 2 } else { 5 }, |_, _| false);
        let mut ids: Vec<u64> = got.iter().map(|(id, _)| *id).collect();
        ids.sort();
        assert_eq!(ids, [1, 2, 4], "a has room for two; 5 is not due");
    }

    #[test]
    fn destinations_take_turns_when_room_is_short() {
        let mut ix = index(&[
            (1, "a", 1),
            (2, "a", 2),
            (3, "a", 3),
            (4, "b", 5),
            (5, "c", 9),
        ]);
        let got: Vec<u64> = ix
            .take(10, 3, |_| 10, |_, _| false)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(got, [1, 4, 5], "one each before a second for anyone");
        // The next round starts with the destination after the one that started this one.
        for id in got {
            ix.set(id, None);
        }
        let next: Vec<String> = ix
            .take(10, 1, |_| 10, |_, _| false)
            .into_iter()
            .map(|(_, d)| d)
            .collect();
        assert_eq!(next, ["a"], "b and c have nothing left; a again");
    }

    #[test]
    fn skipped_messages_cost_no_room_and_moving_a_message_reindexes_it() {
        let mut ix = index(&[(1, "dead", 1), (2, "dead", 2), (3, "live", 3)]);
        let mut skipped = Vec::new();
        let got = ix.take(
            10,
            1,
            |_| 5,
            |id, d| {
                if d == "dead" {
                    skipped.push(id);
                    true
                } else {
                    false
                }
            },
        );
        assert_eq!(got, [(3, "live".to_string())]);
        assert_eq!(skipped, [1, 2]);
        // Rescheduled: no longer due at 10.
        ix.set(1, Some(("dead".into(), 100)));
        ix.set(2, None);
        assert_eq!(ix.len(), 2);
        let got = ix.take(10, 5, |_| 5, |_, _| false);
        assert_eq!(got, [(3, "live".to_string())]);
    }
}
