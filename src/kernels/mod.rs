//! int8 kernels (channels-last, H×W×C) and the f32 kernels (C×H×W) of the float engine.
//!
//! Each op family has a scalar *reference* kernel: simple loops, the test
//! oracle. Faster variants live beside it with the same signature and must
//! give bit-identical outputs.

pub mod conv;
pub mod dense;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64", all(target_arch = "wasm32", target_feature = "simd128")))]
mod depthwise;
pub mod dot;
#[cfg(arm_dsp)]
pub mod dsp;
pub mod eltwise;
pub mod float;
mod isa;
pub use isa::{Conv2dEntry, DenseEntry};
#[cfg(target_arch = "aarch64")]
pub mod neon;
pub mod packed;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64", all(target_arch = "wasm32", target_feature = "simd128")))]
mod padded;
pub mod pool;
pub mod softmax;
#[cfg(target_arch = "x86_64")]
pub mod vnni;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod wasm_simd;
pub mod winograd;
#[cfg(target_arch = "x86_64")]
mod x86;

#[cfg(feature = "alloc")]
use alloc::vec::Vec;

use crate::spec::fixed_point::Requant;
pub use crate::spec::{output_len, Conv2dGeometry, Shape};
use packed::{Microkernel, PackedWeights};

/// A conv or dense layer's int8 parameters: the file's weights (OHWI, or O×I)
/// for the portable kernels, the same packed for a microkernel, and the
/// per-channel requantisation.
#[derive(Debug, Clone, Copy)]
pub struct Int8Layer<'a> {
    pub weights: &'a [i8],
    pub channels: Requant<'a>,
    pub packed: &'a PackedWeights<'a>,
}

/// Which int8 kernels an engine runs: every set gives the same bytes; the
/// model-level tests run each one and compare with `Reference`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KernelSet {
    /// The scalar reference kernels of every op: the oracle.
    Reference,
    /// The portable fast kernels (`dot::patch_rows`: gathered patches, auto-vectorised,
    /// or on the Cortex-M DSP extension `kernels::dsp`).
    Portable,
    /// Conv and dense on this SIMD microkernel (weights packed for it at load);
    /// a layer it cannot take (too large a padded input) runs `Portable`.
    Microkernel(Microkernel),
}

impl KernelSet {
    /// The fastest set this machine runs: its best microkernel, else the portable kernels.
    pub fn best() -> KernelSet {
        Microkernel::best().map_or(KernelSet::Portable, KernelSet::Microkernel)
    }

    /// Every set this build can run on this machine, the reference first.
    #[cfg(feature = "alloc")]
    pub fn available() -> Vec<KernelSet> {
        let mut sets = alloc::vec![KernelSet::Reference, KernelSet::Portable];
        sets.extend(Microkernel::available().into_iter().map(KernelSet::Microkernel));
        sets
    }

    /// Short name, as `tinycnn bench` and the tests print it.
    pub const fn name(self) -> &'static str {
        match self {
            KernelSet::Reference => "reference",
            KernelSet::Portable => "portable",
            KernelSet::Microkernel(kernel) => kernel.name(),
        }
    }
}
