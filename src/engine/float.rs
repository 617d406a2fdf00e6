//! The f32 engine: C×H×W activations, computed as PyTorch computes them.

use super::{plan_error, ArenaSplit, Observer, MAX_INPUTS};
use crate::engine::Model;
use crate::error::{Error, Result};
use crate::kernels::float as k;
use crate::model::graph::Op;
use crate::model::NodeParams;

/// The f32 view of a byte arena, skipping the few bytes needed for alignment
/// (`arena_bytes()` of a float model includes that slack).
fn f32_arena(arena: &mut [u8]) -> Result<&mut [f32]> {
    let skip = arena.as_ptr().align_offset(core::mem::align_of::<f32>()).min(arena.len());
    let aligned = &mut arena[skip..];
    let len = aligned.len() / 4 * 4;
    bytemuck::try_cast_slice_mut(&mut aligned[..len]).map_err(|_| Error::Internal("f32 arena misaligned"))
}

pub(super) fn run<B: AsRef<[u8]>>(
    model: &Model<B>,
    arena: &mut [u8],
    pixels: &[u8],
    logits: &mut [f32],
    mut observer: Option<Observer<'_, f32>>,
) -> Result<()> {
    model.check_io(arena.len(), pixels.len(), logits.len(), model.output_len())?;
    let arena = f32_arena(arena)?;
    // Byte ranges from the plan → f32 index ranges (offsets are 16-byte aligned).
    let range = |v: usize| {
        let r = &model.plan().buffers[v];
        r.start / 4..r.end / 4
    };

    let spec = &model.graph().input;
    let input = arena.get_mut(range(0)).ok_or_else(plan_error)?;
    for (x, &p) in input.iter_mut().zip(pixels) {
        *x = (f32::from(p) / 255.0 - spec.mean) / spec.std;
    }
    if let Some(obs) = observer.as_mut() {
        obs(0, input);
    }

    let graph = model.graph();
    for (i, node) in graph.nodes.iter().enumerate() {
        if matches!(node.op, Op::Softmax { .. }) {
            continue;
        }
        let (split, out) = ArenaSplit::new(&mut *arena, range(i + 1)).ok_or_else(plan_error)?;
        let mut inputs: [&[f32]; MAX_INPUTS] = [&[]; MAX_INPUTS];
        for (slot, &v) in inputs.iter_mut().zip(&node.inputs) {
            *slot = split.get(range(v)).ok_or_else(plan_error)?;
        }
        let inputs = &inputs[..node.inputs.len()];
        match (node.op, &model.params()[i]) {
            (Op::Conv2d { relu, .. }, NodeParams::FloatConv { weights, bias, .. }) => {
                let geometry = model.geometry(i).ok_or(Error::Internal("conv without geometry"))?;
                k::conv2d(&geometry, inputs[0], weights, bias, relu, out);
            }
            (Op::Dense { relu }, NodeParams::FloatDense { weights, bias, .. }) => {
                k::dense(inputs[0], weights, bias, relu, out);
            }
            (Op::BatchNorm { .. }, NodeParams::FloatBatchNorm { alpha, beta }) => {
                k::batchnorm(inputs[0], alpha, beta, out);
            }
            (Op::MaxPool2d(_), _) => {
                let geometry = model.geometry(i).ok_or(Error::Internal("pool without geometry"))?;
                k::maxpool2d(&geometry, inputs[0], out);
            }
            (Op::AvgPool2d(_), _) => {
                let geometry = model.geometry(i).ok_or(Error::Internal("pool without geometry"))?;
                k::avgpool2d(&geometry, inputs[0], out);
            }
            (Op::GlobalAvgPool, _) => k::global_avgpool(inputs[0], model.shape(i + 1).c, out),
            (Op::Add { relu }, _) => k::add(inputs, relu, out),
            (Op::Concat, _) => k::concat(inputs, out),
            (Op::Unary(u), _) => k::map(inputs[0], |x| u.float(x), out),
            (Op::Flatten | Op::Dropout, _) => out.copy_from_slice(inputs[0]),
            _ => return Err(Error::Internal("float node without float parameters")),
        }
        if let Some(obs) = observer.as_mut() {
            obs(i + 1, out);
        }
    }
    let values = arena.get(range(graph.logits)).ok_or_else(plan_error)?;
    logits.copy_from_slice(values);
    Ok(())
}
