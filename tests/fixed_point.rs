//! The requantisation arithmetic against independent models written with
//! i128 integers and f64 (property tests): random multipliers and accumulators,
//! shift extremes, saturation, exact half-way cases.

use proptest::prelude::*;
use tinycnn::internals::spec::fixed_point::{
    requantize, rounding_divide, rounding_divide_by_pot, saturating_rounding_doubling_high_mul, Multiplier, OutputRange,
};

/// floor(n / d) for d > 0.
fn floor_div(n: i128, d: i128) -> i128 {
    n.div_euclid(d)
}

/// gemmlowp's high multiply: a·b/2^31 to nearest, ties toward +∞, saturating MIN·MIN.
fn model_high_mul(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let ab = a as i128 * b as i128;
    floor_div(2 * ab + (1i128 << 31), 1i128 << 32) as i32
}

/// x / 2^e, ties away from zero.
fn model_divide_pot(x: i32, e: u32) -> i32 {
    let (x, n) = (x as i128, 1i128 << e);
    let magnitude = floor_div(2 * x.abs() + n, 2 * n);
    (x.signum() * magnitude) as i32
}

/// The whole requantisation in i128: saturating left shift, high multiply, rounding shift.
fn model_apply(m: Multiplier, x: i32) -> i32 {
    let left = m.shift.max(0) as u32;
    let shifted = ((x as i128) << left).clamp(i32::MIN as i128, i32::MAX as i128) as i32;
    model_divide_pot(model_high_mul(shifted, m.mantissa), (-m.shift).max(0) as u32)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn high_mul_matches_i128_model(a in any::<i32>(), b in any::<i32>()) {
        prop_assert_eq!(saturating_rounding_doubling_high_mul(a, b), model_high_mul(a, b));
    }

    #[test]
    fn divide_by_pot_matches_model(x in any::<i32>(), e in 0u32..=31) {
        prop_assert_eq!(rounding_divide_by_pot(x, e), model_divide_pot(x, e));
    }

    #[test]
    fn multiplier_represents_the_real_within_2_pow_minus_31(log2 in -31.0f64..29.9) {
        let real = 2f64.powf(log2);
        let m = Multiplier::from_real(real).unwrap();
        prop_assert!((1 << 30..=i32::MAX).contains(&m.mantissa), "mantissa {} not normalised", m.mantissa);
        prop_assert!(((m.to_real() - real) / real).abs() <= 2f64.powi(-31));
    }

    #[test]
    fn apply_matches_model_and_real_product(log2 in -31.0f64..8.0, x in any::<i32>()) {
        let m = Multiplier::from_real(2f64.powf(log2)).unwrap();
        prop_assert_eq!(m.apply(x), model_apply(m, x));
        // Two roundings: within one of the exact product, unless saturated.
        let exact = x as f64 * m.to_real();
        if exact.abs() < 2f64.powi(30) {
            prop_assert!((m.apply(x) as f64 - exact).abs() <= 1.0 + 1e-9, "{} vs {exact}", m.apply(x));
        }
    }

    #[test]
    fn requantize_is_clamped_and_relu_floors_at_zero_point(
        acc in any::<i32>(), log2 in -20.0f64..0.0, zp in -128i32..=127, relu in any::<bool>()
    ) {
        let m = Multiplier::from_real(2f64.powf(log2)).unwrap();
        let range = OutputRange::new(zp, relu);
        let q = i32::from(requantize(acc, m, range));
        let unclamped = model_apply(m, acc) as i64 + zp as i64;
        let lo = if relu { zp } else { -128 };
        prop_assert_eq!(q as i64, unclamped.clamp(lo as i64, 127));
    }

    #[test]
    fn average_rounds_half_away_from_zero(x in -1_000_000i32..1_000_000, n in 1i32..10_000) {
        let exact = x as f64 / n as f64;
        let want = exact.abs().add_half_floor() * exact.signum();
        prop_assert_eq!(rounding_divide(x, n) as f64, if want == 0.0 { 0.0 } else { want });
    }
}

trait AddHalfFloor {
    fn add_half_floor(self) -> f64;
}

impl AddHalfFloor for f64 {
    fn add_half_floor(self) -> f64 {
        (self + 0.5).floor()
    }
}

#[test]
fn exact_half_way_cases() {
    // RDivPOT: ties away from zero.
    for (x, e, want) in [(1, 1, 1), (-1, 1, -1), (3, 1, 2), (-3, 1, -2), (2, 2, 1), (-2, 2, -1), (6, 2, 2), (-6, 2, -2)]
    {
        assert_eq!(rounding_divide_by_pot(x, e), want, "{x} / 2^{e}");
    }
    // High multiply: ties toward +∞ (0.5 → 1, −0.5 → 0, −1.5 → −1).
    assert_eq!(saturating_rounding_doubling_high_mul(1, 1 << 30), 1);
    assert_eq!(saturating_rounding_doubling_high_mul(-1, 1 << 30), 0);
    assert_eq!(saturating_rounding_doubling_high_mul(-3, 1 << 30), -1);
}

#[test]
fn shift_extremes_and_saturation() {
    assert_eq!(saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN), i32::MAX);
    assert_eq!(saturating_rounding_doubling_high_mul(i32::MAX, i32::MAX), i32::MAX - 1);
    assert_eq!(rounding_divide_by_pot(i32::MIN, 31), -1);
    assert_eq!(rounding_divide_by_pot(i32::MAX, 31), 1);
    assert_eq!(rounding_divide_by_pot(i32::MAX, 0), i32::MAX);
    // Smallest representable multiplier: shift −31.
    let tiny = Multiplier::from_real(2f64.powi(-32) * 1.5).unwrap();
    assert_eq!(tiny.shift, -31);
    assert_eq!(tiny.apply(i32::MAX), model_apply(tiny, i32::MAX));
    // Largest: a left shift of 30 saturates big accumulators instead of wrapping.
    let huge = Multiplier::from_real(2f64.powi(29)).unwrap();
    assert_eq!(huge.shift, 30);
    assert_eq!(huge.apply(1 << 20), model_apply(huge, 1 << 20));
    assert!(huge.apply(1 << 20) > 0);
    assert!(huge.apply(-(1 << 20)) < 0);
    assert!(Multiplier::from_real(2f64.powi(31)).is_err());
}
