//! Inbound message authentication end to end: clients on loopback addresses (127.0.0.2 is
//! allowed by the senders' SPF records, 127.0.0.3 is not) send to alice over the incoming
//! SMTP; a dnsmasq serves the senders' SPF, DKIM and DMARC records; messages are signed with
//! Debian's dkimpy (`tests/peers/dkim_sign.py`) with an RSA key made by openssl; and what
//! arrives in alice's Maildir is read back with Python's `email` parser
//! (`tests/peers/auth_results.py`): the `Authentication-Results:` field with our host name as
//! authserv-id and each method's result; DMARC's reject/quarantine policies refused or tagged
//! by `auth.dmarc.action`; forged `Authentication-Results:` fields with our authserv-id cut;
//! and a `From:` the login may not use refused when `access.sender_must_match_login` is on.

mod common;
mod dns_common;

use common::{ALICE, HOSTNAME, PASSWORD, Server, SourceClient, peer_script, poll, sasl_plain};
use dns_common::DnsServer;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// An RSA key pair for the senders' signatures: the private key file and the `p=` value.
struct Key {
    _dir: tempfile::TempDir,
    pem: PathBuf,
    public: String,
}

fn key() -> Key {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("key.pem");
    let st = Command::new("openssl")
        .args(["genrsa", "-traditional", "-out"])
        .arg(&pem)
        .arg("2048")
        .stderr(Stdio::null())
        .status()
        .expect("openssl (Debian package openssl)");
    assert!(st.success());
    let out = Command::new("openssl")
        .args(["rsa", "-pubout", "-outform", "DER", "-in"])
        .arg(&pem)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    Key {
        _dir: dir,
        pem,
        public: common::base64(&out.stdout),
    }
}

/// A dnsmasq TXT record; long values split into strings of at most 200 characters.
fn txt(name: &str, value: &str) -> String {
    let parts: Vec<String> = value
        .as_bytes()
        .chunks(200)
        .map(|c| format!("\"{}\"", std::str::from_utf8(c).unwrap()))
        .collect();
    format!("txt-record={name},{}\n", parts.join(","))
}

/// The senders' records. good.test: SPF for 127.0.0.2, a DKIM key, `p=reject`. soft.test:
/// `~all`. temp.test: an include nobody answers for (REFUSED: temperror). quar.test:
/// `p=quarantine`. lax.test: `p=none`. relaxed.test and strict.test (`aspf=s; adkim=s`):
/// `p=reject`, with SPF and a DKIM key on their `mail.` subdomains only.
fn zone(key: &Key) -> String {
    let dkim = format!("v=DKIM1; k=rsa; p={}", key.public);
    let mut z = String::from("local=/test/\n");
    z += &txt("good.test", "v=spf1 ip4:127.0.0.2 -all");
    z += &txt("sel._domainkey.good.test", &dkim);
    z += &txt("_dmarc.good.test", "v=DMARC1; p=reject");
    z += &txt("soft.test", "v=spf1 ip4:127.0.0.2 ~all");
    z += &txt("temp.test", "v=spf1 include:elsewhere.example -all");
    z += &txt("quar.test", "v=spf1 ip4:127.0.0.2 -all");
    z += &txt("_dmarc.quar.test", "v=DMARC1; p=quarantine");
    z += &txt("lax.test", "v=spf1 ip4:127.0.0.2 -all");
    z += &txt("_dmarc.lax.test", "v=DMARC1; p=none");
    for d in ["relaxed.test", "strict.test"] {
        z += &txt(&format!("mail.{d}"), "v=spf1 ip4:127.0.0.2 -all");
        z += &txt(&format!("sel._domainkey.mail.{d}"), &dkim);
    }
    z += &txt("_dmarc.relaxed.test", "v=DMARC1; p=reject");
    z += &txt("_dmarc.strict.test", "v=DMARC1; p=reject; aspf=s; adkim=s");
    z
}

/// A server with AUTH offered on its one listener, asking `dns`, `extra` config assignments.
fn server(dns: &DnsServer, extra: &[&str]) -> Server {
    let mut s = Server::prepare(common::Config::default());
    let port = s.cfg.incoming_port;
    let same = format!("smtp.outgoing.port={port}");
    let hosts = format!("outgoing_mails.dns_hosts=[\"{}\"]", dns.addr);
    let mut args = vec![
        "config",
        "set",
        "smtp.tls.auth_requires_tls=false",
        "smtp.outgoing.enabled=true",
        &same,
        &hosts,
    ];
    args.extend_from_slice(extra);
    s.cli(&args).assert_ok();
    s.spawn();
    s.wait_ready(port);
    s
}

/// A message from `from` to alice, CRLF lines, the subject naming it.
fn message(from: &str, subject: &str) -> String {
    format!(
        "From: Bob <{from}>\r\nTo: <{ALICE}>\r\nSubject: {subject}\r\n\
         Date: Wed, 02 Dec 2026 10:00:00 +0000\r\nMessage-ID: <{subject}@client.test>\r\n\
         \r\nHello Alice,\r\nthis is {subject}.\r\n"
    )
}

/// `msg` signed by dkimpy for `domain` with `selector`.
fn sign(key: &Key, msg: &str, domain: &str, selector: &str) -> String {
    let mut child = Command::new("/usr/bin/python3")
        .arg(peer_script("dkim_sign.py"))
        .arg(&key.pem)
        .args([domain, selector])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 with python3-dkim");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(msg.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Sends `msg` from the address `src` with the envelope sender `mail_from`; the reply to
/// the end of DATA.
fn send(port: u16, src: &str, mail_from: &str, msg: &str) -> (u16, String) {
    let mut c = SourceClient::from(src, port);
    assert_eq!(c.reply().0, 220);
    assert_eq!(c.cmd("EHLO client.test").0, 250);
    let (code, text) = c.cmd(&format!("MAIL FROM:<{mail_from}>"));
    assert_eq!(code, 250, "{text}");
    assert_eq!(c.cmd(&format!("RCPT TO:<{ALICE}>")).0, 250);
    assert_eq!(c.cmd("DATA").0, 354);
    c.cmd(&format!("{msg}."))
}

/// Alice's mail whose subject is `subject`.
fn delivered(s: &Server, subject: &str) -> String {
    let line = format!("Subject: {subject}\r\n");
    poll(WAIT, subject, || {
        s.alice_mails().into_iter().find(|m| m.contains(&line))
    })
}

/// The `Authentication-Results:` fields of `mail` as Python's email parser reads them:
/// (authserv-id, method -> result) each.
fn results(mail: &str) -> Vec<(String, HashMap<String, String>)> {
    let mut child = Command::new("/usr/bin/python3")
        .arg(peer_script("auth_results.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(mail.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let mut id = String::new();
            let mut m = HashMap::new();
            for w in l.split_whitespace() {
                let (k, v) = w.split_once('=').unwrap();
                if k == "id" {
                    id = v.to_string();
                } else {
                    m.insert(k.to_string(), v.to_string());
                }
            }
            (id, m)
        })
        .collect()
}

/// The one field with our authserv-id, checked to be the only one of ours.
fn ours(mail: &str) -> HashMap<String, String> {
    let mut fields: Vec<_> = results(mail)
        .into_iter()
        .filter(|(id, _)| id == HOSTNAME)
        .collect();
    assert_eq!(fields.len(), 1, "one field of ours in:\n{mail}");
    fields.pop().unwrap().1
}

/// Asserts `spf`, `dkim`, `dmarc` results of the message `subject`.
fn assert_results(s: &Server, subject: &str, spf: &str, dkim: &str, dmarc: &str) -> String {
    let mail = delivered(s, subject);
    let r = ours(&mail);
    let got = |m: &str| r.get(m).map(String::as_str).unwrap_or("(missing)");
    assert_eq!(
        (got("spf"), got("dkim"), got("dmarc")),
        (spf, dkim, dmarc),
        "{subject}:\n{mail}"
    );
    mail
}

fn log_text(s: &Server) -> String {
    common::list_files(&s.data_dir.join("logs"))
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect()
}

#[test]
fn spf_dkim_and_dmarc_results_are_in_authentication_results() {
    let key = key();
    let dns = DnsServer::start(&zone(&key));
    let s = server(&dns, &[]);
    let port = s.cfg.incoming_port;
    let ok = |(code, text): (u16, String)| assert_eq!(code, 250, "{text}");

    // DKIM pass, SPF pass, DMARC pass.
    let m = sign(
        &key,
        &message("bob@good.test", "all-pass"),
        "good.test",
        "sel",
    );
    ok(send(port, "127.0.0.2", "bob@good.test", &m));
    let mail = assert_results(&s, "all-pass", "pass", "pass", "pass");
    assert!(!mail.contains("X-Postern-Warning"), "{mail}");
    // The field is written with the trace fields, before the message's own header.
    let at = |f: &str| mail.find(f).unwrap();
    assert!(
        at("Received: ") < at("Authentication-Results: ")
            && at("Authentication-Results: ") < at("From: Bob")
    );

    // A message past what is kept in memory (its body goes to a file as it arrives): the
    // body hash is computed over the file in chunks.
    let lines: String = (0..6000)
        .map(|i| format!("line {i} of a long message, long enough to need a few chunks\r\n"))
        .collect();
    let big = message("bob@good.test", "big")
        .replace("this is big.\r\n", &format!("this is big.\r\n{lines}"));
    assert!(big.len() > 300 * 1024);
    let m = sign(&key, &big, "good.test", "sel");
    ok(send(port, "127.0.0.2", "bob@good.test", &m));
    assert_results(&s, "big", "pass", "pass", "pass");

    // Seven signatures: the first five (the last five made, all without a key) are checked.
    let mut m = sign(&key, &message("bob@good.test", "many"), "good.test", "sel");
    for _ in 0..6 {
        m = sign(&key, &m, "good.test", "gone");
    }
    ok(send(port, "127.0.0.2", "bob@good.test", &m));
    let mail = assert_results(&s, "many", "pass", "permerror", "pass");
    let ar =
        &mail[mail.find("Authentication-Results:").unwrap()..mail.find("DKIM-Signature:").unwrap()];
    assert_eq!(ar.matches("dkim=permerror").count(), 5, "{ar}");
    assert!(!ar.contains("dkim=pass"), "{ar}");

    // The body altered after signing: DKIM fails; SPF still aligns, so DMARC passes.
    let m = sign(
        &key,
        &message("bob@good.test", "altered"),
        "good.test",
        "sel",
    )
    .replace("this is altered.", "this is altered!");
    ok(send(port, "127.0.0.2", "bob@good.test", &m));
    assert_results(&s, "altered", "pass", "fail", "pass");

    // A selector with no key published.
    let m = sign(
        &key,
        &message("bob@good.test", "no-key"),
        "good.test",
        "gone",
    );
    ok(send(port, "127.0.0.2", "bob@good.test", &m));
    assert_results(&s, "no-key", "pass", "permerror", "pass");

    // SPF fail from an address good.test does not allow, no signature: DMARC fails under
    // p=reject, and the default action tags.
    ok(send(
        port,
        "127.0.0.3",
        "bob@good.test",
        &message("bob@good.test", "spf-fail"),
    ));
    let mail = assert_results(&s, "spf-fail", "fail", "none", "fail");
    assert!(
        mail.contains("X-Postern-Warning: DMARC fail for good.test (its policy: reject)"),
        "{mail}"
    );

    // softfail and temperror.
    ok(send(
        port,
        "127.0.0.3",
        "bob@soft.test",
        &message("bob@soft.test", "soft"),
    ));
    assert_results(&s, "soft", "softfail", "none", "none");
    ok(send(
        port,
        "127.0.0.3",
        "bob@temp.test",
        &message("bob@temp.test", "temp"),
    ));
    assert_results(&s, "temp", "temperror", "none", "none");

    // DMARC fail under p=none: reported, not tagged; under p=quarantine: tagged.
    ok(send(
        port,
        "127.0.0.3",
        "bob@lax.test",
        &message("bob@lax.test", "lax"),
    ));
    let mail = assert_results(&s, "lax", "fail", "none", "fail");
    assert!(!mail.contains("X-Postern-Warning"), "{mail}");
    ok(send(
        port,
        "127.0.0.3",
        "bob@quar.test",
        &message("bob@quar.test", "quar"),
    ));
    let mail = assert_results(&s, "quar", "fail", "none", "fail");
    assert!(
        mail.contains("X-Postern-Warning: DMARC fail for quar.test (its policy: quarantine)"),
        "{mail}"
    );

    // Alignment: SPF passes for mail.DOMAIN, the From: is DOMAIN. Relaxed aligns, strict not.
    ok(send(
        port,
        "127.0.0.2",
        "bob@mail.relaxed.test",
        &message("bob@relaxed.test", "spf-relaxed"),
    ));
    assert_results(&s, "spf-relaxed", "pass", "none", "pass");
    ok(send(
        port,
        "127.0.0.2",
        "bob@mail.strict.test",
        &message("bob@strict.test", "spf-strict"),
    ));
    assert_results(&s, "spf-strict", "pass", "none", "fail");
    // The same with DKIM (d=mail.DOMAIN) and no SPF-authorized address.
    let m = sign(
        &key,
        &message("bob@relaxed.test", "dkim-relaxed"),
        "mail.relaxed.test",
        "sel",
    );
    ok(send(port, "127.0.0.3", "bob@mail.relaxed.test", &m));
    assert_results(&s, "dkim-relaxed", "fail", "pass", "pass");
    let m = sign(
        &key,
        &message("bob@strict.test", "dkim-strict"),
        "mail.strict.test",
        "sel",
    );
    ok(send(port, "127.0.0.3", "bob@mail.strict.test", &m));
    assert_results(&s, "dkim-strict", "fail", "pass", "fail");

    // Live Logs: one line per message with each result and the session id.
    let text = poll(WAIT, "the results in the log", || {
        let t = log_text(&s);
        t.contains("the first 5 checked").then_some(t)
    });
    let line = text
        .lines()
        .find(|l| l.contains("spf=pass (good.test) dkim=pass (good.test s=sel) dmarc=pass"))
        .unwrap_or_else(|| panic!("no results line in:\n{text}"));
    // `[SESSION] message SESSION.1: ...`
    let session = line
        .split('[')
        .nth(1)
        .and_then(|r| r.split(']').next())
        .unwrap();
    assert!(line.contains(&format!("message {session}.1: ")), "{line}");
}

#[test]
fn dmarc_reject_action_refuses_at_end_of_data() {
    let key = key();
    let dns = DnsServer::start(&zone(&key));
    let s = server(&dns, &["auth.dmarc.action=Refuse"]);
    let port = s.cfg.incoming_port;
    for (domain, policy) in [("good.test", "reject"), ("quar.test", "quarantine")] {
        let (code, text) = send(
            port,
            "127.0.0.3",
            &format!("bob@{domain}"),
            &message(&format!("bob@{domain}"), "refused"),
        );
        assert_eq!(code, 550, "{text}");
        assert!(
            text.contains("5.7.1") && text.contains(domain) && text.contains(policy),
            "{text}"
        );
    }
    // p=none is only reported; a passing message is delivered.
    let (code, text) = send(
        port,
        "127.0.0.3",
        "bob@lax.test",
        &message("bob@lax.test", "lax"),
    );
    assert_eq!(code, 250, "{text}");
    let m = sign(
        &key,
        &message("bob@good.test", "signed"),
        "good.test",
        "sel",
    );
    let (code, text) = send(port, "127.0.0.3", "bob@good.test", &m);
    assert_eq!(
        code, 250,
        "DKIM aligned passes DMARC though SPF fails: {text}"
    );
    assert_results(&s, "signed", "fail", "pass", "pass");
    assert!(
        s.alice_mails()
            .iter()
            .all(|m| !m.contains("Subject: refused"))
    );
    // DKIM verification cannot be turned off under DMARC: the field path says why.
    let out = s.cli(&["config", "set", "auth.dkim.verify=false"]);
    out.assert_failed();
    assert!(
        out.stderr.contains("auth.dmarc.enabled") && out.stderr.contains("auth.dkim.verify"),
        "{}",
        out.stderr
    );
    // DMARC turned off: the same message is delivered and its DMARC not checked.
    s.cli(&["config", "set", "auth.dmarc.enabled=false"])
        .assert_ok();
    poll(WAIT, "the reload", || {
        let (code, _) = send(
            port,
            "127.0.0.3",
            "bob@good.test",
            &message("bob@good.test", "dmarc-off"),
        );
        (code == 250).then_some(())
    });
    assert_results(&s, "dmarc-off", "fail", "none", "none");
}

#[test]
fn forged_authentication_results_are_removed() {
    let key = key();
    let dns = DnsServer::start(&zone(&key));
    let s = server(&dns, &[]);
    let port = s.cfg.incoming_port;
    let forged = format!(
        "Authentication-Results: {}; spf=pass;\r\n\tdkim=pass header.d=lax.test;\r\n\tdmarc=pass\r\n\
         Authentication-Results: other.example; spf=pass smtp.mailfrom=lax.test\r\n\
         authentication-results:   (a comment) {}; dmarc=pass\r\n",
        HOSTNAME.to_uppercase(),
        HOSTNAME
    );
    let msg = format!("{forged}{}", message("bob@lax.test", "forged"));
    let (code, text) = send(port, "127.0.0.3", "bob@lax.test", &msg);
    assert_eq!(code, 250, "{text}");
    let mail = delivered(&s, "forged");
    // Ours says what we found; the other host's field is kept; the forged ones are gone.
    assert_results(&s, "forged", "fail", "none", "fail");
    let all = results(&mail);
    assert_eq!(all.len(), 2, "{mail}");
    assert!(
        all.iter()
            .any(|(id, r)| id == "other.example" && r["spf"] == "pass"),
        "{mail}"
    );
    assert!(
        !mail.contains("(a comment)") && !mail.contains("header.d=lax.test"),
        "{mail}"
    );
    assert!(
        mail.contains("\r\nSubject: forged\r\nDate: ")
            && mail.ends_with("\r\n\r\nHello Alice,\r\nthis is forged.\r\n"),
        "{mail}"
    );
    let log = poll(WAIT, "the removal in the log", || {
        let t = log_text(&s);
        t.contains("removed").then_some(t)
    });
    assert!(
        log.contains(&format!(
            "2 Authentication-Results field(s) claiming {HOSTNAME} removed"
        )),
        "{log}"
    );
}

/// A logged-in alice sending a message whose `From:` is `from`; the reply to its end.
fn submit(port: u16, from: &str, subject: &str) -> (u16, String) {
    let mut c = SourceClient::from("127.0.0.3", port);
    assert_eq!(c.reply().0, 220);
    assert_eq!(c.cmd("EHLO client.test").0, 250);
    let (code, text) = c.cmd(&format!("AUTH PLAIN {}", sasl_plain(ALICE, PASSWORD)));
    assert_eq!(code, 235, "{text}");
    assert_eq!(c.cmd(&format!("MAIL FROM:<{ALICE}>")).0, 250);
    assert_eq!(c.cmd(&format!("RCPT TO:<{ALICE}>")).0, 250);
    assert_eq!(c.cmd("DATA").0, 354);
    c.cmd(&format!("{}.", message(from, subject)))
}

#[test]
fn from_header_must_match_the_login_when_required() {
    let key = key();
    let dns = DnsServer::start(&zone(&key));
    let s = server(&dns, &["access.sender_must_match_login=true"]);
    let port = s.cfg.incoming_port;
    let (code, text) = submit(port, "mallory@good.test", "not-mine");
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("5.7.1") && text.contains("From:"), "{text}");
    let log = poll(WAIT, "the refusal in the log", || {
        let t = log_text(&s);
        t.contains("From: mallory@good.test refused").then_some(t)
    });
    assert!(log.contains(&format!("logged in as {ALICE}")), "{log}");
    let (code, text) = submit(port, &ALICE.to_uppercase(), "mine");
    assert_eq!(code, 250, "{text}");
    // A logged-in client's mail gets no Authentication-Results (it is not inbound mail).
    let mail = delivered(&s, "mine");
    assert!(results(&mail).is_empty(), "{mail}");
    s.cli(&["config", "set", "access.sender_must_match_login=false"])
        .assert_ok();
    poll(WAIT, "the reload", || {
        (submit(port, "mallory@good.test", "allowed").0 == 250).then_some(())
    });
    delivered(&s, "allowed");
}
