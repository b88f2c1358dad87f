//! The producers: [`Producer`] (batching; each send gives a [`DeliveryFuture`]) and
//! [`SyncProducer`] (each send returns once its record is acknowledged), over the shared
//! core of [`grete_facade`].

use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::Stream;
use grete::client::{DeliveryError, DeliveryReport, ProduceError, RecordId};
use grete_facade::{Delivered, ProducerHandle, Record, SendError};

use crate::Runtime;

/// A batching producer for one topic (`Topic::producer`). Cheap to clone; every clone
/// appends to the same batches.
///
/// `send` copies the record into its partition's open batch and returns at once (or, with
/// `block_on_queue_full`, once there is room); the batch goes when it fills, when its
/// linger passes, or on [`flush`](Self::flush). Every record gets exactly one outcome: await
/// its [`DeliveryFuture`], read the [`reports`](Self::reports) stream (one report per batch),
/// or both. Dropping a future does not cancel its record.
#[derive(Clone)]
pub struct Producer {
    handle: ProducerHandle,
    rt: Arc<dyn Runtime>,
}

impl fmt::Debug for Producer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("id", &self.handle.id())
            .finish_non_exhaustive()
    }
}

impl Producer {
    pub(crate) fn new(handle: ProducerHandle, rt: Arc<dyn Runtime>) -> Producer {
        Producer { handle, rt }
    }

    /// Queues a record; with `block_on_queue_full` waits for room when the queue is full,
    /// else fails with [`ProduceError::QueueFull`].
    pub async fn send(&self, record: Record<'_>) -> Result<DeliveryFuture, ProduceError> {
        let rid = poll_fn(|cx| self.handle.poll_send(cx, &record)).await?;
        Ok(self.future(rid))
    }

    /// Queues a record like [`send`](Self::send), without a per-record future: its
    /// outcome comes through the [`reports`](Self::reports) stream or the
    /// [`on_delivery`](Self::on_delivery) callback (librdkafka's way). Returns where the
    /// record sits, which its batch's report covers. The cheapest way to produce.
    pub async fn produce(&self, record: Record<'_>) -> Result<RecordId, ProduceError> {
        poll_fn(|cx| self.handle.poll_send(cx, &record)).await
    }

    /// Queues a record without ever waiting: a full queue is [`ProduceError::QueueFull`]
    /// whatever `block_on_queue_full` says.
    pub fn try_send(&self, record: Record<'_>) -> Result<DeliveryFuture, ProduceError> {
        self.handle.try_send(&record).map(|rid| self.future(rid))
    }

    fn future(&self, rid: RecordId) -> DeliveryFuture {
        DeliveryFuture {
            handle: self.handle.clone(),
            rid,
        }
    }

    /// Sends every open batch now and waits until every record sent so far has its
    /// outcome.
    pub async fn flush(&self) {
        self.handle.flush();
        poll_fn(|cx| self.handle.poll_flushed(cx)).await
    }

    /// The delivery reports, one per batch, as a stream (it ends when the producer is
    /// closed). At most `grete_facade::STREAM_REPORTS` wait unread; older ones are dropped
    /// and counted by [`lagged`](Self::lagged).
    pub fn reports(&self) -> Reports {
        Reports {
            handle: self.handle.clone(),
        }
    }

    /// Calls `callback` with every delivery report from now on (one per batch, covering
    /// records `first .. first + count` of its partition), on the driver's task and never
    /// under a lock. It must not block; it may send.
    pub fn on_delivery(&self, callback: impl Fn(&DeliveryReport) + Send + Sync + 'static) {
        self.handle.set_callback(callback);
    }

    /// Reports dropped from the stream because it was not read in time.
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
    pub async fn close(self, timeout: Duration) -> u64 {
        self.handle.flush();
        let deadline = Instant::now() + timeout;
        let mut sleep = self.rt.sleep_until(deadline);
        poll_fn(|cx| {
            if self.handle.poll_flushed(cx).is_ready() {
                return Poll::Ready(());
            }
            sleep.as_mut().poll(cx)
        })
        .await;
        self.handle.close()
    }
}

/// The outcome of one record: where it was written, or why not.
#[derive(Debug)]
#[must_use = "the future only reads the outcome; dropping it does not cancel the record"]
pub struct DeliveryFuture {
    handle: ProducerHandle,
    rid: RecordId,
}

impl DeliveryFuture {
    /// The record's partition and place in that partition's produce order.
    pub fn record_id(&self) -> RecordId {
        self.rid
    }
}

impl Future for DeliveryFuture {
    type Output = Result<Delivered, DeliveryError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.handle.poll_delivery(cx, self.rid)
    }
}

/// The stream of a producer's delivery reports.
#[derive(Debug)]
pub struct Reports {
    handle: ProducerHandle,
}

impl Reports {
    /// The next report (`None` once the producer is closed and every report was read).
    pub async fn next(&mut self) -> Option<DeliveryReport> {
        poll_fn(|cx| self.handle.poll_report(cx)).await
    }
}

impl Stream for Reports {
    type Item = DeliveryReport;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<DeliveryReport>> {
        self.handle.poll_report(cx)
    }
}

/// A producer whose every send returns once its record is acknowledged (`Topic::sync_producer`).
#[derive(Debug, Clone)]
pub struct SyncProducer {
    inner: Producer,
}

impl SyncProducer {
    pub(crate) fn new(inner: Producer) -> SyncProducer {
        SyncProducer { inner }
    }

    /// Sends a record and waits for its outcome.
    pub async fn send(&self, record: Record<'_>) -> Result<Delivered, SendError> {
        let future = self.inner.send(record).await?;
        // Without lingering: nothing else will fill the batch.
        self.inner.handle.flush();
        Ok(future.await?)
    }

    /// See [`Producer::close`].
    pub async fn close(self, timeout: Duration) -> u64 {
        self.inner.close(timeout).await
    }
}
