//! Per-op benchmarks on DeepConvNet's layer shapes (`cargo bench --bench ops`).
//!
//! Each op is a one-op int8 model, written with the public model writer
//! (`tinycnn::format`, as tests/gpu.rs builds its random models) and run
//! with `Model::run`: exactly what the engine does for that layer, whatever the
//! kernels inside look like. The figure includes the model's input quantisation
//! (pixels → int8) and the output dequantisation (int8 → f32), both O(size of the
//! tensors), small beside a convolution's MACs.
//!
//! Weights and inputs are fixed pseudo-random values; scales put the
//! accumulators in the int8 range, so outputs are neither all zero nor saturated.
//! Times are the median per call (benches/common: robust on a shared machine;
//! `TINYCNN_BENCH_MEAN=1` for criterion's plain mean).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

mod common;
// The tests' random-model helpers: the same xorshift generator.
#[path = "../tests/common/nets.rs"]
#[allow(dead_code)]
mod nets;
use common::iter_median;
use nets::Rng;
use serde_json::{json, Value};
use tinycnn::format::pixel_quantization;
use tinycnn::format::{write_model, TensorData};
use tinycnn::Model;

/// A one-layer int8 model: input c×h×w (pixels, DeepConvNet's normalisation) → `layer`.
enum Layer {
    Conv { out: usize, padding: usize },
    MaxPool,
    Dense { out: usize, relu: bool },
}

fn one_op_model(c: usize, h: usize, w: usize, layer: &Layer) -> Model {
    let mut rng = Rng::new(0x0b5e_55ed ^ (c * 1000 + h * 10 + w) as u64);
    let (mean, std) = (0.1307f32, 0.3081f32);
    let (in_scale, in_zp) = pixel_quantization(mean, std);
    let input = json!({"channels": c, "height": h, "width": w, "mean": mean, "std": std,
                       "scale": in_scale, "zero_point": in_zp});
    let mut tensors = Vec::new();
    let mut weights = |name: &str, shape: Vec<usize>, taps: usize, tensors: &mut Vec<TensorData<'static>>| {
        let out = shape[0];
        let w: Vec<i8> = (0..out * taps).map(|_| rng.range(-127, 127) as i8).collect();
        let w_scale = 0.5 / 127.0 / (taps as f32).sqrt();
        let bias: Vec<i32> = (0..out).map(|_| rng.range(-2000, 2000) as i32).collect();
        tensors.push(TensorData::i8(format!("{name}.weight"), shape, &w));
        tensors.push(TensorData::f32(format!("{name}.weight_scale"), vec![out], &vec![w_scale; out]));
        tensors.push(TensorData::i32(format!("{name}.bias"), vec![out], &bias));
        // Accumulator ≈ 73·127·√taps·w_scale·in_scale (uniform values): about 30 output steps per σ.
        in_scale * w_scale * 73.0 * 127.0 * (taps as f32).sqrt() / 30.0
    };
    let node: Value = match *layer {
        Layer::Conv { out, padding } => {
            let scale = weights("op", vec![out, 3, 3, c], 9 * c, &mut tensors);
            json!({"name": "op", "op": "conv2d", "inputs": ["input"], "stride": 1, "padding": padding,
                   "relu": true, "scale": scale, "zero_point": -128})
        }
        Layer::MaxPool => json!({"name": "op", "op": "maxpool2d", "inputs": ["input"], "kernel": 2, "stride": 2,
                                 "padding": 0, "scale": in_scale, "zero_point": in_zp}),
        Layer::Dense { out, relu } => {
            let scale = weights("op", vec![out, c * h * w], c * h * w, &mut tensors);
            json!({"name": "op", "op": "dense", "inputs": ["input"], "relu": relu, "scale": scale,
                   "zero_point": if relu { -128 } else { 0 }})
        }
    };
    let graph = json!({"format": 1, "dtype": "int8", "input": input, "nodes": [node]});
    let bytes = write_model(&graph.to_string(), &tensors).expect("write the one-op model");
    Model::load(bytes).unwrap_or_else(|e| panic!("the one-op model does not load: {e}\n{graph}"))
}

fn bench_model(c: &mut Criterion, name: &str, model: &Model) {
    let mut rng = Rng::new(7);
    let inputs: Vec<u8> = (0..8 * model.input_len()).map(|_| rng.next() as u8).collect();
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut logits = vec![0f32; model.output_len()];
    // A real workload: the output is neither constant (all clamped) nor empty.
    model.run(&mut arena, &inputs[..model.input_len()], &mut logits).expect("run");
    let mut distinct: Vec<u32> = logits.iter().map(|v| v.to_bits()).collect();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(distinct.len() > 2, "{name}: the output takes only {} values", distinct.len());
    let mut group = c.benchmark_group("op");
    let macs = model.macs();
    if macs > 0 {
        // Criterion's "elements" are MACs here: the report shows MAC/s.
        group.throughput(Throughput::Elements(macs));
    }
    let mut i = 0;
    group.bench_function(name, |b| {
        iter_median(b, || {
            i = (i + 1) % 8;
            let x = &inputs[i * model.input_len()..][..model.input_len()];
            model.run(black_box(&mut arena), black_box(x), black_box(&mut logits)).expect("run");
        })
    });
    group.finish();
}

fn ops(c: &mut Criterion) {
    // DeepConvNet (tests/fixtures/deepconvnet-graph.json): six 3×3 convolutions with ReLU,
    // three 2×2 max pools, fc1 1024→50 (ReLU), fc2 50→10.
    let cases: [(&str, (usize, usize, usize), Layer); 11] = [
        ("conv1 28x28x1->16", (1, 28, 28), Layer::Conv { out: 16, padding: 1 }),
        ("conv2 28x28x16->16", (16, 28, 28), Layer::Conv { out: 16, padding: 1 }),
        ("conv3 14x14x16->32", (16, 14, 14), Layer::Conv { out: 32, padding: 1 }),
        ("conv4 14x14x32->16x16x32 pad2", (32, 14, 14), Layer::Conv { out: 32, padding: 2 }),
        ("conv5 8x8x32->64", (32, 8, 8), Layer::Conv { out: 64, padding: 1 }),
        ("conv6 8x8x64->64", (64, 8, 8), Layer::Conv { out: 64, padding: 1 }),
        ("maxpool1 28x28x16", (16, 28, 28), Layer::MaxPool),
        ("maxpool2 16x16x32", (32, 16, 16), Layer::MaxPool),
        ("maxpool3 8x8x64", (64, 8, 8), Layer::MaxPool),
        ("fc1 dense 1024->50", (1024, 1, 1), Layer::Dense { out: 50, relu: true }),
        ("fc2 dense 50->10", (50, 1, 1), Layer::Dense { out: 10, relu: false }),
    ];
    for (name, (ch, h, w), layer) in &cases {
        let model = one_op_model(*ch, *h, *w, layer);
        bench_model(c, name, &model);
    }
}

criterion_group! {
    name = benches;
    // Small samples: the whole `cargo bench` takes a few minutes on 2 shared cores.
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = ops
}
criterion_main!(benches);
