//! Every record body decoder, and the bincode payload decoder, on arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use recfile::format::codec::decode_value;
use recfile::format::header::{FileHeader, Slot, Slots};
use recfile::format::record::{
    decode_frame, decode_index_streams, decode_metadata, read_record, CheckpointBody, SessionEndBody, SessionStartBody, StreamDefBody,
};

fuzz_target!(|data: &[u8]| {
    let offset = 4096 + data.first().copied().unwrap_or(0) as u64;
    let _ = SessionStartBody::decode(data, offset);
    let _ = StreamDefBody::decode(data, offset);
    let _ = decode_metadata(data, offset);
    let _ = decode_frame(data, offset);
    let _ = CheckpointBody::decode(data, offset);
    let _ = decode_index_streams(data, offset);
    let _ = SessionEndBody::decode(data, offset);
    let _ = Slot::decode(data, 64);
    let _ = Slots::decode(data);
    let _ = FileHeader::decode(data);
    let _ = read_record(data, 0, Some(0));
    let _ = read_record(data, 3, None);
    let _ = SessionStartBody::salt_of(data, 0);
    let _ = decode_value::<Vec<String>>(data, 0);
    let _ = decode_value::<(u64, Vec<(i32, f64)>, Option<String>)>(data, 0);
});
