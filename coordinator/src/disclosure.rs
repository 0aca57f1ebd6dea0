//! Merging the departments' signed parts into one dated publication (`fedq disclose
//! publish`), and checking a publication again (`fedq disclose verify`), on the
//! coordinator's or an officer's machine. Each part's signature is checked against the
//! federation's CA and CRL (a node certificate, unrevoked) before anything of it is used;
//! the merge and the files are [`fedq_policy::disclosure`]'s, so the same parts on the
//! same date give the same bytes. Errors never quote a row.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fedq_certs::identity::Role;
use fedq_certs::signing::SERVER_AUTH;
use fedq_certs::FederationTrust;
use fedq_policy::catalogue::PublicList;
use fedq_policy::disclosure::{
    self, Manifest, PartClaims, PartFile, PartRow, Publication, PublicationDocument, VerifiedPart,
    PART_TYP,
};
use rustls::pki_types::UnixTime;

/// The largest part file read (a department's whole list, published fields only).
pub const MAX_PART_BYTES: u64 = 256 * 1024 * 1024;

/// Why a publication was not made or does not check. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum DisclosureError {
    /// A file could not be read or written.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What failed.
        reason: std::io::Error,
    },
    /// A file is not what it should be.
    #[error("{path}: {why}")]
    Malformed {
        /// The file.
        path: String,
        /// What is wrong (never its contents).
        why: String,
    },
    /// The CA and CRL.
    #[error("the federation's CA and CRL: {0}")]
    Trust(String),
    /// A part's signature does not verify.
    #[error("{path}: the part's signature does not verify: {why}")]
    Signature {
        /// The part file.
        path: String,
        /// Why.
        why: String,
    },
    /// The parts do not merge.
    #[error(transparent)]
    Merge(#[from] disclosure::MergeError),
    /// A published file is not the one the manifest names.
    #[error("{file}: {why}")]
    Mismatch {
        /// The file.
        file: String,
        /// What differs.
        why: String,
    },
}

fn read(path: &Path, limit: u64) -> Result<Vec<u8>, DisclosureError> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|reason| DisclosureError::File {
        path: shown.clone(),
        reason,
    })?;
    if meta.len() > limit {
        return Err(DisclosureError::Malformed {
            path: shown,
            why: format!("larger than {limit} bytes"),
        });
    }
    std::fs::read(path).map_err(|reason| DisclosureError::File {
        path: shown,
        reason,
    })
}

/// The federation's CA and CRL in `dir` (`ca.crt`, `crl.pem`).
pub fn trust_in(dir: &Path) -> Result<FederationTrust, DisclosureError> {
    FederationTrust::load(&fedq_certs::tls::TrustFiles::in_dir(dir))
        .map_err(|e| DisclosureError::Trust(e.to_string()))
}

/// Checks one signed part's JWS: a node certificate of this federation, unrevoked under
/// a fresh CRL, signed these claims.
fn verify_signature(
    trust: &FederationTrust,
    path: &str,
    signature: &str,
    at: UnixTime,
) -> Result<(String, PartClaims), DisclosureError> {
    let verified = trust
        .verify_es256(signature, PART_TYP, Role::Node, SERVER_AUTH, at, true)
        .map_err(|e| DisclosureError::Signature {
            path: path.to_owned(),
            why: e.to_string(),
        })?;
    let claims: PartClaims =
        serde_json::from_slice(&verified.payload).map_err(|_| DisclosureError::Signature {
            path: path.to_owned(),
            why: "its claims are not a disclosure part's".into(),
        })?;
    Ok((verified.signer.identity.name, claims))
}

/// Reads and verifies one part file.
pub fn verify_part(
    trust: &FederationTrust,
    path: &Path,
    at: UnixTime,
) -> Result<VerifiedPart, DisclosureError> {
    let shown = path.display().to_string();
    let bytes = read(path, MAX_PART_BYTES)?;
    let file: PartFile =
        serde_json::from_slice(&bytes).map_err(|e| DisclosureError::Malformed {
            path: shown.clone(),
            why: format!(
                "not a part file (line {}, column {}); make it with `fedq disclose part`",
                e.line(),
                e.column()
            ),
        })?;
    let (signer, claims) = verify_signature(trust, &shown, &file.signature, at)?;
    Ok(VerifiedPart {
        signer,
        claims,
        rows: file.rows,
        signature: file.signature,
    })
}

/// What `fedq disclose publish` wrote.
#[derive(Debug)]
pub struct Published {
    /// The files written, in order (the manifest last).
    pub files: Vec<PathBuf>,
    /// The manifest.
    pub manifest: Manifest,
}

/// Verifies every part, merges them for `list` at `date` and writes the publication's
/// files into `out` (created if missing), each staged and renamed into place.
pub fn publish(
    trust_dir: &Path,
    list: PublicList,
    date: time::Date,
    parts: &[PathBuf],
    out: &Path,
) -> Result<Published, DisclosureError> {
    let trust = trust_in(trust_dir)?;
    let at = UnixTime::now();
    let verified = parts
        .iter()
        .map(|p| verify_part(&trust, p, at))
        .collect::<Result<Vec<_>, _>>()?;
    let publication = Publication::merge(trust.federation(), list, date, verified)?;
    let files = publication.files();
    let manifest: Manifest = files
        .last()
        .and_then(|(_, b)| serde_json::from_slice(b).ok())
        .ok_or_else(|| DisclosureError::Malformed {
            path: out.display().to_string(),
            why: "the manifest could not be made".into(),
        })?;
    std::fs::create_dir_all(out).map_err(|reason| DisclosureError::File {
        path: out.display().to_string(),
        reason,
    })?;
    let mut written = Vec::new();
    for (name, bytes) in &files {
        let path = out.join(name);
        fedq_certs::fsutil::write_atomic(&path, bytes, 0o644).map_err(|reason| {
            DisclosureError::File {
                path: path.display().to_string(),
                reason,
            }
        })?;
        written.push(path);
    }
    Ok(Published {
        files: written,
        manifest,
    })
}

/// What `fedq disclose verify` checked.
#[derive(Debug)]
pub struct Checked {
    /// The manifest.
    pub manifest: Manifest,
    /// Per node, the records its signature vouches for.
    pub parts: BTreeMap<String, u64>,
}

/// Checks a publication as anyone who downloads it can: every file the manifest names has
/// its digest, every part's signature verifies against the federation's CA and CRL, and
/// the rows of each node in the JSON file are exactly the ones its signature vouches for.
pub fn verify(trust_dir: &Path, manifest_path: &Path) -> Result<Checked, DisclosureError> {
    let trust = trust_in(trust_dir)?;
    let shown = manifest_path.display().to_string();
    let manifest: Manifest = serde_json::from_slice(&read(manifest_path, 16 * 1024 * 1024)?)
        .map_err(|_| DisclosureError::Malformed {
            path: shown.clone(),
            why: "not a publication manifest".into(),
        })?;
    let dir = manifest_path.parent().unwrap_or(Path::new("."));
    let mut document: Option<PublicationDocument> = None;
    for (name, digest) in &manifest.files {
        if name.contains('/') || name.starts_with('.') {
            return Err(DisclosureError::Malformed {
                path: shown,
                why: "it names a file outside its directory".into(),
            });
        }
        let bytes = read(&dir.join(name), MAX_PART_BYTES)?;
        if &disclosure::sha256_hex(&bytes) != digest {
            return Err(DisclosureError::Mismatch {
                file: name.clone(),
                why: "its SHA-256 is not the manifest's (changed after publication)".into(),
            });
        }
        if name.ends_with(".json") {
            document =
                Some(
                    serde_json::from_slice(&bytes).map_err(|_| DisclosureError::Malformed {
                        path: name.clone(),
                        why: "not a publication document".into(),
                    })?,
                );
        }
    }
    let document = document.ok_or_else(|| DisclosureError::Malformed {
        path: shown.clone(),
        why: "it names no JSON document".into(),
    })?;
    let at = UnixTime::now();
    let mut parts = BTreeMap::new();
    let mut verified = Vec::new();
    for p in &manifest.parts {
        let (signer, claims) = verify_signature(&trust, &shown, &p.signature, at)?;
        let rows: Vec<PartRow> = document
            .rows
            .iter()
            .filter(|r| r.node == signer)
            .map(|r| PartRow {
                dataset: r.dataset.clone(),
                cells: r.cells.clone(),
            })
            .collect();
        parts.insert(signer.clone(), claims.records);
        verified.push(VerifiedPart {
            signer,
            claims,
            rows,
            signature: p.signature.clone(),
        });
    }
    let list = PublicList::parse(&manifest.list).ok_or_else(|| DisclosureError::Malformed {
        path: shown.clone(),
        why: "its list is neither `dishonesty` nor `honours`".into(),
    })?;
    let date = fedq_policy::value::parse_date(&manifest.date).ok_or_else(|| {
        DisclosureError::Malformed {
            path: shown.clone(),
            why: "its date is not YYYY-MM-DD".into(),
        }
    })?;
    // The signed parts, merged again, must give exactly the published files.
    let again = Publication::merge(trust.federation(), list, date, verified)?.files();
    for (name, bytes) in &again {
        let same = if name.ends_with(".manifest.json") {
            // The manifest too, byte for byte: no file, count or part added or changed.
            std::fs::read(manifest_path).ok().as_deref() == Some(bytes.as_slice())
        } else {
            manifest.files.get(name) == Some(&disclosure::sha256_hex(bytes))
        };
        if !same {
            return Err(DisclosureError::Mismatch {
                file: name.clone(),
                why:
                    "the signed parts do not give this file; it is not what the departments signed"
                        .into(),
            });
        }
    }
    Ok(Checked { manifest, parts })
}
