//! DNS block lists (RBL/DNSBL, RFC 5782): which of the configured zones list a client IP.
//!
//! An IPv4 address is looked up as its reversed octets under the zone
//! (`4.3.2.1.zen.example` for 1.2.3.4), an IPv6 address as its 32 reversed nibbles. Any A
//! answer in 127.0.0.0/24 means "listed". Other answers (Spamhaus says 127.255.255.x when it
//! refuses a query) and DNS failures mean "not listed", with a warning for the log: a broken
//! block list never refuses mail. The zones are asked in parallel.

use crate::engine::dns::Resolver;
use std::net::{IpAddr, Ipv4Addr};
use tokio::task::JoinSet;

/// The name to look up for `ip` in `zone`, e.g. `2.0.0.127.bl.example`.
pub fn query_name(ip: IpAddr, zone: &str) -> String {
    let zone = zone.trim().trim_end_matches('.');
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.{zone}")
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(64 + zone.len());
            for byte in v6.octets().iter().rev() {
                name.push(char::from_digit(u32::from(byte & 0x0f), 16).unwrap_or('0'));
                name.push('.');
                name.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
                name.push('.');
            }
            name.push_str(zone);
            name
        }
    }
}

/// Whether an answer means "listed": 127.0.0.0/24 (RFC 5782 2.1 return codes).
fn is_listing(a: Ipv4Addr) -> bool {
    let [x, y, z, _] = a.octets();
    (x, y, z) == (127, 0, 0)
}

/// What one zone said.
enum ZoneAnswer {
    /// Listed (an answer in 127.0.0.0/24).
    Listed,
    /// Not listed.
    Clean,
    /// Not listed, and why that is uncertain.
    Warning(String),
}

/// Asks one zone about `ip`.
async fn ask(resolver: &Resolver, ip: IpAddr, zone: &str) -> ZoneAnswer {
    let name = query_name(ip, zone);
    match resolver.ipv4(&name).await {
        Ok(answers) if answers.is_empty() => ZoneAnswer::Clean,
        Ok(answers) => {
            if answers.iter().any(|a| is_listing(*a)) {
                ZoneAnswer::Listed
            } else {
                let odd: Vec<String> = answers.iter().map(|a| a.to_string()).collect();
                ZoneAnswer::Warning(format!(
                    "block list {zone}: unexpected answer {} for {name} (not a listing; the list \
                     may be refusing queries from this resolver)",
                    odd.join(", ")
                ))
            }
        }
        Err(e) => ZoneAnswer::Warning(format!("block list {zone}: {e}; {ip} taken as not listed")),
    }
}

/// The zones among `zones` that list `ip` (in the order given), and warnings about zones that
/// could not be asked or gave odd answers (those count as not listing the IP). Empty zone names
/// are skipped; duplicates are asked once.
pub async fn listed_in(
    resolver: &Resolver,
    ip: IpAddr,
    zones: &[String],
) -> (Vec<String>, Vec<String>) {
    let mut unique: Vec<String> = Vec::new();
    for z in zones {
        let z = z.trim().trim_end_matches('.').to_ascii_lowercase();
        if !z.is_empty() && !unique.contains(&z) {
            unique.push(z);
        }
    }
    let mut tasks = JoinSet::new();
    for (i, zone) in unique.iter().enumerate() {
        let (resolver, zone) = (resolver.clone(), zone.clone());
        tasks.spawn(async move { (i, ask(&resolver, ip, &zone).await) });
    }
    let mut answers: Vec<Option<ZoneAnswer>> = unique.iter().map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        // A task that panicked or was cancelled leaves its slot empty: reported below.
        if let Ok((i, answer)) = joined {
            answers[i] = Some(answer);
        }
    }
    let (mut listed, mut warnings) = (Vec::new(), Vec::new());
    for (i, answer) in answers.into_iter().enumerate() {
        match answer {
            Some(ZoneAnswer::Listed) => listed.push(unique[i].clone()),
            Some(ZoneAnswer::Clean) => {}
            Some(ZoneAnswer::Warning(w)) => warnings.push(w),
            None => warnings.push(format!("block list {}: lookup did not finish", unique[i])),
        }
    }
    (listed, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_names_are_reversed_octets() {
        assert_eq!(
            query_name("127.0.0.2".parse().unwrap(), "bl.test"),
            "2.0.0.127.bl.test"
        );
        assert_eq!(
            query_name("192.0.2.99".parse().unwrap(), " zen.example.org. "),
            "99.2.0.192.zen.example.org"
        );
        // An IPv4-mapped IPv6 client is looked up as IPv4.
        assert_eq!(
            query_name("::ffff:1.2.3.4".parse().unwrap(), "bl.test"),
            "4.3.2.1.bl.test"
        );
    }

    #[test]
    fn ipv6_names_are_reversed_nibbles() {
        // RFC 5782 2.4's example.
        assert_eq!(
            query_name(
                "2001:db8:1:2:3:4:567:89ab".parse().unwrap(),
                "ugly.example.com"
            ),
            "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ugly.example.com"
        );
    }

    #[test]
    fn only_127_0_0_x_is_a_listing() {
        assert!(is_listing(Ipv4Addr::new(127, 0, 0, 2)));
        assert!(is_listing(Ipv4Addr::new(127, 0, 0, 11)));
        assert!(!is_listing(Ipv4Addr::new(127, 255, 255, 254)));
        assert!(!is_listing(Ipv4Addr::new(10, 0, 0, 2)));
    }
}
