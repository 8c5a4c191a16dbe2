//! The blocks in force, for the administrator: listed (the Abuse & Spam dialog, `postern
//! access blocked`) and lifted (Unblock, `postern access unblock IP`), each lift logged on the
//! Security channel. The tables themselves are [`super::Abuse`]'s.

use super::Gate;
use crate::engine::access::abuse::BlockInfo;
use crate::engine::current::Current;
use crate::engine::events::{EventKind, Level};
use std::net::IpAddr;

impl Gate {
    /// The blocks in force now, oldest first.
    pub fn blocks(&self, cur: &Current) -> Vec<BlockInfo> {
        self.abuse.blocks(&cur.config)
    }

    /// Lifts the block of `ip` (its network, for IPv6) and clears its failure counts, so the
    /// client may log in again at once; `by` says who asked, for the log. `None` when no
    /// block of that client was in force.
    pub fn unblock(&self, cur: &Current, ip: IpAddr, by: &str) -> Option<BlockInfo> {
        let lifted = self.abuse.unblock(ip, &cur.config)?;
        self.log(
            Level::Info,
            None,
            EventKind::ClientUnblocked {
                client: lifted.client(),
                by: by.into(),
                reason: lifted.reason.clone(),
            },
        );
        Some(lifted)
    }
}
