//! The client's side of consuming: consumers are sub-state machines the client owns,
//! addressed by [`ConsumerId`]. Seeking, pausing and taking batches only touch the
//! consumer; the client builds Fetch and ListOffsets requests when a leader's connection
//! can send (late binding), routes each answer back to the consumer that owns it, and
//! refreshes the metadata when leaders moved. A partition whose fetch failed (leader
//! moved, broker down, connection cut) is fetched again from the same offset once the
//! metadata names its leader: nothing is skipped or repeated.

use std::time::Instant;

use super::timers::TimerKey;
use super::{Client, ConnectionHandle, Event, OpId};
use crate::connection::{ConnectionState, RequestId, VersionChoice};
use crate::consumer::{
    Consumer, ConsumerConfig, ConsumerId, FetchToken, FetchedBatch, LookupToken, OffsetSpec,
};
use crate::error::Error;
use crate::protocol::messages::{ApiKey, RequestBody, ResponseBody};

/// The highest Fetch version the consumer speaks: v13+ names topics by id, which the
/// metadata cache does not keep.
const MAX_FETCH_VERSION: i16 = 12;

/// What a consumer's request on the wire is.
#[derive(Debug)]
pub(super) enum ConsumerRequest {
    Fetch(ConsumerId, FetchToken, i16),
    Lookup(ConsumerId, LookupToken),
}

impl Client {
    /// Starts a consumer with nothing assigned; add partitions with
    /// [`assign`](Self::assign).
    pub fn add_consumer(
        &mut self,
        _now: Instant,
        config: ConsumerConfig,
    ) -> Result<ConsumerId, Error> {
        config.validate()?;
        let id = ConsumerId(self.next_consumer);
        self.next_consumer += 1;
        let mut consumer = Consumer::new(id, config);
        consumer.set_max_response_size(self.config.max_frame_size);
        self.consumers.insert(id, consumer);
        Ok(id)
    }

    /// The consumer `id`: positions, lag, buffered bytes.
    pub fn consumer(&self, id: ConsumerId) -> Option<&Consumer> {
        self.consumers.get(&id)
    }

    fn consumer_mut(&mut self, id: ConsumerId) -> Result<&mut Consumer, Error> {
        self.consumers
            .get_mut(&id)
            .ok_or_else(|| Error::Misuse(format!("no consumer {id:?}")))
    }

    /// Assigns `topic`'s `partition` to consumer `id`, starting at `start`. The next
    /// drive routes it ([`poll_timeout`](Self::poll_timeout) asks for one at once).
    pub fn assign(
        &mut self,
        now: Instant,
        id: ConsumerId,
        topic: &str,
        partition: i32,
        start: OffsetSpec,
    ) -> Result<(), Error> {
        self.consumer_mut(id)?.assign(topic, partition, start)?;
        self.drive_soon(now);
        Ok(())
    }

    /// Moves a partition's position (see [`Consumer::seek`]).
    pub fn seek(
        &mut self,
        now: Instant,
        id: ConsumerId,
        topic: &str,
        partition: i32,
        to: OffsetSpec,
    ) -> Result<(), Error> {
        self.consumer_mut(id)?.seek(topic, partition, to)?;
        self.drive_soon(now);
        Ok(())
    }

    /// Stops fetching and handing out a partition's batches.
    pub fn pause(
        &mut self,
        _now: Instant,
        id: ConsumerId,
        topic: &str,
        partition: i32,
    ) -> Result<(), Error> {
        self.consumer_mut(id)?.pause(topic, partition)
    }

    /// Undoes [`pause`](Self::pause).
    pub fn resume(
        &mut self,
        now: Instant,
        id: ConsumerId,
        topic: &str,
        partition: i32,
    ) -> Result<(), Error> {
        self.consumer_mut(id)?.resume(topic, partition)?;
        self.drive_soon(now);
        Ok(())
    }

    /// The next fetched batch of consumer `id`. When taking it frees room in the
    /// prefetch budget, [`poll_timeout`](Self::poll_timeout) asks for a drive at once.
    pub fn poll_batch(&mut self, now: Instant, id: ConsumerId) -> Option<FetchedBatch> {
        let c = self.consumers.get_mut(&id)?;
        let had_room = c.has_room();
        let batch = c.poll_batch()?;
        if !had_room && c.has_room() {
            self.drive_soon(now);
        }
        Some(batch)
    }

    /// Commits consumer `id`'s positions (the next offset to read of each assigned
    /// partition whose position is known) for group `group`: one
    /// [`commit_offsets`](Self::commit_offsets) operation per topic, whose ids are
    /// returned (none for an unknown consumer). For auto-commit and commit on close.
    pub fn commit_positions(&mut self, now: Instant, id: ConsumerId, group: &str) -> Vec<OpId> {
        let Some(c) = self.consumers.get(&id) else {
            return Vec::new();
        };
        let positions: Vec<(String, Vec<(i32, i64)>)> = c
            .positions()
            .into_iter()
            .map(|(t, o)| (t.to_owned(), o))
            .collect();
        positions
            .into_iter()
            .map(|(topic, offsets)| self.commit_offsets(now, group, &topic, offsets))
            .collect()
    }

    /// Removes consumer `id`; answers to its requests still on the wire are dropped.
    pub fn remove_consumer(&mut self, _now: Instant, id: ConsumerId) {
        self.consumers.remove(&id);
        self.timers.set(TimerKey::Consumer(id), None);
        self.consumer_sent.retain(|_, r| match r {
            ConsumerRequest::Fetch(c, ..) | ConsumerRequest::Lookup(c, _) => *c != id,
        });
    }

    /// Consumer timers, then a connection to the leader of every partition that wants a
    /// request (a metadata refresh when a leader is unknown). Requests are built later,
    /// when the transport asks the connection for bytes.
    pub(super) fn drive_consumers(&mut self, now: Instant) -> bool {
        if self.consumers.is_empty() {
            return false;
        }
        let mut leaders: Vec<i32> = Vec::new();
        let mut refresh = false;
        let (cluster, generation) = (&self.cluster, self.cluster.generation());
        let leader_of = |t: &str, p: i32| cluster.leader(t, p);
        for c in self.consumers.values_mut() {
            c.handle_timeout(now);
            c.sync_leaders(generation, &leader_of);
            for l in c.wanted_brokers() {
                if !leaders.contains(&l) {
                    leaders.push(l);
                }
            }
            refresh |= c.wants_a_leader();
        }
        if refresh {
            self.request_refresh(now);
        }
        for leader in leaders {
            if let Err(e) = self.broker_connection(now, leader, now, true) {
                tracing::debug!(leader, error = %e, "no connection to the leader");
            }
        }
        self.drain_consumer_events();
        false
    }

    /// The broker a ready connection with a free in-flight slot reaches, and its
    /// versions' choice for Fetch.
    fn consumer_slot(&self, h: ConnectionHandle) -> Option<(i32, i16)> {
        let c = self.conns.get(&h)?;
        let max = self.config.max_in_flight_requests_per_connection;
        if c.conn.state() != ConnectionState::Ready || c.conn.in_flight() + c.conn.queued() >= max {
            return None;
        }
        let version = c
            .conn
            .api_versions()?
            .choose(ApiKey::Fetch, VersionChoice::AtMost(MAX_FETCH_VERSION))
            .ok()?;
        let addr = &c.addr;
        let broker = self
            .cluster
            .brokers()
            .find(|b| b.host == addr.host && b.port == addr.port)?
            .id;
        Some((broker, version))
    }

    /// Whether a consumer has a request for connection `h` (for `wants_transmit`).
    pub(super) fn consumers_want_transmit(&self, h: ConnectionHandle) -> bool {
        if self.consumers.is_empty() {
            return false;
        }
        let Some((broker, _)) = self.consumer_slot(h) else {
            return false;
        };
        let generation = self.cluster.generation();
        self.consumers
            .values()
            .any(|c| c.has_request_for(broker, generation))
    }

    /// Late binding: the consumers' lookups and fetches for the broker connection `h`
    /// reaches, while it has free in-flight slots. Nothing is opened or routed here.
    pub(super) fn fill_consumers(&mut self, now: Instant, h: ConnectionHandle) {
        if self.consumers.is_empty() {
            return;
        }
        let ids: Vec<ConsumerId> = self.consumers.keys().copied().collect();
        for id in ids {
            let Some((broker, _)) = self.consumer_slot(h) else {
                return;
            };
            let (cluster, generation) = (&self.cluster, self.cluster.generation());
            let leader_of = |t: &str, p: i32| cluster.leader(t, p);
            let Some(c) = self.consumers.get_mut(&id) else {
                continue;
            };
            c.sync_leaders(generation, &leader_of);
            let lookup_version = self
                .conns
                .get(&h)
                .and_then(|c| c.conn.api_versions())
                .map(|v| v.choose(ApiKey::ListOffsets, VersionChoice::Highest))
                .unwrap_or(Ok(0));
            let lookup = c.poll_lookup(broker, *lookup_version.as_ref().unwrap_or(&0));
            if let Some((request, token)) = lookup {
                match lookup_version {
                    Ok(v) => {
                        let body = RequestBody::ListOffsets(request);
                        self.send_consumer(now, h, body, v, ConsumerRequest::Lookup(id, token));
                    }
                    // The broker cannot answer: the partitions stop with the reason.
                    Err(e) => {
                        if let Some(c) = self.consumers.get_mut(&id) {
                            c.handle_lookup_response(now, token, Err(&e));
                        }
                    }
                }
            }
            let Some((broker, version)) = self.consumer_slot(h) else {
                return;
            };
            let Some(c) = self.consumers.get_mut(&id) else {
                continue;
            };
            if let Some((request, token)) = c.poll_fetch(broker, version) {
                let body = RequestBody::Fetch(request);
                self.send_consumer(
                    now,
                    h,
                    body,
                    version,
                    ConsumerRequest::Fetch(id, token, version),
                );
            }
            // A refused lookup may have started a backoff.
            let at = self.consumers.get(&id).and_then(Consumer::poll_timeout);
            self.timers.set(TimerKey::Consumer(id), at);
        }
    }

    fn send_consumer(
        &mut self,
        now: Instant,
        h: ConnectionHandle,
        body: RequestBody,
        version: i16,
        owner: ConsumerRequest,
    ) {
        if let Some(rid) = self.send_on(now, h, body, version) {
            self.consumer_sent.insert((h, rid), owner);
        }
    }

    /// A response (or failure) for a consumer's request; `false` if it was not one.
    pub(super) fn on_consumer_response(
        &mut self,
        now: Instant,
        h: ConnectionHandle,
        rid: RequestId,
        result: &Result<ResponseBody, Error>,
    ) -> bool {
        let Some(owner) = self.consumer_sent.remove(&(h, rid)) else {
            return false;
        };
        let follow = match owner {
            ConsumerRequest::Fetch(id, token, version) => {
                let Some(c) = self.consumers.get_mut(&id) else {
                    return true;
                };
                let unexpected = Error::Misuse("a Fetch request got another answer".into());
                let r = match result {
                    Ok(ResponseBody::Fetch(r)) => Ok(r),
                    Ok(_) => Err(&unexpected),
                    Err(e) => Err(e),
                };
                c.handle_fetch_response(now, token, r, version)
            }
            ConsumerRequest::Lookup(id, token) => {
                let Some(c) = self.consumers.get_mut(&id) else {
                    return true;
                };
                let unexpected = Error::Misuse("a ListOffsets request got another answer".into());
                let r = match result {
                    Ok(ResponseBody::ListOffsets(r)) => Ok(r),
                    Ok(_) => Err(&unexpected),
                    Err(e) => Err(e),
                };
                c.handle_lookup_response(now, token, r)
            }
        };
        if follow.refresh_metadata {
            self.cluster.invalidate("a consumer's request failed");
            self.request_refresh(now);
        }
        self.drain_consumer_events();
        true
    }

    fn drain_consumer_events(&mut self) {
        for c in self.consumers.values_mut() {
            while let Some(e) = c.poll_event() {
                self.events.push_back(Event::Consumer(e));
            }
        }
    }
}
