//! The key every call is signed with, renewed before it expires.
//!
//! Owns the cache of the current [`Key`] and the decision when to fetch a
//! new one from its [`CredentialSource`]. A call takes an `Arc<Key>` and
//! signs with it to the end, so a renewal never changes a call in flight.
//! A key is renewed once less than [`REFRESH_MARGIN`] (or a quarter of its
//! life, for short ones) is left, as the official credentials libraries do
//! (credentials-go renews 180 s before `Expiration`). One task renews while
//! the others go on with the old key; a failed renewal is tried again with
//! backoff, and only a key that has actually expired fails a call.
//!
//! A key that has expired before its first use is refused, never used: one
//! fetched with an `Expiration` already past (a credentials URI or an STS
//! answer, or this machine's clock ahead of theirs), or a static STS token
//! whose known expiry ([`crate::api::credentials::Credentials::expires`]) has passed. Using it would
//! fail every call, and its `renew_at`, already past, would fetch it again
//! for every call. The official libraries do not check this
//! (credentials-go `providers/uri.go` `GetCredentials` caches the answer and
//! asks again only once it is stale, 180 s before `Expiration` in the
//! versions this follows, 15 minutes in newer ones); a key that was stale
//! when it came is the case they leave to the service's
//! `InvalidSecurityToken.Expired`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::api::credentials::{read_credentials_file, CredentialSource, SourceKind};
use crate::api::error::{ApiError, ErrorClass};
use crate::api::sts::{self, Identity, Key};

/// How long before `Expiration` a key is renewed: credentials-go's 180 s.
pub(crate) const REFRESH_MARGIN: Duration = Duration::from_secs(180);

/// The longest wait between two failed renewals.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Where the STS and metadata calls go.
#[derive(Debug, Clone)]
pub(crate) struct Hosts {
    pub sts: reqwest::Url,
    pub metadata: reqwest::Url,
}

#[derive(Default)]
struct Renewal {
    failures: u32,
    next_try: Option<SystemTime>,
}

/// A cached key and when to renew it.
struct Cached {
    key: Arc<Key>,
    renew_at: Option<SystemTime>,
}

/// The credentials of a run: a fixed key, or one renewed from its source.
pub(crate) struct Provider {
    source: CredentialSource,
    http: reqwest::Client,
    hosts: Hosts,
    current: Mutex<Option<Cached>>,
    renewal: tokio::sync::Mutex<Renewal>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Provider({})", self.source.source)
    }
}

fn renew_at(key: &Key, now: SystemTime) -> Option<SystemTime> {
    let expires = key.expires?;
    let life = expires.duration_since(now).unwrap_or_default();
    Some(expires - REFRESH_MARGIN.min(life / 4))
}

impl Provider {
    /// A provider for `source`; nothing is fetched yet.
    pub(crate) fn new(source: CredentialSource, http: reqwest::Client, hosts: Hosts) -> Self {
        let current = match &source.kind {
            SourceKind::Static(c) => Some(Cached { key: Arc::new(Key::new(c.clone(), c.expires)), renew_at: None }),
            _ => None,
        };
        Provider {
            source,
            http,
            hosts,
            current: Mutex::new(current),
            renewal: tokio::sync::Mutex::new(Renewal::default()),
        }
    }

    /// Where the keys come from.
    pub(crate) fn source(&self) -> &CredentialSource {
        &self.source
    }

    /// Whether the keys are renewed (a fixed key is not).
    pub(crate) fn renews(&self) -> bool {
        self.source.kind.renews()
    }

    fn cached(&self) -> Option<(Arc<Key>, Option<SystemTime>)> {
        self.current.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|c| (c.key.clone(), c.renew_at))
    }

    /// The key to sign the next call with.
    pub(crate) async fn key(&self) -> Result<Arc<Key>, ApiError> {
        let now = SystemTime::now();
        if let SourceKind::Static(c) = &self.source.kind {
            if let Some(at) = c.expires.filter(|at| *at <= now) {
                return Err(self.stale_key(
                    at,
                    now,
                    "get a fresh STS token, or use a RAM role source so the tool can renew it",
                ));
            }
        }
        let cached = self.cached();
        if let Some((key, renew_at)) = &cached {
            if renew_at.is_none_or(|t| now < t) {
                return Ok(key.clone());
            }
        }
        let usable = cached.as_ref().filter(|(k, _)| k.expires.is_none_or(|e| now < e)).map(|(k, _)| k.clone());
        let mut renewal = match (self.renewal.try_lock(), &usable) {
            (Ok(r), _) => r,
            // Another call is renewing: this one goes on with the old key.
            (Err(_), Some(k)) => return Ok(k.clone()),
            (Err(_), None) => self.renewal.lock().await,
        };
        // Renewed while this call waited?
        if let Some((key, renew_at)) = self.cached() {
            if renew_at.is_none_or(|t| SystemTime::now() < t) {
                return Ok(key);
            }
        }
        if let (Some(k), Some(next)) = (&usable, renewal.next_try) {
            if SystemTime::now() < next {
                return Ok(k.clone());
            }
        }
        let fetched = self.fetch(&self.source.kind).await.and_then(|key| match key.expires {
            Some(at) if at <= SystemTime::now() => Err(self.stale_key(
                at,
                SystemTime::now(),
                "the source handed over a key that had already expired: check it, and this machine's clock",
            )),
            _ => Ok(key),
        });
        match fetched {
            Ok(key) => {
                let key = Arc::new(key);
                let at = renew_at(&key, SystemTime::now());
                *self.current.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(Cached { key: key.clone(), renew_at: at });
                *renewal = Renewal::default();
                Ok(key)
            }
            Err(e) => {
                renewal.failures += 1;
                let wait = Duration::from_secs(1 << renewal.failures.min(5)).min(MAX_BACKOFF);
                renewal.next_try = Some(SystemTime::now() + wait);
                if let Some(k) = usable.filter(|k| k.expires.is_none_or(|x| SystemTime::now() < x)) {
                    tracing::warn!("renewing the credentials failed (trying again in {wait:?}): {e}");
                    return Ok(k);
                }
                Err(self.expired_error(cached.map(|(k, _)| k), e))
            }
        }
    }

    /// A key that expired at `at`, before it was used.
    fn stale_key(&self, at: SystemTime, now: SystemTime, what_to_do: &str) -> ApiError {
        let ago = now.duration_since(at).unwrap_or_default().as_secs();
        let mut e = ApiError::transport(
            "ExpiredCredentials",
            format!(
                "the key from {} expired at {} ({ago} s ago by this machine's clock); {what_to_do}",
                self.source.source,
                humantime::format_rfc3339_seconds(at)
            ),
        );
        e.class = ErrorClass::Fatal;
        e
    }

    /// A failed fetch with no usable key left: what the run stops with.
    fn expired_error(&self, old: Option<Arc<Key>>, mut e: ApiError) -> ApiError {
        match old.and_then(|k| k.expires) {
            Some(at) => {
                e.class = ErrorClass::Fatal;
                e.message = format!(
                    "the temporary credentials from {} expired at {} and could not be renewed: {}",
                    self.source.source,
                    humantime::format_rfc3339_seconds(at),
                    e.message
                );
            }
            None => e.message = format!("getting credentials from {}: {}", self.source.source, e.message),
        }
        e
    }

    /// Marks `key` as due for renewal (the service said it expired).
    pub(crate) fn expire(&self, key: &Arc<Key>) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = current.as_mut().filter(|c| Arc::ptr_eq(&c.key, key)) {
            c.renew_at = Some(SystemTime::UNIX_EPOCH);
        }
    }

    fn fetch<'a>(
        &'a self,
        kind: &'a SourceKind,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Key, ApiError>> + Send + 'a>> {
        Box::pin(async move {
            let http = &self.http;
            match kind {
                SourceKind::Static(c) => Ok(Key::new(c.clone(), c.expires)),
                SourceKind::RamRole { base, role_arn, session_name, duration_secs, external_id } => {
                    let base = self.fetch(base).await?;
                    sts::assume_role(
                        http,
                        &self.hosts.sts,
                        &base,
                        role_arn,
                        session_name,
                        *duration_secs,
                        external_id.as_deref(),
                    )
                    .await
                }
                SourceKind::Oidc { role_arn, provider_arn, token_file, session_name, duration_secs } => {
                    let (token, _) = read_credentials_file(token_file).map_err(|why| {
                        let mut err = ApiError::transport(
                            "OIDCTokenFile",
                            format!("cannot read the OIDC token file {}: it {why}", token_file.display()),
                        );
                        err.class = ErrorClass::Fatal;
                        err
                    })?;
                    sts::assume_role_with_oidc(
                        http,
                        &self.hosts.sts,
                        role_arn,
                        provider_arn,
                        token.trim(),
                        session_name,
                        *duration_secs,
                    )
                    .await
                }
                SourceKind::EcsRole { role, imds_v1_disabled } => {
                    sts::ecs_role(http, &self.hosts.metadata, role.as_deref(), *imds_v1_disabled).await
                }
                SourceKind::Uri { uri } => sts::from_uri(http, uri).await,
            }
        })
    }

    /// `GetCallerIdentity` with the current key.
    pub(crate) async fn caller_identity(&self) -> Result<Identity, ApiError> {
        let key = self.key().await?;
        sts::get_caller_identity(&self.http, &self.hosts.sts, &key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::credentials::Credentials;
    use crate::api::secret::Secret;

    fn key(expires: Option<SystemTime>) -> Key {
        let c = Credentials {
            access_key_id: "STS.x".into(),
            access_key_secret: Secret::new("s"),
            security_token: Some(Secret::new("t")),
            source: "test".into(),
            expires: None,
        };
        Key::new(c, expires)
    }

    #[test]
    fn renewal_leaves_a_margin_before_expiry() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let hour = key(Some(now + Duration::from_secs(3600)));
        assert_eq!(renew_at(&hour, now), Some(now + Duration::from_secs(3600 - 180)));
        let short = key(Some(now + Duration::from_secs(20)));
        assert_eq!(renew_at(&short, now), Some(now + Duration::from_secs(15)));
        assert_eq!(renew_at(&key(None), now), None);
    }
}
