//! The account's images, listed completely through `SearchMedia`, and the
//! proof that the listing is complete.
//!
//! `SearchMedia` pages reach only the first 5,000 results of a query
//! (`api::search`, which cites the operation's page), so the listing cuts
//! the account into queries small enough to page through:
//!
//! 1. The root query is every image created in `[lower, upper)`, where
//!    `upper` is fixed when the listing starts (`--created-before`, or the
//!    second the listing began: images created during the listing are not
//!    chased) and kept in the listing journal, so a resumed listing asks the
//!    same questions.
//! 2. A query whose `Total` is over 5,000 is cut in two at the middle of
//!    its time range, again and again. One second that holds more than
//!    5,000 images is cut by `CateId`: the categories are those of the
//!    images in the first 5,000 results of that second (every page of it
//!    that can be read). If the categories' `Total`s do not add up to the
//!    second's (images in categories not seen, or in none), or one
//!    category alone holds more than 5,000 images in that second, the
//!    listing stops with an error naming the second and the counts: an
//!    inventory is never silently partial.
//! 3. A query of at most 5,000 is paged through (`PageSize` 100, sorted by
//!    `CreationTime`). Every page must report the same `Total` as the first
//!    (else the range changed under the listing, and it is listed again),
//!    and the distinct ids of its pages must number exactly `Total` (else
//!    paging was not stable, as when many images share a second and the
//!    server orders them differently from one page to the next: the query
//!    is cut smaller and listed again, down to one page where possible).
//! 4. At the end, the `Total`s of the queries paged through must add up to
//!    the root's `Total`, and the distinct ids of the whole listing must
//!    number the same. [`Counts`] holds the three figures; the run reports
//!    an incomplete inventory in its manifest and exit code.
//!
//! The listing journal (`inventory.jsonl`, one JSON line per answer) holds
//! every answer the listing used, each written before the next question
//! depends on it: a listing killed at any point resumes without asking
//! again any page it had, only those in flight. The inventory
//! (`inventory.csv`) is written from the journal once the listing is done.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::api::error::ApiError;
use crate::api::search::{now_secs, utc, Page, Query, MAX_PAGE_SIZE, PAGING_LIMIT};
use crate::run::call::{CallEnd, Caller};
use crate::run::lanes::Action;
use crate::rundir::files::{open_private, room_advice, FileDigest, Private};

pub(crate) use crate::run::input::Filters;

mod journal;
use journal::{read_back, write_inventory, Line, ListJournal, State};

/// The figures that prove a listing complete, or show it is not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Counts {
    /// The range listed: `[lower, upper)`, UTC.
    pub lower: String,
    pub upper: String,
    /// The root query's `Total`.
    pub root_total: u64,
    /// The sum of the `Total`s of the queries paged through.
    pub leaf_total: u64,
    /// Distinct image ids listed.
    pub distinct: u64,
    /// Queries asked (each a first page), and pages asked in all.
    pub queries: u64,
    pub pages: u64,
    /// Seconds cut by category.
    pub split_by_category: u64,
    /// Queries listed again because they changed or paged unstably.
    pub relisted: u64,
}

impl Counts {
    /// All three figures agree.
    pub(crate) fn complete(&self) -> bool {
        self.root_total == self.leaf_total && self.leaf_total == self.distinct
    }
}

/// Why a listing stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ListError {
    /// A query that cannot be cut small enough.
    #[error("cannot list {what} completely: {detail}; SearchMedia pages through at most 5,000 results of a query, and nothing smaller than one second and one category can be asked. The listing so far is kept: narrow the run with --created-after/--created-before/--cate-id, or audit those images from a CSV")]
    Unsplittable { what: String, detail: String },
    /// A call that failed for good.
    #[error("SearchMedia failed for {what}: {error}")]
    Failed { what: String, error: Box<ApiError> },
    /// The run is stopping (signal, fatal error): the stop handle says why.
    #[error("stopped")]
    Stopped,
    /// The listing journal or the inventory could not be read or written.
    #[error("{0}")]
    Io(String),
    /// The journal belongs to another listing.
    #[error("{0}")]
    Mismatch(String),
    /// A symbolic link where the listing writes: refused, someone else's to
    /// remove.
    #[error("{0}")]
    Link(String),
}

impl ListError {
    /// An I/O error about `what`. The files' own refusal of a symbolic link
    /// (`InvalidInput`, from `rundir::files`) is the user's to fix; any
    /// other error is the disk's, with what to do when it is full.
    pub(crate) fn io(what: impl std::fmt::Display, e: &std::io::Error) -> Self {
        match (e.kind(), room_advice(e)) {
            (std::io::ErrorKind::InvalidInput, _) => ListError::Link(e.to_string()),
            (_, Some(advice)) => ListError::Io(format!("{what}: {e}; {advice}")),
            (_, None) => ListError::Io(format!("{what}: {e}")),
        }
    }
}

/// How the listing reports progress (ranges done, images listed).
pub(crate) trait ListProgress {
    /// `ranges`: queries paged through and checked; `images`: ids listed
    /// by this process so far.
    fn listed(&mut self, counts: &Counts, ranges: u64, images: u64);
}

/// Prints a line to stderr at most every few seconds; nothing when quiet.
pub(crate) struct EveryFewSeconds {
    pub quiet: bool,
    last: Option<Instant>,
}

impl EveryFewSeconds {
    pub(crate) fn new(quiet: bool) -> Self {
        EveryFewSeconds { quiet, last: None }
    }
}

impl ListProgress for EveryFewSeconds {
    fn listed(&mut self, c: &Counts, ranges: u64, images: u64) {
        if self.quiet || self.last.is_some_and(|t| t.elapsed() < Duration::from_secs(5)) {
            return;
        }
        self.last = Some(Instant::now());
        eprintln!(
            "vod-image-audit: listing: {ranges} ranges done, {images} images listed ({} queries, {} pages asked)",
            c.queries, c.pages
        );
    }
}

/// The result of a listing: the counts, and the inventory's digest.
pub(crate) struct Listing {
    pub counts: Counts,
    pub inventory: FileDigest,
}

/// Lists every image that `filters` selects into `dir/csv_name`, with the
/// journal `dir/journal_name`, which a killed listing resumes from and a
/// finished one leaves in place (the run removes it with its own state).
pub(crate) async fn list(
    caller: &Caller<'_>,
    dir: &Path,
    journal_name: &str,
    csv_name: &str,
    filters: Filters,
    concurrency: usize,
    progress: &mut dyn ListProgress,
) -> Result<Listing, ListError> {
    let shown = dir.join(journal_name).display().to_string();
    let mut file = open_private(dir, journal_name, Private::Append).map_err(|e| ListError::io(&shown, &e))?;
    let mut st = read_back(&mut file, &shown)?;
    let mut journal = ListJournal { file, line: Vec::with_capacity(64 * 1024), shown: shown.clone() };
    let (lower, upper) = match st.start {
        Some((lower, upper, was)) if was == filters => (lower, upper),
        Some((_, _, was)) => {
            return Err(ListError::Mismatch(format!(
                "{shown} is the listing of {}, not of {}: choose another --out, or pass --force",
                was.describe(),
                filters.describe()
            )))
        }
        None => {
            let lower = filters.created_after.unwrap_or(0);
            let upper = filters.created_before.map_or(now_secs(), |b| b.min(now_secs()));
            if upper > lower {
                journal.append(&Line::Start { lower, upper, filters })?;
            }
            (lower, upper)
        }
    };
    if upper <= lower {
        // Nothing was listed: leave no journal behind.
        drop(journal);
        let _ = std::fs::remove_file(dir.join(journal_name));
        return Err(ListError::Mismatch(format!(
            "nothing to list: no second lies in [{}, {}) (--created-after is not before --created-before or now)",
            utc(lower),
            utc(upper)
        )));
    }
    st.counts.lower = utc(lower);
    st.counts.upper = utc(upper);
    let root = Query { from: lower, to: upper, cate: filters.cate_id };
    let mut l = Lister { caller, journal, st, concurrency: concurrency.max(1), progress, listed: 0 };
    l.run(root).await?;
    let mut counts = l.finish_counts(root);
    let inventory = write_inventory(dir, journal_name, csv_name, &mut counts)?;
    Ok(Listing { counts, inventory })
}

struct Lister<'c, 'p> {
    caller: &'c Caller<'c>,
    journal: ListJournal,
    st: State,
    concurrency: usize,
    progress: &'p mut dyn ListProgress,
    listed: u64,
}

/// What paging through a query found.
enum Paged {
    /// Paged through and checked.
    Done,
    /// It must be cut smaller (it grew past 5,000, or paged unstably).
    Split(u64),
}

impl Lister<'_, '_> {
    async fn run(&mut self, root: Query) -> Result<(), ListError> {
        let mut stack = vec![root];
        while let Some(q) = stack.pop() {
            if self.st.leaves.contains_key(&q) {
                continue;
            }
            let total = match self.st.totals.get(&q) {
                Some(t) => *t,
                None => self.first_page(q).await?,
            };
            let total = if total <= PAGING_LIMIT {
                match self.page_through(q, total).await? {
                    Paged::Done => continue,
                    Paged::Split(t) => t,
                }
            } else {
                total
            };
            let children = self.split(q, total).await?;
            // Earliest first.
            stack.extend(children.into_iter().rev());
        }
        Ok(())
    }

    async fn ask(&mut self, q: Query, no: u32) -> Result<Page, ListError> {
        let client = self.caller.client();
        self.st.counts.pages += 1;
        self.caller
            .call(Action::SearchMedia, || client.search_images(&q, no, MAX_PAGE_SIZE))
            .await
            .map_err(|e| end_error(e, &q))
    }

    /// Asks a query's first page: its `Total`, and, when it can be paged
    /// through, its first page, both journaled.
    async fn first_page(&mut self, q: Query) -> Result<u64, ListError> {
        self.st.counts.queries += 1;
        let page = self.ask(q, 1).await?;
        let total = page.total;
        self.journal.append(&Line::Node { q, total })?;
        self.st.totals.insert(q, total);
        // Kept when it can be paged through, or when it is one second that
        // will be cut by category (its pages name the categories).
        if total <= PAGING_LIMIT || (q.seconds() == 1 && q.cate.is_none()) {
            self.keep_page(q, 1, page)?;
        }
        Ok(total)
    }

    fn keep_page(&mut self, q: Query, no: u32, page: Page) -> Result<(), ListError> {
        let ids: Vec<(String, Option<i64>)> = page.items.iter().map(|i| (i.image_id.clone(), i.cate_id)).collect();
        self.listed += ids.len() as u64;
        self.journal.append(&Line::Page { q, no, total: page.total, items: page.items })?;
        self.st.pages.entry(q).or_default().insert(no, (page.total, ids));
        self.progress.listed(&self.st.counts, self.st.leaves.len() as u64, self.listed);
        Ok(())
    }

    /// Asks the pages `nos` of `q`, `--concurrency` at a time, and keeps
    /// (journals) each as it comes; the first failure is returned once the
    /// pages in flight have settled, so none that came back is lost.
    async fn fetch_pages(&mut self, q: Query, nos: Vec<u32>) -> Result<(), ListError> {
        let client = self.caller.client();
        let caller = self.caller;
        let mut answers = futures::stream::iter(nos)
            .map(|no| async move {
                (no, caller.call(Action::SearchMedia, || client.search_images(&q, no, MAX_PAGE_SIZE)).await)
            })
            .buffer_unordered(self.concurrency);
        let mut failure = None;
        while let Some((no, r)) = answers.next().await {
            self.st.counts.pages += 1;
            match r {
                Ok(page) => self.keep_page(q, no, page)?,
                Err(e) => failure = failure.or(Some(end_error(e, &q))),
            }
        }
        failure.map_or(Ok(()), Err)
    }

    fn restart(&mut self, q: Query) -> Result<(), ListError> {
        self.st.counts.relisted += 1;
        self.journal.append(&Line::Restart { q })?;
        self.st.pages.remove(&q);
        self.st.totals.remove(&q);
        Ok(())
    }

    /// Pages through a query of at most 5,000 images and checks it.
    async fn page_through(&mut self, q: Query, mut total: u64) -> Result<Paged, ListError> {
        for _round in 0..3 {
            let needed = total.div_ceil(u64::from(MAX_PAGE_SIZE)) as u32;
            let have: BTreeSet<u32> = self.st.pages.get(&q).map(|p| p.keys().copied().collect()).unwrap_or_default();
            let missing: Vec<u32> = (1..=needed).filter(|n| !have.contains(n)).collect();
            self.fetch_pages(q, missing).await?;
            let pages = self.st.pages.get(&q).cloned().unwrap_or_default();
            // Every page must count the same Total: else the range changed.
            if let Some((_, (t, _))) = pages.iter().find(|(_, (t, _))| *t != total) {
                let now = *t;
                self.restart(q)?;
                self.journal.append(&Line::Node { q, total: now })?;
                self.st.totals.insert(q, now);
                total = now;
                if total > PAGING_LIMIT {
                    return Ok(Paged::Split(total));
                }
                continue;
            }
            let distinct: HashSet<&str> =
                pages.values().flat_map(|(_, ids)| ids.iter().map(|(id, _)| id.as_str())).collect();
            if distinct.len() as u64 == total {
                self.journal.append(&Line::Leaf { q, total })?;
                self.st.pages.remove(&q);
                self.st.leaves.insert(q, total);
                return Ok(Paged::Done);
            }
            // Paging was not stable (or the list and the count disagree):
            // a smaller query pages less, down to one page.
            self.restart(q)?;
            if total > u64::from(MAX_PAGE_SIZE) && (q.seconds() > 1 || q.cate.is_none()) {
                self.journal.append(&Line::Node { q, total })?;
                self.st.totals.insert(q, total);
                return Ok(Paged::Split(total));
            }
        }
        Err(ListError::Unsplittable {
            what: q.describe(),
            detail: format!(
                "SearchMedia counts {total} images there, but three listings of it did not return {total} distinct ids"
            ),
        })
    }

    /// Cuts a query: in two halves of its time range, or one second by category.
    async fn split(&mut self, q: Query, total: u64) -> Result<Vec<Query>, ListError> {
        if q.seconds() > 1 {
            let mid = q.from + q.seconds() / 2;
            return Ok(vec![Query { to: mid, ..q }, Query { from: mid, ..q }]);
        }
        if q.cate.is_some() {
            return Err(ListError::Unsplittable { what: q.describe(), detail: format!("it holds {total} images") });
        }
        self.st.counts.split_by_category += 1;
        // The categories of the images in every page of it that can be
        // read (the first 5,000), each page journaled: a resumed listing
        // asks none of them again.
        let readable = total.min(PAGING_LIMIT).div_ceil(u64::from(MAX_PAGE_SIZE)) as u32;
        let have: BTreeSet<u32> = self.st.pages.get(&q).map(|p| p.keys().copied().collect()).unwrap_or_default();
        let missing: Vec<u32> = (1..=readable).filter(|n| !have.contains(n)).collect();
        self.fetch_pages(q, missing).await?;
        let (mut cates, mut uncategorised, mut seen) = (BTreeSet::new(), 0u64, 0u64);
        let mut ids = HashSet::new();
        for (_, items) in self.st.pages.get(&q).map(|p| p.values()).into_iter().flatten() {
            for (id, cate) in items {
                if !ids.insert(id.as_str()) {
                    continue;
                }
                seen += 1;
                match cate {
                    Some(c) => {
                        cates.insert(*c);
                    }
                    None => uncategorised += 1,
                }
            }
        }
        let cates: Vec<i64> = cates.into_iter().collect();
        if uncategorised > 0 {
            return Err(ListError::Unsplittable {
                what: q.describe(),
                detail: format!(
                    "it holds {total} images, and {uncategorised} of the {seen} readable ones have no category to ask for"
                ),
            });
        }
        // Each category's Total first: they must add up to the second's.
        let mut children = Vec::with_capacity(cates.len());
        let mut sum = 0u64;
        for c in cates {
            let child = Query { cate: Some(c), ..q };
            let t = match self.st.totals.get(&child) {
                Some(t) => *t,
                None => self.first_page(child).await?,
            };
            if t > PAGING_LIMIT {
                return Err(ListError::Unsplittable {
                    what: q.describe(),
                    detail: format!("it holds {total} images, {t} of them in category {c}"),
                });
            }
            sum += t;
            children.push(child);
        }
        if sum != total {
            return Err(ListError::Unsplittable {
                what: q.describe(),
                detail: format!(
                    "it holds {total} images, but the categories seen in its first {seen} ({}) hold {sum}",
                    children.iter().filter_map(|c| c.cate).map(|c| c.to_string()).collect::<Vec<_>>().join(", ")
                ),
            });
        }
        Ok(children)
    }

    /// The root's and the leaves' totals.
    fn finish_counts(&mut self, root: Query) -> Counts {
        let mut c = self.st.counts.clone();
        c.root_total = self.st.totals.get(&root).copied().unwrap_or(0);
        c.leaf_total = self.st.leaves.values().sum();
        c
    }
}

fn end_error(e: CallEnd, q: &Query) -> ListError {
    match e {
        CallEnd::Failed(error) => ListError::Failed { what: q.describe(), error: Box::new(error) },
        CallEnd::Stopped => ListError::Stopped,
    }
}
