//! A validated network: the graph, every node's parameters resolved from the
//! file (shapes, fixed-point constants, weight ranges), every activation's
//! shape and the arena plan. Backend-neutral: each engine prepares its own
//! layout from a [`Network`] (`engine::Model` for the CPU, `gpu::GpuEngine`).

pub mod file;
pub mod graph;
pub mod limits;
pub mod params;
pub mod plan;
pub mod unary;
pub mod writer;
pub mod zoo;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::kernels::softmax;
use crate::spec::{output_len_padded, Conv2dGeometry, Shape};
use file::TensorFile;
use graph::{Dtype, Graph, Op, Padding, QuantParams};
pub use params::NodeParams;
use params::{load_node_params, TensorSource};
use plan::Plan;

/// A validated network. `B` holds the file's bytes; int8 weights are read
/// from them in place, so `B` can be `Vec<u8>`, `&[u8]`, `Box<[u8]>`, …
#[derive(Debug, Clone)]
pub struct Network<B = Vec<u8>> {
    bytes: B,
    graph: Graph,
    /// Shape of every value: index 0 is the input, `i + 1` node `i`'s output.
    shapes: Vec<Shape>,
    params: Vec<NodeParams>,
    plan: Plan,
}

/// Size and cost of one node, for `inspect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStats {
    pub name: String,
    pub op: &'static str,
    pub output: Shape,
    pub params: usize,
    pub macs: u64,
}

impl<B: AsRef<[u8]>> Network<B> {
    /// Parses and validates a model file, plans its arena.
    pub fn load(bytes: B) -> Result<Self> {
        let (graph, params, shapes) = {
            let file = TensorFile::parse(bytes.as_ref())?;
            let graph = Graph::from_json(file.graph_json())?;
            let mut tensors = TensorSource { file: &file, used: Vec::new() };
            let (params, shapes) = infer(&graph, |_, node, in_shapes, in_quant| {
                load_node_params(&mut tensors, graph.dtype, node, in_shapes, in_quant)
            })?;
            if let Some(extra) = file.names().into_iter().find(|n| !tensors.used.contains(n)) {
                return Err(Error::UnexpectedTensor(extra));
            }
            (graph, params, shapes)
        };
        check_int8_softmax(&graph, &shapes)?;
        let plan = plan_arena(&graph, &shapes)?;
        Ok(Network { bytes, graph, shapes, params, plan })
    }
}

/// An integer softmax output (`Graph::output`) must be one TFLite's kernel computes.
fn check_int8_softmax(graph: &Graph, shapes: &[Shape]) -> Result<()> {
    let Some(node) = graph.output.checked_sub(1).and_then(|i| graph.nodes.get(i)) else { return Ok(()) };
    let (Op::Softmax { beta }, true) = (node.op, graph.output != graph.logits) else { return Ok(()) };
    let depth = shapes[graph.output].c;
    if depth > softmax::MAX_DEPTH {
        return Err(Error::ShapeMismatch {
            node: node.name.clone(),
            reason: format!("an int8 softmax over {depth} channels (at most {})", softmax::MAX_DEPTH),
        });
    }
    let input_scale = match node.inputs[0] {
        0 => graph.input.quant,
        v => graph.nodes[v - 1].quant,
    };
    let input_scale = input_scale.map_or(0.0, |q| q.scale);
    softmax::SoftmaxParams::new(input_scale, beta).map(drop).map_err(|e| match e {
        Error::BadQuantization { what, reason } => {
            Error::BadQuantization { what: format!("node '{}': {what}", node.name), reason }
        }
        other => other,
    })
}

impl Network<Vec<u8>> {
    /// A model built in memory (by the quantiser's graph rewrites); float only,
    /// since int8 weights must live in model bytes.
    #[doc(hidden)] // for the engines, quantiser and tests: not API
    pub fn from_float_parts(graph: Graph, params: Vec<NodeParams>) -> Result<Self> {
        if graph.dtype != Dtype::Float {
            return Err(Error::WrongDtype { expected: "float" });
        }
        if params.len() != graph.nodes.len() {
            return Err(Error::Internal("from_float_parts needs one parameter entry per node"));
        }
        let (params, shapes) = infer(&graph, |i, _, _, _| Ok(params[i].clone()))?;
        let plan = plan_arena(&graph, &shapes)?;
        Ok(Network { bytes: Vec::new(), graph, shapes, params, plan })
    }
}

impl<B: AsRef<[u8]>> Network<B> {
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    pub fn dtype(&self) -> Dtype {
        self.graph.dtype
    }

    #[doc(hidden)] // for the engines, quantiser and tests: not API
    pub fn params(&self) -> &[NodeParams] {
        &self.params
    }

    /// Shape of value `v` (0 = input, i + 1 = node i).
    pub fn shape(&self, value: usize) -> Shape {
        self.shapes[value]
    }

    pub fn input_shape(&self) -> Shape {
        self.shapes[0]
    }

    /// Pixel bytes `run` takes: C·H·W.
    pub fn input_len(&self) -> usize {
        self.shapes[0].len()
    }

    /// Logits `run` writes.
    pub fn output_len(&self) -> usize {
        self.shapes[self.graph.logits].len()
    }

    /// int8 values `run_int8` writes ([`Graph::output`]).
    pub fn int8_output_len(&self) -> usize {
        self.shapes[self.graph.output].len()
    }

    /// Bytes of the arena `run` needs.
    pub fn arena_bytes(&self) -> usize {
        self.plan.arena_bytes + if self.graph.dtype == Dtype::Float { plan::ALIGN } else { 0 }
    }

    #[doc(hidden)] // for the engines, quantiser and tests: not API
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    pub fn bytes(&self) -> &[u8] {
        self.bytes.as_ref()
    }

    /// Quantisation of value `v` (int8 models).
    pub fn quant(&self, value: usize) -> Option<QuantParams> {
        match value {
            0 => self.graph.input.quant,
            v => self.graph.nodes[v - 1].quant,
        }
    }

    /// An int8 weight tensor, borrowed from the model bytes.
    #[doc(hidden)] // for the engines, quantiser and tests: not API
    pub fn int8_weights(&self, range: &core::ops::Range<usize>) -> &[i8] {
        bytemuck::cast_slice(&self.bytes.as_ref()[range.clone()])
    }

    /// Geometry of a conv or pool node.
    #[doc(hidden)] // for the engines, quantiser and tests: not API
    pub fn geometry(&self, node: usize) -> Option<Conv2dGeometry> {
        let n = &self.graph.nodes[node];
        let input = self.shapes[*n.inputs.first()?];
        let output = self.shapes[node + 1];
        match (n.op, &self.params[node]) {
            (
                Op::Conv2d { stride, padding, groups, dilation, .. },
                NodeParams::FloatConv { kernel_h, kernel_w, .. },
            )
            | (Op::Conv2d { stride, padding, groups, dilation, .. }, NodeParams::Int8Conv { kernel_h, kernel_w, .. }) => {
                Some(Conv2dGeometry {
                    input,
                    output,
                    kernel_h: *kernel_h,
                    kernel_w: *kernel_w,
                    stride,
                    pad_top: padding.top,
                    pad_left: padding.left,
                    groups,
                    dilation,
                })
            }
            (Op::MaxPool2d(w) | Op::AvgPool2d(w), _) => Some(Conv2dGeometry {
                input,
                output,
                kernel_h: w.kernel,
                kernel_w: w.kernel,
                stride: w.stride,
                pad_top: w.padding,
                pad_left: w.padding,
                groups: 1,
                dilation: 1,
            }),
            _ => None,
        }
    }

    /// Per-node output shape, parameters and multiply-accumulates.
    pub fn node_stats(&self) -> Vec<NodeStats> {
        self.graph
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let output = self.shapes[i + 1];
                let input = self.shapes[n.inputs[0]];
                let macs = match &self.params[i] {
                    NodeParams::FloatConv { kernel_h, kernel_w, .. }
                    | NodeParams::Int8Conv { kernel_h, kernel_w, .. } => {
                        // u64: on 32-bit targets the product can pass usize::MAX.
                        let groups = match n.op {
                            Op::Conv2d { groups, .. } => groups.max(1),
                            _ => 1,
                        };
                        output.len() as u64 * (input.c / groups * kernel_h * kernel_w) as u64
                    }
                    NodeParams::FloatDense { out_features, .. } | NodeParams::Int8Dense { out_features, .. } => {
                        *out_features as u64 * input.c as u64
                    }
                    _ => 0,
                };
                NodeStats {
                    name: n.name.clone(),
                    op: n.op.name(),
                    output,
                    params: self.params[i].parameter_count(),
                    macs,
                }
            })
            .collect()
    }

    pub fn parameter_count(&self) -> usize {
        self.params.iter().map(NodeParams::parameter_count).sum()
    }

    pub fn macs(&self) -> u64 {
        self.node_stats().iter().map(|s| s.macs).sum()
    }
}

/// Walks the sorted graph, loading each node's parameters and inferring its output shape.
fn infer(
    graph: &Graph,
    mut node_params: impl FnMut(usize, &graph::Node, &[Shape], &[Option<QuantParams>]) -> Result<NodeParams>,
) -> Result<(Vec<NodeParams>, Vec<Shape>)> {
    let input = &graph.input;
    let mut shapes = Vec::with_capacity(graph.nodes.len() + 1);
    shapes.push(Shape::new(input.channels, input.height, input.width));
    let mut quants: Vec<Option<QuantParams>> = Vec::with_capacity(graph.nodes.len() + 1);
    quants.push(input.quant);
    let mut params = Vec::with_capacity(graph.nodes.len());
    for (i, node) in graph.nodes.iter().enumerate() {
        let in_shapes: Vec<Shape> = node.inputs.iter().map(|&v| shapes[v]).collect();
        let in_quant: Vec<Option<QuantParams>> = node.inputs.iter().map(|&v| quants[v]).collect();
        let p = node_params(i, node, &in_shapes, &in_quant)?;
        let shape = output_shape(node, &in_shapes, &p)?;
        let elements = shape.checked_len().unwrap_or(usize::MAX);
        if elements > limits::ELEMENTS || shape.c > limits::DIMENSION {
            return Err(Error::LimitExceeded {
                what: "activation elements",
                value: elements as u64,
                limit: limits::ELEMENTS as u64,
            });
        }
        shapes.push(shape);
        quants.push(node.quant);
        params.push(p);
    }
    Ok((params, shapes))
}

fn output_shape(node: &graph::Node, inputs: &[Shape], params: &NodeParams) -> Result<Shape> {
    let mismatch = |reason: String| Error::ShapeMismatch { node: node.name.clone(), reason };
    let x = inputs[0];
    let window_out = |k_h: usize, k_w: usize, stride: usize, p: Padding| -> Result<Shape> {
        let h = output_len_padded(x.h, k_h, stride, p.top, p.bottom);
        match (h, output_len_padded(x.w, k_w, stride, p.left, p.right)) {
            (Some(h), Some(w)) => Ok(Shape::new(x.c, h, w)),
            _ => {
                let padding = if p.is_uniform() {
                    format!("{}", p.top)
                } else {
                    format!("{}/{}/{}/{} (top/left/bottom/right)", p.top, p.left, p.bottom, p.right)
                };
                Err(mismatch(format!("a {k_h}x{k_w} window with padding {padding} does not fit the {x} input")))
            }
        }
    };
    match (node.op, params) {
        (
            Op::Conv2d { stride, padding, dilation, .. },
            NodeParams::FloatConv { kernel_h, kernel_w, out_channels, .. },
        )
        | (
            Op::Conv2d { stride, padding, dilation, .. },
            NodeParams::Int8Conv { kernel_h, kernel_w, out_channels, .. },
        ) => {
            // A dilated window spans (k − 1)·dilation + 1 input rows/columns (both ≤ limits::WINDOW).
            let extent = |k: usize| (k - 1) * dilation + 1;
            let s = window_out(extent(*kernel_h), extent(*kernel_w), stride, padding)?;
            Ok(Shape::new(*out_channels, s.h, s.w))
        }
        (Op::Dense { .. }, NodeParams::FloatDense { out_features, .. })
        | (Op::Dense { .. }, NodeParams::Int8Dense { out_features, .. }) => Ok(Shape::new(*out_features, 1, 1)),
        (Op::MaxPool2d(w) | Op::AvgPool2d(w), _) => {
            window_out(w.kernel, w.kernel, w.stride, Padding::uniform(w.padding))
        }
        (Op::GlobalAvgPool, _) => Ok(Shape::new(x.c, 1, 1)),
        (Op::Flatten, _) => Ok(Shape::new(x.len(), 1, 1)),
        (Op::Add { .. }, _) => {
            if let Some(other) = inputs.iter().find(|s| **s != x) {
                return Err(mismatch(format!("add inputs differ in shape: {x} and {other}")));
            }
            Ok(x)
        }
        (Op::Concat, _) => {
            if let Some(other) = inputs.iter().find(|s| s.h != x.h || s.w != x.w) {
                return Err(mismatch(format!("concat inputs differ in height/width: {x} and {other}")));
            }
            let channels: usize = inputs.iter().map(|s| s.c).sum();
            Ok(Shape::new(channels, x.h, x.w))
        }
        (Op::BatchNorm { .. } | Op::Unary(_) | Op::Dropout | Op::Softmax { .. }, _) => Ok(x),
        (op, _) => Err(mismatch(format!("{} has no parameters loaded", op.name()))),
    }
}

fn plan_arena(graph: &Graph, shapes: &[Shape]) -> Result<Plan> {
    let element = match graph.dtype {
        Dtype::Float => 4,
        Dtype::Int8 => 1,
    };
    let lifetimes = plan::lifetimes(graph);
    // A softmax after the logits is computed only as an int8 output (`Graph::output`).
    let sizes: Vec<usize> = shapes
        .iter()
        .enumerate()
        .map(|(v, s)| {
            let skipped = v > graph.logits && v != graph.output && matches!(graph.nodes[v - 1].op, Op::Softmax { .. });
            if skipped {
                0
            } else {
                s.len() * element
            }
        })
        .collect();
    let plan = plan::plan(&sizes, &lifetimes);
    if plan.arena_bytes > limits::ARENA_BYTES {
        return Err(Error::LimitExceeded {
            what: "arena bytes",
            value: plan.arena_bytes as u64,
            limit: limits::ARENA_BYTES as u64,
        });
    }
    Ok(plan)
}

/// Reads a model file's graph JSON without validating the tensors (for `import`).
pub fn read_graph_json(bytes: &[u8]) -> Result<String> {
    Ok(TensorFile::parse(bytes)?.graph_json().to_string())
}
