//! The file names inside a federation directory (the PKI on disk): where the CA
//! certificate and key, the CRL, the index and each holder's certificate and key live.
//!
//! Names only, so that [`crate::pki`] (which writes them) and [`crate::tls`] (which reads
//! them) agree without importing each other. It must never read or write a file.

use std::path::{Path, PathBuf};

/// Path of the CA certificate in a federation directory.
pub fn ca_cert_path(dir: &Path) -> PathBuf {
    dir.join("ca.crt")
}
/// Path of the CA's private key in a federation directory.
pub(crate) fn ca_key_path(dir: &Path) -> PathBuf {
    dir.join("ca.key")
}
/// Path of the CRL in a federation directory.
pub fn crl_path(dir: &Path) -> PathBuf {
    dir.join("crl.pem")
}
/// Path of the CA's index of issued certificates.
pub(crate) fn index_path(dir: &Path) -> PathBuf {
    dir.join("index.json")
}
/// Path of a holder's certificate.
pub fn cert_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.crt"))
}
/// Path of a holder's private key.
pub fn key_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.key"))
}
