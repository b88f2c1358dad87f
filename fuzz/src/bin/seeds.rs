//! Writes seed corpora of valid inputs for every fuzz target into `fuzz/corpus/<target>/`,
//! so that the fuzzers start from real encodings rather than from nothing.
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --bin seeds [corpus-dir]
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use grete::protocol::compression::{self, CompressOptions, Compression, SnappyFraming};
use grete::protocol::frame::write_frame;
use grete::protocol::records::legacy::{encode_message_set, MessageSetOptions};
use grete::protocol::records::{
    encode_record_batch, BatchHeader, Batches, ControlRecord, ControlRecordType, DecodeLimits,
    Header, Record, TimestampType,
};

struct Corpus {
    root: PathBuf,
    written: usize,
}

impl Corpus {
    fn put(&mut self, target: &str, name: &str, data: &[u8]) {
        let dir = self.root.join(target);
        fs::create_dir_all(&dir).expect("create corpus dir");
        fs::write(dir.join(format!("seed-{name}")), data).expect("write seed");
        self.written += 1;
    }
}

fn records(n: usize, base_offset: i64, with_headers: bool) -> Vec<Record> {
    (0..n)
        .map(|i| Record {
            offset: base_offset + i as i64,
            timestamp: 1_700_000_000_000 + i as i64 * 7,
            timestamp_type: TimestampType::CreateTime,
            key: (i % 3 != 0).then(|| Bytes::from(format!("key-{i}"))),
            value: (i % 5 != 4).then(|| Bytes::from("value ".repeat(i % 7 + 1))),
            headers: if with_headers && i % 2 == 0 {
                vec![
                    Header {
                        key: "h".into(),
                        value: Some(Bytes::from_static(b"hv")),
                    },
                    Header {
                        key: "null".into(),
                        value: None,
                    },
                ]
            } else {
                Vec::new()
            },
        })
        .collect()
}

/// Checks that a records seed decodes whole, with CRCs checked, to `expected` records.
fn assert_records_decode(buf: &[u8], expected: usize) {
    let mut batches = Batches::new(Bytes::copy_from_slice(buf), DecodeLimits::default());
    let mut n = 0;
    for batch in &mut batches {
        let batch = batch.expect("seed batch decodes");
        for r in batch.records() {
            r.expect("seed record decodes");
            n += 1;
        }
    }
    assert_eq!(n, expected, "seed record count");
}

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

fn frames(c: &mut Corpus) {
    let bodies: [&[u8]; 4] = [b"", b"a", b"hello frames", &[7u8; 300]];
    let mut stream = Vec::new();
    for b in bodies {
        write_frame(&mut stream, |buf| {
            buf.extend_from_slice(b);
            Ok(())
        })
        .expect("frame");
    }
    for (i, (max, cuts)) in [
        (1024u16, &[][..]),
        (300, &[1, 2, 3][..]),
        (12, &[0, 5, 255][..]),
        (299, &[4][..]),
    ]
    .iter()
    .enumerate()
    {
        let mut seed = max.to_le_bytes().to_vec();
        seed.push(cuts.len() as u8);
        seed.extend_from_slice(cuts);
        seed.extend_from_slice(&stream);
        c.put("frame_decoder", &format!("{i}"), &seed);
    }
}

fn compressed(c: &mut Corpus) {
    let mut big = Vec::new();
    for i in 0..4000u32 {
        big.extend_from_slice(format!("record {i} of a repetitive stream; ").as_bytes());
    }
    let inputs: [(&str, &[u8]); 4] = [
        ("empty", b""),
        ("short", b"hello hello hello hello"),
        ("binary", &[0, 1, 2, 3, 255, 254, 0, 0, 0, 0, 0, 0, 9]),
        ("big", &big),
    ];
    for codec in CODECS.into_iter().skip(1) {
        let target = format!("decompress_{}", codec.name());
        for (name, input) in inputs {
            let variants: &[(&str, CompressOptions, u8)] = &[
                ("default", CompressOptions::default(), 0),
                (
                    "raw-legacy",
                    CompressOptions {
                        snappy_framing: SnappyFraming::Raw,
                        lz4_legacy_header_checksum: true,
                        level: Some(1),
                    },
                    1 | 2 | 4 | 8,
                ),
            ];
            for (vname, options, flags) in variants {
                let mut packed = Vec::new();
                compression::compress(codec, input, &mut packed, options).expect("compress");
                let back = compression::decompress(codec, &packed, input.len()).expect("seed");
                assert_eq!(&back[..], input, "seed decompresses");
                // Limit: the exact size, or 1 MiB.
                for (lname, max) in [("exact", input.len()), ("mib", 1 << 20)] {
                    let mut seed = (max as u32).to_le_bytes()[..3].to_vec();
                    seed.push(*flags);
                    seed.extend_from_slice(&packed);
                    c.put(&target, &format!("{name}-{vname}-{lname}"), &seed);
                }
            }
        }
    }
}

fn v2_batches(c: &mut Corpus) {
    for codec in CODECS {
        for (i, (n, headers, ts)) in [
            (1, false, TimestampType::CreateTime),
            (5, true, TimestampType::CreateTime),
            (3, false, TimestampType::LogAppendTime),
        ]
        .into_iter()
        .enumerate()
        {
            let header = BatchHeader {
                base_offset: 100,
                compression: codec,
                timestamp_type: ts,
                producer_id: if i == 1 { 42 } else { -1 },
                producer_epoch: if i == 1 { 3 } else { -1 },
                base_sequence: if i == 1 { 10 } else { -1 },
                transactional: i == 1,
                ..BatchHeader::default()
            };
            let mut buf = Vec::new();
            encode_record_batch(&mut buf, &header, &records(n, 100, headers)).expect("batch");
            assert_records_decode(&buf, n);
            for verify in [0u8, 1] {
                let mut seed = vec![verify];
                seed.extend_from_slice(&buf);
                c.put(
                    "record_batch",
                    &format!("{}-{i}-crc{verify}", codec.name()),
                    &seed,
                );
            }
        }
    }
    // Two batches back to back, a control marker, and a batch cut short.
    let mut buf = Vec::new();
    encode_record_batch(&mut buf, &BatchHeader::default(), &records(2, 0, false)).expect("b");
    let header = BatchHeader {
        base_offset: 2,
        transactional: true,
        producer_id: 7,
        producer_epoch: 0,
        ..BatchHeader::default()
    };
    ControlRecord {
        version: 0,
        kind: ControlRecordType::Commit,
        coordinator_epoch: Some(5),
    }
    .encode_marker_batch(&mut buf, &header, 1_700_000_000_000)
    .expect("marker");
    let whole = buf.len();
    let h3 = BatchHeader {
        base_offset: 3,
        compression: Compression::Gzip,
        ..BatchHeader::default()
    };
    encode_record_batch(&mut buf, &h3, &records(4, 3, true)).expect("b");
    assert_records_decode(&buf, 7);
    let mut seed = vec![1];
    seed.extend_from_slice(&buf);
    c.put("record_batch", "three", &seed);
    seed.truncate(1 + whole + 30);
    c.put("record_batch", "truncated", &seed);
}

fn legacy_sets(c: &mut Corpus) {
    for magic in [0i8, 1] {
        for codec in CODECS.into_iter().take(4) {
            for (i, ts) in [TimestampType::CreateTime, TimestampType::LogAppendTime]
                .into_iter()
                .enumerate()
            {
                if magic == 0 && i == 1 {
                    continue;
                }
                let options = MessageSetOptions {
                    magic,
                    compression: codec,
                    timestamp_type: ts,
                    ..MessageSetOptions::default()
                };
                let mut buf = Vec::new();
                encode_message_set(&mut buf, &options, &records(4, 50, false)).expect("set");
                assert_records_decode(&buf, 4);
                // Flags: bit 0 verify CRCs, bit 1 magic 1.
                for verify in [0u8, 1] {
                    let mut seed = vec![verify | (magic as u8) << 1];
                    seed.extend_from_slice(&buf);
                    let name = format!("m{magic}-{}-{i}-crc{verify}", codec.name());
                    c.put("message_set", &name, &seed);
                }
            }
        }
    }
}

/// Seeds for the targets that drive state machines: operation sequences that reach the
/// interesting states (negotiated, authenticating, answered), and JSON registrations.
fn peers(c: &mut Corpus) {
    // connection: probe; send Metadata; connected; answer ApiVersions validly; answer
    // Metadata with 16 bytes; advance time.
    let mut probe = vec![0x01, 0x00, 0x00, 0x00, 0x05, 0x02, 0x00, 0x01, 0x10];
    probe.extend_from_slice(&[0; 16]);
    probe.extend_from_slice(&[0x04, 0x20]);
    c.put("connection", "probe", &probe);
    // connection: SASL PLAIN without probing: connected, handshake answered, token.
    c.put(
        "connection",
        "sasl",
        &[
            0x02, 0x05, 0x02, 0x00, 0x01, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x30,
        ],
    );
    // client: update the cluster, metadata, list offsets, a raw request, time passing;
    // then the same on a 0.9 cluster with a corrupted answer.
    c.put(
        "client",
        "modern",
        &[
            0x00, 0x00, 0x00, 0x07, 0x10, 0x02, 0x00, 0x07, 0x10, 0x01, 0x00, 0x07, 0x10, 0x05,
            0x00, 0x07, 0x40,
        ],
    );
    c.put(
        "client",
        "kafka09",
        &[
            0x01, 0x00, 0x00, 0x07, 0x10, 0x06, 0x00, 0x10, 0x00, 0x00, 0x07, 0x10, 0x02, 0x01,
            0x07, 0x40,
        ],
    );
    // sasl: SCRAM-SHA-256 with RFC 7677's server messages (another client nonce).
    for (pick, name) in [(1u8, "scram256"), (2, "scram512"), (0, "plain")] {
        let mut s = vec![pick];
        for msg in [
            &b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"[..],
            b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
        ] {
            s.extend_from_slice(&(msg.len() as u16).to_le_bytes());
            s.extend_from_slice(msg);
        }
        c.put("sasl", name, &s);
    }
    c.put("zk_json", "kafka09", br#"{"jmx_port":-1,"timestamp":"1732150000000","endpoints":["PLAINTEXT://kafka-1:9092","SSL://kafka-1:9093"],"host":"kafka-1","version":2,"port":9092}"#);
    c.put("zk_json", "legacy", br#"{ "host" : "h\u0031", "port" : 9092, "version": 1, "a": [1, -2.5e3, true, false, null, {"b": "\n"}] }"#);
}

fn main() {
    let root = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"));
    let mut c = Corpus { root, written: 0 };
    frames(&mut c);
    compressed(&mut c);
    v2_batches(&mut c);
    legacy_sets(&mut c);
    peers(&mut c);
    grete_fuzz::messages::seeds(&mut |target: &str, name: &str, data: &[u8]| {
        c.put(target, name, data)
    });
    println!("{} seeds written under {}", c.written, c.root.display());
}
