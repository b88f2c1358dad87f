//! Transcript tests for the client against hand-driven fake brokers.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::*;
use crate::config::BrokerVersion;
use crate::connection::tests::{all_api_versions, answer, FakeBroker};
use crate::error::TransportErrorKind;
use crate::protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use crate::protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use crate::protocol::messages::{ApiKey, ListOffsetsResponse, MetadataResponse, RequestHeader};
use crate::protocol::ErrorCode;

/// A client plus the broker side of each of its connections.
struct Harness {
    client: Client,
    now: Instant,
    brokers: BTreeMap<ConnectionHandle, FakeBroker>,
    addrs: BTreeMap<ConnectionHandle, (String, u16)>,
}

type Written = Vec<(ConnectionHandle, RequestHeader, RequestBody)>;

impl Harness {
    fn new(config: ClientConfig) -> Harness {
        Harness {
            client: Client::new(config).unwrap(),
            now: Instant::now(),
            brokers: BTreeMap::new(),
            addrs: BTreeMap::new(),
        }
    }

    /// What a transport does before draining: handle what is due (operations are started
    /// by the next drive, which `poll_timeout` asks for at once).
    fn due(&mut self) {
        if self.client.poll_timeout().is_some_and(|t| t <= self.now) {
            self.client.handle_timeout(self.now);
        }
    }

    fn ios(&mut self) -> Vec<Io> {
        self.due();
        let ios: Vec<Io> = std::iter::from_fn(|| self.client.poll_io()).collect();
        for io in &ios {
            if let Io::Connect { conn, host, port } = io {
                self.brokers.insert(*conn, FakeBroker::new());
                self.addrs.insert(*conn, (host.clone(), *port));
            }
        }
        ios
    }

    fn written(&mut self) -> Written {
        self.due();
        let mut out = Vec::new();
        let mut buf = Vec::new();
        while let Some(h) = self.client.poll_transmit(self.now, &mut buf) {
            let b = self
                .brokers
                .get_mut(&h)
                .expect("bytes for an unknown connection");
            for (hdr, body) in b.requests(&buf) {
                out.push((h, hdr, body));
            }
            buf.clear();
        }
        out
    }

    fn events(&mut self) -> Vec<Event> {
        self.due();
        std::iter::from_fn(|| self.client.poll_event()).collect()
    }

    fn connect(&mut self, conn: ConnectionHandle) {
        self.client.handle_connected(self.now, conn);
    }

    fn reply(&mut self, conn: ConnectionHandle, h: &RequestHeader, mut body: ResponseBody) {
        if let ResponseBody::Metadata(m) = &mut body {
            if h.request_api_version == 0 {
                // Metadata v0 has no controller.
                m.controller_id = -1;
            }
        }
        let bytes = answer(h, body);
        self.client.handle_data(self.now, conn, &bytes);
    }

    fn advance_to_timeout(&mut self) -> Instant {
        let t = self.client.poll_timeout().expect("a timer");
        assert!(t >= self.now);
        self.now = t;
        self.client.handle_timeout(t);
        t
    }

    /// Answers an ApiVersions request, if that is what was written.
    fn negotiate(&mut self) -> Written {
        let w = self.written();
        let mut rest = Vec::new();
        for (c, h, body) in w {
            if matches!(body, RequestBody::ApiVersions(_)) {
                self.reply(c, &h, all_api_versions());
            } else {
                rest.push((c, h, body));
            }
        }
        rest.extend(self.written());
        rest
    }
}

fn modern() -> ClientConfig {
    ClientConfig {
        bootstrap: Bootstrap::Brokers(BrokerAddress::parse("k1:9092").unwrap()),
        broker_version: BrokerVersion::new(2, 8, 0),
        rng_seed: Some(7),
        ..ClientConfig::default()
    }
}

fn kafka09() -> ClientConfig {
    ClientConfig {
        bootstrap: Bootstrap::Brokers(BrokerAddress::parse("k1:9092").unwrap()),
        ..ClientConfig::default()
    }
}

fn metadata(brokers: &[(i32, &str)], topics: &[(&str, &[i32])]) -> ResponseBody {
    ResponseBody::Metadata(MetadataResponse {
        brokers: brokers
            .iter()
            .map(|&(id, host)| MetadataResponseBroker {
                node_id: id,
                host: host.into(),
                port: 9092,
                ..Default::default()
            })
            .collect(),
        controller_id: brokers.first().map_or(-1, |b| b.0),
        topics: topics
            .iter()
            .map(|&(name, leaders)| MetadataResponseTopic {
                name: Some(name.into()),
                partitions: leaders
                    .iter()
                    .enumerate()
                    .map(|(i, &leader)| MetadataResponsePartition {
                        partition_index: i as i32,
                        leader_id: leader,
                        replica_nodes: vec![leader],
                        isr_nodes: vec![leader],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    })
}

fn key_version(w: &Written) -> Vec<(i16, i16)> {
    w.iter()
        .map(|(_, h, _)| (h.request_api_key, h.request_api_version))
        .collect()
}

fn conn(n: u64) -> ConnectionHandle {
    ConnectionHandle(n)
}

#[test]
fn bootstrap_transcript_api_versions_then_metadata() {
    let mut t = Harness::new(modern());
    let op = t.client.update_cluster(t.now);
    assert_eq!(
        t.ios(),
        vec![Io::Connect {
            conn: conn(0),
            host: "k1".into(),
            port: 9092
        }]
    );
    assert!(t.written().is_empty());
    t.connect(conn(0));
    let w = t.written();
    assert_eq!(key_version(&w), vec![(18, 3)]);
    t.reply(conn(0), &w[0].1, all_api_versions());
    let w = t.written();
    assert_eq!(key_version(&w), vec![(3, ApiKey::Metadata.max_version())]);
    let RequestBody::Metadata(m) = &w[0].2 else {
        panic!()
    };
    assert_eq!(m.topics, None, "all topics");
    t.reply(
        conn(0),
        &w[0].1,
        metadata(&[(1, "k1"), (2, "k2")], &[("t", &[1, 2])]),
    );
    assert_eq!(
        t.events(),
        vec![Event::Done {
            op,
            result: Ok(Output::Cluster)
        }]
    );
    assert_eq!(t.client.cluster().leader("t", 1), Some(2));
    assert_eq!(t.client.cluster().brokers().count(), 2);
    // The age timer is the only one left.
    assert_eq!(
        t.client.poll_timeout(),
        Some(t.now + t.client.config().metadata_max_age)
    );
}

#[test]
fn kafka_09_default_config_never_probes_and_uses_v0() {
    let mut t = Harness::new(kafka09());
    t.client.update_cluster(t.now);
    t.ios();
    t.connect(conn(0));
    let w = t.written();
    assert_eq!(key_version(&w), vec![(3, 0)]);
    let RequestBody::Metadata(m) = &w[0].2 else {
        panic!()
    };
    assert_eq!(
        m.topics,
        Some(vec![]),
        "v0 asks for all topics with an empty list"
    );
}

#[test]
fn unanswered_api_versions_falls_back_and_reconnects() {
    let mut t = Harness::new(ClientConfig {
        broker_version: BrokerVersion::new(0, 10, 0),
        ..kafka09()
    });
    let t0 = t.now;
    let op = t.client.update_cluster(t.now);
    t.ios();
    t.connect(conn(0));
    assert_eq!(key_version(&t.written()), vec![(18, 3)]);
    // Kafka 0.9.0.1: no answer, no close.
    assert_eq!(t.advance_to_timeout(), t0 + Duration::from_secs(3));
    assert_eq!(
        t.ios(),
        vec![
            Io::Close { conn: conn(0) },
            Io::Connect {
                conn: conn(1),
                host: "k1".into(),
                port: 9092
            }
        ]
    );
    t.connect(conn(1));
    let w = t.written();
    assert_eq!(key_version(&w), vec![(3, 0)], "no probe, 0.9.0's table");
    t.reply(conn(1), &w[0].1, metadata(&[(1, "k1")], &[]));
    assert_eq!(
        t.events(),
        vec![Event::Done {
            op,
            result: Ok(Output::Cluster)
        }]
    );
    // Later connections to that broker do not ask either.
    assert!(t
        .client
        .no_probe
        .contains_key(&BrokerAddress::new("k1", 9092)));
}

#[test]
fn pipelined_requests_are_written_before_any_answer_and_matched_out_of_order() {
    let mut t = Harness::new(ClientConfig {
        max_in_flight_requests_per_connection: 3,
        ..modern()
    });
    let body = |n: usize| {
        RequestBody::Metadata(crate::protocol::messages::MetadataRequest {
            topics: Some(
                (0..n)
                    .map(
                        |i| crate::protocol::messages::metadata_request::MetadataRequestTopic {
                            name: Some(format!("t{i}")),
                            ..Default::default()
                        },
                    )
                    .collect(),
            ),
            ..Default::default()
        })
    };
    let ops: Vec<OpId> = (0..4)
        .map(|n| t.client.send(t.now, Target::AnyBroker, body(n)))
        .collect();
    assert_eq!(t.ios().len(), 1, "one connection for all four");
    t.connect(conn(0));
    let w = t.negotiate();
    assert_eq!(w.len(), 3, "max in flight");
    // Answer in reverse order; each answer names its request by the controller id.
    for (i, (c, h, _)) in w.iter().enumerate().rev() {
        let resp = ResponseBody::Metadata(MetadataResponse {
            controller_id: i as i32,
            ..Default::default()
        });
        t.reply(*c, h, resp);
    }
    let w4 = t.written();
    assert_eq!(w4.len(), 1, "the fourth after a slot freed");
    // Its answer arrives split byte by byte.
    let bytes = answer(
        &w4[0].1,
        ResponseBody::Metadata(MetadataResponse {
            controller_id: 3,
            ..Default::default()
        }),
    );
    for b in &bytes {
        t.client
            .handle_data(t.now, conn(0), std::slice::from_ref(b));
    }
    let mut done: Vec<(OpId, i32)> = t
        .events()
        .into_iter()
        .map(|e| match e {
            Event::Done {
                op,
                result: Ok(Output::Response(ResponseBody::Metadata(m))),
            } => (op, m.controller_id),
            other => panic!("{other:?}"),
        })
        .collect();
    done.sort();
    assert_eq!(
        done,
        ops.iter()
            .enumerate()
            .map(|(i, &o)| (o, i as i32))
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_connection_lost_mid_request_is_retried_on_a_new_connection() {
    let mut t = Harness::new(modern());
    let op = t.client.update_cluster(t.now);
    t.ios();
    t.connect(conn(0));
    let w = t.negotiate();
    assert_eq!(key_version(&w), vec![(3, 12)]);
    let lost_at = t.now;
    t.client.handle_closed(
        t.now,
        conn(0),
        Some(TransportError::closed("reset by peer")),
    );
    let evs = t.events();
    assert!(
        matches!(&evs[..], [Event::BrokerDown { host, .. }] if host == "k1"),
        "{evs:?}"
    );
    assert!(t.ios().is_empty(), "waits for the backoff");
    let t1 = t.advance_to_timeout();
    let backoff = t1 - lost_at;
    assert!(
        backoff >= Duration::from_millis(80) && backoff <= Duration::from_millis(120),
        "{backoff:?}"
    );
    assert_eq!(
        t.ios(),
        vec![Io::Connect {
            conn: conn(1),
            host: "k1".into(),
            port: 9092
        }]
    );
    t.connect(conn(1));
    let w = t.negotiate();
    assert_eq!(key_version(&w), vec![(3, 12)], "the same request, again");
    t.reply(conn(1), &w[0].1, metadata(&[(1, "k1")], &[]));
    assert_eq!(
        t.events(),
        vec![Event::Done {
            op,
            result: Ok(Output::Cluster)
        }]
    );
}

#[test]
fn refused_connections_back_off_exponentially_then_the_operation_times_out() {
    let run = |seed: u64| {
        let mut t = Harness::new(ClientConfig {
            rng_seed: Some(seed),
            reconnect_backoff: Duration::from_millis(100),
            reconnect_backoff_max: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            ..modern()
        });
        let t0 = t.now;
        let op = t.client.update_cluster(t.now);
        let mut attempts = Vec::new();
        let mut result = None;
        for _ in 0..100 {
            for io in t.ios() {
                if let Io::Connect { conn, .. } = io {
                    attempts.push(t.now - t0);
                    let refused = TransportError::new(TransportErrorKind::Refused, "refused");
                    t.client.handle_connect_failed(t.now, conn, refused);
                }
            }
            for e in t.events() {
                if let Event::Done { op: o, result: r } = e {
                    assert_eq!(o, op);
                    result = Some(r);
                }
            }
            if result.is_some() {
                break;
            }
            t.advance_to_timeout();
        }
        (
            attempts,
            result.expect("the operation finished"),
            t.now - t0,
        )
    };
    let (a, result, took) = run(1);
    assert!(
        matches!(result, Err(Error::Timeout { ref what }) if what.contains("refused")),
        "{result:?}"
    );
    assert_eq!(took, Duration::from_secs(10), "no later than the deadline");
    let gaps: Vec<Duration> = a.windows(2).map(|w| w[1] - w[0]).collect();
    for (i, g) in gaps.iter().enumerate() {
        let raw = (Duration::from_millis(100) * 2u32.pow(i as u32)).min(Duration::from_secs(2));
        assert!(
            *g >= raw.mul_f64(0.8) && *g <= raw.mul_f64(1.2).min(Duration::from_secs(2)),
            "gap {i}: {g:?}"
        );
    }
    assert!(gaps.len() >= 6, "{gaps:?}");
    assert_eq!(run(1).0, a, "same seed, same schedule");
    assert_ne!(run(2).0, a, "another seed, other jitter");
}

#[test]
fn an_unanswered_request_fails_at_its_deadline_and_the_connection_is_closed() {
    let mut t = Harness::new(modern());
    let t0 = t.now;
    let op = t.client.update_cluster(t.now);
    t.ios();
    t.connect(conn(0));
    assert_eq!(t.negotiate().len(), 1);
    assert_eq!(t.advance_to_timeout(), t0 + Duration::from_secs(30));
    let evs = t.events();
    assert!(
        evs.iter().any(
            |e| matches!(e, Event::Done { op: o, result: Err(Error::Timeout { .. }) } if *o == op)
        ),
        "{evs:?}"
    );
    assert!(t.ios().contains(&Io::Close { conn: conn(0) }));
}

#[test]
fn oversized_frame_fails_the_operation_with_a_typed_error_and_closes() {
    let mut t = Harness::new(ClientConfig {
        max_frame_size: 1024,
        ..modern()
    });
    let op = t.client.update_cluster(t.now);
    t.ios();
    t.connect(conn(0));
    t.negotiate();
    t.client
        .handle_data(t.now, conn(0), &[0, 0, 0x10, 0x00, 1, 2, 3]);
    let evs = t.events();
    assert!(
        evs.contains(&Event::Done {
            op,
            result: Err(Error::Protocol(
                crate::protocol::DecodeError::FrameTooLarge {
                    size: 4096,
                    max: 1024
                }
            ))
        }),
        "{evs:?}"
    );
    assert!(t.ios().contains(&Io::Close { conn: conn(0) }));
}

#[test]
fn list_offsets_refreshes_metadata_after_not_leader_and_retries_on_the_new_leader() {
    let mut t = Harness::new(modern());
    let op = t.client.list_offsets(t.now, "t", vec![(0, -1)]);
    t.ios();
    t.connect(conn(0));
    let w = t.negotiate();
    assert_eq!(w[0].1.request_api_key, 3);
    t.reply(
        conn(0),
        &w[0].1,
        metadata(&[(1, "k1"), (2, "k2")], &[("t", &[2])]),
    );
    // The leader, broker 2, needs its own connection.
    assert_eq!(
        t.ios(),
        vec![Io::Connect {
            conn: conn(1),
            host: "k2".into(),
            port: 9092
        }]
    );
    t.connect(conn(1));
    let w = t.negotiate();
    assert_eq!(
        key_version(&w),
        vec![(2, ApiKey::ListOffsets.max_version())]
    );
    assert_eq!(w[0].0, conn(1));
    let lo = |code: ErrorCode, offset: i64| {
        ResponseBody::ListOffsets(ListOffsetsResponse {
            topics: vec![ListOffsetsTopicResponse {
                name: "t".into(),
                partitions: vec![ListOffsetsPartitionResponse {
                    partition_index: 0,
                    error_code: code.code(),
                    offset,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        })
    };
    t.reply(conn(1), &w[0].1, lo(ErrorCode::NotLeaderOrFollower, -1));
    assert!(t.client.cluster().stale_reason().is_some());
    // A metadata refresh goes out (on any ready connection) before the retry.
    let mut w = t.written();
    if w.is_empty() {
        t.advance_to_timeout();
        w = t.written();
    }
    assert_eq!(key_version(&w), vec![(3, 12)]);
    let (c, h, _) = w.remove(0);
    t.reply(c, &h, metadata(&[(1, "k1"), (2, "k2")], &[("t", &[1])]));
    let mut w = t.written();
    for _ in 0..3 {
        if !w.is_empty() {
            break;
        }
        t.advance_to_timeout();
        w = t.written();
    }
    assert_eq!(
        key_version(&w),
        vec![(2, ApiKey::ListOffsets.max_version())]
    );
    assert_eq!(
        w[0].0,
        conn(0),
        "now to broker 1 (k1, the bootstrap connection)"
    );
    t.reply(conn(0), &w[0].1, lo(ErrorCode::Unknown(0), 42).clone_ok());
    assert_eq!(
        t.events(),
        vec![Event::Done {
            op,
            result: Ok(Output::Offsets(vec![PartitionOffset {
                partition: 0,
                result: Ok(42)
            }]))
        }]
    );
}

trait CloneOk {
    fn clone_ok(self) -> ResponseBody;
}

impl CloneOk for ResponseBody {
    /// Clears the error code (helper for building a success answer).
    fn clone_ok(mut self) -> ResponseBody {
        if let ResponseBody::ListOffsets(r) = &mut self {
            for t in &mut r.topics {
                for p in &mut t.partitions {
                    p.error_code = 0;
                }
            }
        }
        self
    }
}

#[test]
fn list_offsets_v0_on_kafka_09_groups_partitions_by_leader_and_reads_the_old_style_list() {
    let mut t = Harness::new(kafka09());
    let op = t
        .client
        .list_offsets(t.now, "t", vec![(0, -2), (1, -1), (2, -1)]);
    t.ios();
    t.connect(conn(0));
    let w = t.written();
    // Partitions 0 and 2 on broker 1 (k1), partition 1 on broker 2.
    t.reply(
        conn(0),
        &w[0].1,
        metadata(&[(1, "k1"), (2, "k2")], &[("t", &[1, 2, 1])]),
    );
    assert_eq!(
        t.ios(),
        vec![Io::Connect {
            conn: conn(1),
            host: "k2".into(),
            port: 9092
        }]
    );
    t.connect(conn(1));
    let w = t.written();
    assert_eq!(
        key_version(&w),
        vec![(2, 0), (2, 0)],
        "one request per leader"
    );
    for (c, h, body) in &w {
        let RequestBody::ListOffsets(r) = body else {
            panic!()
        };
        let asked: Vec<(i32, i64, i32)> = r.topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.timestamp, p.max_num_offsets))
            .collect();
        if *c == conn(0) {
            assert_eq!(asked, vec![(0, -2, 1), (2, -1, 1)]);
        } else {
            assert_eq!(asked, vec![(1, -1, 1)]);
        }
        let resp = ResponseBody::ListOffsets(ListOffsetsResponse {
            topics: vec![ListOffsetsTopicResponse {
                name: "t".into(),
                partitions: asked
                    .iter()
                    .map(|&(p, ts, _)| ListOffsetsPartitionResponse {
                        partition_index: p,
                        old_style_offsets: vec![if ts == -2 { 0 } else { 17 + p as i64 }],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        });
        t.reply(*c, h, resp);
    }
    assert_eq!(
        t.events(),
        vec![Event::Done {
            op,
            result: Ok(Output::Offsets(vec![
                PartitionOffset {
                    partition: 0,
                    result: Ok(0)
                },
                PartitionOffset {
                    partition: 1,
                    result: Ok(18)
                },
                PartitionOffset {
                    partition: 2,
                    result: Ok(19)
                },
            ]))
        }]
    );
}

#[test]
fn create_topics_on_kafka_09_is_unsupported() {
    let mut t = Harness::new(kafka09());
    let op = t.client.create_topics(
        t.now,
        vec![NewTopic {
            name: "x".into(),
            num_partitions: 1,
            replication_factor: 1,
            configs: vec![],
        }],
        Duration::from_secs(5),
    );
    t.ios();
    t.connect(conn(0));
    let w = t.written();
    assert_eq!(
        key_version(&w),
        vec![(3, 0)],
        "metadata first, to find the controller"
    );
    t.reply(conn(0), &w[0].1, metadata(&[(1, "k1")], &[]));
    let evs = t.events();
    assert_eq!(
        evs,
        vec![Event::Done {
            op,
            result: Err(Error::Unsupported {
                api: ApiKey::CreateTopics,
                broker_version: "0.9.0".into()
            })
        }]
    );
    assert!(error_text(&evs[0]).contains("does not support CreateTopics"));
}

fn error_text(e: &Event) -> String {
    match e {
        Event::Done { result: Err(e), .. } => e.to_string(),
        other => format!("{other:?}"),
    }
}

#[test]
fn zookeeper_bootstrap_reads_registrations_under_the_chroot() {
    let mut t = Harness::new(ClientConfig {
        bootstrap: Bootstrap::ZooKeeper {
            connect: "z1:2181,z2:2181/kafka".into(),
        },
        ..ClientConfig::default()
    });
    let op = t.client.update_cluster(t.now);
    let ios = t.ios();
    assert_eq!(
        ios,
        vec![Io::ZooKeeper {
            op: ZkOpId(0),
            request: ZkRequest::GetChildren {
                path: "/kafka/brokers/ids".into()
            }
        }]
    );
    t.client.handle_zk_result(
        t.now,
        ZkOpId(0),
        Ok(ZkResponse::Children(vec![
            "2".into(),
            "1".into(),
            "junk".into(),
        ])),
    );
    assert_eq!(
        t.ios(),
        vec![
            Io::ZooKeeper {
                op: ZkOpId(1),
                request: ZkRequest::GetData {
                    path: "/kafka/brokers/ids/1".into()
                }
            },
            Io::ZooKeeper {
                op: ZkOpId(2),
                request: ZkRequest::GetData {
                    path: "/kafka/brokers/ids/2".into()
                }
            },
        ]
    );
    let reg = |h: &str| {
        format!(
            r#"{{"jmx_port":-1,"timestamp":"1","endpoints":["PLAINTEXT://{h}:9092"],"host":"{h}","version":2,"port":9092}}"#
        )
    };
    t.client.handle_zk_result(
        t.now,
        ZkOpId(2),
        Ok(ZkResponse::Data(reg("b2").into_bytes())),
    );
    assert!(t.ios().is_empty(), "waits for every registration");
    t.client.handle_zk_result(
        t.now,
        ZkOpId(1),
        Ok(ZkResponse::Data(
            b"{\"deep\":[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]}".to_vec(),
        )),
    );
    assert_eq!(
        t.ios(),
        vec![Io::Connect {
            conn: conn(0),
            host: "b2".into(),
            port: 9092
        }]
    );
    t.connect(conn(0));
    let w = t.written();
    t.reply(conn(0), &w[0].1, metadata(&[(2, "b2")], &[]));
    assert_eq!(
        t.events(),
        vec![Event::Done {
            op,
            result: Ok(Output::Cluster)
        }]
    );
}

#[test]
fn zookeeper_failure_is_retried_and_reported_at_the_deadline() {
    let mut t = Harness::new(ClientConfig {
        bootstrap: Bootstrap::ZooKeeper {
            connect: "z1:2181".into(),
        },
        request_timeout: Duration::from_secs(1),
        ..ClientConfig::default()
    });
    let op = t.client.update_cluster(t.now);
    let mut result = None;
    for _ in 0..100 {
        for io in t.ios() {
            if let Io::ZooKeeper { op, .. } = io {
                let e = ZkError {
                    kind: ZkErrorKind::NoNode,
                    message: "no /brokers/ids".into(),
                };
                t.client.handle_zk_result(t.now, op, Err(e));
            }
        }
        if let Some(Event::Done { op: o, result: r }) = t.events().pop() {
            assert_eq!(o, op);
            result = Some(r);
            break;
        }
        t.advance_to_timeout();
    }
    let result = result.unwrap();
    assert!(
        matches!(&result, Err(Error::Timeout { what }) if what.contains("ZooKeeper")),
        "{result:?}"
    );
}

#[test]
fn topic_metadata_waits_for_auto_created_topics_to_get_leaders() {
    let mut t = Harness::new(modern());
    let op = t.client.topic_metadata(t.now, vec!["new".into()], true);
    t.ios();
    t.connect(conn(0));
    let w = t.negotiate();
    let RequestBody::Metadata(m) = &w[0].2 else {
        panic!()
    };
    assert!(m.allow_auto_topic_creation);
    let creating = ResponseBody::Metadata(MetadataResponse {
        brokers: vec![MetadataResponseBroker {
            node_id: 1,
            host: "k1".into(),
            port: 9092,
            ..Default::default()
        }],
        topics: vec![MetadataResponseTopic {
            name: Some("new".into()),
            error_code: ErrorCode::LeaderNotAvailable.code(),
            ..Default::default()
        }],
        ..Default::default()
    });
    t.reply(conn(0), &w[0].1, creating);
    assert!(t.events().is_empty());
    t.advance_to_timeout();
    let w = t.written();
    assert_eq!(key_version(&w), vec![(3, 12)]);
    t.reply(conn(0), &w[0].1, metadata(&[(1, "k1")], &[("new", &[1])]));
    assert_eq!(
        t.events(),
        vec![Event::Done {
            op,
            result: Ok(Output::Topics(vec![TopicResult {
                name: "new".into(),
                error: None
            }]))
        }]
    );
    assert_eq!(t.client.cluster().leader("new", 0), Some(1));
}

#[test]
fn metadata_is_refreshed_on_the_age_timer_and_a_failing_refresh_does_not_spin() {
    let mut t = Harness::new(ClientConfig {
        metadata_max_age: Duration::from_secs(60),
        ..modern()
    });
    let t0 = t.now;
    t.client.update_cluster(t.now);
    t.ios();
    t.connect(conn(0));
    let w = t.negotiate();
    t.reply(conn(0), &w[0].1, metadata(&[(1, "k1")], &[("t", &[1])]));
    t.events();
    assert_eq!(t.advance_to_timeout(), t0 + Duration::from_secs(60));
    let w = t.written();
    assert_eq!(
        key_version(&w),
        vec![(3, 12)],
        "the client refreshes by itself"
    );
    // The broker goes away: the refresh fails; timers stay in the future.
    t.client.handle_closed(t.now, conn(0), None);
    for _ in 0..20 {
        let before = t.now;
        for io in t.ios() {
            if let Io::Connect { conn, .. } = io {
                let e = TransportError::new(TransportErrorKind::Refused, "refused");
                t.client.handle_connect_failed(t.now, conn, e);
            }
        }
        let next = t.client.poll_timeout().expect("a timer");
        assert!(next > before, "poll_timeout must not lie in the past");
        t.advance_to_timeout();
    }
}

#[test]
fn create_topics_goes_to_the_controller_and_retries_on_not_controller() {
    use crate::protocol::messages::create_topics_response::CreatableTopicResult;
    use crate::protocol::messages::CreateTopicsResponse;
    let mut t = Harness::new(modern());
    let op = t.client.create_topics(
        t.now,
        vec![NewTopic {
            name: "x".into(),
            num_partitions: 3,
            replication_factor: 1,
            configs: vec![("cleanup.policy".into(), "compact".into())],
        }],
        Duration::from_secs(5),
    );
    t.ios();
    t.connect(conn(0));
    let w = t.negotiate();
    // Broker 2 (k2) is the controller.
    let mut md = metadata(&[(2, "k2"), (1, "k1")], &[]);
    t.reply(conn(0), &w[0].1, md.clone());
    assert_eq!(
        t.ios(),
        vec![Io::Connect {
            conn: conn(1),
            host: "k2".into(),
            port: 9092
        }]
    );
    t.connect(conn(1));
    let w = t.negotiate();
    assert_eq!(
        key_version(&w),
        vec![(19, ApiKey::CreateTopics.max_version())]
    );
    let RequestBody::CreateTopics(r) = &w[0].2 else {
        panic!()
    };
    assert_eq!(r.timeout_ms, 5000);
    assert_eq!(r.topics[0].configs[0].value.as_deref(), Some("compact"));
    let answer_with = |code: ErrorCode| {
        ResponseBody::CreateTopics(CreateTopicsResponse {
            topics: vec![CreatableTopicResult {
                name: "x".into(),
                error_code: code.code(),
                ..Default::default()
            }],
            ..Default::default()
        })
    };
    t.reply(conn(1), &w[0].1, answer_with(ErrorCode::NotController));
    // The controller moved to broker 1: refresh, then ask it.
    let mut w = t.written();
    while w.is_empty() {
        t.advance_to_timeout();
        w = t.written();
    }
    assert_eq!(w[0].1.request_api_key, 3);
    if let ResponseBody::Metadata(m) = &mut md {
        m.controller_id = 1;
    }
    t.reply(w[0].0, &w[0].1, md);
    let mut w = t.written();
    while w.is_empty() {
        t.advance_to_timeout();
        w = t.written();
    }
    assert_eq!(w[0].0, conn(0), "broker 1 is k1, the bootstrap connection");
    assert_eq!(w[0].1.request_api_key, 19);
    let mut ok = answer_with(ErrorCode::NotController);
    if let ResponseBody::CreateTopics(r) = &mut ok {
        r.topics[0].error_code = 0;
    }
    t.reply(conn(0), &w[0].1, ok);
    assert_eq!(
        t.events(),
        vec![Event::Done {
            op,
            result: Ok(Output::Topics(vec![TopicResult {
                name: "x".into(),
                error: None
            }]))
        }]
    );
}

#[test]
fn delete_topics_uses_names_or_topic_states_by_version() {
    let versions = crate::connection::ApiVersions::from_response(&match all_api_versions() {
        ResponseBody::ApiVersions(r) => r,
        _ => unreachable!(),
    });
    let spec = ops::Spec::DeleteTopics {
        topics: vec!["a".into()],
        timeout_ms: 1,
    };
    let (body, v) = spec.build(&versions).unwrap();
    let RequestBody::DeleteTopics(r) = body else {
        panic!()
    };
    assert_eq!(v, ApiKey::DeleteTopics.max_version());
    assert_eq!(r.topics[0].name.as_deref(), Some("a"));
    assert!(r.topic_names.is_empty());
    let old = crate::connection::ApiVersions::from_broker_version(BrokerVersion::new(0, 10, 1));
    let (body, v) = spec.build(&old).unwrap();
    let RequestBody::DeleteTopics(r) = body else {
        panic!()
    };
    assert_eq!(v, 0);
    assert_eq!(r.topic_names, vec!["a".to_owned()]);
    let mut buf = Vec::new();
    RequestBody::DeleteTopics(r).encode(&mut buf, 0).unwrap();
}

quickcheck::quickcheck! {
    /// Whatever the transport and the brokers do (garbage bytes, closures, refusals,
    /// time jumps), the client does not panic, every operation finishes exactly once,
    /// and none later than its deadline.
    fn every_operation_finishes_once_by_its_deadline(seed: u64, actions: Vec<(u8, Vec<u8>)>) -> bool {
        let r = arbitrary_run(seed, actions);
        if let Err(e) = &r {
            eprintln!("{e}");
        }
        r.is_ok()
    }
}

fn arbitrary_run(seed: u64, actions: Vec<(u8, Vec<u8>)>) -> Result<(), String> {
    {
        let timeout = Duration::from_secs(5);
        let mut client = Client::new(ClientConfig {
            rng_seed: Some(seed),
            request_timeout: timeout,
            bootstrap: Bootstrap::Brokers(BrokerAddress::parse("k1:1,k2:2").unwrap()),
            broker_version: BrokerVersion::new(1, 0, 0),
            ..ClientConfig::default()
        })
        .unwrap();
        let t0 = Instant::now();
        let mut now = t0;
        let ops = [
            client.update_cluster(now),
            client.list_offsets(now, "t", vec![(0, -1), (1, -2)]),
            client.topic_metadata(now, vec!["t".into()], true),
            client.delete_topics(now, vec!["t".into()], timeout),
        ];
        let mut open: Vec<ConnectionHandle> = Vec::new();
        let mut done: Vec<(OpId, Instant)> = Vec::new();
        let mut buf = Vec::new();
        let mut drain = |client: &mut Client,
                         open: &mut Vec<ConnectionHandle>,
                         now: Instant,
                         done: &mut Vec<(OpId, Instant)>| {
            while let Some(io) = client.poll_io() {
                match io {
                    Io::Connect { conn, .. } => open.push(conn),
                    Io::Close { conn } => open.retain(|c| *c != conn),
                    _ => {}
                }
            }
            while client.poll_transmit(now, &mut buf).is_some() {
                buf.clear();
            }
            while let Some(e) = client.poll_event() {
                if let Event::Done { op, .. } = e {
                    done.push((op, now));
                }
            }
        };
        drain(&mut client, &mut open, now, &mut done);
        for (kind, data) in actions {
            let pick = open
                .get(data.first().copied().unwrap_or(0) as usize % open.len().max(1))
                .copied();
            match (kind % 5, pick) {
                (0, Some(c)) => client.handle_connected(now, c),
                (1, Some(c)) => client.handle_data(now, c, &data),
                (2, Some(c)) => {
                    open.retain(|x| *x != c);
                    client.handle_closed(now, c, None);
                }
                (3, Some(c)) => {
                    open.retain(|x| *x != c);
                    let e = TransportError::new(TransportErrorKind::Refused, "no");
                    client.handle_connect_failed(now, c, e);
                }
                _ => {
                    // A transport sleeps at most until poll_timeout.
                    let jump = now + Duration::from_millis(50 * data.len() as u64);
                    now = client.poll_timeout().map_or(jump, |t| jump.min(t)).max(now);
                    client.handle_timeout(now);
                }
            }
            drain(&mut client, &mut open, now, &mut done);
        }
        // Then let time run out.
        for _ in 0..10_000 {
            if done.len() >= ops.len() {
                break;
            }
            let Some(t) = client.poll_timeout() else {
                break;
            };
            if t < now {
                return Err(format!("timer in the past: {:?} < {:?}", t - t0, now - t0));
            }
            now = t;
            client.handle_timeout(now);
            drain(&mut client, &mut open, now, &mut done);
        }
        let mut ids: Vec<OpId> = done.iter().map(|d| d.0).collect();
        ids.sort();
        if ids != ops.to_vec() || done.iter().any(|&(_, at)| at > t0 + timeout) {
            let done: Vec<_> = done.iter().map(|(o, at)| (o, *at - t0)).collect();
            return Err(format!("done {done:?}, now {:?}", now - t0));
        }
        Ok(())
    }
}

#[test]
fn arbitrary_run_regressions() {
    let z = |n| vec![0u8; n];
    arbitrary_run(
        0,
        vec![
            (1, vec![6, 64, 0, 1]),
            (1, z(4)),
            (0, z(14)),
            (1, vec![6, 64, 0, 1]),
            (1, z(4)),
            (0, z(90)),
        ],
    )
    .unwrap();
}

#[test]
fn a_leader_error_for_one_partition_of_a_grouped_request_retries_only_that_one() {
    let mut t = Harness::new(modern());
    let op = t.client.list_offsets(t.now, "t", vec![(0, -1), (1, -1)]);
    t.ios();
    t.connect(conn(0));
    let w = t.negotiate();
    t.reply(
        conn(0),
        &w[0].1,
        metadata(&[(1, "k1"), (2, "k2")], &[("t", &[1, 1])]),
    );
    let w = t.written();
    assert_eq!(w.len(), 1, "both partitions in one request to broker 1");
    let resp = |parts: &[(i32, ErrorCode, i64)]| {
        ResponseBody::ListOffsets(ListOffsetsResponse {
            topics: vec![ListOffsetsTopicResponse {
                name: "t".into(),
                partitions: parts
                    .iter()
                    .map(|&(p, code, offset)| ListOffsetsPartitionResponse {
                        partition_index: p,
                        error_code: if code == ErrorCode::Unknown(0) {
                            0
                        } else {
                            code.code()
                        },
                        offset,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        })
    };
    t.reply(
        conn(0),
        &w[0].1,
        resp(&[
            (0, ErrorCode::Unknown(0), 5),
            (1, ErrorCode::NotLeaderOrFollower, -1),
        ]),
    );
    assert!(t.events().is_empty());
    // Refresh (partition 1 moved to broker 2), then only partition 1 is asked again.
    let mut w = t.written();
    while w.is_empty() {
        t.advance_to_timeout();
        w = t.written();
    }
    assert_eq!(w[0].1.request_api_key, 3);
    t.reply(
        w[0].0,
        &w[0].1,
        metadata(&[(1, "k1"), (2, "k2")], &[("t", &[1, 2])]),
    );
    let mut ios = t.ios();
    while ios.is_empty() {
        t.advance_to_timeout();
        ios = t.ios();
    }
    assert_eq!(
        ios,
        vec![Io::Connect {
            conn: conn(1),
            host: "k2".into(),
            port: 9092
        }]
    );
    t.connect(conn(1));
    let w = t.negotiate();
    let RequestBody::ListOffsets(r) = &w[0].2 else {
        panic!("{w:?}")
    };
    assert_eq!(r.topics[0].partitions.len(), 1);
    assert_eq!(r.topics[0].partitions[0].partition_index, 1);
    t.reply(conn(1), &w[0].1, resp(&[(1, ErrorCode::Unknown(0), 9)]));
    assert_eq!(
        t.events(),
        vec![Event::Done {
            op,
            result: Ok(Output::Offsets(vec![
                PartitionOffset {
                    partition: 0,
                    result: Ok(5)
                },
                PartitionOffset {
                    partition: 1,
                    result: Ok(9)
                },
            ]))
        }]
    );
}

#[test]
fn a_connect_that_never_completes_is_abandoned_after_connect_timeout_and_the_next_broker_tried() {
    let mut t = Harness::new(ClientConfig {
        bootstrap: Bootstrap::Brokers(BrokerAddress::parse("k1:9092,k2:9092").unwrap()),
        connect_timeout: Duration::from_secs(2),
        ..modern()
    });
    let t0 = t.now;
    let op = t.client.update_cluster(t.now);
    assert_eq!(
        t.ios(),
        vec![Io::Connect {
            conn: conn(0),
            host: "k1".into(),
            port: 9092
        }]
    );
    // The transport never reports: the core gives up at connect_timeout.
    assert_eq!(t.advance_to_timeout(), t0 + Duration::from_secs(2));
    let evs = t.events();
    assert!(
        matches!(
            &evs[..],
            [Event::BrokerDown {
                error: Error::Transport(TransportError {
                    kind: TransportErrorKind::ConnectTimeout,
                    ..
                }),
                ..
            }]
        ),
        "{evs:?}"
    );
    assert_eq!(
        t.ios(),
        vec![
            Io::Close { conn: conn(0) },
            Io::Connect {
                conn: conn(1),
                host: "k2".into(),
                port: 9092
            }
        ]
    );
    t.connect(conn(1));
    let w = t.negotiate();
    t.reply(conn(1), &w[0].1, metadata(&[(1, "k1")], &[]));
    assert_eq!(
        t.events(),
        vec![Event::Done {
            op,
            result: Ok(Output::Cluster)
        }]
    );
}

#[test]
fn close_finishes_operations_and_closes_connections() {
    let mut t = Harness::new(modern());
    let op = t.client.update_cluster(t.now);
    t.ios();
    t.connect(conn(0));
    t.negotiate();
    t.client.close(t.now);
    assert_eq!(t.ios(), vec![Io::Close { conn: conn(0) }]);
    assert_eq!(
        t.events(),
        vec![Event::Done {
            op,
            result: Err(Error::Misuse("client closed".into()))
        }]
    );
    assert_eq!(t.client.poll_timeout(), None);
    // Answers for the closed connection are ignored.
    t.client.handle_data(t.now, conn(0), &[0, 0, 0, 1, 0]);
    assert!(t.events().is_empty());
}

mod hardening;
