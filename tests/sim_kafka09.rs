//! Deterministic simulation against brokers that speak like Kafka 0.9.0.1: no
//! ApiVersions (a request for it is never answered and mutes the connection), only the
//! 0.9 versions of each API. Every test runs over several seeds.

use std::time::Duration;

use grete::client::{NewTopic, Output};
use grete::config::{BrokerVersion, ClientConfig};
use grete::error::Error;
use grete::mock::sim::{Sim, SimConfig};
use grete::mock::MockConfig;
use grete::protocol::messages::ApiKey;
use grete::protocol::records::Record;

const SEEDS: std::ops::Range<u64> = 0..8;

fn kafka_09_sim(seed: u64, configure: impl FnOnce(&mut ClientConfig)) -> Sim {
    let cluster = MockConfig::new(3)
        .kafka_09()
        .with_topic("t", 3, 2)
        .with_seed(seed);
    let mut sim = Sim::new(cluster, SimConfig::seeded(seed), configure).unwrap();
    let records: Vec<Record> = (0..4)
        .map(|i| Record {
            offset: i,
            value: Some("v".into()),
            ..Record::default()
        })
        .collect();
    let now = sim.now();
    for p in 0..3 {
        sim.cluster.append_records(now, "t", p, &records).unwrap();
    }
    sim
}

fn offsets(sim: &mut Sim, timestamp: i64) -> Vec<Result<i64, Error>> {
    let op = sim.client.list_offsets(
        sim.now(),
        "t",
        vec![(0, timestamp), (1, timestamp), (2, timestamp)],
    );
    match sim.wait_op(op).unwrap() {
        Ok(Output::Offsets(o)) => o.into_iter().map(|o| o.result).collect(),
        other => panic!("{other:?}"),
    }
}

fn versions_of(sim: &Sim, api: ApiKey) -> Vec<i16> {
    sim.cluster
        .requests()
        .iter()
        .filter(|r| r.api == api)
        .map(|r| r.version)
        .collect()
}

#[test]
fn default_config_never_probes_and_speaks_v0() {
    for seed in SEEDS {
        // The default broker_version is 0.9.0: no ApiVersions request at all.
        let mut sim = kafka_09_sim(seed, |_| {});
        let op = sim.client.update_cluster(sim.now());
        let result = sim.wait_op(op).unwrap();
        assert!(
            matches!(result, Ok(Output::Cluster)),
            "seed {seed}: {result:?}"
        );
        assert_eq!(sim.client.cluster().topic("t").unwrap().partitions.len(), 3);
        assert_eq!(
            offsets(&mut sim, -1),
            vec![Ok(4), Ok(4), Ok(4)],
            "seed {seed}"
        );
        assert_eq!(
            offsets(&mut sim, -2),
            vec![Ok(0), Ok(0), Ok(0)],
            "seed {seed}"
        );
        assert_eq!(sim.cluster.request_count(ApiKey::ApiVersions), 0);
        assert!(versions_of(&sim, ApiKey::Metadata).iter().all(|v| *v == 0));
        assert!(versions_of(&sim, ApiKey::ListOffsets)
            .iter()
            .all(|v| *v == 0));
        assert!(
            sim.elapsed() < Duration::from_secs(1),
            "seed {seed}: {:?}",
            sim.elapsed()
        );
    }
}

#[test]
fn a_probe_that_is_never_answered_falls_back_to_the_configured_version() {
    for seed in SEEDS {
        let probe_timeout = Duration::from_millis(500);
        let mut sim = kafka_09_sim(seed, |c| {
            // A client told to expect something newer still copes with a 0.9 broker.
            c.broker_version = BrokerVersion::parse("0.10.0").unwrap();
            c.api_version_request = true;
            c.api_version_request_timeout = probe_timeout;
        });
        let op = sim.client.update_cluster(sim.now());
        let result = sim.wait_op(op).unwrap();
        assert!(
            matches!(result, Ok(Output::Cluster)),
            "seed {seed}: {result:?}"
        );
        // The probe went unanswered for its timeout, then a new connection spoke the
        // fallback table.
        assert!(
            sim.elapsed() >= probe_timeout,
            "seed {seed}: {:?}",
            sim.elapsed()
        );
        assert!(sim.cluster.request_count(ApiKey::ApiVersions) >= 1);
        assert!(versions_of(&sim, ApiKey::Metadata).iter().all(|v| *v == 0));
        // The fallback is remembered: asking again does not wait for another probe.
        let before = sim.now();
        assert_eq!(
            offsets(&mut sim, -1),
            vec![Ok(4), Ok(4), Ok(4)],
            "seed {seed}"
        );
        let probes = sim.cluster.request_count(ApiKey::ApiVersions);
        let op = sim.client.update_cluster(sim.now());
        assert!(sim.wait_op(op).unwrap().is_ok());
        assert_eq!(
            sim.cluster.request_count(ApiKey::ApiVersions),
            probes,
            "seed {seed}"
        );
        assert!(sim.now() - before < 2 * probe_timeout, "seed {seed}");
    }
}

#[test]
fn create_and_delete_topics_are_clearly_unsupported() {
    for seed in SEEDS {
        let mut sim = kafka_09_sim(seed, |c| c.request_timeout = Duration::from_secs(5));
        let op = sim.client.update_cluster(sim.now());
        sim.wait_op(op).unwrap().unwrap();
        let op = sim.client.create_topics(
            sim.now(),
            vec![NewTopic {
                name: "new".into(),
                num_partitions: 1,
                replication_factor: 1,
                configs: vec![],
            }],
            Duration::from_secs(1),
        );
        let result = sim.wait_op(op).unwrap();
        let unsupported = |e: &Error| {
            matches!(
                e,
                Error::Unsupported {
                    api: ApiKey::CreateTopics,
                    ..
                }
            )
        };
        match &result {
            Err(e) => assert!(unsupported(e), "seed {seed}: {e:?}"),
            Ok(Output::Topics(t)) => {
                assert!(
                    t[0].error.as_ref().is_some_and(unsupported),
                    "seed {seed}: {t:?}"
                )
            }
            other => panic!("seed {seed}: {other:?}"),
        }
        let op = sim
            .client
            .delete_topics(sim.now(), vec!["t".into()], Duration::from_secs(1));
        let result = sim.wait_op(op).unwrap();
        assert!(
            match &result {
                Err(Error::Unsupported { api, .. }) => *api == ApiKey::DeleteTopics,
                Ok(Output::Topics(t)) => matches!(
                    t[0].error,
                    Some(Error::Unsupported {
                        api: ApiKey::DeleteTopics,
                        ..
                    })
                ),
                _ => false,
            },
            "seed {seed}: {result:?}"
        );
        // Nothing was sent that a 0.9 broker would choke on.
        assert_eq!(sim.cluster.request_count(ApiKey::CreateTopics), 0);
        assert_eq!(sim.cluster.topic_names(), vec!["t".to_owned()]);
        assert!(sim.elapsed() < Duration::from_secs(1), "seed {seed}");
    }
}

#[test]
fn mixed_cluster_mid_upgrade() {
    // One broker already upgraded, two still on 0.9: a 0.10+ client works with both.
    for seed in SEEDS {
        let mut cluster = MockConfig::new(3)
            .kafka_09()
            .with_topic("t", 3, 1)
            .with_seed(seed);
        cluster.brokers[0].mode = grete::mock::BrokerMode::Modern;
        let mut sim = Sim::new(cluster, SimConfig::seeded(seed), |c| {
            c.broker_version = BrokerVersion::parse("0.10.0").unwrap();
            c.api_version_request_timeout = Duration::from_millis(300);
        })
        .unwrap();
        let op = sim.client.update_cluster(sim.now());
        assert!(sim.wait_op(op).unwrap().is_ok(), "seed {seed}");
        let results = offsets(&mut sim, -1);
        assert_eq!(results, vec![Ok(0), Ok(0), Ok(0)], "seed {seed}");
        // Broker 0 was asked with something newer than v0.
        let modern = sim
            .cluster
            .requests()
            .iter()
            .any(|r| r.broker == 0 && r.api == ApiKey::ListOffsets && r.version >= 1);
        let leaders: Vec<i32> = (0..3)
            .map(|p| sim.cluster.leader("t", p).unwrap())
            .collect();
        assert_eq!(
            modern,
            leaders.contains(&0),
            "seed {seed}: leaders {leaders:?}"
        );
    }
}

/// Issue 6, item 3: a broker that closes the connection on ApiVersions (a restart, a
/// proxy, a load balancer) is not taken for a broker before 0.10: only silence on an open
/// connection is. The closure is an ordinary connection failure: the client reconnects
/// with backoff, asks again, and never falls back to the 0.9 table.
#[test]
fn a_probe_that_closes_the_connection_is_a_failure_not_a_downgrade() {
    use grete::mock::{Fault, FaultAction, Matcher};
    for seed in SEEDS {
        let cluster = MockConfig::new(1).with_topic("t", 1, 1).with_seed(seed);
        let mut sim = Sim::new(cluster, SimConfig::seeded(seed), |c| {
            c.broker_version = BrokerVersion::parse("2.8").unwrap();
            c.request_timeout = Duration::from_secs(5);
        })
        .unwrap();
        // Closed on the first two probes (a broker restarting), then it answers.
        sim.cluster.inject(Fault {
            matcher: Matcher::api(ApiKey::ApiVersions),
            action: FaultAction::Close,
            times: 2,
        });
        let op = sim.client.update_cluster(sim.now());
        let result = sim.wait_op(op).unwrap();
        assert!(
            matches!(result, Ok(Output::Cluster)),
            "seed {seed}: {result:?}"
        );
        assert_eq!(
            sim.cluster.request_count(ApiKey::ApiVersions),
            3,
            "seed {seed}: asked again after each closure"
        );
        // The negotiated versions, not 0.9's table.
        let versions = versions_of(&sim, ApiKey::Metadata);
        assert_eq!(
            versions,
            vec![ApiKey::Metadata.max_version()],
            "seed {seed}"
        );

        // Closed on every probe: the operation fails at its deadline, saying why, and
        // nothing was sent in 0.9's table.
        let cluster = MockConfig::new(1).with_topic("t", 1, 1).with_seed(seed);
        let mut sim = Sim::new(cluster, SimConfig::seeded(seed), |c| {
            c.broker_version = BrokerVersion::parse("2.8").unwrap();
            c.request_timeout = Duration::from_secs(5);
        })
        .unwrap();
        sim.cluster.inject(Fault {
            matcher: Matcher::api(ApiKey::ApiVersions),
            action: FaultAction::Close,
            times: usize::MAX,
        });
        let op = sim.client.update_cluster(sim.now());
        let error = sim.wait_op(op).unwrap().unwrap_err();
        assert!(
            matches!(&error, Error::Timeout { what } if what.contains("closed by the broker")),
            "seed {seed}: {error:?}"
        );
        assert_eq!(
            sim.cluster.request_count(ApiKey::Metadata),
            0,
            "seed {seed}"
        );
    }
}
