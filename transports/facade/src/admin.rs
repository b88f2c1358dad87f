//! The client's calls (metadata, topics, offsets, any request), written once as futures on
//! [`Shared`]: the async transports await them, the blocking one waits on them with
//! [`block_on`](crate::block_on). Each is an operation of the core, started by the caller
//! and waited for with a waker (no channel message).

use std::future::{poll_fn, Future};
use std::time::{Duration, Instant};

use grete::client::{Client, NewTopic, OpId, Output, PartitionOffset, Target, TopicResult};
use grete::cluster::{BrokerInfo, Cluster, PartitionInfo};
use grete::error::Error;
use grete::protocol::messages::{RequestBody, ResponseBody};

use crate::Shared;

/// Waiting for an operation; forgets it if the caller stops waiting.
struct OpWait<'a> {
    shared: &'a Shared,
    op: OpId,
    done: bool,
}

impl Drop for OpWait<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.shared.forget_op(self.op);
        }
    }
}

impl Shared {
    /// Starts an operation (`start` calls one of the client's operation methods) and
    /// waits for its result. Dropping the future forgets the operation.
    pub fn op(
        &self,
        start: impl FnOnce(&mut Client, Instant) -> OpId,
    ) -> impl Future<Output = Result<Output, Error>> + Send + '_ {
        let started = self.start_op(start);
        async move {
            let mut wait = OpWait {
                shared: self,
                op: started?,
                done: false,
            };
            poll_fn(|cx| {
                let r = wait.shared.poll_op(cx, wait.op);
                wait.done = r.is_ready();
                r
            })
            .await
        }
    }

    /// The names of the topics in the cached metadata.
    pub fn topics(&self) -> Vec<String> {
        self.cluster_snapshot()
            .topics()
            .map(|t| t.name.clone())
            .collect()
    }

    /// The brokers in the cached metadata.
    pub fn brokers(&self) -> Vec<BrokerInfo> {
        self.cluster_snapshot().brokers().cloned().collect()
    }

    /// A copy of the metadata cache.
    pub fn cluster(&self) -> Cluster {
        Cluster::clone(&self.cluster_snapshot())
    }

    /// Refreshes the metadata of every topic.
    pub async fn update_cluster(&self) -> Result<(), Error> {
        self.op(|c, now| c.update_cluster(now)).await.map(|_| ())
    }

    /// Fetches the metadata of topic `name` (auto-created where the broker allows) and
    /// returns its partitions.
    pub async fn topic_partitions(&self, name: &str) -> Result<Vec<PartitionInfo>, Error> {
        let names = vec![name.to_owned()];
        let output = self.op(|c, now| c.topic_metadata(now, names, true)).await?;
        output.into_topic_partitions(name, &self.cluster_snapshot())
    }

    /// Creates topics (CreateTopics, through the controller).
    pub async fn create_topics(
        &self,
        topics: Vec<NewTopic>,
        timeout: Duration,
    ) -> Result<Vec<TopicResult>, Error> {
        self.op(|c, now| c.create_topics(now, topics, timeout))
            .await?
            .into_topics()
    }

    /// Deletes topics (DeleteTopics, through the controller).
    pub async fn delete_topics(
        &self,
        names: Vec<String>,
        timeout: Duration,
    ) -> Result<Vec<TopicResult>, Error> {
        self.op(|c, now| c.delete_topics(now, names, timeout))
            .await?
            .into_topics()
    }

    /// Sends any request to `target` and returns the broker's response.
    pub async fn send(&self, target: Target, body: RequestBody) -> Result<ResponseBody, Error> {
        self.op(|c, now| c.send(now, target, body))
            .await?
            .into_response()
    }

    /// The offset of each of `partitions` of `topic` by timestamp (`-1` latest, `-2`
    /// earliest).
    pub async fn offsets_before(
        &self,
        topic: &str,
        partitions: &[PartitionInfo],
        timestamp_ms: i64,
    ) -> Result<Vec<PartitionOffset>, Error> {
        let partitions = partitions.iter().map(|p| (p.id, timestamp_ms)).collect();
        self.op(|c, now| c.list_offsets(now, topic, partitions))
            .await?
            .into_offsets()
    }
}
