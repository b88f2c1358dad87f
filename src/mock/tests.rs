//! The mock cluster driven through the codec directly: requests in, responses out.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::protocol::compression::Compression;
use crate::protocol::header::{decode_response, encode_request};
use crate::protocol::messages::create_topics_request::CreatableTopic;
use crate::protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use crate::protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use crate::protocol::messages::metadata_request::MetadataRequestTopic;
use crate::protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use crate::protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use crate::protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use crate::protocol::messages::{
    ApiVersionsRequest, CreateTopicsRequest, DeleteTopicsRequest, FetchResponse,
    FindCoordinatorRequest, ListOffsetsRequest, MetadataRequest, MetadataResponse,
    OffsetCommitRequest, OffsetFetchRequest, ProduceRequest, ProduceResponse, Request,
    SaslAuthenticateRequest, SaslHandshakeRequest,
};
use crate::protocol::records::legacy::{encode_message_set, MessageSetOptions};
use crate::protocol::records::{Batches, DecodeLimits};

/// A test client on one connection.
struct Peer {
    conn: MockConn,
    frames: FrameDecoder,
    correlation: i32,
    closed: bool,
}

impl Peer {
    fn open(cluster: &mut MockCluster, now: Instant, broker: i32) -> Peer {
        Peer {
            conn: cluster.connect(now, broker).unwrap(),
            frames: FrameDecoder::new(1 << 24),
            correlation: 0,
            closed: false,
        }
    }

    fn send<R: Request>(&mut self, cluster: &mut MockCluster, now: Instant, v: i16, r: &R) -> i32 {
        self.correlation += 1;
        let mut buf = Vec::new();
        encode_request(&mut buf, v, self.correlation, Some("test"), r).unwrap();
        cluster.handle_data(now, self.conn, &buf);
        self.correlation
    }

    /// Takes what is ready: `Ok(frames)` or `Err(())` if the broker closed.
    fn read(&mut self, cluster: &mut MockCluster, now: Instant) -> Result<Vec<Bytes>, ()> {
        let mut buf = Vec::new();
        let closed = loop {
            match cluster.poll_transmit(now, self.conn, &mut buf) {
                Some(MockTransmit::Data) => continue,
                Some(MockTransmit::Closed) => break true,
                None => break false,
            }
        };
        self.closed |= closed;
        self.frames.handle_data(&buf);
        let mut out = Vec::new();
        while let Some(f) = self.frames.poll_frame().unwrap() {
            out.push(f);
        }
        if closed && out.is_empty() {
            return Err(());
        }
        Ok(out)
    }

    fn call<R: Request>(
        &mut self,
        cluster: &mut MockCluster,
        now: Instant,
        v: i16,
        r: &R,
    ) -> R::Response {
        let id = self.send(cluster, now, v, r);
        let frames = self.read(cluster, now).expect("connection closed");
        assert_eq!(frames.len(), 1, "one response expected");
        let (header, body) = decode_response::<R>(frames[0].clone(), v).unwrap();
        assert_eq!(header.correlation_id, id);
        body
    }
}

fn metadata(topics: &[&str]) -> MetadataRequest {
    MetadataRequest {
        topics: Some(
            topics
                .iter()
                .map(|t| MetadataRequestTopic {
                    name: Some((*t).to_owned()),
                    ..Default::default()
                })
                .collect(),
        ),
        allow_auto_topic_creation: true,
        ..Default::default()
    }
}

fn batch(values: &[&str]) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            offset: i as i64,
            timestamp: 1000 + i as i64,
            value: Some(Bytes::copy_from_slice(v.as_bytes())),
            ..Record::default()
        })
        .collect();
    let mut buf = Vec::new();
    encode_record_batch(&mut buf, &BatchHeader::default(), &records).unwrap();
    Bytes::from(buf)
}

fn produce(topic: &str, partition: i32, acks: i16, records: Bytes) -> ProduceRequest {
    ProduceRequest {
        acks,
        timeout_ms: 1000,
        topic_data: vec![TopicProduceData {
            name: topic.to_owned(),
            partition_data: vec![PartitionProduceData {
                index: partition,
                records: Some(records),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn fetch(topic: &str, partition: i32, offset: i64, max: i32) -> FetchRequest {
    FetchRequest {
        replica_id: -1,
        max_wait_ms: 0,
        min_bytes: 0,
        max_bytes: i32::MAX,
        topics: vec![FetchTopic {
            topic: topic.to_owned(),
            partitions: vec![FetchPartition {
                partition,
                fetch_offset: offset,
                partition_max_bytes: max,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn values(records: &Bytes) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for b in Batches::new(records.clone(), DecodeLimits::default()) {
        for r in b.unwrap().records() {
            let r = r.unwrap();
            out.push((
                r.offset,
                String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
            ));
        }
    }
    out
}

fn partition_records(f: &FetchResponse) -> Bytes {
    f.responses[0].partitions[0].records.clone().unwrap()
}

#[test]
fn metadata_describes_brokers_topics_and_versions() {
    let now = Instant::now();
    let mut cluster = MockCluster::new(
        MockConfig::new(3)
            .with_topic("events", 4, 2)
            .with_offsets_topic(3),
    );
    let mut peer = Peer::open(&mut cluster, now, 1);
    for v in [0, 1, 5, 9, 12] {
        let m = peer.call(
            &mut cluster,
            now,
            v,
            &MetadataRequest {
                topics: if v == 0 { Some(vec![]) } else { None },
                ..Default::default()
            },
        );
        assert_eq!(m.brokers.len(), 3, "v{v}");
        assert_eq!(m.topics.len(), 2, "v{v}");
        let events = m
            .topics
            .iter()
            .find(|t| t.name.as_deref() == Some("events"))
            .unwrap();
        assert_eq!(events.partitions.len(), 4);
        for p in &events.partitions {
            assert_eq!(p.replica_nodes.len(), 2);
            assert_eq!(p.leader_id, p.replica_nodes[0]);
            assert_eq!(
                Some(p.leader_id),
                cluster.leader("events", p.partition_index)
            );
        }
        let offsets = m
            .topics
            .iter()
            .find(|t| t.name.as_deref() == Some("__consumer_offsets"))
            .unwrap();
        assert_eq!(offsets.is_internal, v >= 1);
        assert_eq!(m.controller_id, if v >= 1 { 0 } else { -1 });
        assert_eq!(m.cluster_id.is_some(), v >= 2);
    }
    // v1+: an empty list asks for no topics.
    let m = peer.call(&mut cluster, now, 1, &metadata(&[]));
    assert!(m.topics.is_empty());
}

#[test]
fn placement_is_reproducible_per_seed() {
    let layout = |seed| {
        let c = MockCluster::new(MockConfig::new(5).with_topic("t", 8, 3).with_seed(seed));
        (0..8)
            .map(|p| c.replicas("t", p).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(layout(1), layout(1));
    assert!((0..20).any(|s| layout(s) != layout(1)));
}

#[test]
fn auto_create_reports_leader_not_available_first() {
    let now = Instant::now();
    let mut cluster = MockCluster::new(MockConfig::new(1));
    let mut peer = Peer::open(&mut cluster, now, 0);
    let m = peer.call(&mut cluster, now, 4, &metadata(&["fresh"]));
    assert_eq!(m.topics[0].error_code, ErrorCode::LeaderNotAvailable.code());
    let m = peer.call(&mut cluster, now, 4, &metadata(&["fresh"]));
    assert_eq!(m.topics[0].error_code, 0);
    assert_eq!(m.topics[0].partitions.len(), 1);
    // Without auto-creation (asked for in v4+) and with an invalid name.
    let mut req = metadata(&["other"]);
    req.allow_auto_topic_creation = false;
    let m = peer.call(&mut cluster, now, 4, &req);
    assert_eq!(
        m.topics[0].error_code,
        ErrorCode::UnknownTopicOrPartition.code()
    );
    let m = peer.call(&mut cluster, now, 4, &metadata(&["bad name"]));
    assert_eq!(
        m.topics[0].error_code,
        ErrorCode::InvalidTopicException.code()
    );
    assert_eq!(cluster.topic_names(), vec!["fresh".to_owned()]);
}

#[test]
fn api_versions_lists_the_table_and_answers_too_new_versions_in_v0() {
    let now = Instant::now();
    let mut config = MockConfig::new(1);
    config.brokers[0].api_versions =
        vec![(ApiKey::ApiVersions, 0, 2), (ApiKey::CreateTopics, 0, -1)];
    let mut cluster = MockCluster::new(config);
    let mut peer = Peer::open(&mut cluster, now, 0);
    let r = peer.call(&mut cluster, now, 2, &ApiVersionsRequest::default());
    assert_eq!(r.error_code, 0);
    let metadata = r.api_keys.iter().find(|k| k.api_key == 3).unwrap();
    assert_eq!((metadata.min_version, metadata.max_version), (0, 12));
    assert!(r
        .api_keys
        .iter()
        .all(|k| k.api_key != ApiKey::CreateTopics as i16));
    // v3 is too new here: the answer comes in v0 with UNSUPPORTED_VERSION.
    peer.send(&mut cluster, now, 3, &ApiVersionsRequest::default());
    let frames = peer.read(&mut cluster, now).unwrap();
    let (_, r) = decode_response::<ApiVersionsRequest>(frames[0].clone(), 0).unwrap();
    assert_eq!(r.error_code, ErrorCode::UnsupportedVersion.code());
    assert!(!r.api_keys.is_empty());
}

#[test]
fn kafka_09_never_answers_api_versions_and_closes_on_newer_versions() {
    let now = Instant::now();
    let mut cluster = MockCluster::new(MockConfig::new(1).kafka_09().with_topic("t", 1, 1));
    let mut peer = Peer::open(&mut cluster, now, 0);
    peer.send(&mut cluster, now, 0, &ApiVersionsRequest::default());
    assert_eq!(peer.read(&mut cluster, now), Ok(vec![]));
    // The connection is muted: even a valid request gets nothing, and it stays open.
    peer.send(&mut cluster, now, 0, &metadata(&[]));
    assert_eq!(
        peer.read(&mut cluster, now + Duration::from_secs(60)),
        Ok(vec![])
    );
    assert!(cluster.is_open(peer.conn));
    assert_eq!(cluster.poll_timeout(), None);
    // A fresh connection speaks v0.
    let mut peer = Peer::open(&mut cluster, now, 0);
    let m = peer.call(&mut cluster, now, 0, &metadata(&[]));
    assert_eq!(m.topics.len(), 1);
    // Metadata v1 is unknown to 0.9: the connection is dropped.
    peer.send(&mut cluster, now, 1, &metadata(&[]));
    assert_eq!(peer.read(&mut cluster, now), Err(()));
    assert!(!cluster.is_open(peer.conn));
}

#[test]
fn produce_assigns_offsets_and_fetch_returns_them() {
    let now = Instant::now();
    let mut cluster = MockCluster::new(MockConfig::new(2).with_topic("t", 1, 2));
    let leader = cluster.leader("t", 0).unwrap();
    let mut peer = Peer::open(&mut cluster, now, leader);
    for v in [3, 7, 9] {
        let r = peer.call(
            &mut cluster,
            now,
            v,
            &produce("t", 0, 1, batch(&["a", "b"])),
        );
        let p = &r.responses[0].partition_responses[0];
        assert_eq!(p.error_code, 0);
        assert_eq!(p.base_offset, cluster.offsets("t", 0).unwrap().1 - 2);
    }
    assert_eq!(cluster.offsets("t", 0), Some((0, 6)));
    for v in [4, 11, 12] {
        let f = peer.call(&mut cluster, now, v, &fetch("t", 0, 3, 1 << 20));
        let p = &f.responses[0].partitions[0];
        assert_eq!(p.error_code, 0);
        assert_eq!(p.high_watermark, 6);
        // The batch holding offset 3 comes whole, from 2.
        let got = values(p.records.as_ref().unwrap());
        assert_eq!(got.first(), Some(&(2, "a".to_owned())));
        assert_eq!(got.len(), 4);
    }
    let got: Vec<i64> = cluster.records("t", 0).iter().map(|r| r.offset).collect();
    assert_eq!(got, vec![0, 1, 2, 3, 4, 5]);
    // Fetch past the end, and from the follower.
    let f = peer.call(&mut cluster, now, 4, &fetch("t", 0, 7, 1 << 20));
    assert_eq!(
        f.responses[0].partitions[0].error_code,
        ErrorCode::OffsetOutOfRange.code()
    );
    let follower = 1 - leader;
    let mut other = Peer::open(&mut cluster, now, follower);
    let f = other.call(&mut cluster, now, 4, &fetch("t", 0, 0, 1 << 20));
    assert_eq!(
        f.responses[0].partitions[0].error_code,
        ErrorCode::NotLeaderOrFollower.code()
    );
    let r = other.call(&mut cluster, now, 3, &produce("t", 0, 1, batch(&["x"])));
    assert_eq!(
        r.responses[0].partition_responses[0].error_code,
        ErrorCode::NotLeaderOrFollower.code()
    );
}

#[test]
fn fetch_by_topic_id_in_v13() {
    let now = Instant::now();
    let mut cluster = MockCluster::new(MockConfig::new(1).with_topic("t", 1, 1));
    cluster
        .append_records(
            now,
            "t",
            0,
            &[Record {
                value: Some("v".into()),
                ..Record::default()
            }],
        )
        .unwrap();
    let mut peer = Peer::open(&mut cluster, now, 0);
    let m = peer.call(&mut cluster, now, 12, &metadata(&["t"]));
    let id = m.topics[0].topic_id;
    assert_ne!(id, Uuid::default());
    let mut req = fetch("", 0, 0, 1 << 20);
    req.topics[0].topic_id = id;
    let f = peer.call(&mut cluster, now, 13, &req);
    assert_eq!(f.responses[0].topic_id, id);
    assert_eq!(values(&partition_records(&f)), vec![(0, "v".to_owned())]);
    req.topics[0].topic_id = Uuid([9; 16]);
    let f = peer.call(&mut cluster, now, 13, &req);
    assert_eq!(
        f.responses[0].partitions[0].error_code,
        ErrorCode::UnknownTopicId.code()
    );
}

#[test]
fn legacy_message_sets_get_offsets_too() {
    let now = Instant::now();
    let mut cluster = MockCluster::new(MockConfig::new(1).kafka_09().with_topic("t", 1, 1));
    let mut peer = Peer::open(&mut cluster, now, 0);
    let records: Vec<Record> = (0..3)
        .map(|i| Record {
            offset: i,
            timestamp: -1,
            value: Some(Bytes::from(format!("m{i}"))),
            ..Record::default()
        })
        .collect();
    for compression in [Compression::None, Compression::Gzip] {
        let mut set = Vec::new();
        let options = MessageSetOptions {
            magic: 0,
            compression,
            ..Default::default()
        };
        encode_message_set(&mut set, &options, &records).unwrap();
        let r = peer.call(&mut cluster, now, 0, &produce("t", 0, 1, Bytes::from(set)));
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    }
    let mut set = Vec::new();
    let options = MessageSetOptions {
        magic: 1,
        compression: Compression::Gzip,
        ..Default::default()
    };
    encode_message_set(&mut set, &options, &records).unwrap();
    let r = peer.call(&mut cluster, now, 1, &produce("t", 0, 1, Bytes::from(set)));
    assert_eq!(r.responses[0].partition_responses[0].base_offset, 6);
    let f = peer.call(&mut cluster, now, 0, &fetch("t", 0, 0, 1 << 20));
    let got: Vec<i64> = values(&partition_records(&f))
        .iter()
        .map(|(o, _)| *o)
        .collect();
    assert_eq!(got, (0..9).collect::<Vec<_>>());
    // A 0.9 broker does not take record batches v2.
    let r = peer.call(&mut cluster, now, 1, &produce("t", 0, 1, batch(&["x"])));
    assert_eq!(
        r.responses[0].partition_responses[0].error_code,
        ErrorCode::CorruptMessage.code()
    );
    let r = peer.call(
        &mut cluster,
        now,
        1,
        &produce("t", 0, 1, Bytes::from_static(b"garbage!")),
    );
    assert_eq!(
        r.responses[0].partition_responses[0].error_code,
        ErrorCode::CorruptMessage.code()
    );
    assert_eq!(cluster.offsets("t", 0), Some((0, 9)));
}

#[test]
fn acks_zero_gets_no_response_but_is_stored() {
    let now = Instant::now();
    let mut cluster = MockCluster::new(MockConfig::new(1).with_topic("t", 1, 1));
    let mut peer = Peer::open(&mut cluster, now, 0);
    peer.send(&mut cluster, now, 3, &produce("t", 0, 0, batch(&["a"])));
    assert_eq!(peer.read(&mut cluster, now), Ok(vec![]));
    assert_eq!(cluster.offsets("t", 0), Some((0, 1)));
    let r = peer.call(&mut cluster, now, 3, &produce("t", 0, 2, batch(&["a"])));
    assert_eq!(
        r.responses[0].partition_responses[0].error_code,
        ErrorCode::InvalidRequiredAcks.code()
    );
}

#[test]
fn fetch_size_limits_by_version() {
    let now = Instant::now();
    let mut cluster = MockCluster::new(MockConfig::new(1).with_topic("t", 1, 1));
    let mut peer = Peer::open(&mut cluster, now, 0);
    let one = batch(&["0123456789"]);
    for _ in 0..3 {
        peer.call(&mut cluster, now, 3, &produce("t", 0, 1, one.clone()));
    }
    let size = one.len() as i32;
    // Two whole batches fit.
    let f = peer.call(&mut cluster, now, 4, &fetch("t", 0, 0, 2 * size + 5));
    assert_eq!(partition_records(&f).len(), 2 * one.len());
    // v3+: a first batch larger than the limit still comes whole.
    let f = peer.call(&mut cluster, now, 4, &fetch("t", 0, 0, 5));
    assert_eq!(partition_records(&f).len(), one.len());
    // v0-2: the set is cut at the limit (a partial batch).
    let f = peer.call(&mut cluster, now, 2, &fetch("t", 0, 0, size + 5));
    assert_eq!(partition_records(&f).len(), one.len() + 5);
    let mut batches = Batches::new(partition_records(&f), DecodeLimits::default());
    assert_eq!(batches.by_ref().count(), 1);
    assert!(batches.truncated().is_some());
    // The response-wide max_bytes.
    let mut req = fetch("t", 0, 0, 1 << 20);
    req.max_bytes = size + 1;
    let f = peer.call(&mut cluster, now, 4, &req);
    assert_eq!(partition_records(&f).len(), one.len());
}

#[test]
fn fetch_waits_for_min_bytes_on_the_callers_clock() {
    let now = Instant::now();
    let mut cluster = MockCluster::new(MockConfig::new(1).with_topic("t", 1, 1));
    let mut peer = Peer::open(&mut cluster, now, 0);
    let mut req = fetch("t", 0, 0, 1 << 20);
    req.min_bytes = 1;
    req.max_wait_ms = 500;
    // Nothing there: the fetch waits until max_wait.
    peer.send(&mut cluster, now, 4, &req);
    assert_eq!(peer.read(&mut cluster, now), Ok(vec![]));
    let deadline = now + Duration::from_millis(500);
    assert_eq!(cluster.poll_timeout(), Some(deadline));
    cluster.handle_timeout(deadline - Duration::from_millis(1));
    assert_eq!(peer.read(&mut cluster, deadline), Ok(vec![]));
    cluster.handle_timeout(deadline);
    let frames = peer.read(&mut cluster, deadline).unwrap();
    let (_, f) = decode_response::<FetchRequest>(frames[0].clone(), 4).unwrap();
    assert!(partition_records(&f).is_empty());
    // Data arriving while it waits answers it at once; requests behind it wait their turn.
    peer.send(&mut cluster, now, 4, &req);
    peer.send(&mut cluster, now, 1, &metadata(&[]));
    assert_eq!(peer.read(&mut cluster, now), Ok(vec![]));
    let t1 = now + Duration::from_millis(100);
    let mut producer = Peer::open(&mut cluster, t1, 0);
    producer.call(&mut cluster, t1, 3, &produce("t", 0, 1, batch(&["late"])));
    let frames = peer.read(&mut cluster, t1).unwrap();
    assert_eq!(frames.len(), 2);
    let (_, f) = decode_response::<FetchRequest>(frames[0].clone(), 4).unwrap();
    assert_eq!(values(&partition_records(&f)), vec![(0, "late".to_owned())]);
}

#[test]
fn a_fetch_with_an_error_is_answered_without_waiting() {
    let now = Instant::now();
    let mut cluster = MockCluster::new(MockConfig::new(2).with_topic("t", 1, 1));
    let leader = cluster.leader("t", 0).unwrap();
    let mut peer = Peer::open(&mut cluster, now, 1 - leader);
    let mut req = fetch("t", 0, 0, 1 << 20);
    req.min_bytes = 1;
    req.max_wait_ms = 500;
    let f = peer.call(&mut cluster, now, 4, &req);
    assert_eq!(
        f.responses[0].partitions[0].error_code,
        ErrorCode::NotLeaderOrFollower.code()
    );
}

#[test]
fn a_waiting_fetch_ends_when_leadership_moves_away() {
    let now = Instant::now();
    let mut cluster = MockCluster::new(MockConfig::new(2).with_topic("t", 1, 2));
    let leader = cluster.leader("t", 0).unwrap();
    let mut peer = Peer::open(&mut cluster, now, leader);
    let mut req = fetch("t", 0, 0, 1 << 20);
    req.min_bytes = 1;
    req.max_wait_ms = 10_000;
    peer.send(&mut cluster, now, 4, &req);
    let later = now + Duration::from_millis(5);
    assert_eq!(peer.read(&mut cluster, later), Ok(vec![]));
    assert!(cluster.move_leader("t", 0, 1 - leader));
    // The cluster asks for a timeout at once (not at max_wait) and answers then.
    assert!(cluster.poll_timeout().unwrap() <= later);
    cluster.handle_timeout(later);
    let frames = peer.read(&mut cluster, later).unwrap();
    let (_, f) = decode_response::<FetchRequest>(frames[0].clone(), 4).unwrap();
    assert_eq!(
        f.responses[0].partitions[0].error_code,
        ErrorCode::NotLeaderOrFollower.code()
    );
    assert_eq!(cluster.poll_timeout(), None);
}

#[test]
fn list_offsets_v0_and_newer() {
    let now = Instant::now();
    let mut cluster = MockCluster::new(MockConfig::new(1).with_topic("t", 2, 1));
    let mut peer = Peer::open(&mut cluster, now, 0);
    peer.call(
        &mut cluster,
        now,
        3,
        &produce("t", 0, 1, batch(&["a", "b", "c"])),
    );
    peer.call(&mut cluster, now, 3, &produce("t", 0, 1, batch(&["d"])));
    cluster.truncate_before("t", 0, 3);
    let req = |ts: i64, max: i32| ListOffsetsRequest {
        replica_id: -1,
        topics: vec![ListOffsetsTopic {
            name: "t".into(),
            partitions: vec![ListOffsetsPartition {
                partition_index: 0,
                timestamp: ts,
                max_num_offsets: max,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let r = peer.call(&mut cluster, now, 0, &req(-1, 1));
    assert_eq!(r.topics[0].partitions[0].old_style_offsets, vec![4]);
    let r = peer.call(&mut cluster, now, 0, &req(-2, 1));
    assert_eq!(r.topics[0].partitions[0].old_style_offsets, vec![3]);
    let r = peer.call(&mut cluster, now, 1, &req(-1, 1));
    assert_eq!(r.topics[0].partitions[0].offset, 4);
    let r = peer.call(&mut cluster, now, 7, &req(-2, 1));
    assert_eq!(r.topics[0].partitions[0].offset, 3);
    assert_eq!(r.topics[0].partitions[0].leader_epoch, 0);
    // By time: the batch with timestamps 1000.. starts at 3 after truncation.
    let r = peer.call(&mut cluster, now, 1, &req(1000, 1));
    assert_eq!(r.topics[0].partitions[0].offset, 3);
    let r = peer.call(&mut cluster, now, 1, &req(99_999, 1));
    assert_eq!(r.topics[0].partitions[0].offset, -1);
    let mut unknown = req(-1, 1);
    unknown.topics[0].partitions[0].partition_index = 5;
    let r = peer.call(&mut cluster, now, 0, &unknown);
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        ErrorCode::UnknownTopicOrPartition.code()
    );
}

#[test]
fn create_and_delete_topics_on_the_controller() {
    let now = Instant::now();
    let mut cluster = MockCluster::new(MockConfig::new(3).with_auto_create(false));
    let create = |name: &str, partitions, rf| CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: name.into(),
            num_partitions: partitions,
            replication_factor: rf,
            ..Default::default()
        }],
        timeout_ms: 1000,
        ..Default::default()
    };
    let mut other = Peer::open(&mut cluster, now, 2);
    let r = other.call(&mut cluster, now, 2, &create("a", 3, 2));
    assert_eq!(r.topics[0].error_code, ErrorCode::NotController.code());
    let controller = cluster.controller();
    let mut peer = Peer::open(&mut cluster, now, controller);
    for v in [0, 5, 7] {
        let name = format!("t{v}");
        let r = peer.call(&mut cluster, now, v, &create(&name, 3, 2));
        assert_eq!(r.topics[0].error_code, 0, "v{v}");
        assert_eq!(cluster.partition_count(&name), Some(3));
        let r = peer.call(&mut cluster, now, v, &create(&name, 3, 2));
        assert_eq!(r.topics[0].error_code, ErrorCode::TopicAlreadyExists.code());
    }
    let r = peer.call(&mut cluster, now, 1, &create("x", 1, 4));
    assert_eq!(
        r.topics[0].error_code,
        ErrorCode::InvalidReplicationFactor.code()
    );
    assert!(r.topics[0].error_message.is_some());
    let r = peer.call(&mut cluster, now, 1, &create("x", 0, 1));
    assert_eq!(r.topics[0].error_code, ErrorCode::InvalidPartitions.code());
    let delete = DeleteTopicsRequest {
        topic_names: vec!["t0".into(), "nope".into()],
        timeout_ms: 1000,
        ..Default::default()
    };
    let r = peer.call(&mut cluster, now, 1, &delete);
    assert_eq!(r.responses[0].error_code, 0);
    assert_eq!(
        r.responses[1].error_code,
        ErrorCode::UnknownTopicOrPartition.code()
    );
    assert_eq!(
        cluster.topic_names(),
        vec!["t5".to_owned(), "t7".to_owned()]
    );
}

#[test]
fn coordinator_and_offsets() {
    let now = Instant::now();
    let mut cluster = MockCluster::new(MockConfig::new(3).with_topic("t", 2, 1));
    let mut peer = Peer::open(&mut cluster, now, 0);
    let find = FindCoordinatorRequest {
        key: "g".into(),
        coordinator_keys: vec![],
        ..Default::default()
    };
    let r = peer.call(&mut cluster, now, 0, &find);
    assert_eq!(r.error_code, 0);
    let coordinator = r.node_id;
    let r4 = peer.call(
        &mut cluster,
        now,
        4,
        &FindCoordinatorRequest {
            coordinator_keys: vec!["g".into()],
            ..Default::default()
        },
    );
    assert_eq!(r4.coordinators[0].node_id, coordinator);
    let commit = OffsetCommitRequest {
        group_id: "g".into(),
        generation_id_or_member_epoch: -1,
        topics: vec![OffsetCommitRequestTopic {
            name: "t".into(),
            partitions: vec![OffsetCommitRequestPartition {
                partition_index: 1,
                committed_offset: 42,
                committed_metadata: Some("m".into()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let wrong = (coordinator + 1) % 3;
    let mut elsewhere = Peer::open(&mut cluster, now, wrong);
    let r = elsewhere.call(&mut cluster, now, 2, &commit);
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        ErrorCode::NotCoordinator.code()
    );
    let mut coord = Peer::open(&mut cluster, now, coordinator);
    let r = coord.call(&mut cluster, now, 2, &commit);
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    assert_eq!(cluster.committed_offset("g", "t", 1), Some(42));
    let fetch = OffsetFetchRequest {
        group_id: "g".into(),
        topics: Some(vec![OffsetFetchRequestTopic {
            name: "t".into(),
            partition_indexes: vec![0, 1],
            ..Default::default()
        }]),
        ..Default::default()
    };
    let r = coord.call(&mut cluster, now, 1, &fetch);
    let parts = &r.topics[0].partitions;
    assert_eq!(
        (parts[0].committed_offset, parts[1].committed_offset),
        (-1, 42)
    );
    assert_eq!(parts[1].metadata.as_deref(), Some("m"));
}

#[test]
fn faults_error_codes_cuts_garbage_and_oversize() {
    let now = Instant::now();
    let mut cluster = MockCluster::new(MockConfig::new(1).with_topic("t", 1, 1));
    let mut peer = Peer::open(&mut cluster, now, 0);
    cluster.fail_next(
        Matcher::api(ApiKey::Produce).partition("t", 0),
        ErrorCode::NotLeaderOrFollower,
    );
    // A Metadata request does not match and is served.
    assert_eq!(
        peer.call(&mut cluster, now, 1, &metadata(&["t"])).topics[0].error_code,
        0
    );
    let r = peer.call(&mut cluster, now, 3, &produce("t", 0, 1, batch(&["a"])));
    assert_eq!(
        r.responses[0].partition_responses[0].error_code,
        ErrorCode::NotLeaderOrFollower.code()
    );
    assert_eq!(
        cluster.offsets("t", 0),
        Some((0, 0)),
        "a failed request has no effect"
    );
    assert!(cluster.pending_faults().is_empty());
    let r = peer.call(&mut cluster, now, 3, &produce("t", 0, 1, batch(&["a"])));
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);

    cluster.inject(Fault {
        matcher: Matcher::api(ApiKey::Metadata),
        action: FaultAction::Garbage(b"\0\0\0\x02zz".to_vec()),
        times: 1,
    });
    peer.send(&mut cluster, now, 1, &metadata(&[]));
    assert_eq!(&peer.read(&mut cluster, now).unwrap()[0][..], b"zz");

    cluster.inject(Fault {
        matcher: Matcher::any(),
        action: FaultAction::OversizeFrame(1 << 30),
        times: 1,
    });
    peer.send(&mut cluster, now, 1, &metadata(&[]));
    let mut buf = Vec::new();
    assert_eq!(
        cluster.poll_transmit(now, peer.conn, &mut buf),
        Some(MockTransmit::Data)
    );
    assert_eq!(buf[..4], (1u32 << 30).to_be_bytes());
    assert!(buf.len() < 100);

    let mut peer = Peer::open(&mut cluster, now, 0);
    cluster.inject(Fault {
        matcher: Matcher::any(),
        action: FaultAction::CutResponse,
        times: 1,
    });
    peer.send(&mut cluster, now, 3, &produce("t", 0, 1, batch(&["b"])));
    let mut buf = Vec::new();
    assert_eq!(
        cluster.poll_transmit(now, peer.conn, &mut buf),
        Some(MockTransmit::Data)
    );
    assert_eq!(
        cluster.poll_transmit(now, peer.conn, &mut buf),
        Some(MockTransmit::Closed)
    );
    let mut frames = FrameDecoder::new(1 << 20);
    frames.handle_data(&buf);
    assert_eq!(
        frames.poll_frame(),
        Ok(None),
        "only part of the frame arrived"
    );
    assert_eq!(
        cluster.offsets("t", 0),
        Some((0, 2)),
        "the broker acted before dying"
    );

    let mut peer = Peer::open(&mut cluster, now, 0);
    cluster.inject(Fault {
        matcher: Matcher::any(),
        action: FaultAction::NoResponse,
        times: 1,
    });
    peer.send(&mut cluster, now, 1, &metadata(&[]));
    assert_eq!(peer.read(&mut cluster, now), Ok(vec![]));
    // The next request is answered (only the matching one was swallowed).
    assert_eq!(
        peer.call(&mut cluster, now, 1, &metadata(&[]))
            .brokers
            .len(),
        1
    );
}

#[test]
fn latency_delays_responses_in_order() {
    let now = Instant::now();
    let mut cluster = MockCluster::new(MockConfig::new(1).with_latency(Duration::from_millis(20)));
    let mut peer = Peer::open(&mut cluster, now, 0);
    peer.send(&mut cluster, now, 1, &metadata(&[]));
    cluster.set_latency(0, Duration::ZERO);
    peer.send(&mut cluster, now, 1, &metadata(&[]));
    assert_eq!(peer.read(&mut cluster, now), Ok(vec![]));
    let at = now + Duration::from_millis(20);
    assert_eq!(cluster.poll_timeout(), Some(at));
    assert_eq!(cluster.ready_connections(at), vec![peer.conn]);
    // The second response (no latency) still leaves after the first.
    assert_eq!(peer.read(&mut cluster, at).unwrap().len(), 2);
}

#[test]
fn broker_down_refuses_drops_and_moves_leaders() {
    let now = Instant::now();
    let mut cluster = MockCluster::new(MockConfig::new(3).with_topic("t", 3, 2));
    let victim = cluster.leader("t", 0).unwrap();
    let mut peer = Peer::open(&mut cluster, now, victim);
    peer.send(&mut cluster, now, 1, &metadata(&[]));
    cluster.broker_down(now, victim);
    // The unsent response is lost with the connection.
    assert_eq!(peer.read(&mut cluster, now), Err(()));
    assert_eq!(
        cluster.connect(now, victim),
        Err(ConnectError::BrokerDown(victim))
    );
    let new = cluster.leader("t", 0).unwrap();
    assert_ne!(new, victim);
    assert!(new >= 0);
    let (_, isr) = cluster.replicas("t", 0).unwrap();
    assert!(!isr.contains(&victim));
    let mut peer = Peer::open(&mut cluster, now, new);
    let all = MetadataRequest {
        topics: None,
        ..Default::default()
    };
    let m = peer.call(&mut cluster, now, 1, &all);
    assert_eq!(m.brokers.len(), 2);
    assert!(m.topics[0].partitions.iter().all(|p| p.leader_id != victim));
    cluster.broker_up(victim);
    assert!(cluster.replicas("t", 0).unwrap().1.contains(&victim));
    assert!(cluster.move_leader("t", 0, victim));
    assert_eq!(cluster.leader("t", 0), Some(victim));
    assert!(cluster.connect(now, victim).is_ok());
    // A partition with one replica goes leaderless while it is down.
    let mut cluster = MockCluster::new(MockConfig::new(1).with_topic("t", 1, 1));
    cluster.broker_down(now, 0);
    assert_eq!(cluster.leader("t", 0), Some(-1));
    cluster.broker_up(0);
    assert_eq!(cluster.leader("t", 0), Some(0));
}

#[test]
fn garbage_requests_close_the_connection() {
    let now = Instant::now();
    let mut cluster = MockCluster::new(MockConfig::new(1));
    for bytes in [
        &b"\0\0\0\x04\x7f\x7f\0\0"[..],
        b"\xff\xff\xff\xff",
        b"\0\0\0\x02ab",
        b"\x7f\0\0\0",
    ] {
        let conn = cluster.connect(now, 0).unwrap();
        cluster.handle_data(now, conn, bytes);
        let mut buf = Vec::new();
        assert_eq!(
            cluster.poll_transmit(now, conn, &mut buf),
            Some(MockTransmit::Closed),
            "{bytes:?}"
        );
        assert!(buf.is_empty());
    }
}

#[test]
fn sasl_plain_handshake_v1_and_v0() {
    let now = Instant::now();
    let mut cluster = MockCluster::new(MockConfig::new(1).with_sasl_plain("alice", "secret"));
    // Anything but ApiVersions / SaslHandshake before authenticating: dropped.
    let mut peer = Peer::open(&mut cluster, now, 0);
    peer.send(&mut cluster, now, 1, &metadata(&[]));
    assert_eq!(peer.read(&mut cluster, now), Err(()));
    // v1 framing, wrong then right mechanism.
    let mut peer = Peer::open(&mut cluster, now, 0);
    let r = peer.call(
        &mut cluster,
        now,
        1,
        &SaslHandshakeRequest {
            mechanism: "GSSAPI".into(),
            ..Default::default()
        },
    );
    assert_eq!(r.error_code, ErrorCode::UnsupportedSaslMechanism.code());
    assert_eq!(r.mechanisms, vec!["PLAIN".to_owned()]);
    let r = peer.call(
        &mut cluster,
        now,
        1,
        &SaslHandshakeRequest {
            mechanism: "PLAIN".into(),
            ..Default::default()
        },
    );
    assert_eq!(r.error_code, 0);
    let auth = SaslAuthenticateRequest {
        auth_bytes: Bytes::from_static(b"\0alice\0secret"),
        ..Default::default()
    };
    assert_eq!(peer.call(&mut cluster, now, 1, &auth).error_code, 0);
    assert_eq!(
        peer.call(&mut cluster, now, 1, &metadata(&[]))
            .brokers
            .len(),
        1
    );
    // A wrong password: an error, then the connection is closed.
    let mut peer = Peer::open(&mut cluster, now, 0);
    peer.call(
        &mut cluster,
        now,
        1,
        &SaslHandshakeRequest {
            mechanism: "PLAIN".into(),
            ..Default::default()
        },
    );
    let bad = SaslAuthenticateRequest {
        auth_bytes: Bytes::from_static(b"\0alice\0nope"),
        ..Default::default()
    };
    peer.send(&mut cluster, now, 1, &bad);
    let frames = peer.read(&mut cluster, now).unwrap();
    let (_, r) = decode_response::<SaslAuthenticateRequest>(frames[0].clone(), 1).unwrap();
    assert_eq!(r.error_code, ErrorCode::SaslAuthenticationFailed.code());
    assert!(peer.closed);
    assert!(!cluster.is_open(peer.conn));
    // v0: the token goes as a bare frame and an empty frame answers it.
    let mut peer = Peer::open(&mut cluster, now, 0);
    peer.call(
        &mut cluster,
        now,
        0,
        &SaslHandshakeRequest {
            mechanism: "PLAIN".into(),
            ..Default::default()
        },
    );
    cluster.handle_data(now, peer.conn, b"\0\0\0\x0d\0alice\0secret");
    assert_eq!(peer.read(&mut cluster, now).unwrap(), vec![Bytes::new()]);
    assert_eq!(
        peer.call(&mut cluster, now, 1, &metadata(&[]))
            .brokers
            .len(),
        1
    );
}

#[test]
fn produce_response_versions_encode() {
    // Every version of the APIs served encodes: a smoke test over the version table.
    let now = Instant::now();
    let mut cluster = MockCluster::new(MockConfig::new(1).with_topic("t", 1, 1));
    let mut peer = Peer::open(&mut cluster, now, 0);
    for v in 0..=ApiKey::Produce.max_version() {
        let records = if v >= 3 {
            batch(&["a"])
        } else {
            let mut set = Vec::new();
            encode_message_set(
                &mut set,
                &MessageSetOptions::default(),
                &[Record {
                    value: Some("a".into()),
                    ..Record::default()
                }],
            )
            .unwrap();
            Bytes::from(set)
        };
        let r: ProduceResponse = peer.call(&mut cluster, now, v, &produce("t", 0, -1, records));
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0, "v{v}");
    }
    for v in 0..=ApiKey::Metadata.max_version() {
        let m: MetadataResponse = peer.call(&mut cluster, now, v, &metadata(&["t"]));
        assert_eq!(m.topics[0].error_code, 0, "v{v}");
    }
    for v in 0..=12 {
        let f = peer.call(&mut cluster, now, v, &fetch("t", 0, 0, 1 << 20));
        assert_eq!(f.responses[0].partitions[0].error_code, 0, "v{v}");
    }
}

mod properties {
    use super::*;
    use quickcheck::quickcheck;

    quickcheck! {
        /// Whatever bytes a client sends, the mock neither panics nor answers without
        /// bound: a garbage stream gets a close (or nothing) and the cluster stays usable.
        fn garbage_never_panics(chunks: Vec<Vec<u8>>) -> bool {
            let now = Instant::now();
            let mut cluster = MockCluster::new(MockConfig::new(1).with_topic("t", 1, 1));
            let conn = cluster.connect(now, 0).unwrap();
            for c in &chunks {
                cluster.handle_data(now, conn, c);
            }
            let mut out = Vec::new();
            let mut polls = 0;
            while let Some(t) = cluster.poll_transmit(now, conn, &mut out) {
                polls += 1;
                if t == MockTransmit::Closed || polls > 1000 {
                    break;
                }
            }
            let mut peer = Peer::open(&mut cluster, now, 0);
            polls <= 1000 && peer.call(&mut cluster, now, 1, &metadata(&["t"])).topics.len() == 1
        }

        /// Batches of any sizes get consecutive offsets, and a fetch from any offset
        /// returns the batch holding it first, then the rest in order.
        fn offsets_are_consecutive_and_fetchable(sizes: Vec<u8>, from: u16) -> bool {
            let now = Instant::now();
            let mut cluster = MockCluster::new(MockConfig::new(1).with_topic("t", 1, 1));
            let mut peer = Peer::open(&mut cluster, now, 0);
            let mut total = 0i64;
            for size in sizes.iter().take(20) {
                let n = usize::from(*size % 5) + 1;
                let values: Vec<String> = (0..n).map(|i| format!("{}", total + i as i64)).collect();
                let refs: Vec<&str> = values.iter().map(String::as_str).collect();
                let r = peer.call(&mut cluster, now, 3, &produce("t", 0, 1, batch(&refs)));
                if r.responses[0].partition_responses[0].base_offset != total {
                    return false;
                }
                total += n as i64;
            }
            let from = i64::from(from) % (total + 1);
            let f = peer.call(&mut cluster, now, 4, &fetch("t", 0, from, 1 << 20));
            let got = values(&partition_records(&f));
            // Each record's value is its offset; all from `from` on are there, in order.
            got.iter().all(|(o, v)| v.parse::<i64>().ok() == Some(*o))
                && got.windows(2).all(|w| w[1].0 == w[0].0 + 1)
                && got.iter().filter(|(o, _)| *o >= from).count() as i64 == total - from
                && got.first().map_or(from == total, |(o, _)| *o <= from)
        }
    }
}

/// An idempotent producer against the mock: ids from InitProducerId, sequence numbers
/// checked per partition, a retried batch answered with its first offset and not written
/// twice, a gap refused.
#[test]
fn idempotent_produce_checks_sequences() {
    use crate::producer::{BatchBuilder, ProducerStamp, RecordFormat, Seal};
    use crate::protocol::messages::InitProducerIdRequest;
    use crate::protocol::records::Header;

    let now = Instant::now();
    let mut cluster = MockCluster::new(MockConfig::new(1).with_topic("t", 1, 1));
    let mut peer = Peer::open(&mut cluster, now, 0);
    let init = InitProducerIdRequest {
        transactional_id: None,
        producer_id: -1,
        producer_epoch: -1,
        transaction_timeout_ms: 60_000,
        ..Default::default()
    };
    let r = peer.call(&mut cluster, now, 4, &init);
    assert_eq!((r.error_code, r.producer_epoch), (0, 0));
    let pid = r.producer_id;
    assert!(pid >= 0);

    let batch = |first_seq: i32, values: &[&str]| {
        let mut b = BatchBuilder::new(RecordFormat::RecordBatch);
        for v in values {
            b.append::<Header>(1, None, Some(v.as_bytes()), &[])
                .unwrap();
        }
        let mut out = Vec::new();
        let seal = Seal {
            compression: Compression::None,
            compress_options: Default::default(),
            stamp: ProducerStamp {
                producer_id: pid,
                producer_epoch: 0,
                base_sequence: first_seq,
            },
        };
        b.seal(&mut out, &seal).unwrap();
        Bytes::from(out)
    };
    let produce_at = |peer: &mut Peer, cluster: &mut MockCluster, records| {
        let r = peer.call(cluster, now, 7, &produce("t", 0, -1, records));
        let p = &r.responses[0].partition_responses[0];
        (p.error_code, p.base_offset)
    };
    assert_eq!(
        produce_at(&mut peer, &mut cluster, batch(0, &["a", "b"])),
        (0, 0)
    );
    assert_eq!(
        produce_at(&mut peer, &mut cluster, batch(2, &["c"])),
        (0, 2)
    );
    // The retry of the first batch: its first offset again, nothing written.
    assert_eq!(
        produce_at(&mut peer, &mut cluster, batch(0, &["a", "b"])),
        (0, 0)
    );
    assert_eq!(cluster.offsets("t", 0), Some((0, 3)));
    // A gap.
    assert_eq!(
        produce_at(&mut peer, &mut cluster, batch(5, &["x"])),
        (ErrorCode::OutOfOrderSequenceNumber.code(), -1)
    );
    assert_eq!(cluster.producer_state("t", 0, pid), Some((0, 2)));
    // An unknown producer id that does not start at 0.
    let r = peer.call(&mut cluster, now, 4, &init);
    let other = r.producer_id;
    assert_ne!(other, pid);
    assert_eq!(cluster.producer_state("t", 0, other), None);
}

#[test]
fn fetch_sessions_answer_only_what_changed() {
    use crate::protocol::messages::fetch_request::ForgottenTopic;
    let now = Instant::now();
    let mut cluster = MockCluster::new(MockConfig::new(1).with_topic("t", 2, 1));
    let record = |v: &str| Record {
        value: Some(v.to_owned().into()),
        ..Record::default()
    };
    cluster.append_records(now, "t", 0, &[record("a")]).unwrap();
    let mut peer = Peer::open(&mut cluster, now, 0);
    let mut full = fetch("t", 0, 0, 1 << 20);
    full.topics[0].partitions.push(FetchPartition {
        partition: 1,
        partition_max_bytes: 1 << 20,
        ..Default::default()
    });
    full.session_epoch = 0;
    let r = peer.call(&mut cluster, now, 12, &full);
    assert!(r.session_id > 0, "a session was created");
    assert_eq!(r.responses[0].partitions.len(), 2, "a full answer");
    assert_eq!(cluster.fetch_session_count(), 1);
    // Incremental: partition 0 moves on, partition 1 is not listed and has nothing new.
    let mut next = fetch("t", 0, 1, 1 << 20);
    next.session_id = r.session_id;
    next.session_epoch = 1;
    let r2 = peer.call(&mut cluster, now, 12, &next);
    let answered: Vec<i32> = r2
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| p.partition_index)
        .collect();
    assert_eq!(answered, vec![0], "only the listed partition");
    // New records on partition 1 show up without listing it.
    cluster.append_records(now, "t", 1, &[record("b")]).unwrap();
    let mut idle = FetchRequest {
        session_id: r.session_id,
        session_epoch: 2,
        ..fetch("t", 0, 1, 1 << 20)
    };
    idle.topics.clear();
    let r3 = peer.call(&mut cluster, now, 12, &idle);
    let p1 = &r3.responses[0].partitions[0];
    assert_eq!(p1.partition_index, 1);
    assert_eq!(
        values(p1.records.as_ref().unwrap()),
        vec![(0, "b".to_owned())]
    );
    // Forgotten, then a stale epoch.
    idle.session_epoch = 3;
    idle.forgotten_topics_data = vec![ForgottenTopic {
        topic: "t".into(),
        partitions: vec![1],
        ..Default::default()
    }];
    peer.call(&mut cluster, now, 12, &idle);
    let r5 = peer.call(&mut cluster, now, 12, &idle);
    assert_eq!(
        r5.error_code,
        ErrorCode::InvalidFetchSessionEpoch.code(),
        "epoch 3 again"
    );
    idle.session_id += 100;
    let r6 = peer.call(&mut cluster, now, 12, &idle);
    assert_eq!(r6.error_code, ErrorCode::FetchSessionIdNotFound.code());
    cluster.broker_down(now, 0);
    assert_eq!(cluster.fetch_session_count(), 0, "lost with the broker");
}
