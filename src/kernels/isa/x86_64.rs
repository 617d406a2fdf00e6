//! x86-64: AVX-512 VNNI and AVX-VNNI (`kernels::vnni`), detected at run time.

use super::Entry;
use crate::kernels::vnni;

pub(super) static TABLE: &[Entry] = &[
    Entry { kernel: vnni::AVX512_VNNI, runs_here: avx512_vnni, conv2d: vnni::conv2d, dense: vnni::dense },
    Entry { kernel: vnni::AVX_VNNI, runs_here: avx_vnni, conv2d: vnni::conv2d, dense: vnni::dense },
];

fn avx512_vnni() -> bool {
    #[cfg(feature = "std")]
    return std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512bw")
        && std::is_x86_feature_detected!("avx512vl")
        && std::is_x86_feature_detected!("avx512vnni");
    #[cfg(not(feature = "std"))]
    false // no run-time detection without std: the portable kernels run
}

fn avx_vnni() -> bool {
    #[cfg(feature = "std")]
    return std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("avxvnni");
    #[cfg(not(feature = "std"))]
    false
}
