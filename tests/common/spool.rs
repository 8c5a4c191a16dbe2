//! Fills a data directory's spool with waiting mails before a server starts, through the
//! engine's own spool writer: a long queue without sending thousands of mails.

use postern::engine::queue::spool::{Content, Record, Spool};
use postern::engine::queue::{Meta, Rcpt, RcptState, now_secs};
use std::path::Path;

/// Writes `n` mails to `DATA/spool` with ids `first..first + n` (each `Subject: mail ID`, to
/// `rID@far.test`), none due for a month; returns their ids.
pub fn fill_spool(data_dir: &Path, first: u64, n: u64) -> Vec<u64> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (spool, _) = Spool::open(&data_dir.join("spool")).unwrap();
    let now = now_secs();
    let ids: Vec<u64> = (first..first + n).collect();
    rt.block_on(async {
        let written: Vec<_> = ids
            .iter()
            .map(|&id| {
                let meta = Meta {
                    id,
                    created: now,
                    from: "alice@example.test".into(),
                    rcpts: vec![Rcpt {
                        addr: format!("r{id}@far.test").into(),
                        state: RcptState::Pending,
                        last_error: "".into(),
                        notified: false,
                    }],
                    attempts: 0,
                    next_try: now + 30 * 86_400,
                    held: false,
                    warned: false,
                    size: 5,
                    client: "127.0.0.1".into(),
                    subject: format!("mail {id}").into(),
                };
                spool.send(Record::Put(meta, Content::bytes(&b"hello"[..])))
            })
            .collect();
        for w in written {
            w.await.unwrap();
        }
        spool.flush().await;
    });
    ids
}
