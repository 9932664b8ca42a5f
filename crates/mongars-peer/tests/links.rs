//! Handshakes between node identities over loopback, at the TLS layer:
//! pinned fingerprints, the installation's CA, and what each refuses.

use mongars_peer::NodeIdentity;
use mongars_peer::trust::{ClusterCa, Registered, client_config, server_config};
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A CA that signs node identities.
struct Ca {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl Ca {
    fn new() -> Self {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "installation CA");
        let cert = params.self_signed(&key).unwrap();
        Self { cert, key }
    }

    fn write(&self, dir: &Path) -> std::path::PathBuf {
        let path = dir.join("ca.crt");
        std::fs::write(&path, self.cert.pem()).unwrap();
        path
    }

    fn node(&self, dir: &Path, name: &str) -> NodeIdentity {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        let (c, k) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        NodeIdentity::from_files(&c, &k).unwrap()
    }
}

fn generated(dir: &Path) -> NodeIdentity {
    NodeIdentity::load_or_create(dir).unwrap()
}

/// One connection from `client` (expecting `expected`, or the CA) to a
/// listener of `server` accepting `registered` (and the CA): whether a byte
/// made it through both ways.
async fn talk(
    server: &NodeIdentity,
    registered: &[String],
    server_ca: Option<ClusterCa>,
    client: &NodeIdentity,
    expected: Option<String>,
    client_ca: Option<ClusterCa>,
) -> bool {
    mongars_net::install_crypto();
    let set = Registered::default();
    set.replace(registered.iter().cloned());
    let acceptor =
        tokio_rustls::TlsAcceptor::from(Arc::new(server_config(server, set, server_ca).unwrap()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = acceptor.accept(tcp).await.ok()?;
        let mut b = [0u8; 1];
        tls.read_exact(&mut b).await.ok()?;
        tls.write_all(&b).await.ok()?;
        tls.flush().await.ok()?;
        Some(())
    });
    let connector = tokio_rustls::TlsConnector::from(Arc::new(
        client_config(client, expected, client_ca).unwrap(),
    ));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("peer").unwrap();
    let ok = async {
        let mut tls = connector.connect(name, tcp).await.ok()?;
        tls.write_all(b"x").await.ok()?;
        tls.flush().await.ok()?;
        let mut b = [0u8; 1];
        tls.read_exact(&mut b).await.ok()?;
        Some(())
    }
    .await
    .is_some();
    let served = serving.await.unwrap().is_some();
    ok && served
}

#[tokio::test]
async fn pinned_keys_let_registered_nodes_in_and_keep_others_out() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (a, b, stranger) = (
        generated(dirs[0].path()),
        generated(dirs[1].path()),
        generated(dirs[2].path()),
    );
    let fp_a = Some(a.fingerprint.clone());
    assert!(
        talk(
            &a,
            std::slice::from_ref(&b.fingerprint),
            None,
            &b,
            fp_a.clone(),
            None
        )
        .await
    );
    // Not registered: refused by the listener.
    assert!(
        !talk(
            &a,
            std::slice::from_ref(&b.fingerprint),
            None,
            &stranger,
            fp_a.clone(),
            None
        )
        .await
    );
    assert!(!talk(&a, &[], None, &b, fp_a.clone(), None).await);
    // The listener is not the key the caller expects: the caller refuses.
    let fp_stranger = Some(stranger.fingerprint.clone());
    assert!(
        !talk(
            &a,
            std::slice::from_ref(&b.fingerprint),
            None,
            &b,
            fp_stranger,
            None
        )
        .await
    );
}

#[tokio::test]
async fn the_installation_ca_vouches_for_its_nodes_only() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let ca_file = ca.write(dir.path());
    let trust = || Some(ClusterCa::from_pem_file(&ca_file).unwrap());
    let (a, b) = (ca.node(dir.path(), "a"), ca.node(dir.path(), "b"));
    // Unregistered, unpinned, both signed by the CA: accepted both ways.
    assert!(talk(&a, &[], trust(), &b, None, trust()).await);
    // A self-signed stranger is not the CA's.
    let other = tempfile::tempdir().unwrap();
    let stranger = generated(other.path());
    assert!(!talk(&a, &[], trust(), &stranger, None, trust()).await);
    assert!(
        !talk(
            &stranger,
            std::slice::from_ref(&b.fingerprint),
            None,
            &b,
            None,
            trust()
        )
        .await
    );
    // Another CA's node neither.
    let rogue = Ca::new();
    let r = rogue.node(dir.path(), "rogue");
    assert!(!talk(&a, &[], trust(), &r, None, trust()).await);
    // A node's id is its key's fingerprint, whoever signed it.
    assert_eq!(a.fingerprint.len(), 64);
    assert_ne!(a.fingerprint, b.fingerprint);
}
