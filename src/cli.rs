//! The command line's own logic, kept out of `main.rs` so it can be tested: default paths and
//! the queue's arguments and output. What the commands do is the engine's:
//! [`crate::engine::config::edit`] for the configuration file,
//! [`crate::engine::control::offline`] for the queue, [`crate::engine::control`] for the blocks
//! in force.

use std::path::PathBuf;

/// Default configuration file and data directory (XDG locations on Linux).
pub fn default_paths() -> (PathBuf, PathBuf) {
    match directories::ProjectDirs::from("", "", "postern") {
        Some(d) => (
            d.config_dir().join("postern.ron"),
            d.data_dir().to_path_buf(),
        ),
        None => (PathBuf::from("postern.ron"), PathBuf::from("postern-data")),
    }
}

/// `postern queue ...`: its arguments and its output. The requests themselves run through
/// [`crate::engine::control::offline::request`] (the live server, or the spool offline); the
/// list is read and printed a page at a time ([`crate::engine::control::offline::each_page`]).
pub mod queue {
    use crate::engine::control::offline::each_page;
    use crate::engine::queue::{QueueEntry, RcptState, Target, id_text, now_secs};
    use anyhow::{Context, Result, bail};
    use std::io::Write;
    use std::path::Path;

    /// Mails `postern queue list` asks for at a time.
    pub const LIST_PAGE: usize = 1000;

    fn age(secs: u64) -> String {
        match secs {
            s if s < 60 => format!("{s}s"),
            s if s < 3600 => format!("{}m", s / 60),
            s if s < 86400 => format!("{}h", s / 3600),
            s => format!("{}d", s / 86400),
        }
    }

    /// `text` cut to `max` characters, an ellipsis marking the cut.
    fn shorten(text: &str, max: usize) -> String {
        match text.char_indices().nth(max) {
            Some((at, _)) => format!("{}…", &text[..at]),
            None => text.to_string(),
        }
    }

    /// What the list says when the queue is empty.
    const EMPTY: &str = "Mail queue is empty\n";
    /// The list's first line.
    const HEADER: &str = "ID               AGE   SIZE      TRIES NEXT       SENDER / RECIPIENTS\n";

    /// The list's last line, after `n` messages.
    fn footer(n: usize) -> String {
        format!(
            "-- {n} message{} in the queue\n",
            if n == 1 { "" } else { "s" }
        )
    }

    /// The list as `postern queue list` prints it (like mailq): each message's line, its
    /// Subject, its recipients with their last errors.
    pub fn format_list(entries: &[QueueEntry]) -> String {
        let now = now_secs();
        if entries.is_empty() {
            return EMPTY.into();
        }
        let mut out = HEADER.to_string();
        for e in entries {
            format_entry(&mut out, e, now);
        }
        out.push_str(&footer(entries.len()));
        out
    }

    /// Prints the whole list as [`format_list`] formats it, reading and writing it
    /// [`LIST_PAGE`] mails at a time (so a long queue is never held whole); returns how many
    /// mails it printed.
    pub fn write_list(data_dir: &Path, out: &mut impl Write) -> Result<usize> {
        let now = now_secs();
        let mut n = 0;
        let mut text = String::new();
        each_page(data_dir, LIST_PAGE, |page| {
            text.clear();
            if n == 0 && !page.entries.is_empty() {
                text.push_str(HEADER);
            }
            for e in &page.entries {
                format_entry(&mut text, e, now);
            }
            n += page.entries.len();
            out.write_all(text.as_bytes())?;
            Ok::<_, anyhow::Error>(())
        })?;
        out.write_all(if n == 0 { EMPTY.into() } else { footer(n) }.as_bytes())?;
        out.flush()?;
        Ok(n)
    }

    /// One message's lines in the list.
    fn format_entry(out: &mut String, e: &QueueEntry, now: u64) {
        let m = &e.meta;
        let next = if m.held {
            "on hold".to_string()
        } else if e.in_flight {
            "now".to_string()
        } else if m.next_try <= now {
            "due".to_string()
        } else {
            format!("in {}", age(m.next_try - now))
        };
        let from = if m.from.is_empty() {
            "<>".to_string()
        } else {
            format!("<{}>", m.from)
        };
        out.push_str(&format!(
            "{:16} {:5} {:9} {:5} {:10} {}\n",
            id_text(m.id),
            age(now.saturating_sub(m.created)),
            m.size,
            m.attempts,
            next,
            from
        ));
        if !m.subject.is_empty() {
            out.push_str(&format!("{:50}Subject: {}\n", "", shorten(&m.subject, 60)));
        }
        for r in &m.rcpts {
            let state = match r.state {
                RcptState::Pending => "",
                RcptState::Delivered => " (delivered)",
                RcptState::Failed => " (failed)",
            };
            out.push_str(&format!("{:50}<{}>{state}\n", "", r.addr));
            if !r.last_error.is_empty() {
                out.push_str(&format!("{:52}last error: {}\n", "", r.last_error));
            }
        }
    }

    /// Parses `ID` or `--all` into a target.
    pub fn target(id: Option<&str>, all: bool) -> Result<Target> {
        match (id, all) {
            (_, true) => Ok(Target::All),
            (Some(s), false) => crate::engine::queue::parse_id(s)
                .map(Target::Id)
                .with_context(|| format!("`{s}` is not a queue id")),
            (None, false) => bail!("give a queue id or --all"),
        }
    }
}

/// `postern dkim ...`: the output of `dkim show`. The keys are
/// [`crate::engine::dkim::KeyStore`]'s.
pub mod dkim {
    use crate::engine::dkim::{Algo, Selector};

    /// What `postern dkim show DOMAIN` prints: per selector its state, the DNS name and the
    /// TXT value to publish.
    pub fn format_show(domain: &str, selectors: &[Selector]) -> String {
        let mut out = String::new();
        if selectors.is_empty() {
            out.push_str(&format!("{domain} has no DKIM key\n"));
            return out;
        }
        for s in selectors {
            let algo = match s.algo {
                Algo::Rsa => "rsa",
                Algo::Ed25519 => "ed25519",
            };
            let state = if s.active {
                "active: signs".to_string()
            } else {
                format!(
                    "old: keep it published until mail it signed has arrived, then \
                     `postern dkim remove {domain} {}`",
                    s.name
                )
            };
            out.push_str(&format!("selector {} ({algo}, {state})\n", s.name));
            out.push_str(&format!("  name:  {}\n", s.dns_name(domain)));
            out.push_str(&format!("  type:  TXT\n  value: {}\n", s.txt()));
        }
        out
    }
}

/// `postern dns ...`: the output of `dns check`. The records and their checks are
/// [`crate::engine::records`]'s.
pub mod dns {
    use crate::engine::records::{Row, State};

    /// The mark of a state: ✓ ok, ✗ missing or wrong, ? could not check.
    pub fn mark(state: State) -> &'static str {
        match state {
            State::Ok => "✓",
            State::Missing | State::Wrong => "✗",
            State::Unchecked => "?",
        }
    }

    /// What `postern dns check` prints: per row its mark, type, name and sentence; for a row
    /// that is not ok, what to publish and what DNS has now.
    pub fn format_check(rows: &[Row]) -> String {
        let mut out = String::new();
        let mut last = None;
        for r in rows {
            if last != Some(&r.wanted.domain) {
                out.push_str(&format!("{}\n", r.wanted.domain));
                last = Some(&r.wanted.domain);
            }
            out.push_str(&format!(
                "  {} {:<6} {}: {} ({})\n",
                mark(r.state),
                r.wanted.rtype.to_string(),
                r.wanted.name,
                r.sentence,
                r.state.as_str()
            ));
            if r.state != State::Ok {
                out.push_str(&format!("      publish: {}\n", r.wanted.value));
                if r.found.is_empty() {
                    out.push_str("      now:     (nothing)\n");
                }
                for f in &r.found {
                    out.push_str(&format!("      now:     {f}\n"));
                }
            }
        }
        out
    }

    /// The exit status of `dns check`: 0 all ok, 1 something missing or wrong, 2 nothing
    /// missing or wrong but something could not be checked.
    pub fn exit_code(rows: &[Row]) -> u8 {
        if rows.iter().any(|r| r.state.is_problem()) {
            1
        } else if rows.iter().any(|r| r.state == State::Unchecked) {
            2
        } else {
            0
        }
    }
}

/// `postern access blocked|unblock`: the table of blocks in force and the unblock argument.
/// Blocks live in the running server's memory, so both go through the control socket.
pub mod access {
    use crate::engine::access::abuse::{BlockInfo, time_left, wall_clock};
    use anyhow::{Context, Result};
    use std::net::IpAddr;

    /// The table `postern access blocked` prints (times in UTC, as the log files).
    pub fn format_blocked(blocks: &[BlockInfo], now: u64) -> String {
        if blocks.is_empty() {
            return "no blocks in force\n".into();
        }
        let ipw = blocks
            .iter()
            .map(|b| b.client().len())
            .max()
            .unwrap_or(0)
            .max(2);
        let mut out = format!(
            "{:ipw$}  {:19}  {:28}  REASON\n",
            "IP", "SINCE (UTC)", "UNTIL (UTC)"
        );
        for b in blocks {
            let until = format!(
                "{} ({} left)",
                wall_clock(b.until),
                time_left(b.until.saturating_sub(now))
            );
            out.push_str(&format!(
                "{:ipw$}  {:19}  {:28}  {}\n",
                b.client(),
                wall_clock(b.since),
                until,
                b.reason
            ));
        }
        out
    }

    /// The IP given to `postern access unblock`: an address, or a network as the table
    /// shows it (`2001:db8:1:2::/64`; the prefix is the server's own, so it is dropped).
    pub fn parse_client(s: &str) -> Result<IpAddr> {
        let addr = s.split_once('/').map_or(s, |(a, _)| a);
        addr.trim()
            .parse()
            .with_context(|| format!("`{s}` is not an IP address"))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_table_lists_each_block_or_says_there_is_none() {
            assert_eq!(format_blocked(&[], 0), "no blocks in force\n");
            let b = BlockInfo {
                ip: "192.0.2.1".parse().unwrap(),
                prefix: None,
                reason: "login lockout: 5 failed logins within 10m".into(),
                since: 1_796_238_000,
                until: 1_796_238_000 + 1800,
            };
            let t = format_blocked(&[b], 1_796_238_000 + 60);
            let lines: Vec<&str> = t.lines().collect();
            assert!(lines[0].starts_with("IP"), "{t}");
            assert!(lines[1].starts_with("192.0.2.1"), "{t}");
            assert!(lines[1].contains("2026-12-02 19:00:00"), "{t}");
            assert!(lines[1].contains("2026-12-02 19:30:00 (29m left)"), "{t}");
            assert!(
                lines[1].ends_with("login lockout: 5 failed logins within 10m"),
                "{t}"
            );
        }

        #[test]
        fn an_address_or_a_network_names_the_client() {
            assert_eq!(parse_client("127.0.0.1").unwrap().to_string(), "127.0.0.1");
            assert_eq!(
                parse_client("2001:db8:1:2::/64").unwrap().to_string(),
                "2001:db8:1:2::"
            );
            assert!(parse_client("example.com").is_err());
        }
    }
}

/// `postern status`: the listeners and today's mail counters.
pub mod status {
    use crate::engine::control::StatusReport;
    use crate::engine::stats::StatsSnapshot;

    /// One line per listener (up with its address, or down with why), then the counters.
    pub fn format_status(s: &StatusReport) -> String {
        let mut out = String::new();
        for l in &s.listeners {
            match (&l.addr, &l.error) {
                (Some(a), _) => out.push_str(&format!(
                    "{:<28} listening on {a} ({} session(s))\n",
                    l.name, l.sessions
                )),
                (None, Some(e)) => {
                    out.push_str(&format!("{:<28} DOWN {}: {e}\n", l.name, l.configured))
                }
                (None, None) => out.push_str(&format!("{:<28} {}\n", l.name, l.configured)),
            }
        }
        out.push_str(&format_counts(&s.stats));
        out
    }

    /// Today's counters, one line, then the last day a mail was delivered (the window's
    /// "Test mail" step is ticked from the same).
    pub fn format_counts(s: &StatsSnapshot) -> String {
        let c = &s.today;
        let last = match s.last_delivery {
            Some(day) => format!("last mail delivered: {day} UTC"),
            None => format!(
                "last mail delivered: none in the {} days kept",
                crate::engine::stats::DAYS_KEPT
            ),
        };
        format!(
            "today ({} UTC): accepted {}, sent {}, given up {}, refused {}\n{last}\n",
            s.day, c.accepted, c.delivered, c.given_up, c.refused
        )
    }
}
