//! The fake's configuration: orgs, users and JWT apps, plus ID helpers.

use std::ops::RangeInclusive;

use rand::Rng;
use rand::distributions::Alphanumeric;

/// API versions an org offers unless told otherwise (Summer '14 .. Spring '26).
pub const DEFAULT_API_VERSIONS: RangeInclusive<u32> = 31..=66;

/// Generates a random 18-character Salesforce-style ID with the given 3-character key prefix
/// (`"00D"` for orgs, `"005"` for users), including the real case-safe checksum suffix.
///
/// A prefix longer than 15 characters is truncated; a shorter one is padded with random
/// characters.
pub fn new_salesforce_id(prefix: &str) -> String {
    let mut id: String = prefix.chars().take(15).collect();
    let mut rng = rand::thread_rng();
    while id.len() < 15 {
        id.push(rng.sample(Alphanumeric) as char);
    }
    let suffix = case_safe_suffix(&id);
    id.push_str(&suffix);
    id
}

/// The 3-character suffix that turns a 15-character case-sensitive ID into the 18-character
/// case-insensitive form.
fn case_safe_suffix(id15: &str) -> String {
    const MAP: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    let bytes = id15.as_bytes();
    let mut out = String::with_capacity(3);
    for chunk in 0..3 {
        let mut flags = 0usize;
        for i in 0..5 {
            if bytes.get(chunk * 5 + i).is_some_and(u8::is_ascii_uppercase) {
                flags |= 1 << i;
            }
        }
        out.push(char::from(MAP[flags]));
    }
    out
}

/// A random alphanumeric string of `len` characters.
pub(crate) fn random_alnum(len: usize) -> String {
    rand::thread_rng().sample_iter(Alphanumeric).take(len).map(char::from).collect()
}

/// A Salesforce org (tenant) served by the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    /// 18-character org ID, starting with `00D`.
    pub org_id: String,
    /// Organization name (shown in SOAP `userInfo`).
    pub name: String,
    /// My Domain label: `"acme"` or `"acme--partial.sandbox"`; the host is
    /// `{my_domain}.my.salesforce.com`.
    pub my_domain: String,
    /// Sandbox orgs log in via `test.salesforce.com`, production orgs via `login.salesforce.com`.
    pub sandbox: bool,
    /// Whether SOAP `login()` is enabled (disabled by default in orgs created Winter '26+).
    pub soap_login_enabled: bool,
    /// Whether SOAP `login()` also requires the "Use Any API Auth" user permission.
    pub require_use_any_api_auth: bool,
    /// Offered REST/SOAP API major versions, e.g. `31..=66`.
    pub api_versions: RangeInclusive<u32>,
}

impl Org {
    /// A production org with My Domain `{my_domain}` (host `{my_domain}.my.salesforce.com`),
    /// a random org ID, SOAP login enabled, no "Use Any API Auth" requirement and
    /// [`DEFAULT_API_VERSIONS`]. The name is the My Domain label with a capital first letter.
    pub fn production(my_domain: &str) -> Org {
        Org {
            org_id: new_salesforce_id("00D"),
            name: capitalize(my_domain),
            my_domain: my_domain.to_ascii_lowercase(),
            sandbox: false,
            soap_login_enabled: true,
            require_use_any_api_auth: false,
            api_versions: DEFAULT_API_VERSIONS,
        }
    }

    /// A sandbox named `name` (e.g. `"acme--partial"`): My Domain `"{name}.sandbox"`
    /// (host `{name}.sandbox.my.salesforce.com`), otherwise the same defaults as
    /// [`Org::production`].
    pub fn sandbox(name: &str) -> Org {
        let name = name.to_ascii_lowercase();
        let name = name.strip_suffix(".sandbox").unwrap_or(&name);
        Org { my_domain: format!("{name}.sandbox"), sandbox: true, ..Org::production(name) }
    }

    /// Sets the org ID.
    pub fn with_org_id(mut self, org_id: impl Into<String>) -> Org {
        self.org_id = org_id.into();
        self
    }

    /// Sets the organization name.
    pub fn with_name(mut self, name: impl Into<String>) -> Org {
        self.name = name.into();
        self
    }

    /// Enables or disables SOAP `login()` for this org.
    pub fn with_soap_login_enabled(mut self, on: bool) -> Org {
        self.soap_login_enabled = on;
        self
    }

    /// Requires (or not) the "Use Any API Auth" permission for SOAP `login()`.
    pub fn with_require_use_any_api_auth(mut self, on: bool) -> Org {
        self.require_use_any_api_auth = on;
        self
    }

    /// Sets the offered API major versions.
    pub fn with_api_versions(mut self, versions: RangeInclusive<u32>) -> Org {
        self.api_versions = versions;
        self
    }

    /// The org's My Domain host, e.g. `acme.my.salesforce.com`.
    pub fn host(&self) -> String {
        format!("{}.my.salesforce.com", self.my_domain)
    }

    /// The org's instance URL, e.g. `https://acme.my.salesforce.com`.
    pub fn instance_url(&self) -> String {
        format!("https://{}", self.host())
    }

    /// The generic login URL for this kind of org: `https://login.salesforce.com` or
    /// `https://test.salesforce.com`.
    pub fn login_url(&self) -> &'static str {
        if self.sandbox { "https://test.salesforce.com" } else { "https://login.salesforce.com" }
    }

    /// The first 15 characters of the org ID.
    pub fn org_id15(&self) -> &str {
        self.org_id.get(..15).unwrap_or(&self.org_id)
    }
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A user of an org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Login name (an email-like string, matched case-insensitively).
    pub username: String,
    /// The org the user belongs to.
    pub org_id: String,
    /// 18-character user ID, starting with `005`.
    pub user_id: String,
    /// The password (SOAP login sends password + security token).
    pub password: String,
    /// The security token; empty means "trusted network, no token needed".
    pub security_token: String,
    /// Inactive users cannot log in.
    pub active: bool,
    /// SOAP login succeeds with `passwordExpired=true` and a session that REST rejects.
    pub password_expired: bool,
    /// The "API Enabled" permission.
    pub api_enabled: bool,
    /// The "Use Any API Auth" permission.
    pub use_any_api_auth: bool,
    /// Full name (SOAP `userFullName`).
    pub full_name: String,
    /// Email (SOAP `userEmail`).
    pub email: String,
}

impl User {
    /// Password given to users created by [`User::new`].
    pub const DEFAULT_PASSWORD: &'static str = "Test-Passw0rd";
    /// Security token given to users created by [`User::new`].
    pub const DEFAULT_SECURITY_TOKEN: &'static str = "TESTSECURITYTOKEN0123456";

    /// An active, API-enabled user of `org` with [`User::DEFAULT_PASSWORD`],
    /// [`User::DEFAULT_SECURITY_TOKEN`], a random user ID, email = username, and a full name
    /// derived from the part of the username before `@`. No "Use Any API Auth" permission.
    pub fn new(username: &str, org: &Org) -> User {
        let local = username.split('@').next().unwrap_or(username);
        User {
            username: username.to_owned(),
            org_id: org.org_id.clone(),
            user_id: new_salesforce_id("005"),
            password: Self::DEFAULT_PASSWORD.to_owned(),
            security_token: Self::DEFAULT_SECURITY_TOKEN.to_owned(),
            active: true,
            password_expired: false,
            api_enabled: true,
            use_any_api_auth: false,
            full_name: format!("{} User", capitalize(local)),
            email: username.to_owned(),
        }
    }

    /// Sets the password.
    pub fn with_password(mut self, password: impl Into<String>) -> User {
        self.password = password.into();
        self
    }

    /// Sets the security token (empty = none needed).
    pub fn with_security_token(mut self, token: impl Into<String>) -> User {
        self.security_token = token.into();
        self
    }

    /// Sets whether the user is active.
    pub fn with_active(mut self, active: bool) -> User {
        self.active = active;
        self
    }

    /// Sets whether the password has expired.
    pub fn with_password_expired(mut self, expired: bool) -> User {
        self.password_expired = expired;
        self
    }

    /// Sets the "API Enabled" permission.
    pub fn with_api_enabled(mut self, on: bool) -> User {
        self.api_enabled = on;
        self
    }

    /// Sets the "Use Any API Auth" permission.
    pub fn with_use_any_api_auth(mut self, on: bool) -> User {
        self.use_any_api_auth = on;
        self
    }

    /// Sets the user ID.
    pub fn with_user_id(mut self, user_id: impl Into<String>) -> User {
        self.user_id = user_id.into();
        self
    }

    /// Sets the full name.
    pub fn with_full_name(mut self, name: impl Into<String>) -> User {
        self.full_name = name.into();
        self
    }

    /// Sets the email address.
    pub fn with_email(mut self, email: impl Into<String>) -> User {
        self.email = email.into();
        self
    }

    /// What a SOAP client sends in `<password>`: password followed by security token.
    pub fn soap_password(&self) -> String {
        format!("{}{}", self.password, self.security_token)
    }
}

/// An External Client App / Connected App with a JWT bearer certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    /// Consumer key (the JWT `iss`).
    pub consumer_key: String,
    /// The org the app is installed in.
    pub org_id: String,
    /// PEM of the uploaded certificate; JWTs must verify against its RSA public key.
    /// Its validity period is deliberately NOT checked (Salesforce does not enforce
    /// certificate expiry for JWT bearer; the client checks expiry locally).
    pub certificate_pem: String,
    /// Usernames pre-authorized (profile / permission set) to use the app.
    pub pre_authorized: Vec<String>,
    /// Whether the JWT bearer flow is enabled for the app.
    pub jwt_enabled: bool,
}

impl App {
    /// An app installed in `org` with the given certificate, JWT enabled, nobody
    /// pre-authorized yet (use [`App::pre_authorize`]).
    pub fn new(consumer_key: impl Into<String>, org: &Org, certificate_pem: impl Into<String>) -> App {
        App {
            consumer_key: consumer_key.into(),
            org_id: org.org_id.clone(),
            certificate_pem: certificate_pem.into(),
            pre_authorized: Vec::new(),
            jwt_enabled: true,
        }
    }

    /// A random consumer key in Salesforce's style (`3MVG9…`, 85 characters).
    pub fn random_consumer_key() -> String {
        format!("3MVG9{}", random_alnum(80))
    }

    /// Pre-authorizes a username.
    pub fn pre_authorize(mut self, username: impl Into<String>) -> App {
        self.pre_authorized.push(username.into());
        self
    }

    /// Enables or disables the JWT bearer flow.
    pub fn with_jwt_enabled(mut self, on: bool) -> App {
        self.jwt_enabled = on;
        self
    }

    /// Moves the app to another org.
    pub fn with_org_id(mut self, org_id: impl Into<String>) -> App {
        self.org_id = org_id.into();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_prefix_length_and_checksum() {
        let id = new_salesforce_id("00D");
        assert_eq!(id.len(), 18);
        assert!(id.starts_with("00D"));
        // Known real example: 001A0000006Vm9r -> 001A0000006Vm9rIAC
        assert_eq!(case_safe_suffix("001A0000006Vm9r"), "IAC");
    }

    #[test]
    fn constructors() {
        let org = Org::sandbox("Acme--Partial");
        assert_eq!(org.my_domain, "acme--partial.sandbox");
        assert_eq!(org.host(), "acme--partial.sandbox.my.salesforce.com");
        assert!(org.sandbox);
        let user = User::new("etl@acme.com", &org);
        assert_eq!(user.org_id, org.org_id);
        assert!(user.user_id.starts_with("005"));
        assert_eq!(user.full_name, "Etl User");
    }
}
