//! The OAuth 2.0 JWT Bearer flow (RFC 7523) as Salesforce implements it.

use super::{LoginDomain, LoginError, SalesforceClient, Session, http};
use crate::clock::Clock;
use crate::keys::SigningKey;
use crate::secret::secret;
use serde::{Deserialize, Serialize};

/// Grant type Salesforce expects.
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Lifetime of an assertion. Salesforce documents "within 3 minutes".
const ASSERTION_LIFETIME_SECONDS: i64 = 180;

/// One host/audience tried and Salesforce's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtAttempt {
    /// The host the token request went to.
    pub host: String,
    /// The `aud` claim sent.
    pub audience: String,
    /// Salesforce's `error`.
    pub error: String,
    /// Salesforce's `error_description`.
    pub description: String,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
}

#[derive(Deserialize)]
struct TokenSuccess {
    access_token: String,
    instance_url: String,
    id: String,
}

#[derive(Deserialize)]
struct TokenError {
    error: String,
    #[serde(default)]
    error_description: String,
}

/// Answers after which another audience is worth trying (for a My Domain).
fn audience_may_be_the_problem(description: &str) -> bool {
    description.contains("audience is invalid")
        || description.contains("Audience validation failed")
        || description.contains("user hasn't approved this consumer")
}

pub(super) async fn login(
    client: &SalesforceClient,
    domain: &LoginDomain,
    username: &str,
    consumer_key: &str,
    key: &SigningKey,
    clock: &dyn Clock,
) -> Result<(Session, Vec<JwtAttempt>), LoginError> {
    let encoding_key = jsonwebtoken::EncodingKey::from_rsa_der(&key.pkcs1_der);
    let host = domain.host();
    let url = format!("{}/services/oauth2/token", domain.base_url());
    let mut attempts = Vec::new();
    let mut clock_skew_seconds = None;
    for audience in domain.jwt_audiences() {
        let now = clock.now();
        let claims = Claims {
            iss: consumer_key,
            sub: username,
            aud: &audience,
            exp: now.unix_timestamp() + ASSERTION_LIFETIME_SECONDS,
        };
        let assertion =
            jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256), &claims, &encoding_key)
                .map(secret)
                .map_err(|e| LoginError::Unexpected {
                    url: url.clone(),
                    status: 0,
                    snippet: format!("signing the JWT failed: {e}"),
                })?;
        tracing::debug!(host, audience, "JWT bearer token request");
        let answer = http::send(&client.settings, &host, http::Idempotency::Login, || {
            use crate::secret::ExposeSecret;
            client.http.post(&url).form(&[("grant_type", GRANT_TYPE), ("assertion", assertion.expose_secret())])
        })
        .await?;

        if answer.status == 200 {
            // A 200 body holds a live access token: describe it, never quote it.
            let success: TokenSuccess = serde_json::from_str(&answer.body).map_err(|_| LoginError::Unexpected {
                url: url.clone(),
                status: 200,
                snippet: super::describe_success_body(&answer),
            })?;
            let instance_url = success.instance_url.trim_end_matches('/').to_string();
            super::check_instance_url(&instance_url)?;
            let (org_id, user_id) = ids_from_identity_url(&success.id);
            let session = Session {
                access_token: secret(success.access_token),
                instance_url,
                org_id,
                user_id,
                audience: Some(audience),
            };
            return Ok((session, attempts));
        }
        let Ok(refused) = serde_json::from_str::<TokenError>(&answer.body) else {
            return Err(LoginError::Unexpected { url, status: answer.status, snippet: super::snippet(&answer.body) });
        };
        if refused.error_description.contains("expired authorization code") {
            clock_skew_seconds = answer.date.map(|server| {
                let local = std::time::SystemTime::from(now);
                match local.duration_since(server) {
                    Ok(ahead) => ahead.as_secs() as i64,
                    Err(behind) => -(behind.duration().as_secs() as i64),
                }
            });
        }
        let retry = domain.is_my_domain() && audience_may_be_the_problem(&refused.error_description);
        attempts.push(JwtAttempt {
            host: host.clone(),
            audience,
            error: refused.error,
            description: refused.error_description,
        });
        if !retry {
            break;
        }
    }
    Err(LoginError::JwtRejected { attempts, clock_skew_seconds })
}

/// `https://login.salesforce.com/id/00D.../005...` → (org id, user id).
fn ids_from_identity_url(id: &str) -> (String, String) {
    let mut parts = id.trim_end_matches('/').rsplit('/');
    let user = parts.next().unwrap_or_default().to_string();
    let org = parts.next().unwrap_or_default().to_string();
    (org, user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_url_yields_org_and_user() {
        assert_eq!(
            ids_from_identity_url("https://login.salesforce.com/id/00D000000000001EAA/005000000000001AAA"),
            ("00D000000000001EAA".to_string(), "005000000000001AAA".to_string())
        );
    }

    #[test]
    fn only_audience_like_answers_trigger_a_second_audience() {
        assert!(audience_may_be_the_problem("audience is invalid"));
        assert!(audience_may_be_the_problem("user hasn't approved this consumer"));
        assert!(!audience_may_be_the_problem("invalid assertion"));
        assert!(!audience_may_be_the_problem("expired authorization code"));
    }
}
