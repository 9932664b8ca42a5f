//! The core's modules import each other without cycles: neither between
//! files (a service and the code it calls) nor between top-level modules
//! (ports never depend on the services built on them). Read from the source,
//! so a new cycle fails here rather than in a reviewer's head.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Every `.rs` file under `src`, by module path (`conversation::service`).
fn modules(src: &Path) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(src).unwrap().with_extension("");
                let mut parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
                    parts.pop();
                }
                out.insert(parts.join("::"), path);
            }
        }
    }
    out
}

/// Paths named in `use` items and in code (`crate::a::b`, `super::x`),
/// outside comments and unit tests.
fn referenced_paths(source: &str) -> Vec<String> {
    let code: String = source
        .split("#[cfg(test)]")
        .next()
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = Vec::new();
    for start in ["crate::", "super::"] {
        let mut rest = code.as_str();
        while let Some(at) = rest.find(start) {
            let path: String = rest[at..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            out.push(path.trim_end_matches(':').to_string());
            rest = &rest[at + start.len()..];
        }
    }
    out
}

/// The module a path names: its longest prefix that is a file. `super`
/// is the parent of the module the file is (the same for `a/b.rs` and
/// `a/b/mod.rs`).
fn resolve(from: &str, path: &str, all: &BTreeMap<String, PathBuf>) -> Option<String> {
    let segs: Vec<&str> = path.split("::").collect();
    let mut base: Vec<&str> = from.split("::").filter(|s| !s.is_empty()).collect();
    let rest = match segs[0] {
        "crate" => {
            base.clear();
            &segs[1..]
        }
        "super" => {
            let ups = segs.iter().take_while(|s| **s == "super").count();
            for _ in 0..ups {
                base.pop()?;
            }
            &segs[ups..]
        }
        _ => return None,
    };
    (0..=rest.len()).rev().find_map(|n| {
        let mut full = base.clone();
        full.extend_from_slice(&rest[..n]);
        let name = full.join("::");
        all.contains_key(&name).then_some(name)
    })
}

fn related(a: &str, b: &str) -> bool {
    a.is_empty()
        || b.is_empty()
        || a.starts_with(&format!("{b}::"))
        || b.starts_with(&format!("{a}::"))
}

fn file_graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let all = modules(&src);
    let mut graph = Graph::new();
    for (name, path) in &all {
        let source = std::fs::read_to_string(path).unwrap();
        let edges = graph.entry(name.clone()).or_default();
        for p in referenced_paths(&source) {
            if let Some(to) = resolve(name, &p, &all)
                && to != *name
                && !related(name, &to)
            {
                edges.insert(to);
            }
        }
    }
    graph
}

/// A cycle in `graph`, if there is one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        graph: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == n) {
            let mut cycle = path[at..].to_vec();
            cycle.push(n.to_string());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        for next in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_file_imports_one_that_imports_it_back() {
    let graph = file_graph();
    assert!(graph.contains_key("conversation::service"), "{graph:?}");
    assert!(graph["conversation::service"].contains("conversation::finish"));
    assert_eq!(find_cycle(&graph), None);
}

#[test]
fn top_level_modules_form_layers() {
    let mut top = Graph::new();
    for (from, tos) in file_graph() {
        let a = from.split("::").next().unwrap_or_default().to_string();
        for to in tos {
            let b = to.split("::").next().unwrap_or_default().to_string();
            if a != b && !a.is_empty() && !b.is_empty() {
                top.entry(a.clone()).or_default().insert(b);
            }
        }
    }
    assert_eq!(find_cycle(&top), None, "{top:?}");
    // The ports know the domain and the error type, not the services.
    let ports: Vec<&String> = top["ports"].iter().collect();
    assert_eq!(ports, ["domain", "error"], "{top:?}");
}
