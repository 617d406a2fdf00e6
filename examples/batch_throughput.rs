//! Images per second of the CPU engine at a batch size, on one thread: each
//! timed call runs `Model::run` over BATCH images back to back with one arena
//! (the native counterpart of the JS `logitsBatch`); the median and the fastest of REPEATS calls.
//! benches/peers/run uses it for tinycnn native's batch-64 figure
//! (`tinycnn bench` gives the batch-1 latency).
//!
//! ```sh
//! cargo run --release --example batch_throughput -- MODEL [DATA_DIR] [BATCH] [REPEATS]
//! cargo run --release --example batch_throughput -- models/deepconvnet-int8.safetensors data/mnist 64 30
//! ```
//! Inputs: the first BATCH MNIST test digits of DATA_DIR (default data/mnist,
//! scripts/fetch-mnist), else fixed pseudo-random pixels. Prints `key: value` lines.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(model_path) = args.first() else {
        return Err("usage: batch_throughput MODEL [DATA_DIR] [BATCH] [REPEATS]".into());
    };
    let data = args.get(1).map_or("data/mnist", String::as_str);
    let number = |i: usize, default: usize| -> Result<usize, String> {
        args.get(i).map_or(Ok(default), |s| s.parse().map_err(|_| format!("not a number: {s}")))
    };
    let (batch, repeats) = (number(2, 64)?.max(1), number(3, 30)?.max(1));
    let bytes = std::fs::read(model_path).map_err(|e| format!("{model_path}: {e}"))?;
    let model = tinycnn::Model::load(bytes).map_err(|e| e.to_string())?;
    let len = model.input_len();
    let (pixels, source) = match tinycnn::mnist::load_test(data) {
        Ok(d) if d.image_len() == len && d.len() >= batch => {
            ((0..batch).flat_map(|i| d.image(i).to_vec()).collect::<Vec<u8>>(), "MNIST test digits")
        }
        _ => {
            let mut s = 0x9e37_79b9_u32;
            let noise = (0..batch * len).map(|_| {
                s = s.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                (s >> 24) as u8
            });
            (noise.collect(), "pseudo-random pixels")
        }
    };
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut logits = vec![0f32; batch * model.output_len()];
    let call = |arena: &mut [u8], logits: &mut [f32]| -> Result<(), String> {
        for (image, out) in pixels.chunks_exact(len).zip(logits.chunks_exact_mut(model.output_len())) {
            model.run(black_box(&mut *arena), black_box(image), out).map_err(|e| e.to_string())?;
        }
        Ok(())
    };
    for _ in 0..3 {
        call(&mut arena, &mut logits)?;
    }
    let mut seconds: Vec<f64> = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let start = Instant::now();
        call(&mut arena, &mut logits)?;
        seconds.push(start.elapsed().as_secs_f64());
        black_box(&logits);
    }
    seconds.sort_by(f64::total_cmp);
    let n = seconds.len();
    let median = if n % 2 == 1 { seconds[n / 2] } else { (seconds[n / 2 - 1] + seconds[n / 2]) / 2.0 };
    println!("model: {model_path}");
    println!("input: {source}");
    println!("threads: 1");
    println!("batch: {batch}");
    println!("repeats: {repeats}");
    println!("median_batch_ms: {:.3}", median * 1e3);
    println!("images_per_s: {:.1}", batch as f64 / median);
    // The fastest call: on a shared machine, the least disturbed figure.
    println!("best_batch_ms: {:.3}", seconds[0] * 1e3);
    println!("images_per_s_best: {:.1}", batch as f64 / seconds[0]);
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("batch_throughput: {e}");
            ExitCode::FAILURE
        }
    }
}
