//! Whom the REST client trusts when it talks HTTPS to a router: only the CA in
//! a file, a certificate pinned by its SHA-256 fingerprint (what suits the
//! self-signed certificates and IP-literal URLs routers usually have), the
//! system's roots, or — on explicit request — anyone.
//!
//! Every choice records the leaf certificate the router showed, so `knockr
//! routeros check` can print its fingerprint. This module builds rustls
//! configurations only: it never opens a connection and never reads the password.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest as _, Sha256};

/// How the router's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The system's root certificates (a router with a publicly trusted certificate).
    System,
    /// Only the CA certificates in this PEM file; the URL's host must be in the certificate.
    CaFile(PathBuf),
    /// Only a leaf certificate with this SHA-256 digest; names and chain are not
    /// checked, the handshake's signatures still are.
    Fingerprint([u8; 32]),
    /// Any certificate at all: a man in the middle gets the password.
    Insecure,
}

impl Trust {
    /// Says in a few words how the identity is checked, for `routeros check`.
    pub fn describe(&self) -> String {
        match self {
            Trust::System => "system root certificates".into(),
            Trust::CaFile(path) => format!("CA file {}", path.display()),
            Trust::Fingerprint(pin) => format!("pinned fingerprint {}", fingerprint_text(pin)),
            Trust::Insecure => "NOT VERIFIED (insecure = true)".into(),
        }
    }
}

/// The SHA-256 digest of the last leaf certificate a router showed; shared
/// between a client's verifier (which writes it) and whoever reports it.
pub type SeenLeaf = Arc<Mutex<Option<[u8; 32]>>>;

/// `sha256:AB:CD:..` as RouterOS and openssl print fingerprints.
pub fn fingerprint_text(digest: &[u8; 32]) -> String {
    let hex: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
    format!("sha256:{}", hex.join(":"))
}

/// Reads `sha256:HEX` (64 hex digits, colons and case free).
pub fn parse_fingerprint(text: &str) -> Result<[u8; 32], String> {
    let bad = || {
        format!(
            "fingerprint {text:?} is not understood: expected \"sha256:\" and 64 hex digits \
             (colons allowed), e.g. the output of `openssl x509 -noout -fingerprint -sha256`"
        )
    };
    let lower = text.trim().to_ascii_lowercase();
    let hex: String = lower
        .strip_prefix("sha256:")
        .or_else(|| lower.strip_prefix("sha256 fingerprint="))
        .ok_or_else(bad)?
        .chars()
        .filter(|c| *c != ':')
        .collect();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let mut digest = [0u8; 32];
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(digest)
}

/// The crypto provider: ring, so the build needs no C toolchain for aws-lc.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A rustls client configuration that checks certificates as `trust` says
/// and records each leaf's digest in `seen`.
pub fn client_config(trust: &Trust, seen: SeenLeaf) -> Result<rustls::ClientConfig, String> {
    let provider = provider();
    let inner: Arc<dyn ServerCertVerifier> = match trust {
        Trust::System => Arc::new(
            rustls_platform_verifier::Verifier::new(provider.clone())
                .map_err(|err| format!("cannot load the system's root certificates: {err}"))?,
        ),
        Trust::CaFile(path) => {
            let mut roots = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
                .map_err(|err| format!("cannot read the CA file {}: {err}", path.display()))?;
            for cert in certs {
                roots.add(cert).map_err(|err| {
                    format!(
                        "the CA file {} holds an unusable certificate: {err}",
                        path.display()
                    )
                })?;
            }
            if roots.is_empty() {
                return Err(format!(
                    "the CA file {} holds no certificate: expected PEM (-----BEGIN CERTIFICATE-----)",
                    path.display()
                ));
            }
            rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider.clone(),
            )
            .build()
            .map_err(|err| format!("the CA file {} cannot be used: {err}", path.display()))?
        }
        Trust::Fingerprint(pin) => Arc::new(Pinned {
            pin: Some(*pin),
            provider: provider.clone(),
        }),
        Trust::Insecure => Arc::new(Pinned {
            pin: None,
            provider: provider.clone(),
        }),
    };
    let verifier = Arc::new(Recording { inner, seen });
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| format!("TLS set-up failed: {err}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // The REST API is HTTP/1.1; say so, so a router never picks anything else.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Records the leaf's digest, then lets `inner` decide.
#[derive(Debug)]
struct Recording {
    inner: Arc<dyn ServerCertVerifier>,
    seen: SeenLeaf,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let digest: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(digest);
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Accepts the leaf whose SHA-256 equals `pin` (compared in constant time),
/// or any leaf when `pin` is `None` (insecure). The handshake signatures are
/// verified either way, so the server must hold the certificate's key.
#[derive(Debug)]
struct Pinned {
    pin: Option<[u8; 32]>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        use subtle::ConstantTimeEq as _;
        let Some(pin) = self.pin else {
            return Ok(ServerCertVerified::assertion());
        };
        let digest: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if bool::from(digest.ct_eq(&pin)) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "the router's certificate has fingerprint {}, not the pinned {}",
                fingerprint_text(&digest),
                fingerprint_text(&pin)
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_read_in_the_usual_spellings_and_print_back() {
        let colons = "sha256:".to_string() + &["AB"; 32].join(":");
        assert_eq!(parse_fingerprint(&colons).unwrap(), [0xAB; 32]);
        let plain = "SHA256:".to_string() + &"0f".repeat(32);
        assert_eq!(parse_fingerprint(&plain).unwrap(), [0x0F; 32]);
        let openssl = "sha256 Fingerprint=".to_string() + &["01"; 32].join(":");
        assert_eq!(parse_fingerprint(&openssl).unwrap(), [1; 32]);
        assert_eq!(fingerprint_text(&[0xAB; 32]), colons);
        for bad in [
            "ab".repeat(32),
            "sha256:abc".into(),
            "sha1:".to_string() + &"ab".repeat(20),
        ] {
            let err = parse_fingerprint(&bad).unwrap_err();
            assert!(
                err.contains("expected \"sha256:\" and 64 hex digits"),
                "{err}"
            );
        }
    }
}
