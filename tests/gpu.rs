//! The WebGPU engine's own checks: its fixed-point primitives, batching and
//! buffer reuse, errors, and DeepConvNet-sized models on thousands of MNIST
//! digits against the CPU integer engine. Random models of every op run on the
//! GPU in the every-backend suite (tests/backends.rs).
//!
//! These tests need a WebGPU adapter. Without one they FAIL (a skipped GPU
//! test would hide a broken setup): on Debian/Ubuntu,
//! `apt-get install mesa-vulkan-drivers libvulkan1` provides lavapipe, a
//! software Vulkan device that is enough.
#![cfg(feature = "gpu")]

mod common;

use std::path::PathBuf;
use std::time::Instant;

use common::backends::{assert_logits_equal, cpu_observe, first_difference};
use common::nets::Rng;
use tinycnn::format::{write_model, TensorData};
use tinycnn::gpu::{DotProduct, GpuEngine, GpuError, GpuOptions};
use tinycnn::internals::spec::fixed_point::{
    rounding_divide, rounding_divide_by_pot, saturating_rounding_doubling_high_mul, Multiplier,
};
use tinycnn::Model;

const PATHS: [DotProduct; 2] = [DotProduct::Packed, DotProduct::Plain];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn engine_with(model: &Model, options: GpuOptions) -> GpuEngine {
    match GpuEngine::with_options_blocking(model, options) {
        Ok(engine) => {
            let path = if engine.uses_packed_dot() { "dot4I8Packed" } else { "plain i32" };
            let info = engine.adapter_info();
            eprintln!("gpu: {} ({:?}, {}), {path} kernels", info.name, info.backend, info.driver_info);
            engine
        }
        Err(e @ GpuError::NoAdapter(_)) => panic!(
            "{e}\nThe GPU tests need a WebGPU adapter; on Debian/Ubuntu `apt-get install mesa-vulkan-drivers libvulkan1` \
             gives the software Vulkan device lavapipe."
        ),
        Err(e) => panic!("GPU engine: {e}"),
    }
}

fn engine(model: &Model, dot: DotProduct) -> GpuEngine {
    engine_with(model, GpuOptions { dot_product: dot, ..GpuOptions::default() })
}

/// Every activation and the logits of `pixels`, GPU vs CPU.
fn assert_same(what: &str, model: &Model, gpu: &mut GpuEngine, pixels: &[u8]) {
    let (cpu_acts, cpu_logits) = cpu_observe(model, pixels);
    let observed = gpu.run_batch_observed(pixels).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(observed.values.len(), cpu_acts.len());
    for (v, (cpu, gpu)) in cpu_acts.iter().zip(&observed.values).enumerate() {
        if let Some(msg) = first_difference(what, model, v, cpu, gpu) {
            panic!("{msg}");
        }
    }
    assert_logits_equal(what, &cpu_logits, &observed.logits);
    let logits = gpu.run_batch(pixels).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_logits_equal(what, &cpu_logits, &logits);
}

// ---------------------------------------------------------------------------
// Tests

#[test]
fn fixed_point_primitives_match_the_reference() {
    let model = Model::load(common::nets::chain(1)).unwrap();
    let mut rng = Rng::new(42);
    let specials = [
        i32::MIN,
        i32::MIN + 1,
        -(1 << 30),
        -65536,
        -256,
        -129,
        -128,
        -2,
        -1,
        0,
        1,
        2,
        127,
        255,
        65535,
        1 << 30,
        (1 << 30) + 1,
        i32::MAX - 1,
        i32::MAX,
    ];
    let mut triples = Vec::new();
    for &x in &specials {
        for &y in &specials {
            for s in [-40, -31, -30, -1, 0, 1, 20, 30, 31, 40] {
                triples.push([x, y, s]);
            }
        }
    }
    while triples.len() < 1 << 20 {
        let x = match rng.usize(0, 3) {
            0 => rng.u32() as i32,
            1 => (rng.u32() as i32) >> rng.usize(0, 31),
            2 => rng.range(-1 << 20, 1 << 20) as i32,
            _ => specials[rng.usize(0, specials.len() - 1)],
        };
        let y = match rng.usize(0, 2) {
            0 => rng.range(1 << 30, (1i64 << 31) - 1) as i32, // a Q31 mantissa
            1 => rng.u32() as i32,
            _ => specials[rng.usize(0, specials.len() - 1)],
        };
        triples.push([x, y, rng.range(-35, 35) as i32]);
    }
    for dot in PATHS {
        let mut gpu = engine(&model, dot);
        let results = gpu.check_fixed_point(&triples).unwrap();
        for (&[x, y, s], r) in triples.iter().zip(&results) {
            let n = ((y as u32) & 0xff_ffff).max(1) as i32;
            let expected = [
                Multiplier { mantissa: y, shift: s }.apply(x),
                saturating_rounding_doubling_high_mul(x, y),
                rounding_divide_by_pot(x, (s as u32) & 31),
                x.saturating_add(y),
                rounding_divide(x, n),
            ];
            assert_eq!(*r, expected, "x = {x}, y = {y}, s = {s}: [apply, srdhm, rdivpot, sat_add, rounding_divide]");
        }
    }
}

fn tiny_fixture_model() -> (Model, Vec<u8>) {
    let float = Model::load(std::fs::read(repo().join("tests/fixtures/tiny-float.safetensors")).unwrap()).unwrap();
    let inputs = std::fs::read(repo().join("tests/fixtures/tiny-inputs.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&inputs).unwrap();
    let pixels = st.tensor("pixels").unwrap().data().to_vec();
    let images: Vec<&[u8]> = pixels.chunks_exact(784).collect();
    let bytes = tinycnn::quantize(&float, images.iter().copied()).unwrap();
    (Model::load(bytes).unwrap(), pixels)
}

/// The PyTorch fixture (every op) quantised by tinycnn, on its 8 images and random ones.
#[test]
fn batches_are_chunked_and_buffers_reused() {
    let (model, pixels) = tiny_fixture_model();
    let (_, cpu_logits) = cpu_observe(&model, &pixels);
    let mut gpu = engine_with(&model, GpuOptions { max_batch: 3, ..GpuOptions::default() });
    assert_eq!(gpu.max_batch(), 3);
    for _ in 0..3 {
        assert_logits_equal("chunked", &cpu_logits, &gpu.run_batch(&pixels).unwrap());
    }
    assert_eq!(gpu.cached_buffer_sets(), 2, "chunk sizes 3 and 2");
    let one = &pixels[..784];
    for _ in 0..3 {
        assert_logits_equal("single", &cpu_logits[..10], &gpu.run_batch(one).unwrap());
    }
    assert_eq!(gpu.cached_buffer_sets(), 3);
    let mut into = vec![0f32; 80];
    gpu.run_batch_into(&pixels, &mut into).unwrap();
    assert_logits_equal("into", &cpu_logits, &into);
    assert_eq!(gpu.cached_buffer_sets(), 3);
    assert!(gpu.run_batch(&[]).unwrap().is_empty());
    gpu.release_buffers();
    assert_eq!(gpu.cached_buffer_sets(), 0);
    assert_logits_equal("after release", &cpu_logits[..10], &gpu.run_batch(one).unwrap());
    assert!(matches!(gpu.run_batch(&pixels[..100]), Err(GpuError::Model(tinycnn::Error::InputLength { .. }))));
}

#[test]
fn engine_is_send() {
    fn send<T: Send>() {}
    send::<GpuEngine>();
}

#[test]
fn float_models_and_missing_backends_are_errors_not_panics() {
    let float = Model::load(std::fs::read(repo().join("tests/fixtures/tiny-float.safetensors")).unwrap()).unwrap();
    let err = GpuEngine::new_blocking(&float).unwrap_err();
    assert!(matches!(err, GpuError::Model(tinycnn::Error::WrongDtype { .. })), "{err}");
    let (model, _) = tiny_fixture_model();
    // A backend this build does not include (GL) finds no adapter.
    let options = GpuOptions { backends: Some(tinycnn::gpu::wgpu::Backends::GL), ..GpuOptions::default() };
    match GpuEngine::with_options_blocking(&model, options) {
        Err(e @ GpuError::NoAdapter(_)) => assert!(e.to_string().contains("mesa-vulkan-drivers"), "{e}"),
        Err(e) => panic!("expected NoAdapter, got {e}"),
        Ok(_) => panic!("expected NoAdapter, got an engine"),
    }
}

/// A DeepConvNet-shaped float model with random (He-initialised) weights.
fn random_deepconvnet(seed: u64) -> Model {
    let graph = std::fs::read_to_string(repo().join("tests/fixtures/deepconvnet-graph.json")).unwrap();
    let mut rng = Rng::new(seed);
    let mut normal = move || {
        // Irwin–Hall approximation of N(0, 1).
        (0..12).map(|_| rng.f64()).sum::<f64>() as f32 - 6.0
    };
    let mut tensors = Vec::new();
    let layers: [(&str, Vec<usize>); 8] = [
        ("conv1", vec![16, 1, 3, 3]),
        ("conv2", vec![16, 16, 3, 3]),
        ("conv3", vec![32, 16, 3, 3]),
        ("conv4", vec![32, 32, 3, 3]),
        ("conv5", vec![64, 32, 3, 3]),
        ("conv6", vec![64, 64, 3, 3]),
        ("fc1", vec![50, 1024]),
        ("fc2", vec![10, 50]),
    ];
    for (name, shape) in layers {
        let fan_in: usize = shape[1..].iter().product();
        let std = (2.0 / fan_in as f32).sqrt();
        let w: Vec<f32> = (0..shape.iter().product::<usize>()).map(|_| normal() * std).collect();
        let b: Vec<f32> = (0..shape[0]).map(|_| normal() * 0.05).collect();
        tensors.push(TensorData::f32(format!("{name}.weight"), shape.clone(), &w));
        tensors.push(TensorData::f32(format!("{name}.bias"), vec![shape[0]], &b));
    }
    Model::load(write_model(&graph, &tensors).unwrap()).unwrap()
}

fn mnist_test_images() -> Vec<u8> {
    let path = repo().join("data/mnist/t10k-images-idx3-ubyte");
    let bytes =
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} — run scripts/fetch-mnist first", path.display()));
    bytes[16..].to_vec()
}

/// MNIST test digits a DeepConvNet test runs on a path: `default`, or
/// TINYCNN_GPU_DIGITS when set. (lavapipe on 2 shared cores: ~2 ms per digit
/// and path, the CPU reference ~2.5 ms; the defaults keep the file under 3 minutes.)
fn digit_count(default: usize) -> usize {
    std::env::var("TINYCNN_GPU_DIGITS").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `counts`: digits for the packed and the plain path (any 28×28 MNIST model).
fn deepconvnet_digits(model: &Model, what: &str, counts: [usize; 2]) {
    let digits = mnist_test_images();
    let counts = counts.map(|c| digit_count(c).min(digits.len() / 784));
    let n = counts[0].max(counts[1]);
    let pixels = &digits[..n * 784];
    let t = Instant::now();
    let mut cpu = vec![0f32; n * 10];
    let mut arena = vec![0u8; model.arena_bytes()];
    for (image, out) in pixels.chunks_exact(784).zip(cpu.chunks_exact_mut(10)) {
        model.run(&mut arena, image, out).unwrap();
    }
    eprintln!("{what}: CPU {n} digits in {:.1?}", t.elapsed());
    for (dot, n) in PATHS.into_iter().zip(counts) {
        let mut gpu = engine(model, dot);
        let t = Instant::now();
        let logits = gpu.run_batch(&pixels[..n * 784]).unwrap();
        eprintln!("{what}: GPU ({dot:?}) {n} digits in {:.1?}", t.elapsed());
        assert_logits_equal(&format!("{what} ({dot:?})"), &cpu[..n * 10], &logits);
        // Every activation on a few digits.
        assert_same(&format!("{what} ({dot:?})"), model, &mut gpu, &pixels[..784 * 4]);
    }
}

/// DeepConvNet's shapes with random weights, quantised on MNIST training digits.
#[test]
fn random_deepconvnet_on_mnist_digits() {
    let float = random_deepconvnet(11);
    let train = std::fs::read(repo().join("data/mnist/train-images-idx3-ubyte"))
        .unwrap_or_else(|e| panic!("data/mnist: {e} — run scripts/fetch-mnist first"));
    let calibration: Vec<&[u8]> = train[16..].chunks_exact(784).take(200).collect();
    let bytes = tinycnn::quantize(&float, calibration).unwrap();
    deepconvnet_digits(&Model::load(bytes).unwrap(), "random-weight DeepConvNet", [1000, 1000]);
}

/// The shipped model (models/deepconvnet-int8.safetensors): all 10,000 test
/// digits on the packed path, the first 1,000 on the plain one.
#[test]
fn shipped_deepconvnet_on_mnist_digits() {
    let path = repo().join("models/deepconvnet-int8.safetensors");
    let Ok(bytes) = std::fs::read(&path) else {
        eprintln!("{} not found: the shipped-model GPU test has nothing to check", path.display());
        return;
    };
    deepconvnet_digits(&Model::load(bytes).unwrap(), "shipped DeepConvNet", [10_000, 1000]);
}

/// The other shipped int8 models (ResNet- and inception-style), when present:
/// the first 1,000 test digits on each path.
#[test]
fn other_shipped_models_on_mnist_digits() {
    let dir = repo().join("models");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    paths.retain(|p| {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        name.ends_with("-int8.safetensors") && name != "deepconvnet-int8.safetensors"
    });
    paths.sort();
    for path in paths {
        let model = Model::load(std::fs::read(&path).unwrap()).unwrap();
        if model.input_len() != 784 {
            continue;
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("?").to_string();
        deepconvnet_digits(&model, &name, [1000, 1000]);
    }
}
