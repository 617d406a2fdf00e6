//! The `tinycnn` command (feature `cli`): one file per subcommand.
//!
//! Every failure becomes a [`CliError`], printed by [`main`] as one line
//! `error: <message>` (with the path of the file at fault), exit status 1;
//! command-line mistakes are clap's, exit status 2.

use std::ffi::OsString;
use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::string::{String, ToString};
use std::vec::Vec;
use std::{eprintln, format};

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::engine::{KernelSet, Model};
use crate::model::graph::InputKind;

mod bench;
mod eval;
mod gpu;
mod import;
mod inspect;
mod predict;
mod quantize;
mod run;

/// Integer-only int8 inference for small CNNs: inspect, evaluate, quantise and run models.
#[derive(Debug, Parser)]
#[command(name = "tinycnn", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show a model's graph: per-node output shape, parameters and MACs; totals; arena size.
    Inspect(inspect::Args),
    /// Measure accuracy on the MNIST test set (one model, several, or an ensemble).
    Eval(eval::Args),
    /// Recognise the digit in image files (PNG, JPEG, PGM).
    Predict(predict::Args),
    /// Time single-image inference on one thread.
    Bench(bench::Args),
    /// Turn a float model into an int8 model, calibrated on MNIST training images.
    Quantize(quantize::Args),
    /// Make a model file: a PyTorch state dict (safetensors) plus a graph, or a TFLite int8 model.
    Import(import::Args),
    /// Run a model on input tensors from a file, writing the outputs to a file.
    Run(run::Args),
}

/// A failure of a command, displayed as one line.
#[derive(Debug)]
pub enum CliError {
    /// Reading or writing a file failed.
    Io { path: PathBuf, source: io::Error },
    /// The library refused something in a file (a model, a data set).
    File { path: PathBuf, source: crate::Error },
    /// The library refused something not tied to one file.
    Lib(crate::Error),
    /// Anything else, already worded.
    Message(String),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            CliError::File { path, source } => write!(f, "{}: {source}", path.display()),
            CliError::Lib(e) => write!(f, "{e}"),
            CliError::Message(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CliError {}

impl From<crate::Error> for CliError {
    fn from(e: crate::Error) -> Self {
        CliError::Lib(e)
    }
}

/// Writing to standard output failed (e.g. a closed pipe).
impl From<io::Error> for CliError {
    fn from(source: io::Error) -> Self {
        CliError::Io { path: PathBuf::from("<stdout>"), source }
    }
}

pub(crate) type CliResult<T = ()> = Result<T, CliError>;

/// Parses `std::env::args` and runs the command.
pub fn main() -> ExitCode {
    run_from(std::env::args_os())
}

/// Parses the given arguments (the first is the program name) and runs the command.
pub fn run_from(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version land here too, with exit code 0.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let result = run(cli, &mut out).and_then(|()| out.flush().map_err(CliError::from));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `tinycnn inspect m | head`: the reader left, nothing to report.
        Err(CliError::Io { source, .. }) if source.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}

/// Runs a parsed command, writing its report to `out`.
pub fn run(cli: Cli, out: &mut dyn Write) -> CliResult {
    match cli.command {
        Command::Inspect(args) => inspect::run(&args, out),
        Command::Eval(args) => eval::run(&args, out),
        Command::Predict(args) => predict::run(&args, out),
        Command::Bench(args) => bench::run(&args, out),
        Command::Quantize(args) => quantize::run(&args, out),
        Command::Import(args) => import::run(&args, out),
        Command::Run(args) => run::run(&args, out),
    }
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

// ---------------------------------------------------------------------------
// Helpers shared by the subcommands.

/// Reads a whole file; the error names the path.
pub(crate) fn read_file(path: &Path) -> CliResult<Vec<u8>> {
    std::fs::read(path).map_err(|source| CliError::Io { path: path.to_path_buf(), source })
}

/// Writes a whole file; the error names the path.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> CliResult {
    std::fs::write(path, bytes).map_err(|source| CliError::Io { path: path.to_path_buf(), source })
}

/// Reads and loads a model file.
pub(crate) fn load_model(path: &Path) -> CliResult<Model> {
    let bytes = read_file(path)?;
    Model::load(bytes).map_err(|source| CliError::File { path: path.to_path_buf(), source })
}

/// Checks that a model reads one MNIST digit (1×rows×cols) and gives 10 classes.
pub(crate) fn check_mnist_model(path: &Path, model: &Model, rows: usize, cols: usize) -> CliResult {
    let input = model.input_shape();
    if (input.c, input.h, input.w) != (1, rows, cols) {
        return Err(CliError::Message(format!(
            "{}: the model takes {input} input, the digits are 1x{rows}x{cols}",
            path.display()
        )));
    }
    if model.output_len() != 10 {
        return Err(CliError::Message(format!(
            "{}: the model gives {} outputs, MNIST has 10 classes",
            path.display(),
            model.output_len()
        )));
    }
    Ok(())
}

/// Index of the largest value; ties go to the lowest index, NaN never wins.
pub(crate) fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] || values[best].is_nan() && !v.is_nan() {
            best = i;
        }
    }
    best
}

/// A progress bar on stderr, hidden when asked or when stderr is not a terminal.
pub(crate) fn progress_bar(len: usize, hidden: bool, message: &str) -> ProgressBar {
    if hidden || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) = ProgressStyle::with_template("[{bar:30}] {pos}/{len} eta {eta} {wide_msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message.to_string());
    bar
}

/// Worker threads: the number asked for, or every available core.
pub(crate) fn thread_count(asked: Option<usize>) -> usize {
    asked.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)).max(1)
}

/// Distinct tensor dtypes of a safetensors file, e.g. "F32, I64".
pub(crate) fn tensor_dtypes(bytes: &[u8]) -> String {
    let Ok((_, metadata)) = safetensors::SafeTensors::read_metadata(bytes) else {
        return String::from("?");
    };
    let mut dtypes: Vec<String> = metadata.tensors().values().map(|t| format!("{:?}", t.dtype)).collect();
    dtypes.sort();
    dtypes.dedup();
    dtypes.join(", ")
}

/// The per-node table and totals printed by `inspect`, `quantize` and `import`.
pub(crate) fn write_summary(out: &mut dyn Write, model: &Model, file_bytes: usize) -> io::Result<()> {
    let graph = model.graph();
    let input = &graph.input;
    writeln!(out, "dtype: {}", model.dtype().as_str())?;
    writeln!(out, "tensor_dtypes: {}", tensor_dtypes(model.bytes()))?;
    writeln!(out, "file_bytes: {file_bytes}")?;
    match (input.kind, input.quant) {
        (InputKind::Int8, Some(q)) => writeln!(
            out,
            "input: {} int8 values, channels last (scale {}, zero point {})",
            model.input_shape(),
            q.scale,
            q.zero_point
        )?,
        _ => writeln!(
            out,
            "input: {} pixels p in 0..255, which the network sees as (p/255 − mean)/std (mean {}, std {})",
            model.input_shape(),
            input.mean,
            input.std
        )?,
    }
    if graph.output != graph.logits {
        let name = graph.value_name(graph.output);
        writeln!(out, "output: {} int8 values from '{name}' (TFLite's integer softmax)", model.int8_output_len())?;
    }
    let softmax = if graph.softmax_output { " (then softmax)" } else { "" };
    writeln!(out, "logits: {} from '{}'{softmax}", model.output_len(), graph.value_name(graph.logits))?;
    let stats = model.node_stats();
    let name_width = stats.iter().map(|s| s.name.len()).max().unwrap_or(4).max(4);
    writeln!(out)?;
    writeln!(out, "{:<name_width$}  {:<14}  {:>12}  {:>10}  {:>12}", "node", "op", "output", "params", "macs")?;
    for s in &stats {
        writeln!(
            out,
            "{:<name_width$}  {:<14}  {:>12}  {:>10}  {:>12}",
            s.name,
            s.op,
            s.output.to_string(),
            s.params,
            s.macs
        )?;
    }
    writeln!(out)?;
    writeln!(out, "nodes: {}", stats.len())?;
    writeln!(out, "params: {}", model.parameter_count())?;
    writeln!(out, "macs: {}", stats.iter().map(|s| s.macs).sum::<u64>())?;
    writeln!(out, "arena_bytes: {}", model.arena_bytes())?;
    if model.dtype() == crate::Dtype::Int8 {
        // What a heap-free load (a microcontroller's) reserves: the portable kernels read
        // the weights in place; a SIMD set keeps its packed copy in the memory too.
        let mut sets = std::vec![KernelSet::Portable, KernelSet::best()];
        sets.dedup();
        let mut memory = std::vec![MaybeUninit::new(0u8); 4 * model.bytes().len() + (16 << 20)];
        for kernels in sets {
            if let Ok((in_place, _)) = crate::ArenaModel::load(model.bytes(), &mut memory, kernels) {
                writeln!(
                    out,
                    "memory_bytes ({}): {} (ArenaModel::load: state {} + arena {}; the load's peak {})",
                    kernels.name(),
                    in_place.memory_bytes(),
                    in_place.state_bytes(),
                    in_place.arena_bytes(),
                    in_place.load_peak_bytes()
                )?;
            }
        }
    }
    Ok(())
}

/// Formats microseconds from nanoseconds with two decimals.
pub(crate) fn micros(nanos: f64) -> String {
    format!("{:.2}", nanos / 1000.0)
}

/// A [`CliError`] from any displayable error (for `map_err` on foreign error types).
pub(crate) fn message(e: impl fmt::Display) -> CliError {
    CliError::Message(e.to_string())
}

/// SplitMix64: a tiny deterministic generator for inputs and shuffles.
pub(crate) struct SplitMix64(pub u64);

impl SplitMix64 {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Nearly uniform in 0..n (multiply-shift; bias at most n/2^64).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_ties_go_to_the_lowest_index() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(argmax(&[f32::NAN, 0.5, 0.5]), 1);
        assert_eq!(argmax(&[0.0; 10]), 0);
    }

    #[test]
    fn errors_print_on_one_line() {
        assert_eq!(one_line("a\n  b\tc"), "a b c");
    }
}
