//! `vod-image-audit`: a nightly batch audit of images on Alibaba Cloud
//! ApsaraVideo VOD.
//!
//! A CSV of image ids goes in; each id is looked up with the signed OpenAPI
//! call `GetImageInfo`, through one rate limiter and a bounded number of
//! concurrent calls, retried when throttled or when the service hiccups; the
//! results come out as CSV and JSON reports grouped by `AuditStatus`,
//! `Status` and category.
//!
//! The folders are the architecture; each depends only on those above it:
//!
//! - [`domain`]: the shared domain types every layer names: an image id's
//!   rules, the report record and its outcome kind, the verdict's words, the
//!   completeness ledger.
//! - [`api`]: everything that speaks to the VOD OpenAPI: signing, secrets,
//!   credentials, the client, the wire model and the error classes.
//! - [`rundir`]: the run directory on disk: every file name, opening `--out`
//!   (lock, refusal, write probe), safe file creation, the typed manifest.
//! - [`report`]: the report model (summary, verdict rule) and one writer
//!   per file; changes since an earlier run; the HTML page; `verify`; the
//!   report pass that turns the settled outcomes into the files.
//! - [`run`]: one audit: reading the ids, the rate limiter, the retry
//!   policy, the engine, the journal that makes it resumable.
//! - [`sim`] (feature `simulator`): the strict local simulator of the VOD
//!   endpoint that the tests, the demo and the benchmarks talk to.
//! - [`cmd`]: the command line and the commands, the progress display and
//!   the mapping of results to exit codes.

// What is `pub` is what the binary, the tests and the benches use; the
// rest is `pub(crate)`, so that a reader sees which items are the interface.
#![warn(unreachable_pub)]

/// An enum whose variants have one name each, on the command line, in the
/// manifest and on the wire: `NAMES`, `as_str` and `FromStr`, so that the
/// library's settings need no command-line crate.
macro_rules! named_enum {
    ($(#[$m:meta])* $vis:vis enum $name:ident { $($(#[$vm:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            /// Every variant's name, in declaration order.
            $vis const NAMES: &'static [&'static str] = &[$($text),+];

            /// The variant's name.
            $vis const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!("{other:?} is not one of {}", Self::NAMES.join(", "))),
                }
            }
        }
    };
}

pub mod api;
pub mod cmd;
pub mod domain;
pub mod report;
pub mod run;
pub mod rundir;
#[cfg(feature = "simulator")]
pub mod sim;
