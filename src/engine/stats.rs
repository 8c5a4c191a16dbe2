//! The mail counters behind the status strip, the chart's totals and `postern status`: per
//! day (UTC, as the log files), accepted, delivered ("Sent"), given up and refused, and the
//! mails written into local mailboxes as they were accepted, kept in `DATA/stats.json` so
//! they are the same after a restart. The last day a mail was delivered (into a mailbox or
//! out of the queue) ticks the window's "Test mail" step and is in `postern status`.
//!
//! The file is read once at start, before anything is written to it; a file that cannot be
//! read is moved aside to `stats.json.corrupt` (never overwritten unseen) and the counters
//! start at zero with a warning. It is written atomically (tmp, fsync, rename) shortly after
//! a change ([`Stats::take_dirty`], the engine's writer task) and at stop.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

/// The file's name in the data directory.
pub const FILE: &str = "stats.json";
/// How long after a change the file is written (changes in between are written together).
pub const SAVE_DELAY: std::time::Duration = std::time::Duration::from_secs(1);
/// Days kept in the file.
pub const DAYS_KEPT: usize = 31;

/// One day's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Mails accepted from clients (one per transaction), into local mailboxes or the queue.
    pub accepted: u64,
    /// Queued mails that left the queue delivered to at least one recipient; a failure
    /// notice delivered only to local mailboxes is not counted.
    pub delivered: u64,
    /// Queued mails given up on for at least one recipient.
    pub given_up: u64,
    /// Refusals: connections refused at accept or connect, recipients refused at RCPT, and
    /// mails refused at MAIL or after DATA.
    pub refused: u64,
    /// Mails written into at least one local mailbox as they were accepted (a local
    /// recipient's copy; one that went through the queue is counted in `delivered`).
    #[serde(default)]
    pub mailboxes: u64,
}

/// What a counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// See [`Counts::accepted`].
    Accepted,
    /// See [`Counts::delivered`].
    Delivered,
    /// See [`Counts::given_up`].
    GivenUp,
    /// See [`Counts::refused`].
    Refused,
    /// See [`Counts::mailboxes`].
    Mailbox,
}

/// The file's content: counts per UTC day (`YYYY-MM-DD`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Days {
    /// Day -> counts, oldest first.
    days: BTreeMap<String, Counts>,
}

/// Engine-wide counters.
#[derive(Debug, Default)]
pub struct Stats {
    /// Counts per day.
    days: Mutex<Days>,
    /// Changed since the last save.
    dirty: AtomicBool,
    /// Where they are kept (none: in memory only, tests).
    path: Option<PathBuf>,
}

/// A copy of today's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// The UTC day they are for (`YYYY-MM-DD`).
    pub day: DayName,
    /// Today's counts.
    pub today: Counts,
    /// The last day kept in the file on which a mail was delivered: into a local mailbox as
    /// it was accepted, or out of the queue (None: none in the days kept).
    #[serde(default)]
    pub last_delivery: Option<DayName>,
}

/// A day's name, `YYYY-MM-DD` (fixed size, so snapshots stay `Copy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayName(pub [u8; 10]);

impl DayName {
    /// The name of `day` (`YYYY-MM-DD`; `?` where it is shorter).
    fn of(day: &str) -> DayName {
        let mut name = [b'?'; 10];
        for (n, b) in name.iter_mut().zip(day.bytes()) {
            *n = b;
        }
        DayName(name)
    }
}

impl std::fmt::Display for DayName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(std::str::from_utf8(&self.0).unwrap_or("?"))
    }
}

/// The UTC day of `t`, `YYYY-MM-DD`.
pub fn day_of(t: SystemTime) -> String {
    let d = time::OffsetDateTime::from(t).date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Why the counter file could not be used (the counters then start at zero).
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// It could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// It is not a counter file; it was moved aside.
    #[error("{path} is damaged ({message}); it was moved to {kept} and the counters start at zero")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        message: String,
        /// Where it is now.
        kept: PathBuf,
    },
}

impl Stats {
    /// The counters kept in `data_dir/stats.json`, read now. A file that cannot be read gives
    /// zero counters and the reason (to be logged); a damaged one is moved aside first.
    pub fn load(data_dir: &Path) -> (Stats, Option<StatsError>) {
        let path = data_dir.join(FILE);
        let (days, error) = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Days>(&bytes) {
                Ok(d) => (d, None),
                Err(e) => {
                    let kept = data_dir.join(format!("{FILE}.corrupt"));
                    let error = match std::fs::rename(&path, &kept) {
                        Ok(()) => StatsError::Corrupt {
                            path: path.clone(),
                            message: e.to_string(),
                            kept,
                        },
                        Err(source) => StatsError::Read {
                            path: path.clone(),
                            source,
                        },
                    };
                    (Days::default(), Some(error))
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Days::default(), None),
            Err(source) => (
                Days::default(),
                Some(StatsError::Read {
                    path: path.clone(),
                    source,
                }),
            ),
        };
        // A file that could not be read (not a damaged one, which was moved) is not written
        // over: the counters of this run stay in memory.
        let keep = !matches!(error, Some(StatsError::Read { .. }));
        let stats = Stats {
            days: Mutex::new(days),
            dirty: AtomicBool::new(false),
            path: keep.then_some(path),
        };
        (stats, error)
    }

    /// Today's counters as the file has them, read only (for `postern status` while no
    /// server runs): zero when there is no file.
    pub fn peek(data_dir: &Path) -> Result<StatsSnapshot, String> {
        let path = data_dir.join(FILE);
        let days = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice::<Days>(&b)
                .map_err(|e| format!("{} is damaged: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Days::default(),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let stats = Stats {
            days: Mutex::new(days),
            ..Default::default()
        };
        Ok(stats.snapshot())
    }

    /// Counts one more of `what` today.
    pub fn count(&self, what: Counter) {
        self.count_all(&[what]);
    }

    /// Counts one more of each of `what` today (one lock and one day's name for all: the
    /// SMTP session counts a mail accepted into a mailbox as two).
    pub fn count_all(&self, what: &[Counter]) {
        self.count_at(what, SystemTime::now());
    }

    /// Counts one more of each of `what` on the day of `t`.
    pub fn count_at(&self, what: &[Counter], t: SystemTime) {
        // The day's name is formatted on the stack; a String is made once a day.
        let mut buf = [0u8; 16];
        let d = time::OffsetDateTime::from(t).date();
        let mut w = &mut buf[..];
        let _ = write!(
            w,
            "{:04}-{:02}-{:02}",
            d.year(),
            u8::from(d.month()),
            d.day()
        );
        let n = 16 - w.len();
        let day = std::str::from_utf8(&buf[..n]).expect("ASCII");
        let mut days = self.days.lock().expect("stats lock");
        if !days.days.contains_key(day) {
            days.days.insert(day.to_string(), Counts::default());
        }
        let c = days.days.get_mut(day).expect("just made");
        for w in what {
            match w {
                Counter::Accepted => c.accepted += 1,
                Counter::Delivered => c.delivered += 1,
                Counter::GivenUp => c.given_up += 1,
                Counter::Refused => c.refused += 1,
                Counter::Mailbox => c.mailboxes += 1,
            }
        }
        while days.days.len() > DAYS_KEPT {
            days.days.pop_first();
        }
        self.dirty.store(true, Ordering::Release);
    }

    /// The counts of one day (zero when none).
    pub fn day(&self, day: &str) -> Counts {
        let days = self.days.lock().expect("stats lock");
        days.days.get(day).copied().unwrap_or_default()
    }

    /// Today's counters, and the last day with a delivery.
    pub fn snapshot(&self) -> StatsSnapshot {
        let day = day_of(SystemTime::now());
        let days = self.days.lock().expect("stats lock");
        let last_delivery = days
            .days
            .iter()
            .rev()
            .find(|(_, c)| c.mailboxes + c.delivered > 0)
            .map(|(d, _)| DayName::of(d));
        StatsSnapshot {
            day: DayName::of(&day),
            today: days.days.get(&day).copied().unwrap_or_default(),
            last_delivery,
        }
    }

    /// Whether there is something to save (and clears the flag).
    pub fn take_dirty(&self) -> bool {
        self.dirty.swap(false, Ordering::AcqRel)
    }

    /// Writes the file atomically: a temporary file, fsync, rename, directory fsync. Nothing
    /// when the counters are kept in memory only.
    pub fn save(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let bytes = {
            let days = self.days.lock().expect("stats lock");
            serde_json::to_vec_pretty(&*days).map_err(std::io::Error::other)?
        };
        let tmp = path.with_extension("json.tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_survive_a_save_and_a_load() {
        let dir = tempfile::tempdir().unwrap();
        let (s, e) = Stats::load(dir.path());
        assert!(e.is_none());
        for w in [
            Counter::Accepted,
            Counter::Accepted,
            Counter::Delivered,
            Counter::GivenUp,
            Counter::Refused,
            Counter::Refused,
            Counter::Refused,
        ] {
            s.count(w);
        }
        assert!(s.take_dirty());
        assert!(!s.take_dirty());
        s.save().unwrap();
        let (again, e) = Stats::load(dir.path());
        assert!(e.is_none());
        let want = Counts {
            accepted: 2,
            delivered: 1,
            given_up: 1,
            refused: 3,
            mailboxes: 0,
        };
        assert_eq!(again.snapshot().today, want);
        assert_eq!(again.snapshot(), s.snapshot());
    }

    #[test]
    fn a_corrupt_file_gives_zero_and_is_kept_aside_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        std::fs::write(&path, b"{ \"days\": { \"2026-01-01\": { \"accepted\": 7").unwrap();
        let (s, e) = Stats::load(dir.path());
        let e = e.expect("a warning");
        assert!(matches!(e, StatsError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("stats.json.corrupt"), "{e}");
        assert_eq!(s.snapshot().today, Counts::default());
        // The damaged bytes are kept, and a later save does not touch them.
        s.count(Counter::Accepted);
        s.save().unwrap();
        let kept = std::fs::read(dir.path().join("stats.json.corrupt")).unwrap();
        assert!(kept.starts_with(b"{ \"days\""));
        assert_eq!(Stats::load(dir.path()).0.snapshot().today.accepted, 1);
    }

    #[test]
    fn an_unreadable_file_is_never_written_over() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be: reading it fails, and so must nothing else.
        std::fs::create_dir(dir.path().join(FILE)).unwrap();
        let (s, e) = Stats::load(dir.path());
        assert!(matches!(e, Some(StatsError::Read { .. })));
        s.count(Counter::Refused);
        s.save().unwrap();
        assert!(dir.path().join(FILE).is_dir());
        assert_eq!(s.snapshot().today.refused, 1);
    }

    #[test]
    fn days_are_apart_and_only_the_last_month_is_kept() {
        let s = Stats::default();
        let day = std::time::Duration::from_secs(86_400);
        let t0 = SystemTime::UNIX_EPOCH + day * 20_000;
        for i in 0..40 {
            s.count_at(&[Counter::Accepted], t0 + day * i);
        }
        s.count_at(&[Counter::Refused], t0 + day * 39);
        assert_eq!(s.day(&day_of(t0)), Counts::default());
        let last = s.day(&day_of(t0 + day * 39));
        assert_eq!((last.accepted, last.refused), (1, 1));
        assert_eq!(s.days.lock().unwrap().days.len(), DAYS_KEPT);
    }

    #[test]
    fn the_last_delivery_is_the_last_day_with_a_mail_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Stats::load(dir.path());
        let day = std::time::Duration::from_secs(86_400);
        let now = SystemTime::now();
        s.count_at(&[Counter::Accepted], now);
        s.count_at(&[Counter::Refused], now);
        assert_eq!(
            s.snapshot().last_delivery,
            None,
            "accepted is not delivered"
        );
        s.count_at(&[Counter::Delivered], now - day * 3);
        s.count_at(&[Counter::Mailbox], now - day * 2);
        let want = DayName::of(&day_of(now - day * 2));
        assert_eq!(s.snapshot().last_delivery, Some(want));
        assert_eq!(s.snapshot().today.mailboxes, 0);
        s.save().unwrap();
        assert_eq!(Stats::peek(dir.path()).unwrap().last_delivery, Some(want));
        // A file written before the mailbox counter reads as zero of it.
        std::fs::write(
            dir.path().join(FILE),
            br#"{"days":{"2026-01-01":{"accepted":1,"delivered":0,"given_up":0,"refused":0}}}"#,
        )
        .unwrap();
        assert_eq!(Stats::load(dir.path()).0.day("2026-01-01").mailboxes, 0);
    }
}
