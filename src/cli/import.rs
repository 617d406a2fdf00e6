//! `tinycnn import WEIGHTS -o MODEL (--arch NAME | --graph FILE)`: a plain
//! PyTorch `state_dict` (safetensors) plus a graph → a tinycnn model file.
//! The tensors are copied as they are; the result is loaded (fully validated)
//! before it is written, so a graph that does not fit the weights names the
//! tensor at fault and writes nothing.
//!
//! `tinycnn import MODEL.tflite -o MODEL`: a TFLite int8 model, graph and
//! quantisation included (`crate::tflite`).

use std::borrow::Cow;
use std::io::Write;
use std::path::PathBuf;
use std::string::{String, ToString};
use std::vec::Vec;
use std::{eprintln, format};

use safetensors::SafeTensors;

use super::{read_file, write_file, write_summary, CliError, CliResult};
use crate::model::graph::{Graph, RawGraph, METADATA_KEY};
use crate::model::writer::TensorData;
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
}

pub fn run(args: &Args, out: &mut dyn Write) -> CliResult {
    let bytes = read_file(&args.weights)?;
    if bytes.get(4..8) == Some(b"TFL3".as_slice()) {
        return import_tflite(args, &bytes, out);
    }
    let graph_json = graph_json(args)?;
    let not_safetensors = |e: safetensors::SafeTensorError| CliError::File {
        path: args.weights.clone(),
        source: crate::Error::NotSafetensors(e.to_string()),
    };
    let (_, metadata) = SafeTensors::read_metadata(&bytes).map_err(not_safetensors)?;
    let tensors = SafeTensors::deserialize(&bytes).map_err(not_safetensors)?;

    // Other metadata (e.g. PyTorch's "format": "pt") is kept; a graph already there is replaced.
    let mut info = metadata.metadata().clone().unwrap_or_default();
    if info.insert(METADATA_KEY.to_string(), graph_json).is_some() {
        eprintln!("note: {} already had a graph; it is replaced", args.weights.display());
    }
    let data: Vec<TensorData<'_>> = tensors
        .iter()
        .map(|(name, view)| TensorData {
            name: name.to_string(),
            dtype: view.dtype(),
            shape: view.shape().to_vec(),
            data: Cow::Borrowed(view.data()),
        })
        .collect();
    let file = safetensors::serialize(data.iter().map(|t| (t.name.as_str(), t)), Some(info))
        .map_err(|e| CliError::Message(format!("cannot write the model: {e}")))?;

    let model = Model::load(file)
        .map_err(|e| CliError::Message(format!("{}: the weights do not fit the graph: {e}", args.weights.display())))?;
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
fn graph_json(args: &Args) -> CliResult<String> {
    let raw = match (&args.arch, &args.graph) {
        (Some(name), _) => zoo::by_name(name).ok_or_else(|| {
            CliError::Message(format!("unknown architecture '{name}' (built in: {})", zoo::NAMES.join(", ")))
        })?,
        (None, Some(path)) => {
            let text = read_file(path)?;
            let text = String::from_utf8(text)
                .map_err(|_| CliError::Message(format!("{}: the graph is not UTF-8 text", path.display())))?;
            RawGraph::from_json(&text).map_err(|source| CliError::File { path: path.clone(), source })?
        }
        (None, None) => {
            return Err(CliError::Message(format!(
                "{}: a state dict needs --arch NAME or --graph FILE (only a .tflite file brings its own graph)",
                args.weights.display()
            )))
        }
    };
    let described = args.graph.as_ref().map_or_else(|| String::from("the built-in graph"), |p| p.display().to_string());
    Graph::from_raw(&raw).map_err(|e| CliError::Message(format!("{described}: {e}")))?;
    Ok(raw.to_json())
}
