//! Access control: who may relay through the outgoing SMTP ([`relay`]), IP range lists
//! ([`ranges`]), and the addresses of this machine ([`local_ips`]).

pub mod abuse;
pub mod dnsbl;
pub mod local_ips;
pub mod ranges;
pub mod rdns;
pub mod relay;
pub mod spf;

use crate::engine::config::Config;
use std::net::IpAddr;

/// Whether `ip` is a Safe IP: listed in `access.safe_ips`, or one of this computer's addresses
/// while "Allow IP addresses assigned to this computer" is on. Safe IPs overrule every
/// restriction, abuse blocks included.
pub fn is_safe_ip(ip: IpAddr, cfg: &Config) -> bool {
    ranges::IpRangeList::parse_lossy(&cfg.access.safe_ips).contains(ip)
        || (cfg.access.allow_own_ips && local_ips::is_local_ip(ip, &local_ips::cached()))
}
