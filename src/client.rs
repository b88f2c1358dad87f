//! The top-level client state machine: it owns the broker connections, bootstraps from a
//! broker list or ZooKeeper, keeps the metadata cache, routes requests to leaders and the
//! controller, reconnects with backoff, retries what can be retried, and runs the
//! operations (`update_cluster`, `topic_metadata`, `list_offsets`, `create_topics`,
//! `delete_topics`, and `send` as an escape hatch).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use crate::cluster::{Cluster, ClusterCache};
use crate::config::{Bootstrap, BrokerAddress, ClientConfig};
use crate::connection::{Connection, ConnectionEvent, ConnectionState, RequestId, VersionChoice};
use crate::error::{Error, TransportError, TransportErrorKind};
use crate::protocol::messages::{MetadataResponse, RequestBody, ResponseBody};
use crate::rng::Rng;
pub use crate::zk::{ZkError, ZkErrorKind, ZkOpId, ZkRequest, ZkResponse};

mod backoff;
mod consume;
mod offsets;
mod ops;
mod produce;
mod route;
mod timers;
mod types;
mod zookeeper;

pub use types::{
    ConnectionHandle, Event, Io, NewTopic, OpId, Output, PartitionOffset, Target, TopicResult,
};

pub use crate::producer::machine::{
    DeliveryError, DeliveryReport, ProduceError, ProduceRecord, ProducerId, RecordId,
};
use backoff::Backoff;
use consume::ConsumerRequest;
use ops::{OpKind, Spec};
use produce::ProducerRequest;
use timers::{TimerKey, Timers};
use zookeeper::ZkState;

struct Conn {
    conn: Connection,
    addr: BrokerAddress,
    /// The transport reported the closure (no `Io::Close` needed).
    transport_closed: bool,
    /// A connection not established by then is abandoned (`connect_timeout`).
    connect_deadline: Instant,
    /// Connected without asking for API versions because the broker was pinned to the
    /// `broker_version` table (see `Client::no_probe`).
    pinned: bool,
    /// It became ready once: a failure afterwards is not a failure to connect.
    was_ready: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct ReqKey(u64);

#[derive(Debug)]
enum ReqState {
    Parked,
    Sent,
}

#[derive(Debug)]
struct Req {
    /// `None`: the client's own metadata refresh.
    op: Option<OpId>,
    spec: Spec,
    route: Target,
    deadline: Instant,
    created: Instant,
    not_before: Option<Instant>,
    state: ReqState,
}

#[derive(Debug)]
struct Op {
    kind: OpKind,
    deadline: Instant,
    /// The last retriable error seen, for the timeout message.
    last_error: Option<Error>,
}

/// The sans-IO Kafka client.
///
/// # Driving it
///
/// The client never does IO and never reads a clock: a transport (or your own loop, see
/// `examples/custom_event_loop.rs`) feeds it and drains it. **After any `handle_*` call,
/// drain in this order:**
///
/// 1. [`poll_io`](Self::poll_io) until `None` — open / close connections, run ZooKeeper reads;
/// 2. [`poll_transmit`](Self::poll_transmit) until `None` — write the bytes to that connection
///    (or, per connection, [`poll_transmit_to`](Self::poll_transmit_to) whenever its writer
///    is idle: producers' batches are sealed at that moment);
/// 3. [`poll_event`](Self::poll_event) until `None` — operation results, delivery reports;
/// 4. then ask [`poll_timeout`](Self::poll_timeout) and call
///    [`handle_timeout`](Self::handle_timeout) when that instant comes (or earlier when
///    something else happens).
///
/// **Mutators do no work.** Starting an operation or producing a record only records it:
/// an operation makes [`poll_timeout`](Self::poll_timeout) due at once, a record that opened
/// or filled a batch says so (`produce` returns `true`), and the next
/// [`handle_timeout`](Self::handle_timeout) routes and sends. The caller may call mutators
/// between drains (not while holding an item it is draining: each `poll_*` returns owned
/// values, so there is no such borrow). Events must be drained: they are queued until then
/// (delivery reports are one per batch).
///
/// Every `now` passed in must not go backwards. With a fixed `ClientConfig::rng_seed`
/// the same inputs give the same outputs (randomness: reconnect jitter, SCRAM nonces);
/// without one (the default) the randomness is seeded from the operating system.
///
/// Every operation has a deadline of `request_timeout` from when it was started; it
/// finishes with [`Event::Done`] exactly once, at the latest then.
///
/// # Timers
///
/// After `handle_timeout(now)`, [`poll_timeout`](Self::poll_timeout) is `None` or later
/// than `now`: a transport can sleep until it without guarding against spinning. The
/// client sets every deadline itself: connecting (`connect_timeout`, then the connection
/// is closed with [`Io::Close`]), each request, each ZooKeeper read
/// ([`ClientConfig::zookeeper_request_timeout`], then a late answer is ignored). A
/// transport needs no timeout of its own for them (only, where it cannot cancel work, a
/// bound on the resources the work holds).
///
/// # Bounds
///
/// What the client holds is bounded by what the application asks and by the cluster:
/// unfinished operations (each ends by its deadline, so at most the operations started
/// within one `request_timeout`), their requests, one connection per broker address in
/// use, and reconnect and ApiVersions-fallback state only for the addresses of the current
/// cluster and the bootstrap list (the state of departed brokers is forgotten at the next
/// metadata update, and idle connections to them are closed). The application bounds the
/// first: the client does not refuse operations.
///
/// ```
/// use std::time::Instant;
/// use grete::client::{Client, Event, Io};
/// use grete::config::{Bootstrap, BrokerAddress, ClientConfig};
///
/// // The first steps of a transport's loop; `now` comes from the transport's clock.
/// fn first_steps(now: Instant) -> Result<(), grete::error::Error> {
///     let mut client = Client::new(ClientConfig {
///         bootstrap: Bootstrap::Brokers(BrokerAddress::parse("localhost:9092")?),
///         ..ClientConfig::default()
///     })?;
///     let op = client.update_cluster(now);
///     // Starting an operation does no work: the next handle_timeout routes it.
///     assert!(client.poll_timeout().is_some_and(|t| t <= now));
///     client.handle_timeout(now);
///     while let Some(io) = client.poll_io() {
///         if let Io::Connect { conn, host, port } = io {
///             // open host:port, then: client.handle_connected(now, conn)
///             let _ = (conn, host, port);
///         }
///     }
///     let mut buf = Vec::new();
///     while let Some(conn) = client.poll_transmit(now, &mut buf) {
///         // write buf to conn
///         let _ = conn;
///         buf.clear();
///     }
///     while let Some(event) = client.poll_event() {
///         if let Event::Done { op: done, result } = event {
///             assert_eq!(done, op);
///             let _ = result;
///         }
///     }
///     let _wake_at = client.poll_timeout(); // then handle_timeout(now) at that instant
///     Ok(())
/// }
/// ```
pub struct Client {
    config: ClientConfig,
    rng: Rng,
    cluster: ClusterCache,
    conns: BTreeMap<ConnectionHandle, Conn>,
    by_addr: BTreeMap<BrokerAddress, ConnectionHandle>,
    backoff: BTreeMap<BrokerAddress, Backoff>,
    /// Brokers that kept a connection open without answering ApiVersions (brokers before
    /// 0.10 do): connect without asking, with at most 0.9's table, until the instant
    /// (then ask again). Only addresses of the cluster or the bootstrap list are kept.
    no_probe: BTreeMap<BrokerAddress, Instant>,
    /// Metadata arrived since the address maps were last pruned.
    prune_wanted: bool,
    bootstrap: Vec<BrokerAddress>,
    any_cursor: usize,
    next_conn: u64,
    next_op: u64,
    next_req: u64,
    next_zk: u64,
    ops: BTreeMap<OpId, Op>,
    reqs: BTreeMap<ReqKey, Req>,
    sent: BTreeMap<(ConnectionHandle, RequestId), ReqKey>,
    refresh: Option<ReqKey>,
    refresh_not_before: Option<Instant>,
    refresh_wanted: bool,
    zk: ZkState,
    zk_not_before: Option<Instant>,
    /// The ZooKeeper reads in progress are abandoned at this instant.
    zk_deadline: Option<Instant>,
    last_zk_error: Option<String>,
    /// The last connection failure, for timeout messages.
    last_connection_error: Option<Error>,
    io: VecDeque<Io>,
    events: VecDeque<Event>,
    producers: BTreeMap<ProducerId, crate::producer::machine::Producer>,
    next_producer: u64,
    /// The cluster generation each producer last checked its partitions against.
    producer_generation: BTreeMap<ProducerId, u64>,
    /// Requests on the wire that belong to a producer.
    producer_sent: BTreeMap<(ConnectionHandle, RequestId), ProducerRequest>,
    produce_scratch: Vec<(usize, i32)>,
    produce_indexes: Vec<usize>,
    /// A mutator asked for a drive (`poll_timeout` reports it).
    drive_at: Option<Instant>,
    /// Every owner's next timer (`poll_timeout` is its first entry).
    timers: Timers,
    consumers: BTreeMap<crate::consumer::ConsumerId, crate::consumer::Consumer>,
    next_consumer: u64,
    /// Requests on the wire that belong to a consumer.
    consumer_sent: BTreeMap<(ConnectionHandle, RequestId), ConsumerRequest>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("connections", &self.conns.len())
            .field("operations", &self.ops.len())
            .field("requests", &self.reqs.len())
            .field("timers", &self.timers.len())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client; nothing happens until an operation is started.
    pub fn new(config: ClientConfig) -> Result<Client, Error> {
        config.validate()?;
        let bootstrap = match &config.bootstrap {
            Bootstrap::Brokers(b) => b.clone(),
            Bootstrap::ZooKeeper { .. } => Vec::new(),
        };
        Ok(Client {
            rng: config.rng_seed.map_or_else(Rng::from_entropy, Rng::new),
            cluster: ClusterCache::new(Cluster::new(
                config.metadata_max_age,
                config.exclude_internal_topics,
            )),
            config,
            conns: BTreeMap::new(),
            by_addr: BTreeMap::new(),
            backoff: BTreeMap::new(),
            no_probe: BTreeMap::new(),
            prune_wanted: false,
            bootstrap,
            any_cursor: 0,
            next_conn: 0,
            next_op: 0,
            next_req: 0,
            next_zk: 0,
            ops: BTreeMap::new(),
            reqs: BTreeMap::new(),
            sent: BTreeMap::new(),
            refresh: None,
            refresh_not_before: None,
            refresh_wanted: false,
            zk: ZkState::Idle,
            zk_not_before: None,
            zk_deadline: None,
            last_zk_error: None,
            last_connection_error: None,
            io: VecDeque::new(),
            events: VecDeque::new(),
            producers: BTreeMap::new(),
            next_producer: 0,
            producer_generation: BTreeMap::new(),
            producer_sent: BTreeMap::new(),
            produce_scratch: Vec::new(),
            produce_indexes: Vec::new(),
            drive_at: None,
            timers: Timers::default(),
            consumers: BTreeMap::new(),
            next_consumer: 0,
            consumer_sent: BTreeMap::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The metadata cache.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The metadata cache as a shared, immutable snapshot: cloning the `Arc` is all it
    /// costs. Publish a new one only when [`cluster_generation`](Self::cluster_generation)
    /// moved.
    pub fn cluster_snapshot(&self) -> std::sync::Arc<Cluster> {
        self.cluster.snapshot()
    }

    /// Counts the changes to the metadata cache (updates and invalidations): the snapshot
    /// is the same as long as this is.
    pub fn cluster_generation(&self) -> u64 {
        self.cluster.generation()
    }

    /// The state of a connection, if it exists.
    pub fn connection_state(&self, conn: ConnectionHandle) -> Option<ConnectionState> {
        self.conns.get(&conn).map(|c| c.conn.state())
    }

    // ---- transport-facing ------------------------------------------------------------

    /// The transport connected `conn`.
    pub fn handle_connected(&mut self, now: Instant, conn: ConnectionHandle) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.conn.handle_connected(now);
        }
        self.drive(now);
    }

    /// Connecting `conn` failed.
    pub fn handle_connect_failed(
        &mut self,
        now: Instant,
        conn: ConnectionHandle,
        error: TransportError,
    ) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.transport_closed = true;
            c.conn.handle_closed(now, Some(error));
        }
        self.drive(now);
    }

    /// Bytes arrived on `conn`.
    pub fn handle_data(&mut self, now: Instant, conn: ConnectionHandle, data: &[u8]) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.conn.handle_data(now, data);
        }
        self.drive(now);
    }

    /// `conn` closed (with the reason, if it failed).
    pub fn handle_closed(
        &mut self,
        now: Instant,
        conn: ConnectionHandle,
        error: Option<TransportError>,
    ) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.transport_closed = true;
            c.conn.handle_closed(now, error);
        }
        self.drive(now);
    }

    /// A ZooKeeper read finished.
    pub fn handle_zk_result(
        &mut self,
        now: Instant,
        op: ZkOpId,
        result: Result<ZkResponse, ZkError>,
    ) {
        self.on_zk_result(now, op, result);
        self.drive(now);
    }

    /// Time passed (call at or after [`poll_timeout`](Self::poll_timeout)).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.drive(now);
    }

    /// The next thing the transport must do.
    pub fn poll_io(&mut self) -> Option<Io> {
        self.io.pop_front()
    }

    /// Appends bytes to write to one connection to `buf` and says which; `None` when no
    /// connection has anything to write.
    ///
    /// This is where producers' batches are sealed into Produce requests (late binding):
    /// a transport that asks only when a connection's writer is idle lets the batches
    /// grow while the socket is busy. See also [`poll_transmit_to`](Self::poll_transmit_to).
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<ConnectionHandle> {
        let mut cursor = None;
        while let Some(h) = match cursor {
            None => self.conns.keys().next().copied(),
            Some(k) => self
                .conns
                .range((std::ops::Bound::Excluded(k), std::ops::Bound::Unbounded))
                .next()
                .map(|(h, _)| *h),
        } {
            cursor = Some(h);
            if self.poll_transmit_to(now, h, buf) {
                return Some(h);
            }
        }
        None
    }

    /// Whether [`poll_transmit_to`](Self::poll_transmit_to) may give bytes for `conn` now:
    /// bytes are waiting, or it is ready with a free in-flight slot while a producer has a
    /// batch to send. Cheap; transports whose writers pull ask it before waking one.
    pub fn wants_transmit(&self, conn: ConnectionHandle) -> bool {
        let Some(c) = self.conns.get(&conn) else {
            return false;
        };
        if c.conn.has_output() {
            return true;
        }
        c.conn.state() == ConnectionState::Ready
            && c.conn.in_flight() + c.conn.queued()
                < self.config.max_in_flight_requests_per_connection
            && self.producers.values().any(|p| p.has_ready())
            || self.consumers_want_transmit(conn)
    }

    /// Appends the bytes to write to connection `conn` to `buf`; `false` when it has none.
    /// For transports whose connections pull their bytes when their writer is idle.
    pub fn poll_transmit_to(
        &mut self,
        now: Instant,
        conn: ConnectionHandle,
        buf: &mut Vec<u8>,
    ) -> bool {
        self.fill_connection(now, conn);
        self.fill_consumers(now, conn);
        let some = self
            .conns
            .get_mut(&conn)
            .is_some_and(|c| c.conn.poll_transmit(buf));
        self.sync_conn_timer(conn);
        some
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next needed: the first entry of
    /// the client's timer table, O(log n). Each owner (connection, operation, producer,
    /// the client's own bookkeeping) keeps one entry, moved where its timer changes.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// A connection's timer: its connect deadline, its requests' deadlines, or when an
    /// idle pinned connection's fallback period ends (it is then closed; busy ones are
    /// looked at again when their requests finish).
    fn conn_timeout(&self, c: &Conn) -> Option<Instant> {
        let own = match c.conn.state() {
            ConnectionState::Connecting => Some(c.connect_deadline),
            _ => c.conn.poll_timeout(),
        };
        let idle_pin = c.pinned
            && c.conn.in_flight() == 0
            && c.conn.queued() == 0
            && c.conn.state() == ConnectionState::Ready;
        let pin = self.no_probe.get(&c.addr).copied().filter(|_| idle_pin);
        own.into_iter().chain(pin).min()
    }

    /// The client's own timers: a drive asked for, parked requests, reconnect backoffs
    /// (while an operation's request or a producer's batches wait for a connection), the
    /// metadata age and refresh rate limit, and ZooKeeper. `producer_waiting`: a producer
    /// waits (consumers always want their leaders' connections).
    fn client_timeout(&self, producer_waiting: bool) -> Option<Instant> {
        let reqs = self.reqs.values().filter_map(|r| match r.state {
            ReqState::Parked => Some(r.not_before.unwrap_or(r.deadline)),
            ReqState::Sent => None,
        });
        let waiting = !self.reqs.is_empty() || producer_waiting || !self.consumers.is_empty();
        let backoff = self
            .backoff
            .values()
            .filter_map(|b| b.until)
            .filter(|_| waiting);
        // The age timer; once due, a refresh in progress or its rate limit takes over
        // (so that a failing refresh never makes this instant lie in the past).
        let refresh = match (self.cluster.is_known(), self.refresh) {
            (true, None) => self
                .cluster
                .next_refresh()
                .map(|t| self.refresh_not_before.map_or(t, |nb| t.max(nb))),
            _ => None,
        };
        let refresh_retry = self.refresh_not_before.filter(|_| self.refresh_wanted);
        let zk = self.zk_not_before.filter(|_| waiting);
        self.drive_at
            .into_iter()
            .chain(reqs)
            .chain(backoff)
            .chain(refresh)
            .chain(refresh_retry)
            .chain(zk)
            .chain(self.zk_deadline)
            .min()
    }

    /// Rewrites every connection's, producer's and the client's own timer entry (after a
    /// drive, which may have touched any of them; operations' entries are written when
    /// they start and finish).
    fn sync_timers(&mut self) {
        let mut timers = std::mem::take(&mut self.timers);
        for (h, c) in &self.conns {
            timers.set(TimerKey::Conn(*h), self.conn_timeout(c));
        }
        let mut producer_waiting = false;
        for (id, p) in &self.producers {
            timers.set(TimerKey::Producer(*id), p.poll_timeout());
            producer_waiting |= p.is_waiting();
        }
        for (id, c) in &self.consumers {
            timers.set(TimerKey::Consumer(*id), c.poll_timeout());
        }
        timers.set(TimerKey::Client, self.client_timeout(producer_waiting));
        self.timers = timers;
    }

    /// Rewrites connection `h`'s timer entry.
    fn sync_conn_timer(&mut self, h: ConnectionHandle) {
        let at = self.conns.get(&h).and_then(|c| self.conn_timeout(c));
        self.timers.set(TimerKey::Conn(h), at);
    }

    /// Every timer computed from scratch: what the table must never be later than.
    #[cfg(any(test, feature = "mock"))]
    pub(crate) fn scan_timeout(&self) -> Option<Instant> {
        let conns = self.conns.values().filter_map(|c| self.conn_timeout(c));
        let ops = self.ops.values().map(|o| o.deadline);
        let producers = self.producers.values().filter_map(|p| p.poll_timeout());
        let consumers = self.consumers.values().filter_map(|c| c.poll_timeout());
        let waiting = self.producers.values().any(|p| p.is_waiting());
        conns
            .chain(ops)
            .chain(producers)
            .chain(consumers)
            .chain(self.client_timeout(waiting))
            .min()
    }

    // ---- operations --------------------------------------------------------------------

    /// Fetches metadata for all topics; finishes with [`Output::Cluster`].
    pub fn update_cluster(&mut self, now: Instant) -> OpId {
        self.start_op(
            now,
            OpKind::UpdateCluster,
            vec![(
                Spec::Metadata {
                    topics: None,
                    auto_create: false,
                },
                Target::AnyBroker,
            )],
        )
    }

    /// Fetches metadata for `topics`; with `auto_create`, a missing topic is created by
    /// the broker (if `auto.create.topics.enable` allows it) and the operation waits until
    /// it has leaders. Finishes with [`Output::Topics`]. (Brokers before Metadata v4 create
    /// topics they are asked about whatever `auto_create` says.)
    pub fn topic_metadata(&mut self, now: Instant, topics: Vec<String>, auto_create: bool) -> OpId {
        let spec = Spec::Metadata {
            topics: Some(topics.clone()),
            auto_create,
        };
        self.start_op(
            now,
            OpKind::TopicMetadata {
                topics,
                auto_create,
            },
            vec![(spec, Target::AnyBroker)],
        )
    }

    /// Offsets of `topic`'s partitions at `(partition, timestamp)`: `-1` latest, `-2`
    /// earliest, otherwise the offset of the first message at or after the timestamp
    /// (ListOffsets v1+) or the offsets before it (v0, 0.9). Each partition goes to its
    /// leader; leader errors refresh the metadata and retry. Finishes with
    /// [`Output::Offsets`].
    ///
    /// A partition listed twice is [`Error::Misuse`], at once: there is one answer per
    /// partition.
    pub fn list_offsets(&mut self, now: Instant, topic: &str, partitions: Vec<(i32, i64)>) -> OpId {
        let mut seen = BTreeSet::new();
        if let Some((p, _)) = partitions.iter().find(|(p, _)| !seen.insert(*p)) {
            let error = Error::Misuse(format!("partition {p} of {topic} listed twice"));
            return self.fail_at_once(error);
        }
        let kind = OpKind::ListOffsets {
            results: BTreeMap::new(),
            expected: partitions.len(),
        };
        // One request per partition to start with; the ones sharing a leader are merged
        // into one request when sent.
        let op = self.start_op(now, kind, Vec::new());
        let deadline = now + self.config.request_timeout;
        for p in partitions {
            self.add_list_offsets_req(now, op, topic, p, deadline, None);
        }
        if !self.reqs.values().any(|r| r.op == Some(op)) {
            self.finish_empty(op);
        }
        self.drive_soon(now);
        op
    }

    /// Creates topics (CreateTopics, Kafka 0.10.1+; [`Error::Unsupported`] before).
    /// `timeout` is the broker-side wait. Finishes with [`Output::Topics`].
    pub fn create_topics(
        &mut self,
        now: Instant,
        topics: Vec<NewTopic>,
        timeout: Duration,
    ) -> OpId {
        let spec = Spec::CreateTopics {
            topics,
            timeout_ms: duration_ms(timeout),
        };
        self.start_op(now, OpKind::Topics, vec![(spec, Target::Controller)])
    }

    /// Deletes topics (DeleteTopics, Kafka 0.10.1+; [`Error::Unsupported`] before).
    /// Finishes with [`Output::Topics`].
    pub fn delete_topics(&mut self, now: Instant, topics: Vec<String>, timeout: Duration) -> OpId {
        let spec = Spec::DeleteTopics {
            topics,
            timeout_ms: duration_ms(timeout),
        };
        self.start_op(now, OpKind::Topics, vec![(spec, Target::Controller)])
    }

    /// Sends any request, in the highest version both sides support, to `target`;
    /// finishes with [`Output::Response`]. Transport failures are retried until the
    /// deadline; error codes inside the response are the caller's to read.
    pub fn send(&mut self, now: Instant, target: Target, body: RequestBody) -> OpId {
        self.send_version(now, target, body, VersionChoice::Highest)
    }

    /// [`send`](Self::send) with a version choice.
    pub fn send_version(
        &mut self,
        now: Instant,
        target: Target,
        body: RequestBody,
        version: VersionChoice,
    ) -> OpId {
        self.start_op(
            now,
            OpKind::Send,
            vec![(Spec::Raw { body, version }, target)],
        )
    }

    /// Shuts the client down: every unfinished operation finishes with
    /// [`Error::Misuse`] ("client closed"), every connection is closed
    /// ([`Io::Close`]). Operations started afterwards work again from scratch.
    pub fn close(&mut self, _now: Instant) {
        let ops: Vec<OpId> = self.ops.keys().copied().collect();
        for op in ops {
            self.finish(op, Err(Error::Misuse("client closed".into())));
        }
        for (h, c) in std::mem::take(&mut self.conns) {
            if c.conn.state() != ConnectionState::Closed || !c.transport_closed {
                self.io.push_back(Io::Close { conn: h });
            }
        }
        self.by_addr.clear();
        self.reqs.clear();
        self.sent.clear();
        let producers: Vec<ProducerId> = self.producers.keys().copied().collect();
        for id in producers {
            self.remove_producer(_now, id);
        }
        self.producer_sent.clear();
        self.producer_generation.clear();
        self.consumers.clear();
        self.consumer_sent.clear();
        self.refresh = None;
        self.refresh_wanted = false;
        self.zk = ZkState::Idle;
        self.zk_deadline = None;
        self.timers.clear();
        self.sync_timers();
    }

    // ---- internals -------------------------------------------------------------------------

    /// An operation that fails before it starts.
    fn fail_at_once(&mut self, error: Error) -> OpId {
        let op = OpId(self.next_op);
        self.next_op += 1;
        self.events.push_back(Event::Done {
            op,
            result: Err(error),
        });
        op
    }

    fn start_op(&mut self, now: Instant, kind: OpKind, reqs: Vec<(Spec, Target)>) -> OpId {
        let op = OpId(self.next_op);
        self.next_op += 1;
        let deadline = now + self.config.request_timeout;
        let empty = reqs.is_empty();
        self.ops.insert(
            op,
            Op {
                kind,
                deadline,
                last_error: None,
            },
        );
        self.timers.set(TimerKey::Op(op), Some(deadline));
        for (spec, route) in reqs {
            self.add_req(now, Some(op), spec, route, deadline);
        }
        if empty
            && !matches!(
                self.ops.get(&op).map(|o| &o.kind),
                Some(OpKind::ListOffsets { .. })
            )
        {
            self.finish_empty(op);
        }
        self.drive_soon(now);
        op
    }

    fn add_req(
        &mut self,
        now: Instant,
        op: Option<OpId>,
        spec: Spec,
        route: Target,
        deadline: Instant,
    ) -> ReqKey {
        let key = ReqKey(self.next_req);
        self.next_req += 1;
        self.reqs.insert(
            key,
            Req {
                op,
                spec,
                route,
                deadline,
                created: now,
                not_before: None,
                state: ReqState::Parked,
            },
        );
        key
    }

    fn finish(&mut self, op: OpId, result: Result<Output, Error>) {
        if self.ops.remove(&op).is_none() {
            return;
        }
        self.timers.set(TimerKey::Op(op), None);
        self.reqs
            .retain(|_, r| r.op != Some(op) || matches!(r.state, ReqState::Sent));
        for r in self.reqs.values_mut() {
            if r.op == Some(op) {
                // Still on the wire: its answer is dropped when it comes.
                r.op = None;
                r.spec = Spec::Orphan;
            }
        }
        self.events.push_back(Event::Done { op, result });
    }

    /// An operation was started: it is routed and sent by the next drive, which
    /// [`poll_timeout`](Self::poll_timeout) asks for at once (mutators do no work).
    fn drive_soon(&mut self, now: Instant) {
        self.drive_at = Some(self.drive_at.map_or(now, |t| t.min(now)));
        self.timers.lower(TimerKey::Client, now);
    }

    /// Everything the client does after an input: bounded passes until nothing changes.
    fn drive(&mut self, now: Instant) {
        self.drive_at = None;
        for _ in 0..32 {
            let mut progress = false;
            let due: Vec<ConnectionHandle> = self
                .conns
                .iter()
                .filter(|(_, c)| c.conn.poll_timeout().is_some_and(|t| t <= now))
                .map(|(h, _)| *h)
                .collect();
            for h in due {
                if let Some(c) = self.conns.get_mut(&h) {
                    c.conn.handle_timeout(now);
                }
            }
            for c in self.conns.values_mut() {
                if c.conn.state() == ConnectionState::Connecting && c.connect_deadline <= now {
                    let e = TransportError::new(
                        TransportErrorKind::ConnectTimeout,
                        format!("no connection to {} within connect_timeout", c.addr),
                    );
                    c.conn.handle_closed(now, Some(e));
                }
            }
            progress |= self.drain_connections(now);
            progress |= self.expire_zookeeper(now);
            progress |= self.expire_pins(now);
            self.expire_timers(now);
            progress |= self.prune_addresses(now);
            if (self.cluster.is_known() && self.cluster.needs_refresh(now)) || self.refresh_wanted {
                self.request_refresh(now);
            }
            let (reqs_before, io_before) = (self.next_req, self.io.len());
            progress |= self.dispatch(now);
            progress |= self.drive_producers(now);
            progress |= self.drive_consumers(now);
            // A dispatch may have asked for a metadata refresh or a connection.
            progress |= self.next_req != reqs_before || self.io.len() != io_before;
            progress |= self.expire_ops(now);
            if !progress {
                break;
            }
        }
        self.sync_timers();
    }

    /// Idle connections opened without asking for API versions whose fallback period is
    /// over are closed: the next connection asks again.
    fn expire_pins(&mut self, now: Instant) -> bool {
        let mut closed = false;
        for c in self.conns.values_mut() {
            let over = !self.no_probe.get(&c.addr).is_some_and(|until| *until > now);
            let idle = c.conn.in_flight() == 0 && c.conn.queued() == 0;
            if c.pinned && over && idle && c.conn.state() == ConnectionState::Ready {
                c.conn.close(now);
                closed = true;
            }
        }
        closed
    }

    /// Applies a Metadata response to the cache (`all`: it lists every topic).
    fn apply_metadata(&mut self, r: &MetadataResponse, all: bool, now: Instant) {
        let before = self.cluster.generation();
        self.cluster.apply(r, all, now);
        tracing::debug!(
            brokers = r.brokers.len(),
            topics = r.topics.len(),
            generation = before,
            "metadata applied"
        );
        self.prune_wanted = true;
    }

    /// After a metadata update, forgets what belongs to addresses that are neither in
    /// the cluster nor bootstrap brokers: brokers come and go (and advertise new
    /// addresses), and the client's maps must not grow with them. Idle connections to
    /// such addresses are closed; busy ones close once their requests are done (at the
    /// next update).
    fn prune_addresses(&mut self, now: Instant) -> bool {
        if !std::mem::take(&mut self.prune_wanted) {
            return false;
        }
        let mut closed = false;
        let known: BTreeSet<BrokerAddress> = self
            .cluster
            .brokers()
            .map(|b| BrokerAddress::new(b.host.clone(), b.port))
            .chain(self.bootstrap.iter().cloned())
            .collect();
        for c in self.conns.values_mut() {
            let idle = c.conn.in_flight() == 0 && c.conn.queued() == 0;
            if idle && !known.contains(&c.addr) && c.conn.state() == ConnectionState::Ready {
                c.conn.close(now);
                closed = true;
            }
        }
        self.backoff.retain(|a, _| known.contains(a));
        self.no_probe.retain(|a, _| known.contains(a));
        closed
    }

    fn expire_timers(&mut self, now: Instant) {
        for b in self.backoff.values_mut() {
            b.expire(now);
        }
        for r in self.reqs.values_mut() {
            if r.not_before.is_some_and(|t| t <= now) {
                r.not_before = None;
            }
        }
        if self.zk_not_before.is_some_and(|t| t <= now) {
            self.zk_not_before = None;
        }
    }

    fn expire_ops(&mut self, now: Instant) -> bool {
        let expired: Vec<OpId> = self
            .ops
            .iter()
            .filter(|(_, o)| o.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for op in &expired {
            let last = self.ops.get(op).and_then(|o| o.last_error.clone());
            let last = last.or_else(|| self.last_connection_error.clone());
            let what = match (&last, &self.last_zk_error) {
                (Some(e), _) => format!("operation (last error: {e})"),
                (None, Some(z)) => format!("operation (ZooKeeper: {z})"),
                (None, None) => "operation".to_owned(),
            };
            let result = self.timeout_result(*op, what);
            self.finish(*op, result);
        }
        // Orphaned internal requests past their deadline.
        let dead: Vec<ReqKey> = self
            .reqs
            .iter()
            .filter(|(_, r)| r.deadline <= now && matches!(r.state, ReqState::Parked))
            .map(|(k, _)| *k)
            .collect();
        for k in &dead {
            self.reqs.remove(k);
            if self.refresh == Some(*k) {
                self.refresh = None;
            }
        }
        !expired.is_empty() || !dead.is_empty()
    }

    /// Handles every pending connection event; removes closed connections.
    fn drain_connections(&mut self, now: Instant) -> bool {
        let mut progress = false;
        let handles: Vec<ConnectionHandle> = self.conns.keys().copied().collect();
        for h in handles {
            while let Some(ev) = self.conns.get_mut(&h).and_then(|c| c.conn.poll_event()) {
                progress = true;
                self.on_connection_event(now, h, ev);
            }
            if self
                .conns
                .get(&h)
                .is_some_and(|c| c.conn.state() == ConnectionState::Closed)
            {
                self.timers.set(TimerKey::Conn(h), None);
                if let Some(c) = self.conns.remove(&h) {
                    if self.by_addr.get(&c.addr) == Some(&h) {
                        self.by_addr.remove(&c.addr);
                    }
                }
            }
        }
        progress
    }

    fn on_connection_event(&mut self, now: Instant, h: ConnectionHandle, ev: ConnectionEvent) {
        match ev {
            ConnectionEvent::Ready => {
                if let Some(c) = self.conns.get_mut(&h) {
                    tracing::debug!(addr = %c.addr, versions = ?c.conn.api_versions().map(|v| v.source()), "connection ready");
                    c.was_ready = true;
                    self.last_connection_error = None;
                    let addr = c.addr.clone();
                    self.backoff.entry(addr).or_default().reset();
                }
            }
            ConnectionEvent::Response { id, result, .. } => {
                if self.on_producer_response(now, h, id, &result)
                    || self.on_consumer_response(now, h, id, &result)
                {
                    return;
                }
                if let Some(key) = self.sent.remove(&(h, id)) {
                    self.on_req_done(now, key, result);
                }
            }
            ConnectionEvent::Closed {
                error,
                api_versions_unanswered,
            } => {
                let Some(c) = self.conns.get(&h) else { return };
                let addr = c.addr.clone();
                let (pinned, was_ready, by_peer) = (c.pinned, c.was_ready, c.transport_closed);
                if !c.transport_closed {
                    self.io.push_back(Io::Close { conn: h });
                }
                if api_versions_unanswered {
                    // Open but silent on ApiVersions: a broker before 0.10. Reconnect at
                    // once without asking, and ask again after `api_version_fallback`.
                    let until = now + self.config.api_version_fallback;
                    self.no_probe.insert(addr, until);
                    return;
                }
                if pinned && by_peer {
                    // A broker before 0.10 does not close a connection that speaks its
                    // own table to it; a newer one does when it sees a version it dropped
                    // (Metadata v0 is gone from Kafka 4). Ask it next time.
                    self.no_probe.remove(&addr);
                }
                if let Some(error) = error {
                    self.last_connection_error = Some(error.clone());
                    let base = self.config.reconnect_backoff;
                    let max = self.config.reconnect_backoff_max;
                    let backoff = self.backoff.entry(addr.clone()).or_default();
                    backoff.fail(now, base, max, &mut self.rng);
                    // Failing to connect for a reason retrying cannot fix (TLS
                    // verification, authentication, a peer that is not Kafka): the
                    // requests waiting for this broker fail with it at once.
                    backoff.fatal = (!was_ready && !error.is_retriable()).then(|| error.clone());
                    let broker = self
                        .cluster
                        .brokers()
                        .find(|b| b.host == addr.host && b.port == addr.port)
                        .map(|b| b.id);
                    if broker.is_some() {
                        self.cluster
                            .invalidate(format!("connection to broker {addr} lost"));
                    }
                    tracing::info!(addr = %addr, ?broker, %error, "connection to broker lost");
                    self.events.push_back(Event::BrokerDown {
                        broker,
                        host: addr.host,
                        port: addr.port,
                        error,
                    });
                }
            }
        }
    }

    fn request_refresh(&mut self, now: Instant) {
        if self.refresh.is_some() {
            self.refresh_wanted = false;
            return;
        }
        if self.refresh_not_before.is_some_and(|t| t > now) {
            self.refresh_wanted = true;
            return;
        }
        self.refresh_wanted = false;
        self.refresh_not_before = Some(now + self.config.reconnect_backoff);
        let deadline = now + self.config.request_timeout;
        let key = self.add_req(
            now,
            None,
            Spec::Metadata {
                topics: None,
                auto_create: false,
            },
            Target::AnyBroker,
            deadline,
        );
        self.refresh = Some(key);
    }

    fn dispatch(&mut self, now: Instant) -> bool {
        let mut progress = false;
        let keys: Vec<ReqKey> = self
            .reqs
            .iter()
            .filter(|(_, r)| matches!(r.state, ReqState::Parked) && r.not_before.is_none())
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            let Some(req) = self.reqs.get(&key) else {
                continue;
            };
            let route = req.route.clone();
            let created = req.created;
            match self.route(now, &route, created) {
                Ok(None) => {}
                Err(e) => {
                    progress = true;
                    self.req_failed(key, e);
                }
                Ok(Some(h)) => {
                    progress = true;
                    self.merge_list_offsets(key);
                    let Some(req) = self.reqs.get_mut(&key) else {
                        continue;
                    };
                    let Some(c) = self.conns.get_mut(&h) else {
                        continue;
                    };
                    let built = match c.conn.api_versions() {
                        Some(v) => req.spec.build(v),
                        None => Err(Error::Misuse("connection without API versions".into())),
                    };
                    match built {
                        Ok((body, version)) => {
                            let id = c.conn.send_with_deadline(
                                now,
                                body,
                                VersionChoice::Exact(version),
                                req.deadline,
                            );
                            req.state = ReqState::Sent;
                            self.sent.insert((h, id), key);
                        }
                        Err(e) => self.req_failed(key, e),
                    }
                }
            }
        }
        progress
    }

    /// Sends a sub-state machine's request (built for `version`) on connection `h`, with
    /// the request timeout from now; the caller records who owns the id.
    fn send_on(
        &mut self,
        now: Instant,
        h: ConnectionHandle,
        body: RequestBody,
        version: i16,
    ) -> Option<RequestId> {
        let deadline = now + self.config.request_timeout;
        let c = self.conns.get_mut(&h)?;
        Some(
            c.conn
                .send_with_deadline(now, body, VersionChoice::Exact(version), deadline),
        )
    }

    /// A request failed for good before it was sent (no route, unsupported API).
    fn req_failed(&mut self, key: ReqKey, error: Error) {
        let Some(req) = self.reqs.remove(&key) else {
            return;
        };
        if self.refresh == Some(key) {
            self.refresh = None;
        }
        if let Some(op) = req.op {
            if let Some(result) = self.fail_result(op, &req, error) {
                self.finish(op, result);
            }
        }
    }

    fn on_req_done(&mut self, now: Instant, key: ReqKey, result: Result<ResponseBody, Error>) {
        let Some(req) = self.reqs.remove(&key) else {
            return;
        };
        let is_refresh = self.refresh == Some(key);
        if is_refresh {
            self.refresh = None;
        }
        let Some(op) = req.op else {
            // The client's own metadata refresh (or the answer to a request whose
            // operation already finished, which is dropped).
            if let (true, Ok(ResponseBody::Metadata(r))) = (is_refresh, &result) {
                self.apply_metadata(r, true, now);
            }
            return;
        };
        let outcome = self.op_response(now, op, &req, result);
        match outcome {
            ops::Outcome::Wait => {}
            ops::Outcome::Done(result) => self.finish(op, result),
            ops::Outcome::Retry {
                error,
                refresh,
                delay,
            } => {
                let deadline = req.deadline;
                if now >= deadline || !error.is_retriable() {
                    let r = self.fail_result(op, &req, error);
                    if let Some(r) = r {
                        self.finish(op, r);
                    }
                    return;
                }
                if let Some(o) = self.ops.get_mut(&op) {
                    o.last_error = Some(error);
                }
                if refresh {
                    self.cluster.invalidate("leader or topic error");
                }
                if self.split_list_offsets(now, &req) {
                    return;
                }
                let mut req = req;
                req.state = ReqState::Parked;
                req.not_before = delay.then(|| now + self.config.reconnect_backoff);
                self.reqs.insert(key, req);
            }
        }
    }
}

fn duration_ms(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests;
