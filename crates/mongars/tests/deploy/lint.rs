//! hadolint on every Dockerfile: nothing to report.

use super::docker::{output, repo};

#[test]
fn the_dockerfile_is_lint_clean() {
    let tools = std::env::var("MONGARS_TEST_TOOLS")
        .ok()
        .filter(|t| !t.is_empty());
    let hadolint = tools.map(|t| format!("{t}/hadolint"));
    let Some(hadolint) = hadolint.filter(|h| std::path::Path::new(h).exists()) else {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI=true but hadolint is missing: `make test` installs it into target/tools"
        );
        mongars_store::testing::skipped("hadolint missing (MONGARS_TEST_TOOLS unset)");
        return;
    };
    for file in [
        "deploy/Dockerfile",
        "deploy/compose/postgres/Dockerfile",
        "deploy/compose/redis/Dockerfile",
        "deploy/compose/proxy/Dockerfile",
    ] {
        let path = repo().join(file);
        let out = output(&hadolint, &[path.to_str().unwrap()]);
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && said.trim().is_empty(),
            "{file}: {said}"
        );
    }
}
