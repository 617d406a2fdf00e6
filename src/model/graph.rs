//! The graph's vocabulary (ops, attributes, quantisation), the node records a
//! load keeps (`parse.rs` reads the JSON into them), and, with `alloc`, the
//! graph as owned values and the JSON form that writers produce.
//!
//! This module knows nothing of tensors; shapes are inferred in `mod.rs`
//! once the weights are known.

#[cfg(feature = "alloc")]
use alloc::string::{String, ToString};
#[cfg(feature = "alloc")]
use alloc::vec::Vec;
#[cfg(feature = "alloc")]
use serde::{Deserialize, Serialize};

use super::limits;
#[cfg(feature = "alloc")]
use super::memory::OwnedState;
use super::memory::{Span, State};
#[cfg(feature = "alloc")]
use super::parse::parse_graph;
pub use super::unary::Unary;
#[cfg(feature = "alloc")]
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
/// Bytes, as the conv's stride and dilation: the format caps them at
/// [`limits::WINDOW`], and a load keeps one `Op` per node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Padding {
    pub top: u8,
    pub left: u8,
    pub bottom: u8,
    pub right: u8,
}

const _: () = assert!(limits::WINDOW <= u8::MAX as usize);

impl Padding {
    pub const fn uniform(p: u8) -> Padding {
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
        stride: u8,
        padding: Padding,
        relu: bool,
        groups: u32,
        dilation: u8,
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
#[derive(Debug, Clone, Copy, PartialEq)]
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

/// The value ids a node reads (0 the input, `i + 1` node i's output), at most
/// [`limits::OP_INPUTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Inputs {
    ids: [u16; limits::OP_INPUTS],
    len: u8,
}

impl Inputs {
    /// Adds a value id (beyond [`limits::OP_INPUTS`] ids, which the parser refuses, nothing).
    pub fn push(&mut self, value: u16) {
        if let Some(slot) = self.ids.get_mut(usize::from(self.len)) {
            *slot = value;
            self.len += 1;
        }
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Each value id replaced by `f`'s (the parser's: listed order to sorted order).
    pub(crate) fn remap(&mut self, f: impl Fn(u16) -> u16) {
        for id in &mut self.ids[..usize::from(self.len)] {
            *id = f(*id);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first input (every op has one).
    pub fn first(&self) -> usize {
        usize::from(self.ids[0])
    }

    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.ids[..self.len()].iter().map(|&v| usize::from(v))
    }
}

/// A node of the sorted graph as a load keeps it: its name (in the state's
/// name pool), op, inputs and output quantisation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeRecord {
    pub name: Span<u8>,
    pub op: Op,
    pub inputs: Inputs,
    /// Output quantisation (int8 files).
    pub quant: Option<QuantParams>,
}

/// The sorted graph as a load keeps it: the node records in a state, the rest here.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GraphInfo {
    pub dtype: Dtype,
    pub input: InputSpec,
    /// Every node name, decoded, back to back.
    pub names: Span<u8>,
    pub nodes: Span<NodeRecord>,
    /// Value id of the logits (the softmax's input when the output is a softmax).
    pub logits: usize,
    /// Whether the graph's declared output is a softmax over the logits.
    pub softmax_output: bool,
    /// Value id of the network's int8 output ([`Graph::output`]).
    pub output: usize,
}

impl GraphInfo {
    /// A node's name, from the state the load filled.
    pub fn name<'s>(&self, state: State<'s>, node: &NodeRecord) -> &'s str {
        core::str::from_utf8(state.get(node.name)).unwrap_or("?")
    }
}

/// A node of the sorted graph. Value ids: 0 is the input, `i + 1` is node `i`'s output.
#[cfg(feature = "alloc")]
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: String,
    pub op: Op,
    pub inputs: Vec<usize>,
    /// Output quantisation (int8 files).
    pub quant: Option<QuantParams>,
}

/// A validated, topologically sorted graph.
#[cfg(feature = "alloc")]
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

#[cfg(feature = "alloc")]
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

/// The graph exactly as it appears in the JSON: what writers build (the
/// quantiser, the importers, `tinycnn import --graph`).
#[cfg(feature = "alloc")]
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

#[cfg(feature = "alloc")]
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

#[cfg(feature = "alloc")]
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

#[cfg(feature = "alloc")]
impl RawGraph {
    /// Reads graph JSON as written (no checks: [`Graph::from_raw`] makes them).
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

#[cfg(feature = "alloc")]
impl Graph {
    /// Parses and validates graph JSON.
    pub fn from_json(json: &str) -> Result<Graph> {
        let (info, state) = OwnedState::load(4096 + 2 * json.len(), |memory| parse_graph(json, memory))?;
        Ok(Graph::from_state(&info, state.state()))
    }

    /// Validates a raw graph: names, ops, attributes, quantisation fields, order.
    pub fn from_raw(raw: &RawGraph) -> Result<Graph> {
        Graph::from_json(&raw.to_json())
    }

    /// The owned form of a loaded graph.
    pub fn from_state(info: &GraphInfo, state: State<'_>) -> Graph {
        let nodes = state
            .get(info.nodes)
            .iter()
            .map(|node| Node {
                name: info.name(state, node).to_string(),
                op: node.op,
                inputs: node.inputs.iter().collect(),
                quant: node.quant,
            })
            .collect();
        Graph {
            dtype: info.dtype,
            input: info.input,
            nodes,
            logits: info.logits,
            softmax_output: info.softmax_output,
            output: info.output,
        }
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

/// The input quantisation implied by feeding pixels as `q = p − 128`:
/// real = (p/255 − mean)/std = (q − zp)·scale with scale = 1/(255·std), zp = round(255·mean) − 128.
pub fn pixel_quantization(mean: f32, std: f32) -> (f32, i32) {
    let scale = (1.0 / (255.0 * f64::from(std))) as f32;
    let zero_point = libm::round(255.0 * f64::from(mean)) as i32 - 128;
    (scale, zero_point.clamp(-128, 127))
}
