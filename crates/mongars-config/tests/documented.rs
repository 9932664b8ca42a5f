//! Every setting of `config/default.toml` has a row in the README's
//! configuration table, and every row names a real setting: a new setting
//! without documentation fails here.

use std::collections::BTreeSet;
use std::path::Path;

/// Dotted keys of a TOML table; tables of named entries (profiles, backends)
/// become `<name>` (and a profile's roles `<role>`), as the README writes them.
fn keys(prefix: &str, table: &toml::Table, out: &mut BTreeSet<String>) {
    for (k, v) in table {
        let k = match prefix {
            "llm.profiles" | "llm.backends" => "<name>",
            "llm.profiles.<name>" => "<role>",
            _ => k.as_str(),
        };
        let key = if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => keys(&key, t, out),
            _ => {
                out.insert(key);
            }
        }
    }
}

/// Settings named in the README's table rows: "`a.b.c` / `d` / `e`" names
/// a.b.c, a.b.d and a.b.e.
fn documented(readme: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let table = readme
        .split("## Configuration")
        .nth(1)
        .expect("a Configuration section")
        .split("\n## ")
        .next()
        .unwrap();
    for line in table.lines().filter(|l| l.starts_with("| `")) {
        let cell = line.split('|').nth(1).unwrap();
        let names: Vec<&str> = cell
            .split(" / ")
            .map(|n| n.trim().trim_matches('`'))
            .collect();
        let first = names[0];
        let parent = first.rsplit_once('.').map_or("", |(p, _)| p);
        out.insert(first.to_string());
        for n in &names[1..] {
            out.insert(format!("{parent}.{n}"));
        }
    }
    out
}

#[test]
fn every_setting_is_in_the_readme_table_and_every_row_is_a_setting() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let defaults: toml::Table =
        toml::from_str(&std::fs::read_to_string(root.join("config/default.toml")).unwrap())
            .unwrap();
    let mut settings = BTreeSet::new();
    keys("", &defaults, &mut settings);
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    // The README names the Ray-only options on the Ray backend of the defaults.
    let rows: BTreeSet<String> = documented(&readme)
        .into_iter()
        .map(|r| r.replace("llm.backends.ray.", "llm.backends.<name>."))
        .collect();
    let missing: Vec<_> = settings.difference(&rows).collect();
    assert!(
        missing.is_empty(),
        "settings missing from the README table: {missing:?}"
    );
    let unknown: Vec<_> = rows.difference(&settings).collect();
    assert!(
        unknown.is_empty(),
        "README rows that are no setting: {unknown:?}"
    );
    assert!(settings.len() > 80, "{settings:?}");
}
