//! MCAP import and export (cargo feature `mcap`, on by default).
//!
//! Mapping, in both directions:
//!
//! | MCAP | recfile |
//! |---|---|
//! | channel (topic, message encoding) | stream (name = topic, encoding) |
//! | schema (name, encoding, data) | stream schema name and bytes; the schema encoding and channel metadata in session metadata `mcap.channel.<stream>` (JSON) |
//! | message log time | frame timestamp |
//! | message publish time and sequence | internal stream `mcap.message_info` (not listed, counted or replayed with the messages): one frame per message whose values are not the defaults (publish time = log time, sequence 0) |
//! | metadata record | session metadata `mcap.metadata.<n>` (JSON: name and map) |
//! | attachment | frame of internal stream `mcap.attachments` (bincode: name, media type, create time, data) at its log time |
//! | header profile, library | session metadata `mcap.profile`, `mcap.library` |
//!
//! Each session exports a metadata record `recfile.session` (id, name, start, end, metadata);
//! with several sessions each channel also carries its session in its metadata
//! (`recfile.session_id`, `recfile.session`). Importing such a file gives the sessions back. A
//! session imported from an MCAP without that record exports without one, so that
//! `.mcap → .rec → .mcap` gives back the same records. Imported sessions span their messages'
//! log times; a damaged or truncated MCAP imports every complete message before the damage
//! ([`ConvertReport::damage`]).

use crate::error::{Error, Result};
use crate::format::codec::{decode_value, encode_value};
use crate::read::RecFile;
use crate::time::Timestamp;
use crate::write::{RecorderOptions, SessionStart, StreamId};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use super::message_info::{self, MessageInfo};
pub use super::message_info::{MESSAGE_INFO_ENCODING, MESSAGE_INFO_STREAM};
/// Internal stream holding MCAP attachments.
pub const ATTACHMENT_STREAM: &str = "mcap.attachments";
/// Encoding of [`ATTACHMENT_STREAM`].
pub const ATTACHMENT_ENCODING: &str = "recfile.mcap.attachment.v1";
const CHANNEL_KEY: &str = "mcap.channel.";
const METADATA_KEY: &str = "mcap.metadata.";
const SESSION_RECORD: &str = "recfile.session";
/// Session metadata of an import whose MCAP had no `recfile.session` record: exporting the
/// session again writes none either, so that `.mcap → .rec → .mcap` gives back the same records.
const NO_SESSION_RECORD: &str = "mcap.session_record";

fn mcap_err(e: ::mcap::McapError) -> Error {
    Error::Malformed { what: "MCAP file", offset: 0, reason: e.to_string() }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::from(e).with_path(path)
}

/// What a conversion did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ConvertReport {
    /// Sessions written.
    pub sessions: usize,
    /// Channels (streams) converted.
    pub channels: usize,
    /// Messages (frames) converted.
    pub messages: u64,
    /// Metadata records converted.
    pub metadata: usize,
    /// Attachments converted.
    pub attachments: usize,
    /// Where the input was damaged or cut short, and why: everything complete before it was
    /// converted (the CLI then exits 3).
    pub damage: Option<String>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ChannelInfo {
    topic: String,
    schema_encoding: String,
    metadata: BTreeMap<String, String>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct MetadataRecord {
    name: String,
    metadata: BTreeMap<String, String>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct AttachmentRecord {
    name: String,
    media_type: String,
    create_time: u64,
    data: Vec<u8>,
}

fn to_ts(ns: u64, what: &str) -> Result<Timestamp> {
    i64::try_from(ns).map(Timestamp::from_nanos).map_err(|_| Error::LimitExceeded(format!("{what} time {ns} ns is beyond the year 2262")))
}

fn map_file(path: &Path) -> Result<memmap2::Mmap> {
    let f = std::fs::File::open(path).map_err(io_err(path))?;
    // SAFETY: a read-only map of an input file that this process does not modify.
    unsafe { memmap2::Mmap::map(&f) }.map_err(io_err(path))
}

/// Converts an MCAP file into a new `.rec` file. `progress` is called with the number of
/// messages converted so far (now and then).
pub fn mcap_to_rec(input: &Path, output: &Path, mut progress: impl FnMut(u64)) -> Result<ConvertReport> {
    let map = map_file(input)?;
    let mut header = None;
    let mut metadata = Vec::new();
    let mut attachments = Vec::new();
    // The first damage met, by any of the passes below: what comes before it is converted.
    let mut damage: Option<String> = None;
    let note = |what: &str, e: ::mcap::McapError, damage: &mut Option<String>| {
        damage.get_or_insert_with(|| format!("{what}: {e}"));
    };
    {
        let reader = ::mcap::read::LinearReader::new(&map).map_err(mcap_err)?;
        for rec in reader {
            match rec {
                Err(e) => {
                    note("records", e, &mut damage);
                    break;
                }
                Ok(::mcap::records::Record::Header(h)) => header = Some(h),
                Ok(::mcap::records::Record::Metadata(m)) => metadata.push(m),
                Ok(::mcap::records::Record::Attachment { header, data, .. }) => attachments.push((
                    header.log_time,
                    AttachmentRecord {
                        name: header.name,
                        media_type: header.media_type,
                        create_time: header.create_time,
                        data: data.into_owned(),
                    },
                )),
                Ok(_) => {}
            }
        }
    }
    // Every channel: those of the summary (also channels without messages) and those met. A
    // file cut short has no summary: its channels come from the messages.
    let mut channels: BTreeMap<u16, Arc<::mcap::Channel<'static>>> = BTreeMap::new();
    match ::mcap::Summary::read(&map) {
        Ok(Some(summary)) => channels.extend(summary.channels),
        Ok(None) => {}
        Err(e) => note("summary", e, &mut damage),
    }
    // Log-time span per channel: an imported session starts and ends with its data.
    let mut span: HashMap<u16, (u64, u64)> = HashMap::new();
    let mut complete = 0u64;
    for m in ::mcap::MessageStream::new(&map).map_err(mcap_err)? {
        let m = match m {
            Ok(m) => m,
            Err(e) => {
                note("messages", e, &mut damage);
                break;
            }
        };
        complete += 1;
        channels.entry(m.channel.id).or_insert_with(|| m.channel.clone());
        let e = span.entry(m.channel.id).or_insert((m.log_time, m.log_time));
        e.0 = e.0.min(m.log_time);
        e.1 = e.1.max(m.log_time);
    }
    // Sessions: channels marked by an earlier export, else one session.
    let mut session_of_channel: HashMap<u16, String> = HashMap::new();
    let mut session_order: Vec<(String, String)> = Vec::new(); // (key, name)
    for ch in channels.values() {
        let key = ch.metadata.get("recfile.session_id").cloned().unwrap_or_default();
        let name = ch.metadata.get("recfile.session").cloned().unwrap_or_else(|| "mcap import".into());
        if !session_order.iter().any(|(k, _)| *k == key) {
            session_order.push((key.clone(), name));
        }
        session_of_channel.insert(ch.id, key);
    }
    if session_order.is_empty() {
        session_order.push((String::new(), "mcap import".into()));
    }
    let mut session_records: HashMap<String, &::mcap::records::Metadata> =
        metadata.iter().filter(|m| m.name == SESSION_RECORD).filter_map(|m| m.metadata.get("id").map(|id| (id.clone(), m))).collect();
    // A one-session export marks no channel: its one record describes the one session.
    if session_order.len() == 1 && session_order[0].0.is_empty() && session_records.len() == 1 {
        if let Some(r) = session_records.values().next().copied() {
            session_records.insert(String::new(), r);
        }
    }
    let foreign: Vec<&::mcap::records::Metadata> = metadata.iter().filter(|m| m.name != SESSION_RECORD).collect();

    let mut recorder = RecorderOptions::new().durability(crate::write::Durability::None).create(output)?;
    let mut report =
        ConvertReport { sessions: session_order.len(), metadata: foreign.len(), attachments: attachments.len(), ..Default::default() };
    for (si, (key, name)) in session_order.iter().enumerate() {
        let record = session_records.get(key).copied();
        let field = |k: &str| record.and_then(|r| r.metadata.get(k));
        let name = field("name").unwrap_or(name);
        let mut start = SessionStart::new(name);
        if let Some(r) = record {
            let ordered: Option<Vec<(String, String)>> = r.metadata.get("metadata").and_then(|j| serde_json::from_str(j).ok());
            match ordered {
                Some(pairs) => {
                    for (k, v) in &pairs {
                        start = start.metadata(k, v);
                    }
                }
                None => {
                    for (k, v) in &r.metadata {
                        if let Some(k) = k.strip_prefix("meta.") {
                            start = start.metadata(k, v);
                        }
                    }
                }
            }
        } else {
            start = start.metadata(NO_SESSION_RECORD, "none");
        }
        if let Some(id) = field("id").and_then(|id| uuid::Uuid::parse_str(id).ok()) {
            start = start.id(id);
        }
        let own = |c: &u16| session_of_channel.get(c) == Some(key);
        let first = span.iter().filter(|(c, _)| own(c)).map(|(_, s)| s.0).min();
        let last = span.iter().filter(|(c, _)| own(c)).map(|(_, s)| s.1).max();
        let parse_ns = |k: &str| field(k).and_then(|v| v.parse::<i64>().ok()).map(Timestamp::from_nanos);
        if let Some(t) = parse_ns("start_ns").or(first.and_then(|f| to_ts(f, "log").ok())) {
            start = start.start_time(t);
        }
        let end = parse_ns("end_ns").or(last.and_then(|l| to_ts(l, "log").ok()));
        let mut w = recorder.start_session_from(start)?;
        if let Some(end) = end {
            w.set_end_time(end)?;
        }
        if si == 0 {
            if let Some(h) = &header {
                if !h.profile.is_empty() {
                    w.set_metadata("mcap.profile", &h.profile)?;
                }
                if !h.library.is_empty() {
                    w.set_metadata("mcap.library", &h.library)?;
                }
            }
            for (i, m) in foreign.iter().enumerate() {
                let json = serde_json::to_string(&MetadataRecord { name: m.name.clone(), metadata: m.metadata.clone() })
                    .map_err(|e| Error::Encode(e.to_string()))?;
                w.set_metadata(&format!("{METADATA_KEY}{i}"), &json)?;
            }
            if !attachments.is_empty() {
                let s = w.add_stream(ATTACHMENT_STREAM, ATTACHMENT_ENCODING)?;
                for (log_time, a) in std::mem::take(&mut attachments) {
                    w.write(s, to_ts(log_time, "attachment")?, &encode_value(&a)?)?;
                }
            }
        }
        let mut streams: HashMap<u16, (StreamId, u32)> = HashMap::new();
        for ch in channels.values().filter(|c| own(&c.id)) {
            let taken = w.stream_id(&ch.topic).is_some() || ch.topic == MESSAGE_INFO_STREAM || ch.topic == ATTACHMENT_STREAM;
            let stream_name = if taken { format!("{}#{}", ch.topic, ch.id) } else { ch.topic.clone() };
            let (schema_name, schema_data, schema_enc) = match &ch.schema {
                Some(s) => (s.name.clone(), s.data.to_vec(), s.encoding.clone()),
                None => (String::new(), Vec::new(), String::new()),
            };
            let sid = w.add_stream_with_schema(&stream_name, &ch.message_encoding, &schema_name, &schema_data)?;
            let meta: BTreeMap<String, String> =
                ch.metadata.iter().filter(|(k, _)| !k.starts_with("recfile.")).map(|(k, v)| (k.clone(), v.clone())).collect();
            let info = ChannelInfo { topic: ch.topic.clone(), schema_encoding: schema_enc, metadata: meta };
            w.set_metadata(
                &format!("{CHANNEL_KEY}{stream_name}"),
                &serde_json::to_string(&info).map_err(|e| Error::Encode(e.to_string()))?,
            )?;
            // The first message of the stream gets seq 0: start one below.
            streams.insert(ch.id, (sid, u32::MAX));
            report.channels += 1;
        }
        let mut info_stream: Option<StreamId> = None;
        // The messages the first pass read completely (a damaged tail stops both passes at the
        // same message).
        for m in ::mcap::MessageStream::new(&map).map_err(mcap_err)?.take(complete as usize) {
            let Ok(m) = m else { break };
            let Some(entry) = streams.get_mut(&m.channel.id) else { continue };
            entry.1 = entry.1.wrapping_add(1);
            let (sid, seq) = *entry;
            let ts = to_ts(m.log_time, "log")?;
            w.write(sid, ts, &m.data)?;
            if m.publish_time != m.log_time || m.sequence != 0 {
                let info = match info_stream {
                    Some(s) => s,
                    None => {
                        let s = w.add_stream(MESSAGE_INFO_STREAM, MESSAGE_INFO_ENCODING)?;
                        info_stream = Some(s);
                        s
                    }
                };
                let b = message_info::encode(sid.0, seq, MessageInfo { sequence: m.sequence, publish_time: m.publish_time });
                w.write(info, ts, &b)?;
            }
            report.messages += 1;
            if report.messages.is_multiple_of(10_000) {
                progress(report.messages);
            }
        }
        w.finish()?;
    }
    report.damage = damage;
    progress(report.messages);
    Ok(report)
}

/// Converts a `.rec` file into a new MCAP file (chunked, zstd-compressed).
pub fn rec_to_mcap(input: &Path, output: &Path, mut progress: impl FnMut(u64)) -> Result<ConvertReport> {
    let file = RecFile::open(input)?;
    if output.exists() && std::fs::metadata(output).map(|m| m.len() > 0).unwrap_or(false) {
        return Err(Error::AlreadyExists { path: output.to_path_buf() });
    }
    let sessions = file.sessions();
    let first_md = sessions.first().map(|s| s.metadata().to_vec()).unwrap_or_default();
    let get = |md: &[(String, String)], k: &str| md.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone());
    let mut opts = ::mcap::WriteOptions::new();
    if let Some(p) = get(&first_md, "mcap.profile") {
        opts = opts.profile(p);
    }
    opts = opts.library(get(&first_md, "mcap.library").unwrap_or_else(|| format!("recfile {}", env!("CARGO_PKG_VERSION"))));
    let out = std::fs::File::create(output).map_err(io_err(output))?;
    let mut writer = opts.create(std::io::BufWriter::new(out)).map_err(mcap_err)?;
    let mark_sessions = sessions.len() > 1;
    let mut report = ConvertReport { sessions: sessions.len(), ..Default::default() };
    for (si, s) in sessions.iter().enumerate() {
        let md = s.metadata();
        // Each session is described by a metadata record (id, name, start and end, metadata),
        // so that `.rec → .mcap → .rec` keeps them; but not a session imported from an MCAP
        // that had none, so that `.mcap → .rec → .mcap` gives back the same records.
        let imported_without_record = get(md, NO_SESSION_RECORD).is_some();
        if mark_sessions || !imported_without_record {
            let mut m = BTreeMap::new();
            m.insert("id".to_string(), s.id().to_string());
            m.insert("name".to_string(), s.name().to_string());
            m.insert("index".to_string(), si.to_string());
            m.insert("start_ns".to_string(), s.start_time().as_nanos().to_string());
            if let Some(end) = s.end_time() {
                m.insert("end_ns".to_string(), end.as_nanos().to_string());
            }
            let user: Vec<&(String, String)> = md.iter().filter(|(k, _)| !k.starts_with("mcap.")).collect();
            for (k, v) in &user {
                m.insert(format!("meta.{k}"), v.clone());
            }
            // MCAP metadata maps are sorted: the pairs in their order, for the way back.
            m.insert("metadata".to_string(), serde_json::to_string(&user).map_err(|e| Error::Encode(e.to_string()))?);
            writer.write_metadata(&::mcap::records::Metadata { name: SESSION_RECORD.into(), metadata: m }).map_err(mcap_err)?;
            report.metadata += 1;
        }
        for (k, v) in md {
            if k.starts_with(METADATA_KEY) {
                let r: MetadataRecord = serde_json::from_str(v).map_err(|e| Error::Malformed {
                    what: "session metadata",
                    offset: 0,
                    reason: format!("{k}: {e}"),
                })?;
                writer.write_metadata(&::mcap::records::Metadata { name: r.name, metadata: r.metadata }).map_err(mcap_err)?;
                report.metadata += 1;
            }
        }
        // Channels.
        let mut channel_of: HashMap<String, u16> = HashMap::new();
        for st in s.streams() {
            if st.name == MESSAGE_INFO_STREAM || st.name == ATTACHMENT_STREAM {
                continue;
            }
            let info: Option<ChannelInfo> = get(md, &format!("{CHANNEL_KEY}{}", st.name)).and_then(|j| serde_json::from_str(&j).ok());
            let (topic, schema_enc, mut meta) = match info {
                Some(i) => (i.topic, i.schema_encoding, i.metadata),
                None => (st.name.clone(), String::new(), BTreeMap::new()),
            };
            if mark_sessions {
                meta.insert("recfile.session_id".into(), s.id().to_string());
                meta.insert("recfile.session".into(), s.name().to_string());
            }
            let schema_id = if st.schema_name.is_empty() && st.schema.is_empty() {
                0
            } else {
                writer.add_schema(&st.schema_name, &schema_enc, &st.schema).map_err(mcap_err)?
            };
            let id = writer.add_channel(schema_id, &topic, &st.encoding, &meta).map_err(mcap_err)?;
            channel_of.insert(st.name.clone(), id);
            report.channels += 1;
        }
        // Publish times and sequences that are not the defaults.
        let info = message_info::read(s)?.unwrap_or_default();
        let names: Vec<String> = channel_of.keys().cloned().collect();
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        if !name_refs.is_empty() {
            for f in s.replay(&name_refs)?.iterate() {
                let f = f?;
                let channel_id = channel_of[f.stream()];
                let log_time = u64::try_from(f.timestamp().as_nanos()).map_err(|_| {
                    Error::LimitExceeded(format!("frame at {} has a negative timestamp, which MCAP cannot hold", f.offset()))
                })?;
                let MessageInfo { sequence, publish_time } =
                    info.get(&(f.stream_id(), f.seq())).copied().unwrap_or(MessageInfo { sequence: 0, publish_time: log_time });
                writer
                    .write_to_known_channel(&::mcap::records::MessageHeader { channel_id, sequence, log_time, publish_time }, f.data())
                    .map_err(mcap_err)?;
                report.messages += 1;
                if report.messages.is_multiple_of(10_000) {
                    progress(report.messages);
                }
            }
        }
        if let Ok(r) = s.stream(ATTACHMENT_STREAM) {
            for f in r.iterate() {
                let f = f?;
                let a: AttachmentRecord = decode_value(f.data(), f.offset())?;
                let log_time = u64::try_from(f.timestamp().as_nanos()).unwrap_or(0);
                writer
                    .attach(&::mcap::Attachment {
                        log_time,
                        create_time: a.create_time,
                        name: a.name,
                        media_type: a.media_type,
                        data: a.data.into(),
                    })
                    .map_err(mcap_err)?;
                report.attachments += 1;
            }
        }
    }
    writer.finish().map_err(mcap_err)?;
    progress(report.messages);
    Ok(report)
}
