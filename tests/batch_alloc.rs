//! Appending a record to a producer batch allocates nothing once the batch's buffer has
//! grown to its size: counted with a global allocator, not claimed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use grete::producer::{BatchBuilder, RecordFormat};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn appending_to_a_recycled_batch_does_not_allocate() {
    let value = [0x5a_u8; 100];
    let headers = [("trace", Some(&b"abc"[..]))];
    for format in [
        RecordFormat::MessageSetV0,
        RecordFormat::MessageSetV1,
        RecordFormat::RecordBatch,
    ] {
        let with_headers: &[(&str, Option<&[u8]>)] = match format {
            RecordFormat::RecordBatch => &headers,
            _ => &[],
        };
        let mut batch = BatchBuilder::new(format);
        let fill = |batch: &mut BatchBuilder| {
            for i in 0..10_000i64 {
                let key = (i as u32).to_be_bytes();
                batch
                    .append(
                        1_700_000_000_000 + i,
                        Some(&key),
                        Some(&value),
                        with_headers,
                    )
                    .unwrap();
            }
        };
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        fill(&mut batch);
        // The first fill grows the buffer: the counter sees it.
        assert!(ALLOCATIONS.load(Ordering::Relaxed) > before);
        batch.reset(format);
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        fill(&mut batch);
        let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
        assert_eq!(
            allocations, 0,
            "{format:?}: 10,000 appends allocated {allocations} times"
        );
        assert_eq!(batch.record_count(), 10_000);
    }
}
