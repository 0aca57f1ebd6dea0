//! The federation's private PKI.
//!
//! This crate owns everything about who is who in a fedq federation:
//!
//! - [`identity`]: the typed identity (federation, role, name) carried in every
//!   certificate's URI SAN, and the only parser of it;
//! - [`layout`]: the file names inside a federation directory (read by `tls`, written by
//!   `pki`);
//! - [`pki`]: `fedq certs init | issue | revoke | list` — the CA, role certificates and the
//!   CRL on disk. **Only this module reads the CA key.**
//! - [`tls`]: rustls configurations built from those files: TLS 1.3 only, client
//!   certificates both ways, CRL honoured, the peer's role checked, 0-RTT off;
//! - [`signing`]: security officers' signatures (policy approvals), made and verified;
//! - [`consent`]: consent tokens (ES256 JWS, RFC 9396 claims) the consent authority signs;
//! - [`officers`]: the officers' key fingerprints for `policy_officers`.
//!
//! It never opens a socket.

#![warn(missing_docs, unreachable_pub)]

pub mod consent;
pub mod fsutil;
pub mod identity;
pub mod jws;
pub mod layout;
pub mod officers;
pub mod pki;
pub mod signing;
pub mod tls;

pub use identity::{Identity, IdentityError, Role};
pub use pki::{CertificateAuthority, IssueOptions, IssuedCertificate, PkiError};
pub use tls::{AuthRefusal, Credentials, FederationTrust, RefusalLog, TlsError};
