//! JSON kept as text: a value's bytes are stored and printed as written (every number's digits,
//! key order), only the insignificant whitespace between tokens is removed. A float parser in
//! between would turn `0.10093445704452375` into `...376` and `1.10` into `1.1`.

use serde_json::value::RawValue;

/// `text` (one valid JSON value) without whitespace outside strings.
pub fn compact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            out.push(c);
        }
    }
    out
}

/// The compact text of a stored payload when it is one valid JSON value (UTF-8), else `None`.
pub fn stored_json(data: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(data).ok()?;
    let raw: &RawValue = serde_json::from_str(text).ok()?;
    Some(compact(raw.get()))
}

/// A JSON string literal of `s`.
pub fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_keeps_numbers_strings_and_order() {
        assert_eq!(compact("{ \"b\" : 1.10 , \"a\": [ -0.0, 1e400 ] }"), "{\"b\":1.10,\"a\":[-0.0,1e400]}");
        assert_eq!(compact("\"a \\\" b \\\\\"  "), "\"a \\\" b \\\\\"");
        assert_eq!(
            compact("{\"x\": 0.10093445704452375, \"n\": 123456789012345678901234567890}"),
            "{\"x\":0.10093445704452375,\"n\":123456789012345678901234567890}"
        );
    }

    #[test]
    fn stored_json_refuses_what_is_not_one_value() {
        assert_eq!(stored_json(b" {\"a\": 1}\n").as_deref(), Some("{\"a\":1}"));
        assert_eq!(stored_json(b"{\"a\": 1} 2"), None);
        assert_eq!(stored_json(&[0xff, 0x00]), None);
        assert_eq!(stored_json(b""), None);
    }
}
