//! Transcript tests for one connection, against a hand-driven fake broker built from the
//! server side of the codec.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::config::{SaslConfig, SaslMechanism};
use crate::error::TransportErrorKind;
use crate::protocol::frame::FrameDecoder;
use crate::protocol::header::{decode_request, encode_response};
use crate::protocol::messages::api_versions_response::ApiVersion;
use crate::protocol::messages::{
    MetadataRequest, MetadataResponse, SaslAuthenticateResponse, SaslHandshakeResponse,
};

/// The broker side of a connection: decodes the client's frames, encodes answers.
pub(crate) struct FakeBroker {
    frames: FrameDecoder,
}

impl FakeBroker {
    pub(crate) fn new() -> FakeBroker {
        FakeBroker {
            frames: FrameDecoder::new(1 << 24),
        }
    }

    /// Decodes every whole request in `bytes`.
    pub(crate) fn requests(&mut self, bytes: &[u8]) -> Vec<(RequestHeader, RequestBody)> {
        self.frames.handle_data(bytes);
        let mut out = Vec::new();
        while let Some(f) = self.frames.poll_frame().unwrap() {
            out.push(decode_request(f).unwrap());
        }
        out
    }

    /// Takes whole raw frames (SASL v0 tokens).
    pub(crate) fn raw_frames(&mut self, bytes: &[u8]) -> Vec<Bytes> {
        self.frames.handle_data(bytes);
        let mut out = Vec::new();
        while let Some(f) = self.frames.poll_frame().unwrap() {
            out.push(f);
        }
        out
    }
}

/// The bytes of a response to `header`.
pub(crate) fn answer(header: &RequestHeader, body: ResponseBody) -> Vec<u8> {
    let mut buf = Vec::new();
    encode_response(
        &mut buf,
        header.request_api_version,
        header.correlation_id,
        &body,
    )
    .unwrap();
    buf
}

/// An ApiVersions answer listing every API grete knows, in grete's ranges.
pub(crate) fn all_api_versions() -> ResponseBody {
    ResponseBody::ApiVersions(api_versions_listing(
        ApiKey::ALL
            .iter()
            .map(|k| (*k, k.min_version(), k.max_version()))
            .collect(),
    ))
}

pub(crate) fn api_versions_listing(list: Vec<(ApiKey, i16, i16)>) -> ApiVersionsResponse {
    ApiVersionsResponse {
        api_keys: list
            .into_iter()
            .map(|(k, min, max)| ApiVersion {
                api_key: k as i16,
                min_version: min,
                max_version: max,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn config() -> ConnectionConfig {
    ConnectionConfig {
        client_id: "test".into(),
        max_in_flight: 5,
        request_timeout: Duration::from_secs(30),
        api_version_request_timeout: Duration::from_secs(3),
        max_frame_size: 1 << 20,
        probe_api_versions: true,
        broker_version: BrokerVersion::new(0, 9, 0),
        sasl: None,
    }
}

fn transmit(c: &mut Connection) -> Vec<u8> {
    let mut buf = Vec::new();
    while c.poll_transmit(&mut buf) {}
    buf
}

fn events(c: &mut Connection) -> Vec<ConnectionEvent> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn metadata_body() -> RequestBody {
    RequestBody::Metadata(MetadataRequest {
        topics: None,
        ..Default::default()
    })
}

fn all_topics_v0() -> RequestBody {
    RequestBody::Metadata(MetadataRequest {
        topics: Some(vec![]),
        ..Default::default()
    })
}

/// Connects and negotiates with an ApiVersions answer; returns the connection, ready.
fn ready(config: ConnectionConfig, broker: &mut FakeBroker, now: Instant) -> Connection {
    let mut c = Connection::new(config, &mut Rng::new(1));
    c.handle_connected(now);
    let reqs = broker.requests(&transmit(&mut c));
    assert_eq!(reqs.len(), 1);
    let (h, body) = &reqs[0];
    assert!(matches!(body, RequestBody::ApiVersions(_)));
    assert_eq!(h.request_api_version, 3);
    c.handle_data(now, &answer(h, all_api_versions()));
    assert_eq!(events(&mut c), vec![ConnectionEvent::Ready]);
    c
}

#[test]
fn negotiates_then_sends_the_highest_common_version() {
    let now = Instant::now();
    let mut broker = FakeBroker::new();
    let mut c = Connection::new(config(), &mut Rng::new(1));
    let id = c.send(now, metadata_body(), VersionChoice::Highest);
    assert_eq!(c.state(), ConnectionState::Connecting);
    assert!(
        transmit(&mut c).is_empty(),
        "nothing is written before connecting"
    );
    c.handle_connected(now);
    assert_eq!(c.state(), ConnectionState::Negotiating);
    let reqs = broker.requests(&transmit(&mut c));
    assert_eq!(reqs.len(), 1, "only ApiVersions before the answer");
    let (h, _) = &reqs[0];
    assert_eq!((h.request_api_key, h.request_api_version), (18, 3));
    assert_eq!(h.client_id.as_deref(), Some("test"));
    // The broker supports Metadata up to v7 only.
    let mut list: Vec<_> = ApiKey::ALL
        .iter()
        .map(|k| (*k, k.min_version(), k.max_version()))
        .collect();
    list.retain(|e| e.0 != ApiKey::Metadata);
    list.push((ApiKey::Metadata, 0, 7));
    let resp = ResponseBody::ApiVersions(api_versions_listing(list));
    c.handle_data(now, &answer(h, resp));
    assert_eq!(c.state(), ConnectionState::Ready);
    assert_eq!(c.api_versions().unwrap().max(ApiKey::Metadata), Some(7));
    let reqs = broker.requests(&transmit(&mut c));
    assert_eq!(reqs.len(), 1);
    let (h, body) = &reqs[0];
    assert_eq!((h.request_api_key, h.request_api_version), (3, 7));
    assert_eq!(body, &metadata_body());
    c.handle_data(
        now,
        &answer(h, ResponseBody::Metadata(MetadataResponse::default())),
    );
    assert_eq!(
        events(&mut c),
        vec![
            ConnectionEvent::Ready,
            ConnectionEvent::Response {
                id,
                sent: Some((ApiKey::Metadata, 7)),
                result: Ok(ResponseBody::Metadata(MetadataResponse::default())),
            }
        ]
    );
}

#[test]
fn unsupported_api_versions_version_is_retried_with_the_listed_one() {
    let now = Instant::now();
    let mut broker = FakeBroker::new();
    let mut c = Connection::new(config(), &mut Rng::new(1));
    c.handle_connected(now);
    let (h, _) = broker.requests(&transmit(&mut c)).remove(0);
    // An older broker answers in v0 with UNSUPPORTED_VERSION and its own range.
    let mut refusal = api_versions_listing(vec![(ApiKey::ApiVersions, 0, 2)]);
    refusal.error_code = ErrorCode::UnsupportedVersion.code();
    let mut bytes = Vec::new();
    encode_response(
        &mut bytes,
        0,
        h.correlation_id,
        &ResponseBody::ApiVersions(refusal),
    )
    .unwrap();
    c.handle_data(now, &bytes);
    assert_eq!(events(&mut c), vec![]);
    let (h2, _) = broker.requests(&transmit(&mut c)).remove(0);
    assert_eq!((h2.request_api_key, h2.request_api_version), (18, 2));
    assert_ne!(h2.correlation_id, h.correlation_id);
    c.handle_data(now, &answer(&h2, all_api_versions()));
    assert_eq!(c.state(), ConnectionState::Ready);
}

#[test]
fn without_probing_the_broker_version_table_is_used() {
    let now = Instant::now();
    let mut broker = FakeBroker::new();
    let mut c = Connection::new(
        ConnectionConfig {
            probe_api_versions: false,
            ..config()
        },
        &mut Rng::new(1),
    );
    // 0.9.0: Metadata v0, where "all topics" is an empty list; null cannot be sent.
    let null = c.send(now, metadata_body(), VersionChoice::Highest);
    c.send(now, all_topics_v0(), VersionChoice::Highest);
    c.handle_connected(now);
    let reqs = broker.requests(&transmit(&mut c));
    assert_eq!(reqs.len(), 1);
    assert!(matches!(
        &events(&mut c)[..],
        [ConnectionEvent::Ready, ConnectionEvent::Response { id, result: Err(Error::Encode(_)), .. }] if *id == null
    ));
    let (h, _) = &reqs[0];
    assert_eq!((h.request_api_key, h.request_api_version), (3, 0));
    let id = c.send(
        now,
        RequestBody::CreateTopics(Default::default()),
        VersionChoice::Highest,
    );
    let evs = events(&mut c);
    assert!(evs.contains(&ConnectionEvent::Response {
        id,
        sent: None,
        result: Err(Error::Unsupported {
            api: ApiKey::CreateTopics,
            broker_version: "0.9.0".into()
        })
    }));
}

#[test]
fn unanswered_api_versions_closes_for_a_fallback_reconnect() {
    let t0 = Instant::now();
    let mut c = Connection::new(config(), &mut Rng::new(1));
    let id = c.send(t0, metadata_body(), VersionChoice::Highest);
    c.handle_connected(t0);
    assert!(!transmit(&mut c).is_empty());
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(3)));
    // Kafka 0.9.0.1 neither answers nor closes.
    c.handle_timeout(t0 + Duration::from_millis(2999));
    assert_eq!(c.state(), ConnectionState::Negotiating);
    c.handle_timeout(t0 + Duration::from_secs(3));
    assert_eq!(c.state(), ConnectionState::Closed);
    let evs = events(&mut c);
    assert!(matches!(
        &evs[0],
        ConnectionEvent::Closed {
            api_versions_unanswered: true,
            error: Some(Error::Timeout { .. })
        }
    ));
    // The queued request fails retriably, to be sent again on the new connection.
    match &evs[1] {
        ConnectionEvent::Response {
            id: i,
            result: Err(e),
            ..
        } => {
            assert_eq!(*i, id);
            assert!(e.is_retriable(), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.poll_timeout(), None);
}

/// Issue 6, item 3: a closure while negotiating (a broker restart, a cut) says nothing
/// about the broker's version and must not ask for the 0.9 fallback.
#[test]
fn closing_during_negotiation_does_not_ask_for_the_fallback() {
    let t0 = Instant::now();
    let mut c = Connection::new(config(), &mut Rng::new(1));
    c.handle_connected(t0);
    c.handle_closed(t0, None);
    assert!(matches!(
        events(&mut c)[0],
        ConnectionEvent::Closed {
            api_versions_unanswered: false,
            ..
        }
    ));
}

#[test]
fn pipelines_up_to_max_in_flight_and_matches_out_of_order_answers() {
    let now = Instant::now();
    let mut broker = FakeBroker::new();
    let mut c = ready(
        ConnectionConfig {
            max_in_flight: 3,
            ..config()
        },
        &mut broker,
        now,
    );
    let ids: Vec<RequestId> = (0..5)
        .map(|_| c.send(now, metadata_body(), VersionChoice::Exact(1)))
        .collect();
    let reqs = broker.requests(&transmit(&mut c));
    assert_eq!(reqs.len(), 3, "three written before any answer");
    assert_eq!((c.in_flight(), c.queued()), (3, 2));
    let corr: Vec<i32> = reqs.iter().map(|r| r.0.correlation_id).collect();
    assert!(corr.windows(2).all(|w| w[0] != w[1]));
    // Answer the third first, with a distinguishing controller id.
    let resp = |n| {
        ResponseBody::Metadata(MetadataResponse {
            controller_id: n,
            ..Default::default()
        })
    };
    c.handle_data(now, &answer(&reqs[2].0, resp(2)));
    let evs = events(&mut c);
    assert_eq!(
        evs,
        vec![ConnectionEvent::Response {
            id: ids[2],
            sent: Some((ApiKey::Metadata, 1)),
            result: Ok(resp(2)),
        }]
    );
    // One slot freed: the fourth is written.
    let more = broker.requests(&transmit(&mut c));
    assert_eq!(more.len(), 1);
    // The other two answers arrive in one read, the first split byte by byte.
    let first = answer(&reqs[0].0, resp(0));
    for b in &first {
        c.handle_data(now, std::slice::from_ref(b));
    }
    let mut both = answer(&reqs[1].0, resp(1));
    both.extend(answer(&more[0].0, resp(3)));
    c.handle_data(now, &both);
    let got: Vec<(RequestId, Result<ResponseBody, Error>)> = events(&mut c)
        .into_iter()
        .map(|e| match e {
            ConnectionEvent::Response { id, result, .. } => (id, result),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (ids[0], Ok(resp(0))),
            (ids[1], Ok(resp(1))),
            (ids[3], Ok(resp(3)))
        ]
    );
    assert_eq!(broker.requests(&transmit(&mut c)).len(), 1, "the fifth");
}

#[test]
fn queued_request_deadline_fails_alone_in_flight_deadline_closes() {
    let t0 = Instant::now();
    let mut broker = FakeBroker::new();
    let mut c = ready(
        ConnectionConfig {
            max_in_flight: 1,
            ..config()
        },
        &mut broker,
        t0,
    );
    let a = c.send_with_deadline(
        t0,
        metadata_body(),
        VersionChoice::Highest,
        t0 + Duration::from_secs(10),
    );
    let b = c.send_with_deadline(
        t0,
        metadata_body(),
        VersionChoice::Highest,
        t0 + Duration::from_secs(5),
    );
    assert_eq!(broker.requests(&transmit(&mut c)).len(), 1);
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(5)));
    c.handle_timeout(t0 + Duration::from_secs(5));
    let evs = events(&mut c);
    assert!(
        matches!(&evs[..], [ConnectionEvent::Response { id, sent: None, result: Err(Error::Timeout { .. }) }] if *id == b)
    );
    assert_eq!(c.state(), ConnectionState::Ready);
    c.handle_timeout(t0 + Duration::from_secs(10));
    let evs = events(&mut c);
    assert!(
        matches!(&evs[0], ConnectionEvent::Response { id, result: Err(Error::Timeout { .. }), .. } if *id == a)
    );
    assert!(matches!(&evs[1], ConnectionEvent::Closed { .. }));
    assert_eq!(c.state(), ConnectionState::Closed);
}

#[test]
fn oversized_frame_and_unknown_correlation_id_close_with_typed_errors() {
    let now = Instant::now();
    let mut broker = FakeBroker::new();
    let mut c = ready(
        ConnectionConfig {
            max_frame_size: 1000,
            ..config()
        },
        &mut broker,
        now,
    );
    let id = c.send(now, metadata_body(), VersionChoice::Highest);
    transmit(&mut c);
    c.handle_data(now, &[0, 0, 0x10, 0]);
    let evs = events(&mut c);
    let too_large = Error::Protocol(DecodeError::FrameTooLarge {
        size: 4096,
        max: 1000,
    });
    assert_eq!(
        evs,
        vec![
            ConnectionEvent::Closed {
                error: Some(too_large.clone()),
                api_versions_unanswered: false
            },
            ConnectionEvent::Response {
                id,
                sent: Some((ApiKey::Metadata, ApiKey::Metadata.max_version())),
                result: Err(too_large)
            },
        ]
    );
    // More bytes after the close are ignored.
    c.handle_data(now, &[0; 64]);
    assert!(events(&mut c).is_empty());

    let mut broker = FakeBroker::new();
    let mut c = ready(config(), &mut broker, now);
    c.handle_data(now, &[0, 0, 0, 6, 0, 0, 0x7f, 0x7f, 0, 0]);
    assert!(matches!(
        &events(&mut c)[0],
        ConnectionEvent::Closed {
            error: Some(Error::Protocol(DecodeError::Malformed(_))),
            ..
        }
    ));
}

#[test]
fn garbage_response_body_fails_the_request_and_closes() {
    let now = Instant::now();
    let mut broker = FakeBroker::new();
    let mut c = ready(config(), &mut broker, now);
    let id = c.send(now, all_topics_v0(), VersionChoice::Exact(0));
    let (h, _) = broker.requests(&transmit(&mut c)).remove(0);
    let mut frame = vec![0, 0, 0, 9];
    frame.extend_from_slice(&h.correlation_id.to_be_bytes());
    frame.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff]);
    c.handle_data(now, &frame);
    let evs = events(&mut c);
    assert!(
        matches!(&evs[0], ConnectionEvent::Response { id: i, result: Err(Error::Protocol(_)), .. } if *i == id)
    );
    assert!(matches!(&evs[1], ConnectionEvent::Closed { .. }));
}

fn sasl(mechanism: SaslMechanism) -> Option<SaslConfig> {
    Some(SaslConfig {
        mechanism,
        username: "alice".into(),
        password: "secret".into(),
    })
}

#[test]
fn sasl_plain_with_handshake_v1_and_sasl_authenticate() {
    let now = Instant::now();
    let mut broker = FakeBroker::new();
    let mut c = Connection::new(
        ConnectionConfig {
            sasl: sasl(SaslMechanism::Plain),
            ..config()
        },
        &mut Rng::new(1),
    );
    let id = c.send(now, metadata_body(), VersionChoice::Highest);
    c.handle_connected(now);
    let (h, _) = broker.requests(&transmit(&mut c)).remove(0);
    c.handle_data(now, &answer(&h, all_api_versions()));
    assert_eq!(c.state(), ConnectionState::Authenticating);
    let (h, body) = broker.requests(&transmit(&mut c)).remove(0);
    assert_eq!((h.request_api_key, h.request_api_version), (17, 1));
    assert_eq!(
        body,
        RequestBody::SaslHandshake(SaslHandshakeRequest {
            mechanism: "PLAIN".into(),
            ..Default::default()
        })
    );
    let ok = SaslHandshakeResponse {
        mechanisms: vec!["PLAIN".into()],
        ..Default::default()
    };
    c.handle_data(now, &answer(&h, ResponseBody::SaslHandshake(ok)));
    let (h, body) = broker.requests(&transmit(&mut c)).remove(0);
    assert_eq!((h.request_api_key, h.request_api_version), (36, 2));
    let RequestBody::SaslAuthenticate(auth) = body else {
        panic!()
    };
    assert_eq!(&auth.auth_bytes[..], b"\0alice\0secret");
    assert!(
        events(&mut c).is_empty(),
        "not ready before the broker accepts"
    );
    c.handle_data(
        now,
        &answer(
            &h,
            ResponseBody::SaslAuthenticate(SaslAuthenticateResponse::default()),
        ),
    );
    assert_eq!(events(&mut c), vec![ConnectionEvent::Ready]);
    let (h, _) = broker.requests(&transmit(&mut c)).remove(0);
    assert_eq!(h.request_api_key, 3);
    let _ = id;
}

#[test]
fn sasl_plain_raw_tokens_after_handshake_v0() {
    let now = Instant::now();
    let mut broker = FakeBroker::new();
    let mut c = Connection::new(
        ConnectionConfig {
            sasl: sasl(SaslMechanism::Plain),
            probe_api_versions: false,
            broker_version: BrokerVersion::new(0, 10, 0),
            ..config()
        },
        &mut Rng::new(1),
    );
    c.handle_connected(now);
    let (h, _) = broker.requests(&transmit(&mut c)).remove(0);
    assert_eq!((h.request_api_key, h.request_api_version), (17, 0));
    c.handle_data(
        now,
        &answer(&h, ResponseBody::SaslHandshake(Default::default())),
    );
    let bytes = transmit(&mut c);
    assert_eq!(bytes, b"\0\0\0\x0d\0alice\0secret");
    let token = broker.raw_frames(&bytes);
    assert_eq!(token.len(), 1);
    // PLAIN's answer is an empty token frame.
    c.handle_data(now, &[0, 0, 0, 0]);
    assert_eq!(events(&mut c), vec![ConnectionEvent::Ready]);
}

#[test]
fn sasl_failures_are_typed() {
    let now = Instant::now();
    // The broker does not offer the mechanism.
    let mut broker = FakeBroker::new();
    let mut c = Connection::new(
        ConnectionConfig {
            sasl: sasl(SaslMechanism::ScramSha256),
            ..config()
        },
        &mut Rng::new(1),
    );
    c.handle_connected(now);
    let (h, _) = broker.requests(&transmit(&mut c)).remove(0);
    c.handle_data(now, &answer(&h, all_api_versions()));
    let (h, _) = broker.requests(&transmit(&mut c)).remove(0);
    let refusal = SaslHandshakeResponse {
        error_code: ErrorCode::UnsupportedSaslMechanism.code(),
        mechanisms: vec!["PLAIN".into()],
        ..Default::default()
    };
    c.handle_data(now, &answer(&h, ResponseBody::SaslHandshake(refusal)));
    assert!(matches!(
        &events(&mut c)[0],
        ConnectionEvent::Closed { error: Some(Error::Broker { code: ErrorCode::UnsupportedSaslMechanism, context }), .. }
            if context.contains("PLAIN")
    ));

    // SCRAM with a server that signs wrongly.
    let mut broker = FakeBroker::new();
    let mut c = Connection::new(
        ConnectionConfig {
            sasl: sasl(SaslMechanism::ScramSha256),
            ..config()
        },
        &mut Rng::new(1),
    );
    c.handle_connected(now);
    let (h, _) = broker.requests(&transmit(&mut c)).remove(0);
    c.handle_data(now, &answer(&h, all_api_versions()));
    let (h, _) = broker.requests(&transmit(&mut c)).remove(0);
    c.handle_data(
        now,
        &answer(&h, ResponseBody::SaslHandshake(Default::default())),
    );
    let (h, body) = broker.requests(&transmit(&mut c)).remove(0);
    let RequestBody::SaslAuthenticate(first) = body else {
        panic!()
    };
    let first = String::from_utf8(first.auth_bytes.to_vec()).unwrap();
    let nonce = first.strip_prefix("n,,n=alice,r=").unwrap();
    let server_first = format!("r={nonce}srv,s=c2FsdA==,i=4096");
    let resp = |bytes: Vec<u8>| {
        ResponseBody::SaslAuthenticate(SaslAuthenticateResponse {
            auth_bytes: Bytes::from(bytes),
            ..Default::default()
        })
    };
    c.handle_data(now, &answer(&h, resp(server_first.into_bytes())));
    let (h, body) = broker.requests(&transmit(&mut c)).remove(0);
    let RequestBody::SaslAuthenticate(last) = body else {
        panic!()
    };
    assert!(last.auth_bytes.starts_with(b"c=biws,r="));
    c.handle_data(now, &answer(&h, resp(b"v=AAAA".to_vec())));
    assert!(matches!(
        &events(&mut c)[0],
        ConnectionEvent::Closed {
            error: Some(Error::Sasl(_)),
            ..
        }
    ));
    assert_eq!(c.state(), ConnectionState::Closed);
}

#[test]
fn transport_closure_fails_pending_requests_retriably() {
    let now = Instant::now();
    let mut broker = FakeBroker::new();
    let mut c = ready(config(), &mut broker, now);
    let id = c.send(now, metadata_body(), VersionChoice::Highest);
    transmit(&mut c);
    c.handle_closed(
        now,
        Some(TransportError::new(TransportErrorKind::Closed, "reset")),
    );
    let evs = events(&mut c);
    assert!(matches!(
        &evs[0],
        ConnectionEvent::Closed {
            api_versions_unanswered: false,
            ..
        }
    ));
    match &evs[1] {
        ConnectionEvent::Response {
            id: i,
            result: Err(e @ Error::Transport(_)),
            ..
        } => {
            assert_eq!(*i, id);
            assert!(e.is_retriable());
        }
        other => panic!("{other:?}"),
    }
    // Sending on a closed connection fails at once.
    let late = c.send(now, metadata_body(), VersionChoice::Highest);
    assert!(
        matches!(&events(&mut c)[..], [ConnectionEvent::Response { id, result: Err(_), .. }] if *id == late)
    );
}

quickcheck::quickcheck! {
    /// Arbitrary bytes from the broker, in arbitrary pieces, never panic the connection;
    /// it ends either still usable or closed with every request answered.
    fn arbitrary_broker_bytes_never_panic(chunks: Vec<Vec<u8>>, sasl_on: bool) -> bool {
        let now = Instant::now();
        let mut c = Connection::new(
            ConnectionConfig {
                max_frame_size: 4096,
                sasl: if sasl_on { sasl(SaslMechanism::ScramSha512) } else { None },
                ..config()
            },
            &mut Rng::new(5),
        );
        let ids: Vec<RequestId> = (0..3)
            .map(|_| c.send(now, all_topics_v0(), VersionChoice::Highest))
            .collect();
        c.handle_connected(now);
        for chunk in &chunks {
            c.handle_data(now, chunk);
            transmit(&mut c);
        }
        c.handle_timeout(now + Duration::from_secs(60));
        let answered: Vec<RequestId> = events(&mut c)
            .into_iter()
            .filter_map(|e| match e {
                ConnectionEvent::Response { id, .. } => Some(id),
                _ => None,
            })
            .collect();
        // Past every deadline, every request has been answered exactly once.
        answered.len() == ids.len() && ids.iter().all(|i| answered.contains(i))
    }
}

/// Issue 6, item 9c: requests whose deadlines pass at the same instant all fail with
/// `Timeout` (not only the first one found, the others as `Transport(Closed)`); a request
/// with a later deadline fails as a retriable closure.
#[test]
fn requests_timing_out_at_the_same_instant_all_end_as_timeout() {
    let now = Instant::now();
    let mut broker = FakeBroker::new();
    let mut c = ready(config(), &mut broker, now);
    let deadline = now + Duration::from_secs(2);
    let a = c.send_with_deadline(now, metadata_body(), VersionChoice::Highest, deadline);
    let b = c.send_with_deadline(now, metadata_body(), VersionChoice::Highest, deadline);
    let later = now + Duration::from_secs(9);
    let l = c.send_with_deadline(now, metadata_body(), VersionChoice::Highest, later);
    assert_eq!(broker.requests(&transmit(&mut c)).len(), 3);
    assert_eq!(c.poll_timeout(), Some(deadline));
    c.handle_timeout(deadline);
    let mut results = BTreeMap::new();
    for e in events(&mut c) {
        if let ConnectionEvent::Response { id, result, .. } = e {
            results.insert(id, result.unwrap_err());
        }
    }
    for id in [a, b] {
        assert!(
            matches!(results[&id], Error::Timeout { .. }),
            "{id:?}: {:?}",
            results[&id]
        );
    }
    assert!(
        matches!(&results[&l], Error::Transport(t) if t.kind == TransportErrorKind::Closed),
        "{:?}",
        results[&l]
    );
    assert_eq!(c.state(), ConnectionState::Closed);
}

/// Issue 6, item 9e: a Produce with acks=0 gets no answer from a broker. It finishes when
/// written, and its deadline does not close the connection under the other requests.
#[test]
fn a_produce_with_acks_0_is_done_when_written_and_does_not_hold_the_connection() {
    use crate::protocol::messages::ProduceRequest;
    let now = Instant::now();
    let mut broker = FakeBroker::new();
    let mut c = ready(config(), &mut broker, now);
    let produce = RequestBody::Produce(ProduceRequest {
        acks: 0,
        timeout_ms: 1000,
        ..Default::default()
    });
    let soon = now + Duration::from_secs(1);
    let p = c.send_with_deadline(now, produce, VersionChoice::Highest, soon);
    let m = c.send(now, metadata_body(), VersionChoice::Highest);
    let written = broker.requests(&transmit(&mut c));
    assert_eq!(written.len(), 2);
    assert_eq!(
        c.in_flight(),
        1,
        "only the Metadata request awaits an answer"
    );
    match &events(&mut c)[..] {
        [ConnectionEvent::Response {
            id,
            result: Ok(ResponseBody::Produce(r)),
            sent: Some((ApiKey::Produce, _)),
        }] => {
            assert_eq!(*id, p);
            assert!(r.responses.is_empty());
        }
        other => panic!("{other:?}"),
    }
    // The produce deadline passes: nothing happens to the connection.
    assert_ne!(c.poll_timeout(), Some(soon));
    c.handle_timeout(soon);
    assert!(events(&mut c).is_empty());
    assert_eq!(c.state(), ConnectionState::Ready);
    let (h, _) = &written[1];
    let answer = answer(h, ResponseBody::Metadata(MetadataResponse::default()));
    c.handle_data(soon, &answer);
    assert!(matches!(
        &events(&mut c)[..],
        [ConnectionEvent::Response { id, result: Ok(_), .. }] if *id == m
    ));
}
