//! Never built: only its lockfile is checked.
