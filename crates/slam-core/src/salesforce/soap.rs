//! SOAP `login()` (partner API) with username, password and security token.
//!
//! Salesforce is retiring it: not available from API 65.0, off by default in new
//! orgs. The request is built with proper XML escaping (a password full of
//! `& < > " '` must arrive intact) and the answer is parsed as XML, not with string
//! searches: success elements come unprefixed in the default namespace, faults with
//! `soapenv:` and `sf:` prefixes.

use super::{LoginDomain, LoginError, SalesforceClient, Session, http};
use crate::secret::{ExposeSecret, Secret, secret};
use quick_xml::events::Event;
use quick_xml::reader::Reader;
use zeroize::Zeroizing;

/// Builds the login envelope. The password element carries password + token.
fn envelope(username: &str, password: &Secret, token: &Secret) -> Zeroizing<String> {
    let mut credential = Zeroizing::new(String::new());
    credential.push_str(password.expose_secret());
    credential.push_str(token.expose_secret());
    let escaped_credential = Zeroizing::new(quick_xml::escape::escape(credential.as_str()).into_owned());
    Zeroizing::new(format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
         <env:Envelope xmlns:env=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         xmlns:urn=\"urn:partner.soap.sforce.com\">\
         <env:Header><urn:CallOptions><urn:client>SpeedifulSLAM/{version}</urn:client></urn:CallOptions></env:Header>\
         <env:Body><urn:login><urn:username>{username}</urn:username>\
         <urn:password>{credential}</urn:password></urn:login></env:Body></env:Envelope>",
        version = env!("CARGO_PKG_VERSION"),
        username = quick_xml::escape::escape(username),
        credential = escaped_credential.as_str(),
    ))
}

/// Text of every leaf element, keyed by the path of local names (prefixes dropped).
fn leaves(xml: &str) -> Option<Vec<(Vec<String>, String)>> {
    let mut reader = Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut out = Vec::new();
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => {
                path.push(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
                text.clear();
            }
            Event::Text(t) => text.push_str(&t.decode().ok()?),
            Event::CData(t) => text.push_str(&String::from_utf8_lossy(&t)),
            Event::GeneralRef(r) => match r.resolve_char_ref().ok()? {
                Some(c) => text.push(c),
                None => text.push_str(quick_xml::escape::resolve_predefined_entity(&r.decode().ok()?)?),
            },
            Event::End(_) => {
                if !text.is_empty() {
                    out.push((path.clone(), std::mem::take(&mut text)));
                }
                path.pop();
            }
            Event::Eof => return Some(out),
            _ => {}
        }
    }
}

fn find<'a>(leaves: &'a [(Vec<String>, String)], suffix: &[&str]) -> Option<&'a str> {
    leaves
        .iter()
        .find(|(path, _)| path.len() >= suffix.len() && path[path.len() - suffix.len()..].iter().eq(suffix.iter()))
        .map(|(_, text)| text.as_str())
}

pub(super) async fn login(
    client: &SalesforceClient,
    domain: &LoginDomain,
    username: &str,
    password: &Secret,
    token: &Secret,
    api_version: i64,
) -> Result<Session, LoginError> {
    let host = domain.host();
    let url = format!("{}/services/Soap/u/{api_version}.0", domain.base_url());
    let body = secret(envelope(username, password, token).as_str());
    tracing::debug!(host, api_version, "SOAP login request");
    let answer = http::send(&client.settings, &host, http::Idempotency::Login, || {
        client
            .http
            .post(&url)
            .header("Content-Type", "text/xml; charset=UTF-8")
            .header("SOAPAction", "login")
            .body(body.expose_secret().to_string())
    })
    .await?;
    let unexpected = || LoginError::Unexpected {
        url: url.clone(),
        status: answer.status,
        // A 200 body may hold a live session id: describe it, never quote it.
        snippet: if answer.status == 200 {
            super::describe_success_body(&answer)
        } else {
            super::snippet(&answer.body)
        },
    };
    let parsed = leaves(&answer.body).ok_or_else(unexpected)?;
    if answer.status == 200 {
        let field = |name: &str| find(&parsed, &["result", name]).map(str::to_string);
        let (Some(session_id), Some(server_url)) = (field("sessionId"), field("serverUrl")) else {
            return Err(unexpected());
        };
        if field("passwordExpired").as_deref() == Some("true") {
            return Err(LoginError::PasswordExpired);
        }
        let instance_url = match server_url.find("/services/") {
            Some(i) => server_url[..i].to_string(),
            None => return Err(unexpected()),
        };
        super::check_instance_url(&instance_url)?;
        let org_id = find(&parsed, &["userInfo", "organizationId"]).unwrap_or_default().to_string();
        return Ok(Session {
            access_token: secret(session_id),
            instance_url,
            org_id,
            user_id: field("userId").unwrap_or_default(),
            audience: None,
        });
    }
    let code = find(&parsed, &["exceptionCode"])
        .map(str::to_string)
        .or_else(|| find(&parsed, &["faultcode"]).map(|c| c.rsplit(':').next().unwrap_or(c).to_string()));
    let message = find(&parsed, &["exceptionMessage"])
        .map(str::to_string)
        .or_else(|| find(&parsed, &["faultstring"]).map(str::to_string));
    match (code, message) {
        (Some(code), Some(message)) => Err(LoginError::SoapFault { code, message }),
        _ => Err(unexpected()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_escapes_credentials_and_round_trips() {
        let xml = envelope("o'brien&co@acme.com", &secret("p<a>s&s\"w'ord ünï"), &secret("T0K&N"));
        let parsed = leaves(&xml).unwrap();
        assert_eq!(find(&parsed, &["login", "username"]), Some("o'brien&co@acme.com"));
        assert_eq!(find(&parsed, &["login", "password"]), Some("p<a>s&s\"w'ord ünïT0K&N"));
        assert!(!xml.contains("p<a>"));
    }

    #[test]
    fn fault_with_prefixes_is_read() {
        let fault = r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault><faultcode>sf:INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN: Invalid username, password, security token; or user locked out.</faultstring><detail><sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode><sf:exceptionMessage>Invalid username, password, security token; or user locked out.</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#;
        let parsed = leaves(fault).unwrap();
        assert_eq!(find(&parsed, &["exceptionCode"]), Some("INVALID_LOGIN"));
        assert_eq!(
            find(&parsed, &["exceptionMessage"]),
            Some("Invalid username, password, security token; or user locked out.")
        );
    }
}
