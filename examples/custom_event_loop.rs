//! Driving the IO-free core `Client` yourself: no async runtime, no transport crate, only
//! std sockets in non-blocking mode and a simple poll loop that sleeps at most until the
//! client's next timer.
//!
//! ```text
//! cargo run --example custom_event_loop                        # an in-process mock cluster
//! KAFKA_BROKERS=127.0.0.1:9092 [KAFKA_BROKER_VERSION=2.8] [KAFKA_TOPIC=t] cargo run --example custom_event_loop
//! ```
//!
//! It bootstraps, then produces 1,000 records (to `KAFKA_TOPIC` when set, to the mock's
//! `events` topic without brokers) and counts their delivery reports.
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

use grete::client::{
    Client, ConnectionHandle, Event, Io, OpId, Output, ProduceRecord, ZkError, ZkErrorKind,
};
use grete::cluster::Cluster;
use grete::config::{Bootstrap, BrokerAddress, ClientConfig};
use grete::error::{Error, TransportError, TransportErrorKind};
use grete::mock::{MockCluster, MockConfig, MockConn, MockTransmit};
use grete::producer::ProducerConfig;

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
    /// Records reported delivered / failed.
    delivered: u64,
    failed: u64,
}

/// What [`run`] did.
pub struct Outcome {
    pub cluster: Cluster,
    pub delivered: u64,
    pub failed: u64,
}

impl EventLoop {
    /// Runs until `op` finishes (the core guarantees it does, by `request_timeout`).
    fn wait(&mut self, op: OpId) -> Result<Output, Error> {
        let mut result = None;
        self.run_until(self.client.config().request_timeout * 2, |l| {
            result = result.take().or_else(|| l.drain(op));
            result.is_some()
        });
        result.unwrap_or_else(|| Err(Error::timeout("custom event loop")))
    }

    /// Turns the loop until `done` (called after each drain) says so, or `limit` passed.
    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Self) -> bool) {
        let limit = Instant::now() + limit;
        while Instant::now() < limit {
            let now = Instant::now();
            if self.client.poll_timeout().is_some_and(|t| t <= now) {
                self.client.handle_timeout(now);
            }
            if done(self) {
                return;
            }
            let moved = self.pump();
            if done(self) {
                return;
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
                    // One report per batch: the outcome of `count` records.
                    Event::Delivery(report) => match report.result {
                        Ok(_) => self.delivered += u64::from(report.count),
                        Err(e) => {
                            eprintln!("({} records failed: {e})", report.count);
                            self.failed += u64::from(report.count);
                        }
                    },
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
    topic: Option<&str>,
) -> Result<Outcome, Box<dyn std::error::Error>> {
    let mut event_loop = EventLoop {
        client: Client::new(config)?,
        links: BTreeMap::new(),
        mock,
        buf: Vec::new(),
        delivered: 0,
        failed: 0,
    };
    let op = event_loop.client.update_cluster(Instant::now());
    event_loop.wait(op)?;
    let cluster = event_loop.client.cluster().clone();
    if let Some(topic) = topic {
        produce(&mut event_loop, topic, 1000)?;
    }
    event_loop.client.close(Instant::now());
    event_loop.drain(op);
    Ok(Outcome {
        cluster,
        delivered: event_loop.delivered,
        failed: event_loop.failed,
    })
}

/// Produces `count` records to `topic` and turns the loop until each has its outcome.
fn produce(
    event_loop: &mut EventLoop,
    topic: &str,
    count: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let op = event_loop
        .client
        .topic_metadata(Instant::now(), vec![topic.to_owned()], true);
    event_loop.wait(op)?;
    let producer =
        event_loop
            .client
            .add_producer(Instant::now(), topic, ProducerConfig::default())?;
    for i in 0..count {
        let value = format!("record {i}");
        let now = Instant::now();
        let record = ProduceRecord::value(value.as_bytes(), 1_700_000_000_000 + i as i64);
        // O(1): the record is copied into its partition's batch. `true` means a batch
        // opened or filled: drive the client soon (here: at once).
        let (_, drive) = event_loop.client.produce(now, producer, &record)?;
        if drive {
            event_loop.client.handle_timeout(now);
            event_loop.drain(op);
        }
    }
    event_loop.client.flush(Instant::now(), producer);
    event_loop.client.handle_timeout(Instant::now());
    let timeout = event_loop.client.config().request_timeout * 3;
    event_loop.run_until(timeout, |l| {
        l.drain(op);
        l.delivered + l.failed == count
    });
    Ok(())
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

/// Bootstraps from the mock cluster and produces to its `events` topic (used by the
/// tests).
pub fn bootstrap_mock() -> Result<Outcome, Box<dyn std::error::Error>> {
    let (config, cluster) = mock_setup()?;
    run(config, Some(cluster), Some("events"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let topic = std::env::var("KAFKA_TOPIC").ok();
    let outcome = match std::env::var("KAFKA_BROKERS") {
        Ok(list) if !list.trim().is_empty() => {
            let mut config = ClientConfig {
                bootstrap: Bootstrap::Brokers(BrokerAddress::parse(&list)?),
                request_timeout: Duration::from_secs(10),
                ..ClientConfig::default()
            };
            // Like PyKafka, the default is 0.9.0's protocol; say `2.8` (or your brokers'
            // version) for anything newer, and the client asks the brokers for theirs.
            if let Ok(v) = std::env::var("KAFKA_BROKER_VERSION") {
                config.broker_version = grete::config::BrokerVersion::parse(&v)?;
            }
            run(config, None, topic.as_deref())?
        }
        _ => {
            println!("KAFKA_BROKERS is not set: using an in-process mock cluster");
            let (config, cluster) = mock_setup()?;
            run(config, Some(cluster), Some("events"))?
        }
    };
    let cluster = outcome.cluster;
    println!("brokers:");
    for b in cluster.brokers() {
        println!("  {} at {}:{}", b.id, b.host, b.port);
    }
    println!("topics:");
    for t in cluster.topics() {
        println!("  {} ({} partitions)", t.name, t.partitions.len());
    }
    println!(
        "produced: {} delivered, {} failed",
        outcome.delivered, outcome.failed
    );
    Ok(())
}
