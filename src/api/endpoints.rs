//! Which host serves a region: the VOD endpoint table, and the STS host.
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

/// The regions that have a VOD endpoint of their own, and `cn-hangzhou`,
/// which the SDKs send to Shanghai.
pub const VOD_REGIONS: &[&str] = &[
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
pub struct UnknownRegion {
    pub region: String,
}

/// The host VOD calls for `region` go to: `vod.<region>.aliyuncs.com`
/// (`vod-vpc.` from a VPC), `cn-hangzhou` served by Shanghai.
pub fn vod_host(region: &str, vpc: bool) -> Result<String, UnknownRegion> {
    if !VOD_REGIONS.contains(&region) {
        return Err(UnknownRegion { region: region.to_owned() });
    }
    let served_by = if region == "cn-hangzhou" { "cn-shanghai" } else { region };
    let prefix = if vpc { "vod-vpc" } else { "vod" };
    Ok(format!("{prefix}.{served_by}.aliyuncs.com"))
}

/// The STS host: `sts.aliyuncs.com` without a region, else
/// `sts.<region>.aliyuncs.com` (`sts-vpc.` from a VPC).
pub fn sts_host(sts_region: Option<&str>, vpc: bool) -> String {
    match sts_region {
        None => "sts.aliyuncs.com".to_owned(),
        Some(r) if vpc => format!("sts-vpc.{r}.aliyuncs.com"),
        Some(r) => format!("sts.{r}.aliyuncs.com"),
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
