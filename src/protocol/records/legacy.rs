//! Legacy message sets: magic 0 (Kafka 0.8 to 0.9) and magic 1 (0.10, adds timestamps).
//!
//! ```text
//! offset int64 | messageSize int32
//! crc uint32 (CRC-32 of everything after it) | magic int8 | attributes int8
//! timestamp int64 (magic 1 only) | key bytes | value bytes
//! ```
//!
//! Attributes: bits 0..2 the codec, bit 3 (magic 1) log-append time. A compressed message
//! is a wrapper whose value is a compressed message set. Inside a magic 1 wrapper offsets
//! are relative (0..n-1) and the wrapper carries the absolute offset of the last inner
//! message; inside a magic 0 wrapper they are absolute.

use bytes::Bytes;

use super::read::{check_data_len, Body, Cursor, RawRecord, Span, LOG_OVERHEAD};
use super::{
    malformed, Batch, DecodeLimits, Record, TimestampType, COMPRESSION_MASK, TIMESTAMP_TYPE_BIT,
};
use crate::protocol::compression::{self, CompressOptions, Compression};
use crate::protocol::error::{DecodeError, EncodeError};
use crate::protocol::primitives::EncodeResult;

/// The smallest whole magic 0 message, log overhead included.
pub(super) const MIN_MESSAGE_V0: usize = LOG_OVERHEAD + 4 + 1 + 1 + 4 + 4;
/// The smallest whole magic 1 message, log overhead included.
pub(super) const MIN_MESSAGE_V1: usize = MIN_MESSAGE_V0 + 8;
/// Where the CRC'd part of a message starts (its magic byte).
const MAGIC_OFFSET: usize = 16;

/// How to write a message set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageSetOptions {
    /// The format: 0 or 1.
    pub magic: i8,
    /// The codec; with one, all records go into one compressed wrapper message.
    /// Zstandard needs magic 2.
    pub compression: Compression,
    /// Codec options. For magic 0 LZ4 always gets the pre-0.10 header checksum.
    pub compress_options: CompressOptions,
    /// What the timestamps mean (magic 1).
    pub timestamp_type: TimestampType,
}

impl Default for MessageSetOptions {
    fn default() -> Self {
        MessageSetOptions {
            magic: 1,
            compression: Compression::None,
            compress_options: CompressOptions::default(),
            timestamp_type: TimestampType::CreateTime,
        }
    }
}

/// Appends a legacy message set to a caller-owned buffer, record by record: the
/// incremental form of [`encode_message_set`], for producers.
///
/// Uncompressed, each record becomes one message written straight into the output.
/// Compressed, the records are written into a scratch buffer as inner messages (with offsets
/// relative to the first in magic 1, absolute in magic 0) and [`finish`](Self::finish)
/// compresses them into the value of one wrapper message, whose offset is the last inner
/// message's and whose timestamp is the largest. Nothing is allocated per record. Dropping the
/// encoder without finishing leaves a partial set in the buffer: truncate it to
/// [`start`](Self::start) to discard it.
///
/// ```
/// # use grete::protocol::records::legacy::*;
/// let mut out = Vec::new();
/// let mut enc = MessageSetEncoder::new(&mut out, &MessageSetOptions::default())?;
/// enc.append(1_700_000_000_000, None, Some(b"hello"))?;
/// enc.append(1_700_000_000_001, Some(b"k"), Some(b"world"))?;
/// let size = enc.finish()?;
/// assert_eq!(size, out.len());
/// # Ok::<(), grete::protocol::EncodeError>(())
/// ```
#[derive(Debug)]
pub struct MessageSetEncoder<'a> {
    out: &'a mut Vec<u8>,
    start: usize,
    options: MessageSetOptions,
    /// The timestamp-type attribute bit (magic 1 with log-append time).
    ts_bit: u8,
    /// The inner messages of a compressed set.
    scratch: Option<Vec<u8>>,
    count: i32,
    first_offset: i64,
    last_offset: i64,
    max_timestamp: i64,
}

impl<'a> MessageSetEncoder<'a> {
    /// Starts a message set at the end of `out`. Fails for a magic other than 0 and 1 and
    /// for Zstandard (which needs magic 2).
    pub fn new(out: &'a mut Vec<u8>, options: &MessageSetOptions) -> Result<Self, EncodeError> {
        let ts_bit = check_options(options)?;
        Ok(MessageSetEncoder {
            start: out.len(),
            out,
            options: *options,
            ts_bit,
            scratch: (options.compression != Compression::None).then(Vec::new),
            count: 0,
            first_offset: 0,
            last_offset: -1,
            max_timestamp: -1,
        })
    }

    /// Where the set starts in the output buffer.
    pub fn start(&self) -> usize {
        self.start
    }

    /// How many records have been appended.
    pub fn record_count(&self) -> i32 {
        self.count
    }

    /// The bytes written so far (uncompressed inner messages included), for size-based
    /// batching.
    pub fn uncompressed_size(&self) -> usize {
        self.out.len() - self.start + self.scratch.as_ref().map_or(0, Vec::len)
    }

    /// Appends a record with the next offset (the previous one's plus one, from 0).
    #[inline]
    pub fn append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> EncodeResult {
        self.append_at(self.last_offset.wrapping_add(1), timestamp, key, value)
    }

    /// Appends a record with its own offset. Offsets must increase.
    pub fn append_at(
        &mut self,
        offset: i64,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> EncodeResult {
        if self.count > 0 && offset <= self.last_offset {
            return Err(EncodeError::Invalid(
                "message offset (offsets must increase within a message set)",
            ));
        }
        if self.count == i32::MAX {
            return Err(EncodeError::TooLong("message set"));
        }
        if self.count == 0 {
            self.first_offset = offset;
            self.max_timestamp = timestamp;
        }
        let magic = self.options.magic;
        match &mut self.scratch {
            None => put_message(self.out, magic, offset, timestamp, self.ts_bit, key, value)?,
            Some(inner) => {
                let inner_offset = if magic >= 1 {
                    offset.wrapping_sub(self.first_offset)
                } else {
                    offset
                };
                put_message(inner, magic, inner_offset, timestamp, 0, key, value)?;
            }
        }
        self.count += 1;
        self.last_offset = offset;
        self.max_timestamp = self.max_timestamp.max(timestamp);
        Ok(())
    }

    /// Completes the set: with a codec, compresses the inner messages into one wrapper
    /// message. Returns the set's size in bytes.
    pub fn finish(self) -> Result<usize, EncodeError> {
        let MessageSetEncoder {
            out,
            start,
            options,
            ts_bit,
            scratch,
            count,
            last_offset,
            max_timestamp,
            ..
        } = self;
        if let Some(inner) = scratch.filter(|_| count > 0) {
            if let Err(e) = put_wrapper(out, &options, ts_bit, last_offset, max_timestamp, &inner) {
                out.truncate(start);
                return Err(e);
            }
        }
        Ok(out.len() - start)
    }
}

/// Refuses what a message set cannot be (a magic other than 0 and 1, Zstandard); returns
/// the timestamp-type attribute bit the options ask for.
fn check_options(options: &MessageSetOptions) -> Result<u8, EncodeError> {
    let magic = options.magic;
    if !(0..=1).contains(&magic) {
        return Err(EncodeError::UnsupportedVersion {
            message: "MessageSet",
            version: magic as i16,
        });
    }
    if options.compression == Compression::Zstd {
        return Err(EncodeError::UnsupportedField {
            message: "MessageSet",
            field: "compression (zstd)",
            version: magic as i16,
        });
    }
    Ok(
        if magic >= 1 && options.timestamp_type == TimestampType::LogAppendTime {
            TIMESTAMP_TYPE_BIT
        } else {
            0
        },
    )
}

/// Appends one uncompressed message (magic 0 or 1; the timestamp is dropped for magic 0)
/// to `out`: a message set's worth of these is what [`seal_message_set`] seals.
pub fn encode_message(
    out: &mut Vec<u8>,
    magic: i8,
    offset: i64,
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> EncodeResult {
    put_message(out, magic, offset, timestamp, 0, key, value)
}

/// Appends a message set built from `messages`, uncompressed messages written by
/// [`encode_message`] with `options.magic`: copied as they are, or compressed into one
/// wrapper message whose offset is `last_offset` and whose timestamp is `max_timestamp`.
/// For magic 1 the inner offsets must be relative (0 for the first). Returns the bytes
/// written; on error nothing is appended.
pub fn seal_message_set(
    out: &mut Vec<u8>,
    options: &MessageSetOptions,
    messages: &[u8],
    last_offset: i64,
    max_timestamp: i64,
) -> Result<usize, EncodeError> {
    let start = out.len();
    let ts_bit = check_options(options)?;
    if messages.is_empty() {
        return Ok(0);
    }
    let result = if options.compression == Compression::None {
        out.extend_from_slice(messages);
        Ok(())
    } else {
        put_wrapper(out, options, ts_bit, last_offset, max_timestamp, messages)
    };
    match result {
        Ok(()) => Ok(out.len() - start),
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

/// Appends a wrapper message whose value is `inner` compressed, compressing straight into
/// `out` (no intermediate buffer for the compressed value).
fn put_wrapper(
    out: &mut Vec<u8>,
    options: &MessageSetOptions,
    ts_bit: u8,
    offset: i64,
    timestamp: i64,
    inner: &[u8],
) -> EncodeResult {
    let magic = options.magic;
    let start = out.len();
    out.extend_from_slice(&offset.to_be_bytes());
    out.extend_from_slice(&[0; 8]); // size and CRC, filled in below
    out.push(magic as u8);
    out.push(options.compression.code() | ts_bit);
    if magic >= 1 {
        out.extend_from_slice(&timestamp.to_be_bytes());
    }
    put_bytes(out, None)?;
    let value_len_at = out.len();
    out.extend_from_slice(&[0; 4]);
    let mut copts = options.compress_options;
    copts.lz4_legacy_header_checksum = magic == 0;
    compression::compress(options.compression, inner, out, &copts)?;
    let value_len = i32::try_from(out.len() - value_len_at - 4)
        .map_err(|_| EncodeError::TooLong("message field"))?;
    out[value_len_at..value_len_at + 4].copy_from_slice(&value_len.to_be_bytes());
    finish_message(out, start)
}

/// Appends `records` as a legacy message set to `out`: one message each, or one wrapper
/// holding them all when compressed. Records keep their offsets (relative to the first
/// inside a magic 1 wrapper, as the format asks). Returns the bytes written.
pub fn encode_message_set(
    out: &mut Vec<u8>,
    options: &MessageSetOptions,
    records: &[Record],
) -> Result<usize, EncodeError> {
    if records.iter().any(|r| !r.headers.is_empty()) {
        return Err(EncodeError::UnsupportedField {
            message: "Record",
            field: "headers",
            version: options.magic as i16,
        });
    }
    let mut enc = MessageSetEncoder::new(out, options)?;
    for r in records {
        if let Err(e) = enc.append_at(r.offset, r.timestamp, r.key.as_deref(), r.value.as_deref()) {
            let start = enc.start;
            enc.out.truncate(start);
            return Err(e);
        }
    }
    enc.finish()
}

fn put_bytes(out: &mut Vec<u8>, v: Option<&[u8]>) -> Result<(), EncodeError> {
    match v {
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        Some(b) => {
            let n = i32::try_from(b.len()).map_err(|_| EncodeError::TooLong("message field"))?;
            out.extend_from_slice(&n.to_be_bytes());
            out.extend_from_slice(b);
        }
    }
    Ok(())
}

/// Appends one message with its offset and size prefix, filling in size and CRC.
pub(super) fn put_message(
    out: &mut Vec<u8>,
    magic: i8,
    offset: i64,
    timestamp: i64,
    attributes: u8,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Result<(), EncodeError> {
    let start = out.len();
    out.extend_from_slice(&offset.to_be_bytes());
    out.extend_from_slice(&[0; 8]); // size and CRC, filled in below
    out.push(magic as u8);
    out.push(attributes);
    if magic >= 1 {
        out.extend_from_slice(&timestamp.to_be_bytes());
    }
    put_bytes(out, key)?;
    put_bytes(out, value)?;
    finish_message(out, start)
}

/// Fills in the size and CRC of the message that starts at `start` and ends the buffer.
fn finish_message(out: &mut [u8], start: usize) -> EncodeResult {
    let size = i32::try_from(out.len() - start - LOG_OVERHEAD)
        .map_err(|_| EncodeError::TooLong("message"))?;
    out[start + 8..start + 12].copy_from_slice(&size.to_be_bytes());
    let crc = crc32fast::hash(&out[start + MAGIC_OFFSET..]);
    out[start + 12..start + 16].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// One parsed message, its key and value as ranges of the bytes it was parsed from.
struct Message {
    offset: i64,
    magic: i8,
    attributes: u8,
    timestamp: i64,
    key: Option<(usize, usize)>,
    value: Option<(usize, usize)>,
    /// Where the next message starts.
    end: usize,
}

/// Parses the message at `pos` in `data`, which must hold all of it.
fn parse_message(data: &[u8], pos: usize, verify_crc: bool) -> Result<Message, DecodeError> {
    let mut c = Cursor { buf: data, pos };
    let offset = c.i64()?;
    let size = c.i32()?;
    if size < 0 {
        return Err(DecodeError::InvalidLength(size as i64));
    }
    let size = size as usize;
    if size > c.remaining() {
        return Err(DecodeError::UnexpectedEof {
            needed: size - c.remaining(),
        });
    }
    let end = c.pos + size;
    let mut c = Cursor {
        buf: &data[..end],
        pos: c.pos,
    };
    let stored = c.u32()?;
    if verify_crc {
        let computed = crc32fast::hash(&data[c.pos..end]);
        if computed != stored {
            return Err(DecodeError::CrcMismatch { computed, stored });
        }
    }
    let magic = c.i8()?;
    if !(0..=1).contains(&magic) {
        return Err(DecodeError::UnknownMagic(magic));
    }
    let attributes = c.i8()? as u8;
    let timestamp = if magic >= 1 { c.i64()? } else { -1 };
    let key_len = c.i32()?;
    let key = c.nullable_range(key_len)?;
    let value_len = c.i32()?;
    let value = c.nullable_range(value_len)?;
    if c.pos != end {
        return Err(malformed("message size does not match its fields"));
    }
    Ok(Message {
        offset,
        magic,
        attributes,
        timestamp,
        key,
        value,
        end,
    })
}

fn timestamp_type(magic: i8, attributes: u8) -> TimestampType {
    if magic == 0 {
        TimestampType::NoTimestamp
    } else if attributes & TIMESTAMP_TYPE_BIT != 0 {
        TimestampType::LogAppendTime
    } else {
        TimestampType::CreateTime
    }
}

/// Checks and parses one whole framed top-level message; decompresses a wrapper's value.
pub(super) fn decode_batch(bytes: Bytes, limits: &DecodeLimits) -> Result<Batch, DecodeError> {
    let m = parse_message(&bytes, 0, limits.verify_crc)?;
    let compression = Compression::from_code(m.attributes & COMPRESSION_MASK)?;
    // Zstandard exists only from record batches (magic 2) on; Kafka rejects it in legacy
    // messages, and so does grete's encoder.
    if compression == Compression::Zstd {
        return Err(DecodeError::UnsupportedCompression(
            Compression::Zstd.code(),
        ));
    }
    let ts_type = timestamp_type(m.magic, m.attributes);
    let mut batch = Batch {
        base_offset: m.offset,
        last_offset: m.offset,
        partition_leader_epoch: -1,
        magic: m.magic,
        compression,
        timestamp_type: ts_type,
        transactional: false,
        control: false,
        base_timestamp: m.timestamp,
        max_timestamp: m.timestamp,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        record_count: 1,
        size_in_bytes: bytes.len(),
        body: Body::Legacy {
            data: Bytes::new(),
            offset_delta: 0,
            timestamp_override: None,
            verify_crc: false,
        },
    };
    if compression == Compression::None {
        batch.body = Body::Legacy {
            data: bytes,
            offset_delta: 0,
            timestamp_override: None,
            // Already checked above.
            verify_crc: false,
        };
        return Ok(batch);
    }
    let Some((a, b)) = m.value else {
        return Err(DecodeError::UnexpectedNull("compressed wrapper value"));
    };
    let inner = compression::decompress(compression, &bytes[a..b], limits.max_decompressed_size)?;
    check_data_len(&inner)?;
    let (first, last, count) = scan_inner(&inner)?;
    let offset_delta = if m.magic >= 1 {
        m.offset.wrapping_sub(last)
    } else {
        0
    };
    batch.base_offset = first.wrapping_add(offset_delta);
    batch.record_count = count;
    batch.body = Body::Legacy {
        data: inner,
        offset_delta,
        timestamp_override: (ts_type == TimestampType::LogAppendTime).then_some(m.timestamp),
        verify_crc: limits.verify_crc,
    };
    Ok(batch)
}

/// With [`DecodeLimits::message_runs`]: the uncompressed message at the front of `buf`
/// (whose frame is `first` bytes) and the whole messages right after it with the same
/// magic and attributes, checked (checksums too) and split off `buf` as one batch.
/// `None` (nothing taken) when the first message is a compressed wrapper or does not
/// parse: [`decode_batch`] then reads it alone. A message that fails its checks ends the
/// run before it, so its error comes with its own batch, after the run.
pub(super) fn decode_run(
    buf: &mut Bytes,
    first: usize,
    limits: &DecodeLimits,
) -> Result<Option<Batch>, DecodeError> {
    let Ok(m) = parse_message(&buf[..first], 0, limits.verify_crc) else {
        return Ok(None);
    };
    if m.attributes & COMPRESSION_MASK != 0 {
        return Ok(None);
    }
    let (mut end, mut last, mut count) = (first, m.offset, 1i32);
    let mut max_timestamp = m.timestamp;
    while end < buf.len() {
        let Ok(Some((size, magic))) = super::read::frame(&buf[end..]) else {
            break;
        };
        if magic != m.magic || buf[end + MAGIC_OFFSET + 1] != m.attributes {
            break;
        }
        let Ok(next) = parse_message(&buf[..end + size], end, limits.verify_crc) else {
            break;
        };
        last = next.offset;
        max_timestamp = max_timestamp.max(next.timestamp);
        count = count.saturating_add(1);
        end += size;
    }
    let data = buf.split_to(end);
    Ok(Some(Batch {
        base_offset: m.offset,
        last_offset: last,
        partition_leader_epoch: -1,
        magic: m.magic,
        compression: Compression::None,
        timestamp_type: timestamp_type(m.magic, m.attributes),
        transactional: false,
        control: false,
        base_timestamp: m.timestamp,
        max_timestamp,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        record_count: count,
        size_in_bytes: data.len(),
        body: Body::Legacy {
            data,
            offset_delta: 0,
            timestamp_override: None,
            // Checked above.
            verify_crc: false,
        },
    }))
}

/// Frames the inner messages of a decompressed wrapper without decoding them: the first
/// and last (stored) offsets and the count. Refuses nested compression and partial
/// messages, which cannot come from a broker cutting a response short.
fn scan_inner(data: &[u8]) -> Result<(i64, i64, i32), DecodeError> {
    let mut pos = 0;
    let mut first = None;
    let mut last = 0;
    let mut count = 0i32;
    while pos < data.len() {
        let rest = &data[pos..];
        if rest.len() < MIN_MESSAGE_V0 {
            return Err(malformed("truncated message in a compressed wrapper"));
        }
        let offset = i64::from_be_bytes(rest[..8].try_into().map_err(|_| malformed("offset"))?);
        let size = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
        if size < 0 || size as usize > rest.len() - LOG_OVERHEAD {
            return Err(malformed("truncated message in a compressed wrapper"));
        }
        if rest[MAGIC_OFFSET + 1] & COMPRESSION_MASK != 0 {
            return Err(malformed("nested compression"));
        }
        first.get_or_insert(offset);
        last = offset;
        count = count.checked_add(1).ok_or(malformed("too many messages"))?;
        pos += LOG_OVERHEAD + size as usize;
    }
    let first = first.ok_or(malformed("compressed wrapper with no messages"))?;
    Ok((first, last, count))
}

/// Parses the message at `*pos` of a message set and advances past it.
pub(super) fn parse_inner(
    data: &[u8],
    pos: &mut usize,
    offset_delta: i64,
    timestamp_override: Option<i64>,
    verify_crc: bool,
) -> Result<RawRecord, DecodeError> {
    let m = parse_message(data, *pos, verify_crc)?;
    *pos = m.end;
    let (timestamp, timestamp_type) = match timestamp_override {
        Some(t) => (t, TimestampType::LogAppendTime),
        None => (m.timestamp, timestamp_type(m.magic, m.attributes)),
    };
    Ok(RawRecord {
        offset: m.offset.wrapping_add(offset_delta),
        timestamp,
        timestamp_type,
        key: Span::from_range(m.key),
        value: Span::from_range(m.value),
        headers: (0, 0, 0),
    })
}

#[cfg(test)]
mod tests;
