//! Producing allocates nothing per record in steady state, through the whole tokio
//! transport path: `Producer::try_send` → the shared core's lock → `Client::produce` →
//! the partition's open batch. Counted by a global allocator on the sending thread only.
//!
//! Needs `GRETE_KAFKA09_BROKERS` (skips without it, fails instead with
//! `GRETE_REQUIRE_BROKERS=1`, as `scripts/test` runs it).

use std::time::Duration;

use grete_tokio::config::{Bootstrap, BrokerAddress};
use grete_tokio::{ClientConfig, KafkaClient, ProducerConfig, Record};

#[path = "../../testsupport/alloc.rs"]
mod alloc;

const RECORDS: usize = 50_000;

#[test]
fn try_send_allocates_nothing_per_record() {
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
        let name = format!("grete-alloc-{}", std::process::id());
        let topic = client.topic(&name).await.expect("topic");
        let config = ProducerConfig {
            max_queued_messages: 4 * RECORDS,
            ..ProducerConfig::pykafka()
        };
        let producer = topic.producer(config).expect("producer");
        let value = [b'x'; 100];
        let send = |n: usize| {
            for _ in 0..n {
                // The delivery future is a handle (no allocation); dropping it does not
                // cancel the record.
                drop(producer.try_send(Record::value(&value)).expect("room"));
            }
        };
        // Warm-up: batch buffers grow to their size, queues to theirs.
        send(RECORDS);
        producer.flush().await;
        send(RECORDS);
        producer.flush().await;
        // Steady state: the sending thread (the driver does not run meanwhile: this is
        // a current-thread runtime and nothing is awaited) allocates nothing.
        let (allocations, ()) = alloc::counting(|| send(RECORDS));
        producer.flush().await;
        assert_eq!(producer.close(Duration::from_secs(10)).await, 0);
        client.close().await;
        // Waking the driver when a batch opens or fills goes through tokio's scheduler,
        // which may grow its run queue once: a handful at most, never one per record.
        assert!(
            allocations <= 4,
            "{allocations} allocations for {RECORDS} records"
        );
    });
}
