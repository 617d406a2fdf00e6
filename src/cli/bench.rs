//! `tinycnn bench MODEL`: latency of one inference (batch 1, one thread):
//! median, 90th percentile, mean and minimum over `--iters` timed runs.

use std::format;
use std::hint::black_box;
use std::io::Write;
use std::path::PathBuf;
use std::string::String;
use std::time::Instant;
use std::vec;
use std::vec::Vec;

use super::gpu::{self, Backend};
use super::{load_model, micros, CliError, CliResult, SplitMix64};
use crate::kernels::packed::Microkernel;
use crate::mnist::load_test;
use crate::model::graph::{Dtype, InputKind};
use crate::Model;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model file.
    #[arg(value_name = "MODEL")]
    model: PathBuf,
    /// Timed runs.
    #[arg(long, value_name = "N", default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..))]
    iters: u32,
    /// Untimed runs first (caches, branch predictors, CPU frequency).
    #[arg(long, value_name = "N", default_value_t = 200)]
    warmup: u32,
    /// MNIST directory: inputs are its first test digits when the model takes
    /// 1x28x28; otherwise (or without the files) fixed pseudo-random pixels.
    #[arg(long, value_name = "DIR", default_value = "data/mnist")]
    data: PathBuf,
    /// cpu: latency at batch 1; gpu: images/s at batch 1, 64 and 1024, beside the CPU engine's.
    #[arg(long, value_enum, default_value = "cpu")]
    backend: Backend,
    /// With --backend gpu: timed runs per batch size (the median is reported).
    #[arg(long, value_name = "N", default_value_t = 7)]
    repeats: usize,
    /// Also time each layer (median over the runs, through the engine's observer hook).
    #[arg(long)]
    layers: bool,
}

/// Distinct inputs cycled through.
const INPUTS: usize = 64;

pub fn run(args: &Args, out: &mut dyn Write) -> CliResult {
    let model = load_model(&args.model)?;
    let len = model.input_len();
    let input = model.input_shape();
    // A TFLite model takes its int8 tensor: the same bytes, read as int8 (`run_int8`).
    let int8_input = model.graph().input.kind == InputKind::Int8;
    let mnist = (input.c, input.h, input.w) == (1, 28, 28) && !int8_input;
    let digits = if mnist { load_test(&args.data).ok() } else { None };
    let (inputs, source): (Vec<u8>, &str) = match digits {
        Some(d) if d.len() >= INPUTS && d.image_len() == len => {
            (d.images[..INPUTS * len].to_vec(), "MNIST test digits")
        }
        _ if int8_input => (pseudo_random_pixels(INPUTS * len), "pseudo-random int8 values"),
        _ => (pseudo_random_pixels(INPUTS * len), "pseudo-random pixels"),
    };
    if args.backend == Backend::Gpu && int8_input {
        return Err(CliError::Message(format!("{}: --backend gpu benches pixel models", args.model.display())));
    }
    if args.backend == Backend::Gpu {
        writeln!(out, "model: {}", args.model.display())?;
        writeln!(out, "input: {source}")?;
        return gpu::bench(&model, &inputs, args.repeats, out);
    }
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut logits = vec![0f32; model.output_len()];
    let mut int8_output = vec![0i8; model.int8_output_len()];
    let image = |i: usize| &inputs[(i % INPUTS) * len..][..len];
    let mut infer = |input: &[u8]| {
        if int8_input {
            model.run_int8(black_box(&mut arena), black_box(bytemuck::cast_slice(input)), black_box(&mut int8_output))
        } else {
            model.run(black_box(&mut arena), black_box(input), black_box(&mut logits))
        }
    };

    for i in 0..args.warmup as usize {
        infer(image(i))?;
    }
    let iters = args.iters as usize;
    let mut nanos: Vec<u64> = Vec::with_capacity(iters);
    for i in 0..iters {
        let input = image(i);
        let start = Instant::now();
        infer(input)?;
        let elapsed = start.elapsed();
        nanos.push(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
    }
    nanos.sort_unstable();
    let stats = Stats::of(&nanos);

    writeln!(out, "model: {}", args.model.display())?;
    writeln!(out, "dtype: {}", model.dtype().as_str())?;
    writeln!(out, "input: {source}")?;
    writeln!(out, "threads: 1")?;
    writeln!(out, "kernel: {}", conv_kernel())?;
    writeln!(out, "iters: {iters}")?;
    writeln!(out, "median_us: {}", micros(stats.median))?;
    writeln!(out, "p90_us: {}", micros(stats.p90))?;
    writeln!(out, "mean_us: {}", micros(stats.mean))?;
    writeln!(out, "min_us: {}", micros(stats.min))?;
    writeln!(out, "max_us: {}", micros(stats.max))?;
    if args.layers {
        layer_split(&model, iters, &image, out)?;
    }
    Ok(())
}

/// What runs the int8 convolutions here: the packed microkernel, else the AVX2 or scalar dot rows.
fn conv_kernel() -> &'static str {
    match Microkernel::best() {
        Some(kernel) => kernel.name(),
        #[cfg(target_arch = "x86_64")]
        None if std::is_x86_feature_detected!("avx2") => "avx2 (dot rows)",
        None => "scalar",
    }
}

/// Per-layer medians: the time from one activation being shown to the observer to
/// the next (value 0, the input, after the pixel conversion; then node by node).
fn layer_split<'i>(model: &Model, iters: usize, image: &dyn Fn(usize) -> &'i [u8], out: &mut dyn Write) -> CliResult {
    let nodes = model.graph().nodes.len();
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut logits = vec![0f32; model.output_len()];
    let mut samples: Vec<Vec<u64>> = vec![Vec::with_capacity(iters); nodes + 1];
    for i in 0..iters {
        let mut last = Instant::now();
        let mut record = |value: usize| {
            let now = Instant::now();
            if let Some(s) = samples.get_mut(value) {
                s.push(u64::try_from((now - last).as_nanos()).unwrap_or(u64::MAX));
            }
            last = now;
        };
        match model.dtype() {
            Dtype::Int8 if model.graph().input.kind == InputKind::Int8 => {
                let mut output = vec![0i8; model.int8_output_len()];
                let input: &[i8] = bytemuck::cast_slice(image(i));
                model.run_int8_values_observed(&mut arena, input, &mut output, &mut |v, _| record(v))?
            }
            Dtype::Int8 => model.run_int8_observed(&mut arena, image(i), &mut logits, &mut |v, _| record(v))?,
            Dtype::Float => model.run_float_observed(&mut arena, image(i), &mut logits, &mut |v, _| record(v))?,
        }
    }
    let medians: Vec<f64> = samples
        .iter_mut()
        .map(|s| {
            s.sort_unstable();
            Stats::of(s).median
        })
        .collect();
    let total: f64 = medians.iter().sum();
    writeln!(out, "layers (median us, share of their sum {} us):", micros(total))?;
    let name = |v: usize| {
        if v == 0 {
            ("input", "input")
        } else {
            (model.graph().nodes[v - 1].name.as_str(), model.graph().nodes[v - 1].op.name())
        }
    };
    for (v, &m) in medians.iter().enumerate() {
        if samples[v].is_empty() {
            continue; // not computed (softmax runs outside the engine)
        }
        let (node, op) = name(v);
        writeln!(out, "  {node:<12} {op:<14} {:>9} {:>5.1}%", micros(m), 100.0 * m / total.max(f64::MIN_POSITIVE))?;
    }
    Ok(())
}

/// Order statistics of sorted samples (nanoseconds).
struct Stats {
    median: f64,
    p90: f64,
    mean: f64,
    min: f64,
    max: f64,
}

impl Stats {
    fn of(sorted: &[u64]) -> Stats {
        let n = sorted.len();
        let at = |i: usize| sorted.get(i).copied().unwrap_or(0) as f64;
        if n == 0 {
            return Stats { median: 0.0, p90: 0.0, mean: 0.0, min: 0.0, max: 0.0 };
        }
        let median = if n % 2 == 1 { at(n / 2) } else { (at(n / 2 - 1) + at(n / 2)) / 2.0 };
        // Nearest rank: the smallest sample with at least 90 % of samples at or below it.
        let p90 = at((n * 9).div_ceil(10).saturating_sub(1));
        let mean = sorted.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
        Stats { median, p90, mean, min: at(0), max: at(n - 1) }
    }
}

/// Fixed pseudo-random bytes, the same on every run.
fn pseudo_random_pixels(len: usize) -> Vec<u8> {
    let mut rng = SplitMix64(0);
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_statistics() {
        let s = Stats::of(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!((s.median, s.p90, s.mean, s.min, s.max), (5.5, 9.0, 5.5, 1.0, 10.0));
        let s = Stats::of(&[7]);
        assert_eq!((s.median, s.p90), (7.0, 7.0));
    }
}
