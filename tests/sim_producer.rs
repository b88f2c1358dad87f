//! Deterministic simulation of the producer against the mock cluster: records are
//! produced in rounds while faults hit Produce requests (error codes, closed and cut
//! connections, silent and late answers), leaders move and brokers go down. Invariants
//! checked per seed:
//! - every record gets exactly one outcome;
//! - per partition, acknowledged records are in the log in the order produced;
//! - with idempotence, no record is in the log twice, and none is missing;
//! - a record reported "not written" is not in the log.
//!
//! A failure names its seed; `GRETE_SIM_SEEDS=n` runs more seeds.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use grete::client::{DeliveryReport, Event, ProduceError, ProduceRecord, ProducerId, RecordId};
use grete::config::ClientConfig;
use grete::mock::sim::{Sim, SimConfig};
use grete::mock::{Fault, FaultAction, Matcher, MockConfig};
use grete::producer::{murmur2_partition, Acks, Partitioning, ProducerConfig};
use grete::protocol::messages::ApiKey;
use grete::protocol::ErrorCode;

const TOPIC: &str = "t";

#[path = "common/sim.rs"]
mod sim_support;
use sim_support::{modern, seeds, Dice};

/// A simulation with the topic's metadata fetched (a producer needs it).
fn sim_with(cluster: MockConfig, seed: u64, configure: impl FnOnce(&mut ClientConfig)) -> Sim {
    let mut sim = Sim::new(cluster, SimConfig::seeded(seed), configure).unwrap();
    let now = sim.now();
    let op = sim.client.topic_metadata(now, vec![TOPIC.into()], false);
    sim.wait_op(op).unwrap().unwrap();
    sim
}

/// A one-broker simulation with `partitions` partitions and a producer of `config`.
fn one_broker(seed: u64, partitions: i32, config: ProducerConfig) -> (Sim, ProducerId) {
    let mut sim = sim_with(
        MockConfig::new(1)
            .with_topic(TOPIC, partitions, 1)
            .with_seed(seed),
        seed,
        modern,
    );
    let now = sim.now();
    let id = sim.client.add_producer(now, TOPIC, config).unwrap();
    (sim, id)
}

/// Three brokers, four partitions of three replicas, and a producer of `config`.
fn three_brokers(seed: u64, config: ProducerConfig) -> (Sim, ProducerId) {
    let mut sim = sim_with(
        MockConfig::new(3).with_topic(TOPIC, 4, 3).with_seed(seed),
        seed,
        modern,
    );
    let now = sim.now();
    let id = sim.client.add_producer(now, TOPIC, config).unwrap();
    (sim, id)
}

/// Without idempotence, with `required_acks` 0.
fn acks_zero() -> ProducerConfig {
    ProducerConfig {
        required_acks: Acks::None,
        enable_idempotence: Some(false),
        ..ProducerConfig::default()
    }
}

/// What the test produced and what came back.
#[derive(Default)]
struct Ledger {
    /// Record id -> value.
    produced: BTreeMap<RecordId, String>,
    reports: BTreeMap<RecordId, Result<i64, (ErrorCode, bool)>>,
}

impl Ledger {
    fn produce(&mut self, sim: &mut Sim, id: ProducerId, key: Option<&[u8]>, value: String) {
        let now = sim.now();
        let record: ProduceRecord<'_> = ProduceRecord {
            key,
            value: Some(value.as_bytes()),
            headers: &[],
            timestamp: 1_700_000_000_000,
            partition: None,
        };
        let (rid, wake) = sim.client.produce(now, id, &record).unwrap();
        assert!(
            self.produced.insert(rid, value).is_none(),
            "record id {rid:?} given twice"
        );
        if wake {
            sim.client.handle_timeout(now);
        }
    }

    fn take_reports(&mut self, sim: &mut Sim) {
        for e in sim.take_events() {
            if let Event::Delivery(r) = e {
                self.note(&r);
            }
        }
    }

    fn note(&mut self, r: &DeliveryReport) {
        assert!(r.count > 0, "empty report {r:?}");
        for i in 0..u64::from(r.count) {
            let rid = RecordId {
                partition: r.partition,
                sequence: r.first + i,
            };
            assert!(
                self.produced.contains_key(&rid),
                "report for unknown {rid:?}"
            );
            let outcome = match &r.result {
                Ok(base) => Ok(if *base >= 0 { base + i as i64 } else { -1 }),
                Err(e) => Err((
                    e.error.code().unwrap_or(ErrorCode::Unknown(-1)),
                    e.possibly_persisted,
                )),
            };
            assert!(
                self.reports.insert(rid, outcome).is_none(),
                "{rid:?} reported twice"
            );
        }
    }

    fn all_reported(&self) -> bool {
        self.reports.len() == self.produced.len()
    }

    /// Checks the log of every partition against the reports.
    fn check_log(&self, sim: &Sim, partitions: i32, idempotent: bool, seed: u64) {
        for p in 0..partitions {
            let log: Vec<(i64, String)> = sim
                .cluster
                .records(TOPIC, p)
                .into_iter()
                .map(|r| {
                    let v = r.value.unwrap_or_default();
                    (r.offset, String::from_utf8_lossy(&v).into_owned())
                })
                .collect();
            let mut seen = BTreeSet::new();
            for (_, v) in &log {
                if idempotent {
                    assert!(seen.insert(v.clone()), "seed {seed}: {v} written twice");
                }
            }
            // Acknowledged records: at their offset, in produce order.
            let mut last = -1;
            for (rid, outcome) in self.reports.range(
                RecordId {
                    partition: p,
                    sequence: 0,
                }..RecordId {
                    partition: p,
                    sequence: u64::MAX,
                },
            ) {
                let value = &self.produced[rid];
                match outcome {
                    Ok(offset) => {
                        let at = log.iter().find(|(o, _)| o == offset);
                        assert_eq!(
                            at.map(|(_, v)| v),
                            Some(value),
                            "seed {seed}: {rid:?} acknowledged at {offset}"
                        );
                        assert!(*offset > last, "seed {seed}: {rid:?} out of order");
                        last = *offset;
                    }
                    Err((code, false)) => assert!(
                        !log.iter().any(|(_, v)| v == value),
                        "seed {seed}: {rid:?} reported not written ({code:?}) but is in the log"
                    ),
                    Err((_, true)) => {}
                }
            }
            if idempotent {
                // Nothing written that was not produced, and everything acknowledged.
                let acked = self
                    .reports
                    .iter()
                    .filter(|(rid, o)| rid.partition == p && o.is_ok())
                    .count();
                assert_eq!(log.len(), acked, "seed {seed}: partition {p}'s log");
            }
        }
    }
}

/// Produces `rounds` rounds of `per_round` records, letting `step` of virtual time pass
/// between rounds and calling `chaos` before each, then waits for every report.
#[allow(clippy::too_many_arguments)]
fn run(
    sim: &mut Sim,
    id: ProducerId,
    ledger: &mut Ledger,
    rounds: usize,
    per_round: usize,
    step: Duration,
    keyed: bool,
    mut chaos: impl FnMut(&mut Sim, usize),
) {
    let mut n = 0usize;
    for round in 0..rounds {
        chaos(sim, round);
        for _ in 0..per_round {
            let key = format!("key-{}", n % 97);
            let value = format!("v{n}");
            ledger.produce(sim, id, keyed.then_some(key.as_bytes()), value);
            n += 1;
        }
        sim.run_for(step).unwrap();
        ledger.take_reports(sim);
    }
    let now = sim.now();
    sim.client.flush(now, id);
    sim.client.handle_timeout(now);
    let limit = sim.now() + Duration::from_secs(600);
    while !ledger.all_reported() && sim.now() < limit {
        sim.run_for(Duration::from_millis(500)).unwrap();
        ledger.take_reports(sim);
    }
    assert!(
        ledger.all_reported(),
        "{} of {} records reported",
        ledger.reports.len(),
        ledger.produced.len()
    );
    assert_eq!(sim.client.producer(id).unwrap().queued_records(), 0);
}

#[test]
fn idempotent_producer_writes_every_record_once_in_order() {
    for seed in 0..3 {
        let mut sim = sim_with(
            MockConfig::new(3).with_topic(TOPIC, 4, 3).with_seed(seed),
            seed,
            modern,
        );
        let now = sim.now();
        let id = sim
            .client
            .add_producer(now, TOPIC, ProducerConfig::default())
            .unwrap();
        assert!(sim.client.producer(id).unwrap().is_idempotent());
        let mut ledger = Ledger::default();
        run(
            &mut sim,
            id,
            &mut ledger,
            20,
            100,
            Duration::from_millis(3),
            true,
            |_, _| {},
        );
        assert!(ledger.reports.values().all(Result::is_ok));
        ledger.check_log(&sim, 4, true, seed);
        // Keyed records land where the Java client's murmur2 puts them.
        for (rid, value) in &ledger.produced {
            let n: usize = value[1..].parse().unwrap();
            let key = format!("key-{}", n % 97);
            assert_eq!(
                murmur2_partition(key.as_bytes(), 4) as i32,
                rid.partition,
                "{value}"
            );
        }
        let (pid, _) = sim
            .client
            .producer(id)
            .unwrap()
            .producer_id_and_epoch()
            .unwrap();
        assert!(sim.cluster.producer_state(TOPIC, 0, pid).is_some());
    }
}

#[test]
fn kafka_09_gets_message_sets_without_idempotence() {
    let seed = 7;
    let mut sim = sim_with(
        MockConfig::new(1)
            .with_topic(TOPIC, 2, 1)
            .kafka_09()
            .with_seed(seed),
        seed,
        |c| c.request_timeout = Duration::from_secs(5),
    );
    let now = sim.now();
    let id = sim
        .client
        .add_producer(now, TOPIC, ProducerConfig::pykafka())
        .unwrap();
    let producer = sim.client.producer(id).unwrap();
    assert!(!producer.is_idempotent());
    assert_eq!(
        producer.format(),
        grete::producer::RecordFormat::MessageSetV0
    );
    let mut ledger = Ledger::default();
    run(
        &mut sim,
        id,
        &mut ledger,
        5,
        50,
        Duration::from_secs(1),
        false,
        |_, _| {},
    );
    assert!(ledger.reports.values().all(Result::is_ok));
    ledger.check_log(&sim, 2, true, seed);
    // PyKafka's round-robin starts at the second partition and alternates.
    let first = ledger.produced.iter().find(|(_, v)| *v == "v0").unwrap().0;
    assert_eq!(first.partition, 1);
    let counts: Vec<usize> = (0..2)
        .map(|p| ledger.produced.keys().filter(|r| r.partition == p).count())
        .collect();
    assert_eq!(counts, vec![125, 125]);
}

fn produce_fault(dice: &mut Dice) -> Fault {
    let action = match dice.below(7) {
        0 => FaultAction::Error(ErrorCode::NotLeaderOrFollower),
        1 => FaultAction::Error(ErrorCode::NotEnoughReplicas),
        2 => FaultAction::Error(ErrorCode::RequestTimedOut),
        3 => FaultAction::Close,
        4 => FaultAction::CutResponse,
        5 => FaultAction::NoResponse,
        _ => FaultAction::Delay(Duration::from_millis(dice.below(2000))),
    };
    let mut matcher = Matcher::api(ApiKey::Produce);
    if dice.below(2) == 0 {
        matcher = matcher.broker(dice.below(3) as i32);
    }
    Fault {
        matcher,
        action,
        times: 1 + dice.below(3) as usize,
    }
}

fn chaos(dice: &mut Dice) -> impl FnMut(&mut Sim, usize) + '_ {
    move |sim: &mut Sim, round: usize| {
        let now = sim.now();
        if round % 40 == 39 {
            // Quiet at the end of each stretch: every broker back.
            sim.cluster.clear_faults();
            for b in 0..3 {
                sim.cluster.broker_up(b);
            }
            return;
        }
        match dice.below(10) {
            0..=3 => sim.cluster.inject(produce_fault(dice)),
            4 => {
                let p = dice.below(4) as i32;
                let leader = dice.below(3) as i32;
                sim.cluster.move_leader(TOPIC, p, leader);
            }
            5 if round % 40 < 30 => {
                let b = dice.below(3) as i32;
                sim.cluster.broker_down(now, b);
            }
            6 => {
                for b in 0..3 {
                    sim.cluster.broker_up(b);
                }
            }
            _ => {}
        }
    }
}

#[test]
fn idempotent_producer_under_faults_loses_and_duplicates_nothing() {
    for seed in seeds() {
        let config = ProducerConfig {
            linger: Duration::from_millis(5),
            batch_max_records: 50,
            delivery_timeout: Duration::from_secs(300),
            ..ProducerConfig::default()
        };
        let (mut sim, id) = three_brokers(seed, config);
        let mut ledger = Ledger::default();
        let mut dice = Dice(seed ^ 0x9e37_79b9);
        run(
            &mut sim,
            id,
            &mut ledger,
            120,
            40,
            Duration::from_millis(50),
            seed % 2 == 0,
            chaos(&mut dice),
        );
        let failed: Vec<_> = ledger.reports.iter().filter(|(_, o)| o.is_err()).collect();
        assert!(
            failed.is_empty(),
            "seed {seed}: {} failed: {:?}",
            failed.len(),
            failed.first()
        );
        ledger.check_log(&sim, 4, true, seed);
    }
}

#[test]
fn plain_producer_under_faults_keeps_order_and_reports_every_record() {
    for seed in seeds() {
        let config = ProducerConfig {
            linger: Duration::from_millis(5),
            batch_max_records: 50,
            enable_idempotence: Some(false),
            required_acks: Acks::Leader,
            max_retries: 1000,
            delivery_timeout: Duration::from_secs(300),
            partitioner: Partitioning::RoundRobin,
            ..ProducerConfig::default()
        };
        let (mut sim, id) = three_brokers(seed, config);
        let mut ledger = Ledger::default();
        let mut dice = Dice(seed ^ 0x51ed_2701);
        run(
            &mut sim,
            id,
            &mut ledger,
            120,
            40,
            Duration::from_millis(50),
            false,
            chaos(&mut dice),
        );
        ledger.check_log(&sim, 4, false, seed);
    }
}

#[test]
fn records_fail_by_delivery_timeout_when_every_broker_is_down() {
    let config = ProducerConfig {
        delivery_timeout: Duration::from_secs(10),
        ..ProducerConfig::default()
    };
    let (mut sim, id) = one_broker(3, 1, config);
    // Let it get its producer id first.
    sim.run_for(Duration::from_secs(1)).unwrap();
    sim.cluster.broker_down(sim.now(), 0);
    let mut ledger = Ledger::default();
    for i in 0..10 {
        ledger.produce(&mut sim, id, None, format!("v{i}"));
    }
    sim.run_for(Duration::from_secs(11)).unwrap();
    ledger.take_reports(&mut sim);
    assert!(ledger.all_reported());
    for outcome in ledger.reports.values() {
        // Never sent: certainly not written.
        assert_eq!(outcome, &Err((ErrorCode::Unknown(-1), false)));
    }
}

#[test]
fn acks_zero_reports_without_offsets() {
    let (mut sim, id) = one_broker(5, 2, acks_zero());
    let mut ledger = Ledger::default();
    run(
        &mut sim,
        id,
        &mut ledger,
        3,
        30,
        Duration::from_millis(20),
        false,
        |_, _| {},
    );
    assert!(ledger.reports.values().all(|o| o == &Ok(-1)));
    let written: usize = (0..2).map(|p| sim.cluster.records(TOPIC, p).len()).sum();
    assert_eq!(written, 90);
}

#[test]
fn produce_refuses_what_cannot_be_queued() {
    let config = ProducerConfig {
        max_queued_messages: 3,
        max_request_size: 4096,
        batch_max_bytes: 4096,
        ..ProducerConfig::default()
    };
    let (mut sim, id) = one_broker(1, 2, config);
    let now = sim.now();
    let big = vec![0u8; 5000];
    let too_large = sim
        .client
        .produce(now, id, &ProduceRecord::value(&big, 0))
        .unwrap_err();
    assert_eq!(
        too_large,
        ProduceError::RecordTooLarge {
            size: 5040,
            max: 4096
        }
    );
    let record = ProduceRecord {
        partition: Some(9),
        ..ProduceRecord::value(b"x", 0)
    };
    assert_eq!(
        sim.client.produce(now, id, &record).unwrap_err(),
        ProduceError::UnknownPartition {
            topic: TOPIC.into(),
            partition: 9
        }
    );
    for _ in 0..3 {
        sim.client
            .produce(now, id, &ProduceRecord::value(b"x", 0))
            .unwrap();
    }
    let full = sim
        .client
        .produce(now, id, &ProduceRecord::value(b"x", 0))
        .unwrap_err();
    assert!(
        matches!(full, ProduceError::QueueFull { records: 3, .. }),
        "{full:?}"
    );
}

#[test]
fn acks_zero_batches_are_reported_once_written() {
    // Nothing comes back from the broker to drive the client: the reports must come
    // out of the same drain that wrote the batch.
    let (mut sim, id) = one_broker(6, 1, acks_zero());
    let now = sim.now();
    let mut ledger = Ledger::default();
    for i in 0..5 {
        ledger.produce(&mut sim, id, None, format!("v{i}"));
    }
    sim.client.flush(now, id);
    sim.client.handle_timeout(now);
    sim.run_for(Duration::from_millis(100)).unwrap();
    ledger.take_reports(&mut sim);
    assert!(
        ledger.all_reported(),
        "{} of 5 reported",
        ledger.reports.len()
    );
}

#[test]
fn poll_timeout_follows_a_batch_opened_between_drives() {
    // poll_timeout reads the timer table; a record that opens a batch must bring it forward
    // to the batch's linger, or the batch would wait for an unrelated timer.
    let config = ProducerConfig {
        linger: Duration::from_millis(5),
        enable_idempotence: Some(false),
        ..ProducerConfig::default()
    };
    let (mut sim, id) = one_broker(8, 1, config);
    sim.run_for(Duration::from_secs(1)).unwrap();
    let now = sim.now();
    assert!(sim
        .client
        .poll_timeout()
        .is_none_or(|t| t > now + Duration::from_millis(5)));
    let (_, wake) = sim
        .client
        .produce(now, id, &ProduceRecord::value(b"x", 0))
        .unwrap();
    assert!(wake, "a batch opened");
    assert_eq!(
        sim.client.poll_timeout(),
        Some(now + Duration::from_millis(5)),
        "the linger of the batch just opened"
    );
}
