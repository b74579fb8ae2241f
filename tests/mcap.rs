//! MCAP round trips: files built here (uncompressed, zstd, lz4; metadata, attachments, several
//! sessions) and the real rosbag2 recordings in ../shared/testdata/rosbag2-mcap/.
#![cfg(feature = "mcap")]

use recfile::interop::mcap::{mcap_to_rec, rec_to_mcap};
use recfile::{RecFile, Recorder, Timestamp};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// (topic, message encoding, schema (name, encoding, data), channel metadata).
type ChannelKey = (String, String, Option<(String, String, Vec<u8>)>, BTreeMap<String, String>);
/// A channel key's parts, then log time, publish time, sequence and data.
type MessageKey = (String, String, Option<(String, String, Vec<u8>)>, BTreeMap<String, String>, u64, u64, u32, Vec<u8>);

/// Everything an MCAP file says, in a canonical order.
#[derive(Debug, PartialEq)]
struct Content {
    messages: Vec<MessageKey>,
    metadata: Vec<(String, BTreeMap<String, String>)>,
    attachments: Vec<(u64, u64, String, String, Vec<u8>)>,
    profile: String,
    channels: Vec<ChannelKey>,
}

fn content(path: &Path) -> Content {
    let bytes = std::fs::read(path).unwrap();
    let mut messages: Vec<_> = mcap::MessageStream::new(&bytes)
        .unwrap()
        .map(|m| {
            let m = m.unwrap();
            let ch = &m.channel;
            let schema = ch.schema.as_ref().map(|s| (s.name.clone(), s.encoding.clone(), s.data.to_vec()));
            (
                ch.topic.clone(),
                ch.message_encoding.clone(),
                schema,
                ch.metadata.clone(),
                m.log_time,
                m.publish_time,
                m.sequence,
                m.data.to_vec(),
            )
        })
        .collect();
    messages.sort_by(|a, b| (a.4, &a.0, a.6, &a.7).cmp(&(b.4, &b.0, b.6, &b.7)));
    let mut metadata = Vec::new();
    let mut attachments = Vec::new();
    let mut profile = String::new();
    for r in mcap::read::LinearReader::new(&bytes).unwrap() {
        match r.unwrap() {
            mcap::records::Record::Metadata(m) => metadata.push((m.name, m.metadata)),
            mcap::records::Record::Attachment { header, data, .. } => {
                attachments.push((header.log_time, header.create_time, header.name, header.media_type, data.to_vec()))
            }
            mcap::records::Record::Header(h) => profile = h.profile,
            _ => {}
        }
    }
    metadata.sort();
    attachments.sort();
    let mut channels: Vec<_> = mcap::Summary::read(&bytes)
        .unwrap()
        .map(|s| {
            s.channels
                .values()
                .map(|ch| {
                    (
                        ch.topic.clone(),
                        ch.message_encoding.clone(),
                        ch.schema.as_ref().map(|s| (s.name.clone(), s.encoding.clone(), s.data.to_vec())),
                        ch.metadata.clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    channels.sort();
    Content { messages, metadata, attachments, profile, channels }
}

fn round_trip(input: &Path) -> (Content, Content, RecFile) {
    let dir = tempfile::tempdir().unwrap();
    let (rec, back) = (dir.path().join("x.rec"), dir.path().join("back.mcap"));
    mcap_to_rec(input, &rec, |_| {}).unwrap();
    let f = RecFile::open(&rec).unwrap();
    assert!(f.verify().ok());
    rec_to_mcap(&rec, &back, |_| {}).unwrap();
    (content(input), content(&back), f)
}

fn write_mcap(path: &Path, compression: Option<mcap::Compression>) {
    let mut w = mcap::WriteOptions::new()
        .compression(compression)
        .profile("ros2")
        .chunk_size(Some(1024))
        .create(std::io::BufWriter::new(std::fs::File::create(path).unwrap()))
        .unwrap();
    let schema = w.add_schema("std_msgs/String", "ros2msg", b"string data").unwrap();
    let mut meta = BTreeMap::new();
    meta.insert("offered_qos_profiles".to_string(), "- history: 3".to_string());
    let a = w.add_channel(schema, "/chatter", "cdr", &meta).unwrap();
    let b = w.add_channel(0, "/raw", "raw", &BTreeMap::new()).unwrap();
    for i in 0..500u64 {
        let ch = if i % 3 == 0 { b } else { a };
        let header = mcap::records::MessageHeader {
            channel_id: ch,
            sequence: (i % 7) as u32,
            log_time: 1_000 + i * 10 - (i % 4),
            publish_time: 900 + i * 10,
        };
        w.write_to_known_channel(&header, format!("message {i}").as_bytes()).unwrap();
    }
    let mut m = BTreeMap::new();
    m.insert("robot".to_string(), "go2".to_string());
    w.write_metadata(&mcap::records::Metadata { name: "info".into(), metadata: m }).unwrap();
    w.attach(&mcap::Attachment {
        log_time: 1500,
        create_time: 1400,
        name: "calib.yaml".into(),
        media_type: "text/yaml".into(),
        data: b"k: 1".to_vec().into(),
    })
    .unwrap();
    w.finish().unwrap();
}

#[test]
fn built_files_round_trip_with_every_compression() {
    let dir = tempfile::tempdir().unwrap();
    for (name, c) in [("none", None), ("zstd", Some(mcap::Compression::Zstd)), ("lz4", Some(mcap::Compression::Lz4))] {
        let p = dir.path().join(format!("{name}.mcap"));
        write_mcap(&p, c);
        let (a, b, f) = round_trip(&p);
        assert_eq!(a.messages.len(), 500);
        assert_eq!(a, b, "{name}");
        let s = f.last_session().unwrap();
        let chatter = s.stream("/chatter").unwrap();
        assert_eq!(chatter.len(), 333);
        assert_eq!(s.streams().iter().find(|x| x.name == "/chatter").unwrap().schema_name, "std_msgs/String");
        assert_eq!(chatter.find_closest(Timestamp::from_nanos(1_010), None).unwrap().data(), b"message 1");
    }
}

#[test]
fn several_sessions_export_to_one_mcap_and_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("two.rec");
    {
        let mut r = Recorder::create(&rec).unwrap();
        for (k, name) in ["morning", "evening"].iter().enumerate() {
            let mut s = r.start_session_with_metadata(name, &[("robot", "go2")]).unwrap();
            let a = s.add_stream("/odom", "json").unwrap();
            for i in 0..10i64 {
                s.write(a, Timestamp::from_nanos(1000 * (k as i64 + 1) + i), format!("{{\"i\":{i}}}").as_bytes()).unwrap();
            }
            s.finish().unwrap();
        }
    }
    let m = dir.path().join("two.mcap");
    rec_to_mcap(&rec, &m, |_| {}).unwrap();
    let back = dir.path().join("back.rec");
    mcap_to_rec(&m, &back, |_| {}).unwrap();
    let (a, b) = (RecFile::open(&rec).unwrap(), RecFile::open(&back).unwrap());
    assert_eq!(b.session_count(), 2);
    for (sa, sb) in a.sessions().iter().zip(b.sessions()) {
        assert_eq!(sa.name(), sb.name());
        assert_eq!(sb.metadata_value("robot"), Some("go2"));
        let fa: Vec<(i64, Vec<u8>)> =
            sa.stream("/odom").unwrap().iterate().map(|f| f.unwrap()).map(|f| (f.timestamp().as_nanos(), f.data().to_vec())).collect();
        let fb: Vec<(i64, Vec<u8>)> =
            sb.stream("/odom").unwrap().iterate().map(|f| f.unwrap()).map(|f| (f.timestamp().as_nanos(), f.data().to_vec())).collect();
        assert_eq!(fa, fb);
    }
}

fn shared_testdata() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/rosbag2-mcap");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("REQUIRE_SHARED_TESTDATA").as_deref() == Ok("1") {
        panic!("{} is missing and REQUIRE_SHARED_TESTDATA=1", dir.display());
    }
    eprintln!("NOTICE: {} is absent; skipping the rosbag2 MCAP round trips", dir.display());
    None
}

#[test]
fn real_rosbag2_recordings_round_trip() {
    let Some(dir) = shared_testdata() else { return };
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "mcap") {
            let (a, b, f) = round_trip(&p);
            assert!(!a.messages.is_empty() || !a.channels.is_empty(), "{}", p.display());
            assert_eq!(a, b, "{} does not round-trip", p.display());
            // Readers see the messages and nothing else: frame counts equal message counts.
            let frames: u64 = f.sessions().iter().map(|s| s.frame_count()).sum();
            assert_eq!(frames, a.messages.len() as u64, "{}", p.display());
            for s in f.sessions() {
                let streams = s.streams();
                assert!(streams.iter().all(|st| !st.name.starts_with("mcap.")), "{}", p.display());
                assert_eq!(streams.iter().map(|st| st.frames).sum::<u64>(), s.frame_count());
                // The session spans its data.
                if let (Some(first), Some(last)) = (a.messages.iter().map(|m| m.4).min(), a.messages.iter().map(|m| m.4).max()) {
                    assert_eq!(s.start_time().as_nanos(), first as i64, "{}", p.display());
                    assert_eq!(s.end_time().unwrap().as_nanos(), last as i64, "{}", p.display());
                }
            }
            files += 1;
        }
    }
    assert!(files >= 9, "expected the 9 rosbag2 files, found {files}");
}

#[test]
fn imports_show_only_the_messages_and_span_their_data() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("built.mcap");
    write_mcap(&p, Some(mcap::Compression::Zstd));
    let rec = dir.path().join("built.rec");
    let report = mcap_to_rec(&p, &rec, |_| {}).unwrap();
    assert_eq!((report.messages, report.channels, report.metadata, report.attachments), (500, 2, 1, 1));
    assert_eq!(report.damage, None);
    let f = RecFile::open(&rec).unwrap();
    let s = f.last_session().unwrap();
    // 500 messages, every one with a publish time that is not its log time: no extra frames.
    assert_eq!(s.frame_count(), 500);
    assert_eq!(s.stream_names(), vec!["/chatter".to_string(), "/raw".to_string()]);
    let merged: Vec<String> = s.replay(&[]).unwrap().iterate().map(|f| f.unwrap().stream().to_string()).collect();
    assert_eq!(merged.len(), 500);
    assert!(merged.iter().all(|n| n == "/chatter" || n == "/raw"));
    // The internal streams are still there by name (the export reads them) and in all_streams.
    assert_eq!(s.stream(recfile::interop::mcap::MESSAGE_INFO_STREAM).unwrap().len(), 500);
    assert_eq!(s.all_streams().len(), 4);
    // Log times 1000 + i·10 − i%4 for i < 500: the session spans them.
    assert_eq!(s.start_time().as_nanos(), 1000);
    assert_eq!(s.end_time().unwrap().as_nanos(), 1000 + 499 * 10 - 3);
}

#[test]
fn rec_to_mcap_to_rec_keeps_session_ids_names_times_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    for sessions in [1usize, 3] {
        let rec = dir.path().join(format!("s{sessions}.rec"));
        {
            let mut r = Recorder::create(&rec).unwrap();
            for k in 0..sessions {
                let name = format!("run-{k}");
                let mut s = r.start_session_with_metadata(&name, &[("robot", "go2"), ("k", &k.to_string())]).unwrap();
                let a = s.add_stream_with_schema("/imu", "cdr", "sensor_msgs/Imu", b"float64 x").unwrap();
                for i in 0..20i64 {
                    s.write(a, Timestamp::from_nanos(1_000_000 * (k as i64 + 1) + i * 10), &i.to_le_bytes()).unwrap();
                }
                s.finish().unwrap();
            }
        }
        let m = dir.path().join(format!("s{sessions}.mcap"));
        let out = rec_to_mcap(&rec, &m, |_| {}).unwrap();
        assert_eq!(out.metadata, sessions, "one session record per session, counted");
        let back = dir.path().join(format!("s{sessions}-back.rec"));
        mcap_to_rec(&m, &back, |_| {}).unwrap();
        let (a, b) = (RecFile::open(&rec).unwrap(), RecFile::open(&back).unwrap());
        assert_eq!(a.session_count(), b.session_count());
        for (sa, sb) in a.sessions().iter().zip(b.sessions()) {
            assert_eq!(sa.id(), sb.id());
            assert_eq!(sa.name(), sb.name());
            assert_eq!(sa.start_time(), sb.start_time());
            assert_eq!(sa.end_time(), sb.end_time());
            let user = |s: &recfile::Session| -> Vec<(String, String)> {
                s.metadata().iter().filter(|(k, _)| !k.starts_with("mcap.")).cloned().collect()
            };
            assert_eq!(user(sa), user(&sb));
            assert_eq!(sa.streams().len(), sb.streams().len());
            assert_eq!(sb.streams()[0].schema_name, "sensor_msgs/Imu");
            assert_eq!(sa.frame_count(), sb.frame_count());
        }
    }
}

#[test]
fn a_truncated_mcap_converts_every_complete_message() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("full.mcap");
    // Uncompressed, small chunks: a cut lands inside a chunk or between them.
    write_mcap(&p, None);
    let bytes = std::fs::read(&p).unwrap();
    let full = content(&p);
    let mut checked = 0;
    for cut in (200..bytes.len() - 10).step_by(997) {
        let t = dir.path().join(format!("cut{cut}.mcap"));
        std::fs::write(&t, &bytes[..cut]).unwrap();
        let rec = dir.path().join(format!("cut{cut}.rec"));
        let report = mcap_to_rec(&t, &rec, |_| {}).unwrap();
        assert!(report.damage.is_some(), "cut at {cut} went unnoticed");
        let f = RecFile::open(&rec).unwrap();
        assert!(f.verify().ok());
        // Every message read back is one of the originals, in the original order of log times.
        let s = f.last_session().unwrap();
        let got: Vec<(u64, Vec<u8>)> = s
            .replay(&[])
            .unwrap()
            .iterate()
            .map(|fr| fr.unwrap())
            .map(|fr| (fr.timestamp().as_nanos() as u64, fr.data().to_vec()))
            .collect();
        assert_eq!(got.len() as u64, report.messages);
        for g in &got {
            assert!(full.messages.iter().any(|m| m.4 == g.0 && m.7 == g.1), "cut {cut}: invented message at {}", g.0);
        }
        // A cut after most of the file keeps most of the messages.
        if cut > bytes.len() * 3 / 4 {
            assert!(report.messages > 250, "cut {cut} kept only {}", report.messages);
        }
        checked += 1;
    }
    assert!(checked > 5);
}
