//! Group coordination in the mock: FindCoordinator, OffsetCommit, OffsetFetch.

use std::collections::BTreeMap;

use super::handlers::{described, Committed};
use super::{BrokerState, State};
use crate::protocol::messages::find_coordinator_response::Coordinator;
use crate::protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use crate::protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use crate::protocol::messages::{
    FindCoordinatorRequest, FindCoordinatorResponse, OffsetCommitRequest, OffsetCommitResponse,
    OffsetFetchRequest, OffsetFetchResponse, ResponseBody,
};
use crate::protocol::ErrorCode;

impl State {
    /// The coordinator of a group: a live broker chosen by a stable hash of the key.
    fn coordinator_for(&self, key: &str) -> Option<&BrokerState> {
        let live: Vec<&BrokerState> = self.brokers.iter().filter(|b| b.up).collect();
        if live.is_empty() {
            return None;
        }
        // FNV-1a: stable across runs and platforms.
        let mut h: u32 = 0x811c_9dc5;
        for b in key.bytes() {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        Some(live[h as usize % live.len()])
    }

    pub(super) fn find_coordinator(&self, v: i16, r: &FindCoordinatorRequest) -> ResponseBody {
        let mut out = FindCoordinatorResponse::default();
        if v >= 4 {
            out.coordinators = r
                .coordinator_keys
                .iter()
                .map(|key| match self.coordinator_for(key) {
                    Some(b) => Coordinator {
                        key: key.clone(),
                        node_id: b.cfg.id,
                        host: b.cfg.host.clone(),
                        port: i32::from(b.cfg.port),
                        error_message: None,
                        ..Default::default()
                    },
                    None => Coordinator {
                        key: key.clone(),
                        node_id: -1,
                        port: -1,
                        error_code: ErrorCode::CoordinatorNotAvailable.code(),
                        error_message: described(ErrorCode::CoordinatorNotAvailable),
                        ..Default::default()
                    },
                })
                .collect();
        } else {
            match self.coordinator_for(&r.key) {
                Some(b) => {
                    out.node_id = b.cfg.id;
                    out.host = b.cfg.host.clone();
                    out.port = i32::from(b.cfg.port);
                    if v >= 1 {
                        out.error_message = None;
                    }
                }
                None => {
                    out.error_code = ErrorCode::CoordinatorNotAvailable.code();
                    out.node_id = -1;
                    out.port = -1;
                    if v >= 1 {
                        out.error_message = described(ErrorCode::CoordinatorNotAvailable);
                    }
                }
            }
        }
        ResponseBody::FindCoordinator(out)
    }

    fn is_coordinator(&self, broker: i32, group: &str) -> bool {
        self.coordinator_for(group)
            .is_some_and(|b| b.cfg.id == broker)
    }

    pub(super) fn offset_commit(
        &mut self,
        broker: i32,
        _v: i16,
        r: &OffsetCommitRequest,
    ) -> ResponseBody {
        let coordinator = self.is_coordinator(broker, &r.group_id);
        let mut topics = Vec::new();
        for t in &r.topics {
            let mut partitions = Vec::new();
            for p in &t.partitions {
                let code = if !coordinator {
                    ErrorCode::NotCoordinator.code()
                } else if self.partition(&t.name, p.partition_index).is_none() {
                    ErrorCode::UnknownTopicOrPartition.code()
                } else {
                    self.offsets.insert(
                        (r.group_id.clone(), t.name.clone(), p.partition_index),
                        (p.committed_offset, p.committed_metadata.clone()),
                    );
                    0
                };
                partitions.push(OffsetCommitResponsePartition {
                    partition_index: p.partition_index,
                    error_code: code,
                    ..Default::default()
                });
            }
            topics.push(OffsetCommitResponseTopic {
                name: t.name.clone(),
                partitions,
                ..Default::default()
            });
        }
        ResponseBody::OffsetCommit(OffsetCommitResponse {
            topics,
            ..Default::default()
        })
    }

    /// The committed offsets of a group: for the partitions asked, or all it has.
    fn group_offsets(
        &self,
        group: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
    ) -> Vec<(String, Vec<Committed>)> {
        let wanted = topics.unwrap_or_else(|| {
            let mut all: BTreeMap<String, Vec<i32>> = BTreeMap::new();
            for (g, t, p) in self.offsets.keys() {
                if g == group {
                    all.entry(t.clone()).or_default().push(*p);
                }
            }
            all.into_iter().collect()
        });
        wanted
            .into_iter()
            .map(|(t, ps)| {
                let parts = ps
                    .into_iter()
                    .map(
                        |p| match self.offsets.get(&(group.to_owned(), t.clone(), p)) {
                            Some((o, m)) => (p, *o, m.clone()),
                            None => (p, -1, Some(String::new())),
                        },
                    )
                    .collect();
                (t, parts)
            })
            .collect()
    }

    pub(super) fn offset_fetch(&self, broker: i32, v: i16, r: &OffsetFetchRequest) -> ResponseBody {
        let not_coordinator = ErrorCode::NotCoordinator.code();
        let mut out = OffsetFetchResponse::default();
        if v >= 8 {
            out.groups = r
                .groups
                .iter()
                .map(|g| {
                    let coordinator = self.is_coordinator(broker, &g.group_id);
                    let asked = g.topics.as_ref().map(|ts| {
                        ts.iter()
                            .map(|t| (t.name.clone(), t.partition_indexes.clone()))
                            .collect()
                    });
                    let topics = if coordinator {
                        self.group_offsets(&g.group_id, asked)
                            .into_iter()
                            .map(|(name, ps)| OffsetFetchResponseTopics {
                                name,
                                partitions: ps
                                    .into_iter()
                                    .map(|(p, o, m)| OffsetFetchResponsePartitions {
                                        partition_index: p,
                                        committed_offset: o,
                                        metadata: m,
                                        ..Default::default()
                                    })
                                    .collect(),
                                ..Default::default()
                            })
                            .collect()
                    } else {
                        Vec::new()
                    };
                    OffsetFetchResponseGroup {
                        group_id: g.group_id.clone(),
                        topics,
                        error_code: if coordinator { 0 } else { not_coordinator },
                        ..Default::default()
                    }
                })
                .collect();
            return ResponseBody::OffsetFetch(out);
        }
        let coordinator = self.is_coordinator(broker, &r.group_id);
        let asked = r.topics.as_ref().map(|ts| {
            ts.iter()
                .map(|t| (t.name.clone(), t.partition_indexes.clone()))
                .collect()
        });
        if !coordinator && v >= 2 {
            out.error_code = not_coordinator;
            return ResponseBody::OffsetFetch(out);
        }
        out.topics = self
            .group_offsets(&r.group_id, asked)
            .into_iter()
            .map(|(name, ps)| OffsetFetchResponseTopic {
                name,
                partitions: ps
                    .into_iter()
                    .map(|(p, o, m)| OffsetFetchResponsePartition {
                        partition_index: p,
                        committed_offset: o,
                        metadata: m,
                        error_code: if coordinator { 0 } else { not_coordinator },
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect();
        ResponseBody::OffsetFetch(out)
    }
}
