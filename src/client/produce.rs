//! The client's side of producing: producers are sub-state machines the client owns,
//! addressed by [`ProducerId`]. Appending a record only touches its producer; the client
//! builds Produce requests when it is driven, for leaders whose connection has a free
//! in-flight slot (late binding), and hands each answer back to the producer that owns the
//! request.

use std::time::Instant;

use super::timers::TimerKey;
use super::{Client, ConnectionHandle, Event, Target};
use crate::connection::{ConnectionEvent, ConnectionState, RequestId, VersionChoice};
use crate::error::Error;
use crate::producer::batch::RecordFormat;
use crate::producer::machine::{
    ProduceError, ProduceRecord, ProduceToken, Producer, ProducerId, RecordId,
};
use crate::producer::ProducerConfig;
use crate::protocol::messages::ApiKey;
use crate::protocol::messages::{InitProducerIdRequest, RequestBody, ResponseBody};
use crate::protocol::records::batch::HeaderSource;
use crate::protocol::ErrorCode;

/// What a request on the wire belongs to, when not an operation.
#[derive(Debug)]
pub(super) enum ProducerRequest {
    Produce(ProducerId, ProduceToken),
    InitProducerId(ProducerId),
}

impl Client {
    /// Starts a producer for `topic`, which must be in the metadata cache (fetch it with
    /// [`topic_metadata`](Self::topic_metadata) first). Batches are written in the format
    /// of the brokers' Produce version (MessageSet v0 for 0.9, v1 for 0.10, RecordBatch v2
    /// for 0.11+) and idempotence follows [`ProducerConfig::enable_idempotence`].
    pub fn add_producer(
        &mut self,
        now: Instant,
        topic: &str,
        config: ProducerConfig,
    ) -> Result<ProducerId, Error> {
        config.validate()?;
        let Some(t) = self.cluster.topic(topic) else {
            return Err(Error::broker(
                ErrorCode::UnknownTopicOrPartition,
                format!("topic {topic} is not in the metadata (fetch it first)"),
            ));
        };
        let partitions: Vec<i32> = t.partitions.keys().copied().collect();
        if partitions.is_empty() {
            return Err(Error::broker(
                ErrorCode::LeaderNotAvailable,
                format!("topic {topic} has no partitions yet (being created?): fetch its metadata again"),
            ));
        }
        // What the brokers speak: a ready connection's versions, else the configured
        // fallback (a later connection corrects the format before anything is sealed).
        let versions = self
            .conns
            .values()
            .filter(|c| c.conn.state() == ConnectionState::Ready)
            .find_map(|c| c.conn.api_versions().cloned())
            .unwrap_or_else(|| {
                crate::connection::ApiVersions::from_broker_version(self.config.broker_version)
            });
        let produce = versions.max(ApiKey::Produce).unwrap_or(0);
        let format = RecordFormat::for_produce_version(produce);
        let supported =
            format == RecordFormat::RecordBatch && versions.max(ApiKey::InitProducerId).is_some();
        let idempotent = match config.enable_idempotence {
            Some(false) => false,
            Some(true) if !supported => {
                return Err(Error::Unsupported {
                    api: ApiKey::InitProducerId,
                    broker_version: versions.source().to_owned(),
                })
            }
            Some(true) => true,
            None => supported && config.required_acks == crate::producer::Acks::All,
        };
        if idempotent && config.required_acks != crate::producer::Acks::All {
            return Err(Error::Config(
                "producer: idempotence needs required_acks = All".into(),
            ));
        }
        let id = ProducerId(self.next_producer);
        self.next_producer += 1;
        let seed = self.rng.next_u64();
        let producer = Producer::new(
            id,
            topic.to_owned(),
            &partitions,
            config,
            format,
            idempotent,
            seed,
        );
        tracing::debug!(topic, ?id, ?format, idempotent, "producer added");
        self.producers.insert(id, producer);
        // An idempotent producer asks for its id at the next drive.
        self.drive_soon(now);
        Ok(id)
    }

    /// The producer `id`.
    pub fn producer(&self, id: ProducerId) -> Option<&Producer> {
        self.producers.get(&id)
    }

    /// Appends a record to producer `id`. O(1): nothing is sent here. When the returned
    /// flag is `true` (a batch opened or closed) the caller must drive the client soon
    /// (`handle_timeout(now)` and drain), else it may wait for its next timer.
    pub fn produce<H: HeaderSource>(
        &mut self,
        now: Instant,
        id: ProducerId,
        record: &ProduceRecord<'_, H>,
    ) -> Result<(RecordId, bool), ProduceError> {
        let Some(p) = self.producers.get_mut(&id) else {
            return Err(ProduceError::Closed);
        };
        let (record, drive) = p.produce(now, record)?;
        if drive {
            // A batch opened (its linger starts) or filled.
            let at = p.poll_timeout();
            self.timers.set(TimerKey::Producer(id), at);
        }
        Ok((record, drive))
    }

    /// Sends every open batch of producer `id` without waiting for its linger; its reports
    /// follow as [`Event::Delivery`]. Drive the client afterwards.
    pub fn flush(&mut self, _now: Instant, id: ProducerId) {
        if let Some(p) = self.producers.get_mut(&id) {
            p.flush();
            let at = p.poll_timeout();
            self.timers.set(TimerKey::Producer(id), at);
        }
    }

    /// Removes producer `id`: every record it has not reported yet is reported failed with
    /// [`ProduceError::Closed`]'s meaning (in-flight ones as possibly written). Flush and
    /// wait for the reports first to close cleanly.
    pub fn remove_producer(&mut self, _now: Instant, id: ProducerId) {
        self.timers.set(TimerKey::Producer(id), None);
        if let Some(mut p) = self.producers.remove(&id) {
            p.abort(&Error::Misuse("the producer was closed".into()));
            while let Some(r) = p.poll_report() {
                self.events.push_back(Event::Delivery(r));
            }
        }
    }

    /// Producer timers, new partitions from the metadata, then requests for every leader
    /// with a free slot. Returns whether anything was sent.
    pub(super) fn drive_producers(&mut self, now: Instant) -> bool {
        if self.producers.is_empty() {
            return false;
        }
        let mut sent = false;
        let ids: Vec<ProducerId> = self.producers.keys().copied().collect();
        let generation = self.cluster.generation();
        let mut ready = std::mem::take(&mut self.produce_scratch);
        for id in ids {
            let Some(p) = self.producers.get_mut(&id) else {
                continue;
            };
            p.handle_timeout(now);
            if self.producer_generation.get(&id) != Some(&generation) {
                self.producer_generation.insert(id, generation);
                if let Some(t) = self.cluster.topic(p.topic()) {
                    if t.partitions.len() != p.partition_ids().count() {
                        p.add_partitions(t.partitions.keys().copied());
                    }
                }
            }
            sent |= self.init_producer_id(now, id);
            ready.clear();
            if let Some(p) = self.producers.get_mut(&id) {
                p.ready_partitions(now, &mut ready);
            }
            // Make sure each leader has a connection (opening one if needed); the batches
            // are sealed later, when the transport asks that connection for bytes.
            let mut refresh = false;
            let mut leaders: Vec<i32> = Vec::new();
            let topic = self.producers[&id].topic();
            for &(_, partition) in &ready {
                match self.cluster.leader(topic, partition) {
                    Some(leader) if !leaders.contains(&leader) => leaders.push(leader),
                    Some(_) => {}
                    None => refresh = true,
                }
            }
            if refresh || self.cluster_stale() {
                self.request_refresh(now);
            }
            for leader in leaders {
                if let Err(e) = self.broker_connection(now, leader, now, true) {
                    tracing::debug!(leader, error = %e, "no connection to the leader");
                }
            }
            self.drain_reports(id);
        }
        self.produce_scratch = ready;
        sent
    }

    /// Late binding: when the transport asks connection `h` for bytes, the producers'
    /// batches whose leader it reaches are sealed into Produce requests, as many as its
    /// free in-flight slots take. Nothing is opened or routed here.
    pub(super) fn fill_connection(&mut self, now: Instant, h: ConnectionHandle) {
        if self.producers.is_empty() {
            return;
        }
        let max = self.config.max_in_flight_requests_per_connection;
        let Some(c) = self.conns.get(&h) else { return };
        if c.conn.state() != ConnectionState::Ready || c.conn.in_flight() + c.conn.queued() >= max {
            return;
        }
        let Some(version) = c
            .conn
            .api_versions()
            .and_then(|v| v.choose(ApiKey::Produce, VersionChoice::Highest).ok())
        else {
            return;
        };
        let addr = &c.addr;
        let Some(broker) = self
            .cluster
            .brokers()
            .find(|b| b.host == addr.host && b.port == addr.port)
            .map(|b| b.id)
        else {
            return;
        };
        let format = RecordFormat::for_produce_version(version);
        let mut ready = std::mem::take(&mut self.produce_scratch);
        let mut indexes = std::mem::take(&mut self.produce_indexes);
        let mut cursor = None;
        while let Some((&id, p)) = match cursor {
            None => self.producers.iter_mut().next(),
            Some(k) => self
                .producers
                .range_mut((std::ops::Bound::Excluded(k), std::ops::Bound::Unbounded))
                .next(),
        } {
            cursor = Some(id);
            if p.format() != format {
                p.set_format(format);
            }
            // Several requests while slots are free (up to five batches of a partition
            // may be in flight with idempotence).
            while self
                .conns
                .get(&h)
                .is_some_and(|c| c.conn.in_flight() + c.conn.queued() < max)
            {
                let Some(p) = self.producers.get_mut(&id) else {
                    break;
                };
                ready.clear();
                p.ready_partitions(now, &mut ready);
                indexes.clear();
                indexes.extend(
                    ready
                        .iter()
                        .filter(|(_, partition)| {
                            self.cluster.leader(p.topic(), *partition) == Some(broker)
                        })
                        .map(|(index, _)| *index),
                );
                if indexes.is_empty() {
                    break;
                }
                let Some((request, token)) = p.poll_request(now, broker, &indexes, version) else {
                    break;
                };
                let body = RequestBody::Produce(request);
                self.send_owned(now, h, body, version, ProducerRequest::Produce(id, token));
                self.settle_written(now, h);
            }
            self.drain_reports(id);
            // Sealing moves its timers (an acks=0 failure may start a retry backoff).
            let at = self.producers.get(&id).and_then(Producer::poll_timeout);
            self.timers.set(TimerKey::Producer(id), at);
        }
        self.produce_scratch = ready;
        self.produce_indexes = indexes;
    }

    /// Requests finished as soon as they were written (`acks = 0`, or one that could not
    /// be encoded) are settled at once: no answer will come to drive the client later.
    /// Only producers' responses are taken; anything else waits for the next drive.
    fn settle_written(&mut self, now: Instant, h: ConnectionHandle) {
        loop {
            let Some(c) = self.conns.get_mut(&h) else {
                return;
            };
            let ours = matches!(
                c.conn.peek_event(),
                Some(ConnectionEvent::Response { id, .. }) if self.producer_sent.contains_key(&(h, *id))
            );
            if !ours {
                return;
            }
            if let Some(ConnectionEvent::Response { id, result, .. }) = c.conn.poll_event() {
                self.on_producer_response(now, h, id, &result);
            }
        }
    }

    /// Sends InitProducerId for producer `id` if it needs one and a broker is ready.
    fn init_producer_id(&mut self, now: Instant, id: ProducerId) -> bool {
        let wants = self
            .producers
            .get(&id)
            .is_some_and(Producer::wants_producer_id);
        if !wants {
            return false;
        }
        let h = match self.route(now, &Target::AnyBroker, now) {
            Ok(Some(h)) => h,
            Ok(None) => return false,
            Err(e) => {
                tracing::debug!(error = %e, "no broker for InitProducerId");
                return false;
            }
        };
        let Some(c) = self.conns.get_mut(&h) else {
            return false;
        };
        let version = match c
            .conn
            .api_versions()
            .map(|v| v.choose(ApiKey::InitProducerId, VersionChoice::Highest))
        {
            Some(Ok(v)) => v,
            Some(Err(e)) => {
                if let Some(p) = self.producers.get_mut(&id) {
                    p.fail_waiting(&e);
                }
                return false;
            }
            None => return false,
        };
        let Some((producer_id, producer_epoch)) = self
            .producers
            .get_mut(&id)
            .and_then(Producer::poll_init_producer_id)
        else {
            return false;
        };
        // Bumping the epoch of a known id is KIP-360 (v3+); before, ask for a new id.
        let (producer_id, producer_epoch) = if version >= 3 {
            (producer_id, producer_epoch)
        } else {
            (-1, -1)
        };
        let body = InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: i32::MAX,
            producer_id,
            producer_epoch,
            ..Default::default()
        };
        let body = RequestBody::InitProducerId(body);
        self.send_owned(now, h, body, version, ProducerRequest::InitProducerId(id));
        true
    }

    /// Sends a producer's request on connection `h` and records its owner.
    fn send_owned(
        &mut self,
        now: Instant,
        h: ConnectionHandle,
        body: RequestBody,
        version: i16,
        owner: ProducerRequest,
    ) {
        if let Some(rid) = self.send_on(now, h, body, version) {
            self.producer_sent.insert((h, rid), owner);
        }
    }

    /// A response (or failure) for a producer's request; `false` if the request was not a
    /// producer's.
    pub(super) fn on_producer_response(
        &mut self,
        now: Instant,
        h: ConnectionHandle,
        rid: RequestId,
        result: &Result<ResponseBody, Error>,
    ) -> bool {
        let Some(owner) = self.producer_sent.remove(&(h, rid)) else {
            return false;
        };
        match owner {
            ProducerRequest::Produce(id, token) => {
                let Some(p) = self.producers.get_mut(&id) else {
                    return true;
                };
                let unexpected = Error::Misuse("a Produce request got another answer".into());
                let result = match result {
                    Ok(ResponseBody::Produce(r)) => Ok(r),
                    Ok(_) => Err(&unexpected),
                    Err(e) => Err(e),
                };
                let follow = p.handle_response(now, token, result);
                if follow.refresh_metadata {
                    self.cluster.invalidate("a Produce request failed");
                    self.request_refresh(now);
                }
                self.drain_reports(id);
            }
            ProducerRequest::InitProducerId(id) => {
                let Some(p) = self.producers.get_mut(&id) else {
                    return true;
                };
                let r = match result {
                    Ok(ResponseBody::InitProducerId(r)) => Ok(r),
                    Ok(_) => Err(Error::Misuse(
                        "an InitProducerId request got another answer".into(),
                    )),
                    Err(e) => Err(e.clone()),
                };
                if let Err(e) = p.handle_init_producer_id(now, r) {
                    tracing::warn!(error = %e, "InitProducerId failed");
                    if !e.is_retriable() {
                        p.fail_waiting(&e);
                        self.drain_reports(id);
                    }
                }
            }
        }
        true
    }

    fn drain_reports(&mut self, id: ProducerId) {
        if let Some(p) = self.producers.get_mut(&id) {
            while let Some(r) = p.poll_report() {
                self.events.push_back(Event::Delivery(r));
            }
        }
    }
}
