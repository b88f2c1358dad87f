//! grete in one minute: connect, list the topics, show one topic's partitions and offsets.
//!
//! ```text
//! cargo run --release --example quickstart                      # an in-process mock cluster
//! KAFKA_BROKERS=127.0.0.1:9092 cargo run --release --example quickstart [TOPIC]
//! ```
//!
//! With `KAFKA_BROKERS` set it uses the grete-blocking transport against your brokers;
//! without, the same client core talks to grete's in-memory mock cluster through the
//! deterministic simulation harness, so it runs anywhere.

use std::time::Duration;

use bytes::Bytes;
use grete::client::{Output, PartitionOffset};
use grete::cluster::{Cluster, PartitionInfo};
use grete::config::{Bootstrap, BrokerAddress, ClientConfig};
use grete::mock::sim::{Sim, SimConfig};
use grete::mock::MockConfig;
use grete::protocol::records::Record;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// What the quickstart shows, whichever way it got there.
pub struct Report {
    pub cluster: Cluster,
    pub topic: String,
    pub partitions: Vec<PartitionInfo>,
    pub latest: Vec<PartitionOffset>,
}

fn with_brokers(list: &str, topic: Option<String>) -> Result<Report> {
    let client = grete_blocking::KafkaClient::connect(ClientConfig {
        bootstrap: Bootstrap::Brokers(BrokerAddress::parse(list)?),
        request_timeout: Duration::from_secs(10),
        ..ClientConfig::default()
    })?;
    let name = match topic.or_else(|| client.topics().into_iter().next()) {
        Some(n) => n,
        None => {
            let cluster = client.cluster();
            client.close();
            return Ok(Report {
                cluster,
                topic: String::new(),
                partitions: Vec::new(),
                latest: Vec::new(),
            });
        }
    };
    let t = client.topic(&name)?;
    let latest = t.latest_offsets()?;
    let report = Report {
        cluster: client.cluster(),
        topic: name,
        partitions: t.partitions().to_vec(),
        latest,
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
    // A few messages, so that the offsets are not all zero.
    for (p, n) in [(0, 3), (1, 1), (2, 5)] {
        let records: Vec<Record> = (0..n)
            .map(|i| Record {
                offset: i,
                value: Some(Bytes::from_static(b"hello")),
                ..Default::default()
            })
            .collect();
        sim.cluster
            .append_records(sim.now(), &name, p, &records)
            .map_err(|code| format!("mock append: {code:?}"))?;
    }
    let op = sim.client.update_cluster(sim.now());
    sim.wait_op(op)??;
    let partitions: Vec<PartitionInfo> = sim
        .client
        .cluster()
        .topic(&name)
        .map(|t| t.partitions.values().cloned().collect())
        .unwrap_or_default();
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
