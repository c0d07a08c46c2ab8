//! The reports: one model ([`Summary`] and [`ImageRecord`]s), one writer per
//! file, every file written atomically.
//!
//! Owns aggregation (a fold over outcomes), the file names, the CSV headers,
//! the JSON shapes and the write-to-temp-fsync-rename discipline. It knows
//! nothing about HTTP or the API; it is handed outcomes and input counts.

pub mod changes;
pub mod html;
pub mod sort;
pub mod verify;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::run::input::Rejected;
use crate::run::outcome::{ImageRecord, OutcomeKind};

pub const IMAGES_CSV: &str = "images.csv";
pub const IMAGES_JSONL: &str = "images.jsonl";
pub const SUMMARY_JSON: &str = "summary.json";
pub const SUMMARY_CSV: &str = "summary.csv";
pub const REJECTED_CSV: &str = "rejected.csv";
pub const MANIFEST_JSON: &str = "manifest.json";

/// The bucket for an absent `AuditStatus` or `Status`.
pub const UNKNOWN: &str = "Unknown";

/// The `images.csv` header, in order.
pub const IMAGES_COLUMNS: &[&str] = &[
    "image_id",
    "outcome",
    "audit_status",
    "status",
    "cate_id",
    "cate_name",
    "title",
    "image_type",
    "creation_time",
    "tags",
    "description",
    "storage_location",
    "url",
    "app_id",
    "region_id",
    "file_size",
    "width",
    "height",
    "original_file_name",
    "file_url",
    "attempts",
    "error_code",
    "error_message",
    "http_status",
    "request_id",
];

/// The accounting of the input and of the outcomes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub input_rows: u64,
    pub unique_ids: u64,
    pub duplicates: u64,
    pub invalid: u64,
    pub found: u64,
    pub missing: u64,
    pub failed: u64,
}

/// One category's line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryCount {
    pub cate_id: Option<i64>,
    pub cate_name: Option<String>,
    pub images: u64,
    pub blocked: u64,
}

/// The completeness ledger: where every input row went. `unaccounted` must
/// be zero; when it is not, `unaccounted_ids` says which ids.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    pub input_rows: u64,
    pub blank_rows: u64,
    pub rejected: u64,
    pub duplicates: u64,
    pub unique_ids: u64,
    pub found: u64,
    pub missing: u64,
    pub failed: u64,
    pub unaccounted: u64,
    #[serde(default)]
    pub unaccounted_ids: Vec<String>,
}

impl Ledger {
    /// The sums that must hold; each broken one, described.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.input_rows != self.unique_ids + self.duplicates + self.rejected {
            p.push(format!(
                "input_rows {} != unique_ids {} + duplicates {} + rejected {}",
                self.input_rows, self.unique_ids, self.duplicates, self.rejected
            ));
        }
        if self.unique_ids != self.found + self.missing + self.failed + self.unaccounted {
            p.push(format!(
                "unique_ids {} != found {} + missing {} + failed {} + unaccounted {}",
                self.unique_ids, self.found, self.missing, self.failed, self.unaccounted
            ));
        }
        if self.unaccounted > 0 {
            p.push(format!("{} ids unaccounted for: {:?}", self.unaccounted, self.unaccounted_ids));
        }
        p
    }
}

/// `summary.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// False when the run stopped before every id was settled.
    pub complete: bool,
    /// Why the run stopped early, if it did.
    pub stop_reason: Option<String>,
    pub totals: Totals,
    #[serde(default)]
    pub ledger: Ledger,
    pub by_audit_status: BTreeMap<String, u64>,
    pub by_status: BTreeMap<String, u64>,
    pub by_category: Vec<CategoryCount>,
    pub failures_by_code: BTreeMap<String, u64>,
    /// Changes since an earlier run, when one was compared.
    #[serde(default)]
    pub changes: Option<crate::report::changes::ChangeCounts>,
}

/// Builds the summary from the input counts and the records (a fold).
/// Categories are keyed by `CateId`; the name shown is the first one seen in
/// `image_id` order, so the result does not depend on answer order.
pub fn summarize<'a>(
    input_rows: u64,
    duplicates: u64,
    invalid: u64,
    records: impl IntoIterator<Item = &'a ImageRecord>,
) -> Summary {
    let mut fold = Fold::new(input_rows, duplicates, invalid);
    for r in records {
        fold.add(r);
    }
    fold.finish()
}

/// The summary as a fold, one record at a time, for streams too large to
/// hold.
pub struct Fold {
    summary: Summary,
    categories: BTreeMap<Option<i64>, CategoryCount>,
}

impl Fold {
    /// Starts from the input's counts.
    pub fn new(input_rows: u64, duplicates: u64, invalid: u64) -> Self {
        Fold {
            summary: Summary {
                complete: true,
                totals: Totals { input_rows, duplicates, invalid, ..Default::default() },
                ..Default::default()
            },
            categories: BTreeMap::new(),
        }
    }

    /// Counts one record.
    pub fn add(&mut self, r: &ImageRecord) {
        let s = &mut self.summary;
        s.totals.unique_ids += 1;
        match r.outcome {
            OutcomeKind::Found => s.totals.found += 1,
            OutcomeKind::Missing => s.totals.missing += 1,
            OutcomeKind::Failed => {
                s.totals.failed += 1;
                let code = r.error_code.clone().unwrap_or_else(|| UNKNOWN.to_owned());
                *s.failures_by_code.entry(code).or_default() += 1;
            }
        }
        if r.outcome != OutcomeKind::Found {
            return;
        }
        let audit = r.audit_status.clone().unwrap_or_else(|| UNKNOWN.to_owned());
        let blocked = audit == "Blocked";
        *s.by_audit_status.entry(audit).or_default() += 1;
        *s.by_status.entry(r.status.clone().unwrap_or_else(|| UNKNOWN.to_owned())).or_default() += 1;
        let c = self.categories.entry(r.cate_id).or_insert_with(|| CategoryCount {
            cate_id: r.cate_id,
            cate_name: None,
            images: 0,
            blocked: 0,
        });
        if c.cate_name.is_none() {
            c.cate_name = r.cate_name.clone();
        }
        c.images += 1;
        c.blocked += u64::from(blocked);
    }

    /// The summary.
    pub fn finish(mut self) -> Summary {
        self.summary.by_category = self.categories.into_values().collect();
        self.summary
    }
}

/// A written file's name, size and SHA-256, for the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

struct HashingWriter<W> {
    inner: W,
    hash: crate::rundir::digest::Sha256,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A file being written atomically: a temporary file, flushed and fsynced,
/// renamed into place, and the directory fsynced on [`AtomicFile::commit`].
/// A crash leaves either the old file or the new one, never half of one;
/// dropping it uncommitted removes the temporary file.
pub struct AtomicFile {
    dir: std::path::PathBuf,
    name: String,
    tmp: std::path::PathBuf,
    /// Buffered before the hash, so the hash sees large blocks, not the
    /// many small writes of a CSV or JSON encoder.
    writer: Option<BufWriter<HashingWriter<File>>>,
}

impl AtomicFile {
    /// Starts writing `name` in `dir`.
    pub fn create(dir: &Path, name: &str) -> io::Result<Self> {
        let tmp = dir.join(format!(".{name}.tmp"));
        let file = File::create(&tmp)?;
        let writer =
            BufWriter::with_capacity(256 * 1024, HashingWriter { inner: file, hash: Default::default(), bytes: 0 });
        Ok(AtomicFile { dir: dir.to_owned(), name: name.to_owned(), tmp, writer: Some(writer) })
    }

    /// Makes it durable and puts it in place; returns its digest.
    pub fn commit(mut self) -> io::Result<FileDigest> {
        let w = self.writer.take().expect("committed once");
        let w = w.into_inner().map_err(|e| e.into_error())?;
        let digest = FileDigest { name: self.name.clone(), bytes: w.bytes, sha256: w.hash.finish_hex() };
        let file = w.inner;
        file.sync_all()?;
        fs::rename(&self.tmp, self.dir.join(&self.name))?;
        sync_dir(&self.dir)?;
        Ok(digest)
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.as_mut().expect("not committed").write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.as_mut().expect("not committed").flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.writer.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `name` in `dir` atomically with one closure (see [`AtomicFile`]).
pub fn write_atomic(
    dir: &Path,
    name: &str,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<FileDigest> {
    let mut f = AtomicFile::create(dir, name)?;
    fill(&mut f)?;
    f.commit()
}

/// Fsyncs a directory so a rename in it survives power loss.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()?;
    }
    let _ = dir;
    Ok(())
}

/// The SHA-256 and size of a file on disk.
pub fn digest_file(path: &Path) -> io::Result<(u64, String)> {
    let mut w = HashingWriter { inner: io::sink(), hash: crate::rundir::digest::Sha256::default(), bytes: 0 };
    io::copy(&mut File::open(path)?, &mut w)?;
    Ok((w.bytes, w.hash.finish_hex()))
}

fn csv_err(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::other(format!("{other:?}")),
    }
}

/// `images.csv` written one record at a time.
pub struct ImagesCsv<W: Write> {
    csv: csv::Writer<W>,
}

impl<W: Write> ImagesCsv<W> {
    /// Writes the header.
    pub fn new(w: W) -> io::Result<Self> {
        let mut csv = csv::WriterBuilder::new().has_headers(false).from_writer(w);
        csv.write_record(IMAGES_COLUMNS).map_err(csv_err)?;
        Ok(ImagesCsv { csv })
    }

    /// Writes one row.
    pub fn write(&mut self, r: &ImageRecord) -> io::Result<()> {
        self.csv.serialize(r).map_err(csv_err)
    }

    /// Flushes and hands back the writer.
    pub fn finish(self) -> io::Result<W> {
        self.csv.into_inner().map_err(|e| io::Error::other(e.to_string()))
    }
}

/// `images.csv`: one row per record, in the order given.
pub fn write_images_csv<'a>(w: &mut dyn Write, records: impl IntoIterator<Item = &'a ImageRecord>) -> io::Result<()> {
    let mut csv = ImagesCsv::new(w)?;
    for r in records {
        csv.write(r)?;
    }
    csv.finish().map(drop)
}

/// `images.jsonl`: one JSON object per record, in the order given.
pub fn write_images_jsonl<'a>(w: &mut dyn Write, records: impl IntoIterator<Item = &'a ImageRecord>) -> io::Result<()> {
    for r in records {
        r.write_line(&mut *w)?;
    }
    Ok(())
}

/// `summary.json`, pretty-printed for people.
pub fn write_summary_json(w: &mut dyn Write, s: &Summary) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *w, s)?;
    w.write_all(b"\n")
}

/// `summary.csv`: the summary as one long table,
/// `dimension,value,label,images,blocked`.
pub fn write_summary_csv(w: &mut dyn Write, s: &Summary) -> io::Result<()> {
    let mut csv = csv::Writer::from_writer(w);
    let blocked_found = s.by_audit_status.get("Blocked").copied().unwrap_or(0);
    csv.write_record(["dimension", "value", "label", "images", "blocked"]).map_err(csv_err)?;
    let t = &s.totals;
    for (value, n) in [("found", t.found), ("missing", t.missing), ("failed", t.failed)] {
        let blocked = if value == "found" { blocked_found.to_string() } else { String::new() };
        csv.write_record(["outcome", value, "", &n.to_string(), &blocked]).map_err(csv_err)?;
    }
    for (value, n) in &s.by_audit_status {
        let blocked = if value == "Blocked" { n.to_string() } else { "0".to_owned() };
        csv.write_record(["audit_status", value, "", &n.to_string(), &blocked]).map_err(csv_err)?;
    }
    for (value, n) in &s.by_status {
        csv.write_record(["status", value, "", &n.to_string(), ""]).map_err(csv_err)?;
    }
    for c in &s.by_category {
        let id = c.cate_id.map(|i| i.to_string()).unwrap_or_default();
        let name = c.cate_name.clone().unwrap_or_default();
        csv.write_record(["category", &id, &name, &c.images.to_string(), &c.blocked.to_string()]).map_err(csv_err)?;
    }
    csv.flush()
}

/// `rejected.csv`: `line,value,reason`.
pub fn write_rejected_csv(w: &mut dyn Write, rejected: &[Rejected]) -> io::Result<()> {
    let mut csv = csv::Writer::from_writer(w);
    csv.write_record(["line", "value", "reason"]).map_err(csv_err)?;
    for r in rejected {
        csv.write_record([r.line.to_string().as_str(), &r.value, &r.reason]).map_err(csv_err)?;
    }
    csv.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::model::{ImageInfo, Mezzanine};
    use crate::run::outcome::{FailureInfo, Outcome};

    fn found(id: &str, audit: Option<&str>, status: Option<&str>, cate: Option<(i64, &str)>) -> ImageRecord {
        let info = ImageInfo {
            image_id: Some(id.into()),
            audit_status: audit.map(Into::into),
            status: status.map(Into::into),
            cate_id: cate.map(|c| c.0),
            cate_name: cate.map(|c| c.1.into()),
            ..Default::default()
        };
        Outcome::found(id.into(), info, 1, Some("r".into())).record()
    }

    fn failed(id: &str, code: &str) -> ImageRecord {
        let f = FailureInfo { code: code.into(), message: "m".into(), http_status: Some(500), request_id: None };
        Outcome::failed(id.into(), 5, f).record()
    }

    #[test]
    fn aggregation_counts_every_bucket() {
        let records = vec![
            found("a", Some("Normal"), Some("Normal"), Some((1, "News"))),
            found("b", Some("Blocked"), Some("Normal"), Some((1, "News"))),
            found("c", None, Some("Uploading"), None),
            found("d", Some("Blocked"), None, Some((2, "Sport, \"live\""))),
            Outcome::missing("e".into(), 1, None).record(),
            failed("f", "InternalError"),
            failed("g", "InternalError"),
            failed("h", "Timeout"),
        ];
        let s = summarize(12, 3, 1, &records);
        assert_eq!(
            s.totals,
            Totals { input_rows: 12, unique_ids: 8, duplicates: 3, invalid: 1, found: 4, missing: 1, failed: 3 }
        );
        assert_eq!(
            s.by_audit_status,
            BTreeMap::from([("Normal".into(), 1), ("Blocked".into(), 2), ("Unknown".into(), 1)])
        );
        assert_eq!(s.by_status, BTreeMap::from([("Normal".into(), 2), ("Uploading".into(), 1), ("Unknown".into(), 1)]));
        assert_eq!(
            s.by_category,
            vec![
                CategoryCount { cate_id: None, cate_name: None, images: 1, blocked: 0 },
                CategoryCount { cate_id: Some(1), cate_name: Some("News".into()), images: 2, blocked: 1 },
                CategoryCount { cate_id: Some(2), cate_name: Some("Sport, \"live\"".into()), images: 1, blocked: 1 },
            ]
        );
        assert_eq!(s.failures_by_code, BTreeMap::from([("InternalError".into(), 2), ("Timeout".into(), 1)]));
    }

    #[test]
    fn images_csv_header_is_pinned_and_text_round_trips() {
        let mut info = ImageInfo {
            title: Some("a, \"quoted\"\nnew line 封面 =1+2".into()),
            cate_name: Some("新闻".into()),
            ..Default::default()
        };
        info.mezzanine = Some(Mezzanine { file_size: Some("8932".into()), width: Some(200), ..Default::default() });
        let rec = Outcome::found("id1".into(), info, 2, Some("REQ".into())).record();
        let mut buf = Vec::new();
        write_images_csv(&mut buf, [&rec]).unwrap();
        let text = String::from_utf8(buf.clone()).unwrap();
        assert_eq!(
            text.lines().next().unwrap(),
            "image_id,outcome,audit_status,status,cate_id,cate_name,title,image_type,creation_time,tags,description,storage_location,url,app_id,region_id,file_size,width,height,original_file_name,file_url,attempts,error_code,error_message,http_status,request_id"
        );
        let mut rdr = csv::Reader::from_reader(&buf[..]);
        let back: Vec<ImageRecord> = rdr.deserialize().collect::<Result<_, _>>().unwrap();
        assert_eq!(back, vec![rec]);
    }

    #[test]
    fn jsonl_round_trips() {
        let rec = failed("x", "Throttling.User");
        let mut buf = Vec::new();
        write_images_jsonl(&mut buf, [&rec, &rec]).unwrap();
        let lines: Vec<ImageRecord> =
            buf.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect();
        assert_eq!(lines, vec![rec.clone(), rec]);
    }

    #[test]
    fn summary_json_shape_is_pinned() {
        let s = summarize(1, 0, 0, &[found("a", Some("Blocked"), Some("Normal"), None)]);
        let mut buf = Vec::new();
        write_summary_json(&mut buf, &s).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            vec![
                "by_audit_status",
                "by_category",
                "by_status",
                "changes",
                "complete",
                "failures_by_code",
                "ledger",
                "stop_reason",
                "totals"
            ]
        );
        let totals: Vec<&str> = v["totals"].as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(totals, vec!["duplicates", "failed", "found", "input_rows", "invalid", "missing", "unique_ids"]);
        assert_eq!(
            v["by_category"][0],
            serde_json::json!({"cate_id": null, "cate_name": null, "images": 1, "blocked": 1})
        );
    }

    #[test]
    fn summary_csv_rows() {
        let s = summarize(
            3,
            0,
            0,
            &[
                found("a", Some("Blocked"), Some("Normal"), Some((7, "A,B"))),
                Outcome::missing("b".into(), 1, None).record(),
                failed("c", "X"),
            ],
        );
        let mut buf = Vec::new();
        write_summary_csv(&mut buf, &s).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(
            text,
            "dimension,value,label,images,blocked\noutcome,found,,1,1\noutcome,missing,,1,\noutcome,failed,,1,\naudit_status,Blocked,,1,1\nstatus,Normal,,1,\ncategory,7,\"A,B\",1,1\n"
        );
    }

    #[test]
    fn atomic_write_leaves_no_temp_file_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(dir.path(), "x.txt", |w| w.write_all(b"one")).unwrap();
        write_atomic(dir.path(), "x.txt", |w| w.write_all(b"two")).unwrap();
        assert_eq!(fs::read_to_string(dir.path().join("x.txt")).unwrap(), "two");
        let err = write_atomic(dir.path(), "x.txt", |_| Err(io::Error::other("disk full")));
        assert!(err.is_err());
        assert_eq!(fs::read_to_string(dir.path().join("x.txt")).unwrap(), "two", "a failed write keeps the old file");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}
