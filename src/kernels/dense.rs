//! int8 fully connected layer: weights O×I, input I, output O.

use crate::quant::fixed_point::{requantize, ChannelRequant, OutputRange};

/// The reference: out[o] = requantize(bias[o] + Σ w[o,i]·(x[i] − input_zero_point)).
pub fn dense_reference(
    input: &[i8],
    input_zero_point: i32,
    weights: &[i8],
    channels: &[ChannelRequant],
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

/// The fastest variant this build and CPU offer; bit-identical to the reference.
#[inline]
pub fn dense(
    input: &[i8],
    input_zero_point: i32,
    weights: &[i8],
    channels: &[ChannelRequant],
    output_range: OutputRange,
    output: &mut [i8],
) {
    dense_reference(input, input_zero_point, weights, channels, output_range, output)
}
