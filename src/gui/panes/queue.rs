//! The Queued Mails pane: the outgoing queue as a sortable table (id, age, from, to, subject,
//! size, attempts, next try, last error, the whole error on hover) with Retry Now, Hold,
//! Release and Delete for the selected mail, and below it the selected mail's details
//! ([`super::queue_detail`], sized to its content).
//!
//! The table shows a page of [`PAGE`] mails (Previous Page, Next Page, "1–1,000 of
//! 412,345"; egui_extras lays out only the rows in view), sorted by the engine
//! ([`crate::engine::queue::page`]): the window never holds or sorts the whole queue. The page is asked for when the sort, the page or the selection
//! changes, and again when the queue has changed (the version of its published summary), at
//! most every half second; the count comes from the summary (offline, from the page). While
//! the services run the page
//! comes from the queue's manager and commands go to it without waiting; while they are
//! stopped the pane reads the spool as `postern queue` does
//! ([`crate::engine::control::offline`]), on a blocking task. Both report back over a
//! channel, so the UI never blocks.

use super::queue_detail::Details;
use crate::engine::control::offline::{self, OfflineError};
use crate::engine::control::{Request, Response};
use crate::engine::queue::{
    Page, PageQuery, Queue, QueueCommand, QueueEntry, RcptState, Target, id_text, now_secs,
};
use eframe::egui;
use egui_extras::{Column, TableBuilder, TableRow};
use std::path::Path;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

pub use crate::engine::queue::SortBy;

/// What the pane says when the queue is empty.
pub const EMPTY: &str = "No mail in the queue. Mail for other domains waits here when it \
    cannot be delivered at once.";

/// Mails in a page of the table.
pub const PAGE: usize = 1000;

/// A changed queue is read again at most this often.
const REFRESH: Duration = Duration::from_millis(500);

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

/// What a page request or a spool command reports.
enum Fetched {
    /// The page for a query, from the live queue (`true`) or the spool.
    Page(PageQuery, bool, Result<Page, String>),
    /// A command ran on the spool (how many mails it touched).
    Done(Result<usize, String>),
}

/// A page as received.
struct Shown {
    /// What it answers.
    query: PageQuery,
    /// It came from the live queue (else from the spool).
    live: bool,
    /// The page.
    page: Arc<Page>,
}

/// The pane's state.
pub struct QueuePane {
    /// Sort column and direction (ascending).
    sort: (SortBy, bool),
    /// Mails before the page shown.
    first: usize,
    /// The selected mail.
    selected: Option<u64>,
    /// The selected mail's details (content fetches, the delete confirmation).
    details: Details,
    /// The last page received.
    shown: Option<Shown>,
    /// A page request is out: (its query, to the live queue).
    asking: Option<(PageQuery, bool)>,
    /// The last page request failed (the spool could not be read): not asked again until
    /// Refresh, a command or another page.
    failed: Option<(PageQuery, bool)>,
    /// When the last page request went out.
    asked_at: Option<Instant>,
    /// The summary's version when the last page request went out.
    seen_version: u64,
    /// The page must be read again (a command ran on the spool, Refresh, the services were
    /// busy).
    stale: bool,
    /// A command is running on the spool.
    spool_busy: bool,
    /// The last spool task's error.
    offline_error: Option<String>,
    /// Pages and spool commands report here.
    rx: mpsc::Receiver<Fetched>,
    /// Given to their tasks.
    tx: mpsc::Sender<Fetched>,
}

impl Default for QueuePane {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel();
        QueuePane {
            sort: (SortBy::Id, true),
            first: 0,
            selected: None,
            details: Details::default(),
            shown: None,
            asking: None,
            failed: None,
            asked_at: None,
            seen_version: 0,
            stale: true,
            spool_busy: false,
            offline_error: None,
            rx,
            tx,
        }
    }
}

/// `n` with its thousands grouped: 412,345.
fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
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

/// A spool request's answer, as the pane needs it.
fn spool_request(dir: &Path, req: Request) -> Result<Response, String> {
    offline::request(dir, req).map_err(|e: OfflineError| e.to_string())
}

impl QueuePane {
    /// The page the pane wants now.
    fn query(&self) -> PageQuery {
        PageQuery {
            sort: self.sort.0,
            descending: !self.sort.1,
            offset: self.first,
            limit: PAGE,
            after: None,
            with: self.selected,
        }
    }

    /// The last page received, if it answers `q` from that source (the selection counts
    /// only when the selected mail is not in the page itself).
    fn covers(&self, q: &PageQuery, live: bool) -> bool {
        let Some(s) = &self.shown else {
            return false;
        };
        let bare = |q: &PageQuery| PageQuery {
            with: None,
            ..q.clone()
        };
        s.live == live
            && bare(&s.query) == bare(q)
            && (q.with.is_none()
                || s.query.with == q.with
                || s.page.entries.iter().any(|e| Some(e.meta.id) == q.with))
    }

    /// Asks for page `q`: from the manager on the services' runtime, or from the spool on a
    /// blocking task.
    fn fetch(
        &mut self,
        source: Source<'_>,
        q: PageQuery,
        ctx: &egui::Context,
        rt: &tokio::runtime::Handle,
    ) {
        let (tx, ctx) = (self.tx.clone(), ctx.clone());
        self.stale = false;
        self.asked_at = Some(Instant::now());
        match source {
            Source::Live(queue) => {
                self.seen_version = queue.summary().version;
                self.asking = Some((q.clone(), true));
                let queue = queue.clone();
                rt.spawn(async move {
                    let page = queue.page(q.clone()).await;
                    let _ = tx.send(Fetched::Page(q, true, Ok(page)));
                    ctx.request_repaint();
                });
            }
            Source::Offline(dir) => {
                self.asking = Some((q.clone(), false));
                let dir = dir.to_path_buf();
                rt.spawn_blocking(move || {
                    let r = match spool_request(&dir, Request::Page(q.clone())) {
                        Ok(Response::Page(p)) => Ok(p),
                        Ok(r) => Err(format!("unexpected answer {r:?}")),
                        Err(e) => Err(e),
                    };
                    let _ = tx.send(Fetched::Page(q, false, r));
                    ctx.request_repaint();
                });
            }
            Source::Busy => {}
        }
    }

    /// Asks for the page again when it is not the one wanted, or the queue changed since
    /// (not sooner than [`REFRESH`] after the last request).
    fn refresh(&mut self, source: Source<'_>, ctx: &egui::Context, rt: &tokio::runtime::Handle) {
        if self.asking.is_some() || self.spool_busy {
            return;
        }
        let q = self.query();
        let live = matches!(source, Source::Live(_));
        if !self.stale && self.failed.as_ref() == Some(&(q.clone(), live)) {
            return;
        }
        if self.stale || !self.covers(&q, live) {
            self.fetch(source, q, ctx, rt);
            return;
        }
        if let Source::Live(queue) = source
            && queue.summary().version != self.seen_version
        {
            let since = self.asked_at.map_or(REFRESH, |t| t.elapsed());
            match REFRESH.checked_sub(since) {
                Some(wait) if !wait.is_zero() => ctx.request_repaint_after(wait),
                _ => self.fetch(source, q, ctx, rt),
            }
        }
    }

    /// Runs `cmd` on the source: the live queue without waiting, or the spool on a blocking
    /// task (the page is read again after it).
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
                let (dir, tx, ctx) = (dir.to_path_buf(), self.tx.clone(), ctx.clone());
                self.spool_busy = true;
                rt.spawn_blocking(move || {
                    let r = match spool_request(&dir, Request::Queue(cmd)) {
                        Ok(Response::Count(n)) => Ok(n),
                        Ok(r) => Err(format!("unexpected answer {r:?}")),
                        Err(e) => Err(e),
                    };
                    let _ = tx.send(Fetched::Done(r));
                    ctx.request_repaint();
                });
            }
            Source::Busy => {}
        }
    }

    /// Takes in the pages and spool commands that reported.
    fn drain(&mut self) {
        while let Ok(m) = self.rx.try_recv() {
            match m {
                Fetched::Page(query, live, r) => {
                    self.asking = None;
                    self.failed = r.is_err().then(|| (query.clone(), live));
                    match r {
                        Ok(page) => {
                            if !live {
                                self.offline_error = None;
                            }
                            // Asked for with the selection and not found: it left the queue.
                            if query.with.is_some()
                                && query.with == self.selected
                                && page.with.is_none()
                            {
                                self.selected = None;
                            }
                            self.shown = Some(Shown {
                                query,
                                live,
                                page: Arc::new(page),
                            });
                        }
                        Err(e) => self.offline_error = Some(e),
                    }
                }
                Fetched::Done(r) => {
                    self.spool_busy = false;
                    match r {
                        Ok(_) => self.offline_error = None,
                        Err(e) => self.offline_error = Some(e),
                    }
                    self.stale = true;
                }
            }
        }
    }

    /// Shows the pane. `rt` runs page requests, content fetches and spool tasks.
    pub fn ui(&mut self, ui: &mut egui::Ui, source: Source<'_>, rt: &tokio::runtime::Handle) {
        self.drain();
        let live = match source {
            Source::Live(_) => true,
            Source::Offline(_) => false,
            Source::Busy => {
                self.stale = true;
                ui.weak(
                    "The services are starting or stopping; the queue shows again in a moment.",
                );
                return;
            }
        };
        // The page wanted stays inside the queue.
        let page = (self.shown.as_ref())
            .filter(|s| s.live == live)
            .map(|s| s.page.clone());
        let total = match source {
            Source::Live(q) => q.len(),
            _ => page.as_ref().map_or(0, |p| p.total),
        };
        if self.first >= total && self.first > 0 {
            self.first = total.saturating_sub(1) / PAGE * PAGE;
        }
        self.refresh(source, ui.ctx(), rt);
        if live {
            // The count and a changed queue are seen without other input.
            ui.ctx().request_repaint_after(Duration::from_secs(1));
        }
        let entries: &[Arc<QueueEntry>] = page.as_ref().map_or(&[], |p| &p.entries);
        let selected = self.selected.and_then(|id| {
            (entries.iter())
                .chain(page.as_ref().and_then(|p| p.with.as_ref()))
                .find(|e| e.meta.id == id)
                .cloned()
        });

        self.toolbar(ui, source, selected.as_deref(), total, rt);
        if let Source::Offline(_) = source {
            let reading = matches!(self.asking, Some((_, false))) || self.spool_busy;
            ui.weak(match (&self.offline_error, reading) {
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

        if total == 0 {
            if page.is_some() || live {
                ui.add_space(8.0);
                ui.label(egui::RichText::new(EMPTY).weak());
            }
            return;
        }
        if total > PAGE {
            self.pager(ui, total, entries.len());
        }

        if let Some(e) = &selected {
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
            .show(ui, |ui| self.table(ui, entries));
    }

    /// "1–1,000 of 412,345" with Previous Page and Next Page.
    fn pager(&mut self, ui: &mut egui::Ui, total: usize, shown: usize) {
        ui.horizontal(|ui| {
            if ui
                .add_enabled(self.first > 0, egui::Button::new("Previous Page"))
                .on_hover_text(format!("The {PAGE} mails before these"))
                .clicked()
            {
                self.first = self.first.saturating_sub(PAGE);
            }
            let last = (self.first + shown.max(1)).min(total);
            ui.label(format!(
                "{}–{} of {}",
                grouped(self.first + 1),
                grouped(last),
                grouped(total)
            ));
            if ui
                .add_enabled(self.first + PAGE < total, egui::Button::new("Next Page"))
                .on_hover_text(format!("The next {PAGE} mails"))
                .clicked()
            {
                self.first += PAGE;
            }
        });
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
            if let Source::Offline(_) = source
                && ui
                    .add_enabled(
                        self.asking.is_none() && !self.spool_busy,
                        egui::Button::new("Refresh"),
                    )
                    .on_hover_text("Read the spool again")
                    .on_disabled_hover_text("Reading the spool...")
                    .clicked()
            {
                self.stale = true;
            }
        });
        if let Some(cmd) = cmd {
            self.command(source, cmd, &ctx, rt);
        }
    }

    /// The page as a table whose rows are laid out only while in view (a page of 1,000 mails
    /// costs a frame the rows that show, not all of them).
    fn table(&mut self, ui: &mut egui::Ui, entries: &[Arc<QueueEntry>]) {
        let now = now_secs();
        // Solid scroll bars take their own room: they never cover a row or a column.
        ui.spacing_mut().scroll = egui::style::ScrollStyle::solid();
        let height = ui.spacing().interact_size.y;
        let mut table = TableBuilder::new(ui)
            // Each page scrolls on its own: the next one starts at its top.
            .id_salt(("queue_table", self.first))
            .striped(true)
            .resizable(true)
            .auto_shrink([false, false])
            .cell_layout(egui::Layout::left_to_right(egui::Align::Center));
        for _ in 0..COLUMNS.len() - 1 {
            table = table.column(Column::auto().at_least(40.0).clip(true));
        }
        table
            .column(Column::remainder().clip(true))
            .header(height, |mut header| self.header(&mut header))
            .body(|body| {
                body.rows(height, entries.len(), |mut row| {
                    let e = &entries[row.index()];
                    self.row(&mut row, e, now);
                });
            });
    }

    fn header(&mut self, header: &mut TableRow<'_, '_>) {
        for (title, by) in COLUMNS {
            header.col(|ui| {
                let Some(by) = by else {
                    ui.strong(title);
                    return;
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
                    self.first = 0;
                }
            });
        }
    }

    fn row(&mut self, row: &mut TableRow<'_, '_>, e: &QueueEntry, now: u64) {
        let m = &e.meta;
        row.col(|ui| {
            if ui
                .selectable_label(self.selected == Some(m.id), id_text(m.id))
                .on_hover_text("Select this mail")
                .clicked()
            {
                self.selected = Some(m.id);
            }
        });
        row.col(|ui| {
            ui.label(span(now.saturating_sub(m.created)));
        });
        row.col(|ui| {
            ui.label(if m.from.is_empty() {
                "<>".to_string()
            } else {
                m.from.to_string()
            });
        });
        let pending: Vec<&str> = m
            .rcpts
            .iter()
            .filter(|r| r.state == RcptState::Pending)
            .map(|r| r.addr.as_str())
            .collect();
        row.col(|ui| {
            ui.label(match pending.len() {
                0 => String::new(),
                1 => pending[0].to_string(),
                n => format!("{} (+{})", pending[0], n - 1),
            });
        });
        row.col(|ui| {
            if m.subject.chars().count() > ERROR_CHARS {
                ui.label(cut(&m.subject, ERROR_CHARS))
                    .on_hover_text(&*m.subject);
            } else {
                ui.label(&*m.subject);
            }
        });
        row.col(|ui| {
            ui.label(format!("{}", m.size));
        });
        row.col(|ui| {
            ui.label(m.attempts.to_string());
        });
        row.col(|ui| {
            ui.label(if e.in_flight {
                "sending now".to_string()
            } else if m.held {
                "on hold".to_string()
            } else if m.next_try <= now {
                "due".to_string()
            } else {
                format!("in {}", span(m.next_try - now))
            });
        });
        row.col(|ui| {
            let err = last_error(e);
            let shown = ui.label(cut(err, ERROR_CHARS));
            if !err.is_empty() {
                shown.on_hover_ui(|ui| {
                    ui.set_max_width(600.0);
                    ui.label(err);
                });
            }
        });
    }
}

/// The table's columns: title, and the order a click on it sorts by (none for Last Error).
const COLUMNS: [(&str, Option<SortBy>); 9] = [
    ("Id", Some(SortBy::Id)),
    ("Age", Some(SortBy::Id)),
    ("From", Some(SortBy::From)),
    ("To", Some(SortBy::To)),
    ("Subject", Some(SortBy::Subject)),
    ("Size", Some(SortBy::Size)),
    ("Attempts", Some(SortBy::Attempts)),
    ("Next Try", Some(SortBy::NextTry)),
    ("Last Error", None),
];

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
        // The pane's header asks the engine for the page in its order.
        let sorted = |sort: SortBy, ascending: bool| {
            let q = PageQuery {
                sort,
                descending: !ascending,
                offset: 0,
                limit: PAGE,
                after: None,
                with: None,
            };
            crate::engine::queue::page::select(list.iter(), |e| &e.meta, &q)
                .iter()
                .map(|e| e.meta.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(sorted(SortBy::From, true), [2, 1, 3]);
        assert_eq!(sorted(SortBy::Size, false), [1, 3, 2]);
        assert_eq!(sorted(SortBy::Subject, true), [3, 2, 1]);
        assert_eq!(grouped(412_345), "412,345");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(999), "999");
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
