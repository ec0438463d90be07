//! The connection test: prove the session works at the connection's API version.
//!
//! `GET /services/data/` needs no token, so it proves nothing about the login; it
//! only lists the versions the org offers. The proof is
//! `GET /services/data/vNN.0` with the bearer token, the call sfdx-core also uses.

use super::{LoginError, SalesforceClient, Session, http};
use crate::secret::ExposeSecret;
use serde::Deserialize;

/// What the connection test found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionTest {
    /// Versions the org offers, ascending (e.g. `["31.0", …, "66.0"]`).
    pub versions_offered: Vec<String>,
}

impl ConnectionTest {
    /// The highest version offered.
    pub fn highest(&self) -> Option<&str> {
        self.versions_offered.last().map(String::as_str)
    }

    /// `31.0–66.0`, or the single version, for display.
    pub fn range(&self) -> String {
        match (self.versions_offered.first(), self.versions_offered.last()) {
            (Some(a), Some(b)) if a != b => format!("{a}–{b}"),
            (Some(a), _) => a.clone(),
            _ => String::new(),
        }
    }
}

#[derive(Deserialize)]
struct VersionEntry {
    version: String,
}

#[derive(Deserialize)]
struct RestError {
    #[serde(rename = "errorCode", default)]
    error_code: String,
    #[serde(default)]
    message: String,
}

pub(super) async fn test_connection(
    client: &SalesforceClient,
    session: &Session,
    api_version: i64,
) -> Result<ConnectionTest, LoginError> {
    let host = session.instance_url.trim_start_matches("https://").to_string();
    let probe_url = format!("{}/services/data/v{api_version}.0", session.instance_url);

    let probe = http::send(&client.settings, &host, http::Idempotency::Read, || {
        client.http.get(&probe_url).bearer_auth(session.access_token.expose_secret())
    })
    .await?;
    // The probe's verdict comes first: a failure to list versions must not mask it.
    match probe.status {
        200 => Ok(ConnectionTest {
            versions_offered: versions_offered(client, &session.instance_url).await.unwrap_or_default(),
        }),
        404 => {
            let offered = versions_offered(client, &session.instance_url).await.unwrap_or_default();
            Err(LoginError::VersionNotOffered { requested: api_version, highest: offered.last().cloned() })
        }
        status => {
            let first = serde_json::from_str::<Vec<RestError>>(&probe.body).ok().and_then(|v| v.into_iter().next());
            match first {
                Some(e) if e.error_code == "INVALID_OPERATION_WITH_EXPIRED_PASSWORD" => {
                    Err(LoginError::PasswordExpired)
                }
                Some(e) => {
                    Err(LoginError::SessionRejected { url: probe_url, status, code: e.error_code, message: e.message })
                }
                None => Err(LoginError::Unexpected { url: probe_url, status, snippet: super::snippet(&probe.body) }),
            }
        }
    }
}

/// The API versions `base_url` offers, ascending. `GET /services/data/` needs no
/// session, so this also works when a login was refused for its version.
pub(super) async fn versions_offered(client: &SalesforceClient, base_url: &str) -> Result<Vec<String>, LoginError> {
    let host = base_url.trim_start_matches("https://").to_string();
    let url = format!("{base_url}/services/data/");
    let listing = http::send(&client.settings, &host, http::Idempotency::Read, || client.http.get(&url)).await?;
    if listing.status != 200 {
        return Ok(Vec::new());
    }
    let mut versions: Vec<String> = serde_json::from_str::<Vec<VersionEntry>>(&listing.body)
        .map_err(|_| LoginError::Unexpected { url, status: listing.status, snippet: super::snippet(&listing.body) })?
        .into_iter()
        .map(|v| v.version)
        .collect();
    versions.sort_by(|a, b| version_key(a).total_cmp(&version_key(b)));
    Ok(versions)
}

fn version_key(v: &str) -> f64 {
    v.parse().unwrap_or(0.0)
}
