//! Cortex-M DSP extension (Armv7E-M: M4, M7; Armv8-M Mainline: M33, M55): the
//! dot products of conv and dense with `smlad`, two 16-bit multiply-adds into an
//! i32 per instruction, and depthwise layers four channels a word (`depthwise`),
//! the way CMSIS-NN computes them.
//!
//! The patch is the int8 input itself (`dot::Tap`). Per four taps: one word load
//! of the patch, widened into the pairs (x0 − zp, x2 − zp) and (x1 − zp, x3 − zp)
//! by two `sxtab16` (each sign-extends two bytes and adds −zp to both halves);
//! then per output channel one word load of its four int8 weights, `sxtb16` into
//! the pairs (w0, w2) and (w1, w3), and two `smlad`. No i16 patch is gathered:
//! half the stack, and no widening pass per pixel. Where a convolution's two
//! pixels' patches fit the buffer, `rows_pair` runs them together, so that each
//! weight word is loaded and widened once for both (CMSIS-NN's 2×2 tile).
//!
//! `smlad` adds modulo 2^32 (it only sets the Q flag on overflow), and integer
//! sums are exact in any order: the sums, hence the outputs, are the
//! reference's bit for bit whenever the reference's own sum fits an i32, which
//! the loader's bias and tap limits guarantee. x − zp lies in −255..=255, so each
//! 16-bit half of `sxtab16` holds it exactly.

use core::arch::asm;

use super::conv::DEPTHWISE_TAPS;
use crate::spec::fixed_point::{requantize, ChannelRequant, OutputRange, Requant};
use crate::spec::Conv2dGeometry;

/// acc + lo(a)·lo(b) + hi(a)·hi(b), signed 16-bit halves.
#[inline(always)]
fn smlad(a: u32, b: u32, acc: i32) -> i32 {
    let result: i32;
    // SAFETY: a register-only instruction of the DSP extension, which `cfg(arm_dsp)` guarantees.
    // Not `preserves_flags`: an overflowing addition sets the sticky Q flag (nothing here reads it).
    unsafe {
        asm!("smlad {r}, {a}, {b}, {acc}", r = lateout(reg) result, a = in(reg) a, b = in(reg) b,
             acc = in(reg) acc, options(pure, nomem, nostack));
    }
    result
}

/// Bytes 0 and 2 of `w`, sign-extended into the low and high i16.
#[inline(always)]
fn sxtb16_even(w: u32) -> u32 {
    let result: u32;
    // SAFETY: as for `smlad`.
    unsafe {
        asm!("sxtb16 {r}, {w}", r = lateout(reg) result, w = in(reg) w,
             options(pure, nomem, nostack, preserves_flags));
    }
    result
}

/// Bytes 1 and 3 of `w`, sign-extended into the low and high i16.
#[inline(always)]
fn sxtb16_odd(w: u32) -> u32 {
    let result: u32;
    // SAFETY: as for `smlad`.
    unsafe {
        asm!("sxtb16 {r}, {w}, ror #8", r = lateout(reg) result, w = in(reg) w,
             options(pure, nomem, nostack, preserves_flags));
    }
    result
}

/// Four int8 values (taps or weights) at `p` as one word.
///
/// # Safety
/// `p..p + 4` must be readable (Armv7-M loads words unaligned).
#[inline(always)]
unsafe fn word(p: *const i8) -> u32 {
    // SAFETY: the caller guarantees 4 readable bytes.
    unsafe { p.cast::<u32>().read_unaligned() }
}

/// −zero_point in both 16-bit halves (two's complement, so adding them subtracts):
/// what `sxtab16` adds to the widened bytes. `zero_point` in −128..=127.
#[inline(always)]
fn negated_pair(zero_point: i32) -> u32 {
    u32::from((-zero_point) as u16) * 0x0001_0001
}

/// `offset` + bytes 0 and 2 of `x`, sign-extended, in the low and high i16.
#[inline(always)]
fn sxtab16_even(offset: u32, x: u32) -> u32 {
    let result: u32;
    // SAFETY: as for `smlad`.
    unsafe {
        asm!("sxtab16 {r}, {o}, {x}", r = lateout(reg) result, o = in(reg) offset, x = in(reg) x,
             options(pure, nomem, nostack, preserves_flags));
    }
    result
}

/// `offset` + bytes 1 and 3 of `x`, sign-extended, in the low and high i16.
#[inline(always)]
fn sxtab16_odd(offset: u32, x: u32) -> u32 {
    let result: u32;
    // SAFETY: as for `smlad`.
    unsafe {
        asm!("sxtab16 {r}, {o}, {x}, ror #8", r = lateout(reg) result, o = in(reg) offset, x = in(reg) x,
             options(pure, nomem, nostack, preserves_flags));
    }
    result
}

/// Σ over taps body.. of (x − zp)·w, in plain code.
#[inline(always)]
fn tail(x: &[i8], zero_point: i32, w: &[i8], body: usize) -> i32 {
    x[body..].iter().zip(&w[body..]).map(|(&x, &w)| (i32::from(x) - zero_point) * i32::from(w)).sum()
}

/// Σ over the taps 0..body (a multiple of 4) of (x − zp)·w for the channel whose weight
/// row starts at `w`; `offset` holds −zp in both halves.
///
/// # Safety
/// `x..x + body` and `w..w + body` must be readable.
#[inline(always)]
unsafe fn block1(x: *const i8, offset: u32, w: *const i8, body: usize) -> i32 {
    let mut sum = 0;
    let mut t = 0;
    while t < body {
        // SAFETY: t + 4 ≤ body, within what the caller guarantees.
        let (patch, weights) = unsafe { (word(x.add(t)), word(w.add(t))) };
        let (even, odd) = (sxtab16_even(offset, patch), sxtab16_odd(offset, patch));
        sum = smlad(odd, sxtb16_odd(weights), smlad(even, sxtb16_even(weights), sum));
        t += 4;
    }
    sum
}

/// `block1` for 4 channels whose weight rows lie `k` bytes apart from `w`, read
/// through two row pointers (rows 0 and 2, rows 1 and 3 `k` on) rather than four:
/// the 4 sums then stay in registers (with four pointers LLVM stored and reloaded
/// two of them every 4 taps), 4–5 % fewer instructions on DeepConvNet and ResNet-8.
///
/// # Safety
/// `x..x + body` and `w + r·k..w + r·k + body` for r in 0..4 must be readable.
#[inline(always)]
unsafe fn block4(x: *const i8, offset: u32, w: *const i8, k: usize, body: usize) -> [i32; 4] {
    let mut acc = [0i32; 4];
    // SAFETY (the pointer steps and loads): each load reads 4 bytes at t < body from x or
    // from a row (body is a multiple of 4), within what the caller guarantees.
    let (mut x, end) = (x, unsafe { x.add(body) });
    let (mut w01, mut w23) = (w, unsafe { w.add(2 * k) });
    while x < end {
        let patch = unsafe { word(x) };
        let (even, odd) = (sxtab16_even(offset, patch), sxtab16_odd(offset, patch));
        let rows = unsafe { [word(w01), word(w01.add(k)), word(w23), word(w23.add(k))] };
        for (sum, weights) in acc.iter_mut().zip(rows) {
            *sum = smlad(odd, sxtb16_odd(weights), smlad(even, sxtb16_even(weights), *sum));
        }
        (x, w01, w23) = unsafe { (x.add(4), w01.add(4), w23.add(4)) };
    }
    acc
}

/// `output[o] = requantize(bias[o] + Σ_k (x[k] − zero_point)·weights[o·K + k])` with
/// K = x.len(), as `dot::rows_scalar` of the i16 patch x − zero_point.
pub fn rows(x: &[i8], zero_point: i32, weights: &[i8], channels: &Requant<'_>, range: OutputRange, output: &mut [i8]) {
    let (k, n) = (x.len(), channels.len());
    if k == 0 || weights.len() < n * k || output.len() < n || !(-128..=127).contains(&zero_point) {
        // A malformed call (or a zero point the 16-bit halves do not hold): plain code decides.
        return rows_plain(x, zero_point, weights, channels, range, output);
    }
    let body = k / 4 * 4;
    let offset = negated_pair(zero_point);
    let mut finish = |o: usize, sum: i32| {
        let channel = channels.channel(o);
        // The taps past the last whole word, if any (none where K is a multiple of 4).
        let rest = if body < k { tail(x, zero_point, &weights[o * k..][..k], body) } else { 0 };
        output[o] = requantize(channel.bias + sum + rest, channel.multiplier, range);
    };
    let row = |o: usize| weights[o * k..].as_ptr();
    let mut o = 0;
    while o + 4 <= n {
        // SAFETY: rows o..o + 4 < n lie in `weights` (n·k ≤ len, checked above), body ≤ k = x.len().
        let sums = unsafe { block4(x.as_ptr(), offset, row(o), k, body) };
        for (b, sum) in sums.into_iter().enumerate() {
            finish(o + b, sum);
        }
        o += 4;
    }
    while o < n {
        // SAFETY: as above, for row o < n.
        let sum = unsafe { block1(x.as_ptr(), offset, row(o), body) };
        finish(o, sum);
        o += 1;
    }
}

/// Σ over the taps 0..body (a multiple of 4) of (x − zp)·w for two patches `a` and `b`
/// and the 2 channels whose weight rows lie at `w` and `w + k`: [patch][channel]. Each
/// weight word is loaded and widened once for both patches (CMSIS-NN's 2×2 tile).
///
/// # Safety
/// `a..a + body`, `b..b + body`, `w..w + body` and `w + k..w + k + body` must be readable.
#[inline(always)]
unsafe fn block2x2(a: *const i8, b: *const i8, offset: u32, w: *const i8, k: usize, body: usize) -> [[i32; 2]; 2] {
    let mut acc = [[0i32; 2]; 2];
    let mut t = 0;
    while t < body {
        // SAFETY: t + 4 ≤ body, within what the caller guarantees.
        let (pa, pb, w0, w1) = unsafe { (word(a.add(t)), word(b.add(t)), word(w.add(t)), word(w.add(k + t))) };
        let (a_even, a_odd) = (sxtab16_even(offset, pa), sxtab16_odd(offset, pa));
        let (b_even, b_odd) = (sxtab16_even(offset, pb), sxtab16_odd(offset, pb));
        for (c, weights) in [w0, w1].into_iter().enumerate() {
            let (w_even, w_odd) = (sxtb16_even(weights), sxtb16_odd(weights));
            acc[0][c] = smlad(a_odd, w_odd, smlad(a_even, w_even, acc[0][c]));
            acc[1][c] = smlad(b_odd, w_odd, smlad(b_even, w_even, acc[1][c]));
        }
        t += 4;
    }
    acc
}

/// `rows` for two patches of the same length, into two outputs.
pub fn rows_pair(
    patches: [&[i8]; 2],
    zero_point: i32,
    weights: &[i8],
    channels: &Requant<'_>,
    range: OutputRange,
    outputs: [&mut [i8]; 2],
) {
    let [a, b] = patches;
    let [out_a, out_b] = outputs;
    let (k, n) = (a.len(), channels.len());
    if k == 0
        || b.len() != k
        || weights.len() < n * k
        || out_a.len() < n
        || out_b.len() < n
        || !(-128..=127).contains(&zero_point)
    {
        rows(a, zero_point, weights, channels, range, out_a);
        return rows(b, zero_point, weights, channels, range, out_b);
    }
    let body = k / 4 * 4;
    let offset = negated_pair(zero_point);
    // Channel o of both patches: its requantisation decoded once.
    let mut finish = |o: usize, sums: [i32; 2]| {
        let channel = channels.channel(o);
        for ((x, out), sum) in [a, b].into_iter().zip([&mut *out_a, &mut *out_b]).zip(sums) {
            let rest = if body < k { tail(x, zero_point, &weights[o * k..][..k], body) } else { 0 };
            out[o] = requantize(channel.bias + sum + rest, channel.multiplier, range);
        }
    };
    let row = |o: usize| weights[o * k..].as_ptr();
    let mut o = 0;
    while o + 2 <= n {
        // SAFETY: rows o and o + 1 < n lie in `weights` (n·k ≤ len, checked above), body ≤ k,
        // the length of both patches.
        let [sa, sb] = unsafe { block2x2(a.as_ptr(), b.as_ptr(), offset, row(o), k, body) };
        finish(o, [sa[0], sb[0]]);
        finish(o + 1, [sa[1], sb[1]]);
        o += 2;
    }
    if o < n {
        // SAFETY: as above, for row o < n.
        let sums = unsafe { [block1(a.as_ptr(), offset, row(o), body), block1(b.as_ptr(), offset, row(o), body)] };
        finish(o, sums);
    }
}

/// `rows` in plain loops (what it does with a call it cannot take).
fn rows_plain(
    x: &[i8],
    zero_point: i32,
    weights: &[i8],
    channels: &Requant<'_>,
    range: OutputRange,
    output: &mut [i8],
) {
    let k = x.len();
    for ((channel, out), w) in channels.iter().zip(output.iter_mut()).zip(weights.chunks_exact(k.max(1))) {
        *out = requantize(channel.bias + tail(x, zero_point, w, 0), channel.multiplier, range);
    }
}

/// acc + lo(a)·lo(b), signed 16-bit halves.
#[inline(always)]
fn smlabb(a: u32, b: u32, acc: i32) -> i32 {
    let result: i32;
    // SAFETY: as for `smlad` (the DSP extension's; an overflowing add only sets Q).
    unsafe {
        asm!("smlabb {r}, {a}, {b}, {acc}", r = lateout(reg) result, a = in(reg) a, b = in(reg) b,
             acc = in(reg) acc, options(pure, nomem, nostack));
    }
    result
}

/// acc + hi(a)·hi(b), signed 16-bit halves.
#[inline(always)]
fn smlatt(a: u32, b: u32, acc: i32) -> i32 {
    let result: i32;
    // SAFETY: as for `smlabb`.
    unsafe {
        asm!("smlatt {r}, {a}, {b}, {acc}", r = lateout(reg) result, a = in(reg) a, b = in(reg) b,
             acc = in(reg) acc, options(pure, nomem, nostack));
    }
    result
}

/// A depthwise convolution of depth multiplier 1 whose channels come in whole words
/// (4 a word: MobileNet's, DS-CNN's), four channels at a time as CMSIS-NN does: per tap
/// one word load of the input's 4 channels, widened less the zero point by two
/// `sxtab16` into the pairs (c0, c2) and (c1, c3), one word of the 4 channels' weights
/// widened by two `sxtb16`, and one `smlabb` or `smlatt` per channel; the 4 sums stay in
/// registers over the window. False (nothing written) for a layer it does not take.
pub fn depthwise(
    g: &Conv2dGeometry,
    input: &[i8],
    zero_point: i32,
    weights: &[i8],
    channels: &Requant<'_>,
    range: OutputRange,
    output: &mut [i8],
) -> bool {
    let (c, taps) = (g.input.c, g.kernel_h * g.kernel_w);
    let takes = g.groups == c
        && g.output.c == c
        && c.is_multiple_of(4)
        && g.dilation <= 1
        && taps <= DEPTHWISE_TAPS
        && (-128..=127).contains(&zero_point)
        && channels.len() == c
        && weights.len() >= c * taps
        && input.len() >= g.input.len()
        && output.len() >= g.output.len();
    if !takes {
        return false;
    }
    let offset = negated_pair(zero_point);
    for first in (0..c).step_by(4) {
        // The 4 channels' weights of each tap as one word (channel j in byte j), as the input's.
        let mut tap_words = [0u32; DEPTHWISE_TAPS];
        for (t, word) in tap_words.iter_mut().enumerate().take(taps) {
            *word = u32::from_le_bytes(core::array::from_fn(|j| weights[(first + j) * taps + t] as u8));
        }
        let requant: [ChannelRequant; 4] = core::array::from_fn(|j| channels.channel(first + j));
        for oy in 0..g.output.h {
            let (ky0, ky1) = g.rows(oy);
            for ox in 0..g.output.w {
                let (kx0, kx1) = g.cols(ox);
                let mut acc = [0i32; 4];
                // A window that reads only padding adds nothing (x − zp = 0 there).
                let (ky0, ky1) = if kx0 < kx1 { (ky0, ky1) } else { (0, 0) };
                for ky in ky0..ky1 {
                    // SAFETY: `cols` clamps kx1 to kernel_w and `rows` ky1 to kernel_h, and
                    // kx0 < kx1: the row's taps lie in the window's, taps ≤ DEPTHWISE_TAPS.
                    let row_taps = unsafe { tap_words.get_unchecked(ky * g.kernel_w + kx0..ky * g.kernel_w + kx1) };
                    // The row's first tap inside the input, then one pixel on per tap.
                    let mut at = (g.source_row(oy, ky) * g.input.w + g.source_col(ox, kx0)) * c + first;
                    for &w in row_taps {
                        // SAFETY: `rows` and `cols` give the taps whose source pixel lies inside the
                        // input (as for every kernel), and `at` is that pixel's channel group
                        // `first..first + 4` (≤ c): 4 bytes inside `input` (its length checked above).
                        let x = unsafe { word(input.as_ptr().add(at)) };
                        let (x_even, x_odd) = (sxtab16_even(offset, x), sxtab16_odd(offset, x));
                        let (w_even, w_odd) = (sxtb16_even(w), sxtb16_odd(w));
                        acc[0] = smlabb(x_even, w_even, acc[0]);
                        acc[2] = smlatt(x_even, w_even, acc[2]);
                        acc[1] = smlabb(x_odd, w_odd, acc[1]);
                        acc[3] = smlatt(x_odd, w_odd, acc[3]);
                        at += c;
                    }
                }
                let out = &mut output[(oy * g.output.w + ox) * c + first..][..4];
                for ((o, &sum), channel) in out.iter_mut().zip(&acc).zip(&requant) {
                    *o = requantize(channel.bias + sum, channel.multiplier, range);
                }
            }
        }
    }
    true
}
