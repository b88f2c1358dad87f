//! The consumer core against real brokers (Kafka 0.9.0.1 and tansu), driven by a minimal
//! std-socket event loop: records the producer wrote (plain and gzip, one larger than the
//! per-partition fetch limit) read back exactly, in order, from every partition; a seek
//! reads again from the middle; committed offsets read back.
//!
//! Needs `GRETE_KAFKA09_BROKERS` / `GRETE_TANSU_BROKERS` (skips without them, fails instead
//! with `GRETE_REQUIRE_BROKERS=1`, as `scripts/test` runs it).

// A test loop is a transport: reading the clock is its job.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use grete::client::{Client, ConnectionHandle, Event, Io, NewTopic, OpId, Output, ProduceRecord};
use grete::config::{Bootstrap, BrokerAddress, BrokerVersion, ClientConfig};
use grete::consumer::{ConsumerConfig, ConsumerId, OffsetSpec};
use grete::error::{Error, TransportError, TransportErrorKind};
use grete::producer::ProducerConfig;
use grete::protocol::compression::Compression;

struct Loop {
    client: Client,
    socks: BTreeMap<ConnectionHandle, (TcpStream, Vec<u8>)>,
    events: Vec<Event>,
}

impl Loop {
    fn new(brokers: &str, version: BrokerVersion) -> Loop {
        let config = ClientConfig {
            bootstrap: Bootstrap::Brokers(BrokerAddress::parse(brokers).unwrap()),
            broker_version: version,
            request_timeout: Duration::from_secs(15),
            ..ClientConfig::default()
        };
        Loop {
            client: Client::new(config).unwrap(),
            socks: BTreeMap::new(),
            events: Vec::new(),
        }
    }

    /// Turns until `done` holds; panics after `limit` (a safety net, not a measurement).
    fn run(&mut self, limit: Duration, mut done: impl FnMut(&mut Loop) -> bool) {
        let end = Instant::now() + limit;
        let mut buf = Vec::new();
        let mut read = vec![0u8; 64 * 1024];
        loop {
            let now = Instant::now();
            assert!(now < end, "no result within {limit:?}");
            if self.client.poll_timeout().is_some_and(|t| t <= now) {
                self.client.handle_timeout(now);
            }
            while let Some(io) = self.client.poll_io() {
                match io {
                    Io::Connect { conn, host, port } => match connect(&host, port) {
                        Ok(s) => {
                            self.socks.insert(conn, (s, Vec::new()));
                            self.client.handle_connected(Instant::now(), conn);
                        }
                        Err(e) => self.client.handle_connect_failed(Instant::now(), conn, e),
                    },
                    Io::Close { conn } => {
                        self.socks.remove(&conn);
                    }
                    _ => {}
                }
            }
            loop {
                buf.clear();
                let Some(conn) = self.client.poll_transmit(Instant::now(), &mut buf) else {
                    break;
                };
                if let Some((_, out)) = self.socks.get_mut(&conn) {
                    out.extend_from_slice(&buf);
                }
            }
            while let Some(e) = self.client.poll_event() {
                self.events.push(e);
            }
            if done(self) {
                return;
            }
            let mut moved = false;
            let mut closed = Vec::new();
            for (&conn, (s, out)) in &mut self.socks {
                while !out.is_empty() {
                    match s.write(out) {
                        Ok(n) if n > 0 => {
                            out.drain(..n);
                            moved = true;
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        _ => {
                            closed.push(conn);
                            break;
                        }
                    }
                }
                for _ in 0..16 {
                    match s.read(&mut read) {
                        Ok(0) => {
                            closed.push(conn);
                            break;
                        }
                        Ok(n) => {
                            moved = true;
                            self.client.handle_data(Instant::now(), conn, &read[..n]);
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(_) => {
                            closed.push(conn);
                            break;
                        }
                    }
                }
            }
            for conn in closed {
                self.socks.remove(&conn);
                let e = TransportError::closed("closed by the broker");
                self.client.handle_closed(Instant::now(), conn, Some(e));
            }
            if !moved {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    fn wait(&mut self, op: OpId) -> Result<Output, Error> {
        let mut result = None;
        self.run(Duration::from_secs(60), |l| {
            if let Some(i) = l
                .events
                .iter()
                .position(|e| matches!(e, Event::Done { op: o, .. } if *o == op))
            {
                if let Event::Done { result: r, .. } = l.events.remove(i) {
                    result = Some(r);
                }
            }
            result.is_some()
        });
        result.unwrap()
    }
}

fn connect(host: &str, port: u16) -> Result<TcpStream, TransportError> {
    let addr = (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| TransportError::new(TransportErrorKind::Resolve, host.to_owned()))?;
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_nonblocking(true)?;
    let _ = s.set_nodelay(true);
    Ok(s)
}

/// Produces `per_partition` records to each partition (one of them 3 KiB), in `codec`.
fn produce(
    l: &mut Loop,
    topic: &str,
    partitions: i32,
    per_partition: usize,
    codec: Compression,
) -> BTreeMap<i32, Vec<Vec<u8>>> {
    let config = ProducerConfig {
        compression: codec,
        linger: Duration::from_millis(5),
        ..ProducerConfig::default()
    };
    let id = l
        .client
        .add_producer(Instant::now(), topic, config)
        .unwrap();
    let mut sent: BTreeMap<i32, Vec<Vec<u8>>> = BTreeMap::new();
    for i in 0..per_partition {
        for p in 0..partitions {
            let value = if i == per_partition / 2 {
                vec![b'L'; 3000]
            } else {
                format!("{codec:?}-{p}-{i}-").repeat(4).into_bytes()
            };
            let record = ProduceRecord {
                partition: Some(p),
                ..ProduceRecord::value(&value, 1_700_000_000_000)
            };
            let (_, wake) = l.client.produce(Instant::now(), id, &record).unwrap();
            if wake {
                l.client.handle_timeout(Instant::now());
            }
            sent.entry(p).or_default().push(value);
        }
    }
    l.client.flush(Instant::now(), id);
    let total = partitions as usize * per_partition;
    let mut acked = 0usize;
    l.run(Duration::from_secs(60), |l| {
        for e in std::mem::take(&mut l.events) {
            if let Event::Delivery(r) = e {
                assert!(r.result.is_ok(), "{r:?}");
                acked += r.count as usize;
            }
        }
        acked >= total
    });
    l.client.remove_producer(Instant::now(), id);
    sent
}

/// Reads `want` records per partition from the consumer; returns them by partition.
fn consume(
    l: &mut Loop,
    id: ConsumerId,
    want: &BTreeMap<i32, usize>,
) -> BTreeMap<i32, Vec<(i64, Vec<u8>)>> {
    let mut got: BTreeMap<i32, Vec<(i64, Vec<u8>)>> = BTreeMap::new();
    l.run(Duration::from_secs(60), |l| {
        while let Some(b) = l.client.poll_batch(Instant::now(), id) {
            for r in b.records() {
                let r = r.unwrap();
                got.entry(b.partition())
                    .or_default()
                    .push((r.offset, r.value.unwrap_or_default().to_vec()));
            }
        }
        for e in std::mem::take(&mut l.events) {
            use grete::consumer::ConsumerEvent;
            let fine = matches!(e, Event::Consumer(ConsumerEvent::PositionSet { .. }));
            assert!(fine || !matches!(e, Event::Consumer(_)), "{e:?}");
        }
        want.iter()
            .all(|(p, n)| got.get(p).map_or(0, Vec::len) >= *n)
    });
    got
}

fn round_trip(l: &mut Loop, topic: &str, partitions: i32) {
    let mut sent: BTreeMap<i32, Vec<Vec<u8>>> = BTreeMap::new();
    for codec in [Compression::None, Compression::Gzip] {
        for (p, values) in produce(l, topic, partitions, 40, codec) {
            sent.entry(p).or_default().extend(values);
        }
    }
    let config = ConsumerConfig {
        // Smaller than the 3 KiB record and than most batches: cut answers on 0.9.
        fetch_message_max_bytes: 1024,
        queued_max_bytes: 8192,
        ..ConsumerConfig::default()
    };
    let id = l.client.add_consumer(Instant::now(), config).unwrap();
    for p in 0..partitions {
        l.client
            .assign(Instant::now(), id, topic, p, OffsetSpec::Earliest)
            .unwrap();
    }
    let want: BTreeMap<i32, usize> = sent.iter().map(|(p, v)| (*p, v.len())).collect();
    let got = consume(l, id, &want);
    for (p, values) in &sent {
        let expected: Vec<(i64, Vec<u8>)> = values
            .iter()
            .enumerate()
            .map(|(o, v)| (o as i64, v.clone()))
            .collect();
        assert_eq!(got[p], expected, "partition {p}");
    }
    // Again from the middle of partition 0 (inside a gzip wrapper on 0.9).
    l.client
        .seek(Instant::now(), id, topic, 0, OffsetSpec::Offset(50))
        .unwrap();
    let again = consume(l, id, &BTreeMap::from([(0, sent[&0].len() - 50)]));
    assert_eq!(again[&0].first().map(|r| r.0), Some(50));
    assert_eq!(again[&0].len(), sent[&0].len() - 50);
    // Commit the positions and read them back.
    let position = l
        .client
        .consumer(id)
        .unwrap()
        .partition(topic, 0)
        .unwrap()
        .position;
    assert_eq!(position, sent[&0].len() as i64);
    let group = common::unique_topic("grete-consumer-group");
    let op = l
        .client
        .commit_offsets(Instant::now(), &group, topic, vec![(0, position)]);
    let committed = l.wait(op).unwrap().into_offsets().unwrap();
    assert_eq!(committed[0].result, Ok(position));
    let op = l
        .client
        .fetch_offsets(Instant::now(), &group, topic, vec![0]);
    let fetched = l.wait(op).unwrap().into_offsets().unwrap();
    assert_eq!(fetched[0].result, Ok(position));
    l.client.remove_consumer(Instant::now(), id);
}

#[test]
fn kafka09_records_read_back_exactly() {
    let Some(brokers) = common::broker("GRETE_KAFKA09_BROKERS") else {
        return;
    };
    let mut l = Loop::new(&brokers, BrokerVersion::new(0, 9, 0));
    let topic = common::unique_topic("grete-consumer");
    // 0.9 creates the topic on the first metadata request; wait for its leaders.
    let mut partitions = 0;
    for _ in 0..50 {
        let op = l
            .client
            .topic_metadata(Instant::now(), vec![topic.clone()], true);
        if let Ok(out) = l.wait(op) {
            if let Ok(ps) = out.into_topic_partitions(&topic, l.client.cluster()) {
                if !ps.is_empty() && ps.iter().all(|p| p.leader.is_some()) {
                    partitions = ps.len() as i32;
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(partitions > 0, "topic {topic} has no leaders");
    round_trip(&mut l, &topic, partitions);
}

#[test]
fn tansu_records_read_back_exactly() {
    let Some(brokers) = common::broker("GRETE_TANSU_BROKERS") else {
        return;
    };
    let mut l = Loop::new(&brokers, BrokerVersion::new(2, 8, 0));
    let topic = common::unique_topic("grete-consumer");
    let op = l.client.create_topics(
        Instant::now(),
        vec![NewTopic {
            name: topic.clone(),
            num_partitions: 2,
            replication_factor: 1,
            configs: Vec::new(),
        }],
        Duration::from_secs(10),
    );
    let created = l.wait(op).unwrap().into_topics().unwrap();
    assert_eq!(created[0].error, None, "{created:?}");
    let op = l
        .client
        .topic_metadata(Instant::now(), vec![topic.clone()], false);
    l.wait(op).unwrap();
    round_trip(&mut l, &topic, 2);
}
