//! x86-64 VNNI microkernels for conv and dense, and an AVX2 depthwise convolution.
//!
//! `vpdpbusd` adds, per i32 lane, the four products of unsigned bytes with
//! signed bytes, without intermediate saturation. The layer's input is first
//! copied, padded, as u = x + 128 (`x ^ 0x80`; the padding is zero_point + 128,
//! the real zero), so that every kernel row of every window is a contiguous
//! run of that copy: no per-pixel patches. Σ w·(x − zp) = Σ w·u − (zp + 128)·Σ w,
//! and the packer folded the second term into the bias. The i32 arithmetic
//! wraps, so the result is the reference's whenever the reference's own sum
//! fits in i32, which the loader guarantees (`limits::bias_magnitude`).
//!
//! Two widths: AVX-512 VNNI on 512-bit vectors (16 channels a block; a tile of
//! 8 pixels × 2 blocks keeps 16 accumulators in the 32 registers) and AVX-VNNI
//! on 256-bit vectors (8 channels; 4 pixels × 2 blocks in 16 registers). Per
//! group of 4 taps a tile loads 2 weight vectors, broadcasts one input word per
//! pixel and issues P × 2 `vpdpbusd`. Requantisation runs 8 channels at a time
//! (gemmlowp's steps, lane by lane), the scalar code only for the rare
//! multiplier ≥ 1.

use core::arch::x86_64::*;
use core::mem::MaybeUninit;

use super::dot::PATCH_MAX;
use super::packed::{Microkernel, PackedWeights, WeightLayout};
use super::x86::requantize_lanes;
use super::{depthwise, padded, Conv2dGeometry};
use crate::spec::fixed_point::{requantize, OutputRange, Requant};

/// Channels a requantisation step handles (one 256-bit vector of i32).
const LANES: usize = 8;
const GROUP: usize = 4;
/// `vpdpbusd` (u8 × i8, 4 taps per i32 lane) on 256-bit vectors.
pub const AVX_VNNI: Microkernel =
    Microkernel::new("avx-vnni (256-bit)", WeightLayout::UnsignedDot, Ymm::CHANNELS, GROUP);
/// The same instruction on 512-bit vectors.
pub const AVX512_VNNI: Microkernel =
    Microkernel::new("avx512-vnni (512-bit)", WeightLayout::UnsignedDot, Zmm::CHANNELS, GROUP);
/// Largest padded input copy (bytes, on the stack); larger layers run the portable kernels.
const IMAGE_MAX: usize = 64 * 1024;

/// What the two widths differ in.
trait Width {
    /// A vector of i32 lanes, one output channel each.
    type V: Copy;
    /// Channels per vector (the packing's block).
    const CHANNELS: usize;

    /// # Safety (all methods)
    /// The CPU supports the width's instructions (the caller's `target_feature`);
    /// `load` reads CHANNELS × 4 bytes at `p`.
    unsafe fn zero() -> Self::V;
    unsafe fn load(p: *const i8) -> Self::V;
    unsafe fn splat(word: i32) -> Self::V;
    /// acc + Σ over each lane's 4 bytes of u (unsigned) × w (signed).
    unsafe fn dpbusd(acc: Self::V, u: Self::V, w: Self::V) -> Self::V;
    /// Channels `8·part..8·part + 8` of the vector.
    unsafe fn octet(v: Self::V, part: usize) -> __m256i;
    /// The vector as 512 bits (only called when CHANNELS is 16).
    unsafe fn whole(v: Self::V) -> __m512i;
}

struct Ymm;
struct Zmm;

impl Width for Ymm {
    type V = __m256i;
    const CHANNELS: usize = 8;

    // SAFETY (every body): reached only through the `*_avxvnni` entry points (avx2, avxvnni enabled).
    #[inline(always)]
    unsafe fn zero() -> __m256i {
        _mm256_setzero_si256()
    }
    #[inline(always)]
    unsafe fn load(p: *const i8) -> __m256i {
        unsafe { _mm256_loadu_si256(p.cast()) }
    }
    #[inline(always)]
    unsafe fn splat(word: i32) -> __m256i {
        _mm256_set1_epi32(word)
    }
    #[inline(always)]
    unsafe fn dpbusd(acc: __m256i, u: __m256i, w: __m256i) -> __m256i {
        unsafe { _mm256_dpbusd_avx_epi32(acc, u, w) }
    }
    #[inline(always)]
    unsafe fn octet(v: __m256i, _part: usize) -> __m256i {
        v
    }
    #[inline(always)]
    unsafe fn whole(v: __m256i) -> __m512i {
        _mm512_castsi256_si512(v) // not reached: CHANNELS is 8
    }
}

impl Width for Zmm {
    type V = __m512i;
    const CHANNELS: usize = 16;

    // SAFETY (every body): reached only through the `*_avx512vnni` entry points (avx512f, bw, vl, vnni enabled).
    #[inline(always)]
    unsafe fn zero() -> __m512i {
        _mm512_setzero_si512()
    }
    #[inline(always)]
    unsafe fn load(p: *const i8) -> __m512i {
        unsafe { _mm512_loadu_si512(p.cast()) }
    }
    #[inline(always)]
    unsafe fn splat(word: i32) -> __m512i {
        _mm512_set1_epi32(word)
    }
    #[inline(always)]
    unsafe fn dpbusd(acc: __m512i, u: __m512i, w: __m512i) -> __m512i {
        unsafe { _mm512_dpbusd_epi32(acc, u, w) }
    }
    #[inline(always)]
    unsafe fn octet(v: __m512i, part: usize) -> __m256i {
        if part == 0 {
            _mm512_castsi512_si256(v)
        } else {
            _mm512_extracti64x4_epi64::<1>(v)
        }
    }
    #[inline(always)]
    unsafe fn whole(v: __m512i) -> __m512i {
        v
    }
}

/// Whether `packed` suits these kernels for a layer of `rows` × `row_taps` taps
/// (and the buffers its pointers walk have the lengths the packer gives them).
fn usable(packed: &PackedWeights, rows: usize, row_taps: usize, channels: &Requant<'_>, zp: i32) -> bool {
    packed
        .kernel
        .filter(|k| matches!(*k, AVX_VNNI | AVX512_VNNI))
        .is_some_and(|kernel| packed.fits_layer(kernel, rows, row_taps, channels, zp))
}

/// Conv with VNNI; false (and nothing written) if `packed` is not for these
/// kernels or does not match the layer.
pub fn conv2d(
    geometry: &Conv2dGeometry,
    input: &[i8],
    input_zero_point: i32,
    packed: &PackedWeights,
    channels: &Requant<'_>,
    range: OutputRange,
    output: &mut [i8],
) -> bool {
    let g = geometry;
    // Every window inside the padded copy, which fits the stack buffer (with the over-read of
    // a window's last kernel row, up to GROUP − 1 bytes past its end).
    let fits_buffer = g.padded_input(GROUP).is_some_and(|(_, _, len)| len <= IMAGE_MAX);
    if !usable(packed, g.kernel_h, g.kernel_w * g.input.c, channels, input_zero_point)
        || g.groups != 1
        || g.dilation != 1
        || g.output.c != channels.len()
        || !fits_buffer
        || input.len() < g.input.len()
        || output.len() < g.output.len()
    {
        return false;
    }
    // SAFETY: `packed.kernel` is Some only for a microkernel `Microkernel::available()`
    // listed, i.e. whose CPU features were detected (PackedWeights::for_kernel); the
    // other conditions of `conv2d_with` were checked above.
    match packed.kernel {
        Some(AVX_VNNI) => unsafe { conv2d_avxvnni(g, input, packed, channels, range, output) },
        Some(AVX512_VNNI) => unsafe { conv2d_avx512vnni(g, input, packed, channels, range, output) },
        _ => return false,
    }
    true
}

/// Dense with VNNI; false (and nothing written) if `packed` does not suit.
pub fn dense(
    input: &[i8],
    input_zero_point: i32,
    packed: &PackedWeights,
    channels: &Requant<'_>,
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
        Some(AVX_VNNI) => unsafe { dense_avxvnni(input, packed, channels, range, output) },
        Some(AVX512_VNNI) => unsafe { dense_avx512vnni(input, packed, channels, range, output) },
        _ => return false,
    }
    true
}

#[target_feature(enable = "avx2,avxvnni")]
unsafe fn conv2d_avxvnni(
    g: &Conv2dGeometry,
    input: &[i8],
    packed: &PackedWeights,
    channels: &Requant<'_>,
    range: OutputRange,
    output: &mut [i8],
) {
    unsafe { conv2d_with::<Ymm, 4>(g, input, packed, channels, range, output) }
}

#[target_feature(enable = "avx2,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn conv2d_avx512vnni(
    g: &Conv2dGeometry,
    input: &[i8],
    packed: &PackedWeights,
    channels: &Requant<'_>,
    range: OutputRange,
    output: &mut [i8],
) {
    // One block of 16 channels: 16 pixels a tile, so that 16 accumulators (not 8) hide
    // `vpdpbusd`'s latency.
    if packed.out_channels <= Zmm::CHANNELS {
        return unsafe { conv2d_with::<Zmm, 16>(g, input, packed, channels, range, output) };
    }
    unsafe { conv2d_with::<Zmm, 8>(g, input, packed, channels, range, output) }
}

#[target_feature(enable = "avx2,avxvnni")]
unsafe fn dense_avxvnni(
    input: &[i8],
    packed: &PackedWeights,
    channels: &Requant<'_>,
    range: OutputRange,
    output: &mut [i8],
) {
    unsafe { dense_with::<Ymm>(input, packed, channels, range, output) }
}

#[target_feature(enable = "avx2,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn dense_avx512vnni(
    input: &[i8],
    packed: &PackedWeights,
    channels: &Requant<'_>,
    range: OutputRange,
    output: &mut [i8],
) {
    unsafe { dense_with::<Zmm>(input, packed, channels, range, output) }
}

/// `P`: output pixels per tile.
///
/// # Safety
/// The CPU supports `W`; everything `conv2d` checks holds.
#[inline(always)]
unsafe fn conv2d_with<W: Width, const P: usize>(
    g: &Conv2dGeometry,
    input: &[i8],
    packed: &PackedWeights,
    channels: &Requant<'_>,
    range: OutputRange,
    output: &mut [i8],
) {
    let pad = (packed.input_zero_point + 128) as u8;
    // Uninitialised: filling 64 KiB per layer would cost more than some layers; `copy` writes
    // the part it returns.
    let mut storage = [const { MaybeUninit::<u8>::uninit() }; IMAGE_MAX];
    let Some((image, padded_w)) = padded::copy(g, input, GROUP, pad, |x| x as u8 ^ 0x80, &mut storage) else {
        return; // not reached: `conv2d` checked the geometry and the buffer size
    };
    // SAFETY (each): the caller's contract; `image` is the layer's padded copy.
    match (P, g.stride * g.input.c) {
        // Neighbouring windows of a 16-pixel tile lie `stride × channels` bytes apart: a
        // constant lets 16 window pointers be one pointer and 16 offsets. Sixteen pointers
        // held in registers spilled 6 of them, reloaded in the innermost loop (ResNet-8's
        // 16-channel layers, the MobileNet's first two).
        (16, 1) => unsafe { conv2d_tiles::<W, P, 1>(g, image, padded_w, packed, channels, range, output) },
        (16, 3) => unsafe { conv2d_tiles::<W, P, 3>(g, image, padded_w, packed, channels, range, output) },
        (16, 6) => unsafe { conv2d_tiles::<W, P, 6>(g, image, padded_w, packed, channels, range, output) },
        (16, 8) => unsafe { conv2d_tiles::<W, P, 8>(g, image, padded_w, packed, channels, range, output) },
        (16, 16) => unsafe { conv2d_tiles::<W, P, 16>(g, image, padded_w, packed, channels, range, output) },
        _ => unsafe { conv2d_tiles::<W, P, 0>(g, image, padded_w, packed, channels, range, output) },
    }
}

/// `conv2d_with`'s tile loop over the padded copy `image`. `D`, when not 0, is the bytes
/// between neighbouring windows of an output row (stride × input channels).
///
/// # Safety
/// As `conv2d_with`; `image` is its padded copy, `padded_w` wide.
#[inline(always)]
unsafe fn conv2d_tiles<W: Width, const P: usize, const D: usize>(
    g: &Conv2dGeometry,
    image: &[u8],
    padded_w: usize,
    packed: &PackedWeights,
    channels: &Requant<'_>,
    range: OutputRange,
    output: &mut [i8],
) {
    let (pixels, out_c) = (g.output.h * g.output.w, g.output.c);
    let row_stride = padded_w * g.input.c;
    // SAFETY: the caller's contract (the CPU supports `W`; `usable()` holds).
    let prepared = unsafe { PreparedRequant::new::<W>(packed, range) };
    let mut first = 0;
    while first < pixels {
        let count = P.min(pixels - first);
        let starts = padded::window_starts::<P>(g, padded_w, first);
        let out = &mut output[first * out_c..][..count * out_c];
        // SAFETY: the caller's contract, and each window lies inside `image` (`padded_input`,
        // whose slack covers the GROUP − 1 bytes of over-read).
        unsafe {
            // A whole tile in one output row: its windows are `D` bytes apart.
            if D != 0 && count == P && first % g.output.w + P <= g.output.w {
                tiles::<W, P, D>(image, &starts, row_stride, count, packed, &prepared, channels, range, out);
            } else {
                tiles::<W, P, 0>(image, &starts, row_stride, count, packed, &prepared, channels, range, out);
            }
        }
        first += P;
    }
}

/// # Safety
/// The CPU supports `W`; everything `dense` checks holds.
#[inline(always)]
unsafe fn dense_with<W: Width>(
    input: &[i8],
    packed: &PackedWeights,
    channels: &Requant<'_>,
    range: OutputRange,
    output: &mut [i8],
) {
    let mut patch = [0u8; PATCH_MAX];
    for (u, &x) in patch.iter_mut().zip(input) {
        *u = x as u8 ^ 0x80;
    }
    let out = &mut output[..channels.len()];
    unsafe { tiles::<W, 1, 0>(&patch, &[0], 0, 1, packed, &PreparedRequant::NONE, channels, range, out) };
}

/// All channel blocks of the `P` pixels whose windows start at `image[windows[p]..]` (kernel
/// rows `row_stride` apart); writes the first `count` pixels' outputs to `out`. `D`, when not
/// 0, is windows[p + 1] − windows[p] for every p.
///
/// # Safety
/// The CPU supports `W`; `usable()` holds; every window (rows × row_groups × 4 bytes
/// from its base) lies inside `image`.
#[allow(clippy::too_many_arguments)] // the layer's state, passed through to the tile loop
#[inline(always)]
unsafe fn tiles<W: Width, const P: usize, const D: usize>(
    image: &[u8],
    windows: &[usize; P],
    row_stride: usize,
    count: usize,
    packed: &PackedWeights,
    prepared: &PreparedRequant,
    channels: &Requant<'_>,
    range: OutputRange,
    out: &mut [i8],
) {
    let out_c = packed.out_channels;
    let blocks = out_c.div_ceil(W::CHANNELS);
    let mut block = 0;
    while block < blocks {
        if block + 2 <= blocks {
            let acc = unsafe { tile::<W, P, 2, D>(image, windows, row_stride, packed, block) };
            unsafe { store::<W, P, 2>(&acc, count, block, packed, prepared, channels, range, out) };
            block += 2;
        } else {
            let acc = unsafe { tile::<W, P, 1, D>(image, windows, row_stride, packed, block) };
            unsafe { store::<W, P, 1>(&acc, count, block, packed, prepared, channels, range, out) };
            block += 1;
        }
    }
}

/// Requantises the sums of blocks `block..block + NB` of the first `count` pixels into `out`.
///
/// # Safety
/// As `tiles`.
#[allow(clippy::too_many_arguments)] // the layer's state, passed through from the tile loop
#[inline(always)]
unsafe fn store<W: Width, const P: usize, const NB: usize>(
    acc: &[[W::V; NB]; P],
    count: usize,
    block: usize,
    packed: &PackedWeights,
    prepared: &PreparedRequant,
    channels: &Requant<'_>,
    range: OutputRange,
    out: &mut [i8],
) {
    let out_c = packed.out_channels;
    if W::CHANNELS == 16 && packed.one_add_rounding && out_c == LANES {
        // 8 channels (NB is 1): two pixels' sums in one vector, whose 16 bytes are both
        // pixels' outputs. The 8-lane steps per pixel cost this layer (the MobileNet's
        // first) as much as its products.
        let loaded;
        let requant = match prepared.get(0) {
            Some(requant) => requant,
            None => {
                loaded = unsafe { Requant16::load_pair(packed, range) };
                &loaded
            }
        };
        let mut p = 0;
        // SAFETY (each): AVX-512F (W is 512-bit); `out` holds `count` pixels of 8 bytes.
        while p + 2 <= count {
            let (a, b) = unsafe { (W::whole(acc[p][0]), W::whole(acc[p + 1][0])) };
            let pair = _mm512_inserti64x4::<1>(a, _mm512_castsi512_si256(b));
            unsafe { requant.store(pair, &mut out[p * LANES..][..2 * LANES]) };
            p += 2;
        }
        if p < count {
            let bytes = unsafe { requant.bytes(W::whole(acc[p][0])) };
            let out = &mut out[p * LANES..][..LANES];
            // storel: 8 bytes, no alignment requirement.
            unsafe { _mm_storel_epi64(out.as_mut_ptr().cast(), bytes) };
        }
        return;
    }
    for n in 0..NB {
        let first = (block + n) * W::CHANNELS;
        if W::CHANNELS == 16 && packed.one_add_rounding && first + 16 <= out_c {
            // A whole 512-bit block at once.
            let loaded;
            let requant = match prepared.get(block + n) {
                Some(requant) => requant,
                None => {
                    loaded = unsafe { Requant16::load(packed, first, range) };
                    &loaded
                }
            };
            for (p, sums) in acc.iter().enumerate().take(count) {
                unsafe { requant.store(W::whole(sums[n]), &mut out[p * out_c + first..][..16]) };
            }
            continue;
        }
        for part in 0..W::CHANNELS / LANES {
            let octet = first / LANES + part;
            if octet * LANES >= out_c {
                break; // padding channels of the last block
            }
            let requant = unsafe { BlockRequant::load(packed, octet, range) };
            for (p, sums) in acc.iter().enumerate().take(count) {
                unsafe { requant.store(W::octet(sums[n], part), channels, &mut out[p * out_c..][..out_c]) };
            }
        }
    }
}

/// The `Requant16` of a layer of exactly one block (16 channels), made once per layer
/// rather than once per tile: such 1×1 layers with few input channels spent a sixth of
/// their time making it. (Preparing every block of wider layers measured slower: their
/// tiles are long enough to hide the making.)
struct PreparedRequant(Option<Requant16>);

impl PreparedRequant {
    const NONE: PreparedRequant = PreparedRequant(None);

    /// For the 512-bit kernels, a layer of 16 channels, or of 8 (`Requant16::load_pair`),
    /// with `one_add_rounding`.
    ///
    /// # Safety
    /// The CPU supports `W`; `usable()` holds.
    #[inline(always)]
    unsafe fn new<W: Width>(packed: &PackedWeights, range: OutputRange) -> PreparedRequant {
        if W::CHANNELS != 16 || !packed.one_add_rounding {
            return PreparedRequant::NONE;
        }
        // SAFETY (both): AVX-512F (W is 512-bit); one whole block; `one_add_rounding`.
        match packed.out_channels {
            16 => PreparedRequant(Some(unsafe { Requant16::load(packed, 0, range) })),
            LANES => PreparedRequant(Some(unsafe { Requant16::load_pair(packed, range) })),
            _ => PreparedRequant::NONE,
        }
    }

    /// Block `block`'s constants, if prepared.
    #[inline(always)]
    fn get(&self, block: usize) -> Option<&Requant16> {
        self.0.as_ref().filter(|_| block == 0)
    }
}

/// 16 channels' requantisation constants (512-bit kernels), for channels that
/// `ChannelRequant::rounds_in_one_add` (every channel of every model seen so far; the
/// others take `BlockRequant`'s exact steps, 8 lanes at a time).
///
/// Its steps are counted: a 512-bit layer with few input channels spends most of its
/// time here, on the two vector ports (0 and 5) that 512-bit instructions share.
struct Requant16 {
    bias: __m512i,
    /// 2·mantissa − 2^32 as an i32 (a mantissa above 2^30 doubles past i32): the product
    /// x·(2m − 2^32) has x·2m's high word less x, and x is added back.
    doubled: __m512i,
    /// The odd lanes' `doubled`, moved to the even ones (`_mm512_mul_epi32` reads those).
    odd_doubled: __m512i,
    right_shift: __m512i,
    /// 2·(2^30 + 2^(s−1)·2^31) in 64-bit lanes, for the even channels and the odd ones: the
    /// rounding doubling high multiply's nudge and the rounding shift's half at once, doubled
    /// so that the high product lands in the high word of each 64-bit lane.
    nudge_even: __m512i,
    nudge_odd: __m512i,
    /// The lanes whose mantissa is not zero (a zero one's x·(2m − 2^32) is 0, not −x·2^32).
    nonzero: __mmask16,
    zero_point: __m512i,
    /// `OutputRange::bounds_before_zero_point`.
    low: __m512i,
    high: __m512i,
    /// The range is all of int8: the narrowing's saturation is the clamp.
    full_range: bool,
}

impl Requant16 {
    /// Channels `first..first + 16`.
    ///
    /// # Safety
    /// AVX-512F; `usable()` holds, first + 16 ≤ the padded channel count, and
    /// `packed.one_add_rounding`.
    #[inline(always)]
    unsafe fn load(packed: &PackedWeights, first: usize, range: OutputRange) -> Requant16 {
        // SAFETY: the per-channel vectors are padded to whole blocks of 16 (`usable()`).
        let load = |v: &[i32]| unsafe { _mm512_loadu_si512(v.as_ptr().add(first).cast()) };
        // SAFETY: AVX-512F (the caller's).
        unsafe { Self::from_vectors(load(packed.bias), load(packed.mantissa), load(packed.right_shift), range) }
    }

    /// Channels 0..8 twice, for two pixels of an 8-channel layer a vector.
    ///
    /// # Safety
    /// As `load`.
    #[inline(always)]
    unsafe fn load_pair(packed: &PackedWeights, range: OutputRange) -> Requant16 {
        // SAFETY: the per-channel vectors hold at least one block of 16 (`usable()`).
        let load = |v: &[i32]| unsafe { _mm512_broadcast_i64x4(_mm256_loadu_si256(v.as_ptr().cast())) };
        // SAFETY: AVX-512F (the caller's).
        unsafe { Self::from_vectors(load(packed.bias), load(packed.mantissa), load(packed.right_shift), range) }
    }

    /// # Safety
    /// AVX-512F; each lane's channel `rounds_in_one_add`.
    #[inline(always)]
    unsafe fn from_vectors(bias: __m512i, mantissa: __m512i, right_shift: __m512i, range: OutputRange) -> Requant16 {
        // 2·(2^30 + 2^(s−1)·2^31) = 2^31 + 2^(s + 31), s in 1..=31 (`rounds_in_one_add`).
        let nudge = |s: __m512i| {
            let half = _mm512_sllv_epi64(_mm512_set1_epi64(1), _mm512_add_epi64(s, _mm512_set1_epi64(31)));
            _mm512_add_epi64(half, _mm512_set1_epi64(1 << 31))
        };
        // Wrapping: 2m − 2^32 ≡ 2m (mod 2^32), which the shift gives.
        let doubled = _mm512_slli_epi32::<1>(mantissa);
        let (low, high) = range.bounds_before_zero_point();
        Requant16 {
            bias,
            doubled,
            odd_doubled: _mm512_srli_epi64::<32>(doubled),
            right_shift,
            nudge_even: nudge(_mm512_and_si512(right_shift, _mm512_set1_epi64(0xFFFF_FFFF))),
            nudge_odd: nudge(_mm512_srli_epi64::<32>(right_shift)),
            nonzero: _mm512_test_epi32_mask(mantissa, mantissa),
            zero_point: _mm512_set1_epi32(range.zero_point),
            low: _mm512_set1_epi32(low),
            high: _mm512_set1_epi32(high),
            full_range: range.min == -128 && range.max == 127,
        }
    }

    /// The 16 requantised lanes into `out`.
    ///
    /// # Safety
    /// AVX-512F; `out` is 16 bytes.
    #[inline(always)]
    unsafe fn store(&self, sums: __m512i, out: &mut [i8]) {
        // SAFETY: AVX-512F (the caller's); `out` is 16 bytes; storeu has no alignment requirement.
        unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), self.bytes(sums)) };
    }

    /// The 16 requantised lanes as bytes: gemmlowp's steps, the rounding right shift of
    /// the high product h as (h + 2^(s−1) − [x < 0]) >> s (`rounds_in_one_add`), where
    /// h + 2^(s−1) is the high word of 2·(x·m + 2^30 + 2^(s−1)·2^31).
    ///
    /// # Safety
    /// AVX-512F.
    #[inline(always)]
    unsafe fn bytes(&self, sums: __m512i) -> __m128i {
        let x = _mm512_add_epi32(sums, self.bias);
        // x·(2m − 2^32) + nudge: the high words hold h + 2^(s−1) − x (mod 2^32).
        let even = _mm512_add_epi64(_mm512_mul_epi32(x, self.doubled), self.nudge_even);
        let odd_x = _mm512_shuffle_epi32::<0xF5>(x); // lanes 1, 1, 3, 3, …: vpshufd runs on port 5
        let odd = _mm512_add_epi64(_mm512_mul_epi32(odd_x, self.odd_doubled), self.nudge_odd);
        // The high words of both, in lane order, with one `vpermt2d`.
        let high_words = _mm512_set_epi32(31, 15, 29, 13, 27, 11, 25, 9, 23, 7, 21, 5, 19, 3, 17, 1);
        let high = _mm512_permutex2var_epi32(even, high_words, odd);
        // + x − [x < 0], where the mantissa is not zero; inside an i32 (`rounds_in_one_add`).
        let x_less_sign = _mm512_add_epi32(x, _mm512_srai_epi32::<31>(x));
        let high = _mm512_mask_add_epi32(high, self.nonzero, high, x_less_sign);
        let q = _mm512_srav_epi32(high, self.right_shift);
        if self.full_range {
            // |q| < 2^31 / 2 (s ≥ 1), so adding the zero point cannot wrap.
            _mm512_cvtsepi32_epi8(_mm512_add_epi32(q, self.zero_point))
        } else {
            // Clamped before the zero point is added (`OutputRange::bounds_before_zero_point`).
            let q = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(q, self.low), self.high), self.zero_point);
            // The lanes are in [min, max] ⊂ [−128, 127], so truncating to bytes keeps them.
            _mm512_cvtepi32_epi8(q)
        }
    }
}

/// The sums of blocks `block..block + NB` for `P` windows (`D`: as in `tiles`).
///
/// # Safety
/// As `tiles`, and `block + NB` ≤ the number of blocks.
#[inline(always)]
unsafe fn tile<W: Width, const P: usize, const NB: usize, const D: usize>(
    image: &[u8],
    windows: &[usize; P],
    row_stride: usize,
    packed: &PackedWeights,
    block: usize,
) -> [[W::V; NB]; P] {
    let step = W::CHANNELS * GROUP; // weight bytes per group
    let block_bytes = packed.groups() * step;
    // SAFETY (the loads below): `usable()` makes `packed.weights` blocks × block_bytes long
    // and block + NB ≤ blocks; the windows lie inside `image` (the caller's contract).
    let mut weights = unsafe { packed.weights.as_ptr().add(block * block_bytes) };
    let mut acc = [[unsafe { W::zero() }; NB]; P];
    if D != 0 {
        // One pointer walks the first window's row; the others are constant offsets from it.
        for row in 0..packed.rows {
            let mut at = unsafe { image.as_ptr().add(windows[0] + row * row_stride) };
            for _ in 0..packed.row_groups {
                let w: [W::V; NB] = core::array::from_fn(|n| unsafe { W::load(weights.add(n * block_bytes)) });
                for (p, acc) in acc.iter_mut().enumerate() {
                    let u = unsafe { W::splat(at.add(p * D).cast::<i32>().read_unaligned()) };
                    for (a, &w) in acc.iter_mut().zip(&w) {
                        *a = unsafe { W::dpbusd(*a, u, w) };
                    }
                }
                weights = unsafe { weights.add(step) };
                at = unsafe { at.add(GROUP) };
            }
        }
        return acc;
    }
    for row in 0..packed.rows {
        let starts: [*const u8; P] =
            core::array::from_fn(|p| unsafe { image.as_ptr().add(windows[p] + row * row_stride) });
        for g in 0..packed.row_groups {
            let w: [W::V; NB] = core::array::from_fn(|n| unsafe { W::load(weights.add(n * block_bytes)) });
            for (acc, start) in acc.iter_mut().zip(&starts) {
                let u = unsafe { W::splat(start.add(g * GROUP).cast::<i32>().read_unaligned()) };
                for (a, &w) in acc.iter_mut().zip(&w) {
                    *a = unsafe { W::dpbusd(*a, u, w) };
                }
            }
            weights = unsafe { weights.add(step) };
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
    /// `OutputRange::bounds_before_zero_point`.
    low: __m256i,
    high: __m256i,
    range: OutputRange,
}

impl BlockRequant {
    /// Channels `8·octet..8·octet + 8` of the layer.
    ///
    /// # Safety
    /// AVX2; `usable()` holds and 8·octet < out_channels.
    #[inline(always)]
    unsafe fn load(packed: &PackedWeights, octet: usize, range: OutputRange) -> BlockRequant {
        let base = octet * LANES;
        // SAFETY: the per-channel vectors are padded to whole blocks of 8 or 16 (`usable()`).
        let load = |v: &[i32]| unsafe { _mm256_loadu_si256(v.as_ptr().add(base).cast()) };
        BlockRequant {
            base,
            valid: LANES.min(packed.out_channels - base),
            vector: packed.vector_requant,
            bias: load(packed.bias),
            mantissa: load(packed.mantissa),
            right_shift: load(packed.right_shift),
            zero_point: _mm256_set1_epi32(range.zero_point),
            low: _mm256_set1_epi32(range.bounds_before_zero_point().0),
            high: _mm256_set1_epi32(range.bounds_before_zero_point().1),
            range,
        }
    }

    /// Requantises one pixel's sums of this block into its channels of `out` (one pixel's outputs).
    ///
    /// # Safety
    /// AVX2; `out` and `channels` hold all the layer's channels.
    #[inline(always)]
    unsafe fn store(&self, sums: __m256i, channels: &Requant<'_>, out: &mut [i8]) {
        let total = _mm256_add_epi32(sums, self.bias); // bias + Σ w·(x − zp), wrapping (see the module comment)
        let dst = &mut out[self.base..self.base + self.valid];
        if !self.vector {
            let mut totals = [0i32; LANES];
            unsafe { _mm256_storeu_si256(totals.as_mut_ptr().cast(), total) };
            for ((d, &t), channel) in dst.iter_mut().zip(&totals).zip((self.base..).map(|o| channels.channel(o))) {
                *d = requantize(t, channel.multiplier, self.range);
            }
            return;
        }
        let q = unsafe { requantize_lanes(total, self.mantissa, self.right_shift) };
        // Clamped before the zero point is added (`OutputRange::bounds_before_zero_point`).
        let q = _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(q, self.low), self.high), self.zero_point);
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

/// A depthwise convolution with one output channel per input channel, 8 channels a
/// vector: with AVX-VNNI, 4 taps an instruction (`depthwise_avxvnni`); else, or when
/// the padded copy would not fit its buffer, per output pixel and tap, 8 input bytes
/// widened to i32 lanes, minus the zero point, times the tap's weights (`vpmulld`),
/// summed; then `BlockRequant::store`. False, writing nothing, without AVX2 or for a
/// layer it does not take (`depthwise::takes`: a depth multiplier, channels not a
/// multiple of 8, a window over 7×7, a multiplier ≥ 1). `packed`: the layer's packing, if
/// the prepared model made one (`depthwise_rows`). The sums are the reference's (exact i32 arithmetic,
/// the loader's limits). CPUs with AVX-512 VNNI but not AVX-VNNI (the VEX form) take
/// the `vpmulld` path: the EVEX form of the same instruction is not wired here.
#[allow(clippy::too_many_arguments)]
pub fn depthwise(
    g: &Conv2dGeometry,
    input: &[i8],
    zp: i32,
    weights: &[i8],
    channels: &Requant<'_>,
    packed: &PackedWeights<'_>,
    range: OutputRange,
    output: &mut [i8],
) -> bool {
    let takes = depthwise::takes(g, input, zp, weights, channels, output, LANES);
    #[cfg(feature = "std")]
    if takes {
        if avx512_depthwise_takes(g) && avx512_depthwise_detected() {
            // SAFETY: the four AVX-512 extensions were detected just above; `takes` and the
            // kernel's own conditions hold.
            unsafe { depthwise_avx512vnni(g, input, zp, weights, channels, packed, range, output) };
            return true;
        }
        let fits = g.padded_input(GROUP).is_some_and(|(_, _, len)| len <= IMAGE_MAX);
        if fits && std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("avxvnni") {
            // SAFETY: AVX2 and AVX-VNNI were detected just above; `takes` and `fits` hold.
            unsafe { depthwise_avxvnni(g, input, zp, weights, channels, range, output) };
            return true;
        }
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 was detected just above; `takes` holds.
            unsafe { depthwise_avx2(g, input, zp, weights, channels, range, output) };
            return true;
        }
    }
    let _ = (takes, zp, range, packed);
    false
}

/// For the packer: the kernel rows per packed row (`PackedLayer::pack_with`'s `rows`) in
/// which `depthwise_avx512vnni` reads a depthwise layer's weights, packed for `kernel`:
/// its window's rows (`Window::Rows`) or 1 (groups of 4 taps in raster order). None if
/// that kernel would not run it here (then nothing is packed).
#[cfg(feature = "std")]
pub(crate) fn depthwise_rows(kernel: Microkernel, g: &Conv2dGeometry) -> Option<usize> {
    let c = g.input.c;
    let runs = kernel == AVX512_VNNI
        && g.groups == c
        && g.output.c == c
        && c.is_multiple_of(LANES)
        && g.kernel_h * g.kernel_w <= depthwise::TAPS_MAX
        && avx512_depthwise_takes(g)
        && avx512_depthwise_detected();
    runs.then(|| if Window::of(g) == Window::Rows { g.kernel_h } else { 1 })
}

/// A depthwise channel's bias for `vpdpbusd` on u = x + 128: Σ w·(x − zp) = Σ w·u −
/// (zp + 128)·Σ w, so −(zp + 128)·Σ w joins the bias; wrapping, exact as the loader's
/// limits keep the reference's sum in i32.
#[cfg(feature = "std")]
#[inline(always)]
fn unsigned_bias(bias: i32, kernel: &[i8], zp: i32) -> i32 {
    let sum = kernel.iter().fold(0i32, |sum, &w| sum.wrapping_add(i32::from(w)));
    bias.wrapping_sub((zp + 128).wrapping_mul(sum))
}

/// `depthwise` with `vpdpbusd`: the input copied once, padded, as u = x + 128 (as the
/// conv microkernels read it), and per output pixel, octet of channels and group of
/// 4 taps, the 4 taps' bytes of the 8 channels interleaved into one vector (each
/// channel's 4 taps in its 32-bit lane) and multiplied with the channels' weights
/// for those taps: 32 multiply-adds an instruction. −(zp + 128)·Σw is folded into
/// the bias, as the packer does for the conv kernels; windows never leave the copy.
///
/// # Safety
/// AVX2 and AVX-VNNI; `depthwise`'s checks hold and the padded copy fits `IMAGE_MAX`.
#[cfg(feature = "std")]
#[target_feature(enable = "avx2,avxvnni")]
unsafe fn depthwise_avxvnni(
    g: &Conv2dGeometry,
    input: &[i8],
    zp: i32,
    weights: &[i8],
    channels: &Requant<'_>,
    range: OutputRange,
    output: &mut [i8],
) {
    let (c, taps) = (g.input.c, g.kernel_h * g.kernel_w);
    let groups = taps.div_ceil(GROUP);
    let mut storage = [const { MaybeUninit::<u8>::uninit() }; IMAGE_MAX];
    let pad = (zp + 128) as u8; // zp in −128..=127 (the loader's)
    let Some((image, padded_w)) = padded::copy(g, input, GROUP, pad, |x| x as u8 ^ 0x80, &mut storage) else {
        return; // not reached: `depthwise` checked the geometry and the buffer size
    };
    // Each tap's offset in the copy from its window's start; the taps that pad the last
    // group read the first tap again (their weights are zero).
    let dilation = g.dilation.max(1);
    let offsets: [usize; depthwise::TAPS_MAX + GROUP] = core::array::from_fn(|t| {
        let t = if t < taps { t } else { 0 };
        ((t / g.kernel_w) * dilation * padded_w + (t % g.kernel_w) * dilation) * c
    });
    // [group][channel][tap in group], i8: one 32-byte vector per group and octet.
    let mut grouped = [0i8; depthwise::BLOCK * (depthwise::TAPS_MAX + GROUP)];
    for start in (0..c).step_by(depthwise::BLOCK) {
        let n = depthwise::BLOCK.min(c - start); // a multiple of 8
        let kernel = |j: usize| &weights[(start + j) * taps..][..taps];
        grouped.fill(0);
        for j in 0..n {
            for (t, &w) in kernel(j).iter().enumerate() {
                grouped[((t / GROUP) * depthwise::BLOCK + j) * GROUP + t % GROUP] = w;
            }
        }
        let constants =
            depthwise::BlockConstants::new(channels, start, n, |j, channel| unsigned_bias(channel.bias, kernel(j), zp));
        let packed = constants.packed();
        // SAFETY: AVX2; the constants are n (a multiple of 8) long.
        let requants: [BlockRequant; depthwise::BLOCK / LANES] =
            core::array::from_fn(|octet| unsafe { BlockRequant::load(&packed, octet.min(n / LANES - 1), range) });
        for pixel in 0..g.output.h * g.output.w {
            let [window] = padded::window_starts::<1>(g, padded_w, pixel);
            let out = &mut output[pixel * c + start..][..n];
            for (octet, requant) in requants.iter().enumerate().take(n / LANES) {
                let base = window + start + octet * LANES;
                let mut acc = _mm256_setzero_si256();
                for group in 0..groups {
                    let tap = &offsets[group * GROUP..][..GROUP];
                    // SAFETY: every tap of every window lies inside the copy (`padded_input`),
                    // 8 bytes from `base` are this octet's channels; the weights' vector is
                    // inside `grouped` (group < 13, octet < 8).
                    let (a, b, cc, d, w) = unsafe {
                        (
                            _mm_loadl_epi64(image.as_ptr().add(base + tap[0]).cast()),
                            _mm_loadl_epi64(image.as_ptr().add(base + tap[1]).cast()),
                            _mm_loadl_epi64(image.as_ptr().add(base + tap[2]).cast()),
                            _mm_loadl_epi64(image.as_ptr().add(base + tap[3]).cast()),
                            _mm256_loadu_si256(
                                grouped.as_ptr().add((group * depthwise::BLOCK + octet * LANES) * GROUP).cast(),
                            ),
                        )
                    };
                    // Channel k's 4 taps into lane k: bytes interleaved, then byte pairs.
                    let (ab, cd) = (_mm_unpacklo_epi8(a, b), _mm_unpacklo_epi8(cc, d));
                    let u = _mm256_set_m128i(_mm_unpackhi_epi16(ab, cd), _mm_unpacklo_epi16(ab, cd));
                    acc = _mm256_dpbusd_avx_epi32(acc, u, w);
                }
                // SAFETY: AVX2; every multiplier is < 1 (`depthwise` checked), so `store`
                // takes its vector path, which writes this octet's 8 bytes of `out`.
                unsafe { requant.store(acc, channels, out) };
            }
        }
    }
}

/// Channels a 512-bit depthwise vector holds.
#[cfg(feature = "std")]
const DEPTHWISE_VECTOR: usize = 16;

/// Bytes the 512-bit depthwise kernel may read past a window's last tap: in `Window::Rows`,
/// two 64-byte loads from a window row's first pixel (of which it uses up to 4 pixels).
#[cfg(feature = "std")]
const DEPTHWISE_SLACK: usize = 128;

/// Whether `depthwise_avx512vnni` takes a layer `depthwise::takes` took: 16 channels
/// a vector, or 8 channels of two neighbouring output pixels (stride 1: their taps lie
/// 8 bytes apart), and a padded copy that fits `IMAGE_MAX`.
#[cfg(feature = "std")]
fn avx512_depthwise_takes(g: &Conv2dGeometry) -> bool {
    let c = g.input.c;
    (c.is_multiple_of(DEPTHWISE_VECTOR) || (c == LANES && g.stride == 1))
        && g.padded_input(DEPTHWISE_SLACK).is_some_and(|(_, _, len)| len <= IMAGE_MAX)
}

/// Groups of 4 taps the 512-bit depthwise kernel holds per block: a window of
/// `depthwise::TAPS_MAX` taps in raster order, or of as many rows in `Window::Rows`.
#[cfg(feature = "std")]
const GROUPS_MAX: usize = depthwise::TAPS_MAX.div_ceil(GROUP);

/// How `depthwise_block` gathers a group of 4 taps (its `WINDOW`).
#[cfg(feature = "std")]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Window {
    /// One window row (at most 4 taps wide, at most `GROUPS_MAX` rows, no dilation) from one 64-byte load of 16
    /// channels, or of two 8-channel pixels at stride 1, or from two loads of 32 channels,
    /// put in lane order by one `vpermb`/`vpermt2b`: 3 shuffles per output vector of a 3×3
    /// window where 4 loads and 4 shuffles per group of 4 taps cost 12.
    Rows,
    /// A 3×3 window without dilation, 4 taps at a time in raster order, each tap's 16
    /// bytes loaded on its own and addressed from the window's 3 row pointers.
    Square3,
    /// Any other window: 4 taps at a time in raster order, through the offsets table.
    Taps,
}

#[cfg(feature = "std")]
impl Window {
    const ROWS: u8 = 0;
    const SQUARE3: u8 = 1;
    const TAPS: u8 = 2;

    /// How the 512-bit kernel gathers this layer's taps.
    fn of(g: &Conv2dGeometry) -> Window {
        let c = g.input.c;
        let dilated = g.dilation > 1;
        if !dilated
            && g.kernel_w <= GROUP
            && g.kernel_h <= GROUPS_MAX
            && (c == DEPTHWISE_VECTOR || c == 2 * DEPTHWISE_VECTOR || (c == LANES && g.stride == 1))
        {
            Window::Rows
        } else if !dilated && g.kernel_h == 3 && g.kernel_w == 3 {
            Window::Square3
        } else {
            Window::Taps
        }
    }
}

/// AVX-512 F, BW, VNNI and VBMI (`vpermb`): every AVX-512 VNNI CPU but Cascade Lake.
#[cfg(feature = "std")]
fn avx512_depthwise_detected() -> bool {
    std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512bw")
        && std::is_x86_feature_detected!("avx512vnni")
        && std::is_x86_feature_detected!("avx512vbmi")
}

/// `depthwise_avxvnni` on 512-bit vectors: 16 lanes a vector, each lane one channel's
/// four taps, so one `vpdpbusd` does 64 multiply-adds and one requantisation
/// gives 16 outputs (a depthwise layer requantises once per 9 multiply-adds of a 3×3
/// window, so the requantisation's width matters as much as the products'). Per
/// group of 4 taps, the 4 taps' 16 bytes go into one vector and `vpermb` interleaves
/// them. With 8 channels (MobileNet's first depthwise layer) a vector holds two
/// neighbouring output pixels of a row, whose taps at stride 1 are 8 bytes apart: one
/// 16-byte load per tap reads both; an odd row's last pixel stores only its own 8 bytes.
///
/// # Safety
/// AVX-512 F, BW, VNNI and VBMI; `depthwise::takes` and `avx512_depthwise_takes` hold.
///
/// `packed`: the weights and constants `PackedLayer::pack_conv` laid out at load
/// (`depthwise_rows`); without them (nothing packed, or not for this layer) each block's
/// are laid out here, on every run: on the MobileNet's wide layers of 6×6 pixels that
/// cost more than the products.
#[cfg(feature = "std")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx512vbmi")]
#[allow(clippy::too_many_arguments)]
unsafe fn depthwise_avx512vnni(
    g: &Conv2dGeometry,
    input: &[i8],
    zp: i32,
    weights: &[i8],
    channels: &Requant<'_>,
    packed: &PackedWeights<'_>,
    range: OutputRange,
    output: &mut [i8],
) {
    let (c, taps) = (g.input.c, g.kernel_h * g.kernel_w);
    let window = Window::of(g);
    let rows = if window == Window::Rows { g.kernel_h } else { 1 };
    let prepared =
        depthwise_rows(AVX512_VNNI, g) == Some(rows) && packed.fits_layer(AVX512_VNNI, rows, taps / rows, channels, zp);
    // Groups per block in the packed weights (at most `GROUPS_MAX`: `Window::of`, `takes`).
    let packed_groups = packed.groups().min(GROUPS_MAX);
    let mut storage = [const { MaybeUninit::<u8>::uninit() }; IMAGE_MAX];
    let pad = (zp + 128) as u8; // zp in −128..=127 (`takes`)
    let Some((image, padded_w)) = padded::copy(g, input, DEPTHWISE_SLACK, pad, |x| x as u8 ^ 0x80, &mut storage) else {
        return; // not reached: `avx512_depthwise_takes` checked the geometry and the buffer size
    };
    // As in `depthwise_avxvnni`. (The same lines as a shared function measured 2–3 %
    // slower here: LLVM then kept the pixel loop's tap pointers differently.)
    let dilation = g.dilation.max(1);
    let offsets: [usize; depthwise::TAPS_MAX + GROUP] = core::array::from_fn(|t| {
        let t = if t < taps { t } else { 0 }; // padding taps: the first again, weight zero
        ((t / g.kernel_w) * dilation * padded_w + (t % g.kernel_w) * dilation) * c
    });
    // Lane l's channel: 16 channels from `start`, or the 8 channels twice (two pixels).
    let pair = c == LANES;
    let lane_channel = |start: usize, lane: usize| start + if pair { lane % LANES } else { lane };
    // `Window::Rows`: byte 4l + k of a group's vector is tap k of lane l, from the loads
    // at the window row's first pixel (index 64 and above: the second load).
    let gather_for = |start: usize| {
        let indices: [u8; 64] = core::array::from_fn(|byte| {
            let (lane, k) = (byte / GROUP, byte % GROUP);
            let index = match c {
                LANES if lane < LANES => LANES * k + lane,
                LANES => LANES * (1 + k) + lane - LANES, // the pair's second pixel, one on
                _ => c * k + start % (2 * DEPTHWISE_VECTOR) + lane, // 16 or 32 channels a pixel
            };
            index as u8 // < 128: at most 4 pixels of 32 channels
        });
        // SAFETY: `indices` is 64 bytes.
        unsafe { _mm512_loadu_si512(indices.as_ptr().cast()) }
    };
    // Byte 4l + t of a group's vector is tap t of lane l; the 4 taps' 16 bytes arrive tap after tap.
    let interleave = _mm512_set_epi8(
        63, 47, 31, 15, 62, 46, 30, 14, 61, 45, 29, 13, 60, 44, 28, 12, 59, 43, 27, 11, 58, 42, 26, 10, 57, 41, 25, 9,
        56, 40, 24, 8, 55, 39, 23, 7, 54, 38, 22, 6, 53, 37, 21, 5, 52, 36, 20, 4, 51, 35, 19, 3, 50, 34, 18, 2, 49,
        33, 17, 1, 48, 32, 16, 0,
    );
    for start in (0..c).step_by(DEPTHWISE_VECTOR) {
        let gather = if window == Window::Rows { gather_for(start) } else { _mm512_setzero_si512() };
        // The block's weight vectors, and where its constants are: the layer's packing from
        // channel `start` (a pair's 8 channels once, `duplicate`d into both halves), or
        // the block's own, laid out here lane by lane.
        let (block_constants, unpacked);
        let (grouped, constants, first, duplicate): ([__m512i; GROUPS_MAX], &PackedWeights, usize, bool) = if prepared {
            let block = start / DEPTHWISE_VECTOR;
            // SAFETY: `fits_layer`: the weights hold blocks × groups vectors of 64 bytes.
            let grouped = core::array::from_fn(|group| unsafe {
                if group < packed_groups {
                    let v =
                        _mm512_loadu_si512(packed.weights.as_ptr().add((block * packed_groups + group) * 64).cast());
                    // A pair's 16 lanes are channels 0..8 twice; the packing has them once.
                    if pair {
                        _mm512_broadcast_i64x4(_mm512_castsi512_si256(v))
                    } else {
                        v
                    }
                } else {
                    _mm512_setzero_si512()
                }
            });
            (grouped, packed, start, pair)
        } else {
            let kernel = |lane: usize| &weights[lane_channel(start, lane) * taps..][..taps];
            // [group][lane][tap in group]: each lane's 4 taps of a group in its word (zero past
            // the last tap; a group is a window row in `Window::Rows`).
            let mut bytes = [0i8; GROUPS_MAX * 64];
            // An index loop on purpose: with `(0..16).map(kernel).enumerate()` here, LLVM kept the
            // pixel loop's 12+ tap pointers as induction variables on the stack (MobileNet:
            // 155 µs against 120 µs, side by side).
            #[allow(clippy::needless_range_loop)]
            for lane in 0..DEPTHWISE_VECTOR {
                let lane_weights = kernel(lane);
                for (t, &w) in lane_weights.iter().enumerate() {
                    let (group, k) = match window {
                        Window::Rows => (t / g.kernel_w, t % g.kernel_w), // kernel_h ≤ GROUPS_MAX
                        _ => (t / GROUP, t % GROUP),
                    };
                    bytes[group * 64 + lane * GROUP + k] = w;
                }
            }
            // SAFETY: group < GROUPS_MAX, so each 64-byte load lies inside `bytes`.
            let grouped =
                core::array::from_fn(|group| unsafe { _mm512_loadu_si512(bytes.as_ptr().add(group * 64).cast()) });
            block_constants = depthwise::BlockConstants::mapped(
                channels,
                DEPTHWISE_VECTOR,
                |lane| lane_channel(start, lane),
                |lane, channel| unsigned_bias(channel.bias, kernel(lane), zp),
            );
            unpacked = block_constants.packed();
            (grouped, &unpacked, 0, false)
        };
        let block = DepthwiseBlock {
            g,
            image,
            padded_w,
            start,
            offsets: &offsets,
            grouped: &grouped,
            interleave,
            gather,
            channels,
            window,
        };
        // SAFETY (each): AVX-512F (so AVX2); the constants hold whole blocks of 16 channels
        // (`fits_layer`, or the block's own), `one_add_rounding` only where each
        // `rounds_in_one_add`. The caller's contract; `image` is the padded copy made above.
        unsafe {
            match (constants.one_add_rounding, duplicate) {
                (true, true) => block.run(&Requant16::load_pair(constants, range), output),
                (true, false) => block.run(&Requant16::load(constants, first, range), output),
                (false, _) => {
                    // Each octet's constants, stored at its place in the block's 16 bytes
                    // (a pair's second pixel: channels 0..8 again).
                    let octet = first / LANES;
                    let mut low = BlockRequant::load(constants, octet, range);
                    let mut high = BlockRequant::load(constants, if duplicate { octet } else { octet + 1 }, range);
                    (low.base, high.base) = (0, LANES);
                    block.run(&[low, high], output);
                }
            }
        }
    }
}

/// What `depthwise_block` reads for one block of 16 lanes.
#[cfg(feature = "std")]
struct DepthwiseBlock<'a, 'r> {
    g: &'a Conv2dGeometry,
    image: &'a [u8],
    padded_w: usize,
    start: usize,
    offsets: &'a [usize; depthwise::TAPS_MAX + GROUP],
    grouped: &'a [__m512i],
    /// `Window::Square3` and `Window::Taps`: 4 taps' 16 bytes, one after another, into lane order.
    interleave: __m512i,
    /// `Window::Rows`: a window row's loads into lane order.
    gather: __m512i,
    channels: &'a Requant<'r>,
    window: Window,
}

#[cfg(feature = "std")]
impl DepthwiseBlock<'_, '_> {
    /// `depthwise_block` with this requantisation.
    ///
    /// # Safety
    /// As `depthwise_block`.
    #[inline(always)]
    unsafe fn run<R: LaneStore>(&self, requant: &R, output: &mut [i8]) {
        // SAFETY (each): the caller's contract.
        unsafe {
            match self.window {
                Window::Rows => depthwise_block::<{ Window::ROWS }, R>(self, requant, output),
                Window::Square3 => depthwise_block::<{ Window::SQUARE3 }, R>(self, requant, output),
                Window::Taps => depthwise_block::<{ Window::TAPS }, R>(self, requant, output),
            }
        }
    }
}

/// Requantises a vector of 16 lanes' sums into `out`: 16 bytes, or 8 (the first 8 lanes).
trait LaneStore {
    /// # Safety
    /// AVX-512F; `out` is 8 or 16 bytes.
    unsafe fn store_lanes(&self, sums: __m512i, channels: &Requant<'_>, out: &mut [i8]);
}

impl LaneStore for Requant16 {
    #[inline(always)]
    unsafe fn store_lanes(&self, sums: __m512i, _: &Requant<'_>, out: &mut [i8]) {
        // SAFETY: AVX-512F (the caller's); `out` is 8 or 16 bytes; neither store needs alignment.
        unsafe {
            let bytes = self.bytes(sums);
            if out.len() == DEPTHWISE_VECTOR {
                _mm_storeu_si128(out.as_mut_ptr().cast(), bytes);
            } else {
                _mm_storel_epi64(out.as_mut_ptr().cast(), bytes);
            }
        }
    }
}

/// Lanes 0..8 and 8..16, each with `BlockRequant`'s exact steps (channels that do not
/// `rounds_in_one_add`).
impl LaneStore for [BlockRequant; 2] {
    #[inline(always)]
    unsafe fn store_lanes(&self, sums: __m512i, channels: &Requant<'_>, out: &mut [i8]) {
        for (octet, requant) in self.iter().enumerate().take(out.len() / LANES) {
            // SAFETY: AVX2 (implied by the caller's AVX-512F); octet `o` writes out[8·o..8·o + 8],
            // and the constants hold 16 channels, every multiplier < 1 (`depthwise::takes`).
            unsafe { requant.store(Zmm::octet(sums, octet), channels, out) };
        }
    }
}

/// `depthwise_avx512vnni`'s output vectors for the 16 lanes from channel `start`, the
/// taps gathered as `WINDOW` (a `Window` constant) says. In `Window::Square3` the taps
/// are addressed as `[row + channels·k]` from the window's 3 row pointers; through the
/// `offsets` table LLVM reloaded every tap's offset from the stack, 12 extra loads per
/// output vector.
///
/// # Safety
/// As `depthwise_avx512vnni`; `image` is its padded copy, `padded_w` wide; `WINDOW` is
/// `Window::of` the layer.
#[cfg(feature = "std")]
#[inline(always)]
unsafe fn depthwise_block<const WINDOW: u8, R: LaneStore>(block: &DepthwiseBlock, requant: &R, output: &mut [i8]) {
    let DepthwiseBlock { g, image, padded_w, start, offsets, grouped, interleave, gather, channels, .. } = *block;
    let c = g.input.c;
    let pair = c == LANES;
    let pixels = if pair { 2 } else { 1 };
    let row_bytes = padded_w * c;
    if WINDOW == Window::ROWS {
        // A 32-channel block's bytes lie `start` into each pixel: `gather` picks them.
        let block_base = start - start % (2 * DEPTHWISE_VECTOR);
        for oy in 0..g.output.h {
            for ox in (0..g.output.w).step_by(pixels) {
                let base = (oy * g.stride * padded_w + ox * g.stride) * c + block_base;
                let mut acc = _mm512_setzero_si512();
                for (row, &w) in grouped.iter().enumerate().take(g.kernel_h) {
                    // SAFETY: the window row's first pixel lies inside the copy, and the 128
                    // bytes from it inside the copy with its slack (`DEPTHWISE_SLACK`).
                    let taps = unsafe {
                        let at = image.as_ptr().add(base + row * row_bytes);
                        let first = _mm512_loadu_si512(at.cast());
                        if c == 2 * DEPTHWISE_VECTOR {
                            _mm512_permutex2var_epi8(first, gather, _mm512_loadu_si512(at.add(64).cast()))
                        } else {
                            _mm512_permutexvar_epi8(gather, first)
                        }
                    };
                    acc = _mm512_dpbusd_epi32(acc, taps, w);
                }
                let first = (oy * g.output.w + ox) * c + start;
                let len = if pair && ox + 1 == g.output.w { LANES } else { DEPTHWISE_VECTOR };
                // SAFETY: AVX-512F; `out` is `len` bytes long.
                unsafe { requant.store_lanes(acc, channels, &mut output[first..first + len]) };
            }
        }
        return;
    }
    let square3 = WINDOW == Window::SQUARE3;
    let groups = if square3 { 3 } else { (g.kernel_h * g.kernel_w).div_ceil(GROUP) };
    for oy in 0..g.output.h {
        for ox in (0..g.output.w).step_by(pixels) {
            let base = (oy * g.stride * padded_w + ox * g.stride) * c + start;
            let mut acc = _mm512_setzero_si512();
            // SAFETY: the window's rows lie inside the copy (`padded_input`).
            let rows: [*const u8; 3] =
                core::array::from_fn(|r| unsafe { image.as_ptr().add(base + if square3 { r * row_bytes } else { 0 }) });
            // Opaque to LLVM, so that it addresses [row + c·k] rather than hoisting the 8
            // tap offsets out of the loop and spilling them (a reload per tap).
            let c = core::hint::black_box(c);
            for (group, &w) in grouped.iter().enumerate().take(groups) {
                // Tap t of this window; the taps that pad the last group read the first
                // again (their weights are zero).
                // SAFETY: every tap of this window (and, in pairs, of the next pixel's,
                // 8 bytes on) lies inside the copy, and an odd row's last window reads at
                // most 8 bytes past its own, inside the copy's slack (`padded_input`).
                let tap = |t: usize| unsafe {
                    let t = group * GROUP + t;
                    if square3 {
                        let t = if t < 9 { t } else { 0 };
                        rows[t / 3].add((t % 3) * c)
                    } else {
                        rows[0].add(offsets[t])
                    }
                };
                // SAFETY: as `tap`.
                let taps = unsafe {
                    let at = |t: usize| _mm_loadu_si128(tap(t).cast());
                    let v = _mm512_castsi128_si512(at(0));
                    let v = _mm512_inserti32x4::<1>(v, at(1));
                    let v = _mm512_inserti32x4::<2>(v, at(2));
                    _mm512_inserti32x4::<3>(v, at(3))
                };
                acc = _mm512_dpbusd_epi32(acc, _mm512_permutexvar_epi8(interleave, taps), w);
            }
            let first = (oy * g.output.w + ox) * c + start;
            let len = if pair && ox + 1 == g.output.w { LANES } else { DEPTHWISE_VECTOR };
            // SAFETY: AVX-512F; `out` is `len` bytes long.
            unsafe { requant.store_lanes(acc, channels, &mut output[first..first + len]) };
        }
    }
}

/// # Safety
/// AVX2; `depthwise`'s checks hold.
#[cfg(feature = "std")]
#[target_feature(enable = "avx2")]
unsafe fn depthwise_avx2(
    g: &Conv2dGeometry,
    input: &[i8],
    zp: i32,
    weights: &[i8],
    channels: &Requant<'_>,
    range: OutputRange,
    output: &mut [i8],
) {
    let (c, taps) = (g.input.c, g.kernel_h * g.kernel_w);
    let zero_point = _mm256_set1_epi32(zp);
    // The block's weights, i32 and tap-major: 64 × 49 × 4 B = 12.5 KB.
    let mut tap_major = [0i32; depthwise::BLOCK * depthwise::TAPS_MAX];
    for start in (0..c).step_by(depthwise::BLOCK) {
        let n = depthwise::BLOCK.min(c - start); // a multiple of 8
        for j in 0..n {
            for tap in 0..taps {
                tap_major[tap * depthwise::BLOCK + j] = i32::from(weights[(start + j) * taps + tap]);
            }
        }
        let constants = depthwise::BlockConstants::new(channels, start, n, |_, channel| channel.bias);
        let packed = constants.packed();
        // Each octet's constants once per layer (past the last octet: the last one again, unused).
        // SAFETY: AVX2; the constants are n (a multiple of 8) long.
        let requants: [BlockRequant; depthwise::BLOCK / LANES] =
            core::array::from_fn(|octet| unsafe { BlockRequant::load(&packed, octet.min(n / LANES - 1), range) });
        for oy in 0..g.output.h {
            let (ky0, ky1) = g.rows(oy);
            for ox in 0..g.output.w {
                let (kx0, kx1) = g.cols(ox);
                let out = &mut output[(oy * g.output.w + ox) * c + start..][..n];
                for (octet, requant) in requants.iter().enumerate().take(n / LANES) {
                    let mut acc = _mm256_setzero_si256();
                    for ky in ky0..ky1 {
                        let row = g.source_row(oy, ky) * g.input.w;
                        for kx in kx0..kx1 {
                            let first = (row + g.source_col(ox, kx)) * c + start + octet * LANES;
                            // SAFETY: the window's taps lie inside the input (rows()/cols()), and
                            // first + 8 ≤ that pixel's channels; the weights' index < 49 × 64.
                            let (x, w) = unsafe {
                                (
                                    _mm_loadl_epi64(input.as_ptr().add(first).cast()),
                                    _mm256_loadu_si256(
                                        tap_major
                                            .as_ptr()
                                            .add((ky * g.kernel_w + kx) * depthwise::BLOCK + octet * LANES)
                                            .cast(),
                                    ),
                                )
                            };
                            let x = _mm256_sub_epi32(_mm256_cvtepi8_epi32(x), zero_point);
                            acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(x, w));
                        }
                    }
                    // SAFETY: AVX2; every multiplier is < 1 (`depthwise` checked), so `store`
                    // takes its vector path, which writes this octet's 8 bytes of `out`.
                    unsafe { requant.store(acc, channels, out) };
                }
            }
        }
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::kernels::conv::conv2d_reference;
    use crate::kernels::packed::OwnedPacking;
    use crate::kernels::Shape;
    use crate::spec::fixed_point::{requantize, ChannelRequant, Multiplier};
    use crate::spec::output_len_padded;
    use alloc::vec;
    use alloc::vec::Vec;

    type Kernel =
        unsafe fn(&Conv2dGeometry, &[i8], i32, &[i8], &Requant<'_>, &PackedWeights<'_>, OutputRange, &mut [i8]);

    /// `Requant16` against `requantize`, lane by lane: channels the one-add form takes
    /// (mantissas above 2^30 at every shift it allows, zero multipliers, biases up to its
    /// bound) at their extreme, small and random accumulators, in the full int8 range
    /// (the saturating narrowing) and narrower ones (the clamp).
    #[test]
    fn requant16_matches_requantize() {
        if !std::is_x86_feature_detected!("avx512f") {
            return; // nothing here runs Requant16
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut below = move |n: u64| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x9e37_79b9_7f4a_7c15) % n
        };
        let mut zero_multipliers = 0;
        for case in 0..4000 {
            let taps = 1 + below(3 * 3 * 256) as usize;
            let channels: [ChannelRequant; 16] = core::array::from_fn(|_| loop {
                let mantissa = match below(6) {
                    0 => 0,
                    1 => (1 << 30) + 1,
                    2 => i32::MAX,
                    _ => (1 << 30) + below(1 << 30) as i32,
                };
                let shift = -(1 + below(31) as i32);
                let bias = match below(3) {
                    0 => below(1 << 16) as i32 - (1 << 15),
                    1 => below(1 << 31) as i32 - (1 << 30),
                    _ => 0,
                };
                let channel = ChannelRequant { bias, multiplier: Multiplier { mantissa, shift } };
                if channel.rounds_in_one_add(taps) {
                    break channel;
                }
            });
            zero_multipliers += channels.iter().filter(|c| c.multiplier.mantissa == 0).count();
            let x: [i32; 16] = core::array::from_fn(|lane| {
                let largest =
                    (i64::from(channels[lane].bias.unsigned_abs()) + taps as i64 * 128 * 255).min(i64::from(i32::MAX));
                (match below(5) {
                    0 => largest,
                    1 => -largest,
                    2 => below(5) as i64 - 2,
                    _ => below(2 * largest as u64 + 1) as i64 - largest,
                }) as i32
            });
            let zero_point = below(256) as i32 - 128;
            let range = match case % 3 {
                0 => OutputRange::new(zero_point, false),
                1 => OutputRange::new(zero_point, true),
                _ => OutputRange { zero_point, min: -128 + below(100) as i32, max: 127 - below(100) as i32 },
            };
            let vector = |f: &dyn Fn(&ChannelRequant) -> i32| -> __m512i {
                let lanes: [i32; 16] = core::array::from_fn(|lane| f(&channels[lane]));
                // SAFETY: AVX-512F (checked above); 16 i32 lanes.
                unsafe { _mm512_loadu_si512(lanes.as_ptr().cast()) }
            };
            let want: [i8; 16] = core::array::from_fn(|lane| requantize(x[lane], channels[lane].multiplier, range));
            let mut got = [0i8; 16];
            // SAFETY: AVX-512F (checked above); every channel `rounds_in_one_add`; `got` is 16 bytes.
            unsafe {
                let requant = Requant16::from_vectors(
                    vector(&|c| c.bias),
                    vector(&|c| c.multiplier.mantissa),
                    vector(&|c| c.multiplier.one_add_right_shift()),
                    range,
                );
                let sums: [i32; 16] = core::array::from_fn(|lane| x[lane].wrapping_sub(channels[lane].bias));
                requant.store(_mm512_loadu_si512(sums.as_ptr().cast()), &mut got);
            }
            assert_eq!(got, want, "case {case}: {channels:?}, x = {x:?}, {range:?}");
        }
        assert!(zero_multipliers > 1000, "{zero_multipliers} zero multipliers drawn");
    }

    /// Every x86 depthwise kernel this CPU runs, each called directly (`depthwise` runs
    /// only the first that takes a layer), against the reference on random layers.
    #[test]
    fn every_depthwise_kernel_matches_reference() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut below = move |n: usize| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_f491_4f6c_dd1d) % n as u64) as usize
        };
        let avx512 = avx512_depthwise_detected();
        let avxvnni = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("avxvnni");
        let avx2 = std::is_x86_feature_detected!("avx2");
        let mut runs = [0usize; 4];
        let mut windows = [0usize; 3]; // by `Window`
        for case in 0..300 {
            let c = [8, 16, 24, 32, 48, 64][case % 6];
            // 3×3 in a quarter of the cases (`Window::Square3` takes those of 48 and 64 channels);
            // tall narrow windows (up to 24 rows, 1-D models' kind) in a tenth, on inputs tall enough.
            let (kh, kw) = match case % 10 {
                0 | 4 | 8 => (3, 3),
                6 => (8 + below(17), 1 + below(2)),
                _ => (1 + below(5), 1 + below(5)),
            };
            let (stride, dilation) = (1 + below(2), if case % 5 == 0 { 2 } else { 1 });
            let (h, w) = ((1 + below(12)).max(kh * dilation), 1 + below(12));
            let [top, left, bottom, right] = [below(3), below(3), below(3), below(3)];
            let (Some(oh), Some(ow)) = (
                output_len_padded(h, (kh - 1) * dilation + 1, stride, top, bottom),
                output_len_padded(w, (kw - 1) * dilation + 1, stride, left, right),
            ) else {
                continue;
            };
            let g = Conv2dGeometry {
                input: Shape::new(c, h, w),
                output: Shape::new(c, oh, ow),
                kernel_h: kh,
                kernel_w: kw,
                stride,
                pad_top: top,
                pad_left: left,
                groups: c,
                dilation,
            };
            let byte = |below: &mut dyn FnMut(usize) -> usize| (below(256) as i32 - 128) as i8;
            let input: Vec<i8> = (0..g.input.len()).map(|_| byte(&mut below)).collect();
            let weights: Vec<i8> = (0..c * kh * kw).map(|_| byte(&mut below).max(-127)).collect();
            // In a fifth of the cases, at every channel count (the pairs of 8 included), some
            // channels the one-add rounding does not take (`ChannelRequant::rounds_in_one_add`:
            // a power of two, a multiplier in [0.5, 1)), whose blocks run the exact octet
            // fallback, and large biases.
            let channels: Vec<ChannelRequant> = (0..c)
                .map(|_| {
                    let power = 0.5f64.powi(4 + below(12) as i32);
                    let (real, bias) = match if case % 5 == 1 { below(8) } else { 8 } {
                        0 => (power, 0),
                        1 => (0.5 + below(1000) as f64 / 2001.0, 0),
                        2 => (power * 1.5, (1 << 29) + below(1 << 20) as i32),
                        _ => (power * (1.0 + below(1000) as f64 / 1000.0), 0),
                    };
                    ChannelRequant {
                        bias: bias + below(100_001) as i32 - 50_000,
                        multiplier: Multiplier::from_real(real).expect("a positive multiplier below 1"),
                    }
                })
                .collect();
            let channels = Requant::from(&channels[..]);
            let zp = below(256) as i32 - 128;
            let range = OutputRange::new(below(256) as i32 - 128, below(2) == 0);
            let mut want = vec![0i8; g.output.len()];
            conv2d_reference(&g, &input, zp, &weights, &channels, range, &mut want);
            assert!(depthwise::takes(&g, &input, zp, &weights, &channels, &want, LANES), "case {case}");
            let fits = g.padded_input(GROUP).is_some_and(|(_, _, len)| len <= IMAGE_MAX);
            // The 512-bit kernel as a prepared model runs it (weights and constants packed at
            // load) and unpacked; the packing must be one it takes.
            let packing = OwnedPacking::conv(AVX512_VNNI, &g, &weights, &channels, zp).expect("packing");
            let packed = packing.weights();
            let avx512 = avx512 && avx512_depthwise_takes(&g);
            assert_eq!(packed.kernel().is_some(), avx512, "case {case}: packed where the kernel does not run");
            let unpacked = PackedWeights::default();
            let kernels: [(bool, Kernel, &PackedWeights); 4] = [
                (avx512, depthwise_avx512vnni, &packed),
                (avx512, depthwise_avx512vnni, &unpacked),
                (
                    avxvnni && fits,
                    |g, x, zp, w, ch, _, r, o| unsafe { depthwise_avxvnni(g, x, zp, w, ch, r, o) },
                    &unpacked,
                ),
                (avx2, |g, x, zp, w, ch, _, r, o| unsafe { depthwise_avx2(g, x, zp, w, ch, r, o) }, &unpacked),
            ];
            for (k, (runs_here, kernel, packed)) in kernels.into_iter().enumerate() {
                if !runs_here {
                    continue;
                }
                let mut got = vec![1i8; g.output.len()];
                // SAFETY: the kernel's CPU features were detected above; `takes` (asserted)
                // and the kernel's own conditions (`runs_here`) hold.
                unsafe { kernel(&g, &input, zp, &weights, &channels, packed, range, &mut got) };
                assert_eq!(got, want, "case {case}, kernel {k}: {g:?}");
                runs[k] += 1;
                if k == 0 {
                    windows[Window::of(&g) as usize] += 1;
                }
            }
        }
        // Each detected kernel took some of the layers, and the 512-bit one each way of
        // gathering taps: the test cannot pass by skipping them.
        for (k, detected) in [avx512, avx512, avxvnni, avx2].into_iter().enumerate() {
            assert!(!detected || runs[k] > 20, "kernel {k} ran on {} layers", runs[k]);
        }
        assert!(!avx512 || windows.iter().all(|&n| n > 10), "windows taken: {windows:?}");
    }
}
