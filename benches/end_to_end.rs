//! The shipped models end to end, batch 1, one thread (`cargo bench --bench end_to_end`):
//! DeepConvNet, ResNet and inception, int8 and float, through `Model::run`, and the
//! ensemble of the three int8 models through `Ensemble::predict`.
//!
//! Inputs: the first 64 MNIST test digits (data/mnist, scripts/fetch-mnist), cycled;
//! without them, fixed pseudo-random pixels. Times are the median per call
//! (benches/common: robust on a shared machine; `TINYCNN_BENCH_MEAN=1` for
//! criterion's plain mean).

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

mod common;
use common::iter_median;
use tinycnn::{Ensemble, Model};

const INPUTS: usize = 64;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load(name: &str) -> Model {
    let path = repo().join("models").join(format!("{name}.safetensors"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Model::load(bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// INPUTS images of `len` bytes: MNIST test digits when present.
fn inputs(len: usize) -> (Vec<u8>, &'static str) {
    match tinycnn::mnist::load_test(repo().join("data/mnist")) {
        Ok(d) if d.image_len() == len && d.len() >= INPUTS => {
            ((0..INPUTS).flat_map(|i| d.image(i).to_vec()).collect(), "MNIST test digits")
        }
        _ => {
            let mut s = 0x2545_f491_u32;
            let noise = (0..INPUTS * len).map(|_| {
                s = s.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                (s >> 24) as u8
            });
            (noise.collect(), "pseudo-random pixels")
        }
    }
}

fn models(c: &mut Criterion) {
    let mut group = c.benchmark_group("model");
    group.throughput(Throughput::Elements(1)); // images/s
    for name in ["deepconvnet", "resnet", "inception"] {
        for dtype in ["int8", "float"] {
            let model = load(&format!("{name}-{dtype}"));
            let len = model.input_len();
            let (pixels, source) = inputs(len);
            if name == "deepconvnet" && dtype == "int8" {
                eprintln!("end_to_end: inputs are {source}");
            }
            let mut arena = vec![0u8; model.arena_bytes()];
            let mut logits = vec![0f32; model.output_len()];
            let mut i = 0;
            if dtype == "float" {
                // The float engine is plain loops (calibration): ~10× slower, fewer samples.
                group.sample_size(10).measurement_time(Duration::from_secs(3));
            } else {
                group.sample_size(20).measurement_time(Duration::from_secs(3));
            }
            group.bench_function(format!("{name}-{dtype}"), |b| {
                iter_median(b, || {
                    i = (i + 1) % INPUTS;
                    let x = &pixels[i * len..][..len];
                    model.run(black_box(&mut arena), black_box(x), black_box(&mut logits)).expect("run");
                })
            });
        }
    }
    let ensemble =
        Ensemble::new(vec![load("deepconvnet-int8"), load("resnet-int8"), load("inception-int8")]).expect("ensemble");
    let len = ensemble.input_len();
    let (pixels, _) = inputs(len);
    let mut arena = vec![0u8; ensemble.arena_bytes()];
    let mut probabilities = vec![0f32; ensemble.output_len()];
    let mut i = 0;
    group.sample_size(20).measurement_time(Duration::from_secs(3));
    group.bench_function("ensemble-int8 (deepconvnet+resnet+inception)", |b| {
        iter_median(b, || {
            i = (i + 1) % INPUTS;
            let x = &pixels[i * len..][..len];
            ensemble.predict(black_box(&mut arena), black_box(x), black_box(&mut probabilities)).expect("predict");
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500));
    targets = models
}
criterion_main!(benches);
