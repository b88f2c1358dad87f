//! Hand-written tests of the generated codecs (the generated round trips are in `mod.rs`).
//! This file is not generated.

use bytes::Bytes;
use quickcheck::{quickcheck, Gen};

use super::api_versions_response::ApiVersion;
use super::metadata_request::MetadataRequestTopic;
use super::*;
use crate::protocol::primitives::RawTaggedField;
use crate::protocol::{DecodeError, EncodeError};

fn enc<T: Encode>(x: &T, v: i16) -> Vec<u8> {
    let mut out = Vec::new();
    x.encode(&mut out, v).expect("encode");
    out
}

fn dec<T: Decode>(bytes: &[u8], v: i16) -> T {
    let mut b = Bytes::copy_from_slice(bytes);
    let x = T::decode(&mut b, v).expect("decode");
    assert!(b.is_empty(), "{} bytes left over", b.len());
    x
}

#[test]
fn metadata_request_v0_by_hand() {
    // v0: Topics is a non-nullable array (int32 count) of non-nullable int16-prefixed strings.
    let req = MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            name: Some("foo".into()),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let bytes = [0, 0, 0, 1, 0, 3, b'f', b'o', b'o'];
    assert_eq!(enc(&req, 0), bytes);
    assert_eq!(dec::<MetadataRequest>(&bytes, 0), req);
}

#[test]
fn api_versions_request_v3_by_hand() {
    // v3 is flexible: compact strings (length + 1 as an unsigned varint), then an empty
    // tagged-field section (a zero count).
    let req = ApiVersionsRequest {
        client_software_name: "grete".into(),
        client_software_version: "0.1".into(),
        ..Default::default()
    };
    let bytes = [6, b'g', b'r', b'e', b't', b'e', 4, b'0', b'.', b'1', 0];
    assert_eq!(enc(&req, 3), bytes);
    assert_eq!(dec::<ApiVersionsRequest>(&bytes, 3), req);
}

#[test]
fn too_old_version_rejects_set_fields_instead_of_dropping_them() {
    let req = MetadataRequest {
        allow_auto_topic_creation: false,
        ..Default::default()
    };
    let mut out = Vec::new();
    assert_eq!(
        req.encode(&mut out, 3),
        Err(EncodeError::UnsupportedField {
            message: "MetadataRequest",
            field: "allow_auto_topic_creation",
            version: 3
        })
    );
    assert!(req.encode(&mut Vec::new(), 4).is_ok());
    // The default (true) is fine in v3: nothing is lost.
    assert!(MetadataRequest::default()
        .encode(&mut Vec::new(), 3)
        .is_ok());

    // A tagged field in a version without tagged fields.
    let resp = ApiVersionsResponse {
        finalized_features_epoch: 5,
        ..Default::default()
    };
    assert!(matches!(
        resp.encode(&mut Vec::new(), 2),
        Err(EncodeError::UnsupportedField {
            field: "finalized_features_epoch",
            ..
        })
    ));
    // Unknown tagged fields cannot be carried by a non-flexible version either.
    let resp = ApiVersionsResponse {
        unknown_tagged_fields: vec![RawTaggedField {
            tag: 9,
            data: Bytes::new(),
        }]
        .into(),
        ..Default::default()
    };
    assert!(resp.encode(&mut Vec::new(), 2).is_err());
    assert!(resp.encode(&mut Vec::new(), 3).is_ok());
}

#[test]
fn null_and_version_checks() {
    let req = MetadataRequest {
        topics: None,
        ..Default::default()
    };
    assert_eq!(
        req.encode(&mut Vec::new(), 0),
        Err(EncodeError::NullNotAllowed {
            message: "MetadataRequest",
            field: "topics",
            version: 0
        })
    );
    assert_eq!(enc(&req, 1), [0xff, 0xff, 0xff, 0xff]);
    assert_eq!(
        req.encode(&mut Vec::new(), 13),
        Err(EncodeError::UnsupportedVersion {
            message: "MetadataRequest",
            version: 13
        })
    );
    assert!(
        MetadataRequest::decode(&mut Bytes::from_static(&[0xff, 0xff, 0xff, 0xff]), 0).is_err()
    );
    assert!(MetadataRequest::decode(&mut Bytes::from_static(&[0, 0, 0, 0]), -1).is_err());
}

#[test]
fn request_header_v2_client_id_is_not_compact() {
    let h = RequestHeader {
        request_api_key: 18,
        request_api_version: 3,
        correlation_id: 7,
        client_id: Some("ab".into()),
        ..Default::default()
    };
    // int16 length for the client id even though v2 is flexible; then the tagged section.
    let bytes = [0, 18, 0, 3, 0, 0, 0, 7, 0, 2, b'a', b'b', 0];
    assert_eq!(enc(&h, 2), bytes);
    assert_eq!(dec::<RequestHeader>(&bytes, 2), h);
    let null = RequestHeader {
        client_id: None,
        ..h
    };
    assert_eq!(enc(&null, 2)[8..], [0xff, 0xff, 0]);
    assert_eq!(enc(&null, 1)[8..], [0xff, 0xff]);
}

#[test]
fn header_versions() {
    for v in ApiKey::ApiVersions.min_version()..=ApiKey::ApiVersions.max_defined_version() {
        assert_eq!(ApiKey::ApiVersions.response_header_version(v), 0, "v{v}");
    }
    assert_eq!(ApiKey::ApiVersions.request_header_version(2), 1);
    assert_eq!(ApiKey::ApiVersions.request_header_version(3), 2);
    assert_eq!(ApiKey::Metadata.response_header_version(8), 0);
    assert_eq!(ApiKey::Metadata.response_header_version(9), 1);
    assert_eq!(ApiKey::Metadata.request_header_version(9), 2);
    assert!(ApiKey::Metadata.is_flexible(9) && !ApiKey::Metadata.is_flexible(8));
}

#[test]
fn api_keys_and_unstable_versions() {
    assert_eq!(ApiKey::ALL.len(), 28);
    for &k in ApiKey::ALL {
        assert_eq!(ApiKey::from_i16(k as i16), Some(k));
    }
    assert_eq!(ApiKey::from_i16(3), Some(ApiKey::Metadata));
    assert_eq!(ApiKey::Metadata.name(), "Metadata");
    assert_eq!(ApiKey::from_i16(-1), None);
    // EndTxn's latest version is unstable: decodable, never offered.
    const { assert!(EndTxnRequest::LATEST_VERSION_UNSTABLE) };
    assert_eq!(
        ApiKey::EndTxn.max_version(),
        *EndTxnRequest::VALID_VERSIONS.end() - 1
    );
    assert_eq!(
        ApiKey::EndTxn.max_defined_version(),
        *EndTxnRequest::VALID_VERSIONS.end()
    );
    assert_eq!(
        ApiKey::Metadata.max_version(),
        *MetadataRequest::VALID_VERSIONS.end()
    );
    assert_eq!(<MetadataRequest as Request>::API_KEY, ApiKey::Metadata);
}

#[test]
fn defaults_come_from_the_definitions() {
    assert!(MetadataRequest::default().allow_auto_topic_creation);
    assert_eq!(FetchRequest::default().max_bytes, 0x7fff_ffff);
    assert_eq!(FetchRequest::default().replica_id, -1);
    assert_eq!(ApiVersionsResponse::default().finalized_features_epoch, -1);
    assert_eq!(
        metadata_response::MetadataResponse::default().cluster_authorized_operations,
        i32::MIN
    );
    assert_eq!(ConsumerGroupHeartbeatResponse::default().assignment, None);
    assert_eq!(ConsumerProtocolAssignment::default().user_data, None);
}

#[test]
fn tagged_fields_are_written_in_tag_order_and_unknown_ones_kept() {
    let resp = ApiVersionsResponse {
        api_keys: vec![],
        finalized_features_epoch: 5,
        zk_migration_ready: true,
        unknown_tagged_fields: vec![RawTaggedField {
            tag: 4,
            data: Bytes::from_static(&[9]),
        }]
        .into(),
        ..Default::default()
    };
    #[rustfmt::skip]
    let bytes = [
        0, 0, // error code
        1, // empty compact array
        0, 0, 0, 0, // throttle time
        3, // three tagged fields
        1, 8, 0, 0, 0, 0, 0, 0, 0, 5, // tag 1: finalized features epoch
        3, 1, 1, // tag 3: zk migration ready
        4, 1, 9, // tag 4: unknown
    ];
    assert_eq!(enc(&resp, 3), bytes);
    assert_eq!(dec::<ApiVersionsResponse>(&bytes, 3), resp);

    // Tags must come in ascending order (KIP-482): out of order or repeated is malformed.
    let shuffled = [
        0, 0, 1, 0, 0, 0, 0, 2, 3, 1, 1, 1, 8, 0, 0, 0, 0, 0, 0, 0, 5,
    ];
    assert_eq!(
        ApiVersionsResponse::decode(&mut Bytes::copy_from_slice(&shuffled), 3),
        Err(DecodeError::Malformed(
            "tagged fields out of order or repeated"
        ))
    );
    let repeated = [0, 0, 1, 0, 0, 0, 0, 2, 3, 1, 1, 3, 1, 0];
    assert!(ApiVersionsResponse::decode(&mut Bytes::copy_from_slice(&repeated), 3).is_err());
    // A default-valued tagged field is omitted.
    assert_eq!(
        enc(&ApiVersionsResponse::default(), 3),
        [0, 0, 1, 0, 0, 0, 0, 0]
    );

    // An unknown field may not reuse a tag that is sent.
    let dup = ApiVersionsResponse {
        zk_migration_ready: true,
        unknown_tagged_fields: vec![RawTaggedField {
            tag: 3,
            data: Bytes::new(),
        }]
        .into(),
        ..Default::default()
    };
    assert!(matches!(
        dup.encode(&mut Vec::new(), 3),
        Err(EncodeError::Invalid(_))
    ));

    // A known tagged field whose body has bytes left over is malformed.
    let long = [0, 0, 1, 0, 0, 0, 0, 1, 3, 2, 1, 1];
    assert!(ApiVersionsResponse::decode(&mut Bytes::copy_from_slice(&long), 3).is_err());
}

#[test]
fn api_versions_response_v0_by_hand() {
    let resp = ApiVersionsResponse {
        api_keys: vec![ApiVersion {
            api_key: 18,
            min_version: 0,
            max_version: 3,
            ..Default::default()
        }],
        ..Default::default()
    };
    let bytes = [0, 0, 0, 0, 0, 1, 0, 18, 0, 0, 0, 3];
    assert_eq!(enc(&resp, 0), bytes);
}

fn assert_truncations_fail<T: Encode + Decode + std::fmt::Debug>(x: &T, v: i16) {
    let full = enc(x, v);
    for cut in 0..full.len() {
        let mut b = Bytes::copy_from_slice(&full[..cut]);
        assert!(
            T::decode(&mut b, v).is_err(),
            "v{v} cut at {cut} of {}",
            full.len()
        );
    }
}

#[test]
fn truncated_input_is_an_error_at_every_cut() {
    let mut g = Gen::new(16);
    for _ in 0..10 {
        assert_truncations_fail(&MetadataResponse::arb(&mut g, 12), 12);
        assert_truncations_fail(&MetadataResponse::arb(&mut g, 1), 1);
        assert_truncations_fail(&FetchRequest::arb(&mut g, 15), 15);
        assert_truncations_fail(&ProduceRequest::arb(&mut g, 9), 9);
        assert_truncations_fail(&ApiVersionsResponse::arb(&mut g, 3), 3);
        assert_truncations_fail(&ConsumerGroupHeartbeatResponse::arb(&mut g, 0), 0);
        assert_truncations_fail(&JoinGroupRequest::arb(&mut g, 5), 5);
    }
}

#[test]
fn dispatch_by_api_key() {
    let bytes = [0, 0, 0, 1, 0, 3, b'f', b'o', b'o'];
    let body = RequestBody::decode_raw(3, 0, &mut Bytes::copy_from_slice(&bytes)).unwrap();
    assert_eq!(body.api_key(), ApiKey::Metadata);
    let mut out = Vec::new();
    body.encode(&mut out, 0).unwrap();
    assert_eq!(out, bytes);
    assert_eq!(
        RequestBody::decode_raw(9999, 0, &mut Bytes::new()),
        Err(crate::protocol::DecodeError::UnknownApiKey(9999))
    );
    let resp =
        ResponseBody::decode(ApiKey::Heartbeat, 0, &mut Bytes::from_static(&[0, 27])).unwrap();
    assert_eq!(
        resp,
        ResponseBody::Heartbeat(HeartbeatResponse {
            error_code: 27,
            ..Default::default()
        })
    );
}

quickcheck! {
    // Garbage never panics, whatever the API and version.
    fn decoding_garbage_never_panics(data: Vec<u8>) -> bool {
        for &k in ApiKey::ALL {
            for v in k.min_version()..=k.max_defined_version() {
                let _ = RequestBody::decode(k, v, &mut Bytes::copy_from_slice(&data));
                let _ = ResponseBody::decode(k, v, &mut Bytes::copy_from_slice(&data));
            }
        }
        true
    }
}

#[test]
fn fixture_string_tag_and_per_field_flexible_override() {
    use super::grete_test_message::GreteTestMessage;
    // The fixture declares Extra with the string tag "5" and Legacy as never compact.
    let m = GreteTestMessage {
        legacy: Some("x".into()),
        extra: 9,
        payload: None,
        ..Default::default()
    };
    const { assert!(!GreteTestMessage::LATEST_VERSION_UNSTABLE) };
    let bytes = enc(&m, 2);
    #[rustfmt::skip]
    let tail = [
        0, 1, b'x', // legacy: int16 length even in a flexible version
        6, b'g', b'r', b'e', b't', b'e', // label: compact string
        0, // payload: compact null
        1, // ids: empty compact array
        0xff, // inner: null struct
        1, 5, 8, 0, 0, 0, 0, 0, 0, 0, 9, // one tagged field, tag 5, 8 bytes
    ];
    // uint16 + float64 + int8 come first: 2 + 8 + 1, then uint32 (v1+): 4.
    assert_eq!(bytes[..2], [0xff, 0xff]);
    assert_eq!(bytes[15..], tail);
    assert_eq!(dec::<GreteTestMessage>(&bytes, 2), m);
    assert!(matches!(
        m.encode(&mut Vec::new(), 1),
        Err(EncodeError::UnsupportedField { field: "extra", .. })
    ));
}
