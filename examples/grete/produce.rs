//! `grete produce` (one record per stdin line, like `kcat -P`) and `grete bench produce`
//! (records/s, MB/s and CPU per record), kept apart from `main` so that
//! `tests/cli_produce.rs` can run them in-process.
//!
//! Both run a session body on the chosen async runtime ([`run_session`]); what each
//! record's outcome means for the output ([`Tally`]) does not depend on the runtime, so a
//! blocking transport only needs its own short loop.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::future::Future;
use std::io::{BufRead, Write};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::task::noop_waker;
use futures_util::{FutureExt as _, Stream};
use grete::config::{Bootstrap, BrokerAddress, BrokerVersion, ClientConfig};
use grete::producer::{Acks, Partitioning, ProducerConfig};
use grete::protocol::compression::Compression;
use grete_tokio::{Delivered, DeliveryFuture, Producer, Record};

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
      --runtime NAME          tokio (default) or smol
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

fn usage(message: impl Into<String>) -> CliError {
    CliError::Usage(message.into())
}

/// The flags both commands take, gathered before the [`Target`] is built.
struct Common {
    brokers: Option<String>,
    topic: Option<String>,
    runtime: Runtime,
    broker_version: Option<BrokerVersion>,
    timeout: Duration,
    producer: ProducerConfig,
}

impl Common {
    fn new() -> Common {
        Common {
            brokers: None,
            topic: None,
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
            "-t" | "--topic" => self.topic = Some(value()?),
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
                    "blocking" => {
                        return Err(usage(
                            "grete produce runs on tokio or smol (the blocking transport's \
                             producer is used from Rust: grete_blocking::Topic::producer)",
                        ))
                    }
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

    fn finish(self) -> Result<Target, CliError> {
        let brokers = self.brokers.ok_or_else(|| usage("give the brokers (-b)"))?;
        let topic = self.topic.ok_or_else(|| usage("give the topic (-t)"))?;
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
        Ok(Target {
            config,
            runtime: self.runtime,
            topic,
            producer: self.producer,
        })
    }
}

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, CliError> {
    v.parse()
        .map_err(|_| usage(format!("{flag} {v:?}: a non-negative integer")))
}

/// A codec by its Kafka name.
pub fn parse_codec(name: &str) -> Result<Compression, CliError> {
    let codec = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ]
    .into_iter()
    .find(|c| c.name() == name)
    .ok_or_else(|| {
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
fn parse_flags(
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

fn failed(e: impl std::fmt::Display) -> CliError {
    CliError::Failed(e.to_string())
}

/// Connects with `target`'s runtime, starts a producer for its topic and runs `body` with
/// it and the topic's partition count; closes the client whatever the body returns.
pub fn run_session<T, F, Fut>(target: &Target, body: F) -> Result<T, CliError>
where
    F: FnOnce(Producer, usize) -> Fut,
    Fut: Future<Output = Result<T, CliError>>,
{
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
        Runtime::Blocking => Err(usage("grete produce runs on tokio or smol")),
    }
}

async fn session<R: grete_async::Runtime, T, F, Fut>(
    client: grete_async::KafkaClient<R>,
    target: &Target,
    body: F,
) -> Result<T, CliError>
where
    F: FnOnce(Producer, usize) -> Fut,
    Fut: Future<Output = Result<T, CliError>>,
{
    let result = async {
        let topic = client.topic(&target.topic).await.map_err(failed)?;
        let producer = topic
            .producer(target.producer.clone())
            .map_err(|e| CliError::Failed(format!("producer: {e}")))?;
        body(producer, topic.partitions().len()).await
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
    let mut writers = Writers { out, err };
    let tally = run_session(&options.target, |producer, _| {
        produce_lines(producer, &options, input, &mut writers)
    })?;
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

async fn produce_lines(
    producer: Producer,
    options: &ProduceOptions,
    input: &mut dyn BufRead,
    w: &mut Writers<'_>,
) -> Result<Tally, CliError> {
    let mut tally = Tally {
        print_outcomes: options.outcomes,
        ..Tally::default()
    };
    let mut pending: VecDeque<(u64, DeliveryFuture)> = VecDeque::new();
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
            let Some(outcome) = future.now_or_never() else {
                break;
            };
            let partition = future.record_id().partition;
            tally.outcome(w, *number, partition, outcome);
            pending.pop_front();
        }
        if pending.len() >= PENDING_OUTCOMES {
            if let Some((number, future)) = pending.pop_front() {
                let partition = future.record_id().partition;
                tally.outcome(w, number, partition, future.await);
            }
        }
    }
    producer.flush().await;
    for (number, future) in pending {
        let partition = future.record_id().partition;
        tally.outcome(w, number, partition, future.await);
    }
    producer.close(Duration::from_secs(10)).await;
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
    let result = run_session(&options.target, |producer, partitions| {
        bench(producer, partitions, &options)
    })?;
    let text = result.render();
    if result.delivered == result.records {
        Ok(text)
    } else {
        Err(CliError::Failed(text))
    }
}

/// Reads every report available now; adds to (delivered, failed).
fn drain_reports(reports: &mut grete_tokio::Reports, counts: &mut (u64, u64)) {
    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);
    while let Poll::Ready(Some(report)) = Pin::new(&mut *reports).poll_next(&mut cx) {
        match report.result {
            Ok(_) => counts.0 += u64::from(report.count),
            Err(_) => counts.1 += u64::from(report.count),
        }
    }
}

async fn bench(
    producer: Producer,
    partitions: usize,
    options: &BenchOptions,
) -> Result<BenchResult, CliError> {
    // Letters, so that compression has something like text to work on.
    let value: Vec<u8> = (0..options.size)
        .map(|i| b'a' + ((i * 7 + i / 26) % 26) as u8)
        .collect();
    let partitions = partitions.max(1) as u64;
    let mut reports = producer.reports();
    let mut counts = (0u64, 0u64);
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
        // The outcome is read from the reports, not from a per-record future.
        producer.produce(record).await.map_err(failed)?;
        if i % 4096 == 4095 {
            drain_reports(&mut reports, &mut counts);
        }
    }
    producer.flush().await;
    let elapsed = start.elapsed();
    let cpu = process_cpu().saturating_sub(cpu_start);
    drain_reports(&mut reports, &mut counts);
    let lagged = producer.lagged();
    producer.close(Duration::from_secs(10)).await;
    Ok(BenchResult {
        records: options.count,
        value_bytes: options.count * options.size as u64,
        elapsed,
        cpu,
        delivered: counts.0,
        failed: counts.1,
        lagged,
    })
}
