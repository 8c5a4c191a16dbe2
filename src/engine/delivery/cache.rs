//! Outbound connections kept open between deliveries (RFC 5321 3.3: a session may carry
//! many transactions). When a delivery is done with a server, its session waits here, idle,
//! for the next delivery to the same address under the same terms (host name, port, TLS
//! policy, login, our EHLO name): `outgoing_mails.connection_cache_time` at most (2 s by
//! default, as Postfix's `smtp_connection_cache_time_limit`), then it is closed with QUIT. A
//! session is not kept once it has been open for [`REUSE_AGE`] (Postfix's
//! `smtp_connection_reuse_time_limit`). At most `max_connections_per_domain` sessions wait
//! per key, so idle connections never outnumber what the destination's limit lets run.
//!
//! A kept session is checked with RSET before reuse ([`Session::probe`]); one that fails
//! then, or breaks before its first transaction settles anything, is dropped and the delivery
//! opens a fresh connection to the same address, which does not count as another address
//! tried. The whole cache is emptied when the outgoing settings change (the queue manager
//! calls [`ConnCache::close_all`]), so a login or TLS setting never outlives its change.

use super::client::{Session, TlsPolicy};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How long after its opening a connection may still be reused.
pub const REUSE_AGE: Duration = Duration::from_secs(300);

/// How long closing a kept session waits for the reply to QUIT.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// What a kept session must match to be reused: the same server, reached the same way.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(super) struct Key {
    /// Our EHLO name.
    pub helo: String,
    /// The host name connected to (SNI, certificate name).
    pub host: String,
    /// Its address.
    pub ip: IpAddr,
    /// The port.
    pub port: u16,
    /// The STARTTLS policy the session was opened under.
    pub tls: TlsPolicy,
    /// The login sent, if any (user name).
    pub login: Option<String>,
    /// Whether the certificate was verified.
    pub verified: bool,
}

/// One idle session.
struct Idle {
    /// Tells this entry apart for its expiry timer.
    serial: u64,
    session: Session,
}

#[derive(Default)]
struct Inner {
    next: u64,
    idle: HashMap<Key, Vec<Idle>>,
}

/// The idle sessions, shared by every delivery of the engine.
#[derive(Default)]
pub struct ConnCache {
    inner: Mutex<Inner>,
}

impl ConnCache {
    /// An empty cache.
    pub fn new() -> Arc<ConnCache> {
        Arc::new(ConnCache::default())
    }

    /// The most recently kept session for `key` that is still young enough, if any.
    pub(super) fn take(&self, key: &Key) -> Option<Session> {
        let mut old = Vec::new();
        let found = {
            let mut inner = self.inner.lock().expect("connection cache");
            let list = inner.idle.get_mut(key)?;
            let mut found = None;
            while let Some(i) = list.pop() {
                if i.session.opened().elapsed() < REUSE_AGE {
                    found = Some(i.session);
                    break;
                }
                old.push(i.session);
            }
            if list.is_empty() {
                inner.idle.remove(key);
            }
            found
        };
        for s in old {
            tokio::spawn(close(s));
        }
        found
    }

    /// Keeps `session` for `idle_for` (closes it when that is zero, when it is too old, or
    /// when `most` sessions already wait for the same key).
    pub(super) fn put(
        self: &Arc<Self>,
        key: Key,
        session: Session,
        idle_for: Duration,
        most: usize,
    ) {
        if idle_for.is_zero() || session.opened().elapsed() + idle_for >= REUSE_AGE {
            tokio::spawn(close(session));
            return;
        }
        let serial = {
            let mut inner = self.inner.lock().expect("connection cache");
            let serial = inner.next;
            inner.next += 1;
            let list = inner.idle.entry(key.clone()).or_default();
            if list.len() >= most.max(1) {
                drop(inner);
                tokio::spawn(close(session));
                return;
            }
            list.push(Idle { serial, session });
            serial
        };
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(idle_for).await;
            let Some(me) = me.upgrade() else { return };
            let expired = {
                let mut inner = me.inner.lock().expect("connection cache");
                let Some(list) = inner.idle.get_mut(&key) else {
                    return;
                };
                let s = list
                    .iter()
                    .position(|i| i.serial == serial)
                    .map(|at| list.remove(at).session);
                if list.is_empty() {
                    inner.idle.remove(&key);
                }
                s
            };
            if let Some(s) = expired {
                close(s).await;
            }
        });
    }

    /// Closes every idle session (the outgoing settings changed, or the engine stops).
    pub fn close_all(&self) {
        let all: Vec<Session> = {
            let mut inner = self.inner.lock().expect("connection cache");
            inner
                .idle
                .drain()
                .flat_map(|(_, l)| l.into_iter().map(|i| i.session))
                .collect()
        };
        for s in all {
            tokio::spawn(close(s));
        }
    }

    /// Sessions waiting now (for tests and the status).
    pub fn idle(&self) -> usize {
        let inner = self.inner.lock().expect("connection cache");
        inner.idle.values().map(Vec::len).sum()
    }
}

/// QUIT, waiting a few seconds at most for the reply.
async fn close(mut s: Session) {
    s.set_deadline(Instant::now() + CLOSE_WAIT);
    s.quit().await;
}
