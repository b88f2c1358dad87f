//! The metadata cache: brokers, controller, topics and partitions (leader, replicas, ISR),
//! and when to refresh it.
//!
//! The core keeps its [`Cluster`] in a [`ClusterCache`]: one immutable, shared snapshot
//! ([`Arc<Cluster>`]) and a generation number that every change moves. A transport that
//! shows the cluster to its handles publishes the `Arc` only when the generation changed;
//! a change copies the cluster at most once (copy on write), however many operations run.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::protocol::messages::MetadataResponse;
use crate::protocol::ErrorCode;

/// Kafka's internal topics, for brokers that do not flag them (Metadata v0).
const INTERNAL_TOPICS: &[&str] = &["__consumer_offsets", "__transaction_state"];

/// A broker as the cluster describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// The broker id.
    pub id: i32,
    /// Its advertised host.
    pub host: String,
    /// Its advertised port.
    pub port: u16,
    /// Its rack, if configured (Metadata v1+).
    pub rack: Option<String>,
}

/// One partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// The partition index.
    pub id: i32,
    /// The leader's broker id, `None` while there is no leader.
    pub leader: Option<i32>,
    /// All replicas' broker ids.
    pub replicas: Vec<i32>,
    /// The in-sync replicas' broker ids.
    pub isr: Vec<i32>,
    /// The error the broker reported for this partition, if any.
    pub error: Option<ErrorCode>,
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// The topic name.
    pub name: String,
    /// Whether it is an internal topic (such as `__consumer_offsets`).
    pub is_internal: bool,
    /// The error the broker reported for the topic (for example `LEADER_NOT_AVAILABLE`
    /// while it is being created), if any.
    pub error: Option<ErrorCode>,
    /// Partitions by index.
    pub partitions: BTreeMap<i32, PartitionInfo>,
}

/// The client's view of the cluster.
#[derive(Debug, Clone)]
pub struct Cluster {
    brokers: BTreeMap<i32, BrokerInfo>,
    controller: Option<i32>,
    cluster_id: Option<String>,
    topics: BTreeMap<String, TopicInfo>,
    exclude_internal_topics: bool,
    max_age: Duration,
    updated_at: Option<Instant>,
    stale: Option<String>,
}

impl Cluster {
    /// An empty cache; metadata older than `max_age` needs a refresh.
    pub fn new(max_age: Duration, exclude_internal_topics: bool) -> Cluster {
        Cluster {
            brokers: BTreeMap::new(),
            controller: None,
            cluster_id: None,
            topics: BTreeMap::new(),
            exclude_internal_topics,
            max_age,
            updated_at: None,
            stale: None,
        }
    }

    /// Applies a Metadata response. `all_topics` says the request asked for every topic,
    /// so topics missing from the answer are gone; otherwise only the named ones change.
    pub fn apply(&mut self, response: &MetadataResponse, all_topics: bool, now: Instant) {
        self.brokers = response
            .brokers
            .iter()
            .filter_map(|b| {
                let port = u16::try_from(b.port).ok()?;
                Some((
                    b.node_id,
                    BrokerInfo {
                        id: b.node_id,
                        host: b.host.clone(),
                        port,
                        rack: b.rack.clone(),
                    },
                ))
            })
            .collect();
        self.controller = (response.controller_id >= 0).then_some(response.controller_id);
        if response.cluster_id.is_some() {
            self.cluster_id = response.cluster_id.clone();
        }
        let mut old = if all_topics {
            std::mem::take(&mut self.topics)
        } else {
            BTreeMap::new()
        };
        for t in &response.topics {
            let Some(name) = &t.name else { continue };
            let error = ErrorCode::from_code(t.error_code);
            if error == Some(ErrorCode::UnknownTopicOrPartition) {
                self.topics.remove(name);
                continue;
            }
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let info = PartitionInfo {
                        id: p.partition_index,
                        leader: (p.leader_id >= 0).then_some(p.leader_id),
                        replicas: p.replica_nodes.clone(),
                        isr: p.isr_nodes.clone(),
                        error: ErrorCode::from_code(p.error_code),
                    };
                    (p.partition_index, info)
                })
                .collect();
            let before = old.remove(name).or_else(|| self.topics.remove(name));
            if let Some(before) = &before {
                log_leader_changes(name, before, &partitions);
            }
            self.topics.insert(
                name.clone(),
                TopicInfo {
                    name: name.clone(),
                    // Metadata v0 has no flag: Kafka's own internal topics by name.
                    is_internal: t.is_internal || INTERNAL_TOPICS.contains(&name.as_str()),
                    error,
                    partitions,
                },
            );
        }
        if all_topics {
            self.updated_at = Some(now);
            self.stale = None;
        }
    }

    /// Marks the cache stale (a leader error, an unknown topic): the next
    /// [`needs_refresh`](Self::needs_refresh) says yes.
    pub fn invalidate(&mut self, reason: impl Into<String>) {
        self.stale = Some(reason.into());
    }

    /// Why the cache was invalidated, if it was.
    pub fn stale_reason(&self) -> Option<&str> {
        self.stale.as_deref()
    }

    /// Whether the metadata should be fetched again: never fetched, invalidated, or older
    /// than `metadata_max_age`.
    pub fn needs_refresh(&self, now: Instant) -> bool {
        self.stale.is_some() || self.next_refresh().map_or(true, |t| t <= now)
    }

    /// When the age limit will call for a refresh (`None` before the first full update).
    pub fn next_refresh(&self) -> Option<Instant> {
        self.updated_at.map(|t| t + self.max_age)
    }

    /// When the last full update was applied.
    pub fn updated_at(&self) -> Option<Instant> {
        self.updated_at
    }

    /// Whether a full update has been applied.
    pub fn is_known(&self) -> bool {
        self.updated_at.is_some()
    }

    /// The brokers, by id.
    pub fn brokers(&self) -> impl Iterator<Item = &BrokerInfo> {
        self.brokers.values()
    }

    /// A broker by id.
    pub fn broker(&self, id: i32) -> Option<&BrokerInfo> {
        self.brokers.get(&id)
    }

    /// The controller's broker id, if known (Metadata v1+).
    pub fn controller(&self) -> Option<i32> {
        self.controller
    }

    /// The cluster id, if known (Metadata v2+).
    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster_id.as_deref()
    }

    /// The topics by name, without internal topics when `exclude_internal_topics` is set.
    pub fn topics(&self) -> impl Iterator<Item = &TopicInfo> {
        let hide = self.exclude_internal_topics;
        self.topics
            .values()
            .filter(move |t| !(hide && t.is_internal))
    }

    /// A topic by name (internal topics too, when asked for by name).
    pub fn topic(&self, name: &str) -> Option<&TopicInfo> {
        self.topics.get(name)
    }

    /// The leader of a partition, if known.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        self.topics.get(topic)?.partitions.get(&partition)?.leader
    }
}

/// The core's [`Cluster`]: an immutable snapshot shared with whoever holds it (a
/// transport's handles), replaced on write, and a generation number that counts the
/// changes (Java's `Metadata.updateVersion`).
///
/// Reading goes through `Deref`. [`apply`](Self::apply) and
/// [`invalidate`](Self::invalidate) copy the cluster only when a snapshot handed out by
/// Logs (at info level) each partition of `topic` whose leader changed.
fn log_leader_changes(topic: &str, before: &TopicInfo, after: &BTreeMap<i32, PartitionInfo>) {
    for (id, p) in after {
        let old = before.partitions.get(id).and_then(|p| p.leader);
        if old != p.leader {
            tracing::info!(topic, partition = *id, from = ?old, to = ?p.leader, "leader changed");
        }
    }
}

/// [`snapshot`](Self::snapshot) is still held, and move the generation.
#[derive(Debug, Clone)]
pub struct ClusterCache {
    current: Arc<Cluster>,
    generation: u64,
}

impl ClusterCache {
    /// A cache holding `cluster`, at generation 0.
    pub fn new(cluster: Cluster) -> ClusterCache {
        ClusterCache {
            current: Arc::new(cluster),
            generation: 0,
        }
    }

    /// The current cluster, shared: holding it costs nothing and never sees later changes.
    pub fn snapshot(&self) -> Arc<Cluster> {
        Arc::clone(&self.current)
    }

    /// How many changes have been made: equal generations mean equal snapshots.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// [`Cluster::apply`], as a new generation.
    pub fn apply(&mut self, response: &MetadataResponse, all_topics: bool, now: Instant) {
        self.change().apply(response, all_topics, now);
    }

    /// [`Cluster::invalidate`], as a new generation.
    pub fn invalidate(&mut self, reason: impl Into<String>) {
        self.change().invalidate(reason);
    }

    fn change(&mut self) -> &mut Cluster {
        self.generation += 1;
        Arc::make_mut(&mut self.current)
    }
}

impl Deref for ClusterCache {
    type Target = Cluster;

    fn deref(&self) -> &Cluster {
        &self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };

    fn response() -> MetadataResponse {
        let broker = |id: i32| MetadataResponseBroker {
            node_id: id,
            host: format!("k{id}"),
            port: 9092,
            ..Default::default()
        };
        let topic = |name: &str, internal: bool, leaders: &[i32]| MetadataResponseTopic {
            name: Some(name.into()),
            is_internal: internal,
            partitions: leaders
                .iter()
                .enumerate()
                .map(|(i, &l)| MetadataResponsePartition {
                    partition_index: i as i32,
                    leader_id: l,
                    replica_nodes: vec![1, 2],
                    isr_nodes: vec![1],
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        MetadataResponse {
            brokers: vec![broker(1), broker(2)],
            controller_id: 2,
            topics: vec![
                topic("t", false, &[1, -1]),
                topic("__consumer_offsets", true, &[2]),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn apply_reads_brokers_topics_partitions_and_hides_internal_topics() {
        let now = Instant::now();
        let mut c = Cluster::new(Duration::from_secs(60), true);
        assert!(c.needs_refresh(now));
        c.apply(&response(), true, now);
        assert_eq!(c.brokers().count(), 2);
        assert_eq!(c.broker(2).unwrap().host, "k2");
        assert_eq!(c.controller(), Some(2));
        assert_eq!(
            c.topics().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["t"]
        );
        assert!(c.topic("__consumer_offsets").is_some());
        assert_eq!(c.leader("t", 0), Some(1));
        assert_eq!(c.leader("t", 1), None);
        assert_eq!(c.topic("t").unwrap().partitions[&0].isr, vec![1]);
        let shown = Cluster {
            exclude_internal_topics: false,
            ..c.clone()
        };
        assert_eq!(shown.topics().count(), 2);
    }

    /// Issue #6, item 7: the transports copied the cluster after every operation. The cache
    /// hands out one shared snapshot, and a change copies it at most once.
    #[test]
    fn cluster_cache_copies_once_per_change_not_per_read() {
        let now = Instant::now();
        let mut cache = ClusterCache::new(Cluster::new(Duration::from_secs(60), true));
        cache.apply(&response(), true, now);
        assert_eq!(cache.generation(), 1);
        let shown = cache.snapshot();
        for _ in 0..100 {
            assert!(Arc::ptr_eq(&shown, &cache.snapshot()));
            assert_eq!(cache.leader("t", 0), Some(1));
        }
        assert_eq!(cache.generation(), 1);
        // A change while the snapshot is held: the holder keeps what it saw.
        cache.invalidate("test");
        assert_eq!(cache.generation(), 2);
        assert_eq!(shown.stale_reason(), None);
        assert_eq!(cache.stale_reason(), Some("test"));
        let second = cache.snapshot();
        assert!(!Arc::ptr_eq(&shown, &second));
        // Nobody else holds it: changed in place, no copy.
        drop((shown, second));
        let before = Arc::as_ptr(&cache.snapshot());
        cache.apply(&response(), true, now);
        assert_eq!(Arc::as_ptr(&cache.snapshot()), before);
        assert_eq!(cache.generation(), 3);
    }

    #[test]
    fn refresh_policy_age_and_invalidation() {
        let t0 = Instant::now();
        let mut c = Cluster::new(Duration::from_secs(60), true);
        c.apply(&response(), true, t0);
        assert!(!c.needs_refresh(t0 + Duration::from_secs(59)));
        assert!(c.needs_refresh(t0 + Duration::from_secs(60)));
        c.invalidate("NOT_LEADER_OR_FOLLOWER for t-0");
        assert!(c.needs_refresh(t0));
        assert_eq!(c.stale_reason(), Some("NOT_LEADER_OR_FOLLOWER for t-0"));
        // A partial answer does not reset the age or the staleness.
        c.apply(&response(), false, t0 + Duration::from_secs(1));
        assert!(c.needs_refresh(t0));
        c.apply(&response(), true, t0 + Duration::from_secs(1));
        assert!(!c.needs_refresh(t0 + Duration::from_secs(2)));
    }

    #[test]
    fn unknown_topics_are_dropped_and_partial_updates_merge() {
        let t0 = Instant::now();
        let mut c = Cluster::new(Duration::from_secs(60), true);
        c.apply(&response(), true, t0);
        let gone = MetadataResponse {
            brokers: response().brokers,
            topics: vec![MetadataResponseTopic {
                name: Some("t".into()),
                error_code: ErrorCode::UnknownTopicOrPartition.code(),
                ..Default::default()
            }],
            ..Default::default()
        };
        c.apply(&gone, false, t0);
        assert!(c.topic("t").is_none());
        assert!(c.topic("__consumer_offsets").is_some());
    }

    #[test]
    fn internal_topics_are_known_by_name_on_v0() {
        let mut r = response();
        for t in &mut r.topics {
            t.is_internal = false;
        }
        r.topics.push(MetadataResponseTopic {
            name: Some("__mine".into()),
            ..Default::default()
        });
        let mut c = Cluster::new(Duration::from_secs(60), true);
        c.apply(&r, true, Instant::now());
        let names: Vec<&str> = c.topics().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["__mine", "t"]);
    }
}
