//! Routing: which ready connection a request goes to, opening connections as needed.

use std::time::Instant;

use super::{Client, ConnectionHandle, Target};
use crate::config::{BrokerAddress, BrokerVersion};
use crate::connection::{Connection, ConnectionConfig, ConnectionState};
use crate::error::Error;
use crate::protocol::ErrorCode;

use super::{Conn, Io};

impl Client {
    /// A ready connection for `route`: `Ok(None)` to wait (a connection is being opened,
    /// metadata fetched, or a backoff runs).
    pub(super) fn route(
        &mut self,
        now: Instant,
        route: &Target,
        created: Instant,
    ) -> Result<Option<ConnectionHandle>, Error> {
        match route {
            Target::AnyBroker => Ok(self.any_connection(now)),
            Target::Broker(id) => self.broker_connection(now, *id, created),
            Target::Controller => match self.cluster.controller() {
                Some(id) if !self.cluster_stale() => self.broker_connection(now, id, created),
                _ if !self.cluster.is_known() || self.cluster_stale() => {
                    self.request_refresh(now);
                    Ok(None)
                }
                _ => Ok(self.any_connection(now)),
            },
            Target::Leader { topic, partition } => {
                if !self.cluster.is_known() || self.cluster_stale() {
                    self.request_refresh(now);
                    return Ok(None);
                }
                let fresh = self.cluster.updated_at().is_some_and(|t| t >= created);
                let Some(t) = self.cluster.topic(topic) else {
                    if fresh {
                        return Err(Error::broker(
                            ErrorCode::UnknownTopicOrPartition,
                            format!("topic {topic}"),
                        ));
                    }
                    self.cluster
                        .invalidate(format!("topic {topic} not in metadata"));
                    self.request_refresh(now);
                    return Ok(None);
                };
                match t.partitions.get(partition).map(|p| p.leader) {
                    Some(Some(leader)) => self.broker_connection(now, leader, created),
                    None if fresh => Err(Error::broker(
                        ErrorCode::UnknownTopicOrPartition,
                        format!("topic {topic} partition {partition}"),
                    )),
                    _ => {
                        // No leader yet (election, creation): ask again after a backoff.
                        self.cluster
                            .invalidate(format!("no leader for {topic}-{partition}"));
                        self.request_refresh(now);
                        Ok(None)
                    }
                }
            }
        }
    }

    pub(super) fn cluster_stale(&self) -> bool {
        self.cluster.stale_reason().is_some()
    }

    pub(super) fn broker_connection(
        &mut self,
        now: Instant,
        id: i32,
        created: Instant,
    ) -> Result<Option<ConnectionHandle>, Error> {
        let Some(b) = self.cluster.broker(id) else {
            if self.cluster.updated_at().is_some_and(|t| t >= created) && !self.cluster_stale() {
                return Err(Error::Misuse(format!(
                    "no broker with id {id} in the cluster"
                )));
            }
            self.request_refresh(now);
            return Ok(None);
        };
        let addr = BrokerAddress::new(b.host.clone(), b.port);
        Ok(self.connection_to(now, &addr))
    }

    /// The ready connection to `addr`, or `None` after starting one if allowed.
    pub(super) fn connection_to(
        &mut self,
        now: Instant,
        addr: &BrokerAddress,
    ) -> Option<ConnectionHandle> {
        if let Some(&h) = self.by_addr.get(addr) {
            let ready = self
                .conns
                .get(&h)
                .is_some_and(|c| c.conn.state() == ConnectionState::Ready);
            return ready.then_some(h);
        }
        if self.backoff.get(addr).is_some_and(|b| b.until.is_some()) {
            return None;
        }
        self.open(now, addr.clone());
        None
    }

    pub(super) fn any_connection(&mut self, now: Instant) -> Option<ConnectionHandle> {
        if let Some((h, _)) = self
            .conns
            .iter()
            .find(|(_, c)| c.conn.state() == ConnectionState::Ready)
        {
            return Some(*h);
        }
        if self
            .conns
            .values()
            .any(|c| c.conn.state() != ConnectionState::Closed)
        {
            return None;
        }
        let mut candidates: Vec<BrokerAddress> = self
            .cluster
            .brokers()
            .map(|b| BrokerAddress::new(b.host.clone(), b.port))
            .collect();
        // The bootstrap brokers come last: the cluster may have moved on from them.
        for b in &self.bootstrap {
            if !candidates.contains(b) {
                candidates.push(b.clone());
            }
        }
        if candidates.is_empty() {
            self.start_zookeeper(now);
            return None;
        }
        let n = candidates.len();
        for i in 0..n {
            let addr = &candidates[(self.any_cursor + i) % n];
            if self.backoff.get(addr).is_some_and(|b| b.until.is_some()) {
                continue;
            }
            self.any_cursor = (self.any_cursor + i + 1) % n;
            let addr = addr.clone();
            self.open(now, addr);
            return None;
        }
        None
    }

    pub(super) fn open(&mut self, now: Instant, addr: BrokerAddress) -> ConnectionHandle {
        let h = ConnectionHandle(self.next_conn);
        self.next_conn += 1;
        let mut config = ConnectionConfig::from_client(&self.config);
        if self.no_probe.contains(&addr) {
            // It did not answer ApiVersions, so it predates 0.10 whatever the
            // configuration says: use at most 0.9.0's table.
            config.probe_api_versions = false;
            config.broker_version = config.broker_version.min(BrokerVersion::new(0, 9, 0));
        }
        let conn = Connection::new(config, &mut self.rng.fork());
        self.io.push_back(Io::Connect {
            conn: h,
            host: addr.host.clone(),
            port: addr.port,
        });
        self.by_addr.insert(addr.clone(), h);
        self.conns.insert(
            h,
            Conn {
                conn,
                addr,
                transport_closed: false,
                connect_deadline: now + self.config.connect_timeout,
            },
        );
        h
    }
}
