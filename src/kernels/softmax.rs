//! int8 SOFTMAX over the last (channel) axis, bit-exact with TensorFlow Lite
//! Micro's reference kernel: int8 input, int8 output with scale 1/256 and zero
//! point −128.
//!
//! Ported from tflite-micro at commit 90b983c2b3f1480642e040bbd2ddb37b998f3424
//! and the gemmlowp it pins (third_party_downloads.inc: commit
//! 719139ce755a0f31cbf1c37f7f98adcc7fc9f425, whose `fixedpoint/fixedpoint.h`
//! behaves like gemmlowp master for scalar int32):
//!
//! * `tensorflow/lite/micro/kernels/softmax.cc`: `SoftmaxEval` → `SoftmaxQuantized`
//!   calls `reference_ops::Softmax<int8_t, int8_t>` for int8 → int8. There is
//!   **no lookup table** on this path: TFLM builds LUTs only for int16 input.
//! * `tensorflow/lite/micro/kernels/softmax_common.cc`: `CalculateSoftmaxParams`
//!   (requires output zero point −128 and scale exactly 1/256;
//!   `kScaledDiffIntegerBits = 5`; beta from the op options) → [`SoftmaxParams::new`].
//! * `tensorflow/lite/kernels/internal/quantization_util.cc`:
//!   `PreprocessSoftmaxScaling`, `QuantizeMultiplierGreaterThanOne`,
//!   `QuantizeMultiplier`, `CalculateInputRadius` (the non-`TFLITE_EMULATE_FLOAT`,
//!   double-rounding build: TFLM never defines `TFLITE_SINGLE_ROUNDING`).
//! * `tensorflow/lite/kernels/internal/reference/softmax.h`: the quantised
//!   `Softmax` → [`softmax_reference`].
//! * `tensorflow/lite/kernels/internal/common.h`:
//!   `MultiplyByQuantizedMultiplierGreaterThanOne` (double rounding),
//!   `GetReciprocal`, `CountLeadingZeros`.
//! * gemmlowp `fixedpoint/fixedpoint.h`: `exp_on_negative_values`,
//!   `exp_on_interval_between_negative_one_quarter_and_0_excl`,
//!   `one_over_one_plus_x_for_x_in_0_1`, `Rescale`,
//!   `SaturatingRoundingMultiplyByPOT`, `RoundingHalfSum`, `RoundingDivideByPOT`,
//!   `SaturatingRoundingDoublingHighMul` and the `FixedPoint` operators.
//!
//! Desktop TFLite differs: its default (`kGenericOptimized`) int8 softmax
//! (`tensorflow/lite/kernels/activations.cc`) evaluates a float table from
//! `optimized_ops::PopulateSoftmaxLookupTable` (or, with
//! `TFLITE_SOFTMAX_USE_UINT16_LUT`, `SoftmaxInt8LUT`), which can differ from
//! this by a unit; only its `kReference` kernel runs this algorithm. It also
//! accepts an output scale *near* 1/256, where TFLM demands it exactly.
//!
//! Integer semantics follow the C++: gemmlowp's `FixedPoint` `+`/`-` are plain
//! int32 arithmetic (wrapping here, UB there but never reached for valid
//! inputs), shifts of negatives are arithmetic, and the saturating steps
//! saturate exactly where gemmlowp's do.

use crate::error::{text, Error, Real, Result, Text};
use crate::spec::fixed_point::{rounding_divide_by_pot, saturating_rounding_doubling_high_mul};

/// Integer bits of the scaled input differences (Q5.26): TFLite's `kScaledDiffIntegerBits`.
const SCALED_DIFF_INTEGER_BITS: i32 = 5;
/// Integer bits of the sum of exponentials (Q12.19): TFLite's `kAccumulationIntegerBits`.
const ACCUMULATION_INTEGER_BITS: i32 = 12;

/// Deepest row whose sum of exponentials (Q12.19, up to 2^19 each) fits in i32;
/// the loader refuses deeper int8 softmaxes.
pub const MAX_DEPTH: usize = 4095;

/// TFLite's softmax constants for one int8 input scale and beta (TFLM's Prepare).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftmaxParams {
    /// Q31 mantissa of `min(beta · input_scale · 2^26, 2^31 − 1)`.
    pub input_multiplier: i32,
    /// Its power of two, in `1..=31` (a left shift).
    pub input_left_shift: i32,
    /// Input differences `x − max` below this (≤ 0) contribute nothing and give −128.
    pub diff_min: i32,
}

impl SoftmaxParams {
    /// Errors (typed, never panics) for a scale/beta that is not finite and > 0 or whose multiplier does not fit.
    ///
    /// `PreprocessSoftmaxScaling(beta, input_scale, 5)` then
    /// `diff_min = −CalculateInputRadius(5, input_left_shift)`, both in double
    /// as TFLM computes them. Where TFLM would abort on a `TFLITE_CHECK`
    /// (`beta · scale · 2^26 ≤ 1`, i.e. a multiplier below one), this returns
    /// `Error::BadQuantization`.
    pub fn new(input_scale: f32, beta: f32) -> Result<SoftmaxParams> {
        let bad = |what: &str, reason: Text| Error::BadQuantization { what: text!("{what}"), reason };
        if !(input_scale.is_finite() && input_scale > 0.0) {
            return Err(bad("softmax input scale", text!("{} is not finite and > 0", Real::from(input_scale))));
        }
        if !(beta.is_finite() && beta > 0.0) {
            return Err(bad("softmax beta", text!("{} is not finite and > 0", Real::from(beta))));
        }
        // PreprocessSoftmaxScaling: the multiplier is capped, since beyond it
        // exp() of any nonzero difference rounds to zero anyway.
        const MAX_REAL_MULTIPLIER: f64 = ((1i64 << 31) - 1) as f64;
        let real = (f64::from(beta) * f64::from(input_scale) * f64::from(1i32 << (31 - SCALED_DIFF_INTEGER_BITS)))
            .min(MAX_REAL_MULTIPLIER);
        // QuantizeMultiplierGreaterThanOne: TFLITE_CHECK_GT(double_multiplier, 1.).
        if real.is_nan() || real <= 1.0 {
            return Err(bad(
                "softmax input scale",
                text!(
                    "scale {} × beta {} × 2^26 = {} must exceed 1 (TFLite's multiplier > 1)",
                    Real::from(input_scale),
                    Real::from(beta),
                    Real::from(real)
                ),
            ));
        }
        // QuantizeMultiplier: frexp, round half away from zero (TfLiteRound), renormalise 2^31.
        let (fraction, mut shift) = libm::frexp(real);
        let mut q_fixed = libm::round(fraction * (1i64 << 31) as f64) as i64;
        if q_fixed == 1i64 << 31 {
            q_fixed /= 2;
            shift += 1;
        }
        let input_multiplier = i32::try_from(q_fixed).map_err(|_| {
            bad(
                "softmax input multiplier",
                text!("{q_fixed} does not fit in int32 (scale {}, beta {})", Real::from(input_scale), Real::from(beta)),
            )
        })?;
        // TFLITE_CHECK_GE(left_shift, 0); above 31, `1 << left_shift` would overflow int32.
        if !(0..=31).contains(&shift) {
            return Err(bad(
                "softmax input multiplier",
                text!(
                    "left shift {shift} is outside 0..=31 (scale {}, beta {})",
                    Real::from(input_scale),
                    Real::from(beta)
                ),
            ));
        }
        // CalculateInputRadius(5, shift, 31): floor(31 · 2^26 / 2^shift), in double.
        let max_input_rescaled = f64::from((1i32 << SCALED_DIFF_INTEGER_BITS) - 1)
            * (1i64 << (31 - SCALED_DIFF_INTEGER_BITS)) as f64
            / (1i64 << shift) as f64;
        let radius = libm::floor(max_input_rescaled) as i32;
        Ok(SoftmaxParams { input_multiplier, input_left_shift: shift, diff_min: -radius })
    }
}

/// Softmax over each row of `depth` consecutive values (channels last); output scale 1/256, zero point -128.
/// `input.len() == output.len()`, a multiple of `depth` (if not, process the whole rows only, do not panic).
///
/// TFLite's `reference_ops::Softmax<int8_t, int8_t>`. Rows are handled while
/// both slices hold a whole row; a trailing partial row, or `depth == 0`, is
/// left untouched. Allocates nothing.
///
/// Rows deeper than 4095 can carry the Q12.19 sum of exponentials past
/// `i32::MAX` (each maximum adds 2^19). The C++ addition then wraps and, when
/// the sum lands negative, TFLM aborts on `TFLITE_CHECK(0 <= exponent && exponent <= 31)`;
/// here the sum wraps the same way and the exponent is clamped to `0..=31`
/// instead (the row is then meaningless, but nothing panics).
pub fn softmax_reference(params: &SoftmaxParams, depth: usize, input: &[i8], output: &mut [i8]) {
    if depth == 0 {
        return;
    }
    for (row_in, row_out) in input.chunks_exact(depth).zip(output.chunks_exact_mut(depth)) {
        softmax_row(params, row_in, row_out);
    }
}

/// One row of `reference_ops::Softmax`.
fn softmax_row(params: &SoftmaxParams, input: &[i8], output: &mut [i8]) {
    let max_in_row = input.iter().fold(i8::MIN, |max, &x| max.max(x));
    // exp(beta · scale · (x − max)) in Q0.31, or None where the difference is
    // below diff_min (TFLM skips it: it would vanish in the accumulation).
    let exp_of = |x: i8| -> Option<i32> {
        let input_diff = i32::from(x) - i32::from(max_in_row);
        if input_diff < params.diff_min {
            return None;
        }
        let input_diff_rescaled = multiply_by_quantized_multiplier_greater_than_one(
            input_diff,
            params.input_multiplier,
            params.input_left_shift,
        );
        Some(exp_on_negative_values_q5_26(input_diff_rescaled))
    };

    // FixedPointAccum (Q12.19) sum; gemmlowp's `+` is plain int32 addition.
    let sum_of_exps =
        input.iter().filter_map(|&x| exp_of(x)).fold(0i32, |sum, exp| sum.wrapping_add(rescale_q0_31_to_q12_19(exp)));

    let (shifted_scale, num_bits_over_unit) = get_reciprocal(sum_of_exps, ACCUMULATION_INTEGER_BITS);
    // num_bits_over_unit + 31 − 8 (the output type's width); TFLM checks 0..=31.
    let exponent = num_bits_over_unit.wrapping_add(31 - 8).clamp(0, 31) as u32;

    for (&x, out) in input.iter().zip(output.iter_mut()) {
        *out = match exp_of(x) {
            Some(exp_in_0) => {
                let unsat_output =
                    rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted_scale, exp_in_0), exponent);
                let shifted_output = unsat_output.wrapping_add(i32::from(i8::MIN));
                shifted_output.clamp(i32::from(i8::MIN), i32::from(i8::MAX)) as i8
            }
            None => i8::MIN,
        };
    }
}

/// TFLite's double-rounding `MultiplyByQuantizedMultiplierGreaterThanOne`:
/// `SRDHM(x · 2^left_shift, multiplier)`. The product never overflows for a
/// difference ≥ diff_min (that is what diff_min guarantees); wrapping keeps
/// the impossible case panic-free, as `1 << 31` is `INT_MIN` in C++20.
fn multiply_by_quantized_multiplier_greater_than_one(x: i32, quantized_multiplier: i32, left_shift: i32) -> i32 {
    let power = 1i32.wrapping_shl(left_shift as u32);
    saturating_rounding_doubling_high_mul(x.wrapping_mul(power), quantized_multiplier)
}

/// gemmlowp's `SaturatingRoundingMultiplyByPOT<exponent>` for `exponent` in
/// 1..=30: a left shift that saturates to the int32 range (the right-shift
/// flavour is `rounding_divide_by_pot`).
fn saturating_multiply_by_pot(x: i32, exponent: u32) -> i32 {
    let threshold = (1i32 << (31 - exponent)) - 1;
    if x > threshold {
        i32::MAX
    } else if x < -threshold {
        i32::MIN
    } else {
        x << exponent // |x| ≤ threshold: exact
    }
}

/// `Rescale<12>` of a Q0.31 value: `SaturatingRoundingMultiplyByPOT<-12>`, a rounding right shift.
fn rescale_q0_31_to_q12_19(x: i32) -> i32 {
    rounding_divide_by_pot(x, ACCUMULATION_INTEGER_BITS as u32)
}

/// gemmlowp's `RoundingHalfSum` for int32: (a + b) / 2 rounded half away from
/// zero, in 64 bits; C++ `/` truncates toward zero, as Rust's does.
fn rounding_half_sum(a: i32, b: i32) -> i32 {
    let sum = i64::from(a) + i64::from(b);
    let sign = if sum >= 0 { 1 } else { -1 };
    ((sum + sign) / 2) as i32
}

/// gemmlowp's `exp_on_interval_between_negative_one_quarter_and_0_excl`
/// (Q0.31 in and out): a 4th-order Taylor expansion around −1/8.
fn exp_on_interval_between_negative_one_quarter_and_0_excl(a: i32) -> i32 {
    const EXP_MINUS_ONE_EIGHTH: i32 = 1_895_147_668; // exp(−1/8) in Q0.31
    const ONE_THIRD: i32 = 715_827_883; // 1/3 in Q0.31
    let x = a.wrapping_add(1 << 28); // a + 1/8
    let x2 = saturating_rounding_doubling_high_mul(x, x);
    let x3 = saturating_rounding_doubling_high_mul(x2, x);
    let x4 = saturating_rounding_doubling_high_mul(x2, x2);
    let x4_over_4 = rounding_divide_by_pot(x4, 2);
    let x4_over_24_plus_x3_over_6_plus_x2_over_2 = rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(x4_over_4.wrapping_add(x3), ONE_THIRD).wrapping_add(x2),
        1,
    );
    // AddSaturatingIf16Bit: a plain addition for int32.
    EXP_MINUS_ONE_EIGHTH.wrapping_add(saturating_rounding_doubling_high_mul(
        EXP_MINUS_ONE_EIGHTH,
        x.wrapping_add(x4_over_24_plus_x3_over_6_plus_x2_over_2),
    ))
}

/// gemmlowp's `exp_on_negative_values` for a Q5.26 input `a ≤ 0`, giving Q0.31:
/// exp of `a mod 1/4` (shifted into [−1/4, 0)) by Taylor series, times
/// exp(−2^k) for each bit k of the remaining whole quarters (a barrel shifter).
/// With 5 integer bits there is no −32 clamp (`kIntegerBits > 5` is false).
fn exp_on_negative_values_q5_26(a: i32) -> i32 {
    const FRACTIONAL_BITS: i32 = 31 - SCALED_DIFF_INTEGER_BITS; // 26
    const ONE_QUARTER: i32 = 1 << (FRACTIONAL_BITS - 2);
    // (bit of the remainder, exp(−2^Exponent) in Q0.31) for Exponent = −2..=4,
    // in gemmlowp's order (the order of the rounded products matters).
    const BARREL_SHIFTER: [(i32, i32); 7] = [
        (FRACTIONAL_BITS - 2, 1_672_461_947), // exp(−1/4)
        (FRACTIONAL_BITS - 1, 1_302_514_674), // exp(−1/2)
        (FRACTIONAL_BITS, 790_015_084),       // exp(−1)
        (FRACTIONAL_BITS + 1, 290_630_308),   // exp(−2)
        (FRACTIONAL_BITS + 2, 39_332_535),    // exp(−4)
        (FRACTIONAL_BITS + 3, 720_401),       // exp(−8)
        (FRACTIONAL_BITS + 4, 242),           // exp(−16)
    ];
    let mask = ONE_QUARTER - 1;
    let a_mod_quarter_minus_one_quarter = (a & mask).wrapping_sub(ONE_QUARTER);
    // Rescale<0> from Q5.26: SaturatingRoundingMultiplyByPOT<5>.
    let mut result = exp_on_interval_between_negative_one_quarter_and_0_excl(saturating_multiply_by_pot(
        a_mod_quarter_minus_one_quarter,
        SCALED_DIFF_INTEGER_BITS as u32,
    ));
    let remainder = a_mod_quarter_minus_one_quarter.wrapping_sub(a);
    for (bit, multiplier) in BARREL_SHIFTER {
        if remainder & (1i32 << bit) != 0 {
            result = saturating_rounding_doubling_high_mul(result, multiplier);
        }
    }
    if a == 0 {
        i32::MAX // FixedPoint<int32, 0>::One()
    } else {
        result
    }
}

/// gemmlowp's `one_over_one_plus_x_for_x_in_0_1` (Q0.31 in and out): three
/// Newton–Raphson steps on the half denominator (1 + x)/2, in Q2.29.
fn one_over_one_plus_x_for_x_in_0_1(a: i32) -> i32 {
    const FORTY_EIGHT_OVER_SEVENTEEN: i32 = 1_515_870_810; // 48/17 in Q2.29
    const MINUS_THIRTY_TWO_OVER_SEVENTEEN: i32 = -1_010_580_540; // −32/17 in Q2.29
    const ONE_Q2_29: i32 = 1 << 29;
    let half_denominator = rounding_half_sum(a, i32::MAX);
    let mut x = FORTY_EIGHT_OVER_SEVENTEEN
        .wrapping_add(saturating_rounding_doubling_high_mul(half_denominator, MINUS_THIRTY_TWO_OVER_SEVENTEEN));
    for _ in 0..3 {
        let half_denominator_times_x = saturating_rounding_doubling_high_mul(half_denominator, x);
        let one_minus_half_denominator_times_x = ONE_Q2_29.wrapping_sub(half_denominator_times_x);
        // Q2.29 · Q2.29 = Q4.27; Rescale<2> is SaturatingRoundingMultiplyByPOT<2>.
        x = x.wrapping_add(saturating_multiply_by_pot(
            saturating_rounding_doubling_high_mul(x, one_minus_half_denominator_times_x),
            2,
        ));
    }
    // ExactMulByPot<-1> (Q2.29 → Q1.30, same raw) then Rescale<0>: SaturatingRoundingMultiplyByPOT<1>.
    saturating_multiply_by_pot(x, 1)
}

/// TFLite's `GetReciprocal(x, x_integer_digits)`: 1/x as a Q0.31 mantissa in
/// (1/2, 1] and `num_bits_over_unit`, the power of two it was shifted by.
fn get_reciprocal(x: i32, x_integer_digits: i32) -> (i32, i32) {
    // CountLeadingZeros(uint32): 32 for 0.
    let headroom_plus_one = (x as u32).leading_zeros();
    let num_bits_over_unit = x_integer_digits - headroom_plus_one as i32;
    // `uint32 << 32` is UB in C++ (only reachable for x == 0, where the bits
    // are zero either way); wrapping_shl keeps it defined.
    let shifted_sum_minus_one = (x as u32).wrapping_shl(headroom_plus_one).wrapping_sub(1u32 << 31) as i32;
    (one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    /// xorshift64*: deterministic test inputs without a dependency.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    fn run(scale: f32, beta: f32, row: &[i8]) -> Vec<i8> {
        let params = SoftmaxParams::new(scale, beta).unwrap();
        let mut out = vec![0i8; row.len()];
        softmax_reference(&params, row.len(), row, &mut out);
        out
    }

    /// round(256·p) − 128 from an f64 softmax of the dequantised row.
    fn float_softmax(scale: f32, beta: f32, row: &[i8]) -> Vec<i32> {
        let max = row.iter().copied().max().unwrap();
        let k = f64::from(beta) * f64::from(scale);
        let exps: Vec<f64> = row.iter().map(|&x| libm::exp(k * f64::from(i32::from(x) - i32::from(max)))).collect();
        let sum: f64 = exps.iter().sum();
        exps.iter().map(|e| (libm::round(256.0 * e / sum) as i32 - 128).clamp(-128, 127)).collect()
    }

    #[test]
    fn within_one_unit_of_the_f64_softmax() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut worst = 0;
        for case in 0..4000 {
            // Scales log-uniform in [2^-10, 2^2], beta in [0.25, 4] (beta 1 every other case).
            let scale = libm::exp2(-10.0 + 12.0 * rng.unit()) as f32;
            let beta = if case % 2 == 0 { 1.0 } else { libm::exp2(-2.0 + 4.0 * rng.unit()) as f32 };
            let depth = 1 + rng.below(40) as usize;
            let spread = 1 + rng.below(256) as i32; // narrow rows exercise ties and near-uniform outputs
            let base = rng.below(256) as i32 - 128;
            let row: Vec<i8> = (0..depth)
                .map(|_| (base + rng.below(spread as u64) as i32 - spread / 2).clamp(-128, 127) as i8)
                .collect();
            let got = run(scale, beta, &row);
            let want = float_softmax(scale, beta, &row);
            for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
                let err = (i32::from(g) - w).abs();
                worst = worst.max(err);
                assert!(err <= 1, "scale {scale} beta {beta} row {row:?}: output {i} is {g}, f64 gives {w}");
            }
        }
        assert!(worst <= 1);
    }

    #[test]
    fn equal_rows_share_the_probability() {
        for n in [1usize, 2, 3, 4, 5, 7, 8, 10, 16, 32, 100, 255, 256, 1000, 4095] {
            for value in [-128i8, -1, 0, 42, 127] {
                let row = vec![value; n];
                let want = (libm::round(256.0 / n as f64) as i32 - 128).clamp(-128, 127);
                for (scale, beta) in [(0.1f32, 1.0f32), (1.0 / 256.0, 1.0), (2.0, 0.5)] {
                    let got = run(scale, beta, &row);
                    for &g in &got {
                        assert!((i32::from(g) - want).abs() <= 1, "n {n} value {value}: {g} vs {want}");
                    }
                    assert!(got.iter().all(|&g| g == got[0]), "n {n}: outputs of equal inputs differ");
                }
            }
        }
        // Exact where 256/n is an integer and the fixed point lands on it.
        assert_eq!(run(0.1, 1.0, &[7; 1]), [127]); // 256 − 128 saturates
        assert_eq!(run(0.1, 1.0, &[7; 2]), [0, 0]);
        assert_eq!(run(0.1, 1.0, &[7; 4]), [-64; 4]);
    }

    #[test]
    fn one_huge_value_takes_everything() {
        for (scale, beta) in [(1.0f32, 1.0f32), (0.1, 1.0), (0.5, 2.0), (100.0, 1.0)] {
            for depth in [2usize, 3, 10, 64] {
                for at in [0, depth / 2, depth - 1] {
                    let mut row = vec![-128i8; depth];
                    row[at] = 127;
                    let got = run(scale, beta, &row);
                    for (i, &g) in got.iter().enumerate() {
                        assert_eq!(g, if i == at { 127 } else { -128 }, "scale {scale} depth {depth} at {at}");
                    }
                }
            }
        }
    }

    // Golden values from an independent Python transcription of the C++
    // (Python ints, explicit int32 wrapping `w`, C++ truncating division). The
    // same values, and 20 000 random rows, also came out of TFLM's own
    // `reference_ops::Softmax` + `PreprocessSoftmaxScaling` compiled with g++.
    //
    //
    // import math, struct
    // def w(x): x &= 0xFFFFFFFF; return x - (1 << 32) if x >> 31 else x   # int32 wrap
    // def srdhm(a, b):                       # SaturatingRoundingDoublingHighMul
    //     if a == b == -2**31: return 2**31 - 1
    //     ab = a * b; nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    //     t = ab + nudge; return w((abs(t) >> 31) * (1 if t >= 0 else -1))   # C++ '/' truncates
    // def rdbp(x, e):                        # RoundingDivideByPOT
    //     mask = (1 << e) - 1; rem = x & mask; thr = (mask >> 1) + (1 if x < 0 else 0)
    //     return (x >> e) + (1 if rem > thr else 0)
    // def srmpot(x, e):                      # SaturatingRoundingMultiplyByPOT<e>, e > 0
    //     thr = (1 << (31 - e)) - 1
    //     return 2**31 - 1 if x > thr else -2**31 if x < -thr else x << e
    // def exp_quarter(a):                    # exp_on_interval_between_negative_one_quarter_and_0_excl
    //     c = 1895147668; x = w(a + (1 << 28)); x2 = srdhm(x, x); x3 = srdhm(x2, x); x4 = srdhm(x2, x2)
    //     t = rdbp(w(srdhm(w(rdbp(x4, 2) + x3), 715827883) + x2), 1)
    //     return w(c + srdhm(c, w(x + t)))
    // def exp_neg(a):                        # exp_on_negative_values, Q5.26 -> Q0.31
    //     amq = w((a & ((1 << 24) - 1)) - (1 << 24)); r = exp_quarter(srmpot(amq, 5)); rem = w(amq - a)
    //     for s, m in [(24, 1672461947), (25, 1302514674), (26, 790015084), (27, 290630308),
    //                  (28, 39332535), (29, 720401), (30, 242)]:
    //         if rem & (1 << s): r = srdhm(r, m)
    //     return 2**31 - 1 if a == 0 else r
    // def one_over_1px(a):                   # one_over_one_plus_x_for_x_in_0_1
    //     s = a + 2**31 - 1; t = s + (1 if s >= 0 else -1); hd = w((abs(t) // 2) * (1 if t >= 0 else -1))
    //     x = w(1515870810 + srdhm(hd, -1010580540))
    //     for _ in range(3): x = w(x + srmpot(srdhm(x, w((1 << 29) - srdhm(hd, x))), 2))
    //     return srmpot(x, 1)
    // def params(scale, beta):               # PreprocessSoftmaxScaling + CalculateInputRadius
    //     f32 = lambda v: struct.unpack('f', struct.pack('f', v))[0]
    //     real = min(f32(beta) * f32(scale) * (1 << 26), (1 << 31) - 1.0)
    //     q, sh = math.frexp(real); qf = int(math.floor(abs(q * 2**31) + 0.5))
    //     if qf == 1 << 31: qf //= 2; sh += 1
    //     return qf, sh, -math.floor(31.0 * (1 << 26) / (1 << sh))
    // def softmax(scale, beta, row):
    //     m, sh, dmin = params(scale, beta); mx = max(row)
    //     e = [exp_neg(srdhm(w((v - mx) * (1 << sh)), m)) if v - mx >= dmin else None for v in row]
    //     total = 0
    //     for v in e:
    //         if v is not None: total = w(total + rdbp(v, 12))
    //     hp1 = 32 - total.bit_length() if total > 0 else 0 if total < 0 else 32
    //     nbou = 12 - hp1; scl = one_over_1px(w(((total & 0xFFFFFFFF) << hp1) - (1 << 31)))
    //     ex = nbou + 23
    //     return [max(-128, min(127, rdbp(srdhm(scl, v), ex) - 128)) if v is not None else -128 for v in e]

    #[test]
    fn params_match_the_python_transcription() {
        let p = |input_multiplier, input_left_shift, diff_min| SoftmaxParams {
            input_multiplier,
            input_left_shift,
            diff_min,
        };
        assert_eq!(SoftmaxParams::new(1.0 / 16.0, 1.0).unwrap(), p(1_073_741_824, 23, -248));
        assert_eq!(SoftmaxParams::new(0.1, 1.0).unwrap(), p(1_717_986_944, 23, -248));
        assert_eq!(SoftmaxParams::new(0.039_062_5, 0.7).unwrap(), p(1_879_048_160, 21, -992));
        assert_eq!(SoftmaxParams::new(0.01, 1.0).unwrap(), p(1_374_389_504, 20, -1984));
        // Capped at 2^31 − 1: shift 31, and only the row maximum survives.
        assert_eq!(SoftmaxParams::new(100.0, 1.0).unwrap(), p(2_147_483_647, 31, 0));
    }

    #[test]
    fn fixed_point_helpers_match_the_python_transcription() {
        for (a, want) in [
            (0, 2_147_483_647),
            (-1, 2_147_483_124),
            (-(1 << 24), 1_672_462_419),
            (-(1 << 26), 790_015_308),
            (-(3 << 25), 479_168_506),
            (-12_345_678, 1_786_631_188),
            (-(31 << 26), 0),
        ] {
            assert_eq!(exp_on_negative_values_q5_26(a), want, "exp_on_negative_values({a})");
        }
        for (a, want) in
            [(0, 2_147_483_647), (1 << 30, 1_431_655_762), (i32::MAX, 1_073_741_820), (123_456_789, 2_030_738_432)]
        {
            assert_eq!(one_over_one_plus_x_for_x_in_0_1(a), want, "one_over_one_plus_x({a})");
        }
    }

    #[test]
    fn rows_match_the_python_transcription() {
        let cases: [(f32, f32, &[i8], &[i8]); 6] = [
            (0.1, 1.0, &[10, 3, -5, 0, 10, 7, -128, 7], &[-72, -100, -115, -107, -72, -86, -128, -86]),
            (0.039_062_5, 1.0, &[-128, -100, -64, -1, 0, 1, 64, 127], &[-128, -128, -128, -126, -126, -126, -108, 103]),
            (
                0.25,
                0.5,
                &[3, 2, 1, 0, -1, -2, -3, -4, -5, -6],
                &[-86, -91, -95, -99, -102, -105, -108, -110, -112, -114],
            ),
            (0.05, 2.0, &[12, 11, 12, 9, -20, 5], &[-67, -73, -67, -83, -126, -98]),
            (0.01, 1.0, &[100, 90, 80, 70, 60, 50, 40], &[-80, -84, -88, -92, -96, -99, -101]),
            // 116, not 117, only because the Q12.19 sum of exponentials is rounded (Rescale<12>), not truncated.
            (0.25, 1.0, &[-13, 2, -13], &[-122, 116, -122]),
        ];
        for (scale, beta, row, want) in cases {
            assert_eq!(run(scale, beta, row), want, "scale {scale} beta {beta} row {row:?}");
        }
        // Several rows in one call (channels last): each row on its own.
        let params = SoftmaxParams::new(0.1, 1.0).unwrap();
        let input = [10i8, 3, -5, 0, 10, 7, -128, 7, 10, 3, -5, 0, 10, 7, -128, 7];
        let mut out = [0i8; 16];
        softmax_reference(&params, 8, &input, &mut out);
        assert_eq!(out[..8], [-72, -100, -115, -107, -72, -86, -128, -86]);
        assert_eq!(out[8..], out[..8]);
    }

    #[test]
    fn bad_scales_and_betas_are_errors() {
        for (scale, beta) in [
            (0.0f32, 1.0f32),
            (-0.1, 1.0),
            (f32::NAN, 1.0),
            (f32::INFINITY, 1.0),
            (0.1, 0.0),
            (0.1, -1.0),
            (0.1, f32::NAN),
            (0.1, f32::INFINITY),
            (1e-9, 1.0),               // 1e-9 · 2^26 < 1: TFLite's multiplier-greater-than-one check
            (1.0 / 67_108_864.0, 1.0), // exactly 1: still not > 1
        ] {
            assert!(
                matches!(SoftmaxParams::new(scale, beta), Err(Error::BadQuantization { .. })),
                "scale {scale} beta {beta}"
            );
        }
        // Extremes that are valid do not panic.
        for (scale, beta) in [(f32::MAX, f32::MAX), (f32::MIN_POSITIVE, f32::MAX), (1.5e-8, 1.0)] {
            let params = SoftmaxParams::new(scale, beta).unwrap();
            let mut out = [0i8; 4];
            softmax_reference(&params, 4, &[-128, 0, 5, 127], &mut out);
        }
    }

    #[test]
    fn partial_rows_and_odd_lengths_do_not_panic() {
        let params = SoftmaxParams::new(0.1, 1.0).unwrap();
        let mut out = [55i8; 7];
        softmax_reference(&params, 3, &[1, 2, 3, 4, 5, 6, 7], &mut out);
        assert_eq!(out[6], 55, "the partial row is left untouched");
        assert_eq!(out[..3], run(0.1, 1.0, &[1, 2, 3])[..]);
        softmax_reference(&params, 0, &[1, 2, 3], &mut out);
        softmax_reference(&params, 4, &[1, 2, 3], &mut out); // no whole row
        let mut short = [0i8; 4];
        softmax_reference(&params, 2, &[1, 2, 3, 4, 5, 6], &mut short); // output shorter: two rows
        assert_eq!(short[..2], run(0.1, 1.0, &[1, 2])[..]);
        // A row deep enough to wrap the Q12.19 accumulator (TFLM would abort) is defined, not a panic.
        let deep = vec![0i8; 5000];
        let mut deep_out = vec![0i8; 5000];
        softmax_reference(&params, 5000, &deep, &mut deep_out);
    }
}
