//! Which `Host` names this server answers to for anything that changes
//! state, against DNS rebinding.
//!
//! A web page on an attacker's domain can re-point that domain at this
//! machine (at 127.0.0.1, or a LAN address) and then call the API from the
//! browser with its own name in `Host` and `Origin`: same-origin as far as
//! the browser knows, so no CORS check applies. Refusing unknown names
//! (421) on state-changing requests closes that hole. IP addresses cannot be
//! rebound, so they are always allowed, as are localhost names (browsers
//! resolve them to loopback themselves) and the configured bind host.

use crate::origin::is_local_host;
use std::net::IpAddr;

#[derive(Debug, Clone, Default)]
pub struct HostPolicy {
    any: bool,
    exact: Vec<String>,
    /// `.example.com`: the domain and every name under it.
    domains: Vec<String>,
}

impl HostPolicy {
    /// `allowed` from `server.allowed_hosts`; `bind_host` is `server.host`.
    pub fn new(allowed: &[String], bind_host: &str) -> Self {
        let mut policy = Self::default();
        for entry in allowed.iter().map(|h| normalise(h)) {
            if entry == "*" {
                policy.any = true;
            } else if let Some(domain) = entry.strip_prefix('.') {
                policy.domains.push(domain.to_string());
            } else {
                policy.exact.push(entry);
            }
        }
        let bind = normalise(bind_host);
        if bind.parse::<IpAddr>().is_err() && !bind.is_empty() {
            policy.exact.push(bind);
        }
        policy
    }

    /// Whether a request whose `Host` header is `header` may change state.
    pub fn allows(&self, header: &str) -> bool {
        if self.any {
            return true;
        }
        let Some(host) = host_of(header) else {
            return false;
        };
        if host.parse::<IpAddr>().is_ok() || is_local_host(&host) {
            return true;
        }
        self.exact.contains(&host)
            || self
                .domains
                .iter()
                .any(|d| host == *d || host.ends_with(&format!(".{d}")))
    }
}

fn normalise(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The host of a `Host` header (`name`, `name:port`, `[v6]:port`), lowercase
/// and without a trailing dot; `None` when it is not a plausible host.
fn host_of(header: &str) -> Option<String> {
    let header = header.trim();
    let host = if let Some(v6) = header.strip_prefix('[') {
        v6.split_once(']')?.0
    } else {
        match header.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            Some(_) => return None,
            None => header,
        }
    };
    let host = normalise(host);
    let plausible = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b));
    plausible.then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(list: &[&str], bind: &str) -> HostPolicy {
        HostPolicy::new(
            &list.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            bind,
        )
    }

    #[test]
    fn defaults_allow_local_names_and_addresses_only() {
        let p = policy(&[], "127.0.0.1");
        for ok in [
            "localhost:8000",
            "LOCALHOST",
            "app.localhost:3000",
            "127.0.0.1:8000",
            "192.168.1.20:8000",
            "203.0.113.9",
            "[::1]:8000",
            "[fd00::2]",
        ] {
            assert!(p.allows(ok), "{ok}");
        }
        for bad in [
            "attacker.example:8000",
            "rebind.evil.com",
            "localhost.evil.com",
            "",
            "a b",
            "host:port",
            "[::1",
        ] {
            assert!(!p.allows(bad), "{bad}");
        }
    }

    #[test]
    fn listed_names_domains_the_bind_host_and_any() {
        let p = policy(&["chat.example.com", ".corp.example"], "mongars");
        assert!(p.allows("chat.example.com:443"));
        assert!(p.allows("Chat.Example.com."));
        assert!(p.allows("corp.example"));
        assert!(p.allows("a.b.corp.example:8000"));
        assert!(p.allows("mongars:8000"), "the bind host");
        assert!(!p.allows("example.com"));
        assert!(!p.allows("evilcorp.example"));
        assert!(policy(&["*"], "0.0.0.0").allows("anything.example"));
        assert!(!policy(&[], "0.0.0.0").allows("anything.example"));
    }
}
