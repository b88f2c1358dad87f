//! The consumer state machine on its own, driven by the fuzzer: fetches and lookups taken
//! for either broker in any version, answered with record batches around the asked
//! offset (v2 batches or legacy message sets, some compressed, some control or
//! transactional, some cut short), raw fuzzer
//! bytes, any error code, a lost connection; seeks, pauses, batches taken, time passing.
//!
//! Invariants checked after every step:
//! - per partition, delivered offsets only grow, and after a seek to `n` none is below `n`
//!   (nothing fetched before a seek is delivered after it);
//! - a batch never yields a record below its own `first_offset`;
//! - no record comes from a fetch built before the partition's last seek or reset (each
//!   record's value names the seek generation its fetch was built under);
//! - the timer contract: after `handle_timeout(now)`, `poll_timeout` is `None` or later;
//! - nothing panics, whatever the answers.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use grete::consumer::{
    Consumer, ConsumerConfig, ConsumerEvent, ConsumerId, OffsetReset, OffsetSpec,
};
use grete::error::{Error, TransportError};
use grete::protocol::compression::{CompressOptions, Compression};
use grete::protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use grete::protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use grete::protocol::messages::{FetchResponse, ListOffsetsResponse};
use grete::protocol::records::legacy::{encode_message_set, MessageSetOptions};
use grete::protocol::records::{encode_record_batch, BatchHeader, Record, TimestampType};

use crate::take_le;

/// Error codes a Fetch or ListOffsets answer may carry (0 is success): offset out of
/// range, corrupt, unknown partition, not leader, timeouts, authorization, session errors.
const CODES: [i16; 12] = [0, 0, 0, 1, 2, 3, 6, 7, 29, 70, 71, 74];

const PARTITIONS: i32 = 3;

/// Runs one input.
pub fn check_consumer(mut data: &[u8]) {
    let flags = take_le(&mut data, 1) as u8;
    let config = ConsumerConfig {
        queued_max_bytes: 2_048 + 512 * usize::from(flags % 8),
        fetch_message_max_bytes: 256 + 256 * usize::from((flags >> 3) % 4),
        queued_max_messages: 4 + usize::from(flags >> 5) * 8,
        auto_offset_reset: [
            OffsetReset::Earliest,
            OffsetReset::Latest,
            OffsetReset::Error,
        ][usize::from(flags >> 6) % 3],
        fetch_sessions: flags & 1 == 0,
        ..ConsumerConfig::default()
    };
    let mut c = Consumer::new(ConsumerId(0), config);
    // Per partition: the lowest offset a delivery may have (the position set last, or
    // one past the last delivered).
    let mut floor: BTreeMap<i32, i64> = BTreeMap::new();
    for p in 0..PARTITIONS {
        let start = take_le(&mut data, 1) as i64;
        c.assign("t", p, OffsetSpec::Offset(start)).expect("assign");
        floor.insert(p, start);
    }
    let leader_of = |_: &str, p: i32| Some(p % 2);
    let mut now = Instant::now();
    // Per partition: seeks and resets so far.
    let mut generation = [0u32; PARTITIONS as usize];
    let mut fetches = Vec::new();
    let mut lookups = Vec::new();
    let mut steps = 0;
    while !data.is_empty() && steps < 300 {
        steps += 1;
        // The leader index for the polls below (rebuilt after an assignment changed);
        // in debug builds it checks that the count of partitions waiting for a lookup
        // kept up with every change of phase.
        c.sync_leaders(0, &leader_of);
        let op = take_le(&mut data, 1) as u8;
        let arg = take_le(&mut data, 1) as u8;
        match op % 10 {
            0 | 1 => {
                let version = [0, 1, 3, 4, 7, 11][usize::from(arg) % 6];
                if let Some((req, token)) = c.poll_fetch(i32::from(arg >> 4) % 2, version) {
                    fetches.push((req, token, version, generation));
                }
            }
            2 | 3 if !fetches.is_empty() => {
                let (req, token, version, built) = fetches.remove(usize::from(arg) % fetches.len());
                let mut partitions = Vec::new();
                for t in &req.topics {
                    for fp in &t.partitions {
                        let how = take_le(&mut data, 1) as u8;
                        let g = built
                            .get(fp.partition as usize)
                            .copied()
                            .unwrap_or(u32::MAX);
                        partitions.push(answer(fp.partition, fp.fetch_offset, g, how, &mut data));
                    }
                }
                let response = FetchResponse {
                    error_code: if arg % 16 == 15 { 70 } else { 0 },
                    session_id: i32::from(arg >> 4),
                    responses: vec![FetchableTopicResponse {
                        topic: "t".into(),
                        partitions,
                        ..Default::default()
                    }],
                    ..Default::default()
                };
                let lost = Error::Transport(TransportError::closed("fuzz"));
                let result = if arg % 7 == 0 {
                    Err(&lost)
                } else {
                    Ok(&response)
                };
                c.handle_fetch_response(now, token, result, version);
            }
            4 => {
                let version = [0, 1, 4][usize::from(arg) % 3];
                if let Some(l) = c.poll_lookup(i32::from(arg >> 4) % 2, version) {
                    lookups.push(l);
                }
            }
            5 if !lookups.is_empty() => {
                let (req, token) = lookups.remove(usize::from(arg) % lookups.len());
                let response = ListOffsetsResponse {
                    topics: req
                        .topics
                        .iter()
                        .map(|t| ListOffsetsTopicResponse {
                            name: t.name.clone(),
                            partitions: t
                                .partitions
                                .iter()
                                .map(|p| ListOffsetsPartitionResponse {
                                    partition_index: p.partition_index,
                                    error_code: CODES[usize::from(arg >> 3) % CODES.len()],
                                    old_style_offsets: vec![i64::from(arg)],
                                    offset: i64::from(arg),
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                };
                let lost = Error::Transport(TransportError::closed("fuzz"));
                let result = if arg % 5 == 0 {
                    Err(&lost)
                } else {
                    Ok(&response)
                };
                c.handle_lookup_response(now, token, result);
            }
            6 => {
                let p = i32::from(arg) % PARTITIONS;
                let to = i64::from(arg >> 2);
                if c.seek("t", p, OffsetSpec::Offset(to)).is_ok() {
                    floor.insert(p, to);
                    generation[p as usize] += 1;
                }
            }
            7 => {
                let p = i32::from(arg) % PARTITIONS;
                let _ = if arg & 0x80 != 0 {
                    c.pause("t", p)
                } else {
                    c.resume("t", p)
                };
            }
            8 => {
                now += Duration::from_millis(u64::from(arg) * 10);
                c.handle_timeout(now);
                assert!(
                    c.poll_timeout().map_or(true, |t| t > now),
                    "a timer due after handle_timeout"
                );
            }
            _ => {
                while let Some(batch) = c.poll_batch() {
                    let p = batch.partition();
                    for r in batch.records() {
                        let Ok(r) = r else { break };
                        assert!(
                            r.offset >= batch.first_offset(),
                            "a record below the batch's first offset"
                        );
                        let low = floor.entry(p).or_insert(0);
                        assert!(
                            r.offset >= *low,
                            "offset {} delivered below {} (partition {p})",
                            r.offset,
                            *low
                        );
                        *low = r.offset + 1;
                        if let Some(v) = r.value.filter(|v| v.len() >= 5 && v[0] == b'G') {
                            let g = u32::from_le_bytes([v[1], v[2], v[3], v[4]]);
                            assert_eq!(
                                g, generation[p as usize],
                                "a record fetched before a seek or reset (partition {p})"
                            );
                        }
                    }
                }
            }
        }
        while let Some(e) = c.poll_event() {
            // A reset by policy moves the position, backwards too.
            if let ConsumerEvent::PositionSet {
                partition, offset, ..
            } = e
            {
                floor.insert(partition, offset);
                generation[partition as usize] += 1;
            }
        }
    }
}

/// One partition's answer: records around `offset` (`how` picks the shape), an error
/// code, or raw bytes from the input.
fn answer(
    partition: i32,
    offset: i64,
    generation: u32,
    how: u8,
    data: &mut &[u8],
) -> PartitionData {
    let code = if how % 8 == 7 {
        CODES[usize::from(how >> 3) % CODES.len()]
    } else {
        0
    };
    let records = match how % 4 {
        0 => {
            let n = (take_le(data, 1) as usize).min(data.len());
            let raw = Bytes::copy_from_slice(&data[..n]);
            *data = &data[n..];
            raw
        }
        _ => {
            // A v2 batch starting a little before or after the asked offset.
            let base = offset + i64::from(how >> 5) - 2;
            let count = 1 + i64::from(how >> 2 & 7);
            let header = BatchHeader {
                base_offset: base,
                compression: if how & 2 != 0 {
                    Compression::Gzip
                } else {
                    Compression::None
                },
                control: how & 0x40 != 0 && how & 1 != 0,
                transactional: how & 0x40 != 0,
                ..BatchHeader::default()
            };
            let records: Vec<Record> = (0..count)
                .map(|i| Record {
                    offset: base + i,
                    timestamp: 1_700_000_000_000,
                    timestamp_type: TimestampType::CreateTime,
                    key: None,
                    value: Some(value(generation, 16 + usize::from(how))),
                    headers: Vec::new(),
                })
                .collect();
            let mut out = Vec::new();
            let encoded = if how & 0x20 != 0 && how & 0x40 == 0 {
                // A Kafka 0.9 / 0.10 message set (consumers read runs of plain messages
                // as one batch).
                let options = MessageSetOptions {
                    magic: (how & 1) as i8,
                    compression: header.compression,
                    compress_options: CompressOptions::default(),
                    timestamp_type: TimestampType::CreateTime,
                };
                encode_message_set(&mut out, &options, &records)
            } else {
                encode_record_batch(&mut out, &header, &records)
            };
            if encoded.is_err() {
                out.clear();
            }
            // Sometimes cut short, as a size limit cuts the last batch.
            let keep = if how & 0x80 != 0 {
                out.len() * 2 / 3
            } else {
                out.len()
            };
            out.truncate(keep);
            Bytes::from(out)
        }
    };
    PartitionData {
        partition_index: partition,
        error_code: code,
        high_watermark: offset + 20,
        last_stable_offset: offset + 20,
        log_start_offset: (offset - 5).max(0),
        records: Some(records),
        ..Default::default()
    }
}

/// A record's value: `G`, the seek generation its fetch was built under, then filler.
fn value(generation: u32, size: usize) -> Bytes {
    let mut v = vec![b'G'];
    v.extend_from_slice(&generation.to_le_bytes());
    v.resize(size.max(5), b'v');
    Bytes::from(v)
}
