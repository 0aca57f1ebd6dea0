//! The officers a federation's certificates name: each officer certificate's key
//! fingerprint, which node and coordinator configs pin in `policy_officers`
//! (`fedq certs officers`, and the note `fedq certs issue --role officer` prints).

use std::path::Path;

use crate::identity::Role;
use crate::pki::{self, CertificateStatus, PkiError};

/// The key fingerprint (SHA-256 of the public key, hex) of the certificate at
/// `DIR/NAME.crt`.
pub fn officer_fingerprint(dir: &Path, name: &str) -> Result<String, PkiError> {
    let path = pki::cert_path(dir, name);
    let damaged = |why: String| PkiError::Damaged {
        path: path.display().to_string(),
        why,
    };
    let pem = std::fs::read(&path).map_err(|e| damaged(e.to_string()))?;
    let der = crate::tls::read_certificates(&pem)
        .map_err(|e| damaged(e.to_string()))?
        .into_iter()
        .next()
        .ok_or_else(|| damaged("no PEM certificate in file".into()))?;
    crate::signing::key_fingerprint(&der).map_err(|e| damaged(e.to_string()))
}

/// One officer of a `policy_officers` roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterOfficer {
    /// The officer's certificate name.
    pub name: String,
    /// The key fingerprint ([`officer_fingerprint`]).
    pub key_sha256: String,
}

/// The officers for `policy_officers`, in the CA's order: those whose certificates are
/// valid now, or with `names` those named (whatever their certificate's status, but not
/// superseded ones); a name with no officer certificate is [`PkiError::UnknownName`].
pub fn roster(dir: &Path, names: &[String]) -> Result<Vec<RosterOfficer>, PkiError> {
    let rows = pki::list(dir)?;
    let mut officers = Vec::new();
    for (c, status) in &rows {
        let wanted = if names.is_empty() {
            *status == CertificateStatus::Valid
        } else {
            names.contains(&c.name) && *status != CertificateStatus::Superseded
        };
        if c.role == Role::Officer && wanted {
            officers.push(RosterOfficer {
                key_sha256: officer_fingerprint(dir, &c.name)?,
                name: c.name.clone(),
            });
        }
    }
    for n in names {
        if !rows
            .iter()
            .any(|(c, _)| &c.name == n && c.role == Role::Officer)
        {
            return Err(PkiError::UnknownName(n.clone()));
        }
    }
    Ok(officers)
}
