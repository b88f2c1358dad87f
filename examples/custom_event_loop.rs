//! Driving the IO-free core `Client` yourself: no async runtime, no transport crate, only
//! std sockets in non-blocking mode and a simple poll loop that sleeps at most until the
//! client's next timer.
//!
//! ```text
//! cargo run --example custom_event_loop                        # an in-process mock cluster
//! KAFKA_BROKERS=127.0.0.1:9092 cargo run --example custom_event_loop
//! ```
//!
//! Without `KAFKA_BROKERS` the same loop moves the bytes to and from an in-memory
//! `grete::mock::MockCluster` (which speaks the real protocol) instead of sockets.
//! ZooKeeper bootstrap and TLS are left out: a transport crate does those.

// This example is a transport: reading the clock is its job (clippy.toml forbids it in
// the core).
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use grete::client::{Client, ConnectionHandle, Event, Io, OpId, Output, ZkError, ZkErrorKind};
use grete::cluster::Cluster;
use grete::config::{Bootstrap, BrokerAddress, ClientConfig};
use grete::error::{Error, TransportError, TransportErrorKind};
use grete::mock::{MockCluster, MockConfig, MockConn, MockTransmit};

/// Where a connection's bytes go.
enum Peer {
    Socket(TcpStream),
    Mock(MockConn),
}

struct Link {
    peer: Peer,
    /// Bytes the client produced that the peer has not taken yet.
    out: Vec<u8>,
}

/// The event loop: a client, its connections, and (in mock mode) the cluster.
struct EventLoop {
    client: Client,
    links: BTreeMap<ConnectionHandle, Link>,
    mock: Option<MockCluster>,
    buf: Vec<u8>,
}

impl EventLoop {
    /// Runs until `op` finishes (the core guarantees it does, by `request_timeout`).
    fn wait(&mut self, op: OpId) -> Result<Output, Error> {
        // A safety net on top of the core's own deadline.
        let limit = Instant::now() + self.client.config().request_timeout * 2;
        while Instant::now() < limit {
            let now = Instant::now();
            if self.client.poll_timeout().is_some_and(|t| t <= now) {
                self.client.handle_timeout(now);
            }
            if let Some(result) = self.drain(op) {
                return result;
            }
            let moved = self.pump();
            if let Some(result) = self.drain(op) {
                return result;
            }
            if !moved {
                // Nothing to do: sleep until the next timer, but at most 5 ms, since the
                // sockets are polled rather than waited on.
                let now = Instant::now();
                let nap = self
                    .client
                    .poll_timeout()
                    .map_or(Duration::from_millis(5), |t| {
                        t.saturating_duration_since(now)
                    })
                    .min(Duration::from_millis(5));
                std::thread::sleep(nap);
            }
        }
        Err(Error::timeout("custom event loop"))
    }

    /// Drains the client in the documented order; returns `op`'s result if it finished.
    fn drain(&mut self, op: OpId) -> Option<Result<Output, Error>> {
        let mut result = None;
        loop {
            let mut moved = false;
            while let Some(io) = self.client.poll_io() {
                moved = true;
                self.io(io);
            }
            let now = Instant::now();
            loop {
                self.buf.clear();
                let Some(conn) = self.client.poll_transmit(now, &mut self.buf) else {
                    break;
                };
                moved = true;
                if let Some(link) = self.links.get_mut(&conn) {
                    link.out.extend_from_slice(&self.buf);
                }
            }
            while let Some(event) = self.client.poll_event() {
                moved = true;
                match event {
                    Event::Done {
                        op: done,
                        result: r,
                    } if done == op => result = Some(r),
                    Event::BrokerDown {
                        host, port, error, ..
                    } => eprintln!("(broker {host}:{port} down: {error})"),
                    _ => {}
                }
            }
            if !moved {
                return result;
            }
        }
    }

    fn io(&mut self, io: Io) {
        let now = Instant::now();
        match io {
            Io::Connect { conn, host, port } => {
                let peer = match &mut self.mock {
                    Some(cluster) => cluster
                        .connect_addr(now, &host, port)
                        .map(Peer::Mock)
                        .map_err(|e| {
                            TransportError::new(TransportErrorKind::Refused, e.to_string())
                        }),
                    None => connect(&host, port, self.client.config().connect_timeout),
                };
                match peer {
                    Ok(peer) => {
                        self.links.insert(
                            conn,
                            Link {
                                peer,
                                out: Vec::new(),
                            },
                        );
                        self.client.handle_connected(Instant::now(), conn);
                    }
                    Err(e) => self.client.handle_connect_failed(Instant::now(), conn, e),
                }
            }
            Io::Close { conn } => {
                if let (Some(link), Some(cluster)) = (self.links.remove(&conn), &mut self.mock) {
                    if let Peer::Mock(m) = link.peer {
                        cluster.close(m);
                    }
                }
            }
            Io::ZooKeeper { op, .. } => {
                let error = ZkError {
                    kind: ZkErrorKind::Other,
                    message: "this example does not speak ZooKeeper".into(),
                };
                self.client.handle_zk_result(now, op, Err(error));
            }
            _ => {}
        }
    }

    /// Moves bytes between the client and its peers; returns whether anything moved.
    fn pump(&mut self) -> bool {
        let mut moved = false;
        let mut closed: Vec<(ConnectionHandle, Option<TransportError>)> = Vec::new();
        let mut read = [0u8; 16 * 1024];
        for (&conn, link) in &mut self.links {
            let now = Instant::now();
            match &mut link.peer {
                Peer::Socket(stream) => {
                    // Write what the socket takes without blocking.
                    while !link.out.is_empty() {
                        match stream.write(&link.out) {
                            Ok(0) => break,
                            Ok(n) => {
                                link.out.drain(..n);
                                moved = true;
                            }
                            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                            Err(e) => {
                                closed.push((conn, Some(e.into())));
                                break;
                            }
                        }
                    }
                    // Read what has arrived, a bounded number of times per pass.
                    for _ in 0..16 {
                        match stream.read(&mut read) {
                            Ok(0) => {
                                closed.push((
                                    conn,
                                    Some(TransportError::closed("closed by the broker")),
                                ));
                                break;
                            }
                            Ok(n) => {
                                moved = true;
                                self.client.handle_data(now, conn, &read[..n]);
                            }
                            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                            Err(e) => {
                                closed.push((conn, Some(e.into())));
                                break;
                            }
                        }
                    }
                }
                Peer::Mock(m) => {
                    let Some(cluster) = &mut self.mock else {
                        continue;
                    };
                    if !link.out.is_empty() {
                        cluster.handle_data(now, *m, &link.out);
                        link.out.clear();
                        moved = true;
                    }
                    if cluster.poll_timeout().is_some_and(|t| t <= now) {
                        cluster.handle_timeout(now);
                    }
                    self.buf.clear();
                    let mut gone = false;
                    while let Some(t) = cluster.poll_transmit(now, *m, &mut self.buf) {
                        if t == MockTransmit::Closed {
                            gone = true;
                            break;
                        }
                    }
                    if !self.buf.is_empty() {
                        moved = true;
                        self.client.handle_data(now, conn, &self.buf);
                    }
                    if gone {
                        closed.push((conn, Some(TransportError::closed("closed by the broker"))));
                    }
                }
            }
        }
        for (conn, error) in closed {
            moved = true;
            self.links.remove(&conn);
            self.client.handle_closed(Instant::now(), conn, error);
        }
        moved
    }
}

/// A TCP connection (the one blocking step: bounded by `connect_timeout`), then
/// non-blocking.
fn connect(host: &str, port: u16, timeout: Duration) -> Result<Peer, TransportError> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| TransportError::new(TransportErrorKind::Resolve, e.to_string()))?
        .collect();
    let mut last = TransportError::new(TransportErrorKind::Resolve, "no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                s.set_nonblocking(true)?;
                let _ = s.set_nodelay(true);
                return Ok(Peer::Socket(s));
            }
            Err(e) => last = e.into(),
        }
    }
    Err(last)
}

/// Bootstraps the client from `config` through the event loop and returns the cluster.
fn run(
    config: ClientConfig,
    mock: Option<MockCluster>,
) -> Result<Cluster, Box<dyn std::error::Error>> {
    let mut event_loop = EventLoop {
        client: Client::new(config)?,
        links: BTreeMap::new(),
        mock,
        buf: Vec::new(),
    };
    let op = event_loop.client.update_cluster(Instant::now());
    event_loop.wait(op)?;
    let cluster = event_loop.client.cluster().clone();
    event_loop.client.close(Instant::now());
    event_loop.drain(op);
    Ok(cluster)
}

/// The mock cluster this example uses when `KAFKA_BROKERS` is not set.
fn mock_setup() -> Result<(ClientConfig, MockCluster), Box<dyn std::error::Error>> {
    let cluster = MockCluster::new(MockConfig::new(3).with_topic("events", 3, 2));
    let config = ClientConfig {
        bootstrap: Bootstrap::Brokers(BrokerAddress::parse(&cluster.bootstrap_servers())?),
        ..ClientConfig::default()
    };
    Ok((config, cluster))
}

/// Bootstraps from the mock cluster (used by the tests).
pub fn bootstrap_mock() -> Result<Cluster, Box<dyn std::error::Error>> {
    let (config, cluster) = mock_setup()?;
    run(config, Some(cluster))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster = match std::env::var("KAFKA_BROKERS") {
        Ok(list) if !list.trim().is_empty() => {
            let config = ClientConfig {
                bootstrap: Bootstrap::Brokers(BrokerAddress::parse(&list)?),
                request_timeout: Duration::from_secs(10),
                ..ClientConfig::default()
            };
            run(config, None)?
        }
        _ => {
            println!("KAFKA_BROKERS is not set: using an in-process mock cluster");
            let (config, cluster) = mock_setup()?;
            run(config, Some(cluster))?
        }
    };
    println!("brokers:");
    for b in cluster.brokers() {
        println!("  {} at {}:{}", b.id, b.host, b.port);
    }
    println!("topics:");
    for t in cluster.topics() {
        println!("  {} ({} partitions)", t.name, t.partitions.len());
    }
    Ok(())
}
