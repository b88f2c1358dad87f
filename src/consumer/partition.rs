//! One assigned partition: its position, what it waits for, and its buffered batches.
//!
//! **Offsets.** Every offset in the consumer's API means *the next offset to read*:
//! - `position`: the next offset the application gets (a batch taken moves it to the
//!   batch's next offset);
//! - `fetch_offset`: the next offset to fetch (a response moves it past what it brought);
//!   the batches between the two wait in the partition's queue. With an empty queue the
//!   two are equal.
//!
//! **Epochs.** `epoch` counts the seeks and resets of the partition. Each fetch and
//! offset lookup remembers the epoch it was issued under; an answer from an older epoch
//! is dropped, and buffered batches are dropped when the epoch moves. So nothing fetched
//! before a seek is ever delivered after it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use super::fetched::FetchedBatch;

/// Where to put a partition's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// This offset (the next one to read).
    Offset(i64),
    /// The log start offset.
    Earliest,
    /// The high watermark (the last stable offset with read_committed).
    Latest,
    /// The first record whose timestamp is at or after this one (milliseconds since
    /// the epoch; ListOffsets v1+, Kafka 0.10.1). Where there is none, the end.
    Timestamp(i64),
}

impl OffsetSpec {
    /// ListOffsets' timestamp for a lookup (`None` for an offset).
    pub(super) fn lookup_timestamp(self) -> Option<i64> {
        match self {
            OffsetSpec::Offset(_) => None,
            OffsetSpec::Earliest => Some(-2),
            OffsetSpec::Latest => Some(-1),
            OffsetSpec::Timestamp(t) => Some(t),
        }
    }
}

/// Why an offset lookup (ListOffsets) runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lookup {
    /// The application asked for a seek (or the partition's start).
    Seek,
    /// `auto_offset_reset` after an out-of-range position.
    Reset,
    /// Finding the log start offset to tell on which side an out-of-range position lies.
    Classify {
        /// The position that was out of range.
        position: i64,
    },
}

/// What a partition waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Its position is known: fetch.
    Fetching,
    /// Its position comes from ListOffsets at `timestamp` (-2 earliest, -1 latest).
    Lookup { timestamp: i64, why: Lookup },
    /// Stopped (out of range with `auto_offset_reset = error`, no progress, a record
    /// that failed its checksum, a permanent error) until the application seeks.
    Stopped,
}

/// One assigned partition.
#[derive(Debug)]
pub(super) struct PartitionState {
    pub(super) topic: Arc<str>,
    pub(super) partition: i32,
    pub(super) position: i64,
    pub(super) fetch_offset: i64,
    pub(super) epoch: u64,
    pub(super) phase: Phase,
    pub(super) paused: bool,
    /// A fetch or lookup naming this partition is on the wire.
    pub(super) in_flight: bool,
    /// After an error, not fetched before this instant.
    pub(super) not_before: Option<Instant>,
    pub(super) high_watermark: i64,
    pub(super) last_stable_offset: i64,
    pub(super) log_start_offset: i64,
    /// A batch larger than the per-partition limit was seen: the next fetch asks this much.
    pub(super) raised_limit: Option<usize>,
    pub(super) queue: VecDeque<FetchedBatch>,
    pub(super) queued_bytes: usize,
    pub(super) queued_messages: usize,
    /// Listed in the consumer's ready queue.
    pub(super) listed: bool,
    /// Listed in the consumer's queue of partitions the budget turned away.
    pub(super) waiting: bool,
}

impl PartitionState {
    pub(super) fn new(topic: Arc<str>, partition: i32, start: OffsetSpec) -> Self {
        let mut p = PartitionState {
            topic,
            partition,
            position: -1,
            fetch_offset: -1,
            epoch: 0,
            phase: Phase::Fetching,
            paused: false,
            in_flight: false,
            not_before: None,
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            raised_limit: None,
            queue: VecDeque::new(),
            queued_bytes: 0,
            queued_messages: 0,
            listed: false,
            waiting: false,
        };
        p.set_start(start, Lookup::Seek);
        p
    }

    /// Moves the position (a new epoch): returns the buffered (bytes, messages) dropped.
    pub(super) fn seek(&mut self, to: OffsetSpec, why: Lookup) -> (usize, usize) {
        self.epoch += 1;
        let dropped = (self.queued_bytes, self.queued_messages);
        self.queue.clear();
        self.queued_bytes = 0;
        self.queued_messages = 0;
        self.raised_limit = None;
        self.not_before = None;
        self.set_start(to, why);
        dropped
    }

    fn set_start(&mut self, to: OffsetSpec, why: Lookup) {
        match to.lookup_timestamp() {
            None => {
                let OffsetSpec::Offset(o) = to else { return };
                self.position = o;
                self.fetch_offset = o;
                self.phase = Phase::Fetching;
            }
            Some(timestamp) => {
                // Unknown until the lookup answers.
                self.position = -1;
                self.fetch_offset = -1;
                self.phase = Phase::Lookup { timestamp, why };
            }
        }
    }

    /// The end of what the partition's fetches may return.
    pub(super) fn visible_end(&self, read_committed: bool) -> i64 {
        if read_committed && self.last_stable_offset >= 0 {
            self.last_stable_offset
        } else {
            self.high_watermark
        }
    }

    /// Whether it waits for an offset lookup.
    pub(super) fn in_lookup(&self) -> bool {
        matches!(self.phase, Phase::Lookup { .. })
    }

    /// Whether it may go in a request (fetch or lookup, whichever its phase): nothing in
    /// flight, no backoff running (the consumer's `handle_timeout` ends backoffs).
    pub(super) fn due(&self) -> bool {
        !self.in_flight && self.not_before.is_none()
    }
}
