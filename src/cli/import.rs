//! `tinycnn import WEIGHTS -o MODEL (--arch NAME | --graph FILE) [--mean M --std S]`:
//! a plain PyTorch `state_dict` (safetensors) plus a graph → a tinycnn model
//! file. The input normalisation is never assumed: `--arch` needs it said.
//! The tensors are copied as they are (an int8 state dict gains its
//! per-channel requantisation multipliers, as `quantize` writes them); the
//! result is loaded (fully validated) before it is written, so a graph that
//! does not fit the weights names the tensor at fault and writes nothing.
//!
//! `tinycnn import MODEL.tflite -o MODEL`: a TFLite int8 model, graph and
//! quantisation included (`crate::tflite`).

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::string::{String, ToString};
use std::{eprintln, format};

use safetensors::SafeTensors;

use super::{read_file, write_file, write_summary, CliError, CliResult};
use crate::model::graph::Dtype;
use crate::model::graph::{Graph, RawGraph, METADATA_KEY};
use crate::model::writer::{store_requant_multipliers, tensors_of};
use crate::model::zoo;
use crate::Model;

#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("graph_source").args(["arch", "graph"]))]
pub struct Args {
    /// State dict saved with `safetensors.torch.save_file` (PyTorch names and layouts),
    /// or a TFLite int8 model (`.tflite`: its graph comes with it).
    #[arg(value_name = "WEIGHTS")]
    weights: PathBuf,
    /// Where to write the model file.
    #[arg(short, long, value_name = "MODEL")]
    output: PathBuf,
    /// A built-in architecture (deepconvnet).
    #[arg(long, value_name = "NAME")]
    arch: Option<String>,
    /// A graph JSON file (docs/FORMAT.md).
    #[arg(long, value_name = "FILE")]
    graph: Option<PathBuf>,
    /// The input normalisation the network was trained with: a pixel p reaches it as
    /// (p/255 − mean)/std. Required with --arch unless the file's metadata has "mean" and "std"
    /// (strings); overrides the graph's with --graph.
    #[arg(long, value_name = "M", requires = "std", allow_hyphen_values = true)]
    mean: Option<f64>,
    /// See --mean (MNIST's usual: --mean 0.1307 --std 0.3081; x = p/255: --mean 0 --std 1).
    #[arg(long, value_name = "S", requires = "mean")]
    std: Option<f64>,
}

pub fn run(args: &Args, out: &mut dyn Write) -> CliResult {
    let bytes = read_file(&args.weights)?;
    if bytes.get(4..8) == Some(b"TFL3".as_slice()) {
        return import_tflite(args, &bytes, out);
    }
    let not_safetensors = |e: safetensors::SafeTensorError| CliError::File {
        path: args.weights.clone(),
        source: crate::Error::NotSafetensors(e.to_string()),
    };
    let (_, metadata) = SafeTensors::read_metadata(&bytes).map_err(not_safetensors)?;
    let tensors = SafeTensors::deserialize(&bytes).map_err(not_safetensors)?;

    // Other metadata (e.g. PyTorch's "format": "pt") is kept; a graph already there is replaced.
    let mut info = metadata.metadata().clone().unwrap_or_default();
    let graph_json = graph_json(args, &info)?;
    if info.insert(METADATA_KEY.to_string(), graph_json).is_some() {
        eprintln!("note: {} already had a graph; it is replaced", args.weights.display());
    }
    let data = tensors_of(&tensors);
    let file = safetensors::serialize(data.iter().map(|t| (t.name.as_str(), t)), Some(info))
        .map_err(|e| CliError::Message(format!("cannot write the model: {e}")))?;

    let model = Model::load(file)
        .map_err(|e| CliError::Message(format!("{}: the weights do not fit the graph: {e}", args.weights.display())))?;
    // An int8 state dict gets its per-channel multipliers stored, as `quantize`
    // writes them: a microcontroller then reads them from flash.
    let model = match model.dtype() {
        Dtype::Int8 => Model::load(store_requant_multipliers(model.bytes())?)?,
        Dtype::Float => model,
    };
    write_file(&args.output, model.bytes())?;
    writeln!(out, "wrote: {} ({} tensors, {} bytes)", args.output.display(), data.len(), model.bytes().len())?;
    writeln!(out)?;
    writeln!(out, "model: {}", args.output.display())?;
    write_summary(out, &model, model.bytes().len())?;
    Ok(())
}

fn import_tflite(args: &Args, bytes: &[u8], out: &mut dyn Write) -> CliResult {
    if args.arch.is_some() || args.graph.is_some() {
        return Err(CliError::Message(format!("{}: a .tflite file brings its own graph", args.weights.display())));
    }
    if args.mean.is_some() {
        return Err(CliError::Message(format!(
            "{}: a .tflite file brings its own input quantisation (--mean/--std are for state dicts)",
            args.weights.display()
        )));
    }
    let imported =
        crate::tflite::import(bytes).map_err(|source| CliError::File { path: args.weights.clone(), source })?;
    let model = Model::load(imported.file)?;
    write_file(&args.output, model.bytes())?;
    writeln!(out, "wrote: {} ({} bytes)", args.output.display(), model.bytes().len())?;
    writeln!(out)?;
    writeln!(out, "model: {}", args.output.display())?;
    write_summary(out, &model, model.bytes().len())?;
    Ok(())
}

/// The graph JSON to attach, validated (but not yet against the weights).
fn graph_json(args: &Args, metadata: &HashMap<String, String>) -> CliResult<String> {
    let weights = args.weights.display();
    let raw = match (&args.arch, &args.graph) {
        (Some(name), _) => {
            let mut raw = zoo::by_name(name).ok_or_else(|| {
                CliError::Message(format!("unknown architecture '{name}' (built in: {})", zoo::NAMES.join(", ")))
            })?;
            // The built-in graph cannot know how these weights were trained: never guess.
            let (mean, std) = normalisation(args, metadata)?.ok_or_else(|| {
                CliError::Message(format!(
                    "{weights}: --arch {name} needs the input normalisation the network was trained with: \
                     --mean M --std S (a pixel p reaches the network as (p/255 − M)/S; MNIST's usual 0.1307 and \
                     0.3081, or 0 and 1 for p/255), or \"mean\" and \"std\" in the file's metadata"
                ))
            })?;
            raw.input.mean = Some(mean);
            raw.input.std = Some(std);
            raw
        }
        (None, Some(path)) => {
            let text = read_file(path)?;
            let text = String::from_utf8(text)
                .map_err(|_| CliError::Message(format!("{}: the graph is not UTF-8 text", path.display())))?;
            let mut raw = RawGraph::from_json(&text).map_err(|source| CliError::File { path: path.clone(), source })?;
            // The graph says its own normalisation; only the flags override it.
            if let (Some(mean), Some(std)) = (args.mean, args.std) {
                raw.input.mean = Some(mean);
                raw.input.std = Some(std);
            } else if raw.input.dtype.is_none() && (raw.input.mean.is_none() || raw.input.std.is_none()) {
                return Err(CliError::Message(format!(
                    "{}: the graph's input has no \"mean\" and \"std\" (how its pixels are normalised); \
                     add them, or pass --mean M --std S",
                    path.display()
                )));
            }
            raw
        }
        (None, None) => {
            return Err(CliError::Message(format!(
                "{weights}: a state dict needs --arch NAME or --graph FILE (only a .tflite file brings its own graph)"
            )))
        }
    };
    let described = args.graph.as_ref().map_or_else(|| String::from("the built-in graph"), |p| p.display().to_string());
    Graph::from_raw(&raw).map_err(|e| CliError::Message(format!("{described}: {e}")))?;
    Ok(raw.to_json())
}

/// `--mean/--std`, else the state dict's own `"mean"`/`"std"` metadata, else none.
fn normalisation(args: &Args, metadata: &HashMap<String, String>) -> CliResult<Option<(f64, f64)>> {
    if let (Some(mean), Some(std)) = (args.mean, args.std) {
        return Ok(Some((mean, std)));
    }
    match (metadata.get("mean"), metadata.get("std")) {
        (Some(mean), Some(std)) => {
            let number = |key: &str, text: &str| {
                text.trim().parse::<f64>().map_err(|_| {
                    CliError::Message(format!(
                        "{}: metadata \"{key}\" is '{text}', not a number",
                        args.weights.display()
                    ))
                })
            };
            Ok(Some((number("mean", mean)?, number("std", std)?)))
        }
        _ => Ok(None),
    }
}
