//! Errors raised while decoding or encoding protocol bytes.

/// Why bytes could not be decoded. Everything here is caused by the peer (or by a caller
/// that handed in bytes that are not what it claims): the codec never panics on input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before the value did.
    #[error("input ended early: needed {needed} more bytes")]
    UnexpectedEof {
        /// How many more bytes the value needed (a lower bound).
        needed: usize,
    },
    /// A length prefix is negative (and not the null marker) or larger than what is left.
    #[error("invalid length {0}")]
    InvalidLength(i64),
    /// A string is not valid UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// A varint ran over its maximum width.
    #[error("varint is longer than {0} bytes")]
    VarintTooLong(usize),
    /// A null value where the version does not allow one.
    #[error("null value in non-nullable field {0}")]
    UnexpectedNull(&'static str),
    /// The API version is not one this message defines.
    #[error("{message} has no version {version}")]
    UnsupportedVersion {
        /// The message name.
        message: &'static str,
        /// The version asked for.
        version: i16,
    },
    /// An API key grete does not know.
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    /// A frame's size prefix exceeds the configured maximum. When the prefix reads as
    /// printable text (an HTTP server's `HTTP`) or as the start of a TLS record, the
    /// message says that the peer does not speak the Kafka protocol and what it looks like.
    #[error("frame of {size} bytes exceeds the maximum of {max}{}", not_kafka_hint(*size))]
    FrameTooLarge {
        /// The size the peer announced.
        size: i64,
        /// The configured limit.
        max: usize,
    },
    /// Bytes were left over after a value that should have used all of them.
    #[error("{0} trailing bytes")]
    TrailingBytes(usize),
    /// A checksum did not match.
    #[error("checksum mismatch: computed {computed:#010x}, stored {stored:#010x}")]
    CrcMismatch {
        /// The checksum of the bytes received.
        computed: u32,
        /// The checksum the peer sent.
        stored: u32,
    },
    /// A record format (magic byte) grete does not know.
    #[error("unknown record format magic {0}")]
    UnknownMagic(i8),
    /// A compression codec id grete does not know, or that is disabled at build time.
    #[error("unsupported compression codec {0}")]
    UnsupportedCompression(u8),
    /// Compressed data is corrupt.
    #[error("corrupt {codec} data: {reason}")]
    Decompress {
        /// The codec's name.
        codec: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// Decompressed data exceeds the configured maximum.
    #[error("decompressed size exceeds the maximum of {max} bytes")]
    DecompressedTooLarge {
        /// The configured limit.
        max: usize,
    },
    /// Any other structural violation.
    #[error("malformed {0}")]
    Malformed(&'static str),
}

/// What a too-large size prefix says about the peer, if it looks like something other than
/// Kafka: four printable ASCII characters are text (an HTTP or other line protocol), and
/// `15 03 0x` or `16 03 0x` starts a TLS alert or handshake record.
fn not_kafka_hint(size: i64) -> String {
    let Ok(size) = u32::try_from(size) else {
        return String::new();
    };
    let prefix = size.to_be_bytes();
    if prefix.iter().all(|b| (0x20..=0x7e).contains(b)) {
        let text: String = prefix.iter().map(|&b| b as char).collect();
        format!(
            ": the peer does not speak the Kafka protocol; its first bytes read {text:?} \
             (text, such as an HTTP server's answer)"
        )
    } else if matches!(prefix, [0x15 | 0x16, 0x03, 0x00..=0x04, _]) {
        ": the peer does not speak the Kafka protocol in plaintext; its first bytes are a TLS \
         record (it expects TLS)"
            .to_owned()
    } else {
        String::new()
    }
}

/// Why a value could not be encoded. These are caused by the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A field holds a non-default value that the chosen version cannot carry: encoding it
    /// would silently drop it.
    #[error("{message}.{field} cannot be sent in version {version}")]
    UnsupportedField {
        /// The message or struct name.
        message: &'static str,
        /// The field name.
        field: &'static str,
        /// The version asked for.
        version: i16,
    },
    /// A null value in a field the chosen version does not allow to be null.
    #[error("{message}.{field} cannot be null in version {version}")]
    NullNotAllowed {
        /// The message or struct name.
        message: &'static str,
        /// The field name.
        field: &'static str,
        /// The version asked for.
        version: i16,
    },
    /// The API version is not one this message defines.
    #[error("{message} has no version {version}")]
    UnsupportedVersion {
        /// The message name.
        message: &'static str,
        /// The version asked for.
        version: i16,
    },
    /// A string, byte array, array or frame is longer than its length prefix can say.
    #[error("{0} is too long to encode")]
    TooLong(&'static str),
    /// A compression codec that is disabled at build time.
    #[error("compression codec {0} is not enabled in this build")]
    CompressionDisabled(&'static str),
    /// A value the format cannot express as given, such as record offsets that do not
    /// increase within a batch.
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// The compressor failed.
    #[error("{codec} compression failed: {reason}")]
    Compress {
        /// The codec's name.
        codec: &'static str,
        /// What went wrong.
        reason: String,
    },
}
