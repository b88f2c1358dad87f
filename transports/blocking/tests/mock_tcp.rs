//! grete-blocking's threads sharing one client, against grete's in-memory mock cluster
//! served over TCP on 127.0.0.1: many callers at once, and callers served while another
//! waits on a peer that never reads (what every transport is tested for is in the shared
//! suite, `suite_blocking.rs`).

mod common;
use common::{client, open_sockets_to, MockServer};

use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use grete_blocking::{Bootstrap, BrokerAddress, ClientConfig, KafkaClient};

fn latest(topic: &grete_blocking::Topic) -> Vec<(i32, i64)> {
    topic
        .latest_offsets()
        .expect("offsets")
        .into_iter()
        .map(|o| (o.partition, o.result.expect("offset")))
        .collect()
}

#[test]
fn many_threads_share_one_client() {
    let server = MockServer::start(3, |c| c.with_topic("events", 6, 2));
    let client = client(&server);
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            thread::spawn(move || {
                for _ in 0..20 {
                    let t = client.topic("events").expect("topic");
                    assert_eq!(latest(&t).len(), 6);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
    client.close();
}

#[test]
fn a_peer_that_never_reads_does_not_block_the_driver() {
    use grete::protocol::messages::{produce_request, ProduceRequest};
    use grete_blocking::{RequestBody, Target};

    let server = MockServer::start_with(2, &[1], |c| c.with_topic("t", 2, 1));
    // As for a 0.9 broker: no ApiVersions probe, so the connection to broker 1 is ready at
    // once and the big write starts right away.
    let client = KafkaClient::connect(ClientConfig {
        bootstrap: Bootstrap::Brokers(vec![BrokerAddress::new("127.0.0.1", server.ports[0])]),
        request_timeout: Duration::from_secs(10),
        ..ClientConfig::default()
    })
    .expect("connect");
    // 48 MiB for broker 1, which never reads: more than the socket buffers hold.
    let big = ProduceRequest {
        acks: 1,
        timeout_ms: 1000,
        topic_data: vec![produce_request::TopicProduceData {
            name: "t".into(),
            partition_data: vec![produce_request::PartitionProduceData {
                index: 0,
                records: Some(Bytes::from(vec![0u8; 48 << 20])),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let stuck = {
        let client = client.clone();
        thread::spawn(move || {
            let start = Instant::now();
            let result = client.send(Target::Broker(1), RequestBody::Produce(big));
            (result.is_err(), start.elapsed())
        })
    };
    thread::sleep(Duration::from_millis(300));
    // Meanwhile the driver keeps serving everything else (broker 0): every call is answered
    // while the stuck request is still waiting for its deadline (no wall-clock bound per
    // call, which a loaded machine could break).
    for _ in 0..10 {
        client.update_cluster().expect("metadata from broker 0");
    }
    assert!(
        !stuck.is_finished(),
        "the metadata calls were served only after the stuck request ended"
    );
    let (failed, took) = stuck.join().expect("thread");
    assert!(failed, "a request to a broker that never reads must fail");
    // request_timeout is 10 s; the bound is only a safety net.
    assert!(took < Duration::from_secs(60), "{took:?}");
    // The connection's socket is released (its reader and writer threads each hold a
    // handle on it, so they have ended too).
    let end = Instant::now() + Duration::from_secs(30);
    while open_sockets_to(server.ports[1]) > 0 {
        assert!(
            Instant::now() < end,
            "the connection to the peer that never reads is still open"
        );
        thread::sleep(Duration::from_millis(50));
    }
    client.close();
}
