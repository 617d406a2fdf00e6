//! The integer engine: int8 activations (H×W×C) in the arena, int8 kernels,
//! logits dequantised to f32 at the very end.
//!
//! `prepare` resolves every node once into a [`Step`]: the graph's op and the
//! network's parameters are matched here only, never per run.

use alloc::vec::Vec;
use core::ops::Range;

use super::{plan_error, ArenaSplit, Observer, MAX_INPUTS};
use crate::error::{Error, Result};
use crate::kernels::eltwise::{add_terms, AddInput, ConcatInput};
use crate::kernels::packed::PackedWeights;

use crate::kernels::softmax::{softmax_reference, SoftmaxParams};
use crate::kernels::{conv, dense, eltwise, pool, Int8Layer, KernelSet};
use crate::model::graph::{InputKind, Op, QuantParams, Unary};
use crate::model::{Network, NodeParams};
use crate::spec::fixed_point::{dequantize_channels_last, ChannelRequant, Multiplier, OutputRange};
use crate::spec::Conv2dGeometry;

/// One node as the CPU kernels run it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    Conv2d {
        geometry: Conv2dGeometry,
        layer: Layer,
        input_zero_point: i32,
        range: OutputRange,
    },
    Dense {
        layer: Layer,
        input_zero_point: i32,
        range: OutputRange,
    },
    MaxPool {
        geometry: Conv2dGeometry,
    },
    AvgPool {
        geometry: Conv2dGeometry,
        input_zero_point: i32,
    },
    GlobalAvgPool {
        channels: usize,
    },
    Add {
        inputs: Vec<AddInput>,
        /// Per input, its term of the sum for each of the 256 int8 values
        /// (`eltwise::add_terms`); empty for the reference set, which computes them.
        terms: Vec<[i32; 256]>,
        output: Multiplier,
        range: OutputRange,
    },
    Concat {
        inputs: Vec<ConcatInput>,
        output_zero_point: i32,
    },
    /// An element-wise unary op: the reference calls `op.int8` per value,
    /// the other sets look `table` up.
    Unary {
        op: Unary,
        input: QuantParams,
        output: QuantParams,
        table: [i8; 256],
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

/// A conv or dense layer's parameters: the file's weights (a byte range of
/// the model), the node whose requantisation constants it uses (the network
/// holds them; one copy), and, for a microkernel set, the weights packed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Layer {
    weights: Range<usize>,
    node: usize,
    packed: PackedWeights,
}

impl Layer {
    fn channels<'a, B: AsRef<[u8]>>(&self, network: &'a Network<B>) -> &'a [ChannelRequant] {
        match network.params().get(self.node) {
            Some(NodeParams::Int8Conv { channels, .. } | NodeParams::Int8Dense { channels, .. }) => channels,
            // `prepare` makes a Layer only from these two kinds of parameters.
            _ => &[],
        }
    }

    fn view<'a, B: AsRef<[u8]>>(&'a self, network: &'a Network<B>) -> Int8Layer<'a> {
        Int8Layer {
            weights: network.int8_weights(&self.weights),
            channels: self.channels(network),
            packed: &self.packed,
        }
    }
}

pub(super) fn prepare<B: AsRef<[u8]>>(network: &Network<B>, kernels: KernelSet) -> Result<Vec<Step>> {
    let zero_point = |v: usize| network.quant(v).map_or(0, |q| q.zero_point);
    // rows: kernel rows (a dense layer: 1); None for layers no microkernel runs (grouped, dilated).
    let layer = |node: usize,
                 weights: &Range<usize>,
                 channels: &[ChannelRequant],
                 rows: Option<usize>,
                 input_zero_point: i32| {
        let packed = match (kernels, rows) {
            (KernelSet::Microkernel(kernel), Some(rows)) => {
                PackedWeights::for_kernel(kernel, network.int8_weights(weights), channels, rows, input_zero_point)
            }
            _ => PackedWeights::default(),
        };
        Layer { weights: weights.clone(), node, packed }
    };
    let graph = network.graph();
    let mut steps = Vec::with_capacity(graph.nodes.len());
    for (i, node) in graph.nodes.iter().enumerate() {
        let input_zero_point = zero_point(node.inputs[0]);
        let output_zero_point = zero_point(i + 1);
        let geometry = || network.geometry(i).ok_or(Error::Internal("a window op without geometry"));
        let step = match (node.op, &network.params()[i]) {
            (Op::Conv2d { relu, groups, dilation, .. }, NodeParams::Int8Conv { weights, channels, kernel_h, .. }) => {
                // The microkernels read contiguous windows of all channels: nothing to pack otherwise.
                let rows = (groups == 1 && dilation == 1).then_some(*kernel_h);
                Step::Conv2d {
                    geometry: geometry()?,
                    layer: layer(i, weights, channels, rows, input_zero_point),
                    input_zero_point,
                    range: OutputRange::new(output_zero_point, relu),
                }
            }
            (Op::Dense { relu }, NodeParams::Int8Dense { weights, channels, .. }) => Step::Dense {
                layer: layer(i, weights, channels, Some(1), input_zero_point),
                input_zero_point,
                range: OutputRange::new(output_zero_point, relu),
            },
            (Op::MaxPool2d(_), _) => Step::MaxPool { geometry: geometry()? },
            (Op::AvgPool2d(_), _) => Step::AvgPool { geometry: geometry()?, input_zero_point },
            (Op::GlobalAvgPool, _) => Step::GlobalAvgPool { channels: network.shape(i + 1).c },
            (Op::Add { relu }, NodeParams::Int8Add { inputs, output }) => Step::Add {
                inputs: inputs.clone(),
                terms: match kernels {
                    KernelSet::Reference => Vec::new(),
                    KernelSet::Portable | KernelSet::Microkernel(_) => inputs.iter().map(add_terms).collect(),
                },
                output: *output,
                range: OutputRange::new(output_zero_point, relu),
            },
            (Op::Concat, NodeParams::Int8Concat { inputs }) => {
                Step::Concat { inputs: inputs.clone(), output_zero_point }
            }
            (Op::Unary(op), _) => {
                let quant = |v: usize| network.quant(v).ok_or(Error::Internal("int8 value without quantisation"));
                let (input, output) = (quant(node.inputs[0])?, quant(i + 1)?);
                Step::Unary { op, input, output, table: op.int8_table(input, output) }
            }
            (Op::Flatten | Op::Dropout, _) => Step::Copy,
            (Op::Softmax { beta }, _) if i + 1 == graph.output => {
                let input = network.quant(node.inputs[0]).ok_or(Error::Internal("int8 value without quantisation"))?;
                Step::Softmax { params: SoftmaxParams::new(input.scale, beta)?, depth: network.shape(i + 1).c }
            }
            (Op::Softmax { .. }, _) => Step::Skip,
            _ => return Err(Error::Internal("int8 node without int8 parameters")),
        };
        steps.push(step);
    }
    Ok(steps)
}

/// Pixels (C×H×W bytes) in, logits (f32) out.
pub(super) fn run<B: AsRef<[u8]>>(
    model: &super::Model<B>,
    arena: &mut [u8],
    pixels: &[u8],
    logits: &mut [f32],
    observer: Option<Observer<'_, i8>>,
) -> Result<()> {
    if model.graph().input.kind != InputKind::Pixels {
        return Err(Error::WrongInput { expected: "int8 values (run_int8)" });
    }
    model.check_io(arena.len(), pixels.len(), logits.len(), model.output_len())?;
    let arena: &mut [i8] = bytemuck::cast_slice_mut(arena);
    let buffers = &model.plan().buffers;

    // Pixels enter as q = p − 128 (the input's scale and zero point say so), C×H×W → H×W×C.
    let shape = model.input_shape();
    let input = arena.get_mut(buffers[0].clone()).ok_or_else(plan_error)?;
    for c in 0..shape.c {
        for (p, &pixel) in pixels[c * shape.h * shape.w..][..shape.h * shape.w].iter().enumerate() {
            input[p * shape.c + c] = (pixel ^ 0x80) as i8;
        }
    }
    run_steps(model, arena, observer)?;

    let graph = model.graph();
    let shape = model.shape(graph.logits);
    let q = model.quant(graph.logits).ok_or(Error::Internal("logits without quantisation"))?;
    let values = arena.get(buffers[graph.logits].clone()).ok_or_else(plan_error)?;
    dequantize_channels_last(values, shape.c, shape, q.scale, q.zero_point, logits);
    Ok(())
}

/// Quantised values (H×W×C) in, the int8 output ([`Graph::output`], H×W×C) out.
///
/// [`Graph::output`]: crate::model::graph::Graph::output
pub(super) fn run_int8<B: AsRef<[u8]>>(
    model: &super::Model<B>,
    arena: &mut [u8],
    input: &[i8],
    output: &mut [i8],
    observer: Option<Observer<'_, i8>>,
) -> Result<()> {
    model.check_io(arena.len(), input.len(), output.len(), model.int8_output_len())?;
    input_buffer(model, arena)?.copy_from_slice(input);
    run_int8_in_place(model, arena, output, observer)
}

/// The input's buffer in the arena (H×W×C int8 values), whatever the input kind.
pub(super) fn input_buffer<'a, B: AsRef<[u8]>>(model: &super::Model<B>, arena: &'a mut [u8]) -> Result<&'a mut [i8]> {
    let range = model.plan().buffers.first().cloned().ok_or_else(plan_error)?;
    let found = arena.len();
    let arena: &mut [i8] = bytemuck::cast_slice_mut(arena);
    arena.get_mut(range).ok_or(Error::ArenaTooSmall { needed: model.arena_bytes(), found })
}

/// `run_int8` on the input already in its buffer (`input_buffer`).
pub(super) fn run_int8_in_place<B: AsRef<[u8]>>(
    model: &super::Model<B>,
    arena: &mut [u8],
    output: &mut [i8],
    observer: Option<Observer<'_, i8>>,
) -> Result<()> {
    model.check_io(arena.len(), model.input_len(), output.len(), model.int8_output_len())?;
    let arena: &mut [i8] = bytemuck::cast_slice_mut(arena);
    run_steps(model, arena, observer)?;
    let values = arena.get(model.plan().buffers[model.graph().output].clone()).ok_or_else(plan_error)?;
    output.copy_from_slice(values);
    Ok(())
}

/// Every step, the input already in its buffer.
fn run_steps<B: AsRef<[u8]>>(
    model: &super::Model<B>,
    arena: &mut [i8],
    mut observer: Option<Observer<'_, i8>>,
) -> Result<()> {
    let buffers = &model.plan().buffers;
    if let Some(obs) = observer.as_mut() {
        obs(0, arena.get(buffers[0].clone()).ok_or_else(plan_error)?);
    }
    let graph = model.graph();
    let reference = model.kernels() == KernelSet::Reference;
    for (i, (node, step)) in graph.nodes.iter().zip(&model.steps).enumerate() {
        if *step == Step::Skip {
            continue;
        }
        let (split, out) = ArenaSplit::new(arena, buffers[i + 1].clone()).ok_or_else(plan_error)?;
        let mut inputs: [&[i8]; MAX_INPUTS] = [&[]; MAX_INPUTS];
        for (slot, &v) in inputs.iter_mut().zip(&node.inputs) {
            *slot = split.get(buffers[v].clone()).ok_or_else(plan_error)?;
        }
        let inputs = &inputs[..node.inputs.len()];
        let x = inputs[0];
        match step {
            Step::Conv2d { geometry, layer, input_zero_point: zp, range } if reference => conv::conv2d_reference(
                geometry,
                x,
                *zp,
                model.int8_weights(&layer.weights),
                layer.channels(model),
                *range,
                out,
            ),
            Step::Conv2d { geometry, layer, input_zero_point, range } => {
                conv::conv2d_layer(geometry, x, *input_zero_point, &layer.view(model), *range, out)
            }
            Step::Dense { layer, input_zero_point: zp, range } if reference => {
                dense::dense_reference(x, *zp, model.int8_weights(&layer.weights), layer.channels(model), *range, out)
            }
            Step::Dense { layer, input_zero_point, range } => {
                dense::dense_layer(x, *input_zero_point, &layer.view(model), *range, out)
            }
            Step::MaxPool { geometry } if reference => pool::maxpool2d_reference(geometry, x, out),
            Step::MaxPool { geometry } => pool::maxpool2d(geometry, x, out),
            Step::AvgPool { geometry, input_zero_point } => {
                pool::avgpool2d_reference(geometry, x, *input_zero_point, out)
            }
            Step::GlobalAvgPool { channels } => pool::global_avgpool_reference(x, *channels, out),
            Step::Add { inputs: params, output, range, .. } if reference => {
                eltwise::add_reference(inputs, params, *output, *range, out)
            }
            Step::Add { terms, output, range, .. } => eltwise::add(inputs, terms, *output, *range, out),
            Step::Concat { inputs: params, output_zero_point } => {
                eltwise::concat_reference(inputs, params, *output_zero_point, out)
            }
            Step::Unary { op, input, output, .. } if reference => {
                eltwise::map_reference(x, |q| op.int8(q, *input, *output), out)
            }
            Step::Unary { table, .. } => eltwise::lookup(x, table, out),
            Step::Copy => out.copy_from_slice(x),
            Step::Softmax { params, depth } => softmax_reference(params, *depth, x, out),
            Step::Skip => {}
        }
        if let Some(obs) = observer.as_mut() {
            obs(i + 1, out);
        }
    }

    Ok(())
}
