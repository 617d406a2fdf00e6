//! `tinycnn inspect MODEL`: the graph, per-node costs, totals and arena size.

use std::io::Write;
use std::path::PathBuf;

use super::{load_model, write_summary, CliResult};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model file (.safetensors with a tinycnn graph).
    #[arg(value_name = "MODEL")]
    model: PathBuf,
}

pub fn run(args: &Args, out: &mut dyn Write) -> CliResult {
    let model = load_model(&args.model)?;
    writeln!(out, "model: {}", args.model.display())?;
    write_summary(out, &model, model.bytes().len())?;
    Ok(())
}
