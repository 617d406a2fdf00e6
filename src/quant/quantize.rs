//! Post-training static quantisation (TFLite int8 spec): float model +
//! calibration images → a self-describing int8 model file.
//!
//! 1. `simplify`: fold batchnorm into the conv/dense before it, fuse ReLU into
//!    its producer, drop dropout — the graph the integer engine will run.
//! 2. Calibrate the simplified float graph: min/max of every activation.
//! 3. Per-channel symmetric weights, asymmetric per-tensor activations, int32
//!    biases; weights written in the layout the kernels read (OHWI, dense
//!    columns in H-W-C order after a flatten).

use alloc::format;
use alloc::string::ToString;
use alloc::vec::Vec;

use super::calibrate::{calibrate, Ranges};
use crate::engine::Model;
use crate::error::{Error, Result};
use crate::kernels::Shape;
use crate::model::graph::{pixel_quantization, Dtype, Graph, Node, Op, QuantParams, Unary};
use crate::model::limits;
use crate::model::writer::{store_requant_multipliers, write_model, TensorData};
use crate::model::NodeParams;

/// Folds batchnorm, fuses ReLU and removes dropout, keeping the float semantics.
pub fn simplify<B: AsRef<[u8]>>(model: &Model<B>) -> Result<Model> {
    if model.dtype() != Dtype::Float {
        return Err(Error::WrongDtype { expected: "float" });
    }
    let graph = model.graph();
    let old_values = graph.nodes.len() + 1;
    // Readers of each old value; the graph output counts as one.
    let mut readers = alloc::vec![0usize; old_values];
    for node in &graph.nodes {
        for &v in &node.inputs {
            readers[v] += 1;
        }
    }
    readers[graph.logits] += 1;

    let mut nodes: Vec<Node> = Vec::new();
    let mut params: Vec<NodeParams> = Vec::new();
    // Old value → new value, and new value → the old value it currently stands for.
    let mut alias: Vec<usize> = alloc::vec![0; old_values];
    let mut stands_for: Vec<usize> = alloc::vec![0];

    for (i, node) in graph.nodes.iter().enumerate() {
        let old = i + 1;
        let src = alias[node.inputs[0]];
        // A producer can absorb this node if it is a node and nobody else reads it.
        let absorbable = src > 0 && readers[stands_for[src]] == 1;
        match node.op {
            Op::Dropout => {
                alias[old] = src;
                continue;
            }
            Op::BatchNorm { .. } => {
                let NodeParams::FloatBatchNorm { alpha, beta } = &model.params()[i] else {
                    return Err(Error::Internal("batchnorm without parameters"));
                };
                let producer = src.checked_sub(1).map(|p| (&nodes[p].op, p));
                let foldable =
                    matches!(producer, Some((Op::Conv2d { relu: false, .. } | Op::Dense { relu: false }, _)));
                if !(absorbable && foldable) {
                    return Err(Error::Unquantizable {
                        node: node.name.clone(),
                        reason:
                            "batchnorm must directly follow a conv2d or dense (without ReLU) that nothing else reads"
                                .into(),
                    });
                }
                fold_batchnorm(&mut params[src - 1], alpha, beta)?;
                alias[old] = src;
                stands_for[src] = old;
                continue;
            }
            Op::Unary(Unary::Relu) if absorbable => {
                let fused = match &mut nodes[src - 1].op {
                    Op::Conv2d { relu, .. } | Op::Dense { relu } | Op::Add { relu } if !*relu => {
                        *relu = true;
                        true
                    }
                    _ => false,
                };
                if fused {
                    alias[old] = src;
                    stands_for[src] = old;
                    continue;
                }
            }
            _ => {}
        }
        let inputs = node.inputs.iter().map(|&v| alias[v]).collect();
        nodes.push(Node { name: node.name.clone(), op: node.op, inputs, quant: None });
        params.push(model.params()[i].clone());
        alias[old] = nodes.len();
        stands_for.push(old);
    }
    let simplified = Graph {
        dtype: Dtype::Float,
        input: graph.input,
        logits: alias[graph.logits],
        softmax_output: graph.softmax_output,
        output: alias[graph.logits],
        nodes,
    };
    Model::from_float_parts(simplified, params)
}

fn fold_batchnorm(producer: &mut NodeParams, alpha: &[f32], beta: &[f32]) -> Result<()> {
    let (weights, bias) = match producer {
        NodeParams::FloatConv { weights, bias, has_bias, .. }
        | NodeParams::FloatDense { weights, bias, has_bias, .. } => {
            *has_bias = true;
            (weights, bias)
        }
        _ => return Err(Error::Internal("batchnorm folded into a node without weights")),
    };
    let per_channel = weights.len() / alpha.len().max(1);
    for (o, (&a, &b)) in alpha.iter().zip(beta).enumerate() {
        for w in &mut weights[o * per_channel..][..per_channel] {
            *w *= a;
        }
        bias[o] = bias[o] * a + b;
    }
    Ok(())
}

/// Asymmetric int8 parameters covering [min, max] (widened to contain 0, so
/// that real zero — padding, ReLU — is exact).
pub fn activation_quantization(min: f32, max: f32) -> QuantParams {
    let (min, max) = (min.min(0.0), max.max(0.0));
    let range = if (max - min).is_finite() && max - min > 1e-8 { max - min } else { 1.0 };
    let scale = range / 255.0;
    let zero_point = libm::roundf(-128.0 - min / scale) as i32;
    QuantParams { scale, zero_point: zero_point.clamp(-128, 127) }
}

/// Per-output-channel symmetric quantisation of `weights` ([O, …] rows):
/// scales max|w|/127 and int8 values in [−127, 127].
pub fn quantize_weights(weights: &[f32], out_channels: usize) -> (Vec<f32>, Vec<i8>) {
    let row = weights.len() / out_channels.max(1);
    let mut scales = Vec::with_capacity(out_channels);
    let mut q = Vec::with_capacity(weights.len());
    for o in 0..out_channels {
        let w = &weights[o * row..][..row];
        let max = w.iter().fold(0f32, |m, x| m.max(x.abs()));
        // max/127 underflows to 0 for subnormal weights (found by fuzzing: a zero
        // scale made the quantised file unloadable); such weights are 0 at any scale.
        let scale = if max / 127.0 > 0.0 { max / 127.0 } else { 1.0 };
        scales.push(scale);
        q.extend(w.iter().map(|&x| libm::roundf(x / scale).clamp(-127.0, 127.0) as i8));
    }
    (scales, q)
}

/// Quantises `model` (float) with activation ranges measured on `calibration` images.
/// Returns the bytes of the int8 model file.
pub fn quantize<'a, B: AsRef<[u8]>>(
    model: &Model<B>,
    calibration: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<u8>> {
    let simplified = simplify(model)?;
    let ranges = calibrate(&simplified, calibration)?;
    quantize_with_ranges(&simplified, &ranges)
}

/// The second half of `quantize`, for a simplified model and its measured ranges.
pub fn quantize_with_ranges(model: &Model, ranges: &Ranges) -> Result<Vec<u8>> {
    let graph = model.graph();
    let (in_scale, in_zp) = pixel_quantization(graph.input.mean, graph.input.std);
    let mut quant: Vec<QuantParams> = Vec::with_capacity(graph.nodes.len() + 1);
    quant.push(QuantParams { scale: in_scale, zero_point: in_zp });
    for (i, node) in graph.nodes.iter().enumerate() {
        let q = if node.op.keeps_quantization() || matches!(node.op, Op::Softmax { .. }) {
            quant[node.inputs[0]]
        } else {
            activation_quantization(ranges.min[i + 1], ranges.max[i + 1])
        };
        quant.push(q);
    }

    let mut int8 = graph.clone();
    int8.dtype = Dtype::Int8;
    int8.input.quant = Some(quant[0]);
    for (i, node) in int8.nodes.iter_mut().enumerate() {
        node.quant = Some(quant[i + 1]);
    }

    let mut tensors = Vec::new();
    for (i, node) in graph.nodes.iter().enumerate() {
        let name = |param: &str| format!("{}.{param}", node.name);
        let in_scale = quant[node.inputs[0]].scale;
        let (out_channels, weights, bias, layout_shape) = match &model.params()[i] {
            NodeParams::FloatConv { kernel_h, kernel_w, out_channels, weights, bias, .. } => {
                let groups = match node.op {
                    Op::Conv2d { groups, .. } => groups.max(1) as usize,
                    _ => 1,
                };
                let in_c = model.shape(node.inputs[0]).c / groups; // per group
                let ohwi = oihw_to_ohwi(weights, *out_channels, in_c, *kernel_h, *kernel_w);
                (*out_channels, ohwi, bias, alloc::vec![*out_channels, *kernel_h, *kernel_w, in_c])
            }
            NodeParams::FloatDense { out_features, weights, bias, .. } => {
                let in_features = model.shape(node.inputs[0]).c;
                let columns = match flattened_from(model, node.inputs[0]) {
                    Some(source) if source.h * source.w > 1 => chw_columns_to_hwc(weights, *out_features, source),
                    _ => weights.clone(),
                };
                (*out_features, columns, bias, alloc::vec![*out_features, in_features])
            }
            _ => continue,
        };
        let (scales, q) = quantize_weights(&weights, out_channels);
        let bias_q: Vec<i32> = bias
            .iter()
            .zip(&scales)
            .map(|(&b, &s)| {
                let limit = limits::BIAS_MAGNITUDE as f64;
                libm::round(f64::from(b) / (f64::from(in_scale) * f64::from(s))).clamp(-limit, limit) as i32
            })
            .collect();
        tensors.push(TensorData::i8(name("weight"), layout_shape, &q));
        tensors.push(TensorData::f32(name("weight_scale"), alloc::vec![out_channels], &scales));
        tensors.push(TensorData::i32(name("bias"), alloc::vec![out_channels], &bias_q));
    }
    // The file must load as written; anything else is a quantiser bug, not a user error.
    let bug = |e: Error| Error::Unquantizable { node: "(whole model)".into(), reason: e.to_string() };
    let bytes = store_requant_multipliers(&write_model(&int8.to_raw().to_json(), &tensors)?).map_err(bug)?;
    Model::load(&bytes[..]).map_err(bug)?;
    Ok(bytes)
}

/// If `value` is (through element-wise unary ops) a flatten, the C×H×W shape it flattened.
fn flattened_from(model: &Model, mut value: usize) -> Option<Shape> {
    while value > 0 {
        let node = &model.graph().nodes[value - 1];
        match node.op {
            Op::Unary(_) => value = node.inputs[0],
            Op::Flatten => return Some(model.shape(node.inputs[0])),
            _ => return None,
        }
    }
    None
}

fn oihw_to_ohwi(w: &[f32], o: usize, i: usize, kh: usize, kw: usize) -> Vec<f32> {
    let mut out = alloc::vec![0.0; w.len()];
    for oc in 0..o {
        for ic in 0..i {
            for y in 0..kh {
                for x in 0..kw {
                    out[((oc * kh + y) * kw + x) * i + ic] = w[((oc * i + ic) * kh + y) * kw + x];
                }
            }
        }
    }
    out
}

/// Dense columns in PyTorch's C-H-W flatten order → the H-W-C order of int8 activations.
fn chw_columns_to_hwc(w: &[f32], rows: usize, source: Shape) -> Vec<f32> {
    let cols = source.len();
    let mut out = alloc::vec![0.0; w.len()];
    for r in 0..rows {
        for c in 0..source.c {
            for p in 0..source.h * source.w {
                out[r * cols + p * source.c + c] = w[r * cols + c * source.h * source.w + p];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_range_contains_zero_exactly() {
        let q = activation_quantization(0.0, 6.0);
        assert_eq!(q.zero_point, -128);
        let q = activation_quantization(-1.0, 1.0);
        assert!((q.scale - 2.0 / 255.0).abs() < 1e-9);
        // Real zero maps to an integer: (zp − zp)·scale = 0.
        assert!((-128..=127).contains(&q.zero_point));
        let q = activation_quantization(0.0, 0.0);
        assert!(q.scale > 0.0);
    }

    #[test]
    fn weights_are_symmetric_per_channel() {
        let (scales, q) = quantize_weights(&[1.0, -0.5, 0.25, 0.0, 0.0, 0.0], 2);
        assert_eq!(scales[0], 1.0 / 127.0);
        assert_eq!(&q[..3], &[127, -64, 32]);
        assert_eq!(&q[3..], &[0, 0, 0]);
        assert_eq!(scales[1], 1.0);
    }

    #[test]
    fn subnormal_weights_get_a_positive_scale() {
        let (scales, q) = quantize_weights(&[-8.8e-44, 0.0, -1.07e8, 1.0], 2);
        assert!(scales.iter().all(|s| s.is_finite() && *s > 0.0), "{scales:?}");
        assert_eq!(&q[..2], &[0, 0]);
    }

    #[test]
    fn flatten_permutation() {
        // 2 channels of 1×2: CHW columns [c0p0, c0p1, c1p0, c1p1] → HWC [c0p0, c1p0, c0p1, c1p1].
        let w = [0.0, 1.0, 2.0, 3.0];
        assert_eq!(chw_columns_to_hwc(&w, 1, Shape::new(2, 1, 2)), [0.0, 2.0, 1.0, 3.0]);
    }
}
