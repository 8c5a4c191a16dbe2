//! The Queued Mails pane: the outgoing queue as a sortable table (id, age, from, to, subject,
//! size, attempts, next try, last error, the whole error on hover) with Retry Now, Hold,
//! Release and Delete for the selected mail, and below it the selected mail's details
//! ([`super::queue_detail`], sized to its content). While the services run the list is the
//! queue's published snapshot and commands go to it without waiting; while they are stopped
//! the pane reads the spool as `postern queue` does ([`crate::engine::control::offline`]),
//! on a blocking task that reports back over a channel, so the UI never blocks.

use super::queue_detail::Details;
use crate::engine::control::offline::{self, OfflineError};
use crate::engine::control::{Request, Response};
use crate::engine::queue::{
    Queue, QueueCommand, QueueEntry, RcptState, Snapshot, Target, id_text, now_secs,
};
use eframe::egui;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};

/// What the pane says when the queue is empty.
pub const EMPTY: &str = "No mail in the queue. Mail for other domains waits here when it \
    cannot be delivered at once.";

/// Column the table is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    /// Queue id (= arrival order).
    Id,
    /// Envelope sender.
    From,
    /// First recipient.
    To,
    /// Subject.
    Subject,
    /// Size.
    Size,
    /// Attempts made.
    Attempts,
    /// Next try.
    NextTry,
}

/// Rows shown at most (the rest are counted).
const MAX_ROWS: usize = 2000;

/// Characters of the last error shown in its column (all of it on hover and in the details).
const ERROR_CHARS: usize = 60;

/// Where the pane's list and commands go.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    /// The running queue.
    Live(&'a Queue),
    /// The spool in this data directory, the services being stopped.
    Offline(&'a Path),
    /// The services are starting or stopping: nothing to read now.
    Busy,
}

/// What a blocking spool task reports.
enum Offline {
    /// The list as read from the spool.
    List(Result<Vec<QueueEntry>, String>),
    /// A command ran on the spool (how many mails it touched).
    Done(Result<usize, String>),
}

/// The pane's state.
pub struct QueuePane {
    /// Sort column and direction.
    sort: (SortBy, bool),
    /// The selected mail.
    selected: Option<u64>,
    /// The selected mail's details (content fetches, the delete confirmation).
    details: Details,
    /// The list last read from the spool while the services are stopped.
    offline: Option<Snapshot>,
    /// The spool must be read again (stopped since, or a command ran on it).
    offline_stale: bool,
    /// A spool task is running.
    offline_busy: bool,
    /// The last spool task's error.
    offline_error: Option<String>,
    /// Spool tasks report here.
    offline_rx: mpsc::Receiver<Offline>,
    /// Given to spool tasks.
    offline_tx: mpsc::Sender<Offline>,
}

impl Default for QueuePane {
    fn default() -> Self {
        let (offline_tx, offline_rx) = mpsc::channel();
        QueuePane {
            sort: (SortBy::Id, true),
            selected: None,
            details: Details::default(),
            offline: None,
            offline_stale: true,
            offline_busy: false,
            offline_error: None,
            offline_rx,
            offline_tx,
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

/// The last error of a mail (its latest recipient with one), whole.
pub fn last_error(e: &QueueEntry) -> &str {
    e.meta
        .rcpts
        .iter()
        .rev()
        .map(|r| &*r.last_error)
        .find(|s| !s.is_empty())
        .unwrap_or("")
}

/// The first `max` characters of `s`'s first line, with "…" when cut.
fn cut(s: &str, max: usize) -> String {
    let line = s.lines().next().unwrap_or("");
    if line.chars().count() <= max && line.len() == s.len() {
        return line.to_string();
    }
    let mut out: String = line.chars().take(max).collect();
    out.push('…');
    out
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
            SortBy::Subject => a.subject.cmp(&b.subject),
            SortBy::Size => a.size.cmp(&b.size),
            SortBy::Attempts => a.attempts.cmp(&b.attempts),
            SortBy::NextTry => (a.held, a.next_try).cmp(&(b.held, b.next_try)),
        };
        if ascending { o } else { o.reverse() }
    });
}

/// A spool request's answer, as the pane needs it.
fn spool_request(dir: &Path, req: Request) -> Result<Response, String> {
    offline::request(dir, req).map_err(|e: OfflineError| e.to_string())
}

impl QueuePane {
    /// Runs `cmd` on the source: the live queue without waiting, or the spool on a blocking
    /// task (the list is read again after it).
    fn command(
        &mut self,
        source: Source<'_>,
        cmd: QueueCommand,
        ctx: &egui::Context,
        rt: &tokio::runtime::Handle,
    ) {
        match source {
            Source::Live(q) => q.command_nowait(cmd),
            Source::Offline(dir) => {
                let (dir, tx, ctx) = (dir.to_path_buf(), self.offline_tx.clone(), ctx.clone());
                self.offline_busy = true;
                rt.spawn_blocking(move || {
                    let r = match spool_request(&dir, Request::Queue(cmd)) {
                        Ok(Response::Count(n)) => Ok(n),
                        Ok(r) => Err(format!("unexpected answer {r:?}")),
                        Err(e) => Err(e),
                    };
                    let _ = tx.send(Offline::Done(r));
                    ctx.request_repaint();
                });
            }
            Source::Busy => {}
        }
    }

    /// Reads the spool's list on a blocking task.
    fn read_spool(&mut self, dir: PathBuf, ctx: &egui::Context, rt: &tokio::runtime::Handle) {
        let (tx, ctx) = (self.offline_tx.clone(), ctx.clone());
        self.offline_busy = true;
        self.offline_stale = false;
        rt.spawn_blocking(move || {
            let r = match spool_request(&dir, Request::List) {
                Ok(Response::List(l)) => Ok(l),
                Ok(r) => Err(format!("unexpected answer {r:?}")),
                Err(e) => Err(e),
            };
            let _ = tx.send(Offline::List(r));
            ctx.request_repaint();
        });
    }

    /// Takes in what the spool tasks reported.
    fn drain_offline(&mut self) {
        while let Ok(m) = self.offline_rx.try_recv() {
            self.offline_busy = false;
            match m {
                Offline::List(Ok(l)) => {
                    self.offline = Some(Arc::new(l.into_iter().map(Arc::new).collect()));
                    self.offline_error = None;
                }
                Offline::List(Err(e)) | Offline::Done(Err(e)) => self.offline_error = Some(e),
                Offline::Done(Ok(_)) => {
                    self.offline_error = None;
                    self.offline_stale = true;
                }
            }
        }
    }

    /// Shows the pane. `rt` runs content fetches and spool tasks.
    pub fn ui(&mut self, ui: &mut egui::Ui, source: Source<'_>, rt: &tokio::runtime::Handle) {
        self.drain_offline();
        let list: Snapshot = match source {
            Source::Live(q) => {
                self.offline = None;
                self.offline_stale = true;
                q.snapshot()
            }
            Source::Offline(dir) => {
                if self.offline_stale && !self.offline_busy {
                    self.read_spool(dir.to_path_buf(), ui.ctx(), rt);
                }
                self.offline.clone().unwrap_or_default()
            }
            Source::Busy => {
                self.offline_stale = true;
                ui.weak(
                    "The services are starting or stopping; the queue shows again in a moment.",
                );
                return;
            }
        };
        let mut entries: Vec<&QueueEntry> = list.iter().map(|e| &**e).collect();
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

        self.toolbar(ui, source, selected, entries.len(), rt);
        if let Source::Offline(_) = source {
            ui.weak(match (&self.offline_error, self.offline_busy) {
                (Some(e), _) => format!("Cannot read the spool: {e}"),
                (None, true) => "Reading the spool...".to_string(),
                (None, false) => "The services are stopped: this is the queue as kept on disk \
                    (as `postern queue list` shows it); changes made here apply to the spool."
                    .to_string(),
            });
        }
        ui.separator();

        if let Some(cmd) = self.details.confirmed_delete(ui.ctx()) {
            self.command(source, cmd, ui.ctx(), rt);
            self.selected = None;
        }

        if entries.is_empty() {
            ui.add_space(8.0);
            ui.label(egui::RichText::new(EMPTY).weak());
            return;
        }

        if let Some(e) = selected {
            // Sized to its content, up to half the pane; the table has the rest.
            let max = ui.available_height() * 0.5;
            egui::Panel::bottom("queue_detail")
                .resizable(false)
                .show(ui, |ui| {
                    let fetch = match source {
                        Source::Live(q) => Some(q.clone()),
                        _ => None,
                    };
                    let dir = match source {
                        Source::Offline(d) => Some(d.to_path_buf()),
                        _ => None,
                    };
                    self.details.ui(ui, e, fetch, dir, rt, max);
                });
        }
        egui::CentralPanel::default()
            .frame(egui::Frame::NONE)
            .show(ui, |ui| self.table(ui, &entries));
    }

    fn toolbar(
        &mut self,
        ui: &mut egui::Ui,
        source: Source<'_>,
        selected: Option<&QueueEntry>,
        count: usize,
        rt: &tokio::runtime::Handle,
    ) {
        let ctx = ui.ctx().clone();
        let mut cmd = None;
        ui.horizontal(|ui| {
            ui.label(format!("{count} mail(s) queued"));
            ui.separator();
            let sel = selected.map(|e| e.meta.id);
            let held = selected.is_some_and(|e| e.meta.held);
            let one = Target::Id;
            if ui
                .add_enabled(sel.is_some() && !held, egui::Button::new("Retry Now"))
                .on_hover_text("Try to deliver the selected mail now")
                .on_disabled_hover_text(if held {
                    "This mail is on hold: Release tries it again"
                } else {
                    "Select a mail first"
                })
                .clicked()
                && let Some(id) = sel
            {
                cmd = Some(QueueCommand::Retry(one(id)));
            }
            if ui
                .add_enabled(sel.is_some() && !held, egui::Button::new("Hold"))
                .on_hover_text("Keep the selected mail in the queue without trying it")
                .on_disabled_hover_text(if held {
                    "This mail is on hold already"
                } else {
                    "Select a mail first"
                })
                .clicked()
                && let Some(id) = sel
            {
                cmd = Some(QueueCommand::Hold(one(id)));
            }
            if ui
                .add_enabled(held, egui::Button::new("Release"))
                .on_hover_text("Undo Hold: the mail is tried again now")
                .on_disabled_hover_text("Only a mail on hold can be released")
                .clicked()
                && let Some(id) = sel
            {
                cmd = Some(QueueCommand::Release(one(id)));
            }
            if ui
                .add_enabled(sel.is_some(), egui::Button::new("Delete"))
                .on_hover_text("Remove the selected mail from the queue (asks first)")
                .on_disabled_hover_text("Select a mail first")
                .clicked()
                && let Some(e) = selected
            {
                self.details.ask_delete(e);
            }
            ui.separator();
            if ui
                .add_enabled(count > 0, egui::Button::new("Retry All"))
                .on_hover_text("Try every queued mail now (mail on hold stays on hold)")
                .on_disabled_hover_text("The queue is empty")
                .clicked()
            {
                cmd = Some(QueueCommand::Retry(Target::All));
            }
            if let Source::Offline(dir) = source
                && ui
                    .add_enabled(!self.offline_busy, egui::Button::new("Refresh"))
                    .on_hover_text("Read the spool again")
                    .on_disabled_hover_text("Reading the spool...")
                    .clicked()
            {
                self.read_spool(dir.to_path_buf(), &ctx, rt);
            }
        });
        if let Some(cmd) = cmd {
            self.command(source, cmd, &ctx, rt);
        }
    }

    fn table(&mut self, ui: &mut egui::Ui, entries: &[&QueueEntry]) {
        let now = now_secs();
        // Solid scroll bars take their own room: they never cover a row or a column.
        ui.spacing_mut().scroll = egui::style::ScrollStyle::solid();
        egui::ScrollArea::both()
            .id_salt("queue_table")
            .auto_shrink([false, false])
            .show(ui, |ui| {
                egui::Grid::new("queue_grid")
                    .striped(true)
                    .num_columns(10)
                    .spacing([14.0, 4.0])
                    .show(ui, |ui| {
                        self.header(ui);
                        for e in entries.iter().take(MAX_ROWS) {
                            self.row(ui, e, now);
                        }
                    });
                if entries.len() > MAX_ROWS {
                    ui.weak(format!("... and {} more", entries.len() - MAX_ROWS));
                }
            });
    }

    fn header(&mut self, ui: &mut egui::Ui) {
        for (title, by) in [
            ("Id", Some(SortBy::Id)),
            ("Age", Some(SortBy::Id)),
            ("From", Some(SortBy::From)),
            ("To", Some(SortBy::To)),
            ("Subject", Some(SortBy::Subject)),
            ("Size", Some(SortBy::Size)),
            ("Attempts", Some(SortBy::Attempts)),
            ("Next Try", Some(SortBy::NextTry)),
            ("Last Error", None),
        ] {
            let Some(by) = by else {
                ui.strong(title);
                continue;
            };
            let arrow = if self.sort.0 == by && title != "Age" {
                if self.sort.1 { " ^" } else { " v" }
            } else {
                ""
            };
            if ui
                .add(
                    egui::Button::new(egui::RichText::new(format!("{title}{arrow}")).strong())
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
        ui.end_row();
    }

    fn row(&mut self, ui: &mut egui::Ui, e: &QueueEntry, now: u64) {
        let m = &e.meta;
        if ui
            .selectable_label(self.selected == Some(m.id), id_text(m.id))
            .on_hover_text("Select this mail")
            .clicked()
        {
            self.selected = Some(m.id);
        }
        ui.label(span(now.saturating_sub(m.created)));
        ui.label(if m.from.is_empty() {
            "<>".to_string()
        } else {
            m.from.to_string()
        });
        let pending: Vec<&str> = m
            .rcpts
            .iter()
            .filter(|r| r.state == RcptState::Pending)
            .map(|r| r.addr.as_str())
            .collect();
        ui.label(match pending.len() {
            0 => String::new(),
            1 => pending[0].to_string(),
            n => format!("{} (+{})", pending[0], n - 1),
        });
        if m.subject.chars().count() > ERROR_CHARS {
            ui.label(cut(&m.subject, ERROR_CHARS))
                .on_hover_text(&*m.subject);
        } else {
            ui.label(&*m.subject);
        }
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
        let err = last_error(e);
        let shown = ui.label(cut(err, ERROR_CHARS));
        if !err.is_empty() {
            shown.on_hover_ui(|ui| {
                ui.set_max_width(600.0);
                ui.label(err);
            });
        }
        ui.end_row();
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
                    addr: format!("r{id}@x.test").into(),
                    state: RcptState::Pending,
                    last_error: "".into(),
                    notified: false,
                }],
                attempts: 0,
                next_try: 0,
                held: false,
                warned: false,
                size,
                client: "127.0.0.1".into(),
                subject: format!("s{}", 4 - id).into(),
            },
            in_flight: false,
            history: Box::default(),
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
        sort_entries(&mut v, SortBy::Subject, true);
        assert_eq!(v.iter().map(|e| e.meta.id).collect::<Vec<_>>(), [3, 2, 1]);
        assert_eq!(span(59), "59s");
        assert_eq!(span(3 * 3600 + 120), "3h02m");
    }

    #[test]
    fn long_errors_are_cut_to_one_line() {
        assert_eq!(cut("451 later", 60), "451 later");
        assert_eq!(cut("abcdef", 3), "abc…");
        assert_eq!(cut("one\ntwo", 60), "one…");
    }
}
