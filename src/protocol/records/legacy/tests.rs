use bytes::Bytes;
use quickcheck::quickcheck;

use super::*;
use crate::protocol::records::Batches;

/// A record's key and value.
type KeyValue = (Option<Vec<u8>>, Option<Vec<u8>>);

fn codecs() -> impl Iterator<Item = Compression> {
    [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
    ]
    .into_iter()
    .filter(|c| c.is_enabled())
}

quickcheck! {
    /// What a producer appends record by record reads back in order with offsets 0..n, in
    /// both magics and every codec that magic allows.
    fn appended_records_read_back(values: Vec<KeyValue>, ts: u32) -> bool {
        let base_ts = 1_700_000_000_000 + i64::from(ts);
        for magic in [0i8, 1] {
            for compression in codecs() {
                let options = MessageSetOptions { magic, compression, ..Default::default() };
                let mut out = vec![0xAA; 3]; // the encoder appends after what is there
                let mut enc = MessageSetEncoder::new(&mut out, &options).unwrap();
                for (i, (k, v)) in values.iter().enumerate() {
                    enc.append(base_ts + i as i64, k.as_deref(), v.as_deref()).unwrap();
                }
                assert_eq!(enc.record_count() as usize, values.len());
                let size = enc.finish().unwrap();
                assert_eq!(size, out.len() - 3);
                assert_eq!(&out[..3], &[0xAA; 3]);
                let read: Vec<Record> = Batches::new(Bytes::copy_from_slice(&out[3..]), DecodeLimits::default())
                    .flat_map(|b| b.unwrap().records().map(|r| r.unwrap()).collect::<Vec<_>>())
                    .collect();
                assert_eq!(read.len(), values.len(), "magic {magic} {compression:?}");
                for (i, (r, (k, v))) in read.iter().zip(&values).enumerate() {
                    assert_eq!(r.offset, i as i64);
                    assert_eq!(r.key.as_deref(), k.as_deref());
                    assert_eq!(r.value.as_deref(), v.as_deref());
                    let want_ts = if magic == 0 { -1 } else { base_ts + i as i64 };
                    assert_eq!(r.timestamp, want_ts);
                }
            }
        }
        true
    }
}

#[test]
fn offsets_must_increase() {
    let mut out = Vec::new();
    let mut enc = MessageSetEncoder::new(&mut out, &MessageSetOptions::default()).unwrap();
    enc.append_at(5, 0, None, Some(b"a")).unwrap();
    assert!(matches!(
        enc.append_at(5, 0, None, Some(b"b")),
        Err(EncodeError::Invalid(_))
    ));
}

#[test]
fn zstd_and_magic_2_are_refused() {
    let mut out = Vec::new();
    let zstd = MessageSetOptions {
        compression: Compression::Zstd,
        ..Default::default()
    };
    assert!(matches!(
        MessageSetEncoder::new(&mut out, &zstd),
        Err(EncodeError::UnsupportedField {
            field: "compression (zstd)",
            ..
        })
    ));
    let v2 = MessageSetOptions {
        magic: 2,
        ..Default::default()
    };
    assert!(matches!(
        MessageSetEncoder::new(&mut out, &v2),
        Err(EncodeError::UnsupportedVersion { version: 2, .. })
    ));
}

#[test]
fn an_empty_compressed_set_writes_nothing() {
    let mut out = Vec::new();
    let gzip = MessageSetOptions {
        compression: Compression::Gzip,
        ..Default::default()
    };
    let enc = MessageSetEncoder::new(&mut out, &gzip).unwrap();
    assert_eq!(enc.finish().unwrap(), 0);
    assert!(out.is_empty());
}

#[test]
fn a_wrapper_takes_the_largest_timestamp_even_when_negative() {
    let mut out = Vec::new();
    let options = MessageSetOptions {
        compression: Compression::Gzip,
        timestamp_type: TimestampType::LogAppendTime,
        ..Default::default()
    };
    let mut enc = MessageSetEncoder::new(&mut out, &options).unwrap();
    enc.append(-5, None, Some(b"a")).unwrap();
    enc.append(-7, None, Some(b"b")).unwrap();
    enc.finish().unwrap();
    let batch = Batches::new(Bytes::from(out), DecodeLimits::default())
        .next()
        .unwrap()
        .unwrap();
    // With log-append time, inner records read the wrapper's timestamp.
    assert_eq!(batch.max_timestamp, -5);
    let timestamps: Vec<i64> = batch.records().map(|r| r.unwrap().timestamp).collect();
    assert_eq!(timestamps, [-5, -5]);
}
