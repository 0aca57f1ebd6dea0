//! Checkpoints of an audit log in the C2SP formats: the tree head
//! (`c2sp.org/tlog-checkpoint`: origin, tree size, root hash) carried as a signed note
//! (`c2sp.org/signed-note`), so that tools written for transparency logs can read them.
//!
//! Every fedq process holds an ECDSA P-256 key certified by the federation CA, so
//! checkpoints and witnesses' cosignatures are signed-note signatures of type `0x02`
//! (ECDSA, as transparency-dev's witness implements it): the key ID is the first four
//! bytes of SHA-256 of the key's DER SubjectPublicKeyInfo, the signature is ASN.1 DER over
//! the note text. A witness cosigns by adding its own signature line to the same text.
//!
//! Plain functions over text and keys; no I/O.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _};

use crate::merkle::Hash;

/// The DER prefix of a P-256 SubjectPublicKeyInfo, before the 65-byte uncompressed point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The signed-note signature type for ECDSA.
pub const ECDSA_SIGNATURE_TYPE: u8 = 0x02;

/// At most this many signature lines are read from a note (the spec asks for ≥ 16).
pub const MAX_SIGNATURES: usize = 32;

/// At most this many bytes of note are read.
pub const MAX_NOTE_BYTES: usize = 16 * 1024;

/// Why a checkpoint or note was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The text is not a signed note (no blank line before the signatures, a malformed
    /// signature line, a control character, too long).
    #[error("not a signed note: {0}")]
    Note(&'static str),
    /// The note's text is not a checkpoint (origin, decimal size, base64 32-byte root).
    #[error("not a checkpoint: {0}")]
    Body(&'static str),
    /// No signature by the expected key, or one that does not verify.
    #[error("checkpoint of `{origin}` is not signed by `{key}`")]
    Unsigned {
        /// The log's origin line.
        origin: String,
        /// The key name that should have signed.
        key: String,
    },
    /// A key name with a space or `+`, or empty.
    #[error("unusable key name: key names are non-empty and hold no space or `+`")]
    KeyName,
    /// The key could not be used.
    #[error("the signing key failed")]
    Key,
}

/// A log's tree head: its origin, its size and its root hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's unique name, e.g. `fedq/changsha/node/court`.
    pub origin: String,
    /// The number of entries.
    pub size: u64,
    /// The Merkle tree hash of those entries.
    pub root: Hash,
}

impl Checkpoint {
    /// The note text: three lines, each ending in a newline.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    /// Reads a note text as a checkpoint. Extension lines after the root are refused:
    /// fedq writes none, and a reader that skipped them could be shown more than it
    /// checks.
    pub fn parse_body(text: &str) -> Result<Self, CheckpointError> {
        let mut lines = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::Body("it does not end in a newline"))?
            .split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or(CheckpointError::Body("no origin line"))?;
        let size = lines
            .next()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or(CheckpointError::Body(
                "the second line is not a decimal tree size",
            ))?;
        let root_line = lines
            .next()
            .ok_or(CheckpointError::Body("no root hash line"))?;
        let root: Hash = B64
            .decode(root_line)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(CheckpointError::Body(
                "the third line is not a base64 SHA-256 hash",
            ))?;
        if lines.next().is_some() {
            return Err(CheckpointError::Body("it has lines after the root hash"));
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name.
    pub name: String,
    /// The 32-bit key ID.
    pub key_id: u32,
    /// The signature bytes after the key ID.
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// The line, `— name base64(id || signature)`, with its newline.
    pub fn line(&self) -> String {
        let mut bytes = self.key_id.to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.signature);
        format!("\u{2014} {} {}\n", self.name, B64.encode(bytes))
    }
}

/// A signed note: its text (with its final newline) and its signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The signed text.
    pub text: String,
    /// The signature lines, in order.
    pub signatures: Vec<NoteSignature>,
}

impl Note {
    /// The note as text: the text, a blank line, the signature lines.
    pub fn to_text(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for sig in &self.signatures {
            out.push_str(&sig.line());
        }
        out
    }

    /// Reads a signed note.
    pub fn parse(note: &str) -> Result<Self, CheckpointError> {
        if note.len() > MAX_NOTE_BYTES {
            return Err(CheckpointError::Note(
                "it is longer than a checkpoint can be",
            ));
        }
        if note.chars().any(|c| c.is_control() && c != '\n') {
            return Err(CheckpointError::Note("it holds a control character"));
        }
        let split = note
            .rfind("\n\n")
            .ok_or(CheckpointError::Note("no blank line before the signatures"))?;
        let (text, sigs) = note.split_at(split + 1);
        let sigs = sigs
            .strip_prefix('\n')
            .ok_or(CheckpointError::Note("no blank line before the signatures"))?;
        let mut signatures = Vec::new();
        for line in sigs.split_terminator('\n') {
            if signatures.len() == MAX_SIGNATURES {
                return Err(CheckpointError::Note("it has too many signatures"));
            }
            let rest = line.strip_prefix("\u{2014} ").ok_or(CheckpointError::Note(
                "a signature line does not start with `— `",
            ))?;
            let (name, sig) = rest
                .split_once(' ')
                .ok_or(CheckpointError::Note("a signature line has no signature"))?;
            check_key_name(name).map_err(|_| CheckpointError::Note("a key name is unusable"))?;
            let bytes = B64
                .decode(sig)
                .map_err(|_| CheckpointError::Note("a signature is not base64"))?;
            let (id, signature) = bytes.split_first_chunk::<4>().ok_or(CheckpointError::Note(
                "a signature is shorter than its key ID",
            ))?;
            signatures.push(NoteSignature {
                name: name.to_owned(),
                key_id: u32::from_be_bytes(*id),
                signature: signature.to_vec(),
            });
        }
        if signatures.is_empty() || !sigs.ends_with('\n') {
            return Err(CheckpointError::Note("it has no signature line"));
        }
        Ok(Self {
            text: text.to_owned(),
            signatures,
        })
    }
}

fn check_key_name(name: &str) -> Result<(), CheckpointError> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '+') {
        return Err(CheckpointError::KeyName);
    }
    Ok(())
}

/// A verifier's view of one key: its name and its P-256 public key (the 65-byte
/// uncompressed point, as in a certificate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key_id: u32,
    public_key: Vec<u8>,
}

impl NoteVerifier {
    /// A verifier for `name` with this P-256 public key.
    pub fn new(name: &str, public_key: &[u8]) -> Result<Self, CheckpointError> {
        check_key_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            key_id: ecdsa_key_id(public_key),
            public_key: public_key.to_vec(),
        })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether `note` carries a signature line of this key (this name and key ID),
    /// verified or not: a line under the same name with another ID is another key's.
    pub fn has_line_in(&self, note: &Note) -> bool {
        note.signatures
            .iter()
            .any(|s| self.has_line_in_signature(s))
    }

    /// Whether `signature` is a line of this key (this name and key ID).
    pub fn has_line_in_signature(&self, signature: &NoteSignature) -> bool {
        signature.name == self.name && signature.key_id == self.key_id
    }

    /// Whether one of `note`'s signatures is this key's and verifies. A line with this
    /// name and ID that does not verify makes the whole note refused, as the spec asks.
    pub fn verify(&self, note: &Note) -> Result<(), CheckpointError> {
        let key =
            signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &self.public_key);
        let mut verified = false;
        for sig in &note.signatures {
            if sig.name == self.name && sig.key_id == self.key_id {
                if key.verify(note.text.as_bytes(), &sig.signature).is_err() {
                    return Err(self.unsigned(note));
                }
                verified = true;
            }
        }
        if verified {
            Ok(())
        } else {
            Err(self.unsigned(note))
        }
    }

    fn unsigned(&self, note: &Note) -> CheckpointError {
        CheckpointError::Unsigned {
            origin: note.text.lines().next().unwrap_or_default().to_owned(),
            key: self.name.clone(),
        }
    }
}

/// A signer: a key name and the process's P-256 key pair.
pub struct NoteSigner {
    name: String,
    key: EcdsaKeyPair,
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl NoteSigner {
    /// A signer for `name` with `key` (an ECDSA P-256 key pair for ASN.1 signatures).
    pub fn new(name: &str, key: EcdsaKeyPair) -> Result<Self, CheckpointError> {
        check_key_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            key,
        })
    }

    /// A signer for `name` with the P-256 key in `pkcs8` (DER), as `fedq certs` writes
    /// every process's key.
    pub fn from_pkcs8(name: &str, pkcs8: &[u8]) -> Result<Self, CheckpointError> {
        let key = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            pkcs8,
            &ring::rand::SystemRandom::new(),
        )
        .map_err(|_| CheckpointError::Key)?;
        Self::new(name, key)
    }

    /// The key name (the log's origin).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The matching verifier.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key_id: ecdsa_key_id(self.key.public_key().as_ref()),
            public_key: self.key.public_key().as_ref().to_vec(),
        }
    }

    /// This key's signature line over `text`.
    pub fn sign(&self, text: &str) -> Result<NoteSignature, CheckpointError> {
        let rng = ring::rand::SystemRandom::new();
        let sig = self
            .key
            .sign(&rng, text.as_bytes())
            .map_err(|_| CheckpointError::Key)?;
        Ok(NoteSignature {
            name: self.name.clone(),
            key_id: ecdsa_key_id(self.key.public_key().as_ref()),
            signature: sig.as_ref().to_vec(),
        })
    }

    /// A checkpoint signed by this key alone.
    pub fn sign_checkpoint(&self, checkpoint: &Checkpoint) -> Result<Note, CheckpointError> {
        let text = checkpoint.body();
        let signature = self.sign(&text)?;
        Ok(Note {
            text,
            signatures: vec![signature],
        })
    }
}

/// The domain tag of an entry hash bound to an answer ([`answer_bound_hash`]).
pub const ANSWER_BINDING_TAG: &[u8] = b"fedq audit answer v1\0";

/// The SHA-256 of an answer exactly as it was released (the sealed answer's compact text,
/// already bound to the requester's proof nonce): what an entry written for that answer
/// commits to ([`answer_bound_hash`]).
pub fn answer_sha256(sealed_answer: &str) -> Hash {
    let mut out = [0u8; 32];
    out.copy_from_slice(
        ring::digest::digest(&ring::digest::SHA256, sealed_answer.as_bytes()).as_ref(),
    );
    out
}

/// The hash of an entry written for one answer: SHA-256 of [`ANSWER_BINDING_TAG`], the
/// entry's content hash (its other fields, hashed as an entry without an answer is) and
/// the answer's SHA-256 ([`answer_sha256`]), each 32 bytes. Whoever holds the answer and
/// the content hash recomputes it without seeing the entry's other fields.
pub fn answer_bound_hash(content_hash: &Hash, answer: &Hash) -> Hash {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(ANSWER_BINDING_TAG);
    ctx.update(content_hash);
    ctx.update(answer);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// A node's commitment to the audit entry it wrote for one answer: the log's signed tree
/// head at the group commit that made the entry durable, the entry's index, its hash and
/// content hash, and the inclusion proof of that entry in that tree. Whoever holds it and
/// the answer can later show that the log had the entry written for *that* answer at
/// this place ([`Receipt::verify_answer`]) — a log that drops or rewrites it no longer
/// matches a head its own key signed, and another answer's receipt does not check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Receipt {
    /// The signed checkpoint (a signed note), whose size is at least `index + 1`.
    pub checkpoint: String,
    /// The entry's leaf index (its sequence number minus one).
    pub index: u64,
    /// The entry's hash (hex), whose leaf hash the proof starts from.
    pub entry_hash: String,
    /// For an entry bound to an answer, the hash of its other fields (hex), from which
    /// with the answer's SHA-256 the entry hash is recomputed ([`answer_bound_hash`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
    /// The inclusion proof, base64 hashes, nearest the leaf first.
    pub proof: Vec<String>,
}

/// Why a receipt was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// Its checkpoint is not one the log's key signed.
    #[error("the receipt's checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// Its hashes are not hashes.
    #[error("the receipt is malformed: {0}")]
    Malformed(&'static str),
    /// Its proof does not place the entry in the signed tree.
    #[error("the receipt's inclusion proof does not verify: {0}")]
    Proof(#[from] crate::merkle::ProofError),
    /// It commits to an entry not bound to any answer (it carries no content hash).
    #[error("the receipt is for an entry bound to no answer")]
    Unbound,
    /// Its entry was not written for the answer it came with.
    #[error("the receipt's entry was not written for this answer")]
    OtherAnswer,
}

/// A 32-byte hash from its hex text (`None` if it is not one).
pub(crate) fn hex32(text: &str) -> Option<Hash> {
    hex::decode(text).ok()?.try_into().ok()
}

impl Receipt {
    /// Checks the receipt against the log's key: the checkpoint is signed by it and names
    /// it as origin, and the proof places the entry at its index in that tree. Returns the
    /// checkpoint. This proves the log holds *an* entry there, not which answer it was
    /// written for: a requester checks [`Receipt::verify_answer`].
    pub fn verify(&self, log: &NoteVerifier) -> Result<Checkpoint, ReceiptError> {
        let entry = hex32(&self.entry_hash).ok_or(ReceiptError::Malformed(
            "the entry hash is not 32 bytes of hex",
        ))?;
        self.verify_entry(log, &entry)
    }

    /// Checks the receipt as the requester of `sealed_answer` does: the entry's hash is
    /// recomputed from the receipt's content hash and the SHA-256 of the answer received
    /// ([`answer_bound_hash`]), must be the hash the receipt states, and the proof must
    /// place it in a tree the log's key signed. A receipt of another entry (of another
    /// answer, or one not bound to an answer) or with an altered content hash is refused.
    pub fn verify_answer(
        &self,
        log: &NoteVerifier,
        sealed_answer: &str,
    ) -> Result<Checkpoint, ReceiptError> {
        let content = self.content_hash.as_deref().ok_or(ReceiptError::Unbound)?;
        let content = hex32(content).ok_or(ReceiptError::Malformed(
            "the content hash is not 32 bytes of hex",
        ))?;
        let entry = answer_bound_hash(&content, &answer_sha256(sealed_answer));
        if hex32(&self.entry_hash) != Some(entry) {
            return Err(ReceiptError::OtherAnswer);
        }
        self.verify_entry(log, &entry)
    }

    fn verify_entry(&self, log: &NoteVerifier, entry: &Hash) -> Result<Checkpoint, ReceiptError> {
        let (checkpoint, _) = open_checkpoint(&self.checkpoint, log)?;
        let proof = decode_proof(&self.proof).ok_or(ReceiptError::Malformed(
            "a proof hash is not base64 SHA-256",
        ))?;
        crate::merkle::verify_inclusion(
            &crate::merkle::leaf_hash(entry),
            self.index,
            checkpoint.size,
            &proof,
            &checkpoint.root,
        )?;
        Ok(checkpoint)
    }
}

/// The key name (and log origin) of a federation process's audit log:
/// `fedq/<federation>/<role>/<name>`, from its certificate's identity — what a requester
/// checks a node's receipts against, with that certificate's public key.
pub fn log_name(federation: &str, role: &str, name: &str) -> String {
    format!("fedq/{federation}/{role}/{name}")
}

/// The key name a federation process cosigns other logs' checkpoints under as a witness:
/// `fedq/<federation>/witness/<name>`, from its certificate's identity (the same key as
/// its own log's, another name, so a cosignature line never reads as a log's signature).
pub fn witness_name(federation: &str, name: &str) -> String {
    format!("fedq/{federation}/witness/{name}")
}

/// Encodes a proof's hashes for a [`Receipt`].
pub fn encode_proof(proof: &[Hash]) -> Vec<String> {
    proof.iter().map(|h| B64.encode(h)).collect()
}

/// Decodes a proof's hashes as [`encode_proof`] wrote them; `None` if one is not a base64
/// SHA-256 hash.
pub fn decode_proof(proof: &[String]) -> Option<Vec<Hash>> {
    proof
        .iter()
        .map(|h| B64.decode(h).ok().and_then(|b| b.try_into().ok()))
        .collect()
}

/// The signed-note key ID of an ECDSA key: SHA-256 of its DER SubjectPublicKeyInfo,
/// first four bytes, big-endian.
pub fn ecdsa_key_id(public_key: &[u8]) -> u32 {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(&P256_SPKI_PREFIX);
    ctx.update(public_key);
    let digest = ctx.finish();
    let mut id = [0u8; 4];
    id.copy_from_slice(digest.as_ref().get(..4).unwrap_or(&[0; 4]));
    u32::from_be_bytes(id)
}

/// Reads a checkpoint note signed by `log` (the log's own key), returning the checkpoint.
/// The origin must equal the key name: a log signs only its own checkpoints.
pub fn open_checkpoint(
    note: &str,
    log: &NoteVerifier,
) -> Result<(Checkpoint, Note), CheckpointError> {
    let note = Note::parse(note)?;
    log.verify(&note)?;
    let checkpoint = Checkpoint::parse_body(&note.text)?;
    if checkpoint.origin != log.name() {
        return Err(CheckpointError::Unsigned {
            origin: checkpoint.origin,
            key: log.name().to_owned(),
        });
    }
    Ok((checkpoint, note))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn key() -> EcdsaKeyPair {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            pkcs8.as_ref(),
            &rng,
        )
        .unwrap()
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "fedq/changsha/node/court".into(),
            size: 42,
            root: crate::merkle::leaf_hash(b"x"),
        }
    }

    #[test]
    fn a_signed_checkpoint_reads_back_and_a_witness_cosignature_adds_a_line() {
        let (log_key, witness_key) = (key(), key());
        let log = NoteSigner::new("fedq/changsha/node/court", log_key).unwrap();
        let witness = NoteSigner::new("fedq/changsha/node/tax", witness_key).unwrap();
        let mut note = log.sign_checkpoint(&checkpoint()).unwrap();
        let text = note.to_text();
        assert!(text.starts_with("fedq/changsha/node/court\n42\n"), "{text}");
        assert!(
            text.contains("\n\n\u{2014} fedq/changsha/node/court "),
            "{text}"
        );
        let (read, _) = open_checkpoint(&text, &log.verifier()).unwrap();
        assert_eq!(read, checkpoint());

        note.signatures.push(witness.sign(&note.text).unwrap());
        let cosigned = Note::parse(&note.to_text()).unwrap();
        log.verifier().verify(&cosigned).unwrap();
        witness.verifier().verify(&cosigned).unwrap();
        // Not signed by a third key.
        let stranger_key = key();
        let stranger = NoteSigner::new("fedq/changsha/node/hrss", stranger_key).unwrap();
        assert!(stranger.verifier().verify(&cosigned).is_err());
    }

    #[test]
    fn a_changed_checkpoint_or_a_forged_line_is_refused() {
        let log_key = key();
        let log = NoteSigner::new("fedq/changsha/node/court", log_key).unwrap();
        let text = log.sign_checkpoint(&checkpoint()).unwrap().to_text();
        // A rewriter changes the size and keeps the signature.
        let changed = text.replacen("\n42\n", "\n41\n", 1);
        assert!(matches!(
            open_checkpoint(&changed, &log.verifier()),
            Err(CheckpointError::Unsigned { .. })
        ));
        // Another key signs under the log's name: unknown ID, so no valid signature.
        let other_key = key();
        let impostor = NoteSigner::new("fedq/changsha/node/court", other_key).unwrap();
        let forged = impostor.sign_checkpoint(&checkpoint()).unwrap().to_text();
        assert!(open_checkpoint(&forged, &log.verifier()).is_err());
        // A log signing another origin's checkpoint.
        let mut elsewhere = checkpoint();
        elsewhere.origin = "fedq/changsha/node/tax".into();
        let note = log.sign_checkpoint(&elsewhere).unwrap().to_text();
        assert!(open_checkpoint(&note, &log.verifier()).is_err());
    }

    #[test]
    fn malformed_notes_and_bodies_are_refused_with_what_is_wrong() {
        for (text, why) in [
            ("a\n1\n", "no blank line"),
            ("a\n\n— k AAAA\n", "a signature is shorter"),
            ("a\n\n- k AAAAAA==\n", "does not start"),
            ("a\u{7}\n\n— k AAAAAA==\n", "control character"),
            ("a\n\n", "no signature line"),
        ] {
            let err = Note::parse(text).unwrap_err().to_string();
            assert!(err.contains(why), "{text:?}: {err}");
        }
        for (body, why) in [
            ("o\n12\n", "no root hash line"),
            ("o\n-1\nAA==\n", "decimal tree size"),
            ("o\n1\nAA==\n", "base64 SHA-256"),
            (
                "o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\nextra\n",
                "lines after",
            ),
            (
                "o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
                "newline",
            ),
        ] {
            let err = Checkpoint::parse_body(body).unwrap_err().to_string();
            assert!(err.contains(why), "{body:?}: {err}");
        }
        assert!(
            Checkpoint::parse_body("o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n").is_ok()
        );
    }
}
