//! The unified reader: framing batches of either format, and iterating their records.

use bytes::Bytes;

use super::{batch, legacy, malformed, Batch, DecodeLimits, Record, TimestampType};
use crate::protocol::error::DecodeError;

/// Both layouts: offset (8), size of the rest (4), then 4 bytes (CRC or leader epoch), then
/// the magic byte.
pub(super) const LOG_OVERHEAD: usize = 12;
const MAGIC_OFFSET: usize = 16;

/// A bounds-checked cursor over a byte slice, for the hot decoding loops.
pub(super) struct Cursor<'a> {
    pub(super) buf: &'a [u8],
    pub(super) pos: usize,
}

macro_rules! fixed {
    ($name:ident, $t:ty, $n:expr) => {
        #[inline]
        pub(super) fn $name(&mut self) -> Result<$t, DecodeError> {
            let b = self.take($n)?;
            let mut a = [0u8; $n];
            a.copy_from_slice(b);
            Ok(<$t>::from_be_bytes(a))
        }
    };
}

impl<'a> Cursor<'a> {
    #[inline]
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    #[inline]
    pub(super) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    #[inline(always)]
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::UnexpectedEof {
                needed: n - self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fixed!(i8, i8, 1);
    fixed!(i16, i16, 2);
    fixed!(i32, i32, 4);
    fixed!(u32, u32, 4);
    fixed!(i64, i64, 8);

    #[inline]
    fn unsigned_varlong(&mut self, max_bytes: usize) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for i in 0..max_bytes {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(DecodeError::UnexpectedEof { needed: 1 });
            };
            self.pos += 1;
            value |= ((b & 0x7f) as u64) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::VarintTooLong(max_bytes))
    }

    /// A zig-zag varint of at most 32 bits.
    #[inline(always)]
    pub(super) fn varint(&mut self) -> Result<i32, DecodeError> {
        // The common cases, one or two bytes, without a loop.
        let v = match (self.buf.get(self.pos), self.buf.get(self.pos + 1)) {
            (Some(&b0), _) if b0 < 0x80 => {
                self.pos += 1;
                b0 as u32
            }
            (Some(&b0), Some(&b1)) if b1 < 0x80 => {
                self.pos += 2;
                (b0 & 0x7f) as u32 | (b1 as u32) << 7
            }
            _ => self.varint_slow()?,
        };
        Ok(((v >> 1) as i32) ^ -((v & 1) as i32))
    }

    #[inline(never)]
    fn varint_slow(&mut self) -> Result<u32, DecodeError> {
        let v = self.unsigned_varlong(5)?;
        if v > u32::MAX as u64 {
            return Err(DecodeError::VarintTooLong(5));
        }
        Ok(v as u32)
    }

    /// A zig-zag varlong.
    #[inline(always)]
    pub(super) fn varlong(&mut self) -> Result<i64, DecodeError> {
        let v = match (self.buf.get(self.pos), self.buf.get(self.pos + 1)) {
            (Some(&b0), _) if b0 < 0x80 => {
                self.pos += 1;
                b0 as u64
            }
            (Some(&b0), Some(&b1)) if b1 < 0x80 => {
                self.pos += 2;
                (b0 & 0x7f) as u64 | (b1 as u64) << 7
            }
            _ => self.unsigned_varlong(10)?,
        };
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    /// A length (varint or `int32`), `None` for -1, checked against what is left; returns
    /// the byte range it covers.
    #[inline(always)]
    pub(super) fn nullable_range(
        &mut self,
        len: i32,
    ) -> Result<Option<(usize, usize)>, DecodeError> {
        match len {
            -1 => Ok(None),
            n if n < 0 => Err(DecodeError::InvalidLength(n as i64)),
            n => {
                let start = self.pos;
                self.take(n as usize)?;
                Ok(Some((start, start + n as usize)))
            }
        }
    }
}

/// Slices `data` by an optional range, without copying.
#[inline]
pub(super) fn slice(data: &Bytes, range: Option<(usize, usize)>) -> Option<Bytes> {
    range.map(|(a, b)| data.slice(a..b))
}

/// How a batch's records are laid out, once framed, checked and decompressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body {
    /// Record batch v2: `count` records from the start of `data`.
    V2 {
        data: Bytes,
        count: i32,
        base_offset: i64,
        base_timestamp: i64,
        /// With log-append time every record carries the batch's max timestamp.
        log_append_time: Option<i64>,
    },
    /// A legacy message set: inner messages of a wrapper, or one uncompressed message.
    Legacy {
        data: Bytes,
        /// Added to each message's offset (non-zero for v1 relative offsets).
        offset_delta: i64,
        /// The wrapper's timestamp when it overrides the inner ones (log-append time).
        timestamp_override: Option<i64>,
        verify_crc: bool,
    },
}

/// An iterator over the batches in a partition's `records` bytes, of any format.
///
/// Yields `Err` once and then ends if the bytes are malformed. A batch cut short at the
/// end (the broker stops at the fetch size) ends the iteration cleanly: see
/// [`Batches::truncated`].
#[derive(Debug, Clone)]
pub struct Batches {
    buf: Bytes,
    limits: DecodeLimits,
    next_offset: Option<i64>,
    truncated: Option<usize>,
    failed: bool,
}

impl Batches {
    /// Reads `records` with `limits`.
    pub fn new(records: Bytes, limits: DecodeLimits) -> Self {
        Batches {
            buf: records,
            limits,
            next_offset: None,
            truncated: None,
            failed: false,
        }
    }

    /// The offset after the last whole batch read so far (what to fetch next), or `None`
    /// if none has been read.
    pub fn next_offset(&self) -> Option<i64> {
        self.next_offset
    }

    /// After the iteration ended cleanly: `Some(size)` if the bytes ended in a partial
    /// batch, with the batch's full size when its size field was received (0 if not).
    /// A partial first batch means the fetch size is smaller than that batch.
    pub fn truncated(&self) -> Option<usize> {
        self.truncated
    }

    /// The bytes not read yet.
    pub fn remaining(&self) -> &Bytes {
        &self.buf
    }

    fn next_batch(&mut self) -> Result<Option<Batch>, DecodeError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let Some((size, magic)) = frame(&self.buf)? else {
            self.truncated = Some(partial_size(&self.buf));
            self.buf.clear();
            return Ok(None);
        };
        if magic != 2 && self.limits.message_runs {
            if let Some(run) = legacy::decode_run(&mut self.buf, size, &self.limits)? {
                self.next_offset = Some(run.next_offset());
                return Ok(Some(run));
            }
        }
        let bytes = self.buf.split_to(size);
        let batch = match magic {
            0 | 1 => legacy::decode_batch(bytes, &self.limits)?,
            2 => batch::decode_batch(bytes, &self.limits)?,
            other => return Err(DecodeError::UnknownMagic(other)),
        };
        self.next_offset = Some(batch.next_offset());
        Ok(Some(batch))
    }
}

impl Iterator for Batches {
    type Item = Result<Batch, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_batch() {
            Ok(b) => b.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

impl std::iter::FusedIterator for Batches {}

/// The full size a partial batch announces, if its size field arrived.
fn partial_size(buf: &[u8]) -> usize {
    if buf.len() < LOG_OVERHEAD {
        return 0;
    }
    let n = i32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
    (n.max(0) as usize).saturating_add(LOG_OVERHEAD)
}

/// Frames the batch at the front of `buf`: `Some((total size, magic))`, or `None` if the
/// bytes end before it does.
pub(super) fn frame(buf: &[u8]) -> Result<Option<(usize, i8)>, DecodeError> {
    if buf.len() < LOG_OVERHEAD {
        return Ok(None);
    }
    let n = i32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
    if n < 0 {
        return Err(DecodeError::InvalidLength(n as i64));
    }
    let size = n as usize + LOG_OVERHEAD;
    if buf.len() <= MAGIC_OFFSET || buf.len() < size {
        return Ok(None);
    }
    let magic = buf[MAGIC_OFFSET] as i8;
    let min = match magic {
        0 => legacy::MIN_MESSAGE_V0,
        1 => legacy::MIN_MESSAGE_V1,
        2 => batch::HEADER_LEN,
        other => return Err(DecodeError::UnknownMagic(other)),
    };
    if size < min {
        return Err(malformed("batch smaller than its header"));
    }
    Ok(Some((size, magic)))
}

/// The offset to fetch after the whole batches in `records`, from their headers alone
/// (nothing is decompressed or checked): `None` if not even one batch is whole.
pub fn next_fetch_offset(records: &[u8]) -> Option<i64> {
    let mut rest = records;
    let mut next = None;
    while let Ok(Some((size, magic))) = frame(rest) {
        let base = i64::from_be_bytes(rest[..8].try_into().ok()?);
        let last = if magic == 2 {
            base.wrapping_add(batch::last_offset_delta(&rest[..size]) as i64)
        } else {
            // A legacy wrapper carries the offset of its last inner message.
            base
        };
        next = Some(last.wrapping_add(1));
        rest = &rest[size..];
    }
    next
}

/// A record as parsed: fields as ranges of the batch's data, headers checked but not
/// collected (start, end, count).
#[derive(Debug, Clone, Copy)]
pub(super) struct RawRecord {
    pub(super) offset: i64,
    pub(super) timestamp: i64,
    pub(super) timestamp_type: TimestampType,
    pub(super) key: Span,
    pub(super) value: Span,
    pub(super) headers: (u32, u32, u32),
}

/// A nullable range of a batch's data, kept small because it is moved for every record
/// (batch data never exceeds `u32::MAX` bytes: see [`check_data_len`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct Span {
    start: u32,
    end: u32,
}

impl Span {
    const NULL: Span = Span {
        start: u32::MAX,
        end: 0,
    };

    #[inline(always)]
    pub(super) fn from_range(r: Option<(usize, usize)>) -> Span {
        match r {
            Some((a, b)) => Span {
                start: a as u32,
                end: b as u32,
            },
            None => Span::NULL,
        }
    }

    #[inline(always)]
    fn get(self) -> Option<(usize, usize)> {
        (self.start != u32::MAX).then_some((self.start as usize, self.end as usize))
    }
}

/// Refuses batch data too large for [`Span`]s.
pub(super) fn check_data_len(data: &[u8]) -> Result<(), DecodeError> {
    if data.len() >= u32::MAX as usize {
        return Err(DecodeError::DecompressedTooLarge {
            max: u32::MAX as usize - 1,
        });
    }
    Ok(())
}

/// Where an iteration over a batch's records stands.
#[derive(Debug, Clone, Copy)]
struct Position {
    pos: usize,
    left: i32,
    failed: bool,
}

impl Position {
    fn new(batch: &Batch) -> Self {
        Position {
            pos: 0,
            left: batch.record_count,
            failed: false,
        }
    }

    /// Parses the next record of `body`; after an error, ends.
    #[inline(always)]
    fn next(&mut self, body: &Body) -> Option<Result<RawRecord, DecodeError>> {
        if self.failed {
            return None;
        }
        match self.step(body) {
            Ok(r) => r.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }

    #[inline(always)]
    fn step(&mut self, body: &Body) -> Result<Option<RawRecord>, DecodeError> {
        match body {
            Body::V2 {
                data,
                base_offset,
                base_timestamp,
                log_append_time,
                ..
            } => {
                if self.left <= 0 {
                    if self.pos != data.len() {
                        return Err(malformed("record batch has bytes past its last record"));
                    }
                    return Ok(None);
                }
                let r = batch::parse_record(
                    data,
                    &mut self.pos,
                    *base_offset,
                    *base_timestamp,
                    *log_append_time,
                )?;
                self.left -= 1;
                Ok(Some(r))
            }
            Body::Legacy {
                data,
                offset_delta,
                timestamp_override,
                verify_crc,
            } => {
                if self.pos >= data.len() {
                    return Ok(None);
                }
                let r = legacy::parse_inner(
                    data,
                    &mut self.pos,
                    *offset_delta,
                    *timestamp_override,
                    *verify_crc,
                )?;
                self.left -= 1;
                Ok(Some(r))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.failed {
            (0, Some(0))
        } else {
            (0, Some(self.left.max(0) as usize))
        }
    }
}

impl Body {
    fn data(&self) -> &Bytes {
        match self {
            Body::V2 { data, .. } | Body::Legacy { data, .. } => data,
        }
    }
}

/// A lazy iterator over one batch's records as owned [`Record`]s, whose keys and values
/// share the batch's buffer. Yields `Err` once and then ends on malformed input.
#[derive(Debug, Clone)]
pub struct Records {
    body: Body,
    at: Position,
}

impl Records {
    pub(super) fn new(batch: &Batch) -> Self {
        Records {
            body: batch.body.clone(),
            at: Position::new(batch),
        }
    }
}

impl Iterator for Records {
    type Item = Result<Record, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let raw = match self.at.next(&self.body)? {
            Ok(raw) => raw,
            Err(e) => return Some(Err(e)),
        };
        let data = self.body.data();
        Some(Ok(Record {
            offset: raw.offset,
            timestamp: raw.timestamp,
            timestamp_type: raw.timestamp_type,
            key: slice(data, raw.key.get()),
            value: slice(data, raw.value.get()),
            headers: if raw.headers.2 == 0 {
                Vec::new()
            } else {
                batch::owned_headers(data, raw.headers)
            },
        }))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.at.size_hint()
    }
}

impl std::iter::FusedIterator for Records {}

/// A record borrowed from its [`Batch`]: no reference counting, no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// The record's absolute offset in its partition.
    pub offset: i64,
    /// Milliseconds since the epoch, or -1 if the format has none.
    pub timestamp: i64,
    /// What the timestamp means.
    pub timestamp_type: TimestampType,
    /// The key; `None` is null.
    pub key: Option<&'a [u8]>,
    /// The value; `None` is null.
    pub value: Option<&'a [u8]>,
    /// The headers, read as they are iterated.
    pub headers: HeaderRefs<'a>,
}

impl RecordRef<'_> {
    /// An owned copy (keys, values and header values are copied).
    pub fn to_record(&self) -> Record {
        Record {
            offset: self.offset,
            timestamp: self.timestamp,
            timestamp_type: self.timestamp_type,
            key: self.key.map(Bytes::copy_from_slice),
            value: self.value.map(Bytes::copy_from_slice),
            headers: self
                .headers
                .map(|(k, v)| super::Header {
                    key: k.to_owned(),
                    value: v.map(Bytes::copy_from_slice),
                })
                .collect(),
        }
    }
}

/// The headers of a [`RecordRef`], as `(key, value)` pairs. They were checked when the
/// record was read, so iterating cannot fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderRefs<'a> {
    cursor_buf: &'a [u8],
    pos: usize,
    left: u32,
}

impl HeaderRefs<'_> {
    /// How many headers are left.
    pub fn len(&self) -> usize {
        self.left as usize
    }

    /// Whether no header is left.
    pub fn is_empty(&self) -> bool {
        self.left == 0
    }
}

impl<'a> Iterator for HeaderRefs<'a> {
    type Item = (&'a str, Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let mut c = Cursor {
            buf: self.cursor_buf,
            pos: self.pos,
        };
        let h = batch::next_header(&mut c);
        self.pos = c.pos;
        self.left = if h.is_some() { self.left - 1 } else { 0 };
        h
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left as usize))
    }
}

/// A lazy iterator over one batch's records as [`RecordRef`]s borrowed from the batch:
/// the cheapest way to read. Yields `Err` once and then ends on malformed input.
#[derive(Debug, Clone)]
pub struct RecordRefs<'a> {
    body: &'a Body,
    at: Position,
}

impl<'a> RecordRefs<'a> {
    pub(super) fn new(batch: &'a Batch) -> Self {
        RecordRefs {
            body: &batch.body,
            at: Position::new(batch),
        }
    }
}

impl<'a> Iterator for RecordRefs<'a> {
    type Item = Result<RecordRef<'a>, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let raw = match self.at.next(self.body)? {
            Ok(raw) => raw,
            Err(e) => return Some(Err(e)),
        };
        let data: &'a [u8] = self.body.data();
        let (hs, he, count) = raw.headers;
        let (hs, he) = (hs as usize, he as usize);
        Some(Ok(RecordRef {
            offset: raw.offset,
            timestamp: raw.timestamp,
            timestamp_type: raw.timestamp_type,
            key: raw.key.get().map(|(a, b)| &data[a..b]),
            value: raw.value.get().map(|(a, b)| &data[a..b]),
            headers: HeaderRefs {
                cursor_buf: &data[..he],
                pos: hs,
                left: count,
            },
        }))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.at.size_hint()
    }
}

impl std::iter::FusedIterator for RecordRefs<'_> {}
