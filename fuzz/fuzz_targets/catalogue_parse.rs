//! The catalogue parser on arbitrary text.
#![no_main]

use fedq_policy::Catalogue;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Catalogue::parse(text, "fuzz.toml");
    }
});
