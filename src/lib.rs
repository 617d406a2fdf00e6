//! tinycnn: integer-only int8 inference for small convolutional networks.
//!
//! Data flows model file → [`Model::load`] (validation, shapes, arena plan) →
//! [`Model::run`] (the engine, over a caller-provided arena) → kernels.
//! After loading, running allocates nothing.
//!
//! ```no_run
//! # fn main() -> Result<(), tinycnn::Error> {
//! let bytes = std::fs::read("models/deepconvnet-int8.safetensors").unwrap();
//! let model = tinycnn::Model::load(bytes)?;
//! let mut arena = vec![0u8; model.arena_bytes()];
//! let pixels = [0u8; 784]; // 28×28 grayscale, white ink on black
//! let mut probabilities = [0f32; 10];
//! model.predict(&mut arena, &pixels, &mut probabilities)?;
//! # Ok(()) }
//! ```
#![no_std]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

// The public API is what the crate root re-exports plus `format`, `preprocess`,
// `mnist` and `gpu`; everything else is reachable only through `internals`.
#[cfg(feature = "cli")]
mod cli;
mod engine;
#[cfg(feature = "alloc")]
mod ensemble;
mod error;
#[cfg(feature = "gpu")]
pub mod gpu;
mod kernels;
#[cfg(feature = "std")]
pub mod mnist;
mod model;
#[cfg(feature = "alloc")]
pub mod preprocess;
#[cfg(feature = "alloc")]
mod quant;
mod spec;
#[cfg(feature = "tflite")]
mod tflite;
#[cfg(feature = "wasm")]
mod wasm;

#[cfg(feature = "alloc")]
pub use engine::Model;
pub use engine::{softmax_in_place, ArenaModel, KernelSet, LoadOptions};
#[cfg(feature = "alloc")]
pub use ensemble::Ensemble;
pub use error::{Error, InlineDims, InlineText, Result};
pub use kernels::packed::Microkernel;
pub use model::graph::Dtype;
#[cfg(feature = "alloc")]
pub use model::graph::Graph;
#[cfg(feature = "alloc")]
pub use model::{Network, NodeStats};
#[cfg(feature = "alloc")]
pub use quant::quantize::quantize;
pub use spec::Shape;

/// The model file format of docs/FORMAT.md: the graph's vocabulary (as read
/// and as written), its limits, and a writer for building model files.
pub mod format {
    pub use crate::model::graph::{
        pixel_quantization, Dtype, InputKind, InputSpec, Op, QuantParams, Unary, Window, FORMAT_VERSION, INPUT_NAME,
        METADATA_KEY,
    };
    #[cfg(feature = "alloc")]
    pub use crate::model::graph::{Graph, Node, RawGraph, RawInput, RawNode};
    pub use crate::model::limits;
    #[cfg(feature = "alloc")]
    pub use crate::model::read_graph_json;
    #[cfg(feature = "alloc")]
    pub use crate::model::writer::{store_requant_multipliers, tensors_of, write_model, TensorData, TensorDtype};
}

/// Not API: the internals that the tests, benches, fuzz crate and the
/// `tinycnn` binary reach. Anything here may change without notice.
#[doc(hidden)]
pub mod internals {
    pub mod engine {
        pub use crate::engine::*;
    }
    pub mod kernels {
        pub use crate::kernels::*;
    }
    pub mod model {
        pub use crate::model::*;
    }
    #[cfg(feature = "alloc")]
    pub mod quant {
        pub use crate::quant::*;
    }
    pub mod spec {
        pub use crate::spec::*;
    }
    #[cfg(feature = "tflite")]
    pub mod tflite {
        pub use crate::tflite::*;
    }
    #[cfg(feature = "cli")]
    pub mod cli {
        pub use crate::cli::*;
    }
    #[cfg(feature = "wasm")]
    pub mod wasm {
        pub use crate::wasm::*;
    }
}

/// The README's Rust example, compiled and run as a doctest (from the crate root,
/// where `models/` is).
#[cfg(all(doctest, feature = "std"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
