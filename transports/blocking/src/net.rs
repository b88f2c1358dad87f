//! Connections: a thread per connection that connects (bounded by `connect_timeout`), runs
//! the TLS handshake if configured, then stays on as its reader, handing reads to the core
//! from one reused buffer; a writer thread, nudged by the driver, pulls bytes from the core
//! when idle. Both report how the connection ended to the core themselves.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use grete::client::ConnectionHandle;
use grete::config::TlsConfig;
use grete::error::{TransportError, TransportErrorKind};
use grete_facade::Shared;
use rustls::ClientConnection;

use crate::tls;

/// The largest single read from a socket.
const READ_BUF: usize = 64 * 1024;

/// What the driver keeps of a connection: its socket once connected (to shut it down)
/// and the writer's nudge.
#[derive(Debug, Default)]
pub struct Link {
    open: Mutex<Option<(TcpStream, Sender<()>)>>,
    closed: AtomicBool,
}

impl grete_facade::Link for Link {
    fn wake_writer(&self) {
        if let Some((_, writer)) = &*self.open.lock().unwrap_or_else(PoisonError::into_inner) {
            // A closed writer reports the closure itself.
            let _ = writer.send(());
        }
    }

    /// The reader wakes up with an error, and the writer stops once the reader is gone.
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let open = self
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some((socket, _)) = open {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

impl Link {
    /// Connected: keeps the socket and the writer's nudge; `false` if the driver closed
    /// the connection meanwhile.
    fn opened(&self, socket: TcpStream, writer: Sender<()>) -> bool {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if self.closed.load(Ordering::Acquire) {
            return false;
        }
        *open = Some((socket, writer));
        true
    }
}

/// Where a connection attempt goes and how.
pub struct Dial {
    pub conn: ConnectionHandle,
    pub host: String,
    pub port: u16,
    pub connect_timeout: Duration,
    pub write_timeout: Duration,
    pub tls: Option<(Arc<rustls::ClientConfig>, TlsConfig)>,
    /// Where reads go and writes come from.
    pub core: Arc<Shared>,
    /// What the driver closes it by.
    pub link: Arc<Link>,
}

/// Starts a connection attempt.
pub fn dial(dial: Dial) {
    let (conn, core) = (dial.conn, dial.core.clone());
    let name = format!("grete-conn-{}", conn.0);
    if let Err(e) = thread::Builder::new()
        .name(name)
        .spawn(move || run_connection(dial))
    {
        failed(&core, conn, TransportError::from(e));
    }
}

fn failed(core: &Shared, conn: ConnectionHandle, error: TransportError) {
    core.handle(|c, now| c.handle_connect_failed(now, conn, error));
}

fn run_connection(dial: Dial) {
    let deadline = Instant::now() + dial.connect_timeout;
    let connected = open(&dial.host, dial.port, deadline).and_then(|mut stream| {
        let _ = stream.set_nodelay(true);
        let Some((config, tls)) = &dial.tls else {
            return Ok((stream, None));
        };
        match tls::handshake(config.clone(), tls, &dial.host, &mut stream, deadline) {
            Ok(session) => {
                let _ = stream.set_read_timeout(None);
                Ok((stream, Some(session)))
            }
            Err(e) => {
                let _ = stream.shutdown(Shutdown::Both);
                Err(e)
            }
        }
    });
    match connected {
        Ok((stream, session)) => finish(dial, stream, session),
        Err(e) => failed(&dial.core, dial.conn, e),
    }
}

/// Connected (and through the handshake): start the writer, tell the driver, then read.
fn finish(dial: Dial, stream: TcpStream, session: Option<ClientConnection>) {
    let conn = dial.conn;
    let clones = (stream.try_clone(), stream.try_clone());
    let (Ok(write_half), Ok(handle)) = clones else {
        let kind = TransportErrorKind::Io(ErrorKind::Other);
        return failed(
            &dial.core,
            conn,
            TransportError::new(kind, "cannot duplicate the socket"),
        );
    };
    let _ = write_half.set_write_timeout(Some(dial.write_timeout.max(Duration::from_millis(1))));
    let session = session.map(|s| Arc::new(Mutex::new(s)));
    let (tx, rx) = mpsc::channel::<()>();
    let writer = {
        let session = session.clone();
        let core = dial.core.clone();
        thread::Builder::new()
            .name(format!("grete-write-{}", conn.0))
            .spawn(move || run_writer(conn, write_half, session, rx, &core))
    };
    if let Err(e) = writer {
        let _ = stream.shutdown(Shutdown::Both);
        return failed(&dial.core, conn, TransportError::from(e));
    }
    let nudge = tx.clone();
    if !dial.link.opened(handle, tx) {
        let _ = stream.shutdown(Shutdown::Both);
        return;
    }
    // Tell the core before reading anything (a peer may speak first), and let the writer
    // send what the core has for the new connection (ApiVersions, SASL).
    dial.core.handle(|c, now| c.handle_connected(now, conn));
    grete_facade::Link::wake_writer(&*dial.link);
    run_reader(conn, stream, session, nudge, &dial.core);
}

/// Resolves `host:port`, giving up at `deadline`. The system resolver cannot be
/// interrupted, so it runs in a thread of its own, which is left to finish alone (the
/// resolver's own timeouts end it) when the deadline passes first.
fn resolve(host: &str, port: u16, deadline: Instant) -> Result<Vec<SocketAddr>, TransportError> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let (tx, rx) = mpsc::channel();
    let name = host.to_owned();
    thread::Builder::new()
        .name("grete-resolve".into())
        .spawn(move || {
            let result = (name.as_str(), port)
                .to_socket_addrs()
                .map(|addrs| addrs.collect::<Vec<_>>());
            let _ = tx.send(result);
        })
        .map_err(TransportError::from)?;
    let left = deadline.saturating_duration_since(Instant::now());
    match rx.recv_timeout(left) {
        Ok(Ok(addrs)) => Ok(addrs),
        Ok(Err(e)) => Err(TransportError::new(
            TransportErrorKind::Resolve,
            format!("cannot resolve {host}:{port}: {e}"),
        )),
        Err(_) => Err(TransportError::new(
            TransportErrorKind::ConnectTimeout,
            format!("resolving {host} took longer than the connect timeout"),
        )),
    }
}

/// TCP connect to the first address of `host:port` that answers before `deadline`.
fn open(host: &str, port: u16, deadline: Instant) -> Result<TcpStream, TransportError> {
    let addrs = resolve(host, port, deadline)?;
    if addrs.is_empty() {
        return Err(TransportError::new(
            TransportErrorKind::Resolve,
            format!("{host}:{port} resolves to no address"),
        ));
    }
    let mut last = None;
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(connect_error(e, host, port)),
        }
    }
    Err(last.unwrap_or_else(|| {
        TransportError::new(
            TransportErrorKind::ConnectTimeout,
            format!("connecting to {host}:{port} timed out"),
        )
    }))
}

fn connect_error(e: std::io::Error, host: &str, port: u16) -> TransportError {
    match e.kind() {
        ErrorKind::TimedOut | ErrorKind::WouldBlock => TransportError::new(
            TransportErrorKind::ConnectTimeout,
            format!("connecting to {host}:{port} timed out"),
        ),
        _ => {
            let mut t = TransportError::from(e);
            t.message = format!("connecting to {host}:{port}: {}", t.message);
            t
        }
    }
}

fn run_reader(
    conn: ConnectionHandle,
    mut stream: TcpStream,
    session: Option<Arc<Mutex<ClientConnection>>>,
    nudge: Sender<()>,
    core: &Shared,
) {
    let mut buf = vec![0u8; READ_BUF];
    // Decrypted bytes, reused from read to read.
    let mut plain = Vec::new();
    let error = loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => break TransportError::closed("connection closed by the broker"),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => break TransportError::from(e),
        };
        let data = match &session {
            None => &buf[..n],
            Some(session) => {
                let mut s = session.lock().unwrap_or_else(PoisonError::into_inner);
                let decrypted = tls::decrypt(&mut s, &buf[..n], &mut plain);
                let wants_write = s.wants_write();
                drop(s);
                if wants_write {
                    // Alerts and the like: the writer sends them, in order with the rest.
                    let _ = nudge.send(());
                }
                if let Err(e) = decrypted {
                    break e;
                }
                &plain[..]
            }
        };
        if !data.is_empty() {
            // Straight to the core (no copy, no message), then the driver drains it.
            core.handle(|c, now| c.handle_data(now, conn, data));
        }
    };
    let _ = stream.shutdown(Shutdown::Both);
    core.handle(|c, now| c.handle_closed(now, conn, Some(error)));
}

fn run_writer(
    conn: ConnectionHandle,
    mut stream: TcpStream,
    session: Option<Arc<Mutex<ClientConnection>>>,
    rx: Receiver<()>,
    core: &Shared,
) {
    let mut bytes = Vec::new();
    // TLS records to write, reused from write to write.
    let mut sealed = Vec::new();
    // Ends once the link is closed and the reader gone (their senders dropped).
    while rx.recv().is_ok() {
        while rx.try_recv().is_ok() {}
        // Idle: ask the core until it has nothing more.
        loop {
            bytes.clear();
            let got = core.transmit(conn, &mut bytes);
            let result = match &session {
                None if bytes.is_empty() => Ok(()),
                None => write(&mut stream, &bytes),
                Some(session) => {
                    // Also what the TLS session itself has to send (alerts).
                    let mut s = session.lock().unwrap_or_else(PoisonError::into_inner);
                    let out = tls::encrypt(&mut s, &bytes, &mut sealed);
                    drop(s);
                    out.and_then(|()| {
                        if sealed.is_empty() {
                            Ok(())
                        } else {
                            write(&mut stream, &sealed)
                        }
                    })
                }
            };
            if let Err(e) = result {
                let _ = stream.shutdown(Shutdown::Both);
                return core.handle(|c, now| c.handle_closed(now, conn, Some(e)));
            }
            if !got {
                break;
            }
        }
    }
}

/// Writes all of `bytes`; a write that makes no progress for the socket's write timeout is
/// a timeout.
fn write(stream: &mut TcpStream, bytes: &[u8]) -> Result<(), TransportError> {
    stream.write_all(bytes).map_err(|e| match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => TransportError::new(
            TransportErrorKind::Io(ErrorKind::TimedOut),
            "writing to the broker timed out",
        ),
        _ => TransportError::from(e),
    })
}
