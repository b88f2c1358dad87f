//! grete: a Kafka client core that does no IO.
//!
//! This crate holds the wire codec and (in later work) the connection, cluster, producer
//! and consumer state machines. The transports (`grete-tokio`, `grete-smol`,
//! `grete-blocking`) move bytes between sockets and this core.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod cluster;
pub mod config;
pub mod connection;
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
