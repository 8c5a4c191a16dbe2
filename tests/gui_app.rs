//! The desktop app driven headless with egui_kittest over a real engine started in-process on
//! loopback ports (temp configuration file and data directory). Dialogs are found by their
//! labels, values typed, buttons pressed, and the running engine is then checked over real
//! SMTP connections and on disk.

#![cfg(feature = "gui")]

mod dns_common;

use eframe::egui;
use egui_kittest::kittest::{NodeT, Queryable};
use egui_kittest::{Harness, HarnessBuilder};
use postern::engine::EngineOptions;
use postern::engine::config::{self, Config};
use postern::engine::events::{EventBus, EventKind, Level};
use postern::engine::queue::{PageQuery, QueueEntry};
use postern::engine::store::password;
use postern::gui::{Dialog, PosternApp, ServiceState, Services};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "common/spool.rs"]
mod spool_fill;

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
        // POP3 and IMAP only where a test asks for it (their default ports are the machine's).
        c.pop3.enabled = false;
        c.imap.enabled = false;
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
        self.app_sized([1280.0, 900.0])
    }

    /// [`Env::app`] in a window of `size`.
    fn app_sized(&self, size: [f32; 2]) -> Harness<'static, PosternApp> {
        let opts = EngineOptions {
            config_path: self.cfg.clone(),
            data_dir: self.data.clone(),
        };
        let mut services = Services::new(self.rt.handle().clone(), opts, EventBus::new());
        services.start();
        let mut h = HarnessBuilder::default()
            .with_size(size)
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

/// The live queue's first page (these tests' queues are short), read as the pane reads it.
fn queued(h: &Harness<'_, PosternApp>) -> Vec<Arc<QueueEntry>> {
    let services = h.state().services();
    let q = services.queue().unwrap().clone();
    let page = services
        .runtime()
        .block_on(async move { q.page(PageQuery::by_id(1000)).await });
    page.entries
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
    set_field_in(h, None, label, text);
}

/// The node labelled `label`, in the window titled `window` when one is given.
fn node<'a>(
    h: &'a Harness<'_, PosternApp>,
    window: Option<&'a str>,
    label: &'a str,
) -> egui_kittest::Node<'a> {
    match window {
        Some(w) => h
            .get_by_role_and_label(egui::accesskit::Role::Window, w)
            .get_by_label(label),
        None => h.get_by_label(label),
    }
}

/// [`set_field`] for the field in the window titled `window` (another node has its label).
fn set_field_in(h: &mut Harness<'_, PosternApp>, window: Option<&str>, label: &str, text: &str) {
    node(h, window, label).focus();
    h.step();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.step();
    node(h, window, label).type_text(text);
    h.run();
    let shown = node(h, window, label).value().unwrap_or_default();
    let masked = shown.chars().count() == text.chars().count() && shown.chars().all(|c| c == '•');
    assert!(
        shown == text || masked,
        "field {label} shows {shown:?}, not {text:?}"
    );
}

/// Clicks a dialog's OK and waits until the dialog has closed: it closes once the running
/// server has reported the settings applied.
fn press_ok(h: &mut Harness<'_, PosternApp>) {
    click(h, "OK");
    wait_for(h, "the dialog to close after OK", |h| {
        h.query_by_label("OK").is_none()
    });
}

fn click(h: &mut Harness<'_, PosternApp>, label: &str) {
    h.get_by_label(label).click();
    h.run();
}

/// Clicks something that starts work shown by a spinner (which repaints until the work ends,
/// so `run` would not settle): one step, then the caller waits for the result.
fn click_busy(h: &mut Harness<'_, PosternApp>, label: &str) {
    h.get_by_label(label).click();
    h.step();
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
        h.query_all_by_label_contains(&format!("SMTP :{new}"))
            .next()
            .is_some()
    });

    press_ok(&mut h);
    assert!(!h.state().is_open(Dialog::Smtp), "OK closes the dialog");
}

/// The POP3 dialog: a new port applied from the dialog is where the running engine listens
/// (and the status strip shows it).
#[test]
fn the_pop3_dialog_moves_the_running_pop3_listener() {
    let (old, new) = (free_port(), free_port());
    let env = Env::new(free_port(), |c| {
        c.pop3.enabled = true;
        c.pop3.port = old;
        c.pop3.implicit_ssl = false;
        c.pop3.listen_ip = "127.0.0.1".into();
    });
    let mut h = env.app();
    wait_for(&mut h, "a +OK greeting on the POP3 port", |_| {
        greeting(old).is_some_and(|g| g.starts_with("+OK"))
    });
    click(&mut h, "POP3 Settings");
    assert!(h.state().is_open(Dialog::Pop3));
    assert_eq!(
        h.get_by_label("Port").value().as_deref(),
        Some(old.to_string().as_str())
    );
    set_field(&mut h, "Port", &new.to_string());
    click(&mut h, "Apply");
    assert_eq!(env.load().pop3.port, new);
    wait_for(&mut h, "a +OK greeting on the new port", |_| {
        greeting(new).is_some_and(|g| g.starts_with("+OK"))
    });
    wait_for(&mut h, "the old port to close", |_| {
        TcpStream::connect(("127.0.0.1", old)).is_err()
    });
    wait_for(&mut h, "the status strip to show the POP3 listener", |h| {
        h.query_all_by_label_contains(&format!("POP3 :{new}"))
            .next()
            .is_some()
    });
    press_ok(&mut h);
    assert!(!h.state().is_open(Dialog::Pop3));
}

/// The IMAP4 dialog (the POP3 dialog's form over `imap.*`): bad values are shown under their
/// fields and not saved; good ones are saved and the running engine reloads them. Opened
/// beside the POP3 dialog, each shows its own section.
#[test]
fn the_imap4_dialog_saves_imap_settings_and_the_engine_listens_there() {
    let smtp = free_port();
    let (pop3, imap) = (free_port(), free_port());
    let env = Env::new(smtp, |c| {
        c.pop3.port = pop3;
        c.imap.port = imap;
        c.imap.implicit_ssl = false;
        c.imap.listen_ip = "127.0.0.1".into();
    });
    let mut h = env.app();
    let before = std::fs::read_to_string(&env.cfg).unwrap();
    click(&mut h, "IMAP4 Settings");
    assert!(h.state().is_open(Dialog::Imap));
    assert_eq!(
        h.get_by_label("Port").value().as_deref(),
        Some(imap.to_string().as_str())
    );
    assert_eq!(
        h.get_by_label("Idle Time-out").value().as_deref(),
        Some("30m")
    );
    h.get_by_label("no higher than 200 advised");

    // Enabled, on the SMTP port, with an idle time-out shorter than RFC 9051 allows.
    click(&mut h, "Enable Service");
    set_field(&mut h, "Port", &smtp.to_string());
    set_field(&mut h, "Idle Time-out", "10m");
    set_field(&mut h, "Max Connections", "many");
    click(&mut h, "Apply");
    h.get_by_label(&format!("port {smtp} is already used by an SMTP listener"));
    h.get_by_label("must be at least 30 minutes (the protocol's RFC asks for it)");
    h.get_by_label("`many` is not a whole number");
    h.get_by_label("Not saved: 3 setting(s) need fixing.");
    assert_eq!(std::fs::read_to_string(&env.cfg).unwrap(), before);

    let new = free_port();
    set_field(&mut h, "Port", &new.to_string());
    set_field(&mut h, "Idle Time-out", "45m");
    set_field(&mut h, "Max Connections", "150");
    click(&mut h, "Apply");
    let cfg = env.load();
    assert_eq!(cfg.imap.port, new);
    assert_eq!(cfg.imap.max_connections, 150);
    assert_eq!(
        cfg.imap.idle_timeout,
        config::HumanDuration::from_secs(45 * 60)
    );
    assert!(cfg.imap.enabled);
    assert_eq!(cfg.pop3.port, pop3, "the POP3 section is left alone");
    click(&mut h, "System");
    wait_for(&mut h, "the running server to reload the file", |h| {
        h.query_all_by_label_contains("configuration reloaded")
            .next()
            .is_some()
    });
    // The running engine took it: IMAP answers on the new port.
    wait_for(&mut h, "an IMAP greeting on the new port", |_| {
        greeting(new).is_some_and(|g| g.starts_with("* OK"))
    });

    // Both dialogs at once: each window shows its own section's port.
    click(&mut h, "POP3 Settings");
    assert!(h.state().is_open(Dialog::Pop3) && h.state().is_open(Dialog::Imap));
    for (window, port) in [("IMAP4 Settings", new), ("POP3 Settings", pop3)] {
        let w = h.get_by_role_and_label(egui::accesskit::Role::Window, window);
        assert_eq!(
            w.get_by_label("Port").value().as_deref(),
            Some(port.to_string().as_str()),
            "{window}"
        );
    }
    click_in(&mut h, "IMAP4 Settings", "Cancel");
    assert!(!h.state().is_open(Dialog::Imap) && h.state().is_open(Dialog::Pop3));
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
    set_field(&mut h, "Max Junk Commands", "50");
    set_field(&mut h, "Min Free Disk Space", "1G");
    press_ok(&mut h);
    assert!(!h.state().is_open(Dialog::Smtp));
    let cfg = env.load();
    assert_eq!(cfg.smtp.max_recipients_per_mail, 250);
    assert_eq!(cfg.smtp.max_junk_commands, 50);
    assert_eq!(cfg.smtp.min_free_space, 1024 * 1024 * 1024);
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
fn the_resend_schedule_is_shown_in_time_and_can_be_made_postfix_like() {
    let env = Env::new(free_port(), |_| {});
    let mut h = env.app();
    click(&mut h, "Outgoing Mails");
    // The manual's defaults, in words: returned after 20 minutes.
    let _ = h.get_all_by_label_contains("returned to its sender after about 20 minutes");
    set_field(&mut h, "Re-send Delay", "1h");
    h.run();
    let _ = h.get_all_by_label_contains("after about 4 hours (5 attempts, 1h apart)");
    click(&mut h, "Like Postfix (5 days)");
    h.run();
    let _ = h.get_all_by_label_contains("after about 5 days");
    press_ok(&mut h);
    let o = env.load().outgoing_mails;
    assert!(o.backoff);
    assert_eq!(o.resend_attempts, 0);
    assert_eq!(
        o.give_up_after,
        Some(config::HumanDuration::from_secs(5 * 86400))
    );
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
    press_ok(&mut h);
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
    set_field(&mut h, "Confirm Password", "correct horse");
    click(&mut h, "Add Account");
    h.get_by_label("alice@example.test");
    press_ok(&mut h);
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
        h.query_all_by_label_contains("<alice@example.test> (")
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
            ..Default::default()
        }];
    });
    let mut h = env.app();
    click(&mut h, "Domains & Accounts");
    click(&mut h, "carol@example.test");
    set_field(&mut h, "New Password", "new one");
    set_field(&mut h, "Confirm New Password", "new one");
    click(&mut h, "Set Password");
    click(&mut h, "Apply");
    assert!(password::verify(
        &env.load().accounts[0].password,
        "new one"
    ));

    click(&mut h, "Remove Account");
    click(&mut h, "Remove Domain");
    press_ok(&mut h);
    let cfg = env.load();
    assert!(cfg.accounts.is_empty());
    assert!(cfg.domains.is_empty());
}

#[test]
fn max_account_size_is_set_in_the_dialog_and_its_usage_shown() {
    let port = free_port();
    let env = Env::new(port, |c| {
        c.domains = vec!["example.test".into()];
        c.accounts = vec![config::Account {
            address: "carol@example.test".into(),
            password: password::hash("pw"),
            ..Default::default()
        }];
    });
    let mut h = env.app();
    send_mail(port, "x@remote.test", "carol@example.test", "hello carol").unwrap();
    click(&mut h, "Domains & Accounts");
    h.get_by_label("max unlimited");
    click(&mut h, "carol@example.test");
    set_field(&mut h, "Max Account Size", "2M");
    click(&mut h, "Set Size");
    click(&mut h, "Apply");
    assert_eq!(env.load().accounts[0].max_size, 2 << 20);
    h.get_by_label("max 2M");
    // The delivered mail is counted: one message, of 2M.
    wait_for(&mut h, "carol's usage", |h| {
        h.query_all_by_label_contains("Usage of carol@example.test: ")
            .any(|n| {
                let n = n.accesskit_node();
                let text = n.label().or(n.value()).unwrap_or_default().to_string();
                text.contains("of 2M (0%), 1 messages")
            })
    });
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
fn selected_log_lines_are_copied() {
    let env = Env::new(free_port(), |_| {});
    let mut h = env.app();
    click(&mut h, "System");
    let line = h
        .get_all_by_label_contains("SMTP listening on 127.0.0.1")
        .next()
        .unwrap()
        .accesskit_node()
        .label()
        .unwrap()
        .to_string();
    click(&mut h, &line);
    h.get_by_label("Copy Selected").click();
    h.step();
    let copied: Vec<String> = h
        .output()
        .platform_output
        .commands
        .iter()
        .filter_map(|c| match c {
            egui::OutputCommand::CopyText(t) => Some(t.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(copied, [line]);
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
    // The relay refusal is a Security line.
    click(&mut h, "Security");
    let _ = h.get_all_by_label_contains("recipient <nobody@nowhere.test> refused");
    click(&mut h, "SMTP In");
    assert!(
        h.query_all_by_label_contains("recipient <nobody@nowhere.test> refused")
            .next()
            .is_none()
    );
}

/// The Live Logs' IMAP and POP3 views each show their own protocol's session lines (the
/// engine's events of those kinds, as the sessions emit them).
#[test]
fn the_imap_and_pop3_log_views_show_their_sessions() {
    let env = Env::new(free_port(), |_| {});
    let mut h = env.app();
    let events = h.state().services().events().clone();
    events.emit(
        Level::Info,
        Some("I1"),
        EventKind::Imap {
            text: "a1 SELECT INBOX".into(),
        },
    );
    events.emit(
        Level::Info,
        Some("P1"),
        EventKind::Pop3 {
            text: "RETR 1".into(),
        },
    );
    let shown = |h: &Harness<'_, PosternApp>, text: &str| {
        h.query_all_by_label_contains(text).next().is_some()
    };
    wait_for(&mut h, "both lines in All", |h| {
        shown(h, "a1 SELECT INBOX") && shown(h, "RETR 1")
    });
    click(&mut h, "IMAP");
    assert!(shown(&h, "a1 SELECT INBOX") && !shown(&h, "RETR 1"));
    click(&mut h, "POP3");
    assert!(!shown(&h, "a1 SELECT INBOX") && shown(&h, "RETR 1"));
    click(&mut h, "System");
    assert!(!shown(&h, "a1 SELECT INBOX") && !shown(&h, "RETR 1"));
}

/// Clicks the button `label` inside the window titled `window` (when several dialogs are open).
fn click_in(h: &mut Harness<'_, PosternApp>, window: &str, label: &str) {
    h.get_by_role_and_label(egui::accesskit::Role::Window, window)
        .get_by_label(label)
        .click();
    h.run();
}

/// A minimal SMTP server on 127.0.0.1 that accepts every mail (a relay host for the tests);
/// returns its port and a channel that receives each message's DATA.
fn smtp_sink() -> (u16, std::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(s) = conn else { return };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut w = s.try_clone().unwrap();
                let mut r = BufReader::new(s);
                let _ = write!(w, "220 sink.test ESMTP\r\n");
                let mut line = String::new();
                while r.read_line(&mut line).is_ok_and(|n| n > 0) {
                    let cmd = line.trim_end().to_ascii_uppercase();
                    let reply = if cmd.starts_with("EHLO") || cmd.starts_with("HELO") {
                        "250 sink.test"
                    } else if cmd == "DATA" {
                        let _ = write!(w, "354 go on\r\n");
                        let mut data = String::new();
                        loop {
                            let mut l = String::new();
                            if r.read_line(&mut l).unwrap_or(0) == 0 || l == ".\r\n" {
                                break;
                            }
                            data.push_str(&l);
                        }
                        let _ = tx.send(data);
                        "250 2.0.0 taken"
                    } else if cmd == "QUIT" {
                        let _ = write!(w, "221 bye\r\n");
                        return;
                    } else {
                        "250 ok"
                    };
                    let _ = write!(w, "{reply}\r\n");
                    line.clear();
                }
            });
        }
    });
    (port, rx)
}

/// Outgoing SMTP on its own port, relaying to `relay_port` on loopback without TLS.
fn relay_env(relay_port: u16, tweak: impl FnOnce(&mut Config)) -> (Env, u16, u16) {
    let (port, out) = (free_port(), free_port());
    let env = Env::new(port, |c| {
        c.smtp.outgoing.enabled = true;
        c.smtp.outgoing.port = out;
        c.outgoing_mails.mode = config::DeliveryMode::Relay;
        c.outgoing_mails.relay.host = "127.0.0.1".into();
        c.outgoing_mails.relay.port = relay_port;
        c.outgoing_mails.relay.tls = config::RelayTls::None;
        c.outgoing_mails.resend_delay = config::HumanDuration::from_secs(3600);
        tweak(c)
    });
    (env, port, out)
}

#[test]
fn access_control_turns_an_open_relay_into_a_closed_one() {
    let nowhere = free_port();
    let (env, _, out) = relay_env(nowhere, |c| {
        c.access.smtp_auth.enabled = false;
        c.access.ip_range.enabled = false;
    });
    let mut h = env.app();
    let _ = h.get_all_by_label_contains("OPEN RELAY");
    assert!(
        send_mail(
            out,
            "me@local.test",
            "you@remote.test",
            "Subject: relay\r\n\r\nx"
        )
        .is_ok(),
        "open relay"
    );

    // Through SMTP Settings' Access Control button, as the manual describes.
    click(&mut h, "SMTP Settings");
    click(&mut h, "Access Control...");
    assert!(h.state().is_open(Dialog::Access));
    click_in(&mut h, "SMTP Settings", "Cancel");
    let _ = h
        .get_by_role_and_label(egui::accesskit::Role::Window, "Access Control")
        .get_all_by_label_contains("OPEN RELAY");
    click(&mut h, "Enable SMTP Authentication");
    assert!(
        h.get_by_role_and_label(egui::accesskit::Role::Window, "Access Control")
            .query_all_by_label_contains("OPEN RELAY")
            .next()
            .is_none(),
        "the dialog's warning goes as soon as the draft is safe"
    );
    press_ok(&mut h);
    assert!(!h.state().is_open(Dialog::Access));
    assert!(env.load().access.smtp_auth.enabled);

    wait_for(&mut h, "relaying without a login to be refused", |_| {
        send_mail(
            out,
            "me@local.test",
            "you@remote.test",
            "Subject: relay\r\n\r\nx",
        )
        .is_err_and(|e| e.starts_with("550") || e.starts_with("530"))
    });
    wait_for(&mut h, "the status strip's warning to go", |h| {
        h.query_all_by_label_contains("OPEN RELAY").next().is_none()
    });
}

#[test]
fn allow_only_the_following_stores_a_hash_and_ip_ranges_are_edited_in_a_list() {
    let (env, _, _) = relay_env(free_port(), |_| {});
    let mut h = env.app();
    click(&mut h, "Access Control");
    click(&mut h, "Allow Only the Following");
    set_field(&mut h, "Allowed User Name", "relayer");
    set_field(&mut h, "Allowed Password", "s3cret");
    click(&mut h, "Enable IP Range Control");
    set_field(&mut h, "New Range", "10.0.0.0/8");
    click(&mut h, "Add Range");
    set_field(&mut h, "New Range", "not-an-ip");
    click(&mut h, "Add Range");
    click(&mut h, "Apply");
    // The bad range is named beside it; nothing was saved.
    assert!(env.load().access.ip_range.ranges.is_empty());
    click(&mut h, "not-an-ip");
    click(&mut h, "Remove Range");
    set_field(&mut h, "Allowed Password", "s3cret");
    press_ok(&mut h);
    assert!(!h.state().is_open(Dialog::Access), "OK closes once valid");
    let a = env.load().access;
    assert_eq!(a.ip_range.ranges, ["10.0.0.0/8"]);
    assert!(a.ip_range.enabled);
    assert!(!a.smtp_auth.allow_any_account);
    assert_eq!(a.smtp_auth.only_user, "relayer");
    assert!(password::verify(&a.smtp_auth.only_password, "s3cret"));
}

#[test]
fn outgoing_mails_relay_mode_sends_through_the_relay_host() {
    let (sink, received) = smtp_sink();
    let nowhere = free_port();
    let (env, _, out) = relay_env(nowhere, |c| {
        c.access.smtp_auth.enabled = false;
        c.access.ip_range.enabled = true;
        c.access.ip_range.ranges = vec!["127.0.0.1".into()];
    });
    let mut h = env.app();

    click(&mut h, "Outgoing Mails");
    assert!(h.state().is_open(Dialog::Outgoing));
    set_field(&mut h, "Relay Port", &sink.to_string());
    set_field(&mut h, "Re-send Attempts", "3");
    press_ok(&mut h);
    let o = env.load().outgoing_mails;
    assert_eq!((o.relay.port, o.resend_attempts), (sink, 3));

    wait_for(&mut h, "the mail to be accepted for relaying", |_| {
        send_mail(
            out,
            "me@local.test",
            "you@remote.test",
            "Subject: via the relay\r\n\r\nhi",
        )
        .is_ok()
    });
    let data = received
        .recv_timeout(PATIENCE)
        .expect("the relay host got the mail");
    assert!(data.contains("Subject: via the relay"), "{data}");
    wait_for(&mut h, "the status strip to count it as sent", |h| {
        h.query_all_by_label_contains("Sent 1 ·").next().is_some()
    });
}

#[test]
fn a_queued_mail_shows_in_the_queue_pane_and_can_be_held_released_and_deleted() {
    let nowhere = free_port();
    let (env, _, out) = relay_env(nowhere, |c| {
        c.access.smtp_auth.enabled = false;
        c.access.ip_range.enabled = true;
        c.access.ip_range.ranges = vec!["127.0.0.1".into()];
    });
    let mut h = env.app();
    send_mail(
        out,
        "me@local.test",
        "stuck@remote.test",
        "Subject: waiting here\r\n\r\nhi",
    )
    .unwrap();

    click(&mut h, "Queued Mails");
    wait_for(&mut h, "the mail in the Queued Mails table", |h| {
        h.query_by_label("stuck@remote.test").is_some()
    });
    let id = {
        let q = queued(&h);
        postern::engine::queue::id_text(q[0].meta.id)
    };
    click(&mut h, &id);
    wait_for(&mut h, "the failed attempt to show", |h| {
        queued(h)[0].meta.attempts > 0
    });
    // The whole last error is in the details below the table.
    let error = {
        let q = queued(&h);
        postern::gui::panes::queue::last_error(&q[0]).to_string()
    };
    assert!(!error.is_empty());
    wait_for(&mut h, "the whole last error in the details", |h| {
        h.query_by_label(&format!("last error: {error}")).is_some()
    });

    click(&mut h, "Hold");
    wait_for(&mut h, "the mail to be on hold", |h| {
        h.query_by_label("on hold").is_some()
    });
    click(&mut h, "Release");
    wait_for(&mut h, "the mail to be released", |h| {
        !queued(h)[0].meta.held
    });

    click(&mut h, "Show Message");
    wait_for(&mut h, "the message text", |h| {
        h.query_by_label("Message")
            .and_then(|n| n.value())
            .is_some_and(|v| v.contains("Subject: waiting here"))
    });

    // Delete asks first: Cancel keeps the mail.
    click(&mut h, "Delete");
    h.get_by_label("Send a Failure Notice to the Sender");
    click(&mut h, "Cancel");
    assert!(
        h.query_by_label("Delete Mail").is_none(),
        "the question is gone"
    );
    for _ in 0..10 {
        h.step();
    }
    assert_eq!(queued(&h).len(), 1);
    h.get_by_label("stuck@remote.test");

    click(&mut h, "Delete");
    click(&mut h, "Delete Mail");
    wait_for(&mut h, "the queue to be empty", |h| queued(h).is_empty());
    // The snapshot can empty between a frame and the check: the pane follows at the next.
    wait_for(&mut h, "the row to leave the pane", |h| {
        h.query_by_label("stuck@remote.test").is_none()
    });
    h.get_by_label(postern::gui::panes::queue::EMPTY);
}

/// A queue longer than a page: the pane shows a page of it, says how many mails there are,
/// and goes to the next page and back; a mail there can be selected and held; stopped, the
/// spool is read a page at a time too.
#[test]
fn a_long_queue_shows_a_page_at_a_time() {
    use postern::engine::queue::id_text;
    let nowhere = free_port();
    let (env, _, _) = relay_env(nowhere, |_| {});
    spool_fill::fill_spool(&env.data, 1, 1005);
    let mut h = env.app();
    click(&mut h, "Queued Mails");
    wait_for(&mut h, "the first page", |h| {
        h.query_by_label("1–1,000 of 1,005").is_some()
    });
    h.get_by_label("1005 mail(s) queued");
    // The status strip's count comes from the queue's published summary.
    h.get_by_label_contains("Queue 1005");
    h.get_by_label(&id_text(1));
    assert!(h.query_by_label(&id_text(1001)).is_none());
    // Only the rows in view are laid out: the end of the page is not, until scrolled to.
    assert!(
        h.query_by_label(&id_text(1000)).is_none(),
        "the table laid out rows out of view"
    );
    assert!(
        h.get_by_label("Previous Page")
            .accesskit_node()
            .is_disabled()
    );

    click(&mut h, "Next Page");
    wait_for(&mut h, "the second page", |h| {
        h.query_by_label("1,001–1,005 of 1,005").is_some()
            && h.query_by_label(&id_text(1005)).is_some()
    });
    assert!(h.query_by_label(&id_text(1)).is_none());
    assert!(h.get_by_label("Next Page").accesskit_node().is_disabled());
    click(&mut h, &id_text(1003));
    wait_for(&mut h, "the selected mail's details", |h| {
        h.query_by_label(&format!("Mail {} from 127.0.0.1", id_text(1003)))
            .is_some()
    });
    click(&mut h, "Hold");
    wait_for(&mut h, "the mail to be on hold", |h| {
        h.query_by_label("on hold").is_some()
    });

    // Sorted by Next Try, descending: the mail on hold comes first, on the first page.
    click(&mut h, "Next Try");
    click(&mut h, "Next Try ^");
    wait_for(&mut h, "the held mail first", |h| {
        h.query_by_label("1–1,000 of 1,005").is_some() && h.query_by_label("on hold").is_some()
    });

    click(&mut h, "Stop Services");
    wait_for(&mut h, "the services to stop", |h| {
        *h.state().services().state() == ServiceState::Stopped
    });
    wait_for(&mut h, "the spool's first page", |h| {
        h.query_by_label("1–1,000 of 1,005").is_some()
            && h.query_by_label("on hold").is_some()
            && h.query_by_label_contains("this is the queue as kept on disk")
                .is_some()
    });
    click(&mut h, "Next Page");
    wait_for(&mut h, "the spool's second page", |h| {
        h.query_by_label("1,001–1,005 of 1,005").is_some()
            && h.query_by_label("Reading the spool...").is_none()
    });
}

#[test]
fn the_queue_pane_shows_subjects_holds_and_reads_the_spool_when_stopped() {
    let nowhere = free_port();
    let (env, _, out) = relay_env(nowhere, |c| {
        c.access.smtp_auth.enabled = false;
        c.access.ip_range.enabled = true;
        c.access.ip_range.ranges = vec!["127.0.0.1".into()];
    });
    let mut h = env.app();
    click(&mut h, "Queued Mails");
    h.get_by_label(postern::gui::panes::queue::EMPTY);
    send_mail(
        out,
        "me@local.test",
        "far@remote.test",
        "From: me@local.test\r\nSubject: =?UTF-8?Q?caf=C3=A9_for_two?=\r\n\r\nhi",
    )
    .unwrap();
    wait_for(&mut h, "the decoded subject in the Subject column", |h| {
        h.query_by_label("café for two").is_some()
    });
    assert!(
        h.query_by_label(postern::gui::panes::queue::EMPTY)
            .is_none()
    );
    let id = {
        let q = queued(&h);
        postern::engine::queue::id_text(q[0].meta.id)
    };
    click(&mut h, &id);
    assert!(!h.get_by_label("Retry Now").accesskit_node().is_disabled());
    click(&mut h, "Hold");
    wait_for(&mut h, "the mail to be on hold", |h| {
        h.query_by_label("on hold").is_some()
    });
    assert!(
        h.get_by_label("Retry Now").accesskit_node().is_disabled(),
        "a held mail is not retried: Release is the way"
    );
    assert!(!h.get_by_label("Release").accesskit_node().is_disabled());

    // Stopped, the pane reads the spool as `postern queue list` does.
    click(&mut h, "Stop Services");
    wait_for(&mut h, "the services to stop", |h| {
        *h.state().services().state() == ServiceState::Stopped
    });
    wait_for(&mut h, "the mail read from the spool", |h| {
        h.query_by_label("café for two").is_some() && h.query_by_label("on hold").is_some()
    });
    h.get_by_label_contains("this is the queue as kept on disk");

    // Delete with a failure notice: the sender's notice takes the mail's place in the queue.
    click(&mut h, "Start Services");
    wait_for(&mut h, "the services to run again", |h| {
        *h.state().services().state() == ServiceState::Running
    });
    wait_for(&mut h, "the mail in the live queue", |h| {
        h.query_by_label(&id).is_some()
    });
    click(&mut h, &id);
    click(&mut h, "Delete");
    click(&mut h, "Send a Failure Notice to the Sender");
    click(&mut h, "Delete Mail");
    wait_for(&mut h, "the failure notice in place of the mail", |h| {
        let q = queued(h);
        q.len() == 1 && q[0].meta.from.is_empty() && q[0].meta.rcpts[0].addr == "me@local.test"
    });
}

#[test]
fn the_getting_started_checklist_ticks_itself() {
    let env = Env::new(free_port(), |c| {
        c.domains.clear();
        c.accounts.clear();
    });
    let mut h = env.app();
    assert!(
        ticked(&h, "Server Host Name"),
        "postern.test is fully qualified"
    );
    assert!(ticked(&h, "Incoming Port"), "the listener is up");
    assert!(!ticked(&h, "Local Domain"));
    assert!(!ticked(&h, "Account"));

    config::edit::domain_add(&env.cfg, "example.test").unwrap();
    wait_for(&mut h, "the domain to be ticked", |h| {
        ticked(h, "Local Domain")
    });
    assert!(!ticked(&h, "Account"));
    config::edit::account_add(&env.cfg, "alice@example.test", "correct horse").unwrap();
    wait_for(&mut h, "the account to be ticked", |h| ticked(h, "Account"));

    // Each step's button opens its dialog.
    click(&mut h, "Add a Domain...");
    assert!(h.state().is_open(Dialog::Domains));
    click_in(&mut h, "Domains & Accounts", "Cancel");

    // Hidden, and back from the Help menu; the choice is a persisted preference.
    click(&mut h, "Hide Checklist");
    assert!(h.query_by_label("Local Domain").is_none());
    assert!(!h.state().current_prefs().getting_started);
    click(&mut h, "Help");
    click(&mut h, "Getting Started");
    assert!(h.state().current_prefs().getting_started);
    h.get_by_label("Local Domain");
}

#[test]
fn abuse_settings_are_saved_and_reloaded() {
    let port = free_port();
    let env = Env::new(port, |_| {});
    let mut h = env.app();
    click(&mut h, "Abuse & Spam");
    set_field(&mut h, "Max Connections Per IP", "1");
    set_field(&mut h, "IPv6 Network Prefix", "56");
    // A zone is added but the lists are turned off again: the tests make no DNS queries.
    click(&mut h, "Enable RBL Lists");
    set_field(&mut h, "New RBL Zone", "bl.example.test");
    click(&mut h, "Add RBL Zone");
    click(&mut h, "Enable RBL Lists");
    // DMARC off, then DKIM verification off (DMARC needs it).
    click(&mut h, "Enable DMARC Check");
    click(&mut h, "Verify DKIM Signatures");
    press_ok(&mut h);
    let auth = env.load().auth;
    assert!(!auth.dmarc.enabled && !auth.dkim.verify, "{auth:?}");
    let a = env.load().abuse;
    assert_eq!(a.max_connections_per_ip, 1);
    assert_eq!(a.ipv6_prefix, 56);
    assert!(!a.rbl.enabled);
    assert_eq!(a.rbl.zones, ["bl.example.test"]);

    // The running server took the new settings (the limits themselves are the engine's
    // tests' business).
    click(&mut h, "System");
    wait_for(&mut h, "the reload in the System log", |h| {
        h.query_all_by_label_contains("configuration reloaded")
            .next()
            .is_some()
    });
}

#[test]
fn every_dialog_opens_from_its_name() {
    let env = Env::new(free_port(), |_| {});
    let mut h = env.app();
    for (name, d) in Dialog::NAMES {
        assert_eq!(Dialog::from_name(name), Some(d));
        h.state_mut().open(d);
        h.run();
        assert!(h.state().is_open(d), "{name}");
    }
}

/// A DNS server on 127.0.0.1 (UDP) that answers every query with `MX 10 mx.example.test`.
fn mx_dns_server() -> u16 {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, peer)) = sock.recv_from(&mut buf) {
            let q = &buf[..n];
            // The question ends after its name (labels up to a zero byte) and type and class.
            let mut end = 12;
            while end < n && q[end] != 0 {
                end += q[end] as usize + 1;
            }
            end += 5;
            if end > n {
                continue;
            }
            let mut r = Vec::new();
            r.extend_from_slice(&q[..2]); // id
            r.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
            r.extend_from_slice(&q[12..end]);
            let mut rdata = vec![0, 10];
            for label in ["mx", "example", "test"] {
                rdata.push(label.len() as u8);
                rdata.extend_from_slice(label.as_bytes());
            }
            rdata.push(0);
            r.extend_from_slice(&[0xC0, 12, 0, 15, 0, 1, 0, 0, 0, 60]);
            r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            r.extend_from_slice(&rdata);
            let _ = sock.send_to(&r, peer);
        }
    });
    port
}

#[test]
fn test_dns_asks_the_listed_dns_host() {
    let dns = mx_dns_server();
    let env = Env::new(free_port(), |_| {});
    let mut h = env.app();
    click(&mut h, "Outgoing Mails");
    set_field(&mut h, "New DNS Host", &format!("127.0.0.1:{dns}"));
    click(&mut h, "Add DNS Host");
    set_field(&mut h, "Test Domain", "partner.test");
    click(&mut h, "Test DNS");
    wait_for(&mut h, "the MX answer", |h| {
        h.query_by_label("partner.test: MX 10 mx.example.test")
            .is_some()
    });
    // Apply keeps the lookup working (the dialog keeps its runtime).
    click(&mut h, "Apply");
    assert_eq!(
        env.load().outgoing_mails.dns_hosts,
        [format!("127.0.0.1:{dns}")]
    );
    set_field(&mut h, "Test Domain", "other.test");
    click(&mut h, "Test DNS");
    wait_for(&mut h, "the second MX answer", |h| {
        h.query_by_label("other.test: MX 10 mx.example.test")
            .is_some()
    });
}

/// A dnsmasq with the records `example.test` needs for the server `postern.test`
/// (192.0.2.25), its DKIM key `selector` = `txt`; the SPF record only when `spf`.
fn records_dns(selector: &str, txt: &str, spf: bool) -> dns_common::DnsServer {
    let parts: Vec<String> = txt
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", std::str::from_utf8(c).unwrap()))
        .collect();
    let mut zone = format!(
        "local=/test/\nlocal=/in-addr.arpa/\n\
         mx-host=example.test,postern.test,10\n\
         host-record=postern.test,192.0.2.25\n\
         txt-record={selector},{}\n\
         txt-record=_dmarc.example.test,\"v=DMARC1; p=none\"\n",
        parts.join(",")
    );
    if spf {
        zone += "txt-record=example.test,\"v=spf1 mx ~all\"\n";
    }
    dns_common::DnsServer::start(&zone)
}

#[test]
fn the_dns_records_dialog_checks_the_records_and_ticks_its_step() {
    use postern::engine::dkim::KeyStore;
    let env = Env::new(free_port(), |c| {
        c.domains = vec!["example.test".into()];
    });
    // The domain's key, made as the server would, and published beside the other records;
    // the SPF record is missing at first.
    let keys = KeyStore::new(&env.data);
    keys.ensure("example.test", false).unwrap();
    let sel = keys.list("example.test").unwrap().remove(0);
    let name = sel.dns_name("example.test");
    let dns = records_dns(&name, &sel.txt(), false);
    let hosts =
        |d: &dns_common::DnsServer| vec![format!("outgoing_mails.dns_hosts=[\"{}\"]", d.addr)];
    config::edit::config_set(&env.cfg, &hosts(&dns)).unwrap();
    let mut h = env.app();
    assert!(!ticked(&h, "DNS Records"), "not checked yet");

    h.get_by_role_and_label(egui::accesskit::Role::Button, "DNS Records")
        .click();
    h.step();
    assert!(h.state().is_open(Dialog::Dns));
    wait_for(&mut h, "the rows of the check", |h| {
        h.query_by_label("Mail for example.test comes to this server.")
            .is_some()
    });
    // MX, SPF, DKIM, DMARC, the host name and its reverse name: one Copy each.
    assert_eq!(h.get_all_by_label("Copy").count(), 6);
    h.get_by_label(
        "example.test has no SPF record: receivers cannot tell which servers may send its mail.",
    );
    h.get_by_label(&format!(
        "The published key of selector {} matches this server's.",
        sel.name
    ));
    h.get_by_label(
        "192.0.2.25 names postern.test back: forward and reverse DNS match the HELO name.",
    );
    h.get_by_label("1 of 6 records need your attention.");
    assert_eq!(h.get_all_by_label("ok").count(), 5);
    assert_eq!(h.get_all_by_label("missing").count(), 1);
    assert!(!ticked(&h, "DNS Records"), "a record is missing");

    // The SPF record published, checked again: every row right, and the step ticked.
    let dns2 = records_dns(&name, &sel.txt(), true);
    config::edit::config_set(&env.cfg, &hosts(&dns2)).unwrap();
    drop(dns);
    click_busy(&mut h, "Check Again");
    wait_for(&mut h, "the second check", |h| {
        h.query_by_label("Every record is right.").is_some()
    });
    assert_eq!(h.get_all_by_label("ok").count(), 6);
    h.get_by_label("The SPF record of example.test authorises this server (postern.test).");
    assert!(ticked(&h, "DNS Records"));
}

/// Without a tray to hide in, closing the window would stop the mail server: the app asks
/// first. Cancel keeps it running; Stop and Quit ends the app. A stale session filter from an
/// earlier run is not restored.
#[test]
fn closing_the_window_without_a_tray_asks_before_stopping_the_server() {
    let env = Env::new(free_port(), |_| {});
    let mut h = env.app();
    let ctx = h.ctx.clone();
    h.state_mut().on_close_requested(&ctx);
    h.run();
    h.get_by_label("Stop the mail server and quit?");
    click(&mut h, "Cancel");
    assert!(
        h.query_by_label("Stop and Quit").is_none(),
        "the question is gone"
    );
    assert!(!h.state().is_quitting());
    assert_eq!(*h.state().services().state(), ServiceState::Running);

    h.state_mut().on_close_requested(&ctx);
    h.run();
    click(&mut h, "Stop and Quit");
    assert!(h.state().is_quitting());

    let mut prefs = postern::gui::Prefs::default();
    prefs.filters.session = "6B106E7100001".into();
    prefs.filters.text = "kept".into();
    h.state_mut().set_prefs(prefs);
    let now = h.state().current_prefs();
    assert_eq!(now.filters.session, "", "a session of an earlier run");
    assert_eq!(now.filters.text, "kept");
}

/// Escape cancels the dialog in front, and only that one; every window and menu closes on it.
#[test]
fn escape_closes_the_dialog_in_front() {
    let env = Env::new(free_port(), |_| {});
    let mut h = env.app();
    h.state_mut().open(Dialog::Smtp);
    h.run();
    h.state_mut().open(Dialog::Abuse);
    h.run();
    assert!(h.state().is_open(Dialog::Smtp) && h.state().is_open(Dialog::Abuse));
    h.key_press(egui::Key::Escape);
    h.run();
    assert!(
        !h.state().is_open(Dialog::Abuse),
        "the dialog in front closes"
    );
    assert!(h.state().is_open(Dialog::Smtp), "the one behind stays");
    h.key_press(egui::Key::Escape);
    h.run();
    assert!(!h.state().is_open(Dialog::Smtp));

    // The windows that are not settings dialogs close on it too (stepped: DNS Records starts
    // a check that shows a spinner).
    for d in [Dialog::TestMail, Dialog::Dns, Dialog::About] {
        h.state_mut().open(d);
        h.step();
        h.step();
        assert!(h.state().is_open(d), "{d:?}");
        h.key_press(egui::Key::Escape);
        h.step();
        assert!(!h.state().is_open(d), "Escape closes {d:?}");
    }
    // And a menu.
    click(&mut h, "Settings");
    h.get_by_label("SMTP Settings...");
    h.key_press(egui::Key::Escape);
    h.run();
    assert!(
        h.query_by_label("SMTP Settings...").is_none(),
        "the menu closed"
    );
}

/// Adds example.test and its account alice (password "correct horse") to `env`'s file.
fn with_alice(env: &Env) {
    config::edit::domain_add(&env.cfg, "example.test").unwrap();
    config::edit::account_add(&env.cfg, "alice@example.test", "correct horse").unwrap();
}

/// Whether the step `step` of the checklist is ticked.
fn ticked(h: &Harness<'_, PosternApp>, step: &str) -> bool {
    h.get_by_role_and_label(egui::accesskit::Role::CheckBox, step)
        .accesskit_node()
        .toggled()
        == Some(egui::accesskit::Toggled::True)
}

/// Clicks Send; steps without waiting for the window to settle (a spinner turns while the
/// mail is on its way).
fn send(h: &mut Harness<'_, PosternApp>) {
    h.get_by_label("Send").click();
    h.step();
}

/// Whether a label containing `text` is shown.
fn shows(h: &Harness<'_, PosternApp>, text: &str) -> bool {
    h.query_all_by_label_contains(text).next().is_some()
}

#[test]
fn a_test_mail_to_a_local_account_is_delivered_and_ticks_the_checklist() {
    let env = Env::new(free_port(), |_| {});
    with_alice(&env);
    let mut h = env.app();
    assert!(!ticked(&h, "Test Mail"));

    // The checklist's last step opens the dialog, prefilled with the first account.
    click(&mut h, "Send Test Mail...");
    assert!(h.state().is_open(Dialog::TestMail));
    assert_eq!(
        h.get_by_label("To").value().as_deref(),
        Some("alice@example.test")
    );
    assert!(
        h.get_by_label("Subject")
            .value()
            .unwrap_or_default()
            .starts_with("Postern test mail")
    );
    send(&mut h);
    wait_for(&mut h, "the dialog to say delivered", |h| {
        shows(h, "Delivered to the mailbox of alice@example.test")
    });
    assert!(shows(&h, "Accepted: 250 2.0.0 Ok: delivered as"));

    let new = env.data.join("mailboxes/example.test/alice/new");
    let files: Vec<_> = std::fs::read_dir(&new)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let mail = std::fs::read_to_string(&files[0]).unwrap();
    assert!(mail.contains("Subject: Postern test mail"), "{mail}");
    assert!(mail.contains("If you can read it"), "{mail}");

    wait_for(&mut h, "the checklist to tick the test mail", |h| {
        ticked(h, "Test Mail")
    });
}

#[test]
fn a_test_mail_to_another_domain_is_queued_then_delivered_through_the_relay() {
    let sink = dns_common::Sink::start(std::net::Ipv4Addr::LOCALHOST, 0, &[]);
    let (env, _, _) = relay_env(sink.port(), |_| {});
    with_alice(&env);
    let mut h = env.app();
    click(&mut h, "Send Test Mail");
    set_field(&mut h, "To", "bob@remote.test");
    set_field(&mut h, "Password", "correct horse");
    send(&mut h);
    wait_for(&mut h, "the dialog to say queued", |h| {
        shows(h, "Queued as ")
    });
    wait_for(&mut h, "the dialog to say delivered", |h| {
        shows(
            h,
            "Delivered by the queue: delivered to <bob@remote.test> via 127.0.0.1",
        )
    });
    assert!(shows(&h, "Accepted: 250 2.0.0 Ok: queued as"));
    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "the relay host got it once");
    assert!(
        mails[0].contains("Subject: Postern test mail"),
        "{}",
        mails[0]
    );
    assert!(ticked(&h, "Test Mail"));
}

#[test]
fn a_refused_test_mail_shows_the_servers_reply() {
    let (env, _, _) = relay_env(free_port(), |_| {});
    with_alice(&env);
    let mut h = env.app();
    click(&mut h, "Send Test Mail");
    set_field(&mut h, "To", "bob@remote.test");

    // Without a login, Access Control refuses to relay for 127.0.0.1.
    send(&mut h);
    wait_for(&mut h, "the refusal without a login", |h| {
        shows(h, "Not sent: ")
    });
    assert!(
        shows(&h, "550 5.7.1 Relaying denied"),
        "the server's reply is shown"
    );
    assert!(
        shows(&h, "enter its password"),
        "the dialog says what to change"
    );

    set_field(&mut h, "Password", "wrong horse");
    send(&mut h);
    wait_for(&mut h, "the wrong password's reply", |h| {
        shows(h, "535 5.7.8 Authentication credentials invalid")
    });
    assert!(shows(&h, "Check the From account's password"));
    assert_eq!(
        h.get_by_label("Password").value().as_deref(),
        Some(""),
        "the password is not kept"
    );
    assert!(!ticked(&h, "Test Mail"));
}

#[test]
fn a_deferred_test_mail_shows_why_and_stays_in_the_queue() {
    // The relay host answers every RCPT with a 4xx.
    let sink = dns_common::Sink::start(std::net::Ipv4Addr::LOCALHOST, 0, &["-r", "RCPT"]);
    let (env, _, _) = relay_env(sink.port(), |_| {});
    with_alice(&env);
    let mut h = env.app();
    click(&mut h, "Send Test Mail");
    set_field(&mut h, "To", "bob@remote.test");
    set_field(&mut h, "Password", "correct horse");
    send(&mut h);
    wait_for(&mut h, "the dialog to say deferred", |h| {
        shows(h, "Deferred: attempt 1: ")
    });
    assert!(shows(&h, "The mail stays in the queue"));
    let line = h
        .query_all_by_label_contains("Deferred: ")
        .next()
        .and_then(|n| n.value())
        .unwrap_or_default();
    assert!(
        line.contains("said: 450 ") && line.contains("(in reply to RCPT TO)"),
        "the relay host's reply: {line}"
    );
    assert!(!shows(&h, "Delivered"));
    assert_eq!(queued(&h).len(), 1);
    assert!(sink.mails().is_empty());
    assert!(!ticked(&h, "Test Mail"));

    // Stopping the services ends the following, not the mail.
    h.get_by_label("Stop Services").click();
    h.step();
    wait_for(&mut h, "the dialog to stop following", |h| {
        shows(h, "No longer followed: the services are stopping")
    });
}

/// Logs in over SMTP AUTH PLAIN on 127.0.0.1:`port`: the reply code to AUTH, or the greeting's
/// code when the connection is refused before it.
fn smtp_login(port: u16, user: &str, pass: &str) -> u16 {
    use base64::Engine as _;
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut reply = || -> u16 {
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) < 4 {
                return 0;
            }
            if line.as_bytes()[3] != b'-' {
                return line[..3].parse().unwrap_or(0);
            }
        }
    };
    let greeting = reply();
    if greeting != 220 {
        return greeting;
    }
    write!(w, "EHLO client.test\r\n").unwrap();
    reply();
    let token = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{pass}"));
    write!(w, "AUTH PLAIN {token}\r\n").unwrap();
    let code = reply();
    let _ = write!(w, "QUIT\r\n");
    code
}

#[test]
fn unblock_in_abuse_and_spam_lifts_a_lockout() {
    let port = free_port();
    let env = Env::new(port, |c| {
        c.smtp.outgoing.enabled = true;
        c.smtp.outgoing.port = port;
        c.smtp.tls.auth_requires_tls = false;
        c.access.allow_own_ips = false;
        c.abuse.lockout.failures = 3;
        c.domains = vec!["example.test".into()];
        c.accounts = vec![config::Account {
            address: "alice@example.test".into(),
            password: password::hash("right"),
            ..Default::default()
        }];
    });
    let mut h = env.app();
    click(&mut h, "Abuse & Spam");
    h.get_by_label_contains("No address is blocked now");
    // The limits 0 turns off say so beside their field.
    assert!(h.query_all_by_label("0 = no limit").count() >= 3);
    h.get_by_label("0 = never block");

    for _ in 0..3 {
        assert_eq!(smtp_login(port, "alice@example.test", "wrong"), 535);
    }
    assert_eq!(smtp_login(port, "alice@example.test", "right"), 421);
    // The dialog refreshes itself while open: the row appears with its reason.
    wait_for(&mut h, "the lockout in Blocked Now", |h| {
        h.query_by_label("127.0.0.1").is_some()
    });
    h.get_by_label("login lockout: 3 failed logins within 10m");
    // Blocked Now sits below the settings, in the dialog's scroll area.
    h.get_by_label("Unblock").scroll_to_me();
    h.run();
    // A pointer moves onto the button, then clicks it.
    h.get_by_label("Unblock").hover();
    h.run();
    click(&mut h, "Unblock");
    wait_for(&mut h, "the row to go", |h| {
        h.query_by_label("127.0.0.1").is_none()
            && h.query_by_label_contains("No address is blocked now")
                .is_some()
    });
    h.get_by_label_contains("127.0.0.1 unblocked: it may log in again at once");
    assert_eq!(
        smtp_login(port, "alice@example.test", "right"),
        235,
        "the client logs in again at once"
    );
    // The unblock is on the Security view.
    click(&mut h, "Cancel");
    click(&mut h, "Security");
    wait_for(&mut h, "the unblock in the Security log", |h| {
        h.query_all_by_label_contains("127.0.0.1 unblocked from the window")
            .next()
            .is_some()
    });
}

/// Apply with a port something else holds: the dialog says what the running server did (the
/// port is taken, the old one keeps listening), and the old port does answer.
#[test]
fn apply_with_a_port_in_use_shows_the_failure_and_the_old_port_still_answers() {
    let old = free_port();
    let env = Env::new(old, |_| {});
    let mut h = env.app();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().port();
    click(&mut h, "SMTP Settings");
    set_field(&mut h, "Incoming SMTP Port", &busy.to_string());
    click(&mut h, "Apply");
    wait_for(&mut h, "the running server's report in the dialog", |h| {
        shows(h, "Address already in use")
    });
    assert!(
        shows(
            &h,
            &format!("the old listener on 127.0.0.1:{old} keeps listening")
        ),
        "the report says the old port keeps listening"
    );
    assert!(
        shows(&h, "smtp.incoming.port"),
        "the report names the change"
    );
    assert!(
        greeting(old).is_some_and(|g| g.starts_with("220")),
        "the old port still answers"
    );
    // The strip is drawn before the dialog in a frame: it may show the table of the frame
    // before the report.
    wait_for(&mut h, "the status strip to show the new port down", |h| {
        shows(h, &format!("incoming 127.0.0.1:{busy} DOWN"))
    });
    // OK with the port still taken: the dialog stays open and says why.
    click(&mut h, "OK");
    wait_for(&mut h, "the report of OK", |h| {
        shows(h, "The running server already had this configuration.")
    });
    assert!(
        h.state().is_open(Dialog::Smtp),
        "a failure keeps the dialog open"
    );
    assert!(shows(&h, "Address already in use"));
    // Once the port is free, Apply moves the listener, and says so.
    drop(taken);
    click(&mut h, "Apply");
    wait_for(&mut h, "the move in the dialog", |h| {
        shows(
            h,
            &format!("Incoming SMTP moved from 127.0.0.1:{old} to 127.0.0.1:{busy}"),
        )
    });
    assert!(greeting(busy).is_some_and(|g| g.starts_with("220")));
    press_ok(&mut h);
    assert!(!h.state().is_open(Dialog::Smtp));
}

/// The status strip counts what the engine counts: an accepted mail, a refused RCPT.
#[test]
fn a_refused_rcpt_moves_the_refused_counter() {
    let port = free_port();
    let env = Env::new(port, |_| {});
    with_alice(&env);
    let mut h = env.app();
    assert!(shows(&h, "Accepted 0 · Sent 0 · Given Up 0 · Refused 0"));
    let refused = send_mail(port, "bob@remote.test", "nobody@example.test", "hello");
    assert!(refused.is_err_and(|r| r.starts_with("550")));
    wait_for(&mut h, "the refused counter to move", |h| {
        shows(h, "Accepted 0 · Sent 0 · Given Up 0 · Refused 1")
    });
    send_mail(
        port,
        "bob@remote.test",
        "alice@example.test",
        "Subject: hi\r\n\r\nhi",
    )
    .unwrap();
    wait_for(&mut h, "the accepted counter to move", |h| {
        shows(h, "Accepted 1 · Sent 0 · Given Up 0 · Refused 1")
    });
    // Stopped, the strip keeps the last counts; a new window over the engine started again
    // shows the same (the engine kept them in DATA/stats.json).
    click(&mut h, "Stop Services");
    wait_for(&mut h, "the services to stop", |h| {
        *h.state().services().state() == ServiceState::Stopped
    });
    assert!(shows(&h, "Accepted 1 · Sent 0 · Given Up 0 · Refused 1"));
    drop(h);
    let mut h = env.app();
    wait_for(&mut h, "the same counts after the restart", |h| {
        shows(h, "Accepted 1 · Sent 0 · Given Up 0 · Refused 1")
    });
}

/// A line logged by an earlier run (before the window opened) is in the Live Logs pane.
#[test]
fn the_live_logs_pane_shows_a_line_logged_before_the_window_opened() {
    let env = Env::new(free_port(), |_| {});
    let opts = EngineOptions {
        config_path: env.cfg.clone(),
        data_dir: env.data.clone(),
    };
    env.rt.block_on(async {
        let bus = EventBus::new();
        let handle = postern::engine::start(opts, bus.clone()).await.unwrap();
        bus.emit(
            postern::engine::events::Level::Info,
            None,
            postern::engine::events::EventKind::Note {
                text: "a line from before the window".into(),
            },
        );
        handle.shutdown().await;
    });
    let mut h = env.app();
    click(&mut h, "System");
    assert!(
        shows(&h, "a line from before the window"),
        "today's earlier line is shown"
    );
    assert!(shows(&h, "today's earlier lines"));
}

/// The size of the window titled `title`, as egui placed it in the last frame.
fn window_size(h: &Harness<'_, PosternApp>, title: &str) -> egui::Vec2 {
    h.get_by_role_and_label(egui::accesskit::Role::Window, title)
        .rect()
        .size()
}

/// A dialog keeps its size while errors appear under its fields and go again, and when the
/// running server's report fills the result area.
#[test]
fn a_dialog_keeps_its_size_when_errors_come_and_go() {
    let env = Env::new(free_port(), |_| {});
    let mut h = env.app();
    click(&mut h, "SMTP Settings");
    let opened = window_size(&h, "SMTP Settings");
    set_field(&mut h, "Max Recipients Per Mail", "5");
    set_field(&mut h, "Data Timeout", "soon");
    set_field(&mut h, "Command Timeout", "later");
    click(&mut h, "Apply");
    h.get_by_label("must be at least 100 (RFC 5321 4.5.3.1.8)");
    h.get_by_label("Not saved: 3 setting(s) need fixing.");
    assert_eq!(window_size(&h, "SMTP Settings"), opened, "with errors");
    set_field(&mut h, "Max Recipients Per Mail", "250");
    set_field(&mut h, "Data Timeout", "2m");
    set_field(&mut h, "Command Timeout", "1m");
    click(&mut h, "Apply");
    wait_for(&mut h, "the running server's report", |h| {
        shows(h, "changed: ")
    });
    assert!(
        h.query_by_label("must be at least 100 (RFC 5321 4.5.3.1.8)")
            .is_none()
    );
    assert_eq!(
        window_size(&h, "SMTP Settings"),
        opened,
        "errors gone, report shown"
    );
}

/// The checklist's incoming port step shows why the port is not bound, and its button leads
/// to the dialog that fixes it.
#[test]
fn the_checklist_shows_why_the_incoming_port_is_not_bound_and_leads_to_the_fix() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().port();
    let env = Env::new(busy, |_| {});
    let mut h = env.app();
    wait_for(&mut h, "the bind error in the checklist", |h| {
        shows(h, "Address already in use")
    });
    assert!(!ticked(&h, "Incoming Port"));
    click(&mut h, "Set the Port...");
    assert!(h.state().is_open(Dialog::Smtp));
    let port = free_port();
    set_field(&mut h, "Incoming SMTP Port", &port.to_string());
    press_ok(&mut h);
    wait_for(&mut h, "the port step to tick", |h| {
        ticked(h, "Incoming Port")
    });
    assert!(greeting(port).is_some_and(|g| g.starts_with("220")));
}

/// The issue's "done when": from a new data directory to a delivered test mail by following
/// the checklist alone (each step's button, its dialog, OK, the tick), and the test mail's
/// tick is the engine's: a new window over the restarted engine still has it.
#[test]
fn a_new_admin_follows_the_checklist_to_a_delivered_test_mail() {
    let env = Env::new(free_port(), |c| {
        c.server.hostname = "myhost".into();
        c.domains.clear();
        c.accounts.clear();
        c.smtp.outgoing.enabled = false;
    });
    let mut h = env.app();
    h.get_by_label_contains("6 steps left");
    // The empty queue says what will appear there.
    click(&mut h, "Queued Mails");
    h.get_by_label(postern::gui::panes::queue::EMPTY);
    click(&mut h, "Live Logs");

    // 1. The host name, in SMTP Settings.
    assert!(!ticked(&h, "Server Host Name"));
    click(&mut h, "Set Host Name...");
    set_field_in(
        &mut h,
        Some("SMTP Settings"),
        "Server Host Name",
        "mail.example.test",
    );
    press_ok(&mut h);
    wait_for(&mut h, "the host name step", |h| {
        ticked(h, "Server Host Name")
    });

    // 2. A local domain, then 3. an account, in Domains & Accounts.
    click(&mut h, "Add a Domain...");
    set_field(&mut h, "New Domain", "example.test");
    click(&mut h, "Add Domain");
    press_ok(&mut h);
    wait_for(&mut h, "the domain step", |h| ticked(h, "Local Domain"));
    assert!(!ticked(&h, "Account"));
    click(&mut h, "Add an Account...");
    set_field(&mut h, "User Name", "alice");
    set_field(&mut h, "Password", "correct horse");
    set_field(&mut h, "Confirm Password", "correct horse");
    click(&mut h, "Add Account");
    press_ok(&mut h);
    wait_for(&mut h, "the account step", |h| ticked(h, "Account"));

    // 4. The incoming port is bound already.
    assert!(ticked(&h, "Incoming Port"));

    // 5. Outgoing SMTP on its own port; Access Control's defaults restrict it.
    let out = free_port();
    click(&mut h, "Enable Outgoing SMTP...");
    click_in(&mut h, "SMTP Settings", "Enable Outgoing SMTP");
    set_field(&mut h, "Outgoing SMTP Port", &out.to_string());
    press_ok(&mut h);
    wait_for(&mut h, "the outgoing step", |h| {
        ticked(h, "Outgoing SMTP and Access Control")
    });

    // 6. Independent delivery is the default.
    assert!(ticked(&h, "Delivery Mode"));

    // 8. The test mail, to the account just made.
    assert!(!ticked(&h, "Test Mail"));
    click(&mut h, "Send Test Mail...");
    assert_eq!(
        h.get_by_label("To").value().as_deref(),
        Some("alice@example.test")
    );
    send(&mut h);
    wait_for(&mut h, "the dialog to say delivered", |h| {
        shows(h, "Delivered to the mailbox of alice@example.test")
    });
    wait_for(&mut h, "the test mail step", |h| ticked(h, "Test Mail"));
    let new = env.data.join("mailboxes/example.test/alice/new");
    let files: Vec<_> = std::fs::read_dir(&new).unwrap().collect();
    assert_eq!(files.len(), 1, "the mail is in alice's Maildir");
    // Only the DNS records are left (they need a public DNS: see its own test).
    h.get_by_label_contains("1 step left");
    assert!(!ticked(&h, "DNS Records"));

    // A new window over the engine started again: the tick comes from the engine's counters.
    click(&mut h, "Stop Services");
    wait_for(&mut h, "the services to stop", |h| {
        *h.state().services().state() == ServiceState::Stopped
    });
    drop(h);
    let mut h = env.app();
    wait_for(&mut h, "the test mail step after a restart", |h| {
        ticked(h, "Test Mail")
    });
    let last = h
        .get_by_label_contains("the server last delivered a mail on")
        .value()
        .unwrap_or_default();
    assert!(last.contains("(UTC)"), "{last}");
}

/// With every kind of listener up (incoming, outgoing, implicit-TLS SMTP, POP3 and IMAP with
/// their TLS ports), the status strip stays on one line in a window of the default size.
#[test]
fn the_status_strip_stays_on_one_line_at_the_default_window_size() {
    let env = Env::new(free_port(), |c| {
        c.smtp.outgoing.enabled = true;
        c.smtp.outgoing.port = free_port();
        c.smtp.tls.implicit_port = Some(free_port());
        for s in [&mut c.pop3.port, &mut c.imap.port] {
            *s = free_port();
        }
        c.pop3.ssl_port = free_port();
        c.imap.ssl_port = free_port();
        c.pop3.implicit_ssl = true;
        c.imap.implicit_ssl = true;
        c.pop3.enabled = true;
        c.imap.enabled = true;
        c.pop3.listen_ip = "127.0.0.1".into();
        c.imap.listen_ip = "127.0.0.1".into();
    });
    let mut h = env.app_sized(postern::gui::DEFAULT_SIZE);
    wait_for(&mut h, "every listener up", |h| {
        h.state()
            .services()
            .status()
            .is_some_and(|s| s.listeners.len() >= 6 && s.listeners.iter().all(|l| l.addr.is_some()))
    });
    h.run();
    let first = h.get_by_label("Services: running").rect();
    let last = h.get_by_label_contains("Accepted 0 · Sent 0").rect();
    assert!(
        (first.center().y - last.center().y).abs() < 1.0,
        "the counters are on the strip's first line: {first:?} {last:?}"
    );
    assert!(last.right() <= postern::gui::DEFAULT_SIZE[0], "{last:?}");
}

/// Whether `label` is in Title Case as the manual writes its labels ("Listen Only on IP",
/// "Allow Only the Following"): every word capitalised but the short joining ones; words that
/// are data (addresses, numbers, paths) and notes in parentheses are not judged.
fn is_title_case(label: &str) -> bool {
    const MINOR: [&str; 14] = [
        "a", "an", "the", "and", "or", "of", "on", "in", "to", "at", "by", "for", "as", "from",
    ];
    let mut depth = 0i32;
    for (i, word) in label.split_whitespace().enumerate() {
        let inside = depth > 0 || word.starts_with('(');
        depth += word.matches('(').count() as i32 - word.matches(')').count() as i32;
        let data = word.contains(['@', '.', ':', '/', '_']) || word.contains(char::is_numeric);
        let Some(first) = word.chars().find(|c| c.is_alphanumeric()) else {
            continue;
        };
        if inside || data || !first.is_alphabetic() || first.is_uppercase() {
            continue;
        }
        if i == 0 || !MINOR.contains(&word) {
            return false;
        }
    }
    true
}

/// The labels of the buttons, checkboxes and radio buttons shown now.
fn control_labels(h: &Harness<'_, PosternApp>) -> Vec<String> {
    use egui::accesskit::Role;
    let mut out = Vec::new();
    for role in [Role::Button, Role::CheckBox, Role::RadioButton] {
        for n in h.query_all_by_role(role) {
            if let Some(l) = n.accesskit_node().label() {
                out.push(l.to_string());
            }
        }
    }
    out
}

/// One capitalisation, the manual's: every button, checkbox and radio button of the main
/// window, its menus and every dialog is in Title Case.
#[test]
fn every_control_label_is_in_title_case() {
    assert!(is_title_case("Incoming SMTP Listen Only on IP"));
    assert!(is_title_case("Like Postfix (5 days)"));
    assert!(!is_title_case("Send a failure notice"));
    let env = Env::new(free_port(), |_| {});
    with_alice(&env);
    let mut h = env.app();
    let mut seen = control_labels(&h);
    for menu in ["Server", "Settings", "Tools", "View", "Help"] {
        click(&mut h, menu);
        seen.extend(control_labels(&h));
        h.key_press(egui::Key::Escape);
        h.run();
    }
    click(&mut h, "Queued Mails");
    seen.extend(control_labels(&h));
    for (name, d) in Dialog::NAMES {
        h.state_mut().open(d);
        for _ in 0..4 {
            h.step();
        }
        seen.extend(control_labels(&h));
        h.key_press(egui::Key::Escape);
        h.step();
        h.step();
        assert!(!h.state().is_open(d), "{name} closed");
    }
    assert!(seen.len() > 100, "{} labels seen", seen.len());
    // Log lines (selectable rows, from a timestamp on) are data; "Close window" is egui's own.
    let wrong: Vec<&String> = seen
        .iter()
        .filter(|l| !l.starts_with(|c: char| c.is_ascii_digit()) && l.as_str() != "Close window")
        .filter(|l| !is_title_case(l))
        .collect();
    assert!(wrong.is_empty(), "not in Title Case: {wrong:?}");
}

/// A greyed-out button says why on hover; the Level label stands before its list.
#[test]
fn disabled_buttons_say_why_and_labels_stand_before_their_controls() {
    let env = Env::new(free_port(), |_| {});
    let mut h = env.app();
    h.get_by_role_and_label(egui::accesskit::Role::Button, "Start Services")
        .hover();
    h.run();
    h.get_by_label("The services are running");
    click(&mut h, "Queued Mails");
    h.get_by_label("Retry All").hover();
    h.run();
    h.get_by_label("The queue is empty");
    h.get_by_label("Retry Now").hover();
    h.run();
    h.get_by_label("Select a mail first");
    click(&mut h, "Live Logs");
    // The list is named by its label (labelled_by); the label is the text node "Level".
    let list = h.get_by_label("Level").rect();
    let label = h
        .query_all_by_role(egui::accesskit::Role::Label)
        .find(|n| {
            n.value().as_deref() == Some("Level")
                || n.accesskit_node().label() == Some("Level".into())
        })
        .expect("the Level label")
        .rect();
    let beside = list.left() >= label.right() && (list.center().y - label.center().y).abs() < 4.0;
    assert!(beside, "the Level list stands after its label, on its row");
}

/// A log line wider than the pane shows whole on hover.
#[test]
fn a_long_log_line_shows_whole_on_hover() {
    let env = Env::new(free_port(), |_| {});
    let mut h = env.app();
    let text = format!("a long line {}", "word ".repeat(120));
    h.state().services().events().emit(
        Level::Info,
        None,
        EventKind::Note {
            text: text.trim_end().into(),
        },
    );
    wait_for(&mut h, "the long line in the pane", |h| {
        shows(h, "a long line word")
    });
    assert_eq!(h.query_all_by_label_contains("a long line word").count(), 1);
    // The pointer on the row's visible start (its middle is far right, outside the pane).
    let row = h.get_by_label_contains("a long line word").rect();
    h.input_mut().events.push(egui::Event::PointerMoved(
        row.left_center() + egui::vec2(60.0, 0.0),
    ));
    h.run();
    assert_eq!(
        h.query_all_by_label_contains("a long line word").count(),
        2,
        "the line and its hover text"
    );
}
