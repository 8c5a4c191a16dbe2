//! Max Account Size (`accounts[].max_size`, `postern account quota`): swaks and our raw
//! client against a real server. Under the quota mail is delivered; a message that would pass
//! it gets `552 5.2.2` after DATA with nothing written; an account already full (its folders
//! counted) gets `552 5.2.2` at RCPT; in a transaction with another recipient that has room,
//! that one gets its copy and the sender a failure notice for the full one.

mod common;

use std::fs;
use std::process::Command;
use std::time::Duration;

use common::*;

const BOB: &str = "bob@example.test";
const CAROL: &str = "carol@example.test";

fn swaks(port: u16, from: &str, to: &str, body: &str) -> Out {
    let mut cmd = Command::new("swaks");
    cmd.args([
        "--to",
        to,
        "--from",
        from,
        "--server",
        &format!("127.0.0.1:{port}"),
        "--helo",
        "client.test",
        "--timeout",
        "20",
        "--body",
        body,
    ]);
    run_with_timeout(cmd, None, Duration::from_secs(60))
}

/// A server with alice, bob and carol, where `quotas` are set with the CLI before it starts.
fn server(quotas: &[(&str, &str)]) -> Server {
    let mut s = Server::prepare(Config::default());
    for a in [BOB, CAROL] {
        s.cli_stdin(&["account", "add", a, "--password-stdin"], "pw\n")
            .assert_ok();
    }
    for (a, size) in quotas {
        s.cli(&["account", "quota", a, size]).assert_ok();
    }
    s.spawn();
    s.wait_ready(s.cfg.incoming_port);
    s
}

/// `n` lines of 100 octets.
fn lines(n: usize) -> String {
    format!("{}\n", "x".repeat(99)).repeat(n)
}

/// Every file in a Maildir folder's `sub` directory.
fn files(s: &Server, user: &str, folder: &str, sub: &str) -> Vec<std::path::PathBuf> {
    list_files(&s.maildir(DOMAIN, user).join(folder).join(sub))
}

#[test]
fn under_the_quota_delivers_and_a_message_past_it_is_refused_after_data_with_nothing_written() {
    let s = server(&[(ALICE, "64K"), (BOB, "2K")]);
    let cfg = fs::read_to_string(&s.config_path).unwrap();
    assert!(cfg.contains("max_size: 65536"), "{cfg}");
    // A size the validation refuses is reported with its field, and nothing changes.
    let bad = s.cli(&["account", "quota", BOB, "10"]);
    bad.assert_failed();
    assert!(bad.stderr.contains("max_size"), "{}", bad.stderr);
    assert!(
        s.cli(&["account", "quota", BOB, "lots"])
            .stderr
            .contains("size")
    );
    assert_eq!(fs::read_to_string(&s.config_path).unwrap(), cfg);
    let list = s.cli(&["account", "list"]);
    assert!(
        list.stdout.contains("alice@example.test  (max 64K)\n"),
        "{}",
        list.stdout
    );
    assert!(
        list.stdout.contains("carol@example.test\n"),
        "{}",
        list.stdout
    );

    let o = swaks(s.port(), "x@remote.test", ALICE, "a small message");
    assert!(o.ok(), "{}\n{}", o.stdout, o.stderr);
    assert_eq!(s.maildir_files(DOMAIN, "alice").len(), 1);

    let big = lines(100);
    let o = swaks(s.port(), "x@remote.test", BOB, &big);
    assert!(!o.ok(), "{}", o.stdout);
    assert!(
        o.stdout.contains("<** 552 5.2.2 Mailbox full"),
        "refused after DATA:\n{}",
        o.stdout
    );
    // RCPT was accepted (bob was empty), so the refusal came at the end of DATA.
    assert!(o.stdout.contains("<-  250 2.1.5"), "{}", o.stdout);
    for sub in ["new", "cur", "tmp"] {
        assert!(files(&s, "bob", "", sub).is_empty(), "bob/{sub}");
    }
    // A message that fits still goes through.
    let o = swaks(s.port(), "x@remote.test", BOB, "short");
    assert!(o.ok(), "{}", o.stdout);
    assert_eq!(s.maildir_files(DOMAIN, "bob").len(), 1);
}

#[test]
fn a_full_account_is_refused_at_rcpt_counting_its_folders_and_a_shared_transaction_still_reaches_the_others()
 {
    let s = server(&[(ALICE, "8K")]);
    let chunk = lines(30); // 3,000 octets
    // 3K of 8K: delivered.
    let o = swaks(s.port(), "x@remote.test", ALICE, &chunk);
    assert!(o.ok(), "{}", o.stdout);

    // A second one (each copy is about 3.7K with its header fields): about 7.4K of 8K.
    let o = swaks(s.port(), "x@remote.test", ALICE, &chunk);
    assert!(o.ok(), "{}", o.stdout);
    assert_eq!(s.maildir_files(DOMAIN, "alice").len(), 2);

    // From carol, to alice (no room for 3K more) and bob: one reply for both, so bob gets
    // his copy and carol a failure notice naming 5.2.2 for alice.
    let mut cmd = Command::new("swaks");
    cmd.args([
        "--to",
        &format!("{ALICE},{BOB}"),
        "--from",
        CAROL,
        "--server",
        &format!("127.0.0.1:{}", s.port()),
        "--helo",
        "client.test",
        "--body",
        &chunk,
    ]);
    let o = run_with_timeout(cmd, None, Duration::from_secs(60));
    assert!(o.ok(), "{}\n{}", o.stdout, o.stderr);
    assert_eq!(s.maildir_files(DOMAIN, "bob").len(), 1, "bob got his copy");
    assert_eq!(s.maildir_files(DOMAIN, "alice").len(), 2, "alice got none");
    let notice = poll(Duration::from_secs(60), "carol's failure notice", || {
        let f = s.maildir_files(DOMAIN, "carol");
        let text = fs::read_to_string(f.first()?).ok()?;
        Some(text)
    });
    assert!(notice.contains("5.2.2"), "{notice}");
    assert!(notice.contains(ALICE), "{notice}");
    assert_eq!(s.maildir_files(DOMAIN, "alice").len(), 2, "still none");

    // A message moved into her Archive by a client (outside Postern: the usage is scanned
    // again) fills her to the limit: the next mail is refused at RCPT, before any data.
    std::thread::sleep(Duration::from_millis(50));
    fs::write(
        s.maildir(DOMAIN, "alice")
            .join(".Archive/cur/1.M1.client:2,S"),
        vec![b'x'; 2000],
    )
    .unwrap();
    let mut c = s.connect();
    c.ehlo();
    c.expect("MAIL FROM:<x@remote.test>", 250, "2.1.0");
    c.expect(&format!("RCPT TO:<{ALICE}>"), 552, "5.2.2");
    c.expect(&format!("RCPT TO:<{BOB}>"), 250, "2.1.5");
    c.expect("RSET", 250, "");
    // A size declared at MAIL that would pass bob's limit is refused at RCPT too.
    s.cli(&["account", "quota", BOB, "4K"]).assert_ok();
    poll(DEADLINE, "the new quota in force", || {
        let mut c = s.connect();
        c.ehlo();
        c.expect("MAIL FROM:<x@remote.test> SIZE=5000", 250, "2.1.0");
        (c.cmd(&format!("RCPT TO:<{BOB}>")).code == 552).then_some(())
    });
    c.expect("MAIL FROM:<x@remote.test> SIZE=100", 250, "2.1.0");
    c.expect(&format!("RCPT TO:<{BOB}>"), 250, "2.1.5");
}
