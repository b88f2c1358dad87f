//! The rustls client configuration of grete's transports, built once per client from the
//! core's [`TlsConfig`]: the CA file (or the system roots), an optional client certificate,
//! verification on unless explicitly off, and the server name to verify.
//!
//! Every transport uses this one crate, so that they agree on what a TLS setting means;
//! each runs the handshake in its own IO idiom (futures-rustls, or rustls on std sockets).
//! Unreadable or invalid files are [`Error::Config`]: they are reported by `connect`,
//! before any connection is attempted.

use std::path::Path;
use std::sync::Arc;

use grete::config::TlsConfig;
use grete::error::{Error, TransportError, TransportErrorKind};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

pub use rustls;

fn config_error(message: String) -> Error {
    Error::Config(format!("TLS: {message}"))
}

/// The rustls client configuration for `tls` (ring provider; TLS 1.2, which Kafka's older
/// SSL listeners speak, and 1.3).
pub fn client_config(tls: &TlsConfig) -> Result<Arc<ClientConfig>, Error> {
    if tls.client_cert_file.is_some() != tls.client_key_file.is_some() {
        return Err(config_error(
            "client_cert_file and client_key_file go together".into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| config_error(e.to_string()))?;
    let builder = if tls.verify {
        builder.with_root_certificates(roots(tls.ca_file.as_deref())?)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoCertificateCheck(provider)))
    };
    let config = match (&tls.client_cert_file, &tls.client_key_file) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| config_error(format!("client key {}: {e}", key.display())))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| config_error(format!("client certificate: {e}")))?
        }
        _ => builder.with_no_client_auth(),
    };
    if let Some(name) = &tls.server_name {
        ServerName::try_from(name.clone())
            .map_err(|e| config_error(format!("server_name {name:?}: {e}")))?;
    }
    Ok(Arc::new(config))
}

/// The name to verify the broker's certificate against: the configured override, or the
/// host the client connects to.
pub fn server_name(tls: &TlsConfig, host: &str) -> Result<ServerName<'static>, TransportError> {
    let name = tls.server_name.as_deref().unwrap_or(host);
    ServerName::try_from(name.to_owned()).map_err(|e| {
        TransportError::new(
            TransportErrorKind::Tls,
            format!("invalid TLS server name {name:?}: {e}"),
        )
    })
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let bad = |e: &dyn std::fmt::Display| config_error(format!("{}: {e}", path.display()));
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
                    .map_err(|e| config_error(format!("CA file {}: {e}", path.display())))?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
            if roots.is_empty() {
                return Err(config_error(
                    "no CA file given and no system root certificates found".into(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(ca: Option<&Path>) -> TlsConfig {
        TlsConfig {
            ca_file: ca.map(Into::into),
            ..TlsConfig::default()
        }
    }

    #[test]
    fn unreadable_and_empty_files_are_configuration_errors() {
        let dir = std::env::temp_dir().join(format!("grete-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        let err = client_config(&tls(Some(&missing))).unwrap_err();
        assert!(
            matches!(&err, Error::Config(m) if m.contains("missing.pem")),
            "{err:?}"
        );
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, b"not a certificate\n").unwrap();
        let err = client_config(&tls(Some(&junk))).unwrap_err();
        assert!(
            matches!(&err, Error::Config(m) if m.contains("no certificate")),
            "{err:?}"
        );
        // The pairing is checked first, whatever the files hold.
        let half = TlsConfig {
            client_cert_file: Some(junk.clone()),
            ..tls(Some(&junk))
        };
        let err = client_config(&half).unwrap_err();
        assert!(
            matches!(&err, Error::Config(m) if m.contains("client_key_file")),
            "{err:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn verification_off_needs_no_roots_and_server_name_overrides_the_host() {
        let off = TlsConfig {
            verify: false,
            server_name: Some("localhost".into()),
            ..TlsConfig::default()
        };
        assert!(client_config(&off).is_ok());
        assert_eq!(
            server_name(&off, "127.0.0.1").unwrap(),
            ServerName::try_from("localhost").unwrap()
        );
        let plain = TlsConfig::default();
        assert_eq!(
            server_name(&plain, "127.0.0.1").unwrap(),
            ServerName::try_from("127.0.0.1").unwrap()
        );
        assert!(server_name(&plain, "bad name!").is_err());
    }
}
