//! The client's timer table: one entry per timer owner (a connection, a producer, an
//! operation, the client's own bookkeeping), ordered by instant, so that the next timer
//! is found in O(log n) and an owner's timer is moved in O(log n).
//!
//! Owners' entries are written where their timers change (see `Client::sync_*`). An
//! entry may be earlier than its owner's real timer (a wake-up that finds nothing due
//! re-syncs it), never later: a later entry would be a stall.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use super::types::{ConnectionHandle, OpId};
use crate::consumer::ConsumerId;
use crate::producer::machine::ProducerId;

/// Who owns a timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum TimerKey {
    /// The client's own timers: a drive asked for, reconnect backoffs while something
    /// waits, the metadata age and refresh rate limit, ZooKeeper, parked requests.
    Client,
    /// A connection: connecting, request deadlines, the pin expiry of an idle one.
    Conn(ConnectionHandle),
    /// An operation's deadline.
    Op(OpId),
    /// A producer's linger, retry, delivery and InitProducerId timers.
    Producer(ProducerId),
    /// A consumer's timers (backoffs of its partitions).
    Consumer(ConsumerId),
}

#[derive(Debug, Default)]
pub(super) struct Timers {
    by_key: BTreeMap<TimerKey, Instant>,
    queue: BTreeSet<(Instant, TimerKey)>,
}

impl Timers {
    /// Sets (or with `None` removes) `key`'s timer.
    pub(super) fn set(&mut self, key: TimerKey, at: Option<Instant>) {
        match at {
            Some(at) => {
                if let Some(old) = self.by_key.insert(key, at) {
                    if old == at {
                        return;
                    }
                    self.queue.remove(&(old, key));
                }
                self.queue.insert((at, key));
            }
            None => {
                if let Some(old) = self.by_key.remove(&key) {
                    self.queue.remove(&(old, key));
                }
            }
        }
    }

    /// Moves `key`'s timer to `at` if that is earlier (or it has none).
    pub(super) fn lower(&mut self, key: TimerKey, at: Instant) {
        match self.by_key.get(&key) {
            Some(old) if *old <= at => {}
            _ => self.set(key, Some(at)),
        }
    }

    /// The earliest timer.
    pub(super) fn next(&self) -> Option<Instant> {
        self.queue.first().map(|(t, _)| *t)
    }

    /// `key`'s timer.
    #[cfg(test)]
    pub(super) fn get(&self, key: TimerKey) -> Option<Instant> {
        self.by_key.get(&key).copied()
    }

    pub(super) fn clear(&mut self) {
        self.by_key.clear();
        self.queue.clear();
    }

    pub(super) fn len(&self) -> usize {
        self.by_key.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_next_timer_follows_moves_and_removals() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut timers = Timers::default();
        timers.set(TimerKey::Client, Some(at(30)));
        timers.set(TimerKey::Op(OpId(1)), Some(at(10)));
        timers.set(TimerKey::Op(OpId(2)), Some(at(10)));
        assert_eq!(timers.next(), Some(at(10)));
        timers.set(TimerKey::Op(OpId(1)), Some(at(40)));
        assert_eq!(timers.next(), Some(at(10)));
        timers.set(TimerKey::Op(OpId(2)), None);
        assert_eq!(timers.next(), Some(at(30)));
        assert_eq!(timers.len(), 2);
        timers.lower(TimerKey::Client, at(40));
        assert_eq!(timers.get(TimerKey::Client), Some(at(30)));
        timers.lower(TimerKey::Client, at(20));
        assert_eq!(timers.next(), Some(at(20)));
        timers.set(TimerKey::Client, None);
        timers.set(TimerKey::Op(OpId(1)), None);
        assert_eq!((timers.next(), timers.len()), (None, 0));
    }
}
