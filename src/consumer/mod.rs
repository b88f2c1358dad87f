//! The consumer's parts: configuration, per-partition positions, the fetch-planning and
//! buffering state machine (one per consumer, owned by the client), fetched batches as the
//! application receives them, and read_committed filtering.
//!
//! **Offsets** mean one thing throughout: the next offset to read (see [`partition`]).

pub mod config;
pub mod fetched;
pub mod leaders;
pub mod machine;
pub mod partition;
mod transactions;

pub use config::{ConsumerConfig, IsolationLevel, OffsetReset};
pub use fetched::{FetchedBatch, FetchedRecords};
pub use leaders::LeaderOf;
pub use machine::{
    Consumer, ConsumerEvent, ConsumerId, FetchToken, Followup, LookupToken, OutOfRangeSide,
    PartitionView,
};
pub use partition::OffsetSpec;
