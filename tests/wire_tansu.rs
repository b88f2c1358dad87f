//! The codec against a modern-protocol broker (tansu), through a plain socket: ApiVersions
//! negotiation, flexible versions, and record batches v2 with headers in every codec.
//!
//! `scripts/test` starts tansu and sets `GRETE_TANSU_BROKERS`.

mod common;

use std::collections::HashMap;

use bytes::Bytes;
use common::{broker, eventually, unique_topic, Wire};
use grete::protocol::compression::{CompressOptions, Compression, SnappyFraming};
use grete::protocol::messages::{
    create_topics_request, fetch_request, metadata_request, produce_request,
};
use grete::protocol::messages::{
    ApiKey, ApiVersionsRequest, CreateTopicsRequest, FetchRequest, MetadataRequest, ProduceRequest,
};
use grete::protocol::primitives::Uuid;
use grete::protocol::records::{
    encode_record_batch, BatchHeader, Batches, DecodeLimits, Header, Record,
};
use grete::protocol::ErrorCode;

/// The version both sides support for each API: the broker's maximum capped at ours.
struct Versions(HashMap<i16, i16>);

impl Versions {
    fn negotiate(w: &mut Wire) -> Versions {
        let req = ApiVersionsRequest {
            client_software_name: "grete-test".into(),
            client_software_version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        };
        let resp = w.call(3, &req).expect("api versions v3");
        assert_eq!(resp.error_code, 0);
        let mut map = HashMap::new();
        for k in &resp.api_keys {
            if let Some(key) = ApiKey::from_i16(k.api_key) {
                let v = k.max_version.min(key.max_version());
                if v >= k.min_version.max(key.min_version()) {
                    map.insert(k.api_key, v);
                }
            }
        }
        Versions(map)
    }

    fn get(&self, key: ApiKey) -> i16 {
        *self
            .0
            .get(&(key as i16))
            .unwrap_or_else(|| panic!("broker lacks {key:?}"))
    }
}

/// Creates `topic` and waits until it has a leader; returns its topic id.
fn create_topic(w: &mut Wire, v: &Versions, topic: &str) -> Uuid {
    let req = CreateTopicsRequest {
        topics: vec![create_topics_request::CreatableTopic {
            name: topic.to_owned(),
            num_partitions: 1,
            replication_factor: 1,
            ..Default::default()
        }],
        timeout_ms: 10_000,
        ..Default::default()
    };
    let resp = w
        .call(v.get(ApiKey::CreateTopics), &req)
        .expect("create topics");
    assert_eq!(
        ErrorCode::from_code(resp.topics[0].error_code),
        None,
        "{:?}",
        resp.topics[0]
    );
    let mv = v.get(ApiKey::Metadata);
    eventually(30, || {
        let req = MetadataRequest {
            topics: Some(vec![metadata_request::MetadataRequestTopic {
                name: Some(topic.to_owned()),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let m = w.call(mv, &req).expect("metadata");
        let t = m.topics.first()?;
        (t.error_code == 0 && t.partitions.iter().any(|p| p.leader_id >= 0)).then_some(t.topic_id)
    })
}

fn records(n: usize, tag: &str) -> Vec<Record> {
    (0..n)
        .map(|i| Record {
            offset: i as i64,
            timestamp: 1_700_000_000_000 + i as i64,
            key: (i % 3 != 0).then(|| Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(format!("{tag}-{i}-{}", "y".repeat(i * 5)))),
            headers: vec![
                Header {
                    key: "codec".into(),
                    value: Some(Bytes::from(tag.to_owned())),
                },
                Header {
                    key: format!("n{i}"),
                    value: None,
                },
            ],
            ..Default::default()
        })
        .collect()
}

#[test]
fn api_versions_metadata_produce_fetch_with_v2_batches_in_every_codec() {
    let Some(addr) = broker("GRETE_TANSU_BROKERS") else {
        return;
    };
    let mut w = Wire::connect(&addr);
    let v = Versions::negotiate(&mut w);
    for key in [ApiKey::Metadata, ApiKey::Produce, ApiKey::Fetch] {
        eprintln!("negotiated {key:?} v{}", v.get(key));
        assert!(
            v.get(key) >= 3,
            "{key:?} should be new enough for record batches v2"
        );
    }

    let m = w
        .call(v.get(ApiKey::Metadata), &MetadataRequest::default())
        .expect("metadata for all topics");
    let (host, port) = addr.rsplit_once(':').unwrap();
    assert!(m
        .brokers
        .iter()
        .any(|b| b.host == host && b.port.to_string() == port));

    let codecs = [
        (Compression::None, SnappyFraming::Xerial),
        (Compression::Gzip, SnappyFraming::Xerial),
        (Compression::Snappy, SnappyFraming::Raw),
        (Compression::Snappy, SnappyFraming::Xerial),
        (Compression::Lz4, SnappyFraming::Xerial),
        (Compression::Zstd, SnappyFraming::Xerial),
    ];
    for (codec, framing) in codecs {
        let tag = format!("{}-{:?}", codec.name(), framing).to_lowercase();
        let topic = unique_topic(&format!("grete-v2-{tag}"));
        let topic_id = create_topic(&mut w, &v, &topic);
        let sent = records(25, &tag);
        let mut buf = Vec::new();
        let header = BatchHeader {
            compression: codec,
            compress_options: CompressOptions {
                snappy_framing: framing,
                ..Default::default()
            },
            ..Default::default()
        };
        encode_record_batch(&mut buf, &header, &sent).unwrap();
        let req = ProduceRequest {
            acks: -1,
            timeout_ms: 10_000,
            topic_data: vec![produce_request::TopicProduceData {
                name: topic.clone(),
                partition_data: vec![produce_request::PartitionProduceData {
                    index: 0,
                    records: Some(Bytes::from(buf)),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let resp = w.call(v.get(ApiKey::Produce), &req).expect("produce");
        let p = &resp.responses[0].partition_responses[0];
        assert_eq!(
            ErrorCode::from_code(p.error_code),
            None,
            "{tag}: produce {p:?}"
        );
        assert_eq!(p.base_offset, 0, "{tag}");

        // From Fetch v13 on, topics are named by id only.
        let fetch_version = v.get(ApiKey::Fetch);
        let by_id = fetch_version >= 13;
        if by_id {
            assert_ne!(
                topic_id,
                Uuid::default(),
                "{tag}: metadata v10+ gives a topic id"
            );
        }
        let req = FetchRequest {
            replica_id: -1,
            max_wait_ms: 100,
            min_bytes: 1,
            max_bytes: 1 << 20,
            session_epoch: -1,
            topics: vec![fetch_request::FetchTopic {
                topic: if by_id { String::new() } else { topic.clone() },
                topic_id: if by_id { topic_id } else { Uuid::default() },
                partitions: vec![fetch_request::FetchPartition {
                    partition: 0,
                    fetch_offset: 0,
                    partition_max_bytes: 1 << 20,
                    log_start_offset: -1,
                    current_leader_epoch: -1,
                    last_fetched_epoch: -1,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let resp = w.call(fetch_version, &req).expect("fetch");
        if by_id {
            assert_eq!(resp.responses[0].topic_id, topic_id, "{tag}");
        }
        let part = &resp.responses[0].partitions[0];
        assert_eq!(ErrorCode::from_code(part.error_code), None, "{tag}: fetch");
        let raw = part.records.clone().unwrap_or_default();
        let mut batches = Batches::new(raw, DecodeLimits::default());
        let mut got = Vec::new();
        for batch in &mut batches {
            let batch = batch.unwrap_or_else(|e| panic!("{tag}: {e}"));
            assert_eq!(batch.magic, 2);
            assert_eq!(
                batch.compression, codec,
                "{tag}: the broker keeps the codec"
            );
            for r in batch.records() {
                got.push(r.unwrap_or_else(|e| panic!("{tag}: {e}")));
            }
        }
        assert_eq!(got.len(), sent.len(), "{tag}");
        for (g, s) in got.iter().zip(&sent) {
            assert_eq!(g.offset, s.offset, "{tag}");
            assert_eq!(g.timestamp, s.timestamp, "{tag}");
            assert_eq!(g.key, s.key, "{tag}");
            assert_eq!(g.value, s.value, "{tag}");
            assert_eq!(g.headers, s.headers, "{tag}");
        }
        assert_eq!(batches.next_offset(), Some(25), "{tag}");
    }
}
