//! Server TLS: the rustls configuration for STARTTLS and the implicit-TLS port.
//!
//! The certificate and key come from the PEM files of `smtp.tls.*`; when none are configured a
//! self-signed certificate for `server.hostname` is generated once (rcgen) and kept in
//! `DATA/tls/`, so clients that pin it keep seeing the same one.

use crate::engine::config::Config;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a TLS handshake may take.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a TLS handshake did not complete (the session then ends, for this reason).
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// No certificate could be loaded.
    #[error("TLS is not available")]
    Unavailable,
    /// The handshake failed.
    #[error("TLS handshake failed: {0}")]
    Failed(std::io::Error),
    /// The client took too long.
    #[error("TLS handshake timed out")]
    TimedOut,
}

/// The server side of a TLS handshake on `io` (STARTTLS, STLS, or an implicit-TLS port),
/// for every protocol: the encrypted stream and the protocol version, for the log.
pub async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    acceptor: &TlsAcceptor,
    io: S,
) -> Result<(TlsStream<S>, String), HandshakeError> {
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(io)).await {
        Ok(Ok(tls)) => {
            let version = tls
                .get_ref()
                .1
                .protocol_version()
                .map(|v| format!("{v:?}"))
                .unwrap_or_default();
            Ok((tls, version))
        }
        Ok(Err(e)) => Err(HandshakeError::Failed(e)),
        Err(_) => Err(HandshakeError::TimedOut),
    }
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The self-signed certificate could not be made or written.
    #[error("cannot create a self-signed certificate in {path}: {message}")]
    SelfSigned {
        /// Where it was to be written.
        path: PathBuf,
        /// Why not.
        message: String,
    },
    /// rustls refused the certificate/key pair.
    #[error("certificate and key do not work together: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The certificate and key files in use: the configured ones, or the self-signed pair.
pub fn cert_paths(cfg: &Config, data_dir: &Path) -> (PathBuf, PathBuf) {
    if cfg.smtp.tls.certificate.is_empty() {
        let dir = data_dir.join("tls");
        (dir.join("cert.pem"), dir.join("key.pem"))
    } else {
        (
            PathBuf::from(&cfg.smtp.tls.certificate),
            PathBuf::from(&cfg.smtp.tls.key),
        )
    }
}

/// Builds the acceptor, generating the self-signed pair first if needed.
pub fn acceptor(cfg: &Config, data_dir: &Path) -> Result<TlsAcceptor, TlsError> {
    let (cert_path, key_path) = cert_paths(cfg, data_dir);
    if cfg.smtp.tls.certificate.is_empty() && !(cert_path.exists() && key_path.exists()) {
        generate_self_signed(&cfg.server.hostname, &cert_path, &key_path)?;
    }
    let pem = |path: &Path, message: String| TlsError::Pem {
        path: path.to_path_buf(),
        message,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| pem(&cert_path, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem(&cert_path, e.to_string()))?;
    if certs.is_empty() {
        return Err(pem(&cert_path, "no certificate in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| pem(&key_path, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn generate_self_signed(host: &str, cert_path: &Path, key_path: &Path) -> Result<(), TlsError> {
    let fail = |message: String| TlsError::SelfSigned {
        path: cert_path.to_path_buf(),
        message,
    };
    // The loopback names and addresses too, so a client on this machine can verify it.
    let names = vec![
        host.to_string(),
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let mut params = rcgen::CertificateParams::new(names).map_err(|e| fail(e.to_string()))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, host);
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Postern (self-signed)");
    let key = rcgen::KeyPair::generate().map_err(|e| fail(e.to_string()))?;
    let cert = params.self_signed(&key).map_err(|e| fail(e.to_string()))?;
    if let Some(dir) = cert_path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    }
    write_private(key_path, key.serialize_pem().as_bytes()).map_err(|e| fail(e.to_string()))?;
    crate::engine::config::file::write_atomic(cert_path, cert.pem().as_bytes())
        .map_err(|e| fail(e.to_string()))
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = crate::engine::config::file::with_suffix(path, ".tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
/// A TLS acceptor with a throwaway self-signed certificate for `name` (tests).
#[cfg(test)]
pub(crate) fn test_acceptor(name: &str) -> TlsAcceptor {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![name.to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let key = PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

/// Stands in for the stream while the TLS handshake has it: reads see end of file, writes
/// fail.
pub struct Detached;

impl AsyncRead for Detached {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Detached {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Err(std::io::ErrorKind::NotConnected.into()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
