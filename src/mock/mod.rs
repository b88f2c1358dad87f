//! An in-memory Kafka cluster for tests (feature `mock`).
//!
//! [`MockCluster`] holds N brokers that speak the real wire protocol through the server
//! side of grete's own codec ([`decode_request`], [`encode_response`]): bytes in, bytes
//! out, on connections the caller opens. Like the rest of the core it does no IO, reads
//! no clock and draws randomness only from its seed, so a test that drives it is
//! reproducible. It knows topics, partitions, leaders, replicas and ISR, stores produced
//! batches with broker-assigned offsets and serves them back, and lets a test inject
//! faults: brokers down and up, leader moves, an error code for the next matching
//! request, added latency, connections dropped mid-response, garbage and oversized frames.
//!
//! The [`sim`] module runs a core [`Client`](crate::client::Client) against a cluster on
//! virtual time; most tests want that rather than this raw interface.
//!
//! To use it in your own tests, enable the feature for them only:
//!
//! ```toml
//! [dev-dependencies]
//! grete = { version = "0.1", features = ["mock"] }
//! ```
//!
//! APIs served: ApiVersions, Metadata, Produce (acks 0, 1, -1), Fetch (size limits,
//! `min_bytes` / `max_wait_ms` on the caller's time), ListOffsets, CreateTopics,
//! DeleteTopics, FindCoordinator, OffsetCommit, OffsetFetch, and SaslHandshake /
//! SaslAuthenticate (PLAIN) when [`MockConfig::sasl`] is set.
//!
//! ```
//! use std::time::Instant;
//! use grete::mock::{MockCluster, MockConfig, MockTransmit};
//! use grete::protocol::header::{decode_response, encode_request};
//! use grete::protocol::frame::FrameDecoder;
//! use grete::protocol::messages::MetadataRequest;
//!
//! let now = Instant::now();
//! let mut cluster = MockCluster::new(MockConfig::new(3).with_topic("events", 2, 2));
//! let conn = cluster.connect(now, 0).unwrap();
//! let mut request = Vec::new();
//! // Metadata v0: an empty topic list asks for every topic.
//! encode_request(&mut request, 0, 7, Some("me"), &MetadataRequest::default()).unwrap();
//! cluster.handle_data(now, conn, &request);
//! let mut reply = Vec::new();
//! assert_eq!(cluster.poll_transmit(now, conn, &mut reply), Some(MockTransmit::Data));
//! let mut frames = FrameDecoder::new(1 << 20);
//! frames.handle_data(&reply);
//! let frame = frames.poll_frame().unwrap().unwrap();
//! let (header, metadata) = decode_response::<MetadataRequest>(frame, 0).unwrap();
//! assert_eq!(header.correlation_id, 7);
//! assert_eq!(metadata.brokers.len(), 3);
//! assert_eq!(metadata.topics[0].partitions.len(), 2);
//! ```
//!
//! [`decode_request`]: crate::protocol::header::decode_request
//! [`encode_response`]: crate::protocol::header::encode_response

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::protocol::frame::FrameDecoder;
use crate::protocol::messages::{ApiKey, FetchRequest, ResponseBody};
use crate::protocol::primitives::Uuid;
use crate::protocol::records::{encode_record_batch, BatchHeader, Record};
use crate::protocol::ErrorCode;

mod config;
mod conn;
mod data;
mod errors;
mod fault;
mod groups;
mod handlers;
mod idempotence;
mod log;
mod sasl;
mod sessions;
pub mod sim;
#[cfg(test)]
mod tests;

pub use config::{BrokerMode, MockBrokerConfig, MockConfig, MockSasl, MockTopicConfig};
pub use fault::{Fault, FaultAction, Matcher};

use conn::{process_frame, queue_close, respond, Chunk, Conn, SaslState};
use log::Log;

/// A connection to a mock broker, opened with [`MockCluster::connect`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MockConn(pub u64);

/// Why a connection attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// No broker has this id.
    #[error("no mock broker with id {0}")]
    UnknownBroker(i32),
    /// No broker listens on this address.
    #[error("no mock broker at {host}:{port}")]
    UnknownAddress {
        /// The host asked for.
        host: String,
        /// The port asked for.
        port: u16,
    },
    /// The broker is down: connection refused.
    #[error("mock broker {0} is down: connection refused")]
    BrokerDown(i32),
}

/// What [`MockCluster::poll_transmit`] produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum MockTransmit {
    /// Bytes were appended to the buffer.
    Data,
    /// The broker closed the connection (everything it sent before was handed out
    /// first). The handle is no longer valid.
    Closed,
}

/// One request a broker received, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// When it was processed.
    pub at: Instant,
    /// The broker.
    pub broker: i32,
    /// The connection.
    pub conn: MockConn,
    /// The API.
    pub api: ApiKey,
    /// The version.
    pub version: i16,
    /// The correlation id.
    pub correlation_id: i32,
    /// The client id.
    pub client_id: Option<String>,
}

/// A topic's state.
#[derive(Debug, Clone)]
pub(crate) struct Topic {
    pub(crate) id: Uuid,
    pub(crate) internal: bool,
    pub(crate) partitions: Vec<Partition>,
}

/// A partition's state.
#[derive(Debug, Clone)]
pub(crate) struct Partition {
    pub(crate) leader: i32,
    pub(crate) leader_epoch: i32,
    pub(crate) replicas: Vec<i32>,
    pub(crate) isr: Vec<i32>,
    pub(crate) log: Log,
    /// Idempotent producers' sequence state (kept across leader changes, as replicas do).
    pub(crate) producers: idempotence::ProducerStates,
}

#[derive(Debug, Clone)]
pub(crate) struct BrokerState {
    pub(crate) cfg: MockBrokerConfig,
    pub(crate) up: bool,
    pub(crate) versions: BTreeMap<ApiKey, (i16, i16)>,
}

/// Everything but the connections: what request handlers act on.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) cfg: MockConfig,
    pub(crate) brokers: Vec<BrokerState>,
    pub(crate) topics: BTreeMap<String, Topic>,
    /// Committed offsets by (group, topic, partition).
    pub(crate) offsets: BTreeMap<(String, String, i32), (i64, Option<String>)>,
    pub(crate) faults: Vec<Fault>,
    pub(crate) rng: SplitMix,
    pub(crate) controller: i32,
    pub(crate) requests: Vec<RequestRecord>,
    /// Set when records were appended, so parked fetches are looked at again.
    pub(crate) appended: bool,
    /// Producer ids handed out by InitProducerId, with their current epoch.
    pub(crate) producer_ids: BTreeMap<i64, i16>,
    /// Set when leadership or topics changed without a `now` to act on: parked fetches
    /// are looked at again at the next `handle_timeout` (which `poll_timeout` asks for).
    pub(crate) changed: bool,
    /// Fetch sessions (KIP-227).
    pub(crate) sessions: sessions::Sessions,
}

/// A deterministic generator (splitmix64), private to the mock.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix(u64);

impl SplitMix {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

/// What a handler decided.
pub(crate) enum Reply {
    Respond(ResponseBody),
    /// Produce with acks=0.
    Nothing,
    /// A Fetch that waits for `min_bytes` or `max_wait_ms`.
    Park(FetchRequest),
    /// Close the connection (what a broker does with a request it cannot serve).
    Close,
}

/// N in-memory brokers. See the [module docs](self).
#[derive(Debug)]
pub struct MockCluster {
    state: State,
    conns: BTreeMap<u64, Conn>,
    next_conn: u64,
}

impl MockCluster {
    /// Builds the cluster: brokers up, topics created with replicas placed from the seed.
    pub fn new(config: MockConfig) -> Self {
        let brokers = config
            .brokers
            .iter()
            .map(|b| BrokerState {
                versions: handlers::version_table(b, config.sasl.is_some()),
                cfg: b.clone(),
                up: true,
            })
            .collect();
        let controller = config.brokers.first().map_or(-1, |b| b.id);
        let mut state = State {
            rng: SplitMix(config.seed ^ 0x6d6f_636b),
            brokers,
            topics: BTreeMap::new(),
            offsets: BTreeMap::new(),
            faults: Vec::new(),
            controller,
            requests: Vec::new(),
            appended: false,
            producer_ids: BTreeMap::new(),
            changed: false,
            sessions: sessions::Sessions::default(),
            cfg: config,
        };
        for t in state.cfg.topics.clone() {
            let _ = state.create_topic(
                &t.name,
                t.partitions,
                t.replication_factor,
                None,
                t.internal,
            );
        }
        MockCluster {
            state,
            conns: BTreeMap::new(),
            next_conn: 1,
        }
    }

    /// The configuration the cluster was built with.
    pub fn config(&self) -> &MockConfig {
        &self.state.cfg
    }

    /// The brokers' addresses as a bootstrap list, `"host:port,host:port"`.
    pub fn bootstrap_servers(&self) -> String {
        let addrs: Vec<String> = self
            .state
            .brokers
            .iter()
            .map(|b| format!("{}:{}", b.cfg.host, b.cfg.port))
            .collect();
        addrs.join(",")
    }

    /// The id of the broker at (host, port).
    pub fn broker_at(&self, host: &str, port: u16) -> Option<i32> {
        self.state
            .brokers
            .iter()
            .find(|b| b.cfg.host == host && b.cfg.port == port)
            .map(|b| b.cfg.id)
    }

    /// Opens a connection to broker `id`.
    pub fn connect(&mut self, now: Instant, id: i32) -> Result<MockConn, ConnectError> {
        let _ = now;
        let broker = self
            .state
            .broker(id)
            .ok_or(ConnectError::UnknownBroker(id))?;
        if !broker.up {
            return Err(ConnectError::BrokerDown(id));
        }
        let conn = MockConn(self.next_conn);
        self.next_conn += 1;
        let sasl = if self.state.cfg.sasl.is_some() {
            SaslState::NeedHandshake
        } else {
            SaslState::Open
        };
        self.conns.insert(
            conn.0,
            Conn {
                broker: id,
                frames: FrameDecoder::new(self.state.cfg.max_frame_size),
                inbox: VecDeque::new(),
                parked: None,
                out: VecDeque::new(),
                closing: false,
                stuck: false,
                sasl,
            },
        );
        Ok(conn)
    }

    /// Opens a connection to the broker at (host, port).
    pub fn connect_addr(
        &mut self,
        now: Instant,
        host: &str,
        port: u16,
    ) -> Result<MockConn, ConnectError> {
        let id = self
            .broker_at(host, port)
            .ok_or_else(|| ConnectError::UnknownAddress {
                host: host.to_owned(),
                port,
            })?;
        self.connect(now, id)
    }

    /// The broker a connection goes to, while it is open.
    pub fn conn_broker(&self, conn: MockConn) -> Option<i32> {
        self.conns.get(&conn.0).map(|c| c.broker)
    }

    /// Whether the connection is open (a close the broker queued counts as open until
    /// [`poll_transmit`](Self::poll_transmit) hands it out).
    pub fn is_open(&self, conn: MockConn) -> bool {
        self.conns.contains_key(&conn.0)
    }

    /// How many connections broker `id` has open.
    pub fn connection_count(&self, id: i32) -> usize {
        self.conns.values().filter(|c| c.broker == id).count()
    }

    /// Bytes from the client. Whole requests are processed at once (in order per
    /// connection, as a broker does); their responses become ready after the broker's
    /// latency. Data for an unknown or closing connection is dropped.
    pub fn handle_data(&mut self, now: Instant, conn: MockConn, data: &[u8]) {
        let Some(c) = self.conns.get_mut(&conn.0) else {
            return;
        };
        if c.closing || c.stuck {
            return;
        }
        c.frames.handle_data(data);
        loop {
            match c.frames.poll_frame() {
                Ok(Some(frame)) => c.inbox.push_back(frame),
                Ok(None) => break,
                Err(_) => {
                    // An invalid or oversized size: Kafka drops the connection.
                    queue_close(c, now, Duration::ZERO);
                    break;
                }
            }
        }
        self.pump(now, conn.0);
        self.recheck_parked(now);
    }

    /// The client closed the connection.
    pub fn close(&mut self, conn: MockConn) {
        self.conns.remove(&conn.0);
    }

    /// Appends to `buf` the bytes ready on `conn` at `now`: `Some(Data)` if any were,
    /// `Some(Closed)` once the broker closed the connection and everything before the
    /// close was handed out, `None` if nothing is ready.
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        conn: MockConn,
        buf: &mut Vec<u8>,
    ) -> Option<MockTransmit> {
        let c = self.conns.get_mut(&conn.0)?;
        let mut wrote = false;
        while let Some((at, chunk)) = c.out.front() {
            if *at > now {
                break;
            }
            match chunk {
                Chunk::Data(bytes) => {
                    buf.extend_from_slice(bytes);
                    wrote = true;
                    c.out.pop_front();
                }
                Chunk::Close if wrote => break,
                Chunk::Close => {
                    self.conns.remove(&conn.0);
                    return Some(MockTransmit::Closed);
                }
            }
        }
        wrote.then_some(MockTransmit::Data)
    }

    /// The connections with bytes or a close ready at `now`.
    pub fn ready_connections(&self, now: Instant) -> Vec<MockConn> {
        self.conns
            .iter()
            .filter(|(_, c)| c.out.front().is_some_and(|(at, _)| *at <= now))
            .map(|(id, _)| MockConn(*id))
            .collect()
    }

    /// When the cluster next has something to do: a response becoming ready or a
    /// parked fetch reaching its `max_wait_ms`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let changed = self.state.changed;
        self.conns
            .values()
            .flat_map(|c| {
                let out = c.out.front().map(|(at, _)| *at);
                let parked = c
                    .parked
                    .as_ref()
                    .map(|p| if changed { p.since } else { p.deadline });
                out.into_iter().chain(parked)
            })
            .min()
    }

    /// Advances parked fetches whose wait is over.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.state.changed = false;
        self.recheck_parked(now);
    }

    // ---- faults and administration -------------------------------------------------

    /// Takes broker `id` down: connection attempts are refused and its connections are
    /// dropped at once (unsent responses are lost). With
    /// [`MockConfig::elect_leaders_on_failure`], its partitions get new leaders.
    pub fn broker_down(&mut self, now: Instant, id: i32) {
        let Some(b) = self.state.broker_mut(id) else {
            return;
        };
        b.up = false;
        for c in self.conns.values_mut().filter(|c| c.broker == id) {
            c.out.clear();
            c.inbox.clear();
            c.parked = None;
            queue_close(c, now, Duration::ZERO);
        }
        self.state.on_broker_down(id);
        self.recheck_parked(now);
    }

    /// Brings broker `id` back: it accepts connections and rejoins the ISR of the
    /// partitions it replicates (leadership does not move back by itself).
    pub fn broker_up(&mut self, id: i32) {
        self.state.changed = true;
        if let Some(b) = self.state.broker_mut(id) {
            b.up = true;
        }
        self.state.on_broker_up(id);
    }

    /// Whether broker `id` is up.
    pub fn is_up(&self, id: i32) -> bool {
        self.state.broker(id).is_some_and(|b| b.up)
    }

    /// Drops every connection of broker `id` now, leaving it up.
    pub fn drop_connections(&mut self, now: Instant, id: i32) {
        for c in self.conns.values_mut().filter(|c| c.broker == id) {
            c.out.clear();
            c.parked = None;
            c.inbox.clear();
            queue_close(c, now, Duration::ZERO);
        }
    }

    /// Makes `leader` the leader of a partition (adding it to the replicas and ISR if
    /// needed) and bumps the leader epoch. Returns false if there is no such partition
    /// or broker.
    pub fn move_leader(&mut self, topic: &str, partition: i32, leader: i32) -> bool {
        if self.state.broker(leader).is_none() {
            return false;
        }
        let Some(p) = self.state.partition_mut(topic, partition) else {
            return false;
        };
        p.leader = leader;
        p.leader_epoch += 1;
        if !p.replicas.contains(&leader) {
            p.replicas.push(leader);
        }
        if !p.isr.contains(&leader) {
            p.isr.push(leader);
        }
        self.state.changed = true;
        true
    }

    /// The leader of a partition (-1 if none), if it exists.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        self.state.partition(topic, partition).map(|p| p.leader)
    }

    /// The replicas and ISR of a partition.
    pub fn replicas(&self, topic: &str, partition: i32) -> Option<(Vec<i32>, Vec<i32>)> {
        self.state
            .partition(topic, partition)
            .map(|p| (p.replicas.clone(), p.isr.clone()))
    }

    /// Sets broker `id`'s processing latency.
    pub fn set_latency(&mut self, id: i32, latency: Duration) {
        if let Some(b) = self.state.broker_mut(id) {
            b.cfg.latency = latency;
        }
    }

    /// Registers a fault rule. Rules are tried in the order they were added; the first
    /// that matches a request catches it.
    pub fn inject(&mut self, fault: Fault) {
        if fault.times > 0 {
            self.state.faults.push(fault);
        }
    }

    /// The next request `matcher` accepts gets `code` instead of being acted on.
    pub fn fail_next(&mut self, matcher: Matcher, code: ErrorCode) {
        self.inject(Fault {
            matcher,
            action: FaultAction::Error(code),
            times: 1,
        });
    }

    /// Removes every pending fault rule.
    pub fn clear_faults(&mut self) {
        self.state.faults.clear();
    }

    /// Fault rules that have not caught all their requests yet.
    pub fn pending_faults(&self) -> &[Fault] {
        &self.state.faults
    }

    /// Creates a topic as CreateTopics would (replicas placed from the seed).
    pub fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
    ) -> Result<(), ErrorCode> {
        self.state
            .create_topic(name, partitions, replication_factor, None, false)
            .map(|_| ())
    }

    /// Deletes a topic (and its committed offsets).
    pub fn delete_topic(&mut self, name: &str) -> bool {
        self.state.changed = true;
        self.state.delete_topic(name)
    }

    /// The topic names, sorted.
    pub fn topic_names(&self) -> Vec<String> {
        self.state.topics.keys().cloned().collect()
    }

    /// The number of partitions of a topic.
    pub fn partition_count(&self, topic: &str) -> Option<usize> {
        self.state.topics.get(topic).map(|t| t.partitions.len())
    }

    /// Appends records to a partition directly (as a v2 batch), bypassing the network.
    /// Returns the base offset.
    pub fn append_records(
        &mut self,
        now: Instant,
        topic: &str,
        partition: i32,
        records: &[Record],
    ) -> Result<i64, ErrorCode> {
        let mut buf = Vec::new();
        encode_record_batch(&mut buf, &BatchHeader::default(), records)
            .map_err(|_| ErrorCode::CorruptMessage)?;
        let p = self
            .state
            .partition_mut(topic, partition)
            .ok_or(ErrorCode::UnknownTopicOrPartition)?;
        let epoch = p.leader_epoch;
        let base = p.log.append(&Bytes::from(buf), epoch, true)?;
        self.state.appended = true;
        self.recheck_parked(now);
        Ok(base)
    }

    /// A partition's (log start offset, high watermark).
    pub fn offsets(&self, topic: &str, partition: i32) -> Option<(i64, i64)> {
        self.state
            .partition(topic, partition)
            .map(|p| (p.log.log_start_offset, p.log.high_watermark))
    }

    /// The epoch and last sequence number an idempotent producer wrote to a partition, if
    /// it wrote there.
    pub fn producer_state(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
    ) -> Option<(i16, i32)> {
        self.state
            .partition(topic, partition)
            .and_then(|p| p.producers.last(producer_id))
    }

    /// Deletes a partition's records before `offset` (whole batches), as retention would.
    pub fn truncate_before(&mut self, topic: &str, partition: i32, offset: i64) -> bool {
        match self.state.partition_mut(topic, partition) {
            Some(p) => {
                p.log.truncate_before(offset);
                self.state.changed = true;
                true
            }
            None => false,
        }
    }

    /// A partition's stored records, decoded (for assertions).
    pub fn records(&self, topic: &str, partition: i32) -> Vec<Record> {
        use crate::protocol::records::{Batches, DecodeLimits};
        let Some(p) = self.state.partition(topic, partition) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for b in &p.log.batches {
            for batch in Batches::new(b.bytes.clone(), DecodeLimits::default()).flatten() {
                out.extend(batch.records().flatten());
            }
        }
        out
    }

    /// How many fetch sessions (KIP-227) the brokers hold.
    pub fn fetch_session_count(&self) -> usize {
        self.state.sessions.len()
    }

    /// The committed offset of a group for a partition.
    pub fn committed_offset(&self, group: &str, topic: &str, partition: i32) -> Option<i64> {
        self.state
            .offsets
            .get(&(group.to_owned(), topic.to_owned(), partition))
            .map(|(o, _)| *o)
    }

    /// Every request processed so far, in order.
    pub fn requests(&self) -> &[RequestRecord] {
        &self.state.requests
    }

    /// How many requests of `api` were processed.
    pub fn request_count(&self, api: ApiKey) -> usize {
        self.state.requests.iter().filter(|r| r.api == api).count()
    }

    /// Makes broker `id` the controller (a controller election). False if no such broker.
    pub fn set_controller(&mut self, id: i32) -> bool {
        if self.state.broker(id).is_none() {
            return false;
        }
        self.state.controller = id;
        true
    }

    /// The current controller (the first live broker if the configured one is down).
    pub fn controller(&self) -> i32 {
        self.state.live_controller()
    }

    // ---- request processing --------------------------------------------------------

    /// Processes queued requests of one connection in order until one waits.
    fn pump(&mut self, now: Instant, id: u64) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        loop {
            if c.closing || c.stuck {
                c.inbox.clear();
                return;
            }
            if let Some(p) = c.parked.take() {
                let ready =
                    now >= p.deadline || self.state.fetch_ready(c.broker, &p.request, p.version);
                if !ready {
                    c.parked = Some(p);
                    return;
                }
                let body = self.state.fetch_answer(c.broker, &p.request, p.version);
                respond(
                    c,
                    now,
                    &self.state,
                    p.version,
                    p.correlation_id,
                    &body,
                    p.delay,
                );
                continue;
            }
            let Some(frame) = c.inbox.pop_front() else {
                return;
            };
            process_frame(&mut self.state, c, MockConn(id), now, frame);
        }
    }

    /// Looks at every parked fetch again (after an append or a timeout).
    fn recheck_parked(&mut self, now: Instant) {
        let mut rounds = 0;
        loop {
            self.state.appended = false;
            let ids: Vec<u64> = self
                .conns
                .iter()
                .filter(|(_, c)| c.parked.is_some())
                .map(|(id, _)| *id)
                .collect();
            for id in ids {
                self.pump(now, id);
            }
            rounds += 1;
            // Fetches never append, so one more round after an append settles it.
            if !self.state.appended || rounds > 2 {
                break;
            }
        }
    }
}
