//! Closing the shared core: what a driver does at shutdown, without a driver (the client
//! gets its metadata from the in-memory simulation first).

use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use grete::config::BrokerVersion;
use grete::mock::sim::{Sim, SimConfig};
use grete::mock::MockConfig;
use grete::producer::ProducerConfig;
use grete_facade::{ProducerHandle, Record, Shared};

struct Unused;

impl Wake for Unused {
    fn wake(self: Arc<Self>) {}
}

/// A shared core whose client has topic "t" (one partition) in its metadata, and the
/// instant the simulation reached.
fn shared() -> (Arc<Shared>, Instant) {
    let mut sim = Sim::new(
        MockConfig::new(1).with_topic("t", 1, 1),
        SimConfig::seeded(1),
        |c| c.broker_version = BrokerVersion::new(2, 8, 0),
    )
    .expect("sim");
    let op = sim.client.update_cluster(sim.now());
    sim.wait_op(op).expect("run").expect("metadata");
    let now = sim.now();
    (Shared::new(sim.client, || {}), now)
}

/// A producer whose batches linger for a minute: nothing is sent without the driver.
fn held(shared: &Arc<Shared>) -> ProducerHandle {
    let config = ProducerConfig {
        linger: Duration::from_secs(60),
        ..ProducerConfig::default()
    };
    ProducerHandle::start(shared, "t", config).expect("producer")
}

/// Regression: `Core::close` woke the waiters before the reports of the records that
/// `Client::close` failed were booked, so the report stream ended without them and a
/// record's outcome read "client closed" instead of its own failure.
#[test]
fn close_books_the_failures_of_closing_before_waking() {
    let (shared, now) = shared();
    let producer = held(&shared);
    let rid = producer
        .try_send(&Record::value(b"never sent"))
        .expect("queued");
    {
        // The driver's shutdown.
        let mut core = shared.lock();
        core.client.close(now);
        core.close();
    }
    let waker = Waker::from(Arc::new(Unused));
    let mut cx = Context::from_waker(&waker);
    let Poll::Ready(Some(report)) = producer.poll_report(&mut cx) else {
        panic!("the report of the record failed by closing is missing");
    };
    assert_eq!((report.first, report.count), (rid.sequence, 1));
    let Poll::Ready(Err(failed)) = producer.poll_delivery(&mut cx, rid) else {
        panic!("no outcome");
    };
    assert!(!failed.possibly_persisted, "it was never sent: {failed:?}");
    assert!(matches!(producer.poll_report(&mut cx), Poll::Ready(None)));
}

/// Regression: closing a producer booked every delivery report waiting in the client's
/// event queue into its own book, another producer's too: it counted their records as its
/// own failures and the other producer never learnt their outcome.
#[test]
fn closing_a_producer_books_other_producers_reports_in_their_books() {
    let (shared, now) = shared();
    let (a, b) = (held(&shared), held(&shared));
    let a_record = a.try_send(&Record::value(b"a")).expect("queued");
    for _ in 0..2 {
        b.try_send(&Record::value(b"b")).expect("queued");
    }
    // A report of producer a waits in the client's event queue (no driver drains it).
    shared.lock().client.remove_producer(now, a.id());
    assert_eq!(b.close(), 2, "b failed its own two records only");
    let waker = Waker::from(Arc::new(Unused));
    let mut cx = Context::from_waker(&waker);
    assert!(
        matches!(a.poll_delivery(&mut cx, a_record), Poll::Ready(Err(_))),
        "a's record has its outcome"
    );
    assert_eq!(a.failed_records(), 1);
}
