//! Notices to the sender: a failure notice when recipients are given up on, a delay warning
//! when a message has waited longer than `outgoing_mails.delay_warning`. Each is a DSN
//! ([`dsn`]) queued like any other mail, never sent to the null sender.

use super::Manager;
use crate::engine::events::{EventKind, Level};
use crate::engine::queue::spool::{Location, Record, SpoolError};
use crate::engine::queue::{Meta, Rcpt, RcptState, dsn, id_text, now_secs};

impl Manager {
    /// Sends the sender a failure notice (or a delay warning); never for the null sender.
    pub(super) fn notify(&self, meta: Meta, loc: Location, rcpts: Vec<Rcpt>, delayed: bool) {
        if meta.from.is_empty() {
            self.log(
                Level::Info,
                meta.id,
                "no failure notice: the sender is the null sender <>".into(),
            );
            return;
        }
        let cfg = self.cfg.clone();
        let queue = self.queue.clone();
        let spool = self.spool.clone();
        let events = self.deps.events.clone();
        tokio::spawn(async move {
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
            let kind = if delayed {
                "delay warning"
            } else {
                "failure notice"
            };
            let text = match queue
                .enqueue("", std::slice::from_ref(&meta.from), notice, "local")
                .await
            {
                Ok(nid) => format!("{kind} to <{}> queued as {}", meta.from, id_text(nid)),
                Err(e) => format!("cannot queue the {kind} to <{}>: {e}", meta.from),
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
                !e.meta.warned
                    && e.meta.has_pending()
                    && now.saturating_sub(e.meta.created) >= after.0.as_secs()
            })
            .map(|e| e.meta.id)
            .collect();
        for id in due {
            let e = self.entries.get_mut(&id).expect("listed");
            e.meta.warned = true;
            e.note("delay warning sent".into());
            self.spool.append_nowait(Record::Update(e.meta.clone()));
            let pending: Vec<_> = e
                .meta
                .rcpts
                .iter()
                .filter(|r| r.state == RcptState::Pending)
                .cloned()
                .collect();
            let (meta, loc) = (e.meta.clone(), e.loc);
            self.notify(meta, loc, pending, true);
        }
    }
}
