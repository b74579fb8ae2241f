//! Comparing two sessions' actions side by side.

use super::action::Action;
use super::diff::{diff_payloads, preview};
use crate::error::Result;
use crate::read::Session;

/// How an action of one session relates to the other session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ComparisonStatus {
    /// Same kind, input and output.
    Matching,
    /// Aligned, but the input or the output differs.
    Differing,
    /// Only in session A.
    OnlyInA,
    /// Only in session B.
    OnlyInB,
}

/// One line of a comparison.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ComparisonEntry {
    /// The relation.
    pub status: ComparisonStatus,
    /// Sequence number in A, if present there.
    pub seq_a: Option<u64>,
    /// Sequence number in B, if present there.
    pub seq_b: Option<u64>,
    /// Action kind.
    pub kind: String,
    /// For differing entries: what differs, with a readable diff.
    pub detail: Option<String>,
}

/// Counts of a comparison.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ComparisonSummary {
    /// Matching actions.
    pub matching: u64,
    /// Differing actions.
    pub differing: u64,
    /// Actions only in A.
    pub only_in_a: u64,
    /// Actions only in B.
    pub only_in_b: u64,
}

/// The result of [`compare_sessions`]: entries in a deterministic order (by position in A, then
/// B), and a summary.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ComparisonReport {
    /// Every action of either session, aligned.
    pub entries: Vec<ComparisonEntry>,
    /// The counts.
    pub summary: ComparisonSummary,
}

impl ComparisonReport {
    /// Whether the sessions hold the same actions with the same results.
    pub fn is_identical(&self) -> bool {
        let s = self.summary;
        s.differing == 0 && s.only_in_a == 0 && s.only_in_b == 0
    }

    /// A readable rendering: differences with details, then the summary.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for e in &self.entries {
            let pos = |s: Option<u64>| s.map(|x| format!("#{x}")).unwrap_or_else(|| "-".into());
            match e.status {
                ComparisonStatus::Matching => {}
                ComparisonStatus::Differing => {
                    out.push_str(&format!("~ A{} B{} {}\n", pos(e.seq_a), pos(e.seq_b), e.kind));
                    if let Some(d) = &e.detail {
                        for l in d.lines() {
                            out.push_str(&format!("    {l}\n"));
                        }
                    }
                }
                ComparisonStatus::OnlyInA => out.push_str(&format!("- A{} {} (only in A)\n", pos(e.seq_a), e.kind)),
                ComparisonStatus::OnlyInB => out.push_str(&format!("+ B{} {} (only in B)\n", pos(e.seq_b), e.kind)),
            }
        }
        let s = self.summary;
        out.push_str(&format!(
            "{} matching, {} differing, {} only in A, {} only in B\n",
            s.matching, s.differing, s.only_in_a, s.only_in_b
        ));
        out
    }
}

fn same_call(a: &Action, b: &Action) -> bool {
    a.kind == b.kind && a.input == b.input
}

fn output_bytes(o: &std::result::Result<Vec<u8>, String>) -> Vec<u8> {
    match o {
        Ok(b) => b.clone(),
        Err(e) => format!("error: {e}").into_bytes(),
    }
}

fn detail(a: &Action, b: &Action) -> String {
    let mut s = String::new();
    if a.input != b.input {
        s.push_str(&format!("input: {} → {}\n", preview(&a.input, 60), preview(&b.input, 60)));
        if let Some(d) = diff_payloads(&a.input, &b.input) {
            s.push_str(&d);
            s.push('\n');
        }
    }
    let (oa, ob) = (output_bytes(&a.output), output_bytes(&b.output));
    if oa != ob {
        s.push_str(&format!("output: {} → {}\n", preview(&oa, 60), preview(&ob, 60)));
        if let Some(d) = diff_payloads(&oa, &ob) {
            s.push_str(&d);
            s.push('\n');
        }
    }
    s.trim_end().to_string()
}

/// Above this many action pairs, alignment falls back to sequence numbers only.
const MAX_ALIGN_CELLS: usize = 16_000_000;

/// Aligns two sessions' actions and compares them. Actions are paired by the longest common
/// subsequence of (kind, input), so an inserted or removed action shifts nothing else; the
/// unpaired actions between two pairs are then paired by position when their kinds agree
/// (same call slot, different input). Very long sessions are aligned by sequence number.
pub fn compare_sessions(a: &Session, b: &Session) -> Result<ComparisonReport> {
    let (xa, xb) = (a.actions()?, b.actions()?);
    Ok(compare_actions(&xa, &xb))
}

/// Pairs of positions of the longest common subsequence under `eq`, in order.
fn align(n: usize, m: usize, eq: impl Fn(usize, usize) -> bool) -> Vec<(usize, usize)> {
    if n.saturating_mul(m) > MAX_ALIGN_CELLS {
        return (0..n.min(m)).filter(|&k| eq(k, k)).map(|k| (k, k)).collect();
    }
    let mut lcs = vec![0u32; (n + 1) * (m + 1)];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i * (m + 1) + j] =
                if eq(i, j) { lcs[(i + 1) * (m + 1) + j + 1] + 1 } else { lcs[(i + 1) * (m + 1) + j].max(lcs[i * (m + 1) + j + 1]) };
        }
    }
    let (mut i, mut j, mut pairs) = (0, 0, Vec::new());
    while i < n && j < m {
        if eq(i, j) {
            pairs.push((i, j));
            i += 1;
            j += 1;
        } else if lcs[(i + 1) * (m + 1) + j] >= lcs[i * (m + 1) + j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    pairs
}

/// [`compare_sessions`] over action lists.
pub fn compare_actions(xa: &[Action], xb: &[Action]) -> ComparisonReport {
    let (n, m) = (xa.len(), xb.len());
    let mut report = ComparisonReport::default();
    let push = |report: &mut ComparisonReport, status, ia: Option<usize>, ib: Option<usize>| {
        let kind = ia.map(|i| xa[i].kind.clone()).or_else(|| ib.map(|j| xb[j].kind.clone())).unwrap_or_default();
        let d = match (status, ia, ib) {
            (ComparisonStatus::Differing, Some(i), Some(j)) => Some(detail(&xa[i], &xb[j])),
            _ => None,
        };
        match status {
            ComparisonStatus::Matching => report.summary.matching += 1,
            ComparisonStatus::Differing => report.summary.differing += 1,
            ComparisonStatus::OnlyInA => report.summary.only_in_a += 1,
            ComparisonStatus::OnlyInB => report.summary.only_in_b += 1,
        }
        report.entries.push(ComparisonEntry { status, seq_a: ia.map(|i| xa[i].seq), seq_b: ib.map(|j| xb[j].seq), kind, detail: d });
    };
    // Emits a stretch of unpaired actions, pairing those of the same kind (same call slot,
    // different input) as differing.
    let gap = |report: &mut ComparisonReport, (i0, i1): (usize, usize), (j0, j1): (usize, usize)| {
        let inner = align(i1 - i0, j1 - j0, |p, q| xa[i0 + p].kind == xb[j0 + q].kind);
        let (mut i, mut j) = (i0, j0);
        for &(p, q) in inner.iter().chain(std::iter::once(&(i1 - i0, j1 - j0))) {
            (i..i0 + p).for_each(|k| push(report, ComparisonStatus::OnlyInA, Some(k), None));
            (j..j0 + q).for_each(|k| push(report, ComparisonStatus::OnlyInB, None, Some(k)));
            if i0 + p < i1 && j0 + q < j1 {
                push(report, ComparisonStatus::Differing, Some(i0 + p), Some(j0 + q));
            }
            i = i0 + p + 1;
            j = j0 + q + 1;
        }
    };
    let pairs = align(n, m, |i, j| same_call(&xa[i], &xb[j]));
    let (mut i, mut j) = (0usize, 0usize);
    for &(pi, pj) in pairs.iter().chain(std::iter::once(&(n, m))) {
        gap(&mut report, (i, pi), (j, pj));
        if pi < n && pj < m {
            let same_output = xa[pi].output == xb[pj].output;
            push(&mut report, if same_output { ComparisonStatus::Matching } else { ComparisonStatus::Differing }, Some(pi), Some(pj));
        }
        i = pi + 1;
        j = pj + 1;
    }
    report
}
