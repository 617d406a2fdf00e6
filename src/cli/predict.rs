//! `tinycnn predict MODEL IMAGE...`: the digit in each image file, with the
//! ten class probabilities. Images go through MNIST-style preprocessing
//! (`crate::preprocess`) unless `--raw` says they already are MNIST digits.

use std::format;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::vec;
use std::vec::Vec;

use super::{argmax, check_mnist_model, load_model, CliError, CliResult};
use crate::preprocess::{preprocess_rgba, SIDE};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model file.
    #[arg(value_name = "MODEL")]
    model: PathBuf,
    /// Image files (PNG, JPEG, PGM/PPM): a digit, dark on light or light on dark.
    #[arg(value_name = "IMAGE", required = true)]
    images: Vec<PathBuf>,
    /// The images already are 28x28 MNIST digits (white on black): use their
    /// gray levels as they are, without cropping, scaling or centring.
    #[arg(long)]
    raw: bool,
}

pub fn run(args: &Args, out: &mut dyn Write) -> CliResult {
    let model = load_model(&args.model)?;
    check_mnist_model(&args.model, &model, SIDE, SIDE)?;
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut probabilities = vec![0f32; model.output_len()];
    for (k, path) in args.images.iter().enumerate() {
        let pixels = if args.raw { raw_digit(path)? } else { digit(path)? };
        model.predict(&mut arena, &pixels, &mut probabilities)?;
        let best = argmax(&probabilities);
        if k > 0 {
            writeln!(out)?;
        }
        writeln!(out, "image: {}", path.display())?;
        writeln!(out, "digit: {best}")?;
        writeln!(out, "confidence: {:.4}", probabilities[best])?;
        let listed: Vec<std::string::String> = probabilities.iter().map(|p| format!("{p:.4}")).collect();
        writeln!(out, "probabilities: {}", listed.join(" "))?;
    }
    Ok(())
}

fn decode(path: &Path) -> CliResult<image::DynamicImage> {
    let reader = image::ImageReader::open(path)
        .map_err(|source| CliError::Io { path: path.to_path_buf(), source })?
        .with_guessed_format()
        .map_err(|source| CliError::Io { path: path.to_path_buf(), source })?;
    reader.decode().map_err(|e| CliError::Message(format!("{}: cannot decode the image: {e}", path.display())))
}

/// An image file → MNIST-style 28×28 digit.
fn digit(path: &Path) -> CliResult<[u8; SIDE * SIDE]> {
    let rgba = decode(path)?.to_rgba8();
    let (width, height) = (rgba.width() as usize, rgba.height() as usize);
    preprocess_rgba(rgba.as_raw(), width, height).map_err(|source| CliError::File { path: path.to_path_buf(), source })
}

/// A 28×28 image file taken as is (its luminance).
fn raw_digit(path: &Path) -> CliResult<[u8; SIDE * SIDE]> {
    let gray = decode(path)?.to_luma8();
    let mut pixels = [0u8; SIDE * SIDE];
    if (gray.width() as usize, gray.height() as usize) != (SIDE, SIDE) || gray.as_raw().len() != pixels.len() {
        return Err(CliError::Message(format!(
            "{}: --raw needs a {SIDE}x{SIDE} image, this one is {}x{}",
            path.display(),
            gray.width(),
            gray.height()
        )));
    }
    pixels.copy_from_slice(gray.as_raw());
    Ok(pixels)
}
