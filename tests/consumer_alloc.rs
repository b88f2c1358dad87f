//! Taking fetched batches and iterating their records allocates nothing per record:
//! batches are fetched through the client from the mock cluster, then every allocation on
//! this thread is counted while the application takes each batch from the consumer and
//! reads every record's offset, timestamp, key, value and headers.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use grete::config::BrokerVersion;
use grete::consumer::{ConsumerConfig, OffsetSpec};
use grete::mock::sim::{Sim, SimConfig};
use grete::mock::MockConfig;
use grete::protocol::records::{Header, Record};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const BATCHES: i64 = 20;
const PER_BATCH: i64 = 500;

#[test]
fn iterating_fetched_batches_allocates_nothing_per_record() {
    let cluster = MockConfig::new(1).with_topic("t", 1, 1).with_seed(1);
    let mut sim = Sim::new(cluster, SimConfig::seeded(1), |c| {
        c.broker_version = BrokerVersion::parse("2.8").unwrap();
    })
    .unwrap();
    let op = sim.client.update_cluster(sim.now());
    sim.wait_op(op).unwrap().unwrap();
    for b in 0..BATCHES {
        let records: Vec<Record> = (0..PER_BATCH)
            .map(|i| Record {
                offset: i,
                timestamp: 1_700_000_000_000 + i,
                key: Some(format!("k{b}-{i}").into()),
                value: Some(vec![0x5a; 100].into()),
                headers: vec![Header {
                    key: "trace".into(),
                    value: Some("abc".into()),
                }],
                ..Record::default()
            })
            .collect();
        let now = sim.now();
        sim.cluster.append_records(now, "t", 0, &records).unwrap();
    }
    let now = sim.now();
    let config = ConsumerConfig {
        queued_max_messages: 100_000,
        ..ConsumerConfig::default()
    };
    let id = sim.client.add_consumer(now, config).unwrap();
    sim.client
        .assign(now, id, "t", 0, OffsetSpec::Offset(0))
        .unwrap();
    let total = (BATCHES * PER_BATCH) as usize;
    sim.run_until(|sim| sim.client.consumer(id).unwrap().buffered_messages() >= total)
        .unwrap();
    sim.run_for(Duration::from_millis(10)).unwrap();

    let mut records = 0usize;
    let mut checksum = 0u64;
    let now = sim.now();
    COUNTING.with(|c| c.set(true));
    while let Some(batch) = sim.client.poll_batch(now, id) {
        for r in batch.records() {
            let r = r.unwrap();
            checksum = checksum
                .wrapping_add(r.offset as u64)
                .wrapping_add(r.timestamp as u64)
                .wrapping_add(r.key.map_or(0, <[u8]>::len) as u64)
                .wrapping_add(r.value.map_or(0, <[u8]>::len) as u64);
            for (k, v) in r.headers {
                checksum = checksum.wrapping_add((k.len() + v.map_or(0, <[u8]>::len)) as u64);
            }
            records += 1;
        }
    }
    COUNTING.with(|c| c.set(false));
    let allocations = ALLOCATIONS.load(Ordering::Relaxed);
    assert_eq!(records, total);
    assert!(checksum > 0);
    assert_eq!(
        allocations, 0,
        "{allocations} allocations taking {BATCHES} batches and reading {records} records"
    );
}
