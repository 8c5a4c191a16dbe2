//! The queue commands' rules, written once: which messages a [`Target`] selects, and what
//! retry, delete (with or without a failure notice), hold and release do to a message and
//! record in the spool. The manager
//! applies them to the live queue; `control::offline` applies them to the spool when no server
//! runs. Pure functions: no I/O, no clock.

use super::spool::Record;
use super::{Meta, QueueCommand, QueueEntry, RcptState, Target};

/// The reason a recipient given up by Delete with notice carries (into the failure notice).
pub const DELETED: &str = "deleted from the queue by the administrator";

impl QueueCommand {
    /// The messages the command is about.
    pub fn target(&self) -> &Target {
        match self {
            QueueCommand::Retry(t)
            | QueueCommand::Delete(t)
            | QueueCommand::DeleteNotify(t)
            | QueueCommand::Hold(t)
            | QueueCommand::Release(t) => t,
        }
    }

    /// What the command did to a message, for its history and the log.
    pub fn done_text(&self) -> &'static str {
        match self {
            QueueCommand::Retry(_) => "retry requested",
            QueueCommand::Delete(_) => "deleted by the administrator (no failure notice)",
            QueueCommand::DeleteNotify(_) => {
                "deleted by the administrator (a failure notice goes to the sender)"
            }
            QueueCommand::Hold(_) => "put on hold",
            QueueCommand::Release(_) => "released",
        }
    }

    /// Applies the command to one selected message at `now` (unix seconds): retry makes it
    /// due now, hold stops it being tried, release undoes hold and makes it due now, delete
    /// removes it without a failure notice. Delete with notice gives up every recipient not
    /// yet delivered (failed, its notice owed, the reason [`DELETED`]): the message then leaves
    /// the queue the way a given-up one does, once its failure notice is synced (by the
    /// manager, or after the next start when applied offline). Other commands never change
    /// recipient states. Returns the spool record that makes the change durable (a
    /// [`Record::Remove`] means the message leaves the queue).
    pub fn apply(&self, meta: &mut Meta, now: u64) -> Record {
        match self {
            QueueCommand::Delete(_) => return Record::Remove(meta.id),
            QueueCommand::DeleteNotify(_) => {
                for r in meta.rcpts.iter_mut() {
                    if r.state == RcptState::Pending {
                        r.state = RcptState::Failed;
                        r.notified = false;
                        r.last_error = if r.last_error.is_empty() {
                            DELETED.into()
                        } else {
                            format!("{DELETED}; last error: {}", r.last_error).into()
                        };
                    }
                }
                meta.held = false;
            }
            QueueCommand::Retry(_) => meta.next_try = now,
            QueueCommand::Hold(_) => meta.held = true,
            QueueCommand::Release(_) => {
                meta.held = false;
                meta.next_try = now;
            }
        }
        Record::Update(meta.clone())
    }
}

impl Target {
    /// Whether the message `id` is one this target is about.
    pub fn selects(&self, id: u64) -> bool {
        match self {
            Target::All => true,
            Target::Id(x) => *x == id,
        }
    }

    /// The ids among `ids` this target selects, in their order.
    pub fn select(&self, ids: impl IntoIterator<Item = u64>) -> Vec<u64> {
        ids.into_iter().filter(|&id| self.selects(id)).collect()
    }
}

impl QueueEntry {
    /// A message as listed when no delivery runs and no history is known (the spool read
    /// offline).
    pub fn idle(meta: Meta) -> QueueEntry {
        QueueEntry {
            meta,
            in_flight: false,
            history: Box::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::queue::test_meta as meta;

    #[test]
    fn targets_select_one_or_all() {
        assert_eq!(Target::All.select([3, 1, 2]), [3, 1, 2]);
        assert_eq!(Target::Id(1).select([3, 1, 2]), [1]);
        assert!(Target::Id(9).select([3, 1, 2]).is_empty());
    }

    #[test]
    fn commands_change_schedule_and_hold_only() {
        let t = Target::All;
        let mut m = meta(7);
        let r = QueueCommand::Hold(t.clone()).apply(&mut m, 100);
        assert!(m.held && m.next_try == 500);
        assert!(matches!(r, Record::Update(ref x) if *x == m));
        QueueCommand::Retry(t.clone()).apply(&mut m, 100);
        assert!(m.held && m.next_try == 100, "retry keeps hold");
        QueueCommand::Release(t.clone()).apply(&mut m, 200);
        assert!(!m.held && m.next_try == 200);
        assert_eq!(m.rcpts, meta(7).rcpts, "recipient states untouched");
        assert_eq!(m.attempts, 2);
        let before = m.clone();
        assert!(matches!(
            QueueCommand::Delete(t).apply(&mut m, 300),
            Record::Remove(7)
        ));
        assert_eq!(m, before);
    }

    #[test]
    fn delete_with_notice_gives_up_what_is_pending_only() {
        let mut m = meta(7);
        m.held = true;
        m.rcpts.push(crate::engine::queue::Rcpt {
            addr: "done@d.test".into(),
            state: RcptState::Delivered,
            last_error: "".into(),
            notified: false,
        });
        let r = QueueCommand::DeleteNotify(Target::Id(7)).apply(&mut m, 100);
        assert!(matches!(r, Record::Update(ref x) if *x == m));
        assert_eq!(m.rcpts[0].state, RcptState::Failed);
        assert!(!m.rcpts[0].notified, "its notice is owed");
        assert_eq!(
            &*m.rcpts[0].last_error,
            format!("{DELETED}; last error: 451 later")
        );
        assert_eq!(m.rcpts[1].state, RcptState::Delivered);
        assert!(!m.held && !m.has_pending());
    }
}
