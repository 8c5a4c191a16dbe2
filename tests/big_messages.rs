//! Big messages in bounded memory: twenty 10 MiB messages sent at once, for a local mailbox
//! and for a next hop (Postfix's smtp-sink), while the server's resident memory is sampled.
//! Each message goes through DATA, the spool, the Maildir and the outbound transfer; none of
//! them may hold it whole, so the server's memory grows by far less than one message per
//! session.

mod common;
mod dns_common;

use common::{ALICE, Client, DOMAIN, Server};
use dns_common::Sink;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

/// Sessions sending at once.
const SESSIONS: usize = 20;
/// Octets of message text each sends.
const MESSAGE: usize = 10 * 1024 * 1024;
/// What the server's resident memory may grow by while all of them are in flight. Holding
/// the messages whole would take 20 × 10 MiB at least (several times that with the copies
/// made on the way); streaming needs a few hundred KiB per session.
const GROWTH_LIMIT: u64 = 80 * 1024 * 1024;

/// A field of `/proc/PID/status` in octets (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// Message `i` as stored: a header section, then lines of 78 octets up to [`MESSAGE`] octets,
/// one of them starting with a dot, and a last line to find it by.
fn text(i: usize) -> Vec<u8> {
    let mut m = format!("Subject: big {i}\r\nFrom: <bob@remote.test>\r\n\r\n").into_bytes();
    m.extend_from_slice(b".a line that starts with a dot\r\n");
    let line = format!("{i:076}\r\n");
    while m.len() + line.len() < MESSAGE {
        m.extend_from_slice(line.as_bytes());
    }
    m.extend_from_slice(format!("the end of message {i}\r\n").as_bytes());
    m
}

/// Message `i` as sent after DATA: its dot line stuffed, then the end of data.
fn wire(i: usize) -> Vec<u8> {
    let t = text(i);
    let at = t.windows(3).position(|w| w == b"\n.a").expect("dot line") + 1;
    [&t[..at], b".", &t[at..], b".\r\n"].concat()
}

#[test]
fn twenty_big_messages_at_once_stay_out_of_memory() {
    let sink = Sink::start(Ipv4Addr::LOCALHOST, 0, &[]);
    let mut s = Server::prepare(common::Config::default());
    let port = s.cfg.incoming_port;
    let route = format!(
        "outgoing_mails.domain_maps=[(domain: \"far.test\", host: \"127.0.0.1\", port: {})]",
        sink.port()
    );
    s.cli(&[
        "config",
        "set",
        "smtp.outgoing.enabled=true",
        &format!("smtp.outgoing.port={port}"),
        "access.safe_ips=[\"127.0.0.1\"]",
        "abuse.max_connections_per_ip=100",
        "smtp.max_message_size=12582912",
        "outgoing_mails.outbound_tls=None",
        &route,
    ])
    .assert_ok();
    s.spawn();
    s.wait_ready(port);
    let pid = s.pid();

    // Every session is at DATA before any sends its message, so all are in flight together.
    let ready = Arc::new(Barrier::new(SESSIONS + 1));
    let senders: Vec<_> = (0..SESSIONS)
        .map(|i| {
            let ready = ready.clone();
            thread::spawn(move || {
                let mut c = Client::connect_greeted(port);
                c.set_read_timeout(Duration::from_secs(120));
                c.ehlo();
                c.expect("MAIL FROM:<bob@remote.test>", 250, "");
                c.expect(&format!("RCPT TO:<{ALICE}>"), 250, "");
                c.expect(&format!("RCPT TO:<rcpt{i}@far.test>"), 250, "");
                c.expect("DATA", 354, "");
                ready.wait();
                let m = wire(i);
                for block in m.chunks(64 * 1024) {
                    c.send(block).expect("send message data");
                }
                let r = c.read_reply();
                c.cmd("QUIT");
                (r.code, r.text())
            })
        })
        .collect();

    ready.wait();
    let before = status_kib(pid, "VmRSS");
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        thread::spawn(move || {
            let mut peak = 0;
            while !done.load(Ordering::Relaxed) {
                peak = peak.max(status_kib(pid, "VmRSS"));
                thread::sleep(Duration::from_millis(5));
            }
            peak
        })
    };
    for (i, t) in senders.into_iter().enumerate() {
        let (code, text) = t.join().expect("sender");
        assert_eq!(code, 250, "message {i}: {text}");
    }
    // The relayed copies go out meanwhile; sample until the next hop has them all.
    // (smtp-sink writes each file as it reads the mail, and ends it with an empty line.)
    let dumps = common::poll(
        Duration::from_secs(240),
        "20 whole mails at the sink",
        || {
            let m = sink.mails();
            (m.len() >= SESSIONS && m.iter().all(|d| d.ends_with("\n\n"))).then_some(m)
        },
    );
    done.store(true, Ordering::Relaxed);
    let peak = sampler.join().unwrap().max(status_kib(pid, "VmRSS"));
    let growth = peak.saturating_sub(before);
    println!(
        "{SESSIONS} messages of {} MiB at once: resident memory {} MiB before, peak {} MiB, growth {} MiB",
        MESSAGE >> 20,
        before >> 20,
        peak >> 20,
        growth >> 20
    );
    assert!(
        growth < GROWTH_LIMIT,
        "the server grew by {} MiB with {SESSIONS} big messages in flight",
        growth >> 20
    );

    // Every copy arrived whole: in alice's Maildir and at the next hop, dot unstuffed.
    let files = s.maildir_files(DOMAIN, "alice");
    assert_eq!(files.len(), SESSIONS);
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        assert!(
            bytes.len() > MESSAGE - 1024,
            "{}: {} octets",
            f.display(),
            bytes.len()
        );
        let shown = String::from_utf8_lossy(&bytes);
        let i: usize = shown
            .split("Subject: big ")
            .nth(1)
            .and_then(|t| t.split('\r').next())
            .and_then(|n| n.parse().ok())
            .expect("subject");
        assert!(
            bytes.ends_with(&text(i)),
            "{}: not the message sent",
            f.display()
        );
    }
    // smtp-sink dumps with LF line ends and an empty line after: compare in CRLF.
    for d in &dumps {
        let d = d.replace("\r\n", "\n").replace('\n', "\r\n");
        let i: usize = d
            .split("Subject: big ")
            .nth(1)
            .and_then(|t| t.split('\r').next())
            .and_then(|n| n.parse().ok())
            .expect("subject");
        let sent = String::from_utf8(text(i)).unwrap();
        assert!(
            d.contains(&sent),
            "message {i} arrived changed at the next hop"
        );
    }
    let incoming = s.data_dir.join("spool/incoming");
    assert_eq!(
        std::fs::read_dir(&incoming).map_or(0, |d| d.count()),
        0,
        "nothing is left in {}",
        incoming.display()
    );
}
