//! Deterministic simulation: a core [`Client`] and a [`MockCluster`] on virtual time.
//!
//! [`Sim`] plays the transport. It fulfils [`Io::Connect`] by connecting to the mock
//! broker whose (host, port) matches, moves bytes both ways through a simulated network
//! (per-direction latency drawn from a range, writes split into several reads and queued
//! writes merged into one, all decided by the seed), answers [`Io::ZooKeeper`] reads from
//! the cluster's live brokers, and jumps virtual time straight to the next thing that can
//! happen: it never sleeps. Every run is bounded by a number of steps and an amount of
//! virtual time, so a bug shows up as a [`SimError`] rather than a hang, and the same seed
//! replays the same run exactly.
//!
//! Use it in your own tests with the `mock` feature:
//!
//! ```
//! use grete::client::{Event, Output};
//! use grete::mock::sim::{Sim, SimConfig};
//! use grete::mock::MockConfig;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let cluster = MockConfig::new(3).with_topic("events", 4, 2);
//! let mut sim = Sim::new(cluster, SimConfig::seeded(42), |config| {
//!     config.client_id = "my-test".into();
//! })?;
//! let now = sim.now();
//! let op = sim.client.update_cluster(now);
//! let result = sim.wait_op(op)?;
//! assert!(matches!(result, Ok(Output::Cluster)));
//! assert_eq!(sim.client.cluster().brokers().count(), 3);
//!
//! // Faults: take the leader of partition 0 down and ask for offsets again.
//! let leader = sim.cluster.leader("events", 0).unwrap();
//! let now = sim.now();
//! sim.cluster.broker_down(now, leader);
//! let op = sim.client.list_offsets(now, "events", vec![(0, -1)]);
//! assert!(sim.wait_op(op)?.is_ok());
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use super::{MockCluster, MockConfig, MockConn, MockTransmit, SplitMix};
use crate::client::{Client, ConnectionHandle, Event, Io, OpId, Output};
use crate::config::{Bootstrap, BrokerAddress, ClientConfig};
use crate::error::{Error, TransportError, TransportErrorKind};
use crate::zk::{ZkError, ZkErrorKind, ZkOpId, ZkRequest, ZkResponse};

/// How the simulated network behaves, and the run's bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SimConfig {
    /// Seeds the network's choices (latency, splits, merges).
    pub seed: u64,
    /// One-way latency of each write, drawn uniformly from this range (inclusive).
    pub latency: (Duration, Duration),
    /// How long a connection attempt takes to succeed or be refused.
    pub connect_latency: Duration,
    /// The largest single read; a write is split into reads of random sizes up to this.
    /// `usize::MAX` splits nothing (beyond [`split_probability`](Self::split_probability)).
    pub max_read: usize,
    /// The chance, in percent, that a delivery is split into several reads at all.
    pub split_probability: u8,
    /// The chance, in percent, that a write waits a little so that it arrives together
    /// with the next ones (many frames in one read).
    pub merge_probability: u8,
    /// The most steps a run may take (each step handles one instant of virtual time).
    pub max_steps: u64,
    /// The most virtual time a run may take from the start of the simulation.
    pub max_time: Duration,
    /// The ZooKeeper chroot under which the simulated ZooKeeper serves `/brokers/ids`.
    pub zk_chroot: String,
}

impl SimConfig {
    /// Defaults with `seed`: 0-2 ms latency, reads split and merged half of the time,
    /// at most 100 000 steps and one virtual hour.
    pub fn seeded(seed: u64) -> Self {
        SimConfig {
            seed,
            latency: (Duration::ZERO, Duration::from_millis(2)),
            connect_latency: Duration::from_millis(1),
            max_read: 64,
            split_probability: 50,
            merge_probability: 50,
            max_steps: 100_000,
            max_time: Duration::from_secs(3600),
            zk_chroot: String::new(),
        }
    }

    /// A network that neither splits nor merges and has a fixed latency.
    pub fn plain(seed: u64, latency: Duration) -> Self {
        SimConfig {
            latency: (latency, latency),
            max_read: usize::MAX,
            split_probability: 0,
            merge_probability: 0,
            ..SimConfig::seeded(seed)
        }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig::seeded(0)
    }
}

/// Why a simulation run stopped without reaching its goal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The run took more than [`SimConfig::max_steps`] steps.
    #[error("simulation (seed {seed}) exceeded {steps} steps")]
    StepLimit {
        /// The seed, to replay the run.
        seed: u64,
        /// The limit.
        steps: u64,
    },
    /// The run went past [`SimConfig::max_time`] of virtual time.
    #[error("simulation (seed {seed}) exceeded {elapsed:?} of virtual time")]
    TimeLimit {
        /// The seed, to replay the run.
        seed: u64,
        /// Virtual time elapsed.
        elapsed: Duration,
    },
    /// Virtual time stopped advancing: a thousand steps in a row at one instant. Usually
    /// a timer that `poll_timeout` reports as due but `handle_timeout` never clears.
    #[error(
        "simulation (seed {seed}) is stuck at {elapsed:?}: a timer stays due but nothing changes"
    )]
    Livelock {
        /// The seed, to replay the run.
        seed: u64,
        /// Virtual time elapsed.
        elapsed: Duration,
    },
    /// The client's `poll_timeout` (its timer table) is later than one of its timers
    /// computed from scratch: a transport sleeping until it would stall.
    #[error("simulation (seed {seed}) at {elapsed:?}: poll_timeout is later than a due timer")]
    LateTimer {
        /// The seed, to replay the run.
        seed: u64,
        /// Virtual time elapsed.
        elapsed: Duration,
    },
    /// Nothing is left to happen (no timer, no bytes in flight) and the goal is not met.
    #[error("simulation (seed {seed}) went idle after {elapsed:?} before its goal")]
    Idle {
        /// The seed, to replay the run.
        seed: u64,
        /// Virtual time elapsed.
        elapsed: Duration,
    },
    /// The client's configuration was refused.
    #[error("client configuration: {0}")]
    Config(Error),
}

/// What the simulated network did, for tests that want to be sure a path was taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SimStats {
    /// Reads handed to the client.
    pub reads_to_client: u64,
    /// Reads handed to the brokers.
    pub reads_to_server: u64,
    /// Reads (either way) that ended inside a frame.
    pub partial_frame_reads: u64,
    /// Reads (either way) that held the ends of two or more frames.
    pub multi_frame_reads: u64,
    /// Connections the brokers closed.
    pub server_closes: u64,
    /// Connection attempts refused.
    pub refused_connects: u64,
    /// Connection attempts the client made.
    pub connects: u64,
}

/// Follows frame boundaries in one direction of a link (size prefixes only).
#[derive(Debug, Clone, Copy, Default)]
struct FrameTracker {
    /// Bytes of the size prefix seen so far (0-3) and its value so far.
    header_len: u8,
    header: u32,
    /// Body bytes still to come in the current frame.
    body_left: u64,
}

impl FrameTracker {
    /// Feeds one read; returns (frames completed in it, whether it ended mid-frame).
    fn feed(&mut self, mut data: &[u8]) -> (u32, bool) {
        let mut done = 0;
        while !data.is_empty() {
            if self.body_left > 0 {
                let n = (self.body_left.min(data.len() as u64)) as usize;
                self.body_left -= n as u64;
                data = &data[n..];
                if self.body_left == 0 {
                    done += 1;
                }
                continue;
            }
            self.header = (self.header << 8) | u32::from(data[0]);
            self.header_len += 1;
            data = &data[1..];
            if self.header_len == 4 {
                self.body_left = u64::from(self.header);
                self.header_len = 0;
                self.header = 0;
                if self.body_left == 0 {
                    done += 1;
                }
            }
        }
        (done, self.body_left > 0 || self.header_len > 0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum NetKind {
    Connect,
    ToServer(Vec<u8>),
    ToClient(Vec<u8>),
    /// The broker closed its end: the client sees the close after the bytes before it.
    ServerClosed,
    Zk(ZkOpId, Result<ZkResponse, ZkError>),
}

#[derive(Debug, Clone)]
struct NetEvent {
    at: Instant,
    seq: u64,
    conn: Option<ConnectionHandle>,
    kind: NetKind,
}

#[derive(Debug)]
struct Link {
    host: String,
    port: u16,
    mock: Option<MockConn>,
    /// The last scheduled arrival in each direction: TCP keeps order.
    last_to_server: Instant,
    last_to_client: Instant,
    frames_to_server: FrameTracker,
    frames_to_client: FrameTracker,
}

/// A client and a mock cluster on virtual time. See the [module docs](self).
pub struct Sim {
    /// The client under test. Call its operations with [`Sim::now`]; the next run
    /// drains it.
    pub client: Client,
    /// The cluster: inject faults and inspect state between runs.
    pub cluster: MockCluster,
    config: SimConfig,
    rng: SplitMix,
    start: Instant,
    now: Instant,
    steps: u64,
    /// Steps in a row at the same instant.
    stalled: u32,
    seq: u64,
    links: BTreeMap<ConnectionHandle, Link>,
    net: Vec<NetEvent>,
    events: Vec<Event>,
    /// When each of `events` came out of the client.
    event_times: Vec<Instant>,
    buf: Vec<u8>,
    stats: SimStats,
    unreachable: Vec<(String, u16)>,
}

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim")
            .field("seed", &self.config.seed)
            .field("elapsed", &self.elapsed())
            .field("steps", &self.steps)
            .field("links", &self.links.len())
            .field("in_flight", &self.net.len())
            .finish_non_exhaustive()
    }
}

impl Sim {
    /// A cluster built from `cluster` and a client bootstrapped from its brokers, with
    /// `rng_seed` set from the simulation seed; `configure` may change the client's
    /// configuration further (bootstrap from ZooKeeper, timeouts, `broker_version`...).
    pub fn new(
        cluster: MockConfig,
        config: SimConfig,
        configure: impl FnOnce(&mut ClientConfig),
    ) -> Result<Sim, SimError> {
        let cluster = MockCluster::new(cluster);
        let mut client_config = ClientConfig {
            bootstrap: Bootstrap::Brokers(
                cluster
                    .config()
                    .brokers
                    .iter()
                    .map(|b| BrokerAddress::new(b.host.as_str(), b.port))
                    .collect(),
            ),
            rng_seed: Some(config.seed),
            ..ClientConfig::default()
        };
        configure(&mut client_config);
        let client = Client::new(client_config).map_err(SimError::Config)?;
        Ok(Sim::with_parts(client, cluster, config))
    }

    /// A simulation of an existing client and cluster.
    pub fn with_parts(client: Client, cluster: MockCluster, config: SimConfig) -> Sim {
        // The one reading of the real clock: an origin for virtual time. Nothing depends
        // on its value, only on durations from it, so runs stay reproducible.
        #[allow(clippy::disallowed_methods)]
        let start = Instant::now();
        Sim {
            client,
            cluster,
            rng: SplitMix(config.seed ^ 0x5349_4d55_4c41_5445),
            config,
            start,
            now: start,
            steps: 0,
            stalled: 0,
            seq: 0,
            links: BTreeMap::new(),
            net: Vec::new(),
            events: Vec::new(),
            event_times: Vec::new(),
            buf: Vec::new(),
            stats: SimStats::default(),
            unreachable: Vec::new(),
        }
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Virtual time since the simulation started.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// What the network did so far.
    pub fn stats(&self) -> SimStats {
        self.stats
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The simulation's configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Client events collected so far (operation results are taken out by
    /// [`wait_op`](Self::wait_op)); this drains them.
    pub fn take_events(&mut self) -> Vec<Event> {
        self.event_times.clear();
        std::mem::take(&mut self.events)
    }

    /// Client events collected so far, each with the virtual time it came out of the
    /// client; this drains them.
    pub fn take_timed_events(&mut self) -> Vec<(Instant, Event)> {
        let times = std::mem::take(&mut self.event_times);
        times
            .into_iter()
            .zip(std::mem::take(&mut self.events))
            .collect()
    }

    /// Client events collected so far, without draining them.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Makes new connection attempts to (host, port) go unanswered (a firewall dropping
    /// packets) until [`set_reachable`](Self::set_reachable). The simulation never
    /// reports anything for them: the client gives up after its `connect_timeout`.
    pub fn set_unreachable(&mut self, host: &str, port: u16) {
        self.unreachable.push((host.to_owned(), port));
    }

    /// Undoes [`set_unreachable`](Self::set_unreachable) for new connection attempts.
    pub fn set_reachable(&mut self, host: &str, port: u16) {
        self.unreachable.retain(|(h, p)| !(h == host && *p == port));
    }

    /// How many client connections are open on the simulated network.
    pub fn open_links(&self) -> usize {
        self.links.values().filter(|l| l.mock.is_some()).count()
    }

    /// Runs until `done` holds (checked after every step), the network goes idle, or a
    /// bound is hit.
    pub fn run_until(&mut self, mut done: impl FnMut(&mut Sim) -> bool) -> Result<(), SimError> {
        loop {
            self.drain();
            if done(self) {
                return Ok(());
            }
            if !self.step()? {
                self.drain();
                if done(self) {
                    return Ok(());
                }
                return Err(SimError::Idle {
                    seed: self.config.seed,
                    elapsed: self.elapsed(),
                });
            }
        }
    }

    /// Runs for `duration` of virtual time (less if the simulation goes idle first:
    /// then time simply jumps to the end).
    pub fn run_for(&mut self, duration: Duration) -> Result<(), SimError> {
        let until = self.now + duration;
        loop {
            self.drain();
            match self.next_time() {
                Some(t) if t <= until => {
                    self.step()?;
                }
                _ => {
                    self.now = self.now.max(until);
                    self.drain();
                    return Ok(());
                }
            }
        }
    }

    /// Runs until operation `op` finishes and returns its result (the event is taken
    /// out of [`events`](Self::events)).
    pub fn wait_op(&mut self, op: OpId) -> Result<Result<Output, Error>, SimError> {
        let mut found = None;
        self.run_until(|sim| {
            let at = sim
                .events
                .iter()
                .position(|e| matches!(e, Event::Done { op: o, .. } if *o == op));
            if let Some(i) = at {
                sim.event_times.remove(i);
                found = Some(sim.events.remove(i));
            }
            found.is_some()
        })?;
        match found {
            Some(Event::Done { result, .. }) => Ok(result),
            _ => Err(SimError::Idle {
                seed: self.config.seed,
                elapsed: self.elapsed(),
            }),
        }
    }

    /// Takes everything the client and the cluster have to give at the current instant
    /// and puts it on the network.
    fn drain(&mut self) {
        let now = self.now;
        // Bounded: each pass moves what is ready now; a handful of passes settles it.
        for _ in 0..64 {
            let mut moved = false;
            while let Some(io) = self.client.poll_io() {
                moved = true;
                self.io(io);
            }
            loop {
                self.buf.clear();
                let Some(conn) = self.client.poll_transmit(now, &mut self.buf) else {
                    break;
                };
                moved = true;
                let bytes = std::mem::take(&mut self.buf);
                self.send(conn, true, bytes);
            }
            while let Some(e) = self.client.poll_event() {
                moved = true;
                self.events.push(e);
                self.event_times.push(now);
            }
            let links: Vec<(ConnectionHandle, MockConn)> = self
                .links
                .iter()
                .filter_map(|(c, l)| l.mock.map(|m| (*c, m)))
                .collect();
            for (conn, mock) in links {
                let mut buf = Vec::new();
                loop {
                    match self.cluster.poll_transmit(now, mock, &mut buf) {
                        Some(MockTransmit::Data) => continue,
                        Some(MockTransmit::Closed) => {
                            moved = true;
                            if !buf.is_empty() {
                                self.send(conn, false, std::mem::take(&mut buf));
                            }
                            if let Some(l) = self.links.get_mut(&conn) {
                                l.mock = None;
                            }
                            let at = self.arrival(conn, false);
                            self.push(at, Some(conn), NetKind::ServerClosed);
                            break;
                        }
                        None => {
                            if !buf.is_empty() {
                                moved = true;
                                self.send(conn, false, std::mem::take(&mut buf));
                            }
                            break;
                        }
                    }
                }
            }
            if !moved {
                break;
            }
        }
    }

    fn io(&mut self, io: Io) {
        match io {
            Io::Connect { conn, host, port } => {
                self.stats.connects += 1;
                self.links.insert(
                    conn,
                    Link {
                        host,
                        port,
                        mock: None,
                        last_to_server: self.now,
                        last_to_client: self.now,
                        frames_to_server: FrameTracker::default(),
                        frames_to_client: FrameTracker::default(),
                    },
                );
                let unreachable = self.unreachable.iter().any(|(h, p)| {
                    self.links
                        .get(&conn)
                        .is_some_and(|l| l.host == *h && l.port == *p)
                });
                // Unreachable: the SYN goes nowhere and nothing ever happens. The client
                // abandons the attempt at its connect deadline (transports need no
                // timeout of their own).
                if !unreachable {
                    let at = self.now + self.config.connect_latency;
                    self.push(at, Some(conn), NetKind::Connect);
                }
            }
            Io::Close { conn } => {
                if let Some(link) = self.links.remove(&conn) {
                    if let Some(m) = link.mock {
                        self.cluster.close(m);
                    }
                }
                self.net.retain(|e| e.conn != Some(conn));
            }
            Io::ZooKeeper { op, request } => {
                let result = self.zookeeper(&request);
                let at = self.now + self.latency();
                self.push(at, None, NetKind::Zk(op, result));
            }
        }
    }

    /// The simulated ZooKeeper: `/brokers/ids` lists the live brokers, each with its
    /// 0.9-style registration JSON.
    fn zookeeper(&self, request: &ZkRequest) -> Result<ZkResponse, ZkError> {
        let ids = format!("{}/brokers/ids", self.config.zk_chroot);
        let live = || {
            self.cluster
                .config()
                .brokers
                .iter()
                .filter(|b| self.cluster.is_up(b.id))
        };
        let no_node = |path: &str| ZkError {
            kind: ZkErrorKind::NoNode,
            message: format!("no node {path}"),
        };
        match request {
            ZkRequest::GetChildren { path } if *path == ids => Ok(ZkResponse::Children(
                live().map(|b| b.id.to_string()).collect(),
            )),
            ZkRequest::GetData { path } => {
                let id = path
                    .strip_prefix(ids.as_str())
                    .and_then(|rest| rest.strip_prefix('/'))
                    .and_then(|id| id.parse::<i32>().ok());
                match live().find(|b| Some(b.id) == id) {
                    Some(b) => Ok(ZkResponse::Data(
                        format!(
                            "{{\"jmx_port\":-1,\"timestamp\":\"0\",\"endpoints\":[\"PLAINTEXT://{}:{}\"],\"host\":\"{}\",\"version\":2,\"port\":{}}}",
                            b.host, b.port, b.host, b.port
                        )
                        .into_bytes(),
                    )),
                    None => Err(no_node(path)),
                }
            }
            ZkRequest::GetChildren { path } => Err(no_node(path)),
        }
    }

    fn latency(&mut self) -> Duration {
        let (lo, hi) = self.config.latency;
        if hi <= lo {
            return lo;
        }
        let span = (hi - lo).as_micros() as u64;
        lo + Duration::from_micros(self.rng.below(span + 1))
    }

    fn chance(&mut self, percent: u8) -> bool {
        percent > 0 && self.rng.below(100) < u64::from(percent)
    }

    /// When a write made now arrives: after a drawn latency, never before the previous
    /// write in the same direction; sometimes a little later, so that writes merge.
    fn arrival(&mut self, conn: ConnectionHandle, to_server: bool) -> Instant {
        let mut at = self.now + self.latency();
        if self.chance(self.config.merge_probability) {
            at += Duration::from_micros(self.rng.below(500));
        }
        let Some(link) = self.links.get_mut(&conn) else {
            return at;
        };
        let last = if to_server {
            &mut link.last_to_server
        } else {
            &mut link.last_to_client
        };
        let at = at.max(*last);
        *last = at;
        at
    }

    fn send(&mut self, conn: ConnectionHandle, to_server: bool, bytes: Vec<u8>) {
        if !self.links.contains_key(&conn) || bytes.is_empty() {
            return;
        }
        let at = self.arrival(conn, to_server);
        let kind = if to_server {
            NetKind::ToServer(bytes)
        } else {
            NetKind::ToClient(bytes)
        };
        self.push(at, Some(conn), kind);
    }

    fn push(&mut self, at: Instant, conn: Option<ConnectionHandle>, kind: NetKind) {
        self.seq += 1;
        self.net.push(NetEvent {
            at,
            seq: self.seq,
            conn,
            kind,
        });
    }

    fn next_time(&self) -> Option<Instant> {
        let net = self.net.iter().map(|e| e.at).min();
        [net, self.client.poll_timeout(), self.cluster.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Advances to the next instant something happens and handles everything due then.
    /// Returns `Ok(false)` if nothing is left to happen.
    pub fn step(&mut self) -> Result<bool, SimError> {
        self.drain();
        let Some(next) = self.next_time() else {
            return Ok(false);
        };
        self.steps += 1;
        if self.steps > self.config.max_steps {
            return Err(SimError::StepLimit {
                seed: self.config.seed,
                steps: self.config.max_steps,
            });
        }
        if next <= self.now {
            self.stalled += 1;
            if self.stalled >= 1000 {
                return Err(SimError::Livelock {
                    seed: self.config.seed,
                    elapsed: self.elapsed(),
                });
            }
        } else {
            self.stalled = 0;
        }
        self.now = self.now.max(next);
        if self.elapsed() > self.config.max_time {
            return Err(SimError::TimeLimit {
                seed: self.config.seed,
                elapsed: self.elapsed(),
            });
        }
        let now = self.now;
        // Network deliveries due now, in the order they were scheduled.
        let mut due: Vec<NetEvent> = Vec::new();
        let mut rest = Vec::with_capacity(self.net.len());
        for e in self.net.drain(..) {
            if e.at <= now {
                due.push(e);
            } else {
                rest.push(e);
            }
        }
        self.net = rest;
        due.sort_by_key(|e| (e.at, e.seq));
        let mut i = 0;
        while i < due.len() {
            let e = due[i].clone();
            i += 1;
            match e.kind {
                NetKind::Connect => self.deliver_connect(e.conn),
                NetKind::ToServer(mut bytes) => {
                    // Merge the following writes on this link that are also due.
                    while let Some(NetKind::ToServer(more)) =
                        due.get(i).filter(|n| n.conn == e.conn).map(|n| &n.kind)
                    {
                        bytes.extend_from_slice(more);
                        i += 1;
                    }
                    self.deliver(e.conn, true, &bytes);
                }
                NetKind::ToClient(mut bytes) => {
                    while let Some(NetKind::ToClient(more)) =
                        due.get(i).filter(|n| n.conn == e.conn).map(|n| &n.kind)
                    {
                        bytes.extend_from_slice(more);
                        i += 1;
                    }
                    self.deliver(e.conn, false, &bytes);
                }
                NetKind::ServerClosed => {
                    self.stats.server_closes += 1;
                    if let Some(conn) = e.conn {
                        if self.links.remove(&conn).is_some() {
                            self.client.handle_closed(
                                now,
                                conn,
                                Some(TransportError::closed("connection closed by the broker")),
                            );
                        }
                    }
                }
                NetKind::Zk(op, result) => self.client.handle_zk_result(now, op, result),
            }
            self.drain();
        }
        if self.client.poll_timeout().is_some_and(|t| t <= now) {
            self.client.handle_timeout(now);
            // The core's timer contract, which lets transports sleep until
            // `poll_timeout` without guarding against spinning: after
            // `handle_timeout(now)` no timer of the client is due at `now` any more.
            if self.client.poll_timeout().is_some_and(|t| t <= now) {
                return Err(SimError::Livelock {
                    seed: self.config.seed,
                    elapsed: self.elapsed(),
                });
            }
        }
        if self.cluster.poll_timeout().is_some_and(|t| t <= now) {
            self.cluster.handle_timeout(now);
        }
        self.drain();
        if let Some(truth) = self.client.scan_timeout() {
            if self.client.poll_timeout().map_or(true, |t| t > truth) {
                return Err(SimError::LateTimer {
                    seed: self.config.seed,
                    elapsed: self.elapsed(),
                });
            }
        }
        Ok(true)
    }

    fn deliver_connect(&mut self, conn: Option<ConnectionHandle>) {
        let Some(conn) = conn else { return };
        let Some(link) = self.links.get(&conn) else {
            return;
        };
        let now = self.now;
        match self.cluster.connect_addr(now, &link.host, link.port) {
            Ok(mock) => {
                if let Some(link) = self.links.get_mut(&conn) {
                    link.mock = Some(mock);
                }
                self.client.handle_connected(now, conn);
            }
            Err(e) => {
                self.stats.refused_connects += 1;
                self.links.remove(&conn);
                // A down broker and an address nobody listens on look the same to a
                // client: the connection is refused.
                let error = TransportError::new(TransportErrorKind::Refused, e.to_string());
                self.client.handle_connect_failed(now, conn, error);
            }
        }
    }

    /// Hands bytes to one side, split into reads of random sizes.
    fn deliver(&mut self, conn: Option<ConnectionHandle>, to_server: bool, bytes: &[u8]) {
        let Some(conn) = conn else { return };
        let Some(link) = self.links.get(&conn) else {
            return;
        };
        // Bytes to the server need its end open; bytes to the client were sent before
        // any close and still arrive.
        let mock = link.mock;
        if to_server && mock.is_none() {
            return;
        }
        let now = self.now;
        let split = self.config.max_read < usize::MAX && self.chance(self.config.split_probability);
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = if split {
                1 + self.rng.below(self.config.max_read.max(1) as u64) as usize
            } else {
                rest.len()
            };
            let (chunk, tail) = rest.split_at(n.min(rest.len()));
            rest = tail;
            if let Some(link) = self.links.get_mut(&conn) {
                let tracker = if to_server {
                    self.stats.reads_to_server += 1;
                    &mut link.frames_to_server
                } else {
                    self.stats.reads_to_client += 1;
                    &mut link.frames_to_client
                };
                let (frames, partial) = tracker.feed(chunk);
                self.stats.multi_frame_reads += u64::from(frames >= 2);
                self.stats.partial_frame_reads += u64::from(partial);
            }
            if let (true, Some(mock)) = (to_server, mock) {
                self.cluster.handle_data(now, mock, chunk);
            } else {
                self.client.handle_data(now, conn, chunk);
            }
        }
    }
}
