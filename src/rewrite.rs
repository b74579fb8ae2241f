//! New recordings made of existing ones, frame by frame: [`filter`] (some streams, a time
//! window, one session), [`merge`] (several files' sessions into one file, or their streams onto
//! one clock in one session) and [`split`] (one recording into pieces by time or size).
//!
//! Each streams through its input (memory flat in its size) and keeps exactly what it copies:
//! payloads, timestamps, encodings, schemas, session ids, names, start and end times,
//! metadata, and the actions stream (actions are frames of it, so the selected ones stay
//! actions). MCAP publish times and sequences (the internal message-info stream, keyed by a
//! frame's stream and arrival number) are rewritten for the frames' new numbers. Damaged input
//! frames are left out and listed in the report. Checkpoint states are not copied.

use crate::error::{Error, Result};
use crate::interop::message_info::{self, MessageInfo, MESSAGE_INFO_ENCODING, MESSAGE_INFO_STREAM};
use crate::read::{RecFile, Session, StreamInfo};
use crate::time::Timestamp;
use crate::write::{Recorder, SessionStart, SessionWriter, StreamId};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a rewrite wrote.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RewriteReport {
    /// Files written, in order.
    pub files: Vec<PathBuf>,
    /// Sessions written (over all files).
    pub sessions: usize,
    /// Frames written (internal streams not counted).
    pub frames: u64,
    /// Damaged input frames left out, each naming its file and offset.
    pub damaged: Vec<String>,
}

/// Which frames [`filter`] keeps.
pub struct Selection<'a> {
    /// Keeps a stream by name (internal streams follow the streams they describe).
    pub stream: &'a dyn Fn(&str) -> bool,
    /// Frames at or after this time.
    pub from: Option<Timestamp>,
    /// Frames at or before this time (inclusive).
    pub until: Option<Timestamp>,
    /// Only this session (a position, id or name as [`RecFile::find_session`] takes), else every
    /// session.
    pub session: Option<&'a str>,
}

/// How [`split`] cuts.
#[derive(Clone, Copy, Debug)]
pub enum SplitBy {
    /// A piece per this much time, from the first frame of each session.
    Every(Duration),
    /// A new piece before a frame that would take the piece past about this many bytes.
    MaxBytes(u64),
}

fn open(path: &Path) -> Result<RecFile> {
    RecFile::open(path).map_err(|e| e.with_path(path))
}

/// Frame overhead used to estimate a piece's size: record header, frame fields, index entry.
const FRAME_OVERHEAD: u64 = 40;

/// Copies frames of one source session into a writer, numbering them anew.
struct Copier {
    /// Source (session key, stream id) → destination stream.
    streams: HashMap<(usize, u16), StreamId>,
    /// Destination streams by name, with their definitions (several sources may write to one:
    /// the parts of a split recording).
    defined: HashMap<String, (StreamId, StreamInfo)>,
    /// Frames written to each destination stream.
    counts: HashMap<u16, u64>,
    /// Message info of source sessions that have it.
    info: HashMap<usize, HashMap<(u16, u64), MessageInfo>>,
    info_stream: Option<StreamId>,
    frames: u64,
    bytes: u64,
}

impl Copier {
    fn new() -> Self {
        Copier {
            streams: HashMap::new(),
            defined: HashMap::new(),
            counts: HashMap::new(),
            info: HashMap::new(),
            info_stream: None,
            frames: 0,
            bytes: 0,
        }
    }

    /// Defines `st` of `src` in `w` as `name`; a stream of that name defined already by another
    /// source is the same stream when its encoding and schema are the same, a clash otherwise.
    fn define(&mut self, w: &mut SessionWriter, src: &Session, key: usize, st: &StreamInfo, name: &str) -> Result<()> {
        if let std::collections::hash_map::Entry::Vacant(e) = self.info.entry(key) {
            if let Some(info) = message_info::read(src)? {
                e.insert(info);
            }
        }
        let sid = match self.defined.get(name) {
            Some((sid, def)) if def.encoding == st.encoding && def.schema_name == st.schema_name && def.schema == st.schema => *sid,
            Some((_, def)) => {
                return Err(Error::InvalidArgument(format!(
                    "stream {name:?} has encoding {:?} and schema {:?} in one input but {:?} and {:?} in another; give --prefix to name each stream after its file",
                    def.encoding, def.schema_name, st.encoding, st.schema_name
                )))
            }
            None => {
                let sid = w.add_stream_with_schema(name, &st.encoding, &st.schema_name, &st.schema)?;
                self.defined.insert(name.to_string(), (sid, st.clone()));
                sid
            }
        };
        let src_id = src.all_streams().iter().position(|s| s.name == st.name).unwrap_or(0) as u16;
        self.streams.insert((key, src_id), sid);
        Ok(())
    }

    /// Copies the frames of `names` of `src` (defined with key 0) in `[from, until]`, merged in
    /// timestamp order; returns how many.
    fn copy(
        &mut self,
        w: &mut SessionWriter,
        src: &Session,
        names: &[&str],
        (from, until): (Option<Timestamp>, Option<Timestamp>),
        damaged: &mut Vec<String>,
        path: &Path,
    ) -> Result<u64> {
        if names.is_empty() {
            return Ok(0);
        }
        let from = from.unwrap_or(Timestamp::from_nanos(i64::MIN));
        let to = until.and_then(|t| t.as_nanos().checked_add(1)).map(Timestamp::from_nanos);
        let replay = src.replay(names)?;
        let mut frames = replay.iterate_range(from, to);
        let mut n = 0;
        while let Some(f) = frames.next_ref() {
            let f = match f {
                Ok(f) => f,
                Err(e) => {
                    damaged.push(format!("{}: {e}", path.display()));
                    continue;
                }
            };
            self.write(w, 0, f.stream_id(), f.seq(), f.timestamp(), f.data())?;
            n += 1;
        }
        Ok(n)
    }

    fn write(&mut self, w: &mut SessionWriter, key: usize, stream: u16, seq: u64, ts: Timestamp, data: &[u8]) -> Result<()> {
        let Some(&sid) = self.streams.get(&(key, stream)) else {
            return Err(Error::InvalidArgument(format!("frame of undefined stream {stream}")));
        };
        let count = self.counts.entry(sid.0).or_insert(0);
        let new_seq = *count;
        *count += 1;
        w.write(sid, ts, data)?;
        self.frames += 1;
        self.bytes += data.len() as u64 + FRAME_OVERHEAD;
        if let Some(i) = self.info.get(&key).and_then(|m| m.get(&(stream, seq))).copied() {
            let info_stream = match self.info_stream {
                Some(s) => s,
                None => *self.info_stream.insert(w.add_stream(MESSAGE_INFO_STREAM, MESSAGE_INFO_ENCODING)?),
            };
            let seq32 = u32::try_from(new_seq).map_err(|_| Error::LimitExceeded("more than 2^32 frames in one MCAP stream".into()))?;
            w.write(info_stream, ts, &message_info::encode(sid.0, seq32, i))?;
        }
        Ok(())
    }
}

/// The streams of `s` to copy: every stream `keep` accepts (the message-info stream never: it
/// is rewritten), internal streams other than it (attachments) when every stream is kept.
fn chosen_streams(s: &Session, keep: &dyn Fn(&str) -> bool) -> Vec<StreamInfo> {
    let all = s.all_streams();
    let visible_all = all.iter().filter(|st| !crate::read::is_internal_encoding(&st.encoding)).all(|st| keep(&st.name));
    all.into_iter()
        .filter(|st| st.name != MESSAGE_INFO_STREAM)
        .filter(|st| if crate::read::is_internal_encoding(&st.encoding) { visible_all } else { keep(&st.name) })
        .collect()
}

fn start_of(s: &Session, id: Option<uuid::Uuid>) -> SessionStart {
    let mut start = SessionStart::new(s.name()).start_time(s.start_time()).id(id.unwrap_or_else(|| s.id()));
    for (k, v) in s.metadata() {
        start = start.metadata(k, v);
    }
    start
}

/// Writes the selected frames of `input` into the new file `output`, each selected session as
/// a session of its own.
pub fn filter(input: &Path, output: &Path, sel: &Selection<'_>, progress: &mut dyn FnMut(u64)) -> Result<RewriteReport> {
    let file = open(input)?;
    let sessions = match sel.session {
        Some(key) => vec![file.find_session(key)?],
        None => file.sessions(),
    };
    let mut rec = Recorder::create(output)?;
    let mut report = RewriteReport { files: vec![output.to_path_buf()], ..Default::default() };
    for s in &sessions {
        let streams = chosen_streams(s, sel.stream);
        let mut w = rec.start_session_from(start_of(s, None))?;
        let mut c = Copier::new();
        for st in &streams {
            c.define(&mut w, s, 0, st, &st.name)?;
        }
        let names: Vec<&str> = streams.iter().map(|st| st.name.as_str()).collect();
        report.frames += c.copy(&mut w, s, &names, (sel.from, sel.until), &mut report.damaged, input)?;
        progress(report.frames);
        if let Some(end) = s.end_time() {
            w.set_end_time(end)?;
        }
        w.finish()?;
        report.sessions += 1;
    }
    Ok(report)
}

/// Writes the sessions of `inputs` into the new file `output`: each as a session of its own, or
/// with `one_session` the streams of all of them in one session of that name, on one clock
/// (stream names that clash are an error unless `prefix`, which names each stream
/// `<input file stem>/<name>`).
pub fn merge(
    inputs: &[PathBuf],
    output: &Path,
    one_session: Option<&str>,
    prefix: bool,
    progress: &mut dyn FnMut(u64),
) -> Result<RewriteReport> {
    let files: Vec<(PathBuf, RecFile)> = inputs.iter().map(|p| open(p).map(|f| (p.clone(), f))).collect::<Result<_>>()?;
    let name_of = |path: &Path, stream: &str| -> String {
        if prefix {
            format!("{}/{stream}", path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default())
        } else {
            stream.to_string()
        }
    };
    let mut report = RewriteReport { files: vec![output.to_path_buf()], ..Default::default() };
    let Some(name) = one_session else {
        let mut rec = Recorder::create(output)?;
        let mut ids = HashSet::new();
        for (path, f) in &files {
            for s in f.sessions() {
                // A session id seen already (pieces of one split) gets a new one.
                let id = if ids.insert(s.id()) { None } else { Some(uuid::Uuid::new_v4()) };
                if let Some(id) = id {
                    ids.insert(id);
                }
                let mut w = rec.start_session_from(start_of(&s, id))?;
                let mut c = Copier::new();
                let streams = chosen_streams(&s, &|_| true);
                for st in &streams {
                    c.define(&mut w, &s, 0, st, &name_of(path, &st.name))?;
                }
                let names: Vec<&str> = streams.iter().map(|st| st.name.as_str()).collect();
                report.frames += c.copy(&mut w, &s, &names, (None, None), &mut report.damaged, path)?;
                progress(report.frames);
                if let Some(end) = s.end_time() {
                    w.set_end_time(end)?;
                }
                w.finish()?;
                report.sessions += 1;
            }
        }
        return Ok(report);
    };
    // One session: every input session's streams on one clock; a stream in several inputs with
    // the same encoding and schema is one stream (the parts of a split recording), a name with
    // different definitions is an error (before any frame is written) unless `prefix`.
    let sources: Vec<(&PathBuf, Session)> = files.iter().flat_map(|(p, f)| f.sessions().into_iter().map(move |s| (p, s))).collect();
    let mut seen: HashMap<String, (StreamInfo, &Path)> = HashMap::new();
    for (path, s) in &sources {
        for st in chosen_streams(s, &|_| true) {
            let n = name_of(path, &st.name);
            match seen.get(&n) {
                Some((d, other)) if d.encoding != st.encoding || d.schema_name != st.schema_name || d.schema != st.schema => {
                    return Err(Error::InvalidArgument(format!(
                        "stream {n:?} is {:?} (schema {:?}) in {} but {:?} (schema {:?}) in {}; give --prefix to name each stream after its file",
                        d.encoding,
                        d.schema_name,
                        other.display(),
                        st.encoding,
                        st.schema_name,
                        path.display()
                    )))
                }
                Some(_) => {}
                None => {
                    seen.insert(n, (st, path.as_path()));
                }
            }
        }
    }
    let mut start = SessionStart::new(name);
    if let Some(t) = sources.iter().map(|(_, s)| s.start_time()).min() {
        start = start.start_time(t);
    }
    let mut meta_seen = HashSet::new();
    for (_, s) in &sources {
        for (k, v) in s.metadata() {
            if meta_seen.insert(k.clone()) {
                start = start.metadata(k, v);
            }
        }
    }
    let mut rec = Recorder::create(output)?;
    let mut w = rec.start_session_from(start)?;
    let mut c = Copier::new();
    for (key, (path, s)) in sources.iter().enumerate() {
        for st in chosen_streams(s, &|_| true) {
            c.define(&mut w, s, key, &st, &name_of(path, &st.name))?;
        }
    }
    // A k-way merge by timestamp over the sources' own merged replays.
    let replays: Vec<crate::read::Replay> = sources
        .iter()
        .map(|(_, s)| {
            let names: Vec<String> = chosen_streams(s, &|_| true).into_iter().map(|st| st.name).collect();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            s.replay(&refs)
        })
        .collect::<Result<_>>()?;
    let mut iters: Vec<crate::read::Frames> = replays.iter().map(|r| r.iterate()).collect();
    let mut heads: Vec<Option<crate::read::Frame>> = Vec::with_capacity(iters.len());
    for (i, it) in iters.iter_mut().enumerate() {
        heads.push(next_intact(it, &mut report.damaged, sources[i].0));
    }
    while let Some(i) = heads.iter().enumerate().filter_map(|(i, h)| h.as_ref().map(|f| (f.timestamp(), i))).min().map(|(_, i)| i) {
        if let Some(f) = heads[i].take() {
            c.write(&mut w, i, f.stream_id(), f.seq(), f.timestamp(), f.data())?;
            report.frames += 1;
            if report.frames.is_multiple_of(10_000) {
                progress(report.frames);
            }
        }
        heads[i] = next_intact(&mut iters[i], &mut report.damaged, sources[i].0);
    }
    if let Some(end) = sources.iter().filter_map(|(_, s)| s.end_time()).max() {
        w.set_end_time(end)?;
    }
    w.finish()?;
    report.sessions = 1;
    Ok(report)
}

fn next_intact(it: &mut crate::read::Frames, damaged: &mut Vec<String>, path: &Path) -> Option<crate::read::Frame> {
    for f in it.by_ref() {
        match f {
            Ok(f) => return Some(f),
            Err(e) => damaged.push(format!("{}: {e}", path.display())),
        }
    }
    None
}

/// The path of piece `n` of a pattern: `{}` or a printf-style `%d` / `%03d` is replaced by the
/// number; a pattern without one gets `-<n>` before its extension.
pub fn piece_path(pattern: &str, n: usize) -> PathBuf {
    if pattern.contains("{}") {
        return PathBuf::from(pattern.replacen("{}", &n.to_string(), 1));
    }
    if let Some(at) = pattern.find('%') {
        let rest = &pattern[at + 1..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if rest[digits.len()..].starts_with('d') {
            let width: usize = digits.trim_start_matches('0').parse().unwrap_or(0);
            let num = if digits.starts_with('0') { format!("{n:0width$}") } else { format!("{n:width$}") };
            return PathBuf::from(format!("{}{}{}", &pattern[..at], num, &rest[digits.len() + 1..]));
        }
    }
    let p = Path::new(pattern);
    let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = match p.extension() {
        Some(ext) => format!("{stem}-{n}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{n}"),
    };
    p.with_file_name(name)
}

/// Cuts `input` into pieces on frame boundaries: each piece a new file (named by
/// [`piece_path`]) holding part of one session, with all of its streams defined, its id,
/// name and metadata; empty stretches make no piece. Pieces are numbered from 0 over the
/// whole file.
pub fn split(input: &Path, by: SplitBy, pattern: &str, progress: &mut dyn FnMut(u64)) -> Result<RewriteReport> {
    if let SplitBy::Every(d) = by {
        if d.is_zero() {
            return Err(Error::InvalidArgument("--every must be longer than 0".into()));
        }
    }
    if let SplitBy::MaxBytes(0) = by {
        return Err(Error::InvalidArgument("--max-bytes must be more than 0".into()));
    }
    let file = open(input)?;
    let mut report = RewriteReport::default();
    for s in file.sessions() {
        let streams = chosen_streams(&s, &|_| true);
        let names: Vec<&str> = streams.iter().map(|st| st.name.as_str()).collect();
        if names.is_empty() {
            continue;
        }
        let replay = s.replay(&names)?;
        let Some(first) = replay.first_timestamp() else { continue };
        // The open piece: its writer, copier, time bucket and last timestamp.
        let mut piece: Option<(Recorder, SessionWriter, Copier, i64, Timestamp)> = None;
        let mut frames = replay.iterate();
        while let Some(f) = frames.next_ref() {
            let f = match f {
                Ok(f) => f,
                Err(e) => {
                    report.damaged.push(format!("{}: {e}", input.display()));
                    continue;
                }
            };
            let ts = f.timestamp().as_nanos();
            let bucket = match by {
                SplitBy::Every(d) => ts.saturating_sub(first.as_nanos()) / i64::try_from(d.as_nanos()).unwrap_or(i64::MAX).max(1),
                SplitBy::MaxBytes(_) => 0,
            };
            let cut = match (&piece, by) {
                (None, _) => true,
                (Some((_, _, _, b, _)), SplitBy::Every(_)) => *b != bucket,
                (Some((_, _, c, _, _)), SplitBy::MaxBytes(max)) => c.frames > 0 && c.bytes + f.data().len() as u64 + FRAME_OVERHEAD > max,
            };
            if cut {
                if let Some((rec, mut w, c, _, last)) = piece.take() {
                    report.frames += c.frames;
                    w.set_end_time(last)?;
                    w.finish()?;
                    drop(rec);
                }
                let path = piece_path(pattern, report.files.len());
                let mut rec = Recorder::create(&path)?;
                let mut w = rec.start_session_from(start_of(&s, None).start_time(f.timestamp()))?;
                let mut c = Copier::new();
                for st in &streams {
                    c.define(&mut w, &s, 0, st, &st.name)?;
                }
                report.files.push(path);
                report.sessions += 1;
                piece = Some((rec, w, c, bucket, f.timestamp()));
            }
            if let Some((_, w, c, _, last)) = &mut piece {
                c.write(w, 0, f.stream_id(), f.seq(), f.timestamp(), f.data())?;
                *last = (*last).max(f.timestamp());
                if c.frames.is_multiple_of(10_000) {
                    progress(report.frames + c.frames);
                }
            }
        }
        if let Some((rec, mut w, c, _, last)) = piece.take() {
            report.frames += c.frames;
            w.set_end_time(s.end_time().unwrap_or(last).max(last))?;
            w.finish()?;
            drop(rec);
        }
    }
    Ok(report)
}
