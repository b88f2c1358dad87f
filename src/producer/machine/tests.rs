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
