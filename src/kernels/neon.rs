//! aarch64 microkernel for conv and dense: baseline NEON, `smlal` by element; and a
//! NEON depthwise convolution.
//!
//! Every aarch64 CPU has these instructions (the dot-product extension's
//! intrinsics are not stable in this toolchain). The layout follows the other
//! microkernels (kernels::vnni, kernels::wasm_simd): the layer's input is copied
//! once, padded, as i16 x − zero_point (padding 0), so every kernel row of every
//! window is a contiguous run. A tile keeps 4 output pixels × 8 channels of i32
//! sums in registers; per group of 8 taps it loads 8 taps of each pixel's window
//! and, tap by tap, the 8 channels' weights, and multiplies each weight vector
//! by the tap's lane of the window (`vmlal_laneq_s16`, `vmlal_high_laneq_s16`).
//!
//! Integer sums are exact in any order, so the result is bit-identical to the
//! reference; the requantisation is gemmlowp's, whose high multiply NEON has as
//! one instruction (`sqrdmulh`).
//!
//! The NEON intrinsics are `unsafe` to call outside `#[target_feature(enable = "neon")]`
//! functions; NEON is part of every aarch64 target, the only one this module builds
//! for, so their blocks below need no other condition (memory accesses say theirs).

use core::arch::aarch64::*;
use core::mem::MaybeUninit;

use super::dot::PATCH_MAX;
use super::packed::{Microkernel, PackedWeights, WeightLayout};
use super::{depthwise, padded, Conv2dGeometry};
use crate::spec::fixed_point::{requantize, OutputRange, Requant};

/// Output channels per block: two vectors of four i32 sums.
const LANES: usize = 8;
/// Taps per group: one i16x8 load of a window.
const GROUP: usize = 8;
/// Output pixels per tile.
const PIXELS: usize = 4;
/// `smlal` by element (i16 × i16 into i32), one tap at a time: the packer lays
/// the weights out by these constants (`PackedWeights::fits_layer` checks them).
pub const NEON: Microkernel = Microkernel::new("neon", WeightLayout::WideTapMajor, LANES, GROUP);
/// Largest padded input copy (elements, on the stack); larger layers run the portable kernels.
const IMAGE_MAX: usize = 32 * 1024;

/// Whether `packed` suits this microkernel for a layer of `rows` × `row_taps` taps.
fn usable(packed: &PackedWeights, rows: usize, row_taps: usize, channels: &Requant<'_>, zp: i32) -> bool {
    packed.fits_layer(NEON, rows, row_taps, channels, zp)
}

#[inline(always)]
fn encode(x: i8, zero_point: i32) -> i16 {
    (i32::from(x) - zero_point) as i16 // |x − zp| ≤ 255
}

/// Conv with the layer's packed microkernel; false (and nothing written) if `packed`
/// is not for this kernel or does not match the layer.
pub fn conv2d(
    g: &Conv2dGeometry,
    input: &[i8],
    zp: i32,
    packed: &PackedWeights,
    channels: &Requant<'_>,
    range: OutputRange,
    output: &mut [i8],
) -> bool {
    let fits_buffer = g.padded_input(GROUP).is_some_and(|(_, _, len)| len <= IMAGE_MAX);
    if !usable(packed, g.kernel_h, g.kernel_w * g.input.c, channels, zp)
        || g.groups != 1
        || g.dilation != 1
        || g.output.c != channels.len()
        || !fits_buffer
        || input.len() < g.input.len()
        || output.len() < g.output.len()
    {
        return false;
    }
    // Uninitialised: filling it all per layer would cost more than some layers; `copy`
    // writes the part it returns.
    let mut storage = [const { MaybeUninit::<i16>::uninit() }; IMAGE_MAX];
    let Some((image, padded_w)) = padded::copy(g, input, GROUP, 0, |x| encode(x, zp), &mut storage) else {
        return false;
    };
    let layer = Layer { packed, channels, range, row_stride: padded_w * g.input.c };
    let windows = |first| padded::window_starts::<PIXELS>(g, padded_w, first);
    // SAFETY: `usable` holds; each window lies inside `image` (`padded_input`, whose
    // slack covers the GROUP − 1 elements of over-read).
    unsafe { layer.run::<PIXELS>(image, g.output.h * g.output.w, windows, &mut output[..g.output.len()]) };
    true
}

/// Dense with the layer's packed microkernel; false (and nothing written) if `packed` does not suit.
pub fn dense(
    input: &[i8],
    zp: i32,
    packed: &PackedWeights,
    channels: &Requant<'_>,
    range: OutputRange,
    output: &mut [i8],
) -> bool {
    if !usable(packed, 1, input.len(), channels, zp) || input.len() + GROUP > PATCH_MAX || output.len() < channels.len()
    {
        return false;
    }
    let mut patch = [0i16; PATCH_MAX];
    for (e, &x) in patch.iter_mut().zip(input) {
        *e = encode(x, zp);
    }
    let layer = Layer { packed, channels, range, row_stride: 0 };
    // SAFETY: `usable` holds; the one window (row_groups × GROUP elements) lies inside `patch`.
    unsafe { layer.run::<1>(&patch, 1, |_| [0], &mut output[..channels.len()]) };
    true
}

/// What the tile loop of one layer shares.
struct Layer<'a> {
    packed: &'a PackedWeights<'a>,
    channels: &'a Requant<'a>,
    range: OutputRange,
    /// Elements between a window's kernel rows.
    row_stride: usize,
}

impl Layer<'_> {
    /// Every output of the layer (`pixels` × out_channels into `output`): channel blocks
    /// outer, so that each block's requantisation constants are set up once, tiles of `P`
    /// pixels inner, the windows of pixels `first..first + P` at `windows(first)`.
    ///
    /// # Safety
    /// `usable()` holds; every window (rows × row_groups × GROUP elements from its base) lies inside `image`.
    #[inline(always)]
    unsafe fn run<const P: usize>(
        &self,
        image: &[i16],
        pixels: usize,
        windows: impl Fn(usize) -> [usize; P],
        output: &mut [i8],
    ) {
        let out_c = self.packed.out_channels;
        for block in 0..out_c.div_ceil(LANES) {
            let requant = BlockRequant::load(self.packed, block);
            let mut first = 0;
            while first < pixels {
                let acc = unsafe { tile::<P>(image, &windows(first), self.row_stride, self.packed, block) };
                for (p, sums) in acc.iter().enumerate().take(pixels - first) {
                    requant.store(sums, self.channels, self.range, &mut output[(first + p) * out_c..][..out_c]);
                }
                first += P;
            }
        }
    }
}

/// The sums of block `block` (8 channels, as two vectors) for `P` windows.
///
/// # Safety
/// As `Layer::run`, and `block` < the number of blocks.
#[inline(always)]
unsafe fn tile<const P: usize>(
    image: &[i16],
    windows: &[usize; P],
    row_stride: usize,
    packed: &PackedWeights,
    block: usize,
) -> [[int32x4_t; 2]; P] {
    let step = GROUP * LANES; // weights per group

    // SAFETY (the loads below): `usable` makes the weights blocks × groups × step long;
    // the windows lie inside `image` (the caller's contract).
    let mut weights = unsafe { packed.wide_weights.as_ptr().add(block * packed.groups() * step) };
    // SAFETY: NEON (module comment).
    let mut acc = [[unsafe { vdupq_n_s32(0) }; 2]; P];
    for row in 0..packed.rows {
        let starts: [*const i16; P] =
            core::array::from_fn(|p| unsafe { image.as_ptr().add(windows[p] + row * row_stride) });
        for g in 0..packed.row_groups {
            let x: [int16x8_t; P] = core::array::from_fn(|p| unsafe { vld1q_s16(starts[p].add(g * GROUP)) });
            unsafe {
                tap::<0, P>(&mut acc, &x, weights);
                tap::<1, P>(&mut acc, &x, weights);
                tap::<2, P>(&mut acc, &x, weights);
                tap::<3, P>(&mut acc, &x, weights);
                tap::<4, P>(&mut acc, &x, weights);
                tap::<5, P>(&mut acc, &x, weights);
                tap::<6, P>(&mut acc, &x, weights);
                tap::<7, P>(&mut acc, &x, weights);
                weights = weights.add(step);
            }
        }
    }
    acc
}

/// Tap `T` of a group: its 8 channels' weights times lane `T` of each window.
///
/// # Safety
/// `weights` points to a group's GROUP × LANES readable weights.
#[inline(always)]
unsafe fn tap<const T: i32, const P: usize>(acc: &mut [[int32x4_t; 2]; P], x: &[int16x8_t; P], weights: *const i16) {
    // SAFETY: the caller's contract; T < GROUP.
    let w = unsafe { vld1q_s16(weights.add(T as usize * LANES)) };
    for ([low, high], &x) in acc.iter_mut().zip(x) {
        // SAFETY: NEON (module comment).
        unsafe {
            *low = vmlal_laneq_s16::<T>(*low, vget_low_s16(w), x);
            *high = vmlal_high_laneq_s16::<T>(*high, w, x);
        }
    }
}

/// One block's requantisation constants, as vectors (two of four lanes).
struct BlockRequant {
    base: usize,
    valid: usize,
    vector: bool,
    bias: [int32x4_t; 2],
    mantissa: [int32x4_t; 2],
    /// −right_shift: `vshlq_s32` by a negative count shifts right, lane by lane.
    negated_shift: [int32x4_t; 2],
    /// (1 << right_shift) − 1 and its half: RoundingDivideByPOT's remainder mask and threshold.
    remainder_mask: [int32x4_t; 2],
    half_mask: [int32x4_t; 2],
}

impl BlockRequant {
    #[inline(always)]
    fn load(packed: &PackedWeights, block: usize) -> BlockRequant {
        let base = block * LANES;
        let load = |v: &[i32], half: usize| {
            let lanes: [i32; 4] = core::array::from_fn(|i| v.get(base + 4 * half + i).copied().unwrap_or(0));
            // SAFETY: `lanes` is four readable i32s.
            unsafe { vld1q_s32(lanes.as_ptr()) }
        };
        let pair = |v: &[i32]| [load(v, 0), load(v, 1)];
        let right_shift = pair(packed.right_shift);
        // SAFETY: NEON (module comment).
        let remainder_mask = right_shift.map(|s| unsafe { vsubq_s32(vshlq_s32(vdupq_n_s32(1), s), vdupq_n_s32(1)) });
        BlockRequant {
            base,
            valid: LANES.min(packed.out_channels - base),
            vector: packed.vector_requant,
            bias: pair(packed.bias),
            mantissa: pair(packed.mantissa),
            negated_shift: right_shift.map(|s| unsafe { vnegq_s32(s) }),
            remainder_mask,
            half_mask: remainder_mask.map(|m| unsafe { vshrq_n_s32::<1>(m) }),
        }
    }

    /// Requantises one pixel's sums of this block into its channels of `out` (that pixel's outputs).
    #[inline(always)]
    fn store(&self, sums: &[int32x4_t; 2], channels: &Requant<'_>, range: OutputRange, out: &mut [i8]) {
        // bias + Σ w·(x − zp), wrapping (exact: the loader's limits). SAFETY: NEON (module comment).
        let totals = unsafe { [vaddq_s32(sums[0], self.bias[0]), vaddq_s32(sums[1], self.bias[1])] };
        let dst = &mut out[self.base..self.base + self.valid];
        if !self.vector {
            let mut lanes = [0i32; LANES];
            // SAFETY: `lanes` has room for both vectors.
            unsafe {
                vst1q_s32(lanes.as_mut_ptr(), totals[0]);
                vst1q_s32(lanes.as_mut_ptr().add(4), totals[1]);
            }
            for ((d, &t), channel) in dst.iter_mut().zip(&lanes).zip((self.base..).map(|o| channels.channel(o))) {
                *d = requantize(t, channel.multiplier, range);
            }
            return;
        }
        let q: [int32x4_t; 2] = core::array::from_fn(|h| self.requantize(h, totals[h], range));
        let mut eight = [0i8; LANES];
        // Lanes are in [min, max] ⊂ [−128, 127]: the saturating narrowings keep them.
        // SAFETY: NEON (module comment); `eight` is 8 bytes.
        unsafe { vst1_s8(eight.as_mut_ptr(), vqmovn_s16(vcombine_s16(vqmovn_s32(q[0]), vqmovn_s32(q[1])))) };
        dst.copy_from_slice(&eight[..self.valid]);
    }

    /// Half `h` of the block: gemmlowp's steps, as in `fixed_point::requantize`, for
    /// multipliers below 1 (`vector`).
    #[inline(always)]
    fn requantize(&self, h: usize, total: int32x4_t, range: OutputRange) -> int32x4_t {
        // SAFETY: NEON (module comment).
        unsafe {
            // SaturatingRoundingDoublingHighMul is sqrdmulh: (2·x·m + 2^31) >> 32, saturated.
            let x = vqrdmulhq_s32(total, self.mantissa[h]);
            // RoundingDivideByPOT: (x >> e) + (remainder > (mask >> 1) + (x < 0)).
            let remainder = vandq_s32(x, self.remainder_mask[h]);
            let threshold = vsubq_s32(self.half_mask[h], vreinterpretq_s32_u32(vcltzq_s32(x)));
            let shifted = vshlq_s32(x, self.negated_shift[h]);
            let q = vsubq_s32(shifted, vreinterpretq_s32_u32(vcgtq_s32(remainder, threshold)));
            // Clamped before the zero point is added (`OutputRange::bounds_before_zero_point`).
            let (low, high) = range.bounds_before_zero_point();
            let q = vminq_s32(vmaxq_s32(q, vdupq_n_s32(low)), vdupq_n_s32(high));
            vaddq_s32(q, vdupq_n_s32(range.zero_point))
        }
    }
}

/// A depthwise convolution with one output channel per input channel, 8 channels a
/// step: per output pixel and tap, 8 input bytes widened to i16 minus the zero point,
/// multiplied with the tap's weights into two vectors of i32 sums (`smlal`,
/// `smlal2`); then `BlockRequant::store`. False, writing nothing, for a layer it
/// does not take: a depth multiplier, channels not a multiple of 8, a window over
/// 7×7, a multiplier ≥ 1. The sums are the reference's (exact integer arithmetic).
pub fn depthwise(
    g: &Conv2dGeometry,
    input: &[i8],
    zp: i32,
    weights: &[i8],
    channels: &Requant<'_>,
    range: OutputRange,
    output: &mut [i8],
) -> bool {
    if !depthwise::takes(g, input, zp, weights, channels, output, LANES) {
        return false;
    }
    let (c, taps) = (g.input.c, g.kernel_h * g.kernel_w);
    // SAFETY: NEON (module comment).
    let zero_point = unsafe { vdupq_n_s16(zp as i16) };
    // The block's weights, i16 and tap-major: 64 × 49 × 2 B = 6 KB.
    let mut tap_major = [0i16; depthwise::BLOCK * depthwise::TAPS_MAX];
    for start in (0..c).step_by(depthwise::BLOCK) {
        let n = depthwise::BLOCK.min(c - start); // a multiple of 8
        for j in 0..n {
            for tap in 0..taps {
                tap_major[tap * depthwise::BLOCK + j] = i16::from(weights[(start + j) * taps + tap]);
            }
        }
        let constants = depthwise::BlockConstants::new(channels, start, n, |_, channel| channel.bias);
        let packed = constants.packed();
        // Each block's constants once per layer (past the last block: the last one again, unused).
        let requants: [BlockRequant; depthwise::BLOCK / LANES] =
            core::array::from_fn(|block| BlockRequant::load(&packed, block.min(n / LANES - 1)));
        for oy in 0..g.output.h {
            let (ky0, ky1) = g.rows(oy);
            for ox in 0..g.output.w {
                let (kx0, kx1) = g.cols(ox);
                let out = &mut output[(oy * g.output.w + ox) * c + start..][..n];
                for (block, requant) in requants.iter().enumerate().take(n / LANES) {
                    // SAFETY: NEON (module comment).
                    let mut acc = unsafe { [vdupq_n_s32(0); 2] };
                    for ky in ky0..ky1 {
                        let row = g.source_row(oy, ky) * g.input.w;
                        for kx in kx0..kx1 {
                            let first = (row + g.source_col(ox, kx)) * c + start + block * LANES;
                            let tap = (ky * g.kernel_w + kx) * depthwise::BLOCK + block * LANES;
                            // SAFETY: NEON; the window's taps lie inside the input (rows()/cols()) and
                            // first + 8 ≤ that pixel's channels; tap + 8 ≤ 49 × 64.
                            unsafe {
                                let x = vsubq_s16(vmovl_s8(vld1_s8(input.as_ptr().add(first))), zero_point);
                                let w = vld1q_s16(tap_major.as_ptr().add(tap));
                                acc[0] = vmlal_s16(acc[0], vget_low_s16(x), vget_low_s16(w));
                                acc[1] = vmlal_high_s16(acc[1], x, w);
                            }
                        }
                    }
                    // Every multiplier is < 1 (checked above): `store` takes its vector path.
                    requant.store(&acc, channels, range, out);
                }
            }
        }
    }
    true
}
