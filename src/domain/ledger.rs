//! The completeness ledger: the sums that prove every input row was
//! accounted for. The manifest stores it, the reports print it, `verify`
//! checks it.
//!
//! Owns the ledger's one list of rows ([`Ledger::ROWS`]): every format that
//! shows the ledger (`summary.csv`, the page, the workbook, the metrics,
//! `verify`) iterates it, so none can leave a row out or name it otherwise.

use serde::{Deserialize, Serialize};

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
    /// Never called: the run stopped first.
    #[serde(default)]
    pub not_attempted: u64,
    pub unaccounted: u64,
    #[serde(default)]
    pub unaccounted_ids: Vec<String>,
}

/// One row of a list of counts as every format shows it: the key (the
/// same word in every file), the words for people, and where the count is.
pub struct Row<T> {
    pub key: &'static str,
    pub label: &'static str,
    pub count: fn(&T) -> u64,
}

impl Ledger {
    /// The ledger's rows, in the order every format lists them.
    pub const ROWS: [Row<Ledger>; 10] = [
        Row { key: "input_rows", label: "Input rows", count: |l| l.input_rows },
        Row { key: "blank_rows", label: "Blank rows skipped", count: |l| l.blank_rows },
        Row { key: "rejected", label: "Rejected rows (rejected.csv)", count: |l| l.rejected },
        Row { key: "duplicates", label: "Duplicate rows", count: |l| l.duplicates },
        Row { key: "unique_ids", label: "Unique ids", count: |l| l.unique_ids },
        Row { key: "found", label: "Found", count: |l| l.found },
        Row { key: "missing", label: "Missing (NoSuchResource)", count: |l| l.missing },
        Row { key: "failed", label: "Failed", count: |l| l.failed },
        Row { key: "not_attempted", label: "Not attempted (the run stopped first)", count: |l| l.not_attempted },
        Row { key: "unaccounted", label: "Unaccounted", count: |l| l.unaccounted },
    ];

    /// The sums that must hold, in the rows' keys.
    pub const SUMS: &'static str = "input_rows = unique_ids + duplicates + rejected; unique_ids = found + missing + failed + not_attempted + unaccounted";

    /// Each row's key, label and count, in [`Ledger::ROWS`] order.
    pub fn rows(&self) -> impl Iterator<Item = (&'static str, &'static str, u64)> + '_ {
        Self::ROWS.iter().map(move |r| (r.key, r.label, (r.count)(self)))
    }

    /// The sums that must hold; each broken one, described.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.input_rows != self.unique_ids + self.duplicates + self.rejected {
            p.push(format!(
                "input_rows {} != unique_ids {} + duplicates {} + rejected {}",
                self.input_rows, self.unique_ids, self.duplicates, self.rejected
            ));
        }
        if self.unique_ids != self.found + self.missing + self.failed + self.not_attempted + self.unaccounted {
            p.push(format!(
                "unique_ids {} != found {} + missing {} + failed {} + not_attempted {} + unaccounted {}",
                self.unique_ids, self.found, self.missing, self.failed, self.not_attempted, self.unaccounted
            ));
        }
        if self.unaccounted > 0 {
            p.push(format!("{} ids unaccounted for: {:?}", self.unaccounted, self.unaccounted_ids));
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_row_reads_its_own_field_under_its_field_s_name() {
        let l = Ledger {
            input_rows: 1,
            blank_rows: 2,
            rejected: 3,
            duplicates: 4,
            unique_ids: 5,
            found: 6,
            missing: 7,
            failed: 8,
            not_attempted: 9,
            unaccounted: 10,
            unaccounted_ids: Vec::new(),
        };
        // The keys are the serialized field names: the manifest's and
        // summary.json's words are the reports' words.
        let json = serde_json::to_value(&l).unwrap();
        for (key, _, count) in l.rows() {
            assert_eq!(json[key], count, "{key}");
        }
        let counts: Vec<u64> = l.rows().map(|r| r.2).collect();
        assert_eq!(counts, (1..=10).collect::<Vec<u64>>());
    }
}
