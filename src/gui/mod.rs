//! The desktop app (feature `gui`): an eframe window over a running engine. For now a status
//! strip (each listener and its sessions, mails delivered) and the live log; the settings
//! dialogs, queue pane and tray are the desktop-app issue's work.
//!
//! The engine runs on tokio worker threads; the UI only reads status and events and never
//! awaits. The engine wakes the UI through the repaint callback handed to its event bus.

use crate::engine::events::{Event, EventBus};
use crate::engine::{self, EngineHandle, EngineOptions};
use anyhow::{Context, Result};
use eframe::egui;
use std::collections::VecDeque;

/// Lines kept in the log pane.
const LOG_LINES: usize = 100_000;

/// Opens the window and runs until it is closed; the engine stops gracefully with it.
pub fn run(opts: EngineOptions, _no_tray: bool, minimized: bool) -> Result<()> {
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let events = EventBus::new();
    let handle = rt.block_on(engine::start(opts, events.clone()))?;
    let viewport = egui::ViewportBuilder::default()
        .with_title("Postern")
        .with_inner_size([960.0, 600.0]);
    let options = eframe::NativeOptions {
        viewport,
        renderer: eframe::Renderer::Glow,
        ..Default::default()
    };
    let mut app = Some(App::new(handle, events, rt));
    eframe::run_native(
        "Postern",
        options,
        Box::new(move |cc| {
            let app = app.take().expect("created once");
            let ctx = cc.egui_ctx.clone();
            if minimized {
                ctx.send_viewport_cmd(egui::ViewportCommand::Minimized(true));
            }
            app.events.set_wake(move || ctx.request_repaint());
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the window: {e}"))
}

struct App {
    /// The running engine; taken at exit to shut it down.
    handle: Option<EngineHandle>,
    /// The engine's events.
    events: EventBus,
    /// Live events not yet moved into `log`.
    live: tokio::sync::broadcast::Receiver<Event>,
    /// Lines shown in the log pane.
    log: VecDeque<String>,
    /// The runtime the engine runs on.
    rt: tokio::runtime::Runtime,
}

impl App {
    fn new(handle: EngineHandle, events: EventBus, rt: tokio::runtime::Runtime) -> Self {
        let live = events.subscribe();
        let log = events.recent().iter().map(Event::to_string).collect();
        App { handle: Some(handle), events, live, log, rt }
    }

    fn drain_events(&mut self) {
        use tokio::sync::broadcast::error::TryRecvError;
        loop {
            match self.live.try_recv() {
                Ok(ev) => {
                    if self.log.len() == LOG_LINES {
                        self.log.pop_front();
                    }
                    self.log.push_back(ev.to_string());
                }
                Err(TryRecvError::Lagged(n)) => self.log.push_back(format!("({n} log lines skipped)")),
                Err(_) => break,
            }
        }
    }
}

impl eframe::App for App {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.drain_events();
        let status = self.handle.as_ref().map(EngineHandle::status);
        egui::Panel::top("status").show(ui, |ui| {
            ui.horizontal_wrapped(|ui| {
                if let Some(s) = &status {
                    for l in &s.listeners {
                        let text = match (&l.addr, &l.error) {
                            (Some(a), _) => format!("● {} {} ({} open)", l.name, a, l.sessions),
                            (None, Some(e)) => format!("✖ {} {}: {e}", l.name, l.configured),
                            _ => format!("○ {} {}", l.name, l.configured),
                        };
                        ui.label(text);
                        ui.separator();
                    }
                    ui.label(format!("mails delivered: {}", s.stats.messages_accepted));
                }
            });
        });
        egui::CentralPanel::default().show(ui, |ui| {
            ui.heading("Live Logs");
            let row_h = ui.text_style_height(&egui::TextStyle::Monospace);
            egui::ScrollArea::vertical()
                .stick_to_bottom(true)
                .auto_shrink([false, false])
                .show_rows(ui, row_h, self.log.len(), |ui, range| {
                    for line in self.log.range(range) {
                        ui.monospace(line);
                    }
                });
        });
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        if let Some(h) = self.handle.take() {
            self.rt.block_on(h.shutdown());
        }
    }
}
