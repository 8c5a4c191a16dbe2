//! Abuse defences as a client meets them over real sockets: connections per IP, failed-login
//! lockout and its expiry, tarpit blocks, hourly transfer limits, a DNSBL served by a real
//! dnsmasq (refuse and tag), and Safe IPs overruling every block.

mod common;
mod dns_common;

use common::{ALICE, PASSWORD, Server, SourceClient, poll, sasl_plain};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

fn server(settings: &[&str]) -> (Server, u16) {
    let mut s = Server::prepare(common::Config::default());
    let port = s.cfg.incoming_port;
    // Outgoing SMTP on the incoming port: a login can grant something there, so AUTH is
    // offered (the incoming SMTP alone offers none).
    let same = format!("smtp.outgoing.port={port}");
    let mut args = vec![
        "config",
        "set",
        "smtp.tls.auth_requires_tls=false",
        "smtp.outgoing.enabled=true",
        &same,
    ];
    args.extend_from_slice(settings);
    s.cli(&args).assert_ok();
    s.spawn();
    s.wait_ready(port);
    (s, port)
}

#[test]
fn connections_per_ip_are_limited_and_released() {
    let (_s, port) = server(&[
        "abuse.max_connections_per_ip=2",
        "access.safe_ips=[\"127.0.0.9\"]",
    ]);
    let mut a = SourceClient::from("127.0.0.2", port);
    let mut b = SourceClient::from("127.0.0.2", port);
    assert_eq!(a.reply().0, 220);
    assert_eq!(b.reply().0, 220);
    let mut c = SourceClient::from("127.0.0.2", port);
    let (code, text) = c.reply();
    assert_eq!(code, 421, "{text}");
    assert!(c.closed());
    // Another address is not affected, and a Safe IP is never limited.
    assert_eq!(SourceClient::from("127.0.0.3", port).reply().0, 220);
    let safe: Vec<SourceClient> = (0..3)
        .map(|_| SourceClient::from("127.0.0.9", port))
        .collect();
    for mut s in safe {
        assert_eq!(s.reply().0, 220);
    }
    // Closing one frees a place.
    a.cmd("QUIT");
    poll(WAIT, "a place freed", || {
        let mut d = SourceClient::from("127.0.0.2", port);
        (d.reply().0 == 220).then_some(())
    });
}

fn bad_login(src: &str, port: u16) -> Vec<(u16, String)> {
    let mut m = SourceClient::from(src, port);
    let mut replies = vec![m.reply()];
    if replies[0].0 != 220 {
        return replies;
    }
    m.cmd("EHLO c");
    replies.push(m.cmd(&format!("AUTH PLAIN {}", sasl_plain(ALICE, "wrong"))));
    replies.push(m.reply_if_more());
    replies
}

#[test]
fn failed_logins_lock_the_address_out_until_the_block_expires() {
    let (_s, port) = server(&[
        "abuse.lockout.failures=3",
        "abuse.lockout.window=\"10m\"",
        "abuse.lockout.block_for=\"3s\"",
        "access.safe_ips=[\"127.0.0.9\"]",
    ]);
    assert_eq!(bad_login("127.0.0.2", port)[1].0, 535);
    assert_eq!(bad_login("127.0.0.2", port)[1].0, 535);
    let third = bad_login("127.0.0.2", port);
    assert_eq!(third[1].0, 535);
    assert!(
        third[2].0 >= 400,
        "the third failure locks the address out: {third:?}"
    );
    // Now refused at once, even with the right password; other addresses are not.
    let (code, text) = SourceClient::from("127.0.0.2", port).reply();
    assert!(code == 421 || code == 554, "{text}");
    let mut other = SourceClient::from("127.0.0.3", port);
    other.reply();
    other.cmd("EHLO c");
    assert_eq!(
        other
            .cmd(&format!("AUTH PLAIN {}", sasl_plain(ALICE, PASSWORD)))
            .0,
        235
    );
    // A Safe IP is never locked out.
    for _ in 0..5 {
        assert_eq!(bad_login("127.0.0.9", port)[1].0, 535);
    }
    assert_eq!(SourceClient::from("127.0.0.9", port).reply().0, 220);
    // The block expires.
    poll(WAIT, "the lockout to expire", || {
        (SourceClient::from("127.0.0.2", port).reply().0 == 220).then_some(())
    });
}

#[test]
fn failed_recipients_tarpit_then_block() {
    let (s, port) = server(&[
        "abuse.tarpit.after_failures=1",
        "abuse.tarpit.delay=\"100ms\"",
        "abuse.tarpit.block_after=4",
        "abuse.tarpit.block_for=\"1h\"",
        "smtp.max_errors_per_session=100",
    ]);
    let mut m = SourceClient::from("127.0.0.4", port);
    m.reply();
    m.cmd("EHLO c");
    m.cmd("MAIL FROM:<x@remote.test>");
    for i in 0..3 {
        assert_eq!(m.cmd(&format!("RCPT TO:<nobody{i}@example.test>")).0, 550);
    }
    assert_eq!(m.cmd("RCPT TO:<nobody9@example.test>").0, 550);
    let (code, text) = m.reply_if_more();
    assert!(code >= 400, "blocked after the 4th failure: {text}");
    assert!(m.closed());
    let (code, _) = SourceClient::from("127.0.0.4", port).reply();
    assert!(code >= 400, "the block holds for new connections");
    poll(WAIT, "the block in the security log", || {
        s.stderr().contains("blocked").then_some(())
    });
}

#[test]
fn hourly_message_limit_per_address() {
    let (_s, port) = server(&["abuse.transfer.max_messages_per_hour=2"]);
    let mut m = SourceClient::from("127.0.0.5", port);
    m.reply();
    m.cmd("EHLO c");
    for n in 0..3 {
        m.cmd("MAIL FROM:<x@remote.test>");
        assert_eq!(m.cmd(&format!("RCPT TO:<{ALICE}>")).0, 250);
        assert_eq!(m.cmd("DATA").0, 354);
        let (code, text) = m.cmd(&format!("Subject: {n}\r\n\r\nx\r\n."));
        if n < 2 {
            assert_eq!(code, 250, "{text}");
        } else {
            assert_eq!(code, 452, "the third message in the hour: {text}");
        }
    }
}

/// dnsmasq answering a DNSBL zone that lists 127.0.0.2, and an SPF record for spf.test that
/// allows only 127.0.0.2.
fn dnsbl() -> dns_common::DnsServer {
    dns_common::DnsServer::start(
        "address=/2.0.0.127.bl.test/127.0.0.2\n\
         address=/bl.test/\n\
         txt-record=spf.test,\"v=spf1 ip4:127.0.0.2 -all\"\n",
    )
}

#[test]
fn dnsbl_listed_clients_are_refused_or_tagged() {
    let dns = dnsbl();
    let hosts = format!("outgoing_mails.dns_hosts=[\"{}\"]", dns.addr);
    let (s, port) = server(&[
        "abuse.rbl.enabled=true",
        "abuse.rbl.zones=[\"bl.test\"]",
        "abuse.rbl.action=Refuse",
        &hosts,
    ]);
    let (code, text) = SourceClient::from("127.0.0.2", port).reply();
    assert_eq!(code, 554, "{text}");
    assert!(text.contains("bl.test"), "{text}");
    assert_eq!(
        SourceClient::from("127.0.0.3", port).reply().0,
        220,
        "not listed"
    );
    drop(s);

    let (s, port) = server(&[
        "abuse.rbl.enabled=true",
        "abuse.rbl.zones=[\"bl.test\"]",
        "abuse.rbl.action=Tag",
        &hosts,
    ]);
    let mut m = SourceClient::from("127.0.0.2", port);
    assert_eq!(m.reply().0, 220);
    m.cmd("EHLO c");
    m.cmd("MAIL FROM:<x@remote.test>");
    m.cmd(&format!("RCPT TO:<{ALICE}>"));
    m.cmd("DATA");
    assert_eq!(m.cmd("Subject: tagged\r\n\r\nx\r\n.").0, 250);
    let mail = poll(WAIT, "the tagged mail", || {
        s.alice_mails().into_iter().next()
    });
    assert!(
        mail.contains("X-Postern-Warning: client [127.0.0.2] is listed in bl.test"),
        "{mail}"
    );
}

#[test]
fn spf_fail_is_refused_or_tagged_at_mail() {
    let dns = dnsbl();
    let hosts = format!("outgoing_mails.dns_hosts=[\"{}\"]", dns.addr);
    let (s, port) = server(&["abuse.spf.enabled=true", "abuse.spf.action=Refuse", &hosts]);
    let mut bad = SourceClient::from("127.0.0.3", port);
    bad.reply();
    bad.cmd("EHLO c");
    let (code, text) = bad.cmd("MAIL FROM:<someone@spf.test>");
    assert_eq!(
        code, 550,
        "127.0.0.3 is not allowed by spf.test's record: {text}"
    );
    assert!(text.contains("5.7.23"), "{text}");
    // Another domain with no SPF record, and the permitted address, pass.
    assert_eq!(bad.cmd("MAIL FROM:<someone@nospf.test>").0, 250);
    let mut good = SourceClient::from("127.0.0.2", port);
    good.reply();
    good.cmd("EHLO c");
    assert_eq!(good.cmd("MAIL FROM:<someone@spf.test>").0, 250);
    drop(s);

    let (s, port) = server(&["abuse.spf.enabled=true", "abuse.spf.action=Tag", &hosts]);
    let mut m = SourceClient::from("127.0.0.3", port);
    m.reply();
    m.cmd("EHLO c");
    assert_eq!(m.cmd("MAIL FROM:<someone@spf.test>").0, 250);
    m.cmd(&format!("RCPT TO:<{ALICE}>"));
    m.cmd("DATA");
    assert_eq!(m.cmd("Subject: spf\r\n\r\nx\r\n.").0, 250);
    let mail = poll(WAIT, "the tagged mail", || {
        s.alice_mails().into_iter().next()
    });
    assert!(mail.contains("X-Postern-Warning: SPF fail"), "{mail}");
}

#[test]
fn the_command_line_lists_a_lockout_and_lifts_it() {
    let (s, port) = server(&[
        "abuse.lockout.failures=3",
        "abuse.lockout.window=\"10m\"",
        "abuse.lockout.block_for=\"1h\"",
        "access.allow_own_ips=false",
    ]);
    let none = s.cli(&["access", "blocked"]);
    none.assert_ok();
    assert_eq!(none.stdout, "no blocks in force\n");
    let not = s.cli(&["access", "unblock", "127.0.0.1"]);
    not.assert_failed();
    assert!(not.stderr.contains("127.0.0.1 is not blocked"), "{not:?}");
    for _ in 0..3 {
        assert_eq!(bad_login("127.0.0.1", port)[1].0, 535);
    }
    assert_eq!(SourceClient::from("127.0.0.1", port).reply().0, 421);

    let list = s.cli(&["access", "blocked"]);
    list.assert_ok();
    let row = list
        .stdout
        .lines()
        .find(|l| l.starts_with("127.0.0.1 "))
        .unwrap_or_else(|| panic!("no row for 127.0.0.1: {list:?}"));
    assert!(
        row.ends_with("login lockout: 3 failed logins within 10m"),
        "{row}"
    );
    assert!(
        row.contains("(59m left)") || row.contains("(1h left)"),
        "{row}"
    );

    let lifted = s.cli(&["access", "unblock", "127.0.0.1"]);
    lifted.assert_ok();
    assert!(
        lifted.stdout.starts_with("127.0.0.1 unblocked"),
        "{lifted:?}"
    );
    assert_eq!(s.cli(&["access", "blocked"]).stdout, "no blocks in force\n");
    let mut m = SourceClient::from("127.0.0.1", port);
    assert_eq!(m.reply().0, 220);
    m.cmd("EHLO c");
    assert_eq!(
        m.cmd(&format!("AUTH PLAIN {}", sasl_plain(ALICE, PASSWORD)))
            .0,
        235,
        "a correct login succeeds at once"
    );
    // The failures before the unblock are forgotten: two more do not lock out again.
    for _ in 0..2 {
        assert_eq!(bad_login("127.0.0.1", port)[1].0, 535);
    }
    assert_eq!(SourceClient::from("127.0.0.1", port).reply().0, 220);
    // The unblock is on the Security channel of the log.
    poll(WAIT, "the unblock in the log", || {
        let logs = s.data_dir.join("logs");
        let text: String = std::fs::read_dir(&logs)
            .ok()?
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .collect();
        text.lines()
            .any(|l| {
                l.contains("Security") && l.contains("127.0.0.1 unblocked from the command line")
            })
            .then_some(())
    });
}

#[test]
fn the_command_line_says_blocks_need_a_running_server() {
    let s = Server::prepare(common::Config::default());
    for args in [
        &["access", "blocked"][..],
        &["access", "unblock", "127.0.0.1"],
    ] {
        let out = s.cli(args);
        out.assert_failed();
        assert!(
            out.stderr.contains("no Postern server is running")
                && out.stderr.contains("running server's memory"),
            "{out:?}"
        );
    }
}
