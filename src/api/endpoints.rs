//! Which host serves a region: the VOD endpoint table, and the STS host;
//! and the checked endpoint URL ([`Endpoint`]): https, or plain http to
//! loopback only, never with a user name or password.
//!
//! Owns the pure mapping from a region id to the VOD endpoint, as the
//! official SDKs resolve it, and from an STS region to the STS host as the
//! official credentials libraries do. It parses no flag and reads no
//! variable: `cmd::settings` decides which region, whether VPC, and whether
//! an `--endpoint` replaces all this.
//!
//! Sources followed:
//!
//! - `aliyun/aliyun-openapi-python-sdk`,
//!   `aliyun-python-sdk-vod/aliyunsdkvod/endpoint.py`: endpoint rule
//!   `regional` (`vod.<region>.aliyuncs.com`), with the one public
//!   exception `"cn-hangzhou": "vod.cn-shanghai.aliyuncs.com"`; the other
//!   entries of its map are internal, finance and test regions sent to the
//!   central `vod.aliyuncs.com`, which this tool does not call.
//! - `/work/shared/reference/vod-openapi.md` §3: the published regions, and
//!   `vod-vpc.<region>.aliyuncs.com` for calls from a VPC.
//! - `aliyun/credentials-go` (the STS providers): `sts.aliyuncs.com` when no
//!   STS region is set, `sts.<region>.aliyuncs.com` when one is, and
//!   `sts-vpc.<region>.aliyuncs.com` with `ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED`.

use std::net::IpAddr;

/// The regions that have a VOD endpoint of their own, and `cn-hangzhou`,
/// which the SDKs send to Shanghai.
pub(crate) const VOD_REGIONS: &[&str] = &[
    "cn-shanghai",
    "cn-beijing",
    "cn-shenzhen",
    "cn-hongkong",
    "cn-hangzhou",
    "ap-northeast-1",
    "ap-southeast-1",
    "ap-southeast-5",
    "eu-central-1",
    "us-west-1",
    "me-central-1",
    "cn-north-2-gov-1",
];

/// A region this tool has no VOD endpoint for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("region {region:?} has no ApsaraVideo VOD endpoint; known regions: {}; or give --endpoint URL", VOD_REGIONS.join(", "))]
pub(crate) struct UnknownRegion {
    pub region: String,
}

/// The host VOD calls for `region` go to: `vod.<region>.aliyuncs.com`
/// (`vod-vpc.` from a VPC), `cn-hangzhou` served by Shanghai.
pub(crate) fn vod_host(region: &str, vpc: bool) -> Result<String, UnknownRegion> {
    if !VOD_REGIONS.contains(&region) {
        return Err(UnknownRegion { region: region.to_owned() });
    }
    let served_by = if region == "cn-hangzhou" { "cn-shanghai" } else { region };
    let prefix = if vpc { "vod-vpc" } else { "vod" };
    Ok(format!("{prefix}.{served_by}.aliyuncs.com"))
}

/// The STS host: `sts.aliyuncs.com` without a region, else
/// `sts.<region>.aliyuncs.com` (`sts-vpc.` from a VPC).
pub(crate) fn sts_host(sts_region: Option<&str>, vpc: bool) -> String {
    match sts_region {
        None => "sts.aliyuncs.com".to_owned(),
        Some(r) if vpc => format!("sts-vpc.{r}.aliyuncs.com"),
        Some(r) => format!("sts.{r}.aliyuncs.com"),
    }
}

/// Why an endpoint URL was refused.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("endpoint {0:?} is not a URL: {1}")]
    NotAUrl(String, String),
    #[error("endpoint {0:?} uses plain http to a host that is not loopback: the signed request, and any STS token in it, would cross the network in clear text; use https://")]
    PlainHttp(String),
    #[error("endpoint {0:?}: only https:// (or http:// to a loopback address) is supported")]
    Scheme(String),
    #[error("endpoint {0:?} must not carry a query, a fragment or a user name")]
    Extras(String),
}

/// A checked endpoint base URL, always ending in `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint(String);

impl Endpoint {
    /// The region's endpoint from the SDKs' table ([`vod_host`]):
    /// `https://vod.{region}.aliyuncs.com/`, `vod-vpc.` from a VPC.
    pub(crate) fn for_region(region: &str, vpc: bool) -> Result<Self, UnknownRegion> {
        Ok(Endpoint(format!("https://{}/", vod_host(region, vpc)?)))
    }

    /// An operator-supplied endpoint (VPC endpoint, the simulator).
    pub(crate) fn parse(text: &str) -> Result<Self, EndpointError> {
        Self::parse_with(text, false)
    }

    /// The ECS metadata service's base URL: plain http is allowed to its
    /// link-local address as well as to loopback.
    pub(crate) fn parse_metadata(text: &str) -> Result<Self, EndpointError> {
        Self::parse_with(text, true)
    }

    /// The metadata service of every ECS instance.
    pub(crate) const METADATA: &'static str = "http://100.100.100.200/";

    fn parse_with(text: &str, metadata: bool) -> Result<Self, EndpointError> {
        let shown = || without_userinfo(text).into_owned();
        let mut url = reqwest::Url::parse(text).map_err(|e| EndpointError::NotAUrl(shown(), e.to_string()))?;
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
            return Err(EndpointError::Extras(shown()));
        }
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" if metadata && url.host_str() == Some("100.100.100.200") => {}
            "http" => return Err(EndpointError::PlainHttp(shown())),
            _ => return Err(EndpointError::Scheme(shown())),
        }
        // `localhost.` is `localhost`; the resolver of many systems knows only the latter.
        if url.host_str() == Some("localhost.") {
            url.set_host(Some("localhost")).map_err(|e| EndpointError::NotAUrl(shown(), e.to_string()))?;
        }
        let mut s = url.to_string();
        if !s.ends_with('/') {
            s.push('/');
        }
        Ok(Endpoint(s))
    }

    /// The URL text.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The host name, when the URL names one (not an IP address).
    pub(crate) fn domain(&self) -> Option<String> {
        let url = reqwest::Url::parse(&self.0).ok()?;
        match url.host()? {
            url::Host::Domain(d) => Some(d.to_owned()),
            _ => None,
        }
    }

    /// Whether the endpoint is a loopback address (the simulator).
    pub(crate) fn is_loopback(&self) -> bool {
        reqwest::Url::parse(&self.0).is_ok_and(|u| is_loopback(&u))
    }

    /// Resolves the host name before the first call, so that a name that
    /// does not exist (a mistyped region or endpoint) is told apart from an
    /// outage: the error names the host.
    pub(crate) async fn resolve_host(&self) -> Result<(), String> {
        let Some(host) = self.domain() else { return Ok(()) };
        let port = reqwest::Url::parse(&self.0).ok().and_then(|u| u.port_or_known_default()).unwrap_or(443);
        let found = tokio::net::lookup_host((host.as_str(), port)).await.map(|mut a| a.next().is_some());
        match found {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!("the endpoint's host {host} resolves to no address")),
            Err(e) => Err(format!(
                "the endpoint's host {host} cannot be resolved ({e}): check --region and --endpoint, and the DNS of this machine"
            )),
        }
    }
}

/// Whether the URL's host is `localhost` (or `localhost.`) or a loopback
/// address, IPv4-mapped IPv6 included.
pub(crate) fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.strip_suffix('.').unwrap_or(d).eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        None => false,
    }
}

/// A URL as text with its user and password (anything before the last `@`
/// ahead of the query) replaced by `***`; done on the text, so that it works
/// on text that is not a URL at all.
pub(crate) fn without_userinfo(text: &str) -> std::borrow::Cow<'_, str> {
    let Some(start) = text.find("://").map(|i| i + 3) else { return text.into() };
    let rest = &text[start..];
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{}***@{}", &text[..start], &rest[at + 1..]).into(),
        None => text.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hangzhou_is_served_by_shanghai() {
        assert_eq!(vod_host("cn-hangzhou", false).unwrap(), "vod.cn-shanghai.aliyuncs.com");
        assert_eq!(vod_host("cn-hangzhou", true).unwrap(), "vod-vpc.cn-shanghai.aliyuncs.com");
    }

    #[test]
    fn published_regions_have_their_own_host() {
        for r in [
            "cn-beijing",
            "cn-shanghai",
            "cn-shenzhen",
            "cn-hongkong",
            "ap-northeast-1",
            "ap-southeast-1",
            "ap-southeast-5",
            "eu-central-1",
            "us-west-1",
            "me-central-1",
            "cn-north-2-gov-1",
        ] {
            assert_eq!(vod_host(r, false).unwrap(), format!("vod.{r}.aliyuncs.com"));
            assert_eq!(vod_host(r, true).unwrap(), format!("vod-vpc.{r}.aliyuncs.com"));
        }
    }

    #[test]
    fn an_unknown_region_lists_the_known_ones() {
        let e = vod_host("cn-shanghia", false).unwrap_err();
        let shown = e.to_string();
        assert!(shown.contains("\"cn-shanghia\"") && shown.contains("cn-shanghai, cn-beijing"), "{shown}");
        assert!(vod_host("cn-qingdao", false).is_err(), "no VOD endpoint of its own");
    }

    #[test]
    fn sts_hosts() {
        assert_eq!(sts_host(None, false), "sts.aliyuncs.com");
        assert_eq!(sts_host(None, true), "sts.aliyuncs.com");
        assert_eq!(sts_host(Some("cn-beijing"), false), "sts.cn-beijing.aliyuncs.com");
        assert_eq!(sts_host(Some("cn-beijing"), true), "sts-vpc.cn-beijing.aliyuncs.com");
    }
}
