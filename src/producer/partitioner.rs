//! Choosing the partition of a record.
//!
//! A partitioner sees a record's key and the number of partitions of its topic, and answers
//! with an index into the topic's partitions **sorted by partition id** (`0..count`). It is
//! called once per record on the producer's hot path, so the built-in ones do no allocation
//! and constant work per key byte.
//!
//! | partitioner | keyed records | keyless records | compatible with |
//! | --- | --- | --- | --- |
//! | [`DefaultPartitioner`] (the default) | murmur2 of the key | sticky | the Java client (keyed: `Utils.murmur2`, `toPositive(h) % n`) and librdkafka's `murmur2_random` |
//! | [`Murmur2`] | murmur2 of the key | round-robin | as above for keyed records |
//! | [`RoundRobin`] | round-robin | round-robin | PyKafka's default (`RandomPartitioner`, starting at index 1) |
//! | [`Sha1Hashing`] | SHA-1 of the key | round-robin | PyKafka's `hashing_partitioner` |
//! | [`Sticky`] | sticky | sticky | KIP-480 (the key is ignored) |
//!
//! "Sticky" keeps sending keyless records to one partition until the producer closes that
//! partition's batch, then moves on to another partition picked at random: batches fill up
//! instead of every partition getting a one-record batch (KIP-480).
//!
//! A custom partitioner implements [`Partitioner`].

use sha1::{Digest, Sha1};

use crate::rng::Rng;

/// Chooses the partition of each record.
pub trait Partitioner: Send {
    /// The partition for a record with this key: an index into the topic's partitions sorted
    /// by id, below `count`. `count` is never 0. An index at or above `count` is taken modulo
    /// `count`.
    fn partition(&mut self, key: Option<&[u8]>, count: usize) -> usize;

    /// The producer closed the open batch of partition `index` (it filled up or was sent).
    /// Partitioners that stick to a partition move on here; the default does nothing.
    fn batch_closed(&mut self, index: usize) {
        let _ = index;
    }
}

/// Kafka's murmur2 hash of `data`, exactly as the Java client's `Utils.murmur2` computes it
/// (seed `0x9747b28c`, little-endian 4-byte blocks, the tail mixed in byte by byte).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = blocks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition the Java client picks for a key: `toPositive(murmur2(key)) % count`
/// (`toPositive` clears the sign bit; it is not `abs`).
pub fn murmur2_partition(key: &[u8], count: usize) -> usize {
    (murmur2(key) & 0x7fff_ffff) as usize % count.max(1)
}

/// The partition PyKafka's `hashing_partitioner` picks for a key: the SHA-1 digest of the
/// key read as a 160-bit big-endian unsigned integer, modulo `count`.
pub fn sha1_partition(key: &[u8], count: usize) -> usize {
    let count = count.max(1) as u128;
    let digest = Sha1::digest(key);
    // Horner's rule on the big-endian bytes; the remainder stays below `count` < 2^64, so
    // `r * 256 + byte` fits in a u128.
    let r = digest
        .iter()
        .fold(0u128, |r, &b| (r * 256 + u128::from(b)) % count);
    r as usize
}

/// Round-robin over the partitions, whatever the key: PyKafka's default partitioner (named
/// `random` there), which starts at index 1.
#[derive(Debug, Clone, Default)]
pub struct RoundRobin {
    last: usize,
}

impl RoundRobin {
    /// Starts at index 1, as PyKafka does.
    pub fn new() -> RoundRobin {
        RoundRobin::default()
    }

    fn next(&mut self, count: usize) -> usize {
        self.last = (self.last + 1) % count;
        self.last
    }
}

impl Partitioner for RoundRobin {
    fn partition(&mut self, _key: Option<&[u8]>, count: usize) -> usize {
        self.next(count)
    }
}

/// PyKafka's `hashing_partitioner` for keyed records ([`sha1_partition`]), round-robin for
/// keyless ones (PyKafka refuses them).
#[derive(Debug, Clone, Default)]
pub struct Sha1Hashing {
    keyless: RoundRobin,
}

impl Partitioner for Sha1Hashing {
    fn partition(&mut self, key: Option<&[u8]>, count: usize) -> usize {
        match key {
            Some(key) => sha1_partition(key, count),
            None => self.keyless.next(count),
        }
    }
}

/// Java-compatible murmur2 for keyed records ([`murmur2_partition`]), round-robin for
/// keyless ones.
#[derive(Debug, Clone, Default)]
pub struct Murmur2 {
    keyless: RoundRobin,
}

impl Partitioner for Murmur2 {
    fn partition(&mut self, key: Option<&[u8]>, count: usize) -> usize {
        match key {
            Some(key) => murmur2_partition(key, count),
            None => self.keyless.next(count),
        }
    }
}

/// KIP-480: one partition for every record until its batch is closed, then another one,
/// picked at random among the others. The key is ignored.
#[derive(Debug, Clone)]
pub struct Sticky {
    rng: Rng,
    current: Option<usize>,
    /// The partition whose batch was just closed: the next pick avoids it.
    avoid: Option<usize>,
}

impl Sticky {
    /// A sticky partitioner whose random picks come from `seed` (the producer passes one
    /// drawn from the client's generator, so that simulations repeat).
    pub fn new(seed: u64) -> Sticky {
        Sticky {
            rng: Rng::new(seed),
            current: None,
            avoid: None,
        }
    }

    fn pick(&mut self, count: usize) -> usize {
        if let Some(p) = self.current.filter(|&p| p < count) {
            return p;
        }
        let p = match self.avoid.take() {
            Some(avoid) if avoid < count && count > 1 => {
                let p = self.rng.below(count as u64 - 1) as usize;
                if p >= avoid {
                    p + 1
                } else {
                    p
                }
            }
            _ => self.rng.below(count as u64) as usize,
        };
        self.current = Some(p);
        p
    }
}

impl Partitioner for Sticky {
    fn partition(&mut self, _key: Option<&[u8]>, count: usize) -> usize {
        self.pick(count)
    }

    fn batch_closed(&mut self, index: usize) {
        if self.current == Some(index) {
            self.current = None;
            self.avoid = Some(index);
        }
    }
}

/// The default: murmur2 of the key for keyed records (the same partition the Java client
/// and librdkafka's `murmur2_random` choose), sticky for keyless records (KIP-480).
#[derive(Debug, Clone)]
pub struct DefaultPartitioner {
    keyless: Sticky,
}

impl DefaultPartitioner {
    /// The default partitioner; `seed` drives the sticky picks.
    pub fn new(seed: u64) -> DefaultPartitioner {
        DefaultPartitioner {
            keyless: Sticky::new(seed),
        }
    }
}

impl Partitioner for DefaultPartitioner {
    fn partition(&mut self, key: Option<&[u8]>, count: usize) -> usize {
        match key {
            Some(key) => murmur2_partition(key, count),
            None => self.keyless.pick(count),
        }
    }

    fn batch_closed(&mut self, index: usize) {
        self.keyless.batch_closed(index);
    }
}

#[cfg(test)]
mod tests;
