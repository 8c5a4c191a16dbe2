//! The desktop app driven headless with egui_kittest over a real engine started in-process on
//! loopback ports (temp configuration file and data directory). Dialogs are found by their
//! labels, values typed, buttons pressed, and the running engine is then checked over real
//! SMTP connections and on disk.

#![cfg(feature = "gui")]

use eframe::egui;
use egui_kittest::kittest::Queryable;
use egui_kittest::{Harness, HarnessBuilder};
use postern::engine::EngineOptions;
use postern::engine::config::{self, Config};
use postern::engine::events::EventBus;
use postern::engine::store::password;
use postern::gui::{Dialog, PosternApp, ServiceState, Services};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long a step of the engine (start, reload, stop) may take before a test gives up.
const PATIENCE: Duration = Duration::from_secs(60);

/// A temp directory with a configuration file and a data directory, and a runtime.
struct Env {
    _dir: tempfile::TempDir,
    cfg: PathBuf,
    data: PathBuf,
    rt: tokio::runtime::Runtime,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Env {
    /// Incoming SMTP on 127.0.0.1:`port`, plus whatever `tweak` changes.
    fn new(port: u16, tweak: impl FnOnce(&mut Config)) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("postern.ron");
        let data = dir.path().join("data");
        let mut c = Config::default();
        c.server.hostname = "postern.test".into();
        c.smtp.incoming.port = port;
        c.smtp.incoming.listen_ip = "127.0.0.1".into();
        c.smtp.outgoing.listen_ip = "127.0.0.1".into();
        c.smtp.timeouts.command = config::HumanDuration::from_secs(20);
        tweak(&mut c);
        config::save(&cfg, &c).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        Env {
            _dir: dir,
            cfg,
            data,
            rt,
        }
    }

    /// The app over a started engine, in a harness, once the services run.
    fn app(&self) -> Harness<'static, PosternApp> {
        let opts = EngineOptions {
            config_path: self.cfg.clone(),
            data_dir: self.data.clone(),
        };
        let mut services = Services::new(self.rt.handle().clone(), opts, EventBus::new());
        services.start();
        let mut h = HarnessBuilder::default()
            .with_size([1280.0, 900.0])
            // The app asks for a repaint every second (chart clock); let windows settle anyway.
            .with_max_steps(32)
            .build_ui_state(
                |ui, app: &mut PosternApp| app.ui(ui),
                PosternApp::new(services),
            );
        wait_for(&mut h, "the services to run", |h| {
            *h.state().services().state() == ServiceState::Running
        });
        h.run();
        h
    }

    fn load(&self) -> Config {
        config::load(&self.cfg).unwrap()
    }
}

/// Steps the UI until `cond` holds; panics after [`PATIENCE`].
fn wait_for(
    h: &mut Harness<'_, PosternApp>,
    what: &str,
    mut cond: impl FnMut(&mut Harness<'_, PosternApp>) -> bool,
) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        h.step();
        if cond(h) {
            return;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Replaces the text of the field labelled `label` as a user would: focus, select all, type.
fn set_field(h: &mut Harness<'_, PosternApp>, label: &str, text: &str) {
    h.get_by_label(label).focus();
    h.step();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.step();
    h.get_by_label(label).type_text(text);
    h.run();
    let shown = h.get_by_label(label).value().unwrap_or_default();
    let masked = shown.chars().count() == text.chars().count() && shown.chars().all(|c| c == '•');
    assert!(
        shown == text || masked,
        "field {label} shows {shown:?}, not {text:?}"
    );
}

fn click(h: &mut Harness<'_, PosternApp>, label: &str) {
    h.get_by_label(label).click();
    h.run();
}

/// The server's greeting on 127.0.0.1:`port`, if something answers there.
fn greeting(port: u16) -> Option<String> {
    let s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).ok()?;
    Some(line)
}

/// One SMTP client conversation; returns the reply to the first command that was not 2xx/3xx.
fn send_mail(port: u16, from: &str, to: &str, body: &str) -> Result<(), String> {
    let s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut reply = || -> Result<String, String> {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            r.read_line(&mut line).map_err(|e| e.to_string())?;
            if line.len() < 4 {
                return Err(format!("short reply {line:?}"));
            }
            all.push_str(&line);
            if line.as_bytes()[3] != b'-' {
                return Ok(all);
            }
        }
    };
    let ok = |r: String| {
        if r.starts_with('2') || r.starts_with('3') {
            Ok(())
        } else {
            Err(r)
        }
    };
    ok(reply()?)?;
    for cmd in [
        "EHLO client.test".to_string(),
        format!("MAIL FROM:<{from}>"),
        format!("RCPT TO:<{to}>"),
        "DATA".into(),
    ] {
        write!(w, "{cmd}\r\n").unwrap();
        ok(reply()?)?;
    }
    write!(w, "{body}\r\n.\r\n").unwrap();
    ok(reply()?)?;
    write!(w, "QUIT\r\n").unwrap();
    Ok(())
}

#[test]
fn changing_the_incoming_port_rebinds_the_running_server() {
    let (old, new) = (free_port(), free_port());
    let env = Env::new(old, |_| {});
    let mut h = env.app();
    assert!(greeting(old).unwrap().starts_with("220"));

    click(&mut h, "SMTP Settings");
    assert!(h.state().is_open(Dialog::Smtp));
    assert_eq!(
        h.get_by_label("Incoming SMTP Port").value().as_deref(),
        Some(old.to_string().as_str())
    );
    set_field(&mut h, "Incoming SMTP Port", &new.to_string());
    click(&mut h, "Apply");
    assert!(
        h.state().is_open(Dialog::Smtp),
        "Apply keeps the dialog open"
    );

    assert_eq!(env.load().smtp.incoming.port, new);
    wait_for(&mut h, "a 220 greeting on the new port", |_| {
        greeting(new).is_some_and(|g| g.starts_with("220"))
    });
    wait_for(&mut h, "the old port to close", |_| {
        TcpStream::connect(("127.0.0.1", old)).is_err()
    });
    wait_for(&mut h, "the status strip to show the new address", |h| {
        h.query_all_by_label_contains(&format!("127.0.0.1:{new} up"))
            .next()
            .is_some()
    });

    click(&mut h, "OK");
    assert!(!h.state().is_open(Dialog::Smtp), "OK closes the dialog");
}

#[test]
fn invalid_values_are_shown_beside_their_field_and_not_saved() {
    let port = free_port();
    let env = Env::new(port, |_| {});
    let mut h = env.app();
    let before = std::fs::read_to_string(&env.cfg).unwrap();

    click(&mut h, "SMTP Settings");
    set_field(&mut h, "Max Recipients Per Mail", "5");
    set_field(&mut h, "Data Timeout", "soon");
    click(&mut h, "Apply");
    h.get_by_label("must be at least 100 (RFC 5321 4.5.3.1.8)");
    h.get_by_label_contains("`soon` is not a duration");
    h.get_by_label("Not saved: 2 setting(s) need fixing.");
    assert_eq!(
        std::fs::read_to_string(&env.cfg).unwrap(),
        before,
        "nothing saved"
    );

    // Fixing them and pressing OK saves and closes.
    set_field(&mut h, "Max Recipients Per Mail", "250");
    set_field(&mut h, "Data Timeout", "2m");
    click(&mut h, "OK");
    assert!(!h.state().is_open(Dialog::Smtp));
    let cfg = env.load();
    assert_eq!(cfg.smtp.max_recipients_per_mail, 250);
    assert_eq!(
        cfg.smtp.timeouts.data,
        config::HumanDuration::from_secs(120)
    );
}

#[test]
fn cancel_leaves_the_file_alone() {
    let port = free_port();
    let env = Env::new(port, |_| {});
    let mut h = env.app();
    let before = std::fs::read_to_string(&env.cfg).unwrap();
    click(&mut h, "SMTP Settings");
    set_field(&mut h, "Max Connections Per Port", "7");
    click(&mut h, "Cancel");
    assert!(!h.state().is_open(Dialog::Smtp));
    assert_eq!(std::fs::read_to_string(&env.cfg).unwrap(), before);
}

#[test]
fn outgoing_smtp_can_be_enabled_on_its_own_port() {
    let (port, out) = (free_port(), free_port());
    let env = Env::new(port, |_| {});
    let mut h = env.app();
    assert!(greeting(out).is_none());

    click(&mut h, "SMTP Settings");
    click(&mut h, "Enable Outgoing SMTP");
    set_field(&mut h, "Outgoing SMTP Port", &out.to_string());
    click(&mut h, "OK");
    let cfg = env.load();
    assert!(cfg.smtp.outgoing.enabled);
    assert_eq!(cfg.smtp.outgoing.port, out);
    wait_for(&mut h, "a 220 greeting on the outgoing port", |_| {
        greeting(out).is_some_and(|g| g.starts_with("220"))
    });
}

#[test]
fn a_domain_and_account_added_in_the_dialog_receive_mail() {
    let port = free_port();
    let env = Env::new(port, |_| {});
    let mut h = env.app();
    // Nobody is local yet.
    assert!(
        send_mail(
            port,
            "bob@remote.test",
            "alice@example.test",
            "Subject: early\r\n\r\nhi"
        )
        .is_err()
    );

    click(&mut h, "Domains & Accounts");
    assert!(h.state().is_open(Dialog::Domains));
    set_field(&mut h, "New Domain", "example.test");
    click(&mut h, "Add Domain");
    set_field(&mut h, "User Name", "alice");
    set_field(&mut h, "Password", "correct horse");
    click(&mut h, "Add Account");
    h.get_by_label("alice@example.test");
    click(&mut h, "OK");
    assert!(!h.state().is_open(Dialog::Domains), "OK closes the dialog");

    let cfg = env.load();
    assert_eq!(cfg.domains, ["example.test"]);
    assert_eq!(cfg.accounts[0].address, "alice@example.test");
    assert!(
        password::verify(&cfg.accounts[0].password, "correct horse"),
        "stored as a hash of the password"
    );
    assert!(
        !std::fs::read_to_string(&env.cfg)
            .unwrap()
            .contains("correct horse")
    );

    let body = "Subject: hello from the GUI test\r\n\r\nIt works.";
    wait_for(
        &mut h,
        "the running server to accept mail for alice",
        |_| send_mail(port, "bob@remote.test", "alice@example.test", body).is_ok(),
    );
    let new = env.data.join("mailboxes/example.test/alice/new");
    let files: Vec<_> = std::fs::read_dir(&new)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        std::fs::read_to_string(&files[0])
            .unwrap()
            .contains("hello from the GUI test")
    );

    // The delivery shows up in the Live Logs pane, found through its text filter.
    set_field(&mut h, "Filter", "alice@example.test");
    wait_for(&mut h, "the delivery line in the Live Logs pane", |h| {
        h.query_all_by_label_contains("to <alice@example.test>")
            .next()
            .is_some()
    });
    assert!(h.state().logs.len() > 1);
}

#[test]
fn set_password_and_remove_account() {
    let port = free_port();
    let env = Env::new(port, |c| {
        c.domains = vec!["example.test".into()];
        c.accounts = vec![config::Account {
            address: "carol@example.test".into(),
            password: password::hash("old"),
        }];
    });
    let mut h = env.app();
    click(&mut h, "Domains & Accounts");
    click(&mut h, "carol@example.test");
    set_field(&mut h, "New Password", "new one");
    click(&mut h, "Set Password");
    click(&mut h, "Apply");
    assert!(password::verify(
        &env.load().accounts[0].password,
        "new one"
    ));

    click(&mut h, "Remove Account");
    click(&mut h, "Remove Domain");
    click(&mut h, "OK");
    let cfg = env.load();
    assert!(cfg.accounts.is_empty());
    assert!(cfg.domains.is_empty());
}

#[test]
fn stop_and_start_services_from_the_toolbar() {
    let port = free_port();
    let env = Env::new(port, |_| {});
    let mut h = env.app();
    assert!(greeting(port).is_some());

    click(&mut h, "Stop Services");
    wait_for(&mut h, "the services to stop", |h| {
        *h.state().services().state() == ServiceState::Stopped
    });
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens once stopped"
    );
    h.get_by_label("Services: stopped");

    click(&mut h, "Start Services");
    wait_for(&mut h, "the services to run again", |h| {
        *h.state().services().state() == ServiceState::Running
    });
    wait_for(&mut h, "a greeting after the restart", |_| {
        greeting(port).is_some_and(|g| g.starts_with("220"))
    });
    h.get_by_label("Services: running");
}

#[test]
fn log_views_and_level_filter() {
    let port = free_port();
    let env = Env::new(port, |_| {});
    let mut h = env.app();
    // A session with a refused recipient: SMTP In lines at Debug/Info level.
    assert!(
        send_mail(
            port,
            "x@remote.test",
            "nobody@nowhere.test",
            "Subject: x\r\n\r\n."
        )
        .is_err()
    );
    wait_for(&mut h, "the session in the log", |h| {
        h.query_all_by_label_contains("RCPT TO:<nobody@nowhere.test>")
            .next()
            .is_some()
    });

    click(&mut h, "System");
    assert!(
        h.query_all_by_label_contains("RCPT TO:<nobody@nowhere.test>")
            .next()
            .is_none(),
        "System view hides SMTP lines"
    );
    let _ = h.get_all_by_label_contains("SMTP listening on 127.0.0.1");
    click(&mut h, "SMTP In");
    let _ = h.get_all_by_label_contains("RCPT TO:<nobody@nowhere.test>");
    h.get_by_label("Level").click();
    h.run();
    click(&mut h, "Info");
    assert!(
        h.query_all_by_label_contains("RCPT TO:<nobody@nowhere.test>")
            .next()
            .is_none(),
        "commands are Debug lines"
    );
    let _ = h.get_all_by_label_contains("recipient <nobody@nowhere.test> refused");
}
