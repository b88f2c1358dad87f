//! The consumer tests every transport runs, written once against the transport's
//! `KafkaClient`, `Topic` and `SimpleConsumer` (grete-blocking's behind the suite's async
//! adapter). Included by `suite.rs`, next to `producing.rs` and `readback.rs`.
//!
//! Every read is bounded: consumers run with a `consumer_timeout_ms`, so a missing record
//! ends the stream (and fails the test) instead of hanging.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use grete::client::NewTopic;
use grete::consumer::{ConsumerConfig, ConsumerEvent, OffsetReset, OffsetSpec, OutOfRangeSide};
use grete::error::Error;
use grete::producer::{Acks, ProducerConfig};
use grete::protocol::compression::Compression;

use super::super::transport::{KafkaClient, Record, SimpleConsumer, SimpleConsumerConfig, Topic};
use super::producing::{self, unique};
use super::readback::Message as Sent;

/// A consumer configuration whose reads end after `ms` without a message.
pub fn ending_after(ms: u64) -> SimpleConsumerConfig {
    SimpleConsumerConfig {
        consumer_timeout_ms: Some(ms),
        ..SimpleConsumerConfig::default()
    }
}

/// A read: partition, offset, key, value, headers.
type Read = (
    i32,
    i64,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<(String, Option<Vec<u8>>)>,
);

/// Reads up to `n` messages (fewer when the consumer's timeout passes), in delivery
/// order.
pub async fn read_n(consumer: &mut SimpleConsumer, n: usize) -> Vec<Read> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let Some(m) = consumer.next_message().await else {
            break;
        };
        let m = m.expect("a well-formed record");
        assert_eq!(&*m.topic, consumer.topic());
        out.push((
            m.partition,
            m.offset,
            m.key.map(|b| b.to_vec()),
            m.value.map(|b| b.to_vec()),
            m.headers
                .into_iter()
                .map(|h| (h.key, h.value.map(|v| v.to_vec())))
                .collect(),
        ));
    }
    out
}

/// Per partition, offsets strictly increase in delivery order.
fn assert_in_order(read: &[Read]) {
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    for r in read {
        if let Some(prev) = last.insert(r.0, r.1) {
            assert!(
                r.1 > prev,
                "partition {}: offset {} after {}",
                r.0,
                r.1,
                prev
            );
        }
    }
}

/// Produces `values` into `partition` with grete and waits for every offset.
async fn produce_to(topic: &Topic, partition: i32, n: usize) {
    let producer = topic.producer(ProducerConfig::default()).expect("producer");
    let mut pending = Vec::new();
    for i in 0..n {
        let value = format!("v{i}");
        let record = Record {
            value: Some(value.as_bytes()),
            partition: Some(partition),
            ..Record::default()
        };
        pending.push(producer.send(record).await.expect("send"));
    }
    producer.flush().await;
    for p in pending {
        p.await.expect("delivered");
    }
    assert_eq!(producer.close(Duration::from_secs(5)).await, 0);
}

/// Records grete produced (gzip on 0.9, lz4 on tansu; null values too) read back exactly
/// by grete's consumer over all partitions: same partition, offset, key and value, each
/// once, in offset order per partition.
pub async fn grete_reads_what_grete_wrote(client: &KafkaClient, modern: bool, prefix: &str) {
    let name = unique(&format!("{prefix}-c-own"));
    if modern {
        let topic = NewTopic {
            name: name.clone(),
            num_partitions: 3,
            replication_factor: 1,
            configs: Vec::new(),
        };
        client
            .create_topics(vec![topic], Duration::from_secs(5))
            .await
            .expect("create");
    }
    let topic = client.topic(&name).await.expect("topic");
    let config = ProducerConfig {
        compression: if modern {
            Compression::Lz4
        } else {
            Compression::Gzip
        },
        ..ProducerConfig::default()
    };
    let producer = topic.producer(config).expect("producer");
    let sent = producing::produce_all(producer, Acks::Leader, producing::records(), true).await;
    let mut consumer = topic
        .simple_consumer(ending_after(10_000))
        .await
        .expect("consumer");
    let read = read_n(&mut consumer, sent.len()).await;
    assert_in_order(&read);
    let mut got: Vec<Sent> = read
        .into_iter()
        .map(|(partition, offset, key, value, headers)| {
            assert!(headers.is_empty());
            Sent {
                partition,
                offset,
                key,
                value,
            }
        })
        .collect();
    got.sort();
    let mut expected = sent;
    expected.sort();
    assert_eq!(got.len(), expected.len(), "records read back");
    for (e, g) in expected.iter().zip(&got) {
        assert_eq!(e, g);
    }
    // Nothing more: the stream ends at the timeout.
    assert!(
        consumer.lag() == 0,
        "lag {} after reading everything",
        consumer.lag()
    );
    consumer.close(Duration::from_secs(5)).await.expect("close");
}

/// What `scripts/interop-write.py` writes as record `i` (its `expected()`).
fn interop_expected(client: &str, codec: &str, i: usize) -> Read {
    let key = format!("k{i}").into_bytes();
    let mut value = format!("{client}-{codec}-{i}-").into_bytes();
    let filler = b"abcdefghijklmnopqrstuvwxyz".repeat(4);
    let want = 100usize.saturating_sub(value.len());
    value.extend_from_slice(&filler[..want]);
    let headers = if client == "confluent" {
        vec![("i".to_owned(), Some(i.to_string().into_bytes()))]
    } else {
        Vec::new()
    };
    (0, 0, Some(key), Some(value), headers)
}

/// Writes `count` records into `topic` with another client (`scripts/interop-write.py`).
fn interop_write(writer: &str, brokers: &str, topic: &str, count: usize, codec: &str) {
    let python = std::env::var("GRETE_PYTHON").expect("GRETE_PYTHON");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/interop-write.py"
    );
    let out = std::process::Command::new(python)
        .args([
            script,
            writer,
            brokers,
            topic,
            &count.to_string(),
            codec,
            "60",
        ])
        .output()
        .expect("run interop-write.py");
    assert!(
        out.status.success(),
        "{writer} {codec}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Records another client wrote (`writer` with each of `codecs`) read back exactly: every
/// record once, key, value and headers as written, in write order within each partition.
pub async fn grete_reads_what_others_wrote(
    client: &KafkaClient,
    list: &str,
    writer: &str,
    codecs: &[&str],
    modern: bool,
    prefix: &str,
) {
    let count = 300;
    for codec in codecs {
        let name = unique(&format!("{prefix}-c-{writer}-{codec}"));
        if modern {
            let topic = NewTopic {
                name: name.clone(),
                num_partitions: 3,
                replication_factor: 1,
                configs: Vec::new(),
            };
            client
                .create_topics(vec![topic], Duration::from_secs(5))
                .await
                .expect("create");
        } else {
            // Auto-created by the metadata request, with its leaders, before the writer
            // starts.
            producing::topic_with_leaders(client, &name, 1).await;
        }
        interop_write(writer, list, &name, count, codec);
        let topic = client.topic(&name).await.expect("topic");
        let mut consumer = topic
            .simple_consumer(ending_after(10_000))
            .await
            .expect("consumer");
        let read = read_n(&mut consumer, count).await;
        assert_in_order(&read);
        assert_eq!(read.len(), count, "{writer} {codec}: records read");
        let mut seen = vec![false; count];
        let mut order: BTreeMap<i32, usize> = BTreeMap::new();
        for (partition, _, key, value, headers) in &read {
            let key = key.as_deref().expect("a key");
            let i: usize = std::str::from_utf8(&key[1..])
                .expect("utf-8 key")
                .parse()
                .expect("k<i>");
            let (_, _, _, want_value, want_headers) = interop_expected(writer, codec, i);
            assert_eq!(value, &want_value, "{writer} {codec}: record {i}'s value");
            assert_eq!(
                headers, &want_headers,
                "{writer} {codec}: record {i}'s headers"
            );
            assert!(!std::mem::replace(&mut seen[i], true), "record {i} twice");
            // Written in index order within a partition.
            if let Some(prev) = order.insert(*partition, i) {
                assert!(i > prev, "{writer} {codec}: record {i} after {prev}");
            }
        }
        consumer.close(Duration::from_secs(5)).await.expect("close");
    }
}

/// A fresh one-partition topic with `n` records (Kafka 0.9 auto-creation; created on
/// modern brokers), values `v<i>`.
async fn filled_topic(client: &KafkaClient, prefix: &str, n: usize) -> Topic {
    let name = unique(prefix);
    if client
        .create_topics(Vec::new(), Duration::from_secs(5))
        .await
        .is_ok()
    {
        let topic = NewTopic {
            name: name.clone(),
            num_partitions: 1,
            replication_factor: 1,
            configs: Vec::new(),
        };
        client
            .create_topics(vec![topic], Duration::from_secs(5))
            .await
            .expect("create");
    }
    let topic = producing::topic_with_leaders(client, &name, 1).await;
    produce_to(&topic, 0, n).await;
    topic
}

/// Seeks (forwards, backwards, earliest, latest), pause / resume and the batch API on one
/// partition: the next record after each is exactly the one asked for.
pub async fn seek_pause_resume_and_batches(client: &KafkaClient, prefix: &str) {
    let topic = filled_topic(client, &format!("{prefix}-c-seek"), 200).await;
    let mut consumer = topic
        .simple_consumer_for(&[(0, Some(OffsetSpec::Offset(10)))], ending_after(5_000))
        .await
        .expect("consumer");
    let offsets = |r: &[Read]| r.iter().map(|m| m.1).collect::<Vec<_>>();
    assert_eq!(
        offsets(&read_n(&mut consumer, 5).await),
        vec![10, 11, 12, 13, 14]
    );
    assert_eq!(consumer.positions(), vec![(0, 15)]);
    consumer.seek(0, OffsetSpec::Offset(150)).expect("seek");
    let r = read_n(&mut consumer, 1).await;
    assert_eq!((r[0].1, r[0].3.as_deref()), (150, Some(&b"v150"[..])));
    consumer.seek(0, OffsetSpec::Offset(3)).expect("seek");
    assert_eq!(offsets(&read_n(&mut consumer, 2).await), vec![3, 4]);
    consumer.seek(0, OffsetSpec::Earliest).expect("seek");
    assert_eq!(offsets(&read_n(&mut consumer, 1).await), vec![0]);
    // Paused: nothing comes (the stream ends at its timeout), then exactly the next one.
    consumer.pause(0).expect("pause");
    assert!(consumer.partition(0).expect("assigned").paused);
    assert_eq!(read_n(&mut consumer, 1).await, Vec::new());
    consumer.resume(0).expect("resume");
    assert_eq!(offsets(&read_n(&mut consumer, 1).await), vec![1]);
    // Batches: records borrowed from each, from the position on, in order.
    consumer.seek(0, OffsetSpec::Offset(100)).expect("seek");
    let mut next = 100;
    while next < 200 {
        let batch = consumer
            .next_batch()
            .await
            .expect("a batch before the timeout");
        assert_eq!(batch.partition(), 0);
        for r in batch.records() {
            let r = r.expect("record");
            assert_eq!(r.offset, next);
            assert_eq!(r.value, Some(format!("v{next}").as_bytes()));
            next += 1;
        }
    }
    assert_eq!(consumer.partition(0).expect("assigned").position, 200);
    assert_eq!(consumer.lag(), 0);
    // At the end, then a seek to the latest: nothing until new records come.
    consumer.seek(0, OffsetSpec::Latest).expect("seek");
    assert!(consumer.next_batch().await.is_none());
    consumer.close(Duration::from_secs(5)).await.expect("close");
}

/// A read with its topic: topic, partition, offset, value.
type TopicRead = (String, i32, i64, Option<Vec<u8>>);

/// Reads up to `n` messages of any topic (fewer when the consumer's timeout passes).
async fn read_topics_n(consumer: &mut SimpleConsumer, n: usize) -> Vec<TopicRead> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let Some(m) = consumer.next_message().await else {
            break;
        };
        let m = m.expect("a well-formed record");
        out.push((
            m.topic.to_string(),
            m.partition,
            m.offset,
            m.value.map(|b| b.to_vec()),
        ));
    }
    out
}

/// One consumer of two topics (`KafkaClient::simple_consumer`): every record of both,
/// once, in order per topic; partitions named `(topic, partition)` (a bare number is
/// refused); positions, lag and commits per topic; a new consumer of the group (topics in
/// the other order) resumes each topic at its committed offset.
pub async fn one_consumer_reads_several_topics(client: &KafkaClient, prefix: &str) {
    let a = filled_topic(client, &format!("{prefix}-c-multi-a"), 50).await;
    let b = filled_topic(client, &format!("{prefix}-c-multi-b"), 30).await;
    let (a, b) = (a.name().to_owned(), b.name().to_owned());
    let group = unique(&format!("{prefix}-multi-group"));
    let config = SimpleConsumerConfig {
        consumer_group: Some(group.clone()),
        ..ending_after(5_000)
    };
    let mut consumer = client
        .simple_consumer(&[&a, &b], config.clone())
        .await
        .expect("consumer");
    assert_eq!(consumer.topics().collect::<Vec<_>>(), vec![&*a, &*b]);
    let read = read_topics_n(&mut consumer, 80).await;
    for (name, n) in [(&a, 50), (&b, 30)] {
        let of: Vec<(i64, Option<Vec<u8>>)> = (read.iter())
            .filter(|r| &r.0 == name)
            .map(|r| (r.2, r.3.clone()))
            .collect();
        let want: Vec<(i64, Option<Vec<u8>>)> = (0..n)
            .map(|i| (i, Some(format!("v{i}").into_bytes())))
            .collect();
        assert_eq!(of, want, "{name}: every record once, in order");
    }
    assert_eq!(read.len(), 80);
    assert!(matches!(
        consumer.seek(0, OffsetSpec::Offset(10)),
        Err(Error::Misuse(_))
    ));
    assert!(matches!(
        consumer.seek(("no-such-topic", 0), OffsetSpec::Offset(10)),
        Err(Error::Misuse(_))
    ));
    consumer
        .seek((&*b, 0), OffsetSpec::Offset(10))
        .expect("seek");
    let r = read_topics_n(&mut consumer, 1).await;
    assert_eq!((&r[0].0, r[0].2), (&b, 10));
    assert_eq!(consumer.partition((&*a, 0)).expect("a/0").position, 50);
    assert_eq!(consumer.partition((&*b, 0)).expect("b/0").position, 11);
    assert_eq!(consumer.lag(), 19);
    let positions: Vec<(String, Vec<(i32, i64)>)> = (consumer.topic_positions().into_iter())
        .map(|(t, p)| (t.to_string(), p))
        .collect();
    assert_eq!(
        positions,
        vec![(a.clone(), vec![(0, 50)]), (b.clone(), vec![(0, 11)])]
    );
    consumer.commit_offsets(&group).await.expect("commit");
    assert_eq!(
        consumer.fetch_offsets_of(&group, &b).await.expect("fetch"),
        vec![(0, 11)]
    );
    assert_eq!(
        consumer.fetch_offsets_of(&group, &a).await.expect("fetch"),
        vec![(0, 50)]
    );
    consumer
        .close(Duration::from_secs(10))
        .await
        .expect("close");
    let mut again = client
        .simple_consumer(&[&b, &a], config)
        .await
        .expect("consumer");
    let rest = read_topics_n(&mut again, 19).await;
    let offsets: Vec<(&str, i64)> = rest.iter().map(|r| (&*r.0, r.2)).collect();
    let want: Vec<(&str, i64)> = (11..30).map(|o| (&*b, o)).collect();
    assert_eq!(offsets, want, "resumes each topic at its committed offset");
    again.close(Duration::from_secs(10)).await.expect("close");
}

/// Positions committed for a group (explicitly, then on close) are where a new consumer
/// of the group starts; `fetch_offsets` reads them.
pub async fn commit_then_a_new_consumer_resumes(client: &KafkaClient, prefix: &str) {
    let topic = filled_topic(client, &format!("{prefix}-c-commit"), 100).await;
    let group = unique(&format!("{prefix}-group"));
    let config = SimpleConsumerConfig {
        consumer_group: Some(group.clone()),
        ..ending_after(5_000)
    };
    let mut consumer = topic
        .simple_consumer(config.clone())
        .await
        .expect("consumer");
    assert_eq!(
        consumer.fetch_offsets(&group).await.expect("fetch"),
        vec![(0, -1)]
    );
    let first = read_n(&mut consumer, 30).await;
    assert_eq!(first.last().map(|r| r.1), Some(29));
    consumer.commit_offsets(&group).await.expect("commit");
    assert_eq!(
        consumer.fetch_offsets(&group).await.expect("fetch"),
        vec![(0, 30)]
    );
    // Ten more, committed by close.
    read_n(&mut consumer, 10).await;
    consumer
        .close(Duration::from_secs(10))
        .await
        .expect("commit on close");
    let mut again = topic
        .simple_consumer(config.clone())
        .await
        .expect("consumer");
    let r = read_n(&mut again, 1).await;
    assert_eq!(r[0].1, 40, "resumes at the committed offset");
    again.close(Duration::from_secs(10)).await.expect("close");
    // reset_offset_on_start ignores the group's offsets.
    let fresh = SimpleConsumerConfig {
        reset_offset_on_start: true,
        ..config
    };
    let mut fresh = topic.simple_consumer(fresh).await.expect("consumer");
    assert_eq!(read_n(&mut fresh, 1).await[0].1, 0);
    drop(fresh);
}

/// A slow application: the stream delivers every record although the consumer fills its
/// budget and stops fetching while the application sleeps (level-triggered readiness).
pub async fn slow_reader_gets_every_record(client: &KafkaClient, prefix: &str) {
    let topic = filled_topic(client, &format!("{prefix}-c-slow"), 1000).await;
    let config = SimpleConsumerConfig {
        consumer: ConsumerConfig {
            queued_max_messages: 50,
            fetch_message_max_bytes: 2048,
            queued_max_bytes: 4096,
            ..ConsumerConfig::default()
        },
        ..ending_after(10_000)
    };
    let mut consumer = topic.simple_consumer(config).await.expect("consumer");
    let mut next = 0;
    while next < 1000 {
        let r = read_n(&mut consumer, 1).await;
        assert_eq!(r.first().map(|r| r.1), Some(next), "stalled at {next}");
        next += 1;
        if next % 100 == 0 {
            // The application is busy: the consumer's budget fills meanwhile.
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    consumer.close(Duration::from_secs(5)).await.expect("close");
}

/// Closing with a commit while every broker is unreachable returns the commit's timeout
/// after the given time; dropping another consumer returns at once.
pub async fn close_with_brokers_down_is_bounded(
    client: &KafkaClient,
    topic: &str,
    all_down: impl FnOnce(),
) {
    let topic = client.topic(topic).await.expect("topic");
    let group = "grete-close-down".to_owned();
    let config = SimpleConsumerConfig {
        consumer_group: Some(group),
        reset_offset_on_start: true,
        ..ending_after(1_000)
    };
    // Positions known from the start: there is something to commit.
    let at_zero = [(0, Some(OffsetSpec::Offset(0)))];
    let closing = (topic.simple_consumer_for(&at_zero, config.clone()).await).expect("consumer");
    let dropped = (topic.simple_consumer_for(&at_zero, config).await).expect("consumer");
    all_down();
    drop(dropped);
    let e = closing
        .close(Duration::from_millis(500))
        .await
        .expect_err("nobody answers the commit");
    assert!(
        matches!(&e, Error::Timeout { what } if what.contains("committing offsets on close")),
        "{e:?}"
    );
}

/// A position past the end: the consumer reports `OffsetOutOfRange` (after the end) and
/// the reset it applied (`Latest`: `PositionSet` at the end), then reads what comes next.
pub async fn out_of_range_is_reported_then_reset(client: &KafkaClient, prefix: &str) {
    let topic = filled_topic(client, &format!("{prefix}-c-range"), 10).await;
    let config = SimpleConsumerConfig {
        consumer: ConsumerConfig {
            auto_offset_reset: OffsetReset::Latest,
            ..ConsumerConfig::default()
        },
        ..ending_after(500)
    };
    let mut consumer = topic
        .simple_consumer_for(&[(0, Some(OffsetSpec::Offset(1000)))], config)
        .await
        .expect("consumer");
    let mut events = Vec::new();
    for _ in 0..40 {
        assert_eq!(read_n(&mut consumer, 1).await, Vec::new());
        while let Some(e) = consumer.take_event() {
            events.push(e);
        }
        if events.len() >= 2 {
            break;
        }
    }
    match &events[..] {
        [ConsumerEvent::OffsetOutOfRange {
            partition: 0,
            position: 1000,
            side: OutOfRangeSide::AfterEnd,
            reset: OffsetReset::Latest,
            ..
        }, ConsumerEvent::PositionSet {
            partition: 0,
            offset: 10,
            ..
        }] => {}
        other => panic!("events: {other:?}"),
    }
    produce_to(&topic, 0, 11).await;
    let r = read_n(&mut consumer, 1).await;
    assert_eq!(r.first().map(|r| r.1), Some(10));
    consumer.close(Duration::from_secs(5)).await.expect("close");
}

/// Auto-commit runs on its interval while the application waits for messages that do not
/// come: a consumer whose topic went quiet commits what it delivered without another read.
/// PyKafka reads the group's committed offset while grete's read still waits.
pub async fn auto_commit_commits_while_waiting(client: &KafkaClient, brokers: &str, prefix: &str) {
    let topic = filled_topic(client, &format!("{prefix}-c-auto"), 20).await;
    let group = unique(&format!("{prefix}-auto"));
    let config = SimpleConsumerConfig {
        consumer_group: Some(group.clone()),
        auto_commit_enable: true,
        auto_commit_interval_ms: 300,
        ..ending_after(8_000)
    };
    let mut consumer = topic.simple_consumer(config).await.expect("consumer");
    assert_eq!(read_n(&mut consumer, 20).await.len(), 20);
    let (b, t, g) = (brokers.to_owned(), topic.name().to_owned(), group.clone());
    let watcher = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1_000));
        other_client_offsets("pykafka", &b, &t, &g, &["committed"])
    });
    // Nothing comes: the read waits 8 s; PyKafka looks after 1 s (and its own start).
    assert_eq!(read_n(&mut consumer, 1).await, Vec::new());
    assert_eq!(
        watcher.join().expect("the watcher"),
        20,
        "committed while the read waited"
    );
    drop(consumer);
}

/// Runs `scripts/interop-offsets.py` and returns the offset it prints.
fn other_client_offsets(
    client: &str,
    brokers: &str,
    topic: &str,
    group: &str,
    action: &[&str],
) -> i64 {
    let python = std::env::var("GRETE_PYTHON").expect("GRETE_PYTHON");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/interop-offsets.py"
    );
    let out = std::process::Command::new(python)
        .args([script, client, brokers, topic, group])
        .args(action)
        .output()
        .expect("run interop-offsets.py");
    assert!(
        out.status.success(),
        "{client} {action:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("an offset")
}

/// Offsets grete commits are where another client (`other`: PyKafka on 0.9, confluent-kafka
/// on tansu) of the group starts, and offsets it commits are what grete fetches and
/// starts from: both store the next offset to read.
pub async fn offsets_shared_with_another_client(
    client: &KafkaClient,
    list: &str,
    other: &str,
    prefix: &str,
) {
    let topic = filled_topic(client, &format!("{prefix}-c-offsets-{other}"), 50).await;
    let group = unique(&format!("{prefix}-{other}-group"));
    let config = SimpleConsumerConfig {
        consumer_group: Some(group.clone()),
        ..ending_after(5_000)
    };
    // grete commits after 12 records: the other client starts at 12.
    let mut consumer = topic
        .simple_consumer(config.clone())
        .await
        .expect("consumer");
    assert_eq!(read_n(&mut consumer, 12).await.len(), 12);
    consumer
        .close(Duration::from_secs(10))
        .await
        .expect("commit on close");
    let name = topic.name().to_owned();
    assert_eq!(
        other_client_offsets(other, list, &name, &group, &["next"]),
        12
    );
    // The other client reads 8 more and commits: grete fetches 20 and starts there.
    assert_eq!(
        other_client_offsets(other, list, &name, &group, &["commit", "8"]),
        20
    );
    let mut consumer = topic.simple_consumer(config).await.expect("consumer");
    assert_eq!(
        consumer.fetch_offsets(&group).await.expect("fetch"),
        vec![(0, 20)]
    );
    assert_eq!(
        read_n(&mut consumer, 1).await.first().map(|r| r.1),
        Some(20)
    );
    consumer
        .close(Duration::from_secs(10))
        .await
        .expect("close");
}

/// Mixing the message and batch APIs: the batch API starts at the message after the last
/// one delivered (the rest of the batch being read is given back, not lost).
pub async fn messages_then_batches_lose_nothing(client: &KafkaClient, prefix: &str) {
    let topic = filled_topic(client, &format!("{prefix}-c-mixed"), 100).await;
    let mut consumer = topic
        .simple_consumer_for(&[(0, Some(OffsetSpec::Earliest))], ending_after(5_000))
        .await
        .expect("consumer");
    let first = read_n(&mut consumer, 3).await;
    assert_eq!(first.iter().map(|r| r.1).collect::<Vec<_>>(), vec![0, 1, 2]);
    let mut next = 3;
    while next < 100 {
        let batch = consumer
            .next_batch()
            .await
            .expect("a batch before the timeout");
        for r in batch.records() {
            assert_eq!(r.expect("record").offset, next);
            next += 1;
        }
    }
    consumer.close(Duration::from_secs(5)).await.expect("close");
}
