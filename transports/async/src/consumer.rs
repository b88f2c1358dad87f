//! The simple consumer ([`SimpleConsumer`]): chosen partitions of one topic as a
//! [`Stream`] of owned [`Message`]s, or batch by batch ([`SimpleConsumer::next_batch`])
//! with records borrowed from each batch. Over the shared core of [`grete_facade`]: the
//! facade decides, this module only awaits (and runs the `consumer_timeout_ms` timer).

use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::Stream;
use grete::consumer::{ConsumerEvent, FetchedBatch, OffsetSpec, PartitionView};
use grete::error::Error;
use grete_facade::{ConsumerHandle, Message, PartitionRef, TopicPositions};

use crate::{BoxFuture, Runtime};

/// A consumer of chosen partitions of one topic (`Topic::simple_consumer`,
/// `Topic::simple_consumer_for`) or of several (`KafkaClient::simple_consumer`).
///
/// Methods that act on one partition take a [`PartitionRef`]: `3` on a consumer of one
/// topic, `("events", 3)` on any.
///
/// Read it as a [`Stream`] of [`Message`]s (keys and values are `Bytes` slices of the
/// fetched batch: no copy), or batch by batch with [`next_batch`](Self::next_batch),
/// iterating each batch's [`records`](FetchedBatch::records) without any allocation per
/// record. Both end after `consumer_timeout_ms` without a message (never by default) and
/// when the client closes. Offsets mean the next offset to read (what a commit stores).
pub struct SimpleConsumer {
    handle: ConsumerHandle,
    rt: Arc<dyn Runtime>,
    /// The `consumer_timeout_ms` timer, for its deadline.
    sleep: Option<(Instant, BoxFuture<()>)>,
}

impl fmt::Debug for SimpleConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.handle.fmt(f)
    }
}

impl SimpleConsumer {
    pub(crate) fn new(handle: ConsumerHandle, rt: Arc<dyn Runtime>) -> SimpleConsumer {
        SimpleConsumer {
            handle,
            rt,
            sleep: None,
        }
    }

    /// Polls `poll`, ending with `None` once `consumer_timeout_ms` passed without a
    /// message, and letting auto-commits run while it waits.
    fn poll_timed<T>(
        &mut self,
        cx: &mut Context<'_>,
        mut poll: impl FnMut(&mut ConsumerHandle, &mut Context<'_>) -> Poll<Option<T>>,
    ) -> Poll<Option<T>> {
        // Each turn either delivers, ends, waits, or (an auto-commit was due) polls again
        // with the commit started, whose next one is an interval later.
        loop {
            if let Poll::Ready(v) = poll(&mut self.handle, cx) {
                return Poll::Ready(v);
            }
            let Some(deadline) = self.handle.wake_deadline() else {
                return Poll::Pending;
            };
            if self.sleep.as_ref().map(|(d, _)| *d) != Some(deadline) {
                self.sleep = Some((deadline, self.rt.sleep_until(deadline)));
            }
            let (_, sleep) = self.sleep.as_mut().expect("set above");
            match sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    self.sleep = None;
                    if self.handle.woke() {
                        return Poll::Ready(None);
                    }
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// The next fetched batch (`None`: `consumer_timeout_ms` passed, or the client
    /// closed). Its partition's position moves past it. Iterate
    /// [`FetchedBatch::records`]: keys, values and headers are borrowed from the batch.
    pub async fn next_batch(&mut self) -> Option<FetchedBatch> {
        poll_fn(|cx| self.poll_timed(cx, ConsumerHandle::poll_batch)).await
    }

    /// The next message (what the [`Stream`] yields).
    pub async fn next_message(&mut self) -> Option<Result<Message, Error>> {
        poll_fn(|cx| self.poll_timed(cx, ConsumerHandle::poll_message)).await
    }

    /// The topic (of a consumer of several: the first).
    pub fn topic(&self) -> &str {
        self.handle.topic()
    }

    /// The topics, in the order given.
    pub fn topics(&self) -> impl Iterator<Item = &str> + '_ {
        self.handle.topics()
    }

    /// The assigned partitions of [`topic`](Self::topic).
    pub fn partitions(&self) -> &[i32] {
        self.handle.partitions()
    }

    /// The assigned partitions of `topic`.
    pub fn partitions_of(&self, topic: &str) -> &[i32] {
        self.handle.partitions_of(topic)
    }

    /// Every assigned partition with its topic.
    pub fn assignment(&self) -> impl Iterator<Item = (&str, i32)> + '_ {
        self.handle.assignment()
    }

    /// Moves a partition's position to an offset, the earliest, the latest, or the first
    /// record at or after a timestamp. Nothing fetched before is delivered after.
    pub fn seek<'a>(
        &mut self,
        at: impl Into<PartitionRef<'a>>,
        to: OffsetSpec,
    ) -> Result<(), Error> {
        self.handle.seek(at, to)
    }

    /// Stops fetching and delivering a partition.
    pub fn pause<'a>(&mut self, at: impl Into<PartitionRef<'a>>) -> Result<(), Error> {
        self.handle.pause(at)
    }

    /// Undoes [`pause`](Self::pause).
    pub fn resume<'a>(&mut self, at: impl Into<PartitionRef<'a>>) -> Result<(), Error> {
        self.handle.resume(at)
    }

    /// A partition's position (next offset to read), high watermark, lag, state.
    pub fn partition<'a>(&self, at: impl Into<PartitionRef<'a>>) -> Option<PartitionView> {
        self.handle.partition(at)
    }

    /// The positions of [`topic`](Self::topic)'s partitions whose position is known: what
    /// a commit stores.
    pub fn positions(&self) -> Vec<(i32, i64)> {
        self.handle.positions()
    }

    /// The known positions of every topic's partitions.
    pub fn topic_positions(&self) -> TopicPositions {
        self.handle.topic_positions()
    }

    /// The total lag (see [`PartitionView::lag`]) over the partitions where known.
    pub fn lag(&self) -> i64 {
        self.handle.lag()
    }

    /// The next consumer event (offset out of range and the reset applied, a position a
    /// lookup set, a partition stopped by an error), if any; never waits.
    pub fn take_event(&self) -> Option<ConsumerEvent> {
        self.handle.take_event()
    }

    /// Commits the positions of every topic for consumer group `group` (OffsetCommit
    /// through the group's coordinator) and waits for the answers.
    pub async fn commit_offsets(&self, group: &str) -> Result<(), Error> {
        self.handle.commit_offsets(group).await
    }

    /// The offsets `group` committed for [`topic`](Self::topic)'s partitions (`-1`: none).
    pub async fn fetch_offsets(&self, group: &str) -> Result<Vec<(i32, i64)>, Error> {
        self.handle.fetch_offsets(group).await
    }

    /// The offsets `group` committed for `topic`'s assigned partitions (`-1`: none).
    pub async fn fetch_offsets_of(
        &self,
        group: &str,
        topic: &str,
    ) -> Result<Vec<(i32, i64)>, Error> {
        self.handle.fetch_offsets_of(group, topic).await
    }

    /// Closes the consumer: with a consumer group (and `commit_on_close`), commits the positions first, waiting
    /// at most `timeout` for the answer (its result is returned); then removes the
    /// consumer. Bounded by `timeout` whatever the brokers do. Dropping the consumer
    /// instead commits without waiting.
    pub async fn close(mut self, timeout: Duration) -> Result<(), Error> {
        let mut result = Ok(());
        let config = self.handle.config();
        if let (Some(group), true) = (config.consumer_group.clone(), config.commit_on_close) {
            let mut sleep = self.rt.sleep_until(Instant::now() + timeout);
            let mut commit = std::pin::pin!(self.handle.commit_offsets(&group));
            result = poll_fn(|cx| {
                if let Poll::Ready(r) = commit.as_mut().poll(cx) {
                    return Poll::Ready(r);
                }
                sleep
                    .as_mut()
                    .poll(cx)
                    .map(|()| Err(Error::timeout("committing offsets on close")))
            })
            .await;
        }
        self.handle.close();
        result
    }
}

impl Stream for SimpleConsumer {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_timed(cx, ConsumerHandle::poll_message)
    }
}

/// A consumer moves between tasks (`tokio::spawn` needs `Send`).
const _: fn() = || {
    fn send<T: Send>() {}
    send::<SimpleConsumer>();
};
