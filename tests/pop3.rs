//! POP3 over real sockets: Python's poplib (STLS, implicit TLS, the DELE/RSET/QUIT
//! semantics, byte-stuffing), raw transcripts for bad input, the exclusive lock and a
//! delivery during a session, the lockout shared with SMTP AUTH, UIDLs across a restart,
//! and third-party clients (curl, fetchmail).

mod common;

use common::*;
use serde_json::Value;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

/// A server with POP3 on free ports (plain and implicit TLS) on 127.0.0.1.
struct Pop3Server {
    s: Server,
    port: u16,
    ssl_port: u16,
}

fn start(extra: &str) -> Pop3Server {
    let (mut port, mut ssl_port) = (0, 0);
    let s = Server::start_with(|c| {
        (port, ssl_port) = two_free_ports(&[c.incoming_port, c.outgoing_port]);
        c.pop3_ron = format!(
            "enabled: true, port: {port}, ssl_port: {ssl_port}, listen_ip: \"127.0.0.1\", {extra}"
        );
    });
    wait_pop3(port);
    Pop3Server { s, port, ssl_port }
}

fn wait_pop3(port: u16) {
    poll(DEADLINE, "the POP3 listener", || {
        let mut c = Pop3::try_connect("127.0.0.1", port).ok()?;
        c.line().starts_with("+OK").then_some(())
    });
}

/// Runs tests/peers/pop3_peer.py: one JSON value per line.
fn poplib(port: u16, mode: &str, password: &str, actions: &[&str]) -> Vec<Value> {
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(peer_script("pop3_peer.py"))
        .arg(port.to_string())
        .arg(mode)
        .arg(ALICE)
        .arg(password)
        .args(actions);
    let o = run_with_timeout(cmd, None, Duration::from_secs(60));
    assert!(o.ok(), "pop3_peer.py failed:\n{}\n{}", o.stdout, o.stderr);
    o.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[track_caller]
fn ok(v: &Value) -> &Value {
    assert_eq!(v["ok"], true, "{v}");
    &v["result"]
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

/// A raw POP3 client (from a chosen 127.0.0.x source address).
struct Pop3 {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Pop3 {
    fn try_connect(src: &str, port: u16) -> std::io::Result<Pop3> {
        use socket2::{Domain, SockAddr, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        let src: SocketAddr = format!("{src}:0").parse().unwrap();
        s.bind(&SockAddr::from(src))?;
        let dst: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        s.connect_timeout(&SockAddr::from(dst), IO_TIMEOUT)?;
        let w: TcpStream = s.into();
        w.set_read_timeout(Some(Duration::from_secs(20)))?;
        let r = BufReader::new(w.try_clone()?);
        Ok(Pop3 { w, r })
    }

    /// Connects from `src` and reads the greeting.
    fn connect(src: &str, port: u16) -> (Pop3, String) {
        let mut c = Pop3::try_connect(src, port).unwrap();
        let g = c.line();
        (c, g)
    }

    /// One line, without CRLF; empty when the server closed the connection.
    fn line(&mut self) -> String {
        let mut l = String::new();
        let _ = self.r.read_line(&mut l);
        l.trim_end_matches(['\r', '\n']).to_string()
    }

    fn cmd(&mut self, line: &str) -> String {
        let _ = self.w.write_all(format!("{line}\r\n").as_bytes());
        self.line()
    }

    /// The lines of a multi-line answer after its first line, up to the final `.`.
    fn body(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let l = self.line();
            if l == "." {
                return out;
            }
            out.push(l);
        }
    }

    fn login(&mut self) -> String {
        assert!(self.cmd(&format!("USER {ALICE}")).starts_with("+OK"));
        self.cmd(&format!("PASS {PASSWORD}"))
    }
}

#[test]
fn poplib_over_stls_and_implicit_tls() {
    let p = start("");
    deliver_to_alice(&p.s, "first", &["hello"]);
    deliver_to_alice(&p.s, "dots", &[".dotline", "..two", "end"]);
    let files: u64 = list_files(&p.s.maildir(DOMAIN, "alice").join("new"))
        .iter()
        .map(|f| fs::metadata(f).unwrap().len())
        .sum();
    let r = poplib(
        p.port,
        "stls",
        PASSWORD,
        &["capa", "stat", "list", "uidl", "retr:2", "top:1:0", "quit"],
    );
    assert!(ok(&r[0]).as_str().unwrap().starts_with("+OK"));
    let capa = strings(ok(&r[1]));
    for c in ["TOP", "UIDL", "RESP-CODES"] {
        assert!(capa.contains(&c.to_string()), "{capa:?}");
    }
    assert!(
        !capa.contains(&"STLS".to_string()),
        "no STLS once under TLS: {capa:?}"
    );
    // Sizes as stored (CRLF), equal to the files.
    assert_eq!(ok(&r[2]), &serde_json::json!([2, files]));
    assert_eq!(strings(ok(&r[3])).len(), 2);
    let uidls = strings(ok(&r[4]));
    assert_eq!(uidls.len(), 2);
    assert!(uidls[0].starts_with("1 00000001"), "{uidls:?}");
    assert!(uidls[1].starts_with("2 00000002"), "{uidls:?}");
    let retr = &ok(&r[5])["lines"];
    let lines = strings(retr);
    // poplib undoes the byte-stuffing: the lines are the message's own.
    let at = lines
        .iter()
        .position(|l| l == ".dotline")
        .expect("dot line");
    assert_eq!(lines[at + 1], "..two");
    assert!(lines.contains(&"Subject: dots".to_string()));
    let top = strings(&ok(&r[6])["lines"]);
    assert!(top.contains(&"Subject: first".to_string()));
    assert_eq!(
        top.last().unwrap(),
        "",
        "TOP n 0: the header and the blank line only"
    );
    // Implicit TLS: the same mailbox, the same UIDLs; the messages are now in cur/.
    let r = poplib(p.ssl_port, "implicit", PASSWORD, &["uidl", "quit"]);
    assert_eq!(strings(ok(&r[1])), uidls);
    assert!(list_files(&p.s.maildir(DOMAIN, "alice").join("new")).is_empty());
    let cur = list_files(&p.s.maildir(DOMAIN, "alice").join("cur"));
    assert_eq!(cur.len(), 2);
    // RETR flagged message 2 seen at QUIT.
    assert!(
        cur.iter().any(|f| f.to_string_lossy().ends_with(":2,S")),
        "{cur:?}"
    );
    // AUTH PLAIN (SASL-IR) over STLS; a wrong password is refused.
    let r = poplib(p.port, "stls", PASSWORD, &["auth", "stat", "quit"]);
    assert!(ok(&r[0]).as_str().unwrap().starts_with("+OK"));
    let r = poplib(p.port, "stls", "wrong", &["stat"]);
    assert_eq!(r[0]["ok"], false);
    assert!(
        r[0]["error"].as_str().unwrap().starts_with("-ERR [AUTH]"),
        "{}",
        r[0]
    );
    // The special-use folders were made at the first login.
    for f in [".Sent", ".Drafts", ".Trash", ".Junk", ".Archive"] {
        assert!(
            p.s.maildir(DOMAIN, "alice").join(f).join("cur").is_dir(),
            "{f}"
        );
    }
}

#[test]
fn dele_rset_quit_and_a_dropped_connection() {
    let p = start("");
    deliver_to_alice(&p.s, "one", &["1"]);
    deliver_to_alice(&p.s, "two", &["2"]);
    // DELE then RSET keeps the mail.
    let r = poplib(
        p.port,
        "stls",
        PASSWORD,
        &["dele:1", "stat", "rset", "quit"],
    );
    assert_eq!(ok(&r[2])[0], 1);
    ok(&r[4]);
    assert_eq!(ok(&poplib(p.port, "stls", PASSWORD, &["stat"])[1])[0], 2);
    // DELE then a dropped connection keeps it.
    let r = poplib(p.port, "stls", PASSWORD, &["dele:1", "drop"]);
    ok(&r[1]);
    let r = poplib(p.port, "stls", PASSWORD, &["uidl", "quit"]);
    let before = strings(ok(&r[1]));
    assert_eq!(before.len(), 2);
    // DELE then QUIT removes it; the other keeps its UIDL; a deleted message is refused.
    let r = poplib(
        p.port,
        "stls",
        PASSWORD,
        &["dele:1", "retr:1", "dele:1", "list", "quit"],
    );
    assert!(
        r[2]["error"].as_str().unwrap().starts_with("-ERR"),
        "{}",
        r[2]
    );
    assert_eq!(r[3]["ok"], false);
    assert_eq!(strings(ok(&r[4])).len(), 1);
    assert!(ok(&r[5]).as_str().unwrap().contains("1 messages deleted"));
    let r = poplib(p.port, "stls", PASSWORD, &["uidl", "quit"]);
    let after = strings(ok(&r[1]));
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].split(' ').nth(1), before[1].split(' ').nth(1));
    assert_eq!(
        p.s.alice_mails().len() + list_files(&p.s.maildir(DOMAIN, "alice").join("cur")).len(),
        1
    );
}

#[test]
fn bad_input_gets_a_clear_error_and_never_a_panic() {
    let p = start("");
    let (mut c, g) = Pop3::connect("127.0.0.1", p.port);
    assert!(g.starts_with("+OK"), "{g}");
    assert_eq!(c.cmd("XYZZY"), "-ERR Unknown command");
    assert_eq!(c.cmd("STAT"), "-ERR Command not valid in this state");
    assert_eq!(c.cmd("RETR 1"), "-ERR Command not valid in this state");
    assert_eq!(c.cmd(&"A".repeat(5000)), "-ERR Line too long");
    assert_eq!(c.cmd("PASS x"), "-ERR Send USER first");
    assert!(c.login().starts_with("+OK"));
    assert_eq!(c.cmd("RETR 9"), "-ERR No such message");
    assert_eq!(c.cmd("TOP 1"), "-ERR Syntax: TOP message lines");
    assert_eq!(c.cmd("USER bob"), "-ERR Command not valid in this state");
    assert_eq!(c.cmd("STAT"), "+OK 0 0");
    // Too many errors close the session.
    let mut last = String::new();
    for _ in 0..10 {
        last = c.cmd("BOGUS");
        if last.contains("Too many errors") {
            break;
        }
    }
    assert!(
        last.contains("Too many errors") || c.line().contains("Too many errors"),
        "{last}"
    );
    assert_eq!(c.line(), "", "closed");
    // The server still serves.
    let (mut c, _) = Pop3::connect("127.0.0.1", p.port);
    assert!(c.login().starts_with("+OK"));
    assert!(c.cmd("QUIT").starts_with("+OK"));
}

#[test]
fn plaintext_logins_follow_the_setting() {
    // Default (Loopback): USER/PASS without TLS from 127.0.0.1 works.
    let p = start("");
    let (mut c, _) = Pop3::connect("127.0.0.1", p.port);
    assert!(c.cmd("CAPA").starts_with("+OK"));
    let capa = c.body();
    for cap in ["STLS", "USER", "SASL PLAIN", "UIDL"] {
        assert!(capa.contains(&cap.to_string()), "{capa:?}");
    }
    assert!(c.login().starts_with("+OK"));
    drop(p);
    // Never: refused without TLS, even from loopback, and not offered.
    let p = start("plaintext_login: Never");
    let (mut c, _) = Pop3::connect("127.0.0.1", p.port);
    assert!(c.cmd("CAPA").starts_with("+OK"));
    let capa = c.body();
    assert!(capa.contains(&"TOP".to_string()), "{capa:?}");
    assert!(capa.contains(&"STLS".to_string()), "{capa:?}");
    assert!(!capa.contains(&"USER".to_string()), "{capa:?}");
    assert!(c.cmd(&format!("USER {ALICE}")).starts_with("-ERR [AUTH]"));
    assert!(
        c.cmd("AUTH PLAIN AGFsaWNlAHNlY3JldA==")
            .starts_with("-ERR [AUTH]")
    );
    // After STLS it works.
    let r = poplib(p.port, "stls", PASSWORD, &["stat"]);
    ok(&r[0]);
}

#[test]
fn one_session_per_mailbox_and_mail_delivered_meanwhile_waits_for_the_next() {
    let p = start("");
    deliver_to_alice(&p.s, "before", &["x"]);
    let (mut a, _) = Pop3::connect("127.0.0.1", p.port);
    assert!(a.login().starts_with("+OK"));
    assert_eq!(a.cmd("STAT").split(' ').nth(1), Some("1"));
    let (mut b, _) = Pop3::connect("127.0.0.1", p.port);
    assert!(b.cmd(&format!("USER {ALICE}")).starts_with("+OK"));
    assert!(
        b.cmd(&format!("PASS {PASSWORD}"))
            .starts_with("-ERR [IN-USE]")
    );
    deliver_to_alice(&p.s, "during", &["y"]);
    assert_eq!(
        a.cmd("STAT").split(' ').nth(1),
        Some("1"),
        "the list is fixed at login"
    );
    assert!(a.cmd("RETR 1").starts_with("+OK"));
    assert!(a.body().contains(&"Subject: before".to_string()));
    assert!(a.cmd("QUIT").starts_with("+OK"));
    // Released at QUIT; the new mail shows, with the next UID.
    assert_eq!(a.line(), "");
    let (mut c, _) = Pop3::connect("127.0.0.1", p.port);
    assert!(c.login().starts_with("+OK"));
    assert_eq!(c.cmd("STAT").split(' ').nth(1), Some("2"));
    assert!(c.cmd("UIDL 2").starts_with("+OK 2 00000002"));
}

#[test]
fn uidls_survive_a_restart_and_mail_delivered_while_down() {
    let mut p = start("");
    deliver_to_alice(&p.s, "one", &["1"]);
    deliver_to_alice(&p.s, "two", &["2"]);
    let before = strings(ok(&poplib(p.port, "stls", PASSWORD, &["uidl", "quit"])[1]));
    p.s.signal("TERM");
    p.s.wait_exit(Duration::from_secs(60));
    // Another MDA delivers while the server is down.
    let dir = p.s.maildir(DOMAIN, "alice");
    fs::write(
        dir.join("tmp/9999999999.M1P1Q1.other"),
        b"Subject: offline\r\n\r\nz\r\n",
    )
    .unwrap();
    fs::rename(
        dir.join("tmp/9999999999.M1P1Q1.other"),
        dir.join("new/9999999999.M1P1Q1.other"),
    )
    .unwrap();
    p.s.spawn();
    p.s.wait_ready(p.s.port());
    wait_pop3(p.port);
    let after = strings(ok(&poplib(p.port, "stls", PASSWORD, &["uidl", "quit"])[1]));
    assert_eq!(after[..2], before[..]);
    assert!(after[2].starts_with("3 00000003"), "{after:?}");
}

/// POP3 logins and SMTP AUTH count towards one lockout per IP.
#[test]
fn lockout_is_shared_with_smtp_auth() {
    let p = start("plaintext_login: Always");
    let port = p.s.port();
    let same = format!("smtp.outgoing.port={port}");
    p.s.cli(&[
        "config",
        "set",
        "smtp.tls.auth_requires_tls=false",
        "smtp.outgoing.enabled=true",
        &same,
        "abuse.lockout.failures=3",
        "abuse.lockout.block_for=\"10m\"",
    ])
    .assert_ok();
    poll(DEADLINE, "the reload", || {
        let mut m = SourceClient::from("127.0.0.5", port);
        m.reply();
        m.cmd("EHLO c");
        (m.cmd(&format!("AUTH PLAIN {}", sasl_plain(ALICE, PASSWORD)))
            .0
            == 235)
            .then_some(())
    });
    // Three failed SMTP AUTHs from 127.0.0.2: its POP3 login is refused, right password or not.
    for _ in 0..3 {
        let mut m = SourceClient::from("127.0.0.2", port);
        m.reply();
        m.cmd("EHLO c");
        assert_eq!(
            m.cmd(&format!("AUTH PLAIN {}", sasl_plain(ALICE, "wrong")))
                .0,
            535
        );
    }
    let (mut c, g) = Pop3::connect("127.0.0.2", p.port);
    let refused = g.starts_with("-ERR") || c.login().starts_with("-ERR");
    assert!(refused, "POP3 after failed SMTP AUTHs: {g}");
    // And the other way: three failed POP3 logins from 127.0.0.3 lock SMTP AUTH out.
    for _ in 0..3 {
        let (mut c, _) = Pop3::connect("127.0.0.3", p.port);
        c.cmd(&format!("USER {ALICE}"));
        assert!(c.cmd("PASS wrong").starts_with("-ERR [AUTH]"));
    }
    let mut m = SourceClient::from("127.0.0.3", port);
    let (code, text) = m.reply();
    let refused = code != 220 || {
        m.cmd("EHLO c");
        m.cmd(&format!("AUTH PLAIN {}", sasl_plain(ALICE, PASSWORD)))
            .0
            != 235
    };
    assert!(refused, "SMTP after failed POP3 logins: {code} {text}");
    // Another address logs in fine.
    let (mut c, _) = Pop3::connect("127.0.0.4", p.port);
    assert!(c.login().starts_with("+OK"));
}

#[test]
fn curl_lists_and_retrieves_over_stls_and_implicit_tls() {
    let p = start("");
    deliver_to_alice(&p.s, "for curl", &["body line"]);
    let curl = |url: String, extra: &[&str]| {
        let mut cmd = Command::new("curl");
        cmd.args([
            "-s",
            "-S",
            "-k",
            "--max-time",
            "30",
            "-u",
            &format!("{ALICE}:{PASSWORD}"),
        ])
        .args(extra)
        .arg(url);
        let o = run_with_timeout(cmd, None, Duration::from_secs(60));
        assert!(o.ok(), "curl: {}", o.stderr);
        o.stdout
    };
    let list = curl(format!("pop3://127.0.0.1:{}/", p.port), &["--ssl-reqd"]);
    assert!(list.starts_with("1 "), "{list}");
    let msg = curl(format!("pop3://127.0.0.1:{}/1", p.port), &["--ssl-reqd"]);
    assert!(
        msg.contains("Subject: for curl") && msg.contains("body line"),
        "{msg}"
    );
    let msg = curl(format!("pop3s://127.0.0.1:{}/1", p.ssl_port), &[]);
    assert!(msg.contains("Subject: for curl"), "{msg}");
}

#[test]
fn fetchmail_retrieves_over_stls() {
    let p = start("plaintext_login: Never");
    deliver_to_alice(&p.s, "for fetchmail", &["fetched"]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mbox");
    let rc = dir.path().join("fetchmailrc");
    fs::write(
        &rc,
        format!(
            "poll 127.0.0.1 service {} protocol pop3 timeout 20\n  user \"{ALICE}\" password \"{PASSWORD}\"\n  sslproto 'tls1.2+' no sslcertck\n  mda \"/bin/sh -c 'cat >> {}'\"\n",
            p.port,
            out.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&rc, fs::Permissions::from_mode(0o600)).unwrap();
    let mut cmd = Command::new("fetchmail");
    cmd.args(["--fetchmailrc"])
        .arg(&rc)
        .args(["--pidfile"])
        .arg(dir.path().join("pid"))
        .args(["--nodetach", "--verbose"])
        .env("HOME", dir.path())
        .env("FETCHMAILHOME", dir.path());
    let o = run_with_timeout(cmd, None, Duration::from_secs(90));
    assert!(o.ok(), "fetchmail failed:\n{}\n{}", o.stdout, o.stderr);
    assert!(
        o.stderr.contains("STLS") || o.stdout.contains("STLS"),
        "{}",
        o.stderr
    );
    let got = fs::read_to_string(&out).unwrap();
    assert!(
        got.contains("Subject: for fetchmail") && got.contains("fetched"),
        "{got}"
    );
    // fetchmail deletes what it fetched.
    let r = poplib(p.port, "stls", PASSWORD, &["stat"]);
    assert_eq!(ok(&r[1])[0], 0);
}

#[test]
fn every_account_gets_the_special_use_folders() {
    let s = Server::start_default();
    let has = |user: &str| {
        [".Sent", ".Drafts", ".Trash", ".Junk", ".Archive"]
            .iter()
            .all(|f| s.maildir(DOMAIN, user).join(f).join("new").is_dir())
    };
    poll(DEADLINE, "alice's folders at start", || {
        has("alice").then_some(())
    });
    s.cli_stdin(
        &["account", "add", "bob@example.test", "--password-stdin"],
        "pw-bob\n",
    )
    .assert_ok();
    poll(DEADLINE, "bob's folders once his account exists", || {
        has("bob").then_some(())
    });
}

/// "Loopback" is the address, not the interface: a client on this computer connecting from a
/// non-loopback address (192.0.2.55 on `lo`, in a network namespace of the server's own) may
/// not log in without TLS, while 127.0.0.1 may.
#[test]
fn plaintext_login_is_refused_from_a_non_loopback_address() {
    let mut cfg = Config::default();
    let mut port = free_port();
    while [cfg.incoming_port, cfg.outgoing_port].contains(&port) {
        port = free_port();
    }
    cfg.pop3_ron = format!("enabled: true, port: {port}, implicit_ssl: false, listen_ip: \"\"");
    let mut s = Server::prepare(cfg);
    s.spawn_in_netns("192.0.2.55/32");
    // Listening, and so in its own namespace (nsenter must not run before `unshare` has made it).
    poll(DEADLINE, "the POP3 listener in the namespace", || {
        s.stderr().contains("POP3 listening on").then_some(())
    });
    let script = r#"
import socket, sys
src, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.create_connection(("127.0.0.1", port), timeout=20, source_address=(src, 0))
f = s.makefile("rb")
def cmd(line):
    if line: s.sendall(line.encode() + b"\r\n")
    return f.readline().decode().strip()
print(cmd(""))
print(cmd("USER " + user))
print(cmd("PASS " + pw))
"#;
    let run = |src: &str| {
        let mut c = s.in_netns("/usr/bin/python3");
        c.arg("-c")
            .arg(script)
            .args([src, &port.to_string(), ALICE, PASSWORD]);
        let o = run_with_timeout(c, None, Duration::from_secs(60));
        assert!(o.ok(), "{}\n{}\n{}", o.stdout, o.stderr, s.stderr());
        o.stdout.lines().map(String::from).collect::<Vec<_>>()
    };
    let from_loopback = run("127.0.0.1");
    assert!(from_loopback[0].starts_with("+OK"), "{from_loopback:?}");
    assert!(
        from_loopback[2].starts_with("+OK Logged in"),
        "{from_loopback:?}"
    );
    let from_other = run("192.0.2.55");
    assert!(from_other[0].starts_with("+OK"), "{from_other:?}");
    assert!(from_other[1].starts_with("-ERR [AUTH]"), "{from_other:?}");
    assert!(from_other[2].starts_with("-ERR"), "{from_other:?}");
}

/// A `kill -9` during the UPDATE state (QUIT after DELE of everything) leaves a mailbox the
/// next session reads whole: each message is there or not, the UIDLs of those left are
/// their old ones, and every one listed can be retrieved.
#[test]
fn a_kill_during_update_leaves_a_consistent_mailbox() {
    let mut p = start("");
    let dir = p.s.maildir(DOMAIN, "alice");
    // Many messages, written as another MDA would, so the deletions take a while.
    for i in 0..400 {
        let name = format!("{}.M{i}P1Q{i}.other", 1_700_000_000 + i);
        fs::write(
            dir.join("tmp").join(&name),
            format!("Subject: {i}\r\n\r\nx\r\n"),
        )
        .unwrap();
        fs::rename(dir.join("tmp").join(&name), dir.join("new").join(&name)).unwrap();
    }
    let (mut c, _) = Pop3::connect("127.0.0.1", p.port);
    assert!(c.login().starts_with("+OK"));
    assert!(c.cmd("UIDL").starts_with("+OK"));
    let before = c.body();
    assert_eq!(before.len(), 400);
    for i in 1..=400 {
        assert!(c.cmd(&format!("DELE {i}")).starts_with("+OK"));
    }
    c.w.write_all(b"QUIT\r\n").unwrap();
    p.s.kill_and_restart();
    wait_pop3(p.port);
    let (mut c, _) = Pop3::connect("127.0.0.1", p.port);
    assert!(c.login().starts_with("+OK"));
    assert!(c.cmd("UIDL").starts_with("+OK"));
    let after = c.body();
    let uidl = |l: &String| l.split(' ').nth(1).unwrap().to_string();
    let old: Vec<String> = before.iter().map(uidl).collect();
    for l in &after {
        assert!(old.contains(&uidl(l)), "{l} was not there before the kill");
    }
    for i in 1..=after.len() {
        assert!(c.cmd(&format!("RETR {i}")).starts_with("+OK"), "RETR {i}");
        let body = c.body();
        assert!(body.iter().any(|l| l.starts_with("Subject: ")), "{body:?}");
    }
    assert!(c.cmd("QUIT").starts_with("+OK"));
}

/// Max Connections per POP3 port, and the per-IP limit counted across SMTP and POP3.
#[test]
fn connection_limits_per_port_and_per_ip_across_protocols() {
    let p = start("max_connections: 2");
    // Two sessions (once the probe of `start` has been let go).
    let (_a, _b) = poll(DEADLINE, "two POP3 sessions", || {
        let (a, g1) = Pop3::connect("127.0.0.1", p.port);
        let (b, g2) = Pop3::connect("127.0.0.1", p.port);
        (g1.starts_with("+OK") && g2.starts_with("+OK")).then_some((a, b))
    });
    let (mut c, g3) = Pop3::connect("127.0.0.1", p.port);
    assert!(g3.starts_with("-ERR [SYS/TEMP]"), "{g3}");
    assert_eq!(c.line(), "", "closed after the refusal");
    drop((_a, _b));

    p.s.cli(&["config", "set", "abuse.max_connections_per_ip=2"])
        .assert_ok();
    let smtp = p.s.port();
    poll(DEADLINE, "the per-IP limit", || {
        let x = SourceClient::from("127.0.0.7", smtp);
        let y = SourceClient::from("127.0.0.7", smtp);
        let (_, g) = Pop3::connect("127.0.0.7", p.port);
        drop((x, y));
        g.starts_with("-ERR").then_some(())
    });
    // Two SMTP sessions from 127.0.0.6 use up its allowance: POP3 from it is refused, POP3
    // from another address is not.
    let mut x = SourceClient::from("127.0.0.6", smtp);
    let mut y = SourceClient::from("127.0.0.6", smtp);
    assert_eq!(x.reply().0, 220);
    assert_eq!(y.reply().0, 220);
    let (_, g) = Pop3::connect("127.0.0.6", p.port);
    assert!(g.starts_with("-ERR [SYS/TEMP]"), "{g}");
    let (_, g) = Pop3::connect("127.0.0.8", p.port);
    assert!(g.starts_with("+OK"), "{g}");
}

/// A POP3 port that cannot be bound is reported like an SMTP listener's and stops nothing
/// else; and no password reaches the log.
#[test]
fn an_unbindable_pop3_port_stops_nothing_and_passwords_are_not_logged() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().port();
    let mut ssl_port = 0;
    let s = Server::start_with(|c| {
        while ssl_port == 0 || [c.incoming_port, c.outgoing_port].contains(&ssl_port) {
            ssl_port = free_port();
        }
        c.pop3_ron =
            format!("enabled: true, port: {busy}, ssl_port: {ssl_port}, listen_ip: \"127.0.0.1\"");
        // Every command in the log file, so that the redaction is seen.
        c.extra_ron = "logs: (level: Debug),".into();
    });
    poll(DEADLINE, "the POP3 bind error in the log", || {
        s.stderr()
            .contains(&format!("POP3 cannot listen on 127.0.0.1:{busy}"))
            .then_some(())
    });
    // SMTP and the implicit-TLS POP3 port work.
    s.connect();
    let r = poplib(ssl_port, "implicit", PASSWORD, &["stat", "quit"]);
    ok(&r[0]);
    let r = poplib(ssl_port, "implicit", "not-the-password", &[]);
    assert_eq!(r[0]["ok"], false);
    // The daily log file has the commands (logs.level Debug, set above).
    let log = poll(DEADLINE, "the commands in the log file", || {
        let text: String = list_files(&s.data_dir.join("logs"))
            .iter()
            .map(|f| fs::read_to_string(f).unwrap_or_default())
            .collect();
        (text.contains("PASS ****") && text.contains("authentication failed")).then_some(text)
    });
    assert!(
        !log.contains(PASSWORD) && !log.contains("not-the-password"),
        "a password in the log:\n{log}"
    );
    drop(taken);
}
