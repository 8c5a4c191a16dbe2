//! Notices to the sender: a failure notice for the recipients given up on, sent after each
//! delivery pass (not when the whole message is done) and made durable before the original may
//! leave the queue; a delay warning when a message has waited longer than
//! `outgoing_mails.delay_warning`. Each is a DSN ([`dsn`]) queued like any other mail, never
//! sent to the null sender.
//!
//! A failed recipient keeps `notified: false` until its notice is synced in the spool; the
//! message stays queued meanwhile. A notice that cannot be queued (a full disk) is tried again
//! after [`NOTICE_RETRY`]; after a crash, replay finds the notices still owed and sends them.

use super::{Done, Manager};
use crate::engine::config::Config;
use crate::engine::events::{EventKind, Level};
use crate::engine::queue::spool::{Location, Record, Spool, SpoolError};
use crate::engine::queue::{Meta, Queue, Rcpt, RcptState, dsn, id_text, now_secs};
use std::sync::Arc;
use std::time::Duration;

/// How long a failure notice that could not be queued waits before it is tried again.
pub(super) const NOTICE_RETRY: Duration = Duration::from_secs(15);

/// Builds a notice about `rcpts` of the message at `loc` and queues it to the sender; returns
/// the notice's queue id once it is synced.
async fn queue_notice(
    queue: Queue,
    spool: Spool,
    cfg: Arc<Config>,
    meta: Meta,
    loc: Location,
    rcpts: Vec<Rcpt>,
    delayed: bool,
) -> Result<u64, SpoolError> {
    // Only the original's header section goes into the notice: read no more.
    let head = move || -> Result<Vec<u8>, SpoolError> {
        Ok(spool.body(loc)?.head(dsn::ORIGINAL_HEAD)?.into_owned())
    };
    let original = tokio::task::spawn_blocking(head)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let notice = dsn::notice(&cfg, &meta, &rcpts, &original, delayed);
    queue
        .enqueue("", &[meta.from.to_string()], notice, "local")
        .await
}

impl Manager {
    /// Queues the failure notice owed for message `id` (its failed recipients whose notice is
    /// not queued yet), unless one is being queued or a failed try is waiting. For the null
    /// sender no notice is due: the recipients are marked notified at once. Returns whether
    /// anything changed.
    pub(super) fn send_owed_notice(&mut self, id: u64) -> bool {
        let now = now_secs();
        let Some(e) = self.entries.get_mut(&id) else {
            self.owed.remove(&id);
            return false;
        };
        let owed: Vec<usize> = (0..e.meta().rcpts.len())
            .filter(|&i| {
                let r = &e.meta().rcpts[i];
                r.state == RcptState::Failed && !r.notified
            })
            .collect();
        if owed.is_empty() {
            self.owed.remove(&id);
            return false;
        }
        self.owed.insert(id);
        if e.notice_in_flight || e.notice_after > now {
            return false;
        }
        if e.meta().from.is_empty() {
            for &i in &owed {
                e.meta_mut().rcpts[i].notified = true;
            }
            e.note(
                &mut self.texts,
                "no failure notice: the sender is the null sender <>",
            );
            self.owed.remove(&id);
            self.log(
                Level::Info,
                id,
                "no failure notice: the sender is the null sender <>".into(),
            );
            return true;
        }
        e.notice_in_flight = true;
        let rcpts = owed.iter().map(|&i| e.meta().rcpts[i].clone()).collect();
        let job = queue_notice(
            self.queue.clone(),
            self.spool.clone(),
            self.cfg.clone(),
            e.meta().clone(),
            e.loc,
            rcpts,
            false,
        );
        let tx = self.done_tx.clone();
        self.notices.spawn(async move {
            let result = job.await.map_err(|e| e.to_string());
            let _ = tx.send(Done::Notice(id, owed, result));
        });
        false
    }

    /// A failure notice was queued (or could not be): marks its recipients notified, or
    /// schedules another try.
    pub(super) fn notice_done(&mut self, id: u64, owed: Vec<usize>, result: Result<u64, String>) {
        let Some(e) = self.entries.get_mut(&id) else {
            return;
        };
        e.notice_in_flight = false;
        let from = e.meta().from.clone();
        let text = match result {
            Ok(nid) => {
                for i in owed {
                    if let Some(r) = e.meta_mut().rcpts.get_mut(i) {
                        r.notified = true;
                    }
                }
                format!("failure notice to <{from}> queued as {}", id_text(nid))
            }
            Err(why) => {
                e.notice_after = now_secs() + NOTICE_RETRY.as_secs();
                format!(
                    "cannot queue the failure notice to <{from}>: {why}; the message stays \
                     queued and the notice is tried again in {} s",
                    NOTICE_RETRY.as_secs()
                )
            }
        };
        e.note(&mut self.texts, &text);
        let level = if e.notice_after > now_secs() {
            Level::Warn
        } else {
            Level::Info
        };
        self.deps
            .events
            .emit(level, Some(&id_text(id)), EventKind::Delivery { text });
        self.settle(id, true);
    }

    /// Sends a delay warning. Fire and forget: a warning lost in a crash is not sent again
    /// (the message itself is not at stake, and its failure notice is tracked).
    fn warn(&self, meta: Meta, loc: Location, rcpts: Vec<Rcpt>) {
        if meta.from.is_empty() {
            return;
        }
        let job = queue_notice(
            self.queue.clone(),
            self.spool.clone(),
            self.cfg.clone(),
            meta.clone(),
            loc,
            rcpts,
            true,
        );
        let events = self.deps.events.clone();
        tokio::spawn(async move {
            let text = match job.await {
                Ok(nid) => format!(
                    "delay warning to <{}> queued as {}",
                    meta.from,
                    id_text(nid)
                ),
                Err(e) => format!("cannot queue the delay warning to <{}>: {e}", meta.from),
            };
            events.emit(
                Level::Info,
                Some(&id_text(meta.id)),
                EventKind::Delivery { text },
            );
        });
    }

    /// Delay warnings for messages waiting longer than `outgoing_mails.delay_warning`.
    pub(super) fn warn_delayed(&mut self) {
        let Some(after) = self.cfg.outgoing_mails.delay_warning else {
            return;
        };
        let now = now_secs();
        let due: Vec<u64> = self
            .entries
            .values()
            .filter(|e| {
                !e.meta().warned
                    && e.meta().has_pending()
                    && now.saturating_sub(e.meta().created) >= after.0.as_secs()
            })
            .map(|e| e.meta().id)
            .collect();
        for id in due {
            let e = self.entries.get_mut(&id).expect("listed");
            e.meta_mut().warned = true;
            e.note(&mut self.texts, "delay warning sent");
            self.spool.append_nowait(Record::Update(e.meta().clone()));
            let pending: Vec<_> = e
                .meta()
                .rcpts
                .iter()
                .filter(|r| r.state == RcptState::Pending)
                .cloned()
                .collect();
            let (meta, loc) = (e.meta().clone(), e.loc);
            self.warn(meta, loc, pending);
        }
    }
}
