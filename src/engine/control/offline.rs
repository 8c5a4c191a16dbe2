//! The queue requests of `postern queue ...`: through the control socket when a server runs on
//! the data directory, else directly on the spool, holding the data directory's lock meanwhile
//! and applying the same rules as the manager ([`crate::engine::queue::commands`]). It sits
//! above both the control socket (its first choice) and the queue (its fallback). The list
//! comes a page at a time ([`crate::engine::queue::page`]); [`each_page`] reads it whole,
//! page by page, for `postern queue list`.

use super::{self as control, ControlError, Request, Response};
use crate::engine::lock::{DataDirLock, LockError};
use crate::engine::queue::page::{self, Page, PageQuery};
use crate::engine::queue::spool::{Location, Spool, SpoolError};
use crate::engine::queue::{Meta, QueueEntry, now_secs};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a queue request could not be served.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// The control socket is there but talking to it failed.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// The data directory is in use, or its lock cannot be taken.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The spool could not be opened or replayed.
    #[error("cannot open the spool in {}", dir.display())]
    Open {
        /// `DATA/spool`.
        dir: PathBuf,
        /// What failed.
        source: SpoolError,
    },
    /// Reading a message or writing a record failed.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// The runtime for the spool writes could not be made.
    #[error(transparent)]
    Runtime(std::io::Error),
    /// The request needs a running server (reload, the blocks in force).
    #[error("no server is running on {}", .0.display())]
    NotRunning(PathBuf),
}

/// Runs a request against the live server, or offline on the spool when none runs.
pub fn request(data_dir: &Path, req: Request) -> Result<Response, OfflineError> {
    match control::request(data_dir, &req) {
        Ok(r) => Ok(r),
        Err(ControlError::NotRunning(_)) => offline(data_dir, req),
        Err(e) => Err(e.into()),
    }
}

/// Reads the whole list in id order, `limit` entries a page, handing each page to `each`
/// (which may stop the reading with an error): from the running server, one request per page
/// starting after the last id of the one before, or, when none runs (or it stopped
/// meanwhile), from one read of the spool. Only a page at a time is held (offline, beside the
/// states the spool's replay reads).
pub fn each_page<E: From<OfflineError>>(
    data_dir: &Path,
    limit: usize,
    mut each: impl FnMut(&Page) -> Result<(), E>,
) -> Result<(), E> {
    let mut q = PageQuery::by_id(limit);
    loop {
        let page = match control::request(data_dir, &Request::Page(q.clone())) {
            Ok(Response::Page(p)) => p,
            Ok(Response::Error(e)) => {
                return Err(OfflineError::Control(ControlError::Io {
                    path: control::socket_path(data_dir),
                    message: e,
                })
                .into());
            }
            Ok(r) => {
                return Err(OfflineError::Control(ControlError::Io {
                    path: control::socket_path(data_dir),
                    message: format!("unexpected answer {r:?}"),
                })
                .into());
            }
            Err(ControlError::NotRunning(_)) => return each_page_offline(data_dir, q, each),
            Err(e) => return Err(OfflineError::from(e).into()),
        };
        each(&page)?;
        match q.next(&page) {
            Some(next) => q = next,
            None => return Ok(()),
        }
    }
}

/// [`each_page`] on the spool, from `q` on.
fn each_page_offline<E: From<OfflineError>>(
    data_dir: &Path,
    mut q: PageQuery,
    mut each: impl FnMut(&Page) -> Result<(), E>,
) -> Result<(), E> {
    let (_lock, _spool, mut messages) = open(data_dir)?;
    messages.sort_unstable_by_key(|(m, _)| m.id);
    let total = messages.len();
    let start = messages.partition_point(|(m, _)| !q.after_cursor(m.id));
    let limit = q.max_len().max(1);
    for chunk in messages[start..].chunks(limit) {
        let page = Page {
            total,
            offset: 0,
            entries: chunk.iter().map(|(m, _)| idle(m)).collect(),
            with: None,
        };
        each(&page)?;
        match q.next(&page) {
            Some(next) => q = next,
            None => break,
        }
    }
    Ok(())
}

/// A message read from the spool as the list shows it.
fn idle(m: &Meta) -> Arc<QueueEntry> {
    Arc::new(QueueEntry::idle(m.clone()))
}

/// The data directory's lock (held while the spool is used), the spool and the messages its
/// replay found.
type Opened = (DataDirLock, Spool, Vec<(Meta, Location)>);

/// Takes the lock and opens the spool.
fn open(data_dir: &Path) -> Result<Opened, OfflineError> {
    let lock = DataDirLock::acquire(data_dir)?;
    let dir = data_dir.join("spool");
    let (spool, replayed) = Spool::open(&dir).map_err(|source| OfflineError::Open {
        dir: dir.clone(),
        source,
    })?;
    Ok((lock, spool, replayed.messages))
}

/// Serves `req` from the spool itself; no server may run meanwhile (the lock says so).
fn offline(data_dir: &Path, req: Request) -> Result<Response, OfflineError> {
    let (_lock, spool, messages) = open(data_dir)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(OfflineError::Runtime)?;
    let resp = match req {
        Request::Page(q) => Response::Page(Page {
            total: messages.len(),
            offset: q.offset,
            entries: page::select(messages.iter(), |(m, _)| m, &q)
                .into_iter()
                .map(|(m, _)| idle(m))
                .collect(),
            with: (q.with)
                .and_then(|id| messages.iter().find(|(m, _)| m.id == id))
                .map(|(m, _)| idle(m)),
        }),
        Request::Show(id) => match messages.iter().find(|(m, _)| m.id == id) {
            Some((m, loc)) => {
                let data = spool.read(*loc)?;
                Response::Show(Some((
                    QueueEntry::idle(m.clone()),
                    String::from_utf8_lossy(&data).into_owned(),
                )))
            }
            None => Response::Show(None),
        },
        Request::Queue(cmd) => {
            let now = now_secs();
            let n = rt.block_on(async {
                let mut n = 0;
                for (m, _) in &messages {
                    if cmd.target().selects(m.id) {
                        spool.append(cmd.apply(&mut m.clone(), now)).await?;
                        n += 1;
                    }
                }
                Ok::<_, SpoolError>(n)
            })?;
            Response::Count(n)
        }
        // Reloads, listeners and blocks concern the running server only (blocks live in its
        // memory).
        Request::Reload | Request::Status | Request::Blocked | Request::Unblock(_) => {
            return Err(OfflineError::NotRunning(data_dir.to_path_buf()));
        }
    };
    rt.block_on(spool.flush());
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::queue::spool::{Content, Record};
    use crate::engine::queue::{Meta, QueueCommand, Rcpt, RcptState, Target};

    fn spool_two(data: &Path) {
        let (spool, _) = Spool::open(&data.join("spool")).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for id in [1, 2] {
            let meta = Meta {
                id,
                created: 1,
                from: "a@b.test".into(),
                rcpts: vec![Rcpt {
                    addr: "c@d.test".into(),
                    state: RcptState::Pending,
                    last_error: "".into(),
                    notified: false,
                }],
                attempts: 0,
                next_try: u64::MAX,
                held: false,
                warned: false,
                size: 5,
                client: "local".into(),
                subject: "".into(),
            };
            rt.block_on(spool.append(Record::Put(meta, Content::bytes(&b"hello"[..]))))
                .unwrap();
        }
        rt.block_on(spool.flush());
    }

    fn list(data: &Path) -> Vec<Arc<QueueEntry>> {
        match request(data, Request::Page(PageQuery::by_id(100))).unwrap() {
            Response::Page(p) => {
                assert_eq!(p.total, p.entries.len());
                p.entries
            }
            r => panic!("{r:?}"),
        }
    }

    fn count(data: &Path, cmd: QueueCommand) -> usize {
        match request(data, Request::Queue(cmd)).unwrap() {
            Response::Count(n) => n,
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn commands_work_on_the_spool_without_a_server() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path();
        spool_two(data);
        assert_eq!(list(data).len(), 2);
        assert_eq!(count(data, QueueCommand::Hold(Target::Id(2))), 1);
        assert_eq!(count(data, QueueCommand::Hold(Target::Id(9))), 0);
        let l = list(data);
        assert!(!l[0].meta.held && l[1].meta.held);
        assert_eq!(count(data, QueueCommand::Retry(Target::All)), 2);
        assert!(list(data).iter().all(|e| e.meta.next_try <= now_secs()));
        match request(data, Request::Show(1)).unwrap() {
            Response::Show(Some((e, text))) => assert_eq!((e.meta.id, text.as_str()), (1, "hello")),
            r => panic!("{r:?}"),
        }
        assert_eq!(count(data, QueueCommand::Delete(Target::Id(1))), 1);
        assert_eq!(list(data)[0].meta.id, 2);
        assert!(matches!(
            request(data, Request::Reload),
            Err(OfflineError::NotRunning(_))
        ));
    }
}
