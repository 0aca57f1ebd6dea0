//! The node's request decoder and the coordinator's response decoder on arbitrary bytes.
#![no_main]

use fedq_wire::frame::{decode, MAX_FRAME_LEN};
use fedq_wire::{NodeRequest, NodeResponse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode::<NodeRequest>(data, MAX_FRAME_LEN);
    let _ = decode::<NodeResponse>(data, MAX_FRAME_LEN);
});
