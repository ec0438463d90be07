//! `@domain`: which Salesforce login server to use, and which JWT audiences go with it.
//!
//! The spec accepts `login`, `test` or a My Domain prefix (`acmecorp.my`,
//! `acmecorp--partial.sandbox.my`), each meaning `https://{domain}.salesforce.com`.
//! DBAs paste whatever their browser shows, so a full host or URL is normalised (and
//! the caller says so); Lightning and Setup hosts are refused with the My Domain to use
//! instead, because they redirect and a redirected POST loses its body.

use std::fmt;

/// Why a domain was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// Empty.
    #[error("`@domain` is empty")]
    Empty,
    /// A Lightning Experience or Setup host.
    #[error("`@domain` {} is a Lightning or Setup address, not a login domain", shown(given))]
    Lightning {
        /// The value given.
        given: String,
        /// The My Domain that most likely belongs to it.
        suggestion: Option<String>,
    },
    /// Anything else.
    #[error("`@domain` {} is not a Salesforce login domain", shown(given))]
    NotSalesforce {
        /// The value given.
        given: String,
    },
}

/// A validated login domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginDomain {
    /// The canonical short form: `login`, `test` or `acme.my`.
    name: String,
    /// Set when the input had to be rewritten (a pasted URL or host).
    normalised_from: Option<String>,
}

/// Production and sandbox audiences, as Salesforce documents them.
pub const LOGIN_AUDIENCE: &str = "https://login.salesforce.com";
/// The audience for sandboxes (and scratch orgs).
pub const TEST_AUDIENCE: &str = "https://test.salesforce.com";

impl LoginDomain {
    /// Parses and normalises `@domain`.
    pub fn parse(given: &str) -> Result<Self, DomainError> {
        let trimmed = given.trim();
        if trimmed.is_empty() {
            return Err(DomainError::Empty);
        }
        let mut host = trimmed.to_ascii_lowercase();
        for scheme in ["https://", "http://"] {
            if let Some(rest) = host.strip_prefix(scheme) {
                host = rest.to_string();
            }
        }
        if let Some(slash) = host.find('/') {
            host.truncate(slash);
        }
        let host = host.trim_end_matches('.').to_string();
        if host.ends_with(".lightning.force.com") || host.contains(".my.salesforce-setup.com") {
            let suggestion = host
                .strip_suffix(".lightning.force.com")
                .or_else(|| host.strip_suffix(".my.salesforce-setup.com"))
                .map(|org| format!("{}.my", org.trim_end_matches(".my")));
            return Err(DomainError::Lightning { given: given.to_string(), suggestion });
        }
        let short = host.strip_suffix(".salesforce.com").unwrap_or(&host).to_string();
        let valid = match short.as_str() {
            "login" | "test" => true,
            other => other.ends_with(".my") && other.split('.').all(is_dns_label) && other.split('.').count() >= 2,
        };
        if !valid {
            return Err(DomainError::NotSalesforce { given: given.to_string() });
        }
        let normalised_from = (short != trimmed).then(|| trimmed.to_string());
        Ok(Self { name: short, normalised_from })
    }

    /// The canonical form, as stored: `login`, `test`, `acme.my`.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// What the user typed, when it had to be rewritten.
    pub fn normalised_from(&self) -> Option<&str> {
        self.normalised_from.as_deref()
    }

    /// The host logins are POSTed to.
    pub fn host(&self) -> String {
        format!("{}.salesforce.com", self.name)
    }

    /// `https://{host}`.
    pub fn base_url(&self) -> String {
        format!("https://{}", self.host())
    }

    /// True for a My Domain (`*.my`), where a second JWT audience may be tried.
    pub fn is_my_domain(&self) -> bool {
        self.name.ends_with(".my")
    }

    /// True for `test` and sandbox or scratch-org My Domains.
    pub fn is_sandbox(&self) -> bool {
        self.name == "test" || self.name.ends_with(".sandbox.my") || self.name.ends_with(".scratch.my")
    }

    /// The JWT audiences to try, in order: the documented login or test server, then
    /// for a My Domain the My Domain URL itself (what works for some orgs in practice).
    pub fn jwt_audiences(&self) -> Vec<String> {
        let documented = if self.is_sandbox() { TEST_AUDIENCE } else { LOGIN_AUDIENCE };
        let mut audiences = vec![documented.to_string()];
        if self.is_my_domain() {
            audiences.push(self.base_url());
        }
        audiences
    }
}

impl fmt::Display for LoginDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Quotes a rejected `@domain` only when it looks like a host or URL. A value passed
/// in the wrong position of a T-SQL call may be a password, which must not be echoed
/// to SSMS or written to SLAM_Log.
fn shown(given: &str) -> String {
    let hostish = given.contains("salesforce")
        || given.contains("force.com")
        || given.contains("://")
        || given.trim_end().ends_with(".my");
    if hostish && given.len() <= 200 && !given.chars().any(char::is_whitespace) {
        format!("{given:?}")
    } else {
        "(value not shown: it does not look like a domain, and may be a secret passed in the wrong position)"
            .to_string()
    }
}

fn is_dns_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_forms_map_to_hosts_and_audiences() {
        let login = LoginDomain::parse("login").unwrap();
        assert_eq!(login.host(), "login.salesforce.com");
        assert_eq!(login.jwt_audiences(), [LOGIN_AUDIENCE]);
        assert_eq!(login.normalised_from(), None);

        let test = LoginDomain::parse("test").unwrap();
        assert_eq!(test.jwt_audiences(), [TEST_AUDIENCE]);

        let prod = LoginDomain::parse("acmecorp.my").unwrap();
        assert_eq!(prod.host(), "acmecorp.my.salesforce.com");
        assert_eq!(prod.jwt_audiences(), [LOGIN_AUDIENCE, "https://acmecorp.my.salesforce.com"]);

        let sandbox = LoginDomain::parse("acmecorp--partial.sandbox.my").unwrap();
        assert!(sandbox.is_sandbox());
        assert_eq!(sandbox.jwt_audiences(), [TEST_AUDIENCE, "https://acmecorp--partial.sandbox.my.salesforce.com"]);
    }

    #[test]
    fn pasted_hosts_and_urls_are_normalised() {
        for pasted in [
            "https://acmecorp.my.salesforce.com/",
            "acmecorp.my.salesforce.com",
            "HTTPS://ACMECORP.MY.SALESFORCE.COM/home/home.jsp",
        ] {
            let d = LoginDomain::parse(pasted).unwrap();
            assert_eq!(d.as_str(), "acmecorp.my", "{pasted}");
            assert_eq!(d.normalised_from(), Some(pasted.trim()), "{pasted}");
        }
        assert_eq!(LoginDomain::parse("https://test.salesforce.com").unwrap().as_str(), "test");
        // Surrounding blanks are trimmed without comment.
        assert_eq!(LoginDomain::parse(" acmecorp.my ").unwrap().normalised_from(), None);
    }

    #[test]
    fn lightning_and_foreign_hosts_are_refused() {
        match LoginDomain::parse("https://acmecorp.lightning.force.com/lightning/page/home") {
            Err(DomainError::Lightning { suggestion, .. }) => assert_eq!(suggestion.as_deref(), Some("acmecorp.my")),
            other => panic!("{other:?}"),
        }
        match LoginDomain::parse("acmecorp--partial.sandbox.lightning.force.com") {
            Err(DomainError::Lightning { suggestion, .. }) => {
                assert_eq!(suggestion.as_deref(), Some("acmecorp--partial.sandbox.my"))
            }
            other => panic!("{other:?}"),
        }
        for bad in ["acmecorp", "example.com", "na1", "login.example.com", "evil.com/.my", "a_b.my", "", "  "] {
            assert!(LoginDomain::parse(bad).is_err(), "{bad:?}");
        }
        let password_in_the_wrong_place = LoginDomain::parse("Summer2026!").unwrap_err().to_string();
        assert!(!password_in_the_wrong_place.contains("Summer2026"), "{password_in_the_wrong_place}");
    }
}
