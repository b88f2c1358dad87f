//! The producer's pure parts: how records are assigned to partitions, and how a
//! partition's records are batched and sealed into the leader's wire format.
//!
//! The batching state machine, its configuration and delivery reports build on these
//! (issue #7); everything here is usable on its own, for instance to compute where the
//! Java client would put a key.

pub mod batch;
pub mod config;
pub mod machine;
pub mod partitioner;

pub use batch::{BatchBuilder, ProducerStamp, RecordFormat, Seal};
pub use config::{Acks, Partitioning, ProducerConfig};
pub use machine::{
    DeliveryError, DeliveryReport, ProduceError, ProduceRecord, Producer, ProducerId, RecordId,
};
pub use partitioner::{
    murmur2, murmur2_partition, sha1_partition, DefaultPartitioner, Murmur2, Partitioner,
    RoundRobin, Sha1Hashing, Sticky,
};
