//! The checks behind grete's fuzz targets, kept in a library so that each target in
//! `fuzz_targets/` is a one-line `fuzz_target!` and the seed generator shares the helpers.
//!
//! Every check runs the real decoder on the fuzzer's bytes and panics (which libFuzzer
//! reports as a crash) when an invariant breaks; a decoder returning `Err` is fine.

#![forbid(unsafe_code)]

use bytes::Bytes;
use grete::protocol::compression::{self, CompressOptions, Compression, SnappyFraming};
use grete::protocol::frame::FrameDecoder;
use grete::protocol::records::{
    encode_record_batch, Batch, BatchHeader, Batches, ControlRecord, ControlRecordType,
    DecodeLimits, Record, TimestampType,
};
use grete::protocol::DecodeError;

pub mod consumer;
pub mod json;
pub mod messages;
pub mod peers;
pub mod producer;
pub mod xxh32;

/// The decompression limit the record targets run with.
pub const MAX_DECOMPRESSED: usize = 1 << 20;

/// Reads a little-endian number of `n` bytes (at most 8) from the front of `data`,
/// missing bytes counting as zero.
pub fn take_le(data: &mut &[u8], n: usize) -> u64 {
    let k = n.min(data.len());
    let mut v = 0u64;
    for (i, b) in data[..k].iter().enumerate() {
        v |= (*b as u64) << (8 * i);
    }
    *data = &data[k..];
    v
}

// ---------------------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------------------

/// What one run of the frame decoder produced: the frames, and whether it failed.
#[derive(Debug, PartialEq, Eq)]
struct FrameRun {
    frames: Vec<Bytes>,
    failed: Option<DecodeError>,
}

fn drain(dec: &mut FrameDecoder, max: usize, run: &mut FrameRun) {
    if run.failed.is_some() {
        assert!(dec.poll_frame().is_err(), "a failed decoder recovered");
        assert_eq!(dec.buffered(), 0, "a failed decoder still buffers");
        return;
    }
    loop {
        match dec.poll_frame() {
            Ok(Some(f)) => {
                assert!(
                    f.len() <= max,
                    "frame of {} bytes over the max {max}",
                    f.len()
                );
                run.frames.push(f);
            }
            Ok(None) => {
                // Only a partial frame may be left, and its announced size passed the check.
                assert!(
                    dec.buffered() < max.saturating_add(4),
                    "{} bytes buffered with max frame {max}",
                    dec.buffered()
                );
                return;
            }
            Err(e) => {
                assert_eq!(dec.buffered(), 0, "a failed decoder still buffers");
                run.failed = Some(e);
                return;
            }
        }
    }
}

/// Input: 2 bytes of max frame size, 1 byte counting chunk sizes, that many chunk-size
/// bytes, then the stream. The stream is fed in one piece and in those chunks; both runs
/// must produce the same frames, each no larger than the max, and the frames with their
/// prefixes must be exactly the start of the stream.
pub fn check_frames(mut data: &[u8]) {
    let max = take_le(&mut data, 2) as usize;
    let n_cuts = (take_le(&mut data, 1) as usize).min(data.len());
    let (cuts, stream) = data.split_at(n_cuts);

    let mut whole = FrameRun {
        frames: Vec::new(),
        failed: None,
    };
    let mut dec = FrameDecoder::new(max);
    assert_eq!(dec.max_frame_size(), max);
    dec.handle_data(stream);
    drain(&mut dec, max, &mut whole);

    let mut chunked = FrameRun {
        frames: Vec::new(),
        failed: None,
    };
    let mut dec = FrameDecoder::new(max);
    drain(&mut dec, max, &mut chunked);
    let mut rest = stream;
    let mut cuts = cuts.iter().copied().cycle();
    while !rest.is_empty() {
        // Chunk sizes 1..=255; 0 stands for an empty read (a spurious wake-up), then 1 byte.
        let mut n = cuts.next().unwrap_or(255) as usize;
        if n == 0 {
            dec.handle_data(&[]);
            drain(&mut dec, max, &mut chunked);
            n = 1;
        }
        let n = n.min(rest.len());
        dec.handle_data(&rest[..n]);
        rest = &rest[n..];
        drain(&mut dec, max, &mut chunked);
    }
    assert_eq!(whole, chunked, "chunking changed the frames");

    let mut at = 0;
    for f in &whole.frames {
        let size = (f.len() as u32).to_be_bytes();
        assert_eq!(&stream[at..at + 4], &size, "frame prefix mismatch");
        assert_eq!(
            &stream[at + 4..at + 4 + f.len()],
            &f[..],
            "frame body mismatch"
        );
        at += 4 + f.len();
    }
    if whole.failed.is_none() {
        // What is left is a partial frame: a size that passed, with too few bytes.
        let left = &stream[at..];
        if left.len() >= 4 {
            let size = i32::from_be_bytes([left[0], left[1], left[2], left[3]]);
            assert!(size >= 0 && size as usize <= max && left.len() - 4 < size as usize);
        }
    } else {
        let left = &stream[at..];
        assert!(left.len() >= 4, "failed without a size prefix");
        let size = i32::from_be_bytes([left[0], left[1], left[2], left[3]]);
        assert!(
            size < 0 || size as usize > max,
            "failed on a valid size {size}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Decompression
// ---------------------------------------------------------------------------------------

/// Input: 3 bytes of max output size (up to 16 MiB, reduced to 1 MiB), one flags byte,
/// then the compressed bytes. Checks: the output never passes the max (on success or
/// failure), bytes already in the output buffer are kept, the result is deterministic and
/// exact at the limit; the scratch work (bytes zeroed or reset besides the output) is
/// proportional to the input and output ([`work_bound`]); and the input itself,
/// compressed, decompresses back to itself.
pub fn check_decompress(codec: Compression, mut data: &[u8]) {
    let max = (take_le(&mut data, 3) as usize) % (MAX_DECOMPRESSED + 1);
    let flags = take_le(&mut data, 1) as u8;
    let mut input = data.to_vec();
    if codec == Compression::Lz4 && flags & 1 != 0 {
        // Repair the frame descriptor's checksum so that the blocks are reached.
        fix_lz4_header_checksum(&mut input, flags & 2 != 0);
    }

    let result = compression::decompress(codec, &input, max);
    let prefix = b"earlier output";
    let mut out = prefix.to_vec();
    let (into, work) = compression::decompress_into_counting(codec, &input, max, &mut out);
    assert!(
        out.starts_with(prefix),
        "decompress_into clobbered the buffer"
    );
    let appended = out.len() - prefix.len();
    assert!(appended <= max, "{appended} bytes appended with max {max}");
    let bound = work_bound(codec, input.len(), appended);
    assert!(
        work <= bound,
        "{work} bytes of scratch work for {} in and {appended} out (bound {bound})",
        input.len()
    );
    match (&result, &into) {
        (Ok(a), Ok(())) => {
            assert!(a.len() <= max, "{} bytes out with max {max}", a.len());
            assert_eq!(&a[..], &out[prefix.len()..], "decompress_into differs");
            // Exactly at the limit is fine; one byte less is too large.
            let exact = compression::decompress(codec, &input, a.len()).expect("exact limit");
            assert_eq!(exact, *a);
            if !a.is_empty() {
                match compression::decompress(codec, &input, a.len() - 1) {
                    Err(DecodeError::DecompressedTooLarge { .. }) => {}
                    other => panic!("one byte under the size gave {other:?}"),
                }
            }
        }
        (Err(a), Err(b)) => assert_eq!(a, b, "decompress and decompress_into disagree"),
        (a, b) => panic!("decompress {a:?} vs decompress_into {b:?}"),
    }

    check_compress_round_trip(codec, data, flags);
}

/// The most scratch work a decompression of `input` bytes that produced `output` bytes
/// may do: zeroing is bounded by the output plus one unit of room (a 32 KiB read for the
/// streaming codecs; an LZ4 block's room, at most 255 times its compressed size; the
/// announced length of a Snappy block, at most 22 times its size), and gzip member resets
/// by `WORK_PER_BYTE` times the input and output.
pub fn work_bound(codec: Compression, input: usize, output: usize) -> u64 {
    let (input, output) = (input as u64, output as u64);
    let slack = 64 * 1024;
    match codec {
        Compression::Gzip => compression::WORK_PER_BYTE * (input + output) + 2 * slack,
        Compression::Lz4 => 255 * input + output + slack,
        Compression::Snappy => 22 * input + output + slack,
        _ => input + output + slack,
    }
}

/// Compressing `data` and decompressing it gives `data` back, with every option.
pub fn check_compress_round_trip(codec: Compression, data: &[u8], flags: u8) {
    let options = CompressOptions {
        level: match codec {
            Compression::Gzip => Some(1 + (flags >> 4) as i32 % 9),
            Compression::Zstd => Some(1 + (flags >> 4) as i32 % 5),
            _ => None,
        },
        snappy_framing: if flags & 4 != 0 {
            SnappyFraming::Raw
        } else {
            SnappyFraming::Xerial
        },
        lz4_legacy_header_checksum: flags & 8 != 0,
    };
    let mut packed = Vec::new();
    compression::compress(codec, data, &mut packed, &options).expect("compress");
    let back = compression::decompress(codec, &packed, data.len()).expect("decompress own output");
    assert_eq!(&back[..], data, "compression round trip");
}

/// Recomputes the header checksum byte of an LZ4 frame at the start of `input`, over the
/// descriptor (or, `legacy`, over magic and descriptor as Kafka before 0.10 did).
pub fn fix_lz4_header_checksum(input: &mut [u8], legacy: bool) {
    if input.len() < 7 || input[..4] != 0x184D_2204u32.to_le_bytes() {
        return;
    }
    let flg = input[4];
    let mut desc_len = 4 + 2;
    if flg & 0x08 != 0 {
        desc_len += 8; // content size
    }
    if flg & 0x01 != 0 {
        desc_len += 4; // dictionary id
    }
    if input.len() <= desc_len {
        return;
    }
    let from = if legacy { 0 } else { 4 };
    input[desc_len] = (xxh32::xxh32(&input[from..desc_len], 0) >> 8) as u8;
}

// ---------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------

/// Which magic the first batch of a record target's input is forced to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFormat {
    /// Magic 0 or 1 (the flags byte chooses).
    Legacy,
    /// Magic 2.
    V2,
}

/// Input: one flags byte (bit 0: verify CRCs; bit 1: magic 1 rather than 0 for legacy),
/// then the records bytes of a partition. Every batch and record is iterated with a 1 MiB
/// decompression limit. Checks: batches tile the input, no record outgrows its batch, a
/// batch that passes with CRC checks passes the same without, and every v2 batch that
/// decodes re-encodes (uncompressed) to records that decode equal.
pub fn check_records(format: RecordFormat, mut data: &[u8]) {
    let flags = take_le(&mut data, 1) as u8;
    let verify = flags & 1 != 0;
    let mut input = data.to_vec();
    if input.len() > 16 {
        input[16] = match format {
            RecordFormat::Legacy => (flags >> 1) & 1,
            RecordFormat::V2 => 2,
        };
    }
    let input = Bytes::from(input);

    let checked = read_all(&input, verify);
    if verify {
        // Skipping the checks cannot make valid input fail or decode differently.
        let unchecked = read_all(&input, false);
        let n = checked.batches.len();
        assert!(unchecked.batches.len() >= n);
        assert_eq!(checked.batches[..n], unchecked.batches[..n]);
    }
    for (records, v2, header) in &checked.batches {
        if *v2 {
            check_reencode(records, header);
        }
    }
}

/// One decoded batch: its records, whether it was v2, and the header to re-encode it.
type Decoded = (Result<Vec<Record>, DecodeError>, bool, BatchHeader);

struct ReadAll {
    batches: Vec<Decoded>,
}

fn read_all(input: &Bytes, verify: bool) -> ReadAll {
    let limits = DecodeLimits::default()
        .with_max_decompressed_size(MAX_DECOMPRESSED)
        .with_verify_crc(verify);
    let mut batches = Batches::new(input.clone(), limits);
    let mut out = Vec::new();
    let mut consumed = 0usize;
    let mut last_next = None;
    for batch in &mut batches {
        let Ok(batch) = batch else { break };
        consumed += batch.size_in_bytes;
        assert!(consumed <= input.len(), "batches outgrew the input");
        assert!((0..=2).contains(&batch.magic));
        let bound = batch.size_in_bytes.max(MAX_DECOMPRESSED);
        let mut records = Vec::new();
        let mut failed = None;
        for r in batch.records() {
            match r {
                Ok(r) => {
                    let key = r.key.as_ref().map_or(0, |k| k.len());
                    let value = r.value.as_ref().map_or(0, |v| v.len());
                    assert!(key + value <= bound, "record bigger than its batch");
                    if batch.magic < 2 {
                        assert!(r.headers.is_empty(), "legacy record with headers");
                    }
                    records.push(r);
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
            assert!(records.len() <= bound, "more records than bytes");
        }
        check_record_refs(&batch, &records, &failed);
        if batch.control {
            for r in &records {
                check_control_record(r);
            }
        }
        last_next = Some(batch.next_offset());
        let header = BatchHeader {
            base_offset: batch.base_offset,
            partition_leader_epoch: batch.partition_leader_epoch,
            compression: Compression::None,
            timestamp_type: batch.timestamp_type,
            transactional: batch.transactional,
            control: batch.control,
            producer_id: batch.producer_id,
            producer_epoch: batch.producer_epoch,
            base_sequence: batch.base_sequence,
            ..BatchHeader::default()
        };
        let records = match failed {
            Some(e) => Err(e),
            None => Ok(records),
        };
        out.push((records, batch.magic == 2, header));
    }
    assert_eq!(
        batches.next_offset(),
        last_next,
        "next_offset is not the last batch's"
    );
    if batches.truncated().is_some() {
        assert!(consumed + batches.remaining().len() <= input.len());
    }
    ReadAll { batches: out }
}

/// The borrowed view of a batch reads the same records as the owned one and fails at the
/// same place with the same error; each record's headers iterate to exactly their count.
fn check_record_refs(batch: &Batch, records: &[Record], failed: &Option<DecodeError>) {
    let mut n = 0;
    let mut refs = batch.record_refs();
    for r in &mut refs {
        match r {
            Ok(r) => {
                assert_eq!(r.headers.len(), r.headers.count(), "header count");
                let owned = r.to_record();
                assert_eq!(
                    records.get(n),
                    Some(&owned),
                    "record_refs read record {n} differently"
                );
                n += 1;
            }
            Err(e) => {
                assert_eq!(n, records.len(), "record_refs failed at another record");
                assert_eq!(Some(&e), failed.as_ref(), "record_refs failed differently");
                n += 1;
                break;
            }
        }
    }
    assert!(refs.next().is_none(), "record_refs goes on after an error");
    assert_eq!(
        n,
        records.len() + failed.is_some() as usize,
        "record_refs read another count"
    );
}

/// A control batch's record reads as a control record exactly when its key holds a
/// version and a type; the coordinator epoch is read for transaction markers only.
fn check_control_record(r: &Record) {
    match (ControlRecord::from_record(r), r.key.as_deref()) {
        (Ok(c), Some(k)) => {
            assert!(k.len() >= 4, "control record from a {}-byte key", k.len());
            assert_eq!(c.version, i16::from_be_bytes([k[0], k[1]]));
            assert_eq!(c.kind.code(), i16::from_be_bytes([k[2], k[3]]));
            let marker = matches!(c.kind, ControlRecordType::Abort | ControlRecordType::Commit);
            let has_epoch = marker && r.value.as_ref().is_some_and(|v| v.len() >= 6);
            assert_eq!(c.coordinator_epoch.is_some(), has_epoch, "{c:?} from {r:?}");
        }
        (Err(e), Some(k)) => {
            assert!(
                k.len() < 4,
                "control key of {} bytes refused: {e:?}",
                k.len()
            );
            assert!(matches!(e, DecodeError::UnexpectedEof { .. }), "{e:?}");
        }
        (Err(e), None) => assert_eq!(e, DecodeError::UnexpectedNull("control record key")),
        (Ok(c), None) => panic!("control record {c:?} without a key"),
    }
}

/// Re-encodes a decoded v2 batch's records (uncompressed) and reads them back.
fn check_reencode(records: &Result<Vec<Record>, DecodeError>, header: &BatchHeader) {
    let Ok(records) = records else { return };
    if records.is_empty() {
        return;
    }
    let mut buf = Vec::new();
    if encode_record_batch(&mut buf, header, records).is_err() {
        // Offsets too far from the base for an int32 delta, and the like.
        return;
    }
    let limits = DecodeLimits::default().with_max_decompressed_size(MAX_DECOMPRESSED);
    let mut batches = Batches::new(Bytes::from(buf), limits);
    let batch = batches
        .next()
        .expect("re-encoded batch missing")
        .expect("re-encoded batch does not decode");
    let again: Vec<Record> = batch
        .records()
        .collect::<Result<_, _>>()
        .expect("re-encoded records do not decode");
    let expected: Vec<Record> = records
        .iter()
        .map(|r| {
            let mut r = r.clone();
            if header.timestamp_type == TimestampType::LogAppendTime {
                // Every record reads as the batch's max timestamp.
                r.timestamp = batch.max_timestamp;
            }
            r
        })
        .collect();
    assert_eq!(again, expected, "re-encoded records differ");
    assert!(batches.next().is_none(), "re-encoding wrote two batches");
}
