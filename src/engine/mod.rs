//! The CPU engine: a [`Network`] prepared for this machine's kernels, run over
//! a caller-provided arena without touching the heap.
//!
//! Preparing (once, at load) turns every int8 node into a `int8::Step` that
//! holds what its kernel needs: geometry, zero points, output clamp, the
//! weights packed for the chosen [`KernelSet`], the add tables. Running then
//! only walks the steps. `Model::run` dispatches on the dtype: the integer
//! engine (int8.rs) or the f32 engine (float.rs); both read each node's inputs
//! from, and write its output to, the byte ranges the planner assigned.

mod float;
mod int8;

use alloc::vec::Vec;
use core::ops::{Deref, Range};

use crate::error::{Error, Result};
pub use crate::kernels::KernelSet;
use crate::model::graph::{Dtype, Graph, Op};
use crate::model::{Network, NodeParams};

/// How [`Model::load_with`] prepares a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadOptions {
    /// The int8 kernels to run (default: the fastest this machine has).
    /// `KernelSet::Reference` packs nothing: what a model only handed to the
    /// GPU engine wants.
    pub kernels: KernelSet,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { kernels: KernelSet::best() }
    }
}

/// A model ready to run on the CPU: a validated [`Network`] (every accessor of
/// which it offers) and the CPU kernels' preparation of it.
#[derive(Debug, Clone)]
pub struct Model<B = Vec<u8>> {
    network: Network<B>,
    kernels: KernelSet,
    /// int8 models: one step per node. Float models run from the network itself.
    steps: Vec<int8::Step>,
}

impl<B> Deref for Model<B> {
    type Target = Network<B>;
    fn deref(&self) -> &Network<B> {
        &self.network
    }
}

impl<B: AsRef<[u8]>> Model<B> {
    /// Parses and validates a model file, plans its arena and prepares it for
    /// this machine's fastest kernels.
    pub fn load(bytes: B) -> Result<Self> {
        Model::load_with(bytes, LoadOptions::default())
    }

    /// `load`, with the kernels chosen by `options`.
    pub fn load_with(bytes: B, options: LoadOptions) -> Result<Self> {
        Model::prepare(Network::load(bytes)?, options)
    }

    /// Prepares a validated network for the CPU kernels of `options`.
    pub fn prepare(network: Network<B>, options: LoadOptions) -> Result<Self> {
        let steps = match network.dtype() {
            Dtype::Int8 => int8::prepare(&network, options.kernels)?,
            Dtype::Float => Vec::new(),
        };
        Ok(Model { network, kernels: options.kernels, steps })
    }

    /// The validated network (what the GPU engine prepares from).
    pub fn network(&self) -> &Network<B> {
        &self.network
    }

    /// The int8 kernels this model runs.
    pub fn kernels(&self) -> KernelSet {
        self.kernels
    }
}

impl Model<Vec<u8>> {
    /// A float model built in memory (by the quantiser's graph rewrites).
    #[doc(hidden)] // for the engines, quantiser and tests: not API
    pub fn from_float_parts(graph: Graph, params: Vec<NodeParams>) -> Result<Self> {
        Model::prepare(Network::from_float_parts(graph, params)?, LoadOptions::default())
    }
}

/// Most inputs an op can have (limits::OP_INPUTS); input slices live in a fixed array.
pub(crate) const MAX_INPUTS: usize = crate::model::limits::OP_INPUTS;

/// Receives every activation as it is computed: value id (0 = input, i + 1 = node i)
/// and its contents (int8: H×W×C; float: C×H×W).
pub type Observer<'o, T> = &'o mut dyn FnMut(usize, &[T]);

impl<B: AsRef<[u8]>> Model<B> {
    /// Runs the network on `pixels` (C×H×W bytes) and writes the logits.
    /// No heap allocation; `arena` must hold at least `arena_bytes()`.
    pub fn run(&self, arena: &mut [u8], pixels: &[u8], logits: &mut [f32]) -> Result<()> {
        match self.dtype() {
            Dtype::Int8 => int8::run(self, arena, pixels, logits, None),
            Dtype::Float => float::run(self, arena, pixels, logits, None),
        }
    }

    /// Like `run`, then softmax (with the graph's `beta`): class probabilities.
    pub fn predict(&self, arena: &mut [u8], pixels: &[u8], probabilities: &mut [f32]) -> Result<()> {
        self.run(arena, pixels, probabilities)?;
        let beta = self.graph().nodes.iter().find_map(|n| match n.op {
            Op::Softmax { beta } => Some(beta),
            _ => None,
        });
        if let Some(beta) = beta.filter(|&b| b != 1.0) {
            probabilities.iter_mut().for_each(|p| *p *= beta);
        }
        softmax_in_place(probabilities);
        Ok(())
    }

    /// Runs an int8 network on quantised input values (H×W×C, the input's scale and
    /// zero point; a TFLite model's NHWC tensor) and writes its int8 output
    /// ([`Graph::output`]: TFLite's integer softmax, or the logits), H×W×C.
    /// No heap allocation; `arena` must hold at least `arena_bytes()`.
    pub fn run_int8(&self, arena: &mut [u8], input: &[i8], output: &mut [i8]) -> Result<()> {
        if self.dtype() != Dtype::Int8 {
            return Err(Error::WrongDtype { expected: "int8" });
        }
        int8::run_int8(self, arena, input, output, None)
    }

    /// The arena's input buffer of an int8 model: `input_len()` values, H×W×C, the
    /// input's scale and zero point. Write an input here and call
    /// [`run_int8_in_place`](Self::run_int8_in_place): the arena then holds the
    /// only copy of it (TFLite Micro's `interpreter.input(0)`; on a microcontroller,
    /// an input buffer less). Each run may overwrite it: write it before every run.
    pub fn int8_input_mut<'a>(&self, arena: &'a mut [u8]) -> Result<&'a mut [i8]> {
        if self.dtype() != Dtype::Int8 {
            return Err(Error::WrongDtype { expected: "int8" });
        }
        if arena.len() < self.arena_bytes() {
            return Err(Error::ArenaTooSmall { needed: self.arena_bytes(), found: arena.len() });
        }
        int8::input_buffer(self, arena)
    }

    /// `run_int8` on the input already written into the arena by [`int8_input_mut`](Self::int8_input_mut).
    pub fn run_int8_in_place(&self, arena: &mut [u8], output: &mut [i8]) -> Result<()> {
        if self.dtype() != Dtype::Int8 {
            return Err(Error::WrongDtype { expected: "int8" });
        }
        int8::run_int8_in_place(self, arena, output, None)
    }

    /// `run` on an int8 model, showing every int8 activation to `observer`.
    pub fn run_int8_observed(
        &self,
        arena: &mut [u8],
        pixels: &[u8],
        logits: &mut [f32],
        observer: Observer<'_, i8>,
    ) -> Result<()> {
        if self.dtype() != Dtype::Int8 {
            return Err(Error::WrongDtype { expected: "int8" });
        }
        int8::run(self, arena, pixels, logits, Some(observer))
    }

    /// `run_int8`, showing every int8 activation to `observer`.
    pub fn run_int8_values_observed(
        &self,
        arena: &mut [u8],
        input: &[i8],
        output: &mut [i8],
        observer: Observer<'_, i8>,
    ) -> Result<()> {
        if self.dtype() != Dtype::Int8 {
            return Err(Error::WrongDtype { expected: "int8" });
        }
        int8::run_int8(self, arena, input, output, Some(observer))
    }

    /// `run` on a float model, showing every f32 activation to `observer` (calibration).
    pub fn run_float_observed(
        &self,
        arena: &mut [u8],
        pixels: &[u8],
        logits: &mut [f32],
        observer: Observer<'_, f32>,
    ) -> Result<()> {
        if self.dtype() != Dtype::Float {
            return Err(Error::WrongDtype { expected: "float" });
        }
        float::run(self, arena, pixels, logits, Some(observer))
    }

    /// Lengths of a run's buffers: `output` values of the `expected_output` the entry point writes
    /// (`output_len()` logits, or `int8_output_len()` int8 values).
    pub(crate) fn check_io(&self, arena_len: usize, input: usize, output: usize, expected_output: usize) -> Result<()> {
        if input != self.input_len() {
            return Err(Error::InputLength { expected: self.input_len(), found: input });
        }
        if output != expected_output {
            return Err(Error::OutputLength { expected: expected_output, found: output });
        }
        if arena_len < self.arena_bytes() {
            return Err(Error::ArenaTooSmall { needed: self.arena_bytes(), found: arena_len });
        }
        Ok(())
    }
}

/// Softmax over a slice, in place (f32, numerically stable: shifted by the maximum).
pub fn softmax_in_place(values: &mut [f32]) {
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in values.iter_mut() {
        *v = libm::expf(*v - max);
        sum += *v;
    }
    for v in values.iter_mut() {
        *v /= sum;
    }
}

/// The arena split around one node's output: its inputs are elsewhere (the
/// planner guarantees it), so they can be borrowed while the output is written.
pub(crate) struct ArenaSplit<'a, T> {
    before: &'a [T],
    after: &'a [T],
    after_start: usize,
}

impl<'a, T> ArenaSplit<'a, T> {
    pub(crate) fn new(arena: &'a mut [T], output: Range<usize>) -> Option<(ArenaSplit<'a, T>, &'a mut [T])> {
        if output.end > arena.len() || output.start > output.end {
            return None;
        }
        let (before, rest) = arena.split_at_mut(output.start);
        let (out, after) = rest.split_at_mut(output.end - output.start);
        Some((ArenaSplit { before, after, after_start: output.end }, out))
    }

    pub(crate) fn get(&self, range: Range<usize>) -> Option<&'a [T]> {
        if range.end <= self.before.len() {
            self.before.get(range)
        } else if range.start >= self.after_start {
            self.after.get(range.start - self.after_start..range.end - self.after_start)
        } else {
            None
        }
    }
}

/// Reported if the plan were ever inconsistent; the loader's planner rules it out.
pub(crate) fn plan_error() -> Error {
    Error::Internal("an activation buffer overlaps the node's output")
}
