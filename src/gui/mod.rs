//! The desktop app (feature `gui`): an eframe window (glow) over a running engine, with the
//! settings dialogs, the Live Logs pane, a mails-per-minute chart and a system tray icon.
//!
//! Threads: eframe keeps the main thread; the engine runs on a tokio runtime's worker threads;
//! the tray has its own GTK thread. The UI never blocks or awaits: it reads
//! [`EngineHandle::status`](crate::engine::EngineHandle::status) and the event bus, starts and
//! stops the engine through [`services::Services`] (tasks that report back over a channel), and
//! edits settings by saving the configuration file and sending `Command::Reload`. The engine
//! wakes the UI through the repaint callback handed to its event bus.
//!
//! Code map: [`app`] is the window's contents (testable without eframe), [`dialogs`] the
//! settings dialogs (SMTP Settings, Access Control, Outgoing Mails, Abuse & Spam, Domains &
//! Accounts), [`panes`] the Live Logs and Queued Mails panes and the chart, [`services`] the
//! engine's lifecycle, [`tray`] the tray icon, [`icon`] the drawn icon.

pub mod app;
pub mod checklist;
pub mod dialogs;
pub mod icon;
pub mod panes;
pub mod services;
pub mod tray;

pub use app::{Dialog, PosternApp, Prefs};

/// The window's size when it first opens (the status strip is made to fit it on one line).
pub const DEFAULT_SIZE: [f32; 2] = [1040.0, 680.0];
pub use services::{ServiceState, Services};

use crate::engine::EngineOptions;
use crate::engine::events::{EventBus, EventKind, Level};
use eframe::egui;

/// Key of the window settings in eframe's storage.
const PREFS_KEY: &str = "postern_prefs";

/// Why the desktop app could not run.
#[derive(Debug, thiserror::Error)]
pub enum GuiError {
    /// The tokio runtime the engine runs on could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// eframe could not open the window (no display, no GL).
    #[error("cannot open the window: {0}")]
    Window(String),
}

/// Opens the window and runs until it is closed; the engine stops gracefully with it.
///
/// `no_tray` skips the tray icon; `minimized` starts hidden in the tray (or minimized when
/// there is no tray). The hidden variable `POSTERN_GUI_OPEN_DIALOG` (smtp, access, outgoing,
/// abuse, domains, dns, pop3, imap, testmail, about; or `queue` for the Queued Mails pane)
/// opens it at start, for screenshots.
pub fn run(opts: EngineOptions, no_tray: bool, minimized: bool) -> Result<(), GuiError> {
    let rt = tokio::runtime::Runtime::new().map_err(GuiError::Runtime)?;
    let events = EventBus::new();
    // The window's state (filters, pane, chart) is kept in the data directory it shows: two
    // Posterns with different data directories do not share it.
    let persistence_path = Some(opts.data_dir.join("window.ron"));
    let mut services = Services::new(rt.handle().clone(), opts, events.clone());
    services.start();
    let open_at_start = std::env::var("POSTERN_GUI_OPEN_DIALOG").unwrap_or_default();
    let open_dialog = Dialog::from_name(&open_at_start);
    let open_queue = open_at_start.trim() == "queue";

    let viewport = egui::ViewportBuilder::default()
        .with_title("Postern")
        .with_app_id("postern")
        .with_icon(icon::window_icon())
        .with_inner_size(DEFAULT_SIZE)
        .with_min_inner_size([640.0, 400.0]);
    let options = eframe::NativeOptions {
        viewport,
        renderer: eframe::Renderer::Glow,
        persistence_path,
        ..Default::default()
    };
    let mut services = Some(services);
    let result = eframe::run_native(
        "Postern",
        options,
        Box::new(move |cc| {
            let ctx = cc.egui_ctx.clone();
            let mut services = services.take().expect("created once");
            let wake_ctx = ctx.clone();
            services.set_wake(move || wake_ctx.request_repaint());
            let wake_ctx = ctx.clone();
            events.set_wake(move || wake_ctx.request_repaint());
            let mut app = PosternApp::new(services);
            if let Some(prefs) = cc
                .storage
                .and_then(|s| eframe::get_value::<Prefs>(s, PREFS_KEY))
            {
                app.set_prefs(prefs);
            }
            if no_tray {
                note(&events, Level::Info, "system tray: off (--no-tray)".into());
            } else {
                let wake_ctx = ctx.clone();
                match tray::spawn(move || wake_ctx.request_repaint()) {
                    Ok(t) => {
                        if t.has_host() {
                            note(&events, Level::Info, "system tray icon shown".into());
                        } else {
                            note(
                                &events,
                                Level::Warn,
                                "no system tray host is running (no StatusNotifierWatcher on D-Bus); \
                                 closing the window quits"
                                    .into(),
                            );
                        }
                        app.set_tray(t);
                    }
                    Err(e) => note(
                        &events,
                        Level::Warn,
                        format!("running without a system tray: {e}"),
                    ),
                }
            }
            if open_queue {
                app.prefs.pane = app::Pane::Queue;
            }
            if let Some(d) = open_dialog {
                app.open(d);
            }
            Ok(Box::new(Window {
                app,
                start_hidden: minimized,
            }))
        }),
    );
    result.map_err(|e| GuiError::Window(e.to_string()))
}

/// Logs a line of the app's own, once, in the System log (and on stderr).
fn note(events: &EventBus, level: Level, text: String) {
    eprintln!("postern: {text}");
    events.emit(level, None, EventKind::Note { text });
}

/// eframe's side of the window.
struct Window {
    /// The contents.
    app: PosternApp,
    /// `--minimized`: hide (or minimize) at the first frame.
    start_hidden: bool,
}

impl eframe::App for Window {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        if std::mem::take(&mut self.start_hidden) {
            self.app.set_visible(ctx, false);
        }
        self.app.tick(ctx);
        if ctx.input(|i| i.viewport().close_requested()) {
            self.app.on_close_requested(ctx);
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.app.ui(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, PREFS_KEY, &self.app.current_prefs());
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        if let Some(t) = self.app.take_tray() {
            t.shutdown();
        }
        self.app.services_mut().shutdown_blocking();
    }
}
