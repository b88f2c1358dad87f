//! Checks for the generated message codecs, through the `RequestBody` / `ResponseBody`
//! dispatch and the request and response headers.
//!
//! Input: byte 0 chooses an API (one of [`ApiKey::ALL`]) or, one past them, header mode;
//! byte 1 the version (up to one past the highest defined, to reach the version check);
//! the rest is the message. In header mode byte 1 chooses the header version and the rest
//! is a header followed by a body: requests take the body's API and version from their
//! header; responses from bytes 2 and 3.
//!
//! Whatever decodes must re-encode in the same version, decode again to an equal value
//! that consumes exactly the re-encoded bytes, and re-encode to the same bytes.

use std::fmt::Debug;

use bytes::Bytes;
use grete::protocol::messages::{ApiKey, RequestBody, RequestHeader, ResponseBody, ResponseHeader};
use grete::protocol::{Decode, DecodeError, Encode, EncodeError};

use crate::take_le;

/// Which side's messages a target decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Requests (what a broker reads; grete's own encoder output).
    Request,
    /// Responses (what grete reads from brokers).
    Response,
}

/// Re-encodes `first` (decoded in `version`), decodes it again and compares.
fn round_trip<T: PartialEq + Debug>(
    first: &T,
    version: i16,
    encode: impl Fn(&T, &mut Vec<u8>, i16) -> Result<(), EncodeError>,
    decode: impl Fn(&mut Bytes, i16) -> Result<T, DecodeError>,
) {
    let strict = strict_tags();
    let mut bytes = Vec::new();
    match encode(first, &mut bytes, version) {
        Ok(()) => {}
        // Known finding: the decoder accepts a repeated unknown tag the encoder refuses.
        Err(EncodeError::Invalid(m)) if !strict && m.contains("duplicate tag") => return,
        Err(e) => panic!("decoded in v{version} but does not re-encode: {e:?}\n{first:?}"),
    }
    let mut buf = Bytes::from(bytes.clone());
    let second = match decode(&mut buf, version) {
        Ok(s) => s,
        Err(e) => panic!("re-encoded v{version} does not decode: {e:?}\n{first:?}"),
    };
    assert!(buf.is_empty(), "{} re-encoded bytes left unread", buf.len());
    if *first != second {
        // Known finding: unknown tagged fields read out of order come back sorted.
        let (a, b) = (format!("{first:?}"), format!("{second:?}"));
        assert!(
            !strict && sort_unknown_tags(&a) == sort_unknown_tags(&b),
            "round trip changed the message (v{version})\n  first: {a}\n second: {b}"
        );
    }
    let mut again = Vec::new();
    encode(&second, &mut again, version).expect("second encode");
    assert_eq!(bytes, again, "encoding is not stable (v{version})");
}

/// Whether tagged fields must round-trip exactly (finding 2, fixed: the decoder refuses
/// out-of-order or repeated tags). On by default; `GRETE_FUZZ_STRICT_TAGS=0` tolerates
/// reordered and repeated tags, as before the fix.
fn strict_tags() -> bool {
    static STRICT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *STRICT.get_or_init(|| std::env::var_os("GRETE_FUZZ_STRICT_TAGS").is_none_or(|v| v != "0"))
}

/// A message's `Debug` text with the entries of every `unknown_tagged_fields: [..]` list
/// sorted, so that two messages differing only in that order compare equal.
pub fn sort_unknown_tags(debug: &str) -> String {
    const KEY: &str = "unknown_tagged_fields: [";
    let mut out = String::with_capacity(debug.len());
    let mut rest = debug;
    while let Some(at) = rest.find(KEY) {
        out.push_str(&rest[..at + KEY.len()]);
        rest = &rest[at + KEY.len()..];
        // Split the list at top-level ", ", skipping over quoted byte strings.
        let (mut depth, mut quoted, mut escaped) = (0i32, false, false);
        let mut items = Vec::new();
        let mut start = 0;
        let mut end = rest.len();
        for (i, ch) in rest.char_indices() {
            if quoted {
                match ch {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '"' => quoted = false,
                    _ => {}
                }
                continue;
            }
            match ch {
                '"' => quoted = true,
                '{' | '[' | '(' => depth += 1,
                '}' | ')' => depth -= 1,
                ']' if depth == 0 => {
                    end = i;
                    break;
                }
                ']' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(rest[start..i].trim());
                    start = i + 1;
                }
                _ => {}
            }
        }
        let last = rest[start..end].trim();
        if !last.is_empty() {
            items.push(last);
        }
        items.sort_unstable();
        out.push_str(&items.join(", "));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn request_body(key: ApiKey, version: i16, buf: &mut Bytes) {
    if let Ok(body) = RequestBody::decode(key, version, buf) {
        assert_eq!(body.api_key(), key);
        round_trip(
            &body,
            version,
            |b, out, v| b.encode(out, v),
            |b, v| RequestBody::decode(key, v, b),
        );
    }
}

fn response_body(key: ApiKey, version: i16, buf: &mut Bytes) {
    if let Ok(body) = ResponseBody::decode(key, version, buf) {
        assert_eq!(body.api_key(), key);
        round_trip(
            &body,
            version,
            |b, out, v| b.encode(out, v),
            |b, v| ResponseBody::decode(key, v, b),
        );
    }
}

fn pick_api(b: u8) -> Option<ApiKey> {
    ApiKey::ALL
        .get(b as usize % (ApiKey::ALL.len() + 1))
        .copied()
}

fn pick_version(key: ApiKey, b: u8) -> i16 {
    (b as i16) % (key.max_defined_version() + 2)
}

/// The request target.
pub fn check_requests(mut data: &[u8]) {
    let selector = take_le(&mut data, 1) as u8;
    let vb = take_le(&mut data, 1) as u8;
    let mut buf = Bytes::copy_from_slice(data);
    match pick_api(selector) {
        Some(key) => request_body(key, pick_version(key, vb), &mut buf),
        None => {
            let hv = (vb % 3) as i16;
            let Ok(header) = RequestHeader::decode(&mut buf, hv) else {
                return;
            };
            round_trip(&header, hv, |h, o, v| h.encode(o, v), RequestHeader::decode);
            let Some(key) = ApiKey::from_i16(header.request_api_key) else {
                let r = RequestBody::decode_raw(header.request_api_key, 0, &mut buf);
                assert!(matches!(r, Err(DecodeError::UnknownApiKey(_))), "{r:?}");
                return;
            };
            request_body(key, header.request_api_version, &mut buf);
        }
    }
}

/// The response target.
pub fn check_responses(mut data: &[u8]) {
    let selector = take_le(&mut data, 1) as u8;
    let vb = take_le(&mut data, 1) as u8;
    match pick_api(selector) {
        Some(key) => {
            let mut buf = Bytes::copy_from_slice(data);
            response_body(key, pick_version(key, vb), &mut buf);
        }
        None => {
            let hv = (vb % 2) as i16;
            let key = ApiKey::ALL[take_le(&mut data, 1) as usize % ApiKey::ALL.len()];
            let version = pick_version(key, take_le(&mut data, 1) as u8);
            let mut buf = Bytes::copy_from_slice(data);
            let Ok(header) = ResponseHeader::decode(&mut buf, hv) else {
                return;
            };
            round_trip(
                &header,
                hv,
                |h, o, v| h.encode(o, v),
                ResponseHeader::decode,
            );
            response_body(key, version, &mut buf);
        }
    }
}

macro_rules! default_bodies {
    ($($api:ident: $req:ident, $resp:ident;)*) => {
        /// One default-valued body of each API, requests and responses.
        fn default_bodies() -> Vec<(RequestBody, ResponseBody)> {
            use grete::protocol::messages::*;
            vec![$((
                RequestBody::$api($req::default()),
                ResponseBody::$api($resp::default()),
            ),)*]
        }
    };
}

default_bodies! {
    Produce: ProduceRequest, ProduceResponse;
    Fetch: FetchRequest, FetchResponse;
    ListOffsets: ListOffsetsRequest, ListOffsetsResponse;
    Metadata: MetadataRequest, MetadataResponse;
    OffsetCommit: OffsetCommitRequest, OffsetCommitResponse;
    OffsetFetch: OffsetFetchRequest, OffsetFetchResponse;
    FindCoordinator: FindCoordinatorRequest, FindCoordinatorResponse;
    JoinGroup: JoinGroupRequest, JoinGroupResponse;
    Heartbeat: HeartbeatRequest, HeartbeatResponse;
    LeaveGroup: LeaveGroupRequest, LeaveGroupResponse;
    SyncGroup: SyncGroupRequest, SyncGroupResponse;
    DescribeGroups: DescribeGroupsRequest, DescribeGroupsResponse;
    ListGroups: ListGroupsRequest, ListGroupsResponse;
    SaslHandshake: SaslHandshakeRequest, SaslHandshakeResponse;
    ApiVersions: ApiVersionsRequest, ApiVersionsResponse;
    CreateTopics: CreateTopicsRequest, CreateTopicsResponse;
    DeleteTopics: DeleteTopicsRequest, DeleteTopicsResponse;
    DeleteRecords: DeleteRecordsRequest, DeleteRecordsResponse;
    InitProducerId: InitProducerIdRequest, InitProducerIdResponse;
    OffsetForLeaderEpoch: OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse;
    AddPartitionsToTxn: AddPartitionsToTxnRequest, AddPartitionsToTxnResponse;
    AddOffsetsToTxn: AddOffsetsToTxnRequest, AddOffsetsToTxnResponse;
    EndTxn: EndTxnRequest, EndTxnResponse;
    TxnOffsetCommit: TxnOffsetCommitRequest, TxnOffsetCommitResponse;
    DescribeConfigs: DescribeConfigsRequest, DescribeConfigsResponse;
    SaslAuthenticate: SaslAuthenticateRequest, SaslAuthenticateResponse;
    CreatePartitions: CreatePartitionsRequest, CreatePartitionsResponse;
    ConsumerGroupHeartbeat: ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse;
}

/// Writes seeds for the message targets through `put(target, name, bytes)`: every API's
/// default request and response in every version it encodes in, bare and behind a header.
pub fn seeds(put: &mut dyn FnMut(&str, &str, &[u8])) {
    let header_mode = ApiKey::ALL.len() as u8;
    for (req, resp) in default_bodies() {
        let key = req.api_key();
        let index = ApiKey::ALL.iter().position(|k| *k == key).expect("known") as u8;
        for v in 0..=key.max_defined_version() {
            let name = format!("{}-v{v}", key.name());
            let mut body = Vec::new();
            if req.encode(&mut body, v).is_ok() {
                let mut b = Bytes::from(body.clone());
                let back = RequestBody::decode(key, v, &mut b).expect("seed request decodes");
                assert!(back == req && b.is_empty(), "seed request round trip");
                let mut seed = vec![index, v as u8];
                seed.extend_from_slice(&body);
                put("request_decoders", &name, &seed);
                let hv = key.request_header_version(v);
                let header = RequestHeader {
                    request_api_key: key as i16,
                    request_api_version: v,
                    correlation_id: 7,
                    client_id: Some("grete-fuzz".into()),
                    ..RequestHeader::default()
                };
                let mut seed = vec![header_mode, hv as u8];
                header.encode(&mut seed, hv).expect("request header");
                seed.extend_from_slice(&body);
                put("request_decoders", &format!("{name}-header"), &seed);
            }
            let mut body = Vec::new();
            if resp.encode(&mut body, v).is_ok() {
                let mut b = Bytes::from(body.clone());
                let back = ResponseBody::decode(key, v, &mut b).expect("seed response decodes");
                assert!(back == resp && b.is_empty(), "seed response round trip");
                let mut seed = vec![index, v as u8];
                seed.extend_from_slice(&body);
                put("response_decoders", &name, &seed);
                let hv = key.response_header_version(v);
                let header = ResponseHeader {
                    correlation_id: 7,
                    ..ResponseHeader::default()
                };
                let mut seed = vec![header_mode, hv as u8, index, v as u8];
                header.encode(&mut seed, hv).expect("response header");
                seed.extend_from_slice(&body);
                put("response_decoders", &format!("{name}-header"), &seed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sort_unknown_tags;

    #[test]
    fn tag_lists_are_sorted_and_nothing_else_moves() {
        let a = r#"M { a: [2, 1], unknown_tagged_fields: [T { tag: 10, data: b"]\"," }, T { tag: 0, data: b"" }] }"#;
        let b = r#"M { a: [2, 1], unknown_tagged_fields: [T { tag: 0, data: b"" }, T { tag: 10, data: b"]\"," }] }"#;
        assert_eq!(sort_unknown_tags(a), sort_unknown_tags(b));
        let c = r#"M { a: [1, 2], unknown_tagged_fields: [T { tag: 0, data: b"" }, T { tag: 10, data: b"]\"," }] }"#;
        assert_ne!(sort_unknown_tags(a), sort_unknown_tags(c));
        assert_eq!(
            sort_unknown_tags("X { unknown_tagged_fields: [] }"),
            "X { unknown_tagged_fields: [] }"
        );
    }
}
