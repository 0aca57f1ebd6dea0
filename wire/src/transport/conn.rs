//! What both ends do with a QUIC connection: read the peer's certificate, and read one
//! frame off a stream without allocating more than its checked, declared length.
//!
//! Must never decide anything about the peer: the server and the client do.

use fedq_certs::tls::PeerCertificate;

use crate::frame::{self, FrameError, HEADER_LEN};

/// The peer's certificate, if it sent a usable one.
pub(super) fn peer_of(conn: &quinn::Connection) -> Option<PeerCertificate> {
    let any = conn.peer_identity()?;
    let chain = any
        .downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
        .ok()?;
    PeerCertificate::from_chain(&chain).ok()
}

/// Reads one frame from a stream, without allocating more than the declared (and
/// limit-checked) payload.
pub(super) async fn read_frame(
    recv: &mut quinn::RecvStream,
    max_len: usize,
) -> Result<Vec<u8>, StreamFailure> {
    let mut header = [0u8; HEADER_LEN];
    recv.read_exact(&mut header)
        .await
        .map_err(StreamFailure::Read)?;
    let len = frame::parse_header(&header, max_len).map_err(StreamFailure::Frame)?;
    let mut payload = vec![0u8; len];
    recv.read_exact(&mut payload)
        .await
        .map_err(StreamFailure::Read)?;
    Ok(payload)
}

/// Why a frame could not be read off a stream.
#[derive(Debug)]
pub(super) enum StreamFailure {
    Read(quinn::ReadExactError),
    Frame(FrameError),
    /// The connection's budget was closed (never happens while it serves).
    Closed,
}
