//! A partition's open batch: records appended one by one into a reused buffer, sealed into
//! the leader's wire format when a Produce request is built.
//!
//! The builder holds the records section uncompressed, in the layout of its
//! [`RecordFormat`] (v2 records after room for the batch header, or magic 0 / 1 messages
//! with relative offsets). Sealing writes the batch header (or the compressed wrapper
//! message) in front of a copy or the compressed form of that section, or, uncompressed,
//! into the room left for it (`seal_in_place`: no copy, the buffer becomes the sealed
//! bytes), so the producer id, epoch and sequence number are chosen at sealing time, and a
//! sealed batch can be sent again byte for byte.
//!
//! Appending a record writes it once, straight into the buffer; once the buffer has grown to
//! the largest batch seen, appending allocates nothing (`tests/batch_alloc.rs` counts).

use crate::protocol::compression::{CompressOptions, Compression};
use crate::protocol::error::EncodeError;
use crate::protocol::records::batch::{
    encode_record, seal_batch, seal_batch_in_place, BatchHeader, BatchSummary, HeaderSource,
    HEADER_LEN,
};
use crate::protocol::records::legacy::{encode_message, seal_message_set, MessageSetOptions};
use crate::protocol::records::TimestampType;

/// The record format a batch is written in, which the leader's Produce version decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFormat {
    /// Magic 0 messages (Produce v0 and v1: Kafka 0.8 to 0.9): no timestamps.
    MessageSetV0,
    /// Magic 1 messages (Produce v2: Kafka 0.10): with timestamps.
    MessageSetV1,
    /// Record batch v2 (Produce v3 and later: Kafka 0.11+): headers, idempotence.
    RecordBatch,
}

impl RecordFormat {
    /// The format a Produce request of `version` carries.
    pub fn for_produce_version(version: i16) -> RecordFormat {
        match version {
            i16::MIN..=1 => RecordFormat::MessageSetV0,
            2 => RecordFormat::MessageSetV1,
            _ => RecordFormat::RecordBatch,
        }
    }

    /// The magic byte of the format.
    pub fn magic(self) -> i8 {
        match self {
            RecordFormat::MessageSetV0 => 0,
            RecordFormat::MessageSetV1 => 1,
            RecordFormat::RecordBatch => 2,
        }
    }

    /// What the format adds around the records: the v2 batch header, or one message's
    /// overhead (the compressed wrapper) for message sets.
    /// Bytes reserved in front of the records for sealing in place: a v2 batch header.
    fn head(self) -> usize {
        match self {
            RecordFormat::RecordBatch => HEADER_LEN,
            _ => 0,
        }
    }

    fn overhead(self) -> usize {
        match self {
            RecordFormat::MessageSetV0 => 26,
            RecordFormat::MessageSetV1 => 34,
            RecordFormat::RecordBatch => HEADER_LEN,
        }
    }
}

/// The idempotent producer's fields written into a v2 batch when it is sealed. Message sets
/// have no such fields and ignore it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerStamp {
    /// The producer id, or -1.
    pub producer_id: i64,
    /// The producer epoch, or -1.
    pub producer_epoch: i16,
    /// The first record's sequence number, or -1.
    pub base_sequence: i32,
}

impl ProducerStamp {
    /// A producer without idempotence.
    pub const NONE: ProducerStamp = ProducerStamp {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
    };
}

/// How a batch is sealed: the codec and the producer's stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seal {
    /// The codec (Zstandard needs [`RecordFormat::RecordBatch`]).
    pub compression: Compression,
    /// Codec options.
    pub compress_options: CompressOptions,
    /// The idempotent producer's fields.
    pub stamp: ProducerStamp,
}

/// An open batch of one partition.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    format: RecordFormat,
    /// `format.head()` reserved bytes (once a record is in), then the records.
    records: Vec<u8>,
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    /// Sealed in place: the buffer left with the sealed bytes, which are this size.
    spent: Option<usize>,
}

impl BatchBuilder {
    /// An empty batch in `format`.
    pub fn new(format: RecordFormat) -> BatchBuilder {
        BatchBuilder {
            format,
            records: Vec::new(),
            count: 0,
            base_timestamp: -1,
            max_timestamp: -1,
            spent: None,
        }
    }

    /// Empties the batch for reuse in `format`, keeping the buffer's capacity.
    pub fn reset(&mut self, format: RecordFormat) {
        self.format = format;
        self.records.clear();
        self.count = 0;
        self.base_timestamp = -1;
        self.max_timestamp = -1;
        self.spent = None;
    }

    /// The format records are written in.
    pub fn format(&self) -> RecordFormat {
        self.format
    }

    /// How many records the batch holds.
    pub fn record_count(&self) -> i32 {
        self.count
    }

    /// Whether the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The batch's size on the wire if sealed without compression (an upper bound for a
    /// compressed one, but for incompressible data plus the codec's framing).
    pub fn size(&self) -> usize {
        match self.spent {
            Some(size) => size,
            None => self.format.overhead() + self.records.len().saturating_sub(self.format.head()),
        }
    }

    /// The buffer's capacity (what a recycled builder can take without growing).
    pub fn capacity(&self) -> usize {
        self.records.capacity()
    }

    /// Appends a record. Message sets cannot carry headers (an error if any are given) and
    /// magic 0 drops the timestamp. On error the batch is unchanged.
    pub fn append<H: HeaderSource>(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[H],
    ) -> Result<(), EncodeError> {
        if self.count == i32::MAX {
            return Err(EncodeError::TooLong("record batch"));
        }
        if self.spent.is_some() {
            return Err(EncodeError::Invalid("record appended to a sealed batch"));
        }
        if self.records.is_empty() {
            self.records.resize(self.format.head(), 0);
        }
        let at = self.records.len();
        let result = match self.format {
            RecordFormat::RecordBatch => {
                let base = if self.count == 0 {
                    timestamp
                } else {
                    self.base_timestamp
                };
                encode_record(
                    &mut self.records,
                    self.count,
                    timestamp.wrapping_sub(base),
                    key,
                    value,
                    headers,
                )
            }
            format if headers.is_empty() => encode_message(
                &mut self.records,
                format.magic(),
                i64::from(self.count),
                timestamp,
                key,
                value,
            ),
            format => Err(EncodeError::UnsupportedField {
                message: "Record",
                field: "headers",
                version: i16::from(format.magic()),
            }),
        };
        if let Err(e) = result {
            self.records.truncate(at);
            return Err(e);
        }
        if self.count == 0 {
            self.base_timestamp = timestamp;
            self.max_timestamp = timestamp;
        } else {
            self.max_timestamp = self.max_timestamp.max(timestamp);
        }
        self.count += 1;
        Ok(())
    }

    /// Appends the sealed batch to `out` (a Produce request's records field) and returns
    /// its size. Sealing does not change the builder: sealing again with the same `seal`
    /// gives the same bytes. On error nothing is appended.
    pub fn seal(&self, out: &mut Vec<u8>, seal: &Seal) -> Result<usize, EncodeError> {
        if self.count == 0 {
            return Ok(0);
        }
        if self.spent.is_some() {
            return Err(EncodeError::Invalid("batch already sealed in place"));
        }
        let records = &self.records[self.format.head()..];
        match self.format {
            RecordFormat::RecordBatch => {
                seal_batch(out, &self.header(seal), records, &self.summary())
            }
            format => {
                let options = MessageSetOptions {
                    magic: format.magic(),
                    compression: seal.compression,
                    compress_options: seal.compress_options,
                    timestamp_type: TimestampType::CreateTime,
                };
                let max_timestamp = if format == RecordFormat::MessageSetV0 {
                    -1
                } else {
                    self.max_timestamp
                };
                seal_message_set(
                    out,
                    &options,
                    records,
                    i64::from(self.count - 1),
                    max_timestamp,
                )
            }
        }
    }

    /// Seals an uncompressed batch without copying it: the header is written into the
    /// bytes reserved in front of the records and the buffer itself is returned (the same
    /// bytes [`seal`](Self::seal) would give). The builder is then spent: it keeps its
    /// size and count but no records until [`restore`](Self::restore) or
    /// [`recycle`](Self::recycle). `None` (and nothing changed) for a compressed seal.
    pub fn seal_in_place(&mut self, seal: &Seal) -> Result<Option<Vec<u8>>, EncodeError> {
        if self.count == 0 || self.spent.is_some() || seal.compression != Compression::None {
            return Ok(None);
        }
        if self.format == RecordFormat::RecordBatch {
            let (header, summary) = (self.header(seal), self.summary());
            seal_batch_in_place(&mut self.records, &header, &summary)?;
        }
        self.spent = Some(self.records.len());
        Ok(Some(std::mem::take(&mut self.records)))
    }

    /// Whether the records left with [`seal_in_place`](Self::seal_in_place).
    pub fn is_spent(&self) -> bool {
        self.spent.is_some()
    }

    /// Takes back the records of a spent builder from the bytes it sealed (copied: to seal
    /// them again with another stamp or format).
    pub fn restore(&mut self, sealed: &[u8]) {
        if self.spent.take().is_some() {
            self.records.clear();
            self.records.extend_from_slice(sealed);
        }
    }

    /// Gives a spent builder its buffer back (the sealed bytes, once nobody holds them), so
    /// that the next batch reuses the allocation. The builder still needs a `reset`.
    pub fn recycle(&mut self, buffer: Vec<u8>) {
        if self.spent.is_some() && self.records.capacity() < buffer.capacity() {
            self.records = buffer;
        }
    }

    fn header(&self, seal: &Seal) -> BatchHeader {
        BatchHeader {
            compression: seal.compression,
            compress_options: seal.compress_options,
            producer_id: seal.stamp.producer_id,
            producer_epoch: seal.stamp.producer_epoch,
            base_sequence: seal.stamp.base_sequence,
            ..BatchHeader::default()
        }
    }

    fn summary(&self) -> BatchSummary {
        BatchSummary {
            count: self.count,
            last_offset_delta: self.count - 1,
            base_timestamp: self.base_timestamp,
            max_timestamp: self.max_timestamp,
        }
    }
}

#[cfg(test)]
mod tests;
