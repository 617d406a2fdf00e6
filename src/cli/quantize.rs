//! `tinycnn quantize FLOAT -o INT8`: post-training int8 quantisation,
//! calibrated on images of the MNIST *training* set (never the test set).

use std::format;
use std::io::Write;
use std::path::PathBuf;
use std::string::String;
use std::vec::Vec;

use super::{check_mnist_model, load_model, progress_bar, write_file, write_summary, CliError, CliResult, SplitMix64};
use crate::mnist::load_train;
use crate::model::graph::Dtype;
use crate::quant::quantize::quantize;
use crate::Model;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Float model file.
    #[arg(value_name = "FLOAT")]
    float: PathBuf,
    /// Where to write the int8 model.
    #[arg(short, long, value_name = "INT8")]
    output: PathBuf,
    /// Directory holding the MNIST training IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte).
    #[arg(long, value_name = "DIR", default_value = "data/mnist")]
    calib_data: PathBuf,
    /// Calibration images.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    calib: u32,
    /// Pick the images by a shuffle with this seed (default: evenly spaced through the set).
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
}

pub fn run(args: &Args, out: &mut dyn Write) -> CliResult {
    let model = load_model(&args.float)?;
    if model.dtype() != Dtype::Float {
        return Err(CliError::Message(format!(
            "{}: the model is already {}; quantize takes a float model",
            args.float.display(),
            model.dtype().as_str()
        )));
    }
    let data = load_train(&args.calib_data)?;
    check_mnist_model(&args.float, &model, data.rows, data.cols)?;
    let n = (args.calib as usize).min(data.len());
    if n == 0 {
        return Err(CliError::Message(format!("{}: the training set is empty", args.calib_data.display())));
    }
    let (indices, how) = match args.seed {
        Some(seed) => (shuffled_prefix(data.len(), n, seed), format!("shuffled with seed {seed}")),
        None => (evenly_spaced(data.len(), n), format!("evenly spaced, every {}th", data.len() / n)),
    };

    let bar = progress_bar(n, false, "calibrating");
    let images = indices.iter().map(|&i| {
        bar.inc(1);
        data.image(i)
    });
    let bytes = quantize(&model, images).map_err(|source| CliError::File { path: args.float.clone(), source })?;
    bar.finish_and_clear();
    let int8 = Model::load(bytes).map_err(|source| CliError::File { path: args.output.clone(), source })?;
    write_file(&args.output, int8.bytes())?;

    let float_bytes = model.bytes().len();
    let int8_bytes = int8.bytes().len();
    writeln!(out, "calibration: {n} training images of {} ({how})", args.calib_data.display())?;
    writeln!(out, "float: {} ({float_bytes} bytes)", args.float.display())?;
    writeln!(
        out,
        "int8: {} ({int8_bytes} bytes, {:.2}x smaller)",
        args.output.display(),
        float_bytes as f64 / int8_bytes.max(1) as f64
    )?;
    writeln!(out)?;
    writeln!(out, "model: {}", args.output.display())?;
    write_summary(out, &int8, int8_bytes)?;
    Ok(())
}

/// `n` indices spread evenly over `0..len`: ⌊k·len/n⌋.
fn evenly_spaced(len: usize, n: usize) -> Vec<usize> {
    (0..n).map(|k| k * len / n.max(1)).collect()
}

/// The first `n` of a seeded Fisher–Yates shuffle of `0..len`, in shuffled order.
fn shuffled_prefix(len: usize, n: usize, seed: u64) -> Vec<usize> {
    let mut rng = SplitMix64(seed);
    let mut order: Vec<usize> = (0..len).collect();
    for k in 0..n.min(len) {
        let j = k + rng.below(len - k);
        order.swap(k, j);
    }
    order.truncate(n);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections_are_distinct_and_deterministic() {
        assert_eq!(evenly_spaced(60000, 3), [0, 20000, 40000]);
        assert_eq!(evenly_spaced(5, 5), [0, 1, 2, 3, 4]);
        let a = shuffled_prefix(100, 10, 7);
        assert_eq!(a, shuffled_prefix(100, 10, 7));
        assert_ne!(a, shuffled_prefix(100, 10, 8));
        let mut sorted = a.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 10);
        assert!(a.iter().all(|&i| i < 100));
    }
}
