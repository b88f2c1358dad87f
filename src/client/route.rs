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
    /// metadata fetched, or a backoff runs); an error fails the request at once.
    pub(super) fn route(
        &mut self,
        now: Instant,
        route: &Target,
        created: Instant,
    ) -> Result<Option<ConnectionHandle>, Error> {
        match route {
            Target::AnyBroker => self.any_connection(now),
            Target::Broker(id) => self.broker_connection(now, *id, created, false),
            Target::Controller => match self.cluster.controller() {
                Some(id) if !self.cluster_stale() => self.broker_connection(now, id, created, true),
                _ if !self.cluster.is_known() || self.cluster_stale() => {
                    self.request_refresh(now);
                    Ok(None)
                }
                _ => self.any_connection(now),
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
                    Some(Some(leader)) => self.broker_connection(now, leader, created, true),
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

    /// The connection to broker `id`. `named_by_cluster`: the id comes from the metadata
    /// (a leader, the controller), so a broker missing from the broker list is the
    /// cluster changing under us (a broker restarting, metadata from a lagging broker):
    /// refresh and wait. An id the caller chose that fresh metadata does not know is a
    /// mistake ([`Error::Misuse`]).
    pub(super) fn broker_connection(
        &mut self,
        now: Instant,
        id: i32,
        created: Instant,
        named_by_cluster: bool,
    ) -> Result<Option<ConnectionHandle>, Error> {
        let Some(b) = self.cluster.broker(id) else {
            let fresh =
                self.cluster.updated_at().is_some_and(|t| t >= created) && !self.cluster_stale();
            if fresh && !named_by_cluster {
                return Err(Error::Misuse(format!(
                    "no broker with id {id} in the cluster"
                )));
            }
            if fresh {
                self.cluster
                    .invalidate(format!("broker {id} is named but not in the broker list"));
            }
            self.request_refresh(now);
            return Ok(None);
        };
        let addr = BrokerAddress::new(b.host.clone(), b.port);
        self.connection_to(now, &addr)
    }

    /// The ready connection to `addr`, or `None` after starting one if allowed; the
    /// error of the last attempt if it cannot be fixed by retrying.
    pub(super) fn connection_to(
        &mut self,
        now: Instant,
        addr: &BrokerAddress,
    ) -> Result<Option<ConnectionHandle>, Error> {
        if let Some(&h) = self.by_addr.get(addr) {
            let ready = self
                .conns
                .get(&h)
                .is_some_and(|c| c.conn.state() == ConnectionState::Ready);
            return Ok(ready.then_some(h));
        }
        if let Some(b) = self.backoff.get(addr).filter(|b| b.until.is_some()) {
            return match b.fatal() {
                Some(e) => Err(e.clone()),
                None => Ok(None),
            };
        }
        self.open(now, addr.clone());
        Ok(None)
    }

    pub(super) fn any_connection(
        &mut self,
        now: Instant,
    ) -> Result<Option<ConnectionHandle>, Error> {
        if let Some((h, _)) = self
            .conns
            .iter()
            .find(|(_, c)| c.conn.state() == ConnectionState::Ready)
        {
            return Ok(Some(*h));
        }
        if self
            .conns
            .values()
            .any(|c| c.conn.state() != ConnectionState::Closed)
        {
            return Ok(None);
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
            return Ok(None);
        }
        let n = candidates.len();
        // The first error that retrying cannot fix, while every broker so far had one.
        let mut fatal: Option<Option<Error>> = None;
        for i in 0..n {
            let addr = &candidates[(self.any_cursor + i) % n];
            if let Some(b) = self.backoff.get(addr).filter(|b| b.until.is_some()) {
                fatal = match (fatal, b.fatal()) {
                    (None, e) => Some(e.cloned()),
                    (Some(Some(first)), Some(_)) => Some(Some(first)),
                    _ => Some(None),
                };
                continue;
            }
            self.any_cursor = (self.any_cursor + i + 1) % n;
            let addr = addr.clone();
            self.open(now, addr);
            return Ok(None);
        }
        // Every broker is backing off: fail at once if each failed in a way retrying
        // cannot fix.
        match fatal.flatten() {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }

    pub(super) fn open(&mut self, now: Instant, addr: BrokerAddress) -> ConnectionHandle {
        let h = ConnectionHandle(self.next_conn);
        self.next_conn += 1;
        let mut config = ConnectionConfig::from_client(&self.config);
        if self.no_probe.get(&addr).is_some_and(|until| *until <= now) {
            // Long enough: ask again (the broker may have been upgraded, or was only slow).
            self.no_probe.remove(&addr);
        }
        let pinned = self.no_probe.contains_key(&addr);
        if pinned {
            // It kept silent on ApiVersions, so it predates 0.10 whatever the
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
                pinned,
                was_ready: false,
            },
        );
        h
    }
}
