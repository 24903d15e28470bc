//! A pipeline's activity state checkpoint, as read after a restart: any bytes decode to a
//! state or to `None`, never a panic or an unbounded allocation; a decoded state encodes
//! and decodes again to the same activities.
#![no_main]

use fleetdb::pipeline::state::PipelineState;
use fleetdb::util::bytes::ByteReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(st) = PipelineState::decode(&mut ByteReader::new(data)) else { return };
    let mut again = Vec::new();
    st.encode(&mut again);
    let back = PipelineState::decode(&mut ByteReader::new(&again)).expect("its own encoding decodes");
    let names = |s: &PipelineState| s.slots.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>();
    assert_eq!(names(&back), names(&st));
});
