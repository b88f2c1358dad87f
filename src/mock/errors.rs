//! Error responses for injected faults: every part of a request fails with one code.

use bytes::Bytes;

use super::handlers::{described, sasl_handshake_response};
use crate::protocol::messages::create_topics_response::CreatableTopicResult;
use crate::protocol::messages::delete_topics_response::DeletableTopicResult;
use crate::protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use crate::protocol::messages::find_coordinator_response::Coordinator;
use crate::protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use crate::protocol::messages::metadata_response::MetadataResponseTopic;
use crate::protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use crate::protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use crate::protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use crate::protocol::messages::{
    ApiVersionsResponse, CreateTopicsResponse, DeleteTopicsResponse, FetchResponse,
    FindCoordinatorResponse, ListOffsetsResponse, MetadataResponse, OffsetCommitResponse,
    OffsetFetchResponse, ProduceResponse, RequestBody, ResponseBody, SaslAuthenticateResponse,
};
use crate::protocol::primitives::Uuid;
use crate::protocol::ErrorCode;

/// The response to `body` when a fault says every part of it failed with `code`.
pub(super) fn error_response(body: &RequestBody, v: i16, code: ErrorCode) -> ResponseBody {
    let c = code.code();
    match body {
        RequestBody::Produce(r) => ResponseBody::Produce(ProduceResponse {
            responses: r
                .topic_data
                .iter()
                .map(|t| TopicProduceResponse {
                    name: t.name.clone(),
                    partition_responses: t
                        .partition_data
                        .iter()
                        .map(|p| PartitionProduceResponse {
                            index: p.index,
                            error_code: c,
                            base_offset: -1,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        RequestBody::Fetch(r) => {
            let responses = r
                .topics
                .iter()
                .map(|t| {
                    let mut topic = FetchableTopicResponse {
                        partitions: t
                            .partitions
                            .iter()
                            .map(|p| PartitionData {
                                partition_index: p.partition,
                                error_code: c,
                                high_watermark: -1,
                                records: Some(Bytes::new()),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    };
                    if v >= 13 {
                        topic.topic_id = t.topic_id;
                    } else {
                        topic.topic = t.topic.clone();
                    }
                    topic
                })
                .collect();
            ResponseBody::Fetch(FetchResponse {
                responses,
                ..Default::default()
            })
        }
        RequestBody::ListOffsets(r) => ResponseBody::ListOffsets(ListOffsetsResponse {
            topics: r
                .topics
                .iter()
                .map(|t| ListOffsetsTopicResponse {
                    name: t.name.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| ListOffsetsPartitionResponse {
                            partition_index: p.partition_index,
                            error_code: c,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        RequestBody::Metadata(r) => ResponseBody::Metadata(MetadataResponse {
            topics: r
                .topics
                .iter()
                .flatten()
                .map(|t| MetadataResponseTopic {
                    error_code: c,
                    name: t.name.clone(),
                    topic_id: if v >= 10 { t.topic_id } else { Uuid::default() },
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        RequestBody::CreateTopics(r) => ResponseBody::CreateTopics(CreateTopicsResponse {
            topics: r
                .topics
                .iter()
                .map(|t| {
                    let mut out = CreatableTopicResult {
                        name: t.name.clone(),
                        error_code: c,
                        ..Default::default()
                    };
                    if v >= 1 {
                        out.error_message = described(code);
                    }
                    if v >= 5 {
                        out.configs = None;
                    }
                    out
                })
                .collect(),
            ..Default::default()
        }),
        RequestBody::DeleteTopics(r) => {
            let mut responses: Vec<DeletableTopicResult> = r
                .topic_names
                .iter()
                .map(|n| DeletableTopicResult {
                    name: Some(n.clone()),
                    error_code: c,
                    ..Default::default()
                })
                .collect();
            responses.extend(r.topics.iter().map(|t| DeletableTopicResult {
                name: t.name.clone(),
                topic_id: t.topic_id,
                error_code: c,
                ..Default::default()
            }));
            if v >= 5 {
                for r in &mut responses {
                    r.error_message = described(code);
                }
            }
            ResponseBody::DeleteTopics(DeleteTopicsResponse {
                responses,
                ..Default::default()
            })
        }
        RequestBody::FindCoordinator(r) => {
            let mut out = FindCoordinatorResponse::default();
            if v >= 4 {
                out.coordinators = r
                    .coordinator_keys
                    .iter()
                    .map(|k| Coordinator {
                        key: k.clone(),
                        node_id: -1,
                        port: -1,
                        error_code: c,
                        error_message: described(code),
                        ..Default::default()
                    })
                    .collect();
            } else {
                out.error_code = c;
                out.node_id = -1;
                out.port = -1;
                if v >= 1 {
                    out.error_message = described(code);
                }
            }
            ResponseBody::FindCoordinator(out)
        }
        RequestBody::OffsetCommit(r) => ResponseBody::OffsetCommit(OffsetCommitResponse {
            topics: r
                .topics
                .iter()
                .map(|t| OffsetCommitResponseTopic {
                    name: t.name.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| OffsetCommitResponsePartition {
                            partition_index: p.partition_index,
                            error_code: c,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        RequestBody::OffsetFetch(r) => {
            let mut out = OffsetFetchResponse::default();
            if v >= 8 {
                out.groups = r
                    .groups
                    .iter()
                    .map(|g| OffsetFetchResponseGroup {
                        group_id: g.group_id.clone(),
                        error_code: c,
                        ..Default::default()
                    })
                    .collect();
            } else if v >= 2 {
                out.error_code = c;
            } else {
                out.topics = r
                    .topics
                    .iter()
                    .flatten()
                    .map(|t| OffsetFetchResponseTopic {
                        name: t.name.clone(),
                        partitions: t
                            .partition_indexes
                            .iter()
                            .map(|p| OffsetFetchResponsePartition {
                                partition_index: *p,
                                committed_offset: -1,
                                error_code: c,
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect();
            }
            ResponseBody::OffsetFetch(out)
        }
        RequestBody::SaslHandshake(_) => sasl_handshake_response(c, Vec::new()),
        RequestBody::SaslAuthenticate(_) => {
            let mut out = SaslAuthenticateResponse {
                error_code: c,
                ..Default::default()
            };
            out.error_message = described(code);
            ResponseBody::SaslAuthenticate(out)
        }
        // ApiVersions and anything else: the top-level error of an ApiVersions reply.
        _ => ResponseBody::ApiVersions(ApiVersionsResponse {
            error_code: c,
            ..Default::default()
        }),
    }
}
