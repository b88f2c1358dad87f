//! `grete consume` (like `kcat -C`: one value per line by default, kcat's `-f` formats)
//! and `grete bench consume` (records/s, MB/s and CPU per record), kept apart from `main`
//! so that `tests/cli_consume.rs` can run them in-process.
//!
//! Both run a session body ([`ConsumeBody`]) with a consumer of the chosen transport
//! ([`run_consume_session`]): the bodies are written once against [`Reading`], which the
//! async consumers implement by awaiting and the blocking one by blocking.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use grete::consumer::{ConsumerConfig, FetchedBatch, OffsetSpec};
use grete::error::Error;
use grete_tokio::{Message, SimpleConsumerConfig};

use crate::cli::{CliError, Runtime};
use crate::produce::{failed, number, parse_flags, process_cpu, usage, Common, Target};

/// Printed on a usage error of `grete consume`.
pub const CONSUME_USAGE: &str = "\
usage: grete consume -b HOST:PORT[,...] -t TOPIC [-t TOPIC ...] [options]

Prints the topics' records, one value per line by default (like kcat -C).

options:
  -b, --brokers LIST          bootstrap brokers
  -t, --topic NAME            a topic (repeatable: one consumer reads them all)
  -o, --offset WHERE          where each partition starts: beginning (default), end,
                              OFFSET, -N (N before the end) or @TIMESTAMP_MS (the first
                              record at or after it; brokers 0.10.1+)
  -c, --count N               stop after N records
  -e, --exit                  stop at the end of the partitions (as they were at the start)
  -p, --partition N           only this partition (of the one topic)
  -f, --format FORMAT         kcat-like: %t topic, %p partition, %o offset, %k key,
                              %s value, %T timestamp (ms), %h headers (k=v,...), %% and
                              the escapes \\n \\t \\\\ (default: %s\\n)
      --group G               start where consumer group G committed (else at -o)
      --commit                commit the positions to --group when done
";

/// Printed on a usage error of `grete bench consume`.
pub const BENCH_CONSUME_USAGE: &str = "\
usage: grete bench consume -b HOST:PORT[,...] -t TOPIC [options]

Reads --count records from the beginning of every partition with the batch API and
prints records/s, MB/s (values) and the whole process's CPU time (user + system) per
record.

options:
  -b, --brokers LIST          bootstrap brokers
  -t, --topic NAME            the topic
      --count N               records (default 1000000)
";

/// Printed after either usage.
pub const CONSUME_COMMON_USAGE: &str =
    "      --runtime NAME          tokio (default), smol or blocking
      --broker-version V      the version of brokers that cannot tell (default 0.9.0)
      --timeout SECS          request timeout (default 10)
  -h, --help                  this text
";

/// Where partitions start (`-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Beginning,
    End,
    Offset(i64),
    /// N records before the end.
    Tail(i64),
    Timestamp(i64),
}

/// One piece of a `-f` format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(Vec<u8>),
    Topic,
    Partition,
    Offset,
    Key,
    Value,
    Timestamp,
    Headers,
}

/// The parsed `consume` command.
#[derive(Debug)]
pub struct ConsumeOptions {
    pub target: Target,
    /// Every `-t`, in order (`target.topic` is the first).
    pub topics: Vec<String>,
    pub start: Start,
    pub count: Option<u64>,
    pub exit_at_end: bool,
    pub partition: Option<i32>,
    pub format: Vec<Piece>,
    pub group: Option<String>,
    pub commit: bool,
}

/// Parses a `-f` format.
pub fn parse_format(format: &str) -> Result<Vec<Piece>, CliError> {
    let mut pieces = Vec::new();
    let mut text = Vec::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        let piece = match c {
            '%' => match chars.next() {
                Some('t') => Piece::Topic,
                Some('p') => Piece::Partition,
                Some('o') => Piece::Offset,
                Some('k') => Piece::Key,
                Some('s') => Piece::Value,
                Some('T') => Piece::Timestamp,
                Some('h') => Piece::Headers,
                Some('%') => {
                    text.push(b'%');
                    continue;
                }
                other => {
                    return Err(usage(format!(
                        "-f: unknown %{} (use %t %p %o %k %s %T %h)",
                        other.map(String::from).unwrap_or_default()
                    )))
                }
            },
            '\\' => {
                match chars.next() {
                    Some('n') => text.push(b'\n'),
                    Some('t') => text.push(b'\t'),
                    Some('\\') => text.push(b'\\'),
                    other => {
                        return Err(usage(format!(
                            "-f: unknown escape \\{}",
                            other.map(String::from).unwrap_or_default()
                        )))
                    }
                }
                continue;
            }
            c => {
                let mut buf = [0; 4];
                text.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                continue;
            }
        };
        if !text.is_empty() {
            pieces.push(Piece::Text(std::mem::take(&mut text)));
        }
        pieces.push(piece);
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// Writes `m` as `format` says.
pub fn render(out: &mut impl Write, format: &[Piece], m: &Message) -> std::io::Result<()> {
    for piece in format {
        match piece {
            Piece::Text(t) => out.write_all(t)?,
            Piece::Topic => out.write_all(m.topic.as_bytes())?,
            Piece::Partition => write!(out, "{}", m.partition)?,
            Piece::Offset => write!(out, "{}", m.offset)?,
            Piece::Key => out.write_all(m.key.as_deref().unwrap_or_default())?,
            Piece::Value => out.write_all(m.value.as_deref().unwrap_or_default())?,
            Piece::Timestamp => write!(out, "{}", m.timestamp)?,
            Piece::Headers => {
                for (i, h) in m.headers.iter().enumerate() {
                    if i > 0 {
                        out.write_all(b",")?;
                    }
                    out.write_all(h.key.as_bytes())?;
                    out.write_all(b"=")?;
                    out.write_all(h.value.as_deref().unwrap_or_default())?;
                }
            }
        }
    }
    Ok(())
}

fn parse_start(v: &str) -> Result<Start, CliError> {
    let bad = || {
        usage(format!(
            "-o {v:?}: beginning, end, OFFSET, -N or @TIMESTAMP_MS"
        ))
    };
    Ok(match v {
        "beginning" => Start::Beginning,
        "end" => Start::End,
        _ if v.starts_with('@') => Start::Timestamp(v[1..].parse().map_err(|_| bad())?),
        _ if v.starts_with('-') => {
            let n: i64 = v[1..].parse().map_err(|_| bad())?;
            if n <= 0 {
                return Err(bad());
            }
            Start::Tail(n)
        }
        _ => Start::Offset(v.parse::<i64>().ok().filter(|o| *o >= 0).ok_or_else(bad)?),
    })
}

/// Parses the arguments after `consume`.
pub fn parse_consume(args: impl IntoIterator<Item = String>) -> Result<ConsumeOptions, CliError> {
    let mut common = Common::new();
    let mut start = Start::Beginning;
    let mut count = None;
    let mut exit_at_end = false;
    let mut partition = None;
    let mut format = "%s\\n".to_owned();
    let mut group = None;
    let mut commit = false;
    parse_flags(args, &mut common, |flag, value| {
        match flag {
            "-o" | "--offset" => start = parse_start(&value()?)?,
            "-c" | "--count" => count = Some(number(flag, &value()?)?),
            "-e" | "--exit" => exit_at_end = true,
            "-p" | "--partition" => {
                let v = value()?;
                partition = Some(
                    v.parse::<i32>()
                        .ok()
                        .filter(|p| *p >= 0)
                        .ok_or_else(|| usage(format!("-p {v:?}: a partition id (0 or more)")))?,
                );
            }
            "-f" | "--format" => format = value()?,
            "--group" => group = Some(value()?),
            "--commit" => commit = true,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if commit && group.is_none() {
        return Err(usage("--commit needs --group"));
    }
    let (target, topics) = common.finish_topics()?;
    if partition.is_some() && topics.len() > 1 {
        return Err(usage("-p needs a single topic (-t)"));
    }
    for (i, t) in topics.iter().enumerate() {
        if topics[..i].contains(t) {
            return Err(usage(format!("-t {t:?} given twice")));
        }
    }
    Ok(ConsumeOptions {
        target,
        topics,
        start,
        count,
        exit_at_end,
        partition,
        format: parse_format(&format)?,
        group,
        commit,
    })
}

/// A consumer as the CLI's bodies use it, whatever the transport.
#[allow(async_fn_in_trait)]
pub trait Reading {
    /// The next message (`None`: the consumer's timeout passed, or the client closed).
    async fn message(&mut self) -> Option<Result<Message, Error>>;
    /// The next batch (`None` as for `message`).
    async fn batch(&mut self) -> Option<FetchedBatch>;
    /// A partition's position (-1: not known yet).
    fn position(&self, topic: &str, partition: i32) -> i64;
}

impl Reading for grete_async::SimpleConsumer {
    async fn message(&mut self) -> Option<Result<Message, Error>> {
        self.next_message().await
    }
    async fn batch(&mut self) -> Option<FetchedBatch> {
        self.next_batch().await
    }
    fn position(&self, topic: &str, partition: i32) -> i64 {
        self.partition((topic, partition))
            .map_or(-1, |p| p.position)
    }
}

impl Reading for grete_blocking::SimpleConsumer {
    async fn message(&mut self) -> Option<Result<Message, Error>> {
        self.next_message()
    }
    async fn batch(&mut self) -> Option<FetchedBatch> {
        self.next_batch()
    }
    fn position(&self, topic: &str, partition: i32) -> i64 {
        self.partition((topic, partition))
            .map_or(-1, |p| p.position)
    }
}

/// Each read partition's end (latest offset) when the session started.
pub type Ends = BTreeMap<(Arc<str>, i32), i64>;

/// What runs with a consumer: `consume` or `bench consume`, written once for every
/// transport. `ends` holds each partition's end (latest offset) when the session started.
#[allow(async_fn_in_trait)]
pub trait ConsumeBody {
    /// What it gives.
    type Output;
    /// Runs with `consumer`.
    async fn run<C: Reading>(self, consumer: &mut C, ends: &Ends)
        -> Result<Self::Output, CliError>;
}

/// How a session starts its consumer.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The topics, each once.
    pub topics: Vec<String>,
    pub partition: Option<i32>,
    pub start: Start,
    pub config: SimpleConsumerConfig,
}

/// Each partition's start from the plan and the partitions' earliest and latest offsets.
fn starts(
    plan: &Plan,
    partitions: &[i32],
    earliest: &BTreeMap<i32, i64>,
    latest: &BTreeMap<i32, i64>,
) -> Result<Vec<(i32, Option<OffsetSpec>)>, CliError> {
    let chosen: Vec<i32> = match plan.partition {
        Some(p) if partitions.contains(&p) => vec![p],
        Some(p) => return Err(failed(format!("the topic has no partition {p}"))),
        None => partitions.to_vec(),
    };
    let spec = |p: i32| match plan.start {
        Start::Beginning => OffsetSpec::Earliest,
        Start::End => OffsetSpec::Latest,
        Start::Offset(o) => OffsetSpec::Offset(o),
        Start::Timestamp(t) => OffsetSpec::Timestamp(t),
        Start::Tail(n) => {
            let (first, end) = (earliest.get(&p).copied(), latest.get(&p).copied());
            OffsetSpec::Offset((end.unwrap_or(0) - n).max(first.unwrap_or(0)).max(0))
        }
    };
    // With a group, a committed offset wins over -o (the start is the fallback).
    let grouped = plan.config.consumer_group.is_some();
    Ok(chosen
        .into_iter()
        .map(|p| (p, (!grouped).then(|| spec(p))))
        .collect())
}

fn offsets(
    list: Result<Vec<grete::client::PartitionOffset>, Error>,
) -> Result<BTreeMap<i32, i64>, CliError> {
    list.map_err(failed)?
        .into_iter()
        .map(|o| o.result.map(|r| (o.partition, r)).map_err(failed))
        .collect()
}

/// The consumer configuration a session uses when grouped: `-o` for partitions without a
/// committed offset.
fn fallback(plan: &Plan, config: &mut SimpleConsumerConfig) {
    config.start = match plan.start {
        Start::End => OffsetSpec::Latest,
        Start::Offset(o) => OffsetSpec::Offset(o),
        Start::Timestamp(t) => OffsetSpec::Timestamp(t),
        Start::Beginning | Start::Tail(_) => OffsetSpec::Earliest,
    };
}

/// Connects with `target`'s transport, starts a consumer as `plan` says and runs `body`
/// with it; closes the consumer (committing if configured) and the client whatever the
/// body returns.
pub fn run_consume_session<B: ConsumeBody>(
    target: &Target,
    plan: &Plan,
    body: B,
) -> Result<B::Output, CliError> {
    match target.runtime {
        Runtime::Tokio => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .map_err(|e| CliError::Failed(format!("tokio runtime: {e}")))?;
            runtime.block_on(async {
                let client = grete_tokio::KafkaClient::connect(target.config.clone())
                    .await
                    .map_err(failed)?;
                async_session(client, plan, body).await
            })
        }
        Runtime::Smol => smol::block_on(async {
            let client = grete_smol::KafkaClient::connect(target.config.clone())
                .await
                .map_err(failed)?;
            async_session(client, plan, body).await
        }),
        Runtime::Blocking => {
            let client =
                grete_blocking::KafkaClient::connect(target.config.clone()).map_err(failed)?;
            let result = (|| {
                let mut chosen = Vec::with_capacity(plan.topics.len());
                let mut ends = Ends::new();
                for name in &plan.topics {
                    let topic = client.topic(name).map_err(failed)?;
                    let ids: Vec<i32> = topic.partitions().iter().map(|p| p.id).collect();
                    let earliest = offsets(topic.earliest_offsets())?;
                    let latest = offsets(topic.latest_offsets())?;
                    chosen.push(choose(plan, name, &ids, &earliest, &latest, &mut ends)?);
                }
                let mut config = plan.config.clone();
                fallback(plan, &mut config);
                let mut consumer = client.simple_consumer_for(chosen, config).map_err(failed)?;
                // Every call of the blocking consumer blocks: any executor runs the body.
                let result = smol::block_on(body.run(&mut consumer, &ends));
                let closed = consumer.close(Duration::from_secs(10)).map_err(failed);
                result.and_then(|r| closed.map(|()| r))
            })();
            client.close();
            result
        }
    }
}

/// A topic with the partitions a session reads, each with its start (`None`: the group's
/// committed offset, else the consumer's `start`).
type TopicStart = (String, Vec<(i32, Option<OffsetSpec>)>);

/// Topic `name`'s partitions the plan reads, each with its start, and their ends.
fn choose(
    plan: &Plan,
    name: &str,
    ids: &[i32],
    earliest: &BTreeMap<i32, i64>,
    latest: &BTreeMap<i32, i64>,
    ends: &mut Ends,
) -> Result<TopicStart, CliError> {
    let parts = starts(plan, ids, earliest, latest)?;
    let topic: Arc<str> = Arc::from(name);
    for (p, _) in &parts {
        ends.insert((topic.clone(), *p), latest.get(p).copied().unwrap_or(0));
    }
    Ok((name.to_owned(), parts))
}

async fn async_session<R: grete_async::Runtime, B: ConsumeBody>(
    client: grete_async::KafkaClient<R>,
    plan: &Plan,
    body: B,
) -> Result<B::Output, CliError> {
    let result = async {
        let mut chosen = Vec::with_capacity(plan.topics.len());
        let mut ends = Ends::new();
        for name in &plan.topics {
            let topic = client.topic(name).await.map_err(failed)?;
            let ids: Vec<i32> = topic.partitions().iter().map(|p| p.id).collect();
            let earliest = offsets(topic.earliest_offsets().await)?;
            let latest = offsets(topic.latest_offsets().await)?;
            chosen.push(choose(plan, name, &ids, &earliest, &latest, &mut ends)?);
        }
        let mut config = plan.config.clone();
        fallback(plan, &mut config);
        let mut consumer = (client.simple_consumer_for(chosen, config).await).map_err(failed)?;
        let result = body.run(&mut consumer, &ends).await;
        let closed = consumer
            .close(Duration::from_secs(10))
            .await
            .map_err(failed);
        result.and_then(|r| closed.map(|()| r))
    }
    .await;
    client.close().await;
    result
}

/// How often `-e` looks at the partitions' positions while no record comes.
const END_CHECK_MS: u64 = 200;

/// Parses and runs `consume`, writing records to `out`; returns the summary for stderr.
pub fn run_consume(
    args: impl IntoIterator<Item = String>,
    out: &mut dyn Write,
) -> Result<String, CliError> {
    let options = parse_consume(args)?;
    let plan = Plan {
        topics: options.topics.clone(),
        partition: options.partition,
        start: options.start,
        config: SimpleConsumerConfig {
            consumer_group: options.group.clone(),
            commit_on_close: options.commit,
            consumer_timeout_ms: options.exit_at_end.then_some(END_CHECK_MS),
            ..SimpleConsumerConfig::default()
        },
    };
    let body = Consume {
        options: &options,
        out,
    };
    let n = run_consume_session(&options.target, &plan, body)?;
    Ok(format!("{n} records\n"))
}

/// `consume`'s body.
struct Consume<'a> {
    options: &'a ConsumeOptions,
    out: &'a mut dyn Write,
}

impl ConsumeBody for Consume<'_> {
    type Output = u64;

    async fn run<C: Reading>(self, consumer: &mut C, ends: &Ends) -> Result<u64, CliError> {
        let o = self.options;
        let mut out = std::io::BufWriter::new(self.out);
        let write_failed = |e: std::io::Error| failed(format!("writing: {e}"));
        // Partitions not at their end yet (-e).
        let mut left: Ends = ends.clone();
        let mut n = 0u64;
        if o.count == Some(0) {
            return Ok(0);
        }
        loop {
            match consumer.message().await {
                Some(Ok(m)) => {
                    render(&mut out, &o.format, &m).map_err(write_failed)?;
                    n += 1;
                    if o.count.is_some_and(|c| n >= c) {
                        break;
                    }
                    // The key shares the message's topic (a reference count, no copy).
                    let key = (m.topic.clone(), m.partition);
                    if o.exit_at_end && left.get(&key).is_some_and(|&e| m.offset + 1 >= e) {
                        left.remove(&key);
                        if left.is_empty() {
                            break;
                        }
                    }
                }
                Some(Err(e)) => return Err(failed(e)),
                None if o.exit_at_end => {
                    out.flush().map_err(write_failed)?;
                    left.retain(|(t, p), &mut end| {
                        let at = consumer.position(t, *p);
                        at < 0 || at < end
                    });
                    if left.is_empty() {
                        break;
                    }
                }
                // The client closed.
                None => break,
            }
        }
        out.flush().map_err(write_failed)?;
        Ok(n)
    }
}

/// The parsed `bench consume` command.
#[derive(Debug)]
pub struct BenchConsumeOptions {
    pub target: Target,
    pub count: u64,
}

/// Parses the arguments after `bench consume`.
pub fn parse_bench_consume(
    args: impl IntoIterator<Item = String>,
) -> Result<BenchConsumeOptions, CliError> {
    let mut common = Common::new();
    let mut count = 1_000_000u64;
    parse_flags(args, &mut common, |flag, value| {
        match flag {
            "--count" => count = number(flag, &value()?)?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if count == 0 {
        return Err(usage("--count: at least 1"));
    }
    Ok(BenchConsumeOptions {
        target: common.finish()?,
        count,
    })
}

/// What `bench consume` measured.
#[derive(Debug, Clone, Copy)]
pub struct ConsumeResult {
    pub records: u64,
    pub value_bytes: u64,
    pub elapsed: Duration,
    pub cpu: Duration,
}

impl ConsumeResult {
    /// The text printed.
    pub fn render(&self) -> String {
        let secs = self.elapsed.as_secs_f64();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} records ({} value bytes) in {:.3} s: {:.0} records/s, {:.1} MB/s",
            self.records,
            self.value_bytes,
            secs,
            self.records as f64 / secs,
            self.value_bytes as f64 / secs / 1e6
        );
        let _ = writeln!(
            out,
            "CPU (process, user+sys) {:.3} s: {:.3} us per record",
            self.cpu.as_secs_f64(),
            self.cpu.as_secs_f64() * 1e6 / self.records.max(1) as f64
        );
        out
    }
}

/// Parses and runs `bench consume`; `Err(Failed)` if fewer records came within 30 s
/// without a batch.
pub fn run_bench_consume(args: impl IntoIterator<Item = String>) -> Result<String, CliError> {
    let options = parse_bench_consume(args)?;
    let plan = Plan {
        topics: vec![options.target.topic.clone()],
        partition: None,
        start: Start::Beginning,
        config: SimpleConsumerConfig {
            consumer: ConsumerConfig {
                queued_max_messages: 100_000,
                ..ConsumerConfig::default()
            },
            consumer_timeout_ms: Some(30_000),
            ..SimpleConsumerConfig::default()
        },
    };
    let result = run_consume_session(
        &options.target,
        &plan,
        BenchConsume {
            count: options.count,
        },
    )?;
    let text = result.render();
    if result.records >= options.count {
        Ok(text)
    } else {
        Err(CliError::Failed(format!(
            "only {} records came\n{text}",
            result.records
        )))
    }
}

/// `bench consume`'s body: batches, records borrowed (nothing allocated per record).
struct BenchConsume {
    count: u64,
}

impl ConsumeBody for BenchConsume {
    type Output = ConsumeResult;

    async fn run<C: Reading>(self, consumer: &mut C, _: &Ends) -> Result<ConsumeResult, CliError> {
        let cpu_start = process_cpu();
        // A tool may read the clock (clippy.toml forbids it in the core).
        #[allow(clippy::disallowed_methods)]
        let start = Instant::now();
        let (mut records, mut value_bytes) = (0u64, 0u64);
        while records < self.count {
            let Some(batch) = consumer.batch().await else {
                break;
            };
            for r in batch.records() {
                let r = r.map_err(failed)?;
                records += 1;
                value_bytes += r.value.map_or(0, |v| v.len() as u64);
            }
        }
        Ok(ConsumeResult {
            records,
            value_bytes,
            elapsed: start.elapsed(),
            cpu: process_cpu().saturating_sub(cpu_start),
        })
    }
}
