//! Record batches, magic 2 (Kafka 0.11 and later).
//!
//! ```text
//! baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 | magic int8 (2)
//! crc uint32 (CRC-32C of everything after it)
//! attributes int16 | lastOffsetDelta int32 | baseTimestamp int64 | maxTimestamp int64
//! producerId int64 | producerEpoch int16 | baseSequence int32 | recordCount int32
//! records (compressed as one block when the batch is compressed)
//! ```
//!
//! and each record:
//!
//! ```text
//! length varint | attributes int8 | timestampDelta varlong | offsetDelta varint
//! keyLength varint | key | valueLength varint | value
//! headerCount varint | (headerKeyLength varint | key | headerValueLength varint | value)*
//! ```

use bytes::Bytes;

use super::read::{check_data_len, Body, Cursor, RawRecord, Span, LOG_OVERHEAD};
use super::{
    malformed, Batch, DecodeLimits, Header, Record, TimestampType, COMPRESSION_MASK,
    TIMESTAMP_TYPE_BIT,
};
use crate::protocol::compression::{self, CompressOptions, Compression};
use crate::protocol::error::{DecodeError, EncodeError};
use crate::protocol::primitives::{prealloc, EncodeResult};

/// The size of the batch header, up to and including the record count.
pub const HEADER_LEN: usize = 61;
/// The magic byte of this format.
pub const MAGIC: i8 = 2;

const LENGTH_OFFSET: usize = 8;
const CRC_OFFSET: usize = 17;
/// The CRC covers everything from the attributes on.
const ATTRIBUTES_OFFSET: usize = 21;
const LAST_OFFSET_DELTA_OFFSET: usize = 23;
const RECORDS_COUNT_OFFSET: usize = 57;

const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;

/// The header fields of a batch to write. The defaults are a plain (non-idempotent)
/// producer's: base offset 0, no leader epoch, no compression, create time, no producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// The offset of the first record (0 when producing; the broker assigns offsets).
    pub base_offset: i64,
    /// The partition leader epoch (-1 when producing).
    pub partition_leader_epoch: i32,
    /// The codec to compress the records with.
    pub compression: Compression,
    /// Codec options (level, Snappy framing).
    pub compress_options: CompressOptions,
    /// What the timestamps mean.
    pub timestamp_type: TimestampType,
    /// Whether the batch belongs to a transaction.
    pub transactional: bool,
    /// Whether the batch holds control records.
    pub control: bool,
    /// The idempotent producer's id, or -1.
    pub producer_id: i64,
    /// The idempotent producer's epoch, or -1.
    pub producer_epoch: i16,
    /// The first record's sequence number, or -1.
    pub base_sequence: i32,
}

impl Default for BatchHeader {
    fn default() -> Self {
        BatchHeader {
            base_offset: 0,
            partition_leader_epoch: -1,
            compression: Compression::None,
            compress_options: CompressOptions::default(),
            timestamp_type: TimestampType::CreateTime,
            transactional: false,
            control: false,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
        }
    }
}

impl BatchHeader {
    fn attributes(&self) -> i16 {
        let mut a = self.compression.code() as i16;
        if self.timestamp_type == TimestampType::LogAppendTime {
            a |= TIMESTAMP_TYPE_BIT as i16;
        }
        if self.transactional {
            a |= TRANSACTIONAL_BIT;
        }
        if self.control {
            a |= CONTROL_BIT;
        }
        a
    }
}

/// Appends one v2 record batch to a caller-owned buffer, record by record.
///
/// Uncompressed records are written straight into the output; compressed ones into a
/// scratch buffer that [`finish`](Self::finish) compresses. Nothing is allocated per record.
/// Dropping the encoder without finishing leaves a partial batch in the buffer: truncate it
/// to [`start`](Self::start) to discard it.
///
/// ```
/// # use grete::protocol::records::*;
/// let mut out = Vec::new();
/// let mut enc = RecordBatchEncoder::new(&mut out, &BatchHeader::default());
/// enc.append(1_700_000_000_000, None, Some(b"hello"), &[])?;
/// enc.append(1_700_000_000_001, Some(b"k"), Some(b"world"), &[])?;
/// let size = enc.finish()?;
/// assert_eq!(size, out.len());
/// # Ok::<(), grete::protocol::EncodeError>(())
/// ```
#[derive(Debug)]
pub struct RecordBatchEncoder<'a> {
    out: &'a mut Vec<u8>,
    start: usize,
    header: BatchHeader,
    /// The uncompressed records of a compressed batch.
    scratch: Option<Vec<u8>>,
    count: i32,
    next_offset_delta: i32,
    last_offset_delta: i32,
    base_timestamp: i64,
    max_timestamp: i64,
}

impl<'a> RecordBatchEncoder<'a> {
    /// Starts a batch at the end of `out`.
    pub fn new(out: &'a mut Vec<u8>, header: &BatchHeader) -> Self {
        let start = out.len();
        out.resize(start + HEADER_LEN, 0);
        let scratch = (header.compression != Compression::None).then(Vec::new);
        RecordBatchEncoder {
            out,
            start,
            header: *header,
            scratch,
            count: 0,
            next_offset_delta: 0,
            last_offset_delta: 0,
            base_timestamp: -1,
            max_timestamp: -1,
        }
    }

    /// Where the batch starts in the output buffer.
    pub fn start(&self) -> usize {
        self.start
    }

    /// How many records have been appended.
    pub fn record_count(&self) -> i32 {
        self.count
    }

    /// The bytes written so far (uncompressed records included), for size-based batching.
    pub fn uncompressed_size(&self) -> usize {
        self.out.len() - self.start + self.scratch.as_ref().map_or(0, Vec::len)
    }

    /// Appends a record with the next offset (the previous one's plus one).
    #[inline]
    pub fn append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> EncodeResult {
        self.append_at(self.next_offset_delta, timestamp, key, value, headers)
    }

    /// Appends a record at `offset_delta` from the base offset. Deltas must increase; gaps
    /// are allowed (a compacted batch has them).
    #[inline]
    pub fn append_at(
        &mut self,
        offset_delta: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> EncodeResult {
        if self.count > 0 && offset_delta <= self.last_offset_delta || offset_delta < 0 {
            return Err(EncodeError::Invalid(
                "record offset delta (offsets must increase within a batch)",
            ));
        }
        if self.count == i32::MAX {
            return Err(EncodeError::TooLong("record batch"));
        }
        if self.count == 0 {
            self.base_timestamp = timestamp;
            self.max_timestamp = timestamp;
        }
        let timestamp_delta = timestamp.wrapping_sub(self.base_timestamp);
        let buf = match &mut self.scratch {
            Some(s) => s,
            None => &mut *self.out,
        };
        put_record(buf, offset_delta, timestamp_delta, key, value, headers)?;
        self.count += 1;
        self.last_offset_delta = offset_delta;
        self.next_offset_delta = offset_delta.saturating_add(1);
        self.max_timestamp = self.max_timestamp.max(timestamp);
        Ok(())
    }

    /// Completes the batch: compresses the records if asked to, then fills in the header,
    /// the length and the CRC. Returns the batch's size in bytes.
    pub fn finish(self) -> Result<usize, EncodeError> {
        let RecordBatchEncoder {
            out,
            start,
            header,
            scratch,
            count,
            last_offset_delta,
            base_timestamp,
            max_timestamp,
            ..
        } = self;
        let summary = BatchSummary {
            count,
            last_offset_delta,
            base_timestamp,
            max_timestamp,
        };
        let result = match scratch {
            Some(records) => compress_records(out, &header, &records),
            None => Ok(()),
        }
        .and_then(|()| fill_header(out, start, &header, &summary));
        match result {
            Ok(size) => Ok(size),
            Err(e) => {
                out.truncate(start);
                Err(e)
            }
        }
    }
}

/// What a batch's header says about its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSummary {
    /// How many records the batch holds.
    pub count: i32,
    /// The offset delta of the last record.
    pub last_offset_delta: i32,
    /// The first record's timestamp.
    pub base_timestamp: i64,
    /// The largest timestamp.
    pub max_timestamp: i64,
}

/// Appends a whole v2 batch to `out` from a records section written by [`encode_record`]
/// (uncompressed; compressed here if `header` asks for a codec) and what it holds. This is
/// how a producer seals a batch it accumulated record by record: the producer id, epoch and
/// sequence number can be chosen at that moment. Returns the batch's size; on error nothing
/// is appended.
pub fn seal_batch(
    out: &mut Vec<u8>,
    header: &BatchHeader,
    records: &[u8],
    summary: &BatchSummary,
) -> Result<usize, EncodeError> {
    let start = out.len();
    out.resize(start + HEADER_LEN, 0);
    let result = if header.compression == Compression::None {
        out.extend_from_slice(records);
        Ok(())
    } else {
        compress_records(out, header, records)
    }
    .and_then(|()| fill_header(out, start, header, summary));
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn compress_records(out: &mut Vec<u8>, header: &BatchHeader, records: &[u8]) -> EncodeResult {
    let mut options = header.compress_options;
    options.lz4_legacy_header_checksum = false;
    compression::compress(header.compression, records, out, &options)
}

/// Seals in place a v2 batch whose uncompressed records follow [`HEADER_LEN`] bytes
/// reserved at the start of `buf`: the header, length and CRC are written over the reserved
/// bytes (whatever they held). Returns the batch's size. `header.compression` must be
/// `None` (a compressed batch cannot be written in place).
pub fn seal_batch_in_place(
    buf: &mut [u8],
    header: &BatchHeader,
    summary: &BatchSummary,
) -> Result<usize, EncodeError> {
    if buf.len() < HEADER_LEN || header.compression != Compression::None {
        return Err(EncodeError::Invalid(
            "in-place sealing needs uncompressed records after a reserved header",
        ));
    }
    fill_header(buf, 0, header, summary)
}

/// Fills in the header, length and CRC of the batch that starts at `start` and ends the
/// buffer; returns its size.
fn fill_header(
    out: &mut [u8],
    start: usize,
    header: &BatchHeader,
    summary: &BatchSummary,
) -> Result<usize, EncodeError> {
    let size = out.len() - start;
    let batch_length =
        i32::try_from(size - LOG_OVERHEAD).map_err(|_| EncodeError::TooLong("record batch"))?;
    let h = &mut out[start..start + HEADER_LEN];
    h[0..8].copy_from_slice(&header.base_offset.to_be_bytes());
    h[8..12].copy_from_slice(&batch_length.to_be_bytes());
    h[12..16].copy_from_slice(&header.partition_leader_epoch.to_be_bytes());
    h[16] = MAGIC as u8;
    h[21..23].copy_from_slice(&header.attributes().to_be_bytes());
    h[23..27].copy_from_slice(&summary.last_offset_delta.to_be_bytes());
    h[27..35].copy_from_slice(&summary.base_timestamp.to_be_bytes());
    h[35..43].copy_from_slice(&summary.max_timestamp.to_be_bytes());
    h[43..51].copy_from_slice(&header.producer_id.to_be_bytes());
    h[51..53].copy_from_slice(&header.producer_epoch.to_be_bytes());
    h[53..57].copy_from_slice(&header.base_sequence.to_be_bytes());
    h[57..61].copy_from_slice(&summary.count.to_be_bytes());
    let crc = crc32c::crc32c(&out[start + ATTRIBUTES_OFFSET..]);
    out[start + CRC_OFFSET..start + ATTRIBUTES_OFFSET].copy_from_slice(&crc.to_be_bytes());
    Ok(size)
}

/// Encodes `records` as one v2 batch appended to `out`. Each record's offset delta is its
/// offset minus `header.base_offset`; its timestamp type is taken from the header.
pub fn encode_record_batch(
    out: &mut Vec<u8>,
    header: &BatchHeader,
    records: &[Record],
) -> Result<usize, EncodeError> {
    let mut enc = RecordBatchEncoder::new(out, header);
    for r in records {
        let delta = r
            .offset
            .checked_sub(header.base_offset)
            .and_then(|d| i32::try_from(d).ok())
            .ok_or(EncodeError::TooLong("record offset delta"))?;
        if let Err(e) = enc.append_at(
            delta,
            r.timestamp,
            r.key.as_deref(),
            r.value.as_deref(),
            &r.headers,
        ) {
            let start = enc.start;
            enc.out.truncate(start);
            return Err(e);
        }
    }
    enc.finish()
}

#[inline]
fn len_i32(n: usize, what: &'static str) -> Result<i32, EncodeError> {
    i32::try_from(n).map_err(|_| EncodeError::TooLong(what))
}

/// The size of `v` as a zig-zag varint (same as `varint_len`/`varlong_len`). Record fields
/// are almost always one or two bytes, so those are compares; the general case is
/// branch-free (7 bits per byte is about 9/64 bytes per bit).
#[inline(always)]
pub(super) fn zigzag_size(v: i64) -> usize {
    let u = ((v << 1) ^ (v >> 63)) as u64;
    if u < 0x80 {
        1
    } else if u < 0x4000 {
        2
    } else {
        (((63 - (u | 1).leading_zeros()) * 9 + 73) / 64) as usize
    }
}

/// The size of a nullable byte field: its varint length, then the bytes.
#[inline]
fn nullable_size(v: Option<&[u8]>) -> Result<usize, EncodeError> {
    Ok(match v {
        None => 1,
        Some(b) => zigzag_size(len_i32(b.len(), "record field")? as i64) + b.len(),
    })
}

/// Keys up to this size are staged with the varints around them, so that a record with a
/// short key costs two slice copies (prefix + key + value length, then the value).
const SMALL_KEY: usize = 32;
/// The room the stage needs: length (5), attributes (1), timestamp delta (10), offset delta
/// (5), key length (5), a small key, value length (5).
const RECORD_PREFIX_MAX: usize = 31 + SMALL_KEY;

/// A small stack buffer for the varints between a record's variable-length fields, so that
/// the output grows by whole slices (no zero fill, no per-byte capacity checks).
struct Prefix {
    buf: [u8; RECORD_PREFIX_MAX],
    len: usize,
}

impl Prefix {
    #[inline(always)]
    fn new() -> Self {
        Prefix {
            buf: [0; RECORD_PREFIX_MAX],
            len: 0,
        }
    }

    #[inline(always)]
    fn byte(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    /// Writes an unsigned LEB128 value (already zig-zagged).
    #[inline(always)]
    fn uvarint(&mut self, mut u: u64) {
        while u >= 0x80 {
            self.byte((u as u8) | 0x80);
            u >>= 7;
        }
        self.byte(u as u8);
    }

    #[inline(always)]
    fn varint(&mut self, v: i32) {
        self.uvarint(((v << 1) ^ (v >> 31)) as u32 as u64);
    }

    #[inline(always)]
    fn varlong(&mut self, v: i64) {
        self.uvarint(((v << 1) ^ (v >> 63)) as u64);
    }

    /// Writes a nullable field's length (-1 for null).
    #[inline(always)]
    fn nullable_len(&mut self, v: Option<&[u8]>) {
        // Lengths were checked to fit an i32 when the size was computed.
        self.varint(v.map_or(-1, |b| b.len() as i32));
    }

    /// Moves what was written to `out` and starts again.
    #[inline(always)]
    fn flush(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.buf[..self.len]);
        self.len = 0;
    }
}

/// A record header as the encoder reads it: owned ([`Header`]) or borrowed
/// (`(&str, Option<&[u8]>)`), so that a producer need not allocate to pass headers.
pub trait HeaderSource {
    /// The header's key.
    fn key(&self) -> &str;
    /// The header's value; `None` is null.
    fn value(&self) -> Option<&[u8]>;
}

impl HeaderSource for Header {
    fn key(&self) -> &str {
        &self.key
    }
    fn value(&self) -> Option<&[u8]> {
        self.value.as_deref()
    }
}

impl HeaderSource for (&str, Option<&[u8]>) {
    fn key(&self) -> &str {
        self.0
    }
    fn value(&self) -> Option<&[u8]> {
        self.1
    }
}

/// Appends one record in the v2 layout to `out`, a batch's records section (see
/// [`seal_batch`]). Nothing is allocated beyond the growth of `out`.
pub fn encode_record<H: HeaderSource>(
    out: &mut Vec<u8>,
    offset_delta: i32,
    timestamp_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[H],
) -> EncodeResult {
    put_record(out, offset_delta, timestamp_delta, key, value, headers)
}

/// Writes one record, its length computed up front so that nothing is moved afterwards.
#[inline(always)]
fn put_record<H: HeaderSource>(
    out: &mut Vec<u8>,
    offset_delta: i32,
    timestamp_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[H],
) -> EncodeResult {
    let mut body = 1 + zigzag_size(timestamp_delta) + zigzag_size(offset_delta as i64);
    body += nullable_size(key)? + nullable_size(value)?;
    body += zigzag_size(len_i32(headers.len(), "record headers")? as i64);
    for h in headers {
        body += zigzag_size(len_i32(h.key().len(), "header key")? as i64) + h.key().len();
        body += nullable_size(h.value())?;
    }
    let body_len = len_i32(body, "record")?;
    let total = zigzag_size(body_len as i64) + body;
    let at = out.len();
    out.reserve(total);
    let mut p = Prefix::new();
    p.varint(body_len);
    p.byte(0); // attributes: unused
    p.varlong(timestamp_delta);
    p.varint(offset_delta);
    p.nullable_len(key);
    match key {
        Some(k) if k.len() <= SMALL_KEY => {
            p.buf[p.len..p.len + k.len()].copy_from_slice(k);
            p.len += k.len();
        }
        Some(k) => {
            p.flush(out);
            out.extend_from_slice(k);
        }
        None => {}
    }
    p.nullable_len(value);
    p.flush(out);
    if let Some(v) = value {
        out.extend_from_slice(v);
    }
    p.varint(headers.len() as i32);
    p.flush(out);
    for h in headers {
        p.varint(h.key().len() as i32);
        p.flush(out);
        out.extend_from_slice(h.key().as_bytes());
        p.nullable_len(h.value());
        p.flush(out);
        if let Some(v) = h.value() {
            out.extend_from_slice(v);
        }
    }
    debug_assert_eq!(out.len() - at, total);
    Ok(())
}

/// The last offset delta of a whole v2 batch (at least [`HEADER_LEN`] bytes).
pub(super) fn last_offset_delta(batch: &[u8]) -> i32 {
    let b = &batch[LAST_OFFSET_DELTA_OFFSET..LAST_OFFSET_DELTA_OFFSET + 4];
    i32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Checks and parses a whole framed v2 batch; decompresses its records if needed.
pub(super) fn decode_batch(bytes: Bytes, limits: &DecodeLimits) -> Result<Batch, DecodeError> {
    let size_in_bytes = bytes.len();
    let mut c = Cursor::new(&bytes);
    let base_offset = c.i64()?;
    let _length = c.i32()?;
    let partition_leader_epoch = c.i32()?;
    let magic = c.i8()?;
    debug_assert_eq!(magic, MAGIC);
    let stored = c.u32()?;
    if limits.verify_crc {
        let computed = crc32c::crc32c(&bytes[ATTRIBUTES_OFFSET..]);
        if computed != stored {
            return Err(DecodeError::CrcMismatch { computed, stored });
        }
    }
    let attributes = c.i16()?;
    let last_offset_delta = c.i32()?;
    let base_timestamp = c.i64()?;
    let max_timestamp = c.i64()?;
    let producer_id = c.i64()?;
    let producer_epoch = c.i16()?;
    let base_sequence = c.i32()?;
    let count = c.i32()?;
    debug_assert_eq!(c.pos, HEADER_LEN);
    debug_assert_eq!(RECORDS_COUNT_OFFSET + 4, HEADER_LEN);
    debug_assert_eq!(LENGTH_OFFSET + 4, LOG_OVERHEAD);
    if count < 0 {
        return Err(DecodeError::InvalidLength(count as i64));
    }
    let compression = Compression::from_code(attributes as u8 & COMPRESSION_MASK)?;
    let timestamp_type = if attributes as u8 & TIMESTAMP_TYPE_BIT != 0 {
        TimestampType::LogAppendTime
    } else {
        TimestampType::CreateTime
    };
    let data = match compression {
        Compression::None => bytes.slice(HEADER_LEN..),
        codec => {
            compression::decompress(codec, &bytes[HEADER_LEN..], limits.max_decompressed_size)?
        }
    };
    check_data_len(&data)?;
    // Every record takes at least 7 bytes: refuse absurd counts before iterating.
    if count as usize > data.len() {
        return Err(malformed("record count larger than the batch"));
    }
    Ok(Batch {
        base_offset,
        last_offset: base_offset.wrapping_add(last_offset_delta as i64),
        partition_leader_epoch,
        magic: MAGIC,
        compression,
        timestamp_type,
        transactional: attributes & TRANSACTIONAL_BIT != 0,
        control: attributes & CONTROL_BIT != 0,
        base_timestamp,
        max_timestamp,
        producer_id,
        producer_epoch,
        base_sequence,
        record_count: count,
        size_in_bytes,
        body: Body::V2 {
            data,
            count,
            base_offset,
            base_timestamp,
            log_append_time: (timestamp_type == TimestampType::LogAppendTime)
                .then_some(max_timestamp),
        },
    })
}

/// Parses the record at `*pos` in a batch's records section and advances past it. Headers
/// are checked (structure and UTF-8 keys) but not collected.
#[inline(always)]
pub(super) fn parse_record(
    data: &[u8],
    pos: &mut usize,
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
) -> Result<RawRecord, DecodeError> {
    let mut c = Cursor {
        buf: data,
        pos: *pos,
    };
    let len = c.varint()?;
    if len < 0 {
        return Err(DecodeError::InvalidLength(len as i64));
    }
    let len = len as usize;
    if len > c.remaining() {
        return Err(DecodeError::UnexpectedEof {
            needed: len - c.remaining(),
        });
    }
    let end = c.pos + len;
    // Parse within the record's own bytes so that no field can run past it.
    let mut c = Cursor {
        buf: &data[..end],
        pos: c.pos,
    };
    let _attributes = c.i8()?;
    let timestamp_delta = c.varlong()?;
    let offset_delta = c.varint()?;
    let key_len = c.varint()?;
    let key = c.nullable_range(key_len)?;
    let value_len = c.varint()?;
    let value = c.nullable_range(value_len)?;
    let header_count = c.varint()?;
    if header_count < 0 {
        return Err(DecodeError::InvalidLength(header_count as i64));
    }
    let headers_start = c.pos;
    if header_count > 0 {
        check_headers(&mut c, header_count as u32)?;
    }
    if c.pos != end {
        return Err(malformed("record length does not match its fields"));
    }
    *pos = end;
    let (timestamp, timestamp_type) = match log_append_time {
        Some(t) => (t, TimestampType::LogAppendTime),
        None => (
            base_timestamp.wrapping_add(timestamp_delta),
            TimestampType::CreateTime,
        ),
    };
    Ok(RawRecord {
        offset: base_offset.wrapping_add(offset_delta as i64),
        timestamp,
        timestamp_type,
        key: Span::from_range(key),
        value: Span::from_range(value),
        headers: (headers_start as u32, end as u32, header_count as u32),
    })
}

/// Walks `count` headers, checking their structure and keys.
#[cold]
fn check_headers(c: &mut Cursor<'_>, count: u32) -> Result<(), DecodeError> {
    for _ in 0..count {
        let key_len = c.varint()?;
        let Some((a, b)) = c.nullable_range(key_len)? else {
            return Err(DecodeError::UnexpectedNull("header key"));
        };
        std::str::from_utf8(&c.buf[a..b]).map_err(|_| DecodeError::InvalidUtf8)?;
        let value_len = c.varint()?;
        c.nullable_range(value_len)?;
    }
    Ok(())
}

/// Reads the next header of a checked header section (see [`check_headers`]).
#[inline]
pub(super) fn next_header<'a>(c: &mut Cursor<'a>) -> Option<(&'a str, Option<&'a [u8]>)> {
    let key_len = c.varint().ok()?;
    let (a, b) = c.nullable_range(key_len).ok()??;
    let key = std::str::from_utf8(&c.buf[a..b]).ok()?;
    let value_len = c.varint().ok()?;
    let value = c.nullable_range(value_len).ok()?.map(|(a, b)| &c.buf[a..b]);
    Some((key, value))
}

/// Collects a checked header section into owned headers, values sliced from `data`.
#[cold]
pub(super) fn owned_headers(data: &Bytes, (start, end, count): (u32, u32, u32)) -> Vec<Header> {
    let (start, end) = (start as usize, end as usize);
    let mut c = Cursor {
        buf: &data[..end],
        pos: start,
    };
    let mut headers = Vec::with_capacity(prealloc(count as usize, end - start));
    while let Some((key, value)) = next_header(&mut c) {
        let value = value.map(|v| data.slice_ref(v));
        headers.push(Header {
            key: key.to_owned(),
            value,
        });
    }
    headers
}

/// The kind of a control record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ControlRecordType {
    /// A transaction was aborted (type 0).
    Abort,
    /// A transaction was committed (type 1).
    Commit,
    /// Any other type (KRaft uses some for its own log); kept as read.
    Other(i16),
}

impl ControlRecordType {
    /// The type's code.
    pub fn code(self) -> i16 {
        match self {
            ControlRecordType::Abort => 0,
            ControlRecordType::Commit => 1,
            ControlRecordType::Other(c) => c,
        }
    }

    /// The type a code names.
    pub fn from_code(code: i16) -> Self {
        match code {
            0 => ControlRecordType::Abort,
            1 => ControlRecordType::Commit,
            c => ControlRecordType::Other(c),
        }
    }
}

/// A control record, the content of a control batch: a key of `version int16, type int16`
/// and, for transaction markers, a value of `version int16, coordinatorEpoch int32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ControlRecord {
    /// The key's version (0).
    pub version: i16,
    /// What the record marks.
    pub kind: ControlRecordType,
    /// For transaction markers, the transaction coordinator's epoch, if the value has it.
    pub coordinator_epoch: Option<i32>,
}

impl ControlRecord {
    /// Reads a control record from a record of a control batch.
    pub fn from_record(record: &Record) -> Result<Self, DecodeError> {
        let key = record
            .key
            .as_deref()
            .ok_or(DecodeError::UnexpectedNull("control record key"))?;
        let mut c = Cursor::new(key);
        let version = c.i16()?;
        let kind = ControlRecordType::from_code(c.i16()?);
        let coordinator_epoch = match (kind, record.value.as_deref()) {
            (ControlRecordType::Abort | ControlRecordType::Commit, Some(v)) if v.len() >= 6 => {
                let mut c = Cursor::new(v);
                let _value_version = c.i16()?;
                Some(c.i32()?)
            }
            _ => None,
        };
        Ok(ControlRecord {
            version,
            kind,
            coordinator_epoch,
        })
    }

    /// Appends a whole control batch holding this transaction marker to `out`. The header
    /// should name the producer and be transactional; it is marked as control here.
    pub fn encode_marker_batch(
        &self,
        out: &mut Vec<u8>,
        header: &BatchHeader,
        timestamp: i64,
    ) -> Result<usize, EncodeError> {
        let mut key = [0u8; 4];
        key[..2].copy_from_slice(&self.version.to_be_bytes());
        key[2..].copy_from_slice(&self.kind.code().to_be_bytes());
        let mut value = [0u8; 6];
        value[2..].copy_from_slice(&self.coordinator_epoch.unwrap_or(0).to_be_bytes());
        let mut header = *header;
        header.control = true;
        let mut enc = RecordBatchEncoder::new(out, &header);
        enc.append(timestamp, Some(&key), Some(&value), &[])?;
        enc.finish()
    }
}
