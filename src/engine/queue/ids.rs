//! Queue ids: increasing and unique across restarts, known before the spool is replayed.
//!
//! An id is at least the current time in seconds shifted left by 20 bits (so ids read as
//! arrival order) and always above the last one handed out. Two ids must never be equal: the
//! replay takes a later `Put` of an id as that message's newest copy, so a reused id would
//! hide a queued message. The replay knows the highest id in the spool, but a server with a
//! long queue listens before its replay ends (`Spool::open_in_background`), and the clock
//! may have gone back since the last run. So every id handed out stays below a *reservation*
//! kept in `DATA/spool/ids` (written to a temporary file, synced, renamed, the directory
//! synced); the reservation is raised an hour ahead, before any id reaches it. At start the
//! ids go on from the reservation, which is above every id the last run gave out.

use super::spool::SpoolError;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The reservation's file in the spool directory.
pub const FILE: &str = "ids";
/// How far ahead of the clock a reservation reaches, in seconds.
const AHEAD_SECS: u64 = 3600;

/// The least id for a given time: seconds since the epoch, shifted left by 20 bits.
fn floor_at(secs: u64) -> u64 {
    secs << 20
}

/// Hands out queue ids. Shared by every session.
#[derive(Debug)]
pub struct Ids {
    /// `DATA/spool/ids`.
    path: PathBuf,
    /// The last id handed out.
    last: AtomicU64,
    /// Every id handed out is at most this (on disk before any id reaches it).
    reserved: AtomicU64,
    /// One reservation written at a time.
    writing: tokio::sync::Mutex<()>,
}

impl Ids {
    /// Reads the reservation in `spool_dir`: `None` when there is none to trust (a spool
    /// from before reservations, or a damaged file); then the replay must give the last id.
    pub fn read(spool_dir: &Path) -> Option<u64> {
        let text = fs::read_to_string(spool_dir.join(FILE)).ok()?;
        text.trim().parse().ok()
    }

    /// Ids going on above `last`, with a reservation written now (so the first session pays
    /// nothing). `last` is the reservation read at start or the replay's highest id.
    pub fn start(spool_dir: &Path, last: u64) -> Result<Ids, SpoolError> {
        let ids = Ids {
            path: spool_dir.join(FILE),
            last: AtomicU64::new(last),
            reserved: AtomicU64::new(last),
            writing: tokio::sync::Mutex::new(()),
        };
        let upto = ids.wanted(last);
        write_reservation(&ids.path, upto)?;
        ids.reserved.store(upto, Ordering::Release);
        Ok(ids)
    }

    /// The reservation to write when ids have reached `id`.
    fn wanted(&self, id: u64) -> u64 {
        floor_at(super::now_secs() + AHEAD_SECS).max(id.saturating_add(1 << 20))
    }

    /// A fresh id, once it is covered by the reservation on disk.
    pub async fn next(&self) -> Result<u64, SpoolError> {
        let floor = floor_at(super::now_secs());
        let id = self
            .last
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                Some((cur + 1).max(floor))
            })
            .map(|cur| (cur + 1).max(floor))
            .expect("the closure always gives a value");
        // Raised well before it is reached: an hour ahead of the clock, and again when less
        // than half of that is left, so a session waits for a write only if the clock jumps.
        if id > self.reserved.load(Ordering::Acquire)
            || floor_at(super::now_secs() + AHEAD_SECS / 2) > self.reserved.load(Ordering::Acquire)
        {
            self.reserve(id).await?;
        }
        Ok(id)
    }

    /// Makes sure ids up to `id` (and an hour ahead) are reserved on disk.
    async fn reserve(&self, id: u64) -> Result<(), SpoolError> {
        let _one = self.writing.lock().await;
        let have = self.reserved.load(Ordering::Acquire);
        if id <= have && floor_at(super::now_secs() + AHEAD_SECS / 2) <= have {
            return Ok(());
        }
        let upto = self.wanted(id).max(have);
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || write_reservation(&path, upto))
            .await
            .map_err(|e| SpoolError::Io(e.to_string()))??;
        self.reserved.store(upto, Ordering::Release);
        Ok(())
    }

    /// After the replay: ids go on above the highest one found in the spool, whatever the
    /// reservation said (a reservation file restored from an old backup, say).
    pub fn raise(&self, highest: u64) {
        self.last.fetch_max(highest, Ordering::AcqRel);
    }

    /// The reservation on disk (for tests).
    pub fn reserved(&self) -> u64 {
        self.reserved.load(Ordering::Acquire)
    }
}

/// Writes `upto` to `path` durably: a temporary file, synced, renamed over, the directory
/// synced.
fn write_reservation(path: &Path, upto: u64) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp)?;
    writeln!(f, "{upto}")?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ids_increase_and_stay_below_the_reservation_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Ids::read(dir.path()), None, "no file yet");
        let ids = Ids::start(dir.path(), 0).unwrap();
        let on_disk = Ids::read(dir.path()).unwrap();
        assert_eq!(on_disk, ids.reserved());
        let mut prev = 0;
        for _ in 0..1000 {
            let id = ids.next().await.unwrap();
            assert!(id > prev);
            assert!(id <= Ids::read(dir.path()).unwrap());
            prev = id;
        }
        assert!(prev >= floor_at(super::super::now_secs()));
    }

    #[tokio::test]
    async fn a_restart_goes_on_above_every_id_of_the_last_run_even_if_the_clock_went_back() {
        let dir = tempfile::tempdir().unwrap();
        // A last run whose clock was far ahead: its ids are above today's floor.
        let ahead = floor_at(super::super::now_secs() + 10 * 86_400);
        let ids = Ids::start(dir.path(), ahead).unwrap();
        let last = ids.next().await.unwrap();
        assert!(last > ahead);
        drop(ids);
        let again = Ids::start(dir.path(), Ids::read(dir.path()).unwrap()).unwrap();
        assert!(again.next().await.unwrap() > last);
    }

    #[tokio::test]
    async fn an_id_beyond_the_reservation_is_reserved_before_it_is_given() {
        let dir = tempfile::tempdir().unwrap();
        let ids = Ids::start(dir.path(), 0).unwrap();
        let beyond = ids.reserved() + 5;
        ids.raise(beyond);
        let id = ids.next().await.unwrap();
        assert_eq!(id, beyond + 1);
        assert!(Ids::read(dir.path()).unwrap() >= id);
    }

    #[test]
    fn a_damaged_file_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE), "12x\n").unwrap();
        assert_eq!(Ids::read(dir.path()), None);
    }
}
