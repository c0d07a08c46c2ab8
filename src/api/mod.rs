//! Everything that speaks to the ApsaraVideo VOD OpenAPI, and nothing that
//! knows about runs or reports.
//!
//! - [`signing`]: RPC signature V1 (HMAC-SHA1), pure.
//! - [`secret`]: the type that never prints a secret.
//! - [`credentials`]: the Alibaba Cloud credential chain and region.
//! - [`endpoints`]: the region to endpoint table (VOD and STS).
//! - [`model`]: the wire model (`ImageInfo` and the envelopes).
//! - [`moderation`]: reading `GetMediaAuditResult`: the machine's suggestion and its reasons.
//! - [`error`]: a failed call and its class (missing, throttled, fatal, ...).
//! - [`sts`]: the STS calls, the metadata service and credentials URI answers.
//! - [`provider`]: the key each call signs with, renewed before it expires.
//! - [`client`]: one signed call and the decoding of its answer.
//! - [`proxy`]: which proxy, if any, the calls go through.
//! - [`search`]: `SearchMedia` pages of images, checked against the query.

pub(crate) mod answer;
pub(crate) mod client;
pub(crate) mod credentials;
pub(crate) mod endpoints;
pub(crate) mod error;
pub mod model;
pub(crate) mod moderation;
pub(crate) mod provider;
pub(crate) mod proxy;
pub(crate) mod redact;
pub(crate) mod rpc;
pub(crate) mod search;
pub(crate) mod secret;
pub mod signing;
pub(crate) mod sts;
