//! The padded input copy the microkernels read their windows from
//! (`kernels::vnni`, `kernels::wasm_simd`): a conv layer copies its input once,
//! in the kernel's encoding, with the padding value around it, so that every
//! kernel row of every window is one contiguous run.

use core::mem::MaybeUninit;

use super::Conv2dGeometry;

/// Writes the padded copy of `input` (H×W×C) into the front of `storage` and
/// returns it with the padded width: `pad` everywhere, then each input row
/// encoded. Its length is `g.padded_input(slack)`'s, the `slack` elements past
/// the last row being padding too. None if that does not fit `storage`, the
/// geometry does not hold, or `input` is short.
pub(crate) fn copy<'s, T: Copy>(
    g: &Conv2dGeometry,
    input: &[i8],
    slack: usize,
    pad: T,
    encode: impl Fn(i8) -> T,
    storage: &'s mut [MaybeUninit<T>],
) -> Option<(&'s mut [T], usize)> {
    let (_, padded_w, len) = g.padded_input(slack)?;
    let storage = storage.get_mut(..len)?;
    if input.len() < g.input.len() {
        return None;
    }
    for slot in storage.iter_mut() {
        slot.write(pad);
    }
    // SAFETY: every element of `storage` was written just above; MaybeUninit<T> has T's layout.
    let image = unsafe { &mut *(storage as *mut [MaybeUninit<T>] as *mut [T]) };
    let (c, row) = (g.input.c, g.input.w * g.input.c);
    for (y, src) in input.chunks_exact(row).take(g.input.h).enumerate() {
        let dst = &mut image[((y + g.pad_top) * padded_w + g.pad_left) * c..][..row];
        for (d, &x) in dst.iter_mut().zip(src) {
            *d = encode(x);
        }
    }
    Some((image, padded_w))
}

/// Where the windows of output pixels `first..first + P` (raster order) start in the
/// padded copy; past the last pixel, the last one again (its sums are computed, never stored).
#[inline(always)]
pub(crate) fn window_starts<const P: usize>(g: &Conv2dGeometry, padded_w: usize, first: usize) -> [usize; P] {
    let last = (g.output.h * g.output.w).saturating_sub(1);
    // One division per tile, then steps: layers with few taps per pixel (conv1) felt a
    // division per pixel.
    let mut pixel = first.min(last);
    let (mut y, mut x) = (pixel.checked_div(g.output.w).unwrap_or(0), pixel.checked_rem(g.output.w).unwrap_or(0));
    core::array::from_fn(|_| {
        let start = (y * g.stride * padded_w + x * g.stride) * g.input.c;
        if pixel < last {
            pixel += 1;
            x += 1;
            if x == g.output.w {
                (y, x) = (y + 1, 0);
            }
        }
        start
    })
}
