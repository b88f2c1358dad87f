//! Request and response headers, and whole-frame helpers for both sides of a connection.
//!
//! Which header version goes with a message depends on the API and its version (flexible
//! versions use the header versions with tagged fields; ApiVersions responses always use
//! response header v0 so that a client can read the error of a version the broker does
//! not support). [`ApiKey`] knows the rule; these functions apply it.

use bytes::Bytes;

use super::error::{DecodeError, EncodeError};
use super::frame::write_frame;
use super::messages::{ApiKey, Request, RequestBody, RequestHeader, ResponseBody, ResponseHeader};
use super::primitives::{expect_end, Decode, Encode};

/// Appends one whole request frame (size, header, body) to `buf`.
///
/// `client_id` is sent as given (`None` is a null client id).
pub fn encode_request<R: Request>(
    buf: &mut Vec<u8>,
    version: i16,
    correlation_id: i32,
    client_id: Option<&str>,
    request: &R,
) -> Result<(), EncodeError> {
    let header = RequestHeader {
        request_api_key: R::API_KEY as i16,
        request_api_version: version,
        correlation_id,
        client_id: client_id.map(str::to_owned),
        ..Default::default()
    };
    let header_version = R::API_KEY.request_header_version(version);
    write_frame(buf, |buf| {
        header.encode(buf, header_version)?;
        request.encode(buf, version)
    })
}

/// Reads the correlation id at the front of a response frame without consuming it, so a
/// connection can route the frame to the request it answers before decoding it.
pub fn peek_correlation_id(frame: &[u8]) -> Result<i32, DecodeError> {
    match frame {
        [a, b, c, d, ..] => Ok(i32::from_be_bytes([*a, *b, *c, *d])),
        _ => Err(DecodeError::UnexpectedEof {
            needed: 4 - frame.len(),
        }),
    }
}

/// Decodes a response frame (without its size prefix) to `R`, sent in `version`: returns
/// the header and the body. All of the frame must be used.
///
/// # Memory
///
/// What a decoded response holds is bounded by its size on the wire: every array element
/// holds at most [`MAX_DECODED_BYTES_PER_WIRE_BYTE`] (40) bytes per byte it takes in the
/// frame (a generated test checks every message and version), strings and unknown tagged
/// fields hold their own bytes once, and `bytes`/`records` fields share the frame. The worst
/// case is a list of near-empty structs: ListGroups v3 groups with empty names, 3 bytes on
/// the wire for a 112-byte struct (measured: 37 bytes held per wire byte). So a frame of
/// `max_frame_size` bytes (100 MiB by default) holds at most about 3.7 GiB once decoded, plus
/// the frame itself while `bytes` fields share it; vectors longer than 1024 elements may
/// briefly need up to twice their final size while they grow. Real responses are far from
/// the worst case: a Metadata partition holds 6 bytes per wire byte decoded, 4 in the
/// [`Cluster`](crate::cluster::Cluster) cache (measured). A tagged-field section may keep at most
/// [`MAX_UNKNOWN_TAGGED_FIELDS`] unknown fields; more is a [`DecodeError::Malformed`].
///
/// [`MAX_DECODED_BYTES_PER_WIRE_BYTE`]: super::primitives::MAX_DECODED_BYTES_PER_WIRE_BYTE
/// [`MAX_UNKNOWN_TAGGED_FIELDS`]: super::primitives::MAX_UNKNOWN_TAGGED_FIELDS
pub fn decode_response<R: Request>(
    mut frame: Bytes,
    version: i16,
) -> Result<(ResponseHeader, R::Response), DecodeError> {
    let header = ResponseHeader::decode(&mut frame, R::API_KEY.response_header_version(version))?;
    let body = R::Response::decode(&mut frame, version)?;
    expect_end(&frame)?;
    Ok((header, body))
}

/// Server side: decodes a whole request frame (without its size prefix) whatever its API.
pub fn decode_request(mut frame: Bytes) -> Result<(RequestHeader, RequestBody), DecodeError> {
    let (api_key, version) = match &frame[..] {
        [a, b, c, d, ..] => (i16::from_be_bytes([*a, *b]), i16::from_be_bytes([*c, *d])),
        _ => {
            return Err(DecodeError::UnexpectedEof {
                needed: 4 - frame.len(),
            })
        }
    };
    let key = ApiKey::from_i16(api_key).ok_or(DecodeError::UnknownApiKey(api_key))?;
    let header = RequestHeader::decode(&mut frame, key.request_header_version(version))?;
    let body = RequestBody::decode(key, version, &mut frame)?;
    expect_end(&frame)?;
    Ok((header, body))
}

/// Server side: appends one whole response frame (size, header, body) to `buf`.
pub fn encode_response(
    buf: &mut Vec<u8>,
    version: i16,
    correlation_id: i32,
    response: &ResponseBody,
) -> Result<(), EncodeError> {
    let header = ResponseHeader {
        correlation_id,
        ..Default::default()
    };
    let header_version = response.api_key().response_header_version(version);
    write_frame(buf, |buf| {
        header.encode(buf, header_version)?;
        response.encode(buf, version)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame::FrameDecoder;
    use crate::protocol::messages::{
        ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse,
    };

    fn one_frame(bytes: &[u8]) -> Bytes {
        let mut dec = FrameDecoder::new(1 << 20);
        dec.handle_data(bytes);
        let frame = dec.poll_frame().unwrap().unwrap();
        assert_eq!(dec.buffered(), 0);
        frame
    }

    #[test]
    fn metadata_v0_request_bytes_are_exact() {
        let mut buf = Vec::new();
        let req = MetadataRequest {
            topics: Some(vec![]),
            ..Default::default()
        };
        encode_request(&mut buf, 0, 7, Some("gr"), &req).unwrap();
        #[rustfmt::skip]
        let want = [
            0, 0, 0, 16,          // size
            0, 3, 0, 0,           // api key 3 (Metadata), version 0
            0, 0, 0, 7,           // correlation id
            0, 2, b'g', b'r',     // client id
            0, 0, 0, 0,           // topics: empty array
        ];
        assert_eq!(buf, want);
    }

    #[test]
    fn request_round_trips_through_the_server_side() {
        let mut buf = Vec::new();
        let req = ApiVersionsRequest {
            client_software_name: "grete".into(),
            client_software_version: "0.1.0".into(),
            ..Default::default()
        };
        encode_request(&mut buf, 3, 42, Some("client"), &req).unwrap();
        let (header, body) = decode_request(one_frame(&buf)).unwrap();
        assert_eq!(header.correlation_id, 42);
        assert_eq!(header.request_api_version, 3);
        assert_eq!(header.client_id.as_deref(), Some("client"));
        assert_eq!(body, RequestBody::ApiVersions(req));
    }

    #[test]
    fn api_versions_response_uses_header_v0_even_when_flexible() {
        let resp = ApiVersionsResponse {
            error_code: 35,
            ..Default::default()
        };
        let mut buf = Vec::new();
        encode_response(&mut buf, 3, 9, &ResponseBody::ApiVersions(resp.clone())).unwrap();
        // size, correlation id, then directly the error code: no tagged-field byte between.
        assert_eq!(&buf[4..10], &[0, 0, 0, 9, 0, 35]);
        let (header, body) = decode_response::<ApiVersionsRequest>(one_frame(&buf), 3).unwrap();
        assert_eq!(header.correlation_id, 9);
        assert_eq!(body, resp);
    }

    #[test]
    fn flexible_response_header_carries_tags() {
        let resp = MetadataResponse::default();
        let mut buf = Vec::new();
        encode_response(&mut buf, 12, 5, &ResponseBody::Metadata(resp.clone())).unwrap();
        // Response header v1: correlation id, then an empty tagged-field section.
        assert_eq!(&buf[4..9], &[0, 0, 0, 5, 0]);
        let (_, body) = decode_response::<MetadataRequest>(one_frame(&buf), 12).unwrap();
        assert_eq!(body, resp);
        assert_eq!(peek_correlation_id(&buf[4..]).unwrap(), 5);
    }

    #[test]
    fn trailing_bytes_and_unknown_keys_are_errors() {
        let mut buf = Vec::new();
        encode_response(
            &mut buf,
            0,
            1,
            &ResponseBody::Metadata(MetadataResponse::default()),
        )
        .unwrap();
        let mut frame = one_frame(&buf).to_vec();
        frame.push(0);
        assert_eq!(
            decode_response::<MetadataRequest>(Bytes::from(frame), 0).unwrap_err(),
            DecodeError::TrailingBytes(1)
        );
        let frame = Bytes::from_static(&[0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(
            decode_request(frame).unwrap_err(),
            DecodeError::UnknownApiKey(0x7f00)
        );
    }
}
