//! grete-blocking: drives the IO-free [grete] core with std threads and blocking sockets.
//!
//! The handles and the driver's logic are [`grete_facade`]'s, waited on by parking the
//! calling thread. This crate adds a driver thread (timers, IO instructions, callbacks)
//! and two threads per connection: a reader (which first connects, bounded by
//! `connect_timeout`, and runs the TLS handshake with rustls if `tls` is configured) and a
//! writer, so neither the driver nor a producer ever waits on a socket. ZooKeeper
//! bootstrap (feature `zookeeper`, on by default) runs zookeeper-async on a small private
//! tokio runtime.
//!
//! ```no_run
//! use grete_blocking::{ClientConfig, KafkaClient, Bootstrap, BrokerAddress};
//!
//! # fn main() -> Result<(), grete_blocking::Error> {
//! let client = KafkaClient::connect(ClientConfig {
//!     bootstrap: Bootstrap::Brokers(BrokerAddress::parse("127.0.0.1:9092")?),
//!     ..ClientConfig::default()
//! })?;
//! for name in client.topics() {
//!     let topic = client.topic(&name)?;
//!     println!("{name}: {} partitions", topic.partitions().len());
//! }
//! client.close();
//! # Ok(())
//! # }
//! ```
//!
//! # Producing
//!
//! [`Topic::producer`] gives a batching [`Producer`] (each record's outcome through its
//! [`DeliveryHandle`], the [`reports`](Producer::reports) iterator, or a callback);
//! [`Topic::sync_producer`] a [`SyncProducer`], whose `send` returns once the record is
//! acknowledged.
//!
//! ```no_run
//! use std::time::{Duration, Instant};
//! use grete_blocking::{
//!     Bootstrap, BrokerAddress, ClientConfig, Compression, KafkaClient, ProducerConfig, Record,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let client = KafkaClient::connect(ClientConfig {
//!     bootstrap: Bootstrap::Brokers(BrokerAddress::parse("127.0.0.1:9092")?),
//!     ..ClientConfig::default()
//! })?;
//! let topic = client.topic("events")?;
//! let producer = topic.producer(ProducerConfig {
//!     compression: Compression::Lz4,
//!     ..ProducerConfig::default()
//! })?;
//!
//! // One report per batch, read on a thread of its own (it ends when the producer closes).
//! let reports = producer.reports();
//! let reader = std::thread::spawn(move || {
//!     for report in reports {
//!         if let Err(e) = &report.result {
//!             eprintln!("{} records of partition {} failed: {e}", report.count, report.partition);
//!         }
//!     }
//! });
//!
//! // Or the outcome of each record.
//! let mut handles = Vec::new();
//! for i in 0..1000 {
//!     let value = format!("event {i}");
//!     handles.push(producer.send(Record::keyed(b"user-1", value.as_bytes()))?);
//! }
//! producer.flush();
//! for handle in handles {
//!     let delivered = handle.wait()?;
//!     println!("partition {} offset {}", delivered.partition, delivered.offset);
//! }
//! // Every record has its outcome; nothing is left to fail.
//! assert_eq!(producer.close(Duration::from_secs(10)), 0);
//! reader.join().expect("reader");
//!
//! // PyKafka's `sync=True`: each send returns once its record is acknowledged.
//! let sync = topic.sync_producer(ProducerConfig::pykafka())?;
//! let delivered = sync.send(Record::value(b"one at a time"))?;
//! println!("written at offset {}", delivered.offset);
//! client.close();
//! # Ok(())
//! # }
//! ```

//!
//! # Consuming
//!
//! [`Topic::simple_consumer`] reads every partition ([`Topic::simple_consumer_for`] chosen
//! ones, each from its own start), [`KafkaClient::simple_consumer`] every partition of
//! several topics (name partitions `(topic, partition)` then); iterate
//! [`SimpleConsumer::messages`] for owned [`Message`]s, or read batch by batch with
//! [`SimpleConsumer::next_batch`], whose records are borrowed from the batch (no
//! allocation per record).
//!
//! ```no_run
//! use std::time::Duration;
//! use grete_blocking::{KafkaClient, OffsetSpec, SimpleConsumerConfig};
//!
//! # fn run(client: KafkaClient) -> Result<(), grete_blocking::Error> {
//! let topic = client.topic("events")?;
//! let mut consumer = topic.simple_consumer_for(
//!     &[(0, Some(OffsetSpec::Offset(42))), (1, None)], // partition 1: earliest
//!     SimpleConsumerConfig {
//!         consumer_timeout_ms: Some(5_000), // the iterator ends after 5 s of silence
//!         ..SimpleConsumerConfig::default()
//!     },
//! )?;
//! for message in consumer.messages() {
//!     let m = message?;
//!     println!("{}/{} at {}: {:?}", m.topic, m.partition, m.offset, m.value);
//! }
//! consumer.commit_offsets("billing")?;
//! consumer.close(Duration::from_secs(5))?;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

mod consumer;
mod driver;
mod net;
mod producer;
mod tls;

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub use consumer::{Messages, SimpleConsumer};
pub use grete;
pub use grete::client::{DeliveryError, DeliveryReport, ProduceError, RecordId};
pub use grete::client::{NewTopic, PartitionOffset, Target, TopicResult};
pub use grete::cluster::{BrokerInfo, Cluster, PartitionInfo};
pub use grete::config::{
    Bootstrap, BrokerAddress, BrokerVersion, ClientConfig, SaslConfig, SaslMechanism, TlsConfig,
};
pub use grete::consumer::{
    ConsumerConfig, ConsumerEvent, FetchedBatch, IsolationLevel, OffsetReset, OffsetSpec,
    OutOfRangeSide, PartitionView,
};
pub use grete::error::{Error, TransportError, TransportErrorKind};
pub use grete::producer::{Acks, Partitioning, ProducerConfig};
pub use grete::protocol::compression::Compression;
pub use grete::protocol::messages::{RequestBody, ResponseBody};
pub use grete::protocol::records::{Header, RecordRef};
pub use grete_facade::{
    Bytes, Delivered, Message, PartitionRef, Record, SendError, SimpleConsumerConfig,
    TopicPositions, TopicStarts,
};
pub use producer::{DeliveryHandle, Producer, Reports, SyncProducer};

use grete::client::Client;
use grete_facade::{block_on, ConsumerHandle, Driver, Owner, ProducerHandle};

/// A Kafka client: a handle on the driver thread. Cheap to clone; the driver stops when
/// the last handle (and every [`Topic`]) is dropped, or at [`close`](Self::close).
#[derive(Clone)]
pub struct KafkaClient {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<grete_facade::Shared>,
    owner: Arc<Owner>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The longest an operation can take (the core finishes every one by then).
    op_limit: Duration,
}

impl std::fmt::Debug for KafkaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaClient").finish_non_exhaustive()
    }
}

impl KafkaClient {
    /// Starts the driver and bootstraps: returns once the first metadata request answered
    /// (or failed, within `request_timeout`).
    pub fn connect(config: ClientConfig) -> Result<KafkaClient, Error> {
        let tls = match &config.tls {
            Some(t) => Some((grete_tls::client_config(t)?, t.clone())),
            None => None,
        };
        let op_limit = config.request_timeout + config.connect_timeout + Duration::from_secs(5);
        let zk = driver::zookeeper(&config);
        let client = Client::new(config)?;
        let threads = driver::Threads {
            connect_timeout: client.config().connect_timeout,
            write_timeout: client.config().write_timeout(),
            shared: grete_facade::Shared::new(client, || {}),
            tls,
        };
        let shared = threads.shared.clone();
        let driver = Driver::new(shared.clone(), threads, zk);
        let thread = thread::Builder::new()
            .name("grete-driver".into())
            .spawn(move || driver::run(driver))
            .map_err(|e| Error::Transport(TransportError::from(e)))?;
        let client = KafkaClient {
            inner: Arc::new(Inner {
                owner: Owner::new(&shared),
                shared,
                thread: Mutex::new(Some(thread)),
                op_limit,
            }),
        };
        match client.update_cluster() {
            Ok(()) => Ok(client),
            Err(e) => {
                client.close();
                Err(e)
            }
        }
    }

    fn shared(&self) -> &grete_facade::Shared {
        &self.inner.shared
    }

    /// Waits for one of the facade's calls. The core finishes every operation by its
    /// deadline; `op_limit` is only a safety net against a driver that stopped.
    fn wait<T>(&self, call: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
        let mut call = pin!(call);
        let deadline = Instant::now() + self.inner.op_limit;
        block_on(Some(deadline), |cx| call.as_mut().poll(cx))
            .unwrap_or_else(|| Err(Error::timeout("operation (driver unresponsive)")))
    }

    /// Topic names from the cached metadata.
    pub fn topics(&self) -> Vec<String> {
        self.shared().topics()
    }

    /// The brokers from the cached metadata.
    pub fn brokers(&self) -> Vec<BrokerInfo> {
        self.shared().brokers()
    }

    /// A snapshot of the metadata cache.
    pub fn cluster(&self) -> Cluster {
        self.shared().cluster()
    }

    /// The metadata cache as the driver shares it: the same `Arc` until the cache changes,
    /// never copied to read it.
    pub fn cluster_snapshot(&self) -> Arc<Cluster> {
        self.shared().cluster_snapshot()
    }

    /// Refreshes the metadata of all topics.
    pub fn update_cluster(&self) -> Result<(), Error> {
        self.wait(self.shared().update_cluster())
    }

    /// The metadata of topic `name`, asking the broker for it (which auto-creates it where
    /// the broker allows).
    pub fn topic(&self, name: &str) -> Result<Topic, Error> {
        Ok(Topic {
            partitions: self.wait(self.shared().topic_partitions(name))?,
            name: name.to_owned(),
            client: self.clone(),
        })
    }

    /// A consumer of every partition of each of `topics`, each partition starting at the
    /// group's committed offset (with a `consumer_group`, unless `reset_offset_on_start`)
    /// or else at `config.start`. Name partitions `(topic, partition)` in its methods.
    /// For one topic, [`Topic::simple_consumer`] is the same.
    pub fn simple_consumer(
        &self,
        topics: &[&str],
        config: SimpleConsumerConfig,
    ) -> Result<SimpleConsumer, Error> {
        self.consumer(ConsumerHandle::start_all(
            &self.inner.shared,
            topics,
            config,
        ))
    }

    /// A consumer of chosen partitions of several topics (each topic once), each partition
    /// at its own start (`None`: the group's committed offset where one applies, else
    /// `config.start`).
    pub fn simple_consumer_for(
        &self,
        chosen: TopicStarts,
        config: SimpleConsumerConfig,
    ) -> Result<SimpleConsumer, Error> {
        self.consumer(ConsumerHandle::start_topics(
            &self.inner.shared,
            chosen,
            config,
        ))
    }

    /// The consumer `start` starts, keeping the driver running while it exists.
    fn consumer(
        &self,
        start: impl Future<Output = Result<ConsumerHandle, Error>>,
    ) -> Result<SimpleConsumer, Error> {
        let inner = &self.inner;
        let handle = self.wait(start)?.keeping(inner.owner.clone());
        Ok(SimpleConsumer::new(handle, inner.op_limit))
    }

    /// Creates topics (through the controller); one result per topic.
    pub fn create_topics(
        &self,
        topics: Vec<NewTopic>,
        timeout: Duration,
    ) -> Result<Vec<TopicResult>, Error> {
        self.wait(self.shared().create_topics(topics, timeout))
    }

    /// Deletes topics (through the controller); one result per topic.
    pub fn delete_topics(
        &self,
        names: Vec<String>,
        timeout: Duration,
    ) -> Result<Vec<TopicResult>, Error> {
        self.wait(self.shared().delete_topics(names, timeout))
    }

    /// Sends any request to `target` and returns the broker's response (the escape hatch).
    pub fn send(&self, target: Target, body: RequestBody) -> Result<ResponseBody, Error> {
        self.wait(self.shared().send(target, body))
    }

    /// Closes the client: unfinished operations fail with `Error::Misuse`, connections
    /// close, and the driver thread ends before this returns.
    pub fn close(self) {
        let shared = self.shared();
        shared.request_close();
        let deadline = Instant::now() + Duration::from_secs(10);
        block_on(Some(deadline), |cx| shared.poll_stopped(cx));
        let thread = self
            .inner
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

/// A topic's metadata, as of [`KafkaClient::topic`], and offset queries on it.
#[derive(Debug, Clone)]
pub struct Topic {
    name: String,
    partitions: Vec<PartitionInfo>,
    client: KafkaClient,
}

impl Topic {
    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its partitions, by id: leader, replicas, in-sync replicas.
    pub fn partitions(&self) -> &[PartitionInfo] {
        &self.partitions
    }

    /// The earliest offset of each partition.
    pub fn earliest_offsets(&self) -> Result<Vec<PartitionOffset>, Error> {
        self.offsets_before(-2)
    }

    /// The offset the next message of each partition will get.
    pub fn latest_offsets(&self) -> Result<Vec<PartitionOffset>, Error> {
        self.offsets_before(-1)
    }

    /// Per partition, the offset of the first message at or after `timestamp_ms` on
    /// brokers with timestamps (0.10.1+); on 0.9, the start of the last segment before
    /// it. `-1` and `-2` mean latest and earliest.
    pub fn offsets_before(&self, timestamp_ms: i64) -> Result<Vec<PartitionOffset>, Error> {
        let shared = self.client.shared();
        (self.client).wait(shared.offsets_before(&self.name, &self.partitions, timestamp_ms))
    }

    /// A batching producer for this topic (see [`Producer`]). Its batches are written in
    /// the leaders' format (MessageSet v0 on Kafka 0.9, v1 on 0.10, RecordBatch v2 on
    /// 0.11+), with idempotence where the brokers support it unless the configuration
    /// says otherwise. The client's driver keeps running while the producer exists.
    pub fn producer(&self, config: ProducerConfig) -> Result<Producer, Error> {
        let handle = ProducerHandle::start(&self.client.inner.shared, &self.name, config)?;
        Ok(Producer::new(
            handle.keeping(self.client.inner.owner.clone()),
        ))
    }

    /// A producer whose `send` returns once the record is acknowledged (PyKafka's
    /// `sync=True`). The batch goes at once, without lingering.
    pub fn sync_producer(&self, config: ProducerConfig) -> Result<SyncProducer, Error> {
        self.producer(config).map(SyncProducer::new)
    }

    /// A consumer of all the topic's partitions, each starting at the group's committed
    /// offset (with a `consumer_group`, unless `reset_offset_on_start`) or else at
    /// `config.start`. See [`SimpleConsumer`].
    pub fn simple_consumer(&self, config: SimpleConsumerConfig) -> Result<SimpleConsumer, Error> {
        let all = self.partitions.iter().map(|p| (p.id, None)).collect();
        self.consumer_of(all, config)
    }

    /// A consumer of the chosen partitions, each at its own start (`None`: as
    /// [`simple_consumer`](Self::simple_consumer) decides).
    pub fn simple_consumer_for(
        &self,
        partitions: &[(i32, Option<OffsetSpec>)],
        config: SimpleConsumerConfig,
    ) -> Result<SimpleConsumer, Error> {
        self.consumer_of(partitions.to_vec(), config)
    }

    fn consumer_of(
        &self,
        partitions: Vec<(i32, Option<OffsetSpec>)>,
        config: SimpleConsumerConfig,
    ) -> Result<SimpleConsumer, Error> {
        let shared = &self.client.inner.shared;
        let start = ConsumerHandle::start(shared, &self.name, partitions, config);
        self.client.consumer(start)
    }
}
