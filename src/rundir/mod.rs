//! The run directory (`--out`): the name of every file a run writes there,
//! taking it (lock, refusal of a finished run, write probe), and the file
//! digests the manifest lists.
//!
//! - [`lock`]: one run per directory.
//! - [`digest`]: SHA-256 of the input and of the reports.

pub mod digest;
pub mod lock;
