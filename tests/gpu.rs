//! The WebGPU engine against the CPU integer engine, bit for bit: every int8
//! activation and the logits, on random small models of every op (both the
//! `dot4I8Packed` and the plain-arithmetic kernels), on the PyTorch fixture
//! model and on DeepConvNet with MNIST digits.
//!
//! These tests need a WebGPU adapter. Without one they FAIL (a skipped GPU
//! test would hide a broken setup): on Debian/Ubuntu,
//! `apt-get install mesa-vulkan-drivers libvulkan1` provides lavapipe, a
//! software Vulkan device that is enough.
#![cfg(feature = "gpu")]

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use serde_json::{json, Value};
use tinycnn::gpu::{DotProduct, GpuEngine, GpuError, GpuOptions};
use tinycnn::kernels::Shape;
use tinycnn::model::graph::pixel_quantization;
use tinycnn::model::writer::{write_model, TensorData};
use tinycnn::quant::fixed_point::{
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

// ---------------------------------------------------------------------------
// Helpers

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn u32(&mut self) -> u32 {
        (self.next() >> 32) as u32
    }
    /// Uniform in lo..=hi.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
    fn usize(&mut self, lo: usize, hi: usize) -> usize {
        self.range(lo as i64, hi as i64) as usize
    }
    fn f64(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }
    /// 2^u with u uniform in [lo, hi).
    fn pow2(&mut self, lo: f64, hi: f64) -> f32 {
        (lo + (hi - lo) * self.f64()).exp2() as f32
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.u32() as u8).collect()
    }
}

/// Runs the CPU integer engine image by image, recording every activation.
fn cpu_observe(model: &Model, pixels: &[u8]) -> (Vec<Vec<i8>>, Vec<f32>) {
    let mut acts: Vec<Vec<i8>> = vec![Vec::new(); model.graph().nodes.len() + 1];
    let mut logits = vec![0f32; pixels.len() / model.input_len() * model.output_len()];
    let mut arena = vec![0u8; model.arena_bytes()];
    for (image, out) in pixels.chunks_exact(model.input_len()).zip(logits.chunks_exact_mut(model.output_len())) {
        model.run_int8_observed(&mut arena, image, out, &mut |v, data| acts[v].extend_from_slice(data)).unwrap();
    }
    (acts, logits)
}

fn first_difference(what: &str, model: &Model, v: usize, cpu: &[i8], gpu: &[i8]) -> Option<String> {
    if cpu == gpu {
        return None;
    }
    let shape = model.shape(v);
    if cpu.len() != gpu.len() {
        return Some(format!(
            "{what}: value '{}' has {} bytes on the CPU, {} on the GPU",
            model.graph().value_name(v),
            cpu.len(),
            gpu.len()
        ));
    }
    let k = cpu.iter().zip(gpu).position(|(a, b)| a != b).unwrap_or(0);
    let (image, at) = (k / shape.len(), k % shape.len());
    let differing = cpu.iter().zip(gpu).filter(|(a, b)| a != b).count();
    Some(format!(
        "{what}: value '{}' ({shape}, {differing} bytes differ) first at image {image}, pixel {}, channel {}: cpu {} gpu {}",
        model.graph().value_name(v),
        at / shape.c,
        at % shape.c,
        cpu[k],
        gpu[k]
    ))
}

fn assert_logits_equal(what: &str, cpu: &[f32], gpu: &[f32]) {
    assert_eq!(cpu.len(), gpu.len(), "{what}: logit count");
    for (i, (a, b)) in cpu.iter().zip(gpu).enumerate() {
        assert!(a.to_bits() == b.to_bits(), "{what}: logit {i} differs: cpu {a} gpu {b}");
    }
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
// In-memory int8 models

struct Net {
    rng: Rng,
    input: Value,
    nodes: Vec<Value>,
    tensors: Vec<TensorData<'static>>,
    /// Shape, scale and zero point of every value by name.
    values: HashMap<String, (Shape, f32, i32)>,
    output: Option<String>,
}

impl Net {
    fn new(seed: u64, c: usize, h: usize, w: usize) -> Net {
        let mut rng = Rng::new(seed);
        let mean = rng.f64() as f32;
        let std = (0.1 + rng.f64()) as f32;
        let (scale, zero_point) = pixel_quantization(mean, std);
        let input = json!({"channels": c, "height": h, "width": w, "mean": mean, "std": std, "scale": scale, "zero_point": zero_point});
        let mut values = HashMap::new();
        values.insert("input".to_string(), (Shape::new(c, h, w), scale, zero_point));
        Net { rng, input, nodes: Vec::new(), tensors: Vec::new(), values, output: None }
    }

    fn info(&self, name: &str) -> (Shape, f32, i32) {
        self.values[name]
    }

    fn random_quant(&mut self) -> (f32, i32) {
        (self.rng.pow2(-8.0, 2.0), self.rng.range(-128, 127) as i32)
    }

    fn push(&mut self, mut node: Value, shape: Shape, (scale, zero_point): (f32, i32)) -> String {
        let name = format!("n{}", self.nodes.len());
        node["name"] = json!(name);
        node["scale"] = json!(scale);
        node["zero_point"] = json!(zero_point);
        self.nodes.push(node);
        self.values.insert(name.clone(), (shape, scale, zero_point));
        name
    }

    /// Weights, per-channel scales and biases of a conv/dense node with
    /// `taps` = kh·kw·in_c products per output; returns the output quantisation.
    fn weights(&mut self, name: &str, shape: Vec<usize>, in_scale: f32, taps: usize) -> (f32, i32) {
        let out_c = shape[0];
        let mut w: Vec<i8> = Vec::with_capacity(out_c * taps);
        for _ in 0..out_c {
            let style = self.rng.usize(0, 9);
            for _ in 0..taps {
                w.push(match style {
                    0 => 127,
                    1 => -127,
                    2 => 0,
                    _ => self.rng.range(-127, 127) as i8,
                });
            }
        }
        let scales: Vec<f32> = (0..out_c).map(|_| self.rng.pow2(-10.0, -3.0)).collect();
        let bias: Vec<i32> = (0..out_c)
            .map(|_| match self.rng.usize(0, 9) {
                0 => 1 << 30,
                1 => -(1 << 30),
                2 => 0,
                _ => {
                    let magnitude = self.rng.pow2(0.0, 22.0) as i32;
                    if self.rng.chance(0.5) {
                        magnitude
                    } else {
                        -magnitude
                    }
                }
            })
            .collect();
        // Output scale around the accumulator's typical size, sometimes far off
        // either way (saturation, multipliers above 1).
        let typical = in_scale * scales.iter().sum::<f32>() / out_c as f32 * (taps as f32).sqrt() * 60.0;
        let scale = typical * self.rng.pow2(-12.0, 4.0);
        let zero_point = self.rng.range(-128, 127) as i32;
        self.tensors.push(TensorData::i8(format!("{name}.weight"), shape, &w));
        self.tensors.push(TensorData::f32(format!("{name}.weight_scale"), vec![out_c], &scales));
        if self.rng.chance(0.85) {
            self.tensors.push(TensorData::i32(format!("{name}.bias"), vec![out_c], &bias));
        }
        (scale, zero_point)
    }

    #[allow(clippy::too_many_arguments)]
    fn conv(
        &mut self,
        input: &str,
        out_c: usize,
        kh: usize,
        kw: usize,
        stride: usize,
        padding: usize,
        relu: bool,
    ) -> String {
        let (s, in_scale, _) = self.info(input);
        let name = format!("n{}", self.nodes.len());
        let q = self.weights(&name, vec![out_c, kh, kw, s.c], in_scale, kh * kw * s.c);
        let shape = Shape::new(out_c, (s.h + 2 * padding - kh) / stride + 1, (s.w + 2 * padding - kw) / stride + 1);
        let node = json!({"op": "conv2d", "inputs": [input], "stride": stride, "padding": padding, "relu": relu});
        self.push(node, shape, q)
    }

    /// A random convolution that fits the input.
    fn random_conv(&mut self, input: &str, out_c: usize) -> String {
        let s = self.info(input).0;
        let padding = self.rng.usize(0, 2);
        let kh = self.rng.usize(1, (s.h + 2 * padding).min(4));
        let kw = self.rng.usize(1, (s.w + 2 * padding).min(4));
        let stride = self.rng.usize(1, 2);
        let relu = self.rng.chance(0.5);
        self.conv(input, out_c, kh, kw, stride, padding, relu)
    }

    fn dense(&mut self, input: &str, out_features: usize, relu: bool) -> String {
        let (s, in_scale, _) = self.info(input);
        let name = format!("n{}", self.nodes.len());
        let q = self.weights(&name, vec![out_features, s.c], in_scale, s.c);
        self.push(json!({"op": "dense", "inputs": [input], "relu": relu}), Shape::new(out_features, 1, 1), q)
    }

    fn pool(&mut self, op: &str, input: &str, kernel: usize, stride: usize, padding: usize) -> String {
        let (s, scale, zp) = self.info(input);
        let shape =
            Shape::new(s.c, (s.h + 2 * padding - kernel) / stride + 1, (s.w + 2 * padding - kernel) / stride + 1);
        let node = json!({"op": op, "inputs": [input], "kernel": kernel, "stride": stride, "padding": padding});
        self.push(node, shape, (scale, zp))
    }

    /// A random max or average pool that fits the input, if one does.
    fn random_pool(&mut self, input: &str) -> String {
        let s = self.info(input).0;
        let kernel = self.rng.usize(1, 3).min(s.h.min(s.w) + 2);
        let padding = self.rng.usize(0, kernel / 2);
        if s.h + 2 * padding < kernel || s.w + 2 * padding < kernel {
            return input.to_string();
        }
        let stride = self.rng.usize(1, kernel);
        let op = if self.rng.chance(0.5) { "maxpool2d" } else { "avgpool2d" };
        self.pool(op, input, kernel, stride, padding)
    }

    /// An op that keeps its input's quantisation.
    fn same_quant(&mut self, op: &str, input: &str, shape: Shape) -> String {
        let (_, scale, zp) = self.info(input);
        self.push(json!({"op": op, "inputs": [input]}), shape, (scale, zp))
    }

    fn relu(&mut self, input: &str) -> String {
        let s = self.info(input).0;
        self.same_quant("relu", input, s)
    }

    fn flatten(&mut self, input: &str) -> String {
        let s = self.info(input).0;
        self.same_quant("flatten", input, Shape::new(s.len(), 1, 1))
    }

    fn dropout(&mut self, input: &str) -> String {
        let s = self.info(input).0;
        let (_, scale, zp) = self.info(input);
        self.push(json!({"op": "dropout", "inputs": [input], "p": 0.5}), s, (scale, zp))
    }

    fn global_avgpool(&mut self, input: &str) -> String {
        let s = self.info(input).0;
        self.same_quant("global_avgpool", input, Shape::new(s.c, 1, 1))
    }

    fn add(&mut self, inputs: &[String], relu: bool) -> String {
        let s = self.info(&inputs[0]).0;
        let q = self.random_quant();
        self.push(json!({"op": "add", "inputs": inputs, "relu": relu}), s, q)
    }

    /// Concatenation; with `copy_from = Some(k)` the output takes input k's
    /// quantisation, so that input is copied rather than rescaled.
    fn concat(&mut self, inputs: &[String], copy_from: Option<usize>) -> String {
        let s = self.info(&inputs[0]).0;
        let c = inputs.iter().map(|i| self.info(i).0.c).sum();
        let q = match copy_from {
            Some(k) => {
                let (_, scale, zp) = self.info(&inputs[k]);
                (scale, zp)
            }
            None => self.random_quant(),
        };
        self.push(json!({"op": "concat", "inputs": inputs}), Shape::new(c, s.h, s.w), q)
    }

    fn softmax(&mut self, input: &str) -> String {
        let s = self.info(input).0;
        let name = self.same_quant("softmax", input, s);
        self.output = Some(name.clone());
        name
    }

    fn build(self) -> Model {
        let mut graph = json!({"format": 1, "dtype": "int8", "input": self.input, "nodes": self.nodes});
        if let Some(output) = self.output {
            graph["output"] = json!(output);
        }
        let bytes = write_model(&graph.to_string(), &self.tensors).unwrap();
        Model::load(bytes).unwrap_or_else(|e| panic!("test model does not load: {e}\n{graph}"))
    }
}

/// Random images plus an all-black and an all-white one.
fn images(rng: &mut Rng, model: &Model, n: usize) -> Vec<u8> {
    let len = model.input_len();
    let mut pixels = rng.bytes(n * len);
    pixels.extend(std::iter::repeat_n(0u8, len));
    pixels.extend(std::iter::repeat_n(255u8, len));
    pixels
}

/// conv → [relu] → [pool] → conv → (flatten → dropout → dense → dense [→ softmax] | end).
fn chain(seed: u64) -> Model {
    let mut rng = Rng::new(seed ^ 0xc4a1);
    let (c, h, w) = (rng.usize(1, 6), rng.usize(3, 12), rng.usize(3, 12));
    let mut net = Net::new(seed, c, h, w);
    let c1 = net.rng.usize(1, 9);
    let mut x = net.random_conv("input", c1);
    if net.rng.chance(0.3) {
        x = net.relu(&x);
    }
    if net.rng.chance(0.7) {
        x = net.random_pool(&x);
    }
    let c2 = net.rng.usize(1, 9);
    x = net.random_conv(&x, c2);
    if net.rng.chance(0.25) {
        return net.build(); // logits are the conv's C×H×W output
    }
    x = net.flatten(&x);
    x = net.dropout(&x);
    let hidden = net.rng.usize(1, 12);
    let relu = net.rng.chance(0.5);
    x = net.dense(&x, hidden, relu);
    let classes = net.rng.usize(2, 10);
    x = net.dense(&x, classes, false);
    if net.rng.chance(0.5) {
        net.softmax(&x);
    }
    net.build()
}

/// stem conv → k parallel convs → add (2..=8 inputs) → relu → [avgpool] → gap → dense → softmax.
fn residual(seed: u64) -> Model {
    let mut rng = Rng::new(seed ^ 0xadd);
    let (c, h, w) = (rng.usize(1, 4), rng.usize(3, 9), rng.usize(3, 9));
    let mut net = Net::new(seed, c, h, w);
    let width = net.rng.usize(1, 10);
    let stem = net.conv("input", width, 3, 3, 1, 1, true);
    let mut branches = vec![stem.clone()];
    for _ in 0..net.rng.usize(1, 7) {
        let b = if net.rng.chance(0.5) {
            let relu = net.rng.chance(0.5);
            net.conv(&stem, width, 3, 3, 1, 1, relu)
        } else {
            net.conv(&stem, width, 1, 1, 1, 0, false)
        };
        branches.push(b);
    }
    let relu = net.rng.chance(0.5);
    let mut x = net.add(&branches, relu);
    x = net.relu(&x);
    if net.rng.chance(0.5) {
        x = net.random_pool(&x);
    }
    x = net.global_avgpool(&x);
    let classes = net.rng.usize(2, 10);
    x = net.dense(&x, classes, false);
    net.softmax(&x);
    net.build()
}

/// stem → {1×1 conv, 3×3 conv, 3×3 maxpool, 3×3 avgpool, …} → concat → flatten → dense.
fn inception(seed: u64) -> Model {
    let mut rng = Rng::new(seed ^ 0xca7);
    let (c, h, w) = (rng.usize(1, 3), rng.usize(2, 8), rng.usize(2, 8));
    let mut net = Net::new(seed, c, h, w);
    let width = net.rng.usize(1, 7);
    let stem = net.conv("input", width, 3, 3, 1, 1, true);
    let mut branches = Vec::new();
    for _ in 0..net.rng.usize(2, 8) {
        let b = match net.rng.usize(0, 4) {
            0 => {
                let c = net.rng.usize(1, 6);
                net.conv(&stem, c, 1, 1, 1, 0, true)
            }
            1 => {
                let c = net.rng.usize(1, 6);
                net.conv(&stem, c, 3, 3, 1, 1, true)
            }
            2 => net.pool("maxpool2d", &stem, 3, 1, 1),
            3 => net.pool("avgpool2d", &stem, 3, 1, 1),
            _ => stem.clone(),
        };
        branches.push(b);
    }
    let copy_from = if net.rng.chance(0.5) { Some(net.rng.usize(0, branches.len() - 1)) } else { None };
    let mut x = net.concat(&branches, copy_from);
    if net.rng.chance(0.5) {
        x = net.global_avgpool(&x);
    } else {
        x = net.flatten(&x);
    }
    let classes = net.rng.usize(2, 10);
    let relu = net.rng.chance(0.3);
    x = net.dense(&x, classes, relu);
    net.softmax(&x);
    net.build()
}

fn random_models(template: fn(u64) -> Model, name: &str, count: u64) {
    let start = Instant::now();
    for dot in PATHS {
        for seed in 0..count {
            let model = template(seed + 1000 * count);
            let mut gpu = engine(&model, dot);
            let mut rng = Rng::new(seed);
            let n = rng.usize(1, 5);
            let pixels = images(&mut rng, &model, n);
            assert_same(&format!("{name} seed {seed} ({dot:?})"), &model, &mut gpu, &pixels);
        }
    }
    eprintln!("{name}: {} models × 2 paths in {:.1?}", count, start.elapsed());
}

// ---------------------------------------------------------------------------
// Tests

#[test]
fn fixed_point_primitives_match_the_reference() {
    let model = chain(1);
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

#[test]
fn random_conv_dense_chains() {
    random_models(chain, "chain", 12);
}

#[test]
fn random_residual_adds() {
    random_models(residual, "residual", 8);
}

#[test]
fn random_inception_concats() {
    random_models(inception, "inception", 8);
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
    net.tensors.push(TensorData::i8("n0.weight".into(), vec![out_c, 1, 1, 1], &w));
    net.tensors.push(TensorData::f32("n0.weight_scale".into(), vec![out_c], &scales));
    net.tensors.push(TensorData::i32("n0.bias".into(), vec![out_c], &bias));
    let conv = net.push(json!({"op": "conv2d", "inputs": ["input"]}), Shape::new(out_c, 16, 16), (out_scale, -3));
    let relu_conv = {
        net.tensors.push(TensorData::i8("n1.weight".into(), vec![out_c, 1, 1, 1], &w));
        net.tensors.push(TensorData::f32("n1.weight_scale".into(), vec![out_c], &scales));
        net.tensors.push(TensorData::i32("n1.bias".into(), vec![out_c], &bias));
        net.push(
            json!({"op": "conv2d", "inputs": ["input"], "relu": true}),
            Shape::new(out_c, 16, 16),
            (out_scale, 100),
        )
    };
    // Rescales by 0.05/2^-15 ≈ 1638 and 0.05/2^-20·… — saturating concat inputs.
    let cat = net.push(
        json!({"op": "concat", "inputs": [conv, relu_conv, "input"]}),
        Shape::new(2 * out_c + 1, 16, 16),
        (2f32.powi(-15), 5),
    );
    let add = net.add(&[cat.clone(), cat], true);
    let x = net.global_avgpool(&add);
    net.dense(&x, 3, false);
    let model = net.build();
    // Image 0 holds every pixel value 0..=255.
    let mut pixels: Vec<u8> = (0..=255).collect();
    pixels.extend(Rng::new(3).bytes(256 * 3));
    for dot in PATHS {
        let mut gpu = engine(&model, dot);
        assert_same(&format!("extremes ({dot:?})"), &model, &mut gpu, &pixels);
    }
}

fn tiny_fixture_model() -> (Model, Vec<u8>) {
    let float = Model::load(std::fs::read(repo().join("tests/fixtures/tiny-float.safetensors")).unwrap()).unwrap();
    let inputs = std::fs::read(repo().join("tests/fixtures/tiny-inputs.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&inputs).unwrap();
    let pixels = st.tensor("pixels").unwrap().data().to_vec();
    let images: Vec<&[u8]> = pixels.chunks_exact(784).collect();
    let bytes = tinycnn::quant::quantize::quantize(&float, images.iter().copied()).unwrap();
    (Model::load(bytes).unwrap(), pixels)
}

/// The PyTorch fixture (every op) quantised by tinycnn, on its 8 images and random ones.
#[test]
fn fixture_model_matches_the_cpu_engine() {
    let (model, mut pixels) = tiny_fixture_model();
    pixels.extend(Rng::new(5).bytes(784 * 5));
    for dot in PATHS {
        let mut gpu = engine(&model, dot);
        assert_same(&format!("tiny fixture ({dot:?})"), &model, &mut gpu, &pixels);
    }
}

/// Chunked batches (max_batch 3 over 8 images) and buffer reuse: repeated
/// runs of seen batch sizes create no new GPU buffers.
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
    let bytes = tinycnn::quant::quantize::quantize(&float, calibration).unwrap();
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
