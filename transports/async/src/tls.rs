//! TLS with futures-rustls: the handshake on a connected stream, with the rustls
//! configuration that `grete-tls` builds for every transport.

use futures_rustls::TlsConnector;
use grete::config::TlsConfig;
use grete::error::{Error, TransportError, TransportErrorKind};

use crate::BoxStream;

/// The TLS settings of one client, ready to use for every connection.
pub(crate) struct Tls {
    connector: TlsConnector,
    config: TlsConfig,
}

impl Tls {
    /// Reads the files `config` names and builds the rustls configuration. Unreadable or
    /// invalid files are configuration errors, reported by `connect`.
    pub(crate) fn new(config: &TlsConfig) -> Result<Tls, Error> {
        Ok(Tls {
            connector: TlsConnector::from(grete_tls::client_config(config)?),
            config: config.clone(),
        })
    }

    /// Runs the handshake on `stream`, verifying the certificate against `server_name`
    /// (or the broker's host when none was configured).
    pub(crate) async fn handshake(
        &self,
        host: &str,
        stream: BoxStream,
    ) -> Result<BoxStream, TransportError> {
        let server_name = grete_tls::server_name(&self.config, host)?;
        let name = self.config.server_name.as_deref().unwrap_or(host);
        match self.connector.connect(server_name, stream).await {
            Ok(tls) => Ok(Box::new(tls)),
            Err(e) => Err(TransportError::new(
                TransportErrorKind::Tls,
                format!("TLS handshake with {name} failed: {e}"),
            )),
        }
    }
}
