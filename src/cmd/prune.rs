//! `prune REPORTS_DIR --keep-last N [--keep-daily D] [--dry-run]`: removes
//! old complete runs from the reports folder.
//!
//! Owns which runs are kept and why. It removes only what it can prove is a
//! finished run it wrote: a manifest that says complete and that `verify`
//! passes (every file it lists matches its digest), its lock free, and
//! nothing in the directory but the files that manifest lists (and the
//! tool's own temporary files). Every other directory is kept, and named
//! with the reason. A journal left beside a complete run that verifies (the
//! run was killed after its manifest, before removing it) is removed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::cli::PruneArgs;
use super::error::{CmdError, CmdResult, Exit};
use crate::report::verify;
use crate::rundir::files::is_temp_name;
use crate::rundir::lock::{LockError, RunLock};
use crate::rundir::manifest::{Manifest, ManifestError};
use crate::rundir::{AWAITING, INVENTORY_JOURNAL, JOURNAL, LOCK, MANIFEST_JSON, MANIFEST_SHA256};

/// A run directory found in the reports folder.
struct Found {
    name: String,
    path: PathBuf,
    state: State,
}

enum State {
    /// A complete run: a candidate for removal.
    Complete { finished: SystemTime, compared_with: Option<String>, listed: Vec<String> },
    /// Never removed, for this reason; what it compares with is kept too.
    Kept { why: String, compared_with: Option<String> },
}

/// Why a complete run is kept by the rules, if it is.
fn rule_reasons(runs: &[(&str, SystemTime)], keep_last: usize, keep_daily: usize) -> BTreeMap<String, String> {
    let mut newest_first: Vec<&(&str, SystemTime)> = runs.iter().collect();
    newest_first.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(a.0)));
    let mut why = BTreeMap::new();
    for (name, _) in newest_first.iter().take(keep_last) {
        why.insert((*name).to_owned(), format!("one of the {keep_last} newest (--keep-last)"));
    }
    // As restic counts them: the last D days that have a run, each its newest.
    let mut days: Vec<String> = Vec::new();
    for (name, finished) in &newest_first {
        let day = humantime::format_rfc3339_seconds(*finished).to_string()[..10].to_owned();
        if days.contains(&day) {
            continue;
        }
        if days.len() == keep_daily {
            break;
        }
        why.entry((*name).to_owned()).or_insert_with(|| format!("the newest of {day} (--keep-daily {keep_daily})"));
        days.push(day);
    }
    why
}

/// Whether `compared_with`, as a manifest recorded it (relative to where
/// that run was started, or absolute), may name `dir`. Loose on purpose: the
/// same final name counts, so a doubt keeps a run rather than removes it.
fn names_dir(compared_with: &str, dir: &Path) -> bool {
    let named = Path::new(compared_with);
    let same_file = match (std::fs::canonicalize(named), std::fs::canonicalize(dir)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    same_file || (named.file_name().is_some() && named.file_name() == dir.file_name())
}

/// The entries of a run directory that its manifest does not list (nor
/// the manifest itself, the lock, or a temporary file of the tool's).
fn foreign_entries(dir: &Path, listed: &[String]) -> std::io::Result<Vec<String>> {
    let ours = |name: &str| {
        listed.iter().any(|l| l == name) || [MANIFEST_JSON, MANIFEST_SHA256, LOCK].contains(&name) || is_temp_name(name)
    };
    let mut foreign = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !ours(&name) || !entry.file_type()?.is_file() {
            foreign.push(name);
        }
    }
    foreign.sort();
    Ok(foreign)
}

/// A complete run's journal, left by a kill after the manifest was written
/// (see `cmd::audit`): its reports hold everything it did, so it goes,
/// unless the run's lock is held. Says what it did or would do.
fn remove_leftover_journal(path: &Path, shown: &str, dry_run: bool) -> Result<(), String> {
    if dry_run {
        println!("would remove the journal left beside the complete run {shown}");
        return Ok(());
    }
    let lock = RunLock::acquire(path).map_err(|e| e.to_string())?;
    for name in [INVENTORY_JOURNAL, AWAITING, JOURNAL] {
        match std::fs::remove_file(path.join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(format!("removing {name}: {e}")),
            _ => {}
        }
    }
    drop(lock);
    println!("removed the journal left beside the complete run {shown}");
    Ok(())
}

fn classify(name: String, path: PathBuf, parent: &Path, dry_run: bool) -> Found {
    let shown = parent.join(&name).display().to_string();
    let state = match Manifest::read(&path) {
        Err(ManifestError::Absent { .. }) => {
            State::Kept { why: "no manifest: not a finished run".into(), compared_with: None }
        }
        Err(e) => State::Kept { why: format!("its manifest cannot be read ({e})"), compared_with: None },
        Ok(m) if !m.complete => {
            State::Kept { why: "incomplete (the manifest says complete: false)".into(), compared_with: m.compared_with }
        }
        Ok(m) => match verify::verify(&path, None) {
            Err(e) => State::Kept { why: format!("its manifest cannot be read ({e})"), compared_with: m.compared_with },
            Ok(v) if !v.problems.is_empty() => State::Kept {
                why: format!("its files do not match its manifest ({})", v.problems.join("; ")),
                compared_with: m.compared_with,
            },
            Ok(_) => {
                let journal = [JOURNAL, AWAITING, INVENTORY_JOURNAL].iter().any(|j| path.join(j).exists());
                match journal.then(|| remove_leftover_journal(&path, &shown, dry_run)) {
                    Some(Err(e)) => State::Kept {
                        why: format!("a journal is present and cannot be removed ({e})"),
                        compared_with: m.compared_with,
                    },
                    _ => match humantime::parse_rfc3339_weak(&m.finished) {
                        Ok(finished) => State::Complete {
                            finished,
                            compared_with: m.compared_with.clone(),
                            listed: m.files.iter().map(|f| f.name.clone()).collect(),
                        },
                        Err(e) => State::Kept {
                            why: format!("the manifest's finished time {:?} cannot be read ({e})", m.finished),
                            compared_with: m.compared_with,
                        },
                    },
                }
            }
        },
    };
    Found { name, path, state }
}

/// `prune`: which runs are kept and why, then the others removed.
pub(crate) fn prune(a: &PruneArgs) -> CmdResult {
    let keep_last = keep_last(a)?;
    let found = scan(&a.dir, a.dry_run)?;
    let why_kept = decide(&found, &a.dir, keep_last, a.keep_daily.unwrap_or(0));
    let mut rows = Vec::new();
    for f in &found {
        let shown = f.display(&a.dir);
        let done = match why_kept.get(&f.name) {
            Some(why) => Disposal::Kept(why.clone()),
            None => dispose(f, &shown, a.dry_run),
        };
        if !a.json {
            done.print(&shown);
        }
        rows.push((shown, done));
    }
    let failed = rows.iter().any(|(_, d)| matches!(d, Disposal::Failed(_)));
    let exit = if failed { Exit::Stopped } else { Exit::Ok };
    if a.json {
        let runs: Vec<serde_json::Value> = rows.iter().map(|(shown, d)| d.json(shown)).collect();
        println!("{}", serde_json::json!({"dir": a.dir.display().to_string(), "runs": runs, "exit_code": exit.code()}));
    }
    Ok(exit)
}

/// What became of one run directory.
enum Disposal {
    Kept(String),
    WouldRemove,
    Removed,
    Failed(String),
}

impl Disposal {
    /// The line of the text output (a failure is said on stderr only).
    fn print(&self, shown: &str) {
        match self {
            Disposal::Kept(why) => println!("kept {shown}: {why}"),
            Disposal::WouldRemove => println!("would remove {shown}"),
            Disposal::Removed => println!("removed {shown}"),
            Disposal::Failed(_) => {}
        }
    }

    /// The run's entry in `--json`'s `runs`.
    fn json(&self, shown: &str) -> serde_json::Value {
        let (action, why) = match self {
            Disposal::Kept(why) => ("kept", Some(why.as_str())),
            Disposal::WouldRemove => ("would_remove", None),
            Disposal::Removed => ("removed", None),
            Disposal::Failed(why) => ("failed", Some(why.as_str())),
        };
        serde_json::json!({"run": shown, "action": action, "why": why})
    }
}

/// `--keep-last`, checked: the newest run is what the next one compares
/// with, so `--keep-last 1`, or `--keep-daily` (whose newest day holds the
/// newest run), keeps it. `--keep-daily` alone keeps no count of newest (0).
fn keep_last(a: &PruneArgs) -> Result<usize, CmdError> {
    match (a.keep_last, a.keep_daily) {
        (Some(0), _) => {
            Err(CmdError::usage("--keep-last must be at least 1: the newest run is what the next one compares with"))
        }
        (None, None | Some(0)) => Err(CmdError::usage(
            "give --keep-last N (the N newest runs), --keep-daily D (the newest of each of the last D days, at least 1) or both",
        )),
        (Some(n), _) => Ok(n),
        (None, Some(_)) => Ok(0),
    }
}

/// The run directories in `dir`, classified, by name.
fn scan(dir: &Path, dry_run: bool) -> Result<Vec<Found>, CmdError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        CmdError::usage(format!("prune {}: {e} (name the folder that holds the run directories)", dir.display()))
    })?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| CmdError::usage(format!("prune {}: {e}", dir.display())))?;
        // A link is not followed: what it leads to is not this folder's to remove.
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            found.push(classify(entry.file_name().to_string_lossy().into_owned(), entry.path(), dir, dry_run));
        }
    }
    found.sort_by(|x, y| x.name.cmp(&y.name));
    Ok(found)
}

/// Why each kept run is kept, by name; a run not named is removed. Pure:
/// the rules, the runs that cannot be proved, and what a kept run compares
/// with.
fn decide(found: &[Found], dir: &Path, keep_last: usize, keep_daily: usize) -> BTreeMap<String, String> {
    let complete: Vec<(&str, SystemTime)> = found
        .iter()
        .filter_map(|f| match f.state {
            State::Complete { finished, .. } => Some((f.name.as_str(), finished)),
            State::Kept { .. } => None,
        })
        .collect();
    let mut why_kept = rule_reasons(&complete, keep_last, keep_daily);
    for f in found {
        if let State::Kept { why, .. } = &f.state {
            why_kept.insert(f.name.clone(), why.clone());
        }
    }
    // One level only: a run kept because another compares with it does not
    // keep what it compared with in turn, or nightly `--compare-with auto`
    // would keep every run there is.
    let keepers: Vec<(String, String)> = found
        .iter()
        .filter(|f| why_kept.contains_key(&f.name))
        .filter_map(|f| match &f.state {
            State::Complete { compared_with: Some(c), .. } | State::Kept { compared_with: Some(c), .. } => {
                Some((f.display(dir), c.clone()))
            }
            _ => None,
        })
        .collect();
    for f in found {
        if why_kept.contains_key(&f.name) {
            continue;
        }
        if let Some((by, _)) = keepers.iter().find(|(_, c)| names_dir(c, &f.path)) {
            why_kept.insert(f.name.clone(), format!("compared with by {by}, which is kept"));
        }
    }
    why_kept
}

/// Removes (or, `--dry-run`, names) a run the rules do not keep, unless it
/// is locked or holds files the tool does not write; why a run is kept
/// after all is also said on stderr.
fn dispose(f: &Found, shown: &str, dry_run: bool) -> Disposal {
    let lock = match RunLock::acquire(&f.path) {
        Ok(lock) => lock,
        Err(LockError::Busy { holder, .. }) => {
            return Disposal::Kept(format!("locked by a running vod-image-audit ({holder})"));
        }
        Err(e) => {
            eprintln!("vod-image-audit: prune: not removing {shown}: {e}");
            return Disposal::Kept("its lock cannot be taken".to_owned());
        }
    };
    let State::Complete { listed, .. } = &f.state else { return Disposal::Kept("not a complete run".to_owned()) };
    match foreign_entries(&f.path, listed) {
        Ok(names) if names.is_empty() => {}
        Ok(names) => {
            eprintln!(
                "vod-image-audit: prune: not removing {shown}: it holds files vod-image-audit does not write ({})",
                names.join(", ")
            );
            return Disposal::Kept("holds other files".to_owned());
        }
        Err(e) => {
            eprintln!("vod-image-audit: prune: not removing {shown}: {e}");
            return Disposal::Kept("cannot be listed".to_owned());
        }
    }
    if dry_run {
        return Disposal::WouldRemove;
    }
    match remove_run(&f.path, lock) {
        Ok(()) => Disposal::Removed,
        Err(e) => {
            eprintln!("vod-image-audit: prune: removing {shown}: {e}");
            Disposal::Failed(e.to_string())
        }
    }
}

/// Removes a run's files, the manifest last so that a removal cut short
/// leaves a directory that no longer claims to be a complete run; then the
/// lock (its file goes with it) and the directory.
fn remove_run(dir: &Path, lock: RunLock) -> std::io::Result<()> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.retain(|n| n != LOCK);
    names.sort_by_key(|n| n == crate::rundir::MANIFEST_JSON || n == crate::rundir::MANIFEST_SHA256);
    for name in names {
        std::fs::remove_file(dir.join(name))?;
    }
    drop(lock);
    std::fs::remove_dir(dir)
}

impl Found {
    fn display(&self, parent: &Path) -> String {
        parent.join(&self.name).display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t: &str) -> SystemTime {
        humantime::parse_rfc3339(t).unwrap()
    }

    #[test]
    fn keeps_the_newest_and_the_newest_of_each_recent_day() {
        let runs = [
            ("a", at("2026-01-01T10:00:00Z")),
            ("b", at("2026-01-02T10:00:00Z")),
            ("c", at("2026-01-02T20:00:00Z")),
            ("d", at("2026-01-04T01:00:00Z")),
            ("e", at("2026-01-04T02:00:00Z")),
        ];
        let kept = |n, d| rule_reasons(&runs, n, d).into_keys().collect::<Vec<_>>();
        assert_eq!(kept(1, 0), ["e"]);
        assert_eq!(kept(2, 0), ["d", "e"]);
        assert_eq!(kept(1, 2), ["c", "e"], "days with a run count, not calendar days");
        assert_eq!(kept(1, 9), ["a", "c", "e"]);
        assert!(rule_reasons(&runs, 1, 2)["c"].contains("2026-01-02"));
    }

    fn complete(name: &str, finished: &str, compared_with: Option<&str>) -> Found {
        let state = State::Complete {
            finished: at(finished),
            compared_with: compared_with.map(str::to_owned),
            listed: Vec::new(),
        };
        Found { name: name.to_owned(), path: PathBuf::from("reports").join(name), state }
    }

    /// The decision alone, no file touched: the rules, a run that cannot be
    /// proved, and one level of "compared with by a kept run".
    #[test]
    fn the_decision_keeps_by_rule_by_doubt_and_by_one_level_of_comparison() {
        let found = [
            complete("n1", "2026-01-01T01:00:00Z", None),
            complete("n2", "2026-01-02T01:00:00Z", Some("reports/n1")),
            complete("n3", "2026-01-03T01:00:00Z", Some("reports/n2")),
            complete("n4", "2026-01-04T01:00:00Z", Some("reports/n3")),
            Found {
                name: "odd".to_owned(),
                path: PathBuf::from("reports/odd"),
                state: State::Kept { why: "no manifest".to_owned(), compared_with: Some("n1".to_owned()) },
            },
        ];
        let why = decide(&found, Path::new("reports"), 1, 0);
        assert_eq!(why.keys().collect::<Vec<_>>(), ["n1", "n3", "n4", "odd"], "{why:?}");
        assert!(why["n4"].contains("--keep-last"), "{why:?}");
        assert_eq!(why["n3"], "compared with by reports/n4, which is kept");
        assert_eq!(why["odd"], "no manifest");
        assert_eq!(why["n1"], "compared with by reports/odd, which is kept");
    }

    #[test]
    fn a_comparison_names_a_directory_by_path_or_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("night1");
        std::fs::create_dir(&run).unwrap();
        assert!(names_dir(&run.display().to_string(), &run));
        assert!(names_dir("elsewhere/night1", &run));
        assert!(!names_dir("night2", &run));
    }
}
