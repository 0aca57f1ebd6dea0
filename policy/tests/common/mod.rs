#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    dead_code
)]

use std::path::PathBuf;

use fedq_policy::{Catalogue, Engine, Federation, Policy};

pub fn reference_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../reference/changsha")
}

pub fn reference_federation() -> Federation {
    let dir = reference_dir().join("catalogue");
    let mut cats = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for p in paths {
        let text = std::fs::read_to_string(&p).unwrap();
        cats.push(Catalogue::parse(&text, &p.display().to_string()).unwrap());
    }
    Federation::new(cats).unwrap()
}

pub fn reference_text() -> String {
    std::fs::read_to_string(reference_dir().join("policy.toml")).unwrap()
}

pub fn reference_engine() -> Engine {
    Policy::parse(&reference_text(), "policy.toml", &reference_federation())
        .unwrap()
        .compile()
}

pub fn date(s: &str) -> time::Date {
    fedq_policy::transform::parse_date(s).unwrap()
}
