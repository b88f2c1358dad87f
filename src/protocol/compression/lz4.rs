//! LZ4 frames as Kafka uses them (KIP-57), with block compression from lz4_flex.
//!
//! The frame is parsed and written here rather than by lz4_flex's frame module because of
//! a Kafka quirk: before 0.10 Kafka computed the frame descriptor's header checksum over
//! the 4-byte magic number as well as the descriptor (KAFKA-3160). Message format v0 still
//! requires that broken checksum on write; on read both forms are accepted.
//!
//! Written frames have independent 64 KiB blocks and no block or content checksums, as the
//! Java client writes them. Read frames may use any block size, linked blocks and either
//! checksum.

use lz4_flex::block::{
    compress_into, decompress_into_with_dict, get_maximum_output_size, DecompressError,
};

use crate::protocol::error::DecodeError;

pub(super) const MAGIC: [u8; 4] = 0x184D_2204u32.to_le_bytes();
/// FLG: version 01, independent blocks, no checksums, no content size, no dictionary.
const FLG_WRITTEN: u8 = 0b0110_0000;
/// BD: 64 KiB maximum block size.
const BD_WRITTEN: u8 = 4 << 4;
const BLOCK_WRITTEN: usize = 64 * 1024;
const UNCOMPRESSED_BIT: u32 = 0x8000_0000;
/// How far back a linked block may refer.
const WINDOW: usize = 64 * 1024;
/// The most a compressed block can decode to per byte of it: a match length grows by 255
/// per extension byte.
const MAX_RATIO: usize = 255;

/// The xxHash32 of `data` with `seed`, used by the LZ4 frame for its checksums.
pub(super) fn xxh32(data: &[u8], seed: u32) -> u32 {
    const P1: u32 = 0x9E37_79B1;
    const P2: u32 = 0x85EB_CA77;
    const P3: u32 = 0xC2B2_AE3D;
    const P4: u32 = 0x27D4_EB2F;
    const P5: u32 = 0x1656_67B1;
    #[inline]
    fn word(b: &[u8]) -> u32 {
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
    #[inline]
    fn round(acc: u32, lane: u32) -> u32 {
        acc.wrapping_add(lane.wrapping_mul(P2))
            .rotate_left(13)
            .wrapping_mul(P1)
    }
    let mut rest = data;
    let mut h = if data.len() >= 16 {
        let mut v = [
            seed.wrapping_add(P1).wrapping_add(P2),
            seed.wrapping_add(P2),
            seed,
            seed.wrapping_sub(P1),
        ];
        let mut stripes = rest.chunks_exact(16);
        for stripe in &mut stripes {
            for (i, acc) in v.iter_mut().enumerate() {
                *acc = round(*acc, word(&stripe[4 * i..]));
            }
        }
        rest = stripes.remainder();
        v[0].rotate_left(1)
            .wrapping_add(v[1].rotate_left(7))
            .wrapping_add(v[2].rotate_left(12))
            .wrapping_add(v[3].rotate_left(18))
    } else {
        seed.wrapping_add(P5)
    };
    h = h.wrapping_add(data.len() as u32);
    let mut words = rest.chunks_exact(4);
    for w in &mut words {
        h = h
            .wrapping_add(word(w).wrapping_mul(P3))
            .rotate_left(17)
            .wrapping_mul(P4);
    }
    for &b in words.remainder() {
        h = h
            .wrapping_add((b as u32).wrapping_mul(P5))
            .rotate_left(11)
            .wrapping_mul(P1);
    }
    h ^= h >> 15;
    h = h.wrapping_mul(P2);
    h ^= h >> 13;
    h = h.wrapping_mul(P3);
    h ^= h >> 16;
    h
}

/// The header checksum byte over `bytes` (the descriptor, or magic plus descriptor for the
/// pre-0.10 form).
pub(super) fn header_checksum(bytes: &[u8]) -> u8 {
    (xxh32(bytes, 0) >> 8) as u8
}

/// Appends one LZ4 frame holding `input` to `out`.
pub(super) fn compress(input: &[u8], out: &mut Vec<u8>, legacy_header_checksum: bool) {
    let start = out.len();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[FLG_WRITTEN, BD_WRITTEN]);
    let hc = if legacy_header_checksum {
        header_checksum(&out[start..start + 6])
    } else {
        header_checksum(&out[start + 4..start + 6])
    };
    out.push(hc);
    for block in input.chunks(BLOCK_WRITTEN) {
        let len_at = out.len();
        out.extend_from_slice(&[0; 4]);
        let data_at = out.len();
        out.resize(data_at + get_maximum_output_size(block.len()), 0);
        let size = match compress_into(block, &mut out[data_at..]) {
            // Blocks that do not shrink are stored as they are, as the frame format asks.
            Ok(n) if n < block.len() => n as u32,
            _ => {
                out.truncate(data_at);
                out.extend_from_slice(block);
                block.len() as u32 | UNCOMPRESSED_BIT
            }
        };
        out.truncate(data_at + (size & !UNCOMPRESSED_BIT) as usize);
        out[len_at..data_at].copy_from_slice(&size.to_le_bytes());
    }
    out.extend_from_slice(&0u32.to_le_bytes());
}

fn corrupt(reason: &str) -> DecodeError {
    DecodeError::Decompress {
        codec: "lz4",
        reason: reason.to_owned(),
    }
}

/// A cursor over the compressed input.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(corrupt(what));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u32_le(&mut self, what: &str) -> Result<u32, DecodeError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Decompresses one or more concatenated LZ4 frames, appending at most `max_size` bytes.
pub(super) fn decompress(
    input: &[u8],
    max_size: usize,
    out: &mut Vec<u8>,
    work: &mut super::Work,
) -> Result<(), DecodeError> {
    let start = out.len();
    let mut sink = Sink {
        out,
        start,
        filled: start,
        max_size,
    };
    let mut input = Input(input);
    loop {
        decompress_frame(&mut input, &mut sink, work)?;
        if input.0.is_empty() {
            return Ok(());
        }
    }
}

/// The output: `out` from `start` on, at most `max_size` bytes. Blocks decode into zeroed
/// room past `filled` that is reused from block to block, so that each byte is zeroed
/// once: zeroing a block's whole room for each block made a frame of 4 MiB blocks that
/// decode to one byte each cost megabytes of work per input byte. Dropping it cuts `out`
/// back to what was decoded.
struct Sink<'a> {
    out: &'a mut Vec<u8>,
    start: usize,
    filled: usize,
    max_size: usize,
}

impl Sink<'_> {
    /// How many more bytes may be decoded.
    fn allowed(&self) -> usize {
        self.max_size - (self.filled - self.start)
    }
}

impl Drop for Sink<'_> {
    fn drop(&mut self) {
        self.out.truncate(self.filled);
    }
}

fn decompress_frame(
    input: &mut Input<'_>,
    sink: &mut Sink<'_>,
    work: &mut super::Work,
) -> Result<(), DecodeError> {
    let max_size = sink.max_size;
    let frame = input.0;
    if input.take(4, "truncated frame magic")? != MAGIC {
        return Err(corrupt("bad frame magic"));
    }
    let desc = input.take(2, "truncated frame descriptor")?;
    let (flg, bd) = (desc[0], desc[1]);
    if flg >> 6 != 0b01 {
        return Err(corrupt("unsupported frame version"));
    }
    if flg & 0b10 != 0 || bd & 0b1000_1111 != 0 {
        return Err(corrupt("reserved descriptor bits set"));
    }
    let independent = flg & 0b0010_0000 != 0;
    let block_checksum = flg & 0b0001_0000 != 0;
    let has_content_size = flg & 0b0000_1000 != 0;
    let content_checksum = flg & 0b0000_0100 != 0;
    if flg & 0b1 != 0 {
        return Err(corrupt("frames that need a dictionary are not supported"));
    }
    let block_max = match bd >> 4 {
        4 => 64 << 10,
        5 => 256 << 10,
        6 => 1 << 20,
        7 => 4 << 20,
        _ => return Err(corrupt("invalid block maximum size")),
    };
    if has_content_size {
        input.take(8, "truncated content size")?;
    }
    let desc_len = 6 + if has_content_size { 8 } else { 0 };
    let hc = input.take(1, "truncated header checksum")?[0];
    // Kafka before 0.10 hashed the magic number as well (KAFKA-3160): accept both.
    if hc != header_checksum(&frame[4..desc_len]) && hc != header_checksum(&frame[..desc_len]) {
        return Err(corrupt("header checksum mismatch"));
    }
    let frame_start = sink.filled;
    loop {
        let word = input.u32_le("truncated block size")?;
        if word == 0 {
            break;
        }
        let size = (word & !UNCOMPRESSED_BIT) as usize;
        if size > block_max {
            return Err(corrupt("block larger than the frame's maximum"));
        }
        let data = input.take(size, "truncated block")?;
        if block_checksum && input.u32_le("truncated block checksum")? != xxh32(data, 0) {
            return Err(corrupt("block checksum mismatch"));
        }
        let allowed = sink.allowed();
        let at = sink.filled;
        if word & UNCOMPRESSED_BIT != 0 {
            if size > allowed {
                return Err(DecodeError::DecompressedTooLarge { max: max_size });
            }
            // Into the zeroed room first, appending what does not fit.
            let in_room = (sink.out.len() - at).min(size);
            sink.out[at..at + in_room].copy_from_slice(&data[..in_room]);
            sink.out.extend_from_slice(&data[in_room..]);
            sink.filled = at + size;
            continue;
        }
        // Decode into room no larger than the block maximum, nor than one byte past what
        // is still allowed (running out of that room means the limit was passed), nor than
        // the block can decode to.
        let room = block_max
            .min(allowed.saturating_add(1))
            .min(size.saturating_mul(MAX_RATIO));
        if sink.out.len() < at + room {
            work.zeroed(at + room - sink.out.len());
            sink.out.resize(at + room, 0);
        }
        let (before, after) = sink.out.split_at_mut(at);
        let window = &mut after[..room];
        let dict = if independent {
            &[][..]
        } else {
            &before[frame_start.max(at.saturating_sub(WINDOW))..]
        };
        match decompress_into_with_dict(data, window, dict) {
            Ok(n) if n > allowed => {
                return Err(DecodeError::DecompressedTooLarge { max: max_size });
            }
            Ok(n) => sink.filled = at + n,
            Err(DecompressError::OutputTooSmall { .. }) if room <= allowed => {
                return Err(corrupt("block decompresses past the frame's maximum"));
            }
            Err(DecompressError::OutputTooSmall { .. }) => {
                return Err(DecodeError::DecompressedTooLarge { max: max_size });
            }
            Err(e) => {
                return Err(DecodeError::Decompress {
                    codec: "lz4",
                    reason: e.to_string(),
                });
            }
        }
    }
    if content_checksum
        && input.u32_le("truncated content checksum")?
            != xxh32(&sink.out[frame_start..sink.filled], 0)
    {
        return Err(corrupt("content checksum mismatch"));
    }
    Ok(())
}
