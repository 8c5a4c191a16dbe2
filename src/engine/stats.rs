//! Counters behind the status strip: sessions open per listener and mails handled.

use std::sync::atomic::{AtomicU64, Ordering};

/// Engine-wide counters (since start).
#[derive(Debug, Default)]
pub struct Stats {
    /// Messages accepted and written to local mailboxes (one per recipient).
    local_deliveries: AtomicU64,
    /// Messages accepted (one per transaction).
    messages_accepted: AtomicU64,
}

/// A copy of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Mailbox copies written.
    pub local_deliveries: u64,
    /// Messages accepted.
    pub messages_accepted: u64,
}

impl Stats {
    /// Records a message written to `copies` local mailboxes.
    pub fn delivered_local(&self, copies: usize) {
        self.messages_accepted.fetch_add(1, Ordering::Relaxed);
        self.local_deliveries
            .fetch_add(copies as u64, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            local_deliveries: self.local_deliveries.load(Ordering::Relaxed),
            messages_accepted: self.messages_accepted.load(Ordering::Relaxed),
        }
    }
}
