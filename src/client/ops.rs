//! What each operation sends and how it reads the answers.

use std::collections::BTreeMap;
use std::time::Instant;

use super::{Client, NewTopic, OpId, Output, PartitionOffset, Req, TopicResult};
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
    ListOffsets {
        topic: String,
        partition: i32,
        timestamp: i64,
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
            Spec::ListOffsets {
                topic,
                partition,
                timestamp,
            } => {
                let v = versions.choose(ApiKey::ListOffsets, VersionChoice::Highest)?;
                let body = ListOffsetsRequest {
                    replica_id: -1,
                    topics: vec![ListOffsetsTopic {
                        name: topic.clone(),
                        partitions: vec![ListOffsetsPartition {
                            partition_index: *partition,
                            timestamp: *timestamp,
                            max_num_offsets: 1,
                            ..Default::default()
                        }],
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
                self.cluster.apply(&r, true, now);
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
                self.cluster.apply(&r, false, now);
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
                let Spec::ListOffsets {
                    topic, partition, ..
                } = &req.spec
                else {
                    return Outcome::Done(Err(unexpected()));
                };
                let p = r
                    .topics
                    .iter()
                    .filter(|t| &t.name == topic)
                    .flat_map(|t| &t.partitions)
                    .find(|p| p.partition_index == *partition);
                let Some(p) = p else {
                    return Outcome::Done(Err(Error::Protocol(DecodeError::Malformed(
                        "ListOffsets response without the partition asked for",
                    ))));
                };
                let context = format!("topic {topic} partition {partition}");
                let value = match ErrorCode::from_code(p.error_code) {
                    Some(code) if code.invalidates_metadata() => {
                        return Outcome::Retry {
                            error: Error::broker(code, context),
                            refresh: true,
                            delay: true,
                        };
                    }
                    Some(code) => Err(Error::broker(code, context)),
                    // v0 answers a list (newest first); an empty list means no offset.
                    None if p.old_style_offsets.is_empty() && p.offset == -1 => Ok(-1),
                    None if !p.old_style_offsets.is_empty() => Ok(p.old_style_offsets[0]),
                    None => Ok(p.offset),
                };
                results.insert(*partition, value);
                if results.len() >= *expected {
                    Outcome::Done(Ok(Output::Offsets(offsets(results))))
                } else {
                    Outcome::Wait
                }
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
            (OpKind::ListOffsets { results, expected }, Spec::ListOffsets { partition, .. }) => {
                results.insert(*partition, Err(error));
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
            .filter_map(|r| match r.spec {
                Spec::ListOffsets { partition, .. } => Some(partition),
                _ => None,
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
