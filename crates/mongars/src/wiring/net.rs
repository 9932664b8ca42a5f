//! Outbound TLS from settings: the one [`mongars_net::Tls`] every client of
//! this process uses, and PostgreSQL's CA.

use mongars_config::Settings;

/// The trust for outbound `https://`: the bundled roots and `tls.ca_file`.
pub fn outbound_tls(settings: &Settings) -> anyhow::Result<mongars_net::Tls> {
    mongars_net::Tls::from_setting(&settings.tls.ca_file)
        .map_err(|e| anyhow::anyhow!("tls.ca_file: {e}"))
}
