//! A node's identity: a key pair and a certificate, made on first start in
//! the data directory (`peer/node.key`, `peer/node.crt`, mode 0600), or
//! files signed by the installation's own CA. The node id is the SHA-256 of
//! the certificate's public key (SPKI), so a certificate re-issued for the
//! same key keeps the id, and a new key is a new node to its peers.

use crate::der;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub struct NodeIdentity {
    /// The node's certificate, then any intermediates up to the CA.
    pub chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    /// Hex SHA-256 of the certificate's SPKI.
    pub fingerprint: String,
    /// Where the certificate was read from.
    pub cert_path: PathBuf,
}

impl std::fmt::Debug for NodeIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeIdentity")
            .field("fingerprint", &self.fingerprint)
            .field("cert_path", &self.cert_path)
            .finish()
    }
}

impl Clone for NodeIdentity {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            fingerprint: self.fingerprint.clone(),
            cert_path: self.cert_path.clone(),
        }
    }
}

/// The fingerprint (node id) of a DER certificate; `None` when it is not
/// one.
pub fn fingerprint(cert: &[u8]) -> Option<String> {
    let spki = der::spki(cert)?;
    Some(hex(&Sha256::digest(spki)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The folder of the generated identity inside the data directory.
pub fn identity_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("peer")
}

impl NodeIdentity {
    pub fn key(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }

    /// The generated identity in `data_dir`, made now if there is none.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, String> {
        let dir = identity_dir(data_dir);
        let (cert, key) = (dir.join("node.crt"), dir.join("node.key"));
        if !cert.exists() || !key.exists() {
            Self::generate(&dir)?;
        }
        Self::from_files(&cert, &key)
    }

    /// Replace the generated identity with a new key pair (a new node id:
    /// register it on every peer). The old files are kept beside, renamed
    /// with `.old`.
    pub fn rotate(data_dir: &Path) -> Result<Self, String> {
        let dir = identity_dir(data_dir);
        for name in ["node.crt", "node.key"] {
            let path = dir.join(name);
            if path.exists() {
                std::fs::rename(&path, dir.join(format!("{name}.old")))
                    .map_err(|e| format!("cannot keep {}: {e}", path.display()))?;
            }
        }
        Self::generate(&dir)?;
        Self::from_files(&dir.join("node.crt"), &dir.join("node.key"))
    }

    fn generate(dir: &Path) -> Result<(), String> {
        create_private_dir(dir)?;
        let key = rcgen::KeyPair::generate().map_err(|e| format!("key generation: {e}"))?;
        let mut params = rcgen::CertificateParams::new(vec!["mongars-node".to_string()])
            .map_err(|e| format!("certificate: {e}"))?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "monGARS node");
        // Peers pin the key, not a name or a date; a long validity spares
        // operators a renewal that would change nothing.
        params.not_before = rcgen::date_time_ymd(2025, 1, 1);
        params.not_after = rcgen::date_time_ymd(2125, 1, 1);
        let cert = params
            .self_signed(&key)
            .map_err(|e| format!("certificate: {e}"))?;
        write_private(&dir.join("node.key"), key.serialize_pem().as_bytes())?;
        write_private(&dir.join("node.crt"), cert.pem().as_bytes())?;
        Ok(())
    }

    /// A certificate chain and key from PEM files (the generated ones, or
    /// those an installation's CA signed).
    pub fn from_files(cert_path: &Path, key_path: &Path) -> Result<Self, String> {
        let pem = std::fs::read(cert_path)
            .map_err(|e| format!("cannot read {}: {e}", cert_path.display()))?;
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{}: not a PEM certificate: {e}", cert_path.display()))?;
        let first = chain
            .first()
            .ok_or_else(|| format!("{}: no certificate in it", cert_path.display()))?;
        let fingerprint = fingerprint(first)
            .ok_or_else(|| format!("{}: not an X.509 certificate", cert_path.display()))?;
        let key = PrivateKeyDer::from_pem_file(key_path)
            .map_err(|e| format!("{}: no usable private key: {e}", key_path.display()))?;
        Ok(Self {
            chain,
            key,
            fingerprint,
            cert_path: cert_path.to_path_buf(),
        })
    }
}

fn create_private_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("cannot restrict {}: {e}", dir.display()))?;
    }
    Ok(())
}

/// Write `bytes` to a new file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_kept_private_and_rotated_to_a_new_id() {
        let dir = tempfile::tempdir().unwrap();
        let a = NodeIdentity::load_or_create(dir.path()).unwrap();
        assert_eq!(a.fingerprint.len(), 64);
        let again = NodeIdentity::load_or_create(dir.path()).unwrap();
        assert_eq!(a.fingerprint, again.fingerprint);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for f in ["node.key", "node.crt"] {
                let mode = std::fs::metadata(identity_dir(dir.path()).join(f))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o777, 0o600, "{f}");
            }
        }
        let b = NodeIdentity::rotate(dir.path()).unwrap();
        assert_ne!(a.fingerprint, b.fingerprint);
        assert!(identity_dir(dir.path()).join("node.key.old").exists());
    }

    #[test]
    fn unreadable_files_say_which() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("c.pem");
        std::fs::write(&cert, "nothing").unwrap();
        let e = NodeIdentity::from_files(&cert, &dir.path().join("k.pem")).unwrap_err();
        assert!(e.contains("c.pem"), "{e}");
    }
}
