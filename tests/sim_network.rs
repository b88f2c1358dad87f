//! Deterministic simulation: pipelining, and frames split across reads or merged into
//! one read. Every test runs over several seeds; a failure names its seed.

use std::collections::BTreeMap;
use std::time::Duration;

use grete::client::{Output, Target};
use grete::config::{BrokerVersion, ClientConfig};
use grete::mock::sim::{Sim, SimConfig};
use grete::mock::MockConfig;
use grete::protocol::messages::{ApiKey, MetadataRequest, RequestBody, ResponseBody};
use grete::protocol::records::Record;

const SEEDS: std::ops::Range<u64> = 0..8;

fn modern(config: &mut ClientConfig) {
    config.broker_version = BrokerVersion::parse("2.8").unwrap();
}

fn metadata_all() -> RequestBody {
    RequestBody::Metadata(MetadataRequest {
        topics: None,
        ..Default::default()
    })
}

/// A cluster with data in every partition, and a client that knows it.
fn loaded_sim(seed: u64, net: SimConfig, configure: impl FnOnce(&mut ClientConfig)) -> Sim {
    let cluster = MockConfig::new(3).with_topic("t", 6, 2).with_seed(seed);
    let mut sim = Sim::new(cluster, net, |c| {
        modern(c);
        configure(c);
    })
    .unwrap();
    for p in 0..6 {
        let records: Vec<Record> = (0..=p)
            .map(|i| Record {
                offset: i64::from(i),
                value: Some(format!("v{i}").into()),
                ..Record::default()
            })
            .collect();
        let now = sim.now();
        sim.cluster.append_records(now, "t", p, &records).unwrap();
    }
    let op = sim.client.update_cluster(sim.now());
    sim.wait_op(op).unwrap().unwrap();
    sim
}

#[test]
fn requests_are_pipelined_on_one_connection() {
    for seed in SEEDS {
        let latency = Duration::from_millis(50);
        let mut sim = loaded_sim(
            seed,
            SimConfig::plain(seed, Duration::from_millis(1)),
            |_| {},
        );
        sim.cluster.set_latency(0, latency);
        let start = sim.now();
        let seen = sim.cluster.requests().len();
        let ops: Vec<_> = (0..5)
            .map(|_| sim.client.send(start, Target::Broker(0), metadata_all()))
            .collect();
        for op in ops {
            let result = sim.wait_op(op).unwrap();
            assert!(
                matches!(result, Ok(Output::Response(ResponseBody::Metadata(_)))),
                "seed {seed}: {result:?}"
            );
        }
        // One at a time would take 5 x 50 ms.
        assert!(
            sim.now() - start < 2 * latency,
            "seed {seed}: {:?}",
            sim.now() - start
        );
        let on_broker_0: Vec<_> = sim.cluster.requests()[seen..]
            .iter()
            .filter(|r| r.broker == 0 && r.api == ApiKey::Metadata)
            .collect();
        assert_eq!(on_broker_0.len(), 5, "seed {seed}");
        assert!(on_broker_0.iter().all(|r| r.conn == on_broker_0[0].conn));
    }
}

#[test]
fn in_flight_requests_are_capped_per_connection() {
    for seed in SEEDS {
        let latency = Duration::from_millis(50);
        let mut sim = loaded_sim(seed, SimConfig::plain(seed, Duration::ZERO), |c| {
            c.max_in_flight_requests_per_connection = 2;
        });
        sim.cluster.set_latency(0, latency);
        let start = sim.now();
        let seen = sim.cluster.requests().len();
        let ops: Vec<_> = (0..6)
            .map(|_| sim.client.send(start, Target::Broker(0), metadata_all()))
            .collect();
        for op in ops {
            assert!(sim.wait_op(op).unwrap().is_ok(), "seed {seed}");
        }
        // With no network latency a request reaches the broker when it is sent: at most
        // two arrive at any instant, and the six take three rounds.
        let mut per_instant: BTreeMap<_, usize> = BTreeMap::new();
        for r in sim.cluster.requests()[seen..]
            .iter()
            .filter(|r| r.broker == 0)
        {
            *per_instant.entry(r.at).or_default() += 1;
        }
        assert!(
            per_instant.values().all(|n| *n <= 2),
            "seed {seed}: {per_instant:?}"
        );
        assert_eq!(per_instant.values().sum::<usize>(), 6);
        assert!(sim.now() - start >= 3 * latency, "seed {seed}");
    }
}

/// Offsets of all six partitions through the client.
fn all_offsets(sim: &mut Sim, timestamp: i64) -> Vec<(i32, i64)> {
    let op = sim
        .client
        .list_offsets(sim.now(), "t", (0..6).map(|p| (p, timestamp)).collect());
    match sim.wait_op(op).unwrap() {
        Ok(Output::Offsets(offsets)) => offsets
            .into_iter()
            .map(|o| (o.partition, o.result.unwrap()))
            .collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn frames_split_across_reads_and_merged_in_one_read() {
    let want: Vec<(i32, i64)> = (0..6).map(|p| (p, i64::from(p) + 1)).collect();
    let mut partial = 0;
    let mut multi = 0;
    for seed in SEEDS {
        let mut net = SimConfig::seeded(seed);
        net.max_read = 1 + (seed as usize % 7);
        net.split_probability = 100;
        net.merge_probability = 100;
        let mut sim = loaded_sim(seed, net, |_| {});
        assert_eq!(all_offsets(&mut sim, -1), want, "seed {seed}");
        let earliest: Vec<(i32, i64)> = (0..6).map(|p| (p, 0)).collect();
        assert_eq!(all_offsets(&mut sim, -2), earliest, "seed {seed}");
        let stats = sim.stats();
        assert!(stats.partial_frame_reads > 0, "seed {seed}: {stats:?}");
        partial += stats.partial_frame_reads;

        // No splitting, everything delivered at once: responses pile up into one read.
        let mut net = SimConfig::plain(seed, Duration::from_millis(3));
        net.merge_probability = 100;
        let mut sim = loaded_sim(seed, net, |_| {});
        for b in 0..3 {
            sim.cluster.set_latency(b, Duration::from_millis(5));
        }
        let start = sim.now();
        let ops: Vec<_> = (0..5)
            .map(|_| sim.client.send(start, Target::Broker(1), metadata_all()))
            .collect();
        for op in ops {
            assert!(sim.wait_op(op).unwrap().is_ok(), "seed {seed}");
        }
        assert_eq!(all_offsets(&mut sim, -1), want, "seed {seed}");
        multi += sim.stats().multi_frame_reads;
    }
    assert!(partial > 0 && multi > 0, "partial {partial}, multi {multi}");
}

#[test]
fn a_byte_at_a_time_still_works() {
    for seed in SEEDS {
        let mut net = SimConfig::seeded(seed);
        net.max_read = 1;
        net.split_probability = 100;
        let mut sim = loaded_sim(seed, net, |_| {});
        assert_eq!(all_offsets(&mut sim, -1)[5], (5, 6), "seed {seed}");
        let stats = sim.stats();
        // Every read was one byte: as many reads as bytes, most of them mid-frame.
        assert!(
            stats.partial_frame_reads > stats.reads_to_client / 2,
            "seed {seed}: {stats:?}"
        );
    }
}
