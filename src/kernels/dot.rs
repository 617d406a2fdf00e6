//! The inner loop of conv and dense: for every output channel, the dot product
//! of one input patch (already `x − zero_point`, as i16) with that channel's
//! int8 weight row, then requantisation.
//!
//! Integer sums are exact in any order, so each variant below is bit-identical
//! to the scalar one by construction; tests still compare them on random data.

use crate::quant::fixed_point::{requantize, ChannelRequant, OutputRange};

/// Longest patch the fast kernels gather on the stack (i16 each). Longer
/// reductions (rare: > 4096 taps) go to the reference kernels.
pub const PATCH_MAX: usize = 4096;

/// `output[o] = requantize(bias[o] + Σ_k patch[k]·weights[o·K + k])` with K = patch.len().
#[inline]
pub fn rows(patch: &[i16], weights: &[i8], channels: &[ChannelRequant], range: OutputRange, output: &mut [i8]) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        simd128::rows(patch, weights, channels, range, output)
    }
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { avx2::rows(patch, weights, channels, range, output) };
            return;
        }
        rows_scalar(patch, weights, channels, range, output)
    }
    #[cfg(not(any(
        all(target_arch = "wasm32", target_feature = "simd128"),
        all(target_arch = "x86_64", feature = "std")
    )))]
    {
        rows_scalar(patch, weights, channels, range, output)
    }
}

/// Portable variant: plain loops.
pub fn rows_scalar(patch: &[i16], weights: &[i8], channels: &[ChannelRequant], range: OutputRange, output: &mut [i8]) {
    let k = patch.len();
    for ((channel, out), w) in channels.iter().zip(output.iter_mut()).zip(weights.chunks_exact(k.max(1))) {
        let dot: i32 = patch.iter().zip(w).map(|(&x, &w)| i32::from(x) * i32::from(w)).sum();
        *out = requantize(channel.bias + dot, channel.multiplier, range);
    }
}

/// Completes a block of output channels `o..o + sums.len()` of a SIMD variant:
/// adds the scalar products of the taps past `body` (the last multiple of 16)
/// to each channel's SIMD sum, then requantises.
#[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128")))]
#[allow(clippy::too_many_arguments)] // the loop state of the caller, passed as is
fn finish_block(
    patch: &[i16],
    weights: &[i8],
    body: usize,
    o: usize,
    sums: &[i32],
    channels: &[ChannelRequant],
    range: OutputRange,
    output: &mut [i8],
) {
    let k = patch.len();
    for (b, &sum) in sums.iter().enumerate() {
        let row = &weights[(o + b) * k..][..k];
        let tail: i32 = patch[body..].iter().zip(&row[body..]).map(|(&x, &w)| i32::from(x) * i32::from(w)).sum();
        let channel = channels[o + b];
        output[o + b] = requantize(channel.bias + sum + tail, channel.multiplier, range);
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod simd128 {
    use core::arch::wasm32::*;

    use super::{ChannelRequant, OutputRange};

    #[inline(always)]
    fn load_i16x8(s: &[i16]) -> v128 {
        let chunk: &[i16; 8] = s[..8].try_into().unwrap_or(&[0; 8]);
        // SAFETY: `chunk` is 16 readable bytes; v128_load has no alignment requirement.
        unsafe { v128_load(chunk.as_ptr().cast()) }
    }

    #[inline(always)]
    fn load_i8x16(s: &[i8]) -> v128 {
        let chunk: &[i8; 16] = s[..16].try_into().unwrap_or(&[0; 16]);
        // SAFETY: as above, 16 readable bytes.
        unsafe { v128_load(chunk.as_ptr().cast()) }
    }

    #[inline(always)]
    fn horizontal_sum(v: v128) -> i32 {
        i32x4_extract_lane::<0>(v)
            + i32x4_extract_lane::<1>(v)
            + i32x4_extract_lane::<2>(v)
            + i32x4_extract_lane::<3>(v)
    }

    /// Four output channels at a time share each patch load; 16 taps per step
    /// with `i32x4.dot_i16x8_s`, the tail in scalar code.
    pub fn rows(patch: &[i16], weights: &[i8], channels: &[ChannelRequant], range: OutputRange, output: &mut [i8]) {
        let k = patch.len();
        let body = k / 16 * 16;
        let mut o = 0;
        while o < channels.len() {
            let block = (channels.len() - o).min(4);
            let mut acc = [i32x4_splat(0); 4];
            let mut t = 0;
            while t < body {
                let x_lo = load_i16x8(&patch[t..]);
                let x_hi = load_i16x8(&patch[t + 8..]);
                for (b, a) in acc.iter_mut().enumerate().take(block) {
                    let w = load_i8x16(&weights[(o + b) * k + t..]);
                    let lo = i32x4_dot_i16x8(x_lo, i16x8_extend_low_i8x16(w));
                    let hi = i32x4_dot_i16x8(x_hi, i16x8_extend_high_i8x16(w));
                    *a = i32x4_add(*a, i32x4_add(lo, hi));
                }
                t += 16;
            }
            let mut sums = [0i32; 4];
            for (sum, a) in sums.iter_mut().zip(&acc) {
                *sum = horizontal_sum(*a);
            }
            super::finish_block(patch, weights, body, o, &sums[..block], channels, range, output);
            o += block;
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub mod avx2 {
    use core::arch::x86_64::*;

    use super::{ChannelRequant, OutputRange};

    /// Four output channels at a time; 16 taps per step: sign-extend 16 weights
    /// to i16 (`vpmovsxbw`) and multiply-add pairs into i32 (`vpmaddwd`).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn rows(
        patch: &[i16],
        weights: &[i8],
        channels: &[ChannelRequant],
        range: OutputRange,
        output: &mut [i8],
    ) {
        let k = patch.len();
        let body = k / 16 * 16;
        let mut o = 0;
        while o < channels.len() {
            let block = (channels.len() - o).min(4);
            let mut acc = [_mm256_setzero_si256(); 4];
            let mut t = 0;
            while t < body {
                let x: &[i16; 16] = match patch[t..t + 16].try_into() {
                    Ok(x) => x,
                    Err(_) => break, // cannot happen: t + 16 ≤ body ≤ k
                };
                // SAFETY: `x` is 32 readable bytes; loadu has no alignment requirement.
                let xv = unsafe { _mm256_loadu_si256(x.as_ptr().cast()) };
                for (b, a) in acc.iter_mut().enumerate().take(block) {
                    let start = (o + b) * k + t;
                    let w: &[i8; 16] = match weights[start..start + 16].try_into() {
                        Ok(w) => w,
                        Err(_) => continue, // cannot happen: the slice has 16 bytes
                    };
                    // SAFETY: `w` is 16 readable bytes.
                    let wv = _mm256_cvtepi8_epi16(unsafe { _mm_loadu_si128(w.as_ptr().cast()) });
                    *a = _mm256_add_epi32(*a, _mm256_madd_epi16(xv, wv));
                }
                t += 16;
            }
            let mut sums = [0i32; 4];
            for (sum, a) in sums.iter_mut().zip(&acc) {
                *sum = horizontal_sum(*a);
            }
            super::finish_block(patch, weights, body, o, &sums[..block], channels, range, output);
            o += block;
        }
    }

    #[target_feature(enable = "avx2")]
    fn horizontal_sum(v: __m256i) -> i32 {
        let pair = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        let quad = _mm_add_epi32(pair, _mm_shuffle_epi32::<0b01_00_11_10>(pair));
        let single = _mm_add_epi32(quad, _mm_shuffle_epi32::<0b10_11_00_01>(quad));
        _mm_cvtsi128_si32(single)
    }
}
