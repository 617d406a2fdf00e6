//! Per-node parameters: read from the file, checked against the graph, and
//! (for int8) turned into the fixed-point constants the kernels use.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::ops::Range;

use super::file::TensorFile;
use super::graph::{Dtype, Node, Op, QuantParams};
use super::limits;
use crate::error::{Error, Result};
use crate::kernels::eltwise::{AddInput, ConcatInput, ADD_LEFT_SHIFT};
use crate::spec::fixed_point::{ChannelRequant, Multiplier};
use crate::spec::Shape;

/// What a node needs besides its inputs.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeParams {
    None,
    /// `bias` is zeros when the file has none (`has_bias` false: not a parameter).
    FloatConv {
        kernel_h: usize,
        kernel_w: usize,
        out_channels: usize,
        weights: Vec<f32>,
        bias: Vec<f32>,
        has_bias: bool,
    },
    FloatDense {
        out_features: usize,
        weights: Vec<f32>,
        bias: Vec<f32>,
        has_bias: bool,
    },
    /// y = x·alpha + beta per channel.
    FloatBatchNorm {
        alpha: Vec<f32>,
        beta: Vec<f32>,
    },
    /// `weights` is the byte range of the OHWI I8 tensor in the model bytes (zero copy).
    Int8Conv {
        kernel_h: usize,
        kernel_w: usize,
        out_channels: usize,
        weights: Range<usize>,
        channels: Vec<ChannelRequant>,
    },
    Int8Dense {
        out_features: usize,
        weights: Range<usize>,
        channels: Vec<ChannelRequant>,
    },
    Int8Add {
        inputs: Vec<AddInput>,
        output: Multiplier,
    },
    Int8Concat {
        inputs: Vec<ConcatInput>,
    },
}

impl NodeParams {
    /// Trainable parameter count, as PyTorch's `sum(p.numel() for p in parameters())`.
    pub fn parameter_count(&self) -> usize {
        match self {
            NodeParams::FloatConv { weights, bias, has_bias, .. }
            | NodeParams::FloatDense { weights, bias, has_bias, .. } => {
                weights.len() + if *has_bias { bias.len() } else { 0 }
            }
            NodeParams::FloatBatchNorm { alpha, beta } => alpha.len() + beta.len(),
            NodeParams::Int8Conv { weights, channels, .. } | NodeParams::Int8Dense { weights, channels, .. } => {
                weights.len() + channels.len()
            }
            _ => 0,
        }
    }
}

/// Tracks which tensors the graph used, to report the ones it did not.
pub struct TensorSource<'f, 'a> {
    pub file: &'f TensorFile<'a>,
    pub used: Vec<String>,
}

impl<'f> TensorSource<'f, '_> {
    fn tensor_name(node: &Node, param: &str) -> String {
        format!("{}.{param}", node.name)
    }

    fn required(&mut self, node: &Node, param: &str) -> Result<super::file::TensorRef<'f>> {
        let file: &'f TensorFile<'_> = self.file;
        let name = Self::tensor_name(node, param);
        let t = file.get(&name).ok_or_else(|| Error::MissingTensor(name.clone()))?;
        self.used.push(name);
        Ok(t)
    }

    fn optional(&mut self, node: &Node, param: &str) -> Option<super::file::TensorRef<'f>> {
        let file: &'f TensorFile<'_> = self.file;
        let name = Self::tensor_name(node, param);
        let t = file.get(&name)?;
        self.used.push(name);
        Some(t)
    }
}

fn limit(what: &'static str, value: usize, max: usize) -> Result<()> {
    if value > max {
        return Err(Error::LimitExceeded { what, value: value as u64, limit: max as u64 });
    }
    Ok(())
}

/// Reads a weight tensor's dimensions before trusting any of them.
fn weight_dims(tensors: &mut TensorSource<'_, '_>, node: &Node, rank: usize) -> Result<Vec<usize>> {
    let t = tensors.required(node, "weight")?;
    if t.shape.len() != rank || t.shape.contains(&0) {
        return Err(Error::TensorShape {
            tensor: t.name.to_string(),
            expected: alloc::vec![1; rank],
            found: t.shape.clone(),
        });
    }
    let elements = t.shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).unwrap_or(usize::MAX);
    limit("tensor elements", elements, limits::ELEMENTS)?;
    Ok(t.shape.clone())
}

/// A conv's weight has `o` output and `i` input channels per group: the input
/// must have `groups · i` channels and `o` must split into the groups.
fn check_groups(node: &Node, groups: usize, o: usize, i: usize, input: Shape) -> Result<()> {
    let mismatch = |reason: String| Error::ShapeMismatch { node: node.name.clone(), reason };
    if i.checked_mul(groups) != Some(input.c) {
        return Err(mismatch(if groups == 1 {
            format!("weight expects {i} input channels, the input has {}", input.c)
        } else {
            format!("weight expects {i} input channels per group × {groups} groups, the input has {}", input.c)
        }));
    }
    if !o.is_multiple_of(groups) {
        return Err(mismatch(format!("{o} output channels do not split into {groups} groups")));
    }
    Ok(())
}

fn quant_of(node: &Node) -> Result<QuantParams> {
    node.quant.ok_or_else(|| Error::BadQuantization { what: format!("node '{}'", node.name), reason: "missing".into() })
}

/// Loads and checks the parameters of `node`, whose inputs have `in_shapes`
/// and quantisation `in_quant` (int8 files).
pub fn load_node_params(
    tensors: &mut TensorSource<'_, '_>,
    dtype: Dtype,
    node: &Node,
    in_shapes: &[Shape],
    in_quant: &[Option<QuantParams>],
) -> Result<NodeParams> {
    let input = in_shapes[0];
    match (node.op, dtype) {
        (Op::Conv2d { groups, .. }, Dtype::Float) => {
            let dims = weight_dims(tensors, node, 4)?;
            let (o, i, kh, kw) = (dims[0], dims[1], dims[2], dims[3]);
            check_groups(node, groups, o, i, input)?;
            check_conv_dims(node, kh, kw, i)?;
            let weights = tensors.required(node, "weight")?.to_f32(&dims)?;
            let (bias, has_bias) = float_bias(tensors, node, o)?;
            Ok(NodeParams::FloatConv { kernel_h: kh, kernel_w: kw, out_channels: o, weights, bias, has_bias })
        }
        (Op::Dense { .. }, Dtype::Float) => {
            let dims = weight_dims(tensors, node, 2)?;
            let (o, i) = (dims[0], dims[1]);
            check_dense_input(node, input, i)?;
            let weights = tensors.required(node, "weight")?.to_f32(&dims)?;
            let (bias, has_bias) = float_bias(tensors, node, o)?;
            Ok(NodeParams::FloatDense { out_features: o, weights, bias, has_bias })
        }
        (Op::BatchNorm { eps }, Dtype::Float) => {
            let c = input.c;
            let gamma = tensors.required(node, "weight")?.to_f32(&[c])?;
            let beta = tensors.required(node, "bias")?.to_f32(&[c])?;
            let mean = tensors.required(node, "running_mean")?.to_f32(&[c])?;
            let var = tensors.required(node, "running_var")?.to_f32(&[c])?;
            if let Some(i) = var.iter().position(|&v| v < 0.0) {
                return Err(Error::TensorValue {
                    tensor: format!("{}.running_var", node.name),
                    reason: format!("element {i} is negative"),
                });
            }
            // Bookkeeping of PyTorch's training loop; meaningless at inference.
            let _ = tensors.optional(node, "num_batches_tracked");
            let alpha: Vec<f32> = gamma.iter().zip(&var).map(|(g, v)| g * (1.0 / libm::sqrtf(v + eps))).collect();
            let beta = beta.iter().zip(&mean).zip(&alpha).map(|((b, m), a)| b - m * a).collect();
            Ok(NodeParams::FloatBatchNorm { alpha, beta })
        }
        (Op::BatchNorm { .. }, Dtype::Int8) => Err(Error::ShapeMismatch {
            node: node.name.clone(),
            reason: "batchnorm cannot appear in an int8 model (the quantiser folds it)".into(),
        }),
        (Op::Conv2d { groups, .. }, Dtype::Int8) => {
            let dims = weight_dims(tensors, node, 4)?;
            let (o, kh, kw, i) = (dims[0], dims[1], dims[2], dims[3]);
            check_groups(node, groups, o, i, input)?;
            check_conv_dims(node, kh, kw, i)?;
            let weights = tensors.required(node, "weight")?.i8_range(&dims)?;
            let channels = int8_channels(tensors, node, o, kh * kw * i, in_quant[0])?;
            Ok(NodeParams::Int8Conv { kernel_h: kh, kernel_w: kw, out_channels: o, weights, channels })
        }
        (Op::Dense { .. }, Dtype::Int8) => {
            let dims = weight_dims(tensors, node, 2)?;
            let (o, i) = (dims[0], dims[1]);
            check_dense_input(node, input, i)?;
            let weights = tensors.required(node, "weight")?.i8_range(&dims)?;
            let channels = int8_channels(tensors, node, o, i, in_quant[0])?;
            Ok(NodeParams::Int8Dense { out_features: o, weights, channels })
        }
        (Op::Add { .. }, Dtype::Int8) => {
            let out = quant_of(node)?;
            let scales: Vec<QuantParams> = in_quant.iter().map(|q| q.unwrap_or(out)).collect();
            let twice_max = 2.0 * scales.iter().map(|q| f64::from(q.scale)).fold(0.0, f64::max);
            let mut inputs = Vec::with_capacity(scales.len());
            for q in &scales {
                let multiplier = Multiplier::from_real(f64::from(q.scale) / twice_max).map_err(|e| at_node(node, e))?;
                inputs.push(AddInput { zero_point: q.zero_point, multiplier });
            }
            let output = Multiplier::from_real(twice_max / ((1u64 << ADD_LEFT_SHIFT) as f64 * f64::from(out.scale)))
                .map_err(|e| at_node(node, e))?;
            Ok(NodeParams::Int8Add { inputs, output })
        }
        (Op::Concat, Dtype::Int8) => {
            let out = quant_of(node)?;
            let mut inputs = Vec::with_capacity(in_shapes.len());
            for (shape, q) in in_shapes.iter().zip(in_quant) {
                let q = q.unwrap_or(out);
                let rescale = if q == out {
                    None
                } else {
                    Some(
                        Multiplier::from_real(f64::from(q.scale) / f64::from(out.scale))
                            .map_err(|e| at_node(node, e))?,
                    )
                };
                inputs.push(ConcatInput { channels: shape.c, zero_point: q.zero_point, rescale });
            }
            Ok(NodeParams::Int8Concat { inputs })
        }
        (op, Dtype::Int8) if op.keeps_quantization() => {
            let (out, inp) = (quant_of(node)?, in_quant[0]);
            if Some(out) != inp {
                return Err(Error::BadQuantization {
                    what: format!("node '{}'", node.name),
                    reason: format!("{} must keep its input's scale and zero point", op.name()),
                });
            }
            Ok(NodeParams::None)
        }
        _ => Ok(NodeParams::None),
    }
}

/// The optional bias of a float conv/dense; zeros when absent.
fn float_bias(tensors: &mut TensorSource<'_, '_>, node: &Node, out: usize) -> Result<(Vec<f32>, bool)> {
    match tensors.optional(node, "bias") {
        Some(b) => Ok((b.to_f32(&[out])?, true)),
        None => Ok((alloc::vec![0.0; out], false)),
    }
}

fn at_node(node: &Node, e: Error) -> Error {
    match e {
        Error::BadQuantization { reason, .. } => {
            Error::BadQuantization { what: format!("node '{}'", node.name), reason }
        }
        other => other,
    }
}

fn check_conv_dims(node: &Node, kh: usize, kw: usize, in_c: usize) -> Result<()> {
    if kh > limits::WINDOW || kw > limits::WINDOW {
        return Err(Error::BadAttribute {
            node: node.name.clone(),
            attribute: "kernel".into(),
            reason: format!("is {kh}x{kw}, at most {0}x{0}", limits::WINDOW),
        });
    }
    limit("accumulated taps (in_channels·kh·kw)", in_c * kh * kw, limits::TAPS)
}

fn check_dense_input(node: &Node, input: Shape, in_features: usize) -> Result<()> {
    if input.h != 1 || input.w != 1 {
        return Err(Error::ShapeMismatch {
            node: node.name.clone(),
            reason: format!("dense needs a flat input, got {input} (add a flatten node)"),
        });
    }
    if in_features != input.c {
        return Err(Error::ShapeMismatch {
            node: node.name.clone(),
            reason: format!("weight expects {in_features} input features, the input has {}", input.c),
        });
    }
    limit("accumulated taps (in_features)", in_features, limits::TAPS)
}

/// Bias, weight scales and output quantisation → per-channel fixed-point constants.
fn int8_channels(
    tensors: &mut TensorSource<'_, '_>,
    node: &Node,
    out_channels: usize,
    taps: usize,
    input: Option<QuantParams>,
) -> Result<Vec<ChannelRequant>> {
    let out = quant_of(node)?;
    let input = input.ok_or_else(|| Error::BadQuantization {
        what: format!("input of '{}'", node.name),
        reason: "missing".into(),
    })?;
    let scales_t = tensors.required(node, "weight_scale")?;
    let scales = scales_t.to_f32_exact(&[out_channels])?;
    let scales_name = scales_t.name.clone();
    let bias = match tensors.optional(node, "bias") {
        Some(b) => {
            let name = b.name.clone();
            let values = b.to_i32(&[out_channels])?;
            let bound = limits::bias_magnitude(taps);
            if let Some(i) = values.iter().position(|v| v.unsigned_abs() > bound) {
                return Err(Error::TensorValue {
                    tensor: name,
                    reason: format!("element {i} exceeds ±{bound} (2^31 − 1 − {taps} taps × 127 × 255)"),
                });
            }
            values
        }
        None => alloc::vec![0; out_channels],
    };
    scales
        .iter()
        .zip(&bias)
        .enumerate()
        .map(|(o, (&s, &b))| {
            if !(s.is_finite() && s > 0.0) {
                return Err(Error::BadQuantization {
                    what: format!("tensor '{scales_name}'"),
                    reason: format!("element {o} is {s}; scales must be finite and > 0"),
                });
            }
            let real = f64::from(input.scale) * f64::from(s) / f64::from(out.scale);
            let multiplier = Multiplier::from_real(real).map_err(|e| match e {
                Error::BadQuantization { reason, .. } => {
                    Error::BadQuantization { what: format!("tensor '{scales_name}' element {o}"), reason }
                }
                other => other,
            })?;
            Ok(ChannelRequant { bias: b, multiplier })
        })
        .collect()
}
