//! Kafka's primitive wire types: fixed-width integers, varints, strings, byte arrays,
//! array lengths, UUIDs and tagged fields, in both the classic and the compact
//! ("flexible version") encodings.
//!
//! Decoding reads from a [`Bytes`] cursor (`&mut Bytes`, advanced as values are read) so that
//! byte fields can be zero-copy slices of the received frame. Every read checks what is
//! left first, so no input can panic. Encoding appends to a caller-owned `Vec<u8>`.
//!
//! Lengths read from the wire are never trusted for allocation: see [`prealloc`]. What a
//! decoded message holds is bounded per byte read: see [`MAX_DECODED_BYTES_PER_WIRE_BYTE`]
//! and [`UnknownTaggedFields`].

use bytes::{Buf, Bytes};

use super::error::{DecodeError, EncodeError};

/// The result of a decode step.
pub type DecodeResult<T> = Result<T, DecodeError>;
/// The result of an encode step.
pub type EncodeResult = Result<(), EncodeError>;

/// A value that can be written in a given API version.
pub trait Encode {
    /// Appends the value, as `version` lays it out, to `buf`.
    fn encode(&self, buf: &mut Vec<u8>, version: i16) -> EncodeResult;
}

/// A value that can be read in a given API version.
pub trait Decode: Sized {
    /// Reads one value, as `version` lays it out, from the front of `buf`, advancing it.
    fn decode(buf: &mut Bytes, version: i16) -> DecodeResult<Self>;
}

/// The most bytes of memory a decoded message holds per byte of its encoding, beyond the
/// top-level value itself (and the frame, which `bytes` fields share): the largest
/// in-memory size of an array element over its smallest wire size, for every generated
/// message and version, is under this (37.3, ListGroups v3 groups), as a generated test
/// checks. See [`decode_response`](super::header::decode_response) for what it means for a
/// whole frame.
pub const MAX_DECODED_BYTES_PER_WIRE_BYTE: usize = 40;

/// The most elements a decoder reserves room for up front, whatever the wire says. Larger
/// arrays grow as their elements are actually decoded, each of which consumes input.
pub const MAX_PREALLOC: usize = 1024;

/// How many elements to reserve for an array the wire says has `len` elements, when
/// `remaining` bytes are left and each element takes at least one byte.
#[inline]
pub fn prealloc(len: usize, remaining: usize) -> usize {
    len.min(remaining).min(MAX_PREALLOC)
}

#[inline]
fn need(buf: &Bytes, n: usize) -> DecodeResult<()> {
    if buf.len() < n {
        Err(DecodeError::UnexpectedEof {
            needed: n - buf.len(),
        })
    } else {
        Ok(())
    }
}

macro_rules! fixed {
    ($get:ident, $put:ident, $t:ty, $n:expr, $bget:ident) => {
        #[doc = concat!("Reads a big-endian `", stringify!($t), "`.")]
        #[inline]
        pub fn $get(buf: &mut Bytes) -> DecodeResult<$t> {
            need(buf, $n)?;
            Ok(buf.$bget())
        }
        #[doc = concat!("Writes a big-endian `", stringify!($t), "`.")]
        #[inline]
        pub fn $put(buf: &mut Vec<u8>, v: $t) {
            buf.extend_from_slice(&v.to_be_bytes());
        }
    };
}

fixed!(get_i8, put_i8, i8, 1, get_i8);
fixed!(get_i16, put_i16, i16, 2, get_i16);
fixed!(get_i32, put_i32, i32, 4, get_i32);
fixed!(get_i64, put_i64, i64, 8, get_i64);
fixed!(get_u16, put_u16, u16, 2, get_u16);
fixed!(get_u32, put_u32, u32, 4, get_u32);
fixed!(get_f64, put_f64, f64, 8, get_f64);

/// Reads a boolean (any non-zero byte is true, as the Java client reads it).
#[inline]
pub fn get_bool(buf: &mut Bytes) -> DecodeResult<bool> {
    Ok(get_i8(buf)? != 0)
}

/// Writes a boolean as 0 or 1.
#[inline]
pub fn put_bool(buf: &mut Vec<u8>, v: bool) {
    buf.push(v as u8);
}

/// A 128-bit UUID, as Kafka sends topic ids. The all-zero value is Kafka's "no id".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uuid(pub [u8; 16]);

/// Reads a UUID.
#[inline]
pub fn get_uuid(buf: &mut Bytes) -> DecodeResult<Uuid> {
    need(buf, 16)?;
    let mut id = [0u8; 16];
    buf.copy_to_slice(&mut id);
    Ok(Uuid(id))
}

/// Writes a UUID.
#[inline]
pub fn put_uuid(buf: &mut Vec<u8>, v: &Uuid) {
    buf.extend_from_slice(&v.0);
}

/// Reads an unsigned LEB128 varint of at most 32 bits.
#[inline]
pub fn get_unsigned_varint(buf: &mut Bytes) -> DecodeResult<u32> {
    let mut value: u32 = 0;
    for i in 0..5 {
        need(buf, 1)?;
        let b = buf.get_u8();
        if i == 4 && b > 0x0f {
            return Err(DecodeError::VarintTooLong(5));
        }
        value |= ((b & 0x7f) as u32) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::VarintTooLong(5))
}

/// Reads an unsigned LEB128 varint of at most 64 bits.
#[inline]
pub fn get_unsigned_varlong(buf: &mut Bytes) -> DecodeResult<u64> {
    let mut value: u64 = 0;
    for i in 0..10 {
        need(buf, 1)?;
        let b = buf.get_u8();
        if i == 9 && b > 0x01 {
            return Err(DecodeError::VarintTooLong(10));
        }
        value |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::VarintTooLong(10))
}

/// Writes an unsigned LEB128 varint.
#[inline]
pub fn put_unsigned_varint(buf: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Writes an unsigned LEB128 varlong.
#[inline]
pub fn put_unsigned_varlong(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Reads a zig-zag signed varint (32 bits).
#[inline]
pub fn get_varint(buf: &mut Bytes) -> DecodeResult<i32> {
    let v = get_unsigned_varint(buf)?;
    Ok(((v >> 1) as i32) ^ -((v & 1) as i32))
}

/// Writes a zig-zag signed varint (32 bits).
#[inline]
pub fn put_varint(buf: &mut Vec<u8>, v: i32) {
    put_unsigned_varint(buf, ((v << 1) ^ (v >> 31)) as u32);
}

/// Reads a zig-zag signed varlong (64 bits).
#[inline]
pub fn get_varlong(buf: &mut Bytes) -> DecodeResult<i64> {
    let v = get_unsigned_varlong(buf)?;
    Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
}

/// Writes a zig-zag signed varlong (64 bits).
#[inline]
pub fn put_varlong(buf: &mut Vec<u8>, v: i64) {
    put_unsigned_varlong(buf, ((v << 1) ^ (v >> 63)) as u64);
}

/// The number of bytes [`put_varint`] writes for `v`.
#[inline]
pub fn varint_len(v: i32) -> usize {
    unsigned_varint_len(((v << 1) ^ (v >> 31)) as u32)
}

/// The number of bytes [`put_varlong`] writes for `v`.
#[inline]
pub fn varlong_len(v: i64) -> usize {
    let z = ((v << 1) ^ (v >> 63)) as u64;
    (64 - (z | 1).leading_zeros() as usize).div_ceil(7)
}

/// The number of bytes [`put_unsigned_varint`] writes for `v`.
#[inline]
pub fn unsigned_varint_len(v: u32) -> usize {
    (32 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Splits `n` bytes off the front of `buf`, without copying.
#[inline]
pub fn take(buf: &mut Bytes, n: usize) -> DecodeResult<Bytes> {
    need(buf, n)?;
    Ok(buf.split_to(n))
}

/// Reads a length prefix: `int16`/`int32` in the classic encoding (`-1` is null), or an
/// unsigned varint holding length + 1 in the compact one (`0` is null). Returns `None` for
/// null. A length longer than what is left is an error when `bytes_per_item` is non-zero.
#[inline]
fn get_len(buf: &mut Bytes, compact: bool, wide: bool) -> DecodeResult<Option<usize>> {
    let len: i64 = if compact {
        get_unsigned_varint(buf)? as i64 - 1
    } else if wide {
        get_i32(buf)? as i64
    } else {
        get_i16(buf)? as i64
    };
    match len {
        -1 => Ok(None),
        n if n < 0 => Err(DecodeError::InvalidLength(n)),
        n => Ok(Some(n as usize)),
    }
}

/// Reads a nullable string (`None` is null).
pub fn get_nullable_string(buf: &mut Bytes, compact: bool) -> DecodeResult<Option<String>> {
    match get_len(buf, compact, false)? {
        None => Ok(None),
        Some(n) => {
            need(buf, n)?;
            let s = std::str::from_utf8(&buf[..n]).map_err(|_| DecodeError::InvalidUtf8)?;
            let s = s.to_owned();
            buf.advance(n);
            Ok(Some(s))
        }
    }
}

/// Reads a non-nullable string.
pub fn get_string(buf: &mut Bytes, compact: bool) -> DecodeResult<String> {
    get_nullable_string(buf, compact)?.ok_or(DecodeError::UnexpectedNull("string"))
}

/// Reads nullable bytes (`None` is null), without copying.
pub fn get_nullable_bytes(buf: &mut Bytes, compact: bool) -> DecodeResult<Option<Bytes>> {
    match get_len(buf, compact, true)? {
        None => Ok(None),
        Some(n) => take(buf, n).map(Some),
    }
}

/// Reads non-nullable bytes, without copying.
pub fn get_bytes(buf: &mut Bytes, compact: bool) -> DecodeResult<Bytes> {
    get_nullable_bytes(buf, compact)?.ok_or(DecodeError::UnexpectedNull("bytes"))
}

/// Reads an array length (`None` is null). The length is checked against the bytes left,
/// since every element takes at least one byte.
pub fn get_array_len(buf: &mut Bytes, compact: bool) -> DecodeResult<Option<usize>> {
    match get_len(buf, compact, true)? {
        Some(n) if n > buf.len() => Err(DecodeError::InvalidLength(n as i64)),
        other => Ok(other),
    }
}

/// Reads a nullable array whose elements `item` decodes.
pub fn get_nullable_array<T>(
    buf: &mut Bytes,
    compact: bool,
    mut item: impl FnMut(&mut Bytes) -> DecodeResult<T>,
) -> DecodeResult<Option<Vec<T>>> {
    let Some(n) = get_array_len(buf, compact)? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(prealloc(n, buf.len()));
    for _ in 0..n {
        out.push(item(buf)?);
    }
    // Past the preallocation the vector grew by doubling: hold what was read, no more.
    out.shrink_to_fit();
    Ok(Some(out))
}

/// Reads a non-nullable array whose elements `item` decodes.
pub fn get_array<T>(
    buf: &mut Bytes,
    compact: bool,
    item: impl FnMut(&mut Bytes) -> DecodeResult<T>,
) -> DecodeResult<Vec<T>> {
    get_nullable_array(buf, compact, item)?.ok_or(DecodeError::UnexpectedNull("array"))
}

fn put_len(
    buf: &mut Vec<u8>,
    len: Option<usize>,
    compact: bool,
    wide: bool,
    what: &'static str,
) -> EncodeResult {
    match (len, compact) {
        (None, true) => buf.push(0),
        (None, false) if wide => put_i32(buf, -1),
        (None, false) => put_i16(buf, -1),
        (Some(n), true) => {
            if n >= u32::MAX as usize {
                return Err(EncodeError::TooLong(what));
            }
            put_unsigned_varint(buf, n as u32 + 1)
        }
        (Some(n), false) if wide => {
            if n > i32::MAX as usize {
                return Err(EncodeError::TooLong(what));
            }
            put_i32(buf, n as i32)
        }
        (Some(n), false) => {
            if n > i16::MAX as usize {
                return Err(EncodeError::TooLong(what));
            }
            put_i16(buf, n as i16)
        }
    }
    Ok(())
}

/// Writes a nullable string.
pub fn put_nullable_string(buf: &mut Vec<u8>, v: Option<&str>, compact: bool) -> EncodeResult {
    put_len(buf, v.map(str::len), compact, false, "string")?;
    if let Some(s) = v {
        buf.extend_from_slice(s.as_bytes());
    }
    Ok(())
}

/// Writes a non-nullable string.
pub fn put_string(buf: &mut Vec<u8>, v: &str, compact: bool) -> EncodeResult {
    put_nullable_string(buf, Some(v), compact)
}

/// Writes nullable bytes.
pub fn put_nullable_bytes(buf: &mut Vec<u8>, v: Option<&[u8]>, compact: bool) -> EncodeResult {
    put_len(buf, v.map(<[u8]>::len), compact, true, "bytes")?;
    if let Some(b) = v {
        buf.extend_from_slice(b);
    }
    Ok(())
}

/// Writes non-nullable bytes.
pub fn put_bytes(buf: &mut Vec<u8>, v: &[u8], compact: bool) -> EncodeResult {
    put_nullable_bytes(buf, Some(v), compact)
}

/// Writes an array length (`None` is null).
pub fn put_array_len(buf: &mut Vec<u8>, len: Option<usize>, compact: bool) -> EncodeResult {
    put_len(buf, len, compact, true, "array")
}

/// A tagged field this version of grete does not know, kept so that it can be re-encoded
/// unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawTaggedField {
    /// The field's tag.
    pub tag: u32,
    /// The field's bytes, without the tag and size prefix.
    pub data: Bytes,
}

/// The most unknown tagged fields one tagged-field section may hold: more is a decode
/// error. Kafka adds tagged fields a few at a time; a section with hundreds is an attack
/// (each costs work to sort and re-encode), not a newer broker.
pub const MAX_UNKNOWN_TAGGED_FIELDS: usize = 64;

/// The tagged fields of one section that this version of grete does not know, kept so that
/// they can be re-encoded: their canonical wire form (tag, size, data of each, in ascending
/// tag order once decoded) in one boxed slice.
///
/// This costs 16 bytes inline and, only when there are unknown fields, one allocation of
/// exactly their wire size: a section cannot make the decoder hold more than it read (the
/// representation as a `Vec` of [`RawTaggedField`] held 40 bytes per field of 2 bytes).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct UnknownTaggedFields {
    raw: Box<[u8]>,
}

impl UnknownTaggedFields {
    /// No fields.
    pub fn new() -> UnknownTaggedFields {
        UnknownTaggedFields::default()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// The fields' wire bytes: tag, size and data of each.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// Each field's tag and data, in the order kept.
    pub fn iter(&self) -> UnknownTaggedFieldsIter<'_> {
        UnknownTaggedFieldsIter { rest: &self.raw }
    }

    /// Adds a field (encoding sorts fields by tag, and refuses a tag used twice).
    pub fn push(&mut self, tag: u32, data: &[u8]) -> Result<(), EncodeError> {
        let mut raw = std::mem::take(&mut self.raw).into_vec();
        put_raw_tagged_field(&mut raw, tag, data)?;
        self.raw = raw.into_boxed_slice();
        Ok(())
    }
}

fn put_raw_tagged_field(buf: &mut Vec<u8>, tag: u32, data: &[u8]) -> EncodeResult {
    let size = u32::try_from(data.len()).map_err(|_| EncodeError::TooLong("tagged field"))?;
    put_unsigned_varint(buf, tag);
    put_unsigned_varint(buf, size);
    buf.extend_from_slice(data);
    Ok(())
}

/// Reads a varint of a raw field list that [`UnknownTaggedFields`] wrote itself.
fn split_varint(rest: &mut &[u8]) -> u32 {
    let mut value = 0u32;
    for (i, b) in rest.iter().enumerate().take(5) {
        value |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            *rest = &rest[i + 1..];
            return value;
        }
    }
    // Unreachable for what `UnknownTaggedFields` writes; ends the iteration otherwise.
    *rest = &[];
    value
}

/// The fields of an [`UnknownTaggedFields`]: `(tag, data)` pairs.
#[derive(Debug, Clone)]
pub struct UnknownTaggedFieldsIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for UnknownTaggedFieldsIter<'a> {
    type Item = (u32, &'a [u8]);

    fn next(&mut self) -> Option<(u32, &'a [u8])> {
        if self.rest.is_empty() {
            return None;
        }
        let tag = split_varint(&mut self.rest);
        let size = (split_varint(&mut self.rest) as usize).min(self.rest.len());
        let (data, rest) = self.rest.split_at(size);
        self.rest = rest;
        Some((tag, data))
    }
}

impl<'a> IntoIterator for &'a UnknownTaggedFields {
    type Item = (u32, &'a [u8]);
    type IntoIter = UnknownTaggedFieldsIter<'a>;

    fn into_iter(self) -> UnknownTaggedFieldsIter<'a> {
        self.iter()
    }
}

impl std::fmt::Debug for UnknownTaggedFields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|(tag, data)| RawTaggedField {
                tag,
                data: Bytes::copy_from_slice(data),
            }))
            .finish()
    }
}

impl From<Vec<RawTaggedField>> for UnknownTaggedFields {
    /// # Panics
    ///
    /// If a field is longer than 4 GiB, which no tagged field can be.
    fn from(fields: Vec<RawTaggedField>) -> UnknownTaggedFields {
        fields.into_iter().collect()
    }
}

impl FromIterator<RawTaggedField> for UnknownTaggedFields {
    /// # Panics
    ///
    /// If a field is longer than 4 GiB, which no tagged field can be.
    fn from_iter<I: IntoIterator<Item = RawTaggedField>>(fields: I) -> UnknownTaggedFields {
        let mut raw = Vec::new();
        for f in fields {
            put_raw_tagged_field(&mut raw, f.tag, &f.data).expect("a tagged field under 4 GiB");
        }
        UnknownTaggedFields {
            raw: raw.into_boxed_slice(),
        }
    }
}

/// Reads the header of a tagged-field section: how many tagged fields follow.
#[inline]
pub fn get_tagged_count(buf: &mut Bytes) -> DecodeResult<u32> {
    let n = get_unsigned_varint(buf)?;
    // Each tagged field takes at least two bytes (tag and size).
    if n as usize > buf.len() / 2 {
        return Err(DecodeError::InvalidLength(n as i64));
    }
    Ok(n)
}

/// Reads one tagged field's tag and its bytes, without copying.
#[inline]
pub fn get_tagged_field(buf: &mut Bytes) -> DecodeResult<RawTaggedField> {
    let tag = get_unsigned_varint(buf)?;
    let size = get_unsigned_varint(buf)? as usize;
    let data = take(buf, size)?;
    Ok(RawTaggedField { tag, data })
}

/// Reads a tagged-field section. `known` decodes a field it knows from the field's bytes
/// (which it must consume entirely) and returns `false` for the others, which are kept in
/// `unknown`, at most [`MAX_UNKNOWN_TAGGED_FIELDS`] of them.
///
/// Tags must come in strictly ascending order (KIP-482): a repeated tag cannot silently
/// replace an earlier value, and decoding stays canonical.
pub fn get_tagged_fields(
    buf: &mut Bytes,
    unknown: &mut UnknownTaggedFields,
    known: &mut dyn FnMut(u32, &mut Bytes) -> DecodeResult<bool>,
) -> DecodeResult<()> {
    let n = get_tagged_count(buf)?;
    let mut last: Option<u32> = None;
    let mut raw = Vec::new();
    let mut kept = 0;
    for _ in 0..n {
        let mut f = get_tagged_field(buf)?;
        if last.is_some_and(|l| f.tag <= l) {
            return Err(DecodeError::Malformed(
                "tagged fields out of order or repeated",
            ));
        }
        last = Some(f.tag);
        if known(f.tag, &mut f.data)? {
            expect_end(&f.data)?;
        } else {
            kept += 1;
            if kept > MAX_UNKNOWN_TAGGED_FIELDS {
                return Err(DecodeError::Malformed("too many unknown tagged fields"));
            }
            // Cannot fail: the size was read as a u32.
            put_raw_tagged_field(&mut raw, f.tag, &f.data)
                .map_err(|_| DecodeError::Malformed("tagged field"))?;
        }
    }
    if !raw.is_empty() {
        let mut all = std::mem::take(&mut unknown.raw).into_vec();
        all.extend_from_slice(&raw);
        unknown.raw = all.into_boxed_slice();
    }
    Ok(())
}

/// Writes a tagged-field section: the `known` fields (tag and encoded body) and the
/// `unknown` ones together, in ascending tag order. A tag used twice is an error.
pub fn put_tagged_fields(
    buf: &mut Vec<u8>,
    known: Vec<(u32, Vec<u8>)>,
    unknown: &UnknownTaggedFields,
) -> EncodeResult {
    let mut all: Vec<(u32, &[u8])> = known.iter().map(|(t, d)| (*t, &d[..])).collect();
    all.extend(unknown.iter());
    all.sort_by_key(|f| f.0);
    if all.windows(2).any(|w| w[0].0 == w[1].0) {
        // An unknown field that reuses a tag: the peer would read the tag twice.
        return Err(EncodeError::Invalid(
            "duplicate tag in a tagged-field section",
        ));
    }
    let count = u32::try_from(all.len()).map_err(|_| EncodeError::TooLong("tagged fields"))?;
    put_unsigned_varint(buf, count);
    for (tag, data) in all {
        put_raw_tagged_field(buf, tag, data)?;
    }
    Ok(())
}

/// Writes one tagged field whose body `body` encodes: tag, size, then the body.
pub fn put_tagged_field(
    buf: &mut Vec<u8>,
    tag: u32,
    body: impl FnOnce(&mut Vec<u8>) -> EncodeResult,
) -> EncodeResult {
    put_unsigned_varint(buf, tag);
    let mut tmp = Vec::new();
    body(&mut tmp)?;
    if tmp.len() > u32::MAX as usize {
        return Err(EncodeError::TooLong("tagged field"));
    }
    put_unsigned_varint(buf, tmp.len() as u32);
    buf.extend_from_slice(&tmp);
    Ok(())
}

/// Requires `buf` to be fully consumed.
pub fn expect_end(buf: &Bytes) -> DecodeResult<()> {
    if buf.is_empty() {
        Ok(())
    } else {
        Err(DecodeError::TrailingBytes(buf.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    quickcheck! {
        fn varint_round_trip(v: i32) -> bool {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            let len = out.len();
            let mut b = Bytes::from(out);
            get_varint(&mut b) == Ok(v) && b.is_empty() && len == varint_len(v)
        }
        fn varlong_round_trip(v: i64) -> bool {
            let mut out = Vec::new();
            put_varlong(&mut out, v);
            let len = out.len();
            let mut b = Bytes::from(out);
            get_varlong(&mut b) == Ok(v) && b.is_empty() && len == varlong_len(v)
        }
        fn unsigned_varint_round_trip(v: u32) -> bool {
            let mut out = Vec::new();
            put_unsigned_varint(&mut out, v);
            let len = out.len();
            let mut b = Bytes::from(out);
            get_unsigned_varint(&mut b) == Ok(v) && b.is_empty() && len == unsigned_varint_len(v)
        }
        fn string_round_trip(s: Option<String>, compact: bool) -> bool {
            let mut out = Vec::new();
            put_nullable_string(&mut out, s.as_deref(), compact).unwrap();
            let mut b = Bytes::from(out);
            get_nullable_string(&mut b, compact) == Ok(s) && b.is_empty()
        }
        fn bytes_round_trip(v: Option<Vec<u8>>, compact: bool) -> bool {
            let mut out = Vec::new();
            put_nullable_bytes(&mut out, v.as_deref(), compact).unwrap();
            let mut b = Bytes::from(out);
            get_nullable_bytes(&mut b, compact) == Ok(v.map(Bytes::from)) && b.is_empty()
        }
        fn truncated_input_is_an_error_not_a_panic(s: String, cut: usize) -> bool {
            let mut out = Vec::new();
            put_string(&mut out, &s, true).unwrap();
            let cut = cut % out.len();
            let mut b = Bytes::copy_from_slice(&out[..cut]);
            get_string(&mut b, true).is_err()
        }
    }

    quickcheck! {
        fn unknown_tagged_fields_keep_every_field(fields: Vec<(u32, Vec<u8>)>) -> bool {
            let raw: Vec<RawTaggedField> = fields
                .iter()
                .map(|(tag, data)| RawTaggedField { tag: *tag, data: Bytes::from(data.clone()) })
                .collect();
            let kept = UnknownTaggedFields::from(raw);
            let wire: usize = fields
                .iter()
                .map(|(t, d)| unsigned_varint_len(*t) + unsigned_varint_len(d.len() as u32) + d.len())
                .sum();
            kept.len() == fields.len()
                && kept.as_bytes().len() == wire
                && kept.iter().zip(&fields).all(|((t, d), (ft, fd))| t == *ft && d == &fd[..])
        }
    }

    #[test]
    fn unknown_tagged_fields_decode_canonically_and_print_as_before() {
        // Two fields: tag 5 written with an overlong varint, and tag 9 with one byte; a
        // known tag 7 in between is taken by the caller.
        let mut b = Bytes::from_static(&[3, 0x85, 0x00, 1, 0xaa, 7, 1, 0xbb, 9, 0]);
        let mut unknown = UnknownTaggedFields::new();
        let mut seen = Vec::new();
        get_tagged_fields(&mut b, &mut unknown, &mut |tag, data| {
            if tag == 7 {
                seen.push(get_i8(data)?);
                Ok(true)
            } else {
                Ok(false)
            }
        })
        .unwrap();
        assert!(b.is_empty());
        assert_eq!(seen, [0xbbu8 as i8]);
        assert_eq!(unknown.as_bytes(), &[5, 1, 0xaa, 9, 0]);
        assert_eq!(
            format!("{unknown:?}"),
            r#"[RawTaggedField { tag: 5, data: b"\xaa" }, RawTaggedField { tag: 9, data: b"" }]"#
        );
        let mut out = Vec::new();
        put_tagged_fields(&mut out, vec![(7, vec![0xbb])], &unknown).unwrap();
        assert_eq!(out, [3, 5, 1, 0xaa, 7, 1, 0xbb, 9, 0]);
        // A known field that reuses an unknown one's tag cannot be encoded.
        assert!(put_tagged_fields(&mut Vec::new(), vec![(9, vec![])], &unknown).is_err());
        let mut pushed = UnknownTaggedFields::new();
        pushed.push(5, &[0xaa]).unwrap();
        pushed.push(9, &[]).unwrap();
        assert_eq!(pushed, unknown);
    }

    #[test]
    fn zigzag_matches_kafka_examples() {
        // From the Kafka protocol guide's varint description (protobuf zig-zag).
        for (v, enc) in [
            (0, vec![0u8]),
            (-1, vec![1]),
            (1, vec![2]),
            (-64, vec![127]),
            (64, vec![128, 1]),
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out, enc, "value {v}");
        }
    }

    #[test]
    fn overlong_varint_is_rejected() {
        let mut b = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert_eq!(
            get_unsigned_varint(&mut b),
            Err(DecodeError::VarintTooLong(5))
        );
    }

    #[test]
    fn huge_array_length_is_rejected_before_allocating() {
        let mut b = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0]);
        assert!(matches!(
            get_array_len(&mut b, false),
            Err(DecodeError::InvalidLength(_))
        ));
        let mut b = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(get_array_len(&mut b, false), Ok(None));
        let mut b = Bytes::from_static(&[0xff, 0xff, 0xff, 0xfe]);
        assert!(get_array_len(&mut b, false).is_err());
    }
}
