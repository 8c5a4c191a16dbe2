//! Pages of the queue list: what the GUI's table and `postern queue list` read instead of the
//! whole queue. A [`PageQuery`] names a sort column, a direction and a window (an offset, or
//! for id order a cursor: the last id seen); the answer is a [`Page`], the window's entries and
//! how many mails the queue holds. The manager answers it for the live queue
//! ([`super::Queue::page`]), `control::offline` for the spool; both with [`select`], which
//! costs O(n) for a column sort (a selection, then a sort of the page only) and nothing more
//! than the window for id order over a map kept in id order.

use super::{Meta, QueueEntry};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::sync::Arc;

/// Most entries one page holds; a query asking for more gets this many.
pub const MAX_PAGE: usize = 5000;

/// The column a page is sorted by (the queue table's sortable columns).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortBy {
    /// Queue id (= arrival order).
    #[default]
    Id,
    /// Envelope sender.
    From,
    /// First recipient.
    To,
    /// Subject.
    Subject,
    /// Size.
    Size,
    /// Attempts made.
    Attempts,
    /// Next try (mail on hold after every other).
    NextTry,
}

/// Which part of the queue list to return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageQuery {
    /// The column.
    pub sort: SortBy,
    /// Largest first.
    pub descending: bool,
    /// Entries skipped before the page (ignored when `after` is given).
    pub offset: usize,
    /// Entries in the page at most (cut to [`MAX_PAGE`]).
    pub limit: usize,
    /// Id order only: the page starts after this id (before it when descending) instead of at
    /// `offset`, so a listing read page by page neither skips nor repeats a mail when others
    /// leave the queue between two pages.
    #[serde(default)]
    pub after: Option<u64>,
    /// Also return this mail, wherever it sorts (the table's selected mail).
    #[serde(default)]
    pub with: Option<u64>,
}

impl PageQuery {
    /// The first `limit` entries in id order, then the next ones with [`PageQuery::next`].
    pub fn by_id(limit: usize) -> PageQuery {
        PageQuery {
            sort: SortBy::Id,
            descending: false,
            offset: 0,
            limit,
            after: None,
            with: None,
        }
    }

    /// The query for the page after `page` in id order (what `postern queue list` reads
    /// next); `None` when `page` was the last.
    pub fn next(&self, page: &Page) -> Option<PageQuery> {
        let last = page.entries.last()?;
        (page.entries.len() >= self.limit.min(MAX_PAGE)).then(|| PageQuery {
            after: Some(last.meta.id),
            offset: 0,
            ..self.clone()
        })
    }

    /// The order of the page: the column, then the id (so the order is total and a page's
    /// neighbours are always the same mails), the whole reversed when descending.
    pub fn order(&self, a: &Meta, b: &Meta) -> Ordering {
        let o = match self.sort {
            SortBy::Id => Ordering::Equal,
            SortBy::From => a.from.cmp(&b.from),
            SortBy::To => (a.rcpts.first().map(|r| &r.addr)).cmp(&b.rcpts.first().map(|r| &r.addr)),
            SortBy::Subject => a.subject.cmp(&b.subject),
            SortBy::Size => a.size.cmp(&b.size),
            SortBy::Attempts => a.attempts.cmp(&b.attempts),
            SortBy::NextTry => (a.held, a.next_try).cmp(&(b.held, b.next_try)),
        }
        .then(a.id.cmp(&b.id));
        if self.descending { o.reverse() } else { o }
    }

    /// Whether a mail comes after the cursor (every mail does without one).
    pub fn after_cursor(&self, id: u64) -> bool {
        match (self.after, self.descending) {
            (None, _) => true,
            (Some(a), false) => id > a,
            (Some(a), true) => id < a,
        }
    }

    /// The entries skipped before the page.
    fn skip(&self) -> usize {
        if self.after.is_some() { 0 } else { self.offset }
    }

    /// The page's length at most.
    pub fn max_len(&self) -> usize {
        self.limit.min(MAX_PAGE)
    }
}

/// A page of the queue list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// Mails in the whole queue.
    pub total: usize,
    /// Entries before this page (the query's offset).
    pub offset: usize,
    /// The page, in the order asked for.
    pub entries: Vec<Arc<QueueEntry>>,
    /// The mail the query asked for beside the page; `None` when it is no longer queued.
    pub with: Option<Arc<QueueEntry>>,
}

/// The page `q` asks for out of `items` (in any order), `meta` giving each one's state:
/// the mails after the cursor are gathered (pointers), the page's first and last are found by
/// selection (O(n)), and only the page is sorted. Returns the page in order.
pub fn select<'a, T>(
    items: impl Iterator<Item = &'a T>,
    meta: impl Fn(&T) -> &Meta,
    q: &PageQuery,
) -> Vec<&'a T> {
    let mut all: Vec<&T> = items.filter(|t| q.after_cursor(meta(t).id)).collect();
    let skip = q.skip();
    if skip >= all.len() || q.max_len() == 0 {
        return Vec::new();
    }
    let cmp = |a: &&T, b: &&T| q.order(meta(a), meta(b));
    if skip > 0 {
        all.select_nth_unstable_by(skip, cmp);
    }
    let rest = &mut all[skip..];
    let end = q.max_len().min(rest.len());
    if end < rest.len() {
        rest.select_nth_unstable_by(end, cmp);
    }
    let page = &mut rest[..end];
    page.sort_unstable_by(cmp);
    page.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::queue::test_meta;

    fn metas() -> Vec<Meta> {
        // Sizes repeat, so the id decides between equals.
        (1..=50)
            .map(|id| Meta {
                size: id % 7,
                subject: format!("s{:02}", 50 - id).into(),
                ..test_meta(id)
            })
            .collect()
    }

    fn ids(page: &[&Meta]) -> Vec<u64> {
        page.iter().map(|m| m.id).collect()
    }

    fn query(sort: SortBy, descending: bool, offset: usize, limit: usize) -> PageQuery {
        PageQuery {
            sort,
            descending,
            offset,
            limit,
            after: None,
            with: None,
        }
    }

    #[test]
    fn a_page_is_the_window_of_the_whole_sorted_list() {
        let all = metas();
        for sort in [SortBy::Id, SortBy::Size, SortBy::Subject, SortBy::NextTry] {
            for descending in [false, true] {
                let mut sorted: Vec<&Meta> = all.iter().collect();
                let whole = query(sort, descending, 0, 1000);
                sorted.sort_by(|a, b| whole.order(a, b));
                for (offset, limit) in [(0, 10), (10, 10), (45, 10), (49, 1), (50, 5), (0, 0)] {
                    let q = query(sort, descending, offset, limit);
                    let page = select(all.iter(), |m| m, &q);
                    let want: Vec<&Meta> =
                        sorted.iter().skip(offset).take(limit).copied().collect();
                    assert_eq!(ids(&page), ids(&want), "{q:?}");
                }
            }
        }
    }

    #[test]
    fn pages_read_by_cursor_cover_the_queue_once() {
        let all = metas();
        let mut q = PageQuery::by_id(7);
        let mut seen = Vec::new();
        loop {
            let page = select(all.iter(), |m| m, &q);
            let p = Page {
                total: all.len(),
                offset: 0,
                entries: page
                    .iter()
                    .map(|m| Arc::new(QueueEntry::idle((*m).clone())))
                    .collect(),
                with: None,
            };
            seen.extend(ids(&page));
            match q.next(&p) {
                Some(n) => q = n,
                None => break,
            }
        }
        assert_eq!(seen, (1..=50).collect::<Vec<_>>());
        let back = PageQuery {
            descending: true,
            after: Some(10),
            ..PageQuery::by_id(3)
        };
        assert_eq!(ids(&select(all.iter(), |m| m, &back)), [9, 8, 7]);
    }
}
