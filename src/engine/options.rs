//! [`EngineOptions`]: where the engine keeps its settings and its data. Below every module
//! that needs the paths (the supervisor, handles, front ends), so none of them imports upward.

use std::path::PathBuf;

/// Where the engine keeps its settings and its data.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// The RON configuration file (created with defaults if missing).
    pub config_path: PathBuf,
    /// Mailboxes, certificates, logs, the lock file.
    pub data_dir: PathBuf,
}
