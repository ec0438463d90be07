//! File-system primitives for secret material: private files and directories,
//! durable writes, and the per-name lock.
//!
//! The platform differences live here and only here. On Unix, private means mode
//! 0600 (files) and 0700 (directories) from the moment of creation, so there is no
//! window in which another user could open the file. On Windows, the private
//! directory gets a protected DACL (this account, SYSTEM, Administrators) that every
//! file created inside inherits at creation; see `slam_windows::restrict_to_owner`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Who may read a file we create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Visibility {
    /// Only the owner (private keys).
    Private,
    /// Anyone who can enter the directory (certificates are public by design).
    Public,
}

/// Creates `dir` private to the creating account, or accepts it as it is if it
/// exists. Permissions are set only at creation: re-applying them on every use would
/// hand the directory to whichever account ran SLAM last (a DBA running `slam`
/// would lock the service account out of its own keys).
pub(crate) fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(()),
        Err(e) => return Err(e),
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    #[cfg(windows)]
    slam_windows::restrict_to_owner(dir)?;
    Ok(())
}

/// Writes `contents` to a new file at `path`, with the requested visibility from
/// creation on, and flushes it to disk. A leftover at `path` is removed first and
/// the file is created fresh (`create_new`), so neither a stale file's permissions
/// nor a planted link can be inherited.
pub(crate) fn write_durably(path: &Path, contents: &[u8], visibility: Visibility) -> io::Result<()> {
    remove_if_exists(path)?;
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(match visibility {
            Visibility::Private => 0o600,
            Visibility::Public => 0o644,
        });
    }
    let mut file = options.open(path)?;
    // Windows: the file inherits the private folder's DACL at creation; a private
    // file also gets that DACL explicitly, protected from inheritance, so it stays
    // private even if the folder's ACL is later widened or the file is moved.
    #[cfg(windows)]
    if visibility == Visibility::Private {
        slam_windows::restrict_to_owner(path)?;
    }
    file.write_all(contents)?;
    file.sync_all()
}

/// Makes renames and removals inside `dir` durable. A no-op where directories cannot
/// be opened as files (Windows, where NTFS journals the metadata itself).
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Removes `path`; a file that is already gone is not an error.
pub(crate) fn remove_if_exists(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// An exclusive advisory lock on a lock file, released on drop (and by the OS if
/// the process dies, so a crash never leaves a name locked forever).
#[derive(Debug)]
pub(crate) struct FileLock {
    _file: File,
}

/// How long SLAM waits for another process working on the same keypair or master
/// key. Generating a keypair takes well under a second; anything longer is a stuck
/// process, and the caller (possibly SQL Server's thread behind the XP) must get an
/// answer rather than wait forever.
pub(crate) const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

impl FileLock {
    /// Waits up to `wait` for the lock at `path` (creating the file); `TimedOut`
    /// after that.
    pub(crate) fn acquire(path: &Path, wait: std::time::Duration) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        let deadline = std::time::Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Self { _file: file }),
                Err(fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(25));
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("another SLAM process has held it for over {} seconds", wait.as_secs()),
                    ));
                }
                Err(fs::TryLockError::Error(e)) => return Err(e),
            }
        }
    }
}
