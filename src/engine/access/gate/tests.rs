//! The gate as a table: the whole Access Control matrix (SMTP Authentication × IP Range
//! Control × listener role × client kind) through the pure recipient decision, and the Safe IP
//! rule through every abuse defence.

use super::*;
use crate::engine::config::{Account, Config};

/// A client address of each kind the manual distinguishes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    /// Inside the allowed IP ranges.
    Inside,
    /// Outside them.
    Outside,
    /// Listed as a Safe IP (and outside the ranges).
    Safe,
    /// An address of this computer (loopback), with "Block IPs assigned to this computer".
    OwnBlocked,
    /// An address of this computer, with "Allow IPs assigned to this computer".
    OwnAllowed,
}

fn config(auth: bool, ranges: bool, who: Who) -> Config {
    let mut c = Config {
        domains: vec!["example.test".into()],
        accounts: vec![Account {
            address: "alice@example.test".into(),
            password: "$argon2id$unused".into(),
            ..Default::default()
        }],
        ..Config::default()
    };
    c.access.smtp_auth.enabled = auth;
    c.access.ip_range.enabled = ranges;
    c.access.ip_range.ranges = vec!["192.0.2.0/24".into()];
    c.access.safe_ips = vec!["203.0.113.9".into()];
    c.access.allow_own_ips = who == Who::OwnAllowed;
    c.access.block_own_ips = who == Who::OwnBlocked;
    c
}

fn ip_of(who: Who) -> IpAddr {
    match who {
        Who::Inside => "192.0.2.5",
        Who::Outside => "198.51.100.7",
        Who::Safe => "203.0.113.9",
        Who::OwnBlocked | Who::OwnAllowed => "127.0.0.1",
    }
    .parse()
    .unwrap()
}

/// What the manual says: the incoming SMTP never relays; Safe IPs and allowed own IPs always
/// may; blocked own IPs never may; no control enabled is an open relay; otherwise every
/// enabled condition must hold.
fn manual_says(role: Role, auth: bool, ranges: bool, who: Who, logged_in: bool) -> bool {
    if role == Role::Incoming {
        return false;
    }
    match who {
        Who::Safe | Who::OwnAllowed => true,
        Who::OwnBlocked => false,
        Who::Inside | Who::Outside => {
            let open_relay = !auth && !ranges;
            let in_range = who == Who::Inside;
            open_relay || ((!ranges || in_range) && (!auth || logged_in))
        }
    }
}

#[test]
fn access_control_matrix() {
    let login = Login::Account("alice@example.test".into());
    let mut rows = 0;
    for role in [Role::Incoming, Role::Outgoing, Role::Both] {
        for auth in [false, true] {
            for ranges in [false, true] {
                for who in [
                    Who::Inside,
                    Who::Outside,
                    Who::Safe,
                    Who::OwnBlocked,
                    Who::OwnAllowed,
                ] {
                    for logged_in in [false, true] {
                        let cur = Current::new(config(auth, ranges, who), None);
                        let ip = ip_of(who);
                        let l = logged_in.then_some(&login);
                        let verdict = recipient::resolve("x@elsewhere.test", role, ip, l, &cur);
                        let relayed = matches!(verdict, RcptVerdict::Relay { .. });
                        let want = manual_says(role, auth, ranges, who, logged_in);
                        assert_eq!(
                            relayed, want,
                            "role {role:?} auth {auth} ranges {ranges} {who:?} login {logged_in}: {verdict:?}"
                        );
                        if !relayed {
                            assert!(matches!(verdict, RcptVerdict::RelayDenied { .. }));
                        }
                        // Local accounts are taken from everyone, on every listener.
                        assert!(matches!(
                            recipient::resolve("Alice@EXAMPLE.test", role, ip, l, &cur),
                            RcptVerdict::Local(ref r) if r.address == "alice@example.test"
                        ));
                        // A separate outgoing port turns away at connect exactly the clients
                        // no login could ever privilege.
                        let refused = relay::refuse_at_connect(role, ip, &cur).is_some();
                        let hopeless =
                            role == Role::Outgoing && !manual_says(role, auth, ranges, who, true);
                        assert_eq!(
                            refused, hopeless,
                            "connect: {role:?} {auth} {ranges} {who:?}"
                        );
                        rows += 1;
                    }
                }
            }
        }
    }
    assert_eq!(rows, 3 * 2 * 2 * 5 * 2);
}

#[test]
fn unknown_local_users_and_postmaster() {
    let mut c = config(true, false, Who::Outside);
    let cur = Current::new(c.clone(), None);
    let ip = ip_of(Who::Outside);
    assert!(matches!(
        recipient::resolve("bob@example.test", Role::Both, ip, None, &cur),
        RcptVerdict::Unknown { reply, .. } if reply == reply::USER_UNKNOWN
    ));
    assert!(matches!(
        recipient::resolve("", Role::Both, ip, None, &cur),
        RcptVerdict::Unknown { reply, .. } if reply == reply::NO_POSTMASTER
    ));
    c.accounts.push(Account {
        address: "postmaster@example.test".into(),
        password: "$argon2id$unused".into(),
        ..Default::default()
    });
    let cur = Current::new(c, None);
    assert!(matches!(
        recipient::resolve("", Role::Incoming, ip, None, &cur),
        RcptVerdict::Local(r) if r.address == "postmaster@example.test"
    ));
}

fn strict() -> Config {
    let mut c = config(true, false, Who::Outside);
    c.abuse.max_connections_per_ip = 1;
    c.abuse.lockout.failures = 1;
    c.abuse.tarpit.after_failures = 0;
    c.abuse.tarpit.block_after = 1;
    c.abuse.transfer.max_messages_per_hour = 1;
    c
}

fn client(peer: SocketAddr, role: Role) -> Client<'static> {
    Client {
        session: "t1",
        peer,
        role,
        helo: Some("c.test"),
        login: None,
    }
}

#[tokio::test]
async fn safe_ips_overrule_every_abuse_defence() {
    let gate = Gate::new(EventBus::new());
    let cur = Current::new(strict(), None);
    for ip in ["203.0.113.9", "::ffff:203.0.113.9"] {
        let peer = SocketAddr::new(ip.parse().unwrap(), 1);
        let c = client(peer, Role::Both);
        let guards: Vec<_> = (0..5)
            .map(|_| {
                gate.accept(&cur, peer, 0, 100)
                    .expect("a Safe IP always connects")
            })
            .collect();
        assert_eq!(guards.len(), 5);
        for _ in 0..5 {
            let out = gate
                .authenticate(&cur, &c, "alice@example.test".into(), "wrong".into())
                .await;
            assert_eq!(out, AuthOutcome::Failure(None));
        }
        assert_eq!(gate.auth_start(&cur, &c), Decision::Pass);
        assert_eq!(gate.rcpt_failed(&cur, &c, 50), (Duration::ZERO, None));
        for _ in 0..5 {
            assert_eq!(gate.end_of_data(&cur, &c, b"x\r\n", 3), Decision::Pass);
        }
        assert_eq!(
            gate.mail(&cur, &c, "a@remote.test", &mut CheckCache::default())
                .await,
            Decision::Pass
        );
    }
}

#[tokio::test]
async fn strangers_meet_every_defence_and_a_later_safe_listing_lifts_the_block() {
    let gate = Gate::new(EventBus::new());
    let mut cfg = strict();
    let cur = Current::new(cfg.clone(), None);
    let peer: SocketAddr = "198.51.100.7:1".parse().unwrap();
    let c = client(peer, Role::Both);
    let g = gate.accept(&cur, peer, 0, 100).expect("first connection");
    assert!(
        gate.accept(&cur, peer, 0, 100).is_err(),
        "one connection per IP"
    );
    assert_eq!(
        gate.accept(&cur, "198.51.100.8:1".parse().unwrap(), 100, 100)
            .err(),
        Some(reply::TOO_MANY_CONNECTIONS),
        "Max Connections Per Port"
    );
    drop(g);
    let out = gate
        .authenticate(&cur, &c, "alice@example.test".into(), "wrong".into())
        .await;
    let AuthOutcome::Failure(Some(lockout)) = out else {
        panic!("one failure locks out: {out:?}")
    };
    assert_eq!(lockout.reply.code, 421);
    assert!(lockout.close.is_some());
    assert!(matches!(gate.auth_start(&cur, &c), Decision::Refuse(r) if r.close.is_some()));
    assert!(matches!(
        gate.mail(&cur, &c, "a@remote.test", &mut CheckCache::default()).await,
        Decision::Refuse(r) if r.reply.code == 421
    ));
    assert!(
        gate.accept(&cur, peer, 0, 100).is_err(),
        "blocked at connect"
    );
    // The admin lists the address as safe: the block no longer applies.
    cfg.access.safe_ips.push("198.51.100.0/24".into());
    let cur = Current::new(cfg, None);
    assert!(gate.accept(&cur, peer, 0, 100).is_ok());
    assert_eq!(gate.auth_start(&cur, &c), Decision::Pass);
}

#[test]
fn tarpit_and_transfer_limits_for_strangers() {
    let gate = Gate::new(EventBus::new());
    let cur = Current::new(strict(), None);
    let c = client("198.51.100.7:1".parse().unwrap(), Role::Both);
    let (_, block) = gate.rcpt_failed(&cur, &c, 1);
    assert!(block.is_some_and(|r| r.close.is_some() && r.reply.code == 421));
    let other = client("198.51.100.9:1".parse().unwrap(), Role::Both);
    assert_eq!(gate.end_of_data(&cur, &other, b"x\r\n", 3), Decision::Pass);
    assert!(matches!(
        gate.end_of_data(&cur, &other, b"x\r\n", 3),
        Decision::Refuse(r) if r.reply.code == 452 && r.close.is_none()
    ));
}

#[test]
fn hops_and_dnsbl_verdicts() {
    let loop_msg = "Received: x\r\n".repeat(MAX_HOPS) + "\r\nReceived: in the body\r\n";
    assert_eq!(hop_count(loop_msg.as_bytes()), MAX_HOPS);
    assert_eq!(hop_count(b"Subject: x\r\n\r\nReceived: body\r\n"), 0);
    let ip: IpAddr = "192.0.2.1".parse().unwrap();
    let zones = vec!["a.test".to_string(), "b.test".to_string()];
    assert_eq!(dnsbl_verdict(ip, &[], 1, Action::Refuse), Decision::Pass);
    assert_eq!(
        dnsbl_verdict(ip, &zones[..1], 2, Action::Refuse),
        Decision::Pass
    );
    assert!(matches!(
        dnsbl_verdict(ip, &zones, 2, Action::Refuse),
        Decision::Refuse(r) if r.reply.code == 554 && r.close.is_some()
    ));
    assert_eq!(
        dnsbl_verdict(ip, &zones, 1, Action::Tag),
        Decision::Tag(vec![
            "client [192.0.2.1] is listed in a.test, b.test".into()
        ])
    );
}

#[tokio::test(start_paused = true)]
async fn password_checks_are_capped_engine_wide() {
    let gate = Gate::new(EventBus::new());
    let cur = Current::new(strict(), None);
    let c = client("198.51.100.7:1".parse().unwrap(), Role::Both);
    let all = gate.auth_slots.available_permits() as u32;
    let busy = gate
        .auth_slots
        .clone()
        .acquire_many_owned(all)
        .await
        .unwrap();
    let out = gate
        .authenticate(&cur, &c, "alice@example.test".into(), "x".into())
        .await;
    assert_eq!(out, AuthOutcome::Busy, "every check busy: come back later");
    drop(busy);
    let out = gate
        .authenticate(&cur, &c, "alice@example.test".into(), "x".into())
        .await;
    assert!(matches!(out, AuthOutcome::Failure(_)), "{out:?}");
}
