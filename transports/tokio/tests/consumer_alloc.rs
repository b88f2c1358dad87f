//! Reading fetched batches through the batch API allocates nothing per record, on the
//! whole tokio path: `SimpleConsumer::next_batch` hands out the core's `FetchedBatch`
//! (one reference count on the Fetch response's buffer) and `records()` borrows keys,
//! values and headers from it. Counted by a global allocator on the reading thread while
//! it iterates the records.
//!
//! Needs `GRETE_KAFKA09_BROKERS` (skips without it, fails instead with
//! `GRETE_REQUIRE_BROKERS=1`, as `scripts/test` runs it).

use std::time::Duration;

use grete_tokio::config::{Bootstrap, BrokerAddress};
use grete_tokio::{
    ClientConfig, ConsumerConfig, KafkaClient, OffsetSpec, ProducerConfig, Record,
    SimpleConsumerConfig,
};

#[path = "../../testsupport/alloc.rs"]
mod alloc;

const RECORDS: usize = 20_000;

#[test]
fn iterating_fetched_batches_allocates_nothing_per_record() {
    let list = match std::env::var("GRETE_KAFKA09_BROKERS") {
        Ok(l) if !l.is_empty() => l,
        _ => {
            assert!(
                std::env::var("GRETE_REQUIRE_BROKERS").as_deref() != Ok("1"),
                "GRETE_KAFKA09_BROKERS is not set but GRETE_REQUIRE_BROKERS=1"
            );
            return;
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = KafkaClient::connect(ClientConfig {
            bootstrap: Bootstrap::Brokers(BrokerAddress::parse(&list).expect("list")),
            request_timeout: Duration::from_secs(15),
            ..ClientConfig::default()
        })
        .await
        .expect("connect");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let name = format!("grete-consumer-alloc-{}-{nanos}", std::process::id());
        let topic = client.topic(&name).await.expect("topic");
        let producer = topic
            .producer(ProducerConfig {
                max_queued_messages: 2 * RECORDS,
                ..ProducerConfig::default()
            })
            .expect("producer");
        let value = [b'x'; 100];
        for i in 0..RECORDS {
            let key = format!("key-{i}");
            let record = Record {
                partition: Some(0),
                ..Record::keyed(key.as_bytes(), &value)
            };
            drop(producer.try_send(record).expect("room"));
        }
        producer.flush().await;
        assert_eq!(producer.close(Duration::from_secs(10)).await, 0);

        let config = SimpleConsumerConfig {
            consumer: ConsumerConfig {
                queued_max_messages: 2 * RECORDS,
                ..ConsumerConfig::default()
            },
            consumer_timeout_ms: Some(10_000),
            ..SimpleConsumerConfig::default()
        };
        let mut consumer = topic
            .simple_consumer_for(&[(0, Some(OffsetSpec::Earliest))], config)
            .await
            .expect("consumer");
        let (mut records, mut bytes, mut allocations, mut batches) = (0usize, 0usize, 0u64, 0);
        while records < RECORDS {
            let batch = consumer
                .next_batch()
                .await
                .expect("a batch before the timeout");
            batches += 1;
            let (n, (count, len)) = alloc::counting(|| {
                let (mut count, mut len) = (0usize, 0usize);
                for r in batch.records() {
                    let r = r.expect("record");
                    len += r.key.map_or(0, <[u8]>::len) + r.value.map_or(0, <[u8]>::len);
                    len += r.headers.count();
                    count += 1;
                }
                (count, len)
            });
            allocations += n;
            records += count;
            bytes += len;
        }
        assert_eq!(records, RECORDS);
        assert!(bytes >= RECORDS * 100);
        assert!(batches > 1, "{batches} batches");
        consumer.close(Duration::from_secs(5)).await.expect("close");
        client.close().await;
        assert_eq!(
            allocations, 0,
            "{allocations} allocations for {RECORDS} records"
        );
    });
}
