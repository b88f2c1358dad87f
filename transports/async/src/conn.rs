//! One connection's task: resolve, connect, TLS, then read and write until the peer or
//! the driver ends it. IO only: it hands reads to the core from one reused buffer, its
//! writer asks for bytes only when idle, and it reports how it ended to the core itself
//! (see `grete_facade`). Connecting has no timer here: the core abandons a connection not
//! established by its deadline, and the driver then closes the [`Link`], ending the task.
//! A write that makes no progress for `ClientConfig::write_timeout()` ends the connection,
//! and closing the link ends the task at once, even in the middle of a write.

use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::io::{AsyncReadExt, AsyncWrite, ReadHalf, WriteHalf};
use futures_util::task::AtomicWaker;
use grete::client::ConnectionHandle;
use grete::error::{TransportError, TransportErrorKind};
#[cfg(test)]
use grete_facade::Link as _;

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

/// What the driver and a connection task share: "the core may have bytes for you" and
/// "closed".
#[derive(Default)]
pub(crate) struct Link {
    waker: AtomicWaker,
    wanted: AtomicBool,
    closed: AtomicBool,
}

impl grete_facade::Link for Link {
    fn wake_writer(&self) {
        self.wanted.store(true, Ordering::Release);
        self.waker.wake();
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.waker.wake();
    }
}

impl Link {
    fn is_closed(&self, cx: &mut Context<'_>) -> bool {
        self.waker.register(cx.waker());
        self.closed.load(Ordering::Acquire)
    }

    /// Ready when the writer should ask the core again (`false`) or the link closed
    /// (`true`).
    fn poll_wanted(&self, cx: &mut Context<'_>) -> Poll<bool> {
        self.waker.register(cx.waker());
        if self.closed.load(Ordering::Acquire) {
            return Poll::Ready(true);
        }
        if self.wanted.swap(false, Ordering::AcqRel) {
            return Poll::Ready(false);
        }
        Poll::Pending
    }
}

/// Where the bytes come from and go to: the shared core.
pub(crate) trait Core: Send + Sync + 'static {
    /// The transport connected `conn` (or failed to: `Some(error)`).
    fn connected(&self, conn: ConnectionHandle, failed: Option<TransportError>);
    /// Bytes arrived.
    fn data(&self, conn: ConnectionHandle, data: &[u8]);
    /// The connection ended (with the reason, if it failed).
    fn closed(&self, conn: ConnectionHandle, error: Option<TransportError>);
    /// Appends bytes to write to `buf`; `false` when there are none.
    fn transmit(&self, conn: ConnectionHandle, buf: &mut Vec<u8>) -> bool;
}

/// The shared core as the connection tasks see it: each input drives the client, then the
/// driver only needs to drain it.
impl Core for grete_facade::Shared {
    fn connected(&self, conn: ConnectionHandle, failed: Option<TransportError>) {
        self.handle(|c, now| match failed {
            None => c.handle_connected(now, conn),
            Some(error) => c.handle_connect_failed(now, conn, error),
        })
    }

    fn data(&self, conn: ConnectionHandle, data: &[u8]) {
        self.handle(|c, now| c.handle_data(now, conn, data))
    }

    fn closed(&self, conn: ConnectionHandle, error: Option<TransportError>) {
        self.handle(|c, now| c.handle_closed(now, conn, error))
    }

    fn transmit(&self, conn: ConnectionHandle, buf: &mut Vec<u8>) -> bool {
        grete_facade::Shared::transmit(self, conn, buf)
    }
}

enum Phase1 {
    Done(Result<BoxStream, TransportError>),
    Cancelled,
}

/// The connection task.
pub(crate) async fn run(
    rt: Arc<dyn Runtime>,
    spec: ConnectSpec,
    link: Arc<Link>,
    core: Arc<dyn Core>,
) {
    let conn = spec.conn;
    let outcome = {
        let mut establishing = pin!(establish(&*rt, &spec));
        poll_fn(|cx| {
            if link.is_closed(cx) {
                return Poll::Ready(Phase1::Cancelled);
            }
            establishing.as_mut().poll(cx).map(Phase1::Done)
        })
        .await
    };
    let stream = match outcome {
        Phase1::Done(Ok(stream)) => stream,
        Phase1::Done(Err(error)) => {
            core.connected(conn, Some(error));
            return;
        }
        Phase1::Cancelled => return,
    };
    core.connected(conn, None);
    let (reader, writer) = stream.split();
    let ended = {
        let mut reading = pin!(read_loop(reader, conn, &*core));
        let mut writing = pin!(write_loop(
            &*rt,
            writer,
            conn,
            &*core,
            &link,
            spec.write_timeout
        ));
        poll_fn(|cx| {
            if let Poll::Ready(r) = reading.as_mut().poll(cx) {
                return Poll::Ready(r);
            }
            writing.as_mut().poll(cx)
        })
        .await
    };
    if let Some(error) = ended {
        core.closed(conn, error);
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

/// Hands what arrives to the core, from one reused buffer. Ends with the reason the peer
/// ended the connection (`None` inside for a clean end of stream).
async fn read_loop(
    mut reader: ReadHalf<BoxStream>,
    conn: ConnectionHandle,
    core: &dyn Core,
) -> Option<Option<TransportError>> {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) => return Some(None),
            Ok(n) => core.data(conn, &buf[..n]),
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

/// Asks the core for bytes whenever idle and writes them. `None` when the driver closed the
/// connection (also in the middle of a write), `Some(error)` when writing failed or made no
/// progress for `timeout`.
async fn write_loop(
    rt: &dyn Runtime,
    mut writer: WriteHalf<BoxStream>,
    conn: ConnectionHandle,
    core: &dyn Core,
    link: &Link,
    timeout: Duration,
) -> Option<Option<TransportError>> {
    let mut bytes = Vec::new();
    loop {
        bytes.clear();
        if !core.transmit(conn, &mut bytes) {
            // Idle: wait until the core may have something (or the link closes).
            if poll_fn(|cx| link.poll_wanted(cx)).await {
                return None;
            }
            continue;
        }
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
                // Keep watching the driver: closing the link interrupts the write.
                if link.is_closed(cx) {
                    return Poll::Ready(Write::Closed);
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

    /// A core with the given writes to hand out, one per ask.
    struct Queued(Mutex<Vec<Vec<u8>>>);

    impl Queued {
        fn new(writes: Vec<Vec<u8>>) -> Queued {
            Queued(Mutex::new(writes))
        }
    }

    impl Core for Queued {
        fn connected(&self, _: ConnectionHandle, _: Option<TransportError>) {}
        fn data(&self, _: ConnectionHandle, _: &[u8]) {}
        fn closed(&self, _: ConnectionHandle, _: Option<TransportError>) {}
        fn transmit(&self, _: ConnectionHandle, buf: &mut Vec<u8>) -> bool {
            let mut q = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if q.is_empty() {
                return false;
            }
            buf.extend(q.remove(0));
            true
        }
    }

    const CONN: ConnectionHandle = ConnectionHandle(0);

    #[test]
    fn a_write_without_progress_times_out() {
        let core = Queued::new(vec![vec![1, 2, 3]]);
        let link = Link::default();
        let ended = block_on(write_loop(
            &Timers,
            stuck_writer(),
            CONN,
            &core,
            &link,
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
    }

    #[test]
    fn a_slow_write_that_progresses_does_not_time_out() {
        // 20 bytes at one per 50 ms take about 1 s; each byte comes well within the
        // 400 ms allowed without progress.
        let core = Queued::new(vec![vec![7; 20]]);
        let link = Arc::new(Link::default());
        // The driver closes the connection long after that.
        let closer = link.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_secs(5));
            closer.close();
        });
        let written = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stream: BoxStream = Box::new(Trickle {
            next: Instant::now(),
            written: written.clone(),
        });
        let ended = block_on(write_loop(
            &Timers,
            stream.split().1,
            CONN,
            &core,
            &link,
            Duration::from_millis(400),
        ));
        assert!(ended.is_none(), "{ended:?}");
        assert_eq!(written.load(std::sync::atomic::Ordering::SeqCst), 20);
    }

    #[test]
    fn closing_interrupts_a_blocked_write() {
        let core = Queued::new(vec![vec![1, 2, 3]]);
        let link = Arc::new(Link::default());
        let closer = link.clone();
        // The driver closes the connection while the write is stuck.
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            closer.close();
        });
        let ended = block_on(write_loop(
            &Timers,
            stuck_writer(),
            CONN,
            &core,
            &link,
            Duration::from_secs(3600),
        ));
        assert!(ended.is_none(), "{ended:?}");
    }

    #[test]
    fn an_idle_writer_asks_again_when_woken() {
        let core = Arc::new(Queued::new(Vec::new()));
        let link = Arc::new(Link::default());
        let written = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stream: BoxStream = Box::new(Trickle {
            next: Instant::now(),
            written: written.clone(),
        });
        let (waker_core, waker_link) = (core.clone(), link.clone());
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            waker_core
                .0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(vec![9; 3]);
            waker_link.wake_writer();
            thread::sleep(Duration::from_millis(1000));
            waker_link.close();
        });
        let ended = block_on(write_loop(
            &Timers,
            stream.split().1,
            CONN,
            &*core,
            &link,
            Duration::from_secs(10),
        ));
        assert!(ended.is_none(), "{ended:?}");
        assert_eq!(written.load(std::sync::atomic::Ordering::SeqCst), 3);
    }
}
