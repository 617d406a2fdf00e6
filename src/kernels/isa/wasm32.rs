//! wasm32: relaxed-SIMD and simd128 (`kernels::wasm_simd`), chosen when the
//! module is built (wasm has no run-time feature detection; the npm package
//! ships one build per feature set).

use super::Entry;
use crate::kernels::wasm_simd;

pub(super) static TABLE: &[Entry] = &[
    Entry {
        kernel: wasm_simd::RELAXED,
        runs_here: || cfg!(target_feature = "relaxed-simd"),
        conv2d: wasm_simd::conv2d,
        dense: wasm_simd::dense,
    },
    Entry {
        kernel: wasm_simd::SIMD128_WINOGRAD,
        runs_here: || true,
        conv2d: wasm_simd::conv2d,
        dense: wasm_simd::dense,
    },
    Entry { kernel: wasm_simd::SIMD128, runs_here: || true, conv2d: wasm_simd::conv2d, dense: wasm_simd::dense },
];
