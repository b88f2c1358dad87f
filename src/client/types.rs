//! The client's public handles, transport instructions, operation inputs and outputs.

use crate::cluster::{Cluster, PartitionInfo};
use crate::error::Error;
use crate::protocol::messages::ResponseBody;
use crate::protocol::ErrorCode;
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

impl Output {
    fn unexpected(self, wanted: &str) -> Error {
        Error::Misuse(format!("expected {wanted}, the operation gave {self:?}"))
    }

    /// The per-topic outcomes of `create_topics` / `delete_topics` / `topic_metadata`.
    pub fn into_topics(self) -> Result<Vec<TopicResult>, Error> {
        match self {
            Output::Topics(t) => Ok(t),
            other => Err(other.unexpected("per-topic results")),
        }
    }

    /// The offsets of `list_offsets`.
    pub fn into_offsets(self) -> Result<Vec<PartitionOffset>, Error> {
        match self {
            Output::Offsets(o) => Ok(o),
            other => Err(other.unexpected("offsets")),
        }
    }

    /// The broker's response to `send`.
    pub fn into_response(self) -> Result<ResponseBody, Error> {
        match self {
            Output::Response(r) => Ok(r),
            other => Err(other.unexpected("a response")),
        }
    }

    /// The partitions of topic `name` after a `topic_metadata` operation for it: the
    /// topic's own error if the broker gave one, otherwise its partitions as `cluster`
    /// (the client's cache, updated by the operation) now knows them, by partition id.
    pub fn into_topic_partitions(
        self,
        name: &str,
        cluster: &Cluster,
    ) -> Result<Vec<PartitionInfo>, Error> {
        if let Output::Topics(results) = &self {
            if let Some(e) = results
                .iter()
                .find(|r| r.name == name)
                .and_then(|r| r.error.clone())
            {
                return Err(e);
            }
        } else if self != Output::Cluster {
            return Err(self.unexpected("topic metadata"));
        }
        cluster
            .topic(name)
            .map(|t| t.partitions.values().cloned().collect())
            .ok_or_else(|| {
                Error::broker(ErrorCode::UnknownTopicOrPartition, format!("topic {name}"))
            })
    }
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
    /// A producer's batch was acknowledged or failed: the outcome of each of its records.
    Delivery(crate::producer::machine::DeliveryReport),
    /// A consumer's partition was reset, stopped or hit an error (its batches come from
    /// [`Client::poll_batch`](crate::client::Client::poll_batch)).
    Consumer(crate::consumer::ConsumerEvent),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn topic_partitions_report_the_topic_error_then_an_unknown_topic() {
        let cluster = Cluster::new(Duration::from_secs(60), true);
        let denied = Error::broker(ErrorCode::TopicAuthorizationFailed, "t");
        let out = Output::Topics(vec![TopicResult {
            name: "t".into(),
            error: Some(denied.clone()),
        }]);
        assert_eq!(out.into_topic_partitions("t", &cluster), Err(denied));
        let missing = Output::Topics(vec![]).into_topic_partitions("t", &cluster);
        assert_eq!(
            missing.unwrap_err().code(),
            Some(ErrorCode::UnknownTopicOrPartition)
        );
        let wrong = Output::Offsets(vec![]).into_topic_partitions("t", &cluster);
        assert!(matches!(wrong, Err(Error::Misuse(_))));
        assert!(matches!(
            Output::Cluster.into_offsets(),
            Err(Error::Misuse(_))
        ));
        assert_eq!(Output::Topics(vec![]).into_topics(), Ok(vec![]));
    }
}
