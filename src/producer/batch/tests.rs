use bytes::Bytes;
use quickcheck::{quickcheck, TestResult};

use super::*;
use crate::protocol::records::{Batches, DecodeLimits, Header, Record};

const FORMATS: [RecordFormat; 3] = [
    RecordFormat::MessageSetV0,
    RecordFormat::MessageSetV1,
    RecordFormat::RecordBatch,
];

fn codecs(format: RecordFormat) -> impl Iterator<Item = Compression> {
    Compression::ALL.into_iter().filter(move |c| {
        c.is_enabled() && (format == RecordFormat::RecordBatch || *c != Compression::Zstd)
    })
}

fn read_back(bytes: &[u8]) -> (Vec<crate::protocol::records::Batch>, Vec<Record>) {
    let batches: Vec<_> = Batches::new(Bytes::copy_from_slice(bytes), DecodeLimits::default())
        .map(|b| b.unwrap())
        .collect();
    let records = batches
        .iter()
        .flat_map(|b| b.records().map(|r| r.unwrap()).collect::<Vec<_>>())
        .collect();
    (batches, records)
}

/// A record's key, value and one optional header value.
type Input = (Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>);

quickcheck! {
    /// Every format and codec: what is appended reads back in order, offsets 0..n, with
    /// timestamps where the format has them and headers in v2; the stamp lands in the v2
    /// header; sealing twice gives the same bytes.
    fn sealed_batches_read_back(inputs: Vec<Input>, ts: u32, seq: u16) -> TestResult {
        if inputs.is_empty() {
            return TestResult::discard();
        }
        let base = 1_700_000_000_000 + i64::from(ts);
        for format in FORMATS {
            for compression in codecs(format) {
                let mut b = BatchBuilder::new(format);
                for (i, (k, v, h)) in inputs.iter().enumerate() {
                    // Timestamps go back and forth: the v2 base is the first, not the least.
                    let t = base + if i % 2 == 0 { i as i64 } else { -(i as i64) };
                    let headers: Vec<(&str, Option<&[u8]>)> = match (format, h) {
                        (RecordFormat::RecordBatch, Some(h)) => vec![("h", Some(h.as_slice()))],
                        _ => Vec::new(),
                    };
                    b.append(t, k.as_deref(), v.as_deref(), &headers).unwrap();
                }
                let stamp = ProducerStamp { producer_id: 77, producer_epoch: 3, base_sequence: i32::from(seq) };
                let seal = Seal { compression, compress_options: CompressOptions::default(), stamp };
                let mut out = vec![9];
                let size = b.seal(&mut out, &seal).unwrap();
                assert_eq!(size, out.len() - 1);
                if compression == Compression::None {
                    assert!(size <= b.size(), "{format:?} {size} > {}", b.size());
                }
                let mut again = Vec::new();
                b.seal(&mut again, &seal).unwrap();
                assert_eq!(again, out[1..]);

                let (batches, records) = read_back(&out[1..]);
                assert_eq!(records.len(), inputs.len(), "{format:?} {compression:?}");
                if format == RecordFormat::RecordBatch {
                    assert_eq!(batches.len(), 1);
                    let batch = &batches[0];
                    assert_eq!((batch.producer_id, batch.producer_epoch, batch.base_sequence), (77, 3, i32::from(seq)));
                    assert_eq!(batch.compression, compression);
                }
                for (i, (r, (k, v, h))) in records.iter().zip(&inputs).enumerate() {
                    assert_eq!(r.offset, i as i64);
                    assert_eq!(r.key.as_deref(), k.as_deref());
                    assert_eq!(r.value.as_deref(), v.as_deref());
                    let t = base + if i % 2 == 0 { i as i64 } else { -(i as i64) };
                    assert_eq!(r.timestamp, if format == RecordFormat::MessageSetV0 { -1 } else { t });
                    let want_headers = match (format, h) {
                        (RecordFormat::RecordBatch, Some(h)) => vec![Header { key: "h".into(), value: Some(Bytes::copy_from_slice(h)) }],
                        _ => Vec::new(),
                    };
                    assert_eq!(r.headers, want_headers);
                }
            }
        }
        TestResult::passed()
    }

    /// Uncompressed, sealing in place gives the bytes sealing by copy gives, in every
    /// format; a spent builder restored from them seals again (another stamp) as a fresh
    /// one would, and its buffer comes back for the next batch.
    fn sealing_in_place_gives_the_sealed_bytes(values: Vec<Vec<u8>>, seq: u16) -> TestResult {
        if values.is_empty() {
            return TestResult::discard();
        }
        for format in FORMATS {
            let mut b = BatchBuilder::new(format);
            for (i, v) in values.iter().enumerate() {
                b.append(1_700_000_000_000 + i as i64, None, Some(v), &[] as &[(&str, Option<&[u8]>)]).unwrap();
            }
            let seal = |base_sequence| Seal {
                compression: Compression::None,
                compress_options: CompressOptions::default(),
                stamp: ProducerStamp { producer_id: 5, producer_epoch: 1, base_sequence },
            };
            let (first, second) = (seal(i32::from(seq)), seal(i32::from(seq) + 9));
            let mut by_copy = Vec::new();
            b.seal(&mut by_copy, &first).unwrap();
            let mut again = Vec::new();
            b.seal(&mut again, &second).unwrap();
            let (size, count) = (b.size(), b.record_count());

            let in_place = b.seal_in_place(&first).unwrap().expect("uncompressed");
            assert_eq!(in_place, by_copy, "{format:?}");
            assert!(b.is_spent());
            assert_eq!((b.size(), b.record_count()), (in_place.len(), count));
            assert!(in_place.len() <= size);
            assert!(b.seal_in_place(&first).unwrap().is_none(), "spent: nothing to seal");

            b.restore(&in_place);
            let mut resealed = Vec::new();
            b.seal(&mut resealed, &second).unwrap();
            assert_eq!(resealed, again, "{format:?}");

            let spent_again = b.seal_in_place(&second).unwrap().unwrap();
            let at = spent_again.as_ptr();
            b.recycle(spent_again);
            b.reset(format);
            b.append(1, None, Some(b"x"), &[] as &[(&str, Option<&[u8]>)]).unwrap();
            assert_eq!(b.records.as_ptr(), at, "the buffer is reused");
        }
        TestResult::passed()
    }
}

#[test]
fn message_sets_refuse_headers_and_stay_unchanged() {
    for format in [RecordFormat::MessageSetV0, RecordFormat::MessageSetV1] {
        let mut b = BatchBuilder::new(format);
        b.append::<Header>(1, None, Some(b"a"), &[]).unwrap();
        let size = b.size();
        let err = b.append(2, None, Some(b"b"), &[("k", None)]).unwrap_err();
        assert!(
            matches!(
                err,
                EncodeError::UnsupportedField {
                    field: "headers",
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!((b.record_count(), b.size()), (1, size));
    }
}

#[test]
fn message_sets_refuse_zstd() {
    let mut b = BatchBuilder::new(RecordFormat::MessageSetV1);
    b.append::<Header>(1, None, Some(b"a"), &[]).unwrap();
    let seal = Seal {
        compression: Compression::Zstd,
        compress_options: CompressOptions::default(),
        stamp: ProducerStamp::NONE,
    };
    let mut out = Vec::new();
    let err = b.seal(&mut out, &seal).unwrap_err();
    assert!(
        matches!(
            err,
            EncodeError::UnsupportedField {
                field: "compression (zstd)",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(out.is_empty());
}

#[test]
fn an_empty_batch_seals_to_nothing_and_reset_keeps_capacity() {
    let mut b = BatchBuilder::new(RecordFormat::RecordBatch);
    let mut out = Vec::new();
    let seal = Seal {
        compression: Compression::None,
        compress_options: CompressOptions::default(),
        stamp: ProducerStamp::NONE,
    };
    assert_eq!(b.seal(&mut out, &seal).unwrap(), 0);
    for i in 0..100 {
        b.append::<Header>(i, Some(b"key"), Some(&[7; 100]), &[])
            .unwrap();
    }
    let capacity = b.capacity();
    b.reset(RecordFormat::MessageSetV1);
    assert!(b.is_empty());
    assert_eq!(b.capacity(), capacity);
    assert_eq!(b.format(), RecordFormat::MessageSetV1);
}

#[test]
fn produce_versions_choose_the_format() {
    let formats: Vec<_> = (0..=11).map(RecordFormat::for_produce_version).collect();
    assert_eq!(
        &formats[..4],
        &[
            RecordFormat::MessageSetV0,
            RecordFormat::MessageSetV0,
            RecordFormat::MessageSetV1,
            RecordFormat::RecordBatch,
        ]
    );
    assert!(formats[3..].iter().all(|f| *f == RecordFormat::RecordBatch));
}
