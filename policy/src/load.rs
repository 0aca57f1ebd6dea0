//! Reading catalogue and policy files, for the node, the coordinator and the officers'
//! tools: the only module of this crate that touches the file system; everything it
//! reads is handed to the pure parsers.

use std::path::{Path, PathBuf};

use crate::catalogue::{Catalogue, DuplicateDepartment, Federation};
use crate::engine::Engine;
use crate::location::LocatedErrors;
use crate::policy::Policy;

/// Why a catalogue or policy could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file or directory could not be read.
    #[error("cannot read `{path}`: {source}; check the path and its permissions")]
    Read {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not valid: every problem, located.
    #[error("{0}")]
    Invalid(LocatedErrors),
    /// The policy does not say where its catalogue is, and none was given.
    #[error("`{file}` names no catalogue; add `catalogue = \"catalogue\"` (a directory relative to the policy file) or pass the catalogue directory explicitly")]
    NoCatalogue {
        /// The policy file.
        file: PathBuf,
    },
    /// The catalogue directory holds no catalogue.
    #[error("catalogue directory `{dir}` has no `*.toml` catalogues; put one `<department>.toml` per department there")]
    EmptyCatalogue {
        /// The directory.
        dir: PathBuf,
    },
    /// Two catalogues for one department.
    #[error(transparent)]
    DuplicateDepartment(#[from] DuplicateDepartment),
}

impl LoadError {
    /// The located errors, when the problem is the content of a file.
    pub fn located(&self) -> Option<&LocatedErrors> {
        match self {
            LoadError::Invalid(e) => Some(e),
            _ => None,
        }
    }
}

fn read(path: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads and validates one department's catalogue file.
pub fn load_catalogue(path: &Path) -> Result<Catalogue, LoadError> {
    let text = read(path)?;
    Catalogue::parse(&text, &path.display().to_string()).map_err(LoadError::Invalid)
}

/// Reads every `*.toml` in `dir` as one department's catalogue. Problems in all files
/// are reported together.
pub fn load_federation(dir: &Path) -> Result<Federation, LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|source| LoadError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(LoadError::EmptyCatalogue {
            dir: dir.to_path_buf(),
        });
    }
    let mut catalogues = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        match load_catalogue(&p) {
            Ok(c) => catalogues.push(c),
            Err(LoadError::Invalid(e)) => errors.extend(e.0),
            Err(other) => return Err(other),
        }
    }
    if !errors.is_empty() {
        return Err(LoadError::Invalid(LocatedErrors(errors)));
    }
    Ok(Federation::new(catalogues)?)
}

/// The `catalogue = "…"` setting, read before the policy can be validated.
fn catalogue_dir_named(text: &str) -> Option<String> {
    let table: toml::Table = toml::from_str(text).ok()?;
    table.get("catalogue")?.as_str().map(str::to_owned)
}

/// The catalogue directory of a policy whose text is `text` and whose file is (or would be)
/// `file`: the `catalogue = "…"` it names, relative to the file's directory.
pub fn catalogue_dir_of(file: &Path, text: &str) -> Result<PathBuf, LoadError> {
    let named = catalogue_dir_named(text).ok_or_else(|| LoadError::NoCatalogue {
        file: file.to_path_buf(),
    })?;
    Ok(file.parent().unwrap_or(Path::new(".")).join(named))
}

/// Validates policy text (read from `source`, for error locations) against the catalogues
/// in `catalogue_dir`.
pub fn parse_policy(text: &str, source: &str, catalogue_dir: &Path) -> Result<Policy, LoadError> {
    let federation = load_federation(catalogue_dir)?;
    Policy::parse(text, source, &federation).map_err(LoadError::Invalid)
}

/// Reads a policy and validates it against its catalogue directory: `catalogue_dir`,
/// or else the `catalogue = "…"` the policy names, relative to the policy file.
pub fn load_policy(file: &Path, catalogue_dir: Option<&Path>) -> Result<Policy, LoadError> {
    let text = read(file)?;
    let dir = match catalogue_dir {
        Some(d) => d.to_path_buf(),
        None => catalogue_dir_of(file, &text)?,
    };
    parse_policy(&text, &file.display().to_string(), &dir)
}

/// [`load_policy`], compiled.
pub fn load_engine(file: &Path, catalogue_dir: Option<&Path>) -> Result<Engine, LoadError> {
    Ok(load_policy(file, catalogue_dir)?.compile())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../reference/changsha")
    }

    #[test]
    fn loads_the_reference_policy_through_its_catalogue_setting() {
        let engine = load_engine(&reference().join("policy.toml"), None).unwrap();
        assert_eq!(engine.datasets().len(), 17);
        let court = load_catalogue(&reference().join("catalogue/court.toml")).unwrap();
        assert_eq!(court.department, "court");
    }

    #[test]
    fn missing_files_say_which_path() {
        let err = load_engine(&reference().join("nope.toml"), None).unwrap_err();
        assert!(err.to_string().starts_with("cannot read `"), "{err}");
        assert!(err.to_string().contains("nope.toml"), "{err}");
        assert!(err.located().is_none());
    }
}
