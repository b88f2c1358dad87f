//! Client configuration: plain structs with `Default`, named after PyKafka's options
//! where one fits.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::Error;
use crate::protocol::frame::DEFAULT_MAX_FRAME_SIZE;
use crate::protocol::messages::ApiKey;

/// Everything the core [`Client`](crate::client::Client) needs to know.
///
/// ```
/// use grete::config::{Bootstrap, BrokerAddress, ClientConfig};
/// let config = ClientConfig {
///     bootstrap: Bootstrap::Brokers(BrokerAddress::parse("k1:9092,k2:9092").unwrap()),
///     ..ClientConfig::default()
/// };
/// assert_eq!(config.broker_version.to_string(), "0.9.0");
/// ```
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The client id sent with every request.
    pub client_id: String,
    /// Where to find the cluster.
    pub bootstrap: Bootstrap,
    /// The broker version assumed when the broker cannot say (no ApiVersions): PyKafka's
    /// `broker_version`. Below 0.10 the client never asks.
    pub broker_version: BrokerVersion,
    /// Whether to ask the broker for its API versions (when `broker_version` >= 0.10).
    pub api_version_request: bool,
    /// How long to wait for the ApiVersions answer before falling back to
    /// `broker_version`'s table. Only a broker that keeps the connection open and stays
    /// silent falls back (what brokers before 0.10 do); a closed connection is an
    /// ordinary failure.
    pub api_version_request_timeout: Duration,
    /// How long a broker that fell back stays on `broker_version`'s table (at most 0.9's)
    /// before the client asks it for its versions again (librdkafka's
    /// `api.version.fallback.ms`). A fallen-back broker that closes a connection is asked
    /// again at once.
    pub api_version_fallback: Duration,
    /// How long a request may take, end to end (PyKafka's `socket_timeout_ms`).
    pub request_timeout: Duration,
    /// How long connecting may take (TCP, TLS handshake): the client abandons a
    /// connection not established by then. Each ZooKeeper read gets as long, but at
    /// most half of `request_timeout` (see [`ClientConfig::zookeeper_request_timeout`]).
    pub connect_timeout: Duration,
    /// The first delay before reconnecting to a broker that failed.
    pub reconnect_backoff: Duration,
    /// The largest reconnect delay.
    pub reconnect_backoff_max: Duration,
    /// How many requests may be written to one connection before the first is answered.
    pub max_in_flight_requests_per_connection: usize,
    /// Metadata older than this is refreshed.
    pub metadata_max_age: Duration,
    /// The largest response frame accepted.
    pub max_frame_size: usize,
    /// Hide internal topics (`__consumer_offsets`) from [`Cluster::topics`](crate::cluster::Cluster::topics).
    pub exclude_internal_topics: bool,
    /// SASL authentication, if any.
    pub sasl: Option<SaslConfig>,
    /// TLS, if any (applied by the transports).
    pub tls: Option<TlsConfig>,
    /// Seed for the core's randomness (reconnect jitter, SCRAM nonces). `None` (the
    /// default) seeds it from the operating system's entropy, so that no two clients
    /// draw the same nonces; a fixed seed makes runs reproducible (simulations, tests).
    pub rng_seed: Option<u64>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            client_id: "grete".into(),
            bootstrap: Bootstrap::Brokers(vec![BrokerAddress::new("127.0.0.1", 9092)]),
            broker_version: BrokerVersion::new(0, 9, 0),
            api_version_request: true,
            api_version_request_timeout: Duration::from_secs(3),
            api_version_fallback: Duration::from_secs(20 * 60),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            reconnect_backoff: Duration::from_millis(100),
            reconnect_backoff_max: Duration::from_secs(10),
            max_in_flight_requests_per_connection: 5,
            metadata_max_age: Duration::from_secs(300),
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            exclude_internal_topics: true,
            sasl: None,
            tls: None,
            rng_seed: None,
        }
    }
}

/// The longest duration a configuration may hold (one year): the client adds durations
/// to instants, which must not overflow. Longer means "never" in practice; say so with
/// this value.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// The shortest timer or delay a configuration may hold: below that, timers would fire
/// at the instant they are set.
pub const MIN_DURATION: Duration = Duration::from_millis(1);

impl ClientConfig {
    /// The durations of the configuration, by name.
    fn durations(&self) -> [(&'static str, Duration); 7] {
        [
            (
                "api_version_request_timeout",
                self.api_version_request_timeout,
            ),
            ("api_version_fallback", self.api_version_fallback),
            ("request_timeout", self.request_timeout),
            ("connect_timeout", self.connect_timeout),
            ("reconnect_backoff", self.reconnect_backoff),
            ("reconnect_backoff_max", self.reconnect_backoff_max),
            ("metadata_max_age", self.metadata_max_age),
        ]
    }

    /// How long one ZooKeeper read may take before the client gives up on it and tries
    /// again: `connect_timeout`, but at most half of `request_timeout`, so that an
    /// operation has time for a second try and can say why the first failed. The client
    /// enforces it; transports may use it to bound their own work.
    pub fn zookeeper_request_timeout(&self) -> Duration {
        self.connect_timeout.min(self.request_timeout / 2)
    }

    /// The ZooKeeper session timeout transports ask for: `request_timeout`, within what a
    /// default ZooKeeper accepts (2 to 20 ticks of 2 s, so 4 s to 40 s; at most 30 s).
    pub fn zookeeper_session_timeout(&self) -> Duration {
        self.request_timeout
            .clamp(Duration::from_secs(4), Duration::from_secs(30))
    }

    /// How long a transport lets a write go without progress (no byte accepted by the
    /// socket) before it ends the connection: twice `request_timeout`, so that a request's
    /// own deadline (the client then closes the connection) always comes first and this only
    /// catches writes nothing else bounds, such as a Produce with acks=0 to a broker that
    /// stopped reading.
    pub fn write_timeout(&self) -> Duration {
        self.request_timeout.saturating_mul(2)
    }

    /// Checks the values that would make the client misbehave: every duration must lie
    /// within [`MIN_DURATION`] and [`MAX_DURATION`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use grete::config::ClientConfig;
    /// let forever = ClientConfig { metadata_max_age: Duration::MAX, ..ClientConfig::default() };
    /// assert!(forever.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), Error> {
        for (name, d) in self.durations() {
            if d < MIN_DURATION || d > MAX_DURATION {
                return Err(Error::Config(format!(
                    "{name} is {d:?}: it must be between {MIN_DURATION:?} and {MAX_DURATION:?}"
                )));
            }
        }
        if self.max_in_flight_requests_per_connection == 0 {
            return Err(Error::Config(
                "max_in_flight_requests_per_connection must be at least 1".into(),
            ));
        }
        if self.max_frame_size < 64 {
            return Err(Error::Config("max_frame_size is too small".into()));
        }
        match &self.bootstrap {
            Bootstrap::Brokers(b) if b.is_empty() => {
                Err(Error::Config("no bootstrap brokers given".into()))
            }
            Bootstrap::ZooKeeper { connect } if zookeeper_split(connect).0.is_empty() => {
                Err(Error::Config("empty ZooKeeper connect string".into()))
            }
            _ => Ok(()),
        }
    }
}

/// Where the client finds the cluster first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bootstrap {
    /// A list of brokers (any of them will do).
    Brokers(Vec<BrokerAddress>),
    /// A ZooKeeper connect string, `host:port[,host:port...][/chroot]`, whose
    /// `/brokers/ids` lists the brokers (Kafka 0.9's registration).
    ZooKeeper {
        /// The connect string, as Kafka and PyKafka write it.
        connect: String,
    },
}

impl Bootstrap {
    /// The ZooKeeper hosts (without chroot) a transport should connect to.
    pub fn zookeeper_hosts(&self) -> Option<&str> {
        match self {
            Bootstrap::ZooKeeper { connect } => Some(zookeeper_split(connect).0),
            Bootstrap::Brokers(_) => None,
        }
    }

    /// The chroot of a ZooKeeper connect string, `""` when there is none. The core puts it
    /// in front of every path it asks for.
    pub fn zookeeper_chroot(&self) -> Option<&str> {
        match self {
            Bootstrap::ZooKeeper { connect } => Some(zookeeper_split(connect).1),
            Bootstrap::Brokers(_) => None,
        }
    }
}

/// Splits `h:p,h:p/chroot` into hosts and chroot (without a trailing `/`).
fn zookeeper_split(connect: &str) -> (&str, &str) {
    let connect = connect.trim();
    match connect.find('/') {
        Some(i) => (&connect[..i], connect[i..].trim_end_matches('/')),
        None => (connect, ""),
    }
}

/// A broker's host and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BrokerAddress {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl BrokerAddress {
    /// An address.
    pub fn new(host: impl Into<String>, port: u16) -> BrokerAddress {
        BrokerAddress {
            host: host.into(),
            port,
        }
    }

    /// Parses a comma-separated list `host:port,host:port` (the port defaults to 9092;
    /// IPv6 hosts in brackets, `[::1]:9092`).
    ///
    /// ```
    /// use grete::config::BrokerAddress;
    /// let a = BrokerAddress::parse("k1:9093, [::1]:9094,k3").unwrap();
    /// assert_eq!(a[0], BrokerAddress::new("k1", 9093));
    /// assert_eq!(a[1], BrokerAddress::new("::1", 9094));
    /// assert_eq!(a[2].port, 9092);
    /// ```
    pub fn parse(list: &str) -> Result<Vec<BrokerAddress>, Error> {
        let mut out = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            out.push(Self::parse_one(item)?);
        }
        if out.is_empty() {
            return Err(Error::Config(format!("no broker address in {list:?}")));
        }
        Ok(out)
    }

    fn parse_one(item: &str) -> Result<BrokerAddress, Error> {
        let bad = || Error::Config(format!("invalid broker address {item:?}"));
        let (host, port) = if let Some(rest) = item.strip_prefix('[') {
            let end = rest.find(']').ok_or_else(bad)?;
            let host = &rest[..end];
            match rest[end + 1..].strip_prefix(':') {
                Some(p) => (host, Some(p)),
                None if rest[end + 1..].is_empty() => (host, None),
                None => return Err(bad()),
            }
        } else {
            match item.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => (h, Some(p)),
                Some(_) => return Err(bad()),
                None => (item, None),
            }
        };
        if host.is_empty() {
            return Err(bad());
        }
        let port = match port {
            Some(p) => p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(bad)?,
            None => 9092,
        };
        Ok(BrokerAddress::new(host, port))
    }
}

impl fmt::Display for BrokerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A Kafka broker version such as `0.9.0` or `2.8`, for brokers that cannot tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BrokerVersion {
    /// Major (0 for 0.x releases).
    pub major: u16,
    /// Minor.
    pub minor: u16,
    /// Patch.
    pub patch: u16,
}

/// Fallback API version ranges `(api, min, max)` per release, for brokers without
/// ApiVersions. Later releases add to or raise the earlier ones.
const V0_8_2: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 0),
    (ApiKey::Fetch, 0, 0),
    (ApiKey::ListOffsets, 0, 0),
    (ApiKey::Metadata, 0, 0),
    (ApiKey::OffsetCommit, 0, 1),
    (ApiKey::OffsetFetch, 0, 1),
    (ApiKey::FindCoordinator, 0, 0),
];
const V0_9_0: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 1),
    (ApiKey::Fetch, 0, 1),
    (ApiKey::ListOffsets, 0, 0),
    (ApiKey::Metadata, 0, 0),
    (ApiKey::OffsetCommit, 0, 2),
    (ApiKey::OffsetFetch, 0, 1),
    (ApiKey::FindCoordinator, 0, 0),
    (ApiKey::JoinGroup, 0, 0),
    (ApiKey::Heartbeat, 0, 0),
    (ApiKey::LeaveGroup, 0, 0),
    (ApiKey::SyncGroup, 0, 0),
    (ApiKey::DescribeGroups, 0, 0),
    (ApiKey::ListGroups, 0, 0),
];
const V0_10_0: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 2),
    (ApiKey::Fetch, 0, 2),
    (ApiKey::ListOffsets, 0, 0),
    (ApiKey::Metadata, 0, 1),
    (ApiKey::OffsetCommit, 0, 2),
    (ApiKey::OffsetFetch, 0, 1),
    (ApiKey::FindCoordinator, 0, 0),
    (ApiKey::JoinGroup, 0, 0),
    (ApiKey::Heartbeat, 0, 0),
    (ApiKey::LeaveGroup, 0, 0),
    (ApiKey::SyncGroup, 0, 0),
    (ApiKey::DescribeGroups, 0, 0),
    (ApiKey::ListGroups, 0, 0),
    (ApiKey::SaslHandshake, 0, 0),
    (ApiKey::ApiVersions, 0, 0),
];
const V0_10_1: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 2),
    (ApiKey::Fetch, 0, 3),
    (ApiKey::ListOffsets, 0, 1),
    (ApiKey::Metadata, 0, 2),
    (ApiKey::OffsetCommit, 0, 2),
    (ApiKey::OffsetFetch, 0, 1),
    (ApiKey::FindCoordinator, 0, 0),
    (ApiKey::JoinGroup, 0, 1),
    (ApiKey::Heartbeat, 0, 0),
    (ApiKey::LeaveGroup, 0, 0),
    (ApiKey::SyncGroup, 0, 0),
    (ApiKey::DescribeGroups, 0, 0),
    (ApiKey::ListGroups, 0, 0),
    (ApiKey::SaslHandshake, 0, 0),
    (ApiKey::ApiVersions, 0, 0),
    (ApiKey::CreateTopics, 0, 0),
    (ApiKey::DeleteTopics, 0, 0),
];

impl BrokerVersion {
    /// A version.
    pub const fn new(major: u16, minor: u16, patch: u16) -> BrokerVersion {
        BrokerVersion {
            major,
            minor,
            patch,
        }
    }

    /// Parses `0.9.0`, `0.10.1.1`, `2.8` and the like (a fourth number is ignored).
    pub fn parse(s: &str) -> Result<BrokerVersion, Error> {
        let bad = || Error::Config(format!("invalid broker_version {s:?}"));
        let mut parts = s.trim().split('.');
        let mut next = |required: bool| -> Result<u16, Error> {
            match parts.next() {
                Some(p) => p.parse().map_err(|_| bad()),
                None if required => Err(bad()),
                None => Ok(0),
            }
        };
        let major = next(true)?;
        let minor = next(true)?;
        let patch = next(false)?;
        Ok(BrokerVersion::new(major, minor, patch))
    }

    /// Whether a broker of this version answers ApiVersions (0.10.0 and later).
    pub fn supports_api_versions(self) -> bool {
        self >= BrokerVersion::new(0, 10, 0)
    }

    /// The API version ranges `(api, min, max)` a broker of this version supports, for
    /// when it cannot be asked. Exact for 0.8.2, 0.9.0, 0.10.0 and 0.10.1; newer versions
    /// get 0.10.1's table (they answer ApiVersions anyway).
    pub fn api_versions(self) -> &'static [(ApiKey, i16, i16)] {
        if self >= BrokerVersion::new(0, 10, 1) {
            V0_10_1
        } else if self >= BrokerVersion::new(0, 10, 0) {
            V0_10_0
        } else if self >= BrokerVersion::new(0, 9, 0) {
            V0_9_0
        } else {
            V0_8_2
        }
    }
}

impl fmt::Display for BrokerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl std::str::FromStr for BrokerVersion {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        BrokerVersion::parse(s)
    }
}

/// A SASL mechanism the client can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SaslMechanism {
    /// `PLAIN` (RFC 4616): the password travels as is; use it with TLS.
    Plain,
    /// `SCRAM-SHA-256` (RFC 7677).
    ScramSha256,
    /// `SCRAM-SHA-512`.
    ScramSha512,
}

impl SaslMechanism {
    /// The mechanism's name in the SaslHandshake request.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// SASL credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslConfig {
    /// The mechanism.
    pub mechanism: SaslMechanism,
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for SaslConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslConfig")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// TLS settings, applied by the transports (the core only carries them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM file of CA certificates to trust (the system roots when `None`).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain, for mutual TLS.
    pub client_cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate.
    pub client_key_file: Option<PathBuf>,
    /// Verify the broker's certificate and host name (on by default).
    pub verify: bool,
    /// The name to verify instead of the broker's host name.
    pub server_name: Option<String>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            verify: true,
            server_name: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_lists_parse_and_reject_garbage() {
        let a = BrokerAddress::parse("a:1,b:2").unwrap();
        assert_eq!(
            a,
            vec![BrokerAddress::new("a", 1), BrokerAddress::new("b", 2)]
        );
        for bad in [
            "", ",", "a:", "a:0", "a:70000", ":9092", "::1:9092", "[::1]x", "a:b",
        ] {
            assert!(BrokerAddress::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(BrokerAddress::new("::1", 9).to_string(), "[::1]:9");
    }

    #[test]
    fn broker_versions_parse_and_order() {
        let v = BrokerVersion::parse("0.9.0").unwrap();
        assert_eq!(v, BrokerVersion::new(0, 9, 0));
        assert!(!v.supports_api_versions());
        assert!(
            BrokerVersion::parse("0.10.1.1").unwrap() > BrokerVersion::parse("0.10.0").unwrap()
        );
        assert_eq!(
            BrokerVersion::parse("2.8").unwrap(),
            BrokerVersion::new(2, 8, 0)
        );
        assert!(BrokerVersion::parse("x").is_err());
        assert!(BrokerVersion::parse("1").is_err());
        let t = v.api_versions();
        assert!(t.contains(&(ApiKey::ListOffsets, 0, 0)));
        assert!(!t
            .iter()
            .any(|e| e.0 == ApiKey::CreateTopics || e.0 == ApiKey::ApiVersions));
        let t = BrokerVersion::new(0, 8, 2).api_versions();
        assert!(!t.iter().any(|e| e.0 == ApiKey::JoinGroup));
    }

    #[test]
    fn zookeeper_connect_strings_split_off_the_chroot() {
        let b = Bootstrap::ZooKeeper {
            connect: "z1:2181,z2:2181/kafka/".into(),
        };
        assert_eq!(b.zookeeper_hosts(), Some("z1:2181,z2:2181"));
        assert_eq!(b.zookeeper_chroot(), Some("/kafka"));
        let b = Bootstrap::ZooKeeper {
            connect: "z1:2181".into(),
        };
        assert_eq!(b.zookeeper_chroot(), Some(""));
        assert!(ClientConfig::default().validate().is_ok());
        let c = ClientConfig {
            max_in_flight_requests_per_connection: 0,
            ..ClientConfig::default()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn sasl_password_is_not_printed() {
        let s = SaslConfig {
            mechanism: SaslMechanism::Plain,
            username: "u".into(),
            password: "secret".into(),
        };
        assert!(!format!("{s:?}").contains("secret"));
    }
}
