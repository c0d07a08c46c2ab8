//! A strict local simulator of the VOD `GetImageInfo` / `GetImageInfos`
//! endpoint: what tests, the demo and benchmarks talk to. It never talks to
//! anything but its listener.
//!
//! This module is the server: [`serve`] (and [`serve_tls`] for https with a
//! certificate of the caller's) runs a [`Simulator`] on a listener until a
//! shutdown future resolves. The rest, by concern:
//!
//! - `config`: what the simulator is (keys, catalog, quotas,
//!   faults, STS settings);
//! - `dispatch`: a request to its handler and the wire answer (`wire`);
//! - `auth`: the checks every signed call passes (parameters, key,
//!   signature, timestamp, nonce, STS token);
//! - `quota`: the per-second quota of each action and the throttled answer;
//! - `faults`: seeded fault injection;
//! - `sts`: STS, the ECS metadata service and the credentials URI, on the
//!   same port;
//! - `stats`: the `/__sim/stats` counters;
//! - `search`: `SearchMedia` for images (paging, the media search protocol,
//!   its stats), behind the same checks, quota and faults;
//! - [`catalog`]: the images; [`night`]: how the account changes night by
//!   night.

mod auth;
pub mod catalog;
mod config;
mod dispatch;
mod faults;
pub mod night;
mod quota;
mod search;
mod stats;
mod sts;
mod wire;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use auth::NonceShard;
pub use catalog::Catalog;
pub use config::{
    Faults, OutageFault, SimConfig, SimKey, DEFAULT_ACCOUNT_ID, DEFAULT_KEY_ID, DEFAULT_KEY_SECRET, MAX_SKEW,
    MIN_STS_DURATION, STS_VERSION,
};
pub use faults::Dropped;
use quota::Quota;
pub use quota::{QuotaAction, ThrottleStyle};
pub use search::{SearchStats, DOCUMENTED_QPS as SEARCH_MEDIA_DOCUMENTED_QPS};
use stats::ImageCounts;
pub use stats::{QuotaStats, Stats};
use sts::Issued;

/// Shards of the per-nonce and per-image maps, so that connections seldom
/// wait on one lock.
const SHARDS: usize = 16;

/// The shard a nonce or an image id is kept in.
fn shard_of(s: &str) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    (h.finish() as usize) % SHARDS
}

/// The running simulator's state, shared by all connections.
pub struct Simulator {
    config: SimConfig,
    keys: HashMap<String, SimKey>,
    nonces: Vec<Mutex<NonceShard>>,
    per_image: Vec<Mutex<HashMap<Box<str>, ImageCounts>>>,
    /// Per batch (its comma-joined ids): how many times it was called, for fault draws.
    batch_calls: Mutex<HashMap<Box<str>, u64>>,
    by_code: Mutex<BTreeMap<String, u64>>,
    requests: AtomicU64,
    authenticated: AtomicU64,
    request_seq: AtomicU64,
    /// One per [`QuotaAction`], in its order.
    quotas: Vec<Quota>,
    started: Instant,
    /// When the outage fault opened.
    outage_opened: std::sync::OnceLock<Instant>,
    /// Keys issued by STS, the metadata service and the credentials URI.
    issued: Mutex<HashMap<String, Issued>>,
    by_action: Mutex<BTreeMap<String, u64>>,
    /// Keys issued by `AssumeRole`.
    assumed: AtomicU64,
    search: search::SearchState,
}

impl Simulator {
    /// Builds the state from a configuration.
    pub fn new(config: SimConfig) -> Arc<Self> {
        let keys = config.keys.iter().map(|k| (k.id.clone(), k.clone())).collect();
        Arc::new(Simulator {
            keys,
            nonces: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_image: (0..SHARDS).map(|_| Mutex::default()).collect(),
            batch_calls: Mutex::default(),
            by_code: Mutex::default(),
            requests: AtomicU64::new(0),
            authenticated: AtomicU64::new(0),
            request_seq: AtomicU64::new(0),
            quotas: QuotaAction::NAMES.iter().map(|_| Quota::default()).collect(),
            started: Instant::now(),
            outage_opened: std::sync::OnceLock::new(),
            issued: Mutex::default(),
            by_action: Mutex::default(),
            assumed: AtomicU64::new(0),
            search: search::SearchState::default(),
            config,
        })
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// The simulator's clock: the real one plus the configured offset.
    pub fn now(&self) -> SystemTime {
        let off = Duration::from_secs(self.config.clock_offset_secs.unsigned_abs());
        if self.config.clock_offset_secs >= 0 {
            SystemTime::now() + off
        } else {
            SystemTime::now() - off
        }
    }
}

/// Serves the simulator on `listener` until `shutdown` resolves.
pub async fn serve(listener: TcpListener, sim: Arc<Simulator>, shutdown: impl Future<Output = ()>) {
    serve_with(listener, None, sim, shutdown).await
}

/// Serves the simulator over TLS (https) on `listener` until `shutdown`
/// resolves: what a test of the client's trust in certificates talks to.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<tokio_rustls::rustls::ServerConfig>,
    sim: Arc<Simulator>,
    shutdown: impl Future<Output = ()>,
) {
    serve_with(listener, Some(tokio_rustls::TlsAcceptor::from(tls)), sim, shutdown).await
}

/// The TLS settings of [`serve_tls`] from a PEM certificate chain (the
/// server's first) and its PEM private key.
pub fn tls_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<tokio_rustls::rustls::ServerConfig>, String> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the certificate file is not PEM: {e}"))?;
    if chain.is_empty() {
        return Err("the certificate file holds no CERTIFICATE block".to_owned());
    }
    let key =
        PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("the key file holds no PEM private key: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("the certificate and key do not make a TLS server: {e}"))?;
    Ok(Arc::new(config))
}

/// [`serve`] and [`serve_tls`]: one task per connection, each request
/// answered by `dispatch`.
async fn serve_with(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    sim: Arc<Simulator>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let (stream, _) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, say: wait a moment instead of spinning.
                    tracing::warn!("simulator accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let sim = sim.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req| dispatch::handle(sim.clone(), req));
            let mut http = hyper::server::conn::http1::Builder::new();
            match tls {
                None => {
                    let _ = http.keep_alive(true).serve_connection(TokioIo::new(stream), service).await;
                }
                // A client that refuses the certificate ends the handshake: nothing to serve.
                Some(tls) => {
                    if let Ok(stream) = tls.accept(stream).await {
                        let _ = http.keep_alive(true).serve_connection(TokioIo::new(stream), service).await;
                    }
                }
            }
        });
    }
    // Kept-alive connections end with the server: a stopped simulator answers nothing.
    connections.shutdown().await;
}
