//! Private set-intersection cardinality for cross-department counts (issue 20 §2:
//! "persons listed by both the court and tax"), over Ristretto255: each department raises
//! the hashes of its persons' resident IDs to a secret scalar of its own, drawn for this
//! query and dropped after it. With A's set X and B's set Y:
//!
//! 1. A sends `{H(x)^a}` (shuffled, padded with random points), signed by A;
//! 2. B sends back `{H(x)^ab}` (shuffled) and `{H(y)^b}` (shuffled, padded), signed by B;
//! 3. A raises B's set to `a` and counts the common points: |X ∩ Y| — exactly, before it
//!    adds the noise, so the counting department is trusted with that count (as every
//!    department is trusted with its own answers); the shuffles hide which of A's
//!    persons matched; B learns A's set size rounded up to [`PAD_TO`], and the
//!    coordinator both sizes so rounded (a coarse size, not noised); the coordinator, which relays every message, holds
//!    neither scalar, so it can neither test a person against a set nor join two sets, and
//!    the signatures keep it from handing B a set A did not send (which B would raise to
//!    `b` for it). A then adds the noise and releases the count.
//!
//! The hash takes a salt A draws for the query, so no point outlives it as a join key.
//! Plain functions over data; randomness comes from ring's `SystemRandom`.

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

/// Sets are padded with random points to a multiple of this, so their sizes say little.
pub const PAD_TO: usize = 256;

/// The most points a set may hold (a department's persons in a dataset, padded).
pub const MAX_POINTS: usize = 1 << 20;

/// The JWS type of a signed point set.
pub const SET_TYP: &str = "fedq-psi-set+jwt";

/// Why a PSI step failed. Never quotes a point or an ID.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PsiError {
    /// No randomness.
    #[error("the system's random number generator failed")]
    Random,
    /// A point is not a valid Ristretto255 encoding.
    #[error("a point of the set is not a Ristretto255 point")]
    BadPoint,
    /// A set is too large.
    #[error("a set holds more than {MAX_POINTS} points")]
    TooLarge,
}

/// A department's secret exponent for one query (zeroized on drop).
pub struct Blinder(Scalar);

impl Drop for Blinder {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for Blinder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Blinder(..)")
    }
}

fn random_bytes<const N: usize>() -> Result<[u8; N], PsiError> {
    let mut b = [0u8; N];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| PsiError::Random)?;
    Ok(b)
}

/// A fresh salt for a query's hash (hex).
pub fn fresh_salt() -> Result<String, PsiError> {
    let b: [u8; 16] = random_bytes()?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// H(salt, id): SHA-512 of a domain tag, the salt and the ID, mapped to the group.
pub fn hash_to_point(salt: &str, id: &str) -> RistrettoPoint {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA512);
    ctx.update(b"fedq-psi-ca/1\0");
    ctx.update(salt.as_bytes());
    ctx.update(b"\0");
    ctx.update(id.as_bytes());
    let digest = ctx.finish();
    let mut wide = [0u8; 64];
    wide.copy_from_slice(digest.as_ref());
    RistrettoPoint::from_uniform_bytes(&wide)
}

fn shuffle(points: &mut [[u8; 32]]) -> Result<(), PsiError> {
    // Fisher–Yates with rejection-sampled indices.
    for i in (1..points.len()).rev() {
        let n = (i + 1) as u64;
        let zone = u64::MAX - (u64::MAX % n);
        let j = loop {
            let v = u64::from_le_bytes(random_bytes()?);
            if v < zone {
                break (v % n) as usize;
            }
        };
        points.swap(i, j);
    }
    Ok(())
}

fn random_point() -> Result<[u8; 32], PsiError> {
    let wide: [u8; 64] = random_bytes()?;
    Ok(RistrettoPoint::from_uniform_bytes(&wide)
        .compress()
        .to_bytes())
}

fn pad(points: &mut Vec<[u8; 32]>) -> Result<(), PsiError> {
    let target = points.len().div_ceil(PAD_TO).max(1) * PAD_TO;
    while points.len() < target {
        points.push(random_point()?);
    }
    Ok(())
}

impl Blinder {
    /// A fresh secret exponent.
    pub fn new() -> Result<Self, PsiError> {
        let wide: [u8; 64] = random_bytes()?;
        Ok(Self(Scalar::from_bytes_mod_order_wide(&wide)))
    }

    /// `{H(salt, id)^k}` for `ids`, padded and shuffled.
    pub fn blind<'a>(
        &self,
        salt: &str,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<Vec<[u8; 32]>, PsiError> {
        let mut out: Vec<[u8; 32]> = ids
            .into_iter()
            .map(|id| (hash_to_point(salt, id) * self.0).compress().to_bytes())
            .collect();
        if out.len() > MAX_POINTS {
            return Err(PsiError::TooLarge);
        }
        pad(&mut out)?;
        shuffle(&mut out)?;
        Ok(out)
    }

    /// `{P^k}` for another department's points, shuffled.
    pub fn raise(&self, points: &[[u8; 32]]) -> Result<Vec<[u8; 32]>, PsiError> {
        if points.len() > MAX_POINTS {
            return Err(PsiError::TooLarge);
        }
        let mut out = points
            .iter()
            .map(|p| {
                CompressedRistretto(*p)
                    .decompress()
                    .map(|p| (p * self.0).compress().to_bytes())
                    .ok_or(PsiError::BadPoint)
            })
            .collect::<Result<Vec<_>, _>>()?;
        shuffle(&mut out)?;
        Ok(out)
    }
}

/// How many points the two sets have in common.
pub fn common(a: &[[u8; 32]], b: &[[u8; 32]]) -> u64 {
    let set: std::collections::HashSet<&[u8; 32]> = a.iter().collect();
    b.iter().filter(|p| set.contains(p)).count() as u64
}

/// What a department signs of a point set it sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetClaims {
    /// The department.
    pub node: String,
    /// `blinded` (A's first set), `raised` (A's set raised by B) or `own` (B's set).
    pub kind: String,
    /// The query's salt (A's).
    pub salt: String,
    /// How many points.
    pub count: u64,
    /// SHA-256 (hex) of the points concatenated.
    pub sha256: String,
    /// The query the set is for: SHA-256 (hex) of its requester, purpose, legal basis and
    /// target, the same at both departments (their own query ids differ), so a set of one
    /// query cannot be fed into another.
    pub query: String,
    /// For a `raised` set, the SHA-256 of the set it raised (empty otherwise).
    pub input: String,
    /// When signed (unix seconds).
    pub iat: u64,
}

/// A point set with its department's signature (an ES256 JWS over [`SetClaims`], the
/// department's certificate in `x5c`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedSet {
    /// The points (compressed Ristretto255).
    pub points: Vec<[u8; 32]>,
    /// The JWS.
    pub signature: String,
}

/// SHA-256 (hex) of the points concatenated.
pub fn points_digest(points: &[[u8; 32]]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in points {
        ctx.update(p);
    }
    ctx.finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_protocol_counts_the_common_persons_and_only_that() {
        let salt = fresh_salt().unwrap();
        let court: Vec<String> = (0..300).map(|i| format!("4301021990{i:08}")).collect();
        let tax: Vec<String> = (200..700).map(|i| format!("4301021990{i:08}")).collect();
        let a = Blinder::new().unwrap();
        let b = Blinder::new().unwrap();
        let x_a = a.blind(&salt, court.iter().map(String::as_str)).unwrap();
        assert_eq!(x_a.len(), 512, "padded to a multiple of {PAD_TO}");
        let x_ab = b.raise(&x_a).unwrap();
        let y_b = b.blind(&salt, tax.iter().map(String::as_str)).unwrap();
        let y_ba = a.raise(&y_b).unwrap();
        assert_eq!(common(&x_ab, &y_ba), 100);
        // Without B's exponent, A's blinded set and B's own share nothing.
        assert_eq!(common(&x_a, &y_b), 0);
        // Another salt (another query): nothing in common with this one.
        let other = fresh_salt().unwrap();
        let x_other = a.blind(&other, court.iter().map(String::as_str)).unwrap();
        assert_eq!(common(&b.raise(&x_other).unwrap(), &y_ba), 0);
        // A point that is not one is refused.
        assert_eq!(b.raise(&[[0xff; 32]]), Err(PsiError::BadPoint));
    }
}
