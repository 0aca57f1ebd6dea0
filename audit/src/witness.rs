//! Witnessing another process's audit log, in the shape of the C2SP tlog-witness
//! protocol (`add-checkpoint`): the log sends its new checkpoint with a consistency proof
//! from the size this witness last cosigned; the witness checks the log's signature and
//! the proof, records the new checkpoint durably, and only then returns its cosignature.
//! A log that rewrites, cuts or forks its history can no longer show a witness a
//! checkpoint it will cosign, and the checkpoints witnesses hold are what
//! [`crate::verify_against`] checks a log file against.
//!
//! The request and response bodies are the protocol's text; the transport is the
//! federation's own (a request over the mutually-authenticated channels), and the
//! protocol's HTTP statuses are [`Refusal`]'s variants.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rusqlite::{params, Connection, OptionalExtension};

use crate::checkpoint::{Checkpoint, Note, NoteSignature, NoteSigner, NoteVerifier};
use crate::merkle::{self, Hash};
use crate::Cause;

/// At most this many consistency proof lines (the protocol's limit).
pub const MAX_PROOF_LINES: usize = 63;

/// An `add-checkpoint` request: the size the sender believes this witness last cosigned,
/// the consistency proof from it, and the new checkpoint (a signed note).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The previous size.
    pub old: u64,
    /// The consistency proof from `old` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The checkpoint, as a signed note.
    pub checkpoint: String,
}

impl AddCheckpoint {
    /// The request body.
    pub fn to_text(&self) -> String {
        let mut out = format!("old {}\n", self.old);
        for hash in &self.proof {
            out.push_str(&B64.encode(hash));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint);
        out
    }

    /// Reads a request body.
    pub fn parse(text: &str) -> Result<Self, Refusal> {
        let bad = Refusal::BadRequest;
        let (head, checkpoint) = text
            .split_once("\n\n")
            .ok_or(bad("no empty line before the checkpoint"))?;
        let mut lines = head.split('\n');
        let old = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .filter(|n| *n == "0" || !n.starts_with('0'))
            .and_then(|n| n.parse().ok())
            .ok_or(bad("the first line is not `old SIZE`"))?;
        let mut proof = Vec::new();
        for line in lines {
            if proof.len() == MAX_PROOF_LINES {
                return Err(bad("more than 63 consistency proof lines"));
            }
            let hash: Hash = B64
                .decode(line)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or(bad("a proof line is not a base64 SHA-256 hash"))?;
            proof.push(hash);
        }
        Ok(Self {
            old,
            proof,
            checkpoint: checkpoint.to_owned(),
        })
    }
}

/// Why a witness did not cosign, with the protocol's HTTP status for each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// 400: the request is malformed, or its old size is above the checkpoint's.
    #[error("bad add-checkpoint request: {0}")]
    BadRequest(&'static str),
    /// 404: this witness does not witness that origin.
    #[error("this witness does not witness the log `{0}`")]
    UnknownLog(String),
    /// 403: no signature by the log's key verifies.
    #[error("the checkpoint is not signed by the log `{0}`")]
    Forbidden(String),
    /// 403: the certificate sent for the log is not a node's or the coordinator's of this
    /// federation (or is revoked or expired), so no key of it can be believed.
    #[error("the log's certificate is refused: {0}")]
    UntrustedLog(String),
    /// 409: the old size is not the size this witness last cosigned (or, at that same
    /// size, the root differs: a fork).
    #[error("this witness last cosigned `{origin}` at size {latest}; send a consistency proof from there")]
    Conflict {
        /// The log.
        origin: String,
        /// The size this witness holds.
        latest: u64,
    },
    /// 422: the consistency proof does not verify: the new checkpoint does not extend the
    /// one this witness cosigned — the log was rewritten, cut or forked.
    #[error("the checkpoint of `{origin}` at size {size} does not extend the one this witness cosigned at size {latest}: the log was rewritten, cut or forked")]
    Inconsistent {
        /// The log.
        origin: String,
        /// The size this witness holds.
        latest: u64,
        /// The size offered.
        size: u64,
    },
    /// 500: the witness's own store failed; nothing was cosigned.
    #[error("the witness's store failed: {0}")]
    Store(String),
}

impl Refusal {
    /// The protocol's HTTP status for this refusal.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest(_) => 400,
            Self::Forbidden(_) | Self::UntrustedLog(_) => 403,
            Self::UnknownLog(_) => 404,
            Self::Conflict { .. } => 409,
            Self::Inconsistent { .. } => 422,
            Self::Store(_) => 500,
        }
    }
}

/// One process's witness: its key, the logs it witnesses (origin → the log's key), and
/// the latest checkpoint it cosigned for each, kept in its own SQLite file.
pub struct Witness {
    /// The cosigning key, replaced when the process's certificate is renewed.
    signer: Mutex<NoteSigner>,
    name: String,
    logs: BTreeMap<String, NoteVerifier>,
    db: Mutex<Connection>,
    path: PathBuf,
}

impl std::fmt::Debug for Witness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Witness")
            .field("name", &self.name)
            .field("logs", &self.logs.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS cosigned (
    origin TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    note TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cosigned_history (
    origin TEXT NOT NULL,
    size INTEGER NOT NULL,
    note TEXT NOT NULL,
    PRIMARY KEY (origin, size)
);
";

impl Witness {
    /// Opens (creating it owner-only if needed) the witness state at `path`.
    pub fn open(
        path: &Path,
        signer: NoteSigner,
        logs: impl IntoIterator<Item = NoteVerifier>,
    ) -> Result<Self, crate::AuditError> {
        let err = |reason: Cause| crate::AuditError::store(path, reason);
        fedq_certs::fsutil::prepare_private_database(path).map_err(|e| err(Cause::of(e)))?;
        let conn = Connection::open(path).map_err(|e| err(Cause::of(e)))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;",
        )
        .map_err(|e| err(Cause::of(e)))?;
        conn.execute_batch(SCHEMA).map_err(|e| err(Cause::of(e)))?;
        Ok(Self {
            name: signer.name().to_owned(),
            signer: Mutex::new(signer),
            logs: logs.into_iter().map(|v| (v.name().to_owned(), v)).collect(),
            db: Mutex::new(conn),
            path: path.to_owned(),
        })
    }

    /// This witness's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Cosigns with `signer` from now on (the process's certificate was renewed with a new
    /// key). Its name must be this witness's; another is refused and nothing changes.
    pub fn replace_signer(&self, signer: NoteSigner) -> Result<(), Refusal> {
        if signer.name() != self.name {
            return Err(Refusal::Store(format!(
                "a witness key named `{}` cannot replace `{}`",
                signer.name(),
                self.name
            )));
        }
        let mut current = self
            .signer
            .lock()
            .map_err(|_| Refusal::Store("the witness key lock is poisoned".into()))?;
        *current = signer;
        Ok(())
    }

    /// The file holding what this witness cosigned.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Handles one `add-checkpoint`: returns the cosignature line(s) once the new
    /// checkpoint is durably this witness's latest for its origin.
    pub fn add_checkpoint(&self, request: &AddCheckpoint) -> Result<Vec<NoteSignature>, Refusal> {
        let (note, checkpoint) = read_checkpoint(request)?;
        let log = self
            .logs
            .get(&checkpoint.origin)
            .ok_or_else(|| Refusal::UnknownLog(checkpoint.origin.clone()))?;
        self.cosign(request, log, note, checkpoint)
    }

    /// Handles one `add-checkpoint` for the log whose key is `log` — a key the caller
    /// took from the log's certificate, checked against the federation's CA, so this
    /// witness needs no list of the logs it witnesses. A checkpoint whose origin is not
    /// `log`'s name is refused 403 (a log signs only its own checkpoints), as is one not
    /// signed by `log`.
    pub fn add_checkpoint_for(
        &self,
        request: &AddCheckpoint,
        log: &NoteVerifier,
    ) -> Result<Vec<NoteSignature>, Refusal> {
        let (note, checkpoint) = read_checkpoint(request)?;
        if checkpoint.origin != log.name() {
            return Err(Refusal::Forbidden(checkpoint.origin));
        }
        self.cosign(request, log, note, checkpoint)
    }

    fn cosign(
        &self,
        request: &AddCheckpoint,
        log: &NoteVerifier,
        note: Note,
        checkpoint: Checkpoint,
    ) -> Result<Vec<NoteSignature>, Refusal> {
        let origin = checkpoint.origin.clone();
        log.verify(&note)
            .map_err(|_| Refusal::Forbidden(origin.clone()))?;
        let mut db = self
            .db
            .lock()
            .map_err(|_| Refusal::Store("the witness state lock is poisoned".into()))?;
        // Check and record in one transaction: two requests cannot roll the state back.
        let tx = db
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| Refusal::Store(e.to_string()))?;
        let latest: Option<(i64, Vec<u8>)> = tx
            .query_row(
                "SELECT size, root FROM cosigned WHERE origin = ?1",
                params![origin],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(|e| Refusal::Store(e.to_string()))?;
        let (latest_size, latest_root) =
            match latest {
                Some((size, root)) => (
                    size.unsigned_abs(),
                    Some(<Hash>::try_from(root).map_err(|_| {
                        Refusal::Store("a stored root is not a SHA-256 hash".into())
                    })?),
                ),
                None => (0, None),
            };
        if request.old != latest_size {
            return Err(Refusal::Conflict {
                origin,
                latest: latest_size,
            });
        }
        let inconsistent = || Refusal::Inconsistent {
            origin: origin.clone(),
            latest: latest_size,
            size: checkpoint.size,
        };
        if i64::try_from(checkpoint.size).is_err() {
            return Err(Refusal::BadRequest("the checkpoint's size is out of range"));
        }
        if request.old > checkpoint.size {
            // A smaller tree than the one this witness cosigned. An older genuine tree
            // head (a relay holds many, from receipts) proves nothing, so it is refused
            // 400 as the protocol says; only another root at a size this witness
            // cosigned is evidence — the log signed two histories — and an alarm. A log
            // cut for good is caught when it grows again, and by `verify` offline.
            let cosigned_there: Option<String> = tx
                .query_row(
                    "SELECT note FROM cosigned_history WHERE origin = ?1 AND size = ?2",
                    params![origin, checkpoint.size as i64],
                    |row| row.get(0),
                )
                .optional()
                .map_err(|e| Refusal::Store(e.to_string()))?;
            let other_root = cosigned_there
                .as_deref()
                .and_then(|n| Note::parse(n).ok())
                .and_then(|n| Checkpoint::parse_body(&n.text).ok())
                .is_some_and(|c| c.root != checkpoint.root);
            if other_root {
                return Err(inconsistent());
            }
            return Err(Refusal::BadRequest(
                "the old size is above the checkpoint's size",
            ));
        }
        match latest_root {
            Some(root) if latest_size == checkpoint.size => {
                if root != checkpoint.root {
                    // The same size with another root: a fork, shown to this witness.
                    return Err(inconsistent());
                }
            }
            Some(root) => merkle::verify_consistency(
                latest_size,
                checkpoint.size,
                &root,
                &checkpoint.root,
                &request.proof,
            )
            .map_err(|_| inconsistent())?,
            None => {
                if !request.proof.is_empty() {
                    return Err(Refusal::BadRequest(
                        "the proof must be empty when the old size is zero",
                    ));
                }
            }
        }
        let cosignature = self
            .signer
            .lock()
            .map_err(|_| Refusal::Store("the witness key lock is poisoned".into()))?
            .sign(&note.text)
            .map_err(|e| Refusal::Store(e.to_string()))?;
        let mut kept = note.clone();
        // Only the log's signature this witness checked, and its own.
        kept.signatures.retain(|s| log.has_line_in_signature(s));
        kept.signatures.push(cosignature.clone());
        tx.execute(
            "INSERT INTO cosigned (origin, size, root, note) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(origin) DO UPDATE SET size = excluded.size, root = excluded.root, note = excluded.note",
            params![origin, checkpoint.size as i64, &checkpoint.root[..], kept.to_text()],
        )
        .map_err(|e| Refusal::Store(e.to_string()))?;
        // Every checkpoint cosigned stays (one row per checkpoint, never per entry): a
        // later rewrite is then placed between the last size it matches and the first it
        // does not.
        tx.execute(
            "INSERT OR REPLACE INTO cosigned_history (origin, size, note) VALUES (?1, ?2, ?3)",
            params![origin, checkpoint.size as i64, kept.to_text()],
        )
        .map_err(|e| Refusal::Store(e.to_string()))?;
        tx.commit().map_err(|e| Refusal::Store(e.to_string()))?;
        Ok(vec![cosignature])
    }

    /// The latest checkpoint this witness cosigned for `origin`, as a note carrying the
    /// log's signature and this witness's cosignature.
    pub fn latest(&self, origin: &str) -> Result<Option<(Checkpoint, String)>, Refusal> {
        let db = self
            .db
            .lock()
            .map_err(|_| Refusal::Store("the witness state lock is poisoned".into()))?;
        let note: Option<String> = db
            .query_row(
                "SELECT note FROM cosigned WHERE origin = ?1",
                params![origin],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| Refusal::Store(e.to_string()))?;
        note.map(|note| {
            let parsed = Note::parse(&note)
                .and_then(|n| Checkpoint::parse_body(&n.text))
                .map_err(|e| Refusal::Store(e.to_string()))?;
            Ok((parsed, note))
        })
        .transpose()
    }
}

/// Reads the checkpoint of an `add-checkpoint` request (400 if it is not one).
fn read_checkpoint(request: &AddCheckpoint) -> Result<(Note, Checkpoint), Refusal> {
    let note = Note::parse(&request.checkpoint)
        .map_err(|_| Refusal::BadRequest("the checkpoint is not a signed note"))?;
    let checkpoint = Checkpoint::parse_body(&note.text)
        .map_err(|_| Refusal::BadRequest("the note is not a checkpoint"))?;
    Ok((note, checkpoint))
}

/// What a witness's state file holds of one log ([`cosigned_in`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cosigned {
    /// The checkpoints cosigned with the witness's current key, oldest first, each checked.
    pub checkpoints: Vec<crate::Witnessed>,
    /// Checkpoints cosigned under an earlier key of the witness (before its certificate
    /// was renewed with a new one): their cosignatures cannot be checked against the
    /// current certificate, so they are not counted on.
    pub under_earlier_keys: usize,
    /// The newest of `checkpoints` as the witness keeps it: a signed note carrying the
    /// log's signature and the witness's cosignature, for anyone to check.
    pub newest_note: Option<String>,
}

/// The checkpoints of `log` cosigned in the witness state file at `path`, oldest first,
/// each with the witness's cosignature checked against `witness` — what
/// `fedq audit verify` checks a log file against. The log's own signature is checked
/// against `log` too where the note carries one by that key; one by an earlier key of the
/// log (its certificate since renewed) the witness checked when it cosigned, against the
/// certificate then in force. A stored note whose cosignature by the current key, or
/// whose log signature by the current key, fails is an error: the witness's own file was
/// tampered with.
pub fn cosigned_in(
    path: &Path,
    log: &NoteVerifier,
    witness: &NoteVerifier,
) -> Result<Cosigned, crate::AuditError> {
    let err = |reason: Cause| crate::AuditError::store(path, reason);
    if !path.exists() {
        return Err(err("no such file".into()));
    }
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| err(Cause::of(e)))?;
    let mut stmt = conn
        .prepare("SELECT note FROM cosigned_history WHERE origin = ?1 ORDER BY size")
        .map_err(|e| err(Cause::of(e)))?;
    let notes = stmt
        .query_map(params![log.name()], |row| row.get::<_, String>(0))
        .map_err(|e| err(Cause::of(e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(Cause::of(e)))?;
    let mut cosigned = Cosigned::default();
    for text in &notes {
        let note = Note::parse(text).map_err(|e| err(Cause::of(e)))?;
        if !witness.has_line_in(&note) {
            cosigned.under_earlier_keys += 1;
            continue;
        }
        witness.verify(&note).map_err(|e| err(Cause::of(e)))?;
        if log.has_line_in(&note) {
            log.verify(&note).map_err(|e| err(Cause::of(e)))?;
        } else if !note.signatures.iter().any(|s| s.name == log.name()) {
            return Err(err(format!(
                "a note holds no signature by `{}`",
                log.name()
            )
            .into()));
        }
        let checkpoint = Checkpoint::parse_body(&note.text).map_err(|e| err(Cause::of(e)))?;
        if checkpoint.origin != log.name() {
            return Err(err("a note's origin is not its log's".into()));
        }
        cosigned.newest_note = Some(text.clone());
        cosigned.checkpoints.push(crate::Witnessed {
            witness: witness.name().to_owned(),
            checkpoint,
        });
    }
    Ok(cosigned)
}
