//! The consumer as every transport exposes it, in `poll` form: [`ConsumerHandle`].
//! One consumer reads chosen partitions of one topic or of several; methods that act on a
//! partition take a [`PartitionRef`]: a bare partition number on a one-topic consumer, a
//! `(topic, partition)` pair on any.
//!
//! The core's consumer (`grete::consumer::Consumer`, owned by the client) fetches and
//! buffers batches under its prefetch budget; this handle takes them out under the core's
//! lock, one batch per lock, and waits with a waker when none is buffered. Readiness is
//! level-triggered end to end: after each drain the driver wakes every consumer whose
//! waker is registered and that has a batch ([`Core::wake_consumers`], O(1) per waiting
//! consumer: no scan over partitions), so a stream never stalls while records are
//! buffered, whatever the application did in between.
//!
//! Offsets mean the next offset to read, as in the core. Messages (owned, sharing the
//! batch's buffer) come from a cursor over the batch taken last; the batch API hands out
//! the [`FetchedBatch`] itself, whose records borrow from it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use grete::client::{Client, PartitionOffset};
use grete::consumer::{
    ConsumerConfig, ConsumerEvent, ConsumerId, FetchedBatch, OffsetSpec, PartitionView,
};
use grete::error::Error;
use grete::protocol::records::{Header, Records};

use crate::{Core, Shared};

/// How many consumer events wait for the application before the oldest are dropped (and
/// counted in [`ConsumerHandle::lagged_events`]).
pub const CONSUMER_EVENTS: usize = 1024;

/// A simple consumer's configuration: the core's fetching knobs plus what the handle does
/// (PyKafka's names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimpleConsumerConfig {
    /// Fetching: the prefetch budget, limits, `auto_offset_reset`, isolation level.
    pub consumer: ConsumerConfig,
    /// Where a partition starts when no committed offset applies: `Earliest` by default.
    pub start: OffsetSpec,
    /// The consumer group whose committed offsets the consumer starts from (unless
    /// `reset_offset_on_start`), which auto-commit and `close` commit to.
    pub consumer_group: Option<String>,
    /// Start at `start` even where the group committed an offset.
    pub reset_offset_on_start: bool,
    /// Commit the positions to `consumer_group` every `auto_commit_interval_ms`, while the
    /// application reads and while it waits for messages.
    pub auto_commit_enable: bool,
    /// The auto-commit period.
    pub auto_commit_interval_ms: u64,
    /// The message stream / iterator (and `next_batch`) ends after this long without a
    /// message. `None` (the default): never.
    pub consumer_timeout_ms: Option<u64>,
    /// With a `consumer_group`: commit the positions when the consumer is closed (waiting
    /// for the answer) or dropped (without waiting). On by default.
    pub commit_on_close: bool,
}

impl Default for SimpleConsumerConfig {
    fn default() -> Self {
        SimpleConsumerConfig {
            consumer: ConsumerConfig::default(),
            start: OffsetSpec::Earliest,
            consumer_group: None,
            reset_offset_on_start: false,
            auto_commit_enable: false,
            auto_commit_interval_ms: 60_000,
            consumer_timeout_ms: None,
            commit_on_close: true,
        }
    }
}

/// One record with where it came from. Keys, values and header values are slices of the
/// fetched batch's buffer (no copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// Milliseconds since the epoch, or -1 when the format has none (Kafka 0.9).
    pub timestamp: i64,
    /// The key; `None` is null.
    pub key: Option<Bytes>,
    /// The value; `None` is null.
    pub value: Option<Bytes>,
    /// The headers (Kafka 0.11+; empty before).
    pub headers: Vec<Header>,
}

/// A partition a consumer reads: `3` (of the consumer's topic: a consumer of several
/// topics refuses it) or `("events", 3)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionRef<'a> {
    /// A partition of the consumer's only topic.
    Partition(i32),
    /// A partition of a named topic.
    Of(&'a str, i32),
}

impl From<i32> for PartitionRef<'_> {
    fn from(p: i32) -> Self {
        PartitionRef::Partition(p)
    }
}

impl<'a> From<(&'a str, i32)> for PartitionRef<'a> {
    fn from((t, p): (&'a str, i32)) -> Self {
        PartitionRef::Of(t, p)
    }
}

/// Each topic with the known positions of its partitions.
pub type TopicPositions = Vec<(Arc<str>, Vec<(i32, i64)>)>;

/// Each topic with chosen partitions, each partition with its start (`None`: the group's
/// committed offset where one applies, else `config.start`).
pub type TopicStarts = Vec<(String, Vec<(i32, Option<OffsetSpec>)>)>;

/// A topic a consumer reads, with its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Assigned {
    topic: Arc<str>,
    partitions: Vec<i32>,
}

/// What the core keeps for one consumer handle.
#[derive(Default)]
pub(crate) struct ConsumerSlot {
    waker: Option<Waker>,
    /// Whether the consumer is in `Core::consumer_waiters`.
    listed: bool,
    events: VecDeque<ConsumerEvent>,
    lagged_events: u64,
}

fn event_consumer(e: &ConsumerEvent) -> Option<ConsumerId> {
    match e {
        ConsumerEvent::OffsetOutOfRange { consumer, .. }
        | ConsumerEvent::PositionSet { consumer, .. }
        | ConsumerEvent::NoProgress { consumer, .. }
        | ConsumerEvent::PartitionError { consumer, .. } => Some(*consumer),
        _ => None,
    }
}

impl Core {
    /// Queues a consumer event for its handle and wakes it.
    pub(crate) fn book_consumer_event(&mut self, event: ConsumerEvent) {
        let Some(slot) = event_consumer(&event).and_then(|id| self.consumers.get_mut(&id)) else {
            return;
        };
        if slot.events.len() == CONSUMER_EVENTS {
            slot.events.pop_front();
            slot.lagged_events += 1;
        }
        slot.events.push_back(event);
        if let Some(w) = slot.waker.take() {
            w.wake();
        }
    }

    /// Wakes every waiting consumer that has a batch to hand out. Drivers call it after
    /// each drain: O(1) per consumer with a waker registered.
    pub fn wake_consumers(&mut self) {
        let (client, slots) = (&self.client, &mut self.consumers);
        self.consumer_waiters.retain(|id| {
            let Some(slot) = slots.get_mut(id) else {
                return false;
            };
            if slot.waker.is_none() {
                slot.listed = false;
                return false;
            }
            if client.consumer(*id).is_some_and(|c| c.has_batches()) {
                if let Some(w) = slot.waker.take() {
                    w.wake();
                }
                slot.listed = false;
                return false;
            }
            true
        });
    }

    pub(crate) fn wake_all_consumers(&mut self) {
        for slot in self.consumers.values_mut() {
            if let Some(w) = slot.waker.take() {
                w.wake();
            }
        }
    }
}

/// The batch the message cursor reads from.
struct Cursor {
    /// The index of its topic in `ConsumerHandle::topics`.
    topic_index: usize,
    topic: Arc<str>,
    partition: i32,
    from: i64,
    records: Records,
}

/// A consumer of chosen partitions of one or several topics, in `poll` form. Not `Clone`: one owner
/// reads it. Dropping it removes the consumer at once (its requests' answers are dropped),
/// whatever the brokers do; with a consumer group (and `commit_on_close`) its positions
/// are committed on the way out without waiting (use the transports' `close` to wait for that commit).
pub struct ConsumerHandle {
    shared: Arc<Shared>,
    id: ConsumerId,
    /// In the order given; never empty, each topic once.
    topics: Vec<Assigned>,
    config: SimpleConsumerConfig,
    cursor: Option<Cursor>,
    /// The cursor's topic (index) and partition and its next undelivered offset, while
    /// the cursor has records.
    cursor_position: Option<(usize, i32, i64)>,
    next_commit: Option<Instant>,
    last_message: Instant,
    closed: bool,
    /// What keeps the transport's driver running while the consumer is used.
    _driver: Option<Arc<dyn Send + Sync>>,
}

impl std::fmt::Debug for ConsumerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerHandle")
            .field("id", &self.id)
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

impl ConsumerHandle {
    /// Starts a consumer of `partitions` of `topic`, each at its own start (`None`: the
    /// group's committed offset where one applies, else `config.start`). With a consumer
    /// group the committed offsets are fetched first.
    pub async fn start(
        shared: &Arc<Shared>,
        topic: &str,
        partitions: Vec<(i32, Option<OffsetSpec>)>,
        config: SimpleConsumerConfig,
    ) -> Result<ConsumerHandle, Error> {
        Self::start_topics(shared, vec![(topic.to_owned(), partitions)], config).await
    }

    /// Starts a consumer of every partition of each of `topics` (their metadata asked
    /// for first), each partition at the group's committed offset where one applies, else
    /// at `config.start`.
    pub async fn start_all(
        shared: &Arc<Shared>,
        topics: &[&str],
        config: SimpleConsumerConfig,
    ) -> Result<ConsumerHandle, Error> {
        let mut chosen = Vec::with_capacity(topics.len());
        for &t in topics {
            let partitions = shared.topic_partitions(t).await?;
            chosen.push((
                t.to_owned(),
                partitions.iter().map(|p| (p.id, None)).collect(),
            ));
        }
        Self::start_topics(shared, chosen, config).await
    }

    /// Starts a consumer of chosen partitions of several topics (each topic once), each
    /// partition at its own start as in [`start`](Self::start).
    pub async fn start_topics(
        shared: &Arc<Shared>,
        topics: TopicStarts,
        config: SimpleConsumerConfig,
    ) -> Result<ConsumerHandle, Error> {
        config.consumer.validate()?;
        if topics.is_empty() || topics.iter().any(|(_, p)| p.is_empty()) {
            return Err(Error::Misuse(
                "a consumer needs at least one partition of each topic".into(),
            ));
        }
        for (i, (t, _)) in topics.iter().enumerate() {
            if topics[..i].iter().any(|(u, _)| u == t) {
                return Err(Error::Misuse(format!("topic {t} given twice")));
            }
        }
        if config.auto_commit_enable && config.consumer_group.is_none() {
            return Err(Error::Config(
                "auto_commit_enable needs a consumer_group".into(),
            ));
        }
        if config.auto_commit_enable && config.auto_commit_interval_ms == 0 {
            return Err(Error::Config(
                "auto_commit_interval_ms must be at least 1".into(),
            ));
        }
        let mut starts: Vec<(String, Vec<(i32, OffsetSpec)>)> = Vec::with_capacity(topics.len());
        for (topic, partitions) in topics {
            let unset: Vec<i32> = partitions
                .iter()
                .filter(|(_, s)| s.is_none())
                .map(|(p, _)| *p)
                .collect();
            let mut committed: Vec<PartitionOffset> = Vec::new();
            if let (Some(group), false, false) = (
                &config.consumer_group,
                config.reset_offset_on_start,
                unset.is_empty(),
            ) {
                committed = fetch_committed(shared, group, &topic, unset).await?;
            }
            let specs = partitions
                .into_iter()
                .map(|(p, spec)| {
                    let spec =
                        spec.unwrap_or_else(|| match committed.iter().find(|o| o.partition == p) {
                            Some(PartitionOffset { result: Ok(o), .. }) if *o >= 0 => {
                                OffsetSpec::Offset(*o)
                            }
                            _ => config.start,
                        });
                    (p, spec)
                })
                .collect();
            starts.push((topic, specs));
        }
        let now = Instant::now();
        let mut core = shared.lock();
        if core.closed {
            return Err(Error::Misuse("the client is closed".into()));
        }
        let id = core.client.add_consumer(now, config.consumer.clone())?;
        for (topic, specs) in &starts {
            for &(p, spec) in specs {
                if let Err(e) = core.client.assign(now, id, topic, p, spec) {
                    core.client.remove_consumer(now, id);
                    return Err(e);
                }
            }
        }
        core.consumers.insert(id, ConsumerSlot::default());
        drop(core);
        shared.wake_driver();
        let next_commit = config
            .auto_commit_enable
            .then(|| now + Duration::from_millis(config.auto_commit_interval_ms));
        Ok(ConsumerHandle {
            shared: shared.clone(),
            id,
            topics: starts
                .into_iter()
                .map(|(topic, specs)| Assigned {
                    topic: topic.into(),
                    partitions: specs.iter().map(|(p, _)| *p).collect(),
                })
                .collect(),
            config,
            cursor: None,
            cursor_position: None,
            next_commit,
            last_message: now,
            closed: false,
            _driver: None,
        })
    }

    /// Keeps `driver` (a transport's client handle) alive as long as the consumer.
    pub fn keeping(mut self, driver: Arc<dyn Send + Sync>) -> ConsumerHandle {
        self._driver = Some(driver);
        self
    }

    /// The consumer's id in the core.
    pub fn id(&self) -> ConsumerId {
        self.id
    }

    /// The topic (of a consumer of several: the first).
    pub fn topic(&self) -> &str {
        &self.topics[0].topic
    }

    /// The topics, in the order given.
    pub fn topics(&self) -> impl Iterator<Item = &str> + '_ {
        self.topics.iter().map(|a| &*a.topic)
    }

    /// The assigned partitions of [`topic`](Self::topic).
    pub fn partitions(&self) -> &[i32] {
        &self.topics[0].partitions
    }

    /// The assigned partitions of `topic` (empty: not a topic of this consumer).
    pub fn partitions_of(&self, topic: &str) -> &[i32] {
        self.topics
            .iter()
            .find(|a| &*a.topic == topic)
            .map_or(&[], |a| &a.partitions)
    }

    /// Every assigned partition with its topic.
    pub fn assignment(&self) -> impl Iterator<Item = (&str, i32)> + '_ {
        self.topics
            .iter()
            .flat_map(|a| a.partitions.iter().map(move |p| (&*a.topic, *p)))
    }

    /// The topic's index and the partition `at` names, if this consumer reads the topic.
    fn resolve(&self, at: PartitionRef<'_>) -> Result<(usize, i32), Error> {
        let (i, p) = match at {
            PartitionRef::Partition(_) if self.topics.len() > 1 => {
                return Err(Error::Misuse(
                    "this consumer reads several topics: name the partition's topic, (topic, partition)"
                        .into(),
                ))
            }
            PartitionRef::Partition(p) => (0, p),
            PartitionRef::Of(t, p) => match self.topics.iter().position(|a| &*a.topic == t) {
                Some(i) => (i, p),
                None => return Err(Error::Misuse(format!("this consumer does not read {t}"))),
            },
        };
        // A partition of the topic it does not read: the core says so (O(topics) here).
        Ok((i, p))
    }

    /// The configuration.
    pub fn config(&self) -> &SimpleConsumerConfig {
        &self.config
    }

    /// When the message stream ends for want of messages (`consumer_timeout_ms` after the
    /// last one, or after the start); `None` without a timeout.
    fn timeout_deadline(&self) -> Option<Instant> {
        (self.config.consumer_timeout_ms).map(|ms| self.last_message + Duration::from_millis(ms))
    }

    /// Until when a reader waiting for a message or batch may sleep before calling
    /// [`woke`](Self::woke): the stream's timeout or the next auto-commit, whichever is
    /// first; `None`: until woken.
    pub fn wake_deadline(&self) -> Option<Instant> {
        match (self.timeout_deadline(), self.next_commit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The [`wake_deadline`](Self::wake_deadline) passed with nothing delivered. `true`:
    /// the stream ends (`consumer_timeout_ms` passed; the next read waits a whole timeout
    /// again). `false`: an auto-commit is due, which the next poll starts (so that a
    /// consumer whose topics went quiet still commits what it delivered): poll again.
    pub fn woke(&mut self) -> bool {
        let now = Instant::now();
        if self.timeout_deadline().is_some_and(|d| d <= now) {
            self.last_message = now;
            return true;
        }
        false
    }

    /// The next fetched batch, or `Pending` with the waker registered (woken when one is
    /// buffered or an event comes). `None` once the consumer or the client is closed.
    /// Taking a batch moves its partition's position past it. Mixing the two APIs: the
    /// records the message cursor still holds are given back first (their partition goes
    /// back to the message after the last one delivered, and is fetched again).
    pub fn poll_batch(&mut self, cx: &mut Context<'_>) -> Poll<Option<FetchedBatch>> {
        if let Some(c) = self.cursor.take() {
            let back = self.cursor_position.take().map_or(c.from, |(_, _, o)| o);
            let topic = self.topics[c.topic_index].topic.clone();
            // Fails only once closed, which taking the batch reports (`None`).
            let _ = self.seek((&*topic, c.partition), OffsetSpec::Offset(back));
        }
        let batch = self.take_batch(Some(cx));
        if let Poll::Ready(Some(_)) = &batch {
            self.delivered();
        }
        batch
    }

    /// Something was delivered: `consumer_timeout_ms` counts from now (the clock is read
    /// only with a timeout: on small records, clock reads per batch were 14 % of the CPU).
    fn delivered(&mut self) {
        if self.config.consumer_timeout_ms.is_some() {
            self.last_message = Instant::now();
        }
    }

    fn take_batch(&mut self, cx: Option<&mut Context<'_>>) -> Poll<Option<FetchedBatch>> {
        if self.closed {
            return Poll::Ready(None);
        }
        let mut core = self.shared.lock();
        if core.closed {
            return Poll::Ready(None);
        }
        let mut wake = false;
        // The clock is read only when something needs it: auto-commit, or a batch whose
        // taking frees room in the budget (the core then asks for a drive at `now`).
        let now = self.next_commit.map(|_| Instant::now());
        if let (Some(at), Some(now)) = (self.next_commit, now) {
            if now >= at {
                let every = Duration::from_millis(self.config.auto_commit_interval_ms);
                self.next_commit = Some(now + every);
                self.auto_commit(&mut core.client, now);
                wake = true;
            }
        }
        let had_room = core.client.consumer(self.id).is_some_and(|c| c.has_room());
        // With room already, taking a batch cannot free it: the core does not use `now`
        // then, and the instant the handle last read serves.
        let now = match now {
            Some(now) => now,
            None if had_room => self.last_message,
            None => Instant::now(),
        };
        let result = match core.client.poll_batch(now, self.id) {
            Some(b) => {
                // Taking it freed room in the budget: the driver fetches again.
                wake |= !had_room && core.client.consumer(self.id).is_some_and(|c| c.has_room());
                Poll::Ready(Some(b))
            }
            None if core.client.consumer(self.id).is_none() => Poll::Ready(None),
            None => {
                if let Some(cx) = cx {
                    let Core {
                        consumers,
                        consumer_waiters,
                        ..
                    } = &mut *core;
                    if let Some(slot) = consumers.get_mut(&self.id) {
                        match &mut slot.waker {
                            Some(w) => w.clone_from(cx.waker()),
                            w => *w = Some(cx.waker().clone()),
                        }
                        if !slot.listed {
                            slot.listed = true;
                            consumer_waiters.push(self.id);
                        }
                    }
                }
                Poll::Pending
            }
        };
        drop(core);
        if wake {
            self.shared.wake_driver();
        }
        result
    }

    /// The next message, or `Pending` with the waker registered. `None` once the consumer
    /// or the client is closed; `Err` for a malformed record (its batch's remaining
    /// records are skipped).
    pub fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        loop {
            if let Some(c) = &mut self.cursor {
                match c.records.next() {
                    Some(Ok(r)) if r.offset < c.from => continue,
                    Some(Ok(r)) => {
                        self.cursor_position = Some((c.topic_index, c.partition, r.offset + 1));
                        if self.config.consumer_timeout_ms.is_some() {
                            self.last_message = Instant::now();
                        }
                        return Poll::Ready(Some(Ok(Message {
                            topic: c.topic.clone(),
                            partition: c.partition,
                            offset: r.offset,
                            timestamp: r.timestamp,
                            key: r.key,
                            value: r.value,
                            headers: r.headers,
                        })));
                    }
                    Some(Err(e)) => {
                        self.cursor = None;
                        self.cursor_position = None;
                        return Poll::Ready(Some(Err(Error::Protocol(e))));
                    }
                    None => {
                        self.cursor = None;
                        self.cursor_position = None;
                    }
                }
            }
            match self.take_batch(Some(cx)) {
                Poll::Ready(Some(b)) => {
                    let topic_index = (self.topics.iter())
                        .position(|a| *a.topic == **b.topic_shared())
                        .unwrap_or(0);
                    self.cursor = Some(Cursor {
                        topic_index,
                        topic: b.topic_shared().clone(),
                        partition: b.partition(),
                        from: b.first_offset(),
                        records: b.batch().records(),
                    });
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Starts an auto-commit of the positions (one OffsetCommit per topic); nobody waits
    /// for it (its result goes to the driver, which drops it).
    fn auto_commit(&self, client: &mut Client, now: Instant) {
        if let Some(group) = &self.config.consumer_group {
            for (topic, offsets) in self.all_positions_in(client) {
                client.commit_offsets(now, group, &topic, offsets);
            }
        }
    }

    /// The positions to commit of the topic at `index`: the consumer's, with the
    /// partition the message cursor is in at the message after the last one delivered.
    fn positions_in(&self, client: &Client, index: usize) -> Vec<(i32, i64)> {
        let Some(c) = client.consumer(self.id) else {
            return Vec::new();
        };
        let mut positions = c.topic_positions(&self.topics[index].topic);
        if let Some((i, p, o)) = self.cursor_position {
            if i == index {
                for entry in positions.iter_mut().filter(|(q, _)| *q == p) {
                    entry.1 = o;
                }
            }
        }
        positions
    }

    /// Per topic with any known position, the positions to commit.
    fn all_positions_in(&self, client: &Client) -> TopicPositions {
        (0..self.topics.len())
            .map(|i| (self.topics[i].topic.clone(), self.positions_in(client, i)))
            .filter(|(_, o)| !o.is_empty())
            .collect()
    }

    /// The positions (next offset to read) of [`topic`](Self::topic)'s partitions whose
    /// position is known, counting the messages delivered from the batch being read.
    pub fn positions(&self) -> Vec<(i32, i64)> {
        self.positions_in(&self.shared.lock().client, 0)
    }

    /// [`positions`](Self::positions) of every topic.
    pub fn topic_positions(&self) -> TopicPositions {
        self.all_positions_in(&self.shared.lock().client)
    }

    /// A partition's state: position, high watermark, lag, paused... `None`: not one of
    /// the consumer's partitions, or the consumer is closed.
    pub fn partition<'a>(&self, at: impl Into<PartitionRef<'a>>) -> Option<PartitionView> {
        let (i, partition) = self.resolve(at.into()).ok()?;
        let core = self.shared.lock();
        self.view_in(&core.client, i, partition)
    }

    fn view_in(&self, client: &Client, index: usize, partition: i32) -> Option<PartitionView> {
        let mut view = client
            .consumer(self.id)?
            .partition(&self.topics[index].topic, partition)?;
        if let Some((i, p, o)) = self.cursor_position {
            if (i, p) == (index, partition) {
                view.position = o;
            }
        }
        Some(view)
    }

    /// The sum of the partitions' lags (see [`PartitionView::lag`]) where known, over
    /// every topic.
    pub fn lag(&self) -> i64 {
        let core = self.shared.lock();
        (self.topics.iter().enumerate())
            .flat_map(|(i, a)| a.partitions.iter().map(move |p| (i, *p)))
            .filter_map(|(i, p)| self.view_in(&core.client, i, p)?.lag())
            .sum()
    }

    fn with_client<T>(
        &self,
        f: impl FnOnce(&mut Client, Instant) -> Result<T, Error>,
        wake: bool,
    ) -> Result<T, Error> {
        let mut core = self.shared.lock();
        if core.closed || self.closed {
            return Err(Error::Misuse("the consumer is closed".into()));
        }
        let out = f(&mut core.client, Instant::now())?;
        drop(core);
        if wake {
            self.shared.wake_driver();
        }
        Ok(out)
    }

    /// Drops the message cursor if it reads the topic at `index`'s `partition`.
    fn drop_cursor_of(&mut self, index: usize, partition: i32) {
        if (self.cursor.as_ref())
            .is_some_and(|c| (c.topic_index, c.partition) == (index, partition))
        {
            self.cursor = None;
            self.cursor_position = None;
        }
    }

    /// Moves a partition's position: the next message of that partition is at `to`.
    /// Nothing fetched before is delivered after (also from the batch being read).
    pub fn seek<'a>(
        &mut self,
        at: impl Into<PartitionRef<'a>>,
        to: OffsetSpec,
    ) -> Result<(), Error> {
        let (i, partition) = self.resolve(at.into())?;
        let (id, topic) = (self.id, self.topics[i].topic.clone());
        self.with_client(|c, now| c.seek(now, id, &topic, partition, to), true)?;
        self.drop_cursor_of(i, partition);
        Ok(())
    }

    /// Stops fetching a partition and handing out its batches (what is buffered stays).
    /// The rest of the batch being read, if it is that partition's, is given back: the
    /// partition's position goes back to the message after the last one delivered.
    pub fn pause<'a>(&mut self, at: impl Into<PartitionRef<'a>>) -> Result<(), Error> {
        let (i, partition) = self.resolve(at.into())?;
        let (id, topic) = (self.id, self.topics[i].topic.clone());
        let back = match self.cursor_position {
            Some((j, p, o)) if (j, p) == (i, partition) => Some(o),
            _ => None,
        };
        self.with_client(
            |c, now| {
                if let Some(o) = back {
                    c.seek(now, id, &topic, partition, OffsetSpec::Offset(o))?;
                }
                c.pause(now, id, &topic, partition)
            },
            back.is_some(),
        )?;
        self.drop_cursor_of(i, partition);
        Ok(())
    }

    /// Undoes [`pause`](Self::pause).
    pub fn resume<'a>(&mut self, at: impl Into<PartitionRef<'a>>) -> Result<(), Error> {
        let (i, partition) = self.resolve(at.into())?;
        let (id, topic) = (self.id, &*self.topics[i].topic);
        self.with_client(|c, now| c.resume(now, id, topic, partition), true)
    }

    /// The next consumer event (an offset out of range and what was done about it, a
    /// position a lookup set, a partition that stopped), if any. Never waits.
    pub fn take_event(&self) -> Option<ConsumerEvent> {
        self.shared
            .lock()
            .consumers
            .get_mut(&self.id)?
            .events
            .pop_front()
    }

    /// Events dropped because more than [`CONSUMER_EVENTS`] waited unread.
    pub fn lagged_events(&self) -> u64 {
        let core = self.shared.lock();
        core.consumers.get(&self.id).map_or(0, |s| s.lagged_events)
    }

    /// Commits the positions of every topic (see [`topic_positions`](Self::topic_positions))
    /// for `group` and waits for the coordinator's answers (the core bounds each by
    /// `request_timeout`); the first error, if any.
    pub async fn commit_offsets(&self, group: &str) -> Result<(), Error> {
        for (topic, offsets) in self.topic_positions() {
            let out = self
                .shared
                .op(|c, now| c.commit_offsets(now, group, &topic, offsets))
                .await?
                .into_offsets()?;
            out.into_iter().try_for_each(|o| o.result.map(|_| ()))?;
        }
        Ok(())
    }

    /// The offsets `group` committed for [`topic`](Self::topic)'s assigned partitions
    /// (`-1`: none).
    pub async fn fetch_offsets(&self, group: &str) -> Result<Vec<(i32, i64)>, Error> {
        self.fetch_offsets_of(group, self.topic()).await
    }

    /// The offsets `group` committed for `topic`'s assigned partitions (`-1`: none).
    pub async fn fetch_offsets_of(
        &self,
        group: &str,
        topic: &str,
    ) -> Result<Vec<(i32, i64)>, Error> {
        let partitions = self.partitions_of(topic).to_vec();
        if partitions.is_empty() {
            return Err(Error::Misuse(format!(
                "this consumer does not read {topic}"
            )));
        }
        let list = fetch_committed(&self.shared, group, topic, partitions).await?;
        list.into_iter()
            .map(|o| o.result.map(|r| (o.partition, r)))
            .collect()
    }

    /// Removes the consumer now (no commit: call [`commit_offsets`](Self::commit_offsets)
    /// first). Answers to its requests still on the wire are dropped; every later call
    /// says it is closed.
    pub fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.cursor = None;
        let mut core = self.shared.lock();
        core.client.remove_consumer(Instant::now(), self.id);
        core.consumers.remove(&self.id);
        drop(core);
        self.shared.wake_driver();
    }
}

impl Drop for ConsumerHandle {
    /// Removes the consumer at once; with a consumer group (and `commit_on_close`), its
    /// positions are committed first, without waiting for the answer.
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        if let (Some(group), true) = (
            self.config.consumer_group.clone(),
            self.config.commit_on_close,
        ) {
            let mut core = self.shared.lock();
            if !core.closed {
                for (topic, offsets) in self.all_positions_in(&core.client) {
                    core.client
                        .commit_offsets(Instant::now(), &group, &topic, offsets);
                }
            }
        }
        self.close();
    }
}

async fn fetch_committed(
    shared: &Shared,
    group: &str,
    topic: &str,
    partitions: Vec<i32>,
) -> Result<Vec<PartitionOffset>, Error> {
    shared
        .op(|c, now| c.fetch_offsets(now, group, topic, partitions))
        .await?
        .into_offsets()
}
