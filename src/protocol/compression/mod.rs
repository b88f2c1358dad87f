//! The compression codecs Kafka applies to record batches and legacy wrapper messages.
//!
//! Decompression is always bounded: every codec stops, with
//! [`DecodeError::DecompressedTooLarge`], as soon as its output would pass the caller's
//! `max_size`, so a small "bomb" never inflates into memory. Codecs disabled at build time
//! (features `gzip`, `snappy`, `lz4`, `zstd`) are typed errors, never panics.

use bytes::Bytes;

use super::error::{DecodeError, EncodeError};

#[cfg(feature = "gzip")]
mod gzip;
#[cfg(feature = "lz4")]
mod lz4;
#[cfg(feature = "snappy")]
mod snappy;
#[cfg(feature = "zstd")]
mod zstd;

/// A compression codec, as the low three attribute bits of a batch or message name it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Compression {
    /// No compression (code 0).
    #[default]
    None,
    /// gzip (code 1).
    Gzip,
    /// Snappy (code 2), raw or in the xerial framing.
    Snappy,
    /// LZ4 frames (code 3), KIP-57.
    Lz4,
    /// Zstandard (code 4), record batch v2 only.
    Zstd,
}

impl Compression {
    /// The attribute code (0..=4).
    #[inline]
    pub fn code(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The codec an attribute code names. Unknown codes are
    /// [`DecodeError::UnsupportedCompression`].
    #[inline]
    pub fn from_code(code: u8) -> Result<Self, DecodeError> {
        Ok(match code {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            other => return Err(DecodeError::UnsupportedCompression(other)),
        })
    }

    /// The codec's name, as Kafka's `compression.type` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// Whether this build can compress and decompress with the codec.
    pub fn is_enabled(self) -> bool {
        match self {
            Compression::None => true,
            Compression::Gzip => cfg!(feature = "gzip"),
            Compression::Snappy => cfg!(feature = "snappy"),
            Compression::Lz4 => cfg!(feature = "lz4"),
            Compression::Zstd => cfg!(feature = "zstd"),
        }
    }
}

/// How Snappy output is framed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum SnappyFraming {
    /// The xerial `SnappyOutputStream` framing the Java client writes: a 16-byte header
    /// (`\x82SNAPPY\0`, version, compatible version) then length-prefixed raw blocks.
    #[default]
    Xerial,
    /// One raw Snappy block, as librdkafka writes.
    Raw,
}

/// Knobs for [`compress`]. The defaults match what the Java client writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CompressOptions {
    /// The codec's level; `None` is the codec's default (gzip 6, zstd 3). LZ4 and Snappy
    /// have no levels and ignore it.
    pub level: Option<i32>,
    /// The Snappy framing to write (reading detects it).
    pub snappy_framing: SnappyFraming,
    /// Write the LZ4 frame header checksum the way Kafka before 0.10 did, over the magic
    /// number too (KAFKA-3160). Message format v0 requires it; reading accepts both.
    pub lz4_legacy_header_checksum: bool,
}

/// Compresses `input` with `codec`, appending to `out`. `Compression::None` copies.
pub fn compress(
    codec: Compression,
    input: &[u8],
    out: &mut Vec<u8>,
    options: &CompressOptions,
) -> Result<(), EncodeError> {
    let _ = options;
    match codec {
        Compression::None => {
            out.extend_from_slice(input);
            Ok(())
        }
        #[cfg(feature = "gzip")]
        Compression::Gzip => gzip::compress(input, out, options.level),
        #[cfg(feature = "snappy")]
        Compression::Snappy => snappy::compress(input, out, options.snappy_framing),
        #[cfg(feature = "lz4")]
        Compression::Lz4 => {
            lz4::compress(input, out, options.lz4_legacy_header_checksum);
            Ok(())
        }
        #[cfg(feature = "zstd")]
        Compression::Zstd => zstd::compress(input, out, options.level),
        #[allow(unreachable_patterns)]
        disabled => Err(EncodeError::CompressionDisabled(disabled.name())),
    }
}

/// Decompresses `input`, appending to `out`; fails with
/// [`DecodeError::DecompressedTooLarge`] once more than `max_size` bytes would be appended
/// (at most about `max_size` plus one codec block is ever reserved).
pub fn decompress_into(
    codec: Compression,
    input: &[u8],
    max_size: usize,
    out: &mut Vec<u8>,
) -> Result<(), DecodeError> {
    let _ = (max_size, &out);
    match codec {
        Compression::None => {
            if input.len() > max_size {
                return Err(DecodeError::DecompressedTooLarge { max: max_size });
            }
            out.extend_from_slice(input);
            Ok(())
        }
        #[cfg(feature = "gzip")]
        Compression::Gzip => gzip::decompress(input, max_size, out),
        #[cfg(feature = "snappy")]
        Compression::Snappy => snappy::decompress(input, max_size, out),
        #[cfg(feature = "lz4")]
        Compression::Lz4 => lz4::decompress(input, max_size, out),
        #[cfg(feature = "zstd")]
        Compression::Zstd => zstd::decompress(input, max_size, out),
        #[allow(unreachable_patterns)]
        disabled => Err(DecodeError::UnsupportedCompression(disabled.code())),
    }
}

/// Decompresses `input` into new bytes of at most `max_size`.
pub fn decompress(codec: Compression, input: &[u8], max_size: usize) -> Result<Bytes, DecodeError> {
    let mut out = Vec::new();
    decompress_into(codec, input, max_size, &mut out)?;
    Ok(Bytes::from(out))
}

/// How much a streaming decoder asks for per read.
#[cfg(any(feature = "gzip", feature = "zstd"))]
const READ_CHUNK: usize = 32 * 1024;

/// Drains a streaming decoder into `out`, never holding more than `max_size` (plus one
/// chunk of slack) of output.
#[cfg(any(feature = "gzip", feature = "zstd"))]
fn read_bounded(
    reader: &mut dyn std::io::Read,
    max_size: usize,
    out: &mut Vec<u8>,
    codec: &'static str,
) -> Result<(), DecodeError> {
    let start = out.len();
    loop {
        let produced = out.len() - start;
        // Ask for one byte more than allowed, so that reaching the limit exactly is fine
        // but passing it is seen.
        let room = (max_size - produced).saturating_add(1).min(READ_CHUNK);
        let at = out.len();
        out.resize(at + room, 0);
        let n = loop {
            match reader.read(&mut out[at..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    out.truncate(at);
                    return Err(DecodeError::Decompress {
                        codec,
                        reason: e.to_string(),
                    });
                }
            }
        };
        out.truncate(at + n);
        if n == 0 {
            return Ok(());
        }
        if out.len() - start > max_size {
            out.truncate(start + max_size);
            return Err(DecodeError::DecompressedTooLarge { max: max_size });
        }
    }
}

#[cfg(test)]
mod tests;
