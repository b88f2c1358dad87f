//! Deterministic simulation: bootstrap, metadata and its refresh, refused connections.
//! Every test runs over several seeds; a failure names its seed, and that seed replays
//! the same run exactly.

use std::time::Duration;

use grete::client::{Client, Event, Output};
use grete::config::{Bootstrap, BrokerAddress, BrokerVersion};
use grete::error::Error;
use grete::mock::sim::{Sim, SimConfig};
use grete::mock::MockConfig;
use grete::protocol::messages::ApiKey;
use grete::protocol::ErrorCode;

const SEEDS: std::ops::Range<u64> = 0..8;

fn modern(config: &mut grete::config::ClientConfig) {
    config.broker_version = BrokerVersion::parse("2.8").unwrap();
}

/// The client's view of the cluster equals the mock's: brokers, and each partition's
/// leader, replicas and ISR.
fn assert_same_view(sim: &Sim, seed: u64) {
    let client = sim.client.cluster();
    let mut brokers: Vec<(i32, String, u16)> = client
        .brokers()
        .map(|b| (b.id, b.host.clone(), b.port))
        .collect();
    brokers.sort();
    let want: Vec<(i32, String, u16)> = sim
        .cluster
        .config()
        .brokers
        .iter()
        .filter(|b| sim.cluster.is_up(b.id))
        .map(|b| (b.id, b.host.clone(), b.port))
        .collect();
    assert_eq!(brokers, want, "seed {seed}");
    for name in sim.cluster.topic_names() {
        if name.starts_with("__") {
            continue;
        }
        let topic = client
            .topic(&name)
            .unwrap_or_else(|| panic!("seed {seed}: {name} missing"));
        assert_eq!(
            topic.partitions.len(),
            sim.cluster.partition_count(&name).unwrap()
        );
        for (id, p) in &topic.partitions {
            let (replicas, isr) = sim.cluster.replicas(&name, *id).unwrap();
            assert_eq!(p.leader, sim.cluster.leader(&name, *id), "seed {seed}");
            assert_eq!(p.replicas, replicas, "seed {seed}");
            assert_eq!(p.isr, isr, "seed {seed}");
        }
    }
}

#[test]
fn bootstrap_from_brokers_sees_the_whole_cluster() {
    for seed in SEEDS {
        for modern_client in [false, true] {
            let cluster = MockConfig::new(3)
                .with_topic("events", 6, 2)
                .with_topic("logs", 1, 3)
                .with_offsets_topic(4)
                .with_seed(seed);
            let mut sim = Sim::new(cluster, SimConfig::seeded(seed), |c| {
                if modern_client {
                    modern(c);
                }
            })
            .unwrap();
            let op = sim.client.update_cluster(sim.now());
            let result = sim.wait_op(op).unwrap();
            assert!(
                matches!(result, Ok(Output::Cluster)),
                "seed {seed}: {result:?}"
            );
            assert_same_view(&sim, seed);
            // Internal topics are hidden by default.
            let names: Vec<&str> = sim
                .client
                .cluster()
                .topics()
                .map(|t| t.name.as_str())
                .collect();
            assert_eq!(names, vec!["events", "logs"], "seed {seed}");
            // A modern client asks ApiVersions first; a 0.9 one never does.
            let probes = sim.cluster.request_count(ApiKey::ApiVersions);
            assert_eq!(probes > 0, modern_client, "seed {seed}");
            let versions: Vec<i16> = sim
                .cluster
                .requests()
                .iter()
                .filter(|r| r.api == ApiKey::Metadata)
                .map(|r| r.version)
                .collect();
            assert!(!versions.is_empty());
            if !modern_client {
                assert!(
                    versions.iter().all(|v| *v == 0),
                    "seed {seed}: {versions:?}"
                );
            } else {
                assert!(
                    versions.iter().all(|v| *v >= 1),
                    "seed {seed}: {versions:?}"
                );
            }
        }
    }
}

#[test]
fn runs_replay_exactly_per_seed() {
    let run = |seed| {
        let cluster = MockConfig::new(3).with_topic("t", 3, 2).with_seed(seed);
        let mut sim = Sim::new(cluster, SimConfig::seeded(seed), modern).unwrap();
        let op = sim.client.update_cluster(sim.now());
        sim.wait_op(op).unwrap().unwrap();
        let op = sim
            .client
            .list_offsets(sim.now(), "t", vec![(0, -1), (1, -2), (2, -1)]);
        sim.wait_op(op).unwrap().unwrap();
        let log: Vec<_> = sim
            .cluster
            .requests()
            .iter()
            .map(|r| {
                (
                    r.at - sim.cluster.requests()[0].at,
                    r.broker,
                    r.api,
                    r.version,
                )
            })
            .collect();
        (log, sim.elapsed(), sim.steps())
    };
    for seed in SEEDS {
        assert_eq!(run(seed), run(seed), "seed {seed}");
    }
    assert_ne!(run(1), run(2), "different seeds should give different runs");
}

#[test]
fn bootstrap_from_zookeeper_with_a_chroot() {
    for seed in SEEDS {
        let cluster = MockConfig::new(3)
            .with_topic("events", 2, 2)
            .with_seed(seed);
        let mut config = SimConfig::seeded(seed);
        config.zk_chroot = "/kafka".into();
        let mut sim = Sim::new(cluster, config, |c| {
            c.bootstrap = Bootstrap::ZooKeeper {
                connect: "zk1:2181,zk2:2181/kafka".into(),
            };
        })
        .unwrap();
        let op = sim.client.update_cluster(sim.now());
        let result = sim.wait_op(op).unwrap();
        assert!(
            matches!(result, Ok(Output::Cluster)),
            "seed {seed}: {result:?}"
        );
        assert_same_view(&sim, seed);
    }
}

#[test]
fn topic_metadata_auto_creates_through_leader_not_available() {
    for seed in SEEDS {
        let mut sim = Sim::new(
            MockConfig::new(2).with_seed(seed),
            SimConfig::seeded(seed),
            modern,
        )
        .unwrap();
        let op = sim
            .client
            .topic_metadata(sim.now(), vec!["fresh".into()], true);
        let result = sim.wait_op(op).unwrap();
        let Ok(Output::Topics(topics)) = result else {
            panic!("seed {seed}: {result:?}");
        };
        assert_eq!(topics.len(), 1);
        assert!(topics[0].error.is_none(), "seed {seed}: {topics:?}");
        assert_eq!(sim.cluster.topic_names(), vec!["fresh".to_owned()]);
        let topic = sim.client.cluster().topic("fresh").unwrap();
        assert_eq!(topic.partitions.len(), 1, "seed {seed}");
        assert!(topic.partitions[&0].leader.is_some());
    }
}

#[test]
fn unknown_topic_without_auto_create_is_a_typed_error() {
    for seed in SEEDS {
        let cluster = MockConfig::new(1).with_auto_create(false).with_seed(seed);
        let mut sim = Sim::new(cluster, SimConfig::seeded(seed), |c| {
            modern(c);
            c.request_timeout = Duration::from_secs(5);
        })
        .unwrap();
        let op = sim
            .client
            .topic_metadata(sim.now(), vec!["missing".into()], false);
        let result = sim.wait_op(op).unwrap();
        let error = match result {
            Ok(Output::Topics(t)) => t[0].error.clone().expect("an error for the topic"),
            Err(e) => e,
            other => panic!("seed {seed}: {other:?}"),
        };
        assert_eq!(
            error.code(),
            Some(ErrorCode::UnknownTopicOrPartition),
            "seed {seed}: {error:?}"
        );
        assert!(sim.elapsed() <= Duration::from_secs(6), "seed {seed}");
    }
}

#[test]
fn metadata_refreshes_on_a_timer() {
    for seed in SEEDS {
        let cluster = MockConfig::new(2).with_topic("t", 2, 2).with_seed(seed);
        let mut sim = Sim::new(cluster, SimConfig::seeded(seed), |c| {
            modern(c);
            c.metadata_max_age = Duration::from_secs(10);
        })
        .unwrap();
        let op = sim.client.update_cluster(sim.now());
        sim.wait_op(op).unwrap().unwrap();
        let before = sim.cluster.request_count(ApiKey::Metadata);
        // A change the client can only learn by asking again.
        sim.cluster.create_topic("later", 3, 1).unwrap();
        sim.run_for(Duration::from_secs(25)).unwrap();
        let after = sim.cluster.request_count(ApiKey::Metadata);
        assert!(
            after > before,
            "seed {seed}: no refresh in 25 s with a 10 s max age"
        );
        assert!(
            after - before <= 3,
            "seed {seed}: {} refreshes",
            after - before
        );
        assert!(sim.client.cluster().topic("later").is_some(), "seed {seed}");
    }
}

#[test]
fn a_refused_bootstrap_broker_is_skipped() {
    for seed in SEEDS {
        let cluster = MockConfig::new(3).with_topic("t", 1, 1).with_seed(seed);
        let mut sim = Sim::new(cluster, SimConfig::seeded(seed), |c| {
            modern(c);
            // Nothing listens on the first address.
            let mut addrs = vec![BrokerAddress::new("nowhere.mock", 1)];
            addrs.extend(BrokerAddress::parse("broker-1.mock:9092").unwrap());
            c.bootstrap = Bootstrap::Brokers(addrs);
        })
        .unwrap();
        sim.cluster.broker_down(sim.now(), 0);
        let op = sim.client.update_cluster(sim.now());
        let result = sim.wait_op(op).unwrap();
        assert!(
            matches!(result, Ok(Output::Cluster)),
            "seed {seed}: {result:?}"
        );
        assert_eq!(sim.client.cluster().brokers().count(), 2, "seed {seed}");
    }
}

#[test]
fn no_reachable_broker_fails_clearly_within_the_deadline() {
    for seed in SEEDS {
        let timeout = Duration::from_secs(3);
        let mut sim = Sim::new(
            MockConfig::new(2).with_seed(seed),
            SimConfig::seeded(seed),
            |c| {
                modern(c);
                c.request_timeout = timeout;
            },
        )
        .unwrap();
        let now = sim.now();
        sim.cluster.broker_down(now, 0);
        sim.cluster.broker_down(now, 1);
        let op = sim.client.update_cluster(now);
        let result = sim.wait_op(op).unwrap();
        let Err(error) = result else {
            panic!("seed {seed}: {result:?}");
        };
        assert!(
            matches!(error, Error::Timeout { .. } | Error::Transport(_)),
            "seed {seed}: {error:?}"
        );
        // Finished by its deadline (plus at most one network hop), not later.
        assert!(
            sim.elapsed() <= timeout + Duration::from_millis(50),
            "seed {seed}: {:?}",
            sim.elapsed()
        );
        // It kept trying with backoff, not in a tight loop.
        assert!(sim.steps() < 5_000, "seed {seed}: {} steps", sim.steps());
        assert!(
            sim.events()
                .iter()
                .any(|e| matches!(e, Event::BrokerDown { .. })),
            "seed {seed}: no BrokerDown event"
        );
    }
}

#[test]
fn client_from_parts_can_be_simulated() {
    let cluster = grete::mock::MockCluster::new(MockConfig::new(1).with_topic("t", 1, 1));
    let config = grete::config::ClientConfig {
        bootstrap: Bootstrap::Brokers(BrokerAddress::parse(&cluster.bootstrap_servers()).unwrap()),
        ..Default::default()
    };
    let client = Client::new(config).unwrap();
    let mut sim = Sim::with_parts(
        client,
        cluster,
        SimConfig::plain(3, Duration::from_millis(1)),
    );
    let op = sim.client.update_cluster(sim.now());
    assert!(sim.wait_op(op).unwrap().is_ok());
    assert!(sim.client.cluster().topic("t").is_some());
}
