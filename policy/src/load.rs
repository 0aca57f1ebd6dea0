//! Loading a policy file and the catalogue directory it names, for the processes that
//! enforce it (node, coordinator). Like [`crate::cli`], this reads files; the engine does
//! not.

use std::path::{Path, PathBuf};

use crate::catalogue::Catalogue;
use crate::engine::Engine;
use crate::policy::Policy;

/// Why a policy or catalogue could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file could not be read.
    #[error("cannot read `{path}`: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The policy or a catalogue has errors (each located at file:line:column).
    #[error("{0}")]
    Invalid(String),
}

/// Reads the policy at `path`, validates it against the catalogue directory it names
/// (`catalogue = "…"`, relative to the policy file) or `catalogue_dir`, and compiles it.
pub fn load_engine(path: &Path, catalogue_dir: Option<&Path>) -> Result<Engine, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| LoadError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let dir: PathBuf = match catalogue_dir {
        Some(d) => d.to_owned(),
        None => {
            let table: toml::Table = toml::from_str(&text)
                .map_err(|e| LoadError::Invalid(format!("{}: {e}", path.display())))?;
            let named = table
                .get("catalogue")
                .and_then(|v| v.as_str())
                .ok_or_else(|| {
                    LoadError::Invalid(format!(
                        "`{}` names no catalogue; add `catalogue = \"catalogue\"` (a directory relative to the policy file)",
                        path.display()
                    ))
                })?;
            path.parent().unwrap_or(Path::new(".")).join(named)
        }
    };
    let federation = crate::cli::load_federation(&dir)
        .map_err(|e| LoadError::Read {
            path: dir.display().to_string(),
            reason: e.to_string(),
        })?
        .map_err(|e| LoadError::Invalid(e.to_string()))?;
    let policy = Policy::parse(&text, &path.display().to_string(), &federation)
        .map_err(|e| LoadError::Invalid(e.to_string()))?;
    Ok(policy.compile())
}

/// Reads one department's catalogue file.
pub fn load_catalogue(path: &Path) -> Result<Catalogue, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| LoadError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    Catalogue::parse(&text, &path.display().to_string())
        .map_err(|e| LoadError::Invalid(e.to_string()))
}
