//! Conv / dense weights laid out once, at load time, for the SIMD microkernels.
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

use crate::quant::fixed_point::ChannelRequant;

/// The SIMD microkernel family a layer's weights are packed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Microkernel {
    /// x86-64 AVX-VNNI: `vpdpbusd` (u8 × i8, 4 taps per i32 lane) on 256-bit vectors.
    AvxVnni,
    /// x86-64 AVX-512 VNNI + VL: the same instruction, EVEX-encoded, on 256-bit vectors.
    Avx512Vnni,
    /// wasm simd128: `i32x4.dot_i16x8_s` (i16 × i16, 2 taps per i32 lane).
    Simd128,
    /// wasm relaxed-SIMD: `i32x4.relaxed_dot_i8x16_i7x16_add_s` (4 taps per lane), its
    /// 7-bit operand the positive and the negative part of the weights in turn.
    Relaxed,
}

impl Microkernel {
    /// Output channels per block (i32 lanes of the accumulator vector).
    pub const fn lanes(self) -> usize {
        match self {
            Microkernel::AvxVnni | Microkernel::Avx512Vnni => 8,
            Microkernel::Simd128 | Microkernel::Relaxed => 4,
        }
    }

    /// Taps one dot instruction sums into each lane.
    pub const fn group(self) -> usize {
        match self {
            Microkernel::AvxVnni | Microkernel::Avx512Vnni | Microkernel::Relaxed => 4,
            Microkernel::Simd128 => 2,
        }
    }

    /// The microkernels this build can run on this machine, fastest first.
    pub fn available() -> Vec<Microkernel> {
        let mut found = Vec::new();
        #[cfg(all(target_arch = "x86_64", feature = "std"))]
        {
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("avxvnni") {
                found.push(Microkernel::AvxVnni);
            }
            if std::is_x86_feature_detected!("avx2")
                && std::is_x86_feature_detected!("avx512vnni")
                && std::is_x86_feature_detected!("avx512vl")
            {
                found.push(Microkernel::Avx512Vnni);
            }
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
        found.push(Microkernel::Relaxed);
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        found.push(Microkernel::Simd128);
        found
    }

    /// The fastest microkernel here, if any.
    pub fn best() -> Option<Microkernel> {
        Microkernel::available().first().copied()
    }
}

/// One conv or dense layer's weights and requantisation constants, packed for a microkernel.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PackedWeights {
    /// None: nothing packed (no microkernel on this target); the layer runs the portable kernels.
    pub(crate) kernel: Option<Microkernel>,
    pub(crate) out_channels: usize,
    /// Taps per output channel (KH·KW·C, or the dense input length).
    pub(crate) taps: usize,
    /// ⌈taps / group⌉.
    pub(crate) groups: usize,
    /// i8 microkernels: `[block][group][lane][tap]`. Relaxed: each group holds the
    /// positive part, then the negative part (both 0..=127).
    pub(crate) weights: Vec<i8>,
    /// Simd128: the same layout as i16.
    pub(crate) wide_weights: Vec<i16>,
    /// Per output channel, padded to whole blocks with zeros: Σ of the row's weights
    /// (the zero-point correction of the u8 microkernels), bias, Q31 mantissa, right shift.
    pub(crate) row_sums: Vec<i32>,
    pub(crate) bias: Vec<i32>,
    pub(crate) mantissa: Vec<i32>,
    pub(crate) right_shift: Vec<i32>,
    /// Every channel's multiplier is < 1 (no left shift, right shift ≤ 31, mantissa ≥ 0):
    /// requantisation can run in vectors.
    pub(crate) vector_requant: bool,
}

impl PackedWeights {
    /// Packs for the fastest microkernel here (or packs nothing).
    pub fn new(weights: &[i8], channels: &[ChannelRequant]) -> PackedWeights {
        match Microkernel::best() {
            Some(kernel) => PackedWeights::for_kernel(kernel, weights, channels),
            None => PackedWeights::default(),
        }
    }

    /// Packs `weights` (O rows of K taps, O = `channels.len()`) for `kernel`.
    /// Packs nothing if the shapes disagree (the portable kernels then run and decide).
    pub fn for_kernel(kernel: Microkernel, weights: &[i8], channels: &[ChannelRequant]) -> PackedWeights {
        let out_channels = channels.len();
        if out_channels == 0 || weights.is_empty() || !weights.len().is_multiple_of(out_channels) {
            return PackedWeights::default();
        }
        if kernel == Microkernel::Relaxed && weights.contains(&i8::MIN) {
            // −128 has no 7-bit negative part (the quantiser's weights are −127..=127):
            // such a layer runs the portable kernels.
            return PackedWeights::default();
        }
        let taps = weights.len() / out_channels;
        let (lanes, group) = (kernel.lanes(), kernel.group());
        let groups = taps.div_ceil(group);
        let blocks = out_channels.div_ceil(lanes);
        let padded = blocks * lanes;
        let weight = |o: usize, k: usize| if o < out_channels && k < taps { weights[o * taps + k] } else { 0 };

        let mut packed = Vec::new();
        let mut wide = Vec::new();
        for block in 0..blocks {
            for g in 0..groups {
                let cells =
                    || (0..lanes).flat_map(move |lane| (0..group).map(move |t| (block * lanes + lane, g * group + t)));
                match kernel {
                    Microkernel::Simd128 => wide.extend(cells().map(|(o, k)| i16::from(weight(o, k)))),
                    Microkernel::Relaxed => {
                        packed.extend(cells().map(|(o, k)| weight(o, k).max(0)));
                        packed.extend(cells().map(|(o, k)| weight(o, k).saturating_neg().max(0)));
                    }
                    Microkernel::AvxVnni | Microkernel::Avx512Vnni => packed.extend(cells().map(|(o, k)| weight(o, k))),
                }
            }
        }
        let mut row_sums = vec![0i32; padded];
        let mut bias = vec![0i32; padded];
        let mut mantissa = vec![0i32; padded];
        let mut right_shift = vec![0i32; padded];
        for (o, channel) in channels.iter().enumerate() {
            row_sums[o] = weights[o * taps..][..taps].iter().map(|&w| i32::from(w)).sum();
            bias[o] = channel.bias;
            mantissa[o] = channel.multiplier.mantissa;
            right_shift[o] = -channel.multiplier.shift;
        }
        let vector_requant =
            channels.iter().all(|c| (-31..=0).contains(&c.multiplier.shift) && c.multiplier.mantissa >= 0);
        PackedWeights {
            kernel: Some(kernel),
            out_channels,
            taps,
            groups,
            weights: packed,
            wide_weights: wide,
            row_sums,
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

    /// Heap bytes held (for `inspect`).
    pub fn heap_bytes(&self) -> usize {
        self.weights.len()
            + 2 * self.wide_weights.len()
            + 4 * (self.row_sums.len() + self.bias.len() + self.mantissa.len() + self.right_shift.len())
    }
}
