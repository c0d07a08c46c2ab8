//! One writer per report file: `images.csv`, `images.jsonl`,
//! `summary.json`, `summary.csv`, `rejected.csv`. `changes.csv` has its own
//! in [`super::changes`], the page in [`super::html`].
//!
//! Owns the CSV headers and the JSON shapes, which the tests pin. Where a
//! file goes and how it is made durable is [`crate::rundir`]'s business.

use std::borrow::Cow;
use std::io::{self, Write};

use super::changes::{Change, CHANGES_COLUMNS};
use super::summary::{Summary, Totals};
use crate::domain::record::{ImageRecord, Rejected};
use crate::domain::verdict::Verdict;

/// How the CSV files are written for the spreadsheet that opens them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvStyle {
    /// `--csv-safe` (on by default): a text cell that begins with `=`, `+`,
    /// `-`, `@`, a tab or a carriage return gets a `'` in front, so that a
    /// spreadsheet shows it as text instead of running it as a formula
    /// (CSV injection, as OWASP describes it). `images.jsonl` keeps the raw
    /// value.
    pub safe: bool,
    /// `--csv-bom`: a UTF-8 byte order mark first, so that Excel reads the
    /// file as UTF-8 (CJK titles) instead of the system's code page.
    pub bom: bool,
}

impl Default for CsvStyle {
    fn default() -> Self {
        CsvStyle { safe: true, bom: false }
    }
}

impl CsvStyle {
    /// A text cell as written.
    pub fn cell<'a>(&self, value: &'a str) -> Cow<'a, str> {
        if self.safe && needs_defusing(value) {
            Cow::Owned(format!("'{value}"))
        } else {
            Cow::Borrowed(value)
        }
    }

    /// A CSV writer over `w`, the byte order mark written if asked for.
    pub fn writer<W: Write>(&self, mut w: W) -> io::Result<csv::Writer<W>> {
        if self.bom {
            w.write_all("\u{feff}".as_bytes())?;
        }
        Ok(csv::WriterBuilder::new().has_headers(false).from_writer(w))
    }
}

/// Whether a spreadsheet would take the cell for a formula (OWASP's list).
fn needs_defusing(value: &str) -> bool {
    matches!(value.as_bytes().first(), Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r'))
}

/// The `images.csv` header, in order.
pub const IMAGES_COLUMNS: &[&str] = &[
    "image_id",
    "outcome",
    "verdict",
    "verdict_source",
    "audit_status",
    "moderation_suggestion",
    "reasons",
    "abnormal_modules",
    "disagreement",
    "unrecognised",
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
    "review_decision",
    "reviewer",
    "reviewed_at",
    "blocked_since",
];

fn csv_err(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::other(format!("{other:?}")),
    }
}

/// The longest cell `images.csv` holds, in characters: Excel's limit for a
/// cell (32,767). A longer value (a hostile or broken server's 100 MB title)
/// is cut there with [`CUT_MARKER`]; `images.jsonl` keeps it whole (the
/// client caps a whole answer at 1 MiB).
pub const MAX_CSV_CELL: usize = 32_767;

/// Ends a cut cell, followed by the value's full size in bytes.
pub const CUT_MARKER: &str = "…[cut; bytes in all: ";

/// `value` cut to at most [`MAX_CSV_CELL`] characters, marked, if longer.
fn cut_cell(value: &str) -> Option<String> {
    if value.len() <= MAX_CSV_CELL {
        // Bytes bound characters: most values never need counting.
        return None;
    }
    if value.chars().count() <= MAX_CSV_CELL {
        return None;
    }
    let marker = format!("{CUT_MARKER}{}]", value.len());
    let keep = MAX_CSV_CELL - marker.chars().count();
    let end = value.char_indices().nth(keep).map_or(value.len(), |(i, _)| i);
    Some(format!("{}{marker}", &value[..end]))
}

/// `images.csv` written one record at a time.
pub struct ImagesCsv<W: Write> {
    csv: csv::Writer<W>,
    style: CsvStyle,
}

impl<W: Write> ImagesCsv<W> {
    /// Writes the header.
    pub fn new(w: W, style: CsvStyle) -> io::Result<Self> {
        let mut csv = style.writer(w)?;
        csv.write_record(IMAGES_COLUMNS).map_err(csv_err)?;
        Ok(ImagesCsv { csv, style })
    }

    /// Writes one row; a cell longer than [`MAX_CSV_CELL`] is cut, one a
    /// spreadsheet would run is defused (see [`CsvStyle`]).
    pub fn write(&mut self, r: &ImageRecord) -> io::Result<()> {
        let touch = |f: &Option<String>| {
            f.as_deref().is_some_and(|v| v.len() > MAX_CSV_CELL || (self.style.safe && needs_defusing(v)))
        };
        if !r.text_fields().into_iter().any(touch) {
            return self.csv.serialize(r).map_err(csv_err);
        }
        let mut copy = r.clone();
        for field in copy.text_fields_mut() {
            if let Some(v) = field.as_deref() {
                let v = cut_cell(v).map_or(Cow::Borrowed(v), Cow::Owned);
                let v = self.style.cell(&v).into_owned();
                *field = Some(v);
            }
        }
        self.csv.serialize(&copy).map_err(csv_err)
    }

    /// Flushes and hands back the writer.
    pub fn finish(self) -> io::Result<W> {
        self.csv.into_inner().map_err(|e| io::Error::other(e.to_string()))
    }
}

#[cfg(test)]
/// `images.csv`: one row per record, in the order given.
pub fn write_images_csv<'a>(w: &mut dyn Write, records: impl IntoIterator<Item = &'a ImageRecord>) -> io::Result<()> {
    let mut csv = ImagesCsv::new(w, CsvStyle { safe: false, bom: false })?;
    for r in records {
        csv.write(r)?;
    }
    csv.finish().map(drop)
}

#[cfg(test)]
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
/// `dimension,value,label,images,blocked`; the ledger's rows last.
pub fn write_summary_csv(w: &mut dyn Write, s: &Summary, style: CsvStyle) -> io::Result<()> {
    let mut csv = style.writer(w)?;
    let blocked_found = s.blocked();
    csv.write_record(["dimension", "value", "label", "images", "blocked"]).map_err(csv_err)?;
    for row in Totals::outcome_rows() {
        let blocked = if row.key == "found" { blocked_found.to_string() } else { String::new() };
        csv.write_record(["outcome", row.key, "", &(row.count)(&s.totals).to_string(), &blocked]).map_err(csv_err)?;
    }
    for (value, n) in &s.by_verdict {
        let blocked = if value == Verdict::Blocked.as_str() { n.to_string() } else { "0".to_owned() };
        csv.write_record(["verdict", value, "", &n.to_string(), &blocked]).map_err(csv_err)?;
    }
    for (value, n) in &s.by_audit_status {
        csv.write_record(["audit_status", &style.cell(value), "", &n.to_string(), ""]).map_err(csv_err)?;
    }
    for (value, n) in &s.by_reason {
        csv.write_record(["reason", &style.cell(value), "", &n.to_string(), ""]).map_err(csv_err)?;
    }
    for (value, n) in &s.disagreements {
        csv.write_record(["disagreement", value, "", &n.to_string(), ""]).map_err(csv_err)?;
    }
    for (value, n) in &s.unrecognised_values {
        csv.write_record(["unrecognised", &style.cell(value), "", &n.to_string(), ""]).map_err(csv_err)?;
    }
    for (value, n) in &s.by_status {
        csv.write_record(["status", &style.cell(value), "", &n.to_string(), ""]).map_err(csv_err)?;
    }
    for c in &s.by_category {
        let id = c.cate_id.map(|i| i.to_string()).unwrap_or_default();
        let name = c.cate_name.clone().unwrap_or_default();
        csv.write_record(["category", &id, &style.cell(&name), &c.images.to_string(), &c.blocked.to_string()])
            .map_err(csv_err)?;
    }
    for (key, label, n) in s.ledger.rows() {
        csv.write_record(["ledger", key, label, &n.to_string(), ""]).map_err(csv_err)?;
    }
    csv.flush()
}

/// `rejected.csv`: `line,value,reason`.
pub fn write_rejected_csv(w: &mut dyn Write, rejected: &[Rejected], style: CsvStyle) -> io::Result<()> {
    let mut csv = style.writer(w)?;
    csv.write_record(["line", "value", "reason"]).map_err(csv_err)?;
    for r in rejected {
        csv.write_record([r.line.to_string().as_str(), &style.cell(&r.value), &style.cell(&r.reason)])
            .map_err(csv_err)?;
    }
    csv.flush()
}

/// Writes `changes.csv` rows ([`CHANGES_COLUMNS`]).
pub struct ChangesWriter<W: Write> {
    csv: csv::Writer<W>,
    style: CsvStyle,
}

impl<W: Write> ChangesWriter<W> {
    pub fn new(w: W, style: CsvStyle) -> io::Result<Self> {
        let mut csv = style.writer(w)?;
        csv.write_record(CHANGES_COLUMNS).map_err(io::Error::other)?;
        Ok(ChangesWriter { csv, style })
    }

    pub fn write(&mut self, c: &Change) -> io::Result<()> {
        let text = |v: &Option<String>| self.style.cell(v.as_deref().unwrap_or_default()).into_owned();
        let id = |v: Option<i64>| v.map(|i| i.to_string()).unwrap_or_default();
        self.csv
            .write_record([
                c.image_id.as_str(),
                c.change,
                &self.style.cell(&c.before),
                &self.style.cell(&c.after),
                &text(&c.title),
                &id(c.cate_id),
                &text(&c.cate_name),
                &text(&c.image_url),
                &id(c.before_cate_id),
                &text(&c.before_cate_name),
                &text(&c.explained_by),
            ])
            .map_err(io::Error::other)
    }

    pub fn finish(mut self) -> io::Result<()> {
        self.csv.flush()
    }

    /// Flushes and hands back the writer.
    pub fn into_inner(self) -> io::Result<W> {
        self.csv.into_inner().map_err(|e| io::Error::other(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::model::{ImageInfo, Mezzanine};
    use crate::report::summary::summarize;
    use crate::report::testing::{failed, found};
    use crate::run::outcome::Outcome;

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
            "image_id,outcome,verdict,verdict_source,audit_status,moderation_suggestion,reasons,abnormal_modules,disagreement,unrecognised,status,cate_id,cate_name,title,image_type,creation_time,tags,description,storage_location,url,app_id,region_id,file_size,width,height,original_file_name,file_url,attempts,error_code,error_message,http_status,request_id,review_decision,reviewer,reviewed_at,blocked_since"
        );
        let mut rdr = csv::Reader::from_reader(&buf[..]);
        let back: Vec<ImageRecord> = rdr.deserialize().collect::<Result<_, _>>().unwrap();
        assert_eq!(back, vec![rec]);
    }

    #[test]
    fn a_cell_longer_than_excel_takes_is_cut_and_marked() {
        let title = "标".repeat(40_000) + "end";
        let info = ImageInfo { title: Some(title.clone()), description: Some("short".into()), ..Default::default() };
        let rec = Outcome::found("id1".into(), info, 1, None).record();
        let mut buf = Vec::new();
        write_images_csv(&mut buf, [&rec]).unwrap();
        let mut rdr = csv::Reader::from_reader(&buf[..]);
        let back: Vec<ImageRecord> = rdr.deserialize().collect::<Result<_, _>>().unwrap();
        let cell = back[0].title.as_deref().unwrap();
        assert_eq!(cell.chars().count(), MAX_CSV_CELL);
        assert!(
            cell.starts_with("标标") && cell.ends_with(&format!("{CUT_MARKER}{}]", title.len())),
            "{}",
            &cell[cell.len() - 40..]
        );
        assert_eq!(back[0].description.as_deref(), Some("short"));
        // images.jsonl keeps it whole.
        let mut line = Vec::new();
        rec.write_line(&mut line).unwrap();
        assert!(String::from_utf8(line).unwrap().contains(&title));
        // Exactly at the limit: untouched.
        let exact = "a".repeat(MAX_CSV_CELL);
        assert_eq!(cut_cell(&exact), None);
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
                "audit_status_coverage",
                "by_audit_status",
                "by_category",
                "by_reason",
                "by_status",
                "by_verdict",
                "changes",
                "complete",
                "disagreements",
                "failures_by_code",
                "ledger",
                "review",
                "stop_reason",
                "totals",
                "unrecognised_values",
                "unspecified_reasons",
                "verdict_coverage"
            ]
        );
        let totals: Vec<&str> = v["totals"].as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            totals,
            vec!["duplicates", "failed", "found", "input_rows", "invalid", "missing", "not_attempted", "unique_ids"]
        );
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
        write_summary_csv(&mut buf, &s, CsvStyle::default()).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(
            text,
            "dimension,value,label,images,blocked\noutcome,found,,1,1\noutcome,missing,,1,\noutcome,failed,,1,\noutcome,not_attempted,,0,\nverdict,Blocked,,1,1\naudit_status,Blocked,,1,\nstatus,Normal,,1,\ncategory,7,\"A,B\",1,1\n\
             ledger,input_rows,Input rows,0,\nledger,blank_rows,Blank rows skipped,0,\nledger,rejected,Rejected rows (rejected.csv),0,\n\
             ledger,duplicates,Duplicate rows,0,\nledger,unique_ids,Unique ids,0,\nledger,found,Found,0,\n\
             ledger,missing,Missing (NoSuchResource),0,\nledger,failed,Failed,0,\n\
             ledger,not_attempted,Not attempted (the run stopped first),0,\nledger,unaccounted,Unaccounted,0,\n"
        );
    }
}
