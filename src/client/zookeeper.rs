//! Bootstrap from ZooKeeper: list `/brokers/ids`, read each registration.

use std::collections::BTreeSet;
use std::time::Instant;

use super::{Client, Io};
use crate::config::BrokerAddress;
use crate::zk::{ZkError, ZkErrorKind, ZkOpId, ZkRequest, ZkResponse};

/// At most this many broker registrations are read from ZooKeeper.
const MAX_ZK_BROKERS: usize = 1000;

/// Where the ZooKeeper bootstrap is.
#[derive(Debug, Default)]
pub(super) enum ZkState {
    #[default]
    Idle,
    Listing(ZkOpId),
    Reading {
        pending: BTreeSet<ZkOpId>,
        found: Vec<BrokerAddress>,
        errors: Vec<String>,
    },
}

impl Client {
    pub(super) fn start_zookeeper(&mut self, now: Instant) {
        if !matches!(self.zk, ZkState::Idle) || self.zk_not_before.is_some() {
            return;
        }
        let Some(chroot) = self.config.bootstrap.zookeeper_chroot() else {
            return;
        };
        let path = format!("{chroot}/brokers/ids");
        let op = self.next_zk_op();
        self.zk = ZkState::Listing(op);
        self.zk_not_before = Some(now + self.config.reconnect_backoff);
        self.zk_deadline = Some(now + self.config.zookeeper_request_timeout());
        self.io.push_back(Io::ZooKeeper {
            op,
            request: ZkRequest::GetChildren { path },
        });
    }

    pub(super) fn next_zk_op(&mut self) -> ZkOpId {
        let op = ZkOpId(self.next_zk);
        self.next_zk += 1;
        op
    }

    pub(super) fn on_zk_result(
        &mut self,
        now: Instant,
        op: ZkOpId,
        result: Result<ZkResponse, ZkError>,
    ) {
        let chroot = self
            .config
            .bootstrap
            .zookeeper_chroot()
            .unwrap_or("")
            .to_owned();
        match std::mem::take(&mut self.zk) {
            ZkState::Listing(expected) if expected == op => match result {
                Ok(ZkResponse::Children(ids)) => {
                    let mut ids: Vec<i64> = ids.iter().filter_map(|s| s.parse().ok()).collect();
                    ids.sort_unstable();
                    ids.truncate(MAX_ZK_BROKERS);
                    if ids.is_empty() {
                        self.zk_failed(now, "no brokers registered under /brokers/ids".into());
                        return;
                    }
                    self.zk_deadline = Some(now + self.config.zookeeper_request_timeout());
                    let mut pending = BTreeSet::new();
                    for id in ids {
                        let op = self.next_zk_op();
                        pending.insert(op);
                        self.io.push_back(Io::ZooKeeper {
                            op,
                            request: ZkRequest::GetData {
                                path: format!("{chroot}/brokers/ids/{id}"),
                            },
                        });
                    }
                    self.zk = ZkState::Reading {
                        pending,
                        found: Vec::new(),
                        errors: Vec::new(),
                    };
                }
                Ok(other) => self.zk_failed(now, format!("unexpected answer {other:?}")),
                Err(e) => self.zk_failed(now, e.to_string()),
            },
            ZkState::Reading {
                mut pending,
                mut found,
                mut errors,
            } if pending.contains(&op) => {
                pending.remove(&op);
                let protocol = match (self.config.tls.is_some(), self.config.sasl.is_some()) {
                    (false, false) => "PLAINTEXT",
                    (true, false) => "SSL",
                    (false, true) => "SASL_PLAINTEXT",
                    (true, true) => "SASL_SSL",
                };
                match result {
                    Ok(ZkResponse::Data(data)) => {
                        match crate::zk::parse_broker_registration(&data, protocol) {
                            Ok(a) => found.push(a),
                            Err(e) => errors.push(e),
                        }
                    }
                    Ok(other) => errors.push(format!("unexpected answer {other:?}")),
                    Err(e) if e.kind == ZkErrorKind::NoNode => {}
                    Err(e) => errors.push(e.to_string()),
                }
                if !pending.is_empty() {
                    self.zk = ZkState::Reading {
                        pending,
                        found,
                        errors,
                    };
                } else if found.is_empty() {
                    let why = errors
                        .first()
                        .cloned()
                        .unwrap_or_else(|| "no broker registrations".into());
                    self.zk_failed(now, why);
                } else {
                    self.last_zk_error = None;
                    self.zk_deadline = None;
                    self.bootstrap = found;
                }
            }
            other => self.zk = other,
        }
    }

    /// The ZooKeeper reads in progress got no answer by their deadline: give up on them
    /// (a late answer is ignored) and try again after the backoff. The transport needs no
    /// timeout of its own.
    pub(super) fn expire_zookeeper(&mut self, now: Instant) -> bool {
        if matches!(self.zk, ZkState::Idle) || !self.zk_deadline.is_some_and(|t| t <= now) {
            return false;
        }
        let waited = self.config.zookeeper_request_timeout();
        self.zk_failed(now, format!("no answer from ZooKeeper within {waited:?}"));
        true
    }

    pub(super) fn zk_failed(&mut self, now: Instant, why: String) {
        self.zk = ZkState::Idle;
        self.zk_deadline = None;
        self.last_zk_error = Some(why);
        self.zk_not_before = Some(now + self.config.reconnect_backoff);
    }
}
