//! `summary.html`: one self-contained page for people (and auditors): the
//! ledger, bar charts of `AuditStatus`, `Status` and categories, a trend
//! over the last runs, the changes since the previous run (newly blocked
//! images with their title, category and link), the blocked images and the
//! failures by code. Blocked is red in every chart.
//!
//! Owns the page's markup and its escaping. No script, no network, no
//! external font or image: a Content-Security-Policy forbids them, and
//! every piece of text from the API (titles, category names, URLs) is
//! escaped, so a title holding `<script>` is shown as text. Numbers carry
//! `data-k` attributes so a test can read them back from a browser's DOM.

use std::io::{self, Write};

use super::changes::{Change, CHANGE_KINDS};
use super::review::{QueueRow, ReviewSummary};
use super::summary::Summary;
use super::trend::TrendPoint;
use crate::domain::record::ImageRecord;
use crate::domain::verdict::Verdict;

/// The colour of blocked images in every chart.
const RED: &str = "#d62728";
/// The colour of other counts.
const BLUE: &str = "#4e79a7";
/// Missing images on the trend.
const GREY: &str = "#8c8c8c";

/// Blocked images listed on the page; the rest are in `images.csv`.
pub(crate) const MAX_BLOCKED_ROWS: usize = 1000;
/// Rows of each other list (missing, newly missing, unblocked, Unknown):
/// enough to act on from the page, short enough to read; the rest are in
/// `images.csv` / `changes.csv`.
pub(crate) const MAX_LISTED: usize = 50;

/// What the page says about the run besides the summary.
pub(crate) struct PageInfo<'a> {
    pub started: &'a str,
    pub finished: &'a str,
    pub input: &'a str,
    pub input_sha256: &'a str,
    pub endpoint: &'a str,
    pub region: &'a str,
    /// The account audited, when the credentials told it.
    pub account: Option<&'a str>,
    /// The first newly blocked images (up to [`MAX_BLOCKED_ROWS`]).
    pub newly_blocked: &'a [Change],
    /// Earlier runs and this one, oldest first.
    pub trend: &'a [TrendPoint],
    /// The first images whose `AuditStatus` overrides moderation's
    /// `Suggestion` (up to [`MAX_BLOCKED_ROWS`]).
    pub disagreements: &'a [ImageRecord],
    /// The unreviewed blocked images, oldest first (up to
    /// [`super::review::MAX_QUEUE_ROWS`]).
    pub review_queue: &'a [super::review::QueueRow],
    /// The first missing ids (up to [`MAX_LISTED`]).
    pub missing: &'a [String],
    /// The first found images whose verdict is `Unknown` (up to [`MAX_LISTED`]).
    pub unknown: &'a [ImageRecord],
    /// The first unblocked images (up to [`MAX_LISTED`]).
    pub unblocked: &'a [Change],
    /// The first newly missing images (up to [`MAX_LISTED`]).
    pub newly_missing: &'a [Change],
    /// `images.csv`'s SHA-256, when it was written: the page cannot carry
    /// the manifest's, which lists the page's own.
    pub images_csv_sha256: Option<&'a str>,
}

/// "and N more in FILE" under a list cut at its bound.
fn more(w: &mut dyn Write, shown: usize, total: u64, file: &str) -> io::Result<()> {
    if (shown as u64) < total {
        writeln!(w, "<p class=\"meta more\">and {} more in {file}</p>", total - shown as u64)?;
    }
    Ok(())
}

/// The last column of a list of changes: its header and its cell.
type LastCell = (&'static str, fn(&Change) -> String);

/// A list of changes with the image as last seen; with `total`, "and N
/// more" under it when it was cut at its bound.
fn change_list(
    w: &mut dyn Write,
    title: &str,
    class: &str,
    rows: &[Change],
    (last, cell): LastCell,
    total: Option<u64>,
) -> io::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    writeln!(
        w,
        "<p>{}:</p><table class=\"{class}\"><tr><th>image id</th><th>title</th><th>category</th><th>before</th><th>{last}</th></tr>",
        escape(title)
    )?;
    for ch in rows {
        writeln!(
            w,
            "<tr><td><code>{}</code></td><td class=\"title\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&ch.image_id),
            escape(ch.title.as_deref().unwrap_or("")),
            escape(&category(ch.cate_id, ch.cate_name.as_deref())),
            escape(&ch.before),
            cell(ch)
        )?;
    }
    writeln!(w, "</table>")?;
    match total {
        Some(total) => more(w, rows.len(), total, "changes.csv"),
        None => Ok(()),
    }
}

/// "The first N of M" under a table cut at its bound.
fn first_of(w: &mut dyn Write, shown: usize, total: u64, column: &str) -> io::Result<()> {
    if (shown as u64) < total {
        writeln!(w, "<p class=\"meta\">The first {shown} of {total}; images.csv has them all{column}.</p>")?;
    }
    Ok(())
}

/// The first lines an analyst reads: how many are blocked, what changed,
/// whether the run is complete, and the digest that pins the rows.
fn headline(w: &mut dyn Write, s: &Summary, info: &PageInfo<'_>) -> io::Result<()> {
    let changes = match &s.changes {
        None => "no earlier run compared".to_owned(),
        Some(c) => {
            let counts: Vec<String> = CHANGE_KINDS
                .iter()
                .filter_map(|k| c.counts.get(*k).filter(|n| **n > 0).map(|n| format!("{} {n}", k.replace('_', " "))))
                .collect();
            format!(
                "since {}: {}",
                escape(c.compared_with.as_deref().unwrap_or("the earlier run")),
                if counts.is_empty() { "no change".to_owned() } else { counts.join(", ") }
            )
        }
    };
    let complete = match s.complete {
        true => "<span class=\"ok\">complete</span>".to_owned(),
        false => format!(
            "<span class=\"bad\">incomplete: {}</span>",
            escape(s.stop_reason.as_deref().unwrap_or("the run stopped early"))
        ),
    };
    let digest = match info.images_csv_sha256 {
        Some(d) => format!("images.csv SHA-256 <code data-k=\"images_csv_sha256\">{}</code>", escape(d)),
        None => "images.csv not written (--format)".to_owned(),
    };
    writeln!(
        w,
        "<p class=\"headline\"><strong class=\"{}\"><span data-k=\"headline_blocked\">{}</span> blocked</strong>; changes {changes}; {complete}; {} found, {} missing, {} failed.<br><span class=\"meta\">{digest}; the manifest's own digest is in manifest.sha256 (it lists this page's, so the page cannot hold it).</span></p>",
        if s.blocked() > 0 { "bad" } else { "ok" },
        s.blocked(),
        s.totals.found,
        s.totals.missing,
        s.totals.failed,
    )
}

/// A category for people: `News (7)`, the id alone, or `(uncategorized)`.
fn category(cate_id: Option<i64>, cate_name: Option<&str>) -> String {
    match (cate_id, cate_name) {
        (None, _) => "(uncategorized)".to_owned(),
        (Some(id), Some(n)) => format!("{n} ({id})"),
        (Some(id), None) => id.to_string(),
    }
}

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A link only for http(s) URLs: a `javascript:` URL stays text.
fn link(url: &str) -> String {
    let lower = url.trim_start().to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        format!("<a href=\"{}\" rel=\"noreferrer noopener\">open</a>", escape(url))
    } else {
        String::new()
    }
}

const STYLE: &str = "body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.2em .7em;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}.meta{color:#555}.bad{color:#b00020;font-weight:600}.ok{color:#1b7f3b;font-weight:600}
.charts{display:flex;flex-wrap:wrap;gap:2em}svg text{font:12px system-ui,sans-serif}
.title{white-space:pre-wrap;max-width:28em;overflow-wrap:anywhere}
@media print{body{margin:0;max-width:none}a{color:inherit;text-decoration:none}}";

/// A record's reasons for people: `image-cover:porn, text-title:ad`, or
/// what is known when none was asked.
fn reasons_text(r: &ImageRecord) -> String {
    let reasons: Vec<&str> = r.reason_list().collect();
    if reasons.is_empty() {
        "(moderation not asked: --audit-source both gives the reasons)".to_owned()
    } else {
        reasons.join(", ")
    }
}

/// Whose decision the verdict is, and whether a person overrode the machine.
fn decided_by(r: &ImageRecord) -> String {
    let source = match r.verdict_source.as_deref() {
        Some("audit_status") => "the account (AuditStatus)",
        Some("moderation") => "the machine (moderation Suggestion)",
        Some(_) => "nobody",
        // A run written before the verdict had a column.
        None => "AuditStatus",
    };
    match r.disagreement.as_deref() {
        Some("blocked_by_account") => format!("{source}; the machine passed it"),
        Some("cleared_by_account") => format!("{source}; the machine blocked it"),
        _ => source.to_owned(),
    }
}

/// A two-column table of counts, each number readable by its `data-k`;
/// nothing when there are none.
fn count_table(
    w: &mut dyn Write,
    title: &str,
    key: &str,
    counts: &std::collections::BTreeMap<String, u64>,
) -> io::Result<()> {
    if counts.is_empty() {
        return Ok(());
    }
    writeln!(w, "<table><tr><th>{}</th><th class=\"n\">images</th></tr>", escape(title))?;
    for (k, v) in counts {
        writeln!(w, "<tr><td>{}</td><td class=\"n\" data-k=\"{key}:{}\">{v}</td></tr>", escape(k), escape(k))?;
    }
    writeln!(w, "</table>")
}

/// A horizontal bar chart; each row is (label, count, the part of it that is
/// blocked, drawn red over the bar).
fn bar_chart(w: &mut dyn Write, title: &str, rows: &[(String, u64, Option<u64>)]) -> io::Result<()> {
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1);
    let (label_w, bar_w, row_h) = (230.0, 260.0, 22.0);
    let height = row_h * rows.len().max(1) as f64 + 8.0;
    writeln!(w, "<figure><figcaption><strong>{}</strong></figcaption>", escape(title))?;
    writeln!(
        w,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" role=\"img\" aria-label=\"{}\">",
        label_w + bar_w + 140.0,
        escape(title)
    )?;
    for (i, (label, n, blocked)) in rows.iter().enumerate() {
        let y = i as f64 * row_h + 4.0;
        let len = bar_w * (*n as f64) / max as f64;
        let shown: String = label.chars().take(30).collect::<String>().replace(['\n', '\r'], " ");
        writeln!(w, "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>", label_w - 6.0, y + 14.0, escape(&shown))?;
        writeln!(w, "<rect x=\"{label_w}\" y=\"{y}\" width=\"{len:.1}\" height=\"{}\" fill=\"{BLUE}\"/>", row_h - 6.0)?;
        if let Some(b) = blocked {
            let blen = bar_w * (*b as f64) / max as f64;
            writeln!(
                w,
                "<rect class=\"blocked\" x=\"{label_w}\" y=\"{y}\" width=\"{blen:.1}\" height=\"{}\" fill=\"{RED}\"/>",
                row_h - 6.0
            )?;
        }
        let text = match blocked {
            Some(b) if b != n || label != Verdict::Blocked.as_str() => format!("{n} ({b} blocked)"),
            _ => n.to_string(),
        };
        writeln!(w, "<text x=\"{}\" y=\"{}\">{}</text>", label_w + len + 6.0, y + 14.0, text)?;
    }
    writeln!(w, "</svg></figure>")
}

/// Found, blocked (red) and missing per run, as lines over the runs.
fn trend_chart(w: &mut dyn Write, points: &[TrendPoint]) -> io::Result<()> {
    let (left, top, width, height) = (60.0, 10.0, 720.0, 200.0);
    let max = points.iter().map(|p| p.found.max(p.blocked).max(p.missing)).max().unwrap_or(0).max(1) as f64;
    let step = if points.len() > 1 { width / (points.len() - 1) as f64 } else { 0.0 };
    let x = |i: usize| left + step * i as f64;
    let y = |n: u64| top + height - height * n as f64 / max;
    writeln!(
        w,
        "<figure><svg class=\"trend\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"found, blocked and missing images per run\">",
        left + width + 120.0,
        top + height + 40.0
    )?;
    writeln!(
        w,
        "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">0</text>",
        top + height,
        left + width,
        top + height,
        left - 6.0,
        top + 10.0,
        max as u64,
        left - 6.0,
        top + height
    )?;
    type Series = (&'static str, &'static str, fn(&TrendPoint) -> u64);
    let series: [Series; 3] =
        [("found", BLUE, |p| p.found), ("blocked", RED, |p| p.blocked), ("missing", GREY, |p| p.missing)];
    for (name, colour, value) in series {
        let line: Vec<String> =
            points.iter().enumerate().map(|(i, p)| format!("{:.1},{:.1}", x(i), y(value(p)))).collect();
        writeln!(w, "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>", line.join(" "))?;
        for (i, p) in points.iter().enumerate() {
            writeln!(
                w,
                "<circle class=\"{name}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"><title>{} {name} {}</title></circle>",
                x(i),
                y(value(p)),
                escape(&p.finished),
                value(p)
            )?;
        }
        let last = points.last().map_or(0, value);
        writeln!(
            w,
            "<text x=\"{}\" y=\"{:.1}\" fill=\"{colour}\">{name} {last}</text>",
            left + width + 8.0,
            y(last) + 4.0
        )?;
    }
    let first = points.first().map_or("", |p| p.finished.get(..10).unwrap_or(&p.finished));
    let last = points.last().map_or("", |p| p.finished.get(..10).unwrap_or(&p.finished));
    writeln!(
        w,
        "<text x=\"{left}\" y=\"{}\">{}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
        top + height + 18.0,
        escape(first),
        left + width,
        top + height + 18.0,
        escape(last)
    )?;
    writeln!(w, "</svg></figure>")
}

fn num_row(w: &mut dyn Write, label: &str, key: &str, n: u64) -> io::Result<()> {
    writeln!(w, "<tr><th>{}</th><td class=\"n\" data-k=\"{}\">{n}</td></tr>", escape(label), escape(key))
}

/// Writes the page: one section after another.
pub(crate) fn write_summary_html(
    w: &mut dyn Write,
    s: &Summary,
    info: &PageInfo<'_>,
    blocked: &mut dyn Iterator<Item = &ImageRecord>,
) -> io::Result<()> {
    page_head(w, info)?;
    headline(w, s, info)?;
    run_meta(w, info)?;
    write_queue_html(w, &s.review, info.review_queue)?;
    coverage(w, s)?;
    ledger_section(w, s)?;
    found_section(w, s)?;
    if info.trend.len() > 1 {
        writeln!(w, "<h2>Trend over the last {} runs</h2>", info.trend.len())?;
        trend_chart(w, info.trend)?;
    }
    changes_section(w, s, info)?;
    blocked_section(w, s, blocked)?;
    missing_section(w, s, info.missing)?;
    unknown_section(w, s, info.unknown)?;
    disagreements_section(w, s, info.disagreements)?;
    failures_section(w, s)?;
    writeln!(w, "</body></html>")
}

/// The document's head: the Content-Security-Policy, the title, the style.
fn page_head(w: &mut dyn Write, info: &PageInfo<'_>) -> io::Result<()> {
    writeln!(w, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")?;
    writeln!(
        w,
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
    )?;
    writeln!(w, "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")?;
    writeln!(w, "<title>VOD image audit {}</title><style>{STYLE}</style></head><body>", escape(info.finished))?;
    writeln!(w, "<h1>VOD image audit</h1>")
}

/// The account, region, times, endpoint and input of the run.
fn run_meta(w: &mut dyn Write, info: &PageInfo<'_>) -> io::Result<()> {
    writeln!(
        w,
        "<p class=\"meta\">{}Region {}. Run {} – {} (UTC), endpoint {}<br>Input {} (SHA-256 <code>{}</code>)</p>",
        info.account.map_or(String::new(), |a| format!("Account <span data-k=\"account\">{}</span>. ", escape(a))),
        escape(info.region),
        escape(info.started),
        escape(info.finished),
        escape(info.endpoint),
        escape(info.input),
        escape(info.input_sha256)
    )
}

/// How far the verdict can be trusted, and whether the run is complete.
fn coverage(w: &mut dyn Write, s: &Summary) -> io::Result<()> {
    let c = &s.verdict_coverage;
    writeln!(
        w,
        "<p class=\"{}\">Verdict known for <span data-k=\"verdict_share\">{}</span> of found images ({} of {}); AuditStatus carried by <span data-k=\"audit_status_share\">{}</span>.</p>",
        if c.share.is_some_and(|s| s >= 1.0) { "ok" } else { "bad" },
        c.percent(),
        c.with_verdict,
        c.found,
        s.audit_status_coverage.percent(),
    )?;
    if s.complete {
        writeln!(w, "<p class=\"ok\" data-k=\"complete\">Complete: every input row is accounted for.</p>")
    } else {
        writeln!(
            w,
            "<p class=\"bad\" data-k=\"incomplete\">Incomplete: {}</p>",
            escape(s.stop_reason.as_deref().unwrap_or("the run stopped early"))
        )
    }
}

/// The ledger's rows, and whether its sums hold.
fn ledger_section(w: &mut dyn Write, s: &Summary) -> io::Result<()> {
    writeln!(w, "<h2>Ledger</h2><table>")?;
    for (key, label, n) in s.ledger.rows() {
        num_row(w, label, key, n)?;
    }
    writeln!(w, "</table>")?;
    let problems = s.ledger.problems();
    if problems.is_empty() {
        writeln!(
            w,
            "<p class=\"ok\">input rows = unique + duplicates + rejected; unique = found + missing + failed + not attempted.</p>"
        )?;
    }
    for p in problems {
        writeln!(w, "<p class=\"bad\">{}</p>", escape(&p))?;
    }
    Ok(())
}

/// The charts and tables of found images by verdict, status, category,
/// reason and unrecognised value.
fn found_section(w: &mut dyn Write, s: &Summary) -> io::Result<()> {
    writeln!(w, "<h2>Found images</h2><div class=\"charts\">")?;
    let blocked_word = Verdict::Blocked.as_str();
    let verdicts: Vec<_> =
        s.by_verdict.iter().map(|(k, v)| (k.clone(), *v, (k == blocked_word).then_some(*v))).collect();
    bar_chart(w, "Verdict", &verdicts)?;
    let status: Vec<_> = s.by_status.iter().map(|(k, v)| (k.clone(), *v, None)).collect();
    bar_chart(w, "Status", &status)?;
    let cats: Vec<_> = s
        .by_category
        .iter()
        .map(|c| (category(c.cate_id, c.cate_name.as_deref()), c.images, Some(c.blocked)))
        .collect();
    bar_chart(w, "Categories (red: blocked)", &cats)?;
    writeln!(w, "</div>")?;
    count_table(w, "verdict", "verdict", &s.by_verdict)?;
    count_table(w, "AuditStatus (as answered)", "audit", &s.by_audit_status)?;
    count_table(w, "Status", "status", &s.by_status)?;
    count_table(w, "reason", "reason", &s.by_reason)?;
    count_table(w, "value not recognised (counted as Unknown)", "unrecognised", &s.unrecognised_values)
}

/// The changes since the run compared with: counts, then the newly
/// blocked, unblocked and newly missing images.
fn changes_section(w: &mut dyn Write, s: &Summary, info: &PageInfo<'_>) -> io::Result<()> {
    writeln!(w, "<h2>Changes since the previous run</h2>")?;
    let Some(c) = &s.changes else {
        return writeln!(w, "<p class=\"meta\">No earlier run was compared (use <code>--compare-with</code>).</p>");
    };
    writeln!(
        w,
        "<p class=\"meta\">Compared with {} ({} ids compared, {} not in both runs or failed).</p><table>",
        escape(c.compared_with.as_deref().unwrap_or("?")),
        c.compared,
        c.not_compared
    )?;
    let count = |k: &str| c.counts.get(k).copied().unwrap_or(0);
    for kind in CHANGE_KINDS {
        num_row(w, kind, &format!("change:{kind}"), count(kind))?;
    }
    writeln!(w, "</table>")?;
    let link_cell: LastCell = ("link", |ch| link(ch.image_url.as_deref().unwrap_or("")));
    let after_cell: LastCell = ("after", |ch| escape(&ch.after));
    change_list(w, "Newly blocked", "newly-blocked", info.newly_blocked, link_cell, None)?;
    change_list(w, "Unblocked", "unblocked", info.unblocked, after_cell, Some(count("unblocked")))?;
    change_list(w, "Newly missing", "newly-missing", info.newly_missing, after_cell, Some(count("newly_missing")))
}

/// The blocked images, newest change first, up to [`MAX_BLOCKED_ROWS`].
fn blocked_section(w: &mut dyn Write, s: &Summary, blocked: &mut dyn Iterator<Item = &ImageRecord>) -> io::Result<()> {
    let total = s.blocked();
    writeln!(
        w,
        "<h2 id=\"blocked\">Blocked images (<span data-k=\"blocked\">{total}</span>), newest change first</h2>"
    )?;
    writeln!(
        w,
        "<table class=\"blocked\"><tr><th>image id</th><th>title</th><th>category</th><th>reasons</th><th>decided by</th><th>created</th><th>link</th></tr>"
    )?;
    let mut shown = 0usize;
    for r in blocked.take(MAX_BLOCKED_ROWS) {
        shown += 1;
        writeln!(
            w,
            "<tr><td><code>{}</code></td><td class=\"title\">{}</td><td>{}</td><td class=\"labels\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&r.image_id),
            escape(r.title.as_deref().unwrap_or("")),
            escape(&category(r.cate_id, r.cate_name.as_deref())),
            escape(&reasons_text(r)),
            escape(&decided_by(r)),
            escape(r.creation_time.as_deref().unwrap_or("")),
            link(r.url.as_deref().unwrap_or(""))
        )?;
    }
    writeln!(w, "</table>")?;
    first_of(w, shown, total, "")
}

/// The first missing ids, up to [`MAX_LISTED`].
fn missing_section(w: &mut dyn Write, s: &Summary, missing: &[String]) -> io::Result<()> {
    writeln!(w, "<h2 id=\"missing\">Missing images (NoSuchResource)</h2>")?;
    if missing.is_empty() {
        return writeln!(w, "<p class=\"meta\">None.</p>");
    }
    let ids: Vec<String> = missing.iter().map(|id| format!("<code>{}</code>", escape(id))).collect();
    writeln!(w, "<p class=\"missing\">{}</p>", ids.join(" "))?;
    more(w, missing.len(), s.totals.missing, "images.csv")
}

/// The first found images whose verdict is `Unknown`, up to [`MAX_LISTED`].
fn unknown_section(w: &mut dyn Write, s: &Summary, unknown: &[ImageRecord]) -> io::Result<()> {
    writeln!(w, "<h2 id=\"unknown\">No verdict (Unknown)</h2>")?;
    if unknown.is_empty() {
        return writeln!(w, "<p class=\"meta\">None.</p>");
    }
    writeln!(
        w,
        "<table class=\"unknown\"><tr><th>image id</th><th>title</th><th>AuditStatus as answered</th><th>reasons</th></tr>"
    )?;
    for r in unknown {
        writeln!(
            w,
            "<tr><td><code>{}</code></td><td class=\"title\">{}</td><td>{}</td><td>{}</td></tr>",
            escape(&r.image_id),
            escape(r.title.as_deref().unwrap_or("")),
            escape(r.audit_status.as_deref().unwrap_or("(absent)")),
            escape(&r.reason_list().collect::<Vec<_>>().join(", "))
        )?;
    }
    writeln!(w, "</table>")?;
    more(w, unknown.len(), s.by_verdict.get(Verdict::Unknown.as_str()).copied().unwrap_or(0), "images.csv")
}

/// The images where a person's decision overrode the machine's.
fn disagreements_section(w: &mut dyn Write, s: &Summary, rows: &[ImageRecord]) -> io::Result<()> {
    let total = s.disagreement_count();
    writeln!(w, "<h2>A person overrode the machine (<span data-k=\"disagreements\">{total}</span>)</h2>")?;
    if total == 0 {
        return writeln!(
            w,
            "<p class=\"meta\">None seen. (Moderation is asked about every image only with <code>--audit-source media-audit</code>.)</p>"
        );
    }
    writeln!(
        w,
        "<p class=\"meta\">AuditStatus is the account's decision and wins over the automated moderation's Suggestion.</p><table class=\"disagreements\"><tr><th>image id</th><th>title</th><th>AuditStatus</th><th>moderation said</th><th>what happened</th><th>machine's reasons</th></tr>"
    )?;
    for r in rows {
        let what = match r.disagreement.as_deref() {
            Some("cleared_by_account") => "a person cleared what the machine blocked",
            Some("blocked_by_account") => "a person blocked what the machine passed",
            _ => "",
        };
        writeln!(
            w,
            "<tr><td><code>{}</code></td><td class=\"title\">{}</td><td>{}</td><td>{}</td><td data-k=\"disagreement:{}\">{what}</td><td>{}</td></tr>",
            escape(&r.image_id),
            escape(r.title.as_deref().unwrap_or("")),
            escape(r.audit_status.as_deref().unwrap_or("")),
            escape(r.moderation_suggestion.as_deref().unwrap_or("")),
            escape(&r.image_id),
            escape(&reasons_text(r)),
        )?;
    }
    writeln!(w, "</table>")?;
    first_of(w, rows.len(), total, " (column disagreement)")
}

/// The failures by error code.
fn failures_section(w: &mut dyn Write, s: &Summary) -> io::Result<()> {
    writeln!(w, "<h2>Failures by code</h2>")?;
    if s.failures_by_code.is_empty() {
        return writeln!(w, "<p class=\"ok\">None.</p>");
    }
    writeln!(w, "<table>")?;
    for (k, v) in &s.failures_by_code {
        writeln!(w, "<tr><th>{}</th><td class=\"n\" data-k=\"failure:{}\">{v}</td></tr>", escape(k), escape(k))?;
    }
    writeln!(w, "</table>")
}

/// The page's first section: the unreviewed blocked images, oldest first,
/// and the count of stale reviews.
fn write_queue_html(w: &mut dyn Write, s: &ReviewSummary, queue: &[QueueRow]) -> io::Result<()> {
    writeln!(
        w,
        "<h2 data-k=\"review_queue\">Review queue: <span data-k=\"unreviewed_blocked\">{}</span> blocked images without a decision{}</h2>",
        s.unreviewed_blocked,
        match (&s.oldest_unreviewed_since, s.oldest_unreviewed_age_days) {
            (Some(since), Some(age)) => format!(
                ", the oldest blocked since {} (<span data-k=\"oldest_unreviewed_age_days\">{age}</span> days)",
                escape(since)
            ),
            _ => String::new(),
        }
    )?;
    if !queue.is_empty() {
        writeln!(w, "<table><tr><th>Blocked since</th><th>Image</th><th>Title</th><th>Category</th><th>Why</th></tr>")?;
        for q in queue {
            writeln!(
                w,
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&q.blocked_since),
                escape(&q.image_id),
                escape(q.title.as_deref().unwrap_or_default()),
                escape(&q.category),
                escape(&q.reasons)
            )?;
        }
        writeln!(w, "</table>")?;
        if s.unreviewed_blocked > queue.len() as u64 {
            writeln!(
                w,
                "<p>and {} more in images.csv (blocked_since set, review_decision empty)</p>",
                s.unreviewed_blocked - queue.len() as u64
            )?;
        }
    }
    if let Some(ledger) = &s.ledger {
        writeln!(
            w,
            "<p>Review ledger {}: <span data-k=\"stale_reviews\">{}</span> reviews no longer apply (the image is not blocked, or not in this run; listed in summary.json).</p>",
            escape(ledger),
            s.stale_count
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::model::ImageInfo;
    use crate::run::outcome::Outcome;

    #[test]
    fn hostile_text_is_escaped_and_no_script_is_emitted() {
        let info = ImageInfo {
            title: Some("<script>alert(1)</script>\"'&".into()),
            audit_status: Some("Blocked".into()),
            cate_id: Some(1),
            cate_name: Some("<img src=x onerror=alert(1)>".into()),
            url: Some("javascript:alert(1)".into()),
            ..Default::default()
        };
        let rec = Outcome::found("a".into(), info, 1, None).record();
        let mut s = crate::report::summary::summarize(1, 0, 0, [&rec]);
        s.ledger.found = 1;
        let page = PageInfo {
            started: "s",
            finished: "f",
            input: "<in>",
            input_sha256: "x",
            endpoint: "e",
            region: "r",
            account: None,
            newly_blocked: &[],
            trend: &[],
            disagreements: &[],
            review_queue: &[],
            missing: &[],
            unknown: &[],
            unblocked: &[],
            newly_missing: &[],
            images_csv_sha256: None,
        };
        let mut buf = Vec::new();
        write_summary_html(&mut buf, &s, &page, &mut [&rec].into_iter()).unwrap();
        let html = String::from_utf8(buf).unwrap();
        assert!(!html.to_lowercase().contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("href=\"javascript"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;"));
        assert!(html.contains("default-src 'none'"));
    }
}
