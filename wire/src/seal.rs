//! Sealing over the requester–node session: a payload only the two ends of one session can
//! open. A lookup's subject and consent token travel sealed
//! ([`crate::proof::Session::prove_sealed`]), and so does each node's answer
//! ([`crate::proof::NodeSession::seal_lookup_answer`]).
//!
//! A sealed payload is a JWE in compact serialization (RFC 7516) with `alg = "dir"` and
//! `enc = "A256GCM"` (RFC 7518 §4.5 and §5.3), so any JOSE library can make and open one
//! given the key:
//!
//! ```text
//! BASE64URL(protected header) . (empty: dir) . BASE64URL(IV, 12 bytes)
//!     . BASE64URL(ciphertext) . BASE64URL(tag, 16 bytes)
//! ```
//!
//! The protected header has exactly `alg`, `enc`, `typ` ([`QUERY_TYP`] or [`ANSWER_TYP`]),
//! `kid` (the session id), `aud` (the node's name, in both directions: the node a query is
//! sealed to, the node an answer comes from) and `bnd` (a binding string the caller gives;
//! the integration will use the per-node proof's nonce, fresh per node and per query). The
//! AAD is the ASCII of the base64url protected header, as RFC 7516 §5.1 says, so none of
//! these members can be changed without the tag failing. The IV is 96 random bits from
//! [`SystemRandom`].
//!
//! The key is the session's, one per direction ([`crate::proof::SEAL_QUERY_LABEL`],
//! [`crate::proof::SEAL_ANSWER_LABEL`]), derived by both ends from their X25519 agreement;
//! the coordinator, which forwards the grant and the accept but holds neither private key,
//! cannot derive it.
//!
//! Opening checks, in order: the size ([`MAX_SEALED_LEN`], before anything is decoded),
//! the shape ([`SealRefusal::Malformed`]), `typ`, `kid`, `aud`, `bnd`, then the tag. Every
//! refusal is a typed [`SealRefusal`] whose message quotes no part of the input.
//!
//! The raw key bytes zeroize on drop (they live in [`crate::proof::SessionKeys`]); the
//! AES key schedule ring expands from them for one call is ring's and is not wiped.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// `typ` of a query sealed by the requester to a node.
pub const QUERY_TYP: &str = "fedq-sealed-query+jwe";
/// `typ` of an answer sealed by a node to the requester.
pub const ANSWER_TYP: &str = "fedq-sealed-answer+jwe";
/// The JWE key management algorithm: the session key is the content key.
pub const ALG: &str = "dir";
/// The JWE content encryption algorithm.
pub const ENC: &str = "A256GCM";
/// Longest sealed payload (compact text, bytes) sealed or opened: a node's answer frame
/// limit ([`crate::frame::MAX_FRAME_LEN`], 1 MiB, the default `max_frame_len` a node
/// withholds a larger answer under). A sealed payload travels inside such a frame, so
/// anything longer could never arrive whole; refusing it before decoding keeps a hostile
/// peer from making the opener decode more than one frame's worth.
pub const MAX_SEALED_LEN: usize = crate::frame::MAX_FRAME_LEN;
/// Bytes of the GCM tag.
const TAG_LEN: usize = 16;

/// Why a payload could not be sealed. Never quotes the plaintext.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The sealed text would be longer than [`MAX_SEALED_LEN`].
    #[error("the sealed payload would exceed the limit of 1048576 bytes")]
    TooLarge,
    /// The binding is empty (a payload bound to nothing could be moved between queries).
    #[error("a sealed payload needs a non-empty binding")]
    EmptyBinding,
    /// Randomness or encryption failed.
    #[error("cannot seal: {0}")]
    Internal(&'static str),
}

/// Why a sealed payload was refused. Carried in refusals and audit entries by
/// [`SealRefusal::code`]; the message never quotes any part of the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum SealRefusal {
    /// Longer than [`MAX_SEALED_LEN`]; refused before decoding.
    #[error("the sealed payload exceeds the limit of 1048576 bytes")]
    TooLarge,
    /// Not a compact `dir`/`A256GCM` JWE with exactly the fedq header members: not five
    /// parts, a part that is not base64url, a header that is not JSON or has a member
    /// missing, unknown or repeated, another `alg` or `enc`, an encrypted key, or an IV
    /// that is not 12 bytes (or a tag that is not 16).
    #[error("the sealed payload is not a fedq dir/A256GCM compact JWE")]
    Malformed,
    /// A sealed answer offered as a query, or the other way round.
    #[error("the sealed payload is not of the kind expected here (a query offered as an answer or an answer as a query)")]
    WrongType,
    /// Sealed under another session (`kid`).
    #[error("the sealed payload was sealed under another session")]
    WrongSession,
    /// Sealed for another node (`aud`).
    #[error("the sealed payload was sealed for another node")]
    Misdirected,
    /// Bound to another query (`bnd` is not the binding expected).
    #[error("the sealed payload is bound to another query or node; it was moved")]
    Moved,
    /// The AEAD tag does not verify: the ciphertext, IV, tag or header was altered, or it
    /// was sealed under another key.
    #[error("the sealed payload does not verify under this session's key; it was altered or sealed under another key")]
    Tampered,
}

impl SealRefusal {
    /// A short stable name for audit entries and metrics.
    pub fn code(self) -> &'static str {
        match self {
            SealRefusal::TooLarge => "too-large",
            SealRefusal::Malformed => "malformed",
            SealRefusal::WrongType => "wrong-type",
            SealRefusal::WrongSession => "wrong-session",
            SealRefusal::Misdirected => "misdirected",
            SealRefusal::Moved => "moved",
            SealRefusal::Tampered => "tampered",
        }
    }
}

/// The protected header: exactly these members, in this order.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    alg: String,
    enc: String,
    typ: String,
    kid: String,
    aud: String,
    bnd: String,
}

/// The base64url SHA-256 of a sealed payload's compact text (for the proof claims, so the
/// MAC'd proof covers the sealed payload).
pub fn sealed_sha256(jwe: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, jwe.as_bytes()))
}

/// Whether `jwe` has the shape of a query sealed to `node`: five parts, an empty
/// encrypted key, and a protected header of exactly the fedq members with `typ`
/// [`QUERY_TYP`] and `aud` = `node`. Checks the shape only (a relay holds no key): the
/// coordinator uses it so that a careless client's plaintext is refused rather than
/// forwarded.
pub fn is_sealed_query_for(jwe: &str, node: &str) -> bool {
    let Some([protected, "", _, _, _]) = compact_parts(jwe) else {
        return false;
    };
    protected_header(protected)
        .is_some_and(|h| h.alg == ALG && h.enc == ENC && h.typ == QUERY_TYP && h.aud == node)
}

/// The five dot-separated parts of a compact JWE, or `None` for any other count.
fn compact_parts(jwe: &str) -> Option<[&str; 5]> {
    let mut parts = jwe.split('.');
    let five = [
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    ];
    parts.next().is_none().then_some(five)
}

/// The protected header, if it is base64url JSON with exactly the fedq members.
fn protected_header(protected: &str) -> Option<Header> {
    let bytes = URL_SAFE_NO_PAD.decode(protected).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn aes_key(key: &[u8; 32]) -> Option<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, key)
        .ok()
        .map(LessSafeKey::new)
}

/// Characters of the unpadded base64url of `n` bytes.
fn b64_len(n: usize) -> usize {
    n.div_ceil(3) * 4 - (3 - n % 3) % 3
}

/// Seals `plaintext` under `key` as a compact JWE with this header (the session types in
/// [`crate::proof`] call it with their own key, id and node).
pub(crate) fn seal(
    key: &[u8; 32],
    typ: &str,
    kid: &str,
    aud: &str,
    binding: &str,
    plaintext: &[u8],
) -> Result<String, SealError> {
    if binding.is_empty() {
        return Err(SealError::EmptyBinding);
    }
    let header = Header {
        alg: ALG.to_owned(),
        enc: ENC.to_owned(),
        typ: typ.to_owned(),
        kid: kid.to_owned(),
        aud: aud.to_owned(),
        bnd: binding.to_owned(),
    };
    let header =
        serde_json::to_vec(&header).map_err(|_| SealError::Internal("cannot encode the header"))?;
    let protected = URL_SAFE_NO_PAD.encode(header);
    let len =
        protected.len() + 4 + b64_len(NONCE_LEN) + b64_len(plaintext.len()) + b64_len(TAG_LEN);
    if len > MAX_SEALED_LEN {
        return Err(SealError::TooLarge);
    }
    let mut iv = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut iv)
        .map_err(|_| SealError::Internal("the system random source failed"))?;
    let key = aes_key(key).ok_or(SealError::Internal("cannot load the key"))?;
    let mut in_out = Zeroizing::new(plaintext.to_vec());
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::from(protected.as_bytes()),
            in_out.as_mut_slice(),
        )
        .map_err(|_| SealError::Internal("encryption failed"))?;
    let mut out = String::with_capacity(len);
    out.push_str(&protected);
    out.push_str("..");
    URL_SAFE_NO_PAD.encode_string(iv, &mut out);
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(in_out.as_slice(), &mut out);
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(tag.as_ref(), &mut out);
    Ok(out)
}

/// Opens a compact JWE sealed under `key`, checking its header against these values.
pub(crate) fn open(
    key: &[u8; 32],
    typ: &str,
    kid: &str,
    aud: &str,
    binding: &str,
    jwe: &str,
) -> Result<Zeroizing<Vec<u8>>, SealRefusal> {
    if jwe.len() > MAX_SEALED_LEN {
        return Err(SealRefusal::TooLarge);
    }
    let malformed = |_| SealRefusal::Malformed;
    let Some([protected, encrypted_key, iv, ciphertext, tag]) = compact_parts(jwe) else {
        return Err(SealRefusal::Malformed);
    };
    let header = protected_header(protected).ok_or(SealRefusal::Malformed)?;
    if header.alg != ALG || header.enc != ENC || !encrypted_key.is_empty() {
        return Err(SealRefusal::Malformed);
    }
    let iv: [u8; NONCE_LEN] = URL_SAFE_NO_PAD
        .decode(iv)
        .map_err(malformed)?
        .try_into()
        .map_err(|_| SealRefusal::Malformed)?;
    let tag: [u8; TAG_LEN] = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(malformed)?
        .try_into()
        .map_err(|_| SealRefusal::Malformed)?;
    let mut in_out = Zeroizing::new(URL_SAFE_NO_PAD.decode(ciphertext).map_err(malformed)?);
    if header.typ != typ {
        return Err(SealRefusal::WrongType);
    }
    if header.kid != kid {
        return Err(SealRefusal::WrongSession);
    }
    if header.aud != aud {
        return Err(SealRefusal::Misdirected);
    }
    if header.bnd != binding {
        return Err(SealRefusal::Moved);
    }
    let key = aes_key(key).ok_or(SealRefusal::Tampered)?;
    // The ciphertext and tag are joined for ring's in-place open.
    in_out.extend_from_slice(&tag);
    let plain_len = key
        .open_in_place(
            Nonce::assume_unique_for_key(iv),
            Aad::from(protected.as_bytes()),
            in_out.as_mut_slice(),
        )
        .map_err(|_| SealRefusal::Tampered)?
        .len();
    in_out.truncate(plain_len);
    Ok(in_out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proof::{
        accept_grant, fresh_nonce, NodeSession, Session, SessionAccept, SessionGrant, SessionKeys,
        UnixTime,
    };
    use fedq_certs::jws::CertificateKey;
    use fedq_certs::pki::{CertificateAuthority, IssueOptions};
    use fedq_certs::tls::TrustFiles;
    use fedq_certs::{FederationTrust, Role};
    use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey, X25519};
    use serde_json::{json, Value};

    const FED: &str = "changsha";
    const REQUESTER: &str = "market-regulation.licensing";
    const SUBJECT: &str = "430102199003071234";

    struct Fed {
        _dir: tempfile::TempDir,
        trust: FederationTrust,
        requester: CertificateKey,
        court: CertificateKey,
        tax: CertificateKey,
    }

    /// A CA, one requester and two nodes, as in `proof`'s tests.
    fn federation() -> Fed {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::init(dir.path(), FED, false).unwrap();
        let opts = IssueOptions::default();
        ca.issue(Role::Requester, REQUESTER, &opts).unwrap();
        ca.issue(Role::Node, "court", &opts).unwrap();
        ca.issue(Role::Node, "tax", &opts).unwrap();
        let trust = FederationTrust::load(&TrustFiles::in_dir(dir.path())).unwrap();
        let load = |n: &str| {
            CertificateKey::load(
                &dir.path().join(format!("{n}.crt")),
                &dir.path().join(format!("{n}.key")),
            )
            .unwrap()
        };
        Fed {
            trust,
            requester: load(REQUESTER),
            court: load("court"),
            tax: load("tax"),
            _dir: dir,
        }
    }

    /// Both ends of one session with `node` (grant → accept → complete), and the two
    /// tokens the coordinator forwarded.
    struct Pair {
        session: Session,
        node: NodeSession,
        grant: String,
        accept: String,
    }

    fn pair(f: &Fed, node: &str) -> Pair {
        let now = UnixTime::now();
        let key = if node == "court" { &f.court } else { &f.tax };
        let (grant, pending) = SessionGrant::new(&f.requester, FED, node, now).unwrap();
        let (accept, node_side) = accept_grant(&grant, &f.trust, key, FED, node, now).unwrap();
        let session = pending.complete(&accept, &f.trust, now).unwrap();
        assert_eq!(session.sid, node_side.sid);
        Pair {
            session,
            node: node_side,
            grant,
            accept,
        }
    }

    fn nonce() -> String {
        fresh_nonce().unwrap()
    }

    fn parts(jwe: &str) -> Vec<String> {
        jwe.split('.').map(str::to_owned).collect()
    }

    fn b64d(part: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(part).unwrap()
    }

    fn b64e(bytes: impl AsRef<[u8]>) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn header(jwe: &str) -> Value {
        serde_json::from_slice(&b64d(&parts(jwe)[0])).unwrap()
    }

    /// `jwe` with part `i` replaced.
    fn with_part(jwe: &str, i: usize, part: &str) -> String {
        let mut p = parts(jwe);
        p[i] = part.to_owned();
        p.join(".")
    }

    /// `jwe` with its protected header re-encoded after `change` (what a party on the path
    /// can do: the header is readable by anyone).
    fn reheader(jwe: &str, change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
        let mut h = header(jwe);
        change(h.as_object_mut().unwrap());
        with_part(jwe, 0, &b64e(serde_json::to_vec(&h).unwrap()))
    }

    /// `jwe` with one bit of the decoded part `i` flipped.
    fn flip(jwe: &str, i: usize) -> String {
        let mut bytes = b64d(&parts(jwe)[i]);
        bytes[0] ^= 0x01;
        with_part(jwe, i, &b64e(bytes))
    }

    /// Asserts `result` is the refusal `want` and that its message quotes nothing of the
    /// input (no part of the payload, no session id, no binding).
    fn refused<T: std::fmt::Debug>(
        result: Result<T, SealRefusal>,
        want: SealRefusal,
        jwe: &str,
        quoted: &[&str],
    ) {
        let got = result.unwrap_err();
        assert_eq!(got, want);
        let msg = got.to_string();
        for part in jwe.split('.').filter(|p| p.len() >= 8) {
            assert!(!msg.contains(part), "{msg}");
        }
        for value in quoted {
            assert!(!msg.contains(value), "{msg}");
        }
    }

    #[test]
    fn a_sealed_query_and_a_sealed_answer_round_trip_between_the_two_ends() {
        let f = federation();
        let p = pair(&f, "court");
        let bnd = nonce();
        let query = format!(r#"{{"subject":"{SUBJECT}"}}"#);
        let jwe = p.session.seal_query(query.as_bytes(), &bnd).unwrap();
        assert!(!jwe.contains(&b64e(&query)) && !jwe.contains(SUBJECT));
        assert_eq!(
            p.node.open_query(&jwe, &bnd).unwrap().as_slice(),
            query.as_bytes()
        );
        let answer: Vec<u8> = (0..2048u32).map(|i| (i % 251) as u8).collect();
        let sealed = p.node.seal_answer(&answer, &bnd).unwrap();
        assert_eq!(
            p.session.open_answer(&sealed, &bnd).unwrap().as_slice(),
            answer
        );
        let empty = p.session.seal_query(b"", &bnd).unwrap();
        assert!(p.node.open_query(&empty, &bnd).unwrap().is_empty());

        // RFC 7516 compact shape: five parts, no encrypted key (dir), a 12-byte IV, the
        // ciphertext as long as the plaintext, a 16-byte tag; exactly the fedq header.
        let q = parts(&jwe);
        assert_eq!(q.len(), 5);
        assert_eq!(q[1], "");
        assert_eq!(b64d(&q[2]).len(), 12);
        assert_eq!(b64d(&q[3]).len(), query.len());
        assert_eq!(b64d(&q[4]).len(), 16);
        assert_eq!(
            header(&jwe),
            json!({"alg": "dir", "enc": "A256GCM", "typ": QUERY_TYP,
                   "kid": p.session.sid, "aud": "court", "bnd": bnd})
        );
        assert_eq!(
            header(&sealed),
            json!({"alg": "dir", "enc": "A256GCM", "typ": ANSWER_TYP,
                   "kid": p.session.sid, "aud": "court", "bnd": bnd})
        );
        // What any JOSE implementation holding the key does: AES-256-GCM with the IV, and
        // the ASCII of the base64url protected header as the AAD.
        let key = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, p.session.keys.seal_query_key()).unwrap(),
        );
        let mut in_out = [b64d(&q[3]), b64d(&q[4])].concat();
        let iv: [u8; 12] = b64d(&q[2]).try_into().unwrap();
        let plain = key
            .open_in_place(
                Nonce::assume_unique_for_key(iv),
                Aad::from(q[0].as_bytes()),
                &mut in_out,
            )
            .unwrap();
        assert_eq!(plain, query.as_bytes());
    }

    #[test]
    fn a_relay_can_tell_a_query_sealed_to_a_node_from_anything_else_without_a_key() {
        let f = federation();
        let p = pair(&f, "court");
        let bnd = nonce();
        let jwe = p.session.seal_query(b"{}", &bnd).unwrap();
        assert!(is_sealed_query_for(&jwe, "court"));
        assert!(!is_sealed_query_for(&jwe, "tax"), "sealed to another node");
        let answer = p.node.seal_answer(b"{}", &bnd).unwrap();
        assert!(
            !is_sealed_query_for(&answer, "court"),
            "an answer, not a query"
        );
        let clear = format!(r#"{{"sub":"{SUBJECT}","consent":null}}"#);
        for not_sealed in [clear.as_str(), "", "a.b.c.d.e", "..."] {
            assert!(!is_sealed_query_for(not_sealed, "court"), "{not_sealed}");
        }
        let mut with_key = parts(&jwe);
        with_key[1] = "AAAA".into();
        assert!(!is_sealed_query_for(&with_key.join("."), "court"));
    }

    #[test]
    fn two_seals_of_the_same_plaintext_differ() {
        let f = federation();
        let p = pair(&f, "court");
        let bnd = nonce();
        let a = p.session.seal_query(b"same plaintext", &bnd).unwrap();
        let b = p.session.seal_query(b"same plaintext", &bnd).unwrap();
        assert_ne!(parts(&a)[2], parts(&b)[2], "a fresh IV per seal");
        assert_ne!(parts(&a)[3], parts(&b)[3]);
        assert_ne!(sealed_sha256(&a), sealed_sha256(&b));
        assert_eq!(
            p.node.open_query(&a, &bnd).unwrap().as_slice(),
            b"same plaintext"
        );
        assert_eq!(
            p.node.open_query(&b, &bnd).unwrap().as_slice(),
            b"same plaintext"
        );
        let c = p.node.seal_answer(b"same plaintext", &bnd).unwrap();
        let d = p.node.seal_answer(b"same plaintext", &bnd).unwrap();
        assert_ne!(parts(&c)[2], parts(&d)[2]);
    }

    #[test]
    fn each_direction_has_its_own_key_and_a_query_is_never_an_answer() {
        let f = federation();
        let p = pair(&f, "court");
        let (s, n) = (&p.session.keys, &p.node.keys);
        assert_eq!(s.seal_query_key(), n.seal_query_key());
        assert_eq!(s.seal_answer_key(), n.seal_answer_key());
        assert_ne!(s.seal_query_key(), s.seal_answer_key());
        assert_ne!(s.seal_query_key().as_slice(), s.mac_key());
        assert_ne!(s.seal_answer_key().as_slice(), s.mac_key());
        // Debug shows no key.
        assert_eq!(format!("{s:?}"), "SessionKeys(..)");
        let shown = format!("{:?} {:?}", p.session, p.node);
        for key in [s.seal_query_key(), s.seal_answer_key()] {
            assert!(!shown.contains(&b64e(key)) && !shown.contains(&format!("{key:?}")));
        }

        let bnd = nonce();
        let query = p.session.seal_query(b"query", &bnd).unwrap();
        let answer = p.node.seal_answer(b"answer", &bnd).unwrap();
        let sid = p.session.sid.as_str();
        refused(
            p.session.open_answer(&query, &bnd),
            SealRefusal::WrongType,
            &query,
            &[sid, &bnd],
        );
        refused(
            p.node.open_query(&answer, &bnd),
            SealRefusal::WrongType,
            &answer,
            &[sid, &bnd],
        );
        // Relabelled on the path: the header is in the AAD and the key is the other one.
        let relabelled = reheader(&query, |h| {
            h.insert("typ".into(), ANSWER_TYP.into());
        });
        refused(
            p.session.open_answer(&relabelled, &bnd),
            SealRefusal::Tampered,
            &relabelled,
            &[sid],
        );
        let relabelled = reheader(&answer, |h| {
            h.insert("typ".into(), QUERY_TYP.into());
        });
        refused(
            p.node.open_query(&relabelled, &bnd),
            SealRefusal::Tampered,
            &relabelled,
            &[sid],
        );
        // Even a header made honestly under the query key does not open as an answer.
        let wrong_key = seal(s.seal_query_key(), ANSWER_TYP, sid, "court", &bnd, b"x").unwrap();
        refused(
            p.session.open_answer(&wrong_key, &bnd),
            SealRefusal::Tampered,
            &wrong_key,
            &[sid],
        );
    }

    #[test]
    fn an_altered_ciphertext_iv_tag_or_header_text_is_tampered() {
        let f = federation();
        let p = pair(&f, "court");
        let bnd = nonce();
        let jwe = p.session.seal_query(b"the subject's id", &bnd).unwrap();
        let sid = p.session.sid.as_str();
        for altered in [flip(&jwe, 3), flip(&jwe, 2), flip(&jwe, 4)] {
            refused(
                p.node.open_query(&altered, &bnd),
                SealRefusal::Tampered,
                &altered,
                &[sid, &bnd],
            );
        }
        // A byte cut from the ciphertext.
        let mut ct = b64d(&parts(&jwe)[3]);
        ct.pop();
        let cut = with_part(&jwe, 3, &b64e(ct));
        refused(
            p.node.open_query(&cut, &bnd),
            SealRefusal::Tampered,
            &cut,
            &[sid],
        );
        // The same header members and values, encoded as other text: the AAD is the text.
        let text = String::from_utf8(b64d(&parts(&jwe)[0])).unwrap();
        let spaced = text.replacen(r#""alg":"dir""#, r#""alg": "dir""#, 1);
        assert_ne!(spaced, text);
        let respelled = with_part(&jwe, 0, &b64e(spaced));
        refused(
            p.node.open_query(&respelled, &bnd),
            SealRefusal::Tampered,
            &respelled,
            &[sid],
        );
        // And the answer direction.
        let answer = p.node.seal_answer(b"released record", &bnd).unwrap();
        let altered = flip(&answer, 3);
        refused(
            p.session.open_answer(&altered, &bnd),
            SealRefusal::Tampered,
            &altered,
            &[sid],
        );
    }

    #[test]
    fn a_swapped_header_is_refused() {
        let f = federation();
        let p = pair(&f, "court");
        let (x, y) = (nonce(), nonce());
        let for_x = p.session.seal_query(b"query x", &x).unwrap();
        let for_y = p.session.seal_query(b"query y", &y).unwrap();
        // Y's header on X's IV, ciphertext and tag.
        let swapped = with_part(&for_x, 0, &parts(&for_y)[0]);
        refused(
            p.node.open_query(&swapped, &y),
            SealRefusal::Tampered,
            &swapped,
            &[&x, &y],
        );
        refused(
            p.node.open_query(&swapped, &x),
            SealRefusal::Moved,
            &swapped,
            &[&x, &y],
        );
        // Both untouched still open.
        assert_eq!(
            p.node.open_query(&for_x, &x).unwrap().as_slice(),
            b"query x"
        );
        assert_eq!(
            p.node.open_query(&for_y, &y).unwrap().as_slice(),
            b"query y"
        );
    }

    #[test]
    fn a_payload_sealed_for_one_node_is_refused_at_another() {
        let f = federation();
        let court = pair(&f, "court");
        let tax = pair(&f, "tax");
        let bnd = nonce();
        let quoted = [
            court.session.sid.as_str(),
            tax.session.sid.as_str(),
            bnd.as_str(),
        ];
        let for_court = court.session.seal_query(b"court query", &bnd).unwrap();
        refused(
            tax.node.open_query(&for_court, &bnd),
            SealRefusal::WrongSession,
            &for_court,
            &quoted,
        );
        // Relabelled with the tax session's id, it still names the court.
        let rekeyed = reheader(&for_court, |h| {
            h.insert("kid".into(), tax.session.sid.clone().into());
        });
        refused(
            tax.node.open_query(&rekeyed, &bnd),
            SealRefusal::Misdirected,
            &rekeyed,
            &quoted,
        );
        // Relabelled as the tax node's too: the header no longer matches the tag.
        let readdressed = reheader(&rekeyed, |h| {
            h.insert("aud".into(), "tax".into());
        });
        refused(
            tax.node.open_query(&readdressed, &bnd),
            SealRefusal::Tampered,
            &readdressed,
            &quoted,
        );
        // The tax node's answer offered to the requester as the court's.
        let from_tax = tax.node.seal_answer(b"tax answer", &bnd).unwrap();
        refused(
            court.session.open_answer(&from_tax, &bnd),
            SealRefusal::WrongSession,
            &from_tax,
            &quoted,
        );
        let rekeyed = reheader(&from_tax, |h| {
            h.insert("kid".into(), court.session.sid.clone().into());
        });
        refused(
            court.session.open_answer(&rekeyed, &bnd),
            SealRefusal::Misdirected,
            &rekeyed,
            &quoted,
        );
        let readdressed = reheader(&rekeyed, |h| {
            h.insert("aud".into(), "court".into());
        });
        refused(
            court.session.open_answer(&readdressed, &bnd),
            SealRefusal::Tampered,
            &readdressed,
            &quoted,
        );
    }

    #[test]
    fn another_sessions_payload_is_refused() {
        let f = federation();
        let one = pair(&f, "court");
        let two = pair(&f, "court");
        let bnd = nonce();
        let quoted = [one.session.sid.as_str(), two.session.sid.as_str()];
        let query = one.session.seal_query(b"q", &bnd).unwrap();
        refused(
            two.node.open_query(&query, &bnd),
            SealRefusal::WrongSession,
            &query,
            &quoted,
        );
        let answer = one.node.seal_answer(b"a", &bnd).unwrap();
        refused(
            two.session.open_answer(&answer, &bnd),
            SealRefusal::WrongSession,
            &answer,
            &quoted,
        );
        // Relabelled with the other session's id: the other session's key does not open it.
        let rekeyed = reheader(&query, |h| {
            h.insert("kid".into(), two.session.sid.clone().into());
        });
        refused(
            two.node.open_query(&rekeyed, &bnd),
            SealRefusal::Tampered,
            &rekeyed,
            &quoted,
        );
    }

    #[test]
    fn a_payload_bound_to_one_query_is_refused_for_another() {
        let f = federation();
        let p = pair(&f, "court");
        let (x, y) = (nonce(), nonce());
        let quoted = [x.as_str(), y.as_str(), p.session.sid.as_str()];
        let query = p.session.seal_query(b"q", &x).unwrap();
        refused(
            p.node.open_query(&query, &y),
            SealRefusal::Moved,
            &query,
            &quoted,
        );
        let answer = p.node.seal_answer(b"a", &x).unwrap();
        refused(
            p.session.open_answer(&answer, &y),
            SealRefusal::Moved,
            &answer,
            &quoted,
        );
        // Rebound on the path: the binding is in the AAD.
        let rebound = reheader(&query, |h| {
            h.insert("bnd".into(), y.clone().into());
        });
        refused(
            p.node.open_query(&rebound, &y),
            SealRefusal::Tampered,
            &rebound,
            &quoted,
        );
        let rebound = reheader(&answer, |h| {
            h.insert("bnd".into(), y.clone().into());
        });
        refused(
            p.session.open_answer(&rebound, &y),
            SealRefusal::Tampered,
            &rebound,
            &quoted,
        );
        // Nothing is sealed bound to nothing.
        assert_eq!(p.session.seal_query(b"q", ""), Err(SealError::EmptyBinding));
        assert_eq!(p.node.seal_answer(b"a", ""), Err(SealError::EmptyBinding));
    }

    #[test]
    fn malformed_payloads_are_refused_as_malformed_before_any_other_check() {
        let f = federation();
        let p = pair(&f, "court");
        let other = pair(&f, "court");
        let bnd = nonce();
        let jwe = p.session.seal_query(b"q", &bnd).unwrap();
        let raw_header = |text: &str| with_part(&jwe, 0, &b64e(text));
        let text = String::from_utf8(b64d(&parts(&jwe)[0])).unwrap();
        let member = |name: &str, value: Value| {
            reheader(&jwe, |h| {
                h.insert(name.into(), value);
            })
        };
        let mut cases: Vec<(&str, String)> = vec![
            ("empty", String::new()),
            ("four parts", parts(&jwe)[..4].join(".")),
            ("six parts", format!("{jwe}.")),
            ("header not base64url", with_part(&jwe, 0, "e30+")),
            (
                "header padded",
                with_part(&jwe, 0, &format!("{}=", parts(&jwe)[0])),
            ),
            ("header not JSON", raw_header("not json")),
            ("header a JSON array", raw_header("[]")),
            ("unknown member", member("zip", "DEF".into())),
            ("member of the wrong type", member("kid", json!(7))),
            ("alg", member("alg", "A256KW".into())),
            ("enc", member("enc", "A128GCM".into())),
            ("encrypted key", with_part(&jwe, 1, &b64e([0u8; 32]))),
            ("IV of 8 bytes", with_part(&jwe, 2, &b64e([0u8; 8]))),
            ("IV of 16 bytes", with_part(&jwe, 2, &b64e([0u8; 16]))),
            ("IV not base64url", with_part(&jwe, 2, "!!!!!!!!!!!!!!!!")),
            ("ciphertext not base64url", with_part(&jwe, 3, "*")),
            ("tag of 15 bytes", with_part(&jwe, 4, &b64e([0u8; 15]))),
            (
                "repeated member",
                raw_header(&text.replacen('{', &format!(r#"{{"kid":"{}","#, p.session.sid), 1)),
            ),
        ];
        for name in ["alg", "enc", "typ", "kid", "aud", "bnd"] {
            cases.push((
                name,
                reheader(&jwe, |h| {
                    h.remove(name);
                }),
            ));
        }
        let sid = p.session.sid.as_str();
        for (what, altered) in &cases {
            assert_ne!(altered, &jwe, "{what}");
            let got = p.node.open_query(altered, &bnd);
            assert_eq!(got.as_ref().err(), Some(&SealRefusal::Malformed), "{what}");
            refused(got, SealRefusal::Malformed, altered, &[sid, &bnd]);
            // The shape is checked first: at another session, with another binding, it
            // is still malformed.
            assert_eq!(
                other.node.open_query(altered, "another binding").err(),
                Some(SealRefusal::Malformed),
                "{what}"
            );
            assert_eq!(
                p.session.open_answer(altered, &bnd).err(),
                Some(SealRefusal::Malformed),
                "{what}"
            );
        }
    }

    #[test]
    fn an_oversized_payload_is_refused_before_decoding_and_never_sealed() {
        let f = federation();
        let p = pair(&f, "court");
        let bnd = nonce();
        // Padding a real payload's ciphertext past the limit: too large, not malformed.
        let jwe = p.session.seal_query(b"q", &bnd).unwrap();
        let huge = with_part(&jwe, 3, &"A".repeat(MAX_SEALED_LEN));
        refused(
            p.node.open_query(&huge, &bnd),
            SealRefusal::TooLarge,
            &huge,
            &[&bnd],
        );
        refused(
            p.session.open_answer(&huge, &bnd),
            SealRefusal::TooLarge,
            &huge,
            &[&bnd],
        );
        // Sealing stops exactly at the limit: the largest plaintext that fits seals to at
        // most MAX_SEALED_LEN characters and opens; one byte more is refused.
        let overhead = p.session.seal_query(b"", &bnd).unwrap().len();
        let mut n = (MAX_SEALED_LEN - overhead) / 4 * 3;
        let mut plaintext = vec![0x5a; n];
        let fits = p.session.seal_query(&plaintext, &bnd).unwrap();
        assert!(fits.len() <= MAX_SEALED_LEN);
        let last = loop {
            n += 1;
            plaintext.push(0x5a);
            match p.session.seal_query(&plaintext, &bnd) {
                Ok(jwe) => assert!(jwe.len() <= MAX_SEALED_LEN),
                Err(e) => break e,
            }
        };
        assert_eq!(last, SealError::TooLarge);
        assert!(overhead + b64_len(n) > MAX_SEALED_LEN);
        assert!(overhead + b64_len(n - 1) <= MAX_SEALED_LEN);
        assert_eq!(
            p.node
                .open_query(
                    &p.session.seal_query(&plaintext[..n - 1], &bnd).unwrap(),
                    &bnd
                )
                .unwrap()
                .len(),
            n - 1
        );
        assert_eq!(
            p.node.seal_answer(&plaintext, &bnd),
            Err(SealError::TooLarge)
        );
    }

    #[test]
    fn a_coordinator_holding_both_tokens_but_no_private_key_cannot_open_or_forge() {
        let f = federation();
        let p = pair(&f, "court");
        let bnd = nonce();
        let query = p.session.seal_query(SUBJECT.as_bytes(), &bnd).unwrap();
        let answer = p.node.seal_answer(b"listed: no", &bnd).unwrap();
        // What the coordinator forwarded: the grant and the accept, both readable.
        let payload = |token: &str| b64d(token.split('.').nth(1).unwrap());
        let grant: SessionGrant = serde_json::from_slice(&payload(&p.grant)).unwrap();
        let accept: SessionAccept = serde_json::from_slice(&payload(&p.accept)).unwrap();
        let node_epk = b64d(&accept.epk);
        let requester_epk = b64d(&grant.epk);
        // Its best try: an X25519 key of its own against either public key, then the same
        // derivation (same salt, same info) both ends use.
        for peer in [&node_epk, &requester_epk] {
            let own = EphemeralPrivateKey::generate(&X25519, &SystemRandom::new()).unwrap();
            let keys =
                agreement::agree_ephemeral(own, &UnparsedPublicKey::new(&X25519, peer), |z| {
                    SessionKeys::derive(z, &p.grant, &node_epk)
                })
                .unwrap()
                .unwrap();
            assert_ne!(keys.seal_query_key(), p.session.keys.seal_query_key());
            assert_ne!(keys.seal_answer_key(), p.session.keys.seal_answer_key());
            let rogue = Session {
                fed: accept.fed.clone(),
                sid: accept.sid.clone(),
                node: accept.node.clone(),
                exp: accept.exp,
                keys,
                node_public_key: Vec::new(),
            };
            let quoted = [accept.sid.as_str(), bnd.as_str()];
            // It cannot open the node's answer…
            refused(
                rogue.open_answer(&answer, &bnd),
                SealRefusal::Tampered,
                &answer,
                &quoted,
            );
            // …nor the requester's query,
            refused(
                open(
                    rogue.keys.seal_query_key(),
                    QUERY_TYP,
                    &accept.sid,
                    &accept.node,
                    &bnd,
                    &query,
                ),
                SealRefusal::Tampered,
                &query,
                &quoted,
            );
            // nor make a query the node opens or an answer the requester opens.
            let forged = rogue.seal_query(b"110101199003074514", &bnd).unwrap();
            refused(
                p.node.open_query(&forged, &bnd),
                SealRefusal::Tampered,
                &forged,
                &quoted,
            );
            let forged = seal(
                rogue.keys.seal_answer_key(),
                ANSWER_TYP,
                &accept.sid,
                &accept.node,
                &bnd,
                b"forged",
            )
            .unwrap();
            refused(
                p.session.open_answer(&forged, &bnd),
                SealRefusal::Tampered,
                &forged,
                &quoted,
            );
        }
        // The two ends still can.
        assert_eq!(
            p.node.open_query(&query, &bnd).unwrap().as_slice(),
            SUBJECT.as_bytes()
        );
        assert_eq!(
            p.session.open_answer(&answer, &bnd).unwrap().as_slice(),
            b"listed: no"
        );
    }

    #[test]
    fn sealed_sha256_is_the_base64url_sha256_of_the_compact_text() {
        let f = federation();
        let p = pair(&f, "court");
        let jwe = p.session.seal_query(b"q", &nonce()).unwrap();
        let digest = ring::digest::digest(&ring::digest::SHA256, jwe.as_bytes());
        assert_eq!(sealed_sha256(&jwe), b64e(digest));
        assert_eq!(sealed_sha256(&jwe).len(), 43);
        // One changed character changes it.
        assert_ne!(sealed_sha256(&flip(&jwe, 3)), sealed_sha256(&jwe));
    }

    #[test]
    fn refusal_codes_are_stable_distinct_kebab_case_names() {
        let all = [
            (SealRefusal::TooLarge, "too-large"),
            (SealRefusal::Malformed, "malformed"),
            (SealRefusal::WrongType, "wrong-type"),
            (SealRefusal::WrongSession, "wrong-session"),
            (SealRefusal::Misdirected, "misdirected"),
            (SealRefusal::Moved, "moved"),
            (SealRefusal::Tampered, "tampered"),
        ];
        let mut seen = std::collections::HashSet::new();
        for (refusal, code) in all {
            assert_eq!(refusal.code(), code);
            assert!(seen.insert(code));
            assert!(code.chars().all(|c| c.is_ascii_lowercase() || c == '-'));
        }
    }

    #[test]
    fn b64_len_is_the_unpadded_base64url_length() {
        for n in 0..64 {
            assert_eq!(b64_len(n), b64e(vec![0u8; n]).len(), "{n}");
        }
    }
}
