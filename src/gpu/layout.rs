//! Host-side preparation for the WGSL kernels: the GPU layout of every
//! activation, packed weights, per-channel constants, arena plans and the
//! parameter block of every dispatch. Pure Rust, no GPU needed.
//!
//! GPU layout of a C×H×W value: H×W×C4 int8 (C4 = C rounded up to a multiple
//! of 4), 4 bytes per u32 word little-endian, so every pixel starts on a word
//! and a word holds 4 channels. `flatten` drops the padding again (its output
//! is the H·W·C vector the dense weights expect).

use std::vec::Vec;

use crate::error::{Error, Result};
use crate::kernels::softmax::SoftmaxParams;
use crate::kernels::Shape;
use crate::model::graph::{Dtype, InputKind, Op};
use crate::model::plan::{self, Lifetime};
use crate::model::{Network, NodeParams};
use crate::spec::fixed_point::{ChannelRequant, OutputRange};

/// i32s in one dispatch's parameter block (the WGSL `Node` struct, 512 bytes).
pub(crate) const PARAM_INTS: usize = 128;
/// Output pixels per invocation of the convolution on wide rows (≤ the shader's MAX_PIX).
const CONV_PIXELS: u32 = 4;
/// Output channel words per invocation of the convolution when they divide the output's (≤ MAX_WORDS).
const CONV_WORDS: u32 = 2;
/// Bytes between parameter blocks (a multiple of every adapter's uniform offset alignment).
pub(crate) const PARAM_STRIDE: u64 = 512;

/// One WGSL entry point, with its pipeline constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kernel {
    /// conv2d and dense: `pixels` output pixels of a row × `words` output
    /// channel words (4·words channels) per invocation.
    Conv {
        pixels: u32,
        words: u32,
    },
    /// conv2d with groups > 1 (depthwise included): one output word per invocation.
    GroupedConv,
    MaxPool,
    AvgPool,
    GlobalAvgPool,
    /// Element-wise unary ops: a 256-entry int8 table in the weights buffer.
    Lookup,
    Copy,
    Flatten,
    Add,
    Concat,
    /// TFLite's integer softmax: one pixel's channels per invocation.
    Softmax,
    /// Test hook: the fixed-point primitives on raw triples.
    FixedPointCheck,
}

impl Kernel {
    pub(crate) fn entry_point(self) -> &'static str {
        match self {
            Kernel::Conv { .. } => "conv",
            Kernel::GroupedConv => "grouped_conv",
            Kernel::MaxPool => "maxpool",
            Kernel::AvgPool => "avgpool",
            Kernel::GlobalAvgPool => "global_avgpool",
            Kernel::Lookup => "lookup",
            Kernel::Copy => "copy",
            Kernel::Flatten => "flatten",
            Kernel::Add => "add",
            Kernel::Concat => "concat",
            Kernel::Softmax => "softmax",
            Kernel::FixedPointCheck => "fixed_point_check",
        }
    }

    /// Pipeline-overridable constants of the entry point.
    pub(crate) fn constants(self) -> Vec<(&'static str, f64)> {
        match self {
            Kernel::Conv { pixels, words } => std::vec![("PIX", f64::from(pixels)), ("WORDS", f64::from(words))],
            _ => Vec::new(),
        }
    }

    /// The convolution kernel for an output of `shape`: CONV_PIXELS pixels per
    /// invocation on rows that wide, two channel words when the output has an
    /// even number of them. (Measured on lavapipe, DeepConvNet: 4 × 2 runs
    /// 1.7× faster than 1 × 1; more of either spills registers.)
    fn conv_for(shape: Shape) -> Kernel {
        let pixels = if shape.w >= CONV_PIXELS as usize { CONV_PIXELS } else { 1 };
        let words = if shape.c.div_ceil(4).is_multiple_of(CONV_WORDS as usize) { CONV_WORDS } else { 1 };
        Kernel::Conv { pixels, words }
    }
}

/// Where a C×H×W value lives on the GPU (per image).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ValueLayout {
    pub shape: Shape,
    /// Words per pixel: ⌈C/4⌉.
    pub cw: usize,
    /// Words per image: H·W·⌈C/4⌉.
    pub words: usize,
}

impl ValueLayout {
    pub(crate) fn new(shape: Shape) -> ValueLayout {
        let cw = shape.c.div_ceil(4);
        ValueLayout { shape, cw, words: shape.h * shape.w * cw }
    }

    /// Padded channels C4.
    pub(crate) fn c4(&self) -> usize {
        self.cw * 4
    }
}

/// Word offsets of every value inside one image's slice of the arena.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArenaPlan {
    pub offsets: Vec<usize>,
    /// Words per image.
    pub words: usize,
}

/// One dispatch: a node's kernel and its parameters (offsets filled per plan).
#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub kernel: Kernel,
    /// The values read (in order) and the value written.
    pub inputs: Vec<usize>,
    pub output: usize,
    /// Invocations per image (x/y of the dispatch grid).
    pub invocations: usize,
    /// Layers of the dispatch grid (z): channel-word groups of a convolution, else 1.
    pub layers: u32,
    params: [i32; PARAM_INTS],
}

/// Everything the engine uploads once per model.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub values: Vec<ValueLayout>,
    /// Values the engines compute (a softmax output is not).
    pub computed: Vec<bool>,
    pub steps: Vec<Step>,
    pub weights: Vec<u32>,
    /// Per output channel: bias − in_zp·Σw, mantissa, shift, 0.
    pub channels: Vec<[i32; 4]>,
    /// 0: buffers reused as the CPU planner does; 1: every value kept (observation).
    pub plans: [ArenaPlan; 2],
    pub logits: usize,
    pub logits_scale: f32,
    pub logits_zero_point: i32,
    /// The int8 output (`Graph::output`: the logits, or TFLite's integer softmax).
    pub output: usize,
    pub input_kind: InputKind,
}

// Parameter block fields (indices into the i32 block; see kernels.wgsl's `Node`).
const OUT_OFF: usize = 0;
const OUT_WORDS: usize = 1;
const IN_OFF: usize = 2;
const IN_WORDS: usize = 3;
const IN_SHAPE: usize = 4; // h, w, cw, c
const OUT_SHAPE: usize = 8; // h, w, cw, c
const WINDOW: usize = 12; // kh, kw, stride, padding
const QUANT: usize = 16; // in_zp, out_zp, out_min, out_max
const WEIGHT_OFF: usize = 20;
const CHANNEL_OFF: usize = 21;
const INPUT_COUNT: usize = 22;
const DIVISOR: usize = 23;
const OUT_MULTIPLIER: usize = 24; // mantissa, shift
const CONV_DILATION: usize = 24; // conv, grouped conv (add: OUT_MULTIPLIER)
const CONV_PAD_LEFT: usize = 25; // conv, grouped conv (WINDOW + 3: the top)
const SOFTMAX: usize = 24; // softmax: input multiplier, left shift, diff_min
const GROUP_CHANNELS: usize = 26; // grouped conv: input, output channels per group
const CONV_GRID: usize = 28; // invocations per image and word group, pixel blocks per row
const INS: usize = 32; // 8 × (off, words, cw, channels)
const INQ: usize = 64; // 8 × (zero_point, mantissa, shift, rescale)
const INX: usize = 96; // 8 × (first output channel, 0, 0, 0)

impl Step {
    /// The parameter block for `plan`.
    pub(crate) fn params(&self, values: &[ValueLayout], plan: &ArenaPlan) -> [i32; PARAM_INTS] {
        let mut p = self.params;
        p[OUT_OFF] = plan.offsets[self.output] as i32;
        p[OUT_WORDS] = values[self.output].words as i32;
        p[IN_OFF] = plan.offsets[self.inputs[0]] as i32;
        p[IN_WORDS] = values[self.inputs[0]].words as i32;
        for (k, &v) in self.inputs.iter().enumerate() {
            p[INS + 4 * k] = plan.offsets[v] as i32;
            p[INS + 4 * k + 1] = values[v].words as i32;
        }
        p
    }
}

fn set_shape(p: &mut [i32; PARAM_INTS], at: usize, layout: &ValueLayout) {
    p[at] = layout.shape.h as i32;
    p[at + 1] = layout.shape.w as i32;
    p[at + 2] = layout.cw as i32;
    p[at + 3] = layout.shape.c as i32;
}

fn set_range(p: &mut [i32; PARAM_INTS], range: OutputRange) {
    p[QUANT + 1] = range.zero_point;
    p[QUANT + 2] = range.min;
    p[QUANT + 3] = range.max;
}

/// Packs OHWI int8 weights (O×K×I, K = kh·kw taps) as O4 rows of K·⌈I/4⌉ words,
/// zero-padded, and the per-channel constants with −in_zp·Σw folded into the bias.
fn pack_weights(
    weights: &[i8],
    channels: &[ChannelRequant],
    taps: usize,
    in_c: usize,
    in_zero_point: i32,
    packed: &mut Vec<u32>,
    constants: &mut Vec<[i32; 4]>,
) -> Result<()> {
    let out_c = channels.len();
    if weights.len() != out_c * taps * in_c {
        return Err(Error::Internal("gpu: weight tensor size disagrees with its shape"));
    }
    let cw = in_c.div_ceil(4);
    for o in 0..out_c.div_ceil(4) * 4 {
        for t in 0..taps {
            for j in 0..cw {
                let mut word = 0u32;
                for k in 0..4 {
                    let c = 4 * j + k;
                    if o < out_c && c < in_c {
                        word |= u32::from(weights[(o * taps + t) * in_c + c] as u8) << (8 * k);
                    }
                }
                packed.push(word);
            }
        }
        constants.push(match channels.get(o) {
            Some(ch) => {
                let sum =
                    weights[o * taps * in_c..][..taps * in_c].iter().fold(0i32, |s, &w| s.wrapping_add(i32::from(w)));
                [ch.bias.wrapping_sub(in_zero_point.wrapping_mul(sum)), ch.multiplier.mantissa, ch.multiplier.shift, 0]
            }
            None => [0; 4],
        });
    }
    Ok(())
}

/// A grouped convolution's OHWI weights as they are, 4 per word, and its
/// per-channel constants with the raw bias (the kernel subtracts the zero point).
fn pack_grouped_weights(
    weights: &[i8],
    channels: &[ChannelRequant],
    packed: &mut Vec<u32>,
    constants: &mut Vec<[i32; 4]>,
) {
    packed.extend(
        weights
            .chunks(4)
            .map(|b| b.iter().enumerate().fold(0u32, |word, (k, &w)| word | u32::from(w as u8) << (8 * k))),
    );
    constants.extend(channels.iter().map(|ch| [ch.bias, ch.multiplier.mantissa, ch.multiplier.shift, 0]));
}

/// Lays out `model` (int8) for the kernels.
pub(crate) fn prepare<B: AsRef<[u8]>>(model: &Network<B>) -> Result<Prepared> {
    if model.dtype() != Dtype::Int8 {
        return Err(Error::WrongDtype { expected: "int8" });
    }
    let graph = model.graph();
    let value_count = graph.nodes.len() + 1;
    let values: Vec<ValueLayout> = (0..value_count).map(|v| ValueLayout::new(model.shape(v))).collect();
    // A softmax is computed only as the int8 output (`Graph::output`); else `predict` applies it in f32.
    let int8_softmax = |v: usize| v == graph.output && graph.output != graph.logits;
    let computed: Vec<bool> = (0..value_count)
        .map(|v| v == 0 || int8_softmax(v) || !matches!(graph.nodes[v - 1].op, Op::Softmax { .. }))
        .collect();
    let zero_point = |v: usize| model.quant(v).map_or(0, |q| q.zero_point);

    let mut steps = Vec::with_capacity(graph.nodes.len());
    let mut weights: Vec<u32> = Vec::new();
    let mut channels: Vec<[i32; 4]> = Vec::new();
    for (i, node) in graph.nodes.iter().enumerate() {
        if !computed[i + 1] {
            continue;
        }
        let out = i + 1;
        let input = node.inputs[0];
        let (in_layout, out_layout) = (values[input], values[out]);
        let (in_zp, out_zp) = (zero_point(input), zero_point(out));
        let mut p = [0i32; PARAM_INTS];
        set_shape(&mut p, IN_SHAPE, &in_layout);
        set_shape(&mut p, OUT_SHAPE, &out_layout);
        p[QUANT] = in_zp;
        p[INPUT_COUNT] = node.inputs.len() as i32;
        let window = |p: &mut [i32; PARAM_INTS]| -> Result<()> {
            let g = model.geometry(i).ok_or(Error::Internal("gpu: window op without geometry"))?;
            p[WINDOW] = g.kernel_h as i32;
            p[WINDOW + 1] = g.kernel_w as i32;
            p[WINDOW + 2] = g.stride as i32;
            p[WINDOW + 3] = g.pad_top as i32; // pools: every side
            p[CONV_PAD_LEFT] = g.pad_left as i32;
            p[DIVISOR] = (g.kernel_h * g.kernel_w) as i32;
            p[CONV_DILATION] = g.dilation as i32;
            Ok(())
        };
        let kernel = match (node.op, &model.params()[i]) {
            (Op::Conv2d { relu, groups, .. }, NodeParams::Int8Conv { weights: range, channels: chans, .. })
                if groups > 1 =>
            {
                window(&mut p)?;
                set_range(&mut p, OutputRange::new(out_zp, relu));
                p[WEIGHT_OFF] = weights.len() as i32;
                p[CHANNEL_OFF] = channels.len() as i32;
                p[GROUP_CHANNELS] = (in_layout.shape.c / groups as usize) as i32;
                p[GROUP_CHANNELS + 1] = (out_layout.shape.c / groups as usize) as i32;
                pack_grouped_weights(model.int8_weights(range), chans, &mut weights, &mut channels);
                Kernel::GroupedConv
            }
            (
                Op::Conv2d { relu, .. },
                NodeParams::Int8Conv { kernel_h, kernel_w, weights: range, channels: chans, .. },
            ) => {
                window(&mut p)?;
                set_range(&mut p, OutputRange::new(out_zp, relu));
                p[WEIGHT_OFF] = weights.len() as i32;
                p[CHANNEL_OFF] = channels.len() as i32;
                let taps = kernel_h * kernel_w;
                pack_weights(
                    model.int8_weights(range),
                    chans,
                    taps,
                    in_layout.shape.c,
                    in_zp,
                    &mut weights,
                    &mut channels,
                )?;
                Kernel::conv_for(out_layout.shape)
            }
            (Op::Dense { relu }, NodeParams::Int8Dense { weights: range, channels: chans, .. }) => {
                p[WINDOW..WINDOW + 4].copy_from_slice(&[1, 1, 1, 0]);
                p[CONV_DILATION] = 1;
                set_range(&mut p, OutputRange::new(out_zp, relu));
                p[WEIGHT_OFF] = weights.len() as i32;
                p[CHANNEL_OFF] = channels.len() as i32;
                pack_weights(
                    model.int8_weights(range),
                    chans,
                    1,
                    in_layout.shape.c,
                    in_zp,
                    &mut weights,
                    &mut channels,
                )?;
                Kernel::conv_for(out_layout.shape)
            }
            (Op::MaxPool2d(_), _) => {
                window(&mut p)?;
                Kernel::MaxPool
            }
            (Op::AvgPool2d(_), _) => {
                window(&mut p)?;
                Kernel::AvgPool
            }
            (Op::GlobalAvgPool, _) => Kernel::GlobalAvgPool,
            (Op::Softmax { beta }, _) => {
                let scale = model.quant(input).ok_or(Error::Internal("gpu: int8 value without quantisation"))?.scale;
                let params = SoftmaxParams::new(scale, beta)?;
                p[SOFTMAX] = params.input_multiplier;
                p[SOFTMAX + 1] = params.input_left_shift;
                p[SOFTMAX + 2] = params.diff_min;
                Kernel::Softmax
            }
            (Op::Unary(op), _) => {
                let quant = |v: usize| model.quant(v).ok_or(Error::Internal("gpu: int8 value without quantisation"));
                let table = op.int8_table(quant(input)?, quant(out)?);
                p[WEIGHT_OFF] = weights.len() as i32;
                weights.extend(
                    table.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]].map(|v| v as u8))),
                );
                Kernel::Lookup
            }
            (Op::Dropout, _) => Kernel::Copy,
            (Op::Flatten, _) => {
                if in_layout.words == out_layout.words
                    && (in_layout.shape.c % 4 == 0 || in_layout.shape.h * in_layout.shape.w == 1)
                {
                    Kernel::Copy
                } else {
                    Kernel::Flatten
                }
            }
            (Op::Add { relu }, NodeParams::Int8Add { inputs, output, .. }) => {
                set_range(&mut p, OutputRange::new(out_zp, relu));
                p[OUT_MULTIPLIER] = output.mantissa;
                p[OUT_MULTIPLIER + 1] = output.shift;
                for (k, a) in inputs.iter().enumerate() {
                    p[INQ + 4 * k..INQ + 4 * k + 3].copy_from_slice(&[
                        a.zero_point,
                        a.multiplier.mantissa,
                        a.multiplier.shift,
                    ]);
                }
                Kernel::Add
            }
            (Op::Concat, NodeParams::Int8Concat { inputs }) => {
                set_range(&mut p, OutputRange::new(out_zp, false));
                let mut first = 0;
                for (k, c) in inputs.iter().enumerate() {
                    let v = node.inputs[k];
                    p[INS + 4 * k + 2] = values[v].cw as i32;
                    p[INS + 4 * k + 3] = c.channels as i32;
                    let m = c.rescale.unwrap_or_default();
                    p[INQ + 4 * k..INQ + 4 * k + 4].copy_from_slice(&[
                        c.zero_point,
                        m.mantissa,
                        m.shift,
                        i32::from(c.rescale.is_some()),
                    ]);
                    p[INX + 4 * k] = first;
                    first += c.channels as i32;
                }
                Kernel::Concat
            }
            _ => return Err(Error::Internal("gpu: int8 node without int8 parameters")),
        };
        let (invocations, layers) = match kernel {
            Kernel::Conv { pixels, words } => {
                let blocks = out_layout.shape.w.div_ceil(pixels as usize);
                p[CONV_GRID + 1] = blocks as i32;
                (out_layout.shape.h * blocks, (out_layout.cw as u32) / words)
            }
            Kernel::Softmax => (out_layout.shape.h * out_layout.shape.w, 1),
            _ => (out_layout.words, 1),
        };
        p[CONV_GRID] = invocations as i32;
        steps.push(Step { kernel, invocations, layers, inputs: node.inputs.clone(), output: out, params: p });
    }

    // Arena plans, in bytes for the shared planner (offsets stay multiples of 4).
    let sizes: Vec<usize> = values.iter().zip(&computed).map(|(l, &c)| if c { l.words * 4 } else { 0 }).collect();
    let last_step = value_count;
    let lifetimes = plan::lifetimes(graph);
    let keep: Vec<Lifetime> = (0..value_count).map(|v| Lifetime { first: v, last: last_step }).collect();
    let to_words = |p: plan::Plan| ArenaPlan {
        offsets: p.buffers.iter().map(|r| r.start / 4).collect(),
        words: p.arena_bytes.div_ceil(4).max(1),
    };
    let plans = [to_words(plan::plan(&sizes, &lifetimes)), to_words(plan::plan(&sizes, &keep))];

    let q = model.quant(graph.logits).ok_or(Error::Internal("logits without quantisation"))?;
    if weights.is_empty() {
        weights.push(0);
    }
    if channels.is_empty() {
        channels.push([0; 4]);
    }
    Ok(Prepared {
        values,
        computed,
        steps,
        weights,
        channels,
        plans,
        logits: graph.logits,
        logits_scale: q.scale,
        logits_zero_point: q.zero_point,
        output: graph.output,
        input_kind: graph.input.kind,
    })
}

/// Pixels (C×H×W bytes per image) → the input's GPU layout (q = p − 128,
/// H×W×C4, padding bytes 0), appended to `out` as bytes.
pub(crate) fn pack_pixels(layout: &ValueLayout, pixels: &[u8], out: &mut Vec<u8>) {
    let Shape { c, h, w } = layout.shape;
    let (plane, c4) = (h * w, layout.c4());
    for image in pixels.chunks_exact(c * plane) {
        let start = out.len();
        out.resize(start + layout.words * 4, 0);
        let dst = &mut out[start..];
        for ch in 0..c {
            for (p, &pixel) in image[ch * plane..][..plane].iter().enumerate() {
                dst[p * c4 + ch] = pixel ^ 0x80;
            }
        }
    }
}

/// int8 values (H×W×C bytes per image) → the input's GPU layout (channels padded to words).
pub(crate) fn pack_int8(layout: &ValueLayout, values: &[u8], out: &mut Vec<u8>) {
    let (c, c4) = (layout.shape.c, layout.c4());
    for image in values.chunks_exact(layout.shape.len()) {
        let start = out.len();
        out.resize(start + layout.words * 4, 0);
        for (dst, src) in out[start..].chunks_exact_mut(c4).zip(image.chunks_exact(c)) {
            dst[..c].copy_from_slice(src);
        }
    }
}

/// One image's value in the GPU layout (bytes) → H×W×C int8, appended to `out`.
pub(crate) fn unpack_value(layout: &ValueLayout, bytes: &[u8], out: &mut Vec<i8>) {
    let c = layout.shape.c;
    for pixel in bytes.chunks_exact(layout.c4()).take(layout.shape.h * layout.shape.w) {
        out.extend(pixel[..c].iter().map(|&b| b as i8));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::fixed_point::Multiplier;
    use std::vec;

    #[test]
    fn weights_are_padded_per_row_and_bias_absorbs_the_zero_point() {
        // 2 output channels, 1 tap, 5 input channels.
        let w: Vec<i8> = vec![1, 2, 3, 4, 5, -1, -2, -3, -4, -5];
        let m = Multiplier { mantissa: 1 << 30, shift: 0 };
        let ch = [ChannelRequant { bias: 10, multiplier: m }, ChannelRequant { bias: -10, multiplier: m }];
        let (mut packed, mut constants) = (Vec::new(), Vec::new());
        pack_weights(&w, &ch, 1, 5, 3, &mut packed, &mut constants).unwrap();
        assert_eq!(packed.len(), 4 * 2); // O4 = 4 rows of 2 words
        assert_eq!(packed[0], u32::from_le_bytes([1, 2, 3, 4]));
        assert_eq!(packed[1], 5);
        assert_eq!(packed[2], u32::from_le_bytes([0xff, 0xfe, 0xfd, 0xfc]));
        assert_eq!(packed[3], 0xfb);
        assert!(packed[4..].iter().all(|&x| x == 0));
        assert_eq!(constants[0], [10 - 3 * 15, 1 << 30, 0, 0]);
        assert_eq!(constants[1], [-10 + 3 * 15, 1 << 30, 0, 0]);
        assert_eq!(constants[2], [0; 4]);
    }

    #[test]
    fn pixels_round_trip_through_the_padded_layout() {
        let layout = ValueLayout::new(Shape::new(3, 2, 2));
        let pixels: Vec<u8> = (0..24).map(|i| (i * 10) as u8).collect(); // 2 images
        let mut packed = Vec::new();
        pack_pixels(&layout, &pixels, &mut packed);
        assert_eq!(packed.len(), 2 * layout.words * 4);
        let mut q = Vec::new();
        unpack_value(&layout, &packed[..layout.words * 4], &mut q);
        // H×W×C of image 0: pixel p, channel c = pixels[c·4 + p] − 128.
        let pixels = &pixels;
        let expected: Vec<i8> = (0..4).flat_map(|p| (0..3).map(move |c| (pixels[c * 4 + p] ^ 0x80) as i8)).collect();
        assert_eq!(q, expected);
    }
}
