//! The system tray icon (tray-icon over libayatana-appindicator), on its own GTK thread.
//!
//! The tray is optional. Without the appindicator library, without a display GTK can open, or
//! without a tray host (a StatusNotifierWatcher on the session D-Bus) [`spawn`] reports why and
//! the app runs without it; nothing here panics the app (the library is probed before
//! tray-icon would panic on it, and building the icon runs under `catch_unwind`). The window
//! only hides to the tray when [`Tray::has_host`] says someone shows the icon.
//!
//! The GUI talks to the thread through channels: [`TrayState`] in (icon, tooltip, menu
//! labels), [`TrayAction`] out (menu clicks), plus a wake callback so the UI runs its logic
//! even while the window is hidden.

use super::icon::{self, Badge};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// What the tray menu asks of the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayAction {
    /// Show the window if hidden, hide it if shown.
    ToggleWindow,
    /// Start the mail services.
    Start,
    /// Stop the mail services.
    Stop,
    /// Quit the app.
    Quit,
}

/// What the tray shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrayState {
    /// The status dot.
    pub badge: Badge,
    /// Tooltip text (where the host shows one).
    pub tooltip: String,
    /// Whether the window is shown (the menu then offers "Hide Window").
    pub window_visible: bool,
    /// Whether "Start Services" is possible.
    pub can_start: bool,
    /// Whether "Stop Services" is possible.
    pub can_stop: bool,
}

enum Msg {
    State(TrayState),
    Quit,
}

/// The running tray.
pub struct Tray {
    /// State updates to the GTK thread.
    updates: mpsc::Sender<Msg>,
    /// Menu clicks from the GTK thread.
    actions: mpsc::Receiver<TrayAction>,
    /// Whether a tray host shows the icon.
    host: bool,
    /// The last state sent, to send only changes.
    last: Option<TrayState>,
    /// The GTK thread.
    thread: Option<JoinHandle<()>>,
}

impl Tray {
    /// Whether a tray host shows the icon (only then may the window hide).
    pub fn has_host(&self) -> bool {
        self.host
    }

    /// Menu clicks since the last call.
    pub fn actions(&self) -> Vec<TrayAction> {
        self.actions.try_iter().collect()
    }

    /// Updates icon, tooltip and menu when `state` differs from what is shown.
    pub fn update(&mut self, state: TrayState) {
        if self.last.as_ref() != Some(&state) {
            self.last = Some(state.clone());
            let _ = self.updates.send(Msg::State(state));
        }
    }

    /// Removes the icon and ends the GTK thread.
    pub fn shutdown(mut self) {
        let _ = self.updates.send(Msg::Quit);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Whether libayatana-appindicator3 (or libappindicator3) can be loaded: tray-icon panics
/// without it, so it is probed first with the same names.
fn appindicator_available() -> bool {
    [
        c"libayatana-appindicator3.so.1",
        c"libappindicator3.so.1",
        c"libayatana-appindicator3.so",
        c"libappindicator3.so",
    ]
    .iter()
    .any(|name| {
        // SAFETY: dlopen with a valid NUL-terminated name; the handle is closed at once.
        let h = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL) };
        if h.is_null() {
            false
        } else {
            // SAFETY: `h` came from dlopen above.
            unsafe { libc::dlclose(h) };
            true
        }
    })
}

/// Whether a StatusNotifierWatcher (the tray host protocol appindicator speaks) is on the
/// session bus.
fn tray_host_present() -> bool {
    use glib::ToVariant;
    use gtk::{gio, glib};
    let Ok(conn) = gio::bus_get_sync(gio::BusType::Session, None::<&gio::Cancellable>) else {
        return false;
    };
    let reply = conn.call_sync(
        Some("org.freedesktop.DBus"),
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "NameHasOwner",
        Some(&("org.kde.StatusNotifierWatcher",).to_variant()),
        glib::VariantTy::new("(b)").ok(),
        gio::DBusCallFlags::NONE,
        2000,
        None::<&gio::Cancellable>,
    );
    reply
        .ok()
        .and_then(|v| v.get::<(bool,)>())
        .is_some_and(|(b,)| b)
}

fn tray_icon_for(badge: Badge) -> Option<tray_icon::Icon> {
    tray_icon::Icon::from_rgba(icon::rgba(64, badge), 64, 64).ok()
}

/// Starts the tray thread and waits until it is up or has failed (a few seconds at most).
/// `wake` is called after each menu click (the app's repaint request).
pub fn spawn(wake: impl Fn() + Send + Sync + 'static) -> Result<Tray, String> {
    if !appindicator_available() {
        return Err("the appindicator library (libayatana-appindicator3) is not installed".into());
    }
    let (ready_tx, ready_rx) = mpsc::channel::<Result<bool, String>>();
    let (updates_tx, updates_rx) = mpsc::channel::<Msg>();
    let (actions_tx, actions_rx) = mpsc::channel::<TrayAction>();
    let thread = std::thread::Builder::new()
        .name("tray".into())
        .spawn(move || gtk_thread(ready_tx, updates_rx, actions_tx, wake))
        .map_err(|e| format!("cannot start the tray thread: {e}"))?;
    match ready_rx.recv_timeout(Duration::from_secs(10)) {
        Ok(Ok(host)) => Ok(Tray {
            updates: updates_tx,
            actions: actions_rx,
            host,
            last: None,
            thread: Some(thread),
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => Err("the tray did not start in time".into()),
    }
}

fn gtk_thread(
    ready: mpsc::Sender<Result<bool, String>>,
    updates: mpsc::Receiver<Msg>,
    actions: mpsc::Sender<TrayAction>,
    wake: impl Fn() + Send + Sync + 'static,
) {
    use tray_icon::menu::{Menu, MenuEvent, MenuItem, PredefinedMenuItem};
    if let Err(e) = gtk::init() {
        let _ = ready.send(Err(format!("GTK cannot start ({e})")));
        return;
    }
    let toggle = MenuItem::with_id("toggle", "Hide Window", true, None);
    let start = MenuItem::with_id("start", "Start Services", false, None);
    let stop = MenuItem::with_id("stop", "Stop Services", false, None);
    let quit = MenuItem::with_id("quit", "Quit Postern", true, None);
    let menu = Menu::new();
    let appended = menu.append_items(&[
        &toggle,
        &PredefinedMenuItem::separator(),
        &start,
        &stop,
        &PredefinedMenuItem::separator(),
        &quit,
    ]);
    if let Err(e) = appended {
        let _ = ready.send(Err(format!("cannot build the tray menu: {e}")));
        return;
    }
    MenuEvent::set_event_handler(Some(move |ev: MenuEvent| {
        let action = match ev.id.0.as_str() {
            "toggle" => TrayAction::ToggleWindow,
            "start" => TrayAction::Start,
            "stop" => TrayAction::Stop,
            "quit" => TrayAction::Quit,
            _ => return,
        };
        let _ = actions.send(action);
        wake();
    }));
    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut b = tray_icon::TrayIconBuilder::new()
            .with_id("postern")
            .with_menu(Box::new(menu.clone()))
            .with_tooltip("Postern");
        if let Some(i) = tray_icon_for(Badge::Stopped) {
            b = b.with_icon(i);
        }
        b.build()
    }));
    let tray = match built {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            let _ = ready.send(Err(format!("cannot create the tray icon: {e}")));
            return;
        }
        Err(_) => {
            let _ = ready.send(Err(
                "cannot create the tray icon (the appindicator library failed)".into(),
            ));
            return;
        }
    };
    let _ = ready.send(Ok(tray_host_present()));
    let mut badge = Badge::Stopped;
    gtk::glib::timeout_add_local(Duration::from_millis(150), move || {
        loop {
            match updates.try_recv() {
                Ok(Msg::State(s)) => {
                    if s.badge != badge {
                        badge = s.badge;
                        let _ = tray.set_icon(tray_icon_for(badge));
                    }
                    let _ = tray.set_tooltip(Some(&s.tooltip));
                    toggle.set_text(if s.window_visible {
                        "Hide Window"
                    } else {
                        "Show Window"
                    });
                    start.set_enabled(s.can_start);
                    stop.set_enabled(s.can_stop);
                }
                Ok(Msg::Quit) | Err(mpsc::TryRecvError::Disconnected) => {
                    let _ = tray.set_visible(false);
                    gtk::main_quit();
                    return gtk::glib::ControlFlow::Break;
                }
                Err(mpsc::TryRecvError::Empty) => return gtk::glib::ControlFlow::Continue,
            }
        }
    });
    gtk::main();
}
