//! How a [`MockCluster`](super::MockCluster) is set up.

use std::time::Duration;

use crate::protocol::messages::ApiKey;

/// Which protocol a mock broker speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BrokerMode {
    /// A current broker: answers ApiVersions and offers every version grete's codec has
    /// for the APIs the mock implements.
    #[default]
    Modern,
    /// Like Kafka 0.9.0.1: only the 0.9 versions (Produce v0-1, Fetch v0-1, ListOffsets
    /// v0, Metadata v0, OffsetCommit v0-2, OffsetFetch v0-1, GroupCoordinator v0). An
    /// ApiVersions request is never answered and the connection stays open but dead, as
    /// the real broker's processor mutes it forever; anything else unknown closes the
    /// connection.
    Kafka09,
}

/// One mock broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockBrokerConfig {
    /// The broker id (`broker.id`).
    pub id: i32,
    /// The host name the broker advertises; the harness connects by (host, port).
    pub host: String,
    /// The port the broker advertises.
    pub port: u16,
    /// The rack, reported from Metadata v1.
    pub rack: Option<String>,
    /// Which protocol it speaks.
    pub mode: BrokerMode,
    /// Added before each response leaves the broker (processing time).
    pub latency: Duration,
    /// Changes to the version table the mode gives: `(api, min, max)` replaces the
    /// range of `api`; a `max` below `min` removes the API.
    pub api_versions: Vec<(ApiKey, i16, i16)>,
}

/// One topic the cluster starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockTopicConfig {
    /// The topic name.
    pub name: String,
    /// How many partitions.
    pub partitions: i32,
    /// How many replicas per partition (at most the number of brokers).
    pub replication_factor: i16,
    /// Whether Metadata marks it internal (like `__consumer_offsets`).
    pub internal: bool,
}

/// SASL on every mock broker's listener. Its `Debug` output shows the user names only.
#[derive(Clone, PartialEq, Eq)]
pub struct MockSasl {
    /// The mechanisms offered, e.g. `"PLAIN"`.
    pub mechanisms: Vec<String>,
    /// The accepted (user, password) pairs.
    pub users: Vec<(String, String)>,
}

impl std::fmt::Debug for MockSasl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let users: Vec<(&str, &str)> = self
            .users
            .iter()
            .map(|(user, _)| (user.as_str(), "<redacted>"))
            .collect();
        f.debug_struct("MockSasl")
            .field("mechanisms", &self.mechanisms)
            .field("users", &users)
            .finish()
    }
}

/// The whole cluster's setup. Build it with [`MockConfig::new`] and the `with_*` methods.
///
/// ```
/// use grete::mock::MockConfig;
/// let config = MockConfig::new(3).with_topic("events", 4, 2).with_seed(7);
/// assert_eq!(config.brokers.len(), 3);
/// assert_eq!(config.brokers[1].host, "broker-1.mock");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MockConfig {
    /// The brokers.
    pub brokers: Vec<MockBrokerConfig>,
    /// The topics that exist from the start.
    pub topics: Vec<MockTopicConfig>,
    /// `auto.create.topics.enable`: Metadata for an unknown topic creates it.
    pub auto_create_topics: bool,
    /// As Kafka does, the first Metadata response after auto-creating a topic reports it
    /// with LEADER_NOT_AVAILABLE and no partitions; the next one describes it.
    pub auto_create_leader_not_available: bool,
    /// `num.partitions` for auto-created topics and CreateTopics with -1.
    pub default_partitions: i32,
    /// `default.replication.factor` for auto-created topics and CreateTopics with -1.
    pub default_replication_factor: i16,
    /// `min.insync.replicas` for acks=-1 produce requests.
    pub min_insync_replicas: usize,
    /// When a broker goes down, move leadership of its partitions to a live in-sync
    /// replica (what the controller does); otherwise they stay leaderless.
    pub elect_leaders_on_failure: bool,
    /// The cluster id reported from Metadata v2.
    pub cluster_id: Option<String>,
    /// The largest request frame a broker accepts (`socket.request.max.bytes`).
    pub max_frame_size: usize,
    /// SASL on every listener.
    pub sasl: Option<MockSasl>,
    /// Seeds the cluster's randomness (topic ids, replica placement).
    pub seed: u64,
}

impl MockConfig {
    /// `brokers` modern brokers with ids 0.., hosts `broker-{id}.mock`, port 9092, no topics.
    pub fn new(brokers: usize) -> Self {
        let brokers = (0..brokers)
            .map(|i| MockBrokerConfig {
                id: i as i32,
                host: format!("broker-{i}.mock"),
                port: 9092,
                rack: None,
                mode: BrokerMode::Modern,
                latency: Duration::ZERO,
                api_versions: Vec::new(),
            })
            .collect();
        MockConfig {
            brokers,
            topics: Vec::new(),
            auto_create_topics: true,
            auto_create_leader_not_available: true,
            default_partitions: 1,
            default_replication_factor: 1,
            min_insync_replicas: 1,
            elect_leaders_on_failure: true,
            cluster_id: Some("grete-mock-cluster".to_owned()),
            max_frame_size: 100 * 1024 * 1024,
            sasl: None,
            seed: 0,
        }
    }

    /// Adds a topic (replication capped at the number of brokers).
    pub fn with_topic(mut self, name: &str, partitions: i32, replication_factor: i16) -> Self {
        self.topics.push(MockTopicConfig {
            name: name.to_owned(),
            partitions,
            replication_factor,
            internal: false,
        });
        self
    }

    /// Adds an internal `__consumer_offsets` topic with `partitions` partitions.
    pub fn with_offsets_topic(mut self, partitions: i32) -> Self {
        let rf = self.brokers.len().clamp(1, 3) as i16;
        self.topics.push(MockTopicConfig {
            name: "__consumer_offsets".to_owned(),
            partitions,
            replication_factor: rf,
            internal: true,
        });
        self
    }

    /// Every broker speaks like Kafka 0.9.0.1 (see [`BrokerMode::Kafka09`]).
    pub fn kafka_09(mut self) -> Self {
        for b in &mut self.brokers {
            b.mode = BrokerMode::Kafka09;
        }
        self
    }

    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Turns topic auto-creation on or off.
    pub fn with_auto_create(mut self, on: bool) -> Self {
        self.auto_create_topics = on;
        self
    }

    /// Requires SASL PLAIN with one user on every broker.
    pub fn with_sasl_plain(mut self, user: &str, password: &str) -> Self {
        self.sasl = Some(MockSasl {
            mechanisms: vec!["PLAIN".to_owned()],
            users: vec![(user.to_owned(), password.to_owned())],
        });
        self
    }

    /// Requires SASL SCRAM (`"SCRAM-SHA-256"` or `"SCRAM-SHA-512"`) with one user on
    /// every broker; PLAIN is offered too, for the same user.
    pub fn with_sasl_scram(mut self, mechanism: &str, user: &str, password: &str) -> Self {
        self.sasl = Some(MockSasl {
            mechanisms: vec![mechanism.to_owned(), "PLAIN".to_owned()],
            users: vec![(user.to_owned(), password.to_owned())],
        });
        self
    }

    /// Sets every broker's processing latency.
    pub fn with_latency(mut self, latency: Duration) -> Self {
        for b in &mut self.brokers {
            b.latency = latency;
        }
        self
    }
}
