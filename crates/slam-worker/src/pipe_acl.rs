//! Who may open the worker's Windows named pipe, as a DACL in SDDL. Pure logic,
//! so it is tested on every platform; `pipe` applies it on Windows.
//!
//! LocalSystem, Administrators and the worker's own account get full access; each
//! allowed client (by default the SQL Server service, `NT SERVICE\MSSQLSERVER`)
//! gets only read/write data ([`CLIENT_ACCESS`]), and nobody else anything. The
//! DACL is protected (`P`), so nothing is inherited.

use sha1::{Digest, Sha1};
use slam_protocol::{ErrorCode, SlamError};

/// Rights granted to allowed clients (read and write data, no pipe creation).
pub use slam_protocol::PIPE_CLIENT_ACCESS as CLIENT_ACCESS;

/// The SID Windows gives a service's virtual account `NT SERVICE\NAME`:
/// `S-1-5-80-` and the SHA-1 of the upper-cased name in UTF-16LE, as five
/// little-endian 32-bit numbers. Computed rather than looked up, so it works
/// before the service exists (and under Wine, which does not know SQL Server).
pub fn service_sid(service_name: &str) -> String {
    let utf16: Vec<u8> = service_name.to_uppercase().encode_utf16().flat_map(u16::to_le_bytes).collect();
    let digest = Sha1::digest(&utf16);
    let parts: Vec<String> =
        digest.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]).to_string()).collect();
    format!("S-1-5-80-{}", parts.join("-"))
}

/// The account a SQL Server instance's service runs as by default:
/// `NT SERVICE\MSSQLSERVER` for the default instance, `NT SERVICE\MSSQL$NAME` for a
/// named one. Instance names are at most 16 letters, digits, `_` or `$`.
pub fn instance_service_account(instance: &str) -> Result<String, SlamError> {
    let instance = instance.trim();
    let valid = !instance.is_empty()
        && instance.len() <= 16
        && instance.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if !valid {
        return Err(SlamError::new(
            ErrorCode::InvalidArgument,
            format!("`{instance}` is not a SQL Server instance name (up to 16 letters, digits, _ or $)"),
        )
        .with_hint("MSSQLSERVER for the default instance, or the name after the backslash (SQLEXPRESS)"));
    }
    Ok(if instance.eq_ignore_ascii_case("MSSQLSERVER") {
        r"NT SERVICE\MSSQLSERVER".to_string()
    } else {
        format!(r"NT SERVICE\MSSQL${}", instance.to_uppercase())
    })
}

/// How the worker on the instance's own machine reaches it: `localhost` for the
/// default instance, `localhost\NAME` (through the SQL Browser) for a named one.
/// `instance` has passed [`instance_service_account`].
pub fn instance_server(instance: &str) -> String {
    let instance = instance.trim();
    if instance.eq_ignore_ascii_case("MSSQLSERVER") {
        "localhost".to_string()
    } else {
        format!(r"localhost\{}", instance.to_uppercase())
    }
}

/// The SID of the account a service runs as: `LocalSystem`, a SID as it is, a
/// virtual account `NT SERVICE\NAME` computed ([`service_sid`]), anything else
/// through `lookup` (Windows' account database).
pub fn account_sid(account: &str, lookup: impl FnOnce(&str) -> std::io::Result<String>) -> std::io::Result<String> {
    let account = account.trim();
    if account.eq_ignore_ascii_case("LocalSystem") || account.eq_ignore_ascii_case(r"NT AUTHORITY\SYSTEM") {
        return Ok("S-1-5-18".into());
    }
    if account.starts_with("S-1-") {
        return Ok(account.to_string());
    }
    if let Some(name) = account.strip_prefix(r"NT SERVICE\").or_else(|| account.strip_prefix(r"nt service\")) {
        return Ok(service_sid(name));
    }
    lookup(account)
}

/// How an `allowed_clients` entry names an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientName {
    /// Already a SID.
    Sid(String),
    /// A name Windows must look up (`DOMAIN\user`).
    Account(String),
}

/// Resolves what can be resolved without asking Windows: SIDs as given,
/// `NT SERVICE\X` computed. Everything else is an account to look up.
pub fn classify(entry: &str) -> Result<ClientName, SlamError> {
    let entry = entry.trim();
    let invalid = |why: &str| {
        SlamError::new(ErrorCode::ConfigInvalid, format!("`allowed_clients`: `{entry}` {why}"))
            .with_hint(r"write an account (NT SERVICE\MSSQLSERVER, DOMAIN\svc-sql) or a SID (S-1-5-...)")
    };
    if entry.is_empty() {
        return Err(invalid("is empty"));
    }
    if entry.to_ascii_uppercase().starts_with("S-1-") {
        let well_formed = entry[4..].split('-').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
        return if well_formed {
            Ok(ClientName::Sid(entry.to_ascii_uppercase()))
        } else {
            Err(invalid("is not a SID"))
        };
    }
    if entry.contains([';', '(', ')']) {
        return Err(invalid("is not an account name"));
    }
    match entry.split_once('\\') {
        Some((domain, service)) if domain.eq_ignore_ascii_case("NT SERVICE") && !service.is_empty() => {
            Ok(ClientName::Sid(service_sid(service)))
        }
        _ => Ok(ClientName::Account(entry.to_string())),
    }
}

/// The pipe's DACL: full access for SYSTEM, Administrators and `owner_sid` (the
/// worker's account), [`CLIENT_ACCESS`] for each of `client_sids`.
pub fn pipe_sddl(owner_sid: &str, client_sids: &[String]) -> String {
    let mut sddl = format!("D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;{owner_sid})");
    let mut seen: Vec<&str> = vec!["S-1-5-18", "S-1-5-32-544", owner_sid];
    for sid in client_sids {
        if !seen.contains(&sid.as_str()) {
            sddl.push_str(&format!("(A;;0x{CLIENT_ACCESS:x};;;{sid})"));
            seen.push(sid);
        }
    }
    sddl
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_installer_names_the_instance_account_and_the_worker_sid() {
        assert_eq!(instance_service_account("MSSQLSERVER").unwrap(), r"NT SERVICE\MSSQLSERVER");
        assert_eq!(instance_service_account("sqlexpress").unwrap(), r"NT SERVICE\MSSQL$SQLEXPRESS");
        // The store reaches the same instance on this machine.
        assert_eq!(instance_server("MSSQLSERVER"), "localhost");
        assert_eq!(instance_server("sqlexpress"), r"localhost\SQLEXPRESS");
        for bad in ["", "a b", "x;DROP", "SEVENTEEN_CHARS_XX", r"HOST\INST"] {
            assert_eq!(instance_service_account(bad).unwrap_err().code, ErrorCode::InvalidArgument, "{bad}");
        }
        let no_lookup = |name: &str| Err(std::io::Error::other(format!("{name} looked up")));
        assert_eq!(account_sid("LocalSystem", no_lookup).unwrap(), "S-1-5-18");
        assert_eq!(
            account_sid(slam_protocol::DEFAULT_WORKER_ACCOUNT, no_lookup).unwrap(),
            slam_protocol::DEFAULT_WORKER_SID
        );
        assert_eq!(service_sid("SpeedifulSLAM"), slam_protocol::DEFAULT_WORKER_SID);
        assert!(account_sid(r"CORP\svc-slam", no_lookup).unwrap_err().to_string().contains("looked up"));
    }

    #[test]
    fn service_sids_match_the_published_ones() {
        // Published SIDs of the default instance, a named instance and TrustedInstaller.
        assert_eq!(service_sid("MSSQLSERVER"), "S-1-5-80-3880718306-3832830129-1677859214-2598158968-1052248003");
        assert_eq!(service_sid("mssql$sqlexpress"), "S-1-5-80-3880006512-4290199581-1648723128-3569869737-3631323133");
        assert_eq!(service_sid("TrustedInstaller"), "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464");
    }

    #[test]
    fn entries_are_sids_service_accounts_or_names_to_look_up() {
        assert_eq!(classify(r"NT SERVICE\MSSQLSERVER").unwrap(), ClientName::Sid(service_sid("MSSQLSERVER")));
        assert_eq!(classify(" s-1-5-21-1-2-3-500 ").unwrap(), ClientName::Sid("S-1-5-21-1-2-3-500".into()));
        assert_eq!(classify(r"ACME\svc-sql").unwrap(), ClientName::Account(r"ACME\svc-sql".into()));
        for bad in ["", "S-1-5-x", "S-1-", "evil)(A;;GA;;;WD"] {
            let error = classify(bad).unwrap_err();
            assert_eq!(error.code, ErrorCode::ConfigInvalid, "{bad}");
        }
    }

    #[test]
    fn the_dacl_admits_exactly_the_named_accounts() {
        let sql = service_sid("MSSQLSERVER");
        let sddl = pipe_sddl("S-1-5-21-9-9-9-1001", &[sql.clone(), sql.clone(), "S-1-5-18".into()]);
        assert_eq!(
            sddl,
            format!("D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;S-1-5-21-9-9-9-1001)(A;;0x12008b;;;{sql})"),
            "protected, no Everyone/Users, clients once, without FILE_CREATE_PIPE_INSTANCE (0x4)"
        );
        assert_eq!(CLIENT_ACCESS & 0x4, 0);
    }
}
