//! The weights the engine computes with: the model file as it is, or its
//! matrices widened to Q8_0 once and kept beside the server's data.
//!
//! llama.cpp's CPU backend has batched matrix kernels (llamafile's tinyBLAS,
//! the repacked layouts) for Q8_0, Q4_0, Q5_0, IQ4_NL and the K-quants, but
//! none for Q4_1 and Q5_1, the formats of the shipped default model. Every
//! matrix product of those files runs as one dot product per row and
//! column: reading a prompt costs as much per token as generating. Widened
//! to Q8_0, the same values (each 4- or 5-bit level is within half a Q8_0
//! step of where it was, about 1/16 of the file's own step) are read with
//! the batched kernels: prompts are read faster and single-stream decoding
//! gets quicker too, at about 1.5 times the model's memory (decision 0020).
//!
//! The widened file is written by llama.cpp's own quantizer into a
//! temporary name and renamed, so a crash never leaves half a file under
//! the real name; its name holds the source file's SHA-256, so a changed
//! model file is widened again and the stale copy removed. Anything that
//! goes wrong here (a read-only folder, a full disk) is logged and the
//! model file is served as it is.

use super::load::load_model;
use llama_cpp_2::model::LlamaModel;
use mongars_core::ports::LlmError;
use std::ffi::CString;
use std::path::{Path, PathBuf};

/// Which weights the engine computes with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Weights {
    /// The model file as it is.
    AsFile,
    /// 4- and 5-bit matrices without batched kernels widened to Q8_0, the
    /// widened file kept in `dir`.
    Q8_0 { dir: PathBuf },
}

/// llama.cpp file types (`general.file_type`) widened to Q8_0: those whose
/// matrices have no batched CPU kernel and lose nothing in the widening.
const WIDENED: [(u32, &str); 2] = [
    (llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q4_1, "Q4_1"),
    (llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q5_1, "Q5_1"),
];

/// The format name of a file type that is widened, if it is.
pub(crate) fn widened_from(file_type: u32) -> Option<&'static str> {
    WIDENED
        .iter()
        .find(|(t, _)| *t == file_type)
        .map(|(_, name)| *name)
}

/// What loading found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The model file is served as it is (asked for, or nothing to widen).
    AsFile,
    /// A widened file written earlier was loaded.
    Reused,
    /// The matrices were widened now.
    Widened,
    /// Widening was asked for and failed; the model file is served.
    FellBack,
}

/// The model the engine computes with, the file it came from and what was
/// done to get it.
pub(crate) struct Loaded {
    pub model: LlamaModel,
    pub path: PathBuf,
    pub outcome: Outcome,
}

/// Load `source` with the weights asked for.
pub(crate) fn load_weights(
    source: &Path,
    weights: &Weights,
    threads: usize,
) -> Result<Loaded, LlmError> {
    let model = load_model(source)?;
    let as_file = |model, outcome| Loaded {
        model,
        path: source.to_path_buf(),
        outcome,
    };
    let Weights::Q8_0 { dir } = weights else {
        return Ok(as_file(model, Outcome::AsFile));
    };
    let file_type = model
        .meta_val_str("general.file_type")
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok());
    let Some(format) = file_type.and_then(widened_from) else {
        return Ok(as_file(model, Outcome::AsFile));
    };
    let started = std::time::Instant::now();
    match widen(source, dir, threads) {
        Ok((path, outcome)) => match load_model(&path) {
            Ok(widened) => {
                drop(model);
                let ms = started.elapsed().as_millis() as u64;
                tracing::info!(from = format, path = %path.display(), ?outcome, ms, "model weights widened to Q8_0");
                Ok(Loaded {
                    model: widened,
                    path,
                    outcome,
                })
            }
            Err(e) => {
                // A damaged copy: removed, so the next start writes it again.
                let _ = std::fs::remove_file(&path);
                tracing::warn!(error = %e, path = %path.display(), "the widened weights cannot be loaded; serving the model file as it is");
                Ok(as_file(model, Outcome::FellBack))
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, dir = %dir.display(), "cannot widen the model weights to Q8_0; serving the model file as it is");
            Ok(as_file(model, Outcome::FellBack))
        }
    }
}

/// The widened copy of `source` in `dir`: reused when there, else written.
fn widen(source: &Path, dir: &Path, threads: usize) -> Result<(PathBuf, Outcome), String> {
    // Engines of one process (a reload, tests) widen one at a time, so
    // none writes the same file twice. Processes sharing the folder (in
    // containers they may all be pid 1) write under names of their own.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let digest = mongars_core::training::registry::sha256_file(source)
        .map_err(|e| format!("cannot read {}: {e}", source.display()))?;
    let stem = source
        .file_stem()
        .map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned());
    let target = dir.join(widened_name(&stem, &digest));
    if target.is_file() {
        return Ok((target, Outcome::Reused));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    remove_stale(dir, &stem, &target, std::time::SystemTime::now());
    let partial = target.with_extension(format!(
        "partial-{}-{:016x}",
        std::process::id(),
        getrandom::u64().unwrap_or(0)
    ));
    let result = quantize_q8_0(source, &partial, threads)
        .and_then(|()| std::fs::rename(&partial, &target).map_err(|e| e.to_string()));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    Ok((target, Outcome::Widened))
}

/// `<stem>-<first 16 hex digits of the source's SHA-256>.q8_0.gguf`.
pub(crate) fn widened_name(stem: &str, sha256_hex: &str) -> String {
    let short = sha256_hex.get(..16).unwrap_or(sha256_hex);
    format!("{stem}-{short}.q8_0.gguf")
}

/// A partial file this old was left by a process that stopped while
/// writing it: widening takes seconds.
const ABANDONED: std::time::Duration = std::time::Duration::from_secs(600);

/// Widened copies of earlier versions of the same model file, and partial
/// files abandoned before `now - ABANDONED` (younger ones may be another
/// process's, still being written).
fn remove_stale(dir: &Path, stem: &str, keep: &Path, now: std::time::SystemTime) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!("{stem}-");
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(&prefix) || path == keep {
            continue;
        }
        let abandoned = || {
            let modified = entry.metadata().and_then(|m| m.modified());
            modified.is_ok_and(|m| now.duration_since(m).is_ok_and(|age| age > ABANDONED))
        };
        let stale =
            name.ends_with(".q8_0.gguf") || (name.contains(".q8_0.partial-") && abandoned());
        if stale && std::fs::remove_file(&path).is_ok() {
            tracing::info!(path = %path.display(), "removed widened weights of an earlier model file");
        }
    }
}

/// llama.cpp's quantizer, every matrix to Q8_0 (norms stay F32).
#[allow(unsafe_code)] // llama.cpp's C API, which llama-cpp-2 does not wrap
fn quantize_q8_0(source: &Path, target: &Path, threads: usize) -> Result<(), String> {
    super::load::llama_backend().map_err(|e| e.to_string())?;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_encoded_bytes())
            .map_err(|_| format!("{} holds a NUL byte", p.display()))
    };
    let (from, to) = (c(source)?, c(target)?);
    // SAFETY: the default parameters are a plain value; the two paths are
    // NUL-terminated strings that outlive the call, and every pointer field
    // left at its default is null, which the quantizer reads as "none".
    let status = unsafe {
        let mut params = llama_cpp_sys_2::llama_model_quantize_default_params();
        params.nthread = i32::try_from(threads.max(1)).unwrap_or(1);
        params.ftype = llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q8_0;
        params.allow_requantize = true;
        llama_cpp_sys_2::llama_model_quantize(from.as_ptr(), to.as_ptr(), &params)
    };
    if status == 0 {
        Ok(())
    } else {
        Err(format!(
            "llama.cpp could not widen {} (status {status})",
            source.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_formats_without_batched_kernels_are_widened() {
        assert_eq!(widened_from(3), Some("Q4_1"));
        assert_eq!(widened_from(9), Some("Q5_1"));
        // F32, F16, Q4_0, Q8_0, Q5_0, Q4_K_M: served as they are.
        for t in [0, 1, 2, 7, 8, 15] {
            assert_eq!(widened_from(t), None, "file type {t}");
        }
    }

    #[test]
    fn the_name_follows_the_source_bytes() {
        let a = widened_name("SmolLM2", &"ab".repeat(32));
        assert_eq!(a, "SmolLM2-abababababababab.q8_0.gguf");
        assert_ne!(a, widened_name("SmolLM2", &"cd".repeat(32)));
    }

    #[test]
    fn earlier_copies_and_abandoned_partial_writes_are_removed() {
        let dir = std::env::temp_dir().join(format!("mongars-widen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let keep = dir.join("m-0000000000000001.q8_0.gguf");
        let names = [
            "m-0000000000000000.q8_0.gguf",
            "m-0000000000000001.q8_0.partial-77-0a",
            "m-0000000000000001.q8_0.partial-78-0b",
            "m-0000000000000001.q8_0.gguf",
            "other-0000000000000000.q8_0.gguf",
            "m-notes.txt",
        ];
        for n in names {
            std::fs::write(dir.join(n), b"x").unwrap();
        }
        let now = std::time::SystemTime::now();
        // One partial file left by a process that stopped an hour ago, one
        // of a process writing now.
        let old = now - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(dir.join("m-0000000000000001.q8_0.partial-77-0a"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        remove_stale(&dir, "m", &keep, now);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "m-0000000000000001.q8_0.gguf",
                "m-0000000000000001.q8_0.partial-78-0b",
                "m-notes.txt",
                "other-0000000000000000.q8_0.gguf"
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
