//! Fixed-point requantisation, as in gemmlowp and the TFLite reference kernels.
//!
//! A real multiplier `M > 0` is stored as a Q31 mantissa `m ∈ [2^30, 2^31)` and
//! an exponent `shift` with `M ≈ m · 2^(shift − 31)`. Applying it to an i32
//! accumulator: saturating left shift by `max(shift, 0)`, saturating rounding
//! doubling high multiply by `m`, rounding right shift by `max(−shift, 0)`
//! (round half away from zero). Every backend implements exactly these steps.

use super::Shape;

use crate::error::{text, Error, Result};

/// A real multiplier in fixed point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Multiplier {
    /// Q31 mantissa in [2^30, 2^31), or 0 for a multiplier too small to matter.
    pub mantissa: i32,
    /// Power of two; positive means a left shift.
    pub shift: i32,
}

/// Largest left shift allowed: keeps `x << shift` meaningful for int8-sized inputs.
pub const MAX_LEFT_SHIFT: i32 = 30;

impl Multiplier {
    /// frexp-style decomposition of a positive finite real multiplier.
    pub fn from_real(real: f64) -> Result<Multiplier> {
        if !(real.is_finite() && real > 0.0) {
            return Err(Error::BadQuantization {
                what: text!("requantisation multiplier"),
                reason: text!("{real} must be finite and > 0"),
            });
        }
        let (fraction, mut exponent) = libm::frexp(real); // real = fraction · 2^exponent, fraction ∈ [0.5, 1)
        let mut mantissa = libm::round(fraction * (1u64 << 31) as f64) as i64;
        if mantissa == 1i64 << 31 {
            mantissa /= 2;
            exponent += 1;
        }
        if exponent < -31 {
            // Below 2^-32 the result is always zero; TFLite encodes it the same way.
            return Ok(Multiplier { mantissa: 0, shift: 0 });
        }
        if exponent > MAX_LEFT_SHIFT {
            return Err(Error::BadQuantization {
                what: text!("requantisation multiplier"),
                reason: text!("{real} is too large (at most 2^{MAX_LEFT_SHIFT})"),
            });
        }
        Ok(Multiplier { mantissa: mantissa as i32, shift: exponent })
    }

    /// Below 1 in the form the vector requantisations take: no left shift, a right shift
    /// of at most 31, a non-negative mantissa (every `from_real` of a value < 1).
    pub fn is_right_shift_only(self) -> bool {
        (-31..=0).contains(&self.shift) && self.mantissa >= 0
    }

    /// The real value this multiplier stands for.
    pub fn to_real(self) -> f64 {
        self.mantissa as f64 * libm::pow(2.0, (self.shift - 31) as f64)
    }

    /// `x · M` rounded, per the fixed-point steps above.
    #[inline]
    pub fn apply(self, x: i32) -> i32 {
        if self.shift <= 0 {
            // The common case (M < 1): no left shift, so no saturation before the multiply.
            let right = (-self.shift) as u32;
            return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, self.mantissa), right);
        }
        let shifted = saturating_left_shift(x, self.shift as u32);
        saturating_rounding_doubling_high_mul(shifted, self.mantissa)
    }
}

#[inline]
fn saturating_left_shift(x: i32, shift: u32) -> i32 {
    let wide = (x as i64) << shift.min(32);
    wide.clamp(i32::MIN as i64, i32::MAX as i64) as i32
}

/// gemmlowp's SaturatingRoundingDoublingHighMul: a·b / 2^31 rounded to nearest, ties
/// toward +∞ (gemmlowp's nudge), saturating the single overflow case a = b = i32::MIN.
#[inline]
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    // gemmlowp adds a nudge of ±2^30 and truncates toward zero; that equals
    // floor((a·b + 2^30) / 2^31), an arithmetic shift (the property tests check it).
    ((a as i64 * b as i64 + (1i64 << 30)) >> 31) as i32
}

/// gemmlowp's RoundingDivideByPOT: x / 2^exponent, ties away from zero. `exponent` ≤ 31.
#[inline]
pub fn rounding_divide_by_pot(x: i32, exponent: u32) -> i32 {
    let exponent = exponent.min(31);
    let mask = ((1u64 << exponent) - 1) as i32; // exponent 31: 0x7fff_ffff
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> exponent) + i32::from(remainder > threshold)
}

/// Per-channel requantisation of a conv/dense accumulator to an int8 output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChannelRequant {
    pub bias: i32,
    pub multiplier: Multiplier,
}

/// Output side of a requantisation: zero point and clamp bounds (ReLU folds into the lower bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputRange {
    pub zero_point: i32,
    pub min: i32,
    pub max: i32,
}

impl OutputRange {
    pub fn new(zero_point: i32, relu: bool) -> OutputRange {
        OutputRange { zero_point, min: if relu { zero_point.max(-128) } else { -128 }, max: 127 }
    }
}

/// acc → int8: scale, add the output zero point, clamp.
#[inline]
pub fn requantize(acc: i32, multiplier: Multiplier, out: OutputRange) -> i8 {
    let scaled = multiplier.apply(acc).saturating_add(out.zero_point);
    scaled.clamp(out.min, out.max) as i8
}

/// x / n rounded half away from zero (for average pools), n > 0.
#[inline]
pub fn rounding_divide(x: i32, n: i32) -> i32 {
    let (x, n) = (x as i64, n as i64);
    let q = if x >= 0 { (2 * x + n) / (2 * n) } else { -((-2 * x + n) / (2 * n)) };
    q as i32
}

/// Dequantises a channels-last int8 value into C×H×W f32: `(q − zero_point)·scale`.
/// `pixel_stride` is the distance between pixels in `values` (≥ `shape.c`; the GPU
/// pads channels to a multiple of 4). Every engine's logits leave through here.
pub fn dequantize_channels_last(
    values: &[i8],
    pixel_stride: usize,
    shape: Shape,
    scale: f32,
    zero_point: i32,
    out: &mut [f32],
) {
    let pixels = shape.h * shape.w;
    for (p, pixel) in values.chunks(pixel_stride.max(1)).take(pixels).enumerate() {
        for (c, &q) in pixel.iter().take(shape.c).enumerate() {
            if let Some(dst) = out.get_mut(c * pixels + p) {
                *dst = (i32::from(q) - zero_point) as f32 * scale;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_divide_by_pot_rounds_half_away_from_zero() {
        assert_eq!(rounding_divide_by_pot(5, 1), 3);
        assert_eq!(rounding_divide_by_pot(-5, 1), -3);
        assert_eq!(rounding_divide_by_pot(4, 1), 2);
        assert_eq!(rounding_divide_by_pot(6, 2), 2); // 1.5 → 2
        assert_eq!(rounding_divide_by_pot(-6, 2), -2);
        assert_eq!(rounding_divide_by_pot(-7, 2), -2); // −1.75 → −2
        assert_eq!(rounding_divide_by_pot(i32::MIN, 31), -1);
        assert_eq!(rounding_divide_by_pot(i32::MAX, 31), 1);
    }

    #[test]
    fn high_mul_saturates_the_one_overflow() {
        assert_eq!(saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN), i32::MAX);
        assert_eq!(saturating_rounding_doubling_high_mul(1 << 30, 1 << 30), 1 << 29);
    }

    #[test]
    fn multiplier_decomposition() {
        let m = Multiplier::from_real(0.5).unwrap();
        assert_eq!(m, Multiplier { mantissa: 1 << 30, shift: 0 });
        assert_eq!(m.apply(7), 4); // 3.5 → 4
        assert_eq!(m.apply(-7), -3); // −3.5 → −3: the high multiply breaks ties toward +∞, like TFLite
        assert_eq!(Multiplier::from_real(1e-12).unwrap(), Multiplier { mantissa: 0, shift: 0 });
        assert!(Multiplier::from_real(0.0).is_err());
        assert!(Multiplier::from_real(f64::NAN).is_err());
        assert!(Multiplier::from_real(-1.0).is_err());
        assert!(Multiplier::from_real(1e12).is_err());
        assert_eq!(Multiplier::from_real(3.0).unwrap().apply(5), 15);
    }

    #[test]
    fn average_rounding() {
        assert_eq!(rounding_divide(5, 2), 3);
        assert_eq!(rounding_divide(-5, 2), -3);
        assert_eq!(rounding_divide(4, 3), 1);
        assert_eq!(rounding_divide(-4, 3), -1);
        assert_eq!(rounding_divide(0, 9), 0);
    }
}
