//! The CPU engine: a [`Network`] prepared for this machine's kernels, run over
//! a caller-provided arena without touching the heap.
//!
//! Preparing (once, at load) turns every int8 node into a `int8::Step` that
//! holds what its kernel needs: geometry, zero points, output clamp, the
//! weights packed for the chosen [`KernelSet`], the add tables. Running then
//! only walks the steps. `Model::run` dispatches on the dtype: the integer
//! engine (int8.rs) or the f32 engine (float.rs); both read each node's inputs
//! from, and write its output to, the byte ranges the planner assigned.

#[cfg(feature = "alloc")]
mod float;
mod int8;

use core::mem::MaybeUninit;
use core::ops::Range;

use crate::error::{Error, Result};
pub use crate::kernels::KernelSet;
use crate::model::graph::{Dtype, GraphInfo, InputKind, Op};
use crate::model::memory::{Memory, State};
#[cfg(feature = "alloc")]
use crate::model::{graph::Graph, memory::OwnedState, Network, NodeParams};
use crate::model::{load_in_place, NetworkLayout, NetworkView};
#[cfg(feature = "alloc")]
use alloc::vec::Vec;
#[cfg(feature = "alloc")]
use core::ops::Deref;

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

/// Most inputs an op can have (limits::OP_INPUTS); input slices live in a fixed array.
pub(crate) const MAX_INPUTS: usize = crate::model::limits::OP_INPUTS;

/// Receives every activation as it is computed: value id (0 = input, i + 1 = node i)
/// and its contents (int8: H×W×C; float: C×H×W).
pub type Observer<'o, T> = &'o mut dyn FnMut(usize, &[T]);

/// The int8 entry points, the same on [`Model`] and [`ArenaModel`]: each builds
/// its `int8::Engine` (the file, a state with the network's records and the
/// steps, the kernels) and runs it.
macro_rules! int8_entry_points {
    () => {
        /// Runs an int8 network on quantised input values (H×W×C, the input's scale and
        /// zero point; a TFLite model's NHWC tensor) and writes its int8 output
        /// ([`Graph::output`](crate::Graph::output): TFLite's integer softmax, or the
        /// logits), H×W×C. No heap allocation; `arena` must hold at least `arena_bytes()`.
        pub fn run_int8(&self, arena: &mut [u8], input: &[i8], output: &mut [i8]) -> Result<()> {
            self.engine()?.run_int8(arena, input, output, None)
        }

        /// The arena's input buffer of an int8 model: `input_len()` values, H×W×C, the
        /// input's scale and zero point. Write an input here and call
        /// [`run_int8_in_place`](Self::run_int8_in_place): the arena then holds the
        /// only copy of it (TFLite Micro's `interpreter.input(0)`; on a microcontroller,
        /// an input buffer less). Each run may overwrite it: write it before every run.
        pub fn int8_input_mut<'arena>(&self, arena: &'arena mut [u8]) -> Result<&'arena mut [i8]> {
            self.engine()?.input_buffer(arena)
        }

        /// `run_int8` on the input already written into the arena by [`int8_input_mut`](Self::int8_input_mut).
        pub fn run_int8_in_place(&self, arena: &mut [u8], output: &mut [i8]) -> Result<()> {
            self.engine()?.run_int8_in_place(arena, output, None)
        }

        /// `run` on an int8 model, showing every int8 activation to `observer`.
        pub fn run_int8_observed(
            &self,
            arena: &mut [u8],
            pixels: &[u8],
            logits: &mut [f32],
            observer: Observer<'_, i8>,
        ) -> Result<()> {
            self.engine()?.run(arena, pixels, logits, Some(observer))
        }

        /// `run_int8`, showing every int8 activation to `observer`.
        pub fn run_int8_values_observed(
            &self,
            arena: &mut [u8],
            input: &[i8],
            output: &mut [i8],
            observer: Observer<'_, i8>,
        ) -> Result<()> {
            self.engine()?.run_int8(arena, input, output, Some(observer))
        }

        /// Like `run`, then softmax (with the graph's `beta`): class probabilities.
        pub fn predict(&self, arena: &mut [u8], pixels: &[u8], probabilities: &mut [f32]) -> Result<()> {
            self.run(arena, pixels, probabilities)?;
            apply_softmax(self.softmax_beta(), probabilities);
            Ok(())
        }
    };
}

/// softmax(beta · x) in f32, in place: `predict`'s last step.
fn apply_softmax(beta: Option<f32>, probabilities: &mut [f32]) {
    if let Some(beta) = beta.filter(|&b| b != 1.0) {
        probabilities.iter_mut().for_each(|p| *p *= beta);
    }
    softmax_in_place(probabilities);
}

/// The beta of a graph's softmax, if it has one.
fn softmax_beta(ops: impl Iterator<Item = Op>) -> Option<f32> {
    ops.into_iter().find_map(|op| match op {
        Op::Softmax { beta } => Some(beta),
        _ => None,
    })
}

/// A model ready to run on the CPU: a validated [`Network`] (every accessor of
/// which it offers) and the CPU kernels' preparation of it.
#[cfg(feature = "alloc")]
#[derive(Debug, Clone)]
pub struct Model<B = Vec<u8>> {
    network: Network<B>,
    kernels: KernelSet,
    /// int8 models: the network's records and the steps, in one buffer.
    state: OwnedState,
    steps: int8::Steps,
}

#[cfg(feature = "alloc")]
impl<B> Deref for Model<B> {
    type Target = Network<B>;
    fn deref(&self) -> &Network<B> {
        &self.network
    }
}

#[cfg(feature = "alloc")]
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
        let (state, layout) = network.layout();
        let (steps, state) = match network.dtype() {
            Dtype::Int8 => {
                let file = network.bytes();
                let estimate = 4 * file.len() + 64 * network.graph().nodes.len();
                state.extend(estimate, |memory| int8::prepare(file, layout, memory, options.kernels))?
            }
            Dtype::Float => (int8::Steps::EMPTY, OwnedState::empty()),
        };
        Ok(Model { network, kernels: options.kernels, state, steps })
    }

    /// The validated network (what the GPU engine prepares from).
    pub fn network(&self) -> &Network<B> {
        &self.network
    }

    /// The int8 kernels this model runs.
    pub fn kernels(&self) -> KernelSet {
        self.kernels
    }

    /// Bytes the model's int8 state takes (the network's records and the
    /// prepared steps, packed weights included): what [`ArenaModel`] keeps in
    /// the caller's memory.
    pub fn state_bytes(&self) -> usize {
        self.state.len()
    }

    fn engine(&self) -> Result<int8::Engine<'_>> {
        if self.dtype() != Dtype::Int8 {
            return Err(Error::WrongDtype { expected: "int8" });
        }
        let (_, layout) = self.network.layout();
        Ok(int8::Engine {
            file: self.network.bytes(),
            network: NetworkView { state: self.state.state(), layout },
            steps: self.steps,
            kernels: self.kernels,
        })
    }

    fn softmax_beta(&self) -> Option<f32> {
        softmax_beta(self.graph().nodes.iter().map(|n| n.op))
    }

    /// Runs the network on `pixels` (C×H×W bytes) and writes the logits.
    /// No heap allocation; `arena` must hold at least `arena_bytes()`.
    pub fn run(&self, arena: &mut [u8], pixels: &[u8], logits: &mut [f32]) -> Result<()> {
        match self.dtype() {
            Dtype::Int8 => self.engine()?.run(arena, pixels, logits, None),
            Dtype::Float => float::run(self, arena, pixels, logits, None),
        }
    }

    int8_entry_points!();

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
        check_lengths((self.input_len(), input), (expected_output, output), (self.arena_bytes(), arena_len))
    }
}

/// A run's buffers against what the model takes: (expected, found) input and
/// output lengths, (needed, found) arena bytes.
pub(crate) fn check_lengths(input: (usize, usize), output: (usize, usize), arena: (usize, usize)) -> Result<()> {
    if input.0 != input.1 {
        return Err(Error::InputLength { expected: input.0, found: input.1 });
    }
    if output.0 != output.1 {
        return Err(Error::OutputLength { expected: output.0, found: output.1 });
    }
    if arena.1 < arena.0 {
        return Err(Error::ArenaTooSmall { needed: arena.0, found: arena.1 });
    }
    Ok(())
}

#[cfg(feature = "alloc")]
impl Model<Vec<u8>> {
    /// A float model built in memory (by the quantiser's graph rewrites).
    #[doc(hidden)] // for the engines, quantiser and tests: not API
    pub fn from_float_parts(graph: Graph, params: Vec<NodeParams>) -> Result<Self> {
        Model::prepare(Network::from_float_parts(graph, params)?, LoadOptions::default())
    }
}

/// An int8 model loaded with no heap at all: the file is read in place (a
/// `&'static [u8]` in flash, say) and everything the model keeps, its network
/// records, steps and any packed weights, lies in memory the caller provides,
/// the rest of which becomes the activation arena (TensorFlow Lite Micro's
/// arena). `tinycnn inspect` prints the bytes to reserve.
///
/// ```
/// # fn main() -> Result<(), tinycnn::Error> {
/// use core::mem::MaybeUninit;
/// use tinycnn::{ArenaModel, KernelSet};
///
/// let file = std::fs::read("models/deepconvnet-int8.safetensors").unwrap();
/// // On a microcontroller: a static array of `tinycnn inspect`'s memory_bytes.
/// let mut memory = vec![MaybeUninit::<u8>::uninit(); 64 << 10];
/// // The portable kernels (a microcontroller's) read the weights in place; a
/// // SIMD set keeps a packed copy in the memory too.
/// let (model, arena) = ArenaModel::load(&file, &mut memory, KernelSet::Portable)?;
/// let mut logits = [0f32; 10];
/// model.run(arena, &[0u8; 784], &mut logits)?;
/// # Ok(()) }
/// ```
#[derive(Clone, Copy)]
pub struct ArenaModel<'a> {
    file: &'a [u8],
    state: State<'a>,
    layout: NetworkLayout,
    steps: int8::Steps,
    kernels: KernelSet,
    /// Bytes of the caller's memory the state takes, and the most the load used at once.
    state_bytes: usize,
    load_peak: usize,
}

impl core::fmt::Debug for ArenaModel<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ArenaModel")
            .field("kernels", &self.kernels.name())
            .field("state_bytes", &self.state_bytes)
            .field("arena_bytes", &self.layout.arena_bytes)
            .finish()
    }
}

impl<'a> ArenaModel<'a> {
    /// Validates the int8 model `file` and prepares it for `kernels`, all of it in
    /// `memory`: returns the model and the rest of `memory`, zeroed, which is the
    /// arena to run it with (at least [`arena_bytes`](Self::arena_bytes) long, else
    /// [`Error::MemoryTooSmall`]). The same checks and errors as [`Model::load`].
    // Never inlined, as `int8::prepare`: the load's frame is not the inferences'.
    #[inline(never)]
    pub fn load(
        file: &'a [u8],
        memory: &'a mut [MaybeUninit<u8>],
        kernels: KernelSet,
    ) -> Result<(ArenaModel<'a>, &'a mut [u8])> {
        let found = memory.len();
        let memory = Memory::new(memory);
        // A microcontroller's sets run convolutions and adds in place where they
        // can: memory is what counts there. The SIMD sets keep whole-layer calls
        // (Winograd's 2×2 tiles, packed blocks of rows, 16-lane adds).
        let in_place = matches!(kernels, KernelSet::Reference | KernelSet::Portable);
        let layout = load_in_place(file, &memory, in_place)?;
        if layout.graph.dtype != Dtype::Int8 {
            return Err(Error::WrongDtype { expected: "int8" });
        }
        let steps = int8::prepare(file, &layout, &memory, kernels)?;
        let (state_bytes, load_peak) = (memory.persistent_bytes(), memory.peak_bytes());
        let (state, arena) = memory.finish();
        if arena.len() < layout.arena_bytes {
            let needed = (found - arena.len()) + layout.arena_bytes;
            return Err(Error::MemoryTooSmall { needed: needed.max(load_peak), found });
        }
        let model = ArenaModel { file, state, layout, steps, kernels, state_bytes, load_peak };
        Ok((model, arena))
    }

    fn engine(&self) -> Result<int8::Engine<'_>> {
        Ok(int8::Engine {
            file: self.file,
            network: NetworkView { state: self.state, layout: &self.layout },
            steps: self.steps,
            kernels: self.kernels,
        })
    }

    fn softmax_beta(&self) -> Option<f32> {
        softmax_beta(NetworkView { state: self.state, layout: &self.layout }.nodes().iter().map(|n| n.op))
    }

    fn graph(&self) -> &GraphInfo {
        &self.layout.graph
    }

    /// Runs the network on `pixels` (C×H×W bytes) and writes the logits.
    /// No heap allocation; `arena` must hold at least `arena_bytes()`.
    pub fn run(&self, arena: &mut [u8], pixels: &[u8], logits: &mut [f32]) -> Result<()> {
        self.engine()?.run(arena, pixels, logits, None)
    }

    int8_entry_points!();

    /// What the network takes: pixel bytes or int8 values.
    pub fn input_kind(&self) -> InputKind {
        self.graph().input.kind
    }

    /// Values `run` (pixels) or `run_int8` (int8 values) takes.
    pub fn input_len(&self) -> usize {
        self.engine().map_or(0, |e| e.input_len())
    }

    /// Logits `run` writes.
    pub fn output_len(&self) -> usize {
        self.engine().map_or(0, |e| e.output_len())
    }

    /// int8 values `run_int8` writes.
    pub fn int8_output_len(&self) -> usize {
        self.engine().map_or(0, |e| e.int8_output_len())
    }

    /// Bytes of the arena `run` needs.
    pub fn arena_bytes(&self) -> usize {
        self.layout.arena_bytes
    }

    /// Bytes of the caller's memory the model itself keeps (in front of the arena).
    pub fn state_bytes(&self) -> usize {
        self.state_bytes
    }

    /// Most bytes of the memory the load used at once (its temporaries included).
    pub fn load_peak_bytes(&self) -> usize {
        self.load_peak
    }

    /// The memory a load of this model needs: its state and arena, or more if
    /// the load's temporaries took more at their peak.
    pub fn memory_bytes(&self) -> usize {
        (self.state_bytes.div_ceil(16) * 16 + self.layout.arena_bytes).max(self.load_peak)
    }

    /// The int8 kernels this model runs.
    pub fn kernels(&self) -> KernelSet {
        self.kernels
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
