//! `pop3.*` and `imap.*`: the POP3 and IMAP4 dialogs (Ability Mail Server's POP3 and IMAP4
//! pages, one shape for both) and when a password may be sent without TLS.

use super::HumanDuration;
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;

/// `pop3.*`: the POP3 service.
pub type Pop3Config = MailServiceConfig<Pop3>;
/// `imap.*`: the IMAP4 service.
pub type ImapConfig = MailServiceConfig<Imap>;

/// A mailbox-access service's settings; `K` gives the protocol's defaults.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, bound = "")]
pub struct MailServiceConfig<K: ServiceDefaults> {
    /// Enable Service.
    pub enabled: bool,
    /// Port (POP3 110, IMAP4 143).
    pub port: u16,
    /// Max Connections: simultaneous sessions per listening port.
    pub max_connections: u32,
    /// Idle Time-out: a session silent this long is closed (RFC 1939: at least 10 minutes for
    /// POP3; RFC 9051: at least 30 minutes for IMAP).
    pub idle_timeout: HumanDuration,
    /// Listen Only on IP: empty = every address; an IP, or a host name resolved at bind time.
    pub listen_ip: String,
    /// Use Explicit SSL: offer STLS (RFC 2595) or STARTTLS (RFC 9051) on the plain port.
    pub explicit_ssl: bool,
    /// Use Implicit SSL: TLS from the first byte on `ssl_port`.
    pub implicit_ssl: bool,
    /// SSL Port (POP3 995, IMAP4 993).
    pub ssl_port: u16,
    /// When a password is accepted on a connection without TLS.
    pub plaintext_login: PlaintextLogin,
    #[serde(skip)]
    kind: PhantomData<K>,
}

/// The protocol behind a [`MailServiceConfig`]: its name and default ports.
pub trait ServiceDefaults {
    /// The config section and log name (`pop3`, `imap`).
    const NAME: &'static str;
    /// The plain port.
    const PORT: u16;
    /// The implicit-TLS port.
    const SSL_PORT: u16;
    /// The default (and least) idle time-out, in seconds.
    const IDLE_SECS: u64;
}

/// POP3 (RFC 1939).
#[derive(Debug)]
pub struct Pop3;
/// IMAP4 (RFC 9051).
#[derive(Debug)]
pub struct Imap;

impl ServiceDefaults for Pop3 {
    const NAME: &'static str = "pop3";
    const PORT: u16 = 110;
    const SSL_PORT: u16 = 995;
    const IDLE_SECS: u64 = 600;
}

impl ServiceDefaults for Imap {
    const NAME: &'static str = "imap";
    const PORT: u16 = 143;
    const SSL_PORT: u16 = 993;
    const IDLE_SECS: u64 = 1800;
}

impl<K: ServiceDefaults> Clone for MailServiceConfig<K> {
    fn clone(&self) -> Self {
        MailServiceConfig {
            enabled: self.enabled,
            port: self.port,
            max_connections: self.max_connections,
            idle_timeout: self.idle_timeout,
            listen_ip: self.listen_ip.clone(),
            explicit_ssl: self.explicit_ssl,
            implicit_ssl: self.implicit_ssl,
            ssl_port: self.ssl_port,
            plaintext_login: self.plaintext_login,
            kind: PhantomData,
        }
    }
}

impl<K: ServiceDefaults> PartialEq for MailServiceConfig<K> {
    fn eq(&self, o: &Self) -> bool {
        self.enabled == o.enabled
            && self.port == o.port
            && self.max_connections == o.max_connections
            && self.idle_timeout == o.idle_timeout
            && self.listen_ip == o.listen_ip
            && self.explicit_ssl == o.explicit_ssl
            && self.implicit_ssl == o.implicit_ssl
            && self.ssl_port == o.ssl_port
            && self.plaintext_login == o.plaintext_login
    }
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

impl<K: ServiceDefaults> Default for MailServiceConfig<K> {
    fn default() -> Self {
        MailServiceConfig {
            enabled: true,
            port: K::PORT,
            max_connections: 100,
            idle_timeout: HumanDuration::from_secs(K::IDLE_SECS),
            listen_ip: String::new(),
            explicit_ssl: true,
            implicit_ssl: true,
            ssl_port: K::SSL_PORT,
            plaintext_login: PlaintextLogin::Loopback,
            kind: PhantomData,
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

    #[test]
    fn imap_defaults_follow_the_manual_and_may_not_take_pop3s_ports() {
        let mut c = Config::default();
        assert_eq!((c.imap.port, c.imap.ssl_port), (143, 993));
        assert_eq!(c.imap.idle_timeout.0.as_secs(), 30 * 60);
        assert_eq!((c.pop3.port, c.pop3.ssl_port), (110, 995));
        c.imap.port = 110;
        c.imap.ssl_port = 995;
        c.imap.idle_timeout = crate::engine::config::HumanDuration::from_secs(600);
        let errs = validate(&c);
        let paths: Vec<_> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["imap.idle_timeout", "imap.port", "imap.ssl_port"]);
        assert!(errs[1].to_string().contains("POP3"), "{}", errs[1]);
        c.pop3.enabled = false;
        c.imap.idle_timeout = crate::engine::config::HumanDuration::from_secs(1800);
        assert!(validate(&c).is_empty());
        let text = ron::to_string(&c.imap).unwrap();
        assert!(!text.contains("kind"), "{text}");
    }
}
