//! `postern dns records` and `postern dns check` against a real DNS server (dnsmasq, through
//! `outgoing_mails.dns_hosts`), with no server running: the records to publish contain the
//! DKIM record `postern dkim show` gives; with every record right the check exits 0 and marks
//! every row ✓; with wrong and missing ones it exits 1 and marks exactly those rows ✗ with the
//! sentence that says what differs; in Relay mode the SPF record must authorise the relay host.

mod common;
mod dns_common;

use common::{DOMAIN, HOSTNAME, Out, Server};
use dns_common::DnsServer;

/// A prepared (not started) server asking `dns` for DNS, with `extra` config assignments.
fn server(dns: &DnsServer, extra: &[&str]) -> Server {
    let s = Server::prepare(common::Config::default());
    let hosts = format!("outgoing_mails.dns_hosts=[\"{}\"]", dns.addr);
    let mut args = vec!["config", "set", hosts.as_str()];
    args.extend_from_slice(extra);
    s.cli(&args).assert_ok();
    s
}

/// (name, value) of each selector, as `postern dkim show` prints them.
fn dkim_records(s: &Server) -> Vec<(String, String)> {
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
    names.into_iter().zip(values).collect()
}

/// A dnsmasq `txt-record` line, the value split in strings of at most 255 octets.
fn txt(name: &str, value: &str) -> String {
    let parts: Vec<String> = value
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", std::str::from_utf8(c).unwrap()))
        .collect();
    format!("txt-record={name},{}\n", parts.join(","))
}

/// The output line of the row with this type and name.
fn line<'a>(out: &'a Out, rtype: &str, name: &str) -> &'a str {
    out.stdout
        .lines()
        .find(|l| {
            let mut w = l.split_whitespace().skip(1);
            w.next() == Some(rtype) && w.next() == Some(&format!("{name}:"))
        })
        .unwrap_or_else(|| panic!("no {rtype} {name} row in:\n{}", out.stdout))
}

/// A DNS server whose zone the server's DKIM records need: started once without them (to
/// get the server's keys), then again with `zone` and those records.
fn with_keys(zone: impl Fn(&[(String, String)]) -> String, extra: &[&str]) -> (Server, DnsServer) {
    let placeholder = DnsServer::start("");
    let s = server(&placeholder, extra);
    let recs = dkim_records(&s);
    assert!(!recs.is_empty());
    // Authoritative for the test names: a name it does not have is NXDOMAIN, not REFUSED.
    let dns = DnsServer::start(&format!(
        "local=/test/\nlocal=/in-addr.arpa/\n{}",
        zone(&recs)
    ));
    let hosts = format!("outgoing_mails.dns_hosts=[\"{}\"]", dns.addr);
    s.cli(&["config", "set", &hosts]).assert_ok();
    (s, dns)
}

#[test]
fn records_are_zone_lines_with_the_dkim_record_of_dkim_show() {
    let dns = DnsServer::start("");
    let s = server(&dns, &[]);
    let out = s.cli(&["dns", "records"]);
    out.assert_ok();
    let text = &out.stdout;
    assert!(
        text.contains(&format!("{DOMAIN}. IN MX 10 {HOSTNAME}.")),
        "{text}"
    );
    assert!(
        text.contains(&format!("{DOMAIN}. IN TXT \"v=spf1 mx ~all\"")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "_dmarc.{DOMAIN}. IN TXT \"v=DMARC1; p=none; rua=mailto:postmaster@{DOMAIN}\""
        )),
        "{text}"
    );
    assert!(text.contains(&format!("must name {HOSTNAME}.")), "{text}");
    // The DKIM record: split in 255-octet strings on the zone line; joined, `dkim show`'s.
    let recs = dkim_records(&s);
    assert_eq!(recs.len(), 1);
    let (name, value) = &recs[0];
    let zone_line = text
        .lines()
        .find(|l| l.starts_with(&format!("{name}. IN TXT ")))
        .unwrap_or_else(|| panic!("no line for {name}:\n{text}"));
    let joined = zone_line
        .split_once(" IN TXT ")
        .unwrap()
        .1
        .replace("\" \"", "");
    assert_eq!(joined.trim_matches('"'), value);
    // This dnsmasq refuses every query: nothing is "missing", everything "could not check".
    let out = s.cli(&["dns", "check"]);
    assert_eq!(out.status.code(), Some(2), "{}{}", out.stdout, out.stderr);
    assert!(!out.stdout.contains('✗'), "{}", out.stdout);
    assert!(
        line(&out, "MX", DOMAIN).contains("(could not check)"),
        "{}",
        out.stdout
    );
    // One domain only, and not a domain of someone else.
    s.cli(&["dns", "records", DOMAIN]).assert_ok();
    s.cli(&["dns", "records", "elsewhere.test"]).assert_failed();
}

#[test]
fn check_passes_when_every_record_is_right() {
    let (s, _dns) = with_keys(
        |recs| {
            let mut z = format!(
                "mx-host={DOMAIN},{HOSTNAME},10\n\
                 host-record={HOSTNAME},192.0.2.25\n"
            );
            z += &txt(DOMAIN, "v=spf1 mx ~all");
            z += &txt(DOMAIN, "some-site-verification=abc");
            z += &txt(
                &format!("_dmarc.{DOMAIN}"),
                &format!("v=DMARC1; p=none; rua=mailto:postmaster@{DOMAIN}"),
            );
            for (n, v) in recs {
                z += &txt(n, v);
            }
            z
        },
        &[],
    );
    let out = s.cli(&["dns", "check"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", out.stdout, out.stderr);
    let rows: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("  "))
        .filter(|l| !l.trim_start().starts_with("publish:") && !l.trim_start().starts_with("now:"))
        .collect();
    // MX, SPF, DKIM, DMARC, the forward name and its one address's reverse name.
    assert_eq!(rows.len(), 6, "{}", out.stdout);
    assert!(
        rows.iter().all(|l| l.trim_start().starts_with('✓')),
        "{}",
        out.stdout
    );
    assert!(
        line(&out, "MX", DOMAIN).contains("comes to this server"),
        "{}",
        out.stdout
    );
    assert!(line(&out, "TXT", DOMAIN).contains(&format!("authorises this server ({HOSTNAME})")));
    assert!(line(&out, "PTR", "25.2.0.192.in-addr.arpa").contains("names mail.test back"));
}

#[test]
fn check_fails_on_wrong_and_missing_records_and_says_what_differs() {
    let (s, _dns) = with_keys(
        |recs| {
            // MX elsewhere; an address whose reverse name is the ISP's; an SPF record that does
            // not name this server; a key that is not ours; no DMARC record.
            let mut z = format!(
                "mx-host={DOMAIN},mx.provider.test,10\n\
                 address=/{HOSTNAME}/192.0.2.26\n\
                 ptr-record=26.2.0.192.in-addr.arpa,dsl-26.isp.test\n"
            );
            z += &txt(DOMAIN, "v=spf1 ip4:198.51.100.0/24 -all");
            for (n, _) in recs {
                z += &txt(
                    n,
                    "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAnotours",
                );
            }
            z
        },
        &[],
    );
    let out = s.cli(&["dns", "check"]);
    assert_eq!(out.status.code(), Some(1), "{}{}", out.stdout, out.stderr);
    let mx = line(&out, "MX", DOMAIN);
    assert!(
        mx.contains('✗') && mx.contains("goes to mx.provider.test, not to this server (mail.test)"),
        "{mx}"
    );
    let spf = line(&out, "TXT", DOMAIN);
    assert!(
        spf.contains('✗')
            && spf.contains("does not authorise this server (mail.test): 192.0.2.26 (fail)"),
        "{spf}"
    );
    let recs = dkim_records(&s);
    let dkim = line(&out, "TXT", &recs[0].0);
    assert!(
        dkim.contains('✗') && dkim.contains("is not this server's key"),
        "{dkim}"
    );
    let dmarc = line(&out, "TXT", &format!("_dmarc.{DOMAIN}"));
    assert!(
        dmarc.contains('✗') && dmarc.contains("has no DMARC record") && dmarc.contains("(missing)"),
        "{dmarc}"
    );
    // The forward name is right; its reverse name is not, and Independent mode says so.
    let a = line(&out, "A/AAAA", HOSTNAME);
    assert!(a.contains('✓'), "{a}");
    let ptr = line(&out, "PTR", "26.2.0.192.in-addr.arpa");
    assert!(
        ptr.contains('✗') && ptr.contains("reverse name is dsl-26.isp.test, not mail.test"),
        "{ptr}"
    );
    assert!(
        ptr.contains("use Relay mode through your ISP's smarthost"),
        "{ptr}"
    );
    // What to publish is shown under each wrong row, and what DNS has now.
    assert!(
        out.stdout
            .contains("publish: v=DMARC1; p=none; rua=mailto:postmaster@example.test"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("now:     10 mx.provider.test."),
        "{}",
        out.stdout
    );
}

#[test]
fn relay_mode_wants_the_relay_host_in_spf_and_no_reverse_name() {
    let relay = [
        "outgoing_mails.mode=Relay",
        "outgoing_mails.relay.host=\"smtp.isp.test\"",
    ];
    // Everything right but SPF, given as `spf` TXT records.
    let zone = |recs: &[(String, String)], spf: &[&str]| {
        let mut z = format!(
            "mx-host={DOMAIN},{HOSTNAME},10\n\
             address=/{HOSTNAME}/192.0.2.26\n\
             address=/smtp.isp.test/198.51.100.7\n"
        );
        for v in spf {
            z += &txt(DOMAIN, v);
        }
        z += &txt(&format!("_dmarc.{DOMAIN}"), "v=DMARC1; p=none");
        for (n, v) in recs {
            z += &txt(n, v);
        }
        z
    };
    // Two SPF records: an error whatever they say.
    let (s, _dns) = with_keys(
        |recs| zone(recs, &["v=spf1 mx ~all", "v=spf1 a:smtp.isp.test ~all"]),
        &relay,
    );
    let out = s.cli(&["dns", "records"]);
    assert!(
        out.stdout
            .contains("IN TXT \"v=spf1 a:smtp.isp.test ~all\""),
        "{}",
        out.stdout
    );
    let out = s.cli(&["dns", "check"]);
    assert_eq!(out.status.code(), Some(1), "{}{}", out.stdout, out.stderr);
    let spf = line(&out, "TXT", DOMAIN);
    assert!(
        spf.contains("has 2 SPF records: there must be exactly one"),
        "{spf}"
    );
    // No reverse row: the relay host sends. Nothing else is wrong.
    assert!(!out.stdout.contains(" PTR "), "{}", out.stdout);
    assert_eq!(
        out.stdout.lines().filter(|l| l.contains('✗')).count(),
        1,
        "{}",
        out.stdout
    );

    // `mx` alone does not authorise the relay host; its name does.
    let recs = dkim_records(&s);
    let set_dns = |d: &DnsServer| {
        let hosts = format!("outgoing_mails.dns_hosts=[\"{}\"]", d.addr);
        s.cli(&["config", "set", &hosts]).assert_ok();
    };
    let local = "local=/test/\nlocal=/in-addr.arpa/\n";
    let mx_only = DnsServer::start(&format!("{local}{}", zone(&recs, &["v=spf1 mx -all"])));
    set_dns(&mx_only);
    let out = s.cli(&["dns", "check"]);
    assert_eq!(out.status.code(), Some(1), "{}{}", out.stdout, out.stderr);
    assert!(
        line(&out, "TXT", DOMAIN)
            .contains("does not authorise the relay host (smtp.isp.test): 198.51.100.7 (fail)"),
        "{}",
        out.stdout
    );
    let right = DnsServer::start(&format!(
        "{local}{}",
        zone(&recs, &["v=spf1 a:smtp.isp.test ~all"])
    ));
    set_dns(&right);
    let out = s.cli(&["dns", "check"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", out.stdout, out.stderr);
    assert!(
        line(&out, "TXT", DOMAIN).contains("authorises the relay host (smtp.isp.test)"),
        "{}",
        out.stdout
    );
}
