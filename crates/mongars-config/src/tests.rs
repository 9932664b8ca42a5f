use super::*;
use std::io::Write;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn defaults_load_and_validate() {
    let s = defaults().expect("embedded defaults are valid");
    assert_eq!(s.server.host, "127.0.0.1");
    assert_eq!(s.server.port, 8000);
    assert_eq!(s.logging.format, LogFormat::Text);
    assert!(!s.auth.jwt_secret.is_set());
    assert_eq!(
        s.database_target(),
        DatabaseTarget::Sqlite(PathBuf::from("data/mongars.db"))
    );
}

#[test]
fn file_then_env_precedence() {
    let mut f = tempfile_in_target();
    writeln!(f.1, "[server]\nport = 9100\nhost = \"0.0.0.0\"").unwrap();
    let s = load(&LoadOptions {
        file: Some(f.0.clone()),
        env: env(&[("MONGARS_SERVER__PORT", "9200")]),
    })
    .unwrap();
    assert_eq!(s.server.port, 9200, "env beats file");
    assert_eq!(s.server.host, "0.0.0.0", "file beats defaults");
    let _ = std::fs::remove_file(&f.0);
}

#[test]
fn a_file_variable_reads_its_value_from_the_file() {
    let mut f = tempfile_in_target();
    writeln!(f.1, "postgres://u:p@db/mongars").unwrap();
    let path = f.0.display().to_string();
    let s = load(&LoadOptions {
        file: None,
        env: env(&[
            ("MONGARS_DATABASE__URL_FILE", path.as_str()),
            ("MONGARS_VAULT__TOKEN_FILE", "/run/secrets/vault-token"),
        ]),
    })
    .unwrap();
    assert_eq!(s.database.url.expose(), "postgres://u:p@db/mongars");
    assert_eq!(
        s.vault.token_file,
        std::path::PathBuf::from("/run/secrets/vault-token"),
        "a setting named ..._file is itself"
    );
    let _ = std::fs::remove_file(&f.0);
    let err = load(&LoadOptions {
        file: None,
        env: env(&[("MONGARS_AUTH__JWT_SECRET_FILE", "/nonexistent/jwt")]),
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("auth.jwt_secret: cannot read the file /nonexistent/jwt"),
        "{err}"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let err = load(&LoadOptions {
        file: None,
        env: env(&[
            ("MONGARS_SERVER__PORT", "abc"),
            ("MONGARS_AUTH__TOKEN_TTL_MINUTES", "soon"),
            ("MONGARS_SERVER__NOPE", "1"),
            ("MONGARS_AUTH__JWT_SECRET", "too-short"),
        ]),
    })
    .unwrap_err();
    assert_eq!(err.0.len(), 4, "{err}");
    assert!(
        err.mentions("auth.jwt_secret"),
        "type and rule errors together: {err}"
    );
    assert!(err.mentions("server.port"));
    assert!(err.mentions("auth.token_ttl_minutes"));
    assert!(err.mentions("server.nope"));
    let text = err.to_string();
    assert!(text.contains("MONGARS_SERVER__PORT"), "{text}");
}

#[test]
fn semantic_errors_are_collected() {
    let err = load(&LoadOptions {
        file: None,
        env: env(&[
            ("MONGARS_AUTH__JWT_SECRET", "short"),
            ("MONGARS_BOOTSTRAP__ADMIN_USERNAME", "root"),
            ("MONGARS_LOGGING__LEVEL", "loud"),
            ("MONGARS_DATABASE__URL", "mysql://x"),
        ]),
    })
    .unwrap_err();
    for key in [
        "auth.jwt_secret",
        "bootstrap.admin_password",
        "logging.level",
        "database.url",
    ] {
        assert!(err.mentions(key), "{key} missing from {err}");
    }
    assert!(err.to_string().contains("at least 32 bytes"));
    // The rejected secret itself is never echoed.
    assert!(!err.to_string().contains("mysql://x"));
}

#[test]
fn out_of_range_integer_names_the_key() {
    let err = load(&LoadOptions {
        file: None,
        env: env(&[("MONGARS_SERVER__PORT", "70000")]),
    })
    .unwrap_err();
    assert!(err.mentions("server.port"), "{err}");
}

#[test]
fn enum_values_are_checked() {
    let err = load(&LoadOptions {
        file: None,
        env: env(&[("MONGARS_LOGGING__FORMAT", "xml")]),
    })
    .unwrap_err();
    assert!(err.mentions("logging.format"), "{err}");
}

#[test]
fn every_embedding_precision_is_read_and_auto_is_the_default() {
    let s = defaults().unwrap();
    assert_eq!(s.embeddings.precision, EmbedPrecision::Auto);
    for (name, want) in [
        ("auto", EmbedPrecision::Auto),
        ("f16", EmbedPrecision::F16),
        ("f32", EmbedPrecision::F32),
        ("int8", EmbedPrecision::Int8),
        ("bf16", EmbedPrecision::Bf16),
    ] {
        let s = load(&LoadOptions {
            file: None,
            env: env(&[("MONGARS_EMBEDDINGS__PRECISION", name)]),
        })
        .unwrap();
        assert_eq!(s.embeddings.precision, want, "{name}");
    }
    let err = load(&LoadOptions {
        file: None,
        env: env(&[("MONGARS_EMBEDDINGS__PRECISION", "fp8")]),
    })
    .unwrap_err();
    assert!(err.mentions("embeddings.precision"), "{err}");
}

#[test]
fn redacted_rendering_hides_secrets() {
    let s = load(&LoadOptions {
        file: None,
        env: env(&[
            (
                "MONGARS_AUTH__JWT_SECRET",
                "0123456789abcdef0123456789abcdef-secret",
            ),
            ("MONGARS_DATABASE__URL", "postgres://u:pw@localhost/db"),
        ]),
    })
    .unwrap();
    let shown = s.to_redacted_toml();
    assert!(!shown.contains("0123456789abcdef"), "{shown}");
    assert!(!shown.contains("pw@"), "{shown}");
    assert!(shown.contains(REDACTED));
    assert!(!format!("{s:?}").contains("0123456789abcdef"));
    assert!(matches!(s.database_target(), DatabaseTarget::Postgres(_)));
}

#[test]
fn sqlite_urls() {
    let dir = Path::new("d");
    assert_eq!(
        settings::database_target("sqlite:///tmp/x.db?mode=rwc", dir),
        DatabaseTarget::Sqlite(PathBuf::from("/tmp/x.db"))
    );
    assert_eq!(
        settings::database_target("sqlite:rel.db", dir),
        DatabaseTarget::Sqlite(PathBuf::from("rel.db"))
    );
}

#[test]
fn missing_file_is_an_error() {
    let err = load(&LoadOptions {
        file: Some(PathBuf::from("/nonexistent/mongars.toml")),
        env: vec![],
    })
    .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/mongars.toml"));
}

fn tempfile_in_target() -> (PathBuf, std::fs::File) {
    let path = std::env::temp_dir().join(format!(
        "mongars-config-test-{}-{:?}.toml",
        std::process::id(),
        std::thread::current().id()
    ));
    let f = std::fs::File::create(&path).unwrap();
    (path, f)
}
