//! [`Current`]: the configuration in force and everything derived from it (TLS, parsed IP
//! range lists), built once per reload and shared read-only by sessions, the access policy and
//! the queue. A reload replaces it whole; nobody parses the range lists again per decision.

use crate::engine::config::Config;
use crate::engine::config::ranges::IpRangeList;
use crate::engine::dkim::Signers;
use crate::engine::local_ips;
use std::net::IpAddr;
use tokio_rustls::TlsAcceptor;

/// The configuration in force plus what is derived from it; replaced whole on reload.
pub struct Current {
    /// The validated configuration.
    pub config: Config,
    /// TLS for STARTTLS and the implicit port; `None` when the certificate could not be loaded.
    pub tls: Option<TlsAcceptor>,
    /// `access.safe_ips`, parsed.
    pub safe_ips: IpRangeList,
    /// `access.ip_range.ranges`, parsed.
    pub relay_ranges: IpRangeList,
    /// The DKIM keys that sign, per local domain (empty when `auth.dkim.enabled` is off).
    pub dkim: Signers,
}

impl Current {
    /// Derives everything from `config` (entries that do not parse were reported by
    /// validation and are skipped).
    pub fn new(config: Config, tls: Option<TlsAcceptor>) -> Current {
        Current {
            safe_ips: IpRangeList::parse_lossy(&config.access.safe_ips),
            relay_ranges: IpRangeList::parse_lossy(&config.access.ip_range.ranges),
            config,
            tls,
            dkim: Signers::default(),
        }
    }

    /// The same with the DKIM signers of `dkim`.
    pub fn with_dkim(self, dkim: Signers) -> Current {
        Current { dkim, ..self }
    }

    /// Whether `ip` is one of this computer's addresses (read from the interfaces, at most
    /// once a minute, as addresses change without a reload).
    pub fn is_own_ip(&self, ip: IpAddr) -> bool {
        local_ips::is_local_ip(ip, &local_ips::cached())
    }

    /// Whether `ip` is a Safe IP: listed in `access.safe_ips`, or one of this computer's
    /// addresses while "Allow IP addresses assigned to this computer" is on. Safe IPs overrule
    /// every restriction, abuse blocks included. This is the one place the rule is written.
    pub fn is_safe_ip(&self, ip: IpAddr) -> bool {
        self.safe_ips.contains(ip) || (self.config.access.allow_own_ips && self.is_own_ip(ip))
    }
}
