//! Replays every cargo-fuzz corpus through the same entry points as the fuzz targets, and
//! runs a bounded property test over them, so CI keeps found inputs fixed without nightly
//! tooling. The long fuzzing runs are documented in docs/reliability.md.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::path::Path;

use fedq_policy::{Catalogue, Federation, Policy};
use fedq_wire::ResidentId;
use proptest::prelude::*;

fn corpus(name: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(name);
    let files: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert!(!files.is_empty(), "corpus {} is empty", dir.display());
    files
}

fn reference(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("reference/changsha/catalogue")
            .join(name),
    )
    .unwrap()
}

fn federation() -> Federation {
    let catalogues = ["court.toml", "tax.toml", "hrss.toml"]
        .iter()
        .map(|n| Catalogue::parse(&reference(n), n).unwrap())
        .collect();
    Federation::new(catalogues).unwrap()
}

fn policy_parse(data: &[u8], fed: &Federation) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(policy) = Policy::parse(text, "fuzz.toml", fed) {
            let _ = policy.compile();
        }
    }
}

fn catalogue_parse(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Catalogue::parse(text, "fuzz.toml");
    }
}

fn import_row(data: &[u8], catalogue: &Catalogue) -> usize {
    let Ok(text) = std::str::from_utf8(data) else {
        return 0;
    };
    let cells: BTreeMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
    catalogue
        .datasets
        .iter()
        .filter(|d| fedq_node::import::parse_row(d, &cells).is_ok())
        .count()
}

fn resident_id(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    match ResidentId::parse(text) {
        Ok(id) => {
            assert_eq!(id.as_str().len(), 18);
            assert!(!id.masked().contains(&id.as_str()[6..14]));
            true
        }
        Err(_) => false,
    }
}

#[test]
fn every_corpus_replays() {
    let fed = federation();
    for input in corpus("policy_parse") {
        policy_parse(&input, &fed);
    }
    for input in corpus("catalogue_parse") {
        catalogue_parse(&input);
    }
    let court = Catalogue::parse(&reference("court.toml"), "court.toml").unwrap();
    let accepted: usize = corpus("import_row")
        .iter()
        .map(|i| import_row(i, &court))
        .sum();
    assert!(accepted >= 1, "the corpus's good row must be accepted");
    let valid = corpus("resident_id")
        .iter()
        .filter(|i| resident_id(i))
        .count();
    assert_eq!(valid, 1, "exactly the corpus's one valid ID is accepted");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn the_parsers_never_panic_on_mutated_inputs(
        which in 0usize..4,
        seed in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let name = ["policy_parse", "catalogue_parse", "import_row", "resident_id"][which];
        let inputs = corpus(name);
        let mut input = inputs[seed.index(inputs.len())].clone();
        if !input.is_empty() {
            for (at, byte) in &flips {
                let i = at.index(input.len());
                input[i] = *byte;
            }
            input.truncate(cut.index(input.len() + 1));
        }
        match which {
            0 => policy_parse(&input, &federation()),
            1 => catalogue_parse(&input),
            2 => { import_row(&input, &Catalogue::parse(&reference("court.toml"), "court.toml").unwrap()); }
            _ => { resident_id(&input); }
        }
    }
}
