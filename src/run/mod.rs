//! One audit run, from the ids to the settled outcomes: no report is
//! written here.
//!
//! - [`input`]: reading and validating the ids.
//! - [`rate`]: the rate limiter, fixed or adaptive.
//! - [`retry`]: the retry decision and backoff, pure.
//! - [`engine`]: the rate-limited, concurrent calls, each settled as an
//!   [`outcome::Outcome`].
//! - [`journal`]: the crash-safe record of settled ids, for resuming.

pub mod engine;
pub mod input;
pub mod journal;
pub mod outcome;
pub mod rate;
pub mod retry;
