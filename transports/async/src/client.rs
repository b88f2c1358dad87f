//! The application's handles: [`KafkaClient`] and [`Topic`].

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use grete::client::{NewTopic, PartitionOffset, Target, TopicResult};
use grete::cluster::{BrokerInfo, Cluster, PartitionInfo};
use grete::config::ClientConfig;
use grete::consumer::OffsetSpec;
use grete::error::Error;
use grete::producer::ProducerConfig;
use grete::protocol::messages::{RequestBody, ResponseBody};
use grete_facade::{
    ConsumerHandle, Owner, ProducerHandle, Shared, SimpleConsumerConfig, TopicStarts,
};
use std::future::{poll_fn, Future};

use crate::consumer::SimpleConsumer;
use crate::driver;
use crate::producer::{Producer, SyncProducer};
use crate::Runtime;

/// The non-generic part of a client handle.
#[derive(Clone)]
struct Handle {
    owner: Arc<Owner>,
    shared: Arc<Shared>,
    rt: Arc<dyn Runtime>,
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
                &self.handle.shared.cluster_snapshot().brokers().count(),
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
        let shared = driver::start(rt.clone(), config)?;
        let client = KafkaClient {
            handle: Handle {
                owner: Owner::new(&shared),
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
        self.handle.shared.topics()
    }

    /// Fetches the metadata of topic `name` (the broker creates it first if it is
    /// configured to auto-create topics) and returns a handle to it.
    pub async fn topic(&self, name: &str) -> Result<Topic<R>, Error> {
        let partitions = self.handle.shared.topic_partitions(name).await?;
        Ok(Topic {
            client: self.clone(),
            name: name.to_owned(),
            partitions,
        })
    }

    /// A consumer of every partition of each of `topics`, each partition starting at the
    /// group's committed offset (with a `consumer_group`, unless `reset_offset_on_start`)
    /// or else at `config.start`. Name partitions `(topic, partition)` in its methods.
    /// For one topic, [`Topic::simple_consumer`] is the same.
    pub async fn simple_consumer(
        &self,
        topics: &[&str],
        config: SimpleConsumerConfig,
    ) -> Result<SimpleConsumer, Error> {
        let start = ConsumerHandle::start_all(&self.handle.shared, topics, config);
        self.consumer(start).await
    }

    /// A consumer of chosen partitions of several topics (each topic once), each partition
    /// at its own start (`None`: the group's committed offset where one applies, else
    /// `config.start`).
    pub async fn simple_consumer_for(
        &self,
        chosen: TopicStarts,
        config: SimpleConsumerConfig,
    ) -> Result<SimpleConsumer, Error> {
        let start = ConsumerHandle::start_topics(&self.handle.shared, chosen, config);
        self.consumer(start).await
    }

    /// The consumer `start` starts, keeping the driver running while it exists.
    async fn consumer(
        &self,
        start: impl Future<Output = Result<ConsumerHandle, Error>>,
    ) -> Result<SimpleConsumer, Error> {
        let handle = &self.handle;
        let consumer = start.await?.keeping(handle.owner.clone());
        Ok(SimpleConsumer::new(consumer, handle.rt.clone()))
    }

    /// The brokers in the cached metadata.
    pub fn brokers(&self) -> Vec<BrokerInfo> {
        self.handle.shared.brokers()
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
        self.handle.shared.update_cluster().await
    }

    /// Creates topics (CreateTopics, through the controller). On brokers without the API
    /// (Kafka 0.9) this is [`Error::Unsupported`].
    pub async fn create_topics(
        &self,
        topics: Vec<NewTopic>,
        timeout: Duration,
    ) -> Result<Vec<TopicResult>, Error> {
        self.handle.shared.create_topics(topics, timeout).await
    }

    /// Deletes topics (DeleteTopics, through the controller). On brokers without the API
    /// (Kafka 0.9) this is [`Error::Unsupported`].
    pub async fn delete_topics(
        &self,
        names: Vec<String>,
        timeout: Duration,
    ) -> Result<Vec<TopicResult>, Error> {
        self.handle.shared.delete_topics(names, timeout).await
    }

    /// Sends any request to `target` (in the highest version both sides support) and
    /// returns the broker's response: the escape hatch.
    pub async fn send(&self, target: Target, body: RequestBody) -> Result<ResponseBody, Error> {
        self.handle.shared.send(target, body).await
    }

    /// Stops the driver: unfinished operations fail, connections close. Other handles'
    /// calls then fail with [`Error::Misuse`].
    pub async fn close(self) {
        let shared = self.handle.shared.clone();
        shared.request_close();
        poll_fn(|cx| shared.poll_stopped(cx)).await
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
        let handle = &self.client.handle;
        let producer = ProducerHandle::start(&handle.shared, &self.name, config)?;
        let producer = producer.keeping(handle.owner.clone());
        Ok(Producer::new(producer, handle.rt.clone()))
    }

    /// A producer whose `send` returns once the record is acknowledged (PyKafka's
    /// `sync=True`). The batch goes at once, without lingering.
    pub fn sync_producer(&self, config: ProducerConfig) -> Result<SyncProducer, Error> {
        self.producer(config).map(SyncProducer::new)
    }

    /// A consumer of all the topic's partitions, each starting at the group's committed
    /// offset (with a `consumer_group`, unless `reset_offset_on_start`) or else at
    /// `config.start`. See [`SimpleConsumer`].
    pub async fn simple_consumer(
        &self,
        config: SimpleConsumerConfig,
    ) -> Result<SimpleConsumer, Error> {
        let all = self.partitions.iter().map(|p| (p.id, None)).collect();
        self.consumer_of(all, config).await
    }

    /// A consumer of the chosen partitions, each at its own start (`None`: as
    /// [`simple_consumer`](Self::simple_consumer) decides).
    pub async fn simple_consumer_for(
        &self,
        partitions: &[(i32, Option<OffsetSpec>)],
        config: SimpleConsumerConfig,
    ) -> Result<SimpleConsumer, Error> {
        self.consumer_of(partitions.to_vec(), config).await
    }

    async fn consumer_of(
        &self,
        partitions: Vec<(i32, Option<OffsetSpec>)>,
        config: SimpleConsumerConfig,
    ) -> Result<SimpleConsumer, Error> {
        let shared = &self.client.handle.shared;
        let start = ConsumerHandle::start(shared, &self.name, partitions, config);
        self.client.consumer(start).await
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
        let shared = &self.client.handle.shared;
        (shared.offsets_before(&self.name, &self.partitions, timestamp_ms)).await
    }
}
