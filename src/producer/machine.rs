//! The producer's state machine for one topic: records are appended to the open batch of
//! their partition, batches close when full, when their linger passes or on flush, and the
//! client asks for Produce requests when a connection to a leader has a free slot (late
//! binding: batches are sealed, and sequence numbers assigned, only then).
//!
//! It knows no connection and no clock: the [`Client`](crate::client::Client) owns it,
//! tells it the time, asks it for requests per leader, and hands it the answers.
//!
//! # Invariants
//!
//! - Every record produced gets exactly one [`DeliveryReport`] (as part of its batch's):
//!   acknowledged with its offset, or failed with an error that says whether the records
//!   may have been written.
//! - Per partition, batches are sent in the order they were closed. Without idempotence at
//!   most one batch of a partition is in flight, so a retry cannot reorder. With
//!   idempotence up to five are, each sealed once with its sequence number; a retry re-sends
//!   the same bytes, and after any failure the partition sends nothing new until everything
//!   it had in flight is answered, then re-sends from its oldest unacknowledged batch.
//! - A batch that may be in flight fails only by `delivery_timeout` (or when the broker
//!   refuses it for good); then, with idempotence, the sequence numbers are out of step and
//!   the producer bumps its epoch (InitProducerId) once nothing is in flight, re-sealing
//!   what is left with fresh sequences.
//! - Appending a record is O(1) amortised and allocates nothing once the partition's
//!   buffers have grown (batch buffers are recycled through a pool).
//! - Memory is bounded by `max_queued_messages` / `max_queued_bytes` (records not yet
//!   reported) plus the reports the application has not drained.

use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::batch::{BatchBuilder, ProducerStamp, RecordFormat, Seal};
use super::config::{Acks, ProducerConfig};
use super::partitioner::Partitioner;
use crate::error::Error;
use crate::protocol::compression::CompressOptions;
use crate::protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use crate::protocol::messages::{InitProducerIdResponse, ProduceRequest, ProduceResponse};
use crate::protocol::records::batch::HeaderSource;
use crate::protocol::ErrorCode;
use crate::rng::Rng;

/// Identifies a producer inside a [`Client`](crate::client::Client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProducerId(pub u64);

/// Where a produced record sits until its report comes: its partition and its place in
/// that partition's produce order (0 for the first record produced to it, then 1, ...).
/// Reports name ranges of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordId {
    /// The partition id.
    pub partition: i32,
    /// The record's number in the partition's produce order.
    pub sequence: u64,
}

/// Why `produce` refused a record; nothing was queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProduceError {
    /// `max_queued_messages` or `max_queued_bytes` records wait unacknowledged.
    #[error("producer queue full ({records} records, {bytes} bytes waiting)")]
    QueueFull {
        /// Records waiting.
        records: usize,
        /// Bytes waiting.
        bytes: usize,
    },
    /// The record alone is larger than a request may be (`max_request_size`).
    #[error("record of about {size} bytes is larger than max_request_size ({max})")]
    RecordTooLarge {
        /// The record's size bound.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The partition does not exist (in the metadata the producer has).
    #[error("topic {topic} has no partition {partition}")]
    UnknownPartition {
        /// Topic.
        topic: String,
        /// The partition asked for.
        partition: i32,
    },
    /// The record cannot be written in the leader's format (headers before Kafka 0.11).
    #[error("cannot encode the record: {0}")]
    Encode(#[from] crate::protocol::error::EncodeError),
    /// The producer was closed or removed.
    #[error("the producer is closed")]
    Closed,
}

/// A record to produce. Keys, values and headers are borrowed: `produce` copies them once,
/// into the open batch.
#[derive(Debug, Clone, Copy)]
pub struct ProduceRecord<'a, H: HeaderSource = (&'a str, Option<&'a [u8]>)> {
    /// The key (used by keyed partitioners).
    pub key: Option<&'a [u8]>,
    /// The value; `None` is a tombstone.
    pub value: Option<&'a [u8]>,
    /// Headers (Kafka 0.11+).
    pub headers: &'a [H],
    /// Milliseconds since the epoch (ignored by Kafka before 0.10). The transports fill it
    /// from the wall clock; the core never reads one.
    pub timestamp: i64,
    /// A partition id, or `None` for the partitioner's choice.
    pub partition: Option<i32>,
}

impl<'a> ProduceRecord<'a> {
    /// A record with a value only, at `timestamp`.
    pub fn value(value: &'a [u8], timestamp: i64) -> Self {
        ProduceRecord {
            key: None,
            value: Some(value),
            headers: &[],
            timestamp,
            partition: None,
        }
    }

    /// A record with a key and a value, at `timestamp`.
    pub fn keyed(key: &'a [u8], value: &'a [u8], timestamp: i64) -> Self {
        ProduceRecord {
            key: Some(key),
            value: Some(value),
            headers: &[],
            timestamp,
            partition: None,
        }
    }
}

/// Why a batch was not acknowledged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{error}{}", if *.possibly_persisted { " (the records may have been written)" } else { " (not written)" })]
pub struct DeliveryError {
    /// The last error.
    pub error: Error,
    /// Whether the broker may have written the records: a request was sent and its answer
    /// never came (a timeout or a lost connection) and no later attempt settled it.
    pub possibly_persisted: bool,
}

/// The outcome of one batch: records `first .. first + count` of `partition`.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryReport {
    /// The producer.
    pub producer: ProducerId,
    /// The partition.
    pub partition: i32,
    /// The first record's [`RecordId::sequence`].
    pub first: u64,
    /// How many records.
    pub count: u32,
    /// The offset of the first record (-1 when `required_acks` is 0: no answer comes), or
    /// why the batch failed.
    pub result: Result<i64, DeliveryError>,
}

impl DeliveryReport {
    /// Whether the report covers `record`.
    pub fn covers(&self, record: RecordId) -> bool {
        record.partition == self.partition
            && record.sequence >= self.first
            && record.sequence - self.first < u64::from(self.count)
    }

    /// The offset of `record`, if this report acknowledges it.
    pub fn offset_of(&self, record: RecordId) -> Option<i64> {
        match &self.result {
            Ok(base) if *base >= 0 && self.covers(record) => {
                Some(base + (record.sequence - self.first) as i64)
            }
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BatchState {
    /// Closed, waiting to be sent (or re-sent).
    Waiting,
    /// In a request on the wire.
    InFlight,
    /// Reported while an older batch of the partition was not: a placeholder that keeps
    /// its place in the window of batches the broker remembers (see `sendable`).
    Settled,
}

struct Batch {
    builder: BatchBuilder,
    first: u64,
    /// Its place among the producer's batches in opening order (see `Producer::deliveries`).
    seq: u64,
    count: u32,
    bytes: usize,
    /// The batch fails if not acknowledged by then.
    deadline: Instant,
    /// The bytes sent, with the stamp they were sealed with (kept for retries).
    sealed: Option<(Bytes, RecordFormat)>,
    stamp: ProducerStamp,
    state: BatchState,
    attempts: u32,
    /// An attempt ended without an answer (timeout, connection lost).
    maybe_written: bool,
    /// The delivery deadline passed while in flight: report the answer, retry nothing.
    expired: bool,
}

impl Batch {
    /// Forgets the sealed bytes (to seal again with another stamp or format), taking the
    /// records back into the builder if they left with them.
    fn unseal(&mut self) {
        if let Some((bytes, _)) = self.sealed.take() {
            self.builder.restore(&bytes);
        }
    }
}

struct Partition {
    id: i32,
    open: Option<Batch>,
    /// Closed batches in order; in-flight ones are among them.
    queue: VecDeque<Batch>,
    in_flight: usize,
    /// The broker the in-flight batches went to.
    in_flight_broker: Option<i32>,
    /// Not before this instant (a retry's backoff).
    not_before: Option<Instant>,
    /// A batch failed since the partition was last drained: send nothing new until
    /// `in_flight` is 0, then resume from the oldest batch.
    recovering: bool,
    next_record: u64,
    next_sequence: i32,
    listed: bool,
}

impl Partition {
    fn new(id: i32) -> Partition {
        Partition {
            id,
            open: None,
            queue: VecDeque::new(),
            in_flight: 0,
            in_flight_broker: None,
            not_before: None,
            recovering: false,
            next_record: 0,
            next_sequence: 0,
            listed: false,
        }
    }
}

/// The idempotent producer's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Identity {
    /// Not idempotent.
    None,
    /// Waiting for InitProducerId (nothing is sent meanwhile).
    Wanted { id: i64, epoch: i16 },
    /// InitProducerId in flight.
    Asking { id: i64, epoch: i16 },
    /// Assigned.
    Known { id: i64, epoch: i16 },
}

/// What one Produce request carries, to match its answer.
#[derive(Debug)]
pub struct ProduceToken {
    /// (partition index, first record) per batch.
    batches: Vec<(usize, u64)>,
}

/// What the client should do after the producer took an answer.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Followup {
    /// Leader information is stale: refresh the metadata.
    pub refresh_metadata: bool,
}

/// The producer state machine of one topic. See the [module docs](self).
pub struct Producer {
    id: ProducerId,
    topic: String,
    config: ProducerConfig,
    partitioner: Box<dyn Partitioner>,
    partitions: Vec<Partition>,
    /// Partitions that may have something to send.
    ready: VecDeque<usize>,
    /// (linger deadline, partition index, first record) of open batches, in opening order
    /// (linger is one constant, so the front is the earliest).
    lingers: VecDeque<(Instant, usize, u64)>,
    /// Every batch not yet reported, in opening order, with its delivery deadline; the
    /// front is the batch numbered `delivery_base` (`Batch::seq`), so reporting one finds
    /// its entry in O(1). Entries of batches reported out of order stay, marked settled,
    /// until everything before them is reported or expired.
    deliveries: VecDeque<Delivery>,
    delivery_base: u64,
    next_seq: u64,
    /// Retry backoffs: (instant, partition index).
    retries: BTreeSet<(Instant, usize)>,
    format: RecordFormat,
    identity: Identity,
    queued_records: usize,
    queued_bytes: usize,
    /// Batch buffers to reuse.
    pool: Vec<BatchBuilder>,
    reports: VecDeque<DeliveryReport>,
    flushing: bool,
    /// Why the epoch is being bumped (the error batches of unknown outcome fail with).
    bump_reason: Option<Error>,
    /// InitProducerId failed: not again before this instant.
    init_not_before: Option<Instant>,
    rng: Rng,
}

impl fmt::Debug for Producer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("id", &self.id)
            .field("topic", &self.topic)
            .field("partitions", &self.partitions.len())
            .field("queued_records", &self.queued_records)
            .field("queued_bytes", &self.queued_bytes)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// A bound on the bytes a record adds to a batch (v2 record or legacy message).
fn record_bound<H: HeaderSource>(r: &ProduceRecord<'_, H>) -> usize {
    let key = r.key.map_or(0, <[u8]>::len);
    let value = r.value.map_or(0, <[u8]>::len);
    let headers: usize = r
        .headers
        .iter()
        .map(|h| h.key().len() + h.value().map_or(0, <[u8]>::len) + 10)
        .sum();
    40 + key + value + headers
}

impl Producer {
    /// A producer for `topic`, whose partitions have the ids `partitions`, writing batches
    /// in `format` (what its leaders speak) and idempotent if `idempotent`.
    pub fn new(
        id: ProducerId,
        topic: String,
        partitions: &[i32],
        config: ProducerConfig,
        format: RecordFormat,
        idempotent: bool,
        seed: u64,
    ) -> Producer {
        let mut ids = partitions.to_vec();
        ids.sort_unstable();
        ids.dedup();
        Producer {
            id,
            topic,
            partitioner: config.partitioner.build(seed),
            partitions: ids.into_iter().map(Partition::new).collect(),
            config,
            ready: VecDeque::new(),
            lingers: VecDeque::new(),
            deliveries: VecDeque::new(),
            delivery_base: 0,
            next_seq: 0,
            retries: BTreeSet::new(),
            format,
            identity: if idempotent {
                Identity::Wanted { id: -1, epoch: -1 }
            } else {
                Identity::None
            },
            queued_records: 0,
            queued_bytes: 0,
            pool: Vec::new(),
            reports: VecDeque::new(),
            flushing: false,
            bump_reason: None,
            init_not_before: None,
            rng: Rng::new(seed ^ 0x7072_6f64),
        }
    }

    /// Its id.
    pub fn id(&self) -> ProducerId {
        self.id
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The configuration.
    pub fn config(&self) -> &ProducerConfig {
        &self.config
    }

    /// Whether it writes with idempotence.
    pub fn is_idempotent(&self) -> bool {
        self.identity != Identity::None
    }

    /// The producer id and epoch, once assigned (idempotence).
    pub fn producer_id_and_epoch(&self) -> Option<(i64, i16)> {
        match self.identity {
            Identity::Known { id, epoch } => Some((id, epoch)),
            _ => None,
        }
    }

    /// Records produced and not yet reported.
    pub fn queued_records(&self) -> usize {
        self.queued_records
    }

    /// Bytes of records produced and not yet reported.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// The format new batches are written in.
    pub fn format(&self) -> RecordFormat {
        self.format
    }

    /// The leaders speak another format (a rolling upgrade, or the first connection told
    /// more than the guess): new batches use it; closed ones are converted when sealed.
    pub fn set_format(&mut self, format: RecordFormat) {
        self.format = format;
    }

    /// The partition ids, sorted.
    pub fn partition_ids(&self) -> impl Iterator<Item = i32> + '_ {
        self.partitions.iter().map(|p| p.id)
    }

    /// The metadata lists more partitions: they become usable. (Partitions are never
    /// removed in Kafka.)
    pub fn add_partitions(&mut self, ids: impl IntoIterator<Item = i32>) {
        let mut changed = false;
        for id in ids {
            if self.partitions.binary_search_by_key(&id, |p| p.id).is_err() {
                self.partitions.push(Partition::new(id));
                changed = true;
            }
        }
        if changed {
            // Indexes move: rebuild what refers to them.
            let old: Vec<i32> = self.partitions.iter().map(|p| p.id).collect();
            self.partitions.sort_by_key(|p| p.id);
            let remap = |i: usize| -> usize {
                let id = old[i];
                self.partitions
                    .binary_search_by_key(&id, |p| p.id)
                    .unwrap_or(i)
            };
            let ready: VecDeque<usize> = self.ready.iter().map(|&i| remap(i)).collect();
            let lingers = self
                .lingers
                .iter()
                .map(|&(t, i, f)| (t, remap(i), f))
                .collect();
            let deliveries = self
                .deliveries
                .iter()
                .map(|&d| Delivery {
                    index: remap(d.index),
                    ..d
                })
                .collect();
            let retries = self.retries.iter().map(|&(t, i)| (t, remap(i))).collect();
            self.ready = ready;
            self.lingers = lingers;
            self.deliveries = deliveries;
            self.retries = retries;
        }
    }

    /// Appends a record to its partition's open batch. O(1); allocates nothing once the
    /// buffers have grown. Returns where the record is and whether the client must be
    /// driven soon (a batch opened, so a linger timer starts, or one closed, so a request
    /// may go).
    pub fn produce<H: HeaderSource>(
        &mut self,
        now: Instant,
        record: &ProduceRecord<'_, H>,
    ) -> Result<(RecordId, bool), ProduceError> {
        let bound = record_bound(record);
        if self.queued_records >= self.config.max_queued_messages
            || self.queued_bytes + bound > self.config.max_queued_bytes
        {
            return Err(ProduceError::QueueFull {
                records: self.queued_records,
                bytes: self.queued_bytes,
            });
        }
        // The wrapper or batch header, and the request's own fields.
        let max = self.config.max_request_size.saturating_sub(128);
        if bound > max {
            return Err(ProduceError::RecordTooLarge {
                size: bound,
                max: self.config.max_request_size,
            });
        }
        let count = self.partitions.len();
        let index = match record.partition {
            Some(id) => self
                .partitions
                .binary_search_by_key(&id, |p| p.id)
                .map_err(|_| ProduceError::UnknownPartition {
                    topic: self.topic.clone(),
                    partition: id,
                })?,
            None if count == 0 => {
                return Err(ProduceError::UnknownPartition {
                    topic: self.topic.clone(),
                    partition: -1,
                })
            }
            None => self.partitioner.partition(record.key, count) % count,
        };
        let mut wake = false;
        // Close a batch the record would overflow.
        let overflow = self.partitions[index].open.as_ref().is_some_and(|b| {
            b.builder.size() + bound > self.config.batch_max_bytes
                || b.builder.format() != self.format
        });
        if overflow {
            self.close_open(index);
            wake = true;
        }
        if self.partitions[index].open.is_none() {
            self.open_batch(now, index);
            wake = true;
        }
        let p = &mut self.partitions[index];
        let batch = p.open.as_mut().expect("opened above");
        let before = batch.builder.size();
        if let Err(e) =
            batch
                .builder
                .append(record.timestamp, record.key, record.value, record.headers)
        {
            if batch.count == 0 {
                // Nothing in it: give the buffer back (its timers find it gone).
                self.close_open(index);
            }
            return Err(e.into());
        }
        let added = batch.builder.size() - before;
        batch.count += 1;
        batch.bytes += added;
        let id = RecordId {
            partition: p.id,
            sequence: p.next_record,
        };
        p.next_record += 1;
        self.queued_records += 1;
        self.queued_bytes += added;
        let full = batch.count as usize >= self.config.batch_max_records
            || batch.builder.size() >= self.config.batch_max_bytes;
        if full {
            self.close_open(index);
            wake = true;
        }
        Ok((id, wake))
    }

    fn open_batch(&mut self, now: Instant, index: usize) {
        let mut builder = self
            .pool
            .pop()
            .unwrap_or_else(|| BatchBuilder::new(self.format));
        builder.reset(self.format);
        let p = &mut self.partitions[index];
        let first = p.next_record;
        let deadline = now + self.config.delivery_timeout;
        let seq = self.next_seq;
        self.next_seq += 1;
        p.open = Some(Batch {
            builder,
            first,
            seq,
            count: 0,
            bytes: 0,
            deadline,
            sealed: None,
            stamp: ProducerStamp::NONE,
            state: BatchState::Waiting,
            attempts: 0,
            maybe_written: false,
            expired: false,
        });
        self.lingers
            .push_back((now + self.config.linger, index, first));
        self.deliveries.push_back(Delivery {
            deadline,
            index,
            first,
            settled: false,
        });
    }

    /// Closes the open batch of partition `index` into its send queue.
    fn close_open(&mut self, index: usize) {
        let p = &mut self.partitions[index];
        let Some(batch) = p.open.take() else { return };
        if batch.count == 0 {
            self.settle(batch.seq);
            self.pool.push(batch.builder);
            return;
        }
        // Opening order, so by `first`: what `expire`'s binary search relies on.
        debug_assert!(p.queue.back().map_or(true, |b| b.first < batch.first));
        p.queue.push_back(batch);
        self.partitioner.batch_closed(index);
        self.list(index);
        while let Some(&(_, i, first)) = self.lingers.front() {
            if self.is_open(i, first) {
                break;
            }
            self.lingers.pop_front();
        }
    }

    /// Batch `seq` was reported: its delivery entry is settled, and the settled front of
    /// the queue leaves. O(1) amortized.
    fn settle(&mut self, seq: u64) {
        if let Some(d) = (seq.checked_sub(self.delivery_base))
            .and_then(|k| usize::try_from(k).ok())
            .and_then(|k| self.deliveries.get_mut(k))
        {
            d.settled = true;
        }
        while self.deliveries.front().is_some_and(|d| d.settled) {
            self.deliveries.pop_front();
            self.delivery_base += 1;
        }
    }

    fn list(&mut self, index: usize) {
        let p = &mut self.partitions[index];
        if !p.listed {
            p.listed = true;
            self.ready.push_back(index);
        }
    }

    /// Closes every open batch: they go as soon as they can, without lingering. The
    /// application's `flush` calls it, then waits for the reports.
    pub fn flush(&mut self) {
        for i in 0..self.partitions.len() {
            self.close_open(i);
        }
        self.flushing = true;
    }

    /// Whether it has batches waiting for a connection or for its producer id (its
    /// client then keeps the reconnect backoffs' timers).
    pub fn is_waiting(&self) -> bool {
        !self.ready.is_empty() || matches!(self.identity, Identity::Wanted { .. })
    }

    /// Whether some partition may have a batch to send (cheap; a transport asks before
    /// waking a connection's writer).
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty() && matches!(self.identity, Identity::None | Identity::Known { .. })
    }

    /// Whether every produced record has been reported.
    pub fn is_idle(&self) -> bool {
        self.queued_records == 0
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next needed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        // Fronts of settled batches are popped when batches close and are reported, so
        // these are O(1); a stale front costs one early wake-up at most.
        let linger = self.lingers.front().map(|t| t.0);
        let retry = self.retries.first().map(|t| t.0);
        let init = self.init_not_before;
        let delivery = self.deliveries.front().map(|d| d.deadline);
        linger
            .into_iter()
            .chain(retry)
            .chain(delivery)
            .chain(init)
            .min()
    }

    fn is_open(&self, index: usize, first: u64) -> bool {
        self.partitions
            .get(index)
            .and_then(|p| p.open.as_ref())
            .is_some_and(|b| b.first == first)
    }

    /// Time passed: lingering batches close, backoffs end, batches past their delivery
    /// deadline fail.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.init_not_before.is_some_and(|t| t <= now) {
            self.init_not_before = None;
        }
        while let Some(&(t, index, first)) = self.lingers.front() {
            if t > now && self.is_open(index, first) {
                break;
            }
            self.lingers.pop_front();
            if self.is_open(index, first) {
                self.close_open(index);
            }
        }
        while let Some(&(t, index)) = self.retries.first() {
            if t > now {
                break;
            }
            self.retries.pop_first();
            let p = &mut self.partitions[index];
            if p.not_before.is_some_and(|nb| nb <= now) {
                p.not_before = None;
            }
            self.list(index);
        }
        while let Some(&d) = self.deliveries.front() {
            if d.deadline > now {
                break;
            }
            self.deliveries.pop_front();
            self.delivery_base += 1;
            if !d.settled {
                self.expire(d.index, d.first);
            }
        }
    }

    /// The batch `first` of partition `index` passed its delivery deadline.
    fn expire(&mut self, index: usize, first: u64) {
        let error = Error::timeout(format!(
            "delivery of {}-{} (delivery_timeout {:?})",
            self.topic, self.partitions[index].id, self.config.delivery_timeout
        ));
        let p = &mut self.partitions[index];
        if p.open.as_ref().is_some_and(|b| b.first == first) {
            let batch = p.open.take().expect("checked");
            self.partitioner.batch_closed(index);
            self.report(index, batch, Err((error, false)));
            return;
        }
        // A partition's queue holds its batches in opening order, so by `first`.
        let Some(pos) = (p.queue.binary_search_by_key(&first, |b| b.first).ok())
            .filter(|&k| p.queue[k].state != BatchState::Settled)
        else {
            return; // reported already
        };
        if p.queue[pos].state == BatchState::InFlight {
            // Its answer settles it; no retry after that.
            p.queue[pos].expired = true;
            return;
        }
        let batch = self.take_batch(index, pos);
        let sealed = batch.sealed.is_some();
        let maybe = batch.maybe_written;
        self.report(index, batch, Err((error.clone(), maybe)));
        if sealed && self.is_idempotent() {
            // Its sequence numbers will never be acknowledged: the later batches would
            // be refused as out of order.
            self.want_new_epoch(&error);
        }
    }

    /// Takes the batch at `pos` out to report it: the oldest leaves the queue (with the
    /// placeholders behind it); a younger one leaves a placeholder.
    fn take_batch(&mut self, index: usize, pos: usize) -> Batch {
        let p = &mut self.partitions[index];
        let batch = if pos == 0 {
            p.queue.pop_front().expect("a batch at 0")
        } else {
            let placeholder = Batch {
                builder: BatchBuilder::new(self.format),
                count: 0,
                bytes: 0,
                sealed: None,
                state: BatchState::Settled,
                ..p.queue[pos]
            };
            std::mem::replace(&mut p.queue[pos], placeholder)
        };
        while p
            .queue
            .front()
            .is_some_and(|b| b.state == BatchState::Settled)
        {
            p.queue.pop_front();
        }
        batch
    }

    fn report(&mut self, index: usize, batch: Batch, result: Result<i64, (Error, bool)>) {
        self.queued_records -= batch.count as usize;
        self.queued_bytes -= batch.bytes;
        let p = &self.partitions[index];
        self.reports.push_back(DeliveryReport {
            producer: self.id,
            partition: p.id,
            first: batch.first,
            count: batch.count,
            result: result.map_err(|(error, possibly_persisted)| DeliveryError {
                error,
                possibly_persisted,
            }),
        });
        let mut builder = batch.builder;
        // Sealed in place: the buffer comes back once no request holds the bytes (the
        // frame encoder copied them), without a copy.
        if let Some(Ok(bytes)) = batch.sealed.map(|(b, _)| b.try_into_mut()) {
            builder.recycle(Vec::from(bytes));
        }
        if builder.capacity() <= 2 * self.config.batch_max_bytes && self.pool.len() < 64 {
            builder.reset(self.format);
            self.pool.push(builder);
        }
        self.settle(batch.seq);
    }

    /// The next delivery report.
    pub fn poll_report(&mut self) -> Option<DeliveryReport> {
        self.reports.pop_front()
    }

    // ---- idempotence -----------------------------------------------------------------

    /// Whether it needs InitProducerId now (idempotence, no identity or a bump wanted,
    /// nothing in flight, no backoff running).
    pub fn wants_producer_id(&self) -> bool {
        matches!(self.identity, Identity::Wanted { .. })
            && self.init_not_before.is_none()
            && self.partitions.iter().all(|p| p.in_flight == 0)
    }

    /// An InitProducerId request to send (producer id and epoch to bump, or -1), when the
    /// producer needs one and nothing is in flight.
    pub fn poll_init_producer_id(&mut self) -> Option<(i64, i16)> {
        match self.identity {
            Identity::Wanted { id, epoch } if self.wants_producer_id() => {
                self.identity = Identity::Asking { id, epoch };
                Some((id, epoch))
            }
            _ => None,
        }
    }

    /// The answer to InitProducerId.
    pub fn handle_init_producer_id(
        &mut self,
        now: Instant,
        result: Result<&InitProducerIdResponse, Error>,
    ) -> Result<(), Error> {
        let Identity::Asking { id, epoch } = self.identity else {
            return Ok(());
        };
        let code = result
            .as_ref()
            .ok()
            .and_then(|r| ErrorCode::from_code(r.error_code));
        match (result, code) {
            (Ok(r), None) => {
                self.identity = Identity::Known {
                    id: r.producer_id,
                    epoch: r.producer_epoch,
                };
                // New identity, new sequences: what is not acknowledged is sealed again,
                // except batches the broker may have written under the old identity: sent
                // again they would be written twice, so they fail as possibly written.
                let bump = id >= 0;
                for index in 0..self.partitions.len() {
                    let p = &mut self.partitions[index];
                    p.next_sequence = 0;
                    p.recovering = false;
                    // The window of remembered batches starts again too.
                    p.queue.retain(|b| b.state != BatchState::Settled);
                    let (unsure, sure): (VecDeque<Batch>, VecDeque<Batch>) =
                        std::mem::take(&mut p.queue)
                            .into_iter()
                            .partition(|b| bump && b.maybe_written);
                    p.queue = sure;
                    for b in p.queue.iter_mut() {
                        b.unseal();
                    }
                    for b in unsure {
                        let error = self.bump_reason.clone().unwrap_or_else(|| {
                            Error::broker(ErrorCode::UnknownProducerId, "epoch bumped")
                        });
                        self.report(index, b, Err((error, true)));
                    }
                    let p = &mut self.partitions[index];
                    if !p.queue.is_empty() && !p.listed {
                        p.listed = true;
                        self.ready.push_back(index);
                    }
                }
                Ok(())
            }
            (Ok(_), Some(code)) => {
                self.identity = Identity::Wanted { id, epoch };
                self.init_not_before = Some(now + self.config.retry_backoff);
                Err(Error::broker(code, "InitProducerId"))
            }
            (Err(e), _) => {
                self.identity = Identity::Wanted { id, epoch };
                self.init_not_before = Some(now + self.config.retry_backoff);
                Err(e)
            }
        }
    }

    fn want_new_epoch(&mut self, reason: &Error) {
        self.bump_reason = Some(reason.clone());
        tracing::debug!(topic = %self.topic, reason = %reason, "producer epoch bump wanted");
        if let Identity::Known { id, epoch } = self.identity {
            self.identity = Identity::Wanted { id, epoch };
        }
    }

    /// The producer cannot get an identity (InitProducerId refused for good): every batch
    /// not in flight fails with `error`.
    pub fn fail_waiting(&mut self, error: &Error) {
        tracing::warn!(topic = %self.topic, %error, "failing the batches waiting for a producer id");
        for index in 0..self.partitions.len() {
            self.close_open(index);
            let queue = std::mem::take(&mut self.partitions[index].queue);
            let (in_flight, waiting): (VecDeque<Batch>, VecDeque<Batch>) = queue
                .into_iter()
                .partition(|b| b.state != BatchState::Waiting);
            self.partitions[index].queue = in_flight;
            for b in waiting {
                let maybe = b.maybe_written;
                self.report(index, b, Err((error.clone(), maybe)));
            }
        }
    }

    // ---- sending ---------------------------------------------------------------------

    /// Partitions with something that may be sent now; the client routes each to its
    /// leader and calls [`poll_request`](Self::poll_request) for the leaders it can reach.
    /// Partitions that cannot send are dropped from the list until something changes.
    pub fn ready_partitions(&mut self, now: Instant, out: &mut Vec<(usize, i32)>) {
        if matches!(
            self.identity,
            Identity::Wanted { .. } | Identity::Asking { .. }
        ) {
            return;
        }
        let n = self.ready.len();
        for _ in 0..n {
            let Some(index) = self.ready.pop_front() else {
                break;
            };
            if self.sendable(now, index).is_some() {
                self.ready.push_back(index);
                out.push((index, self.partitions[index].id));
            } else {
                self.partitions[index].listed = false;
            }
        }
    }

    /// The position in the queue of the next batch of partition `index` to send, if one
    /// may go now.
    fn sendable(&self, now: Instant, index: usize) -> Option<usize> {
        let p = &self.partitions[index];
        if p.not_before.is_some_and(|t| t > now) {
            return None;
        }
        let limit = if self.is_idempotent() {
            self.config.max_in_flight_per_connection.min(5)
        } else {
            1
        };
        if p.in_flight >= limit || (p.recovering && p.in_flight > 0) {
            return None;
        }
        // At most `limit` unacknowledged batches ahead, in flight or not: a broker keeps
        // the last five batches per producer, so a retry of any of them is recognised as
        // a duplicate even when later ones were answered first.
        p.queue
            .iter()
            .position(|b| b.state == BatchState::Waiting)
            .filter(|pos| *pos < limit)
    }

    /// A Produce request for `broker`, the leader of the partitions `indexes` (from
    /// [`ready_partitions`](Self::ready_partitions)), written for Produce `version`: one
    /// batch per partition, at most `max_request_size` bytes of batches. `None` if none of
    /// them can go. Sealing happens here.
    pub fn poll_request(
        &mut self,
        now: Instant,
        broker: i32,
        indexes: &[usize],
        version: i16,
    ) -> Option<(ProduceRequest, ProduceToken)> {
        let format = RecordFormat::for_produce_version(version);
        let mut total = 0usize;
        let mut data = Vec::new();
        let mut token = ProduceToken {
            batches: Vec::new(),
        };
        for &index in indexes {
            let Some(pos) = self.sendable(now, index) else {
                continue;
            };
            let p = &self.partitions[index];
            if p.in_flight > 0 && p.in_flight_broker != Some(broker) {
                continue; // its leader moved: wait for the answers from the old one
            }
            let size = match &p.queue[pos].sealed {
                Some((b, f)) if *f == format => b.len(),
                _ => p.queue[pos].builder.size(),
            };
            if total > 0 && total + size > self.config.max_request_size {
                continue;
            }
            let bytes = match self.seal(index, pos, format) {
                Ok(b) => b,
                Err(e) => {
                    let batch = self.take_batch(index, pos);
                    self.report(index, batch, Err((Error::Encode(e), false)));
                    continue;
                }
            };
            total += bytes.len();
            let p = &mut self.partitions[index];
            let batch = &mut p.queue[pos];
            batch.state = BatchState::InFlight;
            batch.attempts += 1;
            p.in_flight += 1;
            p.in_flight_broker = Some(broker);
            token.batches.push((index, batch.first));
            data.push(PartitionProduceData {
                index: p.id,
                records: Some(bytes),
                ..Default::default()
            });
        }
        if data.is_empty() {
            return None;
        }
        let request = ProduceRequest {
            transactional_id: None,
            acks: self.config.required_acks.wire(),
            timeout_ms: i32::try_from(self.config.ack_timeout.as_millis()).unwrap_or(i32::MAX),
            topic_data: vec![TopicProduceData {
                name: self.topic.clone(),
                partition_data: data,
                ..Default::default()
            }],
            ..Default::default()
        };
        Some((request, token))
    }

    /// Seals the batch at `pos` of partition `index` for `format` (once; a retry re-sends
    /// the same bytes unless the leader's format changed).
    fn seal(
        &mut self,
        index: usize,
        pos: usize,
        format: RecordFormat,
    ) -> Result<Bytes, crate::protocol::error::EncodeError> {
        let stamp = match (self.identity, format) {
            (Identity::Known { id, epoch }, RecordFormat::RecordBatch) => Some((id, epoch)),
            _ => None,
        };
        let compression = self.config.compression;
        let p = &mut self.partitions[index];
        let batch = &mut p.queue[pos];
        if let Some((bytes, f)) = &batch.sealed {
            if *f == format {
                return Ok(bytes.clone());
            }
        }
        batch.unseal();
        if batch.builder.format() != format {
            batch.builder = convert(&batch.builder, format)?;
        }
        let stamp = match stamp {
            Some((producer_id, producer_epoch)) => ProducerStamp {
                producer_id,
                producer_epoch,
                base_sequence: p.next_sequence,
            },
            None => ProducerStamp::NONE,
        };
        let seal = Seal {
            compression,
            compress_options: CompressOptions::default(),
            stamp,
        };
        let out = match batch.builder.seal_in_place(&seal)? {
            Some(out) => out,
            None => {
                let mut out = Vec::with_capacity(batch.builder.size() + 16);
                batch.builder.seal(&mut out, &seal)?;
                out
            }
        };
        // Sealed: the sequence numbers are taken (not before, so a failure leaves no gap).
        batch.stamp = stamp;
        if stamp.base_sequence >= 0 {
            p.next_sequence = p.next_sequence.wrapping_add(batch.count as i32) & i32::MAX;
        }
        let bytes = Bytes::from(out);
        batch.sealed = Some((bytes.clone(), format));
        Ok(bytes)
    }

    /// The answer to a Produce request (or why none came).
    pub fn handle_response(
        &mut self,
        now: Instant,
        token: ProduceToken,
        result: Result<&ProduceResponse, &Error>,
    ) -> Followup {
        let mut follow = Followup::default();
        let acks_none = self.config.required_acks == Acks::None;
        for (index, first) in token.batches {
            // In-flight batches are the first unsettled ones of the queue: found near its
            // front (a binary search over a long queue costs a cache miss per step).
            let Some(pos) = self.partitions[index]
                .queue
                .iter()
                .position(|b| b.first == first && b.state == BatchState::InFlight)
            else {
                continue;
            };
            let id = self.partitions[index].id;
            {
                let p = &mut self.partitions[index];
                p.in_flight -= 1;
                p.queue[pos].state = BatchState::Waiting;
                if p.in_flight == 0 {
                    p.in_flight_broker = None;
                }
            }
            let outcome = match result {
                Err(e) => Err(e.clone()),
                Ok(_) if acks_none => Ok(-1),
                Ok(r) => partition_outcome(r, &self.topic, id),
            };
            match outcome {
                Ok(offset) => self.acknowledge(index, pos, offset),
                Err(error) => {
                    let error = match error {
                        Error::Broker { code, context } => Error::Broker {
                            code,
                            context: format!("{context} producing to {}-{id}", self.topic),
                        },
                        other => other,
                    };
                    if error.code().is_some_and(ErrorCode::invalidates_metadata)
                        || matches!(error, Error::Transport(_) | Error::Timeout { .. })
                    {
                        follow.refresh_metadata = true;
                    }
                    self.batch_failed(now, index, pos, error);
                }
            }
            self.list(index);
        }
        follow
    }

    fn acknowledge(&mut self, index: usize, pos: usize, offset: i64) {
        let batch = self.take_batch(index, pos);
        let p = &mut self.partitions[index];
        if p.in_flight == 0 && p.not_before.is_none() {
            // What failed went again and is settled: back to full speed.
            p.recovering = false;
        }
        self.report(index, batch, Ok(offset));
    }

    fn batch_failed(&mut self, now: Instant, index: usize, pos: usize, error: Error) {
        let idempotent = self.is_idempotent();
        let code = error.code();
        let ambiguous = matches!(error, Error::Transport(_) | Error::Timeout { .. });
        let p = &mut self.partitions[index];
        let batch = &mut p.queue[pos];
        batch.maybe_written |= ambiguous;
        // An earlier batch of the partition is unsettled: this one was refused because of
        // it, and goes again after it.
        let earlier_unsettled = p
            .queue
            .iter()
            .take(pos)
            .any(|b| b.state != BatchState::Settled);
        let out_of_order = code == Some(ErrorCode::OutOfOrderSequenceNumber);
        let unknown_producer = code == Some(ErrorCode::UnknownProducerId);
        // Refused for a sequence gap while an older batch is unsettled: the gap is that
        // batch, and this one goes again after it (brokers answer a producer they have no
        // state for with UNKNOWN_PRODUCER_ID in that case, or OUT_OF_ORDER_SEQUENCE).
        // Or an older batch failed for good and the epoch bump that restarts the sequences
        // is pending: this one goes again under the new epoch.
        let bump_pending = matches!(
            self.identity,
            Identity::Wanted { .. } | Identity::Asking { .. }
        );
        let behind_gap =
            idempotent && (out_of_order || unknown_producer) && (earlier_unsettled || bump_pending);
        // The broker lost the producer's state (its log was deleted or truncated): a new
        // epoch, then the unacknowledged batches go again with fresh sequences.
        let state_lost = idempotent && unknown_producer && !earlier_unsettled;
        let retriable = error.is_retriable() || behind_gap || state_lost;
        let batch = &p.queue[pos];
        tracing::debug!(
            topic = %self.topic,
            partition = p.id,
            first = batch.first,
            attempts = batch.attempts,
            %error,
            "batch failed"
        );
        let give_up = batch.expired
            || !retriable
            || (!idempotent && batch.attempts > self.config.max_retries)
            || now >= batch.deadline;
        if give_up {
            let batch = self.take_batch(index, pos);
            let maybe = batch.maybe_written;
            let sealed_with_sequence = batch.stamp.base_sequence >= 0;
            // Later batches of an idempotent partition already carry sequences past this
            // one: they would be refused. A new epoch restarts the sequences.
            if idempotent && sealed_with_sequence {
                self.want_new_epoch(&error);
            }
            let p = &mut self.partitions[index];
            p.recovering = true;
            self.report(index, batch, Err((error, maybe)));
            return;
        }
        let attempts = batch.attempts;
        if state_lost {
            self.want_new_epoch(&error);
        }
        let delay = self.backoff(attempts);
        let p = &mut self.partitions[index];
        p.recovering = true;
        let at = now + delay;
        p.not_before = Some(p.not_before.map_or(at, |t| t.max(at)));
        self.retries.insert((at, index));
    }

    /// Exponential backoff with ±20 % jitter.
    fn backoff(&mut self, attempts: u32) -> Duration {
        let base = self.config.retry_backoff;
        let factor = 1u32 << attempts.saturating_sub(1).min(16);
        let d = base
            .saturating_mul(factor)
            .min(self.config.retry_backoff_max);
        let jitter = 0.8 + 0.4 * self.rng.unit();
        d.mul_f64(jitter).max(Duration::from_millis(1))
    }

    /// Fails everything not yet reported with `error` (the producer is being dropped): the
    /// records in flight may have been written.
    pub fn abort(&mut self, error: &Error) {
        for index in 0..self.partitions.len() {
            self.close_open(index);
            let batches: Vec<Batch> = self.partitions[index].queue.drain(..).collect();
            self.partitions[index].in_flight = 0;
            for b in batches
                .into_iter()
                .filter(|b| b.state != BatchState::Settled)
            {
                let maybe = b.maybe_written || b.state == BatchState::InFlight;
                self.report(index, b, Err((error.clone(), maybe)));
            }
        }
        self.lingers.clear();
        self.deliveries.clear();
        self.delivery_base = self.next_seq;
        self.retries.clear();
        self.ready.clear();
    }
}

/// A batch's delivery deadline, for [`Producer::deliveries`].
#[derive(Debug, Clone, Copy)]
struct Delivery {
    deadline: Instant,
    index: usize,
    first: u64,
    /// Reported (out of order: an earlier batch is still pending).
    settled: bool,
}

/// The offset the response gives partition `id` of `topic`, or its error.
fn partition_outcome(r: &ProduceResponse, topic: &str, id: i32) -> Result<i64, Error> {
    let p = r
        .responses
        .iter()
        .filter(|t| t.name == topic)
        .flat_map(|t| t.partition_responses.iter())
        .find(|p| p.index == id);
    let Some(p) = p else {
        return Err(Error::broker(
            ErrorCode::UnknownServerError,
            "the Produce response left the partition out",
        ));
    };
    match ErrorCode::from_code(p.error_code) {
        None => Ok(p.base_offset),
        // Written before: an earlier attempt's answer was lost.
        Some(ErrorCode::DuplicateSequenceNumber) => Ok(p.base_offset),
        Some(code) => Err(Error::broker(
            code,
            p.error_message.clone().unwrap_or_default(),
        )),
    }
}

/// The batch's records written again in `format` (the leader changed formats).
fn convert(
    builder: &BatchBuilder,
    format: RecordFormat,
) -> Result<BatchBuilder, crate::protocol::error::EncodeError> {
    use crate::protocol::records::{Batches, DecodeLimits};
    let mut sealed = Vec::new();
    builder.seal(
        &mut sealed,
        &Seal {
            compression: crate::protocol::compression::Compression::None,
            compress_options: CompressOptions::default(),
            stamp: ProducerStamp::NONE,
        },
    )?;
    let mut out = BatchBuilder::new(format);
    for batch in Batches::new(Bytes::from(sealed), DecodeLimits::default()) {
        let batch = batch.map_err(|_| crate::protocol::error::EncodeError::TooLong("batch"))?;
        for r in batch.records() {
            let r = r.map_err(|_| crate::protocol::error::EncodeError::TooLong("batch"))?;
            out.append(
                r.timestamp,
                r.key.as_deref(),
                r.value.as_deref(),
                &r.headers,
            )?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
