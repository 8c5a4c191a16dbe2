//! The session driven in memory: a table of transcripts run over `tokio::io::duplex` with the
//! real gate (on a test configuration) and a test intake that keeps what it is given. The first
//! place a protocol change is tested; each case runs in milliseconds.
//!
//! A case is a block of lines:
//!
//! ```text
//! ## name                         starts a case
//! ! key=value                     a config setting (as `postern config set` takes it)
//! @ 192.0.2.1 outgoing            the client's address and the listener's role
//! > EHLO client.test              a command line (CRLF added)
//! >> raw\r\ndata\n                raw bytes, with \r \n \0 \\ escapes, nothing added
//! >>> 1100                        a text line of 1100 `x` octets, CRLF added
//! ~ data                          greeting, EHLO, MAIL, RCPT to alice, DATA, all accepted
//! < 250                           the next reply: its code, or a prefix of its last line
//! = accepted 1                    after the session: messages the intake took
//! = closed                        the session closed before the client did
//! = free 1000                     the intake reports this many octets free on its disk
//! = intake fails                  the intake answers 452 (a write failed)
//! = room 1000                     every local mailbox has this many octets left (Max Account Size)
//! ```
//!
//! The client writes everything at once (which pipelines every command) and closes its side;
//! the replies are then compared in order, and no reply may be left unchecked.

use super::{Deps, Seat, serve};
use crate::engine::access::Gate;
use crate::engine::access::recipient::{LocalRcpt, Recipient};
use crate::engine::config::{Account, Config, keys};
use crate::engine::current::Current;
use crate::engine::events::{EventBus, EventKind};
use crate::engine::reply;
use crate::engine::role::Role;
use crate::engine::smtp::intake::{Accepted, Envelope, Intake, IntakeFuture};
use crate::engine::store::body::Body;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Keeps what it accepts; refuses with 452 when `fail` is set.
#[derive(Default)]
struct TestIntake {
    /// Accepted messages.
    got: Mutex<Vec<(Envelope, Vec<u8>)>>,
    /// Answer 452 instead (a full disk).
    fail: bool,
    /// Free octets to report (`None`: plenty).
    free: Option<u64>,
    /// Octets every local mailbox has left under its Max Account Size (`None`: unlimited).
    room: Option<u64>,
}

impl Intake for TestIntake {
    fn has_room(&self, octets: u64) -> bool {
        self.free.is_none_or(|free| free >= octets)
    }

    fn mailbox_full(&self, _: &LocalRcpt, octets: u64) -> bool {
        self.room.is_some_and(|room| room == 0 || octets > room)
    }

    fn body(&self) -> Body {
        Body::from_bytes(Vec::new())
    }

    fn accept(&self, env: Envelope, message: Body) -> IntakeFuture<'_> {
        let message = message.to_vec().expect("in memory");
        Box::pin(async move {
            if self.fail {
                return Err(reply::STORAGE);
            }
            let remote = env.rcpts.iter().any(|r| matches!(r, Recipient::Remote(_)));
            let id = env.id.clone();
            self.got.lock().unwrap().push((env, message));
            Ok(if remote {
                Accepted::Queued("Q1".into())
            } else {
                Accepted::Delivered(id)
            })
        })
    }
}

/// The password of every test account.
const PASSWORD: &str = "s3cret";

/// Local domain example.test with alice and postmaster; TEST-NET clients are strangers.
fn base_config() -> Config {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let hash = HASH.get_or_init(|| crate::engine::store::password::hash(PASSWORD));
    let mut c = Config::default();
    c.server.hostname = "mx.example.test".into();
    c.domains = vec!["example.test".into()];
    c.accounts = ["alice@example.test", "postmaster@example.test"]
        .iter()
        .map(|a| Account {
            address: a.to_string(),
            password: hash.clone(),
            ..Default::default()
        })
        .collect();
    c.smtp.tls.auth_requires_tls = false;
    // The DNS checks of inbound mail ask a port where nothing answers (no lookup leaves the
    // machine; every result is a temperror).
    c.outgoing_mails.dns_hosts = vec!["127.0.0.1:9".into()];
    c
}

/// One parsed case.
struct Case {
    name: String,
    settings: Vec<(String, String)>,
    peer: SocketAddr,
    role: Role,
    /// What the client sends, in pieces: each piece but the last ends with a `DATA` command,
    /// after which the client waits for the `354` (or for the server to go quiet).
    input: Vec<Vec<u8>>,
    expect: Vec<String>,
    accepted: Option<usize>,
    closed: bool,
    fail_intake: bool,
    /// Free octets the intake reports.
    free: Option<u64>,
    /// Octets left in every local mailbox.
    room: Option<u64>,
}

fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut b = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            continue;
        }
        match chars.next() {
            Some('r') => out.push(b'\r'),
            Some('n') => out.push(b'\n'),
            Some('0') => out.push(0),
            Some('\\') => out.push(b'\\'),
            other => panic!("bad escape \\{other:?} in {s:?}"),
        }
    }
    out
}

fn parse_cases(text: &str) -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
        if let Some(name) = line.strip_prefix("## ") {
            cases.push(Case {
                name: name.into(),
                settings: Vec::new(),
                peer: "192.0.2.10:40000".parse().unwrap(),
                role: Role::Both,
                input: vec![Vec::new()],
                expect: Vec::new(),
                accepted: None,
                closed: false,
                fail_intake: false,
                free: None,
                room: None,
            });
            continue;
        }
        let c = cases.last_mut().expect("a case starts with ## name");
        let input = c.input.last_mut().expect("one piece at least");
        if line == "~ data" {
            input.extend_from_slice(
                b"EHLO c\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n",
            );
            c.input.push(Vec::new());
            c.expect
                .extend(["220", "250", "250", "250", "354"].map(String::from));
        } else if let Some(n) = line.strip_prefix(">>> ") {
            input.extend(vec![b'x'; n.parse().unwrap()]);
            input.extend_from_slice(b"\r\n");
        } else if let Some(raw) = line.strip_prefix(">> ") {
            input.extend(unescape(raw));
        } else if let Some(cmd) = line.strip_prefix("> ") {
            input.extend(unescape(cmd));
            input.extend_from_slice(b"\r\n");
            if cmd.eq_ignore_ascii_case("DATA") {
                c.input.push(Vec::new());
            }
        } else if let Some(r) = line.strip_prefix("< ") {
            c.expect.push(r.into());
        } else if let Some(kv) = line.strip_prefix("! ") {
            c.settings
                .push(keys::split_assignment(kv).unwrap_or_else(|| panic!("bad setting {kv}")));
        } else if let Some(at) = line.strip_prefix("@ ") {
            let (ip, role) = at.split_once(' ').expect("@ IP ROLE");
            c.peer = SocketAddr::new(ip.parse().unwrap(), 40000);
            c.role = match role {
                "incoming" => Role::Incoming,
                "outgoing" => Role::Outgoing,
                "both" => Role::Both,
                r => panic!("unknown role {r}"),
            };
        } else if let Some(n) = line.strip_prefix("= accepted ") {
            c.accepted = Some(n.parse().unwrap());
        } else if line == "= closed" {
            c.closed = true;
        } else if line == "= intake fails" {
            c.fail_intake = true;
        } else if let Some(n) = line.strip_prefix("= free ") {
            c.free = Some(n.parse().unwrap());
        } else if let Some(n) = line.strip_prefix("= room ") {
            c.room = Some(n.parse().unwrap());
        } else {
            panic!("{}: cannot read line {line:?}", c.name);
        }
    }
    cases
}

/// Runs a case; returns the last line of every reply, whether the server closed first, and
/// what the intake took.
async fn run(case: &Case) -> (Vec<String>, bool, Vec<(Envelope, Vec<u8>)>) {
    let cfg = keys::assign(&base_config(), &case.settings)
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let (_tx, current) = watch::channel(Arc::new(Current::new(cfg, None)));
    let events = EventBus::new();
    let intake = Arc::new(TestIntake {
        fail: case.fail_intake,
        free: case.free,
        room: case.room,
        ..TestIntake::default()
    });
    let deps = Arc::new(Deps {
        current,
        gate: Gate::new(events.clone()),
        intake: intake.clone(),
        events,
        shutdown: CancellationToken::new(),
    });
    let (mut client, server) = tokio::io::duplex(4 << 20);
    let seat = Seat::fixed(case.role, false);
    let session = tokio::spawn(serve(server, case.peer, seat, deps.clone()));
    let mut out = Vec::new();
    let (last, pieces) = case.input.split_last().expect("one piece at least");
    for piece in pieces {
        // Everything up to DATA, then wait for the 354 as RFC 2920 asks (or, when DATA is
        // refused, until the server has said nothing for a minute of the paused clock: longer
        // than any DNS check, shorter than the command timeout).
        let seen = count_354(&out);
        client.write_all(piece).await.unwrap();
        let mut buf = [0u8; 4096];
        while count_354(&out) == seen {
            let read =
                tokio::time::timeout(std::time::Duration::from_secs(60), client.read(&mut buf));
            match read.await {
                Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
    }
    client.write_all(last).await.unwrap();
    client.shutdown().await.unwrap();
    client.read_to_end(&mut out).await.unwrap();
    session.await.unwrap();
    // The server closed first unless the session ended on our end of input.
    let closed_first = deps.events.recent().iter().any(|e| {
        matches!(&e.kind, EventKind::SessionClosed { reason }
            if reason != "client closed the connection")
    });
    let text = String::from_utf8_lossy(&out);
    let finals = text
        .split("\r\n")
        .filter(|l| l.len() >= 4 && l.as_bytes()[3] == b' ')
        .map(str::to_string)
        .collect();
    let got = std::mem::take(&mut *intake.got.lock().unwrap());
    (finals, closed_first, got)
}

/// How many `354` replies `out` holds.
fn count_354(out: &[u8]) -> usize {
    String::from_utf8_lossy(out)
        .split("\r\n")
        .filter(|l| l.starts_with("354 "))
        .count()
}

/// Runs every case in `table` and reports every mismatch at once.
async fn check(table: &str) {
    let mut failures = Vec::new();
    for case in parse_cases(table) {
        let (replies, closed, got) = run(&case).await;
        let mut problems = Vec::new();
        for (i, want) in case.expect.iter().enumerate() {
            match replies.get(i) {
                Some(r) if r.starts_with(want.as_str()) => {}
                Some(r) => problems.push(format!("reply {}: want `{want}`, got `{r}`", i + 1)),
                None => problems.push(format!("reply {}: want `{want}`, got nothing", i + 1)),
            }
        }
        if replies.len() > case.expect.len() {
            problems.push(format!(
                "unexpected replies: {:?}",
                &replies[case.expect.len()..]
            ));
        }
        if let Some(n) = case.accepted
            && n != got.len()
        {
            problems.push(format!("accepted {} messages, want {n}", got.len()));
        }
        if case.closed && !closed {
            problems.push("the server did not close the session".into());
        }
        if !problems.is_empty() {
            failures.push(format!("## {}\n  {}", case.name, problems.join("\n  ")));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[tokio::test(start_paused = true)]
async fn sequence_and_simple_verbs() {
    check(
        r#"
## greeting, EHLO extensions, QUIT
> EHLO client.test
> QUIT
< 220 mx.example.test ESMTP
< 250 HELP
< 221
= closed

## MAIL before HELO, RCPT before MAIL, DATA before MAIL
> MAIL FROM:<a@remote.test>
> RCPT TO:<alice@example.test>
> DATA
> HELO client.test
> DATA
< 220
< 503 5.5.1 Send HELO
< 503 5.5.1 Need MAIL
< 503 5.5.1 Need MAIL
< 250 mx.example.test Hello client.test [192.0.2.10]
< 503 5.5.1 Need MAIL

## nested MAIL, DATA without recipients, RSET clears
> EHLO c
> MAIL FROM:<a@remote.test>
> MAIL FROM:<a@remote.test>
> DATA
> RSET
> RCPT TO:<alice@example.test>
< 220
< 250
< 250 2.1.0
< 503 5.5.1 Nested
< 503 5.5.1 Need RCPT
< 250 2.0.0 OK
< 503 5.5.1 Need MAIL

## NOOP HELP VRFY and verbs not offered
> NOOP
> HELP
> VRFY alice
> EXPN staff
> ETRN example.test
> BDAT 10 LAST
> FOO
< 220
< 250 2.0.0 OK
< 214
< 252
< 502
< 502
< 502
< 500 5.5.2 Command unrecognized

## EHLO without a name, and EHLO resets a transaction
> EHLO
> EHLO c
> MAIL FROM:<a@remote.test>
> EHLO c
> RCPT TO:<alice@example.test>
< 220
< 501 5.5.4 Syntax
< 250
< 250
< 250
< 503

## MAIL parameters: SIZE over the limit, unknown, not after HELO, 8BITMIME fine
! smtp.max_message_size=1000
> HELO c
> MAIL FROM:<a@remote.test> BODY=8BITMIME
> EHLO c
> MAIL FROM:<a@remote.test> SIZE=1001
> MAIL FROM:<a@remote.test> RET=HDRS
> MAIL FROM:<a@remote.test> FOO=BAR
> MAIL FROM:<a@remote.test> BODY=8BITMIME SIZE=999
< 220
< 250
< 555 5.5.4 MAIL parameters need EHLO
< 250
< 552 5.3.4
< 555
< 555
< 250
"#,
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn recipients_and_relaying() {
    check(
        r#"
## local, unknown, case-folded, duplicate, postmaster
> EHLO c
> MAIL FROM:<a@remote.test>
> RCPT TO:<alice@example.test>
> RCPT TO:<bob@example.test>
> RCPT TO:<ALICE@Example.TEST>
> RCPT TO:<postmaster>
> DATA
>> Subject: x\r\n\r\nhi\r\n.\r\n
< 220
< 250
< 250
< 250 2.1.5
< 550 5.1.1 User unknown
< 250 2.1.5
< 250 2.1.5
< 354
< 250 2.0.0 Ok: delivered as
= accepted 1

## a stranger may not relay on the shared port with access control on
! access.smtp_auth.enabled=true
> EHLO c
> MAIL FROM:<a@remote.test>
> RCPT TO:<x@elsewhere.test>
> RCPT TO:<x%elsewhere.test@example.test>
> RCPT TO:<@example.test:x@elsewhere.test>
< 220
< 250
< 250
< 550 5.7.1 Relaying denied
< 550 5.1.1
< 550 5.7.1 Relaying denied

## the incoming listener never relays, even with no access control (an open relay)
! access.smtp_auth.enabled=false
! access.ip_range.enabled=false
@ 192.0.2.10 incoming
> EHLO c
> MAIL FROM:<a@remote.test>
> RCPT TO:<x@elsewhere.test>
< 220
< 250
< 250
< 550 5.7.1 Relaying denied

## the outgoing listener relays after AUTH; the 250 names the queue
! access.smtp_auth.enabled=true
@ 192.0.2.10 outgoing
> EHLO c
> AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzM2NyZXQ=
> MAIL FROM:<alice@example.test>
> RCPT TO:<x@elsewhere.test>
> RCPT TO:<alice@example.test>
> DATA
>> hi\r\n.\r\n
< 220
< 250
< 235 2.7.0
< 250
< 250 2.1.5
< 250 2.1.5
< 354
< 250 2.0.0 Ok: queued as Q1
= accepted 1

## a separate outgoing port refuses clients outside the IP ranges at connect
! access.ip_range.enabled=true
! access.ip_range.ranges=["10.0.0.0/8"]
@ 192.0.2.10 outgoing
> EHLO c
< 554 5.7.1
= closed

## a Safe IP relays without a login
! access.smtp_auth.enabled=true
! access.safe_ips=["192.0.2.0/24"]
> EHLO c
> MAIL FROM:<a@example.test>
> RCPT TO:<x@elsewhere.test>
< 220
< 250
< 250
< 250 2.1.5

## the recipient limit answers 452 and keeps the transaction
! smtp.max_recipients_per_mail=2
> EHLO c
> MAIL FROM:<a@remote.test>
> RCPT TO:<alice@example.test>
> RCPT TO:<postmaster@example.test>
> RCPT TO:<alice@example.test>
> DATA
>> hi\r\n.\r\n
< 220
< 250
< 250
< 250
< 250
< 452 4.5.3
< 354
< 250
= accepted 1

## RCPT parameters and bad addresses
> EHLO c
> MAIL FROM:<a@remote.test>
> RCPT TO:<alice@example.test> NOTIFY=NEVER
> RCPT TO:<alice@[192.0.2.1]>
> RCPT TO:<alice>
> RCPT TO:<"a b"@exam_ple.test>
< 220
< 250
< 250
< 555
< 501
< 501 5.1.3
< 553 5.1.3 Bad recipient address: the domain
"#,
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn data_endings_and_limits() {
    check(
        r#"
## dot-stuffing and a pipelined QUIT after the end of data
> EHLO c
> MAIL FROM:<>
> RCPT TO:<alice@example.test>
> DATA
>> ..leading dot\r\n.\r\nQUIT\r\n
< 220
< 250
< 250
< 250
< 354
< 250
< 221
= accepted 1
= closed

## a bare LF before the dot is smuggling: 521 and close, nothing accepted
~ data
>> hi\n.\nMAIL FROM:<evil@remote.test>\r\n.\r\n
< 521 5.5.2
= accepted 0
= closed

## a bare CR ending is smuggling too
~ data
>> hi\r.\r\n
< 521
= accepted 0
= closed

## LF-dot-CRLF is smuggling
~ data
>> hi\n.\r\n
< 521
= closed

## a message over the size limit is read to its end and refused; the session goes on
! smtp.max_message_size=1024
~ data
>>> 900
>>> 900
> .
> NOOP
< 552 5.3.4
< 250
= accepted 0

## a text line over 1000 octets is refused
~ data
>>> 1001
> .
< 500 5.5.2 Message has a line longer
= accepted 0

## a full mailbox answers 552 5.2.2 at RCPT; a remote recipient is unaffected
! access.safe_ips=["192.0.2.0/24"]
= room 0
> EHLO c
> MAIL FROM:<a@remote.test>
> RCPT TO:<alice@example.test>
> RCPT TO:<x@remote.test>
< 220
< 250
< 250
< 552 5.2.2 Mailbox full
< 250 2.1.5

## a size declared at MAIL that the mailbox has no room for answers 552 at RCPT
= room 1000
> EHLO c
> MAIL FROM:<a@remote.test> SIZE=1001
> RCPT TO:<alice@example.test>
> RSET
> MAIL FROM:<a@remote.test> SIZE=1000
> RCPT TO:<alice@example.test>
< 220
< 250
< 250
< 552 5.2.2
< 250
< 250
< 250 2.1.5

## a nearly full disk answers 452 at MAIL, before the message is sent
! smtp.max_message_size=104857600
= free 167772160
> EHLO c
> MAIL FROM:<a@remote.test>
> RSET
> MAIL FROM:<a@remote.test> SIZE=20971520
< 220
< 250
< 250
< 250
< 452 4.3.1
= accepted 0

## a full disk answers 452, never 250
= intake fails
~ data
>> hi\r\n.\r\n
< 452 4.3.1
"#,
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn smuggling_one_hop_on_and_pipelining_past_data() {
    check(
        r#"
## a NUL before the final dot would end the data at a receiver that strips NULs: refused
~ data
>> hi\r\n\0.\r\nMAIL FROM:<evil@remote.test>\r\n.\r\n
> NOOP
< 554 5.6.0
< 250
= accepted 0

## a NUL after the dot likewise
~ data
>> hi\r\n.\0\r\n.\r\n
< 554 5.6.0
= accepted 0

## a NUL inside a command line
>> NOOP\0\r\n
< 220
< 500 5.5.2 NUL in command line

## a stranger that sends the message before the 354 is refused and cut off
>> EHLO c\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\n
< 220
< 250
< 250
< 250
< 554 5.5.0
= accepted 0
= closed

## a Safe IP may pipeline past DATA
! access.safe_ips=["192.0.2.10"]
>> EHLO c\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\n
< 220
< 250
< 250
< 250
< 354
< 250
= accepted 1

## so may a logged-in client
> EHLO c
> AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzM2NyZXQ=
>> MAIL FROM:<alice@example.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nhi\r\n.\r\n
< 220
< 250
< 235
< 250
< 250
< 354
< 250
= accepted 1
"#,
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn command_lines_auth_and_error_limits() {
    check(
        r#"
## a command line over 512 octets is refused and the next one read
>>> 600
> NOOP
< 220
< 500 5.5.2 Line too long
< 250

## a bare CR inside a command line is refused
>> MAIL FROM:<a@b.test>\rRCPT TO:<x@y.test>\r\n
< 220
< 500 5.5.2 Bare CR

## commands that make no progress are limited; an accepted message starts the count again
! smtp.max_junk_commands=3
> EHLO c
> NOOP
> RSET
> MAIL FROM:<a@remote.test>
> RCPT TO:<alice@example.test>
> DATA
>> hi\r\n.\r\n
> NOOP
> HELP
> EHLO again
> VRFY alice
< 220
< 250
< 250
< 250
< 250
< 250
< 354
< 250
< 250
< 214
< 250
< 421 4.7.0 Too many commands without a message
= closed

## the error allowance closes the session with 421
! smtp.max_errors_per_session=3
> FOO
> FOO
> FOO
> NOOP
< 220
< 500
< 500
< 500
< 421 4.7.0 Too many errors
= closed

## AUTH PLAIN and LOGIN, wrong password, cancel, bad base64, second AUTH
> AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzM2NyZXQ=
> EHLO c
> AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdAB3cm9uZw==
> AUTH LOGIN
> *
> AUTH PLAIN !!!
> AUTH CRAM-MD5
> AUTH LOGIN YWxpY2VAZXhhbXBsZS50ZXN0
> czNjcmV0
> AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzM2NyZXQ=
< 220
< 503 5.5.1 Send EHLO first
< 250
< 535 5.7.8
< 334 VXNlcm5hbWU6
< 501 5.0.0 Authentication cancelled
< 501 5.5.2 Invalid base64
< 504
< 334 UGFzc3dvcmQ6
< 235
< 503 5.5.1 Already authenticated

## no AUTH on the incoming SMTP, where a login grants nothing
@ 192.0.2.10 incoming
> EHLO c
> AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzM2NyZXQ=
< 220
< 250
< 503 5.5.1 Authentication not enabled

## AUTH without TLS when TLS is required
! smtp.tls.auth_requires_tls=true
> EHLO c
> AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzM2NyZXQ=
< 220
< 250
< 538 5.7.11

## failed logins lock the client out and close the session
! abuse.lockout.failures=2
> EHLO c
> AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdAB3cm9uZw==
> AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdAB3cm9uZw==
> NOOP
< 220
< 250
< 535
< 535
< 421 4.7.0 Too many failed login attempts
= closed

## the sender must match the login
! access.sender_must_match_login=true
> EHLO c
> AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzM2NyZXQ=
> MAIL FROM:<postmaster@example.test>
> MAIL FROM:<Alice@example.test>
< 220
< 250
< 235
< 553 5.7.1
< 250

## STARTTLS without a certificate
> EHLO c
> STARTTLS
< 220
< 250
< 454 4.7.0

## tarpitting blocks a client that guesses recipients
! abuse.tarpit.block_after=3
> EHLO c
> MAIL FROM:<a@remote.test>
> RCPT TO:<a1@example.test>
> RCPT TO:<a2@example.test>
> RCPT TO:<a3@example.test>
> RCPT TO:<alice@example.test>
< 220
< 250
< 250
< 550
< 550
< 550
< 421 4.7.0 Too many invalid recipients
= closed

## a mail loop: 50 Received fields
~ data
>> Received: x\r\nReceived: x\r\nReceived: x\r\nReceived: x\r\nReceived: x\r\nReceived: x\r\nReceived: x\r\nReceived: x\r\nReceived: x\r\nReceived: x\r\n
>> Received: x\r\nReceived: x\r\nReceived: x\r\nReceived: x\r\nReceived: x\r\nReceived: x\r\nReceived: x\r\nReceived: x\r\nReceived: x\r\nReceived: x\r\n
>> Received: x\r\nReceived: x\r\nReceived: x\r\nReceived: x\r\nReceived: x\r\nReceived: x\r\nReceived: x\r\nReceived: x\r\nReceived: x\r\nReceived: x\r\n
>> Received: x\r\nReceived: x\r\nReceived: x\r\nReceived: x\r\nReceived: x\r\nReceived: x\r\nReceived: x\r\nReceived: x\r\nReceived: x\r\nReceived: x\r\n
>> Received: x\r\nReceived: x\r\nReceived: x\r\nReceived: x\r\nReceived: x\r\nReceived: x\r\nReceived: x\r\nReceived: x\r\nReceived: x\r\nReceived: x\r\n
>> \r\nbody\r\n.\r\n
< 554 5.4.6
= accepted 0

## the hourly message limit answers 452 at the end of data
! abuse.transfer.max_messages_per_hour=1
~ data
>> one\r\n.\r\n
> MAIL FROM:<a@remote.test>
> RCPT TO:<alice@example.test>
> DATA
>> two\r\n.\r\n
< 250
< 250
< 250
< 354
< 452 4.7.0 Hourly message limit
= accepted 1
"#,
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn the_intake_gets_the_envelope_and_the_trace_facts() {
    let case = &parse_cases(
        r#"
## one message
! access.safe_ips=["192.0.2.10"]
> EHLO client.test
> MAIL FROM:<"a b"@remote.test>
> RCPT TO:<alice@example.test>
> RCPT TO:<x@Elsewhere.TEST>
> DATA
>> Subject: t\r\n\r\nbody\r\n.\r\n
"#,
    )[0];
    let (_, _, got) = run(case).await;
    assert_eq!(got.len(), 1);
    let (env, body) = &got[0];
    assert_eq!(env.from, "\"a b\"@remote.test");
    assert_eq!(env.rcpts.len(), 2);
    assert!(matches!(&env.rcpts[0], Recipient::Local(l) if l.address == "alice@example.test"));
    assert_eq!(env.rcpts[1], Recipient::Remote("x@elsewhere.test".into()));
    assert_eq!(env.received.helo, "client.test");
    assert!(env.received.esmtp && !env.received.tls && !env.received.auth);
    assert_eq!(body, b"Subject: t\r\n\r\nbody\r\n");
}

/// A session started for an interactive test, and the client's end.
struct Live {
    /// The client's end of the duplex.
    io: tokio::io::BufReader<tokio::io::DuplexStream>,
    /// Publishes a changed configuration.
    config: watch::Sender<Arc<Current>>,
    /// Changes the listener's role.
    role: watch::Sender<Role>,
    /// Closes the listener.
    closed: CancellationToken,
    /// The session's dependencies (events, shutdown).
    deps: Arc<Deps>,
    /// The session task.
    task: tokio::task::JoinHandle<()>,
}

impl Live {
    fn start(cfg: Config, tls: Option<tokio_rustls::TlsAcceptor>) -> Live {
        let (config, current) = watch::channel(Arc::new(Current::new(cfg, tls)));
        let events = EventBus::new();
        let deps = Arc::new(Deps {
            current,
            gate: Gate::new(events.clone()),
            intake: Arc::new(TestIntake::default()),
            events,
            shutdown: CancellationToken::new(),
        });
        let (client, server) = tokio::io::duplex(1 << 16);
        let peer = "192.0.2.10:40000".parse().unwrap();
        let (role, seat_role) = watch::channel(Role::Both);
        let closed = CancellationToken::new();
        let seat = Seat {
            role: seat_role,
            closed: closed.clone(),
            implicit_tls: false,
        };
        let task = tokio::spawn(serve(server, peer, seat, deps.clone()));
        Live {
            io: tokio::io::BufReader::new(client),
            config,
            role,
            closed,
            deps,
            task,
        }
    }

    async fn send(&mut self, line: &str) {
        self.io
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
    }

    /// The last line of the next reply ("" when the server closed).
    async fn reply(&mut self) -> String {
        use tokio::io::AsyncBufReadExt;
        loop {
            let mut l = String::new();
            if self.io.read_line(&mut l).await.unwrap() == 0 {
                return String::new();
            }
            if l.as_bytes().get(3) != Some(&b'-') {
                return l.trim_end().to_string();
            }
        }
    }

    fn logged(&self) -> Vec<String> {
        self.deps
            .events
            .recent()
            .iter()
            .map(|e| e.kind.to_string())
            .collect()
    }
}

#[tokio::test]
async fn starttls_discards_pipelined_plaintext_and_forgets_the_session() {
    let mut s = Live::start(
        base_config(),
        Some(crate::engine::tls::test_acceptor("mx.example.test")),
    );
    assert!(s.reply().await.starts_with("220 "));
    // A man in the middle appends a command after STARTTLS in the same packet.
    s.io.get_mut()
        .write_all(b"EHLO c\r\nSTARTTLS\r\nMAIL FROM:<evil@remote.test>\r\n")
        .await
        .unwrap();
    assert!(s.reply().await.starts_with("250 "));
    assert_eq!(s.reply().await, "220 2.0.0 Ready to start TLS");
    let plain = s.io.into_inner();
    let name = rustls::pki_types::ServerName::try_from("mx.example.test").unwrap();
    let tls = crate::engine::delivery::tls::connector()
        .connect(name, plain)
        .await
        .expect("TLS handshake");
    let mut c = tokio::io::BufReader::new(tls);
    let mut ask = async |line: &str| {
        use tokio::io::AsyncBufReadExt;
        c.get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
        let mut last = String::new();
        loop {
            let mut l = String::new();
            c.read_line(&mut l).await.unwrap();
            if l.as_bytes().get(3) != Some(&b'-') {
                break;
            }
            last = l;
        }
        last
    };
    // The EHLO from before TLS is forgotten, and the injected MAIL never ran.
    assert!(ask("RCPT TO:<alice@example.test>").await.is_empty());
    let logged = s
        .deps
        .events
        .recent()
        .iter()
        .map(|e| e.kind.to_string())
        .collect::<Vec<_>>();
    assert!(
        logged.iter().any(|l| l.starts_with("discarded 30 octets")),
        "{logged:#?}"
    );
    assert!(
        logged.iter().any(|l| l.contains("503 5.5.1 Need MAIL")),
        "{logged:#?}"
    );
    assert!(
        !logged.iter().any(|l| l.contains("evil@remote.test")),
        "{logged:#?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_silent_client_is_told_421_after_the_command_timeout() {
    let mut s = Live::start(base_config(), None);
    assert!(s.reply().await.starts_with("220 "));
    s.send("EHLO c").await;
    assert!(s.reply().await.starts_with("250 "));
    // Nothing more: the paused clock runs to the command timeout.
    assert!(s.reply().await.starts_with("421 4.4.2"));
    assert_eq!(s.reply().await, "");
    s.task.await.unwrap();
}

#[tokio::test]
async fn shutdown_closes_an_idle_session_with_421() {
    let mut s = Live::start(base_config(), None);
    assert!(s.reply().await.starts_with("220 "));
    s.deps.shutdown.cancel();
    assert!(s.reply().await.starts_with("421 4.3.2"));
    (&mut s.task).await.unwrap();
    assert!(
        s.logged()
            .iter()
            .any(|l| l.contains("server shutting down"))
    );
}

/// A session on a server with no access control (an open relay) that has just had a
/// recipient in another domain accepted.
async fn open_relay_session() -> Live {
    let mut open = base_config();
    open.access.smtp_auth.enabled = false;
    let mut s = Live::start(open, None);
    assert!(s.reply().await.starts_with("220 "));
    s.send("EHLO c").await;
    s.send("MAIL FROM:<a@remote.test>").await;
    s.send("RCPT TO:<x@elsewhere.test>").await;
    assert!(s.reply().await.starts_with("250 "));
    assert!(s.reply().await.starts_with("250 "));
    assert!(s.reply().await.starts_with("250 2.1.5"), "an open relay");
    s
}

#[tokio::test]
async fn a_reload_applies_to_the_next_command_of_an_open_session() {
    let mut s = open_relay_session().await;
    let mut cfg = base_config();
    cfg.access.smtp_auth.enabled = true;
    s.config.send_replace(Arc::new(Current::new(cfg, None)));
    s.send("RCPT TO:<y@elsewhere.test>").await;
    assert_eq!(s.reply().await, "550 5.7.1 Relaying denied");
}

#[tokio::test(start_paused = true)]
async fn warnings_belong_to_one_transaction_and_count_towards_the_size() {
    // Reverse DNS against a resolver that does not answer: every MAIL is tagged.
    let case = &parse_cases(
        r#"
## two messages from a client whose reverse DNS fails, then one that only fits without its tag
! abuse.rdns.enabled=true
! abuse.rdns.action=Tag
! outgoing_mails.dns_hosts=["127.0.0.1:9"]
! smtp.max_message_size=1024
~ data
>> one\r\n.\r\n
> MAIL FROM:<a@remote.test>
> RCPT TO:<alice@example.test>
> DATA
>> two\r\n.\r\n
> MAIL FROM:<a@remote.test>
> RCPT TO:<alice@example.test>
> DATA
>>> 500
>>> 500
> .
"#,
    )[0];
    let (replies, _, got) = run(case).await;
    assert_eq!(replies.len(), 14, "{replies:?}");
    assert!(replies[13].starts_with("552 5.3.4"), "{replies:?}");
    assert_eq!(got.len(), 2);
    for (env, _) in &got {
        assert_eq!(env.tags.len(), 1, "{:?}", env.tags);
        assert!(env.tags[0].starts_with("reverse DNS check failed"));
    }
}

#[tokio::test]
async fn a_removed_or_changed_account_loses_its_login_at_once() {
    for change in ["remove", "passwd"] {
        let mut s = Live::start(base_config(), None);
        assert!(s.reply().await.starts_with("220 "));
        s.send("EHLO c").await;
        s.send("AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzM2NyZXQ=")
            .await;
        assert!(s.reply().await.starts_with("250 "));
        assert!(s.reply().await.starts_with("235 "));
        s.send("NOOP").await;
        assert!(s.reply().await.starts_with("250 "));
        let mut cfg = base_config();
        match change {
            "remove" => cfg.accounts.retain(|a| a.address != "alice@example.test"),
            _ => cfg.accounts[0].password = crate::engine::store::password::hash("other"),
        }
        s.config.send_replace(Arc::new(Current::new(cfg, None)));
        s.send("NOOP").await;
        assert!(
            s.reply()
                .await
                .starts_with("421 4.7.0 Your login was changed"),
            "{change}"
        );
        assert_eq!(s.reply().await, "", "{change}: the session is closed");
        assert!(
            s.logged()
                .iter()
                .any(|l| l.contains("login of alice@example.test revoked"))
        );
    }
}

#[tokio::test]
async fn the_listeners_role_and_its_closing_reach_open_sessions() {
    let mut s = open_relay_session().await;
    // Outgoing SMTP turned off on the shared port: the listener now serves incoming only.
    s.role.send_replace(Role::Incoming);
    s.send("RCPT TO:<y@elsewhere.test>").await;
    assert_eq!(s.reply().await, "550 5.7.1 Relaying denied");
    s.closed.cancel();
    assert!(
        s.reply()
            .await
            .starts_with("421 4.3.2 This service was closed")
    );
    assert_eq!(s.reply().await, "");
}

#[tokio::test(start_paused = true)]
async fn submitted_mail_gets_date_and_message_id_and_inbound_mail_its_results() {
    let cases = parse_cases(
        r#"
## relayed by IP range: submission, so Date and Message-ID are added, no results
! access.smtp_auth.enabled=false
! access.ip_range.enabled=true
! access.ip_range.ranges=["192.0.2.0/24"]
@ 192.0.2.5 outgoing
> EHLO c
> MAIL FROM:<bob@example.test>
> RCPT TO:<x@elsewhere.test>
> DATA
>> Subject: x\r\n\r\nhi\r\n.\r\n
## a client of the IP ranges writing to a local account: still a submission
! access.smtp_auth.enabled=false
! access.ip_range.enabled=true
! access.ip_range.ranges=["192.0.2.0/24"]
@ 192.0.2.5 outgoing
> EHLO c
> MAIL FROM:<bob@example.test>
> RCPT TO:<alice@example.test>
> DATA
>> Subject: z\r\n\r\nhi\r\n.\r\n
## inbound from a stranger: nothing added, Authentication-Results; a forged one is cut
@ 198.51.100.7 incoming
> EHLO c
> MAIL FROM:<bob@remote.test>
> RCPT TO:<alice@example.test>
> DATA
>> Authentication-Results: MX.example.test; dkim=pass\r\nSubject: y\r\n\r\nhi\r\n.\r\n
"#,
    );
    let (_, _, got) = run(&cases[0]).await;
    let (env, msg) = &got[0];
    assert!(
        env.added.starts_with("Date: ") && env.added.contains("\r\nMessage-ID: <"),
        "{:?}",
        env.added
    );
    assert!(env.results.is_empty(), "{:?}", env.results);
    assert_eq!(msg, b"Subject: x\r\n\r\nhi\r\n");
    let (_, _, got) = run(&cases[1]).await;
    let (env, _) = &got[0];
    assert!(env.added.contains("Message-ID: <"), "{:?}", env.added);
    assert!(env.results.is_empty(), "{:?}", env.results);
    let (_, _, got) = run(&cases[2]).await;
    let (env, msg) = &got[0];
    assert_eq!(env.added, "");
    assert!(
        env.results
            .starts_with("Authentication-Results: mx.example.test;\r\n\tspf=temperror"),
        "{:?}",
        env.results
    );
    assert_eq!(msg, b"Subject: y\r\n\r\nhi\r\n");
}
