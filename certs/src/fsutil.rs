//! Files that appear whole or not at all, with the right mode from the first byte.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Mode of private key files: owner read/write only.
pub const KEY_MODE: u32 = 0o600;
/// Mode of public files (certificates, CRL, index).
pub const PUBLIC_MODE: u32 = 0o644;

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

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
}
