//! Fixed-point requantisation, as in gemmlowp and the TFLite reference kernels.
//!
//! A real multiplier `M > 0` is stored as a Q31 mantissa `m ∈ [2^30, 2^31)` and
//! an exponent `shift` with `M ≈ m · 2^(shift − 31)`. Applying it to an i32
//! accumulator: saturating left shift by `max(shift, 0)`, saturating rounding
//! doubling high multiply by `m`, rounding right shift by `max(−shift, 0)`
//! (round half away from zero). Every backend implements exactly these steps.

use super::Shape;

use crate::error::{Error, Real, Result};

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

/// The error of a multiplier `from_real` refuses.
// Out of line: the arguments it formats are then not in the frame of every
// successful call (a load's, on a microcontroller).
#[cold]
#[inline(never)]
fn bad_multiplier(reason: core::fmt::Arguments<'_>) -> Error {
    Error::bad_quantization(format_args!("requantisation multiplier"), reason)
}

impl Multiplier {
    /// frexp-style decomposition of a positive finite real multiplier.
    pub fn from_real(real: f64) -> Result<Multiplier> {
        if !(real.is_finite() && real > 0.0) {
            return Err(bad_multiplier(format_args!("{} must be finite and > 0", Real::from(real))));
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
            return Err(bad_multiplier(format_args!("{} is too large (at most 2^{MAX_LEFT_SHIFT})", Real::from(real))));
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

impl ChannelRequant {
    /// Whether, for a layer summing `taps` products of int8 weights and inputs, this
    /// channel's rounding right shift of the high product h (by s) is one add and a
    /// shift, [`Multiplier::apply_one_add`]: (h + 2^(s−1) − [x < 0]) >> s, x being the
    /// accumulator bias + Σ w·(x − zp). That is gemmlowp's RoundingDivideByPOT for
    /// s ≥ 1; h < 0 exactly when x < 0 for a mantissa above 2^30; and h grows with x,
    /// so h of the largest x (|bias| + taps·128·255) plus 2^(s−1) inside an i32 keeps
    /// the add from overflowing. A zero multiplier (h = 0) takes it with s = 1.
    pub fn rounds_in_one_add(&self, taps: usize) -> bool {
        let Multiplier { mantissa, shift } = self.multiplier;
        if mantissa == 0 {
            return true;
        }
        let s = -shift;
        if mantissa <= 1 << 30 || !(1..=31).contains(&s) {
            return false;
        }
        let largest =
            u64::from(self.bias.unsigned_abs()).saturating_add((taps as u64).saturating_mul(128 * 255)).min(1 << 32);
        let high = (largest * mantissa as u64 + (1 << 30)) >> 31; // < 2^63: largest ≤ 2^32, mantissa < 2^31
        high + (1 << (s - 1)) <= i32::MAX as u64
    }
}

impl Multiplier {
    /// The right shift the one-add rounding uses: a zero multiplier's is 1 (any shift of
    /// h = 0 is 0, and the one-add form needs one of at least 1).
    pub fn one_add_right_shift(self) -> i32 {
        if self.mantissa == 0 {
            1
        } else {
            -self.shift
        }
    }

    /// [`Multiplier::apply`] as the 512-bit x86 kernels compute it where
    /// [`ChannelRequant::rounds_in_one_add`] holds: the nudge and the half of the right
    /// shift added to the 64-bit product at once, the sign of x for h's. (Equal to `apply`
    /// only where that holds; without a right shift of 1..=31 it is `apply`.)
    pub fn apply_one_add(self, x: i32) -> i32 {
        let s = self.one_add_right_shift();
        if !(1..=31).contains(&s) {
            return self.apply(x);
        }
        let product = i64::from(x) * i64::from(self.mantissa) + (1 << 30) + (1i64 << (s + 30));
        let high = (product >> 31) as i32; // h + 2^(s−1), inside an i32 where the condition holds
        high.wrapping_add(x >> 31) >> s
    }
}

/// A conv or dense layer's requantisation, one [`ChannelRequant`] per output
/// channel, as the kernels read it: either a slice of them, or in the compact
/// form a loaded model keeps, little-endian bytes read where they lie: the
/// biases in the model file, the multipliers in the file where it stores them
/// (else in the load's state, one per channel or one for all, a per-tensor
/// quantised layer's). A microcontroller holds 0 or 5 bytes per channel, not 12.
#[derive(Debug, Clone, Copy)]
pub enum Requant<'a> {
    Channels(&'a [ChannelRequant]),
    Compact {
        channels: usize,
        /// `4 · channels` bytes, or none: no bias.
        bias: &'a [u8],
        /// Q31 mantissas (4 bytes each) and shifts (1 byte each, signed):
        /// `channels` of each, or one for every channel.
        mantissas: &'a [u8],
        shifts: &'a [u8],
    },
}

impl<'a> From<&'a [ChannelRequant]> for Requant<'a> {
    fn from(channels: &'a [ChannelRequant]) -> Requant<'a> {
        Requant::Channels(channels)
    }
}

impl Requant<'_> {
    /// Output channels.
    #[inline]
    pub fn len(&self) -> usize {
        match self {
            Requant::Channels(c) => c.len(),
            Requant::Compact { channels, .. } => *channels,
        }
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Output channel `o`'s bias and multiplier (zero past the end: the loader
    /// makes every form as long as the layer, so the kernels never ask).
    #[inline]
    pub fn channel(&self, o: usize) -> ChannelRequant {
        match *self {
            Requant::Channels(c) => c.get(o).copied().unwrap_or_default(),
            Requant::Compact { bias, mantissas, shifts, .. } => {
                let k = if shifts.len() == 1 { 0 } else { o };
                let le_i32 = |bytes: &[u8], i: usize| match bytes.get(4 * i..4 * i + 4) {
                    Some(&[a, b, c, d]) => i32::from_le_bytes([a, b, c, d]),
                    _ => 0,
                };
                let (bias, mantissa) = (le_i32(bias, o), le_i32(mantissas, k));
                let shift = shifts.get(k).map_or(0, |&s| i32::from(s as i8));
                ChannelRequant { bias, multiplier: Multiplier { mantissa, shift } }
            }
        }
    }

    /// Every channel's bias and multiplier, in order.
    pub fn iter(&self) -> impl Iterator<Item = ChannelRequant> + '_ {
        (0..self.len()).map(|o| self.channel(o))
    }
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

    /// The clamp bounds less the zero point, `(min − zp, max − zp)`: for int8 `zp`, `min`
    /// and `max` (the loader's), clamp(q, min − zp, max − zp) + zp equals `requantize`'s
    /// clamp(q + zp saturating, min, max) for every i32 q, with no overflow. One clamp and
    /// an add where the vector kernels did two clamps and an add.
    #[inline]
    pub fn bounds_before_zero_point(self) -> (i32, i32) {
        (self.min - self.zero_point, self.max - self.zero_point)
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

    /// The one-add rounding equals gemmlowp's steps on the largest, smallest and random
    /// accumulators of random channels where `rounds_in_one_add` says it does, and the
    /// condition refuses what it must (a mantissa of 2^30, no right shift, a bias that
    /// would overflow the add).
    #[test]
    fn one_add_rounding_equals_the_reference_where_it_applies() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut taken = 0;
        for case in 0..20_000 {
            let s = 1 + (next() % 31) as i32;
            let mantissa = if case % 50 == 0 { 0 } else { (1 << 30) + 1 + (next() % ((1 << 30) - 1)) as i32 };
            let taps = 1 + (next() % 4096) as usize;
            let limit = i64::from(i32::MAX) - taps as i64 * 127 * 255;
            let bias = (next() % (limit as u64 + 1)) as i64 * if case % 2 == 0 { 1 } else { -1 };
            let channel = ChannelRequant { bias: bias as i32, multiplier: Multiplier { mantissa, shift: -s } };
            if !channel.rounds_in_one_add(taps) {
                continue;
            }
            taken += 1;
            let largest = (bias.abs() + taps as i64 * 128 * 255).min(i64::from(i32::MAX)) as i32;
            for x in [
                largest,
                -largest,
                0,
                1,
                -1,
                (next() % (largest as u64 + 1)) as i32,
                -((next() % (largest as u64 + 1)) as i32),
            ] {
                assert_eq!(
                    channel.multiplier.apply_one_add(x),
                    channel.multiplier.apply(x),
                    "{channel:?}, taps {taps}, x {x}"
                );
            }
        }
        assert!(taken > 5_000, "only {taken} channels took the one-add rounding");
        let channel =
            |bias: i32, mantissa: i32, shift: i32| ChannelRequant { bias, multiplier: Multiplier { mantissa, shift } };
        assert!(!channel(0, 1 << 30, -8).rounds_in_one_add(9));
        assert!(!channel(0, (1 << 30) + 1, 0).rounds_in_one_add(9));
        // The largest mantissa: h of the largest x is x − 1, and h + 2^7 must stay below 2^31.
        assert!(!channel(i32::MAX - 9 * 128 * 255 - 126, i32::MAX, -8).rounds_in_one_add(9));
        assert!(channel(i32::MAX - 9 * 128 * 255 - 127, i32::MAX, -8).rounds_in_one_add(9));
        // VWW's saturated channels: biases of ±2^30, right shifts up to 31, zero multipliers.
        for (bias, mantissa, shift) in
            [(1 << 30, 1_320_764_593, -27), (1 << 30, 1_278_347_772, -31), (-(1 << 30), 0, 0)]
        {
            let channel = channel(bias, mantissa, shift);
            assert!(channel.rounds_in_one_add(128), "{channel:?}");
            let largest = (1 << 30) + 128 * 128 * 255;
            for x in [largest, -largest, -1, 0, 1] {
                assert_eq!(channel.multiplier.apply_one_add(x), channel.multiplier.apply(x), "{channel:?}, x {x}");
            }
        }
    }

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
    fn the_compact_form_reads_as_the_channels_it_stands_for() {
        let m = |real: f64| Multiplier::from_real(real).unwrap();
        let channels = [
            ChannelRequant { bias: -7, multiplier: m(0.25) },
            ChannelRequant { bias: i32::MAX, multiplier: m(3.0) },
            ChannelRequant { bias: i32::MIN, multiplier: m(1e-9) },
        ];
        let bias: alloc::vec::Vec<u8> = channels.iter().flat_map(|c| c.bias.to_le_bytes()).collect();
        let mantissas: alloc::vec::Vec<u8> =
            channels.iter().flat_map(|c| c.multiplier.mantissa.to_le_bytes()).collect();
        let shifts: alloc::vec::Vec<u8> = channels.iter().map(|c| c.multiplier.shift as i8 as u8).collect();
        let compact = Requant::Compact { channels: 3, bias: &bias, mantissas: &mantissas, shifts: &shifts };
        assert_eq!(compact.iter().collect::<alloc::vec::Vec<_>>(), channels);
        assert_eq!(Requant::from(&channels[..]).iter().collect::<alloc::vec::Vec<_>>(), channels);
        // One multiplier for all; no bias tensor: zeros.
        let shared = Requant::Compact { channels: 3, bias: &[], mantissas: &mantissas[..4], shifts: &shifts[..1] };
        assert!(shared.iter().all(|c| c == ChannelRequant { bias: 0, multiplier: m(0.25) }));
        assert_eq!(shared.len(), 3);
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
