//! Which broker leads each of a consumer's partitions, as of one cluster generation.
//!
//! The per-broker paths (is a request ready for this broker, build its Fetch or its
//! ListOffsets) visit that broker's partitions only, and the client's drive visits
//! brokers, not partitions: with a thousand partitions, looking every partition's leader
//! up by name on each drive was most of the consumer's CPU. The index is rebuilt when the
//! cluster's generation or the assignment changes (O(partitions), once per metadata
//! update), never per drive.

use std::collections::BTreeMap;

/// Who leads a partition: the client's cluster cache, by topic name and partition.
pub type LeaderOf<'a> = &'a dyn Fn(&str, i32) -> Option<i32>;

/// The partitions one broker leads, by index in the consumer.
#[derive(Debug, Default)]
pub(super) struct Led {
    pub(super) parts: Vec<usize>,
    /// Where the next fetch from this broker starts looking, so that every partition gets
    /// to be first in turn.
    pub(super) cursor: usize,
}

#[derive(Debug, Default)]
pub(super) struct Leaders {
    /// The cluster generation it was built from; `None` once the assignment changed.
    generation: Option<u64>,
    by_broker: BTreeMap<i32, Led>,
    /// Per partition index, its leader.
    of: Vec<Option<i32>>,
    /// Partitions whose leader is unknown.
    leaderless: Vec<usize>,
}

impl Leaders {
    /// Whether it was built from `generation` and the current assignment.
    pub(super) fn is_current(&self, generation: u64) -> bool {
        self.generation == Some(generation)
    }

    /// The assignment changed: the next [`sync`](Self::sync) rebuilds.
    pub(super) fn invalidate(&mut self) {
        self.generation = None;
    }

    /// Rebuilds from `parts` (index, topic, partition) unless already current.
    pub(super) fn sync<'a>(
        &mut self,
        generation: u64,
        parts: impl Iterator<Item = (usize, &'a str, i32)>,
        leader_of: LeaderOf<'_>,
    ) {
        if self.is_current(generation) {
            return;
        }
        let mut cursors: BTreeMap<i32, usize> = (self.by_broker.iter())
            .map(|(b, led)| (*b, led.cursor))
            .collect();
        self.by_broker.clear();
        self.of.clear();
        self.leaderless.clear();
        for (i, topic, partition) in parts {
            if self.of.len() <= i {
                self.of.resize(i + 1, None);
            }
            match leader_of(topic, partition) {
                Some(b) => {
                    self.of[i] = Some(b);
                    self.by_broker.entry(b).or_default().parts.push(i);
                }
                None => self.leaderless.push(i),
            }
        }
        for (b, led) in &mut self.by_broker {
            led.cursor = cursors.remove(b).unwrap_or(0) % led.parts.len().max(1);
        }
        self.generation = Some(generation);
    }

    /// Partition `i`'s leader.
    pub(super) fn of(&self, i: usize) -> Option<i32> {
        self.of.get(i).copied().flatten()
    }

    /// The partitions `broker` leads.
    pub(super) fn led(&self, broker: i32) -> Option<&Led> {
        self.by_broker.get(&broker)
    }

    pub(super) fn led_mut(&mut self, broker: i32) -> Option<&mut Led> {
        self.by_broker.get_mut(&broker)
    }

    /// The brokers leading any partition.
    pub(super) fn brokers(&self) -> impl Iterator<Item = i32> + '_ {
        self.by_broker.keys().copied()
    }

    /// The partitions without a known leader.
    pub(super) fn leaderless(&self) -> &[usize] {
        &self.leaderless
    }
}
