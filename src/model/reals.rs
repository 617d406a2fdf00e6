//! The graph JSON's real numbers (scales, `eps`, `beta`, clamp bounds, the
//! input's `mean` and `std`), read in two steps: the graph's reader notes
//! where each one's text is ([`RealAt`]), and the values are parsed apart,
//! once, into a table in scratch memory ([`Reals`]) that the later passes
//! look them up in.
//!
//! Why not parse them as they are read: core's decimal parser takes 1.7 KB of
//! stack on a Cortex-M, and under the reader's own frames that was the whole
//! load's stack peak (4.8 KB), above what a run needs.

use super::sort::sort;
use crate::error::{text, Error, Result};

/// Characters of a JSON number's text (what serde-json-core reads as one).
const NUMBER_CHARS: &[u8] = b"0123456789+-.eE";
/// JSON's whitespace between tokens.
const WHITESPACE: &[u8] = b" \t\n\r";

/// Where a real number's text starts in the graph JSON (a byte offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RealAt(u32);

/// The value after `key` in a JSON object, where `key` is the object's key as
/// the reader borrowed it from `json` (escapes not decoded): `None` for
/// `null`, else where its number starts. Refuses anything but a number's text
/// followed by the object's next `,` or its `}` (the reader itself then skips
/// the value without parsing it). `field` names the key in messages.
pub fn number_after(json: &str, key: &str, field: &str) -> Result<Option<RealAt>> {
    let bytes = json.as_bytes();
    let key_end = (key.as_ptr() as usize)
        .checked_sub(bytes.as_ptr() as usize)
        .map(|start| start + key.len())
        .filter(|&end| end <= bytes.len())
        .ok_or(Error::Internal("a JSON key outside the graph's text"))?;
    let not_a_number = || Error::GraphJson(text!("`{field}` must be a number"));
    // The key's closing quote, then `:` with whitespace around it.
    let mut at = key_end;
    let skip_whitespace = |at: &mut usize| {
        while bytes.get(*at).is_some_and(|b| WHITESPACE.contains(b)) {
            *at += 1;
        }
    };
    if bytes.get(at) != Some(&b'"') {
        return Err(Error::Internal("a JSON key not followed by its closing quote"));
    }
    at += 1;
    skip_whitespace(&mut at);
    if bytes.get(at) != Some(&b':') {
        return Err(not_a_number());
    }
    at += 1;
    skip_whitespace(&mut at);
    let start = at;
    let value = if bytes[start..].starts_with(b"null") {
        at += 4;
        None
    } else {
        at += number_len(&bytes[start..]);
        if at == start {
            return Err(not_a_number());
        }
        // Below limits::GRAPH_JSON_BYTES, which `read` checked: the offset fits.
        Some(RealAt(u32::try_from(start).map_err(|_| Error::Internal("a graph JSON above its limit"))?))
    };
    skip_whitespace(&mut at);
    match bytes.get(at) {
        Some(b',' | b'}') => Ok(value),
        _ => Err(not_a_number()),
    }
}

/// Length of the number's text at the start of `bytes`.
fn number_len(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|b| NUMBER_CHARS.contains(b)).count()
}

/// The number whose text starts at `at`, parsed as serde-json-core would
/// (core's correctly rounded parse of the whole text).
// Never inlined: core's parse is called from this small frame, wherever the
// caller's frames are.
#[inline(never)]
pub fn parse(json: &str, at: RealAt) -> Result<f64> {
    let rest = json.as_bytes().get(at.0 as usize..).unwrap_or_default();
    let digits = &rest[..number_len(rest)];
    // Only ASCII: NUMBER_CHARS.
    let text = core::str::from_utf8(digits).unwrap_or("");
    text.parse::<f64>().map_err(|_| Error::GraphJson(text!("`{text}` is not a number")))
}

/// The values of the nodes' real numbers, by where their texts start.
#[derive(Clone, Copy)]
pub struct Reals<'s> {
    /// Ascending.
    at: &'s [u32],
    values: &'s [f64],
}

impl<'s> Reals<'s> {
    /// Parses the numbers at `at` (in any order; sorted here) into `values`
    /// (as long as `at`).
    // Never inlined: see `parse`.
    #[inline(never)]
    pub fn parse_all(json: &str, at: &'s mut [u32], values: &'s mut [f64]) -> Result<Reals<'s>> {
        sort(at, &mut |a, b| a.cmp(&b));
        for (value, &offset) in values.iter_mut().zip(at.iter()) {
            *value = parse(json, RealAt(offset))?;
        }
        Ok(Reals { at, values })
    }

    /// The value of the number at `at`, if there is one.
    pub fn get(&self, at: Option<RealAt>) -> Result<Option<f64>> {
        let Some(RealAt(offset)) = at else { return Ok(None) };
        match self.at.binary_search(&offset) {
            Ok(k) => self.values.get(k).copied().map(Some).ok_or(Error::Internal("a real number without its value")),
            Err(_) => Err(Error::Internal("a real number the first pass did not see")),
        }
    }
}

impl RealAt {
    /// The offset, as the first pass records it.
    pub fn offset(self) -> u32 {
        self.0
    }
}
