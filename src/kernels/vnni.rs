//! x86-64 VNNI microkernels for conv and dense.
//!
//! `vpdpbusd` adds, per i32 lane, the four products of unsigned bytes with
//! signed bytes, without intermediate saturation. Activations therefore enter
//! the patch as u = x + 128 (`x ^ 0x80`), padding as zero_point + 128 (the real
//! zero), and Σ w·(x − zp) = Σ w·u − (zp + 128)·Σ w: the row sums are packed
//! at load time. The i32 arithmetic wraps, so the result is the reference's
//! whenever the reference's own sum fits in i32, which the loader's limits
//! guarantee (|bias| ≤ 2^30, taps ≤ 2^15).
//!
//! A tile is 4 output pixels × 16 channels: 8 accumulators stay in registers;
//! per group of 4 taps it loads 2 weight vectors, broadcasts 4 patch words and
//! issues 8 `vpdpbusd` (256 multiply-adds). Requantisation runs on whole
//! vectors (gemmlowp's steps, lane by lane), the scalar code only for the rare
//! multiplier ≥ 1.

use core::arch::x86_64::*;

use super::dot::PATCH_MAX;
use super::packed::{Microkernel, PackedWeights};
use super::Conv2dGeometry;
use crate::quant::fixed_point::{requantize, ChannelRequant, OutputRange};

const LANES: usize = 8;
const GROUP: usize = 4;
/// Output pixels per tile.
const PIXELS: usize = 4;

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

/// Whether `packed` suits these kernels for a layer of `taps` × `out_channels`
/// (and the buffers its pointers walk have the lengths the packer gives them).
fn usable(packed: &PackedWeights, taps: usize, out_channels: usize, channels: &[ChannelRequant]) -> bool {
    let blocks = out_channels.div_ceil(LANES);
    matches!(packed.kernel, Some(Microkernel::AvxVnni | Microkernel::Avx512Vnni))
        && packed.taps == taps
        && packed.out_channels == out_channels
        && channels.len() == out_channels
        && packed.groups * GROUP <= PATCH_MAX
        && packed.groups == taps.div_ceil(GROUP)
        && packed.weights.len() == blocks * packed.groups * LANES * GROUP
        && [&packed.row_sums, &packed.bias, &packed.mantissa, &packed.right_shift]
            .iter()
            .all(|v| v.len() == blocks * LANES)
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
    let taps = g.kernel_h * g.kernel_w * g.input.c;
    if !usable(packed, taps, g.output.c, channels)
        || input.len() < g.input.len()
        || output.len() < g.output.len()
        || !(-128..=127).contains(&input_zero_point)
    {
        return false;
    }
    // SAFETY: `packed.kernel` is Some only for a microkernel `Microkernel::available()`
    // listed, i.e. whose CPU features were detected (PackedWeights::for_kernel).
    match packed.kernel {
        Some(Microkernel::AvxVnni) => unsafe {
            conv2d_avxvnni(g, input, input_zero_point, packed, channels, range, output)
        },
        Some(Microkernel::Avx512Vnni) => unsafe {
            conv2d_avx512vnni(g, input, input_zero_point, packed, channels, range, output)
        },
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
    if !usable(packed, input.len(), channels.len(), channels)
        || output.len() < channels.len()
        || !(-128..=127).contains(&input_zero_point)
    {
        return false;
    }
    // SAFETY: as in `conv2d`: the features of `packed.kernel` were detected.
    match packed.kernel {
        Some(Microkernel::AvxVnni) => unsafe {
            dense_avxvnni(input, input_zero_point, packed, range, channels, output)
        },
        Some(Microkernel::Avx512Vnni) => unsafe {
            dense_avx512vnni(input, input_zero_point, packed, range, channels, output)
        },
        _ => return false,
    }
    true
}

#[target_feature(enable = "avx2,avxvnni")]
unsafe fn conv2d_avxvnni(
    g: &Conv2dGeometry,
    input: &[i8],
    zp: i32,
    packed: &PackedWeights,
    channels: &[ChannelRequant],
    range: OutputRange,
    output: &mut [i8],
) {
    unsafe { conv2d_with::<AvxVnni>(g, input, zp, packed, channels, range, output) }
}

#[target_feature(enable = "avx2,avx512vnni,avx512vl")]
unsafe fn conv2d_avx512vnni(
    g: &Conv2dGeometry,
    input: &[i8],
    zp: i32,
    packed: &PackedWeights,
    channels: &[ChannelRequant],
    range: OutputRange,
    output: &mut [i8],
) {
    unsafe { conv2d_with::<Avx512Vnni>(g, input, zp, packed, channels, range, output) }
}

#[target_feature(enable = "avx2,avxvnni")]
unsafe fn dense_avxvnni(
    input: &[i8],
    zp: i32,
    packed: &PackedWeights,
    range: OutputRange,
    channels: &[ChannelRequant],
    output: &mut [i8],
) {
    unsafe { dense_with::<AvxVnni>(input, zp, packed, channels, range, output) }
}

#[target_feature(enable = "avx2,avx512vnni,avx512vl")]
unsafe fn dense_avx512vnni(
    input: &[i8],
    zp: i32,
    packed: &PackedWeights,
    range: OutputRange,
    channels: &[ChannelRequant],
    output: &mut [i8],
) {
    unsafe { dense_with::<Avx512Vnni>(input, zp, packed, channels, range, output) }
}

/// # Safety
/// The CPU supports `D`; `usable()` holds; input, output and zero point as `conv2d` checked.
#[inline(always)]
unsafe fn conv2d_with<D: DotBytes>(
    g: &Conv2dGeometry,
    input: &[i8],
    zp: i32,
    packed: &PackedWeights,
    channels: &[ChannelRequant],
    range: OutputRange,
    output: &mut [i8],
) {
    let patch_len = packed.groups * GROUP;
    let pad = (zp + 128) as u8; // zp ∈ [−128, 127] (checked)
    let mut patches = [0u8; PIXELS * PATCH_MAX];
    let pixels = g.output.h * g.output.w;
    let out_c = g.output.c;
    let mut first = 0;
    while first < pixels {
        let count = PIXELS.min(pixels - first);
        for (j, patch) in patches.chunks_exact_mut(patch_len).take(count).enumerate() {
            gather(g, input, pad, first + j, patch);
        }
        // Patches past `count` hold older pixels: their sums are computed, never stored.
        let out = &mut output[first * out_c..][..count * out_c];
        unsafe { tiles::<D, PIXELS>(&patches, patch_len, count, zp, packed, channels, range, out) };
        first += PIXELS;
    }
}

/// # Safety
/// As `conv2d_with`.
#[inline(always)]
unsafe fn dense_with<D: DotBytes>(
    input: &[i8],
    zp: i32,
    packed: &PackedWeights,
    channels: &[ChannelRequant],
    range: OutputRange,
    output: &mut [i8],
) {
    let mut patch = [0u8; PATCH_MAX];
    for (u, &x) in patch.iter_mut().zip(input) {
        *u = x as u8 ^ 0x80;
    }
    let patch_len = packed.groups * GROUP;
    unsafe { tiles::<D, 1>(&patch, patch_len, 1, zp, packed, channels, range, &mut output[..channels.len()]) };
}

/// Patch of output pixel `pixel` (raster order) as u8: `x ^ 0x80`, `pad` where the window leaves the input.
#[inline(always)]
fn gather(g: &Conv2dGeometry, input: &[i8], pad: u8, pixel: usize, patch: &mut [u8]) {
    let (oy, ox) = (pixel / g.output.w, pixel % g.output.w);
    let c = g.input.c;
    let (ky0, ky1) = g.taps(oy, g.kernel_h, g.input.h);
    let (kx0, kx1) = g.taps(ox, g.kernel_w, g.input.w);
    if ky0 > 0 || ky1 < g.kernel_h || kx0 > 0 || kx1 < g.kernel_w {
        patch[..g.kernel_h * g.kernel_w * c].fill(pad);
    }
    if kx0 == kx1 {
        return; // the window lies entirely in the padding
    }
    for ky in ky0..ky1 {
        // Taps kx0..kx1 of one kernel row are contiguous in H×W×C.
        let iy = g.source(oy, ky);
        let src = &input[(iy * g.input.w + g.source(ox, kx0)) * c..][..(kx1 - kx0) * c];
        let dst = &mut patch[(ky * g.kernel_w + kx0) * c..][..(kx1 - kx0) * c];
        for (u, &x) in dst.iter_mut().zip(src) {
            *u = x as u8 ^ 0x80;
        }
    }
}

/// All channel blocks of `P` pixels whose patches (`patch_len` bytes each) start `patches`;
/// writes the first `count` pixels' outputs (`count × out_channels` bytes of `out`).
///
/// # Safety
/// The CPU supports `D`; `usable()` holds; `patches` holds `P × patch_len` bytes.
#[allow(clippy::too_many_arguments)] // the layer's state, passed through to the tile loop
#[inline(always)]
unsafe fn tiles<D: DotBytes, const P: usize>(
    patches: &[u8],
    patch_len: usize,
    count: usize,
    zp: i32,
    packed: &PackedWeights,
    channels: &[ChannelRequant],
    range: OutputRange,
    out: &mut [i8],
) {
    let blocks = packed.out_channels.div_ceil(LANES);
    let requant = unsafe { Requant::new(zp, range) };
    let mut block = 0;
    while block < blocks {
        if block + 2 <= blocks {
            let acc = unsafe { tile::<D, P, 2>(patches, patch_len, packed, block) };
            for (p, pixel) in acc.iter().enumerate().take(count) {
                for (n, &sums) in pixel.iter().enumerate() {
                    unsafe { requant.store(sums, packed, channels, block + n, &mut out[p * packed.out_channels..]) };
                }
            }
            block += 2;
        } else {
            let acc = unsafe { tile::<D, P, 1>(patches, patch_len, packed, block) };
            for (p, pixel) in acc.iter().enumerate().take(count) {
                unsafe { requant.store(pixel[0], packed, channels, block, &mut out[p * packed.out_channels..]) };
            }
            block += 1;
        }
    }
}

/// The sums of blocks `block..block + NB` for `P` pixels.
///
/// # Safety
/// As `tiles`, and `block + NB` ≤ the number of blocks.
#[inline(always)]
unsafe fn tile<D: DotBytes, const P: usize, const NB: usize>(
    patches: &[u8],
    patch_len: usize,
    packed: &PackedWeights,
    block: usize,
) -> [[__m256i; NB]; P] {
    let groups = packed.groups;
    let block_bytes = groups * LANES * GROUP;
    // SAFETY (the loads below): `usable()` makes `packed.weights` blocks × block_bytes long and
    // block + NB ≤ blocks; each patch is patch_len = groups × 4 bytes inside `patches`.
    let weights = unsafe { packed.weights.as_ptr().add(block * block_bytes) };
    let x = patches.as_ptr();
    let mut acc = [[_mm256_setzero_si256(); NB]; P];
    for g in 0..groups {
        let mut w = [_mm256_setzero_si256(); NB];
        for (n, w) in w.iter_mut().enumerate() {
            *w = unsafe { _mm256_loadu_si256(weights.add(n * block_bytes + g * LANES * GROUP).cast()) };
        }
        for (p, acc) in acc.iter_mut().enumerate() {
            let word = unsafe { x.add(p * patch_len + g * GROUP).cast::<i32>().read_unaligned() };
            let u = _mm256_set1_epi32(word);
            for (a, &w) in acc.iter_mut().zip(&w) {
                *a = unsafe { D::dpbusd(*a, u, w) };
            }
        }
    }
    acc
}

/// The per-layer constants of requantisation, as vectors.
struct Requant {
    /// zp + 128: the weight of the row sums in the zero-point correction.
    input_offset: __m256i,
    zero_point: __m256i,
    min: __m256i,
    max: __m256i,
    range: OutputRange,
}

impl Requant {
    /// # Safety
    /// AVX.
    #[inline(always)]
    unsafe fn new(zp: i32, range: OutputRange) -> Requant {
        Requant {
            input_offset: _mm256_set1_epi32(zp + 128),
            zero_point: _mm256_set1_epi32(range.zero_point),
            min: _mm256_set1_epi32(range.min),
            max: _mm256_set1_epi32(range.max),
            range,
        }
    }

    /// Requantises block `block`'s sums and writes its (up to 8) valid channels to `out[block·8..]`.
    ///
    /// # Safety
    /// AVX2; `usable()` holds and `block` < blocks; `out` holds out_channels bytes.
    #[inline(always)]
    unsafe fn store(
        &self,
        sums: __m256i,
        packed: &PackedWeights,
        channels: &[ChannelRequant],
        block: usize,
        out: &mut [i8],
    ) {
        let base = block * LANES;
        let valid = LANES.min(packed.out_channels - base);
        let load = |v: &[i32]| unsafe { _mm256_loadu_si256(v.as_ptr().add(base).cast()) };
        // bias + Σ w·(x − zp), wrapping (see the module comment).
        let correction = _mm256_mullo_epi32(self.input_offset, load(&packed.row_sums));
        let total = _mm256_sub_epi32(_mm256_add_epi32(sums, load(&packed.bias)), correction);
        let mut bytes = [0i8; LANES];
        if packed.vector_requant {
            let q = unsafe { requantize_lanes(total, load(&packed.mantissa), load(&packed.right_shift)) };
            // |q| ≤ 2^16 before the zero point equals the scalar saturating add once clamped to int8.
            let q = _mm256_min_epi32(_mm256_max_epi32(q, _mm256_set1_epi32(-65536)), _mm256_set1_epi32(65536));
            let q = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(q, self.zero_point), self.min), self.max);
            let words = _mm256_packs_epi32(q, q); // per 128-bit half: q0..q3 twice (i16)
            let packed_bytes = _mm256_packs_epi16(words, words);
            let halves =
                _mm_unpacklo_epi32(_mm256_castsi256_si128(packed_bytes), _mm256_extracti128_si256::<1>(packed_bytes));
            unsafe { _mm_storel_epi64(bytes.as_mut_ptr().cast(), halves) };
        } else {
            let mut totals = [0i32; LANES];
            unsafe { _mm256_storeu_si256(totals.as_mut_ptr().cast(), total) };
            for ((b, &t), channel) in bytes.iter_mut().zip(&totals).zip(&channels[base..base + valid]) {
                *b = requantize(t, channel.multiplier, self.range);
            }
        }
        out[base..base + valid].copy_from_slice(&bytes[..valid]);
    }
}

/// gemmlowp's SaturatingRoundingDoublingHighMul then RoundingDivideByPOT, lane by lane,
/// for mantissas in [0, 2^31) (so the one saturating case, MIN·MIN, cannot occur) and right shifts 0..=31.
///
/// # Safety
/// AVX2.
#[inline(always)]
unsafe fn requantize_lanes(x: __m256i, mantissa: __m256i, right_shift: __m256i) -> __m256i {
    {
        // (x·m + 2^30) >> 31 from the 64-bit products of the even lanes and of the odd lanes:
        // bits 31..62 of each sum are the result; move them to the lane's half of the 64 bits.
        let nudge = _mm256_set1_epi64x(1 << 30);
        let even = _mm256_add_epi64(_mm256_mul_epi32(x, mantissa), nudge);
        let odd =
            _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64::<32>(x), _mm256_srli_epi64::<32>(mantissa)), nudge);
        let high = _mm256_blend_epi32::<0b1010_1010>(_mm256_srli_epi64::<31>(even), _mm256_slli_epi64::<1>(odd));
        // x / 2^e, ties away from zero: (x >> e) + (remainder > (mask >> 1) + (x < 0)).
        let one = _mm256_set1_epi32(1);
        let mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, right_shift), one);
        let remainder = _mm256_and_si256(high, mask);
        let negative = _mm256_cmpgt_epi32(_mm256_setzero_si256(), high);
        let threshold = _mm256_sub_epi32(_mm256_srli_epi32::<1>(mask), negative);
        _mm256_sub_epi32(_mm256_srav_epi32(high, right_shift), _mm256_cmpgt_epi32(remainder, threshold))
    }
}
