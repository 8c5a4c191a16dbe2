//! The real `postern gui` with its system tray, under Xvfb and a private D-Bus session bus.
//! The test plays the tray host: it owns `org.kde.StatusNotifierWatcher`, takes the icon's
//! registration, and clicks the tray menu through the `com.canonical.dbusmenu` interface as a
//! panel would. The window is watched and closed over X11 (`WM_DELETE_WINDOW`, what a window
//! manager's close button sends).
//!
//! Needs Xvfb, dbus-daemon and libayatana-appindicator3 (Debian: xvfb, dbus,
//! libayatana-appindicator3-1).

#![cfg(feature = "gui")]

use glib::ToVariant;
use gtk::{gio, glib};
use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{self, ConnectionExt as _, EventMask, MapState};
use x11rb::rust_connection::RustConnection;

const PATIENCE: Duration = Duration::from_secs(60);

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a program that prints one line (the bus address) on stdout when ready.
fn start_printing(cmd: &mut Command, what: &str) -> (Proc, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what} ({e}); install it (Debian: xvfb, dbus)"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(!line.trim().is_empty(), "{what} printed nothing");
    (Proc(child), line.trim().to_string())
}

fn until<T>(what: &str, f: impl FnMut() -> Option<T>) -> T {
    until_or(what, f, String::new)
}

/// `until`, with `why` describing the state when it gives up.
fn until_or<T>(what: &str, mut f: impl FnMut() -> Option<T>, why: impl Fn() -> String) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "gave up waiting for {what}\n{}",
            why()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An X server and a session bus of the test's own.
struct Desktop {
    _x: Proc,
    _bus: Proc,
    display: String,
    bus: String,
}

/// Starts an X server on a display number of this test's own (moving on if it is taken), so
/// that two tests starting at once never probe the same numbers. `-noreset`: by default an X
/// server resets when its last client leaves, and an app connecting during that reset fails
/// ("Failed to open connection to X server"); the test's own short connections to look for
/// the window would cause exactly that while the app starts.
fn desktop() -> Desktop {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = 100 + (std::process::id() % 200) * 16;
    let (x, display) = (0..64)
        .find_map(|_| {
            let n = base + NEXT.fetch_add(1, Ordering::Relaxed);
            let mut child = Command::new("Xvfb")
                .arg(format!(":{n}"))
                .args(["-displayfd", "1", "-screen", "0", "1024x768x24"])
                .args(["-nolisten", "tcp", "-noreset"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run Xvfb ({e}); install it (Debian: xvfb)"));
            let mut line = String::new();
            let _ = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
            let x = Proc(child);
            (line.trim() == n.to_string()).then(|| (x, format!(":{n}")))
        })
        .expect("no free X display number");
    until("the X server", || x11rb::connect(Some(&display)).ok());
    let (bus_proc, bus) = start_printing(
        Command::new("dbus-daemon").args(["--session", "--nofork", "--print-address=1"]),
        "dbus-daemon",
    );
    Desktop {
        _x: x,
        _bus: bus_proc,
        display,
        bus,
    }
}

/// The test's tray host: owns the StatusNotifierWatcher name and records registrations
/// (bus name, object path).
fn tray_host(bus: &str) -> Arc<Mutex<Vec<(String, String)>>> {
    const XML: &str = r#"<node><interface name="org.kde.StatusNotifierWatcher">
<method name="RegisterStatusNotifierItem"><arg type="s" direction="in"/></method>
<method name="RegisterStatusNotifierHost"><arg type="s" direction="in"/></method>
<property name="RegisteredStatusNotifierItems" type="as" access="read"/>
<property name="IsStatusNotifierHostRegistered" type="b" access="read"/>
<property name="ProtocolVersion" type="i" access="read"/>
</interface></node>"#;
    let items = Arc::new(Mutex::new(Vec::new()));
    let (ready_tx, ready_rx) = mpsc::channel();
    let (bus, seen) = (bus.to_string(), items.clone());
    std::thread::spawn(move || {
        let ctx = glib::MainContext::new();
        ctx.with_thread_default(|| {
            let conn = gio::DBusConnection::for_address_sync(
                &bus,
                gio::DBusConnectionFlags::AUTHENTICATION_CLIENT
                    | gio::DBusConnectionFlags::MESSAGE_BUS_CONNECTION,
                None,
                None::<&gio::Cancellable>,
            )
            .unwrap();
            let node = gio::DBusNodeInfo::for_xml(XML).unwrap();
            let iface = node
                .lookup_interface("org.kde.StatusNotifierWatcher")
                .unwrap();
            let list = seen.clone();
            conn.register_object(
                "/StatusNotifierWatcher",
                &iface,
                move |_, sender, _, _, method, params, inv| {
                    if method == "RegisterStatusNotifierItem" {
                        let arg: String = params.child_value(0).get().unwrap_or_default();
                        let (name, path) = if arg.starts_with('/') {
                            (sender.to_string(), arg)
                        } else {
                            (arg, "/StatusNotifierItem".to_string())
                        };
                        list.lock().unwrap().push((name, path));
                    }
                    inv.return_value(None);
                },
                move |_, _, _, _, prop| match prop {
                    "IsStatusNotifierHostRegistered" => true.to_variant(),
                    "ProtocolVersion" => 0i32.to_variant(),
                    _ => Vec::<String>::new().to_variant(),
                },
                |_, _, _, _, _, _| false,
            )
            .unwrap();
            conn.call_sync(
                Some("org.freedesktop.DBus"),
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus",
                "RequestName",
                Some(&("org.kde.StatusNotifierWatcher", 4u32).to_variant()),
                None,
                gio::DBusCallFlags::NONE,
                5000,
                None::<&gio::Cancellable>,
            )
            .unwrap();
            ready_tx.send(()).unwrap();
            glib::MainLoop::new(Some(&ctx), false).run();
        })
        .unwrap();
    });
    ready_rx.recv_timeout(PATIENCE).expect("tray host ready");
    items
}

/// The tray menu of the registered item, clicked and read over dbusmenu.
struct TrayMenu {
    conn: gio::DBusConnection,
    name: String,
    path: String,
}

impl TrayMenu {
    fn new(bus: &str, item: &(String, String)) -> TrayMenu {
        let conn = gio::DBusConnection::for_address_sync(
            bus,
            gio::DBusConnectionFlags::AUTHENTICATION_CLIENT
                | gio::DBusConnectionFlags::MESSAGE_BUS_CONNECTION,
            None,
            None::<&gio::Cancellable>,
        )
        .unwrap();
        let reply = conn
            .call_sync(
                Some(&item.0),
                &item.1,
                "org.freedesktop.DBus.Properties",
                "Get",
                Some(&("org.kde.StatusNotifierItem", "Menu").to_variant()),
                None,
                gio::DBusCallFlags::NONE,
                5000,
                None::<&gio::Cancellable>,
            )
            .unwrap();
        let path = reply
            .child_value(0)
            .as_variant()
            .unwrap()
            .str()
            .unwrap()
            .to_string();
        TrayMenu {
            conn,
            name: item.0.clone(),
            path,
        }
    }

    fn call(&self, method: &str, args: glib::Variant) -> glib::Variant {
        self.conn
            .call_sync(
                Some(&self.name),
                &self.path,
                "com.canonical.dbusmenu",
                method,
                Some(&args),
                None,
                gio::DBusCallFlags::NONE,
                5000,
                None::<&gio::Cancellable>,
            )
            .unwrap()
    }

    /// (id, label, enabled) of every item.
    fn items(&self) -> Vec<(i32, String, bool)> {
        fn walk(node: &glib::Variant, out: &mut Vec<(i32, String, bool)>) {
            let id: i32 = node.child_value(0).get().unwrap();
            let props = glib::VariantDict::new(Some(&node.child_value(1)));
            let label = props
                .lookup_value("label", None)
                .and_then(|v| v.get::<String>());
            let enabled = props
                .lookup_value("enabled", None)
                .and_then(|v| v.get::<bool>())
                .unwrap_or(true);
            if let Some(l) = label {
                out.push((id, l, enabled));
            }
            let children = node.child_value(2);
            for i in 0..children.n_children() {
                walk(&children.child_value(i).as_variant().unwrap(), out);
            }
        }
        let layout = self.call(
            "GetLayout",
            (0i32, -1i32, Vec::<String>::new()).to_variant(),
        );
        let mut out = Vec::new();
        walk(&layout.child_value(1), &mut out);
        out
    }

    fn enabled(&self, label: &str) -> bool {
        self.items().iter().any(|(_, l, e)| l == label && *e)
    }

    fn click(&self, label: &str) {
        let items = self.items();
        let id = items
            .iter()
            .find(|(_, l, _)| l == label)
            .unwrap_or_else(|| panic!("no tray menu item {label:?} in {items:?}"))
            .0;
        self.call(
            "Event",
            (id, "clicked", 0i32.to_variant(), 0u32).to_variant(),
        );
    }
}

/// The app's top-level window on the X server.
struct XWindow {
    conn: RustConnection,
    win: xproto::Window,
}

impl XWindow {
    /// The app's window once it is mapped. Every top-level window named "Postern" is a
    /// candidate: without a tray host, appindicator's fallback (a GtkStatusIcon) makes an
    /// unmapped plug window with the same title, which may come first in the stacking order.
    fn find(display: &str) -> Option<XWindow> {
        let (conn, screen) = x11rb::connect(Some(display)).ok()?;
        let root = conn.setup().roots[screen].root;
        let net_wm_name = conn
            .intern_atom(false, b"_NET_WM_NAME")
            .ok()?
            .reply()
            .ok()?
            .atom;
        let tree = conn.query_tree(root).ok()?.reply().ok()?;
        let named: Vec<xproto::Window> = tree
            .children
            .into_iter()
            .filter(|&w| {
                [xproto::AtomEnum::WM_NAME.into(), net_wm_name]
                    .into_iter()
                    .any(|prop| {
                        conn.get_property(false, w, prop, xproto::AtomEnum::ANY, 0, 64)
                            .ok()
                            .and_then(|c| c.reply().ok())
                            .is_some_and(|r| r.value == b"Postern")
                    })
            })
            .collect();
        let mut conn = Some(conn);
        for win in named {
            let w = XWindow {
                conn: conn.take()?,
                win,
            };
            if w.viewable() {
                return Some(w);
            }
            conn = Some(w.conn);
        }
        None
    }

    fn viewable(&self) -> bool {
        self.conn
            .get_window_attributes(self.win)
            .ok()
            .and_then(|c| c.reply().ok())
            .is_some_and(|a| a.map_state == MapState::VIEWABLE)
    }

    /// Presses and releases Return on the keyboard (XTest, as a real key), with the pointer
    /// and the input focus on the window.
    fn press_return(&self) {
        use x11rb::protocol::xtest::ConnectionExt as _;
        let setup = self.conn.setup();
        let root = setup.roots[0].root;
        let (min, max) = (setup.min_keycode, setup.max_keycode);
        let map = self
            .conn
            .get_keyboard_mapping(min, max - min + 1)
            .unwrap()
            .reply()
            .unwrap();
        let per = map.keysyms_per_keycode as usize;
        let at = map
            .keysyms
            .iter()
            .position(|&k| k == 0xff0d)
            .expect("a keycode for Return");
        let code = min + (at / per) as u8;
        self.conn
            .warp_pointer(x11rb::NONE, self.win, 0, 0, 0, 0, 40, 40)
            .unwrap();
        self.conn
            .set_input_focus(xproto::InputFocus::PARENT, self.win, x11rb::CURRENT_TIME)
            .unwrap();
        for kind in [xproto::KEY_PRESS_EVENT, xproto::KEY_RELEASE_EVENT] {
            self.conn
                .xtest_fake_input(kind, code, x11rb::CURRENT_TIME, root, 0, 0, 0)
                .unwrap();
        }
        self.conn.flush().unwrap();
    }

    /// What a window manager's close button sends.
    fn close(&self) {
        let atom = |n: &[u8]| {
            self.conn
                .intern_atom(false, n)
                .unwrap()
                .reply()
                .unwrap()
                .atom
        };
        let (protocols, delete) = (atom(b"WM_PROTOCOLS"), atom(b"WM_DELETE_WINDOW"));
        let ev = xproto::ClientMessageEvent::new(
            32,
            self.win,
            protocols,
            [delete, x11rb::CURRENT_TIME, 0, 0, 0],
        );
        self.conn
            .send_event(false, self.win, EventMask::NO_EVENT, ev)
            .unwrap();
        self.conn.flush().unwrap();
    }
}

/// Waits for the app's window to be mapped; if it is not, says what the X server and the app
/// show.
fn window_of(d: &Desktop, app: &mut Proc, dir: &Path) -> XWindow {
    until_or(
        "the window",
        || {
            if let Some(status) = app.0.try_wait().unwrap() {
                panic!("the app ended ({status:?})\n{}", log_of(dir));
            }
            XWindow::find(&d.display)
        },
        || {
            let tree = Command::new("xwininfo")
                .args(["-root", "-tree", "-display", &d.display])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            format!(
                "windows on {}:\n{tree}\napp log:\n{}",
                d.display,
                log_of(dir)
            )
        },
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn answers(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// Starts `postern gui` on this desktop with incoming SMTP on `port`; stderr goes to `log`.
fn start_app(d: &Desktop, dir: &Path, port: u16) -> Proc {
    let bin = env!("CARGO_BIN_EXE_postern");
    let cfg = dir.join("postern.ron");
    let data = dir.join("data");
    let set = Command::new(bin)
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
            "config",
            "set",
        ])
        .arg(format!("smtp.incoming.port={port}"))
        .arg("smtp.incoming.listen_ip=127.0.0.1")
        .arg("pop3.enabled=false")
        .status()
        .unwrap();
    assert!(set.success());
    let log = std::fs::File::create(dir.join("app.log")).unwrap();
    let child = Command::new(bin)
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
            "gui",
        ])
        .env("DISPLAY", &d.display)
        .env("DBUS_SESSION_BUS_ADDRESS", &d.bus)
        .env("NO_AT_BRIDGE", "1")
        .env("XDG_RUNTIME_DIR", dir)
        .env_remove("WAYLAND_DISPLAY")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Proc(child)
}

fn log_of(dir: &Path) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(dir.join("app.log")) {
        let _ = f.read_to_string(&mut s);
    }
    s
}

#[test]
fn closing_hides_to_the_tray_and_the_tray_menu_drives_the_app() {
    let d = desktop();
    let items = tray_host(&d.bus);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut app = start_app(&d, dir.path(), port);

    let win = window_of(&d, &mut app, dir.path());
    let item = until("the tray icon to register", || {
        items.lock().unwrap().first().cloned()
    });
    let menu = TrayMenu::new(&d.bus, &item);
    until("the services to run", || {
        (answers(port) && menu.enabled("Stop Services")).then_some(())
    });
    assert!(!menu.enabled("Start Services"));
    assert!(log_of(dir.path()).contains("system tray icon shown"));

    // The close button hides the window; the app and the server go on.
    win.close();
    until("the window to hide", || (!win.viewable()).then_some(()));
    assert!(app.0.try_wait().unwrap().is_none(), "the app still runs");
    assert!(answers(port));
    until("the menu to offer Show Window", || {
        menu.items()
            .iter()
            .any(|(_, l, _)| l == "Show Window")
            .then_some(())
    });

    menu.click("Show Window");
    until("the window to show again", || win.viewable().then_some(()));

    menu.click("Stop Services");
    until("the server to stop", || {
        (!answers(port) && menu.enabled("Start Services")).then_some(())
    });
    menu.click("Start Services");
    until("the server to run again", || {
        (answers(port) && menu.enabled("Stop Services")).then_some(())
    });

    menu.click("Hide Window");
    until("the window to hide", || (!win.viewable()).then_some(()));
    menu.click("Quit Postern");
    let status = until("the app to quit", || app.0.try_wait().unwrap());
    assert!(status.success(), "{status:?}\n{}", log_of(dir.path()));
    assert!(!answers(port), "the server stopped with the app");
}

/// Without a tray host the window's close button would stop the mail server: the app asks
/// first, and quits when the question is answered (Return takes its default, Stop and Quit).
/// The window's state is then saved in the data directory.
#[test]
fn without_a_tray_host_closing_the_window_asks_then_quits() {
    let d = desktop();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut app = start_app(&d, dir.path(), port);

    let win = window_of(&d, &mut app, dir.path());
    until("the server", || answers(port).then_some(()));
    win.close();
    until("the question", || {
        log_of(dir.path())
            .contains("asking whether to stop the mail server")
            .then_some(())
    });
    assert!(app.0.try_wait().unwrap().is_none(), "the app still runs");
    assert!(answers(port), "and so does the mail server");
    // Key presses until the app has gone (the first may reach the window before it has
    // drawn the question and focused its button).
    let status = until("the app to quit", || {
        if let Some(st) = app.0.try_wait().unwrap() {
            return Some(st);
        }
        win.press_return();
        std::thread::sleep(Duration::from_millis(200));
        None
    });
    assert!(status.success(), "{status:?}\n{}", log_of(dir.path()));
    assert!(
        log_of(dir.path()).contains("no system tray host"),
        "{}",
        log_of(dir.path())
    );
    // The window's state (filters, pane, chart) was saved in the data directory it showed,
    // not in a per-user file two Posterns would share.
    let state = std::fs::read_to_string(dir.path().join("data/window.ron"))
        .expect("window state in the data directory");
    assert!(state.contains("postern_prefs"), "{state}");
}
