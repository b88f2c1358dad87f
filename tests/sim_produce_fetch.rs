//! Deterministic simulation: Produce and Fetch through the client's `send` escape hatch,
//! routed to partition leaders, with the mock's long-poll fetch on virtual time. Every
//! test runs over several seeds.

use std::time::Duration;

use bytes::Bytes;
use grete::client::{Output, Target};
use grete::config::{BrokerVersion, ClientConfig};
use grete::connection::VersionChoice;
use grete::error::Error;
use grete::mock::sim::{Sim, SimConfig};
use grete::mock::MockConfig;
use grete::protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use grete::protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use grete::protocol::messages::{FetchRequest, ProduceRequest, RequestBody, ResponseBody};
use grete::protocol::records::{encode_record_batch, BatchHeader, Batches, DecodeLimits, Record};

const SEEDS: std::ops::Range<u64> = 0..6;

fn modern(config: &mut ClientConfig) {
    config.broker_version = BrokerVersion::parse("2.8").unwrap();
    config.request_timeout = Duration::from_secs(10);
}

fn produce(partition: i32, values: &[&str]) -> RequestBody {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            offset: i as i64,
            timestamp: 1_000,
            value: Some(Bytes::copy_from_slice(v.as_bytes())),
            ..Record::default()
        })
        .collect();
    let mut buf = Vec::new();
    encode_record_batch(&mut buf, &BatchHeader::default(), &records).unwrap();
    RequestBody::Produce(ProduceRequest {
        acks: -1,
        timeout_ms: 1000,
        topic_data: vec![TopicProduceData {
            name: "t".into(),
            partition_data: vec![PartitionProduceData {
                index: partition,
                records: Some(Bytes::from(buf)),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    })
}

fn fetch(partition: i32, offset: i64, max_wait_ms: i32) -> RequestBody {
    RequestBody::Fetch(FetchRequest {
        replica_id: -1,
        max_wait_ms,
        min_bytes: 1,
        max_bytes: 1 << 20,
        topics: vec![FetchTopic {
            topic: "t".into(),
            partitions: vec![FetchPartition {
                partition,
                fetch_offset: offset,
                partition_max_bytes: 1 << 20,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    })
}

fn leader(partition: i32) -> Target {
    Target::Leader {
        topic: "t".into(),
        partition,
    }
}

/// Sends through the escape hatch; Fetch capped at v12, the last by topic name.
fn run(sim: &mut Sim, target: Target, body: RequestBody) -> Result<ResponseBody, Error> {
    let op = sim
        .client
        .send_version(sim.now(), target, body, VersionChoice::AtMost(12));
    match sim.wait_op(op).unwrap()? {
        Output::Response(r) => Ok(r),
        other => panic!("{other:?}"),
    }
}

fn values(r: &ResponseBody) -> Vec<(i64, String)> {
    let ResponseBody::Fetch(f) = r else {
        panic!("{r:?}")
    };
    let records = f.responses[0].partitions[0]
        .records
        .clone()
        .unwrap_or_default();
    let mut out = Vec::new();
    for batch in Batches::new(records, DecodeLimits::default()) {
        for r in batch.unwrap().records() {
            let r = r.unwrap();
            out.push((
                r.offset,
                String::from_utf8_lossy(&r.value.unwrap()).into_owned(),
            ));
        }
    }
    out
}

#[test]
fn produced_records_come_back_with_broker_offsets() {
    for seed in SEEDS {
        let cluster = MockConfig::new(3).with_topic("t", 3, 2).with_seed(seed);
        let mut sim = Sim::new(cluster, SimConfig::seeded(seed), modern).unwrap();
        let op = sim.client.update_cluster(sim.now());
        sim.wait_op(op).unwrap().unwrap();
        for p in 0..3 {
            for (i, batch) in [&["a", "b"][..], &["c"][..]].iter().enumerate() {
                let r = run(&mut sim, leader(p), produce(p, batch)).unwrap();
                let ResponseBody::Produce(r) = r else {
                    panic!()
                };
                let part = &r.responses[0].partition_responses[0];
                assert_eq!(part.error_code, 0, "seed {seed}");
                assert_eq!(part.base_offset, 2 * i as i64, "seed {seed}");
            }
            let r = run(&mut sim, leader(p), fetch(p, 0, 0)).unwrap();
            let want = vec![(0, "a".into()), (1, "b".into()), (2, "c".into())];
            assert_eq!(values(&r), want, "seed {seed}");
        }
        assert_eq!(sim.cluster.offsets("t", 1), Some((0, 3)));
    }
}

#[test]
fn a_long_poll_fetch_waits_on_virtual_time() {
    for seed in SEEDS {
        let cluster = MockConfig::new(1).with_topic("t", 1, 1).with_seed(seed);
        let mut sim = Sim::new(cluster, SimConfig::seeded(seed), modern).unwrap();
        let op = sim.client.update_cluster(sim.now());
        sim.wait_op(op).unwrap().unwrap();
        // Nothing to read: the broker holds the fetch for max_wait, then answers empty.
        let start = sim.now();
        let r = run(&mut sim, leader(0), fetch(0, 0, 2_000)).unwrap();
        assert!(values(&r).is_empty());
        let waited = sim.now() - start;
        assert!(
            waited >= Duration::from_secs(2) && waited < Duration::from_millis(2_100),
            "seed {seed}: {waited:?}"
        );
        // Records appended while it waits answer it early.
        let start = sim.now();
        let op = sim.client.send_version(
            start,
            leader(0),
            fetch(0, 0, 5_000),
            VersionChoice::AtMost(12),
        );
        sim.run_for(Duration::from_millis(300)).unwrap();
        let now = sim.now();
        let record = Record {
            value: Some("late".into()),
            ..Record::default()
        };
        sim.cluster.append_records(now, "t", 0, &[record]).unwrap();
        let Ok(Output::Response(r)) = sim.wait_op(op).unwrap() else {
            panic!("seed {seed}")
        };
        assert_eq!(values(&r), vec![(0, "late".to_owned())], "seed {seed}");
        assert!(
            sim.now() - start < Duration::from_millis(400),
            "seed {seed}"
        );
    }
}
