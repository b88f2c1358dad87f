//! The simple consumer ([`SimpleConsumer`]): chosen partitions of one topic as an
//! [`Iterator`] of owned [`Message`]s, or batch by batch ([`SimpleConsumer::next_batch`])
//! with records borrowed from each batch. Every wait parks the calling thread through
//! [`grete_facade::block_on`]: the facade decides, this module only waits.

use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use grete::consumer::{ConsumerEvent, FetchedBatch, OffsetSpec, PartitionView};
use grete::error::Error;
use grete_facade::{block_on, ConsumerHandle, Message, PartitionRef, TopicPositions};

/// A consumer of chosen partitions of one topic (`Topic::simple_consumer`,
/// `Topic::simple_consumer_for`) or of several (`KafkaClient::simple_consumer`).
///
/// Methods that act on one partition take a [`PartitionRef`]: `3` on a consumer of one
/// topic, `("events", 3)` on any.
///
/// Iterate [`messages`](Self::messages) (or `&mut consumer`) for [`Message`]s (keys and values are `Bytes` slices of the fetched batch:
/// no copy), or read batch by batch with [`next_batch`](Self::next_batch), iterating each
/// batch's [`records`](FetchedBatch::records) without any allocation per record. Both end
/// after `consumer_timeout_ms` without a message (never by default) and when the client
/// closes. Offsets mean the next offset to read (what a commit stores).
pub struct SimpleConsumer {
    handle: ConsumerHandle,
    /// The longest an operation can take (a safety net: the core bounds each one).
    op_limit: Duration,
}

impl fmt::Debug for SimpleConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.handle.fmt(f)
    }
}

impl SimpleConsumer {
    pub(crate) fn new(handle: ConsumerHandle, op_limit: Duration) -> SimpleConsumer {
        SimpleConsumer { handle, op_limit }
    }

    fn wait<T>(
        &self,
        limit: Duration,
        what: &str,
        call: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let mut call = pin!(call);
        block_on(Some(Instant::now() + limit), |cx| call.as_mut().poll(cx))
            .unwrap_or_else(|| Err(Error::timeout(what)))
    }

    /// The next fetched batch (`None`: `consumer_timeout_ms` passed, or the client
    /// closed). Its partition's position moves past it. Iterate
    /// [`FetchedBatch::records`]: keys, values and headers are borrowed from the batch.
    pub fn next_batch(&mut self) -> Option<FetchedBatch> {
        self.wait_for(ConsumerHandle::poll_batch)
    }

    /// Parks until `poll` is ready, `consumer_timeout_ms` passes (`None`), letting
    /// auto-commits run while it waits.
    fn wait_for<T>(
        &mut self,
        mut poll: impl FnMut(&mut ConsumerHandle, &mut Context<'_>) -> Poll<Option<T>>,
    ) -> Option<T> {
        loop {
            let deadline = self.handle.wake_deadline();
            match block_on(deadline, |cx| poll(&mut self.handle, cx)) {
                Some(got) => return got,
                None if self.handle.woke() => return None,
                // An auto-commit was due: the next poll starts it.
                None => {}
            }
        }
    }

    /// The messages as an iterator (see [`Messages`]).
    pub fn messages(&mut self) -> Messages<'_> {
        Messages { consumer: self }
    }

    /// The next message (what the iterator yields).
    pub fn next_message(&mut self) -> Option<Result<Message, Error>> {
        self.wait_for(ConsumerHandle::poll_message)
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
    pub fn commit_offsets(&self, group: &str) -> Result<(), Error> {
        self.wait(
            self.op_limit,
            "committing offsets (driver unresponsive)",
            self.handle.commit_offsets(group),
        )
    }

    /// The offsets `group` committed for [`topic`](Self::topic)'s partitions (`-1`: none).
    pub fn fetch_offsets(&self, group: &str) -> Result<Vec<(i32, i64)>, Error> {
        self.fetch_offsets_of(group, self.topic())
    }

    /// The offsets `group` committed for `topic`'s assigned partitions (`-1`: none).
    pub fn fetch_offsets_of(&self, group: &str, topic: &str) -> Result<Vec<(i32, i64)>, Error> {
        self.wait(
            self.op_limit,
            "fetching offsets (driver unresponsive)",
            self.handle.fetch_offsets_of(group, topic),
        )
    }

    /// Closes the consumer: with a consumer group (and `commit_on_close`), commits the positions first, waiting
    /// at most `timeout` for the answer (its result is returned); then removes the
    /// consumer. Bounded by `timeout` whatever the brokers do. Dropping the consumer
    /// instead commits without waiting.
    pub fn close(mut self, timeout: Duration) -> Result<(), Error> {
        let mut result = Ok(());
        let config = self.handle.config();
        if let (Some(group), true) = (config.consumer_group.clone(), config.commit_on_close) {
            result = self.wait(
                timeout,
                "committing offsets on close",
                self.handle.commit_offsets(&group),
            );
        }
        self.handle.close();
        result
    }
}

/// The messages of a [`SimpleConsumer`] as an iterator (`consumer.messages()`, or
/// `for m in &mut consumer`). It ends after `consumer_timeout_ms` without a message;
/// iterating again waits anew.
#[derive(Debug)]
pub struct Messages<'a> {
    consumer: &'a mut SimpleConsumer,
}

impl Iterator for Messages<'_> {
    type Item = Result<Message, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.consumer.next_message()
    }
}

impl<'a> IntoIterator for &'a mut SimpleConsumer {
    type Item = Result<Message, Error>;
    type IntoIter = Messages<'a>;

    fn into_iter(self) -> Messages<'a> {
        Messages { consumer: self }
    }
}

/// A consumer moves between threads.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<SimpleConsumer>();
};
