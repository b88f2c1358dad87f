//! Idempotent producers, as a broker checks them: InitProducerId hands out producer ids, and
//! each partition remembers, per producer id, its epoch, the last sequence number written
//! and the last five batches (Kafka's `ProducerStateManager` keeps as many), so that a
//! retried batch is recognised as a duplicate and a gap is refused.
//!
//! The rules (Kafka 2.x and later, for a producer without transactions):
//! - an epoch older than the one seen is fenced (`INVALID_PRODUCER_EPOCH`);
//! - a producer id the partition has never seen, or a newer epoch, must start at sequence 0
//!   (otherwise `UNKNOWN_PRODUCER_ID` for an unknown id, `OUT_OF_ORDER_SEQUENCE_NUMBER` for
//!   a new epoch);
//! - a batch equal to one of the last five (same first and last sequence) is a duplicate:
//!   answered without error with the offset it was first written at, and not written again;
//! - any other batch must start right after the last sequence (wrapping from `i32::MAX` to
//!   0), or it is `OUT_OF_ORDER_SEQUENCE_NUMBER`.

use std::collections::{BTreeMap, VecDeque};

use crate::protocol::ErrorCode;

/// How many recent batches a partition remembers per producer.
pub(crate) const RECENT_BATCHES: usize = 5;

/// A v2 batch's producer fields, as the broker reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchSeq {
    pub(crate) producer_id: i64,
    pub(crate) epoch: i16,
    pub(crate) first_seq: i32,
    pub(crate) count: i32,
}

impl BatchSeq {
    fn last_seq(&self) -> i32 {
        add_seq(self.first_seq, self.count - 1)
    }
}

/// Sequence arithmetic: sequences wrap from `i32::MAX` to 0.
pub(crate) fn add_seq(seq: i32, n: i32) -> i32 {
    ((i64::from(seq) + i64::from(n)) % (i64::from(i32::MAX) + 1)) as i32
}

/// What a partition remembers of one producer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProducerEntry {
    epoch: i16,
    last_seq: i32,
    /// (first sequence, last sequence, base offset) of the last batches, oldest first.
    recent: VecDeque<(i32, i32, i64)>,
}

/// The producers a partition has seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProducerStates {
    by_id: BTreeMap<i64, ProducerEntry>,
}

/// What to do with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SeqCheck {
    /// Write it.
    Append,
    /// Already written at this base offset: answer with it, write nothing.
    Duplicate(i64),
}

impl ProducerStates {
    /// Checks a batch against what the partition has seen.
    pub(crate) fn check(&self, b: &BatchSeq) -> Result<SeqCheck, ErrorCode> {
        let Some(e) = self.by_id.get(&b.producer_id) else {
            return if b.first_seq == 0 {
                Ok(SeqCheck::Append)
            } else {
                Err(ErrorCode::UnknownProducerId)
            };
        };
        if b.epoch < e.epoch {
            return Err(ErrorCode::InvalidProducerEpoch);
        }
        if b.epoch > e.epoch {
            return if b.first_seq == 0 {
                Ok(SeqCheck::Append)
            } else {
                Err(ErrorCode::OutOfOrderSequenceNumber)
            };
        }
        if let Some(&(_, _, base)) = e
            .recent
            .iter()
            .find(|(first, last, _)| *first == b.first_seq && *last == b.last_seq())
        {
            return Ok(SeqCheck::Duplicate(base));
        }
        if b.first_seq == add_seq(e.last_seq, 1) {
            Ok(SeqCheck::Append)
        } else {
            Err(ErrorCode::OutOfOrderSequenceNumber)
        }
    }

    /// Records a batch written at `base_offset` (after [`check`](Self::check) said
    /// [`SeqCheck::Append`]).
    pub(crate) fn record(&mut self, b: &BatchSeq, base_offset: i64) {
        let e = self.by_id.entry(b.producer_id).or_default();
        if b.epoch != e.epoch {
            e.recent.clear();
        }
        e.epoch = b.epoch;
        e.last_seq = b.last_seq();
        if e.recent.len() == RECENT_BATCHES {
            e.recent.pop_front();
        }
        e.recent.push_back((b.first_seq, b.last_seq(), base_offset));
    }

    /// The epoch and last sequence written by a producer, if it wrote here.
    pub(crate) fn last(&self, producer_id: i64) -> Option<(i16, i32)> {
        self.by_id.get(&producer_id).map(|e| (e.epoch, e.last_seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(first_seq: i32, count: i32) -> BatchSeq {
        BatchSeq {
            producer_id: 7,
            epoch: 0,
            first_seq,
            count,
        }
    }

    #[test]
    fn sequences_must_follow_on() {
        let mut s = ProducerStates::default();
        assert_eq!(s.check(&seq(3, 1)), Err(ErrorCode::UnknownProducerId));
        assert_eq!(s.check(&seq(0, 2)), Ok(SeqCheck::Append));
        s.record(&seq(0, 2), 100);
        assert_eq!(s.check(&seq(2, 5)), Ok(SeqCheck::Append));
        // A gap and a batch overlapping the last one are both out of order.
        assert_eq!(
            s.check(&seq(3, 1)),
            Err(ErrorCode::OutOfOrderSequenceNumber)
        );
        assert_eq!(
            s.check(&seq(1, 1)),
            Err(ErrorCode::OutOfOrderSequenceNumber)
        );
        assert_eq!(s.last(7), Some((0, 1)));
    }

    #[test]
    fn the_last_five_batches_are_duplicates() {
        let mut s = ProducerStates::default();
        for i in 0..6 {
            s.record(&seq(i * 10, 10), 1000 + i64::from(i));
        }
        // Batches 1..=5 are remembered; batch 0 fell out (it is now out of order).
        for i in 1..6 {
            assert_eq!(
                s.check(&seq(i * 10, 10)),
                Ok(SeqCheck::Duplicate(1000 + i64::from(i)))
            );
        }
        assert_eq!(
            s.check(&seq(0, 10)),
            Err(ErrorCode::OutOfOrderSequenceNumber)
        );
        // Same start, different length: not a duplicate.
        assert_eq!(
            s.check(&seq(50, 3)),
            Err(ErrorCode::OutOfOrderSequenceNumber)
        );
    }

    #[test]
    fn epochs_fence_and_restart_sequences() {
        let mut s = ProducerStates::default();
        let e1 = BatchSeq {
            epoch: 1,
            ..seq(0, 1)
        };
        s.record(&e1, 0);
        assert_eq!(s.check(&seq(1, 1)), Err(ErrorCode::InvalidProducerEpoch));
        let e2 = BatchSeq {
            epoch: 2,
            ..seq(5, 1)
        };
        assert_eq!(s.check(&e2), Err(ErrorCode::OutOfOrderSequenceNumber));
        let e2 = BatchSeq {
            epoch: 2,
            ..seq(0, 1)
        };
        assert_eq!(s.check(&e2), Ok(SeqCheck::Append));
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        // A producer that has written up to i32::MAX - 2.
        let mut s = ProducerStates::default();
        s.by_id.insert(
            7,
            ProducerEntry {
                epoch: 0,
                last_seq: i32::MAX - 2,
                recent: VecDeque::new(),
            },
        );
        let near_end = seq(i32::MAX - 1, 2);
        assert_eq!(s.check(&near_end), Ok(SeqCheck::Append));
        s.record(&near_end, 10);
        assert_eq!(s.last(7), Some((0, i32::MAX)));
        assert_eq!(s.check(&seq(0, 1)), Ok(SeqCheck::Append));
        assert_eq!(add_seq(i32::MAX, 1), 0);
    }
}
