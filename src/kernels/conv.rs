//! int8 2-D convolution: input H×W×C, weights O×KH×KW×(C/groups) (OHWI), output H×W×O.

use super::dot::{self, PATCH_MAX};
use super::packed::PackedWeights;
use super::{Conv2dGeometry, Int8Layer};
use crate::spec::fixed_point::{requantize, ChannelRequant, OutputRange, Requant};

/// The reference: for every output pixel and channel, Σ w·(x − input_zero_point)
/// over the taps inside the input (padding is real zero, i.e. the zero point)
/// and the input channels of the channel's group, plus bias, requantised.
pub fn conv2d_reference(
    geometry: &Conv2dGeometry,
    input: &[i8],
    input_zero_point: i32,
    weights: &[i8],
    channels: &Requant<'_>,
    output_range: OutputRange,
    output: &mut [i8],
) {
    let Conv2dGeometry { input: in_shape, output: out_shape, kernel_h, kernel_w, .. } = *geometry;
    let (in_c, group_inputs) = (in_shape.c, geometry.group_inputs());
    for oy in 0..out_shape.h {
        let (ky0, ky1) = geometry.rows(oy);
        for ox in 0..out_shape.w {
            let (kx0, kx1) = geometry.cols(ox);
            let out_pixel = (oy * out_shape.w + ox) * out_shape.c;
            for (o, channel) in channels.iter().enumerate() {
                let first = geometry.group_start(o);
                let mut acc = channel.bias;
                for ky in ky0..ky1 {
                    let iy = geometry.source_row(oy, ky);
                    for kx in kx0..kx1 {
                        let ix = geometry.source_col(ox, kx);
                        let x = &input[(iy * in_shape.w + ix) * in_c + first..][..group_inputs];
                        let w = &weights[((o * kernel_h + ky) * kernel_w + kx) * group_inputs..][..group_inputs];
                        for (&xv, &wv) in x.iter().zip(w) {
                            acc += i32::from(wv) * (i32::from(xv) - input_zero_point);
                        }
                    }
                }
                output[out_pixel + o] = requantize(acc, channel.multiplier, output_range);
            }
        }
    }
}

/// The fast variant: per output pixel, gather the patch (KH×KW×C `dot::Tap`s,
/// the zero point's for padding) on the stack, then one SIMD dot product per
/// output channel (`dot::patch_rows`; with the Cortex-M DSP extension two pixels
/// at a time where both patches fit, `dsp::rows_pair`). Bit-identical to the reference.
// Never inlined, like `dense::dense`: one patch buffer on the stack at a time.
#[inline(never)]
pub fn conv2d(
    geometry: &Conv2dGeometry,
    input: &[i8],
    input_zero_point: i32,
    weights: &[i8],
    channels: &Requant<'_>,
    output_range: OutputRange,
    output: &mut [i8],
) {
    let Conv2dGeometry { input: in_shape, output: out_shape, kernel_h, kernel_w, .. } = *geometry;
    let (c, k) = (in_shape.c, kernel_h * kernel_w * in_shape.c);
    if takes_depthwise(geometry) {
        let unpacked = PackedWeights::default();
        return depthwise(geometry, input, input_zero_point, weights, channels, &unpacked, output_range, output);
    }
    // Other grouped convolutions and dilated ones have no fast variant yet; an int8
    // input's zero point is an int8 (the loader's check), the padding's tap is its own.
    let Ok(zero_point) = i8::try_from(input_zero_point) else {
        return conv2d_reference(geometry, input, input_zero_point, weights, channels, output_range, output);
    };
    if k > PATCH_MAX || geometry.groups != 1 || geometry.dilation != 1 {
        return conv2d_reference(geometry, input, input_zero_point, weights, channels, output_range, output);
    }
    let padding = dot::tap(zero_point, input_zero_point);
    let mut patch_buffer = [padding; PATCH_MAX];
    let (out_c, pixels) = (out_shape.c, out_shape.h * out_shape.w);
    // Output pixel p's patch into `patch` (of k taps).
    let gather = |p: usize, patch: &mut [dot::Tap]| {
        let (oy, ox) = (p / out_shape.w, p % out_shape.w);
        let ((ky0, ky1), (kx0, kx1)) = (geometry.rows(oy), geometry.cols(ox));
        if ky0 > 0 || ky1 < kernel_h || kx0 > 0 || kx1 < kernel_w {
            patch.fill(padding); // a border pixel: the taps in the padding stay the zero point's
        }
        if kx0 == kx1 {
            return; // the window lies entirely in the padding
        }
        for ky in ky0..ky1 {
            let iy = geometry.source_row(oy, ky);
            // Taps kx0..kx1 of one kernel row are contiguous in H×W×C.
            let src = &input[(iy * in_shape.w + geometry.source_col(ox, kx0)) * c..][..(kx1 - kx0) * c];
            let dst = &mut patch[(ky * kernel_w + kx0) * c..][..(kx1 - kx0) * c];
            for (d, &x) in dst.iter_mut().zip(src) {
                *d = dot::tap(x, input_zero_point);
            }
        }
    };
    // With the DSP extension, two pixels at a time where both patches fit the buffer:
    // each weight word is loaded and widened once for both. `first`: the first pixel left.
    #[cfg(arm_dsp)]
    let first = {
        let mut first = 0;
        if 2 * k <= PATCH_MAX {
            let (a, rest) = patch_buffer.split_at_mut(k);
            let b = &mut rest[..k];
            while first + 2 <= pixels {
                gather(first, a);
                gather(first + 1, b);
                let (out_a, out_b) = output[first * out_c..][..2 * out_c].split_at_mut(out_c);
                super::dsp::rows_pair([a, b], input_zero_point, weights, channels, output_range, [out_a, out_b]);
                first += 2;
            }
        }
        first
    };
    #[cfg(not(arm_dsp))]
    let first = 0;
    let patch = &mut patch_buffer[..k];
    for p in first..pixels {
        gather(p, patch);
        let out = &mut output[p * out_c..][..out_c];
        dot::patch_rows(patch, input_zero_point, weights, channels, output_range, out);
    }
}

/// Output channels a depthwise block accumulates at most at once.
#[cfg(not(target_arch = "arm"))]
const DEPTHWISE_BLOCK: usize = 64;
/// On 32-bit Arm (microcontrollers: small stacks, no SIMD to fill): 32.
#[cfg(target_arch = "arm")]
const DEPTHWISE_BLOCK: usize = 32;
/// Largest window the depthwise path takes (7×7 and below; larger ones run the reference).
pub(crate) const DEPTHWISE_TAPS: usize = 49;
/// The block's weights, tap-major, on the stack: every window at full width
/// (64 × 49 i16 = 6 KB).
#[cfg(not(target_arch = "arm"))]
const DEPTHWISE_WEIGHTS: usize = DEPTHWISE_BLOCK * DEPTHWISE_TAPS;
/// On 32-bit Arm: windows up to 5×5 at full width, 7×7 in blocks of 16
/// channels (800 bytes of stack instead of 1.6 KB).
#[cfg(target_arch = "arm")]
const DEPTHWISE_WEIGHTS: usize = DEPTHWISE_BLOCK * 25;
/// A tap-major weight: i16, which the vectorised multiply-adds take as they are.
#[cfg(not(target_arch = "arm"))]
type DepthwiseWeight = i16;
/// On 32-bit Arm, the int8 weight: a Cortex-M loads and sign-extends a byte in one
/// instruction, as it does a halfword, in half the stack.
#[cfg(target_arch = "arm")]
type DepthwiseWeight = i8;

/// Whether `depthwise` runs this layer: one input channel per group, a window of at
/// most `DEPTHWISE_TAPS`.
fn takes_depthwise(g: &Conv2dGeometry) -> bool {
    g.groups == g.input.c && g.input.c > 1 && g.kernel_h * g.kernel_w <= DEPTHWISE_TAPS
}

/// A depthwise convolution (one input channel per group, any depth multiplier M):
/// the target's own kernel where it has one for the layer (AVX-512 VNNI, NEON,
/// SIMD128, the Cortex-M DSP extension), else per block of output channels, the
/// block's weights tap-major on the stack, then per output pixel and tap a
/// contiguous run of multiply-adds over the block, which the compiler vectorises
/// (for AVX2 where the CPU has it). Bit-identical to the reference (the same exact
/// sums). `packed`: the weights as the prepared model packed them for its
/// microkernel, if it did.
#[allow(clippy::too_many_arguments)]
fn depthwise(
    geometry: &Conv2dGeometry,
    input: &[i8],
    input_zero_point: i32,
    weights: &[i8],
    channels: &Requant<'_>,
    packed: &PackedWeights<'_>,
    output_range: OutputRange,
    output: &mut [i8],
) {
    // One output channel per input channel in whole vectors (MobileNet's, DS-CNN's): SIMD kernels.
    #[cfg(target_arch = "x86_64")]
    if super::vnni::depthwise(geometry, input, input_zero_point, weights, channels, packed, output_range, output) {
        return;
    }
    let _ = packed;
    #[cfg(target_arch = "aarch64")]
    if super::neon::depthwise(geometry, input, input_zero_point, weights, channels, output_range, output) {
        return;
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    if super::wasm_simd::depthwise(geometry, input, input_zero_point, weights, channels, output_range, output) {
        return;
    }
    #[cfg(arm_dsp)]
    if super::dsp::depthwise(geometry, input, input_zero_point, weights, channels, output_range, output) {
        return;
    }
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        unsafe { depthwise_avx2(geometry, input, input_zero_point, weights, channels, output_range, output) };
        return;
    }
    depthwise_plain(geometry, input, input_zero_point, weights, channels, output_range, output)
}

/// `depthwise_body` in a frame of its own, so that its block buffers are on the
/// stack only when it runs (a microcontroller's DSP kernel takes most layers).
#[inline(never)]
fn depthwise_plain(
    geometry: &Conv2dGeometry,
    input: &[i8],
    input_zero_point: i32,
    weights: &[i8],
    channels: &Requant<'_>,
    output_range: OutputRange,
    output: &mut [i8],
) {
    depthwise_body(geometry, input, input_zero_point, weights, channels, output_range, output)
}

/// `depthwise_body` compiled for AVX2.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[target_feature(enable = "avx2")]
unsafe fn depthwise_avx2(
    geometry: &Conv2dGeometry,
    input: &[i8],
    input_zero_point: i32,
    weights: &[i8],
    channels: &Requant<'_>,
    output_range: OutputRange,
    output: &mut [i8],
) {
    depthwise_body(geometry, input, input_zero_point, weights, channels, output_range, output)
}

#[inline(always)]
fn depthwise_body(
    geometry: &Conv2dGeometry,
    input: &[i8],
    input_zero_point: i32,
    weights: &[i8],
    channels: &Requant<'_>,
    output_range: OutputRange,
    output: &mut [i8],
) {
    let Conv2dGeometry { input: in_shape, output: out_shape, kernel_h, kernel_w, .. } = *geometry;
    let taps = kernel_h * kernel_w;
    let (in_c, out_c) = (in_shape.c, out_shape.c);
    let multiplier = out_c / in_c;
    // Channels per block: as many as the tap-major weights hold (taps ≤ DEPTHWISE_TAPS).
    let width = DEPTHWISE_BLOCK.min(DEPTHWISE_WEIGHTS / taps.max(1));
    let mut tap_major: [DepthwiseWeight; DEPTHWISE_WEIGHTS] = [0; DEPTHWISE_WEIGHTS];
    let mut x = [0i16; DEPTHWISE_BLOCK];
    // Output channel o reads input channel o / M: the block's sources, divided once.
    let mut source = [0usize; DEPTHWISE_BLOCK];
    // The block's requantisation, decoded once.
    let mut block = [ChannelRequant::default(); DEPTHWISE_BLOCK];
    for start in (0..out_c).step_by(width) {
        let n = width.min(out_c - start);
        for j in 0..n {
            source[j] = (start + j) / multiplier;
            block[j] = channels.channel(start + j);
            for tap in 0..taps {
                // The identity on 32-bit Arm, where `DepthwiseWeight` is i8.
                #[allow(clippy::useless_conversion)]
                let weight = DepthwiseWeight::from(weights[(start + j) * taps + tap]);
                tap_major[tap * width + j] = weight;
            }
        }
        for oy in 0..out_shape.h {
            let (ky0, ky1) = geometry.rows(oy);
            for ox in 0..out_shape.w {
                let (kx0, kx1) = geometry.cols(ox);
                let mut acc = [0i32; DEPTHWISE_BLOCK];
                for (a, channel) in acc.iter_mut().zip(&block[..n]) {
                    *a = channel.bias;
                }
                for ky in ky0..ky1 {
                    let iy = geometry.source_row(oy, ky);
                    for kx in kx0..kx1 {
                        let pixel = &input[(iy * in_shape.w + geometry.source_col(ox, kx)) * in_c..][..in_c];
                        if multiplier == 1 {
                            for (v, &p) in x[..n].iter_mut().zip(&pixel[start..start + n]) {
                                *v = (i32::from(p) - input_zero_point) as i16;
                            }
                        } else {
                            for (v, &from) in x[..n].iter_mut().zip(&source[..n]) {
                                *v = (i32::from(pixel[from]) - input_zero_point) as i16;
                            }
                        }
                        let w = &tap_major[(ky * kernel_w + kx) * width..][..n];
                        for ((a, &wv), &xv) in acc[..n].iter_mut().zip(w).zip(&x[..n]) {
                            *a += i32::from(wv) * i32::from(xv);
                        }
                    }
                }
                let out = &mut output[(oy * out_shape.w + ox) * out_c + start..][..n];
                for ((o, &a), channel) in out.iter_mut().zip(&acc[..n]).zip(&block[..n]) {
                    *o = requantize(a, channel.multiplier, output_range);
                }
            }
        }
    }
}

/// What the engine runs: the microkernel the layer is packed for (a lookup in
/// `kernels::isa`), else `conv2d`. Bit-identical to the reference.
pub fn conv2d_layer(
    geometry: &Conv2dGeometry,
    input: &[i8],
    input_zero_point: i32,
    layer: &Int8Layer<'_>,
    output_range: OutputRange,
    output: &mut [i8],
) {
    if takes_depthwise(geometry) {
        let Int8Layer { weights, channels, packed } = layer;
        return depthwise(geometry, input, input_zero_point, weights, channels, packed, output_range, output);
    }
    // The microkernel the weights are packed for, looked up in this target's table.
    let entry = layer.packed.kernel().and_then(|kernel| kernel.entry_points()).map(|entries| entries.0);
    if entry
        .is_some_and(|run| run(geometry, input, input_zero_point, layer.packed, &layer.channels, output_range, output))
    {
        return;
    }
    conv2d(geometry, input, input_zero_point, layer.weights, &layer.channels, output_range, output);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::fixed_point::Multiplier;
    use crate::spec::Shape;
    use alloc::vec;
    use alloc::vec::Vec;

    /// The reference's dilated taps are those of the kernel spread out with zeros,
    /// at every stride and padding (taps() and source() for dilation > 1).
    #[test]
    fn dilated_reference_is_the_reference_with_a_spread_kernel() {
        let (c, o, h, w, k, d) = (3, 2, 10, 9, 3, 3);
        let spread = (k - 1) * d + 1;
        let input: Vec<i8> = (0..c * h * w).map(|i| ((i * 37) % 255) as i8).collect();
        let weights: Vec<i8> = (0..o * k * k * c).map(|i| ((i * 53) % 255) as i8 / 2).collect();
        let mut wide = vec![0i8; o * spread * spread * c];
        for (i, &v) in weights.iter().enumerate() {
            let (oc, ky, kx, ic) = (i / (k * k * c), i / (k * c) % k, i / c % k, i % c);
            wide[((oc * spread + ky * d) * spread + kx * d) * c + ic] = v;
        }
        let channels = [ChannelRequant { bias: 100, multiplier: Multiplier { mantissa: 1 << 30, shift: -6 } }; 2];
        for (stride, padding) in [(1, 0), (1, 4), (2, 2), (3, 1)] {
            let out = |len: usize| (len + 2 * padding - spread) / stride + 1;
            let geometry = |kernel, dilation| Conv2dGeometry {
                input: Shape::new(c, h, w),
                output: Shape::new(o, out(h), out(w)),
                kernel_h: kernel,
                kernel_w: kernel,
                stride,
                pad_top: padding,
                pad_left: padding,
                groups: 1,
                dilation,
            };
            let len = o * out(h) * out(w);
            let (mut dilated, mut plain) = (vec![0i8; len], vec![0i8; len]);
            let range = OutputRange::new(-3, false);
            let channels = Requant::from(&channels[..]);
            conv2d_reference(&geometry(k, d), &input, 7, &weights, &channels, range, &mut dilated);
            conv2d_reference(&geometry(spread, 1), &input, 7, &wide, &channels, range, &mut plain);
            assert_eq!(dilated, plain, "stride {stride}, padding {padding}");
        }
    }
}
