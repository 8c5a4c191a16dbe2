//! DNSBL, SPF and reverse-DNS checks against a real DNS server: dnsmasq (Debian package
//! `dnsmasq-base`) on a free loopback port, serving a block list, SPF TXT records, PTR and
//! address records from a generated configuration file. Each test starts its own server and
//! kills it when it ends. The client addresses are passed to the checks directly, so any
//! address can play the client.

use postern::engine::access::dnsbl::listed_in;
use postern::engine::access::rdns::rdns_check;
use postern::engine::access::spf::{self, SpfResult, check_host};
use postern::engine::dns::Resolver;
use std::io::Write;
use std::net::{IpAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The records served. `test` and the reverse zones are answered from these alone
/// (`local=`), so a missing name is NXDOMAIN; any other name gets REFUSED (no upstream).
const ZONE: &str = r#"
local=/test/
local=/in-addr.arpa/
local=/ip6.arpa/

# DNSBL bl.test lists 127.0.0.2 and 2001:db8::2; bl2.test lists 127.0.0.2 too;
# odd.test answers with a non-listing code for 127.0.0.2.
address=/2.0.0.127.bl.test/127.0.0.2
address=/2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test/127.0.0.4
address=/2.0.0.127.bl2.test/127.0.0.10
address=/2.0.0.127.odd.test/127.255.255.254

# SPF.
txt-record=pass.test,"v=spf1 ip4:127.0.0.1 -all"
txt-record=soft.test,"v=spf1 ip4:192.0.2.0/24 ~all"
txt-record=neutral.test,"v=spf1 ?all"
txt-record=default.test,"v=spf1 ip4:192.0.2.1"
txt-record=include.test,"v=spf1 include:pass.test -all"
txt-record=redirect.test,"v=spf1 redirect=include.test"
txt-record=chain.test,"v=spf1 include:soft.test include:a.test redirect=mx.test"
txt-record=a.test,"v=spf1 a -all"
host-record=a.test,127.0.0.7
txt-record=mx.test,"v=spf1 mx/30 -all"
mx-host=mx.test,mail.mx.test,10
host-record=mail.mx.test,127.0.0.8
txt-record=ptr.test,"v=spf1 ptr -all"
host-record=mail.ptr.test,192.0.2.30
txt-record=ip6.test,"v=spf1 ip6:2001:db8::/32 -all"
txt-record=exists.test,"v=spf1 exists:%{ir}.%{l}.ok.test -all"
address=/1.0.0.127.alice.ok.test/127.0.0.2
txt-record=split.test,"v=spf1 ip4:192.0.2.1 ","ip4:127.0.0.1 -all"
txt-record=nospf.test,"google-site-verification=abc"
txt-record=two.test,"v=spf1 -all"
txt-record=two.test,"v=spf1 +all"
txt-record=broken.test,"v=spf1 ip4:127.0.0.1/40 -all"
txt-record=loop.test,"v=spf1 include:loop.test -all"
txt-record=ping.test,"v=spf1 redirect=pong.test"
txt-record=pong.test,"v=spf1 redirect=ping.test"
txt-record=voids.test,"v=spf1 a:nx1.test a:nx2.test a:nx3.test +all"
txt-record=twovoids.test,"v=spf1 a:nx1.test a:nx2.test +all"
txt-record=includenone.test,"v=spf1 include:nospf.test -all"
txt-record=redirectnone.test,"v=spf1 redirect=nospf.test"
txt-record=temp.test,"v=spf1 include:elsewhere.example -all"
txt-record=tempafter.test,"v=spf1 ip4:127.0.0.1 include:elsewhere.example -all"

# Reverse DNS: 192.0.2.10 is forward-confirmed; 192.0.2.11 points at a name with another
# address; 192.0.2.12 has no PTR.
host-record=mail.good.test,192.0.2.10
ptr-record=11.2.0.192.in-addr.arpa,liar.test
host-record=liar.test,192.0.2.99
# 192.0.2.13's PTR "name" is its own address text: no forward confirmation in that.
ptr-record=13.2.0.192.in-addr.arpa,192.0.2.13
"#;

/// A dnsmasq process on 127.0.0.1:`port`, killed on drop.
struct DnsServer {
    /// The process.
    child: Child,
    /// `127.0.0.1:port`.
    addr: String,
    /// Holds the configuration and the log.
    _dir: tempfile::TempDir,
    /// dnsmasq's own log, shown when it fails to start.
    log: PathBuf,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that is free for UDP and TCP on 127.0.0.1 right now.
fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn dnsmasq_binary() -> PathBuf {
    for p in [
        "/usr/sbin/dnsmasq",
        "/usr/local/sbin/dnsmasq",
        "/usr/bin/dnsmasq",
    ] {
        if std::path::Path::new(p).exists() {
            return p.into();
        }
    }
    panic!("dnsmasq not found: install the Debian package dnsmasq-base (scripts/test.sh does)");
}

/// Starts dnsmasq with [`ZONE`] and waits until it answers.
async fn start_dns() -> (DnsServer, Resolver) {
    let bin = dnsmasq_binary();
    for _attempt in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("zone.conf");
        std::fs::File::create(&conf)
            .unwrap()
            .write_all(ZONE.as_bytes())
            .unwrap();
        let log = dir.path().join("dnsmasq.log");
        let port = free_port();
        let child = Command::new(&bin)
            .arg("--keep-in-foreground")
            .arg(format!("--port={port}"))
            .arg("--listen-address=127.0.0.1")
            .arg("--bind-interfaces")
            .arg("--no-resolv")
            .arg("--no-hosts")
            .arg("--no-poll")
            .arg("--pid-file")
            .arg("--user=root")
            .arg(format!("--conf-file={}", conf.display()))
            .arg(format!("--log-facility={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("stderr")).unwrap(),
            ))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut server = DnsServer {
            child,
            addr: format!("127.0.0.1:{port}"),
            _dir: dir,
            log,
        };
        let resolver = Resolver::new(std::slice::from_ref(&server.addr)).expect("resolver");
        // Readiness: poll until the server answers (no assertion on how long that takes).
        for _ in 0..100 {
            if let Ok(Some(_)) = server.child.try_wait() {
                break;
            }
            if let Ok(txt) = resolver.txt("pass.test").await
                && !txt.is_empty()
            {
                return (server, resolver);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let stderr = std::fs::read_to_string(server._dir.path().join("stderr")).unwrap_or_default();
        let log = std::fs::read_to_string(&server.log).unwrap_or_default();
        eprintln!(
            "dnsmasq on {} did not come up, retrying:\n{stderr}\n{log}",
            server.addr
        );
    }
    panic!("dnsmasq did not start");
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn zones(z: &[&str]) -> Vec<String> {
    z.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn dnsbl_lists_127_0_0_2_but_not_127_0_0_3() {
    let (_dns, r) = start_dns().await;
    let (listed, warnings) = listed_in(&r, ip("127.0.0.2"), &zones(&["bl.test", "bl2.test"])).await;
    assert_eq!(listed, ["bl.test", "bl2.test"]);
    assert!(warnings.is_empty(), "{warnings:?}");

    let (listed, warnings) = listed_in(&r, ip("127.0.0.3"), &zones(&["bl.test", "bl2.test"])).await;
    assert!(listed.is_empty(), "{listed:?}");
    assert!(
        warnings.is_empty(),
        "NXDOMAIN is a clean answer: {warnings:?}"
    );

    // IPv4-mapped clients are looked up as IPv4; zones are normalized and deduplicated.
    let (listed, _) = listed_in(
        &r,
        ip("::ffff:127.0.0.2"),
        &zones(&["BL.test.", "bl.test", ""]),
    )
    .await;
    assert_eq!(listed, ["bl.test"]);
}

#[tokio::test]
async fn dnsbl_ipv6_uses_reversed_nibbles() {
    let (_dns, r) = start_dns().await;
    let (listed, warnings) = listed_in(&r, ip("2001:db8::2"), &zones(&["bl.test"])).await;
    assert_eq!(listed, ["bl.test"], "{warnings:?}");
    let (listed, _) = listed_in(&r, ip("2001:db8::3"), &zones(&["bl.test"])).await;
    assert!(listed.is_empty());
}

#[tokio::test]
async fn dnsbl_failures_and_odd_answers_are_warnings_not_listings() {
    let (_dns, r) = start_dns().await;
    // odd.test answers 127.255.255.254 (a "you may not query" code); elsewhere.example is
    // refused by the server (it has no upstream).
    let (listed, warnings) = listed_in(
        &r,
        ip("127.0.0.2"),
        &zones(&["odd.test", "elsewhere.example", "bl.test"]),
    )
    .await;
    assert_eq!(listed, ["bl.test"]);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].contains("odd.test") && warnings[0].contains("127.255.255.254"),
        "{warnings:?}"
    );
    assert!(warnings[1].contains("elsewhere.example"), "{warnings:?}");
}

/// Checks `domain` for `client` with the sender `alice@domain`; the reason is in the message.
async fn assert_spf(r: &Resolver, client: &str, domain: &str, want: SpfResult) {
    let out = spf::check(
        r,
        ip(client),
        domain,
        &format!("alice@{domain}"),
        "helo.test",
    )
    .await;
    assert_eq!(out.result, want, "{client} for {domain}: {}", out.reason);
}

#[tokio::test]
async fn spf_basic_results() {
    let (_dns, r) = start_dns().await;
    assert_spf(&r, "127.0.0.1", "pass.test", SpfResult::Pass).await;
    assert_spf(&r, "127.0.0.5", "pass.test", SpfResult::Fail).await;
    assert_spf(&r, "127.0.0.1", "soft.test", SpfResult::SoftFail).await;
    // soft.test authorizes 192.0.2.0/24.
    assert_spf(&r, "192.0.2.200", "soft.test", SpfResult::Pass).await;
    assert_spf(&r, "127.0.0.1", "neutral.test", SpfResult::Neutral).await;
    assert_spf(&r, "127.0.0.1", "default.test", SpfResult::Neutral).await;
    assert_spf(&r, "127.0.0.1", "nospf.test", SpfResult::None).await;
    assert_spf(&r, "127.0.0.1", "nxdomain.test", SpfResult::None).await;
    assert_spf(&r, "127.0.0.1", "two.test", SpfResult::PermError).await;
    // mail-auth reads `ip4:127.0.0.1/40` leniently (RFC 7208 4.6 would make the syntax error
    // a permerror): the address itself matches.
    assert_spf(&r, "127.0.0.1", "broken.test", SpfResult::Pass).await;
    assert_spf(&r, "127.0.0.5", "broken.test", SpfResult::Fail).await;
    // A record split into several strings is joined before parsing.
    assert_spf(&r, "127.0.0.1", "split.test", SpfResult::Pass).await;
    assert_spf(&r, "127.0.0.1", "ip6.test", SpfResult::Fail).await;
    assert_spf(&r, "2001:db8:5::1", "ip6.test", SpfResult::Pass).await;
    // The null sender: the HELO name is checked, as postmaster@helo.
    assert_eq!(
        check_host(&r, ip("127.0.0.1"), "pass.test", "", "pass.test").await,
        SpfResult::Pass
    );
    // Not a domain SPF can check.
    assert_spf(&r, "127.0.0.1", "localhost", SpfResult::None).await;
    assert_spf(&r, "127.0.0.1", "[127.0.0.1]", SpfResult::None).await;
}

#[tokio::test]
async fn spf_include_redirect_a_mx_ptr_exists() {
    let (_dns, r) = start_dns().await;
    assert_spf(&r, "127.0.0.1", "include.test", SpfResult::Pass).await;
    assert_spf(&r, "127.0.0.5", "include.test", SpfResult::Fail).await;
    assert_spf(&r, "127.0.0.1", "redirect.test", SpfResult::Pass).await;
    assert_spf(&r, "127.0.0.5", "redirect.test", SpfResult::Fail).await;
    assert_spf(&r, "127.0.0.7", "a.test", SpfResult::Pass).await;
    assert_spf(&r, "127.0.0.6", "a.test", SpfResult::Fail).await;
    // mx/30: 127.0.0.8's neighbours pass too, 127.0.0.12 does not.
    assert_spf(&r, "127.0.0.8", "mx.test", SpfResult::Pass).await;
    assert_spf(&r, "127.0.0.11", "mx.test", SpfResult::Pass).await;
    assert_spf(&r, "127.0.0.12", "mx.test", SpfResult::Fail).await;
    // (hickory answers loopback PTR queries itself with "localhost", hence TEST-NET here.)
    assert_spf(&r, "192.0.2.30", "ptr.test", SpfResult::Pass).await;
    assert_spf(&r, "192.0.2.31", "ptr.test", SpfResult::Fail).await;
    // exists:%{ir}.%{l}.ok.test -> 1.0.0.127.alice.ok.test
    assert_spf(&r, "127.0.0.1", "exists.test", SpfResult::Pass).await;
    assert_spf(&r, "127.0.0.5", "exists.test", SpfResult::Fail).await;
    assert_eq!(
        check_host(
            &r,
            ip("127.0.0.1"),
            "exists.test",
            "bob@exists.test",
            "h.test"
        )
        .await,
        SpfResult::Fail
    );
    // chain.test: include (softfail: no match), include a.test, then redirect to mx.test.
    assert_spf(&r, "127.0.0.7", "chain.test", SpfResult::Pass).await;
    assert_spf(&r, "127.0.0.8", "chain.test", SpfResult::Pass).await;
    assert_spf(&r, "127.0.0.1", "chain.test", SpfResult::Fail).await;
}

#[tokio::test]
async fn spf_limits_and_errors() {
    let (_dns, r) = start_dns().await;
    // include and redirect loops run into the 10-lookup limit.
    let out = spf::check(
        &r,
        ip("127.0.0.1"),
        "loop.test",
        "alice@loop.test",
        "h.test",
    )
    .await;
    assert_eq!(out.result, SpfResult::PermError, "{}", out.reason);
    assert_spf(&r, "127.0.0.1", "ping.test", SpfResult::PermError).await;
    // Void lookups do not stop the evaluation (mail-auth has no void-lookup limit, a SHOULD
    // of RFC 7208 4.6.4): a record with three ends in its `+all` like one with two.
    assert_spf(&r, "127.0.0.1", "voids.test", SpfResult::Pass).await;
    assert_spf(&r, "127.0.0.1", "twovoids.test", SpfResult::Pass).await;
    // include/redirect of a domain without SPF.
    assert_spf(&r, "127.0.0.1", "includenone.test", SpfResult::PermError).await;
    assert_spf(&r, "127.0.0.1", "redirectnone.test", SpfResult::PermError).await;
    // A DNS failure in an include is a temperror, unless a mechanism before it matched.
    assert_spf(&r, "127.0.0.1", "temp.test", SpfResult::TempError).await;
    assert_spf(&r, "127.0.0.1", "tempafter.test", SpfResult::Pass).await;
    assert_spf(&r, "127.0.0.1", "refused.example", SpfResult::TempError).await;
}

#[tokio::test]
async fn rdns_forward_confirmed_or_explained() {
    let (_dns, r) = start_dns().await;
    assert_eq!(
        rdns_check(&r, ip("192.0.2.10"), "mail.good.test").await,
        Ok(())
    );
    assert_eq!(
        rdns_check(&r, ip("::ffff:192.0.2.10"), "[192.0.2.10]").await,
        Ok(())
    );
    let e = rdns_check(&r, ip("192.0.2.11"), "liar.test")
        .await
        .unwrap_err();
    assert!(
        e.contains("liar.test does not resolve to 192.0.2.11"),
        "{e}"
    );
    let e = rdns_check(&r, ip("192.0.2.12"), "whoever.test")
        .await
        .unwrap_err();
    assert!(e.contains("no PTR record"), "{e}");
    let e = rdns_check(&r, ip("192.0.2.10"), "[192.0.2.77]")
        .await
        .unwrap_err();
    assert!(e.contains("claims 192.0.2.77"), "{e}");
}

/// The session runs these checks inside spawned tasks: their futures must be `Send`.
#[test]
fn check_futures_are_send() {
    fn send<T: Send>(_: &T) {}
    let r = Resolver::new(&["127.0.0.1:9".to_string()]).unwrap();
    let zones = zones(&["bl.test"]);
    let a = check_host(
        &r,
        ip("192.0.2.1"),
        "example.com",
        "a@example.com",
        "h.example",
    );
    let b = spf::check(&r, ip("192.0.2.1"), "example.com", "", "h.example");
    let c = rdns_check(&r, ip("192.0.2.1"), "h.example");
    let d = listed_in(&r, ip("192.0.2.1"), &zones);
    send(&a);
    send(&b);
    send(&c);
    send(&d);
}
