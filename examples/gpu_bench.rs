//! Throughput of the WebGPU engine beside the CPU integer engine: images/s at
//! batch 1, 64 and 1024, median of several runs.
//!
//! ```sh
//! cargo run --release --features gpu --example gpu_bench -- [MODEL] [RUNS]
//! cargo run --release --features gpu --example gpu_bench -- models/deepconvnet-int8.safetensors 5
//! ```
//! Images are the MNIST test digits when data/mnist exists (scripts/fetch-mnist),
//! random pixels otherwise. `WGPU_BACKEND=vulkan` etc. picks the backend.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use tinycnn::gpu::{DotProduct, GpuEngine, GpuOptions};
use tinycnn::Model;

const BATCHES: [usize; 3] = [1, 64, 1024];

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Images per second of `run` (which processes `images`), median of `runs` runs after a warm-up.
fn rate(images: usize, runs: usize, mut run: impl FnMut() -> Result<(), String>) -> Result<f64, String> {
    run()?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        run()?;
        times.push(t.elapsed());
    }
    Ok(images as f64 / median(times).as_secs_f64())
}

fn pixels(model: &Model, count: usize) -> Vec<u8> {
    let len = model.input_len();
    let digits = std::fs::read("data/mnist/t10k-images-idx3-ubyte").ok().filter(|_| len == 784);
    match digits {
        Some(bytes) => bytes[16..].iter().copied().cycle().take(count * len).collect(),
        None => {
            let mut state = 0x2545_f491_4f6c_dd1du64;
            (0..count * len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect()
        }
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gpu_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args.first().map_or("models/deepconvnet-int8.safetensors", String::as_str);
    let runs: usize = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(5).max(1);
    let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let model = Model::load(bytes).map_err(|e| format!("{path}: {e}"))?;
    let images = pixels(&model, *BATCHES.iter().max().unwrap_or(&1));
    let (input_len, output_len) = (model.input_len(), model.output_len());

    println!("model {path}: {} MACs per image; median of {runs} runs", model.macs());
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut logits = vec![0f32; output_len];
    let mut cpu = Vec::new();
    for &n in &BATCHES {
        let batch = &images[..n * input_len];
        cpu.push(rate(n, runs, || {
            for image in batch.chunks_exact(input_len) {
                model.run(&mut arena, image, &mut logits).map_err(|e| e.to_string())?;
            }
            Ok(())
        })?);
    }
    print!("{:<60}", "CPU (Model::run, 1 thread)");
    for (n, r) in BATCHES.iter().zip(&cpu) {
        print!("  batch {n:>4}: {r:>9.1}/s");
    }
    println!();

    for (label, dot) in [("packed", DotProduct::Packed), ("plain", DotProduct::Plain)] {
        let options = GpuOptions { dot_product: dot, max_batch: 1024, ..GpuOptions::default() };
        let mut gpu = match GpuEngine::with_options_blocking(&model, options) {
            Ok(gpu) => gpu,
            Err(e) => {
                println!("GPU ({label}): {e}");
                continue;
            }
        };
        let info = gpu.adapter_info().clone();
        print!("{:<60}", format!("GPU {} ({:?}, {label} dot)", info.name, info.backend));
        for &n in &BATCHES {
            let batch = &images[..n * input_len];
            let mut out = vec![0f32; n * output_len];
            let r = rate(n, runs, || gpu.run_batch_into(batch, &mut out).map_err(|e| e.to_string()))?;
            print!("  batch {n:>4}: {r:>9.1}/s");
        }
        println!();
    }
    Ok(())
}
