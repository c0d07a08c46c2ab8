//! The found images whose `GetMediaAuditResult` is still to be asked: what
//! makes a crash between an image's two calls resume with the missing call
//! only.
//!
//! An image is settled (journaled, [`super::journal`]) when its last call
//! is done. Between its `GetImageInfo` answer and its moderation answer it
//! waits in the engine's moderation lane; its lookup is written here first,
//! one JSON line each, so that a resumed run asks `GetMediaAuditResult`
//! about it and does not look it up again. Lines of images the journal has
//! since settled are passed over on reading, so what a resume holds is
//! bounded by the lane's backlog, not by the run. The file is removed with
//! the journal when the run is complete.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::api::model::ImageInfo;
use crate::run::outcome::Outcome;
use crate::rundir::files::{open_private, Private};
use crate::rundir::AWAITING;

/// One line: a found image as its lookup answered.
#[derive(Serialize, Deserialize)]
struct Line {
    image_id: String,
    attempts: u32,
    request_id: Option<String>,
    info: ImageInfo,
}

/// The file, open for appending.
pub(crate) struct AwaitingLog {
    file: File,
    line: Vec<u8>,
}

impl AwaitingLog {
    /// Opens the file in `dir` (created when absent) and reads the images
    /// it holds that `settled` does not name, as found outcomes whose
    /// moderation is still to be asked. A torn last line (a crash in the
    /// middle of a write) is passed over; so is a line that is not one of
    /// ours.
    pub(crate) fn open(dir: &Path, settled: impl Fn(&str) -> bool) -> io::Result<(Self, Vec<Outcome>)> {
        let mut waiting = Vec::new();
        let mut seen = std::collections::HashSet::new();
        if let Ok(f) = File::open(dir.join(AWAITING)) {
            for line in BufReader::new(f).split(b'\n') {
                let line = line?;
                let Ok(l) = serde_json::from_slice::<Line>(&line) else { continue };
                if settled(&l.image_id) || !seen.insert(l.image_id.clone()) {
                    continue;
                }
                waiting.push(Outcome::found(l.image_id, l.info, l.attempts, l.request_id));
            }
        }
        let file = open_private(dir, AWAITING, Private::Append)?;
        Ok((AwaitingLog { file, line: Vec::with_capacity(2048) }, waiting))
    }

    /// Writes one found image's line, whole, with one `write`.
    pub(crate) fn append(&mut self, o: &Outcome) -> io::Result<()> {
        let Some(info) = o.info.as_deref() else { return Ok(()) };
        self.line.clear();
        // A line that ends torn after a crash would join the next one: start
        // each on a line of its own.
        self.line.push(b'\n');
        let l = LineRef { image_id: &o.image_id, attempts: o.attempts, request_id: o.request_id.as_deref(), info };
        serde_json::to_writer(&mut self.line, &l)?;
        self.line.push(b'\n');
        self.file.write_all(&self.line)
    }
}

/// [`Line`], borrowed, for writing.
#[derive(Serialize)]
struct LineRef<'a> {
    image_id: &'a str,
    attempts: u32,
    request_id: Option<&'a str>,
    info: &'a ImageInfo,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(id: &str) -> Outcome {
        let info = ImageInfo { image_id: Some(id.into()), title: Some(format!("t {id}\n,\"")), ..Default::default() };
        Outcome::found(id.into(), info, 2, Some("R".into()))
    }

    #[test]
    fn what_is_not_settled_comes_back_once_as_it_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, none) = AwaitingLog::open(dir.path(), |_| false).unwrap();
        assert!(none.is_empty());
        for id in ["a", "b", "c", "a"] {
            log.append(&found(id)).unwrap();
        }
        drop(log);
        // A crash in the middle of a line.
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(AWAITING))
            .unwrap()
            .write_all(b"{\"image_id\":\"d\",")
            .unwrap();
        let (mut log, back) = AwaitingLog::open(dir.path(), |id| id == "b").unwrap();
        let ids: Vec<&str> = back.iter().map(|o| o.image_id.as_str()).collect();
        assert_eq!(ids, ["a", "c"], "settled ones and repeats are passed over, the torn line too");
        assert_eq!(back[0], found("a"));
        // The next line after a torn one still reads.
        log.append(&found("e")).unwrap();
        let (_, back) = AwaitingLog::open(dir.path(), |_| false).unwrap();
        assert!(back.iter().any(|o| o.image_id == "e"), "{back:?}");
    }
}
