//! The 18-digit resident identity number (公民身份号码), GB 11643-1999: the subject key
//! of every frame. The rules live once, in [`fedq_policy::resident_id`] (the lower
//! crate, whose catalogue fields and masks use them too); this module re-exports them so
//! `fedq_wire::ResidentId` stays the type a frame carries.

pub use fedq_policy::resident_id::{check_character, ResidentId, ResidentIdError};
