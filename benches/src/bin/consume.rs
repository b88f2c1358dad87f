//! Consumer benchmark: grete (tokio, the batch API) and librdkafka (the `rdkafka` crate)
//! reading a topic from its beginning, each client in a child process of its own on the
//! same broker in one run (see `harness.rs` for what is measured).
//!
//! ```text
//! cargo run --release --manifest-path benches/Cargo.toml --bin consume -- \
//!     --brokers 127.0.0.1:19092 --topic bench-c4 --count 1000000 --fill --broker-version 0.9.0
//! ```
//!
//! `--fill` first writes `--count` records of `--size` bytes with grete's producer (the
//! topic must exist: `scripts/kafka09 create-topic bench-c4 4 1`, or `--create-partitions`
//! on brokers with CreateTopics). Each child reads from offset 0 of every partition until
//! it has `--count` records; the timed phase starts at its first fetch request (connecting
//! and metadata excluded) and ends at the last record.

use std::process::Command;
use std::time::Duration;

use grete::config::{BrokerAddress, BrokerVersion, ClientConfig};
use grete::producer::ProducerConfig;

#[path = "../harness.rs"]
mod harness;
use harness::{measure, Flags, Measure};

#[derive(Debug, Clone)]
struct Options {
    brokers: String,
    topic: String,
    count: u64,
    size: usize,
    runs: usize,
    clients: Vec<String>,
    broker_version: Option<String>,
    create_partitions: Option<i32>,
    fill: bool,
    client: Option<String>,
}

const USAGE: &str = "\
usage: consume --brokers HOSTS --topic TOPIC [options]

  --count N            records each client reads (default 1000000)
  --size BYTES         bytes per value written by --fill (default 100)
  --fill               first write --count records (grete's producer, acks 1)
  --create-partitions N  first create the topic with N partitions (not on Kafka 0.9)
  --runs N             runs of every client, alternating (default 1)
  --clients LIST       among grete, rdkafka (default grete,rdkafka)
  --broker-version V   a broker without ApiVersions (0.9.0)
  --client NAME        (internal) run one client in this process
";

impl Options {
    fn parse() -> Options {
        let mut o = Options {
            brokers: String::new(),
            topic: String::new(),
            count: 1_000_000,
            size: 100,
            runs: 1,
            clients: vec!["grete".into(), "rdkafka".into()],
            broker_version: None,
            create_partitions: None,
            fill: false,
            client: None,
        };
        let mut f = Flags::new(USAGE);
        while let Some(flag) = f.next_flag() {
            match flag.as_str() {
                "--brokers" => o.brokers = f.value(&flag),
                "--topic" => o.topic = f.value(&flag),
                "--count" => o.count = f.num(&flag),
                "--size" => o.size = f.num(&flag) as usize,
                "--runs" => o.runs = f.num(&flag) as usize,
                "--clients" => o.clients = f.value(&flag).split(',').map(str::to_owned).collect(),
                "--broker-version" => o.broker_version = Some(f.value(&flag)),
                "--create-partitions" => o.create_partitions = Some(f.num(&flag) as i32),
                "--fill" => o.fill = true,
                "--client" => o.client = Some(f.value(&flag)),
                other => f.fail(&format!("unknown option {other}")),
            }
        }
        if o.brokers.is_empty() || o.topic.is_empty() {
            f.fail("give --brokers and --topic");
        }
        o
    }

    /// The arguments that give a child these options.
    fn child_args(&self, client: &str) -> Vec<String> {
        let mut a = vec![
            "--client".to_owned(),
            client.to_owned(),
            "--brokers".into(),
            self.brokers.clone(),
            "--topic".into(),
            self.topic.clone(),
            "--count".into(),
            self.count.to_string(),
            "--size".into(),
            self.size.to_string(),
        ];
        if let Some(v) = &self.broker_version {
            a.push("--broker-version".into());
            a.push(v.clone());
        }
        a
    }
}

fn client_config(o: &Options) -> ClientConfig {
    let defaults = ClientConfig::default();
    ClientConfig {
        client_id: "grete-bench".into(),
        bootstrap: grete::config::Bootstrap::Brokers(
            BrokerAddress::parse(&o.brokers).expect("--brokers"),
        ),
        broker_version: o
            .broker_version
            .as_deref()
            .map_or(defaults.broker_version, |v| {
                BrokerVersion::parse(v).expect("--broker-version")
            }),
        ..defaults
    }
}

/// librdkafka through the `rdkafka` crate's `BaseConsumer`, every partition assigned from
/// offset 0 (no group coordination), records polled on this thread and their bytes summed
/// so that the payload is touched, as an application would.
fn run_rdkafka(o: &Options) -> Measure {
    use rdkafka::consumer::{BaseConsumer, Consumer as _};
    use rdkafka::{Message as _, Offset, TopicPartitionList};

    let mut config = rdkafka::ClientConfig::new();
    config
        .set("bootstrap.servers", &o.brokers)
        .set("client.id", "rdkafka-bench")
        .set("group.id", "grete-bench-rdkafka")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false");
    if let Some(v) = &o.broker_version {
        if v.starts_with("0.9") {
            config
                .set("api.version.request", "false")
                .set("broker.version.fallback", "0.9.0.1");
        }
    }
    let consumer: BaseConsumer = config.create().expect("rdkafka consumer");
    let metadata = consumer
        .fetch_metadata(Some(&o.topic), Duration::from_secs(10))
        .expect("metadata");
    let topic = metadata
        .topics()
        .iter()
        .find(|t| t.name() == o.topic)
        .expect("the topic");
    let mut assignment = TopicPartitionList::new();
    for p in topic.partitions() {
        assignment
            .add_partition_offset(&o.topic, p.id(), Offset::Beginning)
            .expect("partition");
    }
    let mut checksum = 0u64;
    let m = measure(o.count, || {
        consumer.assign(&assignment).expect("assign");
        let mut read = 0u64;
        let mut failed = 0u64;
        let give_up = std::time::Instant::now() + Duration::from_secs(300);
        while read < o.count && std::time::Instant::now() < give_up {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    read += 1;
                    checksum = checksum.wrapping_add(m.payload().map_or(0, |p| p.len() as u64));
                }
                Some(Err(_)) => failed += 1,
                None => {}
            }
        }
        (read, failed)
    });
    std::hint::black_box(checksum);
    m
}

/// grete on a current-thread tokio runtime (driver, connections and the reader share one
/// thread): every partition from its earliest offset, batches taken with `next_batch` and
/// their records iterated borrowed (no allocation per record), value bytes summed so that
/// the payload is touched, as an application would.
fn run_grete(o: &Options) -> Measure {
    use grete_tokio::{ConsumerConfig, OffsetSpec, SimpleConsumerConfig};

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let client = grete_tokio::KafkaClient::connect(client_config(o))
            .await
            .expect("connect");
        let topic = client.topic(&o.topic).await.expect("topic");
        let partitions: Vec<(i32, Option<OffsetSpec>)> = topic
            .partitions()
            .iter()
            .map(|p| (p.id, Some(OffsetSpec::Earliest)))
            .collect();
        let config = SimpleConsumerConfig {
            consumer: ConsumerConfig {
                queued_max_messages: 100_000,
                ..ConsumerConfig::default()
            },
            consumer_timeout_ms: Some(30_000),
            ..SimpleConsumerConfig::default()
        };
        let mut checksum = 0u64;
        let (user0, sys0) = harness::rusage();
        #[allow(clippy::disallowed_methods)]
        let start = std::time::Instant::now();
        let mut consumer = topic
            .simple_consumer_for(&partitions, config)
            .await
            .expect("consumer");
        let (mut read, mut failed) = (0u64, 0u64);
        while read < o.count {
            let Some(batch) = consumer.next_batch().await else {
                break;
            };
            for r in batch.records() {
                match r {
                    Ok(r) => {
                        read += 1;
                        checksum = checksum.wrapping_add(r.value.map_or(0, |v| v.len() as u64));
                    }
                    Err(_) => failed += 1,
                }
            }
        }
        let wall = start.elapsed();
        let (user1, sys1) = harness::rusage();
        std::hint::black_box(checksum);
        drop(consumer);
        client.close().await;
        Measure {
            records: o.count,
            delivered: read,
            failed,
            wall,
            user: user1.saturating_sub(user0),
            sys: sys1.saturating_sub(sys0),
        }
    })
}

/// Writes `--count` records with grete's producer (tokio), for the clients to read.
fn fill(o: &Options) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let client = grete_tokio::KafkaClient::connect(client_config(o))
            .await
            .expect("connect");
        if let Some(partitions) = o.create_partitions {
            let topic = grete::client::NewTopic {
                name: o.topic.clone(),
                num_partitions: partitions,
                replication_factor: 1,
                configs: Vec::new(),
            };
            let results = client
                .create_topics(vec![topic], Duration::from_secs(10))
                .await
                .expect("create_topics");
            for r in results {
                if let Some(e) = r.error {
                    println!("topic {}: {e}", r.name);
                }
            }
        }
        let topic = client.topic(&o.topic).await.expect("topic");
        let config = ProducerConfig {
            linger: Duration::from_millis(5),
            ..ProducerConfig::default()
        };
        let producer = topic.producer(config).expect("producer");
        let value: Vec<u8> = (0..o.size).map(|i| b'a' + (i % 26) as u8).collect();
        for _ in 0..o.count {
            producer
                .produce(grete_tokio::Record::value(&value))
                .await
                .expect("produce");
        }
        let failed = producer.close(Duration::from_secs(60)).await;
        assert_eq!(failed, 0, "records failed while filling the topic");
        println!(
            "wrote {} records of {} bytes to {} ({} partitions)",
            o.count,
            o.size,
            o.topic,
            topic.partitions().len()
        );
        client.close().await;
    });
}

fn main() {
    let o = Options::parse();
    match o.client.as_deref() {
        Some("rdkafka") => println!("{}", run_rdkafka(&o).line()),
        Some("grete") => println!("{}", run_grete(&o).line()),
        Some(other) => {
            eprintln!("unknown client {other}");
            std::process::exit(2)
        }
        None => {
            if o.fill {
                fill(&o);
            }
            let exe = std::env::current_exe().expect("current_exe");
            println!(
                "{} records from the beginning of {} on {}",
                o.count, o.topic, o.brokers
            );
            let all = harness::run_clients(&o.clients, o.runs, o.size, |client| {
                Command::new(&exe).args(o.child_args(client)).output()
            });
            harness::print_medians(&all, o.runs, o.size);
        }
    }
}
