//! Real HTTP egress with a per-program allow-list and address checks.
//!
//! Rules, in order, for the first request and again for every redirect hop:
//! 1. Scheme must be `http` or `https` (`file:`, `data:` and everything else are refused).
//! 2. The destination must be on the program's allow-list: an entry `host` allows any
//!    port, `host:port` exactly that port (IPv6 literals in brackets, `[::1]:8080`).
//! 3. The host is resolved once; every resolved address must be a public unicast address.
//!    Loopback, private (RFC 1918), link-local (including 169.254.169.254, the cloud
//!    metadata address), CGNAT (100.64/10), unspecified, multicast, documentation and
//!    reserved ranges, and IPv6 loopback, ULA (fc00::/7), link-local, site-local,
//!    IPv4-mapped, IPv4-compatible and NAT64 addresses are refused — unless the matching
//!    allow-list entry is that IP literal itself (explicit allow). A host *name* on the
//!    allow-list never makes a private address reachable: DNS is not trusted.
//! 4. The connection goes to the checked addresses only (the client is pinned to them),
//!    so a second DNS answer cannot rebind the name to another address.
//!
//! Timeouts: 10 s to connect, 30 s per request. Response bodies are read incrementally
//! and cut at the invocation's remaining egress byte budget.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use url::Url;

use crate::host::{
    BoxFuture, Egress, EgressBudget, EgressError, EgressPolicy, HttpRequest, HttpResponse,
};

/// Redirect hops followed at most.
pub const MAX_REDIRECTS: u32 = 10;

/// The real egress implementation (reqwest with rustls).
#[derive(Debug, Default, Clone)]
pub struct HttpEgress {
    connect_timeout: Option<Duration>,
    request_timeout: Option<Duration>,
}

impl HttpEgress {
    /// With the default timeouts (10 s connect, 30 s per request).
    pub fn new() -> Self {
        Self::default()
    }
}

/// Is `ip` a public unicast address?
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    let deny = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64/10 CGNAT
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // 192.0.0/24 IETF
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // 198.18/15 benchmarking
        || o[0] >= 240; // reserved
    !deny
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let deny = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // fc00::/7 ULA
        || (s[0] & 0xffc0) == 0xfe80 // fe80::/10 link-local
        || (s[0] & 0xffc0) == 0xfec0 // fec0::/10 site-local (deprecated)
        || ip.to_ipv4_mapped().is_some() // ::ffff:0:0/96
        || (s[0..6] == [0, 0, 0, 0, 0, 0]) // ::/96 IPv4-compatible
        || (s[0] == 0x64 && s[1] == 0xff9b) // 64:ff9b::/96 NAT64
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] < 0x200); // 2001::/23 IETF protocol assignments (Teredo etc.)
    !deny
}

/// How the destination matched the allow-list.
enum Allowed {
    /// By host name: resolved addresses must be public.
    Name,
    /// By the IP literal itself: this address is explicitly allowed.
    Literal(IpAddr),
}

fn denied(message: String, requests: u64, bytes: u64) -> EgressError {
    EgressError::Denied {
        message,
        requests,
        bytes,
    }
}

fn check_allow(policy: &EgressPolicy, url: &Url) -> Result<(String, u16, Allowed), String> {
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(format!("scheme `{other}:` is not allowed for egress")),
    }
    let host = url.host().ok_or_else(|| "URL has no host".to_owned())?;
    let port = url
        .port_or_known_default()
        .ok_or_else(|| "URL has no port".to_owned())?;
    let (host_str, literal) = match host {
        url::Host::Domain(d) => (d.to_ascii_lowercase(), None),
        url::Host::Ipv4(ip) => (ip.to_string(), Some(IpAddr::V4(ip))),
        url::Host::Ipv6(ip) => (format!("[{ip}]"), Some(IpAddr::V6(ip))),
    };
    let with_port = format!("{host_str}:{port}");
    let listed = policy.allow_hosts.iter().any(|entry| {
        let e = entry.trim().to_ascii_lowercase();
        e == host_str
            || e == with_port
            || normalize_entry(&e).is_some_and(|n| n == host_str || n == with_port)
    });
    if !listed {
        return Err(format!(
            "host `{with_port}` is not on the program's egress allow-list"
        ));
    }
    Ok((
        host_str,
        port,
        literal.map_or(Allowed::Name, Allowed::Literal),
    ))
}

/// Normalize an allow-list entry that is an IP literal (e.g. `::1` -> `[::1]`).
fn normalize_entry(e: &str) -> Option<String> {
    if let Ok(ip) = e.parse::<IpAddr>() {
        return Some(match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        });
    }
    if let Ok(sa) = e.parse::<SocketAddr>() {
        return Some(match sa.ip() {
            IpAddr::V4(v4) => format!("{v4}:{}", sa.port()),
            IpAddr::V6(v6) => format!("[{v6}]:{}", sa.port()),
        });
    }
    None
}

/// Check the URL and resolve it to the addresses we will connect to.
async fn check_and_resolve(policy: &EgressPolicy, url: &Url) -> Result<Vec<SocketAddr>, String> {
    let (host, port, allowed) = check_allow(policy, url)?;
    match allowed {
        Allowed::Literal(ip) => Ok(vec![SocketAddr::new(ip, port)]),
        Allowed::Name => {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|e| format!("cannot resolve `{host}`: {e}"))?
                .collect();
            if addrs.is_empty() {
                return Err(format!("`{host}` resolved to no address"));
            }
            if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
                return Err(format!(
                    "`{host}` resolves to non-public address {}",
                    bad.ip()
                ));
            }
            Ok(addrs)
        }
    }
}

impl Egress for HttpEgress {
    fn fetch<'a>(
        &'a self,
        policy: &'a EgressPolicy,
        request: HttpRequest,
        budget: EgressBudget,
    ) -> BoxFuture<'a, Result<HttpResponse, EgressError>> {
        Box::pin(async move { self.fetch_inner(policy, request, budget).await })
    }
}

impl HttpEgress {
    async fn fetch_inner(
        &self,
        policy: &EgressPolicy,
        request: HttpRequest,
        budget: EgressBudget,
    ) -> Result<HttpResponse, EgressError> {
        let mut url = Url::parse(&request.url)
            .map_err(|e| EgressError::Failed(format!("invalid URL: {e}")))?;
        let mut method = request.method.clone();
        let mut body = request.body.clone();
        let mut requests = 0u64;
        let mut bytes = 0u64;
        let mut redirected = false;
        loop {
            if requests >= budget.requests {
                return Err(EgressError::Limit(format!(
                    "egress request limit reached ({} requests)",
                    budget.requests
                )));
            }
            requests += 1;
            let addrs = check_and_resolve(policy, &url)
                .await
                .map_err(|m| denied(m, requests, bytes))?;
            let mut builder = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .connect_timeout(self.connect_timeout.unwrap_or(Duration::from_secs(10)))
                .timeout(self.request_timeout.unwrap_or(Duration::from_secs(30)));
            if let Some(url::Host::Domain(d)) = url.host() {
                builder = builder.resolve_to_addrs(d, &addrs);
            }
            let client = builder
                .build()
                .map_err(|e| EgressError::Failed(e.to_string()))?;
            let m = reqwest::Method::from_bytes(method.as_bytes())
                .map_err(|_| EgressError::Failed(format!("invalid method `{method}`")))?;
            let mut rb = client.request(m, url.clone());
            let mut sent = body.len() as u64;
            for (k, v) in &request.headers {
                if k.eq_ignore_ascii_case("host") || k.eq_ignore_ascii_case("content-length") {
                    continue;
                }
                sent += (k.len() + v.len() + 4) as u64;
                rb = rb.header(k.as_str(), v.as_str());
            }
            if !body.is_empty() {
                rb = rb.body(body.clone());
            }
            bytes = bytes.saturating_add(sent);
            if bytes > budget.bytes {
                return Err(EgressError::Limit(format!(
                    "egress byte limit reached ({} bytes)",
                    budget.bytes
                )));
            }
            let mut resp = rb
                .send()
                .await
                .map_err(|e| EgressError::Failed(format!("fetch failed: {e}")))?;
            let status = resp.status();
            let mut headers = Vec::new();
            for (k, v) in resp.headers() {
                let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
                bytes = bytes.saturating_add((k.as_str().len() + v.len() + 4) as u64);
                headers.push((k.as_str().to_owned(), v));
            }
            if status.is_redirection() && request.follow_redirects {
                if let Some(loc) = resp.headers().get(reqwest::header::LOCATION) {
                    if redirected_count(requests) > MAX_REDIRECTS {
                        return Err(EgressError::Failed("too many redirects".into()));
                    }
                    let loc = String::from_utf8_lossy(loc.as_bytes()).into_owned();
                    url = url
                        .join(&loc)
                        .map_err(|e| EgressError::Failed(format!("bad redirect location: {e}")))?;
                    if matches!(status.as_u16(), 301..=303) && method != "HEAD" {
                        method = "GET".into();
                        body.clear();
                    }
                    redirected = true;
                    continue;
                }
            }
            let mut out = Vec::new();
            while let Some(chunk) = resp
                .chunk()
                .await
                .map_err(|e| EgressError::Failed(format!("fetch failed: {e}")))?
            {
                bytes = bytes.saturating_add(chunk.len() as u64);
                if bytes > budget.bytes {
                    return Err(EgressError::Limit(format!(
                        "egress byte limit reached ({} bytes)",
                        budget.bytes
                    )));
                }
                out.extend_from_slice(&chunk);
            }
            return Ok(HttpResponse {
                status: status.as_u16(),
                status_text: status.canonical_reason().unwrap_or("").to_owned(),
                headers,
                body: out,
                url: url.to_string(),
                redirected,
                requests,
                bytes,
            });
        }
    }
}

fn redirected_count(requests: u64) -> u32 {
    u32::try_from(requests.saturating_sub(1)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_classes() {
        for a in [
            "127.0.0.1",
            "10.0.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "192.168.1.1",
            "172.16.0.1",
            "0.0.0.0",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:8.8.8.8",
            "64:ff9b::a00:1",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "198.18.0.1",
        ] {
            assert!(!is_public(a.parse().unwrap()), "{a} must not be public");
        }
        for a in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "100.128.0.1"] {
            assert!(is_public(a.parse().unwrap()), "{a} must be public");
        }
    }

    #[test]
    fn allow_list_matching() {
        let p = EgressPolicy {
            allow_hosts: vec!["example.com".into(), "127.0.0.1:8080".into(), "::1".into()],
        };
        let ok = |u: &str| check_allow(&p, &Url::parse(u).unwrap()).is_ok();
        assert!(ok("https://example.com/x"));
        assert!(ok("http://EXAMPLE.com:81/"));
        assert!(!ok("https://other.com/"));
        assert!(ok("http://127.0.0.1:8080/"));
        assert!(!ok("http://127.0.0.1:8081/"));
        assert!(ok("http://[::1]:9/"));
        assert!(!ok("file:///etc/passwd"));
        assert!(!ok("data:text/plain,hi"));
    }
}
