//! The DNS Records dialog: per local domain the records to publish (MX, SPF, each DKIM
//! selector, DMARC) and the server's forward and reverse names, each with what DNS returns
//! now, ✓/✗ (drawn) and the state in colour, the sentence on the difference and a Copy button for the value to
//! publish; "Check Again" looks again. It is not a settings form: it changes no setting (a
//! local domain without a DKIM key gets one first, as `postern dns check` and the server do).
//!
//! The records and the verdicts are [`crate::engine::records`]'s; the check runs on the
//! services' runtime (the configuration file and the DKIM key directory are read on a
//! blocking task, the lookups are async), never on the UI thread, and works whether or not
//! the services run. The last result outlives the window, for the "Getting Started" step.

use crate::engine::EngineOptions;
use crate::engine::config::edit;
use crate::engine::dkim::KeyStore;
use crate::engine::dns::Resolver;
use crate::engine::records::{self, Row, State};
use crate::gui::services::Services;
use eframe::egui;
use std::sync::mpsc;

/// What the last finished check found, for the checklist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Rows checked.
    pub rows: usize,
    /// Rows missing or wrong.
    pub problems: usize,
    /// Rows that could not be checked.
    pub unchecked: usize,
}

/// The dialog's state; kept by the app while closed (the last result stays).
#[derive(Default)]
pub struct DnsDialog {
    /// Whether the window is shown.
    pub open: bool,
    /// A check is wanted at the next frame (opening, "Check Again").
    want_check: bool,
    /// The check under way.
    pending: Option<mpsc::Receiver<Result<Vec<Row>, String>>>,
    /// The last finished check: its rows, or why it could not run.
    last: Option<Result<Vec<Row>, String>>,
}

impl DnsDialog {
    /// Opens the window and checks again.
    pub fn open(&mut self) {
        self.open = true;
        self.want_check = true;
    }

    /// What the last finished check found (None: none finished, or it could not run).
    pub fn summary(&self) -> Option<Summary> {
        let rows = self.last.as_ref()?.as_ref().ok()?;
        Some(Summary {
            rows: rows.len(),
            problems: rows.iter().filter(|r| r.state.is_problem()).count(),
            unchecked: rows.iter().filter(|r| r.state == State::Unchecked).count(),
        })
    }

    /// Takes in a finished check and starts a wanted one; call every frame, open or not.
    pub fn poll(&mut self, ctx: &egui::Context, services: &Services) {
        if let Some(rx) = &self.pending {
            match rx.try_recv() {
                Ok(r) => {
                    self.last = Some(r);
                    self.pending = None;
                }
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => {
                    self.last = Some(Err("the check stopped before it finished".into()));
                    self.pending = None;
                }
            }
        }
        if std::mem::take(&mut self.want_check) && self.pending.is_none() {
            let (tx, rx) = mpsc::channel();
            let opts = services.options().clone();
            let ctx = ctx.clone();
            services.runtime().spawn(async move {
                let r = run(opts).await;
                let _ = tx.send(r);
                ctx.request_repaint();
            });
            self.pending = Some(rx);
        }
    }

    /// Shows the window while open.
    pub fn show(&mut self, ctx: &egui::Context) {
        if !self.open {
            return;
        }
        let mut open = true;
        let shown = egui::Window::new("DNS Records")
            .open(&mut open)
            .collapsible(false)
            .default_pos([80.0, 70.0])
            .default_size([760.0, 520.0])
            .show(ctx, |ui| self.contents(ui));
        let escape = shown.is_some_and(|s| super::form::escape_closes(ctx, s.response.layer_id));
        self.open = open && !escape;
    }

    fn contents(&mut self, ui: &mut egui::Ui) {
        ui.label(
            "The records your domains need in DNS for the mail this server sends to arrive \
             (publish them at your DNS provider), and what DNS says now.",
        );
        ui.horizontal(|ui| {
            let busy = self.pending.is_some();
            if ui
                .add_enabled(!busy, egui::Button::new("Check Again"))
                .on_hover_text("Look every record up again now")
                .on_disabled_hover_text("A check is under way")
                .clicked()
            {
                self.want_check = true;
            }
            if busy {
                ui.spinner();
                ui.label("Checking...");
            } else if let Some(s) = self.summary() {
                ui.label(match (s.problems, s.unchecked) {
                    (0, 0) => "Every record is right.".to_string(),
                    (0, n) => format!("Nothing wrong found, but {n} could not be checked."),
                    (n, _) => format!("{n} of {} records need your attention.", s.rows),
                });
            }
        });
        ui.separator();
        match &self.last {
            None => {}
            Some(Err(e)) => {
                super::error_label(ui, &format!("Cannot check: {e}"));
            }
            Some(Ok(rows)) if rows.is_empty() => {
                ui.label("There is no local domain yet: add one in Domains & Accounts.");
            }
            Some(Ok(rows)) => {
                egui::ScrollArea::vertical()
                    .auto_shrink([false, true])
                    .show(ui, |ui| table(ui, rows));
            }
        }
    }
}

/// The rows, under a heading per domain (and one for the server).
fn table(ui: &mut egui::Ui, rows: &[Row]) {
    let good = egui::Color32::from_rgb(53, 179, 74);
    let bad = ui.visuals().error_fg_color;
    let weak = ui.visuals().weak_text_color();
    let mut last: Option<&str> = None;
    for (i, r) in rows.iter().enumerate() {
        if last != Some(r.wanted.domain.as_str()) {
            if last.is_some() {
                ui.add_space(6.0);
            }
            ui.strong(&r.wanted.domain);
            last = Some(&r.wanted.domain);
        }
        let colour = match r.state {
            State::Ok => good,
            State::Missing | State::Wrong => bad,
            State::Unchecked => weak,
        };
        egui::Frame::group(ui.style()).show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.horizontal(|ui| {
                mark(ui, r.state, colour);
                ui.label(egui::RichText::new(r.state.as_str()).color(colour).strong());
                ui.label(egui::RichText::new(r.wanted.rtype.to_string()).monospace());
                ui.label(egui::RichText::new(&r.wanted.name).monospace());
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    let copy = ui
                        .push_id(i, |ui| ui.button("Copy"))
                        .inner
                        .on_hover_text("Copy the value to publish to the clipboard");
                    if copy.clicked() {
                        ui.ctx().copy_text(r.wanted.value.clone());
                    }
                });
            });
            ui.label(&r.sentence);
            ui.horizontal(|ui| {
                ui.weak("publish:");
                ui.add(
                    egui::Label::new(egui::RichText::new(&r.wanted.value).monospace()).truncate(),
                )
                .on_hover_text(&r.wanted.value);
            });
            let now = if r.found.is_empty() {
                "(nothing)".to_string()
            } else {
                r.found.join("  |  ")
            };
            ui.horizontal(|ui| {
                ui.weak("now:");
                ui.add(egui::Label::new(egui::RichText::new(&now).monospace()).truncate())
                    .on_hover_text(&now);
            });
        });
    }
}

/// ✓, ✗ or ? drawn in `colour` (drawn, so it needs no glyph in the font).
fn mark(ui: &mut egui::Ui, state: State, colour: egui::Color32) {
    let (rect, _) = ui.allocate_exact_size(egui::vec2(12.0, 12.0), egui::Sense::hover());
    let p = ui.painter();
    let stroke = egui::Stroke::new(2.0, colour);
    let at = |x: f32, y: f32| rect.min + egui::vec2(x, y);
    match state {
        State::Ok => {
            p.line_segment([at(1.5, 6.5), at(4.5, 10.0)], stroke);
            p.line_segment([at(4.5, 10.0), at(10.5, 2.0)], stroke);
        }
        State::Missing | State::Wrong => {
            p.line_segment([at(2.0, 2.0), at(10.0, 10.0)], stroke);
            p.line_segment([at(10.0, 2.0), at(2.0, 10.0)], stroke);
        }
        State::Unchecked => {
            p.circle_stroke(rect.center(), 4.5, stroke);
        }
    }
}

/// One check: the configuration and the keys as they are on disk now, then the lookups
/// through the resolver the configuration names.
async fn run(opts: EngineOptions) -> Result<Vec<Row>, String> {
    let read = tokio::task::spawn_blocking(move || {
        let cfg = edit::read(&opts.config_path).map_err(|e| e.to_string())?;
        let keys = KeyStore::new(&opts.data_dir);
        for d in &cfg.domains {
            keys.ensure(d, cfg.auth.dkim.ed25519)
                .map_err(|e| e.to_string())?;
        }
        let sels = records::selectors(&cfg, &keys).map_err(|e| e.to_string())?;
        Ok::<_, String>((cfg, sels))
    });
    let (cfg, sels) = read.await.map_err(|e| e.to_string())??;
    if cfg.domains.is_empty() {
        return Ok(Vec::new());
    }
    let resolver = Resolver::new(&cfg.outgoing_mails.dns_hosts).map_err(|e| e.to_string())?;
    let wanted = records::plan(&cfg, &sels, None);
    Ok(records::check(&resolver, &cfg, wanted).await)
}
