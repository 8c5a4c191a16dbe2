//! The Live Logs pane: the engine's events as lines, in views by channel (SMTP In, SMTP Out,
//! POP3, IMAP, Security, System, or all), filtered by text, minimum level and session. It
//! follows the tail or pauses (new lines wait until it resumes), keeps at most [`MAX_LINES`]
//! lines, renders only the visible rows (`show_rows`), and copies the selected lines (click,
//! Ctrl-click, Shift-click; Ctrl+C or "Copy Selected").

use crate::engine::events::{Channel, Event, Level};
use eframe::egui;
use std::collections::{BTreeSet, VecDeque};

/// Lines kept in memory.
pub const MAX_LINES: usize = 100_000;

/// What the pane says while it has no line at all.
pub const EMPTY: &str = "No log lines yet. The engine's lines appear here as they happen: \
    services started, each SMTP session and its commands, deliveries from the queue, \
    configuration reloads. Start the services or send a mail to see some.";

/// Which lines a view shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum View {
    /// Every channel.
    All,
    /// SMTP sessions on our listeners.
    SmtpIn,
    /// Outbound delivery.
    SmtpOut,
    /// Authentication, refusals, limits.
    Security,
    /// Start, stop, listeners, configuration.
    System,
    /// POP3 sessions.
    Pop3,
    /// IMAP sessions.
    Imap,
}

impl View {
    /// Every view, in tab order.
    pub const ALL: [View; 7] = [
        View::All,
        View::SmtpIn,
        View::SmtpOut,
        View::Pop3,
        View::Imap,
        View::Security,
        View::System,
    ];

    /// Tab title.
    pub fn title(self) -> &'static str {
        match self {
            View::All => "All",
            View::SmtpIn => "SMTP In",
            View::SmtpOut => "SMTP Out",
            View::Security => "Security",
            View::System => "System",
            View::Pop3 => "POP3",
            View::Imap => "IMAP",
        }
    }

    fn admits(self, channel: Channel) -> bool {
        match self {
            View::All => true,
            View::SmtpIn => channel == Channel::SmtpIn,
            View::SmtpOut => channel == Channel::SmtpOut,
            View::Security => channel == Channel::Security,
            View::System => channel == Channel::System,
            View::Pop3 => channel == Channel::Pop3,
            View::Imap => channel == Channel::Imap,
        }
    }
}

/// One log line.
struct Row {
    /// Log view it belongs to.
    channel: Channel,
    /// Severity.
    level: Level,
    /// SMTP session id, if any.
    session: Option<String>,
    /// The line as shown and copied.
    text: String,
    /// `text` in lower case, for the case-insensitive filter.
    lower: String,
}

impl Row {
    fn from_event(ev: &Event) -> Row {
        let text = ev.to_string();
        Row {
            channel: ev.channel,
            level: ev.level,
            session: ev.session.clone(),
            lower: text.to_lowercase(),
            text,
        }
    }
}

/// The filters, kept apart so they can be compared to notice a change.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Filters {
    /// Channel view.
    pub view: View,
    /// Text every shown line contains (case-insensitive).
    pub text: String,
    /// Lowest level shown.
    #[serde(with = "level_serde")]
    pub min_level: Level,
    /// Session id every shown line belongs to (empty = all).
    pub session: String,
}

impl Default for Filters {
    fn default() -> Self {
        Filters {
            view: View::All,
            text: String::new(),
            min_level: Level::Debug,
            session: String::new(),
        }
    }
}

mod level_serde {
    use crate::engine::events::Level;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(l: &Level, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(*l as u8)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Level, D::Error> {
        Ok(match u8::deserialize(d)? {
            0 => Level::Debug,
            1 => Level::Info,
            2 => Level::Warn,
            _ => Level::Error,
        })
    }
}

impl Filters {
    /// Whether `row` passes; `needle` is `self.text` in lower case.
    fn admits(&self, row: &Row, needle: &str) -> bool {
        let session = self.session.trim();
        self.view.admits(row.channel)
            && row.level >= self.min_level
            && (session.is_empty() || row.session.as_deref() == Some(session))
            && (needle.is_empty() || row.lower.contains(needle))
    }
}

/// The pane's state.
pub struct LogPane {
    /// Lines, oldest first; `rows[0]` has the absolute number `first`.
    rows: VecDeque<Row>,
    /// Absolute number of `rows[0]` (numbers never repeat, so selections survive eviction).
    first: u64,
    /// Absolute numbers of the lines the filters admit, in order.
    shown: VecDeque<u64>,
    /// The filters `shown` was computed with.
    applied: Filters,
    /// The filters as edited.
    pub filters: Filters,
    /// Keep the newest line in view.
    pub follow: bool,
    /// While paused, new lines wait in `pending`.
    pub paused: bool,
    /// Lines that arrived while paused.
    pending: Vec<Row>,
    /// Selected lines (absolute numbers).
    selected: BTreeSet<u64>,
    /// Last plainly clicked line, for Shift-click ranges.
    anchor: Option<u64>,
    /// Scroll to the bottom on the next frame.
    jump_to_end: bool,
}

impl Default for LogPane {
    fn default() -> Self {
        LogPane {
            rows: VecDeque::new(),
            first: 0,
            shown: VecDeque::new(),
            applied: Filters::default(),
            filters: Filters::default(),
            follow: true,
            paused: false,
            pending: Vec::new(),
            selected: BTreeSet::new(),
            anchor: None,
            jump_to_end: true,
        }
    }
}

impl LogPane {
    /// An empty pane.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an event (held back while paused).
    pub fn push(&mut self, ev: &Event) {
        self.push_row(Row::from_event(ev));
    }

    /// Adds a line of the pane's own (e.g. "n lines skipped").
    pub fn push_note(&mut self, level: Level, text: String) {
        self.push_row(Row {
            channel: Channel::System,
            level,
            session: None,
            lower: text.to_lowercase(),
            text,
        });
    }

    fn push_row(&mut self, row: Row) {
        if self.paused {
            if self.pending.len() == MAX_LINES {
                self.pending.remove(0);
            }
            self.pending.push(row);
            return;
        }
        if self.rows.len() == MAX_LINES {
            self.rows.pop_front();
            self.first += 1;
            while self.shown.front().is_some_and(|&n| n < self.first) {
                self.shown.pop_front();
            }
            self.selected.retain(|&n| n >= self.first);
        }
        let n = self.first + self.rows.len() as u64;
        if self.applied.admits(&row, &self.applied.text.to_lowercase()) {
            self.shown.push_back(n);
        }
        self.rows.push_back(row);
    }

    /// Lines held (not counting paused ones).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no lines.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Lines waiting while paused.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Pauses or resumes; resuming takes in the lines that waited.
    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
        if !paused {
            for row in std::mem::take(&mut self.pending) {
                self.push_row(row);
            }
            if self.follow {
                self.jump_to_end = true;
            }
        }
    }

    fn row(&self, n: u64) -> Option<&Row> {
        n.checked_sub(self.first)
            .and_then(|i| self.rows.get(i as usize))
    }

    /// Recomputes the shown lines if the filters changed.
    fn refilter(&mut self) {
        if self.filters == self.applied {
            return;
        }
        self.applied = self.filters.clone();
        let first = self.first;
        let needle = self.applied.text.to_lowercase();
        self.shown = self
            .rows
            .iter()
            .enumerate()
            .filter(|(_, r)| self.applied.admits(r, &needle))
            .map(|(i, _)| first + i as u64)
            .collect();
    }

    /// The lines the filters admit, oldest first.
    pub fn visible_lines(&mut self) -> Vec<&str> {
        self.refilter();
        self.shown
            .iter()
            .filter_map(|&n| self.row(n))
            .map(|r| r.text.as_str())
            .collect()
    }

    /// The selected lines, in order, joined by newlines.
    pub fn selected_text(&self) -> String {
        self.selected
            .iter()
            .filter_map(|&n| self.row(n))
            .map(|r| r.text.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Handles a click on line `n` with the given modifiers.
    fn click(&mut self, n: u64, modifiers: egui::Modifiers) {
        if modifiers.shift
            && let Some(a) = self.anchor
        {
            let (lo, hi) = (a.min(n), a.max(n));
            if !modifiers.command {
                self.selected.clear();
            }
            self.selected
                .extend(self.shown.iter().copied().filter(|&x| x >= lo && x <= hi));
        } else if modifiers.command {
            if !self.selected.remove(&n) {
                self.selected.insert(n);
            }
            self.anchor = Some(n);
        } else {
            self.selected.clear();
            self.selected.insert(n);
            self.anchor = Some(n);
        }
    }

    /// The session of the first selected line, if it has one.
    fn selected_session(&self) -> Option<String> {
        self.selected
            .iter()
            .find_map(|&n| self.row(n))
            .and_then(|r| r.session.clone())
    }

    /// Shows the pane: toolbar, then the lines.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            for v in View::ALL {
                ui.selectable_value(&mut self.filters.view, v, v.title())
                    .on_hover_text(format!("Show the {} log", v.title()));
            }
            ui.separator();
            let l = ui.label("Filter");
            ui.add(
                egui::TextEdit::singleline(&mut self.filters.text)
                    .desired_width(140.0)
                    .hint_text("text"),
            )
            .labelled_by(l.id)
            .on_hover_text("Show only lines containing this text (any case)");
            // The label before its list, as every other control of the bar.
            let l = ui.label("Level");
            egui::ComboBox::from_id_salt("log_level")
                .selected_text(level_name(self.filters.min_level))
                .show_ui(ui, |ui| {
                    for l in [Level::Debug, Level::Info, Level::Warn, Level::Error] {
                        ui.selectable_value(&mut self.filters.min_level, l, level_name(l));
                    }
                })
                .response
                .labelled_by(l.id)
                .on_hover_text("Lowest level shown: Debug shows every SMTP command and reply");
            let l = ui.label("Session");
            ui.add(
                egui::TextEdit::singleline(&mut self.filters.session)
                    .desired_width(70.0)
                    .hint_text("id"),
            )
            .labelled_by(l.id)
            .on_hover_text("Show only the lines of this SMTP session");
            let sel_session = self.selected_session();
            if ui
                .add_enabled(sel_session.is_some(), egui::Button::new("This Session"))
                .on_hover_text("Show only the session of the selected line")
                .on_disabled_hover_text("Select a line that belongs to a session first")
                .clicked()
                && let Some(s) = sel_session
            {
                self.filters.session = s;
            }
        });
        ui.horizontal(|ui| {
            if ui
                .checkbox(&mut self.follow, "Follow")
                .on_hover_text("Keep the newest line in view")
                .changed()
                && self.follow
            {
                self.jump_to_end = true;
            }
            let mut paused = self.paused;
            let label = if paused {
                format!("Paused ({} waiting)", self.pending.len())
            } else {
                "Pause".to_string()
            };
            if ui
                .toggle_value(&mut paused, label)
                .on_hover_text("Stop adding new lines until resumed")
                .changed()
            {
                self.set_paused(paused);
            }
            let copy = ui
                .add_enabled(
                    !self.selected.is_empty(),
                    egui::Button::new("Copy Selected"),
                )
                .on_hover_text("Copy the selected lines (Ctrl+C)")
                .on_disabled_hover_text(
                    "Click a line to select it; Ctrl-click and Shift-click select more",
                );
            if copy.clicked() {
                ui.ctx().copy_text(self.selected_text());
            }
            if ui
                .button("Clear Selection")
                .on_hover_text("Unselect every line")
                .clicked()
            {
                self.selected.clear();
                self.anchor = None;
            }
            self.refilter();
            ui.label(format!("{} of {} lines", self.shown.len(), self.rows.len()));
        });
        // Ctrl+C copies the selection when no text field has the keyboard.
        let copy_key = ui.input(|i| i.events.iter().any(|e| matches!(e, egui::Event::Copy)));
        if copy_key && !self.selected.is_empty() && ui.ctx().memory(|m| m.focused().is_none()) {
            ui.ctx().copy_text(self.selected_text());
        }
        ui.separator();
        self.refilter();
        if self.shown.is_empty() {
            ui.weak(if self.rows.is_empty() {
                EMPTY
            } else {
                "No line matches this view and its filters."
            });
        }

        let row_h = ui.text_style_height(&egui::TextStyle::Monospace) + 2.0;
        let mut area = egui::ScrollArea::both()
            .id_salt("log_rows")
            .auto_shrink([false, false])
            .stick_to_bottom(self.follow);
        if std::mem::take(&mut self.jump_to_end) {
            // Past the end; the scroll area clamps it to the last row.
            let full = (row_h + ui.spacing().item_spacing.y) * (self.shown.len() as f32 + 1.0);
            area = area.vertical_scroll_offset(full);
        }
        let modifiers = ui.input(|i| i.modifiers);
        let mut clicked = None;
        area.show_rows(ui, row_h, self.shown.len(), |ui, range| {
            // Every row exactly `row_h` high, as show_rows assumes.
            ui.spacing_mut().button_padding.y = 0.0;
            ui.spacing_mut().interact_size.y = row_h;
            for i in range {
                let n = self.shown[i];
                let Some(row) = self.row(n) else { continue };
                let colour = level_colour(ui, row.level);
                let text = egui::RichText::new(&row.text).monospace().color(colour);
                let mut r = ui.add(
                    egui::Button::selectable(self.selected.contains(&n), text)
                        .wrap_mode(egui::TextWrapMode::Extend),
                );
                // A line wider than the pane is shown whole, wrapped, on hover.
                if r.rect.width() > ui.clip_rect().width() {
                    r = r.on_hover_text(&row.text);
                }
                if r.clicked() {
                    clicked = Some(n);
                }
            }
        });
        if let Some(n) = clicked {
            self.click(n, modifiers);
        }
    }
}

/// Level as shown in the Level filter.
pub fn level_name(l: Level) -> &'static str {
    match l {
        Level::Debug => "Debug (all)",
        Level::Info => "Info",
        Level::Warn => "Warning",
        Level::Error => "Error",
    }
}

fn level_colour(ui: &egui::Ui, l: Level) -> egui::Color32 {
    match l {
        Level::Debug => ui.visuals().weak_text_color(),
        Level::Info => ui.visuals().text_color(),
        Level::Warn => ui.visuals().warn_fg_color,
        Level::Error => ui.visuals().error_fg_color,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::events::{EventBus, EventKind};

    /// An event as the bus would make it, but in the channel the test names.
    fn ev(level: Level, channel: Channel, session: Option<&str>, text: &str) -> Event {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Event {
            seq: SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            time: std::time::SystemTime::now(),
            level,
            channel,
            session: session.map(str::to_string),
            kind: EventKind::Note { text: text.into() },
        }
    }

    fn pane_with(events: &[(Level, Channel, Option<&str>, &str)]) -> LogPane {
        let mut p = LogPane::new();
        for (l, c, s, t) in events {
            p.push(&ev(*l, *c, *s, t));
        }
        p
    }

    fn sample() -> LogPane {
        pane_with(&[
            (Level::Info, Channel::System, None, "started"),
            (Level::Debug, Channel::SmtpIn, Some("s1"), "EHLO one"),
            (Level::Info, Channel::SmtpIn, Some("s2"), "delivered m2"),
            (Level::Warn, Channel::Security, Some("s2"), "auth failed"),
            (Level::Error, Channel::SmtpOut, None, "remote refused"),
        ])
    }

    fn lines(p: &mut LogPane) -> Vec<String> {
        p.visible_lines()
            .iter()
            .map(|l| l.rsplit_once(' ').map(|x| x.1).unwrap_or(l).to_string())
            .collect()
    }

    #[test]
    fn views_filter_by_channel() {
        let mut p = sample();
        assert_eq!(p.visible_lines().len(), 5);
        p.filters.view = View::SmtpIn;
        assert_eq!(lines(&mut p), ["one", "m2"]);
        p.filters.view = View::Security;
        assert_eq!(lines(&mut p), ["failed"]);
        p.filters.view = View::SmtpOut;
        assert_eq!(lines(&mut p), ["refused"]);
        p.filters.view = View::System;
        assert_eq!(lines(&mut p), ["started"]);
    }

    #[test]
    fn pop3_and_imap_sessions_have_their_own_views() {
        let mut p = sample();
        for kind in [
            EventKind::Pop3 {
                text: "pop3 RETR".into(),
            },
            EventKind::Imap {
                text: "imap FETCH".into(),
            },
        ] {
            p.push(&Event {
                channel: kind.channel(),
                kind,
                ..ev(Level::Debug, Channel::System, Some("s9"), "")
            });
        }
        p.filters.view = View::Imap;
        assert_eq!(lines(&mut p), ["FETCH"]);
        p.filters.view = View::Pop3;
        assert_eq!(lines(&mut p), ["RETR"]);
        p.filters.view = View::System;
        assert_eq!(lines(&mut p), ["started"]);
        p.filters.view = View::All;
        assert_eq!(p.visible_lines().len(), 7);
    }

    #[test]
    fn text_level_and_session_filters_combine() {
        let mut p = sample();
        p.filters.text = "DELIVERED".into();
        assert_eq!(lines(&mut p), ["m2"]);
        p.filters.text.clear();
        p.filters.min_level = Level::Warn;
        assert_eq!(lines(&mut p), ["failed", "refused"]);
        p.filters.min_level = Level::Debug;
        p.filters.session = "s2".into();
        assert_eq!(lines(&mut p), ["m2", "failed"]);
    }

    #[test]
    fn new_lines_respect_filters_and_pause() {
        let mut p = sample();
        p.filters.view = View::SmtpIn;
        p.visible_lines();
        p.set_paused(true);
        p.push(&ev(Level::Info, Channel::SmtpIn, Some("s3"), "later"));
        p.push(&ev(Level::Info, Channel::System, None, "sys"));
        assert_eq!(p.pending(), 2);
        assert_eq!(lines(&mut p), ["one", "m2"]);
        p.set_paused(false);
        assert_eq!(p.pending(), 0);
        assert_eq!(lines(&mut p), ["one", "m2", "later"]);
        assert_eq!(p.len(), 7);
    }

    #[test]
    fn selection_copies_lines_in_order() {
        let mut p = sample();
        p.visible_lines();
        p.click(3, egui::Modifiers::NONE);
        p.click(1, egui::Modifiers::COMMAND);
        let text = p.selected_text();
        let got: Vec<_> = text
            .lines()
            .map(|l| l.rsplit_once(' ').unwrap().1)
            .collect();
        assert_eq!(got, ["one", "failed"]);
        p.click(4, egui::Modifiers::SHIFT);
        let text = p.selected_text();
        assert_eq!(
            text.lines().count(),
            4,
            "shift-click selects lines 1..=4:\n{text}"
        );
        assert_eq!(p.selected_session().as_deref(), Some("s1"));
    }

    #[test]
    fn keeps_at_most_max_lines_and_forgets_evicted_selection() {
        let mut p = LogPane::new();
        let bus = EventBus::new();
        bus.emit(Level::Info, None, EventKind::Note { text: "x".into() });
        let ev = bus.recent().remove(0);
        for _ in 0..MAX_LINES {
            p.push(&ev);
        }
        p.click(0, egui::Modifiers::NONE);
        p.click(5, egui::Modifiers::COMMAND);
        p.push(&ev);
        p.push(&ev);
        assert_eq!(p.len(), MAX_LINES);
        assert_eq!(p.visible_lines().len(), MAX_LINES);
        assert_eq!(p.selected.iter().copied().collect::<Vec<_>>(), [5]);
    }
}
