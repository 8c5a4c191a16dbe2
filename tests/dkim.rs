//! DKIM signing end to end, with real peers: a logged-in user submits to `postern serve`, the
//! queue delivers through a domain map to Postfix's smtp-sink, and two verifiers that are not
//! ours, Debian's dkimpy (`python3-dkim`, tests/peers/dkim_verify.py) and Mail::DKIM
//! (`libmail-dkim-perl`, tests/peers/dkim_verify.pl), verify what arrived against the keys
//! `postern dkim show` prints, published as TXT records in a dnsmasq. RSA and Ed25519;
//! dot-leading lines, trailing white space and blank lines; an empty body; long folded
//! headers; 8-bit content to a sink without 8BITMIME (converted, then signed); a `From:` that
//! is not ours is not signed; `dkim rotate` on a running server signs with the new key; a
//! submission without `Date:` or `Message-ID:` gets them (RFC 6409 8), before it is signed.

mod common;
mod dns_common;

use common::{ALICE, DOMAIN, PASSWORD, Server, peer_script, poll, sasl_plain};
use dns_common::{DnsServer, Sink};
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

/// A server relaying for alice, far.test routed to `sink`, `extra` config assignments.
fn server(sink: &Sink, extra: &[&str]) -> Server {
    let s = Server::prepare(common::Config::default());
    let port = s.cfg.incoming_port;
    let route = format!(
        "outgoing_mails.domain_maps=[(domain: \"far.test\", host: \"127.0.0.1\", port: {})]",
        sink.port()
    );
    let same = format!("smtp.outgoing.port={port}");
    let mut args = vec![
        "config",
        "set",
        "smtp.outgoing.enabled=true",
        "smtp.tls.auth_requires_tls=false",
        "outgoing_mails.resend_delay=\"1s\"",
        "outgoing_mails.outbound_tls=None",
        &route,
        &same,
    ];
    args.extend_from_slice(extra);
    s.cli(&args).assert_ok();
    s
}

/// The (name, TXT value) pairs `postern dkim show DOMAIN` prints.
fn records(s: &Server) -> Vec<(String, String)> {
    let out = s.cli(&["dkim", "show", DOMAIN]);
    out.assert_ok();
    let mut names = Vec::new();
    let mut values = Vec::new();
    for l in out.stdout.lines() {
        if let Some(n) = l.trim().strip_prefix("name:") {
            names.push(n.trim().to_string());
        }
        if let Some(v) = l.trim().strip_prefix("value:") {
            values.push(v.trim().to_string());
        }
    }
    assert!(!names.is_empty(), "{}", out.stdout);
    names.into_iter().zip(values).collect()
}

/// A dnsmasq serving `records` as TXT (values split in strings of 255 octets at most).
fn dns(records: &[(String, String)]) -> DnsServer {
    let zone: String = records
        .iter()
        .map(|(name, value)| {
            let parts: Vec<String> = value
                .as_bytes()
                .chunks(255)
                .map(|c| format!("\"{}\"", std::str::from_utf8(c).unwrap()))
                .collect();
            format!("txt-record={name},{}\n", parts.join(","))
        })
        .collect();
    DnsServer::start(&zone)
}

/// Submits `message` (header section and body, CRLF, no final dot) from alice to bob@far.test.
fn submit(s: &Server, message: &str) {
    let mut c = s.connect();
    c.ehlo();
    c.expect(
        &format!("AUTH PLAIN {}", sasl_plain(ALICE, PASSWORD)),
        235,
        "2.7.0",
    );
    c.expect(&format!("MAIL FROM:<{ALICE}>"), 250, "");
    c.expect("RCPT TO:<bob@far.test>", 250, "2.1.5");
    c.expect("DATA", 354, "");
    // Dot-stuffing for the submission itself.
    let stuffed: String = message
        .split("\r\n")
        .map(|l| {
            if l.starts_with('.') {
                format!(".{l}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n");
    let r = c.cmd(&format!("{stuffed}\r\n."));
    assert_eq!(r.code, 250, "{}", r.text());
    c.cmd("QUIT");
}

/// The `n`th mail the sink received, whole: smtp-sink writes the file as it reads the mail
/// and ends it with an empty line; then it must not change for a moment.
fn received(sink: &Sink, n: usize) -> String {
    poll(LONG, &format!("mail {n} whole at the sink"), || {
        let first = sink
            .mails()
            .get(n)
            .cloned()
            .filter(|m| m.ends_with("\n\n"))?;
        std::thread::sleep(Duration::from_millis(200));
        let again = sink.mails().get(n).cloned()?;
        (again == first).then_some(first)
    })
}

/// A third-party DKIM verifier, each a script in tests/peers looking keys up in the dnsmasq.
#[derive(Clone, Copy, Debug)]
enum Verifier {
    /// dkimpy (`python3-dkim`), tests/peers/dkim_verify.py.
    Dkimpy,
    /// Mail::DKIM (`libmail-dkim-perl`), tests/peers/dkim_verify.pl.
    MailDkim,
}

/// dkimpy's verdict on `mail`: (exit code, its lines).
fn verify(dns: &DnsServer, mail: &str) -> (i32, String) {
    verify_with(Verifier::Dkimpy, dns, mail)
}

/// `verifier`'s verdict on `mail`: (exit code, its lines). Both exit 0 when every signature
/// passes, 1 when one fails, 2 when there is none.
fn verify_with(verifier: Verifier, dns: &DnsServer, mail: &str) -> (i32, String) {
    let (bin, script) = match verifier {
        Verifier::Dkimpy => ("/usr/bin/python3", "dkim_verify.py"),
        Verifier::MailDkim => ("/usr/bin/perl", "dkim_verify.pl"),
    };
    let mut child = Command::new(bin)
        .arg(peer_script(script))
        .arg(&dns.addr)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{bin} for {verifier:?}: {e}"));
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(mail.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Both verifiers pass `mail`'s `signatures` signatures. Mail::DKIM must pass every RSA one;
/// an Ed25519 one it may call unsupported (Debian 12's Mail::DKIM 1.20230212 has no
/// ed25519-sha256; a later one verifies it), never failed.
fn assert_verifies(dns: &DnsServer, mail: &str, signatures: usize) {
    let (code, text) = verify(dns, mail);
    assert_eq!(code, 0, "dkimpy: {text}\nmail:\n{mail}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with("pass ")).count(),
        signatures,
        "{text}"
    );
    let (code, text) = verify_with(Verifier::MailDkim, dns, mail);
    assert_eq!(code, 0, "Mail::DKIM: {text}\nmail:\n{mail}");
    let rsa = mail.matches("a=rsa-sha256;").count();
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("pass ") && l.contains("a=rsa-sha256"))
            .count(),
        rsa,
        "Mail::DKIM: {text}"
    );
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("pass ") || l.starts_with("unsupported "))
            .count(),
        signatures,
        "Mail::DKIM: {text}"
    );
}

/// Neither verifier passes `mail`.
fn assert_fails(dns: &DnsServer, mail: &str) {
    for v in [Verifier::Dkimpy, Verifier::MailDkim] {
        let (code, text) = verify_with(v, dns, mail);
        assert_eq!(code, 1, "{v:?}: {text}");
    }
}

const PLAIN: &str = "From: Alice <alice@example.test>\r\nTo: bob@far.test\r\n\
    Subject: plain\r\nDate: Wed, 02 Dec 2026 10:00:00 +0000\r\n\
    Message-ID: <plain@example.test>\r\n\r\n\
    Hello Bob,\r\n.a line that starts with a dot\r\n..and two\r\ntrailing white space  \t\r\n\
    \r\n\r\n";

#[test]
fn rsa_signatures_verify_and_foreign_mail_is_not_signed() {
    let sink = Sink::start(Ipv4Addr::LOCALHOST, 0, &[]);
    let mut s = server(&sink, &[]);
    let recs = records(&s);
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert!(recs[0].0.starts_with('p') && recs[0].0.ends_with("._domainkey.example.test"));
    assert!(recs[0].1.starts_with("v=DKIM1; k=rsa; p="), "{recs:?}");
    let dns = dns(&recs);
    s.spawn();
    s.wait_ready(s.cfg.incoming_port);

    // 0: CRLF lines, dot-leading lines (stuffed on the wire, signed unstuffed), trailing
    // white space and blank lines.
    submit(&s, PLAIN);
    let mail = received(&sink, 0);
    assert!(
        mail.contains("DKIM-Signature: v=1; a=rsa-sha256;"),
        "{mail}"
    );
    assert!(mail.contains("c=relaxed/relaxed"), "{mail}");
    // From is listed twice (oversigned), the present headers first.
    let unfolded = mail.replace("\n\t", "");
    assert!(
        unfolded.contains("h=Message-ID:Date:Subject:To:From:From:"),
        "{mail}"
    );
    assert_verifies(&dns, &mail, 1);
    // The body as sent verifies: a changed one does not.
    assert_fails(&dns, &mail.replace("Hello Bob", "Hello Eve"));
    // A second From: added later does not verify (From is oversigned).
    let forged = mail.replacen("From: Alice", "From: eve@evil.test\nFrom: Alice", 1);
    for v in [Verifier::Dkimpy, Verifier::MailDkim] {
        let (code, text) = verify_with(v, &dns, &forged);
        assert_ne!(code, 0, "{v:?}: {text}");
    }

    // 1: an empty body.
    submit(
        &s,
        "From: alice@example.test\r\nTo: bob@far.test\r\nSubject: empty\r\n\r\n",
    );
    assert_verifies(&dns, &received(&sink, 1), 1);

    // 2: long folded header fields.
    let long_subject = (0..40).map(|i| format!("word{i}")).collect::<Vec<_>>();
    let subject = long_subject.join("\r\n ");
    let cc = (0..30)
        .map(|i| format!("person{i}@far.test"))
        .collect::<Vec<_>>()
        .join(",\r\n\t");
    submit(
        &s,
        &format!(
            "From: alice@example.test\r\nTo: bob@far.test\r\nCc: {cc}\r\n\
             Subject: {subject}\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain;\r\n  charset=us-ascii;\r\n  format=flowed\r\n\r\n\
             body\r\n"
        ),
    );
    let mail = received(&sink, 2);
    assert!(mail.contains("word39"), "{mail}");
    assert_verifies(&dns, &mail, 1);

    // 3: a From: that is not one of our domains: sent unsigned.
    submit(
        &s,
        "From: someone@elsewhere.test\r\nTo: bob@far.test\r\nSubject: foreign\r\n\r\nhi\r\n",
    );
    let mail = received(&sink, 3);
    assert!(mail.contains("Subject: foreign"), "{mail}");
    assert!(!mail.contains("DKIM-Signature"), "{mail}");
    for v in [Verifier::Dkimpy, Verifier::MailDkim] {
        assert_eq!(verify_with(v, &dns, &mail).0, 2, "{v:?}");
    }

    // Rotation on the running server: the new key signs at once, the old one stays listed.
    let out = s.cli(&["dkim", "rotate", DOMAIN]);
    out.assert_ok();
    let recs2 = records(&s);
    assert_eq!(recs2.len(), 2, "{recs2:?}");
    let show = s.cli(&["dkim", "show", DOMAIN]).stdout;
    assert!(show.contains("old:"), "{show}");
    let old = recs[0].0.split('.').next().unwrap().to_string();
    let new = recs2[1].0.split('.').next().unwrap().to_string();
    assert_ne!(old, new);
    let refused = s.cli(&["dkim", "remove", DOMAIN, &new]);
    refused.assert_failed();
    let dns2 = self::dns(&recs2);
    submit(&s, PLAIN);
    let mail = received(&sink, 4);
    assert!(mail.contains(&format!("s={new};")), "{mail}");
    assert_verifies(&dns2, &mail, 1);
    s.cli(&["dkim", "remove", DOMAIN, &old]).assert_ok();
    assert_eq!(records(&s).len(), 1);
}

#[test]
fn ed25519_adds_a_second_signature() {
    let sink = Sink::start(Ipv4Addr::LOCALHOST, 0, &[]);
    let mut s = server(&sink, &["auth.dkim.ed25519=true"]);
    let recs = records(&s);
    assert_eq!(recs.len(), 2, "{recs:?}");
    assert!(recs[1].1.starts_with("v=DKIM1; k=ed25519; p="), "{recs:?}");
    let dns = dns(&recs);
    s.spawn();
    s.wait_ready(s.cfg.incoming_port);
    submit(&s, PLAIN);
    let mail = received(&sink, 0);
    assert!(mail.contains("a=ed25519-sha256"), "{mail}");
    assert!(mail.contains("a=rsa-sha256"), "{mail}");
    assert_verifies(&dns, &mail, 2);
}

#[test]
fn eight_bit_mail_is_converted_before_it_is_signed() {
    // -8: the sink does not announce 8BITMIME, so the 8-bit part goes out quoted-printable.
    let sink = Sink::start(Ipv4Addr::LOCALHOST, 0, &["-8"]);
    let mut s = server(&sink, &[]);
    let dns = dns(&records(&s));
    s.spawn();
    s.wait_ready(s.cfg.incoming_port);
    let mut c = s.connect();
    c.ehlo();
    c.expect(
        &format!("AUTH PLAIN {}", sasl_plain(ALICE, PASSWORD)),
        235,
        "2.7.0",
    );
    c.expect(&format!("MAIL FROM:<{ALICE}> BODY=8BITMIME"), 250, "");
    c.expect("RCPT TO:<bob@far.test>", 250, "2.1.5");
    c.expect("DATA", 354, "");
    let r = c.cmd(
        "From: alice@example.test\r\nTo: bob@far.test\r\nSubject: 8bit\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\nGr\u{fc}\u{df}e aus K\u{f6}ln\r\n.",
    );
    assert_eq!(r.code, 250, "{}", r.text());
    c.cmd("QUIT");
    let mail = received(&sink, 0);
    assert!(
        mail.contains("Content-Transfer-Encoding: quoted-printable"),
        "{mail}"
    );
    assert!(mail.contains("Gr=C3=BC=C3=9Fe"), "{mail}");
    assert!(mail.is_ascii(), "{mail}");
    assert_verifies(&dns, &mail, 1);
}

#[test]
fn signing_can_be_switched_off() {
    let sink = Sink::start(Ipv4Addr::LOCALHOST, 0, &[]);
    let mut s = server(&sink, &["auth.dkim.enabled=false"]);
    s.spawn();
    s.wait_ready(s.cfg.incoming_port);
    submit(&s, PLAIN);
    let mail = received(&sink, 0);
    assert!(mail.contains("Subject: plain"), "{mail}");
    assert!(!mail.contains("DKIM-Signature"), "{mail}");
    // The keys are made all the same, ready for when it is switched on.
    assert_eq!(records(&s).len(), 1);
    // A domain added from the command line has its key at once, private.
    s.cli(&["domain", "add", "Other.Test"]).assert_ok();
    let dir = s.data_dir.join("dkim/other.test");
    let keys: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&keys[0]).unwrap().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
    let show = s.cli(&["dkim", "show", "other.test"]);
    show.assert_ok();
    assert!(
        show.stdout.contains("._domainkey.other.test"),
        "{}",
        show.stdout
    );
    // Not for a domain that is not ours.
    s.cli(&["dkim", "show", "elsewhere.test"]).assert_failed();
}

#[test]
fn a_submission_without_date_or_message_id_gets_them_and_they_are_signed() {
    let sink = Sink::start(Ipv4Addr::LOCALHOST, 0, &[]);
    let mut s = server(&sink, &[]);
    let dns = dns(&records(&s));
    s.spawn();
    s.wait_ready(s.cfg.incoming_port);
    submit(
        &s,
        "From: alice@example.test\r\nTo: bob@far.test\r\nSubject: bare\r\n\r\nhi\r\n",
    );
    let mail = received(&sink, 0);
    let count = |name: &str| mail.lines().filter(|l| l.starts_with(name)).count();
    assert_eq!(count("Date: "), 1, "{mail}");
    assert_eq!(count("Message-ID: <"), 1, "{mail}");
    assert!(mail.contains("@mail.test>"), "{mail}");
    // Both were there when it was signed: h= names them among the fields present (before
    // the oversigned From), and the signature verifies.
    let unfolded = mail.replace("\n\t", "");
    let h = unfolded
        .split("h=")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .unwrap()
        .to_string();
    let present = h.split("From:From").next().unwrap();
    assert!(
        present.contains("Date") && present.contains("Message-ID"),
        "{h}"
    );
    assert_verifies(&dns, &mail, 1);
    // A message that has both keeps its own, once.
    submit(&s, PLAIN);
    let mail = received(&sink, 1);
    assert_eq!(
        mail.lines()
            .filter(|l| l.starts_with("Message-ID:"))
            .count(),
        1,
        "{mail}"
    );
    assert!(mail.contains("Message-ID: <plain@example.test>"), "{mail}");
    assert_eq!(mail.lines().filter(|l| l.starts_with("Date:")).count(), 1);
}
