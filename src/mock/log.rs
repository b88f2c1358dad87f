//! A partition's log: stored batches with broker-assigned offsets.

use bytes::Bytes;

use crate::protocol::compression::Compression;
use crate::protocol::records::legacy::{encode_message_set, MessageSetOptions};
use crate::protocol::records::{Batches, DecodeLimits, Record};
use crate::protocol::ErrorCode;

/// One stored batch (a v2 batch or one legacy message / wrapper), offsets rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredBatch {
    pub(super) base_offset: i64,
    pub(super) last_offset: i64,
    pub(super) max_timestamp: i64,
    pub(super) bytes: Bytes,
}

/// A partition's replicated log, as far as the mock cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Log {
    pub(super) batches: Vec<StoredBatch>,
    pub(super) log_start_offset: i64,
    pub(super) high_watermark: i64,
}

impl Log {
    /// Validates `records` whole, then appends them as a broker does: the first record
    /// gets the high watermark as its offset. Returns the base offset.
    pub(super) fn append(
        &mut self,
        records: &Bytes,
        leader_epoch: i32,
        allow_v2: bool,
    ) -> Result<i64, ErrorCode> {
        let mut pending = Vec::new();
        let mut next = self.high_watermark;
        let mut pos = 0usize;
        let mut batches = Batches::new(records.clone(), DecodeLimits::default());
        for batch in &mut batches {
            let batch = batch.map_err(|_| ErrorCode::CorruptMessage)?;
            if batch.magic == 2 && !allow_v2 {
                return Err(ErrorCode::CorruptMessage);
            }
            let raw = records.slice(pos..pos + batch.size_in_bytes);
            pos += batch.size_in_bytes;
            let count = i64::from(batch.record_count.max(1));
            let span = if batch.magic == 2 {
                batch.last_offset.wrapping_sub(batch.base_offset).max(0) + 1
            } else {
                count
            };
            let base = next;
            let last = base + span - 1;
            let bytes = rewrite(&batch, raw, base, last, leader_epoch)?;
            pending.push(StoredBatch {
                base_offset: base,
                last_offset: last,
                max_timestamp: batch.max_timestamp,
                bytes,
            });
            next = last + 1;
        }
        if batches.truncated().is_some() || pos != records.len() {
            return Err(ErrorCode::CorruptMessage);
        }
        let base = self.high_watermark;
        self.batches.extend(pending);
        self.high_watermark = next;
        Ok(base)
    }

    /// The index of the first stored batch holding offsets at or after `offset`.
    pub(super) fn first_batch_from(&self, offset: i64) -> usize {
        self.batches.partition_point(|b| b.last_offset < offset)
    }

    /// Drops everything before `offset` (as retention would), whole batches only.
    pub(super) fn truncate_before(&mut self, offset: i64) {
        let offset = offset.clamp(self.log_start_offset, self.high_watermark);
        let keep = self.first_batch_from(offset);
        self.batches.drain(..keep);
        self.log_start_offset = offset;
    }

    /// The first offset whose batch's max timestamp is at least `timestamp`.
    pub(super) fn offset_for_time(&self, timestamp: i64) -> Option<(i64, i64)> {
        self.batches
            .iter()
            .find(|b| b.max_timestamp >= timestamp)
            .map(|b| (b.base_offset.max(self.log_start_offset), b.max_timestamp))
    }
}

/// Writes the assigned offsets into a batch's bytes, the way the broker does on append.
fn rewrite(
    batch: &crate::protocol::records::Batch,
    raw: Bytes,
    base: i64,
    last: i64,
    leader_epoch: i32,
) -> Result<Bytes, ErrorCode> {
    let mut out = raw.to_vec();
    match (batch.magic, batch.compression) {
        (2, _) => {
            // Base offset and partition leader epoch sit before the CRC'd part.
            out[..8].copy_from_slice(&base.to_be_bytes());
            out[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
        }
        (_, Compression::None) => out[..8].copy_from_slice(&base.to_be_bytes()),
        (1, _) => {
            // Inner offsets are relative; the wrapper carries the last absolute one.
            out[..8].copy_from_slice(&last.to_be_bytes());
        }
        (_, compression) => {
            // Magic 0 wrappers hold absolute inner offsets: recompress with new ones.
            let mut records: Vec<Record> = Vec::new();
            for (i, r) in batch.records().enumerate() {
                let mut r = r.map_err(|_| ErrorCode::CorruptMessage)?;
                r.offset = base + i as i64;
                records.push(r);
            }
            out.clear();
            let options = MessageSetOptions {
                magic: 0,
                compression,
                ..MessageSetOptions::default()
            };
            encode_message_set(&mut out, &options, &records)
                .map_err(|_| ErrorCode::CorruptMessage)?;
        }
    }
    Ok(Bytes::from(out))
}
