//! The player as a `futures::Stream` (cargo feature `async`).
#![cfg(feature = "async")]

use futures_util::StreamExt;
use recfile::storage::MemStorage;
use recfile::{Player, PlayerOptions, RecFile, Recorder, RecorderOptions, Timestamp, Window};

#[test]
fn player_stream_yields_every_frame_in_order_then_ends() {
    let mut rec = Recorder::init_storage(Box::new(MemStorage::default()), RecorderOptions::new()).unwrap();
    let mut s = rec.start_session("a").unwrap();
    let id = s.add_stream("x", "raw").unwrap();
    for i in 0..20i64 {
        s.write(id, Timestamp::from_nanos(i * 1_000_000), &[i as u8]).unwrap();
    }
    s.finish().unwrap();
    let f = RecFile::from_bytes(rec.into_storage().unwrap().read_all().unwrap()).unwrap();
    let replay = f.last_session().unwrap().stream("x").unwrap();
    let (_handle, stream) = Player::spawn_stream(replay, PlayerOptions::new(Window::new(), 4.0)).unwrap();
    let got: Vec<u8> = futures_executor::block_on(stream.map(|f| f.data()[0]).collect());
    assert_eq!(got, (0..20).collect::<Vec<u8>>());
}
