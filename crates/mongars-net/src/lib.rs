//! Outbound connections: every HTTP client monGARS makes (generation
//! backends, embedders, research providers, the OTLP exporter) is built
//! here, on rustls with the `ring` provider.
//!
//! [`Tls`] holds the certificates trusted for `https://`: the Mozilla root
//! set bundled in the binary (no dependency on the system's store, so a
//! minimal container verifies public services the same as a laptop), plus
//! the CA certificates of `tls.ca_file` for services behind a private CA.
//! Plain `http://` keeps working as before.

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::path::Path;
use std::sync::Arc;

/// The TLS configuration of outbound connections; cheap to clone.
#[derive(Clone)]
pub struct Tls {
    config: Arc<rustls::ClientConfig>,
    extra_cas: usize,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("extra_cas", &self.extra_cas)
            .finish()
    }
}

impl Tls {
    /// The bundled public roots only.
    pub fn public_roots() -> Self {
        Self::build(roots(), 0).expect("the bundled roots make a valid configuration")
    }

    /// The bundled roots and every certificate of the PEM file `ca_file`.
    pub fn with_ca_file(ca_file: &Path) -> Result<Self, String> {
        let pem = std::fs::read(ca_file)
            .map_err(|e| format!("cannot read {}: {e}", ca_file.display()))?;
        let mut store = roots();
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert =
                cert.map_err(|e| format!("{}: not a PEM certificate: {e}", ca_file.display()))?;
            store
                .add(cert)
                .map_err(|e| format!("{}: unusable CA certificate: {e}", ca_file.display()))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!("{}: no certificate in it", ca_file.display()));
        }
        Self::build(store, added)
    }

    /// From `tls.ca_file` (empty: none).
    pub fn from_setting(ca_file: &Path) -> Result<Self, String> {
        if ca_file.as_os_str().is_empty() {
            Ok(Self::public_roots())
        } else {
            Self::with_ca_file(ca_file)
        }
    }

    fn build(store: RootCertStore, extra_cas: usize) -> Result<Self, String> {
        install_crypto();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS configuration: {e}"))?
            .with_root_certificates(store)
            .with_no_client_auth();
        Ok(Self {
            config: Arc::new(config),
            extra_cas,
        })
    }

    /// CA certificates added to the bundled roots.
    pub fn extra_cas(&self) -> usize {
        self.extra_cas
    }

    /// An HTTP client builder that speaks TLS with this configuration.
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        let mut config = (*self.config).clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        reqwest::Client::builder().tls_backend_preconfigured(config)
    }
}

/// Make `ring` the process's TLS provider, for clients built without a
/// [`Tls`] (a plain `reqwest::Client::new()`). Idempotent; the binary calls
/// it first thing, test harnesses before their own clients.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

/// Why a request failed at the TLS handshake (an untrusted or invalid
/// certificate, no common protocol...), if that is why: the failure's
/// chain of causes is searched for the TLS library's error.
pub fn tls_failure(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        // An I/O error's `source` skips the error it wraps: look inside.
        cause = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}

/// Whether `url` is sent over TLS (`https://`, and the secure schemes of
/// other protocols): for `doctor` and logs.
pub fn uses_tls(url: &str) -> bool {
    let scheme = url.split("://").next().unwrap_or("").to_ascii_lowercase();
    matches!(scheme.as_str(), "https" | "rediss" | "wss")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_roots_and_bad_ca_files() {
        let tls = Tls::public_roots();
        assert_eq!(tls.extra_cas(), 0);
        assert!(tls.client_builder().build().is_ok());
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        assert!(
            Tls::with_ca_file(&missing)
                .unwrap_err()
                .contains("cannot read")
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificates here\n").unwrap();
        assert!(
            Tls::with_ca_file(&empty)
                .unwrap_err()
                .contains("no certificate")
        );
        assert_eq!(Tls::from_setting(Path::new("")).unwrap().extra_cas(), 0);
    }

    #[test]
    fn which_urls_use_tls() {
        assert!(uses_tls("https://api.example.com/v1"));
        assert!(uses_tls("HTTPS://x"));
        assert!(!uses_tls("http://127.0.0.1:11434"));
        assert!(!uses_tls(""));
    }
}
