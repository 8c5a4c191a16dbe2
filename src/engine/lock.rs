//! Ownership of a data directory: one Postern process at a time, by an OS file lock on
//! `DATA/postern.lock` that holds the owner's pid. The lock goes away with the process, even
//! after `kill -9`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Why the data directory could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error("data directory {dir} is already in use by another Postern (pid {pid})")]
    InUse {
        /// The directory.
        dir: PathBuf,
        /// The other process, as written in the lock file.
        pid: String,
    },
    /// The lock file could not be opened or written.
    #[error("cannot lock data directory {dir}: {source}")]
    Io {
        /// The directory.
        dir: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Held for as long as this process owns the data directory.
#[derive(Debug)]
pub struct DataDirLock {
    /// The locked file; the lock lasts as long as it is open.
    _file: File,
}

impl DataDirLock {
    /// Takes the data directory or says who has it.
    pub fn acquire(dir: &Path) -> Result<DataDirLock, LockError> {
        let io = |source| LockError::Io {
            dir: dir.to_path_buf(),
            source,
        };
        crate::engine::perms::private_dir(dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join("postern.lock"))
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                return Err(LockError::InUse {
                    dir: dir.to_path_buf(),
                    pid: pid.trim().to_string(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(DataDirLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_owner_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        let err = DataDirLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(err.contains("already in use"), "{err}");
        assert!(err.contains(&std::process::id().to_string()), "{err}");
        drop(first);
        DataDirLock::acquire(dir.path()).unwrap();
    }
}
