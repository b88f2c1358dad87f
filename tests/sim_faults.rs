//! Deterministic simulation with injected faults: brokers going down mid-request, leader
//! moves, error codes, connections cut mid-response, garbage and oversized frames, and
//! brokers that never answer. Every test runs over several seeds; a failure names its
//! seed. The rule throughout: a typed error or a success, never a panic, never a hang
//! past the configured timeouts.

use std::time::Duration;

use grete::client::{Output, Target};
use grete::config::{BrokerVersion, ClientConfig};
use grete::error::Error;
use grete::mock::sim::{Sim, SimConfig};
use grete::mock::{Fault, FaultAction, Matcher, MockConfig};
use grete::protocol::messages::{ApiKey, MetadataRequest, RequestBody};
use grete::protocol::records::Record;
use grete::protocol::{DecodeError, ErrorCode};

const SEEDS: std::ops::Range<u64> = 0..8;
const TIMEOUT: Duration = Duration::from_secs(5);

fn modern(config: &mut ClientConfig) {
    config.broker_version = BrokerVersion::parse("2.8").unwrap();
    config.request_timeout = TIMEOUT;
}

/// Three brokers, topic `t` with `rf` replicas and 3 records in partition 0; the client
/// has fetched the metadata.
fn sim(seed: u64, rf: i16) -> Sim {
    let cluster = MockConfig::new(3).with_topic("t", 2, rf).with_seed(seed);
    let mut sim = Sim::new(cluster, SimConfig::seeded(seed), modern).unwrap();
    let records: Vec<Record> = (0..3)
        .map(|i| Record {
            offset: i,
            value: Some("v".into()),
            ..Record::default()
        })
        .collect();
    let now = sim.now();
    sim.cluster.append_records(now, "t", 0, &records).unwrap();
    let op = sim.client.update_cluster(sim.now());
    sim.wait_op(op).unwrap().unwrap();
    sim
}

/// The latest offset of partition 0 through the client.
fn latest(sim: &mut Sim) -> Result<i64, Error> {
    let op = sim.client.list_offsets(sim.now(), "t", vec![(0, -1)]);
    match sim.wait_op(op).unwrap() {
        Ok(Output::Offsets(mut o)) => o.remove(0).result,
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err(e),
    }
}

/// Every ListOffsets request, as (broker, connection).
fn list_offsets_seen(sim: &Sim) -> Vec<(i32, u64)> {
    sim.cluster
        .requests()
        .iter()
        .filter(|r| r.api == ApiKey::ListOffsets)
        .map(|r| (r.broker, r.conn.0))
        .collect()
}

#[test]
fn broker_down_mid_request_is_retried_on_a_new_connection() {
    for seed in SEEDS {
        let mut sim = sim(seed, 2);
        let leader = sim.cluster.leader("t", 0).unwrap();
        // The leader is slow: the request is in its hands when it goes down.
        sim.cluster.set_latency(leader, Duration::from_millis(200));
        let op = sim.client.list_offsets(sim.now(), "t", vec![(0, -1)]);
        let first = sim.cluster.requests().len();
        sim.run_until(|s| {
            s.cluster.requests().len() > first
                && s.cluster.requests()[first..]
                    .iter()
                    .any(|r| r.api == ApiKey::ListOffsets)
        })
        .unwrap();
        let now = sim.now();
        sim.cluster.broker_down(now, leader);
        let result = sim.wait_op(op).unwrap();
        let Ok(Output::Offsets(offsets)) = result else {
            panic!("seed {seed}: {result:?}");
        };
        assert_eq!(offsets[0].result, Ok(3), "seed {seed}");
        let seen = list_offsets_seen(&sim);
        assert_eq!(seen.len(), 2, "seed {seed}: {seen:?}");
        assert_eq!(seen[0].0, leader);
        assert_ne!(seen[1].0, leader, "seed {seed}: retried on the new leader");
        assert_ne!(seen[0].1, seen[1].1, "seed {seed}: on a new connection");
        assert!(sim.elapsed() < TIMEOUT, "seed {seed}");
    }
}

#[test]
fn broker_down_with_no_replica_left_fails_by_the_deadline() {
    for seed in SEEDS {
        let mut sim = sim(seed, 1);
        let leader = sim.cluster.leader("t", 0).unwrap();
        sim.cluster.set_latency(leader, Duration::from_millis(200));
        let start = sim.now();
        let op = sim.client.list_offsets(start, "t", vec![(0, -1)]);
        sim.run_for(Duration::from_millis(50)).unwrap();
        let now = sim.now();
        sim.cluster.broker_down(now, leader);
        let result = sim.wait_op(op).unwrap();
        let error = match result {
            Ok(Output::Offsets(mut o)) => o.remove(0).result.unwrap_err(),
            Err(e) => e,
            other => panic!("seed {seed}: {other:?}"),
        };
        // Retried (the leader may come back) until the deadline, which says what failed.
        assert!(
            matches!(&error, Error::Timeout { what } if what.contains("closed by the broker")),
            "seed {seed}: {error:?}"
        );
        let took = sim.now() - start;
        assert!(
            took <= TIMEOUT + Duration::from_millis(50),
            "seed {seed}: {took:?}"
        );
        assert!(!error.to_string().is_empty());
    }
}

#[test]
fn leader_moves_are_followed() {
    for seed in SEEDS {
        let mut sim = sim(seed, 2);
        let old = sim.cluster.leader("t", 0).unwrap();
        let new = (0..3).find(|b| *b != old).unwrap();
        assert!(sim.cluster.move_leader("t", 0, new));
        let metadata_before = sim.cluster.request_count(ApiKey::Metadata);
        assert_eq!(latest(&mut sim), Ok(3), "seed {seed}");
        let seen: Vec<i32> = list_offsets_seen(&sim).iter().map(|s| s.0).collect();
        assert_eq!(
            seen,
            vec![old, new],
            "seed {seed}: NOT_LEADER, refresh, retry"
        );
        assert!(sim.cluster.request_count(ApiKey::Metadata) > metadata_before);
        assert_eq!(
            sim.client.cluster().leader("t", 0),
            Some(new),
            "seed {seed}"
        );
    }
}

#[test]
fn retriable_error_codes_are_retried_and_fatal_ones_reported() {
    for seed in SEEDS {
        let mut sim = sim(seed, 2);
        sim.cluster.fail_next(
            Matcher::api(ApiKey::ListOffsets).partition("t", 0),
            ErrorCode::LeaderNotAvailable,
        );
        assert_eq!(latest(&mut sim), Ok(3), "seed {seed}");
        assert!(sim.cluster.pending_faults().is_empty());

        sim.cluster.fail_next(
            Matcher::api(ApiKey::ListOffsets),
            ErrorCode::TopicAuthorizationFailed,
        );
        let error = latest(&mut sim).unwrap_err();
        assert_eq!(
            error.code(),
            Some(ErrorCode::TopicAuthorizationFailed),
            "seed {seed}: {error:?}"
        );
        assert!(!error.is_retriable());
    }
}

#[test]
fn a_connection_cut_mid_response_is_retried() {
    for seed in SEEDS {
        let mut sim = sim(seed, 2);
        sim.cluster.inject(Fault {
            matcher: Matcher::api(ApiKey::ListOffsets),
            action: FaultAction::CutResponse,
            times: 1,
        });
        assert_eq!(latest(&mut sim), Ok(3), "seed {seed}");
        assert_eq!(list_offsets_seen(&sim).len(), 2, "seed {seed}");
        assert!(sim.stats().server_closes >= 1);
    }
}

#[test]
fn a_connection_cut_every_time_fails_by_the_deadline() {
    for seed in SEEDS {
        let mut sim = sim(seed, 2);
        sim.cluster.inject(Fault {
            matcher: Matcher::api(ApiKey::ListOffsets),
            action: FaultAction::CutResponse,
            times: usize::MAX,
        });
        let start = sim.now();
        let error = latest(&mut sim).unwrap_err();
        assert!(
            sim.now() - start <= TIMEOUT + Duration::from_millis(50),
            "seed {seed}"
        );
        assert!(
            matches!(&error, Error::Timeout { what } if what.contains("closed")),
            "seed {seed}: {error:?}"
        );
        // Retried with backoff, not in a tight loop.
        let tries = list_offsets_seen(&sim).len();
        assert!((2..200).contains(&tries), "seed {seed}: {tries} tries");
    }
}

/// Sends a Metadata request to broker 0 through the escape hatch.
fn metadata_from_broker_0(sim: &mut Sim) -> Result<Output, Error> {
    let body = RequestBody::Metadata(MetadataRequest {
        topics: None,
        ..Default::default()
    });
    let op = sim.client.send(sim.now(), Target::Broker(0), body);
    sim.wait_op(op).unwrap()
}

#[test]
fn garbage_frames_are_typed_errors() {
    for seed in SEEDS {
        let mut sim = sim(seed, 2);
        // A frame too short to hold a correlation id, and one with a stray correlation id.
        type Expected = fn(&Error) -> bool;
        let cases: [(&[u8], Expected); 2] = [
            // Too short to hold a correlation id.
            (b"\0\0\0\x02zz", |e| {
                matches!(e, Error::Protocol(DecodeError::UnexpectedEof { .. }))
            }),
            // A correlation id nobody asked for.
            (b"\0\0\0\x06\x7f\0\0\x01ab", |e| {
                matches!(e, Error::Protocol(DecodeError::Malformed(_)))
            }),
        ];
        for (garbage, expected) in cases {
            let garbage = garbage.to_vec();
            sim.cluster.inject(Fault {
                matcher: Matcher::api(ApiKey::Metadata).broker(0),
                action: FaultAction::Garbage(garbage.clone()),
                times: usize::MAX,
            });
            let start = sim.now();
            let result = metadata_from_broker_0(&mut sim);
            let error = result.expect_err("garbage cannot be a response");
            assert!(expected(&error), "seed {seed}: {error:?}");
            assert!(sim.now() - start <= TIMEOUT + Duration::from_millis(50));
            // Once the broker behaves again, so does the client.
            sim.cluster.clear_faults();
            let result = metadata_from_broker_0(&mut sim);
            assert!(result.is_ok(), "seed {seed}: {result:?}");
        }
    }
}

#[test]
fn an_oversized_frame_is_a_typed_error() {
    for seed in SEEDS {
        let mut sim = sim(seed, 2);
        sim.cluster.inject(Fault {
            matcher: Matcher::api(ApiKey::Metadata).broker(0),
            action: FaultAction::OversizeFrame(u32::MAX / 2),
            times: usize::MAX,
        });
        let start = sim.now();
        let error = metadata_from_broker_0(&mut sim).unwrap_err();
        assert!(
            matches!(error, Error::Protocol(DecodeError::FrameTooLarge { .. })),
            "seed {seed}: {error:?}"
        );
        assert!(sim.now() - start <= TIMEOUT + Duration::from_millis(50));
    }
}

#[test]
fn a_broker_that_never_answers_times_out() {
    for seed in SEEDS {
        let mut sim = sim(seed, 2);
        sim.cluster.inject(Fault {
            matcher: Matcher::api(ApiKey::Metadata).broker(0),
            action: FaultAction::NoResponse,
            times: usize::MAX,
        });
        let start = sim.now();
        let error = metadata_from_broker_0(&mut sim).unwrap_err();
        assert!(
            matches!(error, Error::Timeout { .. }),
            "seed {seed}: {error:?}"
        );
        let took = sim.now() - start;
        assert!(
            took >= TIMEOUT && took <= TIMEOUT + Duration::from_millis(50),
            "seed {seed}: {took:?}"
        );
    }
}

#[test]
fn slow_brokers_within_the_timeout_are_fine() {
    for seed in SEEDS {
        let mut sim = sim(seed, 2);
        for b in 0..3 {
            sim.cluster
                .set_latency(b, Duration::from_millis(500 + 300 * b as u64));
        }
        assert_eq!(latest(&mut sim), Ok(3), "seed {seed}");
        let op = sim.client.update_cluster(sim.now());
        assert!(sim.wait_op(op).unwrap().is_ok(), "seed {seed}");
    }
}

#[test]
fn a_non_kafka_server_is_a_typed_error() {
    for seed in SEEDS {
        let mut sim = sim(seed, 2);
        // What an HTTP server says to bytes it does not understand: "HTTP" read as a
        // frame size is over a gigabyte.
        sim.cluster.inject(Fault {
            matcher: Matcher::any().broker(0),
            action: FaultAction::Garbage(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()),
            times: usize::MAX,
        });
        let start = sim.now();
        let error = metadata_from_broker_0(&mut sim).unwrap_err();
        assert!(
            matches!(error, Error::Protocol(DecodeError::FrameTooLarge { .. })),
            "seed {seed}: {error:?}"
        );
        assert!(sim.now() - start <= TIMEOUT + Duration::from_millis(50));
    }
}

#[test]
fn an_unreachable_broker_times_out_connecting() {
    for seed in SEEDS {
        let mut sim = sim(seed, 2);
        let connect_timeout = Duration::from_secs(1);
        // A new client, configured with a short connect timeout, against a broker whose
        // packets are dropped.
        let mut fresh = Sim::new(
            MockConfig::new(1).with_seed(seed),
            SimConfig::seeded(seed),
            |c| {
                modern(c);
                c.connect_timeout = connect_timeout;
            },
        )
        .unwrap();
        fresh.set_unreachable("broker-0.mock", 9092);
        let start = fresh.now();
        let op = fresh.client.update_cluster(start);
        let error = fresh.wait_op(op).unwrap().unwrap_err();
        assert!(
            matches!(&error, Error::Timeout { what } if what.contains("within connect_timeout")),
            "seed {seed}: {error:?}"
        );
        assert!(fresh.now() - start <= TIMEOUT + Duration::from_millis(50));
        // It gave up on each attempt after the connect timeout and tried again.
        let attempts = fresh.stats().connects;
        assert!(
            attempts >= 2,
            "seed {seed}: {attempts} connect attempts; {error:?}"
        );
        assert!(
            attempts <= TIMEOUT.as_secs(),
            "seed {seed}: {attempts} attempts"
        );
        // Reachable again: the same client recovers.
        fresh.set_reachable("broker-0.mock", 9092);
        let op = fresh.client.update_cluster(fresh.now());
        assert!(fresh.wait_op(op).unwrap().is_ok(), "seed {seed}");
        drop(sim.take_events());
    }
}
