//! `tinycnn eval MODEL... [--ensemble]`: accuracy, confusion matrix and
//! per-image latency on the MNIST test set, spread over cores with rayon.

use std::boxed::Box;
use std::io::Write;
use std::path::PathBuf;
use std::string::{String, ToString};
use std::time::Instant;
use std::vec::Vec;
use std::{format, vec};

use rayon::prelude::*;
use serde::Serialize;

use super::gpu::{self, Backend};
use super::{argmax, check_mnist_model, load_model, message, micros, progress_bar, thread_count, CliError, CliResult};
use crate::mnist::{load_test, Dataset};
use crate::{Ensemble, Model};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model files; each is evaluated on its own unless --ensemble is given.
    #[arg(value_name = "MODEL", required = true)]
    models: Vec<PathBuf>,
    /// Evaluate the models as one ensemble (mean of their probabilities).
    #[arg(long)]
    ensemble: bool,
    /// Directory holding the MNIST IDX files (t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte).
    #[arg(long, value_name = "DIR", default_value = "data/mnist")]
    data: PathBuf,
    /// Evaluate only the first N test images.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Print one JSON object per evaluation instead of the text report.
    #[arg(long)]
    json: bool,
    /// Worker threads (default: every available core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    /// Engine: cpu, or gpu (WebGPU via wgpu; falls back to cpu without an adapter).
    #[arg(long, value_enum, default_value = "cpu")]
    backend: Backend,
}

/// Images evaluated by one rayon job.
const CHUNK: usize = 64;

/// What is evaluated: one model or an ensemble of several.
enum Runner {
    Single(Box<Model>), // boxed: a Model is ten times the size of an Ensemble handle
    Ensemble(Ensemble),
}

impl Runner {
    fn arena_bytes(&self) -> usize {
        match self {
            Runner::Single(m) => m.arena_bytes(),
            Runner::Ensemble(e) => e.arena_bytes(),
        }
    }

    fn output_len(&self) -> usize {
        match self {
            Runner::Single(m) => m.output_len(),
            Runner::Ensemble(e) => e.output_len(),
        }
    }

    /// Scores whose argmax is the prediction: logits of a model, mean probabilities of an ensemble.
    fn scores(&self, arena: &mut [u8], pixels: &[u8], scores: &mut [f32]) -> crate::Result<()> {
        match self {
            Runner::Single(m) => m.run(arena, pixels, scores),
            Runner::Ensemble(e) => e.predict(arena, pixels, scores),
        }
    }
}

/// The outcome of one evaluation.
#[derive(Debug, Serialize)]
struct Report {
    /// The model path, or the members' paths joined by '+' for an ensemble.
    model: String,
    members: Vec<String>,
    ensemble: bool,
    accuracy: f64,
    correct: u64,
    total: u64,
    /// confusion[true digit][predicted digit].
    confusion: [[u64; 10]; 10],
    /// Mean inference time of one image on one thread, microseconds.
    mean_us: f64,
    threads: usize,
    /// Wall time of the whole evaluation, seconds.
    wall_s: f64,
}

pub fn run(args: &Args, out: &mut dyn Write) -> CliResult {
    let mut models = Vec::with_capacity(args.models.len());
    for path in &args.models {
        models.push(load_model(path)?);
    }
    let mut data = load_test(&args.data)?;
    if let Some(limit) = args.limit {
        data.truncate(limit);
    }
    if data.is_empty() {
        return Err(CliError::Message(format!("{}: no test images to evaluate", args.data.display())));
    }
    for (path, model) in args.models.iter().zip(&models) {
        check_mnist_model(path, model, data.rows, data.cols)?;
    }
    let threads = thread_count(args.threads.map(usize::from));
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().map_err(message)?;
    let names: Vec<String> = args.models.iter().map(|p| p.display().to_string()).collect();

    if args.backend == Backend::Gpu {
        if args.ensemble {
            return Err(CliError::Message(String::from("--backend gpu evaluates single models, not ensembles")));
        }
        let mut gpu_done = Vec::new();
        for (model, name) in models.iter().zip(&names) {
            let Some((predictions, seconds)) = gpu::predict_all(model, &data.images, data.len())? else { break };
            let nanos = (seconds * 1e9) as u128;
            gpu_done.push(report(core::slice::from_ref(name), &predictions, &data, nanos, 1, seconds));
        }
        if gpu_done.len() == models.len() {
            return write_reports(out, &gpu_done, args.json);
        }
    }
    let runs: Vec<(Runner, Vec<String>)> = if args.ensemble {
        vec![(Runner::Ensemble(Ensemble::new(models)?), names)]
    } else {
        models.into_iter().zip(names).map(|(m, name)| (Runner::Single(Box::new(m)), vec![name])).collect()
    };
    let mut reports = Vec::with_capacity(runs.len());
    for (runner, members) in &runs {
        reports.push(pool.install(|| evaluate(runner, members, &data, threads, args.json))?);
    }
    write_reports(out, &reports, args.json)
}

fn write_reports(out: &mut dyn Write, reports: &[Report], json: bool) -> CliResult {
    for (k, report) in reports.iter().enumerate() {
        if json {
            writeln!(out, "{}", serde_json::to_string(report).map_err(message)?)?;
        } else {
            if k > 0 {
                writeln!(out)?;
            }
            write_report(out, report)?;
        }
    }
    Ok(())
}

fn evaluate(runner: &Runner, members: &[String], data: &Dataset, threads: usize, quiet: bool) -> CliResult<Report> {
    let n = data.len();
    let label = if members.len() > 1 { String::from("ensemble") } else { members.join("") };
    let bar = progress_bar(n, quiet, &label);
    let starts: Vec<usize> = (0..n).step_by(CHUNK).collect();
    let wall = Instant::now();
    // Each rayon job gets its own arena and score buffer (allocated outside the timed loop).
    let chunks: Vec<(Vec<u8>, u128)> = starts
        .par_iter()
        .map_init(
            || (vec![0u8; runner.arena_bytes()], vec![0f32; runner.output_len()]),
            |(arena, scores), &start| -> crate::Result<(Vec<u8>, u128)> {
                let end = (start + CHUNK).min(n);
                let mut predictions = Vec::with_capacity(end - start);
                let timer = Instant::now();
                for i in start..end {
                    runner.scores(arena, data.image(i), scores)?;
                    predictions.push(argmax(scores) as u8);
                }
                let nanos = timer.elapsed().as_nanos();
                bar.inc((end - start) as u64);
                Ok((predictions, nanos))
            },
        )
        .collect::<crate::Result<_>>()?;
    let wall_s = wall.elapsed().as_secs_f64();
    bar.finish_and_clear();

    let inference_nanos: u128 = chunks.iter().map(|(_, nanos)| nanos).sum();
    let predictions: Vec<u8> = chunks.into_iter().flat_map(|(p, _)| p).collect();
    Ok(report(members, &predictions, data, inference_nanos, threads, wall_s))
}

/// Tallies predictions (one per test image, in order) against the labels.
fn report(
    members: &[String],
    predictions: &[u8],
    data: &Dataset,
    inference_nanos: u128,
    threads: usize,
    wall_s: f64,
) -> Report {
    let mut confusion = [[0u64; 10]; 10];
    for (i, &predicted) in predictions.iter().enumerate() {
        let truth = usize::from(data.label(i));
        // Labels are digits (checked by the IDX reader) and so are predictions of a 10-class model.
        if let Some(cell) = confusion.get_mut(truth).and_then(|row| row.get_mut(usize::from(predicted))) {
            *cell += 1;
        }
    }
    let correct: u64 = (0..10).map(|d| confusion[d][d]).sum();
    let total = predictions.len() as u64;
    Report {
        model: members.join("+"),
        members: members.to_vec(),
        ensemble: members.len() > 1,
        accuracy: correct as f64 / total as f64,
        correct,
        total,
        confusion,
        mean_us: inference_nanos as f64 / total as f64 / 1000.0,
        threads,
        wall_s,
    }
}

fn write_report(out: &mut dyn Write, r: &Report) -> std::io::Result<()> {
    if r.ensemble {
        writeln!(out, "model: ensemble of {}: {}", r.members.len(), r.members.join(", "))?;
    } else {
        writeln!(out, "model: {}", r.model)?;
    }
    writeln!(out, "accuracy: {:.4} ({}/{})", r.accuracy, r.correct, r.total)?;
    writeln!(out, "confusion (rows: true digit, columns: predicted):")?;
    write!(out, "     ")?;
    for d in 0..10 {
        write!(out, "{d:>6}")?;
    }
    writeln!(out)?;
    for (truth, row) in r.confusion.iter().enumerate() {
        write!(out, "  {truth}  ")?;
        for count in row {
            write!(out, "{count:>6}")?;
        }
        writeln!(out)?;
    }
    writeln!(out, "mean_us: {}", micros(r.mean_us * 1000.0))?;
    writeln!(out, "threads: {}", r.threads)?;
    writeln!(out, "wall_s: {:.3}", r.wall_s)?;
    writeln!(out, "images_per_s: {:.0}", r.total as f64 / r.wall_s.max(1e-9))?;
    Ok(())
}
