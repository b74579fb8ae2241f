//! Short previews and readable diffs of payloads (JSON and UTF-8 text; binary gets hex).

/// A one-line preview of at most `max` characters: UTF-8 text with control characters escaped,
/// or hex for binary. Never panics, whatever the bytes.
pub fn preview(bytes: &[u8], max: usize) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => {
            let escaped: String = s
                .chars()
                .flat_map(|c| if c.is_control() || c == '\\' { c.escape_default().collect::<Vec<_>>() } else { vec![c] })
                .collect();
            if escaped.chars().count() > max {
                format!("{}…", escaped.chars().take(max).collect::<String>())
            } else {
                escaped
            }
        }
        Err(_) => {
            let n = bytes.len().min(max / 2);
            let hex: String = bytes[..n].iter().map(|b| format!("{b:02x}")).collect();
            format!("0x{hex}{} ({} bytes)", if n < bytes.len() { "…" } else { "" }, bytes.len())
        }
    }
}

/// A readable line diff of two payloads: JSON is pretty-printed first (so a changed field is one
/// line), other UTF-8 text is compared line by line. `None` for binary payloads.
pub fn diff_payloads(expected: &[u8], actual: &[u8]) -> Option<String> {
    let (a, b) = (std::str::from_utf8(expected).ok()?, std::str::from_utf8(actual).ok()?);
    let pretty = |s: &str| serde_json::from_str::<serde_json::Value>(s).ok().and_then(|v| serde_json::to_string_pretty(&v).ok());
    let (a, b) = match (pretty(a), pretty(b)) {
        (Some(x), Some(y)) => (x, y),
        _ => (a.to_string(), b.to_string()),
    };
    let la: Vec<&str> = a.lines().collect();
    let lb: Vec<&str> = b.lines().collect();
    Some(line_diff(&la, &lb))
}

/// Lines longer than this many lines per side are compared without alignment.
const MAX_LINES: usize = 2000;

fn line_diff(a: &[&str], b: &[&str]) -> String {
    let mut out = Vec::new();
    if a.len() > MAX_LINES || b.len() > MAX_LINES {
        out.push(format!("- ({} lines)", a.len()));
        out.push(format!("+ ({} lines)", b.len()));
        return out.join("\n");
    }
    // Longest common subsequence table, from the end.
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![0u32; (n + 1) * (m + 1)];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i * (m + 1) + j] =
                if a[i] == b[j] { lcs[(i + 1) * (m + 1) + j + 1] + 1 } else { lcs[(i + 1) * (m + 1) + j].max(lcs[i * (m + 1) + j + 1]) };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut same_run = 0usize;
    let flush = |out: &mut Vec<String>, same_run: &mut usize| {
        if *same_run > 0 {
            out.push(format!("  … {} unchanged line{}", same_run, if *same_run == 1 { "" } else { "s" }));
            *same_run = 0;
        }
    };
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            same_run += 1;
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[(i + 1) * (m + 1) + j] >= lcs[i * (m + 1) + j + 1]) {
            flush(&mut out, &mut same_run);
            out.push(format!("- {}", a[i]));
            i += 1;
        } else {
            flush(&mut out, &mut same_run);
            out.push(format!("+ {}", b[j]));
            j += 1;
        }
    }
    if out.is_empty() {
        return "(no difference in text; the bytes differ in formatting)".into();
    }
    flush(&mut out, &mut same_run);
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_diff_shows_the_changed_field() {
        let d = diff_payloads(br#"{"a":1,"b":[1,2],"c":"x"}"#, br#"{"a":1,"b":[1,3],"c":"x"}"#).unwrap();
        assert!(d.contains("-     2") && d.contains("+     3"), "{d}");
        assert!(diff_payloads(&[0xff, 0xfe], b"x").is_none());
    }

    #[test]
    fn previews_never_panic() {
        assert_eq!(preview(b"hi\n", 10), "hi\\n");
        assert_eq!(preview("ééééé".as_bytes(), 3), "ééé…");
        assert!(preview(&[0xff, 0x00, 0x80], 10).starts_with("0xff0080"));
        for len in 0..40 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 200) as u8).collect();
            let _ = preview(&bytes, len % 7);
        }
    }
}
