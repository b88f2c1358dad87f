//! gzip, through flate2's pure-Rust backend.

use std::io::Write;

use flate2::bufread::GzDecoder;
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

/// What starting a gzip member costs besides its bytes: the inflater's 32 KiB window is
/// zeroed for each one.
const MEMBER_RESET: usize = 32 * 1024;

pub(super) fn decompress(
    input: &[u8],
    max_size: usize,
    out: &mut Vec<u8>,
    work: &mut super::Work,
) -> Result<(), DecodeError> {
    // Several concatenated gzip members are one stream, as Java's GZIPInputStream reads them.
    // They are walked here rather than by flate2's MultiGzDecoder so that each member's
    // reset is charged: a megabyte of empty members would otherwise zero 1.6 GB.
    let mut sink = super::Sink::new(out, max_size);
    let mut dec = GzDecoder::new(input);
    work.zeroed(MEMBER_RESET);
    loop {
        sink.drain(&mut dec, "gzip", work)?;
        let rest: &[u8] = dec.get_ref();
        if rest.is_empty() {
            return Ok(());
        }
        work.charge(MEMBER_RESET, sink.produced(), "gzip", "too many members")?;
        dec.reset(rest);
    }
}
