//! grete-blocking against grete's in-memory mock cluster served over real TCP sockets on
//! 127.0.0.1: runs everywhere (no brokers needed) and exercises the threads, the sockets
//! and the driver loop with several brokers, admin requests and broker failures.

mod common;
use common::open_sockets_to;

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use grete::mock::{MockCluster, MockConfig, MockTransmit};
use grete::protocol::records::Record;
use grete_blocking::{
    Bootstrap, BrokerAddress, BrokerVersion, ClientConfig, KafkaClient, NewTopic,
};

/// A mock cluster whose brokers listen on 127.0.0.1 ports.
struct MockServer {
    cluster: Arc<Mutex<MockCluster>>,
    ports: Vec<u16>,
    stop: Arc<AtomicBool>,
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl MockServer {
    fn start(config: MockConfig) -> MockServer {
        MockServer::start_with(config, &[])
    }

    /// Like [`start`](Self::start), but the brokers in `black_holes` accept connections
    /// and then never read nor answer.
    fn start_with(mut config: MockConfig, black_holes: &[i32]) -> MockServer {
        let listeners: Vec<TcpListener> = config
            .brokers
            .iter()
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
            .collect();
        let mut ports = Vec::new();
        for (b, l) in config.brokers.iter_mut().zip(&listeners) {
            b.host = "127.0.0.1".into();
            b.port = l.local_addr().expect("addr").port();
            ports.push(b.port);
        }
        let cluster = Arc::new(Mutex::new(MockCluster::new(config)));
        let stop = Arc::new(AtomicBool::new(false));
        let ids: Vec<i32> = cluster
            .lock()
            .unwrap()
            .config()
            .brokers
            .iter()
            .map(|b| b.id)
            .collect();
        for ((listener, port), id) in listeners.into_iter().zip(ports.clone()).zip(ids) {
            let (cluster, stop) = (cluster.clone(), stop.clone());
            let black_hole = black_holes.contains(&id);
            listener.set_nonblocking(true).expect("nonblocking");
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((s, _)) if black_hole => {
                            let stop = stop.clone();
                            thread::spawn(move || {
                                while !stop.load(Ordering::SeqCst) {
                                    thread::sleep(Duration::from_millis(20));
                                }
                                drop(s);
                            });
                        }
                        Ok((s, _)) => {
                            let (cluster, stop) = (cluster.clone(), stop.clone());
                            thread::spawn(move || serve(s, port, &cluster, &stop));
                        }
                        Err(_) => thread::sleep(Duration::from_millis(5)),
                    }
                }
            });
        }
        MockServer {
            cluster,
            ports,
            stop,
        }
    }

    fn cluster(&self) -> MutexGuard<'_, MockCluster> {
        self.cluster.lock().unwrap()
    }

    fn bootstrap(&self) -> String {
        let list: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        list.join(",")
    }
}

/// One client connection: socket bytes in and out of the mock broker, polled every 2 ms.
fn serve(mut s: TcpStream, port: u16, cluster: &Mutex<MockCluster>, stop: &AtomicBool) {
    let _ = s.set_read_timeout(Some(Duration::from_millis(2)));
    let Ok(conn) = cluster
        .lock()
        .unwrap()
        .connect_addr(Instant::now(), "127.0.0.1", port)
    else {
        return; // A down broker: close at once.
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let read = match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => 0,
            Err(_) => break,
        };
        let now = Instant::now();
        let mut c = cluster.lock().unwrap();
        if read > 0 {
            c.handle_data(now, conn, &buf[..read]);
        }
        if c.poll_timeout().is_some_and(|t| t <= now) {
            c.handle_timeout(now);
        }
        out.clear();
        let mut closed = false;
        while let Some(t) = c.poll_transmit(now, conn, &mut out) {
            if t == MockTransmit::Closed {
                closed = true;
                break;
            }
        }
        if !closed && !c.is_open(conn) {
            closed = true;
        }
        drop(c);
        if !out.is_empty() && s.write_all(&out).is_err() {
            break;
        }
        if closed {
            let _ = s.shutdown(std::net::Shutdown::Both);
            return;
        }
    }
    cluster.lock().unwrap().close(conn);
}

fn client(server: &MockServer) -> KafkaClient {
    KafkaClient::connect(ClientConfig {
        bootstrap: Bootstrap::Brokers(BrokerAddress::parse(&server.bootstrap()).unwrap()),
        request_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        metadata_max_age: Duration::from_secs(60),
        // The mock brokers are modern: ask them for their API versions.
        broker_version: BrokerVersion::new(2, 8, 0),
        ..ClientConfig::default()
    })
    .expect("connect")
}

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
    let server = MockServer::start(MockConfig::new(3).with_topic("events", 4, 2));
    for p in 0..4 {
        let now = Instant::now();
        server
            .cluster()
            .append_records(now, "events", p, &records(i64::from(p) + 1))
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
    assert_eq!(server.cluster().partition_count("made"), Some(2));
    let deleted = client
        .delete_topics(vec!["made".into()], Duration::from_secs(5))
        .expect("delete");
    assert_eq!(deleted[0].error, None);
    client.update_cluster().unwrap();
    assert!(!client.topics().contains(&"made".to_owned()));
    client.close();
}

/// Issue #6, item 7: the driver copied the whole cluster into the handles' snapshot after
/// every operation. Operations that leave the metadata alone now share one.
#[test]
fn cluster_is_not_copied_after_every_operation() {
    let server = MockServer::start(MockConfig::new(3).with_topic("events", 4, 2));
    let client = KafkaClient::connect(ClientConfig {
        bootstrap: Bootstrap::Brokers(BrokerAddress::parse(&server.bootstrap()).unwrap()),
        // No refresh by age during the test, however slow the machine.
        metadata_max_age: Duration::from_secs(24 * 3600),
        broker_version: BrokerVersion::new(2, 8, 0),
        ..ClientConfig::default()
    })
    .expect("connect");
    let topic = client.topic("events").expect("topic");
    let before = client.cluster_snapshot();
    for _ in 0..20 {
        assert_eq!(latest(&topic), vec![(0, 0), (1, 0), (2, 0), (3, 0)]);
    }
    assert!(Arc::ptr_eq(&before, &client.cluster_snapshot()));
    // A change is published, once.
    client.update_cluster().expect("update_cluster");
    let after = client.cluster_snapshot();
    assert!(!Arc::ptr_eq(&before, &after));
    assert!(Arc::ptr_eq(&after, &client.cluster_snapshot()));
}

#[test]
fn leader_down_fails_over() {
    let server = MockServer::start(MockConfig::new(3).with_topic("events", 3, 3));
    let client = client(&server);
    let topic = client.topic("events").expect("topic");
    assert_eq!(latest(&topic), vec![(0, 0), (1, 0), (2, 0)]);
    let leader = server.cluster().leader("events", 0).unwrap();
    let now = Instant::now();
    server.cluster().broker_down(now, leader);
    // The client sees the connection go, refreshes the metadata and asks the new leader.
    assert_eq!(latest(&topic), vec![(0, 0), (1, 0), (2, 0)]);
    client.update_cluster().unwrap();
    let moved = client.cluster().leader("events", 0);
    assert!(moved.is_some() && moved != Some(leader), "{moved:?}");
    client.close();
}

#[test]
fn dropping_every_handle_closes_the_connections() {
    let server = MockServer::start(MockConfig::new(2).with_topic("t", 2, 1));
    let client = client(&server);
    let topic = client.topic("t").unwrap();
    latest(&topic);
    let open = |s: &MockServer| {
        let c = s.cluster();
        c.connection_count(0) + c.connection_count(1)
    };
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
    let server = MockServer::start(MockConfig::new(3).with_topic("events", 6, 2));
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

    let server = MockServer::start_with(MockConfig::new(2).with_topic("t", 2, 1), &[1]);
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
