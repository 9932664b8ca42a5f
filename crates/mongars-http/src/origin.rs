//! Which web origins may open a socket or call the API from a browser.
//!
//! Allowed: an origin listed in `server.allowed_origins`; a page served by
//! this server itself (its origin names the `Host` the request came to, and
//! that host is one the server answers to: see [`crate::host`], else a
//! rebound attacker's name would pass as "the server itself"); and,
//! when every listed origin is local, any local origin, so that a phone on
//! the same network can open the console. One public origin in the list turns
//! that widening off. The WebSocket handshake and CORS use the same policy.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone)]
pub struct OriginPolicy {
    exact: Vec<String>,
    widen_local: bool,
    hosts: crate::host::HostPolicy,
}

impl OriginPolicy {
    pub fn new(origins: &[String]) -> Self {
        let exact: Vec<String> = origins.iter().map(|o| normalise(o)).collect();
        let widen_local =
            !exact.is_empty() && exact.iter().all(|o| host_of(o).is_some_and(is_local_host));
        Self {
            exact,
            widen_local,
            hosts: crate::host::HostPolicy::default(),
        }
    }

    /// The hosts a page may be served from to count as this server's own.
    pub fn with_hosts(mut self, hosts: crate::host::HostPolicy) -> Self {
        self.hosts = hosts;
        self
    }

    /// Whether any local origin is accepted.
    pub fn widens_to_local(&self) -> bool {
        self.widen_local
    }

    /// `origin` as sent by a browser; `host` the request's `Host` header.
    pub fn allows(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = normalise(origin);
        let Some(authority) = authority_of(&origin) else {
            return false;
        };
        if self.exact.contains(&origin) {
            return true;
        }
        if host.is_some_and(|h| h.eq_ignore_ascii_case(authority) && self.hosts.allows(h)) {
            return true;
        }
        self.widen_local && host_of(&origin).is_some_and(is_local_host)
    }
}

fn normalise(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// `host[:port]` of an `http(s)://` origin, or `None`.
fn authority_of(origin: &str) -> Option<&str> {
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))?;
    (!rest.is_empty() && !rest.contains(['/', '?', '#', '@'])).then_some(rest)
}

/// The host of an origin, without port or IPv6 brackets.
fn host_of(origin: &str) -> Option<&str> {
    let authority = authority_of(origin)?;
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split_once(']').map(|(h, _)| h);
    }
    Some(authority.split_once(':').map_or(authority, |(h, _)| h))
}

/// localhost, loopback, RFC 1918, link-local, CGNAT (100.64/10), IPv6 ULA.
pub fn is_local_host(host: &str) -> bool {
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => local_v4(ip),
        Ok(IpAddr::V6(ip)) => local_v6(ip),
        Err(_) => false,
    }
}

fn local_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || (a == 100 && (64..128).contains(&b))
}

fn local_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return local_v4(v4);
    }
    let first = ip.segments()[0];
    ip.is_loopback() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(list: &[&str]) -> OriginPolicy {
        OriginPolicy::new(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn local_addresses() {
        for h in [
            "localhost",
            "app.localhost",
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.20",
            "169.254.3.4",
            "100.64.0.1",
            "100.127.255.255",
            "::1",
            "fd12:3456::1",
            "fe80::1",
            "::ffff:192.168.0.1",
        ] {
            assert!(is_local_host(h), "{h}");
        }
        for h in [
            "example.com",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2001:db8::1",
            "localhost.evil.com",
        ] {
            assert!(!is_local_host(h), "{h}");
        }
    }

    #[test]
    fn all_local_list_widens_to_the_lan() {
        let p = policy(&["http://localhost:8000", "http://127.0.0.1:8000"]);
        assert!(p.widens_to_local());
        assert!(p.allows("http://192.168.1.23:8000", Some("10.0.0.2:8000")));
        assert!(p.allows("http://[fd00::2]:3000", None));
        assert!(!p.allows("https://evil.example", Some("127.0.0.1:8000")));
    }

    #[test]
    fn one_public_origin_turns_widening_off() {
        let p = policy(&["http://localhost:8000", "https://chat.example.com"]);
        assert!(!p.widens_to_local());
        assert!(p.allows("https://chat.example.com", None));
        assert!(p.allows("HTTPS://Chat.Example.com/", None));
        assert!(p.allows("http://localhost:8000", None));
        assert!(!p.allows("http://192.168.1.23:8000", Some("chat.example.com")));
    }

    #[test]
    fn the_servers_own_pages_are_allowed() {
        let p = policy(&["https://chat.example.com"]);
        assert!(p.allows("http://203.0.113.9:8000", Some("203.0.113.9:8000")));
        assert!(!p.allows("http://203.0.113.9:8000", Some("203.0.113.9:9000")));
        assert!(!p.allows("null", Some("null")));
        assert!(!p.allows("http://a.example/path", Some("a.example")));
    }

    #[test]
    fn a_rebound_name_is_not_the_servers_own_page() {
        let p = policy(&["http://localhost:8000"]);
        let rebound = "http://attacker.example:8000";
        assert!(!p.allows(rebound, Some("attacker.example:8000")));
        let named = policy(&["http://localhost:8000"]).with_hosts(crate::host::HostPolicy::new(
            &["chat.example.com".to_string()],
            "127.0.0.1",
        ));
        assert!(named.allows("https://chat.example.com", Some("chat.example.com")));
        assert!(!named.allows(rebound, Some("attacker.example:8000")));
    }

    #[test]
    fn an_empty_list_allows_only_same_origin() {
        let p = policy(&[]);
        assert!(!p.widens_to_local());
        assert!(!p.allows("http://localhost:3000", Some("localhost:8000")));
    }
}
