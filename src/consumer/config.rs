//! The consumer's configuration, with PyKafka's names where they fit.

use std::time::Duration;

use crate::error::Error;

/// Where a partition's position goes when it has none or when it is out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetReset {
    /// The log start offset: the oldest record still kept.
    #[default]
    Earliest,
    /// The high watermark (or the last stable offset with read_committed): only new records.
    Latest,
    /// No reset: the partition stops and the application decides (seek).
    Error,
}

/// Which records a fetch may return (Fetch v4+; older brokers have no transactions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsolationLevel {
    /// Every record up to the high watermark, aborted transactions included.
    #[default]
    ReadUncommitted,
    /// Records up to the last stable offset; aborted transactions' records are dropped.
    ReadCommitted,
}

impl IsolationLevel {
    /// The protocol's value.
    pub fn code(self) -> i8 {
        match self {
            IsolationLevel::ReadUncommitted => 0,
            IsolationLevel::ReadCommitted => 1,
        }
    }
}

/// A consumer's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// Prefetch budget in records: no partition is fetched while at least this many
    /// fetched records wait for the application (one response may overshoot it: the
    /// count is known only once the records arrived).
    pub queued_max_messages: usize,
    /// Prefetch budget in bytes (of fetched batches as received): the bytes of buffered
    /// batches plus the bytes fetches in flight may return never exceed it, except for a
    /// single batch larger than the whole budget, fetched alone when nothing else is held.
    pub queued_max_bytes: usize,
    /// Per partition: the most bytes one fetch asks for. A batch larger than this raises
    /// the partition's limit for one fetch to the batch's size instead of stalling.
    pub fetch_message_max_bytes: usize,
    /// Per response: the most bytes one Fetch returns (Fetch v3+; before, the sum of the
    /// partitions' limits bounds it).
    pub fetch_max_bytes: usize,
    /// The broker waits until this many bytes are available (or `fetch_wait_max_ms`).
    pub fetch_min_bytes: i32,
    /// The longest the broker holds a fetch waiting for `fetch_min_bytes`.
    pub fetch_wait_max_ms: i32,
    /// What to do when a partition has no valid position.
    pub auto_offset_reset: OffsetReset,
    /// read_uncommitted or read_committed.
    pub isolation_level: IsolationLevel,
    /// How long a partition waits before it is fetched again after an error.
    pub retry_backoff: Duration,
    /// Verify batch and message checksums (PyKafka does not; grete does by default).
    pub check_crcs: bool,
    /// Use fetch sessions (KIP-227, Fetch v7+, Kafka 1.1): after a full fetch, each
    /// fetch lists only the partitions whose position or limit changed. A session error
    /// falls back to a full fetch.
    pub fetch_sessions: bool,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            queued_max_messages: 2000,
            queued_max_bytes: 64 << 20,
            fetch_message_max_bytes: 1 << 20,
            fetch_max_bytes: 50 << 20,
            fetch_min_bytes: 1,
            fetch_wait_max_ms: 100,
            auto_offset_reset: OffsetReset::Earliest,
            isolation_level: IsolationLevel::ReadUncommitted,
            retry_backoff: Duration::from_millis(100),
            check_crcs: true,
            fetch_sessions: true,
        }
    }
}

/// The largest per-partition limit a batch announcing its size can raise a partition to.
pub const MAX_RAISED_FETCH_BYTES: usize = 1 << 30;

impl ConsumerConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |what: &str| Err(Error::Config(format!("consumer: {what}")));
        if self.queued_max_messages == 0 {
            return bad("queued_max_messages must be at least 1");
        }
        if self.fetch_message_max_bytes == 0 || self.fetch_message_max_bytes > i32::MAX as usize {
            return bad("fetch_message_max_bytes must be between 1 and i32::MAX");
        }
        if self.fetch_max_bytes == 0 || self.fetch_max_bytes > i32::MAX as usize {
            return bad("fetch_max_bytes must be between 1 and i32::MAX");
        }
        if self.queued_max_bytes < self.fetch_message_max_bytes {
            return bad("queued_max_bytes must be at least fetch_message_max_bytes");
        }
        if self.fetch_min_bytes < 0 || self.fetch_wait_max_ms < 0 {
            return bad("fetch_min_bytes and fetch_wait_max_ms must not be negative");
        }
        if self.retry_backoff < crate::config::MIN_DURATION
            || self.retry_backoff > crate::config::MAX_DURATION
        {
            return bad("retry_backoff must be between 1 ms and one year");
        }
        Ok(())
    }
}
