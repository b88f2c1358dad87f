//! gzip, through flate2's pure-Rust backend.

use std::io::Write;

use flate2::bufread::MultiGzDecoder;
use flate2::write::GzEncoder;

use crate::protocol::error::{DecodeError, EncodeError};

pub(super) fn compress(
    input: &[u8],
    out: &mut Vec<u8>,
    level: Option<i32>,
) -> Result<(), EncodeError> {
    let level = match level {
        Some(l) => flate2::Compression::new(l.clamp(0, 9) as u32),
        None => flate2::Compression::default(),
    };
    let fail = |e: std::io::Error| EncodeError::Compress {
        codec: "gzip",
        reason: e.to_string(),
    };
    let mut enc = GzEncoder::new(out, level);
    enc.write_all(input).map_err(fail)?;
    enc.finish().map_err(fail)?;
    Ok(())
}

pub(super) fn decompress(
    input: &[u8],
    max_size: usize,
    out: &mut Vec<u8>,
) -> Result<(), DecodeError> {
    // Several concatenated gzip members are one stream, as Java's GZIPInputStream reads them.
    let mut dec = MultiGzDecoder::new(input);
    super::read_bounded(&mut dec, max_size, out, "gzip")
}
