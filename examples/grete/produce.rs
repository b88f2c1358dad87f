//! `grete produce` (one record per stdin line, like `kcat -P`) and `grete bench produce`
//! (records/s, MB/s and CPU per record), kept apart from `main` so that
//! `tests/cli_produce.rs` can run them in-process.
//!
//! Both run a session body ([`Body`]) with a producer of the chosen transport
//! ([`run_session`]): the bodies are written once against [`Sending`], which the async
//! producers implement by awaiting and the blocking one by blocking (its futures are ready
//! at once). What each record's outcome means for the output ([`Tally`]) does not depend on
//! the transport either.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use grete::client::{DeliveryError, DeliveryReport, ProduceError};
use grete::config::{Bootstrap, BrokerAddress, BrokerVersion, ClientConfig};
use grete::producer::{Acks, Partitioning, ProducerConfig};
use grete::protocol::compression::Compression;
use grete_tokio::{Delivered, Record};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::cli::{CliError, Runtime};

/// Printed on a usage error of `grete produce`.
pub const PRODUCE_USAGE: &str = "\
usage: grete produce -b HOST:PORT[,...] -t TOPIC [options] < lines

Produces one record per line of stdin (the newline is not part of the record), then
prints how many were delivered. Each record that fails is printed on stderr with its
line and partition; the exit status is 1 if any failed.

options:
  -b, --brokers LIST          bootstrap brokers
  -t, --topic NAME            the topic
  -k, --key KEY               this key for every record
  -K, --key-delimiter DELIM   split each line at the first DELIM: key before, value after
                              (a line without DELIM has no key)
  -p, --partition N           this partition for every record (default: the partitioner)
      --max-retries N         retries of a failed batch (default 3)
      --outcomes              print every record's outcome on stdout, as it comes:
                                delivered LINE PARTITION OFFSET
                                failed LINE PARTITION not-written|possibly-written: ERROR
                                refused LINE: ERROR
";

/// Printed on a usage error of `grete bench produce`.
pub const BENCH_USAGE: &str = "\
usage: grete bench produce -b HOST:PORT[,...] -t TOPIC [options]

Produces --count records of --size bytes as fast as the producer takes them, waits for
every outcome, and prints records/s, MB/s (values) and the whole process's CPU time
(user + system) per record. The exit status is 1 if any record failed.

options:
  -b, --brokers LIST          bootstrap brokers
  -t, --topic NAME            the topic
      --count N               records (default 1000000)
      --size BYTES            bytes per value (default 100)
      --partitions-hint       set each record's partition round-robin in the
                              application (no partitioner)
";

/// Printed after either usage: the producer options both commands take.
pub const COMMON_USAGE: &str =
    "  -z, --compression CODEC     none (default), gzip, snappy, lz4 or zstd
      --acks N                0, 1 or all (-1) (default all)
      --partitioner NAME      default (murmur2 of the key, sticky without one),
                              round-robin, sha1, murmur2 or sticky
      --linger-ms MS          how long a batch waits for more records (default 5)
      --max-request-size B    the largest Produce request (default 1000012)
      --runtime NAME          tokio (default), smol or blocking
      --broker-version V      the version of brokers that cannot tell (default 0.9.0)
      --timeout SECS          request timeout (default 10)
  -h, --help                  this text
";

/// What `grete produce` and `grete bench produce` share: where and how to produce.
#[derive(Debug)]
pub struct Target {
    pub config: ClientConfig,
    pub runtime: Runtime,
    pub topic: String,
    pub producer: ProducerConfig,
}

/// The parsed `produce` command.
#[derive(Debug)]
pub struct ProduceOptions {
    pub target: Target,
    pub key: Option<Vec<u8>>,
    pub key_delimiter: Option<Vec<u8>>,
    pub partition: Option<i32>,
    pub outcomes: bool,
}

/// The parsed `bench produce` command.
#[derive(Debug)]
pub struct BenchOptions {
    pub target: Target,
    pub count: u64,
    pub size: usize,
    pub partitions_hint: bool,
}

pub(crate) fn usage(message: impl Into<String>) -> CliError {
    CliError::Usage(message.into())
}

/// The flags both commands take, gathered before the [`Target`] is built.
pub(crate) struct Common {
    brokers: Option<String>,
    /// `-t` in the order given (only `consume` takes several).
    topics: Vec<String>,
    runtime: Runtime,
    broker_version: Option<BrokerVersion>,
    timeout: Duration,
    producer: ProducerConfig,
}

impl Common {
    pub(crate) fn new() -> Common {
        Common {
            brokers: None,
            topics: Vec::new(),
            runtime: Runtime::Tokio,
            broker_version: None,
            timeout: Duration::from_secs(10),
            producer: ProducerConfig::default(),
        }
    }

    /// Takes `flag` if it is a common one (`Ok(false)` if not).
    fn take(
        &mut self,
        flag: &str,
        value: &mut dyn FnMut() -> Result<String, CliError>,
    ) -> Result<bool, CliError> {
        match flag {
            "-b" | "--brokers" => self.brokers = Some(value()?),
            "-t" | "--topic" => self.topics.push(value()?),
            "-z" | "--compression" => self.producer.compression = parse_codec(&value()?)?,
            "--acks" => {
                self.producer.required_acks = match value()?.as_str() {
                    "0" => Acks::None,
                    "1" => Acks::Leader,
                    "all" | "-1" => Acks::All,
                    other => return Err(usage(format!("--acks {other:?}: 0, 1 or all"))),
                }
            }
            "--partitioner" => {
                self.producer.partitioner = match value()?.as_str() {
                    "default" => Partitioning::Default,
                    "round-robin" => Partitioning::RoundRobin,
                    "sha1" => Partitioning::Sha1Hashing,
                    "murmur2" => Partitioning::Murmur2,
                    "sticky" => Partitioning::Sticky,
                    other => return Err(usage(format!("unknown partitioner {other:?}"))),
                }
            }
            "--linger-ms" => {
                self.producer.linger = Duration::from_millis(number(flag, &value()?)?);
            }
            "--max-request-size" => {
                self.producer.max_request_size = number(flag, &value()?)?;
            }
            "--runtime" => {
                self.runtime = match value()?.as_str() {
                    "tokio" => Runtime::Tokio,
                    "smol" => Runtime::Smol,
                    "blocking" => Runtime::Blocking,
                    other => return Err(usage(format!("unknown runtime {other:?}"))),
                }
            }
            "--broker-version" => {
                let v = value()?;
                self.broker_version = Some(
                    BrokerVersion::parse(&v)
                        .map_err(|e| usage(format!("--broker-version {v:?}: {e}")))?,
                );
            }
            "--timeout" => {
                let secs: u64 = number(flag, &value()?)?;
                if secs == 0 {
                    return Err(usage("--timeout: a positive number of seconds"));
                }
                self.timeout = Duration::from_secs(secs);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The target of a one-topic command.
    pub(crate) fn finish(self) -> Result<Target, CliError> {
        if self.topics.len() > 1 {
            return Err(usage("one topic (-t)"));
        }
        self.finish_topics().map(|(target, _)| target)
    }

    /// The target (its `topic` the first `-t`) and every `-t`.
    pub(crate) fn finish_topics(mut self) -> Result<(Target, Vec<String>), CliError> {
        let brokers = self.brokers.ok_or_else(|| usage("give the brokers (-b)"))?;
        let topics = std::mem::take(&mut self.topics);
        let topic = topics
            .first()
            .cloned()
            .ok_or_else(|| usage("give the topic (-t)"))?;
        let bootstrap = Bootstrap::Brokers(
            BrokerAddress::parse(&brokers).map_err(|e| usage(format!("-b {brokers:?}: {e}")))?,
        );
        let defaults = ClientConfig::default();
        let config = ClientConfig {
            client_id: "grete-cli".into(),
            bootstrap,
            broker_version: self.broker_version.unwrap_or(defaults.broker_version),
            request_timeout: self.timeout,
            connect_timeout: self.timeout.min(Duration::from_secs(10)),
            ..defaults
        };
        self.producer
            .validate()
            .map_err(|e| usage(format!("producer settings: {e}")))?;
        let target = Target {
            config,
            runtime: self.runtime,
            topic,
            producer: self.producer,
        };
        Ok((target, topics))
    }
}

pub(crate) fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, CliError> {
    v.parse()
        .map_err(|_| usage(format!("{flag} {v:?}: a non-negative integer")))
}

/// A codec by its Kafka name.
pub fn parse_codec(name: &str) -> Result<Compression, CliError> {
    let codec = Compression::from_name(name).ok_or_else(|| {
        usage(format!(
            "unknown compression codec {name:?}: none, gzip, snappy, lz4 or zstd"
        ))
    })?;
    if !codec.is_enabled() {
        return Err(usage(format!("codec {name:?} is not built in")));
    }
    Ok(codec)
}

/// Splits `args` into flags: `--name=value` or `--name value`; calls `other` for the
/// flags `Common` does not know.
pub(crate) fn parse_flags(
    args: impl IntoIterator<Item = String>,
    common: &mut Common,
    mut other: impl FnMut(&str, &mut dyn FnMut() -> Result<String, CliError>) -> Result<bool, CliError>,
) -> Result<(), CliError> {
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        if flag == "-h" || flag == "--help" {
            return Err(usage(""));
        }
        let mut inline = inline;
        let mut value = || {
            inline
                .take()
                .or_else(|| args.next())
                .ok_or_else(|| usage(format!("{flag} needs a value")))
        };
        if !common.take(&flag, &mut value)? && !other(&flag, &mut value)? {
            return Err(usage(format!("unknown option {flag:?}")));
        }
    }
    Ok(())
}

/// Parses the arguments after `produce`.
pub fn parse_produce(args: impl IntoIterator<Item = String>) -> Result<ProduceOptions, CliError> {
    let mut common = Common::new();
    let mut key = None;
    let mut key_delimiter = None;
    let mut partition = None;
    let mut outcomes = false;
    let mut max_retries = None;
    parse_flags(args, &mut common, |flag, value| {
        match flag {
            "-k" | "--key" => key = Some(value()?.into_bytes()),
            "-K" | "--key-delimiter" => {
                let d = value()?;
                if d.is_empty() {
                    return Err(usage("-K: an empty delimiter"));
                }
                key_delimiter = Some(d.into_bytes());
            }
            "-p" | "--partition" => {
                let v = value()?;
                partition = Some(
                    v.parse::<i32>()
                        .ok()
                        .filter(|p| *p >= 0)
                        .ok_or_else(|| usage(format!("-p {v:?}: a partition id (0 or more)")))?,
                );
            }
            "--outcomes" => outcomes = true,
            "--max-retries" => max_retries = Some(number(flag, &value()?)?),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if key.is_some() && key_delimiter.is_some() {
        return Err(usage("give -k or -K, not both"));
    }
    if let Some(n) = max_retries {
        common.producer.max_retries = n;
    }
    Ok(ProduceOptions {
        target: common.finish()?,
        key,
        key_delimiter,
        partition,
        outcomes,
    })
}

/// Parses the arguments after `bench produce`.
pub fn parse_bench(args: impl IntoIterator<Item = String>) -> Result<BenchOptions, CliError> {
    let mut common = Common::new();
    let mut count = 1_000_000u64;
    let mut size = 100usize;
    let mut partitions_hint = false;
    parse_flags(args, &mut common, |flag, value| {
        match flag {
            "--count" => count = number(flag, &value()?)?,
            "--size" => size = number(flag, &value()?)?,
            "--partitions-hint" => partitions_hint = true,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if count == 0 {
        return Err(usage("--count: at least 1"));
    }
    Ok(BenchOptions {
        target: common.finish()?,
        count,
        size,
        partitions_hint,
    })
}

pub(crate) fn failed(e: impl std::fmt::Display) -> CliError {
    CliError::Failed(e.to_string())
}

/// A producer as the CLI's bodies use it, whatever the transport.
#[allow(async_fn_in_trait)]
pub trait Sending {
    /// What gives a queued record's outcome.
    type Pending;
    /// Queues a record (waiting for room if the queue is full).
    async fn send(&self, record: Record<'_>) -> Result<Self::Pending, ProduceError>;
    /// Queues a record whose outcome comes through the delivery callback only.
    async fn produce(&self, record: Record<'_>) -> Result<(), ProduceError>;
    /// The outcome, if it is known now.
    fn now_or_never(pending: &mut Self::Pending) -> Option<Result<Delivered, DeliveryError>>;
    /// The outcome, waiting for it.
    async fn wait(pending: Self::Pending) -> Result<Delivered, DeliveryError>;
    /// The record's partition.
    fn partition(pending: &Self::Pending) -> i32;
    /// Calls `callback` with every report (one per batch) from now on.
    fn on_delivery(&self, callback: impl Fn(&DeliveryReport) + Send + Sync + 'static);
    /// Sends what lingers and waits for every outcome (and callback).
    async fn flush(&self);
    /// Closes, failing what has no outcome after `timeout`.
    async fn close(self, timeout: Duration) -> u64;
}

impl Sending for grete_async::Producer {
    type Pending = grete_async::DeliveryFuture;
    async fn send(&self, record: Record<'_>) -> Result<Self::Pending, ProduceError> {
        grete_async::Producer::send(self, record).await
    }
    async fn produce(&self, record: Record<'_>) -> Result<(), ProduceError> {
        grete_async::Producer::produce(self, record).await.map(drop)
    }
    fn now_or_never(pending: &mut Self::Pending) -> Option<Result<Delivered, DeliveryError>> {
        pending.now_or_never()
    }
    async fn wait(pending: Self::Pending) -> Result<Delivered, DeliveryError> {
        pending.await
    }
    fn partition(pending: &Self::Pending) -> i32 {
        pending.record_id().partition
    }
    fn on_delivery(&self, callback: impl Fn(&DeliveryReport) + Send + Sync + 'static) {
        grete_async::Producer::on_delivery(self, callback)
    }
    async fn flush(&self) {
        grete_async::Producer::flush(self).await
    }
    async fn close(self, timeout: Duration) -> u64 {
        grete_async::Producer::close(self, timeout).await
    }
}

impl Sending for grete_blocking::Producer {
    type Pending = grete_blocking::DeliveryHandle;
    async fn send(&self, record: Record<'_>) -> Result<Self::Pending, ProduceError> {
        grete_blocking::Producer::send(self, record)
    }
    async fn produce(&self, record: Record<'_>) -> Result<(), ProduceError> {
        grete_blocking::Producer::produce(self, record).map(drop)
    }
    fn now_or_never(pending: &mut Self::Pending) -> Option<Result<Delivered, DeliveryError>> {
        pending.wait_timeout(Duration::ZERO)
    }
    async fn wait(pending: Self::Pending) -> Result<Delivered, DeliveryError> {
        pending.wait()
    }
    fn partition(pending: &Self::Pending) -> i32 {
        pending.record_id().partition
    }
    fn on_delivery(&self, callback: impl Fn(&DeliveryReport) + Send + Sync + 'static) {
        grete_blocking::Producer::on_delivery(self, callback)
    }
    async fn flush(&self) {
        grete_blocking::Producer::flush(self)
    }
    async fn close(self, timeout: Duration) -> u64 {
        grete_blocking::Producer::close(self, timeout)
    }
}

/// What runs with a producer: `produce` or `bench`, written once for every transport.
#[allow(async_fn_in_trait)]
pub trait Body {
    /// What it gives.
    type Output;
    /// Runs with `producer`, for a topic of `partitions` partitions.
    async fn run<P: Sending>(
        self,
        producer: P,
        partitions: usize,
    ) -> Result<Self::Output, CliError>;
}

/// Connects with `target`'s transport, starts a producer for its topic and runs `body` with
/// it and the topic's partition count; closes the client whatever the body returns.
pub fn run_session<B: Body>(target: &Target, body: B) -> Result<B::Output, CliError> {
    match target.runtime {
        Runtime::Tokio => {
            // The driver on a worker thread, the body (which may block reading stdin) on
            // this one.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .map_err(|e| CliError::Failed(format!("tokio runtime: {e}")))?;
            runtime.block_on(async {
                let client = grete_tokio::KafkaClient::connect(target.config.clone())
                    .await
                    .map_err(failed)?;
                session(client, target, body).await
            })
        }
        // smol's global executor runs the driver on its own threads.
        Runtime::Smol => smol::block_on(async {
            let client = grete_smol::KafkaClient::connect(target.config.clone())
                .await
                .map_err(failed)?;
            session(client, target, body).await
        }),
        Runtime::Blocking => {
            let client =
                grete_blocking::KafkaClient::connect(target.config.clone()).map_err(failed)?;
            let result = (|| {
                let topic = client.topic(&target.topic).map_err(failed)?;
                let producer = topic
                    .producer(target.producer.clone())
                    .map_err(|e| CliError::Failed(format!("producer: {e}")))?;
                // Every call of the blocking producer blocks and is ready at once: any
                // executor runs the body.
                smol::block_on(body.run(producer, topic.partitions().len()))
            })();
            client.close();
            result
        }
    }
}

async fn session<R: grete_async::Runtime, B: Body>(
    client: grete_async::KafkaClient<R>,
    target: &Target,
    body: B,
) -> Result<B::Output, CliError> {
    let result = async {
        let topic = client.topic(&target.topic).await.map_err(failed)?;
        let producer = topic
            .producer(target.producer.clone())
            .map_err(|e| CliError::Failed(format!("producer: {e}")))?;
        body.run(producer, topic.partitions().len()).await
    }
    .await;
    client.close().await;
    result
}

/// Counts outcomes and prints each failure (and with `--outcomes` every outcome), whatever
/// the transport.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Print every outcome on `out` (`--outcomes`).
    pub print_outcomes: bool,
    /// Records given to the producer.
    pub records: u64,
    /// Acknowledged (or sent, with acks 0).
    pub delivered: u64,
    /// Refused before being queued.
    pub refused: u64,
    /// Queued, then failed: not written.
    pub failed: u64,
    /// Queued, then failed, possibly written.
    pub possibly_written: u64,
}

impl Tally {
    /// Line `line`'s record was refused by `send`.
    pub fn refused(&mut self, w: &mut Writers<'_>, line: u64, e: &dyn std::fmt::Display) {
        self.refused += 1;
        if self.print_outcomes {
            let _ = writeln!(w.out, "refused {line}: {e}");
        }
        let _ = writeln!(w.err, "line {line}: not produced: {e}");
    }

    /// Line `line`'s record has its outcome.
    pub fn outcome(
        &mut self,
        w: &mut Writers<'_>,
        line: u64,
        partition: i32,
        outcome: Result<Delivered, grete::client::DeliveryError>,
    ) {
        match outcome {
            Ok(d) => {
                self.delivered += 1;
                if self.print_outcomes {
                    let _ = writeln!(w.out, "delivered {line} {} {}", d.partition, d.offset);
                }
            }
            Err(e) => {
                let written = if e.possibly_persisted {
                    self.possibly_written += 1;
                    "possibly-written"
                } else {
                    self.failed += 1;
                    "not-written"
                };
                if self.print_outcomes {
                    let _ = writeln!(w.out, "failed {line} {partition} {written}: {}", e.error);
                }
                let _ = writeln!(w.err, "line {line}: partition {partition}: {e}");
            }
        }
    }

    /// Whether every record was delivered.
    pub fn all_delivered(&self) -> bool {
        self.delivered == self.records
    }

    /// The summary line.
    pub fn summary(&self) -> String {
        format!(
            "{} records: {} delivered, {} refused, {} failed (not written), {} failed (possibly written)",
            self.records, self.delivered, self.refused, self.failed, self.possibly_written
        )
    }
}

/// Where `produce` writes as records settle: outcomes (`--outcomes`) and failures.
pub struct Writers<'a> {
    /// stdout.
    pub out: &'a mut dyn Write,
    /// stderr.
    pub err: &'a mut dyn Write,
}

/// Parses, produces every line of `input` and returns the summary to print; outcomes
/// (with `--outcomes`) go to `out` and failures to `err` as they come. `Err(Failed)` (exit
/// status 1) if any record failed.
pub fn run_produce(
    args: impl IntoIterator<Item = String>,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<String, CliError> {
    let options = parse_produce(args)?;
    let writers = Writers { out, err };
    let tally = run_session(
        &options.target,
        ProduceLines {
            options: &options,
            input,
            w: writers,
        },
    )?;
    let summary = tally.summary();
    if tally.all_delivered() {
        Ok(format!("{summary}\n"))
    } else {
        Err(CliError::Failed(summary))
    }
}

/// At most this many outcomes wait unread before `produce` stops reading stdin to await
/// the oldest (the facade keeps only the last batches' outcomes per partition).
const PENDING_OUTCOMES: usize = 50_000;

/// `produce`'s body: one record per line of `input`.
struct ProduceLines<'a, 'w> {
    options: &'a ProduceOptions,
    input: &'a mut dyn BufRead,
    w: Writers<'w>,
}

impl Body for ProduceLines<'_, '_> {
    type Output = Tally;

    async fn run<P: Sending>(self, producer: P, _: usize) -> Result<Tally, CliError> {
        let ProduceLines {
            options,
            input,
            mut w,
        } = self;
        let tally = produce_lines(&producer, options, input, &mut w).await;
        producer.close(Duration::from_secs(10)).await;
        tally
    }
}

async fn produce_lines<P: Sending>(
    producer: &P,
    options: &ProduceOptions,
    input: &mut dyn BufRead,
    w: &mut Writers<'_>,
) -> Result<Tally, CliError> {
    let mut tally = Tally {
        print_outcomes: options.outcomes,
        ..Tally::default()
    };
    let mut pending: VecDeque<(u64, P::Pending)> = VecDeque::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = input
            .read_until(b'\n', &mut line)
            .map_err(|e| CliError::Failed(format!("reading stdin: {e}")))?;
        if read == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        tally.records += 1;
        let number = tally.records;
        let (key, value) = split_line(&line, options);
        let record = Record {
            key,
            value: Some(value),
            partition: options.partition,
            ..Record::default()
        };
        match producer.send(record).await {
            Ok(future) => pending.push_back((number, future)),
            Err(e) => tally.refused(w, number, &e),
        }
        // Settle what is known without waiting, oldest first.
        while let Some((number, future)) = pending.front_mut() {
            let Some(outcome) = P::now_or_never(future) else {
                break;
            };
            let partition = P::partition(future);
            tally.outcome(w, *number, partition, outcome);
            pending.pop_front();
        }
        if pending.len() >= PENDING_OUTCOMES {
            if let Some((number, future)) = pending.pop_front() {
                let partition = P::partition(&future);
                tally.outcome(w, number, partition, P::wait(future).await);
            }
        }
    }
    producer.flush().await;
    for (number, future) in pending {
        let partition = P::partition(&future);
        tally.outcome(w, number, partition, P::wait(future).await);
    }
    Ok(tally)
}

/// The key and value of `line`: `-k` for every line, or split at `-K`'s delimiter.
pub fn split_line<'a>(line: &'a [u8], options: &'a ProduceOptions) -> (Option<&'a [u8]>, &'a [u8]) {
    if let Some(key) = &options.key {
        return (Some(key), line);
    }
    if let Some(delimiter) = &options.key_delimiter {
        if let Some(at) = line
            .windows(delimiter.len())
            .position(|w| w == delimiter.as_slice())
        {
            return (Some(&line[..at]), &line[at + delimiter.len()..]);
        }
    }
    (None, line)
}

/// The process's CPU time so far (user + system, every thread).
pub fn process_cpu() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// What `bench produce` measured.
#[derive(Debug, Clone, Copy)]
pub struct BenchResult {
    pub records: u64,
    pub value_bytes: u64,
    pub elapsed: Duration,
    pub cpu: Duration,
    pub delivered: u64,
    pub failed: u64,
    /// Reports dropped unread (their records are counted in neither).
    pub lagged: u64,
}

impl BenchResult {
    /// The text printed.
    pub fn render(&self) -> String {
        let secs = self.elapsed.as_secs_f64();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} records of {} bytes in {:.3} s: {:.0} records/s, {:.1} MB/s",
            self.records,
            self.value_bytes / self.records.max(1),
            secs,
            self.records as f64 / secs,
            self.value_bytes as f64 / secs / 1e6
        );
        let _ = writeln!(
            out,
            "CPU (process, user+sys) {:.3} s: {:.3} us per record",
            self.cpu.as_secs_f64(),
            self.cpu.as_secs_f64() * 1e6 / self.records as f64
        );
        let _ = writeln!(
            out,
            "delivered {}, failed {}{}",
            self.delivered,
            self.failed,
            if self.lagged > 0 {
                format!(", {} reports unread (lagged)", self.lagged)
            } else {
                String::new()
            }
        );
        out
    }
}

/// Parses and runs `bench produce`; `Err(Failed)` if any record failed.
pub fn run_bench(args: impl IntoIterator<Item = String>) -> Result<String, CliError> {
    let options = parse_bench(args)?;
    let result = run_session(&options.target, Bench { options: &options })?;
    let text = result.render();
    if result.delivered == result.records {
        Ok(text)
    } else {
        Err(CliError::Failed(text))
    }
}

/// `bench produce`'s body.
struct Bench<'a> {
    options: &'a BenchOptions,
}

impl Body for Bench<'_> {
    type Output = BenchResult;

    async fn run<P: Sending>(
        self,
        producer: P,
        partitions: usize,
    ) -> Result<BenchResult, CliError> {
        let options = self.options;
        // Letters, so that compression has something like text to work on.
        let value: Vec<u8> = (0..options.size)
            .map(|i| b'a' + ((i * 7 + i / 26) % 26) as u8)
            .collect();
        let partitions = partitions.max(1) as u64;
        // Outcomes through the delivery callback (one call per batch), as librdkafka's
        // delivery reports: no per-record future.
        let delivered = Arc::new(AtomicU64::new(0));
        let failed_count = Arc::new(AtomicU64::new(0));
        let (d, f) = (delivered.clone(), failed_count.clone());
        producer.on_delivery(move |r| {
            let counter = if r.result.is_ok() { &d } else { &f };
            counter.fetch_add(u64::from(r.count), Ordering::Relaxed);
        });
        let cpu_start = process_cpu();
        // A tool may read the clock (clippy.toml forbids it in the core).
        #[allow(clippy::disallowed_methods)]
        let start = Instant::now();
        for i in 0..options.count {
            let record = Record {
                value: Some(&value),
                partition: options.partitions_hint.then(|| (i % partitions) as i32),
                ..Record::default()
            };
            producer.produce(record).await.map_err(failed)?;
        }
        // Returns once every outcome is known and its callback ran.
        producer.flush().await;
        let elapsed = start.elapsed();
        let cpu = process_cpu().saturating_sub(cpu_start);
        producer.close(Duration::from_secs(10)).await;
        Ok(BenchResult {
            records: options.count,
            value_bytes: options.count * options.size as u64,
            elapsed,
            cpu,
            delivered: delivered.load(Ordering::Relaxed),
            failed: failed_count.load(Ordering::Relaxed),
            lagged: 0,
        })
    }
}
