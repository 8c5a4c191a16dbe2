//! Files only their owner can read: the config (it can hold the relay password), mailboxes,
//! the spool, logs and the control socket. The process runs with a umask of 077 from the
//! start, so everything it creates is private; the data directory itself is made 0700 even
//! when it already existed.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Sets the process umask to 077: files 0600, directories 0700, sockets private.
pub fn private_umask() {
    // SAFETY: umask(2) only changes the process's file mode creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

/// Creates `dir` (and its parents) if needed and makes it 0700.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}
