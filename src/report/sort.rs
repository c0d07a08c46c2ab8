//! Sorting outcomes by `image_id` with bounded memory: an external merge
//! sort of JSON lines (the journal and the run's unsettled outcomes), which
//! hands the lines back as they are, for the reports to copy or decode.
//!
//! Owns chunking, the temporary sorted runs and the k-way merge. Memory is
//! about [`CHUNK_BYTES`] whatever the number of ids, so a run of a million
//! images writes its sorted `images.csv` in the same memory as a run of a
//! thousand. What is done with the sorted outcomes is [`super::pass`]'s
//! business.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
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

/// Outcome lines in `image_id` order, each ending in `\n`.
pub struct Sorted {
    inner: Inner,
    runs: Vec<PathBuf>,
}

enum Inner {
    Memory(std::vec::IntoIter<(String, Vec<u8>)>),
    Merge { readers: Vec<BufReader<File>>, heap: BinaryHeap<Reverse<(String, usize, Vec<u8>)>> },
}

impl Drop for Sorted {
    fn drop(&mut self) {
        for r in &self.runs {
            let _ = std::fs::remove_file(r);
        }
    }
}

/// The `image_id` of an outcome line. Outcomes are serialized with
/// `image_id` first, so a plain id (no escapes) is read straight off the
/// line; anything else goes through the JSON parser.
fn key_of(line: &[u8]) -> io::Result<String> {
    const PREFIX: &[u8] = b"{\"image_id\":\"";
    if let Some(rest) = line.strip_prefix(PREFIX) {
        if let Some(end) = rest.iter().position(|&b| b == b'"' || b == b'\\') {
            if rest[end] == b'"' {
                if let Ok(id) = std::str::from_utf8(&rest[..end]) {
                    return Ok(id.to_owned());
                }
            }
        }
    }
    serde_json::from_slice::<Key>(line)
        .map(|k| k.image_id.into_owned())
        .map_err(|e| io::Error::other(format!("an outcome line without image_id: {e}")))
}

fn read_line(r: &mut impl BufRead) -> io::Result<Option<Vec<u8>>> {
    // An outcome line is about a kilobyte: one allocation, not a doubling
    // from eight bytes up.
    let mut buf = Vec::with_capacity(1024);
    loop {
        buf.clear();
        if r.read_until(b'\n', &mut buf)? == 0 {
            return Ok(None);
        }
        if buf.iter().any(|b| !b.is_ascii_whitespace()) {
            if buf.last() != Some(&b'\n') {
                buf.push(b'\n');
            }
            return Ok(Some(buf));
        }
    }
}

/// Sorts the outcome lines of `sources`, spilling sorted runs into `tmp_dir`
/// (removed when the result is dropped) when they exceed `chunk_bytes`.
pub fn sort_outcomes(sources: &[Source<'_>], tmp_dir: &Path, chunk_bytes: usize) -> io::Result<Sorted> {
    let mut chunk: Vec<(String, Vec<u8>)> = Vec::new();
    let mut bytes = 0usize;
    let mut runs: Vec<PathBuf> = Vec::new();
    let spill = |chunk: &mut Vec<(String, Vec<u8>)>, runs: &mut Vec<PathBuf>| -> io::Result<()> {
        chunk.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let (file, path) = create_temp(tmp_dir, "sort-run", PRIVATE_MODE)?;
        let mut w = BufWriter::new(file);
        for (_, line) in chunk.drain(..) {
            w.write_all(&line)?;
        }
        w.flush()?;
        runs.push(path);
        Ok(())
    };
    for source in sources {
        let file = match File::open(source.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let mut r = BufReader::with_capacity(1 << 20, file);
        for _ in 0..source.skip_lines {
            read_line(&mut r)?;
        }
        while let Some(line) = read_line(&mut r)? {
            bytes += line.len() + 64;
            chunk.push((key_of(&line)?, line));
            if bytes >= chunk_bytes {
                spill(&mut chunk, &mut runs)?;
                bytes = 0;
            }
        }
    }
    if runs.is_empty() {
        chunk.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        return Ok(Sorted { inner: Inner::Memory(chunk.into_iter()), runs });
    }
    if !chunk.is_empty() {
        spill(&mut chunk, &mut runs)?;
    }
    drop(chunk);
    let mut readers = Vec::with_capacity(runs.len());
    let mut heap = BinaryHeap::with_capacity(runs.len());
    for (i, path) in runs.iter().enumerate() {
        let mut r = BufReader::with_capacity(256 * 1024, File::open(path)?);
        if let Some(line) = read_line(&mut r)? {
            heap.push(Reverse((key_of(&line)?, i, line)));
        }
        readers.push(r);
    }
    Ok(Sorted { inner: Inner::Merge { readers, heap }, runs })
}

impl Iterator for Sorted {
    type Item = io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        let line = match &mut self.inner {
            Inner::Memory(it) => it.next()?.1,
            Inner::Merge { readers, heap } => {
                let Reverse((_, i, line)) = heap.pop()?;
                match read_line(&mut readers[i]) {
                    Ok(Some(next)) => match key_of(&next) {
                        Ok(k) => heap.push(Reverse((k, i, next))),
                        Err(e) => return Some(Err(e)),
                    },
                    Ok(None) => {}
                    Err(e) => return Some(Err(e)),
                }
                line
            }
        };
        Some(Ok(line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::record::ImageRecord;
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

    fn ids_of(s: Sorted) -> Vec<String> {
        s.map(|line| serde_json::from_slice::<ImageRecord>(&line.unwrap()).unwrap().image_id).collect()
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
            assert_eq!(key_of(&line).unwrap(), id, "{}", String::from_utf8_lossy(&line));
        }
        assert!(key_of(b"{\"title\":\"x\"}").is_err());
    }

    #[test]
    fn a_missing_source_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let none = dir.path().join("none");
        assert!(ids_of(sort_outcomes(&[Source { path: &none, skip_lines: 1 }], dir.path(), 100).unwrap()).is_empty());
    }
}
