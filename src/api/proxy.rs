//! Which proxy, if any, carries the calls: one decision, made on purpose
//! from the endpoint and the proxy variables ([`choose_proxy`], pure), never
//! left to the HTTP library's own reading of the environment (reqwest's is
//! switched off in `client`).
//!
//! The rule:
//!
//! - A loopback endpoint (`localhost`, `127.0.0.0/8`, `::1`: the simulator, a
//!   local tunnel) is never reached through a proxy.
//! - Plain `http://` (which `endpoints::Endpoint` allows to loopback only)
//!   never goes through one: a proxy would see the signed request, its
//!   `Signature` and any `SecurityToken`, in clear.
//! - An `https://` endpoint goes through `HTTPS_PROXY` (else `https_proxy`)
//!   unless `NO_PROXY` (else `no_proxy`) names it: the corporate case. The
//!   proxy is asked for a tunnel (`CONNECT host:443`) and sees only TLS
//!   after that: the signed request stays end to end.
//! - `HTTP_PROXY`/`http_proxy` are never read (nothing plain-http is ever
//!   proxied), and neither is `ALL_PROXY`/`all_proxy`, which curl and
//!   reqwest use as a fallback: it is the catch-all that sent the
//!   simulator's signed POSTs to a LAN proxy, it often names a SOCKS proxy
//!   for interactive shells (this build speaks none), and one variable for
//!   the one kind of endpoint that may be proxied keeps it plain which proxy
//!   sees the calls.
//!
//! Upper-case variables win over lower-case ones (as reqwest and Go's
//! `net/http/httpproxy` read them); an empty value counts as unset. A value
//! that is not UTF-8 is an error when the rule would use it, and ignored
//! otherwise. A proxy URL without a scheme is `http://` (as curl reads it);
//! only `http://` and `https://` proxies are supported.
//!
//! `NO_PROXY` entries, comma- or space-separated, any case: `*` (every
//! host); a domain (`example.com`, `.example.com` or `*.example.com`: that
//! name and every name under it, as curl reads a leading dot); an IP address
//! (`10.1.2.3`, `::1`, `[::1]`) or a CIDR block (`10.0.0.0/8`, `fd00::/8`),
//! which match an endpoint written as an IP address (no name is resolved to
//! decide); any of them with `:port` to match that port only.
//!
//! The chosen proxy is shown with its user and password replaced by `***`
//! ([`ProxyUrl`]'s `Display` and `Debug`): in the manifest and in `check`.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::net::IpAddr;

use url::{Host, Url};

use crate::api::endpoints::{is_loopback, Endpoint};

/// The variables naming the proxy for https endpoints, first one set wins.
pub(crate) const HTTPS_PROXY_VARS: [&str; 2] = ["HTTPS_PROXY", "https_proxy"];

/// The variables listing hosts that bypass the proxy, first one set wins.
pub(crate) const NO_PROXY_VARS: [&str; 2] = ["NO_PROXY", "no_proxy"];

/// Proxy variables as the process has them (not necessarily UTF-8). Its
/// `Debug` names the variables only: a proxy URL may hold a password.
#[derive(Clone, Default)]
pub(crate) struct ProxyEnv {
    vars: Vec<(String, OsString)>,
}

impl fmt::Debug for ProxyEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.vars.iter().map(|(k, _)| k)).finish()
    }
}

impl ProxyEnv {
    /// The variables [`choose_proxy`] reads, from this process.
    pub(crate) fn from_process() -> Self {
        let names = HTTPS_PROXY_VARS.iter().chain(&NO_PROXY_VARS);
        ProxyEnv { vars: names.filter_map(|n| std::env::var_os(n).map(|v| (n.to_string(), v))).collect() }
    }

    /// Given variables (any names: those the rule does not read are ignored).
    #[cfg(test)]
    pub(crate) fn from_pairs<K: Into<String>, V: Into<OsString>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        ProxyEnv { vars: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }

    /// The first of `names` that is set and not empty, with its name.
    fn first(&self, names: &[&'static str]) -> Option<(&'static str, &OsStr)> {
        names.iter().find_map(|name| {
            self.vars.iter().find(|(k, v)| k == name && !v.is_empty()).map(|(_, v)| (*name, v.as_os_str()))
        })
    }
}

/// Why the proxy variables cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyError {
    #[error("{var} is not valid UTF-8: fix or unset it (it would name the proxy, or the hosts that bypass it, for {endpoint})")]
    NotUnicode { var: &'static str, endpoint: String },
    // The value is not quoted: it may hold a password.
    #[error("{var} is not a proxy URL ({reason}); write http://[user:password@]host:port")]
    NotAUrl { var: &'static str, reason: String },
    #[error("{var} names a {scheme}:// proxy; only http:// and https:// proxies are supported")]
    Scheme { var: &'static str, scheme: String },
}

/// A proxy URL. `Display` and `Debug` show it with any user and password
/// replaced by `***`: `http://***@proxy.corp:3128`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ProxyUrl(Url);

impl ProxyUrl {
    /// The URL, credentials included: for the HTTP client only.
    pub(crate) fn url(&self) -> &Url {
        &self.0
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let u = &self.0;
        let auth = if u.username().is_empty() && u.password().is_none() { "" } else { "***@" };
        write!(f, "{}://{auth}{}", u.scheme(), u.host_str().unwrap_or_default())?;
        if let Some(port) = u.port_or_known_default() {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyUrl({self})")
    }
}

/// The proxy the calls to `endpoint` go through, or none (the module doc
/// has the rule).
pub(crate) fn choose_proxy(endpoint: &Endpoint, env: &ProxyEnv) -> Result<Option<ProxyUrl>, ProxyError> {
    let Ok(url) = Url::parse(endpoint.as_str()) else { return Ok(None) };
    if url.scheme() != "https" || is_loopback(&url) {
        return Ok(None);
    }
    let Some((var, value)) = env.first(&HTTPS_PROXY_VARS) else { return Ok(None) };
    let not_unicode = |var| ProxyError::NotUnicode { var, endpoint: endpoint.as_str().to_owned() };
    if let Some((no_var, list)) = env.first(&NO_PROXY_VARS) {
        let list = list.to_str().ok_or_else(|| not_unicode(no_var))?;
        if let Some(host) = url.host() {
            if no_proxy_matches(list, &host, url.port_or_known_default().unwrap_or(443)) {
                return Ok(None);
            }
        }
    }
    parse_proxy(var, value.to_str().ok_or_else(|| not_unicode(var))?).map(Some)
}

fn parse_proxy(var: &'static str, value: &str) -> Result<ProxyUrl, ProxyError> {
    let value = value.trim();
    let text = if value.contains("://") { value.to_owned() } else { format!("http://{value}") };
    let url = Url::parse(&text).map_err(|e| ProxyError::NotAUrl { var, reason: e.to_string() })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ProxyError::Scheme { var, scheme: url.scheme().to_owned() });
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ProxyError::NotAUrl { var, reason: "no host".to_owned() });
    }
    Ok(ProxyUrl(url))
}

/// Whether the `NO_PROXY` list names `host` (at `port`).
pub(crate) fn no_proxy_matches(list: &str, host: &Host<&str>, port: u16) -> bool {
    list.split(|c: char| c == ',' || c.is_whitespace()).map(str::trim).filter(|e| !e.is_empty()).any(|entry| {
        let entry = entry.to_ascii_lowercase();
        if entry == "*" {
            return true;
        }
        let (name, entry_port) = split_port(&entry);
        entry_port.is_none_or(|p| p == port) && names_host(name, host)
    })
}

/// `name:port`, `[v6]:port`, `[v6]`, or an entry without a port (a bare
/// IPv6 address has colons but no port).
fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        if let Some((addr, after)) = rest.split_once(']') {
            return (addr, after.strip_prefix(':').and_then(|p| p.parse().ok()));
        }
    }
    match entry.split_once(':') {
        Some((name, port)) if !port.contains(':') => match port.parse() {
            Ok(p) => (name, Some(p)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

/// Whether one entry (port removed) names `host`.
fn names_host(entry: &str, host: &Host<&str>) -> bool {
    let ip = match host {
        Host::Ipv4(v4) => Some(IpAddr::V4(*v4)),
        Host::Ipv6(v6) => Some(IpAddr::V6(*v6)),
        Host::Domain(_) => None,
    };
    if let Some((net, bits)) = entry.split_once('/') {
        return match (ip, net.parse::<IpAddr>(), bits.parse::<u8>()) {
            (Some(ip), Ok(net), Ok(bits)) => in_block(ip, net, bits),
            _ => false,
        };
    }
    if let Ok(entry_ip) = entry.parse::<IpAddr>() {
        return ip == Some(entry_ip);
    }
    let Host::Domain(name) = host else { return false };
    let domain = entry.trim_start_matches("*.").trim_start_matches('.').trim_end_matches('.');
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    !domain.is_empty() && (name == domain || name.strip_suffix(domain).is_some_and(|head| head.ends_with('.')))
}

/// Whether `ip` is in the block `net/bits`.
fn in_block(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choose(endpoint: &str, vars: &[(&str, &str)]) -> Result<Option<String>, ProxyError> {
        let env = ProxyEnv::from_pairs(vars.iter().copied());
        choose_proxy(&Endpoint::parse(endpoint).unwrap(), &env).map(|p| p.map(|p| p.to_string()))
    }

    const EVERY_VAR: &[&str] = &["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"];

    #[test]
    fn loopback_and_plain_http_never_use_a_proxy() {
        let all: Vec<(&str, &str)> = EVERY_VAR.iter().map(|v| (*v, "http://10.0.0.9:9601")).collect();
        for endpoint in [
            "http://127.0.0.1:9480/",
            "http://localhost:1/",
            "http://[::1]:8080/",
            "https://127.0.0.1/",
            "https://localhost/",
        ] {
            assert_eq!(choose(endpoint, &all).unwrap(), None, "{endpoint}");
        }
    }

    #[test]
    fn https_uses_https_proxy_and_nothing_else() {
        let e = "https://vod.cn-shanghai.aliyuncs.com/";
        assert_eq!(choose(e, &[]).unwrap(), None);
        assert_eq!(
            choose(e, &[("HTTPS_PROXY", "http://proxy.corp:3128")]).unwrap().as_deref(),
            Some("http://proxy.corp:3128")
        );
        assert_eq!(
            choose(e, &[("https_proxy", "proxy.corp:3128")]).unwrap().as_deref(),
            Some("http://proxy.corp:3128")
        );
        assert_eq!(
            choose(e, &[("HTTPS_PROXY", "http://proxy.corp")]).unwrap().as_deref(),
            Some("http://proxy.corp:80")
        );
        assert_eq!(
            choose(e, &[("HTTPS_PROXY", "http://UP:3128"), ("https_proxy", "http://low:3128")]).unwrap().as_deref(),
            Some("http://up:3128"),
            "upper case wins"
        );
        assert_eq!(
            choose(e, &[("HTTPS_PROXY", ""), ("https_proxy", "http://low:3128")]).unwrap().as_deref(),
            Some("http://low:3128"),
            "empty is unset"
        );
        for ignored in ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
            assert_eq!(choose(e, &[(ignored, "http://10.0.0.9:9601")]).unwrap(), None, "{ignored} is never read");
        }
    }

    #[test]
    fn the_proxy_is_shown_without_its_credentials() {
        let e = "https://vod.cn-shanghai.aliyuncs.com/";
        let shown = choose(e, &[("HTTPS_PROXY", "http://alice:s3cret@proxy.corp:3128/")]).unwrap().unwrap();
        assert_eq!(shown, "http://***@proxy.corp:3128");
        let env = ProxyEnv::from_pairs([("HTTPS_PROXY", "http://alice:s3cret@[fd00::1]:3128")]);
        let p = choose_proxy(&Endpoint::parse(e).unwrap(), &env).unwrap().unwrap();
        assert_eq!(p.to_string(), "http://***@[fd00::1]:3128");
        assert!(!format!("{p:?} {env:?}").contains("s3cret"), "Debug hides it too");
        assert_eq!(p.url().password(), Some("s3cret"), "the client gets it");
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_values_are_an_error_when_used_and_ignored_otherwise() {
        use std::os::unix::ffi::OsStringExt;
        let e = Endpoint::parse("https://vod.cn-shanghai.aliyuncs.com/").unwrap();
        let bad = OsString::from_vec(vec![b'h', 0xff, 0xfe]);
        let env = ProxyEnv::from_pairs([("HTTPS_PROXY", bad.clone())]);
        let err = choose_proxy(&e, &env).unwrap_err();
        assert!(matches!(err, ProxyError::NotUnicode { var: "HTTPS_PROXY", .. }), "{err}");
        let env = ProxyEnv::from_pairs([("HTTPS_PROXY", OsString::from("http://p:1")), ("NO_PROXY", bad.clone())]);
        assert!(matches!(choose_proxy(&e, &env), Err(ProxyError::NotUnicode { var: "NO_PROXY", .. })));
        // Not read for this endpoint, or never read: no error.
        let env =
            ProxyEnv::from_pairs([("HTTP_PROXY", bad.clone()), ("ALL_PROXY", bad.clone()), ("NO_PROXY", bad.clone())]);
        assert_eq!(choose_proxy(&e, &env).unwrap(), None);
        let local = Endpoint::parse("http://127.0.0.1:1/").unwrap();
        assert_eq!(choose_proxy(&local, &ProxyEnv::from_pairs([("HTTPS_PROXY", bad)])).unwrap(), None);
    }

    #[test]
    fn unusable_proxy_urls_are_clear_errors() {
        let e = Endpoint::parse("https://vod.cn-shanghai.aliyuncs.com/").unwrap();
        let err = choose(e.as_str(), &[("HTTPS_PROXY", "socks5://u:pw@p:1080")]).unwrap_err();
        assert!(matches!(err, ProxyError::Scheme { .. }) && err.to_string().contains("socks5"), "{err}");
        let err = choose(e.as_str(), &[("HTTPS_PROXY", "http://us er:pw@[bad")]).unwrap_err();
        assert!(matches!(err, ProxyError::NotAUrl { .. }), "{err}");
        assert!(!err.to_string().contains("pw"), "the value is not quoted: {err}");
    }

    #[test]
    fn no_proxy_bypasses_the_proxy_for_the_hosts_it_names() {
        let e = "https://vod.cn-shanghai.aliyuncs.com/";
        let with = |list: &str| choose(e, &[("HTTPS_PROXY", "http://proxy.corp:3128"), ("NO_PROXY", list)]).unwrap();
        for list in [
            "*",
            "vod.cn-shanghai.aliyuncs.com",
            "aliyuncs.com",
            ".aliyuncs.com",
            "*.aliyuncs.com",
            "ALIYUNCS.COM",
            "aliyuncs.com.",
            "localhost, .aliyuncs.com",
            "localhost .aliyuncs.com",
            "aliyuncs.com:443",
        ] {
            assert_eq!(with(list), None, "{list:?} names the endpoint");
        }
        for list in [
            "",
            "other.com",
            "cs.com",
            "yuncs.com",
            "vod.cn-shanghai.aliyuncs.com.cn",
            "aliyuncs.com:8443",
            "10.0.0.0/8",
        ] {
            assert!(with(list).is_some(), "{list:?} does not name the endpoint");
        }
        let lower = choose(e, &[("HTTPS_PROXY", "http://p:1"), ("no_proxy", "aliyuncs.com")]).unwrap();
        assert_eq!(lower, None, "no_proxy is read when NO_PROXY is not set");
    }

    #[test]
    fn no_proxy_matches_addresses_blocks_and_ports() {
        let v4 = Host::Ipv4("10.1.2.3".parse().unwrap());
        let v6 = Host::Ipv6("fd00::7".parse().unwrap());
        let name = Host::Domain("vod.example.com");
        let table: &[(&str, &Host<&str>, u16, bool)] = &[
            ("10.1.2.3", &v4, 443, true),
            ("10.1.2.4", &v4, 443, false),
            ("10.0.0.0/8", &v4, 443, true),
            ("10.1.0.0/16", &v4, 443, true),
            ("10.2.0.0/16", &v4, 443, false),
            ("0.0.0.0/0", &v4, 443, true),
            ("10.1.2.3/33", &v4, 443, false),
            ("10.1.2.3:443", &v4, 443, true),
            ("10.1.2.3:8443", &v4, 443, false),
            ("fd00::7", &v6, 443, true),
            ("[fd00::7]", &v6, 443, true),
            ("[fd00::7]:443", &v6, 443, true),
            ("[fd00::7]:80", &v6, 443, false),
            ("fd00::/8", &v6, 443, true),
            ("fe80::/10", &v6, 443, false),
            ("10.0.0.0/8", &v6, 443, false),
            ("10.0.0.0/8", &name, 443, false),
            ("10.1.2.3", &name, 443, false),
            ("example.com", &v4, 443, false),
            ("example.com", &name, 443, true),
            ("example.com:443", &name, 443, true),
            ("example.com:444", &name, 443, false),
            (".", &name, 443, false),
            ("*.", &name, 443, false),
        ];
        for (list, host, port, want) in table {
            assert_eq!(no_proxy_matches(list, host, *port), *want, "{list:?} vs {host:?}:{port}");
        }
    }
}
