//! One audit run, from the ids to the settled outcomes: no report is
//! written here.
//!
//! - [`input`]: reading and validating the ids; [`delimiter`],
//!   [`input_stream`] and [`csv_field`] below it.
//! - [`rate`]: the rate limiter, fixed or adaptive; [`tick_timer`]: its
//!   release tick's timer.
//! - [`retry`]: the retry decision and backoff, pure.
//! - [`engine`]: the rate-limited, concurrent calls, each settled as an
//!   [`outcome::Outcome`]; [`call`]: one call with its retries and guards;
//!   [`lanes`]: the actions and their limiters; [`moderation`]: the
//!   `GetMediaAuditResult` lane; [`settings`], [`counters`].
//! - [`batch`]: filing a batch answer under the ids asked, or refusing it.
//! - [`guard`]: the retry budget, the outage clock, `--max-failures`.
//! - [`journal`]: the crash-safe record of settled ids, for resuming;
//!   [`awaiting`]: found images whose moderation call is still to come.

pub(crate) mod awaiting;
pub(crate) mod batch;
pub(crate) mod call;
pub(crate) mod counters;
pub(crate) mod csv_field;
pub(crate) mod delimiter;
pub(crate) mod engine;
pub(crate) mod guard;
pub(crate) mod input;
pub(crate) mod input_stream;
pub(crate) mod inventory;
pub(crate) mod journal;
pub(crate) mod lanes;
pub(crate) mod moderation;
pub(crate) mod outcome;
pub mod rate;
pub(crate) mod retry;
pub(crate) mod settings;
pub(crate) mod stop;
pub(crate) mod tick_timer;
