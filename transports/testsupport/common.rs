//! Helpers every transport's tests share: the broker addresses from the environment, the
//! sockets a process holds, bad peers, and grete's mock cluster served over TCP.
//! Included with `#[path]`.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use grete::error::{Error, TransportErrorKind};
use grete::mock::{MockCluster, MockConfig, MockConn, MockTransmit};

/// The value of `var`, or `None` (skip) when it is unset; a failure instead when
/// `GRETE_REQUIRE_BROKERS=1`.
pub fn env(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            assert!(
                std::env::var("GRETE_REQUIRE_BROKERS").as_deref() != Ok("1"),
                "{var} is not set but GRETE_REQUIRE_BROKERS=1"
            );
            eprintln!("skipped: {var} is not set (run scripts/test to start the brokers)");
            None
        }
    }
}

/// Whether `e` is a protocol error whose message contains `what`. A peer that does not
/// speak Kafka fails the connection before it was ever ready with an error retrying cannot
/// fix, so the operation fails at once with it (not at its deadline).
pub fn is_protocol(e: &Error, what: &str) -> bool {
    matches!(e, Error::Protocol(d) if d.to_string().contains(what))
}

/// Whether `e` is the timeout of an operation whose connections kept failing with the
/// retriable transport error `kind` (refused, connect timeout): the client retries until
/// the operation's deadline, and the timeout names the last error.
pub fn is_timeout_naming(e: &Error, kind: TransportErrorKind) -> bool {
    matches!(e, Error::Timeout { what } if what.contains(&format!("{kind:?}")))
}

/// A server on 127.0.0.1 that runs `serve` on each connection (at most 50, for at most
/// 60 s), in a thread of its own. Returns the port.
pub fn fake_server(serve: fn(TcpStream)) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(60);
        let mut served = 0;
        while served < 50 && Instant::now() < end {
            match listener.accept() {
                Ok((stream, _)) => {
                    served += 1;
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    thread::spawn(move || serve(stream));
                }
                Err(_) => thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    port
}

/// Reads one size-prefixed request (bounded), or gives up.
pub fn read_request(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).ok()?;
    let n = u32::from_be_bytes(size) as usize;
    if n > 1 << 20 {
        return None;
    }
    let mut body = vec![0u8; n];
    stream.read_exact(&mut body).ok()?;
    Some(body)
}

/// Accepts connections on `listener` and holds them without ever reading, until `stop`
/// (at most 120 s).
pub fn black_hole(listener: TcpListener, stop: Arc<AtomicBool>) {
    listener.set_nonblocking(true).expect("nonblocking");
    thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(120);
        let mut held = Vec::new();
        while !stop.load(Ordering::Relaxed) && Instant::now() < end && held.len() < 100 {
            match listener.accept() {
                Ok((stream, _)) => held.push(stream),
                Err(_) => thread::sleep(Duration::from_millis(5)),
            }
        }
        while !stop.load(Ordering::Relaxed) && Instant::now() < end {
            thread::sleep(Duration::from_millis(20));
        }
    });
}

/// The sockets of this machine connected to 127.0.0.1:`port` that a process still holds
/// (from `/proc/net/tcp`; a closed socket still finishing its TCP close has no inode
/// any more). A connection's task (or reader and writer threads) holds its socket, so
/// when the count drops they have ended.
pub fn open_sockets_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp (Linux)");
    let remote = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() > 9 && fields[2] == remote && fields[9] != "0"
        })
        .count()
}

type Control = Box<dyn FnOnce(&mut MockCluster, Instant) + Send>;

/// grete's in-memory mock cluster, served over real TCP on 127.0.0.1 by a thread (one
/// listener per broker), so that the transports can be tested without external brokers.
/// The thread stops when this is dropped, or after 120 s.
pub struct MockServer {
    pub ports: Vec<u16>,
    stop: Arc<AtomicBool>,
    control: std::sync::mpsc::Sender<Control>,
}

impl MockServer {
    pub fn start(brokers: usize, setup: impl FnOnce(MockConfig) -> MockConfig) -> MockServer {
        MockServer::start_with(brokers, &[], setup)
    }

    /// Like [`start`](Self::start), but the brokers at the indexes in `black_holes`
    /// accept connections and then never read nor answer (for at most 120 s).
    pub fn start_with(
        brokers: usize,
        black_holes: &[usize],
        setup: impl FnOnce(MockConfig) -> MockConfig,
    ) -> MockServer {
        let mut listeners: Vec<TcpListener> = (0..brokers)
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
            .collect();
        let ports: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().expect("addr").port())
            .collect();
        let mut config = setup(MockConfig::new(brokers));
        for (b, port) in config.brokers.iter_mut().zip(&ports) {
            b.host = "127.0.0.1".into();
            b.port = *port;
        }
        let stop = Arc::new(AtomicBool::new(false));
        for &i in black_holes.iter().rev() {
            black_hole(listeners.remove(i), stop.clone());
        }
        let ids: Vec<i32> = config
            .brokers
            .iter()
            .enumerate()
            .filter(|(i, _)| !black_holes.contains(i))
            .map(|(_, b)| b.id)
            .collect();
        let (control, commands) = std::sync::mpsc::channel::<Control>();
        let stopping = stop.clone();
        thread::spawn(move || {
            let mut cluster = MockCluster::new(config);
            let mut conns: Vec<(TcpStream, MockConn)> = Vec::new();
            for l in &listeners {
                l.set_nonblocking(true).expect("nonblocking");
            }
            let end = Instant::now() + Duration::from_secs(120);
            let mut buf = vec![0u8; 64 * 1024];
            while !stopping.load(Ordering::Relaxed) && Instant::now() < end {
                let now = Instant::now();
                for (l, id) in listeners.iter().zip(&ids) {
                    for _ in 0..16 {
                        let Ok((stream, _)) = l.accept() else { break };
                        if let Ok(conn) = cluster.connect(now, *id) {
                            let _ = stream.set_nonblocking(true);
                            let _ = stream.set_nodelay(true);
                            conns.push((stream, conn));
                        }
                    }
                }
                while let Ok(f) = commands.try_recv() {
                    f(&mut cluster, now);
                }
                if cluster.poll_timeout().is_some_and(|t| t <= now) {
                    cluster.handle_timeout(now);
                }
                conns
                    .retain_mut(|(stream, conn)| serve(&mut cluster, now, stream, *conn, &mut buf));
                thread::sleep(Duration::from_millis(1));
            }
        });
        MockServer {
            ports,
            stop,
            control,
        }
    }

    pub fn bootstrap(&self) -> String {
        let list: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        list.join(",")
    }

    /// Runs `f` on the cluster in the server thread and waits for it (at most 5 s).
    pub fn with_cluster<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut MockCluster, Instant) -> T + Send + 'static,
    ) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        let job: Control = Box::new(move |c, now| {
            let _ = tx.send(f(c, now));
        });
        self.control.send(job).expect("mock server running");
        rx.recv_timeout(Duration::from_secs(5))
            .expect("mock server answered")
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Moves one connection's bytes both ways; false once it is over.
fn serve(
    cluster: &mut MockCluster,
    now: Instant,
    stream: &mut TcpStream,
    conn: MockConn,
    buf: &mut [u8],
) -> bool {
    if !cluster.is_open(conn) {
        return false;
    }
    for _ in 0..64 {
        match stream.read(buf) {
            Ok(0) => {
                cluster.close(conn);
                return false;
            }
            Ok(n) => cluster.handle_data(now, conn, &buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(_) => {
                cluster.close(conn);
                return false;
            }
        }
    }
    let mut out = Vec::new();
    let transmit = cluster.poll_transmit(now, conn, &mut out);
    if !out.is_empty() {
        let _ = stream.set_nonblocking(false);
        let written = stream.write_all(&out);
        let _ = stream.set_nonblocking(true);
        if written.is_err() {
            cluster.close(conn);
            return false;
        }
    }
    !matches!(transmit, Some(MockTransmit::Closed))
}
