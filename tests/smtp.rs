//! SMTP protocol behaviour of `postern serve`, over real TCP sockets.

mod common;

use std::fs;
use std::time::Duration;

use common::*;

/// Greeting, EHLO capabilities, HELO, and argument checks.
#[test]
fn greeting_and_ehlo_capabilities() {
    let s = Server::start_default();
    let mut c = Client::connect(s.port());
    let g = c.read_reply();
    assert_eq!(g.lines, vec![format!("220 {HOSTNAME} ESMTP Postern")]);

    let r = c.ehlo();
    assert!(r.lines.len() > 1, "EHLO must be multi-line: {}", r.text());
    assert!(
        r.texts()[0].starts_with(HOSTNAME),
        "first EHLO line names the host: {}",
        r.text()
    );
    for cap in [
        "PIPELINING",
        "SIZE 26214400",
        "8BITMIME",
        "ENHANCEDSTATUSCODES",
        "STARTTLS",
    ] {
        assert!(r.has_line(cap), "EHLO lacks {cap}: {}", r.text());
    }
    assert!(
        !r.has_line_starting("AUTH"),
        "AUTH must not be offered before TLS when auth_requires_tls: {}",
        r.text()
    );

    c.expect("HELO client.test", 250, "");
    c.expect("EHLO", 501, "5.5.4");
    c.expect("HELO", 501, "5.5.4");
    c.expect("QUIT", 221, "2.0.0");
    c.assert_closed();
}

/// The SIZE capability reflects the configured limit.
#[test]
fn ehlo_size_follows_config() {
    let s = Server::start_with(|c| c.max_message_size = 2_000_000);
    let mut c = s.connect();
    let r = c.ehlo();
    assert!(r.has_line("SIZE 2000000"), "{}", r.text());
}

#[test]
fn rset_noop_help_vrfy_unknown_quit() {
    let s = Server::start_default();
    let mut c = s.connect();
    c.ehlo();
    c.expect("NOOP", 250, "2.0.0");
    c.expect("RSET", 250, "2.0.0");
    assert_eq!(c.cmd("HELP").code, 214);
    assert_eq!(c.cmd(&format!("VRFY {ALICE}")).code, 252);
    c.expect("FROBNICATE now", 500, "5.5.2");
    // RSET aborts a transaction: RCPT afterwards has no MAIL in effect.
    c.expect("MAIL FROM:<bob@remote.test>", 250, "");
    c.expect("RSET", 250, "2.0.0");
    c.expect(&format!("RCPT TO:<{ALICE}>"), 503, "5.5.1");
    // Commands are case-insensitive.
    c.expect("noop", 250, "2.0.0");
    c.expect("QUIT", 221, "2.0.0");
    c.assert_closed();
}

#[test]
fn commands_out_of_sequence() {
    let s = Server::start_default();
    let mut c = s.connect();
    c.expect("MAIL FROM:<bob@remote.test>", 503, "5.5.1");
    c.ehlo();
    c.expect(&format!("RCPT TO:<{ALICE}>"), 503, "5.5.1");
    c.expect("DATA", 503, "5.5.1");
    c.expect("MAIL FROM:<bob@remote.test>", 250, "");
    c.expect("MAIL FROM:<carol@remote.test>", 503, "5.5.1");
    c.expect("DATA", 503, "5.5.1");
    // Only rejected recipients: DATA still has no accepted RCPT.
    c.expect("RCPT TO:<nobody@example.test>", 550, "5.1.1");
    c.expect("DATA", 503, "5.5.1");
    c.expect(&format!("RCPT TO:<{ALICE}>"), 250, "2.1.5");
    c.expect("DATA", 354, "");
    c.send(b"Subject: ok\r\n\r\nok\r\n.\r\n").unwrap();
    c.read_reply().assert(250, "2.0.0");
    assert_eq!(s.alice_mails().len(), 1);
}

#[test]
fn recipient_checks() {
    let s = Server::start_default();
    let mut c = s.connect();
    c.ehlo();
    c.expect("MAIL FROM:<bob@remote.test>", 250, "");
    c.expect("RCPT TO:<someone@remote.test>", 550, "5.7.1");
    c.expect("RCPT TO:<nobody@example.test>", 550, "5.1.1");
    c.expect(&format!("RCPT TO:<{ALICE}>"), 250, "2.1.5");
}

/// A full transaction: the stored file has Return-Path, Delivered-To and
/// Received, then the message exactly as sent.
#[test]
fn delivery_writes_maildir_with_trace_headers() {
    let s = Server::start_default();
    let mut c = s.connect();
    c.begin_mail_to_alice();
    let msg = "From: Bob <bob@remote.test>\r\nTo: Alice <alice@example.test>\r\nSubject: Hello\r\n\r\nHi Alice,\r\nsecond line\r\n";
    c.send(format!("{msg}.\r\n").as_bytes()).unwrap();
    c.read_reply().assert(250, "2.0.0");

    let files = s.maildir_files(DOMAIN, "alice");
    assert_eq!(files.len(), 1, "exactly one file in new/: {files:?}");
    for sub in ["tmp", "new", "cur"] {
        assert!(
            s.maildir(DOMAIN, "alice").join(sub).is_dir(),
            "{sub}/ missing"
        );
    }
    let content = lf(&fs::read_to_string(&files[0]).unwrap());
    let lines: Vec<&str> = content.lines().collect();
    assert_eq!(lines[0], "Return-Path: <bob@remote.test>", "{content}");
    assert_eq!(lines[1], "Delivered-To: alice@example.test", "{content}");
    assert!(lines[2].starts_with("Received: from "), "{content}");
    let body_at = content
        .find("From: Bob <bob@remote.test>")
        .expect("original message present");
    let received = &content[content.find("Received:").unwrap()..body_at];
    assert!(
        received.contains(&format!("by {HOSTNAME}")),
        "Received header names our host: {received}"
    );
    assert_eq!(&content[body_at..], lf(msg), "message stored as sent");

    // The session goes on: a second transaction on the same connection.
    c.expect("MAIL FROM:<>", 250, "");
    c.expect(&format!("RCPT TO:<{ALICE}>"), 250, "2.1.5");
    c.expect("DATA", 354, "");
    c.send(b"Subject: two\r\n\r\nbounce\r\n.\r\n").unwrap();
    c.read_reply().assert(250, "2.0.0");
    c.expect("QUIT", 221, "2.0.0");
    let mails = s.alice_mails();
    assert_eq!(mails.len(), 2);
    assert!(
        mails.iter().any(|m| m.starts_with("Return-Path: <>")),
        "null sender stored as <>: {mails:?}"
    );
}

#[test]
fn dot_unstuffing() {
    let s = Server::start_default();
    let mut c = s.connect();
    c.begin_mail_to_alice();
    c.send(b"Subject: dots\r\n\r\n..x\r\n...\r\n..\r\n.leading\r\nend\r\n.\r\n")
        .unwrap();
    c.read_reply().assert(250, "2.0.0");
    let mails = s.alice_mails();
    assert_eq!(mails.len(), 1);
    let m = lf(&mails[0]);
    assert!(
        m.ends_with("Subject: dots\n\n.x\n..\n.\nleading\nend\n"),
        "dot-stuffing not undone correctly:\n{m}"
    );
}

/// Several commands in one write; every reply comes back, in order.
#[test]
fn pipelining() {
    let s = Server::start_default();
    let mut c = s.connect();
    c.send(
        format!(
            "EHLO client.test\r\nMAIL FROM:<bob@remote.test>\r\nRCPT TO:<nobody@example.test>\r\nRCPT TO:<{ALICE}>\r\nDATA\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let ehlo = c.read_reply();
    assert_eq!(ehlo.code, 250);
    assert!(ehlo.has_line("PIPELINING"), "{}", ehlo.text());
    c.read_reply().assert(250, "");
    c.read_reply().assert(550, "5.1.1");
    c.read_reply().assert(250, "2.1.5");
    c.read_reply().assert(354, "");
    c.send(b"Subject: piped\r\n\r\nbody\r\n.\r\nNOOP\r\nQUIT\r\n")
        .unwrap();
    c.read_reply().assert(250, "2.0.0");
    c.read_reply().assert(250, "2.0.0");
    c.read_reply().assert(221, "2.0.0");
    c.assert_closed();
    let mails = s.alice_mails();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("Subject: piped"));
}

#[test]
fn overlong_command_line_is_rejected_and_session_continues() {
    let s = Server::start_default();
    let mut c = s.connect();
    c.ehlo();
    // 5 + 600 + 2 = 607 octets > 512.
    c.expect(&format!("NOOP {}", "a".repeat(600)), 500, "5.5.2");
    // An overlong MAIL is not executed either.
    c.expect(
        &format!("MAIL FROM:<{}@remote.test>", "b".repeat(600)),
        500,
        "5.5.2",
    );
    c.expect(&format!("RCPT TO:<{ALICE}>"), 503, "5.5.1");
    c.expect("NOOP", 250, "2.0.0");
    // A command of exactly 512 octets (incl. CRLF) is fine.
    let ok = format!("NOOP {}", "c".repeat(512 - 2 - 5));
    assert_eq!(ok.len() + 2, 512);
    c.expect(&ok, 250, "2.0.0");
}

#[test]
fn overlong_text_line_rejected_after_end_of_data() {
    let s = Server::start_default();
    let mut c = s.connect();
    c.begin_mail_to_alice();
    // 999 octets + CRLF = 1001 > 1000.
    let long = "x".repeat(999);
    c.send(format!("Subject: long\r\n\r\n{long}\r\nafter\r\n.\r\n").as_bytes())
        .unwrap();
    c.read_reply().assert(500, "5.5.2");
    assert!(s.alice_mails().is_empty(), "nothing may be delivered");

    // The transaction is over; a line of exactly 1000 octets is accepted.
    c.expect("MAIL FROM:<bob@remote.test>", 250, "");
    c.expect(&format!("RCPT TO:<{ALICE}>"), 250, "2.1.5");
    c.expect("DATA", 354, "");
    let max = "y".repeat(998);
    c.send(format!("Subject: max\r\n\r\n{max}\r\n.\r\n").as_bytes())
        .unwrap();
    c.read_reply().assert(250, "2.0.0");
    let mails = s.alice_mails();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains(&max));
}

#[test]
fn size_parameter_over_limit_is_refused() {
    let s = Server::start_default();
    let mut c = s.connect();
    c.ehlo();
    c.expect("MAIL FROM:<bob@remote.test> SIZE=26214401", 552, "5.3.4");
    c.expect("MAIL FROM:<bob@remote.test> SIZE=1000", 250, "");
    c.expect(&format!("RCPT TO:<{ALICE}>"), 250, "2.1.5");
}

#[test]
fn oversize_message_is_refused_and_not_delivered() {
    let limit = 1_048_576usize;
    let s = Server::start_with(|c| c.max_message_size = limit as u64);
    let mut c = s.connect();
    c.begin_mail_to_alice();
    let line = format!("{}\r\n", "z".repeat(98));
    let mut data = String::from("Subject: big\r\n\r\n");
    while data.len() <= limit + 10_000 {
        data.push_str(&line);
    }
    data.push_str(".\r\n");
    c.send(data.as_bytes()).unwrap();
    c.read_reply().assert(552, "5.3.4");
    assert!(s.alice_mails().is_empty(), "nothing may be delivered");
    // The rest of the data was consumed as data, never run as commands.
    c.expect("NOOP", 250, "2.0.0");
    // A message just under the limit still goes through.
    c.expect("MAIL FROM:<bob@remote.test>", 250, "");
    c.expect(&format!("RCPT TO:<{ALICE}>"), 250, "2.1.5");
    c.expect("DATA", 354, "");
    c.send(b"Subject: small\r\n\r\nsmall\r\n.\r\n").unwrap();
    c.read_reply().assert(250, "2.0.0");
    assert_eq!(s.alice_mails().len(), 1);
}

#[test]
fn recipient_limit() {
    // max_recipients_per_mail: 100; 101 distinct local accounts (duplicates
    // of one address may legitimately be collapsed), all sharing alice's hash.
    let mut s = Server::prepare(Config::default());
    let hash = s.password_hash(ALICE);
    s.cfg.accounts = (0..=100)
        .map(|i| (format!("user{i}@{DOMAIN}"), hash.clone()))
        .chain([(ALICE.to_string(), hash.clone())])
        .collect();
    s.rewrite_config();
    s.spawn();
    s.wait_ready(s.port());
    let mut c = s.connect();
    c.ehlo();
    c.expect("MAIL FROM:<bob@remote.test>", 250, "");
    for i in 0..100 {
        c.expect(&format!("RCPT TO:<user{i}@{DOMAIN}>"), 250, "2.1.5");
    }
    c.expect(&format!("RCPT TO:<user100@{DOMAIN}>"), 452, "4.5.3");
    // The transaction is still usable with the accepted recipients.
    c.expect("DATA", 354, "");
    c.send(b"Subject: many\r\n\r\nmany\r\n.\r\n").unwrap();
    c.read_reply().assert(250, "2.0.0");
    assert_eq!(s.maildir_files(DOMAIN, "user0").len(), 1);
    assert_eq!(s.maildir_files(DOMAIN, "user99").len(), 1);
    assert!(s.maildir_files(DOMAIN, "user100").is_empty());
}

#[test]
fn per_port_connection_limit() {
    let s = Server::start_with(|c| c.max_connections_per_port = 2);
    // Two sessions get a greeting (the readiness probe's slot may take a
    // moment to be released, so retry the second one).
    let mut first = s.connect();
    first.ehlo();
    let mut second = poll(DEADLINE, "a second connection to be greeted", || {
        let mut c = Client::connect(s.port());
        let r = c.read_reply();
        (r.code == 220).then_some(c)
    });
    second.ehlo();
    // The third is refused with 421 4.7.0 and closed.
    let mut third = Client::connect(s.port());
    third.read_reply().assert(421, "4.7.0");
    third.assert_closed();
    // The two sessions are unaffected.
    first.expect("NOOP", 250, "2.0.0");
    second.expect("NOOP", 250, "2.0.0");
    // Once one closes, a new connection is admitted again.
    first.expect("QUIT", 221, "2.0.0");
    first.assert_closed();
    poll(DEADLINE, "a slot to be freed", || {
        let mut c = Client::connect(s.port());
        (c.read_reply().code == 220).then_some(())
    });
}

#[test]
fn error_cap_closes_session() {
    let s = Server::start_default(); // max_errors_per_session: 10
    let mut c = s.connect();
    c.ehlo();
    let mut errors = 0;
    let last = loop {
        let r = c.cmd("BOGUS");
        if r.code == 500 {
            errors += 1;
            assert!(errors <= 10, "more than 10 errors tolerated");
            continue;
        }
        break r;
    };
    last.assert(421, "4.7.0");
    // The 421 may replace the 10th error's reply or follow it.
    assert!(
        errors == 9 || errors == 10,
        "421 came after {errors} errors, expected after the 10th"
    );
    c.assert_closed();
}

#[test]
fn command_timeout() {
    let s = Server::start_with(|c| c.command_timeout = "2s".into());
    let mut c = s.connect();
    c.ehlo();
    // Send nothing: the server must give up on us with 421 4.4.2.
    c.set_read_timeout(Duration::from_secs(15));
    c.read_reply().assert(421, "4.4.2");
    c.assert_closed();
}

/// Every bare-CR / bare-LF variant is refused with 521 and the connection
/// is closed; nothing is delivered and the smuggled commands behind it are
/// never executed.
#[test]
fn bare_cr_lf_in_data_is_refused() {
    let s = Server::start_default();
    let variants: &[(&str, &str)] = &[
        ("LF.LF", "\n.\n"),
        ("CR.CR", "\r.\r"),
        ("CRLF.LF", "\r\n.\n"),
        ("LF.CRLF", "\n.\r\n"),
        ("CR.CRLF", "\r.\r\n"),
        ("CR.LF", "\r.\n"),
        ("CRLF.CR", "\r\n.\r"),
        ("bare CR in text", "\r\ntext\rmore\r\n.\r\n"),
        ("bare LF in text", "\r\ntext\nmore\r\n.\r\n"),
    ];
    for (name, sep) in variants {
        let mut c = s.connect();
        c.begin_mail_to_alice();
        let payload = format!(
            "Subject: first\r\n\r\nhello{sep}MAIL FROM:<smuggled@evil.test>\r\nRCPT TO:<{ALICE}>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled body\r\n.\r\nQUIT\r\n"
        );
        c.send(payload.as_bytes()).unwrap();
        let r = c
            .try_read_reply()
            .unwrap_or_else(|e| panic!("variant {name}: no 521 reply: {e}"));
        assert_eq!(r.code, 521, "variant {name}: {}", r.text());
        assert_eq!(r.enhanced(), "5.5.2", "variant {name}: {}", r.text());
        // Nothing else: no reply to the smuggled MAIL/RCPT/DATA/QUIT.
        c.assert_closed();
        assert!(
            s.alice_mails().is_empty(),
            "variant {name}: something was delivered: {:?}",
            s.alice_mails()
        );
    }
    // The server is still healthy.
    let mut c = s.connect();
    c.expect("EHLO client.test", 250, "");
}

/// The outgoing listener on its own port: local recipients are delivered,
/// non-local ones are refused (no relaying yet).
#[test]
fn outgoing_listener_on_its_own_port() {
    let s = Server::start_with(|c| c.outgoing_enabled = true);
    let out_port = s.cfg.outgoing_port;
    assert_ne!(out_port, s.port());
    let mut c = Client::connect(out_port);
    let g = c.read_reply();
    assert_eq!(g.lines, vec![format!("220 {HOSTNAME} ESMTP Postern")]);
    c.ehlo();
    c.expect("MAIL FROM:<bob@remote.test>", 250, "");
    c.expect("RCPT TO:<carol@elsewhere.test>", 550, "5.7.1");
    c.expect(&format!("RCPT TO:<{ALICE}>"), 250, "2.1.5");
    c.expect("DATA", 354, "");
    c.send(b"Subject: via outgoing\r\n\r\nhi\r\n.\r\n").unwrap();
    c.read_reply().assert(250, "2.0.0");
    let mails = s.alice_mails();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("Subject: via outgoing"));
    // The incoming port still works alongside it.
    let mut i = s.connect();
    i.ehlo();
}

#[test]
fn incoming_and_outgoing_can_share_a_port() {
    let s = Server::start_with(|c| {
        c.outgoing_enabled = true;
        c.outgoing_port = c.incoming_port;
    });
    let mut c = s.connect();
    c.ehlo();
    c.expect("MAIL FROM:<bob@remote.test>", 250, "");
    c.expect("RCPT TO:<carol@elsewhere.test>", 550, "5.7.1");
    c.expect(&format!("RCPT TO:<{ALICE}>"), 250, "2.1.5");
    c.expect("DATA", 354, "");
    c.send(b"Subject: shared\r\n\r\nhi\r\n.\r\n").unwrap();
    c.read_reply().assert(250, "2.0.0");
    assert_eq!(s.alice_mails().len(), 1);
}

/// The console of `postern serve` as a user gets it (no `RUST_LOG`) tells the server's own
/// story (listening, reloads) and leaves each mail's lines to the log file; a change of
/// `logs.level` on the running server applies to the next lines.
#[test]
fn the_console_keeps_the_servers_story_and_the_log_file_each_mail() {
    let mut s = Server::prepare(common::Config::default());
    s.spawn_with_default_console();
    s.wait_ready(s.cfg.incoming_port);
    let send = |s: &Server, from: &str| {
        let mut c = s.connect();
        c.ehlo();
        c.expect(&format!("MAIL FROM:<{from}>"), 250, "");
        c.expect(&format!("RCPT TO:<{ALICE}>"), 250, "");
        c.expect("DATA", 354, "");
        c.expect("Subject: console\r\n\r\nhello\r\n.", 250, "");
        c.expect("QUIT", 221, "2.0.0");
        c.assert_closed();
    };
    let today_log = |s: &Server, want: &str| {
        let logs = s.data_dir.join("logs");
        let want = want.to_string();
        poll(DEADLINE, &format!("{want} in the log file"), || {
            list_files(&logs).into_iter().find_map(|p| {
                let text = fs::read_to_string(&p).ok()?;
                text.contains(&want).then_some(text)
            })
        })
    };
    send(&s, "first@remote.test");
    today_log(&s, "from <first@remote.test>");
    let console = s.stderr();
    assert!(
        console.contains("listening on"),
        "the console says where the server listens:\n{console}"
    );
    assert!(
        !console.contains("first@remote.test"),
        "each mail's lines stay off the console:\n{console}"
    );
    // Commands are not in the file at Info; at Debug, set on the running server, they are.
    assert!(!today_log(&s, "first@remote.test").contains("MAIL FROM:<first@remote.test>"));
    s.cli(&["config", "set", "logs.level=Debug"]).assert_ok();
    poll(DEADLINE, "the reload on the console", || {
        s.stderr().contains("logs.level").then_some(())
    });
    send(&s, "second@remote.test");
    today_log(&s, "MAIL FROM:<second@remote.test>");
    assert!(!s.stderr().contains("second@remote.test"));
}

/// Daily log files live in DATA/logs, named with the date, and record sessions: at the
/// default level (Info) each session's connection, accepted mail and end, every line with
/// the session id, but not every command and reply; at Debug the commands too.
#[test]
fn log_file_records_sessions() {
    for debug in [false, true] {
        let mut s = Server::prepare(common::Config::default());
        if debug {
            s.cli(&["config", "set", "logs.level=Debug"]).assert_ok();
        }
        s.spawn();
        s.wait_ready(s.cfg.incoming_port);
        let mut c = s.connect();
        c.ehlo();
        c.expect("MAIL FROM:<logcheck@remote.test>", 250, "");
        c.expect(&format!("RCPT TO:<{ALICE}>"), 250, "");
        c.expect("DATA", 354, "");
        c.expect("Subject: log\r\n\r\nhello\r\n.", 250, "");
        c.expect("QUIT", 221, "2.0.0");
        c.assert_closed();
        let logs = s.data_dir.join("logs");
        let dates = [utc_date(-1), utc_date(0), utc_date(1)];
        let log = poll(DEADLINE, "a dated log file with the session's end", || {
            list_files(&logs).into_iter().find_map(|p| {
                let name = p.file_name()?.to_string_lossy().into_owned();
                if !dates.iter().any(|d| name.contains(d.as_str())) {
                    return None;
                }
                let text = fs::read_to_string(&p).ok()?;
                // Log writes may lag the session a little: wait for its last line.
                let after = text.find("from <logcheck@remote.test>")?;
                text[after..].contains("disconnect").then_some(text)
            })
        });
        let id_of = |l: &str| {
            let a = l.find('[')?;
            let b = a + l[a..].find(']')?;
            Some(l[a..=b].to_string())
        };
        // The accepted mail's line names the sender and carries the id of the connect line.
        let accepted = log
            .lines()
            .find(|l| l.contains("logcheck@remote.test") && !l.contains("MAIL FROM"))
            .unwrap_or_else(|| panic!("the accepted mail is not logged:\n{log}"));
        let id = id_of(accepted).unwrap_or_else(|| panic!("no session id on {accepted:?}"));
        assert!(
            log.lines().any(|l| l.contains("127.0.0.1")
                && l.contains("connect")
                && id_of(l) == Some(id.clone())),
            "no connect line with session id {id}:\n{log}"
        );
        assert_eq!(
            log.contains("MAIL FROM:<logcheck@remote.test>"),
            debug,
            "commands in the file at level {}:\n{log}",
            if debug { "Debug" } else { "Info" }
        );
    }
}

/// Postfix's smtp-source, a real third-party client, delivers several
/// messages over parallel sessions.
#[test]
fn smtp_source_delivers_parallel_sessions() {
    let s = Server::start_default();
    let exe = if std::path::Path::new("/usr/sbin/smtp-source").exists() {
        "/usr/sbin/smtp-source"
    } else {
        "smtp-source"
    };
    let mut cmd = std::process::Command::new(exe);
    cmd.args([
        "-s",
        "3",
        "-m",
        "12",
        "-l",
        "4000",
        "-M",
        "client.test",
        "-f",
        "bob@remote.test",
        "-t",
        ALICE,
        &format!("127.0.0.1:{}", s.port()),
    ]);
    let o = run_with_timeout(cmd, None, Duration::from_secs(60));
    assert!(o.ok(), "smtp-source failed: {}{}", o.stdout, o.stderr);
    let mails = s.alice_mails();
    assert_eq!(mails.len(), 12, "one file per message");
    for m in &mails {
        assert!(m.starts_with("Return-Path: <bob@remote.test>"), "{m}");
    }
}

#[test]
fn a_mail_loop_is_refused_554() {
    let s = Server::start_default();
    let mut c = s.connect();
    c.begin_mail_to_alice();
    let hops: String = (0..50)
        .map(|i| {
            format!(
                "Received: from hop{i} by hop{} ; Sun, 22 Nov 2026 10:00:00 +0000\r\n",
                i + 1
            )
        })
        .collect();
    c.expect(
        &format!("{hops}Subject: loop\r\n\r\nround and round\r\n."),
        554,
        "5.4.6",
    );
    assert!(s.alice_mails().is_empty());
    // 49 earlier hops are fine.
    c.begin_mail_to_alice();
    let hops: String = (0..49)
        .map(|i| format!("Received: from hop{i}\r\n"))
        .collect();
    c.expect(
        &format!("{hops}Subject: long way\r\n\r\nok\r\n."),
        250,
        "2.0.0",
    );
}

/// Nothing Postern writes can be read by other users: the config (it can hold the relay
/// password) and its backup, the data directory, mailboxes, the spool, logs and the control
/// socket.
#[test]
fn every_file_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let mut s = Server::prepare(Config::default());
    // A config left world-readable by an earlier version is made private by the next write.
    fs::set_permissions(&s.config_path, fs::Permissions::from_mode(0o644)).unwrap();
    s.cli(&["config", "set", "server.hostname=mail.test"])
        .assert_ok();
    s.spawn();
    s.wait_ready(s.cfg.incoming_port);
    let mut c = s.connect();
    c.ehlo();
    c.expect("MAIL FROM:<bob@remote.test>", 250, "");
    c.expect(&format!("RCPT TO:<{ALICE}>"), 250, "2.1.5");
    c.expect("DATA", 354, "");
    c.expect("Subject: private\r\n\r\nfor alice only\r\n.", 250, "2.0.0");
    c.cmd("QUIT");
    let mut paths = vec![
        s.config_path.clone(),
        s.config_path.with_extension("ron.bak"),
        s.data_dir.clone(),
        s.data_dir.join("control.sock"),
        s.maildir(DOMAIN, "alice"),
    ];
    paths.extend(s.maildir_files(DOMAIN, "alice"));
    paths.extend(list_files(&s.data_dir.join("spool")));
    paths.extend(poll(Duration::from_secs(30), "a log file", || {
        let logs = list_files(&s.data_dir.join("logs"));
        (!logs.is_empty()).then_some(logs)
    }));
    for p in paths {
        let mode = fs::metadata(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{} is {:o}", p.display(), mode & 0o777);
    }
}

/// Below the free-space reserve the server turns mail away at MAIL with 452 (here the reserve
/// is set beyond any real disk, so the real file system check answers), and takes it again
/// once there is room.
#[test]
fn a_disk_without_room_answers_452_at_mail() {
    let mut s = Server::prepare(Config::default());
    s.cli(&["config", "set", "smtp.min_free_space=1000000000000000000"])
        .assert_ok();
    s.spawn();
    s.wait_ready(s.cfg.incoming_port);
    let mut c = s.connect();
    c.ehlo();
    c.expect("MAIL FROM:<bob@remote.test>", 452, "4.3.1");
    c.cmd("QUIT");
    s.cli(&["config", "set", "smtp.min_free_space=1024"])
        .assert_ok();
    poll(
        Duration::from_secs(30),
        "MAIL accepted after the reload",
        || {
            let mut c = s.connect();
            c.ehlo();
            let ok = c.cmd("MAIL FROM:<bob@remote.test>").code == 250;
            c.cmd("QUIT");
            ok.then_some(())
        },
    );
}
