//! The Queued Mails pane: the outgoing queue as a sortable table (id, age, from, to, size,
//! attempts, next try, last error) read from the queue's published snapshot, with Retry Now,
//! Hold, Release and Delete for the selected mail, and a view of its recipients, delivery
//! history and content. Commands go to the queue without waiting; the content is fetched by a
//! task that reports back over a channel, so the UI never blocks.

use crate::engine::queue::{Queue, QueueCommand, QueueEntry, RcptState, Target, id_text, now_secs};
use eframe::egui;
use std::sync::mpsc;

/// Column the table is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    /// Queue id (= arrival order).
    Id,
    /// Envelope sender.
    From,
    /// First recipient.
    To,
    /// Size.
    Size,
    /// Attempts made.
    Attempts,
    /// Next try.
    NextTry,
}

/// Rows shown at most (the rest are counted).
const MAX_ROWS: usize = 2000;

/// The pane's state.
pub struct QueuePane {
    /// Sort column and direction.
    sort: (SortBy, bool),
    /// The selected mail.
    selected: Option<u64>,
    /// Content of the selected mail, once fetched: (id, text).
    content: Option<(u64, String)>,
    /// Fetched contents arrive here.
    content_rx: mpsc::Receiver<(u64, String)>,
    /// Given to fetch tasks.
    content_tx: mpsc::Sender<(u64, String)>,
}

impl Default for QueuePane {
    fn default() -> Self {
        let (content_tx, content_rx) = mpsc::channel();
        QueuePane {
            sort: (SortBy::Id, true),
            selected: None,
            content: None,
            content_rx,
            content_tx,
        }
    }
}

/// "5s", "3m", "2h", "4d".
fn span(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        s => format!("{}d{}h", s / 86400, s % 86400 / 3600),
    }
}

/// Sorts entries by a column.
pub fn sort_entries(entries: &mut [&QueueEntry], by: SortBy, ascending: bool) {
    entries.sort_by(|a, b| {
        let (a, b) = (&a.meta, &b.meta);
        let o = match by {
            SortBy::Id => a.id.cmp(&b.id),
            SortBy::From => a.from.cmp(&b.from),
            SortBy::To => a
                .rcpts
                .first()
                .map(|r| &r.addr)
                .cmp(&b.rcpts.first().map(|r| &r.addr)),
            SortBy::Size => a.size.cmp(&b.size),
            SortBy::Attempts => a.attempts.cmp(&b.attempts),
            SortBy::NextTry => (a.held, a.next_try).cmp(&(b.held, b.next_try)),
        };
        if ascending { o } else { o.reverse() }
    });
}

impl QueuePane {
    /// Shows the pane for `queue` (None: the services are stopped). `rt` runs content fetches.
    pub fn ui(&mut self, ui: &mut egui::Ui, queue: Option<&Queue>, rt: &tokio::runtime::Handle) {
        while let Ok(c) = self.content_rx.try_recv() {
            self.content = Some(c);
        }
        let Some(queue) = queue else {
            ui.weak("The services are stopped; the queue is shown while they run (`postern queue list` works meanwhile).");
            return;
        };
        let snapshot = queue.snapshot();
        let mut entries: Vec<&QueueEntry> = snapshot.iter().collect();
        sort_entries(&mut entries, self.sort.0, self.sort.1);
        if self
            .selected
            .is_some_and(|id| !entries.iter().any(|e| e.meta.id == id))
        {
            self.selected = None;
        }
        let selected = self
            .selected
            .and_then(|id| entries.iter().find(|e| e.meta.id == id).copied());

        ui.horizontal(|ui| {
            ui.label(format!("{} mail(s) queued", entries.len()));
            ui.separator();
            let one = |id: u64| Target::Id(id);
            let sel = selected.map(|e| e.meta.id);
            if ui
                .add_enabled(sel.is_some(), egui::Button::new("Retry Now"))
                .on_hover_text("Try to deliver the selected mail now")
                .on_disabled_hover_text("Select a mail first")
                .clicked()
                && let Some(id) = sel
            {
                queue.command_nowait(QueueCommand::Retry(one(id)));
            }
            let held = selected.is_some_and(|e| e.meta.held);
            if ui
                .add_enabled(sel.is_some() && !held, egui::Button::new("Hold"))
                .on_hover_text("Keep the selected mail in the queue without trying it")
                .clicked()
                && let Some(id) = sel
            {
                queue.command_nowait(QueueCommand::Hold(one(id)));
            }
            if ui
                .add_enabled(held, egui::Button::new("Release"))
                .on_hover_text("Undo Hold: the mail is tried again")
                .clicked()
                && let Some(id) = sel
            {
                queue.command_nowait(QueueCommand::Release(one(id)));
            }
            if ui
                .add_enabled(sel.is_some(), egui::Button::new("Delete"))
                .on_hover_text("Remove the selected mail from the queue, without a failure notice")
                .clicked()
                && let Some(id) = sel
            {
                queue.command_nowait(QueueCommand::Delete(one(id)));
                self.selected = None;
            }
            ui.separator();
            if ui
                .add_enabled(!entries.is_empty(), egui::Button::new("Retry All"))
                .on_hover_text("Try every queued mail now")
                .clicked()
            {
                queue.command_nowait(QueueCommand::Retry(Target::All));
            }
        });
        ui.separator();

        let now = now_secs();
        let detail_h = if selected.is_some() { 200.0 } else { 0.0 };
        egui::ScrollArea::both()
            .id_salt("queue_table")
            .max_height((ui.available_height() - detail_h).max(80.0))
            .auto_shrink([false, true])
            .show(ui, |ui| {
                egui::Grid::new("queue_grid")
                    .striped(true)
                    .num_columns(9)
                    .spacing([14.0, 4.0])
                    .show(ui, |ui| {
                        for (title, by) in [
                            ("Id", Some(SortBy::Id)),
                            ("Age", Some(SortBy::Id)),
                            ("From", Some(SortBy::From)),
                            ("To", Some(SortBy::To)),
                            ("Size", Some(SortBy::Size)),
                            ("Attempts", Some(SortBy::Attempts)),
                            ("Next Try", Some(SortBy::NextTry)),
                            ("Last Error", None),
                        ] {
                            match by {
                                Some(by) => {
                                    let arrow = if self.sort.0 == by && title != "Age" {
                                        if self.sort.1 { " ^" } else { " v" }
                                    } else {
                                        ""
                                    };
                                    if ui
                                        .add(
                                            egui::Button::new(
                                                egui::RichText::new(format!("{title}{arrow}"))
                                                    .strong(),
                                            )
                                            .frame(false),
                                        )
                                        .on_hover_text(format!("Sort by {title}"))
                                        .clicked()
                                    {
                                        self.sort = if self.sort.0 == by {
                                            (by, !self.sort.1)
                                        } else {
                                            (by, true)
                                        };
                                    }
                                }
                                None => {
                                    ui.strong(title);
                                }
                            }
                        }
                        ui.end_row();
                        for e in entries.iter().take(MAX_ROWS) {
                            let m = &e.meta;
                            let id = id_text(m.id);
                            if ui
                                .selectable_label(self.selected == Some(m.id), &id)
                                .on_hover_text("Select this mail")
                                .clicked()
                            {
                                self.selected = Some(m.id);
                            }
                            ui.label(span(now.saturating_sub(m.created)));
                            ui.label(if m.from.is_empty() {
                                "<>".to_string()
                            } else {
                                m.from.clone()
                            });
                            let pending: Vec<&str> = m
                                .rcpts
                                .iter()
                                .filter(|r| r.state == RcptState::Pending)
                                .map(|r| r.addr.as_str())
                                .collect();
                            let to = match pending.len() {
                                0 => String::new(),
                                1 => pending[0].to_string(),
                                n => format!("{} (+{})", pending[0], n - 1),
                            };
                            ui.label(to);
                            ui.label(format!("{}", m.size));
                            ui.label(m.attempts.to_string());
                            ui.label(if e.in_flight {
                                "sending now".to_string()
                            } else if m.held {
                                "on hold".to_string()
                            } else if m.next_try <= now {
                                "due".to_string()
                            } else {
                                format!("in {}", span(m.next_try - now))
                            });
                            let err = m
                                .rcpts
                                .iter()
                                .rev()
                                .map(|r| r.last_error.as_str())
                                .find(|s| !s.is_empty())
                                .unwrap_or("");
                            ui.label(err).on_hover_text(err);
                            ui.end_row();
                        }
                    });
                if entries.len() > MAX_ROWS {
                    ui.weak(format!("... and {} more", entries.len() - MAX_ROWS));
                }
            });

        if let Some(e) = selected {
            ui.separator();
            self.details(ui, e, queue, rt);
        }
    }

    fn details(
        &mut self,
        ui: &mut egui::Ui,
        e: &QueueEntry,
        queue: &Queue,
        rt: &tokio::runtime::Handle,
    ) {
        let id = e.meta.id;
        ui.horizontal(|ui| {
            ui.strong(format!("Mail {} from {}", id_text(id), e.meta.client));
            if ui
                .button("Show Message")
                .on_hover_text("Load the message's headers and body")
                .clicked()
            {
                let (q, tx, ctx) = (queue.clone(), self.content_tx.clone(), ui.ctx().clone());
                rt.spawn(async move {
                    let text = match q.show(id).await {
                        Some((_, bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
                        None => "(no longer in the queue)".to_string(),
                    };
                    let _ = tx.send((id, text));
                    ctx.request_repaint();
                });
            }
        });
        egui::ScrollArea::vertical()
            .id_salt("queue_detail")
            .max_height(180.0)
            .show(ui, |ui| {
                for r in &e.meta.rcpts {
                    let state = match r.state {
                        RcptState::Pending => "pending",
                        RcptState::Delivered => "delivered",
                        RcptState::Failed => "failed",
                    };
                    ui.label(format!(
                        "<{}>: {state}{}",
                        r.addr,
                        if r.last_error.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", r.last_error)
                        }
                    ));
                }
                if !e.history.is_empty() {
                    ui.strong("History");
                    for h in &e.history {
                        ui.monospace(h);
                    }
                }
                if let Some((cid, text)) = &self.content
                    && *cid == id
                {
                    let l = ui.strong("Message");
                    let mut shown = text.as_str();
                    ui.add(
                        egui::TextEdit::multiline(&mut shown)
                            .code_editor()
                            .desired_width(f32::INFINITY),
                    )
                    .labelled_by(l.id)
                    .on_hover_text("The message as queued");
                }
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::queue::{Meta, Rcpt};

    fn entry(id: u64, from: &str, size: u64) -> QueueEntry {
        QueueEntry {
            meta: Meta {
                id,
                created: 0,
                from: from.into(),
                rcpts: vec![Rcpt {
                    addr: format!("r{id}@x.test"),
                    state: RcptState::Pending,
                    last_error: String::new(),
                    notified: false,
                }],
                attempts: 0,
                next_try: 0,
                held: false,
                warned: false,
                size,
                client: "127.0.0.1".into(),
            },
            in_flight: false,
            history: vec![],
        }
    }

    #[test]
    fn sorts_by_column_both_ways() {
        let list = [
            entry(1, "b@x", 30),
            entry(2, "a@x", 10),
            entry(3, "c@x", 20),
        ];
        let mut v: Vec<&QueueEntry> = list.iter().collect();
        sort_entries(&mut v, SortBy::From, true);
        assert_eq!(v.iter().map(|e| e.meta.id).collect::<Vec<_>>(), [2, 1, 3]);
        sort_entries(&mut v, SortBy::Size, false);
        assert_eq!(v.iter().map(|e| e.meta.id).collect::<Vec<_>>(), [1, 3, 2]);
        assert_eq!(span(59), "59s");
        assert_eq!(span(3 * 3600 + 120), "3h02m");
    }
}
