//! What each mock broker does with each request. Responses set only the fields their
//! version has, as the codec insists.

use std::collections::BTreeMap;
use std::time::Instant;

use bytes::Bytes;

use super::config::{BrokerMode, MockBrokerConfig};
use super::fault::FaultAction;
use super::{BrokerState, MockConn, Partition, Reply, RequestRecord, State, Topic};
use crate::protocol::messages::api_versions_response::ApiVersion;
use crate::protocol::messages::create_topics_response::CreatableTopicResult;
use crate::protocol::messages::delete_topics_response::DeletableTopicResult;
use crate::protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use crate::protocol::messages::{
    ApiKey, ApiVersionsResponse, CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest,
    DeleteTopicsResponse, MetadataRequest, MetadataResponse, RequestBody, RequestHeader,
    ResponseBody, SaslAuthenticateResponse, SaslHandshakeResponse,
};
use crate::protocol::primitives::Uuid;
use crate::protocol::ErrorCode;

/// The APIs the mock serves and their version ranges, for a broker.
pub(super) fn version_table(b: &MockBrokerConfig, _sasl: bool) -> BTreeMap<ApiKey, (i16, i16)> {
    let mut t = BTreeMap::new();
    match b.mode {
        BrokerMode::Kafka09 => {
            for (api, lo, hi) in [
                (ApiKey::Produce, 0, 1),
                (ApiKey::Fetch, 0, 1),
                (ApiKey::ListOffsets, 0, 0),
                (ApiKey::Metadata, 0, 0),
                (ApiKey::OffsetCommit, 0, 2),
                (ApiKey::OffsetFetch, 0, 1),
                (ApiKey::FindCoordinator, 0, 0),
            ] {
                t.insert(api, (lo, hi));
            }
        }
        BrokerMode::Modern => {
            for api in [
                ApiKey::Produce,
                ApiKey::Fetch,
                ApiKey::ListOffsets,
                ApiKey::Metadata,
                ApiKey::OffsetCommit,
                ApiKey::OffsetFetch,
                ApiKey::FindCoordinator,
                ApiKey::SaslHandshake,
                ApiKey::ApiVersions,
                ApiKey::CreateTopics,
                ApiKey::DeleteTopics,
                ApiKey::SaslAuthenticate,
                ApiKey::InitProducerId,
            ] {
                t.insert(api, (api.min_version(), api.max_version()));
            }
        }
    }
    for (api, lo, hi) in &b.api_versions {
        if hi < lo {
            t.remove(api);
        } else {
            t.insert(*api, (*lo, *hi));
        }
    }
    t
}

/// A topic name Kafka accepts.
fn valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A committed offset as OffsetFetch reports it: (partition, offset, metadata).
pub(super) type Committed = (i32, i64, Option<String>);

pub(super) fn described(code: ErrorCode) -> Option<String> {
    Some(code.description().to_owned())
}

impl State {
    pub(crate) fn broker(&self, id: i32) -> Option<&BrokerState> {
        self.brokers.iter().find(|b| b.cfg.id == id)
    }

    pub(crate) fn broker_mut(&mut self, id: i32) -> Option<&mut BrokerState> {
        self.brokers.iter_mut().find(|b| b.cfg.id == id)
    }

    fn is_up(&self, id: i32) -> bool {
        self.broker(id).is_some_and(|b| b.up)
    }

    fn live(&self) -> Vec<i32> {
        self.brokers
            .iter()
            .filter(|b| b.up)
            .map(|b| b.cfg.id)
            .collect()
    }

    pub(crate) fn partition(&self, topic: &str, p: i32) -> Option<&Partition> {
        let t = self.topics.get(topic)?;
        t.partitions.get(usize::try_from(p).ok()?)
    }

    pub(crate) fn partition_mut(&mut self, topic: &str, p: i32) -> Option<&mut Partition> {
        let t = self.topics.get_mut(topic)?;
        t.partitions.get_mut(usize::try_from(p).ok()?)
    }

    pub(super) fn topic_by_id(&self, id: &Uuid) -> Option<&str> {
        self.topics
            .iter()
            .find(|(_, t)| t.id == *id)
            .map(|(n, _)| n.as_str())
    }

    pub(crate) fn live_controller(&self) -> i32 {
        if self.is_up(self.controller) {
            self.controller
        } else {
            self.live().first().copied().unwrap_or(-1)
        }
    }

    /// Creates a topic with `partitions` partitions placed round-robin from a seeded
    /// start, or with explicit `assignments` (replica lists per partition).
    pub(crate) fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        assignments: Option<Vec<Vec<i32>>>,
        internal: bool,
    ) -> Result<(i32, i16), ErrorCode> {
        let (partitions, rf, replicas) =
            self.plan_topic(name, partitions, replication_factor, assignments)?;
        let id = loop {
            let mut bytes = [0u8; 16];
            bytes[..8].copy_from_slice(&self.rng.next_u64().to_be_bytes());
            bytes[8..].copy_from_slice(&self.rng.next_u64().to_be_bytes());
            if bytes != [0; 16] {
                break Uuid(bytes);
            }
        };
        let parts = replicas
            .into_iter()
            .map(|replicas| {
                let isr: Vec<i32> = replicas
                    .iter()
                    .copied()
                    .filter(|r| self.is_up(*r))
                    .collect();
                Partition {
                    leader: isr.first().copied().unwrap_or(-1),
                    leader_epoch: 0,
                    replicas,
                    isr,
                    log: Default::default(),
                    producers: Default::default(),
                }
            })
            .collect();
        self.topics.insert(
            name.to_owned(),
            Topic {
                id,
                internal,
                partitions: parts,
            },
        );
        Ok((partitions, rf))
    }

    /// Checks a topic creation and places its replicas, without creating it.
    fn plan_topic(
        &mut self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        assignments: Option<Vec<Vec<i32>>>,
    ) -> Result<(i32, i16, Vec<Vec<i32>>), ErrorCode> {
        if !valid_topic_name(name) {
            return Err(ErrorCode::InvalidTopicException);
        }
        if self.topics.contains_key(name) {
            return Err(ErrorCode::TopicAlreadyExists);
        }
        if let Some(assignments) = assignments.filter(|a| !a.is_empty()) {
            let known = |id: &i32| self.broker(*id).is_some();
            if assignments
                .iter()
                .any(|a| a.is_empty() || !a.iter().all(known))
            {
                return Err(ErrorCode::InvalidReplicaAssignment);
            }
            let rf = assignments[0].len() as i16;
            return Ok((assignments.len() as i32, rf, assignments));
        }
        let partitions = if partitions == -1 {
            self.cfg.default_partitions
        } else {
            partitions
        };
        if partitions <= 0 {
            return Err(ErrorCode::InvalidPartitions);
        }
        let rf = if replication_factor == -1 {
            self.cfg.default_replication_factor
        } else {
            replication_factor
        };
        let live = self.live();
        if rf <= 0 || rf as usize > live.len() {
            return Err(ErrorCode::InvalidReplicationFactor);
        }
        let n = live.len();
        let start = self.rng.below(n as u64) as usize;
        let replicas = (0..partitions as usize)
            .map(|p| {
                (0..rf as usize)
                    .map(|i| live[(start + p + i) % n])
                    .collect()
            })
            .collect();
        Ok((partitions, rf, replicas))
    }

    pub(crate) fn delete_topic(&mut self, name: &str) -> bool {
        self.offsets.retain(|(_, t, _), _| t != name);
        self.topics.remove(name).is_some()
    }

    pub(crate) fn on_broker_down(&mut self, id: i32) {
        self.sessions.drop_broker(id);
        let elect = self.cfg.elect_leaders_on_failure;
        let up: Vec<i32> = self.live();
        for t in self.topics.values_mut() {
            for p in &mut t.partitions {
                p.isr.retain(|r| *r != id);
                if p.leader == id {
                    p.leader = if elect {
                        p.isr.iter().copied().find(|r| up.contains(r)).unwrap_or(-1)
                    } else {
                        -1
                    };
                    p.leader_epoch += 1;
                }
            }
        }
        if self.controller == id {
            self.controller = up.first().copied().unwrap_or(-1);
        }
    }

    pub(crate) fn on_broker_up(&mut self, id: i32) {
        for t in self.topics.values_mut() {
            for p in &mut t.partitions {
                if p.replicas.contains(&id) && !p.isr.contains(&id) {
                    p.isr.push(id);
                }
                if p.leader == -1 && p.replicas.contains(&id) {
                    p.leader = id;
                    p.leader_epoch += 1;
                }
            }
        }
        if self.live_controller() == -1 {
            self.controller = id;
        }
    }

    pub(crate) fn log_request(
        &mut self,
        at: Instant,
        broker: i32,
        conn: MockConn,
        header: &RequestHeader,
        api: ApiKey,
        version: i16,
    ) {
        self.requests.push(RequestRecord {
            at,
            broker,
            conn,
            api,
            version,
            correlation_id: header.correlation_id,
            client_id: header.client_id.clone(),
        });
    }

    /// The action of the first fault rule that catches this request, used up by one.
    pub(crate) fn take_fault(&mut self, broker: i32, body: &RequestBody) -> Option<FaultAction> {
        let topics = &self.topics;
        let names = |id: &[u8; 16]| {
            topics
                .iter()
                .find(|(_, t)| t.id.0 == *id)
                .map(|(n, _)| n.clone())
        };
        let i = self
            .faults
            .iter()
            .position(|f| f.matcher.matches(broker, body, &names))?;
        let action = self.faults[i].action.clone();
        self.faults[i].times -= 1;
        if self.faults[i].times == 0 {
            self.faults.remove(i);
        }
        Some(action)
    }

    /// Serves a decoded request (SASL and faults already dealt with).
    pub(crate) fn handle(
        &mut self,
        _now: Instant,
        broker: i32,
        version: i16,
        body: RequestBody,
    ) -> Reply {
        match body {
            RequestBody::ApiVersions(_) => Reply::Respond(self.api_versions(broker, version, 0)),
            RequestBody::Metadata(r) => Reply::Respond(self.metadata(version, &r)),
            RequestBody::Produce(r) => self.produce(broker, version, &r),
            RequestBody::Fetch(r) => {
                let r = match self.resolve_fetch_session(broker, r, version) {
                    Ok(r) => r,
                    Err(code) => return Reply::Respond(super::sessions::error_response(code)),
                };
                if r.max_wait_ms <= 0 || self.fetch_ready(broker, &r, version) {
                    Reply::Respond(self.fetch_answer(broker, &r, version))
                } else {
                    Reply::Park(r)
                }
            }
            RequestBody::ListOffsets(r) => Reply::Respond(self.list_offsets(broker, version, &r)),
            RequestBody::CreateTopics(r) => Reply::Respond(self.create_topics(broker, version, &r)),
            RequestBody::DeleteTopics(r) => Reply::Respond(self.delete_topics(broker, version, &r)),
            RequestBody::FindCoordinator(r) => Reply::Respond(self.find_coordinator(version, &r)),
            RequestBody::OffsetCommit(r) => Reply::Respond(self.offset_commit(broker, version, &r)),
            RequestBody::OffsetFetch(r) => Reply::Respond(self.offset_fetch(broker, version, &r)),
            RequestBody::InitProducerId(r) => Reply::Respond(self.init_producer_id(&r)),
            _ => Reply::Close,
        }
    }

    pub(crate) fn api_versions(&self, broker: i32, version: i16, error_code: i16) -> ResponseBody {
        let api_keys = self
            .broker(broker)
            .map(|b| {
                b.versions
                    .iter()
                    .map(|(api, (lo, hi))| ApiVersion {
                        api_key: *api as i16,
                        min_version: *lo,
                        max_version: *hi,
                        ..Default::default()
                    })
                    .collect()
            })
            .unwrap_or_default();
        let _ = version;
        ResponseBody::ApiVersions(ApiVersionsResponse {
            error_code,
            api_keys,
            ..Default::default()
        })
    }

    fn describe_topic(&self, name: &str, t: &Topic, v: i16) -> MetadataResponseTopic {
        let partitions = t
            .partitions
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let leader_up = self.is_up(p.leader);
                let mut out = MetadataResponsePartition {
                    error_code: if leader_up {
                        0
                    } else {
                        ErrorCode::LeaderNotAvailable.code()
                    },
                    partition_index: i as i32,
                    leader_id: if leader_up { p.leader } else { -1 },
                    replica_nodes: p.replicas.clone(),
                    isr_nodes: p.isr.clone(),
                    ..Default::default()
                };
                if v >= 7 {
                    out.leader_epoch = p.leader_epoch;
                }
                if v >= 5 {
                    out.offline_replicas = p
                        .replicas
                        .iter()
                        .copied()
                        .filter(|r| !self.is_up(*r))
                        .collect();
                }
                out
            })
            .collect();
        let mut out = MetadataResponseTopic {
            name: Some(name.to_owned()),
            partitions,
            ..Default::default()
        };
        if v >= 1 {
            out.is_internal = t.internal;
        }
        if v >= 10 {
            out.topic_id = t.id;
        }
        out
    }

    fn metadata(&mut self, v: i16, r: &MetadataRequest) -> ResponseBody {
        let all = match &r.topics {
            None => true,
            Some(t) => t.is_empty() && v == 0,
        };
        let auto = self.cfg.auto_create_topics && (v < 4 || r.allow_auto_topic_creation);
        let mut topics = Vec::new();
        if all {
            for (name, t) in &self.topics {
                topics.push(self.describe_topic(name, t, v));
            }
        } else {
            for want in r.topics.iter().flatten() {
                let name = match &want.name {
                    Some(n) => n.clone(),
                    None => match self.topic_by_id(&want.topic_id) {
                        Some(n) => n.to_owned(),
                        None => {
                            topics.push(MetadataResponseTopic {
                                error_code: ErrorCode::UnknownTopicId.code(),
                                name: None,
                                topic_id: want.topic_id,
                                ..Default::default()
                            });
                            continue;
                        }
                    },
                };
                topics.push(self.metadata_for_name(&name, auto, v));
            }
        }
        let brokers = self
            .brokers
            .iter()
            .filter(|b| b.up)
            .map(|b| MetadataResponseBroker {
                node_id: b.cfg.id,
                host: b.cfg.host.clone(),
                port: i32::from(b.cfg.port),
                rack: if v >= 1 { b.cfg.rack.clone() } else { None },
                ..Default::default()
            })
            .collect();
        let mut out = MetadataResponse {
            brokers,
            topics,
            ..Default::default()
        };
        if v >= 1 {
            out.controller_id = self.live_controller();
        }
        if v >= 2 {
            out.cluster_id = self.cfg.cluster_id.clone();
        }
        ResponseBody::Metadata(out)
    }

    fn metadata_for_name(&mut self, name: &str, auto: bool, v: i16) -> MetadataResponseTopic {
        let error = |code: ErrorCode| MetadataResponseTopic {
            error_code: code.code(),
            name: Some(name.to_owned()),
            ..Default::default()
        };
        if let Some(t) = self.topics.get(name) {
            return self.describe_topic(name, t, v);
        }
        if !valid_topic_name(name) {
            return error(ErrorCode::InvalidTopicException);
        }
        if !auto {
            return error(ErrorCode::UnknownTopicOrPartition);
        }
        let rf = self
            .cfg
            .default_replication_factor
            .min(self.live().len() as i16);
        let partitions = self.cfg.default_partitions;
        if self
            .create_topic(name, partitions, rf, None, false)
            .is_err()
        {
            return error(ErrorCode::LeaderNotAvailable);
        }
        if self.cfg.auto_create_leader_not_available {
            return error(ErrorCode::LeaderNotAvailable);
        }
        match self.topics.get(name) {
            Some(t) => self.describe_topic(name, t, v),
            None => error(ErrorCode::UnknownTopicOrPartition),
        }
    }

    /// The partition `broker` leads, or why not.
    pub(super) fn led_by(
        &self,
        topic: &str,
        partition: i32,
        broker: i32,
    ) -> Result<&Partition, ErrorCode> {
        let p = self
            .partition(topic, partition)
            .ok_or(ErrorCode::UnknownTopicOrPartition)?;
        if p.leader != broker {
            return Err(ErrorCode::NotLeaderOrFollower);
        }
        Ok(p)
    }

    fn create_topics(&mut self, broker: i32, v: i16, r: &CreateTopicsRequest) -> ResponseBody {
        let controller = self.live_controller();
        let mut topics = Vec::new();
        for t in &r.topics {
            let assignments = (!t.assignments.is_empty()).then(|| {
                let mut a: Vec<_> = t.assignments.iter().collect();
                a.sort_by_key(|a| a.partition_index);
                a.into_iter()
                    .map(|a| a.broker_ids.clone())
                    .collect::<Vec<_>>()
            });
            let result = if broker != controller {
                Err(ErrorCode::NotController)
            } else if r.validate_only {
                self.plan_topic(&t.name, t.num_partitions, t.replication_factor, assignments)
                    .map(|(p, rf, _)| (p, rf))
            } else {
                self.create_topic(
                    &t.name,
                    t.num_partitions,
                    t.replication_factor,
                    assignments,
                    false,
                )
            };
            let mut out = CreatableTopicResult {
                name: t.name.clone(),
                ..Default::default()
            };
            match result {
                Ok((partitions, rf)) => {
                    if v >= 1 {
                        out.error_message = None;
                    }
                    if v >= 5 {
                        out.num_partitions = partitions;
                        out.replication_factor = rf;
                    }
                    if v >= 7 {
                        if let Some(topic) = self.topics.get(&t.name) {
                            out.topic_id = topic.id;
                        }
                    }
                }
                Err(code) => {
                    out.error_code = code.code();
                    if v >= 1 {
                        out.error_message = described(code);
                    }
                    if v >= 5 {
                        out.configs = None;
                    }
                }
            }
            topics.push(out);
        }
        ResponseBody::CreateTopics(CreateTopicsResponse {
            topics,
            ..Default::default()
        })
    }

    fn delete_topics(&mut self, broker: i32, v: i16, r: &DeleteTopicsRequest) -> ResponseBody {
        let controller = self.live_controller();
        let mut wanted: Vec<(Option<String>, Uuid)> = r
            .topic_names
            .iter()
            .map(|n| (Some(n.clone()), Uuid::default()))
            .collect();
        wanted.extend(r.topics.iter().map(|t| (t.name.clone(), t.topic_id)));
        let mut responses = Vec::new();
        for (name, id) in wanted {
            let resolved = name
                .clone()
                .or_else(|| self.topic_by_id(&id).map(str::to_owned));
            let code = if broker != controller {
                Some(ErrorCode::NotController)
            } else {
                match &resolved {
                    Some(n) if self.delete_topic(n) => None,
                    _ if name.is_none() => Some(ErrorCode::UnknownTopicId),
                    _ => Some(ErrorCode::UnknownTopicOrPartition),
                }
            };
            let mut out = DeletableTopicResult {
                name: if v >= 6 { resolved } else { name },
                error_code: code.map_or(0, |c| c.code()),
                ..Default::default()
            };
            if v < 6 && out.name.is_none() {
                out.name = Some(String::new());
            }
            if v >= 6 {
                out.topic_id = id;
            }
            if v >= 5 {
                out.error_message = code.and_then(described);
            }
            responses.push(out);
        }
        ResponseBody::DeleteTopics(DeleteTopicsResponse {
            responses,
            ..Default::default()
        })
    }
}

pub(super) fn sasl_handshake_response(error_code: i16, mechanisms: Vec<String>) -> ResponseBody {
    ResponseBody::SaslHandshake(SaslHandshakeResponse {
        error_code,
        mechanisms,
        ..Default::default()
    })
}

pub(super) fn sasl_authenticate_response(outcome: &super::sasl::Outcome, _v: i16) -> ResponseBody {
    use super::sasl::Outcome;
    let mut out = SaslAuthenticateResponse::default();
    match outcome {
        Outcome::Continue(reply) | Outcome::Done(reply) => {
            out.auth_bytes = Bytes::copy_from_slice(reply);
        }
        Outcome::Failed => {
            out.error_code = ErrorCode::SaslAuthenticationFailed.code();
            out.error_message = Some("Authentication failed: invalid credentials".to_owned());
        }
    }
    ResponseBody::SaslAuthenticate(out)
}
