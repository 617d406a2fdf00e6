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

#[cfg(feature = "alloc")]
use alloc::vec::Vec;

use super::isa::{Conv2dEntry, DenseEntry};
use super::{winograd, Conv2dGeometry};
use crate::error::{Error, Result};
use crate::model::memory::{Memory, Span, State};
use crate::spec::fixed_point::{ChannelRequant, Requant};

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
    /// Runs the convolutions `winograd::suits` with Winograd F(2×2, 3×3) (weights
    /// packed by `kernels::winograd`), the others as its direct twin does.
    winograd: bool,
}

impl Microkernel {
    /// `lanes` output channels per block (i32 lanes of the accumulator vector),
    /// `group` taps per dot instruction and lane (NEON: taps per window load).
    pub const fn new(name: &'static str, layout: WeightLayout, lanes: usize, group: usize) -> Microkernel {
        Microkernel { name, layout, lanes, group, winograd: false }
    }

    /// This kernel, named `name`, taking the layers `winograd::suits` with Winograd
    /// F(2×2, 3×3) (only the `Wide` layout has a Winograd form).
    pub const fn with_winograd(self, name: &'static str) -> Microkernel {
        Microkernel { name, winograd: true, ..self }
    }

    /// Whether this kernel runs 3×3 stride-1 convolutions with Winograd F(2×2, 3×3).
    pub const fn winograd(self) -> bool {
        self.winograd
    }

    /// Whether the two kernels read the same direct packing (a Winograd kernel and its direct twin do).
    pub fn packs_like(self, other: Microkernel) -> bool {
        (self.layout, self.lanes, self.group) == (other.layout, other.lanes, other.group)
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
    #[cfg(feature = "alloc")]
    pub fn available() -> Vec<Microkernel> {
        super::isa::table().iter().filter(|e| (e.runs_here)()).map(|e| e.kernel).collect()
    }

    /// Whether this build and machine run this kernel.
    pub fn runs_here(self) -> bool {
        super::isa::entry(self).is_some_and(|e| (e.runs_here)())
    }

    /// This kernel's conv and dense entry points, if this target's table has it
    /// (`kernels::isa`). Each returns false, writing nothing, when the weights are
    /// not packed for it or the layer does not fit it (then the portable kernel runs).
    pub fn entry_points(self) -> Option<(Conv2dEntry, DenseEntry)> {
        super::isa::entry(self).map(|e| (e.conv2d, e.dense))
    }

    /// The fastest microkernel here, if any.
    pub fn best() -> Option<Microkernel> {
        super::isa::table().iter().find(|e| (e.runs_here)()).map(|e| e.kernel)
    }
}

/// One conv or dense layer's weights and requantisation constants, packed for a
/// microkernel: the view the kernels read (`PackedLayer::view`).
///
/// The taps of an output channel are `rows` rows of `row_taps` (a conv kernel row:
/// KW·C taps, contiguous in the input; a dense layer: one row). Each row is padded
/// to whole groups, so a microkernel can read a kernel row straight from a padded
/// copy of the input, a few bytes past its end being multiplied by zero weights.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PackedWeights<'a> {
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
    pub(crate) weights: &'a [i8],
    /// i16 layouts (`WeightLayout::Wide`, `WideTapMajor`).
    pub(crate) wide_weights: &'a [i16],
    /// Winograd-transformed weights (`kernels::winograd`'s layout, blocks of `lanes`),
    /// instead of `wide_weights`, for a layer a Winograd kernel takes.
    pub(crate) winograd: &'a [i16],
    /// Per output channel, padded to whole blocks with zeros: the bias plus the
    /// zero-point correction of this kernel's activation encoding, the Q31
    /// mantissa and the right shift.
    pub(crate) bias: &'a [i32],
    pub(crate) mantissa: &'a [i32],
    pub(crate) right_shift: &'a [i32],
    /// Every channel's multiplier is < 1 (no left shift, right shift ≤ 31, mantissa ≥ 0):
    /// requantisation can run in vectors.
    pub(crate) vector_requant: bool,
    /// Every channel `ChannelRequant::rounds_in_one_add`.
    pub(crate) one_add_rounding: bool,
}

/// [`PackedWeights`] as a prepared model keeps them: the sizes, and spans of its state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PackedLayer {
    kernel: Option<Microkernel>,
    out_channels: usize,
    rows: usize,
    row_taps: usize,
    row_groups: usize,
    input_zero_point: i32,
    weights: Span<i8>,
    wide_weights: Span<i16>,
    winograd: Span<i16>,
    bias: Span<i32>,
    mantissa: Span<i32>,
    right_shift: Span<i32>,
    vector_requant: bool,
    one_add_rounding: bool,
}

impl PackedLayer {
    /// Nothing packed.
    pub const NONE: PackedLayer = PackedLayer {
        kernel: None,
        out_channels: 0,
        rows: 0,
        row_taps: 0,
        row_groups: 0,
        input_zero_point: 0,
        weights: Span::EMPTY,
        wide_weights: Span::EMPTY,
        winograd: Span::EMPTY,
        bias: Span::EMPTY,
        mantissa: Span::EMPTY,
        right_shift: Span::EMPTY,
        vector_requant: false,
        one_add_rounding: false,
    };

    /// Packs a convolution's `weights` (OHWI) for `kernel`: Winograd-transformed if the
    /// kernel has a Winograd form and the layer suits it, else as `pack` does. A depthwise
    /// convolution the kernel's architecture has a packed depthwise kernel for is packed as
    /// that kernel groups its taps (`vnni::depthwise_rows`: the 512-bit VNNI kernel, which
    /// otherwise regroups each block's weights and constants on every run); other grouped
    /// convolutions, and dilated ones, pack nothing (no microkernel reads them).
    pub fn pack_conv(
        memory: &Memory<'_>,
        kernel: Microkernel,
        geometry: &Conv2dGeometry,
        weights: &[i8],
        channels: &Requant<'_>,
        input_zero_point: i32,
    ) -> Result<PackedLayer> {
        #[cfg(all(target_arch = "x86_64", feature = "std"))]
        if let Some(rows) = super::vnni::depthwise_rows(kernel, geometry) {
            return PackedLayer::pack_with(memory, kernel, weights, channels, rows, input_zero_point, None);
        }
        if geometry.groups != 1 || geometry.dilation != 1 {
            return Ok(PackedLayer::NONE);
        }
        let winograd = (kernel.winograd && kernel.layout == WeightLayout::Wide && winograd::suits(geometry))
            .then_some(geometry.input.c);
        PackedLayer::pack_with(memory, kernel, weights, channels, geometry.kernel_h, input_zero_point, winograd)
    }

    /// Packs `weights` (O rows of K taps, O = `channels.len()`; each K = `rows` kernel
    /// rows) for `kernel`, for inputs of zero point `input_zero_point`, into `memory`.
    /// Packs nothing if `kernel` cannot run here or the shapes disagree (the portable
    /// kernels then run).
    pub fn pack(
        memory: &Memory<'_>,
        kernel: Microkernel,
        weights: &[i8],
        channels: &Requant<'_>,
        rows: usize,
        input_zero_point: i32,
    ) -> Result<PackedLayer> {
        PackedLayer::pack_with(memory, kernel, weights, channels, rows, input_zero_point, None)
    }

    /// `pack`, or with `winograd: Some(in_channels)`, the 3×3 weights transformed for
    /// Winograd F(2×2, 3×3) instead of the direct layout.
    fn pack_with(
        memory: &Memory<'_>,
        kernel: Microkernel,
        weights: &[i8],
        channels: &Requant<'_>,
        rows: usize,
        input_zero_point: i32,
        winograd: Option<usize>,
    ) -> Result<PackedLayer> {
        let out_channels = channels.len();
        let taps = weights.len() / out_channels.max(1);
        if out_channels == 0
            || taps == 0
            || weights.len() != out_channels * taps
            || rows == 0
            || !taps.is_multiple_of(rows)
            || !(-128..=127).contains(&input_zero_point)
            || !kernel.runs_here()
        {
            return Ok(PackedLayer::NONE);
        }
        if kernel.layout == WeightLayout::SplitSignDot && weights.contains(&i8::MIN) {
            // −128 has no 7-bit negative part (the loader only accepts −127..=127).
            return Ok(PackedLayer::NONE);
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
        // Every (block, row, group) cell in packing order, each as `lanes × group` weights.
        let cells = || {
            (0..blocks).flat_map(move |block| {
                (0..rows).flat_map(move |row| (0..row_groups).map(move |g| (block * lanes, row, g * group)))
            })
        };
        let lane_major = move |(first, row, tap): (usize, usize, usize)| {
            (0..lanes).flat_map(move |lane| (0..group).map(move |t| weight(first + lane, row, tap + t)))
        };
        let count = blocks * rows * row_groups * lanes * group;
        let fill = |n: usize, values: &mut dyn Iterator<Item = i8>| -> Result<Span<i8>> {
            memory.persistent_with(n, 0i8, |slots| {
                slots.iter_mut().zip(values).for_each(|(slot, w)| *slot = w);
                Ok(())
            })
        };
        let (packed, wide, transformed) = match (winograd, kernel.layout) {
            (Some(in_channels), WeightLayout::Wide) => {
                let len = winograd::weights_len(out_channels, in_channels, lanes);
                let transformed = memory.persistent_with(len, 0i16, |slots| {
                    if winograd::transform_weights(weights, out_channels, in_channels, lanes, slots) {
                        Ok(())
                    } else {
                        Err(Error::Internal("Winograd packing of weights that are not O×3×3×C"))
                    }
                })?;
                (Span::EMPTY, Span::EMPTY, transformed)
            }
            (Some(_), _) => return Ok(PackedLayer::NONE),
            (None, WeightLayout::UnsignedDot) => {
                (fill(count, &mut cells().flat_map(lane_major))?, Span::EMPTY, Span::EMPTY)
            }
            (None, WeightLayout::SplitSignDot) => {
                // Each cell's positive parts, then its negative parts.
                let mut split = cells()
                    .flat_map(|cell| lane_major(cell).map(|w| w.max(0)).chain(lane_major(cell).map(|w| (-w).max(0))));
                (fill(2 * count, &mut split)?, Span::EMPTY, Span::EMPTY)
            }
            (None, WeightLayout::Wide | WeightLayout::WideTapMajor) => {
                let tap_major = kernel.layout == WeightLayout::WideTapMajor;
                let wide = memory.persistent_with(count, 0i16, |slots| {
                    let mut next = slots.iter_mut();
                    for (first, row, tap) in cells() {
                        for k in 0..lanes * group {
                            // Lane-major: [lane][tap]; tap-major: [tap][lane].
                            let (lane, t) = if tap_major { (k % lanes, k / lanes) } else { (k / group, k % group) };
                            if let Some(slot) = next.next() {
                                *slot = i16::from(weight(first + lane, row, tap + t));
                            }
                        }
                    }
                    Ok(())
                })?;
                (Span::EMPTY, wide, Span::EMPTY)
            }
        };

        // Σ w·(x − zp) from what the kernel multiplies: u = x + 128 (VNNI: u8 operand),
        // x itself (relaxed: signed operand), or x − zp already (simd128, NEON: i16 patches).
        let offset = match kernel.layout {
            WeightLayout::UnsignedDot => input_zero_point + 128,
            WeightLayout::SplitSignDot => input_zero_point,
            WeightLayout::Wide | WeightLayout::WideTapMajor => 0,
        };
        let padded = blocks * lanes;
        let per_channel = |value: &dyn Fn(usize, &ChannelRequant) -> i32| {
            memory.persistent_with(padded, 0i32, |slots| {
                for (o, (slot, channel)) in slots.iter_mut().zip(channels.iter()).enumerate() {
                    *slot = value(o, &channel);
                }
                Ok(())
            })
        };
        let bias = per_channel(&|o, channel| {
            // Wrapping: exact whenever the reference's own sum fits i32 (the loader's limits).
            let row_sum = weights[o * taps..][..taps].iter().fold(0i32, |sum, &w| sum.wrapping_add(i32::from(w)));
            channel.bias.wrapping_sub(offset.wrapping_mul(row_sum))
        })?;
        let mantissa = per_channel(&|_, channel| channel.multiplier.mantissa)?;
        // Used only when in 0..=31. A zero multiplier's is 1, as the one-add rounding needs
        // (h = 0 then, and any shift of 0 is 0).
        let right_shift = per_channel(&|_, channel| match channel.multiplier.mantissa {
            0 => 1,
            _ => channel.multiplier.shift.saturating_neg(),
        })?;
        let vector_requant = channels.iter().all(|c| c.multiplier.is_right_shift_only());
        let one_add_rounding = vector_requant && channels.iter().all(|c| c.rounds_in_one_add(taps));
        Ok(PackedLayer {
            kernel: Some(kernel),
            out_channels,
            rows,
            row_taps,
            row_groups,
            input_zero_point,
            weights: packed,
            wide_weights: wide,
            winograd: transformed,
            bias,
            mantissa,
            right_shift,
            vector_requant,
            one_add_rounding,
        })
    }

    /// Whether anything was packed (else the layer runs the portable kernels).
    pub fn is_packed(&self) -> bool {
        self.kernel.is_some()
    }

    /// The packed weights, read from the state `pack` wrote them into.
    pub fn view<'s>(&self, state: State<'s>) -> PackedWeights<'s> {
        PackedWeights {
            kernel: self.kernel,
            out_channels: self.out_channels,
            rows: self.rows,
            row_taps: self.row_taps,
            row_groups: self.row_groups,
            input_zero_point: self.input_zero_point,
            weights: state.get(self.weights),
            wide_weights: state.get(self.wide_weights),
            winograd: state.get(self.winograd),
            bias: state.get(self.bias),
            mantissa: state.get(self.mantissa),
            right_shift: state.get(self.right_shift),
            vector_requant: self.vector_requant,
            one_add_rounding: self.one_add_rounding,
        }
    }
}

/// Weights packed for a microkernel in a state of their own (tests, benches, fuzzing).
#[cfg(feature = "alloc")]
pub struct OwnedPacking {
    state: crate::model::memory::OwnedState,
    layer: PackedLayer,
}

#[cfg(feature = "alloc")]
impl OwnedPacking {
    /// [`PackedLayer::pack`] into a buffer of its own.
    pub fn new(
        kernel: Microkernel,
        weights: &[i8],
        channels: &Requant<'_>,
        rows: usize,
        input_zero_point: i32,
    ) -> Result<OwnedPacking> {
        OwnedPacking::packed_by(4 * weights.len() + 16 * channels.len(), |memory| {
            PackedLayer::pack(memory, kernel, weights, channels, rows, input_zero_point)
        })
    }

    /// What `pack` writes, in a state of its own (`estimate` bytes to start with).
    fn packed_by(estimate: usize, pack: impl FnMut(&Memory<'_>) -> Result<PackedLayer>) -> Result<OwnedPacking> {
        let (layer, state) = crate::model::memory::OwnedState::load(estimate, pack)?;
        Ok(OwnedPacking { state, layer })
    }

    /// [`PackedLayer::pack_conv`] into a buffer of its own.
    pub fn conv(
        kernel: Microkernel,
        geometry: &Conv2dGeometry,
        weights: &[i8],
        channels: &Requant<'_>,
        input_zero_point: i32,
    ) -> Result<OwnedPacking> {
        OwnedPacking::packed_by(4 * weights.len() + 16 * channels.len(), |memory| {
            PackedLayer::pack_conv(memory, kernel, geometry, weights, channels, input_zero_point)
        })
    }

    pub fn weights(&self) -> PackedWeights<'_> {
        self.layer.view(self.state.state())
    }
}

impl PackedWeights<'_> {
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
        channels: &Requant<'_>,
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
        self.kernel.is_some_and(|packed| packed.packs_like(kernel))
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
