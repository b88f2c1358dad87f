//! The application's handles: [`KafkaClient`] and [`Topic`].

use std::fmt;
use std::future::poll_fn;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_channel::{mpsc, oneshot};
use grete::client::{Client, NewTopic, OpId, Output, PartitionOffset, Target, TopicResult};
use grete::cluster::{BrokerInfo, Cluster, PartitionInfo};
use grete::config::ClientConfig;
use grete::error::Error;
use grete::protocol::messages::{RequestBody, ResponseBody};

use crate::driver::{self, Command, Shared};
use crate::producer::{Producer, SyncProducer};
use crate::Runtime;
use grete::producer::ProducerConfig;
use grete_facade::ProducerHandle;

/// The non-generic part of a client handle.
#[derive(Clone)]
struct Handle {
    commands: mpsc::UnboundedSender<Command>,
    shared: Arc<Shared>,
    rt: Arc<dyn Runtime>,
}

/// Waiting for an operation; forgets it if the caller stops waiting.
struct OpWait<'a> {
    core: &'a grete_facade::Shared,
    op: OpId,
    done: bool,
}

impl Drop for OpWait<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.core.forget_op(self.op);
        }
    }
}

impl Handle {
    /// Starts an operation on the shared core and waits for its result (a waker per
    /// operation; no channel message).
    async fn op(&self, start: impl FnOnce(&mut Client, Instant) -> OpId) -> Result<Output, Error> {
        let core = &self.shared.core;
        let op = core.start_op(start)?;
        let mut wait = OpWait {
            core,
            op,
            done: false,
        };
        poll_fn(|cx| {
            let r = wait.core.poll_op(cx, wait.op);
            wait.done = r.is_ready();
            r
        })
        .await
    }

    async fn update_cluster(&self) -> Result<(), Error> {
        self.op(|c, now| c.update_cluster(now)).await.map(|_| ())
    }

    async fn topic_partitions(&self, name: &str) -> Result<Vec<PartitionInfo>, Error> {
        let names = vec![name.to_owned()];
        let output = self.op(|c, now| c.topic_metadata(now, names, true)).await?;
        self.shared
            .with_cluster(|c| output.into_topic_partitions(name, c))
    }

    async fn offsets(
        &self,
        topic: &str,
        partitions: &[PartitionInfo],
        timestamp: i64,
    ) -> Result<Vec<PartitionOffset>, Error> {
        let partitions: Vec<(i32, i64)> = partitions.iter().map(|p| (p.id, timestamp)).collect();
        self.op(|c, now| c.list_offsets(now, topic, partitions))
            .await?
            .into_offsets()
    }

    async fn send(&self, target: Target, body: RequestBody) -> Result<ResponseBody, Error> {
        self.op(|c, now| c.send(now, target, body))
            .await?
            .into_response()
    }

    async fn close(self) {
        let (done, finished) = oneshot::channel();
        if self
            .commands
            .unbounded_send(Command::Close { done })
            .is_ok()
        {
            let _ = finished.await;
        }
    }
}

/// A Kafka client on runtime `R`: a cheap handle (clone it freely) to a driver task that
/// owns the connections and the metadata cache. The driver stops when [`close`](Self::close)
/// is called or the last handle (including every [`Topic`]) is dropped.
pub struct KafkaClient<R> {
    handle: Handle,
    runtime: PhantomData<fn() -> R>,
}

impl<R> Clone for KafkaClient<R> {
    fn clone(&self) -> Self {
        KafkaClient {
            handle: self.handle.clone(),
            runtime: PhantomData,
        }
    }
}

impl<R> fmt::Debug for KafkaClient<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaClient")
            .field(
                "brokers",
                &self.handle.shared.with_cluster(|c| c.brokers().count()),
            )
            .finish_non_exhaustive()
    }
}

impl<R: Runtime + Default> KafkaClient<R> {
    /// Starts the driver and bootstraps: returns once the first metadata request (for
    /// all topics) has been answered, or with its error.
    pub async fn connect(config: ClientConfig) -> Result<Self, Error> {
        Self::connect_with(R::default(), config).await
    }
}

impl<R: Runtime> KafkaClient<R> {
    /// [`connect`](Self::connect) with an explicit runtime value.
    pub async fn connect_with(runtime: R, config: ClientConfig) -> Result<Self, Error> {
        let rt: Arc<dyn Runtime> = Arc::new(runtime);
        let (commands, shared) = driver::start(rt.clone(), config)?;
        let client = KafkaClient {
            handle: Handle {
                commands,
                shared,
                rt,
            },
            runtime: PhantomData,
        };
        match client.update_cluster().await {
            Ok(()) => Ok(client),
            Err(e) => {
                client.close().await;
                Err(e)
            }
        }
    }

    /// The names of the topics in the cached metadata (internal topics hidden unless
    /// `exclude_internal_topics` is off).
    pub fn topics(&self) -> Vec<String> {
        self.handle
            .shared
            .with_cluster(|c| c.topics().map(|t| t.name.clone()).collect())
    }

    /// Fetches the metadata of topic `name` (the broker creates it first if it is
    /// configured to auto-create topics) and returns a handle to it.
    pub async fn topic(&self, name: &str) -> Result<Topic<R>, Error> {
        let partitions = self.handle.topic_partitions(name).await?;
        Ok(Topic {
            client: self.clone(),
            name: name.to_owned(),
            partitions,
        })
    }

    /// The brokers in the cached metadata.
    pub fn brokers(&self) -> Vec<BrokerInfo> {
        self.handle
            .shared
            .with_cluster(|c| c.brokers().cloned().collect())
    }

    /// A snapshot of the metadata cache.
    pub fn cluster(&self) -> Cluster {
        self.handle.shared.cluster()
    }

    /// The metadata cache as the driver shares it: the same `Arc` until the cache changes,
    /// never copied to read it.
    pub fn cluster_snapshot(&self) -> Arc<Cluster> {
        self.handle.shared.cluster_snapshot()
    }

    /// Refreshes the metadata of every topic.
    pub async fn update_cluster(&self) -> Result<(), Error> {
        self.handle.update_cluster().await
    }

    /// Creates topics (CreateTopics, through the controller). On brokers without the API
    /// (Kafka 0.9) this is [`Error::Unsupported`].
    pub async fn create_topics(
        &self,
        topics: Vec<NewTopic>,
        timeout: Duration,
    ) -> Result<Vec<TopicResult>, Error> {
        self.handle
            .op(|c, now| c.create_topics(now, topics, timeout))
            .await?
            .into_topics()
    }

    /// Deletes topics (DeleteTopics, through the controller). On brokers without the API
    /// (Kafka 0.9) this is [`Error::Unsupported`].
    pub async fn delete_topics(
        &self,
        names: Vec<String>,
        timeout: Duration,
    ) -> Result<Vec<TopicResult>, Error> {
        self.handle
            .op(|c, now| c.delete_topics(now, names, timeout))
            .await?
            .into_topics()
    }

    /// Sends any request to `target` (in the highest version both sides support) and
    /// returns the broker's response: the escape hatch.
    pub async fn send(&self, target: Target, body: RequestBody) -> Result<ResponseBody, Error> {
        self.handle.send(target, body).await
    }

    /// Stops the driver: unfinished operations fail, connections close. Other handles'
    /// calls then fail with [`Error::Misuse`].
    pub async fn close(self) {
        self.handle.close().await
    }
}

/// A topic: its partitions as last fetched, and offset queries.
pub struct Topic<R> {
    client: KafkaClient<R>,
    name: String,
    partitions: Vec<PartitionInfo>,
}

impl<R> Clone for Topic<R> {
    fn clone(&self) -> Self {
        Topic {
            client: self.client.clone(),
            name: self.name.clone(),
            partitions: self.partitions.clone(),
        }
    }
}

impl<R> fmt::Debug for Topic<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Topic")
            .field("name", &self.name)
            .field("partitions", &self.partitions)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> Topic<R> {
    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its partitions (leader, replicas, ISR) by index, as fetched by
    /// [`KafkaClient::topic`].
    pub fn partitions(&self) -> &[PartitionInfo] {
        &self.partitions
    }

    /// A batching producer for this topic (see [`Producer`]). Its batches are written in
    /// the leaders' format (MessageSet v0 on Kafka 0.9, v1 on 0.10, RecordBatch v2 on
    /// 0.11+), with idempotence where the brokers support it unless the configuration
    /// says otherwise.
    pub fn producer(&self, config: ProducerConfig) -> Result<Producer, Error> {
        let handle = ProducerHandle::start(&self.client.handle.shared.core, &self.name, config)?;
        let keep: Arc<dyn Send + Sync> = Arc::new(self.client.handle.commands.clone());
        Ok(Producer::new(handle, self.client.handle.rt.clone(), keep))
    }

    /// A producer whose `send` returns once the record is acknowledged (PyKafka's
    /// `sync=True`). The batch goes at once, without lingering.
    pub fn sync_producer(&self, config: ProducerConfig) -> Result<SyncProducer, Error> {
        self.producer(config).map(SyncProducer::new)
    }

    /// The first offset of each partition.
    pub async fn earliest_offsets(&self) -> Result<Vec<PartitionOffset>, Error> {
        self.offsets_before(-2).await
    }

    /// The next offset of each partition (one past the last message).
    pub async fn latest_offsets(&self) -> Result<Vec<PartitionOffset>, Error> {
        self.offsets_before(-1).await
    }

    /// The offset of each partition by timestamp (milliseconds since the epoch; `-1`
    /// latest, `-2` earliest), ListOffsets v0 semantics on 0.9 brokers (the start of the
    /// segment before `timestamp`).
    pub async fn offsets_before(&self, timestamp_ms: i64) -> Result<Vec<PartitionOffset>, Error> {
        self.client
            .handle
            .offsets(&self.name, &self.partitions, timestamp_ms)
            .await
    }
}
