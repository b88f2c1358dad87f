//! read_committed: which fetched batches belong to aborted transactions.
//!
//! A Fetch response (v4+, read_committed) lists the aborted transactions overlapping the
//! fetched range as (producer id, first offset). Walking the batches in offset order, a
//! producer's transaction counts as aborted from its first offset until that producer's
//! next control batch (its abort marker); its transactional batches in between are
//! dropped. Control batches themselves are never delivered.

use crate::protocol::messages::fetch_response::AbortedTransaction;
use crate::protocol::records::Batch;

/// The aborted-transaction state of one partition's fetched records.
#[derive(Debug, Default)]
pub(super) struct AbortedFilter {
    /// (first offset, producer id), sorted; `next` indexes the first not yet open.
    pending: Vec<(i64, i64)>,
    next: usize,
    /// Producers whose aborted transaction is open at the current batch.
    open: Vec<i64>,
}

impl AbortedFilter {
    /// The filter for a response's list (`None`: nothing is aborted).
    pub(super) fn new(aborted: Option<&[AbortedTransaction]>) -> Self {
        let mut pending: Vec<(i64, i64)> = aborted
            .unwrap_or_default()
            .iter()
            .map(|a| (a.first_offset, a.producer_id))
            .collect();
        pending.sort_unstable();
        AbortedFilter {
            pending,
            next: 0,
            open: Vec::new(),
        }
    }

    /// Whether `batch` is to be skipped: a control batch (which closes its producer's
    /// aborted transaction), or a transactional batch of an aborted transaction.
    pub(super) fn skip(&mut self, batch: &Batch) -> bool {
        while let Some(&(first, producer)) = self.pending.get(self.next) {
            if first > batch.last_offset {
                break;
            }
            if !self.open.contains(&producer) {
                self.open.push(producer);
            }
            self.next += 1;
        }
        if batch.control {
            self.open.retain(|p| *p != batch.producer_id);
            return true;
        }
        batch.transactional && self.open.contains(&batch.producer_id)
    }
}
