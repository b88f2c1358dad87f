//! grete-blocking against real brokers: Kafka 0.9.0.1 (single, TLS, three brokers,
//! ZooKeeper bootstrap) and tansu. Each test skips unless its broker's environment
//! variable is set (`source scripts/env.sh` after `scripts/kafka09 start --cluster all` and
//! `scripts/tansu start`), and fails instead with `GRETE_REQUIRE_BROKERS=1`.

mod common;
use common::env;
use common::producing::{self, ready, unique};

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use grete::protocol::messages::{produce_request, ProduceRequest};
use grete::protocol::records::legacy::{encode_message_set, MessageSetOptions};
use grete::protocol::records::Record;
use grete_blocking::{
    Bootstrap, BrokerAddress, BrokerVersion, ClientConfig, Error, KafkaClient, NewTopic,
    RequestBody, ResponseBody, SaslConfig, SaslMechanism, Target, TlsConfig, TransportErrorKind,
};

fn config(brokers: &str) -> ClientConfig {
    ClientConfig {
        bootstrap: Bootstrap::Brokers(BrokerAddress::parse(brokers).expect("broker list")),
        request_timeout: Duration::from_secs(15),
        connect_timeout: Duration::from_secs(5),
        ..ClientConfig::default()
    }
}

/// Asks for `name` until every partition has a leader (0.9 auto-creates on the first
/// request and answers LEADER_NOT_AVAILABLE for a moment).
fn topic_with_leaders(client: &KafkaClient, name: &str) -> grete_blocking::Topic {
    let start = Instant::now();
    loop {
        match client.topic(name) {
            Ok(t)
                if !t.partitions().is_empty()
                    && t.partitions().iter().all(|p| p.leader.is_some()) =>
            {
                return t
            }
            Ok(_) | Err(_) if start.elapsed() < Duration::from_secs(30) => {
                std::thread::sleep(Duration::from_millis(200))
            }
            other => panic!("topic {name} has no leaders after 30 s: {other:?}"),
        }
    }
}

fn produce_v0(client: &KafkaClient, topic: &str, partition: i32, n: usize) -> i64 {
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            offset: i as i64,
            value: Some(Bytes::from(format!("grete-blocking {i}"))),
            ..Default::default()
        })
        .collect();
    let mut set = Vec::new();
    let options = MessageSetOptions {
        magic: 0,
        ..Default::default()
    };
    encode_message_set(&mut set, &options, &records).expect("message set");
    // acks -1: the high watermark (what ListOffsets reports) includes the messages.
    let request = ProduceRequest {
        acks: -1,
        timeout_ms: 10_000,
        topic_data: vec![produce_request::TopicProduceData {
            name: topic.to_owned(),
            partition_data: vec![produce_request::PartitionProduceData {
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
    match client.send(target, RequestBody::Produce(request)) {
        Ok(ResponseBody::Produce(r)) => {
            let p = &r.responses[0].partition_responses[0];
            assert_eq!(p.error_code, 0, "produce error");
            p.base_offset
        }
        other => panic!("produce: {other:?}"),
    }
}

fn offsets(result: Result<Vec<grete_blocking::PartitionOffset>, Error>) -> Vec<(i32, i64)> {
    result
        .expect("offsets")
        .into_iter()
        .map(|o| (o.partition, o.result.expect("partition offset")))
        .collect()
}

#[test]
fn kafka09_single_topics_auto_create_and_offsets() {
    let Some(brokers) = env("GRETE_KAFKA09_BROKERS") else {
        return;
    };
    let client = KafkaClient::connect(config(&brokers)).expect("connect");
    assert_eq!(client.brokers().len(), 1, "{:?}", client.brokers());
    let name = unique("grete-blocking");
    assert!(!client.topics().contains(&name));
    let topic = topic_with_leaders(&client, &name);
    assert_eq!(topic.name(), name);
    assert_eq!(topic.partitions().len(), 1);
    assert!(client.topics().contains(&name), "cache knows the new topic");
    assert_eq!(offsets(topic.earliest_offsets()), vec![(0, 0)]);
    assert_eq!(offsets(topic.latest_offsets()), vec![(0, 0)]);
    assert_eq!(produce_v0(&client, &name, 0, 5), 0);
    assert_eq!(produce_v0(&client, &name, 0, 2), 5);
    assert_eq!(offsets(topic.earliest_offsets()), vec![(0, 0)]);
    assert_eq!(offsets(topic.latest_offsets()), vec![(0, 7)]);
    // 0.9 has no CreateTopics: a clear error, not a hang.
    let created = client.create_topics(
        vec![NewTopic {
            name: unique("grete-blocking-create"),
            num_partitions: 1,
            replication_factor: 1,
            configs: Vec::new(),
        }],
        Duration::from_secs(5),
    );
    let unsupported = match &created {
        Err(Error::Unsupported { .. }) => true,
        Ok(results) => results
            .iter()
            .all(|r| matches!(r.error, Some(Error::Unsupported { .. }))),
        Err(_) => false,
    };
    assert!(unsupported, "create_topics on 0.9: {created:?}");
    client.update_cluster().expect("refresh");
    assert!(client.topics().contains(&name));
    let clone = client.clone();
    client.close();
    // The driver is gone: operations on another handle fail cleanly.
    assert!(clone.update_cluster().is_err());
}

#[test]
fn kafka09_three_brokers() {
    let Some(brokers) = env("GRETE_KAFKA09_CLUSTER3_BROKERS") else {
        return;
    };
    let client = KafkaClient::connect(config(&brokers)).expect("connect");
    let mut ids: Vec<i32> = client.brokers().iter().map(|b| b.id).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![1, 2, 3]);
    let name = unique("grete-blocking3");
    let topic = topic_with_leaders(&client, &name);
    assert_eq!(
        topic.partitions().len(),
        3,
        "auto-created with 3 partitions"
    );
    for p in topic.partitions() {
        assert!(ids.contains(&p.leader.unwrap()));
        assert_eq!(p.replicas.len(), 3);
    }
    // Produce to each partition's leader, then ask every leader for offsets.
    for p in topic.partitions() {
        assert_eq!(produce_v0(&client, &name, p.id, (p.id + 1) as usize), 0);
    }
    assert_eq!(
        offsets(topic.latest_offsets()),
        vec![(0, 1), (1, 2), (2, 3)]
    );
    assert_eq!(
        offsets(topic.earliest_offsets()),
        vec![(0, 0), (1, 0), (2, 0)]
    );
    client.close();
}

#[test]
fn kafka09_zookeeper_bootstrap() {
    let (Some(zk), Some(brokers)) = (
        env("GRETE_KAFKA09_CLUSTER3_ZK"),
        env("GRETE_KAFKA09_CLUSTER3_BROKERS"),
    ) else {
        return;
    };
    let config = ClientConfig {
        bootstrap: Bootstrap::ZooKeeper { connect: zk },
        ..config(&brokers)
    };
    let client = KafkaClient::connect(config).expect("connect through ZooKeeper");
    let mut ports: Vec<u16> = client.brokers().iter().map(|b| b.port).collect();
    ports.sort_unstable();
    let mut want: Vec<u16> = BrokerAddress::parse(&brokers)
        .unwrap()
        .iter()
        .map(|a| a.port)
        .collect();
    want.sort_unstable();
    assert_eq!(ports, want);
    client.close();
}

#[test]
fn zookeeper_chroot_without_brokers_is_an_error() {
    let Some(zk) = env("GRETE_KAFKA09_CLUSTER3_ZK") else {
        return;
    };
    let config = ClientConfig {
        bootstrap: Bootstrap::ZooKeeper {
            connect: format!("{zk}/no-kafka-here"),
        },
        request_timeout: Duration::from_secs(3),
        ..ClientConfig::default()
    };
    let start = Instant::now();
    let err = KafkaClient::connect(config).expect_err("no /brokers/ids under the chroot");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    let text = format!("{err}");
    assert!(
        text.contains("no-kafka-here") || text.contains("NoNode"),
        "{text}"
    );
}

#[test]
fn zookeeper_unreachable_fails_in_time() {
    let port = free_port();
    let config = ClientConfig {
        bootstrap: Bootstrap::ZooKeeper {
            connect: format!("127.0.0.1:{port}"),
        },
        request_timeout: Duration::from_secs(3),
        connect_timeout: Duration::from_secs(1),
        ..ClientConfig::default()
    };
    let start = Instant::now();
    let result = KafkaClient::connect(config);
    assert!(result.is_err(), "{result:?}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn tansu_create_and_delete_topics() {
    let Some(brokers) = env("GRETE_TANSU_BROKERS") else {
        return;
    };
    let client = KafkaClient::connect(ClientConfig {
        broker_version: BrokerVersion::new(2, 8, 0),
        ..config(&brokers)
    })
    .expect("connect");
    assert!(!client.brokers().is_empty());
    let name = unique("grete-blocking-tansu");
    let results = client
        .create_topics(
            vec![NewTopic {
                name: name.clone(),
                num_partitions: 3,
                replication_factor: 1,
                configs: Vec::new(),
            }],
            Duration::from_secs(10),
        )
        .expect("create_topics");
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].error, None, "{results:?}");
    client.update_cluster().expect("refresh");
    assert!(client.topics().contains(&name), "{:?}", client.topics());
    let topic = client.topic(&name).expect("topic");
    assert_eq!(topic.partitions().len(), 3);
    let latest = offsets(topic.latest_offsets());
    assert_eq!(latest, vec![(0, 0), (1, 0), (2, 0)]);
    let results = client
        .delete_topics(vec![name.clone()], Duration::from_secs(10))
        .expect("delete_topics");
    assert_eq!(results[0].error, None, "{results:?}");
    client.update_cluster().expect("refresh");
    assert!(!client.topics().contains(&name));
    client.close();
}

/// tansu started with `--authentication` (see `scripts/tansu`): SCRAM-SHA-256 and
/// SCRAM-SHA-512 with the right password authenticate every connection, the wrong
/// password is refused by the broker.
#[test]
fn tansu_sasl_scram_right_and_wrong_password() {
    let (Some(brokers), Some(user), Some(password)) = (
        env("GRETE_TANSU_SASL_BROKERS"),
        env("GRETE_TANSU_SASL_USER"),
        env("GRETE_TANSU_SASL_PASSWORD"),
    ) else {
        return;
    };
    for mechanism in [SaslMechanism::ScramSha256, SaslMechanism::ScramSha512] {
        let sasl = |password: &str| ClientConfig {
            broker_version: BrokerVersion::new(2, 8, 0),
            sasl: Some(SaslConfig {
                mechanism,
                username: user.clone(),
                password: password.to_owned(),
            }),
            ..config(&brokers)
        };
        let client = KafkaClient::connect(sasl(&password)).expect("connect");
        let name = unique("grete-blocking-sasl");
        let results = client
            .create_topics(
                vec![NewTopic {
                    name: name.clone(),
                    num_partitions: 2,
                    replication_factor: 1,
                    configs: Vec::new(),
                }],
                Duration::from_secs(10),
            )
            .expect("create_topics");
        assert_eq!(results[0].error, None, "{results:?}");
        let topic = client.topic(&name).expect("topic");
        assert_eq!(offsets(topic.latest_offsets()), vec![(0, 0), (1, 0)]);
        client.close();

        let mut wrong = sasl("not-the-password");
        wrong.request_timeout = Duration::from_secs(5);
        let err = KafkaClient::connect(wrong).expect_err("wrong password");
        // tansu refuses in the SCRAM server-final message (`e=invalid-proof`): a refused
        // login fails the operation at once.
        assert!(
            matches!(&err, Error::Sasl(m) if m == "server refused: invalid-proof"),
            "{mechanism:?}: {err:?}"
        );
    }
}

fn tls_config(brokers: &str, ca: PathBuf) -> ClientConfig {
    ClientConfig {
        tls: Some(TlsConfig {
            ca_file: Some(ca),
            client_cert_file: None,
            client_key_file: None,
            verify: true,
            server_name: None,
        }),
        ..config(brokers)
    }
}

#[test]
fn kafka09_tls_with_the_right_ca() {
    let (Some(brokers), Some(ca)) = (env("GRETE_KAFKA09_SSL_BROKERS"), env("GRETE_KAFKA09_CA"))
    else {
        return;
    };
    let client = KafkaClient::connect(tls_config(&brokers, ca.into())).expect("TLS connect");
    assert_eq!(client.brokers().len(), 1);
    let name = unique("grete-blocking-tls");
    let topic = topic_with_leaders(&client, &name);
    assert_eq!(produce_v0(&client, &name, 0, 3), 0);
    assert_eq!(offsets(topic.latest_offsets()), vec![(0, 3)]);
    client.close();
}

#[test]
fn kafka09_tls_with_a_wrong_ca_is_a_tls_error() {
    let (Some(brokers), Some(ca)) = (env("GRETE_KAFKA09_SSL_BROKERS"), env("GRETE_KAFKA09_CA"))
    else {
        return;
    };
    // The broker's own certificate is no CA for itself: its issuer is unknown.
    let wrong = PathBuf::from(&ca).with_file_name("broker.pem");
    assert!(wrong.exists(), "{} missing", wrong.display());
    let config = ClientConfig {
        request_timeout: Duration::from_secs(5),
        ..tls_config(&brokers, wrong)
    };
    let start = Instant::now();
    let err = KafkaClient::connect(config).expect_err("an untrusted certificate");
    assert!(start.elapsed() < Duration::from_secs(15));
    let text = format!("{err}");
    assert!(is_tls(&err), "not a TLS error: {err:?}");
    assert!(text.to_lowercase().contains("certificate"), "{text}");
}

#[test]
fn kafka09_tls_server_name_override_and_no_verification() {
    let (Some(brokers), Some(ca)) = (env("GRETE_KAFKA09_SSL_BROKERS"), env("GRETE_KAFKA09_CA"))
    else {
        return;
    };
    let with = |ca: PathBuf, name: Option<&str>, verify: bool| {
        let mut config = tls_config(&brokers, ca);
        config.request_timeout = Duration::from_secs(5);
        if let Some(tls) = &mut config.tls {
            tls.server_name = name.map(str::to_owned);
            tls.verify = verify;
        }
        KafkaClient::connect(config)
    };
    // The certificate names localhost as well as 127.0.0.1.
    let client = with(ca.clone().into(), Some("localhost"), true).expect("server name localhost");
    assert_eq!(client.brokers().len(), 1);
    client.close();
    let err = with(ca.clone().into(), Some("kafka.example.invalid"), true)
        .expect_err("a name the certificate does not carry");
    assert!(is_tls(&err), "{err:?}");
    // Verification off (explicitly): an untrusted certificate is accepted.
    let wrong = PathBuf::from(&ca).with_file_name("broker.pem");
    let client = with(wrong, None, false).expect("verify: false");
    assert_eq!(client.brokers().len(), 1);
    client.close();
}

fn is_tls(err: &Error) -> bool {
    match err {
        Error::Transport(t) => t.kind == TransportErrorKind::Tls,
        other => format!("{other:?}").contains("Tls"),
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

// ---- the producer, read back by other clients (bodies shared with the async suite) ----

/// The values of `vars` (the first names the brokers, the others the readers) and a
/// client of those brokers, or `None` (skip); `modern` asks them for their API versions.
fn interop(vars: &[&str], modern: bool) -> Option<(KafkaClient, Vec<String>)> {
    let values: Option<Vec<String>> = vars.iter().map(|v| env(v)).collect();
    let values = values?;
    let mut config = config(&values[0]);
    if modern {
        config.broker_version = BrokerVersion::new(2, 8, 0);
    }
    let client = KafkaClient::connect(config).expect("connect");
    Some((client, values))
}

const PREFIX: &str = "grete-blocking";

#[test]
fn kafka09_producer_every_codec_and_acks_read_back_by_kcat() {
    let Some((client, v)) = interop(&["GRETE_KAFKA09_BROKERS", "GRETE_KCAT"], false) else {
        return;
    };
    ready(producing::kafka09_every_codec_and_acks(
        &client, &v[0], PREFIX,
    ));
    client.close();
}

#[test]
fn kafka09_producer_records_read_by_pykafka() {
    let Some((client, v)) = interop(&["GRETE_KAFKA09_BROKERS", "GRETE_PYTHON"], false) else {
        return;
    };
    ready(producing::kafka09_read_by_pykafka(&client, &v[0], PREFIX));
    client.close();
}

#[test]
fn kafka09_keyed_records_land_where_librdkafka_puts_them() {
    let vars = ["GRETE_KAFKA09_CLUSTER3_BROKERS", "GRETE_KCAT"];
    let Some((client, v)) = interop(&vars, false) else {
        return;
    };
    ready(producing::kafka09_keyed_like_librdkafka(
        &client, &v[0], &v[1], PREFIX,
    ));
    client.close();
}

#[test]
fn tansu_producer_every_codec_read_back_by_confluent_kafka() {
    let Some((client, v)) = interop(&["GRETE_TANSU_BROKERS", "GRETE_PYTHON"], true) else {
        return;
    };
    ready(producing::tansu_every_codec(&client, &v[0], PREFIX));
    client.close();
}

#[test]
fn sync_producer_returns_each_offset() {
    let Some((client, _)) = interop(&["GRETE_KAFKA09_BROKERS"], false) else {
        return;
    };
    ready(producing::sync_offsets(&client, PREFIX));
    client.close();
}
