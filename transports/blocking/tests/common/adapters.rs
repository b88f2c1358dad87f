//! The blocking transport under the shared producer tests' traits
//! (`transports/testsupport/producing.rs`): every method blocks, so every future is ready
//! at once and the bodies run with `producing::ready`.

use std::time::Duration;

use grete::client::{NewTopic, PartitionOffset};
use grete::cluster::PartitionInfo;
use grete_blocking::{
    Delivered, DeliveryHandle, KafkaClient, Producer, ProducerConfig, Record, SyncProducer, Topic,
};

use super::producing::{Sending, Transport};

impl Transport for KafkaClient {
    type Topic = Topic;
    type Producer = Producer;
    type SyncProducer = SyncProducer;

    async fn topic_named(&self, name: &str) -> Topic {
        self.topic(name).expect("topic")
    }

    async fn create(&self, topics: Vec<NewTopic>) {
        let timeout = Duration::from_secs(5);
        self.create_topics(topics, timeout).expect("create_topics");
    }

    fn partitions(topic: &Topic) -> &[PartitionInfo] {
        topic.partitions()
    }

    async fn latest(topic: &Topic) -> Vec<PartitionOffset> {
        topic.latest_offsets().expect("offsets")
    }

    fn producer(topic: &Topic, config: ProducerConfig) -> Producer {
        topic.producer(config).expect("producer")
    }

    fn sync_producer(topic: &Topic, config: ProducerConfig) -> SyncProducer {
        topic.sync_producer(config).expect("sync producer")
    }
}

fn record<'a>(key: Option<&'a [u8]>, value: Option<&'a [u8]>) -> Record<'a> {
    Record {
        key,
        value,
        ..Record::default()
    }
}

impl Sending for Producer {
    type Pending = DeliveryHandle;

    async fn put(&self, key: Option<&[u8]>, value: Option<&[u8]>) -> DeliveryHandle {
        self.send(record(key, value)).expect("send")
    }

    fn partition_of(pending: &DeliveryHandle) -> i32 {
        pending.record_id().partition
    }

    async fn flush_all(&self) {
        self.flush();
    }

    async fn outcome(pending: DeliveryHandle) -> (i32, i64) {
        let d = pending.wait().expect("delivered");
        (d.partition, d.offset)
    }

    async fn finish(self, timeout: Duration) -> u64 {
        self.close(timeout)
    }
}

impl Sending for SyncProducer {
    type Pending = Delivered;

    async fn put(&self, key: Option<&[u8]>, value: Option<&[u8]>) -> Delivered {
        self.send(record(key, value)).expect("send")
    }

    fn partition_of(pending: &Delivered) -> i32 {
        pending.partition
    }

    async fn flush_all(&self) {}

    async fn outcome(pending: Delivered) -> (i32, i64) {
        (pending.partition, pending.offset)
    }

    async fn finish(self, timeout: Duration) -> u64 {
        self.close(timeout)
    }
}
