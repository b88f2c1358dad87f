//! Deterministic simulation: creating and deleting topics through the controller of a
//! modern cluster, per-topic errors, and a controller that moves. Every test runs over
//! several seeds.

use std::time::Duration;

use grete::client::{NewTopic, Output};
use grete::config::BrokerVersion;
use grete::error::Error;
use grete::mock::sim::{Sim, SimConfig};
use grete::mock::MockConfig;
use grete::protocol::messages::ApiKey;
use grete::protocol::ErrorCode;

const SEEDS: std::ops::Range<u64> = 0..6;

fn sim(seed: u64) -> Sim {
    let cluster = MockConfig::new(3)
        .with_topic("existing", 1, 1)
        .with_auto_create(false)
        .with_seed(seed);
    let mut sim = Sim::new(cluster, SimConfig::seeded(seed), |c| {
        c.broker_version = BrokerVersion::parse("2.8").unwrap();
        c.request_timeout = Duration::from_secs(5);
    })
    .unwrap();
    let op = sim.client.update_cluster(sim.now());
    sim.wait_op(op).unwrap().unwrap();
    sim
}

fn new_topic(name: &str, partitions: i32, rf: i16) -> NewTopic {
    NewTopic {
        name: name.into(),
        num_partitions: partitions,
        replication_factor: rf,
        configs: vec![],
    }
}

fn topic_errors(result: Result<Output, Error>) -> Vec<(String, Option<ErrorCode>)> {
    match result {
        Ok(Output::Topics(t)) => t
            .into_iter()
            .map(|t| (t.name, t.error.map(|e| e.code().expect("a broker error"))))
            .collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn create_and_delete_through_the_controller() {
    for seed in SEEDS {
        let mut sim = sim(seed);
        let topics = vec![
            new_topic("a", 3, 2),
            new_topic("existing", 1, 1),
            new_topic("too-replicated", 1, 9),
        ];
        let op = sim
            .client
            .create_topics(sim.now(), topics, Duration::from_secs(1));
        let got = topic_errors(sim.wait_op(op).unwrap());
        assert_eq!(
            got,
            vec![
                ("a".to_owned(), None),
                ("existing".to_owned(), Some(ErrorCode::TopicAlreadyExists)),
                (
                    "too-replicated".to_owned(),
                    Some(ErrorCode::InvalidReplicationFactor)
                ),
            ],
            "seed {seed}"
        );
        assert_eq!(sim.cluster.partition_count("a"), Some(3));
        // Sent to the controller only.
        let controller = sim.cluster.controller();
        assert!(sim
            .cluster
            .requests()
            .iter()
            .filter(|r| r.api == ApiKey::CreateTopics)
            .all(|r| r.broker == controller));
        let op = sim
            .client
            .topic_metadata(sim.now(), vec!["a".into()], false);
        sim.wait_op(op).unwrap().unwrap();
        assert_eq!(sim.client.cluster().topic("a").unwrap().partitions.len(), 3);

        let op = sim.client.delete_topics(
            sim.now(),
            vec!["a".into(), "nope".into()],
            Duration::from_secs(1),
        );
        let got = topic_errors(sim.wait_op(op).unwrap());
        assert_eq!(
            got,
            vec![
                ("a".to_owned(), None),
                ("nope".to_owned(), Some(ErrorCode::UnknownTopicOrPartition)),
            ],
            "seed {seed}"
        );
        assert_eq!(sim.cluster.topic_names(), vec!["existing".to_owned()]);
    }
}

#[test]
fn a_controller_that_moves_is_followed() {
    for seed in SEEDS {
        let mut sim = sim(seed);
        // The controller dies: another broker takes over, and the first CreateTopics
        // (sent to the old one, or refused with NOT_CONTROLLER) is retried there.
        let old = sim.cluster.controller();
        let now = sim.now();
        sim.cluster.broker_down(now, old);
        let op = sim.client.create_topics(
            sim.now(),
            vec![new_topic("b", 1, 1)],
            Duration::from_secs(1),
        );
        let got = topic_errors(sim.wait_op(op).unwrap());
        assert_eq!(got, vec![("b".to_owned(), None)], "seed {seed}");
        assert_ne!(sim.cluster.controller(), old);
        assert_eq!(sim.cluster.partition_count("b"), Some(1));
    }
}

#[test]
fn not_controller_leads_to_a_refresh_and_a_retry() {
    for seed in SEEDS {
        let mut sim = sim(seed);
        let old = sim.cluster.controller();
        let new = (old + 1) % 3;
        // An election the client has not heard of: its cached controller is stale.
        assert!(sim.cluster.set_controller(new));
        let metadata_before = sim.cluster.request_count(ApiKey::Metadata);
        let op = sim.client.create_topics(
            sim.now(),
            vec![new_topic("c", 2, 1)],
            Duration::from_secs(1),
        );
        let got = topic_errors(sim.wait_op(op).unwrap());
        assert_eq!(got, vec![("c".to_owned(), None)], "seed {seed}");
        let brokers: Vec<i32> = sim
            .cluster
            .requests()
            .iter()
            .filter(|r| r.api == ApiKey::CreateTopics)
            .map(|r| r.broker)
            .collect();
        assert_eq!(brokers, vec![old, new], "seed {seed}");
        assert!(sim.cluster.request_count(ApiKey::Metadata) > metadata_before);
    }
}
