//! Exact integer Winograd F(2×2, 3×3): a 3×3 stride-1 convolution's 2×2 output
//! tile from its 4×4 input tile with 16 multiplies per input channel instead of 36.
//!
//! With B, G, A of Lavin & Gray (2015), one tile is Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A.
//! G has entries ½, so the weights are transformed with 2G (integer):
//! U = (2G) g (2G)ᵀ = 4·G g Gᵀ, and the tile comes out as 4·Y.
//!
//! Why every logit stays the reference's:
//! - d = x − zero_point (|d| ≤ 255, padding 0); V = Bᵀ d B sums four ±d: |V| ≤ 1020, an i16.
//! - a row of 2G sums to at most 3 in magnitude, so |U| ≤ 9·128 = 1152, an i16.
//! - Σ_c U·V and the ± sums of Aᵀ M A are i32 ring operations (wrapping), so the
//!   result is 4·Σ w·(x − zp) modulo 2³²; that value itself is below
//!   4·9·C·128·255 < 2³¹ for C ≤ [`CHANNELS_MAX`], so it is exact, and the exact
//!   division by 4 (an arithmetic shift) gives the direct convolution's sum.
//!
//! The weights are transformed once, when a model is prepared, into
//! `[tile tap (16)][block][channel pair][lane][2]`: for each of the 16 tile taps,
//! the layout of the `Wide` microkernels with two channels per dot step, the
//! input channels padded with zeros to whole vectors of [`CHANNEL_STEP`], the
//! blocks to an even count ([`blocks`]).

use super::Conv2dGeometry;
use crate::spec::fixed_point::{requantize, OutputRange, Requant};

/// Most input channels Winograd takes: 4·Σ w·(x − zp) of a 3×3 window stays inside i32
/// (it would up to 1,828; module docs), and a tile's transformed input, 16 × C i16,
/// stays small enough for the kernels' stack buffers.
pub const CHANNELS_MAX: usize = 256;
/// Input channels padded to a multiple of this (one i16 vector of the input transform).
pub const CHANNEL_STEP: usize = 8;
/// Taps of a 4×4 input tile.
pub const TILE_TAPS: usize = 16;

/// Whether Winograd F(2×2, 3×3) computes this convolution exactly: 3×3, stride 1,
/// undilated, ungrouped, at most [`CHANNELS_MAX`] input channels.
pub fn computes(g: &Conv2dGeometry) -> bool {
    g.kernel_h == 3
        && g.kernel_w == 3
        && g.stride == 1
        && g.dilation == 1
        && g.groups == 1
        && (1..=CHANNELS_MAX).contains(&g.input.c)
        && !g.output.is_empty()
}

/// Whether a Winograd kernel takes this layer: it `computes` it, with at least 8
/// input channels. Below 8, the channels padded to 8 leave a tile's 16 taps with
/// as many dot steps as 4 direct outputs need (measured in wasm on ResNet-8's
/// first layer, 3 channels: 61.7 µs Winograd, 63.4 µs direct), for 16/9 the weights.
pub fn suits(g: &Conv2dGeometry) -> bool {
    computes(g) && g.input.c >= CHANNEL_STEP
}

/// Input channels as the transformed weights and input tiles hold them.
pub const fn padded_channels(in_channels: usize) -> usize {
    in_channels.div_ceil(CHANNEL_STEP) * CHANNEL_STEP
}

/// Blocks of `lanes` output channels the transformed weights hold: rounded up to an
/// even count, so that a kernel always takes two blocks a step (the weights of a
/// block past the layer's channels are zero, and its outputs are never stored).
pub const fn blocks(out_channels: usize, lanes: usize) -> usize {
    out_channels.div_ceil(lanes).next_multiple_of(2)
}

/// Elements of the transformed weights of `out_channels` × 3×3×`in_channels`, in blocks of `lanes`.
pub const fn weights_len(out_channels: usize, in_channels: usize, lanes: usize) -> usize {
    TILE_TAPS * blocks(out_channels, lanes) * lanes * padded_channels(in_channels)
}

/// (2G) g (2G)ᵀ of one 3×3 kernel (row-major), row-major 4×4.
fn transform_kernel(g: [i32; 9]) -> [i32; 16] {
    // 2G applied to three values: (2a, a + b + c, a − b + c, 2c).
    let apply = |[a, b, c]: [i32; 3]| [2 * a, a + b + c, a - b + c, 2 * c];
    let rows: [[i32; 4]; 3] = core::array::from_fn(|r| apply([g[3 * r], g[3 * r + 1], g[3 * r + 2]]));
    let mut u = [0; 16];
    for s in 0..4 {
        let column = apply([rows[0][s], rows[1][s], rows[2][s]]);
        for r in 0..4 {
            u[4 * r + s] = column[r];
        }
    }
    u
}

/// Writes the transformed weights of `weights` (O×3×3×C, OHWI, O = `out_channels`)
/// into `out` (`weights_len` elements, in blocks of `lanes` output channels).
/// False, writing nothing, if the lengths disagree.
pub fn transform_weights(
    weights: &[i8],
    out_channels: usize,
    in_channels: usize,
    lanes: usize,
    out: &mut [i16],
) -> bool {
    if lanes == 0
        || weights.len() != out_channels * 9 * in_channels
        || out.len() != weights_len(out_channels, in_channels, lanes)
    {
        return false;
    }
    out.fill(0);
    let (blocks, pairs) = (blocks(out_channels, lanes), padded_channels(in_channels) / 2);
    for o in 0..out_channels {
        for c in 0..in_channels {
            let kernel = core::array::from_fn(|k| i32::from(weights[(o * 9 + k) * in_channels + c]));
            for (tap, u) in transform_kernel(kernel).into_iter().enumerate() {
                let index = (((tap * blocks + o / lanes) * pairs + c / 2) * lanes + o % lanes) * 2 + c % 2;
                out[index] = u as i16; // |u| ≤ 1152
            }
        }
    }
    true
}

/// The transposed matrix (rows become columns).
#[inline(always)]
pub(crate) fn transpose<T: Copy, const R: usize, const C: usize>(m: [[T; C]; R]) -> [[T; R]; C] {
    core::array::from_fn(|c| core::array::from_fn(|r| m[r][c]))
}

/// Bᵀ applied to four values (a row or a column of an input tile).
#[inline(always)]
pub(crate) fn input_step<T: Copy + core::ops::Add<Output = T> + core::ops::Sub<Output = T>>(
    [a, b, c, d]: [T; 4],
) -> [T; 4] {
    [a - c, b + c, c - b, b - d]
}

/// Aᵀ applied to four values: (a + b + c, b − c − d).
#[inline(always)]
pub(crate) fn output_step([a, b, c, d]: [i32; 4]) -> [i32; 2] {
    [a.wrapping_add(b).wrapping_add(c), b.wrapping_sub(c).wrapping_sub(d)]
}

/// The plain form of the algorithm over weights from [`transform_weights`]: what the
/// SIMD kernels compute, written for reading and for checking the transformed
/// weights on every target. Bit-identical to `conv::conv2d_reference`. False,
/// writing nothing, when Winograd does not compute the layer or the lengths disagree.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_plain(
    g: &Conv2dGeometry,
    input: &[i8],
    zero_point: i32,
    transformed: &[i16],
    lanes: usize,
    channels: &Requant<'_>,
    range: OutputRange,
    output: &mut [i8],
) -> bool {
    let (in_c, out_c) = (g.input.c, g.output.c);
    if !computes(g)
        || lanes == 0
        || channels.len() != out_c
        || transformed.len() != weights_len(out_c, in_c, lanes)
        || input.len() < g.input.len()
        || output.len() < g.output.len()
    {
        return false;
    }
    let (blocks, pairs) = (blocks(out_c, lanes), padded_channels(in_c) / 2);
    // x − zp at input row y, column x of the padded plane (0 outside the input).
    let tap = |y: usize, x: usize, c: usize| -> i32 {
        let (y, x) = (y.wrapping_sub(g.pad_top), x.wrapping_sub(g.pad_left));
        if y < g.input.h && x < g.input.w {
            i32::from(input[(y * g.input.w + x) * in_c + c]) - zero_point
        } else {
            0
        }
    };
    for ty in (0..g.output.h).step_by(2) {
        for tx in (0..g.output.w).step_by(2) {
            for (o, channel) in channels.iter().enumerate() {
                let mut m = [0i32; TILE_TAPS];
                for c in 0..in_c {
                    let d: [[i32; 4]; 4] = core::array::from_fn(|r| core::array::from_fn(|s| tap(ty + r, tx + s, c)));
                    // Bᵀ d B: Bᵀ along each row, then along each column.
                    let v = transpose(transpose(d.map(input_step)).map(input_step));
                    for (r, v) in v.iter().enumerate() {
                        for (s, &v) in v.iter().enumerate() {
                            let t = 4 * r + s;
                            let u = transformed
                                [(((t * blocks + o / lanes) * pairs + c / 2) * lanes + o % lanes) * 2 + c % 2];
                            m[t] = m[t].wrapping_add(i32::from(u) * v);
                        }
                    }
                }
                // Aᵀ M A, the same way: y[i][j], each 4·Σ w·(x − zp) (module docs).
                let m: [[i32; 4]; 4] = core::array::from_fn(|r| core::array::from_fn(|s| m[4 * r + s]));
                let y = transpose(transpose(m.map(output_step)).map(output_step));
                for (i, y) in y.iter().enumerate() {
                    for (j, &four_sum) in y.iter().enumerate() {
                        let (oy, ox) = (ty + i, tx + j);
                        if oy < g.output.h && ox < g.output.w {
                            // The exact division by 4.
                            let acc = channel.bias.wrapping_add(four_sum >> 2);
                            output[(oy * g.output.w + ox) * out_c + o] = requantize(acc, channel.multiplier, range);
                        }
                    }
                }
            }
        }
    }
    true
}
