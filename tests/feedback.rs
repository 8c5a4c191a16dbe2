//! What the server tells about itself: the report of a reload (`postern config set` through
//! the control socket), a listener that keeps listening when its new port is taken, and the
//! mail counters of `postern status`, the same after a restart.

mod common;

use common::*;
use std::time::Duration;

/// Whether `port` greets with 220.
fn greets(port: u16) -> bool {
    Client::try_connect(port)
        .ok()
        .and_then(|mut c| c.try_read_reply().ok())
        .is_some_and(|r| r.code == 220)
}

#[test]
fn a_taken_port_keeps_the_old_listener_and_the_reload_says_so() {
    let s = Server::start_default();
    let old = s.port();
    // Something else holds the port the listener is to move to.
    let taken = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let busy = taken.local_addr().unwrap().port();
    let out = s.cli(&["config", "set", &format!("smtp.incoming.port={busy}")]);
    out.assert_failed();
    assert!(
        out.stdout.contains("smtp.incoming.port"),
        "the report names what changed:\n{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!("127.0.0.1:{busy}"))
            && out.stdout.contains("Address already in use")
            && out.stdout.contains(&format!(
                "the old listener on 127.0.0.1:{old} keeps listening"
            )),
        "the report says the new port is taken and the old one still listens:\n{}",
        out.stdout
    );
    // It does: a client still gets its mail in on the old port.
    let mut c = Client::connect_greeted(old);
    c.begin_mail_to_alice();
    c.send(b"Subject: still here\r\n\r\nhello\r\n.\r\n")
        .unwrap();
    c.read_reply().assert(250, "");
    // `postern status` shows both: the old one up, the new one down with why.
    let st = s.cli(&["status"]);
    st.assert_ok();
    assert!(
        st.stdout.contains(&format!("listening on 127.0.0.1:{old}"))
            && st
                .stdout
                .contains(&format!("DOWN 127.0.0.1:{busy}: Address already in use")),
        "{}",
        st.stdout
    );
    // Once the port is free, the next change moves the listener and says so.
    drop(taken);
    let new = free_port();
    let out = s.cli(&["config", "set", &format!("smtp.incoming.port={new}")]);
    out.assert_ok();
    assert!(
        out.stdout.contains(&format!(
            "Incoming SMTP moved from 127.0.0.1:{old} to 127.0.0.1:{new}"
        )),
        "{}",
        out.stdout
    );
    assert!(greets(new), "the new port answers");
    assert!(!greets(old), "the old port is closed");
    // A change that binds nothing new says only what changed.
    let out = s.cli(&["config", "set", "smtp.max_errors_per_session=12"]);
    out.assert_ok();
    assert_eq!(
        out.stdout.trim(),
        "The running server applied the change (smtp.max_errors_per_session).",
    );
    // And the log line of the reload says it too.
    let log = poll(DEADLINE, "the reload's log line", || {
        let logs = list_files(&s.data_dir.join("logs"));
        let text = std::fs::read_to_string(logs.first()?).ok()?;
        text.contains("changed: smtp.max_errors_per_session")
            .then_some(text)
    });
    assert!(log.contains("Address already in use"), "{log}");
}

#[test]
fn the_counters_count_refusals_and_survive_a_restart() {
    let mut s = Server::start_default();
    assert_eq!(s.counters(), "accepted 0, sent 0, given up 0, refused 0");
    assert!(
        s.cli(&["status"])
            .stdout
            .contains("last mail delivered: none")
    );
    // One mail in, one recipient refused at RCPT, one mail refused at MAIL (its declared
    // SIZE is over the limit).
    let mut c = s.connect();
    c.begin_mail_to_alice();
    c.send(b"Subject: counted\r\n\r\nhello\r\n.\r\n").unwrap();
    c.read_reply().assert(250, "");
    c.expect("MAIL FROM:<bob@remote.test>", 250, "");
    c.expect("RCPT TO:<nobody@example.test>", 550, "5.1.1");
    c.expect("RSET", 250, "");
    c.expect("MAIL FROM:<bob@remote.test> SIZE=999999999", 552, "");
    c.expect("QUIT", 221, "");
    assert_eq!(s.counters(), "accepted 1, sent 0, given up 0, refused 2");
    // Stopped: the file has them.
    s.signal("TERM");
    assert!(s.wait_exit(Duration::from_secs(30)).success());
    let offline = s.cli(&["status"]);
    offline.assert_ok();
    assert!(
        offline.stdout.contains("no server is running")
            && offline
                .stdout
                .contains("accepted 1, sent 0, given up 0, refused 2"),
        "{}",
        offline.stdout
    );
    // The mail to alice went into her mailbox: the day is the last with a delivery (the
    // window's "Test Mail" step reads the same).
    let today = offline
        .stdout
        .split_once("today (")
        .and_then(|(_, r)| r.get(..10))
        .unwrap()
        .to_string();
    assert!(
        offline
            .stdout
            .contains(&format!("last mail delivered: {today} UTC")),
        "{}",
        offline.stdout
    );
    // Started again: the same, and counting on from there.
    s.spawn();
    s.wait_ready(s.port());
    assert_eq!(s.counters(), "accepted 1, sent 0, given up 0, refused 2");
    let mut c = s.connect();
    c.ehlo();
    c.expect("MAIL FROM:<bob@remote.test>", 250, "");
    c.expect("RCPT TO:<nobody@example.test>", 550, "5.1.1");
    c.expect("QUIT", 221, "");
    assert_eq!(s.counters(), "accepted 1, sent 0, given up 0, refused 3");
}

#[test]
fn a_damaged_counter_file_is_kept_aside_and_the_server_starts() {
    let mut s = Server::prepare(Config::default());
    std::fs::create_dir_all(&s.data_dir).unwrap();
    std::fs::write(s.data_dir.join("stats.json"), b"not json").unwrap();
    s.spawn();
    s.wait_ready(s.port());
    assert_eq!(s.counters(), "accepted 0, sent 0, given up 0, refused 0");
    assert_eq!(
        std::fs::read(s.data_dir.join("stats.json.corrupt")).unwrap(),
        b"not json"
    );
    let log = poll(DEADLINE, "the warning", || {
        let logs = list_files(&s.data_dir.join("logs"));
        let text = std::fs::read_to_string(logs.first()?).ok()?;
        text.contains("mail counters: ").then_some(text)
    });
    assert!(log.contains("stats.json.corrupt"), "{log}");
}

#[test]
fn refusals_at_connect_and_after_data_are_counted_too() {
    let s = Server::start_with(|c| {
        c.max_connections_per_port = 1;
        c.max_message_size = 1024;
    });
    // The one connection this port takes is held (once the readiness probe's own has been
    // let go: until then a connection is refused, and counted); the next is refused.
    let mut held = poll(DEADLINE, "the port's one connection", || {
        let mut c = Client::connect(s.port());
        (c.read_reply().code == 220).then_some(c)
    });
    let before: u64 = s.counters().rsplit(' ').next().unwrap().parse().unwrap();
    let mut second = Client::connect(s.port());
    assert_eq!(second.read_reply().code, 421);
    assert_eq!(
        s.counters(),
        format!("accepted 0, sent 0, given up 0, refused {}", before + 1)
    );
    // A message bigger than the limit, undeclared, is refused after DATA.
    held.begin_mail_to_alice();
    let big = format!("{}\r\n", "x".repeat(60)).repeat(50);
    held.send(format!("Subject: big\r\n\r\n{big}.\r\n").as_bytes())
        .unwrap();
    assert_eq!(held.read_reply().code, 552);
    held.expect("QUIT", 221, "");
    assert_eq!(
        s.counters(),
        format!("accepted 0, sent 0, given up 0, refused {}", before + 2)
    );
}
