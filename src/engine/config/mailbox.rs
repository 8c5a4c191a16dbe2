//! `pop3.*`: the POP3 dialog (Ability Mail Server's POP3 page) and when a password may be sent
//! without TLS. IMAP's dialog will get a section of the same shape.

use super::HumanDuration;
use serde::{Deserialize, Serialize};

/// `pop3.*`: the POP3 service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pop3Config {
    /// Enable Service.
    pub enabled: bool,
    /// Port (110).
    pub port: u16,
    /// Max Connections: simultaneous POP3 sessions per listening port.
    pub max_connections: u32,
    /// Idle Time-out: a session silent this long is closed (RFC 1939: at least 10 minutes).
    pub idle_timeout: HumanDuration,
    /// Listen Only on IP: empty = every address; an IP, or a host name resolved at bind time.
    pub listen_ip: String,
    /// Use Explicit SSL: offer STLS (RFC 2595) on the plain port.
    pub explicit_ssl: bool,
    /// Use Implicit SSL: TLS from the first byte on `ssl_port`.
    pub implicit_ssl: bool,
    /// SSL Port (995).
    pub ssl_port: u16,
    /// When USER/PASS and AUTH are accepted on a connection without TLS.
    pub plaintext_login: PlaintextLogin,
}

/// When a password may travel unencrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlaintextLogin {
    /// Never: logins only after STLS or on the implicit-TLS port.
    Never,
    /// Only from a loopback address (127.0.0.0/8, ::1): the password never leaves this
    /// computer, so TLS protects nothing there (a local fetchmail, a webmail on the host).
    Loopback,
    /// From anywhere (an old client on a trusted network).
    Always,
}

impl PlaintextLogin {
    /// Whether a login from `ip` without TLS is allowed.
    pub fn allows(self, ip: std::net::IpAddr) -> bool {
        match self {
            PlaintextLogin::Never => false,
            PlaintextLogin::Loopback => ip.to_canonical().is_loopback(),
            PlaintextLogin::Always => true,
        }
    }
}

impl Default for Pop3Config {
    fn default() -> Self {
        Pop3Config {
            enabled: true,
            port: 110,
            max_connections: 100,
            idle_timeout: HumanDuration::from_secs(600),
            listen_ip: String::new(),
            explicit_ssl: true,
            implicit_ssl: true,
            ssl_port: 995,
            plaintext_login: PlaintextLogin::Loopback,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::config::{Config, validate};

    #[test]
    fn loopback_means_127_slash_8_and_ipv6_loopback() {
        let l = PlaintextLogin::Loopback;
        for ip in [
            "127.0.0.1",
            "127.0.0.2",
            "127.255.0.9",
            "::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(l.allows(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["192.0.2.1", "10.0.0.1", "::ffff:192.0.2.1", "2001:db8::1"] {
            assert!(!l.allows(ip.parse().unwrap()), "{ip}");
        }
        assert!(!PlaintextLogin::Never.allows("127.0.0.1".parse().unwrap()));
        assert!(PlaintextLogin::Always.allows("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn pop3_ports_must_be_free_of_smtp_and_each_other() {
        let mut c = Config::default();
        c.pop3.port = 25;
        c.pop3.ssl_port = 25;
        c.pop3.max_connections = 0;
        c.pop3.idle_timeout = crate::engine::config::HumanDuration::from_secs(5);
        let paths: Vec<_> = validate(&c).into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            [
                "pop3.max_connections",
                "pop3.idle_timeout",
                "pop3.port",
                "pop3.ssl_port",
                "pop3.ssl_port"
            ]
        );
        c.pop3.enabled = false;
        c.pop3.max_connections = 5;
        c.pop3.idle_timeout = crate::engine::config::HumanDuration::from_secs(600);
        assert!(
            validate(&c).is_empty(),
            "a disabled service's ports are not checked"
        );
    }
}
