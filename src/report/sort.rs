//! Sorting outcomes by `image_id` with bounded memory: an external merge
//! sort of JSON lines (the journal and the run's unsettled outcomes), which
//! hands the lines back as they are, for the reports to copy or decode.
//!
//! Owns chunking, the temporary sorted runs and the k-way merge. A chunk's
//! lines are read into one buffer and sorted as offsets, and the merge keeps
//! one line buffer a run: no allocation a line. Memory is
//! about [`CHUNK_BYTES`] whatever the number of ids, so a run of a million
//! images writes its sorted `images.csv` in the same memory as a run of a
//! thousand. What is done with the sorted outcomes is [`super::pass`]'s
//! business.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::rundir::files::{create_temp, PRIVATE_MODE};

/// Bytes of JSON lines sorted in memory at once; more spill to sorted runs.
pub const CHUNK_BYTES: usize = 24 << 20;

#[derive(Deserialize)]
struct Key<'a> {
    #[serde(borrow)]
    image_id: Cow<'a, str>,
}

/// A source of outcome lines: a file, and how many leading lines to skip
/// (the journal's header).
pub struct Source<'a> {
    pub path: &'a Path,
    pub skip_lines: usize,
}

/// Outcome lines in `image_id` order, each ending in `\n`, handed out one
/// at a time with [`Sorted::next_line`].
pub struct Sorted {
    inner: Inner,
    runs: Vec<PathBuf>,
}

enum Inner {
    /// Lines in one buffer, in the order of `order`; `next` is the next.
    Memory { chunk: Chunk, next: usize },
    /// Sorted runs on disk, merged: each run's current line in `current`,
    /// `heap` the key of each run that has one (with the run, which breaks
    /// ties), `last` the line handed out last. The buffers are reused line
    /// after line.
    Merge {
        readers: Vec<BufReader<File>>,
        current: Vec<Vec<u8>>,
        heap: BinaryHeap<Reverse<(Vec<u8>, usize)>>,
        last: Vec<u8>,
    },
}

impl Drop for Sorted {
    fn drop(&mut self) {
        for r in &self.runs {
            let _ = std::fs::remove_file(r);
        }
    }
}

/// Outcome lines in one buffer (no allocation a line), with where each
/// line and its key are. A key that needed decoding (escapes) is kept in
/// `decoded`; a plain one is read off the line.
#[derive(Default)]
struct Chunk {
    text: Vec<u8>,
    decoded: Vec<u8>,
    order: Vec<Entry>,
}

#[derive(Clone, Copy)]
struct Entry {
    line: (usize, usize),
    key: (usize, usize),
    decoded: bool,
}

impl Chunk {
    fn key(&self, e: &Entry) -> &[u8] {
        let from = if e.decoded { &self.decoded } else { &self.text };
        &from[e.key.0..e.key.1]
    }

    fn line(&self, e: &Entry) -> &[u8] {
        &self.text[e.line.0..e.line.1]
    }

    /// Takes the line just read into `text[start..]`, finding its key.
    fn push(&mut self, start: usize) -> io::Result<()> {
        let end = self.text.len();
        let line = &self.text[start..end];
        let (key, decoded) = match plain_key(line) {
            Some(k) => ((start + k.start, start + k.end), false),
            None => {
                let id = parsed_key(line)?;
                let at = self.decoded.len();
                self.decoded.extend_from_slice(id.as_bytes());
                ((at, self.decoded.len()), true)
            }
        };
        self.order.push(Entry { line: (start, end), key, decoded });
        Ok(())
    }

    fn sort(&mut self) {
        let mut order = std::mem::take(&mut self.order);
        // Equal keys (an id journaled twice) stay in the order read, as
        // the merge keeps runs in the order written: the first outcome of
        // an id comes first, and the report pass keeps the first.
        order.sort_unstable_by(|a, b| self.key(a).cmp(self.key(b)).then(a.line.0.cmp(&b.line.0)));
        self.order = order;
    }

    fn bytes(&self) -> usize {
        self.text.len() + self.decoded.len() + self.order.len() * std::mem::size_of::<Entry>()
    }

    fn clear(&mut self) {
        self.text.clear();
        self.decoded.clear();
        self.order.clear();
    }
}

/// Where the `image_id` of an outcome line is, when it can be read straight
/// off the line: outcomes are serialized with `image_id` first, so a plain
/// id (no escapes) is the bytes after the prefix up to the next quote.
fn plain_key(line: &[u8]) -> Option<Range<usize>> {
    const PREFIX: &[u8] = b"{\"image_id\":\"";
    let rest = line.strip_prefix(PREFIX)?;
    let end = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
    (rest[end] == b'"' && std::str::from_utf8(&rest[..end]).is_ok()).then(|| PREFIX.len()..PREFIX.len() + end)
}

/// The `image_id` of any outcome line, through the JSON parser.
fn parsed_key(line: &[u8]) -> io::Result<String> {
    serde_json::from_slice::<Key>(line)
        .map(|k| k.image_id.into_owned())
        .map_err(|e| io::Error::other(format!("an outcome line without image_id: {e}")))
}

/// The `image_id` of an outcome line, as bytes.
fn key_of(line: &[u8]) -> io::Result<Cow<'_, [u8]>> {
    match plain_key(line) {
        Some(k) => Ok(Cow::Borrowed(&line[k])),
        None => parsed_key(line).map(|k| Cow::Owned(k.into_bytes())),
    }
}

/// Appends the next line that is not blank to `buf`, ending it in `\n`;
/// false at the end of the input (nothing appended).
fn read_line_into(r: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<bool> {
    let start = buf.len();
    loop {
        if r.read_until(b'\n', buf)? == 0 {
            return Ok(false);
        }
        if buf[start..].iter().any(|b| !b.is_ascii_whitespace()) {
            if buf.last() != Some(&b'\n') {
                buf.push(b'\n');
            }
            return Ok(true);
        }
        buf.truncate(start);
    }
}

/// Sorts the outcome lines of `sources`, spilling sorted runs into `tmp_dir`
/// (removed when the result is dropped) when they exceed `chunk_bytes`.
pub fn sort_outcomes(sources: &[Source<'_>], tmp_dir: &Path, chunk_bytes: usize) -> io::Result<Sorted> {
    // The buffer is sized once from the sources (up to a chunk), so that it
    // is not copied as it grows.
    let size: u64 = sources.iter().filter_map(|s| std::fs::metadata(s.path).ok()).map(|m| m.len()).sum();
    let room = usize::try_from(size).unwrap_or(usize::MAX).min(chunk_bytes).saturating_add(64 * 1024);
    let mut chunk = Chunk { text: Vec::with_capacity(room), order: Vec::with_capacity(room / 900), ..Chunk::default() };
    let mut runs: Vec<PathBuf> = Vec::new();
    let spill = |chunk: &mut Chunk, runs: &mut Vec<PathBuf>| -> io::Result<()> {
        chunk.sort();
        let (file, path) = create_temp(tmp_dir, "sort-run", PRIVATE_MODE)?;
        runs.push(path);
        let mut w = BufWriter::with_capacity(256 * 1024, file);
        for e in &chunk.order {
            w.write_all(chunk.line(e))?;
        }
        w.flush()?;
        chunk.clear();
        Ok(())
    };
    let mut skipped = Vec::new();
    for source in sources {
        let file = match File::open(source.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let mut r = BufReader::with_capacity(1 << 20, file);
        for _ in 0..source.skip_lines {
            skipped.clear();
            read_line_into(&mut r, &mut skipped)?;
        }
        loop {
            let start = chunk.text.len();
            if !read_line_into(&mut r, &mut chunk.text)? {
                break;
            }
            chunk.push(start)?;
            if chunk.bytes() >= chunk_bytes {
                spill(&mut chunk, &mut runs)?;
            }
        }
    }
    if runs.is_empty() {
        chunk.sort();
        return Ok(Sorted { inner: Inner::Memory { chunk, next: 0 }, runs });
    }
    if !chunk.order.is_empty() {
        spill(&mut chunk, &mut runs)?;
    }
    drop(chunk);
    // Owned by the result from here, so that the runs are removed if
    // opening or reading one fails.
    let mut sorted = Sorted { inner: Inner::Memory { chunk: Chunk::default(), next: 0 }, runs };
    let mut readers = Vec::with_capacity(sorted.runs.len());
    let mut current = Vec::with_capacity(sorted.runs.len());
    let mut heap = BinaryHeap::with_capacity(sorted.runs.len());
    for (i, path) in sorted.runs.iter().enumerate() {
        let mut r = BufReader::with_capacity(256 * 1024, File::open(path)?);
        let mut line = Vec::with_capacity(1024);
        if read_line_into(&mut r, &mut line)? {
            heap.push(Reverse((key_of(&line)?.into_owned(), i)));
        }
        readers.push(r);
        current.push(line);
    }
    sorted.inner = Inner::Merge { readers, current, heap, last: Vec::with_capacity(1024) };
    Ok(sorted)
}

impl Sorted {
    /// The next line in `image_id` order, `None` after the last.
    pub fn next_line(&mut self) -> Option<io::Result<&[u8]>> {
        match &mut self.inner {
            Inner::Memory { chunk, next } => {
                let e = chunk.order.get(*next)?;
                *next += 1;
                Some(Ok(chunk.line(e)))
            }
            Inner::Merge { readers, current, heap, last } => {
                let Reverse((mut key, i)) = heap.pop()?;
                // The run's line is handed out; the run reads its next one,
                // whose key goes back into the heap in the same buffer.
                std::mem::swap(last, &mut current[i]);
                current[i].clear();
                let step = (|| {
                    if read_line_into(&mut readers[i], &mut current[i])? {
                        key.clear();
                        key.extend_from_slice(&key_of(&current[i])?);
                        heap.push(Reverse((key, i)));
                    }
                    Ok(())
                })();
                Some(step.map(|()| last.as_slice()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::ImageRecord;
    use crate::run::outcome::Outcome;

    fn write_lines(path: &Path, header: bool, ids: &[&str]) {
        let mut text = String::new();
        if header {
            text.push_str("{\"vod_image_audit_journal\":2,\"input_sha256\":\"x\"}\n");
        }
        for id in ids {
            text.push_str(&serde_json::to_string(&Outcome::missing((*id).to_owned(), 1, None).record()).unwrap());
            text.push('\n');
        }
        std::fs::write(path, text).unwrap();
    }

    fn ids_of(mut s: Sorted) -> Vec<String> {
        let mut ids = Vec::new();
        while let Some(line) = s.next_line() {
            ids.push(serde_json::from_slice::<ImageRecord>(line.unwrap()).unwrap().image_id);
        }
        ids
    }

    #[test]
    fn sorts_in_memory_and_with_spilled_runs_alike() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        let ids: Vec<String> = (0..500).map(|i| format!("{:08x}", (i * 7919) % 1000)).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        write_lines(&a, true, &refs[..300]);
        write_lines(&b, false, &refs[300..]);
        let sources = [Source { path: &a, skip_lines: 1 }, Source { path: &b, skip_lines: 0 }];
        let mut want = ids.clone();
        want.sort();
        assert_eq!(ids_of(sort_outcomes(&sources, dir.path(), CHUNK_BYTES).unwrap()), want);
        let spilled = sort_outcomes(&sources, dir.path(), 2000).unwrap();
        assert!(spilled.runs.len() > 10, "{} runs", spilled.runs.len());
        let runs = spilled.runs.clone();
        assert_eq!(ids_of(spilled), want);
        assert!(runs.iter().all(|r| !r.exists()), "temporary runs are removed");
    }

    #[test]
    fn keys_are_read_off_plain_lines_and_parsed_from_escaped_ones() {
        for id in ["abc", "a\"b", "a\\b", "caf\u{e9}", "x\u{1}y", ""] {
            let line = serde_json::to_vec(&Outcome::missing(id.to_owned(), 1, None).record()).unwrap();
            assert_eq!(&*key_of(&line).unwrap(), id.as_bytes(), "{}", String::from_utf8_lossy(&line));
        }
        assert!(key_of(b"{\"title\":\"x\"}").is_err());
    }

    /// What a journal written through a crash and a resume holds: an id
    /// twice (once in each source), ids that need JSON escapes, blank
    /// lines, a last line with no newline. Spilled into many runs or not,
    /// every line comes out once, whole, ending in a newline, in id order.
    #[test]
    fn duplicates_escapes_blank_lines_and_a_torn_end_sort_alike_in_memory_and_spilled() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let line = |id: &str| serde_json::to_string(&Outcome::missing(id.to_owned(), 1, None).record()).unwrap();
        let mut ids: Vec<String> = (0..300).map(|i| format!("{:08x}", (i * 7919) % 1000)).collect();
        ids.extend(["q\"uote", "back\\slash", "caf\u{e9}", "\u{1}ctl"].map(String::from));
        let mut text_a = String::from("{\"vod_image_audit_journal\":2}\n\n");
        for id in &ids[..200] {
            text_a.push_str(&line(id));
            text_a.push_str("\n  \n");
        }
        let mut text_b = String::new();
        for id in ids[150..].iter().chain([&ids[3]]) {
            text_b.push_str(&line(id));
            text_b.push('\n');
        }
        text_b.pop();
        std::fs::write(&a, text_a).unwrap();
        std::fs::write(&b, text_b).unwrap();
        let sources = [Source { path: &a, skip_lines: 1 }, Source { path: &b, skip_lines: 0 }];
        let mut want: Vec<String> = ids[..200].iter().chain(&ids[150..]).chain([&ids[3]]).map(|id| line(id)).collect();
        want.sort_by(|x, y| key_of(x.as_bytes()).unwrap().cmp(&key_of(y.as_bytes()).unwrap()));
        for chunk_bytes in [CHUNK_BYTES, 3000] {
            let mut sorted = sort_outcomes(&sources, dir.path(), chunk_bytes).unwrap();
            let spilled = sorted.runs.len();
            assert!(chunk_bytes == CHUNK_BYTES || spilled > 10, "{spilled} runs");
            let mut got = Vec::new();
            while let Some(l) = sorted.next_line() {
                let l = String::from_utf8(l.unwrap().to_vec()).unwrap();
                assert!(l.ends_with('\n'), "{l:?}");
                got.push(l.trim_end_matches('\n').to_owned());
            }
            assert_eq!(got, want, "chunk of {chunk_bytes} bytes, {spilled} runs");
        }
    }

    #[test]
    fn a_missing_source_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let none = dir.path().join("none");
        assert!(ids_of(sort_outcomes(&[Source { path: &none, skip_lines: 1 }], dir.path(), 100).unwrap()).is_empty());
    }

    /// An id twice: the line read first comes first, in memory and when
    /// merged from runs on disk.
    #[test]
    fn equal_ids_keep_the_order_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let mut text = String::new();
        for i in 0..40 {
            text.push_str(&format!("{{\"image_id\":\"id{:02}\",\"n\":1}}\n", 39 - i));
        }
        for i in 0..40 {
            text.push_str(&format!("{{\"image_id\":\"id{:02}\",\"n\":2}}\n", i));
        }
        std::fs::write(&path, text).unwrap();
        for chunk in [1 << 20, 200] {
            let mut sorted = sort_outcomes(&[Source { path: &path, skip_lines: 0 }], dir.path(), chunk).unwrap();
            let mut lines = Vec::new();
            while let Some(l) = sorted.next_line() {
                lines.push(String::from_utf8(l.unwrap().to_vec()).unwrap());
            }
            for pair in lines.chunks(2) {
                assert!(pair[0].contains("\"n\":1") && pair[1].contains("\"n\":2"), "chunk {chunk}: {pair:?}");
            }
        }
    }
}
