//! Spool trimming: deletes the segments no live message needs, and moves the messages of the
//! oldest segment to the active one only when that frees at least as much garbage as it
//! rewrites (all in one batch, one sync), so a queue of long-lived mail is never rewritten
//! over and over. The manager only hands the moves to the spool writer; a task waits for the
//! sync and reports the new locations back ([`Done::Relocated`]), so dispatch goes on
//! meanwhile.

use super::{Done, Manager};
use crate::engine::queue::spool::{Content, Location, Record};
use std::collections::BTreeMap;

impl Manager {
    /// Deletes spool segments no live message needs. The oldest segment with live messages
    /// pins every segment after it; its messages are moved to the active segment (all in one
    /// write and one sync) only when that frees at least as much garbage as it rewrites, so a
    /// queue of long-lived mail is never rewritten over and over.
    pub(super) fn trim(&mut self) {
        if self.unreplayed {
            return;
        }
        let active = self.spool.active_segment();
        let mut live: BTreeMap<u64, u64> = BTreeMap::new();
        for e in self.entries.values() {
            *live.entry(e.loc.seg).or_default() += e.loc.len;
        }
        let mut segs = live.iter();
        if let Some((&old, &old_live)) = segs.next()
            && old + 1 < active
        {
            let next = segs.next().map_or(active, |(&s, _)| s.min(active));
            let freed: u64 = (old..next).filter_map(|s| self.spool.segment_len(s)).sum();
            let busy = self
                .entries
                .values()
                .any(|e| e.loc.seg == old && e.in_flight);
            if !busy && !self.relocating && worth_relocating(freed, old_live) {
                self.relocate(old);
            }
        }
        let keep_from = self
            .entries
            .values()
            .map(|e| e.loc.seg)
            .min()
            .unwrap_or(active)
            .min(active.saturating_sub(1));
        self.spool.trim_below(keep_from);
    }

    /// Moves every message of segment `seg` to the active segment. The records are handed
    /// to the spool writer here, together (one batch, one sync), and ordered before any
    /// update or removal the manager writes after this call, so replay always finds the
    /// last word on each message. A task waits for the sync and reports back; until then the
    /// messages are read where they were, which stays on disk.
    fn relocate(&mut self, seg: u64) {
        let pending: Vec<_> = self
            .entries
            .values()
            .filter(|e| e.loc.seg == seg)
            .map(|e| {
                let rec = Record::Put(e.meta().clone(), Content::Moved(e.loc));
                (e.meta().id, e.loc, self.spool.send(rec))
            })
            .collect();
        self.relocating = true;
        let done = self.done_tx.clone();
        tokio::spawn(async move {
            let mut moved = Vec::with_capacity(pending.len());
            for (id, old, written) in pending {
                if let Ok(Some(new)) = written.await {
                    moved.push((id, old, new));
                }
            }
            let _ = done.send(Done::Relocated(moved));
        });
    }

    /// A relocation is on disk: messages still where they were are read from their new
    /// place. (A message finished meanwhile is gone: its removal was written after its move.)
    pub(super) fn relocated(&mut self, moved: Vec<(u64, Location, Location)>) {
        self.relocating = false;
        for (id, old, new) in moved {
            if let Some(e) = self.entries.get_mut(&id)
                && e.loc == old
            {
                e.loc = new;
            }
        }
    }
}

/// Whether moving the live messages of the oldest segment is worth it: moving `live` octets
/// lets `freed` octets of segments go. Worth it when the garbage freed is at least what is
/// rewritten, and at least [`MIN_RECLAIM`].
fn worth_relocating(freed: u64, live: u64) -> bool {
    let garbage = freed.saturating_sub(live);
    garbage >= live && garbage >= MIN_RECLAIM
}

/// The least garbage a relocation must free.
const MIN_RECLAIM: u64 = 8 * 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relocation_only_when_it_frees_more_than_it_rewrites() {
        const MIB: u64 = 1024 * 1024;
        // A segment full of long-lived mail: moving it frees nothing.
        assert!(!worth_relocating(32 * MIB, 32 * MIB));
        // Two segments of garbage behind a few live messages: worth it.
        assert!(worth_relocating(64 * MIB, MIB));
        // Half garbage: as much freed as rewritten.
        assert!(worth_relocating(64 * MIB, 16 * MIB));
        assert!(!worth_relocating(64 * MIB, 33 * MIB));
        // Too little to bother.
        assert!(!worth_relocating(4 * MIB, 0));
    }
}
