//! grete in one minute: connect, list the topics, produce a few records to a topic, read
//! them back with a consumer, show its partitions and offsets.
//!
//! ```text
//! cargo run --release --example quickstart                      # an in-process mock cluster
//! KAFKA_BROKERS=127.0.0.1:9092 cargo run --release --example quickstart [TOPIC]
//! ```
//!
//! With brokers it writes three records to TOPIC (default `grete-quickstart`, created by
//! the broker if it auto-creates topics), then reads them back from where they were
//! written.
//!
//! With `KAFKA_BROKERS` set it uses the grete-blocking transport against your brokers;
//! without, the same client core talks to grete's in-memory mock cluster through the
//! deterministic simulation harness, so it runs anywhere.

use std::time::Duration;

use grete::client::{Event, Output, PartitionOffset, ProduceRecord};
use grete::cluster::{Cluster, PartitionInfo};
use grete::config::{Bootstrap, BrokerAddress, ClientConfig};
use grete::consumer::{ConsumerConfig, OffsetSpec};
use grete::mock::sim::{Sim, SimConfig};
use grete::mock::MockConfig;
use grete::producer::ProducerConfig;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// What the quickstart shows, whichever way it got there.
pub struct Report {
    pub cluster: Cluster,
    pub topic: String,
    pub partitions: Vec<PartitionInfo>,
    pub latest: Vec<PartitionOffset>,
    /// (partition, offset) of each record produced.
    pub produced: Vec<(i32, i64)>,
    /// (partition, offset, value) of each record read back.
    pub consumed: Vec<(i32, i64, String)>,
}

fn with_brokers(list: &str, topic: Option<String>) -> Result<Report> {
    let client = grete_blocking::KafkaClient::connect(ClientConfig {
        bootstrap: Bootstrap::Brokers(BrokerAddress::parse(list)?),
        request_timeout: Duration::from_secs(10),
        ..ClientConfig::default()
    })?;
    let name = topic.unwrap_or_else(|| "grete-quickstart".into());
    let t = client.topic(&name)?;
    // Each send returns once the broker acknowledged the record.
    let producer = t.sync_producer(ProducerConfig::default())?;
    let mut produced = Vec::new();
    for text in ["hello", "from", "grete"] {
        let delivered = producer.send(grete_blocking::Record::value(text.as_bytes()))?;
        produced.push((delivered.partition, delivered.offset));
    }
    producer.close(Duration::from_secs(5));
    // Read them back: each partition written to, from the first record written there.
    let mut starts: Vec<(i32, Option<OffsetSpec>)> = Vec::new();
    for &(p, o) in &produced {
        match starts.iter_mut().find(|(q, _)| *q == p) {
            Some((_, Some(OffsetSpec::Offset(first)))) => *first = (*first).min(o),
            _ => starts.push((p, Some(OffsetSpec::Offset(o)))),
        }
    }
    let mut consumer = t.simple_consumer_for(
        &starts,
        grete_blocking::SimpleConsumerConfig {
            // The iterator ends after 5 s without a record.
            consumer_timeout_ms: Some(5_000),
            ..Default::default()
        },
    )?;
    let mut consumed = Vec::new();
    for message in consumer.messages().take(produced.len()) {
        let m = message?;
        let value = String::from_utf8_lossy(m.value.as_deref().unwrap_or_default()).into_owned();
        consumed.push((m.partition, m.offset, value));
    }
    consumer.close(Duration::from_secs(5))?;
    let latest = t.latest_offsets()?;
    let report = Report {
        cluster: client.cluster(),
        topic: name,
        partitions: t.partitions().to_vec(),
        latest,
        produced,
        consumed,
    };
    client.close();
    Ok(report)
}

/// The report from grete's in-process mock cluster (also used by the tests).
pub fn with_mock(topic: Option<String>) -> Result<Report> {
    let name = topic.unwrap_or_else(|| "events".into());
    let mock = MockConfig::new(3)
        .with_topic(&name, 3, 2)
        .with_topic("audit", 1, 3);
    let mut sim = Sim::new(mock, SimConfig::plain(1, Duration::from_millis(1)), |_| {})?;
    let op = sim.client.update_cluster(sim.now());
    sim.wait_op(op)??;
    // A few records through the core's producer, so that the offsets are not all zero.
    let producer = sim
        .client
        .add_producer(sim.now(), &name, ProducerConfig::default())?;
    for (p, n) in [(0, 3), (1, 1), (2, 5)] {
        for _ in 0..n {
            let record = ProduceRecord {
                partition: Some(p),
                ..ProduceRecord::value(b"hello", 1_700_000_000_000)
            };
            sim.client.produce(sim.now(), producer, &record)?;
        }
    }
    sim.client.flush(sim.now(), producer);
    sim.client.handle_timeout(sim.now());
    let mut produced = Vec::new();
    sim.run_until(|sim| {
        for e in sim.take_events() {
            if let Event::Delivery(r) = e {
                let base = r.result.unwrap_or(-1);
                produced.extend((0..i64::from(r.count)).map(|i| (r.partition, base + i)));
            }
        }
        produced.len() == 9
    })?;
    let partitions: Vec<PartitionInfo> = sim
        .client
        .cluster()
        .topic(&name)
        .map(|t| t.partitions.values().cloned().collect())
        .unwrap_or_default();
    // Read them back through the core's consumer.
    let consumer = sim
        .client
        .add_consumer(sim.now(), ConsumerConfig::default())?;
    for p in &partitions {
        sim.client
            .assign(sim.now(), consumer, &name, p.id, OffsetSpec::Earliest)?;
    }
    sim.client.handle_timeout(sim.now());
    let mut consumed = Vec::new();
    sim.run_until(|sim| {
        sim.take_events();
        while let Some(batch) = sim.client.poll_batch(sim.now(), consumer) {
            for r in batch.records().flatten() {
                let value = String::from_utf8_lossy(r.value.unwrap_or_default()).into_owned();
                consumed.push((batch.partition(), r.offset, value));
            }
        }
        consumed.len() == produced.len()
    })?;
    sim.client.remove_consumer(sim.now(), consumer);
    let wanted = partitions.iter().map(|p| (p.id, -1)).collect();
    let op = sim.client.list_offsets(sim.now(), &name, wanted);
    let latest = match sim.wait_op(op)?? {
        Output::Offsets(o) => o,
        _ => Vec::new(),
    };
    Ok(Report {
        cluster: sim.client.cluster().clone(),
        topic: name,
        partitions,
        latest,
        produced,
        consumed,
    })
}

fn ids(v: &[i32]) -> String {
    v.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

fn main() -> Result<()> {
    let topic = std::env::args().nth(1);
    let report = match std::env::var("KAFKA_BROKERS") {
        Ok(list) if !list.trim().is_empty() => {
            println!("connecting to {list} (grete-blocking)");
            with_brokers(&list, topic)?
        }
        _ => {
            println!("KAFKA_BROKERS not set: using grete's in-process mock cluster");
            with_mock(topic)?
        }
    };
    let brokers: Vec<String> = report
        .cluster
        .brokers()
        .map(|b| format!("{}@{}:{}", b.id, b.host, b.port))
        .collect();
    println!("brokers: {}", brokers.join(" "));
    let topics: Vec<&str> = report.cluster.topics().map(|t| t.name.as_str()).collect();
    println!("topics:  {}", topics.join(" "));
    if report.topic.is_empty() {
        println!("(no topics)");
        return Ok(());
    }
    for (p, o) in &report.produced {
        println!("produced a record at partition {p} offset {o}");
    }
    for (p, o, value) in &report.consumed {
        println!("consumed {value:?} at partition {p} offset {o}");
    }
    println!("topic {}:", report.topic);
    for p in &report.partitions {
        let latest = report
            .latest
            .iter()
            .find(|o| o.partition == p.id)
            .map(|o| match &o.result {
                Ok(v) => v.to_string(),
                Err(e) => format!("({e})"),
            })
            .unwrap_or_default();
        let leader = p.leader.map_or("none".into(), |l| l.to_string());
        println!(
            "  partition {}  leader {}  replicas {}  isr {}  next offset {}",
            p.id,
            leader,
            ids(&p.replicas),
            ids(&p.isr),
            latest
        );
    }
    Ok(())
}
