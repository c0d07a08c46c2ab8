//! The report pass alone: the sort of the journal's lines, `images.csv`,
//! `images.jsonl`, the summaries and their digests, from a journal of N
//! outcomes in completion order (not id order). Prints the CPU time of each
//! pass (user + sys of this process, `getrusage`) per record, and the median.
//!
//! ```sh
//! cargo bench --bench report_pass                 # 30,000 records, 7 passes
//! cargo bench --bench report_pass -- 100000 5     # N records, passes
//! ```
//!
//! bench/run measures the whole process; this isolates the part of a run
//! that comes after the last call, to compare builds side by side.

use std::io::Write;
use std::time::Instant;

use vod_image_audit::domain::record::{ImageRecord, OutcomeKind};
use vod_image_audit::report::pass::{self, Expected, Format, ReportSettings, RunFacts};
use vod_image_audit::report::sort::Source;
use vod_image_audit::report::write::CsvStyle;

/// A found image shaped like the simulator's answers (about a kilobyte as a
/// JSON line), every 17th blocked and every 29th missing.
fn record(i: u64) -> ImageRecord {
    let id = format!("{:032x}", (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) as u128) << 64 | u128::from(i));
    let missing = i.is_multiple_of(29);
    let text = |s: String| (!missing).then_some(s);
    ImageRecord {
        outcome: if missing { OutcomeKind::Missing } else { OutcomeKind::Found },
        verdict: text(if i.is_multiple_of(17) { "Blocked" } else { "Normal" }.into()),
        verdict_source: text("audit_status".into()),
        audit_status: text(if i.is_multiple_of(17) { "Blocked" } else { "Normal" }.into()),
        moderation_suggestion: None,
        reasons: None,
        abnormal_modules: None,
        disagreement: None,
        unrecognised: None,
        status: text("Normal".into()),
        cate_id: (!missing).then_some(1_000_000 + (i % 7) as i64),
        cate_name: text(format!("Sport, \"Live\" {}", i % 7)),
        title: text(format!("封面图片 {i} <b>&</b>")),
        image_type: text("NormalSnapshot".into()),
        creation_time: text("2024-07-13T00:04:03Z".into()),
        tags: text("tag2,batch-1".into()),
        description: None,
        storage_location: text("outin-00000001.oss-cn-shanghai.aliyuncs.com".into()),
        url: text(format!("https://img.example.com/image/default/{id}.png?auth_key=1700000000-0-0-6670")),
        app_id: text("app-1000000".into()),
        region_id: text("cn-shanghai".into()),
        file_size: text(format!("{}", 100_000 + i * 37 % 900_000)),
        width: (!missing).then_some(640),
        height: (!missing).then_some(480),
        original_file_name: text(format!("upload_{i}.png")),
        file_url: text(format!(
            "https://outin-00000001.oss-cn-shanghai.aliyuncs.com/image/default/{id}.png?Expires=1700000000&OSSAccessKeyId=***&Signature=x%3D"
        )),
        attempts: 1,
        error_code: None,
        error_message: None,
        http_status: None,
        request_id: Some(format!("5B4AFD67-DEA0-2347-9C17-{:012X}", i)),
        review_decision: None,
        reviewer: None,
        reviewed_at: None,
        blocked_since: None,
        image_id: id,
    }
}

fn main() {
    let numbers: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let n = numbers.first().copied().unwrap_or(30_000);
    let passes = numbers.get(1).copied().unwrap_or(7) as usize;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let journal = dir.path().join("journal.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&journal).expect("the journal"));
    f.write_all(b"{\"vod_image_audit_journal\":2,\"input_sha256\":\"x\"}\n").expect("written");
    let mut ids = Vec::with_capacity(n as usize);
    for i in 0..n {
        let r = record(i);
        r.write_line(&mut f).expect("written");
        ids.push(r.image_id);
    }
    f.flush().expect("written");
    drop(f);
    ids.sort();
    let settings = ReportSettings { formats: vec![Format::Csv, Format::Json, Format::Html], csv: CsvStyle::default() };
    let mut per_record = Vec::new();
    for _ in 0..passes {
        let out = dir.path().join("out");
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir(&out).expect("the report directory");
        let expected = Expected {
            input_rows: n,
            blank_rows: 0,
            duplicates: 0,
            unique_ids: n,
            rejected: &[],
            sorted_ids: ids.iter().map(String::as_str),
        };
        let sources = [Source { path: &journal, skip_lines: 1 }];
        let (wall, cpu) = (Instant::now(), cpu_seconds());
        let (summary, _) = pass::write_reports(&out, &settings, expected, &sources, None, &RunFacts::default(), None)
            .expect("the report pass");
        let (cpu, wall) = (cpu_seconds() - cpu, wall.elapsed());
        assert_eq!((summary.ledger.unaccounted, summary.totals.unique_ids), (0, n));
        let us = cpu * 1e6 / n as f64;
        println!("{n} records: {us:.2} µs CPU a record, wall {:.0} ms", wall.as_secs_f64() * 1e3);
        per_record.push(us);
    }
    per_record.sort_by(f64::total_cmp);
    println!("median of {passes}: {:.2} µs CPU a record", per_record[per_record.len() / 2]);
}

/// User + system CPU of this process so far.
fn cpu_seconds() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage fills the struct it is given for RUSAGE_SELF.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}
