//! STARTTLS, implicit TLS and SMTP AUTH, driven by real third-party clients
//! (swaks, Python's smtplib/ssl) as well as our raw socket client.

mod common;

use std::fs;
use std::process::Command;
use std::time::Duration;

use common::*;

fn swaks(port: u16, extra: &[&str]) -> Out {
    let mut cmd = Command::new("swaks");
    cmd.args([
        "--to",
        ALICE,
        "--from",
        "bob@remote.test",
        "--server",
        &format!("127.0.0.1:{port}"),
        "--helo",
        "client.test",
        "--timeout",
        "20",
    ])
    .args(extra);
    run_with_timeout(cmd, None, Duration::from_secs(60))
}

fn python_peer(args: &[&str]) -> Out {
    let mut cmd = Command::new("python3");
    cmd.arg(peer_script("smtp_peer.py")).args(args);
    run_with_timeout(cmd, None, Duration::from_secs(60))
}

#[track_caller]
fn assert_success(what: &str, o: &Out) {
    assert!(
        o.ok(),
        "{what} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        o.status,
        o.stdout,
        o.stderr
    );
}

#[test]
fn self_signed_certificate_is_generated() {
    let s = Server::start_with(Config::with_submission);
    let tls = s.data_dir.join("tls");
    let cert = fs::read_to_string(tls.join("cert.pem")).expect("DATA/tls/cert.pem");
    let key = fs::read_to_string(tls.join("key.pem")).expect("DATA/tls/key.pem");
    assert!(cert.contains("-----BEGIN CERTIFICATE-----"), "{cert}");
    assert!(key.contains("PRIVATE KEY-----"), "key.pem is not a PEM key");
}

#[test]
fn swaks_starttls_auth_delivers() {
    let s = Server::start_with(Config::with_submission);
    for mech in ["PLAIN", "LOGIN"] {
        let o = swaks(
            s.port(),
            &[
                "-tls",
                "-a",
                mech,
                "--auth-user",
                ALICE,
                "--auth-password",
                PASSWORD,
                "--header",
                &format!("Subject: swaks {mech}"),
            ],
        );
        assert_success(&format!("swaks -a {mech}"), &o);
        assert!(o.stdout.contains("235 2.7.0"), "{}", o.stdout);
    }
    let mails = s.alice_mails();
    assert_eq!(mails.len(), 2, "two mails in new/");
    for mech in ["PLAIN", "LOGIN"] {
        assert!(
            mails
                .iter()
                .any(|m| m.contains(&format!("Subject: swaks {mech}"))),
            "{mails:?}"
        );
    }
}

#[test]
fn swaks_wrong_password_is_refused_with_535() {
    let s = Server::start_with(Config::with_submission);
    let o = swaks(
        s.port(),
        &[
            "-tls",
            "-a",
            "PLAIN",
            "--auth-user",
            ALICE,
            "--auth-password",
            "not-the-password",
        ],
    );
    assert!(!o.ok(), "swaks should fail:\n{}", o.stdout);
    assert!(o.stdout.contains("535 5.7.8"), "{}", o.stdout);
    // An unknown user gets the same answer.
    let o = swaks(
        s.port(),
        &[
            "-tls",
            "-a",
            "LOGIN",
            "--auth-user",
            "mallory@example.test",
            "--auth-password",
            PASSWORD,
        ],
    );
    assert!(!o.ok(), "swaks should fail:\n{}", o.stdout);
    assert!(o.stdout.contains("535 5.7.8"), "{}", o.stdout);
    assert!(s.alice_mails().is_empty());
}

#[test]
fn auth_before_tls_is_refused_with_538() {
    let s = Server::start_with(Config::with_submission);
    let mut c = s.connect();
    let ehlo = c.ehlo();
    assert!(!ehlo.has_line_starting("AUTH"), "{}", ehlo.text());
    c.expect(
        &format!("AUTH PLAIN {}", sasl_plain(ALICE, PASSWORD)),
        538,
        "5.7.11",
    );
    c.expect("AUTH LOGIN", 538, "5.7.11");
    // The session is still usable afterwards.
    c.expect("NOOP", 250, "2.0.0");
}

#[test]
fn auth_without_tls_when_not_required() {
    // Every command and reply in the log file (Debug): still no credentials.
    let s = Server::start_with(|c| {
        c.with_submission();
        c.auth_requires_tls = false;
        c.extra_ron = "logs: (level: Debug),".into();
    });
    let mut c = s.connect();
    let ehlo = c.ehlo();
    assert!(ehlo.has_line_starting("AUTH"), "{}", ehlo.text());
    let auth = ehlo
        .texts()
        .into_iter()
        .find(|t| t.to_ascii_uppercase().starts_with("AUTH"))
        .unwrap()
        .to_ascii_uppercase();
    let mechs: Vec<&str> = auth.split_whitespace().skip(1).collect();
    assert!(
        mechs.contains(&"PLAIN") && mechs.contains(&"LOGIN"),
        "{auth}"
    );

    // Wrong password, PLAIN with initial response.
    c.expect(
        &format!("AUTH PLAIN {}", sasl_plain(ALICE, "wrong")),
        535,
        "5.7.8",
    );
    // LOGIN, step by step.
    c.expect("AUTH LOGIN", 334, "");
    c.expect(&base64(ALICE.as_bytes()), 334, "");
    c.expect(&base64(PASSWORD.as_bytes()), 235, "2.7.0");

    // PLAIN without initial response, on a fresh session.
    let mut c = s.connect();
    c.ehlo();
    c.expect("AUTH PLAIN", 334, "");
    c.expect(&sasl_plain(ALICE, PASSWORD), 235, "2.7.0");
    c.expect("QUIT", 221, "2.0.0");
    c.assert_closed();

    // Credentials never reach the logs, in any encoding.
    let logs: String = list_files(&s.data_dir.join("logs"))
        .iter()
        .map(|p| fs::read_to_string(p).unwrap())
        .collect::<String>()
        + &s.stderr();
    assert!(
        logs.contains("AUTH"),
        "the AUTH commands are logged: {logs}"
    );
    for secret in [
        PASSWORD.to_string(),
        base64(PASSWORD.as_bytes()),
        sasl_plain(ALICE, PASSWORD),
        sasl_plain(ALICE, "wrong"),
    ] {
        assert!(!logs.contains(&secret), "log leaks {secret:?}:\n{logs}");
    }
}

/// `account passwd` on a running server takes effect without a restart.
#[test]
fn changed_password_applies_to_running_server() {
    // The poll below tries the new password until the reload lands: those failures must not
    // lock the test's own address out.
    let s = Server::start_with(|c| {
        c.with_submission();
        c.auth_requires_tls = false;
        c.extra_ron = "abuse: (lockout: (enabled: false)),".into();
    });
    let try_auth = |pw: &str| {
        let mut c = s.connect();
        c.ehlo();
        c.cmd(&format!("AUTH PLAIN {}", sasl_plain(ALICE, pw)))
    };
    try_auth(PASSWORD).assert(235, "2.7.0");
    s.cli_stdin(
        &["account", "passwd", ALICE, "--password-stdin"],
        "brand-new-pw\n",
    )
    .assert_ok();
    poll(DEADLINE, "the new password to be accepted", || {
        (try_auth("brand-new-pw").code == 235).then_some(())
    });
    try_auth(PASSWORD).assert(535, "5.7.8");
}

#[test]
fn python_smtplib_starttls_login_delivers() {
    let s = Server::start_with(Config::with_submission);
    let port = s.port().to_string();
    for (mech, subject) in [
        (None, "python default"),
        (Some("PLAIN"), "python plain"),
        (Some("LOGIN"), "python login"),
    ] {
        let mut args = vec![
            "starttls-login",
            port.as_str(),
            ALICE,
            PASSWORD,
            ALICE,
            subject,
        ];
        args.extend(mech);
        let o = python_peer(&args);
        assert_success(&format!("python smtplib ({subject})"), &o);
        assert!(
            o.stdout.contains("EHLO1 250 auth=False starttls=True"),
            "{}",
            o.stdout
        );
        assert!(o.stdout.contains("STARTTLS 220 2.0.0"), "{}", o.stdout);
        assert!(o.stdout.contains("AUTH 235 2.7.0"), "{}", o.stdout);
    }
    let mails = s.alice_mails();
    assert_eq!(mails.len(), 3);
    for subject in ["python default", "python plain", "python login"] {
        assert!(
            mails
                .iter()
                .any(|m| m.contains(&format!("Subject: {subject}"))),
            "{subject} not delivered: {mails:?}"
        );
    }
}

#[test]
fn python_wrong_password_fails() {
    let s = Server::start_with(Config::with_submission);
    let port = s.port().to_string();
    let o = python_peer(&["starttls-login", &port, ALICE, "wrong", ALICE, "nope"]);
    assert!(
        !o.ok(),
        "login with a wrong password succeeded:\n{}",
        o.stdout
    );
    assert!(o.stderr.contains("SMTPAuthenticationError"), "{}", o.stderr);
    assert!(o.stderr.contains("535"), "{}", o.stderr);
    assert!(s.alice_mails().is_empty());
}

/// Plaintext pipelined behind STARTTLS must never be executed inside TLS.
#[test]
fn starttls_discards_pipelined_plaintext() {
    let s = Server::start_with(Config::with_submission);
    let o = python_peer(&["starttls-injection", &s.port().to_string(), ALICE]);
    assert_success("starttls-injection peer", &o);
    let line = |step: &str| {
        o.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{step} ")))
            .unwrap_or_else(|| panic!("no {step} line in:\n{}", o.stdout))
            .to_string()
    };
    assert!(
        line("STARTTLS").starts_with("STARTTLS 220 220 2.0.0"),
        "{}",
        o.stdout
    );
    assert!(line("EHLO2").starts_with("EHLO2 250 "), "{}", o.stdout);
    assert!(line("RCPT").starts_with("RCPT 503 "), "{}", o.stdout);
    assert!(
        line("STARTTLS2").starts_with("STARTTLS2 503 "),
        "{}",
        o.stdout
    );
    assert!(s.alice_mails().is_empty());
}

#[test]
fn implicit_tls_port_delivers_with_smtp_ssl() {
    let s = Server::start_with(|c| {
        c.with_submission();
        c.implicit_port = Some(free_port());
    });
    let port = s.cfg.implicit_port.unwrap().to_string();
    let o = python_peer(&["implicit-tls", &port, ALICE, PASSWORD, ALICE, "over 465"]);
    assert_success("python SMTP_SSL", &o);
    assert!(o.stdout.contains("AUTH 235 2.7.0"), "{}", o.stdout);
    let mails = s.alice_mails();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("Subject: over 465"), "{}", mails[0]);
}

#[test]
fn implicit_tls_port_works_with_swaks() {
    let s = Server::start_with(|c| {
        c.with_submission();
        c.implicit_port = Some(free_port());
    });
    let port = s.cfg.implicit_port.unwrap();
    let o = swaks(
        port,
        &[
            "--tls-on-connect",
            "-a",
            "PLAIN",
            "--auth-user",
            ALICE,
            "--auth-password",
            PASSWORD,
            "--header",
            "Subject: swaks tlsc",
        ],
    );
    assert_success("swaks --tls-on-connect", &o);
    let mails = s.alice_mails();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("Subject: swaks tlsc"));
}

/// Without auth, a client on the incoming port can still use STARTTLS to
/// deliver local mail (swaks -tls, no -a).
#[test]
fn swaks_starttls_without_auth_delivers_locally() {
    let s = Server::start_with(Config::with_submission);
    let o = swaks(s.port(), &["-tls", "--header", "Subject: tls no auth"]);
    assert_success("swaks -tls", &o);
    let mails = s.alice_mails();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("Subject: tls no auth"));
}

/// A client cannot forge log lines: a CR/LF in an AUTH identity, an ESC or a bidi override in
/// an EHLO name are escaped in the log file, never written raw.
#[test]
fn control_characters_from_clients_are_escaped_in_the_log() {
    let s = Server::start_with(|c| {
        c.with_submission();
        c.auth_requires_tls = false;
        c.extra_ron = "abuse: (lockout: (enabled: false)), logs: (level: Debug),".into();
    });
    let forged = "9999-01-01 00:00:00.000 INFO  System   forged line";
    let mut c = s.connect();
    c.expect("EHLO evil\u{1b}[2J\u{202e}gnp.test", 250, "");
    let identity = format!("x\r\n{forged}");
    c.expect(
        &format!("AUTH PLAIN {}", sasl_plain(&identity, "wrong")),
        535,
        "5.7.8",
    );
    c.expect("QUIT", 221, "2.0.0");
    let logs = poll(
        Duration::from_secs(30),
        "the failed login in the log file",
        || {
            let text: String = list_files(&s.data_dir.join("logs"))
                .iter()
                .map(|p| fs::read_to_string(p).unwrap_or_default())
                .collect();
            text.contains("authentication failed").then_some(text)
        },
    );
    assert!(
        !logs.lines().any(|l| l.starts_with("9999-01-01")),
        "a forged line reached the log:\n{logs}"
    );
    assert!(logs.contains("x\\x0d\\x0a9999-01-01"), "{logs}");
    assert!(
        !logs.contains('\u{1b}') && !logs.contains('\u{202e}'),
        "{logs}"
    );
    assert!(logs.contains("evil\\x1b[2J\\u{202e}gnp.test"), "{logs}");
}
