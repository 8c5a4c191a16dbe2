//! The `postern` command line: config, domains, accounts, and the lifecycle
//! of `postern serve` (single owner, signals, hot reload).

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::*;

/// A config dir with nothing in it yet.
fn empty_dir() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("postern.ron");
    let data = dir.path().join("data");
    (dir, cfg, data)
}

fn run(cfg: &Path, data: &Path, args: &[&str]) -> Out {
    postern(cfg, data, args, None)
}

#[test]
fn config_show_prints_defaults_as_dotted_keys() {
    let (_d, cfg, data) = empty_dir();
    let out = run(&cfg, &data, &["config", "show"]);
    out.assert_ok();
    let lines: Vec<&str> = out.stdout.lines().map(str::trim).collect();
    for expected in [
        "smtp.incoming.port = 25",
        "smtp.incoming.listen_ip = \"\"",
        "smtp.outgoing.enabled = false",
        "smtp.outgoing.port = 2525",
        "smtp.outgoing.listen_ip = \"\"",
        "smtp.max_connections_per_port = 100",
        "smtp.max_recipients_per_mail = 100",
        "smtp.max_message_size = 26214400",
        "smtp.max_errors_per_session = 10",
        "smtp.timeouts.command = \"5m\"",
        "smtp.timeouts.data = \"3m\"",
        "smtp.tls.certificate = \"\"",
        "smtp.tls.key = \"\"",
        "smtp.tls.implicit_port = None",
        "smtp.tls.auth_requires_tls = true",
    ] {
        assert!(
            lines.contains(&expected),
            "missing line {expected:?} in:\n{}",
            out.stdout
        );
    }
    let machine = fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    assert!(
        lines.contains(&format!("server.hostname = {machine:?}").as_str()),
        "hostname should default to the machine's ({machine}):\n{}",
        out.stdout
    );
}

#[test]
fn config_get_prints_ron_values() {
    let s = Server::prepare(Config::default());
    let get = |k: &str| {
        let o = s.cli(&["config", "get", k]);
        o.assert_ok();
        o.stdout.trim().to_string()
    };
    assert_eq!(get("server.hostname"), "\"mail.test\"");
    assert_eq!(get("smtp.incoming.port"), s.port().to_string());
    assert_eq!(get("smtp.outgoing.enabled"), "false");
    assert_eq!(get("smtp.max_message_size"), "26214400");
    assert_eq!(get("smtp.timeouts.command"), "\"5m\"");
    assert_eq!(get("smtp.tls.implicit_port"), "None");

    let bad = s.cli(&["config", "get", "smtp.no_such_key"]);
    bad.assert_failed();
    assert!(
        bad.stderr.contains("smtp.no_such_key"),
        "stderr should name the key: {}",
        bad.stderr
    );
}

#[test]
fn config_set_writes_values_and_keeps_backup() {
    let s = Server::prepare(Config::default());
    let before = s.config_bytes();
    s.cli(&[
        "config",
        "set",
        "server.hostname=mail.example.test",
        "smtp.outgoing.port=2600",
        "smtp.outgoing.enabled=true",
        "smtp.tls.implicit_port=Some(4650)",
        "smtp.timeouts.command=\"30s\"",
    ])
    .assert_ok();
    let get = |k: &str| s.cli(&["config", "get", k]).stdout.trim().to_string();
    assert_eq!(get("server.hostname"), "\"mail.example.test\"");
    assert_eq!(get("smtp.outgoing.port"), "2600");
    assert_eq!(get("smtp.outgoing.enabled"), "true");
    assert_eq!(get("smtp.tls.implicit_port"), "Some(4650)");
    assert_eq!(get("smtp.timeouts.command"), "\"30s\"");
    // Untouched values survive.
    assert_eq!(get("smtp.incoming.port"), s.port().to_string());
    let domains: String = get("domains").split_whitespace().collect();
    assert_eq!(domains.replace(",]", "]"), "[\"example.test\"]");

    let bak = fs::read(format!("{}.bak", s.config_path.display())).expect(".bak exists");
    assert_eq!(bak, before, ".bak holds the previous file");
    let text = String::from_utf8(s.config_bytes()).unwrap();
    assert!(text.contains("mail.example.test"), "{text}");

    // `config show` reflects the change too.
    let show = s.cli(&["config", "show"]);
    show.assert_ok();
    assert!(
        show.stdout
            .lines()
            .any(|l| l.trim() == "smtp.outgoing.port = 2600"),
        "{}",
        show.stdout
    );
    // Enum values as the README writes them and `config set` takes them: bare.
    assert!(
        show.stdout
            .lines()
            .any(|l| l.trim() == "outgoing_mails.mode = Independent"),
        "{}",
        show.stdout
    );
    s.cli(&["config", "check"]).assert_ok();
}

#[test]
fn config_set_on_missing_file_creates_defaults() {
    let (_d, cfg, data) = empty_dir();
    run(&cfg, &data, &["config", "set", "smtp.outgoing.port=2700"]).assert_ok();
    let text = fs::read_to_string(&cfg).expect("config file created");
    assert!(text.contains("max_recipients_per_mail"), "{text}");
    let o = run(&cfg, &data, &["config", "get", "smtp.outgoing.port"]);
    assert_eq!(o.stdout.trim(), "2700");
    let o = run(&cfg, &data, &["config", "get", "smtp.incoming.port"]);
    assert_eq!(o.stdout.trim(), "25");
}

#[test]
fn config_set_validation_names_field_and_leaves_file_untouched() {
    let s = Server::prepare(Config::default());
    let before = s.config_bytes();
    let bak_path = format!("{}.bak", s.config_path.display());
    let bak_before = fs::read(&bak_path).ok();
    for (arg, field) in [
        (
            "smtp.max_recipients_per_mail=5",
            "smtp.max_recipients_per_mail",
        ),
        ("smtp.incoming.port=70000", "smtp.incoming.port"),
        ("smtp.timeouts.command=\"soon\"", "smtp.timeouts.command"),
        ("smtp.no_such_field=1", "smtp.no_such_field"),
    ] {
        let o = s.cli(&["config", "set", arg]);
        o.assert_failed();
        assert!(
            o.stderr.contains(field),
            "stderr for {arg} should name {field}: {}",
            o.stderr
        );
        assert_eq!(s.config_bytes(), before, "file changed by failed {arg}");
    }
    // One bad pair spoils the whole command: the good one is not applied.
    let o = s.cli(&[
        "config",
        "set",
        "server.hostname=other.test",
        "smtp.max_recipients_per_mail=5",
    ]);
    o.assert_failed();
    assert_eq!(s.config_bytes(), before);
    assert_eq!(
        s.cli(&["config", "get", "server.hostname"]).stdout.trim(),
        "\"mail.test\""
    );
    assert_eq!(
        fs::read(&bak_path).ok(),
        bak_before,
        "the backup is not touched when nothing was written"
    );
}

#[test]
fn config_check_says_when_undeliverable_mail_is_returned() {
    let s = Server::prepare(Config::default());
    let check = s.cli(&["config", "check"]);
    check.assert_ok();
    assert!(
        check
            .stderr
            .contains("returned to its sender after about 20 minutes (5 attempts, 5m apart)"),
        "{}",
        check.stderr
    );
    s.cli(&[
        "config",
        "set",
        "outgoing_mails.backoff=true",
        "outgoing_mails.give_up_after=\"5d\"",
        "outgoing_mails.resend_attempts=0",
    ])
    .assert_ok();
    let check = s.cli(&["config", "check"]);
    check.assert_ok();
    assert!(!check.stderr.contains("returned"), "{}", check.stderr);
    // No limit at all is refused: a mail could wait forever.
    s.cli(&["config", "set", "outgoing_mails.give_up_after=None"])
        .assert_failed();
}

#[test]
fn config_check_ok() {
    let s = Server::prepare(Config::default());
    let o = s.cli(&["config", "check"]);
    o.assert_ok();
    assert!(o.stdout.trim_start().starts_with("ok"), "{}", o.stdout);
}

/// Every command that reads the config must refuse a broken file, point at
/// it, and never overwrite it.
fn assert_broken_config_refused(text: &str, line: usize, field: Option<&str>) {
    let (_d, cfg, data) = empty_dir();
    fs::write(&cfg, text).unwrap();
    let path = cfg.display().to_string();

    let check = run(&cfg, &data, &["config", "check"]);
    check.assert_failed();
    assert!(
        check.stderr.contains(&path),
        "stderr names the file: {}",
        check.stderr
    );
    assert!(
        check.stderr.contains(&format!("line {line}")),
        "stderr names line {line}: {}",
        check.stderr
    );
    if let Some(f) = field {
        assert!(
            check.stderr.contains(f),
            "stderr names the field {f}: {}",
            check.stderr
        );
    }
    assert_eq!(fs::read_to_string(&cfg).unwrap(), text);

    for args in [
        &["config", "set", "server.hostname=x.test"][..],
        &["domain", "add", "other.test"][..],
        &["config", "show"][..],
        &["serve"][..],
    ] {
        let o = run(&cfg, &data, args);
        o.assert_failed();
        assert!(
            o.stderr.contains(&path),
            "{args:?}: stderr names the file: {}",
            o.stderr
        );
        assert_eq!(
            fs::read_to_string(&cfg).unwrap(),
            text,
            "{args:?} modified a broken config"
        );
    }
    assert!(
        !Path::new(&format!("{path}.bak")).exists(),
        "nothing was written, so no backup either"
    );
}

#[test]
fn config_with_syntax_error_is_reported_and_never_overwritten() {
    let text = "(\n    server: (hostname: \"mail.test\"),\n    smtp: (incoming: (port: 2525 listen_ip: \"\")),\n    domains: [],\n    accounts: [],\n)\n";
    assert_broken_config_refused(text, 3, None);
}

#[test]
fn config_with_wrong_type_is_reported_and_never_overwritten() {
    let mut text = Config::default().to_ron();
    let port_line = text
        .lines()
        .position(|l| l.contains("incoming: (port:"))
        .unwrap()
        + 1;
    let start = text.find("incoming: (port: ").unwrap() + "incoming: (port: ".len();
    let end = start + text[start..].find(',').unwrap();
    text.replace_range(start..end, "\"abc\"");
    assert!(text.contains("incoming: (port: \"abc\","), "{text}");
    assert_broken_config_refused(&text, port_line, Some("port"));
}

#[test]
fn domain_commands() {
    let s = Server::prepare(Config::default());
    s.cli(&["domain", "add", "a.test"]).assert_ok();
    s.cli(&["domain", "add", "b.test"]).assert_ok();
    let list = s.cli(&["domain", "list"]);
    list.assert_ok();
    let ds: Vec<&str> = list.stdout.lines().map(str::trim).collect();
    for d in ["example.test", "a.test", "b.test"] {
        assert!(ds.contains(&d), "{d} missing from {ds:?}");
    }
    assert_eq!(ds.len(), 3, "{ds:?}");

    s.cli(&["domain", "remove", "a.test"]).assert_ok();
    let list = s.cli(&["domain", "list"]);
    let ds: Vec<&str> = list.stdout.lines().map(str::trim).collect();
    assert!(!ds.contains(&"a.test"), "{ds:?}");
    assert!(ds.contains(&"b.test"), "{ds:?}");
    let text = String::from_utf8(s.config_bytes()).unwrap();
    assert!(
        text.contains("b.test") && !text.contains("a.test"),
        "{text}"
    );
}

#[test]
fn account_commands_store_only_hashes() {
    let s = Server::prepare(Config {
        domains: vec!["corp.test".into()],
        ..Config::default()
    });
    let before = s.config_bytes();
    // Unknown domain: refused, file untouched.
    s.cli_stdin(
        &["account", "add", "bob@nowhere.test", "--password-stdin"],
        "pw-bob-1\n",
    )
    .assert_failed();
    assert_eq!(s.config_bytes(), before);

    s.cli_stdin(
        &["account", "add", "bob@corp.test", "--password-stdin"],
        "Clear-Text-Pw-123\n",
    )
    .assert_ok();
    let list = s.cli(&["account", "list"]);
    list.assert_ok();
    assert_eq!(
        list.stdout.lines().map(str::trim).collect::<Vec<_>>(),
        vec!["bob@corp.test"]
    );
    let text = String::from_utf8(s.config_bytes()).unwrap();
    assert!(text.contains("bob@corp.test"), "{text}");
    assert!(
        text.contains("$argon2"),
        "password must be an argon2 hash: {text}"
    );
    assert!(
        !text.contains("Clear-Text-Pw-123"),
        "clear password on disk"
    );

    s.cli_stdin(
        &["account", "passwd", "bob@corp.test", "--password-stdin"],
        "Another-Pw-456\n",
    )
    .assert_ok();
    let text2 = String::from_utf8(s.config_bytes()).unwrap();
    assert_ne!(text, text2, "passwd must change the stored hash");
    assert!(text2.contains("$argon2"));
    assert!(!text2.contains("Another-Pw-456") && !text2.contains("Clear-Text-Pw-123"));

    s.cli(&["account", "remove", "bob@corp.test"]).assert_ok();
    let list = s.cli(&["account", "list"]);
    list.assert_ok();
    assert!(list.stdout.trim().is_empty(), "{}", list.stdout);
    assert!(
        !String::from_utf8(s.config_bytes())
            .unwrap()
            .contains("bob@corp.test")
    );
}

#[test]
fn second_serve_on_same_data_dir_is_refused() {
    let s = Server::start_default();
    // A second config on other ports, so only the data dir is shared.
    let cfg2 = s.dir.path().join("second.ron");
    fs::write(&cfg2, Config::default().to_ron()).unwrap();
    let o = postern(&cfg2, &s.data_dir, &["serve"], None);
    o.assert_failed();
    assert!(
        o.stderr.contains("already"),
        "message should say the data dir is already in use: {}",
        o.stderr
    );
    // The first server is unharmed.
    let mut c = s.connect();
    c.ehlo();
}

#[test]
fn sigterm_sends_421_to_idle_sessions_and_exits_zero() {
    let mut s = Server::start_default();
    let mut c = s.connect();
    c.ehlo();
    s.signal("TERM");
    c.read_reply().assert(421, "4.3.2");
    c.assert_closed();
    let st = s.wait_exit(Duration::from_secs(30));
    assert!(st.success(), "exit status after SIGTERM: {st:?}");
}

#[test]
fn sigint_stops_server_with_status_zero() {
    let mut s = Server::start_default();
    let mut c = s.connect();
    c.ehlo();
    c.expect("MAIL FROM:<bob@remote.test>", 250, "");
    s.signal("INT");
    c.read_reply().assert(421, "4.3.2");
    c.assert_closed();
    let st = s.wait_exit(Duration::from_secs(30));
    assert!(st.success(), "exit status after SIGINT: {st:?}");
    // Stopped means stopped: nothing listens any more.
    assert!(Client::try_connect(s.port()).is_err());
}

#[test]
fn hot_reload_moves_the_listener_to_a_new_port() {
    let s = Server::start_default();
    let old = s.port();
    let new = free_port();
    s.cli(&["config", "set", &format!("smtp.incoming.port={new}")])
        .assert_ok();
    poll(DEADLINE, "the new port to greet", || {
        let mut c = Client::try_connect(new).ok()?;
        (c.try_read_reply().ok()?.code == 220).then_some(())
    });
    poll(
        DEADLINE,
        "the old port to stop listening",
        || match Client::try_connect(old) {
            Err(_) => Some(()),
            Ok(mut c) => c.try_read_reply().is_err().then_some(()),
        },
    );
    let mut c = Client::connect_greeted(new);
    c.ehlo();
    c.expect("MAIL FROM:<bob@remote.test>", 250, "");
    c.expect(&format!("RCPT TO:<{ALICE}>"), 250, "2.1.5");
}

#[test]
fn hot_reload_picks_up_new_domain_and_account() {
    // The polls below are refused recipients until the reload lands: they must not get the
    // test's own address blocked by the tarpit (which counts them across sessions).
    let s = Server::start_with(|c| {
        c.extra_ron = "abuse: (tarpit: (enabled: false)),".into();
    });
    let rcpt = |to: &str| {
        let mut c = s.connect();
        c.ehlo();
        c.expect("MAIL FROM:<bob@remote.test>", 250, "");
        c.cmd(&format!("RCPT TO:<{to}>"))
    };
    rcpt("zed@new.test").assert(550, "5.7.1");

    s.cli(&["domain", "add", "new.test"]).assert_ok();
    poll(DEADLINE, "new.test to become local (550 5.1.1)", || {
        let r = rcpt("zed@new.test");
        (r.code == 550 && r.enhanced() == "5.1.1").then_some(())
    });

    s.cli_stdin(
        &["account", "add", "zed@new.test", "--password-stdin"],
        "zed-pw\n",
    )
    .assert_ok();
    poll(DEADLINE, "zed@new.test to be accepted", || {
        (rcpt("zed@new.test").code == 250).then_some(())
    });

    let mut c = s.connect();
    c.ehlo();
    c.expect("MAIL FROM:<bob@remote.test>", 250, "");
    c.expect("RCPT TO:<zed@new.test>", 250, "2.1.5");
    c.expect("DATA", 354, "");
    c.send(b"Subject: reload\r\n\r\nhello zed\r\n.\r\n")
        .unwrap();
    c.read_reply().assert(250, "2.0.0");
    assert_eq!(s.maildir_files("new.test", "zed").len(), 1);

    // Removing the account and then the domain makes it non-local again.
    s.cli(&["account", "remove", "zed@new.test"]).assert_ok();
    s.cli(&["domain", "remove", "new.test"]).assert_ok();
    poll(DEADLINE, "new.test to stop being local", || {
        let r = rcpt("zed@new.test");
        (r.code == 550 && r.enhanced() == "5.7.1").then_some(())
    });
}

/// The relay host's password never has to appear on a command line, and `config check` warns
/// when Relay mode would send the login without TLS.
#[test]
fn relay_login_from_stdin_and_the_plaintext_warning() {
    let s = Server::prepare(Config::default());
    s.cli_stdin(
        &["access", "relay-login", "isp-user", "--password-stdin"],
        "isp-secret\n",
    )
    .assert_ok();
    s.cli(&[
        "config",
        "set",
        "outgoing_mails.mode=Relay",
        "outgoing_mails.relay.host=smtp.isp.test",
        "outgoing_mails.relay.tls=None",
    ])
    .assert_ok();
    let get = s.cli(&["config", "get", "outgoing_mails.relay"]);
    get.assert_ok();
    assert!(
        get.stdout.contains("isp-user") && get.stdout.contains("isp-secret"),
        "{}",
        get.stdout
    );
    let check = s.cli(&["config", "check"]);
    check.assert_ok();
    assert!(
        check.stderr.contains("`isp-user` is sent without TLS"),
        "{}",
        check.stderr
    );
    s.cli(&["config", "set", "outgoing_mails.relay.tls=StartTls"])
        .assert_ok();
    let check = s.cli(&["config", "check"]);
    assert!(!check.stderr.contains("without TLS"), "{}", check.stderr);
}

/// A `server.hostname` that is not a fully qualified domain name (as gethostname() often
/// gives) is a warning, not an error: `config check` says so and succeeds, and the server
/// starts and logs it. A fully qualified name gets no warning.
#[test]
fn a_hostname_that_is_not_fully_qualified_is_warned_about() {
    const WARNING: &str = "server.hostname `box` is not a fully qualified domain name; other \
                           servers may refuse mail whose HELO is not one (e.g. mail.example.com)";
    let mut s = Server::prepare(Config::default());
    let check = s.cli(&["config", "check"]);
    check.assert_ok();
    assert!(
        !check.stderr.contains("fully qualified"),
        "{HOSTNAME} is: {}",
        check.stderr
    );
    s.cli(&["config", "set", "server.hostname=box"]).assert_ok();
    let check = s.cli(&["config", "check"]);
    check.assert_ok();
    assert!(
        check.stdout.trim_start().starts_with("ok"),
        "{}",
        check.stdout
    );
    assert!(
        check.stderr.contains(&format!("warning: {WARNING}")),
        "{}",
        check.stderr
    );
    s.spawn();
    s.wait_ready(s.port());
    poll(DEADLINE, "the warning in the log", || {
        s.stderr().contains(WARNING).then_some(())
    });
}
