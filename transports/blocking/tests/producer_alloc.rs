//! The producer's hot path allocates nothing per record, counted with a global allocator,
//! not claimed: `try_send` (and `send` when there is room) takes the core's lock, appends
//! the record to its partition's open batch (`Client::produce` → `Producer::produce` →
//! `BatchBuilder::append`) and at most wakes the driver (a flag and a waker). Against the
//! mock cluster served over TCP on 127.0.0.1.
//!
//! Only the sending thread's allocations count (a thread-local flag, set around the
//! measured loop): the driver, the connection threads and the mock brokers allocate for
//! requests and responses, per batch, and are not the hot path.

mod common;
use common::{client, MockServer};

use std::thread;
use std::time::{Duration, Instant};

use grete_blocking::{ProduceError, Producer, ProducerConfig, Record};

#[path = "../../testsupport/alloc.rs"]
mod alloc;

const WARM_UP: u32 = 20_000;
const TRY_SEND: u32 = 50_000;
const SEND: u32 = 20_000;

/// The longest the whole test may take (a safety net, not a measurement).
const LIMIT: Duration = Duration::from_secs(240);

/// Sends records `from..to` (100-byte values, 4-byte keys), with `try_send` (waiting 1 ms
/// whenever the queue is full) or with `send`; returns how many times this thread
/// allocated meanwhile and whether the queue was ever full.
fn counted(producer: &Producer, from: u32, to: u32, blocking: bool, end: Instant) -> (u64, bool) {
    let value = [0x5a_u8; 100];
    let mut full = false;
    let (allocations, ()) = alloc::counting(|| {
        for i in from..to {
            let key = i.to_be_bytes();
            let record = Record::keyed(&key, &value);
            if blocking {
                let _ = producer.send(record).expect("send");
                continue;
            }
            loop {
                match producer.try_send(record) {
                    Ok(_) => break,
                    Err(ProduceError::QueueFull { .. }) => {
                        full = true;
                        assert!(Instant::now() < end, "the queue stays full");
                        thread::sleep(Duration::from_millis(1));
                    }
                    Err(e) => panic!("try_send: {e}"),
                }
            }
        }
    });
    (allocations, full)
}

/// The assertion: at most one allocation per 1,000 records on the sending thread. One
/// allocation per record would count 50,000 (or 20,000). The warm-up runs until the queue
/// was full at least once: with one partition, batches of exactly 100 records (closed
/// when full, never by linger) and at most 5,000 records waiting, that is the most batch
/// buffers ever in use (50, within the pool of 64 recycled ones), each grown to a full
/// batch, and the longest the batch queue and timer deques get. The bound leaves room
/// only for the one growth the warm-up may not reach (the list of waiters for room, if
/// `send` never had to wait before). The figures measured are printed (0 and 0 on an
/// idle machine).
#[test]
fn sending_a_record_allocates_nothing_in_steady_state() {
    let end = Instant::now() + LIMIT;
    let server = MockServer::start(1, |c| c.with_topic("t", 1, 1));
    let client = client(&server);
    let topic = client.topic("t").expect("topic");
    let producer = topic
        .producer(ProducerConfig {
            linger: Duration::from_secs(60),
            batch_max_records: 100,
            max_queued_messages: 5_000,
            ..ProducerConfig::default()
        })
        .expect("producer");
    // Warm-up: the buffers, the pool and the queues grow to their size, and the thread's
    // waker for `send` is made.
    let mut sent = 0;
    let mut was_full = false;
    while sent < WARM_UP || !was_full {
        let (allocations, full) = counted(&producer, sent, sent + 1000, false, end);
        assert!(sent > 0 || allocations > 0, "the counter sees the warm-up");
        was_full |= full;
        sent += 1000;
    }
    let _ = counted(&producer, sent, sent + 1000, true, end);
    sent += 1000;

    let (try_send, _) = counted(&producer, sent, sent + TRY_SEND, false, end);
    sent += TRY_SEND;
    let (send, _) = counted(&producer, sent, sent + SEND, true, end);
    sent += SEND;
    println!(
        "allocations on the sending thread: {try_send} for {TRY_SEND} try_send, {send} for {SEND} send"
    );
    assert!(
        try_send * 1000 <= u64::from(TRY_SEND),
        "{try_send} allocations for {TRY_SEND} records sent with try_send"
    );
    assert!(
        send * 1000 <= u64::from(SEND),
        "{send} allocations for {SEND} records sent with send"
    );

    // Every record is delivered, once.
    assert_eq!(producer.close(Duration::from_secs(60)), 0);
    let written = server.with_cluster(|c, _| c.records("t", 0).len());
    assert_eq!(written, sent as usize);
    client.close();
}
