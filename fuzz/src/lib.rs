//! What each fuzz target does with its input, shared by the cargo-fuzz targets
//! (`fuzz/fuzz_targets/*.rs`, run by `scripts/fuzz`) and by the corpus replay
//! test (`tests/fuzz_corpus.rs`, which includes this file with `#[path]`), so
//! that CI replays every committed input through exactly the fuzzed code.
//!
//! Each function takes arbitrary bytes, calls the library the way a user
//! does, and panics only when tinycnn breaks a promise: a panic inside the
//! library, an `Error::Internal`, or a result that violates a documented
//! property (e.g. a multiplier mantissa outside [2^30, 2^31)).

use tinycnn::format::limits;
use tinycnn::internals::kernels::packed::{Microkernel, OwnedPacking};
use tinycnn::internals::kernels::{conv, dense, output_len, Conv2dGeometry, Int8Layer, Shape};
use tinycnn::internals::quant::quantize::{activation_quantization, quantize_weights};
use tinycnn::internals::spec::fixed_point::{ChannelRequant, OutputRange, Requant};
use tinycnn::internals::spec::fixed_point::{Multiplier, MAX_LEFT_SHIFT};
use tinycnn::preprocess::{self, DIGIT_LEN, MAX_DIGITS};
use tinycnn::{ArenaModel, Dtype, Error, KernelSet, Model};

/// Valid models the `run_model` target can pick by its first byte, so that the
/// fuzzer spends most of its time on inputs to real networks.
pub const MODELS: [&[u8]; 3] = [
    include_bytes!("../../tests/fixtures/tiny-float.safetensors"),
    include_bytes!("../../tests/fixtures/small-int8.safetensors"),
    include_bytes!("../../models/deepconvnet-int8.safetensors"),
];

/// Models with more multiply-accumulates than this are loaded but not run:
/// a hostile file within the limits can ask for ~10^11 MACs (a legitimate
/// "slow model", not a bug), which would only show up as libFuzzer timeouts.
pub const RUN_MACS: u64 = 50_000_000;

/// An error must be one of the typed, user-facing variants: never `Internal`,
/// and its message must say something.
fn check_error(e: &Error) {
    assert!(!matches!(e, Error::Internal(_)), "internal error: {e}");
    assert!(!e.to_string().is_empty(), "empty message for {e:?}");
}

/// Target `load_model`: a model file from arbitrary bytes, loaded both ways:
/// `Model::load` and the heap-free `ArenaModel::load` accept the same files
/// and refuse the others with the same error.
pub fn load_model(data: &[u8]) {
    let allocating = Model::load(data);
    let in_place = load_in_place(data);
    match (allocating, in_place) {
        (Ok(model), Ok((input_len, output_len, arena_bytes))) => {
            check_loaded(&model);
            assert_eq!((input_len, output_len), (model.input_len(), model.output_len()));
            // The portable set may run convolutions and adds in place: never a larger arena.
            assert!(arena_bytes <= model.arena_bytes(), "in place {arena_bytes}, allocating {}", model.arena_bytes());
        }
        // Float models run only from the allocating load.
        (Ok(model), Err(Error::WrongDtype { .. })) if model.dtype() == Dtype::Float => check_loaded(&model),
        (Err(a), Err(b)) => {
            check_error(&a);
            assert_eq!(a, b, "the two loads refuse the file differently");
        }
        (a, b) => panic!("one load accepted the file: allocating {:?}, in place {b:?}", a.map(|_| ())),
    }
}

/// `ArenaModel::load` in as much memory as it asks for (up to 256 MiB): the
/// loaded model's input, output and arena lengths.
fn load_in_place(data: &[u8]) -> Result<(usize, usize, usize), Error> {
    let mut bytes = 64 << 10;
    loop {
        let mut memory = vec![std::mem::MaybeUninit::new(0u8); bytes];
        match ArenaModel::load(data, &mut memory, KernelSet::Portable) {
            Ok((model, _)) => return Ok((model.input_len(), model.output_len(), model.arena_bytes())),
            Err(Error::MemoryTooSmall { needed, .. }) if needed > bytes && needed <= 256 << 20 => bytes = needed + 16,
            Err(e) => return Err(e),
        }
    }
}

/// The memory `ArenaModel::load` asks for `data` with the portable kernels.
fn in_place_memory(data: &[u8]) -> usize {
    let mut probe = vec![std::mem::MaybeUninit::new(0u8); 64 << 10];
    match ArenaModel::load(data, &mut probe, KernelSet::Portable) {
        Err(Error::MemoryTooSmall { needed, .. }) => needed + 16,
        _ => 64 << 10,
    }
}

/// What a loaded model promises: limits held, stats computable.
fn check_loaded(model: &Model<&[u8]>) {
    assert!(model.input_len() > 0 && model.input_len() <= limits::ELEMENTS);
    assert!(model.output_len() > 0 && model.output_len() <= limits::ELEMENTS);
    assert!(model.plan().arena_bytes <= limits::ARENA_BYTES);
    let _ = model.node_stats();
    let _ = model.parameter_count();
}

/// Target `run_model`: load a model, then run it on arbitrary pixels.
///
/// Byte 0 picks the model: `k < MODELS.len()` is `MODELS[k]`; anything else
/// means the model is in the input, as a 4-byte little-endian length and that
/// many bytes. The rest of the input is the pixels, repeated to fill the
/// model's input (an empty rest gives zeros).
pub fn run_model(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else { return };
    let (model_bytes, pixels) = match MODELS.get(usize::from(pick)) {
        Some(m) => (*m, rest),
        None => {
            let Some((len, rest)) = rest.split_first_chunk::<4>() else { return };
            let len = (u32::from_le_bytes(*len) as usize).min(rest.len());
            rest.split_at(len)
        }
    };
    let model = match Model::load(model_bytes) {
        Ok(m) => m,
        Err(e) => return check_error(&e),
    };
    check_loaded(&model);
    if model.macs() > RUN_MACS {
        return;
    }
    let input: Vec<u8> = if pixels.is_empty() {
        vec![0; model.input_len()]
    } else {
        pixels.iter().copied().cycle().take(model.input_len()).collect()
    };
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut out = vec![0f32; model.output_len()];

    // Misuse is refused with the right error.
    let short = &input[..input.len() - 1];
    assert!(matches!(model.run(&mut arena, short, &mut out), Err(Error::InputLength { .. })));
    if !out.is_empty() {
        let last = out.len() - 1;
        assert!(matches!(model.run(&mut arena, &input, &mut out[..last]), Err(Error::OutputLength { .. })));
    }
    if let Some(small) = arena.len().checked_sub(1) {
        assert!(matches!(model.run(&mut arena[..small], &input, &mut out), Err(Error::ArenaTooSmall { .. })));
    }

    // A real run, twice: the arena's previous contents must not matter.
    match model.run(&mut arena, &input, &mut out) {
        Ok(()) => {
            let first = out.clone();
            arena.fill(0xA5);
            model.run(&mut arena, &input, &mut out).unwrap_or_else(|e| panic!("second run failed: {e}"));
            assert!(same_bits(&first, &out), "two runs of one input differ");
            if model.dtype() == tinycnn::Dtype::Int8 {
                // The heap-free load for a microcontroller's kernels, which runs
                // convolutions and adds over their inputs: the same logits.
                let mut memory = vec![std::mem::MaybeUninit::new(0u8); in_place_memory(model_bytes)];
                let (in_place, arena) = ArenaModel::load(model_bytes, &mut memory, KernelSet::Portable)
                    .unwrap_or_else(|e| panic!("the heap-free load refused what the allocating one ran: {e}"));
                in_place.run(arena, &input, &mut out).unwrap_or_else(|e| panic!("the heap-free run failed: {e}"));
                assert!(same_bits(&first, &out), "the heap-free portable run's logits differ");
            }
            if model.dtype() == tinycnn::Dtype::Int8 && out.iter().all(|v| v.is_finite()) {
                model.predict(&mut arena, &input, &mut out).unwrap_or_else(|e| panic!("predict failed: {e}"));
                let sum: f32 = out.iter().sum();
                assert!((sum - 1.0).abs() < 1e-3, "probabilities sum to {sum}");
            }
        }
        Err(e) => check_error(&e),
    }
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// Target `quant_scales`: the quantiser's scale and multiplier derivation.
///
/// Byte 0 picks the function; the rest are its arguments (little-endian floats).
pub fn quant_scales(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else { return };
    match pick % 3 {
        0 => {
            let Some((real, rest)) = rest.split_first_chunk::<8>() else { return };
            multiplier(f64::from_le_bytes(*real), rest);
        }
        1 => {
            let Some((min, rest)) = rest.split_first_chunk::<4>() else { return };
            let Some((max, _)) = rest.split_first_chunk::<4>() else { return };
            activation(f32::from_le_bytes(*min), f32::from_le_bytes(*max));
        }
        _ => {
            let Some((&channels, rest)) = rest.split_first() else { return };
            let weights: Vec<f32> =
                rest.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            weight_scales(&weights, usize::from(channels));
        }
    }
}

/// `Multiplier::from_real`: a Q31 mantissa in [2^30, 2^31) (or 0) and a bounded
/// shift, within 2^-30 relative error; `apply` never panics.
fn multiplier(real: f64, accumulators: &[u8]) {
    let m = match Multiplier::from_real(real) {
        Ok(m) => m,
        Err(e) => {
            check_error(&e);
            assert!(!(real.is_finite() && real > 0.0 && real < 1.0), "refused the multiplier {real}");
            return;
        }
    };
    assert!(real.is_finite() && real > 0.0, "accepted the multiplier {real}");
    if m.mantissa == 0 {
        assert_eq!(m.shift, 0);
        assert!(real < libm_pow2(-31), "{real} encoded as zero");
    } else {
        assert!((1 << 30..=i32::MAX).contains(&m.mantissa), "mantissa {} of {real}", m.mantissa);
        assert!((-31..=MAX_LEFT_SHIFT).contains(&m.shift), "shift {} of {real}", m.shift);
        let error = (m.to_real() - real).abs() / real;
        assert!(error <= libm_pow2(-30), "{real} → {m:?} = {} (relative error {error})", m.to_real());
    }
    for chunk in accumulators.chunks_exact(4) {
        let _ = m.apply(i32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]));
    }
    for x in [0, 1, -1, 127, -128, i32::MAX, i32::MIN] {
        let _ = m.apply(x);
    }
}

fn libm_pow2(e: i32) -> f64 {
    f64::from(e).exp2()
}

/// `activation_quantization`: a finite scale > 0, a zero point in [−128, 127],
/// and (for a finite range containing 0) real 0 exactly representable.
fn activation(min: f32, max: f32) {
    let q = activation_quantization(min, max);
    assert!(q.scale.is_finite() && q.scale > 0.0, "scale {} for [{min}, {max}]", q.scale);
    assert!((-128..=127).contains(&q.zero_point), "zero point {} for [{min}, {max}]", q.zero_point);
}

/// `quantize_weights`: for finite weights, finite positive per-channel scales
/// and int8 values in [−127, 127], one per weight.
fn weight_scales(weights: &[f32], channels: usize) {
    if channels == 0 || !weights.len().is_multiple_of(channels) || weights.iter().any(|w| !w.is_finite()) {
        return; // the loader refuses non-finite weights; shapes always divide
    }
    let (scales, q) = quantize_weights(weights, channels);
    assert_eq!(scales.len(), channels);
    assert_eq!(q.len(), weights.len());
    assert!(q.iter().all(|&v| v != i8::MIN), "an int8 weight of -128");
    for (o, &s) in scales.iter().enumerate() {
        assert!(s.is_finite() && s > 0.0, "channel {o}: scale {s} from {weights:?}");
    }
}

/// Target `preprocess`: arbitrary RGBA (and grayscale) images through
/// `preprocess_*` and `segment_*`.
///
/// Bytes 0–1: the width (1 + u16 % 64); byte 2: bit 0 picks grayscale, bit 1
/// makes the length mismatch on purpose. The rest is the pixels; the height
/// is however many whole rows they hold.
pub fn preprocess(data: &[u8]) {
    let Some((head, pixels)) = data.split_first_chunk::<3>() else { return };
    let width = 1 + usize::from(u16::from_le_bytes([head[0], head[1]])) % 64;
    let gray = head[2] & 1 != 0;
    let channels = if gray { 1 } else { 4 };
    let mut height = pixels.len() / (width * channels);
    if head[2] & 2 != 0 {
        height += 1; // a buffer one row short: must be a Data error
    }
    let pixels = &pixels[..(height * width * channels).min(pixels.len())];
    let (one, many) = if gray {
        (preprocess::preprocess_gray(pixels, width, height), preprocess::segment_gray(pixels, width, height))
    } else {
        (preprocess::preprocess_rgba(pixels, width, height), preprocess::segment_rgba(pixels, width, height))
    };
    match one {
        Ok(digit) => assert_eq!(digit.len(), DIGIT_LEN),
        Err(e) => {
            check_error(&e);
            assert!(matches!(e, Error::Data(_) | Error::EmptyImage), "{e:?}");
        }
    }
    match many {
        Ok(digits) => assert!(!digits.is_empty() && digits.len() <= MAX_DIGITS, "{} digits", digits.len()),
        Err(e) => {
            check_error(&e);
            assert!(matches!(e, Error::Data(_) | Error::EmptyImage), "{e:?}");
        }
    }
}

/// Target `kernels`: the SIMD microkernels (unsafe code) against the scalar reference.
/// The first bytes choose a conv geometry (or a dense layer), zero points and
/// multipliers; the rest fills weights and input. Every microkernel this CPU runs
/// must give the reference's bytes, and never read outside its buffers.
pub fn kernels(data: &[u8]) {
    let mut bytes = Bytes(data);
    let c = 1 + bytes.next() as usize % 40;
    let (h, w) = (1 + bytes.next() as usize % 20, 1 + bytes.next() as usize % 20);
    let (kh, kw) = (1 + bytes.next() as usize % 6, 1 + bytes.next() as usize % 6);
    let stride = 1 + bytes.next() as usize % 3;
    let padding = bytes.next() as usize % 3;
    let out_c = 1 + bytes.next() as usize % 40;
    let zp = i32::from(bytes.next() as i8);
    let range = OutputRange::new(i32::from(bytes.next() as i8), bytes.next() % 2 == 0);
    let dense_layer = bytes.next() % 4 == 0;
    let channels: Vec<ChannelRequant> = (0..out_c)
        .map(|_| {
            let exponent = -(i32::from(bytes.next() % 40)) + 8; // multipliers 2^-31 .. 2^8
            let real = f64::from(1 + u32::from(bytes.next())) / 256.0 * libm_pow2(exponent);
            ChannelRequant {
                bias: i32::from_le_bytes([bytes.next(), bytes.next(), bytes.next(), bytes.next() % 64]) - (1 << 29),
                multiplier: Multiplier::from_real(real).unwrap_or(Multiplier { mantissa: 0, shift: 0 }),
            }
        })
        .collect();
    let channels = Requant::from(&channels[..]);
    if dense_layer {
        let len = c * h * w;
        let weights: Vec<i8> = (0..out_c * len).map(|_| (bytes.next() as i8).max(-127)).collect();
        let input: Vec<i8> = (0..len).map(|_| bytes.next() as i8).collect();
        let mut want = vec![0i8; out_c];
        dense::dense_reference(&input, zp, &weights, &channels, range, &mut want);
        for kernel in Microkernel::available() {
            let packing = OwnedPacking::new(kernel, &weights, &channels, 1, zp).unwrap();
            let packed = packing.weights();
            let mut got = vec![0i8; out_c];
            dense::dense_layer(
                &input,
                zp,
                &Int8Layer { weights: &weights, channels, packed: &packed },
                range,
                &mut got,
            );
            assert_eq!(got, want, "{kernel:?}: dense {len} → {out_c}");
        }
        return;
    }
    let (Some(oh), Some(ow)) = (output_len(h, kh, stride, padding), output_len(w, kw, stride, padding)) else {
        return;
    };
    let g = Conv2dGeometry {
        input: Shape::new(c, h, w),
        output: Shape::new(out_c, oh, ow),
        kernel_h: kh,
        kernel_w: kw,
        stride,
        pad_top: padding,
        pad_left: padding,
        groups: 1,
        dilation: 1,
    };
    let weights: Vec<i8> = (0..out_c * kh * kw * c).map(|_| (bytes.next() as i8).max(-127)).collect();
    let input: Vec<i8> = (0..g.input.len()).map(|_| bytes.next() as i8).collect();
    let mut want = vec![0i8; g.output.len()];
    conv::conv2d_reference(&g, &input, zp, &weights, &channels, range, &mut want);
    for kernel in Microkernel::available() {
        let packing = OwnedPacking::new(kernel, &weights, &channels, kh, zp).unwrap();
        let packed = packing.weights();
        let mut got = vec![0i8; g.output.len()];
        conv::conv2d_layer(
            &g,
            &input,
            zp,
            &Int8Layer { weights: &weights, channels, packed: &packed },
            range,
            &mut got,
        );
        assert_eq!(got, want, "{kernel:?}: {g:?}");
    }
}

/// The fuzz input as an endless byte stream (zeros once it runs out), so that every
/// input makes a whole test case.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn next(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
}

/// Target `import_tflite`: a `.tflite` file from arbitrary bytes → the importer.
/// What it writes must load, and run on an input of zero points (within `RUN_MACS`).
#[cfg(feature = "tflite")]
pub fn import_tflite(data: &[u8]) {
    match tinycnn::internals::tflite::import(data) {
        Ok(imported) => {
            let model = match Model::load(imported.file.as_slice()) {
                Ok(model) => model,
                Err(e) => panic!("the importer wrote a file the loader refuses: {e}"),
            };
            check_loaded(&model);
            if model.macs() <= RUN_MACS {
                let zero_point = model.graph().input.quant.map_or(0, |q| q.zero_point) as i8;
                let input = vec![zero_point; model.input_len()];
                let mut output = vec![0i8; model.int8_output_len()];
                let mut arena = vec![0u8; model.arena_bytes()];
                if let Err(e) = model.run_int8(&mut arena, &input, &mut output) {
                    panic!("an imported model fails to run: {e}");
                }
            }
        }
        Err(e) => check_error(&e),
    }
}
