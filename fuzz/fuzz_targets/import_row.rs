//! The importer's row validation on arbitrary cells: one cell per line, `field=value`.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use fedq_policy::Catalogue;
use libfuzzer_sys::fuzz_target;

fn catalogue() -> &'static Catalogue {
    static CAT: OnceLock<Catalogue> = OnceLock::new();
    CAT.get_or_init(|| {
        Catalogue::parse(include_str!("../../reference/changsha/catalogue/court.toml"), "court.toml")
            .expect("reference catalogue")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let cells: BTreeMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
    for dataset in &catalogue().datasets {
        let _ = fedq_node::import::parse_row(dataset, &cells);
    }
});
