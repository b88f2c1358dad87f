//! Consumer group offsets: `commit_offsets` and `fetch_offsets` operations. Each finds the
//! group's coordinator (FindCoordinator, GroupCoordinator on 0.9) and asks it, in the
//! highest version both sides speak (OffsetCommit v0 stores in ZooKeeper on 0.8.2, v1+ in
//! Kafka). A coordinator that moved or is loading sends the operation back to
//! FindCoordinator after a backoff, until the operation's deadline.
//!
//! Offsets mean the next offset to read, as everywhere in grete (and as Kafka stores them).

use std::time::Instant;

use super::ops::{OpKind, Outcome, Spec};
use super::{Client, OpId, Output, PartitionOffset, Req, Target};
use crate::connection::{ApiVersions, VersionChoice};
use crate::error::Error;
use crate::protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use crate::protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use crate::protocol::messages::{
    ApiKey, FindCoordinatorRequest, OffsetCommitRequest, OffsetFetchRequest, RequestBody,
    ResponseBody,
};
use crate::protocol::ErrorCode;

/// The newest versions spoken: FindCoordinator v4+ batches keys, OffsetFetch v8+ batches
/// groups, OffsetCommit v9+ belongs to KIP-848 groups.
const MAX_FIND_COORDINATOR: i16 = 3;
const MAX_OFFSET_COMMIT: i16 = 8;
const MAX_OFFSET_FETCH: i16 = 7;

/// What a group-offsets operation does once it knows the coordinator.
#[derive(Debug, Clone)]
pub(crate) enum GroupOffsets {
    Commit {
        group: String,
        topic: String,
        offsets: Vec<(i32, i64)>,
    },
    Fetch {
        group: String,
        topic: String,
        partitions: Vec<i32>,
    },
}

impl GroupOffsets {
    fn group(&self) -> &str {
        match self {
            GroupOffsets::Commit { group, .. } | GroupOffsets::Fetch { group, .. } => group,
        }
    }

    fn spec(&self) -> Spec {
        Spec::GroupOffsets(self.clone())
    }
}

/// Builds a request of a group-offsets operation.
pub(crate) fn build_find_coordinator(
    group: &str,
    versions: &ApiVersions,
) -> Result<(RequestBody, i16), Error> {
    let v = versions.choose(
        ApiKey::FindCoordinator,
        VersionChoice::AtMost(MAX_FIND_COORDINATOR),
    )?;
    let body = FindCoordinatorRequest {
        key: group.to_owned(),
        ..Default::default()
    };
    Ok((RequestBody::FindCoordinator(body), v))
}

/// Builds the OffsetCommit or OffsetFetch of a group-offsets operation.
pub(crate) fn build(g: &GroupOffsets, versions: &ApiVersions) -> Result<(RequestBody, i16), Error> {
    match g {
        GroupOffsets::Commit {
            group,
            topic,
            offsets,
        } => {
            let v = versions.choose(
                ApiKey::OffsetCommit,
                VersionChoice::AtMost(MAX_OFFSET_COMMIT),
            )?;
            let body = OffsetCommitRequest {
                group_id: group.clone(),
                // A simple consumer: no generation, no member.
                generation_id_or_member_epoch: -1,
                member_id: String::new(),
                topics: vec![OffsetCommitRequestTopic {
                    name: topic.clone(),
                    partitions: offsets
                        .iter()
                        .map(
                            |&(partition_index, committed_offset)| OffsetCommitRequestPartition {
                                partition_index,
                                committed_offset,
                                committed_metadata: Some(String::new()),
                                ..Default::default()
                            },
                        )
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            };
            Ok((RequestBody::OffsetCommit(body), v))
        }
        GroupOffsets::Fetch {
            group,
            topic,
            partitions,
        } => {
            let v =
                versions.choose(ApiKey::OffsetFetch, VersionChoice::AtMost(MAX_OFFSET_FETCH))?;
            let body = OffsetFetchRequest {
                group_id: group.clone(),
                topics: Some(vec![OffsetFetchRequestTopic {
                    name: topic.clone(),
                    partition_indexes: partitions.clone(),
                    ..Default::default()
                }]),
                ..Default::default()
            };
            Ok((RequestBody::OffsetFetch(body), v))
        }
    }
}

/// Whether the coordinator must be found again.
fn coordinator_moved(code: ErrorCode) -> bool {
    code.invalidates_coordinator() || code == ErrorCode::CoordinatorLoadInProgress
}

impl Client {
    /// Commits `offsets` (partition, next offset to read) of `topic` for consumer group
    /// `group` as a simple consumer (no generation). Finishes with [`Output::Offsets`]:
    /// per partition the offset committed, or why not.
    pub fn commit_offsets(
        &mut self,
        now: Instant,
        group: &str,
        topic: &str,
        offsets: Vec<(i32, i64)>,
    ) -> OpId {
        let g = GroupOffsets::Commit {
            group: group.to_owned(),
            topic: topic.to_owned(),
            offsets,
        };
        self.start_group_offsets(now, g)
    }

    /// The offsets group `group` committed for `partitions` of `topic`. Finishes with
    /// [`Output::Offsets`]: per partition the committed offset (the next to read), `-1`
    /// when the group committed none.
    pub fn fetch_offsets(
        &mut self,
        now: Instant,
        group: &str,
        topic: &str,
        partitions: Vec<i32>,
    ) -> OpId {
        let g = GroupOffsets::Fetch {
            group: group.to_owned(),
            topic: topic.to_owned(),
            partitions,
        };
        self.start_group_offsets(now, g)
    }

    fn start_group_offsets(&mut self, now: Instant, g: GroupOffsets) -> OpId {
        let find = Spec::FindCoordinator {
            group: g.group().to_owned(),
        };
        self.start_op(
            now,
            OpKind::GroupOffsets(g),
            vec![(find, Target::AnyBroker)],
        )
    }

    /// Reads an answer of a group-offsets operation.
    pub(super) fn group_offsets_response(
        &mut self,
        now: Instant,
        op: OpId,
        g: &GroupOffsets,
        req: &Req,
        body: ResponseBody,
    ) -> Outcome {
        let context = || format!("group {}", g.group());
        match body {
            ResponseBody::FindCoordinator(r) => {
                if let Some(code) = ErrorCode::from_code(r.error_code) {
                    return Outcome::Retry {
                        error: Error::broker(code, context()),
                        refresh: false,
                        delay: true,
                    };
                }
                if r.node_id < 0 {
                    return Outcome::Retry {
                        error: Error::broker(ErrorCode::CoordinatorNotAvailable, context()),
                        refresh: false,
                        delay: true,
                    };
                }
                self.add_req(
                    now,
                    Some(op),
                    g.spec(),
                    Target::Broker(r.node_id),
                    req.deadline,
                );
                Outcome::Wait
            }
            ResponseBody::OffsetCommit(r) => {
                let GroupOffsets::Commit { topic, offsets, .. } = g else {
                    return Outcome::Done(Err(wrong_answer()));
                };
                let code_of = |p: i32| {
                    r.topics
                        .iter()
                        .filter(|t| t.name == *topic)
                        .flat_map(|t| &t.partitions)
                        .find(|x| x.partition_index == p)
                        .map(|x| x.error_code)
                };
                let codes: Vec<Option<i16>> = offsets.iter().map(|(p, _)| code_of(*p)).collect();
                if let Some(code) = codes
                    .iter()
                    .flatten()
                    .filter_map(|c| ErrorCode::from_code(*c))
                    .find(|c| coordinator_moved(*c))
                {
                    return self.find_coordinator_again(now, op, g, req, code);
                }
                let results = offsets
                    .iter()
                    .zip(codes)
                    .map(|(&(partition, offset), code)| PartitionOffset {
                        partition,
                        result: match code.map(ErrorCode::from_code) {
                            None => Err(missing()),
                            Some(None) => Ok(offset),
                            Some(Some(c)) => Err(Error::broker(
                                c,
                                format!("{}: {topic}-{partition}", context()),
                            )),
                        },
                    })
                    .collect();
                Outcome::Done(Ok(Output::Offsets(results)))
            }
            ResponseBody::OffsetFetch(r) => {
                let GroupOffsets::Fetch {
                    topic, partitions, ..
                } = g
                else {
                    return Outcome::Done(Err(wrong_answer()));
                };
                if let Some(code) = ErrorCode::from_code(r.error_code) {
                    if coordinator_moved(code) {
                        return self.find_coordinator_again(now, op, g, req, code);
                    }
                    return Outcome::Done(Err(Error::broker(code, context())));
                }
                let found = |p: i32| {
                    r.topics
                        .iter()
                        .filter(|t| t.name == *topic)
                        .flat_map(|t| &t.partitions)
                        .find(|x| x.partition_index == p)
                };
                if let Some(code) = partitions
                    .iter()
                    .filter_map(|p| found(*p))
                    .filter_map(|x| ErrorCode::from_code(x.error_code))
                    .find(|c| coordinator_moved(*c))
                {
                    return self.find_coordinator_again(now, op, g, req, code);
                }
                let results = partitions
                    .iter()
                    .map(|&partition| PartitionOffset {
                        partition,
                        result: match found(partition) {
                            None => Err(missing()),
                            Some(x) => match ErrorCode::from_code(x.error_code) {
                                None => Ok(x.committed_offset),
                                Some(c) => Err(Error::broker(
                                    c,
                                    format!("{}: {topic}-{partition}", context()),
                                )),
                            },
                        },
                    })
                    .collect();
                Outcome::Done(Ok(Output::Offsets(results)))
            }
            _ => Outcome::Done(Err(wrong_answer())),
        }
    }

    /// The coordinator moved or is loading: find it again after a backoff.
    fn find_coordinator_again(
        &mut self,
        now: Instant,
        op: OpId,
        g: &GroupOffsets,
        req: &Req,
        code: ErrorCode,
    ) -> Outcome {
        if let Some(o) = self.ops.get_mut(&op) {
            o.last_error = Some(Error::broker(code, format!("group {}", g.group())));
        }
        let find = Spec::FindCoordinator {
            group: g.group().to_owned(),
        };
        let key = self.add_req(now, Some(op), find, Target::AnyBroker, req.deadline);
        if let Some(r) = self.reqs.get_mut(&key) {
            r.not_before = Some(now + self.config.reconnect_backoff);
        }
        Outcome::Wait
    }
}

fn wrong_answer() -> Error {
    Error::Protocol(crate::protocol::DecodeError::Malformed(
        "response of another API",
    ))
}

fn missing() -> Error {
    Error::Protocol(crate::protocol::DecodeError::Malformed(
        "response without a partition asked for",
    ))
}
