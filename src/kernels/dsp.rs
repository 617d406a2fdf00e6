//! Cortex-M DSP extension (Armv7E-M: M4, M7; Armv8-M Mainline: M33, M55): the
//! dot products of `dot::rows` with `smlad`, two 16-bit multiply-adds into an
//! i32 per instruction, the way CMSIS-NN computes them.
//!
//! Per four taps and block of four output channels: two word loads of the patch
//! (i16 pairs, x − zero_point), one word load of each channel's four int8
//! weights, `sxtb16` to sign-extend them into i16 pairs, and `smlad`. `sxtb16`
//! takes bytes 0 and 2 (or, rotated, 1 and 3), so the patch pairs are
//! rearranged to match with one `pkhbt`/`pkhtb` each.
//!
//! `smlad` adds modulo 2^32 (it only sets the Q flag on overflow), and integer
//! sums are exact in any order: the sums, hence the outputs, are the
//! reference's bit for bit whenever the reference's own sum fits an i32, which
//! the loader's bias and tap limits guarantee.

use core::arch::asm;

use crate::spec::fixed_point::{requantize, OutputRange, Requant};

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

/// Four int8 weights at `w` as one word.
///
/// # Safety
/// `w..w + 4` must be readable (Armv7-M loads words unaligned).
#[inline(always)]
unsafe fn weight_word(w: *const i8) -> u32 {
    // SAFETY: the caller guarantees 4 readable bytes.
    unsafe { w.cast::<u32>().read_unaligned() }
}

/// Patch taps t..t + 4 at `x` as the two pairs (x0, x2) and (x1, x3) that `sxtb16`
/// pairs the weights in (LLVM selects `pkhbt` and `pkhtb`).
///
/// # Safety
/// `x..x + 4` must be readable.
#[inline(always)]
unsafe fn patch_pairs(x: *const i16) -> (u32, u32) {
    // SAFETY: the caller guarantees 8 readable bytes.
    let (x01, x23) = unsafe { (x.cast::<u32>().read_unaligned(), x.add(2).cast::<u32>().read_unaligned()) };
    ((x01 & 0xFFFF) | (x23 << 16), (x23 & 0xFFFF_0000) | (x01 >> 16))
}

/// Σ over taps body.. of x·w, in plain code.
#[inline(always)]
fn tail(x: &[i16], w: &[i8], body: usize) -> i32 {
    x[body..].iter().zip(&w[body..]).map(|(&x, &w)| i32::from(x) * i32::from(w)).sum()
}

/// Σ over the taps 0..body (a multiple of 4) of x·w for the `B` channels whose weight rows start at `w[b]`.
///
/// # Safety
/// `x..x + body` and every `w[b]..w[b] + body` must be readable.
#[inline(always)]
unsafe fn block<const B: usize>(x: *const i16, w: [*const i8; B], body: usize) -> [i32; B] {
    let mut acc = [0i32; B];
    let mut t = 0;
    while t < body {
        // SAFETY: t + 4 ≤ body, within what the caller guarantees.
        let (even, odd) = unsafe { patch_pairs(x.add(t)) };
        for (sum, w) in acc.iter_mut().zip(&w) {
            // SAFETY: as above.
            let word = unsafe { weight_word(w.add(t)) };
            *sum = smlad(odd, sxtb16_odd(word), smlad(even, sxtb16_even(word), *sum));
        }
        t += 4;
    }
    acc
}

/// `output[o] = requantize(bias[o] + Σ_k patch[k]·weights[o·K + k])`, as `dot::rows_scalar`.
pub fn rows(patch: &[i16], weights: &[i8], channels: &Requant<'_>, range: OutputRange, output: &mut [i8]) {
    let (k, n) = (patch.len(), channels.len());
    if k == 0 || weights.len() < n * k || output.len() < n {
        // A malformed call: the scalar code decides what it does.
        return super::dot::rows_scalar(patch, weights, channels, range, output);
    }
    let body = k / 4 * 4;
    let mut finish = |o: usize, sum: i32| {
        let channel = channels.channel(o);
        let w = &weights[o * k..][..k];
        output[o] = requantize(channel.bias + sum + tail(patch, w, body), channel.multiplier, range);
    };
    let row = |o: usize| weights[o * k..].as_ptr();
    let mut o = 0;
    while o + 4 <= n {
        // SAFETY: rows o..o + 4 < n lie in `weights` (n·k ≤ len, checked above), body ≤ k = patch.len().
        let sums = unsafe { block::<4>(patch.as_ptr(), [row(o), row(o + 1), row(o + 2), row(o + 3)], body) };
        for (b, sum) in sums.into_iter().enumerate() {
            finish(o + b, sum);
        }
        o += 4;
    }
    while o < n {
        // SAFETY: as above, for row o < n.
        let [sum] = unsafe { block::<1>(patch.as_ptr(), [row(o)], body) };
        finish(o, sum);
        o += 1;
    }
}
