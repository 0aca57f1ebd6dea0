//! Files that appear whole or not at all, with the right mode from the first byte, and
//! the modes of files and directories that hold personal data or keys.
//!
//! Modes are set explicitly (`fchmod`/`chmod` after creating), never left to the process
//! umask: a node started under `umask 000` creates its stores, audit logs and state
//! directories owner-only all the same. The umask itself is never changed (it is
//! process-wide and a library must not touch it).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of private key files: owner read/write only.
pub const KEY_MODE: u32 = 0o600;
/// Mode of public files (certificates, CRL, index).
pub const PUBLIC_MODE: u32 = 0o644;
/// Mode of files that hold personal data (stores, audit logs, their WAL and SHM files).
pub const PRIVATE_MODE: u32 = 0o600;
/// Mode of directories that hold personal data or process state.
pub const PRIVATE_DIR_MODE: u32 = 0o700;

/// Creates `dir` and any missing parents with mode 0700 (whatever the umask); an existing
/// directory is left as it is (its mode is the operator's choice).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        if !parent.as_os_str().is_empty() && !parent.is_dir() {
            create_private_dir(parent)?;
        }
    }
    match fs::DirBuilder::new().mode(PRIVATE_DIR_MODE).create(dir) {
        Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(PRIVATE_DIR_MODE)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Makes the SQLite database at `path` owner-only before SQLite opens it: creates it empty
/// with mode 0600 if it does not exist (and its missing parent directories 0700), and takes
/// group and other permissions away from it (and from its `-wal` and `-shm` files, if they
/// exist) if it does. SQLite creates `-wal` and `-shm` with the main file's permissions, so
/// they follow.
pub fn prepare_private_database(path: &Path) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() && !parent.exists() {
            create_private_dir(parent)?;
        }
    }
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_MODE)
        .open(path)
    {
        Ok(file) => file.set_permissions(fs::Permissions::from_mode(PRIVATE_MODE))?,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let mut companions = vec![path.to_path_buf()];
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        companions.push(PathBuf::from(name));
    }
    for file in companions {
        match fs::metadata(&file) {
            Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                let mode = m.permissions().mode() & 0o700;
                fs::set_permissions(&file, fs::Permissions::from_mode(mode))?;
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Why [`check_private_key`] refused a private key file.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Its metadata could not be read.
    #[error("cannot read `{}`: {source}", path.display())]
    Unreadable {
        /// The key file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Group or others may read or write it.
    #[error(
        "private key `{}` is accessible by others (mode {mode:04o}); a key must be owner-only: run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    Exposed {
        /// The key file.
        path: PathBuf,
        /// Its permission bits (`mode & 0o7777`).
        mode: u32,
    },
}

/// Refuses a private key file that group or others may read or write, as ssh does: the
/// one-line reason names the file, its mode and the fix.
pub fn check_private_key(path: &Path) -> Result<(), KeyFileError> {
    let mode = fs::metadata(path)
        .map_err(|source| KeyFileError::Unreadable {
            path: path.to_path_buf(),
            source,
        })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Exposed {
            path: path.to_path_buf(),
            mode: mode & 0o7777,
        });
    }
    Ok(())
}

/// A file written to a temporary name beside its destination, renamed into place by
/// [`StagedFile::commit`], and removed if dropped uncommitted.
#[derive(Debug)]
pub struct StagedFile {
    temp: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl StagedFile {
    /// Writes `bytes` to a new temporary file beside `dest`, created with `mode` (so a key
    /// is never readable by others, not even briefly), and flushes it to disk.
    pub fn write(dest: &Path, bytes: &[u8], mode: u32) -> io::Result<Self> {
        let dir = dest.parent().unwrap_or(Path::new("."));
        let file_name = dest.file_name().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "destination has no file name")
        })?;
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(file_name);
        // Random, not just the PID: a temp file left by a crash must not block the next
        // write (in a container the PID repeats after every restart).
        let mut nonce = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce)
            .map_err(|_| io::Error::other("no randomness for a temporary file name"))?;
        temp_name.push(format!(
            ".tmp-{}-{}",
            std::process::id(),
            u64::from_le_bytes(nonce)
        ));
        let temp = dir.join(temp_name);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)?;
        // The umask may have taken bits away (or a 0 umask left them): set exactly `mode`.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        let staged = Self {
            temp,
            dest: dest.to_owned(),
            committed: false,
        };
        file.write_all(bytes)?;
        file.sync_all()?;
        Ok(staged)
    }

    /// Renames the file into place.
    pub fn commit(mut self) -> io::Result<()> {
        fs::rename(&self.temp, &self.dest)?;
        self.committed = true;
        if let Some(dir) = self.dest.parent() {
            sync_dir(dir)?;
        }
        Ok(())
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// Takes an exclusive advisory lock on `<path>.lock` (made if missing; left in place, as
/// removing it would race with the next taker) and holds it until the file returned is
/// dropped: for read-modify-write of a file that several processes on this host (or on a
/// shared file system that honours `flock`) may change at once.
pub fn lock_beside(path: &Path) -> io::Result<std::fs::File> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::path::PathBuf::from(name))?;
    file.lock()?;
    Ok(file)
}

/// Writes `bytes` to `dest` atomically with `mode`.
pub fn write_atomic(dest: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    StagedFile::write(dest, bytes, mode)?.commit()
}

/// Flushes a directory entry so a rename survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)?.sync_all()
}

/// Which file a path named when a process opened it (device and inode), so a health
/// check can tell when the file was since removed, renamed away or replaced: a process
/// keeps reading and writing the file it opened, which is then no longer the one at the
/// path (an audit log whose entries vanish at exit, a store the next start cannot find).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileIdentity {
    dev: u64,
    ino: u64,
}

impl FileIdentity {
    /// The identity of the file at `path` now.
    pub fn of(path: &Path) -> io::Result<Self> {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::metadata(path)?;
        Ok(Self {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    /// Whether `path` still names this file; the error says what became of it, for an
    /// operator (`what` names the file's role, e.g. "the audit log").
    pub fn still_at(&self, path: &Path, what: &str) -> Result<(), FileMoved> {
        match Self::of(path) {
            Ok(now) if now == *self => Ok(()),
            Ok(_) => Err(FileMoved::Replaced {
                what: what.to_owned(),
                path: path.to_path_buf(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(FileMoved::Removed {
                what: what.to_owned(),
                path: path.to_path_buf(),
            }),
            Err(source) => Err(FileMoved::Unchecked {
                what: what.to_owned(),
                path: path.to_path_buf(),
                source,
            }),
        }
    }
}

/// What became of a file a process opened, from [`FileIdentity::still_at`]; the text
/// tells an operator what to do.
#[derive(Debug, thiserror::Error)]
pub enum FileMoved {
    /// Another file now has the path.
    #[error("{what} `{}` was replaced since this process opened it; put the original back or restart the process", path.display())]
    Replaced {
        /// The file's role ("the audit log").
        what: String,
        /// The path.
        path: PathBuf,
    },
    /// No file has the path.
    #[error("{what} `{}` was removed or renamed since this process opened it; put it back, or restore it from backup and restart the process", path.display())]
    Removed {
        /// The file's role.
        what: String,
        /// The path.
        path: PathBuf,
    },
    /// The path could not be looked at.
    #[error("{what} `{}` cannot be checked: {source}", path.display())]
    Unchecked {
        /// The file's role.
        what: String,
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_identity_notices_removal_and_replacement() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.db");
        fs::write(&path, b"a").unwrap();
        let id = FileIdentity::of(&path).unwrap();
        assert!(id.still_at(&path, "the log").is_ok());
        let aside = dir.path().join("aside.db");
        fs::rename(&path, &aside).unwrap();
        assert!(id
            .still_at(&path, "the log")
            .unwrap_err()
            .to_string()
            .contains("was removed or renamed"));
        fs::write(&path, b"b").unwrap();
        assert!(id
            .still_at(&path, "the log")
            .unwrap_err()
            .to_string()
            .contains("was replaced"));
        fs::rename(&aside, &path).unwrap();
        assert!(id.still_at(&path, "the log").is_ok());
    }

    #[test]
    fn key_files_are_created_private_and_whole() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a.key");
        write_atomic(&dest, b"secret", KEY_MODE).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"secret");
        let mode = fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn an_uncommitted_file_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a.crt");
        drop(StagedFile::write(&dest, b"x", PUBLIC_MODE).unwrap());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn private_dirs_and_databases_are_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("a/b/state");
        create_private_dir(&state).unwrap();
        assert_eq!(mode(&state), 0o700);
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        let db = state.join("x.db");
        prepare_private_database(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        // A database in a directory that does not exist yet: the directory is private too.
        let nested = dir.path().join("audit/court-audit.db");
        prepare_private_database(&nested).unwrap();
        assert_eq!(
            (mode(&dir.path().join("audit")), mode(&nested)),
            (0o700, 0o600)
        );
        // An existing database and WAL left readable by others are tightened.
        let wal = state.join("x.db-wal");
        fs::write(&wal, b"").unwrap();
        fs::set_permissions(&db, fs::Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(&wal, fs::Permissions::from_mode(0o666)).unwrap();
        prepare_private_database(&db).unwrap();
        assert_eq!((mode(&db), mode(&wal)), (0o600, 0o600));
    }

    #[test]
    fn a_key_others_can_read_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("n.key");
        write_atomic(&key, b"k", KEY_MODE).unwrap();
        check_private_key(&key).unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
        let why = check_private_key(&key).unwrap_err().to_string();
        assert!(
            why.contains("n.key") && why.contains("mode 0644") && why.contains("chmod 600"),
            "{why}"
        );
        fs::set_permissions(&key, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(check_private_key(&key).is_err());
    }
}
