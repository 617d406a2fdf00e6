//! The integer engine: int8 activations (H×W×C) in the arena, int8 kernels,
//! logits dequantised to f32 at the very end.

use super::{plan_error, ArenaSplit, Observer, MAX_INPUTS};
use crate::error::{Error, Result};
use crate::kernels::{conv, dense, eltwise, pool, Int8Layer};
use crate::model::graph::Op;
use crate::model::{Model, NodeParams};
use crate::quant::fixed_point::OutputRange;

pub(super) fn run<B: AsRef<[u8]>>(
    model: &Model<B>,
    arena: &mut [u8],
    pixels: &[u8],
    logits: &mut [f32],
    mut observer: Option<Observer<'_, i8>>,
) -> Result<()> {
    model.check_io(arena.len(), pixels.len(), logits.len())?;
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
    if let Some(obs) = observer.as_mut() {
        obs(0, input);
    }

    let graph = model.graph();
    for (i, node) in graph.nodes.iter().enumerate() {
        if node.op == Op::Softmax {
            continue;
        }
        let (split, out) = ArenaSplit::new(arena, buffers[i + 1].clone()).ok_or_else(plan_error)?;
        let mut inputs: [&[i8]; MAX_INPUTS] = [&[]; MAX_INPUTS];
        for (slot, &v) in inputs.iter_mut().zip(&node.inputs) {
            *slot = split.get(buffers[v].clone()).ok_or_else(plan_error)?;
        }
        let inputs = &inputs[..node.inputs.len()];
        let zero_point = |v: usize| model.quant(v).map_or(0, |q| q.zero_point);
        let in_zp = zero_point(node.inputs[0]);
        let out_zp = zero_point(i + 1);
        match (node.op, &model.params()[i]) {
            (Op::Conv2d { relu, .. }, NodeParams::Int8Conv { weights, channels, packed, .. }) => {
                let geometry = model.geometry(i).ok_or(Error::Internal("conv without geometry"))?;
                let layer = Int8Layer { weights: model.int8_weights(weights), channels, packed };
                conv::conv2d_layer(&geometry, inputs[0], in_zp, &layer, OutputRange::new(out_zp, relu), out);
            }
            (Op::Dense { relu }, NodeParams::Int8Dense { weights, channels, packed, .. }) => {
                let layer = Int8Layer { weights: model.int8_weights(weights), channels, packed };
                dense::dense_layer(inputs[0], in_zp, &layer, OutputRange::new(out_zp, relu), out);
            }
            (Op::MaxPool2d(_), _) => {
                let geometry = model.geometry(i).ok_or(Error::Internal("pool without geometry"))?;
                pool::maxpool2d(&geometry, inputs[0], out);
            }
            (Op::AvgPool2d(_), _) => {
                let geometry = model.geometry(i).ok_or(Error::Internal("pool without geometry"))?;
                pool::avgpool2d_reference(&geometry, inputs[0], in_zp, out);
            }
            (Op::GlobalAvgPool, _) => {
                pool::global_avgpool_reference(inputs[0], model.shape(i + 1).c, in_zp, out);
            }
            (Op::Add { relu }, NodeParams::Int8Add { output, terms, .. }) => {
                eltwise::add(inputs, terms, *output, OutputRange::new(out_zp, relu), out);
            }
            (Op::Concat, NodeParams::Int8Concat { inputs: params }) => {
                eltwise::concat_reference(inputs, params, out_zp, out);
            }
            (Op::Relu, _) => eltwise::relu_reference(inputs[0], in_zp, out),
            (Op::Flatten | Op::Dropout, _) => out.copy_from_slice(inputs[0]),
            _ => return Err(Error::Internal("int8 node without int8 parameters")),
        }
        if let Some(obs) = observer.as_mut() {
            obs(i + 1, out);
        }
    }

    // Dequantise the logits, H×W×C → C×H×W.
    let shape = model.shape(graph.logits);
    let q = model.quant(graph.logits).ok_or(Error::Internal("logits without quantisation"))?;
    let values = arena.get(buffers[graph.logits].clone()).ok_or_else(plan_error)?;
    for (p, pixel) in values.chunks_exact(shape.c).enumerate() {
        for (c, &v) in pixel.iter().enumerate() {
            logits[c * shape.h * shape.w + p] = (i32::from(v) - q.zero_point) as f32 * q.scale;
        }
    }
    Ok(())
}
