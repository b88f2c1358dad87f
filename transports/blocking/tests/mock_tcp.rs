//! grete-blocking against grete's in-memory mock cluster served over real TCP sockets on
//! 127.0.0.1: runs everywhere (no brokers needed) and exercises the threads, the sockets
//! and the driver loop with several brokers, admin requests and broker failures.

mod common;
use common::{client, open_sockets_to, MockServer};

use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use grete::protocol::records::Record;
use grete_blocking::{Bootstrap, BrokerAddress, ClientConfig, KafkaClient, NewTopic};

fn records(n: i64) -> Vec<Record> {
    (0..n)
        .map(|i| Record {
            offset: i,
            value: Some(Bytes::from_static(b"x")),
            ..Default::default()
        })
        .collect()
}

fn latest(topic: &grete_blocking::Topic) -> Vec<(i32, i64)> {
    topic
        .latest_offsets()
        .expect("offsets")
        .into_iter()
        .map(|o| (o.partition, o.result.expect("offset")))
        .collect()
}

#[test]
fn three_brokers_topics_offsets_and_admin() {
    let server = MockServer::start(3, |c| c.with_topic("events", 4, 2));
    for p in 0..4 {
        let records = records(i64::from(p) + 1);
        server
            .with_cluster(move |c, now| c.append_records(now, "events", p, &records))
            .expect("append");
    }
    let client = client(&server);
    assert_eq!(client.brokers().len(), 3);
    assert_eq!(client.topics(), vec!["events".to_owned()]);
    let topic = client.topic("events").expect("topic");
    assert_eq!(topic.partitions().len(), 4);
    assert_eq!(latest(&topic), vec![(0, 1), (1, 2), (2, 3), (3, 4)]);
    let earliest: Vec<i64> = topic
        .earliest_offsets()
        .unwrap()
        .into_iter()
        .map(|o| o.result.unwrap())
        .collect();
    assert_eq!(earliest, vec![0; 4]);

    let created = client
        .create_topics(
            vec![NewTopic {
                name: "made".into(),
                num_partitions: 2,
                replication_factor: 3,
                configs: Vec::new(),
            }],
            Duration::from_secs(5),
        )
        .expect("create");
    assert_eq!(created[0].error, None);
    client.update_cluster().unwrap();
    assert!(client.topics().contains(&"made".to_owned()));
    let made = server.with_cluster(|c, _| c.partition_count("made"));
    assert_eq!(made, Some(2));
    let deleted = client
        .delete_topics(vec!["made".into()], Duration::from_secs(5))
        .expect("delete");
    assert_eq!(deleted[0].error, None);
    client.update_cluster().unwrap();
    assert!(!client.topics().contains(&"made".to_owned()));
    client.close();
}

#[test]
fn leader_down_fails_over() {
    let server = MockServer::start(3, |c| c.with_topic("events", 3, 3));
    let client = client(&server);
    let topic = client.topic("events").expect("topic");
    assert_eq!(latest(&topic), vec![(0, 0), (1, 0), (2, 0)]);
    let leader = server.with_cluster(|c, _| c.leader("events", 0)).unwrap();
    server.with_cluster(move |c, now| c.broker_down(now, leader));
    // The client sees the connection go, refreshes the metadata and asks the new leader.
    assert_eq!(latest(&topic), vec![(0, 0), (1, 0), (2, 0)]);
    client.update_cluster().unwrap();
    let moved = client.cluster().leader("events", 0);
    assert!(moved.is_some() && moved != Some(leader), "{moved:?}");
    client.close();
}

#[test]
fn dropping_every_handle_closes_the_connections() {
    let server = MockServer::start(2, |c| c.with_topic("t", 2, 1));
    let client = client(&server);
    let topic = client.topic("t").unwrap();
    latest(&topic);
    let open =
        |s: &MockServer| s.with_cluster(|c, _| c.connection_count(0) + c.connection_count(1));
    assert!(open(&server) > 0);
    drop(topic);
    drop(client);
    let start = Instant::now();
    while open(&server) > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "connections stay open"
        );
        thread::sleep(Duration::from_millis(20));
    }
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
