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
use super::winograd::{self, CHANNEL_STEP, TILE_TAPS};
use super::{depthwise, padded, Conv2dGeometry};
use crate::spec::fixed_point::{requantize, Multiplier, OutputRange, Requant};

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
/// simd128 with Winograd F(2×2, 3×3) on the convolutions `winograd::suits` (the
/// direct simd128 kernel on the others): `i32x4.dot_i16x8_s` on transformed tiles.
pub const SIMD128_WINOGRAD: Microkernel = SIMD128.with_winograd("simd128-winograd");
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
        Some(SIMD128_WINOGRAD) if !packed.winograd.is_empty() => {
            winograd_conv2d(geometry, input, input_zero_point, packed, channels, range, output)
        }
        #[cfg(target_feature = "relaxed-simd")]
        Some(RELAXED) => conv2d_with::<Relaxed, 1>(geometry, input, input_zero_point, packed, channels, range, output),
        Some(SIMD128 | SIMD128_WINOGRAD) => {
            conv2d_with::<Simd128, 2>(geometry, input, input_zero_point, packed, channels, range, output)
        }
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
        Some(SIMD128 | SIMD128_WINOGRAD) => {
            dense_with::<Simd128, 2>(input, input_zero_point, packed, channels, range, output)
        }
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

/// Transformed input tiles held at once (i16 elements): 32 KiB on the stack.
const WINOGRAD_TILES_MAX: usize = 16 * 1024;

/// Winograd F(2×2, 3×3) (`kernels::winograd`) on a layer packed for it; false
/// (and nothing written) if it does not suit. Per chunk of 2×2 output tiles: the
/// input tiles transformed once (i16x8, 8 channels a vector), then per pair of
/// channel blocks and tile (2 blocks: the most V8's 16 vector registers hold; 1 and
/// 4 measured slower), the 16 tile taps' dot products over the channel pairs,
/// folded into the 2×2 outputs as they come (Aᵀ M A), exact-divided by 4, requantised.
fn winograd_conv2d(
    g: &Conv2dGeometry,
    input: &[i8],
    zp: i32,
    packed: &PackedWeights,
    channels: &Requant<'_>,
    range: OutputRange,
    output: &mut [i8],
) -> bool {
    let (in_c, out_c) = (g.input.c, g.output.c);
    let padded_c = winograd::padded_channels(in_c);
    // The layer's blocks of 4 channels; the weights hold an even count (`winograd::blocks`).
    let (blocks, weight_blocks) = (out_c.div_ceil(LANES), winograd::blocks(out_c, LANES));
    let (tiles_h, tiles_w) = (g.output.h.div_ceil(2), g.output.w.div_ceil(2));
    // The padded plane covers every tile's 4×4 window: 2·tiles + 2 rows and columns.
    let (plane_h, plane_w) = (2 * tiles_h + 2, 2 * tiles_w + 2);
    if !winograd::computes(g)
        || packed.out_channels != out_c
        || channels.len() != out_c
        || packed.input_zero_point != zp
        || packed.winograd.len() != winograd::weights_len(out_c, in_c, LANES)
        || [packed.bias, packed.mantissa, packed.right_shift].iter().any(|v| v.len() != blocks * LANES)
        || plane_h * plane_w * padded_c > IMAGE_MAX
        || TILE_TAPS * padded_c > WINOGRAD_TILES_MAX
        || input.len() < g.input.len()
        || output.len() < g.output.len()
    {
        return false;
    }
    let mut storage = [const { MaybeUninit::<i16>::uninit() }; IMAGE_MAX];
    let plane = &mut storage[..plane_h * plane_w * padded_c];
    for slot in plane.iter_mut() {
        slot.write(0);
    }
    // SAFETY: every element of `plane` was written just above; MaybeUninit<i16> has i16's layout.
    let plane = unsafe { &mut *(plane as *mut [MaybeUninit<i16>] as *mut [i16]) };
    // x − zp at (y + pad_top, x + pad_left); rows and columns past the plane are never read.
    for (y, row) in
        input.chunks_exact(g.input.w * in_c).take(g.input.h.min(plane_h - g.pad_top.min(plane_h))).enumerate()
    {
        let columns = g.input.w.min(plane_w.saturating_sub(g.pad_left));
        for (x, pixel) in row.chunks_exact(in_c).take(columns).enumerate() {
            let dst = &mut plane[((y + g.pad_top) * plane_w + x + g.pad_left) * padded_c..][..in_c];
            for (d, &v) in dst.iter_mut().zip(pixel) {
                *d = (i32::from(v) - zp) as i16; // |x − zp| ≤ 255
            }
        }
    }
    let mut tiles = [0i16; WINOGRAD_TILES_MAX];
    let chunk = WINOGRAD_TILES_MAX / (TILE_TAPS * padded_c);
    let layer = WinogradLayer { g, packed, channels, range, padded_c, weight_blocks, tiles_w };
    let count = tiles_h * tiles_w;
    let mut first = 0;
    while first < count {
        let n = chunk.min(count - first);
        for k in 0..n {
            let tile = first + k;
            let corner = (2 * (tile / tiles_w) * plane_w + 2 * (tile % tiles_w)) * padded_c;
            transform_tile(
                &plane[corner..],
                plane_w * padded_c,
                padded_c,
                &mut tiles[k * TILE_TAPS * padded_c..][..TILE_TAPS * padded_c],
            );
        }
        // Two blocks a step; past an odd count, the second is the weights' zero block,
        // whose outputs `store` leaves out (its channels start at or past out_c: none valid).
        for block in (0..blocks).step_by(2) {
            layer.column(&tiles, first, n, block, output);
        }
        first += n;
    }
    true
}

/// Bᵀ applied to four vectors of eight i16 channels (|result| ≤ 1020: no overflow).
#[inline(always)]
fn input_step([a, b, c, d]: [v128; 4]) -> [v128; 4] {
    [i16x8_sub(a, c), i16x8_add(b, c), i16x8_sub(c, b), i16x8_sub(b, d)]
}

/// Bᵀ d B of the 4×4 window at the front of `window` (rows `row_stride` apart, pixels
/// `channels` apart) into `tile`, `[tap][channel]`.
#[inline(always)]
fn transform_tile(window: &[i16], row_stride: usize, channels: usize, tile: &mut [i16]) {
    // Bounds, checked once: the caller passes a window whose 4×4 pixels lie inside
    // the plane (2·tiles + 2 rows and columns cover every tile's window) and a tile
    // of 16·channels elements, so this cannot fire.
    assert!(window.len() >= 3 * row_stride + 4 * channels && tile.len() >= TILE_TAPS * channels);
    for c in (0..channels).step_by(CHANNEL_STEP) {
        // SAFETY: c + 8 ≤ channels (a multiple of 8), so every load lies in the window checked above.
        let d: [[v128; 4]; 4] = core::array::from_fn(|r| {
            core::array::from_fn(|s| unsafe {
                v128_load(window.as_ptr().add(r * row_stride + s * channels + c).cast())
            })
        });
        // Bᵀ along each row, then along each column.
        let v = winograd::transpose(winograd::transpose(d.map(input_step)).map(input_step));
        for (r, v) in v.iter().enumerate() {
            for (s, &v) in v.iter().enumerate() {
                // SAFETY: (4r + s)·channels + c + 8 ≤ 16·channels ≤ tile.len() (checked above).
                unsafe { v128_store(tile.as_mut_ptr().add((4 * r + s) * channels + c).cast(), v) };
            }
        }
    }
}

/// What the Winograd tile loops of one layer share.
struct WinogradLayer<'a> {
    g: &'a Conv2dGeometry,
    packed: &'a PackedWeights<'a>,
    channels: &'a Requant<'a>,
    range: OutputRange,
    padded_c: usize,
    /// Blocks the transformed weights hold (even).
    weight_blocks: usize,
    tiles_w: usize,
}

impl WinogradLayer<'_> {
    /// Blocks `block..block + NB` (block even) of the `n` tiles from tile `first`, whose
    /// transformed inputs `tiles` holds.
    #[inline(always)]
    fn column(&self, tiles: &[i16], first: usize, n: usize, block: usize, output: &mut [i8]) {
        const NB: usize = 2;
        let (g, out_c, padded_c) = (self.g, self.g.output.c, self.padded_c);
        let requants: [BlockRequant; NB] = core::array::from_fn(|k| BlockRequant::load(self.packed, block + k));
        let pairs = padded_c / 2;
        // Per tile tap, the blocks' weights: [tap][block][pair][lane][2].
        let tap_stride = self.weight_blocks * pairs * 2 * LANES;
        let block_stride = pairs * 2 * LANES;
        // Bounds for the unchecked loads in `tap_sums`: the last tap's last block, and the
        // tiles. Cannot fire: the weights are 16·weight_blocks·block_stride long (checked
        // by `winograd_conv2d`), block is even and below weight_blocks (even), so
        // block + 2 ≤ weight_blocks, and n ≤ the chunk `tiles` holds.
        let weights = &self.packed.winograd[block * block_stride..];
        assert!(weights.len() >= 15 * tap_stride + NB * block_stride && tiles.len() >= n * TILE_TAPS * padded_c);
        for k in 0..n {
            let tile = &tiles[k * TILE_TAPS * padded_c..];
            // y[i][j]: the 2×2 outputs' 4·sums, built up row of taps by row (Aᵀ M A).
            let mut y = [[[i32x4_splat(0); NB]; 2]; 2];
            for r in 0..4 {
                let mut row = [[i32x4_splat(0); NB]; 2];
                for s in 0..4 {
                    let tap = 4 * r + s;
                    // SAFETY: the asserts above cover tap ≤ 15 and the tile's 16·padded_c elements.
                    let m = unsafe {
                        tap_sums::<NB>(
                            tile.as_ptr().add(tap * padded_c),
                            weights.as_ptr().add(tap * tap_stride),
                            pairs,
                            block_stride,
                        )
                    };
                    // Aᵀ's columns: tap column 0 → (1, 0), 1 → (1, 1), 2 → (1, −1), 3 → (0, −1).
                    for (acc, m) in row[0].iter_mut().zip(&m).filter(|_| s < 3) {
                        *acc = i32x4_add(*acc, *m);
                    }
                    for (acc, m) in row[1].iter_mut().zip(&m).filter(|_| s > 0) {
                        *acc = if s == 1 { i32x4_add(*acc, *m) } else { i32x4_sub(*acc, *m) };
                    }
                }
                for j in 0..2 {
                    for n in 0..NB {
                        if r < 3 {
                            y[0][j][n] = i32x4_add(y[0][j][n], row[j][n]);
                        }
                        if r > 0 {
                            y[1][j][n] = if r == 1 {
                                i32x4_add(y[1][j][n], row[j][n])
                            } else {
                                i32x4_sub(y[1][j][n], row[j][n])
                            };
                        }
                    }
                }
            }
            let tile_index = first + k;
            let (ty, tx) = (2 * (tile_index / self.tiles_w), 2 * (tile_index % self.tiles_w));
            for (i, y) in y.iter().enumerate() {
                for (j, sums) in y.iter().enumerate() {
                    let (oy, ox) = (ty + i, tx + j);
                    if oy < g.output.h && ox < g.output.w {
                        // Exact division: each lane is 4·Σ w·(x − zp) (kernels::winograd).
                        let sums = sums.map(|s| i32x4_shr(s, 2));
                        store(
                            &requants,
                            &sums,
                            self.channels,
                            self.range,
                            &mut output[(oy * g.output.w + ox) * out_c..][..out_c],
                        );
                    }
                }
            }
        }
    }
}

/// One tile tap's sums over the channel pairs for `NB` blocks: Σ dot(tile pair, weights).
///
/// # Safety
/// `pairs` is a multiple of 4; `tile` has `2·pairs` readable elements; `weights` has
/// `NB·block_stride` (≥ 8·pairs each).
#[inline(always)]
unsafe fn tap_sums<const NB: usize>(
    tile: *const i16,
    weights: *const i16,
    pairs: usize,
    block_stride: usize,
) -> [v128; NB] {
    let mut acc = [i32x4_splat(0); NB];
    // Four pairs (8 channels: one vector of the tile) a step; pairs is a multiple of 4.
    for p in (0..pairs).step_by(4) {
        // SAFETY: p + 4 ≤ pairs (the caller's contract).
        let x = unsafe { v128_load(tile.add(2 * p).cast()) };
        let broadcast = [
            i32x4_shuffle::<0, 0, 0, 0>(x, x),
            i32x4_shuffle::<1, 1, 1, 1>(x, x),
            i32x4_shuffle::<2, 2, 2, 2>(x, x),
            i32x4_shuffle::<3, 3, 3, 3>(x, x),
        ];
        for (k, x) in broadcast.into_iter().enumerate() {
            for (n, a) in acc.iter_mut().enumerate() {
                let w = unsafe { v128_load(weights.add(n * block_stride + 2 * LANES * (p + k)).cast()) };
                *a = i32x4_add(*a, i32x4_dot_i16x8(x, w));
            }
        }
    }
    acc
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
    /// Else, when every lane's right shift e is at least 1: 2^(31 − e) per lane, by which
    /// `requantize` multiplies instead of shifting (simd128 has no per-lane shifts).
    shift_factor: Option<v128>,
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
        let lane_shifts: [i32; LANES] =
            core::array::from_fn(|i| packed.right_shift.get(base + i).copied().unwrap_or(1));
        let shift_factor = lane_shifts.iter().all(|e| (1..=31).contains(e)).then(|| {
            let [a, b, c, d] = lane_shifts.map(|e| 1i32 << (31 - e));
            i32x4(a, b, c, d)
        });
        BlockRequant {
            base,
            // 0 for the Winograd weights' zero block past the layer's channels.
            valid: LANES.min(packed.out_channels.saturating_sub(base)),
            vector: packed.vector_requant,
            bias: load(packed.bias),
            mantissa: load(packed.mantissa),
            right_shift,
            uniform_shift,
            shift_factor,
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
        let shifted = match (self.uniform_shift, self.shift_factor) {
            (Some(s), _) => i32x4_shr(x, s),
            // x >> e = the high word of x·2^(32 − e): x·2^(31 − e) exactly in 64 bits
            // (|x| < 2^31, e ≥ 1: below 2^61), doubled as above (below 2^62, no overflow);
            // the high word of a two's complement i64 is its floor division by 2^32.
            (None, Some(factor)) => {
                let low = i64x2_shl(i64x2_extmul_low_i32x4(x, factor), 1);
                let high = i64x2_shl(i64x2_extmul_high_i32x4(x, factor), 1);
                i32x4_shuffle::<1, 3, 5, 7>(low, high)
            }
            (None, None) => shift_right_lanes(x, self.right_shift),
        };
        let q = i32x4_sub(shifted, i32x4_gt(remainder, threshold));
        // Clamped before the zero point is added (`OutputRange::bounds_before_zero_point`).
        let (low, high) = range.bounds_before_zero_point();
        i32x4_add(i32x4_min(i32x4_max(q, i32x4_splat(low)), i32x4_splat(high)), i32x4_splat(range.zero_point))
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
        for (requant, &sums) in requants.iter().zip(sums).filter(|(requant, _)| requant.valid > 0) {
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
    for (requant, &q) in requants.iter().zip(&q).filter(|(requant, _)| requant.valid > 0) {
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

/// `multiplier.apply` on four lanes, for a multiplier < 1 (mantissa ≥ 0, right shift 0..=31):
/// SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT.
#[inline(always)]
fn apply_lanes(x: v128, multiplier: Multiplier) -> v128 {
    let mantissa = i32x4_splat(multiplier.mantissa);
    let right_shift = multiplier.shift.unsigned_abs().min(31);
    // As `BlockRequant::requantize`: the high word of (x·m + 2^30) << 1.
    let nudge = i64x2_splat(1 << 30);
    let low = i64x2_shl(i64x2_add(i64x2_extmul_low_i32x4(x, mantissa), nudge), 1);
    let high = i64x2_shl(i64x2_add(i64x2_extmul_high_i32x4(x, mantissa), nudge), 1);
    let x = i32x4_shuffle::<1, 3, 5, 7>(low, high);
    let mask = ((1u32 << right_shift) - 1) as i32;
    let remainder = v128_and(x, i32x4_splat(mask));
    let threshold = i32x4_sub(i32x4_splat(mask >> 1), i32x4_lt(x, i32x4_splat(0)));
    i32x4_sub(i32x4_shr(x, right_shift), i32x4_gt(remainder, threshold))
}

/// `out[i] = clamp(zp + multiplier.apply(sums[i]))` for a multiplier < 1 (the caller
/// checks), four lanes at a time: the add's output stage.
pub(crate) fn requantize_sums(sums: &[i32], multiplier: Multiplier, range: OutputRange, out: &mut [i8]) {
    let (low, high) = range.bounds_before_zero_point();
    let (zero_point, low, high) = (i32x4_splat(range.zero_point), i32x4_splat(low), i32x4_splat(high));
    let mut sums = sums.chunks_exact(4);
    let mut outs = out.chunks_exact_mut(4);
    for (sum, out) in (&mut sums).zip(&mut outs) {
        let q = apply_lanes(i32x4(sum[0], sum[1], sum[2], sum[3]), multiplier);
        // Clamped before the zero point is added (`OutputRange::bounds_before_zero_point`).
        let q = i32x4_add(i32x4_min(i32x4_max(q, low), high), zero_point);
        let words = i16x8_narrow_i32x4(q, q);
        let four: [i8; 4] = bytemuck::cast(i32x4_extract_lane::<0>(i8x16_narrow_i16x8(words, words)));
        out.copy_from_slice(&four);
    }
    for (o, &sum) in outs.into_remainder().iter_mut().zip(sums.remainder()) {
        *o = requantize(sum, multiplier, range);
    }
}

/// A depthwise convolution with one output channel per input channel. A window wholly
/// inside the input, 8 channels a step: its taps in pairs, each pair's bytes
/// interleaved, widened to i16 minus the zero point, one `i32x4.dot_i16x8_s` per 4
/// channels. Other windows, 4 channels a vector: per tap, 4 input bytes widened to
/// i32 lanes minus the zero point, times the tap's weights (`i32x4.mul`). Then
/// requantised as the microkernels do. False, writing nothing, for a layer it does
/// not take (`depthwise::takes`: a depth multiplier, channels not a multiple of 4, a
/// window over 7×7, a multiplier ≥ 1). The sums are the reference's (exact integer
/// arithmetic, the loader's limits).
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
    let zero_point = i32x4_splat(zp);
    // x − zp as i16 (|x − zp| ≤ 255 for the loader's zero points, −128..=127).
    let zero_point16 = i16x8_splat(zp as i16);
    // The block's weights, i32 and tap-major: 64 × 49 × 4 B = 12.5 KB.
    let mut tap_major = [0i32; depthwise::BLOCK * depthwise::TAPS_MAX];
    // Taps in pairs for `i32x4.dot_i16x8_s`: [pair][channel][tap in pair] (a last odd tap
    // paired with a zero weight), and each tap's offset in the input from its window's
    // first pixel (the zero-weight tap reads the first tap again).
    let mut paired = [0i16; depthwise::BLOCK * (depthwise::TAPS_MAX + 1)];
    let pairs = taps.div_ceil(2);
    let dilation = g.dilation.max(1);
    let offsets: [usize; depthwise::TAPS_MAX + 1] = core::array::from_fn(|t| {
        let t = if t < taps { t } else { 0 };
        ((t / g.kernel_w) * dilation * g.input.w + (t % g.kernel_w) * dilation) * c
    });
    for start in (0..c).step_by(depthwise::BLOCK) {
        let n = depthwise::BLOCK.min(c - start); // a multiple of 4
        for j in 0..n {
            for tap in 0..taps {
                let w = weights[(start + j) * taps + tap];
                tap_major[tap * depthwise::BLOCK + j] = i32::from(w);
                paired[((tap / 2) * depthwise::BLOCK + j) * 2 + tap % 2] = i16::from(w);
            }
            if taps % 2 == 1 {
                paired[((taps / 2) * depthwise::BLOCK + j) * 2 + 1] = 0;
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
                if (ky0, ky1, kx0, kx1) == (0, g.kernel_h, 0, g.kernel_w) && n.is_multiple_of(2 * LANES) {
                    // The whole window inside the input: taps in pairs, 8 channels a step.
                    let window = (g.source_row(oy, 0) * g.input.w + g.source_col(ox, 0)) * c + start;
                    for (octet, requant_pair) in requants.as_chunks::<2>().0.iter().enumerate().take(n / (2 * LANES)) {
                        let base = window + octet * 2 * LANES;
                        let (mut low, mut high) = (i32x4_splat(0), i32x4_splat(0));
                        for pair in 0..pairs {
                            let w = (pair * depthwise::BLOCK + octet * 2 * LANES) * 2;
                            // SAFETY: every tap of the window lies inside the input, and 8 bytes
                            // from each are this octet's channels; w + 16 ≤ 50 × 64 × 2.
                            let (a, b, w_low, w_high) = unsafe {
                                (
                                    v128_load64_zero(input.as_ptr().add(base + offsets[2 * pair]).cast()),
                                    v128_load64_zero(input.as_ptr().add(base + offsets[2 * pair + 1]).cast()),
                                    v128_load(paired.as_ptr().add(w).cast()),
                                    v128_load(paired.as_ptr().add(w + 8).cast()),
                                )
                            };
                            // Channel k's two taps side by side: (a_k, b_k).
                            let ab = i8x16_shuffle::<0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23>(a, b);
                            let x_low = i16x8_sub(i16x8_extend_low_i8x16(ab), zero_point16);
                            let x_high = i16x8_sub(i16x8_extend_high_i8x16(ab), zero_point16);
                            low = i32x4_add(low, i32x4_dot_i16x8(x_low, w_low));
                            high = i32x4_add(high, i32x4_dot_i16x8(x_high, w_high));
                        }
                        store(requant_pair, &[low, high], channels, range, out);
                    }
                    continue;
                }
                for (block, requant) in requants.iter().enumerate().take(n / LANES) {
                    let mut acc = i32x4_splat(0);
                    for ky in ky0..ky1 {
                        let row = g.source_row(oy, ky) * g.input.w;
                        for kx in kx0..kx1 {
                            let first = (row + g.source_col(ox, kx)) * c + start + block * LANES;
                            let tap = (ky * g.kernel_w + kx) * depthwise::BLOCK + block * LANES;
                            // SAFETY: the window's taps lie inside the input (rows()/cols()) and
                            // first + 4 ≤ that pixel's channels; tap + 4 ≤ 49 × 64.
                            let (x, w) = unsafe {
                                (
                                    v128_load32_zero(input.as_ptr().add(first).cast()),
                                    v128_load(tap_major.as_ptr().add(tap).cast()),
                                )
                            };
                            let x = i32x4_sub(i32x4_extend_low_i16x8(i16x8_extend_low_i8x16(x)), zero_point);
                            acc = i32x4_add(acc, i32x4_mul(x, w));
                        }
                    }
                    // Every multiplier is < 1 (checked above): `store` takes its vector path.
                    store(core::array::from_ref(requant), &[acc], channels, range, out);
                }
            }
        }
    }
    true
}
