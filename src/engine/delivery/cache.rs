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
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::Notify;
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
    /// When it is closed unless taken before.
    until: Instant,
    session: Session,
}

#[derive(Default)]
struct Inner {
    idle: HashMap<Key, Vec<Idle>>,
    /// When the reaper wakes next; `None` while no reaper runs.
    reaper: Option<Instant>,
}

/// The idle sessions, shared by every delivery of the engine. One reaper task closes those
/// whose idle time is up (started by the first session kept, ended when none is left): a kept
/// session costs no task or timer of its own.
#[derive(Default)]
pub struct ConnCache {
    inner: Mutex<Inner>,
    /// Wakes the reaper early: a session was kept with a shorter idle time than it waits for.
    wake: Arc<Notify>,
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
        let until = Instant::now() + idle_for;
        let (start, wake) = {
            let mut inner = self.inner.lock().expect("connection cache");
            let list = inner.idle.entry(key).or_default();
            if list.len() >= most.max(1) {
                drop(inner);
                tokio::spawn(close(session));
                return;
            }
            list.push(Idle { until, session });
            match inner.reaper {
                None => {
                    inner.reaper = Some(until);
                    (true, false)
                }
                Some(t) if until < t => {
                    inner.reaper = Some(until);
                    (false, true)
                }
                Some(_) => (false, false),
            }
        };
        if start {
            tokio::spawn(reap(Arc::downgrade(self), self.wake.clone(), until));
        } else if wake {
            self.wake.notify_one();
        }
    }

    /// Takes out the sessions whose idle time is up; returns them and when the next one's is
    /// (`None`, and the reaper is marked gone, when none is left).
    fn expired(&self) -> (Vec<Session>, Option<Instant>) {
        let now = Instant::now();
        let mut inner = self.inner.lock().expect("connection cache");
        let mut out = Vec::new();
        let mut next: Option<Instant> = None;
        inner.idle.retain(|_, list| {
            let mut i = 0;
            while i < list.len() {
                if list[i].until <= now {
                    out.push(list.remove(i).session);
                } else {
                    next = Some(next.map_or(list[i].until, |n| n.min(list[i].until)));
                    i += 1;
                }
            }
            !list.is_empty()
        });
        inner.reaper = next;
        (out, next)
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

/// The reaper: closes each idle session when its time is up, waking at the earliest such time
/// (or earlier when told); ends when the cache is empty or gone.
async fn reap(cache: Weak<ConnCache>, wake: Arc<Notify>, mut at: Instant) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(at) => {}
            _ = wake.notified() => {}
        }
        let Some(me) = cache.upgrade() else { return };
        let (expired, next) = me.expired();
        drop(me);
        for s in expired {
            tokio::spawn(close(s));
        }
        match next {
            Some(t) => at = t,
            None => return,
        }
    }
}

/// QUIT, waiting a few seconds at most for the reply.
async fn close(mut s: Session) {
    s.set_deadline(Instant::now() + CLOSE_WAIT);
    s.quit().await;
}
