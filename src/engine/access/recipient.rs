//! Where a recipient goes, decided from data alone: a local account's Maildir, the queue (for
//! a session that may relay), or a refusal. Pure: the config in force, the client's facts and
//! the address in, a [`RcptVerdict`] out; the gate logs it and the session acts on it.

use super::relay::{self, Login, Verdict};
use crate::engine::config::normalize_domain;
use crate::engine::current::Current;
use crate::engine::reply::{self, Reply};
use crate::engine::role::Role;
use std::net::IpAddr;

/// A recipient accepted at RCPT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// A local account: delivered to its Maildir directly.
    Local(LocalRcpt),
    /// Another domain: queued for delivery (only for a session that may relay), as it will
    /// be written in the forward path.
    Remote(String),
}

/// A local recipient accepted at RCPT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRcpt {
    /// `user@domain` as stored in the account list.
    pub address: String,
    /// Domain part, lower case.
    pub domain: String,
    /// User part.
    pub user: String,
    /// The account's Max Account Size in octets (0 = unlimited), as configured when the
    /// recipient was accepted.
    pub max_size: u64,
}

/// What RCPT should answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptVerdict {
    /// Accept: a local account.
    Local(LocalRcpt),
    /// Accept: relay to another domain, and why that is allowed.
    Relay {
        /// The forward path.
        address: String,
        /// Why relaying is allowed (for the log).
        why: &'static str,
    },
    /// Refuse: relaying to another domain is not allowed (a security event).
    RelayDenied {
        /// The address.
        address: String,
        /// Why not.
        why: &'static str,
    },
    /// Refuse: not an address we take.
    Unknown {
        /// The address (or `postmaster`).
        address: String,
        /// The reply.
        reply: Reply,
        /// Why, for the log.
        why: &'static str,
    },
}

/// Resolves the RCPT path `address` as smtp-proto gave it (`<postmaster>`, which has no
/// domain, arrives empty) for a client of listener `role` at `ip`, logged in as `login`.
pub fn resolve(
    address: &str,
    role: Role,
    ip: IpAddr,
    login: Option<&Login>,
    cur: &Current,
) -> RcptVerdict {
    let cfg = &cur.config;
    let address = if address.is_empty() {
        match cfg
            .domains
            .iter()
            .find(|d| cfg.account(&format!("postmaster@{d}")).is_some())
        {
            Some(d) => format!("postmaster@{d}"),
            None => {
                return RcptVerdict::Unknown {
                    address: "postmaster".into(),
                    reply: reply::NO_POSTMASTER,
                    why: "no postmaster account",
                };
            }
        }
    } else {
        address.to_string()
    };
    let Some((user, domain)) = address.rsplit_once('@') else {
        return RcptVerdict::Unknown {
            address,
            reply: reply::BAD_RECIPIENT_SYNTAX,
            why: "no domain",
        };
    };
    if !cfg.is_local_domain(domain) {
        return match relay::may_relay(role, ip, login, cur) {
            Verdict::Deny(why) => RcptVerdict::RelayDenied { address, why },
            Verdict::Allow(why) => RcptVerdict::Relay {
                address: relay::forward_path(&format!("{user}@{}", normalize_domain(domain))),
                why,
            },
        };
    }
    let Some(account) = cfg.account(&format!("{user}@{domain}")) else {
        return RcptVerdict::Unknown {
            address,
            reply: reply::USER_UNKNOWN,
            why: "no such local account",
        };
    };
    let (user, domain) = account
        .address
        .rsplit_once('@')
        .expect("validated account address");
    RcptVerdict::Local(LocalRcpt {
        address: account.address.clone(),
        domain: normalize_domain(domain),
        user: user.to_string(),
        max_size: account.max_size,
    })
}
