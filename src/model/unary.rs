//! Element-wise unary ops (relu, clamp, …), each described once: its name and
//! attributes in the graph JSON, its f32 meaning and its int8 meaning.
//!
//! An int8 unary op maps each of the 256 input values to one output value, so
//! every backend but the reference runs it as a 256-entry table built at
//! prepare from [`Unary::int8`]: the CPU's lookup kernel, the WGSL `lookup`
//! entry point. A new op added here therefore runs on every backend, and is
//! checked against the reference (which calls `int8` per element), with no
//! engine, kernel or shader edited. Run time stays integer-only whatever
//! arithmetic `int8` uses: it runs once per table entry, at load.

use super::graph::QuantParams;
#[cfg(feature = "alloc")]
use super::graph::RawNode;
use super::json::Decoded;
use super::parse::NodeJson;
use super::reals::Reals;
use crate::error::{text, Error, Real, Result};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unary {
    /// max(x, 0).
    Relu,
    /// min(max(x, min), max): ReLU6 is clamp(0, 6), Hardtanh clamp(−1, 1).
    Clamp { min: f32, max: f32 },
}

impl Unary {
    /// One instance of every op, for the tests' random networks.
    pub const EXAMPLES: &'static [Unary] = &[Unary::Relu, Unary::Clamp { min: -0.5, max: 1.5 }];

    /// The op's name in the graph JSON.
    pub fn name(self) -> &'static str {
        match self {
            Unary::Relu => "relu",
            Unary::Clamp { .. } => "clamp",
        }
    }

    /// The JSON attributes of the op named `op`; None if no unary op has that name.
    pub fn attributes(op: &str) -> Option<&'static [&'static str]> {
        match op {
            "relu" => Some(&[]),
            "clamp" => Some(&["min", "max"]),
            _ => None,
        }
    }

    /// Reads the op named `op` (one [`Unary::attributes`] knows) from its node's JSON attributes.
    pub fn parse(op: &str, raw: &NodeJson<'_>, reals: &Reals<'_>) -> Result<Unary> {
        let bad = |attribute: &'static str, reason: &str| Error::BadAttribute {
            node: text!("{}", Decoded(raw.name)),
            attribute,
            reason: text!("{reason}"),
        };
        match op {
            "relu" => Ok(Unary::Relu),
            "clamp" => {
                let bound = |name, value: Option<f64>| -> Result<f32> {
                    let v = value.ok_or_else(|| bad(name, "is required"))? as f32;
                    if !v.is_finite() {
                        return Err(bad(name, "must be a finite number"));
                    }
                    Ok(v)
                };
                let (min, max) = (bound("min", reals.get(raw.min)?)?, bound("max", reals.get(raw.max)?)?);
                if min >= max {
                    return Err(Error::BadAttribute {
                        node: text!("{}", Decoded(raw.name)),
                        attribute: "max",
                        reason: text!("is {}, must be above min ({})", Real::from(max), Real::from(min)),
                    });
                }
                Ok(Unary::Clamp { min, max })
            }
            other => Err(Error::UnknownOp { node: text!("{}", Decoded(raw.name)), op: text!("{other}") }),
        }
    }

    /// Writes the op's attributes into its JSON node.
    #[cfg(feature = "alloc")]
    pub fn write_attributes(self, raw: &mut RawNode) {
        match self {
            Unary::Relu => {}
            Unary::Clamp { min, max } => {
                raw.min = Some(f64::from(min));
                raw.max = Some(f64::from(max));
            }
        }
    }

    /// Whether the int8 output shares the input's scale and zero point (the
    /// file must say so; the quantiser gives it the input's).
    pub fn keeps_quantization(self) -> bool {
        match self {
            Unary::Relu | Unary::Clamp { .. } => true,
        }
    }

    /// The f32 meaning, as PyTorch computes it.
    pub fn float(self, x: f32) -> f32 {
        match self {
            Unary::Relu => x.max(0.0),
            Unary::Clamp { min, max } => x.max(min).min(max), // never panics, unlike clamp
        }
    }

    /// The int8 meaning: input value `q` (quantised by `input`) to the output
    /// value (quantised by `output`). This is the reference every backend matches.
    pub fn int8(self, q: i8, input: QuantParams, output: QuantParams) -> i8 {
        let _ = output; // every op so far keeps the input's quantisation
        match self {
            Unary::Relu => q.max(input.zero_point.clamp(-128, 127) as i8),
            Unary::Clamp { min, max } => q.max(quantize(min, input)).min(quantize(max, input)),
        }
    }

    /// [`Unary::int8`] for every input value: entry `q + 128` holds `int8(q)`.
    pub fn int8_table(self, input: QuantParams, output: QuantParams) -> [i8; 256] {
        let mut table = [0i8; 256];
        for (entry, q) in table.iter_mut().zip(i8::MIN..=i8::MAX) {
            *entry = self.int8(q, input, output);
        }
        table
    }
}

/// The int8 value nearest the real `x` (half away from zero), saturated. In
/// f32, as TFLite's `Quantize` computes a fused activation's bounds.
fn quantize(x: f32, q: QuantParams) -> i8 {
    let steps = libm::roundf(x / q.scale);
    (steps + q.zero_point as f32).clamp(-128.0, 127.0) as i8
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: QuantParams = QuantParams { scale: 0.5, zero_point: -10 };

    #[test]
    fn the_table_holds_the_int8_meaning_of_every_value() {
        for op in Unary::EXAMPLES {
            let table = op.int8_table(Q, Q);
            for q in i8::MIN..=i8::MAX {
                assert_eq!(table[(q as u8 ^ 0x80) as usize], op.int8(q, Q, Q), "{op:?} at {q}");
            }
        }
    }

    #[test]
    fn int8_meanings_follow_the_real_ones() {
        // relu: real 0 is the zero point.
        assert_eq!(Unary::Relu.int8(-128, Q, Q), -10);
        assert_eq!(Unary::Relu.int8(5, Q, Q), 5);
        // clamp(−0.5, 1.5) at scale 0.5, zero point −10: [−11, −7].
        let clamp = Unary::Clamp { min: -0.5, max: 1.5 };
        assert_eq!([clamp.int8(-128, Q, Q), clamp.int8(-9, Q, Q), clamp.int8(127, Q, Q)], [-11, -9, -7]);
        // Bounds outside the int8 range saturate rather than wrap.
        let wide = Unary::Clamp { min: -1e6, max: 1e6 };
        assert_eq!([wide.int8(-128, Q, Q), wide.int8(127, Q, Q)], [-128, 127]);
    }
}
