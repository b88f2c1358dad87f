//! The producer's configuration: PyKafka's names where they fit, Rust types.

use std::time::Duration;

use super::partitioner::{
    DefaultPartitioner, Murmur2, Partitioner, RoundRobin, Sha1Hashing, Sticky,
};
use crate::error::Error;
use crate::protocol::compression::Compression;

/// How many acknowledgements a Produce request waits for (`required_acks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// None: the broker does not answer (acks=0). Nothing is known about delivery.
    None,
    /// The leader wrote the records (acks=1, PyKafka's default).
    Leader,
    /// Every in-sync replica has them (acks=-1 / all); idempotence needs it.
    All,
}

impl Acks {
    /// The value on the wire.
    pub fn wire(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

/// Which built-in partitioner a producer uses (see [`super::partitioner`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Partitioning {
    /// murmur2 of the key (as the Java client), sticky without a key (KIP-480).
    #[default]
    Default,
    /// Round-robin whatever the key: PyKafka's default.
    RoundRobin,
    /// SHA-1 of the key: PyKafka's `hashing_partitioner`.
    Sha1Hashing,
    /// murmur2 of the key, round-robin without one.
    Murmur2,
    /// Sticky for every record (the key is ignored).
    Sticky,
}

impl Partitioning {
    /// A partitioner of this kind; `seed` drives the random picks of the sticky ones.
    pub fn build(self, seed: u64) -> Box<dyn Partitioner> {
        match self {
            Partitioning::Default => Box::new(DefaultPartitioner::new(seed)),
            Partitioning::RoundRobin => Box::new(RoundRobin::new()),
            Partitioning::Sha1Hashing => Box::new(Sha1Hashing::default()),
            Partitioning::Murmur2 => Box::new(Murmur2::default()),
            Partitioning::Sticky => Box::new(Sticky::new(seed)),
        }
    }
}

/// A producer's configuration. `Default` gives safe settings: acks from every in-sync
/// replica, idempotence where the broker supports it, a 5 ms linger.
#[derive(Debug, Clone, PartialEq)]
pub struct ProducerConfig {
    /// How long a batch waits for more records before it may be sent (`linger_ms`). A full
    /// batch goes at once.
    pub linger: Duration,
    /// A batch holds at most this many records (PyKafka's `min_queued_messages` plays this
    /// part there).
    pub batch_max_records: usize,
    /// A batch holds at most this many bytes (uncompressed).
    pub batch_max_bytes: usize,
    /// The largest Produce request (`max_request_size`); a record that cannot fit fails with
    /// `MESSAGE_TOO_LARGE` without being sent.
    pub max_request_size: usize,
    /// At most this many records wait unacknowledged (`max_queued_messages`).
    pub max_queued_messages: usize,
    /// At most this many bytes of records wait unacknowledged.
    pub max_queued_bytes: usize,
    /// When the queue is full: wait for room (`true`, PyKafka's default) or fail the call
    /// with a queue-full error.
    pub block_on_queue_full: bool,
    /// How many acknowledgements each request waits for (`required_acks`).
    pub required_acks: Acks,
    /// How long the broker may wait for the replicas (`ack_timeout_ms`).
    pub ack_timeout: Duration,
    /// How often a batch is retried without idempotence (`max_retries`); with idempotence
    /// retries are bounded only by `delivery_timeout`.
    pub max_retries: u32,
    /// The first delay before a retry (`retry_backoff_ms`); it doubles, with ±20 % jitter,
    /// up to `retry_backoff_max`.
    pub retry_backoff: Duration,
    /// The longest delay between retries.
    pub retry_backoff_max: Duration,
    /// A record not acknowledged this long after it was produced fails (its report says
    /// whether it may have been written).
    pub delivery_timeout: Duration,
    /// The codec for batches.
    pub compression: Compression,
    /// At most this many Produce requests in flight on one connection (at most 5 with
    /// idempotence, one per partition without).
    pub max_in_flight_per_connection: usize,
    /// Idempotence: `None` turns it on where the broker supports it (Kafka 0.11+) and
    /// `required_acks` is [`Acks::All`]; `Some(true)` requires it, `Some(false)` never.
    pub enable_idempotence: Option<bool>,
    /// The partitioner.
    pub partitioner: Partitioning,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            linger: Duration::from_millis(5),
            batch_max_records: 10_000,
            batch_max_bytes: 1_000_000,
            max_request_size: 1_000_012,
            max_queued_messages: 100_000,
            max_queued_bytes: 64 << 20,
            block_on_queue_full: true,
            required_acks: Acks::All,
            ack_timeout: Duration::from_secs(10),
            max_retries: 3,
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(1),
            delivery_timeout: Duration::from_secs(120),
            compression: Compression::None,
            max_in_flight_per_connection: 5,
            enable_idempotence: None,
            partitioner: Partitioning::Default,
        }
    }
}

/// The longest duration a producer setting may hold (one year): the producer adds them to
/// instants, which must not overflow.
const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

impl ProducerConfig {
    /// PyKafka's defaults: acks from the leader, no idempotence, round-robin, a 5 s linger,
    /// batches of up to 70,000 records.
    pub fn pykafka() -> ProducerConfig {
        ProducerConfig {
            linger: Duration::from_secs(5),
            batch_max_records: 70_000,
            required_acks: Acks::Leader,
            enable_idempotence: Some(false),
            partitioner: Partitioning::RoundRobin,
            ..ProducerConfig::default()
        }
    }

    /// Checks the settings: counts and sizes positive, batches that fit a request and the
    /// queue, durations below a year, a codec this build has, and idempotence only with
    /// acks from all replicas.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |why: String| Err(Error::Config(format!("producer: {why}")));
        for (name, d) in [
            ("linger", self.linger),
            ("ack_timeout", self.ack_timeout),
            ("retry_backoff", self.retry_backoff),
            ("retry_backoff_max", self.retry_backoff_max),
            ("delivery_timeout", self.delivery_timeout),
        ] {
            if d > MAX_DURATION {
                return bad(format!("{name} is {d:?}, more than {MAX_DURATION:?}"));
            }
        }
        if self.ack_timeout.as_millis() > i32::MAX as u128 {
            return bad("ack_timeout does not fit the request's 32-bit milliseconds".into());
        }
        if self.delivery_timeout.is_zero() {
            return bad("delivery_timeout must be positive".into());
        }
        if self.retry_backoff > self.retry_backoff_max {
            return bad("retry_backoff is longer than retry_backoff_max".into());
        }
        for (name, n) in [
            ("batch_max_records", self.batch_max_records),
            ("batch_max_bytes", self.batch_max_bytes),
            ("max_queued_messages", self.max_queued_messages),
            ("max_queued_bytes", self.max_queued_bytes),
            (
                "max_in_flight_per_connection",
                self.max_in_flight_per_connection,
            ),
        ] {
            if n == 0 {
                return bad(format!("{name} must be at least 1"));
            }
        }
        if self.max_request_size < 1024 || self.max_request_size > i32::MAX as usize {
            return bad("max_request_size must be between 1 KiB and 2 GiB".into());
        }
        if self.batch_max_bytes > self.max_request_size {
            return bad("batch_max_bytes is larger than max_request_size".into());
        }
        if !self.compression.is_enabled() {
            return bad(format!(
                "compression {} is not built in (enable its feature)",
                self.compression.name()
            ));
        }
        if self.enable_idempotence == Some(true) {
            if self.required_acks != Acks::All {
                return bad("idempotence needs required_acks = All".into());
            }
            if self.max_in_flight_per_connection > 5 {
                return bad("idempotence allows at most 5 requests in flight".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_pykafka_validate() {
        ProducerConfig::default().validate().unwrap();
        ProducerConfig::pykafka().validate().unwrap();
    }

    #[test]
    fn each_bad_setting_is_named() {
        let cases: Vec<(ProducerConfig, &str)> = vec![
            (
                ProducerConfig {
                    linger: Duration::MAX,
                    ..Default::default()
                },
                "linger",
            ),
            (
                ProducerConfig {
                    ack_timeout: Duration::from_secs(1 << 31),
                    ..Default::default()
                },
                "ack_timeout",
            ),
            (
                ProducerConfig {
                    delivery_timeout: Duration::ZERO,
                    ..Default::default()
                },
                "delivery_timeout",
            ),
            (
                ProducerConfig {
                    retry_backoff: Duration::from_secs(5),
                    ..Default::default()
                },
                "retry_backoff",
            ),
            (
                ProducerConfig {
                    batch_max_records: 0,
                    ..Default::default()
                },
                "batch_max_records",
            ),
            (
                ProducerConfig {
                    max_queued_bytes: 0,
                    ..Default::default()
                },
                "max_queued_bytes",
            ),
            (
                ProducerConfig {
                    max_request_size: 10,
                    ..Default::default()
                },
                "max_request_size",
            ),
            (
                ProducerConfig {
                    batch_max_bytes: 2_000_000,
                    ..Default::default()
                },
                "batch_max_bytes",
            ),
            (
                ProducerConfig {
                    enable_idempotence: Some(true),
                    required_acks: Acks::Leader,
                    ..Default::default()
                },
                "idempotence needs",
            ),
            (
                ProducerConfig {
                    enable_idempotence: Some(true),
                    max_in_flight_per_connection: 6,
                    ..Default::default()
                },
                "at most 5",
            ),
        ];
        for (config, name) in cases {
            match config.validate() {
                Err(Error::Config(why)) => assert!(why.contains(name), "{name}: {why}"),
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn acks_on_the_wire() {
        assert_eq!(
            [Acks::None, Acks::Leader, Acks::All].map(Acks::wire),
            [0, 1, -1]
        );
    }
}
