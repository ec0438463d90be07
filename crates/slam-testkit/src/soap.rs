//! SOAP partner API `login()`: envelope parsing (namespace-aware) and Salesforce's exact
//! fault and success shapes.

use axum::body::Body;
use axum::http::{Response, StatusCode};
use quick_xml::escape::{escape, resolve_predefined_entity};
use quick_xml::events::Event;
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::reader::NsReader;

use crate::routes::{classify, issue_session, with_type};
use crate::server::State;

const XML: &str = "text/xml;charset=UTF-8";
/// The partner WSDL namespace.
pub(crate) const PARTNER_NS: &str = "urn:partner.soap.sforce.com";

const INVALID_LOGIN: &str = "Invalid username, password, security token; or user locked out.";
const MUST_USE_TOKEN: &str = "Invalid username, password, security token; or user locked out. Are you at a new location? When accessing Salesforce--either via a desktop client or the API--from outside of your company's trusted networks, you must add a security token to your password to log in. To get your new security token, log in to Salesforce. From your personal settings, enter Reset My Security Token in the Quick Find box, then select Reset My Security Token.";

/// The `<detail>` element type of a fault.
#[derive(Clone, Copy)]
enum FaultKind {
    Login,
    UnexpectedError,
}

/// A SOAP fault in exactly Salesforce's shape (`soapenv:`/`sf:` prefixes), HTTP 500.
fn fault(kind: FaultKind, code: &str, message: &str) -> Response<Body> {
    let element = match kind {
        FaultKind::Login => "LoginFault",
        FaultKind::UnexpectedError => "UnexpectedErrorFault",
    };
    let message = escape(message);
    let body = format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">"#,
            r#"<soapenv:Body><soapenv:Fault><faultcode>sf:{code}</faultcode><faultstring>{code}: {message}</faultstring>"#,
            r#"<detail><sf:{element} xsi:type="sf:{element}"><sf:exceptionCode>{code}</sf:exceptionCode><sf:exceptionMessage>{message}</sf:exceptionMessage></sf:{element}></detail>"#,
            r#"</soapenv:Fault></soapenv:Body></soapenv:Envelope>"#
        ),
        code = code,
        message = message,
        element = element,
    );
    with_type(StatusCode::INTERNAL_SERVER_ERROR, XML, body)
}

/// A fault for an envelope that is not a parsable `login` request.
fn client_fault(message: &str) -> Response<Body> {
    let body = format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">"#,
            r#"<soapenv:Body><soapenv:Fault><faultcode>soapenv:Client</faultcode><faultstring>{}</faultstring>"#,
            r#"</soapenv:Fault></soapenv:Body></soapenv:Envelope>"#
        ),
        escape(message)
    );
    with_type(StatusCode::INTERNAL_SERVER_ERROR, XML, body)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Username,
    Password,
}

/// Extracts `login/username` and `login/password` (partner namespace, any prefix) with
/// entities and character references resolved. `None` if the XML is malformed or either
/// element is missing.
pub(crate) fn parse_login(xml: &str) -> Option<(String, String)> {
    let mut reader = NsReader::from_str(xml);
    reader.config_mut().trim_text(false);
    let mut in_login = false;
    let mut field: Option<Field> = None;
    let mut text = String::new();
    let (mut username, mut password) = (None, None);
    let partner = Namespace(PARTNER_NS.as_bytes());
    loop {
        let (ns, event) = reader.read_resolved_event().ok()?;
        let in_partner = matches!(ns, ResolveResult::Bound(n) if n == partner);
        match event {
            Event::Start(e) if in_partner => match e.local_name().as_ref() {
                b"login" => in_login = true,
                b"username" if in_login => {
                    field = Some(Field::Username);
                    text.clear();
                }
                b"password" if in_login => {
                    field = Some(Field::Password);
                    text.clear();
                }
                _ => {}
            },
            Event::Empty(e) if in_partner && in_login => match e.local_name().as_ref() {
                b"username" => username = Some(String::new()),
                b"password" => password = Some(String::new()),
                _ => {}
            },
            Event::Text(t) if field.is_some() => text.push_str(&t.xml_content().ok()?),
            Event::CData(t) if field.is_some() => text.push_str(&t.decode().ok()?),
            Event::GeneralRef(r) if field.is_some() => {
                if let Some(c) = r.resolve_char_ref().ok()? {
                    text.push(c);
                } else {
                    let name = r.decode().ok()?;
                    text.push_str(resolve_predefined_entity(&name)?);
                }
            }
            Event::End(e) => {
                if let Some(f) = field.take() {
                    let value = std::mem::take(&mut text);
                    match f {
                        Field::Username => username = Some(value),
                        Field::Password => password = Some(value),
                    }
                } else if in_partner && e.local_name().as_ref() == b"login" {
                    in_login = false;
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Some((username?, password?))
}

/// `POST /services/Soap/u/{version}`.
pub(crate) fn login(state: &mut State, host: &str, version: &str, body: &str) -> Response<Body> {
    let Some((major, _minor)) =
        version.split_once('.').and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
    else {
        return fault(FaultKind::Login, "UNSUPPORTED_API_VERSION", "Invalid Api version specified on URL");
    };
    if major < 31 {
        return fault(FaultKind::Login, "UNSUPPORTED_API_VERSION", "Invalid Api version specified on URL");
    }
    if major >= 65 {
        return fault(
            FaultKind::UnexpectedError,
            "INVALID_OPERATION",
            &format!(
                "The SOAP Login operation is not available in the API version specified ({version}). Refer to the documentation for supported versions."
            ),
        );
    }
    let Some((username, password)) = parse_login(body) else {
        return client_fault("Unable to find a login request with username and password in the envelope");
    };

    let Some(kind) = classify(state, host) else {
        return fault(FaultKind::Login, "INVALID_LOGIN", INVALID_LOGIN);
    };
    let Some((user, org)) =
        state.user(&username).and_then(|u| Some((u, state.org(&u.org_id)?))).filter(|(_, org)| kind.serves(org))
    else {
        return fault(FaultKind::Login, "INVALID_LOGIN", INVALID_LOGIN);
    };
    if password != user.soap_password() {
        if !user.security_token.is_empty() && password == user.password {
            return fault(FaultKind::Login, "LOGIN_MUST_USE_SECURITY_TOKEN", MUST_USE_TOKEN);
        }
        return fault(FaultKind::Login, "INVALID_LOGIN", INVALID_LOGIN);
    }
    if !org.soap_login_enabled {
        return fault(
            FaultKind::UnexpectedError,
            "INVALID_OPERATION",
            "SOAP API login() is disabled by default in this org. Contact the org administrator to enable SOAP API login().",
        );
    }
    if !user.active {
        return fault(FaultKind::Login, "INVALID_LOGIN", INVALID_LOGIN);
    }
    if !user.api_enabled {
        return fault(FaultKind::Login, "API_DISABLED_FOR_ORG", "API is not enabled for this Organization or Partner");
    }
    if org.require_use_any_api_auth && !user.use_any_api_auth {
        // The fault code is documented; this wire text is [unverified].
        return fault(
            FaultKind::Login,
            "INSUFFICIENT_ACCESS",
            "The user doesn't have the Use Any API Auth permission required to call SOAP API login().",
        );
    }
    if !org.api_versions.contains(&major) {
        // An org that does not offer this version (only reachable with a narrowed
        // `Org::api_versions`).
        return fault(FaultKind::Login, "UNSUPPORTED_API_VERSION", "Invalid Api version specified on URL");
    }
    let key = user.username.to_ascii_lowercase();
    if state.soap_logins.get(&key).copied().unwrap_or(0) >= state.login_rate_limit {
        // The limit (3,600/user/hour) is documented; the fault code and text are [unverified].
        // The fake counts over its whole lifetime, not per hour.
        return fault(FaultKind::Login, "LOGIN_RATE_EXCEEDED", "Login Rate Exceeded");
    }

    let (user, org) = (user.clone(), org.clone());
    *state.soap_logins.entry(key).or_insert(0) += 1;
    let session_id = issue_session(state, &org, "AQ", user.password_expired);
    let instance = state.tampered_instance_url.clone().unwrap_or_else(|| org.instance_url());
    let org15 = org.org_id15();
    let body = format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">"#,
            r#"<soapenv:Body><loginResponse><result>"#,
            r#"<metadataServerUrl>{instance}/services/Soap/m/{version}/{org15}</metadataServerUrl>"#,
            r#"<passwordExpired>{expired}</passwordExpired>"#,
            r#"<sandbox>{sandbox}</sandbox>"#,
            r#"<serverUrl>{instance}/services/Soap/u/{version}/{org15}</serverUrl>"#,
            r#"<sessionId>{session}</sessionId>"#,
            r#"<userId>{user_id}</userId>"#,
            r#"<userInfo>"#,
            r#"<accessibilityMode>false</accessibilityMode>"#,
            r#"<currencySymbol>$</currencySymbol>"#,
            r#"<orgAttachmentFileSizeLimit>5242880</orgAttachmentFileSizeLimit>"#,
            r#"<orgDefaultCurrencyIsoCode>USD</orgDefaultCurrencyIsoCode>"#,
            r#"<orgDisallowHtmlAttachments>false</orgDisallowHtmlAttachments>"#,
            r#"<orgHasPersonAccounts>false</orgHasPersonAccounts>"#,
            r#"<organizationId>{org_id}</organizationId>"#,
            r#"<organizationMultiCurrency>false</organizationMultiCurrency>"#,
            r#"<organizationName>{org_name}</organizationName>"#,
            r#"<profileId>00e000000000000AAA</profileId>"#,
            r#"<roleId xsi:nil="true"/>"#,
            r#"<sessionSecondsValid>7200</sessionSecondsValid>"#,
            r#"<userDefaultCurrencyIsoCode xsi:nil="true"/>"#,
            r#"<userEmail>{email}</userEmail>"#,
            r#"<userFullName>{full_name}</userFullName>"#,
            r#"<userId>{user_id}</userId>"#,
            r#"<userLanguage>en_US</userLanguage>"#,
            r#"<userLocale>en_US</userLocale>"#,
            r#"<userName>{username}</userName>"#,
            r#"<userTimeZone>America/Los_Angeles</userTimeZone>"#,
            r#"<userType>Standard</userType>"#,
            r#"<userUiSkin>Theme3</userUiSkin>"#,
            r#"</userInfo></result></loginResponse></soapenv:Body></soapenv:Envelope>"#
        ),
        instance = instance,
        version = escape(version),
        org15 = org15,
        expired = user.password_expired,
        sandbox = org.sandbox,
        session = session_id,
        user_id = escape(&user.user_id),
        org_id = escape(&org.org_id),
        org_name = escape(&org.name),
        email = escape(&user.email),
        full_name = escape(&user.full_name),
        username = escape(&user.username),
    );
    with_type(StatusCode::OK, XML, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prefixed_and_default_namespace_with_entities() {
        let xml = r#"<?xml version="1.0"?><env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com"><env:Header><urn:CallOptions><urn:client>x</urn:client></urn:CallOptions></env:Header><env:Body><n1:login xmlns:n1="urn:partner.soap.sforce.com"><n1:username>a&amp;b@x.com</n1:username><n1:password> p&lt;&gt;&quot;&apos;&#233;&#x20AC;ü<![CDATA[&raw]]>TOKEN</n1:password></n1:login></env:Body></env:Envelope>"#;
        assert_eq!(parse_login(xml), Some(("a&b@x.com".to_owned(), " p<>\"'é€ü&rawTOKEN".to_owned())));
        let xml = r#"<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Body><login xmlns="urn:partner.soap.sforce.com"><username>u</username><password/></login></Body></Envelope>"#;
        assert_eq!(parse_login(xml), Some(("u".to_owned(), String::new())));
    }

    #[test]
    fn rejects_wrong_namespace_and_garbage() {
        let xml =
            r#"<login xmlns="urn:enterprise.soap.sforce.com"><username>u</username><password>p</password></login>"#;
        assert_eq!(parse_login(xml), None);
        assert_eq!(parse_login("<login"), None);
        assert_eq!(parse_login("not xml at all"), None);
    }
}
