//! TLS with rustls (ring provider, TLS 1.2 and 1.3): builds the client configuration from
//! [`TlsConfig`] and runs the handshake on a connected socket.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use grete::config::TlsConfig;
use grete::error::{TransportError, TransportErrorKind};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

fn tls_error(message: impl Into<String>) -> TransportError {
    TransportError::new(TransportErrorKind::Tls, message)
}

/// A rustls client configuration for `tls`: its CA file (or the system roots), its client
/// certificate, and verification unless `verify` is false.
pub fn client_config(tls: &TlsConfig) -> Result<Arc<ClientConfig>, TransportError> {
    if tls.client_cert_file.is_some() != tls.client_key_file.is_some() {
        return Err(tls_error(
            "a client certificate needs both client_cert_file and client_key_file",
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| tls_error(format!("TLS setup: {e}")))?;
    let builder = if tls.verify {
        let mut roots = RootCertStore::empty();
        match &tls.ca_file {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| tls_error(format!("CA file {}: {e}", path.display())))?;
                for cert in certs {
                    let cert =
                        cert.map_err(|e| tls_error(format!("CA file {}: {e}", path.display())))?;
                    roots
                        .add(cert)
                        .map_err(|e| tls_error(format!("CA file {}: {e}", path.display())))?;
                }
                if roots.is_empty() {
                    return Err(tls_error(format!(
                        "CA file {} holds no certificate",
                        path.display()
                    )));
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    return Err(tls_error(
                        "no system root certificates found; set a CA file",
                    ));
                }
            }
        }
        builder.with_root_certificates(roots)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
    };
    let config = match (&tls.client_cert_file, &tls.client_key_file) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                .map_err(|e| tls_error(format!("client certificate {}: {e}", cert.display())))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| tls_error(format!("client key {}: {e}", key.display())))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| tls_error(format!("client certificate: {e}")))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Runs the handshake on `stream` (whose timeouts bound it) and returns the session.
pub fn handshake(
    config: Arc<ClientConfig>,
    tls: &TlsConfig,
    host: &str,
    stream: &mut TcpStream,
) -> Result<ClientConnection, TransportError> {
    let name = tls.server_name.as_deref().unwrap_or(host);
    let name = ServerName::try_from(name.to_owned())
        .map_err(|e| tls_error(format!("invalid TLS server name {name:?}: {e}")))?;
    let mut session =
        ClientConnection::new(config, name).map_err(|e| tls_error(format!("TLS setup: {e}")))?;
    // Bounded by the socket's timeouts: each read or write gives up after them.
    while session.is_handshaking() {
        session
            .complete_io(stream)
            .map_err(|e| handshake_error(&e))?;
    }
    // Flush what the handshake left (a TLS 1.3 Finished, for instance).
    while session.wants_write() {
        session.write_tls(stream).map_err(|e| handshake_error(&e))?;
    }
    Ok(session)
}

fn handshake_error(e: &std::io::Error) -> TransportError {
    // rustls wraps its own errors (bad certificate, alerts) as InvalidData.
    match e.kind() {
        std::io::ErrorKind::InvalidData => tls_error(format!("TLS handshake: {e}")),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => TransportError::new(
            TransportErrorKind::ConnectTimeout,
            format!("TLS handshake timed out: {e}"),
        ),
        std::io::ErrorKind::UnexpectedEof => tls_error(format!(
            "the peer closed the connection during the TLS handshake: {e}"
        )),
        _ => {
            let mut t = TransportError::from(std::io::Error::new(e.kind(), e.to_string()));
            t.message = format!("TLS handshake: {}", t.message);
            t
        }
    }
}

/// Plaintext from a TLS session: feeds it `data` read from the socket and returns what it
/// decrypted.
pub fn decrypt(session: &mut ClientConnection, mut data: &[u8]) -> Result<Vec<u8>, TransportError> {
    let mut plain = Vec::new();
    while !data.is_empty() {
        let taken = session
            .read_tls(&mut data)
            .map_err(|e| tls_error(format!("TLS read: {e}")))?;
        let state = session
            .process_new_packets()
            .map_err(|e| tls_error(format!("TLS: {e}")))?;
        let n = state.plaintext_bytes_to_read();
        if n > 0 {
            let start = plain.len();
            plain.resize(start + n, 0);
            session
                .reader()
                .read_exact(&mut plain[start..])
                .map_err(|e| tls_error(format!("TLS read: {e}")))?;
        }
        if state.peer_has_closed() || taken == 0 {
            break;
        }
    }
    Ok(plain)
}

/// Encrypts `plain` and returns the TLS records to write (plus anything else the session
/// wants to send).
pub fn encrypt(session: &mut ClientConnection, plain: &[u8]) -> Result<Vec<u8>, TransportError> {
    if !plain.is_empty() {
        session
            .writer()
            .write_all(plain)
            .map_err(|e| tls_error(format!("TLS write: {e}")))?;
    }
    let mut out = Vec::new();
    while session.wants_write() {
        session
            .write_tls(&mut out)
            .map_err(|e| tls_error(format!("TLS write: {e}")))?;
    }
    Ok(out)
}

/// `verify: false`: accepts any certificate (signatures are still checked).
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
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
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
