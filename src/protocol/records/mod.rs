//! Kafka's record formats: the legacy message sets (magic 0 and 1, [`legacy`]) and record
//! batches (magic 2, [`batch`]), read through one reader and one [`Record`] type.
//!
//! # Reading
//!
//! [`Batches`] walks the raw `records` bytes of a Fetch (or Produce) partition. Both
//! layouts put the magic byte at offset 16 and the size of what follows at offset 8, so
//! each batch is framed before its format is looked at. Every legacy message counts as a
//! batch of its own (a compressed wrapper message is a batch of its inner messages). A
//! batch the broker cut short at the fetch size limit ends the iteration cleanly;
//! [`Batches::next_offset`] and [`Batches::truncated`] say where to go on.
//!
//! ```
//! # use grete::protocol::records::*;
//! # let mut buf = Vec::new();
//! # let r = Record { offset: 0, timestamp: 1, value: Some("v".into()), ..Record::default() };
//! # encode_record_batch(&mut buf, &BatchHeader::default(), &[r]).unwrap();
//! # let fetched = bytes::Bytes::from(buf);
//! let mut batches = Batches::new(fetched, DecodeLimits::default());
//! for batch in &mut batches {
//!     let batch = batch?;
//!     for record in batch.records() {
//!         let record = record?;
//!         println!("{} {:?}", record.offset, record.value);
//!     }
//! }
//! assert_eq!(batches.next_offset(), Some(1));
//! # Ok::<(), grete::protocol::DecodeError>(())
//! ```
//!
//! Decoding is lazy and zero-copy: keys, values and header values are slices of the input
//! (or of the decompressed batch), and records are parsed only as they are iterated.
//!
//! # Writing
//!
//! [`RecordBatchEncoder`] appends a v2 batch to a caller-owned `Vec<u8>` record by record
//! without allocating per record; [`encode_record_batch`] does it for a slice of
//! [`Record`]s. [`legacy::encode_message_set`] writes magic 0 and 1.

use bytes::Bytes;

use super::compression::Compression;
use super::error::DecodeError;

pub mod batch;
pub mod legacy;
mod read;

pub use batch::{
    encode_record_batch, BatchHeader, ControlRecord, ControlRecordType, RecordBatchEncoder,
};
pub use read::{next_fetch_offset, HeaderRefs, RecordRef, RecordRefs, Records};

/// The largest decompressed batch [`DecodeLimits::default`] accepts.
pub const DEFAULT_MAX_DECOMPRESSED_SIZE: usize = 64 << 20;

/// Limits that keep decoding bounded whatever the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecodeLimits {
    /// The most bytes one compressed batch (or legacy wrapper message) may decompress to.
    pub max_decompressed_size: usize,
    /// Whether to check each batch's (and legacy message's) checksum.
    pub verify_crc: bool,
    /// Whether [`Batches`] yields a run of consecutive whole uncompressed legacy messages
    /// (magic 0 and 1, same magic and attributes) as one batch instead of one batch per
    /// message: what a consumer wants (one hand-off per run, not per record). Off by
    /// default.
    pub message_runs: bool,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_decompressed_size: DEFAULT_MAX_DECOMPRESSED_SIZE,
            verify_crc: true,
            message_runs: false,
        }
    }
}

impl DecodeLimits {
    /// The default limits with a different decompression limit.
    pub fn with_max_decompressed_size(mut self, max: usize) -> Self {
        self.max_decompressed_size = max;
        self
    }

    /// The default limits with checksum verification on or off.
    pub fn with_verify_crc(mut self, verify: bool) -> Self {
        self.verify_crc = verify;
        self
    }

    /// These limits with runs of uncompressed legacy messages read as one batch each (see
    /// [`message_runs`](Self::message_runs)).
    pub fn with_message_runs(mut self, runs: bool) -> Self {
        self.message_runs = runs;
        self
    }
}

/// What a record's timestamp means.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum TimestampType {
    /// Set by the producer (attribute bit 3 clear).
    #[default]
    CreateTime,
    /// Set by the broker when it appended the batch (attribute bit 3 set).
    LogAppendTime,
    /// Message format v0 has no timestamps; the timestamp reads as -1.
    NoTimestamp,
}

/// A record header: a string key and a nullable value (record batch v2 only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Header {
    /// The header's key.
    pub key: String,
    /// The header's value; `None` is null.
    pub value: Option<Bytes>,
}

/// One record of any format.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Record {
    /// The record's absolute offset in its partition.
    pub offset: i64,
    /// Milliseconds since the epoch, or -1 if the format has none.
    pub timestamp: i64,
    /// What the timestamp means.
    pub timestamp_type: TimestampType,
    /// The key; `None` is null.
    pub key: Option<Bytes>,
    /// The value; `None` is null (a tombstone on a compacted topic).
    pub value: Option<Bytes>,
    /// The headers (always empty before magic 2). An empty `Vec` does not allocate.
    pub headers: Vec<Header>,
}

/// One batch of records, with the batch-level information of its header. Legacy messages
/// are batches too: an uncompressed one holds one record, a compressed wrapper its inner
/// messages; the fields they lack read as Kafka's "none" values (-1, false).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The offset of the first record (for legacy wrappers, of the first inner message).
    pub base_offset: i64,
    /// The offset of the last record the batch was written with. Compaction may have
    /// removed records since, but never changes this.
    pub last_offset: i64,
    /// The leader epoch when the batch was appended; -1 if unknown or legacy.
    pub partition_leader_epoch: i32,
    /// The format: 0, 1 or 2.
    pub magic: i8,
    /// The codec the records were compressed with.
    pub compression: Compression,
    /// What the records' timestamps mean.
    pub timestamp_type: TimestampType,
    /// Whether the batch belongs to a transaction.
    pub transactional: bool,
    /// Whether the batch holds control records (transaction markers) rather than data.
    pub control: bool,
    /// The first record's timestamp (v2), or the message's timestamp (legacy).
    pub base_timestamp: i64,
    /// The largest timestamp in the batch.
    pub max_timestamp: i64,
    /// The idempotent producer's id, or -1.
    pub producer_id: i64,
    /// The idempotent producer's epoch, or -1.
    pub producer_epoch: i16,
    /// The sequence number of the first record, or -1.
    pub base_sequence: i32,
    /// How many records the batch holds.
    pub record_count: i32,
    /// The batch's size on the wire, in bytes.
    pub size_in_bytes: usize,
    pub(crate) body: read::Body,
}

impl Batch {
    /// The next offset to fetch after this batch.
    #[inline]
    pub fn next_offset(&self) -> i64 {
        self.last_offset.wrapping_add(1)
    }

    /// The batch's records, decoded lazily as owned [`Record`]s whose keys and values
    /// share the batch's buffer.
    pub fn records(&self) -> Records {
        Records::new(self)
    }

    /// The batch's records, decoded lazily as [`RecordRef`]s borrowed from the batch: no
    /// allocation and no reference counting per record.
    pub fn record_refs(&self) -> RecordRefs<'_> {
        RecordRefs::new(self)
    }
}

pub use read::Batches;

/// The low three bits of an attributes field: the compression codec.
const COMPRESSION_MASK: u8 = 0x07;
/// Attribute bit 3: log-append time.
const TIMESTAMP_TYPE_BIT: u8 = 0x08;

#[inline]
fn malformed(what: &'static str) -> DecodeError {
    DecodeError::Malformed(what)
}

#[cfg(test)]
mod tests;
