//! TLS with rustls on std sockets: the handshake and the record layer, with the client
//! configuration that `grete-tls` builds for every transport.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Instant;

use grete::config::TlsConfig;
use grete::error::{TransportError, TransportErrorKind};
use rustls::{ClientConfig, ClientConnection};

fn tls_error(message: impl Into<String>) -> TransportError {
    TransportError::new(TransportErrorKind::Tls, message)
}

/// Runs the handshake on `stream`, as a whole bounded by `deadline` (a peer trickling
/// bytes cannot stretch it), and returns the session. Leaves the socket's read and write
/// timeouts set; the caller sets the ones it wants next.
pub fn handshake(
    config: Arc<ClientConfig>,
    tls: &TlsConfig,
    host: &str,
    stream: &mut TcpStream,
    deadline: Instant,
) -> Result<ClientConnection, TransportError> {
    let name = grete_tls::server_name(tls, host)?;
    let mut session =
        ClientConnection::new(config, name).map_err(|e| tls_error(format!("TLS setup: {e}")))?;
    let mut io = UntilDeadline { stream, deadline };
    while session.is_handshaking() {
        session
            .complete_io(&mut io)
            .map_err(|e| handshake_error(&e))?;
    }
    // Flush what the handshake left (a TLS 1.3 Finished, for instance).
    while session.wants_write() {
        session
            .write_tls(&mut io)
            .map_err(|e| handshake_error(&e))?;
    }
    Ok(session)
}

/// A socket whose every read and write may only wait until `deadline`: each call sets
/// the socket's timeout to the time left, and fails with `TimedOut` once none is left.
struct UntilDeadline<'a> {
    stream: &'a mut TcpStream,
    deadline: Instant,
}

impl UntilDeadline<'_> {
    fn left(&self) -> io::Result<std::time::Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the connect timeout passed during the TLS handshake",
            ))
        } else {
            Ok(left)
        }
    }
}

impl Read for UntilDeadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.left()?;
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

impl Write for UntilDeadline<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.left()?;
        self.stream.set_write_timeout(Some(left))?;
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
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

/// Plaintext from a TLS session: feeds it `data` read from the socket and puts what it
/// decrypted in `plain` (cleared first; its capacity is reused from read to read).
pub fn decrypt(
    session: &mut ClientConnection,
    mut data: &[u8],
    plain: &mut Vec<u8>,
) -> Result<(), TransportError> {
    plain.clear();
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
    Ok(())
}

/// Encrypts `plain` and puts the TLS records to write (plus anything else the session
/// wants to send) in `out` (cleared first; its capacity is reused).
pub fn encrypt(
    session: &mut ClientConnection,
    plain: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), TransportError> {
    if !plain.is_empty() {
        session
            .writer()
            .write_all(plain)
            .map_err(|e| tls_error(format!("TLS write: {e}")))?;
    }
    out.clear();
    while session.wants_write() {
        session
            .write_tls(out)
            .map_err(|e| tls_error(format!("TLS write: {e}")))?;
    }
    Ok(())
}
