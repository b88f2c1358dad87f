//! One connection's task: resolve, connect, TLS, then read and write until the peer or
//! the driver ends it. Connecting has no timer here: the core abandons a connection not
//! established by its connect deadline, and the driver then drops the task's channel. It
//! reports to the driver exactly once how it ended (unless the driver closed it, which needs
//! no report).
//!
//! Nothing here waits without a bound: a write that makes no progress (no byte accepted by
//! the socket) for `ClientConfig::write_timeout()` ends the connection, and the driver closing the
//! connection (dropping its sender) ends the task at once, even in the middle of a write to
//! a peer that stopped reading. The task owns the socket, so when the task ends the socket
//! is closed.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_channel::mpsc;
use futures_util::io::{AsyncReadExt, AsyncWrite, ReadHalf, WriteHalf};
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
    /// How long a write may go without progress (`ClientConfig::write_timeout()`).
    pub(crate) write_timeout: Duration,
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
        let mut writing = pin!(write_loop(&*rt, writer, early, writes, spec.write_timeout));
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

enum Write {
    Done(std::io::Result<()>),
    TimedOut,
    Closed,
}

/// Writes what the driver hands over. `None` when the driver closed the connection (also
/// in the middle of a write), `Some(error)` when writing failed or made no progress for
/// `timeout`.
async fn write_loop(
    rt: &dyn Runtime,
    mut writer: WriteHalf<BoxStream>,
    early: Vec<Vec<u8>>,
    mut writes: mpsc::UnboundedReceiver<Vec<u8>>,
    timeout: Duration,
) -> Option<Option<TransportError>> {
    let mut queue = VecDeque::from(early);
    loop {
        let bytes = match queue.pop_front() {
            Some(bytes) => bytes,
            None => writes.next().await?,
        };
        let outcome = {
            let mut pos = 0;
            let mut progressed = false;
            let mut timer = rt.sleep_until(Instant::now() + timeout);
            poll_fn(|cx| {
                loop {
                    let step = if pos < bytes.len() {
                        Pin::new(&mut writer).poll_write(cx, &bytes[pos..])
                    } else {
                        match Pin::new(&mut writer).poll_flush(cx) {
                            Poll::Ready(r) => return Poll::Ready(Write::Done(r)),
                            Poll::Pending => break,
                        }
                    };
                    match step {
                        Poll::Ready(Ok(0)) => {
                            let e = std::io::Error::from(std::io::ErrorKind::WriteZero);
                            return Poll::Ready(Write::Done(Err(e)));
                        }
                        Poll::Ready(Ok(n)) => {
                            pos += n;
                            progressed = true;
                        }
                        Poll::Ready(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Poll::Ready(Err(e)) => return Poll::Ready(Write::Done(Err(e))),
                        Poll::Pending => break,
                    }
                }
                // Keep watching the driver: dropping its sender interrupts the write.
                loop {
                    match writes.poll_next_unpin(cx) {
                        Poll::Ready(Some(more)) => queue.push_back(more),
                        Poll::Ready(None) => return Poll::Ready(Write::Closed),
                        Poll::Pending => break,
                    }
                }
                if progressed {
                    progressed = false;
                    timer = rt.sleep_until(Instant::now() + timeout);
                }
                if timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Write::TimedOut);
                }
                Poll::Pending
            })
            .await
        };
        match outcome {
            Write::Done(Ok(())) => {}
            Write::Done(Err(e)) => return Some(Some(TransportError::from(e))),
            Write::TimedOut => {
                return Some(Some(TransportError::new(
                    TransportErrorKind::Io(std::io::ErrorKind::TimedOut),
                    format!("writing to the broker made no progress for {timeout:?}"),
                )))
            }
            // Dropping the stream closes the socket; no orderly shutdown that could stall.
            Write::Closed => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    //! The writer against a peer that accepts nothing: it gives up after the write
    //! timeout, and the driver closing the connection ends it at once.

    use std::io;
    use std::pin::Pin;
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Wake, Waker};
    use std::thread;

    use futures_util::io::{AsyncRead, AsyncWrite};

    use super::*;
    use crate::BoxFuture;

    /// A stream whose writes never complete and whose reads never return.
    struct Stuck;

    impl AsyncRead for Stuck {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Pending
        }
    }

    impl AsyncWrite for Stuck {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Pending
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Pending
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Pending
        }
    }

    /// A stream that accepts one byte every 50 ms, and counts them.
    struct Trickle {
        next: Instant,
        written: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl AsyncRead for Trickle {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Pending
        }
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let now = Instant::now();
            if now >= self.next {
                self.next = now + Duration::from_millis(50);
                let n = buf.len().min(1);
                self.written
                    .fetch_add(n, std::sync::atomic::Ordering::SeqCst);
                return Poll::Ready(Ok(n));
            }
            let (waker, wait) = (cx.waker().clone(), self.next - now);
            thread::spawn(move || {
                thread::sleep(wait);
                waker.wake();
            });
            Poll::Pending
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// Only the timer: a thread per sleep.
    struct Timers;

    impl Runtime for Timers {
        fn spawn(&self, _: BoxFuture<()>) {
            unreachable!("not used by the writer")
        }
        fn resolve(&self, _: String, _: u16) -> BoxFuture<io::Result<Vec<SocketAddr>>> {
            unreachable!("not used by the writer")
        }
        fn connect(&self, _: SocketAddr) -> BoxFuture<io::Result<BoxStream>> {
            unreachable!("not used by the writer")
        }
        fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
            let (tx, rx) = futures_channel::oneshot::channel::<()>();
            thread::spawn(move || {
                thread::sleep(deadline.saturating_duration_since(Instant::now()));
                let _ = tx.send(());
            });
            Box::pin(async move {
                let _ = rx.await;
            })
        }
        #[cfg(feature = "zookeeper")]
        fn spawn_zookeeper(&self, _: BoxFuture<()>) -> Result<(), String> {
            unreachable!("not used by the writer")
        }
    }

    struct Unpark(thread::Thread);

    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }

    /// Runs `f` on this thread; panics after 60 s (a safety net: the tests take far less).
    fn block_on<F: Future>(f: F) -> F::Output {
        let waker = Waker::from(Arc::new(Unpark(thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut f = pin!(f);
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
                return out;
            }
            assert!(Instant::now() < end, "the writer did not finish");
            thread::park_timeout(Duration::from_millis(50));
        }
    }

    fn stuck_writer() -> WriteHalf<BoxStream> {
        let stream: BoxStream = Box::new(Stuck);
        stream.split().1
    }

    #[test]
    fn a_write_without_progress_times_out() {
        let (tx, rx) = mpsc::unbounded();
        tx.unbounded_send(vec![1, 2, 3]).expect("open");
        let ended = block_on(write_loop(
            &Timers,
            stuck_writer(),
            Vec::new(),
            rx,
            Duration::from_millis(200),
        ));
        match ended {
            Some(Some(e)) => assert_eq!(
                e.kind,
                TransportErrorKind::Io(std::io::ErrorKind::TimedOut),
                "{e:?}"
            ),
            other => panic!("expected a write timeout, got {other:?}"),
        }
        drop(tx);
    }

    #[test]
    fn a_slow_write_that_progresses_does_not_time_out() {
        // 20 bytes at one per 50 ms take about 1 s; each byte comes well within the
        // 400 ms allowed without progress.
        let (tx, rx) = mpsc::unbounded();
        tx.unbounded_send(vec![7; 20]).expect("open");
        // The driver closes the connection (drops its sender) long after that.
        thread::spawn(move || {
            thread::sleep(Duration::from_secs(5));
            drop(tx);
        });
        let written = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stream: BoxStream = Box::new(Trickle {
            next: Instant::now(),
            written: written.clone(),
        });
        let ended = block_on(write_loop(
            &Timers,
            stream.split().1,
            Vec::new(),
            rx,
            Duration::from_millis(400),
        ));
        assert!(ended.is_none(), "{ended:?}");
        assert_eq!(written.load(std::sync::atomic::Ordering::SeqCst), 20);
    }

    #[test]
    fn closing_interrupts_a_blocked_write() {
        let (tx, rx) = mpsc::unbounded();
        tx.unbounded_send(vec![1, 2, 3]).expect("open");
        let tx = Arc::new(Mutex::new(Some(tx)));
        let closer = tx.clone();
        // The driver closes the connection (drops its sender) while the write is stuck.
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            closer.lock().unwrap_or_else(|e| e.into_inner()).take();
        });
        let ended = block_on(write_loop(
            &Timers,
            stuck_writer(),
            vec![vec![0]],
            rx,
            Duration::from_secs(3600),
        ));
        assert!(ended.is_none(), "{ended:?}");
    }
}
