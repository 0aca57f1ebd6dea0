//! The policy parser on arbitrary text, validated against the reference catalogues.
#![no_main]

use std::sync::OnceLock;

use fedq_policy::{Catalogue, Federation, Policy};
use libfuzzer_sys::fuzz_target;

fn federation() -> &'static Federation {
    static FED: OnceLock<Federation> = OnceLock::new();
    FED.get_or_init(|| {
        let texts = [
            include_str!("../../reference/changsha/catalogue/court.toml"),
            include_str!("../../reference/changsha/catalogue/tax.toml"),
            include_str!("../../reference/changsha/catalogue/hrss.toml"),
        ];
        let catalogues = texts
            .iter()
            .map(|t| Catalogue::parse(t, "catalogue.toml").expect("reference catalogue"))
            .collect();
        Federation::new(catalogues).expect("reference federation")
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(policy) = Policy::parse(text, "fuzz.toml", federation()) {
            let _ = policy.compile();
        }
    }
});
