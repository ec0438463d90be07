//! Key material, without any file IO: generate an RSA keypair with its self-signed
//! certificate, and read back what a certificate or private key file says.
//!
//! What we write must be readable by everything a DBA might check it with, above
//! all `openssl`, and by Salesforce. Hence PKCS#8 with PBES2 = PBKDF2-HMAC-SHA256 +
//! AES-256-CBC (what `openssl genpkey -aes-256-cbc` writes, at a far higher
//! iteration count), not scrypt: `pkcs8`'s default scrypt parameters need 128 MiB,
//! over OpenSSL's 32 MiB default limit, so `openssl pkey` could not open the key.

use crate::keys::KeyName;
use crate::secret::{ExposeSecret, Secret};
use pkcs8::der::{Decode, DecodePem, Encode};
use pkcs8::{EncodePrivateKey, LineEnding, PrivateKeyInfo};
use rand::RngCore;
use rsa::RsaPrivateKey;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// RSA modulus size. Salesforce accepts 2048-bit keys for JWT Bearer; larger keys
/// only slow every login.
pub const RSA_BITS: usize = 2048;

/// PBKDF2-HMAC-SHA256 iterations protecting the private key: OWASP's current
/// guidance (Password Storage Cheat Sheet, 600,000 for PBKDF2-HMAC-SHA256).
pub const PBKDF2_ITERATIONS: u32 = 600_000;

/// PEM label of a passphrase-protected PKCS#8 key.
const ENCRYPTED_LABEL: &str = "ENCRYPTED PRIVATE KEY";

/// Failures while creating or reading key material.
#[derive(Debug, thiserror::Error)]
pub enum MaterialError {
    /// RSA key generation failed.
    #[error("RSA key generation failed")]
    Rsa(#[source] rsa::Error),
    /// PKCS#8 encoding or encryption failed.
    #[error("encoding the private key as PKCS#8 failed")]
    Pkcs8(#[source] pkcs8::Error),
    /// Building or signing the certificate failed.
    #[error("creating the self-signed certificate failed")]
    Certificate(#[source] rcgen::Error),
    /// A certificate could not be parsed.
    #[error("not a readable PEM X.509 certificate")]
    UnreadableCertificate(#[source] pkcs8::der::Error),
}

/// What a certificate says, in the terms a DBA checks it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The subject, e.g. `CN=acme-prod`.
    pub subject: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity: after this instant Salesforce refuses JWTs signed by the key.
    pub not_after: OffsetDateTime,
    /// SHA-1 of the DER certificate, colon-separated upper-case hex (`openssl x509 -fingerprint`).
    pub sha1_fingerprint: String,
    /// SHA-256 of the DER certificate, same format.
    pub sha256_fingerprint: String,
}

impl CertificateInfo {
    /// True when the certificate is no longer valid at `now`.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        now > self.not_after
    }

    /// Whole days from `now` until expiry (negative once expired).
    pub fn days_left(&self, now: OffsetDateTime) -> i64 {
        (self.not_after - now).whole_days()
    }
}

/// A freshly generated keypair, ready to be written.
pub struct GeneratedKeypair {
    /// The private key, PKCS#8 PEM; encrypted when a passphrase was given.
    pub private_key_pem: Zeroizing<String>,
    /// The self-signed certificate, PEM.
    pub certificate_pem: String,
    /// What the certificate says.
    pub certificate: CertificateInfo,
}

/// Generates an RSA-2048 key and a self-signed SHA-256 certificate with subject
/// `CN={name}`, valid from `not_before` to `not_after`.
pub fn generate(
    name: &KeyName,
    passphrase: Option<&Secret>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<GeneratedKeypair, MaterialError> {
    let mut rng = rand::thread_rng();
    let key = RsaPrivateKey::new(&mut rng, RSA_BITS).map_err(MaterialError::Rsa)?;
    let plain_pem = key.to_pkcs8_pem(LineEnding::LF).map_err(MaterialError::Pkcs8)?;

    let signer = rcgen::KeyPair::from_pem_and_sign_algo(&plain_pem, &rcgen::PKCS_RSA_SHA256)
        .map_err(MaterialError::Certificate)?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, name.as_str());
    params.not_before = not_before;
    params.not_after = not_after;
    params.serial_number = Some(random_serial(&mut rng));
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    let certificate = params.self_signed(&signer).map_err(MaterialError::Certificate)?;
    let certificate_pem = certificate.pem();
    let certificate_info = inspect_certificate(certificate_pem.as_bytes())?;

    let private_key_pem = match passphrase {
        None => plain_pem,
        Some(passphrase) => encrypt_private_key(&key, passphrase, &mut rng)?,
    };
    Ok(GeneratedKeypair { private_key_pem, certificate_pem, certificate: certificate_info })
}

fn encrypt_private_key(
    key: &RsaPrivateKey,
    passphrase: &Secret,
    rng: &mut impl RngCore,
) -> Result<Zeroizing<String>, MaterialError> {
    let der = key.to_pkcs8_der().map_err(MaterialError::Pkcs8)?;
    let info = PrivateKeyInfo::from_der(der.as_bytes()).map_err(|e| MaterialError::Pkcs8(e.into()))?;
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    rng.fill_bytes(&mut salt);
    rng.fill_bytes(&mut iv);
    let params = pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(PBKDF2_ITERATIONS, &salt, &iv)
        .map_err(|e| MaterialError::Pkcs8(e.into()))?;
    let encrypted =
        info.encrypt_with_params(params, passphrase.expose_secret().as_bytes()).map_err(MaterialError::Pkcs8)?;
    encrypted.to_pem(ENCRYPTED_LABEL, LineEnding::LF).map_err(|e| MaterialError::Pkcs8(e.into()))
}

/// A positive 128-bit serial (RFC 5280 allows up to 20 octets; positive means the
/// top bit clear).
fn random_serial(rng: &mut impl RngCore) -> rcgen::SerialNumber {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    rcgen::SerialNumber::from_slice(&bytes)
}

/// Reads subject, validity and fingerprints from a PEM certificate.
pub fn inspect_certificate(pem: &[u8]) -> Result<CertificateInfo, MaterialError> {
    let cert = x509_cert::Certificate::from_pem(pem).map_err(MaterialError::UnreadableCertificate)?;
    let der = cert.to_der().map_err(MaterialError::UnreadableCertificate)?;
    let validity = &cert.tbs_certificate.validity;
    Ok(CertificateInfo {
        subject: cert.tbs_certificate.subject.to_string(),
        not_before: to_offset(validity.not_before.to_unix_duration()),
        not_after: to_offset(validity.not_after.to_unix_duration()),
        sha1_fingerprint: colon_hex(&Sha1::digest(&der)),
        sha256_fingerprint: colon_hex(&Sha256::digest(&der)),
    })
}

/// Whether a private-key PEM is passphrase-protected: `Some(true)` for
/// `ENCRYPTED PRIVATE KEY` (and legacy `Proc-Type: 4,ENCRYPTED` PEM), `Some(false)`
/// for another key label, `None` if it is not a PEM private key at all.
pub fn private_key_is_encrypted(pem: &str) -> Option<bool> {
    let begin = pem.lines().map(str::trim).find(|l| l.starts_with("-----BEGIN "))?;
    let label = begin.strip_prefix("-----BEGIN ")?.strip_suffix("-----")?;
    if !label.ends_with("PRIVATE KEY") {
        return None;
    }
    Some(label == ENCRYPTED_LABEL || pem.contains("Proc-Type: 4,ENCRYPTED"))
}

/// Why a private key file could not be turned into a signing key.
#[derive(Debug, thiserror::Error)]
pub enum UnlockError {
    /// Encrypted, and no passphrase was given.
    #[error("the private key is encrypted and no passphrase was given")]
    PassphraseRequired,
    /// The passphrase did not decrypt it.
    #[error("the passphrase does not decrypt the private key")]
    PassphraseWrong,
    /// Not a PEM RSA private key we can read.
    #[error("not a PEM RSA private key (PKCS#8, encrypted PKCS#8 or PKCS#1)")]
    Unreadable,
    /// The certificate's public key is not this key's.
    #[error("the private key does not belong to the certificate")]
    Mismatch,
}

/// A private key ready to sign JWTs.
pub struct SigningKey {
    /// PKCS#1 DER (what `jsonwebtoken`'s RS256 signer takes), wiped on drop.
    pub pkcs1_der: Zeroizing<Vec<u8>>,
    /// Whether the file was passphrase-protected.
    pub was_encrypted: bool,
}

/// Decrypts (if needed) a private key PEM and checks it belongs to `certificate_pem`.
pub fn unlock_private_key(
    key_pem: &str,
    passphrase: Option<&Secret>,
    certificate_pem: &[u8],
) -> Result<SigningKey, UnlockError> {
    use pkcs8::{DecodePrivateKey, EncodePublicKey};
    use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
    let encrypted = private_key_is_encrypted(key_pem).ok_or(UnlockError::Unreadable)?;
    let key = if encrypted {
        let passphrase = passphrase.ok_or(UnlockError::PassphraseRequired)?;
        RsaPrivateKey::from_pkcs8_encrypted_pem(key_pem, passphrase.expose_secret().as_bytes())
            .map_err(|_| UnlockError::PassphraseWrong)?
    } else {
        RsaPrivateKey::from_pkcs8_pem(key_pem)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(key_pem))
            .map_err(|_| UnlockError::Unreadable)?
    };
    let cert = x509_cert::Certificate::from_pem(certificate_pem).map_err(|_| UnlockError::Mismatch)?;
    let cert_spki = cert.tbs_certificate.subject_public_key_info.to_der().map_err(|_| UnlockError::Mismatch)?;
    let key_spki = key.to_public_key().to_public_key_der().map_err(|_| UnlockError::Unreadable)?;
    if cert_spki != key_spki.as_bytes() {
        return Err(UnlockError::Mismatch);
    }
    let der = key.to_pkcs1_der().map_err(|_| UnlockError::Unreadable)?;
    Ok(SigningKey { pkcs1_der: Zeroizing::new(der.as_bytes().to_vec()), was_encrypted: encrypted })
}

fn to_offset(since_epoch: std::time::Duration) -> OffsetDateTime {
    let seconds = i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX);
    // X.509 times are at most year 9999, always in range for OffsetDateTime.
    OffsetDateTime::from_unix_timestamp(seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::secret;
    use pkcs8::DecodePrivateKey;
    use rsa::traits::PublicKeyParts;
    use time::Duration;

    fn name() -> KeyName {
        KeyName::parse("unit-test").unwrap()
    }

    #[test]
    fn encrypted_key_round_trips_only_with_its_passphrase() {
        let now = OffsetDateTime::now_utc();
        let pass = secret("corr3ct horse & <battery> \"staple\" ünïcode");
        let kp = generate(&name(), Some(&pass), now, now + Duration::days(1)).unwrap();
        assert!(kp.private_key_pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        assert_eq!(private_key_is_encrypted(&kp.private_key_pem), Some(true));
        let key =
            RsaPrivateKey::from_pkcs8_encrypted_pem(&kp.private_key_pem, pass.expose_secret().as_bytes()).unwrap();
        assert_eq!(key.size() * 8, RSA_BITS);
        assert!(RsaPrivateKey::from_pkcs8_encrypted_pem(&kp.private_key_pem, b"wrong").is_err());
    }

    #[test]
    fn certificate_says_what_was_asked() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let kp = generate(&name(), None, now, now + Duration::days(30)).unwrap();
        assert_eq!(private_key_is_encrypted(&kp.private_key_pem), Some(false));
        let info = &kp.certificate;
        assert_eq!(info.subject, "CN=unit-test");
        assert_eq!(info.not_before, now);
        assert_eq!(info.not_after, now + Duration::days(30));
        assert_eq!(info.days_left(now), 30);
        assert!(!info.is_expired(now + Duration::days(30)));
        assert!(info.is_expired(now + Duration::days(30) + Duration::seconds(1)));
        assert_eq!(info.sha1_fingerprint.len(), 20 * 3 - 1);
        assert_eq!(info.sha256_fingerprint.len(), 32 * 3 - 1);
        assert_eq!(inspect_certificate(kp.certificate_pem.as_bytes()).unwrap(), *info);
    }

    #[test]
    fn unlocking_checks_passphrase_and_certificate() {
        let now = OffsetDateTime::now_utc();
        let pass = secret("unlock me please");
        let a = generate(&name(), Some(&pass), now, now + Duration::days(1)).unwrap();
        let b = generate(&name(), None, now, now + Duration::days(1)).unwrap();
        let cert_a = a.certificate_pem.as_bytes();
        assert!(unlock_private_key(&a.private_key_pem, Some(&pass), cert_a).unwrap().was_encrypted);
        assert!(matches!(unlock_private_key(&a.private_key_pem, None, cert_a), Err(UnlockError::PassphraseRequired)));
        assert!(matches!(
            unlock_private_key(&a.private_key_pem, Some(&secret("nope")), cert_a),
            Err(UnlockError::PassphraseWrong)
        ));
        assert!(matches!(unlock_private_key(&b.private_key_pem, None, cert_a), Err(UnlockError::Mismatch)));
        let plain = unlock_private_key(&b.private_key_pem, Some(&pass), b.certificate_pem.as_bytes()).unwrap();
        assert!(!plain.was_encrypted);
    }

    #[test]
    fn garbage_is_not_a_certificate_or_key() {
        assert!(inspect_certificate(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err());
        assert_eq!(private_key_is_encrypted("hello"), None);
        assert_eq!(private_key_is_encrypted("-----BEGIN CERTIFICATE-----\n"), None);
        assert_eq!(private_key_is_encrypted("-----BEGIN RSA PRIVATE KEY-----\n"), Some(false));
    }
}
