//! One suite over every backend: random models of every op, requantisation at
//! its extremes, the PyTorch fixture and the shipped models on MNIST digits,
//! each run on the reference kernels and on every other backend this build
//! and machine have (`common::backends::all()`: the portable kernels, each
//! SIMD microkernel, both WebGPU paths with `--features gpu`), compared bit for
//! bit: every int8 activation and every logit.
//!
//! With `gpu`, these need a WebGPU adapter (lavapipe: `apt-get install
//! mesa-vulkan-drivers libvulkan1`); without one they fail rather than skip.

mod common;

use std::time::Instant;

use common::backends::{all, assert_every_backend_agrees};
use common::nets::{chain, images, inception, residual, same_size_convs, Net, Rng};
use serde_json::json;
use tinycnn::format::TensorData;
use tinycnn::{KernelSet, Model, Network, Shape};

fn random_models(template: fn(u64) -> Vec<u8>, name: &str, count: u64) {
    let start = Instant::now();
    for seed in 0..count {
        let bytes = template(seed + 1000 * count);
        let input_len = Network::load(&bytes[..]).unwrap().input_len();
        let mut rng = Rng::new(seed);
        let n = rng.usize(1, 5);
        let pixels = images(&mut rng, input_len, n);
        assert_every_backend_agrees(&format!("{name} seed {seed}"), &bytes, &pixels);
    }
    let names: Vec<String> = all().iter().map(|b| b.name()).collect();
    eprintln!("{name}: {count} models on reference + {names:?} in {:.1?}", start.elapsed());
}

#[test]
fn random_conv_dense_chains() {
    random_models(chain, "chain", 16);
}

#[test]
fn random_residual_adds() {
    random_models(residual, "residual", 10);
}

/// Convolutions and adds a microcontroller's load runs in their inputs'
/// bytes (the portable set in place, `common::backends::all`), compared
/// activation by activation as made; most of these nets must plan smaller.
#[test]
fn random_convolutions_in_place() {
    random_models(same_size_convs, "same-size convs", 12);
    let smaller = (0..12u64)
        .filter(|seed| {
            let bytes = same_size_convs(seed + 12_000);
            let mut memory = common::backends::arena_memory(&bytes);
            let (in_place, _) = tinycnn::ArenaModel::load(&bytes, &mut memory, KernelSet::Portable).unwrap();
            in_place.arena_bytes() < Model::load(&bytes[..]).unwrap().arena_bytes()
        })
        .count();
    assert!(smaller >= 6, "{smaller} of 12 nets planned smaller in place");
}

#[test]
fn random_inception_concats() {
    random_models(inception, "inception", 10);
}

/// Relu, clamp, flatten and dropout run in their input's bytes where the planner
/// grants it. On every CPU kernel set, each such node's output is its op applied
/// to its input as that was observed when made: an in-place run that read bytes
/// already overwritten, or skipped its work, fails here even where every set
/// agrees. Besides the random nets, one where the planner must grant it: a wide
/// conv → clamp → relu → narrow conv needs one wide buffer, not two.
#[test]
fn element_wise_ops_in_place_compute_their_op() {
    use tinycnn::format::{Op, Unary};
    let mut wide = Net::new(7, 1, 12, 12);
    let x = wide.conv("input", 16, 3, 3, 1, 1, false);
    let x = wide.unary(&x, Unary::Clamp { min: -0.5, max: 0.5 });
    let x = wide.unary(&x, Unary::Relu);
    wide.conv(&x, 1, 3, 3, 1, 1, false);
    let wide = wide.build();
    let wide_bytes = 16 * 12 * 12;
    let mut checked = 0;
    // The seeds random_conv_dense_chains and random_residual_adds draw (their nets load).
    for seed in 0..10 {
        for bytes in [chain(seed + 16_000), residual(seed + 10_000), wide.clone()] {
            let network = Network::load(&bytes[..]).unwrap();
            let graph = network.graph();
            let pixels = images(&mut Rng::new(seed), network.input_len(), 2);
            for kernels in KernelSet::available() {
                let model = common::backends::load(&bytes, kernels);
                if bytes == wide {
                    assert!(model.arena_bytes() < 2 * wide_bytes, "{}: {} bytes", kernels.name(), model.arena_bytes());
                }
                let (acts, _) = common::backends::cpu_observe(&model, &pixels);
                for (i, node) in graph.nodes.iter().enumerate() {
                    let x = &acts[node.inputs[0]];
                    let want: Vec<i8> = match node.op {
                        Op::Unary(op) => {
                            let (input, output) = (model.quant(node.inputs[0]).unwrap(), model.quant(i + 1).unwrap());
                            x.iter().map(|&q| op.int8(q, input, output)).collect()
                        }
                        Op::Flatten | Op::Dropout => x.clone(),
                        _ => continue,
                    };
                    assert_eq!(
                        acts[i + 1],
                        want,
                        "seed {seed}, {}: node {} ({:?})",
                        kernels.name(),
                        node.name,
                        node.op
                    );
                    checked += 1;
                }
            }
        }
    }
    // 49 per kernel set: as many sets as this machine runs (two where no microkernel does).
    let sets = KernelSet::available().len();
    assert!(checked > 40 * sets, "{checked} element-wise nodes checked over {sets} kernel sets");
}

/// Requantisation at its edges: every input value through 1×1 convolutions
/// whose multipliers span 2^-40 … 2^29.9 and biases reach ±2^30, and a concat
/// rescaling by up to 2^20 (saturating).
#[test]
fn requantisation_extremes() {
    let mut net = Net::new(7, 1, 16, 16);
    let in_scale = net.info("input").1;
    let multipliers: [f64; 14] = [
        1e-12,
        2f64.powi(-32),
        2f64.powi(-31),
        2f64.powi(-20),
        0.3,
        0.5,
        0.999_999_9,
        1.0,
        1.5,
        3.0,
        256.0,
        2f64.powi(20),
        2f64.powf(29.5),
        2f64.powf(29.99),
    ];
    let out_c = multipliers.len() * 4;
    let out_scale = 0.05f32;
    let mut w = Vec::new();
    let mut scales = Vec::new();
    let mut bias = Vec::new();
    for (k, &m) in multipliers.iter().enumerate() {
        for (j, (wv, b)) in [(127i8, 0i32), (-127, 1 << 30), (1, -(1 << 30)), (-3, 12345)].into_iter().enumerate() {
            w.push(wv);
            scales.push((m * f64::from(out_scale) / f64::from(in_scale)) as f32);
            bias.push(if (k + j) % 3 == 0 { -b } else { b });
        }
    }
    for name in ["n0", "n1"] {
        net.tensors.push(TensorData::i8(format!("{name}.weight"), vec![out_c, 1, 1, 1], &w));
        net.tensors.push(TensorData::f32(format!("{name}.weight_scale"), vec![out_c], &scales));
        net.tensors.push(TensorData::i32(format!("{name}.bias"), vec![out_c], &bias));
    }
    let conv = net.push(json!({"op": "conv2d", "inputs": ["input"]}), Shape::new(out_c, 16, 16), (out_scale, -3));
    let relu_conv = net.push(
        json!({"op": "conv2d", "inputs": ["input"], "relu": true}),
        Shape::new(out_c, 16, 16),
        (out_scale, 100),
    );
    // Rescales by 0.05/2^-15 ≈ 1638 and 0.05/2^-20·… — saturating concat inputs.
    let cat = net.push(
        json!({"op": "concat", "inputs": [conv, relu_conv, "input"]}),
        Shape::new(2 * out_c + 1, 16, 16),
        (2f32.powi(-15), 5),
    );
    let add = net.add(&[cat.clone(), cat], true);
    let x = net.global_avgpool(&add);
    net.dense(&x, 3, false);
    let bytes = net.build();
    // Image 0 holds every pixel value 0..=255.
    let mut pixels: Vec<u8> = (0..=255).collect();
    pixels.extend(Rng::new(3).bytes(256 * 3));
    assert_every_backend_agrees("extremes", &bytes, &pixels);
}

/// The PyTorch fixture (every op) quantised by tinycnn, on its 8 images and random ones.
/// TFLite's integer softmax on every backend over rows of 3 channels (4 pixels an image): a row where
/// gemmlowp's rounding of the exps' sum shows (scale 1/4: [−13, 2, −13, …] gives
/// [−122, 116, −122], TFLM's bytes), then random rows at four betas.
#[test]
fn int8_softmax_rows() {
    for beta in [1.0f64, 0.5, 2.0, 3.0] {
        // Pixels enter as q = p − 128: scale 1/4 and zero point 0 for mean 128/255, std 4/255.
        let input = json!({"channels": 3, "height": 1, "width": 4, "mean": 128.0 / 255.0,
            "std": 4.0 / 255.0, "scale": 0.25, "zero_point": 0});
        let nodes = json!([
            {"name": "x", "op": "clamp", "inputs": ["input"], "min": -1000.0, "max": 1000.0, "scale": 0.25, "zero_point": 0},
            {"name": "p", "op": "softmax", "inputs": ["x"], "beta": beta, "scale": 1.0 / 256.0, "zero_point": -128},
        ]);
        let graph = json!({"format": 1, "dtype": "int8", "input": input, "nodes": nodes});
        let bytes = tinycnn::format::write_model(&graph.to_string(), &[]).unwrap();
        let mut rng = Rng::new(beta.to_bits());
        // C×H×W pixels: channel c of pixel w. Pixel 0: q = [−13, 2, −13].
        let mut pixels = vec![115, 0, 0, 0, 130, 0, 0, 0, 115, 0, 0, 0];
        for (i, p) in pixels.iter_mut().enumerate() {
            if i % 4 != 0 {
                *p = rng.u32() as u8;
            }
        }
        pixels.extend(images(&mut rng, 12, 300));
        if beta == 1.0 {
            let model = Model::load(&bytes[..]).unwrap();
            let mut out = [0i8; 12];
            let q: Vec<i8> = (0..12).map(|k| (pixels[(k % 3) * 4 + k / 3] ^ 0x80) as i8).collect();
            model.run_int8(&mut vec![0u8; model.arena_bytes()], &q, &mut out).unwrap();
            assert_eq!(out[..3], [-122, 116, -122], "TFLM's bytes of the golden row");
        }
        assert_every_backend_agrees(&format!("int8 softmax, beta {beta}"), &bytes, &pixels);
        // predict's f32 probabilities are softmax(beta · logits) too (over the whole output).
        let model = Model::load(&bytes[..]).unwrap();
        let (mut arena, mut logits, mut p) = (vec![0u8; model.arena_bytes()], [0f32; 12], [0f32; 12]);
        model.run(&mut arena, &pixels[..12], &mut logits).unwrap();
        model.predict(&mut arena, &pixels[..12], &mut p).unwrap();
        let top = logits.iter().map(|&v| f64::from(v) * beta).fold(f64::MIN, f64::max);
        let sum: f64 = logits.iter().map(|&v| (f64::from(v) * beta - top).exp()).sum();
        for (k, (&l, &got)) in logits.iter().zip(&p).enumerate() {
            let want = (f64::from(l) * beta - top).exp() / sum;
            assert!((f64::from(got) - want).abs() < 1e-5, "beta {beta}: p[{k}] {got} vs {want}");
        }
    }
}

#[test]
fn quantised_pytorch_fixture() {
    let float = Model::load(common::fixture("tiny-float.safetensors")).unwrap();
    let fixture = common::Fixture::load();
    let images: Vec<&[u8]> = fixture.pixels.chunks_exact(fixture.image_len).collect();
    let bytes = tinycnn::quantize(&float, images.iter().copied()).unwrap();
    let mut pixels = fixture.pixels.clone();
    pixels.extend(Rng::new(5).bytes(fixture.image_len * 5));
    assert_every_backend_agrees("quantised PyTorch fixture", &bytes, &pixels);
}

/// The three shipped int8 models on MNIST test digits (TINYCNN_BACKEND_DIGITS,
/// default 300: every backend's share of a 2-core CI run stays under a minute).
#[test]
fn shipped_models_on_mnist_digits() {
    let digits: usize = std::env::var("TINYCNN_BACKEND_DIGITS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let data = common::mnist_test();
    let pixels = &data.images[..digits.min(data.len()) * 784];
    for name in ["deepconvnet", "resnet", "inception"] {
        let path = common::model_path(&format!("{name}-int8.safetensors"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let start = Instant::now();
        assert_every_backend_agrees(&format!("shipped {name}"), &bytes, pixels);
        eprintln!("shipped {name}: {} digits on every backend in {:.1?}", pixels.len() / 784, start.elapsed());
    }
}
