//! The data path of the mock: Produce, Fetch and ListOffsets.

use bytes::Bytes;

use super::config::BrokerMode;
use super::idempotence::{BatchSeq, SeqCheck};
use super::{Reply, State};
use crate::protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use crate::protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use crate::protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use crate::protocol::messages::{
    FetchRequest, FetchResponse, InitProducerIdRequest, InitProducerIdResponse, ListOffsetsRequest,
    ListOffsetsResponse, ProduceRequest, ProduceResponse, ResponseBody,
};
use crate::protocol::records::{Batches, DecodeLimits};
use crate::protocol::ErrorCode;

/// The producer fields of an idempotent producer's batch (the first v2 batch with a producer
/// id); `None` for other producers and legacy message sets.
fn producer_seq(records: &Bytes) -> Option<BatchSeq> {
    let batch = Batches::new(records.clone(), DecodeLimits::default())
        .next()?
        .ok()?;
    (batch.magic == 2 && batch.producer_id >= 0).then_some(BatchSeq {
        producer_id: batch.producer_id,
        epoch: batch.producer_epoch,
        first_seq: batch.base_sequence,
        count: batch.record_count,
    })
}

impl State {
    /// InitProducerId without transactions: a new producer id at epoch 0, or, when the
    /// request names an id this cluster issued with its current epoch, the next epoch
    /// (KIP-360).
    pub(super) fn init_producer_id(&mut self, r: &InitProducerIdRequest) -> ResponseBody {
        let mut out = InitProducerIdResponse {
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        };
        if r.transactional_id.is_some() {
            // The mock has no transaction coordinator.
            out.error_code = ErrorCode::TransactionalIdAuthorizationFailed.code();
            return ResponseBody::InitProducerId(out);
        }
        let (id, epoch) = match self.producer_ids.get(&r.producer_id) {
            Some(&epoch) if r.producer_id >= 0 && epoch == r.producer_epoch => {
                (r.producer_id, epoch.wrapping_add(1).max(0))
            }
            Some(_) => {
                out.error_code = ErrorCode::InvalidProducerEpoch.code();
                return ResponseBody::InitProducerId(out);
            }
            None => (
                self.producer_ids
                    .keys()
                    .next_back()
                    .map_or(1000, |last| last + 1),
                0,
            ),
        };
        self.producer_ids.insert(id, epoch);
        out.producer_id = id;
        out.producer_epoch = epoch;
        ResponseBody::InitProducerId(out)
    }

    pub(super) fn produce(&mut self, broker: i32, v: i16, r: &ProduceRequest) -> Reply {
        let allow_v2 = self
            .broker(broker)
            .is_some_and(|b| b.cfg.mode == BrokerMode::Modern);
        let min_isr = self.cfg.min_insync_replicas;
        let mut responses = Vec::new();
        for t in &r.topic_data {
            let mut partition_responses = Vec::new();
            for pd in &t.partition_data {
                let result = if !matches!(r.acks, -1..=1) {
                    Err(ErrorCode::InvalidRequiredAcks)
                } else {
                    self.led_by(&t.name, pd.index, broker).map(|_| ())
                };
                let result = result.and_then(|()| {
                    let p = self
                        .partition_mut(&t.name, pd.index)
                        .ok_or(ErrorCode::UnknownTopicOrPartition)?;
                    if r.acks == -1 && p.isr.len() < min_isr {
                        return Err(ErrorCode::NotEnoughReplicas);
                    }
                    let records = pd.records.clone().unwrap_or_default();
                    let seq = producer_seq(&records);
                    if let Some(seq) = &seq {
                        if let SeqCheck::Duplicate(base) = p.producers.check(seq)? {
                            return Ok((base, p.log.log_start_offset));
                        }
                    }
                    let epoch = p.leader_epoch;
                    let base = p.log.append(&records, epoch, allow_v2)?;
                    if let Some(seq) = &seq {
                        p.producers.record(seq, base);
                    }
                    Ok((base, p.log.log_start_offset))
                });
                let mut out = PartitionProduceResponse {
                    index: pd.index,
                    ..Default::default()
                };
                match result {
                    Ok((base, start)) => {
                        self.appended = true;
                        out.base_offset = base;
                        if v >= 5 {
                            out.log_start_offset = start;
                        }
                    }
                    Err(code) => {
                        out.error_code = code.code();
                        out.base_offset = -1;
                    }
                }
                partition_responses.push(out);
            }
            responses.push(TopicProduceResponse {
                name: t.name.clone(),
                partition_responses,
                ..Default::default()
            });
        }
        if r.acks == 0 {
            return Reply::Nothing;
        }
        Reply::Respond(ResponseBody::Produce(ProduceResponse {
            responses,
            ..Default::default()
        }))
    }

    /// Whether a fetch can be answered now: it has `min_bytes` of records, or some
    /// partition has an error (a broker answers those at once rather than wait).
    pub(crate) fn fetch_ready(&self, broker: i32, r: &FetchRequest, v: i16) -> bool {
        let ResponseBody::Fetch(f) = self.fetch_response(broker, r, v) else {
            return true;
        };
        let partitions = || f.responses.iter().flat_map(|t| &t.partitions);
        let bytes: usize = partitions()
            .map(|p| p.records.as_ref().map_or(0, |b| b.len()))
            .sum();
        bytes >= r.min_bytes.max(0) as usize || partitions().any(|p| p.error_code != 0)
    }

    pub(crate) fn fetch_response(&self, broker: i32, r: &FetchRequest, v: i16) -> ResponseBody {
        let mut budget = if v >= 3 {
            r.max_bytes.max(0) as usize
        } else {
            usize::MAX
        };
        let mut first = true;
        let mut responses = Vec::new();
        for t in &r.topics {
            let (name, known) = if v >= 13 {
                match self.topic_by_id(&t.topic_id) {
                    Some(n) => (n.to_owned(), true),
                    None => (String::new(), false),
                }
            } else {
                (t.topic.clone(), true)
            };
            let mut partitions = Vec::new();
            for fp in &t.partitions {
                let mut pd = PartitionData {
                    partition_index: fp.partition,
                    records: Some(Bytes::new()),
                    ..Default::default()
                };
                let led = if known {
                    self.led_by(&name, fp.partition, broker)
                } else {
                    Err(ErrorCode::UnknownTopicId)
                };
                match led {
                    Err(code) => {
                        pd.error_code = code.code();
                        pd.high_watermark = -1;
                    }
                    Ok(p) => {
                        let log = &p.log;
                        pd.high_watermark = log.high_watermark;
                        if v >= 4 {
                            pd.last_stable_offset = log.high_watermark;
                        }
                        if v >= 5 {
                            pd.log_start_offset = log.log_start_offset;
                        }
                        if fp.fetch_offset < log.log_start_offset
                            || fp.fetch_offset > log.high_watermark
                        {
                            pd.error_code = ErrorCode::OffsetOutOfRange.code();
                        } else {
                            let limit = (fp.partition_max_bytes.max(0) as usize).min(budget);
                            let mut out = Vec::new();
                            for b in &log.batches[log.first_batch_from(fp.fetch_offset)..] {
                                if out.len() + b.bytes.len() <= limit {
                                    out.extend_from_slice(&b.bytes);
                                } else if v >= 3 && first && out.is_empty() {
                                    // KIP-74: the first batch comes whole so the
                                    // consumer can always make progress.
                                    out.extend_from_slice(&b.bytes);
                                    break;
                                } else {
                                    if v < 3 {
                                        // Old brokers cut the set at the byte limit.
                                        let room = limit - out.len();
                                        out.extend_from_slice(&b.bytes[..room]);
                                    }
                                    break;
                                }
                            }
                            budget = budget.saturating_sub(out.len());
                            first &= out.is_empty();
                            pd.records = Some(Bytes::from(out));
                        }
                    }
                }
                partitions.push(pd);
            }
            let mut out = FetchableTopicResponse {
                partitions,
                ..Default::default()
            };
            if v >= 13 {
                out.topic_id = t.topic_id;
            } else {
                out.topic = name;
            }
            responses.push(out);
        }
        ResponseBody::Fetch(FetchResponse {
            responses,
            ..Default::default()
        })
    }

    pub(super) fn list_offsets(&self, broker: i32, v: i16, r: &ListOffsetsRequest) -> ResponseBody {
        let topics = r
            .topics
            .iter()
            .map(|t| ListOffsetsTopicResponse {
                name: t.name.clone(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|lp| {
                        let mut out = ListOffsetsPartitionResponse {
                            partition_index: lp.partition_index,
                            ..Default::default()
                        };
                        let p = match self.led_by(&t.name, lp.partition_index, broker) {
                            Ok(p) => p,
                            Err(code) => {
                                out.error_code = code.code();
                                return out;
                            }
                        };
                        let log = &p.log;
                        let found = match lp.timestamp {
                            -1 => Some((log.high_watermark, -1)),
                            -2 => Some((log.log_start_offset, -1)),
                            -3 => log
                                .batches
                                .iter()
                                .max_by_key(|b| b.max_timestamp)
                                .map(|b| (b.base_offset, b.max_timestamp)),
                            ts => log.offset_for_time(ts),
                        };
                        if v == 0 {
                            let mut offsets = match (lp.timestamp, found) {
                                (-1, _) => vec![log.high_watermark, log.log_start_offset],
                                (_, Some((o, _))) => vec![o],
                                (_, None) => vec![log.high_watermark],
                            };
                            offsets.dedup();
                            offsets.truncate(lp.max_num_offsets.max(0) as usize);
                            out.old_style_offsets = offsets;
                        } else {
                            if let Some((offset, ts)) = found {
                                out.offset = offset;
                                out.timestamp = ts;
                            }
                            if v >= 4 {
                                out.leader_epoch = p.leader_epoch;
                            }
                        }
                        out
                    })
                    .collect(),
                ..Default::default()
            })
            .collect();
        ResponseBody::ListOffsets(ListOffsetsResponse {
            topics,
            ..Default::default()
        })
    }
}
