//! Everything that speaks to the ApsaraVideo VOD OpenAPI, and nothing that
//! knows about runs or reports.
//!
//! - [`signing`]: RPC signature V1 (HMAC-SHA1), pure.
//! - [`secret`]: the type that never prints a secret.
//! - [`credentials`]: the Alibaba Cloud credential chain and region.
//! - [`model`]: the wire model (`ImageInfo` and the envelopes).
//! - [`error`]: a failed call and its class (missing, throttled, fatal, ...).
//! - [`client`]: one signed call and the decoding of its answer.
//! - [`proxy`]: which proxy, if any, the calls go through.

pub(crate) mod answer;
pub(crate) mod client;
pub(crate) mod credentials;
pub(crate) mod error;
pub mod model;
pub(crate) mod proxy;
pub(crate) mod redact;
pub(crate) mod secret;
pub mod signing;
