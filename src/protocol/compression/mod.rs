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

    /// Every codec, in attribute-code order.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The codec Kafka's `compression.type` calls `name` (the inverse of
    /// [`name`](Self::name)).
    pub fn from_name(name: &str) -> Option<Compression> {
        Compression::ALL.into_iter().find(|c| c.name() == name)
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
///
/// The work done is proportional to the input and the output, whatever the input: every
/// byte of scratch space is zeroed at most once, a block never reserves more room than its
/// compressed size can decode to, and per-unit costs of the codec libraries (resetting the
/// inflater for each gzip member) are charged against a budget of [`WORK_PER_BYTE`] times
/// the input and output, past which the input is refused as
/// [`DecodeError::Decompress`].
pub fn decompress_into(
    codec: Compression,
    input: &[u8],
    max_size: usize,
    out: &mut Vec<u8>,
) -> Result<(), DecodeError> {
    decompress_into_counting(codec, input, max_size, out).0
}

/// [`decompress_into`], also returning the bytes of scratch space it zeroed or reset (its
/// [`Work`]): what the regression tests and the fuzz targets check is proportional to the
/// input and the output. Not part of the stable API.
#[doc(hidden)]
pub fn decompress_into_counting(
    codec: Compression,
    input: &[u8],
    max_size: usize,
    out: &mut Vec<u8>,
) -> (Result<(), DecodeError>, u64) {
    let mut work = Work::new(input.len());
    let _ = (max_size, &out, &mut work);
    let result = match codec {
        Compression::None => {
            if input.len() > max_size {
                Err(DecodeError::DecompressedTooLarge { max: max_size })
            } else {
                out.extend_from_slice(input);
                Ok(())
            }
        }
        #[cfg(feature = "gzip")]
        Compression::Gzip => gzip::decompress(input, max_size, out, &mut work),
        #[cfg(feature = "snappy")]
        Compression::Snappy => snappy::decompress(input, max_size, out, &mut work),
        #[cfg(feature = "lz4")]
        Compression::Lz4 => lz4::decompress(input, max_size, out, &mut work),
        #[cfg(feature = "zstd")]
        Compression::Zstd => zstd::decompress(input, max_size, out, &mut work),
        #[allow(unreachable_patterns)]
        disabled => Err(DecodeError::UnsupportedCompression(disabled.code())),
    };
    (result, work.touched)
}

/// Decompresses `input` into new bytes of at most `max_size`.
pub fn decompress(codec: Compression, input: &[u8], max_size: usize) -> Result<Bytes, DecodeError> {
    let mut out = Vec::new();
    decompress_into(codec, input, max_size, &mut out)?;
    Ok(Bytes::from(out))
}

/// How many bytes of scratch work (zeroing, codec state resets) a decompression may spend
/// per byte of input plus output before it is refused. Only the per-member reset of gzip
/// can come near it: each costs the inflater's 32 KiB window, so members must average at
/// least 512 bytes of input and output.
pub const WORK_PER_BYTE: u64 = 64;

/// The scratch work a decompression has done, in bytes zeroed or reset besides the output
/// it keeps.
#[derive(Debug)]
struct Work {
    input_len: u64,
    touched: u64,
}

impl Work {
    fn new(input_len: usize) -> Self {
        Work {
            input_len: input_len as u64,
            touched: 0,
        }
    }

    /// Records `bytes` of buffer zeroed by this module.
    #[cfg(any(
        feature = "gzip",
        feature = "snappy",
        feature = "lz4",
        feature = "zstd"
    ))]
    fn zeroed(&mut self, bytes: usize) {
        self.touched = self.touched.saturating_add(bytes as u64);
    }

    /// Charges a codec library's fixed cost of `bytes`, refusing it if the work would pass
    /// [`WORK_PER_BYTE`] times the input plus the `produced` output.
    #[cfg(feature = "gzip")]
    fn charge(
        &mut self,
        bytes: usize,
        produced: usize,
        codec: &'static str,
        what: &str,
    ) -> Result<(), DecodeError> {
        let touched = self.touched.saturating_add(bytes as u64);
        let budget = WORK_PER_BYTE.saturating_mul(self.input_len.saturating_add(produced as u64));
        if touched > budget {
            return Err(DecodeError::Decompress {
                codec,
                reason: format!("{what}: work out of proportion to the input and output"),
            });
        }
        self.touched = touched;
        Ok(())
    }
}

/// How much a streaming decoder is offered per read.
#[cfg(any(feature = "gzip", feature = "zstd"))]
const READ_CHUNK: usize = 32 * 1024;

/// The output of a streaming decoder: `out` from `start` on, holding at most `max_size`
/// bytes. Room is zeroed a chunk at a time and reused until filled, so each byte is zeroed
/// once whatever the decoder returns per read (many gzip members or zstd frames of one
/// byte each once cost a fresh 32 KiB chunk per byte). Dropping it cuts `out` back to what
/// was decoded.
#[cfg(any(feature = "gzip", feature = "zstd"))]
struct Sink<'a> {
    out: &'a mut Vec<u8>,
    start: usize,
    /// The end of the decoded bytes; `out` beyond it is zeroed room.
    filled: usize,
    max_size: usize,
}

#[cfg(any(feature = "gzip", feature = "zstd"))]
impl<'a> Sink<'a> {
    fn new(out: &'a mut Vec<u8>, max_size: usize) -> Self {
        let start = out.len();
        Sink {
            out,
            start,
            filled: start,
            max_size,
        }
    }

    /// How many bytes have been decoded.
    fn produced(&self) -> usize {
        self.filled - self.start
    }

    /// Reads `reader` to its end into the sink.
    fn drain(
        &mut self,
        reader: &mut dyn std::io::Read,
        codec: &'static str,
        work: &mut Work,
    ) -> Result<(), DecodeError> {
        loop {
            if self.filled == self.out.len() {
                // Room for one byte more than allowed, so that reaching the limit exactly
                // is fine but passing it is seen.
                let room = (self.max_size - self.produced())
                    .saturating_add(1)
                    .min(READ_CHUNK);
                self.out.resize(self.filled + room, 0);
                work.zeroed(room);
            }
            let n = loop {
                match reader.read(&mut self.out[self.filled..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(DecodeError::Decompress {
                            codec,
                            reason: e.to_string(),
                        })
                    }
                }
            };
            if n == 0 {
                return Ok(());
            }
            self.filled += n;
            if self.produced() > self.max_size {
                self.filled = self.start + self.max_size;
                return Err(DecodeError::DecompressedTooLarge { max: self.max_size });
            }
        }
    }
}

#[cfg(any(feature = "gzip", feature = "zstd"))]
impl Drop for Sink<'_> {
    fn drop(&mut self) {
        self.out.truncate(self.filled);
    }
}

#[cfg(test)]
mod tests;
