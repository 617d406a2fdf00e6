//! The inner loop of conv and dense: for every output channel, the dot product
//! of one input patch with that channel's int8 weight row, then requantisation.
//! A patch holds `Tap`s: x − zero_point as i16, or, with the Cortex-M DSP
//! extension, the int8 input itself (`kernels::dsp` widens it as it reads it).
//!
//! Integer sums are exact in any order, so each variant below is bit-identical
//! to the scalar one by construction; tests still compare them on random data.

use crate::spec::fixed_point::{requantize, OutputRange, Requant};

/// Longest patch the fast kernels gather on the stack. Longer reductions (rare:
/// > 4096 taps) go to the reference kernels.
#[cfg(not(target_arch = "arm"))]
pub const PATCH_MAX: usize = 4096;
/// On 32-bit Arm (microcontrollers, whose stacks are a few KB): 1 KB of stack
/// with the DSP extension (2 KB without), which holds the longest patch of
/// every shipped and MLPerf Tiny model (1,024 taps: DeepConvNet's fc1).
#[cfg(target_arch = "arm")]
pub const PATCH_MAX: usize = 1024;

/// One value of a gathered patch: x − zero_point, which the SIMD dot products multiply as it is.
#[cfg(not(arm_dsp))]
pub type Tap = i16;
/// With the DSP extension, the int8 input itself: `dsp::rows` subtracts the zero
/// point as it widens each word (`sxtab16`), so a patch is half the stack.
#[cfg(arm_dsp)]
pub type Tap = i8;

/// Input value `x` (of an input whose zero point is `zero_point`, in −128..=127) as a patch holds it.
#[inline(always)]
pub fn tap(x: i8, zero_point: i32) -> Tap {
    #[cfg(not(arm_dsp))]
    {
        (i32::from(x) - zero_point) as i16
    }
    #[cfg(arm_dsp)]
    {
        let _ = zero_point;
        x
    }
}

/// `output[o] = requantize(bias[o] + Σ_k (x_k − zero_point)·weights[o·K + k])`, where
/// `patch[k]` is `tap(x_k, zero_point)` and K = patch.len().
#[inline]
pub fn patch_rows(
    patch: &[Tap],
    zero_point: i32,
    weights: &[i8],
    channels: &Requant<'_>,
    range: OutputRange,
    output: &mut [i8],
) {
    #[cfg(not(arm_dsp))]
    {
        let _ = zero_point;
        rows(patch, weights, channels, range, output)
    }
    #[cfg(arm_dsp)]
    {
        super::dsp::rows(patch, zero_point, weights, channels, range, output)
    }
}

/// `output[o] = requantize(bias[o] + Σ_k patch[k]·weights[o·K + k])` with K = patch.len().
#[inline]
pub fn rows(patch: &[i16], weights: &[i8], channels: &Requant<'_>, range: OutputRange, output: &mut [i8]) {
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
pub fn rows_scalar(patch: &[i16], weights: &[i8], channels: &Requant<'_>, range: OutputRange, output: &mut [i8]) {
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
#[inline(always)]
fn finish_block(
    patch: &[i16],
    weights: &[i8],
    body: usize,
    o: usize,
    sums: &[i32],
    channels: &Requant<'_>,
    range: OutputRange,
    output: &mut [i8],
) {
    let k = patch.len();
    for (b, &sum) in sums.iter().enumerate() {
        let row = &weights[(o + b) * k..][..k];
        let tail: i32 = patch[body..].iter().zip(&row[body..]).map(|(&x, &w)| i32::from(x) * i32::from(w)).sum();
        let channel = channels.channel(o + b);
        output[o + b] = requantize(channel.bias + sum + tail, channel.multiplier, range);
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod simd128 {
    use core::arch::wasm32::*;

    use super::{finish_block, rows_scalar, OutputRange, Requant};

    #[inline(always)]
    fn horizontal_sum(v: v128) -> i32 {
        i32x4_extract_lane::<0>(v)
            + i32x4_extract_lane::<1>(v)
            + i32x4_extract_lane::<2>(v)
            + i32x4_extract_lane::<3>(v)
    }

    /// acc + Σ over 16 taps of x·w, with `i32x4.dot_i16x8_s` on sign-extended weights.
    ///
    /// # Safety
    /// `w` must point to 16 readable bytes.
    #[inline(always)]
    unsafe fn step(acc: v128, x_lo: v128, x_hi: v128, w: *const i8) -> v128 {
        // SAFETY: the caller guarantees 16 readable bytes; v128_load has no alignment requirement.
        let w = unsafe { v128_load(w.cast()) };
        let lo = i32x4_dot_i16x8(x_lo, i16x8_extend_low_i8x16(w));
        let hi = i32x4_dot_i16x8(x_hi, i16x8_extend_high_i8x16(w));
        i32x4_add(acc, i32x4_add(lo, hi))
    }

    /// Blocks of four output channels share each patch load, their sums stay in
    /// registers; 16 taps per step, the tail in scalar code.
    pub fn rows(patch: &[i16], weights: &[i8], channels: &Requant<'_>, range: OutputRange, output: &mut [i8]) {
        let (k, n) = (patch.len(), channels.len());
        if weights.len() < n * k || output.len() < n {
            return rows_scalar(patch, weights, channels, range, output); // malformed call: let the scalar code decide
        }
        let body = k / 16 * 16;
        let (x, w) = (patch.as_ptr(), weights.as_ptr());
        let mut o = 0;
        // SAFETY (all loads below): t + 16 ≤ body ≤ k, so x.add(t..t + 16) lies in `patch`,
        // and rows o..o + 4 (or o) < n, so w.add(row·k + t..+16) lies in `weights` (checked above).
        while o + 4 <= n {
            let mut acc = [i32x4_splat(0); 4];
            let mut t = 0;
            while t < body {
                let (x_lo, x_hi) = unsafe { (v128_load(x.add(t).cast()), v128_load(x.add(t + 8).cast())) };
                acc[0] = unsafe { step(acc[0], x_lo, x_hi, w.add(o * k + t)) };
                acc[1] = unsafe { step(acc[1], x_lo, x_hi, w.add((o + 1) * k + t)) };
                acc[2] = unsafe { step(acc[2], x_lo, x_hi, w.add((o + 2) * k + t)) };
                acc[3] = unsafe { step(acc[3], x_lo, x_hi, w.add((o + 3) * k + t)) };
                t += 16;
            }
            let sums = acc.map(horizontal_sum);
            finish_block(patch, weights, body, o, &sums, channels, range, output);
            o += 4;
        }
        while o < n {
            let mut acc = i32x4_splat(0);
            let mut t = 0;
            while t < body {
                let (x_lo, x_hi) = unsafe { (v128_load(x.add(t).cast()), v128_load(x.add(t + 8).cast())) };
                acc = unsafe { step(acc, x_lo, x_hi, w.add(o * k + t)) };
                t += 16;
            }
            finish_block(patch, weights, body, o, &[horizontal_sum(acc)], channels, range, output);
            o += 1;
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub mod avx2 {
    use core::arch::x86_64::*;

    use super::{finish_block, rows_scalar, OutputRange, Requant};

    /// acc + Σ over 16 taps of x·w: sign-extend 16 weights to i16 (`vpmovsxbw`),
    /// multiply-add pairs into i32 (`vpmaddwd`).
    ///
    /// # Safety
    /// AVX2, and `w` must point to 16 readable bytes.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn step(acc: __m256i, x: __m256i, w: *const i8) -> __m256i {
        // SAFETY: the caller guarantees 16 readable bytes; loadu has no alignment requirement.
        let w = _mm256_cvtepi8_epi16(unsafe { _mm_loadu_si128(w.cast()) });
        _mm256_add_epi32(acc, _mm256_madd_epi16(x, w))
    }

    /// Blocks of four output channels share each patch load, their sums stay in
    /// registers; 16 taps per step, the tail in scalar code.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn rows(patch: &[i16], weights: &[i8], channels: &Requant<'_>, range: OutputRange, output: &mut [i8]) {
        let (k, n) = (patch.len(), channels.len());
        if weights.len() < n * k || output.len() < n {
            return rows_scalar(patch, weights, channels, range, output); // malformed call: let the scalar code decide
        }
        let body = k / 16 * 16;
        let (x, w) = (patch.as_ptr(), weights.as_ptr());
        let mut o = 0;
        // SAFETY (all loads below): t + 16 ≤ body ≤ k, so x.add(t..t + 16) lies in `patch`,
        // and rows o..o + 4 (or o) < n, so w.add(row·k + t..+16) lies in `weights` (checked above).
        while o + 4 <= n {
            let (mut a0, mut a1, mut a2, mut a3) =
                (_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256());
            let mut t = 0;
            while t < body {
                let xv = unsafe { _mm256_loadu_si256(x.add(t).cast()) };
                a0 = unsafe { step(a0, xv, w.add(o * k + t)) };
                a1 = unsafe { step(a1, xv, w.add((o + 1) * k + t)) };
                a2 = unsafe { step(a2, xv, w.add((o + 2) * k + t)) };
                a3 = unsafe { step(a3, xv, w.add((o + 3) * k + t)) };
                t += 16;
            }
            let sums = [horizontal_sum(a0), horizontal_sum(a1), horizontal_sum(a2), horizontal_sum(a3)];
            finish_block(patch, weights, body, o, &sums, channels, range, output);
            o += 4;
        }
        while o < n {
            let mut acc = _mm256_setzero_si256();
            let mut t = 0;
            while t < body {
                let xv = unsafe { _mm256_loadu_si256(x.add(t).cast()) };
                acc = unsafe { step(acc, xv, w.add(o * k + t)) };
                t += 16;
            }
            finish_block(patch, weights, body, o, &[horizontal_sum(acc)], channels, range, output);
            o += 1;
        }
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn horizontal_sum(v: __m256i) -> i32 {
        let pair = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        let quad = _mm_add_epi32(pair, _mm_shuffle_epi32::<0b01_00_11_10>(pair));
        let single = _mm_add_epi32(quad, _mm_shuffle_epi32::<0b10_11_00_01>(quad));
        _mm_cvtsi128_si32(single)
    }
}
