//! The relay decision: whether this session may send mail to domains that are not local.
//!
//! It follows the Access Control section of the manual: Safe IPs (and, when allowed, this
//! computer's addresses) always may; blocked own addresses never may; with neither SMTP
//! Authentication nor IP Range Control enabled everyone may (an open relay, reported loudly);
//! otherwise every enabled condition must hold. The incoming SMTP never relays.
//!
//! The decision is only ever asked about a recipient whose domain, after smtp-proto has parsed
//! the path (quotes, source routes) and we have taken the part after the last `@`, is not a
//! local domain; `%` and `!` inside the local part are never interpreted as routing.

use crate::engine::config::Config;
use crate::engine::current::Current;
use crate::engine::role::Role;
use std::net::IpAddr;

/// Who the client logged in as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// A local account (`user@domain`).
    Account(String),
    /// The single Allow Only The Following user name.
    RelayUser(String),
}

impl Login {
    /// The name, for logs and `Received:`.
    pub fn name(&self) -> &str {
        match self {
            Login::Account(a) | Login::RelayUser(a) => a,
        }
    }
}

/// May relay, or may not, and why (for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Relaying allowed.
    Allow(&'static str),
    /// Relaying refused.
    Deny(&'static str),
}

/// Whether a session on a listener of `role`, from `ip`, logged in as `login`, may relay.
pub fn may_relay(role: Role, ip: IpAddr, login: Option<&Login>, cur: &Current) -> Verdict {
    if role == Role::Incoming {
        return Verdict::Deny("the incoming SMTP accepts mail for local domains only");
    }
    if cur.is_safe_ip(ip) {
        return Verdict::Allow("safe IP");
    }
    let a = &cur.config.access;
    if a.block_own_ips && cur.is_own_ip(ip) {
        return Verdict::Deny("addresses of this computer are blocked");
    }
    if !a.smtp_auth.enabled && !a.ip_range.enabled {
        return Verdict::Allow("no access control enabled (open relay)");
    }
    if a.ip_range.enabled && !cur.relay_ranges.contains(ip) {
        return Verdict::Deny("client address outside the allowed IP ranges");
    }
    if a.smtp_auth.enabled {
        let ok = match login {
            Some(Login::Account(_)) => a.smtp_auth.allow_any_account,
            Some(Login::RelayUser(u)) => {
                !a.smtp_auth.allow_any_account && *u == a.smtp_auth.only_user
            }
            None => false,
        };
        if !ok {
            return Verdict::Deny(if login.is_some() {
                "this login does not grant relaying"
            } else {
                "authentication required"
            });
        }
    }
    Verdict::Allow("access control satisfied")
}

/// Whether a login can grant anything on a listener of `role`: the incoming SMTP never relays,
/// so AUTH is not offered there (it would only be a password-guessing endpoint).
pub fn login_can_grant(role: Role) -> bool {
    role != Role::Incoming
}

/// Whether `login`, checked against the password `hash`, still stands under `cfg`: its
/// account exists with that hash (or, for the Allow Only The Following user, the setting is
/// still on, for that name, with that hash).
pub fn login_in_force(login: &Login, hash: &str, cfg: &Config) -> bool {
    match login {
        Login::Account(a) => cfg.account(a).is_some_and(|acc| acc.password == hash),
        Login::RelayUser(u) => {
            let sa = &cfg.access.smtp_auth;
            sa.enabled && !sa.allow_any_account && sa.only_user == *u && sa.only_password == hash
        }
    }
}

/// On a separate outgoing port, a client the settings could never privilege is refused at
/// connect (`554`): outside the IP ranges, or a blocked address of this computer.
pub fn refuse_at_connect(role: Role, ip: IpAddr, cur: &Current) -> Option<&'static str> {
    if role != Role::Outgoing || cur.is_safe_ip(ip) {
        return None;
    }
    let a = &cur.config.access;
    if a.block_own_ips && cur.is_own_ip(ip) {
        return Some("addresses of this computer are blocked on the outgoing SMTP");
    }
    if a.ip_range.enabled && !cur.relay_ranges.contains(ip) {
        return Some("your address is outside the IP ranges allowed on the outgoing SMTP");
    }
    None
}

/// `addr` as it must be written in a forward path: the local part quoted when it is not a
/// dot-atom (smtp-proto hands it to us unquoted).
pub fn forward_path(addr: &str) -> String {
    let Some((local, domain)) = addr.rsplit_once('@') else {
        return addr.to_string();
    };
    let atext = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b);
    let dot_atom = !local.is_empty()
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.bytes().all(|b| atext(b) || b == b'.');
    if dot_atom {
        addr.to_string()
    } else {
        let q: String = local
            .chars()
            .flat_map(|c| {
                if c == '"' || c == '\\' {
                    vec!['\\', c]
                } else {
                    vec![c]
                }
            })
            .collect();
        format!("\"{q}\"@{domain}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::config::Config;

    fn cur(c: &Config) -> Current {
        Current::new(c.clone(), None)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn matrix_of_auth_and_ranges() {
        let acct = Login::Account("a@x.test".into());
        let inside = ip("192.0.2.5");
        let outside = ip("198.51.100.7");
        for auth in [false, true] {
            for ranges in [false, true] {
                let mut c = Config::default();
                c.access.smtp_auth.enabled = auth;
                c.access.ip_range.enabled = ranges;
                c.access.ip_range.ranges = vec!["192.0.2.0/24".into()];
                for (addr, login) in [
                    (inside, None),
                    (inside, Some(&acct)),
                    (outside, None),
                    (outside, Some(&acct)),
                ] {
                    let want = (!ranges || addr == inside) && (!auth || login.is_some());
                    let got = matches!(
                        may_relay(Role::Outgoing, addr, login, &cur(&c)),
                        Verdict::Allow(_)
                    );
                    assert_eq!(
                        got, want,
                        "auth={auth} ranges={ranges} ip={addr} login={login:?}"
                    );
                    assert!(matches!(
                        may_relay(Role::Incoming, addr, login, &cur(&c)),
                        Verdict::Deny(_)
                    ));
                }
            }
        }
    }

    #[test]
    fn safe_ips_overrule_and_own_ips_can_be_blocked() {
        let mut c = Config::default();
        c.access.smtp_auth.enabled = true;
        c.access.safe_ips = vec!["203.0.113.9".into()];
        assert!(matches!(
            may_relay(Role::Both, ip("203.0.113.9"), None, &cur(&c)),
            Verdict::Allow(_)
        ));
        c.access.block_own_ips = true;
        c.access.smtp_auth.enabled = false;
        assert!(matches!(
            may_relay(Role::Both, ip("127.0.0.1"), None, &cur(&c)),
            Verdict::Deny(_)
        ));
        c.access.allow_own_ips = true;
        assert!(matches!(
            may_relay(Role::Both, ip("127.0.0.1"), None, &cur(&c)),
            Verdict::Allow(_)
        ));
    }

    #[test]
    fn only_the_named_user_when_any_account_is_off() {
        let mut c = Config::default();
        c.access.smtp_auth.allow_any_account = false;
        c.access.smtp_auth.only_user = "relay".into();
        let o = ip("198.51.100.7");
        assert!(matches!(
            may_relay(
                Role::Outgoing,
                o,
                Some(&Login::Account("a@x.test".into())),
                &cur(&c)
            ),
            Verdict::Deny(_)
        ));
        assert!(matches!(
            may_relay(
                Role::Outgoing,
                o,
                Some(&Login::RelayUser("relay".into())),
                &cur(&c)
            ),
            Verdict::Allow(_)
        ));
    }

    #[test]
    fn a_login_stands_only_while_its_account_or_relay_user_does() {
        let mut c = Config {
            accounts: vec![crate::engine::config::Account {
                address: "a@x.test".into(),
                password: "$argon2id$one".into(),
                ..Default::default()
            }],
            ..Config::default()
        };
        let acct = Login::Account("a@x.test".into());
        assert!(login_in_force(&acct, "$argon2id$one", &c));
        assert!(
            !login_in_force(&acct, "$argon2id$old", &c),
            "password changed"
        );
        c.access.smtp_auth.allow_any_account = false;
        c.access.smtp_auth.only_user = "relay".into();
        c.access.smtp_auth.only_password = "$argon2id$r".into();
        let user = Login::RelayUser("relay".into());
        assert!(login_in_force(&user, "$argon2id$r", &c));
        assert!(
            !login_in_force(&user, "$argon2id$old", &c),
            "password changed"
        );
        c.access.smtp_auth.only_user = "other".into();
        assert!(!login_in_force(&user, "$argon2id$r", &c), "user renamed");
        c.access.smtp_auth.only_user = "relay".into();
        c.access.smtp_auth.allow_any_account = true;
        assert!(
            !login_in_force(&user, "$argon2id$r", &c),
            "any account again"
        );
        c.accounts.clear();
        assert!(
            !login_in_force(&acct, "$argon2id$one", &c),
            "account removed"
        );
    }

    #[test]
    fn forward_paths_requote_local_parts() {
        assert_eq!(forward_path("a.b@x.test"), "a.b@x.test");
        assert_eq!(forward_path("a b@x.test"), "\"a b\"@x.test");
        assert_eq!(forward_path("a@b@x.test"), "\"a@b\"@x.test");
    }
}
