//! Conv / dense weights laid out once, when the CPU engine prepares a model, for the SIMD microkernels.
//!
//! A microkernel keeps one vector of i32 accumulators per output pixel and
//! block of `lanes` output channels; each step broadcasts `group` consecutive
//! taps of a pixel's patch and multiplies them with the `lanes × group`
//! weights of the block (one dot instruction). So the weights are stored
//! `[block][group][lane][tap in group]`, zero-padded at the ends; padding
//! weights are zero, whatever the patch holds there adds nothing.
//!
//! The OHWI tensor in the model file stays what the reference kernels read.

use alloc::vec;
use alloc::vec::Vec;

use super::isa::{Conv2dEntry, DenseEntry};
use crate::spec::fixed_point::ChannelRequant;

/// How a microkernel wants a layer's weights laid out, and which form of the
/// input it multiplies them with (so which zero-point correction its biases get).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WeightLayout {
    /// i8 `[block][row][group][lane][tap]`, multiplied with u = x + 128 (x86 VNNI's
    /// `vpdpbusd` takes an unsigned operand).
    UnsignedDot,
    /// i8, each group's positive parts then its negative parts (both 0..=127),
    /// multiplied with x itself (relaxed-SIMD's 7-bit operand).
    SplitSignDot,
    /// i16 `[block][row][group][lane][tap]`, multiplied with x − zp (i16 patches).
    Wide,
    /// i16 `[block][row][group][tap][lane]`, multiplied with x − zp (NEON's multiply
    /// by element).
    WideTapMajor,
}

/// A SIMD microkernel: its name, its weight layout and its block shape. Each
/// kernel file defines its own (`vnni::AVX512_VNNI`, `wasm_simd::SIMD128`,
/// `neon::NEON`, …) from its own constants; `kernels::isa` lists them per
/// architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Microkernel {
    name: &'static str,
    layout: WeightLayout,
    lanes: usize,
    group: usize,
}

impl Microkernel {
    /// `lanes` output channels per block (i32 lanes of the accumulator vector),
    /// `group` taps per dot instruction and lane (NEON: taps per window load).
    pub const fn new(name: &'static str, layout: WeightLayout, lanes: usize, group: usize) -> Microkernel {
        Microkernel { name, layout, lanes, group }
    }

    /// Output channels per block.
    pub const fn lanes(self) -> usize {
        self.lanes
    }

    /// Taps one dot instruction sums into each lane.
    pub const fn group(self) -> usize {
        self.group
    }

    pub const fn layout(self) -> WeightLayout {
        self.layout
    }

    /// Short name, as `tinycnn bench` prints it.
    pub const fn name(self) -> &'static str {
        self.name
    }

    /// The microkernels this build can run on this machine, fastest first
    /// (the table of this architecture, `kernels::isa`).
    pub fn available() -> Vec<Microkernel> {
        super::isa::table().iter().filter(|e| (e.runs_here)()).map(|e| e.kernel).collect()
    }

    /// This kernel's conv and dense entry points, if this target's table has it
    /// (`kernels::isa`). Each returns false, writing nothing, when the weights are
    /// not packed for it or the layer does not fit it (then the portable kernel runs).
    pub fn entry_points(self) -> Option<(Conv2dEntry, DenseEntry)> {
        super::isa::entry(self).map(|e| (e.conv2d, e.dense))
    }

    /// The fastest microkernel here, if any.
    pub fn best() -> Option<Microkernel> {
        Microkernel::available().first().copied()
    }
}

/// One conv or dense layer's weights and requantisation constants, packed for a microkernel.
///
/// The taps of an output channel are `rows` rows of `row_taps` (a conv kernel row:
/// KW·C taps, contiguous in the input; a dense layer: one row). Each row is padded
/// to whole groups, so a microkernel can read a kernel row straight from a padded
/// copy of the input, a few bytes past its end being multiplied by zero weights.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PackedWeights {
    /// None: nothing packed (no microkernel on this target); the layer runs the portable kernels.
    pub(crate) kernel: Option<Microkernel>,
    pub(crate) out_channels: usize,
    pub(crate) rows: usize,
    pub(crate) row_taps: usize,
    /// ⌈row_taps / group⌉.
    pub(crate) row_groups: usize,
    /// The input zero point the biases below were corrected for.
    pub(crate) input_zero_point: i32,
    /// i8 layouts (`WeightLayout::UnsignedDot`, `SplitSignDot`).
    pub(crate) weights: Vec<i8>,
    /// i16 layouts (`WeightLayout::Wide`, `WideTapMajor`).
    pub(crate) wide_weights: Vec<i16>,
    /// Per output channel, padded to whole blocks with zeros: the bias plus the
    /// zero-point correction of this kernel's activation encoding, the Q31
    /// mantissa and the right shift.
    pub(crate) bias: Vec<i32>,
    pub(crate) mantissa: Vec<i32>,
    pub(crate) right_shift: Vec<i32>,
    /// Every channel's multiplier is < 1 (no left shift, right shift ≤ 31, mantissa ≥ 0):
    /// requantisation can run in vectors.
    pub(crate) vector_requant: bool,
}

impl PackedWeights {
    /// Packs `weights` (O rows of K taps, O = `channels.len()`; each K = `rows` kernel
    /// rows) for `kernel`, for inputs of zero point `input_zero_point`. Packs nothing if
    /// `kernel` cannot run here or the shapes disagree (the portable kernels then run).
    pub fn for_kernel(
        kernel: Microkernel,
        weights: &[i8],
        channels: &[ChannelRequant],
        rows: usize,
        input_zero_point: i32,
    ) -> PackedWeights {
        let out_channels = channels.len();
        let taps = weights.len() / out_channels.max(1);
        if out_channels == 0
            || taps == 0
            || weights.len() != out_channels * taps
            || rows == 0
            || !taps.is_multiple_of(rows)
            || !(-128..=127).contains(&input_zero_point)
            || !Microkernel::available().contains(&kernel)
        {
            return PackedWeights::default();
        }
        if kernel.layout == WeightLayout::SplitSignDot && weights.contains(&i8::MIN) {
            // −128 has no 7-bit negative part (the loader only accepts −127..=127).
            return PackedWeights::default();
        }
        let row_taps = taps / rows;
        let (lanes, group) = (kernel.lanes(), kernel.group());
        let row_groups = row_taps.div_ceil(group);
        let blocks = out_channels.div_ceil(lanes);
        let weight = |o: usize, row: usize, t: usize| {
            if o < out_channels && t < row_taps {
                weights[o * taps + row * row_taps + t]
            } else {
                0
            }
        };

        let mut packed = Vec::new();
        let mut wide = Vec::new();
        for block in 0..blocks {
            for row in 0..rows {
                for g in 0..row_groups {
                    let cells = || {
                        (0..lanes).flat_map(move |lane| {
                            (0..group).map(move |t| weight(block * lanes + lane, row, g * group + t))
                        })
                    };
                    match kernel.layout {
                        WeightLayout::Wide => wide.extend(cells().map(i16::from)),
                        WeightLayout::WideTapMajor => wide.extend((0..group).flat_map(|t| {
                            (0..lanes).map(move |lane| i16::from(weight(block * lanes + lane, row, g * group + t)))
                        })),
                        WeightLayout::SplitSignDot => {
                            packed.extend(cells().map(|w| w.max(0)));
                            packed.extend(cells().map(|w| (-w).max(0)));
                        }
                        WeightLayout::UnsignedDot => packed.extend(cells()),
                    }
                }
            }
        }

        // Σ w·(x − zp) from what the kernel multiplies: u = x + 128 (VNNI: u8 operand),
        // x itself (relaxed: signed operand), or x − zp already (simd128, NEON: i16 patches).
        let offset = match kernel.layout {
            WeightLayout::UnsignedDot => input_zero_point + 128,
            WeightLayout::SplitSignDot => input_zero_point,
            WeightLayout::Wide | WeightLayout::WideTapMajor => 0,
        };
        let padded = blocks * lanes;
        let (mut bias, mut mantissa, mut right_shift) = (vec![0i32; padded], vec![0i32; padded], vec![0i32; padded]);
        for (o, channel) in channels.iter().enumerate() {
            // Wrapping: exact whenever the reference's own sum fits i32 (the loader's limits).
            let row_sum = weights[o * taps..][..taps].iter().fold(0i32, |sum, &w| sum.wrapping_add(i32::from(w)));
            bias[o] = channel.bias.wrapping_sub(offset.wrapping_mul(row_sum));
            mantissa[o] = channel.multiplier.mantissa;
            right_shift[o] = channel.multiplier.shift.saturating_neg(); // used only when in 0..=31
        }
        let vector_requant = channels.iter().all(|c| c.multiplier.is_right_shift_only());
        PackedWeights {
            kernel: Some(kernel),
            out_channels,
            rows,
            row_taps,
            row_groups,
            input_zero_point,
            weights: packed,
            wide_weights: wide,
            bias,
            mantissa,
            right_shift,
            vector_requant,
        }
    }

    /// The microkernel these weights are packed for, if any.
    pub fn kernel(&self) -> Option<Microkernel> {
        self.kernel
    }

    /// Whether these weights are packed for `kernel`, for a layer of `rows` × `row_taps` taps,
    /// `channels` and input zero point `zp`, with the buffer lengths the packer gives them:
    /// what a microkernel's unchecked loads rely on.
    #[cfg(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        all(target_arch = "wasm32", target_feature = "simd128")
    ))]
    pub(crate) fn fits_layer(
        &self,
        kernel: Microkernel,
        rows: usize,
        row_taps: usize,
        channels: &[ChannelRequant],
        zp: i32,
    ) -> bool {
        let (lanes, group) = (kernel.lanes(), kernel.group());
        let blocks = channels.len().div_ceil(lanes);
        let row_groups = row_taps.div_ceil(group);
        let cells = blocks * rows * row_groups * lanes * group;
        let (narrow, wide) = match kernel.layout {
            WeightLayout::UnsignedDot => (cells, 0),
            WeightLayout::SplitSignDot => (2 * cells, 0), // the positive part, then the negative
            WeightLayout::Wide | WeightLayout::WideTapMajor => (0, cells),
        };
        self.kernel == Some(kernel)
            && self.rows == rows
            && self.row_taps == row_taps
            && self.row_groups == row_groups
            && self.out_channels == channels.len()
            && self.input_zero_point == zp
            && self.weights.len() == narrow
            && self.wide_weights.len() == wide
            && [&self.bias, &self.mantissa, &self.right_shift].iter().all(|v| v.len() == blocks * lanes)
    }

    /// Groups per output channel (all rows).
    #[cfg(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        all(target_arch = "wasm32", target_feature = "simd128")
    ))]
    pub(crate) fn groups(&self) -> usize {
        self.rows * self.row_groups
    }
}
