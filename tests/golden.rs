//! Golden tests: frames captured from real brokers and real clients (Kafka 0.9.0.1 with
//! kcat and PyKafka 2.8.0 as writers; tansu 0.6.0 with confluent-kafka as the writer).
//! How each capture was made is in `tests/golden/README.md`; `scripts/capture_golden.py`
//! made them. Every frame must decode, re-encode to the very same bytes, and the records
//! in it must be the ones the manifest says were written.

use std::path::Path;

use bytes::Bytes;
use grete::protocol::header::decode_request;
use grete::protocol::messages::{ApiKey, RequestBody, RequestHeader, ResponseBody, ResponseHeader};
use grete::protocol::primitives::{expect_end, Decode, Encode};
use grete::protocol::records::{Batches, DecodeLimits, Record};
use serde_json::Value;

fn golden_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden"))
}

fn read(name: &str) -> Bytes {
    Bytes::from(std::fs::read(golden_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}")))
}

fn captures() -> Vec<Value> {
    let text = std::fs::read_to_string(golden_dir().join("manifest.json")).unwrap();
    let manifest: Value = serde_json::from_str(&text).unwrap();
    manifest["captures"].as_array().unwrap().clone()
}

fn api_key(name: &str) -> ApiKey {
    match name {
        "Fetch" => ApiKey::Fetch,
        "Produce" => ApiKey::Produce,
        "Metadata" => ApiKey::Metadata,
        "ApiVersions" => ApiKey::ApiVersions,
        other => panic!("no golden support for {other}"),
    }
}

/// Decodes a request frame and checks that it re-encodes faithfully.
fn request_round_trip(name: &str, frame: Bytes) -> (RequestHeader, RequestBody) {
    let (header, body) = decode_request(frame.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
    let key = body.api_key();
    let version = header.request_api_version;
    let mut out = Vec::new();
    header
        .encode(&mut out, key.request_header_version(version))
        .unwrap();
    body.encode(&mut out, version).unwrap();
    assert_same_encoding(name, key.is_flexible(version), &out, &frame, |b| {
        decode_request(b).unwrap() == (header.clone(), body.clone())
    });
    (header, body)
}

/// Decodes a response frame and checks that it re-encodes faithfully.
fn response_round_trip(name: &str, key: ApiKey, version: i16, frame: Bytes) -> ResponseBody {
    let mut buf = frame.clone();
    let header_version = key.response_header_version(version);
    let header = ResponseHeader::decode(&mut buf, header_version).unwrap();
    let body =
        ResponseBody::decode(key, version, &mut buf).unwrap_or_else(|e| panic!("{name}: {e}"));
    expect_end(&buf).unwrap();
    let mut out = Vec::new();
    header.encode(&mut out, header_version).unwrap();
    body.encode(&mut out, version).unwrap();
    assert_same_encoding(name, key.is_flexible(version), &out, &frame, |mut b| {
        let h = ResponseHeader::decode(&mut b, header_version).unwrap();
        let again = ResponseBody::decode(key, version, &mut b).unwrap();
        b.is_empty() && h == header && again == body
    });
    body
}

/// Classic versions must re-encode to the very bytes captured. In flexible versions a
/// peer may write tagged fields that hold their default value (tansu does, for all four
/// ApiVersions tags) where Kafka's encoder, and grete's, leave them out; there the
/// re-encoding must decode to the same value instead.
fn assert_same_encoding(
    name: &str,
    flexible: bool,
    ours: &[u8],
    captured: &Bytes,
    same_value: impl FnOnce(Bytes) -> bool,
) {
    if ours == &captured[..] {
        return;
    }
    assert!(flexible, "{name}: re-encodes to different bytes");
    assert!(
        same_value(Bytes::copy_from_slice(ours)),
        "{name}: re-encoding changes the value"
    );
}

fn text(v: &Value) -> Option<Bytes> {
    v.as_str().map(|s| Bytes::from(s.to_owned()))
}

fn decode_records(name: &str, raw: Bytes) -> (Vec<Record>, Batches) {
    let mut batches = Batches::new(raw, DecodeLimits::default());
    let mut out = Vec::new();
    for batch in &mut batches {
        let batch = batch.unwrap_or_else(|e| panic!("{name}: batch: {e}"));
        for r in batch.records() {
            out.push(r.unwrap_or_else(|e| panic!("{name}: record: {e}")));
        }
    }
    (out, batches)
}

fn assert_records(name: &str, got: &[Record], want: &[Value]) {
    assert_eq!(got.len(), want.len(), "{name}: record count");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.offset, w["offset"].as_i64().unwrap(), "{name}");
        assert_eq!(g.key, text(&w["key"]), "{name}: key at {}", g.offset);
        assert_eq!(g.value, text(&w["value"]), "{name}: value at {}", g.offset);
        let want_headers: Vec<(String, Option<Bytes>)> = w["headers"]
            .as_array()
            .map(|hs| {
                hs.iter()
                    .map(|h| (h[0].as_str().unwrap().to_owned(), text(&h[1])))
                    .collect()
            })
            .unwrap_or_default();
        let got_headers: Vec<(String, Option<Bytes>)> = g
            .headers
            .iter()
            .map(|h| (h.key.clone(), h.value.clone()))
            .collect();
        assert_eq!(got_headers, want_headers, "{name}: headers at {}", g.offset);
    }
}

fn check_fetch(name: &str, c: &Value, body: &ResponseBody) {
    let ResponseBody::Fetch(resp) = body else {
        panic!("{name}: not a fetch response")
    };
    let part = &resp.responses[0].partitions[0];
    assert_eq!(part.error_code, 0, "{name}");
    assert_eq!(
        part.high_watermark,
        c["high_watermark"].as_i64().unwrap(),
        "{name}"
    );
    let (all, batches) = decode_records(name, part.records.clone().unwrap_or_default());
    let fetch_offset = c["fetch_offset"].as_i64().unwrap();
    if let Some(in_frame) = c["records_in_frame"].as_array() {
        assert_records(name, &all, in_frame);
    }
    // A consumer yields only what it asked for: a compressed 0.9 wrapper may start earlier.
    let wanted: Vec<Record> = all
        .into_iter()
        .filter(|r| r.offset >= fetch_offset)
        .collect();
    assert_records(name, &wanted, c["records"].as_array().unwrap());
    match c["partial_trailing_bytes"].as_u64() {
        Some(n) => {
            // `n` bytes of the last message arrived; `truncated` reports its full size
            // (the capture cut it 7 bytes short), so a consumer knows how much to ask for.
            assert_eq!(
                batches.truncated(),
                Some(n as usize + 7),
                "{name}: cut message"
            );
        }
        None => assert_eq!(batches.truncated(), None, "{name}"),
    }
    let last = wanted.last().map(|r| r.offset + 1);
    assert_eq!(batches.next_offset(), last, "{name}: where to fetch next");
}

fn check_produce_request(name: &str, c: &Value, body: &RequestBody) {
    let RequestBody::Produce(req) = body else {
        panic!("{name}: not a produce request")
    };
    let part = &req.topic_data[0].partition_data[0];
    let (records, _) = decode_records(name, part.records.clone().unwrap());
    let want = c["records"].as_array().unwrap();
    assert_eq!(records.len(), want.len(), "{name}: record count");
    for (g, w) in records.iter().zip(want) {
        assert_eq!(g.key, text(&w["key"]), "{name}");
        assert_eq!(g.value, text(&w["value"]), "{name}");
    }
    // Producers choose the offsets they send: librdkafka numbers inner messages 0..n-1,
    // PyKafka writes -1 everywhere. The broker assigns the real ones.
    if let Some(inner) = c["inner_offsets"].as_array() {
        let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
        let want: Vec<i64> = inner.iter().map(|o| o.as_i64().unwrap()).collect();
        assert_eq!(offsets, want, "{name}: inner offsets");
    }
}

#[test]
fn every_capture_decodes_re_encodes_and_holds_the_written_records() {
    let caps = captures();
    assert!(caps.len() >= 20, "the manifest lists the captures");
    for c in &caps {
        let name = c["name"].as_str().unwrap();
        let key = api_key(c["api"].as_str().unwrap());
        let version = c["version"].as_i64().unwrap() as i16;

        let (header, req) = request_round_trip(name, read(c["request"].as_str().unwrap()));
        assert_eq!(req.api_key(), key, "{name}");
        assert_eq!(header.request_api_version, version, "{name}");

        let body = response_round_trip(name, key, version, read(c["response"].as_str().unwrap()));
        match key {
            ApiKey::Fetch => check_fetch(name, c, &body),
            ApiKey::Produce => {
                let ResponseBody::Produce(resp) = &body else {
                    unreachable!()
                };
                let p = &resp.responses[0].partition_responses[0];
                assert_eq!(
                    p.error_code as i64,
                    c["expect"]["error_code"].as_i64().unwrap(),
                    "{name}"
                );
                assert_eq!(
                    p.base_offset,
                    c["expect"]["base_offset"].as_i64().unwrap(),
                    "{name}"
                );
                check_produce_request(name, c, &req);
            }
            ApiKey::Metadata => {
                let ResponseBody::Metadata(resp) = &body else {
                    unreachable!()
                };
                let topic = &resp.topics[0];
                assert_eq!(topic.name.as_deref(), c["topic"].as_str(), "{name}");
                if let Some(err) = c["expect_topic_error"].as_i64() {
                    assert_eq!(topic.error_code as i64, err, "{name}");
                }
                if let Some(n) = c["expect"]["partitions"].as_u64() {
                    assert_eq!(topic.partitions.len() as u64, n, "{name}");
                }
                if let Some(brokers) = c["expect"]["brokers"].as_array() {
                    let got: Vec<(i64, String, i64)> = resp
                        .brokers
                        .iter()
                        .map(|b| (b.node_id as i64, b.host.clone(), b.port as i64))
                        .collect();
                    let want: Vec<(i64, String, i64)> = brokers
                        .iter()
                        .map(|b| {
                            (
                                b[0].as_i64().unwrap(),
                                b[1].as_str().unwrap().to_owned(),
                                b[2].as_i64().unwrap(),
                            )
                        })
                        .collect();
                    assert_eq!(got, want, "{name}");
                }
            }
            ApiKey::ApiVersions => {
                let ResponseBody::ApiVersions(resp) = &body else {
                    unreachable!()
                };
                assert_eq!(resp.error_code, 0, "{name}");
                assert_eq!(
                    resp.api_keys.len() as u64,
                    c["expect"]["api_count"].as_u64().unwrap(),
                    "{name}"
                );
                for (api, k) in [("fetch", 1), ("metadata", 3), ("produce", 0)] {
                    if let Some(range) = c["expect"][api].as_array() {
                        let a = resp.api_keys.iter().find(|a| a.api_key == k).unwrap();
                        assert_eq!(a.min_version as i64, range[0].as_i64().unwrap(), "{name}");
                        assert_eq!(a.max_version as i64, range[1].as_i64().unwrap(), "{name}");
                    }
                }
            }
            _ => unreachable!(),
        }
    }
}

#[test]
fn corrupting_a_golden_message_set_is_detected_by_its_crc() {
    let frame = read("kafka09-fetch-v0-raw.response.bin");
    let body = response_round_trip("raw", ApiKey::Fetch, 0, frame);
    let ResponseBody::Fetch(resp) = body else {
        unreachable!()
    };
    let raw = resp.responses[0].partitions[0].records.clone().unwrap();
    let mut bad = raw.to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0x55;
    let mut batches = Batches::new(Bytes::from(bad), DecodeLimits::default());
    let errors = (&mut batches).filter(|b| b.is_err()).count();
    assert_eq!(
        errors, 1,
        "the flipped byte fails exactly one message's CRC"
    );
}
