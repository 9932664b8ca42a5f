//! Inference backends behind the core's `LlmBackend` port.
//!
//! - [`embedded`]: GGUF models run in-process by llama.cpp (the default).
//! - [`scripted`]: a backend that plays a script, for tests of the pipeline
//!   (failures before or after the first token, slow streams).

pub mod embedded;
pub mod scripted;
pub mod text;
