//! int8 element-wise ops: add, concat, and the unary ops' lookup.

use crate::spec::fixed_point::{Multiplier, OutputRange};

/// Fixed-point parameters of an `add`, as TFLite's reference ADD computes them:
/// inputs are shifted left by `LEFT_SHIFT`, each scaled by s_i/(2·max s), summed,
/// and the sum scaled by 2·max s/(2^LEFT_SHIFT·s_out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddInput {
    pub zero_point: i32,
    pub multiplier: Multiplier,
}

pub const ADD_LEFT_SHIFT: u32 = 20;

/// `out[i] = clamp(zp_out + M_out·Σ_k M_k·((x_k[i] − zp_k) << 20))`.
pub fn add_reference(
    inputs: &[&[i8]],
    params: &[AddInput],
    output_multiplier: Multiplier,
    output_range: OutputRange,
    output: &mut [i8],
) {
    for (i, out) in output.iter_mut().enumerate() {
        let mut sum = 0i32;
        for (x, p) in inputs.iter().zip(params) {
            let shifted = (i32::from(x[i]) - p.zero_point) << ADD_LEFT_SHIFT;
            sum = sum.saturating_add(p.multiplier.apply(shifted));
        }
        let value = output_multiplier.apply(sum).saturating_add(output_range.zero_point);
        *out = value.clamp(output_range.min, output_range.max) as i8;
    }
}

/// One input's term of the sum, `M_k·((x − zp_k) << 20)`, for every int8 x (indexed by
/// `x as u8`), into `table`: the per-input half of `add_reference`'s work, done once at load time.
pub fn add_terms(input: &AddInput, table: &mut [i32; 256]) {
    for (byte, term) in table.iter_mut().enumerate() {
        let x = i32::from(byte as u8 as i8);
        *term = input.multiplier.apply((x - input.zero_point) << ADD_LEFT_SHIFT);
    }
}

/// Most inputs the vector adds sum with plain (wrapping) adds: every term is below
/// 2^28 in magnitude (|x − zp| ≤ 255, shifted left by 20, times a multiplier < 1),
/// so four of them sum below 2^30 and the reference's saturating sum never saturates.
pub const VECTOR_ADD_INPUTS: usize = 4;

/// The fast variant. With AVX-512 or AVX2, multipliers < 1 and at most
/// [`VECTOR_ADD_INPUTS`] inputs, every term and the output are requantised in 16- or
/// 8-lane vectors. Otherwise
/// the input terms are table lookups (`add_terms`), summed a chunk of elements at a
/// time, and the chunk requantised in vectors where the target has them (simd128:
/// the lookups measured faster than computing the terms in 4-lane vectors).
/// Bit-identical to the reference.
pub fn add(
    inputs: &[&[i8]],
    params: &[AddInput],
    terms: &[[i32; 256]],
    output_multiplier: Multiplier,
    output_range: OutputRange,
    output: &mut [i8],
) {
    let vector = inputs.len() <= VECTOR_ADD_INPUTS
        && inputs.len() == params.len()
        && output_multiplier.is_right_shift_only()
        && params.iter().all(|p| p.multiplier.is_right_shift_only())
        && inputs.iter().all(|x| x.len() >= output.len());
    #[cfg(target_arch = "x86_64")]
    if vector && super::x86::add(inputs, params, output_multiplier, output_range, output) {
        return;
    }
    let _ = params;
    const CHUNK: usize = 64;
    let mut sums = [0i32; CHUNK];
    #[cfg(target_arch = "x86_64")]
    let avx2 = super::x86::Avx2Requant::new(output_multiplier);
    for (start, out) in (0..output.len()).step_by(CHUNK).zip(output.chunks_mut(CHUNK)) {
        let sums = &mut sums[..out.len()];
        sums.fill(0);
        for (x, table) in inputs.iter().zip(terms) {
            if vector {
                // Cannot saturate (VECTOR_ADD_INPUTS): the plain add is the saturating one.
                for (sum, &v) in sums.iter_mut().zip(&x[start..]) {
                    *sum = sum.wrapping_add(table[usize::from(v as u8)]);
                }
            } else {
                for (sum, &v) in sums.iter_mut().zip(&x[start..]) {
                    *sum = sum.saturating_add(table[usize::from(v as u8)]);
                }
            }
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(avx2) = avx2 {
            avx2.apply(sums, output_range, out);
            continue;
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        if output_multiplier.is_right_shift_only() {
            super::wasm_simd::requantize_sums(sums, output_multiplier, output_range, out);
            continue;
        }
        for (o, &sum) in out.iter_mut().zip(sums.iter()) {
            let value = output_multiplier.apply(sum).saturating_add(output_range.zero_point);
            *o = value.clamp(output_range.min, output_range.max) as i8;
        }
    }
}

/// How one concat input maps onto the output's quantisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConcatInput {
    pub channels: usize,
    pub zero_point: i32,
    /// None when the input already has the output's scale and zero point (a copy).
    pub rescale: Option<Multiplier>,
}

/// Channel concatenation of H×W×C_k inputs into H×W×ΣC_k.
pub fn concat_reference(inputs: &[&[i8]], params: &[ConcatInput], output_zero_point: i32, output: &mut [i8]) {
    let out_c: usize = params.iter().map(|p| p.channels).sum();
    let pixels = output.len() / out_c.max(1);
    for px in 0..pixels {
        let mut offset = px * out_c;
        for (x, p) in inputs.iter().zip(params) {
            let src = &x[px * p.channels..][..p.channels];
            let dst = &mut output[offset..][..p.channels];
            match p.rescale {
                None => dst.copy_from_slice(src),
                Some(m) => {
                    for (d, &s) in dst.iter_mut().zip(src) {
                        let v = m.apply(i32::from(s) - p.zero_point).saturating_add(output_zero_point);
                        *d = v.clamp(-128, 127) as i8;
                    }
                }
            }
            offset += p.channels;
        }
    }
}

/// An element-wise unary op, value by value: the reference for [`lookup`].
pub fn map_reference(input: &[i8], op: impl Fn(i8) -> i8, output: &mut [i8]) {
    for (o, &x) in output.iter_mut().zip(input) {
        *o = op(x);
    }
}

/// [`map_reference`] in the input's own bytes.
pub fn map_in_place_reference(values: &mut [i8], op: impl Fn(i8) -> i8) {
    for x in values {
        *x = op(*x);
    }
}

/// An element-wise unary op as its 256-entry table (entry `x + 128` is the output for `x`).
pub fn lookup(input: &[i8], table: &[i8; 256], output: &mut [i8]) {
    for (o, &x) in output.iter_mut().zip(input) {
        *o = table[usize::from(x as u8 ^ 0x80)];
    }
}

/// [`lookup`] in the input's own bytes.
pub fn lookup_in_place(values: &mut [i8], table: &[i8; 256]) {
    for x in values {
        *x = table[usize::from(*x as u8 ^ 0x80)];
    }
}
