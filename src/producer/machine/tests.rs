#![allow(clippy::disallowed_methods)]

use super::*;

fn producer(config: ProducerConfig, idempotent: bool) -> Producer {
    Producer::new(
        ProducerId(0),
        "t".into(),
        &[0, 1],
        config,
        RecordFormat::RecordBatch,
        idempotent,
        1,
    )
}

fn record(partition: i32) -> ProduceRecord<'static> {
    ProduceRecord {
        partition: Some(partition),
        ..ProduceRecord::value(b"value", 1)
    }
}

#[test]
fn a_batch_closes_when_full_and_lingering_ones_close_on_time() {
    let now = Instant::now();
    let config = ProducerConfig {
        batch_max_records: 2,
        linger: Duration::from_millis(5),
        ..ProducerConfig::default()
    };
    let mut p = producer(config, false);
    let (first, wake) = p.produce(now, &record(0)).unwrap();
    assert_eq!(
        first,
        RecordId {
            partition: 0,
            sequence: 0
        }
    );
    assert!(wake, "a batch opened: its linger timer must be armed");
    let (_, wake) = p.produce(now, &record(0)).unwrap();
    assert!(wake, "the batch filled: it can go");
    let (_, wake) = p.produce(now, &record(1)).unwrap();
    assert!(wake);
    let mut ready = Vec::new();
    p.ready_partitions(now, &mut ready);
    assert_eq!(ready, vec![(0, 0)], "only the full batch is ready");
    assert_eq!(p.poll_timeout(), Some(now + Duration::from_millis(5)));
    let later = now + Duration::from_millis(5);
    p.handle_timeout(later);
    assert!(
        p.poll_timeout().is_some_and(|t| t > later),
        "timer contract"
    );
    ready.clear();
    p.ready_partitions(later, &mut ready);
    assert_eq!(ready, vec![(0, 0), (1, 1)]);
}

#[test]
fn without_idempotence_one_batch_per_partition_is_in_flight() {
    let now = Instant::now();
    let config = ProducerConfig {
        batch_max_records: 1,
        enable_idempotence: Some(false),
        ..ProducerConfig::default()
    };
    let mut p = producer(config, false);
    for _ in 0..3 {
        p.produce(now, &record(0)).unwrap();
    }
    let (req, token) = p.poll_request(now, 1, &[0], 11).unwrap();
    assert_eq!(req.topic_data[0].partition_data.len(), 1);
    assert!(p.poll_request(now, 1, &[0], 11).is_none(), "one in flight");
    let error = Error::Transport(crate::error::TransportError::closed("cut"));
    p.handle_response(now, token, Err(&error));
    // Backing off: nothing goes before the retry time.
    assert!(p.poll_request(now, 1, &[0], 11).is_none());
    let at = p.poll_timeout().unwrap();
    p.handle_timeout(at);
    let (req, _) = p.poll_request(at, 1, &[0], 11).unwrap();
    // The same batch again (the first record), not the next one.
    let records = req.topic_data[0].partition_data[0].records.clone().unwrap();
    let batch = crate::protocol::records::Batches::new(records, Default::default())
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(batch.record_count, 1);
    assert_eq!(p.queued_records(), 3);
}

#[test]
fn idempotent_batches_keep_their_sequence_across_retries() {
    let now = Instant::now();
    let config = ProducerConfig {
        batch_max_records: 2,
        ..ProducerConfig::default()
    };
    let mut p = producer(config, true);
    assert_eq!(p.poll_init_producer_id(), Some((-1, -1)));
    let response = InitProducerIdResponse {
        producer_id: 42,
        producer_epoch: 3,
        ..Default::default()
    };
    p.handle_init_producer_id(now, Ok(&response)).unwrap();
    for _ in 0..4 {
        p.produce(now, &record(0)).unwrap();
    }
    let sequence = |req: &ProduceRequest| {
        let records = req.topic_data[0].partition_data[0].records.clone().unwrap();
        let b = crate::protocol::records::Batches::new(records, Default::default())
            .next()
            .unwrap()
            .unwrap();
        (b.producer_id, b.producer_epoch, b.base_sequence)
    };
    let (r1, t1) = p.poll_request(now, 1, &[0], 11).unwrap();
    let (r2, t2) = p.poll_request(now, 1, &[0], 11).unwrap();
    assert_eq!(sequence(&r1), (42, 3, 0));
    assert_eq!(sequence(&r2), (42, 3, 2));
    let error = Error::timeout("Produce");
    p.handle_response(now, t1, Err(&error));
    p.handle_response(now, t2, Err(&error));
    // The partition waits for the later of the two backoffs.
    let mut again = None;
    let mut at = now;
    for _ in 0..3 {
        at = p.poll_timeout().unwrap();
        p.handle_timeout(at);
        again = p.poll_request(at, 1, &[0], 11);
        if again.is_some() {
            break;
        }
    }
    let (again, _) = again.unwrap();
    assert_eq!(
        again.topic_data[0].partition_data[0].records,
        r1.topic_data[0].partition_data[0].records
    );
    // Recovering: the second goes only once the first is settled.
    assert!(p.poll_request(at, 1, &[0], 11).is_none());
}

/// An idempotent producer with identity (42, 3) whose batches hold one record each.
fn idempotent_one_per_batch() -> Producer {
    let config = ProducerConfig {
        batch_max_records: 1,
        ..ProducerConfig::default()
    };
    let mut p = producer(config, true);
    assert_eq!(p.poll_init_producer_id(), Some((-1, -1)));
    let response = InitProducerIdResponse {
        producer_id: 42,
        producer_epoch: 3,
        ..Default::default()
    };
    p.handle_init_producer_id(Instant::now(), Ok(&response))
        .unwrap();
    p
}

/// A Produce response for partition 0 of "t".
fn answer(code: Option<ErrorCode>, base_offset: i64) -> ProduceResponse {
    use crate::protocol::messages::produce_response::{
        PartitionProduceResponse, TopicProduceResponse,
    };
    ProduceResponse {
        responses: vec![TopicProduceResponse {
            name: "t".into(),
            partition_responses: vec![PartitionProduceResponse {
                index: 0,
                error_code: code.map_or(0, ErrorCode::code),
                base_offset,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// A report as the tests compare it: first record, and offset or (code, possibly written).
type Outcome = (u64, Result<i64, (Option<ErrorCode>, bool)>);

fn reports(p: &mut Producer) -> Vec<Outcome> {
    std::iter::from_fn(|| p.poll_report())
        .map(|r| {
            let result = r.result.map_err(|e| (e.error.code(), e.possibly_persisted));
            (r.first, result)
        })
        .collect()
}

/// Two one-record batches of partition 0 in flight, in order.
fn two_in_flight(p: &mut Producer, now: &mut Instant) -> (ProduceToken, ProduceToken) {
    for _ in 0..2 {
        p.produce(*now, &record(0)).unwrap();
    }
    let (_, first) = next_request(p, now).unwrap();
    let (_, second) = next_request(p, now).unwrap();
    (first, second)
}

/// Waits out every backoff, then takes the next request of partition 0.
fn next_request(p: &mut Producer, now: &mut Instant) -> Option<(ProduceRequest, ProduceToken)> {
    for _ in 0..8 {
        if let Some(r) = p.poll_request(*now, 1, &[0], 11) {
            return Some(r);
        }
        match p.poll_timeout() {
            Some(t) => {
                *now = t.max(*now);
                p.handle_timeout(*now);
            }
            None => return None,
        }
    }
    None
}

#[test]
fn a_duplicate_sequence_answer_is_an_acknowledgement() {
    let mut now = Instant::now();
    let mut p = idempotent_one_per_batch();
    p.produce(now, &record(0)).unwrap();
    let (_, token) = next_request(&mut p, &mut now).unwrap();
    p.handle_response(
        now,
        token,
        Ok(&answer(Some(ErrorCode::DuplicateSequenceNumber), 7)),
    );
    assert_eq!(reports(&mut p), vec![(0, Ok(7))]);
}

#[test]
fn out_of_order_behind_an_unsettled_batch_is_retried_after_it() {
    let mut now = Instant::now();
    let mut p = idempotent_one_per_batch();
    let (first, second) = two_in_flight(&mut p, &mut now);
    // The first was refused (leader moved); the second, behind the gap, out of order.
    p.handle_response(
        now,
        first,
        Ok(&answer(Some(ErrorCode::NotLeaderOrFollower), -1)),
    );
    p.handle_response(
        now,
        second,
        Ok(&answer(Some(ErrorCode::OutOfOrderSequenceNumber), -1)),
    );
    assert_eq!(reports(&mut p), vec![], "both go again");
    assert!(p.producer_id_and_epoch().is_some(), "no epoch bump");
    // The first goes alone, then the second: same sequences as before.
    let (r1, t1) = next_request(&mut p, &mut now).unwrap();
    assert!(
        p.poll_request(now, 1, &[0], 11).is_none(),
        "one at a time while recovering"
    );
    p.handle_response(now, t1, Ok(&answer(None, 10)));
    let (r2, t2) = next_request(&mut p, &mut now).unwrap();
    p.handle_response(now, t2, Ok(&answer(None, 11)));
    assert_eq!(reports(&mut p), vec![(0, Ok(10)), (1, Ok(11))]);
    let sequence = |r: &ProduceRequest| {
        let records = r.topic_data[0].partition_data[0].records.clone().unwrap();
        crate::protocol::records::Batches::new(records, Default::default())
            .next()
            .unwrap()
            .unwrap()
            .base_sequence
    };
    assert_eq!((sequence(&r1), sequence(&r2)), (0, 1));
}

#[test]
fn a_refused_batch_fails_at_once_and_bumps_the_epoch() {
    let mut now = Instant::now();
    let mut p = idempotent_one_per_batch();
    let (first, second) = two_in_flight(&mut p, &mut now);
    p.handle_response(
        now,
        first,
        Ok(&answer(Some(ErrorCode::MessageTooLarge), -1)),
    );
    assert_eq!(
        reports(&mut p),
        vec![(0, Err((Some(ErrorCode::MessageTooLarge), false)))],
        "not retriable: failed at once, not written"
    );
    // The second was sent after it, with the next sequence: refused as out of order.
    p.handle_response(
        now,
        second,
        Ok(&answer(Some(ErrorCode::OutOfOrderSequenceNumber), -1)),
    );
    assert_eq!(
        reports(&mut p),
        vec![],
        "the second waits for the new epoch"
    );
    assert!(p.producer_id_and_epoch().is_none(), "epoch bump wanted");
    assert_eq!(
        p.poll_init_producer_id(),
        Some((42, 3)),
        "KIP-360: bump this id"
    );
    let bumped = InitProducerIdResponse {
        producer_id: 42,
        producer_epoch: 4,
        ..Default::default()
    };
    p.handle_init_producer_id(now, Ok(&bumped)).unwrap();
    let (r, t) = next_request(&mut p, &mut now).unwrap();
    let records = r.topic_data[0].partition_data[0].records.clone().unwrap();
    let b = crate::protocol::records::Batches::new(records, Default::default())
        .next()
        .unwrap()
        .unwrap();
    assert_eq!((b.producer_epoch, b.base_sequence), (4, 0), "re-sealed");
    p.handle_response(now, t, Ok(&answer(None, 20)));
    assert_eq!(reports(&mut p), vec![(1, Ok(20))]);
}

#[test]
fn after_an_epoch_bump_a_batch_that_may_have_been_written_fails_rather_than_repeat() {
    let mut now = Instant::now();
    let mut p = idempotent_one_per_batch();
    let (first, second) = two_in_flight(&mut p, &mut now);
    // Both lost with the connection: each may have been written.
    let cut = Error::Transport(crate::error::TransportError::closed("cut"));
    p.handle_response(now, first, Err(&cut));
    p.handle_response(now, second, Err(&cut));
    // The first goes again; the broker has lost the producer's state.
    let (_, again) = next_request(&mut p, &mut now).unwrap();
    p.handle_response(
        now,
        again,
        Ok(&answer(Some(ErrorCode::UnknownProducerId), -1)),
    );
    assert_eq!(p.poll_init_producer_id(), Some((42, 3)));
    let bumped = InitProducerIdResponse {
        producer_id: 42,
        producer_epoch: 4,
        ..Default::default()
    };
    p.handle_init_producer_id(now, Ok(&bumped)).unwrap();
    // Sent again under the new epoch they could be written twice: both fail, possibly
    // written, naming the cause.
    assert_eq!(
        reports(&mut p),
        vec![
            (0, Err((Some(ErrorCode::UnknownProducerId), true))),
            (1, Err((Some(ErrorCode::UnknownProducerId), true)))
        ]
    );
    assert_eq!(p.queued_records(), 0);
}

#[test]
fn a_batch_in_flight_past_its_delivery_deadline_is_settled_by_its_answer() {
    let mut now = Instant::now();
    let config = ProducerConfig {
        batch_max_records: 1,
        delivery_timeout: Duration::from_secs(1),
        enable_idempotence: Some(false),
        ..ProducerConfig::default()
    };
    let mut p = producer(config, false);
    p.produce(now, &record(0)).unwrap();
    let (_, token) = next_request(&mut p, &mut now).unwrap();
    now += Duration::from_secs(2);
    p.handle_timeout(now);
    assert_eq!(reports(&mut p), vec![], "in flight: its answer decides");
    p.handle_response(now, token, Ok(&answer(None, 5)));
    assert_eq!(reports(&mut p), vec![(0, Ok(5))]);
}

#[test]
fn a_queued_batch_past_its_delivery_deadline_fails_not_written() {
    let now = Instant::now();
    let config = ProducerConfig {
        delivery_timeout: Duration::from_secs(1),
        enable_idempotence: Some(false),
        ..ProducerConfig::default()
    };
    let mut p = producer(config, false);
    p.produce(now, &record(0)).unwrap();
    let later = now + Duration::from_secs(1);
    p.handle_timeout(later);
    assert_eq!(reports(&mut p), vec![(0, Err((None, false)))]);
    assert_eq!(p.queued_records(), 0);
    assert!(p.poll_timeout().is_none_or(|t| t > later), "timer contract");
}

#[test]
fn without_idempotence_retries_stop_at_max_retries() {
    let mut now = Instant::now();
    let config = ProducerConfig {
        max_retries: 2,
        enable_idempotence: Some(false),
        ..ProducerConfig::default()
    };
    let mut p = producer(config, false);
    p.produce(now, &record(0)).unwrap();
    p.flush();
    for _ in 0..3 {
        let (_, t) = next_request(&mut p, &mut now).unwrap();
        p.handle_response(now, t, Ok(&answer(Some(ErrorCode::NotEnoughReplicas), -1)));
    }
    assert_eq!(
        reports(&mut p),
        vec![(0, Err((Some(ErrorCode::NotEnoughReplicas), false)))]
    );
}
