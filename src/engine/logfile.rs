//! Daily log files: every engine event as one line in `DATA/logs/postern-YYYY-MM-DD.log`.
//!
//! One task owns the open file; events reach it through an unbounded channel so the SMTP
//! sessions never wait on log I/O. The file is switched at midnight (UTC).

use super::events::{Event, EventBus};
use std::path::{Path, PathBuf};
use tokio::fs::{File, OpenOptions};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Events waiting for the writer at most; beyond that they are counted, not kept.
const QUEUE: usize = 50_000;

/// The log file name for the day of `ev`.
pub fn file_name(ev: &Event) -> String {
    let t = time::OffsetDateTime::from(ev.time);
    format!(
        "postern-{:04}-{:02}-{:02}.log",
        t.year(),
        u8::from(t.month()),
        t.day()
    )
}

/// Starts the writer; it ends after [`EventBus::detach_file_writer`] once drained.
pub fn start(bus: &EventBus, dir: &Path) -> std::io::Result<JoinHandle<()>> {
    std::fs::create_dir_all(dir)?;
    let (tx, mut rx) = mpsc::channel::<Event>(QUEUE);
    bus.attach_file_writer(tx);
    let bus = bus.clone();
    let dir: PathBuf = dir.to_path_buf();
    Ok(tokio::spawn(async move {
        let mut current: Option<(String, File)> = None;
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
            let dropped = bus.take_dropped();
            if dropped > 0 {
                pending.push_str(&format!(
                    "({dropped} events were not written: the log file could not keep up)\n"
                ));
            }
            for ev in batch {
                let name = file_name(&ev);
                if current.as_ref().map(|(n, _)| n != &name).unwrap_or(true) {
                    if let Some((_, f)) = current.as_mut() {
                        write(f, &mut pending).await;
                    }
                    let path = dir.join(&name);
                    match OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&path)
                        .await
                    {
                        Ok(f) => current = Some((name, f)),
                        Err(e) => {
                            tracing::error!("cannot open log file {}: {e}", path.display());
                            current = None;
                            pending.clear();
                            continue;
                        }
                    }
                }
                pending.push_str(&ev.to_string());
                pending.push('\n');
            }
            if let Some((_, f)) = current.as_mut() {
                write(f, &mut pending).await;
            }
        }
    }))
}

async fn write(f: &mut File, pending: &mut String) {
    if let Err(e) = f.write_all(pending.as_bytes()).await {
        tracing::error!("cannot write log file: {e}");
    }
    pending.clear();
}
