//! JSON strings as `serde-json-core` hands them over without a buffer: the text
//! between the quotes, escapes not decoded. Names are compared, ordered and
//! copied through [`chars`], which decodes them on the fly (surrogate pairs
//! included), so no string is ever built on a heap.

use core::cmp::Ordering;

use crate::error::{text, Error};

/// The characters of a JSON string's contents (between the quotes), escapes
/// decoded; an invalid escape yields `None` (and ends the string).
pub fn chars(raw: &str) -> Chars<'_> {
    Chars { rest: raw.chars(), failed: false }
}

pub struct Chars<'a> {
    rest: core::str::Chars<'a>,
    failed: bool,
}

impl Chars<'_> {
    fn hex4(&mut self) -> Option<u32> {
        let mut unit = 0;
        for _ in 0..4 {
            unit = unit * 16 + self.rest.next()?.to_digit(16)?;
        }
        Some(unit)
    }

    fn escape(&mut self) -> Option<char> {
        Some(match self.rest.next()? {
            '"' => '"',
            '\\' => '\\',
            '/' => '/',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'u' => match self.hex4()? {
                high @ 0xd800..=0xdbff => {
                    // A high surrogate must be followed by an escaped low one.
                    if (self.rest.next()?, self.rest.next()?) != ('\\', 'u') {
                        return None;
                    }
                    match self.hex4()? {
                        low @ 0xdc00..=0xdfff => char::from_u32(0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00))?,
                        _ => return None,
                    }
                }
                unit => char::from_u32(unit)?, // a lone low surrogate is no char: None
            },
            _ => return None,
        })
    }
}

impl Iterator for Chars<'_> {
    type Item = Option<char>;

    fn next(&mut self) -> Option<Option<char>> {
        if self.failed {
            return None;
        }
        let c = self.rest.next()?;
        if c != '\\' {
            return Some(Some(c));
        }
        let decoded = self.escape();
        self.failed = decoded.is_none();
        Some(decoded)
    }
}

/// Whether every escape of `raw` is valid.
pub fn is_valid(raw: &str) -> bool {
    !raw.contains('\\') || chars(raw).all(|c| c.is_some())
}

/// Whether `raw`, decoded, is the concatenation of `parts`.
pub fn eq(raw: &str, parts: &[&str]) -> bool {
    if !raw.contains('\\') {
        let mut rest = raw;
        for part in parts {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        }
        return rest.is_empty();
    }
    chars(raw).map(|c| c.unwrap_or('\u{fffe}')).eq(parts.iter().flat_map(|p| p.chars()))
}

/// `a` and `b` decoded, compared as strings (an invalid escape sorts as U+FFFE).
pub fn cmp(a: &str, b: &str) -> Ordering {
    let decoded = |raw| chars(raw).map(|c: Option<char>| c.unwrap_or('\u{fffe}'));
    decoded(a).cmp(decoded(b))
}

/// Decodes `raw` into `out`: the decoded length, or None if an escape is
/// invalid or `out` is too short.
pub fn decode_into(raw: &str, out: &mut [u8]) -> Option<usize> {
    let mut len = 0;
    for c in chars(raw) {
        let c = c?;
        let bytes = out.get_mut(len..len + c.len_utf8())?;
        c.encode_utf8(bytes);
        len += c.len_utf8();
    }
    Some(len)
}

/// Bytes `raw` decodes to (invalid escapes counted as written).
pub fn decoded_len(raw: &str) -> usize {
    if !raw.contains('\\') {
        return raw.len();
    }
    chars(raw).map(|c| c.map_or(1, char::len_utf8)).sum()
}

/// A `serde-json-core` error inside the safetensors header.
pub fn header_error(e: serde_json_core::de::Error) -> Error {
    Error::NotSafetensors(text!("header JSON: {e}"))
}

/// Formats a decoded JSON string (a name in an error message).
pub struct Decoded<'a>(pub &'a str);

impl core::fmt::Display for Decoded<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        use core::fmt::Write;
        for c in chars(self.0) {
            f.write_char(c.unwrap_or('\u{fffd}'))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(raw: &str) -> Option<alloc::string::String> {
        chars(raw).collect()
    }

    #[test]
    fn escapes_decode_as_json_says() {
        assert_eq!(decoded(r#"a\"b\\c\/d\n\u00e9"#).as_deref(), Some("a\"b\\c/d\né"));
        assert_eq!(decoded(r"\ud83d\ude00!").as_deref(), Some("😀!"));
        for broken in [r"\ud83d", r"\ud83dx", r"\ude00", r"\q", r"\u00", r"\u+123", r"\ud83d\u0041"] {
            assert_eq!(decoded(broken), None, "{broken}");
            assert!(!is_valid(broken));
        }
    }

    #[test]
    fn comparisons_see_through_escapes() {
        assert!(eq(r"conv\u0031.weight", &["conv1", ".", "weight"]));
        assert!(eq("conv1.weight", &["conv1", ".", "weight"]));
        assert!(!eq("conv1.weight", &["conv1", ".", "bias"]));
        assert!(!eq("conv1.w", &["conv1", ".", "weight"]));
        assert_eq!(cmp(r"\u0077\u00E9", "wé"), Ordering::Equal);
        assert_eq!(cmp("a", "b"), Ordering::Less);
        let mut out = [0u8; 8];
        assert_eq!(decode_into(r"\u00e9x", &mut out), Some(3));
        assert_eq!(&out[..3], "éx".as_bytes());
        assert_eq!(decode_into("123456789", &mut out), None);
        assert_eq!(decoded_len(r"\u00e9x\n"), 4);
    }
}
