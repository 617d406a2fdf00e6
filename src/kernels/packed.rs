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

/// The SIMD microkernel family a layer's weights are packed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Microkernel {
    /// x86-64 AVX-VNNI: `vpdpbusd` (u8 × i8, 4 taps per i32 lane) on 256-bit vectors.
    AvxVnni,
    /// x86-64 AVX-512 VNNI: the same instruction on 512-bit vectors.
    Avx512Vnni,
    /// wasm simd128: `i32x4.dot_i16x8_s` (i16 × i16, 2 taps per i32 lane).
    Simd128,
    /// wasm relaxed-SIMD: `i32x4.relaxed_dot_i8x16_i7x16_add_s` (4 taps per lane), its
    /// 7-bit operand the positive and the negative part of the weights in turn.
    Relaxed,
    /// aarch64 NEON: `smlal` by element (i16 × i16 into i32), one tap at a time; the
    /// weights of a group are stored tap by tap (`[tap][lane]`), 8 channels a block.
    Neon,
}

impl Microkernel {
    /// Output channels per block (i32 lanes of the accumulator vector).
    pub const fn lanes(self) -> usize {
        match self {
            Microkernel::Avx512Vnni => 16,
            Microkernel::AvxVnni | Microkernel::Neon => 8,
            Microkernel::Simd128 | Microkernel::Relaxed => 4,
        }
    }

    /// Taps one dot instruction sums into each lane (NEON: taps per window load).
    pub const fn group(self) -> usize {
        match self {
            Microkernel::AvxVnni | Microkernel::Avx512Vnni | Microkernel::Relaxed => 4,
            Microkernel::Simd128 => 2,
            Microkernel::Neon => 8,
        }
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

    /// Short name, as `tinycnn bench` prints it.
    pub const fn name(self) -> &'static str {
        match self {
            Microkernel::AvxVnni => "avx-vnni (256-bit)",
            Microkernel::Avx512Vnni => "avx512-vnni (512-bit)",
            Microkernel::Simd128 => "simd128",
            Microkernel::Relaxed => "relaxed-simd",
            Microkernel::Neon => "neon",
        }
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
    /// i8 microkernels: `[block][row][group][lane][tap]`. Relaxed: each group holds the
    /// positive part, then the negative part (both 0..=127).
    pub(crate) weights: Vec<i8>,
    /// Simd128: the same layout as i16. Neon: i16, `[block][row][group][tap][lane]`.
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
        if kernel == Microkernel::Relaxed && weights.contains(&i8::MIN) {
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
                    match kernel {
                        Microkernel::Simd128 => wide.extend(cells().map(i16::from)),
                        Microkernel::Neon => wide.extend((0..group).flat_map(|t| {
                            (0..lanes).map(move |lane| i16::from(weight(block * lanes + lane, row, g * group + t)))
                        })),
                        Microkernel::Relaxed => {
                            packed.extend(cells().map(|w| w.max(0)));
                            packed.extend(cells().map(|w| (-w).max(0)));
                        }
                        Microkernel::AvxVnni | Microkernel::Avx512Vnni => packed.extend(cells()),
                    }
                }
            }
        }

        // Σ w·(x − zp) from what the kernel multiplies: u = x + 128 (VNNI: u8 operand),
        // x itself (relaxed: signed operand), or x − zp already (simd128, NEON: i16 patches).
        let offset = match kernel {
            Microkernel::AvxVnni | Microkernel::Avx512Vnni => input_zero_point + 128,
            Microkernel::Relaxed => input_zero_point,
            Microkernel::Simd128 | Microkernel::Neon => 0,
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
        let (narrow, wide) = match kernel {
            Microkernel::AvxVnni | Microkernel::Avx512Vnni => (cells, 0),
            Microkernel::Relaxed => (2 * cells, 0), // the positive part, then the negative
            Microkernel::Simd128 | Microkernel::Neon => (0, cells),
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
