//! The completeness ledger: the sums that prove every input row was
//! accounted for. The manifest stores it, the reports print it, `verify`
//! checks it.

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
