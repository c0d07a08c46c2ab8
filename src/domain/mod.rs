//! The shared domain types, at the bottom of the layers: every other
//! module may use them and they use none of them.
//!
//! - [`id`]: what an image id may be.
//! - [`record`]: an image's report record and its outcome kind, a rejected
//!   input row, the order ids come in.
//! - [`verdict`]: the words of a verdict.
//! - [`ledger`]: where every input row went.

pub mod id;
pub mod ledger;
pub mod record;
pub mod verdict;
