//! The `grete` example CLI's `produce` and `bench produce` commands, run in-process against
//! the Kafka 0.9 single broker (`GRETE_KAFKA09_BROKERS`) and read back with kcat
//! (`GRETE_KCAT`). Skips unless those are set (fails instead with
//! `GRETE_REQUIRE_BROKERS=1`). Option errors need no broker.

// A test may read the clock (clippy.toml forbids it in the core).
#![allow(clippy::disallowed_methods)]

#[allow(dead_code)]
#[path = "../examples/grete/cli.rs"]
mod cli;
#[allow(dead_code)]
#[path = "../examples/grete/produce.rs"]
mod produce;
#[path = "../transports/testsupport/readback.rs"]
mod readback;

use std::io::Cursor;

use cli::CliError;
use readback::{read_back, Message, Reader};

#[path = "common/cli.rs"]
mod cli_support;
use cli_support::{brokers, create_topic, unique};

/// Runs `grete produce ARGS` with `input` on stdin: (result, stderr).
fn produce(args: &[&str], input: &[u8]) -> (Result<String, CliError>, String) {
    let (result, _, stderr) = produce_outcomes(args, input);
    (result, stderr)
}

/// Runs `grete produce ARGS` with `input` on stdin: (result, stdout, stderr).
fn produce_outcomes(args: &[&str], input: &[u8]) -> (Result<String, CliError>, String, String) {
    let mut stdin = Cursor::new(input.to_vec());
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let result = produce::run_produce(
        args.iter().map(|s| s.to_string()),
        &mut stdin,
        &mut stdout,
        &mut stderr,
    );
    let text = |v: Vec<u8>| String::from_utf8(v).expect("utf-8");
    (result, text(stdout), text(stderr))
}

fn usage_error(result: Result<String, CliError>) -> String {
    match result {
        Err(CliError::Usage(m)) => m,
        other => panic!("expected a usage error, got {other:?}"),
    }
}

#[test]
fn produce_writes_each_stdin_line_as_one_record() {
    let Some(brokers) = brokers() else { return };
    // The same on every transport.
    for runtime in ["tokio", "smol", "blocking"] {
        let topic = unique(&format!("cli-produce-lines-{runtime}"));
        // Auto-created with one partition: the log keeps the lines' order.
        let lines: Vec<String> = (0..1000)
            .map(|i| format!("line {i} \u{e9}t\u{e9}"))
            .collect();
        let mut input = lines.join("\n").into_bytes();
        // An empty line is an empty record; the last line needs no newline.
        input.extend_from_slice(b"\n\nlast");
        let args = [
            "-b",
            &brokers,
            "-t",
            &topic,
            "--acks",
            "1",
            "--runtime",
            runtime,
        ];
        let (result, stderr) = produce(&args, &input);
        assert_eq!(
            result.expect("produce"),
            "1002 records: 1002 delivered, 0 refused, 0 failed (not written), 0 failed (possibly written)\n",
            "{runtime}"
        );
        assert_eq!(stderr, "");
        let messages = read_back(Reader::Kcat09, &brokers, &topic, 1002);
        let expected: Vec<Message> = lines
            .iter()
            .map(String::as_str)
            .chain(["", "last"])
            .enumerate()
            .map(|(i, v)| Message {
                partition: 0,
                offset: i as i64,
                key: None,
                value: Some(v.as_bytes().to_vec()),
            })
            .collect();
        assert_eq!(messages, expected, "{runtime}");
    }
}

#[test]
fn produce_splits_key_and_value_at_the_key_delimiter() {
    let Some(brokers) = brokers() else { return };
    let topic = unique("cli-produce-keyed");
    create_topic(&brokers, &topic, 4);
    let mut input = String::new();
    for i in 0..400 {
        input.push_str(&format!(
            "key-{}::value {i}::with the delimiter again\n",
            i % 37
        ));
    }
    input.push_str("no delimiter here\n");
    // Over smol, gzip, all acks: the other options reach the producer.
    let (result, stderr) = produce(
        &[
            "-b",
            &brokers,
            "-t",
            &topic,
            "-K",
            "::",
            "--runtime",
            "smol",
            "-z",
            "gzip",
            "--acks",
            "all",
        ],
        input.as_bytes(),
    );
    assert_eq!(
        result.expect("produce"),
        "401 records: 401 delivered, 0 refused, 0 failed (not written), 0 failed (possibly written)\n"
    );
    assert_eq!(stderr, "");
    // Then a fixed key, to a fixed partition.
    let (result, _) = produce(
        &["-b", &brokers, "-t", &topic, "-k", "fixed", "-p", "2"],
        b"a\nb\n",
    );
    result.expect("produce -k -p");

    let messages = read_back(Reader::Kcat09, &brokers, &topic, 403);
    let mut keyed = Vec::new();
    let mut fixed = Vec::new();
    let mut unkeyed = Vec::new();
    for m in &messages {
        match m.key.as_deref() {
            Some(b"fixed") => fixed.push(m),
            Some(key) => {
                // Keyed records land where the Java client's murmur2 puts them.
                let expected = grete::producer::murmur2_partition(key, 4) as i32;
                assert_eq!(m.partition, expected, "{m:?}");
                keyed.push(m);
            }
            None => unkeyed.push(m),
        }
    }
    assert_eq!(unkeyed.len(), 1);
    assert_eq!(unkeyed[0].value.as_deref(), Some(&b"no delimiter here"[..]));
    assert_eq!(fixed.len(), 2);
    assert!(fixed.iter().all(|m| m.partition == 2));
    assert_eq!(fixed[0].value.as_deref(), Some(&b"a"[..]));
    assert_eq!(fixed[1].value.as_deref(), Some(&b"b"[..]));
    // Every line once; within a partition, in the order of stdin.
    let mut seen: Vec<usize> = Vec::new();
    for p in 0..4 {
        let numbers: Vec<usize> = keyed
            .iter()
            .filter(|m| m.partition == p)
            .map(|m| {
                let value = std::str::from_utf8(m.value.as_deref().expect("value")).expect("utf-8");
                let rest = value.strip_prefix("value ").expect(value);
                let (n, tail) = rest.split_once("::").expect(value);
                assert_eq!(tail, "with the delimiter again");
                let n: usize = n.parse().expect(value);
                let key = format!("key-{}", n % 37);
                assert_eq!(m.key.as_deref(), Some(key.as_bytes()));
                n
            })
            .collect();
        assert!(
            numbers.windows(2).all(|w| w[0] < w[1]),
            "partition {p}: {numbers:?}"
        );
        seen.extend(numbers);
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..400).collect::<Vec<_>>());
}

#[test]
fn produce_exits_non_zero_when_a_record_cannot_be_produced() {
    let Some(brokers) = brokers() else { return };
    let topic = unique("cli-produce-too-large");
    let big = "x".repeat(1_200_000);
    let input = format!("first\n{big}\nthird\n");
    // Refused by the producer: larger than max_request_size (1000012 by default).
    let (result, stdout, stderr) = produce_outcomes(
        &["-b", &brokers, "-t", &topic, "--acks", "1", "--outcomes"],
        input.as_bytes(),
    );
    match result {
        Err(CliError::Failed(m)) => assert_eq!(
            m,
            "3 records: 2 delivered, 1 refused, 0 failed (not written), 0 failed (possibly written)"
        ),
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(
        stderr,
        "line 2: not produced: record of about 1200040 bytes is larger than max_request_size (1000012)\n"
    );
    // One outcome per line (in the order they settle).
    let mut outcomes: Vec<&str> = stdout.lines().collect();
    outcomes.sort_unstable();
    assert_eq!(
        outcomes,
        [
            "delivered 1 0 0",
            "delivered 3 0 1",
            "refused 2: record of about 1200040 bytes is larger than max_request_size (1000012)",
        ]
    );
    // Allowed by the producer, refused by the broker (message.max.bytes 1000012):
    // MESSAGE_TOO_LARGE fails the record at once, not written.
    let (result, stdout, stderr) = produce_outcomes(
        &[
            "-b",
            &brokers,
            "-t",
            &topic,
            "--acks",
            "1",
            "--max-request-size",
            "5000000",
            "--outcomes",
        ],
        input.as_bytes(),
    );
    match result {
        Err(CliError::Failed(m)) => assert_eq!(
            m,
            "3 records: 2 delivered, 0 refused, 1 failed (not written), 0 failed (possibly written)"
        ),
        other => panic!("expected a failure, got {other:?}"),
    }
    assert!(
        stderr.starts_with("line 2: partition 0: broker error MESSAGE_TOO_LARGE (10)")
            && stderr.ends_with("(not written)\n")
            && stderr.lines().count() == 1,
        "{stderr}"
    );
    let mut outcomes: Vec<&str> = stdout.lines().collect();
    outcomes.sort_unstable();
    assert_eq!(outcomes.len(), 3, "{stdout}");
    assert_eq!(outcomes[0], "delivered 1 0 2");
    assert_eq!(outcomes[1], "delivered 3 0 3");
    assert!(
        outcomes[2].starts_with("failed 2 0 not-written: broker error MESSAGE_TOO_LARGE (10)"),
        "{stdout}"
    );
    let values: Vec<Option<Vec<u8>>> = read_back(Reader::Kcat09, &brokers, &topic, 4)
        .into_iter()
        .map(|m| m.value)
        .collect();
    let v = |s: &str| Some(s.as_bytes().to_vec());
    assert_eq!(values, vec![v("first"), v("third"), v("first"), v("third")]);
}

#[test]
fn produce_refuses_bad_options_with_a_clear_message() {
    let run = |args: &[&str]| usage_error(produce(args, b"").0);
    fn with<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        [&["-b", "127.0.0.1:1", "-t", "t"][..], extra].concat()
    }
    assert_eq!(
        run(&with(&["-z", "brotli"])),
        "unknown compression codec \"brotli\": none, gzip, snappy, lz4 or zstd"
    );
    assert_eq!(run(&with(&["--acks", "2"])), "--acks \"2\": 0, 1 or all");
    assert_eq!(
        run(&with(&["--partitioner", "random"])),
        "unknown partitioner \"random\""
    );
    assert_eq!(
        run(&with(&["-p", "-1"])),
        "-p \"-1\": a partition id (0 or more)"
    );
    assert_eq!(
        run(&with(&["--linger-ms", "soon"])),
        "--linger-ms \"soon\": a non-negative integer"
    );
    assert_eq!(
        run(&with(&["-k", "a", "-K", ":"])),
        "give -k or -K, not both"
    );
    assert_eq!(run(&with(&["-K", ""])), "-K: an empty delimiter");
    assert_eq!(
        run(&with(&["--runtime", "async-std"])),
        "unknown runtime \"async-std\""
    );
    assert_eq!(
        run(&with(&["--frobnicate"])),
        "unknown option \"--frobnicate\""
    );
    assert_eq!(run(&with(&["-z"])), "-z needs a value");
    assert_eq!(run(&["-t", "t"]), "give the brokers (-b)");
    assert_eq!(run(&["-b", "127.0.0.1:1"]), "give the topic (-t)");
    assert_eq!(
        run(&["-b", "127.0.0.1:1", "-t", "a", "-t", "b"]),
        "one topic (-t)"
    );
    assert_eq!(run(&["--help"]), "");
    let bench = |args: &[&str]| match produce::run_bench(args.iter().map(|s| s.to_string())) {
        Err(CliError::Usage(m)) => m,
        other => panic!("expected a usage error, got {other:?}"),
    };
    assert_eq!(bench(&with(&["--count", "0"])), "--count: at least 1");
    assert_eq!(
        bench(&with(&["--compression=lz5"])),
        "unknown compression codec \"lz5\": none, gzip, snappy, lz4 or zstd"
    );
}

#[test]
fn bench_produce_reports_rates_and_cpu_per_record() {
    let Some(brokers) = brokers() else { return };
    let topic = unique("cli-bench-produce");
    create_topic(&brokers, &topic, 4);
    let out = produce::run_bench(
        [
            "-b",
            &brokers,
            "-t",
            &topic,
            "--count",
            "3000",
            "--size",
            "50",
            "--acks",
            "1",
            "--partitions-hint",
        ]
        .map(String::from),
    )
    .expect("bench produce");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].starts_with("3000 records of 50 bytes in "),
        "{out}"
    );
    assert!(
        lines[0].contains(" records/s, ") && lines[0].ends_with(" MB/s"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("CPU (process, user+sys) ") && lines[1].ends_with(" us per record"),
        "{out}"
    );
    assert_eq!(lines[2], "delivered 3000, failed 0");
    // Every record is there, spread evenly by --partitions-hint.
    let messages = read_back(Reader::Kcat09, &brokers, &topic, 3000);
    for p in 0..4 {
        assert_eq!(messages.iter().filter(|m| m.partition == p).count(), 750);
    }
    assert!(messages
        .iter()
        .all(|m| m.key.is_none() && m.value.as_ref().map(Vec::len) == Some(50)));
}
