//! int8 pooling on H×W×C activations; input and output share one quantisation.

use super::Conv2dGeometry;
use crate::spec::fixed_point::rounding_divide;

/// Max over the window's taps inside the input (padding is −∞, as in PyTorch).
pub fn maxpool2d_reference(geometry: &Conv2dGeometry, input: &[i8], output: &mut [i8]) {
    let Conv2dGeometry { input: in_shape, output: out_shape, .. } = *geometry;
    let c = in_shape.c;
    for oy in 0..out_shape.h {
        let (ky0, ky1) = geometry.rows(oy);
        for ox in 0..out_shape.w {
            let (kx0, kx1) = geometry.cols(ox);
            let out = &mut output[(oy * out_shape.w + ox) * c..][..c];
            out.fill(i8::MIN);
            for ky in ky0..ky1 {
                let iy = geometry.source_row(oy, ky);
                for kx in kx0..kx1 {
                    let ix = geometry.source_col(ox, kx);
                    let x = &input[(iy * in_shape.w + ix) * c..][..c];
                    for (o, &v) in out.iter_mut().zip(x) {
                        *o = (*o).max(v);
                    }
                }
            }
        }
    }
}

/// Mean over the full window, padded taps counting as real zero (PyTorch's
/// `count_include_pad=True`), rounded as TFLite's reference AVERAGE_POOL_2D
/// rounds: round(Σx / (kh·kw)) over the raw int8 values, half away from zero,
/// with each padded tap adding `zero_point`. (zero_point + round(Σ(x − zero_point)/n)
/// differs from it on ties when zero_point ≠ 0.)
pub fn avgpool2d_reference(geometry: &Conv2dGeometry, input: &[i8], zero_point: i32, output: &mut [i8]) {
    let Conv2dGeometry { input: in_shape, output: out_shape, kernel_h, kernel_w, .. } = *geometry;
    let c = in_shape.c;
    let window = (kernel_h * kernel_w) as i32;
    for oy in 0..out_shape.h {
        let (ky0, ky1) = geometry.rows(oy);
        for ox in 0..out_shape.w {
            let (kx0, kx1) = geometry.cols(ox);
            for ch in 0..c {
                let mut sum = 0i32;
                for ky in ky0..ky1 {
                    let iy = geometry.source_row(oy, ky);
                    for kx in kx0..kx1 {
                        let ix = geometry.source_col(ox, kx);
                        sum += i32::from(input[(iy * in_shape.w + ix) * c + ch]) - zero_point;
                    }
                }
                let value = rounding_divide(sum + window * zero_point, window);
                output[(oy * out_shape.w + ox) * c + ch] = value.clamp(-128, 127) as i8;
            }
        }
    }
}

/// Mean over all H×W positions of each channel: round(Σx / (H·W)) over the raw
/// int8 values, as TFLite's AVERAGE_POOL_2D over the whole input computes it.
pub fn global_avgpool_reference(input: &[i8], channels: usize, output: &mut [i8]) {
    let pixels = input.len() / channels.max(1);
    for (ch, out) in output.iter_mut().enumerate().take(channels) {
        let sum: i32 = (0..pixels).map(|p| i32::from(input[p * channels + ch])).sum();
        *out = rounding_divide(sum, pixels as i32).clamp(-128, 127) as i8;
    }
}

/// The fast variant: per block of up to 64 channels, each pixel's run of the block's
/// channels added to a row of sums, which the compiler vectorises (the reference reads
/// one channel at a time across all pixels). Bit-identical to the reference.
pub fn global_avgpool(input: &[i8], channels: usize, output: &mut [i8]) {
    const BLOCK: usize = 64;
    let pixels = input.len() / channels.max(1);
    let outputs = output.len().min(channels);
    for start in (0..outputs).step_by(BLOCK) {
        let n = BLOCK.min(outputs - start);
        let mut sums = [0i32; BLOCK];
        for pixel in input.chunks_exact(channels).take(pixels) {
            for (sum, &x) in sums[..n].iter_mut().zip(&pixel[start..start + n]) {
                *sum = sum.wrapping_add(i32::from(x)); // as the reference's `sum()` in release builds
            }
        }
        for (out, &sum) in output[start..start + n].iter_mut().zip(&sums[..n]) {
            *out = rounding_divide(sum, pixels as i32).clamp(-128, 127) as i8;
        }
    }
}

/// The fast variant: for windows without padding (every pool of these networks), the
/// max of whole C-channel runs, which the compiler vectorises; the reference otherwise.
/// Bit-identical to the reference.
pub fn maxpool2d(geometry: &Conv2dGeometry, input: &[i8], output: &mut [i8]) {
    let g = geometry;
    let fits = g.pad_top == 0
        && g.pad_left == 0
        && g.output.h > 0
        && g.output.w > 0
        && (g.output.h - 1) * g.stride + g.kernel_h <= g.input.h
        && (g.output.w - 1) * g.stride + g.kernel_w <= g.input.w
        && input.len() >= g.input.len()
        && output.len() >= g.output.len()
        && g.input.c == g.output.c
        && g.kernel_h > 0
        && g.kernel_w > 0;
    if !fits {
        return maxpool2d_reference(geometry, input, output);
    }
    let c = g.input.c;
    for (pixel, out) in output.chunks_exact_mut(c).take(g.output.h * g.output.w).enumerate() {
        let (oy, ox) = (pixel / g.output.w, pixel % g.output.w);
        let origin = (oy * g.stride * g.input.w + ox * g.stride) * c;
        out.copy_from_slice(&input[origin..][..c]);
        for ky in 0..g.kernel_h {
            for kx in 0..g.kernel_w {
                max_into(out, &input[origin + (ky * g.input.w + kx) * c..][..c]);
            }
        }
    }
}

/// out = max(out, x) element-wise; 16-byte chunks first, so the compiler emits whole vectors.
#[inline(always)]
fn max_into(out: &mut [i8], x: &[i8]) {
    let (out_chunks, out_rest) = out.as_chunks_mut::<16>();
    let (x_chunks, x_rest) = x.as_chunks::<16>();
    for (o, x) in out_chunks.iter_mut().zip(x_chunks) {
        for (o, &v) in o.iter_mut().zip(x) {
            *o = (*o).max(v);
        }
    }
    for (o, &v) in out_rest.iter_mut().zip(x_rest) {
        *o = (*o).max(v);
    }
}
