//! `vod-image-audit`: a nightly batch audit of images on Alibaba Cloud
//! ApsaraVideo VOD.
//!
//! A CSV of image ids goes in; each id is looked up with the signed OpenAPI
//! call `GetImageInfo`, through one rate limiter and a bounded number of
//! concurrent calls, retried when throttled or when the service hiccups; the
//! results come out as CSV and JSON reports grouped by `AuditStatus`,
//! `Status` and category.
//!
//! Layout, one module per concern:
//!
//! - [`signing`]: RPC signature V1 (HMAC-SHA1), pure.
//! - [`secret`]: the type that never prints a secret.
//! - [`credentials`]: the Alibaba Cloud credential chain and region.
//! - [`model`]: the wire model (`ImageInfo` and the envelopes).
//! - [`api_error`]: a failed call and its class (missing, throttled, ...).
//! - [`client`]: one signed call and the decoding of its answer.
//! - [`retry`]: the retry decision and backoff, pure.
//! - [`rate`]: the rate limiter, fixed or adaptive.
//! - [`input`]: reading and validating the ids.
//! - [`outcome`]: what became of one id, and its report record.
//! - [`audit`]: the rate-limited, concurrent engine.
//! - [`journal`]: the crash-safe record of settled ids, for resuming.
//! - [`digest`]: SHA-256 of inputs and reports.
//! - [`sort`]: sorting outcomes by id in bounded memory (external merge sort).
//! - [`lock`]: one run per output directory.
//! - [`report`]: aggregation and the report files.
//! - [`changes`]: what changed since an earlier run (a merge-join).
//! - [`html`]: the one-page `summary.html`.
//! - [`verify`]: re-checking a finished run directory.
//! - [`progress`]: the progress display.
//! - [`sim`]: the strict local simulator of the VOD endpoint.
//! - [`cli`] and [`app`]: the command line and the commands.

pub mod api_error;
pub mod app;
pub mod audit;
pub mod changes;
pub mod cli;
pub mod client;
pub mod credentials;
pub mod digest;
pub mod html;
pub mod input;
pub mod journal;
pub mod lock;
pub mod model;
pub mod outcome;
pub mod progress;
pub mod rate;
pub mod report;
pub mod retry;
pub mod secret;
pub mod signing;
pub mod sim;
pub mod sort;
pub mod verify;
