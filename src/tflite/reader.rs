//! Reading a `.tflite` flatbuffer into checked tensors and operators.
//!
//! The flatbuffers verifier checks every offset, vector and union of the file
//! before anything is read (the generated accessors trust a verified buffer);
//! this module then checks what the schema cannot: indices within their
//! tables, shapes within tinycnn's limits, buffers of the size their tensor
//! says, quantisation arrays of the right length. Nothing is allocated in
//! proportion to a count before that count is checked against a limit.

use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

use super::schema_generated::tflite as fb;
use crate::error::{Error, Result};
use crate::model::limits;

pub use fb::{ActivationFunctionType, BuiltinOperator, FullyConnectedOptionsWeightsFormat, Padding, TensorType};

/// One tensor of the (single) subgraph.
#[derive(Debug, Clone)]
pub struct Tensor<'a> {
    pub name: &'a str,
    pub dtype: TensorType,
    /// Dimensions as stored (NHWC for activations), each in 1..=limits::DIMENSION.
    pub shape: Vec<usize>,
    /// The constant data, for weights and biases; `None` for activations.
    pub data: Option<&'a [u8]>,
    pub quant: Option<Quantization>,
}

/// `real = (q − zero_point) · scale`, per tensor or per slice of `dimension`.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantization {
    pub scales: Vec<f32>,
    pub zero_points: Vec<i64>,
    pub dimension: usize,
}

/// One operator: its builtin code and tensor indices (`None`: an omitted optional input).
#[derive(Debug, Clone)]
pub struct Operator<'a> {
    pub code: BuiltinOperator,
    pub inputs: Vec<Option<usize>>,
    pub outputs: Vec<usize>,
    /// The flatbuffer table, for the op's options.
    pub table: fb::Operator<'a>,
}

impl Operator<'_> {
    /// The op's name as TFLite spells it (CONV_2D, …).
    pub fn name(&self) -> &'static str {
        op_name(self.code)
    }
}

/// TFLite's name of a builtin operator.
pub fn op_name(code: BuiltinOperator) -> &'static str {
    code.variant_name().unwrap_or("an unknown builtin")
}

/// A checked `.tflite` model: one subgraph, its tensors and operators in execution order.
#[derive(Debug, Clone)]
pub struct TfliteModel<'a> {
    pub tensors: Vec<Tensor<'a>>,
    pub operators: Vec<Operator<'a>>,
    pub inputs: Vec<usize>,
    pub outputs: Vec<usize>,
}

pub(super) fn error(at: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::Tflite { at: at.into(), reason: reason.into() }
}

fn file_error(reason: impl Into<String>) -> Error {
    error("file", reason)
}

fn check_count(what: &'static str, n: usize, limit: usize) -> Result<()> {
    if n > limit {
        return Err(Error::LimitExceeded { what, value: n as u64, limit: limit as u64 });
    }
    Ok(())
}

/// Verifies and reads a `.tflite` file.
pub fn read(bytes: &[u8]) -> Result<TfliteModel<'_>> {
    // The identifier sits at bytes 4..8; shorter input has none.
    if bytes.len() < 8 || !fb::model_buffer_has_identifier(bytes) {
        return Err(file_error("not a .tflite file (no \"TFL3\" flatbuffer identifier at byte 4)"));
    }
    let model = fb::root_as_model(bytes).map_err(|e| file_error(format!("malformed flatbuffer: {e}")))?;
    if model.version() != 3 {
        return Err(file_error(format!("schema version {} (this importer reads version 3)", model.version())));
    }
    let subgraphs = model.subgraphs().ok_or_else(|| file_error("no subgraphs"))?;
    match subgraphs.len() {
        1 => {}
        0 => return Err(file_error("no subgraphs")),
        n => return Err(file_error(format!("{n} subgraphs (control flow); tinycnn runs one graph"))),
    }
    let graph = subgraphs.get(0); // len == 1
    let buffers: Vec<Option<&[u8]>> = match model.buffers() {
        Some(b) => {
            check_count("tflite buffers", b.len(), limits::TENSORS)?;
            b.iter().map(|buf| buf.data().map(|d| d.bytes())).collect()
        }
        None => Vec::new(),
    };

    let raw_tensors = graph.tensors().ok_or_else(|| file_error("the subgraph has no tensors"))?;
    check_count("tflite tensors", raw_tensors.len(), limits::TENSORS)?;
    let mut tensors = Vec::with_capacity(raw_tensors.len());
    for (index, t) in raw_tensors.iter().enumerate() {
        tensors.push(read_tensor(index, &t, &buffers)?);
    }

    let tensor_index = |at: &dyn Fn() -> String, i: i32| -> Result<usize> {
        match usize::try_from(i) {
            Ok(i) if i < tensors.len() => Ok(i),
            _ => Err(error(at(), format!("tensor index {i} is outside the {} tensors", tensors.len()))),
        }
    };
    let indices = |at: &dyn Fn() -> String, v: Option<flatbuffers::Vector<'_, i32>>| -> Result<Vec<usize>> {
        let v = v.ok_or_else(|| error(at(), "has no tensor list"))?;
        check_count("tflite operator tensors", v.len(), limits::OP_INPUTS.max(4))?;
        v.iter().map(|i| tensor_index(at, i)).collect()
    };
    let inputs = indices(&|| "subgraph inputs".into(), graph.inputs())?;
    let outputs = indices(&|| "subgraph outputs".into(), graph.outputs())?;

    let codes: Vec<BuiltinOperator> = match model.operator_codes() {
        Some(codes) => {
            check_count("tflite operator codes", codes.len(), limits::NODES)?;
            // Codes past 127 live in `builtin_code`, older files only fill the deprecated byte.
            codes
                .iter()
                .map(|c| BuiltinOperator(c.builtin_code().0.max(i32::from(c.deprecated_builtin_code()))))
                .collect()
        }
        None => Vec::new(),
    };
    let raw_ops = graph.operators().ok_or_else(|| file_error("the subgraph has no operators"))?;
    check_count("tflite operators", raw_ops.len(), limits::NODES)?;
    let mut operators = Vec::with_capacity(raw_ops.len());
    for (index, op) in raw_ops.iter().enumerate() {
        let code = *codes.get(op.opcode_index() as usize).ok_or_else(|| {
            error(
                format!("operator {index}"),
                format!("opcode index {} is outside the {} operator codes", op.opcode_index(), codes.len()),
            )
        })?;
        let at = || format!("operator {index} ({})", op_name(code));
        let raw_inputs = op.inputs().ok_or_else(|| error(at(), "has no inputs"))?;
        check_count("tflite operator inputs", raw_inputs.len(), limits::OP_INPUTS)?;
        // −1 marks an omitted optional input (a conv without bias).
        let inputs = raw_inputs.iter().map(|i| if i < 0 { Ok(None) } else { tensor_index(&at, i).map(Some) });
        let inputs = inputs.collect::<Result<Vec<_>>>()?;
        let outputs = indices(&at, op.outputs())?;
        operators.push(Operator { code, inputs, outputs, table: op });
    }
    Ok(TfliteModel { tensors, operators, inputs, outputs })
}

fn read_tensor<'a>(index: usize, t: &fb::Tensor<'a>, buffers: &[Option<&'a [u8]>]) -> Result<Tensor<'a>> {
    let name = t.name().unwrap_or("");
    let at = || format!("tensor {index} '{name}'");
    if t.sparsity().is_some() {
        return Err(error(at(), "is sparse (sparsity parameters); tinycnn reads dense tensors"));
    }
    let raw_shape = t.shape().map(|s| s.iter().collect::<Vec<i32>>()).unwrap_or_default();
    if raw_shape.len() > 4 {
        return Err(error(at(), format!("has rank {} (at most 4)", raw_shape.len())));
    }
    let mut shape = Vec::with_capacity(raw_shape.len());
    for &d in &raw_shape {
        match usize::try_from(d) {
            Ok(d) if (1..=limits::DIMENSION).contains(&d) => shape.push(d),
            _ => return Err(error(at(), format!("has dimension {d} (must be in 1..={})", limits::DIMENSION))),
        }
    }
    let elements = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).unwrap_or(usize::MAX);
    if elements > limits::ELEMENTS {
        return Err(Error::LimitExceeded {
            what: "tflite tensor elements",
            value: elements as u64,
            limit: limits::ELEMENTS as u64,
        });
    }
    let dtype = t.type_();
    let data = match buffers.get(t.buffer() as usize) {
        None if t.buffer() == 0 => None, // a file may omit the empty buffer 0 altogether
        None => return Err(error(at(), format!("buffer {} is outside the {} buffers", t.buffer(), buffers.len()))),
        Some(d) => d.filter(|d| !d.is_empty()),
    };
    if let Some(data) = data {
        let element_bytes = match dtype {
            TensorType::INT8 | TensorType::UINT8 | TensorType::BOOL => 1,
            TensorType::INT16 | TensorType::FLOAT16 => 2,
            TensorType::INT32 | TensorType::FLOAT32 => 4,
            TensorType::INT64 | TensorType::FLOAT64 => 8,
            other => return Err(error(at(), format!("has type {}", type_name(other)))),
        };
        if Some(data.len()) != elements.checked_mul(element_bytes) {
            return Err(error(
                at(),
                format!(
                    "has {} bytes of data, its shape {shape:?} of {} needs {}",
                    data.len(),
                    type_name(dtype),
                    elements * element_bytes
                ),
            ));
        }
    }
    let quant = match t.quantization() {
        None => None,
        Some(q) if q.scale().is_none() && q.zero_point().is_none() => None,
        Some(q) => {
            if q.details_type() != fb::QuantizationDetails::NONE {
                return Err(error(at(), "has custom quantisation details"));
            }
            let scales: Vec<f32> = q.scale().map(|s| s.iter().collect()).unwrap_or_default();
            let zero_points: Vec<i64> = q.zero_point().map(|z| z.iter().collect()).unwrap_or_default();
            // Whether the scales fit the tensor's quantised dimension is checked where
            // they are used (`activation_quant`, `Converter::weights`), not here: the
            // quantisation of a bias, which nothing reads, is often inconsistent
            // (TFLM's own person_detect.tflite gives an [8] bias 8 scales along
            // dimension 3), and TFLite Micro runs such files.
            let dimension = usize::try_from(q.quantized_dimension()).unwrap_or(usize::MAX);
            if scales.is_empty() || zero_points.len() != scales.len() {
                return Err(error(
                    at(),
                    format!("has {} scales and {} zero points (one each)", scales.len(), zero_points.len()),
                ));
            }
            if let Some(s) = scales.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
                return Err(error(at(), format!("has scale {s} (must be finite and > 0)")));
            }
            Some(Quantization { scales, zero_points, dimension })
        }
    };
    Ok(Tensor { name, dtype, shape, data, quant })
}

/// TFLite's name of a tensor type (FLOAT32, INT8, …).
pub fn type_name(t: TensorType) -> String {
    t.variant_name().map_or_else(|| format!("type {}", t.0), ToString::to_string)
}
