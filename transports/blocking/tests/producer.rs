//! grete-blocking's producer API against the mock cluster served over TCP on 127.0.0.1
//! (the producer tests every transport runs are in the shared suite, `suite_blocking.rs`).

mod common;
use common::{client, open_sockets_to, MockServer};

use std::thread;
use std::time::{Duration, Instant};

use grete_blocking::{Delivered, KafkaClient, ProduceError, ProducerConfig, Record, Topic};

/// What the mock tests use: a linger long enough that only a flush or a full batch sends.
fn held(config: ProducerConfig) -> ProducerConfig {
    ProducerConfig {
        linger: Duration::from_secs(60),
        ..config
    }
}

/// A mock cluster of `brokers` with topic "t" of `partitions` (as many replicas as
/// brokers), a client of it, and the topic.
fn mock(brokers: usize, partitions: i32) -> (MockServer, KafkaClient, Topic) {
    let rf = i16::try_from(brokers).expect("a few brokers");
    let server = MockServer::start(brokers, |c| c.with_topic("t", partitions, rf));
    let client = client(&server);
    let topic = client.topic("t").expect("topic");
    (server, client, topic)
}

#[test]
fn try_send_on_a_full_queue_is_queue_full_until_a_flush_frees_room() {
    let (_server, client, topic) = mock(1, 1);
    let producer = topic
        .producer(held(ProducerConfig {
            max_queued_messages: 10,
            block_on_queue_full: false,
            ..ProducerConfig::default()
        }))
        .expect("producer");
    let mut handles = Vec::new();
    for i in 0..10 {
        let value = format!("v{i}");
        handles.push(
            producer
                .try_send(Record::value(value.as_bytes()))
                .expect("room"),
        );
    }
    assert_eq!(producer.queued_records(), 10);
    let full = producer.try_send(Record::value(b"one too many"));
    assert!(
        matches!(full, Err(ProduceError::QueueFull { records: 10, .. })),
        "{full:?}"
    );
    // Without block_on_queue_full, send fails the same way instead of waiting.
    let full = producer.send(Record::value(b"one too many"));
    assert!(
        matches!(full, Err(ProduceError::QueueFull { records: 10, .. })),
        "{full:?}"
    );
    producer.flush();
    assert_eq!(producer.queued_records(), 0);
    for (i, h) in handles.into_iter().enumerate() {
        let offset = i64::try_from(i).expect("small");
        assert_eq!(
            h.wait(),
            Ok(Delivered {
                partition: 0,
                offset
            })
        );
    }
    let more = producer
        .try_send(Record::value(b"room again"))
        .expect("room");
    assert_eq!(producer.close(Duration::from_secs(10)), 0);
    assert_eq!(more.wait().map(|d| d.offset), Ok(10));
    client.close();
}

#[test]
fn send_waits_for_room_when_the_queue_is_full() {
    let (_server, client, topic) = mock(1, 1);
    // Ten records at most wait; each batch goes after 20 ms: the 11th send waits for the
    // first batch's report.
    let producer = topic
        .producer(ProducerConfig {
            max_queued_messages: 10,
            block_on_queue_full: true,
            linger: Duration::from_millis(20),
            ..ProducerConfig::default()
        })
        .expect("producer");
    let handles: Vec<_> = (0..25)
        .map(|i| {
            let value = format!("v{i}");
            producer
                .send(Record::value(value.as_bytes()))
                .expect("send")
        })
        .collect();
    let offsets: Vec<i64> = handles
        .into_iter()
        .map(|h| h.wait().expect("delivered").offset)
        .collect();
    assert_eq!(offsets, (0..25).collect::<Vec<i64>>());
    assert_eq!(producer.close(Duration::from_secs(10)), 0);
    client.close();
}

#[test]
fn wait_timeout_is_none_until_the_batch_goes() {
    let (_server, client, topic) = mock(1, 1);
    let producer = topic
        .producer(held(ProducerConfig::default()))
        .expect("producer");
    let handle = producer.send(Record::value(b"later")).expect("send");
    assert_eq!(handle.record_id().partition, 0);
    // The batch lingers for 60 s: no outcome yet.
    assert_eq!(handle.wait_timeout(Duration::from_millis(50)), None);
    producer.flush();
    let outcome = handle.wait_timeout(Duration::from_secs(30));
    assert_eq!(
        outcome,
        Some(Ok(Delivered {
            partition: 0,
            offset: 0
        }))
    );
    client.close();
}

#[test]
fn reports_iterate_every_batch_and_end_when_the_producer_closes() {
    let (_server, client, topic) = mock(2, 3);
    let producer = topic
        .producer(held(ProducerConfig {
            batch_max_records: 7,
            ..ProducerConfig::default()
        }))
        .expect("producer");
    let reader = {
        let reports = producer.reports();
        thread::spawn(move || {
            let mut records = 0u64;
            for report in reports {
                assert!(report.result.is_ok(), "{report:?}");
                records += u64::from(report.count);
            }
            records
        })
    };
    for i in 0..100 {
        let value = format!("v{i}");
        let _ = producer
            .send(Record::value(value.as_bytes()))
            .expect("send");
    }
    assert_eq!(producer.lagged(), 0);
    // close flushes, waits for every outcome, then ends the report iterator.
    assert_eq!(producer.close(Duration::from_secs(30)), 0);
    assert_eq!(reader.join().expect("reader"), 100);
    client.close();
}

#[test]
fn the_delivery_callback_sees_every_record_before_flush_returns() {
    let (_server, client, topic) = mock(1, 2);
    let producer = topic.producer(ProducerConfig::default()).expect("producer");
    let counted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let c = counted.clone();
    producer.on_delivery(move |r| {
        assert!(r.result.is_ok(), "{r:?}");
        c.fetch_add(u64::from(r.count), std::sync::atomic::Ordering::SeqCst);
    });
    for i in 0..300 {
        let value = format!("v{i}");
        // No per-record handle: the callback gives the outcomes.
        producer
            .produce(Record::value(value.as_bytes()))
            .expect("produce");
    }
    producer.flush();
    assert_eq!(counted.load(std::sync::atomic::Ordering::SeqCst), 300);
    assert_eq!(producer.close(Duration::from_secs(10)), 0);
    client.close();
}

#[test]
fn a_producer_keeps_the_driver_running_after_the_client_is_dropped() {
    let (server, client, topic) = mock(1, 1);
    let producer = topic
        .sync_producer(ProducerConfig::default())
        .expect("producer");
    drop(topic);
    drop(client);
    for i in 0..3 {
        let d = producer
            .send(Record::value(b"still here"))
            .expect("delivered");
        assert_eq!(
            d,
            Delivered {
                partition: 0,
                offset: i
            }
        );
    }
    // The last handle goes: the driver closes the connections.
    drop(producer);
    let end = Instant::now() + Duration::from_secs(30);
    while open_sockets_to(server.ports[0]) > 0 {
        assert!(Instant::now() < end, "connections stay open");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn closing_the_client_ends_every_wait() {
    let (_server, client, topic) = mock(1, 1);
    let producer = topic
        .producer(held(ProducerConfig {
            max_queued_messages: 1,
            block_on_queue_full: true,
            ..ProducerConfig::default()
        }))
        .expect("producer");
    let first = producer.send(Record::value(b"held")).expect("send");
    // Blocked (or about to be, the result is the same): the queue is full and its batch
    // lingers for 60 s.
    let blocked = {
        let producer = producer.clone();
        thread::spawn(move || producer.send(Record::value(b"no room")).map(|_| ()))
    };
    let reports = {
        let mut reports = producer.reports();
        thread::spawn(move || reports.next().map(|r| r.count))
    };
    thread::sleep(Duration::from_millis(100));
    client.close();
    assert_eq!(blocked.join().expect("sender"), Err(ProduceError::Closed));
    // Closing failed the record, which was never sent; its report came before the end.
    let outcome = first.wait().expect_err("closed before it was sent");
    assert!(!outcome.possibly_persisted, "{outcome:?}");
    assert_eq!(reports.join().expect("reader"), Some(1));
    assert_eq!(
        producer.try_send(Record::value(b"late")).map(|_| ()),
        Err(ProduceError::Closed)
    );
}

#[test]
fn unread_reports_are_dropped_oldest_first_and_counted() {
    let (_server, client, topic) = mock(1, 1);
    // One report per record: more than the iterator keeps.
    let producer = topic
        .producer(ProducerConfig {
            batch_max_records: 1,
            ..ProducerConfig::default()
        })
        .expect("producer");
    let kept = grete_facade::STREAM_REPORTS;
    let sent = kept + 100;
    for _ in 0..sent {
        let _ = producer.send(Record::value(b"r")).expect("send");
    }
    producer.flush();
    assert_eq!(producer.lagged(), 100);
    let reports = producer.reports();
    assert_eq!(producer.close(Duration::from_secs(30)), 0);
    let firsts: Vec<u64> = reports.map(|r| r.first).collect();
    assert_eq!(firsts.len(), kept);
    assert_eq!(firsts[0], 100, "the oldest reports went first");
    client.close();
}
