//! The frame decoder against random and truncated bytes: it must return an error, never
//! panic, never accept a frame with bytes missing or added.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use fedq_wire::frame::{self, FrameError, HEADER_LEN, MAX_FRAME_LEN};
use fedq_wire::{NodeRequest, NodeResponse};
use proptest::prelude::*;

fn any_response() -> impl Strategy<Value = NodeResponse> {
    prop_oneof![
        "[a-z.-]{0,40}".prop_map(|node| NodeResponse::Pong { node }),
        (
            prop_oneof![
                Just(fedq_wire::message::FailureCode::Unsupported),
                Just(fedq_wire::message::FailureCode::Unavailable),
                Just(fedq_wire::message::FailureCode::ShuttingDown),
            ],
            ".{0,200}"
        )
            .prop_map(|(code, message)| NodeResponse::Failed { code, message }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = frame::decode::<NodeRequest>(&bytes, MAX_FRAME_LEN);
        let _ = frame::decode::<NodeResponse>(&bytes, MAX_FRAME_LEN);
        let _ = frame::parse_header(&bytes, MAX_FRAME_LEN);
    }

    #[test]
    fn random_bytes_behind_a_valid_header_never_panic(
        payload in proptest::collection::vec(any::<u8>(), 0..512)
    ) {
        let mut bytes = vec![b'F', b'Q', frame::PROTOCOL_VERSION];
        bytes.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&payload);
        let _ = frame::decode::<NodeResponse>(&bytes, MAX_FRAME_LEN);
    }

    #[test]
    fn every_truncation_is_refused(response in any_response(), cut in any::<prop::sample::Index>()) {
        let bytes = frame::encode(&response).unwrap();
        prop_assert_eq!(frame::decode::<NodeResponse>(&bytes, MAX_FRAME_LEN).unwrap(), response);
        let cut = cut.index(bytes.len());
        let err = frame::decode::<NodeResponse>(&bytes[..cut], MAX_FRAME_LEN).unwrap_err();
        let is_truncated = matches!(err, FrameError::Truncated { .. });
        prop_assert!(is_truncated, "cut at {} gave {:?}", cut, err);
    }

    #[test]
    fn a_declared_length_over_the_limit_is_refused_before_reading(
        len in (MAX_FRAME_LEN as u32 + 1)..=u32::MAX
    ) {
        let mut header = vec![b'F', b'Q', frame::PROTOCOL_VERSION];
        header.extend_from_slice(&len.to_be_bytes());
        prop_assert_eq!(header.len(), HEADER_LEN);
        prop_assert_eq!(
            frame::parse_header(&header, MAX_FRAME_LEN),
            Err(FrameError::TooLarge { len: len as usize, max: MAX_FRAME_LEN })
        );
    }
}
