//! The re-send schedule, written once: how long the queue waits after each attempt, when it
//! gives a mail up, and what the settings mean in time, in words for the Outgoing Mails
//! dialog and `config check`.
//!
//! The manual's defaults (5 attempts, 5 minutes apart) return a mail that cannot be delivered
//! after about 20 minutes; RFC 5321 4.5.4.1 suggests trying for 4–5 days. Both stay possible:
//! `backoff` doubles each wait (up to [`MAX_WAIT`]) and `give_up_after` returns a mail by age,
//! and [`postfix_like`] sets both as Postfix has them.

use super::duration::HumanDuration;
use super::sections::OutgoingMailsConfig;
use std::time::Duration;

/// The longest wait between two attempts with back-off.
pub const MAX_WAIT: Duration = Duration::from_secs(4 * 3600);
/// Below this, `config check` warns that mail is returned too soon.
pub const SHORT_HORIZON: Duration = Duration::from_secs(4 * 3600);
/// Postfix's `maximal_queue_lifetime`.
const FIVE_DAYS: Duration = Duration::from_secs(5 * 86400);

/// How long to wait after attempt number `attempt` (1 for the first) before the next.
pub fn wait_after(o: &OutgoingMailsConfig, attempt: u32) -> Duration {
    let first = o.resend_delay.0;
    if !o.backoff {
        return first;
    }
    let doublings = attempt.saturating_sub(1).min(32);
    first
        .checked_mul(1u32 << doublings.min(31))
        .unwrap_or(MAX_WAIT)
        .min(MAX_WAIT.max(first))
}

/// Whether a mail that has had `attempts` attempts and waited `age` since it arrived is given
/// up on now.
pub fn gives_up(o: &OutgoingMailsConfig, attempts: u32, age: Duration) -> bool {
    let by_attempts = o.resend_attempts > 0 && attempts >= o.resend_attempts;
    let by_age = o.give_up_after.is_some_and(|g| age >= g.0);
    by_attempts || by_age
}

/// About how long after its arrival a mail that can never be delivered is returned.
pub fn horizon(o: &OutgoingMailsConfig) -> Duration {
    let by_age = o.give_up_after.map(|g| g.0);
    if o.resend_attempts == 0 {
        return by_age.unwrap_or(Duration::MAX);
    }
    let by_attempts = (1..o.resend_attempts)
        .map(|a| wait_after(o, a))
        .fold(Duration::ZERO, Duration::saturating_add);
    by_age.map_or(by_attempts, |g| g.min(by_attempts))
}

/// A duration for people: "about 20 minutes", "about 4 hours", "about 5 days".
pub fn in_words(d: Duration) -> String {
    let s = d.as_secs();
    let (n, unit) = if s < 90 {
        (s, "second")
    } else if s < 90 * 60 {
        ((s + 30) / 60, "minute")
    } else if s < 36 * 3600 {
        ((s + 1800) / 3600, "hour")
    } else {
        ((s + 43200) / 86400, "day")
    };
    format!("about {n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// What the settings mean, in one sentence.
pub fn describe(o: &OutgoingMailsConfig) -> String {
    let waits = if o.backoff {
        format!(
            "waiting {} at first and twice as long after each attempt, up to {}",
            HumanDuration(o.resend_delay.0),
            HumanDuration(MAX_WAIT)
        )
    } else {
        format!("{} apart", HumanDuration(o.resend_delay.0))
    };
    let limit = match (o.resend_attempts, o.give_up_after) {
        (0, None) => {
            return "a mail that cannot be delivered is never returned: set a number of \
                             attempts or a time to give up after"
                .into();
        }
        (0, Some(g)) => format!("tried until it has waited {g}"),
        (n, None) => format!("{n} attempts, {waits}"),
        (n, Some(g)) => format!("{n} attempts, {waits}, for at most {g}"),
    };
    let limit = if o.resend_attempts == 0 {
        format!("{limit}, {waits}")
    } else {
        limit
    };
    format!(
        "a mail that cannot be delivered is returned to its sender after {} ({limit})",
        in_words(horizon(o))
    )
}

/// A warning when mail is returned sooner than [`SHORT_HORIZON`]: a receiving server that is
/// down for an afternoon makes mail bounce.
pub fn short_horizon_warning(o: &OutgoingMailsConfig) -> Option<String> {
    (horizon(o) < SHORT_HORIZON).then(|| {
        format!(
            "{}; a receiving server that is down for a few hours makes mail bounce \
             (RFC 5321 suggests trying for 4-5 days: set outgoing_mails.backoff=true and \
             outgoing_mails.give_up_after=\"5d\", or more attempts)",
            describe(o)
        )
    })
}

/// The schedule Postfix has: waits doubling from 5 minutes up to 4 hours, mail returned after
/// 5 days whatever the attempts.
pub fn postfix_like(o: &mut OutgoingMailsConfig) {
    o.resend_attempts = 0;
    o.resend_delay = HumanDuration::from_secs(300);
    o.backoff = true;
    o.give_up_after = Some(HumanDuration(FIVE_DAYS));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mins(m: u64) -> Duration {
        Duration::from_secs(m * 60)
    }

    #[test]
    fn the_manuals_defaults_return_mail_after_20_minutes_and_warn() {
        let o = OutgoingMailsConfig::default();
        assert_eq!(wait_after(&o, 3), mins(5));
        assert_eq!(horizon(&o), mins(20));
        assert!(!gives_up(&o, 4, mins(15)));
        assert!(gives_up(&o, 5, mins(20)));
        let w = short_horizon_warning(&o).expect("a warning");
        assert!(
            w.contains("after about 20 minutes (5 attempts, 5m apart)"),
            "{w}"
        );
    }

    #[test]
    fn backoff_doubles_up_to_four_hours() {
        let o = OutgoingMailsConfig {
            backoff: true,
            resend_attempts: 12,
            ..Default::default()
        };
        let waits: Vec<u64> = (1..=9).map(|a| wait_after(&o, a).as_secs() / 60).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 240, 240, 240]);
        assert_eq!(wait_after(&o, u32::MAX), MAX_WAIT);
    }

    #[test]
    fn postfix_like_tries_for_five_days_without_a_warning() {
        let mut o = OutgoingMailsConfig::default();
        postfix_like(&mut o);
        assert_eq!(horizon(&o), FIVE_DAYS);
        assert!(!gives_up(&o, 1000, FIVE_DAYS - mins(1)));
        assert!(gives_up(&o, 1, FIVE_DAYS));
        assert!(short_horizon_warning(&o).is_none());
        assert!(
            describe(&o).contains("after about 5 days"),
            "{}",
            describe(&o)
        );
    }

    #[test]
    fn words() {
        assert_eq!(in_words(Duration::from_secs(45)), "about 45 seconds");
        assert_eq!(in_words(mins(25)), "about 25 minutes");
        assert_eq!(in_words(mins(240)), "about 4 hours");
        assert_eq!(in_words(mins(60)), "about 60 minutes");
        assert_eq!(in_words(Duration::from_secs(86400 * 5)), "about 5 days");
    }
}
