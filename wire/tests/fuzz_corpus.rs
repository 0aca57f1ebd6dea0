//! Replays the cargo-fuzz corpus of the frame decoder on every test run, so a crash the
//! fuzzer once found stays fixed without nightly tooling in CI.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use fedq_wire::frame::{decode, MAX_FRAME_LEN};
use fedq_wire::{NodeRequest, NodeResponse};

#[test]
fn the_frame_decoder_corpus_replays_without_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/frame_decode");
    let mut replayed = 0;
    let mut accepted = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let request = decode::<NodeRequest>(&bytes, MAX_FRAME_LEN);
        let response = decode::<NodeResponse>(&bytes, MAX_FRAME_LEN);
        accepted += usize::from(request.is_ok()) + usize::from(response.is_ok());
        replayed += 1;
    }
    assert!(replayed >= 4, "corpus at {} is missing", dir.display());
    // The seed corpus holds valid frames too, so the decoder's accepting path is exercised.
    assert!(accepted >= 2);
}
