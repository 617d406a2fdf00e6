//! Every int8 kernel set this build runs here, timed side by side on one int8 model
//! (pixel or int8 input; batch 1, one thread), with each layer's median: the measurement behind a
//! kernel choice such as Winograd or direct convolution. Builds natively and for
//! wasm32-wasip1 (+simd128), which `scripts/bench-kernel-sets` runs in Node.
//!
//!   cargo run --release --example kernel_sets -- [MODEL] [ROUNDS] [INPUTS.bin]
//!
//! Per round, each set runs 100 timed inferences, in turn, so that drift of the
//! machine's speed falls on every set alike; then 100 observed runs give the
//! per-layer split (the time from one activation to the next). Inputs: those of
//! INPUTS.bin (N tensors back to back, as `tinycnn run` takes them), cycled, else
//! 64 pseudo-random ones.

use std::error::Error;
use std::time::Instant;

use tinycnn::format::InputKind;
use tinycnn::{KernelSet, LoadOptions, Model};

const RUNS_PER_ROUND: usize = 100;
const INPUTS: usize = 64;

/// The median, formatted; "–" for a layer that never ran (a softmax `predict` applies in f32).
fn median(samples: &mut [f64]) -> String {
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).map_or("–".into(), |m| format!("{m:.1}"))
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).map_or("models/deepconvnet-int8.safetensors", String::as_str);
    let rounds: usize = args.get(2).map_or(Ok(20), |s| s.parse())?;
    let bytes = std::fs::read(path)?;
    let sets: Vec<KernelSet> = KernelSet::available().into_iter().filter(|k| *k != KernelSet::Reference).collect();
    let models = sets
        .iter()
        .map(|&kernels| Model::load_with(bytes.clone(), LoadOptions { kernels }))
        .collect::<Result<Vec<_>, _>>()?;
    let first = models.first().ok_or("no kernel set")?;
    let (len, nodes) = (first.input_len(), first.graph().nodes.len());
    // The given inputs (N tensors back to back, as `tinycnn run` takes them), else
    // pseudo-random ones.
    let inputs: Vec<u8> = match args.get(3) {
        Some(file) => std::fs::read(file)?,
        None => {
            let mut seed = 0x2545_f491_u32;
            (0..INPUTS * len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    (seed >> 24) as u8
                })
                .collect()
        }
    };
    let count = inputs.len() / len.max(1);
    if count == 0 || !inputs.len().is_multiple_of(len) {
        return Err(format!("the inputs are {} bytes: not whole tensors of {len}", inputs.len()).into());
    }
    let image = |i: usize| &inputs[(i % count) * len..][..len];

    let mut arena = vec![0u8; models.iter().map(|m| m.arena_bytes()).max().unwrap_or(0)];
    let int8_input = first.graph().input.kind == InputKind::Int8;
    // One inference of input `i`, its output bytes into `out`, each activation to `observe`.
    let infer = |model: &Model, arena: &mut [u8], i: usize, out: &mut [u8], observe: Option<&mut dyn FnMut(usize)>| {
        let mut logits = vec![0f32; model.output_len()];
        let mut int8_output = vec![0i8; model.int8_output_len()];
        let input = std::hint::black_box(image(i));
        match (int8_input, observe) {
            (true, None) => model.run_int8(arena, bytemuck::cast_slice(input), &mut int8_output)?,
            (true, Some(f)) => {
                model
                    .run_int8_values_observed(arena, bytemuck::cast_slice(input), &mut int8_output, &mut |v, _| f(v))?
            }
            (false, None) => model.run(arena, input, &mut logits)?,
            (false, Some(f)) => model.run_int8_observed(arena, input, &mut logits, &mut |v, _| f(v))?,
        }
        let bytes: Vec<u8> = if int8_input {
            int8_output.iter().map(|&v| v as u8).collect()
        } else {
            logits.iter().flat_map(|v| v.to_le_bytes()).collect()
        };
        out.iter_mut().zip(bytes).for_each(|(o, b)| *o = b);
        Ok::<_, tinycnn::Error>(())
    };
    let out_len = if int8_input { first.int8_output_len() } else { 4 * first.output_len() };
    let (mut expected, mut got) = (vec![0u8; out_len], vec![0u8; out_len]);
    // Every set must give the same outputs: a benchmark of a wrong kernel means nothing.
    for i in 0..count.min(INPUTS) {
        infer(first, &mut arena, i, &mut expected, None)?;
        for (model, set) in models.iter().zip(&sets).skip(1) {
            infer(model, &mut arena, i, &mut got, None)?;
            if got != expected {
                return Err(format!("{} gives other outputs than {} on input {i}", set.name(), sets[0].name()).into());
            }
        }
    }
    let mut totals = vec![Vec::new(); models.len()];
    let mut layers = vec![vec![Vec::new(); nodes + 1]; models.len()];
    for round in 0..=rounds {
        for (m, model) in models.iter().enumerate() {
            for i in 0..RUNS_PER_ROUND {
                let start = Instant::now();
                infer(model, &mut arena, i, &mut got, None)?;
                if round > 0 {
                    totals[m].push(start.elapsed().as_secs_f64() * 1e6);
                }
            }
            for i in 0..RUNS_PER_ROUND {
                let mut last = Instant::now();
                let layer_times = &mut layers[m];
                infer(
                    model,
                    &mut arena,
                    i,
                    &mut got,
                    Some(&mut |value| {
                        let now = Instant::now();
                        if let Some(s) = layer_times.get_mut(value).filter(|_| round > 0) {
                            s.push((now - last).as_secs_f64() * 1e6);
                        }
                        last = now;
                    }),
                )?;
            }
        }
    }
    println!("model: {path}");
    println!(
        "target: {}, {} rounds × {RUNS_PER_ROUND} runs per set, round 0 as warm-up",
        std::env::consts::ARCH,
        rounds
    );
    // A Markdown table: medians in µs, one column per kernel set.
    let row = |label: String, cells: Vec<String>| println!("| {label:<24} | {} |", cells.join(" | "));
    println!();
    row("median µs".into(), sets.iter().map(|s| format!("{:>21}", s.name())).collect());
    row("-".repeat(24), sets.iter().map(|_| format!("{}:", "-".repeat(20))).collect());
    row("whole inference".into(), totals.iter_mut().map(|t| format!("{:>21}", median(t))).collect());
    for value in 1..=nodes {
        let node = &first.graph().nodes[value - 1];
        let cells = layers.iter_mut().map(|set| format!("{:>21}", median(&mut set[value]))).collect();
        row(format!("{value:>2} {}", node.op.name()), cells);
    }
    Ok(())
}
