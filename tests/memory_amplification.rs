//! Issue #6, item 7: how much memory a response makes the client hold, per byte on the wire.
//!
//! A counting allocator (per thread, so that tests running in parallel do not disturb each
//! other) measures the heap bytes a decoded response holds, and those the metadata cache
//! holds after applying it, for crafted responses built to amplify: many unknown tagged
//! fields, many empty compact strings, many partitions. Each test prints its factor (run
//! with `--nocapture`): these are the figures the README gives.

// A test may read the clock (the core's clippy rule is for src/).
#![allow(clippy::disallowed_methods)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use bytes::Bytes;
use grete::cluster::Cluster;
use grete::protocol::header::decode_response;
use grete::protocol::messages::{ListGroupsRequest, MetadataRequest};
use grete::protocol::primitives::{
    put_i16, put_i32, put_unsigned_varint, MAX_DECODED_BYTES_PER_WIRE_BYTE,
    MAX_UNKNOWN_TAGGED_FIELDS,
};
use grete::protocol::DecodeError;

struct Counting;

thread_local! {
    /// Bytes allocated minus bytes freed by this thread.
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    // `try_with`: the allocator also runs while thread-locals are torn down.
    let _ = LIVE.try_with(|live| live.set(live.get() + delta));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        System.dealloc(ptr, layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.with(Cell::get)
}

/// Runs `f` and returns its result with the heap bytes it still holds. (The frame a
/// decoder reads is allocated before and freed after: it is not counted.)
fn held<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = live();
    let value = f();
    let after = live();
    (value, usize::try_from(after - before).unwrap_or(0))
}

/// A response frame (without its size prefix): correlation id, an empty tagged-field
/// section (response header v1), then `body`.
fn flexible_frame(body: &[u8]) -> Bytes {
    let mut frame = Vec::new();
    put_i32(&mut frame, 1);
    put_unsigned_varint(&mut frame, 0);
    frame.extend_from_slice(body);
    Bytes::from(frame)
}

/// A tagged-field section of `n` empty fields with tags from 1000 up (none known).
fn unknown_tags(buf: &mut Vec<u8>, n: u32) {
    put_unsigned_varint(buf, n);
    for tag in 1000..1000 + n {
        put_unsigned_varint(buf, tag);
        put_unsigned_varint(buf, 0);
    }
}

/// A compact array length.
fn compact_len(buf: &mut Vec<u8>, n: usize) {
    put_unsigned_varint(buf, n as u32 + 1);
}

/// Metadata v12: `brokers` brokers each carrying `tags` unknown tagged fields, and one topic
/// of `partitions` partitions with no replicas.
fn metadata_v12(brokers: usize, tags: u32, partitions: usize) -> Bytes {
    let mut b = Vec::new();
    put_i32(&mut b, 0); // throttle_time_ms
    compact_len(&mut b, brokers);
    for id in 0..brokers {
        put_i32(&mut b, id as i32);
        compact_len(&mut b, 1);
        b.push(b'h'); // host "h"
        put_i32(&mut b, 9092);
        put_unsigned_varint(&mut b, 0); // rack: null
        unknown_tags(&mut b, tags);
    }
    put_unsigned_varint(&mut b, 0); // cluster_id: null
    put_i32(&mut b, 0); // controller_id
    compact_len(&mut b, 1); // topics
    put_i16(&mut b, 0);
    compact_len(&mut b, 1);
    b.push(b't'); // name "t"
    b.extend_from_slice(&[1; 16]); // topic_id
    b.push(0); // is_internal
    compact_len(&mut b, partitions);
    for p in 0..partitions {
        put_i16(&mut b, 0);
        put_i32(&mut b, p as i32);
        put_i32(&mut b, -1); // leader_id
        put_i32(&mut b, -1); // leader_epoch
        compact_len(&mut b, 0); // replica_nodes
        compact_len(&mut b, 0); // isr_nodes
        compact_len(&mut b, 0); // offline_replicas
        put_unsigned_varint(&mut b, 0); // tags
    }
    put_i32(&mut b, 0); // topic_authorized_operations
    put_unsigned_varint(&mut b, 0); // topic tags
    put_unsigned_varint(&mut b, 0); // response tags
    flexible_frame(&b)
}

fn report(what: &str, bytes: usize, wire: usize) -> f64 {
    let factor = bytes as f64 / wire as f64;
    eprintln!("{what}: {bytes} bytes held for {wire} on the wire: {factor:.2} per wire byte");
    factor
}

/// Unknown tagged fields were kept as 40-byte entries (tag and a `Bytes`) for 2 bytes on
/// the wire, in vectors grown by doubling: ~20-40 bytes held per byte read.
#[test]
fn unknown_tagged_fields_do_not_amplify_memory() {
    let frame = metadata_v12(2000, MAX_UNKNOWN_TAGGED_FIELDS as u32, 0);
    let wire = frame.len();
    let (body, bytes) = held(|| {
        decode_response::<MetadataRequest>(frame.clone(), 12)
            .unwrap()
            .1
    });
    assert_eq!(body.brokers.len(), 2000);
    assert_eq!(
        body.brokers[0].unknown_tagged_fields.len(),
        MAX_UNKNOWN_TAGGED_FIELDS
    );
    let factor = report("unknown tagged fields", bytes, wire);
    // The brokers themselves, and each section's fields in one allocation of their size.
    assert!(factor < 2.0, "{factor:.2} bytes held per wire byte");
}

/// One section may not hold more unknown fields than the budget: each costs work to keep
/// and to re-encode, and no Kafka version adds that many at once.
#[test]
fn too_many_unknown_tagged_fields_in_one_section_are_an_error() {
    let frame = metadata_v12(1, MAX_UNKNOWN_TAGGED_FIELDS as u32 + 1, 0);
    assert_eq!(
        decode_response::<MetadataRequest>(frame, 12).unwrap_err(),
        DecodeError::Malformed("too many unknown tagged fields")
    );
}

/// Empty compact strings take one byte on the wire and 24 bytes in memory. The worst
/// array element of any message (the generated test `memory::
/// decoded_array_elements_hold_bounded_bytes_per_wire_byte` lists them) is ListGroups v3's
/// group: two empty strings and an empty tagged-field section, 3 bytes on the wire.
/// Vectors longer than the preallocation grew by doubling and kept up to twice that.
#[test]
fn empty_compact_strings_hold_bounded_memory() {
    let groups = 1500;
    let mut b = Vec::new();
    put_i32(&mut b, 0); // throttle_time_ms
    put_i16(&mut b, 0); // error_code
    compact_len(&mut b, groups);
    for _ in 0..groups {
        compact_len(&mut b, 0); // group_id ""
        compact_len(&mut b, 0); // protocol_type ""
        put_unsigned_varint(&mut b, 0); // tags
    }
    put_unsigned_varint(&mut b, 0);
    let frame = flexible_frame(&b);
    let wire = frame.len();
    let (body, bytes) = held(|| {
        decode_response::<ListGroupsRequest>(frame.clone(), 3)
            .unwrap()
            .1
    });
    assert_eq!(body.groups.len(), groups);
    let factor = report("empty compact strings (ListGroups v3)", bytes, wire);
    assert!(
        factor <= MAX_DECODED_BYTES_PER_WIRE_BYTE as f64,
        "{factor:.2} bytes held per wire byte"
    );
}

/// Metadata partitions: 18 bytes on the wire each at least, and what the response and
/// then the cluster cache hold for them.
#[test]
fn metadata_partitions_hold_bounded_memory() {
    let partitions = 1500;
    let frame = metadata_v12(1, 0, partitions);
    let wire = frame.len();
    let (body, bytes) = held(|| {
        decode_response::<MetadataRequest>(frame.clone(), 12)
            .unwrap()
            .1
    });
    assert_eq!(body.topics[0].partitions.len(), partitions);
    let decoded = report("metadata partitions, decoded", bytes, wire);
    assert!(decoded < 7.0, "{decoded:.2} bytes held per wire byte");
    let mut cluster = Cluster::new(Duration::from_secs(60), true);
    let ((), bytes) = held(|| cluster.apply(&body, true, Instant::now()));
    let cached = report("metadata partitions, in the cluster cache", bytes, wire);
    assert!(cached < 7.0, "{cached:.2} bytes held per wire byte");
    assert_eq!(cluster.topic("t").unwrap().partitions.len(), partitions);
}
