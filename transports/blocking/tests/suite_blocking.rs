//! The shared transport suite (`transports/testsupport/suite.rs`) on grete-blocking,
//! through `transport`: the blocking API behind `async` methods. Each call blocks inside
//! its first poll; a test waits between calls by parking its thread.

use std::future::Future;
use std::time::{Duration, Instant};

/// The most any one test may take.
const TEST_LIMIT: Duration = Duration::from_secs(90);

fn block_on(test: impl Future<Output = ()>) {
    let mut test = std::pin::pin!(test);
    let deadline = Instant::now() + TEST_LIMIT;
    grete_facade::block_on(Some(deadline), |cx| test.as_mut().poll(cx))
        .expect("the test took too long");
}

/// Threads, not tasks: nothing to count.
fn alive_tasks() -> Option<usize> {
    None
}

#[path = "../../testsupport/suite.rs"]
mod suite;

/// The blocking API as the suite awaits it.
mod transport {
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use grete_blocking as b;
    use grete_blocking::{
        ClientConfig, Cluster, DeliveryError, DeliveryReport, Error, NewTopic, PartitionInfo,
        PartitionOffset, ProduceError, ProducerConfig, RecordId, RequestBody, ResponseBody,
        SendError, Target, TopicResult,
    };
    pub use grete_blocking::{Delivered, Message, Record, SimpleConsumerConfig};
    use grete_blocking::{FetchedBatch, OffsetSpec, PartitionRef, PartitionView};

    #[derive(Debug, Clone)]
    pub struct KafkaClient(b::KafkaClient);

    impl KafkaClient {
        pub async fn connect(config: ClientConfig) -> Result<Self, Error> {
            b::KafkaClient::connect(config).map(KafkaClient)
        }
        pub fn topics(&self) -> Vec<String> {
            self.0.topics()
        }
        pub fn brokers(&self) -> Vec<grete_blocking::BrokerInfo> {
            self.0.brokers()
        }
        pub fn cluster(&self) -> Cluster {
            self.0.cluster()
        }
        pub fn cluster_snapshot(&self) -> std::sync::Arc<Cluster> {
            self.0.cluster_snapshot()
        }
        pub async fn topic(&self, name: &str) -> Result<Topic, Error> {
            self.0.topic(name).map(Topic)
        }
        pub async fn update_cluster(&self) -> Result<(), Error> {
            self.0.update_cluster()
        }
        pub async fn create_topics(
            &self,
            topics: Vec<NewTopic>,
            timeout: Duration,
        ) -> Result<Vec<TopicResult>, Error> {
            self.0.create_topics(topics, timeout)
        }
        pub async fn delete_topics(
            &self,
            names: Vec<String>,
            timeout: Duration,
        ) -> Result<Vec<TopicResult>, Error> {
            self.0.delete_topics(names, timeout)
        }
        pub async fn simple_consumer(
            &self,
            topics: &[&str],
            config: SimpleConsumerConfig,
        ) -> Result<SimpleConsumer, Error> {
            self.0.simple_consumer(topics, config).map(SimpleConsumer)
        }
        pub async fn send(&self, target: Target, body: RequestBody) -> Result<ResponseBody, Error> {
            self.0.send(target, body)
        }
        pub async fn close(self) {
            self.0.close()
        }
    }

    #[derive(Debug, Clone)]
    pub struct Topic(b::Topic);

    impl Topic {
        pub fn name(&self) -> &str {
            self.0.name()
        }
        pub fn partitions(&self) -> &[PartitionInfo] {
            self.0.partitions()
        }
        pub async fn earliest_offsets(&self) -> Result<Vec<PartitionOffset>, Error> {
            self.0.earliest_offsets()
        }
        pub async fn latest_offsets(&self) -> Result<Vec<PartitionOffset>, Error> {
            self.0.latest_offsets()
        }
        pub async fn offsets_before(&self, ts: i64) -> Result<Vec<PartitionOffset>, Error> {
            self.0.offsets_before(ts)
        }
        pub fn producer(&self, config: ProducerConfig) -> Result<Producer, Error> {
            self.0.producer(config).map(Producer)
        }
        pub fn sync_producer(&self, config: ProducerConfig) -> Result<SyncProducer, Error> {
            self.0.sync_producer(config).map(SyncProducer)
        }
        pub async fn simple_consumer(
            &self,
            config: SimpleConsumerConfig,
        ) -> Result<SimpleConsumer, Error> {
            self.0.simple_consumer(config).map(SimpleConsumer)
        }
        pub async fn simple_consumer_for(
            &self,
            partitions: &[(i32, Option<OffsetSpec>)],
            config: SimpleConsumerConfig,
        ) -> Result<SimpleConsumer, Error> {
            self.0
                .simple_consumer_for(partitions, config)
                .map(SimpleConsumer)
        }
    }

    #[derive(Debug)]
    pub struct SimpleConsumer(b::SimpleConsumer);

    impl SimpleConsumer {
        pub async fn next_message(&mut self) -> Option<Result<Message, Error>> {
            self.0.next_message()
        }
        pub async fn next_batch(&mut self) -> Option<FetchedBatch> {
            self.0.next_batch()
        }
        pub fn topic(&self) -> &str {
            self.0.topic()
        }
        pub fn topics(&self) -> impl Iterator<Item = &str> + '_ {
            self.0.topics()
        }
        pub fn seek<'a>(
            &mut self,
            at: impl Into<PartitionRef<'a>>,
            to: OffsetSpec,
        ) -> Result<(), Error> {
            self.0.seek(at, to)
        }
        pub fn pause<'a>(&mut self, at: impl Into<PartitionRef<'a>>) -> Result<(), Error> {
            self.0.pause(at)
        }
        pub fn resume<'a>(&mut self, at: impl Into<PartitionRef<'a>>) -> Result<(), Error> {
            self.0.resume(at)
        }
        pub fn partition<'a>(&self, at: impl Into<PartitionRef<'a>>) -> Option<PartitionView> {
            self.0.partition(at)
        }
        pub fn positions(&self) -> Vec<(i32, i64)> {
            self.0.positions()
        }
        pub fn topic_positions(&self) -> grete_blocking::TopicPositions {
            self.0.topic_positions()
        }
        pub fn lag(&self) -> i64 {
            self.0.lag()
        }
        pub fn take_event(&self) -> Option<grete_blocking::ConsumerEvent> {
            self.0.take_event()
        }
        pub async fn commit_offsets(&self, group: &str) -> Result<(), Error> {
            self.0.commit_offsets(group)
        }
        pub async fn fetch_offsets(&self, group: &str) -> Result<Vec<(i32, i64)>, Error> {
            self.0.fetch_offsets(group)
        }
        pub async fn fetch_offsets_of(
            &self,
            group: &str,
            topic: &str,
        ) -> Result<Vec<(i32, i64)>, Error> {
            self.0.fetch_offsets_of(group, topic)
        }
        pub async fn close(self, timeout: Duration) -> Result<(), Error> {
            self.0.close(timeout)
        }
    }

    #[derive(Debug, Clone)]
    pub struct Producer(b::Producer);

    impl Producer {
        pub async fn send(&self, record: Record<'_>) -> Result<DeliveryFuture, ProduceError> {
            self.0.send(record).map(|h| DeliveryFuture(Some(h)))
        }
        pub async fn produce(&self, record: Record<'_>) -> Result<RecordId, ProduceError> {
            self.0.produce(record)
        }
        pub async fn flush(&self) {
            self.0.flush()
        }
        pub fn reports(&self) -> Reports {
            Reports(self.0.reports())
        }
        pub fn on_delivery(&self, callback: impl Fn(&DeliveryReport) + Send + Sync + 'static) {
            self.0.on_delivery(callback)
        }
        pub fn lagged(&self) -> u64 {
            self.0.lagged()
        }
        pub async fn close(self, timeout: Duration) -> u64 {
            self.0.close(timeout)
        }
    }

    #[derive(Debug)]
    pub struct DeliveryFuture(Option<b::DeliveryHandle>);

    impl DeliveryFuture {
        pub fn record_id(&self) -> RecordId {
            self.0.as_ref().expect("not awaited yet").record_id()
        }
    }

    impl std::future::Future for DeliveryFuture {
        type Output = Result<Delivered, DeliveryError>;

        fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
            Poll::Ready(self.0.take().expect("polled once").wait())
        }
    }

    pub struct Reports(b::Reports);

    impl Reports {
        pub async fn next(&mut self) -> Option<DeliveryReport> {
            self.0.next()
        }
    }

    #[derive(Debug, Clone)]
    pub struct SyncProducer(b::SyncProducer);

    impl SyncProducer {
        pub async fn send(&self, record: Record<'_>) -> Result<Delivered, SendError> {
            self.0.send(record)
        }
        pub async fn close(self, timeout: Duration) -> u64 {
            self.0.close(timeout)
        }
    }
}
