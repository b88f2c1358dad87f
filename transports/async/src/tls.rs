//! TLS with futures-rustls (ring provider, TLS 1.2 and 1.3): the rustls configuration built
//! once from [`TlsConfig`], and the handshake on a connected stream.

use std::path::Path;
use std::sync::Arc;

use futures_rustls::TlsConnector;
use grete::config::TlsConfig;
use grete::error::{Error, TransportError, TransportErrorKind};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::BoxStream;

/// The TLS settings of one client, ready to use for every connection.
pub(crate) struct Tls {
    connector: TlsConnector,
    server_name: Option<String>,
}

impl Tls {
    /// Reads the files `config` names and builds the rustls configuration. Unreadable or
    /// invalid files are configuration errors, reported by `connect`.
    pub(crate) fn new(config: &TlsConfig) -> Result<Tls, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Config(format!("TLS: {e}")))?;
        let builder = if config.verify {
            builder.with_root_certificates(roots(config.ca_file.as_deref())?)
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoCertificateCheck(provider)))
        };
        let client = match (&config.client_cert_file, &config.client_key_file) {
            (Some(cert), Some(key)) => {
                let chain = read_certs(cert)?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| Error::Config(format!("TLS client key {}: {e}", key.display())))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| Error::Config(format!("TLS client certificate: {e}")))?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => {
                return Err(Error::Config(
                    "TLS: client_cert_file and client_key_file go together".into(),
                ))
            }
        };
        if let Some(name) = &config.server_name {
            ServerName::try_from(name.clone())
                .map_err(|e| Error::Config(format!("TLS server_name {name:?}: {e}")))?;
        }
        Ok(Tls {
            connector: TlsConnector::from(Arc::new(client)),
            server_name: config.server_name.clone(),
        })
    }

    /// Runs the handshake on `stream`, verifying the certificate against `server_name`
    /// (or the broker's host when none was configured).
    pub(crate) async fn handshake(
        &self,
        host: &str,
        stream: BoxStream,
    ) -> Result<BoxStream, TransportError> {
        let name = self.server_name.as_deref().unwrap_or(host);
        let server_name = ServerName::try_from(name.to_owned()).map_err(|e| {
            TransportError::new(
                TransportErrorKind::Tls,
                format!("server name {name:?}: {e}"),
            )
        })?;
        match self.connector.connect(server_name, stream).await {
            Ok(tls) => Ok(Box::new(tls)),
            Err(e) => Err(TransportError::new(
                TransportErrorKind::Tls,
                format!("TLS handshake with {name} failed: {e}"),
            )),
        }
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let bad = |e: &dyn std::fmt::Display| Error::Config(format!("TLS {}: {e}", path.display()));
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&e))?;
    if certs.is_empty() {
        return Err(bad(&"no certificate in the file"));
    }
    Ok(certs)
}

/// The CA file's certificates, or the system's roots.
fn roots(ca_file: Option<&Path>) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            for cert in read_certs(path)? {
                roots
                    .add(cert)
                    .map_err(|e| Error::Config(format!("TLS CA file {}: {e}", path.display())))?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
            if roots.is_empty() {
                return Err(Error::Config(
                    "TLS: no CA file given and no system root certificates found".into(),
                ));
            }
        }
    }
    Ok(roots)
}

/// `verify: false`: accepts any certificate, but still checks the handshake signatures
/// (so the peer holds the key of the certificate it sent).
#[derive(Debug)]
struct NoCertificateCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCertificateCheck {
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
