//! The outgoing queue end to end, with real peers: Postfix's smtp-sink as the next hop (it
//! injects 4xx, 5xx and disconnects), a second Postern as a relay host with AUTH and TLS, and
//! `postern queue ...` against a running and a stopped server. Failure notices are also read
//! by a third-party parser, Python's `email` package (tests/peers/dsn_check.py).

mod common;
mod dns_common;

use common::{ALICE, DOMAIN, PASSWORD, Server, free_port, peer_script, poll, sasl_plain};
use dns_common::{DnsServer, Sink};
use serde_json::Value;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

/// Postfix's smtp-sink on a loopback port (tests/dns_common), dumping every mail it takes.
fn sink(port: u16, flags: &[&str]) -> Sink {
    Sink::start(Ipv4Addr::LOCALHOST, port, flags)
}

/// A server whose outgoing SMTP shares the incoming port, relaying for logged-in users
/// (no TLS needed for AUTH in these tests), routing far.test to `route_port`.
fn relay_server(route_port: u16, extra: &[&str]) -> Server {
    relay_server_routed(Some(route_port), extra)
}

/// [`relay_server`], routing far.test to `route_port`, or (`None`) back to its own port.
fn relay_server_routed(route_port: Option<u16>, extra: &[&str]) -> Server {
    let mut s = Server::prepare(common::Config::default());
    let port = s.cfg.incoming_port;
    let route_port = route_port.unwrap_or(port);
    let route = format!(
        "outgoing_mails.domain_maps=[(domain: \"far.test\", host: \"127.0.0.1\", port: {route_port})]"
    );
    let mut args = vec![
        "config",
        "set",
        "smtp.outgoing.enabled=true",
        "smtp.tls.auth_requires_tls=false",
        "outgoing_mails.resend_delay=\"1s\"",
        "outgoing_mails.outbound_tls=None",
        &route,
    ];
    let same = format!("smtp.outgoing.port={port}");
    args.push(&same);
    args.extend_from_slice(extra);
    s.cli(&args).assert_ok();
    s.spawn();
    s.wait_ready(port);
    s
}

/// Submits one message to far.test (and optionally more recipients); returns the 250 text.
fn submit(s: &Server, from: &str, rcpts: &[&str], body: &str) -> String {
    let (code, text) = try_submit(s, from, rcpts, body);
    assert_eq!(code, 250, "{text}");
    text
}

/// [`submit`], returning the reply to the end of data whatever it is.
fn try_submit(s: &Server, from: &str, rcpts: &[&str], body: &str) -> (u16, String) {
    let mut c = s.connect();
    c.ehlo();
    c.expect(
        &format!("AUTH PLAIN {}", sasl_plain(ALICE, PASSWORD)),
        235,
        "2.7.0",
    );
    c.expect(&format!("MAIL FROM:<{from}>"), 250, "");
    for r in rcpts {
        c.expect(&format!("RCPT TO:<{r}>"), 250, "2.1.5");
    }
    c.expect("DATA", 354, "");
    let r = c.cmd(&format!("Subject: queue test\r\n\r\n{body}\r\n."));
    c.cmd("QUIT");
    (r.code, r.text())
}

fn queue_list(s: &Server) -> String {
    let out = s.cli(&["queue", "list"]);
    out.assert_ok();
    out.stdout.clone()
}

fn queue_ids(s: &Server) -> Vec<String> {
    ids_in(&queue_list(s))
}

/// The ids a `postern queue list` output lists, in its order.
fn ids_in(listed: &str) -> Vec<String> {
    listed
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.len() == 16 && w.chars().all(|c| c.is_ascii_hexdigit()))
        .map(str::to_string)
        .collect()
}

/// `postern queue list` reads a queue longer than its page (1,000) a page at a time and
/// prints every mail once, in id order, under one header: from the spool with no server
/// running, then from the running server.
#[test]
fn a_queue_longer_than_a_page_is_listed_whole_offline_and_live() {
    let mut s = Server::prepare(common::Config::default());
    let ids = common::spool::fill_spool(&s.data_dir, 1, 2500);
    let want: Vec<String> = ids.iter().map(|i| format!("{i:016X}")).collect();
    for live in [false, true] {
        if live {
            s.spawn();
            s.wait_ready(s.cfg.incoming_port);
        }
        let listed = queue_list(&s);
        assert_eq!(ids_in(&listed), want, "live: {live}");
        assert!(listed.starts_with("ID               AGE"), "live: {live}");
        assert_eq!(listed.matches("SENDER / RECIPIENTS").count(), 1);
        assert_eq!(listed.matches("Subject: mail ").count(), 2500);
        assert!(listed.contains("Subject: mail 1001\n"));
        assert!(listed.contains("<r2500@far.test>\n"));
        assert!(
            listed.ends_with("\n-- 2500 messages in the queue\n"),
            "live: {live}"
        );
    }
}

fn alice_mail_containing(s: &Server, needle: &str) -> String {
    poll(
        LONG,
        &format!("a mail containing {needle:?} in alice's mailbox"),
        || s.alice_mails().into_iter().find(|m| m.contains(needle)),
    )
}

#[test]
fn relayed_mail_reaches_the_next_hop_and_leaves_the_queue() {
    let sink = sink(free_port(), &[]);
    let s = relay_server(sink.port(), &[]);
    let reply = submit(
        &s,
        ALICE,
        &["bob@far.test", "carol@far.test"],
        "first line\r\n..dotted line",
    );
    assert!(reply.contains("queued as"), "{reply}");
    let mail = poll(LONG, "mail at the sink", || sink.mails().into_iter().next());
    assert!(mail.contains("Subject: queue test"), "{mail}");
    assert!(
        mail.contains("\n.dotted line"),
        "dot-stuffing round trip: {mail}"
    );
    assert!(
        mail.contains("by mail.test (Postern) with ESMTPA"),
        "Received trace kept: {mail}"
    );
    poll(LONG, "queue empty", || {
        queue_ids(&s).is_empty().then_some(())
    });
}

#[test]
fn temporary_failures_are_retried_then_bounced_with_a_dsn() {
    // The sink answers 4xx to every RCPT.
    let sink = sink(free_port(), &["-r", "RCPT"]);
    let s = relay_server(sink.port(), &["outgoing_mails.resend_attempts=3"]);
    submit(&s, ALICE, &["bob@far.test"], "will be deferred");
    let dsn = alice_mail_containing(&s, "multipart/report");
    assert!(
        dsn.contains("Return-Path: <>"),
        "a notice comes from the null sender: {dsn}"
    );
    assert!(dsn.contains("report-type=delivery-status"), "{dsn}");
    assert!(
        dsn.contains("Final-Recipient: rfc822; bob@far.test"),
        "{dsn}"
    );
    assert!(dsn.contains("Action: failed"), "{dsn}");
    assert!(dsn.contains("gave up after 3 attempts"), "{dsn}");
    assert!(
        dsn.contains("Subject: queue test"),
        "the original headers are returned: {dsn}"
    );
    poll(LONG, "queue empty", || {
        queue_ids(&s).is_empty().then_some(())
    });
    assert!(sink.mails().is_empty());
    let log = s.stderr();
    assert!(
        log.contains("attempt 3: <bob@far.test> deferred"),
        "three attempts were made:\n{log}"
    );
    assert!(!log.contains("attempt 4:"), "and no more:\n{log}");
}

#[test]
fn permanent_failures_bounce_at_once_but_never_to_the_null_sender() {
    let sink = sink(free_port(), &["-f", "RCPT"]);
    let s = relay_server(sink.port(), &["outgoing_mails.resend_attempts=5"]);
    submit(&s, ALICE, &["bob@far.test"], "hard fail");
    let dsn = alice_mail_containing(&s, "multipart/report");
    assert!(dsn.contains("Status: 5."), "{dsn}");
    assert!(
        !dsn.contains("gave up after"),
        "a 5xx needs no retries: {dsn}"
    );
    let before = s.alice_mails().len();

    submit(&s, "", &["bob@far.test"], "bounce of a bounce");
    poll(LONG, "the null-sender mail is dropped", || {
        s.stderr()
            .contains("no failure notice: the sender is the null sender")
            .then_some(())
    });
    poll(LONG, "queue empty", || {
        queue_ids(&s).is_empty().then_some(())
    });
    assert_eq!(
        s.alice_mails().len(),
        before,
        "no notice for the null sender"
    );
}

/// "Sent" counts a mail that left, never the failure notice put into a local mailbox.
#[test]
fn sent_counts_mail_that_left_and_never_a_local_failure_notice() {
    let refusing = sink(free_port(), &["-f", "RCPT"]);
    let s = relay_server(refusing.port(), &[]);
    submit(&s, ALICE, &["bob@far.test"], "hard fail");
    alice_mail_containing(&s, "multipart/report");
    poll(LONG, "the mail and its notice to leave the queue", || {
        queue_ids(&s).is_empty().then_some(())
    });
    assert_eq!(s.counters(), "accepted 1, sent 0, given up 1, refused 0");
    let taking = sink(free_port(), &[]);
    s.cli(&[
        "config",
        "set",
        &format!(
            "outgoing_mails.domain_maps=[(domain: \"far.test\", host: \"127.0.0.1\", port: {})]",
            taking.port()
        ),
    ])
    .assert_ok();
    submit(&s, ALICE, &["bob@far.test"], "goes out");
    poll(LONG, "mail at the sink", || sink_has(&taking));
    poll(LONG, "the sent counter", || {
        (s.counters() == "accepted 2, sent 1, given up 1, refused 0").then_some(())
    });
}

fn sink_has(s: &Sink) -> Option<()> {
    (!s.mails().is_empty()).then_some(())
}

#[test]
fn queued_mail_survives_a_kill_and_is_delivered_after_restart() {
    let port = free_port(); // nothing listens yet: the mail stays queued
    let mut s = relay_server(port, &["outgoing_mails.resend_delay=\"1h\""]);
    submit(&s, ALICE, &["bob@far.test"], "survivor one");
    submit(&s, ALICE, &["carol@far.test"], "survivor two");
    // A session killed in the middle of DATA must leave nothing behind.
    let mut half = s.connect();
    half.ehlo();
    half.expect(
        &format!("AUTH PLAIN {}", sasl_plain(ALICE, PASSWORD)),
        235,
        "",
    );
    half.expect("MAIL FROM:<alice@example.test>", 250, "");
    half.expect("RCPT TO:<dave@far.test>", 250, "");
    half.expect("DATA", 354, "");
    half.send(b"Subject: half\r\n\r\nnever finished\r\n")
        .unwrap();
    assert_eq!(queue_ids(&s).len(), 2);
    s.signal("KILL");
    s.wait_exit(Duration::from_secs(10));

    // Offline queue commands work on the spool directly.
    let listed = queue_list(&s);
    assert!(
        listed.contains("<bob@far.test>") && listed.contains("<carol@far.test>"),
        "{listed}"
    );
    assert!(
        !listed.contains("dave"),
        "the unfinished mail was never accepted: {listed}"
    );

    let sink = sink(port, &[]);
    s.spawn();
    s.wait_ready(s.cfg.incoming_port);
    s.cli(&["queue", "retry", "--all"]).assert_ok();
    poll(LONG, "both mails at the sink", || {
        (sink.mails().len() == 2).then_some(())
    });
    let all = sink.mails().join("\n");
    assert!(all.contains("survivor one") && all.contains("survivor two"));
    poll(LONG, "queue empty", || {
        queue_ids(&s).is_empty().then_some(())
    });
}

/// The ids a restarted server gives go on above its reservation in `DATA/spool/ids`, whatever
/// the clock says (it may have gone back), and mail queued before the restart (replayed while
/// the server already listens) is still there and is delivered.
#[test]
fn ids_after_a_restart_go_on_above_the_reservation_and_the_old_mail_is_kept() {
    let port = free_port();
    let mut s = relay_server(port, &["outgoing_mails.resend_delay=\"1h\""]);
    submit(&s, ALICE, &["bob@far.test"], "before the restart");
    let before = poll(LONG, "one queued", || {
        let ids = queue_ids(&s);
        (ids.len() == 1).then_some(ids[0].clone())
    });
    let ids_file = s.data_dir.join("spool").join("ids");
    let reserved: u64 = std::fs::read_to_string(&ids_file)
        .expect("the server keeps an id reservation")
        .trim()
        .parse()
        .unwrap();
    assert!(reserved >= u64::from_str_radix(&before, 16).unwrap());
    s.signal("KILL");
    s.wait_exit(Duration::from_secs(10));
    // As if the last run's clock had been ten days ahead of this one's.
    let ahead = reserved + ((10 * 86_400) << 20);
    std::fs::write(&ids_file, format!("{ahead}\n")).unwrap();

    s.spawn();
    s.wait_ready(s.cfg.incoming_port);
    submit(&s, ALICE, &["carol@far.test"], "after the restart");
    let ids = poll(LONG, "two queued", || {
        let ids = queue_ids(&s);
        (ids.len() == 2).then_some(ids)
    });
    assert!(ids.contains(&before), "{ids:?}");
    let after = ids.iter().find(|i| **i != before).unwrap();
    assert!(
        u64::from_str_radix(after, 16).unwrap() > ahead,
        "{after} is not above the reservation {ahead:X}"
    );
    let sink = sink(port, &[]);
    s.cli(&["queue", "retry", "--all"]).assert_ok();
    poll(LONG, "both mails at the sink", || {
        (sink.mails().len() == 2).then_some(())
    });
}

#[test]
fn queue_commands_against_a_running_server() {
    let port = free_port();
    let s = relay_server(port, &["outgoing_mails.resend_delay=\"1h\""]);
    submit(&s, ALICE, &["bob@far.test"], "first");
    submit(&s, ALICE, &["carol@far.test"], "second");
    let ids = poll(LONG, "two queued", || {
        let ids = queue_ids(&s);
        (ids.len() == 2 && !queue_list(&s).contains(" now ")).then_some(ids)
    });
    let listed = queue_list(&s);
    assert!(
        listed.contains("<alice@example.test>") && listed.contains("last error"),
        "{listed}"
    );
    assert_eq!(
        listed.matches("Subject: queue test\n").count(),
        2,
        "each message's Subject: {listed}"
    );

    let show = s.cli(&["queue", "show", &ids[0]]);
    show.assert_ok();
    assert!(
        show.stdout.contains("Subject: queue test") && show.stdout.contains("first"),
        "{}",
        show.stdout
    );
    assert!(show.stdout.contains("History:"), "{}", show.stdout);

    s.cli(&["queue", "hold", &ids[0]]).assert_ok();
    assert!(queue_list(&s).contains("on hold"));
    s.cli(&["queue", "release", &ids[0]]).assert_ok();
    assert!(!queue_list(&s).contains("on hold"));

    s.cli(&["queue", "delete", &ids[1]]).assert_ok();
    assert_eq!(queue_ids(&s), vec![ids[0].clone()]);
    s.cli(&["queue", "delete", "0000000000000001"])
        .assert_failed();

    // Retry now, with the next hop up: delivered at once, not in an hour.
    let sink = sink(port, &[]);
    s.cli(&["queue", "hold", &ids[0]]).assert_ok();
    s.cli(&["queue", "retry", &ids[0]]).assert_ok();
    assert!(
        queue_list(&s).contains("on hold"),
        "retry does not release a held mail"
    );
    s.cli(&["queue", "release", &ids[0]]).assert_ok();
    poll(LONG, "delivered after release", || {
        sink.mails().into_iter().find(|m| m.contains("first"))
    });
    poll(LONG, "queue empty", || {
        queue_ids(&s).is_empty().then_some(())
    });
}

#[test]
fn delete_with_notify_returns_the_mail_to_its_sender_live_and_offline() {
    let port = free_port(); // nothing listens: the mails stay queued
    let mut s = relay_server(port, &["outgoing_mails.resend_delay=\"1h\""]);
    submit(&s, ALICE, &["bob@far.test"], "first");
    submit(&s, ALICE, &["carol@far.test"], "second");
    let ids = poll(LONG, "two queued", || {
        let ids = queue_ids(&s);
        (ids.len() == 2 && !queue_list(&s).contains(" now ")).then_some(ids)
    });

    // Live: the notice is queued (and delivered to alice's mailbox), then the mail leaves.
    s.cli(&["queue", "delete", "--notify", &ids[0]]).assert_ok();
    let notice = alice_mail_containing(&s, "bob@far.test");
    assert!(
        notice.contains("deleted from the queue by the administrator"),
        "{notice}"
    );
    poll(LONG, "the first mail gone", || {
        (queue_ids(&s) == [ids[1].clone()]).then_some(())
    });

    // Offline: the notice is owed in the spool and sent after the next start.
    s.signal("TERM");
    s.wait_exit(Duration::from_secs(20));
    s.cli(&["queue", "delete", "--notify", &ids[1]]).assert_ok();
    let listed = queue_list(&s);
    assert!(listed.contains("(failed)"), "{listed}");
    s.spawn();
    s.wait_ready(s.cfg.incoming_port);
    let notice = alice_mail_containing(&s, "carol@far.test");
    assert!(
        notice.contains("deleted from the queue by the administrator"),
        "{notice}"
    );
    poll(LONG, "queue empty", || {
        queue_ids(&s).is_empty().then_some(())
    });
}

#[test]
fn relay_mode_goes_through_a_second_postern_with_auth_and_starttls() {
    // The relay host: a second Postern with its own domain and account, taking logins on its
    // outgoing SMTP (which shares the incoming port).
    let mut hop_cfg = common::Config {
        domains: vec![DOMAIN.into(), "far.test".into()],
        ..common::Config::default()
    };
    hop_cfg.with_submission();
    let mut hop = Server::prepare(hop_cfg);
    hop.cli(&["domain", "list"]).assert_ok();
    hop.cli_stdin(
        &["account", "add", "bob@far.test", "--password-stdin"],
        "bobpw\n",
    )
    .assert_ok();
    hop.spawn();
    hop.wait_ready(hop.cfg.incoming_port);

    let ca = hop.data_dir.join("tls/cert.pem");
    let relay_cfg = [
        "outgoing_mails.mode=Relay".to_string(),
        "outgoing_mails.relay.host=\"127.0.0.1\"".to_string(),
        format!("outgoing_mails.relay.ca_file=\"{}\"", ca.display()),
        format!("outgoing_mails.relay.port={}", hop.cfg.incoming_port),
        format!("outgoing_mails.relay.username=\"{ALICE}\""),
        format!("outgoing_mails.relay.password=\"{PASSWORD}\""),
        "outgoing_mails.relay.tls=StartTls".to_string(),
    ];
    let refs: Vec<&str> = relay_cfg.iter().map(String::as_str).collect();
    // The domain map points nowhere: in Relay mode it must be ignored.
    let s = relay_server(free_port(), &refs);
    submit(&s, ALICE, &["bob@far.test"], "via the relay host");
    let got = poll(LONG, "mail in bob's mailbox on the relay host", || {
        hop.maildir_files("far.test", "bob").into_iter().next()
    });
    let text = std::fs::read_to_string(got).unwrap();
    assert!(text.contains("via the relay host"), "{text}");
    assert!(
        text.contains("with ESMTPSA"),
        "AUTH over TLS to the relay host: {text}"
    );
}

#[test]
fn a_failed_write_answers_452_and_keeps_nothing() {
    // Files may not grow past 64 KiB: a bigger mail cannot be written anywhere, as on a full disk.
    let mut s = Server::prepare(common::Config::default());
    let port = s.cfg.incoming_port;
    let route = format!(
        "outgoing_mails.domain_maps=[(domain: \"far.test\", host: \"127.0.0.1\", port: {})]",
        free_port()
    );
    s.cli(&[
        "config",
        "set",
        "smtp.outgoing.enabled=true",
        &format!("smtp.outgoing.port={port}"),
        "smtp.tls.auth_requires_tls=false",
        "outgoing_mails.resend_delay=\"1h\"",
        &route,
    ])
    .assert_ok();
    s.spawn_with_file_limit(Some(64));
    s.wait_ready(port);
    let big = "x".repeat(998) + "\r\n";
    let body = big.repeat(100); // about 100 KB

    for rcpt in [ALICE, "bob@far.test"] {
        let mut c = s.connect();
        c.ehlo();
        c.expect(
            &format!("AUTH PLAIN {}", sasl_plain(ALICE, PASSWORD)),
            235,
            "",
        );
        c.expect(&format!("MAIL FROM:<{ALICE}>"), 250, "");
        c.expect(&format!("RCPT TO:<{rcpt}>"), 250, "");
        c.expect("DATA", 354, "");
        let r = c.cmd(&format!("Subject: too big for the disk\r\n\r\n{body}."));
        assert_eq!(r.code, 452, "to {rcpt}: {}", r.text());
        assert_eq!(r.enhanced(), "4.3.1");
        // The server is still serving: a small mail goes through.
        c.expect(&format!("MAIL FROM:<{ALICE}>"), 250, "");
        c.expect(&format!("RCPT TO:<{rcpt}>"), 250, "");
        c.expect("DATA", 354, "");
        c.expect("Subject: small\r\n\r\nfits\r\n.", 250, "2.0.0");
    }
    let mails = s.alice_mails();
    assert_eq!(mails.len(), 1, "only the small mail reached the mailbox");
    assert!(mails[0].contains("fits"));
    assert!(
        common::list_files(&s.maildir(DOMAIN, "alice").join("tmp")).is_empty(),
        "no partial file left"
    );
    let listed = queue_list(&s);
    assert_eq!(
        queue_ids(&s).len(),
        1,
        "only the small mail is queued: {listed}"
    );
}

/// Mail for a local and a remote recipient whose local copy cannot be written: the client gets
/// 452 and nothing leaves, not even the remote copy (it is taken back before it is handed over
/// for delivery, so the client's retry cannot deliver it twice).
#[test]
fn a_failed_local_copy_sends_no_remote_copy() {
    let sink = sink(free_port(), &[]);
    let s = relay_server(sink.port(), &[]);
    // Alice's mailbox directory is a file: her copy cannot be written. (The server made her
    // Maildir and its folders at start: replaced by the file.)
    let mailbox = s.maildir(DOMAIN, "alice");
    poll(LONG, "alice's folders made by the server", || {
        mailbox
            .join(".Archive")
            .join("maildirfolder")
            .exists()
            .then_some(())
    });
    std::fs::remove_dir_all(&mailbox).unwrap();
    std::fs::create_dir_all(mailbox.parent().unwrap()).unwrap();
    std::fs::write(&mailbox, b"in the way").unwrap();
    let (code, text) = try_submit(&s, ALICE, &[ALICE, "bob@far.test"], "first");
    assert_eq!(code, 452, "{text}");
    // The client retries once the mailbox is writable again; exactly one copy arrives.
    std::fs::remove_file(&mailbox).unwrap();
    submit(&s, ALICE, &[ALICE, "bob@far.test"], "second");
    // (Polled until the sink's file holds the whole mail: it writes as it reads.)
    poll(LONG, "mail at the sink", || {
        sink.mails().into_iter().find(|m| m.contains("second"))
    });
    poll(LONG, "queue empty", || {
        queue_ids(&s).is_empty().then_some(())
    });
    let mails = sink.mails();
    assert_eq!(
        mails.len(),
        1,
        "the refused attempt sent nothing: {mails:#?}"
    );
}

/// A route that points back at this server's own listener is a loop: the recipient fails at
/// once with 5.4.6 (as Postfix says it), instead of the mail going round until its hop count
/// runs out.
#[test]
fn mail_routed_back_to_myself_fails_at_once() {
    let s = relay_server_routed(None, &[]);
    submit(&s, ALICE, &["bob@far.test"], "round and round");
    let notice = alice_mail_containing(&s, "loops back to myself");
    assert!(notice.contains("5.4.6"), "{notice}");
    poll(LONG, "queue empty", || {
        queue_ids(&s).is_empty().then_some(())
    });
    let looped = s
        .alice_mails()
        .iter()
        .filter(|m| m.contains("Subject: queue test") && !m.contains("loops back"))
        .count();
    assert_eq!(
        looped, 0,
        "the mail never came back in through our own port"
    );
}

#[test]
fn a_delay_warning_is_sent_once_while_retrying() {
    let sink = sink(free_port(), &["-r", "RCPT"]);
    let s = relay_server(
        sink.port(),
        &[
            "outgoing_mails.delay_warning=Some(\"1s\")",
            "outgoing_mails.resend_delay=\"1s\"",
            "outgoing_mails.resend_attempts=50",
        ],
    );
    submit(&s, ALICE, &["bob@far.test"], "slow one");
    let warning = alice_mail_containing(&s, "Action: delayed");
    assert!(
        warning.contains("Final-Recipient: rfc822; bob@far.test"),
        "{warning}"
    );
    assert!(warning.contains("Status: 4."), "{warning}");
    assert_eq!(queue_ids(&s).len(), 1, "the mail itself stays queued");
    // Once only, however many attempts follow.
    poll(LONG, "three more attempts", || {
        s.stderr().contains("attempt 4:").then_some(())
    });
    let warnings = s
        .alice_mails()
        .into_iter()
        .filter(|m| m.contains("Action: delayed"))
        .count();
    assert_eq!(warnings, 1);
}

/// The queue's line for `id` in `postern queue list`: (attempts, the whole entry).
fn queue_entry(s: &Server, id: &str) -> Option<(u32, String)> {
    let list = queue_list(s);
    let at = list.find(id)?;
    let entry: String = list[at..]
        .lines()
        .enumerate()
        .take_while(|(i, l)| *i == 0 || l.starts_with(' '))
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    let attempts = entry.split_whitespace().nth(3)?.parse().ok()?;
    Some((attempts, entry))
}

/// The queue id in a `250 2.0.0 Ok: queued as ID` reply.
fn queued_id(reply: &str) -> String {
    reply
        .rsplit("queued as ")
        .next()
        .expect("a queue id")
        .trim()
        .to_string()
}

#[test]
fn a_refused_recipient_is_returned_while_another_still_waits() {
    // One recipient refused with 550, the other deferred: the sender hears of the refusal
    // after this pass, not when the deferred one is finally settled days later.
    let rejecting = sink(free_port(), &["-f", "RCPT"]);
    let closed = free_port();
    let maps = format!(
        "outgoing_mails.domain_maps=[(domain: \"far.test\", host: \"127.0.0.1\", port: {closed}), \
         (domain: \"rej.test\", host: \"127.0.0.1\", port: {})]",
        rejecting.port()
    );
    let s = relay_server(closed, &[&maps, "outgoing_mails.resend_delay=\"1h\""]);
    let id = queued_id(&submit(
        &s,
        ALICE,
        &["bob@rej.test", "carol@far.test"],
        "two destinations",
    ));
    let notice = alice_mail_containing(&s, "Final-Recipient: rfc822; bob@rej.test");
    assert!(
        !notice.contains("Final-Recipient: rfc822; carol@far.test"),
        "{notice}"
    );
    let (_, entry) = queue_entry(&s, &id).expect("the message waits for carol");
    assert!(entry.contains("<bob@rej.test> (failed)"), "{entry}");
    assert!(entry.contains("<carol@far.test>\n"), "{entry}");
}

#[test]
fn a_failure_notice_owed_at_a_crash_is_sent_at_the_next_start() {
    // The state a crash leaves between a give-up and its notice: a recipient failed, its
    // notice not yet queued. The next start sends the notice, then lets the message go.
    use postern::engine::queue::spool::{Content, Record, Spool};
    use postern::engine::queue::{Meta, Rcpt, RcptState};
    let mut s = Server::prepare(common::Config::default());
    let meta = Meta {
        id: 0x42,
        created: 1,
        from: ALICE.into(),
        rcpts: vec![Rcpt {
            addr: "bob@far.test".into(),
            state: RcptState::Failed,
            last_error: "550 5.1.1 no such user".into(),
            notified: false,
        }],
        attempts: 1,
        next_try: 1,
        held: false,
        warned: false,
        size: 28,
        client: "127.0.0.1".into(),
        subject: "".into(),
    };
    let spool_dir = s.data_dir.join("spool");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let (spool, _) = Spool::open(&spool_dir).unwrap();
        let body = Content::bytes(&b"Subject: owed notice\r\n\r\nhi\r\n"[..]);
        spool.append(Record::Put(meta, body)).await.unwrap();
    });
    s.spawn();
    s.wait_ready(s.cfg.incoming_port);
    let notice = alice_mail_containing(&s, "Final-Recipient: rfc822; bob@far.test");
    assert!(notice.contains("Subject: owed notice"), "{notice}");
    poll(LONG, "the original to leave the queue", || {
        queue_entry(&s, "0000000000000042").is_none().then_some(())
    });
}

/// A tmpfs mounted on a path, unmounted (lazily) on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(path: &std::path::Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(path).unwrap();
        let st = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(path)
            .status()
            .expect("run mount");
        assert!(st.success(), "mount a tmpfs (the tests run as root)");
        Tmpfs(path.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_failure_notice_that_cannot_be_written_is_tried_again() {
    // The disk is full when a mail is given up on: the notice cannot be queued. The original
    // stays queued (nothing is lost), and once there is room the notice goes out.
    notice_on_a_full_disk(false);
}

#[test]
fn a_failure_notice_owed_at_a_kill_9_is_sent_after_the_restart() {
    // The same, with the server killed between the give-up and the notice.
    notice_on_a_full_disk(true);
}

/// A mail given up on while the disk is full; with `kill`, the server is killed (-9) while
/// the notice is owed and started again once there is room.
fn notice_on_a_full_disk(kill: bool) {
    let closed = free_port();
    let mut s = Server::prepare(common::Config::default());
    let disk = Tmpfs::mount(&s.data_dir, "24m");
    let port = s.cfg.incoming_port;
    let route = format!(
        "outgoing_mails.domain_maps=[(domain: \"far.test\", host: \"127.0.0.1\", port: {closed})]"
    );
    s.cli(&[
        "config",
        "set",
        "smtp.outgoing.enabled=true",
        &format!("smtp.outgoing.port={port}"),
        "smtp.tls.auth_requires_tls=false",
        "outgoing_mails.resend_attempts=2",
        "outgoing_mails.resend_delay=\"3s\"",
        "smtp.max_message_size=1048576",
        "smtp.min_free_space=1024",
        &route,
    ])
    .assert_ok();
    s.spawn();
    s.wait_ready(port);
    // A header section big enough that the notice, which returns it, needs new room on disk.
    let mut c = s.connect();
    c.ehlo();
    c.expect(
        &format!("AUTH PLAIN {}", sasl_plain(ALICE, PASSWORD)),
        235,
        "2.7.0",
    );
    c.expect(&format!("MAIL FROM:<{ALICE}>"), 250, "");
    c.expect("RCPT TO:<carol@far.test>", 250, "");
    c.expect("DATA", 354, "");
    let filler_fields: String = (0..40)
        .map(|i| format!("X-Filler-{i}: {}\r\n", "f".repeat(400)))
        .collect();
    let r = c.cmd(&format!(
        "Subject: to be returned\r\n{filler_fields}\r\nbody\r\n."
    ));
    assert_eq!(r.code, 250, "{}", r.text());
    let id = queued_id(&r.text());
    c.cmd("QUIT");
    // Fill the disk before the second (last) attempt gives up.
    let filler = s.data_dir.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        while f.write_all(&[0u8; 64 * 1024]).is_ok() {}
        let _ = f.sync_all();
    }
    poll(LONG, "the notice to fail for lack of room", || {
        s.stderr()
            .contains("cannot queue the failure notice")
            .then_some(())
    });
    let (_, entry) = queue_entry(&s, &id).expect("the original stays queued");
    assert!(entry.contains("<carol@far.test> (failed)"), "{entry}");
    assert!(s.alice_mails().is_empty());
    if kill {
        s.signal("KILL");
        s.wait_exit(Duration::from_secs(10));
    }
    std::fs::remove_file(&filler).unwrap();
    if kill {
        s.spawn();
        s.wait_ready(port);
    }
    alice_mail_containing(&s, "Final-Recipient: rfc822; carol@far.test");
    poll(LONG, "the original to leave the queue", || {
        queue_entry(&s, &id).is_none().then_some(())
    });
    drop(s);
    drop(disk);
}

#[test]
fn retry_now_does_not_use_up_an_attempt() {
    // Two attempts an hour apart. The administrator presses Retry Now twice during the
    // outage: the mail is not returned early, and it keeps its schedule.
    let closed = free_port();
    let s = relay_server(
        closed,
        &[
            "outgoing_mails.resend_attempts=2",
            "outgoing_mails.resend_delay=\"1h\"",
        ],
    );
    let id = queued_id(&submit(&s, ALICE, &["carol@far.test"], "retry me"));
    poll(LONG, "the first attempt", || {
        queue_entry(&s, &id).filter(|(n, _)| *n == 1).map(|_| ())
    });
    for n in 1..=2 {
        s.cli(&["queue", "retry", &id]).assert_ok();
        poll(LONG, "the retried attempt to end", || {
            (s.stderr().matches("did not count as an attempt").count() == n).then_some(())
        });
    }
    let (attempts, entry) = queue_entry(&s, &id).expect("still queued");
    assert_eq!(attempts, 1, "{entry}");
    assert!(
        entry.contains(" in 1h") || entry.contains(" in 59m"),
        "the hour's wait is kept: {entry}"
    );
    assert!(s.alice_mails().is_empty(), "no failure notice");
}

#[test]
fn a_retry_asked_for_during_an_attempt_is_kept() {
    // The next hop accepts the connection and says nothing; a retry is asked for meanwhile.
    // When that attempt ends (the hop hangs up), the mail is tried again at once instead of
    // waiting the hour.
    let hop = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let s = relay_server(
        hop.local_addr().unwrap().port(),
        &["outgoing_mails.resend_delay=\"1h\""],
    );
    let id = queued_id(&submit(&s, ALICE, &["carol@far.test"], "hold on"));
    let (first, _) = hop.accept().expect("the first attempt connects");
    s.cli(&["queue", "retry", &id]).assert_ok();
    drop(first);
    hop.set_nonblocking(true).unwrap();
    poll(LONG, "a second attempt at once", || {
        hop.accept().ok().map(|_| ())
    });
}

#[test]
fn a_mail_accepted_while_the_server_stops_is_queued() {
    // SIGTERM while a client is in the middle of DATA: the session finishes, the mail gets
    // its 250 and is handed to the queue before the queue stops; after a restart it goes.
    let sink = sink(free_port(), &[]);
    let mut s = relay_server(sink.port(), &[]);
    let mut c = s.connect();
    c.ehlo();
    c.expect(
        &format!("AUTH PLAIN {}", sasl_plain(ALICE, PASSWORD)),
        235,
        "2.7.0",
    );
    c.expect(&format!("MAIL FROM:<{ALICE}>"), 250, "");
    c.expect("RCPT TO:<carol@far.test>", 250, "");
    c.expect("DATA", 354, "");
    c.send(b"Subject: late\r\n\r\nfirst half\r\n").unwrap();
    s.signal("TERM");
    poll(LONG, "the server to start stopping", || {
        s.stderr()
            .contains("stopping: no new connections")
            .then_some(())
    });
    let r = c.cmd("second half\r\n.");
    assert_eq!(r.code, 250, "{}", r.text());
    let id = queued_id(&r.text());
    let _ = c.cmd("QUIT");
    s.wait_exit(LONG);
    assert!(
        s.stderr()
            .contains(&format!("[{id}] queued from <{ALICE}>")),
        "the queue took the mail before it stopped:\n{}",
        s.stderr()
    );
    s.spawn();
    s.wait_ready(s.cfg.incoming_port);
    poll(LONG, "the mail at the next hop", || {
        sink.mails()
            .iter()
            .any(|m| m.contains("second half"))
            .then_some(())
    });
}

#[test]
fn with_backoff_each_wait_is_twice_the_one_before() {
    let closed = free_port();
    let s = relay_server(
        closed,
        &[
            "outgoing_mails.resend_attempts=3",
            "outgoing_mails.resend_delay=\"1s\"",
            "outgoing_mails.backoff=true",
        ],
    );
    submit(&s, ALICE, &["carol@far.test"], "backing off");
    let dsn = alice_mail_containing(&s, "Final-Recipient: rfc822; carol@far.test");
    assert!(dsn.contains("gave up after 3 attempts"), "{dsn}");
    let log = s.stderr();
    let first = log
        .find("next attempt (2 of 3) in 1s")
        .expect("first wait 1s");
    let second = log
        .find("next attempt (3 of 3) in 2s")
        .expect("second wait 2s");
    assert!(first < second, "{log}");
}

/// What Python's `email` package reads in the message in `file` (tests/peers/dsn_check.py).
fn python_reading(file: &Path) -> Value {
    let out = Command::new("python3")
        .arg(peer_script("dsn_check.py"))
        .arg(file)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "dsn_check.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("dsn_check.py prints JSON")
}

/// The per-recipient fields Python found for `addr`.
fn recipient<'a>(v: &'a Value, addr: &str) -> &'a Value {
    let want = format!("rfc822; {addr}");
    v["recipients"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["Final-Recipient"] == want.as_str()))
        .unwrap_or_else(|| panic!("no recipient {addr} in {v:#}"))
}

/// A real server's failure notice, read by a third-party parser: a multipart/report of
/// report-type delivery-status whose per-recipient fields tell a remote server's refusal
/// (`smtp`, with its Remote-MTA) from Postern's own words about a destination nobody listens
/// on (`X-Postern`).
#[test]
fn a_failure_notice_reads_as_a_delivery_status_report_in_python() {
    let sink = sink(free_port(), &["-f", "RCPT"]);
    let maps = format!(
        "outgoing_mails.domain_maps=[\
         (domain: \"far.test\", host: \"127.0.0.1\", port: {}), \
         (domain: \"dead.test\", host: \"127.0.0.1\", port: {})]",
        sink.port(),
        free_port()
    );
    let s = relay_server(
        sink.port(),
        &["outgoing_mails.resend_attempts=1", maps.as_str()],
    );
    submit(
        &s,
        ALICE,
        &["bob@far.test", "carol@dead.test"],
        "two ways to fail",
    );
    alice_mail_containing(&s, "multipart/report");
    let file = s
        .maildir_files(DOMAIN, "alice")
        .into_iter()
        .find(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).contains("multipart/report"))
        .unwrap();
    let v = python_reading(&file);
    assert_eq!(v["content_type"], "multipart/report", "{v:#}");
    assert_eq!(v["report_type"], "delivery-status", "{v:#}");
    assert_eq!(
        v["parts"],
        serde_json::json!([
            "text/plain",
            "message/delivery-status",
            "text/rfc822-headers"
        ])
    );
    assert_eq!(v["defects"], serde_json::json!([]), "{v:#}");
    assert_eq!(v["long_lines"], serde_json::json!([]), "{v:#}");
    assert_eq!(v["charset"], "us-ascii", "{v:#}");
    assert_eq!(v["per_message"]["Reporting-MTA"], "dns; mail.test", "{v:#}");

    let bob = recipient(&v, "bob@far.test");
    assert_eq!(bob["Action"], "failed", "{bob:#}");
    assert!(bob["Status"].as_str().unwrap().starts_with("5."), "{bob:#}");
    let code = bob["Diagnostic-Code"].as_str().unwrap();
    assert!(code.starts_with("smtp; 5"), "the sink's own reply: {bob:#}");
    assert_eq!(bob["Remote-MTA"], "dns; 127.0.0.1", "{bob:#}");
    assert!(bob["Last-Attempt-Date (parsed)"].is_string(), "{bob:#}");

    let carol = recipient(&v, "carol@dead.test");
    assert_eq!(carol["Action"], "failed", "{carol:#}");
    assert_eq!(carol["Status"], "4.4.1", "{carol:#}");
    let code = carol["Diagnostic-Code"].as_str().unwrap();
    assert!(
        code.starts_with("X-Postern; gave up after 1 attempts; last error: 4.4.1 127.0.0.1"),
        "no server answered, so no smtp diagnostic: {carol:#}"
    );
    assert!(code.contains("cannot connect"), "{carol:#}");
    assert!(carol.get("Remote-MTA").is_none(), "{carol:#}");
    assert!(carol["Last-Attempt-Date (parsed)"].is_string(), "{carol:#}");

    let text = v["text"].as_str().unwrap();
    assert!(
        text.contains("<bob@far.test>: 127.0.0.1[127.0.0.1] said: 5"),
        "{text}"
    );
    assert!(
        text.contains("<carol@dead.test>: gave up after 1 attempts"),
        "{text}"
    );
}

/// The notice the real code builds for a reply of 100 lines of 512 octets, and for one in
/// UTF-8, reads right in Python: no line over 998 octets, the Diagnostic-Code folded and
/// whole again once unfolded, the text's declared charset the one it has.
#[test]
fn long_and_non_ascii_notices_read_right_in_python() {
    use postern::engine::queue::{Meta, Rcpt, RcptState, dsn};
    let mut cfg = postern::engine::config::Config::default();
    cfg.server.hostname = "mx.test".into();
    let line = "lorem ipsum dolor ".repeat(28);
    let reply = format!("550 5.7.1 {}", vec![line.trim_end(); 100].join(" / "));
    let rcpt = |addr: &str, last_error: String| Rcpt {
        addr: addr.into(),
        state: RcptState::Failed,
        last_error: last_error.into(),
        notified: false,
    };
    let rcpts = [
        rcpt(
            "bob@far.test",
            format!("mx.far.test[192.0.2.7] said: {reply} (in reply to end of DATA)"),
        ),
        rcpt(
            "carol@far.test",
            "mx.far.test[192.0.2.7] said: 550 5.1.1 Postfach gelöscht (in reply to RCPT TO)".into(),
        ),
    ];
    let meta = Meta {
        id: 7,
        created: 1_700_000_000,
        from: ALICE.into(),
        rcpts: rcpts.to_vec(),
        attempts: 1,
        next_try: 0,
        held: false,
        warned: false,
        size: 100,
        client: "127.0.0.1".into(),
        subject: "".into(),
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notice.eml");
    let original = b"Subject: long\r\nFrom: <alice@example.test>\r\n\r\nbody\r\n";
    std::fs::write(&file, dsn::notice(&cfg, &meta, &rcpts, original, false)).unwrap();
    let v = python_reading(&file);
    assert_eq!(v["report_type"], "delivery-status", "{v:#}");
    assert_eq!(
        v["long_lines"],
        serde_json::json!([]),
        "lines over 998 octets"
    );
    assert_eq!(v["defects"], serde_json::json!([]), "{v:#}");
    assert_eq!(v["charset"], "utf-8", "{v:#}");
    let text = v["text"].as_str().unwrap();
    assert!(text.contains("Postfach gelöscht"), "{text}");
    let bob = recipient(&v, "bob@far.test");
    assert_eq!(bob["Diagnostic-Code"], format!("smtp; {reply}").as_str());
    assert_eq!(bob["Remote-MTA"], "dns; mx.far.test");
    let carol = recipient(&v, "carol@far.test");
    assert_eq!(
        carol["Diagnostic-Code"], "smtp; 550 5.1.1 Postfach gel?scht",
        "delivery-status fields stay US-ASCII"
    );
}

#[test]
fn a_destination_that_hangs_does_not_hold_up_the_others() {
    // The next hop for slow.test takes connections and never greets: each attempt there waits
    // out the greeting timeout. With two outbound connections overall, ten mails queued for
    // it must not keep a mail for a live destination waiting.
    let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hang_port = hang.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in hang.incoming().flatten() {
            held.push(conn);
        }
    });
    let live = sink(free_port(), &[]);
    let maps = format!(
        "outgoing_mails.domain_maps=[(domain: \"slow.test\", host: \"127.0.0.1\", port: {hang_port}), \
         (domain: \"far.test\", host: \"127.0.0.1\", port: {})]",
        live.port()
    );
    let s = relay_server(
        live.port(),
        &[
            &maps,
            "outgoing_mails.max_connections=2",
            "outgoing_mails.max_connections_per_domain=1",
        ],
    );
    for i in 0..10 {
        submit(&s, ALICE, &[&format!("r{i}@slow.test")], "stuck");
    }
    submit(&s, ALICE, &["carol@far.test"], "the live one");
    poll(LONG, "the live destination's mail at its next hop", || {
        live.mails()
            .iter()
            .any(|m| m.contains("the live one"))
            .then_some(())
    });
}

#[test]
fn a_destination_where_no_host_answered_is_left_alone_for_a_while() {
    // far.test's host hangs up before greeting. After the first mail's attempt, four more
    // mails for it are deferred without a connection each (RFC 5321 4.5.4.1); an
    // administrator's retry does connect again.
    let hop = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hop.local_addr().unwrap().port();
    let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = connections.clone();
    std::thread::spawn(move || {
        for conn in hop.incoming() {
            drop(conn);
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let count = || connections.load(std::sync::atomic::Ordering::SeqCst);
    let s = relay_server(port, &["outgoing_mails.resend_delay=\"1h\""]);
    submit(&s, ALICE, &["first@far.test"], "first");
    poll(LONG, "the first attempt to end", || {
        s.stderr().contains("next attempt (2 of 5)").then_some(())
    });
    for i in 0..4 {
        submit(&s, ALICE, &[&format!("r{i}@far.test")], "later");
    }
    poll(LONG, "four deferrals without a connection", || {
        (s.stderr()
            .matches("delivery to far.test suspended for")
            .count()
            >= 4)
            .then_some(())
    });
    assert_eq!(count(), 1, "one connection for five mails");
    s.cli(&["queue", "retry", "--all"]).assert_ok();
    poll(LONG, "a retry to connect again", || {
        (count() > 1).then_some(())
    });
}

/// A server relaying for logged-in users by MX lookups on `mx_port`, with no DNS hosts
/// configured: it reads the system's `/etc/resolv.conf`, which is (in its own mount namespace)
/// the returned file, written with `resolv_conf` at first.
fn system_dns_server(mx_port: u16, resolv_conf: &str) -> (Server, std::path::PathBuf) {
    let mut s = Server::prepare(common::Config::default());
    let port = s.cfg.incoming_port;
    s.cli(&[
        "config",
        "set",
        "smtp.outgoing.enabled=true",
        &format!("smtp.outgoing.port={port}"),
        "smtp.tls.auth_requires_tls=false",
        "outgoing_mails.outbound_tls=None",
        &format!("outgoing_mails.mx_port={mx_port}"),
    ])
    .assert_ok();
    let resolv = s.dir.path().join("resolv.conf");
    std::fs::write(&resolv, resolv_conf).unwrap();
    s.spawn_with_resolv_conf(&resolv);
    s.wait_ready(port);
    (s, resolv)
}

#[test]
fn a_change_of_resolv_conf_is_followed_without_a_restart() {
    // No DNS hosts configured: the system's /etc/resolv.conf is used (here a file bind-mounted
    // over it in the server's own mount namespace). A laptop moves to another network, the
    // file now names another name server, and the next mail is routed by its answers.
    let zone = |ip: &str| {
        format!(
            "local=/test/\nmx-host=moved.test,mx.moved.test,10\nhost-record=mx.moved.test,{ip}\n"
        )
    };
    let first_dns = DnsServer::start_at(Ipv4Addr::new(127, 0, 0, 71), Some(53), &zone("127.0.0.3"));
    let second_dns =
        DnsServer::start_at(Ipv4Addr::new(127, 0, 0, 72), Some(53), &zone("127.0.0.4"));
    let first = Sink::start(Ipv4Addr::new(127, 0, 0, 3), 0, &[]);
    let second = Sink::start(Ipv4Addr::new(127, 0, 0, 4), first.port(), &[]);
    let (s, resolv) = system_dns_server(first.port(), "nameserver 127.0.0.71\n");
    submit(&s, ALICE, &["a@moved.test"], "before the move");
    poll(LONG, "the first mail at the first network's host", || {
        first
            .mails()
            .iter()
            .any(|m| m.contains("before the move"))
            .then_some(())
    });
    // Rewritten in place: the bind mount shows the same file.
    std::fs::write(&resolv, "nameserver 127.0.0.72\n").unwrap();
    poll(LONG, "the resolver to follow the change", || {
        s.stderr()
            .contains("/etc/resolv.conf changed")
            .then_some(())
    });
    submit(&s, ALICE, &["b@moved.test"], "after the move");
    poll(LONG, "the second mail at the second network's host", || {
        second
            .mails()
            .iter()
            .any(|m| m.contains("after the move"))
            .then_some(())
    });
    drop((first_dns, second_dns));
}

#[test]
fn a_resolver_that_could_not_be_made_is_tried_again() {
    // The system's DNS configuration is broken at start: deliveries wait, and once it is
    // mended the resolver is made (without a configuration change or a restart).
    let dns = DnsServer::start_at(
        Ipv4Addr::new(127, 0, 0, 73),
        Some(53),
        "local=/test/\nmx-host=mended.test,mx.mended.test,10\nhost-record=mx.mended.test,127.0.0.3\n",
    );
    let hop = Sink::start(Ipv4Addr::new(127, 0, 0, 3), 0, &[]);
    let (s, resolv) = system_dns_server(hop.port(), "nameserver not-an-address\n");
    poll(LONG, "the resolver to fail", || {
        s.stderr()
            .contains("DNS resolver unavailable")
            .then_some(())
    });
    submit(&s, ALICE, &["a@mended.test"], "waiting for DNS");
    std::fs::write(&resolv, "nameserver 127.0.0.73\n").unwrap();
    poll(LONG, "the mail once DNS works", || {
        hop.mails()
            .iter()
            .any(|m| m.contains("waiting for DNS"))
            .then_some(())
    });
    drop(dns);
}

/// The spool's segment files, by number.
fn spool_segments(s: &Server) -> Vec<u64> {
    let mut v: Vec<u64> = std::fs::read_dir(s.data_dir.join("spool"))
        .unwrap()
        .filter_map(|e| {
            let n = e.ok()?.file_name().into_string().ok()?;
            n.strip_suffix(".seg")?.parse().ok()
        })
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn a_long_lived_mail_is_moved_out_of_old_segments_and_survives_a_restart() {
    let port = free_port(); // nothing listens: the mail waits
    let mut s = relay_server(port, &["outgoing_mails.resend_delay=\"1h\""]);
    let kept = queued_id(&submit(&s, ALICE, &["bob@far.test"], "the long-lived mail"));
    // Four 16 MiB mails fill two 32 MiB segments; deleted, they leave them garbage behind
    // the long-lived mail, which pins the first.
    let line = format!("{}\r\n", "x".repeat(76));
    let big = line.repeat(16 * 1024 * 1024 / line.len());
    let fillers: Vec<String> = (0..4)
        .map(|_| queued_id(&submit(&s, ALICE, &["carol@far.test"], &big)))
        .collect();
    drop(big);
    assert!(spool_segments(&s).len() >= 3, "{:?}", spool_segments(&s));
    for id in &fillers {
        s.cli(&["queue", "delete", id]).assert_ok();
    }
    // The long-lived mail is moved to the active segment, and the segment it pinned goes.
    assert_eq!(spool_segments(&s).first(), Some(&1));
    poll(LONG, "the first segment to be deleted", || {
        (!spool_segments(&s).contains(&1)).then_some(())
    });
    assert_eq!(queue_ids(&s), vec![kept.clone()]);

    // Read back from its new place after a restart, whole.
    s.signal("KILL");
    s.wait_exit(Duration::from_secs(10));
    let sink = sink(port, &[]);
    s.spawn();
    s.wait_ready(s.cfg.incoming_port);
    assert_eq!(queue_ids(&s), vec![kept]);
    s.cli(&["queue", "retry", "--all"]).assert_ok();
    let mail = poll(LONG, "the mail at the sink", || sink.mails().pop());
    assert!(mail.contains("the long-lived mail"), "{mail}");
    poll(LONG, "queue empty", || {
        queue_ids(&s).is_empty().then_some(())
    });
}

/// Ten mails for one next hop, queued one after the other: the connection of each delivery is
/// kept for the next, so no more connections are opened than the destination's limit allows
/// at once (2 here), however many mails go through.
#[test]
fn queued_mail_for_one_next_hop_goes_over_kept_connections() {
    let sink = sink(free_port(), &[]);
    let proxy = dns_common::proxy::CountingProxy::start(Ipv4Addr::LOCALHOST, sink.addr);
    let s = relay_server(
        proxy.addr.port(),
        &[
            "outgoing_mails.connection_cache_time=\"30s\"",
            "outgoing_mails.max_connections_per_domain=2",
        ],
    );
    for n in 0..10 {
        submit(
            &s,
            ALICE,
            &[&format!("r{n}@far.test")],
            &format!("mail {n}"),
        );
    }
    poll(LONG, "ten mails at the sink", || {
        (sink.mails().len() == 10).then_some(())
    });
    poll(LONG, "queue empty", || {
        queue_ids(&s).is_empty().then_some(())
    });
    let opened = proxy.opened();
    assert!(
        (1..=2).contains(&opened),
        "{opened} connections for 10 mails"
    );
}
