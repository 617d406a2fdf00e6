//! Reading the safetensors container in place: the header is parsed with
//! `serde-json-core` (no heap), checked as the `safetensors` crate checks it
//! (known dtypes, sizes that match the shapes, data offsets that tile the data
//! section exactly, no name twice), and its tensors indexed in scratch memory.
//! Tensor data is never copied: a [`TensorRef`] borrows it from the file.

use core::fmt;
use core::ops::Range;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::graph::METADATA_KEY;
use super::json::{self, Decoded};
use super::limits;
use super::memory::Scratch;
use super::sort::sort;
use crate::error::{dims, text, Error, Result};

/// A safetensors dtype (the names the header uses, which errors print).
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorDtype {
    BOOL,
    F4,
    F6_E2M3,
    F6_E3M2,
    U8,
    I8,
    F8_E5M2,
    F8_E4M3,
    F8_E8M0,
    F8_E4M3FNUZ,
    F8_E5M2FNUZ,
    I16,
    U16,
    F16,
    BF16,
    I32,
    U32,
    F32,
    C64,
    F64,
    I64,
    U64,
}

impl TensorDtype {
    /// Every dtype with its header name (which errors print) and its bits per element.
    const TABLE: [(TensorDtype, &'static str, usize); 22] = {
        use TensorDtype::*;
        [
            (BOOL, "BOOL", 8),
            (F4, "F4", 4),
            (F6_E2M3, "F6_E2M3", 6),
            (F6_E3M2, "F6_E3M2", 6),
            (U8, "U8", 8),
            (I8, "I8", 8),
            (F8_E5M2, "F8_E5M2", 8),
            (F8_E4M3, "F8_E4M3", 8),
            (F8_E8M0, "F8_E8M0", 8),
            (F8_E4M3FNUZ, "F8_E4M3FNUZ", 8),
            (F8_E5M2FNUZ, "F8_E5M2FNUZ", 8),
            (I16, "I16", 16),
            (U16, "U16", 16),
            (F16, "F16", 16),
            (BF16, "BF16", 16),
            (I32, "I32", 32),
            (U32, "U32", 32),
            (F32, "F32", 32),
            (C64, "C64", 64),
            (F64, "F64", 64),
            (I64, "I64", 64),
            (U64, "U64", 64),
        ]
    };

    fn parse(name: &str) -> Option<TensorDtype> {
        TensorDtype::TABLE.iter().find(|(_, n, _)| json::eq(name, &[n])).map(|&(d, _, _)| d)
    }

    fn entry(self) -> (TensorDtype, &'static str, usize) {
        TensorDtype::TABLE.into_iter().find(|&(d, _, _)| d == self).unwrap_or((self, "?", 0))
    }

    /// The header's name of this dtype.
    pub fn name(self) -> &'static str {
        self.entry().1
    }

    fn bits(self) -> usize {
        self.entry().2
    }
}

/// A tensor's shape as the header gives it: its rank, its first six
/// dimensions, and its element count.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TensorShape {
    rank: usize,
    dims: [usize; TensorShape::KEPT],
    elements: usize,
}

impl TensorShape {
    const KEPT: usize = 6;

    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The dimensions (all of them: a shape of higher rank than kept matches nothing).
    pub fn dims(&self) -> &[usize] {
        &self.dims[..self.rank.min(Self::KEPT)]
    }

    pub fn elements(&self) -> usize {
        self.elements
    }

    fn is(&self, expected: &[usize]) -> bool {
        self.rank == expected.len() && self.dims() == expected
    }
}

impl fmt::Debug for TensorShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.dims(), f)
    }
}

/// One tensor of the header as the index keeps it: its name as written
/// (escapes not decoded) and where its entry's value begins in the header.
/// Its dtype, shape and data offsets are read again from there when it is
/// taken (`info`): kept, they would triple the index, the
/// largest thing beside the network's records while a small model loads.
#[derive(Clone, Copy)]
struct TensorEntry<'f> {
    name: &'f str,
    at: usize,
}

/// One tensor as the header describes it: what `read_header` hands out.
struct HeaderTensor<'f> {
    name: &'f str,
    /// Where its value begins in the header.
    at: usize,
    info: TensorInfo,
}

/// What the data-offset check reads of each tensor, for one `parse`.
#[derive(Clone, Copy)]
struct Extent {
    range: (usize, usize),
    elements: usize,
    dtype: TensorDtype,
}

/// A parsed safetensors file borrowing its bytes, its tensor index in scratch memory.
pub struct TensorFile<'f, 's> {
    bytes: &'f [u8],
    /// The header's text, where `tensors` point.
    header: &'f str,
    /// As the header lists them.
    tensors: &'s [TensorEntry<'f>],
    /// Which tensors the graph took (`TensorFile::take`).
    used: &'s mut [bool],
    /// The `tinycnn` metadata string as written (JSON escapes not decoded).
    graph_json: &'f str,
}

/// One tensor: dtype, shape and its data, borrowed from the file.
pub struct TensorRef<'f> {
    /// As written in the header (escapes not decoded): `error_name` decodes it.
    pub name: &'f str,
    pub dtype: TensorDtype,
    pub shape: TensorShape,
    pub data: &'f [u8],
    pub range: Range<usize>,
}

/// Checks the 8-byte length prefix against the file and the header limit: the header's bytes.
fn header_bytes(bytes: &[u8]) -> Result<&[u8]> {
    let Some(prefix) = bytes.get(..8) else {
        return Err(Error::NotSafetensors(text!("{} bytes, shorter than the 8-byte header length", bytes.len())));
    };
    let mut len = [0u8; 8];
    len.copy_from_slice(prefix);
    let header = u64::from_le_bytes(len);
    if header.saturating_add(8) > bytes.len() as u64 {
        return Err(Error::NotSafetensors(text!(
            "header length {header} runs past the end of the {}-byte file",
            bytes.len()
        )));
    }
    if header > limits::HEADER_BYTES as u64 {
        return Err(Error::LimitExceeded {
            what: "safetensors header bytes",
            value: header,
            limit: limits::HEADER_BYTES as u64,
        });
    }
    // Both checks above passed, so the header is within the file.
    bytes.get(8..8 + header as usize).ok_or(Error::Internal("safetensors header past the checked end"))
}

impl<'f, 's> TensorFile<'f, 's> {
    /// Parses and checks the header; the index of its tensors goes into `scratch`.
    // Never inlined, as each stage of a load: inlined, its frame would stay on
    // the stack under the stages after it (the graph's parse is the deepest).
    #[inline(never)]
    pub fn parse(bytes: &'f [u8], scratch: &'s Scratch<'s, '_>) -> Result<Self> {
        let header = header_bytes(bytes)?;
        let text = core::str::from_utf8(header).map_err(|_| Error::NotSafetensors(text!("header is not UTF-8")))?;

        // Once to count the tensors (and find any JSON error), once to index them.
        let mut count = 0;
        let graph_json = read_header(text, |_| {
            count += 1;
            Ok(())
        })?;
        if count > limits::TENSORS {
            return Err(Error::LimitExceeded { what: "tensors", value: count as u64, limit: limits::TENSORS as u64 });
        }
        let tensors = scratch.alloc(count, TensorEntry { name: "", at: 0 })?;
        let data_start = 8 + header.len();
        // The checks' own tables are gone once they pass: only the index stays.
        scratch.memory().scratch(|checks| {
            let extents = checks.alloc(count, Extent { range: (0, 0), elements: 0, dtype: TensorDtype::U8 })?;
            let mut next = tensors.iter_mut().zip(extents.iter_mut());
            read_header(text, |tensor| {
                if let Some((entry, extent)) = next.next() {
                    let (dtype, shape, range) = tensor.info;
                    *entry = TensorEntry { name: tensor.name, at: tensor.at };
                    *extent = Extent { range, elements: shape.elements, dtype };
                }
                Ok(())
            })?;
            check_names(tensors, checks)?;
            let order = checks.alloc(count, 0u32)?;
            let data_len = check_offsets(text, tensors, extents, order)?;
            if data_start.checked_add(data_len) != Some(bytes.len()) {
                return Err(Error::NotSafetensors(text!("incomplete metadata, file not fully covered")));
            }
            Ok(())
        })?;
        let graph_json = graph_json.ok_or(Error::MissingGraph)?;
        let used = scratch.alloc(count, false)?;
        Ok(TensorFile { bytes, header: text, tensors, used, graph_json })
    }

    /// The whole file.
    pub fn bytes(&self) -> &'f [u8] {
        self.bytes
    }

    /// The graph JSON as written in the header (escapes not decoded).
    pub fn graph_json_raw(&self) -> &'f str {
        self.graph_json
    }

    /// The tensor `{node}.{param}`, marked as used.
    pub fn take(&mut self, node: &str, param: &str) -> Option<TensorRef<'f>> {
        let k = self.tensors.iter().position(|t| json::eq(t.name, &[node, ".", param]))?;
        self.used[k] = true;
        let t = self.tensors[k];
        let (dtype, shape, (start, end)) = info(self.header, t)?;
        let data_start = 8 + self.header.len();
        let range = start + data_start..end + data_start;
        Some(TensorRef { name: t.name, dtype, shape, data: self.bytes.get(range.clone())?, range })
    }

    /// The first tensor in file order that no `take` asked for.
    pub fn first_unused(&self) -> Option<&'f str> {
        // As `check_offsets` orders them: by data offsets, ties by their place in the header.
        let unused = self.tensors.iter().enumerate().filter(|&(k, _)| !self.used[k]);
        let first = unused.min_by_key(|&(k, t)| (info(self.header, *t).map(|(_, _, range)| range), k))?;
        Some(first.1.name)
    }
}

/// A tensor's dtype, shape and data offsets (within the data section), read
/// again from its entry in `header`. None only if `header` were not the one
/// `parse` read whole, so never for a `TensorFile`'s own entries.
fn info(header: &str, t: TensorEntry<'_>) -> Option<TensorInfo> {
    let mut failure = None;
    // The value alone: the deserializer stops at its end, the header's rest unread.
    let mut deserializer = serde_json_core::de::Deserializer::new(header.as_bytes().get(t.at..)?, None);
    TensorSeed { name: t.name, failure: &mut failure }.deserialize(&mut deserializer).ok()
}

/// No tensor name twice: the header is a JSON object, and a parser that keeps
/// the last of two equal keys would silently shadow the first. Names are
/// compared decoded (`"w"` and `"\u0077"` are one name).
fn check_names(tensors: &[TensorEntry<'_>], scratch: &Scratch<'_, '_>) -> Result<()> {
    if let Some(t) = tensors.iter().find(|t| !json::is_valid(t.name)) {
        return Err(Error::NotSafetensors(text!("tensor name \"{}\" has an invalid escape", t.name)));
    }
    let order = scratch.alloc(tensors.len(), 0u32)?;
    for (k, slot) in order.iter_mut().enumerate() {
        *slot = k as u32;
    }
    sort(order, &mut |a, b| json::cmp(tensors[a as usize].name, tensors[b as usize].name));
    for pair in order.windows(2) {
        let (a, b) = (tensors[pair[0] as usize].name, tensors[pair[1] as usize].name);
        if json::cmp(a, b).is_eq() {
            return Err(Error::NotSafetensors(text!("tensor '{}' appears twice in the header", Decoded(a))));
        }
    }
    Ok(())
}

/// The data offsets tile the data section in file order (`order`, filled
/// here), each tensor exactly as long as its shape and dtype say: the
/// section's length.
fn check_offsets(header: &str, tensors: &[TensorEntry<'_>], extents: &[Extent], order: &mut [u32]) -> Result<usize> {
    for (k, slot) in order.iter_mut().enumerate() {
        *slot = k as u32;
    }
    // Indices, not the entries, are sorted (ties, empty tensors, by their place in the header).
    sort(order, &mut |a, b| (extents[a as usize].range, a).cmp(&(extents[b as usize].range, b)));
    let mut end = 0;
    for k in order.iter().map(|&k| k as usize) {
        let (t, extent) = (tensors[k], extents[k]);
        let (s, e) = extent.range;
        if s != end || e < s {
            return Err(Error::NotSafetensors(text!("invalid offset for tensor `{}`", Decoded(t.name))));
        }
        let bits = extent.elements.checked_mul(extent.dtype.bits());
        let Some(bytes) = bits.filter(|b| b % 8 == 0).map(|b| b / 8) else {
            return Err(Error::NotSafetensors(text!(
                "tensor `{}`: {} elements of {:?} are no whole number of bytes",
                Decoded(t.name),
                extent.elements,
                extent.dtype
            )));
        };
        if e - s != bytes {
            let shape = info(header, t).map(|(_, shape, _)| shape);
            return Err(Error::NotSafetensors(text!(
                "tensor `{}` holds {} bytes, its shape {:?} of {:?} needs {bytes}",
                Decoded(t.name),
                e - s,
                DebugOr(shape),
                extent.dtype
            )));
        }
        end = e;
    }
    Ok(end)
}

/// A shape for an error, or `?` (never: see `info`).
struct DebugOr(Option<TensorShape>);

impl fmt::Debug for DebugOr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(shape) => fmt::Debug::fmt(shape, f),
            None => f.write_str("?"),
        }
    }
}

/// Walks the header object, handing each tensor to `on_tensor`; returns the
/// `tinycnn` metadata string, if any.
fn read_header<'f>(text: &'f str, on_tensor: impl FnMut(HeaderTensor<'f>) -> Result<()>) -> Result<Option<&'f str>> {
    let mut failure = None;
    let mut deserializer = serde_json_core::de::Deserializer::new(text.as_bytes(), None);
    let visitor = HeaderVisitor { text, on_tensor, failure: &mut failure };
    let parsed = de::Deserializer::deserialize_map(&mut deserializer, visitor);
    if let Some(e) = failure {
        return Err(e);
    }
    let graph = parsed.map_err(json::header_error)?;
    deserializer.end().map_err(json::header_error)?;
    Ok(graph)
}

struct HeaderVisitor<'x, 'f, F> {
    text: &'f str,
    on_tensor: F,
    /// The error `on_tensor` gave, which stopped the parse.
    failure: &'x mut Option<Error>,
}

impl<'de, F: FnMut(HeaderTensor<'de>) -> Result<()>> Visitor<'de> for HeaderVisitor<'_, 'de, F> {
    type Value = Option<&'de str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the safetensors header object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> core::result::Result<Self::Value, A::Error> {
        let mut graph = None;
        while let Some(key) = map.next_key::<&'de str>()? {
            if key == "__metadata__" {
                graph = map.next_value_seed(MetadataSeed)?;
                continue;
            }
            let info = map.next_value_seed(TensorSeed { name: key, failure: &mut *self.failure })?;
            let tensor = value_start(self.text, key).map(|at| HeaderTensor { name: key, at, info });
            let done = tensor.and_then(&mut self.on_tensor);
            if let Err(e) = done {
                return Err(fail(self.failure, e));
            }
        }
        Ok(graph)
    }
}

/// Where the value of `key` (a key of `text`, as serde-json-core borrows it:
/// escapes not decoded) begins: just after its colon.
fn value_start(text: &str, key: &str) -> Result<usize> {
    let key_start = (key.as_ptr() as usize).checked_sub(text.as_ptr() as usize);
    let key_end = key_start.map(|s| s + key.len()).filter(|&e| e <= text.len());
    // Past the key's closing quote only blanks come before the colon (the value parsed).
    let colon = key_end.and_then(|e| Some(e + text.get(e..)?.find(':')?));
    colon.map(|c| c + 1).ok_or(Error::Internal("a header key outside the header"))
}

/// Stops the parse for `e` (serde-json-core keeps no message with an error).
fn fail<E: de::Error>(failure: &mut Option<Error>, e: Error) -> E {
    *failure = Some(e);
    E::custom("")
}

/// `__metadata__`: string keys and string values; the `tinycnn` one is the graph.
struct MetadataSeed;

impl<'de> DeserializeSeed<'de> for MetadataSeed {
    type Value = Option<&'de str>;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> core::result::Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MetadataSeed {
    type Value = Option<&'de str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of strings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> core::result::Result<Self::Value, A::Error> {
        let mut graph = None;
        while let Some(key) = map.next_key::<&'de str>()? {
            let value = map.next_value::<&'de str>()?;
            if json::eq(key, &[METADATA_KEY]) {
                graph = Some(value);
            }
        }
        Ok(graph)
    }
}

/// One tensor's entry: `dtype`, `shape`, `data_offsets`, and nothing else.
/// (The safetensors crate skips other fields; skipping an arbitrary value
/// recurses once per nesting level, and a 1 MiB header nests deep enough to
/// overflow any stack, a microcontroller's first. No writer adds fields.)
struct TensorSeed<'x, 'n> {
    name: &'n str,
    failure: &'x mut Option<Error>,
}

type TensorInfo = (TensorDtype, TensorShape, (usize, usize));

impl<'de> DeserializeSeed<'de> for TensorSeed<'_, '_> {
    type Value = TensorInfo;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> core::result::Result<TensorInfo, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TensorSeed<'_, '_> {
    type Value = TensorInfo;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a tensor entry")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> core::result::Result<TensorInfo, A::Error> {
        let (mut dtype, mut shape, mut offsets) = (None, None, None);
        let name = Decoded(self.name);
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "dtype" => {
                    let written = map.next_value::<&'de str>()?;
                    let Some(d) = TensorDtype::parse(written) else {
                        let e = Error::NotSafetensors(text!("tensor `{name}` has the unknown dtype \"{written}\""));
                        return Err(fail(self.failure, e));
                    };
                    dtype = Some(d);
                }
                "shape" => match map.next_value::<Shape>()? {
                    Shape(Some(s)) => shape = Some(s),
                    Shape(None) => {
                        let e = Error::NotSafetensors(text!("tensor `{name}`: its shape's element count overflows"));
                        return Err(fail(self.failure, e));
                    }
                },
                "data_offsets" => offsets = Some(map.next_value::<(usize, usize)>()?),
                other => {
                    let e = Error::NotSafetensors(text!(
                        "tensor `{name}` has the unknown field `{}` (only dtype, shape and data_offsets)",
                        Decoded(other)
                    ));
                    return Err(fail(self.failure, e));
                }
            }
        }
        match (dtype, shape, offsets) {
            (Some(dtype), Some(shape), Some(offsets)) => Ok((dtype, shape, offsets)),
            _ => {
                let e = Error::NotSafetensors(text!("tensor `{name}` lacks its dtype, shape or data_offsets"));
                Err(fail(self.failure, e))
            }
        }
    }
}

/// A shape as the header lists it; None if its element count overflows.
struct Shape(Option<TensorShape>);

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> core::result::Result<Self, D::Error> {
        struct ShapeVisitor;
        impl<'de> Visitor<'de> for ShapeVisitor {
            type Value = Shape;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of dimensions")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> core::result::Result<Shape, A::Error> {
                let mut shape = TensorShape { rank: 0, dims: [0; TensorShape::KEPT], elements: 1 };
                let mut overflow = false;
                while let Some(d) = seq.next_element::<usize>()? {
                    if let Some(slot) = shape.dims.get_mut(shape.rank) {
                        *slot = d;
                    }
                    shape.rank += 1;
                    match shape.elements.checked_mul(d) {
                        Some(e) => shape.elements = e,
                        None => overflow = true,
                    }
                }
                Ok(Shape((!overflow).then_some(shape)))
            }
        }
        deserializer.deserialize_seq(ShapeVisitor)
    }
}

impl<'f> TensorRef<'f> {
    fn shape_error(&self, expected: &[usize]) -> Error {
        Error::TensorShape {
            tensor: text!("{}", Decoded(self.name)),
            expected: dims(expected),
            found: dims(self.shape.dims()),
        }
    }

    pub fn expect_shape(&self, expected: &[usize]) -> Result<()> {
        if !self.shape.is(expected) {
            return Err(self.shape_error(expected));
        }
        Ok(())
    }

    fn dtype_error(&self, expected: &'static str) -> Error {
        Error::TensorDtype { tensor: text!("{}", Decoded(self.name)), expected, found: text!("{}", self.dtype.name()) }
    }

    /// Its name, decoded, for an error.
    pub fn error_name(&self) -> crate::error::Text {
        text!("{}", Decoded(self.name))
    }

    /// Float values (F32, F16 or BF16 in the file), decoded as they are read.
    pub fn floats(&self, expected: &[usize]) -> Result<impl Iterator<Item = f32> + 'f> {
        self.expect_shape(expected)?;
        let width = match self.dtype {
            TensorDtype::F32 => 4,
            TensorDtype::F16 | TensorDtype::BF16 => 2,
            _ => return Err(self.dtype_error("F32, F16 or BF16")),
        };
        let dtype = self.dtype;
        Ok(self.data.chunks_exact(width).map(move |b| match (dtype, b) {
            (TensorDtype::F16, &[lo, hi]) => half::f16::from_le_bytes([lo, hi]).to_f32(),
            (TensorDtype::BF16, &[lo, hi]) => half::bf16::from_le_bytes([lo, hi]).to_f32(),
            (_, &[a, b, c, d]) => f32::from_le_bytes([a, b, c, d]),
            _ => f32::NAN, // chunks_exact gives `width` bytes: never reached
        }))
    }

    /// Float weights of the given shape, every one finite (checked, not stored).
    pub fn check_finite(&self, expected: &[usize]) -> Result<()> {
        if let Some(i) = self.floats(expected)?.position(|v| !v.is_finite()) {
            return Err(Error::TensorValue {
                tensor: self.error_name(),
                reason: text!("element {i} is NaN or infinite"),
            });
        }
        Ok(())
    }

    /// An I8 tensor of the given shape, borrowed: its byte range in the file.
    pub fn i8_range(&self, expected: &[usize]) -> Result<Range<usize>> {
        if self.dtype != TensorDtype::I8 {
            return Err(self.dtype_error("I8"));
        }
        self.expect_shape(expected)?;
        if let Some(i) = self.data.iter().position(|&b| b as i8 == i8::MIN) {
            return Err(Error::TensorValue {
                tensor: self.error_name(),
                reason: text!("element {i} is -128; int8 weights are symmetric in [-127, 127]"),
            });
        }
        Ok(self.range.clone())
    }

    /// I32 values of the given shape.
    pub fn i32s(&self, expected: &[usize]) -> Result<impl Iterator<Item = i32> + 'f> {
        if self.dtype != TensorDtype::I32 {
            return Err(self.dtype_error("I32"));
        }
        self.expect_shape(expected)?;
        Ok(self.data.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]])))
    }

    /// I8 values of the given shape, every one of the 256 allowed.
    pub fn i8s(&self, expected: &[usize]) -> Result<impl Iterator<Item = i8> + 'f> {
        if self.dtype != TensorDtype::I8 {
            return Err(self.dtype_error("I8"));
        }
        self.expect_shape(expected)?;
        Ok(self.data.iter().map(|&b| b as i8))
    }

    /// F32 values of the given shape (scales), as they are: the caller judges them.
    pub fn f32s(&self, expected: &[usize]) -> Result<impl Iterator<Item = f32> + 'f> {
        if self.dtype != TensorDtype::F32 {
            return Err(self.dtype_error("F32"));
        }
        self.floats(expected)
    }
}

/// Reads a model file's graph JSON without validating the tensors (for `import`).
#[cfg(feature = "alloc")]
pub fn read_graph_json(bytes: &[u8]) -> Result<alloc::string::String> {
    let header = header_bytes(bytes)?;
    let text = core::str::from_utf8(header).map_err(|_| Error::NotSafetensors(text!("header is not UTF-8")))?;
    let raw = read_header(text, |_| Ok(()))?.ok_or(Error::MissingGraph)?;
    json::chars(raw)
        .collect::<Option<alloc::string::String>>()
        .ok_or_else(|| Error::NotSafetensors(text!("the graph string has an invalid escape")))
}
