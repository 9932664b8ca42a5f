//! `mongars probe`: is the server on this machine alive (or ready)? The
//! container image's health check, which has no curl to call.

use mongars_config::Settings;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// Exit code 0 when the server answers 200, 1 otherwise (with the reason
/// on stderr).
pub async fn run(settings: &Settings, ready: bool, timeout_secs: u64) -> anyhow::Result<i32> {
    let url = probe_url(settings, ready);
    let client = mongars_net::Tls::public_roots()
        .client_builder()
        .timeout(Duration::from_secs(timeout_secs.max(1)))
        .build()?;
    match client.get(&url).send().await {
        Ok(resp) if resp.status().is_success() => {
            println!("{url}: {}", resp.status());
            Ok(0)
        }
        Ok(resp) => {
            eprintln!("{url}: {}", resp.status());
            Ok(1)
        }
        Err(e) => {
            eprintln!("{url}: {e}");
            Ok(1)
        }
    }
}

/// The server's own port on loopback: a wildcard bind is reached on the
/// loopback of its family; a specific address, on that address.
fn probe_url(settings: &Settings, ready: bool) -> String {
    let host: IpAddr = match settings.server.host.parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() && ip.is_ipv6() => Ipv6Addr::LOCALHOST.into(),
        Ok(ip) if ip.is_unspecified() => Ipv4Addr::LOCALHOST.into(),
        Ok(ip) => ip,
        Err(_) => Ipv4Addr::LOCALHOST.into(),
    };
    let path = if ready { "/ready" } else { "/healthz" };
    let authority = match host {
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    };
    format!("http://{authority}:{}{path}", settings.server.port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_binds_are_probed_on_loopback() {
        let mut s = mongars_config::defaults().unwrap();
        s.server.port = 8123;
        for (host, url) in [
            ("0.0.0.0", "http://127.0.0.1:8123/healthz"),
            ("::", "http://[::1]:8123/healthz"),
            ("127.0.0.1", "http://127.0.0.1:8123/healthz"),
            ("10.1.2.3", "http://10.1.2.3:8123/healthz"),
            ("localhost", "http://127.0.0.1:8123/healthz"),
        ] {
            s.server.host = host.into();
            assert_eq!(probe_url(&s, false), url, "{host}");
        }
        s.server.host = "0.0.0.0".into();
        assert_eq!(probe_url(&s, true), "http://127.0.0.1:8123/ready");
    }
}
