//! The SIMD microkernels, one table per architecture: each entry names a
//! [`Microkernel`], says whether this CPU runs it, and gives its conv and
//! dense entry points. Selecting a kernel is a lookup in the table of the
//! target being built; adding an ISA is its kernel file (which defines its
//! `Microkernel` constant) plus a line in its architecture's table (and, for
//! a new `WeightLayout`, its packing in `packed.rs`). The tests iterate `Microkernel::available()`, which reads
//! these tables.

use super::packed::{Microkernel, PackedWeights};
use crate::spec::fixed_point::{OutputRange, Requant};
use crate::spec::Conv2dGeometry;

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm32;
#[cfg(target_arch = "x86_64")]
mod x86_64;

/// Conv entry: false (and nothing written) when `packed` is not for this
/// kernel or the layer does not fit it; the caller then runs the portable kernel.
pub type Conv2dEntry = fn(&Conv2dGeometry, &[i8], i32, &PackedWeights, &Requant, OutputRange, &mut [i8]) -> bool;
/// Dense entry, same contract.
pub type DenseEntry = fn(&[i8], i32, &PackedWeights, &Requant, OutputRange, &mut [i8]) -> bool;

pub(crate) struct Entry {
    pub kernel: Microkernel,
    /// Whether this CPU has the kernel's instructions (build features or run-time detection).
    pub runs_here: fn() -> bool,
    pub conv2d: Conv2dEntry,
    pub dense: DenseEntry,
}

/// This target's microkernels, fastest first.
pub(crate) fn table() -> &'static [Entry] {
    #[cfg(target_arch = "x86_64")]
    return x86_64::TABLE;
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return wasm32::TABLE;
    #[cfg(target_arch = "aarch64")]
    return aarch64::TABLE;
    #[allow(unreachable_code)] // on the targets above
    &[]
}

/// The table entry of `kernel`, if this target has one.
pub(crate) fn entry(kernel: Microkernel) -> Option<&'static Entry> {
    table().iter().find(|e| e.kernel == kernel)
}
