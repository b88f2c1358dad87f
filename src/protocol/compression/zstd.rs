//! Zstandard, through the zstd crate (libzstd).

use std::io::Write;

use crate::protocol::error::{DecodeError, EncodeError};

/// The level the Java client uses when none is configured.
const DEFAULT_LEVEL: i32 = 3;

pub(super) fn compress(
    input: &[u8],
    out: &mut Vec<u8>,
    level: Option<i32>,
) -> Result<(), EncodeError> {
    let fail = |e: std::io::Error| EncodeError::Compress {
        codec: "zstd",
        reason: e.to_string(),
    };
    let mut enc =
        zstd::stream::write::Encoder::new(out, level.unwrap_or(DEFAULT_LEVEL)).map_err(fail)?;
    enc.write_all(input).map_err(fail)?;
    enc.finish().map_err(fail)?;
    Ok(())
}

pub(super) fn decompress(
    input: &[u8],
    max_size: usize,
    out: &mut Vec<u8>,
) -> Result<(), DecodeError> {
    let mut dec =
        zstd::stream::read::Decoder::with_buffer(input).map_err(|e| DecodeError::Decompress {
            codec: "zstd",
            reason: e.to_string(),
        })?;
    super::read_bounded(&mut dec, max_size, out, "zstd")
}
