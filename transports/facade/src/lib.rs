//! grete-facade: the application-facing state every grete transport shares, written once.
//!
//! The IO-free core [`Client`] lives behind one lock in [`Shared`], with what the
//! application's handles wait on: each producer's *delivery book* (the outcome of every
//! record, kept per partition as per-batch reports), the wakers of tasks or threads
//! waiting for room in a full queue, for a flush, for a record's outcome or for the next
//! report. A transport's driver (a task or a thread) locks it to feed and drain the core;
//! the handles lock it to append a record (O(1), no channel message) and wake the driver
//! only when a batch opened or filled.
//!
//! Everything here is `poll`-shaped or a future: the async transports await it, the
//! blocking one parks its thread with a waker that unparks it ([`block_on`]). The client's
//! calls are written once in [`admin`]; the driver (wake-ups, drain, timers, IO
//! instructions, closing) in [`driver`]; the ZooKeeper reads in [`zk`]. A transport adds
//! only sockets (a [`Transport`] opening connections as tasks or threads), its timer and
//! its spawning.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod consumer;
pub mod driver;
pub mod zk;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use grete::client::{
    Client, DeliveryError, DeliveryReport, Event, OpId, Output, ProduceError, ProduceRecord,
    ProducerId, RecordId,
};
use grete::cluster::Cluster;
use grete::consumer::ConsumerId;
use grete::error::Error;
use grete::producer::ProducerConfig;

pub use bytes::Bytes;
pub use consumer::{
    ConsumerHandle, Message, PartitionRef, SimpleConsumerConfig, TopicPositions, TopicStarts,
};
pub use driver::{Driver, Input, Link, Owner, Transport};

/// How many batch reports each partition's book keeps for records whose outcome is asked
/// for later (a handle awaited long after its record was acknowledged).
pub const BOOK_BATCHES: usize = 1024;

/// How many reports wait in a producer's report stream before the oldest are dropped
/// (and counted in [`ProducerHandle::lagged`]): memory stays bounded when nobody reads.
pub const STREAM_REPORTS: usize = 4096;

/// The core and the application's waiting state, behind one lock.
pub struct Shared {
    core: Mutex<Core>,
    signals: driver::Signals,
    /// Called on each [`wake_driver`](Self::wake_driver), besides waking the driver.
    on_wake: Box<dyn Fn() + Send + Sync>,
    /// The metadata cache as the handles read it without the core's lock: the same `Arc`
    /// until the cache changes ([`Shared::publish_cluster`]).
    cluster: Mutex<Arc<Cluster>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Shared {
    /// Shares `client`, for a [`Driver`]; `on_wake` is called whenever a handle wakes the
    /// driver (it must not block nor take the lock; drivers pass `|| {}`).
    pub fn new(client: Client, on_wake: impl Fn() + Send + Sync + 'static) -> Arc<Shared> {
        Arc::new(Shared {
            cluster: Mutex::new(client.cluster_snapshot()),
            core: Mutex::new(Core {
                published: client.cluster_generation(),
                client,
                books: BTreeMap::new(),
                ops: BTreeMap::new(),
                deferred: VecDeque::new(),
                callbacks: Vec::new(),
                flushed: Vec::new(),
                closed: false,
                wall_clock: WallClock::default(),
                consumers: BTreeMap::new(),
                consumer_waiters: Vec::new(),
            }),
            signals: driver::Signals::default(),
            on_wake: Box::new(on_wake),
        })
    }

    /// The metadata cache, shared: cloning the `Arc` is all it costs.
    pub fn cluster_snapshot(&self) -> Arc<Cluster> {
        Arc::clone(&self.cluster.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Publishes the client's metadata cache to [`cluster_snapshot`](Self::cluster_snapshot)
    /// if it changed. Drivers call it in each drain, under `core`'s lock and before the
    /// waiters they woke can take it, so a caller sees what its operation did.
    pub fn publish_cluster(&self, core: &mut Core) {
        let generation = core.client.cluster_generation();
        if generation != core.published {
            core.published = generation;
            *self.cluster.lock().unwrap_or_else(PoisonError::into_inner) =
                core.client.cluster_snapshot();
        }
    }

    /// Locks the core. Never hold it across IO.
    pub fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks the driver to drive the client.
    pub fn wake_driver(&self) {
        self.signals.raise(|s| &s.drive);
        (self.on_wake)()
    }

    /// Starts an operation (`start` calls one of the client's operation methods) and wakes
    /// the driver to route it; [`poll_op`](Self::poll_op) gives its result. Fails at once
    /// once the client is closed.
    pub fn start_op(
        &self,
        start: impl FnOnce(&mut Client, Instant) -> OpId,
    ) -> Result<OpId, Error> {
        let mut core = self.lock();
        if core.closed {
            return Err(Error::Misuse("the client is closed".into()));
        }
        let op = start(&mut core.client, Instant::now());
        core.ops.insert(op, OpSlot::default());
        drop(core);
        self.wake_driver();
        Ok(op)
    }

    /// The result of operation `op` (started with [`start_op`](Self::start_op)), once it
    /// finished; its slot is freed then. The core finishes every operation by its deadline.
    pub fn poll_op(&self, cx: &mut Context<'_>, op: OpId) -> Poll<Result<Output, Error>> {
        let mut core = self.lock();
        let closed = core.closed;
        let Some(slot) = core.ops.get_mut(&op) else {
            return Poll::Ready(Err(Error::Misuse("unknown operation".into())));
        };
        if let Some(result) = slot.result.take() {
            core.ops.remove(&op);
            return Poll::Ready(result);
        }
        if closed {
            core.ops.remove(&op);
            return Poll::Ready(Err(Error::Misuse("the client is closed".into())));
        }
        slot.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Forgets operation `op` (its caller stopped waiting): its result is dropped.
    pub fn forget_op(&self, op: OpId) {
        self.lock().ops.remove(&op);
    }

    /// Calls the delivery callbacks of the reports booked since the last call, outside
    /// the lock (a callback may produce). Drivers call it after each drain.
    pub fn run_callbacks(&self) {
        let (due, flushed) = {
            let mut core = self.lock();
            (
                std::mem::take(&mut core.callbacks),
                std::mem::take(&mut core.flushed),
            )
        };
        for (callback, report) in due {
            callback(&report);
        }
        // A flush is over once the callbacks of its records have run.
        for w in flushed {
            w.wake();
        }
    }
}

/// The core client plus the producers' books.
pub struct Core {
    /// The cluster generation [`Shared::cluster_snapshot`] holds.
    published: u64,
    /// The IO-free client. Drivers feed and drain it; after a `handle_*` call, drain
    /// events with [`Core::poll_event`], not `client.poll_event`.
    pub client: Client,
    books: BTreeMap<ProducerId, Book>,
    /// Operations started through [`Shared::start_op`]: their waker, then their result.
    ops: BTreeMap<OpId, OpSlot>,
    /// Events taken out of the client by a handle (closing a producer), for the driver.
    deferred: VecDeque<Event>,
    /// Delivery callbacks to call once the lock is released.
    callbacks: Vec<(Callback, DeliveryReport)>,
    /// Flush waiters of producers with a callback: woken after the callbacks ran.
    flushed: Vec<Waker>,
    closed: bool,
    wall_clock: WallClock,
    /// Consumer handles' wakers and events.
    consumers: BTreeMap<ConsumerId, consumer::ConsumerSlot>,
    /// Consumers with a waker registered, for [`Core::wake_consumers`].
    consumer_waiters: Vec<ConsumerId>,
}

/// A producer's delivery callback: called once per batch report, on the driver's task or
/// thread, never under the core's lock.
pub type Callback = Arc<dyn Fn(&DeliveryReport) + Send + Sync>;

impl Core {
    /// The next event the driver must handle itself (broker failures, results of
    /// operations it started itself): delivery reports go to their producer's book and
    /// results of operations started through [`Shared::start_op`] to their slot, waking
    /// who waits.
    pub fn poll_event(&mut self) -> Option<Event> {
        loop {
            let event = match self.deferred.pop_front() {
                Some(e) => e,
                None => self.client.poll_event()?,
            };
            if let Some(other) = self.route(event) {
                return Some(other);
            }
        }
    }

    /// Books a delivery report or stores an operation's result (waking who waits); gives
    /// back any other event.
    fn route(&mut self, event: Event) -> Option<Event> {
        match event {
            Event::Delivery(report) => self.book_report(report),
            Event::Done { op, result } if self.ops.contains_key(&op) => self.finish_op(op, result),
            Event::Consumer(e) => self.book_consumer_event(e),
            other => return Some(other),
        }
        None
    }

    fn book_report(&mut self, report: DeliveryReport) {
        let queued = self
            .client
            .producer(report.producer)
            .map_or(0, |p| p.queued_records());
        if let Some(book) = self.books.get_mut(&report.producer) {
            if let Some(callback) = &book.callback {
                self.callbacks.push((callback.clone(), report.clone()));
                if queued == 0 {
                    self.flushed.append(&mut book.idle_waiters);
                }
            }
            book.record(report, queued);
        }
    }

    /// Books the delivery reports waiting in the client's event queue now, keeping its
    /// other events for the driver.
    fn take_reports(&mut self) {
        while let Some(e) = self.client.poll_event() {
            if let Some(other) = self.route(e) {
                self.deferred.push_back(other);
            }
        }
    }

    /// Stores the result of an operation started through [`Shared::start_op`] and wakes
    /// its waiter.
    fn finish_op(&mut self, op: OpId, result: Result<Output, Error>) {
        if let Some(slot) = self.ops.get_mut(&op) {
            slot.result = Some(result);
            if let Some(w) = slot.waker.take() {
                w.wake();
            }
        }
    }

    /// The client is shutting down (call it after `client.close(now)`): the reports of
    /// the records that closing failed reach their books first, then every waiter wakes
    /// and finds its outcome, or the client closed.
    pub fn close(&mut self) {
        self.take_reports();
        self.closed = true;
        for book in self.books.values_mut() {
            book.wake_all();
        }
        for slot in self.ops.values_mut() {
            if let Some(w) = slot.waker.take() {
                w.wake();
            }
        }
        self.wake_all_consumers();
    }
}

/// A record to produce. Borrowed: `send` copies it once into its batch.
#[derive(Debug, Clone, Copy, Default)]
pub struct Record<'a> {
    /// The key.
    pub key: Option<&'a [u8]>,
    /// The value (`None`: a tombstone).
    pub value: Option<&'a [u8]>,
    /// Headers (Kafka 0.11+; an error before).
    pub headers: &'a [(&'a str, Option<&'a [u8]>)],
    /// Milliseconds since the epoch; `None` is now.
    pub timestamp: Option<i64>,
    /// The partition; `None` lets the partitioner choose.
    pub partition: Option<i32>,
}

impl<'a> Record<'a> {
    /// A record with only a value.
    pub fn value(value: &'a [u8]) -> Self {
        Record {
            value: Some(value),
            ..Record::default()
        }
    }

    /// A record with a key and a value.
    pub fn keyed(key: &'a [u8], value: &'a [u8]) -> Self {
        Record {
            key: Some(key),
            value: Some(value),
            ..Record::default()
        }
    }
}

/// Where an acknowledged record was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// The partition.
    pub partition: i32,
    /// Its offset (-1 with `required_acks` 0: the broker does not answer).
    pub offset: i64,
}

#[derive(Default)]
struct OpSlot {
    waker: Option<Waker>,
    result: Option<Result<Output, Error>>,
}

struct Outcome {
    first: u64,
    count: u32,
    result: Result<i64, DeliveryError>,
}

#[derive(Default)]
struct PartitionBook {
    outcomes: VecDeque<Outcome>,
    /// Records below this had their outcome pruned from `outcomes`.
    pruned_below: u64,
    waiters: Vec<(u64, Waker)>,
}

#[derive(Default)]
struct Book {
    partitions: BTreeMap<i32, PartitionBook>,
    stream: VecDeque<DeliveryReport>,
    lagged: u64,
    stream_waker: Option<Waker>,
    room_waiters: Vec<Waker>,
    idle_waiters: Vec<Waker>,
    failed_records: u64,
    removed: bool,
    callback: Option<Callback>,
}

impl Book {
    fn record(&mut self, report: DeliveryReport, queued: usize) {
        if report.result.is_err() {
            self.failed_records += u64::from(report.count);
        }
        let p = self.partitions.entry(report.partition).or_default();
        let end = report.first + u64::from(report.count);
        p.waiters.retain(|(seq, waker)| {
            let covered = *seq >= report.first && *seq < end;
            if covered {
                waker.wake_by_ref();
            }
            !covered
        });
        if p.outcomes.len() == BOOK_BATCHES {
            if let Some(old) = p.outcomes.pop_front() {
                p.pruned_below = p.pruned_below.max(old.first + u64::from(old.count));
            }
        }
        p.outcomes.push_back(Outcome {
            first: report.first,
            count: report.count,
            result: report.result.clone(),
        });
        if self.stream.len() == STREAM_REPORTS {
            self.stream.pop_front();
            self.lagged += 1;
        }
        self.stream.push_back(report);
        if let Some(w) = self.stream_waker.take() {
            w.wake();
        }
        for w in self.room_waiters.drain(..) {
            w.wake();
        }
        if queued == 0 {
            for w in self.idle_waiters.drain(..) {
                w.wake();
            }
        }
    }

    fn wake_all(&mut self) {
        for p in self.partitions.values_mut() {
            for (_, w) in p.waiters.drain(..) {
                w.wake();
            }
        }
        for w in self
            .room_waiters
            .drain(..)
            .chain(self.idle_waiters.drain(..))
        {
            w.wake();
        }
        if let Some(w) = self.stream_waker.take() {
            w.wake();
        }
    }

    fn outcome(&self, rid: RecordId) -> Option<Result<Delivered, DeliveryError>> {
        let p = self.partitions.get(&rid.partition)?;
        let found = p
            .outcomes
            .iter()
            .rev()
            .find(|o| rid.sequence >= o.first && rid.sequence - o.first < u64::from(o.count));
        match found {
            Some(o) => Some(match &o.result {
                Ok(base) => Ok(Delivered {
                    partition: rid.partition,
                    offset: if *base >= 0 {
                        base + (rid.sequence - o.first) as i64
                    } else {
                        -1
                    },
                }),
                Err(e) => Err(e.clone()),
            }),
            None if rid.sequence < p.pruned_below => Some(Err(DeliveryError {
                error: Error::Misuse(format!(
                    "the outcome of {rid:?} is no longer kept (only the last {BOOK_BATCHES} batches per partition are)"
                )),
                possibly_persisted: true,
            })),
            None => None,
        }
    }
}

/// How long [`WallClock`] derives the time from the monotonic clock before it reads the
/// wall clock again.
const WALL_CLOCK_RESYNC: Duration = Duration::from_secs(1);

/// The timestamps of records produced without one, derived from the monotonic `now` that
/// `send` reads anyway: one clock read per record instead of two (the second one was a
/// tenth of a producer's CPU time per record). The wall clock is read again every
/// [`WALL_CLOCK_RESYNC`], so a step of the wall clock shows in the timestamps within a
/// second.
#[derive(Debug, Default, Clone, Copy)]
struct WallClock {
    /// A monotonic instant and the wall-clock time (since the epoch) read right after it.
    anchor: Option<(Instant, Duration)>,
}

impl WallClock {
    /// Milliseconds since the epoch at `now`; `wall` reads the wall clock when needed.
    fn millis_at(&mut self, now: Instant, wall: impl FnOnce() -> Duration) -> i64 {
        if let Some((at, since_epoch)) = self.anchor {
            // Another thread may have read an earlier `now` and locked later: it gets the
            // anchor's time.
            let elapsed = now.saturating_duration_since(at);
            if elapsed < WALL_CLOCK_RESYNC {
                return (since_epoch + elapsed).as_millis() as i64;
            }
        }
        let since_epoch = wall();
        self.anchor = Some((now, since_epoch));
        since_epoch.as_millis() as i64
    }
}

fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}

fn closed_error() -> DeliveryError {
    DeliveryError {
        error: Error::Misuse("the client was closed before the record's outcome was known".into()),
        possibly_persisted: true,
    }
}

/// A producer as every transport exposes it, in `poll` form. Cheap to clone.
#[derive(Clone)]
pub struct ProducerHandle {
    shared: Arc<Shared>,
    id: ProducerId,
    block_on_queue_full: bool,
    /// What keeps the transport's driver running while the producer is used.
    _driver: Option<Arc<dyn Send + Sync>>,
}

impl std::fmt::Debug for ProducerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerHandle")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl ProducerHandle {
    /// Starts a producer for `topic` (which must be in the client's metadata).
    pub fn start(
        shared: &Arc<Shared>,
        topic: &str,
        config: ProducerConfig,
    ) -> Result<ProducerHandle, Error> {
        let block_on_queue_full = config.block_on_queue_full;
        let mut core = shared.lock();
        if core.closed {
            return Err(Error::Misuse("the client is closed".into()));
        }
        let id = core.client.add_producer(Instant::now(), topic, config)?;
        core.books.insert(id, Book::default());
        drop(core);
        // It may need a producer id first.
        shared.wake_driver();
        Ok(ProducerHandle {
            shared: shared.clone(),
            id,
            block_on_queue_full,
            _driver: None,
        })
    }

    /// Keeps `driver` (a transport's client handle) alive as long as the producer.
    pub fn keeping(mut self, driver: Arc<dyn Send + Sync>) -> ProducerHandle {
        self._driver = Some(driver);
        self
    }

    /// The producer's id in the core.
    pub fn id(&self) -> ProducerId {
        self.id
    }

    /// Appends a record, or says why not. With `block_on_queue_full` a full queue is
    /// `Pending` (woken when a report frees room); without, it is
    /// [`ProduceError::QueueFull`].
    pub fn poll_send(
        &self,
        cx: &mut Context<'_>,
        record: &Record<'_>,
    ) -> Poll<Result<RecordId, ProduceError>> {
        let (core, result) = self.produce(record);
        match result {
            Err(ProduceError::QueueFull { .. }) if self.block_on_queue_full => {
                let mut core = core.expect("held on a full queue");
                if let Some(book) = core.books.get_mut(&self.id) {
                    book.room_waiters.push(cx.waker().clone());
                }
                drop(core);
                // Lingering batches must go for room to come.
                self.shared.wake_driver();
                Poll::Pending
            }
            result => Poll::Ready(result),
        }
    }

    /// Appends a record without ever waiting: a full queue is
    /// [`ProduceError::QueueFull`] whatever `block_on_queue_full` says. Allocates nothing
    /// once the producer's buffers have grown (the hot path).
    pub fn try_send(&self, record: &Record<'_>) -> Result<RecordId, ProduceError> {
        let (core, result) = self.produce(record);
        if core.is_some() {
            drop(core);
            // As in poll_send: room comes only once lingering batches go.
            self.shared.wake_driver();
        }
        result
    }

    /// Appends `record` under the lock; on a full queue the lock is still held (so a
    /// waiter registers before a report can free room), else it is released and the
    /// driver woken when the core asks for it.
    fn produce(
        &self,
        record: &Record<'_>,
    ) -> (Option<MutexGuard<'_, Core>>, Result<RecordId, ProduceError>) {
        let now = Instant::now();
        let mut core = self.shared.lock();
        if core.closed {
            return (None, Err(ProduceError::Closed));
        }
        let timestamp = match record.timestamp {
            Some(t) => t,
            None => core.wall_clock.millis_at(now, since_epoch),
        };
        let record = ProduceRecord {
            key: record.key,
            value: record.value,
            headers: record.headers,
            timestamp,
            partition: record.partition,
        };
        match core.client.produce(now, self.id, &record) {
            Ok((rid, wake)) => {
                drop(core);
                if wake {
                    self.shared.wake_driver();
                }
                (None, Ok(rid))
            }
            Err(e @ ProduceError::QueueFull { .. }) => (Some(core), Err(e)),
            Err(e) => (None, Err(e)),
        }
    }

    /// The outcome of record `rid`: `Pending` until its batch is reported.
    pub fn poll_delivery(
        &self,
        cx: &mut Context<'_>,
        rid: RecordId,
    ) -> Poll<Result<Delivered, DeliveryError>> {
        let mut core = self.shared.lock();
        let closed = core.closed;
        let Some(book) = core.books.get_mut(&self.id) else {
            return Poll::Ready(Err(closed_error()));
        };
        if let Some(outcome) = book.outcome(rid) {
            return Poll::Ready(outcome);
        }
        if closed || book.removed {
            return Poll::Ready(Err(closed_error()));
        }
        let p = book.partitions.entry(rid.partition).or_default();
        match p.waiters.iter_mut().find(|(s, _)| *s == rid.sequence) {
            Some((_, w)) => w.clone_from(cx.waker()),
            None => p.waiters.push((rid.sequence, cx.waker().clone())),
        }
        Poll::Pending
    }

    /// Sends every open batch now (no linger); then [`poll_flushed`](Self::poll_flushed)
    /// says when every record has its outcome.
    pub fn flush(&self) {
        self.shared.lock().client.flush(Instant::now(), self.id);
        self.shared.wake_driver();
    }

    /// `Ready` once every record produced so far has its outcome.
    pub fn poll_flushed(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut core = self.shared.lock();
        let queued = core
            .client
            .producer(self.id)
            .map_or(0, |p| p.queued_records());
        if core.closed {
            return Poll::Ready(());
        }
        if queued == 0 {
            // Done once the callbacks of its records have run too.
            if !core.callbacks.iter().any(|(_, r)| r.producer == self.id) {
                return Poll::Ready(());
            }
            core.flushed.push(cx.waker().clone());
            return Poll::Pending;
        }
        if let Some(book) = core.books.get_mut(&self.id) {
            book.idle_waiters.push(cx.waker().clone());
        }
        Poll::Pending
    }

    /// The next delivery report (one per batch), `None` once the producer is closed and
    /// every report was read. At most [`STREAM_REPORTS`] wait; older ones are dropped and
    /// counted by [`lagged`](Self::lagged).
    pub fn poll_report(&self, cx: &mut Context<'_>) -> Poll<Option<DeliveryReport>> {
        let mut core = self.shared.lock();
        let closed = core.closed;
        let Some(book) = core.books.get_mut(&self.id) else {
            return Poll::Ready(None);
        };
        if let Some(r) = book.stream.pop_front() {
            return Poll::Ready(Some(r));
        }
        if closed || book.removed {
            return Poll::Ready(None);
        }
        book.stream_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Calls `callback` with every delivery report from now on (one per batch), on the
    /// driver's task or thread and outside the core's lock. It must not block.
    pub fn set_callback(&self, callback: impl Fn(&DeliveryReport) + Send + Sync + 'static) {
        if let Some(book) = self.shared.lock().books.get_mut(&self.id) {
            book.callback = Some(Arc::new(callback));
        }
    }

    /// Reports dropped from the stream because it was not read in time.
    pub fn lagged(&self) -> u64 {
        let core = self.shared.lock();
        core.books.get(&self.id).map_or(0, |b| b.lagged)
    }

    /// Records produced whose outcome is not known yet.
    pub fn queued_records(&self) -> usize {
        let core = self.shared.lock();
        core.client
            .producer(self.id)
            .map_or(0, |p| p.queued_records())
    }

    /// Records reported failed so far.
    pub fn failed_records(&self) -> u64 {
        let core = self.shared.lock();
        core.books.get(&self.id).map_or(0, |b| b.failed_records)
    }

    /// Removes the producer: every record still without an outcome fails (records in
    /// flight as possibly written), and their reports go to the stream and the book.
    /// Returns how many records failed that way. Flush first to close cleanly.
    pub fn close(&self) -> u64 {
        let mut core = self.shared.lock();
        let before = core.books.get(&self.id).map_or(0, |b| b.failed_records);
        core.client.remove_producer(Instant::now(), self.id);
        // The failure reports are in the client's event queue.
        core.take_reports();
        let book = core.books.get_mut(&self.id);
        let after = book.as_ref().map_or(0, |b| b.failed_records);
        if let Some(book) = book {
            book.removed = true;
            book.wake_all();
        }
        drop(core);
        self.shared.run_callbacks();
        self.shared.wake_driver();
        after - before
    }
}

/// A waker that unparks a thread: [`block_on`] waits with it.
struct ThreadWaker(Thread);

impl std::task::Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

thread_local! {
    /// This thread's waker, made once: waiting allocates nothing.
    static THREAD_WAKER: Waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
}

/// Polls `poll` on this thread until it is ready or `deadline` passes (`None` then).
/// Allocates nothing after the thread's first call.
pub fn block_on<T>(
    deadline: Option<Instant>,
    mut poll: impl FnMut(&mut Context<'_>) -> Poll<T>,
) -> Option<T> {
    // A clone is a reference count; a thread being torn down makes its own.
    let waker = THREAD_WAKER
        .try_with(Waker::clone)
        .unwrap_or_else(|_| Waker::from(Arc::new(ThreadWaker(std::thread::current()))));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = poll(&mut cx) {
            return Some(v);
        }
        match deadline {
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return None;
                }
                std::thread::park_timeout(d - now);
            }
            None => std::thread::park(),
        }
    }
}

/// Why a synchronous send did not deliver its record.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SendError {
    /// The record was refused before it was queued.
    Produce(ProduceError),
    /// It was queued, then failed.
    Delivery(DeliveryError),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Produce(e) => e.fmt(f),
            SendError::Delivery(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SendError {}

impl From<ProduceError> for SendError {
    fn from(e: ProduceError) -> Self {
        SendError::Produce(e)
    }
}

impl From<DeliveryError> for SendError {
    fn from(e: DeliveryError) -> Self {
        SendError::Delivery(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_clock_reads_the_wall_clock_once_per_resync_period() {
        let mut clock = WallClock::default();
        let t0 = Instant::now();
        let epoch = Duration::from_millis(1_700_000_000_123) + Duration::from_micros(900);
        assert_eq!(clock.millis_at(t0, || epoch), 1_700_000_000_123);
        // Within the period: derived from the monotonic clock, sub-millisecond parts kept.
        let never = || -> Duration { panic!("read the wall clock within the period") };
        let at = |d: Duration| t0 + d;
        assert_eq!(
            clock.millis_at(at(Duration::from_micros(100)), never),
            1_700_000_000_124
        );
        assert_eq!(
            clock.millis_at(at(Duration::from_millis(999)), never),
            1_700_000_001_122
        );
        // An earlier `now` than the anchor (a thread that read its clock before another
        // took the lock first) gets the anchor's time.
        let mut later = WallClock::default();
        later.millis_at(at(Duration::from_millis(5)), || epoch);
        assert_eq!(later.millis_at(t0, never), 1_700_000_000_123);
        // After the period: the wall clock again (here stepped back by a minute).
        let stepped = epoch - Duration::from_secs(60);
        assert_eq!(
            clock.millis_at(at(WALL_CLOCK_RESYNC), || stepped),
            1_699_999_940_123
        );
        assert_eq!(
            clock.millis_at(at(WALL_CLOCK_RESYNC + Duration::from_millis(10)), never),
            1_699_999_940_133
        );
    }
}
