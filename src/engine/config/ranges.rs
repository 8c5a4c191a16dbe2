//! IP range lists as the Access Control dialog takes them: single addresses, CIDR blocks and
//! `start-end` ranges, IPv4 and IPv6. IPv4-mapped IPv6 clients match their IPv4 entries.

use ipnet::IpNet;
use std::net::IpAddr;

/// Why an entry is not an IP range (the message names the entry).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RangeError(String);

/// One entry of a range list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpRange {
    /// A CIDR block (a single address is a /32 or /128).
    Net(IpNet),
    /// Inclusive start-end, both of the same family.
    Span(IpAddr, IpAddr),
}

impl IpRange {
    /// Parses `1.2.3.4`, `10.0.0.0/8`, `192.168.1.10-192.168.1.20`, `::1`, `fd00::/8`.
    pub fn parse(text: &str) -> Result<IpRange, RangeError> {
        let t = text.trim();
        if let Some((a, b)) = t.split_once('-') {
            let a: IpAddr = a
                .trim()
                .parse()
                .map_err(|_| RangeError(format!("`{}` is not an IP address", a.trim())))?;
            let b: IpAddr = b
                .trim()
                .parse()
                .map_err(|_| RangeError(format!("`{}` is not an IP address", b.trim())))?;
            if a.is_ipv4() != b.is_ipv4() {
                return Err(RangeError(format!("`{t}` mixes IPv4 and IPv6")));
            }
            if a > b {
                return Err(RangeError(format!("`{t}`: the start is after the end")));
            }
            return Ok(IpRange::Span(a, b));
        }
        if t.contains('/') {
            return t
                .parse::<IpNet>()
                .map(|n| IpRange::Net(n.trunc()))
                .map_err(|_| RangeError(format!("`{t}` is not a CIDR block")));
        }
        t.parse::<IpAddr>()
            .map(|ip| IpRange::Net(IpNet::from(ip)))
            .map_err(|_| {
                RangeError(format!(
                    "`{t}` is not an IP address, CIDR block or start-end range"
                ))
            })
    }

    /// Whether `ip` falls in this entry.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match self {
            IpRange::Net(n) => n.contains(&ip),
            IpRange::Span(a, b) => a.is_ipv4() == ip.is_ipv4() && *a <= ip && ip <= *b,
        }
    }
}

/// A parsed list; entries that do not parse are reported by validation and skipped here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpRangeList(Vec<IpRange>);

impl IpRangeList {
    /// Parses every entry that parses.
    pub fn parse_lossy<S: AsRef<str>>(entries: &[S]) -> Self {
        IpRangeList(
            entries
                .iter()
                .filter_map(|e| IpRange::parse(e.as_ref()).ok())
                .collect(),
        )
    }

    /// Whether any entry contains `ip`.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|r| r.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn every_form_matches_what_it_should() {
        let l = IpRangeList::parse_lossy(&[
            "10.0.0.0/8",
            "192.168.1.10-192.168.1.20",
            "127.0.0.5",
            "fd00::/8",
        ]);
        for yes in [
            "10.1.2.3",
            "192.168.1.10",
            "192.168.1.20",
            "127.0.0.5",
            "fd12::1",
            "::ffff:10.9.9.9",
        ] {
            assert!(l.contains(ip(yes)), "{yes}");
        }
        for no in [
            "11.0.0.1",
            "192.168.1.21",
            "192.168.1.9",
            "127.0.0.6",
            "fe80::1",
            "::1",
        ] {
            assert!(!l.contains(ip(no)), "{no}");
        }
    }

    #[test]
    fn bad_entries_are_refused() {
        for bad in [
            "10.0.0.0/33",
            "1.2.3",
            "1.2.3.9-1.2.3.1",
            "1.2.3.4-::1",
            "host.example",
        ] {
            assert!(IpRange::parse(bad).is_err(), "{bad}");
        }
    }
}
