//! Length-prefixed framing: every Kafka request and response is an `int32` size followed
//! by that many bytes.
//!
//! [`FrameDecoder`] accepts bytes in whatever pieces the socket delivers them (a frame
//! split across many reads, or many frames in one read) and hands out whole frames as
//! zero-copy [`Bytes`]. It enforces a maximum frame size before buffering a frame's body,
//! so a peer cannot make it hold more than `max_frame_size` plus one read.

use bytes::{Buf, Bytes, BytesMut};

use super::error::{DecodeError, EncodeError};

/// The default largest frame accepted: 100 MiB, Kafka's default `socket.request.max.bytes`.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 100 * 1024 * 1024;

/// Splits a byte stream into frames.
///
/// ```
/// use grete::protocol::frame::FrameDecoder;
/// let mut frames = FrameDecoder::new(1024);
/// frames.handle_data(&[0, 0, 0, 3, b'a']);
/// assert_eq!(frames.poll_frame().unwrap(), None); // needs more
/// frames.handle_data(&[b'b', b'c', 0, 0]);
/// assert_eq!(frames.poll_frame().unwrap().as_deref(), Some(&b"abc"[..]));
/// assert_eq!(frames.poll_frame().unwrap(), None);
/// ```
#[derive(Debug)]
pub struct FrameDecoder {
    max_frame_size: usize,
    buf: BytesMut,
    /// Set once the decoder has seen an invalid size: the stream cannot be resynchronised.
    failed: Option<DecodeError>,
}

impl FrameDecoder {
    /// A decoder that refuses frames larger than `max_frame_size` bytes (without the prefix).
    pub fn new(max_frame_size: usize) -> Self {
        FrameDecoder {
            max_frame_size,
            buf: BytesMut::new(),
            failed: None,
        }
    }

    /// The configured maximum frame size.
    pub fn max_frame_size(&self) -> usize {
        self.max_frame_size
    }

    /// Feeds bytes received from the peer.
    pub fn handle_data(&mut self, data: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(data);
        }
    }

    /// How many received bytes are buffered and not yet handed out as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Takes the next whole frame (without its size prefix), `Ok(None)` when more bytes are
    /// needed. An invalid size is an error, and stays one: after it the stream is not
    /// trusted again and the connection should be closed.
    pub fn poll_frame(&mut self) -> Result<Option<Bytes>, DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let size = i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        if size < 0 {
            return Err(self.fail(DecodeError::InvalidLength(size as i64)));
        }
        let size = size as usize;
        if size > self.max_frame_size {
            return Err(self.fail(DecodeError::FrameTooLarge {
                size: size as i64,
                max: self.max_frame_size,
            }));
        }
        if self.buf.len() - 4 < size {
            return Ok(None);
        }
        self.buf.advance(4);
        Ok(Some(self.buf.split_to(size).freeze()))
    }

    fn fail(&mut self, e: DecodeError) -> DecodeError {
        self.buf = BytesMut::new();
        self.failed = Some(e.clone());
        e
    }
}

/// Writes one frame: reserves the size prefix, lets `body` append the frame's content to
/// `buf`, then fills in the size. `buf` may already hold earlier frames (pipelining).
pub fn write_frame(
    buf: &mut Vec<u8>,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let start = buf.len();
    buf.extend_from_slice(&[0; 4]);
    if let Err(e) = body(buf) {
        buf.truncate(start);
        return Err(e);
    }
    let size = buf.len() - start - 4;
    if size > i32::MAX as usize {
        buf.truncate(start);
        return Err(EncodeError::TooLong("frame"));
    }
    buf[start..start + 4].copy_from_slice(&(size as i32).to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    fn frames_of(bodies: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for b in bodies {
            write_frame(&mut out, |buf| {
                buf.extend_from_slice(b);
                Ok(())
            })
            .unwrap();
        }
        out
    }

    quickcheck! {
        /// Whatever the chunking, the same frames come out in the same order.
        fn any_chunking_yields_the_same_frames(bodies: Vec<Vec<u8>>, cuts: Vec<u8>) -> bool {
            let stream = frames_of(&bodies);
            let mut dec = FrameDecoder::new(1 << 20);
            let mut out = Vec::new();
            let mut rest = &stream[..];
            let mut cuts = cuts.into_iter().cycle();
            while !rest.is_empty() {
                let n = (cuts.next().unwrap_or(7) as usize % 9).min(rest.len()).max(1);
                dec.handle_data(&rest[..n]);
                rest = &rest[n..];
                while let Some(f) = dec.poll_frame().unwrap() {
                    out.push(f.to_vec());
                }
            }
            out == bodies && dec.buffered() == 0
        }
    }

    #[test]
    fn many_frames_in_one_read() {
        let stream = frames_of(&[b"one".to_vec(), vec![], b"three".to_vec()]);
        let mut dec = FrameDecoder::new(16);
        dec.handle_data(&stream);
        assert_eq!(dec.poll_frame().unwrap().as_deref(), Some(&b"one"[..]));
        assert_eq!(dec.poll_frame().unwrap().as_deref(), Some(&b""[..]));
        assert_eq!(dec.poll_frame().unwrap().as_deref(), Some(&b"three"[..]));
        assert_eq!(dec.poll_frame().unwrap(), None);
    }

    #[test]
    fn oversized_frame_is_refused_before_its_body_arrives() {
        let mut dec = FrameDecoder::new(10);
        dec.handle_data(&[0, 0, 0, 11]);
        assert_eq!(
            dec.poll_frame(),
            Err(DecodeError::FrameTooLarge { size: 11, max: 10 })
        );
        // The stream stays failed and buffers nothing more.
        dec.handle_data(&[0; 100]);
        assert_eq!(dec.buffered(), 0);
        assert!(dec.poll_frame().is_err());
    }

    #[test]
    fn a_non_kafka_peer_is_named_in_the_error() {
        // An HTTP server's answer: "HTTP" read as a size is 1,213,486,160 bytes.
        let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
        dec.handle_data(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        let err = dec.poll_frame().unwrap_err();
        assert_eq!(
            err,
            DecodeError::FrameTooLarge {
                size: 1_213_486_160,
                max: DEFAULT_MAX_FRAME_SIZE
            }
        );
        assert_eq!(
            err.to_string(),
            "frame of 1213486160 bytes exceeds the maximum of 104857600: the peer does not \
             speak the Kafka protocol; its first bytes read \"HTTP\" (text, such as an HTTP \
             server's answer)"
        );
        // A TLS server's alert to a plaintext client.
        let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
        dec.handle_data(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46]);
        assert_eq!(
            dec.poll_frame().unwrap_err().to_string(),
            "frame of 352518912 bytes exceeds the maximum of 104857600: the peer does not \
             speak the Kafka protocol in plaintext; its first bytes are a TLS record (it \
             expects TLS)"
        );
        // A merely large frame says nothing of the sort.
        let mut dec = FrameDecoder::new(10);
        dec.handle_data(&[0, 0, 0x10, 0]);
        assert_eq!(
            dec.poll_frame().unwrap_err().to_string(),
            "frame of 4096 bytes exceeds the maximum of 10"
        );
    }

    #[test]
    fn negative_size_is_an_error() {
        let mut dec = FrameDecoder::new(10);
        dec.handle_data(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(dec.poll_frame(), Err(DecodeError::InvalidLength(-1)));
    }

    #[test]
    fn failed_body_leaves_the_buffer_as_it_was() {
        let mut buf = b"prev".to_vec();
        let r = write_frame(&mut buf, |b| {
            b.extend_from_slice(b"partial");
            Err(EncodeError::TooLong("x"))
        });
        assert!(r.is_err());
        assert_eq!(buf, b"prev");
    }
}
