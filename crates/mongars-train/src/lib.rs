//! LoRA training on the machine monGARS runs on, with candle on the CPU.
//!
//! The embedded model's GGUF is read and dequantised to f32 ([`model`]):
//! the same weights and layout the server generates with (llama with
//! interleaved rotary embeddings, as llama.cpp lays out GGUF query and key
//! projections). The forward pass is written from candle's differentiable
//! primitives only: candle 0.11's fused softmax, RMS norm and rotary kernels
//! have no backward pass and would stop gradients without a word, so they
//! are never used here, and the tests check that every LoRA tensor gets a
//! gradient that agrees with finite differences. [`lora`] holds the
//! trainable low-rank pairs, [`loss`] the objectives, [`adapter`] writes
//! them as a GGUF LoRA adapter that llama.cpp loads.

pub mod adapter;
pub mod corpus;
pub mod eval;
pub mod lora;
pub mod loss;
pub mod model;
pub mod optim;
pub mod rng;
pub mod trainer;

/// What training can fail with.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("model file: {0}")]
    Model(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

pub type Result<T> = std::result::Result<T, TrainError>;
