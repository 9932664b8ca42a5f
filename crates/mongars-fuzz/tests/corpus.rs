//! Every saved fuzz input, run once through its target: the seeds of
//! `fuzz/corpus/<target>/` (valid and near-valid inputs of each parser,
//! plus whatever `make fuzz` found worth keeping) and the inputs that once
//! broke a parser, in `fuzz/regressions/<target>/`.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_saved_input_passes_its_target() {
    for (name, target) in mongars_fuzz::TARGETS {
        let seeds = inputs(&root().join("corpus").join(name));
        assert!(
            !seeds.is_empty(),
            "no seeds for {name} in fuzz/corpus/{name}"
        );
        let found = inputs(&root().join("regressions").join(name));
        for file in seeds.iter().chain(&found) {
            let data = std::fs::read(file).unwrap();
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name} fails on {}", file.display());
        }
    }
}

#[test]
fn every_target_has_a_fuzzer() {
    for (name, _) in mongars_fuzz::TARGETS {
        let file = root().join("fuzz_targets").join(format!("{name}.rs"));
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|_| panic!("{} is missing", file.display()));
        assert!(text.contains(&format!("mongars_fuzz::{name}(")), "{text}");
    }
}

/// The model seed is a header training accepts, so that mutations start
/// from the paths a real file takes.
#[test]
fn the_gguf_seed_reads_as_a_llama_model() {
    let data = std::fs::read(root().join("corpus/gguf/llama_header")).unwrap();
    let config =
        mongars_train::model::gguf_config_of(&mut std::io::Cursor::new(data), "seed").unwrap();
    assert_eq!((config.hidden, config.layers, config.kv_heads), (64, 2, 2));
}
