//! The JSON API of `rec view`: pure functions from the open file and a query to a JSON answer
//! (or a message for a 400). No paths are taken from a query.

use crate::output::frame_line;
use recfile::{RecFile, Session, Timestamp};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A query string, decoded.
pub struct Query(HashMap<String, String>);

impl Query {
    /// Parses `a=1&b=x%20y`.
    pub fn parse(q: &str) -> Query {
        let mut m = HashMap::new();
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            m.insert(decode(k), decode(v));
        }
        Query(m)
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// A time given as `name` (seconds or ISO 8601) or `name_ns` (integer nanoseconds).
    fn time(&self, name: &str) -> Result<Option<Timestamp>, String> {
        if let Some(ns) = self.get(&format!("{name}_ns")) {
            return ns.parse::<i64>().map(|n| Some(Timestamp::from_nanos(n))).map_err(|_| format!("{name}_ns: not an integer: {ns:?}"));
        }
        match self.get(name) {
            Some(v) => Timestamp::parse(v).map(Some).map_err(|e| format!("{name}: {e}")),
            None => Ok(None),
        }
    }

    /// A duration given as `name` (seconds) or `name_ns`.
    fn duration_ns(&self, name: &str) -> Result<Option<i64>, String> {
        if let Some(ns) = self.get(&format!("{name}_ns")) {
            return ns.parse::<i64>().map(Some).map_err(|_| format!("{name}_ns: not an integer: {ns:?}"));
        }
        match self.get(name) {
            Some(v) => recfile::time::parse_duration(v)
                .map(|d| Some(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)))
                .map_err(|e| format!("{name}: {e}")),
            None => Ok(None),
        }
    }
}

/// Percent-decoding of a query component (`+` is a space); a malformed escape stays as is.
fn decode(s: &str) -> String {
    fn hex(c: u8) -> Option<u8> {
        (c as char).to_digit(16).map(|d| d as u8)
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push(h * 16 + l);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Timestamps and gap statistics of a stream, computed once from the index.
struct StreamTimes {
    ts: Vec<i64>,
    median_period: i64,
    max_gap: i64,
}

/// The file being viewed, with per-stream caches.
pub struct View {
    pub file: RecFile,
    pub report: Option<Value>,
    times: Mutex<HashMap<(usize, String), Arc<StreamTimes>>>,
}

impl View {
    /// A view of an open file, with an optional replay report.
    pub fn new(file: RecFile, report: Option<Value>) -> View {
        View { file, report, times: Mutex::new(HashMap::new()) }
    }

    fn session(&self, q: &Query) -> Result<Session, String> {
        match q.get("session") {
            Some(s) => self.file.find_session(s).map_err(|e| e.to_string()),
            None => self.file.last_session().ok_or_else(|| "the file holds no session".to_string()),
        }
    }

    fn stream_name(q: &Query) -> Result<&str, String> {
        q.get("stream").ok_or_else(|| "stream: required".to_string())
    }

    fn times(&self, s: &Session, name: &str) -> Result<Arc<StreamTimes>, String> {
        let key = (s.position(), name.to_string());
        if let Some(t) = self.times.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(t.clone());
        }
        let ts = s.stream(name).map_err(|e| e.to_string())?.timestamps();
        let mut diffs: Vec<i64> = ts.windows(2).map(|w| w[1] - w[0]).collect();
        let max_gap = diffs.iter().copied().max().unwrap_or(0);
        let median_period = if diffs.is_empty() {
            0
        } else {
            let mid = diffs.len() / 2;
            *diffs.select_nth_unstable(mid).1
        };
        let t = Arc::new(StreamTimes { ts, median_period, max_gap });
        self.times.lock().unwrap_or_else(|p| p.into_inner()).insert(key, t.clone());
        Ok(t)
    }

    /// `/api/info`: what `rec info --json` prints, plus each stream's median and max gap.
    pub fn info(&self) -> Value {
        let mut v = crate::info::info_json(&self.file);
        v["path"] = json!(self.file.path().map(|p| p.display().to_string()));
        v["needs_recovery"] = json!(self.file.needs_recovery());
        v["warnings"] = json!(self.file.warnings());
        v["has_report"] = json!(self.report.is_some());
        v
    }

    /// `/api/density`: frame counts per time bin, from the index (O(bins · log n)).
    pub fn density(&self, q: &Query) -> Result<Value, String> {
        let s = self.session(q)?;
        let name = Self::stream_name(q)?;
        let r = s.stream(name).map_err(|e| e.to_string())?;
        let bins: usize = match q.get("bins") {
            Some(b) => b.parse().map_err(|_| format!("bins: not a number: {b:?}"))?,
            None => 200,
        };
        if bins == 0 || bins > 100_000 {
            return Err("bins: between 1 and 100000".into());
        }
        let (first, last) = match (r.first_timestamp(), r.last_timestamp()) {
            (Some(a), Some(b)) => (a.as_nanos(), b.as_nanos()),
            _ => (s.start_time().as_nanos(), s.start_time().as_nanos()),
        };
        let from = q.time("from")?.map_or(first, |t| t.as_nanos());
        let until = q.time("until")?.map_or(last.saturating_add(1), |t| t.as_nanos());
        if until <= from {
            return Err(format!("until ({until}) must be after from ({from})"));
        }
        let span = i128::from(until) - i128::from(from);
        let bin_ns = ((span + bins as i128 - 1) / bins as i128).max(1) as i64;
        let mut counts = Vec::with_capacity(bins);
        let mut prev = r.position_of(Timestamp::from_nanos(from));
        for i in 1..=bins {
            let edge = from.saturating_add(bin_ns.saturating_mul(i as i64)).min(until);
            let p = r.position_of(Timestamp::from_nanos(edge));
            counts.push(p - prev);
            prev = p;
        }
        Ok(json!({ "from_ns": from, "until_ns": until, "bin_ns": bin_ns, "counts": counts }))
    }

    /// `/api/gaps`: intervals without a frame longer than `min` (default 3× the median period).
    pub fn gaps(&self, q: &Query) -> Result<Value, String> {
        let s = self.session(q)?;
        let name = Self::stream_name(q)?;
        let t = self.times(&s, name)?;
        let min = q.duration_ns("min")?.unwrap_or(t.median_period.saturating_mul(3));
        let from = q.time("from")?.map(|t| t.as_nanos());
        let until = q.time("until")?.map(|t| t.as_nanos());
        let mut gaps = Vec::new();
        for w in t.ts.windows(2) {
            let d = w[1] - w[0];
            if d > min && min > 0 && from.is_none_or(|f| w[1] >= f) && until.is_none_or(|u| w[0] <= u) {
                gaps.push(json!({ "from_ns": w[0], "until_ns": w[1], "duration_ns": d }));
                if gaps.len() >= 10_000 {
                    break;
                }
            }
        }
        Ok(json!({ "min_ns": min, "median_period_ns": t.median_period, "max_gap_ns": t.max_gap, "gaps": gaps }))
    }

    /// `/api/frame`: the closest frame, as `cat --json` prints it (its `ts` the exact decimal,
    /// JSON data as stored), with `encoding`, `size` and a rendering hint; JSON text.
    pub fn frame(&self, q: &Query) -> Result<String, String> {
        let s = self.session(q)?;
        let name = Self::stream_name(q)?;
        let r = s.stream(name).map_err(|e| e.to_string())?;
        let at = q.time("ts")?.ok_or("ts (seconds or ISO 8601) or ts_ns: required")?;
        let f = match r.try_find_closest(at, None) {
            Ok(Some(f)) => f,
            Ok(None) => return Ok("null".into()),
            Err(e) => return Ok(json!({ "damaged": e.to_string() }).to_string()),
        };
        let encoding = r.encoding().to_string();
        // The `cat --json` line kept as text (its numbers exact), with the extra fields added.
        let line = frame_line(&f, &encoding, None);
        let extra = json!({ "encoding": encoding, "size": f.data().len(), "render": render(&encoding, f.data()) }).to_string();
        Ok(format!("{},{}", &line[..line.len() - 1], &extra[1..]))
    }

    /// `/api/actions`: the session's actions and checkpoints.
    pub fn actions(&self, q: &Query) -> Result<Value, String> {
        let s = self.session(q)?;
        let actions = s.actions().map_err(|e| e.to_string())?;
        let cps = s.checkpoints().map_err(|e| e.to_string())?;
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        Ok(json!({
            "actions": actions.iter().map(|a| json!({
                "seq": a.seq,
                "ts_ns": a.ts.as_nanos(),
                "kind": a.kind,
                "input": text(&a.input),
                "output": a.output.as_ref().ok().map(|o| text(o)),
                "error": a.output.as_ref().err(),
                "duration_ns": a.duration.as_nanos() as u64,
            })).collect::<Vec<_>>(),
            "checkpoints": cps.iter().map(|c| json!({
                "number": c.number,
                "wall_ns": c.wall_time.as_nanos(),
                "frames_total": c.frames_total,
                "state_bytes": c.state.len(),
            })).collect::<Vec<_>>(),
        }))
    }

    /// `/api/report`: the replay report given with `--report`.
    pub fn report(&self) -> Result<Value, String> {
        self.report.clone().ok_or_else(|| "no report: start rec view with --report REPORT.json".into())
    }
}

/// How the page shows a payload: JSON pretty-printed, text as text, images as images, anything
/// else as a hex dump of its first bytes.
fn render(encoding: &str, data: &[u8]) -> Value {
    use base64::Engine;
    let is_png = data.starts_with(b"\x89PNG\r\n\x1a\n");
    let is_jpeg = data.starts_with(&[0xff, 0xd8, 0xff]);
    let lower = encoding.to_ascii_lowercase();
    if lower.contains("jpeg") || lower.contains("jpg") || is_jpeg || lower.contains("png") || is_png {
        let mime = if lower.contains("png") || is_png { "image/png" } else { "image/jpeg" };
        let b64 = base64::engine::general_purpose::STANDARD.encode(data);
        return json!({ "kind": "image", "src": format!("data:{mime};base64,{b64}") });
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(v) = serde_json::from_str::<Value>(text) {
            if lower == "json" || text.trim_start().starts_with(['{', '[']) {
                return json!({ "kind": "json", "text": serde_json::to_string_pretty(&v).unwrap_or_default() });
            }
        }
        if text.chars().all(|c| !c.is_control() || c == '\n' || c == '\t' || c == '\r') {
            return json!({ "kind": "text", "text": text.chars().take(4096).collect::<String>() });
        }
    }
    let head = &data[..data.len().min(256)];
    let mut hex = String::new();
    for (i, chunk) in head.chunks(16).enumerate() {
        let bytes: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        let ascii: String = chunk.iter().map(|&b| if (0x20..0x7f).contains(&b) { b as char } else { '.' }).collect();
        hex.push_str(&format!("{:08x}  {:<48} {ascii}\n", i * 16, bytes.join(" ")));
    }
    json!({ "kind": "hex", "text": hex, "shown": head.len(), "size": data.len() })
}
