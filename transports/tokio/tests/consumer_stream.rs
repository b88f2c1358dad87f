//! The consumer as a `Stream` (what `StreamExt` users get), on a multi-thread tokio
//! runtime (the driver and the reader on different threads): every record produced comes
//! back once, in order, and the stream ends after `consumer_timeout_ms` without a record.
//!
//! Needs `GRETE_KAFKA09_BROKERS` (skips without it, fails instead with
//! `GRETE_REQUIRE_BROKERS=1`, as `scripts/test` runs it).

use std::time::Duration;

use futures_util::StreamExt;
use grete_tokio::config::{Bootstrap, BrokerAddress};
use grete_tokio::{
    ClientConfig, KafkaClient, OffsetSpec, ProducerConfig, Record, SimpleConsumerConfig,
};

#[test]
fn the_message_stream_yields_every_record_then_ends_at_the_timeout() {
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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let test = async {
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
            let name = format!("grete-consumer-stream-{}-{nanos}", std::process::id());
            let topic = client.topic(&name).await.expect("topic");
            let producer = topic.producer(ProducerConfig::default()).expect("producer");
            for i in 0..500 {
                let value = format!("s{i}");
                let record = Record {
                    partition: Some(0),
                    ..Record::value(value.as_bytes())
                };
                drop(producer.send(record).await.expect("send"));
            }
            producer.flush().await;
            assert_eq!(producer.close(Duration::from_secs(10)).await, 0);
            let config = SimpleConsumerConfig {
                consumer_timeout_ms: Some(2_000),
                ..SimpleConsumerConfig::default()
            };
            let consumer = topic
                .simple_consumer_for(&[(0, Some(OffsetSpec::Earliest))], config)
                .await
                .expect("consumer");
            // Spawned: the stream moves to another task (and thread).
            let reader = tokio::spawn(async move {
                let mut consumer = consumer;
                let mut read = Vec::new();
                while let Some(m) = consumer.next().await {
                    let m = m.expect("record");
                    read.push((m.offset, m.value.expect("value")));
                }
                consumer.close(Duration::from_secs(5)).await.expect("close");
                read
            });
            let read = reader.await.expect("reader");
            assert_eq!(read.len(), 500);
            for (i, (offset, value)) in read.iter().enumerate() {
                assert_eq!(*offset, i as i64);
                assert_eq!(&value[..], format!("s{i}").as_bytes());
            }
            client.close().await;
        };
        tokio::time::timeout(Duration::from_secs(90), test)
            .await
            .expect("the test took too long");
    });
}
