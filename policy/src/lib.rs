//! The access-policy language, its compiled decision engine, and the officers' tools.
//!
//! The language and engine do no I/O: they parse text they are handed and decide over
//! data. Only [`cli`] reads files, on behalf of `fedq policy …`.

pub mod cli;
