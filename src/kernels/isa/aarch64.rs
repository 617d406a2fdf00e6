//! aarch64: NEON (`kernels::neon`), part of the base ISA.

use super::Entry;
use crate::kernels::neon;

pub(super) static TABLE: &[Entry] = &[Entry {
    kernel: neon::NEON,
    runs_here: || cfg!(target_feature = "neon"),
    conv2d: neon::conv2d,
    dense: neon::dense,
}];
