//! The graph JSON of docs/FORMAT.md, read in place: parsed by `serde-json-core`
//! straight from the text (strings borrowed, never copied onto a heap), every
//! name, op, attribute and quantisation field checked, the nodes sorted
//! topologically and written as [`NodeRecord`]s into the caller's memory.
//! The parse's own tables (each node's name as written, op, inputs and
//! quantisation, the names in order, the sort) live in scratch memory and are
//! gone when it returns; the text is read once per stage rather than kept as
//! whole nodes.

use core::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::graph::{
    pixel_quantization, Dtype, GraphInfo, InputKind, InputSpec, Inputs, NodeRecord, Op, Padding, QuantParams, Unary,
    Window, FORMAT_VERSION, INPUT_NAME, SOFTMAX_INT8_OUTPUT,
};
use super::json::{self, Decoded};
use super::limits;
use super::memory::{Memory, Scratch, Span};
use super::reals::{self, RealAt, Reals};
use super::sort::sort;
use crate::error::{text, Error, Real, Result};

/// A node exactly as the JSON gives it; strings as written (escapes not decoded).
#[derive(Debug, Clone, Copy)]
pub struct NodeJson<'a> {
    pub name: &'a str,
    pub op: &'a str,
    pub inputs: Names<'a>,
    pub kernel: Option<i64>,
    pub stride: Option<i64>,
    pub padding: Option<i64>,
    /// conv2d padding per side, [top, left, bottom, right] (ONNX's `pads`); instead of `padding`.
    pub pads: Option<Pads>,
    pub relu: Option<bool>,
    pub eps: Option<RealAt>,
    pub p: Option<RealAt>,
    pub groups: Option<i64>,
    pub dilation: Option<i64>,
    pub min: Option<RealAt>,
    pub max: Option<RealAt>,
    /// softmax's inverse temperature (TFLite's `beta`).
    pub beta: Option<RealAt>,
    pub scale: Option<RealAt>,
    pub zero_point: Option<i64>,
}

impl NodeJson<'_> {
    /// Its real-number attributes, present or not.
    fn reals(&self) -> [Option<RealAt>; 6] {
        [self.eps, self.p, self.min, self.max, self.beta, self.scale]
    }
}

const EMPTY_NODE: NodeJson<'static> = NodeJson {
    name: "",
    op: "",
    inputs: Names { names: [""; limits::OP_INPUTS], count: 0 },
    kernel: None,
    stride: None,
    padding: None,
    pads: None,
    relu: None,
    eps: None,
    p: None,
    groups: None,
    dilation: None,
    min: None,
    max: None,
    beta: None,
    scale: None,
    zero_point: None,
};

/// A node's `inputs`: the first [`limits::OP_INPUTS`] names, and how many there were.
#[derive(Debug, Clone, Copy)]
pub struct Names<'a> {
    names: [&'a str; limits::OP_INPUTS],
    count: usize,
}

impl<'a> Names<'a> {
    fn kept(&self) -> &[&'a str] {
        &self.names[..self.count.min(limits::OP_INPUTS)]
    }
}

/// `pads`: the first four numbers, and how many there were.
#[derive(Debug, Clone, Copy)]
pub struct Pads {
    sides: [i64; 4],
    count: usize,
}

impl<'de: 'a, 'a> Deserialize<'de> for Names<'a> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> core::result::Result<Self, D::Error> {
        struct NamesVisitor;
        impl<'de> Visitor<'de> for NamesVisitor {
            type Value = Names<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of node names")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> core::result::Result<Names<'de>, A::Error> {
                let mut names = Names { names: [""; limits::OP_INPUTS], count: 0 };
                while let Some(name) = seq.next_element::<&'de str>()? {
                    if let Some(slot) = names.names.get_mut(names.count) {
                        *slot = name;
                    }
                    names.count += 1;
                }
                Ok(names)
            }
        }
        deserializer.deserialize_seq(NamesVisitor)
    }
}

impl<'de> Deserialize<'de> for Pads {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> core::result::Result<Self, D::Error> {
        struct PadsVisitor;
        impl<'de> Visitor<'de> for PadsVisitor {
            type Value = Pads;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of paddings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> core::result::Result<Pads, A::Error> {
                let mut pads = Pads { sides: [0; 4], count: 0 };
                while let Some(side) = seq.next_element::<i64>()? {
                    if let Some(slot) = pads.sides.get_mut(pads.count) {
                        *slot = side;
                    }
                    pads.count += 1;
                }
                Ok(pads)
            }
        }
        deserializer.deserialize_seq(PadsVisitor)
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct InputJson<'a> {
    channels: u64,
    height: u64,
    width: u64,
    /// `"int8"`: quantised values, channels last; absent: pixel bytes.
    dtype: Option<&'a str>,
    mean: Option<RealAt>,
    std: Option<RealAt>,
    scale: Option<RealAt>,
    zero_point: Option<i64>,
}

/// The graph object's fields other than its nodes.
struct TopLevel<'a> {
    format: u64,
    dtype: Option<&'a str>,
    input: InputJson<'a>,
    output: Option<&'a str>,
    nodes: usize,
}

/// Parses the graph object, handing each node to `on_node` in listed order.
// One copy (`on_node` is dynamic), never inlined: each caller's own frame then
// stays off the stack under the JSON parse's deepest calls (a number's parse
// alone takes 1.7 KB on a Cortex-M).
#[inline(never)]
fn read<'a>(json: &'a str, on_node: &mut dyn FnMut(&NodeJson<'a>) -> Result<()>) -> Result<TopLevel<'a>> {
    if json.len() > limits::GRAPH_JSON_BYTES {
        return Err(Error::LimitExceeded {
            what: "graph JSON bytes",
            value: json.len() as u64,
            limit: limits::GRAPH_JSON_BYTES as u64,
        });
    }
    let mut failure = None;
    let mut deserializer = serde_json_core::de::Deserializer::new(json.as_bytes(), None);
    let parsed =
        de::Deserializer::deserialize_map(&mut deserializer, TopVisitor { json, on_node, failure: &mut failure });
    if let Some(e) = failure {
        return Err(e);
    }
    let top = parsed.map_err(|e| Error::GraphJson(text!("{e}")))?;
    deserializer.end().map_err(|e| Error::GraphJson(text!("{e}")))?;
    Ok(top)
}

/// Stops the parse for `e`: serde-json-core keeps no message with an error, so
/// the visitors leave theirs here and the parse's own error only unwinds it.
fn fail<E: de::Error>(failure: &mut Option<Error>, e: Error) -> E {
    *failure = Some(e);
    E::custom("")
}

/// Which of `fields` (by index) `key` names, refusing unknown and repeated fields.
fn field<E: de::Error>(
    failure: &mut Option<Error>,
    what: &str,
    fields: &[&str],
    seen: &mut u32,
    key: &str,
) -> core::result::Result<usize, E> {
    let Some(k) = fields.iter().position(|f| json::eq(key, &[f])) else {
        let e = Error::GraphJson(text!("unknown field `{}` in {what} (its fields: {})", Decoded(key), Listed(fields)));
        return Err(fail(failure, e));
    };
    if *seen & (1 << k) != 0 {
        return Err(fail(failure, Error::GraphJson(text!("duplicate field `{}` in {what}", fields[k]))));
    }
    *seen |= 1 << k;
    Ok(k)
}

/// The first field of `fields` (by index, the first `required` of them) that `seen` lacks.
fn missing<E: de::Error>(
    failure: &mut Option<Error>,
    what: &str,
    fields: &[&str],
    required: usize,
    seen: u32,
) -> core::result::Result<(), E> {
    match (0..required).find(|&k| seen & (1 << k) == 0) {
        Some(k) => Err(fail(failure, Error::GraphJson(text!("missing field `{}` in {what}", fields[k])))),
        None => Ok(()),
    }
}

/// A list of field names for a message.
struct Listed<'a>(&'a [&'a str]);

impl fmt::Display for Listed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, name) in self.0.iter().enumerate() {
            write!(f, "{}{name}", if k == 0 { "" } else { ", " })?;
        }
        Ok(())
    }
}

struct TopVisitor<'x, 'de, F> {
    json: &'de str,
    on_node: F,
    failure: &'x mut Option<Error>,
}

/// The graph object's fields; the first three are required.
const TOP_FIELDS: &[&str] = &["format", "input", "nodes", "dtype", "output"];

impl<'de, F: FnMut(&NodeJson<'de>) -> Result<()>> Visitor<'de> for TopVisitor<'_, 'de, F> {
    type Value = TopLevel<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the graph object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> core::result::Result<TopLevel<'de>, A::Error> {
        let mut top = TopLevel { format: 0, dtype: None, input: InputJson::default(), output: None, nodes: 0 };
        let mut seen = 0;
        let mut on_node = self.on_node;
        while let Some(key) = map.next_key::<&'de str>()? {
            match field(self.failure, "the graph", TOP_FIELDS, &mut seen, key)? {
                0 => top.format = map.next_value()?,
                1 => top.input = map.next_value_seed(InputSeed { json: self.json, failure: &mut *self.failure })?,
                2 => {
                    let nodes = NodesSeed { json: self.json, on_node: &mut on_node, failure: &mut *self.failure };
                    top.nodes = map.next_value_seed(nodes)?
                }
                3 => top.dtype = map.next_value()?,
                _ => top.output = map.next_value()?,
            }
        }
        missing(self.failure, "the graph", TOP_FIELDS, 3, seen)?;
        Ok(top)
    }
}

/// `nodes`: each node to the callback as it is read; the count.
struct NodesSeed<'x, 'de, F> {
    json: &'de str,
    on_node: &'x mut F,
    failure: &'x mut Option<Error>,
}

impl<'de, F: FnMut(&NodeJson<'de>) -> Result<()>> DeserializeSeed<'de> for NodesSeed<'_, 'de, F> {
    type Value = usize;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> core::result::Result<usize, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(&NodeJson<'de>) -> Result<()>> Visitor<'de> for NodesSeed<'_, 'de, F> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of nodes")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> core::result::Result<usize, A::Error> {
        // One node, read into and handed over in place: a node is 328 bytes on a
        // 32-bit target, and each copy of it would sit under the parse's deepest calls.
        let mut node = EMPTY_NODE;
        let mut count = 0;
        while let Some(()) =
            seq.next_element_seed(NodeSeed { json: self.json, node: &mut node, failure: &mut *self.failure })?
        {
            count += 1;
            if let Err(e) = (self.on_node)(&node) {
                return Err(fail(self.failure, e));
            }
        }
        Ok(count)
    }
}

/// A node's fields; the first three are required.
const NODE_FIELDS: &[&str] = &[
    "name",
    "op",
    "inputs",
    "kernel",
    "stride",
    "padding",
    "pads",
    "relu",
    "eps",
    "p",
    "groups",
    "dilation",
    "min",
    "max",
    "beta",
    "scale",
    "zero_point",
];

/// Reads a node object into `node`.
struct NodeSeed<'x, 'de> {
    json: &'de str,
    node: &'x mut NodeJson<'de>,
    failure: &'x mut Option<Error>,
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_, 'de> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> core::result::Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a node object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> core::result::Result<(), A::Error> {
        let node = self.node;
        *node = EMPTY_NODE;
        let mut seen = 0;
        while let Some(key) = map.next_key::<&'de str>()? {
            match field(self.failure, "a node", NODE_FIELDS, &mut seen, key)? {
                0 => node.name = map.next_value()?,
                1 => node.op = map.next_value()?,
                2 => node.inputs = map.next_value()?,
                3 => node.kernel = map.next_value()?,
                4 => node.stride = map.next_value()?,
                5 => node.padding = map.next_value()?,
                6 => node.pads = map.next_value()?,
                7 => node.relu = map.next_value()?,
                8 => node.eps = real_field(&mut map, self.json, key, "eps", self.failure)?,
                9 => node.p = real_field(&mut map, self.json, key, "p", self.failure)?,
                10 => node.groups = map.next_value()?,
                11 => node.dilation = map.next_value()?,
                12 => node.min = real_field(&mut map, self.json, key, "min", self.failure)?,
                13 => node.max = real_field(&mut map, self.json, key, "max", self.failure)?,
                14 => node.beta = real_field(&mut map, self.json, key, "beta", self.failure)?,
                15 => node.scale = real_field(&mut map, self.json, key, "scale", self.failure)?,
                _ => node.zero_point = map.next_value()?,
            }
        }
        missing(self.failure, "a node", NODE_FIELDS, 3, seen)?;
        Ok(())
    }
}

/// A real number's field: where its text is. The parser skips the value, and
/// `reals` parses it later, off the reader's stack.
fn real_field<'de, A: MapAccess<'de>>(
    map: &mut A,
    json: &'de str,
    key: &'de str,
    field: &str,
    failure: &mut Option<Error>,
) -> core::result::Result<Option<RealAt>, A::Error> {
    let at = reals::number_after(json, key, field).map_err(|e| fail(failure, e))?;
    map.next_value::<Skipped>()?;
    Ok(at)
}

/// A value the reader skips, once `reals::number_after` found it a number or
/// `null`: serde-json-core passes over such a value's characters without
/// parsing them (`deserialize_ignored_any`), and calls `visit_unit`.
struct Skipped;

impl<'de> Deserialize<'de> for Skipped {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> core::result::Result<Self, D::Error> {
        struct SkippedVisitor;
        impl Visitor<'_> for SkippedVisitor {
            type Value = Skipped;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_unit<E: de::Error>(self) -> core::result::Result<Skipped, E> {
                Ok(Skipped)
            }
        }
        deserializer.deserialize_ignored_any(SkippedVisitor)
    }
}

/// The input's fields; the first three are required.
const INPUT_FIELDS: &[&str] = &["channels", "height", "width", "dtype", "mean", "std", "scale", "zero_point"];

struct InputSeed<'x, 'de> {
    json: &'de str,
    failure: &'x mut Option<Error>,
}

impl<'de> DeserializeSeed<'de> for InputSeed<'_, 'de> {
    type Value = InputJson<'de>;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> core::result::Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for InputSeed<'_, 'de> {
    type Value = InputJson<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the input object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> core::result::Result<InputJson<'de>, A::Error> {
        let mut input = InputJson::default();
        let mut seen = 0;
        while let Some(key) = map.next_key::<&'de str>()? {
            match field(self.failure, "the input", INPUT_FIELDS, &mut seen, key)? {
                0 => input.channels = map.next_value()?,
                1 => input.height = map.next_value()?,
                2 => input.width = map.next_value()?,
                3 => input.dtype = map.next_value()?,
                4 => input.mean = real_field(&mut map, self.json, key, "mean", self.failure)?,
                5 => input.std = real_field(&mut map, self.json, key, "std", self.failure)?,
                6 => input.scale = real_field(&mut map, self.json, key, "scale", self.failure)?,
                _ => input.zero_point = map.next_value()?,
            }
        }
        missing(self.failure, "the input", INPUT_FIELDS, 3, seen)?;
        Ok(input)
    }
}

// ---------------------------------------------------------------------------
// Checks

// Errors are built out of line: their texts' frames are then not on the stack
// of every successful check (a load's, on a microcontroller).
#[cold]
#[inline(never)]
fn bad_attr(node: &str, attribute: &'static str, reason: fmt::Arguments<'_>) -> Error {
    Error::BadAttribute { node: text!("{}", Decoded(node)), attribute, reason: text!("{reason}") }
}

/// A window attribute refused, kept small: the checks' `?`s each hold one on
/// the stack, where whole `Error`s (80–112 bytes each) made the load's
/// deepest frame. [`AttrError::at`] makes the error.
#[derive(Debug, Clone, Copy)]
enum AttrError {
    /// Outside `min..=limits::WINDOW`.
    Range {
        attribute: &'static str,
        value: i64,
        min: usize,
    },
    Required(&'static str),
    PadsAndPadding,
    PadsSides(usize),
    PaddingAboveHalf {
        padding: usize,
        kernel: usize,
    },
    Groups(i64),
}

impl AttrError {
    #[cold]
    #[inline(never)]
    fn at(self, node: &str) -> Error {
        match self {
            AttrError::Range { attribute, value, min } => {
                bad_attr(node, attribute, format_args!("is {value}, must be in {min}..={}", limits::WINDOW))
            }
            AttrError::Required(attribute) => bad_attr(node, attribute, format_args!("is required")),
            AttrError::PadsAndPadding => {
                bad_attr(node, "pads", format_args!("and padding both given; pads alone says every side"))
            }
            AttrError::PadsSides(count) => {
                bad_attr(node, "pads", format_args!("has {count} sides, [top, left, bottom, right] has 4"))
            }
            AttrError::PaddingAboveHalf { padding, kernel } => {
                bad_attr(node, "padding", format_args!("is {padding}, at most kernel/2 = {}", kernel / 2))
            }
            AttrError::Groups(g) => {
                bad_attr(node, "groups", format_args!("is {g}, must be in 1..={}", limits::DIMENSION))
            }
        }
    }
}

/// Reads an optional small non-negative integer attribute.
fn size_attr(
    attribute: &'static str,
    value: Option<i64>,
    default: usize,
    min: usize,
) -> core::result::Result<usize, AttrError> {
    let Some(v) = value else { return Ok(default) };
    if v < min as i64 || v > limits::WINDOW as i64 {
        return Err(AttrError::Range { attribute, value: v, min });
    }
    Ok(v as usize)
}

// A window size that `size_attr` accepts fits the byte a conv keeps it in.
const _: () = assert!(limits::WINDOW <= u8::MAX as usize);

/// `size_attr` for a conv's stride, padding or dilation, which the op keeps as a byte.
fn byte_attr(attribute: &'static str, value: Option<i64>, default: u8, min: u8) -> core::result::Result<u8, AttrError> {
    // At most limits::WINDOW (size_attr), which a byte holds (the assertion above).
    Ok(size_attr(attribute, value, default.into(), min.into())? as u8)
}

fn check_quant(
    what: fmt::Arguments<'_>,
    scale: Option<f64>,
    zero_point: Option<i64>,
    dtype: Dtype,
) -> Result<Option<QuantParams>> {
    match dtype {
        Dtype::Float => {
            if scale.is_some() || zero_point.is_some() {
                return Err(Error::bad_quantization(what, format_args!("scale/zero_point given in a float model")));
            }
            Ok(None)
        }
        Dtype::Int8 => {
            let (Some(scale), Some(zero_point)) = (scale, zero_point) else {
                return Err(Error::bad_quantization(what, format_args!("an int8 model needs scale and zero_point")));
            };
            let scale32 = scale as f32;
            if !(scale32.is_finite() && scale32 > 0.0) {
                return Err(Error::bad_quantization(
                    what,
                    format_args!("scale {} must be finite and > 0", Real::from(scale)),
                ));
            }
            if !(-128..=127).contains(&zero_point) {
                return Err(Error::bad_quantization(
                    what,
                    format_args!("zero_point {zero_point} is outside [-128, 127]"),
                ));
            }
            Ok(Some(QuantParams { scale: scale32, zero_point: zero_point as i32 }))
        }
    }
}

/// A conv's `padding` (every side) or `pads` (each side).
fn conv_padding(node: &NodeJson<'_>) -> core::result::Result<Padding, AttrError> {
    match (node.padding, node.pads) {
        (Some(_), Some(_)) => Err(AttrError::PadsAndPadding),
        (p, None) => Ok(Padding::uniform(byte_attr("padding", p, 0, 0)?)),
        (None, Some(pads)) => {
            if pads.count != 4 {
                return Err(AttrError::PadsSides(pads.count));
            }
            let side = |p: i64| byte_attr("pads", Some(p), 0, 0);
            let [top, left, bottom, right] = pads.sides;
            Ok(Padding { top: side(top)?, left: side(left)?, bottom: side(bottom)?, right: side(right)? })
        }
    }
}

/// A conv's op from its attributes.
fn conv_op(node: &NodeJson<'_>, relu: bool) -> core::result::Result<Op, AttrError> {
    Ok(Op::Conv2d {
        stride: byte_attr("stride", node.stride, 1, 1)?,
        padding: conv_padding(node)?,
        relu,
        groups: match node.groups {
            None => 1,
            Some(g) if (1..=limits::DIMENSION as i64).contains(&g) => g as u32,
            Some(g) => return Err(AttrError::Groups(g)),
        },
        dilation: byte_attr("dilation", node.dilation, 1, 1)?,
    })
}

/// A pool's window from its attributes.
fn window(node: &NodeJson<'_>) -> core::result::Result<Window, AttrError> {
    let kernel = size_attr("kernel", node.kernel, 0, 1)?;
    if node.kernel.is_none() {
        return Err(AttrError::Required("kernel"));
    }
    let stride = size_attr("stride", node.stride, kernel, 1)?;
    let padding = size_attr("padding", node.padding, 0, 0)?;
    if padding > kernel / 2 {
        return Err(AttrError::PaddingAboveHalf { padding, kernel });
    }
    Ok(Window { kernel, stride, padding })
}

/// The op's name as written, decoded into `buffer` (op names are short ASCII words).
fn op_name<'b>(node: &NodeJson<'_>, buffer: &'b mut [u8; 32]) -> &'b str {
    let len = json::decode_into(node.op, buffer).unwrap_or(0);
    core::str::from_utf8(&buffer[..len]).unwrap_or("")
}

fn parse_op(node: &NodeJson<'_>, reals: &Reals<'_>) -> Result<Op> {
    let name = node.name;
    let mut buffer = [0u8; 32];
    let op = op_name(node, &mut buffer);
    let allowed: &[&str] = match op {
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
            None => {
                return Err(Error::UnknownOp { node: text!("{}", Decoded(name)), op: text!("{}", Decoded(node.op)) })
            }
        },
    };
    let given = [
        ("kernel", node.kernel.is_some()),
        ("stride", node.stride.is_some()),
        ("padding", node.padding.is_some()),
        ("pads", node.pads.is_some()),
        ("relu", node.relu.is_some()),
        ("eps", node.eps.is_some()),
        ("p", node.p.is_some()),
        ("groups", node.groups.is_some()),
        ("dilation", node.dilation.is_some()),
        ("min", node.min.is_some()),
        ("max", node.max.is_some()),
        ("beta", node.beta.is_some()),
    ];
    for (attr, present) in given {
        if present && !allowed.contains(&attr) {
            return Err(bad_attr(name, attr, format_args!("is not an attribute of {op}")));
        }
    }
    let relu = node.relu.unwrap_or(false);
    Ok(match op {
        "conv2d" => conv_op(node, relu).map_err(|e| e.at(name))?,
        "dense" => Op::Dense { relu },
        "maxpool2d" => Op::MaxPool2d(window(node).map_err(|e| e.at(name))?),
        "avgpool2d" => Op::AvgPool2d(window(node).map_err(|e| e.at(name))?),
        "global_avgpool" => Op::GlobalAvgPool,
        "batchnorm" => {
            let eps = reals.get(node.eps)?.unwrap_or(1e-5);
            if !(eps.is_finite() && eps > 0.0 && eps < 1.0) {
                return Err(bad_attr(name, "eps", format_args!("is {}, must be in (0, 1)", Real::from(eps))));
            }
            Op::BatchNorm { eps: eps as f32 }
        }
        "dropout" => Op::Dropout,
        "flatten" => Op::Flatten,
        "add" => Op::Add { relu },
        "concat" => Op::Concat,
        "softmax" => {
            let beta = reals.get(node.beta)?.unwrap_or(1.0);
            if !(beta.is_finite() && beta > 0.0 && beta <= 1e6) {
                return Err(bad_attr(
                    name,
                    "beta",
                    format_args!("is {}, must be finite and in (0, 1e6]", Real::from(beta)),
                ));
            }
            Op::Softmax { beta: beta as f32 }
        }
        other => Op::Unary(Unary::parse(other, node, reals)?),
    })
}

fn input_count_ok(op: &Op, n: usize) -> bool {
    match op {
        Op::Add { .. } | Op::Concat => (2..=limits::OP_INPUTS).contains(&n),
        _ => n == 1,
    }
}

/// The input's real numbers, parsed.
#[derive(Clone, Copy)]
struct InputReals {
    mean: Option<f64>,
    std: Option<f64>,
    scale: Option<f64>,
}

impl InputReals {
    // Never inlined: core's parse of each number, from this frame beside the reader's.
    #[inline(never)]
    fn parse(json: &str, raw: &InputJson<'_>) -> Result<InputReals> {
        let parse = |at: Option<RealAt>| at.map(|at| reals::parse(json, at)).transpose();
        Ok(InputReals { mean: parse(raw.mean)?, std: parse(raw.std)?, scale: parse(raw.scale)? })
    }
}

// Never inlined: its checks' frame would sit beside the stages' in `parse_graph`.
#[inline(never)]
fn parse_input(raw: &InputJson<'_>, reals: InputReals, dtype: Dtype) -> Result<InputSpec> {
    let dim = |name: &'static str, v: u64| -> Result<usize> {
        if v == 0 || v > limits::DIMENSION as u64 {
            return Err(bad_attr(INPUT_NAME, name, format_args!("is {v}, must be in 1..={}", limits::DIMENSION)));
        }
        Ok(v as usize)
    };
    let channels = dim("channels", raw.channels)?;
    let height = dim("height", raw.height)?;
    let width = dim("width", raw.width)?;
    let mean = reals.mean.unwrap_or(0.0);
    let std = reals.std.unwrap_or(1.0);
    if !mean.is_finite() || mean.abs() > 1e3 {
        return Err(bad_attr(INPUT_NAME, "mean", format_args!("is {}, must be finite", Real::from(mean))));
    }
    if !(std.is_finite() && std > 1e-6 && std < 1e6) {
        return Err(bad_attr(INPUT_NAME, "std", format_args!("is {}, must be finite and > 0", Real::from(std))));
    }
    let quant = check_quant(format_args!("input"), reals.scale, raw.zero_point, dtype)?;
    let kind = match raw.dtype {
        None => InputKind::Pixels,
        Some(d) if json::eq(d, &["int8"]) && dtype == Dtype::Int8 => InputKind::Int8,
        Some(d) if json::eq(d, &["int8"]) => {
            return Err(bad_attr(INPUT_NAME, "dtype", format_args!("is int8 in a float model")))
        }
        Some(other) => {
            return Err(bad_attr(
                INPUT_NAME,
                "dtype",
                format_args!("is '{}', must be 'int8' or absent", Decoded(other)),
            ))
        }
    };
    if let (Some(q), InputKind::Pixels) = (quant, kind) {
        // Pixels enter as q = p − 128; the declared scale and zero point must say so.
        let (scale, zero_point) = pixel_quantization(mean as f32, std as f32);
        let close = (q.scale - scale).abs() <= scale * 1e-5;
        if !close || q.zero_point != zero_point {
            return Err(Error::bad_quantization(
                format_args!("input"),
                format_args!(
                    "pixels enter as p − 128, so scale must be {} and zero_point {zero_point} (got {} and {})",
                    Real::from(scale),
                    Real::from(q.scale),
                    q.zero_point
                ),
            ));
        }
    }
    // u64: the product of three dimensions can overflow a 32-bit usize.
    let elements = (channels as u64) * (height as u64) * (width as u64);
    if elements > limits::ELEMENTS as u64 {
        return Err(Error::LimitExceeded { what: "input elements", value: elements, limit: limits::ELEMENTS as u64 });
    }
    Ok(InputSpec { channels, height, width, kind, mean: mean as f32, std: std as f32, quant })
}

/// A node's record but its name: op, quantisation, and inputs as listed
/// value ids (0 the network input, k + 1 the node listed k).
// Never inlined: inlined, its frame would sit in `read`'s, under the JSON parse's deepest calls.
#[inline(never)]
fn resolve_node(
    node: &NodeJson<'_>,
    dtype: Dtype,
    listed_index: &dyn Fn(&str) -> Option<usize>,
    reals: &Reals<'_>,
    record: &mut NodeRecord,
) -> Result<()> {
    let op = parse_op(node, reals)?;
    let count = node.inputs.count;
    if !input_count_ok(&op, count) {
        return Err(Error::ShapeMismatch {
            node: text!("{}", Decoded(node.name)),
            reason: text!(
                "{} takes {} inputs, got {count}",
                op.name(),
                if matches!(op, Op::Add { .. } | Op::Concat) { "2 to 8" } else { "1" },
            ),
        });
    }
    let mut inputs = Inputs::default();
    for input in node.inputs.kept() {
        if json::eq(input, &[INPUT_NAME]) {
            inputs.push(0);
        } else {
            match listed_index(input) {
                // k < limits::NODES, far below u16::MAX.
                Some(k) => inputs.push(k as u16 + 1),
                None => {
                    return Err(Error::DanglingInput {
                        node: text!("{}", Decoded(node.name)),
                        input: text!("{}", Decoded(input)),
                    })
                }
            }
        }
    }
    let scale = reals.get(node.scale)?;
    let quant = check_quant(format_args!("node '{}'", Decoded(node.name)), scale, node.zero_point, dtype)?;
    *record = NodeRecord { name: Span::EMPTY, op, inputs, quant };
    Ok(())
}

/// Marks "no node": the network input among a node's dependencies, or not yet sorted.
const NONE: u16 = u16::MAX;

/// Parses and validates graph JSON (decoded text), sorts it, and writes its
/// node records and names into `memory`'s front.
// Never inlined, as each stage of a load (`model::infer`).
#[inline(never)]
pub fn parse_graph(json: &str, memory: &Memory<'_>) -> Result<GraphInfo> {
    let top = read_top_level(json)?;
    let input = parse_input(&top.raw.input, InputReals::parse(json, &top.raw.input)?, top.dtype)?;
    memory.scratch(|scratch| sort_and_store(json, &top, input, scratch))
}

/// The graph object's fields other than its nodes, checked but for the input.
struct Top<'a> {
    raw: TopLevel<'a>,
    dtype: Dtype,
    /// How many real numbers the nodes give.
    node_reals: usize,
}

// Never inlined: its frame is gone before the nodes are read again, deeper.
#[inline(never)]
fn read_top_level(json: &str) -> Result<Top<'_>> {
    let mut node_reals = 0;
    let top = read(json, &mut |node| {
        node_reals += node.reals().iter().flatten().count();
        Ok(())
    })?;
    if top.format != FORMAT_VERSION {
        return Err(Error::UnsupportedFormat(top.format));
    }
    let dtype = match top.dtype {
        None => Dtype::Float,
        Some(d) if json::eq(d, &["float"]) => Dtype::Float,
        Some(d) if json::eq(d, &["int8"]) => Dtype::Int8,
        Some(other) => return Err(Error::GraphJson(text!("dtype '{}' is neither 'float' nor 'int8'", Decoded(other)))),
    };
    let n = top.nodes;
    if n > limits::NODES {
        return Err(Error::LimitExceeded { what: "nodes", value: n as u64, limit: limits::NODES as u64 });
    }
    if n == 0 {
        return Err(Error::GraphJson(text!("the graph has no nodes")));
    }
    Ok(Top { raw: top, dtype, node_reals })
}

fn sort_and_store(json: &str, top: &Top<'_>, input: InputSpec, scratch: &Scratch<'_, '_>) -> Result<GraphInfo> {
    let (dtype, output, n) = (top.dtype, top.raw.output, top.raw.nodes);
    // The JSON is read once more per stage rather than kept as a table of
    // `NodeJson`s (328 bytes a node on a 32-bit target).
    //
    // Stage 1: the names as written, refusing empty, over-long and invalid
    // ones, and where the nodes' real numbers are, parsed after it.
    let raw_names = scratch.alloc(n, "")?;
    let reals_at = scratch.alloc(top.node_reals, 0u32)?;
    let (mut listed, mut located) = (0, 0);
    read(json, &mut |node| {
        let len = json::decoded_len(node.name);
        if len == 0 || len > limits::NAME_BYTES || !json::is_valid(node.name) {
            return Err(Error::GraphJson(text!("node {listed} has an empty or over-long name")));
        }
        if let Some(slot) = raw_names.get_mut(listed) {
            *slot = node.name;
        }
        listed += 1;
        for at in node.reals().into_iter().flatten() {
            if let Some(slot) = reals_at.get_mut(located) {
                *slot = at.offset();
            }
            located += 1;
        }
        Ok(())
    })?;
    if listed != n || located != reals_at.len() {
        return Err(Error::Internal("the graph's passes read different nodes"));
    }
    let raw_names: &[&str] = raw_names;
    let reals = Reals::parse_all(json, reals_at, scratch.alloc(located, 0f64)?)?;

    // Names in order (listed indices), refusing duplicates and the reserved name.
    let names = scratch.alloc(n, 0u32)?;
    for (i, slot) in names.iter_mut().enumerate() {
        *slot = i as u32;
    }
    sort(names, &mut |a, b| json::cmp(raw_names[a as usize], raw_names[b as usize]));
    for pair in names.windows(2) {
        let (a, b) = (raw_names[pair[0] as usize], raw_names[pair[1] as usize]);
        if json::cmp(a, b).is_eq() {
            return Err(Error::DuplicateNode(text!("{}", Decoded(a))));
        }
    }
    let listed_index = |name: &str| -> Option<usize> {
        names.binary_search_by(|&k| json::cmp(raw_names[k as usize], name)).ok().map(|k| names[k] as usize)
    };
    if listed_index(INPUT_NAME).is_some() {
        return Err(Error::DuplicateNode(text!("{INPUT_NAME}")));
    }

    // Stage 2: each node's record, in listed order: its op, its quantisation,
    // and its inputs as listed value ids (0 the input, k + 1 the node listed k),
    // straight into the front. They are then sorted there, in place: no table
    // of ops and inputs in scratch beside them (the peak of a small graph's load).
    let order = scratch.alloc(n, 0u16)?;
    let sorted_pos = scratch.alloc(n, NONE)?;
    let memory = scratch.memory();
    let mut names_span = Span::EMPTY;
    let empty = NodeRecord { name: Span::EMPTY, op: Op::Flatten, inputs: Inputs::default(), quant: None };
    let nodes_span = memory.persistent_with(n, empty, |records| {
        let mut slots = records.iter_mut();
        read(json, &mut |node| match slots.next() {
            Some(record) => resolve_node(node, dtype, &listed_index, &reals, record),
            None => Ok(()),
        })?;

        names_span = sort_in_place(records, raw_names, order, sorted_pos, memory)?;
        Ok(())
    })?;
    let nodes = memory.view(nodes_span);

    let output_value = match output {
        None => usize::from(sorted_pos[n - 1]) + 1,
        Some(name) => match listed_index(name) {
            Some(k) => usize::from(sorted_pos[k]) + 1,
            None => return Err(Error::DanglingInput { node: text!("output"), input: text!("{}", Decoded(name)) }),
        },
    };
    let mut softmax_output = false;
    let mut logits = output_value;
    for (pos, node) in nodes.iter().enumerate() {
        if matches!(node.op, Op::Softmax { .. }) {
            if pos + 1 != output_value {
                let listed = usize::from(order[pos]);
                return Err(Error::ShapeMismatch {
                    node: text!("{}", Decoded(raw_names[listed])),
                    reason: text!("softmax is only supported as the graph output"),
                });
            }
            softmax_output = true;
            logits = node.inputs.first();
        }
    }
    if logits == 0 {
        return Err(Error::GraphJson(text!("the output is the raw input; the graph computes nothing")));
    }
    let int8_softmax = softmax_output && nodes[output_value - 1].quant == Some(SOFTMAX_INT8_OUTPUT);
    let output = if int8_softmax { output_value } else { logits };
    Ok(GraphInfo { dtype, input, names: names_span, nodes: nodes_span, logits, softmax_output, output })
}

/// Sorts the records (listed order, inputs as listed value ids) topologically,
/// in place, their inputs then value ids of the sorted graph; `order[p]`
/// receives the listed index of the node sorted at p, `sorted_pos[k]` where
/// the node listed k went. Writes the names, decoded in sorted order, into the
/// front: their span.
// Never inlined: inlined into the closure that holds the records, its frame
// would sit under the JSON parse of stage 2.
#[inline(never)]
fn sort_in_place(
    records: &mut [NodeRecord],
    raw_names: &[&str],
    order: &mut [u16],
    sorted_pos: &mut [u16],
    memory: &Memory<'_>,
) -> Result<Span<u8>> {
    let n = records.len();
    // Kahn's algorithm, picking the first listed ready node each time so that
    // an already sorted file keeps its order.
    for (position, slot) in order.iter_mut().enumerate() {
        let ready = (0..n)
            .find(|&i| sorted_pos[i] == NONE && records[i].inputs.iter().all(|v| v == 0 || sorted_pos[v - 1] != NONE));
        let Some(i) = ready else {
            let stuck = (0..n).find(|&i| sorted_pos[i] == NONE).unwrap_or(0);
            return Err(Error::Cycle(text!("{}", Decoded(raw_names[stuck]))));
        };
        sorted_pos[i] = position as u16;
        *slot = i as u16;
    }

    // The records into sorted order, swap by swap: `listed_at[k]`, where the node
    // listed k now is; `at_position[p]`, which node is at p.
    memory.scratch(|positions| {
        let listed_at = positions.alloc(n, 0u16)?;
        let at_position = positions.alloc(n, 0u16)?;
        for (k, (a, b)) in listed_at.iter_mut().zip(at_position.iter_mut()).enumerate() {
            (*a, *b) = (k as u16, k as u16);
        }
        for (p, &wanted) in order.iter().enumerate() {
            let from = usize::from(listed_at[usize::from(wanted)]);
            records.swap(p, from);
            let displaced = at_position[p];
            (listed_at[usize::from(displaced)], at_position[from]) = (from as u16, displaced);
            (listed_at[usize::from(wanted)], at_position[p]) = (p as u16, wanted);
        }
        Ok::<_, Error>(())
    })?;

    // The names, decoded in sorted order; inputs as value ids (0 the input, p + 1
    // the node sorted at p).
    let name_bytes = raw_names.iter().map(|name| json::decoded_len(name)).sum();
    let names_span = memory.persistent_with(name_bytes, 0u8, |pool| {
        let mut at = 0;
        for &listed in order.iter() {
            at += json::decode_into(raw_names[usize::from(listed)], &mut pool[at..]).unwrap_or(0);
        }
        Ok(())
    })?;
    let mut at = 0;
    for (record, &listed) in records.iter_mut().zip(order.iter()) {
        record.inputs.remap(|v| if v == 0 { 0 } else { sorted_pos[usize::from(v) - 1] + 1 });
        let len = json::decoded_len(raw_names[usize::from(listed)]);
        record.name = names_span.sub(at, len);
        at += len;
    }
    Ok(names_span)
}
