//! wasm32 microkernels for conv and dense: simd128 (`i32x4.dot_i16x8_s`) and,
//! in relaxed-SIMD builds, `i32x4.relaxed_dot_i8x16_i7x16_add_s`.
//!
//! The layout is the VNNI kernels' (kernels::vnni), on 4-lane vectors: the
//! layer's input is copied once, padded, in the kernel's encoding, so every
//! kernel row of every window is a contiguous run; a tile keeps 4 output
//! pixels' sums of one or two blocks of 4 channels in registers, and per group
//! of taps broadcasts one 32-bit word per pixel against the block's weights.
//!
//! - simd128: the copy holds x − zero_point as i16 (padding 0), 2 taps per word.
//! - relaxed: the copy holds x itself (padding zero_point), 4 taps per word, the
//!   signed operand; the 7-bit operand is the positive and then the negative
//!   part of the weights (both 0..=127), so the result never depends on the
//!   engine's choice for the top bit. The packer folded −zero_point·Σw into the bias.
//!
//! Integer sums are exact in any order, so both are bit-identical to the reference.

use core::arch::wasm32::*;
use core::mem::MaybeUninit;

use super::dot::PATCH_MAX;
use super::packed::{Microkernel, PackedWeights, WeightLayout};
use super::{padded, Conv2dGeometry};
use crate::spec::fixed_point::{requantize, OutputRange, Requant};

const LANES: usize = 4;
/// Taps per lane of relaxed-SIMD's dot (4 i8 products).
const RELAXED_GROUP: usize = 4;
/// `i32x4.dot_i16x8_s` (i16 × i16, 2 taps per i32 lane). The packer lays the
/// weights out by these constants (`PackedWeights::fits_layer` checks them).
pub const SIMD128: Microkernel = Microkernel::new("simd128", WeightLayout::Wide, LANES, Simd128::GROUP);
/// `i32x4.relaxed_dot_i8x16_i7x16_add_s` (4 taps per lane), its 7-bit operand the
/// positive and the negative part of the weights in turn. Listed in every simd128
/// build; it runs only in one built with relaxed-simd (`isa::wasm32`).
pub const RELAXED: Microkernel = Microkernel::new("relaxed-simd", WeightLayout::SplitSignDot, LANES, RELAXED_GROUP);
/// Output pixels per tile.
const PIXELS: usize = 4;
/// Largest padded input copy (elements, on the stack); larger layers run the portable kernels.
const IMAGE_MAX: usize = 32 * 1024;

/// What differs between the two microkernels.
trait Encoding {
    /// An element of the padded input copy.
    type Elem: Copy;
    /// Accumulators of one pixel and block.
    type Acc: Copy;
    const KERNEL: Microkernel;
    /// Taps per 32-bit word.
    const GROUP: usize;
    /// Weight bytes per group and block.
    const STEP: usize;
    fn encode(x: i8, zero_point: i32) -> Self::Elem;
    fn padding(zero_point: i32) -> Self::Elem;
    fn weights<'a>(packed: &PackedWeights<'a>) -> &'a [u8];
    fn zero() -> Self::Acc;
    /// acc + the products of the broadcast word `x` with the block's weights at `w`.
    ///
    /// # Safety
    /// `w` points to STEP readable bytes.
    unsafe fn step(acc: Self::Acc, x: v128, w: *const u8) -> Self::Acc;
    fn sums(acc: Self::Acc) -> v128;
}

struct Simd128;

impl Encoding for Simd128 {
    type Elem = i16;
    type Acc = v128;
    const KERNEL: Microkernel = SIMD128;
    const GROUP: usize = 2;
    const STEP: usize = 16;

    #[inline(always)]
    fn encode(x: i8, zero_point: i32) -> i16 {
        (i32::from(x) - zero_point) as i16 // |x − zp| ≤ 255
    }
    #[inline(always)]
    fn padding(_zero_point: i32) -> i16 {
        0
    }
    #[inline(always)]
    fn weights<'a>(packed: &PackedWeights<'a>) -> &'a [u8] {
        bytemuck::cast_slice(packed.wide_weights)
    }
    #[inline(always)]
    fn zero() -> v128 {
        i32x4_splat(0)
    }
    #[inline(always)]
    unsafe fn step(acc: v128, x: v128, w: *const u8) -> v128 {
        // SAFETY: the caller guarantees 16 readable bytes; v128_load has no alignment requirement.
        let w = unsafe { v128_load(w.cast()) };
        i32x4_add(acc, i32x4_dot_i16x8(x, w))
    }
    #[inline(always)]
    fn sums(acc: v128) -> v128 {
        acc
    }
}

#[cfg(target_feature = "relaxed-simd")]
struct Relaxed;

#[cfg(target_feature = "relaxed-simd")]
impl Encoding for Relaxed {
    type Elem = i8;
    type Acc = (v128, v128);
    const KERNEL: Microkernel = RELAXED;
    const GROUP: usize = RELAXED_GROUP;
    const STEP: usize = 32;

    #[inline(always)]
    fn encode(x: i8, _zero_point: i32) -> i8 {
        x
    }
    #[inline(always)]
    fn padding(zero_point: i32) -> i8 {
        zero_point as i8 // in −128..=127 (checked by the packer)
    }
    #[inline(always)]
    fn weights<'a>(packed: &PackedWeights<'a>) -> &'a [u8] {
        bytemuck::cast_slice(packed.weights)
    }
    #[inline(always)]
    fn zero() -> (v128, v128) {
        (i32x4_splat(0), i32x4_splat(0))
    }
    #[inline(always)]
    unsafe fn step(acc: (v128, v128), x: v128, w: *const u8) -> (v128, v128) {
        // SAFETY: the caller guarantees 32 readable bytes (the positive part, then the negative).
        let (positive, negative) = unsafe { (v128_load(w.cast()), v128_load(w.add(16).cast())) };
        (i32x4_relaxed_dot_i8x16_i7x16_add(x, positive, acc.0), i32x4_relaxed_dot_i8x16_i7x16_add(x, negative, acc.1))
    }
    #[inline(always)]
    fn sums(acc: (v128, v128)) -> v128 {
        i32x4_sub(acc.0, acc.1)
    }
}

/// Whether `packed` suits microkernel `E` for a layer of `rows` × `row_taps` taps.
fn usable<E: Encoding>(packed: &PackedWeights, rows: usize, row_taps: usize, channels: &Requant<'_>, zp: i32) -> bool {
    packed.fits_layer(E::KERNEL, rows, row_taps, channels, zp)
}

/// Conv with the layer's packed microkernel; false (and nothing written) if
/// `packed` is not for one of these kernels or does not match the layer.
pub fn conv2d(
    geometry: &Conv2dGeometry,
    input: &[i8],
    input_zero_point: i32,
    packed: &PackedWeights,
    channels: &Requant<'_>,
    range: OutputRange,
    output: &mut [i8],
) -> bool {
    if geometry.groups != 1 || geometry.dilation != 1 {
        return false; // grouped and dilated convolutions run the portable kernels
    }
    match packed.kernel {
        #[cfg(target_feature = "relaxed-simd")]
        Some(RELAXED) => conv2d_with::<Relaxed, 1>(geometry, input, input_zero_point, packed, channels, range, output),
        Some(SIMD128) => conv2d_with::<Simd128, 2>(geometry, input, input_zero_point, packed, channels, range, output),
        _ => false,
    }
}

/// Dense with the layer's packed microkernel; false (and nothing written) if `packed` does not suit.
pub fn dense(
    input: &[i8],
    input_zero_point: i32,
    packed: &PackedWeights,
    channels: &Requant<'_>,
    range: OutputRange,
    output: &mut [i8],
) -> bool {
    match packed.kernel {
        #[cfg(target_feature = "relaxed-simd")]
        Some(RELAXED) => dense_with::<Relaxed, 1>(input, input_zero_point, packed, channels, range, output),
        Some(SIMD128) => dense_with::<Simd128, 2>(input, input_zero_point, packed, channels, range, output),
        _ => false,
    }
}

/// `NB`: channel blocks per tile.
fn conv2d_with<E: Encoding, const NB: usize>(
    g: &Conv2dGeometry,
    input: &[i8],
    zp: i32,
    packed: &PackedWeights,
    channels: &Requant<'_>,
    range: OutputRange,
    output: &mut [i8],
) -> bool {
    let fits_buffer = g.padded_input(E::GROUP).is_some_and(|(_, _, len)| len <= IMAGE_MAX);
    if !usable::<E>(packed, g.kernel_h, g.kernel_w * g.input.c, channels, zp)
        || g.output.c != channels.len()
        || !fits_buffer
        || input.len() < g.input.len()
        || output.len() < g.output.len()
    {
        return false;
    }
    // Uninitialised: filling it all per layer would cost more than some layers; `copy`
    // writes the part it returns.
    let mut storage = [const { MaybeUninit::<E::Elem>::uninit() }; IMAGE_MAX];
    let Some((image, padded_w)) = padded::copy(g, input, E::GROUP, E::padding(zp), |x| E::encode(x, zp), &mut storage)
    else {
        return false;
    };
    let layer = Layer { packed, channels, range, row_stride: padded_w * g.input.c };
    let windows = |first| padded::window_starts::<PIXELS>(g, padded_w, first);
    // SAFETY: `usable` holds; each window lies inside `image` (`padded_input`, whose
    // slack covers the GROUP − 1 elements of over-read).
    unsafe { layer.run::<E, PIXELS, NB>(image, g.output.h * g.output.w, windows, &mut output[..g.output.len()]) };
    true
}

fn dense_with<E: Encoding, const NB: usize>(
    input: &[i8],
    zp: i32,
    packed: &PackedWeights,
    channels: &Requant<'_>,
    range: OutputRange,
    output: &mut [i8],
) -> bool {
    if !usable::<E>(packed, 1, input.len(), channels, zp)
        || input.len() + E::GROUP > PATCH_MAX
        || output.len() < channels.len()
    {
        return false;
    }
    let mut patch = [E::padding(zp); PATCH_MAX];
    for (e, &x) in patch.iter_mut().zip(input) {
        *e = E::encode(x, zp);
    }
    let layer = Layer { packed, channels, range, row_stride: 0 };
    // SAFETY: `usable` holds; the one window (row_groups words) lies inside `patch`.
    unsafe { layer.run::<E, 1, NB>(&patch, 1, |_| [0], &mut output[..channels.len()]) };
    true
}

/// What the tile loops of one layer share.
struct Layer<'a> {
    packed: &'a PackedWeights<'a>,
    channels: &'a Requant<'a>,
    range: OutputRange,
    /// Elements between a window's kernel rows.
    row_stride: usize,
}

impl Layer<'_> {
    /// Every output of the layer (`pixels` × out_channels into `output`): channel blocks
    /// outer, so that each block's requantisation constants are set up once, and tiles
    /// of `P` pixels inner, the windows of pixels `first..first + P` at `windows(first)`.
    ///
    /// # Safety
    /// `usable::<E>()` holds; every window (rows × row_groups words from its base) lies inside `image`.
    #[inline(always)]
    unsafe fn run<E: Encoding, const P: usize, const NB: usize>(
        &self,
        image: &[E::Elem],
        pixels: usize,
        windows: impl Fn(usize) -> [usize; P],
        output: &mut [i8],
    ) {
        let blocks = self.packed.out_channels.div_ceil(LANES);
        let mut block = 0;
        while block < blocks {
            if block + NB <= blocks {
                unsafe { self.column::<E, P, NB>(image, pixels, &windows, block, output) };
                block += NB;
            } else {
                unsafe { self.column::<E, P, 1>(image, pixels, &windows, block, output) };
                block += 1;
            }
        }
    }

    /// Blocks `block..block + NB` of every pixel.
    ///
    /// # Safety
    /// As `run`, and `block + NB` ≤ the number of blocks.
    #[inline(always)]
    unsafe fn column<E: Encoding, const P: usize, const NB: usize>(
        &self,
        image: &[E::Elem],
        pixels: usize,
        windows: &impl Fn(usize) -> [usize; P],
        block: usize,
        output: &mut [i8],
    ) {
        let out_c = self.packed.out_channels;
        let requants: [BlockRequant; NB] = core::array::from_fn(|n| BlockRequant::load(self.packed, block + n));
        let mut first = 0;
        while first < pixels {
            let acc = unsafe { tile::<E, P, NB>(image, &windows(first), self.row_stride, self.packed, block) };
            for (p, sums) in acc.iter().enumerate().take(pixels - first) {
                let sums = sums.map(E::sums);
                store(&requants, &sums, self.channels, self.range, &mut output[(first + p) * out_c..][..out_c]);
            }
            first += P;
        }
    }
}

/// The accumulators of blocks `block..block + NB` for `P` windows.
///
/// # Safety
/// As `tiles`, and `block + NB` ≤ the number of blocks.
#[inline(always)]
unsafe fn tile<E: Encoding, const P: usize, const NB: usize>(
    image: &[E::Elem],
    windows: &[usize; P],
    row_stride: usize,
    packed: &PackedWeights,
    block: usize,
) -> [[E::Acc; NB]; P] {
    let block_bytes = packed.groups() * E::STEP;
    // SAFETY (the loads below): `usable` makes the weights blocks × block_bytes long and
    // block + NB ≤ blocks; the windows lie inside `image` (the caller's contract).
    let mut weights = unsafe { E::weights(packed).as_ptr().add(block * block_bytes) };
    let mut acc = [[E::zero(); NB]; P];
    for row in 0..packed.rows {
        let starts: [*const E::Elem; P] =
            core::array::from_fn(|p| unsafe { image.as_ptr().add(windows[p] + row * row_stride) });
        for g in 0..packed.row_groups {
            for (acc, start) in acc.iter_mut().zip(&starts) {
                let x = unsafe { v128_load32_splat(start.add(g * E::GROUP).cast()) };
                for (n, a) in acc.iter_mut().enumerate() {
                    *a = unsafe { E::step(*a, x, weights.add(n * block_bytes)) };
                }
            }
            weights = unsafe { weights.add(E::STEP) };
        }
    }
    acc
}

/// One block's requantisation constants, as vectors.
struct BlockRequant {
    base: usize,
    valid: usize,
    vector: bool,
    bias: v128,
    mantissa: v128,
    right_shift: v128,
    /// The block's right shift when its lanes share one (the common case): one wasm shift.
    uniform_shift: Option<u32>,
    /// (1 << right_shift) − 1 and its half: RoundingDivideByPOT's remainder mask and threshold.
    remainder_mask: v128,
    half_mask: v128,
}

impl BlockRequant {
    #[inline(always)]
    fn load(packed: &PackedWeights, block: usize) -> BlockRequant {
        let base = block * LANES;
        let load = |v: &[i32]| {
            let lanes: [i32; LANES] = core::array::from_fn(|i| v.get(base + i).copied().unwrap_or(0));
            i32x4(lanes[0], lanes[1], lanes[2], lanes[3])
        };
        let right_shift = load(packed.right_shift);
        let shifts = &packed.right_shift[base.min(packed.right_shift.len())..];
        let uniform_shift = match shifts.get(..LANES) {
            Some([first, rest @ ..]) if rest.iter().all(|s| s == first) => u32::try_from(*first).ok(),
            _ => None,
        };
        let remainder_mask = i32x4_sub(shift_left_lanes(i32x4_splat(1), right_shift), i32x4_splat(1));
        BlockRequant {
            base,
            valid: LANES.min(packed.out_channels - base),
            vector: packed.vector_requant,
            bias: load(packed.bias),
            mantissa: load(packed.mantissa),
            right_shift,
            uniform_shift,
            remainder_mask,
            half_mask: u32x4_shr(remainder_mask, 1),
        }
    }

    /// The block's four outputs for one pixel's sums, as i32 lanes within `range`
    /// (the vector form: every multiplier below 1, `vector`).
    #[inline(always)]
    fn requantize(&self, sums: v128, range: OutputRange) -> v128 {
        // bias + Σ w·(x − zp), wrapping (exact: the loader's limits).
        let total = i32x4_add(sums, self.bias);
        // SaturatingRoundingDoublingHighMul: (x·m + 2^30) >> 31 on 64-bit products (mantissa ≥ 0,
        // so the saturating case MIN·MIN cannot occur). |x·m + 2^30| < 2^62, so shifting it left
        // by one cannot overflow and its high word is the shifted result: i64x2.shl is one x86
        // instruction where i64x2.shr_s takes several without AVX-512.
        let nudge = i64x2_splat(1 << 30);
        let low = i64x2_shl(i64x2_add(i64x2_extmul_low_i32x4(total, self.mantissa), nudge), 1);
        let high = i64x2_shl(i64x2_add(i64x2_extmul_high_i32x4(total, self.mantissa), nudge), 1);
        let x = i32x4_shuffle::<1, 3, 5, 7>(low, high);
        // RoundingDivideByPOT: (x >> e) + (remainder > (mask >> 1) + (x < 0)).
        let remainder = v128_and(x, self.remainder_mask);
        let threshold = i32x4_sub(self.half_mask, i32x4_lt(x, i32x4_splat(0)));
        let shifted = match self.uniform_shift {
            Some(s) => i32x4_shr(x, s),
            None => shift_right_lanes(x, self.right_shift),
        };
        let q = i32x4_sub(shifted, i32x4_gt(remainder, threshold));
        // |q| ≤ 2^16 before adding the zero point gives the scalar saturating add's result once clamped.
        let q = i32x4_min(i32x4_max(q, i32x4_splat(-65536)), i32x4_splat(65536));
        let q = i32x4_add(q, i32x4_splat(range.zero_point));
        i32x4_min(i32x4_max(q, i32x4_splat(range.min)), i32x4_splat(range.max))
    }
}

/// Requantises one pixel's sums of the blocks `requants` describe into their channels of
/// `out` (that pixel's outputs): one 8-byte store for two whole blocks, else per block.
#[inline(always)]
fn store<const NB: usize>(
    requants: &[BlockRequant; NB],
    sums: &[v128; NB],
    channels: &Requant<'_>,
    range: OutputRange,
    out: &mut [i8],
) {
    if !requants[0].vector {
        for (requant, &sums) in requants.iter().zip(sums) {
            let totals = i32x4_add(sums, requant.bias);
            let totals = [
                i32x4_extract_lane::<0>(totals),
                i32x4_extract_lane::<1>(totals),
                i32x4_extract_lane::<2>(totals),
                i32x4_extract_lane::<3>(totals),
            ];
            let dst = &mut out[requant.base..requant.base + requant.valid];
            for ((d, &t), channel) in dst.iter_mut().zip(&totals).zip((requant.base..).map(|o| channels.channel(o))) {
                *d = requantize(t, channel.multiplier, range);
            }
        }
        return;
    }
    let q: [v128; NB] = core::array::from_fn(|n| requants[n].requantize(sums[n], range));
    if let ([first, last], [q0, q1]) = (requants.as_slice(), q.as_slice()) {
        if last.valid == LANES {
            // Consecutive whole blocks (`run` pairs them so): 8 channels in one store.
            let bytes = i8x16_narrow_i16x8(i16x8_narrow_i32x4(*q0, *q1), i16x8_narrow_i32x4(*q0, *q1));
            let eight: [i8; 8] = bytemuck::cast(i64x2_extract_lane::<0>(bytes));
            out[first.base..first.base + 8].copy_from_slice(&eight);
            return;
        }
    }
    for (requant, &q) in requants.iter().zip(&q) {
        let words = i16x8_narrow_i32x4(q, q);
        let four: [i8; 4] = bytemuck::cast(i32x4_extract_lane::<0>(i8x16_narrow_i16x8(words, words)));
        out[requant.base..requant.base + requant.valid].copy_from_slice(&four[..requant.valid]);
    }
}

/// Per-lane `x << s` (s in 0..=31): wasm shifts take one count for all lanes, so
/// compose shifts by 16, 8, 4, 2, 1, each applied to the lanes whose count has that bit.
#[inline(always)]
fn shift_left_lanes(x: v128, s: v128) -> v128 {
    let mut x = x;
    for bit in [16u32, 8, 4, 2, 1] {
        let on = i32x4_ne(v128_and(s, i32x4_splat(bit as i32)), i32x4_splat(0));
        x = v128_bitselect(i32x4_shl(x, bit), x, on);
    }
    x
}

/// Per-lane arithmetic `x >> s` (s in 0..=31), as `shift_left_lanes`.
#[inline(always)]
fn shift_right_lanes(x: v128, s: v128) -> v128 {
    let mut x = x;
    for bit in [16u32, 8, 4, 2, 1] {
        let on = i32x4_ne(v128_and(s, i32x4_splat(bit as i32)), i32x4_splat(0));
        x = v128_bitselect(i32x4_shr(x, bit), x, on);
    }
    x
}
