//! x86-64 VNNI microkernels for conv and dense.
//!
//! `vpdpbusd` adds, per i32 lane, the four products of unsigned bytes with
//! signed bytes, without intermediate saturation. The layer's input is first
//! copied, padded, as u = x + 128 (`x ^ 0x80`; the padding is zero_point + 128,
//! the real zero), so that every kernel row of every window is a contiguous
//! run of that copy: no per-pixel patches. Σ w·(x − zp) = Σ w·u − (zp + 128)·Σ w,
//! and the packer folded the second term into the bias. The i32 arithmetic
//! wraps, so the result is the reference's whenever the reference's own sum
//! fits in i32, which the loader's limits guarantee (|bias| ≤ 2^30, taps ≤ 2^15).
//!
//! A tile is 4 output pixels × 16 channels: 8 accumulators stay in registers;
//! per group of 4 taps it loads 2 weight vectors, broadcasts 4 input words and
//! issues 8 `vpdpbusd` (256 multiply-adds). Requantisation runs on whole
//! vectors (gemmlowp's steps, lane by lane), the scalar code only for the rare
//! multiplier ≥ 1.

use core::arch::x86_64::*;
use core::mem::MaybeUninit;

use super::dot::PATCH_MAX;
use super::packed::{Microkernel, PackedWeights};
use super::x86::requantize_lanes;
use super::Conv2dGeometry;
use crate::quant::fixed_point::{requantize, ChannelRequant, OutputRange};

const LANES: usize = 8;
const GROUP: usize = 4;
/// Output pixels per tile.
const PIXELS: usize = 4;
/// Largest padded input copy (bytes, on the stack); larger layers run the portable kernels.
const IMAGE_MAX: usize = 64 * 1024;

/// The one instruction the two encodings differ in.
trait DotBytes {
    /// acc + Σ over each lane's 4 bytes of u (unsigned) × w (signed).
    ///
    /// # Safety
    /// The CPU supports the instruction (the caller's `target_feature`).
    unsafe fn dpbusd(acc: __m256i, u: __m256i, w: __m256i) -> __m256i;
}

struct AvxVnni;
struct Avx512Vnni;

impl DotBytes for AvxVnni {
    #[inline(always)]
    unsafe fn dpbusd(acc: __m256i, u: __m256i, w: __m256i) -> __m256i {
        // SAFETY: only reached through `conv2d_avxvnni` / `dense_avxvnni` (avxvnni enabled).
        unsafe { _mm256_dpbusd_avx_epi32(acc, u, w) }
    }
}

impl DotBytes for Avx512Vnni {
    #[inline(always)]
    unsafe fn dpbusd(acc: __m256i, u: __m256i, w: __m256i) -> __m256i {
        // SAFETY: only reached through the `*_avx512vnni` entry points (avx512vnni + vl enabled).
        unsafe { _mm256_dpbusd_epi32(acc, u, w) }
    }
}

/// Whether `packed` suits these kernels for a layer of `rows` × `row_taps` taps
/// (and the buffers its pointers walk have the lengths the packer gives them).
fn usable(packed: &PackedWeights, rows: usize, row_taps: usize, channels: &[ChannelRequant], zp: i32) -> bool {
    let blocks = channels.len().div_ceil(LANES);
    matches!(packed.kernel, Some(Microkernel::AvxVnni | Microkernel::Avx512Vnni))
        && packed.rows == rows
        && packed.row_taps == row_taps
        && packed.row_groups == row_taps.div_ceil(GROUP)
        && packed.out_channels == channels.len()
        && packed.input_zero_point == zp
        && packed.weights.len() == blocks * packed.groups() * LANES * GROUP
        && [&packed.bias, &packed.mantissa, &packed.right_shift].iter().all(|v| v.len() == blocks * LANES)
}

/// Conv with VNNI; false (and nothing written) if `packed` is not for these
/// kernels or does not match the layer.
pub fn conv2d(
    geometry: &Conv2dGeometry,
    input: &[i8],
    input_zero_point: i32,
    packed: &PackedWeights,
    channels: &[ChannelRequant],
    range: OutputRange,
    output: &mut [i8],
) -> bool {
    let g = geometry;
    let (padded_h, padded_w) = (g.input.h + 2 * g.padding, g.input.w + 2 * g.padding);
    let windows_fit = !g.input.is_empty()
        && g.output.h > 0
        && g.output.w > 0
        && (g.output.h - 1) * g.stride + g.kernel_h <= padded_h
        && (g.output.w - 1) * g.stride + g.kernel_w <= padded_w;
    if !usable(packed, g.kernel_h, g.kernel_w * g.input.c, channels, input_zero_point)
        || g.output.c != channels.len()
        || !windows_fit
        || padded_h * padded_w * g.input.c + GROUP > IMAGE_MAX
        || input.len() < g.input.len()
        || output.len() < g.output.len()
    {
        return false;
    }
    // SAFETY: `packed.kernel` is Some only for a microkernel `Microkernel::available()`
    // listed, i.e. whose CPU features were detected (PackedWeights::for_kernel); the
    // other conditions of `conv2d_with` were checked above.
    match packed.kernel {
        Some(Microkernel::AvxVnni) => unsafe { conv2d_avxvnni(g, input, packed, channels, range, output) },
        Some(Microkernel::Avx512Vnni) => unsafe { conv2d_avx512vnni(g, input, packed, channels, range, output) },
        _ => return false,
    }
    true
}

/// Dense with VNNI; false (and nothing written) if `packed` does not suit.
pub fn dense(
    input: &[i8],
    input_zero_point: i32,
    packed: &PackedWeights,
    channels: &[ChannelRequant],
    range: OutputRange,
    output: &mut [i8],
) -> bool {
    if !usable(packed, 1, input.len(), channels, input_zero_point)
        || input.len() + GROUP > PATCH_MAX
        || output.len() < channels.len()
    {
        return false;
    }
    // SAFETY: as in `conv2d`.
    match packed.kernel {
        Some(Microkernel::AvxVnni) => unsafe { dense_avxvnni(input, packed, channels, range, output) },
        Some(Microkernel::Avx512Vnni) => unsafe { dense_avx512vnni(input, packed, channels, range, output) },
        _ => return false,
    }
    true
}

#[target_feature(enable = "avx2,avxvnni")]
unsafe fn conv2d_avxvnni(
    g: &Conv2dGeometry,
    input: &[i8],
    packed: &PackedWeights,
    channels: &[ChannelRequant],
    range: OutputRange,
    output: &mut [i8],
) {
    unsafe { conv2d_with::<AvxVnni>(g, input, packed, channels, range, output) }
}

#[target_feature(enable = "avx2,avx512vnni,avx512vl")]
unsafe fn conv2d_avx512vnni(
    g: &Conv2dGeometry,
    input: &[i8],
    packed: &PackedWeights,
    channels: &[ChannelRequant],
    range: OutputRange,
    output: &mut [i8],
) {
    unsafe { conv2d_with::<Avx512Vnni>(g, input, packed, channels, range, output) }
}

#[target_feature(enable = "avx2,avxvnni")]
unsafe fn dense_avxvnni(
    input: &[i8],
    packed: &PackedWeights,
    channels: &[ChannelRequant],
    range: OutputRange,
    output: &mut [i8],
) {
    unsafe { dense_with::<AvxVnni>(input, packed, channels, range, output) }
}

#[target_feature(enable = "avx2,avx512vnni,avx512vl")]
unsafe fn dense_avx512vnni(
    input: &[i8],
    packed: &PackedWeights,
    channels: &[ChannelRequant],
    range: OutputRange,
    output: &mut [i8],
) {
    unsafe { dense_with::<Avx512Vnni>(input, packed, channels, range, output) }
}

/// # Safety
/// The CPU supports `D`; everything `conv2d` checks holds.
#[inline(always)]
unsafe fn conv2d_with<D: DotBytes>(
    g: &Conv2dGeometry,
    input: &[i8],
    packed: &PackedWeights,
    channels: &[ChannelRequant],
    range: OutputRange,
    output: &mut [i8],
) {
    let c = g.input.c;
    let (padded_h, padded_w) = (g.input.h + 2 * g.padding, g.input.w + 2 * g.padding);
    // A window's last kernel row is read up to GROUP − 1 bytes past its end.
    let image_len = padded_h * padded_w * c + GROUP;
    let pad = (packed.input_zero_point + 128) as u8;
    let mut storage = MaybeUninit::<[u8; IMAGE_MAX]>::uninit();
    // SAFETY: image_len ≤ IMAGE_MAX (checked by `conv2d`); the bytes are written before
    // the slice is formed. (Uninitialised storage: filling 64 KiB per layer would cost
    // more than some layers.)
    let image = unsafe {
        let base = storage.as_mut_ptr().cast::<u8>();
        base.write_bytes(pad, image_len);
        core::slice::from_raw_parts_mut(base, image_len)
    };
    let row = g.input.w * c;
    for (y, src) in input.chunks_exact(row).take(g.input.h).enumerate() {
        let dst = &mut image[((y + g.padding) * padded_w + g.padding) * c..][..row];
        for (u, &x) in dst.iter_mut().zip(src) {
            *u = x as u8 ^ 0x80;
        }
    }

    let (out_w, pixels, out_c) = (g.output.w, g.output.h * g.output.w, g.output.c);
    let row_stride = padded_w * c;
    let mut first = 0;
    while first < pixels {
        let count = PIXELS.min(pixels - first);
        // Past the last pixel, a tile repeats it: computed, never stored.
        let bases: [usize; PIXELS] = core::array::from_fn(|j| {
            let pixel = (first + j).min(pixels - 1);
            ((pixel / out_w) * g.stride * padded_w + (pixel % out_w) * g.stride) * c
        });
        let out = &mut output[first * out_c..][..count * out_c];
        unsafe { tiles::<D, PIXELS>(image, &bases, row_stride, count, packed, channels, range, out) };
        first += PIXELS;
    }
}

/// # Safety
/// The CPU supports `D`; everything `dense` checks holds.
#[inline(always)]
unsafe fn dense_with<D: DotBytes>(
    input: &[i8],
    packed: &PackedWeights,
    channels: &[ChannelRequant],
    range: OutputRange,
    output: &mut [i8],
) {
    let mut patch = [0u8; PATCH_MAX];
    for (u, &x) in patch.iter_mut().zip(input) {
        *u = x as u8 ^ 0x80;
    }
    let out = &mut output[..channels.len()];
    unsafe { tiles::<D, 1>(&patch, &[0], 0, 1, packed, channels, range, out) };
}

/// All channel blocks of the `P` pixels whose windows start at `image[bases[p]..]` (kernel
/// rows `row_stride` apart); writes the first `count` pixels' outputs to `out`.
///
/// # Safety
/// The CPU supports `D`; `usable()` holds; every window (rows × row_groups × 4 bytes
/// from its base) lies inside `image`.
#[allow(clippy::too_many_arguments)] // the layer's state, passed through to the tile loop
#[inline(always)]
unsafe fn tiles<D: DotBytes, const P: usize>(
    image: &[u8],
    bases: &[usize; P],
    row_stride: usize,
    count: usize,
    packed: &PackedWeights,
    channels: &[ChannelRequant],
    range: OutputRange,
    out: &mut [i8],
) {
    let out_c = packed.out_channels;
    let blocks = out_c.div_ceil(LANES);
    let mut block = 0;
    while block < blocks {
        if block + 2 <= blocks {
            let acc = unsafe { tile::<D, P, 2>(image, bases, row_stride, packed, block) };
            for n in 0..2 {
                let requant = unsafe { BlockRequant::load(packed, block + n, range) };
                for (p, sums) in acc.iter().enumerate().take(count) {
                    unsafe { requant.store(sums[n], channels, &mut out[p * out_c..][..out_c]) };
                }
            }
            block += 2;
        } else {
            let acc = unsafe { tile::<D, P, 1>(image, bases, row_stride, packed, block) };
            let requant = unsafe { BlockRequant::load(packed, block, range) };
            for (p, sums) in acc.iter().enumerate().take(count) {
                unsafe { requant.store(sums[0], channels, &mut out[p * out_c..][..out_c]) };
            }
            block += 1;
        }
    }
}

/// The sums of blocks `block..block + NB` for `P` windows.
///
/// # Safety
/// As `tiles`, and `block + NB` ≤ the number of blocks.
#[inline(always)]
unsafe fn tile<D: DotBytes, const P: usize, const NB: usize>(
    image: &[u8],
    bases: &[usize; P],
    row_stride: usize,
    packed: &PackedWeights,
    block: usize,
) -> [[__m256i; NB]; P] {
    const STEP: usize = LANES * GROUP; // weight bytes per group
    let block_bytes = packed.groups() * STEP;
    // SAFETY (the loads below): `usable()` makes `packed.weights` blocks × block_bytes long
    // and block + NB ≤ blocks; the windows lie inside `image` (the caller's contract).
    let mut weights = unsafe { packed.weights.as_ptr().add(block * block_bytes) };
    let mut acc = [[_mm256_setzero_si256(); NB]; P];
    for row in 0..packed.rows {
        let starts: [*const u8; P] =
            core::array::from_fn(|p| unsafe { image.as_ptr().add(bases[p] + row * row_stride) });
        for g in 0..packed.row_groups {
            let w: [__m256i; NB] =
                core::array::from_fn(|n| unsafe { _mm256_loadu_si256(weights.add(n * block_bytes).cast()) });
            for (acc, start) in acc.iter_mut().zip(&starts) {
                let u = _mm256_set1_epi32(unsafe { start.add(g * GROUP).cast::<i32>().read_unaligned() });
                for (a, &w) in acc.iter_mut().zip(&w) {
                    *a = unsafe { D::dpbusd(*a, u, w) };
                }
            }
            weights = unsafe { weights.add(STEP) };
        }
    }
    acc
}

/// One block's requantisation constants, as vectors.
struct BlockRequant {
    base: usize,
    valid: usize,
    vector: bool,
    bias: __m256i,
    mantissa: __m256i,
    right_shift: __m256i,
    zero_point: __m256i,
    min: __m256i,
    max: __m256i,
    range: OutputRange,
}

impl BlockRequant {
    /// # Safety
    /// AVX2; `usable()` holds and `block` < blocks.
    #[inline(always)]
    unsafe fn load(packed: &PackedWeights, block: usize, range: OutputRange) -> BlockRequant {
        let base = block * LANES;
        // SAFETY: the per-channel vectors are blocks × LANES long (`usable()`).
        let load = |v: &[i32]| unsafe { _mm256_loadu_si256(v.as_ptr().add(base).cast()) };
        BlockRequant {
            base,
            valid: LANES.min(packed.out_channels - base),
            vector: packed.vector_requant,
            bias: load(&packed.bias),
            mantissa: load(&packed.mantissa),
            right_shift: load(&packed.right_shift),
            zero_point: _mm256_set1_epi32(range.zero_point),
            min: _mm256_set1_epi32(range.min),
            max: _mm256_set1_epi32(range.max),
            range,
        }
    }

    /// Requantises one pixel's sums of this block into its channels of `out` (one pixel's outputs).
    ///
    /// # Safety
    /// AVX2; `out` and `channels` hold all the layer's channels.
    #[inline(always)]
    unsafe fn store(&self, sums: __m256i, channels: &[ChannelRequant], out: &mut [i8]) {
        let total = _mm256_add_epi32(sums, self.bias); // bias + Σ w·(x − zp), wrapping (see the module comment)
        let dst = &mut out[self.base..self.base + self.valid];
        if !self.vector {
            let mut totals = [0i32; LANES];
            unsafe { _mm256_storeu_si256(totals.as_mut_ptr().cast(), total) };
            for ((d, &t), channel) in dst.iter_mut().zip(&totals).zip(&channels[self.base..]) {
                *d = requantize(t, channel.multiplier, self.range);
            }
            return;
        }
        let q = unsafe { requantize_lanes(total, self.mantissa, self.right_shift) };
        // |q| ≤ 2^16 before adding the zero point gives the scalar saturating add's result once clamped.
        let q = _mm256_min_epi32(_mm256_max_epi32(q, _mm256_set1_epi32(-65536)), _mm256_set1_epi32(65536));
        let q = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(q, self.zero_point), self.min), self.max);
        let words = _mm256_packs_epi32(q, q); // per 128-bit half: its 4 values, twice (i16)
        let bytes = _mm256_packs_epi16(words, words);
        let eight = _mm_unpacklo_epi32(_mm256_castsi256_si128(bytes), _mm256_extracti128_si256::<1>(bytes));
        if self.valid == LANES {
            // SAFETY: dst is 8 bytes long; storel has no alignment requirement.
            unsafe { _mm_storel_epi64(dst.as_mut_ptr().cast(), eight) };
        } else {
            let mut all = [0i8; LANES];
            unsafe { _mm_storel_epi64(all.as_mut_ptr().cast(), eight) };
            dst.copy_from_slice(&all[..self.valid]);
        }
    }
}
