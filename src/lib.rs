//! grete: a Kafka client core that does no IO.
//!
//! The core never opens a socket, reads a clock, sleeps or spawns: a transport feeds it
//! bytes, connection events and the time, and carries out what it asks for. The
//! transports (`grete-tokio`, `grete-smol`, `grete-blocking`) do that with real sockets;
//! [`mock::sim`] (feature `mock`) does it on virtual time against an in-memory cluster.
//!
//! What is here:
//! - [`protocol`]: the wire codec: frames, headers, every message in every version grete
//!   knows, records (MessageSet v0/v1, RecordBatch v2) and their compression, error codes.
//! - [`connection`]: one broker connection: framing, correlation ids, pipelining,
//!   per-request deadlines, ApiVersions negotiation with the `broker_version` fallback,
//!   and SASL ([`sasl`]).
//! - [`cluster`]: the metadata cache (brokers, controller, topics, partitions).
//! - [`client`]: the client state machine that owns the connections, bootstraps from a
//!   broker list or ZooKeeper ([`zk`]), keeps the metadata fresh, routes requests to
//!   leaders and the controller, reconnects with backoff and retries until each
//!   operation's deadline. Its operations: cluster and topic metadata, offsets, topic
//!   creation and deletion, and `send` for any request.
//! - [`config`], [`error`], [`rng`] (the seedable randomness: OS-seeded by default).
//! - [`mock`] (feature `mock`): in-memory brokers speaking the real protocol, with fault
//!   injection, and the deterministic simulation harness.
//!
//! Not here yet: the producer (batching, delivery reports), the consumers and group
//! membership.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
// The core never reads a clock (clippy.toml forbids `Instant::now` in src/); unit tests
// may, to get an origin for their instants.
#![cfg_attr(test, allow(clippy::disallowed_methods))]

pub mod client;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod consumer;
pub mod error;
#[cfg(feature = "mock")]
pub mod mock;
pub mod producer;
pub mod protocol;
pub mod rng;
pub mod sasl;
pub mod zk;

/// The README's examples, compiled and run as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
