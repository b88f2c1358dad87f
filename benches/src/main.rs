//! Codec benchmark: grete against the `kafka-protocol` crate, on the same generated data.
//!
//! Run: `cargo run --release --manifest-path benches/Cargo.toml -- [options]` (see `--help`).
//!
//! Measured, for each codec (none, lz4, zstd):
//! * encode: the records into v2 record batches of `--batch` records each;
//! * fetch: decode one FetchResponse holding all the batches (spread over `--partitions`
//!   partitions) and iterate every record's offset, timestamp, key and value.
//!
//! The libraries run interleaved (one iteration each in turn) so that other load on the
//! machine hits both alike. Before timing, each result is checked: both libraries must see
//! the same records with the same keys and values, and each must read the other's batches.

mod sketch;

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use grete::protocol::compression::Compression as GCompression;
use grete::protocol::messages::fetch_response as gfr;
use grete::protocol::records::{
    encode_record_batch, BatchHeader, Batches, DecodeLimits, Record as GRecord, RecordBatchEncoder,
};
use grete::protocol::{Decode as _, Encode as _};
use kafka_protocol::messages::FetchResponse as KFetchResponse;
use kafka_protocol::protocol::Decodable as _;
use kafka_protocol::records::{
    Compression as KCompression, Record as KRecord, RecordBatchDecoder, RecordBatchEncoder as KEnc,
    RecordEncodeOptions, TimestampType as KTimestampType,
};

const BASE_TIMESTAMP: i64 = 1_700_000_000_000;

struct Options {
    records: usize,
    batch: usize,
    value_size: usize,
    key_size: usize,
    partitions: usize,
    iters: usize,
    fetch_version: i16,
    filter: Option<String>,
    only: Option<String>,
    wall: bool,
    skip_checks: bool,
}

impl Options {
    fn parse() -> Options {
        let mut o = Options {
            records: 1_000_000,
            batch: 1_000,
            value_size: 100,
            key_size: 8,
            partitions: 10,
            iters: 7,
            fetch_version: 12,
            filter: None,
            only: None,
            wall: false,
            skip_checks: false,
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            let mut num = |name: &str| -> usize {
                let v = args
                    .next()
                    .unwrap_or_else(|| usage(&format!("{name} needs a value")));
                v.replace('_', "")
                    .parse()
                    .unwrap_or_else(|_| usage(&format!("bad number for {name}: {v}")))
            };
            match a.as_str() {
                "--records" => o.records = num("--records"),
                "--batch" => o.batch = num("--batch"),
                "--value-size" => o.value_size = num("--value-size"),
                "--key-size" => o.key_size = num("--key-size"),
                "--partitions" => o.partitions = num("--partitions"),
                "--iters" => o.iters = num("--iters"),
                "--fetch-version" => o.fetch_version = num("--fetch-version") as i16,
                "--filter" => {
                    o.filter = Some(
                        args.next()
                            .unwrap_or_else(|| usage("--filter needs a value")),
                    )
                }
                "--only" => {
                    o.only = Some(args.next().unwrap_or_else(|| usage("--only needs a value")))
                }
                "--wall" => o.wall = true,
                "--skip-checks" => o.skip_checks = true,
                "--bench" => {} // passed by `cargo bench`
                "-h" | "--help" => usage(""),
                other => usage(&format!("unknown argument {other}")),
            }
        }
        if o.records == 0 || o.batch == 0 || o.partitions == 0 || o.iters == 0 {
            usage("counts must be positive");
        }
        if !(4..=17).contains(&o.fetch_version) {
            usage("--fetch-version must be 4..=17 (what both libraries support)");
        }
        o
    }

    fn wants(&self, case: &str) -> bool {
        self.filter.as_deref().is_none_or(|f| case.contains(f))
    }
}

fn usage(err: &str) -> ! {
    if !err.is_empty() {
        eprintln!("error: {err}\n");
    }
    eprintln!(
        "usage: grete-benches [--records N (1000000)] [--batch N records per batch (1000)]\n\
         \x20      [--value-size B (100)] [--key-size B, 0 = null keys (8)]\n\
         \x20      [--partitions N in the FetchResponse (10)] [--fetch-version V (12)]\n\
         \x20      [--iters N timed iterations per case (7)] [--filter SUBSTRING of a case name]\n\
         \x20      [--only SUBSTRING of a library name, e.g. grete (for profiling)]\n\
         \x20      [--wall: time with the wall clock rather than the thread's on-CPU time]\n\
         \x20      [--skip-checks: no interop or checksum checks before timing (for profiling)]\n\
         cases: encode/C, encode-reuse/C, fetch/C, floor/C for C in none, lz4, zstd; sketch/none"
    );
    std::process::exit(if err.is_empty() { 0 } else { 2 })
}

/// The generated records, shared by both libraries: keys and values are slices of two
/// contiguous buffers, so that building the inputs allocates nothing per record.
struct Data {
    keys: Vec<Option<Bytes>>,
    values: Vec<Bytes>,
    /// The same records as grete `Record`s (for `encode_record_batch`).
    grete: Vec<GRecord>,
    /// The same records as kafka-protocol `Record`s.
    kafka: Vec<KRecord>,
    /// Σ of the per-record [`touch`] sums: what a full decode must add up to.
    touch_sum: u64,
    /// FNV-1a over every key and value, in order.
    full_hash: u64,
    /// The key and value bytes.
    payload_bytes: usize,
}

fn timestamp(i: usize) -> i64 {
    // Ten records per millisecond.
    BASE_TIMESTAMP + (i / 10) as i64
}

fn generate(o: &Options) -> Data {
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    const WORDS: [&str; 16] = [
        "click", "view", "purchase", "login", "logout", "search", "cart", "checkout", "home",
        "product", "mobile", "desktop", "eu-west", "us-east", "ok", "error",
    ];
    // Values: JSON-ish event text, padded with random letters: compressible like real
    // payloads, but not trivially so.
    let mut vbuf = Vec::with_capacity(o.records * o.value_size);
    let mut kbuf = Vec::with_capacity(o.records * o.key_size);
    for i in 0..o.records {
        let r = next();
        let mut v = format!(
            "{{\"id\":{i},\"user\":\"u{:05}\",\"event\":\"{}\",\"page\":\"{}\",\"region\":\"{}\",\"pad\":\"",
            r % 100_000,
            WORDS[(r >> 20) as usize % 16],
            WORDS[(r >> 24) as usize % 16],
            WORDS[(r >> 28) as usize % 16],
        )
        .into_bytes();
        while v.len() < o.value_size {
            v.push(b'a' + (next() % 26) as u8);
        }
        v.truncate(o.value_size);
        if o.value_size >= 2 {
            v[o.value_size - 2] = b'"';
            v[o.value_size - 1] = b'}';
        }
        vbuf.extend_from_slice(&v);
        let k = format!("{:0width$}", r % 1_000_000_007, width = o.key_size);
        kbuf.extend_from_slice(&k.as_bytes()[..o.key_size]);
    }
    let vbuf = Bytes::from(vbuf);
    let kbuf = Bytes::from(kbuf);
    let values: Vec<Bytes> = (0..o.records)
        .map(|i| vbuf.slice(i * o.value_size..(i + 1) * o.value_size))
        .collect();
    let keys: Vec<Option<Bytes>> = (0..o.records)
        .map(|i| (o.key_size > 0).then(|| kbuf.slice(i * o.key_size..(i + 1) * o.key_size)))
        .collect();
    let grete = (0..o.records)
        .map(|i| GRecord {
            offset: i as i64,
            timestamp: timestamp(i),
            key: keys[i].clone(),
            value: Some(values[i].clone()),
            ..GRecord::default()
        })
        .collect();
    let kafka = (0..o.records)
        .map(|i| KRecord {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: KTimestampType::Creation,
            offset: i as i64,
            // kafka-protocol cuts batches where `offset - sequence` changes and derives
            // the base sequence from the first record: this gives one batch per call and
            // a base sequence of -1 (no idempotence), like grete's default header.
            sequence: (i % o.batch) as i32 - 1,
            timestamp: timestamp(i),
            key: keys[i].clone(),
            value: Some(values[i].clone()),
            headers: Default::default(),
        })
        .collect();
    let mut touch_sum = 0u64;
    let mut h = Fnv::new();
    for i in 0..o.records {
        touch_sum = touch_sum.wrapping_add(touch(
            i as i64,
            timestamp(i),
            keys[i].as_deref(),
            Some(&values[i]),
        ));
        h.opt(keys[i].as_deref());
        h.opt(Some(&values[i]));
    }
    Data {
        keys,
        values,
        grete,
        kafka,
        touch_sum,
        full_hash: h.0,
        payload_bytes: o.records * (o.value_size + o.key_size),
    }
}

/// What the timed decode loops compute per record: cheap, but it reads the offset, the
/// timestamp, both lengths and both ends of the value, so nothing can be skipped.
#[inline(always)]
fn touch(offset: i64, timestamp: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> u64 {
    let mut s = (offset as u64) ^ (timestamp as u64).rotate_left(17);
    if let Some(k) = key {
        s = s.wrapping_add(k.len() as u64 * 31);
    }
    if let Some(v) = value {
        s = s.wrapping_add(v.len() as u64);
        if let (Some(&a), Some(&b)) = (v.first(), v.last()) {
            s = s.wrapping_add((a as u64) << 8 | b as u64);
        }
    }
    s
}

/// FNV-1a, for the untimed full comparison of keys and values.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn opt(&mut self, b: Option<&[u8]>) {
        match b {
            None => self.byte(0xff),
            Some(b) => {
                for &x in (b.len() as u32).to_le_bytes().iter().chain(b) {
                    self.byte(x);
                }
            }
        }
    }

    fn byte(&mut self, x: u8) {
        self.0 = (self.0 ^ x as u64).wrapping_mul(0x100_0000_01b3);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Codec {
    None,
    Lz4,
    Zstd,
}

impl Codec {
    const ALL: [Codec; 3] = [Codec::None, Codec::Lz4, Codec::Zstd];

    fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
    }

    fn grete(self) -> GCompression {
        match self {
            Codec::None => GCompression::None,
            Codec::Lz4 => GCompression::Lz4,
            Codec::Zstd => GCompression::Zstd,
        }
    }

    fn kafka(self) -> KCompression {
        match self {
            Codec::None => KCompression::None,
            Codec::Lz4 => KCompression::Lz4,
            Codec::Zstd => KCompression::Zstd,
        }
    }
}

// ---------------------------------------------------------------------------------------
// The measured operations. Each appends to / reads from buffers owned by the caller, so
// that both libraries reuse their output buffer's capacity alike.

/// grete, streaming: `RecordBatchEncoder::append` from borrowed keys and values.
///
/// With `reuse`, each batch overwrites the previous one (a producer that ships each batch
/// before building the next); otherwise all batches accumulate in `out`.
fn encode_grete_append(d: &Data, o: &Options, codec: Codec, reuse: bool, out: &mut Vec<u8>) {
    out.clear();
    for start in (0..d.values.len()).step_by(o.batch) {
        if reuse {
            out.clear();
        }
        let end = (start + o.batch).min(d.values.len());
        let header = BatchHeader {
            base_offset: start as i64,
            compression: codec.grete(),
            ..BatchHeader::default()
        };
        let mut enc = RecordBatchEncoder::new(out, &header);
        for i in start..end {
            enc.append(timestamp(i), d.keys[i].as_deref(), Some(&d.values[i]), &[])
                .expect("grete append");
        }
        enc.finish().expect("grete finish");
    }
}

/// The README's proposed encoder changes, sketched outside grete (uncompressed only).
fn encode_sketch(d: &Data, o: &Options, reuse: bool, out: &mut Vec<u8>) {
    out.clear();
    for start in (0..d.values.len()).step_by(o.batch) {
        if reuse {
            out.clear();
        }
        let end = (start + o.batch).min(d.values.len());
        let mut enc = sketch::Sketch::new(out, start as i64);
        for i in start..end {
            enc.append(timestamp(i), d.keys[i].as_deref(), Some(&d.values[i]));
        }
        enc.finish();
    }
}

/// grete, from prepared `Record`s: `encode_record_batch`.
fn encode_grete_records(d: &Data, o: &Options, codec: Codec, reuse: bool, out: &mut Vec<u8>) {
    out.clear();
    for (n, chunk) in d.grete.chunks(o.batch).enumerate() {
        if reuse {
            out.clear();
        }
        let header = BatchHeader {
            base_offset: (n * o.batch) as i64,
            compression: codec.grete(),
            ..BatchHeader::default()
        };
        encode_record_batch(out, &header, chunk).expect("grete encode_record_batch");
    }
}

/// kafka-protocol, from prepared `Record`s: `RecordBatchEncoder::encode`, one call per batch.
fn encode_kafka(d: &Data, o: &Options, codec: Codec, reuse: bool, out: &mut Vec<u8>) {
    out.clear();
    let options = RecordEncodeOptions {
        version: 2,
        compression: codec.kafka(),
    };
    for chunk in d.kafka.chunks(o.batch) {
        if reuse {
            out.clear();
        }
        KEnc::encode(out, chunk, &options).expect("kafka-protocol encode");
    }
}

/// Builds the FetchResponse bytes (grete's encoder; checked against kafka-protocol's
/// decoder below) with the batches spread over the partitions, whole batches each.
fn fetch_response(batches: &[u8], partitions: usize, version: i16) -> Bytes {
    let mut spans = Vec::new();
    let mut rest = batches;
    while !rest.is_empty() {
        let n = i32::from_be_bytes(rest[8..12].try_into().unwrap()) as usize + 12;
        spans.push(n);
        rest = &rest[n..];
    }
    let per = spans.len().div_ceil(partitions).max(1);
    let mut partitions = Vec::new();
    let mut at = 0;
    for (p, group) in spans.chunks(per).enumerate() {
        let len: usize = group.iter().sum();
        partitions.push(gfr::PartitionData {
            partition_index: p as i32,
            high_watermark: 1 << 40,
            last_stable_offset: 1 << 40,
            log_start_offset: 0,
            aborted_transactions: Some(Vec::new()),
            records: Some(Bytes::copy_from_slice(&batches[at..at + len])),
            ..gfr::PartitionData::default()
        });
        at += len;
    }
    let resp = gfr::FetchResponse {
        responses: vec![gfr::FetchableTopicResponse {
            // Topics are named up to v12 and identified by id from v13.
            topic: if version <= 12 {
                "bench-topic".into()
            } else {
                String::new()
            },
            topic_id: grete::protocol::primitives::Uuid(if version >= 13 {
                [7; 16]
            } else {
                [0; 16]
            }),
            partitions,
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut buf = Vec::new();
    resp.encode(&mut buf, version)
        .expect("encode FetchResponse");
    Bytes::from(buf)
}

/// The records section (after the 61-byte header) of each uncompressed v2 batch.
fn record_sections(batches: &[u8]) -> Vec<&[u8]> {
    let mut v = Vec::new();
    let mut rest = batches;
    while !rest.is_empty() {
        let n = i32::from_be_bytes(rest[8..12].try_into().unwrap()) as usize + 12;
        v.push(&rest[61..n]);
        rest = &rest[n..];
    }
    v
}

/// What a decode saw: records, the Σ of [`touch`], and optionally the full hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    records: usize,
    touch_sum: u64,
    hash: u64,
}

/// grete: `FetchResponse::decode`, then `Batches` over each partition and, per batch,
/// `Batch::records` (owned `Record`s sharing the buffer) or, with `refs`,
/// `Batch::record_refs` (borrowed `RecordRef`s).
fn fetch_grete(resp: &Bytes, version: i16, hash: bool, refs: bool) -> Seen {
    let mut buf = resp.clone();
    let r = gfr::FetchResponse::decode(&mut buf, version).expect("grete FetchResponse");
    let mut seen = Seen {
        records: 0,
        touch_sum: 0,
        hash: 0,
    };
    let mut h = Fnv::new();
    let mut visit = |offset: i64, timestamp: i64, key: Option<&[u8]>, value: Option<&[u8]>| {
        seen.records += 1;
        seen.touch_sum = seen
            .touch_sum
            .wrapping_add(touch(offset, timestamp, key, value));
        if hash {
            h.opt(key);
            h.opt(value);
        }
    };
    for t in &r.responses {
        for p in &t.partitions {
            let Some(records) = &p.records else { continue };
            for batch in Batches::new(records.clone(), DecodeLimits::default()) {
                let batch = batch.expect("grete batch");
                if refs {
                    for rec in batch.record_refs() {
                        let rec = rec.expect("grete record");
                        visit(rec.offset, rec.timestamp, rec.key, rec.value);
                    }
                } else {
                    for rec in batch.records() {
                        let rec = rec.expect("grete record");
                        visit(
                            rec.offset,
                            rec.timestamp,
                            rec.key.as_deref(),
                            rec.value.as_deref(),
                        );
                    }
                }
            }
        }
    }
    seen.hash = if hash { h.0 } else { 0 };
    seen
}

/// kafka-protocol: `FetchResponse::decode`, then `RecordBatchDecoder::decode` batch by batch.
fn fetch_kafka(resp: &Bytes, version: i16, hash: bool) -> Seen {
    let mut buf = resp.clone();
    let r = KFetchResponse::decode(&mut buf, version).expect("kafka-protocol FetchResponse");
    let mut seen = Seen {
        records: 0,
        touch_sum: 0,
        hash: 0,
    };
    let mut h = Fnv::new();
    for t in &r.responses {
        for p in &t.partitions {
            let Some(records) = &p.records else { continue };
            let mut records = records.clone();
            while records.has_remaining() {
                let set = RecordBatchDecoder::decode(&mut records).expect("kafka-protocol batch");
                for rec in &set.records {
                    seen.records += 1;
                    seen.touch_sum = seen.touch_sum.wrapping_add(touch(
                        rec.offset,
                        rec.timestamp,
                        rec.key.as_deref(),
                        rec.value.as_deref(),
                    ));
                    if hash {
                        h.opt(rec.key.as_deref());
                        h.opt(rec.value.as_deref());
                    }
                }
            }
        }
    }
    seen.hash = if hash { h.0 } else { 0 };
    seen
}

/// Decodes batches with each library (wrapped in a one-partition FetchResponse v12), fully
/// hashed: the interop check.
fn batches_grete(batches: &[u8], refs: bool) -> Seen {
    fetch_grete(&fetch_response(batches, 1, 12), 12, true, refs)
}

fn batches_kafka(batches: &[u8]) -> Seen {
    fetch_kafka(&fetch_response(batches, 1, 12), 12, true)
}

// ---------------------------------------------------------------------------------------
// Timing and reporting.

/// A stopwatch: the benchmark thread's on-CPU time by default
/// (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)`), so that other load on a shared machine does
/// not count while this thread waits for a core; wall time with `--wall`.
enum Clock {
    Cpu(Duration),
    Wall(Instant),
}

impl Clock {
    fn cpu() -> Option<Duration> {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    }

    fn kind(wall: bool) -> &'static str {
        if !wall && Self::cpu().is_some() {
            "on-CPU time of the benchmark thread"
        } else {
            "wall-clock time"
        }
    }

    fn now(wall: bool) -> Clock {
        match (wall, Self::cpu()) {
            (false, Some(t)) => Clock::Cpu(t),
            _ => Clock::Wall(Instant::now()),
        }
    }

    fn elapsed(&self) -> Duration {
        match self {
            Clock::Cpu(start) => Self::cpu().map_or(Duration::ZERO, |t| t - *start),
            Clock::Wall(start) => start.elapsed(),
        }
    }
}

struct Stats {
    best: Duration,
    median: Duration,
}

fn stats(mut t: Vec<Duration>) -> Stats {
    t.sort();
    Stats {
        best: t[0],
        median: t[t.len() / 2],
    }
}

/// Runs each contender `iters` times, interleaved, after one untimed warm-up round, and
/// adds a row per contender; the last contender (kafka-protocol) is the baseline. With
/// `--only`, contenders whose name does not contain it are skipped.
fn race(
    o: &Options,
    op: &str,
    codec: Codec,
    bytes: usize,
    contenders: &mut [(&'static str, &mut dyn FnMut())],
    rows: &mut Vec<Row>,
) {
    race_with(o, op, codec, bytes, true, contenders, rows)
}

fn race_with(
    o: &Options,
    op: &str,
    codec: Codec,
    bytes: usize,
    last_is_baseline: bool,
    contenders: &mut [(&'static str, &mut dyn FnMut())],
    rows: &mut Vec<Row>,
) {
    let run: Vec<bool> = contenders
        .iter()
        .map(|(name, _)| o.only.as_deref().is_none_or(|x| name.contains(x)))
        .collect();
    for ((_, c), &run) in contenders.iter_mut().zip(&run) {
        if run {
            c();
        }
    }
    let mut times = vec![Vec::with_capacity(o.iters); contenders.len()];
    for _ in 0..o.iters {
        for (((_, c), t), &run) in contenders.iter_mut().zip(&mut times).zip(&run) {
            if run {
                let start = Clock::now(o.wall);
                c();
                t.push(start.elapsed());
            }
        }
    }
    let baseline = (last_is_baseline && run.last().copied().unwrap_or(false))
        .then(|| stats(times.last().unwrap().clone()).best);
    let n = contenders.len();
    for (i, ((name, _), t)) in contenders.iter().zip(times).enumerate() {
        if !t.is_empty() {
            rows.push(Row {
                op: op.to_string(),
                codec: codec.name(),
                lib: name,
                stats: stats(t),
                bytes,
                baseline: if i + 1 < n || !last_is_baseline {
                    baseline
                } else {
                    None
                },
            });
        }
    }
}

struct Row {
    op: String,
    codec: &'static str,
    lib: &'static str,
    stats: Stats,
    /// Bytes per iteration for the MB/s column.
    bytes: usize,
    /// The best time of the kafka-protocol row of the same case.
    baseline: Option<Duration>,
}

fn print_table(rows: &[Row], records: usize) {
    let header = [
        "operation",
        "codec",
        "library",
        "best ns/rec",
        "median ns/rec",
        "Mrec/s",
        "MB/s",
        "speedup",
    ];
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            let ns = |d: Duration| d.as_nanos() as f64 / records as f64;
            let secs = r.stats.best.as_secs_f64();
            [
                r.op.clone(),
                r.codec.to_string(),
                r.lib.to_string(),
                format!("{:.1}", ns(r.stats.best)),
                format!("{:.1}", ns(r.stats.median)),
                format!("{:.2}", records as f64 / secs / 1e6),
                format!("{:.0}", r.bytes as f64 / secs / 1e6),
                match r.baseline {
                    Some(b) => format!("{:.2}x", b.as_secs_f64() / secs),
                    None => "-".into(),
                },
            ]
        })
        .collect();
    let mut w = header.map(str::len);
    for c in &cells {
        for (w, s) in w.iter_mut().zip(c) {
            *w = (*w).max(s.len());
        }
    }
    let line = |c: &[String]| {
        let mut s = String::from("|");
        for (i, (cell, w)) in c.iter().zip(&w).enumerate() {
            if i < 3 {
                s += &format!(" {cell:<w$} |");
            } else {
                s += &format!(" {cell:>w$} |");
            }
        }
        println!("{s}");
    };
    line(&header.map(String::from));
    let mut sep = String::from("|");
    for (i, w) in w.iter().enumerate() {
        let dashes = "-".repeat(*w);
        sep += &if i < 3 {
            format!(" {dashes} |")
        } else {
            format!(" {}: |", &dashes[1..])
        };
    }
    println!("{sep}");
    for c in &cells {
        line(c);
    }
}

fn main() {
    let o = Options::parse();
    println!(
        "grete vs kafka-protocol {}: {} records, {}-byte values, {}, {} records per batch, \
         FetchResponse v{} over {} partitions, best and median of {} iterations of {}",
        kafka_protocol_version(),
        o.records,
        o.value_size,
        if o.key_size == 0 {
            "null keys".to_string()
        } else {
            format!("{}-byte keys", o.key_size)
        },
        o.batch,
        o.fetch_version,
        o.partitions,
        o.iters,
        Clock::kind(o.wall),
    );
    let t = Instant::now();
    let d = generate(&o);
    eprintln!("generated the data in {:.1?}", t.elapsed());

    let mut rows = Vec::new();
    let mut sizes = Vec::new();
    let uncompressed_size = {
        let mut out = Vec::new();
        encode_grete_append(&d, &o, Codec::None, false, &mut out);
        out.len()
    };
    for codec in Codec::ALL {
        let sketch = codec == Codec::None && o.wants("sketch/none");
        if !sketch
            && !["encode", "encode-reuse", "fetch"]
                .iter()
                .any(|case| o.wants(&format!("{case}/{}", codec.name())))
        {
            continue;
        }
        // Encode once with each library, and check the results before any timing.
        let mut g_out = Vec::new();
        let mut g2_out = Vec::new();
        let mut k_out = Vec::new();
        encode_grete_append(&d, &o, codec, false, &mut g_out);
        encode_grete_records(&d, &o, codec, false, &mut g2_out);
        encode_kafka(&d, &o, codec, false, &mut k_out);
        assert_eq!(
            g_out,
            g2_out,
            "grete's two encoders disagree ({})",
            codec.name()
        );
        let expect = Seen {
            records: o.records,
            touch_sum: d.touch_sum,
            hash: d.full_hash,
        };
        // Interop: each library reads the other's batches (and its own) to the same records.
        let checked: &[(&str, &Vec<u8>)] = if o.skip_checks {
            &[]
        } else {
            &[("grete", &g_out), ("kafka-protocol", &k_out)]
        };
        for &(who, bytes) in checked {
            let by_kafka = batches_kafka(bytes);
            for refs in [false, true] {
                assert_eq!(
                    batches_grete(bytes, refs),
                    expect,
                    "grete reading {who}'s {} batches (refs: {refs})",
                    codec.name()
                );
            }
            assert_eq!(
                by_kafka,
                expect,
                "kafka-protocol reading {who}'s {} batches",
                codec.name()
            );
        }
        let identical = if g_out == k_out {
            "byte-identical"
        } else {
            "different bytes"
        };
        eprintln!(
            "{}: grete {} bytes, kafka-protocol {} bytes ({identical}); each reads the other's: {}",
            codec.name(),
            g_out.len(),
            k_out.len(),
            if o.skip_checks { "not checked" } else { "ok" },
        );
        sizes.push((codec.name(), g_out.len(), k_out.len()));

        for (case, op, reuse) in [
            ("encode", "encode (all batches in one buffer)", false),
            ("encode-reuse", "encode (one batch buffer, reused)", true),
        ] {
            if !o.wants(&format!("{case}/{}", codec.name())) {
                continue;
            }
            let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
            race(
                &o,
                op,
                codec,
                uncompressed_size,
                &mut [
                    ("grete (append)", &mut || {
                        encode_grete_append(black_box(&d), &o, codec, reuse, &mut a)
                    }),
                    ("grete (encode_record_batch)", &mut || {
                        encode_grete_records(black_box(&d), &o, codec, reuse, &mut b)
                    }),
                    ("kafka-protocol", &mut || {
                        encode_kafka(black_box(&d), &o, codec, reuse, &mut c)
                    }),
                ],
                &mut rows,
            );
        }

        if codec == Codec::None && o.wants("sketch/none") {
            let mut a = Vec::new();
            encode_sketch(&d, &o, false, &mut a);
            assert!(a == g_out, "the sketch must write grete's bytes");
            let (mut b, mut c) = (Vec::new(), Vec::new());
            race(
                &o,
                "encode, sketch of the proposed changes",
                codec,
                uncompressed_size,
                &mut [
                    ("sketch (not grete)", &mut || {
                        encode_sketch(black_box(&d), &o, false, &mut a)
                    }),
                    ("grete (append)", &mut || {
                        encode_grete_append(black_box(&d), &o, codec, false, &mut b)
                    }),
                    ("kafka-protocol", &mut || {
                        encode_kafka(black_box(&d), &o, codec, false, &mut c)
                    }),
                ],
                &mut rows,
            );
        }

        if o.wants(&format!("fetch/{}", codec.name())) {
            let resp = fetch_response(&g_out, o.partitions, o.fetch_version);
            let v = o.fetch_version;
            let (g, gr, k) = if o.skip_checks {
                (expect, expect, expect)
            } else {
                (
                    fetch_grete(&resp, v, true, false),
                    fetch_grete(&resp, v, true, true),
                    fetch_kafka(&resp, v, true),
                )
            };
            assert_eq!(
                (g, gr),
                (expect, expect),
                "grete decoding the FetchResponse ({})",
                codec.name()
            );
            assert_eq!(
                k,
                expect,
                "kafka-protocol decoding the FetchResponse ({})",
                codec.name()
            );
            race(
                &o,
                "fetch decode + iterate",
                codec,
                uncompressed_size,
                &mut [
                    ("grete (records)", &mut || {
                        let s = fetch_grete(black_box(&resp), v, false, false);
                        assert_eq!(s.touch_sum, d.touch_sum);
                    }),
                    ("grete (record_refs)", &mut || {
                        let s = fetch_grete(black_box(&resp), v, false, true);
                        assert_eq!(s.touch_sum, d.touch_sum);
                    }),
                    ("kafka-protocol", &mut || {
                        let s = fetch_kafka(black_box(&resp), v, false);
                        assert_eq!(s.touch_sum, d.touch_sum);
                    }),
                ],
                &mut rows,
            );
        }
    }
    if o.wants("floor/none") {
        // What any encoder or decoder of these batches must at least do: copy the keys and
        // values once, and checksum the batches once (CRC-32C, with the crc32c crate that
        // both libraries use).
        let mut batches = Vec::new();
        encode_grete_append(&d, &o, Codec::None, false, &mut batches);
        let mut out = Vec::new();
        let shared = Bytes::from(batches.clone());
        let _ = shared.clone(); // made shared, as a decoded response's bytes are
        race_with(
            &o,
            "floor",
            Codec::None,
            uncompressed_size,
            false,
            &mut [
                ("memcpy keys+values to one buffer", &mut || {
                    out.clear();
                    for (k, v) in d.keys.iter().zip(&d.values) {
                        if let Some(k) = k {
                            out.extend_from_slice(k);
                        }
                        out.extend_from_slice(v);
                    }
                    black_box(&out);
                }),
                ("2 Bytes::slice + drop per record", &mut || {
                    // What a decoder handing out `Bytes` keys and values pays in
                    // reference counting alone (4 atomic operations per record).
                    let mut n = 0usize;
                    let stride = (shared.len() - 108) / d.values.len();
                    for i in 0..d.values.len() {
                        let k = shared.slice(i * stride..i * stride + 8);
                        let v = shared.slice(i * stride + 8..i * stride + 108);
                        n = n.wrapping_add(black_box(&k).len() + black_box(&v).len());
                    }
                    black_box(n);
                }),
                ("crc32c of all batches", &mut || {
                    black_box(crc32c::crc32c(black_box(&batches)));
                }),
            ],
            &mut rows,
        );
    }
    for codec in [Codec::Lz4, Codec::Zstd] {
        if !o.wants(&format!("floor/{}", codec.name())) {
            continue;
        }
        // The codec alone, on the records section of each uncompressed batch: block LZ4
        // (lz4_flex, 64 KiB blocks, as grete writes) and zstd level 3 with one reused
        // context (the zstd crate's bulk API).
        let mut batches = Vec::new();
        encode_grete_append(&d, &o, Codec::None, false, &mut batches);
        let sections = record_sections(&batches);
        // Each section as compressed blocks: 64 KiB LZ4 blocks, or one zstd frame.
        let mut zc = zstd::bulk::Compressor::new(3).expect("zstd context");
        let mut zd = zstd::bulk::Decompressor::new().expect("zstd context");
        let chunk = if codec == Codec::Lz4 {
            64 << 10
        } else {
            usize::MAX
        };
        let packed: Vec<Vec<(usize, Vec<u8>)>> = sections
            .iter()
            .map(|sec| {
                sec.chunks(chunk)
                    .map(|block| {
                        let c = match codec {
                            Codec::Lz4 => lz4_flex::block::compress(block),
                            _ => zc.compress(block).expect("zstd"),
                        };
                        (block.len(), c)
                    })
                    .collect()
            })
            .collect();
        let mut out = Vec::new();
        let mut out2 = Vec::new();
        let mut back = vec![0u8; sections.iter().map(|s| s.len()).max().unwrap_or(0)];
        race_with(
            &o,
            "floor",
            codec,
            uncompressed_size,
            false,
            &mut [
                ("codec only: compress, one reused context", &mut || {
                    for sec in &sections {
                        out.clear();
                        for block in sec.chunks(chunk) {
                            let at = out.len();
                            if codec == Codec::Lz4 {
                                let max = lz4_flex::block::get_maximum_output_size(block.len());
                                out.resize(at + max, 0);
                                let n = lz4_flex::block::compress_into(block, &mut out[at..])
                                    .expect("lz4");
                                out.truncate(at + n);
                            } else {
                                out.reserve(zstd::zstd_safe::compress_bound(block.len()));
                                zc.compress_to_buffer(block, &mut out).expect("zstd");
                            }
                        }
                        black_box(&out);
                    }
                }),
                (
                    "codec only: compress, new stream encoder per batch",
                    &mut || {
                        // zstd: a fresh streaming encoder per batch, as a v2 batch encoder
                        // that keeps no state between batches would make. LZ4: the same
                        // block calls as above (lz4_flex keeps no context).
                        for sec in &sections {
                            out2.clear();
                            if codec == Codec::Lz4 {
                                for block in sec.chunks(chunk) {
                                    out2.extend_from_slice(&lz4_flex::block::compress(block));
                                }
                            } else {
                                use std::io::Write as _;
                                let mut enc =
                                    zstd::stream::write::Encoder::new(&mut out2, 3).expect("zstd");
                                enc.write_all(sec).expect("zstd");
                                enc.finish().expect("zstd");
                            }
                            black_box(&out2);
                        }
                    },
                ),
                ("codec only: zstd::bulk::compress per batch", &mut || {
                    // A fresh context that knows the input size (zstd then sizes its
                    // tables to the batch).
                    for sec in &sections {
                        let c = if codec == Codec::Lz4 {
                            lz4_flex::block::compress(sec)
                        } else {
                            zstd::bulk::compress(sec, 3).expect("zstd")
                        };
                        black_box(c);
                    }
                }),
                ("codec only: decompress each batch", &mut || {
                    for blocks in &packed {
                        let mut at = 0;
                        for (len, c) in blocks {
                            let dst = &mut back[at..at + len];
                            let n = if codec == Codec::Lz4 {
                                lz4_flex::block::decompress_into(c, dst).expect("lz4")
                            } else {
                                zd.decompress_to_buffer(c, dst).expect("zstd")
                            };
                            assert_eq!(n, *len);
                            at += n;
                        }
                        black_box(&back);
                    }
                }),
            ],
            &mut rows,
        );
        if codec == Codec::Lz4 {
            // Those two variants are about zstd contexts; lz4_flex keeps none.
            rows.retain(|r| {
                r.codec != "lz4" || !(r.lib.contains("new stream") || r.lib.contains("bulk"))
            });
        }
    }
    println!();
    print_table(&rows, o.records);
    println!();
    println!("Encoded sizes (all batches):");
    for (codec, g, k) in &sizes {
        println!("  {codec:<5} grete {g:>11} bytes   kafka-protocol {k:>11} bytes");
    }
    println!(
        "\nMB/s counts the uncompressed batch bytes ({} bytes; keys and values alone are {}), \
         whatever the codec. speedup = kafka-protocol's best time / this row's best time.",
        uncompressed_size, d.payload_bytes
    );
}

fn kafka_protocol_version() -> &'static str {
    // Kept in step with Cargo.toml / Cargo.lock by hand; printed for the README.
    "0.18.0"
}
