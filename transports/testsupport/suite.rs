//! One test suite for every async transport. A transport's test file includes it with
//!
//! ```ignore
//! use grete_tokio as transport;          // gives transport::KafkaClient
//! fn block_on(test: impl std::future::Future<Output = ()>) { /* run it on the runtime */ }
//! fn alive_tasks() -> Option<usize> { /* tasks alive on the runtime, if it can tell */ }
//! #[path = "../../testsupport/suite.rs"]
//! mod suite;
//! ```
//!
//! Broker tests read the addresses `scripts/test` exports (see `scripts/env.sh`) and skip
//! when they are not set, unless `GRETE_REQUIRE_BROKERS=1`. The bad-input tests run
//! tiny servers on 127.0.0.1 in threads of their own. Every test is bounded in time (the
//! including file's `block_on` enforces an overall limit too) and every loop in count.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use grete::client::{NewTopic, PartitionOffset, Target};
use grete::config::{
    Bootstrap, BrokerAddress, BrokerVersion, ClientConfig, SaslConfig, SaslMechanism, TlsConfig,
};
use grete::error::{Error, TransportErrorKind};
use grete::protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use grete::protocol::messages::{ApiKey, ProduceRequest, RequestBody, ResponseBody};
use grete::protocol::records::legacy::{encode_message_set, MessageSetOptions};
use grete::protocol::records::{Record, TimestampType};
use grete::protocol::ErrorCode;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::transport::{KafkaClient, Topic};

macro_rules! tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                super::block_on(bodies::$name());
            }
        )*
    };
}

tests!(
    kafka09_single_metadata_and_auto_create,
    kafka09_single_offsets_after_producing,
    kafka09_concurrent_operations_share_one_client,
    kafka09_admin_apis_are_unsupported,
    kafka09_cluster3_leaders_spread_and_replicas,
    kafka09_zookeeper_bootstrap_single,
    kafka09_zookeeper_bootstrap_cluster3,
    kafka09_zookeeper_missing_chroot_is_an_error,
    zookeeper_unreachable_is_an_error_within_the_timeout,
    tansu_negotiates_and_creates_and_deletes_topics,
    tansu_sasl_scram_right_and_wrong_password,
    tls_with_the_right_ca,
    tls_server_name_override,
    tls_with_a_client_certificate_configured,
    tls_with_a_wrong_ca_fails_clearly,
    tls_with_a_wrong_server_name_fails_clearly,
    refused_connection_is_a_typed_error,
    refused_connection_is_a_typed_error_modern,
    unresolvable_host_is_a_resolve_error,
    hanging_connect_is_a_connect_timeout,
    non_kafka_server_is_a_protocol_error,
    non_kafka_server_is_a_protocol_error_modern,
    broker_closing_mid_response_is_a_typed_error,
    broker_closing_mid_response_is_a_typed_error_modern,
    oversize_frame_is_a_protocol_error,
    oversize_frame_is_a_protocol_error_modern,
    negative_frame_size_is_a_protocol_error,
    negative_frame_size_is_a_protocol_error_modern,
    silent_server_is_a_timeout,
    silent_server_is_a_timeout_modern,
    tls_without_verification_is_explicit_and_works,
    tls_unreadable_files_are_config_errors,
    tls_handshake_without_answer_is_a_connect_timeout,
    tls_handshake_without_answer_is_a_connect_timeout_modern,
    slow_loris_tls_handshake_is_a_connect_timeout,
    slow_loris_tls_handshake_is_a_connect_timeout_modern,
    plaintext_to_the_tls_port_fails_within_the_timeout,
    calls_after_close_fail_with_misuse,
    mock_cluster_over_tcp_metadata_offsets_and_admin,
    cluster_is_not_copied_after_every_operation,
    mock_cluster_over_tcp_broker_down_fails_over,
    mock_cluster_over_tcp_sasl_plain_and_scram,
    mock_cluster_over_tcp_sasl_wrong_password_is_a_clear_error,
    peer_that_never_reads_releases_the_socket_and_task,
    dropping_every_handle_closes_the_connections,
);

// The producer against real brokers, read back by other clients.
tests!(
    kafka09_producer_every_codec_and_acks_read_back_by_kcat,
    kafka09_producer_records_read_by_pykafka,
    kafka09_keyed_records_land_where_librdkafka_puts_them,
    tansu_producer_every_codec_read_back_by_confluent_kafka,
    sync_producer_returns_each_offset,
    mock_cluster_over_tcp_producer_survives_a_broker_down,
    mock_cluster_over_tcp_producer_callback_and_report_stream,
);

// The consumer against real brokers and the mock.
tests!(
    kafka09_consumer_reads_what_grete_wrote,
    tansu_consumer_reads_what_grete_wrote,
    kafka09_consumer_reads_what_kcat_wrote,
    kafka09_consumer_reads_what_pykafka_wrote,
    tansu_consumer_reads_what_confluent_kafka_wrote,
    kafka09_consumer_seek_pause_resume_and_batches,
    kafka09_one_consumer_reads_several_topics,
    tansu_one_consumer_reads_several_topics,
    kafka09_consumer_commit_then_a_new_consumer_resumes,
    tansu_consumer_commit_then_a_new_consumer_resumes,
    kafka09_consumer_slow_reader_gets_every_record,
    kafka09_consumer_out_of_range_is_reported_then_reset,
    kafka09_consumer_auto_commit_commits_while_waiting,
    kafka09_consumer_messages_then_batches_lose_nothing,
    kafka09_consumer_offsets_shared_with_pykafka,
    tansu_consumer_offsets_shared_with_confluent_kafka,
    mock_cluster_over_tcp_consumer_close_with_brokers_down_is_bounded,
);

#[path = "common.rs"]
mod common;
#[path = "readback.rs"]
mod readback;
use common::*;

// ---- helpers ------------------------------------------------------------------------

use producing::unique;

fn config(bootstrap: Bootstrap) -> ClientConfig {
    ClientConfig {
        client_id: "grete-async-suite".into(),
        bootstrap,
        request_timeout: Duration::from_secs(15),
        connect_timeout: Duration::from_secs(5),
        ..ClientConfig::default()
    }
}

fn brokers(list: &str) -> ClientConfig {
    config(Bootstrap::Brokers(
        BrokerAddress::parse(list).expect("broker list"),
    ))
}

/// A client that asks brokers for their API versions (falling back to 2.8's).
fn modern(list: &str) -> ClientConfig {
    ClientConfig {
        broker_version: BrokerVersion::parse("2.8").expect("version"),
        ..brokers(list)
    }
}

/// A client with short timeouts, for the bad-input tests.
fn impatient(port: u16) -> ClientConfig {
    ClientConfig {
        request_timeout: Duration::from_secs(3),
        connect_timeout: Duration::from_secs(2),
        reconnect_backoff: Duration::from_millis(50),
        reconnect_backoff_max: Duration::from_millis(200),
        ..brokers(&format!("127.0.0.1:{port}"))
    }
}

/// [`impatient`] with a modern configuration: every connection starts with ApiVersions.
fn impatient_modern(port: u16) -> ClientConfig {
    ClientConfig {
        broker_version: BrokerVersion::parse("2.8").expect("version"),
        ..impatient(port)
    }
}

/// Connects with `config` and expects it to fail within its timeouts (see
/// [`assert_bounded_failure`]).
async fn connect_fails(config: ClientConfig) -> Error {
    let limit = config.request_timeout + config.connect_timeout;
    let start = Instant::now();
    assert_bounded_failure(KafkaClient::connect(config).await, limit, start)
}

async fn connect(config: ClientConfig) -> KafkaClient {
    match KafkaClient::connect(config).await {
        Ok(c) => c,
        Err(e) => panic!("connect: {e}"),
    }
}

/// Produces `values` to `topic`/`partition` with Produce (magic 0 messages), waiting for
/// every in-sync replica (ListOffsets answers up to the high watermark only).
async fn produce(client: &KafkaClient, topic: &str, partition: i32, values: &[&str]) {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            offset: i as i64,
            timestamp: -1,
            timestamp_type: TimestampType::CreateTime,
            key: None,
            value: Some(Bytes::from(v.to_string())),
            headers: Vec::new(),
        })
        .collect();
    let mut set = Vec::new();
    let options = MessageSetOptions {
        magic: 0,
        ..MessageSetOptions::default()
    };
    encode_message_set(&mut set, &options, &records).expect("message set");
    let request = ProduceRequest {
        acks: -1,
        timeout_ms: 5000,
        topic_data: vec![TopicProduceData {
            name: topic.to_owned(),
            partition_data: vec![PartitionProduceData {
                index: partition,
                records: Some(Bytes::from(set)),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let target = Target::Leader {
        topic: topic.to_owned(),
        partition,
    };
    match client.send(target, RequestBody::Produce(request)).await {
        Ok(ResponseBody::Produce(r)) => {
            let codes: Vec<i16> = r
                .responses
                .iter()
                .flat_map(|t| t.partition_responses.iter().map(|p| p.error_code))
                .collect();
            assert_eq!(codes, vec![0], "produce error codes");
        }
        other => panic!("produce: {other:?}"),
    }
}

type Pending<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'a>>;

/// Polls every future until all are done (at most 10 000 wake-ups), on the current task.
async fn join_all<T>(futures: Vec<Pending<'_, T>>) -> Vec<T> {
    let mut futures: Vec<_> = futures.into_iter().map(Some).collect();
    let mut out: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    let mut polls = 0u32;
    std::future::poll_fn(|cx| {
        polls += 1;
        assert!(polls < 10_000, "join_all: too many wake-ups");
        for (slot, result) in futures.iter_mut().zip(out.iter_mut()) {
            if let Some(f) = slot {
                if let std::task::Poll::Ready(v) = f.as_mut().poll(cx) {
                    *result = Some(v);
                    *slot = None;
                }
            }
        }
        if futures.iter().all(Option::is_none) {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

fn offsets(result: Result<Vec<PartitionOffset>, Error>) -> Vec<(i32, i64)> {
    let mut out: Vec<(i32, i64)> = result
        .expect("offsets")
        .into_iter()
        .map(|p| (p.partition, p.result.expect("partition offset")))
        .collect();
    out.sort_unstable();
    out
}

async fn timed<T>(limit: Duration, what: &str, f: impl std::future::Future<Output = T>) -> T {
    let start = Instant::now();
    let out = f.await;
    let took = start.elapsed();
    assert!(took <= limit, "{what} took {took:?}, more than {limit:?}");
    out
}

/// Generates a CA nobody else uses, with openssl; `None` (skip) without openssl.
fn wrong_ca() -> Option<PathBuf> {
    let dir = std::env::temp_dir().join(unique("grete-wrong-ca"));
    std::fs::create_dir_all(&dir).ok()?;
    let pem = dir.join("ca.pem");
    let status = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=grete wrong CA", "-keyout"])
        .arg(dir.join("ca.key"))
        .arg("-out")
        .arg(&pem)
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => Some(pem),
        _ => {
            assert!(
                std::env::var("GRETE_REQUIRE_BROKERS").as_deref() != Ok("1"),
                "openssl is needed to generate a CA"
            );
            eprintln!("skipped: openssl not available");
            None
        }
    }
}

/// Whether `e` is the transport error `kind` itself: a connection that failed before it
/// was ever ready with an error retrying cannot fix (TLS) fails the operation at once.
fn is_transport(e: &Error, kind: TransportErrorKind) -> bool {
    matches!(e, Error::Transport(t) if t.kind == kind)
}

/// Whether `e` is the timeout of an operation the client retried after connections failed
/// with `kind`: the timeout names either the request that was in flight at the deadline
/// or, if none was, the last connection error, which must be of `kind`.
fn is_timeout_after(e: &Error, kind: TransportErrorKind) -> bool {
    match e {
        Error::Timeout { what } => {
            !what.contains("last error") || what.contains(&format!("{kind:?}"))
        }
        _ => false,
    }
}

/// Whether `e` is the broker error `code` itself (a refused login fails at once).
fn is_broker_error(e: &Error, code: ErrorCode) -> bool {
    matches!(e, Error::Broker { code: c, .. } if *c == code)
}

/// Expects `result` to be an error. `limit` is what the configuration allows; the check
/// on the time taken adds a generous margin: it is only a safety net against a hang, the
/// tests are about which error comes.
fn assert_bounded_failure(
    result: Result<KafkaClient, Error>,
    limit: Duration,
    start: Instant,
) -> Error {
    let took = start.elapsed();
    let limit = limit + Duration::from_secs(20);
    assert!(took <= limit, "failing took {took:?}, more than {limit:?}");
    match result {
        Ok(_) => panic!("connect succeeded against a bad server"),
        Err(e) => {
            eprintln!("failed as expected after {took:?}: {e}");
            e
        }
    }
}

/// Sleeps `d` without blocking the runtime (a helper thread wakes the task).
async fn pause(d: Duration) {
    use std::sync::Mutex;
    use std::task::{Poll, Waker};
    let state: Arc<Mutex<(bool, Option<Waker>)>> = Arc::new(Mutex::new((false, None)));
    let waker_side = state.clone();
    thread::spawn(move || {
        thread::sleep(d);
        let mut s = waker_side.lock().unwrap_or_else(|e| e.into_inner());
        s.0 = true;
        if let Some(w) = s.1.take() {
            w.wake();
        }
    });
    std::future::poll_fn(|cx| {
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        if s.0 {
            Poll::Ready(())
        } else {
            s.1 = Some(cx.waker().clone());
            Poll::Pending
        }
    })
    .await
}

/// Waits (polling every 50 ms, at most `limit`) until `done` holds.
async fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        pause(Duration::from_millis(50)).await;
    }
}

mod bodies {
    use super::*;

    /// Bad-peer tests, each run with the 0.9 configuration and with a modern one (every
    /// connection starts with ApiVersions).
    macro_rules! both_configurations {
        ($($body:ident: $old:ident, $modern:ident;)*) => {$(
            pub async fn $old() {
                $body(impatient).await;
            }

            pub async fn $modern() {
                $body(impatient_modern).await;
            }
        )*};
    }

    both_configurations! {
        refused_connection:
            refused_connection_is_a_typed_error,
            refused_connection_is_a_typed_error_modern;
        non_kafka_server:
            non_kafka_server_is_a_protocol_error,
            non_kafka_server_is_a_protocol_error_modern;
        broker_closing_mid_response:
            broker_closing_mid_response_is_a_typed_error,
            broker_closing_mid_response_is_a_typed_error_modern;
        oversize_frame:
            oversize_frame_is_a_protocol_error,
            oversize_frame_is_a_protocol_error_modern;
        negative_frame_size:
            negative_frame_size_is_a_protocol_error,
            negative_frame_size_is_a_protocol_error_modern;
        silent_server: silent_server_is_a_timeout, silent_server_is_a_timeout_modern;
        tls_handshake_without_answer:
            tls_handshake_without_answer_is_a_connect_timeout,
            tls_handshake_without_answer_is_a_connect_timeout_modern;
        slow_loris_tls:
            slow_loris_tls_handshake_is_a_connect_timeout,
            slow_loris_tls_handshake_is_a_connect_timeout_modern;
    }

    pub async fn kafka09_single_metadata_and_auto_create() {
        let Some(list) = env("GRETE_KAFKA09_BROKERS") else {
            return;
        };
        let client = connect(brokers(&list)).await;
        let ids: Vec<i32> = client.brokers().iter().map(|b| b.id).collect();
        assert_eq!(ids, vec![0]);
        let name = unique("grete-async-auto");
        assert!(!client.topics().contains(&name));
        let topic: Topic = client.topic(&name).await.expect("auto-created topic");
        assert_eq!(topic.name(), name);
        assert_eq!(topic.partitions().len(), 1, "{:?}", topic.partitions());
        let p = &topic.partitions()[0];
        assert_eq!((p.id, p.leader), (0, Some(0)));
        assert_eq!(p.replicas, vec![0]);
        assert_eq!(p.isr, vec![0]);
        assert!(client.topics().contains(&name), "{:?}", client.topics());
        client.update_cluster().await.expect("update_cluster");
        assert!(client.topics().contains(&name));
        assert!(client.cluster().topic(&name).is_some());
        client.close().await;
    }

    pub async fn kafka09_single_offsets_after_producing() {
        let Some(list) = env("GRETE_KAFKA09_BROKERS") else {
            return;
        };
        let client = connect(brokers(&list)).await;
        let name = unique("grete-async-offsets");
        let topic = client.topic(&name).await.expect("topic");
        assert_eq!(offsets(topic.earliest_offsets().await), vec![(0, 0)]);
        assert_eq!(offsets(topic.latest_offsets().await), vec![(0, 0)]);
        produce(&client, &name, 0, &["a", "b", "c"]).await;
        produce(&client, &name, 0, &["d", "e"]).await;
        assert_eq!(offsets(topic.earliest_offsets().await), vec![(0, 0)]);
        assert_eq!(offsets(topic.latest_offsets().await), vec![(0, 5)]);
        assert_eq!(offsets(topic.offsets_before(-1).await), vec![(0, 5)]);
        assert_eq!(offsets(topic.offsets_before(-2).await), vec![(0, 0)]);
        // By timestamp (ListOffsets v0 on 0.9): an hour from now is past every message.
        let later = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
            + 3_600_000;
        assert_eq!(offsets(topic.offsets_before(later).await), vec![(0, 5)]);
        client.close().await;
    }

    pub async fn kafka09_concurrent_operations_share_one_client() {
        let Some(list) = env("GRETE_KAFKA09_BROKERS") else {
            return;
        };
        let client = connect(brokers(&list)).await;
        let base = unique("grete-async-many");
        let names: Vec<String> = (0..8).map(|i| format!("{base}-{i}")).collect();
        let topics = join_all(
            names
                .iter()
                .map(|n| Box::pin(client.topic(n)) as Pending<'_, Result<Topic, Error>>)
                .collect(),
        )
        .await;
        let topics: Vec<Topic> = topics.into_iter().map(|t| t.expect("topic")).collect();
        assert_eq!(topics.len(), names.len());
        let all = join_all(
            topics
                .iter()
                .map(|t| {
                    Box::pin(t.latest_offsets()) as Pending<'_, Result<Vec<PartitionOffset>, Error>>
                })
                .collect(),
        )
        .await;
        for result in all {
            assert_eq!(offsets(result), vec![(0, 0)]);
        }
        for name in &names {
            assert!(client.topics().contains(name), "{name} missing");
        }
        client.close().await;
    }

    pub async fn kafka09_admin_apis_are_unsupported() {
        let Some(list) = env("GRETE_KAFKA09_BROKERS") else {
            return;
        };
        let client = connect(brokers(&list)).await;
        let new = NewTopic {
            name: unique("grete-async-create"),
            num_partitions: 1,
            replication_factor: 1,
            configs: Vec::new(),
        };
        let e = timed(Duration::from_secs(5), "create_topics", async {
            client
                .create_topics(vec![new], Duration::from_secs(5))
                .await
        })
        .await
        .expect_err("CreateTopics on 0.9");
        assert!(
            matches!(
                e,
                Error::Unsupported {
                    api: ApiKey::CreateTopics,
                    ..
                }
            ),
            "{e:?}"
        );
        let e = client
            .delete_topics(vec!["x".into()], Duration::from_secs(5))
            .await
            .expect_err("DeleteTopics on 0.9");
        assert!(
            matches!(
                e,
                Error::Unsupported {
                    api: ApiKey::DeleteTopics,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("does not support"), "{e}");
        client.close().await;
    }

    pub async fn kafka09_cluster3_leaders_spread_and_replicas() {
        let Some(list) = env("GRETE_KAFKA09_CLUSTER3_BROKERS") else {
            return;
        };
        let client = connect(brokers(&list)).await;
        let ids: BTreeSet<i32> = client.brokers().iter().map(|b| b.id).collect();
        assert_eq!(ids, BTreeSet::from([1, 2, 3]));
        let name = unique("grete-async-triple");
        let topic = client.topic(&name).await.expect("auto-created topic");
        assert_eq!(topic.partitions().len(), 3, "{:?}", topic.partitions());
        let leaders: BTreeSet<i32> = topic.partitions().iter().filter_map(|p| p.leader).collect();
        assert_eq!(
            leaders,
            BTreeSet::from([1, 2, 3]),
            "{:?}",
            topic.partitions()
        );
        for p in topic.partitions() {
            let replicas: BTreeSet<i32> = p.replicas.iter().copied().collect();
            let isr: BTreeSet<i32> = p.isr.iter().copied().collect();
            assert_eq!(replicas, BTreeSet::from([1, 2, 3]), "{p:?}");
            assert_eq!(isr, BTreeSet::from([1, 2, 3]), "{p:?}");
        }
        // Offsets come from each partition's leader.
        produce(&client, &name, 2, &["x"]).await;
        assert_eq!(
            offsets(topic.latest_offsets().await),
            vec![(0, 0), (1, 0), (2, 1)]
        );
        client.close().await;
    }

    pub async fn kafka09_zookeeper_bootstrap_single() {
        let Some(zk) = env("GRETE_KAFKA09_ZK") else {
            return;
        };
        let Some(list) = env("GRETE_KAFKA09_BROKERS") else {
            return;
        };
        if !cfg!(feature = "zookeeper") {
            let mut config = config(Bootstrap::ZooKeeper { connect: zk });
            config.request_timeout = Duration::from_secs(2);
            let e = KafkaClient::connect(config)
                .await
                .expect_err("no ZooKeeper support");
            assert!(e.to_string().contains("`zookeeper` feature"), "{e}");
            return;
        }
        let client = connect(config(Bootstrap::ZooKeeper { connect: zk })).await;
        let expected = BrokerAddress::parse(&list).expect("list");
        let found: Vec<(i32, u16)> = client.brokers().iter().map(|b| (b.id, b.port)).collect();
        assert_eq!(found, vec![(0, expected[0].port)]);
        let topic = client
            .topic(&unique("grete-async-zk"))
            .await
            .expect("topic");
        assert_eq!(topic.partitions().len(), 1);
        client.close().await;
    }

    pub async fn kafka09_zookeeper_bootstrap_cluster3() {
        if !cfg!(feature = "zookeeper") {
            eprintln!("skipped: built without the zookeeper feature");
            return;
        }
        let Some(zk) = env("GRETE_KAFKA09_CLUSTER3_ZK") else {
            return;
        };
        let Some(list) = env("GRETE_KAFKA09_CLUSTER3_BROKERS") else {
            return;
        };
        let client = connect(config(Bootstrap::ZooKeeper { connect: zk })).await;
        let mut expected: Vec<u16> = BrokerAddress::parse(&list)
            .expect("list")
            .iter()
            .map(|b| b.port)
            .collect();
        expected.sort_unstable();
        let mut found: Vec<u16> = client.brokers().iter().map(|b| b.port).collect();
        found.sort_unstable();
        assert_eq!(found, expected);
        client.close().await;
    }

    pub async fn kafka09_zookeeper_missing_chroot_is_an_error() {
        if !cfg!(feature = "zookeeper") {
            eprintln!("skipped: built without the zookeeper feature");
            return;
        }
        let Some(zk) = env("GRETE_KAFKA09_ZK") else {
            return;
        };
        let mut config = config(Bootstrap::ZooKeeper {
            connect: format!("{zk}/grete-no-such-chroot"),
        });
        config.request_timeout = Duration::from_secs(5);
        let start = Instant::now();
        let e = KafkaClient::connect(config)
            .await
            .expect_err("no brokers under the chroot");
        // The deadline is 5 s; the bound only catches a hang (slack for a loaded machine).
        assert!(
            start.elapsed() <= Duration::from_secs(20),
            "{:?}",
            start.elapsed()
        );
        let text = e.to_string();
        assert!(
            matches!(e, Error::ZooKeeper(_) | Error::Timeout { .. }) && text.contains("NoNode"),
            "{e:?}"
        );
    }

    pub async fn zookeeper_unreachable_is_an_error_within_the_timeout() {
        if !cfg!(feature = "zookeeper") {
            eprintln!("skipped: built without the zookeeper feature");
            return;
        }
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let mut config = config(Bootstrap::ZooKeeper {
            connect: format!("127.0.0.1:{port}"),
        });
        config.request_timeout = Duration::from_secs(3);
        let limit = config.request_timeout + Duration::from_secs(2);
        let start = Instant::now();
        let e = assert_bounded_failure(KafkaClient::connect(config).await, limit, start);
        assert!(
            matches!(e, Error::ZooKeeper(_) | Error::Timeout { .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains("no answer from ZooKeeper"), "{e}");
    }

    pub async fn tansu_negotiates_and_creates_and_deletes_topics() {
        let Some(list) = env("GRETE_TANSU_BROKERS") else {
            return;
        };
        let client = connect(modern(&list)).await;
        assert!(!client.brokers().is_empty());
        // Metadata v2+ carries the cluster id: ApiVersions was negotiated (a 0.9 table
        // would have used Metadata v0).
        assert!(client.cluster().cluster_id().is_some(), "no cluster id");
        let name = unique("grete-async-tansu");
        let new = NewTopic {
            name: name.clone(),
            num_partitions: 3,
            replication_factor: 1,
            configs: Vec::new(),
        };
        let created = client
            .create_topics(vec![new], Duration::from_secs(5))
            .await
            .expect("create_topics");
        assert_eq!(created.len(), 1);
        assert_eq!(created[0].name, name);
        assert!(created[0].error.is_none(), "{created:?}");
        let topic = client.topic(&name).await.expect("topic");
        assert_eq!(topic.partitions().len(), 3);
        // ListOffsets in a negotiated (v1+) version.
        assert_eq!(
            offsets(topic.latest_offsets().await),
            vec![(0, 0), (1, 0), (2, 0)]
        );
        assert_eq!(
            offsets(topic.earliest_offsets().await),
            vec![(0, 0), (1, 0), (2, 0)]
        );
        let deleted = client
            .delete_topics(vec![name.clone()], Duration::from_secs(5))
            .await
            .expect("delete_topics");
        assert!(deleted.iter().all(|r| r.error.is_none()), "{deleted:?}");
        client.update_cluster().await.expect("update_cluster");
        assert!(!client.topics().contains(&name), "{:?}", client.topics());
        client.close().await;
    }

    /// tansu started with `--authentication` (see `scripts/tansu`): SCRAM-SHA-256 and
    /// SCRAM-SHA-512 with the right password authenticate every connection (the
    /// bootstrap one and the leader's), the wrong password is refused by the broker.
    pub async fn tansu_sasl_scram_right_and_wrong_password() {
        let (Some(list), Some(user), Some(password)) = (
            env("GRETE_TANSU_SASL_BROKERS"),
            env("GRETE_TANSU_SASL_USER"),
            env("GRETE_TANSU_SASL_PASSWORD"),
        ) else {
            return;
        };
        for mechanism in [SaslMechanism::ScramSha256, SaslMechanism::ScramSha512] {
            let sasl = |password: &str| ClientConfig {
                sasl: Some(SaslConfig {
                    mechanism,
                    username: user.clone(),
                    password: password.to_owned(),
                }),
                ..modern(&list)
            };
            let client = connect(sasl(&password)).await;
            let name = unique("grete-async-sasl");
            let new = NewTopic {
                name: name.clone(),
                num_partitions: 2,
                replication_factor: 1,
                configs: Vec::new(),
            };
            let created = client
                .create_topics(vec![new], Duration::from_secs(10))
                .await
                .expect("create_topics");
            assert!(created.iter().all(|r| r.error.is_none()), "{created:?}");
            let topic = client.topic(&name).await.expect("topic");
            assert_eq!(offsets(topic.latest_offsets().await), vec![(0, 0), (1, 0)]);
            client.close().await;

            let mut wrong = sasl("not-the-password");
            wrong.request_timeout = Duration::from_secs(5);
            let e = connect_fails(wrong).await;
            // tansu refuses in the SCRAM server-final message (`e=invalid-proof`): a
            // refused login fails the operation at once.
            assert!(
                matches!(&e, Error::Sasl(m) if m == "server refused: invalid-proof"),
                "{mechanism:?}: {e:?}"
            );
        }
    }

    fn tls_config(list: &str, tls: TlsConfig) -> ClientConfig {
        ClientConfig {
            tls: Some(tls),
            ..brokers(list)
        }
    }

    pub async fn tls_with_the_right_ca() {
        let Some(list) = env("GRETE_KAFKA09_SSL_BROKERS") else {
            return;
        };
        let Some(ca) = env("GRETE_KAFKA09_CA") else {
            return;
        };
        let tls = TlsConfig {
            ca_file: Some(ca.into()),
            ..TlsConfig::default()
        };
        let client = connect(tls_config(&list, tls)).await;
        let ssl_port = BrokerAddress::parse(&list).expect("list")[0].port;
        let ports: Vec<u16> = client.brokers().iter().map(|b| b.port).collect();
        assert_eq!(ports, vec![ssl_port]);
        let name = unique("grete-async-tls");
        let topic = client.topic(&name).await.expect("topic over TLS");
        produce(&client, &name, 0, &["over", "tls"]).await;
        assert_eq!(offsets(topic.latest_offsets().await), vec![(0, 2)]);
        client.close().await;
    }

    /// The test broker does not ask for client certificates (`ssl.client.auth=none`), so
    /// this shows that a certificate and key load and do not get in the way; it does not
    /// show mutual TLS.
    pub async fn tls_with_a_client_certificate_configured() {
        let Some(list) = env("GRETE_KAFKA09_SSL_BROKERS") else {
            return;
        };
        let Some(ca) = env("GRETE_KAFKA09_CA") else {
            return;
        };
        let dir = PathBuf::from(&ca)
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default();
        let (cert, key) = (dir.join("broker.pem"), dir.join("broker.key"));
        if !cert.exists() || !key.exists() {
            eprintln!("skipped: no broker.pem / broker.key beside {ca}");
            return;
        }
        let tls = TlsConfig {
            ca_file: Some(ca.into()),
            client_cert_file: Some(cert),
            client_key_file: Some(key),
            ..TlsConfig::default()
        };
        let client = connect(tls_config(&list, tls)).await;
        assert_eq!(client.brokers().len(), 1);
        client.close().await;
    }

    pub async fn tls_server_name_override() {
        let Some(list) = env("GRETE_KAFKA09_SSL_BROKERS") else {
            return;
        };
        let Some(ca) = env("GRETE_KAFKA09_CA") else {
            return;
        };
        let tls = TlsConfig {
            ca_file: Some(ca.into()),
            server_name: Some("localhost".into()),
            ..TlsConfig::default()
        };
        let client = connect(tls_config(&list, tls)).await;
        assert_eq!(client.brokers().len(), 1);
        client.close().await;
    }

    async fn expect_tls_failure(config: ClientConfig) {
        let start = Instant::now();
        let limit = config.request_timeout + Duration::from_secs(2);
        let e = assert_bounded_failure(KafkaClient::connect(config).await, limit, start);
        assert!(is_transport(&e, TransportErrorKind::Tls), "{e:?}");
    }

    pub async fn tls_with_a_wrong_ca_fails_clearly() {
        let Some(list) = env("GRETE_KAFKA09_SSL_BROKERS") else {
            return;
        };
        let Some(ca) = wrong_ca() else { return };
        let tls = TlsConfig {
            ca_file: Some(ca),
            ..TlsConfig::default()
        };
        let mut config = tls_config(&list, tls);
        config.request_timeout = Duration::from_secs(5);
        expect_tls_failure(config).await;
    }

    pub async fn tls_with_a_wrong_server_name_fails_clearly() {
        let Some(list) = env("GRETE_KAFKA09_SSL_BROKERS") else {
            return;
        };
        let Some(ca) = env("GRETE_KAFKA09_CA") else {
            return;
        };
        let tls = TlsConfig {
            ca_file: Some(ca.into()),
            server_name: Some("not-the-broker.example".into()),
            ..TlsConfig::default()
        };
        let mut config = tls_config(&list, tls);
        config.request_timeout = Duration::from_secs(5);
        expect_tls_failure(config).await;
    }

    async fn refused_connection(config: fn(u16) -> ClientConfig) {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let e = connect_fails(config(port)).await;
        assert!(is_timeout_naming(&e, TransportErrorKind::Refused), "{e:?}");
    }

    pub async fn unresolvable_host_is_a_resolve_error() {
        let config = ClientConfig {
            bootstrap: Bootstrap::Brokers(vec![BrokerAddress::new("no-such-host.invalid", 9092)]),
            ..impatient(9092)
        };
        let e = connect_fails(config).await;
        assert!(is_timeout_naming(&e, TransportErrorKind::Resolve), "{e:?}");
    }

    pub async fn hanging_connect_is_a_connect_timeout() {
        // A listener that never accepts: once its accept queue is full, further
        // handshakes go unanswered and connecting hangs.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut fillers = Vec::new();
        let mut full = false;
        for _ in 0..1000 {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
                Ok(s) => fillers.push(s),
                Err(_) => {
                    full = true;
                    break;
                }
            }
        }
        if !full {
            eprintln!("skipped: could not fill the accept queue");
            return;
        }
        let mut config = impatient(addr.port());
        config.connect_timeout = Duration::from_millis(500);
        let limit = config.request_timeout + Duration::from_secs(2);
        let start = Instant::now();
        let e = assert_bounded_failure(KafkaClient::connect(config).await, limit, start);
        assert!(
            is_timeout_naming(&e, TransportErrorKind::ConnectTimeout),
            "{e:?}"
        );
        drop(listener);
    }

    async fn non_kafka_server(config: fn(u16) -> ClientConfig) {
        let port = fake_server(|mut s| {
            let _ = read_request(&mut s);
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
            thread::sleep(Duration::from_millis(500));
        });
        let e = connect_fails(config(port)).await;
        // "HTTP" read as a size prefix is over a gigabyte: refused before reading on.
        assert!(is_protocol(&e, ""), "{e:?}");
    }

    async fn broker_closing_mid_response(config: fn(u16) -> ClientConfig) {
        let port = fake_server(|mut s| {
            if read_request(&mut s).is_some() {
                // A frame announcing 100 bytes, of which 10 come.
                let mut half = 100u32.to_be_bytes().to_vec();
                half.extend_from_slice(&[0u8; 10]);
                let _ = s.write_all(&half);
            }
        });
        let e = connect_fails(config(port)).await;
        assert!(is_timeout_after(&e, TransportErrorKind::Closed), "{e:?}");
    }

    async fn oversize_frame(config: fn(u16) -> ClientConfig) {
        let port = fake_server(|mut s| {
            if read_request(&mut s).is_some() {
                // 2 GiB - 1: the largest size a frame can announce.
                let _ = s.write_all(&0x7fff_ffffu32.to_be_bytes());
                let _ = s.write_all(&[0u8; 64]);
                thread::sleep(Duration::from_millis(500));
            }
        });
        let e = connect_fails(config(port)).await;
        assert!(is_protocol(&e, "2147483647 bytes"), "{e:?}");
    }

    async fn negative_frame_size(config: fn(u16) -> ClientConfig) {
        let port = fake_server(|mut s| {
            if read_request(&mut s).is_some() {
                let _ = s.write_all(&0x8000_0000u32.to_be_bytes());
                thread::sleep(Duration::from_millis(500));
            }
        });
        let e = connect_fails(config(port)).await;
        assert!(is_protocol(&e, "invalid length -2147483648"), "{e:?}");
    }

    async fn silent_server(config: fn(u16) -> ClientConfig) {
        let port = fake_server(|mut s| {
            let _ = read_request(&mut s);
            thread::sleep(Duration::from_secs(8));
        });
        let e = connect_fails(config(port)).await;
        // What timed out (the request, ApiVersions, or the operation) depends on timing.
        assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    }

    pub async fn tls_without_verification_is_explicit_and_works() {
        let Some(list) = env("GRETE_KAFKA09_SSL_BROKERS") else {
            return;
        };
        let tls = TlsConfig {
            verify: false,
            ..TlsConfig::default()
        };
        let client = connect(tls_config(&list, tls)).await;
        assert_eq!(client.brokers().len(), 1);
        client.close().await;
    }

    pub async fn tls_unreadable_files_are_config_errors() {
        let missing = std::env::temp_dir().join(unique("grete-no-such-ca"));
        let tls = TlsConfig {
            ca_file: Some(missing.clone()),
            ..TlsConfig::default()
        };
        let e = KafkaClient::connect(tls_config("127.0.0.1:9", tls))
            .await
            .expect_err("missing CA file");
        assert!(matches!(e, Error::Config(_)), "{e:?}");
        let tls = TlsConfig {
            client_cert_file: Some(missing),
            ..TlsConfig::default()
        };
        let e = KafkaClient::connect(tls_config("127.0.0.1:9", tls))
            .await
            .expect_err("a certificate without its key");
        assert!(matches!(e, Error::Config(_)), "{e:?}");
        assert!(e.to_string().contains("client_key_file"), "{e}");
    }

    pub async fn plaintext_to_the_tls_port_fails_within_the_timeout() {
        let Some(list) = env("GRETE_KAFKA09_SSL_BROKERS") else {
            return;
        };
        let port = BrokerAddress::parse(&list).expect("list")[0].port;
        let config = impatient(port);
        let limit = config.request_timeout + Duration::from_secs(2);
        let start = Instant::now();
        let e = assert_bounded_failure(KafkaClient::connect(config).await, limit, start);
        // The broker answers the plaintext request with a TLS alert, whose record header
        // (0x15030300) read as a size prefix is over 300 MB.
        assert!(
            matches!(
                &e,
                Error::Protocol(grete::protocol::DecodeError::FrameTooLarge { .. })
            ),
            "{e:?}"
        );
    }

    pub async fn calls_after_close_fail_with_misuse() {
        let Some(list) = env("GRETE_KAFKA09_BROKERS") else {
            return;
        };
        let client = connect(brokers(&list)).await;
        let other = client.clone();
        client.close().await;
        let e = other.update_cluster().await.expect_err("closed");
        assert!(matches!(e, Error::Misuse(_)), "{e:?}");
        // The cache stays readable.
        assert_eq!(other.brokers().len(), 1);
    }

    pub async fn mock_cluster_over_tcp_metadata_offsets_and_admin() {
        let server = MockServer::start(3, |c| c.with_topic("events", 4, 2));
        let client = connect(modern(&server.bootstrap())).await;
        let ids: BTreeSet<i32> = client.brokers().iter().map(|b| b.id).collect();
        assert_eq!(ids, BTreeSet::from([0, 1, 2]));
        assert_eq!(client.topics(), vec!["events".to_owned()]);
        assert_eq!(client.cluster().cluster_id(), Some("grete-mock-cluster"));
        let topic = client.topic("events").await.expect("topic");
        assert_eq!(topic.partitions().len(), 4);
        for p in topic.partitions() {
            assert!(p.leader.is_some(), "{p:?}");
            assert_eq!(p.replicas.len(), 2, "{p:?}");
        }
        assert_eq!(
            offsets(topic.latest_offsets().await),
            vec![(0, 0), (1, 0), (2, 0), (3, 0)]
        );
        let new = NewTopic {
            name: "made".into(),
            num_partitions: 2,
            replication_factor: 3,
            configs: Vec::new(),
        };
        let created = client
            .create_topics(vec![new], Duration::from_secs(5))
            .await
            .expect("create_topics");
        assert!(created.iter().all(|r| r.error.is_none()), "{created:?}");
        let made = client.topic("made").await.expect("made");
        assert_eq!(made.partitions().len(), 2);
        assert!(made.partitions().iter().all(|p| p.replicas.len() == 3));
        let deleted = client
            .delete_topics(vec!["made".into()], Duration::from_secs(5))
            .await
            .expect("delete_topics");
        assert!(deleted.iter().all(|r| r.error.is_none()), "{deleted:?}");
        client.update_cluster().await.expect("update_cluster");
        assert_eq!(client.topics(), vec!["events".to_owned()]);
        assert_eq!(
            server.with_cluster(|c, _| c.topic_names()),
            vec!["events".to_owned()]
        );
        client.close().await;
    }

    /// Issue #6, item 7: the driver copied the whole cluster into the handles' snapshot
    /// after every operation. Operations that leave the metadata alone now share one.
    pub async fn cluster_is_not_copied_after_every_operation() {
        let server = MockServer::start(3, |c| c.with_topic("events", 4, 2));
        let client = connect(ClientConfig {
            // No refresh by age during the test, however slow the machine.
            metadata_max_age: Duration::from_secs(24 * 3600),
            ..modern(&server.bootstrap())
        })
        .await;
        let topic = client.topic("events").await.expect("topic");
        let before = client.cluster_snapshot();
        for _ in 0..20 {
            assert_eq!(
                offsets(topic.latest_offsets().await),
                vec![(0, 0), (1, 0), (2, 0), (3, 0)]
            );
        }
        assert!(Arc::ptr_eq(&before, &client.cluster_snapshot()));
        // A change is published, once.
        client.update_cluster().await.expect("update_cluster");
        let after = client.cluster_snapshot();
        assert!(!Arc::ptr_eq(&before, &after));
        assert!(Arc::ptr_eq(&after, &client.cluster_snapshot()));
        client.close().await;
    }

    pub async fn mock_cluster_over_tcp_broker_down_fails_over() {
        let server = MockServer::start(3, |c| c.with_topic("events", 3, 3));
        let client = connect(modern(&server.bootstrap())).await;
        let topic = client.topic("events").await.expect("topic");
        assert_eq!(
            offsets(topic.latest_offsets().await),
            vec![(0, 0), (1, 0), (2, 0)]
        );
        let leader = topic.partitions()[0].leader.expect("leader");
        // The broker's connections drop and its listener refuses service; the mock
        // elects new leaders, the client refreshes its metadata and asks them.
        server.with_cluster(move |c, now| c.broker_down(now, leader));
        let start = Instant::now();
        let after = topic.latest_offsets().await;
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(offsets(after), vec![(0, 0), (1, 0), (2, 0)]);
        client.update_cluster().await.expect("update_cluster");
        let now_leaders: BTreeSet<i32> = client
            .cluster()
            .topic("events")
            .expect("events")
            .partitions
            .values()
            .filter_map(|p| p.leader)
            .collect();
        assert!(!now_leaders.contains(&leader), "{now_leaders:?}");
        client.close().await;
    }

    fn sasl(list: &str, mechanism: SaslMechanism, password: &str) -> ClientConfig {
        ClientConfig {
            sasl: Some(SaslConfig {
                mechanism,
                username: "alice".into(),
                password: password.into(),
            }),
            ..modern(list)
        }
    }

    pub async fn mock_cluster_over_tcp_sasl_plain_and_scram() {
        let server = MockServer::start(2, |c| {
            c.with_topic("events", 2, 2)
                .with_sasl_scram("SCRAM-SHA-256", "alice", "secret")
        });
        for mechanism in [SaslMechanism::Plain, SaslMechanism::ScramSha256] {
            let client = connect(sasl(&server.bootstrap(), mechanism, "secret")).await;
            let topic = client.topic("events").await.expect("topic");
            // Both brokers (both leaders) authenticated the client.
            assert_eq!(offsets(topic.latest_offsets().await), vec![(0, 0), (1, 0)]);
            client.close().await;
        }
    }

    pub async fn mock_cluster_over_tcp_sasl_wrong_password_is_a_clear_error() {
        let server =
            MockServer::start(1, |c| c.with_sasl_scram("SCRAM-SHA-512", "alice", "secret"));
        let mut config = sasl(&server.bootstrap(), SaslMechanism::ScramSha512, "wrong");
        config.request_timeout = Duration::from_secs(3);
        let limit = config.request_timeout + Duration::from_secs(2);
        let start = Instant::now();
        let e = assert_bounded_failure(KafkaClient::connect(config).await, limit, start);
        assert!(
            is_broker_error(&e, ErrorCode::SaslAuthenticationFailed),
            "{e:?}"
        );
    }

    /// Issue #6 item 6: a broker that accepts and then never reads. A request too big for
    /// the socket buffers blocks the connection's write; at the request's deadline the
    /// core closes the connection, which must interrupt the write and release the socket
    /// and the task, on every reconnect.
    pub async fn dropping_every_handle_closes_the_connections() {
        let server = MockServer::start(2, |c| c.with_topic("t", 2, 1));
        let client = connect(modern(&server.bootstrap())).await;
        let topic = client.topic("t").await.expect("topic");
        offsets(topic.latest_offsets().await);
        let open =
            move || server.with_cluster(|c, _| c.connection_count(0) + c.connection_count(1));
        assert!(open() > 0);
        drop(topic);
        drop(client);
        assert!(
            eventually(Duration::from_secs(10), || open() == 0).await,
            "connections stay open"
        );
    }

    pub async fn peer_that_never_reads_releases_the_socket_and_task() {
        use grete::protocol::messages::produce_request;
        let server = MockServer::start_with(2, &[1], |c| c.with_topic("t", 2, 1));
        let hole = server.ports[1];
        // A 0.9 configuration: no ApiVersions probe, so the big write starts at once.
        let config = ClientConfig {
            request_timeout: Duration::from_secs(2),
            ..brokers(&format!("127.0.0.1:{}", server.ports[0]))
        };
        let client = connect(config).await;
        assert_eq!(open_sockets_to(hole), 0);
        // The driver and the connection to broker 0.
        let tasks = crate::alive_tasks();
        for round in 0..3 {
            let big = ProduceRequest {
                acks: 1,
                timeout_ms: 1000,
                topic_data: vec![produce_request::TopicProduceData {
                    name: "t".into(),
                    partition_data: vec![produce_request::PartitionProduceData {
                        index: 1,
                        // More than the socket buffers of both ends hold.
                        records: Some(Bytes::from(vec![0u8; 32 << 20])),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            };
            let e = client
                .send(Target::Broker(1), RequestBody::Produce(big))
                .await
                .expect_err("a broker that never reads never answers");
            assert!(
                matches!(&e, Error::Timeout { what } if what.contains("Produce")),
                "round {round}: {e:?}"
            );
            // Generous: the close is immediate once the deadline passed.
            let released = eventually(Duration::from_secs(30), || open_sockets_to(hole) == 0).await;
            assert!(
                released,
                "round {round}: {} socket(s) to the peer are still open",
                open_sockets_to(hole)
            );
            if let Some(before) = tasks {
                let ended = eventually(Duration::from_secs(30), || {
                    crate::alive_tasks().is_some_and(|n| n <= before)
                })
                .await;
                assert!(
                    ended,
                    "round {round}: {:?} tasks alive, {before} before",
                    crate::alive_tasks()
                );
            }
        }
        // The other broker kept working all along.
        client.update_cluster().await.expect("update_cluster");
        client.close().await;
    }

    async fn tls_handshake_without_answer(config: fn(u16) -> ClientConfig) {
        // Accepts TCP, reads the ClientHello, never answers.
        let port = fake_server(|mut s| {
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf);
            thread::sleep(Duration::from_secs(6));
        });
        let mut config = config(port);
        config.connect_timeout = Duration::from_millis(800);
        config.tls = Some(TlsConfig {
            verify: false,
            ..TlsConfig::default()
        });
        let e = connect_fails(config).await;
        assert!(
            is_timeout_naming(&e, TransportErrorKind::ConnectTimeout),
            "{e:?}"
        );
    }

    /// A TLS peer that trickles handshake bytes, each well before any read timeout, for
    /// far longer than the connect timeout: the handshake gives up at the connect timeout
    /// as a whole, and the connection's socket is released long before the peer stops.
    async fn slow_loris_tls(config: fn(u16) -> ClientConfig) {
        let port = fake_server(|mut s| {
            let mut hello = [0u8; 512];
            let _ = s.read(&mut hello);
            // A handshake record announcing 16 KiB, then its body a byte at a time.
            if s.write_all(&[0x16, 0x03, 0x03, 0x40, 0x00]).is_err() {
                return;
            }
            for _ in 0..200 {
                thread::sleep(Duration::from_millis(200));
                if s.write_all(&[0]).is_err() {
                    return;
                }
            }
        });
        let mut config = config(port);
        config.connect_timeout = Duration::from_secs(1);
        config.tls = Some(TlsConfig {
            verify: false,
            ..TlsConfig::default()
        });
        let e = connect_fails(config).await;
        assert!(
            is_timeout_naming(&e, TransportErrorKind::ConnectTimeout),
            "{e:?}"
        );
        assert!(
            eventually(Duration::from_secs(15), || open_sockets_to(port) == 0).await,
            "the TLS handshake is still running"
        );
    }

    // ---- producer (the bodies are shared with the blocking transport) ---------------

    pub async fn kafka09_producer_every_codec_and_acks_read_back_by_kcat() {
        let (Some(list), Some(_)) = (env("GRETE_KAFKA09_BROKERS"), env("GRETE_KCAT")) else {
            return;
        };
        let client = connect(brokers(&list)).await;
        producing::kafka09_every_codec_and_acks(&client, &list, "grete-async").await;
        client.close().await;
    }

    pub async fn kafka09_producer_records_read_by_pykafka() {
        let (Some(list), Some(_)) = (env("GRETE_KAFKA09_BROKERS"), env("GRETE_PYTHON")) else {
            return;
        };
        let client = connect(brokers(&list)).await;
        producing::kafka09_read_by_pykafka(&client, &list, "grete-async").await;
        client.close().await;
    }

    pub async fn kafka09_keyed_records_land_where_librdkafka_puts_them() {
        let (Some(list), Some(kcat)) = (env("GRETE_KAFKA09_CLUSTER3_BROKERS"), env("GRETE_KCAT"))
        else {
            return;
        };
        let client = connect(brokers(&list)).await;
        producing::kafka09_keyed_like_librdkafka(&client, &list, &kcat, "grete-async").await;
        client.close().await;
    }

    pub async fn tansu_producer_every_codec_read_back_by_confluent_kafka() {
        let (Some(list), Some(_)) = (env("GRETE_TANSU_BROKERS"), env("GRETE_PYTHON")) else {
            return;
        };
        let client = connect(modern(&list)).await;
        producing::tansu_every_codec(&client, &list, "grete-async").await;
        client.close().await;
    }

    pub async fn sync_producer_returns_each_offset() {
        let Some(list) = env("GRETE_KAFKA09_BROKERS") else {
            return;
        };
        let client = connect(brokers(&list)).await;
        producing::sync_offsets(&client, "grete-async").await;
        client.close().await;
    }

    pub async fn mock_cluster_over_tcp_producer_callback_and_report_stream() {
        use super::super::transport::Record as Rec;
        use grete::producer::ProducerConfig;
        let server = MockServer::start(1, |c| c.with_topic("t", 2, 1));
        let client = connect(ClientConfig {
            broker_version: BrokerVersion::parse("2.8").expect("version"),
            ..brokers(&server.bootstrap())
        })
        .await;
        let topic = client.topic("t").await.expect("topic");
        let producer = topic.producer(ProducerConfig::default()).expect("producer");
        let counted = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let c = counted.clone();
        producer.on_delivery(move |r| {
            if r.result.is_ok() {
                c.fetch_add(u64::from(r.count), Ordering::SeqCst);
            }
        });
        let mut reports = producer.reports();
        for i in 0..500 {
            let value = format!("c{i}");
            // No per-record future: the callback and the stream give the outcomes.
            producer
                .produce(Rec::value(value.as_bytes()))
                .await
                .expect("produce");
        }
        producer.flush().await;
        assert_eq!(
            counted.load(Ordering::SeqCst),
            500,
            "the callback saw every record"
        );
        let mut streamed = 0;
        while streamed < 500 {
            let r = reports.next().await.expect("a report");
            assert!(r.result.is_ok(), "{r:?}");
            streamed += r.count;
        }
        assert_eq!(streamed, 500, "the stream saw every record once");
        assert_eq!(producer.lagged(), 0);
        assert_eq!(producer.close(Duration::from_secs(5)).await, 0);
        assert!(
            reports.next().await.is_none(),
            "the stream ends with the producer"
        );
        client.close().await;
    }

    pub async fn mock_cluster_over_tcp_producer_survives_a_broker_down() {
        let server = MockServer::start(3, |c| c.with_topic("t", 4, 3));
        let client = connect(ClientConfig {
            broker_version: BrokerVersion::parse("2.8").expect("version"),
            request_timeout: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(2),
            reconnect_backoff: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_millis(200),
            ..brokers(&server.bootstrap())
        })
        .await;
        let topic = client.topic("t").await.expect("topic");
        let producer = topic
            .producer(grete::producer::ProducerConfig::default())
            .expect("producer");
        let leader = topic.partitions()[0].leader.expect("leader");
        producing::through_a_broker_down(
            producer,
            || server.with_cluster(move |c, now| c.broker_down(now, leader)),
            || {
                (0..4)
                    .map(|p| server.with_cluster(move |c, _| c.records("t", p).len()))
                    .sum()
            },
        )
        .await;
        client.close().await;
    }

    pub async fn kafka09_consumer_reads_what_grete_wrote() {
        let Some(list) = env("GRETE_KAFKA09_BROKERS") else {
            return;
        };
        let client = connect(brokers(&list)).await;
        consuming::grete_reads_what_grete_wrote(&client, false, "grete-async").await;
        client.close().await;
    }

    pub async fn tansu_consumer_reads_what_grete_wrote() {
        let Some(list) = env("GRETE_TANSU_BROKERS") else {
            return;
        };
        let client = connect(modern(&list)).await;
        consuming::grete_reads_what_grete_wrote(&client, true, "grete-async").await;
        client.close().await;
    }

    pub async fn kafka09_consumer_reads_what_kcat_wrote() {
        let (Some(list), Some(_), Some(_)) = (
            env("GRETE_KAFKA09_BROKERS"),
            env("GRETE_KCAT"),
            env("GRETE_PYTHON"),
        ) else {
            return;
        };
        let client = connect(brokers(&list)).await;
        let codecs = ["none", "gzip", "snappy", "lz4"];
        consuming::grete_reads_what_others_wrote(&client, &list, "kcat", &codecs, false, "ga")
            .await;
        client.close().await;
    }

    pub async fn kafka09_consumer_reads_what_pykafka_wrote() {
        let (Some(list), Some(_)) = (env("GRETE_KAFKA09_BROKERS"), env("GRETE_PYTHON")) else {
            return;
        };
        let client = connect(brokers(&list)).await;
        let codecs = ["none", "gzip", "snappy", "lz4"];
        consuming::grete_reads_what_others_wrote(&client, &list, "pykafka", &codecs, false, "ga")
            .await;
        client.close().await;
    }

    pub async fn tansu_consumer_reads_what_confluent_kafka_wrote() {
        let (Some(list), Some(_)) = (env("GRETE_TANSU_BROKERS"), env("GRETE_PYTHON")) else {
            return;
        };
        let client = connect(modern(&list)).await;
        let codecs = ["none", "gzip", "snappy", "lz4", "zstd"];
        consuming::grete_reads_what_others_wrote(&client, &list, "confluent", &codecs, true, "ga")
            .await;
        client.close().await;
    }

    pub async fn kafka09_consumer_seek_pause_resume_and_batches() {
        let Some(list) = env("GRETE_KAFKA09_BROKERS") else {
            return;
        };
        let client = connect(brokers(&list)).await;
        consuming::seek_pause_resume_and_batches(&client, "grete-async").await;
        client.close().await;
    }

    pub async fn kafka09_one_consumer_reads_several_topics() {
        let Some(list) = env("GRETE_KAFKA09_BROKERS") else {
            return;
        };
        let client = connect(brokers(&list)).await;
        consuming::one_consumer_reads_several_topics(&client, "grete-async").await;
        client.close().await;
    }

    pub async fn tansu_one_consumer_reads_several_topics() {
        let Some(list) = env("GRETE_TANSU_BROKERS") else {
            return;
        };
        let client = connect(modern(&list)).await;
        consuming::one_consumer_reads_several_topics(&client, "grete-async").await;
        client.close().await;
    }

    pub async fn kafka09_consumer_commit_then_a_new_consumer_resumes() {
        let Some(list) = env("GRETE_KAFKA09_BROKERS") else {
            return;
        };
        let client = connect(brokers(&list)).await;
        consuming::commit_then_a_new_consumer_resumes(&client, "grete-async").await;
        client.close().await;
    }

    pub async fn tansu_consumer_commit_then_a_new_consumer_resumes() {
        let Some(list) = env("GRETE_TANSU_BROKERS") else {
            return;
        };
        let client = connect(modern(&list)).await;
        consuming::commit_then_a_new_consumer_resumes(&client, "grete-async").await;
        client.close().await;
    }

    pub async fn kafka09_consumer_slow_reader_gets_every_record() {
        let Some(list) = env("GRETE_KAFKA09_BROKERS") else {
            return;
        };
        let client = connect(brokers(&list)).await;
        consuming::slow_reader_gets_every_record(&client, "grete-async").await;
        client.close().await;
    }

    pub async fn kafka09_consumer_out_of_range_is_reported_then_reset() {
        let Some(list) = env("GRETE_KAFKA09_BROKERS") else {
            return;
        };
        let client = connect(brokers(&list)).await;
        consuming::out_of_range_is_reported_then_reset(&client, "grete-async").await;
        client.close().await;
    }

    pub async fn kafka09_consumer_auto_commit_commits_while_waiting() {
        let Some(list) = env("GRETE_KAFKA09_BROKERS") else {
            return;
        };
        let client = connect(brokers(&list)).await;
        consuming::auto_commit_commits_while_waiting(&client, &list, "grete-async").await;
        client.close().await;
    }

    pub async fn kafka09_consumer_offsets_shared_with_pykafka() {
        let (Some(list), Some(_)) = (env("GRETE_KAFKA09_BROKERS"), env("GRETE_PYTHON")) else {
            return;
        };
        let client = connect(brokers(&list)).await;
        consuming::offsets_shared_with_another_client(&client, &list, "pykafka", "ga").await;
        client.close().await;
    }

    pub async fn tansu_consumer_offsets_shared_with_confluent_kafka() {
        let (Some(list), Some(_)) = (env("GRETE_TANSU_BROKERS"), env("GRETE_PYTHON")) else {
            return;
        };
        let client = connect(modern(&list)).await;
        consuming::offsets_shared_with_another_client(&client, &list, "confluent", "ga").await;
        client.close().await;
    }

    pub async fn kafka09_consumer_messages_then_batches_lose_nothing() {
        let Some(list) = env("GRETE_KAFKA09_BROKERS") else {
            return;
        };
        let client = connect(brokers(&list)).await;
        consuming::messages_then_batches_lose_nothing(&client, "grete-async").await;
        client.close().await;
    }

    pub async fn mock_cluster_over_tcp_consumer_close_with_brokers_down_is_bounded() {
        let server = MockServer::start(1, |c| c.with_topic("t", 2, 1));
        let client = connect(ClientConfig {
            broker_version: BrokerVersion::parse("2.8").expect("version"),
            // Longer than the test's limit: only the close's own timeout can end it.
            request_timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(2),
            ..brokers(&server.bootstrap())
        })
        .await;
        let ids: Vec<i32> = client.brokers().iter().map(|b| b.id).collect();
        consuming::close_with_brokers_down_is_bounded(&client, "t", || {
            for id in ids {
                server.with_cluster(move |c, now| c.broker_down(now, id));
            }
        })
        .await;
        client.close().await;
    }
}

/// The shared producer tests (`transports/testsupport/producing.rs`) on this transport.
#[path = "producing.rs"]
mod producing;

/// The shared consumer tests (`transports/testsupport/consuming.rs`).
#[path = "consuming.rs"]
mod consuming;

mod adapters {
    use super::super::transport::{
        Delivered, DeliveryFuture, KafkaClient, Producer, Record, SyncProducer, Topic,
    };
    use super::producing::{Sending, Transport};

    super::producing::adapters!(DeliveryFuture);
}
