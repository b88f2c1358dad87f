//! The producer tests every transport runs, written once: the records the interop tests
//! write, producing them and waiting for every outcome, and checking what another client
//! read back. A transport's tests implement [`Transport`] for its client and [`Sending`]
//! for its producers with [`adapters!`], then call the bodies here.
//!
//! Included with `#[path]` next to `readback.rs`, which it uses as `super::readback`.

#![allow(dead_code, async_fn_in_trait)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use grete::client::{NewTopic, PartitionOffset};
use grete::cluster::PartitionInfo;
use grete::producer::{Acks, ProducerConfig};
use grete::protocol::compression::Compression;

use super::readback::{self, Message, Reader};

/// What the producer tests need of a transport's client.
pub trait Transport {
    /// A topic handle.
    type Topic;
    /// A batching producer.
    type Producer: Sending;
    /// A producer whose every send waits for its record's outcome.
    type SyncProducer: Sending;
    /// Topic `name`'s metadata, asked of the broker (Kafka 0.9 auto-creates the topic).
    async fn topic_named(&self, name: &str) -> Self::Topic;
    /// Creates topics through the controller (a failure fails the test).
    async fn create(&self, topics: Vec<NewTopic>);
    /// The topic's partitions.
    fn partitions(topic: &Self::Topic) -> &[PartitionInfo];
    /// The topic's latest offsets (a failure fails the test).
    async fn latest(topic: &Self::Topic) -> Vec<PartitionOffset>;
    /// A batching producer for `topic` (a refusal fails the test).
    fn producer(topic: &Self::Topic, config: ProducerConfig) -> Self::Producer;
    /// A synchronous producer for `topic` (a refusal fails the test).
    fn sync_producer(topic: &Self::Topic, config: ProducerConfig) -> Self::SyncProducer;
}

/// What the producer tests need of a producer.
pub trait Sending {
    /// What gives a queued record's outcome.
    type Pending;
    /// Queues a record (a refusal fails the test).
    async fn put(&self, key: Option<&[u8]>, value: Option<&[u8]>) -> Self::Pending;
    /// The partition the record was queued for.
    fn partition_of(pending: &Self::Pending) -> i32;
    /// Sends what lingers and waits until every record has its outcome.
    async fn flush_all(&self);
    /// The record's partition and offset (a failure fails the test).
    async fn outcome(pending: Self::Pending) -> (i32, i64);
    /// Closes with `timeout`; returns how many records closing failed.
    async fn finish(self, timeout: Duration) -> u64;
}

/// Implements [`Transport`] and [`Sending`] for a transport's `KafkaClient`, `Producer`
/// and `SyncProducer`, whose per-record outcome type the call site names. It has in scope
/// `Transport`, `Sending`, `KafkaClient`, `Topic`, `Producer`, `SyncProducer`, `Record` and
/// `Delivered`.
macro_rules! adapters {
    ($pending:ident) => {
        impl Transport for KafkaClient {
            type Topic = Topic;
            type Producer = Producer;
            type SyncProducer = SyncProducer;

            async fn topic_named(&self, name: &str) -> Topic {
                self.topic(name).await.expect("topic")
            }

            async fn create(&self, topics: Vec<::grete::client::NewTopic>) {
                let timeout = ::std::time::Duration::from_secs(5);
                self.create_topics(topics, timeout)
                    .await
                    .expect("create_topics");
            }

            fn partitions(topic: &Topic) -> &[::grete::cluster::PartitionInfo] {
                topic.partitions()
            }

            async fn latest(topic: &Topic) -> Vec<::grete::client::PartitionOffset> {
                topic.latest_offsets().await.expect("offsets")
            }

            fn producer(topic: &Topic, config: ::grete::producer::ProducerConfig) -> Producer {
                topic.producer(config).expect("producer")
            }

            fn sync_producer(
                topic: &Topic,
                config: ::grete::producer::ProducerConfig,
            ) -> SyncProducer {
                topic.sync_producer(config).expect("sync producer")
            }
        }

        impl Sending for Producer {
            type Pending = $pending;

            async fn put(&self, key: Option<&[u8]>, value: Option<&[u8]>) -> $pending {
                let record = Record {
                    key,
                    value,
                    ..Record::default()
                };
                self.send(record).await.expect("send")
            }

            fn partition_of(pending: &$pending) -> i32 {
                pending.record_id().partition
            }

            async fn flush_all(&self) {
                self.flush().await;
            }

            async fn outcome(pending: $pending) -> (i32, i64) {
                let d = pending.await.expect("delivered");
                (d.partition, d.offset)
            }

            async fn finish(self, timeout: ::std::time::Duration) -> u64 {
                self.close(timeout).await
            }
        }

        impl Sending for SyncProducer {
            type Pending = Delivered;

            async fn put(&self, key: Option<&[u8]>, value: Option<&[u8]>) -> Delivered {
                let record = Record {
                    key,
                    value,
                    ..Record::default()
                };
                self.send(record).await.expect("send")
            }

            fn partition_of(pending: &Delivered) -> i32 {
                pending.partition
            }

            async fn flush_all(&self) {}

            async fn outcome(pending: Delivered) -> (i32, i64) {
                (pending.partition, pending.offset)
            }

            async fn finish(self, timeout: ::std::time::Duration) -> u64 {
                self.close(timeout).await
            }
        }
    };
}
pub(crate) use adapters;

/// A topic name no other run uses.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

/// How many records each interop test writes (`GRETE_INTEROP_RECORDS`; 2,000 by
/// default, the README's campaign uses 100,000).
pub fn count() -> usize {
    std::env::var("GRETE_INTEROP_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000)
}

/// Records of 100 bytes, every seventh with a key.
pub fn records() -> Vec<(Option<Vec<u8>>, Vec<u8>)> {
    (0..count())
        .map(|i| {
            let key = (i % 7 == 0).then(|| format!("key-{i}").into_bytes());
            let mut value = format!("record {i} ").into_bytes();
            value.resize(100, b'a' + (i % 26) as u8);
            (key, value)
        })
        .collect()
}

/// Produces every record (null values where `i % 11 == 0` when `nulls`), waits for every
/// outcome, closes the producer, and returns (partition, offset, key, value) of each, in
/// produce order. With acks, no two records share an offset; without, every offset is -1.
pub async fn produce_all<S: Sending>(
    producer: S,
    acks: Acks,
    records: Vec<(Option<Vec<u8>>, Vec<u8>)>,
    nulls: bool,
) -> Vec<Message> {
    let mut pending = Vec::with_capacity(records.len());
    for (i, (key, value)) in records.into_iter().enumerate() {
        let value = (!(nulls && i % 11 == 0)).then_some(value);
        let p = producer.put(key.as_deref(), value.as_deref()).await;
        pending.push((p, key, value));
    }
    producer.flush_all().await;
    let mut out = Vec::with_capacity(pending.len());
    for (p, key, value) in pending {
        let queued_for = S::partition_of(&p);
        let (partition, offset) = S::outcome(p).await;
        assert_eq!(partition, queued_for);
        if acks == Acks::None {
            assert_eq!(offset, -1);
        }
        out.push(Message {
            partition,
            offset,
            key,
            value,
        });
    }
    assert_eq!(producer.finish(Duration::from_secs(5)).await, 0);
    if acks != Acks::None {
        let mut seen = BTreeSet::new();
        for m in &out {
            let (p, o) = (m.partition, m.offset);
            assert!(seen.insert((p, o)), "two records acknowledged at {p}/{o}");
        }
    }
    out
}

/// What was read back is what was sent: with offsets when the broker answered them,
/// else in produce order per partition.
pub fn assert_read_back(sent: &[Message], read: &[Message], with_offsets: bool) {
    let mut expected: Vec<Message> = sent.to_vec();
    if !with_offsets {
        // Per partition in produce order: take the offsets the reader saw.
        let mut next: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
        for m in read {
            next.entry(m.partition).or_default().push(m.offset);
        }
        for list in next.values_mut() {
            list.reverse();
        }
        for m in &mut expected {
            m.offset = next
                .get_mut(&m.partition)
                .and_then(Vec::pop)
                .expect("as many read as sent in the partition");
        }
    }
    expected.sort();
    assert_eq!(expected.len(), read.len());
    for (e, r) in expected.iter().zip(read) {
        assert_eq!(e, r, "record read back differs");
    }
}

/// The topic once each of its `n` partitions has a leader (auto-created topics get
/// theirs a moment after creation).
pub async fn topic_with_leaders<T: Transport>(client: &T, name: &str, n: usize) -> T::Topic {
    for _ in 0..100 {
        let topic = client.topic_named(name).await;
        let partitions = T::partitions(&topic);
        if partitions.len() == n && partitions.iter().all(|p| p.leader.is_some()) {
            return topic;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{name} has no leaders after 10 s");
}

/// The sum of the partitions' latest offsets once it reaches `n` (acks=0 records are
/// appended a moment after they were written to the socket), or after 10 s.
pub async fn wait_for_offsets<T: Transport>(topic: &T::Topic, n: usize) -> usize {
    let mut total = 0;
    for _ in 0..100 {
        total = T::latest(topic)
            .await
            .iter()
            .map(|o| o.result.clone().expect("offset").max(0) as usize)
            .sum();
        if total >= n {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    total
}

/// Produces `input` (`key:value` lines) with kcat, librdkafka's murmur2 partitioner.
pub fn kcat_produce(kcat: &str, brokers: &str, topic: &str, input: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new(kcat)
        .args(["-P", "-b", brokers, "-t", topic, "-K", ":"])
        .args(["-X", "api.version.request=false"])
        .args(["-X", "broker.version.fallback=0.9.0.1"])
        .args(["-X", "topic.partitioner=murmur2_random"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("kcat");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    assert!(child.wait().expect("kcat").success());
}

// ---- the test bodies ----------------------------------------------------------------

/// Kafka 0.9 (`list`): every codec it has (none, gzip, snappy, lz4) with every acks level,
/// each into a fresh topic named after `prefix`, read back byte for byte by kcat.
pub async fn kafka09_every_codec_and_acks<T: Transport>(client: &T, list: &str, prefix: &str) {
    for compression in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
    ] {
        for acks in [Acks::None, Acks::Leader, Acks::All] {
            let name = unique(&format!("{prefix}-p09-{compression:?}-{acks:?}"));
            let topic = client.topic_named(&name).await;
            let config = ProducerConfig {
                compression,
                required_acks: acks,
                ..ProducerConfig::pykafka()
            };
            let sent = produce_all(T::producer(&topic, config), acks, records(), false).await;
            let written = wait_for_offsets::<T>(&topic, sent.len()).await;
            assert_eq!(
                written,
                sent.len(),
                "{compression:?} {acks:?}: log end offsets"
            );
            let read = readback::read_back(Reader::Kcat09, list, &name, sent.len());
            assert_read_back(&sent, &read, acks != Acks::None);
        }
    }
}

/// Kafka 0.9 (`list`): gzip records with null values, read back by PyKafka.
pub async fn kafka09_read_by_pykafka<T: Transport>(client: &T, list: &str, prefix: &str) {
    let name = unique(&format!("{prefix}-p09-pykafka"));
    let topic = client.topic_named(&name).await;
    let config = ProducerConfig {
        compression: Compression::Gzip,
        ..ProducerConfig::pykafka()
    };
    let producer = T::producer(&topic, config);
    let sent = produce_all(producer, Acks::Leader, records(), true).await;
    let read = readback::read_back(Reader::PyKafka, list, &name, sent.len());
    assert_read_back(&sent, &read, true);
}

/// The three-broker Kafka 0.9 cluster (`list`): 200 keys land in the partitions
/// librdkafka's murmur2 (through `kcat`) puts them in, over all three.
pub async fn kafka09_keyed_like_librdkafka<T: Transport>(
    client: &T,
    list: &str,
    kcat: &str,
    prefix: &str,
) {
    let theirs = unique(&format!("{prefix}-keys-rdkafka"));
    let ours = unique(&format!("{prefix}-keys-grete"));
    let keys: Vec<String> = (0..200).map(|i| format!("user-{i}")).collect();
    let mut input = String::new();
    for k in &keys {
        input.push_str(&format!("{k}:v\n"));
    }
    topic_with_leaders(client, &theirs, 3).await;
    kcat_produce(kcat, list, &theirs, &input);
    let ours_topic = topic_with_leaders(client, &ours, 3).await;
    let keyed: Vec<(Option<Vec<u8>>, Vec<u8>)> = keys
        .iter()
        .map(|k| (Some(k.as_bytes().to_vec()), b"v".to_vec()))
        .collect();
    let config = ProducerConfig {
        required_acks: Acks::All,
        ..ProducerConfig::default()
    };
    let producer = T::producer(&ours_topic, config);
    let sent = produce_all(producer, Acks::All, keyed, false).await;
    let a = readback::read_back(Reader::Kcat09, list, &theirs, keys.len());
    let b = readback::read_back(Reader::Kcat09, list, &ours, sent.len());
    let place = |m: &[Message]| -> BTreeMap<Vec<u8>, i32> {
        m.iter()
            .map(|m| (m.key.clone().expect("key"), m.partition))
            .collect()
    };
    let (a, b) = (place(&a), place(&b));
    assert_eq!(a.len(), keys.len());
    assert_eq!(
        a, b,
        "grete and librdkafka put keys in different partitions"
    );
    let used: BTreeSet<i32> = a.values().copied().collect();
    assert_eq!(used.len(), 3, "200 keys over 3 partitions use all of them");
}

/// tansu (`list`): every codec including zstd with the default configuration (acks all,
/// idempotent), plus acks 1 and 0 without idempotence, read back by confluent-kafka.
pub async fn tansu_every_codec<T: Transport>(client: &T, list: &str, prefix: &str) {
    for (compression, acks, idempotence) in [
        (Compression::None, Acks::All, None),
        (Compression::Gzip, Acks::All, None),
        (Compression::Snappy, Acks::All, None),
        (Compression::Lz4, Acks::All, None),
        (Compression::Zstd, Acks::All, None),
        (Compression::Lz4, Acks::Leader, Some(false)),
        (Compression::None, Acks::None, Some(false)),
    ] {
        let name = unique(&format!("{prefix}-ptansu-{compression:?}-{acks:?}"));
        client
            .create(vec![NewTopic {
                name: name.clone(),
                num_partitions: 3,
                replication_factor: 1,
                configs: Vec::new(),
            }])
            .await;
        let topic = client.topic_named(&name).await;
        let config = ProducerConfig {
            compression,
            required_acks: acks,
            enable_idempotence: idempotence,
            ..ProducerConfig::default()
        };
        let sent = produce_all(T::producer(&topic, config), acks, records(), true).await;
        // No wait on the log end offsets here: tansu 0.6's ListOffsets under-reports
        // them after fast produce bursts (librdkafka's writes too); the reader reads
        // until it has every record.
        let read = readback::read_back(Reader::Confluent, list, &name, sent.len());
        assert_read_back(&sent, &read, acks != Acks::None);
    }
}

/// A synchronous producer into a fresh one-partition topic (Kafka 0.9 auto-creation):
/// each send returns its record's offset, 0 to 4.
pub async fn sync_offsets<T: Transport>(client: &T, prefix: &str) {
    let name = unique(&format!("{prefix}-sync"));
    let topic = client.topic_named(&name).await;
    let producer = T::sync_producer(&topic, ProducerConfig::pykafka());
    for i in 0..5 {
        let value = format!("sync-{i}");
        let delivered = producer.put(None, Some(value.as_bytes())).await;
        assert_eq!(
            <T::SyncProducer as Sending>::outcome(delivered).await,
            (0, i)
        );
    }
    assert_eq!(producer.finish(Duration::from_secs(5)).await, 0);
}

/// 2,000 records through `producer` while `leader_down` takes a partition leader down
/// after the 700th: every record is delivered once, at its own offset, and the brokers'
/// logs (`written`) hold exactly 2,000 (idempotence: nothing written twice).
pub async fn through_a_broker_down<S: Sending>(
    producer: S,
    leader_down: impl FnOnce(),
    written: impl Fn() -> usize,
) {
    let mut leader_down = Some(leader_down);
    let mut pending = Vec::new();
    for i in 0..2000 {
        if i == 700 {
            leader_down.take().expect("once")();
        }
        let value = format!("m{i}");
        pending.push(producer.put(None, Some(value.as_bytes())).await);
    }
    producer.flush_all().await;
    let mut offsets = BTreeSet::new();
    for p in pending {
        let d = S::outcome(p).await;
        assert!(offsets.insert(d), "{d:?} twice");
    }
    assert_eq!(offsets.len(), 2000);
    assert_eq!(written(), 2000, "idempotence: nothing written twice");
    assert_eq!(producer.finish(Duration::from_secs(5)).await, 0);
}
