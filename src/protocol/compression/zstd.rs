//! Zstandard, through the zstd crate (libzstd).

use crate::protocol::error::{DecodeError, EncodeError};

/// The level the Java client uses when none is configured.
const DEFAULT_LEVEL: i32 = 3;

pub(super) fn compress(
    input: &[u8],
    out: &mut Vec<u8>,
    level: Option<i32>,
) -> Result<(), EncodeError> {
    // One-shot compression records the content size in the frame header, so the reader can
    // size its buffers exactly, and costs less than a streaming encoder per batch.
    let compressed = zstd::bulk::compress(input, level.unwrap_or(DEFAULT_LEVEL)).map_err(|e| {
        EncodeError::Compress {
            codec: "zstd",
            reason: e.to_string(),
        }
    })?;
    out.extend_from_slice(&compressed);
    Ok(())
}

/// The largest window (2^24 = 16 MiB) a frame may ask the decoder to allocate. A frame's
/// header declares its window and libzstd allocates it up front, so without a cap a
/// 13-byte frame could make it reserve 128 MiB (found by the `decompress_zstd` fuzz
/// target). Kafka producers use far smaller windows: level 3 streams use 2 MiB, and
/// one-shot frames never exceed their content, which a batch keeps to a few MiB.
const WINDOW_LOG_MAX: u32 = 24;

pub(super) fn decompress(
    input: &[u8],
    max_size: usize,
    out: &mut Vec<u8>,
    work: &mut super::Work,
) -> Result<(), DecodeError> {
    let fail = |e: std::io::Error| DecodeError::Decompress {
        codec: "zstd",
        reason: e.to_string(),
    };
    let mut dec = zstd::stream::read::Decoder::with_buffer(input).map_err(fail)?;
    dec.window_log_max(WINDOW_LOG_MAX).map_err(fail)?;
    super::Sink::new(out, max_size).drain(&mut dec, "zstd", work)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_asking_for_a_huge_window_is_refused_without_allocating_it() {
        // The fuzzer's minimised input: a frame header declaring a 2^31-byte window
        // (window descriptor 0x80 with the single-segment flag clear), then an empty block.
        let frame = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x80, 0x01, 0x00, 0x00];
        let mut out = Vec::new();
        let err = decompress(
            &frame,
            1 << 20,
            &mut out,
            &mut super::super::Work::new(frame.len()),
        )
        .unwrap_err();
        assert!(
            matches!(err, DecodeError::Decompress { codec: "zstd", .. }),
            "{err:?}"
        );
    }

    #[test]
    fn one_shot_frames_round_trip_and_carry_their_size() {
        let input: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut out = vec![7u8];
        compress(&input, &mut out, None).unwrap();
        assert_eq!(out[0], 7, "compress appends");
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&out[1..])
                .ok()
                .flatten(),
            Some(input.len() as u64)
        );
        let mut back = Vec::new();
        decompress(
            &out[1..],
            input.len(),
            &mut back,
            &mut super::super::Work::new(0),
        )
        .unwrap();
        assert_eq!(back, input);
    }
}
