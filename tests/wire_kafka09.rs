//! The codec against a real Apache Kafka 0.9.0.1 broker, through a plain socket.
//!
//! `scripts/test` starts the broker and sets `GRETE_KAFKA09_BROKERS`. 0.9 predates
//! ApiVersions, so these tests use the versions a 0.9 broker speaks: Metadata v0,
//! Produce v0/v1, Fetch v0/v1, ListOffsets v0, and message format magic 0.

mod common;

use bytes::Bytes;
use common::{broker, eventually, unique_topic, Wire, WireError};
use grete::protocol::compression::{CompressOptions, Compression};
use grete::protocol::messages::{fetch_request, metadata_request, produce_request};
use grete::protocol::messages::{
    ApiVersionsRequest, FetchRequest, MetadataRequest, MetadataResponse, ProduceRequest,
};
use grete::protocol::records::legacy::{encode_message_set, MessageSetOptions};
use grete::protocol::records::{Batches, DecodeLimits, Record};
use grete::protocol::ErrorCode;

fn metadata(w: &mut Wire, topic: &str) -> MetadataResponse {
    let req = MetadataRequest {
        topics: Some(vec![metadata_request::MetadataRequestTopic {
            name: Some(topic.to_owned()),
            ..Default::default()
        }]),
        ..Default::default()
    };
    w.call(0, &req).expect("metadata v0")
}

/// Asks for `topic` until auto-creation has given its partition 0 a leader.
fn create_by_metadata(w: &mut Wire, topic: &str) {
    eventually(30, || {
        let m = metadata(w, topic);
        let t = &m.topics[0];
        let ok = t.error_code == 0
            && t.partitions
                .iter()
                .any(|p| p.error_code == 0 && p.leader_id >= 0);
        ok.then_some(())
    });
}

fn produce(w: &mut Wire, version: i16, topic: &str, records: Vec<u8>) -> i64 {
    let req = ProduceRequest {
        acks: 1,
        timeout_ms: 10_000,
        topic_data: vec![produce_request::TopicProduceData {
            name: topic.to_owned(),
            partition_data: vec![produce_request::PartitionProduceData {
                index: 0,
                records: Some(Bytes::from(records)),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let resp = w.call(version, &req).expect("produce");
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!(ErrorCode::from_code(p.error_code), None, "produce error");
    p.base_offset
}

fn fetch(w: &mut Wire, version: i16, topic: &str, offset: i64, max_bytes: i32) -> Bytes {
    let req = FetchRequest {
        replica_id: -1,
        max_wait_ms: 100,
        min_bytes: 1,
        topics: vec![fetch_request::FetchTopic {
            topic: topic.to_owned(),
            partitions: vec![fetch_request::FetchPartition {
                partition: 0,
                fetch_offset: offset,
                partition_max_bytes: max_bytes,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let resp = w.call(version, &req).expect("fetch");
    let p = &resp.responses[0].partitions[0];
    assert_eq!(ErrorCode::from_code(p.error_code), None, "fetch error");
    p.records.clone().unwrap_or_default()
}

fn records(n: usize, tag: &str) -> Vec<Record> {
    (0..n)
        .map(|i| Record {
            offset: i as i64,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(format!("{tag}-{i}-{}", "x".repeat(i * 7)))),
            ..Default::default()
        })
        .collect()
}

fn decode_all(raw: Bytes) -> (Vec<Record>, Batches) {
    let mut batches = Batches::new(raw, DecodeLimits::default());
    let mut out = Vec::new();
    for batch in &mut batches {
        let batch = batch.expect("batch");
        for r in batch.records() {
            out.push(r.expect("record"));
        }
    }
    (out, batches)
}

#[test]
fn metadata_v0_lists_the_broker_and_auto_creates_a_topic() {
    let Some(addr) = broker("GRETE_KAFKA09_BROKERS") else {
        return;
    };
    let mut w = Wire::connect(&addr);
    let topic = unique_topic("grete-meta");
    create_by_metadata(&mut w, &topic);
    let m = metadata(&mut w, &topic);
    let (host, port) = addr.rsplit_once(':').unwrap();
    assert!(
        m.brokers
            .iter()
            .any(|b| b.host == host && b.port.to_string() == port),
        "brokers: {:?}",
        m.brokers
    );
    assert_eq!(m.topics[0].name.as_deref(), Some(topic.as_str()));
    let p = &m.topics[0].partitions[0];
    assert_eq!(p.replica_nodes, vec![p.leader_id]);
    assert_eq!(p.isr_nodes, vec![p.leader_id]);
}

#[test]
fn api_versions_is_unknown_to_0_9_which_never_answers() {
    // Kafka 0.9.0.1's network processor throws on API key 18 (ArrayIndexOutOfBounds in
    // ApiKeys.forId, logged as "Processor got uncaught exception") and neither answers nor
    // closes the connection. A client probing with ApiVersions must therefore time out and
    // fall back to its configured broker version, as PyKafka's broker_version does.
    let Some(addr) = broker("GRETE_KAFKA09_BROKERS") else {
        return;
    };
    let mut w = Wire::connect(&addr);
    w.set_read_timeout(std::time::Duration::from_secs(2));
    match w.call_raw(0, &ApiVersionsRequest::default()) {
        Err(WireError::Closed) => {}
        Err(WireError::Io(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::ConnectionReset
            ) => {}
        other => panic!("expected no answer from a 0.9 broker, got {other:?}"),
    }
}

#[test]
fn produce_v0_and_fetch_v0_in_every_codec() {
    let Some(addr) = broker("GRETE_KAFKA09_BROKERS") else {
        return;
    };
    let mut w = Wire::connect(&addr);
    for codec in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
    ] {
        let topic = unique_topic(&format!("grete-wire-{}", codec.name()));
        create_by_metadata(&mut w, &topic);
        let sent = records(10, codec.name());
        let mut buf = Vec::new();
        let options = MessageSetOptions {
            magic: 0,
            compression: codec,
            compress_options: CompressOptions::default(),
            ..Default::default()
        };
        encode_message_set(&mut buf, &options, &sent).unwrap();
        assert_eq!(produce(&mut w, 0, &topic, buf), 0, "{codec:?}: base offset");
        // A second produce lands after the first.
        let mut buf = Vec::new();
        encode_message_set(&mut buf, &options, &sent[..3]).unwrap();
        assert_eq!(
            produce(&mut w, 0, &topic, buf),
            10,
            "{codec:?}: second base offset"
        );

        let (got, batches) = decode_all(fetch(&mut w, 0, &topic, 0, 1 << 20));
        assert_eq!(got.len(), 13, "{codec:?}");
        for (i, r) in got.iter().enumerate() {
            assert_eq!(r.offset, i as i64, "{codec:?}");
            let want = &sent[i % 10];
            assert_eq!(r.key, want.key, "{codec:?}");
            assert_eq!(r.value, want.value, "{codec:?}");
        }
        assert_eq!(batches.next_offset(), Some(13));
        assert_eq!(batches.truncated(), None);
    }
}

#[test]
fn fetch_v1_cut_at_max_bytes_ends_cleanly_at_a_partial_message() {
    let Some(addr) = broker("GRETE_KAFKA09_BROKERS") else {
        return;
    };
    let mut w = Wire::connect(&addr);
    let topic = unique_topic("grete-partial");
    create_by_metadata(&mut w, &topic);
    let sent = records(20, "partial");
    let mut buf = Vec::new();
    let options = MessageSetOptions {
        magic: 0,
        ..Default::default()
    };
    encode_message_set(&mut buf, &options, &sent).unwrap();
    produce(&mut w, 1, &topic, buf);

    // 0.9 returns whole messages up to max_bytes and then the start of the next one.
    let raw = fetch(&mut w, 1, &topic, 0, 300);
    assert_eq!(raw.len(), 300, "the broker fills the fetch up to max_bytes");
    let (got, batches) = decode_all(raw);
    assert!(!got.is_empty() && got.len() < 20);
    assert!(batches.truncated().is_some(), "the last message was cut");
    let next = batches.next_offset().unwrap();
    assert_eq!(next, got.len() as i64);

    // Going on from there reads the rest, in order.
    let (rest, _) = decode_all(fetch(&mut w, 1, &topic, next, 1 << 20));
    assert_eq!(got.len() + rest.len(), 20);
    assert_eq!(rest[0].offset, next);
    assert_eq!(rest.last().unwrap().value, sent[19].value);
}
