//! Outgoing SMTP Access Control over real sockets: the whole matrix of settings (SMTP
//! Authentication x IP Range Control x same/separate port x safe/blocked/this computer), and
//! every address trick against every listener. A client the settings do not privilege never
//! gets mail for another domain accepted, and nothing reaches the queue.

mod common;

use common::{ALICE, PASSWORD, Server, SourceClient, free_port, sasl_plain};
use std::time::Duration;

/// Who connects, and how.
#[derive(Clone, Copy, Debug)]
struct Client {
    src: &'static str,
    login: bool,
}

/// The access settings under test.
#[derive(Clone, Copy, Debug)]
struct Access {
    auth: bool,
    ranges: bool,
    same_port: bool,
}

const IN_RANGE: &str = "127.0.0.2";
const OUT_OF_RANGE: &str = "127.0.0.3";
const SAFE: &str = "127.0.0.9";

fn server(a: Access, extra: &[String]) -> (Server, u16, u16) {
    let mut s = Server::prepare(common::Config::default());
    let incoming = s.cfg.incoming_port;
    let outgoing = if a.same_port {
        incoming
    } else {
        s.cfg.outgoing_port
    };
    // A route for far.test to a closed port: relayed mail stays in the queue to be counted.
    let closed = free_port();
    let mut args: Vec<String> = vec![
        "config".into(),
        "set".into(),
        "smtp.outgoing.enabled=true".into(),
        format!("smtp.outgoing.port={outgoing}"),
        "smtp.tls.auth_requires_tls=false".into(),
        format!("access.smtp_auth.enabled={}", a.auth),
        format!("access.ip_range.enabled={}", a.ranges),
        format!("access.ip_range.ranges=[\"{IN_RANGE}\", \"10.0.0.0/8\"]"),
        format!(
            "outgoing_mails.domain_maps=[(domain: \"far.test\", host: \"127.0.0.1\", port: {closed})]"
        ),
        "outgoing_mails.resend_delay=\"1h\"".into(),
    ];
    args.extend(extra.iter().cloned());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    s.cli(&refs).assert_ok();
    s.spawn();
    s.wait_ready(incoming);
    (s, incoming, outgoing)
}

fn queue_len(s: &Server) -> usize {
    let out = s.cli(&["queue", "list"]);
    out.assert_ok();
    out.stdout
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_hexdigit()) && l.len() > 16)
        .count()
}

/// [`try_relay`] from `src`, logged in or not.
fn relay_from(port: u16, src: &'static str, login: bool) -> u16 {
    try_relay(port, Client { src, login })
}

/// Tries to relay one message to far.test; returns the RCPT reply code, or the connect reply
/// when the session was refused at once.
fn try_relay(port: u16, c: Client) -> u16 {
    try_relay_at("127.0.0.1", port, c)
}

/// [`try_relay`] to the listener on `dst`.
fn try_relay_at(dst: &str, port: u16, c: Client) -> u16 {
    let mut m = SourceClient::between(c.src, dst, port);
    let (greet, _) = m.reply();
    if greet != 220 {
        return greet;
    }
    assert_eq!(m.cmd("EHLO client.test").0, 250);
    if c.login {
        // The incoming SMTP offers no AUTH (a login grants nothing there); elsewhere it works.
        let (code, text) = m.cmd(&format!("AUTH PLAIN {}", sasl_plain(ALICE, PASSWORD)));
        assert!(
            code == 235 || (code == 503 && text.contains("Authentication not enabled")),
            "{text}"
        );
    }
    assert_eq!(m.cmd("MAIL FROM:<alice@example.test>").0, 250);
    let (code, _) = m.cmd("RCPT TO:<someone@far.test>");
    if code == 250 {
        assert_eq!(m.cmd("DATA").0, 354);
        let (c2, t2) = m.cmd("Subject: relay\r\n\r\nhello\r\n.");
        assert_eq!(c2, 250, "{t2}");
    }
    m.cmd("QUIT");
    code
}

#[test]
fn the_whole_matrix_of_auth_ranges_and_ports() {
    for auth in [false, true] {
        for ranges in [false, true] {
            for same_port in [false, true] {
                let a = Access {
                    auth,
                    ranges,
                    same_port,
                };
                let (s, incoming, outgoing) = server(a, &[]);
                let mut expected_queue = 0;
                for src in [IN_RANGE, OUT_OF_RANGE] {
                    for login in [false, true] {
                        let c = Client { src, login };
                        let privileged = (!ranges || src == IN_RANGE) && (!auth || login);
                        let got = try_relay(outgoing, c);
                        if privileged {
                            assert_eq!(got, 250, "{a:?} {c:?} should relay");
                            expected_queue += 1;
                        } else if ranges && !same_port && src == OUT_OF_RANGE {
                            assert_eq!(
                                got, 554,
                                "{a:?} {c:?}: separate port, outside the ranges: refused at connect"
                            );
                        } else {
                            assert_eq!(got, 550, "{a:?} {c:?} must not relay");
                        }
                        if !same_port {
                            assert_eq!(
                                try_relay(incoming, c),
                                550,
                                "incoming never relays: {a:?} {c:?}"
                            );
                        }
                    }
                }
                assert_eq!(queue_len(&s), expected_queue, "{a:?}: queued mails");
            }
        }
    }
}

/// Incoming and outgoing SMTP on one port but two addresses: each address keeps its own role.
/// (Merging them into one incoming+outgoing listener on the incoming address made an open
/// relay of the public address when no access control was on.)
#[test]
fn one_port_two_addresses_never_relays_on_the_incoming_address() {
    const LAN: &str = "127.0.0.5";
    let (s, incoming, outgoing) = server(
        Access {
            auth: false,
            ranges: false,
            same_port: true,
        },
        &[format!("smtp.outgoing.listen_ip={LAN}")],
    );
    assert_eq!(incoming, outgoing);
    let c = Client {
        src: IN_RANGE,
        login: false,
    };
    assert_eq!(
        try_relay_at("127.0.0.1", incoming, c),
        550,
        "the incoming address never relays"
    );
    assert_eq!(
        try_relay_at(LAN, outgoing, c),
        250,
        "the outgoing address does"
    );
    assert_eq!(queue_len(&s), 1);
    let out = s.cli(&["config", "check"]);
    assert!(
        out.stderr.contains(&format!("port {outgoing} on {LAN}")),
        "the warning names the open address: {}",
        out.stderr
    );
}

#[test]
fn open_relay_is_reported_loudly() {
    let (s, _, _) = server(
        Access {
            auth: false,
            ranges: false,
            same_port: false,
        },
        &[],
    );
    let out = s.cli(&["config", "check"]);
    out.assert_ok();
    assert!(out.stderr.contains("OPEN RELAY"), "{}", out.stderr);
    common::poll(
        Duration::from_secs(15),
        "open relay warning in the log",
        || s.stderr().contains("OPEN RELAY").then_some(()),
    );
}

#[test]
fn safe_ips_overrule_and_own_addresses_can_be_blocked() {
    let a = Access {
        auth: true,
        ranges: true,
        same_port: true,
    };
    let (s, _, port) = server(a, &[format!("access.safe_ips=[\"{SAFE}\"]")]);
    assert_eq!(
        relay_from(port, SAFE, false),
        250,
        "a Safe IP needs neither range nor login"
    );
    assert_eq!(relay_from(port, OUT_OF_RANGE, true), 550);
    drop(s);

    // Block this computer's addresses: every 127.x client is refused, even in range and logged in...
    let (s, _, port) = server(a, &["access.block_own_ips=true".into()]);
    assert_eq!(relay_from(port, IN_RANGE, true), 550);
    drop(s);
    // ...on a separate port at connect...
    let a2 = Access {
        same_port: false,
        ..a
    };
    let (s, _, port) = server(a2, &["access.block_own_ips=true".into()]);
    assert_eq!(relay_from(port, IN_RANGE, true), 554);
    drop(s);
    // ...unless "Allow IP addresses assigned to this computer" makes them Safe IPs.
    let (s, _, port) = server(
        a,
        &[
            "access.block_own_ips=true".into(),
            "access.allow_own_ips=true".into(),
        ],
    );
    assert_eq!(relay_from(port, OUT_OF_RANGE, false), 250);
    assert_eq!(queue_len(&s), 1);
}

#[test]
fn allow_only_the_following_user() {
    let mut s = Server::prepare(common::Config::default());
    let port = s.cfg.incoming_port;
    s.cli_stdin(
        &["access", "relay-user", "relayer", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    )
    .assert_ok();
    s.cli(&[
        "config",
        "set",
        "smtp.outgoing.enabled=true",
        &format!("smtp.outgoing.port={port}"),
        "smtp.tls.auth_requires_tls=false",
        "access.smtp_auth.enabled=true",
        "access.smtp_auth.allow_any_account=false",
        &format!(
            "outgoing_mails.domain_maps=[(domain: \"far.test\", host: \"127.0.0.1\", port: {})]",
            free_port()
        ),
    ])
    .assert_ok();
    s.spawn();
    s.wait_ready(port);
    assert!(
        !String::from_utf8(s.config_bytes())
            .unwrap()
            .contains(PASSWORD),
        "the relay password is stored hashed"
    );
    // An account login no longer grants relaying...
    assert_eq!(relay_from(port, IN_RANGE, true), 550);
    // ...the named user does.
    let mut m = SourceClient::from(IN_RANGE, port);
    assert_eq!(m.reply().0, 220);
    m.cmd("EHLO c");
    assert_eq!(
        m.cmd(&format!("AUTH PLAIN {}", sasl_plain("relayer", PASSWORD)))
            .0,
        235
    );
    m.cmd("MAIL FROM:<x@example.test>");
    assert_eq!(m.cmd("RCPT TO:<y@far.test>").0, 250);
}

#[test]
fn address_tricks_never_relay_on_any_listener() {
    // Both access controls on, so an unprivileged client (out of range, no login) is the test.
    let a = Access {
        auth: true,
        ranges: true,
        same_port: false,
    };
    // Many refusals in one session: no error cap and no tarpit, the relay decision is the test.
    let (s, incoming, outgoing) = server(
        a,
        &[
            "smtp.max_errors_per_session=1000".into(),
            "abuse.tarpit.enabled=false".into(),
        ],
    );
    // Forms whose real final domain is not local: refused 550 5.7.1.
    let non_local = [
        "<someone@far.test>",
        "<someone@FAR.TEST>",
        "<someone@far.test.>",
        "<@example.test:someone@far.test>",
        "<@example.test,@example.test:someone@far.test>",
        "<\"someone\"@far.test>",
    ];
    // Forms that are really local (with a local part no account has), or refused as syntax
    // (address literals are not accepted at all): 5xx too.
    let local_or_invalid = [
        "<someone@[127.0.0.1]>",
        "<someone@[IPv6:::1]>",
        "<someone%far.test@example.test>",
        "<far.test!someone@example.test>",
        "<\"someone@far.test\"@example.test>",
        "<someone@far.test@example.test>",
        "<someone@example.test@far.test>",
        "<someone>",
        "<@far.test:>",
        "<someone@>",
    ];
    for (port, src) in [
        (incoming, OUT_OF_RANGE),
        (incoming, IN_RANGE),
        (outgoing, IN_RANGE),
    ] {
        let mut m = SourceClient::from(src, port);
        assert_eq!(m.reply().0, 220);
        m.cmd("EHLO client.test");
        for rcpt in non_local.iter().chain(local_or_invalid.iter()) {
            assert_eq!(m.cmd("MAIL FROM:<x@example.test>").0, 250);
            let (code, text) = m.cmd(&format!("RCPT TO:{rcpt}"));
            assert!(
                (500..600).contains(&code),
                "port {port} from {src}: RCPT TO:{rcpt} got {text}"
            );
            if non_local.contains(rcpt) {
                assert!(text.starts_with("550 5.7.1"), "RCPT TO:{rcpt}: {text}");
            }
            // DATA must not be possible with no accepted recipient.
            assert_eq!(m.cmd("DATA").0, 503, "{rcpt}");
            m.cmd("RSET");
        }
    }
    assert_eq!(queue_len(&s), 0, "nothing may reach the queue");
}

#[test]
fn authenticated_senders_may_be_held_to_their_own_address() {
    let a = Access {
        auth: true,
        ranges: false,
        same_port: true,
    };
    let (_s, _, port) = server(a, &["access.sender_must_match_login=true".into()]);
    let mut m = SourceClient::from(IN_RANGE, port);
    m.reply();
    m.cmd("EHLO c");
    assert_eq!(
        m.cmd(&format!("AUTH PLAIN {}", sasl_plain(ALICE, PASSWORD)))
            .0,
        235
    );
    assert_eq!(m.cmd("MAIL FROM:<ceo@example.test>").0, 553);
    assert_eq!(m.cmd("MAIL FROM:<Alice@Example.test>").0, 250);
}
