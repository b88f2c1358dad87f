//! The consumer state machine: which partitions to fetch from which broker, the prefetch
//! budget, positions and their epochs, offset lookups and resets, and the buffered
//! batches handed to the application.
//!
//! The client owns consumers and addresses them by [`ConsumerId`]; it asks a consumer for
//! a request when a broker's connection can send (late binding: [`Consumer::poll_fetch`],
//! [`Consumer::poll_lookup`]) and hands the answer back ([`Consumer::handle_fetch_response`],
//! [`Consumer::handle_lookup_response`]). The consumer itself does no IO and reads no
//! clock.
//!
//! Invariants:
//! - at most one Fetch per broker in flight, and a partition is in at most one request;
//! - `buffered_bytes + reserved_bytes <= queued_max_bytes`, where a fetch reserves the sum
//!   of its partitions' limits until it is answered; the one exception is a batch larger
//!   than the whole budget, asked for alone when nothing else is buffered or in flight (a
//!   batch over its partition's limit that a broker sends whole, KIP-74, and that does not
//!   fit what is left is dropped and asked for again that way);
//! - no fetch starts while `queued_max_messages` records are buffered;
//! - an answer issued under an older position epoch is dropped;
//! - per partition, batches are handed out in offset order, each record once, and a
//!   partition's position only moves forward except by a seek or a reset.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use super::config::{ConsumerConfig, IsolationLevel, OffsetReset, MAX_RAISED_FETCH_BYTES};
use super::fetched::FetchedBatch;
use super::leaders::{LeaderOf, Leaders};
use super::partition::{Lookup, OffsetSpec, PartitionState, Phase};
use super::transactions::AbortedFilter;
use crate::error::Error;
use crate::protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use crate::protocol::messages::fetch_response::PartitionData;
use crate::protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use crate::protocol::messages::{
    FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse,
};
use crate::protocol::records::{Batches, DecodeLimits};
use crate::protocol::ErrorCode;

/// Identifies a consumer owned by a [`Client`](crate::client::Client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConsumerId(pub u64);

/// Identifies a consumer's Fetch on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FetchToken(u64);

/// Identifies a consumer's ListOffsets on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LookupToken(u64);

/// On which side of the log an out-of-range position was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutOfRangeSide {
    /// Before the log start offset (retention or deletion removed the records).
    BeforeStart,
    /// After the high watermark (the log was truncated, or a bad seek).
    AfterEnd,
}

/// Something a consumer tells the application (besides batches).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ConsumerEvent {
    /// A partition's position was out of range; `reset` says what happens next
    /// ([`OffsetReset::Error`]: the partition stopped until the application seeks).
    OffsetOutOfRange {
        /// The consumer.
        consumer: ConsumerId,
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The position that was out of range.
        position: i64,
        /// Which side.
        side: OutOfRangeSide,
        /// The policy applied.
        reset: OffsetReset,
    },
    /// A lookup (a seek to earliest / latest / a timestamp, or a reset) set a position.
    PositionSet {
        /// The consumer.
        consumer: ConsumerId,
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The new position (the next offset to read).
        offset: i64,
    },
    /// A fetch brought nothing usable at the partition's position although the log has
    /// records there (a broker that returns only records before the position, or a
    /// batch larger than any limit): the partition stopped until the application seeks.
    NoProgress {
        /// The consumer.
        consumer: ConsumerId,
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Its fetch position.
        position: i64,
    },
    /// A partition stopped on an error retrying cannot fix (a checksum mismatch, an
    /// authorization error...) until the application seeks.
    PartitionError {
        /// The consumer.
        consumer: ConsumerId,
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Its fetch position.
        position: i64,
        /// Why.
        error: Error,
    },
}

/// What the client must do after an answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Followup {
    /// Leaders changed: refresh the metadata.
    pub refresh_metadata: bool,
}

#[derive(Debug, Clone, Copy)]
struct Asked {
    index: usize,
    epoch: u64,
    offset: i64,
    limit: usize,
    first: bool,
}

#[derive(Debug)]
struct FetchInFlight {
    broker: i32,
    reserved: usize,
    asked: Vec<Asked>,
    /// The fetch session it used, and the partitions (with their state) the session holds
    /// once the broker took it.
    session: Option<(SessionUse, BTreeMap<usize, SessionPart>)>,
}

/// How a fetch used its broker's fetch session (KIP-227).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionUse {
    /// A full fetch asking for a new session.
    Create,
    /// An incremental fetch in the session.
    Incremental,
}

/// A partition as a fetch session on the broker holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SessionPart {
    topic: Arc<str>,
    partition: i32,
    offset: i64,
    limit: usize,
}

/// A broker's fetch session: its id, the epoch of the next incremental fetch, and the
/// partitions it holds, by partition index.
#[derive(Debug)]
struct FetchSession {
    id: i32,
    epoch: i32,
    parts: BTreeMap<usize, SessionPart>,
}

#[derive(Debug, Clone, Copy)]
struct Looked {
    index: usize,
    epoch: u64,
    timestamp: i64,
    why: Lookup,
}

/// A partition's state as the application sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionView {
    /// The next offset the application gets (-1 while a lookup finds it).
    pub position: i64,
    /// The next offset to fetch.
    pub fetch_offset: i64,
    /// The high watermark last seen (-1: not yet).
    pub high_watermark: i64,
    /// The log start offset last seen (-1: unknown).
    pub log_start_offset: i64,
    /// The last stable offset last seen (Fetch v4+; -1: unknown).
    pub last_stable_offset: i64,
    /// Where reading ends for now: the last stable offset under read_committed (when
    /// known), else the high watermark (-1: not yet).
    pub readable_end: i64,
    /// Paused by the application.
    pub paused: bool,
    /// Stopped (see [`ConsumerEvent`]) until a seek.
    pub stopped: bool,
    /// Batches buffered.
    pub buffered_batches: usize,
}

impl PartitionView {
    /// How many offsets are left to read: [`readable_end`](Self::readable_end) (the last
    /// stable offset under read_committed, else the high watermark) minus the position,
    /// when both are known.
    pub fn lag(&self) -> Option<i64> {
        (self.readable_end >= 0 && self.position >= 0)
            .then(|| (self.readable_end - self.position).max(0))
    }
}

/// A consumer of chosen partitions. See the [module docs](self).
#[derive(Debug)]
pub struct Consumer {
    id: ConsumerId,
    config: ConsumerConfig,
    limits: DecodeLimits,
    parts: Vec<Option<PartitionState>>,
    by_name: BTreeMap<String, BTreeMap<i32, usize>>,
    /// Partitions with batches to hand out, in turn.
    ready: VecDeque<usize>,
    /// Partitions the budget turned away, first come first served.
    waiting: VecDeque<usize>,
    buffered_bytes: usize,
    buffered_messages: usize,
    reserved_bytes: usize,
    fetches: BTreeMap<FetchToken, FetchInFlight>,
    /// Brokers with a fetch of this consumer in flight.
    busy: BTreeSet<i32>,
    lookups: BTreeMap<LookupToken, Vec<Looked>>,
    next_token: u64,
    /// Who leads each partition, as of the last [`sync_leaders`](Self::sync_leaders).
    leaders: Leaders,
    /// How many partitions wait for a lookup (phase `Lookup`).
    looking: usize,
    events: VecDeque<ConsumerEvent>,
    /// The earliest partition backoff.
    wake: Option<Instant>,
    /// The most a raised per-partition limit may reach.
    max_limit: usize,
    /// Fetch sessions by broker.
    sessions: BTreeMap<i32, FetchSession>,
}

impl Consumer {
    /// A consumer with nothing assigned.
    pub fn new(id: ConsumerId, config: ConsumerConfig) -> Consumer {
        let limits = DecodeLimits::default()
            .with_verify_crc(config.check_crcs)
            .with_message_runs(true);
        Consumer {
            id,
            config,
            limits,
            parts: Vec::new(),
            by_name: BTreeMap::new(),
            ready: VecDeque::new(),
            waiting: VecDeque::new(),
            buffered_bytes: 0,
            buffered_messages: 0,
            reserved_bytes: 0,
            fetches: BTreeMap::new(),
            busy: BTreeSet::new(),
            lookups: BTreeMap::new(),
            next_token: 0,
            leaders: Leaders::default(),
            looking: 0,
            events: VecDeque::new(),
            wake: None,
            max_limit: MAX_RAISED_FETCH_BYTES,
            sessions: BTreeMap::new(),
        }
    }

    /// Bounds how far a partition's limit may be raised for a large batch: below the
    /// largest response the connection accepts (`max_frame_size`), else the answer would
    /// close the connection again and again. A batch that does not fit is reported
    /// (`NoProgress`).
    pub fn set_max_response_size(&mut self, bytes: usize) {
        self.max_limit = bytes
            .saturating_sub(4096)
            .clamp(self.config.fetch_message_max_bytes, MAX_RAISED_FETCH_BYTES);
    }

    /// Its id.
    pub fn id(&self) -> ConsumerId {
        self.id
    }

    /// Its configuration.
    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    fn index(&self, topic: &str, partition: i32) -> Option<usize> {
        self.by_name.get(topic)?.get(&partition).copied()
    }

    fn part_mut(&mut self, topic: &str, partition: i32) -> Result<&mut PartitionState, Error> {
        let i = self.index(topic, partition).ok_or_else(|| {
            Error::Misuse(format!(
                "{topic}-{partition} is not assigned to this consumer"
            ))
        })?;
        self.parts[i]
            .as_mut()
            .ok_or_else(|| Error::Misuse(format!("{topic}-{partition} is not assigned")))
    }

    /// Adds a partition, starting at `start`. O(log n); nothing is sent here.
    pub fn assign(&mut self, topic: &str, partition: i32, start: OffsetSpec) -> Result<(), Error> {
        if self.index(topic, partition).is_some() {
            return Err(Error::Misuse(format!(
                "{topic}-{partition} is already assigned to this consumer"
            )));
        }
        if let OffsetSpec::Offset(o) = start {
            if o < 0 {
                return Err(Error::Misuse(format!("offset {o} is negative")));
            }
        }
        let name: Arc<str> = Arc::from(topic);
        let i = self.parts.len();
        let p = PartitionState::new(name, partition, start);
        self.looking += usize::from(p.in_lookup());
        self.parts.push(Some(p));
        self.leaders.invalidate();
        self.by_name
            .entry(topic.to_owned())
            .or_default()
            .insert(partition, i);
        Ok(())
    }

    /// Removes a partition and its buffered batches.
    pub fn unassign(&mut self, topic: &str, partition: i32) {
        let Some(i) = self.index(topic, partition) else {
            return;
        };
        if let Some(p) = self.parts[i].take() {
            self.buffered_bytes -= p.queued_bytes;
            self.buffered_messages -= p.queued_messages;
            self.looking -= usize::from(p.in_lookup());
        }
        self.leaders.invalidate();
        if let Some(t) = self.by_name.get_mut(topic) {
            t.remove(&partition);
            if t.is_empty() {
                self.by_name.remove(topic);
            }
        }
    }

    /// Moves a partition's position: the next batch handed out for it starts at `to`.
    /// Buffered batches are dropped, and whatever a request in flight brings back for it
    /// is dropped too (a new position epoch). O(buffered batches of the partition).
    pub fn seek(&mut self, topic: &str, partition: i32, to: OffsetSpec) -> Result<(), Error> {
        if let OffsetSpec::Offset(o) = to {
            if o < 0 {
                return Err(Error::Misuse(format!("offset {o} is negative")));
            }
        }
        let p = self.part_mut(topic, partition)?;
        let was = p.in_lookup();
        let (bytes, messages) = p.seek(to, Lookup::Seek);
        let is = p.in_lookup();
        self.count_lookup(was, is);
        self.buffered_bytes -= bytes;
        self.buffered_messages -= messages;
        Ok(())
    }

    /// Stops fetching a partition and handing out its batches (what is buffered stays).
    pub fn pause(&mut self, topic: &str, partition: i32) -> Result<(), Error> {
        self.part_mut(topic, partition)?.paused = true;
        Ok(())
    }

    /// Undoes [`pause`](Self::pause).
    pub fn resume(&mut self, topic: &str, partition: i32) -> Result<(), Error> {
        let i = self.index(topic, partition);
        let p = self.part_mut(topic, partition)?;
        p.paused = false;
        if !p.queue.is_empty() && !p.listed {
            p.listed = true;
            self.ready.extend(i);
        }
        Ok(())
    }

    /// A partition's state.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<PartitionView> {
        let p = self.parts[self.index(topic, partition)?].as_ref()?;
        Some(PartitionView {
            position: p.position,
            fetch_offset: p.fetch_offset,
            high_watermark: p.high_watermark,
            log_start_offset: p.log_start_offset,
            last_stable_offset: p.last_stable_offset,
            readable_end: p
                .visible_end(self.config.isolation_level == IsolationLevel::ReadCommitted),
            paused: p.paused,
            stopped: p.phase == Phase::Stopped,
            buffered_batches: p.queue.len(),
        })
    }

    /// The assigned partitions.
    pub fn assignment(&self) -> impl Iterator<Item = (&str, i32)> + '_ {
        self.parts
            .iter()
            .flatten()
            .map(|p| (&*p.topic, p.partition))
    }

    /// The known positions (next offset to read) of the assigned partitions, by topic
    /// then partition: what to commit.
    pub fn positions(&self) -> BTreeMap<&str, Vec<(i32, i64)>> {
        let mut out: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
        for p in self.parts.iter().flatten().filter(|p| p.position >= 0) {
            out.entry(&*p.topic)
                .or_default()
                .push((p.partition, p.position));
        }
        for v in out.values_mut() {
            v.sort_unstable();
        }
        out
    }

    /// The known positions of `topic`'s partitions, by partition.
    pub fn topic_positions(&self, topic: &str) -> Vec<(i32, i64)> {
        let Some(parts) = self.by_name.get(topic) else {
            return Vec::new();
        };
        parts
            .values()
            .filter_map(|&i| self.parts[i].as_ref())
            .filter(|p| p.position >= 0)
            .map(|p| (p.partition, p.position))
            .collect()
    }

    /// Bytes of fetched batches waiting for the application.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered_bytes
    }

    /// Records of fetched batches waiting for the application.
    pub fn buffered_messages(&self) -> usize {
        self.buffered_messages
    }

    /// Bytes fetches in flight may bring back.
    pub fn reserved_bytes(&self) -> usize {
        self.reserved_bytes
    }

    /// Whether [`poll_batch`](Self::poll_batch) has something (level-triggered: true as
    /// long as an unpaused partition has a buffered batch).
    pub fn has_batches(&self) -> bool {
        self.ready.iter().any(|&i| {
            self.parts[i]
                .as_ref()
                .is_some_and(|p| !p.paused && !p.queue.is_empty())
        })
    }

    /// The next fetched batch, taking turns between partitions; its partition's
    /// position moves past it and its bytes leave the budget. O(1) amortized.
    pub fn poll_batch(&mut self) -> Option<FetchedBatch> {
        while let Some(i) = self.ready.pop_front() {
            let Some(p) = self.parts[i].as_mut() else {
                continue;
            };
            p.listed = false;
            if p.paused {
                continue;
            }
            let Some(b) = p.queue.pop_front() else {
                continue;
            };
            let count = b.batch.record_count.max(0) as usize;
            p.queued_bytes -= b.size;
            p.queued_messages -= count;
            p.position = if p.queue.is_empty() {
                p.fetch_offset
            } else {
                b.next_offset()
            };
            if !p.queue.is_empty() {
                p.listed = true;
                self.ready.push_back(i);
            }
            self.buffered_bytes -= b.size;
            self.buffered_messages -= count;
            debug_assert_eq!(b.epoch, p.epoch);
            return Some(b);
        }
        None
    }

    /// Whether the budget lets a fetch of the full per-partition limit start.
    pub fn has_room(&self) -> bool {
        self.buffered_messages < self.config.queued_max_messages
            && self.buffered_bytes + self.reserved_bytes + self.config.fetch_message_max_bytes
                <= self.config.queued_max_bytes
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<ConsumerEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next needed (a partition's
    /// backoff ends). O(1).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.wake
    }

    /// Time passed: backoffs that ended are cleared.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.wake.map_or(true, |t| t > now) {
            return;
        }
        let mut wake: Option<Instant> = None;
        for p in self.parts.iter_mut().flatten() {
            match p.not_before {
                Some(t) if t <= now => p.not_before = None,
                Some(t) => wake = Some(wake.map_or(t, |w| w.min(t))),
                None => {}
            }
        }
        self.wake = wake;
    }

    fn backoff(&mut self, i: usize, now: Instant) {
        let t = now + self.config.retry_backoff;
        if let Some(p) = self.parts[i].as_mut() {
            p.not_before = Some(t);
            self.wake = Some(self.wake.map_or(t, |w| w.min(t)));
        }
    }

    /// Whether partition `p` may be fetched, budget aside.
    fn fetch_ready(p: &PartitionState) -> bool {
        p.phase == Phase::Fetching && !p.paused && p.due()
    }

    /// Whether partition `p` may be fetched now, given the budget left.
    fn fetchable(&self, p: &PartitionState, remaining: usize, nothing_held: bool) -> bool {
        if p.phase != Phase::Fetching || p.paused || !p.due() {
            return false;
        }
        match p.raised_limit {
            None => self.config.fetch_message_max_bytes <= remaining,
            Some(limit) => limit <= remaining || nothing_held,
        }
    }

    fn remaining(&self) -> (usize, bool) {
        let held = self.buffered_bytes + self.reserved_bytes;
        (self.config.queued_max_bytes.saturating_sub(held), held == 0)
    }

    /// Brings the leader index up to the client's cluster `generation` (who leads what:
    /// `leader_of`). O(1) when neither the generation nor the assignment changed, else
    /// O(partitions). The per-broker calls below read the index as of the last sync.
    pub fn sync_leaders(&mut self, generation: u64, leader_of: LeaderOf<'_>) {
        // What every change of phase keeps (checked on each drive in debug builds).
        debug_assert_eq!(
            self.looking,
            self.parts
                .iter()
                .flatten()
                .filter(|p| p.in_lookup())
                .count(),
            "partitions waiting for a lookup"
        );
        let parts = (self.parts.iter().enumerate())
            .filter_map(|(i, p)| p.as_ref().map(|p| (i, &*p.topic, p.partition)));
        self.leaders.sync(generation, parts, leader_of);
    }

    /// Whether partition `p` wants a request: a lookup, or a fetch (`fetch_room`: the
    /// budget lets one start at all).
    fn wants(
        &self,
        p: &PartitionState,
        fetch_room: bool,
        remaining: usize,
        nothing_held: bool,
    ) -> bool {
        (p.in_lookup() && p.due()) || (fetch_room && self.fetchable(p, remaining, nothing_held))
    }

    /// Whether a fetch to `broker` may start at all, partitions aside: none in flight
    /// there, messages and bytes left in the budget (a raised limit is never below the
    /// configured one).
    fn fetch_room(&self, broker: i32, remaining: usize, nothing_held: bool) -> bool {
        !self.busy.contains(&broker)
            && self.buffered_messages < self.config.queued_max_messages
            && (nothing_held || self.config.fetch_message_max_bytes <= remaining)
    }

    fn ready_for(&self, broker: i32) -> bool {
        let Some(led) = self.leaders.led(broker) else {
            return false;
        };
        let (remaining, nothing_held) = self.remaining();
        let room = self.fetch_room(broker, remaining, nothing_held);
        if !room && self.looking == 0 {
            return false;
        }
        led.parts.iter().any(|&i| {
            (self.parts[i].as_ref()).is_some_and(|p| self.wants(p, room, remaining, nothing_held))
        })
    }

    /// The brokers a request is ready for (a lookup, or a fetch the budget allows), for
    /// the client to connect to. O(brokers) while the budget is spent or every broker
    /// has a fetch in flight; else at most O(partitions), stopping at the first partition
    /// that wants one.
    pub fn wanted_brokers(&self) -> impl Iterator<Item = i32> + '_ {
        self.leaders.brokers().filter(|&b| self.ready_for(b))
    }

    /// Whether a partition that wants a request has no known leader (the client then
    /// refreshes its metadata). O(partitions without a leader).
    pub fn wants_a_leader(&self) -> bool {
        let (remaining, nothing_held) = self.remaining();
        let room = self.buffered_messages < self.config.queued_max_messages;
        (self.leaders.leaderless().iter()).any(|&i| {
            (self.parts[i].as_ref()).is_some_and(|p| self.wants(p, room, remaining, nothing_held))
        })
    }

    /// Whether a request for `broker` is ready to be built (for the client's
    /// `wants_transmit`), as [`wanted_brokers`](Self::wanted_brokers) decides for one
    /// broker. `true` (ask again when building) while the index is older than the
    /// cluster's `generation`.
    pub fn has_request_for(&self, broker: i32, generation: u64) -> bool {
        !self.leaders.is_current(generation) || self.ready_for(broker)
    }

    fn token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    /// Late binding: the Fetch for `broker` (who leads what: the last
    /// [`sync_leaders`](Self::sync_leaders)), in `version`, if this consumer has no fetch
    /// in flight there and a partition it leads may be fetched. Marks the partitions in
    /// flight and reserves their limits. O(partitions the broker leads + partitions the
    /// budget turned away).
    pub fn poll_fetch(&mut self, broker: i32, version: i16) -> Option<(FetchRequest, FetchToken)> {
        if self.busy.contains(&broker) || self.buffered_messages >= self.config.queued_max_messages
        {
            return None;
        }
        let (mut remaining, nothing_held) = self.remaining();
        let fetch_max = self.config.fetch_max_bytes;
        let full = |total: usize| version >= 3 && total >= fetch_max;
        let (led, start): (&[usize], usize) = match self.leaders.led(broker) {
            Some(led) => (&led.parts, led.cursor),
            None => (&[], 0),
        };
        let n = led.len();
        let mut asked: Vec<Asked> = Vec::new();
        let mut total = 0usize;
        let mut alone = false;
        // Partitions the budget turned away go first, in the order they were turned
        // away, and each one's limit stays set aside for it against those behind it: a
        // partition whose broker's turn comes late is never starved by the others.
        let mut ahead = 0usize;
        let mut k = 0;
        while k < self.waiting.len() && !alone {
            let i = self.waiting[k];
            let Some(p) = self.parts[i].as_ref().filter(|p| Self::fetch_ready(p)) else {
                // No longer fetchable (paused, sought to a lookup, unassigned): forget it.
                if let Some(p) = self.parts[i].as_mut() {
                    p.waiting = false;
                }
                self.waiting.remove(k);
                continue;
            };
            let limit = p
                .raised_limit
                .unwrap_or(self.config.fetch_message_max_bytes);
            let ours = self.leaders.of(i) == Some(broker);
            alone = p.raised_limit.is_some()
                && nothing_held
                && asked.is_empty()
                && ahead == 0
                && limit > remaining;
            if ours && !full(total) && (ahead + limit <= remaining || alone) {
                asked.push(Asked {
                    index: i,
                    epoch: p.epoch,
                    offset: p.fetch_offset,
                    limit,
                    first: asked.is_empty(),
                });
                total += limit;
                remaining = remaining.saturating_sub(limit);
                if let Some(p) = self.parts[i].as_mut() {
                    p.waiting = false;
                }
                self.waiting.remove(k);
                continue;
            }
            alone = false;
            ahead += limit;
            k += 1;
        }
        for k in 0..n {
            if alone || full(total) {
                break;
            }
            let i = led[(start + k) % n];
            let Some(p) = self.parts[i].as_ref() else {
                continue;
            };
            if p.waiting || !Self::fetch_ready(p) || asked.iter().any(|a| a.index == i) {
                continue;
            }
            let limit = p
                .raised_limit
                .unwrap_or(self.config.fetch_message_max_bytes);
            // A raised limit over the budget goes alone, with nothing else held.
            alone = p.raised_limit.is_some()
                && nothing_held
                && asked.is_empty()
                && ahead == 0
                && limit > remaining;
            if ahead + limit <= remaining || alone {
                asked.push(Asked {
                    index: i,
                    epoch: p.epoch,
                    offset: p.fetch_offset,
                    limit,
                    first: asked.is_empty(),
                });
                total += limit;
                remaining = remaining.saturating_sub(limit);
            } else if let Some(p) = self.parts[i].as_mut() {
                p.waiting = true;
                self.waiting.push_back(i);
                ahead += limit;
            }
        }
        if asked.is_empty() {
            return None;
        }
        if let Some(led) = self.leaders.led_mut(broker) {
            led.cursor = (start + 1) % n.max(1);
        }
        // Fetch sessions (v7+): a full fetch asks for one; then only partitions whose
        // offset or limit changed are listed, and those no longer wanted are forgotten.
        let wanted: BTreeMap<usize, SessionPart> = asked
            .iter()
            .filter_map(|a| {
                let p = self.parts[a.index].as_ref()?;
                Some((
                    a.index,
                    SessionPart {
                        topic: p.topic.clone(),
                        partition: p.partition,
                        offset: a.offset,
                        limit: a.limit,
                    },
                ))
            })
            .collect();
        let mut forgotten: Vec<ForgottenTopic> = Vec::new();
        let (session_id, session_epoch, session) = match self.sessions.get(&broker) {
            _ if !self.config.fetch_sessions || version < 7 => (0, -1, None),
            None => (0, 0, Some((SessionUse::Create, wanted))),
            Some(s) => {
                for (i, held) in &s.parts {
                    // Still wanted (under this index, or under a new one after the
                    // partition was assigned again): not forgotten.
                    let still = wanted.contains_key(i)
                        || wanted
                            .values()
                            .any(|w| w.partition == held.partition && w.topic == held.topic);
                    if still {
                        continue;
                    }
                    match forgotten.iter_mut().find(|t| *t.topic == *held.topic) {
                        Some(t) => t.partitions.push(held.partition),
                        None => forgotten.push(ForgottenTopic {
                            topic: held.topic.to_string(),
                            partitions: vec![held.partition],
                            ..Default::default()
                        }),
                    }
                }
                // The broker orders a session's partitions itself: none of ours is first.
                for a in &mut asked {
                    a.first = false;
                }
                (s.id, s.epoch, Some((SessionUse::Incremental, wanted)))
            }
        };
        let held = match &session {
            Some((SessionUse::Incremental, _)) => self.sessions.get(&broker).map(|s| &s.parts),
            _ => None,
        };
        let mut topics: Vec<FetchTopic> = Vec::new();
        for a in &asked {
            let Some(p) = self.parts[a.index].as_ref() else {
                continue;
            };
            let unchanged = held.and_then(|h| h.get(&a.index)).is_some_and(|h| {
                h.offset == a.offset && h.limit == a.limit && *h.topic == *p.topic
            });
            if unchanged {
                continue;
            }
            let fp = FetchPartition {
                partition: p.partition,
                current_leader_epoch: -1,
                fetch_offset: a.offset,
                last_fetched_epoch: -1,
                log_start_offset: -1,
                partition_max_bytes: a.limit.min(i32::MAX as usize) as i32,
                ..Default::default()
            };
            match topics.iter_mut().find(|t| *t.topic == *p.topic) {
                Some(t) => t.partitions.push(fp),
                None => topics.push(FetchTopic {
                    topic: p.topic.to_string(),
                    partitions: vec![fp],
                    ..Default::default()
                }),
            }
        }
        for a in &asked {
            if let Some(p) = self.parts[a.index].as_mut() {
                p.in_flight = true;
            }
        }
        let request = FetchRequest {
            replica_id: -1,
            max_wait_ms: self.config.fetch_wait_max_ms,
            min_bytes: self.config.fetch_min_bytes,
            // Fields a version lacks keep their defaults (the encoder refuses others).
            max_bytes: if version >= 3 {
                total
                    .min(self.config.fetch_max_bytes)
                    .min(i32::MAX as usize) as i32
            } else {
                i32::MAX
            },
            isolation_level: if version >= 4 {
                self.config.isolation_level.code()
            } else {
                0
            },
            session_id,
            session_epoch,
            topics,
            forgotten_topics_data: forgotten,
            ..Default::default()
        };
        let token = FetchToken(self.token());
        self.reserved_bytes += total;
        self.busy.insert(broker);
        self.fetches.insert(
            token,
            FetchInFlight {
                broker,
                reserved: total,
                asked,
                session,
            },
        );
        Some((request, token))
    }

    /// Late binding: the ListOffsets for `broker` finding the positions of the partitions
    /// it leads that wait for a lookup.
    pub fn poll_lookup(
        &mut self,
        broker: i32,
        version: i16,
    ) -> Option<(ListOffsetsRequest, LookupToken)> {
        if self.looking == 0 {
            return None;
        }
        let led = self.leaders.led(broker)?;
        let mut looked: Vec<Looked> = Vec::new();
        let mut topics: Vec<ListOffsetsTopic> = Vec::new();
        for &i in &led.parts {
            let Some(p) = self.parts[i].as_mut() else {
                continue;
            };
            let Phase::Lookup { timestamp, why } = p.phase else {
                continue;
            };
            if !p.due() {
                continue;
            }
            p.in_flight = true;
            looked.push(Looked {
                index: i,
                epoch: p.epoch,
                timestamp,
                why,
            });
            let lp = ListOffsetsPartition {
                partition_index: p.partition,
                current_leader_epoch: -1,
                timestamp,
                max_num_offsets: 1,
                ..Default::default()
            };
            match topics.iter_mut().find(|t| *t.name == *p.topic) {
                Some(t) => t.partitions.push(lp),
                None => topics.push(ListOffsetsTopic {
                    name: p.topic.to_string(),
                    partitions: vec![lp],
                    ..Default::default()
                }),
            }
        }
        if looked.is_empty() {
            return None;
        }
        let token = LookupToken(self.token());
        self.lookups.insert(token, looked);
        let request = ListOffsetsRequest {
            replica_id: -1,
            isolation_level: if version >= 2 {
                self.config.isolation_level.code()
            } else {
                0
            },
            topics,
            ..Default::default()
        };
        Some((request, token))
    }

    /// The answer to fetch `token` (in `version`), or why there is none.
    pub fn handle_fetch_response(
        &mut self,
        now: Instant,
        token: FetchToken,
        result: Result<&FetchResponse, &Error>,
        version: i16,
    ) -> Followup {
        let mut follow = Followup::default();
        let Some(f) = self.fetches.remove(&token) else {
            return follow;
        };
        self.busy.remove(&f.broker);
        self.reserved_bytes -= f.reserved;
        let top_error = match result {
            Ok(r) => ErrorCode::from_code(r.error_code),
            Err(_) => None,
        };
        let in_session = f.session.is_some();
        match (&f.session, result, top_error) {
            (Some((SessionUse::Create, parts)), Ok(r), None) if r.session_id > 0 => {
                let session = FetchSession {
                    id: r.session_id,
                    epoch: 1,
                    parts: parts.clone(),
                };
                self.sessions.insert(f.broker, session);
            }
            (Some((SessionUse::Incremental, parts)), Ok(_), None) => {
                if let Some(s) = self.sessions.get_mut(&f.broker) {
                    s.epoch = if s.epoch == i32::MAX { 1 } else { s.epoch + 1 };
                    s.parts = parts.clone();
                }
            }
            // Any failure: the broker's session state is unknown; the next fetch asks
            // for a new one.
            _ => {
                self.sessions.remove(&f.broker);
            }
        }
        let session_error = matches!(
            top_error,
            Some(ErrorCode::FetchSessionIdNotFound | ErrorCode::InvalidFetchSessionEpoch)
        );
        // The answer's partitions by partition index: one lookup each, whatever the order.
        let mut answered: BTreeMap<usize, &PartitionData> = BTreeMap::new();
        if let Ok(r) = result {
            for t in &r.responses {
                let Some(by_partition) = self.by_name.get(&t.topic) else {
                    continue;
                };
                for d in &t.partitions {
                    if let Some(&i) = by_partition.get(&d.partition_index) {
                        answered.entry(i).or_insert(d);
                    }
                }
            }
        }
        for a in &f.asked {
            let Some(p) = self.parts[a.index].as_mut() else {
                continue;
            };
            p.in_flight = false;
            if p.epoch != a.epoch || p.phase != Phase::Fetching {
                // Sought or reset while in flight: what came back is from before.
                continue;
            }
            match result {
                Ok(_) if top_error.is_none() => {}
                // The session is gone: fetch again at once with a full fetch.
                Ok(_) if session_error => continue,
                Err(e) if !e.is_retriable() => {
                    // A request that cannot be sent (no version in common, an encoding
                    // refused): retrying would loop.
                    self.stop_with(a.index, e.clone());
                    continue;
                }
                _ => {
                    follow.refresh_metadata |=
                        result.is_err() || top_error.is_some_and(ErrorCode::invalidates_metadata);
                    self.backoff(a.index, now);
                    continue;
                }
            }
            let Some(&d) = answered.get(&a.index) else {
                // An incremental answer leaves out the partitions with nothing new.
                if !in_session {
                    self.backoff(a.index, now);
                }
                continue;
            };
            if d.high_watermark >= 0 {
                p.high_watermark = d.high_watermark;
            }
            if version >= 4 && d.last_stable_offset >= 0 {
                p.last_stable_offset = d.last_stable_offset;
            }
            if version >= 5 && d.log_start_offset >= 0 {
                p.log_start_offset = d.log_start_offset;
            }
            match ErrorCode::from_code(d.error_code) {
                None => self.absorb(a, d, version),
                Some(ErrorCode::OffsetOutOfRange) => {
                    let log_start = if version >= 5 { d.log_start_offset } else { -1 };
                    self.out_of_range(a.index, log_start);
                }
                Some(code) if code.invalidates_metadata() => {
                    follow.refresh_metadata = true;
                    self.backoff(a.index, now);
                }
                Some(code) => {
                    let error =
                        Error::broker(code, format!("fetching {}-{}", p.topic, p.partition));
                    if error.is_retriable() {
                        self.backoff(a.index, now);
                    } else {
                        self.stop_with(a.index, error);
                    }
                }
            }
        }
        follow
    }

    /// Buffers what a partition's answer brought and moves its fetch offset.
    fn absorb(&mut self, a: &Asked, d: &PartitionData, version: i16) {
        let read_committed = self.config.isolation_level == IsolationLevel::ReadCommitted;
        let limits = self.limits;
        let Some(p) = self.parts[a.index].as_mut() else {
            return;
        };
        let records = d.records.clone().unwrap_or_default();
        let empty = records.is_empty();
        let aborted = if read_committed && version >= 4 {
            d.aborted_transactions.as_deref()
        } else {
            None
        };
        let mut filter = AbortedFilter::new(aborted);
        let mut batches = Batches::new(records, limits);
        let mut next = p.fetch_offset;
        let (mut bytes, mut messages) = (0usize, 0usize);
        let mut error = None;
        let held_before = self.buffered_bytes + self.reserved_bytes;
        let budget = self.config.queued_max_bytes;
        let mut too_big = None;
        for b in &mut batches {
            let batch = match b {
                Ok(b) => b,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            };
            let skip = filter.skip(&batch);
            let after = batch.next_offset();
            if after <= next {
                continue;
            }
            if skip {
                next = after;
                continue;
            }
            let size = batch.size_in_bytes;
            let held = held_before + bytes;
            if size > a.limit && held > 0 && held + size > budget {
                // Over the partition's limit (a broker sends the first batch whole,
                // KIP-74) and over the budget: dropped, and asked for again alone once
                // nothing else is held, so the budget stays strict.
                too_big = Some(size);
                break;
            }
            let count = batch.record_count.max(0) as usize;
            p.queue.push_back(FetchedBatch {
                topic: p.topic.clone(),
                partition: p.partition,
                batch,
                first_offset: next,
                size,
                epoch: p.epoch,
            });
            bytes += size;
            messages += count;
            next = after;
        }
        p.queued_bytes += bytes;
        p.queued_messages += messages;
        self.buffered_bytes += bytes;
        self.buffered_messages += messages;
        let raised = too_big.map(|size| size.min(self.max_limit));
        if next > p.fetch_offset {
            p.fetch_offset = next;
            p.raised_limit = raised;
            if p.queue.is_empty() {
                p.position = next;
            }
            if !p.queue.is_empty() && !p.listed {
                p.listed = true;
                self.ready.push_back(a.index);
            }
            return;
        }
        if raised.is_some() {
            p.raised_limit = raised;
            return;
        }
        if let Some(e) = error {
            self.stop_with(a.index, Error::Protocol(e));
            return;
        }
        let cap = self.max_limit;
        let grow = |limit: usize, announced: usize| {
            if announced > limit {
                announced.min(cap)
            } else {
                limit.saturating_mul(2).min(cap)
            }
        };
        let end = p.visible_end(read_committed);
        let too_small = match batches.truncated() {
            // A batch larger than the limit, cut by the broker (before Fetch v3).
            Some(announced) => Some(announced),
            // Fetch v3+ returns the first batch whole even when it is over the limits
            // (KIP-74); nothing for the first partition while the log has records at the
            // position means the limit is still in the way.
            None if empty && a.first && version >= 3 && a.offset < end => Some(0),
            None if empty => None,
            None => {
                // Whole batches, all before the position: the broker returned nothing new.
                self.no_progress(a.index);
                return;
            }
        };
        if let Some(announced) = too_small {
            if a.limit >= cap {
                self.no_progress(a.index);
            } else if let Some(p) = self.parts[a.index].as_mut() {
                p.raised_limit = Some(grow(a.limit, announced));
            }
        }
    }

    /// Keeps [`looking`](Self::looking) right when a partition's phase changed.
    fn count_lookup(&mut self, was: bool, is: bool) {
        match (was, is) {
            (false, true) => self.looking += 1,
            (true, false) => self.looking -= 1,
            _ => {}
        }
    }

    fn in_lookup(&self, i: usize) -> bool {
        self.parts[i]
            .as_ref()
            .is_some_and(PartitionState::in_lookup)
    }

    fn no_progress(&mut self, i: usize) {
        let was = self.in_lookup(i);
        self.count_lookup(was, false);
        let Some(p) = self.parts[i].as_mut() else {
            return;
        };
        p.phase = Phase::Stopped;
        self.events.push_back(ConsumerEvent::NoProgress {
            consumer: self.id,
            topic: p.topic.to_string(),
            partition: p.partition,
            position: p.fetch_offset,
        });
    }

    fn stop_with(&mut self, i: usize, error: Error) {
        let was = self.in_lookup(i);
        self.count_lookup(was, false);
        let Some(p) = self.parts[i].as_mut() else {
            return;
        };
        p.phase = Phase::Stopped;
        self.events.push_back(ConsumerEvent::PartitionError {
            consumer: self.id,
            topic: p.topic.to_string(),
            partition: p.partition,
            position: p.fetch_offset,
            error,
        });
    }

    /// Resets partition `i` after OffsetOutOfRange: classified with the log start offset
    /// when the answer had it, else by looking the log start offset up first.
    fn out_of_range(&mut self, i: usize, log_start: i64) {
        let Some(p) = self.parts[i].as_mut() else {
            return;
        };
        let position = p.fetch_offset;
        if log_start >= 0 {
            let side = if position < log_start {
                OutOfRangeSide::BeforeStart
            } else {
                OutOfRangeSide::AfterEnd
            };
            self.apply_reset(i, position, side, None);
        } else {
            let was = p.in_lookup();
            let (bytes, messages) = p.seek(OffsetSpec::Earliest, Lookup::Classify { position });
            self.buffered_bytes -= bytes;
            self.buffered_messages -= messages;
            self.count_lookup(was, true);
        }
    }

    /// Reports an out-of-range position and applies `auto_offset_reset`; `earliest` is
    /// the log start offset when it was just looked up.
    fn apply_reset(
        &mut self,
        i: usize,
        position: i64,
        side: OutOfRangeSide,
        earliest: Option<i64>,
    ) {
        let reset = self.config.auto_offset_reset;
        let was = self.in_lookup(i);
        let Some(p) = self.parts[i].as_mut() else {
            return;
        };
        self.events.push_back(ConsumerEvent::OffsetOutOfRange {
            consumer: self.id,
            topic: p.topic.to_string(),
            partition: p.partition,
            position,
            side,
            reset,
        });
        let (bytes, messages) = match (reset, earliest) {
            (OffsetReset::Earliest, Some(o)) => {
                let dropped = p.seek(OffsetSpec::Offset(o), Lookup::Reset);
                self.events.push_back(ConsumerEvent::PositionSet {
                    consumer: self.id,
                    topic: p.topic.to_string(),
                    partition: p.partition,
                    offset: o,
                });
                dropped
            }
            (OffsetReset::Earliest, None) => p.seek(OffsetSpec::Earliest, Lookup::Reset),
            (OffsetReset::Latest, _) => p.seek(OffsetSpec::Latest, Lookup::Reset),
            (OffsetReset::Error, _) => {
                p.phase = Phase::Stopped;
                (0, 0)
            }
        };
        let is = p.in_lookup();
        self.buffered_bytes -= bytes;
        self.buffered_messages -= messages;
        self.count_lookup(was, is);
    }

    /// The answer to lookup `token`, or why there is none.
    pub fn handle_lookup_response(
        &mut self,
        now: Instant,
        token: LookupToken,
        result: Result<&ListOffsetsResponse, &Error>,
    ) -> Followup {
        let mut follow = Followup::default();
        let Some(looked) = self.lookups.remove(&token) else {
            return follow;
        };
        for l in looked {
            let Some(p) = self.parts[l.index].as_mut() else {
                continue;
            };
            p.in_flight = false;
            let current = matches!(p.phase, Phase::Lookup { timestamp, why } if timestamp == l.timestamp && why == l.why);
            if p.epoch != l.epoch || !current {
                continue;
            }
            let r = match result {
                Ok(r) => r,
                Err(e) if !e.is_retriable() => {
                    self.stop_with(l.index, e.clone());
                    continue;
                }
                Err(_) => {
                    follow.refresh_metadata = true;
                    self.backoff(l.index, now);
                    continue;
                }
            };
            let data = r
                .topics
                .iter()
                .filter(|t| *t.name == *p.topic)
                .flat_map(|t| &t.partitions)
                .find(|d| d.partition_index == p.partition);
            let Some(d) = data else {
                self.backoff(l.index, now);
                continue;
            };
            match ErrorCode::from_code(d.error_code) {
                None => {}
                Some(code) if code.invalidates_metadata() => {
                    follow.refresh_metadata = true;
                    self.backoff(l.index, now);
                    continue;
                }
                Some(code) => {
                    let error = Error::broker(
                        code,
                        format!("listing offsets of {}-{}", p.topic, p.partition),
                    );
                    if error.is_retriable() {
                        self.backoff(l.index, now);
                    } else {
                        self.stop_with(l.index, error);
                    }
                    continue;
                }
            }
            // v0 answers a list (newest first); v1+ one offset, -1 when no record is at
            // or after the timestamp: then the end.
            let offset = d.old_style_offsets.first().copied().unwrap_or(d.offset);
            if offset < 0 {
                if l.timestamp >= 0 {
                    p.phase = Phase::Lookup {
                        timestamp: -1,
                        why: l.why,
                    };
                } else {
                    self.backoff(l.index, now);
                }
                continue;
            }
            match l.why {
                Lookup::Seek | Lookup::Reset => {
                    p.position = offset;
                    p.fetch_offset = offset;
                    // From `Lookup` (checked above).
                    p.phase = Phase::Fetching;
                    self.looking -= 1;
                    self.events.push_back(ConsumerEvent::PositionSet {
                        consumer: self.id,
                        topic: p.topic.to_string(),
                        partition: p.partition,
                        offset,
                    });
                }
                Lookup::Classify { position } => {
                    p.log_start_offset = offset;
                    let side = if position < offset {
                        OutOfRangeSide::BeforeStart
                    } else {
                        OutOfRangeSide::AfterEnd
                    };
                    self.apply_reset(l.index, position, side, Some(offset));
                }
            }
        }
        follow
    }
}

#[cfg(test)]
mod tests;
