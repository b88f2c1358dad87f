//! The client's public handles, transport instructions, operation inputs and outputs.

use crate::error::Error;
use crate::protocol::messages::ResponseBody;
use crate::zk::{ZkOpId, ZkRequest};

/// Identifies a connection between the core and a transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionHandle(pub u64);

/// Identifies an operation; its result comes back as [`Event::Done`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId(pub u64);

/// Something the transport must do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum Io {
    /// Open a connection (TCP, then TLS if configured) and report with
    /// [`Client::handle_connected`](crate::client::Client::handle_connected) or [`Client::handle_connect_failed`](crate::client::Client::handle_connect_failed).
    Connect {
        /// The handle to report with.
        conn: ConnectionHandle,
        /// Host to connect to.
        host: String,
        /// Port.
        port: u16,
    },
    /// Close a connection; nothing more is reported for it.
    Close {
        /// The connection.
        conn: ConnectionHandle,
    },
    /// Run a ZooKeeper read and report with [`Client::handle_zk_result`](crate::client::Client::handle_zk_result).
    ZooKeeper {
        /// The operation id to report with.
        op: ZkOpId,
        /// What to read (paths include the chroot).
        request: ZkRequest,
    },
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// Any broker (a connected one if there is one).
    AnyBroker,
    /// A broker by id.
    Broker(i32),
    /// The leader of a partition.
    Leader {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
    },
    /// The controller (any broker when the cluster does not say).
    Controller,
}

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// Name.
    pub name: String,
    /// Number of partitions (-1: the broker's default, CreateTopics v4+).
    pub num_partitions: i32,
    /// Replication factor (-1: the broker's default, CreateTopics v4+).
    pub replication_factor: i16,
    /// Topic configs, such as `("cleanup.policy", "compact")`.
    pub configs: Vec<(String, String)>,
}

/// The outcome of an operation for one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicResult {
    /// The topic.
    pub name: String,
    /// `None` when it succeeded.
    pub error: Option<Error>,
}

/// The outcome of an offset query for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOffset {
    /// The partition.
    pub partition: i32,
    /// The offset, or why there is none.
    pub result: Result<i64, Error>,
}

/// What a finished operation produced.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Output {
    /// The metadata cache was updated: read [`Client::cluster`](crate::client::Client::cluster).
    Cluster,
    /// Per-topic outcomes (`topic_metadata`, `create_topics`, `delete_topics`); the
    /// metadata of the topics that exist is in [`Client::cluster`](crate::client::Client::cluster).
    Topics(Vec<TopicResult>),
    /// Per-partition offsets, by partition (`list_offsets`).
    Offsets(Vec<PartitionOffset>),
    /// The broker's response (`send`).
    Response(ResponseBody),
}

/// Something the application should know.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// An operation finished.
    Done {
        /// Which.
        op: OpId,
        /// Its output or error.
        result: Result<Output, Error>,
    },
    /// A connection to a broker failed or was lost; the client will reconnect when needed.
    BrokerDown {
        /// The broker id, if the address belongs to a known broker.
        broker: Option<i32>,
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// Why.
        error: Error,
    },
}
