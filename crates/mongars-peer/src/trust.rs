//! Who may talk to whom. A node accepts a peer whose certificate's key
//! fingerprint is registered, or whose certificate the installation's CA
//! signed (`peers.ca_file`); it calls a peer only if the certificate it
//! presents has the registered fingerprint (or, for a peer found by
//! discovery, the CA's signature). Names and dates in the certificates do
//! not matter: the pinned key does.

use crate::identity::{NodeIdentity, fingerprint};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use std::collections::HashSet;
use std::sync::{Arc, RwLock};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn algorithms() -> WebPkiSupportedAlgorithms {
    rustls::crypto::ring::default_provider().signature_verification_algorithms
}

/// The installation's CA, for certificates it signed.
#[derive(Clone)]
pub struct ClusterCa {
    roots: Arc<rustls::RootCertStore>,
}

impl std::fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterCa")
    }
}

impl ClusterCa {
    pub fn from_pem_file(path: &std::path::Path) -> Result<Self, String> {
        use rustls_pki_types::pem::PemObject;
        let pem =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert =
                cert.map_err(|e| format!("{}: not a PEM certificate: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("{}: unusable CA certificate: {e}", path.display()))?;
        }
        if roots.is_empty() {
            return Err(format!("{}: no certificate in it", path.display()));
        }
        Ok(Self {
            roots: Arc::new(roots),
        })
    }

    /// Whether the CA signed `end_entity` (through `intermediates`).
    fn signed(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> bool {
        let Ok(parsed) = rustls::server::ParsedCertificate::try_from(end_entity) else {
            return false;
        };
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            intermediates,
            now,
            algorithms().all,
        )
        .is_ok()
    }
}

/// The fingerprints this node accepts, shared with the peer list so that
/// registering or unregistering takes effect on the next handshake.
#[derive(Clone, Debug, Default)]
pub struct Registered(Arc<RwLock<HashSet<String>>>);

impl Registered {
    pub fn replace(&self, fingerprints: impl IntoIterator<Item = String>) {
        *self.0.write().expect("registered fingerprints") = fingerprints.into_iter().collect();
    }

    pub fn contains(&self, fingerprint: &str) -> bool {
        self.0
            .read()
            .expect("registered fingerprints")
            .contains(fingerprint)
    }
}

fn refused() -> Error {
    Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
}

fn check_signature12(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, Error> {
    rustls::crypto::verify_tls12_signature(message, cert, dss, &algorithms())
}

fn check_signature13(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, Error> {
    rustls::crypto::verify_tls13_signature(message, cert, dss, &algorithms())
}

/// The listener's check of a calling peer.
#[derive(Clone, Debug)]
struct CallerCheck {
    registered: Registered,
    ca: Option<ClusterCa>,
}

impl ClientCertVerifier for CallerCheck {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let known = fingerprint(end_entity).is_some_and(|f| self.registered.contains(&f));
        let signed = self
            .ca
            .as_ref()
            .is_some_and(|ca| ca.signed(end_entity, intermediates, now));
        if known || signed {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(refused())
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        check_signature12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        check_signature13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        algorithms().supported_schemes()
    }
}

/// A caller's check of the peer it dials.
#[derive(Debug)]
struct PinnedPeer {
    /// The registered fingerprint; `None` for a discovered peer (then the
    /// CA must have signed its certificate).
    expected: Option<String>,
    ca: Option<ClusterCa>,
}

impl ServerCertVerifier for PinnedPeer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let ok = match &self.expected {
            Some(expected) => fingerprint(end_entity).as_deref() == Some(expected.as_str()),
            None => self
                .ca
                .as_ref()
                .is_some_and(|ca| ca.signed(end_entity, intermediates, now)),
        };
        if ok {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(refused())
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        check_signature12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        check_signature13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        algorithms().supported_schemes()
    }
}

/// The peer listener's TLS: this node's certificate, and callers checked
/// against `registered` (and the CA). TLS 1.3 only, no early data (so
/// nothing recorded can be replayed).
pub fn server_config(
    identity: &NodeIdentity,
    registered: Registered,
    ca: Option<ClusterCa>,
) -> Result<rustls::ServerConfig, String> {
    let verifier = Arc::new(CallerCheck { registered, ca });
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain.clone(), identity.key())
        .map_err(|e| format!("peer certificate: {e}"))?;
    config.max_early_data_size = 0;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// TLS for calls to one peer: this node's certificate as the client's, and
/// the peer's pinned (or CA-signed) certificate required.
pub fn client_config(
    identity: &NodeIdentity,
    expected: Option<String>,
    ca: Option<ClusterCa>,
) -> Result<rustls::ClientConfig, String> {
    let verifier = Arc::new(PinnedPeer { expected, ca });
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| format!("TLS configuration: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(identity.chain.clone(), identity.key())
        .map_err(|e| format!("peer certificate: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.enable_early_data = false;
    Ok(config)
}
