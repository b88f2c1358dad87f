//! Checks for the state machines that read a peer's bytes: one broker [`Connection`], the
//! whole [`Client`] against the mock cluster with the cluster's answers mutated, and the
//! SASL client fed server messages.
//!
//! Time is virtual (an origin plus what the input advances it by). Each input is a
//! sequence of operations chosen by its bytes; the checks are the state machines'
//! contracts, not only the absence of panics: every request or operation is answered
//! exactly once, and by its deadline; what the client writes decodes as the requests it
//! meant; a closed connection holds nothing and wants no timer; after `handle_timeout(now)`
//! no deadline at or before `now` is left (no busy loop).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use grete::client::{Client, ConnectionHandle, Event, Io, OpId, Target};
use grete::config::{
    Bootstrap, BrokerAddress, BrokerVersion, ClientConfig, SaslConfig, SaslMechanism,
};
use grete::connection::{
    Connection, ConnectionConfig, ConnectionEvent, ConnectionState, RequestId, VersionChoice,
};
use grete::mock::{MockCluster, MockConfig, MockConn, MockTransmit};
use grete::protocol::header::{decode_request, encode_response};
use grete::protocol::messages::{
    api_versions_response::ApiVersion, ApiKey, ApiVersionsRequest, ApiVersionsResponse,
    ListOffsetsRequest, MetadataRequest, RequestBody, ResponseBody, SaslHandshakeResponse,
};
use grete::rng::Rng;
use grete::sasl::SaslClient;

use crate::take_le;

/// Splits the frames written so far off `buf`, decoding each as a request: grete's own
/// output must always decode. Returns (correlation id, API, version) per frame.
fn written_requests(buf: &mut Vec<u8>) -> Vec<(i32, ApiKey, i16, RequestBody)> {
    let mut out = Vec::new();
    let mut at = 0;
    while buf.len() - at >= 4 {
        let size = i32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
        assert!(size >= 0, "negative frame size written");
        let size = size as usize;
        if buf.len() - at - 4 < size {
            break;
        }
        let frame = Bytes::copy_from_slice(&buf[at + 4..at + 4 + size]);
        if let Ok((header, body)) = decode_request(frame.clone()) {
            out.push((
                header.correlation_id,
                body.api_key(),
                header.request_api_version,
                body,
            ));
        } else {
            // A raw SASL token (SaslHandshake v0) is not a request: correlation id -1.
            out.push((
                -1,
                ApiKey::SaslAuthenticate,
                -1,
                RequestBody::ApiVersions(Default::default()),
            ));
        }
        at += 4 + size;
    }
    buf.drain(..at);
    out
}

/// An ApiVersions answer listing every API grete knows, at its full range.
fn all_versions() -> ResponseBody {
    ResponseBody::ApiVersions(ApiVersionsResponse {
        api_keys: ApiKey::ALL
            .iter()
            .map(|k| ApiVersion {
                api_key: *k as i16,
                min_version: k.min_version(),
                max_version: k.max_version(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    })
}

fn pick_request(b: u8) -> RequestBody {
    match b % 3 {
        0 => RequestBody::Metadata(MetadataRequest::default()),
        1 => RequestBody::ApiVersions(ApiVersionsRequest::default()),
        _ => RequestBody::ListOffsets(ListOffsetsRequest::default()),
    }
}

fn pick_choice(b: u8) -> VersionChoice {
    match b % 4 {
        0 | 1 => VersionChoice::Highest,
        2 => VersionChoice::AtMost((b >> 2) as i16 % 16),
        _ => VersionChoice::Exact((b >> 2) as i16 % 16),
    }
}

fn pick_sasl(b: u8) -> Option<SaslConfig> {
    let mechanism = match b % 4 {
        0 => return None,
        1 => SaslMechanism::Plain,
        2 => SaslMechanism::ScramSha256,
        _ => SaslMechanism::ScramSha512,
    };
    Some(SaslConfig {
        mechanism,
        username: "user".into(),
        password: "pencil".into(),
    })
}

/// The connection and what the harness knows about it.
struct ConnRun {
    conn: Connection,
    now: Instant,
    /// User requests not answered yet, with the API each was sent as.
    pending: BTreeMap<RequestId, ApiKey>,
    /// Requests written and not yet answered by the harness, oldest first.
    written: VecDeque<(i32, ApiKey, i16)>,
    closed_events: usize,
    ready_events: usize,
    out: Vec<u8>,
}

impl ConnRun {
    /// Drains transmits and events, checking each.
    fn drain(&mut self) {
        self.conn.poll_transmit(&mut self.out);
        for (correlation, key, version, _) in written_requests(&mut self.out) {
            self.written.push_back((correlation, key, version));
        }
        while let Some(ev) = self.conn.poll_event() {
            match ev {
                ConnectionEvent::Ready => {
                    self.ready_events += 1;
                    assert_eq!(self.ready_events, 1, "Ready twice");
                    assert_eq!(self.closed_events, 0, "Ready after Closed");
                }
                ConnectionEvent::Closed { .. } => {
                    self.closed_events += 1;
                    assert_eq!(self.closed_events, 1, "Closed twice");
                    assert_eq!(self.conn.state(), ConnectionState::Closed);
                }
                ConnectionEvent::Response { id, sent, result } => {
                    let key = self
                        .pending
                        .remove(&id)
                        .unwrap_or_else(|| panic!("{id:?} answered twice or never sent"));
                    if let Some((k, _)) = sent {
                        assert_eq!(k, key, "{id:?} sent as another API");
                    }
                    if let Ok(body) = result {
                        assert_eq!(body.api_key(), key, "{id:?} answered by another API");
                        assert!(sent.is_some(), "{id:?} answered without being sent");
                    }
                }
                _ => {}
            }
        }
        if self.conn.state() == ConnectionState::Closed {
            assert_eq!(self.closed_events, 1, "closed without a Closed event");
            assert!(
                self.pending.is_empty(),
                "closed with {:?} pending",
                self.pending
            );
            assert_eq!(self.conn.poll_timeout(), None, "closed but wants a timer");
            assert_eq!(self.conn.in_flight() + self.conn.queued(), 0);
        }
    }

    fn timeout(&mut self) {
        if self.conn.poll_timeout().is_some_and(|t| t <= self.now) {
            self.conn.handle_timeout(self.now);
            self.drain();
            if let Some(t) = self.conn.poll_timeout() {
                assert!(
                    t > self.now,
                    "a deadline at or before now is left after handle_timeout"
                );
            }
        }
    }
}

/// `connection`: broker bytes fed to a [`Connection`].
///
/// Input: a flags byte (bit 0: probe ApiVersions; bits 1-2: SASL mechanism or none; bits
/// 3-4: max in flight - 1; bit 5: assume 0.9.0 when not probing), then operations, each a
/// byte and its arguments: send a request; answer the oldest written request with a
/// header and fuzz bytes as its body, or (for ApiVersions and SaslHandshake) with a
/// valid answer; feed raw bytes; advance time; connected; closed by the peer; closed
/// locally.
pub fn check_connection(mut data: &[u8]) {
    let flags = take_le(&mut data, 1) as u8;
    let config = ConnectionConfig {
        client_id: "fuzz".into(),
        max_in_flight: 1 + ((flags >> 3) & 3) as usize,
        request_timeout: Duration::from_secs(30),
        api_version_request_timeout: Duration::from_secs(10),
        max_frame_size: 1 << 20,
        probe_api_versions: flags & 1 != 0,
        broker_version: if flags & 0x20 != 0 {
            BrokerVersion::new(0, 9, 0)
        } else {
            BrokerVersion::new(2, 0, 0)
        },
        sasl: pick_sasl(flags >> 1),
    };
    let mut run = ConnRun {
        conn: Connection::new(config, &mut Rng::new(7)),
        now: Instant::now(),
        pending: BTreeMap::new(),
        written: VecDeque::new(),
        closed_events: 0,
        ready_events: 0,
        out: Vec::new(),
    };
    while !data.is_empty() {
        let op = take_le(&mut data, 1) as u8;
        let now = run.now;
        match op % 8 {
            0 => {
                let body = pick_request(take_le(&mut data, 1) as u8);
                let key = body.api_key();
                let choice = pick_choice(take_le(&mut data, 1) as u8);
                let id = run.conn.send(now, body, choice);
                assert!(run.pending.insert(id, key).is_none(), "request id reused");
            }
            1 | 2 => {
                // Answer the oldest written request: a header, then the body.
                let Some((correlation, key, version)) = run.written.pop_front() else {
                    continue;
                };
                let len = take_le(&mut data, 1) as usize;
                let body = &data[..len.min(data.len())];
                data = &data[body.len()..];
                let mut frame = Vec::new();
                let valid = match key {
                    ApiKey::ApiVersions if op % 8 == 2 => Some(all_versions()),
                    ApiKey::SaslHandshake if op % 8 == 2 => {
                        Some(ResponseBody::SaslHandshake(SaslHandshakeResponse {
                            mechanisms: vec![
                                "PLAIN".into(),
                                "SCRAM-SHA-256".into(),
                                "SCRAM-SHA-512".into(),
                            ],
                            ..Default::default()
                        }))
                    }
                    _ => None,
                };
                match valid {
                    Some(response) if version >= 0 => {
                        encode_response(&mut frame, version, correlation, &response)
                            .expect("encode a valid response");
                    }
                    _ => {
                        let mut payload = correlation.to_be_bytes().to_vec();
                        if version >= 0 && key.response_header_version(version) >= 1 {
                            payload.push(0); // no tagged fields
                        }
                        payload.extend_from_slice(body);
                        frame.extend_from_slice(&(payload.len() as i32).to_be_bytes());
                        frame.extend_from_slice(&payload);
                    }
                }
                // In two pieces, to go through the frame decoder's buffering.
                let cut = (len * 7) % (frame.len() + 1);
                run.conn.handle_data(now, &frame[..cut]);
                run.drain();
                run.conn.handle_data(now, &frame[cut..]);
            }
            3 => {
                let len = take_le(&mut data, 1) as usize;
                let raw = &data[..len.min(data.len())];
                data = &data[raw.len()..];
                run.conn.handle_data(now, raw);
            }
            4 => {
                let step = take_le(&mut data, 1);
                run.now += Duration::from_millis(step * step * 10);
                run.timeout();
            }
            5 => run.conn.handle_connected(now),
            6 => run.conn.handle_closed(now, None),
            _ => run.conn.close(now),
        }
        run.drain();
        run.timeout();
    }
    // Every request ends, at the latest when the connection is closed.
    run.conn.close(run.now);
    run.drain();
    assert!(
        run.pending.is_empty(),
        "requests never answered: {:?}",
        run.pending
    );
}

// ---------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------

/// How the harness corrupts the next chunk the cluster sends.
#[derive(Debug, Clone, Copy)]
enum Mutation {
    /// XOR a byte.
    Flip { at: usize, xor: u8 },
    /// Keep only a prefix.
    Cut { keep: usize },
    /// Duplicate a prefix.
    Repeat { len: usize },
}

fn mutate(m: Mutation, chunk: &mut Vec<u8>) {
    if chunk.is_empty() {
        return;
    }
    match m {
        Mutation::Flip { at, xor } => {
            let i = at % chunk.len();
            chunk[i] ^= xor.max(1);
        }
        Mutation::Cut { keep } => chunk.truncate(keep % chunk.len()),
        Mutation::Repeat { len } => {
            let n = len % chunk.len() + 1;
            let prefix = chunk[..n].to_vec();
            chunk.extend_from_slice(&prefix);
        }
    }
}

const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

struct ClientRun {
    client: Client,
    cluster: MockCluster,
    now: Instant,
    links: BTreeMap<ConnectionHandle, MockConn>,
    /// Operations not finished, with their deadlines.
    pending: BTreeMap<OpId, Instant>,
    done: BTreeSet<OpId>,
    mutations: VecDeque<Mutation>,
}

impl ClientRun {
    /// Moves IO, bytes and events until nothing is left to do at `now` (bounded).
    fn pump(&mut self) {
        for _ in 0..64 {
            let mut busy = false;
            while let Some(io) = self.client.poll_io() {
                busy = true;
                match io {
                    Io::Connect { conn, host, port } => {
                        let broker = self.cluster.broker_at(&host, port);
                        match broker.map(|id| self.cluster.connect(self.now, id)) {
                            Some(Ok(m)) => {
                                self.links.insert(conn, m);
                                self.client.handle_connected(self.now, conn);
                            }
                            _ => {
                                let e = grete::error::TransportError::new(
                                    grete::error::TransportErrorKind::Refused,
                                    "refused",
                                );
                                self.client.handle_connect_failed(self.now, conn, e);
                            }
                        }
                    }
                    Io::Close { conn } => {
                        if let Some(m) = self.links.remove(&conn) {
                            self.cluster.close(m);
                        }
                    }
                    other => panic!("{other:?} without ZooKeeper bootstrap"),
                }
            }
            let mut buf = Vec::new();
            while let Some(conn) = self.client.poll_transmit(self.now, &mut buf) {
                busy = true;
                if let Some(&m) = self.links.get(&conn) {
                    self.cluster.handle_data(self.now, m, &buf);
                }
                buf.clear();
            }
            for (conn, m) in self.links.clone() {
                let mut chunk = Vec::new();
                match self.cluster.poll_transmit(self.now, m, &mut chunk) {
                    Some(MockTransmit::Data) => {
                        busy = true;
                        if let Some(mu) = self.mutations.pop_front() {
                            mutate(mu, &mut chunk);
                        }
                        self.client.handle_data(self.now, conn, &chunk);
                    }
                    Some(MockTransmit::Closed) => {
                        busy = true;
                        self.links.remove(&conn);
                        self.client.handle_closed(self.now, conn, None);
                    }
                    None => {}
                }
            }
            while let Some(ev) = self.client.poll_event() {
                if let Event::Done { op, .. } = ev {
                    let deadline = self
                        .pending
                        .remove(&op)
                        .unwrap_or_else(|| panic!("{op:?} done twice or never started"));
                    assert!(self.now <= deadline, "{op:?} finished after its deadline");
                    self.done.insert(op);
                }
            }
            if !busy {
                return;
            }
        }
    }

    /// Advances to `until`, stopping at every timer of the client and the cluster. A
    /// timer that stays at or before `now` after being handled (a transport would spin on
    /// it) fails the check after 100 rounds.
    fn advance(&mut self, until: Instant) {
        let mut stuck = 0;
        for _ in 0..10_000 {
            let next = [self.client.poll_timeout(), self.cluster.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= until => {
                    if t <= self.now {
                        stuck += 1;
                        assert!(stuck < 100, "a timer stays at or before now: busy loop");
                    } else {
                        stuck = 0;
                    }
                    self.now = self.now.max(t);
                    self.cluster.handle_timeout(self.now);
                    self.client.handle_timeout(self.now);
                    self.pump();
                }
                _ => {
                    self.now = self.now.max(until);
                    self.cluster.handle_timeout(self.now);
                    self.client.handle_timeout(self.now);
                    self.pump();
                    return;
                }
            }
        }
        panic!("more than 10000 timers before {until:?}");
    }

    fn start(&mut self, op: OpId) {
        assert!(!self.done.contains(&op), "op id reused");
        assert!(
            self.pending
                .insert(op, self.now + REQUEST_TIMEOUT)
                .is_none(),
            "op id reused"
        );
    }
}

/// `client`: operation sequences on a [`Client`] bootstrapped from a 3-broker mock
/// cluster whose answers the input corrupts.
///
/// Input: a flags byte (bit 0: 0.9 cluster and configuration; bits 1-2: max in flight - 1),
/// then operations: update the cluster, topic metadata, list offsets, create or delete a
/// topic, a raw request, corrupt the next chunk the cluster sends (flip, cut, repeat),
/// advance time, take a broker down or up.
pub fn check_client(mut data: &[u8]) {
    let flags = take_le(&mut data, 1) as u8;
    let mut mock = MockConfig::new(3).with_topic("t", 3, 2).with_seed(1);
    if flags & 1 != 0 {
        mock = mock.kafka_09();
    }
    let cluster = MockCluster::new(mock);
    let mut config = ClientConfig {
        client_id: "fuzz".into(),
        bootstrap: Bootstrap::Brokers(
            BrokerAddress::parse(&cluster.bootstrap_servers()).expect("mock bootstrap"),
        ),
        request_timeout: REQUEST_TIMEOUT,
        max_in_flight_requests_per_connection: 1 + ((flags >> 1) & 3) as usize,
        // A fixed seed: the same input replays the same run (the default draws from the OS).
        rng_seed: Some(0),
        ..ClientConfig::default()
    };
    if flags & 1 != 0 {
        config.broker_version = BrokerVersion::new(0, 9, 0);
        config.api_version_request = false;
    }
    let client = Client::new(config).expect("valid configuration");
    let mut run = ClientRun {
        client,
        cluster,
        now: Instant::now(),
        links: BTreeMap::new(),
        pending: BTreeMap::new(),
        done: BTreeSet::new(),
        mutations: VecDeque::new(),
    };
    let mut ops = 0;
    while !data.is_empty() && ops < 64 {
        ops += 1;
        let op = take_le(&mut data, 1) as u8;
        let arg = take_le(&mut data, 1) as u8;
        let now = run.now;
        match op % 10 {
            0 => {
                let id = run.client.update_cluster(now);
                run.start(id);
            }
            1 => {
                let topics = vec![if arg & 1 == 0 { "t" } else { "missing" }.to_owned()];
                let id = run.client.topic_metadata(now, topics, arg & 2 != 0);
                run.start(id);
            }
            2 => {
                let partitions = vec![((arg % 4) as i32, -1 - (arg >> 7) as i64)];
                let id = run.client.list_offsets(now, "t", partitions);
                run.start(id);
            }
            3 => {
                let topic = grete::client::NewTopic {
                    name: format!("n{}", arg % 3),
                    num_partitions: 1 + (arg >> 4) as i32 % 3,
                    replication_factor: 1,
                    configs: Vec::new(),
                };
                let id = run
                    .client
                    .create_topics(now, vec![topic], Duration::from_secs(1));
                run.start(id);
            }
            4 => {
                let id = run.client.delete_topics(
                    now,
                    vec![format!("n{}", arg % 3)],
                    Duration::from_secs(1),
                );
                run.start(id);
            }
            5 => {
                let target = match arg % 3 {
                    0 => Target::AnyBroker,
                    1 => Target::Broker((arg >> 2) as i32 % 4),
                    _ => Target::Controller,
                };
                let id = run.client.send(now, target, pick_request(arg >> 4));
                run.start(id);
            }
            6 => {
                let x = take_le(&mut data, 2) as usize;
                run.mutations.push_back(match arg % 3 {
                    0 => Mutation::Flip {
                        at: x,
                        xor: (x >> 8) as u8,
                    },
                    1 => Mutation::Cut { keep: x },
                    _ => Mutation::Repeat { len: x },
                });
            }
            7 => {
                let until = now + Duration::from_millis(arg as u64 * arg as u64 * 2);
                run.advance(until);
            }
            8 => run.cluster.broker_down(now, (arg % 3) as i32),
            _ => run.cluster.broker_up((arg % 3) as i32),
        }
        run.pump();
    }
    // Every operation finishes by its deadline, whatever happened.
    let end = run.now + REQUEST_TIMEOUT + Duration::from_millis(1);
    run.advance(end);
    assert!(
        run.pending.is_empty(),
        "operations not finished by their deadline: {:?}",
        run.pending
    );
}

// ---------------------------------------------------------------------------------------
// SASL
// ---------------------------------------------------------------------------------------

/// `sasl`: server messages fed to a [`SaslClient`].
///
/// Input: a byte choosing the mechanism, then server messages, each a 2-byte length and
/// its bytes. Checks: the exchange only completes for PLAIN (a SCRAM server must prove it
/// knows the password, which these bytes cannot); once it fails or completes, every
/// further message is refused; replies are only produced in sequence.
pub fn check_sasl(mut data: &[u8]) {
    let pick = take_le(&mut data, 1) as u8;
    let config = pick_sasl(1 + pick % 3).expect("a mechanism");
    let mut client = SaslClient::with_nonce(&config, "fyko+d2lbbFgONRv9qkxdawL");
    let first = client.initial_response().expect("first message");
    assert!(!first.is_empty());
    assert!(client.initial_response().is_err(), "second first message");
    let mut finished = false;
    let mut steps = 0;
    while !data.is_empty() {
        let len = take_le(&mut data, 2) as usize;
        let msg = &data[..len.min(data.len())];
        data = &data[msg.len()..];
        let was_done = client.is_done();
        let result = client.handle_challenge(msg);
        steps += 1;
        if finished {
            assert!(
                result.is_err(),
                "a message accepted after the end of the exchange"
            );
            assert_eq!(
                client.is_done(),
                was_done,
                "a stray message changed how the exchange ended"
            );
            continue;
        }
        match result {
            Ok(Some(reply)) => {
                assert!(!client.is_done());
                assert_eq!(steps, 1, "a reply after the first challenge");
                assert!(
                    reply.starts_with(b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL"),
                    "{reply:?}"
                );
            }
            Ok(None) => {
                assert!(client.is_done());
                assert_eq!(
                    config.mechanism,
                    SaslMechanism::Plain,
                    "SCRAM completed without the server's proof"
                );
                finished = true;
            }
            Err(_) => {
                assert!(!client.is_done());
                finished = true;
            }
        }
    }
}
