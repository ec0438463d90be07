//! Whether SLAM's files can be trusted: who owns them and who else may change them.
//!
//! Everything the worker reads at start or before a login decides where secrets go:
//! the data directory, `keys/` and the private keys in it, `master.key`, the store
//! and the configuration file (which names the allowed clients, a proxy, a CA and
//! DNS overrides). If another local account could plant or replace any of them, it
//! could make the worker hand it every secret. So the worker refuses to start while
//! one of them is owned by, or writable by, anyone but the worker's own account,
//! root / LocalSystem or Administrators, and `--check-config` lists each problem.
//!
//! Unix: the owner must be root or the worker's uid, and the mode must not let the
//! group or others write. Windows: the owner must be LocalSystem, Administrators or
//! the worker's account, and no ACE may grant any right that changes the file or
//! folder (write, append, delete, change the DACL or owner, create files inside) to
//! another account. The Windows rule is applied to the security descriptor in SDDL
//! form ([`windows_rule`]), so it is tested on every platform; reading the
//! descriptor is the only Windows-only part.

use std::path::{Path, PathBuf};

/// One file or folder that may not be trusted, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untrusted {
    /// The file or folder.
    pub path: PathBuf,
    /// What is wrong, in words a DBA can act on.
    pub problem: String,
}

impl std::fmt::Display for Untrusted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.problem)
    }
}

/// The paths under `data_dir` the worker relies on, those that exist: the
/// directory, `keys/` and every file in it, `master.key`, the SQLite store and its
/// journal files.
pub fn data_dir_paths(data_dir: &Path) -> Vec<PathBuf> {
    let mut paths = vec![data_dir.to_path_buf()];
    for name in ["master.key", "slam.db", "slam.db-wal", "slam.db-shm"] {
        paths.push(data_dir.join(name));
    }
    let keys = data_dir.join("keys");
    paths.push(keys.clone());
    if let Ok(entries) = std::fs::read_dir(&keys) {
        let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        paths.extend(files);
    }
    paths.retain(|p| std::fs::symlink_metadata(p).is_ok());
    paths
}

/// Checks each of `paths` (and, for the data directory's files, `data_dir_paths`)
/// and returns every problem found, empty when all may be trusted.
pub fn check(paths: &[PathBuf]) -> Vec<Untrusted> {
    // Who we are is asked once, not once per file.
    let own = platform::own_account();
    paths.iter().filter_map(|path| platform::check_one(path, &own).err()).collect()
}

#[cfg(unix)]
mod platform {
    use super::Untrusted;
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;

    /// The uid this process runs as: the uid that owns what it creates.
    pub(super) fn own_account() -> u32 {
        rustix::process::geteuid().as_raw()
    }

    pub(super) fn check_one(path: &Path, own_uid: &u32) -> Result<(), Untrusted> {
        let untrusted = |problem: String| Untrusted { path: path.to_path_buf(), problem };
        let meta = std::fs::symlink_metadata(path).map_err(|e| untrusted(format!("cannot be inspected: {e}")))?;
        if meta.file_type().is_symlink() {
            return Err(untrusted("is a symbolic link; SLAM's files must be the files themselves".into()));
        }
        super::unix_rule(meta.uid(), meta.mode(), *own_uid).map_err(untrusted)
    }
}

/// The Unix rule: owner root or `own_uid`, and no write bit for group or others.
pub fn unix_rule(owner: u32, mode: u32, own_uid: u32) -> Result<(), String> {
    if owner != 0 && owner != own_uid {
        return Err(format!(
            "is owned by uid {owner}; only root or the worker's account (uid {own_uid}) may own it (chown it)"
        ));
    }
    if mode & 0o022 != 0 {
        return Err(format!(
            "can be changed by {} (mode {:o}); remove that write permission (chmod go-w)",
            if mode & 0o002 != 0 { "every user" } else { "its group" },
            mode & 0o7777
        ));
    }
    Ok(())
}

#[cfg(windows)]
mod platform {
    use super::Untrusted;
    use std::path::Path;

    /// The SID this process runs as, or why it is unknown.
    pub(super) fn own_account() -> Result<String, String> {
        slam_windows::current_user_sid().map_err(|e| format!("our own account is unknown: {e}"))
    }

    pub(super) fn check_one(path: &Path, own: &Result<String, String>) -> Result<(), Untrusted> {
        let untrusted = |problem: String| Untrusted { path: path.to_path_buf(), problem };
        let own = own.as_ref().map_err(|e| untrusted(e.clone()))?;
        let sddl = slam_windows::describe_owner_and_dacl(path)
            .map_err(|e| untrusted(format!("its security descriptor cannot be read: {e}")))?;
        super::windows_rule(&sddl, own).map_err(untrusted)
    }
}

/// SIDs that may own or change SLAM's files besides the worker's own account:
/// LocalSystem, Administrators, and `CREATOR OWNER` (an inherit-only placeholder
/// that stands for whoever creates a file, i.e. one of the others).
const TRUSTED_SIDS: [&str; 3] = ["S-1-5-18", "S-1-5-32-544", "S-1-3-0"];

/// SDDL's names for the trusted well-known SIDs.
const TRUSTED_ALIASES: [&str; 3] = ["SY", "BA", "CO"];

/// Access bits that change a file or folder: generic all/write, `WRITE_OWNER`,
/// `WRITE_DAC`, `DELETE`, and the file rights write data / add file, append data /
/// add subdirectory, write extended attributes, delete child, write attributes.
const CHANGING_RIGHTS: u32 =
    0x1000_0000 | 0x4000_0000 | 0x0008_0000 | 0x0004_0000 | 0x0001_0000 | 0x2 | 0x4 | 0x10 | 0x40 | 0x100;

/// The Windows rule, over a security descriptor in SDDL (`O:...D:...`): the owner
/// must be trusted, and every allow ACE for another SID must grant only reading.
pub fn windows_rule(sddl: &str, own_sid: &str) -> Result<(), String> {
    let trusted = |sid: &str| sid == own_sid || TRUSTED_SIDS.contains(&sid) || TRUSTED_ALIASES.contains(&sid);
    // `O:owner` runs up to the next part (`G:`, `D:` or `S:`); SIDs hold `S-`, never `S:`.
    let owner = sddl
        .strip_prefix("O:")
        .map(|rest| {
            let end = ["G:", "D:", "S:"].iter().filter_map(|m| rest.find(m)).min().unwrap_or(rest.len());
            &rest[..end]
        })
        .ok_or_else(|| format!("its owner cannot be read from `{sddl}`"))?;
    if !trusted(owner) {
        return Err(format!(
            "is owned by {owner}; only SYSTEM, Administrators or the worker's account ({own_sid}) may own it"
        ));
    }
    let dacl = match sddl.find("D:") {
        Some(at) => &sddl[at + 2..],
        None => return Err("has no DACL (everyone may change it)".into()),
    };
    if dacl.starts_with("NO_ACCESS_CONTROL") {
        return Err("has a null DACL (everyone may change it)".into());
    }
    let dacl = dacl.find("S:").map_or(dacl, |end| &dacl[..end]);
    for ace in dacl.split('(').skip(1).map(|a| a.trim_end_matches(')')) {
        let fields: Vec<&str> = ace.split(';').collect();
        let [kind, _flags, rights, _object, _inherited_object, sid, ..] = fields[..] else {
            return Err(format!("has an ACE that cannot be read: ({ace})"));
        };
        if kind != "A" || trusted(sid) {
            continue;
        }
        let mask = access_mask(rights).ok_or_else(|| format!("has an ACE whose rights cannot be read: ({ace})"))?;
        if mask & CHANGING_RIGHTS != 0 {
            return Err(format!("can be changed by {sid} (ACE {ace}); remove that entry or reduce it to read access"));
        }
    }
    Ok(())
}

/// The access mask of an SDDL rights field: hex (`0x1200a9`) or two-letter codes.
fn access_mask(rights: &str) -> Option<u32> {
    if let Some(hex) = rights.strip_prefix("0x").or_else(|| rights.strip_prefix("0X")) {
        return u32::from_str_radix(hex, 16).ok();
    }
    let mut mask = 0u32;
    let bytes = rights.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    for code in bytes.chunks(2) {
        mask |= match code {
            b"GA" => 0x1000_0000,
            b"GX" => 0x2000_0000,
            b"GW" => 0x4000_0000,
            b"GR" => 0x8000_0000,
            b"FA" => 0x001F_01FF,
            b"FR" => 0x0012_0089,
            b"FW" => 0x0012_0116,
            b"FX" => 0x0012_00A0,
            b"SD" => 0x0001_0000,
            b"RC" => 0x0002_0000,
            b"WD" => 0x0004_0000,
            b"WO" => 0x0008_0000,
            b"CC" => 0x1,
            b"DC" => 0x2,
            b"LC" => 0x4,
            b"SW" => 0x8,
            b"RP" => 0x10,
            b"WP" => 0x20,
            b"DT" => 0x40,
            b"LO" => 0x80,
            b"CR" => 0x100,
            b"KA" => 0x000F_003F,
            b"KR" => 0x0002_0019,
            b"KW" => 0x0002_0006,
            b"KX" => 0x0002_0019,
            _ => return None,
        };
    }
    Some(mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "S-1-5-80-1890278089-1195093792-4224173795-1800513709-2646672063";

    #[test]
    fn the_unix_rule_admits_root_and_us_without_group_or_other_write() {
        assert_eq!(unix_rule(1000, 0o40700, 1000), Ok(()));
        assert_eq!(unix_rule(0, 0o100600, 1000), Ok(()));
        assert_eq!(unix_rule(0, 0o100644, 1000), Ok(()), "a certificate may be readable by all");
        let planted = unix_rule(1001, 0o100600, 1000).unwrap_err();
        assert!(planted.contains("owned by uid 1001") && planted.contains("chown"), "{planted}");
        let shared = unix_rule(1000, 0o40775, 1000).unwrap_err();
        assert!(shared.contains("its group") && shared.contains("775"), "{shared}");
        let open = unix_rule(1000, 0o41777, 1000).unwrap_err();
        assert!(open.contains("every user"), "{open}");
    }

    #[test]
    fn the_windows_rule_admits_the_private_descriptor_we_apply() {
        let ours = format!("O:{ME}G:SYD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;{ME})");
        assert_eq!(windows_rule(&ours, ME), Ok(()));
        assert_eq!(windows_rule("O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)", ME), Ok(()));
        // Reading is fine for anyone (a certificate, say).
        assert_eq!(windows_rule("O:SYD:(A;;FA;;;SY)(A;;0x1200a9;;;BU)(A;;FR;;;WD)", ME), Ok(()));
    }

    #[test]
    fn the_windows_rule_refuses_other_owners_and_writers() {
        let other = "S-1-5-21-1-2-3-1001";
        let owned = windows_rule(&format!("O:{other}D:P(A;;FA;;;SY)"), ME).unwrap_err();
        assert!(owned.contains(&format!("owned by {other}")), "{owned}");
        // ProgramData's inherited default: Users may create files and folders.
        let program_data = "O:SYD:(A;OICIID;FA;;;SY)(A;OICIID;FA;;;BA)(A;OICIID;0x1200a9;;;BU)(A;CIID;DCLCRPCR;;;BU)";
        let creators = windows_rule(program_data, ME).unwrap_err();
        assert!(creators.contains("changed by BU"), "{creators}");
        assert!(windows_rule("O:SYD:(A;;FW;;;AU)", ME).unwrap_err().contains("changed by AU"));
        assert!(windows_rule("O:SYD:(A;;WD;;;WD)", ME).is_err(), "changing the DACL is changing the file");
        assert!(windows_rule("O:SYD:(A;;GA;;;S-1-5-21-1-2-3-1001)", ME).is_err());
        assert!(windows_rule("O:SYD:NO_ACCESS_CONTROL", ME).is_err());
        assert!(windows_rule("O:SY", ME).unwrap_err().contains("no DACL"));
        // A deny ACE never widens access.
        assert_eq!(windows_rule("O:SYD:(D;;FA;;;WD)(A;;FA;;;SY)", ME), Ok(()));
    }

    #[test]
    fn unix_files_we_create_pass_and_planted_ones_fail() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let dir = tempfile::tempdir().unwrap();
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
            std::fs::write(dir.path().join("master.key"), b"k").unwrap();
            std::fs::set_permissions(dir.path().join("master.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
            std::fs::create_dir(dir.path().join("keys")).unwrap();
            assert_eq!(check(&data_dir_paths(dir.path())), Vec::new());

            let planted = dir.path().join("keys/evil.pem");
            std::fs::write(&planted, b"x").unwrap();
            std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o666)).unwrap();
            std::fs::set_permissions(dir.path().join("keys"), std::fs::Permissions::from_mode(0o777)).unwrap();
            let problems = check(&data_dir_paths(dir.path()));
            let paths: Vec<_> = problems.iter().map(|p| p.path.clone()).collect();
            assert_eq!(paths, vec![dir.path().join("keys"), planted], "{problems:?}");

            std::os::unix::fs::symlink("/etc/passwd", dir.path().join("slam.db")).unwrap();
            let problems = check(&data_dir_paths(dir.path()));
            assert!(problems.iter().any(|p| p.problem.contains("symbolic link")), "{problems:?}");
        }
    }
}
