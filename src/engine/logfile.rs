//! Daily log files: engine events as lines in `DATA/logs/postern-YYYY-MM-DD.log`, under a
//! policy that keeps the disk safe (`logs.*`): a lowest level, a retention in days, and a cap
//! on the files' total size (the oldest go first; when today's file alone reaches the cap, its
//! further lines are dropped until tomorrow, and the file says so once).
//!
//! One task owns the open file; events reach it through a bounded channel so the SMTP sessions
//! never wait on log I/O. The file is switched at midnight (UTC); old files are pruned then
//! and at start.

use super::config::{LogLevel, LogsConfig};
use super::events::{Event, EventBus, Level};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::fs::{File, OpenOptions};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Events waiting for the writer at most; beyond that they are counted, not kept.
const QUEUE: usize = 50_000;
/// How long the writer lets events gather after the first of a batch: a busy server writes
/// its lines a few dozen times a second, not once per event (each write goes through a
/// blocking thread). A crash loses at most this much of the log.
const GATHER: std::time::Duration = std::time::Duration::from_millis(10);

/// The log file name for `day`.
fn day_file(day: time::Date) -> String {
    format!(
        "postern-{:04}-{:02}-{:02}.log",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

/// The lowest level the policy keeps.
fn lowest(policy: &LogsConfig) -> Level {
    match policy.level {
        LogLevel::Debug => Level::Debug,
        LogLevel::Info => Level::Info,
        LogLevel::Warn => Level::Warn,
        LogLevel::Error => Level::Error,
    }
}

/// Tells the bus the lowest level the file keeps, so it sends nothing below it (called at
/// start and, by the supervisor, as each configuration is applied: before the reload is
/// reported, so the next lines follow the new level).
pub fn follow_level(bus: &EventBus, policy: &LogsConfig) {
    bus.set_file_level(lowest(policy));
}

/// Whether `ev` is at or above the configured level.
fn wanted(ev: &Event, policy: &LogsConfig) -> bool {
    ev.level >= lowest(policy)
}

/// Deletes the log files of days before `today - retention_days`, then the oldest others
/// while they and `current` (today's, `current_len` octets, never deleted) are together over
/// `max_total_size`. Returns the size of the files kept besides `current`.
pub fn prune(
    dir: &Path,
    current: &str,
    current_len: u64,
    today: time::Date,
    policy: &LogsConfig,
) -> u64 {
    let mut files: Vec<(String, u64)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let len = e.metadata().ok()?.len();
            (name.starts_with("postern-") && name.ends_with(".log") && name != current)
                .then_some((name, len))
        })
        .collect();
    // The names sort by date.
    files.sort();
    if policy.retention_days > 0 {
        let oldest = today - time::Duration::days(i64::from(policy.retention_days));
        let keep_from = day_file(oldest);
        files.retain(|(name, _)| {
            let keep = name.as_str() >= keep_from.as_str();
            if !keep {
                let _ = std::fs::remove_file(dir.join(name));
            }
            keep
        });
    }
    let mut others: u64 = files.iter().map(|(_, l)| l).sum();
    if policy.max_total_size > 0 {
        let mut oldest_first = files.iter();
        while others + current_len > policy.max_total_size {
            let Some((name, len)) = oldest_first.next() else {
                break;
            };
            if std::fs::remove_file(dir.join(name)).is_ok() {
                others -= len;
            }
        }
    }
    others
}

/// Today's file, with what the cap allows it.
struct Open {
    /// The log directory.
    dir: PathBuf,
    /// Its name.
    name: String,
    /// Its day.
    day: time::Date,
    /// The file.
    file: File,
    /// Octets in it.
    len: u64,
    /// Octets in the older files kept.
    others: u64,
    /// The cap was reached: lines are dropped until tomorrow.
    full: bool,
}

/// Starts the writer; it ends after [`EventBus::detach_file_writer`] once drained. `policy`
/// is the `logs` section in force (changes apply to the next lines).
pub fn start(
    bus: &EventBus,
    dir: &Path,
    policy: watch::Receiver<LogsConfig>,
) -> std::io::Result<JoinHandle<()>> {
    std::fs::create_dir_all(dir)?;
    let (tx, mut rx) = mpsc::channel::<Arc<Event>>(QUEUE);
    follow_level(bus, &policy.borrow());
    bus.attach_file_writer(tx);
    let bus = bus.clone();
    let dir: PathBuf = dir.to_path_buf();
    Ok(tokio::spawn(async move {
        let mut current: Option<Open> = None;
        let mut pending = String::new();
        while let Some(first) = rx.recv().await {
            // Let a busy server's events gather, then take all that wait, and write them in
            // one go.
            if !rx.is_closed() {
                tokio::time::sleep(GATHER).await;
            }
            let mut batch = vec![first];
            while batch.len() < 1024 {
                match rx.try_recv() {
                    Ok(ev) => batch.push(ev),
                    Err(_) => break,
                }
            }
            let p = policy.borrow().clone();
            let dropped = bus.take_dropped();
            if dropped > 0 {
                pending.push_str(&format!(
                    "({dropped} events were not written: the log file could not keep up)\n"
                ));
            }
            for ev in batch.iter().filter(|ev| wanted(ev, &p)) {
                let day = time::OffsetDateTime::from(ev.time).date();
                if current.as_ref().is_none_or(|o| o.day != day) {
                    if let Some(o) = current.as_mut() {
                        write(o, &mut pending, &p).await;
                    }
                    current = open(&dir, day_file(day), ev, &p).await;
                    if current.is_none() {
                        pending.clear();
                        continue;
                    }
                }
                // Formatted straight into the batch's text (no string per line).
                let _ = writeln!(pending, "{ev}");
            }
            if let Some(o) = current.as_mut() {
                write(o, &mut pending, &p).await;
            }
        }
    }))
}

/// How much of the end of today's file [`earlier_today`] reads at most.
const TAIL_BYTES: u64 = 512 * 1024;

/// Today's earlier lines, read back from today's file for a log pane that opens: the last
/// `max` lines (from at most the file's last [`TAIL_BYTES`]) written before `before` (the
/// oldest event the pane already has; all when `None`). Each line becomes an event of its
/// time, level, view and session whose text is the rest of the line as written (a line that
/// does not parse is kept as a System line). Nothing when there is no file.
pub fn earlier_today(
    dir: &Path,
    now: std::time::SystemTime,
    before: Option<std::time::SystemTime>,
    max: usize,
) -> Vec<Event> {
    use std::io::{Read, Seek, SeekFrom};
    let path = dir.join(day_file(time::OffsetDateTime::from(now).date()));
    let Ok(mut f) = std::fs::File::open(&path) else {
        return Vec::new();
    };
    let len = f.metadata().map_or(0, |m| m.len());
    let from = len.saturating_sub(TAIL_BYTES);
    let mut bytes = Vec::new();
    if f.seek(SeekFrom::Start(from)).is_err() || f.take(TAIL_BYTES).read_to_end(&mut bytes).is_err()
    {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    if from > 0 && !lines.is_empty() {
        // The first line is cut.
        lines.remove(0);
    }
    let mut out = Vec::new();
    let mut last = now;
    for line in lines {
        let ev = parse_line(line).unwrap_or_else(|| Event {
            seq: 0,
            time: last,
            level: Level::Info,
            channel: super::events::Channel::System,
            session: None,
            kind: super::events::EventKind::Note {
                text: line.to_string(),
            },
        });
        last = ev.time;
        if before.is_none_or(|b| ev.time < b) {
            out.push(ev);
        }
    }
    let skip = out.len().saturating_sub(max);
    out.drain(..skip);
    out
}

/// One line as [`Event`]'s `Display` writes it: `YYYY-MM-DD HH:MM:SS.mmm LEVEL Channel
/// [session] text`.
fn parse_line(line: &str) -> Option<Event> {
    use super::events::{Channel, EventKind};
    let num = |s: &str| s.parse::<u32>().ok();
    let stamp = line.get(..23)?;
    let month = time::Month::try_from(num(stamp.get(5..7)?)? as u8).ok()?;
    let date = time::Date::from_calendar_date(
        num(stamp.get(..4)?)? as i32,
        month,
        num(stamp.get(8..10)?)? as u8,
    )
    .ok()?;
    let clock = time::Time::from_hms_milli(
        num(stamp.get(11..13)?)? as u8,
        num(stamp.get(14..16)?)? as u8,
        num(stamp.get(17..19)?)? as u8,
        num(stamp.get(20..23)?)? as u16,
    )
    .ok()?;
    let time = time::PrimitiveDateTime::new(date, clock)
        .assume_utc()
        .into();
    let rest = line.get(24..)?.trim_start();
    let (level, rest) = rest.split_once(' ')?;
    let level = match level {
        "DEBUG" => Level::Debug,
        "INFO" => Level::Info,
        "WARN" => Level::Warn,
        "ERROR" => Level::Error,
        _ => return None,
    };
    let rest = rest.trim_start();
    let (channel, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let channel = match channel {
        "SmtpIn" => Channel::SmtpIn,
        "SmtpOut" => Channel::SmtpOut,
        "Security" => Channel::Security,
        "Pop3" => Channel::Pop3,
        _ => Channel::System,
    };
    let rest = rest.trim_start();
    let (session, text) = match rest.strip_prefix('[').and_then(|r| r.split_once("] ")) {
        Some((s, t)) => (Some(s.to_string()), t),
        None => (None, rest),
    };
    Some(Event {
        seq: 0,
        time,
        level,
        channel,
        session,
        kind: EventKind::Note {
            text: text.to_string(),
        },
    })
}

/// Opens (or creates) the day's file of `ev` and prunes the others.
async fn open(dir: &Path, name: String, ev: &Event, p: &LogsConfig) -> Option<Open> {
    let path = dir.join(&name);
    let file = match OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .await
    {
        Ok(f) => f,
        Err(e) => {
            tracing::error!("cannot open log file {}: {e}", path.display());
            return None;
        }
    };
    let len = file.metadata().await.map_or(0, |m| m.len());
    let day = time::OffsetDateTime::from(ev.time).date();
    let others = prune(dir, &name, len, day, p);
    Some(Open {
        dir: dir.to_path_buf(),
        name,
        day,
        file,
        len,
        others,
        full: false,
    })
}

/// Writes what is pending, within the cap.
async fn write(o: &mut Open, pending: &mut String, p: &LogsConfig) {
    if pending.is_empty() {
        return;
    }
    let cap = p.max_total_size;
    if cap > 0 && o.others + o.len + pending.len() as u64 > cap {
        // Make room by deleting older files first; today's file is never cut.
        let after = o.len + pending.len() as u64;
        o.others = prune(&o.dir, &o.name, after, o.day, p);
    }
    if cap > 0 && o.others + o.len + pending.len() as u64 > cap {
        // Write the whole lines that still fit, then say once that the rest is dropped.
        if !o.full {
            let room = cap.saturating_sub(o.others + o.len) as usize;
            let fits = pending[..room.min(pending.len())]
                .rfind('\n')
                .map_or(0, |i| i + 1);
            let mut text = pending[..fits].to_string();
            text.push_str(&format!(
                "(logs.max_total_size {cap} reached: further lines of today are dropped)\n"
            ));
            o.full = true;
            if o.file.write_all(text.as_bytes()).await.is_ok() {
                o.len += text.len() as u64;
            }
            // tokio's File hands writes to a thread: flush so they are done, in order.
            let _ = o.file.flush().await;
        }
        pending.clear();
        return;
    }
    match o.file.write_all(pending.as_bytes()).await {
        Ok(()) => o.len += pending.len() as u64,
        Err(e) => tracing::error!("cannot write log file: {e}"),
    }
    // tokio's File hands writes to a thread: flush so they are done, in order.
    let _ = o.file.flush().await;
    pending.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> time::Date {
        let n: Vec<u16> = s.split('-').map(|p| p.parse().unwrap()).collect();
        let month = time::Month::try_from(n[1] as u8).unwrap();
        time::Date::from_calendar_date(i32::from(n[0]), month, n[2] as u8).unwrap()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn old_days_go_then_the_oldest_until_under_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        for (d, len) in [
            ("2026-11-01", 10),
            ("2026-11-20", 300),
            ("2026-11-28", 300),
            ("2026-11-30", 300),
            ("2026-12-01", 300),
        ] {
            std::fs::write(dir.path().join(format!("postern-{d}.log")), vec![b'x'; len]).unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), b"not ours").unwrap();
        let today = "postern-2026-12-02.log";
        std::fs::write(dir.path().join(today), vec![b'x'; 100]).unwrap();
        let policy = LogsConfig {
            level: LogLevel::Debug,
            retention_days: 14,
            max_total_size: 1000,
        };
        // 14 days: 11-01 goes; then 300 * 4 + 100 > 1000: 11-20, the oldest, goes as well.
        let others = prune(dir.path(), today, 100, day("2026-12-02"), &policy);
        assert_eq!(others, 900);
        assert_eq!(
            names(dir.path()),
            [
                "notes.txt",
                "postern-2026-11-28.log",
                "postern-2026-11-30.log",
                "postern-2026-12-01.log",
                "postern-2026-12-02.log"
            ]
        );
        // Today's file is never deleted, even alone over the cap.
        let others = prune(dir.path(), today, 5000, day("2026-12-02"), &policy);
        assert_eq!(others, 0);
        assert!(dir.path().join(today).exists());
    }

    #[tokio::test]
    async fn the_level_filters_and_the_cap_stops_todays_lines() {
        let dir = tempfile::tempdir().unwrap();
        let bus = EventBus::new();
        let policy = LogsConfig {
            level: LogLevel::Info,
            retention_days: 0,
            max_total_size: 1024 * 1024,
        };
        let (_tx, rx) = watch::channel(policy);
        let writer = start(&bus, dir.path(), rx).unwrap();
        let note = |text: &str| crate::engine::events::EventKind::Note { text: text.into() };
        bus.emit(Level::Debug, None, note("protocol detail"));
        bus.emit(Level::Info, None, note("kept"));
        let line = "y".repeat(1000);
        for _ in 0..1100 {
            bus.emit(Level::Warn, None, note(&line));
        }
        bus.emit(Level::Error, None, note("after the cap"));
        bus.detach_file_writer();
        writer.await.unwrap();
        let files = names(dir.path());
        assert_eq!(files.len(), 1, "{files:?}");
        let text = std::fs::read_to_string(dir.path().join(&files[0])).unwrap();
        assert!(!text.contains("protocol detail"));
        assert!(text.contains("kept"));
        assert!(
            text.contains("logs.max_total_size 1048576 reached"),
            "the file says so"
        );
        assert!(!text.contains("after the cap"));
        assert!(text.len() as u64 <= 1024 * 1024 + 200, "{}", text.len());
    }

    #[test]
    fn todays_earlier_lines_read_back_as_they_were_written() {
        let dir = tempfile::tempdir().unwrap();
        let bus = EventBus::new();
        bus.emit(
            Level::Info,
            None,
            crate::engine::events::EventKind::Note {
                text: "first".into(),
            },
        );
        bus.emit(
            Level::Warn,
            Some("ABC12"),
            crate::engine::events::EventKind::RecipientRejected {
                rcpt: "nobody@example.test".into(),
                reason: "no such account".into(),
            },
        );
        let evs = bus.recent();
        let name = day_file(time::OffsetDateTime::from(evs[0].time).date());
        let text: String = evs.iter().map(|e| format!("{e}\n")).collect();
        std::fs::write(
            dir.path().join(&name),
            format!("{text}(a line of the writer)\n"),
        )
        .unwrap();
        let now = evs[1].time;
        let back = earlier_today(dir.path(), now, None, 1000);
        assert_eq!(back.len(), 3);
        for (a, b) in evs.iter().zip(&back) {
            assert_eq!(a.to_string(), b.to_string());
            assert_eq!(
                (a.level, a.channel, &a.session),
                (b.level, b.channel, &b.session)
            );
        }
        assert_eq!(
            back[2]
                .to_string()
                .split_once(' ')
                .map(|x| x.1.contains("(a line of the writer)")),
            Some(true)
        );
        // Bounded, newest kept; and only what is older than what the pane already has.
        assert_eq!(
            earlier_today(dir.path(), now, None, 1)[0].to_string(),
            back[2].to_string()
        );
        let later = now + std::time::Duration::from_secs(1);
        assert_eq!(earlier_today(dir.path(), now, Some(later), 1000).len(), 3);
        assert!(earlier_today(dir.path(), now, Some(std::time::UNIX_EPOCH), 1000).is_empty());
    }
}
