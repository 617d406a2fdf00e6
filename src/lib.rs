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

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

#[cfg(feature = "cli")]
pub mod cli;
pub mod engine;
pub mod ensemble;
pub mod error;
#[cfg(feature = "gpu")]
pub mod gpu;
pub mod kernels;
#[cfg(feature = "std")]
pub mod mnist;
pub mod model;
pub mod preprocess;
pub mod quant;
pub mod spec;
#[cfg(feature = "wasm")]
pub mod wasm;

pub use engine::{KernelSet, LoadOptions, Model};
/// The README's Rust example, compiled and run as a doctest (from the crate root,
/// where `models/` is).
#[cfg(all(doctest, feature = "std"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub use ensemble::Ensemble;
pub use error::{Error, Result};
pub use model::graph::{Dtype, Graph};
pub use model::Network;
pub use spec::Shape;
