use super::*;
use quickcheck::quickcheck;

const ALL: [(Compression, SnappyFraming, bool); 7] = [
    (Compression::None, SnappyFraming::Xerial, false),
    (Compression::Gzip, SnappyFraming::Xerial, false),
    (Compression::Snappy, SnappyFraming::Xerial, false),
    (Compression::Snappy, SnappyFraming::Raw, false),
    (Compression::Lz4, SnappyFraming::Xerial, false),
    (Compression::Lz4, SnappyFraming::Xerial, true),
    (Compression::Zstd, SnappyFraming::Xerial, false),
];

/// The configurations whose codec this build has.
fn enabled() -> impl Iterator<Item = (Compression, SnappyFraming, bool)> {
    ALL.into_iter().filter(|c| c.0.is_enabled())
}

fn opts(framing: SnappyFraming, legacy: bool) -> CompressOptions {
    CompressOptions {
        level: None,
        snappy_framing: framing,
        lz4_legacy_header_checksum: legacy,
    }
}

fn compressed(codec: Compression, framing: SnappyFraming, legacy: bool, data: &[u8]) -> Vec<u8> {
    let mut out = vec![0xAA]; // compress appends: keep what is already there
    compress(codec, data, &mut out, &opts(framing, legacy)).unwrap();
    assert_eq!(out[0], 0xAA);
    out.remove(0);
    out
}

/// Data that compresses somewhat but not trivially.
fn sample(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 7) % 251) as u8 ^ ((i / 300) as u8))
        .collect()
}

quickcheck! {
    fn every_codec_round_trips(data: Vec<u8>) -> bool {
        enabled().all(|(codec, framing, legacy)| {
            let c = compressed(codec, framing, legacy, &data);
            decompress(codec, &c, data.len()).as_deref() == Ok(&data[..])
        })
    }
}

#[test]
fn large_inputs_round_trip_across_blocks() {
    let data = sample(300_000);
    for (codec, framing, legacy) in enabled() {
        let c = compressed(codec, framing, legacy, &data);
        assert_eq!(
            decompress(codec, &c, data.len()).unwrap(),
            &data[..],
            "{codec:?} {framing:?}"
        );
        if codec != Compression::None {
            assert!(c.len() < data.len(), "{codec:?} did not compress");
        }
    }
}

#[test]
fn codes_round_trip_and_unknown_codes_are_typed_errors() {
    for c in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        assert_eq!(Compression::from_code(c.code()), Ok(c));
        if !c.is_enabled() {
            let mut out = Vec::new();
            let err = compress(c, b"data", &mut out, &CompressOptions::default()).unwrap_err();
            assert_eq!(err, EncodeError::CompressionDisabled(c.name()));
            let err = decompress(c, b"data", 100).unwrap_err();
            assert_eq!(err, DecodeError::UnsupportedCompression(c.code()));
        }
    }
    assert_eq!(Compression::Gzip.is_enabled(), cfg!(feature = "gzip"));
    assert_eq!(Compression::Zstd.code(), 4);
    assert_eq!(
        Compression::from_code(5),
        Err(DecodeError::UnsupportedCompression(5))
    );
}

#[test]
fn bombs_are_refused_without_inflating() {
    let zeros = vec![0u8; 4 << 20];
    for (codec, framing, legacy) in enabled() {
        let c = compressed(codec, framing, legacy, &zeros);
        let mut out = Vec::new();
        let err = decompress_into(codec, &c, 100_000, &mut out).unwrap_err();
        assert_eq!(
            err,
            DecodeError::DecompressedTooLarge { max: 100_000 },
            "{codec:?}"
        );
        // Bounded: never more than the limit plus one block of slack was reserved.
        assert!(
            out.capacity() <= 100_000 + (4 << 20) / 8,
            "{codec:?} reserved {}",
            out.capacity()
        );
        // Exactly at the limit is fine.
        assert_eq!(
            decompress(codec, &c, zeros.len()).unwrap().len(),
            zeros.len()
        );
        assert!(decompress(codec, &c, zeros.len() - 1).is_err());
    }
}

#[test]
fn truncated_or_corrupt_input_is_an_error_not_a_panic() {
    let data = sample(5000);
    for (codec, framing, legacy) in enabled() {
        if codec == Compression::None {
            continue;
        }
        let c = compressed(codec, framing, legacy, &data);
        for cut in 0..c.len() {
            // Raw snappy and a few others can decode a prefix only by accident; what matters
            // is that nothing panics and nothing decodes to the full data.
            if let Ok(d) = decompress(codec, &c[..cut], 1 << 20) {
                assert_ne!(&d[..], &data[..], "{codec:?} cut {cut}");
            }
        }
        for i in (0..c.len()).step_by(7) {
            let mut bad = c.clone();
            bad[i] ^= 0x5A;
            let _ = decompress(codec, &bad, 1 << 20);
        }
    }
}

#[test]
#[cfg(feature = "lz4")]
fn xxh32_matches_reference_values() {
    // Reference values of xxHash32 with seed 0.
    assert_eq!(lz4::xxh32(b"", 0), 0x02CC_5D05);
    // Cross-check against lz4_flex's own frame writer: its header checksum must agree with
    // ours, and it must decode through our frame parser (linked blocks, content and block
    // checksums included).
    use std::io::Write;
    let data = sample(200_000);
    let info = lz4_flex::frame::FrameInfo::new()
        .block_mode(lz4_flex::frame::BlockMode::Linked)
        .block_checksums(true)
        .content_checksum(true)
        .content_size(Some(data.len() as u64));
    let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
    enc.write_all(&data).unwrap();
    let frame = enc.finish().unwrap();
    assert_eq!(
        decompress(Compression::Lz4, &frame, data.len()).unwrap(),
        &data[..]
    );
}

#[test]
#[cfg(feature = "lz4")]
fn lz4_legacy_header_checksum_covers_the_magic() {
    use std::io::Read;
    let data = sample(1000);
    let modern = compressed(Compression::Lz4, SnappyFraming::Xerial, false, &data);
    let legacy = compressed(Compression::Lz4, SnappyFraming::Xerial, true, &data);
    // Same frame, only the header checksum byte (offset 6) differs.
    assert_eq!(modern[..6], legacy[..6]);
    assert_eq!(modern[7..], legacy[7..]);
    assert_eq!(modern[6], (lz4::xxh32(&modern[4..6], 0) >> 8) as u8);
    assert_eq!(legacy[6], (lz4::xxh32(&modern[..6], 0) >> 8) as u8);
    assert_ne!(modern[6], legacy[6]);
    // A standard decoder accepts the modern frame and rejects the legacy one.
    let mut d = Vec::new();
    lz4_flex::frame::FrameDecoder::new(&modern[..])
        .read_to_end(&mut d)
        .unwrap();
    assert_eq!(d, data);
    assert!(lz4_flex::frame::FrameDecoder::new(&legacy[..])
        .read_to_end(&mut Vec::new())
        .is_err());
    // A wrong checksum that is neither form is refused.
    let mut bad = modern.clone();
    bad[6] = bad[6].wrapping_add(1);
    if bad[6] == legacy[6] {
        bad[6] = bad[6].wrapping_add(1);
    }
    assert!(matches!(
        decompress(Compression::Lz4, &bad, 1 << 20),
        Err(DecodeError::Decompress { .. })
    ));
}

#[test]
#[cfg(feature = "snappy")]
fn snappy_framings_are_detected() {
    let data = sample(100_000);
    let xerial = compressed(Compression::Snappy, SnappyFraming::Xerial, false, &data);
    let raw = compressed(Compression::Snappy, SnappyFraming::Raw, false, &data);
    assert_eq!(&xerial[..16], b"\x82SNAPPY\0\0\0\0\x01\0\0\0\x01");
    // 100 000 bytes in 32 KiB blocks is four blocks.
    let mut rest = &xerial[16..];
    let mut blocks = 0;
    while !rest.is_empty() {
        let n = i32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        rest = &rest[4 + n..];
        blocks += 1;
    }
    assert_eq!(blocks, 4);
    assert_eq!(
        snap::raw::Decoder::new().decompress_vec(&raw).unwrap(),
        data
    );
    assert_eq!(
        decompress(Compression::Snappy, &raw, data.len()).unwrap(),
        &data[..]
    );
    assert_eq!(
        decompress(Compression::Snappy, &xerial, data.len()).unwrap(),
        &data[..]
    );
}

/// The limit the work tests decode under: far above what the crafted inputs produce, so
/// that nothing but the work bound stops them early.
const WORK_TEST_LIMIT: usize = 64 << 20;
/// About the size of each crafted input.
const WORK_TEST_INPUT: usize = 1 << 20;

/// Decodes `input`, checks the result, and that the scratch work stayed within `factor`
/// times the input and output plus one 64 KiB chunk of slack. Returns the output.
fn decode_within_work(
    codec: Compression,
    input: &[u8],
    expect: Result<(), DecodeError>,
    factor: u64,
) -> Vec<u8> {
    let mut out = vec![0xEE];
    let (result, work) = decompress_into_counting(codec, input, WORK_TEST_LIMIT, &mut out);
    assert_eq!(result, expect, "{codec:?}");
    assert_eq!(out[0], 0xEE, "{codec:?} kept what the buffer held");
    out.remove(0);
    let bound = factor * (input.len() + out.len()) as u64 + 64 * 1024;
    assert!(
        work <= bound,
        "{codec:?}: {work} bytes of scratch work for {} bytes in and {} out (bound {bound})",
        input.len(),
        out.len()
    );
    out
}

#[test]
#[cfg(feature = "lz4")]
fn decompression_work_is_bounded_by_output_lz4_one_literal_blocks_in_a_4_mib_frame() {
    // A frame declaring 4 MiB blocks, then blocks of one literal each: each once made the
    // decoder zero a 4 MiB window.
    let mut frame = lz4::MAGIC.to_vec();
    frame.extend_from_slice(&[0b0110_0000, 7 << 4]);
    frame.push(lz4::header_checksum(&frame[4..6]));
    let blocks = WORK_TEST_INPUT / 6;
    for _ in 0..blocks {
        frame.extend_from_slice(&2u32.to_le_bytes());
        frame.extend_from_slice(&[0x10, b'a']);
    }
    frame.extend_from_slice(&0u32.to_le_bytes());
    let out = decode_within_work(Compression::Lz4, &frame, Ok(()), 2);
    assert_eq!(out, vec![b'a'; blocks]);
}

#[test]
#[cfg(feature = "zstd")]
fn decompression_work_is_bounded_by_output_zstd_many_one_byte_frames() {
    // Frames of one byte each: each read of the streaming decoder once zeroed 32 KiB.
    let one = ::zstd::bulk::compress(b"a", 3).unwrap();
    let frames = WORK_TEST_INPUT / one.len();
    let input = one.repeat(frames);
    let out = decode_within_work(Compression::Zstd, &input, Ok(()), 2);
    assert_eq!(out, vec![b'a'; frames]);
}

#[test]
#[cfg(feature = "gzip")]
fn decompression_work_is_bounded_by_output_gzip_many_one_byte_members() {
    // Members of one byte each: each reset the inflater (zeroing its 32 KiB window) and
    // took a zeroed 32 KiB read. Past the budget the stream is refused.
    let one = compressed(Compression::Gzip, SnappyFraming::Xerial, false, b"a");
    let input = one.repeat(WORK_TEST_INPUT / one.len());
    let out = decode_within_work(
        Compression::Gzip,
        &input,
        Err(DecodeError::Decompress {
            codec: "gzip",
            reason: "too many members: work out of proportion to the input and output".into(),
        }),
        WORK_PER_BYTE,
    );
    assert!(out.iter().all(|&b| b == b'a'), "a prefix was decoded");
    // Members of a realistic size are still one stream.
    let data = sample(3000);
    let mut two = compressed(
        Compression::Gzip,
        SnappyFraming::Xerial,
        false,
        &data[..1000],
    );
    two.extend(compressed(
        Compression::Gzip,
        SnappyFraming::Xerial,
        false,
        &data[1000..],
    ));
    assert_eq!(
        decode_within_work(Compression::Gzip, &two, Ok(()), WORK_PER_BYTE),
        data
    );
}

#[test]
#[cfg(feature = "snappy")]
fn decompression_work_is_bounded_by_output_snappy_block_announcing_more_than_it_can_hold() {
    // Xerial blocks of one byte each, then a 7-byte block announcing 63 MiB: its room was
    // zeroed before the decoder found it short.
    let mut input = b"\x82SNAPPY\0\0\0\0\x01\0\0\0\x01".to_vec();
    let blocks = WORK_TEST_INPUT / 7;
    for _ in 0..blocks {
        input.extend_from_slice(&3i32.to_be_bytes());
        input.extend_from_slice(&[0x01, 0x00, b'a']);
    }
    let mut last = Vec::new();
    let mut len = 63u32 << 20;
    while len >= 0x80 {
        last.push(len as u8 | 0x80);
        len >>= 7;
    }
    last.push(len as u8);
    last.extend_from_slice(&[0x00, b'a']);
    input.extend_from_slice(&(last.len() as i32).to_be_bytes());
    input.extend_from_slice(&last);
    let out = decode_within_work(
        Compression::Snappy,
        &input,
        Err(DecodeError::Decompress {
            codec: "snappy",
            reason: "announced length out of proportion to the block".into(),
        }),
        2,
    );
    assert_eq!(out, vec![b'a'; blocks]);
}
