//! Deterministic simulation of the consumer against the mock cluster: records are
//! appended while leaders move, brokers restart, connections are cut mid-response and
//! fetches fail; the application seeks, pauses and resumes, or stops reading. Checked per
//! seed:
//! - per partition, the delivered offsets are exactly the expected sequence: every record
//!   once, in order, none from before a seek;
//! - the buffered bytes never exceed `queued_max_bytes` (records smaller than the
//!   per-partition limit), whether the application reads or not.
//!
//! A failure names its seed; `GRETE_SIM_SEEDS=n` runs more seeds.

use std::collections::BTreeMap;
use std::time::Duration;

use grete::client::Event;
use grete::consumer::{
    ConsumerConfig, ConsumerEvent, ConsumerId, OffsetReset, OffsetSpec, OutOfRangeSide,
};
use grete::mock::sim::{Sim, SimConfig};
use grete::mock::{Fault, FaultAction, Matcher, MockConfig};
use grete::protocol::messages::ApiKey;
use grete::protocol::records::Record;
use grete::protocol::ErrorCode;

const TOPIC: &str = "t";

#[path = "common/sim.rs"]
mod sim_support;
use sim_support::{modern, seeds, Dice};

fn sim_of(cluster: MockConfig, seed: u64) -> Sim {
    let mut sim = Sim::new(cluster, SimConfig::seeded(seed), modern).unwrap();
    let op = sim.client.update_cluster(sim.now());
    sim.wait_op(op).unwrap().unwrap();
    sim
}

/// `count` records of `size`-byte values in one batch at the end of `partition`.
fn append(sim: &mut Sim, partition: i32, count: usize, size: usize) {
    let now = sim.now();
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            offset: i as i64,
            timestamp: 1_700_000_000_000,
            value: Some(vec![b'v'; size].into()),
            ..Record::default()
        })
        .collect();
    sim.cluster
        .append_records(now, TOPIC, partition, &records)
        .unwrap();
}

fn config(budget: usize) -> ConsumerConfig {
    ConsumerConfig {
        queued_max_bytes: budget,
        fetch_message_max_bytes: 2048,
        fetch_max_bytes: 4096,
        fetch_wait_max_ms: 50,
        ..ConsumerConfig::default()
    }
}

/// The application: takes batches, checks each record's offset against the partition's
/// expected next offset, and the budget.
struct Reader {
    id: ConsumerId,
    budget: usize,
    /// Per partition, the next offset expected.
    expect: BTreeMap<i32, i64>,
    /// Per partition, what was delivered since the last seek (from `start`).
    delivered: BTreeMap<i32, Vec<i64>>,
    start: BTreeMap<i32, i64>,
    paused: std::collections::BTreeSet<i32>,
    events: Vec<ConsumerEvent>,
    peak: usize,
}

impl Reader {
    fn new(id: ConsumerId, budget: usize) -> Self {
        Reader {
            id,
            budget,
            expect: BTreeMap::new(),
            delivered: BTreeMap::new(),
            start: BTreeMap::new(),
            paused: std::collections::BTreeSet::new(),
            events: Vec::new(),
            peak: 0,
        }
    }

    fn check_budget(&mut self, sim: &Sim) {
        let c = sim.client.consumer(self.id).unwrap();
        self.peak = self.peak.max(c.buffered_bytes());
        assert!(
            c.buffered_bytes() <= self.budget,
            "seed {}: {} bytes buffered, budget {}",
            sim.config().seed,
            c.buffered_bytes(),
            self.budget
        );
    }

    /// Takes every batch there is.
    fn read(&mut self, sim: &mut Sim) {
        self.check_budget(sim);
        let seed = sim.config().seed;
        while let Some(b) = sim.client.poll_batch(sim.now(), self.id) {
            let p = b.partition();
            assert!(
                !self.paused.contains(&p),
                "seed {seed}: partition {p} is paused"
            );
            let expect = self.expect.entry(p).or_insert(b.first_offset());
            for r in b.records() {
                let r = r.unwrap();
                assert_eq!(
                    r.offset, *expect,
                    "seed {seed}: partition {p} out of sequence"
                );
                *expect += 1;
                self.delivered.entry(p).or_default().push(r.offset);
            }
        }
        for e in sim.take_events() {
            if let Event::Consumer(e) = e {
                self.events.push(e);
            }
        }
    }

    fn done(&self, ends: &BTreeMap<i32, i64>) -> bool {
        ends.iter()
            .all(|(p, end)| self.expect.get(p).copied().unwrap_or(0) >= *end)
    }

    fn seek(&mut self, sim: &mut Sim, partition: i32, offset: i64) {
        let now = sim.now();
        sim.client
            .seek(now, self.id, TOPIC, partition, OffsetSpec::Offset(offset))
            .unwrap();
        self.expect.insert(partition, offset);
        self.start.insert(partition, offset);
        self.delivered.remove(&partition);
    }

    fn pause(&mut self, sim: &mut Sim, partition: i32) {
        let now = sim.now();
        sim.client.pause(now, self.id, TOPIC, partition).unwrap();
        self.paused.insert(partition);
    }

    fn resume_all(&mut self, sim: &mut Sim) {
        let now = sim.now();
        for p in std::mem::take(&mut self.paused) {
            sim.client.resume(now, self.id, TOPIC, p).unwrap();
        }
    }
}

fn ends(sim: &Sim, partitions: i32) -> BTreeMap<i32, i64> {
    (0..partitions)
        .map(|p| (p, sim.cluster.offsets(TOPIC, p).unwrap().1))
        .collect()
}

/// Consumes everything of `partitions` partitions from offset 0 with faults between
/// reads: leader moves, brokers down and up, connections dropped, fetch answers cut
/// mid-response, leader errors and late answers.
#[test]
fn chaos_delivers_every_record_once_in_order() {
    for seed in seeds() {
        chaos(seed, None, true);
    }
}

/// The same with full fetches only (no fetch sessions).
#[test]
fn chaos_without_fetch_sessions() {
    for seed in seeds() {
        chaos(seed, None, false);
    }
}

/// The same over Fetch v1 (Kafka 0.9's): the broker cuts each partition's records at its
/// byte limit, so answers end in a partial batch.
#[test]
fn chaos_with_partial_batches_at_the_end_of_answers() {
    for seed in seeds() {
        chaos(seed, Some(1), true);
    }
}

fn chaos(seed: u64, max_fetch: Option<i16>, fetch_sessions: bool) {
    {
        let mut cluster = MockConfig::new(3).with_topic(TOPIC, 4, 3).with_seed(seed);
        if let Some(v) = max_fetch {
            for b in &mut cluster.brokers {
                b.api_versions.push((ApiKey::Fetch, 0, v));
            }
        }
        let mut sim = sim_of(cluster, seed);
        let mut dice = Dice(seed ^ 0xc0ffee);
        for p in 0..4 {
            append(&mut sim, p, 5, 40);
        }
        let budget = 8192;
        let now = sim.now();
        let consumer = ConsumerConfig {
            fetch_sessions,
            ..config(budget)
        };
        let id = sim.client.add_consumer(now, consumer).unwrap();
        for p in 0..4 {
            sim.client
                .assign(now, id, TOPIC, p, OffsetSpec::Offset(0))
                .unwrap();
        }
        let mut reader = Reader::new(id, budget);
        for round in 0..30 {
            // More records, and a fault.
            // Up to 20 records of up to 110 bytes: some batches are larger than the
            // 2,048-byte per-partition limit (raised limits, KIP-74 whole batches).
            let p = dice.below(4) as i32;
            append(
                &mut sim,
                p,
                1 + dice.below(20) as usize,
                10 + dice.below(100) as usize,
            );
            let now = sim.now();
            match dice.below(8) {
                0 => {
                    let q = dice.below(4) as i32;
                    let to = dice.below(3) as i32;
                    sim.cluster.move_leader(TOPIC, q, to);
                }
                1 => {
                    let b = dice.below(3) as i32;
                    sim.cluster.broker_down(now, b);
                    sim.run_for(Duration::from_millis(dice.below(300))).unwrap();
                    reader.read(&mut sim);
                    sim.cluster.broker_up(b);
                }
                2 => sim.cluster.drop_connections(now, dice.below(3) as i32),
                3 => sim.cluster.inject(Fault {
                    matcher: Matcher::api(ApiKey::Fetch),
                    action: FaultAction::CutResponse,
                    times: 1 + dice.below(2) as usize,
                }),
                4 => sim.cluster.inject(Fault {
                    matcher: Matcher::api(ApiKey::Fetch),
                    action: FaultAction::Error(ErrorCode::NotLeaderOrFollower),
                    times: 1,
                }),
                5 => sim.cluster.inject(Fault {
                    matcher: Matcher::api(ApiKey::Fetch),
                    action: FaultAction::Delay(Duration::from_millis(dice.below(500))),
                    times: 1,
                }),
                6 => {
                    // A seek anywhere up to the end, maybe while a fetch is in flight.
                    let q = dice.below(4) as i32;
                    let end = sim.cluster.offsets(TOPIC, q).unwrap().1;
                    let to = dice.below(end as u64 + 1) as i64;
                    reader.seek(&mut sim, q, to);
                }
                _ => reader.pause(&mut sim, dice.below(4) as i32),
            }
            // Read for a while, or not at all (the budget must hold either way).
            let reading = dice.below(3) != 0;
            let span = Duration::from_millis(20 + dice.below(200));
            let until = sim.now() + span;
            sim.run_until(|sim| {
                if reading {
                    reader.read(sim);
                } else {
                    reader.check_budget(sim);
                }
                sim.now() >= until
            })
            .unwrap_or_else(|e| panic!("seed {seed} round {round}: {e}"));
            reader.resume_all(&mut sim);
        }
        sim.cluster.clear_faults();
        for b in 0..3 {
            sim.cluster.broker_up(b);
        }
        let want = ends(&sim, 4);
        sim.run_until(|sim| {
            reader.read(sim);
            reader.done(&want)
        })
        .unwrap_or_else(|e| {
            panic!(
                "seed {seed}: {e}; delivered up to {:?}, want {want:?}",
                reader.expect
            )
        });
        for (p, end) in &want {
            let got = reader.delivered.get(p).cloned().unwrap_or_default();
            let start = reader.start.get(p).copied().unwrap_or(0);
            assert_eq!(
                got,
                (start..*end).collect::<Vec<_>>(),
                "seed {seed} partition {p}"
            );
        }
        assert!(reader.peak > 0, "seed {seed}: nothing was ever buffered");
        if max_fetch.is_none() {
            assert_eq!(
                sim.cluster.fetch_session_count() > 0,
                fetch_sessions,
                "seed {seed}: fetch sessions"
            );
        }
        assert!(
            reader.events.is_empty(),
            "seed {seed}: unexpected events {:?}",
            reader.events
        );
    }
}

/// One broker, one topic of `partitions` partitions, Fetch capped at `max_fetch` if given.
fn one_broker(seed: u64, partitions: i32, max_fetch: Option<i16>) -> Sim {
    let mut cluster = MockConfig::new(1)
        .with_topic(TOPIC, partitions, 1)
        .with_seed(seed);
    if let Some(v) = max_fetch {
        cluster.brokers[0].api_versions.push((ApiKey::Fetch, 0, v));
    }
    sim_of(cluster, seed)
}

fn consumer_at(sim: &mut Sim, config: ConsumerConfig, starts: &[(i32, OffsetSpec)]) -> ConsumerId {
    let now = sim.now();
    let id = sim.client.add_consumer(now, config).unwrap();
    for (p, start) in starts {
        sim.client.assign(now, id, TOPIC, *p, *start).unwrap();
    }
    id
}

fn read_to_end(sim: &mut Sim, reader: &mut Reader, partitions: i32) {
    let want = ends(sim, partitions);
    let seed = sim.config().seed;
    sim.run_until(|sim| {
        reader.read(sim);
        reader.done(&want)
    })
    .unwrap_or_else(|e| panic!("seed {seed}: {e}; at {:?}, want {want:?}", reader.expect));
}

/// Regression: a seek while a fetch is in flight must drop what that fetch brings back
/// (the answer is from the old position).
#[test]
fn seek_while_fetch_in_flight_drops_its_answer() {
    for seed in seeds() {
        // Backwards and forwards: the late answer holds records the new position must
        // not see (or, forwards, the same ones: they must not come twice).
        for (from, to) in [(40, 10), (0, 30)] {
            let mut sim = one_broker(seed, 1, None);
            for _ in 0..5 {
                append(&mut sim, 0, 10, 20);
            }
            sim.cluster.inject(Fault {
                matcher: Matcher::api(ApiKey::Fetch),
                action: FaultAction::Delay(Duration::from_millis(300)),
                times: 1,
            });
            let id = consumer_at(&mut sim, config(1 << 20), &[(0, OffsetSpec::Offset(from))]);
            let mut reader = Reader::new(id, 1 << 20);
            sim.run_for(Duration::from_millis(100)).unwrap();
            assert_eq!(sim.cluster.request_count(ApiKey::Fetch), 1, "seed {seed}");
            reader.seek(&mut sim, 0, to);
            read_to_end(&mut sim, &mut reader, 1);
            let want: Vec<i64> = (to..50).collect();
            assert_eq!(reader.delivered[&0], want, "seed {seed}");
        }
    }
}

/// A seek drops the batches already buffered for the partition.
#[test]
fn seek_drops_buffered_batches_and_positions_commit() {
    for seed in seeds() {
        let mut sim = one_broker(seed, 1, None);
        for _ in 0..5 {
            append(&mut sim, 0, 10, 20);
        }
        let id = consumer_at(&mut sim, config(1 << 20), &[(0, OffsetSpec::Offset(0))]);
        let mut reader = Reader::new(id, 1 << 20);
        sim.run_until(|sim| sim.client.consumer(id).unwrap().buffered_messages() >= 50)
            .unwrap();
        reader.seek(&mut sim, 0, 25);
        assert_eq!(sim.client.consumer(id).unwrap().buffered_bytes(), 0);
        read_to_end(&mut sim, &mut reader, 1);
        assert_eq!(
            reader.delivered[&0],
            (25..50).collect::<Vec<_>>(),
            "seed {seed}"
        );
        let view = sim
            .client
            .consumer(id)
            .unwrap()
            .partition(TOPIC, 0)
            .unwrap();
        assert_eq!((view.position, view.lag()), (50, Some(0)));
        let ops = sim.client.commit_positions(sim.now(), id, "g");
        assert_eq!(ops.len(), 1);
        assert_eq!(offsets_of(sim.wait_op(ops[0]).unwrap()), vec![(0, 50)]);
        assert_eq!(sim.cluster.committed_offset("g", TOPIC, 0), Some(50));
    }
}

/// Paused partitions are neither fetched nor handed out; resumed, they continue where
/// they were.
#[test]
fn pause_and_resume() {
    for seed in seeds() {
        let mut sim = one_broker(seed, 2, None);
        append(&mut sim, 0, 10, 20);
        append(&mut sim, 1, 10, 20);
        let starts = [(0, OffsetSpec::Offset(0)), (1, OffsetSpec::Offset(0))];
        let id = consumer_at(&mut sim, config(1 << 20), &starts);
        let mut reader = Reader::new(id, 1 << 20);
        read_to_end(&mut sim, &mut reader, 2);
        let now = sim.now();
        sim.client.pause(now, id, TOPIC, 0).unwrap();
        append(&mut sim, 0, 10, 20);
        append(&mut sim, 1, 10, 20);
        let until = sim.now() + Duration::from_secs(2);
        sim.run_until(|sim| {
            reader.read(sim);
            sim.now() >= until
        })
        .unwrap();
        assert_eq!(
            reader.delivered[&0].len(),
            10,
            "seed {seed}: a paused partition delivered"
        );
        assert_eq!(reader.delivered[&1].len(), 20, "seed {seed}");
        let view = sim
            .client
            .consumer(id)
            .unwrap()
            .partition(TOPIC, 0)
            .unwrap();
        assert!(view.paused);
        assert_eq!(view.lag(), Some(10));
        let now = sim.now();
        sim.client.resume(now, id, TOPIC, 0).unwrap();
        read_to_end(&mut sim, &mut reader, 2);
        assert_eq!(
            reader.delivered[&0],
            (0..20).collect::<Vec<_>>(),
            "seed {seed}"
        );
    }
}

/// When the application stops reading, fetching stops at the budget (no request loop)
/// and resumes when it reads again.
#[test]
fn budget_holds_when_the_application_stops_reading() {
    for seed in seeds() {
        budget_holds(seed, one_broker(seed, 4, None));
        // Fetches to several brokers in flight at once share the budget.
        let three = MockConfig::new(3).with_topic(TOPIC, 4, 3).with_seed(seed);
        budget_holds(seed, sim_of(three, seed));
    }
}

fn budget_holds(seed: u64, mut sim: Sim) {
    {
        for p in 0..4 {
            for _ in 0..20 {
                append(&mut sim, p, 10, 50);
            }
        }
        let budget = 6000;
        let starts: Vec<(i32, OffsetSpec)> = (0..4).map(|p| (p, OffsetSpec::Earliest)).collect();
        let id = consumer_at(&mut sim, config(budget), &starts);
        let mut reader = Reader::new(id, budget);
        let until = sim.now() + Duration::from_secs(1);
        sim.run_until(|sim| {
            reader.check_budget(sim);
            sim.now() >= until
        })
        .unwrap();
        let fetches = sim.cluster.request_count(ApiKey::Fetch);
        let until = sim.now() + Duration::from_secs(5);
        sim.run_until(|sim| {
            reader.check_budget(sim);
            sim.now() >= until
        })
        .unwrap();
        assert_eq!(
            sim.cluster.request_count(ApiKey::Fetch),
            fetches,
            "seed {seed}: fetched while at the budget"
        );
        assert!(
            reader.peak + 2048 > budget,
            "seed {seed}: the budget was not used ({})",
            reader.peak
        );
        read_to_end(&mut sim, &mut reader, 4);
        for p in 0..4 {
            assert_eq!(
                reader.delivered[&p],
                (0..200).collect::<Vec<_>>(),
                "seed {seed}"
            );
        }
    }
}

/// A batch larger than `fetch_message_max_bytes` is delivered (the limit is raised for one
/// fetch) on a broker that cuts it (Fetch v1, as Kafka 0.9) and on one that sends the
/// first batch whole (KIP-74, v3+).
#[test]
fn a_record_larger_than_the_fetch_size_does_not_stall() {
    for seed in seeds() {
        for max_fetch in [Some(1), None] {
            let mut sim = one_broker(seed, 2, max_fetch);
            for p in 0..2 {
                append(&mut sim, p, 3, 20);
                append(&mut sim, p, 1, 5000);
                append(&mut sim, p, 3, 20);
            }
            let mut c = config(4096);
            c.fetch_message_max_bytes = 1024;
            let starts = [(0, OffsetSpec::Offset(0)), (1, OffsetSpec::Offset(0))];
            let id = consumer_at(&mut sim, c, &starts);
            let mut reader = Reader::new(id, usize::MAX);
            read_to_end(&mut sim, &mut reader, 2);
            for p in 0..2 {
                assert_eq!(
                    reader.delivered[&p],
                    (0..7).collect::<Vec<_>>(),
                    "seed {seed} {max_fetch:?}"
                );
            }
            assert!(reader.events.is_empty(), "{:?}", reader.events);
        }
    }
}

fn out_of_range_events(reader: &Reader) -> Vec<(i64, OutOfRangeSide, OffsetReset)> {
    reader
        .events
        .iter()
        .filter_map(|e| match e {
            ConsumerEvent::OffsetOutOfRange {
                position,
                side,
                reset,
                ..
            } => Some((*position, *side, *reset)),
            _ => None,
        })
        .collect()
}

/// OffsetOutOfRange before the log start: classified from the answer's log start offset
/// (Fetch v5+) or by a lookup (older), reported, then reset to the earliest offset.
#[test]
fn out_of_range_before_start_resets_to_earliest() {
    for seed in seeds() {
        for max_fetch in [None, Some(4)] {
            let mut sim = one_broker(seed, 1, max_fetch);
            for _ in 0..3 {
                append(&mut sim, 0, 10, 20);
            }
            sim.cluster.truncate_before(TOPIC, 0, 20);
            let id = consumer_at(&mut sim, config(1 << 20), &[(0, OffsetSpec::Offset(5))]);
            let mut reader = Reader::new(id, 1 << 20);
            reader.expect.insert(0, 20);
            read_to_end(&mut sim, &mut reader, 1);
            assert_eq!(
                reader.delivered[&0],
                (20..30).collect::<Vec<_>>(),
                "seed {seed}"
            );
            assert_eq!(
                out_of_range_events(&reader),
                vec![(5, OutOfRangeSide::BeforeStart, OffsetReset::Earliest)],
                "seed {seed} {max_fetch:?}"
            );
            assert!(reader
                .events
                .iter()
                .any(|e| matches!(e, ConsumerEvent::PositionSet { offset: 20, .. })));
        }
    }
}

/// OffsetOutOfRange after the end with `latest`: reset to the high watermark; only what
/// is appended afterwards is delivered.
#[test]
fn out_of_range_after_end_resets_to_latest() {
    for seed in seeds() {
        for max_fetch in [None, Some(4)] {
            let mut sim = one_broker(seed, 1, max_fetch);
            append(&mut sim, 0, 10, 20);
            let mut c = config(1 << 20);
            c.auto_offset_reset = OffsetReset::Latest;
            let id = consumer_at(&mut sim, c, &[(0, OffsetSpec::Offset(500))]);
            let mut reader = Reader::new(id, 1 << 20);
            sim.run_until(|sim| {
                reader.read(sim);
                reader
                    .events
                    .iter()
                    .any(|e| matches!(e, ConsumerEvent::PositionSet { .. }))
            })
            .unwrap();
            reader.expect.insert(0, 10);
            append(&mut sim, 0, 5, 20);
            read_to_end(&mut sim, &mut reader, 1);
            assert_eq!(
                reader.delivered[&0],
                (10..15).collect::<Vec<_>>(),
                "seed {seed}"
            );
            assert_eq!(
                out_of_range_events(&reader),
                vec![(500, OutOfRangeSide::AfterEnd, OffsetReset::Latest)],
                "seed {seed} {max_fetch:?}"
            );
        }
    }
}

/// With `auto_offset_reset = error` the partition stops (no request loop) until the
/// application seeks.
#[test]
fn out_of_range_with_error_policy_stops_until_a_seek() {
    for seed in seeds() {
        let mut sim = one_broker(seed, 1, None);
        append(&mut sim, 0, 10, 20);
        let mut c = config(1 << 20);
        c.auto_offset_reset = OffsetReset::Error;
        let id = consumer_at(&mut sim, c, &[(0, OffsetSpec::Offset(50))]);
        let mut reader = Reader::new(id, 1 << 20);
        let until = sim.now() + Duration::from_secs(2);
        sim.run_until(|sim| {
            reader.read(sim);
            sim.now() >= until
        })
        .unwrap();
        assert_eq!(
            out_of_range_events(&reader),
            vec![(50, OutOfRangeSide::AfterEnd, OffsetReset::Error)]
        );
        assert_eq!(sim.cluster.request_count(ApiKey::Fetch), 1, "seed {seed}");
        assert!(
            sim.client
                .consumer(id)
                .unwrap()
                .partition(TOPIC, 0)
                .unwrap()
                .stopped
        );
        reader.seek(&mut sim, 0, 3);
        read_to_end(&mut sim, &mut reader, 1);
        assert_eq!(
            reader.delivered[&0],
            (3..10).collect::<Vec<_>>(),
            "seed {seed}"
        );
    }
}

/// Seeks to earliest, latest and a timestamp go through ListOffsets.
#[test]
fn seek_to_earliest_latest_and_timestamp() {
    for seed in seeds() {
        let mut sim = one_broker(seed, 1, None);
        for i in 0..4 {
            let now = sim.now();
            let records: Vec<Record> = (0..5)
                .map(|j| Record {
                    offset: j,
                    timestamp: 1_000 * (i + 1),
                    value: Some("x".into()),
                    ..Record::default()
                })
                .collect();
            sim.cluster.append_records(now, TOPIC, 0, &records).unwrap();
        }
        let id = consumer_at(
            &mut sim,
            config(1 << 20),
            &[(0, OffsetSpec::Timestamp(3_000))],
        );
        let mut reader = Reader::new(id, 1 << 20);
        read_to_end(&mut sim, &mut reader, 1);
        assert_eq!(
            reader.delivered[&0],
            (10..20).collect::<Vec<_>>(),
            "seed {seed}"
        );
        let now = sim.now();
        sim.client
            .seek(now, id, TOPIC, 0, OffsetSpec::Earliest)
            .unwrap();
        reader.expect.insert(0, 0);
        reader.delivered.clear();
        read_to_end(&mut sim, &mut reader, 1);
        assert_eq!(
            reader.delivered[&0],
            (0..20).collect::<Vec<_>>(),
            "seed {seed}"
        );
        let now = sim.now();
        sim.client
            .seek(now, id, TOPIC, 0, OffsetSpec::Latest)
            .unwrap();
        sim.run_for(Duration::from_millis(200)).unwrap();
        reader.read(&mut sim);
        append(&mut sim, 0, 2, 10);
        reader.delivered.clear();
        read_to_end(&mut sim, &mut reader, 1);
        assert_eq!(reader.delivered[&0], vec![20, 21], "seed {seed}");
    }
}

/// What Kafka 0.9 stores (MessageSet v0 / v1, plain and in gzip wrappers, written by the
/// producer over Produce v0-v1) reads back exactly over Fetch v0-v1, also from an offset
/// inside a compressed wrapper.
#[test]
fn kafka_09_message_sets_read_back_exactly() {
    use grete::client::ProduceRecord;
    use grete::producer::ProducerConfig;
    use grete::protocol::compression::Compression;
    for seed in seeds() {
        for compression in [Compression::None, Compression::Gzip] {
            let cluster = MockConfig::new(1)
                .kafka_09()
                .with_topic(TOPIC, 2, 1)
                .with_seed(seed);
            let mut sim = Sim::new(cluster, SimConfig::seeded(seed), |c| {
                c.request_timeout = Duration::from_secs(5);
            })
            .unwrap();
            let op = sim
                .client
                .topic_metadata(sim.now(), vec![TOPIC.into()], false);
            sim.wait_op(op).unwrap().unwrap();
            let producer = ProducerConfig {
                compression,
                linger: Duration::from_millis(5),
                ..ProducerConfig::default()
            };
            let now = sim.now();
            let pid = sim.client.add_producer(now, TOPIC, producer).unwrap();
            let mut sent: BTreeMap<i32, Vec<String>> = BTreeMap::new();
            for i in 0..200 {
                let p = i % 2;
                let value = format!("value-{i}");
                let record = ProduceRecord {
                    partition: Some(p),
                    ..ProduceRecord::value(value.as_bytes(), 1_700_000_000_000)
                };
                let now = sim.now();
                let (_, wake) = sim.client.produce(now, pid, &record).unwrap();
                if wake {
                    sim.client.handle_timeout(now);
                }
                sent.entry(p).or_default().push(value);
                if i % 37 == 0 {
                    sim.run_for(Duration::from_millis(3)).unwrap();
                }
            }
            sim.client.flush(sim.now(), pid);
            let mut acknowledged = 0;
            sim.run_until(|sim| {
                for e in sim.take_events() {
                    if let Event::Delivery(r) = e {
                        assert!(r.result.is_ok(), "{r:?}");
                        acknowledged += r.count;
                    }
                }
                acknowledged >= 200
            })
            .unwrap();
            for (start, partition) in [(0, 0), (0, 1), (37, 0)] {
                let id = consumer_at(
                    &mut sim,
                    config(1 << 20),
                    &[(partition, OffsetSpec::Offset(start))],
                );
                let mut got: Vec<(i64, String)> = Vec::new();
                sim.run_until(|sim| {
                    while let Some(b) = sim.client.poll_batch(sim.now(), id) {
                        assert_eq!(b.batch().magic, 0, "Produce v0-v1 on 0.9 writes magic 0");
                        for r in b.records() {
                            let r = r.unwrap();
                            let v = String::from_utf8(r.value.unwrap().to_vec()).unwrap();
                            got.push((r.offset, v));
                        }
                    }
                    got.len() as i64 >= 100 - start
                })
                .unwrap();
                let want: Vec<(i64, String)> = sent[&partition]
                    .iter()
                    .enumerate()
                    .skip(start as usize)
                    .map(|(o, v)| (o as i64, v.clone()))
                    .collect();
                assert_eq!(got, want, "seed {seed} {compression:?} from {start}");
                sim.client.remove_consumer(sim.now(), id);
            }
        }
    }
}

fn offsets_of(result: Result<grete::client::Output, grete::error::Error>) -> Vec<(i32, i64)> {
    result
        .unwrap()
        .into_offsets()
        .unwrap()
        .into_iter()
        .map(|o| (o.partition, o.result.unwrap()))
        .collect()
}

/// Offsets committed through the group's coordinator read back, on a modern broker and on
/// Kafka 0.9 (GroupCoordinator, OffsetCommit v2); a coordinator that moved is found again.
#[test]
fn offsets_commit_and_fetch_through_the_coordinator() {
    for seed in seeds() {
        for kafka_09 in [false, true] {
            let mut cluster = MockConfig::new(3).with_topic(TOPIC, 2, 3).with_seed(seed);
            if kafka_09 {
                cluster = cluster.kafka_09();
            }
            let mut sim = Sim::new(cluster, SimConfig::seeded(seed), |c| {
                if !kafka_09 {
                    modern(c);
                }
                c.request_timeout = Duration::from_secs(10);
            })
            .unwrap();
            let op = sim
                .client
                .commit_offsets(sim.now(), "g", TOPIC, vec![(0, 5), (1, 7)]);
            assert_eq!(offsets_of(sim.wait_op(op).unwrap()), vec![(0, 5), (1, 7)]);
            assert_eq!(sim.cluster.committed_offset("g", TOPIC, 0), Some(5));
            let versions: Vec<(ApiKey, i16)> = sim
                .cluster
                .requests()
                .iter()
                .filter(|r| matches!(r.api, ApiKey::FindCoordinator | ApiKey::OffsetCommit))
                .map(|r| (r.api, r.version))
                .collect();
            let want = if kafka_09 { (0, 2) } else { (3, 8) };
            assert_eq!(
                versions,
                vec![
                    (ApiKey::FindCoordinator, want.0),
                    (ApiKey::OffsetCommit, want.1)
                ]
            );
            let op = sim.client.fetch_offsets(sim.now(), "g", TOPIC, vec![0, 1]);
            assert_eq!(offsets_of(sim.wait_op(op).unwrap()), vec![(0, 5), (1, 7)]);
            let op = sim.client.fetch_offsets(sim.now(), "other", TOPIC, vec![0]);
            assert_eq!(offsets_of(sim.wait_op(op).unwrap()), vec![(0, -1)]);
            // The coordinator answers that it no longer is, then goes down.
            sim.cluster.inject(Fault {
                matcher: Matcher::api(ApiKey::OffsetCommit),
                action: FaultAction::Error(ErrorCode::NotCoordinator),
                times: 1,
            });
            let finds = sim.cluster.request_count(ApiKey::FindCoordinator);
            let op = sim
                .client
                .commit_offsets(sim.now(), "g", TOPIC, vec![(0, 9)]);
            assert_eq!(offsets_of(sim.wait_op(op).unwrap()), vec![(0, 9)]);
            assert_eq!(
                sim.cluster.request_count(ApiKey::FindCoordinator),
                finds + 2
            );
            let coordinator = sim
                .cluster
                .requests()
                .iter()
                .rev()
                .find(|r| r.api == ApiKey::OffsetCommit)
                .map(|r| r.broker)
                .unwrap();
            let now = sim.now();
            sim.cluster.broker_down(now, coordinator);
            let op = sim
                .client
                .commit_offsets(sim.now(), "g", TOPIC, vec![(1, 11)]);
            assert_eq!(
                offsets_of(sim.wait_op(op).unwrap()),
                vec![(1, 11)],
                "seed {seed}"
            );
            let op = sim.client.fetch_offsets(sim.now(), "g", TOPIC, vec![0, 1]);
            assert_eq!(offsets_of(sim.wait_op(op).unwrap()), vec![(0, 9), (1, 11)]);
        }
    }
}

/// With every broker down the consumer waits without spinning (the simulation fails on
/// a livelock), resumes where it was when they are back, and is removed at once.
#[test]
fn every_broker_down_then_back() {
    for seed in seeds() {
        let mut sim = one_broker(seed, 2, None);
        append(&mut sim, 0, 10, 20);
        append(&mut sim, 1, 10, 20);
        let starts = [(0, OffsetSpec::Offset(0)), (1, OffsetSpec::Offset(0))];
        let id = consumer_at(&mut sim, config(1 << 20), &starts);
        let mut reader = Reader::new(id, 1 << 20);
        read_to_end(&mut sim, &mut reader, 2);
        let now = sim.now();
        sim.cluster.broker_down(now, 0);
        append(&mut sim, 0, 5, 20);
        let steps = sim.steps();
        sim.run_for(Duration::from_secs(30)).unwrap();
        assert!(sim.steps() - steps < 2_000, "seed {seed}: busy while down");
        reader.read(&mut sim);
        sim.cluster.broker_up(0);
        read_to_end(&mut sim, &mut reader, 2);
        assert_eq!(
            reader.delivered[&0],
            (0..15).collect::<Vec<_>>(),
            "seed {seed}"
        );
        assert_eq!(
            reader.delivered[&1],
            (0..10).collect::<Vec<_>>(),
            "seed {seed}"
        );
        sim.cluster.broker_down(sim.now(), 0);
        sim.client.remove_consumer(sim.now(), id);
        assert!(sim.client.consumer(id).is_none());
        sim.run_for(Duration::from_secs(5)).unwrap();
    }
}
