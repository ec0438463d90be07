//! RSA key pairs and self-signed certificates for JWT bearer tests.

use std::sync::OnceLock;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_RSA_SHA256};
use rsa::RsaPrivateKey;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use time::OffsetDateTime;

/// An RSA-2048 private key and a self-signed certificate for it, as a JWT bearer app uses.
#[derive(Debug, Clone)]
pub struct TestKeyPair {
    /// The private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub private_key_pem: String,
    /// The same private key as PKCS#1 PEM (`-----BEGIN RSA PRIVATE KEY-----`).
    pub private_key_pkcs1_pem: String,
    /// The self-signed certificate (upload this to the [`crate::App`]).
    pub certificate_pem: String,
}

impl TestKeyPair {
    /// Generates a fresh key and a certificate valid from one day ago for one year.
    /// RSA key generation takes ~0.1–1 s; prefer [`TestKeyPair::shared`] when any key will do.
    pub fn generate() -> TestKeyPair {
        let now = OffsetDateTime::now_utc();
        Self::generate_with_validity(now - time::Duration::days(1), now + time::Duration::days(365))
    }

    /// Generates a fresh key and a certificate valid between the given instants (use a past
    /// `not_after` to get an expired certificate; the fake still accepts it, like Salesforce).
    pub fn generate_with_validity(not_before: OffsetDateTime, not_after: OffsetDateTime) -> TestKeyPair {
        let key = RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("RSA key generation");
        Self::from_rsa_key(&key, not_before, not_after)
    }

    fn from_rsa_key(key: &RsaPrivateKey, not_before: OffsetDateTime, not_after: OffsetDateTime) -> TestKeyPair {
        let pkcs8 = key.to_pkcs8_pem(LineEnding::LF).expect("PKCS#8 encoding");
        let pkcs1 = key.to_pkcs1_pem(LineEnding::LF).expect("PKCS#1 encoding");
        let signing = KeyPair::from_pem_and_sign_algo(&pkcs8, &PKCS_RSA_SHA256).expect("rcgen RSA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("cert params");
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "SLAM JWT test app");
        params.distinguished_name = dn;
        params.not_before = not_before;
        params.not_after = not_after;
        let cert = params.self_signed(&signing).expect("self-signed cert");
        TestKeyPair {
            private_key_pem: pkcs8.to_string(),
            private_key_pkcs1_pem: pkcs1.to_string(),
            certificate_pem: cert.pem(),
        }
    }

    /// A process-wide key pair generated once on first use.
    pub fn shared() -> &'static TestKeyPair {
        static SHARED: OnceLock<TestKeyPair> = OnceLock::new();
        SHARED.get_or_init(TestKeyPair::generate)
    }

    /// Signs `claims` as an RS256 JWT with this key (the test-side stand-in for the client).
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        let key = EncodingKey::from_rsa_pem(self.private_key_pem.as_bytes()).expect("RSA PEM key");
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &key).expect("JWT signing")
    }
}
