//! Client TLS for outbound SMTP: STARTTLS towards MX hosts and relay hosts, and implicit TLS
//! towards a relay's 465-style port.
//!
//! Towards MX hosts certificates are not verified: MX hosts are found through unauthenticated
//! DNS, so checking the name in the certificate would prove nothing (RFC 7435 opportunistic
//! security). Handshake signatures are still verified. Towards the relay host, which gets our
//! login, the certificate is verified by default (`outgoing_mails.relay.verify_certificate`)
//! against the system's trust store plus `outgoing_mails.relay.ca_file`.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use tokio_rustls::TlsConnector;

/// The connector shared by every outbound connection (built once).
pub fn connector() -> TlsConnector {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(AnyCertificate {
            algorithms: provider.signature_verification_algorithms,
        });
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default TLS versions")
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Arc::new(config)
    });
    TlsConnector::from(config.clone())
}

/// Where Debian keeps the system's trusted certificates.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Why the relay host's certificate cannot be verified.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// A CA file could not be read or parsed.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// No trust anchors at all.
    #[error("no trusted certificates to verify the relay host with: {0}")]
    NoRoots(String),
    /// rustls refused the configuration.
    #[error("{0}")]
    Tls(#[from] rustls::Error),
}

/// A connector that verifies the server's certificate chain and name against the system's
/// trust store plus the certificates in `ca_file` (if not empty).
pub fn verified_connector(ca_file: &str) -> Result<TlsConnector, CaError> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let file_error = |path: &str, message: String| CaError::File {
        path: path.to_string(),
        message,
    };
    let mut add = |path: &str, required: bool| -> Result<(), CaError> {
        let certs = match CertificateDer::pem_file_iter(path) {
            Ok(it) => it
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| file_error(path, e.to_string()))?,
            Err(_) if !required => return Ok(()),
            Err(e) => return Err(file_error(path, e.to_string())),
        };
        if required && certs.is_empty() {
            return Err(file_error(path, "no certificate in the file".into()));
        }
        roots.add_parsable_certificates(certs);
        Ok(())
    };
    add(SYSTEM_CA_BUNDLE, false)?;
    if !ca_file.is_empty() {
        add(ca_file, true)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| CaError::NoRoots(e.to_string()))?;
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_webpki_verifier(verifier)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The name sent in SNI: the host name when it is one, else the address (no SNI is sent).
pub fn server_name(host: &str, ip: IpAddr) -> ServerName<'static> {
    ServerName::try_from(host.to_string()).unwrap_or_else(|_| ServerName::IpAddress(ip.into()))
}

/// Accepts any certificate, but checks that the handshake was signed with its key.
#[derive(Debug)]
struct AnyCertificate {
    /// Signature algorithms of the crypto provider.
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
