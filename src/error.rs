//! The one error type of the library.
//!
//! Load-time errors name the node or tensor at fault, so a user can fix the
//! exporter. Run-time errors carry only numbers: building them never touches
//! the heap, which keeps `run` allocation-free even when it fails.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Everything that can go wrong, from reading a file to running a model.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a safetensors file (too short, bad header, bad offsets…).
    NotSafetensors(String),
    /// A limit of docs/FORMAT.md was exceeded (header bytes, nodes, elements, arena…).
    LimitExceeded { what: &'static str, value: u64, limit: u64 },
    /// The safetensors metadata has no `tinycnn` graph.
    MissingGraph,
    /// The graph JSON does not parse or has the wrong structure.
    GraphJson(String),
    /// The graph declares a format version this build does not read.
    UnsupportedFormat(u64),
    /// A node's `op` is not one tinycnn knows.
    UnknownOp { node: String, op: String },
    /// An attribute is missing, out of range or not valid for the op.
    BadAttribute { node: String, attribute: String, reason: String },
    /// Two nodes share a name (or a node is called `input`).
    DuplicateNode(String),
    /// A node reads a value that no node produces.
    DanglingInput { node: String, input: String },
    /// The graph has a cycle through this node.
    Cycle(String),
    /// Input shapes do not fit the op (channel counts, spatial sizes…).
    ShapeMismatch { node: String, reason: String },
    /// A tensor the graph needs is not in the file.
    MissingTensor(String),
    /// The file holds a tensor the graph does not use.
    UnexpectedTensor(String),
    /// A tensor has a dtype the op cannot take.
    TensorDtype { tensor: String, expected: &'static str, found: String },
    /// A tensor's shape disagrees with the graph.
    TensorShape { tensor: String, expected: Vec<usize>, found: Vec<usize> },
    /// A tensor holds a value outside its allowed range (e.g. an int8 weight of −128).
    TensorValue { tensor: String, reason: String },
    /// A quantisation scale or zero point is NaN, infinite, zero, negative or out of range.
    BadQuantization { what: String, reason: String },
    /// The operation needs a model of the other dtype (e.g. calibrating an int8 model).
    WrongDtype { expected: &'static str },
    /// The quantiser cannot express this graph in int8 (e.g. a batchnorm that follows no conv).
    Unquantizable { node: String, reason: String },
    /// `run` got an input slice of the wrong length.
    InputLength { expected: usize, found: usize },
    /// `run` got the other kind of input than the model takes (pixels or int8 values).
    WrongInput { expected: &'static str },
    /// `run` got an output slice of the wrong length.
    OutputLength { expected: usize, found: usize },
    /// The arena passed to `run` is smaller than `arena_bytes()`.
    ArenaTooSmall { needed: usize, found: usize },
    /// An ensemble member whose input or output shape differs from the first one's.
    EnsembleMismatch { member: usize, reason: &'static str },
    /// A float input value is NaN or infinite.
    NonFiniteInput { index: usize },
    /// A `.tflite` file that is malformed or asks for what tinycnn does not run;
    /// `at` names the place (the file, tensor k, operator k and its op).
    Tflite { at: String, reason: String },
    /// Data files (MNIST IDX, images) are malformed.
    Data(String),
    /// An image to preprocess or segment is blank: no ink to read (a page says "draw something").
    EmptyImage,
    /// An invariant of tinycnn itself broke (a bug: please report it).
    Internal(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotSafetensors(why) => write!(f, "not a safetensors file: {why}"),
            Error::LimitExceeded { what, value, limit } => {
                write!(f, "{what} is {value}, over the limit of {limit}")
            }
            Error::MissingGraph => {
                write!(f, "the safetensors metadata has no \"tinycnn\" graph (attach one with `tinycnn import`)")
            }
            Error::GraphJson(why) => write!(f, "graph JSON: {why}"),
            Error::UnsupportedFormat(v) => write!(f, "graph format {v} is not supported (this build reads format 1)"),
            Error::UnknownOp { node, op } => write!(f, "node '{node}': unknown op '{op}'"),
            Error::BadAttribute { node, attribute, reason } => {
                write!(f, "node '{node}': attribute '{attribute}' {reason}")
            }
            Error::DuplicateNode(name) => {
                write!(f, "node name '{name}' is used twice (or is the reserved name 'input')")
            }
            Error::DanglingInput { node, input } => {
                write!(f, "node '{node}' reads '{input}', which no node produces")
            }
            Error::Cycle(node) => write!(f, "the graph has a cycle through node '{node}'"),
            Error::ShapeMismatch { node, reason } => write!(f, "node '{node}': {reason}"),
            Error::MissingTensor(name) => write!(f, "tensor '{name}' is missing"),
            Error::UnexpectedTensor(name) => write!(f, "tensor '{name}' is not used by any node"),
            Error::TensorDtype { tensor, expected, found } => {
                write!(f, "tensor '{tensor}' has dtype {found}, expected {expected}")
            }
            Error::TensorShape { tensor, expected, found } => {
                write!(f, "tensor '{tensor}' has shape {found:?}, expected {expected:?}")
            }
            Error::TensorValue { tensor, reason } => write!(f, "tensor '{tensor}': {reason}"),
            Error::BadQuantization { what, reason } => write!(f, "{what}: {reason}"),
            Error::WrongDtype { expected } => write!(f, "this needs a {expected} model"),
            Error::Unquantizable { node, reason } => write!(f, "cannot quantise node '{node}': {reason}"),
            Error::InputLength { expected, found } => {
                write!(f, "input has {found} values, the model takes {expected}")
            }
            Error::WrongInput { expected } => write!(f, "this model takes {expected}"),
            Error::OutputLength { expected, found } => {
                write!(f, "output buffer has {found} values, the model gives {expected}")
            }
            Error::ArenaTooSmall { needed, found } => {
                write!(f, "arena has {found} bytes, the model needs {needed}")
            }
            Error::EnsembleMismatch { member, reason } => {
                write!(f, "ensemble member {member}: {reason}")
            }
            Error::NonFiniteInput { index } => write!(f, "input value {index} is NaN or infinite"),
            Error::Tflite { at, reason } => write!(f, "tflite {at}: {reason}"),
            Error::Data(why) => write!(f, "data: {why}"),
            Error::EmptyImage => write!(f, "data: the image has no ink (it is blank): draw or photograph a digit"),
            Error::Internal(what) => write!(f, "internal error (a tinycnn bug): {what}"),
        }
    }
}

impl core::error::Error for Error {}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;
