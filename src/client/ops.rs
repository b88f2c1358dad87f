//! What each operation sends and how it reads the answers.

use std::collections::BTreeMap;
use std::time::Instant;

use super::{
    Client, NewTopic, OpId, Output, PartitionOffset, Req, ReqKey, ReqState, Target, TopicResult,
};
use crate::connection::{ApiVersions, VersionChoice};
use crate::error::Error;
use crate::protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use crate::protocol::messages::delete_topics_request::DeleteTopicState;
use crate::protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use crate::protocol::messages::metadata_request::MetadataRequestTopic;
use crate::protocol::messages::{
    ApiKey, CreateTopicsRequest, DeleteTopicsRequest, ListOffsetsRequest, MetadataRequest,
    RequestBody, ResponseBody,
};
use crate::protocol::{DecodeError, ErrorCode};

/// One request of an operation, before its version is known.
#[derive(Debug)]
pub(crate) enum Spec {
    Metadata {
        /// `None`: all topics.
        topics: Option<Vec<String>>,
        auto_create: bool,
    },
    /// Partitions of one topic with the same leader, each with its timestamp.
    ListOffsets {
        topic: String,
        partitions: Vec<(i32, i64)>,
    },
    CreateTopics {
        topics: Vec<NewTopic>,
        timeout_ms: i32,
    },
    DeleteTopics {
        topics: Vec<String>,
        timeout_ms: i32,
    },
    Raw {
        body: RequestBody,
        version: VersionChoice,
    },
    /// The coordinator of a consumer group.
    FindCoordinator { group: String },
    /// OffsetCommit or OffsetFetch, to the group's coordinator.
    GroupOffsets(super::offsets::GroupOffsets),
    /// The operation finished while this request was on the wire.
    Orphan,
}

/// Per-operation state.
#[derive(Debug)]
pub(crate) enum OpKind {
    UpdateCluster,
    TopicMetadata {
        topics: Vec<String>,
        auto_create: bool,
    },
    ListOffsets {
        results: BTreeMap<i32, Result<i64, Error>>,
        expected: usize,
    },
    /// create_topics / delete_topics.
    Topics,
    /// commit_offsets / fetch_offsets.
    GroupOffsets(super::offsets::GroupOffsets),
    Send,
}

/// What to do after a request of an operation finished.
pub(crate) enum Outcome {
    /// Other requests of the operation are outstanding.
    Wait,
    Done(Result<Output, Error>),
    /// Send the request again (if the error is retriable and the deadline allows).
    Retry {
        error: Error,
        /// Refresh the metadata first.
        refresh: bool,
        /// Wait `reconnect_backoff` first.
        delay: bool,
    },
}

impl Spec {
    /// The request body and version for a connection with `versions`.
    pub(crate) fn build(&self, versions: &ApiVersions) -> Result<(RequestBody, i16), Error> {
        match self {
            Spec::Metadata {
                topics,
                auto_create,
            } => {
                let v = versions.choose(ApiKey::Metadata, VersionChoice::Highest)?;
                let topics = match topics {
                    // v0: an empty list means all topics; v1+: null does.
                    None if v == 0 => Some(Vec::new()),
                    None => None,
                    Some(names) => Some(
                        names
                            .iter()
                            .map(|n| MetadataRequestTopic {
                                name: Some(n.clone()),
                                ..Default::default()
                            })
                            .collect(),
                    ),
                };
                let body = MetadataRequest {
                    topics,
                    // Before v4 the broker decides; the field cannot be sent.
                    allow_auto_topic_creation: *auto_create || v < 4,
                    ..Default::default()
                };
                Ok((RequestBody::Metadata(body), v))
            }
            Spec::ListOffsets { topic, partitions } => {
                let v = versions.choose(ApiKey::ListOffsets, VersionChoice::Highest)?;
                let body = ListOffsetsRequest {
                    replica_id: -1,
                    topics: vec![ListOffsetsTopic {
                        name: topic.clone(),
                        partitions: partitions
                            .iter()
                            .map(|&(partition_index, timestamp)| ListOffsetsPartition {
                                partition_index,
                                timestamp,
                                max_num_offsets: 1,
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    }],
                    ..Default::default()
                };
                Ok((RequestBody::ListOffsets(body), v))
            }
            Spec::CreateTopics { topics, timeout_ms } => {
                let v = versions.choose(ApiKey::CreateTopics, VersionChoice::Highest)?;
                let topics = topics
                    .iter()
                    .map(|t| CreatableTopic {
                        name: t.name.clone(),
                        num_partitions: t.num_partitions,
                        replication_factor: t.replication_factor,
                        configs: t
                            .configs
                            .iter()
                            .map(|(k, val)| CreatableTopicConfig {
                                name: k.clone(),
                                value: Some(val.clone()),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect();
                let body = CreateTopicsRequest {
                    topics,
                    timeout_ms: *timeout_ms,
                    ..Default::default()
                };
                Ok((RequestBody::CreateTopics(body), v))
            }
            Spec::DeleteTopics { topics, timeout_ms } => {
                let v = versions.choose(ApiKey::DeleteTopics, VersionChoice::Highest)?;
                let mut body = DeleteTopicsRequest {
                    timeout_ms: *timeout_ms,
                    ..Default::default()
                };
                if v >= 6 {
                    body.topics = topics
                        .iter()
                        .map(|n| DeleteTopicState {
                            name: Some(n.clone()),
                            ..Default::default()
                        })
                        .collect();
                } else {
                    body.topic_names = topics.clone();
                }
                Ok((RequestBody::DeleteTopics(body), v))
            }
            Spec::Raw { body, version } => {
                let v = versions.choose(body.api_key(), *version)?;
                Ok((body.clone(), v))
            }
            Spec::FindCoordinator { group } => {
                super::offsets::build_find_coordinator(group, versions)
            }
            Spec::GroupOffsets(g) => super::offsets::build(g, versions),
            Spec::Orphan => Err(Error::Misuse("orphaned request".into())),
        }
    }
}

fn unexpected() -> Error {
    Error::Protocol(DecodeError::Malformed("response of another API"))
}

impl Client {
    /// Reads the answer to one request of `op`.
    pub(super) fn op_response(
        &mut self,
        now: Instant,
        op: OpId,
        req: &Req,
        result: Result<ResponseBody, Error>,
    ) -> Outcome {
        let body = match result {
            Ok(b) => b,
            Err(error) => {
                return Outcome::Retry {
                    error,
                    refresh: false,
                    delay: false,
                }
            }
        };
        let Some(o) = self.ops.get_mut(&op) else {
            return Outcome::Wait;
        };
        match (&mut o.kind, body) {
            (OpKind::UpdateCluster, ResponseBody::Metadata(r)) => {
                self.apply_metadata(&r, true, now);
                Outcome::Done(Ok(Output::Cluster))
            }
            (
                OpKind::TopicMetadata {
                    topics,
                    auto_create,
                },
                ResponseBody::Metadata(r),
            ) => {
                let auto_create = *auto_create;
                let topics = topics.clone();
                self.apply_metadata(&r, false, now);
                let mut results = Vec::new();
                for name in &topics {
                    let t = r.topics.iter().find(|t| t.name.as_deref() == Some(name));
                    let code = match t {
                        None => Some(ErrorCode::UnknownTopicOrPartition),
                        Some(t) => ErrorCode::from_code(t.error_code).or_else(|| {
                            (t.partitions.is_empty()
                                || t.partitions.iter().any(|p| p.leader_id < 0))
                            .then_some(ErrorCode::LeaderNotAvailable)
                        }),
                    };
                    let creating = matches!(
                        code,
                        Some(ErrorCode::LeaderNotAvailable | ErrorCode::UnknownTopicOrPartition)
                    );
                    if auto_create && creating {
                        return Outcome::Retry {
                            error: Error::broker(
                                ErrorCode::LeaderNotAvailable,
                                format!("topic {name} is being created"),
                            ),
                            refresh: false,
                            delay: true,
                        };
                    }
                    results.push(TopicResult {
                        name: name.clone(),
                        error: code.map(|c| Error::broker(c, format!("topic {name}"))),
                    });
                }
                Outcome::Done(Ok(Output::Topics(results)))
            }
            (OpKind::ListOffsets { results, expected }, ResponseBody::ListOffsets(r)) => {
                let Spec::ListOffsets { topic, partitions } = &req.spec else {
                    return Outcome::Done(Err(unexpected()));
                };
                let mut again = Vec::new();
                for &(partition, timestamp) in partitions {
                    let p = r
                        .topics
                        .iter()
                        .filter(|t| &t.name == topic)
                        .flat_map(|t| &t.partitions)
                        .find(|p| p.partition_index == partition);
                    let context = format!("topic {topic} partition {partition}");
                    let value = match p.map(|p| (ErrorCode::from_code(p.error_code), p)) {
                        None => Err(Error::Protocol(DecodeError::Malformed(
                            "ListOffsets response without a partition asked for",
                        ))),
                        Some((Some(code), _)) if code.invalidates_metadata() => {
                            again.push((partition, timestamp));
                            o.last_error = Some(Error::broker(code, context));
                            continue;
                        }
                        Some((Some(code), _)) => Err(Error::broker(code, context)),
                        // v0 answers a list (newest first); an empty list means no offset.
                        Some((None, p)) => Ok(match p.old_style_offsets.first() {
                            Some(&o) => o,
                            None => p.offset,
                        }),
                    };
                    results.insert(partition, value);
                }
                if results.len() >= *expected {
                    return Outcome::Done(Ok(Output::Offsets(offsets(results))));
                }
                if !again.is_empty() {
                    // Stale leaders: refresh, then ask each partition's leader again.
                    self.cluster
                        .invalidate(format!("leader error for topic {topic}"));
                    let topic = topic.clone();
                    let not_before = now + self.config.reconnect_backoff;
                    for p in again {
                        self.add_list_offsets_req(
                            now,
                            op,
                            &topic,
                            p,
                            req.deadline,
                            Some(not_before),
                        );
                    }
                }
                Outcome::Wait
            }
            (
                OpKind::Topics,
                body @ (ResponseBody::CreateTopics(_) | ResponseBody::DeleteTopics(_)),
            ) => {
                let list: Vec<(String, i16, Option<String>)> = match body {
                    ResponseBody::CreateTopics(r) => r
                        .topics
                        .into_iter()
                        .map(|t| (t.name, t.error_code, t.error_message))
                        .collect(),
                    ResponseBody::DeleteTopics(r) => r
                        .responses
                        .into_iter()
                        .map(|t| (t.name.unwrap_or_default(), t.error_code, t.error_message))
                        .collect(),
                    _ => Vec::new(),
                };
                if list
                    .iter()
                    .any(|(_, c, _)| ErrorCode::from_code(*c) == Some(ErrorCode::NotController))
                {
                    return Outcome::Retry {
                        error: Error::broker(ErrorCode::NotController, "topic admin request"),
                        refresh: true,
                        delay: true,
                    };
                }
                let results = list
                    .into_iter()
                    .map(|(name, code, message)| TopicResult {
                        error: ErrorCode::from_code(code).map(|c| {
                            let ctx = match message {
                                Some(m) => format!("topic {name}: {m}"),
                                None => format!("topic {name}"),
                            };
                            Error::broker(c, ctx)
                        }),
                        name,
                    })
                    .collect();
                Outcome::Done(Ok(Output::Topics(results)))
            }
            (OpKind::Send, body) => Outcome::Done(Ok(Output::Response(body))),
            (OpKind::GroupOffsets(g), body) => {
                let g = g.clone();
                self.group_offsets_response(now, op, &g, req, body)
            }
            _ => Outcome::Done(Err(unexpected())),
        }
    }

    /// The result of `op` when one of its requests failed for good: `None` while other
    /// requests of the operation are outstanding.
    pub(super) fn fail_result(
        &mut self,
        op: OpId,
        req: &Req,
        error: Error,
    ) -> Option<Result<Output, Error>> {
        let o = self.ops.get_mut(&op)?;
        match (&mut o.kind, &req.spec) {
            (OpKind::ListOffsets { results, expected }, Spec::ListOffsets { partitions, .. }) => {
                for (p, _) in partitions {
                    results.insert(*p, Err(error.clone()));
                }
                (results.len() >= *expected).then(|| Ok(Output::Offsets(offsets(results))))
            }
            _ => Some(Err(error)),
        }
    }

    /// The result of `op` at its deadline.
    pub(super) fn timeout_result(&mut self, op: OpId, what: String) -> Result<Output, Error> {
        let error = Error::timeout(what);
        let partitions: Vec<i32> = self
            .reqs
            .values()
            .filter(|r| r.op == Some(op))
            .flat_map(|r| match &r.spec {
                Spec::ListOffsets { partitions, .. } => partitions.iter().map(|p| p.0).collect(),
                _ => Vec::new(),
            })
            .collect();
        match self.ops.get_mut(&op).map(|o| &mut o.kind) {
            Some(OpKind::ListOffsets { results, .. }) => {
                for p in partitions {
                    results.entry(p).or_insert_with(|| Err(error.clone()));
                }
                Ok(Output::Offsets(offsets(results)))
            }
            _ => Err(error),
        }
    }

    /// Adds a request for one partition's offset, routed to its leader.
    pub(super) fn add_list_offsets_req(
        &mut self,
        now: Instant,
        op: OpId,
        topic: &str,
        (partition, timestamp): (i32, i64),
        deadline: Instant,
        not_before: Option<Instant>,
    ) {
        let spec = Spec::ListOffsets {
            topic: topic.to_owned(),
            partitions: vec![(partition, timestamp)],
        };
        let route = Target::Leader {
            topic: topic.to_owned(),
            partition,
        };
        let key = self.add_req(now, Some(op), spec, route, deadline);
        if let Some(r) = self.reqs.get_mut(&key) {
            r.not_before = not_before;
        }
    }

    /// Before sending the ListOffsets request `key`, takes in the other parked ones of
    /// the same operation whose partitions have the same leader: one request per leader.
    pub(super) fn merge_list_offsets(&mut self, key: ReqKey) {
        let Some(req) = self.reqs.get(&key) else {
            return;
        };
        let (Some(op), Spec::ListOffsets { topic, partitions }) = (req.op, &req.spec) else {
            return;
        };
        let leader = partitions
            .first()
            .and_then(|p| self.cluster.leader(topic, p.0));
        if leader.is_none() {
            return;
        }
        let topic = topic.clone();
        let same: Vec<ReqKey> = self
            .reqs
            .iter()
            .filter(|(k, r)| {
                **k != key
                    && r.op == Some(op)
                    && matches!(r.state, ReqState::Parked)
                    && r.not_before.is_none()
                    && matches!(&r.spec, Spec::ListOffsets { topic: t, partitions }
                        if *t == topic && partitions.iter().all(|p| self.cluster.leader(t, p.0) == leader))
            })
            .map(|(k, _)| *k)
            .collect();
        let mut more = Vec::new();
        for k in same {
            if let Some(Req {
                spec: Spec::ListOffsets { partitions, .. },
                ..
            }) = self.reqs.remove(&k)
            {
                more.extend(partitions);
            }
        }
        if let Some(Req {
            spec: Spec::ListOffsets { partitions, .. },
            ..
        }) = self.reqs.get_mut(&key)
        {
            partitions.extend(more);
        }
    }

    /// Splits a ListOffsets request for several partitions into one per partition (to be
    /// routed again after a failure, as leaders may differ now). `false` when there is
    /// nothing to split.
    pub(super) fn split_list_offsets(&mut self, now: Instant, req: &Req) -> bool {
        match (&req.op, &req.spec) {
            (Some(op), Spec::ListOffsets { topic, partitions }) if partitions.len() > 1 => {
                let not_before = now + self.config.reconnect_backoff;
                for &p in partitions {
                    self.add_list_offsets_req(now, *op, topic, p, req.deadline, Some(not_before));
                }
                true
            }
            _ => false,
        }
    }

    /// Finishes an operation that had nothing to ask.
    pub(super) fn finish_empty(&mut self, op: OpId) {
        let result = match self.ops.get(&op).map(|o| &o.kind) {
            Some(OpKind::ListOffsets { .. }) => Ok(Output::Offsets(Vec::new())),
            _ => Err(Error::Misuse("empty operation".into())),
        };
        self.finish(op, result);
    }
}

fn offsets(results: &BTreeMap<i32, Result<i64, Error>>) -> Vec<PartitionOffset> {
    results
        .iter()
        .map(|(&partition, result)| PartitionOffset {
            partition,
            result: result.clone(),
        })
        .collect()
}
