#![allow(clippy::disallowed_methods)]

//! Transcript tests: a consumer driven by hand with crafted answers.

use super::*;
use crate::protocol::messages::fetch_response::{AbortedTransaction, FetchableTopicResponse};
use crate::protocol::records::{encode_record_batch, BatchHeader, Record};
use bytes::Bytes;
use std::time::Duration;

fn leader0(_: &str, _: i32) -> Option<i32> {
    Some(0)
}

/// `c.poll_fetch` after syncing the leader index with `leader_of` (a new generation each
/// time, as if the metadata changed).
fn poll_fetch(
    c: &mut Consumer,
    broker: i32,
    leader_of: LeaderOf<'_>,
    version: i16,
) -> Option<(FetchRequest, FetchToken)> {
    c.sync_leaders(next_generation(), leader_of);
    c.poll_fetch(broker, version)
}

fn poll_lookup(
    c: &mut Consumer,
    broker: i32,
    leader_of: LeaderOf<'_>,
    version: i16,
) -> Option<(ListOffsetsRequest, LookupToken)> {
    c.sync_leaders(next_generation(), leader_of);
    c.poll_lookup(broker, version)
}

fn next_generation() -> u64 {
    thread_local!(static GENERATION: std::cell::Cell<u64> = const { std::cell::Cell::new(0) });
    GENERATION.with(|g| {
        g.set(g.get() + 1);
        g.get()
    })
}

fn small() -> ConsumerConfig {
    ConsumerConfig {
        fetch_message_max_bytes: 1000,
        queued_max_bytes: 4000,
        ..ConsumerConfig::default()
    }
}

fn consumer(config: ConsumerConfig, partitions: i32) -> Consumer {
    let mut c = Consumer::new(ConsumerId(0), config);
    for p in 0..partitions {
        c.assign("t", p, OffsetSpec::Offset(0)).unwrap();
    }
    c
}

/// A v2 batch holding offsets `base .. base + n`.
fn batch_with(header: BatchHeader, base: i64, n: i64) -> Vec<u8> {
    let records: Vec<Record> = (base..base + n)
        .map(|o| Record {
            offset: o,
            timestamp: 1,
            value: Some(Bytes::from(format!("v{o}"))),
            ..Record::default()
        })
        .collect();
    let mut out = Vec::new();
    let header = BatchHeader {
        base_offset: base,
        ..header
    };
    encode_record_batch(&mut out, &header, &records).unwrap();
    out
}

fn batch(base: i64, n: i64) -> Vec<u8> {
    batch_with(BatchHeader::default(), base, n)
}

fn answer(partitions: Vec<(i32, i16, Vec<u8>, i64)>) -> FetchResponse {
    FetchResponse {
        responses: vec![FetchableTopicResponse {
            topic: "t".into(),
            partitions: partitions
                .into_iter()
                .map(|(p, code, records, hw)| PartitionData {
                    partition_index: p,
                    error_code: code,
                    high_watermark: hw,
                    last_stable_offset: hw,
                    log_start_offset: -1,
                    records: Some(Bytes::from(records)),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn ok(p: i32, records: Vec<u8>, hw: i64) -> FetchResponse {
    answer(vec![(p, 0, records, hw)])
}

/// Every record offset handed out, in order.
fn take_all(c: &mut Consumer) -> Vec<i64> {
    let mut out = Vec::new();
    while let Some(b) = c.poll_batch() {
        out.extend(b.records().map(|r| r.unwrap().offset));
    }
    out
}

fn fetch(c: &mut Consumer, version: i16) -> (FetchRequest, FetchToken) {
    poll_fetch(c, 0, &leader0, version).expect("a fetch")
}

#[test]
fn one_fetch_per_broker_and_records_in_order() {
    let now = Instant::now();
    let mut c = consumer(small(), 2);
    let (req, token) = fetch(&mut c, 12);
    assert_eq!(req.topics[0].partitions.len(), 2);
    assert_eq!(req.max_bytes, 2000);
    assert!(
        poll_fetch(&mut c, 0, &leader0, 12).is_none(),
        "one fetch per broker"
    );
    assert_eq!(c.reserved_bytes(), 2000);
    let mut records = batch(0, 3);
    records.extend(batch(3, 2));
    c.handle_fetch_response(now, token, Ok(&ok(0, records, 5)), 12);
    assert_eq!(c.reserved_bytes(), 0);
    assert_eq!(c.buffered_messages(), 5);
    assert_eq!(take_all(&mut c), vec![0, 1, 2, 3, 4]);
    let view = c.partition("t", 0).unwrap();
    assert_eq!(
        (view.position, view.fetch_offset, view.lag()),
        (5, 5, Some(0))
    );
    assert_eq!(c.buffered_bytes(), 0);
}

#[test]
fn an_answer_from_before_a_seek_is_dropped() {
    let now = Instant::now();
    let mut c = consumer(small(), 1);
    let (_, token) = fetch(&mut c, 12);
    c.seek("t", 0, OffsetSpec::Offset(7)).unwrap();
    c.handle_fetch_response(now, token, Ok(&ok(0, batch(0, 10), 10)), 12);
    assert!(c.poll_batch().is_none(), "records fetched before the seek");
    let (req, token) = fetch(&mut c, 12);
    assert_eq!(req.topics[0].partitions[0].fetch_offset, 7);
    c.handle_fetch_response(now, token, Ok(&ok(0, batch(0, 10), 10)), 12);
    assert_eq!(
        take_all(&mut c),
        vec![7, 8, 9],
        "records below the position skipped"
    );
}

#[test]
fn control_batches_and_aborted_transactions_are_skipped_but_advance() {
    let now = Instant::now();
    let config = ConsumerConfig {
        isolation_level: IsolationLevel::ReadCommitted,
        ..small()
    };
    let mut c = consumer(config, 1);
    let (req, token) = fetch(&mut c, 12);
    assert_eq!(req.isolation_level, 1);
    let txn = BatchHeader {
        transactional: true,
        producer_id: 9,
        producer_epoch: 0,
        base_sequence: 0,
        ..BatchHeader::default()
    };
    let marker = BatchHeader {
        control: true,
        ..txn
    };
    // 0..2 aborted, 2 its abort marker: nothing to deliver, yet the position moves.
    let mut records = batch_with(txn, 0, 2);
    records.extend(batch_with(marker, 2, 1));
    let mut r = ok(0, records, 3);
    r.responses[0].partitions[0].aborted_transactions = Some(vec![AbortedTransaction {
        producer_id: 9,
        first_offset: 0,
        ..Default::default()
    }]);
    c.handle_fetch_response(now, token, Ok(&r), 12);
    assert!(c.poll_batch().is_none());
    let view = c.partition("t", 0).unwrap();
    assert_eq!((view.position, view.fetch_offset), (3, 3));
    // A committed transaction of the same producer afterwards is delivered.
    let (req, token) = fetch(&mut c, 12);
    assert_eq!(req.topics[0].partitions[0].fetch_offset, 3);
    let mut records = batch_with(txn, 3, 2);
    records.extend(batch_with(marker, 5, 1));
    c.handle_fetch_response(now, token, Ok(&ok(0, records, 6)), 12);
    assert_eq!(take_all(&mut c), vec![3, 4]);
    assert_eq!(c.partition("t", 0).unwrap().position, 6);
}

#[test]
fn lag_counts_to_the_last_stable_offset_under_read_committed() {
    let now = Instant::now();
    for (isolation, end) in [
        (IsolationLevel::ReadCommitted, 4),
        (IsolationLevel::ReadUncommitted, 9),
    ] {
        let mut c = consumer(
            ConsumerConfig {
                isolation_level: isolation,
                ..small()
            },
            1,
        );
        let (_, token) = fetch(&mut c, 12);
        // Offsets 0..3 readable; an open transaction holds the last stable offset at 4
        // while the high watermark is 9.
        let mut r = ok(0, batch(0, 3), 9);
        r.responses[0].partitions[0].last_stable_offset = 4;
        c.handle_fetch_response(now, token, Ok(&r), 12);
        assert_eq!(take_all(&mut c), vec![0, 1, 2]);
        let view = c.partition("t", 0).unwrap();
        assert_eq!(
            (
                view.high_watermark,
                view.last_stable_offset,
                view.readable_end
            ),
            (9, 4, end),
            "{isolation:?}"
        );
        assert_eq!(view.lag(), Some(end - 3), "{isolation:?}");
    }
}

#[test]
fn a_fetch_that_brings_nothing_new_stops_the_partition_once() {
    let now = Instant::now();
    let mut c = consumer(small(), 1);
    c.seek("t", 0, OffsetSpec::Offset(10)).unwrap();
    let (_, token) = fetch(&mut c, 12);
    // A broker answering with whole batches all before the position.
    c.handle_fetch_response(now, token, Ok(&ok(0, batch(0, 5), 20)), 12);
    assert!(matches!(
        c.poll_event(),
        Some(ConsumerEvent::NoProgress { position: 10, .. })
    ));
    assert!(c.poll_event().is_none());
    assert!(c.partition("t", 0).unwrap().stopped);
    assert!(
        poll_fetch(&mut c, 0, &leader0, 12).is_none(),
        "no request loop"
    );
    c.seek("t", 0, OffsetSpec::Offset(0)).unwrap();
    assert!(
        poll_fetch(&mut c, 0, &leader0, 12).is_some(),
        "a seek restarts it"
    );
}

#[test]
fn a_batch_cut_at_the_limit_raises_it_for_one_fetch() {
    let now = Instant::now();
    let mut c = consumer(small(), 1);
    let (_, token) = fetch(&mut c, 1);
    let big = batch_with(BatchHeader::default(), 0, 200);
    let full = big.len();
    assert!(full > 1000);
    c.handle_fetch_response(now, token, Ok(&ok(0, big[..1000].to_vec(), 200)), 1);
    assert!(c.poll_event().is_none());
    let (req, token) = fetch(&mut c, 1);
    assert_eq!(
        req.topics[0].partitions[0].partition_max_bytes as usize,
        full
    );
    assert_eq!(req.max_bytes, i32::MAX, "v1 has no response limit");
    let mut records = big.clone();
    records.extend(batch(200, 1));
    c.handle_fetch_response(now, token, Ok(&ok(0, records, 201)), 1);
    assert_eq!(take_all(&mut c).len(), 201);
    let (req, _) = fetch(&mut c, 1);
    assert_eq!(
        req.topics[0].partitions[0].partition_max_bytes, 1000,
        "raised once"
    );
}

#[test]
fn an_empty_first_answer_below_the_high_watermark_raises_the_limit() {
    let now = Instant::now();
    let mut c = consumer(small(), 2);
    let (req, token) = fetch(&mut c, 12);
    let first = req.topics[0].partitions[0].partition;
    let r = answer(vec![
        (first, 0, Vec::new(), 10),
        (1 - first, 0, Vec::new(), 10),
    ]);
    c.handle_fetch_response(now, token, Ok(&r), 12);
    let (req, _) = fetch(&mut c, 12);
    let limit = |p: i32| {
        req.topics[0]
            .partitions
            .iter()
            .find(|x| x.partition == p)
            .map(|x| x.partition_max_bytes)
    };
    assert_eq!(
        limit(first),
        Some(2000),
        "the first partition's limit doubled"
    );
    assert_eq!(
        limit(1 - first),
        Some(1000),
        "not first: the response limit explains it"
    );
}

#[test]
fn no_fetch_while_the_budget_is_used_and_one_after_the_application_reads() {
    let now = Instant::now();
    let mut c = consumer(small(), 4);
    let (req, token) = fetch(&mut c, 12);
    assert_eq!(req.topics[0].partitions.len(), 4, "4 x 1000 fits 4000");
    let r = answer(
        (0..4)
            .map(|p| (p, 0, batch_with(BatchHeader::default(), 0, 80), 80))
            .collect(),
    );
    c.handle_fetch_response(now, token, Ok(&r), 12);
    assert!(c.buffered_bytes() > 3000, "{}", c.buffered_bytes());
    assert!(c.buffered_bytes() <= 4000);
    assert!(
        poll_fetch(&mut c, 0, &leader0, 12).is_none(),
        "at the budget"
    );
    assert!(!c.has_room());
    let b = c.poll_batch().unwrap();
    assert!(c.has_room());
    let (req, _) = fetch(&mut c, 12);
    let asked: Vec<i32> = req.topics[0]
        .partitions
        .iter()
        .map(|p| p.partition)
        .collect();
    assert_eq!(asked.len(), 1, "one partition's limit fits");
    assert_eq!(req.topics[0].partitions[0].fetch_offset, 80);
    drop(b);
}

#[test]
fn errors_back_off_refresh_or_stop() {
    let now = Instant::now();
    let mut c = consumer(small(), 2);
    let (_, token) = fetch(&mut c, 12);
    let r = answer(vec![
        (0, ErrorCode::NotLeaderOrFollower.code(), Vec::new(), -1),
        (
            1,
            ErrorCode::TopicAuthorizationFailed.code(),
            Vec::new(),
            -1,
        ),
    ]);
    let follow = c.handle_fetch_response(now, token, Ok(&r), 12);
    assert!(follow.refresh_metadata);
    assert!(matches!(
        c.poll_event(),
        Some(ConsumerEvent::PartitionError { partition: 1, .. })
    ));
    assert!(poll_fetch(&mut c, 0, &leader0, 12).is_none(), "backing off");
    let due = now + Duration::from_millis(100);
    assert_eq!(c.poll_timeout(), Some(due));
    c.handle_timeout(due);
    assert_eq!(c.poll_timeout(), None, "timer contract");
    let (req, _) = fetch(&mut c, 12);
    let asked: Vec<i32> = req.topics[0]
        .partitions
        .iter()
        .map(|p| p.partition)
        .collect();
    assert_eq!(
        asked,
        vec![0],
        "same offset, the stopped partition not asked"
    );
    assert_eq!(req.topics[0].partitions[0].fetch_offset, 0);
}

#[test]
fn a_lost_connection_retries_from_the_same_offset() {
    let now = Instant::now();
    let mut c = consumer(small(), 1);
    let (_, token) = fetch(&mut c, 12);
    c.handle_fetch_response(now, token, Ok(&ok(0, batch(0, 4), 10)), 12);
    let (_, token) = fetch(&mut c, 12);
    let lost = Error::Transport(crate::error::TransportError::closed("cut"));
    assert!(
        c.handle_fetch_response(now, token, Err(&lost), 12)
            .refresh_metadata
    );
    c.handle_timeout(now + Duration::from_millis(100));
    let (req, _) = fetch(&mut c, 12);
    assert_eq!(req.topics[0].partitions[0].fetch_offset, 4);
    assert_eq!(take_all(&mut c), vec![0, 1, 2, 3]);
}

#[test]
fn a_checksum_mismatch_stops_the_partition() {
    let now = Instant::now();
    let mut c = consumer(small(), 1);
    let (_, token) = fetch(&mut c, 12);
    let mut records = batch(0, 3);
    let last = records.len() - 1;
    records[last] ^= 0xff;
    c.handle_fetch_response(now, token, Ok(&ok(0, records, 3)), 12);
    assert!(matches!(
        c.poll_event(),
        Some(ConsumerEvent::PartitionError {
            error: Error::Protocol(_),
            ..
        })
    ));
    assert!(c.poll_batch().is_none());
}

#[test]
fn out_of_range_without_the_log_start_looks_it_up_first() {
    let now = Instant::now();
    let mut c = consumer(small(), 1);
    c.seek("t", 0, OffsetSpec::Offset(5)).unwrap();
    let (_, token) = fetch(&mut c, 4);
    let r = answer(vec![(
        0,
        ErrorCode::OffsetOutOfRange.code(),
        Vec::new(),
        -1,
    )]);
    c.handle_fetch_response(now, token, Ok(&r), 4);
    assert!(
        poll_fetch(&mut c, 0, &leader0, 4).is_none(),
        "waits for the lookup"
    );
    let (req, token) = poll_lookup(&mut c, 0, &leader0, 1).unwrap();
    assert_eq!(req.topics[0].partitions[0].timestamp, -2);
    let answer = ListOffsetsResponse {
        topics: vec![
            crate::protocol::messages::list_offsets_response::ListOffsetsTopicResponse {
                name: "t".into(),
                partitions: vec![
                crate::protocol::messages::list_offsets_response::ListOffsetsPartitionResponse {
                    partition_index: 0,
                    offset: 20,
                    ..Default::default()
                },
            ],
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    c.handle_lookup_response(now, token, Ok(&answer));
    assert_eq!(
        c.poll_event(),
        Some(ConsumerEvent::OffsetOutOfRange {
            consumer: ConsumerId(0),
            topic: "t".into(),
            partition: 0,
            position: 5,
            side: OutOfRangeSide::BeforeStart,
            reset: OffsetReset::Earliest,
        })
    );
    assert!(matches!(
        c.poll_event(),
        Some(ConsumerEvent::PositionSet { offset: 20, .. })
    ));
    let (req, _) = fetch(&mut c, 4);
    assert_eq!(req.topics[0].partitions[0].fetch_offset, 20);
}

#[test]
fn paused_partitions_are_not_fetched_nor_handed_out() {
    let now = Instant::now();
    let mut c = consumer(small(), 2);
    let (_, token) = fetch(&mut c, 12);
    let r = answer(vec![(0, 0, batch(0, 2), 2), (1, 0, batch(0, 2), 2)]);
    c.handle_fetch_response(now, token, Ok(&r), 12);
    c.pause("t", 0).unwrap();
    let b = c.poll_batch().unwrap();
    assert_eq!(b.partition(), 1);
    assert!(c.poll_batch().is_none());
    assert!(!c.has_batches());
    let (req, _) = fetch(&mut c, 12);
    let asked: Vec<i32> = req.topics[0]
        .partitions
        .iter()
        .map(|p| p.partition)
        .collect();
    assert_eq!(asked, vec![1]);
    c.resume("t", 0).unwrap();
    assert!(c.has_batches());
    assert_eq!(c.poll_batch().unwrap().partition(), 0);
}

#[test]
fn a_partition_the_budget_turned_away_is_not_starved_by_another_broker() {
    let now = Instant::now();
    let config = ConsumerConfig {
        fetch_message_max_bytes: 1000,
        queued_max_bytes: 2000,
        ..ConsumerConfig::default()
    };
    let mut c = consumer(config, 3);
    // Partition 0 on broker 0, partitions 1 and 2 on broker 1.
    let leaders = |_: &str, p: i32| Some(i32::from(p != 0));
    let (req, token) = poll_fetch(&mut c, 1, &leaders, 12).unwrap();
    assert_eq!(req.topics[0].partitions.len(), 2);
    assert!(
        poll_fetch(&mut c, 0, &leaders, 12).is_none(),
        "the budget is reserved"
    );
    let idle = answer(vec![(1, 0, Vec::new(), 0), (2, 0, Vec::new(), 0)]);
    c.handle_fetch_response(now, token, Ok(&idle), 12);
    // Broker 1 asks again first, but partition 0's share is set aside.
    let (req, _) = poll_fetch(&mut c, 1, &leaders, 12).unwrap();
    assert_eq!(req.topics[0].partitions.len(), 1);
    let (req, _) = poll_fetch(&mut c, 0, &leaders, 12).expect("partition 0's turn");
    assert_eq!(req.topics[0].partitions[0].partition, 0);
}

#[test]
fn a_batch_larger_than_any_response_the_connection_takes_is_reported() {
    let now = Instant::now();
    let mut c = consumer(small(), 1);
    c.set_max_response_size(8192);
    let big = batch_with(BatchHeader::default(), 0, 2000);
    assert!(big.len() > 8192);
    let (_, token) = fetch(&mut c, 1);
    c.handle_fetch_response(now, token, Ok(&ok(0, big[..1000].to_vec(), 2000)), 1);
    let (req, token) = fetch(&mut c, 1);
    assert_eq!(req.topics[0].partitions[0].partition_max_bytes, 8192 - 4096);
    c.handle_fetch_response(now, token, Ok(&ok(0, big[..4096].to_vec(), 2000)), 1);
    assert!(matches!(
        c.poll_event(),
        Some(ConsumerEvent::NoProgress { position: 0, .. })
    ));
    assert!(
        poll_fetch(&mut c, 0, &leader0, 1).is_none(),
        "stopped, no loop"
    );
}

fn listed(req: &FetchRequest) -> Vec<(i32, i64)> {
    req.topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| (p.partition, p.fetch_offset))
        .collect()
}

#[test]
fn a_fetch_session_lists_only_what_changed_and_forgets_what_is_not_wanted() {
    let now = Instant::now();
    let mut c = consumer(small(), 2);
    let (req, token) = fetch(&mut c, 12);
    assert_eq!(
        (req.session_id, req.session_epoch),
        (0, 0),
        "asks for a session"
    );
    assert_eq!(listed(&req), vec![(0, 0), (1, 0)]);
    let mut r = answer(vec![(0, 0, batch(0, 3), 3), (1, 0, Vec::new(), 0)]);
    r.session_id = 7;
    c.handle_fetch_response(now, token, Ok(&r), 12);
    let (req, token) = fetch(&mut c, 12);
    assert_eq!((req.session_id, req.session_epoch), (7, 1));
    assert_eq!(listed(&req), vec![(0, 3)], "partition 1 is unchanged");
    assert!(req.forgotten_topics_data.is_empty());
    // The incremental answer leaves partition 1 out: no error, no backoff.
    let mut r = answer(vec![(0, 0, batch(3, 2), 5)]);
    r.session_id = 7;
    c.handle_fetch_response(now, token, Ok(&r), 12);
    assert!(c.poll_event().is_none());
    c.pause("t", 1).unwrap();
    let (req, token) = fetch(&mut c, 12);
    assert_eq!((req.session_id, req.session_epoch), (7, 2));
    assert_eq!(listed(&req), vec![(0, 5)]);
    assert_eq!(req.forgotten_topics_data[0].partitions, vec![1]);
    // The broker lost the session: a full fetch asks for a new one at once.
    let lost = FetchResponse {
        error_code: ErrorCode::FetchSessionIdNotFound.code(),
        ..Default::default()
    };
    assert!(
        !c.handle_fetch_response(now, token, Ok(&lost), 12)
            .refresh_metadata
    );
    let (req, _) = fetch(&mut c, 12);
    assert_eq!((req.session_id, req.session_epoch), (0, 0));
    assert_eq!(listed(&req), vec![(0, 5)]);
    assert_eq!(take_all(&mut c), vec![0, 1, 2, 3, 4]);
}

#[test]
fn no_fetch_session_before_v7_or_when_disabled() {
    let mut c = consumer(small(), 1);
    let (req, _) = fetch(&mut c, 6);
    assert_eq!((req.session_id, req.session_epoch), (0, -1));
    let config = ConsumerConfig {
        fetch_sessions: false,
        ..small()
    };
    let mut c = consumer(config, 1);
    let (req, _) = fetch(&mut c, 12);
    assert_eq!((req.session_id, req.session_epoch), (0, -1));
}

#[test]
fn a_whole_batch_over_the_limit_that_does_not_fit_the_budget_waits_to_go_alone() {
    let now = Instant::now();
    let mut c = consumer(small(), 2);
    let (_, token) = fetch(&mut c, 12);
    let small_batches = [batch(0, 40), batch(40, 40)].concat();
    let big = batch(0, 400);
    assert!(
        small_batches.len() <= 1000 && big.len() > 3200,
        "{}",
        big.len()
    );
    // A broker sends partition 1's first batch whole although it is over the limit.
    let r = answer(vec![
        (0, 0, small_batches.clone(), 80),
        (1, 0, big.clone(), 400),
    ]);
    c.handle_fetch_response(now, token, Ok(&r), 12);
    assert!(
        c.buffered_bytes() <= 4000,
        "{} buffered",
        c.buffered_bytes()
    );
    assert_eq!(c.buffered_messages(), 80, "the big batch was not kept");
    assert!(c.poll_event().is_none());
    // Partition 1's raised limit does not fit what is left: it waits first in line, and
    // partition 0 behind it.
    assert!(poll_fetch(&mut c, 0, &leader0, 12).is_none());
    assert_eq!(take_all(&mut c).len(), 80);
    let (req, token) = fetch(&mut c, 12);
    let asked: Vec<(i32, i32)> = req.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition, p.partition_max_bytes))
        .collect();
    assert_eq!(
        asked,
        vec![(1, big.len() as i32)],
        "alone, with its batch's size"
    );
    c.handle_fetch_response(now, token, Ok(&answer(vec![(1, 0, big, 400)])), 12);
    assert_eq!(take_all(&mut c), (0..400).collect::<Vec<_>>());
}
