//! Sentence embeddings behind the core's `Embedder` port.
//!
//! - [`minilm`]: all-MiniLM-L6-v2 run in-process by candle (the default,
//!   offline): 384 dimensions, mean pooling, unit length.
//! - [`remote`]: Ollama and OpenAI-compatible embedding endpoints.

pub mod minilm;
pub mod remote;

pub use minilm::{Kernel, LazyMiniLm, MiniLm, MiniLmOptions, MiniLmStats, Precision};
pub use remote::{RemoteEmbedder, RemoteEmbedderConfig, RemoteKind};
