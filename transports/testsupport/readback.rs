//! Reading a topic back with another client (kcat, confluent-kafka, PyKafka), for the
//! transports' interop tests. Included with `#[path]` by each transport's tests.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::process::Command;

/// One message as another client read it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Message {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

/// Which client reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// kcat (librdkafka), speaking Kafka 0.9.0.1's protocol.
    Kcat09,
    /// confluent-kafka from the venv (`$GRETE_PYTHON`), for modern brokers.
    Confluent,
    /// PyKafka 2.8.0's SimpleConsumer (Kafka 0.9).
    PyKafka,
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s == "-" {
        return None;
    }
    let b = s.as_bytes();
    Some(
        (0..b.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
            .collect(),
    )
}

/// Reads `count` messages of `topic` from the beginning, sorted by partition and offset.
/// Panics (failing the test) if the reader fails or gets fewer within its timeout.
pub fn read_back(reader: Reader, brokers: &str, topic: &str, count: usize) -> Vec<Message> {
    let out = match reader {
        Reader::Kcat09 => {
            let kcat = std::env::var("GRETE_KCAT").unwrap_or_else(|_| "kcat".into());
            Command::new(kcat)
                .args(["-C", "-b", brokers, "-t", topic, "-o", "beginning", "-e"])
                .args(["-c", &count.to_string()])
                .args(["-X", "api.version.request=false"])
                .args(["-X", "broker.version.fallback=0.9.0.1"])
                // Partition, offset, key and value lengths then bytes: binary-safe.
                .args(["-f", "%p %o %K %S %k%s\n"])
                .output()
                .expect("run kcat")
        }
        Reader::Confluent | Reader::PyKafka => {
            let python = std::env::var("GRETE_PYTHON").expect("GRETE_PYTHON");
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/readback.py");
            let client = if reader == Reader::Confluent {
                "confluent"
            } else {
                "pykafka"
            };
            Command::new(python)
                .args([script, client, brokers, topic, &count.to_string(), "90"])
                .output()
                .expect("run readback.py")
        }
    };
    assert!(
        out.status.success(),
        "{reader:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut messages = match reader {
        Reader::Kcat09 => parse_kcat(&out.stdout),
        _ => String::from_utf8(out.stdout)
            .expect("utf-8")
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                Message {
                    partition: f[0].parse().expect("partition"),
                    offset: f[1].parse().expect("offset"),
                    key: unhex(f[2]),
                    value: unhex(f[3]),
                }
            })
            .collect(),
    };
    messages.sort();
    assert_eq!(
        messages.len(),
        count,
        "{reader:?} read {} messages",
        messages.len()
    );
    messages
}

/// Parses kcat's `%p %o %K %S %k%s\n` lines (lengths -1 for null).
fn parse_kcat(mut out: &[u8]) -> Vec<Message> {
    let mut messages = Vec::new();
    let field = |out: &mut &[u8]| -> String {
        let end = out.iter().position(|&b| b == b' ').expect("field");
        let f = String::from_utf8_lossy(&out[..end]).into_owned();
        *out = &out[end + 1..];
        f
    };
    while !out.is_empty() {
        let partition = field(&mut out).parse().expect("partition");
        let offset = field(&mut out).parse().expect("offset");
        let klen: i64 = field(&mut out).parse().expect("key length");
        let vlen: i64 = field(&mut out).parse().expect("value length");
        let take = |n: i64, out: &mut &[u8]| -> Option<Vec<u8>> {
            (n >= 0).then(|| {
                let v = out[..n as usize].to_vec();
                *out = &out[n as usize..];
                v
            })
        };
        let key = take(klen, &mut out);
        let value = take(vlen, &mut out);
        assert_eq!(out.first(), Some(&b'\n'), "kcat line end");
        out = &out[1..];
        messages.push(Message {
            partition,
            offset,
            key,
            value,
        });
    }
    messages
}

/// The messages of each partition in offset order.
pub fn by_partition(messages: &[Message]) -> BTreeMap<i32, Vec<&Message>> {
    let mut m: BTreeMap<i32, Vec<&Message>> = BTreeMap::new();
    for msg in messages {
        m.entry(msg.partition).or_default().push(msg);
    }
    m
}
