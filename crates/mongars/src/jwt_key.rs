//! The HS256 signing key: from `auth.jwt_secret`, or generated once into
//! `<data_dir>/jwt.key` (mode 0600) so tokens survive restarts.

use anyhow::{Context, bail};
use mongars_config::{MIN_JWT_SECRET_BYTES, Settings};
use std::io::{ErrorKind, Write};
use std::path::Path;

/// Where the key came from, for `doctor` and start-up logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    Settings,
    File,
    Generated,
}

pub fn resolve(settings: &Settings) -> anyhow::Result<(Vec<u8>, KeySource)> {
    if settings.auth.jwt_secret.is_set() {
        return Ok((
            settings.auth.jwt_secret.expose().as_bytes().to_vec(),
            KeySource::Settings,
        ));
    }
    let path = settings.jwt_key_path();
    match read_key(&path) {
        Ok(key) => return Ok((key, KeySource::File)),
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(e),
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    }
    let mut raw = [0u8; 48];
    getrandom::fill(&mut raw).context("no system randomness for the JWT key")?;
    let key: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    match create_private(&path) {
        Ok(mut file) => {
            file.write_all(key.as_bytes())
                .and_then(|_| file.sync_all())
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok((key.into_bytes(), KeySource::Generated))
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok((read_key(&path)?, KeySource::File)),
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

/// What `resolve` would do, without creating anything.
pub fn describe(settings: &Settings) -> String {
    if settings.auth.jwt_secret.is_set() {
        return "from settings (auth.jwt_secret)".into();
    }
    let path = settings.jwt_key_path();
    match read_key(&path) {
        Ok(_) => format!("from {}", path.display()),
        Err(e) if is_not_found(&e) => {
            format!("will be generated into {} on first start", path.display())
        }
        Err(e) => format!("PROBLEM: {e:#}"),
    }
}

fn is_not_found(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == ErrorKind::NotFound)
}

fn read_key(path: &Path) -> anyhow::Result<Vec<u8>> {
    let text = std::fs::read_to_string(path)?;
    let key = text.trim().as_bytes().to_vec();
    if key.len() < MIN_JWT_SECRET_BYTES {
        bail!(
            "{} holds a key of {} bytes; at least {MIN_JWT_SECRET_BYTES} are required. \
             Delete the file to generate a new key (existing tokens stop working) \
             or set auth.jwt_secret",
            path.display(),
            key.len()
        );
    }
    warn_if_exposed(path);
    Ok(key)
}

#[cfg(unix)]
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(unix)]
fn warn_if_exposed(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "JWT key file is readable by other users; chmod 600 it");
    }
}

#[cfg(not(unix))]
fn warn_if_exposed(_: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &Path) -> Settings {
        let mut s = mongars_config::defaults().unwrap();
        s.data_dir = dir.to_path_buf();
        s
    }

    #[test]
    fn generated_once_then_reused_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        let (k1, src1) = resolve(&s).unwrap();
        let (k2, src2) = resolve(&s).unwrap();
        assert_eq!((src1, src2), (KeySource::Generated, KeySource::File));
        assert_eq!(k1, k2);
        assert!(k1.len() >= 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(s.jwt_key_path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn short_key_file_is_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        std::fs::write(s.jwt_key_path(), "short").unwrap();
        let err = resolve(&s).unwrap_err().to_string();
        assert!(err.contains("at least 32"), "{err}");
    }

    #[test]
    fn settings_key_wins() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(dir.path());
        s.auth.jwt_secret = mongars_config::Secret::new("k".repeat(40));
        let (k, src) = resolve(&s).unwrap();
        assert_eq!((k.len(), src), (40, KeySource::Settings));
        assert!(!s.jwt_key_path().exists());
    }
}
