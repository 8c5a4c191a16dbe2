//! How far one delivery of a group of recipients may go, as Postfix bounds it: at most
//! [`MAX_ADDRESSES`] addresses tried over all hosts (`smtp_mx_address_limit`), at most
//! [`MAX_SESSIONS`] sessions that got through the greeting and EHLO (`smtp_mx_session_limit`,
//! which has counted the same way since Postfix 2.3), and [`TIME_LIMIT`] from the first lookup,
//! after which no further address is tried and no wait before the message data lasts longer.
//! [`Budget`] keeps the count; it is pure (the caller passes the time), so it is unit-tested.

use std::fmt;
use std::time::Duration;
use tokio::time::Instant;

/// Addresses tried per delivery at most, over all hosts (Postfix's `smtp_mx_address_limit`).
pub const MAX_ADDRESSES: usize = 5;
/// SMTP sessions per delivery at most that got through the greeting and EHLO (Postfix's
/// `smtp_mx_session_limit`); hosts that cannot be reached or refuse us do not count.
pub const MAX_SESSIONS: usize = 2;
/// The time one delivery of a group may take before it gives up for this attempt. The message
/// data and the reply to its final dot are not cut off by it (see `client::Params::deadline`),
/// so a session sending data at the limit may run on by their own timeouts.
pub const TIME_LIMIT: Duration = Duration::from_secs(600);

/// The bounds of one delivery; [`Limits::default`] is what the queue uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Addresses tried at most.
    pub addresses: usize,
    /// Sessions that got through the greeting and EHLO, at most.
    pub sessions: usize,
    /// Time from the start of the delivery.
    pub time: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            addresses: MAX_ADDRESSES,
            sessions: MAX_SESSIONS,
            time: TIME_LIMIT,
        }
    }
}

/// Why no further address is tried in this delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exhausted {
    /// So many addresses were tried.
    Addresses(usize),
    /// So many sessions were held.
    Sessions(usize),
    /// The time limit, which ran out.
    Time(Duration),
}

impl fmt::Display for Exhausted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exhausted::Addresses(n) => write!(f, "{n} addresses tried, the most for one delivery"),
            Exhausted::Sessions(n) => {
                write!(f, "{n} SMTP sessions held, the most for one delivery")
            }
            Exhausted::Time(t) if t.as_secs() >= 60 && t.as_secs() % 60 == 0 => write!(
                f,
                "the time limit of one delivery ({} min) ran out",
                t.as_secs() / 60
            ),
            Exhausted::Time(t) => write!(
                f,
                "the time limit of one delivery ({} s) ran out",
                t.as_secs_f64()
            ),
        }
    }
}

/// What is left of the limits during one delivery.
#[derive(Debug, Clone)]
pub struct Budget {
    /// The limits.
    limits: Limits,
    /// When the time is up.
    deadline: Instant,
    /// Addresses tried so far.
    addresses: usize,
    /// Sessions held so far.
    sessions: usize,
}

impl Budget {
    /// The budget of a delivery starting at `now`.
    pub fn start(limits: Limits, now: Instant) -> Budget {
        Budget {
            limits,
            deadline: now + limits.time,
            addresses: 0,
            sessions: 0,
        }
    }

    /// When the time is up.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Why no further address may be tried at `now`, if so.
    pub fn exhausted(&self, now: Instant) -> Option<Exhausted> {
        if self.sessions >= self.limits.sessions {
            Some(Exhausted::Sessions(self.sessions))
        } else if self.addresses >= self.limits.addresses {
            Some(Exhausted::Addresses(self.addresses))
        } else if now >= self.deadline {
            Some(Exhausted::Time(self.limits.time))
        } else {
            None
        }
    }

    /// One more address is being tried (a plaintext retry of the same address is not another).
    pub fn address_tried(&mut self) {
        self.addresses += 1;
    }

    /// One more session got through the greeting and EHLO.
    pub fn session_held(&mut self) {
        self.sessions += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(addresses: usize, sessions: usize, secs: u64) -> Limits {
        Limits {
            addresses,
            sessions,
            time: Duration::from_secs(secs),
        }
    }

    #[test]
    fn the_defaults_are_postfixs() {
        assert_eq!(Limits::default(), limits(5, 2, 600));
    }

    #[test]
    fn addresses_are_counted_until_the_limit() {
        let t0 = Instant::now();
        let mut b = Budget::start(limits(5, 2, 600), t0);
        for _ in 0..5 {
            assert_eq!(b.exhausted(t0), None);
            b.address_tried();
        }
        assert_eq!(b.exhausted(t0), Some(Exhausted::Addresses(5)));
        assert_eq!(
            Exhausted::Addresses(5).to_string(),
            "5 addresses tried, the most for one delivery"
        );
    }

    #[test]
    fn held_sessions_end_the_delivery_before_the_addresses_do() {
        let t0 = Instant::now();
        let mut b = Budget::start(limits(5, 2, 600), t0);
        // Two unreachable addresses, then two sessions that were refused the mail.
        for session in [false, false, true, true] {
            assert_eq!(b.exhausted(t0), None);
            b.address_tried();
            if session {
                b.session_held();
            }
        }
        assert_eq!(b.exhausted(t0), Some(Exhausted::Sessions(2)));
    }

    #[test]
    fn the_deadline_is_fixed_at_the_start() {
        let t0 = Instant::now();
        let b = Budget::start(limits(5, 2, 600), t0);
        assert_eq!(b.deadline(), t0 + Duration::from_secs(600));
        assert_eq!(b.exhausted(t0 + Duration::from_secs(599)), None);
        let late = b.exhausted(t0 + Duration::from_secs(600));
        assert_eq!(late, Some(Exhausted::Time(Duration::from_secs(600))));
        assert_eq!(
            late.unwrap().to_string(),
            "the time limit of one delivery (10 min) ran out"
        );
        assert_eq!(
            Exhausted::Time(Duration::from_millis(1500)).to_string(),
            "the time limit of one delivery (1.5 s) ran out"
        );
    }
}
