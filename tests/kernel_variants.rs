//! Every fast kernel against its scalar reference on random shapes and values:
//! outputs must be bit-identical. Runs natively (AVX2 where the CPU has it) and
//! under wasm32 (simd128 builds) with wasm-bindgen-test.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use tinycnn::internals::kernels::eltwise::{add, add_reference, add_terms, AddInput};
use tinycnn::internals::kernels::packed::{Microkernel, OwnedPacking};
use tinycnn::internals::kernels::{conv, dense, dot, output_len, pool, winograd, Conv2dGeometry, Int8Layer, Shape};
use tinycnn::internals::spec::fixed_point::{ChannelRequant, Multiplier, OutputRange, Requant};
use tinycnn::internals::spec::output_len_padded;

/// xorshift64*: deterministic, no dependency, same sequence on every target.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn range(&mut self, lo: i32, hi: i32) -> i32 {
        lo + (self.next() % (hi - lo + 1) as u64) as i32
    }
    fn i8s(&mut self, n: usize, lo: i32, hi: i32) -> Vec<i8> {
        (0..n).map(|_| self.range(lo, hi) as i8).collect()
    }
    /// Mostly multipliers < 1 (vector requantisation); with `left_shifts`, one channel in
    /// eight gets a multiplier ≥ 1, which sends its block to the scalar requantisation.
    fn channels(&mut self, n: usize, left_shifts: bool) -> Vec<ChannelRequant> {
        (0..n)
            .map(|_| {
                let exponent = if left_shifts && self.below(8) == 0 {
                    self.range(0, 3) as f64
                } else {
                    -(self.range(4, 16) as f64)
                };
                let fraction = self.below(1000) as f64 / 1000.0;
                // One channel in 12 what the 512-bit kernels' one-add rounding does not take
                // (`ChannelRequant::rounds_in_one_add`), so that their exact fallback runs too:
                // a power of two (mantissa 2^30), a multiplier in [0.5, 1) (no right shift);
                // one in 24 a bias of 2^29..2^30 (a saturated channel's, as in MLPerf's VWW).
                let (real, bias) = match self.below(24) {
                    0 => (2f64.powf(exponent), self.range(-50_000, 50_000)),
                    1 => (0.5 + fraction / 2000.0, self.range(-50_000, 50_000)),
                    2 => (
                        2f64.powf(exponent - fraction),
                        self.range(1 << 29, 1 << 30) * if self.below(2) == 0 { 1 } else { -1 },
                    ),
                    _ => (2f64.powf(exponent - fraction), self.range(-50_000, 50_000)),
                };
                ChannelRequant { bias, multiplier: Multiplier::from_real(real).unwrap() }
            })
            .collect()
    }
}

/// `channels` as a loaded model keeps them (`Requant::Compact`): biases and
/// mantissas as little-endian bytes, the multipliers apart, one for all when
/// they are equal. The fast kernels read this form, the reference the plain one.
struct Compact {
    channels: usize,
    bias: Vec<u8>,
    mantissas: Vec<u8>,
    shifts: Vec<u8>,
}

impl Compact {
    fn new(channels: &[ChannelRequant]) -> Compact {
        let uniform = channels.windows(2).all(|w| w[0].multiplier == w[1].multiplier);
        let kept = if uniform { &channels[..channels.len().min(1)] } else { channels };
        Compact {
            channels: channels.len(),
            bias: channels.iter().flat_map(|c| c.bias.to_le_bytes()).collect(),
            mantissas: kept.iter().flat_map(|c| c.multiplier.mantissa.to_le_bytes()).collect(),
            shifts: kept.iter().map(|c| c.multiplier.shift as i8 as u8).collect(),
        }
    }

    fn requant(&self) -> Requant<'_> {
        Requant::Compact { channels: self.channels, bias: &self.bias, mantissas: &self.mantissas, shifts: &self.shifts }
    }
}

/// Every microkernel this build can run here (none on a scalar build), with what
/// `pack` made of the layer for it; each must have packed something.
fn packed_for_each(pack: impl Fn(Microkernel) -> tinycnn::Result<OwnedPacking>) -> Vec<(Microkernel, OwnedPacking)> {
    Microkernel::available()
        .into_iter()
        .map(|kernel| {
            let packed = pack(kernel).unwrap();
            assert_eq!(packed.weights().kernel(), Some(kernel), "{kernel:?} is available but packed nothing");
            (kernel, packed)
        })
        .collect()
}

/// Every microkernel's packing of `rows` rows of taps (a dense layer: 1).
fn packings(weights: &[i8], channels: &Requant<'_>, rows: usize, zp: i32) -> Vec<(Microkernel, OwnedPacking)> {
    packed_for_each(|kernel| OwnedPacking::new(kernel, weights, channels, rows, zp))
}

/// Every microkernel's packing of a convolution, as the engine packs it (Winograd
/// for the layers a Winograd kernel takes).
fn conv_packings(
    g: &Conv2dGeometry,
    weights: &[i8],
    channels: &Requant<'_>,
    zp: i32,
) -> Vec<(Microkernel, OwnedPacking)> {
    packed_for_each(|kernel| OwnedPacking::conv(kernel, g, weights, channels, zp))
}

/// The comparisons below reach only the microkernels `packings` finds: each build and CPU
/// that has one must offer it, or they would pass without testing it.
#[test]
fn this_build_offers_its_microkernels() {
    let available = Microkernel::available();
    let expected = [
        ("neon", cfg!(target_arch = "aarch64")),
        ("simd128", cfg!(all(target_arch = "wasm32", target_feature = "simd128"))),
        ("relaxed-simd", cfg!(all(target_arch = "wasm32", target_feature = "relaxed-simd"))),
        ("simd128-winograd", cfg!(all(target_arch = "wasm32", target_feature = "simd128"))),
        #[cfg(target_arch = "x86_64")]
        ("avx-vnni (256-bit)", std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("avxvnni")),
        #[cfg(target_arch = "x86_64")]
        (
            "avx512-vnni (512-bit)",
            std::is_x86_feature_detected!("avx512vnni") && std::is_x86_feature_detected!("avx512bw"),
        ),
    ];
    for (kernel, here) in expected {
        assert_eq!(available.iter().any(|k| k.name() == kernel), here, "{kernel} in {available:?}");
    }
}

/// A layer packed for a microkernel runs on it (the module's entry accepts it), rather
/// than falling back to the portable kernels, which would pass the comparisons below too.
#[test]
fn packed_layers_take_their_microkernel() {
    let mut rng = Rng(7);
    let g = Conv2dGeometry {
        input: Shape::new(16, 6, 6),
        output: Shape::new(20, 6, 6),
        kernel_h: 3,
        kernel_w: 3,
        stride: 1,
        pad_top: 1,
        pad_left: 1,
        groups: 1,
        dilation: 1,
    };
    let input = rng.i8s(g.input.len(), -128, 127);
    let weights = rng.i8s(g.output.c * 9 * g.input.c, -127, 127);
    let channels = rng.channels(g.output.c, false);
    let compact = Compact::new(&channels);
    let fast = compact.requant();
    let range = OutputRange::new(-128, true);
    let dense_input = &input[..100];
    let dense_weights = &weights[..100 * g.output.c];
    for (kernel, packed) in conv_packings(&g, &weights, &fast, 3) {
        let (_, dense_packed) = packings(dense_weights, &fast, 1, 3).into_iter().find(|(k, _)| *k == kernel).unwrap();
        let (mut out, mut dense_out) = (vec![0i8; g.output.len()], vec![0i8; g.output.c]);
        let args = (&packed.weights(), &fast, range);
        let (conv2d, dense) = kernel.entry_points().unwrap_or_else(|| panic!("{kernel:?} has no table entry"));
        let taken = (
            conv2d(&g, &input, 3, args.0, args.1, args.2, &mut out),
            dense(dense_input, 3, &dense_packed.weights(), args.1, args.2, &mut dense_out),
        );
        assert_eq!(taken, (true, true), "{kernel:?} refused its own packing (conv, dense)");
    }
}

fn random_geometry(rng: &mut Rng) -> Conv2dGeometry {
    loop {
        let c = 1 + rng.below(40);
        let (h, w) = (1 + rng.below(12), 1 + rng.below(12));
        let (kh, kw) = (1 + rng.below(5), 1 + rng.below(5));
        let stride = 1 + rng.below(3);
        // Every side its own padding in a third of the cases (TFLite's SAME pads one more
        // below and right than above and left when the total is odd), else symmetric.
        let [top, left, bottom, right] = if rng.below(3) == 0 {
            [rng.below(3), rng.below(3), rng.below(3), rng.below(3)]
        } else {
            [rng.below(3); 4]
        };
        let (Some(oh), Some(ow)) =
            (output_len_padded(h, kh, stride, top, bottom), output_len_padded(w, kw, stride, left, right))
        else {
            continue;
        };
        let o = 1 + rng.below(40);
        return Conv2dGeometry {
            input: Shape::new(c, h, w),
            output: Shape::new(o, oh, ow),
            kernel_h: kh,
            kernel_w: kw,
            stride,
            pad_top: top,
            pad_left: left,
            groups: 1,
            dilation: 1,
        };
    }
}

/// The reference's output of a conv layer, once `conv::conv2d` (the portable and the
/// depthwise kernels) and every microkernel's packing (as the engine packs it) have
/// given the same bytes.
#[allow(clippy::too_many_arguments)]
fn conv_checked(
    label: &str,
    g: &Conv2dGeometry,
    input: &[i8],
    weights: &[i8],
    channels: &[ChannelRequant],
    zp: i32,
    range: OutputRange,
) -> Vec<i8> {
    let compact = Compact::new(channels);
    let (reference, fast) = (Requant::from(channels), compact.requant());
    let mut want = vec![0i8; g.output.len()];
    conv::conv2d_reference(g, input, zp, weights, &reference, range, &mut want);
    let mut got = vec![1i8; g.output.len()];
    conv::conv2d(g, input, zp, weights, &fast, range, &mut got);
    assert_eq!(got, want, "{label}, portable: {g:?}");
    // Grouped and dilated convolutions pack nothing: `conv::conv2d` above runs their kernels.
    let packings = if g.groups == 1 && g.dilation == 1 { conv_packings(g, weights, &fast, zp) } else { Vec::new() };
    for (kernel, packed) in packings {
        let layer = Int8Layer { weights, channels: fast, packed: &packed.weights() };
        let mut got = vec![1i8; g.output.len()];
        conv::conv2d_layer(g, input, zp, &layer, range, &mut got);
        assert_eq!(got, want, "{label}, {kernel:?}: {g:?}");
    }
    want
}

/// Winograd's plain form (`winograd::conv2d_plain`) on weights transformed in blocks of `lanes`.
fn plain_winograd(
    g: &Conv2dGeometry,
    input: &[i8],
    weights: &[i8],
    channels: &[ChannelRequant],
    zp: i32,
    range: OutputRange,
    lanes: usize,
) -> Vec<i8> {
    let compact = Compact::new(channels);
    let mut transformed = vec![0i16; winograd::weights_len(g.output.c, g.input.c, lanes)];
    assert!(winograd::transform_weights(weights, g.output.c, g.input.c, lanes, &mut transformed));
    let mut got = vec![1i8; g.output.len()];
    assert!(winograd::conv2d_plain(g, input, zp, &transformed, lanes, &compact.requant(), range, &mut got));
    got
}

#[test]
fn conv2d_matches_reference() {
    let mut rng = Rng(0x5eed_c0de);
    for case in 0..300 {
        let g = random_geometry(&mut rng);
        let input = rng.i8s(g.input.len(), -128, 127);
        let weights = rng.i8s(g.output.c * g.kernel_h * g.kernel_w * g.input.c, -127, 127);
        let channels = rng.channels(g.output.c, case % 3 == 0);
        let zp = rng.range(-128, 127);
        let range = OutputRange::new(rng.range(-128, 127), rng.below(2) == 0);
        conv_checked(&format!("case {case}"), &g, &input, &weights, &channels, zp, range);
    }
}

/// Rows of 16 to 40 output pixels with at most 16 output channels: the 512-bit VNNI
/// kernel's 16-pixel tiles, whose windows in one output row it addresses as one pointer
/// and `stride × input channels` offsets (specialised for 1, 3, 6, 8 and 16 bytes), and
/// the tiles that wrap to the next row.
#[test]
fn conv2d_wide_rows_match_reference() {
    let mut rng = Rng(0x0016_7113);
    for case in 0..80 {
        let c = [1, 3, 6, 8, 16, 1 + rng.below(20)][case % 6];
        let stride = 1 + rng.below(2);
        let (kh, kw) = (1 + rng.below(3), 1 + rng.below(3));
        let pad = rng.below(2);
        let w = 16 * stride + rng.below(25);
        let h = 1 + rng.below(4);
        let (Some(oh), Some(ow)) =
            (output_len_padded(h, kh, stride, pad, pad), output_len_padded(w, kw, stride, pad, pad))
        else {
            continue;
        };
        let g = Conv2dGeometry {
            input: Shape::new(c, h, w),
            output: Shape::new(1 + rng.below(16), oh, ow),
            kernel_h: kh,
            kernel_w: kw,
            stride,
            pad_top: pad,
            pad_left: pad,
            groups: 1,
            dilation: 1,
        };
        let input = rng.i8s(g.input.len(), -128, 127);
        let weights = rng.i8s(g.output.c * kh * kw * c, -127, 127);
        let channels = rng.channels(g.output.c, case % 3 == 0);
        let zp = rng.range(-128, 127);
        let range = OutputRange::new(rng.range(-128, 127), rng.below(2) == 0);
        conv_checked(&format!("case {case}"), &g, &input, &weights, &channels, zp, range);
    }
}

/// A 3×3 stride-1 convolution (the layers Winograd takes) of random size, channels and padding.
fn random_winograd_geometry(rng: &mut Rng, max_channels: usize) -> Conv2dGeometry {
    loop {
        let (h, w) = (1 + rng.below(15), 1 + rng.below(15));
        let [top, left, bottom, right] = if rng.below(3) == 0 {
            [rng.below(3), rng.below(3), rng.below(3), rng.below(3)]
        } else {
            [rng.below(2); 4]
        };
        let (Some(oh), Some(ow)) = (output_len_padded(h, 3, 1, top, bottom), output_len_padded(w, 3, 1, left, right))
        else {
            continue;
        };
        return Conv2dGeometry {
            input: Shape::new(1 + rng.below(max_channels), h, w),
            output: Shape::new(1 + rng.below(40), oh, ow),
            kernel_h: 3,
            kernel_w: 3,
            stride: 1,
            pad_top: top,
            pad_left: left,
            groups: 1,
            dilation: 1,
        };
    }
}

/// Winograd F(2×2, 3×3) against the direct reference: its plain form (on every target,
/// with blocks of 4 and 16 channels) and every microkernel's packing (Winograd from 8
/// input channels), odd and even output sizes, padding on any side, channel counts
/// that are not multiples of 8.
#[test]
fn winograd_matches_reference() {
    let mut rng = Rng(0x0f2_3333);
    for case in 0..150 {
        let g = random_winograd_geometry(&mut rng, if case % 10 == 0 { 256 } else { 40 });
        assert!(winograd::computes(&g), "{g:?}");
        // In a quarter of the cases, extreme inputs and weights: the largest transformed values.
        let extreme = case % 4 == 0;
        let input = rng.i8s(g.input.len(), if extreme { 127 } else { -128 }, 127);
        let weights = rng.i8s(g.output.c * 9 * g.input.c, -127, if extreme { -126 } else { 127 });
        let channels = rng.channels(g.output.c, case % 3 == 0);
        let zp = if extreme { -128 } else { rng.range(-128, 127) };
        let range = OutputRange::new(rng.range(-128, 127), rng.below(2) == 0);
        let want = conv_checked(&format!("case {case}"), &g, &input, &weights, &channels, zp, range);
        for lanes in [4, 16] {
            let got = plain_winograd(&g, &input, &weights, &channels, zp, range, lanes);
            assert_eq!(got, want, "case {case}, plain Winograd, blocks of {lanes}: {g:?}");
        }
    }
}

/// The largest sums Winograd must keep exact: 256 channels of x − zp = 255 against
/// weights of ±127 (the loader's bound; the transformed values at theirs), with the
/// loader's largest bias of the other sign.
#[test]
fn winograd_extremes_stay_exact() {
    let g = Conv2dGeometry {
        input: Shape::new(winograd::CHANNELS_MAX, 5, 5),
        output: Shape::new(8, 5, 5),
        kernel_h: 3,
        kernel_w: 3,
        stride: 1,
        pad_top: 1,
        pad_left: 1,
        groups: 1,
        dilation: 1,
    };
    let input = vec![127i8; g.input.len()];
    let magnitude = tinycnn::format::limits::bias_magnitude(9 * g.input.c) as i32;
    for (weight, bias) in [(-127i8, magnitude), (127, -magnitude)] {
        let weights = vec![weight; 8 * 9 * g.input.c];
        // Sums near ±2^31 land near ±60 after this multiplier: a wrong sum would show.
        let channels = vec![ChannelRequant { bias, multiplier: Multiplier::from_real(3e-8).unwrap() }; 8];
        let range = OutputRange::new(0, false);
        let want = conv_checked(&format!("w = {weight}"), &g, &input, &weights, &channels, -128, range);
        assert_eq!(plain_winograd(&g, &input, &weights, &channels, -128, range, 4), want, "plain, w = {weight}");
    }
}

/// Depthwise convolutions (and depth multipliers 2-3) of random size, window, stride,
/// dilation and padding, channel counts that are and are not whole vectors: the
/// engine's kernel (`conv::conv2d`: the SIMD depthwise kernels where they take the
/// layer) against the reference.
#[test]
fn depthwise_matches_reference() {
    let mut rng = Rng(0xd3e9_7415);
    for case in 0..300 {
        let c = [1 + rng.below(12), 4 * (1 + rng.below(20)), 8 * (1 + rng.below(12))][case % 3];
        let multiplier = if case % 5 == 0 { 2 + rng.below(2) } else { 1 };
        let (kh, kw) = (1 + rng.below(7), 1 + rng.below(7));
        let (stride, dilation) = (1 + rng.below(2), if case % 7 == 0 { 2 } else { 1 });
        let (h, w) = (1 + rng.below(14), 1 + rng.below(14));
        let [top, left, bottom, right] = [rng.below(4), rng.below(4), rng.below(4), rng.below(4)];
        let (Some(oh), Some(ow)) = (
            output_len_padded(h, (kh - 1) * dilation + 1, stride, top, bottom),
            output_len_padded(w, (kw - 1) * dilation + 1, stride, left, right),
        ) else {
            continue;
        };
        let g = Conv2dGeometry {
            input: Shape::new(c, h, w),
            output: Shape::new(c * multiplier, oh, ow),
            kernel_h: kh,
            kernel_w: kw,
            stride,
            pad_top: top,
            pad_left: left,
            groups: c,
            dilation,
        };
        let input = rng.i8s(g.input.len(), -128, 127);
        let weights = rng.i8s(g.output.c * kh * kw, -127, 127);
        let channels = rng.channels(g.output.c, case % 4 == 0);
        let zp = rng.range(-128, 127);
        let range = OutputRange::new(rng.range(-128, 127), rng.below(2) == 0);
        conv_checked(&format!("case {case}"), &g, &input, &weights, &channels, zp, range);
    }
    // Inputs too large for the padded copies of the x86 VNNI kernels (64 KiB): their
    // fallback, whatever the CPU (one with AVX-VNNI would take the cases above).
    for (case, stride) in [(0, 1), (1, 2)] {
        let (h, w, c) = (48, 48, 32);
        let oh = output_len_padded(h, 3, stride, 1, 1).unwrap();
        let ow = output_len_padded(w, 3, stride, 1, 1).unwrap();
        let g = Conv2dGeometry {
            input: Shape::new(c, h, w),
            output: Shape::new(c, oh, ow),
            kernel_h: 3,
            kernel_w: 3,
            stride,
            pad_top: 1,
            pad_left: 1,
            groups: c,
            dilation: 1,
        };
        let input = rng.i8s(g.input.len(), -128, 127);
        let weights = rng.i8s(c * 9, -127, 127);
        let channels = rng.channels(c, false);
        let zp = rng.range(-128, 127);
        conv_checked(&format!("large case {case}"), &g, &input, &weights, &channels, zp, OutputRange::new(3, true));
    }
}

#[test]
fn dense_and_dot_variants_match_reference() {
    let mut rng = Rng(0xdead_beef);
    for case in 0..300 {
        let (i, o) = (1 + rng.below(1100), 1 + rng.below(70));
        let input = rng.i8s(i, -128, 127);
        let weights = rng.i8s(i * o, -127, 127);
        let channels = rng.channels(o, case % 3 == 0);
        let compact = Compact::new(&channels);
        let (reference, fast) = (Requant::from(&channels[..]), compact.requant());
        let zp = rng.range(-128, 127);
        let range = OutputRange::new(rng.range(-128, 127), rng.below(2) == 0);
        let mut want = vec![0i8; o];
        dense::dense_reference(&input, zp, &weights, &reference, range, &mut want);
        let mut got = vec![1i8; o];
        dense::dense(&input, zp, &weights, &fast, range, &mut got);
        assert_eq!(got, want, "case {case}: dense {i}→{o}");
        for (kernel, packed) in packings(&weights, &fast, 1, zp) {
            let layer = Int8Layer { weights: &weights, channels: fast, packed: &packed.weights() };
            let mut got = vec![1i8; o];
            dense::dense_layer(&input, zp, &layer, range, &mut got);
            assert_eq!(got, want, "case {case}, {kernel:?}: dense {i}→{o}");
        }
        let patch: Vec<i16> = input.iter().map(|&x| (i32::from(x) - zp) as i16).collect();
        let mut scalar = vec![1i8; o];
        dot::rows_scalar(&patch, &weights, &reference, range, &mut scalar);
        assert_eq!(scalar, want, "case {case}: rows_scalar");
    }
}

#[test]
fn requantisation_extremes_match_reference() {
    // Accumulators up to ±(2^31 − 1) (the loader's bias limit for the taps plus the largest sums) times
    // multipliers from just below 1 down to 2^-31: the 64-bit products reach 2^61. Those
    // near 2^-24 and 2^-25 bring such products back into int8, where rounding shows.
    let multipliers = [
        1.0 - 1e-9,
        0.75,
        0.5 + 1e-9,
        2f64.powi(-17),
        2f64.powi(-24) * 1.9,
        2f64.powi(-25) * 1.5,
        2f64.powi(-25) * 1.03,
        2f64.powi(-30) * 1.5,
        2f64.powi(-31),
    ];
    let mut rng = Rng(0x0dd_ba11);
    for case in 0..60 {
        let (i, o) = (1 + rng.below(1000), 1 + rng.below(40));
        let input: Vec<i8> = (0..i).map(|_| if rng.below(2) == 0 { 127 } else { -128 }).collect();
        let weights: Vec<i8> = (0..i * o).map(|_| if rng.below(2) == 0 { 127 } else { -127 }).collect();
        let channels: Vec<ChannelRequant> = (0..o)
            .map(|_| ChannelRequant {
                bias: {
                    let bound = tinycnn::format::limits::bias_magnitude(i) as i32 - rng.range(0, 1000);
                    if rng.below(2) == 0 {
                        bound
                    } else {
                        -bound
                    }
                },
                multiplier: Multiplier::from_real(multipliers[rng.below(multipliers.len())]).unwrap(),
            })
            .collect();
        let compact = Compact::new(&channels);
        let (reference, fast) = (Requant::from(&channels[..]), compact.requant());
        let zp = if case % 2 == 0 { -128 } else { 127 };
        let range = OutputRange::new(rng.range(-128, 127), rng.below(2) == 0);
        let mut want = vec![0i8; o];
        dense::dense_reference(&input, zp, &weights, &reference, range, &mut want);
        for (kernel, packed) in packings(&weights, &fast, 1, zp) {
            let layer = Int8Layer { weights: &weights, channels: fast, packed: &packed.weights() };
            let mut got = vec![1i8; o];
            dense::dense_layer(&input, zp, &layer, range, &mut got);
            assert_eq!(got, want, "case {case}, {kernel:?}: dense {i}→{o}");
        }
    }
}

#[test]
fn extreme_values_do_not_overflow() {
    // Largest products: x − zp = ±255 with |w| = 127 over many taps.
    let g = Conv2dGeometry {
        input: Shape::new(64, 5, 5),
        output: Shape::new(8, 5, 5),
        kernel_h: 5,
        kernel_w: 5,
        stride: 1,
        pad_top: 2,
        pad_left: 2,
        groups: 1,
        dilation: 1,
    };
    let input = vec![127i8; g.input.len()];
    let weights = vec![127i8; 8 * 25 * 64];
    // The largest bias the loader takes for 5·5·64 taps: bias + sum reaches i32::MAX.
    let bias = tinycnn::format::limits::bias_magnitude(5 * 5 * 64) as i32;
    let channels = vec![ChannelRequant { bias, multiplier: Multiplier::from_real(1e-6).unwrap() }; 8];
    conv_checked("extremes", &g, &input, &weights, &channels, -128, OutputRange::new(0, false));
}

#[test]
fn maxpool_matches_reference() {
    let mut rng = Rng(42);
    for case in 0..200 {
        let mut g = random_geometry(&mut rng);
        g.kernel_w = g.kernel_h;
        g.pad_top = g.pad_top.min(g.kernel_h / 2); // pools pad every side alike
        g.pad_left = g.pad_top;
        let (Some(oh), Some(ow)) = (
            output_len(g.input.h, g.kernel_h, g.stride, g.pad_top),
            output_len(g.input.w, g.kernel_w, g.stride, g.pad_top),
        ) else {
            continue;
        };
        g.output = Shape::new(g.input.c, oh, ow);
        let input = rng.i8s(g.input.len(), -128, 127);
        let (mut want, mut got) = (vec![0i8; g.output.len()], vec![1i8; g.output.len()]);
        pool::maxpool2d_reference(&g, &input, &mut want);
        pool::maxpool2d(&g, &input, &mut got);
        assert_eq!(got, want, "case {case}");
    }
}

#[test]
fn global_avgpool_matches_reference() {
    let mut rng = Rng(0x9a7);
    for case in 0..200 {
        let (channels, pixels) = (1 + rng.below(150), 1 + rng.below(100));
        // Mostly random values; every fourth case all −128 or all 127 (the largest sums).
        let input = match case % 8 {
            3 => vec![-128i8; channels * pixels],
            7 => vec![127i8; channels * pixels],
            _ => rng.i8s(channels * pixels, -128, 127),
        };
        let (mut want, mut got) = (vec![0i8; channels], vec![1i8; channels]);
        pool::global_avgpool_reference(&input, channels, &mut want);
        pool::global_avgpool(&input, channels, &mut got);
        assert_eq!(got, want, "case {case}: {channels} channels, {pixels} pixels");
    }
}

#[test]
fn add_matches_reference() {
    let mut rng = Rng(0xadd);
    for case in 0..200 {
        let (n, len) = (1 + rng.below(8), 1 + rng.below(300));
        let inputs: Vec<Vec<i8>> = (0..n).map(|_| rng.i8s(len, -128, 127)).collect();
        let inputs: Vec<&[i8]> = inputs.iter().map(Vec::as_slice).collect();
        let params: Vec<AddInput> = (0..n)
            .map(|_| AddInput {
                zero_point: rng.range(-128, 127),
                multiplier: Multiplier::from_real(0.5 * (1 + rng.below(1000)) as f64 / 1000.0).unwrap(),
            })
            .collect();
        // One case in eight: an output multiplier ≥ 1, which the vector adds leave to the tables.
        let exponent = if case % 8 == 0 { 0.5 } else { -(rng.range(10, 22) as f64) };
        let output = Multiplier::from_real(2f64.powf(exponent)).unwrap();
        let range = OutputRange::new(rng.range(-128, 127), rng.below(2) == 0);
        let terms: Vec<[i32; 256]> = params
            .iter()
            .map(|p| {
                let mut table = [0; 256];
                add_terms(p, &mut table);
                table
            })
            .collect();
        let (mut want, mut got) = (vec![0i8; len], vec![1i8; len]);
        add_reference(&inputs, &params, output, range, &mut want);
        add(&inputs, &params, &terms, output, range, &mut got);
        assert_eq!(got, want, "case {case}: {n} inputs of {len}");
    }
}
