//! The one error type of the library.
//!
//! Load-time errors name the node or tensor at fault, so a user can fix the
//! exporter. Run-time errors carry only numbers: building them never touches
//! the heap, which keeps `run` allocation-free even when it fails.
//!
//! Without the `alloc` feature (a microcontroller with no allocator) the texts
//! are [`InlineText`]s: the same messages, cut at [`InlineText::CAPACITY`] bytes.

use core::fmt;

/// Everything that can go wrong, from reading a file to running a model.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a safetensors file (too short, bad header, bad offsets…).
    NotSafetensors(Text),
    /// A limit of docs/FORMAT.md was exceeded (header bytes, nodes, elements, arena…).
    LimitExceeded { what: &'static str, value: u64, limit: u64 },
    /// The safetensors metadata has no `tinycnn` graph.
    MissingGraph,
    /// The graph JSON does not parse or has the wrong structure.
    GraphJson(Text),
    /// The graph declares a format version this build does not read.
    UnsupportedFormat(u64),
    /// A node's `op` is not one tinycnn knows.
    UnknownOp { node: Text, op: Text },
    /// An attribute is missing, out of range or not valid for the op.
    BadAttribute { node: Text, attribute: &'static str, reason: Text },
    /// Two nodes share a name (or a node is called `input`).
    DuplicateNode(Text),
    /// A node reads a value that no node produces.
    DanglingInput { node: Text, input: Text },
    /// The graph has a cycle through this node.
    Cycle(Text),
    /// Input shapes do not fit the op (channel counts, spatial sizes…).
    ShapeMismatch { node: Text, reason: Text },
    /// A tensor the graph needs is not in the file.
    MissingTensor(Text),
    /// The file holds a tensor the graph does not use.
    UnexpectedTensor(Text),
    /// A tensor has a dtype the op cannot take.
    TensorDtype { tensor: Text, expected: &'static str, found: Text },
    /// A tensor's shape disagrees with the graph.
    TensorShape { tensor: Text, expected: Dims, found: Dims },
    /// A tensor holds a value outside its allowed range (e.g. an int8 weight of −128).
    TensorValue { tensor: Text, reason: Text },
    /// A quantisation scale or zero point is NaN, infinite, zero, negative or out of range.
    BadQuantization { what: Text, reason: Text },
    /// The operation needs a model of the other dtype (e.g. calibrating an int8 model).
    WrongDtype { expected: &'static str },
    /// The quantiser cannot express this graph in int8 (e.g. a batchnorm that follows no conv).
    Unquantizable { node: Text, reason: Text },
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
    Tflite { at: Text, reason: Text },
    /// Data files (MNIST IDX, images) are malformed.
    Data(Text),
    /// An image to preprocess or segment is blank: no ink to read (a page says "draw something").
    EmptyImage,
    /// The memory given to an in-place load ([`crate::ArenaModel::load`]) is too
    /// small: `needed` bytes at least (`tinycnn inspect` prints the exact figure).
    MemoryTooSmall { needed: usize, found: usize },
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
            Error::MemoryTooSmall { needed, found } => {
                write!(f, "memory has {found} bytes, loading the model needs at least {needed}")
            }
            Error::Internal(what) => write!(f, "internal error (a tinycnn bug): {what}"),
        }
    }
}

impl core::error::Error for Error {}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// The text of an error: a `String` where the crate has `alloc`.
#[cfg(feature = "alloc")]
pub type Text = alloc::string::String;
/// The text of an error: a fixed-capacity string where the crate has no `alloc`.
#[cfg(not(feature = "alloc"))]
pub type Text = InlineText;

/// A tensor shape in an error.
#[cfg(feature = "alloc")]
pub type Dims = alloc::vec::Vec<usize>;
/// A tensor shape in an error: its first [`InlineDims::CAPACITY`] dimensions.
#[cfg(not(feature = "alloc"))]
pub type Dims = InlineDims;

/// Formats an error's text (`format!` where the crate has `alloc`, else into an [`InlineText`]).
macro_rules! text {
    ($($arg:tt)*) => {
        $crate::error::format_text(core::format_args!($($arg)*))
    };
}
pub(crate) use text;

// Errors that checks on a load's path build, out of line: their texts' frames
// are then not on the stack of every successful check (on a microcontroller,
// the load's stack peak).
impl Error {
    #[cold]
    #[inline(never)]
    pub(crate) fn bad_quantization(what: fmt::Arguments<'_>, reason: fmt::Arguments<'_>) -> Error {
        Error::BadQuantization { what: format_text(what), reason: format_text(reason) }
    }
}

#[cfg(feature = "alloc")]
pub(crate) fn format_text(args: fmt::Arguments<'_>) -> Text {
    alloc::fmt::format(args)
}

#[cfg(not(feature = "alloc"))]
pub(crate) fn format_text(args: fmt::Arguments<'_>) -> Text {
    let mut text = InlineText::default();
    // InlineText's write_str never fails: it cuts what does not fit.
    let _ = fmt::Write::write_fmt(&mut text, args);
    text
}

/// A real number in an error text. With `alloc`, Rust's shortest form that
/// reads back the same; without it (a microcontroller), six significant digits
/// from a few lines of arithmetic, as core's float formatting costs ~22 KB of
/// flash that the rest of such a firmware never uses.
#[derive(Clone, Copy)]
pub(crate) enum Real {
    F32(f32),
    F64(f64),
}

impl From<f32> for Real {
    fn from(x: f32) -> Real {
        Real::F32(x)
    }
}

impl From<f64> for Real {
    fn from(x: f64) -> Real {
        Real::F64(x)
    }
}

impl fmt::Display for Real {
    #[cfg(feature = "alloc")]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Real::F32(x) => fmt::Display::fmt(x, f),
            Real::F64(x) => fmt::Display::fmt(x, f),
        }
    }

    #[cfg(not(feature = "alloc"))]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Real::F32(x) => write_six_digits(f64::from(x), f),
            Real::F64(x) => write_six_digits(x, f),
        }
    }
}

/// `x` to six significant digits (`1.5`, `-0.003`, `1e39`, `3.14159e-7`),
/// without core's float formatting: what `Real` prints without `alloc`.
#[cfg_attr(feature = "alloc", allow(dead_code))] // the unit test's, there
fn write_six_digits(x: f64, f: &mut dyn fmt::Write) -> fmt::Result {
    if x.is_nan() {
        return f.write_str("NaN");
    }
    if x.is_sign_negative() && x != 0.0 {
        f.write_str("-")?;
    }
    let x = x.abs();
    if x.is_infinite() {
        return f.write_str("inf");
    }
    if x == 0.0 {
        return f.write_str("0");
    }
    // x = m · 10^e with m in [1, 10), then m's six significant digits.
    let (mut m, mut e) = (x, 0i32);
    while m >= 10.0 {
        m /= 10.0;
        e += 1;
    }
    while m < 1.0 {
        m *= 10.0;
        e -= 1;
    }
    let mut digits = libm::round(m * 1e5) as u32;
    if digits >= 1_000_000 {
        digits /= 10;
        e += 1;
    }
    let mut decimals = 5;
    while decimals > 0 && digits.is_multiple_of(10) {
        digits /= 10;
        decimals -= 1;
    }
    let unit = 10u32.pow(decimals);
    write!(f, "{}", digits / unit)?;
    if decimals > 0 {
        write!(f, ".{:0width$}", digits % unit, width = decimals as usize)?;
    }
    if e != 0 {
        write!(f, "e{e}")?;
    }
    Ok(())
}

/// A shape as an error holds it.
pub(crate) fn dims(shape: &[usize]) -> Dims {
    #[cfg(feature = "alloc")]
    {
        shape.to_vec()
    }
    #[cfg(not(feature = "alloc"))]
    {
        let mut dims = InlineDims { rank: shape.len(), dims: [0; InlineDims::CAPACITY] };
        for (d, &s) in dims.dims.iter_mut().zip(shape) {
            *d = s;
        }
        dims
    }
}

/// A string of at most [`CAPACITY`](Self::CAPACITY) bytes, cut at a character
/// boundary with "…" when longer: error texts without a heap.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct InlineText {
    bytes: [u8; InlineText::CAPACITY],
    len: u8,
    cut: bool,
}

impl InlineText {
    /// 32 bytes: an `Error` is then 96 bytes on a 32-bit target (112 with 48),
    /// and a load's checks hold many results on a microcontroller's stack
    /// (48 made its peak 450 B deeper). The host tools (`tinycnn inspect`)
    /// give the whole texts.
    pub const CAPACITY: usize = 32;

    pub fn as_str(&self) -> &str {
        // Only whole characters are ever copied in (`write_str`).
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl Default for InlineText {
    fn default() -> Self {
        InlineText { bytes: [0; InlineText::CAPACITY], len: 0, cut: false }
    }
}

impl fmt::Write for InlineText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.cut {
            return Ok(());
        }
        // Room is kept for the "…" (3 bytes) that marks a cut text.
        let room = (Self::CAPACITY - 3).saturating_sub(usize::from(self.len));
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        let start = usize::from(self.len);
        self.bytes[start..start + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take as u8;
        if take < s.len() {
            self.cut = true;
            let start = usize::from(self.len);
            self.bytes[start..start + 3].copy_from_slice("…".as_bytes());
            self.len += 3;
        }
        Ok(())
    }
}

impl From<&str> for InlineText {
    fn from(s: &str) -> Self {
        let mut text = InlineText::default();
        let _ = fmt::Write::write_str(&mut text, s);
        text
    }
}

impl core::ops::Deref for InlineText {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for InlineText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for InlineText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// A tensor shape of any rank, its first [`CAPACITY`](Self::CAPACITY) dimensions kept.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct InlineDims {
    rank: usize,
    dims: [usize; InlineDims::CAPACITY],
}

impl InlineDims {
    pub const CAPACITY: usize = 6;
}

impl fmt::Debug for InlineDims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kept = &self.dims[..self.rank.min(Self::CAPACITY)];
        if self.rank > Self::CAPACITY {
            write!(f, "{kept:?} (rank {})", self.rank)
        } else {
            write!(f, "{kept:?}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn six_digits(x: f64) -> alloc::string::String {
        let mut out = alloc::string::String::new();
        write_six_digits(x, &mut out).unwrap();
        out
    }

    #[test]
    fn reals_print_in_six_digits_without_core_float_formatting() {
        let cases: [(f64, &str); 10] = [
            (1.5, "1.5"),
            (-0.003, "-3e-3"),
            (1e39, "1e39"),
            (core::f64::consts::PI * 1e-7, "3.14159e-7"),
            (0.0, "0"),
            (9.999999, "1e1"),
            (123456.7, "1.23457e5"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::from(f32::MAX), "3.40282e38"),
        ];
        for (x, want) in cases {
            assert_eq!(six_digits(x), want, "{x}");
        }
    }

    #[test]
    fn inline_text_cuts_at_a_character_and_says_so() {
        let mut text = InlineText::default();
        let long = "é".repeat(40);
        let _ = fmt::Write::write_str(&mut text, &long);
        assert!(text.as_str().ends_with('…') && text.len() <= InlineText::CAPACITY, "{text}");
        let _ = fmt::Write::write_str(&mut text, "more");
        assert!(text.as_str().ends_with('…'));
        assert_eq!(InlineText::from("short").as_str(), "short");
    }
}
