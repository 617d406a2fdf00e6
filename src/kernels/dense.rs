//! int8 fully connected layer: weights O×I, input I, output O.

use super::dot;
#[cfg(not(arm_dsp))]
use super::dot::PATCH_MAX;
use super::Int8Layer;
use crate::spec::fixed_point::{requantize, OutputRange, Requant};

/// The reference: `out[o] = requantize(bias[o] + Σ w[o,i]·(x[i] − input_zero_point))`.
pub fn dense_reference(
    input: &[i8],
    input_zero_point: i32,
    weights: &[i8],
    channels: &Requant<'_>,
    output_range: OutputRange,
    output: &mut [i8],
) {
    let in_len = input.len();
    for ((o, channel), out) in channels.iter().enumerate().zip(output.iter_mut()) {
        let w = &weights[o * in_len..][..in_len];
        let mut acc = channel.bias;
        for (&xv, &wv) in input.iter().zip(w) {
            acc += i32::from(wv) * (i32::from(xv) - input_zero_point);
        }
        *out = requantize(acc, channel.multiplier, output_range);
    }
}

/// The fast variant: `dot::patch_rows` over the input as one patch. Bit-identical to the reference.
// Never inlined: its patch buffer (PATCH_MAX i16s) stays out of the engine's frame,
// which would otherwise hold it beside the conv kernel's own (a microcontroller's stack).
#[inline(never)]
pub fn dense(
    input: &[i8],
    input_zero_point: i32,
    weights: &[i8],
    channels: &Requant<'_>,
    output_range: OutputRange,
    output: &mut [i8],
) {
    // With the DSP extension the input is the patch as it is: no buffer.
    #[cfg(arm_dsp)]
    dot::patch_rows(input, input_zero_point, weights, channels, output_range, output);
    #[cfg(not(arm_dsp))]
    {
        if input.len() > PATCH_MAX {
            return dense_reference(input, input_zero_point, weights, channels, output_range, output);
        }
        let mut patch_buffer = [0i16; PATCH_MAX];
        let patch = &mut patch_buffer[..input.len()];
        for (p, &x) in patch.iter_mut().zip(input) {
            *p = dot::tap(x, input_zero_point);
        }
        dot::patch_rows(patch, input_zero_point, weights, channels, output_range, output);
    }
}

/// What the engine runs: the microkernel the layer is packed for (a lookup in
/// `kernels::isa`), else `dense`. Bit-identical to the reference.
pub fn dense_layer(
    input: &[i8],
    input_zero_point: i32,
    layer: &Int8Layer<'_>,
    output_range: OutputRange,
    output: &mut [i8],
) {
    // The microkernel the weights are packed for, looked up in this target's table.
    let entry = layer.packed.kernel().and_then(|kernel| kernel.entry_points()).map(|entries| entries.1);
    if entry.is_some_and(|run| run(input, input_zero_point, layer.packed, &layer.channels, output_range, output)) {
        return;
    }
    dense(input, input_zero_point, layer.weights, &layer.channels, output_range, output);
}
