//! The fake's private PKI: a test CA and a server certificate for Salesforce host names.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// Host names the server certificate is valid for.
pub const SERVER_SANS: [&str; 6] = [
    "*.salesforce.com",
    "login.salesforce.com",
    "test.salesforce.com",
    "*.my.salesforce.com",
    "*.sandbox.my.salesforce.com",
    "*.develop.my.salesforce.com",
];

pub(crate) struct TestPki {
    pub ca_pem: String,
    pub server_config: Arc<rustls::ServerConfig>,
}

pub(crate) fn generate() -> Result<TestPki, Box<dyn std::error::Error + Send + Sync>> {
    issue(&Issue {
        ca_name: "SLAM Test CA",
        names: &SERVER_SANS,
        common_name: "fake.salesforce.com",
        tls12_only: false,
        alpn: Some(b"http/1.1"),
    })
}

/// What a fake server's certificate and TLS configuration look like.
pub(crate) struct Issue<'a> {
    /// The test CA's common name.
    pub ca_name: &'a str,
    /// Host names (and IP addresses) the server certificate is valid for.
    pub names: &'a [&'a str],
    /// The server certificate's common name.
    pub common_name: &'a str,
    /// Offer TLS 1.2 only (otherwise rustls' safe defaults).
    pub tls12_only: bool,
    /// The one ALPN protocol to offer, if any.
    pub alpn: Option<&'a [u8]>,
}

/// A fresh test CA and a server certificate it signs, as a rustls server configuration.
pub(crate) fn issue(issue: &Issue<'_>) -> Result<TestPki, Box<dyn std::error::Error + Send + Sync>> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, issue.ca_name);
    ca_params.distinguished_name = dn;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key)?;

    let server_key = KeyPair::generate()?;
    let mut params = CertificateParams::new(issue.names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, issue.common_name);
    params.distinguished_name = dn;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    let server_cert = params.signed_by(&server_key, &ca)?;

    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    let builder = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()));
    let builder = if issue.tls12_only {
        builder.with_protocol_versions(&[&rustls::version::TLS12])?
    } else {
        builder.with_safe_default_protocol_versions()?
    };
    let mut config =
        builder.with_no_client_auth().with_single_cert(vec![server_cert.der().clone(), ca.der().clone()], key_der)?;
    if let Some(alpn) = issue.alpn {
        config.alpn_protocols = vec![alpn.to_vec()];
    }
    Ok(TestPki { ca_pem: ca.pem(), server_config: Arc::new(config) })
}
