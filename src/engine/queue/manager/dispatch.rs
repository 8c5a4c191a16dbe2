//! Dispatch: which due messages get an attempt now, read from the due index ([`super::due`]).
//! Destinations take turns, earliest due first within each; no destination gets more
//! attempts at once than its connection limit (mail for a slow or dead destination
//! cannot take every slot from the others), and a destination where no host answered is
//! left alone for a few minutes (RFC 5321 4.5.4.1): its mail is deferred without a
//! connection, counted as an attempt so the give-up still comes on time.

use super::attempt::Attempt;
use super::{Done, Manager};
use crate::engine::config::Config;
use crate::engine::delivery::{DeliveryCtx, RcptStatus};
use crate::engine::queue::{Meta, RcptState, now_secs};
use std::collections::HashMap;
use std::time::Duration;

impl Manager {
    /// Starts attempts for the due messages, within the limits. Reads the due index (see
    /// [`super::due`]), never the whole queue.
    pub(super) fn dispatch(&mut self) {
        self.refresh_config();
        let Some(resolver) = self.resolver.clone() else {
            return;
        };
        let max_in_flight = (self.cfg.outgoing_mails.max_connections as usize) * 4;
        if self.in_flight >= max_in_flight {
            return;
        }
        let now = now_secs();
        // Destinations take turns, and none gets more attempts at once than its connection
        // limit: mail for a slow or dead destination cannot take every slot from the others.
        let per_dest = self.cfg.outgoing_mails.max_connections_per_domain.max(1) as usize;
        let room = max_in_flight - self.in_flight;
        let mut suspended: Vec<(u64, String)> = Vec::new();
        self.dead.retain(|_, (until, _)| *until > now);
        let (busy, dead, entries, cfg) = (&self.busy, &self.dead, &self.entries, &self.cfg);
        let due = self.due.take(
            now,
            room,
            |dest| {
                if dest.is_empty() {
                    usize::MAX
                } else {
                    per_dest.saturating_sub(busy.get(dest).copied().unwrap_or(0))
                }
            },
            |id, dest| {
                if !dead.contains_key(dest) {
                    return false;
                }
                let why = entries
                    .get(&id)
                    .and_then(|e| suspended_because(cfg, dead, e.meta(), now));
                why.map(|why| suspended.push((id, why))).is_some()
            },
        );
        for (id, dest) in due {
            let e = self.entries.get_mut(&id).expect("due");
            e.in_flight = true;
            *self.busy.entry(dest.clone()).or_default() += 1;
            self.running.insert(id, dest);
            self.in_flight += 1;
            self.dirty = true;
            let job = Attempt {
                ctx: DeliveryCtx {
                    config: self.cfg.clone(),
                    resolver: resolver.clone(),
                    events: self.deps.events.clone(),
                    mx_port: self.cfg.outgoing_mails.mx_port,
                    dkim: self
                        .cfg_seen
                        .as_ref()
                        .map(|c| c.dkim.clone())
                        .unwrap_or_default(),
                    cache: self.conn_cache.clone(),
                },
                meta: e.meta().clone(),
                loc: e.loc,
                spool: self.spool.clone(),
                limits: self.limits.clone(),
                mailroot: self.deps.mailroot.clone(),
            };
            self.reindex(id);
            let mut report = Report {
                id,
                tx: Some(self.done_tx.clone()),
            };
            tokio::spawn(async move {
                let res = job.run().await;
                report.send(res);
            });
        }
        // Mail for a destination that did not answer a moment ago is not sent there again
        // now: the attempt ends at once as that one did, and counts like it.
        for (id, why) in suspended {
            let Some(e) = self.entries.get_mut(&id) else {
                continue;
            };
            let results = (0..e.meta().rcpts.len())
                .filter(|&i| e.meta().rcpts[i].state == RcptState::Pending)
                .map(|i| (i, RcptStatus::Temporary(why.clone())))
                .collect();
            e.in_flight = true;
            self.in_flight += 1;
            self.finish(id, results);
        }
    }

    /// Puts message `id` in the due index as its state now says (or takes it out: running,
    /// held, nothing pending, gone).
    pub(super) fn reindex(&mut self, id: u64) {
        let key = self.entries.get(&id).and_then(|e| {
            (!e.in_flight && !e.meta().held && e.meta().has_pending())
                .then(|| (destination(&self.cfg, e.meta()), e.meta().next_try))
        });
        self.due.set(id, key);
    }

    /// Debug builds (the tests) check at each tick that the due index says what the
    /// messages say: a change of state that forgot [`Manager::reindex`] would leave a message
    /// never tried again.
    #[cfg(debug_assertions)]
    pub(super) fn check_due_index(&self) {
        let mut expected = 0;
        for (id, e) in &self.entries {
            let key = (!e.in_flight && !e.meta().held && e.meta().has_pending())
                .then(|| (destination(&self.cfg, e.meta()), e.meta().next_try));
            expected += usize::from(key.is_some());
            assert_eq!(self.due.key(*id), key, "due index of {id:x}");
        }
        assert_eq!(self.due.indexed(), expected, "due index size");
    }

    /// Builds the due index again from every message (at start and after a configuration
    /// change, which can change destinations).
    pub(super) fn reindex_all(&mut self) {
        self.due.clear();
        let ids: Vec<u64> = self.entries.keys().copied().collect();
        for id in ids {
            self.reindex(id);
        }
    }

    /// Remembers a destination where no host answered (every recipient got `4.4.1`, RFC
    /// 3463's "no answer from host") for [`DEAD_FOR`] at most, and forgets it once one does.
    pub(super) fn remember(&mut self, dest: String, results: &[(usize, RcptStatus)]) {
        if dest.is_empty() || results.is_empty() {
            return;
        }
        let unanswered = results
            .iter()
            .all(|(_, s)| matches!(s, RcptStatus::Temporary(t) if t.starts_with("4.4.1 ")));
        if !unanswered {
            self.dead.remove(&dest);
            return;
        }
        let error = match &results[0].1 {
            RcptStatus::Temporary(t) => t.clone(),
            _ => String::new(),
        };
        let hold = DEAD_FOR
            .min(self.cfg.outgoing_mails.resend_delay.0)
            .as_secs()
            .max(1);
        self.dead.insert(dest, (now_secs() + hold, error));
    }
}

/// Why a message is not tried now: every destination of its pending recipients is one where
/// no host answered a moment ago (`dead`: destination → until when, the error).
fn suspended_because(
    cfg: &Config,
    dead: &HashMap<String, (u64, String)>,
    meta: &Meta,
    now: u64,
) -> Option<String> {
    let mut why = None;
    for r in meta.rcpts.iter().filter(|r| r.state == RcptState::Pending) {
        let dest = rcpt_destination(cfg, &r.addr)?;
        let (until, error) = dead.get(&dest).filter(|(u, _)| *u > now)?;
        why = Some(format!(
            "4.4.1 delivery to {dest} suspended for {} s: {}",
            until - now,
            error.trim_start_matches("4.4.1 ")
        ));
    }
    why
}

/// How long a destination where no host answered is left alone (at most the re-send delay).
const DEAD_FOR: Duration = Duration::from_secs(300);

/// The destination of one recipient: "relay" in Relay mode, else its domain; `None` for a
/// local recipient.
pub(super) fn rcpt_destination(cfg: &Config, addr: &str) -> Option<String> {
    let domain = addr.rsplit_once('@')?.1.to_ascii_lowercase();
    if cfg.is_local_domain(&domain) {
        None
    } else if cfg.outgoing_mails.mode == crate::engine::config::DeliveryMode::Relay {
        Some("relay".into())
    } else {
        Some(domain)
    }
}

/// The destination a message's next attempt goes to, for the per-destination limit: the
/// relay host in Relay mode, else the domain of its first pending recipient ("" for local
/// recipients only).
fn destination(cfg: &Config, meta: &Meta) -> String {
    meta.rcpts
        .iter()
        .filter(|r| r.state == RcptState::Pending)
        .find_map(|r| rcpt_destination(cfg, &r.addr))
        .unwrap_or_default()
}

/// Reports an attempt's outcome to the manager, and when the attempt panicked (or its task was
/// dropped) reports it with no status, so its recipients stay pending for the next try
/// instead of the message staying in flight.
struct Report {
    id: u64,
    tx: Option<tokio::sync::mpsc::UnboundedSender<Done>>,
}

impl Report {
    fn send(&mut self, res: Vec<(usize, RcptStatus)>) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Done::Attempt(self.id, res));
        }
    }
}

impl Drop for Report {
    fn drop(&mut self) {
        self.send(Vec::new());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_that_ends_without_its_outcome_is_reported_with_none() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut sent = Report {
            id: 7,
            tx: Some(tx.clone()),
        };
        sent.send(vec![(0, RcptStatus::Delivered("250 ok".into()))]);
        drop(sent);
        drop(Report {
            id: 8,
            tx: Some(tx),
        });
        match rx.try_recv() {
            Ok(Done::Attempt(7, r)) => assert_eq!(r.len(), 1),
            _ => panic!("the outcome first"),
        }
        match rx.try_recv() {
            Ok(Done::Attempt(8, r)) => assert!(r.is_empty()),
            _ => panic!("a dropped report says so, with no status"),
        }
        assert!(rx.try_recv().is_err(), "one report each");
    }
}
