//! What changed between two runs: `newly_blocked`, `unblocked`,
//! `newly_missing`, `reappeared`, `status_changed`, `category_changed`,
//! `audit_status_appeared`, and between two inventories (`--all-images`)
//! `new_image`: an image listed tonight and not before. An image listed
//! before and not tonight is `newly_missing` there (after: `not listed`).
//!
//! Blocked means the verdict ([`ImageRecord::is_blocked`]); a run written
//! before the verdict had its own column is read by what its `audit_status`
//! stood for, so tonight compares with last night across the change.
//!
//! A change the two runs' settings explain is no news about the account:
//! when the earlier run used another `--audit-source` or `--api` (read from
//! its manifest), the changes those settings make to a row (the verdict,
//! whether `AuditStatus` is there) carry `explained_by` (the setting, as
//! `audit-source image-info to both`), are counted apart in `explained`, and
//! `--fail-on` leaves them out. What the account says about an image's
//! existence, status or category is never explained by a setting.
//!
//! Owns the change rules (a pure function of two records) and the merge-join
//! of two `images.csv` files, which are sorted by `image_id`: memory stays
//! flat however many ids there are. Finding the previous run is
//! [`crate::rundir::find_previous`]'s job.

use std::collections::BTreeMap;
use std::io::{self, Read};

use serde::{Deserialize, Serialize};

use crate::domain::record::{IdOrder, ImageRecord, OutcomeKind};
use crate::domain::verdict::Verdict;

/// The kinds of change, in report order.
pub(crate) const CHANGE_KINDS: &[&str] = &[
    "newly_blocked",
    "unblocked",
    "newly_missing",
    "reappeared",
    "status_changed",
    "category_changed",
    "audit_status_appeared",
    "new_image",
];

/// The `changes.csv` header, in order.
pub(crate) const CHANGES_COLUMNS: &[&str] = &[
    "image_id",
    "change",
    "before",
    "after",
    "title",
    "cate_id",
    "cate_name",
    "image_url",
    "before_cate_id",
    "before_cate_name",
    "explained_by",
];

/// One row of `changes.csv`: what changed, and enough of the image to act
/// on it without opening `images.csv`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub image_id: String,
    pub change: &'static str,
    pub before: String,
    pub after: String,
    /// The image as tonight's run found it, or as last seen when it is
    /// newly missing.
    pub title: Option<String>,
    pub cate_id: Option<i64>,
    pub cate_name: Option<String>,
    pub image_url: Option<String>,
    /// The category the earlier run saw (for `category_changed`, the
    /// "before"; `cate_id`/`cate_name` are the "after").
    pub before_cate_id: Option<i64>,
    pub before_cate_name: Option<String>,
    /// The change of settings between the two runs that explains this
    /// change (`audit-source image-info to both`); none for news.
    pub explained_by: Option<String>,
}

/// A setting that changes what a row says, different in the earlier run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingChange {
    /// The flag's name: `audit-source`, `api`, `id-column`.
    pub name: &'static str,
    pub before: String,
    pub after: String,
}

impl std::fmt::Display for SettingChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} to {}", self.name, self.before, self.after)
    }
}

/// The settings that change what a row says, as the earlier run's manifest
/// and this run have them: `--audit-source`, `--api` and the id column.
/// A manifest written before a setting existed ran with its default.
pub(crate) fn settings_changes(
    before: &crate::rundir::manifest::Manifest,
    audit_source: &str,
    api: &str,
    id_column: &str,
) -> Vec<SettingChange> {
    let or = |v: &str, default: &str| if v.is_empty() { default.to_owned() } else { v.to_owned() };
    [
        ("audit-source", or(&before.settings.audit_source, "image-info"), audit_source),
        ("api", or(&before.settings.api, "single"), api),
        ("id-column", before.input.id_column.clone(), id_column),
    ]
    .into_iter()
    .filter(|(_, b, a)| b != a)
    .map(|(name, before, after)| SettingChange { name, before, after: after.to_owned() })
    .collect()
}

/// Which setting change, if any, explains a change: the verdict and
/// `AuditStatus` depend on where the verdict comes from (`audit-source`);
/// whether `AuditStatus` is in an answer, and so a verdict that was unknown,
/// on the API asked (`api`). `before`: the earlier record, if the id was in
/// both runs.
fn explained_by(c: &Change, before: Option<&ImageRecord>, settings: &[SettingChange]) -> Option<String> {
    let named = |name: &str| settings.iter().find(|s| s.name == name).map(ToString::to_string);
    let verdict_kind = matches!(c.change, "newly_blocked" | "unblocked" | "audit_status_appeared");
    if !verdict_kind {
        return None;
    }
    let unknown_before = before.is_none_or(|b| b.verdict().is_none_or(|v| v == Verdict::Unknown));
    named("audit-source")
        .or_else(|| (c.change == "audit_status_appeared" || unknown_before).then(|| named("api")).flatten())
}

/// Counts of a comparison, for the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeCounts {
    /// The run compared with (its directory).
    pub compared_with: Option<String>,
    /// Per change kind, every kind present (zero included).
    pub counts: BTreeMap<String, u64>,
    /// Ids settled (found or missing) in both runs and compared.
    pub compared: u64,
    /// Ids in only one of the runs, or failed in either: not compared.
    pub not_compared: u64,
    /// Per change kind, how many of `counts` a change of settings explains
    /// (kinds with none left out): `--fail-on` does not count them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub explained: BTreeMap<String, u64>,
    /// The settings the earlier run had otherwise (`audit-source image-info to both`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings_changed: Vec<String>,
}

impl ChangeCounts {
    fn new(compared_with: Option<String>) -> Self {
        ChangeCounts {
            compared_with,
            counts: CHANGE_KINDS.iter().map(|k| ((*k).to_owned(), 0)).collect(),
            compared: 0,
            not_compared: 0,
            explained: BTreeMap::new(),
            settings_changed: Vec::new(),
        }
    }

    /// The changes of a kind that are news: those no change of settings explains.
    pub fn news(&self, kind: &str) -> u64 {
        let all = self.counts.get(kind).copied().unwrap_or(0);
        all - self.explained.get(kind).copied().unwrap_or(0).min(all)
    }

    fn add(&mut self, c: &Change) {
        *self.counts.entry(c.change.to_owned()).or_default() += 1;
        if c.explained_by.is_some() {
            *self.explained.entry(c.change.to_owned()).or_default() += 1;
        }
    }
}

/// A record's state as a change shows it: the verdict of a found image
/// (of an old record, what its `audit_status` stood for), else the outcome.
fn audit_text(r: &ImageRecord) -> String {
    match r.verdict() {
        Some(v) => v.as_str().to_owned(),
        None => r.outcome.as_str().to_owned(),
    }
}

const BLOCKED: &str = Verdict::Blocked.as_str();

/// The changes of one id between two settled records (found or missing).
pub(crate) fn classify(before: &ImageRecord, after: &ImageRecord) -> Vec<Change> {
    let mut out = Vec::new();
    // The image as it is now, or as it was last seen.
    let seen = if after.outcome == OutcomeKind::Found { after } else { before };
    let mut push = |change: &'static str, b: String, a: String| {
        out.push(Change {
            image_id: after.image_id.clone(),
            change,
            before: b,
            after: a,
            title: seen.title.clone(),
            cate_id: seen.cate_id,
            cate_name: seen.cate_name.clone(),
            image_url: seen.url.clone(),
            before_cate_id: before.cate_id,
            before_cate_name: before.cate_name.clone(),
            explained_by: None,
        })
    };
    use OutcomeKind::{Found, Missing};
    match (before.outcome, after.outcome) {
        (Found, Missing) => push("newly_missing", audit_text(before), "missing".into()),
        (Missing, Found) => {
            push("reappeared", "missing".into(), audit_text(after));
            if after.is_blocked() {
                push("newly_blocked", "missing".into(), BLOCKED.into());
            }
        }
        (Found, Found) => {
            if !before.is_blocked() && after.is_blocked() {
                push("newly_blocked", audit_text(before), audit_text(after));
            }
            if before.is_blocked() && !after.is_blocked() {
                push("unblocked", audit_text(before), audit_text(after));
            }
            if before.audit_status.is_none() && after.audit_status.is_some() {
                push("audit_status_appeared", String::new(), after.audit_status.clone().unwrap_or_default());
            }
            if before.status != after.status {
                push(
                    "status_changed",
                    before.status.clone().unwrap_or_default(),
                    after.status.clone().unwrap_or_default(),
                );
            }
            if before.cate_id != after.cate_id {
                push("category_changed", before.category_label(), after.category_label());
            }
        }
        _ => {}
    }
    out
}

/// A change of an image that only one of two inventories lists.
fn one_sided(r: &ImageRecord, change: &'static str, before: String, after: String) -> Change {
    Change {
        image_id: r.image_id.clone(),
        change,
        before,
        after,
        title: r.title.clone(),
        cate_id: r.cate_id,
        cate_name: r.cate_name.clone(),
        image_url: r.url.clone(),
        before_cate_id: None,
        before_cate_name: None,
        explained_by: None,
    }
}

/// What `after` says of an image the old inventory did not list: a new
/// image (and newly blocked, when it is).
fn listed_now(after: &ImageRecord) -> Vec<Change> {
    let mut v = vec![one_sided(after, "new_image", String::new(), audit_text(after))];
    if after.is_blocked() {
        v.push(one_sided(after, "newly_blocked", String::new(), BLOCKED.into()));
    }
    v
}

/// What `before` says of an image the new inventory does not list.
fn listed_no_more(before: &ImageRecord) -> Change {
    Change {
        before_cate_id: before.cate_id,
        before_cate_name: before.cate_name.clone(),
        ..one_sided(before, "newly_missing", audit_text(before), "not listed".into())
    }
}

fn settled(r: &ImageRecord) -> bool {
    matches!(r.outcome, OutcomeKind::Found | OutcomeKind::Missing)
}

/// Reads `images.csv` as records.
pub(crate) fn records_from_csv<R: Read>(r: R, what: &'static str) -> impl Iterator<Item = io::Result<ImageRecord>> {
    csv::Reader::from_reader(r)
        .into_deserialize::<ImageRecord>()
        .map(move |row| row.map_err(|e| io::Error::other(format!("{what}: {e}"))))
}

/// Pulls records, refusing any out of `image_id` order.
struct Sorted<I> {
    rows: I,
    order: IdOrder,
    what: &'static str,
}

impl<I: Iterator<Item = io::Result<ImageRecord>>> Sorted<I> {
    fn new(rows: I, what: &'static str) -> Self {
        Sorted { rows, order: IdOrder::default(), what }
    }

    fn next(&mut self) -> io::Result<Option<ImageRecord>> {
        let Some(row) = self.rows.next() else { return Ok(None) };
        let row = row?;
        self.order.next(&row.image_id).map_err(|e| io::Error::other(format!("{}: {e}", self.what)))?;
        Ok(Some(row))
    }
}

/// Merge-joins two record streams sorted by `image_id` (the older run's and
/// the newer one's), hands every change to `emit`, and returns the counts.
/// Input out of order is an error: the join would silently miss ids.
/// `inventories`: both runs audited the whole account (`--all-images`), so
/// an id in one run only is a change (`new_image`, `newly_missing`), not
/// a difference of inputs.
/// The changes that `settings` (the settings the earlier run had
/// otherwise, [`settings_changes`]) explain are marked so.
pub(crate) fn compare_with_settings(
    old: impl Iterator<Item = io::Result<ImageRecord>>,
    new: impl Iterator<Item = io::Result<ImageRecord>>,
    compared_with: Option<String>,
    inventories: bool,
    settings: &[SettingChange],
    mut emit: impl FnMut(&Change) -> io::Result<()>,
) -> io::Result<ChangeCounts> {
    let mut counts = ChangeCounts::new(compared_with);
    counts.settings_changed = settings.iter().map(ToString::to_string).collect();
    let mut emit = |mut c: Change, before: Option<&ImageRecord>| {
        c.explained_by = explained_by(&c, before, settings);
        counts.add(&c);
        emit(&c)
    };
    let mut old = Sorted::new(old, "the older run's images");
    let mut new = Sorted::new(new, "the newer run's images");
    let (mut a, mut b) = (old.next()?, new.next()?);
    let (mut compared, mut not_compared) = (0, 0);
    loop {
        let order = match (&a, &b) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(x), Some(y)) => x.image_id.cmp(&y.image_id),
        };
        match order {
            std::cmp::Ordering::Less => {
                match a.as_ref().filter(|x| inventories && settled(x)) {
                    Some(x) => {
                        compared += 1;
                        emit(listed_no_more(x), Some(x))?;
                    }
                    None => not_compared += 1,
                }
                a = old.next()?;
            }
            std::cmp::Ordering::Greater => {
                match b.as_ref().filter(|y| inventories && settled(y)) {
                    Some(y) => {
                        compared += 1;
                        for c in listed_now(y) {
                            emit(c, None)?;
                        }
                    }
                    None => not_compared += 1,
                }
                b = new.next()?;
            }
            std::cmp::Ordering::Equal => {
                let (x, y) = (a.as_ref().expect("both present"), b.as_ref().expect("both present"));
                if settled(x) && settled(y) {
                    compared += 1;
                    for c in classify(x, y) {
                        emit(c, Some(x))?;
                    }
                } else {
                    not_compared += 1;
                }
                a = old.next()?;
                b = new.next()?;
            }
        }
    }
    counts.compared = compared;
    counts.not_compared = not_compared;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::model::ImageInfo;
    use crate::run::outcome::Outcome;

    fn found(id: &str, audit: Option<&str>, status: &str, cate: Option<i64>) -> ImageRecord {
        let info = ImageInfo {
            audit_status: audit.map(Into::into),
            status: Some(status.into()),
            cate_id: cate,
            cate_name: cate.map(|c| format!("cat{c}")),
            ..Default::default()
        };
        Outcome::found(id.into(), info, 1, None).record()
    }

    fn missing(id: &str) -> ImageRecord {
        Outcome::missing(id.into(), 1, None).record()
    }

    fn kinds(b: &ImageRecord, a: &ImageRecord) -> Vec<&'static str> {
        classify(b, a).into_iter().map(|c| c.change).collect()
    }

    /// Compares one id under `settings`, returning each change's kind and explanation.
    fn explained(b: &ImageRecord, a: &ImageRecord, settings: &[SettingChange]) -> Vec<(&'static str, Option<String>)> {
        let mut got = Vec::new();
        compare_with_settings([Ok(b.clone())].into_iter(), [Ok(a.clone())].into_iter(), None, false, settings, |c| {
            got.push((c.change, c.explained_by.clone()));
            Ok(())
        })
        .unwrap();
        got
    }

    #[test]
    fn a_change_of_settings_explains_verdict_changes_only() {
        let source = SettingChange { name: "audit-source", before: "image-info".into(), after: "both".into() };
        let api = SettingChange { name: "api", before: "batch".into(), after: "single".into() };
        let by = |s: &SettingChange| Some(s.to_string());
        let unknown = found("x", None, "Normal", Some(1));
        let normal = found("x", Some("Normal"), "Normal", Some(1));
        let blocked_moved = found("x", Some("Blocked"), "UploadFail", Some(2));
        // The verdict source changed: every verdict change is explained, the status and category are news.
        assert_eq!(
            explained(&normal, &blocked_moved, std::slice::from_ref(&source)),
            [("newly_blocked", by(&source)), ("status_changed", None), ("category_changed", None)]
        );
        // The API changed: AuditStatus appearing, and a verdict that was unknown, are explained...
        assert_eq!(
            explained(&unknown, &found("x", Some("Blocked"), "Normal", Some(1)), std::slice::from_ref(&api)),
            [("newly_blocked", by(&api)), ("audit_status_appeared", by(&api))]
        );
        // ... a definite verdict that turned is news.
        assert_eq!(
            explained(&normal, &found("x", Some("Blocked"), "Normal", Some(1)), std::slice::from_ref(&api)),
            [("newly_blocked", None)]
        );
        // The same settings: nothing is explained, and --fail-on counts all.
        let mut counts = None;
        compare_with_settings(
            [Ok(normal.clone())].into_iter(),
            [Ok(blocked_moved.clone())].into_iter(),
            None,
            false,
            &[],
            |_| Ok(()),
        )
        .map(|c| counts = Some(c))
        .unwrap();
        let counts = counts.unwrap();
        assert_eq!(counts.news("newly_blocked"), 1);
        assert!(counts.explained.is_empty() && counts.settings_changed.is_empty());
        let c = compare_with_settings(
            [Ok(normal)].into_iter(),
            [Ok(blocked_moved)].into_iter(),
            None,
            false,
            &[source],
            |_| Ok(()),
        )
        .unwrap();
        assert_eq!((c.counts["newly_blocked"], c.news("newly_blocked"), c.news("status_changed")), (1, 0, 1));
        assert_eq!(c.settings_changed, ["audit-source image-info to both"]);
    }

    #[test]
    fn each_change_kind() {
        let n = found("x", Some("Normal"), "Normal", Some(1));
        assert_eq!(kinds(&n, &found("x", Some("Blocked"), "Normal", Some(1))), ["newly_blocked"]);
        assert_eq!(kinds(&found("x", Some("Blocked"), "Normal", Some(1)), &n), ["unblocked"]);
        assert_eq!(kinds(&n, &missing("x")), ["newly_missing"]);
        assert_eq!(kinds(&missing("x"), &n), ["reappeared"]);
        assert_eq!(kinds(&missing("x"), &found("x", Some("Blocked"), "Normal", None)), ["reappeared", "newly_blocked"]);
        assert_eq!(kinds(&n, &found("x", Some("Normal"), "UploadFail", Some(1))), ["status_changed"]);
        assert_eq!(kinds(&n, &found("x", Some("Normal"), "Normal", Some(2))), ["category_changed"]);
        assert_eq!(kinds(&n, &found("x", Some("Normal"), "Normal", None)), ["category_changed"]);
        assert_eq!(kinds(&found("x", None, "Normal", Some(1)), &n), ["audit_status_appeared"]);
        assert_eq!(
            kinds(&found("x", None, "Normal", Some(1)), &found("x", Some("Blocked"), "Normal", Some(1))),
            ["newly_blocked", "audit_status_appeared"]
        );
        assert!(kinds(&n, &n).is_empty());
        assert!(kinds(&missing("x"), &missing("x")).is_empty());
        let c = classify(&n, &found("x", Some("Normal"), "Normal", Some(2)));
        assert_eq!((c[0].before.as_str(), c[0].after.as_str()), ("1 cat1", "2 cat2"));
    }

    fn csv_of(records: &[ImageRecord]) -> Vec<u8> {
        let mut buf = Vec::new();
        crate::report::write::write_images_csv(&mut buf, records).unwrap();
        buf
    }

    #[test]
    fn merge_join_counts_and_rows() {
        let old = csv_of(&[
            found("a", Some("Normal"), "Normal", None),
            found("b", Some("Blocked"), "Normal", None),
            missing("c"),
            found("d", Some("Normal"), "Normal", None),
        ]);
        let new = csv_of(&[
            found("a", Some("Blocked"), "Normal", None),
            found("b", Some("Blocked"), "Normal", None),
            found("c", Some("Normal"), "Normal", None),
            found("e", Some("Normal"), "Normal", None),
        ]);
        let mut rows = Vec::new();
        let counts = compare_with_settings(
            records_from_csv(&old[..], "old"),
            records_from_csv(&new[..], "new"),
            Some("old".into()),
            false,
            &[],
            |c| {
                rows.push(c.clone());
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(counts.compared, 3);
        assert_eq!(counts.not_compared, 2, "d only in old, e only in new");
        assert_eq!(counts.counts["newly_blocked"], 1);
        assert_eq!(counts.counts["reappeared"], 1);
        assert_eq!(counts.counts["unblocked"], 0);
        assert_eq!(
            rows.iter().map(|c| (c.image_id.as_str(), c.change)).collect::<Vec<_>>(),
            [("a", "newly_blocked"), ("c", "reappeared")]
        );
    }

    #[test]
    fn unsorted_input_is_an_error() {
        let old = csv_of(&[missing("b"), missing("a")]);
        let new = csv_of(&[missing("a")]);
        assert!(compare_with_settings(
            records_from_csv(&old[..], "o"),
            records_from_csv(&new[..], "n"),
            None,
            false,
            &[],
            |_| Ok(())
        )
        .is_err());
    }
}
