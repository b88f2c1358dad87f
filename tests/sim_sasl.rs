//! Deterministic simulation of SASL against the mock's independent server side: PLAIN
//! and SCRAM-SHA-256/512, and wrong credentials. Every test runs over several seeds.

use std::time::Duration;

use grete::client::Output;
use grete::config::{BrokerVersion, SaslConfig, SaslMechanism};
use grete::error::Error;
use grete::mock::sim::{Sim, SimConfig};
use grete::mock::MockConfig;
use grete::protocol::messages::ApiKey;

// SCRAM costs 4096 HMAC rounds per side per exchange (Kafka's minimum): few seeds.
const SEEDS: std::ops::Range<u64> = 0..2;

fn run(
    seed: u64,
    cluster: MockConfig,
    mechanism: SaslMechanism,
    password: &str,
) -> (Sim, Result<Output, Error>) {
    let password = password.to_owned();
    let mut sim = Sim::new(cluster.with_seed(seed), SimConfig::seeded(seed), |c| {
        c.broker_version = BrokerVersion::parse("2.8").unwrap();
        c.request_timeout = Duration::from_secs(5);
        c.sasl = Some(SaslConfig {
            mechanism,
            username: "alice".into(),
            password,
        });
    })
    .unwrap();
    let op = sim.client.update_cluster(sim.now());
    let result = sim.wait_op(op).unwrap();
    (sim, result)
}

#[test]
fn plain_and_scram_authenticate() {
    for seed in SEEDS {
        for (mechanism, cluster) in [
            (
                SaslMechanism::Plain,
                MockConfig::new(2).with_sasl_plain("alice", "secret"),
            ),
            (
                SaslMechanism::ScramSha256,
                MockConfig::new(2).with_sasl_scram("SCRAM-SHA-256", "alice", "secret"),
            ),
            (
                SaslMechanism::ScramSha512,
                MockConfig::new(2).with_sasl_scram("SCRAM-SHA-512", "alice", "secret"),
            ),
        ] {
            let (sim, result) = run(seed, cluster.with_topic("t", 1, 1), mechanism, "secret");
            assert!(
                matches!(result, Ok(Output::Cluster)),
                "seed {seed} {mechanism:?}: {result:?}"
            );
            assert!(sim.client.cluster().topic("t").is_some());
            assert!(sim.cluster.request_count(ApiKey::SaslHandshake) >= 1);
            let rounds = if mechanism == SaslMechanism::Plain {
                1
            } else {
                2
            };
            assert!(
                sim.cluster.request_count(ApiKey::SaslAuthenticate) >= rounds,
                "seed {seed} {mechanism:?}"
            );
        }
    }
}

#[test]
fn wrong_password_is_a_clear_error_without_hanging() {
    for seed in SEEDS {
        for (mechanism, cluster) in [
            (
                SaslMechanism::Plain,
                MockConfig::new(1).with_sasl_plain("alice", "secret"),
            ),
            (
                SaslMechanism::ScramSha256,
                MockConfig::new(1).with_sasl_scram("SCRAM-SHA-256", "alice", "secret"),
            ),
        ] {
            let (sim, result) = run(seed, cluster, mechanism, "wrong");
            let error = result.expect_err("authenticated with a wrong password");
            assert_eq!(
                error.code(),
                Some(grete::protocol::ErrorCode::SaslAuthenticationFailed),
                "seed {seed} {mechanism:?}: {error:?}"
            );
            // Issue 6, item 9d: retrying cannot fix credentials, so the operation fails
            // as soon as the broker says so (a few simulated milliseconds), not at its
            // deadline.
            assert!(
                sim.elapsed() < Duration::from_secs(1),
                "seed {seed} {mechanism:?}: {:?}",
                sim.elapsed()
            );
        }
    }
}

#[test]
fn an_unoffered_mechanism_is_refused() {
    for seed in SEEDS {
        let cluster = MockConfig::new(1).with_sasl_plain("alice", "secret");
        let (sim, result) = run(seed, cluster, SaslMechanism::ScramSha512, "secret");
        let error = result.expect_err("the broker does not offer SCRAM-SHA-512");
        assert_eq!(
            error.code(),
            Some(grete::protocol::ErrorCode::UnsupportedSaslMechanism),
            "seed {seed}: {error:?}"
        );
        assert!(
            error.to_string().contains("PLAIN"),
            "the offered ones: {error}"
        );
        assert!(
            sim.elapsed() < Duration::from_secs(1),
            "seed {seed}: at once"
        );
    }
}
