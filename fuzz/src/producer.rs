//! The producer state machine on its own, driven by the fuzzer: records produced to any
//! partition, requests taken for any broker, answered with any error code, a lost
//! connection or a timeout, InitProducerId answered or refused, time passing, flushes.
//!
//! Invariants checked after every step:
//! - every record produced gets exactly one outcome, and the producer's queue counts the
//!   rest (`queued_records`);
//! - a report never covers a record twice nor one not produced;
//! - the timer contract: after `handle_timeout(now)`, `poll_timeout` is `None` or later;
//! - nothing panics, whatever the answers.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use grete::client::{ProduceRecord, ProducerId};
use grete::error::{Error, TransportError};
use grete::producer::{Producer, ProducerConfig, RecordFormat};
use grete::protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use grete::protocol::messages::{InitProducerIdResponse, ProduceResponse};

use crate::take_le;

/// Error codes a Produce answer may carry (0 is success).
const CODES: [i16; 12] = [0, 6, 7, 19, 20, 45, 46, 47, 59, 10, 2, 29];

/// Runs one input.
pub fn check_producer(mut data: &[u8]) {
    let flags = take_le(&mut data, 1) as u8;
    let idempotent = flags & 1 != 0;
    let format = match (flags >> 1) % 3 {
        0 => RecordFormat::MessageSetV0,
        1 => RecordFormat::MessageSetV1,
        _ => RecordFormat::RecordBatch,
    };
    let idempotent = idempotent && format == RecordFormat::RecordBatch;
    let config = ProducerConfig {
        batch_max_records: 1 + (flags >> 3) as usize % 4,
        max_retries: (flags >> 5) as u32 % 4,
        delivery_timeout: Duration::from_secs(30),
        enable_idempotence: Some(idempotent),
        ..ProducerConfig::default()
    };
    let mut p = Producer::new(
        ProducerId(0),
        "t".into(),
        &[0, 1, 2],
        config,
        format,
        idempotent,
        7,
    );
    let start = Instant::now();
    let mut now = start;
    // Record id -> times reported.
    let mut outcomes: BTreeMap<(i32, u64), u32> = BTreeMap::new();
    let mut in_flight = Vec::new();
    let mut steps = 0;
    while !data.is_empty() && steps < 200 {
        steps += 1;
        let op = take_le(&mut data, 1) as u8;
        let arg = take_le(&mut data, 1) as u8;
        match op % 8 {
            0 | 1 => {
                let value = vec![b'v'; (arg % 64) as usize];
                let record = ProduceRecord {
                    partition: (arg & 0x80 != 0).then_some((arg % 4) as i32),
                    ..ProduceRecord::value(&value, 1_700_000_000_000)
                };
                if let Ok((rid, _)) = p.produce(now, &record) {
                    let fresh = outcomes.insert((rid.partition, rid.sequence), 0).is_none();
                    assert!(fresh, "record id {rid:?} given twice");
                }
            }
            2 => {
                let version = [0, 2, 3, 11][(arg % 4) as usize];
                let indexes: Vec<usize> = (0..3).filter(|i| arg & (1 << (i + 2)) != 0).collect();
                if let Some(req) = p.poll_request(now, (arg >> 5) as i32 % 3, &indexes, version) {
                    in_flight.push(req);
                }
            }
            3 if !in_flight.is_empty() => {
                let (req, token) = in_flight.remove(arg as usize % in_flight.len());
                let code = CODES[(arg >> 4) as usize % CODES.len()];
                let response = ProduceResponse {
                    responses: req
                        .topic_data
                        .iter()
                        .map(|t| TopicProduceResponse {
                            name: t.name.clone(),
                            partition_responses: t
                                .partition_data
                                .iter()
                                .map(|pd| PartitionProduceResponse {
                                    index: pd.index,
                                    error_code: code,
                                    base_offset: i64::from(arg),
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                };
                let lost = Error::Transport(TransportError::closed("fuzz"));
                let timeout = Error::timeout("fuzz");
                let result = match arg % 5 {
                    0 => Err(&lost),
                    1 => Err(&timeout),
                    _ => Ok(&response),
                };
                p.handle_response(now, token, result);
            }
            4 => {
                if p.poll_init_producer_id().is_some() {
                    let response = InitProducerIdResponse {
                        error_code: if arg % 4 == 0 { 15 } else { 0 },
                        producer_id: i64::from(arg),
                        producer_epoch: i16::from(arg >> 2),
                        ..Default::default()
                    };
                    let _ = p.handle_init_producer_id(now, Ok(&response));
                }
            }
            5 => {
                now += Duration::from_millis(u64::from(arg) * 40);
                p.handle_timeout(now);
                assert!(
                    p.poll_timeout().is_none_or(|t| t > now),
                    "a timer due after handle_timeout"
                );
            }
            6 => p.flush(),
            _ => {
                // Jump to the next timer, as a transport would.
                if let Some(t) = p.poll_timeout() {
                    now = now.max(t);
                    p.handle_timeout(now);
                }
            }
        }
        while let Some(r) = p.poll_report() {
            assert!(r.count > 0, "an empty report");
            for i in 0..u64::from(r.count) {
                let seen = outcomes
                    .get_mut(&(r.partition, r.first + i))
                    .unwrap_or_else(|| panic!("a report for a record never produced: {r:?}"));
                *seen += 1;
                assert_eq!(*seen, 1, "a record reported twice: {r:?}");
            }
        }
        let unreported = outcomes.values().filter(|n| **n == 0).count();
        assert_eq!(
            p.queued_records(),
            unreported,
            "the queue counts the records without an outcome"
        );
    }
    // Whatever is left fails when the producer goes, each record once.
    p.abort(&Error::Misuse("fuzz end".into()));
    while let Some(r) = p.poll_report() {
        for i in 0..u64::from(r.count) {
            let seen = outcomes
                .get_mut(&(r.partition, r.first + i))
                .expect("produced");
            *seen += 1;
            assert_eq!(*seen, 1, "a record reported twice at abort: {r:?}");
        }
    }
    assert!(
        outcomes.values().all(|n| *n == 1),
        "a record without an outcome"
    );
    assert_eq!(p.queued_records(), 0);
}
