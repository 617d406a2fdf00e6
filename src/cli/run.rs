//! `tinycnn run MODEL INPUT.bin -o OUTPUT.bin`: N input tensors back to back in,
//! N output tensors back to back out, raw bytes without a header.
//!
//! A model with pixel input (the MNIST models) reads C·H·W pixel bytes per
//! input and writes its logits as little-endian f32; a model with int8 input
//! (an imported `.tflite`) reads its int8 tensor (H×W×C, NHWC) and writes its
//! int8 output. The same format as `scripts/mcu-run`.

use std::io::Write;
use std::path::PathBuf;
use std::vec::Vec;
use std::{format, vec};

use super::{load_model, read_file, write_file, CliError, CliResult};
use crate::model::graph::InputKind;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model file (.safetensors with a tinycnn graph).
    #[arg(value_name = "MODEL")]
    model: PathBuf,
    /// Input tensors back to back, in the model's input dtype and layout.
    #[arg(value_name = "INPUT")]
    input: PathBuf,
    /// Where to write the output tensors.
    #[arg(short, long, value_name = "OUTPUT")]
    output: PathBuf,
}

pub fn run(args: &Args, out: &mut dyn Write) -> CliResult {
    let model = load_model(&args.model)?;
    let input = read_file(&args.input)?;
    let per_input = model.input_len();
    if input.is_empty() || input.len() % per_input != 0 {
        return Err(CliError::Message(format!(
            "{}: {} bytes is not a whole number of {per_input}-byte inputs of {}",
            args.input.display(),
            input.len(),
            args.model.display()
        )));
    }
    let count = input.len() / per_input;
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut result: Vec<u8> = Vec::new();
    let at_input =
        |i: usize, source: crate::Error| CliError::Message(format!("{}: input {i}: {source}", args.input.display()));
    match model.graph().input.kind {
        InputKind::Pixels => {
            let mut logits = vec![0f32; model.output_len()];
            for (i, pixels) in input.chunks_exact(per_input).enumerate() {
                model.run(&mut arena, pixels, &mut logits).map_err(|e| at_input(i, e))?;
                result.extend(logits.iter().flat_map(|v| v.to_le_bytes()));
            }
        }
        InputKind::Int8 => {
            let mut values = vec![0i8; model.int8_output_len()];
            for (i, tensor) in input.chunks_exact(per_input).enumerate() {
                model.run_int8(&mut arena, bytemuck::cast_slice(tensor), &mut values).map_err(|e| at_input(i, e))?;
                result.extend(values.iter().map(|&v| v as u8));
            }
        }
    }
    write_file(&args.output, &result)?;
    writeln!(out, "ran {count} inputs; wrote {} bytes to {}", result.len(), args.output.display())?;
    Ok(())
}
