//! Reading the safetensors container: header checks before anything is
//! allocated, then typed access to tensors.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::ops::Range;

use safetensors::tensor::Metadata;
use safetensors::{Dtype as StDtype, SafeTensors};

use super::graph::METADATA_KEY;
use super::limits;
use crate::error::{Error, Result};

/// A parsed safetensors file borrowing its bytes. The header is parsed once
/// (by the safetensors crate, after our own length and duplicate-key checks).
pub struct TensorFile<'a> {
    /// The data section: everything after the header.
    data: &'a [u8],
    /// Where `data` starts in the file.
    data_start: usize,
    metadata: Metadata,
    graph_json: String,
}

/// One tensor: dtype, shape and the byte range of its data within the file.
pub struct TensorRef<'a> {
    pub name: String,
    pub dtype: StDtype,
    pub shape: Vec<usize>,
    pub data: &'a [u8],
    pub range: Range<usize>,
}

/// Checks the 8-byte length prefix against the file and the header limit.
fn check_header(bytes: &[u8]) -> Result<()> {
    let Some(prefix) = bytes.get(..8) else {
        return Err(Error::NotSafetensors(format!("{} bytes, shorter than the 8-byte header length", bytes.len())));
    };
    let mut len = [0u8; 8];
    len.copy_from_slice(prefix);
    let header = u64::from_le_bytes(len);
    if header.saturating_add(8) > bytes.len() as u64 {
        return Err(Error::NotSafetensors(format!(
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
    if let Some(json) = bytes.get(8..8 + header as usize) {
        check_unique_keys(json)?;
    }
    Ok(())
}

/// The safetensors crate reads the header into a map, so a tensor listed twice
/// would silently shadow the first entry (and surface as a confusing offset
/// error). Refuse it by name. Anything the key scan does not understand is
/// left to the safetensors parser, which reports it.
fn check_unique_keys(json: &[u8]) -> Result<()> {
    let Some(raw) = top_level_keys(json) else { return Ok(()) };
    // Compared decoded: `"w"` and `"\u0077"` are the same name to the parser.
    let Some(decoded) = raw.into_iter().map(unescape).collect::<Option<Vec<String>>>() else { return Ok(()) };
    // (name, position) pairs sort with the same code as the graph's node names.
    let mut keys: Vec<(&str, usize)> = decoded.iter().map(String::as_str).zip(0..).collect();
    keys.sort_unstable();
    if let Some(pair) = keys.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        return Err(Error::NotSafetensors(format!("tensor '{}' appears twice in the header", pair[0].0)));
    }
    Ok(())
}

/// The keys of a JSON object, as written (escapes not decoded). A small scanner
/// rather than serde: a second serde_json instantiation costs ~10 KB of wasm.
fn top_level_keys(json: &[u8]) -> Option<Vec<&str>> {
    let mut keys = Vec::new();
    let mut i = skip_whitespace(json, 0);
    if json.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = skip_whitespace(json, i);
        match json.get(i)? {
            b'}' => return Some(keys),
            b',' => i += 1,
            b'"' => {
                let end = string_end(json, i)?;
                keys.push(core::str::from_utf8(json.get(i + 1..end - 1)?).ok()?);
                i = skip_whitespace(json, end);
                if json.get(i) != Some(&b':') {
                    return None;
                }
                i = skip_value(json, i + 1)?;
            }
            _ => return None,
        }
    }
}

/// A JSON string's contents (between the quotes) with its escapes decoded; None if
/// an escape is invalid (the parser then reports the header).
fn unescape(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    let mut high_surrogate = None; // a \uD800–\uDBFF waiting for its low half
    while let Some(c) = chars.next() {
        let decoded = match (c, high_surrogate) {
            ('\\', _) => match chars.next()? {
                'u' => {
                    let mut unit = 0;
                    for _ in 0..4 {
                        unit = unit * 16 + chars.next()?.to_digit(16)?;
                    }
                    match (high_surrogate.take(), unit) {
                        (None, 0xd800..=0xdbff) => {
                            high_surrogate = Some(unit);
                            continue;
                        }
                        (Some(high), 0xdc00..=0xdfff) => {
                            char::from_u32(0x10000 + ((high - 0xd800) << 10) + (unit - 0xdc00))?
                        }
                        (None, _) => char::from_u32(unit)?, // a lone low surrogate is not a char: None
                        (Some(_), _) => return None,
                    }
                }
                _ if high_surrogate.is_some() => return None,
                '"' => '"',
                '\\' => '\\',
                '/' => '/',
                'b' => '\u{8}',
                'f' => '\u{c}',
                'n' => '\n',
                'r' => '\r',
                't' => '\t',
                _ => return None,
            },
            (_, Some(_)) => return None,
            (c, None) => c,
        };
        out.push(decoded);
    }
    high_surrogate.is_none().then_some(out)
}

fn skip_whitespace(json: &[u8], mut i: usize) -> usize {
    while json.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// `json[start]` is a `"`: the index just past the closing quote.
fn string_end(json: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        match json.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// Skips one value: the index of the `,` or `}` after a scalar, or just past a string, object or array.
fn skip_value(json: &[u8], mut i: usize) -> Option<usize> {
    let mut depth = 0usize;
    loop {
        match json.get(i)? {
            b'"' => {
                i = string_end(json, i)?;
                if depth == 0 {
                    return Some(i);
                }
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' if depth == 0 => return Some(i),
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            b',' if depth == 0 => return Some(i),
            _ => {}
        }
        i += 1;
    }
}

impl<'a> TensorFile<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        check_header(bytes)?;
        let (header, metadata) = SafeTensors::read_metadata(bytes).map_err(|e| Error::NotSafetensors(e.to_string()))?;
        if metadata.tensors().len() > limits::TENSORS {
            return Err(Error::LimitExceeded {
                what: "tensors",
                value: metadata.tensors().len() as u64,
                limit: limits::TENSORS as u64,
            });
        }
        let graph_json =
            metadata.metadata().as_ref().and_then(|m| m.get(METADATA_KEY)).cloned().ok_or(Error::MissingGraph)?;
        // read_metadata checked that the header and the data it lists end exactly at the file's end.
        let data_start = 8 + header;
        let data = bytes.get(data_start..).ok_or(Error::Internal("safetensors data before its header's end"))?;
        Ok(TensorFile { data, data_start, metadata, graph_json })
    }

    pub fn graph_json(&self) -> &str {
        &self.graph_json
    }

    /// Tensor names in file order (so the first unexpected one is reported, not a random one).
    pub fn names(&self) -> Vec<String> {
        self.metadata.offset_keys()
    }

    pub fn get(&self, name: &str) -> Option<TensorRef<'a>> {
        let info = self.metadata.info(name)?;
        let (start, end) = info.data_offsets;
        Some(TensorRef {
            name: name.to_string(),
            dtype: info.dtype,
            shape: info.shape.clone(),
            data: self.data.get(start..end)?,
            range: self.data_start + start..self.data_start + end,
        })
    }
}

impl TensorRef<'_> {
    fn expect_shape(&self, expected: &[usize]) -> Result<()> {
        if self.shape != expected {
            return Err(Error::TensorShape {
                tensor: self.name.to_string(),
                expected: expected.to_vec(),
                found: self.shape.clone(),
            });
        }
        Ok(())
    }

    fn dtype_error(&self, expected: &'static str) -> Error {
        Error::TensorDtype { tensor: self.name.to_string(), expected, found: format!("{:?}", self.dtype) }
    }

    /// Float weights of the given shape, converted to f32 (F32, F16 or BF16 in the file).
    pub fn to_f32(&self, expected: &[usize]) -> Result<Vec<f32>> {
        let values = self.decode_float(expected)?;
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::TensorValue {
                tensor: self.name.to_string(),
                reason: format!("element {i} is NaN or infinite"),
            });
        }
        Ok(values)
    }

    fn decode_float(&self, expected: &[usize]) -> Result<Vec<f32>> {
        self.expect_shape(expected)?;
        Ok(match self.dtype {
            StDtype::F32 => self.data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            StDtype::F16 => {
                self.data.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
            }
            StDtype::BF16 => {
                self.data.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
            }
            _ => return Err(self.dtype_error("F32, F16 or BF16")),
        })
    }

    /// An I8 tensor of the given shape, borrowed: its byte range in the file.
    pub fn i8_range(&self, expected: &[usize]) -> Result<Range<usize>> {
        if self.dtype != StDtype::I8 {
            return Err(self.dtype_error("I8"));
        }
        self.expect_shape(expected)?;
        if let Some(i) = self.data.iter().position(|&b| b as i8 == i8::MIN) {
            return Err(Error::TensorValue {
                tensor: self.name.to_string(),
                reason: format!("element {i} is -128; int8 weights are symmetric in [-127, 127]"),
            });
        }
        Ok(self.range.clone())
    }

    pub fn to_i32(&self, expected: &[usize]) -> Result<Vec<i32>> {
        if self.dtype != StDtype::I32 {
            return Err(self.dtype_error("I32"));
        }
        self.expect_shape(expected)?;
        Ok(self.data.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }

    /// An F32 tensor (scales), decoded as is: the caller judges the values.
    pub fn to_f32_exact(&self, expected: &[usize]) -> Result<Vec<f32>> {
        if self.dtype != StDtype::F32 {
            return Err(self.dtype_error("F32"));
        }
        self.decode_float(expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_keys_are_scanned_past_nested_values_and_strings() {
        let json = br#" { "a" : {"x": [1, {"}": "]"}]}, "b\"}":"{,", "c": 12.5e3 ,"d":[]} "#;
        let keys = top_level_keys(json).unwrap();
        assert_eq!(keys, ["a", r#"b\"}"#, "c", "d"]);
        assert!(check_unique_keys(json).is_ok());
        let twice = br#"{"w": {"dtype": "F32"}, "v": 1, "w": {"dtype": "I8"}}"#;
        assert!(matches!(check_unique_keys(twice), Err(Error::NotSafetensors(m)) if m.contains("'w' appears twice")));
        // The same name spelled with escapes, including a surrogate pair.
        let escaped = br#"{"w\u00e9": 1, "x": 2, "\u0077\u00E9": 3}"#;
        assert!(
            matches!(check_unique_keys(escaped), Err(Error::NotSafetensors(m)) if m.contains("'wé' appears twice"))
        );
        let pair = r#"{"\ud83d\ude00\n": 1, "😀\u000a": 2}"#;
        assert!(
            matches!(check_unique_keys(pair.as_bytes()), Err(Error::NotSafetensors(m)) if m.contains("appears twice"))
        );
        assert!(check_unique_keys(br#"{"a\"b": 1, "a\\b": 2, "a/b": 3, "a\/c": 4}"#).is_ok());
        assert_eq!(unescape(r"\ud83d").as_deref(), None, "a lone surrogate is the parser's to report");
        assert_eq!(unescape(r"\q").as_deref(), None);
        assert_eq!(unescape(r"\u00").as_deref(), None);
        assert_eq!(unescape(r"\u+123").as_deref(), None, "four hex digits, no sign");
        for broken in [&b""[..], b"[1]", b"{\"a\"", b"{\"a\":", b"{\"a\" 1}", b"{\"a\":\"", b"{1:2}"] {
            assert!(check_unique_keys(broken).is_ok(), "left to the safetensors parser");
        }
    }
}
