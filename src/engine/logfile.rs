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
use std::path::{Path, PathBuf};
use tokio::fs::{File, OpenOptions};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Events waiting for the writer at most; beyond that they are counted, not kept.
const QUEUE: usize = 50_000;

/// The log file name for the day of `ev`.
pub fn file_name(ev: &Event) -> String {
    let t = time::OffsetDateTime::from(ev.time);
    day_file(t.date())
}

/// The log file name for `day`.
fn day_file(day: time::Date) -> String {
    format!(
        "postern-{:04}-{:02}-{:02}.log",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

/// Whether `ev` is at or above the configured level.
fn wanted(ev: &Event, policy: &LogsConfig) -> bool {
    let min = match policy.level {
        LogLevel::Debug => Level::Debug,
        LogLevel::Info => Level::Info,
        LogLevel::Warn => Level::Warn,
        LogLevel::Error => Level::Error,
    };
    ev.level >= min
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
    let (tx, mut rx) = mpsc::channel::<Event>(QUEUE);
    bus.attach_file_writer(tx);
    let bus = bus.clone();
    let dir: PathBuf = dir.to_path_buf();
    Ok(tokio::spawn(async move {
        let mut current: Option<Open> = None;
        let mut pending = String::new();
        while let Some(first) = rx.recv().await {
            // Take whatever else is already waiting, so a busy server writes in batches.
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
            for ev in batch.into_iter().filter(|ev| wanted(ev, &p)) {
                let name = file_name(&ev);
                if current.as_ref().is_none_or(|o| o.name != name) {
                    if let Some(o) = current.as_mut() {
                        write(o, &mut pending, &p).await;
                    }
                    current = open(&dir, name, &ev, &p).await;
                    if current.is_none() {
                        pending.clear();
                        continue;
                    }
                }
                pending.push_str(&ev.to_string());
                pending.push('\n');
            }
            if let Some(o) = current.as_mut() {
                write(o, &mut pending, &p).await;
            }
        }
    }))
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
}
