use bytes::Bytes;
use quickcheck::{quickcheck, Arbitrary, Gen};

use super::legacy::{encode_message_set, MessageSetOptions};
use super::*;
use crate::protocol::compression::{CompressOptions, SnappyFraming};
use crate::protocol::error::EncodeError;

/// Every codec configuration: codec and Snappy framing.
const CODECS: [(Compression, SnappyFraming); 6] = [
    (Compression::None, SnappyFraming::Xerial),
    (Compression::Gzip, SnappyFraming::Xerial),
    (Compression::Snappy, SnappyFraming::Xerial),
    (Compression::Snappy, SnappyFraming::Raw),
    (Compression::Lz4, SnappyFraming::Xerial),
    (Compression::Zstd, SnappyFraming::Xerial),
];

/// The configurations whose codec this build has.
fn enabled() -> impl Iterator<Item = (Compression, SnappyFraming)> {
    CODECS.into_iter().filter(|c| c.0.is_enabled())
}

fn copts(framing: SnappyFraming) -> CompressOptions {
    CompressOptions {
        snappy_framing: framing,
        ..CompressOptions::default()
    }
}

/// Records with increasing offsets (gaps allowed), arbitrary keys, values, timestamps and
/// headers.
#[derive(Debug, Clone)]
struct Recs(Vec<Record>);

impl Arbitrary for Recs {
    fn arbitrary(g: &mut Gen) -> Self {
        let n = usize::arbitrary(g) % 12;
        let mut offset = (u32::arbitrary(g) >> 2) as i64;
        let base_ts = 1_600_000_000_000 + i32::arbitrary(g) as i64;
        let records = (0..n)
            .map(|_| {
                offset += 1 + (u8::arbitrary(g) % 4 == 0) as i64 * (u8::arbitrary(g) as i64);
                let nh = usize::arbitrary(g) % 3;
                Record {
                    offset,
                    timestamp: if bool::arbitrary(g) {
                        i64::arbitrary(g)
                    } else {
                        base_ts + i16::arbitrary(g) as i64
                    },
                    timestamp_type: TimestampType::CreateTime,
                    key: Option::<Vec<u8>>::arbitrary(g).map(Bytes::from),
                    value: Option::<Vec<u8>>::arbitrary(g).map(Bytes::from),
                    headers: (0..nh)
                        .map(|_| Header {
                            key: String::arbitrary(g),
                            value: Option::<Vec<u8>>::arbitrary(g).map(Bytes::from),
                        })
                        .collect(),
                }
            })
            .collect();
        Recs(records)
    }
}

fn decode_all(
    bytes: &[u8],
    limits: DecodeLimits,
) -> Result<(Vec<Batch>, Vec<Record>), DecodeError> {
    let mut batches = Vec::new();
    let mut records = Vec::new();
    for b in Batches::new(Bytes::copy_from_slice(bytes), limits) {
        let b = b?;
        let first = records.len();
        for r in b.records() {
            records.push(r?);
        }
        // The borrowed view reads the same records.
        let refs = b
            .record_refs()
            .map(|r| r.map(|r| r.to_record()))
            .collect::<Result<Vec<_>, _>>()?;
        assert_eq!(refs, records[first..]);
        for (r, owned) in b.record_refs().zip(&records[first..]) {
            assert_eq!(r.unwrap().headers.len(), owned.headers.len());
        }
        batches.push(b);
    }
    Ok((batches, records))
}

fn v2_round_trip(recs: Vec<Record>, header: BatchHeader) -> bool {
    let mut out = vec![7u8; 3]; // encoding appends to what is there
    let size = encode_record_batch(&mut out, &header, &recs).unwrap();
    assert_eq!(out.len(), 3 + size);
    let bytes = &out[3..];
    let (batches, decoded) = decode_all(bytes, DecodeLimits::default()).unwrap();
    assert_eq!(batches.len(), 1);
    let b = &batches[0];
    let log_append = header.timestamp_type == TimestampType::LogAppendTime;
    let max_ts = recs.iter().map(|r| r.timestamp).max().unwrap_or(-1);
    let expected: Vec<Record> = recs
        .iter()
        .map(|r| Record {
            timestamp: if log_append { max_ts } else { r.timestamp },
            timestamp_type: header.timestamp_type,
            ..r.clone()
        })
        .collect();
    assert_eq!(decoded, expected);
    assert_eq!(b.magic, 2);
    assert_eq!(b.compression, header.compression);
    assert_eq!(b.base_offset, header.base_offset);
    let last = recs.last().map_or(header.base_offset, |r| r.offset);
    assert_eq!(b.last_offset, last);
    assert_eq!(next_fetch_offset(bytes), Some(last + 1));
    assert_eq!(b.record_count as usize, recs.len());
    assert_eq!(b.size_in_bytes, bytes.len());
    assert_eq!(
        (
            b.producer_id,
            b.producer_epoch,
            b.base_sequence,
            b.partition_leader_epoch
        ),
        (
            header.producer_id,
            header.producer_epoch,
            header.base_sequence,
            header.partition_leader_epoch
        )
    );
    assert_eq!(
        (b.transactional, b.control, b.timestamp_type),
        (header.transactional, false, header.timestamp_type)
    );
    assert_eq!(b.max_timestamp, max_ts);
    if !log_append {
        // Encoding what was decoded gives the same bytes.
        let mut again = Vec::new();
        encode_record_batch(&mut again, &header, &decoded).unwrap();
        assert_eq!(again, bytes);
    }
    true
}

fn legacy_round_trip(
    recs: Vec<Record>,
    magic: i8,
    compression: Compression,
    framing: SnappyFraming,
    log_append: bool,
) -> bool {
    let recs: Vec<Record> = recs
        .into_iter()
        .map(|r| Record {
            headers: Vec::new(),
            ..r
        })
        .collect();
    let options = MessageSetOptions {
        magic,
        compression,
        compress_options: copts(framing),
        timestamp_type: if log_append {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        },
    };
    let mut out = vec![1u8];
    let size = encode_message_set(&mut out, &options, &recs).unwrap();
    assert_eq!(out.len(), 1 + size);
    let bytes = &out[1..];
    let (batches, decoded) = decode_all(bytes, DecodeLimits::default()).unwrap();
    let compressed = compression != Compression::None;
    let max_ts = recs.iter().map(|r| r.timestamp).max().unwrap_or(-1);
    let expected: Vec<Record> = recs
        .iter()
        .map(|r| {
            let (timestamp, timestamp_type) = match (magic, log_append, compressed) {
                (0, _, _) => (-1, TimestampType::NoTimestamp),
                (_, false, _) => (r.timestamp, TimestampType::CreateTime),
                (_, true, false) => (r.timestamp, TimestampType::LogAppendTime),
                (_, true, true) => (max_ts, TimestampType::LogAppendTime),
            };
            Record {
                timestamp,
                timestamp_type,
                ..r.clone()
            }
        })
        .collect();
    assert_eq!(decoded, expected);
    let expected_batches = if compressed {
        usize::from(!recs.is_empty())
    } else {
        recs.len()
    };
    assert_eq!(batches.len(), expected_batches);
    for b in &batches {
        assert_eq!(
            (b.magic, b.compression, b.producer_id, b.control),
            (magic, compression, -1, false)
        );
    }
    if let Some(last) = recs.last() {
        assert_eq!(batches.last().unwrap().last_offset, last.offset);
        assert_eq!(batches[0].base_offset, recs[0].offset);
        assert_eq!(next_fetch_offset(bytes), Some(last.offset + 1));
    }
    if magic == 0 || !(log_append && compressed) {
        let mut again = Vec::new();
        encode_message_set(&mut again, &options, &decoded).unwrap();
        assert_eq!(again, bytes);
    }
    true
}

quickcheck! {
    fn v2_round_trips_with_every_codec(recs: Recs, pid: i64, epoch: i16, seq: i32, leader_epoch: i32, flags: u8) -> bool {
        enabled().all(|(compression, framing)| {
            let header = BatchHeader {
                base_offset: recs.0.first().map_or(0, |r| r.offset - (flags % 3) as i64),
                partition_leader_epoch: leader_epoch,
                compression,
                compress_options: copts(framing),
                timestamp_type: if flags & 8 != 0 { TimestampType::LogAppendTime } else { TimestampType::CreateTime },
                transactional: flags & 16 != 0,
                control: false,
                producer_id: pid,
                producer_epoch: epoch,
                base_sequence: seq,
            };
            v2_round_trip(recs.0.clone(), header)
        })
    }

    fn v0_round_trips_with_every_codec(recs: Recs) -> bool {
        enabled().filter(|c| c.0 != Compression::Zstd).all(|(c, f)| legacy_round_trip(recs.0.clone(), 0, c, f, false))
    }

    fn v1_round_trips_with_every_codec(recs: Recs, log_append: bool) -> bool {
        enabled().filter(|c| c.0 != Compression::Zstd).all(|(c, f)| legacy_round_trip(recs.0.clone(), 1, c, f, log_append))
    }

    fn record_field_sizes_match_the_primitives(v: i64, w: i32) -> bool {
        use crate::protocol::primitives::{varint_len, varlong_len};
        batch::zigzag_size(v) == varlong_len(v) && batch::zigzag_size(w as i64) == varint_len(w)
            && [0, 1, -1, 63, 64, -65, 8191, 8192, i64::MAX, i64::MIN].iter().all(|&x| batch::zigzag_size(x) == varlong_len(x))
    }

    fn garbage_gives_the_framing_or_checksum_error(data: Vec<u8>, magic: u8, fit: bool) -> bool {
        let mut data = data;
        if data.len() > 16 {
            data[16] = magic % 3;
            if fit {
                // One batch spanning the input, so that its checksum is reached.
                let len = (data.len() - 12) as i32;
                data[8..12].copy_from_slice(&len.to_be_bytes());
            }
        }
        let verified = decode_all(&data, DecodeLimits::default());
        match framing_and_crc(&data) {
            Err(e) => assert_eq!(verified.err(), Some(e), "{data:?}"),
            Ok(0) => assert_eq!(verified.map(|(b, r)| (b.len(), r.len())), Ok((0, 0)), "{data:?}"),
            // Whole batches with valid checksums: their content is checked below.
            Ok(_) => {}
        }
        let _ = next_fetch_offset(&data);
        // With the checksums repaired, skipping their verification changes nothing: the
        // same records or the same error, whatever the content.
        fix_crcs(&mut data);
        let verified = decode_all(&data, DecodeLimits::default());
        let unverified = decode_all(&data, DecodeLimits::default().with_verify_crc(false));
        assert_eq!(verified, unverified, "{data:?}");
        true
    }

    fn mutated_batches_give_the_framing_or_checksum_error(recs: Recs, at: usize, xor: u8, which: u8) -> bool {
        let recs: Vec<Record> = recs.0.into_iter().map(|r| Record { headers: Vec::new(), ..r }).collect();
        let mut out = Vec::new();
        let (c, f) = CODECS[which as usize % CODECS.len()];
        let c = if c.is_enabled() { c } else { Compression::None };
        match which % 3 {
            0 => { encode_record_batch(&mut out, &BatchHeader { compression: c, compress_options: copts(f), ..BatchHeader::default() }, &recs).unwrap(); }
            m => {
                let c = if c == Compression::Zstd { Compression::None } else { c };
                let o = MessageSetOptions { magic: m as i8 - 1, compression: c, compress_options: copts(f), ..MessageSetOptions::default() };
                encode_message_set(&mut out, &o, &recs).unwrap();
            }
        }
        if !out.is_empty() {
            let i = at % out.len();
            out[i] ^= xor.max(1);
        }
        let got = decode_all(&out, DecodeLimits::default());
        match framing_and_crc(&out) {
            Err(e) => assert_eq!(got.err(), Some(e)),
            Ok(n) => {
                // The change is outside every checksum (an offset, a v2 leader epoch, or
                // a size that now runs past the end): the whole batches read as written,
                // but for their offsets.
                let (batches, records) = got.expect("checksums pass");
                assert_eq!(batches.len(), n);
                assert!(records.len() <= recs.len());
                for (r, w) in records.iter().zip(&recs) {
                    assert_eq!((&r.key, &r.value), (&w.key, &w.value));
                }
            }
        }
        true
    }
}

/// What reading `bytes` with checksum verification must give, from the framing and the
/// checksums alone: the first framing or checksum error, else `Ok(n)` for the n whole
/// batches whose checksums pass (a batch cut short at the end is not read).
fn framing_and_crc(bytes: &[u8]) -> Result<usize, DecodeError> {
    let mut rest = bytes;
    let mut n = 0;
    loop {
        if rest.len() < 12 {
            return Ok(n);
        }
        let len = i32::from_be_bytes(rest[8..12].try_into().unwrap());
        if len < 0 {
            return Err(DecodeError::InvalidLength(len as i64));
        }
        let size = len as usize + 12;
        if rest.len() <= 16 || rest.len() < size {
            return Ok(n);
        }
        let magic = rest[16] as i8;
        let min = match magic {
            0 => legacy::MIN_MESSAGE_V0,
            1 => legacy::MIN_MESSAGE_V1,
            2 => batch::HEADER_LEN,
            m => return Err(DecodeError::UnknownMagic(m)),
        };
        if size < min {
            return Err(DecodeError::Malformed("batch smaller than its header"));
        }
        let (stored, computed) = crcs(&rest[..size]);
        if stored != computed {
            return Err(DecodeError::CrcMismatch { computed, stored });
        }
        n += 1;
        rest = &rest[size..];
    }
}

/// A whole batch's stored and computed checksum: CRC-32C from the attributes on for v2,
/// CRC-32 from the magic on for legacy messages.
fn crcs(batch: &[u8]) -> (u32, u32) {
    if batch[16] == 2 {
        let stored = u32::from_be_bytes(batch[17..21].try_into().unwrap());
        (stored, crc32c::crc32c(&batch[21..]))
    } else {
        let stored = u32::from_be_bytes(batch[12..16].try_into().unwrap());
        (stored, crc32fast::hash(&batch[16..]))
    }
}

/// Rewrites the stored checksum of every whole batch that frames, so that it passes.
fn fix_crcs(bytes: &mut [u8]) {
    let mut at = 0;
    while let Ok(1) = framing_and_crc_first(&bytes[at..]) {
        let size = i32::from_be_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize + 12;
        let batch = &mut bytes[at..at + size];
        let (_, computed) = crcs(batch);
        let field = if batch[16] == 2 { 17..21 } else { 12..16 };
        batch[field].copy_from_slice(&computed.to_be_bytes());
        at += size;
    }
}

/// Whether the first batch of `bytes` frames (ignoring its checksum): `Ok(1)` if so.
fn framing_and_crc_first(bytes: &[u8]) -> Result<usize, DecodeError> {
    if bytes.len() <= 16 {
        return Ok(0);
    }
    let mut copy = bytes.to_vec();
    let len = i32::from_be_bytes(copy[8..12].try_into().unwrap());
    if len < 0 || copy.len() < len as usize + 12 {
        return Ok(0);
    }
    let size = len as usize + 12;
    copy.truncate(size);
    match framing_and_crc(&copy) {
        Ok(n) => Ok(n),
        Err(DecodeError::CrcMismatch { .. }) => Ok(1),
        Err(e) => Err(e),
    }
}

fn sample_records(n: usize, first_offset: i64) -> Vec<Record> {
    (0..n)
        .map(|i| Record {
            offset: first_offset + i as i64,
            timestamp: 1_700_000_000_000 + i as i64,
            key: (i % 2 == 0).then(|| Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(vec![b'a' + (i % 26) as u8; 40 + i])),
            ..Record::default()
        })
        .collect()
}

/// The codec of a [`three_batches`] kind.
fn kind_codec(kind: usize) -> Compression {
    if kind < 6 {
        CODECS[kind].0
    } else {
        CODECS[(kind - 6) % 5].0
    }
}

/// Three batches (or messages) of each kind, with their end positions: v2 with each codec
/// configuration (kinds 0..6), then v0 (6..11) and v1 (11..16) with each but zstd.
fn three_batches(kind: usize) -> (Vec<u8>, Vec<usize>) {
    let mut out = Vec::new();
    let mut ends = Vec::new();
    for k in 0..3 {
        let recs = sample_records(3, 10 * k);
        match kind {
            0..=5 => {
                let (c, f) = CODECS[kind];
                let h = BatchHeader {
                    base_offset: 10 * k,
                    compression: c,
                    compress_options: copts(f),
                    ..BatchHeader::default()
                };
                encode_record_batch(&mut out, &h, &recs).unwrap();
                ends.push(out.len());
            }
            _ => {
                let (c, f) = CODECS[(kind - 6) % 5];
                let o = MessageSetOptions {
                    magic: ((kind - 6) / 5) as i8,
                    compression: c,
                    compress_options: copts(f),
                    ..MessageSetOptions::default()
                };
                if c == Compression::None {
                    for r in &recs {
                        encode_message_set(&mut out, &o, std::slice::from_ref(r)).unwrap();
                        ends.push(out.len());
                    }
                } else {
                    encode_message_set(&mut out, &o, &recs).unwrap();
                    ends.push(out.len());
                }
            }
        }
    }
    (out, ends)
}

#[test]
fn a_partial_last_batch_ends_the_iteration_cleanly() {
    for kind in (0..16).filter(|&k| kind_codec(k).is_enabled()) {
        let (out, ends) = three_batches(kind);
        let (_, all) = decode_all(&out, DecodeLimits::default()).unwrap();
        assert_eq!(all.len(), 9, "kind {kind}");
        for cut in 0..=out.len() {
            let mut batches =
                Batches::new(Bytes::copy_from_slice(&out[..cut]), DecodeLimits::default());
            let mut n = 0;
            for b in batches.by_ref() {
                b.unwrap();
                n += 1;
            }
            let whole = ends.iter().filter(|&&e| e <= cut).count();
            assert_eq!(n, whole, "kind {kind} cut {cut}");
            let at_boundary = cut == 0 || ends.contains(&cut);
            assert_eq!(
                batches.truncated().is_some(),
                !at_boundary,
                "kind {kind} cut {cut}"
            );
            let prev_end = ends.iter().rev().find(|&&e| e <= cut).copied().unwrap_or(0);
            if cut >= prev_end + 12 && !at_boundary {
                let next_end = ends.iter().find(|&&e| e > cut).unwrap();
                assert_eq!(
                    batches.truncated(),
                    Some(next_end - prev_end),
                    "kind {kind} cut {cut}"
                );
            }
            assert_eq!(
                batches.next_offset(),
                next_fetch_offset(&out[..cut]),
                "kind {kind} cut {cut}"
            );
        }
        let mut batches = Batches::new(Bytes::from(out), DecodeLimits::default());
        batches.by_ref().for_each(|b| drop(b.unwrap()));
        assert_eq!(batches.next_offset(), Some(23), "kind {kind}");
    }
}

#[test]
fn a_batch_cut_inside_its_declared_length_is_an_error() {
    for kind in (0..16).filter(|&k| kind_codec(k).is_enabled()) {
        let (out, ends) = three_batches(kind);
        let first = &out[..ends[0]];
        for cut in 0..first.len() {
            let mut b = first[..cut].to_vec();
            if cut >= 12 {
                b[8..12].copy_from_slice(&((cut - 12) as i32).to_be_bytes());
            }
            let res = decode_all(&b, DecodeLimits::default().with_verify_crc(false));
            if cut < 17 {
                // Not even the magic byte: a clean (partial) end, or a size the format rejects.
                assert!(
                    res.map_or(true, |(b, _)| b.is_empty()),
                    "kind {kind} cut {cut}"
                );
            } else {
                assert!(res.is_err(), "kind {kind} cut {cut}");
            }
        }
    }
}

#[test]
fn crc_mismatches_are_detected() {
    for kind in [0, 1, 6, 8, 11, 13]
        .into_iter()
        .filter(|&k| kind_codec(k).is_enabled())
    {
        let (mut out, ends) = three_batches(kind);
        let i = ends[0] - 3; // inside the first batch's value
        out[i] ^= 0x01;
        let err = decode_all(&out, DecodeLimits::default()).unwrap_err();
        assert!(
            matches!(err, DecodeError::CrcMismatch { .. }),
            "kind {kind}: {err:?}"
        );
        if kind == 0 || kind == 6 || kind == 11 {
            // Uncompressed: without verification the altered value comes through.
            let (_, recs) =
                decode_all(&out, DecodeLimits::default().with_verify_crc(false)).unwrap();
            assert_eq!(recs.len(), 9);
        }
    }
}

#[test]
fn unknown_magic_is_an_error() {
    let (mut out, _) = three_batches(0);
    out[16] = 3;
    assert_eq!(
        decode_all(&out, DecodeLimits::default()).unwrap_err(),
        DecodeError::UnknownMagic(3)
    );
}

#[test]
fn v0_message_matches_hand_computed_bytes() {
    // offset 0, size 17, CRC-32 of magic..end, magic 0, attributes 0, key null, value "abc".
    let expected = [
        0, 0, 0, 0, 0, 0, 0, 0, // offset
        0, 0, 0, 0x11, // size
        0x43, 0xdc, 0x3f, 0xaf, // crc
        0, 0, // magic, attributes
        0xff, 0xff, 0xff, 0xff, // key: null
        0, 0, 0, 3, b'a', b'b', b'c', // value
    ];
    let r = Record {
        offset: 0,
        timestamp: -1,
        timestamp_type: TimestampType::NoTimestamp,
        value: Some(Bytes::from_static(b"abc")),
        ..Record::default()
    };
    let mut out = Vec::new();
    let o = MessageSetOptions {
        magic: 0,
        ..MessageSetOptions::default()
    };
    encode_message_set(&mut out, &o, std::slice::from_ref(&r)).unwrap();
    assert_eq!(out, expected);
    let (batches, recs) = decode_all(&expected, DecodeLimits::default()).unwrap();
    assert_eq!(recs, vec![r]);
    assert_eq!(
        (batches[0].magic, batches[0].timestamp_type),
        (0, TimestampType::NoTimestamp)
    );
}

#[test]
fn v1_message_matches_hand_computed_bytes() {
    let expected = [
        0, 0, 0, 0, 0, 0, 0, 5, // offset 5
        0, 0, 0, 0x18, // size 24
        0xe4, 0xe3, 0x21, 0xbc, // crc
        1, 0, // magic 1, attributes: create time
        0, 0, 0, 0, 0, 0, 0x03, 0xe8, // timestamp 1000
        0, 0, 0, 1, b'k', // key
        0, 0, 0, 1, b'v', // value
    ];
    let r = Record {
        offset: 5,
        timestamp: 1000,
        key: Some(Bytes::from_static(b"k")),
        value: Some(Bytes::from_static(b"v")),
        ..Record::default()
    };
    let mut out = Vec::new();
    encode_message_set(
        &mut out,
        &MessageSetOptions::default(),
        std::slice::from_ref(&r),
    )
    .unwrap();
    assert_eq!(out, expected);
    assert_eq!(
        decode_all(&expected, DecodeLimits::default()).unwrap().1,
        vec![r]
    );
}

#[test]
fn v2_batch_matches_hand_computed_bytes() {
    let expected: &[u8] = &[
        0, 0, 0, 0, 0, 0, 0, 0, // base offset
        0, 0, 0, 0x45, // batch length 69
        0xff, 0xff, 0xff, 0xff, // partition leader epoch -1
        2,    // magic
        0xa9, 0xac, 0x82, 0x2d, // CRC-32C of attributes..end
        0, 0, // attributes
        0, 0, 0, 1, // last offset delta
        0, 0, 0, 0, 0, 0, 0x03, 0xe8, // base timestamp 1000
        0, 0, 0, 0, 0, 0, 0x03, 0xed, // max timestamp 1005
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // producer id -1
        0xff, 0xff, // producer epoch -1
        0xff, 0xff, 0xff, 0xff, // base sequence -1
        0, 0, 0, 2, // record count
        // record 0: length 7, attributes, ts delta 0, offset delta 0, key null, value "a", no headers
        0x0e, 0, 0, 0, 0x01, 0x02, b'a', 0,
        // record 1: length 11, ts delta 5, offset delta 1, key "k", value "b", header "h" = null
        0x16, 0, 0x0a, 0x02, 0x02, b'k', 0x02, b'b', 0x02, 0x02, b'h', 0x01,
    ];
    let recs = vec![
        Record {
            offset: 0,
            timestamp: 1000,
            value: Some(Bytes::from_static(b"a")),
            ..Record::default()
        },
        Record {
            offset: 1,
            timestamp: 1005,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"b")),
            headers: vec![Header {
                key: "h".into(),
                value: None,
            }],
            ..Record::default()
        },
    ];
    let mut out = Vec::new();
    encode_record_batch(&mut out, &BatchHeader::default(), &recs).unwrap();
    assert_eq!(out, expected);
    let (batches, decoded) = decode_all(expected, DecodeLimits::default()).unwrap();
    assert_eq!(decoded, recs);
    assert_eq!(
        (
            batches[0].base_timestamp,
            batches[0].max_timestamp,
            batches[0].last_offset
        ),
        (1000, 1005, 1)
    );
}

/// Reads a message at the front of `b`: (offset, attributes, value range).
fn peek_message(b: &[u8]) -> (i64, u8, std::ops::Range<usize>) {
    let offset = i64::from_be_bytes(b[..8].try_into().unwrap());
    let magic = b[16];
    let attrs = b[17];
    let mut p = 18 + if magic == 1 { 8 } else { 0 };
    let klen = i32::from_be_bytes(b[p..p + 4].try_into().unwrap());
    p += 4 + klen.max(0) as usize;
    let vlen = i32::from_be_bytes(b[p..p + 4].try_into().unwrap()) as usize;
    (offset, attrs, p + 4..p + 4 + vlen)
}

#[test]
#[cfg(feature = "gzip")]
fn compressed_v1_uses_relative_inner_offsets_and_v0_absolute_ones() {
    let mut recs = sample_records(3, 100);
    recs[2].offset = 103; // a gap, as after compaction
    for (magic, inner_expected) in [(1i8, [0i64, 1, 3]), (0, [100, 101, 103])] {
        let o = MessageSetOptions {
            magic,
            compression: Compression::Gzip,
            ..MessageSetOptions::default()
        };
        let mut out = Vec::new();
        encode_message_set(&mut out, &o, &recs).unwrap();
        let (wrapper_offset, attrs, value) = peek_message(&out);
        assert_eq!((wrapper_offset, attrs & 7), (103, 1));
        let inner =
            crate::protocol::compression::decompress(Compression::Gzip, &out[value], 1 << 20)
                .unwrap();
        let mut offsets = Vec::new();
        let mut p = 0;
        while p < inner.len() {
            offsets.push(peek_message(&inner[p..]).0);
            p += 12 + i32::from_be_bytes(inner[p + 8..p + 12].try_into().unwrap()) as usize;
        }
        assert_eq!(offsets, inner_expected, "magic {magic}");
        let (batches, decoded) = decode_all(&out, DecodeLimits::default()).unwrap();
        assert_eq!(
            decoded.iter().map(|r| r.offset).collect::<Vec<_>>(),
            [100, 101, 103]
        );
        assert_eq!(
            (
                batches[0].base_offset,
                batches[0].last_offset,
                batches[0].record_count
            ),
            (100, 103, 3)
        );
    }
}

#[test]
#[cfg(feature = "snappy")]
fn relative_offsets_follow_the_wrapper_offset() {
    // A broker assigns the wrapper's offset on append without touching the inner ones:
    // absolute = wrapper offset - (last relative - relative).
    let recs = sample_records(4, 0);
    let o = MessageSetOptions {
        compression: Compression::Snappy,
        ..MessageSetOptions::default()
    };
    let mut out = Vec::new();
    encode_message_set(&mut out, &o, &recs).unwrap();
    out[..8].copy_from_slice(&1003i64.to_be_bytes());
    let (_, decoded) = decode_all(&out, DecodeLimits::default().with_verify_crc(false)).unwrap();
    assert_eq!(
        decoded.iter().map(|r| r.offset).collect::<Vec<_>>(),
        [1000, 1001, 1002, 1003]
    );
}

#[test]
#[cfg(feature = "lz4")]
fn v0_lz4_uses_the_pre_0_10_header_checksum() {
    use std::io::Read;
    let recs = sample_records(3, 0);
    for magic in [0i8, 1] {
        let o = MessageSetOptions {
            magic,
            compression: Compression::Lz4,
            ..MessageSetOptions::default()
        };
        let mut out = Vec::new();
        encode_message_set(&mut out, &o, &recs).unwrap();
        let (_, _, value) = peek_message(&out);
        let standard = lz4_flex::frame::FrameDecoder::new(&out[value]).read_to_end(&mut Vec::new());
        // A standard LZ4 frame reader rejects the v0 frame's header checksum.
        assert_eq!(standard.is_ok(), magic == 1, "magic {magic}");
        assert_eq!(
            decode_all(&out, DecodeLimits::default()).unwrap().1.len(),
            3
        );
    }
}

#[test]
#[cfg(feature = "gzip")]
fn nested_compression_is_refused() {
    let recs = sample_records(2, 0);
    let o = MessageSetOptions {
        compression: Compression::Gzip,
        ..MessageSetOptions::default()
    };
    let mut inner_set = Vec::new();
    encode_message_set(&mut inner_set, &o, &recs).unwrap();
    let mut value = Vec::new();
    crate::protocol::compression::compress(
        Compression::Gzip,
        &inner_set,
        &mut value,
        &CompressOptions::default(),
    )
    .unwrap();
    let mut out = Vec::new();
    legacy::put_message(&mut out, 1, 1, 0, 1, None, Some(&value)).unwrap();
    assert_eq!(
        decode_all(&out, DecodeLimits::default()).unwrap_err(),
        DecodeError::Malformed("nested compression")
    );
}

#[test]
fn decompression_bombs_are_refused() {
    let big = Record {
        value: Some(Bytes::from(vec![0u8; 8 << 20])),
        ..Record::default()
    };
    let limits = DecodeLimits::default().with_max_decompressed_size(1 << 20);
    for c in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let mut out = Vec::new();
        let h = BatchHeader {
            compression: c,
            ..BatchHeader::default()
        };
        if !c.is_enabled() {
            let err = encode_record_batch(&mut out, &h, std::slice::from_ref(&big)).unwrap_err();
            assert_eq!(err, EncodeError::CompressionDisabled(c.name()));
            assert!(out.is_empty());
            continue;
        }
        encode_record_batch(&mut out, &h, std::slice::from_ref(&big)).unwrap();
        assert!(out.len() < 1 << 20, "{c:?} should compress zeros well");
        assert_eq!(
            decode_all(&out, limits).unwrap_err(),
            DecodeError::DecompressedTooLarge { max: 1 << 20 },
            "{c:?}"
        );
        if c != Compression::Zstd {
            let mut out = Vec::new();
            let o = MessageSetOptions {
                compression: c,
                ..MessageSetOptions::default()
            };
            encode_message_set(&mut out, &o, std::slice::from_ref(&big)).unwrap();
            assert_eq!(
                decode_all(&out, limits).unwrap_err(),
                DecodeError::DecompressedTooLarge { max: 1 << 20 },
                "{c:?}"
            );
        }
    }
}

#[test]
fn control_batches_carry_transaction_markers() {
    let header = BatchHeader {
        base_offset: 42,
        producer_id: 7000,
        producer_epoch: 3,
        transactional: true,
        ..BatchHeader::default()
    };
    for kind in [ControlRecordType::Commit, ControlRecordType::Abort] {
        let marker = ControlRecord {
            version: 0,
            kind,
            coordinator_epoch: Some(17),
        };
        let mut out = Vec::new();
        marker.encode_marker_batch(&mut out, &header, 1234).unwrap();
        let (batches, recs) = decode_all(&out, DecodeLimits::default()).unwrap();
        let b = &batches[0];
        assert!(b.control && b.transactional);
        assert_eq!(
            (b.producer_id, b.producer_epoch, b.base_offset),
            (7000, 3, 42)
        );
        // The key is version 0, type 1 (commit) or 0 (abort), as Kafka writes it.
        assert_eq!(
            recs[0].key.as_deref(),
            Some(&[0, 0, 0, kind.code() as u8][..])
        );
        assert_eq!(ControlRecord::from_record(&recs[0]).unwrap(), marker);
    }
    let r = Record {
        key: Some(Bytes::from_static(&[0, 0])),
        ..Record::default()
    };
    assert!(ControlRecord::from_record(&r).is_err());
}

#[test]
fn offsets_must_increase_within_a_batch() {
    let mut out = Vec::new();
    let mut enc = RecordBatchEncoder::new(&mut out, &BatchHeader::default());
    enc.append_at(5, 0, None, None, &[]).unwrap();
    assert!(matches!(
        enc.append_at(5, 0, None, None, &[]),
        Err(EncodeError::Invalid(_))
    ));
    enc.append(0, None, None, &[]).unwrap();
    assert_eq!(enc.record_count(), 2);
    enc.finish().unwrap();
    let (b, r) = decode_all(&out, DecodeLimits::default()).unwrap();
    assert_eq!((b[0].last_offset, r[1].offset), (6, 6));
}

#[test]
fn legacy_rejects_what_it_cannot_carry() {
    let r = Record {
        headers: vec![Header::default()],
        ..Record::default()
    };
    let mut out = vec![9];
    let err = encode_message_set(&mut out, &MessageSetOptions::default(), &[r]).unwrap_err();
    assert!(matches!(
        err,
        EncodeError::UnsupportedField {
            field: "headers",
            ..
        }
    ));
    let o = MessageSetOptions {
        compression: Compression::Zstd,
        ..MessageSetOptions::default()
    };
    assert!(encode_message_set(&mut out, &o, &sample_records(1, 0)).is_err());
    assert_eq!(out, [9]);
}

#[test]
fn unknown_or_disabled_codecs_are_typed_errors() {
    let (out, ends) = three_batches(0);
    let one = &out[..ends[0]];
    for code in 1u8..=7 {
        let mut b = one.to_vec();
        b[22] = code; // the low byte of the attributes
        let err = decode_all(&b, DecodeLimits::default().with_verify_crc(false)).unwrap_err();
        match Compression::from_code(code) {
            Ok(c) if c.is_enabled() => {
                assert!(
                    matches!(err, DecodeError::Decompress { .. }),
                    "{code}: {err:?}"
                )
            }
            _ => assert_eq!(err, DecodeError::UnsupportedCompression(code)),
        }
    }
}

#[test]
fn zstd_in_a_legacy_wrapper_is_refused() {
    // A gzip magic 1 wrapper, relabelled as zstd (codec 4) with a valid CRC: Kafka allows
    // zstd only in record batches, so the reader refuses it rather than decompress it.
    let recs = vec![Record {
        offset: 0,
        timestamp: 1,
        value: Some(Bytes::from_static(b"v")),
        ..Record::default()
    }];
    let options = legacy::MessageSetOptions {
        magic: 1,
        compression: Compression::Gzip,
        ..Default::default()
    };
    let mut buf = Vec::new();
    legacy::encode_message_set(&mut buf, &options, &recs).unwrap();
    buf[17] = (buf[17] & !0x07) | Compression::Zstd.code();
    let crc = crc32fast::hash(&buf[16..]);
    buf[12..16].copy_from_slice(&crc.to_be_bytes());
    let mut batches = Batches::new(Bytes::from(buf), DecodeLimits::default());
    assert_eq!(
        batches.next().unwrap().unwrap_err(),
        DecodeError::UnsupportedCompression(4)
    );
}

/// `message_runs`: consecutive uncompressed legacy messages of one magic and attributes
/// read as one batch; a wrapper, another magic, a message failing its checksum and a
/// partial message each end a run, and the checksum error comes after the run's records.
#[test]
fn message_runs_group_consecutive_plain_legacy_messages() {
    let rec = |offset: i64, v: &str| Record {
        offset,
        timestamp: 1_700_000_000_000 + offset,
        value: Some(Bytes::copy_from_slice(v.as_bytes())),
        ..Record::default()
    };
    let v0 = MessageSetOptions {
        magic: 0,
        ..MessageSetOptions::default()
    };
    let v1 = MessageSetOptions::default();
    let gzip = MessageSetOptions {
        magic: 0,
        compression: Compression::Gzip,
        ..MessageSetOptions::default()
    };
    let mut out = Vec::new();
    encode_message_set(&mut out, &v0, &[rec(0, "a"), rec(1, "b"), rec(2, "c")]).unwrap();
    encode_message_set(&mut out, &gzip, &[rec(3, "d"), rec(4, "e")]).unwrap();
    encode_message_set(&mut out, &v0, &[rec(5, "f")]).unwrap();
    encode_message_set(&mut out, &v1, &[rec(6, "g"), rec(7, "h")]).unwrap();
    let bad_at = out.len();
    encode_message_set(&mut out, &v1, &[rec(8, "i"), rec(9, "j")]).unwrap();
    // Message 8's value byte (the last of its message: 8 and 9 have the same size)
    // flipped: its checksum fails.
    let message_8 = (out.len() - bad_at) / 2;
    out[bad_at + message_8 - 1] ^= 0xff;
    let whole = out.len();
    encode_message_set(&mut out, &v1, &[rec(10, "k")]).unwrap();
    out.truncate(whole + (out.len() - whole) / 2);

    let limits = DecodeLimits::default().with_message_runs(true);
    let mut batches = Batches::new(Bytes::from(out.clone()), limits);
    let mut seen: Vec<(i64, i64, i32, Vec<i64>)> = Vec::new();
    let mut error = None;
    for b in &mut batches {
        match b {
            Ok(b) => {
                let offsets = b.record_refs().map(|r| r.unwrap().offset).collect();
                seen.push((b.base_offset, b.last_offset, b.record_count, offsets));
            }
            Err(e) => error = Some(e),
        }
    }
    assert_eq!(
        seen,
        vec![
            (0, 2, 3, vec![0, 1, 2]),
            (3, 4, 2, vec![3, 4]),
            (5, 5, 1, vec![5]),
            (6, 7, 2, vec![6, 7]),
        ]
    );
    assert!(
        matches!(error, Some(DecodeError::CrcMismatch { .. })),
        "{error:?}"
    );

    // Without runs: one batch per message, the same records.
    let plain = Batches::new(Bytes::from(out[..bad_at].to_vec()), DecodeLimits::default());
    let counts: Vec<i32> = plain.map(|b| b.unwrap().record_count).collect();
    assert_eq!(counts, vec![1, 1, 1, 2, 1, 1, 1]);

    // A partial message at the end ends the run before it and is reported as truncated.
    let mut good = Vec::new();
    encode_message_set(&mut good, &v1, &[rec(0, "x"), rec(1, "y")]).unwrap();
    let cut = good.len() - 3;
    let mut runs = Batches::new(Bytes::from(good[..cut].to_vec()), limits);
    let b = runs.next().unwrap().unwrap();
    assert_eq!((b.base_offset, b.record_count), (0, 1));
    assert!(runs.next().is_none());
    assert!(runs.truncated().is_some());
}
