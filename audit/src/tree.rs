//! The audit log's Merkle tree on disk, beside its entries (issue 18).
//!
//! Leaf `i` is entry `seq = i + 1`: its leaf hash is [`merkle::leaf_hash`] of the entry's
//! 32-byte content hash (the `hash` column), so the tree commits to every entry's content
//! and order, and an entry body can later be shredded while its hash keeps the tree whole.
//! Interior nodes of complete subtrees (level ≥ 1) are stored in `merkle_nodes` in the
//! same transaction as the entries that finish them: a proof reads O(log² n) rows, and an
//! append writes one node row per entry on average.

use rusqlite::{params, Connection, OptionalExtension};

use crate::merkle::{self, Frontier, Hash, ProofError, Subtrees};

/// The table of interior nodes.
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS merkle_nodes (
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
    size INTEGER PRIMARY KEY,
    note TEXT NOT NULL
);
";

/// The leaf hash of the entry whose content hash is `entry_hash` (hex).
pub(crate) fn entry_leaf(entry_hash: &str) -> Option<Hash> {
    let bytes: [u8; 32] = hex::decode(entry_hash).ok()?.try_into().ok()?;
    Some(merkle::leaf_hash(&bytes))
}

/// The stored tree of one log, read through a connection.
pub(crate) struct StoredTree<'c> {
    pub(crate) conn: &'c Connection,
}

impl Subtrees for StoredTree<'_> {
    fn complete(&self, level: u32, index: u64) -> Result<Hash, ProofError> {
        let missing = ProofError::Missing {
            start: index << level,
            leaves: 1 << level,
        };
        let Ok(index_sql) = i64::try_from(index) else {
            return Err(missing);
        };
        if level == 0 {
            let hash: Option<String> = self
                .conn
                .query_row(
                    "SELECT hash FROM audit WHERE seq = ?1",
                    params![index_sql + 1],
                    |row| row.get(0),
                )
                .optional()
                .ok()
                .flatten();
            return hash.as_deref().and_then(entry_leaf).ok_or(missing);
        }
        let hash: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT hash FROM merkle_nodes WHERE level = ?1 AND idx = ?2",
                params![level, index_sql],
                |row| row.get(0),
            )
            .optional()
            .ok()
            .flatten();
        hash.and_then(|h| h.try_into().ok()).ok_or(missing)
    }
}

/// Stores the interior nodes an append finished.
pub(crate) fn store_finished(
    conn: &Connection,
    finished: &[(u32, u64, Hash)],
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT OR REPLACE INTO merkle_nodes (level, idx, hash) VALUES (?1, ?2, ?3)",
    )?;
    for (level, index, hash) in finished {
        stmt.execute(params![level, *index as i64, &hash[..]])?;
    }
    Ok(())
}

/// The frontier of a log of `size` entries, building the interior nodes it lacks first —
/// a log written before the tree existed gains its tree when it is opened (its entries'
/// hashes are read in order; nothing about them changes).
pub(crate) fn open_frontier(conn: &Connection, size: u64) -> Result<Frontier, TreeError> {
    let stored: u64 = conn
        .query_row(
            "SELECT COUNT(*) FROM merkle_nodes WHERE level = 1",
            [],
            |row| row.get::<_, i64>(0),
        )?
        .unsigned_abs();
    // Level-1 nodes number size / 2 once the tree is complete up to `size`.
    if stored != size / 2 {
        rebuild(conn, size)?;
    }
    Ok(Frontier::of(&StoredTree { conn }, size)?)
}

fn rebuild(conn: &Connection, size: u64) -> Result<(), TreeError> {
    conn.execute("DELETE FROM merkle_nodes", [])?;
    let mut frontier = Frontier::default();
    let mut stmt = conn.prepare("SELECT seq, hash FROM audit ORDER BY seq")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        let hash: String = row.get(1)?;
        if seq.unsigned_abs() != frontier.size() + 1 {
            return Err(TreeError::Gap {
                seq: frontier.size() + 1,
            });
        }
        let leaf = entry_leaf(&hash).ok_or(TreeError::Unreadable {
            seq: seq.unsigned_abs(),
        })?;
        store_finished(conn, &frontier.push(leaf))?;
    }
    if frontier.size() != size {
        return Err(TreeError::Gap {
            seq: frontier.size() + 1,
        });
    }
    Ok(())
}

/// Why the tree could not be built.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TreeError {
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
    #[error(transparent)]
    Proof(#[from] ProofError),
    #[error("entry {seq} is missing: the log's sequence has a gap")]
    Gap { seq: u64 },
    #[error("entry {seq} has no readable content hash")]
    Unreadable { seq: u64 },
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::merkle::MemoryTree;

    fn log_with(n: u64) -> (Connection, MemoryTree) {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE audit (seq INTEGER PRIMARY KEY, hash TEXT NOT NULL);")
            .unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        let mut memory = MemoryTree::default();
        for seq in 1..=n {
            let content = hex::encode(merkle::leaf_hash(&seq.to_be_bytes()));
            conn.execute(
                "INSERT INTO audit (seq, hash) VALUES (?1, ?2)",
                params![seq as i64, content],
            )
            .unwrap();
            memory.push(entry_leaf(&content).unwrap());
        }
        (conn, memory)
    }

    #[test]
    fn a_log_gains_its_tree_on_open_and_proofs_from_disk_match_the_memory_tree() {
        let (conn, memory) = log_with(37);
        let frontier = open_frontier(&conn, 37).unwrap();
        assert_eq!(frontier.root(), memory.root(37).unwrap());
        let stored = StoredTree { conn: &conn };
        for (m, n) in [(0, 37), (36, 37), (5, 17), (16, 32)] {
            assert_eq!(
                merkle::inclusion_proof(&stored, m, n).unwrap(),
                memory.inclusion_proof(m, n).unwrap()
            );
        }
        for (m, n) in [(1, 37), (13, 37), (32, 37), (7, 8)] {
            assert_eq!(
                merkle::consistency_proof(&stored, m, n).unwrap(),
                memory.consistency_proof(m, n).unwrap()
            );
        }
        // Opening again finds the tree complete and builds nothing.
        let nodes: i64 = conn
            .query_row("SELECT COUNT(*) FROM merkle_nodes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(open_frontier(&conn, 37).unwrap().root(), frontier.root());
        let again: i64 = conn
            .query_row("SELECT COUNT(*) FROM merkle_nodes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(nodes, again);
    }

    #[test]
    fn appends_store_the_nodes_they_finish() {
        let (conn, _) = log_with(0);
        let mut frontier = open_frontier(&conn, 0).unwrap();
        let mut memory = MemoryTree::default();
        for seq in 1..=21u64 {
            let content = hex::encode(merkle::leaf_hash(&seq.to_le_bytes()));
            conn.execute(
                "INSERT INTO audit (seq, hash) VALUES (?1, ?2)",
                params![seq as i64, content],
            )
            .unwrap();
            let leaf = entry_leaf(&content).unwrap();
            store_finished(&conn, &frontier.push(leaf)).unwrap();
            memory.push(leaf);
            assert_eq!(
                merkle::root(&StoredTree { conn: &conn }, seq).unwrap(),
                memory.root(seq).unwrap()
            );
        }
        assert_eq!(frontier.root(), memory.root(21).unwrap());
    }

    #[test]
    fn a_gap_in_the_sequence_is_named() {
        let (conn, _) = log_with(6);
        conn.execute("DELETE FROM audit WHERE seq = 4", []).unwrap();
        let err = open_frontier(&conn, 6).unwrap_err().to_string();
        assert!(err.contains("entry 4 is missing"), "{err}");
    }
}
