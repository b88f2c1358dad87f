//! Issue #6, item 5 (secrets in `Debug`): no `{:?}` of a public type shows a SASL
//! password, at any point of an exchange, for every mechanism.
//!
//! Each value is printed with `{:?}` and `{:#?}`, and the text is searched for the
//! password as a string and as the list of its bytes (how a `Vec<u8>` buffer holding it
//! would print).

// A test may read the clock (the core's clippy rule is for src/).
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use grete::client::Client;
use grete::config::{BrokerVersion, ClientConfig, SaslConfig, SaslMechanism};
use grete::connection::{Connection, ConnectionConfig};
use grete::mock::sim::{Sim, SimConfig};
use grete::mock::{MockCluster, MockConfig};
use grete::rng::Rng;
use grete::sasl::SaslClient;

const PASSWORD: &str = "hunter2-do-not-print";

fn assert_redacted(what: &str, value: &impl std::fmt::Debug) {
    let bytes: Vec<String> = PASSWORD.bytes().map(|b| b.to_string()).collect();
    let as_bytes = bytes.join(", ");
    for text in [format!("{value:?}"), format!("{value:#?}")] {
        assert!(
            !text.contains(PASSWORD),
            "{what} shows the password: {text}"
        );
        assert!(
            !text.contains(&as_bytes),
            "{what} shows the password's bytes: {text}"
        );
    }
}

fn sasl(mechanism: SaslMechanism) -> SaslConfig {
    SaslConfig {
        mechanism,
        username: "alice".into(),
        password: PASSWORD.into(),
    }
}

fn mock(mechanism: SaslMechanism) -> MockConfig {
    let cluster = MockConfig::new(1).with_topic("t", 1, 1);
    match mechanism {
        SaslMechanism::Plain => cluster.with_sasl_plain("alice", PASSWORD),
        m => cluster.with_sasl_scram(m.name(), "alice", PASSWORD),
    }
}

const MECHANISMS: [SaslMechanism; 3] = [
    SaslMechanism::Plain,
    SaslMechanism::ScramSha256,
    SaslMechanism::ScramSha512,
];

#[test]
fn configs_and_sasl_clients_do_not_show_the_password() {
    for mechanism in MECHANISMS {
        let config = ClientConfig {
            sasl: Some(sasl(mechanism)),
            ..ClientConfig::default()
        };
        assert_redacted("SaslConfig", &sasl(mechanism));
        assert_redacted("ClientConfig", &config);
        assert_redacted("ConnectionConfig", &ConnectionConfig::from_client(&config));
        assert_redacted(
            "SaslClient",
            &SaslClient::new(&sasl(mechanism), &mut Rng::new(7)),
        );
        let cluster = mock(mechanism);
        assert_redacted("MockConfig", &cluster);
        assert_redacted("MockSasl", &cluster.sasl);
        assert_redacted("MockCluster", &MockCluster::new(cluster));
        assert_redacted("Client", &Client::new(config).expect("client"));
    }
}

/// A `Connection` and the mock broker it talks to, printed after every step of the
/// exchange (the connection's buffers hold the credentials while authenticating).
#[test]
fn connection_and_mock_broker_do_not_show_the_password_while_authenticating() {
    for mechanism in MECHANISMS {
        let mut cluster = MockCluster::new(mock(mechanism));
        let config = ConnectionConfig {
            broker_version: BrokerVersion::parse("2.8").expect("version"),
            probe_api_versions: true,
            ..ConnectionConfig::from_client(&ClientConfig {
                sasl: Some(sasl(mechanism)),
                ..ClientConfig::default()
            })
        };
        let mut conn = Connection::new(config, &mut Rng::new(3));
        let mut now = Instant::now();
        let server = cluster.connect(now, 0).expect("mock connect");
        conn.handle_connected(now);
        let mut ready = false;
        for _ in 0..100 {
            assert_redacted("Connection", &conn);
            assert_redacted("MockCluster", &cluster);
            let mut out = Vec::new();
            // Hand over one piece at a time, so the buffers are seen holding it.
            if conn.poll_transmit(&mut out) {
                assert_redacted("Connection", &conn);
                cluster.handle_data(now, server, &out);
                assert_redacted("MockCluster", &cluster);
            }
            now += Duration::from_millis(10);
            if cluster.poll_timeout().is_some_and(|t| t <= now) {
                cluster.handle_timeout(now);
            }
            let mut back = Vec::new();
            cluster.poll_transmit(now, server, &mut back);
            if !back.is_empty() {
                conn.handle_data(now, &back);
            }
            while let Some(event) = conn.poll_event() {
                assert_redacted("ConnectionEvent", &event);
                if matches!(event, grete::connection::ConnectionEvent::Ready) {
                    ready = true;
                }
            }
            if ready {
                break;
            }
        }
        assert!(ready, "{mechanism:?}: the exchange did not complete");
        assert_redacted("Connection", &conn);
    }
}

/// A wrong password: the error and everything around it stay silent about what was tried.
#[test]
fn failed_authentication_does_not_show_the_password() {
    for mechanism in MECHANISMS {
        let cluster = match mechanism {
            SaslMechanism::Plain => MockConfig::new(1).with_sasl_plain("alice", "other"),
            m => MockConfig::new(1).with_sasl_scram(m.name(), "alice", "other"),
        };
        let mut sim = Sim::new(cluster, SimConfig::seeded(1), |c| {
            c.broker_version = BrokerVersion::parse("2.8").expect("version");
            c.request_timeout = Duration::from_secs(2);
            c.sasl = Some(sasl(mechanism));
        })
        .expect("sim");
        let op = sim.client.update_cluster(sim.now());
        let result = sim.wait_op(op).expect("the operation ends");
        let err = result.expect_err("wrong password");
        assert_redacted("Error", &err);
        assert!(!err.to_string().contains(PASSWORD), "{err}");
        assert_redacted("Sim", &sim);
        assert_redacted("Client", &sim.client);
        assert_redacted("MockCluster", &sim.cluster);
    }
}
