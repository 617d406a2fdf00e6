//! f32 kernels on C×H×W activations, written to mirror PyTorch's definitions.
//! They serve accuracy comparisons and calibration, not speed.

use super::Conv2dGeometry;

/// Weights O×(I/groups)×KH×KW (PyTorch's layout), bias O.
///
/// Loops run tap by tap over whole output rows (contiguous for stride 1, so
/// they vectorise); each output still sums bias, then input channels, then
/// kernel rows and columns, in that order.
pub fn conv2d(geometry: &Conv2dGeometry, input: &[f32], weights: &[f32], bias: &[f32], relu: bool, output: &mut [f32]) {
    let Conv2dGeometry { input: in_shape, output: out_shape, kernel_h, kernel_w, stride, pad_top, pad_left, .. } =
        *geometry;
    let (group_inputs, dilation) = (geometry.group_inputs(), geometry.dilation.max(1));
    let in_plane = in_shape.h * in_shape.w;
    let out_plane = out_shape.h * out_shape.w;
    for (o, &b) in bias.iter().enumerate().take(out_shape.c) {
        let out = &mut output[o * out_plane..][..out_plane];
        out.fill(b);
        for (k, ic) in (geometry.group_start(o)..).take(group_inputs).enumerate() {
            let plane = &input[ic * in_plane..][..in_plane];
            let w = &weights[(o * group_inputs + k) * kernel_h * kernel_w..][..kernel_h * kernel_w];
            for ky in 0..kernel_h {
                for kx in 0..kernel_w {
                    let tap = w[ky * kernel_w + kx];
                    let (dy, dx) = (ky * dilation, kx * dilation);
                    // Output columns whose tap kx lands inside the input row.
                    let ox0 = pad_left.saturating_sub(dx).div_ceil(stride);
                    let ox1 = match (in_shape.w + pad_left).checked_sub(dx + 1) {
                        Some(last) => (last / stride + 1).min(out_shape.w),
                        None => 0,
                    };
                    for oy in 0..out_shape.h {
                        let Some(iy) = (oy * stride + dy).checked_sub(pad_top).filter(|&iy| iy < in_shape.h) else {
                            continue;
                        };
                        let row = &plane[iy * in_shape.w..][..in_shape.w];
                        let out_row = &mut out[oy * out_shape.w..][..out_shape.w];
                        for ox in ox0..ox1.max(ox0) {
                            out_row[ox] += tap * row[ox * stride + dx - pad_left];
                        }
                    }
                }
            }
        }
        if relu {
            for v in out.iter_mut() {
                *v = v.max(0.0);
            }
        }
    }
}

/// Weights O×I, bias O.
pub fn dense(input: &[f32], weights: &[f32], bias: &[f32], relu: bool, output: &mut [f32]) {
    for ((o, &b), out) in bias.iter().enumerate().zip(output.iter_mut()) {
        let w = &weights[o * input.len()..][..input.len()];
        let acc = b + input.iter().zip(w).map(|(x, w)| x * w).sum::<f32>();
        *out = if relu { acc.max(0.0) } else { acc };
    }
}

pub fn maxpool2d(geometry: &Conv2dGeometry, input: &[f32], output: &mut [f32]) {
    pool(geometry, input, output, f32::NEG_INFINITY, f32::max, |m, _| m);
}

/// count_include_pad=True: the divisor is the whole window.
pub fn avgpool2d(geometry: &Conv2dGeometry, input: &[f32], output: &mut [f32]) {
    let window = (geometry.kernel_h * geometry.kernel_w) as f32;
    pool(geometry, input, output, 0.0, |a, b| a + b, |s, _| s / window);
}

fn pool(
    geometry: &Conv2dGeometry,
    input: &[f32],
    output: &mut [f32],
    init: f32,
    combine: impl Fn(f32, f32) -> f32,
    finish: impl Fn(f32, usize) -> f32,
) {
    let Conv2dGeometry { input: in_shape, output: out_shape, .. } = *geometry;
    for c in 0..in_shape.c {
        let plane = &input[c * in_shape.h * in_shape.w..][..in_shape.h * in_shape.w];
        for oy in 0..out_shape.h {
            let (ky0, ky1) = geometry.rows(oy);
            for ox in 0..out_shape.w {
                let (kx0, kx1) = geometry.cols(ox);
                let mut acc = init;
                for ky in ky0..ky1 {
                    for kx in kx0..kx1 {
                        acc =
                            combine(acc, plane[geometry.source_row(oy, ky) * in_shape.w + geometry.source_col(ox, kx)]);
                    }
                }
                output[(c * out_shape.h + oy) * out_shape.w + ox] = finish(acc, (ky1 - ky0) * (kx1 - kx0));
            }
        }
    }
}

pub fn global_avgpool(input: &[f32], channels: usize, output: &mut [f32]) {
    let plane = input.len() / channels.max(1);
    for (c, out) in output.iter_mut().enumerate().take(channels) {
        *out = input[c * plane..][..plane].iter().sum::<f32>() / plane as f32;
    }
}

/// Inference batchnorm as PyTorch's CPU kernel computes it: x·α + β with
/// α = γ/√(var + ε), β = bias − mean·α, precomputed per channel by the loader.
pub fn batchnorm(input: &[f32], alpha: &[f32], beta: &[f32], output: &mut [f32]) {
    let plane = input.len() / alpha.len().max(1);
    for (c, (a, b)) in alpha.iter().zip(beta).enumerate() {
        for (o, x) in output[c * plane..][..plane].iter_mut().zip(&input[c * plane..][..plane]) {
            *o = x * a + b;
        }
    }
}

pub fn add(inputs: &[&[f32]], relu: bool, output: &mut [f32]) {
    for (i, out) in output.iter_mut().enumerate() {
        let sum: f32 = inputs.iter().map(|x| x[i]).sum();
        *out = if relu { sum.max(0.0) } else { sum };
    }
}

/// Channel concatenation: in C×H×W the inputs are contiguous blocks.
pub fn concat(inputs: &[&[f32]], output: &mut [f32]) {
    let mut offset = 0;
    for x in inputs {
        output[offset..offset + x.len()].copy_from_slice(x);
        offset += x.len();
    }
}

/// An element-wise unary op.
pub fn map(input: &[f32], op: impl Fn(f32) -> f32, output: &mut [f32]) {
    for (o, &x) in output.iter_mut().zip(input) {
        *o = op(x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Shape;
    use alloc::vec;
    use alloc::vec::Vec;

    /// A grouped convolution is `groups` ordinary convolutions side by side, each
    /// over its own slice of the input channels (how PyTorch defines `groups`).
    #[test]
    fn grouped_conv_is_one_conv_per_group() {
        let (c, h, w, groups, per_group_out, k) = (6, 5, 4, 3, 2, 3);
        let (ig, o) = (c / groups, groups * per_group_out);
        let values =
            |n: usize, seed: usize| -> Vec<f32> { (0..n).map(|i| ((i * 7 + seed) % 11) as f32 - 5.0).collect() };
        let input = values(c * h * w, 1);
        let weights = values(o * ig * k * k, 2);
        let bias = values(o, 3);
        let geometry = |in_c, out_c, groups| Conv2dGeometry {
            input: Shape::new(in_c, h, w),
            output: Shape::new(out_c, h, w),
            kernel_h: k,
            kernel_w: k,
            stride: 1,
            pad_top: 1,
            pad_left: 1,
            groups,
            dilation: 1,
        };
        let mut grouped = vec![0f32; o * h * w];
        conv2d(&geometry(c, o, groups), &input, &weights, &bias, false, &mut grouped);
        for g in 0..groups {
            let mut single = vec![0f32; per_group_out * h * w];
            let slice = &input[g * ig * h * w..][..ig * h * w];
            let wg = &weights[g * per_group_out * ig * k * k..][..per_group_out * ig * k * k];
            let bg = &bias[g * per_group_out..][..per_group_out];
            conv2d(&geometry(ig, per_group_out, 1), slice, wg, bg, false, &mut single);
            assert_eq!(&grouped[g * per_group_out * h * w..][..per_group_out * h * w], &single[..], "group {g}");
        }
    }

    /// A dilated kernel is the kernel with dilation − 1 zeros between its taps.
    #[test]
    fn dilated_conv_is_a_conv_with_a_spread_kernel() {
        let (c, o, h, w, k, d) = (2, 3, 9, 8, 3, 2);
        let spread = (k - 1) * d + 1;
        let values =
            |n: usize, seed: usize| -> Vec<f32> { (0..n).map(|i| ((i * 5 + seed) % 13) as f32 - 6.0).collect() };
        let input = values(c * h * w, 1);
        let weights = values(o * c * k * k, 2);
        let bias = values(o, 3);
        let mut wide = vec![0f32; o * c * spread * spread];
        for (i, &v) in weights.iter().enumerate() {
            let (oc, ky, kx) = (i / (k * k), i / k % k, i % k);
            wide[(oc * spread + ky * d) * spread + kx * d] = v;
        }
        for (stride, padding) in [(1, 0), (1, 3), (2, 1), (3, 2)] {
            let out = |ext: usize, len: usize| (len + 2 * padding - ext) / stride + 1;
            let (oh, ow) = (out(spread, h), out(spread, w));
            let geometry = |kernel, dilation| Conv2dGeometry {
                input: Shape::new(c, h, w),
                output: Shape::new(o, oh, ow),
                kernel_h: kernel,
                kernel_w: kernel,
                stride,
                pad_top: padding,
                pad_left: padding,
                groups: 1,
                dilation,
            };
            let (mut dilated, mut plain) = (vec![0f32; o * oh * ow], vec![0f32; o * oh * ow]);
            conv2d(&geometry(k, d), &input, &weights, &bias, false, &mut dilated);
            conv2d(&geometry(spread, 1), &input, &wide, &bias, false, &mut plain);
            assert_eq!(dilated, plain, "stride {stride}, padding {padding}");
        }
    }
}
