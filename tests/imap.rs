//! IMAP over real sockets: Python's imaplib (LOGINDISABLED before TLS, STARTTLS, LIST with
//! SPECIAL-USE, SELECT, FETCH, STORE, SEARCH, COPY/MOVE with COPYUID, APPEND with
//! APPENDUID, EXPUNGE, all checked in the Maildir files), UIDs and flags across a restart
//! and mail delivered while down, raw transcripts for bad input, IDLE woken by an SMTP
//! delivery, two sessions seeing each other's changes, the lockout shared with SMTP AUTH,
//! passwords kept out of the log, STARTTLS dropping pipelined plaintext, a `kill -9` during
//! EXPUNGE or an APPEND, a listener moved by a config change, QUOTA with APPEND and COPY past
//! it, and third-party clients (curl, mbsync, mutt).

mod common;

use common::*;
use serde_json::Value;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A server with IMAP on free ports (plain and implicit TLS) on 127.0.0.1.
struct ImapServer {
    s: Server,
    port: u16,
    ssl_port: u16,
}

fn start(extra: &str) -> ImapServer {
    start_with(extra, |_| {})
}

/// As [`start`], with more changes to the test configuration.
fn start_with(extra: &str, more: impl FnOnce(&mut Config)) -> ImapServer {
    let mut p = prepare_with(extra, more);
    p.s.spawn();
    p.s.wait_ready(p.s.cfg.incoming_port);
    wait_imap(p.port);
    p
}

/// As [`start_with`], but not started: the command line may change the data directory first.
fn prepare_with(extra: &str, more: impl FnOnce(&mut Config)) -> ImapServer {
    let mut cfg = Config::default();
    more(&mut cfg);
    let (port, ssl_port) = two_free_ports(&[cfg.incoming_port, cfg.outgoing_port]);
    cfg.imap_ron = format!(
        "enabled: true, port: {port}, ssl_port: {ssl_port}, listen_ip: \"127.0.0.1\", {extra}"
    );
    ImapServer {
        s: Server::prepare(cfg),
        port,
        ssl_port,
    }
}

fn wait_imap(port: u16) {
    poll(DEADLINE, "the IMAP listener", || {
        let mut c = Imap::try_connect("127.0.0.1", port).ok()?;
        c.line().starts_with("* OK").then_some(())
    });
}

/// Runs tests/peers/imap_peer.py with `actions` (JSON): one JSON value per action.
fn imaplib(port: u16, mode: &str, password: &str, actions: Value) -> Vec<Value> {
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(peer_script("imap_peer.py"))
        .arg(port.to_string())
        .arg(mode)
        .arg(ALICE)
        .arg(password);
    let o = run_with_timeout(cmd, Some(&actions.to_string()), Duration::from_secs(60));
    assert!(o.ok(), "imap_peer.py failed:\n{}\n{}", o.stdout, o.stderr);
    o.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[track_caller]
fn ok(v: &Value) -> &Value {
    assert_eq!(v["ok"], true, "{v}");
    &v["data"]
}

/// Everything in a JSON value's strings, joined (for "contains" checks).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join("\n"),
        Value::Object(o) => o.values().map(text).collect::<Vec<_>>().join("\n"),
        other => other.to_string(),
    }
}

/// File names in a folder's `cur/` and `new/`.
fn names(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["cur", "new"] {
        for f in list_files(&dir.join(sub)) {
            out.push(f.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}

/// A raw IMAP client (from a chosen 127.0.0.x source address).
struct Imap {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Imap {
    fn try_connect(src: &str, port: u16) -> std::io::Result<Imap> {
        use socket2::{Domain, SockAddr, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        let src: SocketAddr = format!("{src}:0").parse().unwrap();
        s.bind(&SockAddr::from(src))?;
        let dst: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        s.connect_timeout(&SockAddr::from(dst), IO_TIMEOUT)?;
        let w: TcpStream = s.into();
        w.set_read_timeout(Some(Duration::from_secs(20)))?;
        let r = BufReader::new(w.try_clone()?);
        Ok(Imap { w, r })
    }

    /// Connects from `src` and reads the greeting.
    fn connect(src: &str, port: u16) -> (Imap, String) {
        let mut c = Imap::try_connect(src, port).unwrap();
        let g = c.line();
        (c, g)
    }

    /// One line, without CRLF; empty when the server closed the connection.
    fn line(&mut self) -> String {
        self.next_line().unwrap_or_default()
    }

    /// One line, without CRLF; `None` when the server closed the connection.
    fn next_line(&mut self) -> Option<String> {
        let mut l = String::new();
        match self.r.read_line(&mut l) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(l.trim_end_matches(['\r', '\n']).to_string()),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        let _ = self.w.write_all(bytes);
    }

    /// Sends `tag rest` and returns every line up to the tagged one (included).
    fn cmd(&mut self, tag: &str, rest: &str) -> Vec<String> {
        self.send(format!("{tag} {rest}\r\n").as_bytes());
        self.until(tag)
    }

    /// Lines up to the one starting with `tag ` (or a closed connection).
    fn until(&mut self, tag: &str) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let Some(l) = self.next_line() else {
                out.push(String::new());
                return out;
            };
            let done = l.starts_with(&format!("{tag} "));
            out.push(l);
            if done {
                return out;
            }
        }
    }

    fn login(&mut self) -> Vec<String> {
        self.cmd("L", &format!("LOGIN {ALICE} {PASSWORD}"))
    }
}

#[track_caller]
fn tagged_ok(lines: &[String]) {
    assert!(
        lines
            .last()
            .is_some_and(|l| l.split(' ').nth(1) == Some("OK")),
        "{lines:?}"
    );
}

#[test]
fn imaplib_reads_files_and_flags_over_starttls() {
    let p = start("plaintext_login: Never");
    deliver_to_alice(&p.s, "first", &["hello"]);
    deliver_to_alice(&p.s, "second", &["world"]);
    let inbox = p.s.maildir(DOMAIN, "alice");
    // Before TLS: LOGINDISABLED, and LOGIN is refused.
    let r = imaplib(
        p.port,
        "plain",
        PASSWORD,
        serde_json::json!([["caps"], ["login"]]),
    );
    let caps = text(ok(&r[0]));
    assert!(
        caps.contains("LOGINDISABLED") && caps.contains("STARTTLS"),
        "{caps}"
    );
    assert_eq!(r[1]["ok"], false, "{}", r[1]);
    let r = imaplib(
        p.port,
        "starttls",
        PASSWORD,
        serde_json::json!([
            ["login"],
            ["list", "\"\"", "*"],
            ["select", "INBOX"],
            ["fetch", "1:*", "(UID FLAGS RFC822.SIZE)"],
            ["fetch", "2", "(BODY.PEEK[])"],
            ["store", "1", "+FLAGS", "(\\Flagged \\Seen $Label1)"],
            ["search", null, "UNSEEN"],
            ["search", null, "FLAGGED"],
            ["copy", "1", "Archive"],
            ["uid", "MOVE", "2", "Trash"],
            [
                "append",
                "Drafts",
                "(\\Draft)",
                null,
                "Subject: draft\r\n\r\nwip\r\n"
            ],
            ["status", "Drafts", "(MESSAGES UIDNEXT)"],
            ["create", "Projects/2026"],
            ["list", "\"\"", "Projects/%"],
            ["logout"],
        ]),
    );
    assert!(text(ok(&r[0])).contains("Logged in"));
    let list = text(ok(&r[1]));
    for (name, attr) in [
        ("Sent", "\\Sent"),
        ("Drafts", "\\Drafts"),
        ("Trash", "\\Trash"),
        ("Junk", "\\Junk"),
        ("Archive", "\\Archive"),
    ] {
        assert!(
            list.lines()
                .any(|l| l.contains(attr) && l.ends_with(&format!("\"{name}\""))),
            "{name}: {list}"
        );
    }
    assert!(list.contains("\"INBOX\""), "{list}");
    assert_eq!(ok(&r[2]), &serde_json::json!(["2"]));
    let fetched = text(ok(&r[3]));
    assert!(
        fetched.contains("1 (UID 1 FLAGS () RFC822.SIZE"),
        "{fetched}"
    );
    assert!(fetched.contains("2 (UID 2 FLAGS ()"), "{fetched}");
    let body = text(ok(&r[4]));
    assert!(
        body.contains("Subject: second") && body.contains("world"),
        "{body}"
    );
    // STORE: the flags are in the file name, the keyword a letter of postern-keywords.
    let stored = text(ok(&r[5]));
    assert!(
        stored.contains("\\Seen") && stored.contains("$Label1"),
        "{stored}"
    );
    assert_eq!(
        ok(&r[6]),
        &serde_json::json!(["2"]),
        "BODY.PEEK leaves 2 unseen"
    );
    assert_eq!(ok(&r[7]), &serde_json::json!(["1"]));
    let copy = text(ok(&r[8]));
    assert!(copy.contains("[COPYUID "), "{copy}");
    assert!(copy.contains(" 1 1]"), "{copy}");
    assert_eq!(r[9]["ok"], true, "{}", r[9]);
    assert_eq!(text(&r[9]["untagged"]["EXPUNGE"]), "2", "{}", r[9]);
    let append = text(ok(&r[10]));
    assert!(append.contains("[APPENDUID "), "{append}");
    assert!(
        text(ok(&r[11])).contains("MESSAGES 1 UIDNEXT 2"),
        "{}",
        r[11]
    );
    assert_eq!(r[12]["ok"], true, "{}", r[12]);
    assert!(text(ok(&r[13])).contains("\"Projects/2026\""), "{}", r[13]);

    let inbox_files = names(&inbox);
    assert_eq!(inbox_files.len(), 1, "{inbox_files:?}");
    assert!(inbox_files[0].ends_with(":2,FSa"), "{inbox_files:?}");
    assert_eq!(
        fs::read_to_string(inbox.join("postern-keywords")).unwrap(),
        "$Label1\n"
    );
    let archive = names(&inbox.join(".Archive"));
    assert_eq!(archive.len(), 1);
    assert!(archive[0].ends_with(":2,FSa"), "{archive:?}");
    assert_eq!(names(&inbox.join(".Trash")).len(), 1);
    let drafts = names(&inbox.join(".Drafts"));
    assert!(
        drafts.len() == 1 && drafts[0].ends_with(":2,D"),
        "{drafts:?}"
    );
    assert!(inbox.join(".Projects.2026/cur").is_dir());

    // EXPUNGE over implicit TLS: the file is unlinked.
    let r = imaplib(
        p.ssl_port,
        "implicit",
        PASSWORD,
        serde_json::json!([
            ["login"],
            ["select", "INBOX"],
            ["store", "1", "+FLAGS", "\\Deleted"],
            ["expunge"],
            ["select", "Archive"],
            ["fetch", "1", "(FLAGS)"],
            [
                "fetch",
                "1",
                "(ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (SUBJECT)])"
            ],
        ]),
    );
    // ENVELOPE, BODYSTRUCTURE and a header section through the session (message.rs).
    let parts = text(ok(&r[6]));
    assert!(parts.contains("ENVELOPE ("), "{parts}");
    assert!(parts.contains("\"first\""), "{parts}");
    assert!(
        parts
            .to_ascii_uppercase()
            .contains("BODYSTRUCTURE (\"TEXT\" \"PLAIN\""),
        "{parts}"
    );
    assert!(parts.contains("Subject: first"), "{parts}");
    assert_eq!(ok(&r[3]), &serde_json::json!(["1"]), "{}", r[3]);
    assert!(names(&inbox).is_empty());
    let flags = text(ok(&r[5]));
    assert!(
        flags.contains("\\Flagged") && flags.contains("$Label1"),
        "{flags}"
    );
}

#[test]
fn uids_and_flags_survive_a_restart_and_mail_delivered_while_down() {
    let mut p = start("");
    deliver_to_alice(&p.s, "one", &["1"]);
    deliver_to_alice(&p.s, "two", &["2"]);
    let (mut c, _) = Imap::connect("127.0.0.1", p.port);
    tagged_ok(&c.login());
    let sel = c.cmd("a", "SELECT INBOX");
    let validity = sel
        .iter()
        .find(|l| l.contains("[UIDVALIDITY "))
        .unwrap()
        .clone();
    tagged_ok(&c.cmd("b", "UID STORE 2 +FLAGS.SILENT (\\Answered)"));
    c.cmd("z", "LOGOUT");
    p.s.signal("TERM");
    p.s.wait_exit(Duration::from_secs(60));
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
    wait_imap(p.port);
    let (mut c, _) = Imap::connect("127.0.0.1", p.port);
    tagged_ok(&c.login());
    let sel = c.cmd("a", "SELECT INBOX");
    assert!(sel.contains(&validity), "{sel:?}");
    assert!(sel.contains(&"* 3 EXISTS".to_string()), "{sel:?}");
    let f = c.cmd("b", "FETCH 1:* (UID FLAGS)");
    assert_eq!(
        f[..3],
        [
            "* 1 FETCH (UID 1 FLAGS ())",
            "* 2 FETCH (UID 2 FLAGS (\\Answered))",
            "* 3 FETCH (UID 3 FLAGS ())"
        ]
    );
    assert!(names(&dir).iter().any(|n| n.ends_with(":2,R")));
}

#[test]
fn bad_input_gets_bad_or_no_and_the_session_goes_on() {
    let p = start("");
    let (mut c, g) = Imap::connect("127.0.0.1", p.port);
    assert!(g.starts_with("* OK [CAPABILITY IMAP4rev1 IMAP4rev2"), "{g}");
    // Wrong state: SELECT before login, FETCH before SELECT.
    assert!(
        c.cmd("a1", "SELECT INBOX")
            .last()
            .unwrap()
            .starts_with("a1 BAD")
    );
    // Unknown command, and garbage.
    assert!(
        c.cmd("a2", "FROBNICATE x")
            .last()
            .unwrap()
            .starts_with("a2 BAD")
    );
    assert!(c.cmd("a3", "\"(((").last().unwrap().starts_with("a3 BAD"));
    // An overlong line (over 8 KiB) is read to its end and refused.
    let long = format!("a4 NOOP {}", "x".repeat(20_000));
    let r = c.cmd("a4", &long[3..]);
    assert!(r.last().unwrap().contains("BAD [TOOBIG]"), "{r:?}");
    // A synchronising literal over the limit is refused before it is sent.
    c.send(b"a5 LOGIN {1000000}\r\n");
    let l = c.line();
    assert!(l.starts_with("a5 NO [TOOBIG]"), "{l}");
    tagged_ok(&c.login());
    assert!(
        c.cmd("a6", "FETCH 1 FLAGS")
            .last()
            .unwrap()
            .starts_with("a6 BAD")
    );
    // A literal within the limit, and LITERAL+.
    c.send(b"a7 CREATE {4}\r\n");
    assert!(c.line().starts_with("+ "));
    c.send(b"Work\r\n");
    tagged_ok(&c.until("a7"));
    c.send(b"a8 STATUS {4+}\r\nWork (MESSAGES)\r\n");
    let r = c.until("a8");
    assert!(
        r.contains(&"* STATUS \"Work\" (MESSAGES 0)".to_string()),
        "{r:?}"
    );
    assert!(
        c.cmd("a9", "SELECT Nope")
            .last()
            .unwrap()
            .starts_with("a9 NO")
    );
    tagged_ok(&c.cmd("b1", "NOOP"));
    // LIST-EXTENDED as SPECIAL-USE clients (Thunderbird) send it.
    let r = c.cmd("l1", "LIST (SPECIAL-USE) \"\" \"*\"");
    tagged_ok(&r);
    assert_eq!(r.len(), 6, "the five special-use folders: {r:?}");
    assert!(
        r.contains(&"* LIST (\\HasNoChildren \\Junk) \"/\" \"Junk\"".to_string()),
        "{r:?}"
    );
    let r = c.cmd("l2", "LIST \"\" \"%\" RETURN (SUBSCRIBED)");
    assert!(
        r.iter()
            .any(|l| l.contains("\\Subscribed") && l.ends_with("\"Work\"")),
        "{r:?}"
    );
    // LIST-STATUS (part of IMAP4rev2): a STATUS line after each folder's LIST line.
    let r = c.cmd("l3", "LIST \"\" \"W%\" RETURN (STATUS (MESSAGES UNSEEN))");
    tagged_ok(&r);
    assert_eq!(
        r[..2],
        [
            "* LIST (\\HasNoChildren) \"/\" \"Work\"".to_string(),
            "* STATUS \"Work\" (MESSAGES 0 UNSEEN 0)".to_string()
        ],
        "{r:?}"
    );
    // ENABLE IMAP4rev2: SEARCH answers ESEARCH; NAMESPACE and ID.
    let r = c.cmd("e1", "ENABLE IMAP4rev2");
    assert!(r.contains(&"* ENABLED IMAP4rev2".to_string()), "{r:?}");
    let r = c.cmd("e2", "NAMESPACE");
    assert!(
        r.contains(&"* NAMESPACE ((\"\" \"/\")) NIL NIL".to_string()),
        "{r:?}"
    );
    let r = c.cmd("e3", "ID NIL");
    assert!(r.iter().any(|l| l.starts_with("* ID (")), "{r:?}");
    let r = c.cmd("e4", "SELECT INBOX");
    assert!(
        r.contains(&"* LIST () \"/\" \"INBOX\"".to_string()),
        "{r:?}"
    );
    let r = c.cmd("e5", "UID SEARCH ALL");
    assert!(
        r.contains(&"* ESEARCH (TAG \"e5\") UID".to_string()),
        "{r:?}"
    );
    // A non-synchronising literal over the limit ends the session.
    c.send(b"b2 CREATE {999999999+}\r\n");
    assert!(c.line().starts_with("* BYE [TOOBIG]"));
    assert_eq!(c.line(), "");
    // Twenty BADs end a session.
    let (mut c, _) = Imap::connect("127.0.0.1", p.port);
    for i in 0..19 {
        assert!(
            c.cmd(&format!("x{i}"), "BOGUS")
                .last()
                .unwrap()
                .contains(" BAD ")
        );
    }
    c.send(b"x19 BOGUS\r\n");
    assert!(c.line().starts_with("x19 BAD"));
    assert_eq!(c.line(), "* BYE Too many errors");
    assert_eq!(c.line(), "");
}

#[test]
fn idle_is_woken_by_an_smtp_delivery() {
    let p = start("");
    let (mut c, _) = Imap::connect("127.0.0.1", p.port);
    tagged_ok(&c.login());
    let sel = c.cmd("a", "SELECT INBOX");
    assert!(sel.contains(&"* 0 EXISTS".to_string()), "{sel:?}");
    c.send(b"i IDLE\r\n");
    assert!(c.line().starts_with("+ "));
    deliver_to_alice(&p.s, "while idle", &["ping"]);
    // The read times out after 20 s; the server does not poll, the delivery wakes it.
    assert_eq!(c.line(), "* 1 EXISTS");
    c.send(b"DONE\r\n");
    tagged_ok(&c.until("i"));
    let f = c.cmd("f", "FETCH 1 (BODY.PEEK[])");
    assert!(f.iter().any(|l| l == "Subject: while idle"), "{f:?}");
}

/// APPEND past the account's Max Account Size is refused with `[OVERQUOTA]` (RFC 9208) and
/// writes nothing; one that fits is stored.
/// Max Account Size over IMAP: the QUOTA extension (RFC 9208) reports it, APPEND and COPY past
/// it are refused with `[OVERQUOTA]` and store nothing, MOVE is not (it adds nothing), and the
/// Maildir++ `maildirsize` file is kept current by each step rather than rebuilt by a scan.
#[test]
fn quota_is_reported_and_append_or_copy_past_it_is_refused_with_overquota() {
    let mut p = prepare_with("", |_| {});
    p.s.cli(&["account", "quota", ALICE, "4K"]).assert_ok();
    p.s.spawn();
    p.s.wait_ready(p.s.cfg.incoming_port);
    wait_imap(p.port);
    let dir = p.s.maildir(DOMAIN, "alice");
    let (drafts, archive) = (dir.join(".Drafts"), dir.join(".Archive"));
    // 2,100 octets, then 3,000: the first fits in 4 KiB, a copy of it or the second does not.
    let body = |subject: &str, n: usize| format!("Subject: {subject}\r\n\r\n{}", "x".repeat(n));
    let (a, b) = (body("a", 2086), body("b", 2986));
    assert_eq!((a.len(), b.len()), (2100, 3000));
    let r = imaplib(
        p.port,
        "plain",
        PASSWORD,
        serde_json::json!([
            ["login"],
            ["caps"],
            ["getquotaroot", "INBOX"],
            ["append", "Drafts", "()", null, a],
            ["select", "Drafts"],
            ["copy", "1", "Archive"],
            ["raw", "UID MOVE 1 Archive"],
            ["append", "INBOX", "()", null, b],
            ["append", "INBOX", "()", null, "Subject: c\r\n\r\nok\r\n"],
            ["getquota", "\"\""],
            ["getquota", "other"],
            ["setquota", "\"\"", "(STORAGE 100000)"],
        ]),
    );
    let caps = text(&r[1]);
    assert!(
        caps.contains("QUOTA") && caps.contains("QUOTA=RES-STORAGE"),
        "{caps}"
    );
    let root = text(ok(&r[2]));
    assert!(
        root.contains("\"INBOX\" \"\""),
        "the account's one root: {root}"
    );
    assert!(root.contains("(STORAGE 0 4)"), "{root}");
    assert!(text(ok(&r[3])).contains("APPENDUID"), "{}", r[3]);
    assert!(
        text(&r[5]).contains("OVERQUOTA"),
        "COPY past the quota: {}",
        r[5]
    );
    assert_eq!(r[6]["typ"], "OK", "MOVE adds nothing: {}", r[6]);
    assert!(text(&r[7]).contains("OVERQUOTA"), "{}", r[7]);
    assert!(
        text(ok(&r[8])).contains("APPENDUID"),
        "room for a small one: {}",
        r[8]
    );
    // The refused COPY and APPEND stored nothing: the moved message and the small one.
    assert!(names(&drafts).is_empty());
    assert_eq!(names(&archive).len(), 1);
    assert_eq!(names(&dir).len(), 1);
    let q = text(ok(&r[9]));
    assert!(
        q.contains("(STORAGE 3 4)"),
        "2,100 + 18 octets, rounded up: {q}"
    );
    assert!(text(&r[10]).contains("NONEXISTENT"), "{}", r[10]);
    assert!(text(&r[11]).contains("NOPERM"), "{}", r[11]);
    // Header, the first scan, then one line per message added: no scan since, although the
    // MOVE and the flag changes touched the folders.
    let size = fs::read_to_string(dir.join("maildirsize")).unwrap();
    assert_eq!(size.lines().count(), 4, "{size}");
    assert!(size.starts_with("4096S\n0 0\n2100 1\n"), "{size}");

    // Without a Max Account Size the account has no quota root.
    p.s.cli(&["account", "quota", ALICE, "0"]).assert_ok();
    let r = poll(DEADLINE, "the quota lifted", || {
        let r = imaplib(
            p.port,
            "plain",
            PASSWORD,
            serde_json::json!([["login"], ["getquotaroot", "INBOX"], ["getquota", "\"\""]]),
        );
        (!text(&r[1]).contains("STORAGE")).then_some(r)
    });
    assert_eq!(r[1]["typ"], "OK", "{}", r[1]);
    assert!(text(&r[2]).contains("NONEXISTENT"), "{}", r[2]);
}

#[test]
fn two_sessions_see_each_others_flags_and_expunges() {
    let p = start("");
    deliver_to_alice(&p.s, "one", &["1"]);
    deliver_to_alice(&p.s, "two", &["2"]);
    let (mut a, _) = Imap::connect("127.0.0.1", p.port);
    let (mut b, _) = Imap::connect("127.0.0.1", p.port);
    tagged_ok(&a.login());
    tagged_ok(&b.login());
    tagged_ok(&a.cmd("s", "SELECT INBOX"));
    tagged_ok(&b.cmd("s", "SELECT INBOX"));
    tagged_ok(&a.cmd("f", "STORE 1 +FLAGS.SILENT (\\Seen)"));
    let r = b.cmd("n", "NOOP");
    assert!(
        r.contains(&"* 1 FETCH (FLAGS (\\Seen))".to_string()),
        "{r:?}"
    );
    tagged_ok(&a.cmd("d", "STORE 2 +FLAGS.SILENT (\\Deleted)"));
    tagged_ok(&a.cmd("e", "EXPUNGE"));
    let r = b.cmd("n2", "NOOP");
    assert!(r.contains(&"* 2 EXPUNGE".to_string()), "{r:?}");
    // A delivery shows in both.
    deliver_to_alice(&p.s, "three", &["3"]);
    for c in [&mut a, &mut b] {
        let r = c.cmd("n3", "NOOP");
        assert!(r.contains(&"* 2 EXISTS".to_string()), "{r:?}");
    }
    // A session's own change is not reported back to it; a COPY into its own folder is.
    tagged_ok(&a.cmd("f2", "STORE 2 +FLAGS.SILENT (\\Flagged)"));
    let r = a.cmd("n4", "NOOP");
    assert_eq!(r.len(), 1, "{r:?}");
    let r = b.cmd("n4", "NOOP");
    assert!(
        r.contains(&"* 2 FETCH (FLAGS (\\Flagged))".to_string()),
        "{r:?}"
    );
    let r = a.cmd("c", "COPY 1 INBOX");
    assert!(r.contains(&"* 3 EXISTS".to_string()), "{r:?}");
    let r = b.cmd("n5", "NOOP");
    assert!(r.contains(&"* 3 EXISTS".to_string()), "{r:?}");
}

/// IMAP logins and SMTP AUTH count towards one lockout per IP.
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
    // Three failed IMAP logins from 127.0.0.3 lock SMTP AUTH out.
    for _ in 0..3 {
        let (mut c, _) = Imap::connect("127.0.0.3", p.port);
        let r = c.cmd("l", &format!("LOGIN {ALICE} wrong"));
        assert!(r.last().unwrap().starts_with("l NO"), "{r:?}");
    }
    let mut m = SourceClient::from("127.0.0.3", port);
    let (code, text) = m.reply();
    let refused = code != 220 || {
        m.cmd("EHLO c");
        m.cmd(&format!("AUTH PLAIN {}", sasl_plain(ALICE, PASSWORD)))
            .0
            != 235
    };
    assert!(refused, "SMTP after failed IMAP logins: {code} {text}");
    // And the other way: failed SMTP AUTHs from 127.0.0.2 refuse its IMAP login.
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
    let (mut c, g) = Imap::connect("127.0.0.2", p.port);
    let refused = g.starts_with("* BYE") || !c.login().last().unwrap().starts_with("L OK");
    assert!(refused, "IMAP after failed SMTP AUTHs: {g}");
    let (mut c, _) = Imap::connect("127.0.0.4", p.port);
    tagged_ok(&c.login());
}

#[test]
fn curl_lists_and_fetches_over_starttls_and_imaps() {
    let p = start("");
    deliver_to_alice(&p.s, "for curl", &["curl body line"]);
    let curl = |url: String| {
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "-S", "-k", "--ssl-reqd", "--max-time", "30"])
            .arg("-u")
            .arg(format!("{ALICE}:{PASSWORD}"))
            .arg(url);
        let o = run_with_timeout(cmd, None, Duration::from_secs(60));
        assert!(o.ok(), "curl: {}\n{}", o.stdout, o.stderr);
        o.stdout
    };
    let list = curl(format!("imap://127.0.0.1:{}/", p.port));
    assert!(
        list.contains("\"Archive\"") && list.contains("\\Archive"),
        "{list}"
    );
    let msg = curl(format!("imaps://127.0.0.1:{}/INBOX;UID=1", p.ssl_port));
    assert!(
        msg.contains("Subject: for curl") && msg.contains("curl body line"),
        "{msg}"
    );
}

/// The issue's "done when": swaks delivers, mbsync pulls over IMAPS, the message is moved
/// to Archive locally, and after the next sync the server's Archive has it and INBOX not;
/// a flag set locally reaches the server.
#[test]
fn mbsync_syncs_a_move_to_archive_and_flags_both_ways() {
    let p = start("");
    let swaks = Command::new("swaks")
        .args(["--server", "127.0.0.1", "--port"])
        .arg(p.s.port().to_string())
        .args([
            "--to",
            ALICE,
            "--from",
            "bob@remote.test",
            "--header",
            "Subject: for mbsync",
        ])
        .output()
        .unwrap();
    assert!(
        swaks.status.success(),
        "{}",
        String::from_utf8_lossy(&swaks.stdout)
    );
    deliver_to_alice(&p.s, "to flag", &["x"]);
    let local = p.s.dir.path().join("local");
    fs::create_dir_all(&local).unwrap();
    let rc = p.s.dir.path().join("mbsyncrc");
    fs::write(
        &rc,
        format!(
            "IMAPAccount a\nHost 127.0.0.1\nPort {port}\nUser {ALICE}\nPass {PASSWORD}\n\
             SSLType IMAPS\nCertificateFile {cert}\n\n\
             IMAPStore remote\nAccount a\n\n\
             MaildirStore near\nPath {l}/\nInbox {l}/INBOX\nSubFolders Verbatim\n\n\
             Channel c\nFar :remote:\nNear :near:\nPatterns *\nCreate Both\nExpunge Both\n\
             SyncState *\n",
            port = p.ssl_port,
            cert = p.s.data_dir.join("tls/cert.pem").display(),
            l = local.display(),
        ),
    )
    .unwrap();
    let mbsync = || {
        let mut cmd = Command::new("mbsync");
        cmd.arg("-c").arg(&rc).arg("-a");
        let o = run_with_timeout(cmd, None, Duration::from_secs(60));
        assert!(o.ok(), "mbsync: {}\n{}", o.stdout, o.stderr);
    };
    mbsync();
    let local_inbox = local.join("INBOX");
    let mut files: Vec<_> = ["cur", "new"]
        .iter()
        .flat_map(|s| list_files(&local_inbox.join(s)))
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    let (moved, flagged): (Vec<_>, Vec<_>) = files.into_iter().partition(|f| {
        fs::read_to_string(f)
            .unwrap()
            .contains("Subject: for mbsync")
    });
    // Move locally to Archive (a new file there: without mbsync's ,U= UID).
    let name = moved[0].file_name().unwrap().to_string_lossy().into_owned();
    let plain = name.split(",U=").next().unwrap().to_string();
    let archive_new = local.join("Archive/new");
    assert!(archive_new.is_dir(), "mbsync made the local Archive");
    fs::rename(
        &moved[0],
        archive_new.join(plain.split(':').next().unwrap()),
    )
    .unwrap();
    // Flag the other one locally.
    let f = &flagged[0];
    let fname = f.file_name().unwrap().to_string_lossy().into_owned();
    let base = fname.split(":2,").next().unwrap();
    fs::rename(f, local_inbox.join("cur").join(format!("{base}:2,FS"))).unwrap();
    mbsync();
    let server = p.s.maildir(DOMAIN, "alice");
    let archive: Vec<_> = names(&server.join(".Archive"));
    assert_eq!(archive.len(), 1, "{archive:?}");
    let found = ["cur", "new"]
        .iter()
        .flat_map(|s| list_files(&server.join(".Archive").join(s)))
        .any(|f| {
            fs::read_to_string(f)
                .unwrap()
                .contains("Subject: for mbsync")
        });
    assert!(found, "the server's Archive holds the moved mail");
    let inbox = names(&server);
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert!(
        inbox[0].ends_with(":2,FS"),
        "the local flags came back: {inbox:?}"
    );
}

/// Passwords (LOGIN, AUTHENTICATE's data) never reach the log; plaintext pipelined behind
/// STARTTLS is dropped, not run under TLS.
/// mutt, run in a pseudo-terminal and driven by pushed keys over IMAPS (the server's
/// certificate trusted through its `certificate_file`): it opens INBOX, shows the message
/// (which marks it read), saves it to Archive and syncs, which deletes and expunges it in
/// INBOX. The Maildir shows the result.
#[test]
fn mutt_reads_a_message_and_saves_it_to_archive() {
    let p = start("");
    deliver_to_alice(&p.s, "for mutt", &["hello from the test"]);
    let rc = p.s.dir.path().join("muttrc");
    fs::write(
        &rc,
        format!(
            "set imap_user=\"{ALICE}\"\nset imap_pass=\"{PASSWORD}\"\n\
             set folder=\"imaps://127.0.0.1:{port}/\"\nset spoolfile=\"+INBOX\"\n\
             set certificate_file=\"{cert}\"\nset ssl_verify_host=no\n\
             set header_cache=\"\"\nset move=no\nset delete=yes\nset confirmappend=no\n\
             set quit=yes\nset wait_key=no\nset mail_check=0\nset sleep_time=0\n",
            port = p.ssl_port,
            cert = p.s.data_dir.join("tls/cert.pem").display(),
        ),
    )
    .unwrap();
    let keys = "<display-message><exit><save-message>=Archive<enter><sync-mailbox><quit>";
    let mut cmd = Command::new("script");
    cmd.args(["-qec"])
        .arg(format!(
            "mutt -n -F '{}' -e 'push \"{keys}\"'",
            rc.display()
        ))
        .arg("/dev/null")
        .env("TERM", "vt100")
        .env("LINES", "24")
        .env("COLUMNS", "80");
    let o = run_with_timeout(cmd, None, Duration::from_secs(60));
    assert!(o.ok(), "mutt: {}\n{}", o.stdout, o.stderr);
    let dir = p.s.maildir(DOMAIN, "alice");
    assert!(
        names(&dir).is_empty(),
        "INBOX: {:?}\n{}",
        names(&dir),
        o.stdout
    );
    let archived = names(&dir.join(".Archive"));
    assert_eq!(archived.len(), 1, "{archived:?}\n{}", o.stdout);
    assert!(archived[0].ends_with(":2,S"), "saved as read: {archived:?}");
    let text = fs::read_to_string(dir.join(".Archive/cur").join(&archived[0])).unwrap();
    assert!(text.contains("Subject: for mutt") && text.contains("hello from the test"));
}

#[test]
fn passwords_are_not_logged_and_starttls_drops_pipelined_plaintext() {
    let p = start_with("", |c| c.extra_ron = "logs: (level: Debug),".into());
    let (mut c, _) = Imap::connect("127.0.0.1", p.port);
    let r = c.cmd("a", &format!("LOGIN {ALICE} not-the-password"));
    assert!(
        r.last().unwrap().starts_with("a NO [AUTHENTICATIONFAILED]"),
        "{r:?}"
    );
    let token = sasl_plain(ALICE, PASSWORD);
    tagged_ok(&c.cmd("b", &format!("AUTHENTICATE PLAIN {token}")));
    // STARTTLS with a command behind it in the same packet: after the handshake the server
    // answers the next command, never the injected one.
    let script = r#"
import socket, ssl, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
f = s.makefile("rb")
f.readline()
s.sendall(b"a STARTTLS\r\nb LOGOUT\r\n")
print(f.readline().decode().strip())
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
t = ctx.wrap_socket(s)
t.sendall(b"c NOOP\r\n")
print(t.recv(4096).decode().strip())
"#;
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg("-c").arg(script).arg(p.port.to_string());
    let o = run_with_timeout(cmd, None, Duration::from_secs(30));
    assert!(o.ok(), "{}\n{}", o.stdout, o.stderr);
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert!(lines[0].starts_with("a OK"), "{lines:?}");
    assert!(
        lines[1].starts_with("c OK"),
        "the injected LOGOUT ran: {lines:?}"
    );
    let log = poll(DEADLINE, "the commands in the log file", || {
        let text: String = list_files(&p.s.data_dir.join("logs"))
            .iter()
            .map(|f| fs::read_to_string(f).unwrap_or_default())
            .collect();
        (text.contains("LOGIN <redacted>") && text.contains("AUTHENTICATE PLAIN <redacted>"))
            .then_some(text)
    });
    assert!(
        !log.contains("not-the-password") && !log.contains(&token),
        "a password in the log:\n{log}"
    );
}

/// A `kill -9` in the middle of an EXPUNGE of 5,000 messages: after a restart every message is
/// either gone or there with its old UID, no UID is handed out twice, and the folder opens.
#[test]
fn a_kill_during_expunge_leaves_a_consistent_folder() {
    let mut p = start("");
    let dir = p.s.maildir(DOMAIN, "alice");
    for i in 0..5000 {
        // Names in delivery order, so message i gets UID i + 1.
        fs::write(
            dir.join(format!("new/1700000000.M{i:06}P1Q{i}.x")),
            format!("Subject: m{i}\r\n\r\nbody\r\n"),
        )
        .unwrap();
    }
    let (mut c, _) = Imap::connect("127.0.0.1", p.port);
    tagged_ok(&c.login());
    let sel = c.cmd("s", "SELECT INBOX");
    assert!(sel.contains(&"* 5000 EXISTS".to_string()), "{sel:?}");
    tagged_ok(&c.cmd("d", "STORE 1:* +FLAGS.SILENT (\\Deleted)"));
    // Killed while it unlinks: the folder must be whole however far it got.
    c.send(b"e EXPUNGE\r\n");
    let cur = dir.join("cur");
    poll(DEADLINE, "the first unlink", || {
        (fs::read_dir(&cur).unwrap().count() < 5000).then_some(())
    });
    p.s.kill_and_restart();
    wait_imap(p.port);
    let (mut c, _) = Imap::connect("127.0.0.1", p.port);
    tagged_ok(&c.login());
    let sel = c.cmd("s", "SELECT INBOX");
    tagged_ok(&sel);
    let r = c.cmd("f", "FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    tagged_ok(&r);
    let mut uids = Vec::new();
    for l in r
        .iter()
        .filter(|l| l.starts_with("* ") && l.contains("FETCH"))
    {
        let uid: u32 = l
            .split("UID ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        uids.push(uid);
    }
    let subjects: Vec<&String> = r.iter().filter(|l| l.starts_with("Subject: ")).collect();
    assert_eq!(subjects.len(), uids.len());
    for (uid, subject) in uids.iter().zip(&subjects) {
        assert_eq!(
            **subject,
            format!("Subject: m{}", uid - 1),
            "UID {uid} kept"
        );
    }
    let mut sorted = uids.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), uids.len(), "a UID twice: {uids:?}");
    // A new message gets a UID above every one handed out before.
    deliver_to_alice(&p.s, "after", &["x"]);
    let r = c.cmd("n", "UID FETCH 5001:* (UID)");
    assert!(r.iter().any(|l| l.contains("(UID 5001)")), "{r:?}");
}

/// A raw POP3 client without TLS (logins in plaintext are allowed from loopback).
struct Pop3Raw {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Pop3Raw {
    /// Connects and reads the greeting.
    fn connect(port: u16) -> Pop3Raw {
        let w = TcpStream::connect(("127.0.0.1", port)).unwrap();
        w.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let r = BufReader::new(w.try_clone().unwrap());
        let mut c = Pop3Raw { w, r };
        assert!(c.line().starts_with("+OK"));
        c
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).unwrap();
        l.trim_end_matches(['\r', '\n']).to_string()
    }

    /// A command with a one-line reply.
    fn one(&mut self, cmd: &str) -> String {
        self.w.write_all(format!("{cmd}\r\n").as_bytes()).unwrap();
        self.line()
    }

    /// A command with a multi-line reply: its lines, or `None` after `-ERR`.
    fn multi(&mut self, cmd: &str) -> Option<Vec<String>> {
        if !self.one(cmd).starts_with("+OK") {
            return None;
        }
        let mut out = Vec::new();
        loop {
            match self.line() {
                l if l == "." => return Some(out),
                l => out.push(l),
            }
        }
    }
}

/// SMTP delivering 150 messages while an IMAP session flags, deletes and expunges every third
/// one and POP3 sessions delete every third one (another third), over and over, on the same
/// INBOX: a UID names one message for IMAP and POP3 alike (UIDL is the UID and UIDVALIDITY),
/// no listing shows a message twice, and at the end exactly the untouched third is left,
/// each message once, read, and nothing delivered is lost.
#[test]
fn smtp_imap_and_pop3_at_once_lose_nothing_and_show_nothing_twice() {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    const N: usize = 150;
    let pop3_port = free_port();
    let p = start_with("", |c| {
        c.pop3_ron = format!(
            "enabled: true, port: {pop3_port}, implicit_ssl: false, listen_ip: \"127.0.0.1\""
        );
    });
    let s = Arc::new(p.s);
    let done = Arc::new(AtomicBool::new(false));
    // UID -> subject number, as each client saw it.
    let seen: Arc<Mutex<BTreeMap<u32, usize>>> = Arc::default();
    let note = |seen: &Mutex<BTreeMap<u32, usize>>, uid: u32, n: usize, who: &str| {
        let mut m = seen.lock().unwrap();
        let was = *m.entry(uid).or_insert(n);
        assert_eq!(was, n, "{who}: UID {uid} named m{was} and m{n}");
    };
    let number = |subject: &str| -> usize {
        subject
            .trim()
            .strip_prefix("Subject: m")
            .and_then(|x| x.parse().ok())
            .unwrap_or_else(|| panic!("{subject:?}"))
    };

    let smtp = {
        let (s, done) = (s.clone(), done.clone());
        std::thread::spawn(move || {
            for i in 0..N {
                deliver_to_alice(&s, &format!("m{i}"), &["x"]);
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let imap = {
        let (done, seen) = (done.clone(), seen.clone());
        let port = p.port;
        std::thread::spawn(move || {
            let (mut c, _) = Imap::connect("127.0.0.1", port);
            tagged_ok(&c.login());
            tagged_ok(&c.cmd("s", "SELECT INBOX"));
            let mut expunged = BTreeSet::new();
            // Until it has seen every message POP3 does not delete (delivery into the Maildir
            // follows the 250 by a moment).
            let mut listed_ever = BTreeSet::new();
            let wanted: BTreeSet<usize> = (0..N).filter(|n| n % 3 != 1).collect();
            let until = std::time::Instant::now() + Duration::from_secs(300);
            loop {
                assert!(
                    std::time::Instant::now() < until,
                    "IMAP saw {listed_ever:?}"
                );
                let r = c.cmd(
                    "f",
                    "UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
                );
                tagged_ok(&r);
                let mut listed = BTreeSet::new();
                let mut uid = None;
                for l in &r {
                    if l.contains(" FETCH (") {
                        uid = l.split("UID ").nth(1).and_then(|x| {
                            x.split([' ', ')'])
                                .next()
                                .and_then(|u| u.parse::<u32>().ok())
                        });
                    } else if l.starts_with("Subject: ") {
                        let (u, n) = (uid.take().unwrap(), number(l));
                        note(&seen, u, n, "IMAP");
                        assert!(listed.insert(n), "IMAP listed m{n} twice: {r:?}");
                        listed_ever.insert(n);
                        if n % 3 == 0 {
                            tagged_ok(
                                &c.cmd("d", &format!("UID STORE {u} +FLAGS.SILENT (\\Deleted)")),
                            );
                            tagged_ok(&c.cmd("e", &format!("UID EXPUNGE {u}")));
                            assert!(expunged.insert(n), "m{n} expunged twice");
                        } else if n % 3 == 2 {
                            tagged_ok(
                                &c.cmd("r", &format!("UID STORE {u} +FLAGS.SILENT (\\Seen)")),
                            );
                        }
                    }
                }
                if done.load(Ordering::SeqCst) && listed_ever.is_superset(&wanted) {
                    return expunged;
                }
            }
        })
    };
    let pop3 = {
        let (done, seen) = (done.clone(), seen.clone());
        std::thread::spawn(move || {
            let mut deleted = BTreeSet::new();
            let wanted: BTreeSet<usize> = (0..N).filter(|n| n % 3 == 1).collect();
            let until = std::time::Instant::now() + Duration::from_secs(300);
            loop {
                assert!(
                    std::time::Instant::now() < until,
                    "POP3 deleted {deleted:?}"
                );
                let mut c = Pop3Raw::connect(pop3_port);
                assert!(c.one(&format!("USER {ALICE}")).starts_with("+OK"));
                // A POP3 session holds the mailbox: another one waits its turn.
                if !c.one(&format!("PASS {PASSWORD}")).starts_with("+OK") {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
                let uidl = c.multi("UIDL").expect("UIDL");
                let mut listed = BTreeSet::new();
                for l in uidl {
                    let (i, id) = l.split_once(' ').unwrap();
                    let uid = u32::from_str_radix(&id[..8], 16).unwrap();
                    // Expunged by IMAP since the POP3 session began: gone, an -ERR.
                    let Some(head) = c.multi(&format!("TOP {i} 0")) else {
                        continue;
                    };
                    let subject = head.iter().find(|h| h.starts_with("Subject: ")).unwrap();
                    let n = number(subject);
                    note(&seen, uid, n, "POP3");
                    assert!(listed.insert(n), "POP3 listed m{n} twice");
                    if n % 3 == 1 {
                        assert!(c.one(&format!("DELE {i}")).starts_with("+OK"));
                        deleted.insert(n);
                    }
                }
                assert!(c.one("QUIT").starts_with("+OK"));
                if done.load(Ordering::SeqCst) && deleted.is_superset(&wanted) {
                    return deleted;
                }
            }
        })
    };
    smtp.join().unwrap();
    let expunged = imap.join().unwrap();
    let deleted = pop3.join().unwrap();
    assert_eq!(
        expunged,
        (0..N).filter(|n| n % 3 == 0).collect::<BTreeSet<_>>()
    );
    assert_eq!(
        deleted,
        (0..N).filter(|n| n % 3 == 1).collect::<BTreeSet<_>>()
    );
    let dir = s.maildir(DOMAIN, "alice");
    let mut left = Vec::new();
    for f in ["cur", "new"]
        .iter()
        .flat_map(|sub| list_files(&dir.join(sub)))
    {
        let text = fs::read_to_string(&f).unwrap();
        let subject = text.lines().find(|l| l.starts_with("Subject: ")).unwrap();
        left.push(number(subject));
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.ends_with(":2,S"), "read by IMAP: {name}");
    }
    left.sort_unstable();
    assert_eq!(left, (0..N).filter(|n| n % 3 == 2).collect::<Vec<_>>());
}

/// A `kill -9` while a 30 MiB APPEND is being stored (as soon as its file shows in `tmp/` or
/// `cur/`): after a restart the folder holds the earlier message with its UID and, if the
/// APPEND got as far as the rename, the new one whole; never a part of it. The next message
/// gets a UID above both.
#[test]
fn a_kill_during_append_leaves_no_partial_message() {
    let mut p = start("");
    let dir = p.s.maildir(DOMAIN, "alice");
    let (mut c, _) = Imap::connect("127.0.0.1", p.port);
    tagged_ok(&c.login());
    let first = "Subject: first\r\n\r\nkept\r\n";
    c.send(format!("a APPEND INBOX {{{}+}}\r\n{first}\r\n", first.len()).as_bytes());
    tagged_ok(&c.until("a"));
    let line = format!("{}\r\n", "y".repeat(1022));
    let big = format!("Subject: big\r\n\r\n{}", line.repeat(30 * 1024));
    c.send(format!("b APPEND INBOX {{{}+}}\r\n", big.len()).as_bytes());
    c.send(big.as_bytes());
    c.send(b"\r\n");
    let (tmp, cur) = (dir.join("tmp"), dir.join("cur"));
    poll(DEADLINE, "the APPEND's file", || {
        let written =
            fs::read_dir(&tmp).unwrap().count() > 0 || fs::read_dir(&cur).unwrap().count() > 1;
        written.then_some(())
    });
    p.s.kill_and_restart();
    wait_imap(p.port);
    for f in ["cur", "new"]
        .iter()
        .flat_map(|sub| list_files(&dir.join(sub)))
    {
        let len = fs::metadata(&f).unwrap().len() as usize;
        assert!(
            len == first.len() || len == big.len(),
            "{}: {len} octets, a part of a message",
            f.display()
        );
    }
    let (mut c, _) = Imap::connect("127.0.0.1", p.port);
    tagged_ok(&c.login());
    let sel = c.cmd("s", "SELECT INBOX");
    tagged_ok(&sel);
    let r = c.cmd("f", "FETCH 1:* (UID RFC822.SIZE)");
    tagged_ok(&r);
    let fetched: Vec<&String> = r.iter().filter(|l| l.contains("FETCH")).collect();
    assert!(
        fetched[0].contains("UID 1 ") && fetched[0].contains(&format!("SIZE {}", first.len())),
        "{r:?}"
    );
    match fetched.len() {
        1 => {}
        2 => assert!(fetched[1].contains(&format!("SIZE {}", big.len())), "{r:?}"),
        _ => panic!("{r:?}"),
    }
    let n = "Subject: after\r\n\r\nx\r\n";
    let r = c.cmd("n", &format!("APPEND INBOX {{{}+}}\r\n{n}", n.len()));
    let code = r.last().unwrap();
    let uid: u32 = code
        .split("APPENDUID ")
        .nth(1)
        .and_then(|x| x.split([' ', ']']).nth(1))
        .and_then(|x| x.parse().ok())
        .unwrap_or_else(|| panic!("{r:?}"));
    assert!(uid > fetched.len() as u32, "UID {uid} after {r:?}");
}

/// A changed `imap.port` moves the listener without a restart; a port that cannot be bound
/// is reported and stops nothing else (SMTP and IMAPS keep serving).
#[test]
fn a_config_change_moves_the_listener_and_a_busy_port_stops_nothing() {
    let p = start("");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().port();
    // `config set` reports the failed bind (exit 1) and the old port keeps listening.
    let set = p.s.cli(&["config", "set", &format!("imap.port={busy}")]);
    assert!(!set.ok(), "{}", set.stdout);
    assert!(set.stdout.contains("keeps listening"), "{}", set.stdout);
    poll(DEADLINE, "the IMAP bind error in the log", || {
        p.s.stderr()
            .contains(&format!("IMAP cannot listen on 127.0.0.1:{busy}"))
            .then_some(())
    });
    p.s.connect();
    let r = imaplib(
        p.ssl_port,
        "implicit",
        PASSWORD,
        serde_json::json!([["login"]]),
    );
    ok(&r[0]);
    let mut new = free_port();
    while [busy, p.ssl_port, p.s.port()].contains(&new) {
        new = free_port();
    }
    p.s.cli(&["config", "set", &format!("imap.port={new}")])
        .assert_ok();
    wait_imap(new);
    drop(taken);
}
