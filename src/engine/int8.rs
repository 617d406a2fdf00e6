//! The integer engine: int8 activations (H×W×C) in the arena, int8 kernels,
//! logits dequantised to f32 at the very end.
//!
//! `prepare` resolves every node once into a [`Step`], written into the
//! model's state beside the network's records (packed weights and lookup
//! tables too): the graph's op and the network's parameters are matched here
//! only, never per run. `Engine` runs the steps; it reads the same records
//! whether the state is the caller's buffer ([`crate::ArenaModel`]) or the
//! model's own ([`crate::Model`]).

use super::{plan_error, ArenaSplit, Observer, MAX_INPUTS};
use crate::error::{Error, Result};
use crate::kernels::eltwise::{add_terms, AddInput, ConcatInput};
use crate::kernels::packed::PackedLayer;
use crate::kernels::softmax::{softmax_reference, SoftmaxParams};
use crate::kernels::{conv, dense, eltwise, pool, Int8Layer, KernelSet};
use crate::model::graph::{Dtype, InputKind, Inputs, Op, QuantParams, Unary};
use crate::model::memory::{Memory, Span, State};
use crate::model::params::{ByteRange, ParamRecord, RequantRecord};
use crate::model::{NetworkLayout, NetworkView};
use crate::spec::fixed_point::{dequantize_channels_last, Multiplier, OutputRange};
use crate::spec::{Conv2dGeometry, Shape};
use core::ops::Range;

/// One node as the CPU kernels run it. A window op's geometry is not kept:
/// a run makes it from the node's op and shapes (`NetworkView::geometry`), as
/// a step sized for it would cost the state 40 bytes a node on a 32-bit target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Step {
    /// `packed`: the weights as this kernel set packed them (one `PackedLayer`, or
    /// none: a microcontroller's portable kernels pack nothing). The weights and
    /// requantisation are the node's `ParamRecord`'s, not copied here.
    Conv2d {
        packed: Span<PackedLayer>,
        input_zero_point: i32,
        range: OutputRange,
    },
    Dense {
        packed: Span<PackedLayer>,
        input_zero_point: i32,
        range: OutputRange,
    },
    MaxPool,
    AvgPool {
        input_zero_point: i32,
    },
    GlobalAvgPool {
        channels: usize,
    },
    Add {
        inputs: Span<AddInput>,
        /// Per input, its term of the sum for each of the 256 int8 values
        /// (`eltwise::add_terms`), 256 after 256; empty where the terms are computed
        /// (`eltwise::add_reference`: the reference and portable sets).
        terms: Span<i32>,
        output: Multiplier,
        range: OutputRange,
    },
    Concat {
        inputs: Span<ConcatInput>,
        output_zero_point: i32,
    },
    /// An element-wise unary op: the reference calls `op.int8` per value,
    /// the other sets look `table` (256 entries) up.
    Unary {
        op: Unary,
        input: QuantParams,
        output: QuantParams,
        table: Span<[i8; 256]>,
    },
    /// Flatten and dropout: the bytes pass unchanged.
    Copy,
    /// TFLite's integer softmax over each pixel's `depth` channels: the int8 output.
    Softmax {
        params: SoftmaxParams,
        depth: usize,
    },
    /// A softmax after the logits that is not the int8 output: `predict` applies it in f32.
    Skip,
}

/// A conv or dense layer as a run reads it: the file's weights and the
/// network's requantisation constants (its node's `ParamRecord`), and the
/// weights packed for a microkernel set (its step's). Made per run, not kept:
/// a step that copied the record would cost the state 48 bytes a node on a
/// 32-bit target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Layer {
    weights: ByteRange,
    requant: RequantRecord,
    packed: Span<PackedLayer>,
}

impl Layer {
    fn packed<'s>(&self, state: State<'s>) -> crate::kernels::packed::PackedWeights<'s> {
        state.get(self.packed).first().map(|p| p.view(state)).unwrap_or_default()
    }
}

/// The steps of a prepared int8 network, one per node, in the state.
pub(crate) type Steps = Span<Step>;

/// Prepares every node of the int8 network `layout` (whose records `memory`
/// holds) for `kernels`: its steps, packed weights and tables, into `memory`.
// Never inlined: a caller that loads and then runs (a firmware's main) would
// otherwise keep this frame on the stack through every inference.
#[inline(never)]
pub(crate) fn prepare(file: &[u8], layout: &NetworkLayout, memory: &Memory<'_>, kernels: KernelSet) -> Result<Steps> {
    let network = NetworkView { state: memory.state(), layout };
    let nodes = network.nodes();
    let params = network.params();
    let zero_point = |v: usize| network.quant(v).map_or(0, |q| q.zero_point);
    let quant = |v: usize| network.quant(v).ok_or(Error::Internal("int8 value without quantisation"));
    // The layer's weights packed for `kernels`, if they pack them; conv: the
    // layer's geometry (None: a dense layer).
    let pack = |weights: ByteRange, requant: RequantRecord, conv: Option<&Conv2dGeometry>, input_zero_point: i32| {
        let packed = match kernels {
            KernelSet::Microkernel(kernel) => {
                let weights: &[i8] = bytemuck::cast_slice(file.get(weights.range()).unwrap_or(&[]));
                let channels = requant.view(file, network.state);
                let layer = match conv {
                    Some(geometry) => {
                        PackedLayer::pack_conv(memory, kernel, geometry, weights, &channels, input_zero_point)?
                    }
                    None => PackedLayer::pack(memory, kernel, weights, &channels, 1, input_zero_point)?,
                };
                if layer.is_packed() {
                    memory.persist(&[layer])?
                } else {
                    Span::EMPTY
                }
            }
            _ => Span::EMPTY,
        };
        Ok::<_, Error>(packed)
    };
    let graph = network.graph();
    // The steps go straight into the front, the packed weights and tables they
    // name behind them: no copy of the steps in scratch memory beside the state.
    memory.persistent_with(nodes.len(), Step::Skip, |steps| {
        for (i, (node, step)) in nodes.iter().zip(steps.iter_mut()).enumerate() {
            let input_zero_point = zero_point(node.inputs.first());
            let output_zero_point = zero_point(i + 1);
            *step = match (node.op, params.get(i).copied().unwrap_or(ParamRecord::None)) {
                (Op::Conv2d { relu, .. }, ParamRecord::Int8Conv { weights, requant, .. }) => {
                    let geometry = network.geometry(i).ok_or(Error::Internal("a convolution without geometry"))?;
                    Step::Conv2d {
                        packed: pack(weights, requant, Some(&geometry), input_zero_point)?,
                        input_zero_point,
                        range: OutputRange::new(output_zero_point, relu),
                    }
                }
                (Op::Dense { relu }, ParamRecord::Int8Dense { weights, requant, .. }) => Step::Dense {
                    packed: pack(weights, requant, None, input_zero_point)?,
                    input_zero_point,
                    range: OutputRange::new(output_zero_point, relu),
                },
                (Op::MaxPool2d(_), _) => Step::MaxPool,
                (Op::AvgPool2d(_), _) => Step::AvgPool { input_zero_point },
                (Op::GlobalAvgPool, _) => Step::GlobalAvgPool { channels: network.shape(i + 1).c },
                (Op::Add { relu }, ParamRecord::Int8Add { inputs, output }) => {
                    // 1 KiB per input: for the SIMD sets; the others (a microcontroller's)
                    // compute the terms, as TFLite Micro does.
                    let terms = match kernels {
                        KernelSet::Reference | KernelSet::Portable => Span::EMPTY,
                        KernelSet::Microkernel(_) => {
                            let add_inputs = network.state.get(inputs);
                            memory.persistent_with(256 * add_inputs.len(), 0i32, |terms| {
                                let (tables, _) = terms.as_chunks_mut::<256>();
                                for (table, input) in tables.iter_mut().zip(add_inputs) {
                                    add_terms(input, table);
                                }
                                Ok(())
                            })?
                        }
                    };
                    Step::Add { inputs, terms, output, range: OutputRange::new(output_zero_point, relu) }
                }
                (Op::Concat, ParamRecord::Int8Concat { inputs }) => Step::Concat { inputs, output_zero_point },
                (Op::Unary(op), _) => {
                    let (input, output) = (quant(node.inputs.first())?, quant(i + 1)?);
                    let table = match kernels {
                        KernelSet::Reference => Span::EMPTY,
                        _ => memory.persist(&[op.int8_table(input, output)])?,
                    };
                    Step::Unary { op, input, output, table }
                }
                (Op::Flatten | Op::Dropout, _) => Step::Copy,
                (Op::Softmax { beta }, _) if i + 1 == graph.output => {
                    let input = quant(node.inputs.first())?;
                    Step::Softmax { params: SoftmaxParams::new(input.scale, beta)?, depth: network.shape(i + 1).c }
                }
                (Op::Softmax { .. }, _) => Step::Skip,
                _ => return Err(Error::Internal("int8 node without int8 parameters")),
            };
        }
        Ok(())
    })
}

/// A prepared int8 network: the file, the state holding the network's records
/// and its steps, and the kernels they were prepared for. What both
/// `Model` and `ArenaModel` run through.
#[derive(Clone, Copy)]
pub(crate) struct Engine<'s> {
    pub file: &'s [u8],
    pub network: NetworkView<'s>,
    pub steps: Steps,
    pub kernels: KernelSet,
}

impl<'s> Engine<'s> {
    fn graph(&self) -> &'s crate::model::graph::GraphInfo {
        self.network.graph()
    }

    fn state(&self) -> State<'s> {
        self.network.state
    }

    pub fn input_len(&self) -> usize {
        self.network.shape(0).len()
    }

    pub fn output_len(&self) -> usize {
        self.network.shape(self.graph().logits).len()
    }

    pub fn int8_output_len(&self) -> usize {
        self.network.shape(self.graph().output).len()
    }

    pub fn arena_bytes(&self) -> usize {
        self.network.layout.arena_bytes
    }

    fn buffer(&self, value: usize) -> Result<core::ops::Range<usize>> {
        self.network.buffers().get(value).map(|b| b.range()).ok_or_else(plan_error)
    }

    /// Lengths of a run's buffers: `output` values of the `expected_output` the entry point writes.
    pub fn check_io(&self, arena_len: usize, input: usize, output: usize, expected_output: usize) -> Result<()> {
        if self.graph().dtype != Dtype::Int8 {
            return Err(Error::WrongDtype { expected: "int8" });
        }
        super::check_lengths((self.input_len(), input), (expected_output, output), (self.arena_bytes(), arena_len))
    }

    /// Pixels (C×H×W bytes) in, logits (f32) out.
    pub fn run(
        &self,
        arena: &mut [u8],
        pixels: &[u8],
        logits: &mut [f32],
        observer: Option<Observer<'_, i8>>,
    ) -> Result<()> {
        if self.graph().input.kind != InputKind::Pixels {
            return Err(Error::WrongInput { expected: "int8 values (run_int8)" });
        }
        self.check_io(arena.len(), pixels.len(), logits.len(), self.output_len())?;
        let arena: &mut [i8] = bytemuck::cast_slice_mut(arena);

        // Pixels enter as q = p − 128 (the input's scale and zero point say so), C×H×W → H×W×C.
        let shape = self.network.shape(0);
        let input = arena.get_mut(self.buffer(0)?).ok_or_else(plan_error)?;
        let plane = shape.h * shape.w;
        for c in 0..shape.c {
            for (p, &pixel) in pixels[c * plane..][..plane].iter().enumerate() {
                input[p * shape.c + c] = (pixel ^ 0x80) as i8;
            }
        }
        self.run_steps(arena, observer)?;

        let logits_value = self.graph().logits;
        let shape: Shape = self.network.shape(logits_value);
        let q = self.network.quant(logits_value).ok_or(Error::Internal("logits without quantisation"))?;
        let values = arena.get(self.buffer(logits_value)?).ok_or_else(plan_error)?;
        dequantize_channels_last(values, shape.c, shape, q.scale, q.zero_point, logits);
        Ok(())
    }

    /// Quantised values (H×W×C) in, the int8 output (`GraphInfo::output`, H×W×C) out.
    pub fn run_int8(
        &self,
        arena: &mut [u8],
        input: &[i8],
        output: &mut [i8],
        observer: Option<Observer<'_, i8>>,
    ) -> Result<()> {
        self.check_io(arena.len(), input.len(), output.len(), self.int8_output_len())?;
        self.input_buffer(arena)?.copy_from_slice(input);
        self.run_int8_in_place(arena, output, observer)
    }

    /// The input's buffer in the arena (H×W×C int8 values), whatever the input kind.
    pub fn input_buffer<'a>(&self, arena: &'a mut [u8]) -> Result<&'a mut [i8]> {
        if self.graph().dtype != Dtype::Int8 {
            return Err(Error::WrongDtype { expected: "int8" });
        }
        let found = arena.len();
        if found < self.arena_bytes() {
            return Err(Error::ArenaTooSmall { needed: self.arena_bytes(), found });
        }
        let range = self.buffer(0)?;
        let arena: &mut [i8] = bytemuck::cast_slice_mut(arena);
        arena.get_mut(range).ok_or(Error::ArenaTooSmall { needed: self.arena_bytes(), found })
    }

    /// `run_int8` on the input already in its buffer (`input_buffer`).
    pub fn run_int8_in_place(
        &self,
        arena: &mut [u8],
        output: &mut [i8],
        observer: Option<Observer<'_, i8>>,
    ) -> Result<()> {
        self.check_io(arena.len(), self.input_len(), output.len(), self.int8_output_len())?;
        let arena: &mut [i8] = bytemuck::cast_slice_mut(arena);
        self.run_steps(arena, observer)?;
        let values = arena.get(self.buffer(self.graph().output)?).ok_or_else(plan_error)?;
        output.copy_from_slice(values);
        Ok(())
    }

    /// Every step, the input already in its buffer.
    fn run_steps(&self, arena: &mut [i8], observer: Option<Observer<'_, i8>>) -> Result<()> {
        self.steps_in(arena, observer).ok_or_else(plan_error)
    }

    /// `run_steps`; None if a buffer were outside the arena (the planner rules it out).
    /// No `Error` on the way: on a microcontroller each one is stack.
    fn steps_in(&self, arena: &mut [i8], mut observer: Option<Observer<'_, i8>>) -> Option<()> {
        let buffers = self.network.buffers();
        let buffer = |v: usize| buffers.get(v).map(|b| b.range());
        if let Some(obs) = observer.as_mut() {
            obs(0, arena.get(buffer(0)?)?);
        }
        let state = self.state();
        let reference = self.kernels == KernelSet::Reference;
        let weights =
            |layer: &Layer| -> &[i8] { bytemuck::cast_slice(self.file.get(layer.weights.range()).unwrap_or(&[])) };
        let requant = |layer: &Layer| layer.requant.view(self.file, state);
        let params = self.network.params();
        // Node i's conv or dense layer: its record's weights and requantisation, its step's packing.
        let layer = |i: usize, packed: Span<PackedLayer>| match params.get(i)? {
            ParamRecord::Int8Conv { weights, requant, .. } | ParamRecord::Int8Dense { weights, requant, .. } => {
                Some(Layer { weights: *weights, requant: *requant, packed })
            }
            _ => None,
        };
        let nodes = self.network.nodes();
        // The scratch buffers of convolutions run in place follow the values' (plan_arena).
        let mut scratch_buffers = nodes.len() + 1..buffers.len();
        for (i, (node, step)) in nodes.iter().zip(state.get(self.steps)).enumerate() {
            if *step == Step::Skip {
                continue;
            }
            let output = buffer(i + 1)?;
            if let Step::Add { .. } = step {
                if node.inputs.iter().any(|v| buffer(v) == Some(output.clone())) {
                    // The planner gave this add one of its inputs' bytes (plan::place).
                    let (split, values) = ArenaSplit::new(arena, output.clone())?;
                    self.add_in_place(step, &split, &node.inputs, buffers, output, values)?;
                    if let Some(obs) = observer.as_mut() {
                        obs(i + 1, values);
                    }
                    continue;
                }
            }
            if node.inputs.len() == 1 && buffer(node.inputs.first()) == Some(output.clone()) {
                // The planner gave this node its input's bytes (plan::place).
                let values = match step {
                    Step::Conv2d { packed, input_zero_point, range } => {
                        let (geometry, layer) = (&self.network.geometry(i)?, layer(i, *packed)?);
                        let scratch = buffer(scratch_buffers.next()?)?;
                        let (values, scratch) = disjoint_mut(arena, output, scratch)?;
                        conv_in_place(geometry, values, scratch, |geometry, x, out| {
                            self.conv(geometry, &layer, *input_zero_point, *range, x, out)
                        })?;
                        values
                    }
                    Step::Unary { op, input, output: out, table } => {
                        let values = arena.get_mut(output)?;
                        match state.get(*table).first() {
                            Some(table) if !reference => eltwise::lookup_in_place(values, table),
                            _ => eltwise::map_in_place_reference(values, |q| op.int8(q, *input, *out)),
                        }
                        values
                    }
                    Step::Copy => arena.get_mut(output)?,
                    _ => return None,
                };
                if let Some(obs) = observer.as_mut() {
                    obs(i + 1, values);
                }
                continue;
            }
            let (split, out) = ArenaSplit::new(arena, output)?;
            let inputs = gather(&split, &node.inputs, buffers)?;
            let inputs = &inputs[..node.inputs.len()];
            let x = inputs[0];
            match step {
                Step::Conv2d { packed, input_zero_point, range } => {
                    self.conv(&self.network.geometry(i)?, &layer(i, *packed)?, *input_zero_point, *range, x, out)
                }
                Step::Dense { packed, input_zero_point: zp, range } if reference => {
                    let layer = layer(i, *packed)?;
                    dense::dense_reference(x, *zp, weights(&layer), &requant(&layer), *range, out)
                }
                Step::Dense { packed, input_zero_point, range } => {
                    let layer = layer(i, *packed)?;
                    let packed = layer.packed(state);
                    let view = Int8Layer { weights: weights(&layer), channels: requant(&layer), packed: &packed };
                    dense::dense_layer(x, *input_zero_point, &view, *range, out)
                }
                Step::MaxPool if reference => pool::maxpool2d_reference(&self.network.geometry(i)?, x, out),
                Step::MaxPool => pool::maxpool2d(&self.network.geometry(i)?, x, out),
                Step::AvgPool { input_zero_point } => {
                    pool::avgpool2d_reference(&self.network.geometry(i)?, x, *input_zero_point, out)
                }
                Step::GlobalAvgPool { channels } if reference => pool::global_avgpool_reference(x, *channels, out),
                Step::GlobalAvgPool { channels } => pool::global_avgpool(x, *channels, out),
                Step::Add { .. } => self.add(step, inputs, out),
                Step::Concat { inputs: params, output_zero_point } => {
                    eltwise::concat_reference(inputs, state.get(*params), *output_zero_point, out)
                }
                Step::Unary { op, input, output, table } => match state.get(*table).first() {
                    Some(table) if !reference => eltwise::lookup(x, table, out),
                    _ => eltwise::map_reference(x, |q| op.int8(q, *input, *output), out),
                },
                Step::Copy => out.copy_from_slice(x),
                Step::Softmax { params, depth } => softmax_reference(params, *depth, x, out),
                Step::Skip => {}
            }
            if let Some(obs) = observer.as_mut() {
                obs(i + 1, out);
            }
        }
        Some(())
    }
}

impl Engine<'_> {
    /// One convolution (or a band of its rows) with this engine's kernels.
    // Never inlined: one copy of the kernels' dispatch for both callers (flash).
    #[inline(never)]
    fn conv(
        &self,
        geometry: &Conv2dGeometry,
        layer: &Layer,
        input_zero_point: i32,
        range: OutputRange,
        x: &[i8],
        out: &mut [i8],
    ) {
        let state = self.state();
        let weights: &[i8] = bytemuck::cast_slice(self.file.get(layer.weights.range()).unwrap_or(&[]));
        let channels = layer.requant.view(self.file, state);
        if self.kernels == KernelSet::Reference {
            conv::conv2d_reference(geometry, x, input_zero_point, weights, &channels, range, out)
        } else {
            let packed = layer.packed(state);
            let view = Int8Layer { weights, channels, packed: &packed };
            conv::conv2d_layer(geometry, x, input_zero_point, &view, range, out)
        }
    }

    /// An add step (only ever called with `Step::Add`).
    #[inline(never)]
    fn add(&self, step: &Step, inputs: &[&[i8]], out: &mut [i8]) {
        let state = self.state();
        match step {
            Step::Add { inputs: params, terms, output, range } if terms.is_empty() => {
                eltwise::add_reference(inputs, state.get(*params), *output, *range, out)
            }
            Step::Add { inputs: params, terms, output, range } => {
                let terms = state.get(*terms).as_chunks::<256>().0;
                eltwise::add(inputs, state.get(*params), terms, *output, *range, out)
            }
            _ => {}
        }
    }

    /// An add made in the bytes of its inputs at `output` (`values`), a chunk
    /// at a time: each chunk of those inputs is copied aside before it is
    /// overwritten, the other inputs are read from `split`.
    fn add_in_place(
        &self,
        step: &Step,
        split: &ArenaSplit<'_, i8>,
        inputs: &Inputs,
        buffers: &[crate::model::plan::Buffer],
        output: Range<usize>,
        values: &mut [i8],
    ) -> Option<()> {
        const CHUNK: usize = 64;
        let mut held = [0i8; CHUNK];
        let mut others: [&[i8]; MAX_INPUTS] = [&[]; MAX_INPUTS];
        for (slot, v) in others.iter_mut().zip(inputs.iter()) {
            let range = buffers.get(v)?.range();
            *slot = if range == output { &[] } else { split.get(range)? };
        }
        for start in (0..values.len()).step_by(CHUNK) {
            let end = values.len().min(start + CHUNK);
            let held = &mut held[..end - start];
            held.copy_from_slice(values.get(start..end)?);
            let mut chunk: [&[i8]; MAX_INPUTS] = [&[]; MAX_INPUTS];
            for (slot, (x, v)) in chunk.iter_mut().zip(others.iter().zip(inputs.iter())) {
                *slot = if buffers.get(v)?.range() == output { &*held } else { x.get(start..end)? };
            }
            self.add(step, &chunk[..inputs.len()], values.get_mut(start..end)?);
        }
        Some(())
    }
}

/// A convolution the planner placed over its input (`Conv2dGeometry::in_place_rows`),
/// output row after output row: each from the input rows it reads, held in
/// `scratch`; those shared with the row before stay, the others are copied
/// from `values` before any output row covers them. None if a range were
/// outside its buffer (the planner's check rules it out).
fn conv_in_place(
    geometry: &Conv2dGeometry,
    values: &mut [i8],
    scratch: &mut [i8],
    mut conv: impl FnMut(&Conv2dGeometry, &[i8], &mut [i8]),
) -> Option<()> {
    let (row_in, row_out) = (geometry.input.w * geometry.input.c, geometry.output.w * geometry.output.c);
    let mut held = 0..0;
    for oy in 0..geometry.output.h {
        let rows = geometry.input_rows(oy);
        let copy_from = geometry.first_row_to_copy(oy, &held);
        let kept = rows.start.checked_sub(held.start)? * row_in..copy_from.checked_sub(held.start)? * row_in;
        if !kept.is_empty() {
            scratch.get(kept.clone())?; // `copy_within` would panic out of bounds
            scratch.copy_within(kept.clone(), 0);
        }
        let copied = values.get(copy_from * row_in..rows.end * row_in)?;
        scratch.get_mut(kept.len()..kept.len() + copied.len())?.copy_from_slice(copied);
        let band = scratch.get(..rows.len() * row_in)?;
        conv(&geometry.row_band(oy), band, values.get_mut(oy * row_out..(oy + 1) * row_out)?);
        held = rows;
    }
    Some(())
}

/// Two disjoint ranges of the arena, both writable.
fn disjoint_mut(arena: &mut [i8], a: Range<usize>, b: Range<usize>) -> Option<(&mut [i8], &mut [i8])> {
    if a.end <= b.start {
        let (low, high) = arena.split_at_mut_checked(b.start)?;
        Some((low.get_mut(a)?, high.get_mut(..b.len())?))
    } else if b.end <= a.start {
        let (b, a) = disjoint_mut(arena, b, a)?;
        Some((a, b))
    } else {
        None
    }
}

/// A node's input activations, from the arena around its output.
fn gather<'a>(
    split: &ArenaSplit<'a, i8>,
    inputs: &Inputs,
    buffers: &[crate::model::plan::Buffer],
) -> Option<[&'a [i8]; MAX_INPUTS]> {
    let mut gathered: [&[i8]; MAX_INPUTS] = [&[]; MAX_INPUTS];
    for (slot, v) in gathered.iter_mut().zip(inputs.iter()) {
        *slot = split.get(buffers.get(v)?.range())?;
    }
    Some(gathered)
}
