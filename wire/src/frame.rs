//! Versioned, length-prefixed frames.
//!
//! ```text
//! +------+------+---------+-------------------+---------------------------+
//! | 'F'  | 'Q'  | version | length (u32, BE)  | payload (postcard, serde) |
//! +------+------+---------+-------------------+---------------------------+
//! ```
//!
//! One frame per direction per stream. The decoder checks the magic, the version and the
//! length limit *before* it reads or allocates the payload, and refuses trailing bytes, so
//! a hostile peer can neither make it allocate more than the limit nor smuggle data.
//!
//! Encoding a message and decoding it back, as the coordinator and a node do at either
//! end of a QUIC stream:
//!
//! ```
//! use fedq_wire::frame::{self, FrameError, HEADER_LEN, MAX_FRAME_LEN, PROTOCOL_VERSION};
//! use fedq_wire::NodeRequest;
//!
//! let bytes = frame::encode(&NodeRequest::Ping)?;
//! assert_eq!(bytes.get(..3), Some(&[b'F', b'Q', PROTOCOL_VERSION][..]));
//! // A reader checks the header alone first: it says how many payload bytes follow.
//! let len = frame::parse_header(&bytes, MAX_FRAME_LEN)?;
//! assert_eq!(bytes.len(), HEADER_LEN + len);
//! let back: NodeRequest = frame::decode(&bytes, MAX_FRAME_LEN)?;
//! assert_eq!(back, NodeRequest::Ping);
//!
//! // A frame of another protocol version is refused before its payload is read.
//! let mut other = bytes.clone();
//! other[2] = PROTOCOL_VERSION + 1;
//! assert_eq!(
//!     frame::decode::<NodeRequest>(&other, MAX_FRAME_LEN),
//!     Err(FrameError::UnsupportedVersion(PROTOCOL_VERSION + 1))
//! );
//! # Ok::<(), FrameError>(())
//! ```
//!
//! This module is pure (no I/O, no clock); it must never know about QUIC: the stream
//! codes a frame error resets a stream with are the transport's
//! (`transport::code`).

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The two bytes every frame starts with.
pub const MAGIC: [u8; 2] = *b"FQ";
/// The framing and message version this build speaks. 2: a lookup carries the
/// coordinator's date (`LookupRequest::date`), so version-1 peers cannot decode it.
/// 3: a lookup carries the requester's proof and the case reference, and sessions open
/// over `OpenSession` (issue 14). 4: the subject and consent token travel sealed
/// (`LookupRequest::sealed`). 5: answers travel sealed (`LookupResponse::sealed`).
/// 6: lookups exercise the person's rights (`LookupTarget::Rights`) and a released
/// dataset counts its disputed records (`MinimizedAnswer::disputed`).
pub const PROTOCOL_VERSION: u8 = 6;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 7;
/// Default largest payload accepted (1 MiB).
pub const MAX_FRAME_LEN: usize = 1 << 20;

/// Why bytes are not a valid frame.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Fewer bytes than the header or the declared length.
    #[error("frame truncated: need {needed} bytes, have {have}")]
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes present.
        have: usize,
    },
    /// The frame does not start with `FQ`.
    #[error("not a fedq frame (bad magic)")]
    BadMagic,
    /// The peer speaks another protocol version.
    #[error("unsupported protocol version {0} (this build speaks {PROTOCOL_VERSION})")]
    UnsupportedVersion(u8),
    /// The declared payload exceeds the limit.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Declared length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The payload is not a valid message.
    #[error("malformed frame payload: {0}")]
    Malformed(#[source] postcard::Error),
    /// Bytes after the declared payload.
    #[error("{0} unexpected bytes after the frame")]
    TrailingBytes(usize),
}

/// Checks a header and returns the payload length it declares.
pub fn parse_header(header: &[u8], max_len: usize) -> Result<usize, FrameError> {
    let Some(&[m0, m1, version, l0, l1, l2, l3]) = header.get(..HEADER_LEN) else {
        return Err(FrameError::Truncated {
            needed: HEADER_LEN,
            have: header.len(),
        });
    };
    if [m0, m1] != MAGIC {
        return Err(FrameError::BadMagic);
    }
    if version != PROTOCOL_VERSION {
        return Err(FrameError::UnsupportedVersion(version));
    }
    let len = u32::from_be_bytes([l0, l1, l2, l3]) as usize;
    if len > max_len {
        return Err(FrameError::TooLarge { len, max: max_len });
    }
    Ok(len)
}

/// Encodes a message into one frame.
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, FrameError> {
    let mut out =
        postcard::to_extend(message, vec![0u8; HEADER_LEN]).map_err(FrameError::Malformed)?;
    let len = out.len() - HEADER_LEN;
    let len32 = u32::try_from(len).map_err(|_| FrameError::TooLarge {
        len,
        max: u32::MAX as usize,
    })?;
    let [l0, l1, l2, l3] = len32.to_be_bytes();
    if let Some(header) = out.get_mut(..HEADER_LEN) {
        header.copy_from_slice(&[MAGIC[0], MAGIC[1], PROTOCOL_VERSION, l0, l1, l2, l3]);
    }
    Ok(out)
}

/// Decodes a payload (the bytes after the header).
pub fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    let (message, rest) = postcard::take_from_bytes(payload).map_err(FrameError::Malformed)?;
    if !rest.is_empty() {
        return Err(FrameError::TrailingBytes(rest.len()));
    }
    Ok(message)
}

/// Decodes one whole frame held in memory.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], max_len: usize) -> Result<T, FrameError> {
    let len = parse_header(bytes, max_len)?;
    let body = bytes.get(HEADER_LEN..).unwrap_or_default();
    if body.len() < len {
        return Err(FrameError::Truncated {
            needed: HEADER_LEN + len,
            have: bytes.len(),
        });
    }
    if body.len() > len {
        return Err(FrameError::TrailingBytes(body.len() - len));
    }
    decode_payload(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{NodeRequest, NodeResponse};

    #[test]
    fn round_trip() {
        let bytes = encode(&NodeRequest::Ping).unwrap();
        assert_eq!(&bytes[..3], b"FQ\x06");
        let back: NodeRequest = decode(&bytes, MAX_FRAME_LEN).unwrap();
        assert_eq!(back, NodeRequest::Ping);
    }

    #[test]
    fn refusals_are_specific() {
        let good = encode(&NodeResponse::Pong {
            node: "court".into(),
        })
        .unwrap();
        let mut bad_magic = good.clone();
        bad_magic[0] = b'X';
        assert_eq!(
            decode::<NodeResponse>(&bad_magic, MAX_FRAME_LEN),
            Err(FrameError::BadMagic)
        );
        // Older peers' frames are refused: version 1 (a lookup without the coordinator's
        // date), 2 (without the requester's proof), 3 (with the subject in clear), 4 (with
        // the answer in clear), 5 (without the person's rights); and 7.
        for old in [1, 2, 3, 4, 5, 7] {
            let mut frame = good.clone();
            frame[2] = old;
            assert_eq!(
                decode::<NodeResponse>(&frame, MAX_FRAME_LEN),
                Err(FrameError::UnsupportedVersion(old))
            );
        }
        assert!(matches!(
            decode::<NodeResponse>(&good, 3),
            Err(FrameError::TooLarge { max: 3, .. })
        ));
        assert!(matches!(
            decode::<NodeResponse>(&good[..good.len() - 1], MAX_FRAME_LEN),
            Err(FrameError::Truncated { .. })
        ));
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(
            decode::<NodeResponse>(&trailing, MAX_FRAME_LEN),
            Err(FrameError::TrailingBytes(1))
        );
    }
}
