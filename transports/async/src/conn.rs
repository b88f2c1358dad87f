//! One connection's task: resolve, connect, TLS, then read and write until the peer or
//! the driver ends it. Connecting has no timer here: the core abandons a connection not
//! established by its connect deadline, and the driver then drops the task's channel. It reports to the driver exactly once
//! how it ended (unless the driver closed it, which needs no report).

use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;

use futures_channel::mpsc;
use futures_util::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use futures_util::{SinkExt, StreamExt};
use grete::client::ConnectionHandle;
use grete::error::{TransportError, TransportErrorKind};

use crate::driver::IoMsg;
use crate::tls::Tls;
use crate::{BoxStream, Runtime};

/// The size of one read.
const READ_CHUNK: usize = 64 * 1024;

/// Where and how to connect.
pub(crate) struct ConnectSpec {
    pub(crate) conn: ConnectionHandle,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) tls: Option<Arc<Tls>>,
}

enum Phase1 {
    Done(Result<BoxStream, TransportError>),
    Cancelled,
}

/// The connection task. `writes` carries the bytes to send; the driver closes the
/// connection by dropping its sender.
pub(crate) async fn run(
    rt: Arc<dyn Runtime>,
    spec: ConnectSpec,
    mut writes: mpsc::UnboundedReceiver<Vec<u8>>,
    mut events: mpsc::Sender<IoMsg>,
) {
    let conn = spec.conn;
    let mut early: Vec<Vec<u8>> = Vec::new();
    let outcome = {
        let mut establishing = pin!(establish(&*rt, &spec));
        poll_fn(|cx| {
            if let Poll::Ready(r) = establishing.as_mut().poll(cx) {
                return Poll::Ready(Phase1::Done(r));
            }
            loop {
                match writes.poll_next_unpin(cx) {
                    Poll::Ready(Some(bytes)) => early.push(bytes),
                    Poll::Ready(None) => return Poll::Ready(Phase1::Cancelled),
                    Poll::Pending => return Poll::Pending,
                }
            }
        })
        .await
    };
    let stream = match outcome {
        Phase1::Done(Ok(stream)) => stream,
        Phase1::Done(Err(error)) => {
            let _ = events.send(IoMsg::ConnectFailed { conn, error }).await;
            return;
        }
        Phase1::Cancelled => return,
    };
    if events.send(IoMsg::Connected { conn }).await.is_err() {
        return;
    }
    let (reader, writer) = stream.split();
    let ended = {
        let mut reading = pin!(read_loop(reader, conn, events.clone()));
        let mut writing = pin!(write_loop(writer, early, writes));
        poll_fn(|cx| {
            if let Poll::Ready(r) = reading.as_mut().poll(cx) {
                return Poll::Ready(r);
            }
            writing.as_mut().poll(cx)
        })
        .await
    };
    if let Some(error) = ended {
        let _ = events.send(IoMsg::Closed { conn, error }).await;
    }
}

/// Resolves, connects to each address in turn, and runs the TLS handshake.
async fn establish(rt: &dyn Runtime, spec: &ConnectSpec) -> Result<BoxStream, TransportError> {
    let addrs: Vec<SocketAddr> = rt
        .resolve(spec.host.clone(), spec.port)
        .await
        .map_err(|e| {
            TransportError::new(
                TransportErrorKind::Resolve,
                format!("cannot resolve {}: {e}", spec.host),
            )
        })?;
    if addrs.is_empty() {
        return Err(TransportError::new(
            TransportErrorKind::Resolve,
            format!("{} resolves to no address", spec.host),
        ));
    }
    let mut last = None;
    let mut stream = None;
    for addr in addrs {
        match rt.connect(addr).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => {
                let mut error = TransportError::from(e);
                error.message = format!("connecting to {addr}: {}", error.message);
                last = Some(error);
            }
        }
    }
    let stream = match stream {
        Some(s) => s,
        None => {
            return Err(last.unwrap_or_else(|| {
                TransportError::new(TransportErrorKind::ConnectTimeout, "connect timed out")
            }))
        }
    };
    match &spec.tls {
        Some(tls) => tls.handshake(&spec.host, stream).await,
        None => Ok(stream),
    }
}

/// Forwards what arrives to the driver. `Some(error)` when the peer ended the
/// connection (`None` inside for a clean end of stream), `None` when the driver is gone.
async fn read_loop(
    mut reader: ReadHalf<BoxStream>,
    conn: ConnectionHandle,
    mut events: mpsc::Sender<IoMsg>,
) -> Option<Option<TransportError>> {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) => return Some(None),
            Ok(n) => {
                let data = buf[..n].to_vec();
                if events.send(IoMsg::Data { conn, data }).await.is_err() {
                    return None;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Some(Some(TransportError::from(e))),
        }
    }
}

/// Writes what the driver hands over. `None` when the driver closed the connection,
/// `Some(error)` when writing failed.
async fn write_loop(
    mut writer: WriteHalf<BoxStream>,
    early: Vec<Vec<u8>>,
    mut writes: mpsc::UnboundedReceiver<Vec<u8>>,
) -> Option<Option<TransportError>> {
    for bytes in early {
        if let Err(e) = writer.write_all(&bytes).await {
            return Some(Some(TransportError::from(e)));
        }
    }
    while let Some(bytes) = writes.next().await {
        let written = async {
            writer.write_all(&bytes).await?;
            writer.flush().await
        };
        if let Err(e) = written.await {
            return Some(Some(TransportError::from(e)));
        }
    }
    // Dropping the stream closes the socket; no orderly shutdown that could stall.
    None
}
