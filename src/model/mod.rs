//! A validated network: the graph, every node's parameters resolved from the
//! file (shapes, fixed-point constants, weight ranges), every activation's
//! shape and the arena plan. Backend-neutral: each engine prepares its own
//! layout from it (`engine` for the CPU, `gpu::GpuEngine`).
//!
//! There is one loader, [`load_in_place`]: it validates a file and writes what
//! the network keeps into memory the caller provides ([`memory::Memory`]), as
//! records that refer to each other by [`Span`]s, never by pointers. The
//! heap-free [`crate::ArenaModel`] keeps those records in the caller's buffer;
//! [`Network`] (with `alloc`) keeps them in a buffer of its own, beside the
//! same network as owned values for the f32 engine, the quantiser and the GPU.

pub mod file;
pub mod graph;
mod json;
pub mod limits;
pub mod memory;
pub mod params;
pub mod parse;
pub mod plan;
mod reals;
mod sort;
pub mod unary;
#[cfg(feature = "alloc")]
pub mod writer;
#[cfg(feature = "alloc")]
pub mod zoo;

#[cfg(feature = "alloc")]
use alloc::string::String;
#[cfg(feature = "alloc")]
use alloc::vec::Vec;

use crate::error::{text, Error, Result};
use crate::kernels::softmax;
use crate::spec::{output_len_padded, Shape};
use file::TensorFile;
use graph::{Dtype, GraphInfo, NodeRecord, Op, QuantParams};
use memory::{Memory, Span, State};
use params::{load_node_params, ParamRecord, ParamSource};
use plan::{Buffer, Lifetime};

#[cfg(feature = "alloc")]
pub use file::read_graph_json;
#[cfg(feature = "alloc")]
use graph::Graph;
#[cfg(feature = "alloc")]
use memory::OwnedState;
#[cfg(feature = "alloc")]
pub use params::NodeParams;
#[cfg(feature = "alloc")]
use plan::Plan;

/// What a load keeps of a network: the graph's scalars and spans of the
/// records in its state (shapes, parameters, arena buffers).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetworkLayout {
    pub graph: GraphInfo,
    /// Shape of every value: index 0 is the input, `i + 1` node `i`'s output.
    pub shapes: Span<Shape>,
    pub params: Span<ParamRecord>,
    /// Each value's bytes in the arena.
    pub buffers: Span<Buffer>,
    /// Bytes of the arena `run` needs.
    pub arena_bytes: usize,
}

/// Validates a model file and writes what the network keeps into `memory`'s
/// front (the load's temporaries go to its back and are released).
///
/// `convolutions_and_adds_in_place`: a convolution whose output is its
/// input's size may be planned over its input (`Conv2dGeometry::in_place_rows`)
/// and an add over one of its inputs, as the engine then runs them: a
/// convolution row after row with a few input rows copied aside, an add a
/// chunk at a time. For a microcontroller's kernels: less memory, a kernel
/// call per output row or chunk.
pub fn load_in_place(bytes: &[u8], memory: &Memory<'_>, convolutions_and_adds_in_place: bool) -> Result<NetworkLayout> {
    // The header is checked first (its errors come before the graph's), and its
    // tensor index made again for the parameters: the index is not in memory
    // beside the graph's parse, the load's peak for a model of small layers.
    let raw = memory.scratch(|scratch| TensorFile::parse(bytes, scratch).map(|file| file.graph_json_raw()))?;
    // A hostile string is refused before its decoded copy is made (it decodes to at most its length).
    let decoded = json::decoded_len(raw);
    if decoded > limits::GRAPH_JSON_BYTES {
        return Err(Error::LimitExceeded {
            what: "graph JSON bytes",
            value: decoded as u64,
            limit: limits::GRAPH_JSON_BYTES as u64,
        });
    }
    // The decoded copy in a scratch of its own: gone once the graph's records are written.
    let graph = memory.scratch(|scratch| {
        let buffer = scratch.alloc(decoded, 0u8)?;
        let json = json::decode_into(raw, buffer)
            .and_then(|len| core::str::from_utf8(&buffer[..len]).ok())
            .ok_or_else(|| Error::NotSafetensors(text!("the graph string has an invalid escape")))?;
        parse::parse_graph(json, memory)
    })?;
    let (shapes, params) = memory.scratch(|scratch| {
        let mut file = TensorFile::parse(bytes, scratch)?;
        let loaded = infer(&graph, &mut file, memory)?;
        match file.first_unused() {
            Some(extra) => Err(Error::UnexpectedTensor(text!("{}", json::Decoded(extra)))),
            None => Ok(loaded),
        }
    })?;
    let nodes = memory.view(graph.nodes);
    check_int8_softmax(&graph, memory, nodes, memory.view(shapes))?;
    let in_place = InPlace { convolutions_and_adds: convolutions_and_adds_in_place, params: memory.view(params) };
    let (buffers, arena_bytes) = plan_arena(&graph, nodes, memory.view(shapes), in_place, memory)?;
    Ok(NetworkLayout { graph, shapes, params, buffers, arena_bytes })
}

/// Walks the sorted graph, loading each node's parameters and inferring its output shape.
// Never inlined, as each stage of a load: inlined into `load_in_place`, its
// frame would stay on the stack under the graph's parse.
#[inline(never)]
fn infer(
    graph: &GraphInfo,
    file: &mut TensorFile<'_, '_>,
    memory: &Memory<'_>,
) -> Result<(Span<Shape>, Span<ParamRecord>)> {
    let nodes = memory.view(graph.nodes);
    let input = &graph.input;
    // A value's quantisation: the input's, or the node's that makes it.
    let quant = |v: usize| if v == 0 { input.quant } else { nodes.get(v - 1).and_then(|n| n.quant) };
    // The parameter records go straight into the front, whatever they keep
    // (multipliers the file does not store) behind them.
    let mut params = Span::EMPTY;
    let shapes = memory.persistent_with(nodes.len() + 1, Shape::new(0, 0, 0), |shapes| {
        shapes[0] = Shape::new(input.channels, input.height, input.width);
        params = memory.persistent_with(nodes.len(), ParamRecord::None, |params| {
            for (i, (node, record)) in nodes.iter().zip(params.iter_mut()).enumerate() {
                let name = node_name(memory, node);
                let (mut in_shapes, mut in_quant) =
                    ([Shape::new(0, 0, 0); limits::OP_INPUTS], [None; limits::OP_INPUTS]);
                for (k, v) in node.inputs.iter().enumerate() {
                    in_shapes[k] = shapes[v];
                    in_quant[k] = quant(v);
                }
                let k = node.inputs.len();
                let mut source = ParamSource { file: &mut *file, memory, name };
                *record = load_node_params(&mut source, graph.dtype, node, &in_shapes[..k], &in_quant[..k])?;
                let shape = output_shape(name, node.op, &in_shapes[..k], weight_dims(record))?;
                let elements = shape.checked_len().unwrap_or(usize::MAX);
                if elements > limits::ELEMENTS || shape.c > limits::DIMENSION {
                    return Err(Error::LimitExceeded {
                        what: "activation elements",
                        value: elements as u64,
                        limit: limits::ELEMENTS as u64,
                    });
                }
                shapes[i + 1] = shape;
            }
            Ok(())
        })?;
        Ok(())
    })?;
    Ok((shapes, params))
}

/// A node's name, from a load under way.
fn node_name<'m>(memory: &'m Memory<'_>, node: &NodeRecord) -> &'m str {
    core::str::from_utf8(memory.view(node.name)).unwrap_or("?")
}

/// (kernel_h, kernel_w, output channels) of a conv or dense layer's weights.
fn weight_dims(params: &ParamRecord) -> Option<(usize, usize, usize)> {
    match *params {
        ParamRecord::FloatConv { kernel_h, kernel_w, out_channels, .. }
        | ParamRecord::Int8Conv { kernel_h, kernel_w, out_channels, .. } => {
            Some((kernel_h.into(), kernel_w.into(), out_channels))
        }
        ParamRecord::FloatDense { out_features, .. } | ParamRecord::Int8Dense { out_features, .. } => {
            Some((1, 1, out_features))
        }
        _ => None,
    }
}

/// A node's output shape from its inputs' and, for conv and dense, its weights' (`weights`: kh, kw, out).
#[inline(never)]
fn output_shape(name: &str, op: Op, inputs: &[Shape], weights: Option<(usize, usize, usize)>) -> Result<Shape> {
    let mismatch = |reason| Error::ShapeMismatch { node: text!("{name}"), reason };
    let x = inputs[0];
    // `[top, left, bottom, right]`: a pool's are one usize, a conv's `Padding` bytes.
    let window_out = |k_h: usize, k_w: usize, stride: usize, [top, left, bottom, right]: [usize; 4]| {
        let h = output_len_padded(x.h, k_h, stride, top, bottom);
        match (h, output_len_padded(x.w, k_w, stride, left, right)) {
            (Some(h), Some(w)) => Ok(Shape::new(x.c, h, w)),
            _ if [left, bottom, right] == [top; 3] => {
                Err(mismatch(text!("a {k_h}x{k_w} window with padding {top} does not fit the {x} input")))
            }
            _ => Err(mismatch(text!(
                "a {k_h}x{k_w} window with padding {top}/{left}/{bottom}/{right} (top/left/bottom/right) \
                 does not fit the {x} input"
            ))),
        }
    };
    match (op, weights) {
        (Op::Conv2d { stride, padding, dilation, .. }, Some((kernel_h, kernel_w, out_channels))) => {
            // A dilated window spans (k − 1)·dilation + 1 input rows/columns (both ≤ limits::WINDOW).
            let extent = |k: usize| (k - 1) * usize::from(dilation) + 1;
            let pads = [padding.top, padding.left, padding.bottom, padding.right].map(usize::from);
            let s = window_out(extent(kernel_h), extent(kernel_w), stride.into(), pads)?;
            Ok(Shape::new(out_channels, s.h, s.w))
        }
        (Op::Dense { .. }, Some((_, _, out_features))) => Ok(Shape::new(out_features, 1, 1)),
        (Op::MaxPool2d(w) | Op::AvgPool2d(w), _) => window_out(w.kernel, w.kernel, w.stride, [w.padding; 4]),
        (Op::GlobalAvgPool, _) => Ok(Shape::new(x.c, 1, 1)),
        (Op::Flatten, _) => Ok(Shape::new(x.len(), 1, 1)),
        (Op::Add { .. }, _) => {
            if let Some(other) = inputs.iter().find(|s| **s != x) {
                return Err(mismatch(text!("add inputs differ in shape: {x} and {other}")));
            }
            Ok(x)
        }
        (Op::Concat, _) => {
            if let Some(other) = inputs.iter().find(|s| s.h != x.h || s.w != x.w) {
                return Err(mismatch(text!("concat inputs differ in height/width: {x} and {other}")));
            }
            let channels: usize = inputs.iter().map(|s| s.c).sum();
            Ok(Shape::new(channels, x.h, x.w))
        }
        (Op::BatchNorm { .. } | Op::Unary(_) | Op::Dropout | Op::Softmax { .. }, _) => Ok(x),
        (op, _) => Err(mismatch(text!("{} has no parameters loaded", op.name()))),
    }
}

/// An integer softmax output (`GraphInfo::output`) must be one TFLite's kernel computes.
// Never inlined, as each stage of a load (see `infer`).
#[inline(never)]
fn check_int8_softmax(graph: &GraphInfo, memory: &Memory<'_>, nodes: &[NodeRecord], shapes: &[Shape]) -> Result<()> {
    let Some(node) = graph.output.checked_sub(1).and_then(|i| nodes.get(i)) else { return Ok(()) };
    let (Op::Softmax { beta }, true) = (node.op, graph.output != graph.logits) else { return Ok(()) };
    let name = node_name(memory, node);
    let depth = shapes[graph.output].c;
    if depth > softmax::MAX_DEPTH {
        return Err(Error::ShapeMismatch {
            node: text!("{name}"),
            reason: text!("an int8 softmax over {depth} channels (at most {})", softmax::MAX_DEPTH),
        });
    }
    let input_scale = match node.inputs.first() {
        0 => graph.input.quant,
        v => nodes[v - 1].quant,
    };
    let input_scale = input_scale.map_or(0.0, |q| q.scale);
    softmax::SoftmaxParams::new(input_scale, beta).map(drop).map_err(|e| match e {
        Error::BadQuantization { what, reason } => {
            Error::BadQuantization { what: text!("node '{name}': {what}"), reason }
        }
        other => other,
    })
}

/// Bytes of each value in the arena.
fn value_size(
    graph_dtype: Dtype,
    logits: usize,
    output: usize,
    op_before: Option<Op>,
    v: usize,
    shape: Shape,
) -> usize {
    // A softmax after the logits is computed only as an int8 output (`GraphInfo::output`).
    let skipped = v > logits && v != output && matches!(op_before, Some(Op::Softmax { .. }));
    let element = match graph_dtype {
        Dtype::Float => 4,
        Dtype::Int8 => 1,
    };
    if skipped {
        0
    } else {
        shape.len() * element
    }
}

/// What `plan_arena` may run in place besides element-wise ops.
#[derive(Clone, Copy)]
struct InPlace<'a> {
    convolutions_and_adds: bool,
    params: &'a [ParamRecord],
}

/// Every value's bytes in the arena: value v at `buffers[v]`, then one scratch
/// buffer for each convolution run in place (its copied input rows), in node
/// order. Where running convolutions and adds in place would not make the arena
/// smaller, the plan without them.
fn plan_arena(
    graph: &GraphInfo,
    nodes: &[NodeRecord],
    shapes: &[Shape],
    in_place: InPlace<'_>,
    memory: &Memory<'_>,
) -> Result<(Span<Buffer>, usize)> {
    let values = nodes.len() + 1;
    // Room for a scratch buffer per node; `placed` are those in use.
    let room = values + nodes.len();
    memory.scratch(|scratch| {
        let sizes = scratch.alloc(room, 0usize)?;
        for (v, size) in sizes[..values].iter_mut().enumerate() {
            let op_before = v.checked_sub(1).map(|i| nodes[i].op);
            *size = value_size(graph.dtype, graph.logits, graph.output, op_before, v, shapes[v]);
        }
        let lifetimes = scratch.alloc(room, Lifetime { first: 0, last: 0 })?;
        plan::fill_lifetimes(&mut lifetimes[..values], nodes.iter().map(|n| n.inputs.iter()), graph.logits);
        // An int8 relu, clamp or flatten may run in its input's bytes (the engine
        // does where the planner grants it): a ReLU6 that TFLite fused into a conv
        // then costs no second buffer. With `convolutions_and_adds`, so may an add
        // and a convolution (its copied rows in a scratch buffer of their own).
        let shares = scratch.alloc(room, plan::OWN)?;
        // The element-wise requests alone: the plan without the rest, kept where that needs no more.
        let element_wise = scratch.alloc(values, plan::OWN)?;
        let mut placed = values;
        let int8 = graph.dtype == Dtype::Int8;
        let read_after_the_run = |u: usize| u == graph.logits || u == graph.output;
        for (i, node) in nodes.iter().enumerate().filter(|_| int8) {
            let v = i + 1;
            if let (Op::Add { .. }, true) = (node.op, in_place.convolutions_and_adds) {
                // An add may be made in any input's bytes that it reads last.
                let mut inputs = node.inputs.iter().filter(|&u| !read_after_the_run(u));
                if let Some(u) = inputs.find(|&u| plan::may_share(sizes, lifetimes, u, v)) {
                    shares[v] = u as u32;
                }
                continue;
            }
            let input = node.inputs.first();
            if node.inputs.len() != 1 || read_after_the_run(input) {
                continue;
            }
            if matches!(node.op, Op::Unary(_) | Op::Flatten | Op::Dropout) {
                shares[v] = input as u32;
                element_wise[v] = input as u32;
                continue;
            }
            let geometry = conv_geometry(node.op, shapes[input], shapes[v], in_place.params.get(i));
            let held_rows = geometry.and_then(|g| g.in_place_rows()).filter(|_| in_place.convolutions_and_adds);
            if let Some(rows) = held_rows.filter(|_| plan::may_share(sizes, lifetimes, input, v)) {
                shares[v] = input as u32;
                sizes[placed] = rows * shapes[input].w * shapes[input].c;
                lifetimes[placed] = Lifetime { first: v, last: v };
                placed += 1;
            }
        }
        let beyond_element_wise = shares[..values] != element_wise[..];
        let plain_lifetimes = scratch.alloc(values, Lifetime { first: 0, last: 0 })?;
        plain_lifetimes.copy_from_slice(&lifetimes[..values]);
        let order = scratch.alloc(placed, 0u32)?;
        let layout = scratch.alloc(placed, Buffer::default())?;
        let (sizes, shares) = (&sizes[..placed], &mut shares[..placed]);
        let mut arena_bytes = plan::place(sizes, &mut lifetimes[..placed], shares, order, layout);
        // The engine gives the k-th convolution it finds over its input the k-th
        // scratch buffer: every one asked for must have been granted (`may_share` said so).
        let granted =
            nodes.iter().enumerate().filter(|&(i, n)| matches!(n.op, Op::Conv2d { .. }) && shares[i + 1] != plan::OWN);
        if granted.count() != placed - values {
            return Err(Error::Internal("a convolution in place was not granted its input's bytes"));
        }
        let (mut kept, mut plain_bytes) = (placed, arena_bytes);
        if beyond_element_wise {
            // A convolution's copied rows can outweigh what running it in place saves.
            let plain = scratch.alloc(values, Buffer::default())?;
            plain_bytes = plan::place(&sizes[..values], plain_lifetimes, element_wise, &mut order[..values], plain);
            if plain_bytes <= arena_bytes {
                layout[..values].copy_from_slice(plain);
                (arena_bytes, kept) = (plain_bytes, values);
            }
        }
        // The limit holds for the plan every load makes (element-wise ops alone in
        // place): a file is refused or accepted alike by each load and kernel set.
        if plain_bytes > limits::ARENA_BYTES {
            return Err(Error::LimitExceeded {
                what: "arena bytes",
                value: plain_bytes as u64,
                limit: limits::ARENA_BYTES as u64,
            });
        }
        Ok((memory.persist(&layout[..kept])?, arena_bytes))
    })
}

/// A conv node's geometry (None for any other node).
fn conv_geometry(
    op: Op,
    input: Shape,
    output: Shape,
    params: Option<&ParamRecord>,
) -> Option<crate::spec::Conv2dGeometry> {
    match params? {
        ParamRecord::Int8Conv { kernel_h, kernel_w, .. } => {
            geometry(op, input, output, Some(((*kernel_h).into(), (*kernel_w).into())))
        }
        _ => None,
    }
}

/// Size and cost of one node, for `inspect`.
#[cfg(feature = "alloc")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStats {
    pub name: String,
    pub op: &'static str,
    pub output: Shape,
    pub params: usize,
    pub macs: u64,
}

/// A validated network. `B` holds the file's bytes; int8 weights are read
/// from them in place, so `B` can be `Vec<u8>`, `&[u8]`, `Box<[u8]>`, …
#[cfg(feature = "alloc")]
#[derive(Debug, Clone)]
pub struct Network<B = Vec<u8>> {
    bytes: B,
    /// What the load kept, in a buffer of the network's own.
    state: OwnedState,
    layout: NetworkLayout,
    // The same, as owned values.
    graph: Graph,
    shapes: Vec<Shape>,
    params: Vec<NodeParams>,
    plan: Plan,
}

#[cfg(feature = "alloc")]
impl<B: AsRef<[u8]>> Network<B> {
    /// Parses and validates a model file, plans its arena.
    pub fn load(bytes: B) -> Result<Self> {
        let file = bytes.as_ref();
        let (layout, state) = OwnedState::load(memory_estimate(file), |memory| load_in_place(file, memory, false))?;
        let s = state.state();
        let graph = Graph::from_state(&layout.graph, s);
        let params = s
            .get(layout.params)
            .iter()
            .zip(&graph.nodes)
            .map(|(record, node)| NodeParams::from_record(record, node.op, s, file))
            .collect();
        let plan = Plan {
            buffers: s.get(layout.buffers).iter().map(|b| b.range()).collect(),
            arena_bytes: layout.arena_bytes,
        };
        let shapes = s.get(layout.shapes).to_vec();
        Ok(Network { bytes, state, layout, graph, shapes, params, plan })
    }
}

/// Bytes a load of `file` likely needs (a first guess: a load that needs more
/// is run again with what it asked for).
#[cfg(feature = "alloc")]
fn memory_estimate(file: &[u8]) -> usize {
    (16 << 10) + file.len() / 4
}

#[cfg(feature = "alloc")]
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
        let input = &graph.input;
        let mut shapes = Vec::with_capacity(graph.nodes.len() + 1);
        shapes.push(Shape::new(input.channels, input.height, input.width));
        for (node, p) in graph.nodes.iter().zip(&params) {
            let in_shapes: Vec<Shape> = node.inputs.iter().map(|&v| shapes[v]).collect();
            let weights = match p {
                NodeParams::FloatConv { kernel_h, kernel_w, out_channels, .. } => {
                    Some((*kernel_h, *kernel_w, *out_channels))
                }
                NodeParams::FloatDense { out_features, .. } => Some((1, 1, *out_features)),
                _ => None,
            };
            shapes.push(output_shape(&node.name, node.op, &in_shapes, weights)?);
        }
        let sizes: Vec<usize> = shapes
            .iter()
            .enumerate()
            .map(|(v, &s)| {
                let op_before = v.checked_sub(1).map(|i| graph.nodes[i].op);
                value_size(graph.dtype, graph.logits, graph.output, op_before, v, s)
            })
            .collect();
        let plan = plan::plan(&sizes, &plan::lifetimes(&graph));
        if plan.arena_bytes > limits::ARENA_BYTES {
            return Err(Error::LimitExceeded {
                what: "arena bytes",
                value: plan.arena_bytes as u64,
                limit: limits::ARENA_BYTES as u64,
            });
        }
        // No file: the state holds nothing (the f32 engine runs from the owned values).
        let layout = NetworkLayout {
            graph: GraphInfo {
                dtype: graph.dtype,
                input: graph.input,
                names: Span::EMPTY,
                nodes: Span::EMPTY,
                logits: graph.logits,
                softmax_output: graph.softmax_output,
                output: graph.output,
            },
            shapes: Span::EMPTY,
            params: Span::EMPTY,
            buffers: Span::EMPTY,
            arena_bytes: plan.arena_bytes,
        };
        Ok(Network { bytes: Vec::new(), state: OwnedState::empty(), layout, graph, shapes, params, plan })
    }
}

#[cfg(feature = "alloc")]
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

    /// What the load kept, and where (the CPU engine's preparation reads these).
    #[doc(hidden)] // for the engines and tests: not API
    pub fn layout(&self) -> (&OwnedState, &NetworkLayout) {
        (&self.state, &self.layout)
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
    pub fn geometry(&self, node: usize) -> Option<crate::spec::Conv2dGeometry> {
        let n = &self.graph.nodes[node];
        let input = self.shapes[*n.inputs.first()?];
        let weights = match &self.params[node] {
            NodeParams::FloatConv { kernel_h, kernel_w, .. } | NodeParams::Int8Conv { kernel_h, kernel_w, .. } => {
                Some((*kernel_h, *kernel_w))
            }
            _ => None,
        };
        geometry(n.op, input, self.shapes[node + 1], weights)
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
                NodeStats {
                    name: n.name.clone(),
                    op: n.op.name(),
                    output,
                    params: self.params[i].parameter_count(),
                    macs: macs(n.op, &self.params[i], input, output),
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

/// Multiply-accumulates of a conv or dense node.
#[cfg(feature = "alloc")]
fn macs(op: Op, params: &NodeParams, input: Shape, output: Shape) -> u64 {
    match params {
        NodeParams::FloatConv { kernel_h, kernel_w, .. } | NodeParams::Int8Conv { kernel_h, kernel_w, .. } => {
            // u64: on 32-bit targets the product can pass usize::MAX.
            let groups = match op {
                Op::Conv2d { groups, .. } => groups.max(1) as usize,
                _ => 1,
            };
            output.len() as u64 * (input.c / groups * kernel_h * kernel_w) as u64
        }
        NodeParams::FloatDense { out_features, .. } | NodeParams::Int8Dense { out_features, .. } => {
            *out_features as u64 * input.c as u64
        }
        _ => 0,
    }
}

/// The window geometry of a conv (its kernel `weights`: kh, kw) or pool node.
pub fn geometry(
    op: Op,
    input: Shape,
    output: Shape,
    weights: Option<(usize, usize)>,
) -> Option<crate::spec::Conv2dGeometry> {
    match (op, weights) {
        (Op::Conv2d { stride, padding, groups, dilation, .. }, Some((kernel_h, kernel_w))) => {
            Some(crate::spec::Conv2dGeometry {
                input,
                output,
                kernel_h,
                kernel_w,
                stride: stride.into(),
                pad_top: padding.top.into(),
                pad_left: padding.left.into(),
                groups: groups as usize,
                dilation: dilation.into(),
            })
        }
        (Op::MaxPool2d(w) | Op::AvgPool2d(w), _) => Some(crate::spec::Conv2dGeometry {
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

/// The network as a heap-free load keeps it: its layout, read from a state.
#[derive(Debug, Clone, Copy)]
pub struct NetworkView<'s> {
    pub state: State<'s>,
    pub layout: &'s NetworkLayout,
}

impl<'s> NetworkView<'s> {
    pub fn nodes(&self) -> &'s [NodeRecord] {
        self.state.get(self.layout.graph.nodes)
    }

    pub fn shapes(&self) -> &'s [Shape] {
        self.state.get(self.layout.shapes)
    }

    pub fn params(&self) -> &'s [ParamRecord] {
        self.state.get(self.layout.params)
    }

    pub fn buffers(&self) -> &'s [Buffer] {
        self.state.get(self.layout.buffers)
    }

    pub fn graph(&self) -> &'s GraphInfo {
        &self.layout.graph
    }

    /// Quantisation of value `v`.
    pub fn quant(&self, value: usize) -> Option<QuantParams> {
        match value {
            0 => self.layout.graph.input.quant,
            v => self.nodes().get(v - 1).and_then(|n| n.quant),
        }
    }

    pub fn shape(&self, value: usize) -> Shape {
        self.shapes().get(value).copied().unwrap_or(Shape::new(0, 0, 0))
    }

    /// Geometry of a conv or pool node.
    pub fn geometry(&self, node: usize) -> Option<crate::spec::Conv2dGeometry> {
        let n = self.nodes().get(node)?;
        let weights = match self.params().get(node)? {
            ParamRecord::FloatConv { kernel_h, kernel_w, .. } | ParamRecord::Int8Conv { kernel_h, kernel_w, .. } => {
                Some(((*kernel_h).into(), (*kernel_w).into()))
            }
            _ => None,
        };
        geometry(n.op, self.shape(n.inputs.first()), self.shape(node + 1), weights)
    }
}
