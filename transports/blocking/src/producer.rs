//! The producers: [`Producer`] (batching; each send gives a [`DeliveryHandle`]) and
//! [`SyncProducer`] (each send returns once its record is acknowledged), over the shared
//! core of [`grete_facade`]. Every wait parks the calling thread through
//! [`grete_facade::block_on`]: the facade decides, this module only waits.

use std::fmt;
use std::time::{Duration, Instant};

use grete::client::{DeliveryError, DeliveryReport, ProduceError, RecordId};
use grete_facade::{block_on, Delivered, ProducerHandle, Record, SendError};

/// A batching producer for one topic (`Topic::producer`). Cheap to clone and to share
/// between threads; every clone appends to the same batches.
///
/// `send` copies the record into its partition's open batch and returns at once (or, with
/// `block_on_queue_full`, once there is room); the batch goes when it fills, when its
/// linger passes, or on [`flush`](Self::flush). Every record gets exactly one outcome:
/// [`wait`](DeliveryHandle::wait) on its [`DeliveryHandle`], read the
/// [`reports`](Self::reports) (one per batch), or both. Dropping a handle does not cancel
/// its record.
#[derive(Clone)]
pub struct Producer {
    handle: ProducerHandle,
}

impl fmt::Debug for Producer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("id", &self.handle.id())
            .finish_non_exhaustive()
    }
}

/// `block_on` without a deadline always has a value.
fn forever<T>(value: Option<T>) -> T {
    value.expect("block_on without a deadline returns only when ready")
}

impl Producer {
    pub(crate) fn new(handle: ProducerHandle) -> Producer {
        Producer { handle }
    }

    /// Queues a record; with `block_on_queue_full` waits for room when the queue is full,
    /// else fails with [`ProduceError::QueueFull`].
    pub fn send(&self, record: Record<'_>) -> Result<DeliveryHandle, ProduceError> {
        let rid = forever(block_on(None, |cx| self.handle.poll_send(cx, &record)))?;
        Ok(self.delivery(rid))
    }

    /// Queues a record like [`send`](Self::send), without a per-record handle: its outcome
    /// comes through the [`reports`](Self::reports) iterator or the
    /// [`on_delivery`](Self::on_delivery) callback (librdkafka's way). Returns where the
    /// record sits, which its batch's report covers. The cheapest way to produce.
    pub fn produce(&self, record: Record<'_>) -> Result<RecordId, ProduceError> {
        forever(block_on(None, |cx| self.handle.poll_send(cx, &record)))
    }

    /// Queues a record without ever waiting: a full queue is [`ProduceError::QueueFull`]
    /// whatever `block_on_queue_full` says. Allocates nothing once the producer's buffers
    /// have grown.
    pub fn try_send(&self, record: Record<'_>) -> Result<DeliveryHandle, ProduceError> {
        self.handle.try_send(&record).map(|rid| self.delivery(rid))
    }

    fn delivery(&self, rid: RecordId) -> DeliveryHandle {
        DeliveryHandle {
            handle: self.handle.clone(),
            rid,
        }
    }

    /// Sends every open batch now and waits until every record sent so far has its
    /// outcome.
    pub fn flush(&self) {
        self.handle.flush();
        forever(block_on(None, |cx| self.handle.poll_flushed(cx)));
    }

    /// The delivery reports, one per batch, as a blocking iterator (it ends when the
    /// producer is closed and every report was read). At most
    /// `grete_facade::STREAM_REPORTS` wait unread; older ones are dropped and counted by
    /// [`lagged`](Self::lagged).
    pub fn reports(&self) -> Reports {
        Reports {
            handle: self.handle.clone(),
        }
    }

    /// Calls `callback` with every delivery report from now on (one per batch, covering
    /// records `first .. first + count` of its partition), on the driver thread and never
    /// under a lock. It must not block; it may send.
    pub fn on_delivery(&self, callback: impl Fn(&DeliveryReport) + Send + Sync + 'static) {
        self.handle.set_callback(callback);
    }

    /// Reports dropped from the report iterator because it was not read in time.
    pub fn lagged(&self) -> u64 {
        self.handle.lagged()
    }

    /// Records sent whose outcome is not known yet.
    pub fn queued_records(&self) -> usize {
        self.handle.queued_records()
    }

    /// Flushes, waits up to `timeout` for every outcome, then removes the producer: what
    /// has no outcome by then fails (reported like every other failure; records in flight
    /// as possibly written). Returns how many records failed that way. Other clones stop
    /// working.
    pub fn close(self, timeout: Duration) -> u64 {
        self.handle.flush();
        let deadline = Instant::now() + timeout;
        block_on(Some(deadline), |cx| self.handle.poll_flushed(cx));
        self.handle.close()
    }
}

/// The outcome of one record, to wait for: where it was written, or why not.
#[derive(Debug)]
#[must_use = "the handle only reads the outcome; dropping it does not cancel the record"]
pub struct DeliveryHandle {
    handle: ProducerHandle,
    rid: RecordId,
}

impl DeliveryHandle {
    /// The record's partition and place in that partition's produce order.
    pub fn record_id(&self) -> RecordId {
        self.rid
    }

    /// Waits for the record's outcome.
    pub fn wait(self) -> Result<Delivered, DeliveryError> {
        forever(block_on(None, |cx| self.handle.poll_delivery(cx, self.rid)))
    }

    /// Waits up to `timeout` for the record's outcome: `None` if it is not known by then
    /// (the handle can be waited on again).
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Result<Delivered, DeliveryError>> {
        let deadline = Instant::now() + timeout;
        block_on(Some(deadline), |cx| self.handle.poll_delivery(cx, self.rid))
    }
}

/// A producer's delivery reports, one per batch, as a blocking iterator.
#[derive(Debug)]
pub struct Reports {
    handle: ProducerHandle,
}

impl Iterator for Reports {
    type Item = DeliveryReport;

    /// Waits for the next report; `None` once the producer is closed and every report was
    /// read.
    fn next(&mut self) -> Option<DeliveryReport> {
        forever(block_on(None, |cx| self.handle.poll_report(cx)))
    }
}

/// A producer whose every send returns once its record is acknowledged
/// (`Topic::sync_producer`).
#[derive(Debug, Clone)]
pub struct SyncProducer {
    inner: Producer,
}

impl SyncProducer {
    pub(crate) fn new(inner: Producer) -> SyncProducer {
        SyncProducer { inner }
    }

    /// Sends a record and waits for its outcome.
    pub fn send(&self, record: Record<'_>) -> Result<Delivered, SendError> {
        let delivery = self.inner.send(record)?;
        // Without lingering: nothing else will fill the batch.
        self.inner.handle.flush();
        Ok(delivery.wait()?)
    }

    /// See [`Producer::close`].
    pub fn close(self, timeout: Duration) -> u64 {
        self.inner.close(timeout)
    }
}
