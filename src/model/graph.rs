//! The graph JSON of docs/FORMAT.md: parsing, attribute checks, topological order.
//!
//! This module knows nothing of tensors; shapes are inferred in `shape.rs`
//! once the weights are known.

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use super::limits;
pub use super::unary::Unary;
use crate::error::{Error, Result};

/// TFLite's int8 softmax output quantisation: scale 1/256, zero point −128.
pub const SOFTMAX_INT8_OUTPUT: QuantParams = QuantParams { scale: 1.0 / 256.0, zero_point: -128 };

/// The reserved name of the network input.
pub const INPUT_NAME: &str = "input";
/// The safetensors metadata key that holds the graph JSON.
pub const METADATA_KEY: &str = "tinycnn";
/// The graph format version this build reads and writes.
pub const FORMAT_VERSION: u64 = 1;

/// Number format of a model file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    /// F32 / F16 / BF16 weights, run by the f32 engine.
    Float,
    /// int8 weights and activations, run by the integer engine.
    Int8,
}

impl Dtype {
    pub fn as_str(self) -> &'static str {
        match self {
            Dtype::Float => "float",
            Dtype::Int8 => "int8",
        }
    }
}

/// Asymmetric per-tensor quantisation of an activation: real = (q − zero_point) × scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantParams {
    pub scale: f32,
    pub zero_point: i32,
}

/// Window geometry of a pooling op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

/// Zero padding of a convolution's input, per side (in the JSON `padding`, one
/// number for every side, or `pads`, `[top, left, bottom, right]` as ONNX has it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Padding {
    pub top: usize,
    pub left: usize,
    pub bottom: usize,
    pub right: usize,
}

impl Padding {
    pub const fn uniform(p: usize) -> Padding {
        Padding { top: p, left: p, bottom: p, right: p }
    }

    pub fn is_uniform(&self) -> bool {
        *self == Padding::uniform(self.top)
    }
}

/// One operation. Kernel sizes and channel counts of conv/dense come from the weights.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    /// `groups` > 1: a grouped convolution (groups = input channels: depthwise).
    Conv2d {
        stride: usize,
        padding: Padding,
        relu: bool,
        groups: usize,
        dilation: usize,
    },
    Dense {
        relu: bool,
    },
    MaxPool2d(Window),
    AvgPool2d(Window),
    GlobalAvgPool,
    BatchNorm {
        eps: f32,
    },
    /// An element-wise unary op (relu, clamp, …; `unary.rs`).
    Unary(Unary),
    Dropout,
    Flatten,
    Add {
        relu: bool,
    },
    Concat,
    /// softmax(beta · x): in f32 after the logits, or TFLite's integer softmax
    /// when its int8 output is the network's ([`Graph::output`]).
    Softmax {
        beta: f32,
    },
}

impl Op {
    /// The name used in the graph JSON.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Conv2d { .. } => "conv2d",
            Op::Dense { .. } => "dense",
            Op::MaxPool2d(_) => "maxpool2d",
            Op::AvgPool2d(_) => "avgpool2d",
            Op::GlobalAvgPool => "global_avgpool",
            Op::BatchNorm { .. } => "batchnorm",
            Op::Unary(u) => u.name(),
            Op::Dropout => "dropout",
            Op::Flatten => "flatten",
            Op::Add { .. } => "add",
            Op::Concat => "concat",
            Op::Softmax { .. } => "softmax",
        }
    }

    /// Ops whose int8 output must share the input's quantisation (they move integers only).
    pub fn keeps_quantization(&self) -> bool {
        match self {
            Op::MaxPool2d(_) | Op::AvgPool2d(_) | Op::GlobalAvgPool | Op::Flatten | Op::Dropout => true,
            Op::Unary(u) => u.keeps_quantization(),
            _ => false,
        }
    }
}

/// What the caller hands the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// C×H×W pixel bytes p ∈ [0, 255], normalised as x = (p/255 − mean)/std
    /// (an int8 network sees q = p − 128).
    Pixels,
    /// int8 values already quantised with the input's scale and zero point,
    /// H×W×C (channels last, a TFLite model's NHWC input). int8 files only.
    Int8,
}

/// The network input: C×H×W, pixels or int8 values.
#[derive(Debug, Clone, PartialEq)]
pub struct InputSpec {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub kind: InputKind,
    pub mean: f32,
    pub std: f32,
    /// Present in int8 files.
    pub quant: Option<QuantParams>,
}

/// A node of the sorted graph. Value ids: 0 is the input, `i + 1` is node `i`'s output.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: String,
    pub op: Op,
    pub inputs: Vec<usize>,
    /// Output quantisation (int8 files).
    pub quant: Option<QuantParams>,
}

/// A validated, topologically sorted graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    pub dtype: Dtype,
    pub input: InputSpec,
    pub nodes: Vec<Node>,
    /// Value id of the logits (the softmax's input when the output is a softmax).
    pub logits: usize,
    /// Whether the graph's declared output is a softmax over the logits.
    pub softmax_output: bool,
    /// Value id of the network's int8 output: the softmax, when it is computed in
    /// integers (TFLite's: int8 graph, output scale 1/256 and zero point −128),
    /// else the logits.
    pub output: usize,
}

impl Graph {
    /// Name of a value id (`input` or a node's name).
    pub fn value_name(&self, value: usize) -> &str {
        match value {
            0 => INPUT_NAME,
            v => self.nodes.get(v - 1).map_or("?", |n| n.name.as_str()),
        }
    }
}

// ---------------------------------------------------------------------------
// JSON form (read and written)

/// The graph exactly as it appears in the JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGraph {
    pub format: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtype: Option<String>,
    pub input: RawInput,
    pub nodes: Vec<RawNode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInput {
    pub channels: u64,
    pub height: u64,
    pub width: u64,
    /// `"int8"`: quantised values, channels last; absent: pixel bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtype: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub std: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zero_point: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    pub name: String,
    pub op: String,
    pub inputs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stride: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub padding: Option<i64>,
    /// conv2d padding per side, [top, left, bottom, right] (ONNX's `pads`); instead of `padding`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pads: Option<Vec<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relu: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eps: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dilation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// softmax's inverse temperature (TFLite's `beta`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zero_point: Option<i64>,
}

impl RawGraph {
    pub fn from_json(json: &str) -> Result<Self> {
        if json.len() > limits::GRAPH_JSON_BYTES {
            return Err(Error::LimitExceeded {
                what: "graph JSON bytes",
                value: json.len() as u64,
                limit: limits::GRAPH_JSON_BYTES as u64,
            });
        }
        serde_json::from_str(json).map_err(|e| Error::GraphJson(e.to_string()))
    }

    pub fn to_json(&self) -> String {
        // Serialising plain structs of strings and numbers cannot fail; an
        // empty graph is still reported by the loader if it ever did.
        serde_json::to_string(self).unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------
// Validation

fn bad_attr(node: &str, attribute: &str, reason: impl Into<String>) -> Error {
    Error::BadAttribute { node: node.to_owned(), attribute: attribute.to_owned(), reason: reason.into() }
}

/// Reads an optional small non-negative integer attribute.
fn size_attr(node: &str, name: &str, value: Option<i64>, default: usize, min: usize) -> Result<usize> {
    let Some(v) = value else { return Ok(default) };
    if v < min as i64 || v > limits::WINDOW as i64 {
        return Err(bad_attr(node, name, format!("is {v}, must be in {min}..={}", limits::WINDOW)));
    }
    Ok(v as usize)
}

fn check_quant(what: &str, scale: Option<f64>, zero_point: Option<i64>, dtype: Dtype) -> Result<Option<QuantParams>> {
    match dtype {
        Dtype::Float => {
            if scale.is_some() || zero_point.is_some() {
                return Err(Error::BadQuantization {
                    what: what.to_owned(),
                    reason: "scale/zero_point given in a float model".into(),
                });
            }
            Ok(None)
        }
        Dtype::Int8 => {
            let (Some(scale), Some(zero_point)) = (scale, zero_point) else {
                return Err(Error::BadQuantization {
                    what: what.to_owned(),
                    reason: "an int8 model needs scale and zero_point".into(),
                });
            };
            let scale32 = scale as f32;
            if !(scale32.is_finite() && scale32 > 0.0) {
                return Err(Error::BadQuantization {
                    what: what.to_owned(),
                    reason: format!("scale {scale} must be finite and > 0"),
                });
            }
            if !(-128..=127).contains(&zero_point) {
                return Err(Error::BadQuantization {
                    what: what.to_owned(),
                    reason: format!("zero_point {zero_point} is outside [-128, 127]"),
                });
            }
            Ok(Some(QuantParams { scale: scale32, zero_point: zero_point as i32 }))
        }
    }
}

/// A conv's `padding` (every side) or `pads` (each side). Two plain fields rather
/// than one field of either shape: serde's untagged enums cost ~12 KB of wasm.
fn conv_padding(node: &str, raw: &RawNode) -> Result<Padding> {
    match (raw.padding, &raw.pads) {
        (Some(_), Some(_)) => Err(bad_attr(node, "pads", "and padding both given; pads alone says every side")),
        (p, None) => Ok(Padding::uniform(size_attr(node, "padding", p, 0, 0)?)),
        (None, Some(sides)) => {
            let [top, left, bottom, right] = sides.as_slice() else {
                return Err(bad_attr(
                    node,
                    "pads",
                    format!("has {} sides, [top, left, bottom, right] has 4", sides.len()),
                ));
            };
            let side = |p: i64| size_attr(node, "pads", Some(p), 0, 0);
            Ok(Padding { top: side(*top)?, left: side(*left)?, bottom: side(*bottom)?, right: side(*right)? })
        }
    }
}

fn parse_op(raw: &RawNode) -> Result<Op> {
    let name = raw.name.as_str();
    let allowed: &[&str] = match raw.op.as_str() {
        "conv2d" => &["stride", "padding", "pads", "relu", "groups", "dilation"],
        "dense" => &["relu"],
        "maxpool2d" | "avgpool2d" => &["kernel", "stride", "padding"],
        "batchnorm" => &["eps"],
        "dropout" => &["p"],
        "add" => &["relu"],
        "softmax" => &["beta"],
        "global_avgpool" | "flatten" | "concat" => &[],
        other => match Unary::attributes(other) {
            Some(attributes) => attributes,
            None => return Err(Error::UnknownOp { node: name.to_owned(), op: other.to_owned() }),
        },
    };
    let given = [
        ("kernel", raw.kernel.is_some()),
        ("stride", raw.stride.is_some()),
        ("padding", raw.padding.is_some()),
        ("pads", raw.pads.is_some()),
        ("relu", raw.relu.is_some()),
        ("eps", raw.eps.is_some()),
        ("p", raw.p.is_some()),
        ("groups", raw.groups.is_some()),
        ("dilation", raw.dilation.is_some()),
        ("min", raw.min.is_some()),
        ("max", raw.max.is_some()),
        ("beta", raw.beta.is_some()),
    ];
    for (attr, present) in given {
        if present && !allowed.contains(&attr) {
            return Err(bad_attr(name, attr, format!("is not an attribute of {}", raw.op)));
        }
    }
    let relu = raw.relu.unwrap_or(false);
    let window = || -> Result<Window> {
        let kernel = size_attr(name, "kernel", raw.kernel, 0, 1)?;
        if raw.kernel.is_none() {
            return Err(bad_attr(name, "kernel", "is required"));
        }
        let stride = size_attr(name, "stride", raw.stride, kernel, 1)?;
        let padding = size_attr(name, "padding", raw.padding, 0, 0)?;
        if padding > kernel / 2 {
            return Err(bad_attr(name, "padding", format!("is {padding}, at most kernel/2 = {}", kernel / 2)));
        }
        Ok(Window { kernel, stride, padding })
    };
    Ok(match raw.op.as_str() {
        "conv2d" => Op::Conv2d {
            stride: size_attr(name, "stride", raw.stride, 1, 1)?,
            padding: conv_padding(name, raw)?,
            relu,
            groups: match raw.groups {
                None => 1,
                Some(g) if (1..=limits::DIMENSION as i64).contains(&g) => g as usize,
                Some(g) => {
                    return Err(bad_attr(name, "groups", format!("is {g}, must be in 1..={}", limits::DIMENSION)))
                }
            },
            dilation: size_attr(name, "dilation", raw.dilation, 1, 1)?,
        },
        "dense" => Op::Dense { relu },
        "maxpool2d" => Op::MaxPool2d(window()?),
        "avgpool2d" => Op::AvgPool2d(window()?),
        "global_avgpool" => Op::GlobalAvgPool,
        "batchnorm" => {
            let eps = raw.eps.unwrap_or(1e-5);
            if !(eps.is_finite() && eps > 0.0 && eps < 1.0) {
                return Err(bad_attr(name, "eps", format!("is {eps}, must be in (0, 1)")));
            }
            Op::BatchNorm { eps: eps as f32 }
        }
        "dropout" => Op::Dropout,
        "flatten" => Op::Flatten,
        "add" => Op::Add { relu },
        "concat" => Op::Concat,
        "softmax" => {
            let beta = raw.beta.unwrap_or(1.0);
            if !(beta.is_finite() && beta > 0.0 && beta <= 1e6) {
                return Err(bad_attr(name, "beta", format!("is {beta}, must be finite and in (0, 1e6]")));
            }
            Op::Softmax { beta: beta as f32 }
        }
        _ => Op::Unary(Unary::parse(raw)?),
    })
}

fn input_count_ok(op: &Op, n: usize) -> bool {
    match op {
        Op::Add { .. } | Op::Concat => (2..=limits::OP_INPUTS).contains(&n),
        _ => n == 1,
    }
}

impl Graph {
    /// Validates a raw graph: names, ops, attributes, quantisation fields, order.
    pub fn from_raw(raw: &RawGraph) -> Result<Graph> {
        if raw.format != FORMAT_VERSION {
            return Err(Error::UnsupportedFormat(raw.format));
        }
        let dtype = match raw.dtype.as_deref() {
            None | Some("float") => Dtype::Float,
            Some("int8") => Dtype::Int8,
            Some(other) => return Err(Error::GraphJson(format!("dtype '{other}' is neither 'float' nor 'int8'"))),
        };
        if raw.nodes.len() > limits::NODES {
            return Err(Error::LimitExceeded {
                what: "nodes",
                value: raw.nodes.len() as u64,
                limit: limits::NODES as u64,
            });
        }
        if raw.nodes.is_empty() {
            return Err(Error::GraphJson("the graph has no nodes".into()));
        }
        let input = parse_input(&raw.input, dtype)?;

        // Names → listed index, refusing duplicates and the reserved name.
        let mut names: Vec<(&str, usize)> = Vec::with_capacity(raw.nodes.len());
        for (i, node) in raw.nodes.iter().enumerate() {
            if node.name.is_empty() || node.name.len() > limits::NAME_BYTES {
                return Err(Error::GraphJson(format!("node {i} has an empty or over-long name")));
            }
            names.push((node.name.as_str(), i));
        }
        names.sort_unstable();
        for pair in names.windows(2) {
            if pair[0].0 == pair[1].0 {
                return Err(Error::DuplicateNode(pair[0].0.to_owned()));
            }
        }
        if names.binary_search_by(|(n, _)| (*n).cmp(INPUT_NAME)).is_ok() {
            return Err(Error::DuplicateNode(INPUT_NAME.to_owned()));
        }
        let listed_index = |name: &str| names.binary_search_by(|(n, _)| (*n).cmp(name)).ok().map(|k| names[k].1);

        // Inputs as listed indices (None = the network input).
        let mut deps: Vec<Vec<Option<usize>>> = Vec::with_capacity(raw.nodes.len());
        let mut ops = Vec::with_capacity(raw.nodes.len());
        for node in &raw.nodes {
            let op = parse_op(node)?;
            if !input_count_ok(&op, node.inputs.len()) {
                return Err(Error::ShapeMismatch {
                    node: node.name.clone(),
                    reason: format!(
                        "{} takes {} inputs, got {}",
                        op.name(),
                        if matches!(op, Op::Add { .. } | Op::Concat) { "2 to 8" } else { "1" },
                        node.inputs.len()
                    ),
                });
            }
            let mut d = Vec::with_capacity(node.inputs.len());
            for input in &node.inputs {
                if input == INPUT_NAME {
                    d.push(None);
                } else {
                    match listed_index(input) {
                        Some(k) => d.push(Some(k)),
                        None => return Err(Error::DanglingInput { node: node.name.clone(), input: input.clone() }),
                    }
                }
            }
            deps.push(d);
            ops.push(op);
        }

        // Kahn's algorithm, picking the first listed ready node each time so that
        // an already sorted file keeps its order.
        let n = raw.nodes.len();
        let mut order: Vec<usize> = Vec::with_capacity(n);
        let mut sorted_pos: Vec<Option<usize>> = alloc::vec![None; n];
        while order.len() < n {
            let ready = (0..n).find(|&i| {
                sorted_pos[i].is_none() && deps[i].iter().all(|d| d.is_none_or(|k| sorted_pos[k].is_some()))
            });
            match ready {
                Some(i) => {
                    sorted_pos[i] = Some(order.len());
                    order.push(i);
                }
                None => {
                    let stuck = (0..n).find(|&i| sorted_pos[i].is_none()).unwrap_or(0);
                    return Err(Error::Cycle(raw.nodes[stuck].name.clone()));
                }
            }
        }

        let mut nodes = Vec::with_capacity(n);
        for &i in &order {
            let node = &raw.nodes[i];
            let inputs = deps[i].iter().map(|d| d.and_then(|k| sorted_pos[k]).map_or(0, |p| p + 1)).collect();
            let quant = check_quant(&format!("node '{}'", node.name), node.scale, node.zero_point, dtype)?;
            nodes.push(Node { name: node.name.clone(), op: ops[i], inputs, quant });
        }

        let output_value = match &raw.output {
            None => order.iter().position(|&i| i == n - 1).map_or(n, |p| p + 1),
            Some(name) => match listed_index(name).and_then(|k| sorted_pos[k]) {
                Some(p) => p + 1,
                None => return Err(Error::DanglingInput { node: "output".into(), input: name.clone() }),
            },
        };
        let mut softmax_output = false;
        let mut logits = output_value;
        for (pos, node) in nodes.iter().enumerate() {
            if matches!(node.op, Op::Softmax { .. }) {
                if pos + 1 != output_value {
                    return Err(Error::ShapeMismatch {
                        node: node.name.clone(),
                        reason: "softmax is only supported as the graph output".into(),
                    });
                }
                softmax_output = true;
                logits = node.inputs[0];
            }
        }
        if logits == 0 {
            return Err(Error::GraphJson("the output is the raw input; the graph computes nothing".into()));
        }
        let int8_softmax = softmax_output && nodes[output_value - 1].quant == Some(SOFTMAX_INT8_OUTPUT);
        let output = if int8_softmax { output_value } else { logits };
        Ok(Graph { dtype, input, nodes, logits, softmax_output, output })
    }

    /// Parses and validates graph JSON.
    pub fn from_json(json: &str) -> Result<Graph> {
        Graph::from_raw(&RawGraph::from_json(json)?)
    }

    /// The JSON form of this graph (nodes in sorted order).
    pub fn to_raw(&self) -> RawGraph {
        let q = |q: Option<QuantParams>| (q.map(|q| f64::from(q.scale)), q.map(|q| i64::from(q.zero_point)));
        let (in_scale, in_zp) = q(self.input.quant);
        let mut nodes: Vec<RawNode> = self
            .nodes
            .iter()
            .map(|node| {
                let (scale, zero_point) = q(node.quant);
                let mut raw = RawNode {
                    name: node.name.clone(),
                    op: node.op.name().to_string(),
                    inputs: node.inputs.iter().map(|&v| self.value_name(v).to_string()).collect(),
                    scale,
                    zero_point,
                    ..RawNode::default()
                };
                match node.op {
                    Op::Conv2d { stride, padding, relu, groups, dilation } => {
                        raw.dilation = (dilation > 1).then_some(dilation as i64);
                        raw.stride = Some(stride as i64);
                        if padding.is_uniform() {
                            raw.padding = Some(padding.top as i64);
                        } else {
                            let Padding { top, left, bottom, right } = padding;
                            raw.pads = Some([top, left, bottom, right].iter().map(|&p| p as i64).collect());
                        }
                        raw.relu = relu.then_some(true);
                        raw.groups = (groups > 1).then_some(groups as i64);
                    }
                    Op::Dense { relu } | Op::Add { relu } => raw.relu = relu.then_some(true),
                    Op::MaxPool2d(w) | Op::AvgPool2d(w) => {
                        raw.kernel = Some(w.kernel as i64);
                        raw.stride = Some(w.stride as i64);
                        raw.padding = Some(w.padding as i64);
                    }
                    Op::BatchNorm { eps } => raw.eps = Some(f64::from(eps)),
                    Op::Softmax { beta } => raw.beta = (beta != 1.0).then_some(f64::from(beta)),
                    Op::Unary(u) => u.write_attributes(&mut raw),
                    _ => {}
                }
                raw
            })
            .collect();
        let output = if self.softmax_output {
            let logits_name = self.value_name(self.logits).to_string();
            let softmax = nodes.iter().find(|n| n.op == "softmax").map(|n| n.name.clone());
            softmax.or(Some(logits_name))
        } else {
            Some(self.value_name(self.logits).to_string())
        };
        // Keep a trailing softmax last so the default output rule also holds.
        if let Some(pos) = nodes.iter().position(|n| n.op == "softmax") {
            let softmax = nodes.remove(pos);
            nodes.push(softmax);
        }
        RawGraph {
            format: FORMAT_VERSION,
            dtype: Some(self.dtype.as_str().to_string()),
            input: RawInput {
                channels: self.input.channels as u64,
                height: self.input.height as u64,
                width: self.input.width as u64,
                dtype: (self.input.kind == InputKind::Int8).then(|| "int8".to_string()),
                mean: Some(f64::from(self.input.mean)),
                std: Some(f64::from(self.input.std)),
                scale: in_scale,
                zero_point: in_zp,
            },
            nodes,
            output,
        }
    }
}

fn parse_input(raw: &RawInput, dtype: Dtype) -> Result<InputSpec> {
    let dim = |name: &str, v: u64| -> Result<usize> {
        if v == 0 || v > limits::DIMENSION as u64 {
            return Err(bad_attr(INPUT_NAME, name, format!("is {v}, must be in 1..={}", limits::DIMENSION)));
        }
        Ok(v as usize)
    };
    let channels = dim("channels", raw.channels)?;
    let height = dim("height", raw.height)?;
    let width = dim("width", raw.width)?;
    let mean = raw.mean.unwrap_or(0.0);
    let std = raw.std.unwrap_or(1.0);
    if !mean.is_finite() || mean.abs() > 1e3 {
        return Err(bad_attr(INPUT_NAME, "mean", format!("is {mean}, must be finite")));
    }
    if !(std.is_finite() && std > 1e-6 && std < 1e6) {
        return Err(bad_attr(INPUT_NAME, "std", format!("is {std}, must be finite and > 0")));
    }
    let quant = check_quant("input", raw.scale, raw.zero_point, dtype)?;
    let kind = match raw.dtype.as_deref() {
        None => InputKind::Pixels,
        Some("int8") if dtype == Dtype::Int8 => InputKind::Int8,
        Some("int8") => return Err(bad_attr(INPUT_NAME, "dtype", "is int8 in a float model")),
        Some(other) => return Err(bad_attr(INPUT_NAME, "dtype", format!("is '{other}', must be 'int8' or absent"))),
    };
    if let (Some(q), InputKind::Pixels) = (quant, kind) {
        // Pixels enter as q = p − 128; the declared scale and zero point must say so.
        let (scale, zero_point) = pixel_quantization(mean as f32, std as f32);
        let close = (q.scale - scale).abs() <= scale * 1e-5;
        if !close || q.zero_point != zero_point {
            return Err(Error::BadQuantization {
                what: "input".into(),
                reason: format!(
                    "pixels enter as p − 128, so scale must be {scale} and zero_point {zero_point} (got {} and {})",
                    q.scale, q.zero_point
                ),
            });
        }
    }
    // u64: the product of three dimensions can overflow a 32-bit usize.
    let elements = (channels as u64) * (height as u64) * (width as u64);
    if elements > limits::ELEMENTS as u64 {
        return Err(Error::LimitExceeded { what: "input elements", value: elements, limit: limits::ELEMENTS as u64 });
    }
    Ok(InputSpec { channels, height, width, kind, mean: mean as f32, std: std as f32, quant })
}

/// The input quantisation implied by feeding pixels as `q = p − 128`:
/// real = (p/255 − mean)/std = (q − zp)·scale with scale = 1/(255·std), zp = round(255·mean) − 128.
pub fn pixel_quantization(mean: f32, std: f32) -> (f32, i32) {
    let scale = (1.0 / (255.0 * f64::from(std))) as f32;
    let zero_point = libm::round(255.0 * f64::from(mean)) as i32 - 128;
    (scale, zero_point.clamp(-128, 127))
}
