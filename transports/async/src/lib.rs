//! grete-async: the runtime-generic driver shared by `grete-tokio` and `grete-smol`.
//!
//! The handles and the driver are [`grete_facade`]'s, awaited: this crate adds the driver
//! task (its wake-ups and timer) and one task per connection (TCP, then TLS if configured).
//! A runtime is a small [`Runtime`] implementation (spawn, resolve, TCP connect, timer, and
//! where the tokio-based ZooKeeper client runs); the rest is compiled once, against
//! `dyn Runtime`. This crate is an implementation detail: use `grete-tokio` or
//! `grete-smol`, which give [`KafkaClient`] and [`Topic`] for their runtime.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Instant;

use futures_util::io::{AsyncRead, AsyncWrite};

mod client;
mod conn;
mod consumer;
mod driver;
mod producer;
mod tls;

pub use client::{KafkaClient, Topic};
pub use consumer::SimpleConsumer;
pub use grete;
pub use grete_facade::{
    Bytes, Delivered, Message, PartitionRef, Record, SendError, SimpleConsumerConfig,
    TopicPositions, TopicStarts,
};
pub use producer::{DeliveryFuture, Producer, Reports, SyncProducer};

/// What `grete-tokio` and `grete-smol` both export, besides their runtime.
pub mod exports {
    pub use crate::{
        Bytes, Delivered, DeliveryFuture, Message, PartitionRef, Producer, Record, Reports,
        Runtime, SendError, SimpleConsumer, SimpleConsumerConfig, SyncProducer, TopicPositions,
        TopicStarts,
    };
    pub use grete;
    pub use grete::client::{NewTopic, PartitionOffset, Target, TopicResult};
    pub use grete::cluster::{BrokerInfo, Cluster, PartitionInfo};
    pub use grete::config::{self, ClientConfig, TlsConfig};
    pub use grete::consumer::{
        ConsumerConfig, ConsumerEvent, FetchedBatch, IsolationLevel, OffsetReset, OffsetSpec,
        OutOfRangeSide, PartitionView,
    };
    pub use grete::error::{Error, TransportError, TransportErrorKind};
    pub use grete::producer::{Acks, Partitioning, ProducerConfig};
    pub use grete::protocol::records::{Header, RecordRef};
}

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A byte stream (TCP or TLS over TCP) in the `futures-io` traits.
pub trait AsyncStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> AsyncStream for T {}

/// A boxed byte stream.
pub type BoxStream = Box<dyn AsyncStream>;

/// What the driver needs from an async runtime.
pub trait Runtime: Send + Sync + 'static {
    /// Fails with [`grete::error::Error::Misuse`] when the runtime cannot be used from here
    /// (for example no tokio runtime is running).
    fn check(&self) -> Result<(), grete::error::Error> {
        Ok(())
    }

    /// Runs `task` in the background.
    fn spawn(&self, task: BoxFuture<()>);

    /// Resolves `host:port` to socket addresses.
    fn resolve(&self, host: String, port: u16) -> BoxFuture<io::Result<Vec<SocketAddr>>>;

    /// Opens a TCP connection to `addr`.
    fn connect(&self, addr: SocketAddr) -> BoxFuture<io::Result<BoxStream>>;

    /// Completes at `deadline`.
    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()>;

    /// Runs `task`, which needs a tokio context (zookeeper-async), in the background, or
    /// says why it cannot. By default on a small private tokio runtime.
    #[cfg(feature = "zookeeper")]
    fn spawn_zookeeper(&self, task: BoxFuture<()>) -> Result<(), String> {
        grete_facade::zk::spawn_private(task)
    }
}
