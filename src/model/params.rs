//! Per-node parameters: read from the file, checked against the graph, and
//! (for int8) turned into the fixed-point constants the kernels use. A load
//! keeps them as [`ParamRecord`]s: int8 weights and float tensors as byte
//! ranges of the file (never copied), per-channel constants in the state.
//! With `alloc`, [`NodeParams`] is the same with its values decoded (the f32
//! engine, the quantiser and the GPU engine read those).

#[cfg(feature = "alloc")]
use alloc::vec::Vec;
use core::ops::Range;

use super::file::{TensorDtype, TensorFile, TensorRef};
use super::graph::{Dtype, NodeRecord, Op, QuantParams};
use super::json::Decoded;
use super::limits;
use super::memory::State;
use super::memory::{Memory, Span};
use crate::error::{text, Error, Real, Result};
use crate::kernels::eltwise::{AddInput, ConcatInput, ADD_LEFT_SHIFT};
#[cfg(feature = "alloc")]
use crate::spec::fixed_point::ChannelRequant;
use crate::spec::fixed_point::{Multiplier, Requant};
use crate::spec::Shape;

/// Bytes `start..end` of the model file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ByteRange {
    pub start: usize,
    pub end: usize,
}

impl ByteRange {
    pub fn range(self) -> Range<usize> {
        self.start..self.end
    }

    pub fn len(self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(self) -> bool {
        self.end == self.start
    }
}

impl From<Range<usize>> for ByteRange {
    fn from(r: Range<usize>) -> ByteRange {
        ByteRange { start: r.start, end: r.end }
    }
}

/// A float tensor of the file (F32, F16 or BF16), its values checked finite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloatTensor {
    pub bytes: ByteRange,
    pub dtype: FloatDtype,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatDtype {
    F32,
    F16,
    BF16,
}

impl FloatTensor {
    /// Its values, decoded from `file`.
    pub fn values<'f>(self, file: &'f [u8]) -> impl Iterator<Item = f32> + 'f {
        let bytes = file.get(self.bytes.range()).unwrap_or(&[]);
        let width = if self.dtype == FloatDtype::F32 { 4 } else { 2 };
        bytes.chunks_exact(width).map(move |b| match (self.dtype, b) {
            (FloatDtype::F16, &[lo, hi]) => half::f16::from_le_bytes([lo, hi]).to_f32(),
            (FloatDtype::BF16, &[lo, hi]) => half::bf16::from_le_bytes([lo, hi]).to_f32(),
            (_, &[a, b, c, d]) => f32::from_le_bytes([a, b, c, d]),
            _ => f32::NAN, // chunks_exact gives `width` bytes: never reached
        })
    }
}

/// A conv or dense layer's requantisation as a load keeps it ([`Requant::Compact`]):
/// the bias tensor where it lies in the file; the multipliers where the file
/// stores them (`requant_multiplier`, `requant_shift`), else in the state (one
/// per channel, or one for all when they are equal: a per-tensor quantised layer).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequantRecord {
    pub channels: usize,
    /// Empty: the layer has none.
    pub bias: ByteRange,
    /// Little-endian Q31 mantissas, 4 bytes each.
    pub mantissas: ConstantBytes,
    /// Shifts, one signed byte each.
    pub shifts: ConstantBytes,
}

/// Where per-channel constants lie: in the model file (read in place, as the
/// weights are) or in the state the load filled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ConstantBytes {
    File(ByteRange),
    State(Span<u8>),
}

impl ConstantBytes {
    fn read<'s>(self, file: &'s [u8], state: State<'s>) -> &'s [u8] {
        match self {
            ConstantBytes::File(range) => file.get(range.range()).unwrap_or(&[]),
            ConstantBytes::State(span) => state.get(span),
        }
    }
}

impl RequantRecord {
    /// The requantisation, read from the file and the state the load filled.
    pub fn view<'s>(&self, file: &'s [u8], state: State<'s>) -> Requant<'s> {
        Requant::Compact {
            channels: self.channels,
            bias: file.get(self.bias.range()).unwrap_or(&[]),
            mantissas: self.mantissas.read(file, state),
            shifts: self.shifts.read(file, state),
        }
    }
}

/// What a node needs besides its inputs, as a load keeps it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamRecord {
    None,
    FloatConv {
        kernel_h: u8,
        kernel_w: u8,
        out_channels: usize,
        weights: FloatTensor,
        bias: Option<FloatTensor>,
    },
    FloatDense {
        out_features: usize,
        weights: FloatTensor,
        bias: Option<FloatTensor>,
    },
    /// PyTorch's four tensors; `eps` is the op's.
    FloatBatchNorm {
        weight: FloatTensor,
        bias: FloatTensor,
        running_mean: FloatTensor,
        running_var: FloatTensor,
    },
    /// `weights`: the OHWI I8 tensor in the file (zero copy). Kernel sizes in
    /// bytes, as FloatConv's: at most `limits::WINDOW`.
    Int8Conv {
        kernel_h: u8,
        kernel_w: u8,
        out_channels: usize,
        weights: ByteRange,
        requant: RequantRecord,
    },
    Int8Dense {
        out_features: usize,
        weights: ByteRange,
        requant: RequantRecord,
    },
    Int8Add {
        inputs: Span<AddInput>,
        output: Multiplier,
    },
    Int8Concat {
        inputs: Span<ConcatInput>,
    },
}

impl ParamRecord {
    /// Trainable parameter count, as PyTorch's `sum(p.numel() for p in parameters())`.
    pub fn parameter_count(&self) -> usize {
        let floats = |t: &FloatTensor| t.bytes.len() / if t.dtype == FloatDtype::F32 { 4 } else { 2 };
        match self {
            ParamRecord::FloatConv { weights, bias, .. } | ParamRecord::FloatDense { weights, bias, .. } => {
                floats(weights) + bias.as_ref().map_or(0, floats)
            }
            ParamRecord::FloatBatchNorm { weight, bias, .. } => floats(weight) + floats(bias),
            ParamRecord::Int8Conv { weights, requant, .. } | ParamRecord::Int8Dense { weights, requant, .. } => {
                weights.len() + requant.channels
            }
            _ => 0,
        }
    }
}

fn limit(what: &'static str, value: usize, max: usize) -> Result<()> {
    if value > max {
        return Err(Error::LimitExceeded { what, value: value as u64, limit: max as u64 });
    }
    Ok(())
}

/// What a node's parameters are read from: the file's tensors, the node's
/// name, and the memory the constants go into.
pub struct ParamSource<'x, 'f, 's, 'm> {
    pub file: &'x mut TensorFile<'f, 's>,
    pub memory: &'x Memory<'m>,
    pub name: &'x str,
}

impl<'f> ParamSource<'_, 'f, '_, '_> {
    fn required(&mut self, param: &str) -> Result<TensorRef<'f>> {
        let name = self.name;
        self.file.take(name, param).ok_or_else(|| Error::MissingTensor(text!("{name}.{param}")))
    }

    fn optional(&mut self, param: &str) -> Option<TensorRef<'f>> {
        self.file.take(self.name, param)
    }

    fn node_error(&self) -> crate::error::Text {
        text!("{}", self.name)
    }

    fn mismatch(&self, reason: crate::error::Text) -> Error {
        Error::ShapeMismatch { node: self.node_error(), reason }
    }

    /// A weight tensor's dimensions, checked before any of them is trusted.
    fn weight_dims<const RANK: usize>(&mut self) -> Result<[usize; RANK]> {
        let t = self.required("weight")?;
        let dims = t.shape.dims();
        if t.shape.rank() != RANK || dims.contains(&0) {
            return Err(Error::TensorShape {
                tensor: t.error_name(),
                expected: crate::error::dims(&[1; RANK]),
                found: crate::error::dims(dims),
            });
        }
        limit("tensor elements", t.shape.elements(), limits::ELEMENTS)?;
        let mut out = [0; RANK];
        out.copy_from_slice(dims);
        Ok(out)
    }

    fn float(&mut self, param: &str, expected: &[usize]) -> Result<FloatTensor> {
        let t = self.required(param)?;
        float_tensor(&t, expected)
    }

    fn optional_float(&mut self, param: &str, expected: &[usize]) -> Result<Option<FloatTensor>> {
        self.optional(param).map(|t| float_tensor(&t, expected)).transpose()
    }
}

fn float_tensor(t: &TensorRef<'_>, expected: &[usize]) -> Result<FloatTensor> {
    t.check_finite(expected)?;
    let dtype = match t.dtype {
        TensorDtype::F16 => FloatDtype::F16,
        TensorDtype::BF16 => FloatDtype::BF16,
        _ => FloatDtype::F32, // check_finite accepted F32, F16 or BF16 only
    };
    Ok(FloatTensor { bytes: t.range.clone().into(), dtype })
}

/// A conv's weight has `o` output and `i` input channels per group: the input
/// must have `groups · i` channels and `o` must split into the groups.
fn check_groups(source: &ParamSource<'_, '_, '_, '_>, groups: usize, o: usize, i: usize, input: Shape) -> Result<()> {
    if i.checked_mul(groups) != Some(input.c) {
        return Err(source.mismatch(if groups == 1 {
            text!("weight expects {i} input channels, the input has {}", input.c)
        } else {
            text!("weight expects {i} input channels per group × {groups} groups, the input has {}", input.c)
        }));
    }
    if !o.is_multiple_of(groups) {
        return Err(source.mismatch(text!("{o} output channels do not split into {groups} groups")));
    }
    Ok(())
}

fn quant_of(node: &NodeRecord, name: &str) -> Result<QuantParams> {
    node.quant.ok_or_else(|| Error::BadQuantization { what: text!("node '{name}'"), reason: text!("missing") })
}

/// Loads and checks the parameters of `node`, whose inputs have `in_shapes`
/// and quantisation `in_quant` (int8 files).
pub fn load_node_params(
    source: &mut ParamSource<'_, '_, '_, '_>,
    dtype: Dtype,
    node: &NodeRecord,
    in_shapes: &[Shape],
    in_quant: &[Option<QuantParams>],
) -> Result<ParamRecord> {
    let input = in_shapes[0];
    let name = source.name;
    match (node.op, dtype) {
        (Op::Conv2d { groups, .. }, Dtype::Float) => {
            let [o, i, kh, kw] = source.weight_dims()?;
            check_groups(source, groups as usize, o, i, input)?;
            let (kernel_h, kernel_w) = check_conv_dims(source, kh, kw, i)?;
            let weights = source.float("weight", &[o, i, kh, kw])?;
            let bias = source.optional_float("bias", &[o])?;
            Ok(ParamRecord::FloatConv { kernel_h, kernel_w, out_channels: o, weights, bias })
        }
        (Op::Dense { .. }, Dtype::Float) => {
            let [o, i] = source.weight_dims()?;
            check_dense_input(source, input, i)?;
            let weights = source.float("weight", &[o, i])?;
            let bias = source.optional_float("bias", &[o])?;
            Ok(ParamRecord::FloatDense { out_features: o, weights, bias })
        }
        (Op::BatchNorm { .. }, Dtype::Float) => {
            let c = input.c;
            let weight = source.float("weight", &[c])?;
            let bias = source.float("bias", &[c])?;
            let running_mean = source.float("running_mean", &[c])?;
            let running_var = source.float("running_var", &[c])?;
            if let Some(i) = running_var.values(source.file.bytes()).position(|v| v < 0.0) {
                return Err(Error::TensorValue {
                    tensor: text!("{name}.running_var"),
                    reason: text!("element {i} is negative"),
                });
            }
            // Bookkeeping of PyTorch's training loop; meaningless at inference.
            let _ = source.optional("num_batches_tracked");
            Ok(ParamRecord::FloatBatchNorm { weight, bias, running_mean, running_var })
        }
        (Op::BatchNorm { .. }, Dtype::Int8) => {
            Err(source.mismatch(text!("batchnorm cannot appear in an int8 model (the quantiser folds it)")))
        }
        (Op::Conv2d { groups, .. }, Dtype::Int8) => {
            let [o, kh, kw, i] = source.weight_dims()?;
            check_groups(source, groups as usize, o, i, input)?;
            let (kernel_h, kernel_w) = check_conv_dims(source, kh, kw, i)?;
            let weights = source.required("weight")?.i8_range(&[o, kh, kw, i])?.into();
            let requant = int8_requant(source, node, o, kh * kw * i, in_quant[0])?;
            Ok(ParamRecord::Int8Conv { kernel_h, kernel_w, out_channels: o, weights, requant })
        }
        (Op::Dense { .. }, Dtype::Int8) => {
            let [o, i] = source.weight_dims()?;
            check_dense_input(source, input, i)?;
            let weights = source.required("weight")?.i8_range(&[o, i])?.into();
            let requant = int8_requant(source, node, o, i, in_quant[0])?;
            Ok(ParamRecord::Int8Dense { out_features: o, weights, requant })
        }
        (Op::Add { .. }, Dtype::Int8) => {
            let out = quant_of(node, name)?;
            let scale = |q: &Option<QuantParams>| q.unwrap_or(out);
            let twice_max = 2.0 * in_quant.iter().map(|q| f64::from(scale(q).scale)).fold(0.0, f64::max);
            let inputs = source.memory.persistent_with(in_quant.len(), AddInput::default(), |slots| {
                for (slot, q) in slots.iter_mut().zip(in_quant) {
                    let q = scale(q);
                    let multiplier =
                        Multiplier::from_real(f64::from(q.scale) / twice_max).map_err(|e| at_node(name, e))?;
                    *slot = AddInput { zero_point: q.zero_point, multiplier };
                }
                Ok(())
            })?;
            let output = Multiplier::from_real(twice_max / ((1u64 << ADD_LEFT_SHIFT) as f64 * f64::from(out.scale)))
                .map_err(|e| at_node(name, e))?;
            Ok(ParamRecord::Int8Add { inputs, output })
        }
        (Op::Concat, Dtype::Int8) => {
            let out = quant_of(node, name)?;
            let inputs = source.memory.persistent_with(in_shapes.len(), ConcatInput::default(), |slots| {
                for ((slot, shape), q) in slots.iter_mut().zip(in_shapes).zip(in_quant) {
                    let q = q.unwrap_or(out);
                    let rescale = if q == out {
                        None
                    } else {
                        Some(
                            Multiplier::from_real(f64::from(q.scale) / f64::from(out.scale))
                                .map_err(|e| at_node(name, e))?,
                        )
                    };
                    *slot = ConcatInput { channels: shape.c, zero_point: q.zero_point, rescale };
                }
                Ok(())
            })?;
            Ok(ParamRecord::Int8Concat { inputs })
        }
        (op, Dtype::Int8) if op.keeps_quantization() => {
            let (out, inp) = (quant_of(node, name)?, in_quant[0]);
            if Some(out) != inp {
                return Err(Error::BadQuantization {
                    what: text!("node '{name}'"),
                    reason: text!("{} must keep its input's scale and zero point", op.name()),
                });
            }
            Ok(ParamRecord::None)
        }
        _ => Ok(ParamRecord::None),
    }
}

fn at_node(name: &str, e: Error) -> Error {
    match e {
        Error::BadQuantization { reason, .. } => Error::BadQuantization { what: text!("node '{name}'"), reason },
        other => other,
    }
}

/// The kernel's height and width, as the record keeps them (bytes).
fn check_conv_dims(source: &ParamSource<'_, '_, '_, '_>, kh: usize, kw: usize, in_c: usize) -> Result<(u8, u8)> {
    if kh > limits::WINDOW || kw > limits::WINDOW {
        return Err(Error::BadAttribute {
            node: source.node_error(),
            attribute: "kernel",
            reason: text!("is {kh}x{kw}, at most {0}x{0}", limits::WINDOW),
        });
    }
    limit("accumulated taps (in_channels·kh·kw)", in_c * kh * kw, limits::TAPS)?;
    // Both at most limits::WINDOW, which a byte holds (graph.rs).
    Ok((kh as u8, kw as u8))
}

fn check_dense_input(source: &ParamSource<'_, '_, '_, '_>, input: Shape, in_features: usize) -> Result<()> {
    if input.h != 1 || input.w != 1 {
        return Err(source.mismatch(text!("dense needs a flat input, got {input} (add a flatten node)")));
    }
    if in_features != input.c {
        return Err(source.mismatch(text!("weight expects {in_features} input features, the input has {}", input.c)));
    }
    limit("accumulated taps (in_features)", in_features, limits::TAPS)
}

/// Bias, weight scales and output quantisation → per-channel fixed-point constants:
/// the multipliers in the state (one if every channel's is the same), the bias
/// left in the file.
fn int8_requant(
    source: &mut ParamSource<'_, '_, '_, '_>,
    node: &NodeRecord,
    out_channels: usize,
    taps: usize,
    input: Option<QuantParams>,
) -> Result<RequantRecord> {
    let name = source.name;
    let out = quant_of(node, name)?;
    let Some(input) = input else {
        return Err(Error::bad_quantization(format_args!("input of '{name}'"), format_args!("missing")));
    };
    let scales_t = source.required("weight_scale")?;
    let scales = || scales_t.f32s(&[out_channels]);
    let checked = scales()?; // dtype and shape before the bias's
    let bias = match source.optional("bias") {
        Some(b) => {
            let bound = limits::bias_magnitude(taps);
            if let Some(i) = b.i32s(&[out_channels])?.position(|v| v.unsigned_abs() > bound) {
                return Err(Error::TensorValue {
                    tensor: b.error_name(),
                    reason: text!("element {i} exceeds ±{bound} (2^31 − 1 − {taps} taps × 127 × 255)"),
                });
            }
            ByteRange::from(b.range)
        }
        None => ByteRange::default(),
    };
    let multiplier = |o: usize, s: f32| -> Result<Multiplier> {
        if !(s.is_finite() && s > 0.0) {
            return Err(Error::BadQuantization {
                what: text!("tensor '{}'", Decoded(scales_t.name)),
                reason: text!("element {o} is {}; scales must be finite and > 0", Real::from(s)),
            });
        }
        let real = f64::from(input.scale) * f64::from(s) / f64::from(out.scale);
        Multiplier::from_real(real).map_err(|e| match e {
            Error::BadQuantization { reason, .. } => {
                Error::BadQuantization { what: text!("tensor '{}' element {o}", Decoded(scales_t.name)), reason }
            }
            other => other,
        })
    };
    // Every channel's multiplier checked, and the file's where it stores them.
    let stored = stored_multipliers(source)?;
    let mut stored_values = match &stored {
        Some((mantissas, shifts)) => Some(mantissas.i32s(&[out_channels])?.zip(shifts.i8s(&[out_channels])?)),
        None => None,
    };
    let mut first = None;
    let mut uniform = true;
    for (o, s) in checked.enumerate() {
        let m = multiplier(o, s)?;
        if let Some((mantissa, shift)) = stored_values.as_mut().and_then(Iterator::next) {
            let differs = |param: &str, found: i32, expected: i32| Error::TensorValue {
                tensor: text!("{name}.{param}"),
                reason: text!("element {o} is {found}; the layer's scales give {expected}"),
            };
            if mantissa != m.mantissa {
                return Err(differs(REQUANT_MULTIPLIER, mantissa, m.mantissa));
            }
            if i32::from(shift) != m.shift {
                return Err(differs(REQUANT_SHIFT, shift.into(), m.shift));
            }
        }
        uniform &= *first.get_or_insert(m) == m;
    }
    if let Some((mantissas, shifts)) = stored {
        let (mantissas, shifts) =
            (ConstantBytes::File(mantissas.range.into()), ConstantBytes::File(shifts.range.into()));
        return Ok(RequantRecord { channels: out_channels, bias, mantissas, shifts });
    }
    // Kept once if they are all the same.
    let kept = if uniform { out_channels.min(1) } else { out_channels };
    let memory = source.memory;
    let mantissas = memory.persistent_with(4 * kept, 0u8, |slots| {
        for (slot, (o, s)) in slots.chunks_exact_mut(4).zip(scales()?.enumerate()) {
            slot.copy_from_slice(&multiplier(o, s)?.mantissa.to_le_bytes());
        }
        Ok(())
    })?;
    let shifts = memory.persistent_with(kept, 0u8, |slots| {
        for (slot, (o, s)) in slots.iter_mut().zip(scales()?.enumerate()) {
            // Within −31..=30 (Multiplier::from_real): a signed byte.
            *slot = multiplier(o, s)?.shift as i8 as u8;
        }
        Ok(())
    })?;
    Ok(RequantRecord {
        channels: out_channels,
        bias,
        mantissas: ConstantBytes::State(mantissas),
        shifts: ConstantBytes::State(shifts),
    })
}

/// The layer's multipliers as its file stores them, both tensors or neither.
fn stored_multipliers<'f>(source: &mut ParamSource<'_, 'f, '_, '_>) -> Result<Option<(TensorRef<'f>, TensorRef<'f>)>> {
    let name = source.name;
    match (source.optional(REQUANT_MULTIPLIER), source.optional(REQUANT_SHIFT)) {
        (Some(mantissas), Some(shifts)) => Ok(Some((mantissas, shifts))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(Error::MissingTensor(text!("{name}.{REQUANT_SHIFT}"))),
        (None, Some(_)) => Err(Error::MissingTensor(text!("{name}.{REQUANT_MULTIPLIER}"))),
    }
}

/// The optional tensors that store a layer's requantisation multipliers, as
/// [`crate::spec::fixed_point::Multiplier`]s: Q31 mantissas (I32) and shifts (I8).
pub const REQUANT_MULTIPLIER: &str = "requant_multiplier";
pub const REQUANT_SHIFT: &str = "requant_shift";

/// What a node needs besides its inputs, its values decoded (the f32 engine,
/// the quantiser and the GPU engine's preparation read these).
#[cfg(feature = "alloc")]
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

#[cfg(feature = "alloc")]
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

    /// The decoded form of a loaded node's parameters (`op` for a batchnorm's eps).
    pub fn from_record(record: &ParamRecord, op: Op, state: State<'_>, file: &[u8]) -> NodeParams {
        let floats = |t: &FloatTensor| t.values(file).collect::<Vec<f32>>();
        let bias = |b: &Option<FloatTensor>, out: usize| match b {
            Some(b) => (floats(b), true),
            None => (alloc::vec![0.0; out], false),
        };
        match record {
            ParamRecord::None => NodeParams::None,
            ParamRecord::FloatConv { kernel_h, kernel_w, out_channels, weights, bias: b } => {
                let (bias, has_bias) = bias(b, *out_channels);
                NodeParams::FloatConv {
                    kernel_h: (*kernel_h).into(),
                    kernel_w: (*kernel_w).into(),
                    out_channels: *out_channels,
                    weights: floats(weights),
                    bias,
                    has_bias,
                }
            }
            ParamRecord::FloatDense { out_features, weights, bias: b } => {
                let (bias, has_bias) = bias(b, *out_features);
                NodeParams::FloatDense { out_features: *out_features, weights: floats(weights), bias, has_bias }
            }
            ParamRecord::FloatBatchNorm { weight, bias, running_mean, running_var } => {
                let eps = match op {
                    Op::BatchNorm { eps } => eps,
                    _ => 1e-5,
                };
                let (gamma, beta, mean, var) =
                    (floats(weight), floats(bias), floats(running_mean), floats(running_var));
                let alpha: Vec<f32> = gamma.iter().zip(&var).map(|(g, v)| g * (1.0 / libm::sqrtf(v + eps))).collect();
                let beta = beta.iter().zip(&mean).zip(&alpha).map(|((b, m), a)| b - m * a).collect();
                NodeParams::FloatBatchNorm { alpha, beta }
            }
            ParamRecord::Int8Conv { kernel_h, kernel_w, out_channels, weights, requant } => NodeParams::Int8Conv {
                kernel_h: (*kernel_h).into(),
                kernel_w: (*kernel_w).into(),
                out_channels: *out_channels,
                weights: weights.range(),
                channels: requant.view(file, state).iter().collect(),
            },
            ParamRecord::Int8Dense { out_features, weights, requant } => NodeParams::Int8Dense {
                out_features: *out_features,
                weights: weights.range(),
                channels: requant.view(file, state).iter().collect(),
            },
            ParamRecord::Int8Add { inputs, output } => {
                NodeParams::Int8Add { inputs: state.get(*inputs).to_vec(), output: *output }
            }
            ParamRecord::Int8Concat { inputs } => NodeParams::Int8Concat { inputs: state.get(*inputs).to_vec() },
        }
    }
}
