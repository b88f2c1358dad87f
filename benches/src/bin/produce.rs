//! Producer benchmark: grete (tokio transport) against librdkafka (the `rdkafka` crate), on
//! the same broker in one run, plus grete's core alone against its mock cluster.
//!
//! ```text
//! cargo run --release --manifest-path benches/Cargo.toml --bin produce -- \
//!     --brokers 127.0.0.1:19092 --topic bench4 --count 1000000 --size 100 --acks 1 --linger-ms 5
//! ```
//!
//! The parent process runs each client in a child process of its own (it re-executes
//! itself with `--client grete|rdkafka|core`), so that each client's CPU time is its own:
//! the child measures wall time and its whole process's CPU time (`getrusage`, user +
//! system, every thread: the application's and the client's) from its first record to the
//! last outcome, connecting and creating the producer excluded. Each child prints one
//! `result` line that the parent collects; with `--runs N` the clients alternate N times
//! and the parent prints each run and the medians.

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use grete::client::{Event, ProduceError, ProduceRecord};
use grete::config::{BrokerAddress, BrokerVersion, ClientConfig};
use grete::mock::sim::{Sim, SimConfig};
use grete::mock::MockConfig;
use grete::producer::{Acks, ProducerConfig};
use grete::protocol::compression::Compression;

#[path = "../harness.rs"]
mod harness;
use harness::{measure, rusage, thread_cpu, Flags, Measure};

#[derive(Debug, Clone)]
struct Options {
    brokers: String,
    topic: String,
    count: u64,
    size: usize,
    acks: i16,
    linger_ms: u64,
    compression: String,
    runs: usize,
    clients: Vec<String>,
    broker_version: Option<String>,
    create_partitions: Option<i32>,
    delete_after: bool,
    client: Option<String>,
}

const USAGE: &str = "\
usage: produce --brokers HOSTS --topic TOPIC [options]

  --count N            records per client (default 1000000)
  --size BYTES         bytes per value, no key (default 100)
  --acks N             0, 1 or -1 (default 1)
  --linger-ms MS       (default 5)
  --compression C      none, gzip, snappy, lz4, zstd (default none)
  --runs N             runs of every client, alternating (default 1)
  --clients LIST       among grete, rdkafka, core (default grete,rdkafka,core)
  --broker-version V   a broker without ApiVersions (0.9.0): rdkafka gets
                       api.version.request=false and broker.version.fallback=0.9.0.1
  --create-partitions N  first create the topic with N partitions (CreateTopics: Kafka
                       0.10.1+ and tansu; on 0.9 use scripts/kafka09 create-topic)
  --delete-after       with --create-partitions: delete the topic at the end (tansu
                       keeps its log in memory)
  --client NAME        (internal) run one client in this process
";

impl Options {
    fn parse() -> Options {
        let mut o = Options {
            brokers: String::new(),
            topic: String::new(),
            count: 1_000_000,
            size: 100,
            acks: 1,
            linger_ms: 5,
            compression: "none".into(),
            runs: 1,
            clients: vec!["grete".into(), "rdkafka".into(), "core".into()],
            broker_version: None,
            create_partitions: None,
            delete_after: false,
            client: None,
        };
        let mut f = Flags::new(USAGE);
        while let Some(flag) = f.next_flag() {
            match flag.as_str() {
                "--brokers" => o.brokers = f.value(&flag),
                "--topic" => o.topic = f.value(&flag),
                "--count" => o.count = f.num(&flag),
                "--size" => o.size = f.num(&flag) as usize,
                "--acks" => {
                    o.acks = match f.value(&flag).as_str() {
                        "0" => 0,
                        "1" => 1,
                        "-1" | "all" => -1,
                        v => f.fail(&format!("--acks {v}: 0, 1 or -1")),
                    }
                }
                "--linger-ms" => o.linger_ms = f.num(&flag),
                "--compression" => o.compression = f.value(&flag),
                "--runs" => o.runs = f.num(&flag) as usize,
                "--clients" => o.clients = f.value(&flag).split(',').map(str::to_owned).collect(),
                "--broker-version" => o.broker_version = Some(f.value(&flag)),
                "--create-partitions" => o.create_partitions = Some(f.num(&flag) as i32),
                "--delete-after" => o.delete_after = true,
                "--client" => o.client = Some(f.value(&flag)),
                other => f.fail(&format!("unknown option {other}")),
            }
        }
        let needs_broker = o
            .client
            .as_ref()
            .map_or(o.clients.iter().any(|c| c != "core"), |c| c != "core");
        if needs_broker && (o.brokers.is_empty() || o.topic.is_empty()) {
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
            "--acks".into(),
            self.acks.to_string(),
            "--linger-ms".into(),
            self.linger_ms.to_string(),
            "--compression".into(),
            self.compression.clone(),
        ];
        if let Some(v) = &self.broker_version {
            a.push("--broker-version".into());
            a.push(v.clone());
        }
        a
    }
}

/// The value every record carries: letters, like text.
fn value(size: usize) -> Vec<u8> {
    (0..size)
        .map(|i| b'a' + ((i * 7 + i / 26) % 26) as u8)
        .collect()
}

fn codec(name: &str) -> Compression {
    Compression::from_name(name).unwrap_or_else(|| {
        eprintln!("unknown codec {name}");
        std::process::exit(2)
    })
}

fn producer_config(o: &Options) -> ProducerConfig {
    ProducerConfig {
        linger: Duration::from_millis(o.linger_ms),
        required_acks: match o.acks {
            0 => Acks::None,
            1 => Acks::Leader,
            _ => Acks::All,
        },
        compression: codec(&o.compression),
        ..ProducerConfig::default()
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

/// grete on tokio: the application on this thread, the driver on one worker thread (as
/// librdkafka has its own threads).
fn run_grete(o: &Options) -> Measure {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let client = grete_tokio::KafkaClient::connect(client_config(o))
            .await
            .expect("connect");
        let topic = client.topic(&o.topic).await.expect("topic");
        let producer = topic.producer(producer_config(o)).expect("producer");
        let value = value(o.size);
        let mut reports = producer.reports();
        let waker = futures_util::task::noop_waker();
        let mut counts = (0u64, 0u64);
        let drain = |reports: &mut grete_tokio::Reports, counts: &mut (u64, u64)| {
            let mut cx = Context::from_waker(&waker);
            while let Poll::Ready(Some(r)) =
                futures_util::Stream::poll_next(std::pin::Pin::new(&mut *reports), &mut cx)
            {
                match r.result {
                    Ok(_) => counts.0 += u64::from(r.count),
                    Err(_) => counts.1 += u64::from(r.count),
                }
            }
        };
        let (user0, sys0) = rusage();
        let start = Instant::now();
        for i in 0..o.count {
            let record = grete_tokio::Record::value(&value);
            // Outcomes are read from the reports (one per batch), not per record, as
            // librdkafka's come through its delivery callback.
            producer.produce(record).await.expect("produce");
            if i % 4096 == 4095 {
                drain(&mut reports, &mut counts);
            }
        }
        producer.flush().await;
        let wall = start.elapsed();
        let (user1, sys1) = rusage();
        drain(&mut reports, &mut counts);
        assert_eq!(producer.lagged(), 0, "reports were dropped unread");
        producer.close(Duration::from_secs(10)).await;
        client.close().await;
        Measure {
            records: o.count,
            delivered: counts.0,
            failed: counts.1,
            wall,
            user: user1.saturating_sub(user0),
            sys: sys1.saturating_sub(sys0),
        }
    })
}

struct Counting {
    delivered: AtomicU64,
    failed: AtomicU64,
}

impl rdkafka::ClientContext for Counting {}

impl rdkafka::producer::ProducerContext for Counting {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &rdkafka::producer::DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.delivered.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// librdkafka through the `rdkafka` crate's `BaseProducer`: delivery callbacks served by
/// `poll` on this thread, librdkafka's own threads for the brokers.
fn run_rdkafka(o: &Options) -> Measure {
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};

    let mut config = rdkafka::ClientConfig::new();
    config
        .set("bootstrap.servers", &o.brokers)
        .set("client.id", "rdkafka-bench")
        .set("linger.ms", o.linger_ms.to_string())
        .set("acks", o.acks.to_string())
        .set("compression.codec", &o.compression);
    if let Some(v) = &o.broker_version {
        if v.starts_with("0.9") {
            config
                .set("api.version.request", "false")
                .set("broker.version.fallback", "0.9.0.1");
        }
    }
    let context = Counting {
        delivered: AtomicU64::new(0),
        failed: AtomicU64::new(0),
    };
    let producer: BaseProducer<Counting> = config
        .create_with_context(context)
        .expect("rdkafka producer");
    // Connect and learn the topic before timing, as grete does.
    producer
        .client()
        .fetch_metadata(Some(&o.topic), Duration::from_secs(10))
        .expect("metadata");
    let value = value(o.size);
    let m = measure(o.count, || {
        for i in 0..o.count {
            let mut record = BaseRecord::<(), [u8]>::to(&o.topic).payload(&value[..]);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        record = r;
                        producer.poll(Duration::from_millis(1));
                    }
                    Err((e, _)) => panic!("rdkafka send: {e}"),
                }
            }
            if i % 1024 == 1023 {
                producer.poll(Duration::ZERO);
            }
        }
        producer.flush(Duration::from_secs(120)).expect("flush");
        let context = producer.context();
        (
            context.delivered.load(Ordering::Relaxed),
            context.failed.load(Ordering::Relaxed),
        )
    });
    drop(producer);
    m
}

/// grete's core alone, on virtual time, against the in-process mock cluster (one broker,
/// a 4-partition topic): the client's work and the mock broker's (decoding each request,
/// appending to its log) both count; no sockets, no threads, no lock.
fn run_core(o: &Options) -> (Measure, Duration) {
    const TOPIC: &str = "bench";
    let mut sim_config = SimConfig::plain(1, Duration::from_micros(100));
    sim_config.max_steps = u64::MAX;
    sim_config.max_time = Duration::from_secs(24 * 3600);
    let mut sim = Sim::new(
        MockConfig::new(1).with_topic(TOPIC, 4, 1),
        sim_config,
        |c| c.broker_version = BrokerVersion::parse("2.8").expect("version"),
    )
    .expect("sim");
    let now = sim.now();
    let op = sim.client.topic_metadata(now, vec![TOPIC.into()], false);
    sim.wait_op(op).expect("metadata").expect("metadata");
    let id = sim
        .client
        .add_producer(now, TOPIC, producer_config(o))
        .expect("producer");
    let value = value(o.size);
    let mut counts = (0u64, 0u64);
    let take = |sim: &mut Sim, counts: &mut (u64, u64)| {
        for e in sim.take_events() {
            if let Event::Delivery(r) = e {
                match r.result {
                    Ok(_) => counts.0 += u64::from(r.count),
                    Err(_) => counts.1 += u64::from(r.count),
                }
            }
        }
    };
    let cpu0 = thread_cpu();
    let m = measure(o.count, || {
        let mut i = 0;
        while i < o.count {
            let now = sim.now();
            let record = ProduceRecord::value(&value, 1_700_000_000_000);
            match sim.client.produce(now, id, &record) {
                Ok((_, wake)) => {
                    i += 1;
                    if wake {
                        sim.client.handle_timeout(now);
                    }
                }
                Err(ProduceError::QueueFull { .. }) => {
                    sim.run_for(Duration::from_millis(1)).expect("sim");
                    take(&mut sim, &mut counts);
                }
                Err(e) => panic!("produce: {e}"),
            }
        }
        let now = sim.now();
        sim.client.flush(now, id);
        sim.client.handle_timeout(now);
        while counts.0 + counts.1 < o.count {
            sim.run_for(Duration::from_millis(1)).expect("sim");
            take(&mut sim, &mut counts);
        }
        counts
    });
    (m, thread_cpu() - cpu0)
}

fn main() {
    let o = Options::parse();
    match o.client.as_deref() {
        Some("grete") => println!("{}", run_grete(&o).line()),
        Some("rdkafka") => println!("{}", run_rdkafka(&o).line()),
        Some("core") => {
            let (m, thread) = run_core(&o);
            println!("{} thread_ns={}", m.line(), thread.as_nanos());
        }
        Some(other) => {
            eprintln!("unknown client {other}");
            std::process::exit(2)
        }
        None => parent(&o),
    }
}

/// Creates the topic (replication 1) when `create` is `Some(partitions)`, else deletes it;
/// an existing topic is fine.
fn create_or_delete_topic(o: &Options, create: Option<i32>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let client = grete_tokio::KafkaClient::connect(client_config(o))
            .await
            .expect("connect");
        let Some(partitions) = create else {
            let results = client
                .delete_topics(vec![o.topic.clone()], Duration::from_secs(10))
                .await
                .expect("delete_topics");
            for r in results {
                match r.error {
                    None => println!("deleted topic {}", r.name),
                    Some(e) => println!("deleting topic {}: {e}", r.name),
                }
            }
            client.close().await;
            return;
        };
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
            match r.error {
                None => println!("created topic {} ({partitions} partitions)", r.name),
                Some(e) => println!("topic {}: {e}", r.name),
            }
        }
        let topic = client.topic(&o.topic).await.expect("topic");
        println!(
            "topic {} has {} partitions",
            o.topic,
            topic.partitions().len()
        );
        client.close().await;
    });
}

fn parent(o: &Options) {
    if o.create_partitions.is_some() {
        create_or_delete_topic(o, o.create_partitions);
    }
    let exe = std::env::current_exe().expect("current_exe");
    println!(
        "{} records of {} bytes, acks {}, linger {} ms, compression {}, topic {} on {}",
        o.count, o.size, o.acks, o.linger_ms, o.compression, o.topic, o.brokers
    );
    let all = harness::run_clients(&o.clients, o.runs, o.size, |client| {
        Command::new(&exe).args(o.child_args(client)).output()
    });
    harness::print_medians(&all, o.runs, o.size);
    if o.create_partitions.is_some() && o.delete_after {
        create_or_delete_topic(o, None);
    }
}
