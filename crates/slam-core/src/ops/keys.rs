//! The key operations: `SLAM_setup_jwt`, `SLAM_remove_jwt` and `SLAM_list_keys`,
//! over the key vault (`crate::keys`).

use super::errors::{key_error, store_error};
use super::{Context, EXPIRY_WARNING_DAYS, SHORT_PASSPHRASE_CHARS, rfc3339};
use crate::clock::utc;
use crate::keys::{
    self, CertificateState, KeyError, KeyName, KeyVault, PrivateKeyState, Replaced, SetupParams, UnlockError,
};
use crate::secret::{ExposeSecret, Secret};
use slam_protocol::{ColumnType, ErrorCode, OutputSink, ResultSet, SlamError, Value};
use std::path::Path;
use time::OffsetDateTime;

/// Arguments of `SLAM_setup_jwt`, as given (NULL = `None`).
#[derive(Default)]
pub struct SetupJwtArgs {
    /// `@key_name`; defaults to the host name.
    pub key_name: Option<String>,
    /// `@password`; `None` writes an unencrypted key (with a warning).
    pub password: Option<Secret>,
    /// `@cert_days`; defaults to 365.
    pub cert_days: Option<i64>,
    /// `@force`.
    pub force: bool,
}

/// `SLAM_setup_jwt`: generate a keypair and self-signed certificate.
pub fn setup_jwt(ctx: &Context<'_>, args: SetupJwtArgs, sink: &mut dyn OutputSink) -> Result<(), SlamError> {
    let (raw_name, from_host_name) = match args.key_name {
        Some(name) => (name, false),
        None => (KeyName::host_default(), true),
    };
    let name = KeyName::parse(&raw_name)
        .map_err(|reason| key_error(KeyError::InvalidName { name: raw_name.clone(), reason, from_host_name }))?;
    let params = SetupParams {
        name,
        passphrase: args.password,
        cert_days: args.cert_days.unwrap_or(keys::DEFAULT_CERT_DAYS),
        force: args.force,
    };
    // Validate everything before the vault is touched: nothing is created on bad input.
    params.validate().map_err(key_error)?;
    let vault = ctx.vault()?;

    if from_host_name {
        sink.warning(&format!(
            "No `@key_name` given: using this machine's host name `{}`. A name per Salesforce org \
             (e.g. 'acme-prod') is strongly recommended, so that one org's key never opens another.",
            params.name
        ));
    }
    let reservation = match vault.reserve(&params.name, params.force, ctx.clock.now()) {
        // The spec: warn when a valid certificate exists, and regenerate only with
        // `@force = 1`. Deployment scripts and Agent jobs re-run SLAM_setup_jwt, so
        // this succeeds and keeps the keypair untouched.
        Err(KeyError::Exists { name, not_after }) => {
            return keep_existing(ctx, &vault, &name, not_after, params.passphrase.as_ref(), sink);
        }
        other => other.map_err(key_error)?,
    };
    if let Some(cache) = ctx.unlocked_keys() {
        cache.forget(params.name.as_str());
    }
    sink.info(&format!("Generating an RSA-{} keypair `{}`...", keys::RSA_BITS, params.name));
    let outcome = reservation.write(&params, ctx.clock).map_err(key_error)?;
    let cert = &outcome.certificate;

    match outcome.replaced {
        Some(Replaced::Expired { not_after }) => sink.info(&format!(
            "Replaced the previous keypair `{}`, whose certificate expired on {}.",
            outcome.name,
            utc(not_after)
        )),
        Some(Replaced::StillValid { not_after }) => sink.warning(&format!(
            "Replaced the keypair `{}` although its certificate was valid until {} (`@force = 1`). \
             JWT logins with this key fail until the new certificate is uploaded to Salesforce.",
            outcome.name,
            utc(not_after)
        )),
        Some(Replaced::Incomplete) => {
            sink.warning(&format!("Replaced an incomplete or unreadable keypair `{}` (`@force = 1`).", outcome.name))
        }
        None => {}
    }
    match &params.passphrase {
        None => sink.warning(&format!(
            "No `@password` given: the private key {} is stored unencrypted. Anyone who can read that \
             file can log in to Salesforce as the connection's user. To protect it, run SLAM_setup_jwt \
             again with `@password` and `@force = 1`, before uploading the certificate.",
            outcome.private_key_path.display()
        )),
        Some(p) if p.expose_secret().chars().count() < SHORT_PASSPHRASE_CHARS => sink.warning(&format!(
            "The `@password` is shorter than {SHORT_PASSPHRASE_CHARS} characters. A long, unique \
             passphrase (not your Salesforce password) makes a stolen key file useless."
        )),
        Some(_) => {}
    }
    let days = cert.days_left(ctx.clock.now());
    if days < EXPIRY_WARNING_DAYS {
        sink.warning(&renewal_warning(outcome.name.as_str(), days, cert.not_after));
    }
    // The paths and fingerprints are in the result set (SSMS's Results tab, the
    // CLI's stdout); the message says what happened in one line.
    sink.info(&format!(
        "Created keypair `{name}`: private key {enc}; certificate valid until {until} ({days} days).",
        name = outcome.name,
        enc = if outcome.encrypted { "encrypted with your passphrase" } else { "NOT encrypted" },
        until = utc(cert.not_after),
        days = params.cert_days,
    ));
    sink.info(&format!(
        "Next: in Salesforce Setup > App Manager, edit your External Client App; under OAuth Settings > \
         Flow Enablement, check `Enable JWT Bearer Flow` and upload {crt}. Then run SLAM_add_connection \
         with @auth_method = 'jwt_bearer', @key_name = '{name}'{pass} and the app's Consumer Key.",
        crt = outcome.certificate_path.display(),
        name = outcome.name,
        pass = if outcome.encrypted { ", @key_password = <this passphrase>" } else { "" },
    ));

    let mut result = ResultSet::new(KEYPAIR_COLUMNS);
    let status = if outcome.replaced.is_some() { "replaced" } else { "created" };
    result.push(vec![
        outcome.name.as_str().into(),
        path_value(&outcome.private_key_path),
        path_value(&outcome.certificate_path),
        outcome.encrypted.into(),
        rfc3339(cert.not_before),
        rfc3339(cert.not_after),
        params.cert_days.into(),
        cert.sha1_fingerprint.clone().into(),
        cert.sha256_fingerprint.clone().into(),
        status.into(),
        certificate_pem(&outcome.certificate_path),
    ]);
    sink.result_set(result);
    Ok(())
}

/// The one-row result of `SLAM_setup_jwt`, whether the keypair was created,
/// replaced or kept: one shape, so `INSERT ... EXEC` works either way.
const KEYPAIR_COLUMNS: &[(&str, ColumnType)] = &[
    ("key_name", ColumnType::Text),
    ("private_key_path", ColumnType::Text),
    ("certificate_path", ColumnType::Text),
    ("has_passphrase", ColumnType::Bool),
    ("not_before", ColumnType::DateTime),
    ("expires_at", ColumnType::DateTime),
    ("cert_days", ColumnType::Int),
    ("sha1_fingerprint", ColumnType::Text),
    ("sha256_fingerprint", ColumnType::Text),
    ("status", ColumnType::Text),
    ("certificate_pem", ColumnType::Text),
];

/// `SLAM_setup_jwt` on a keypair whose certificate is still valid, without
/// `@force`: warn, change nothing, succeed, and return the existing keypair's row
/// in the same shape as a new one's (so `INSERT ... EXEC` works either way).
fn keep_existing(
    ctx: &Context<'_>,
    vault: &KeyVault,
    name: &KeyName,
    not_after: OffsetDateTime,
    passphrase: Option<&Secret>,
    sink: &mut dyn OutputSink,
) -> Result<(), SlamError> {
    let now = ctx.clock.now();
    sink.warning(&format!(
        "A keypair named `{name}` already exists and its certificate is valid until {}: it was kept and nothing \
         was changed. To replace it before then, run SLAM_setup_jwt @key_name = '{name}', @force = 1 (JWT logins \
         with it then fail until the new certificate is uploaded to Salesforce).",
        utc(not_after)
    ));
    let days = (not_after - now).whole_days();
    if days < EXPIRY_WARNING_DAYS {
        sink.warning(&renewal_warning(name.as_str(), days, not_after));
    }
    let entry = vault.inspect(name).map_err(key_error)?.ok_or_else(|| {
        SlamError::new(ErrorCode::KeyNotFound, format!("the keypair `{name}` disappeared while it was being read"))
    })?;
    let CertificateState::Present(cert) = &entry.certificate else {
        return Err(SlamError::new(ErrorCode::KeyFileCorrupt, format!("the certificate of `{name}` is unreadable"))
            .with_hint("replace the keypair with SLAM_setup_jwt `@force = 1`"));
    };
    // A re-run with a passphrase must not leave the DBA believing it was applied.
    match (passphrase, entry.private_key) {
        (Some(_), PrivateKeyState::Unencrypted) => sink.warning(&format!(
            "The existing private key of `{name}` is NOT encrypted, and `@password` was not applied to it. To \
             protect it, run SLAM_setup_jwt @key_name = '{name}', @password = '...', @force = 1 and upload the \
             new certificate."
        )),
        (Some(given), PrivateKeyState::Encrypted) => {
            match vault.load_signing_key(name, Some(given), now, ctx.unlocked_keys()) {
                Err(KeyError::Unlock { source: UnlockError::PassphraseWrong, .. }) => sink.warning(&format!(
                    "`@password` does not open the existing private key of `{name}`, which keeps the passphrase \
                     it was made with: give that one as `@key_password` to SLAM_add_connection, or replace the \
                     keypair with `@force = 1`."
                )),
                Err(other) => return Err(key_error(other)),
                Ok(_) => {}
            }
        }
        _ => {}
    }
    let mut result = ResultSet::new(KEYPAIR_COLUMNS);
    let cert_path = vault.certificate_path(name);
    result.push(vec![
        name.as_str().into(),
        path_value(&vault.private_key_path(name)),
        path_value(&cert_path),
        (entry.private_key == PrivateKeyState::Encrypted).into(),
        rfc3339(cert.not_before),
        rfc3339(cert.not_after),
        (cert.not_after - cert.not_before).whole_days().into(),
        cert.sha1_fingerprint.clone().into(),
        cert.sha256_fingerprint.clone().into(),
        "kept".into(),
        certificate_pem(&cert_path),
    ]);
    sink.result_set(result);
    Ok(())
}

/// The warning for a certificate that expires within [`EXPIRY_WARNING_DAYS`],
/// naming the call that renews it.
pub(crate) fn renewal_warning(name: &str, days: i64, not_after: OffsetDateTime) -> String {
    format!(
        "The certificate of `{name}` expires in {days} days, on {}. Renew it before then: SLAM_setup_jwt \
         @key_name = '{name}', @password = '<the same passphrase>', @force = 1, then upload the new {name}.crt to \
         the External Client App; connections using it keep working once it is uploaded.",
        utc(not_after)
    )
}

/// The certificate file's text, for a DBA who cannot open files on the server:
/// copied from the result into a `.crt` file, it is what Salesforce takes. Only
/// ever the certificate, never the private key.
fn certificate_pem(path: &Path) -> Value {
    std::fs::read_to_string(path).map_or(Value::Null, Value::Text)
}

/// `SLAM_remove_jwt`: delete a keypair's files from this machine.
pub fn remove_jwt(ctx: &Context<'_>, key_name: &str, sink: &mut dyn OutputSink) -> Result<(), SlamError> {
    let name = KeyName::parse(key_name).map_err(|reason| {
        key_error(KeyError::InvalidName { name: key_name.to_string(), reason, from_host_name: false })
    })?;
    let vault = ctx.vault()?;
    let outcome = vault.remove(&name).map_err(key_error)?;
    if let Some(cache) = ctx.unlocked_keys() {
        cache.forget(name.as_str());
    }
    let key_path = vault.private_key_path(&name);
    let cert_path = vault.certificate_path(&name);
    let deleted: Vec<String> = [(outcome.removed_private_key, &key_path), (outcome.removed_certificate, &cert_path)]
        .into_iter()
        .filter(|(removed, _)| *removed)
        .map(|(_, path)| path.display().to_string())
        .collect();
    sink.info(&format!("Removed keypair `{name}`: deleted {}.", deleted.join(" and ")));
    let users: Vec<String> = ctx
        .store()
        .and_then(|mut store| store.list().map_err(store_error))
        .map(|records| {
            records
                .into_iter()
                .filter(|r| r.key_name.as_deref().is_some_and(|k| k.eq_ignore_ascii_case(name.as_str())))
                .map(|r| r.username)
                .collect()
        })
        .unwrap_or_else(|e| {
            tracing::debug!(error = %e.message, "could not read the stored connections");
            Vec::new()
        });
    if !users.is_empty() {
        sink.warning(&format!(
            "Stored connections still use `{name}`: {}. Their logins now fail; give each a new keypair with \
             SLAM_add_connection (or remove it with SLAM_remove_connection).",
            users.join(", ")
        ));
    }
    sink.warning(
        "This does not revoke access in Salesforce: any copy of the private key can still log in. \
         To revoke it, in Salesforce Setup > App Manager edit the External Client App and either \
         upload a new certificate under OAuth Settings > Flow Enablement, or deactivate the app.",
    );
    Ok(())
}

/// `slam list-keys`: every keypair with its certificate's state.
pub fn list_keys(ctx: &Context<'_>, sink: &mut dyn OutputSink) -> Result<(), SlamError> {
    let vault = ctx.vault()?;
    let entries = vault.list().map_err(key_error)?;
    let now = ctx.clock.now();
    let mut result = ResultSet::new(&[
        ("key_name", ColumnType::Text),
        ("status", ColumnType::Text),
        ("has_passphrase", ColumnType::Bool),
        ("expires_at", ColumnType::DateTime),
        ("days_left", ColumnType::Int),
        ("sha1_fingerprint", ColumnType::Text),
        ("sha256_fingerprint", ColumnType::Text),
        ("private_key_path", ColumnType::Text),
        ("certificate_path", ColumnType::Text),
        ("certificate_pem", ColumnType::Text),
    ]);
    for entry in &entries {
        let key_path = vault.dir().join(format!("{}.pem", entry.name));
        let cert_path = vault.dir().join(format!("{}.crt", entry.name));
        let has_passphrase = match entry.private_key {
            PrivateKeyState::Encrypted => Value::Bool(true),
            PrivateKeyState::Unencrypted => Value::Bool(false),
            PrivateKeyState::Missing | PrivateKeyState::Unreadable => Value::Null,
        };
        let (status, cert_columns) = match &entry.certificate {
            CertificateState::Present(cert) => {
                let days = cert.days_left(now);
                let status = if cert.is_expired(now) {
                    sink.warning(&format!(
                        "The certificate of `{}` expired on {}: JWT logins with it fail. Renew it with \
                         SLAM_setup_jwt @key_name = '{}' and upload the new certificate.",
                        entry.name,
                        utc(cert.not_after),
                        entry.name
                    ));
                    "expired"
                } else if days < EXPIRY_WARNING_DAYS {
                    sink.warning(&renewal_warning(&entry.name, days, cert.not_after));
                    "expires soon"
                } else {
                    "valid"
                };
                let columns = [
                    rfc3339(cert.not_after),
                    days.into(),
                    cert.sha1_fingerprint.clone().into(),
                    cert.sha256_fingerprint.clone().into(),
                ];
                (status, columns)
            }
            CertificateState::Missing => ("certificate missing", [Value::Null, Value::Null, Value::Null, Value::Null]),
            CertificateState::Unreadable => {
                ("certificate unreadable", [Value::Null, Value::Null, Value::Null, Value::Null])
            }
        };
        let status = match entry.private_key {
            PrivateKeyState::Missing => "private key missing",
            PrivateKeyState::Unreadable => "private key unreadable",
            _ => status,
        };
        let mut row = vec![entry.name.clone().into(), status.into(), has_passphrase];
        row.extend(cert_columns);
        row.push(if entry.private_key == PrivateKeyState::Missing { Value::Null } else { path_value(&key_path) });
        row.push(if entry.certificate == CertificateState::Missing { Value::Null } else { path_value(&cert_path) });
        row.push(match entry.certificate {
            CertificateState::Present(_) => certificate_pem(&cert_path),
            _ => Value::Null,
        });
        result.push(row);
    }
    if entries.is_empty() {
        sink.info(&format!(
            "No keypairs in {}. Create one with SLAM_setup_jwt @key_name = '...', @password = '...'.",
            vault.dir().display()
        ));
    }
    sink.result_set(result);
    Ok(())
}

fn path_value(path: &Path) -> Value {
    Value::Text(path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::secret::secret;
    use slam_protocol::RecordingSink;

    fn ctx<'a>(dir: &Path, clock: &'a FixedClock) -> Context<'a> {
        Context {
            data_dir: dir.to_path_buf(),
            clock,
            http: Default::default(),
            caller: "test".into(),
            resident: None,
            store: crate::ops::embedded_store(dir),
            database: None,
        }
    }

    fn t0() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap()
    }

    #[test]
    fn setup_reports_paths_expiry_fingerprints_and_next_step() {
        let tmp = tempfile::tempdir().unwrap();
        let clock = FixedClock::at(t0());
        let mut sink = RecordingSink::default();
        let args = SetupJwtArgs {
            key_name: Some("acme-prod".into()),
            password: Some(secret("a long unique passphrase")),
            ..Default::default()
        };
        setup_jwt(&ctx(tmp.path(), &clock), args, &mut sink).unwrap();
        assert!(sink.warnings().is_empty(), "{:?}", sink.warnings());
        let text = sink.infos().join("\n");
        assert!(text.contains("certificate valid until 2027-09-21 14:13:20 UTC (365 days)"), "{text}");
        let crt = tmp.path().join("keys").join("acme-prod.crt").display().to_string();
        assert!(text.contains(&format!("upload {crt}")) && text.contains("@key_password"), "{text}");
        let row = &sink.result_sets[0].rows[0];
        assert_eq!(row[1], Value::Text(tmp.path().join("keys").join("acme-prod.pem").display().to_string()));
        assert_eq!(row[3], Value::Bool(true));
        assert_eq!(row[5], Value::Text("2027-09-21T14:13:20Z".into()));
        assert!(!text.contains("a long unique passphrase"));
    }

    #[test]
    fn no_password_and_short_password_warn() {
        let tmp = tempfile::tempdir().unwrap();
        let clock = FixedClock::at(t0());
        let mut sink = RecordingSink::default();
        let args = SetupJwtArgs { key_name: Some("plain".into()), ..Default::default() };
        setup_jwt(&ctx(tmp.path(), &clock), args, &mut sink).unwrap();
        assert!(sink.warnings().iter().any(|w| w.contains("stored unencrypted")));

        let mut sink = RecordingSink::default();
        let args = SetupJwtArgs { key_name: Some("short".into()), password: Some(secret("abc")), ..Default::default() };
        setup_jwt(&ctx(tmp.path(), &clock), args, &mut sink).unwrap();
        assert!(sink.warnings().iter().any(|w| w.contains("shorter than 12")));
    }

    #[test]
    fn list_flags_expiring_and_expired_certificates() {
        let tmp = tempfile::tempdir().unwrap();
        let clock = FixedClock::at(t0());
        for (name, days) in [("soon", 10), ("later", 100), ("gone", 1)] {
            let args = SetupJwtArgs { key_name: Some(name.into()), cert_days: Some(days), ..Default::default() };
            setup_jwt(&ctx(tmp.path(), &clock), args, &mut RecordingSink::default()).unwrap();
        }
        clock.advance(time::Duration::days(2));
        let mut sink = RecordingSink::default();
        list_keys(&ctx(tmp.path(), &clock), &mut sink).unwrap();
        let statuses: Vec<_> = sink.result_sets[0].rows.iter().map(|r| (r[0].display(), r[1].display())).collect();
        assert_eq!(
            statuses,
            [
                ("gone".into(), "expired".into()),
                ("later".into(), "valid".into()),
                ("soon".into(), "expires soon".into())
            ]
        );
        assert_eq!(sink.warnings().len(), 2);
    }

    #[test]
    fn errors_carry_stable_codes() {
        let tmp = tempfile::tempdir().unwrap();
        let clock = FixedClock::at(t0());
        let missing = tmp.path().join("missing");
        let err = list_keys(&ctx(&missing, &clock), &mut RecordingSink::default()).unwrap_err();
        assert_eq!(err.code, ErrorCode::DataDirMissing);
        let err = remove_jwt(&ctx(tmp.path(), &clock), "none", &mut RecordingSink::default()).unwrap_err();
        assert_eq!(err.code, ErrorCode::KeyNotFound);
        assert!(err.hint.unwrap().contains("no keypairs"));
    }
}
