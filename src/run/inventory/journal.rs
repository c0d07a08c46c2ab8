//! The listing journal (`inventory.jsonl`: one JSON line per answer the
//! listing used, appended with one write each) and the inventory written
//! from it (`inventory.csv`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Counts, Filters, ListError};
use crate::api::search::{Listed, Query, INVENTORY_COLUMNS};
use crate::report::write::CsvStyle;
use crate::rundir::files::{write_atomic, FileDigest};

/// One line of the listing journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub(super) enum Line {
    /// The first line: what is listed.
    Start { lower: i64, upper: i64, filters: Filters },
    /// A query's `Total`.
    Node { q: Query, total: u64 },
    /// One page of a query being paged through.
    Page { q: Query, no: u32, total: u64, items: Vec<Listed> },
    /// A query's pages so far are dropped: it is listed again.
    Restart { q: Query },
    /// A query paged through and checked; its pages count.
    Leaf { q: Query, total: u64 },
}

/// One page as the listing keeps it: the page's `Total`, and each image's
/// id and category.
pub(super) type PageIds = (u64, Vec<(String, Option<i64>)>);

/// The journal read back, and where to append.
#[derive(Default)]
pub(super) struct State {
    pub(super) start: Option<(i64, i64, Filters)>,
    pub(super) totals: HashMap<Query, u64>,
    /// Pages of the queries not yet finished (or being cut by category):
    /// page number to (total, each image's id and category).
    pub(super) pages: HashMap<Query, BTreeMap<u32, PageIds>>,
    pub(super) leaves: HashMap<Query, u64>,
    pub(super) counts: Counts,
}

/// The listing journal: one JSON line per answer, appended with one write.
pub(super) struct ListJournal {
    pub(super) file: File,
    pub(super) line: Vec<u8>,
    pub(super) shown: String,
}

impl ListJournal {
    pub(super) fn append(&mut self, line: &Line) -> Result<(), ListError> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, line).map_err(|e| ListError::Io(e.to_string()))?;
        self.line.push(b'\n');
        self.file.write_all(&self.line).map_err(|e| ListError::io(&self.shown, &e))
    }
}

/// Reads a listing journal back; a torn last line (a crash mid-write) is cut.
pub(super) fn read_back(file: &mut File, shown: &str) -> Result<State, ListError> {
    let io = |e: io::Error| ListError::Io(format!("{shown}: {e}"));
    let mut st = State::default();
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    let mut reader = BufReader::new(&mut *file);
    let (mut good_end, mut buf, mut n) = (0u64, Vec::new(), 0u64);
    loop {
        buf.clear();
        let read = reader.read_until(b'\n', &mut buf).map_err(io)?;
        if read == 0 || buf.last() != Some(&b'\n') {
            break;
        }
        n += 1;
        let Ok(line) = serde_json::from_slice::<Line>(&buf) else {
            return Err(ListError::Io(format!(
                "{shown}: line {n} is not a listing record; the listing journal was changed by hand: remove it to list again"
            )));
        };
        good_end += read as u64;
        st.apply(line);
    }
    drop(reader);
    let len = file.seek(SeekFrom::End(0)).map_err(io)?;
    if good_end < len {
        file.set_len(good_end).map_err(io)?;
        file.seek(SeekFrom::End(0)).map_err(io)?;
    }
    Ok(st)
}

impl State {
    fn apply(&mut self, line: Line) {
        match line {
            Line::Start { lower, upper, filters } => self.start = Some((lower, upper, filters)),
            Line::Node { q, total } => {
                self.totals.insert(q, total);
            }
            Line::Page { q, no, total, items } => {
                let ids = items.into_iter().map(|i| (i.image_id, i.cate_id)).collect();
                self.pages.entry(q).or_default().insert(no, (total, ids));
            }
            Line::Restart { q } => {
                self.pages.remove(&q);
                self.totals.remove(&q);
            }
            Line::Leaf { q, total } => {
                self.pages.remove(&q);
                self.leaves.insert(q, total);
            }
        }
    }
}

/// Calls `f` with each line of the listing journal and its number.
fn each_line(path: &Path, mut f: impl FnMut(usize, Line) -> Result<(), ListError>) -> Result<(), ListError> {
    let shown = path.display().to_string();
    let file = File::open(path).map_err(|e| ListError::Io(format!("{shown}: {e}")))?;
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| ListError::Io(format!("{shown}: {e}")))?;
        let line =
            serde_json::from_str::<Line>(&line).map_err(|e| ListError::Io(format!("{shown}: line {}: {e}", i + 1)))?;
        f(i, line)?;
    }
    Ok(())
}

/// Writes the inventory from the journal: the pages of the finished
/// queries (after their last restart), each id once, in the order listed;
/// counts the distinct ids. Two passes over the journal, so memory holds
/// the ids' fingerprints, not the images.
pub(super) fn write_inventory(
    dir: &Path,
    journal_name: &str,
    csv_name: &str,
    counts: &mut Counts,
) -> Result<FileDigest, ListError> {
    let path = dir.join(journal_name);
    let mut last_restart: HashMap<Query, usize> = HashMap::new();
    let mut finished: HashSet<Query> = HashSet::new();
    each_line(&path, |i, l| {
        match l {
            Line::Restart { q } => {
                last_restart.insert(q, i);
            }
            Line::Leaf { q, .. } => {
                finished.insert(q);
            }
            _ => {}
        }
        Ok(())
    })?;
    let style = CsvStyle::default();
    let fingerprint = crate::run::input::Fingerprint::default();
    let mut seen: HashSet<u128> = HashSet::new();
    let mut failed: Option<ListError> = None;
    let digest = write_atomic(dir, csv_name, |w| {
        let mut csv = csv::WriterBuilder::new().from_writer(w);
        csv.write_record(INVENTORY_COLUMNS)?;
        let text = |v: &Option<String>| v.as_deref().map(|s| style.cell(s).into_owned()).unwrap_or_default();
        let walked = each_line(&path, |i, l| {
            let Line::Page { q, items, .. } = l else { return Ok(()) };
            if !finished.contains(&q) || last_restart.get(&q).is_some_and(|r| *r > i) {
                return Ok(());
            }
            for it in items {
                if !seen.insert(fingerprint.of(&it.image_id)) {
                    continue;
                }
                csv.write_record([
                    it.image_id.clone(),
                    it.creation_time.clone(),
                    text(&it.modification_time),
                    text(&it.status),
                    it.cate_id.map(|c| c.to_string()).unwrap_or_default(),
                    text(&it.cate_name),
                    text(&it.title),
                    text(&it.tags),
                    text(&it.storage_location),
                ])
                .map_err(|e| ListError::Io(e.to_string()))?;
            }
            Ok(())
        });
        if let Err(e) = walked {
            failed = Some(e);
            return Err(io::Error::other("the listing journal could not be read"));
        }
        csv.flush()
    });
    if let Some(e) = failed {
        return Err(e);
    }
    let digest = digest.map_err(|e| ListError::io(dir.join(csv_name).display(), &e))?;
    counts.distinct = seen.len() as u64;
    Ok(digest)
}
