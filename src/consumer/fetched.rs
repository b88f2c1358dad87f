//! A fetched batch as the application receives it: the decoded batch (sharing the Fetch
//! response's buffer: one reference count per batch) with the partition it came from and
//! the first offset to deliver, and a borrowing iterator over its records.

use std::sync::Arc;

use crate::protocol::records::{Batch, RecordRef, RecordRefs};
use crate::protocol::DecodeError;

/// One batch of fetched records of one partition, handed out by
/// [`Consumer::poll_batch`](super::Consumer::poll_batch) in offset order per partition.
///
/// Iterating [`records`](Self::records) allocates nothing per record (uncompressed
/// batches; a compressed one was decompressed once, when it was fetched): keys, values
/// and headers are borrowed from the batch.
#[derive(Debug, Clone)]
pub struct FetchedBatch {
    pub(super) topic: Arc<str>,
    pub(super) partition: i32,
    pub(super) batch: Batch,
    pub(super) first_offset: i64,
    pub(super) size: usize,
    pub(super) epoch: u64,
}

impl FetchedBatch {
    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The topic, shared: cloning it is a reference count (for owned messages).
    pub fn topic_shared(&self) -> &Arc<str> {
        &self.topic
    }

    /// The partition.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// The decoded batch (its header fields: format, compression, producer id...).
    pub fn batch(&self) -> &Batch {
        &self.batch
    }

    /// The first offset delivered: records below it (a batch or compressed wrapper that
    /// starts before the position fetched from) are skipped by [`records`](Self::records).
    pub fn first_offset(&self) -> i64 {
        self.first_offset
    }

    /// The offset after this batch: the partition's position once it is taken.
    pub fn next_offset(&self) -> i64 {
        self.batch.next_offset()
    }

    /// The bytes the batch counts against `queued_max_bytes` (its size as fetched).
    pub fn size(&self) -> usize {
        self.size
    }

    /// The records at or after [`first_offset`](Self::first_offset), borrowed from the
    /// batch. Yields `Err` once and ends on a malformed record.
    pub fn records(&self) -> FetchedRecords<'_> {
        FetchedRecords {
            inner: self.batch.record_refs(),
            from: self.first_offset,
        }
    }
}

/// The records of a [`FetchedBatch`], borrowed from it.
#[derive(Debug, Clone)]
pub struct FetchedRecords<'a> {
    inner: RecordRefs<'a>,
    from: i64,
}

impl<'a> Iterator for FetchedRecords<'a> {
    type Item = Result<RecordRef<'a>, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.inner.next()? {
                Ok(r) if r.offset < self.from => continue,
                other => return Some(other),
            }
        }
    }
}

impl std::iter::FusedIterator for FetchedRecords<'_> {}
