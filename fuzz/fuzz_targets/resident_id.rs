//! The resident-ID validator on arbitrary text.
#![no_main]

use fedq_wire::ResidentId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(id) = ResidentId::parse(text) {
            // Whatever is accepted has 18 characters and a masked form that hides the birth date.
            assert_eq!(id.as_str().len(), 18);
            assert!(!id.masked().contains(&id.as_str()[6..14]));
        }
    }
});
