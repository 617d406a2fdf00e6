//! AVX2 pieces shared by the x86-64 kernels: requantisation of 8 i32 lanes at once.

use core::arch::x86_64::*;

use super::eltwise::{AddInput, ADD_LEFT_SHIFT};
use crate::spec::fixed_point::{Multiplier, OutputRange};

/// gemmlowp's SaturatingRoundingDoublingHighMul then RoundingDivideByPOT, lane by lane,
/// for mantissas in [0, 2^31) (so the one saturating case, MIN·MIN, cannot occur) and
/// right shifts 0..=31.
///
/// # Safety
/// AVX2.
#[inline(always)]
pub(crate) unsafe fn requantize_lanes(x: __m256i, mantissa: __m256i, right_shift: __m256i) -> __m256i {
    // (x·m + 2^30) >> 31 from the 64-bit products of the even lanes and of the odd lanes:
    // bits 31..62 of each sum are the result; move them to the lane's half of the 64 bits.
    let nudge = _mm256_set1_epi64x(1 << 30);
    let even = _mm256_add_epi64(_mm256_mul_epi32(x, mantissa), nudge);
    let odd = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64::<32>(x), _mm256_srli_epi64::<32>(mantissa)), nudge);
    let high = _mm256_blend_epi32::<0b1010_1010>(_mm256_srli_epi64::<31>(even), _mm256_slli_epi64::<1>(odd));
    // x / 2^e, ties away from zero: (x >> e) + (remainder > (mask >> 1) + (x < 0)).
    let one = _mm256_set1_epi32(1);
    let mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, right_shift), one);
    let remainder = _mm256_and_si256(high, mask);
    let negative = _mm256_cmpgt_epi32(_mm256_setzero_si256(), high);
    let threshold = _mm256_sub_epi32(_mm256_srli_epi32::<1>(mask), negative);
    _mm256_sub_epi32(_mm256_srav_epi32(high, right_shift), _mm256_cmpgt_epi32(remainder, threshold))
}

/// The add's output stage on AVX2: `out[i] = clamp(zp + multiplier.apply(sums[i]))`, 8 lanes
/// at a time. Exists only where AVX2 was detected and the multiplier is < 1.
#[derive(Clone, Copy)]
pub(crate) struct Avx2Requant(Multiplier);

impl Avx2Requant {
    /// Checks the CPU once (per layer), not per chunk.
    pub(crate) fn new(multiplier: Multiplier) -> Option<Avx2Requant> {
        #[cfg(feature = "std")]
        if multiplier.is_right_shift_only() && std::is_x86_feature_detected!("avx2") {
            return Some(Avx2Requant(multiplier));
        }
        let _ = multiplier;
        None
    }

    pub(crate) fn apply(self, sums: &[i32], range: OutputRange, out: &mut [i8]) {
        // SAFETY: `new` only builds one where AVX2 was detected.
        #[cfg(feature = "std")]
        unsafe {
            requantize_all_avx2(sums, self.0, range, out)
        };
        #[cfg(not(feature = "std"))]
        let _ = (sums, range, out);
    }
}

#[cfg(feature = "std")]
#[target_feature(enable = "avx2")]
unsafe fn requantize_all_avx2(sums: &[i32], multiplier: Multiplier, range: OutputRange, out: &mut [i8]) {
    let mantissa = _mm256_set1_epi32(multiplier.mantissa);
    let right_shift = _mm256_set1_epi32(-multiplier.shift);
    let (low, high) = range.bounds_before_zero_point();
    let (zero_point, low, high) =
        (_mm256_set1_epi32(range.zero_point), _mm256_set1_epi32(low), _mm256_set1_epi32(high));
    let mut lanes = [0i32; 8];
    for (sums, out) in sums.chunks(8).zip(out.chunks_mut(8)) {
        lanes[..sums.len()].copy_from_slice(sums);
        // SAFETY: `lanes` is 8 i32 long; loadu/storeu have no alignment requirement.
        let x = unsafe { _mm256_loadu_si256(lanes.as_ptr().cast()) };
        let q = unsafe { requantize_lanes(x, mantissa, right_shift) };
        // Clamped before the zero point is added (`OutputRange::bounds_before_zero_point`).
        let q = _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(q, low), high), zero_point);
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), q) };
        for (o, &v) in out.iter_mut().zip(&lanes) {
            *o = v as i8; // clamped to [min, max] ⊂ [−128, 127] above
        }
    }
}

/// `eltwise::add` in 8-lane vectors, for multipliers < 1 and at most
/// `eltwise::VECTOR_ADD_INPUTS` inputs (the caller checks both, and that every input
/// is as long as `output`); false, writing nothing, without AVX2.
pub(crate) fn add(
    inputs: &[&[i8]],
    params: &[AddInput],
    output_multiplier: Multiplier,
    range: OutputRange,
    output: &mut [i8],
) -> bool {
    #[cfg(feature = "std")]
    if std::is_x86_feature_detected!("avx512f") {
        // SAFETY: AVX-512F was detected just above.
        unsafe { add_avx512(inputs, params, output_multiplier, range, output) };
        return true;
    }
    #[cfg(feature = "std")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was detected just above.
        unsafe { add_avx2(inputs, params, output_multiplier, range, output) };
        return true;
    }
    let _ = (inputs, params, output_multiplier, range, output);
    false
}

/// Whether an add input's multiplier is exactly ½, as the input with the largest scale's
/// always is (`scale / (2·max scale)`): its term M·((x − zp) << 20) is then (x − zp) << 19
/// exactly — the doubling high multiply of d·2^20 by 2^30 is ⌊(d·2^50 + 2^30) / 2^31⌋ =
/// d·2^19, and a right shift by 0 rounds nothing — so no multiply is needed.
#[cfg(feature = "std")]
fn is_one_half(multiplier: Multiplier) -> bool {
    multiplier.mantissa == 1 << 30 && multiplier.shift == 0
}

#[cfg(feature = "std")]
#[target_feature(enable = "avx2")]
unsafe fn add_avx2(
    inputs: &[&[i8]],
    params: &[AddInput],
    multiplier: Multiplier,
    range: OutputRange,
    output: &mut [i8],
) {
    let lanes = |m: Multiplier| (_mm256_set1_epi32(m.mantissa), _mm256_set1_epi32(-m.shift));
    let (mantissa, right_shift) = lanes(multiplier);
    let (low, high) = range.bounds_before_zero_point();
    let (zero_point, low, high) =
        (_mm256_set1_epi32(range.zero_point), _mm256_set1_epi32(low), _mm256_set1_epi32(high));
    let whole = output.len() / 8 * 8;
    for start in (0..whole).step_by(8) {
        let mut sum = _mm256_setzero_si256();
        for (x, p) in inputs.iter().zip(params) {
            // SAFETY: start + 8 ≤ output.len() ≤ x.len() (the caller's check).
            let bytes = unsafe { _mm_loadl_epi64(x.as_ptr().add(start).cast()) };
            let v = _mm256_sub_epi32(_mm256_cvtepi8_epi32(bytes), _mm256_set1_epi32(p.zero_point));
            let (m, s) = lanes(p.multiplier);
            // |x − zp| << 20 < 2^28: no overflow; the sum of ≤ 4 terms stays below 2^30.
            let term = if is_one_half(p.multiplier) {
                _mm256_slli_epi32::<{ ADD_LEFT_SHIFT as i32 - 1 }>(v)
            } else {
                unsafe { requantize_lanes(_mm256_slli_epi32::<{ ADD_LEFT_SHIFT as i32 }>(v), m, s) }
            };
            sum = _mm256_add_epi32(sum, term);
        }
        let q = unsafe { requantize_lanes(sum, mantissa, right_shift) };
        // Clamped before the zero point is added (`OutputRange::bounds_before_zero_point`).
        let q = _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(q, low), high), zero_point);
        // Narrow to bytes (in range already): each 128-bit half packs its 4 lanes into its low
        // 4 bytes; gather those two words into the low 8 bytes.
        let bytes = _mm256_packs_epi16(_mm256_packs_epi32(q, q), _mm256_setzero_si256());
        let bytes = _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 0, 0, 0, 0, 0, 0));
        // SAFETY: start + 8 ≤ output.len().
        unsafe { _mm_storel_epi64(output.as_mut_ptr().add(start).cast(), _mm256_castsi256_si128(bytes)) };
    }
    // The caller checked inputs.len() ≤ VECTOR_ADD_INPUTS, so the slice below cannot panic.
    let tail: [&[i8]; super::eltwise::VECTOR_ADD_INPUTS] =
        core::array::from_fn(|k| inputs.get(k).map_or(&[][..], |x| &x[whole..]));
    super::eltwise::add_reference(&tail[..inputs.len()], params, multiplier, range, &mut output[whole..]);
}

/// Bits 31..62 of 64-bit sums as 16 i32 lanes: lane 2i from `even`'s lane i, lane 2i + 1
/// from `odd`'s (the rounding doubling high multiply's result). A bitwise select with a
/// constant: a mask-register blend made LLVM rebuild the mask register (a port-5 `kmov`)
/// for every vector, the compares that follow needing one.
///
/// # Safety
/// AVX-512F.
#[inline(always)]
pub(crate) unsafe fn high_words_16(even: __m512i, odd: __m512i) -> __m512i {
    let odd_lanes = _mm512_set1_epi64(0xFFFF_FFFF_0000_0000u64 as i64);
    // 0xCA: a ? b : c, bit by bit.
    _mm512_ternarylogic_epi64::<0xCA>(odd_lanes, _mm512_slli_epi64::<1>(odd), _mm512_srli_epi64::<31>(even))
}

/// `multiplier.apply` on 16 lanes, for a multiplier < 1: `requantize_lanes`' steps.
///
/// # Safety
/// AVX-512F.
#[cfg(feature = "std")]
#[inline(always)]
unsafe fn apply_16_lanes(x: __m512i, multiplier: Multiplier) -> __m512i {
    let mantissa = _mm512_set1_epi32(multiplier.mantissa);
    let right_shift = _mm512_set1_epi32(-multiplier.shift);
    let nudge = _mm512_set1_epi64(1 << 30);
    let even = _mm512_add_epi64(_mm512_mul_epi32(x, mantissa), nudge);
    let odd = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64::<32>(x), mantissa), nudge);
    let high = unsafe { high_words_16(even, odd) };
    let one = _mm512_set1_epi32(1);
    let mask = _mm512_sub_epi32(_mm512_sllv_epi32(one, right_shift), one);
    let remainder = _mm512_and_si512(high, mask);
    let half = _mm512_srli_epi32::<1>(mask);
    let threshold = _mm512_mask_add_epi32(half, _mm512_cmplt_epi32_mask(high, _mm512_setzero_si512()), half, one);
    let shifted = _mm512_srav_epi32(high, right_shift);
    _mm512_mask_add_epi32(shifted, _mm512_cmpgt_epi32_mask(remainder, threshold), shifted, one)
}

/// `add_avx2` on 16 lanes.
#[cfg(feature = "std")]
#[target_feature(enable = "avx512f")]
unsafe fn add_avx512(
    inputs: &[&[i8]],
    params: &[AddInput],
    multiplier: Multiplier,
    range: OutputRange,
    output: &mut [i8],
) {
    let (low, high) = range.bounds_before_zero_point();
    let (zero_point, low, high) =
        (_mm512_set1_epi32(range.zero_point), _mm512_set1_epi32(low), _mm512_set1_epi32(high));
    let whole = output.len() / 16 * 16;
    for start in (0..whole).step_by(16) {
        let mut sum = _mm512_setzero_si512();
        for (x, p) in inputs.iter().zip(params) {
            // SAFETY: start + 16 ≤ output.len() ≤ x.len() (the caller's check).
            let bytes = unsafe { _mm_loadu_si128(x.as_ptr().add(start).cast()) };
            let v = _mm512_sub_epi32(_mm512_cvtepi8_epi32(bytes), _mm512_set1_epi32(p.zero_point));
            // |x − zp| << 20 < 2^28: no overflow; the sum of ≤ 4 terms stays below 2^30.
            let term = if is_one_half(p.multiplier) {
                _mm512_slli_epi32::<{ ADD_LEFT_SHIFT - 1 }>(v)
            } else {
                unsafe { apply_16_lanes(_mm512_slli_epi32::<{ ADD_LEFT_SHIFT }>(v), p.multiplier) }
            };
            sum = _mm512_add_epi32(sum, term);
        }
        let q = unsafe { apply_16_lanes(sum, multiplier) };
        // Clamped before the zero point is added (`OutputRange::bounds_before_zero_point`).
        let q = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(q, low), high), zero_point);
        // SAFETY: start + 16 ≤ output.len(); the lanes are in [min, max] ⊂ [−128, 127].
        unsafe { _mm_storeu_si128(output.as_mut_ptr().add(start).cast(), _mm512_cvtepi32_epi8(q)) };
    }
    // The caller checked inputs.len() ≤ VECTOR_ADD_INPUTS, so the slice below cannot panic.
    let tail: [&[i8]; super::eltwise::VECTOR_ADD_INPUTS] =
        core::array::from_fn(|k| inputs.get(k).map_or(&[][..], |x| &x[whole..]));
    super::eltwise::add_reference(&tail[..inputs.len()], params, multiplier, range, &mut output[whole..]);
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::kernels::eltwise::add_reference;
    use alloc::vec;
    use alloc::vec::Vec;

    /// Both vector adds against the reference, each where this CPU runs it (`eltwise::add`
    /// takes only the widest, so tests/kernel_variants.rs reaches only that one here).
    #[test]
    fn vector_adds_match_reference() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for case in 0..200 {
            let (inputs_n, len) = (1 + next(4) as usize, 1 + next(300) as usize);
            let data: Vec<Vec<i8>> = (0..inputs_n).map(|_| (0..len).map(|_| next(256) as u8 as i8).collect()).collect();
            let inputs: Vec<&[i8]> = data.iter().map(Vec::as_slice).collect();
            // In every other case the first input has the largest scale, as in a model: ½.
            let params: Vec<AddInput> = (0..inputs_n)
                .map(|k| AddInput {
                    zero_point: next(256) as i32 - 128,
                    multiplier: Multiplier::from_real(if k == 0 && case % 2 == 0 {
                        0.5
                    } else {
                        0.5 * (1 + next(1000)) as f64 / 1000.0
                    })
                    .unwrap(),
                })
                .collect();
            assert_eq!(case % 2 == 0, is_one_half(params[0].multiplier), "case {case}");
            let output = Multiplier::from_real(2f64.powi(-(10 + next(12) as i32))).unwrap();
            let range = OutputRange::new(next(256) as i32 - 128, next(2) == 0);
            let mut want = vec![0i8; len];
            add_reference(&inputs, &params, output, range, &mut want);
            if std::is_x86_feature_detected!("avx2") {
                let mut got = vec![1i8; len];
                // SAFETY: AVX2 was detected just above.
                unsafe { add_avx2(&inputs, &params, output, range, &mut got) };
                assert_eq!(got, want, "case {case}: AVX2");
            }
            if std::is_x86_feature_detected!("avx512f") {
                let mut got = vec![1i8; len];
                // SAFETY: AVX-512F was detected just above.
                unsafe { add_avx512(&inputs, &params, output, range, &mut got) };
                assert_eq!(got, want, "case {case}: AVX-512");
            }
        }
    }
}
