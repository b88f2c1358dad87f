//! One broker connection as a state machine: framing, correlation ids, pipelining,
//! per-request deadlines, ApiVersions negotiation with the `broker_version` fallback,
//! and SASL.
//!
//! The connection never touches a socket. Drive it like every grete state machine: feed
//! it with `handle_*`, then drain [`Connection::poll_transmit`] (bytes to write),
//! [`Connection::poll_event`] (responses, readiness, closure) and ask
//! [`Connection::poll_timeout`] when to call [`Connection::handle_timeout`].
//!
//! Lifecycle: `Connecting` → (`handle_connected`) → `Negotiating` (ApiVersions, only when
//! probing) → `Authenticating` (only with SASL) → `Ready` → `Closed`. Requests sent before
//! `Ready` wait in a queue; at most `max_in_flight` are written before the first answer.
//! When an in-flight request passes its deadline the connection closes (the answer, if
//! it ever came, could not be told apart): every request past its deadline fails with
//! [`Error::Timeout`], the others with a retriable closure. A Produce with `acks = 0`
//! gets no answer from a broker: it finishes as soon as it is written, with an empty
//! [`ProduceResponse`].

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::config::{BrokerVersion, ClientConfig, SaslConfig};
use crate::error::{Error, TransportError};
use crate::protocol::frame::{write_frame, FrameDecoder};
use crate::protocol::header::peek_correlation_id;
use crate::protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, ProduceResponse, RequestBody, RequestHeader,
    ResponseBody, ResponseHeader, SaslAuthenticateRequest, SaslHandshakeRequest,
};
use crate::protocol::primitives::{expect_end, Decode, Encode};
use crate::protocol::{DecodeError, ErrorCode};
use crate::rng::Rng;
use crate::sasl::SaslClient;

/// The ApiVersions version tried first.
const API_VERSIONS_FIRST: i16 = 3;

/// Identifies a request sent on one connection (unique per connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Which version of an API to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionChoice {
    /// The highest version both sides support.
    Highest,
    /// The highest version both sides support, but not above this one.
    AtMost(i16),
    /// Exactly this version (an error if the broker does not support it).
    Exact(i16),
}

/// Where the connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// Waiting for the transport to connect.
    Connecting,
    /// Asking the broker for its API versions.
    Negotiating,
    /// SASL exchange in progress.
    Authenticating,
    /// Requests flow.
    Ready,
    /// Closed; every request has been answered or failed.
    Closed,
}

/// Something the connection tells its owner.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ConnectionEvent {
    /// Negotiation and authentication are done: requests are being written.
    Ready,
    /// A request finished: its decoded response, or why it failed.
    Response {
        /// The request.
        id: RequestId,
        /// The API and version the request was sent with (`None` if it was never sent).
        sent: Option<(ApiKey, i16)>,
        /// The decoded response or the error.
        result: Result<ResponseBody, Error>,
    },
    /// The connection is closed (by the peer, the transport, or itself). Emitted once,
    /// before the failures of the requests that were pending on it.
    Closed {
        /// Why, if it was not a clean local close.
        error: Option<Error>,
        /// The connection stayed open and the broker did not answer ApiVersions by
        /// `api_version_request_timeout`: what a broker before 0.10 does. Connect again
        /// without asking, using the `broker_version` table. (A closure while negotiating
        /// does not set this: it says nothing about the broker's version.)
        api_versions_unanswered: bool,
    },
}

/// The parts of [`ClientConfig`] one connection needs.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// Sent in every request header.
    pub client_id: String,
    /// Requests written before the first is answered.
    pub max_in_flight: usize,
    /// Default deadline of a request, from when it is sent.
    pub request_timeout: Duration,
    /// How long ApiVersions may go unanswered.
    pub api_version_request_timeout: Duration,
    /// Largest response frame accepted.
    pub max_frame_size: usize,
    /// Ask the broker for its API versions.
    pub probe_api_versions: bool,
    /// The version assumed when not asking (or when the broker did not answer).
    pub broker_version: BrokerVersion,
    /// SASL credentials.
    pub sasl: Option<SaslConfig>,
}

impl ConnectionConfig {
    /// The connection settings of a client configuration.
    pub fn from_client(c: &ClientConfig) -> ConnectionConfig {
        ConnectionConfig {
            client_id: c.client_id.clone(),
            max_in_flight: c.max_in_flight_requests_per_connection.max(1),
            request_timeout: c.request_timeout,
            api_version_request_timeout: c.api_version_request_timeout,
            max_frame_size: c.max_frame_size,
            probe_api_versions: c.api_version_request && c.broker_version.supports_api_versions(),
            broker_version: c.broker_version,
            sasl: c.sasl.clone(),
        }
    }
}

/// The API versions usable on a connection: per API, the range both sides support.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiVersions {
    ranges: BTreeMap<ApiKey, (i16, i16)>,
    /// Where the table came from, for error messages: "negotiated" or a version.
    source: String,
}

impl ApiVersions {
    /// The table for a broker that cannot be asked.
    pub fn from_broker_version(v: BrokerVersion) -> ApiVersions {
        let mut ranges = BTreeMap::new();
        for &(key, min, max) in v.api_versions() {
            Self::insert(&mut ranges, key, min, max);
        }
        ApiVersions {
            ranges,
            source: v.to_string(),
        }
    }

    /// The table from a broker's ApiVersions answer.
    pub fn from_response(r: &ApiVersionsResponse) -> ApiVersions {
        let mut ranges = BTreeMap::new();
        for k in &r.api_keys {
            if let Some(key) = ApiKey::from_i16(k.api_key) {
                Self::insert(&mut ranges, key, k.min_version, k.max_version);
            }
        }
        ApiVersions {
            ranges,
            source: ">= 0.10 (negotiated)".into(),
        }
    }

    fn insert(ranges: &mut BTreeMap<ApiKey, (i16, i16)>, key: ApiKey, min: i16, max: i16) {
        let lo = min.max(key.min_version());
        let hi = max.min(key.max_version());
        if lo <= hi {
            ranges.insert(key, (lo, hi));
        }
    }

    /// The range both sides support for `key`, if any.
    pub fn range(&self, key: ApiKey) -> Option<(i16, i16)> {
        self.ranges.get(&key).copied()
    }

    /// The highest version both sides support for `key`.
    pub fn max(&self, key: ApiKey) -> Option<i16> {
        self.range(key).map(|r| r.1)
    }

    /// Resolves a version choice, or says the broker lacks it.
    pub fn choose(&self, key: ApiKey, choice: VersionChoice) -> Result<i16, Error> {
        let unsupported = || Error::Unsupported {
            api: key,
            broker_version: self.source.clone(),
        };
        let (lo, hi) = self.range(key).ok_or_else(unsupported)?;
        match choice {
            VersionChoice::Highest => Ok(hi),
            VersionChoice::AtMost(v) if v >= lo => Ok(hi.min(v)),
            VersionChoice::Exact(v) if (lo..=hi).contains(&v) => Ok(v),
            _ => Err(unsupported()),
        }
    }

    /// "negotiated" or the fallback broker version.
    pub fn source(&self) -> &str {
        &self.source
    }
}

#[derive(Debug)]
enum Purpose {
    User(RequestId),
    ApiVersions,
    SaslHandshake,
    SaslAuthenticate,
}

#[derive(Debug)]
struct InFlight {
    correlation_id: i32,
    purpose: Purpose,
    api_key: ApiKey,
    version: i16,
    deadline: Instant,
}

#[derive(Debug)]
struct Queued {
    id: RequestId,
    body: RequestBody,
    version: VersionChoice,
    deadline: Instant,
}

/// One broker connection. See the module documentation for the call order.
///
/// Its `Debug` output shows the state and counters only: never the SASL credentials nor
/// the bytes in its buffers (which hold them while authenticating).
pub struct Connection {
    config: ConnectionConfig,
    state: ConnectionState,
    frames: FrameDecoder,
    out: Vec<u8>,
    next_correlation_id: i32,
    next_request_id: u64,
    in_flight: Vec<InFlight>,
    queue: VecDeque<Queued>,
    events: VecDeque<ConnectionEvent>,
    versions: Option<ApiVersions>,
    api_versions_version: i16,
    sasl: Option<SaslClient>,
    /// SaslHandshake v0: tokens travel as raw frames; the deadline of the awaited token.
    raw_sasl: Option<Instant>,
    /// The SaslAuthenticate version to use (None: raw tokens).
    sasl_authenticate_version: Option<i16>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("client_id", &self.config.client_id)
            .field("state", &self.state)
            .field("sasl", &self.sasl)
            .field("versions", &self.versions.as_ref().map(ApiVersions::source))
            .field("in_flight", &self.in_flight.len())
            .field("queued", &self.queue.len())
            .field("unsent_bytes", &self.out.len())
            .field("next_correlation_id", &self.next_correlation_id)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A connection in state `Connecting`. `rng` supplies the SCRAM nonce.
    pub fn new(config: ConnectionConfig, rng: &mut Rng) -> Connection {
        let sasl = config.sasl.as_ref().map(|s| SaslClient::new(s, rng));
        Connection {
            frames: FrameDecoder::new(config.max_frame_size),
            config,
            state: ConnectionState::Connecting,
            out: Vec::new(),
            next_correlation_id: 0,
            next_request_id: 0,
            in_flight: Vec::new(),
            queue: VecDeque::new(),
            events: VecDeque::new(),
            versions: None,
            api_versions_version: API_VERSIONS_FIRST,
            sasl,
            raw_sasl: None,
            sasl_authenticate_version: None,
        }
    }

    /// Where the connection is.
    pub fn state(&self) -> ConnectionState {
        self.state
    }

    /// The API versions in use, once known.
    pub fn api_versions(&self) -> Option<&ApiVersions> {
        self.versions.as_ref()
    }

    /// Requests written and not yet answered (user requests and internal ones).
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Requests waiting to be written.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// The transport connected: start negotiating.
    pub fn handle_connected(&mut self, now: Instant) {
        if self.state != ConnectionState::Connecting {
            return;
        }
        if self.config.probe_api_versions {
            self.state = ConnectionState::Negotiating;
            self.send_api_versions(now);
        } else {
            self.versions = Some(ApiVersions::from_broker_version(self.config.broker_version));
            self.start_auth(now);
        }
    }

    /// Bytes arrived from the broker.
    pub fn handle_data(&mut self, now: Instant, data: &[u8]) {
        if self.state == ConnectionState::Closed {
            return;
        }
        self.frames.handle_data(data);
        // Each frame is bounded by max_frame_size and consumes bytes: the loop ends.
        while self.state != ConnectionState::Closed {
            match self.frames.poll_frame() {
                Ok(Some(frame)) => self.handle_frame(now, frame),
                Ok(None) => break,
                Err(e) => {
                    self.close_with(Some(Error::Protocol(e)), false);
                    break;
                }
            }
        }
    }

    /// The transport closed (with the reason, if it failed).
    ///
    /// A closure while negotiating says nothing about the broker's version (a restart, a
    /// network cut, a load balancer): it is an ordinary connection failure.
    pub fn handle_closed(&mut self, _now: Instant, error: Option<TransportError>) {
        if self.state == ConnectionState::Closed {
            return;
        }
        let error = error.unwrap_or_else(|| TransportError::closed("connection closed by peer"));
        self.close_with(Some(Error::Transport(error)), false);
    }

    /// Closes the connection locally: every pending request fails.
    pub fn close(&mut self, _now: Instant) {
        if self.state != ConnectionState::Closed {
            self.close_with(None, false);
        }
    }

    /// Time passed: fails requests whose deadline is `<= now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == ConnectionState::Closed {
            return;
        }
        if self.in_flight.iter().any(|f| f.deadline <= now) {
            // Every request past its deadline fails with a timeout (not only the first
            // found): then the connection closes, failing the others as closed.
            let (due, rest): (Vec<InFlight>, Vec<InFlight>) = std::mem::take(&mut self.in_flight)
                .into_iter()
                .partition(|f| f.deadline <= now);
            self.in_flight = rest;
            let mut close = Error::Transport(TransportError::closed(
                "connection closed after a request timed out",
            ));
            let mut api_versions_unanswered = false;
            for f in due {
                match f.purpose {
                    Purpose::ApiVersions => {
                        // The connection is open and the broker kept silent: what a
                        // broker before 0.10 does with a request it does not know.
                        close = Error::timeout("ApiVersions (the broker predates 0.10?)");
                        api_versions_unanswered = true;
                    }
                    Purpose::User(id) => {
                        self.events.push_back(ConnectionEvent::Response {
                            id,
                            sent: Some((f.api_key, f.version)),
                            result: Err(Error::timeout(format!(
                                "{} v{} request",
                                f.api_key.name(),
                                f.version
                            ))),
                        });
                    }
                    Purpose::SaslHandshake | Purpose::SaslAuthenticate => {
                        close = Error::timeout("SASL authentication");
                    }
                }
            }
            self.fail_queued_past(now);
            self.close_with(Some(close), api_versions_unanswered);
            return;
        }
        if self.raw_sasl.is_some_and(|d| d <= now) {
            self.close_with(Some(Error::timeout("SASL authentication")), false);
            return;
        }
        self.fail_queued_past(now);
    }

    /// Unsent requests past their deadline fail alone, with a timeout.
    fn fail_queued_past(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.queue.len() {
            if self.queue[i].deadline <= now {
                if let Some(q) = self.queue.remove(i) {
                    self.events.push_back(ConnectionEvent::Response {
                        id: q.id,
                        sent: None,
                        result: Err(Error::timeout(format!(
                            "{} request (never sent)",
                            q.body.api_key().name()
                        ))),
                    });
                }
            } else {
                i += 1;
            }
        }
    }

    /// Queues a request with the default deadline (`now + request_timeout`).
    pub fn send(&mut self, now: Instant, body: RequestBody, version: VersionChoice) -> RequestId {
        let deadline = now + self.config.request_timeout;
        self.send_with_deadline(now, body, version, deadline)
    }

    /// Queues a request that fails with [`Error::Timeout`] if not answered by `deadline`.
    pub fn send_with_deadline(
        &mut self,
        now: Instant,
        body: RequestBody,
        version: VersionChoice,
        deadline: Instant,
    ) -> RequestId {
        let id = RequestId(self.next_request_id);
        self.next_request_id += 1;
        if self.state == ConnectionState::Closed {
            self.events.push_back(ConnectionEvent::Response {
                id,
                sent: None,
                result: Err(Error::Transport(TransportError::closed(
                    "connection is closed",
                ))),
            });
            return id;
        }
        self.queue.push_back(Queued {
            id,
            body,
            version,
            deadline,
        });
        self.flush_queue(now);
        id
    }

    /// Whether bytes wait to be written.
    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// Appends the bytes to write to `buf`; `false` when there are none.
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> bool {
        if self.out.is_empty() {
            return false;
        }
        if buf.is_empty() {
            // No copy: the caller's buffer becomes the connection's next output buffer
            // (capacities are recycled both ways).
            std::mem::swap(buf, &mut self.out);
        } else {
            buf.append(&mut self.out);
        }
        true
    }

    /// The next event, without taking it.
    pub fn peek_event(&self) -> Option<&ConnectionEvent> {
        self.events.front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ConnectionEvent> {
        self.events.pop_front()
    }

    /// When `handle_timeout` is next needed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == ConnectionState::Closed {
            return None;
        }
        let in_flight = self.in_flight.iter().map(|f| f.deadline);
        let queued = self.queue.iter().map(|q| q.deadline);
        in_flight.chain(queued).chain(self.raw_sasl).min()
    }

    fn next_correlation(&mut self) -> i32 {
        let c = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1) & i32::MAX;
        c
    }

    /// Writes one request frame; on encoding failure nothing is written.
    fn write_request(
        &mut self,
        body: &RequestBody,
        version: i16,
        purpose: Purpose,
        deadline: Instant,
        answered: bool,
    ) -> Result<(), Error> {
        let key = body.api_key();
        let correlation_id = self.next_correlation();
        let header = RequestHeader {
            request_api_key: key as i16,
            request_api_version: version,
            correlation_id,
            client_id: Some(self.config.client_id.clone()),
            ..Default::default()
        };
        write_frame(&mut self.out, |buf| {
            header.encode(buf, key.request_header_version(version))?;
            body.encode(buf, version)
        })?;
        if !answered {
            return Ok(());
        }
        self.in_flight.push(InFlight {
            correlation_id,
            purpose,
            api_key: key,
            version,
            deadline,
        });
        Ok(())
    }

    fn flush_queue(&mut self, _now: Instant) {
        while self.state == ConnectionState::Ready
            && self.in_flight.len() < self.config.max_in_flight
        {
            let Some(q) = self.queue.pop_front() else {
                break;
            };
            let key = q.body.api_key();
            let version = match &self.versions {
                Some(v) => v.choose(key, q.version),
                None => Err(Error::Misuse("no API versions".into())),
            };
            // A Produce with acks=0 gets no answer from the broker: it is done once
            // written, and must not wait in flight (where its deadline would close the
            // connection under every other request).
            let answered = !matches!(&q.body, RequestBody::Produce(p) if p.acks == 0);
            let result = version.and_then(|v| {
                let purpose = Purpose::User(q.id);
                self.write_request(&q.body, v, purpose, q.deadline, answered)
                    .map(|()| v)
            });
            match result {
                Err(e) => self.events.push_back(ConnectionEvent::Response {
                    id: q.id,
                    sent: None,
                    result: Err(e),
                }),
                Ok(v) if !answered => self.events.push_back(ConnectionEvent::Response {
                    id: q.id,
                    sent: Some((key, v)),
                    result: Ok(ResponseBody::Produce(ProduceResponse::default())),
                }),
                Ok(_) => {}
            }
        }
    }

    fn send_api_versions(&mut self, now: Instant) {
        let v = self.api_versions_version;
        // The software name and version exist from v3 on.
        let body = RequestBody::ApiVersions(if v >= 3 {
            ApiVersionsRequest {
                client_software_name: "grete".into(),
                client_software_version: env!("CARGO_PKG_VERSION").into(),
                ..Default::default()
            }
        } else {
            ApiVersionsRequest::default()
        });
        let deadline = now + self.config.api_version_request_timeout;
        if let Err(e) = self.write_request(&body, v, Purpose::ApiVersions, deadline, true) {
            self.close_with(Some(e), false);
        }
    }

    fn handle_frame(&mut self, now: Instant, mut frame: Bytes) {
        if self.raw_sasl.is_some() {
            self.raw_sasl = None;
            self.handle_sasl_token(now, &frame);
            return;
        }
        let correlation_id = match peek_correlation_id(&frame) {
            Ok(c) => c,
            Err(e) => return self.close_with(Some(Error::Protocol(e)), false),
        };
        let Some(i) = self
            .in_flight
            .iter()
            .position(|f| f.correlation_id == correlation_id)
        else {
            let e = DecodeError::Malformed("response with an unknown correlation id");
            return self.close_with(Some(Error::Protocol(e)), false);
        };
        let f = self.in_flight.remove(i);
        match f.purpose {
            Purpose::User(id) => {
                let result = decode_response(&mut frame, f.api_key, f.version);
                let failed = result.is_err();
                self.events.push_back(ConnectionEvent::Response {
                    id,
                    sent: Some((f.api_key, f.version)),
                    result: result.map_err(Error::Protocol),
                });
                if failed {
                    // The peer does not speak what we think it does: stop trusting it.
                    let e = DecodeError::Malformed("undecodable response");
                    self.close_with(Some(Error::Protocol(e)), false);
                } else {
                    self.flush_queue(now);
                }
            }
            Purpose::ApiVersions => self.handle_api_versions(now, frame, f.version),
            Purpose::SaslHandshake => match decode_response(&mut frame, f.api_key, f.version) {
                Ok(ResponseBody::SaslHandshake(r)) => {
                    if let Some(code) = ErrorCode::from_code(r.error_code) {
                        let e = Error::broker(
                            code,
                            format!("the broker offers SASL mechanisms {:?}", r.mechanisms),
                        );
                        return self.close_with(Some(e), false);
                    }
                    self.sasl_authenticate_version = if f.version >= 1 {
                        self.versions
                            .as_ref()
                            .and_then(|v| v.max(ApiKey::SaslAuthenticate))
                    } else {
                        None
                    };
                    let first = match self.sasl.as_mut().map(|s| s.initial_response()) {
                        Some(Ok(t)) => t,
                        Some(Err(e)) => return self.close_with(Some(e), false),
                        None => return self.become_ready(now),
                    };
                    self.send_sasl_token(now, first);
                }
                Ok(_) => self.close_with(None, false),
                Err(e) => self.close_with(Some(Error::Protocol(e)), false),
            },
            Purpose::SaslAuthenticate => match decode_response(&mut frame, f.api_key, f.version) {
                Ok(ResponseBody::SaslAuthenticate(r)) => {
                    if let Some(code) = ErrorCode::from_code(r.error_code) {
                        let msg = r.error_message.unwrap_or_default();
                        return self.close_with(Some(Error::broker(code, msg)), false);
                    }
                    self.handle_sasl_token(now, &r.auth_bytes);
                }
                Ok(_) => self.close_with(None, false),
                Err(e) => self.close_with(Some(Error::Protocol(e)), false),
            },
        }
    }

    fn handle_api_versions(&mut self, now: Instant, frame: Bytes, version: i16) {
        // A broker that does not know our version answers in v0 with UNSUPPORTED_VERSION.
        let parsed =
            decode_api_versions(frame.clone(), version).or_else(|_| decode_api_versions(frame, 0));
        let r = match parsed {
            Ok(r) => r,
            Err(e) => return self.close_with(Some(Error::Protocol(e)), false),
        };
        match ErrorCode::from_code(r.error_code) {
            None => {
                self.versions = Some(ApiVersions::from_response(&r));
                self.start_auth(now);
            }
            Some(ErrorCode::UnsupportedVersion) if version > 0 => {
                let listed = r
                    .api_keys
                    .iter()
                    .find(|k| k.api_key == ApiKey::ApiVersions as i16)
                    .map(|k| k.max_version)
                    .unwrap_or(0);
                self.api_versions_version = listed.clamp(0, version - 1);
                self.send_api_versions(now);
            }
            Some(code) => self.close_with(Some(Error::broker(code, "ApiVersions")), false),
        }
    }

    fn start_auth(&mut self, now: Instant) {
        let Some(sasl) = &self.sasl else {
            return self.become_ready(now);
        };
        let mechanism = sasl.mechanism().name().to_owned();
        self.state = ConnectionState::Authenticating;
        let versions = self.versions.clone().unwrap_or_default();
        let version = match versions.choose(ApiKey::SaslHandshake, VersionChoice::AtMost(1)) {
            Ok(v) => v,
            Err(e) => return self.close_with(Some(e), false),
        };
        let body = RequestBody::SaslHandshake(SaslHandshakeRequest {
            mechanism,
            ..Default::default()
        });
        let deadline = now + self.config.request_timeout;
        if let Err(e) = self.write_request(&body, version, Purpose::SaslHandshake, deadline, true) {
            self.close_with(Some(e), false);
        }
    }

    fn send_sasl_token(&mut self, now: Instant, token: Vec<u8>) {
        let deadline = now + self.config.request_timeout;
        match self.sasl_authenticate_version {
            Some(v) => {
                let body = RequestBody::SaslAuthenticate(SaslAuthenticateRequest {
                    auth_bytes: Bytes::from(token),
                    ..Default::default()
                });
                if let Err(e) =
                    self.write_request(&body, v, Purpose::SaslAuthenticate, deadline, true)
                {
                    self.close_with(Some(e), false);
                }
            }
            None => {
                let written = write_frame(&mut self.out, |buf| {
                    buf.extend_from_slice(&token);
                    Ok(())
                });
                match written {
                    Ok(()) => self.raw_sasl = Some(deadline),
                    Err(e) => self.close_with(Some(Error::Encode(e)), false),
                }
            }
        }
    }

    fn handle_sasl_token(&mut self, now: Instant, token: &[u8]) {
        let Some(sasl) = self.sasl.as_mut() else {
            return self.close_with(None, false);
        };
        match sasl.handle_challenge(token) {
            Ok(Some(reply)) => self.send_sasl_token(now, reply),
            Ok(None) => self.become_ready(now),
            Err(e) => self.close_with(Some(e), false),
        }
    }

    fn become_ready(&mut self, now: Instant) {
        self.state = ConnectionState::Ready;
        self.events.push_back(ConnectionEvent::Ready);
        self.flush_queue(now);
    }

    fn close_with(&mut self, error: Option<Error>, api_versions_unanswered: bool) {
        if self.state == ConnectionState::Closed {
            return;
        }
        self.state = ConnectionState::Closed;
        self.out.clear();
        self.raw_sasl = None;
        self.events.push_back(ConnectionEvent::Closed {
            error: error.clone(),
            api_versions_unanswered,
        });
        let fail = |e: &Option<Error>| {
            Err(match e {
                // A connection that failed because of the broker's bytes fails its
                // requests with that error; anything else is a retriable closure.
                Some(e @ (Error::Protocol(_) | Error::Sasl(_) | Error::Unsupported { .. })) => {
                    e.clone()
                }
                Some(Error::Broker { code, context }) => Error::broker(*code, context.clone()),
                Some(Error::Transport(t)) => Error::Transport(t.clone()),
                _ => Error::Transport(TransportError::closed("connection closed")),
            })
        };
        for f in std::mem::take(&mut self.in_flight) {
            if let Purpose::User(id) = f.purpose {
                self.events.push_back(ConnectionEvent::Response {
                    id,
                    sent: Some((f.api_key, f.version)),
                    result: fail(&error),
                });
            }
        }
        for q in std::mem::take(&mut self.queue) {
            self.events.push_back(ConnectionEvent::Response {
                id: q.id,
                sent: None,
                result: fail(&error),
            });
        }
    }
}

fn decode_api_versions(mut frame: Bytes, version: i16) -> Result<ApiVersionsResponse, DecodeError> {
    match decode_response(&mut frame, ApiKey::ApiVersions, version)? {
        ResponseBody::ApiVersions(r) => Ok(r),
        _ => Err(DecodeError::Malformed("ApiVersions response")),
    }
}

/// Decodes a response frame (header and body) for `key` in `version`; all of it must be used.
fn decode_response(
    frame: &mut Bytes,
    key: ApiKey,
    version: i16,
) -> Result<ResponseBody, DecodeError> {
    ResponseHeader::decode(frame, key.response_header_version(version))?;
    let body = ResponseBody::decode(key, version, frame)?;
    expect_end(frame)?;
    Ok(body)
}

#[cfg(test)]
pub(crate) mod tests;
