//! The fake SQL Server's private PKI: a fresh test CA and a certificate for `localhost` and
//! `127.0.0.1`, served over TLS 1.2 only, as SQL Server does for TLS negotiated inside
//! PRELOGIN (TLS 1.3 is only offered with TDS 8.0 "strict" encryption).

use crate::tls::{Issue, TestPki, issue};

/// Names the server certificate is valid for (the IP address becomes an IP SAN).
pub(crate) const SERVER_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

pub(crate) fn generate() -> Result<TestPki, Box<dyn std::error::Error + Send + Sync>> {
    issue(&Issue {
        ca_name: "SLAM Test SQL Server CA",
        names: &SERVER_NAMES,
        common_name: "localhost",
        tls12_only: true,
        alpn: None,
    })
}
