//! The SLAM data directory: where keys (and later the store and master key) live.
//!
//! The directory itself is created by the installer (or by hand for standalone use),
//! not by us: silently creating `/var/lib/speediful/slam` because of a typo in
//! `--data-dir` would scatter private keys where nobody looks for them.

use std::io;
use std::path::{Path, PathBuf};

/// Problems with the data directory.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// The path does not exist.
    #[error("the SLAM data directory does not exist: {}", path.display())]
    Missing {
        /// The path given or defaulted.
        path: PathBuf,
    },
    /// The path exists but is not a directory.
    #[error("the SLAM data directory is not a directory: {}", path.display())]
    NotADirectory {
        /// The path given or defaulted.
        path: PathBuf,
    },
    /// The path could not be inspected or a subdirectory could not be created.
    #[error("the SLAM data directory cannot be used: {}", path.display())]
    Unusable {
        /// The directory involved.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
}

/// An existing, absolute data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Where SLAM keeps its data when neither `--data-dir` nor `SLAM_DATA_DIR` says
    /// otherwise: `%ProgramData%\Speediful\SLAM` on Windows (the spec's
    /// `C:\ProgramData\Speediful\SLAM`), `/var/lib/speediful/slam` elsewhere.
    pub fn default_path() -> PathBuf {
        #[cfg(windows)]
        {
            let program_data =
                std::env::var_os("ProgramData").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"));
            program_data.join("Speediful").join("SLAM")
        }
        #[cfg(not(windows))]
        {
            PathBuf::from("/var/lib/speediful/slam")
        }
    }

    /// Opens an existing data directory. Relative paths are made absolute so every
    /// path we print is one a DBA can paste.
    pub fn open(path: &Path) -> Result<Self, DataDirError> {
        let root =
            std::path::absolute(path).map_err(|source| DataDirError::Unusable { path: path.to_path_buf(), source })?;
        match std::fs::metadata(&root) {
            Ok(meta) if meta.is_dir() => Ok(Self { root }),
            Ok(_) => Err(DataDirError::NotADirectory { path: root }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(DataDirError::Missing { path: root }),
            // A component that is a file reports NotADirectory on Unix.
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => Err(DataDirError::NotADirectory { path: root }),
            Err(source) => Err(DataDirError::Unusable { path: root, source }),
        }
    }

    /// The directory's absolute path.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// `DATA_DIR/keys`, where the key vault lives.
    pub fn keys_dir(&self) -> PathBuf {
        self.root.join("keys")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_file_paths_are_told_apart() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("nope");
        assert!(matches!(DataDir::open(&missing), Err(DataDirError::Missing { .. })));

        let file = tmp.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(matches!(DataDir::open(&file), Err(DataDirError::NotADirectory { .. })));
        assert!(matches!(
            DataDir::open(&file.join("below")),
            Err(DataDirError::NotADirectory { .. } | DataDirError::Missing { .. })
        ));

        let ok = DataDir::open(tmp.path()).unwrap();
        assert!(ok.path().is_absolute());
        assert_eq!(ok.keys_dir(), tmp.path().join("keys"));
    }
}
