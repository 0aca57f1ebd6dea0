//! Merkle trees in the shape of RFC 9162 §2.1 (Certificate Transparency v2): leaf and node
//! hashing with domain separation, the tree hash of a list, inclusion proofs and
//! consistency proofs, and their verification.
//!
//! Plain functions over data. A proof is computed from a [`Subtrees`] source that answers
//! the hash of any *complete* aligned subtree (`2^level` leaves starting at
//! `index * 2^level`); the audit log keeps those hashes on disk, [`MemoryTree`] keeps them
//! in memory. Verification needs only the proof, the sizes and the hashes.
//!
//! ```
//! use fedq_audit::merkle::{leaf_hash, verify_consistency, verify_inclusion, MemoryTree};
//! let mut tree = MemoryTree::default();
//! for entry in ["a", "b", "c", "d", "e"] {
//!     tree.push(leaf_hash(entry.as_bytes()));
//! }
//! let root = tree.root(5).unwrap();
//! let proof = tree.inclusion_proof(2, 5).unwrap();
//! assert!(verify_inclusion(&leaf_hash(b"c"), 2, 5, &proof, &root).is_ok());
//! let older = tree.root(3).unwrap();
//! let consistency = tree.consistency_proof(3, 5).unwrap();
//! assert!(verify_consistency(3, 5, &older, &root, &consistency).is_ok());
//! ```

use ring::digest;

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The hash of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    sha256(&[&[]])
}

/// `SHA-256(0x00 || data)`: the hash of one leaf.
pub fn leaf_hash(data: &[u8]) -> Hash {
    sha256(&[&[0x00], data])
}

/// `SHA-256(0x01 || left || right)`: the hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    sha256(&[&[0x01], left, right])
}

fn sha256(parts: &[&[u8]]) -> Hash {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in parts {
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Why a proof could not be made or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The sizes asked for do not describe a proof (an index past the tree, a first tree
    /// larger than the second, an empty tree).
    #[error("no such proof: {0}")]
    Range(&'static str),
    /// The source has no hash for a subtree the proof needs (the log is shorter than the
    /// tree asked about, or its storage lost a node).
    #[error("the log holds no hash for {leaves} leaves from leaf {start}")]
    Missing {
        /// The first leaf of the subtree.
        start: u64,
        /// Its number of leaves.
        leaves: u64,
    },
    /// The proof has the wrong number of hashes for these sizes.
    #[error("the proof has the wrong number of hashes for these tree sizes")]
    Length,
    /// The proof computes a different root: the entry is not in that tree, or the trees
    /// are not one the prefix of the other.
    #[error("the proof does not lead to the expected root hash")]
    Mismatch,
}

/// The hashes of complete, aligned subtrees: `level` 0 is the leaves, and the subtree
/// `(level, index)` covers leaves `index·2^level .. (index+1)·2^level`.
pub trait Subtrees {
    /// The hash of that subtree, if every one of its leaves exists.
    fn complete(&self, level: u32, index: u64) -> Result<Hash, ProofError>;
}

/// The largest power of two strictly less than `n` (`n ≥ 2`).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// `MTH(D[start .. start+len])` for a range the RFC's recursion produces (each range of
/// `2^k` leaves or fewer starts at a multiple of `2^k`), built from complete subtrees.
pub fn range_hash(src: &impl Subtrees, start: u64, len: u64) -> Result<Hash, ProofError> {
    if len == 0 {
        return Ok(empty_root());
    }
    if len.is_power_of_two() && start.is_multiple_of(len) {
        return src.complete(len.trailing_zeros(), start / len);
    }
    if len == 1 {
        return src.complete(0, start);
    }
    let k = split(len);
    let left = range_hash(src, start, k)?;
    let right = range_hash(src, start + k, len - k)?;
    Ok(node_hash(&left, &right))
}

/// The root hash of the first `size` leaves.
pub fn root(src: &impl Subtrees, size: u64) -> Result<Hash, ProofError> {
    range_hash(src, 0, size)
}

/// The inclusion proof of leaf `index` in the tree of the first `size` leaves
/// (RFC 9162 §2.1.3.1), nearest the leaf first.
pub fn inclusion_proof(
    src: &impl Subtrees,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, ProofError> {
    if index >= size {
        return Err(ProofError::Range(
            "the leaf index is not below the tree size",
        ));
    }
    let mut path = Vec::new();
    path_of(src, index, 0, size, &mut path)?;
    Ok(path)
}

fn path_of(
    src: &impl Subtrees,
    m: u64,
    start: u64,
    n: u64,
    out: &mut Vec<Hash>,
) -> Result<(), ProofError> {
    if n <= 1 {
        return Ok(());
    }
    let k = split(n);
    if m < k {
        path_of(src, m, start, k, out)?;
        out.push(range_hash(src, start + k, n - k)?);
    } else {
        path_of(src, m - k, start + k, n - k, out)?;
        out.push(range_hash(src, start, k)?);
    }
    Ok(())
}

/// The consistency proof between the trees of the first `first` and the first `second`
/// leaves (RFC 9162 §2.1.4.1). Empty when the sizes are equal or `first` is 0.
pub fn consistency_proof(
    src: &impl Subtrees,
    first: u64,
    second: u64,
) -> Result<Vec<Hash>, ProofError> {
    if first > second {
        return Err(ProofError::Range(
            "the first tree is larger than the second",
        ));
    }
    let mut proof = Vec::new();
    if first == 0 || first == second {
        return Ok(proof);
    }
    subproof(src, first, 0, second, true, &mut proof)?;
    Ok(proof)
}

fn subproof(
    src: &impl Subtrees,
    m: u64,
    start: u64,
    n: u64,
    whole: bool,
    out: &mut Vec<Hash>,
) -> Result<(), ProofError> {
    if m == n {
        if !whole {
            out.push(range_hash(src, start, n)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(src, m, start, k, whole, out)?;
        out.push(range_hash(src, start + k, n - k)?);
    } else {
        subproof(src, m - k, start + k, n - k, false, out)?;
        out.push(range_hash(src, start, k)?);
    }
    Ok(())
}

/// Checks that `leaf` is leaf `index` of the tree of `size` leaves whose root is `root`
/// (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::Range(
            "the leaf index is not below the tree size",
        ));
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return Err(ProofError::Length);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::Length);
    }
    if &r != root {
        return Err(ProofError::Mismatch);
    }
    Ok(())
}

/// Checks that the tree of `first` leaves with root `first_root` is a prefix of the tree
/// of `second` leaves with root `second_root` (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if first > second {
        return Err(ProofError::Range(
            "the first tree is larger than the second",
        ));
    }
    if first == second {
        if !proof.is_empty() {
            return Err(ProofError::Length);
        }
        return if first_root == second_root {
            Ok(())
        } else {
            Err(ProofError::Mismatch)
        };
    }
    if first == 0 {
        // Every tree extends the empty one.
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::Length)
        };
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let Some((head, rest)) = path.split_first() else {
        return Err(ProofError::Length);
    };
    let (mut fn_, mut sn) = (first - 1, second - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*head, *head);
    for c in rest {
        if sn == 0 {
            return Err(ProofError::Length);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::Length);
    }
    if &fr != first_root || &sr != second_root {
        return Err(ProofError::Mismatch);
    }
    Ok(())
}

/// The right edge of a growing tree: the roots of its complete subtrees, largest first.
/// Appending a leaf yields the complete subtrees it finished (to be stored), and the root
/// is one fold over at most 64 hashes — so a log's root is known after every group
/// commit without reading anything back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// `(level, hash)` of each complete subtree on the right edge, largest first.
    edge: Vec<(u32, Hash)>,
}

impl Frontier {
    /// Rebuilds the frontier of a tree of `size` leaves from its stored subtrees.
    pub fn of(src: &impl Subtrees, size: u64) -> Result<Self, ProofError> {
        let mut edge = Vec::new();
        let mut start = 0u64;
        for level in (0..64u32).rev() {
            let leaves = 1u64 << level;
            if size & leaves != 0 {
                edge.push((level, src.complete(level, start / leaves)?));
                start += leaves;
            }
        }
        Ok(Self { size, edge })
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The complete subtrees on the right edge as `(level, index, hash)`, largest first.
    pub fn subtrees(&self) -> Vec<(u32, u64, Hash)> {
        let mut start = 0u64;
        self.edge
            .iter()
            .map(|&(level, hash)| {
                let index = start >> level;
                start += 1 << level;
                (level, index, hash)
            })
            .collect()
    }

    /// Appends a leaf; returns the complete subtrees of level ≥ 1 that it finished, as
    /// `(level, index, hash)`, smallest first.
    pub fn push(&mut self, leaf: Hash) -> Vec<(u32, u64, Hash)> {
        let mut finished = Vec::new();
        let mut level = 0u32;
        let mut hash = leaf;
        while let Some(&(top_level, top)) = self.edge.last() {
            if top_level != level {
                break;
            }
            self.edge.pop();
            hash = node_hash(&top, &hash);
            level += 1;
            finished.push((level, self.size >> level, hash));
        }
        self.edge.push((level, hash));
        self.size += 1;
        finished
    }

    /// The root hash of the tree so far.
    pub fn root(&self) -> Hash {
        let mut iter = self.edge.iter().rev();
        let Some(&(_, mut acc)) = iter.next() else {
            return empty_root();
        };
        for (_, hash) in iter {
            acc = node_hash(hash, &acc);
        }
        acc
    }
}

/// A tree held in memory: every complete subtree's hash, level by level. For tests,
/// tools and verifiers that rebuild a log they read whole.
#[derive(Debug, Clone, Default)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
    frontier: Frontier,
}

impl MemoryTree {
    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        if let Some(leaves) = self.levels.first_mut() {
            leaves.push(leaf);
        }
        for (level, _, hash) in self.frontier.push(leaf) {
            let level = level as usize;
            while self.levels.len() <= level {
                self.levels.push(Vec::new());
            }
            if let Some(row) = self.levels.get_mut(level) {
                row.push(hash);
            }
        }
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// The root of the first `size` leaves.
    pub fn root(&self, size: u64) -> Result<Hash, ProofError> {
        root(self, size)
    }

    /// See [`inclusion_proof`].
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        inclusion_proof(self, index, size)
    }

    /// See [`consistency_proof`].
    pub fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash>, ProofError> {
        consistency_proof(self, first, second)
    }
}

/// The subtrees one append group can prove from without reading the disk: the right edge
/// before the group, the group's leaves and every subtree the group finished. Every
/// inclusion proof of a leaf of the group in the tree after it needs only these: a
/// sibling left of a new leaf is either a subtree of the old edge or ends at a new leaf,
/// and then the group finished it.
#[derive(Debug, Default)]
pub struct GroupSubtrees {
    known: std::collections::HashMap<(u32, u64), Hash>,
}

impl GroupSubtrees {
    /// Starts from the frontier before the group.
    pub fn after(frontier: &Frontier) -> Self {
        let known = frontier
            .subtrees()
            .into_iter()
            .map(|(level, index, hash)| ((level, index), hash))
            .collect();
        Self { known }
    }

    /// Records a leaf of the group at `index` and the subtrees its append finished.
    pub fn add(&mut self, index: u64, leaf: Hash, finished: &[(u32, u64, Hash)]) {
        self.known.insert((0, index), leaf);
        for &(level, i, hash) in finished {
            self.known.insert((level, i), hash);
        }
    }
}

impl Subtrees for GroupSubtrees {
    fn complete(&self, level: u32, index: u64) -> Result<Hash, ProofError> {
        self.known
            .get(&(level, index))
            .copied()
            .ok_or(ProofError::Missing {
                start: index << level,
                leaves: 1 << level,
            })
    }
}

impl Subtrees for MemoryTree {
    fn complete(&self, level: u32, index: u64) -> Result<Hash, ProofError> {
        self.levels
            .get(level as usize)
            .and_then(|row| usize::try_from(index).ok().and_then(|i| row.get(i)))
            .copied()
            .ok_or(ProofError::Missing {
                start: index << level,
                leaves: 1 << level,
            })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// The leaves and roots of the RFC 6962 reference implementation's tests
    /// (certificate-transparency `merkle_tree_test`), which RFC 9162 keeps.
    const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    const ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn reference_tree() -> MemoryTree {
        let mut tree = MemoryTree::default();
        for leaf in LEAVES {
            tree.push(leaf_hash(&hex::decode(leaf).unwrap()));
        }
        tree
    }

    /// MTH straight from the RFC's definition, over the leaf hashes: an oracle that
    /// shares nothing with the subtree store.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    #[test]
    fn roots_match_the_reference_vectors() {
        let tree = reference_tree();
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        for (i, expected) in ROOTS.iter().enumerate() {
            let size = i as u64 + 1;
            assert_eq!(
                hex::encode(tree.root(size).unwrap()),
                *expected,
                "size {size}"
            );
        }
        let mut frontier = Frontier::default();
        for (i, leaf) in LEAVES.iter().enumerate() {
            frontier.push(leaf_hash(&hex::decode(leaf).unwrap()));
            assert_eq!(
                hex::encode(frontier.root()),
                ROOTS[i],
                "frontier at {}",
                i + 1
            );
        }
    }

    #[test]
    fn every_inclusion_and_consistency_proof_up_to_70_leaves_verifies_and_the_root_matches_the_definition(
    ) {
        let leaves: Vec<Hash> = (0..70u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut tree = MemoryTree::default();
        for leaf in &leaves {
            tree.push(*leaf);
        }
        for n in 1..=70u64 {
            let root = tree.root(n).unwrap();
            assert_eq!(root, mth(&leaves[..n as usize]), "root of {n}");
            assert_eq!(
                Frontier::of(&tree, n).unwrap().root(),
                root,
                "frontier of {n}"
            );
            for m in 0..n {
                let proof = tree.inclusion_proof(m, n).unwrap();
                verify_inclusion(&leaves[m as usize], m, n, &proof, &root).unwrap();
                // Another leaf, another index, or a proof one hash short: refused.
                let other = leaves[((m + 1) % n) as usize];
                if n > 1 {
                    assert!(verify_inclusion(&other, m, n, &proof, &root).is_err());
                    assert!(
                        verify_inclusion(&leaves[m as usize], (m + 1) % n, n, &proof, &root)
                            .is_err()
                    );
                    assert!(verify_inclusion(
                        &leaves[m as usize],
                        m,
                        n,
                        &proof[..proof.len() - 1],
                        &root
                    )
                    .is_err());
                }
            }
            for m in 0..=n {
                let first = tree.root(m).unwrap();
                let proof = tree.consistency_proof(m, n).unwrap();
                verify_consistency(m, n, &first, &root, &proof).unwrap();
                if m > 0 && m < n {
                    // A first tree that is not this log's prefix: refused.
                    let mut forked: Vec<Hash> = leaves[..m as usize].to_vec();
                    forked[(m - 1) as usize] = leaf_hash(b"rewritten");
                    assert_eq!(
                        verify_consistency(m, n, &mth(&forked), &root, &proof),
                        Err(ProofError::Mismatch),
                        "{m} → {n}"
                    );
                    let mut bad = proof.clone();
                    bad[0][0] ^= 1;
                    assert!(verify_consistency(m, n, &first, &root, &bad).is_err());
                }
            }
        }
    }

    #[test]
    fn a_group_proves_each_of_its_leaves_from_the_old_edge_and_what_it_finished() {
        let leaves: Vec<Hash> = (0..100u32).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        for (before, group) in [
            (0u64, 1u64),
            (0, 9),
            (1, 1),
            (5, 11),
            (8, 8),
            (13, 50),
            (64, 36),
        ] {
            let mut frontier = Frontier::default();
            for leaf in &leaves[..before as usize] {
                frontier.push(*leaf);
            }
            let mut known = GroupSubtrees::after(&frontier);
            for i in before..before + group {
                let finished = frontier.push(leaves[i as usize]);
                known.add(i, leaves[i as usize], &finished);
            }
            let size = before + group;
            let root = frontier.root();
            assert_eq!(root, mth(&leaves[..size as usize]));
            for i in before..size {
                let proof = inclusion_proof(&known, i, size).unwrap();
                verify_inclusion(&leaves[i as usize], i, size, &proof, &root).unwrap();
            }
        }
    }

    #[test]
    fn a_proof_past_the_stored_leaves_is_missing_not_invented() {
        let tree = reference_tree();
        assert!(matches!(
            tree.inclusion_proof(3, 9),
            Err(ProofError::Missing { .. })
        ));
        assert!(matches!(
            tree.inclusion_proof(8, 8),
            Err(ProofError::Range(_))
        ));
        assert!(matches!(
            tree.consistency_proof(5, 4),
            Err(ProofError::Range(_))
        ));
    }
}
