//! The inputs the fuzzers feed, one function per target, each taking raw
//! bytes as a client, a backend, a peer, a settings file or a model file
//! could hold them.
//! A target passes when the parser answers (accepts or refuses) without
//! panicking and what it accepts holds its promises (a cleaned message is
//! clean, a token that decodes was signed with the key...).
//!
//! `fuzz/` (a `cargo fuzz` project outside the workspace) runs them under
//! libFuzzer (`make fuzz`); `tests/corpus.rs` runs every saved input of
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` once in the
//! test suite.

mod targets;

pub use targets::{backend_stream, config, gguf, peer, request, token, ws_frame};

/// A fuzz target: raw bytes in, a panic when something is wrong.
pub type Target = fn(&[u8]);

/// Every target by its name in `fuzz/`.
pub const TARGETS: [(&str, Target); 7] = [
    ("request", request),
    ("ws_frame", ws_frame),
    ("token", token),
    ("backend_stream", backend_stream),
    ("config", config),
    ("peer", peer),
    ("gguf", gguf),
];
