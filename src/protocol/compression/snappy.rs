//! Snappy, raw or in the xerial `SnappyOutputStream` framing the Java client writes.
//!
//! The xerial framing is a 16-byte header (the magic `\x82SNAPPY\0`, then a big-endian
//! version and minimum compatible version, both 1 in practice) followed by blocks, each a
//! big-endian `int32` length and that many bytes of one raw Snappy block. Reading detects
//! the framing by the magic, as the Java client does.

use snap::raw::{decompress_len, max_compress_len, Decoder, Encoder};

use super::SnappyFraming;
use crate::protocol::error::{DecodeError, EncodeError};

const XERIAL_MAGIC: [u8; 8] = *b"\x82SNAPPY\0";
const XERIAL_HEADER_LEN: usize = 16;
/// The block size xerial's output stream uses by default.
const XERIAL_BLOCK: usize = 32 * 1024;

fn compress_block(
    enc: &mut Encoder,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    let at = out.len();
    out.resize(at + max_compress_len(input.len()), 0);
    match enc.compress(input, &mut out[at..]) {
        Ok(n) => {
            out.truncate(at + n);
            Ok(n)
        }
        Err(e) => {
            out.truncate(at);
            Err(EncodeError::Compress {
                codec: "snappy",
                reason: e.to_string(),
            })
        }
    }
}

pub(super) fn compress(
    input: &[u8],
    out: &mut Vec<u8>,
    framing: SnappyFraming,
) -> Result<(), EncodeError> {
    if max_compress_len(input.len()) == 0 {
        return Err(EncodeError::TooLong("snappy input"));
    }
    let mut enc = Encoder::new();
    match framing {
        SnappyFraming::Raw => {
            compress_block(&mut enc, input, out)?;
        }
        SnappyFraming::Xerial => {
            out.extend_from_slice(&XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            for block in input.chunks(XERIAL_BLOCK) {
                let len_at = out.len();
                out.extend_from_slice(&[0; 4]);
                let n = compress_block(&mut enc, block, out)?;
                // A block is at most max_compress_len(32 KiB) bytes, far below i32::MAX.
                out[len_at..len_at + 4].copy_from_slice(&(n as i32).to_be_bytes());
            }
        }
    }
    Ok(())
}

fn corrupt(reason: impl ToString) -> DecodeError {
    DecodeError::Decompress {
        codec: "snappy",
        reason: reason.to_string(),
    }
}

/// The most a raw block can decode to per byte of it: the densest element is a copy with a
/// 2-byte offset, 3 bytes for 64 bytes of output.
const MAX_RATIO: usize = 22;

/// Decompresses one raw block, refusing before allocating if its announced length would
/// take the output past `max_size` bytes (counted from `start`), or is more than the
/// block could decode to (a few bytes announcing a megabyte would otherwise cost that
/// megabyte zeroed before failing).
fn decompress_block(
    dec: &mut Decoder,
    block: &[u8],
    start: usize,
    max_size: usize,
    out: &mut Vec<u8>,
    work: &mut super::Work,
) -> Result<(), DecodeError> {
    let len = decompress_len(block).map_err(corrupt)?;
    if len > max_size - (out.len() - start) {
        return Err(DecodeError::DecompressedTooLarge { max: max_size });
    }
    if len > block.len().saturating_mul(MAX_RATIO) {
        return Err(corrupt("announced length out of proportion to the block"));
    }
    let at = out.len();
    out.resize(at + len, 0);
    work.zeroed(len);
    match dec.decompress(block, &mut out[at..]) {
        Ok(n) if n == len => Ok(()),
        Ok(_) => {
            out.truncate(at);
            Err(corrupt("block shorter than its announced length"))
        }
        Err(e) => {
            out.truncate(at);
            Err(corrupt(e))
        }
    }
}

pub(super) fn decompress(
    input: &[u8],
    max_size: usize,
    out: &mut Vec<u8>,
    work: &mut super::Work,
) -> Result<(), DecodeError> {
    let start = out.len();
    let mut dec = Decoder::new();
    if !input.starts_with(&XERIAL_MAGIC) {
        return decompress_block(&mut dec, input, start, max_size, out, work);
    }
    if input.len() < XERIAL_HEADER_LEN {
        return Err(corrupt("truncated xerial header"));
    }
    let mut rest = &input[XERIAL_HEADER_LEN..];
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err(corrupt("truncated xerial block length"));
        }
        let len = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        rest = &rest[4..];
        if len < 0 || len as usize > rest.len() {
            return Err(corrupt("xerial block length out of range"));
        }
        let (block, tail) = rest.split_at(len as usize);
        decompress_block(&mut dec, block, start, max_size, out, work)?;
        rest = tail;
    }
    Ok(())
}
