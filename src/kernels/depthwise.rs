//! What the SIMD depthwise kernels share (`kernels::vnni`, `kernels::neon`,
//! `kernels::wasm_simd`): which layers they take, and a block of channels'
//! requantisation constants in the form the microkernels' requantisation reads.

use super::packed::PackedWeights;
use super::Conv2dGeometry;
use crate::spec::fixed_point::{ChannelRequant, Requant};

/// Channels a kernel handles per block: their weights and constants sit on the stack.
pub(crate) const BLOCK: usize = 64;
/// Largest window (7×7).
pub(crate) const TAPS_MAX: usize = 49;

/// Whether a SIMD depthwise kernel with vectors of `lanes` channels takes this layer:
/// one output channel per input channel, whole vectors of channels, a window of at
/// most 7×7, an int8 zero point, every multiplier below 1 (the vector
/// requantisation), and buffers of the layer's sizes.
#[allow(clippy::too_many_arguments)]
pub(crate) fn takes(
    g: &Conv2dGeometry,
    input: &[i8],
    zp: i32,
    weights: &[i8],
    channels: &Requant<'_>,
    output: &[i8],
    lanes: usize,
) -> bool {
    let (c, taps) = (g.input.c, g.kernel_h * g.kernel_w);
    g.groups == c
        && g.output.c == c
        && c.is_multiple_of(lanes)
        && taps <= TAPS_MAX
        && (-128..=127).contains(&zp)
        && channels.len() == c
        && weights.len() == c * taps
        && input.len() >= g.input.len()
        && output.len() >= g.output.len()
        && channels.iter().all(|ch| ch.multiplier.is_right_shift_only())
}

/// The requantisation constants of channels `start..start + len`, decoded once per block.
pub(crate) struct BlockConstants {
    len: usize,
    /// Every channel `ChannelRequant::rounds_in_one_add` (for any window up to `TAPS_MAX`).
    one_add_rounding: bool,
    bias: [i32; BLOCK],
    mantissa: [i32; BLOCK],
    right_shift: [i32; BLOCK],
}

impl BlockConstants {
    /// Channels `start..start + len` (len ≤ `BLOCK`) of `channels`, each bias as
    /// `bias(j, channel)` makes it (a kernel's zero-point correction, if any).
    pub(crate) fn new(
        channels: &Requant<'_>,
        start: usize,
        len: usize,
        bias: impl Fn(usize, &ChannelRequant) -> i32,
    ) -> BlockConstants {
        Self::mapped(channels, len, |j| start + j, bias)
    }

    /// `len` lanes (≤ `BLOCK`), lane j holding channel `channel(j)` of `channels`.
    pub(crate) fn mapped(
        channels: &Requant<'_>,
        len: usize,
        channel: impl Fn(usize) -> usize,
        bias: impl Fn(usize, &ChannelRequant) -> i32,
    ) -> BlockConstants {
        let mut constants = BlockConstants {
            len: len.min(BLOCK),
            one_add_rounding: true,
            bias: [0; BLOCK],
            mantissa: [0; BLOCK],
            right_shift: [0; BLOCK],
        };
        for j in 0..constants.len {
            let channel = channels.channel(channel(j));
            constants.one_add_rounding &= channel.rounds_in_one_add(TAPS_MAX);
            constants.bias[j] = bias(j, &channel);
            constants.mantissa[j] = channel.multiplier.mantissa;
            // −shift, or 1 for a zero multiplier (any shift of 0 is 0; the one-add rounding needs ≥ 1).
            constants.right_shift[j] = channel.multiplier.one_add_right_shift();
        }
        constants
    }

    /// As packed constants, which the microkernels' block requantisation reads
    /// (every multiplier below 1: `takes` checked).
    pub(crate) fn packed(&self) -> PackedWeights<'_> {
        PackedWeights {
            out_channels: self.len,
            bias: &self.bias[..self.len],
            mantissa: &self.mantissa[..self.len],
            right_shift: &self.right_shift[..self.len],
            vector_requant: true,
            one_add_rounding: self.one_add_rounding,
            ..PackedWeights::default()
        }
    }
}
