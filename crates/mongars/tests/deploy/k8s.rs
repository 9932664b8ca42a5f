//! The Kubernetes manifests: every overlay rendered, validated offline
//! against the Kubernetes schemas (kubernetes-validate) and held to the
//! deployment's policies by `k8s.py`; the same checks shown to catch each
//! kind of mistake on a spoiled copy; and the settings file of the
//! ConfigMap accepted by the server with the environment the pod gets.

use super::docker::repo;
use std::path::Path;
use std::process::{Command, Output};

fn pydeps() -> Option<String> {
    let p = std::env::var("MONGARS_TEST_PYDEPS")
        .ok()
        .filter(|p| !p.is_empty());
    if p.is_none() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI=true but MONGARS_TEST_PYDEPS is not set: run `make test`"
        );
        mongars_store::testing::skipped("kubernetes-validate missing (MONGARS_TEST_PYDEPS unset)");
    }
    p
}

fn check(root: &Path, pydeps: &str, config_out: &Path) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/deploy/k8s.py");
    Command::new("python3")
        .arg(script)
        .arg(root)
        .env("PYTHONPATH", pydeps)
        .env("CONFIG_OUT", config_out)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn every_overlay_renders_validates_and_keeps_the_policies() {
    let Some(pydeps) = pydeps() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mongars.toml");
    let out = check(&repo(), &pydeps, &config);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("dev: ") && said.contains("prod: "), "{said}");
    assert!(
        said.contains("SealedSecret") && said.contains("ExternalSecret"),
        "{said}"
    );

    // The ConfigMap's settings, with what the Secret puts in the environment.
    let shown = Command::new(env!("CARGO_BIN_EXE_mongars"))
        .args(["--config", config.to_str().unwrap(), "config", "show"])
        .env_clear()
        .env(
            "MONGARS_AUTH__JWT_SECRET",
            "a-jwt-secret-of-at-least-32-bytes-long",
        )
        .env(
            "MONGARS_DATABASE__URL",
            "postgres://mongars:pw@postgres/mongars",
        )
        .env("MONGARS_REDIS__URL", "redis://redis:6379")
        .env("MONGARS_METRICS__SCRAPE_TOKEN", "a-scrape-token")
        // The prod overlay's peers.
        .env("MONGARS_LLM__PROFILE", "peers")
        .env("MONGARS_PEERS__ENABLED", "true")
        .env("MONGARS_PEERS__DISCOVERY_DNS", "mongars-peers")
        .env("MONGARS_PEERS__CERT_FILE", "/etc/mongars/peer/tls.crt")
        .env("MONGARS_PEERS__KEY_FILE", "/etc/mongars/peer/tls.key")
        .env("MONGARS_PEERS__CA_FILE", "/etc/mongars/peer/ca.crt")
        .output()
        .unwrap();
    assert!(shown.status.success(), "{}", text(&shown));
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("listen = \"0.0.0.0:9464\""), "{shown}");
    assert!(
        shown.contains("discovery_dns = \"mongars-peers\""),
        "{shown}"
    );
    assert!(!shown.contains("a-scrape-token"), "a secret in config show");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn spoil(root: &Path, file: &str, from: &str, to: &str) {
    let path = root.join("deploy/k8s").join(file);
    let s = std::fs::read_to_string(&path).unwrap();
    assert!(s.contains(from), "{file} has no {from:?}");
    std::fs::write(path, s.replacen(from, to, 1)).unwrap();
}

#[test]
fn the_checks_catch_each_kind_of_mistake() {
    let Some(pydeps) = pydeps() else { return };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    copy_dir(&repo().join("deploy"), &root.join("deploy"));
    copy_dir(&repo().join("docs"), &root.join("docs"));
    let base = "base/deployment.yaml";
    spoil(
        root,
        base,
        "readOnlyRootFilesystem: true",
        "readOnlyRootFilesystem: false",
    );
    spoil(root, base, "drop: [\"ALL\"]", "drop: [\"NET_RAW\"]");
    spoil(root, base, "path: /ready", "path: /readiness");
    spoil(
        root,
        base,
        "automountServiceAccountToken: false",
        "automountServiceAccountToken: true",
    );
    spoil(root, base, "key: redis-url", "key: redis-password");
    spoil(
        root,
        "base/role.yaml",
        "rules: []",
        "rules:\n  - apiGroups: [\"\"]\n    resources: [\"*\"]\n    verbs: [\"get\", \"delete\"]",
    );
    spoil(
        root,
        "base/rolebinding.yaml",
        "    name: mongars",
        "    name: default",
    );
    spoil(
        root,
        "overlays/prod/kustomization.yaml",
        "newTag: \"0.1.0\"",
        "newTag: latest",
    );
    spoil(
        root,
        "base/service.yaml",
        "port: 80\n",
        "port: 80\n      bogusField: 1\n",
    );
    std::fs::write(
        root.join("deploy/k8s/base/leaked.yaml"),
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: leaked\nstringData:\n  jwt-secret: hunter2\n",
    )
    .unwrap();
    let out = check(root, &pydeps, &dir.path().join("unused.toml"));
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    for problem in [
        "container mongars: root filesystem writable",
        "container mongars: capabilities not exactly drop ALL",
        "readinessProbe on /readiness, not a route of the server",
        "the pod mounts a ServiceAccount token it does not use",
        "Secret key redis-password is read but never provided",
        "Role mongars: wildcard in resources",
        "Role mongars: verbs the server never uses: ['delete', 'get']",
        "no RoleBinding binds ServiceAccount 'mongars'",
        "prod: container mongars: image registry.example.com/mongars:latest has no pinned tag",
        "('Service', 'mongars'): schema: Additional properties are not allowed ('bogusField' was unexpected)",
        "a Secret with values is committed in deploy/k8s/base/leaked.yaml",
    ] {
        assert!(said.contains(problem), "not caught: {problem}\n{said}");
    }
}
