//! The `grete` example CLI's `consume` and `bench consume` commands, run in-process against
//! the Kafka 0.9 single broker (`GRETE_KAFKA09_BROKERS`), reading records `grete produce`
//! and kcat (`GRETE_KCAT`) wrote. Skips unless those are set (fails instead with
//! `GRETE_REQUIRE_BROKERS=1`). Option errors need no broker.

// A test may read the clock (clippy.toml forbids it in the core).
#![allow(clippy::disallowed_methods)]

#[allow(dead_code)]
#[path = "../examples/grete/cli.rs"]
mod cli;
#[allow(dead_code)]
#[path = "../examples/grete/consume.rs"]
mod consume;
#[allow(dead_code)]
#[path = "../examples/grete/produce.rs"]
mod produce;

use std::io::Cursor;
use std::process::Command;

use cli::CliError;

#[path = "common/cli.rs"]
mod cli_support;
use cli_support::{brokers, create_topic, unique};

/// Writes `lines` (`key:value`, or a bare value) into `topic` with `grete produce -K :`,
/// all into `partition`.
fn produce_lines(brokers: &str, topic: &str, partition: i32, lines: &[String]) {
    let input = lines.join("\n").into_bytes();
    let mut stdin = Cursor::new(input);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let p = partition.to_string();
    let args = [
        "-b", brokers, "-t", topic, "-K", ":", "-p", &p, "--acks", "1",
    ];
    produce::run_produce(args.map(String::from), &mut stdin, &mut out, &mut err).expect("produce");
}

/// Runs `grete consume ARGS`: (result, stdout).
fn consume(args: &[&str]) -> (Result<String, CliError>, String) {
    let mut out = Vec::new();
    let result = consume::run_consume(args.iter().map(|s| s.to_string()), &mut out);
    (result, String::from_utf8(out).expect("utf-8"))
}

fn usage_error(result: Result<String, CliError>) -> String {
    match result {
        Err(CliError::Usage(m)) => m,
        other => panic!("expected a usage error, got {other:?}"),
    }
}

/// A two-partition topic with 5 records in partition 0 and 3 in partition 1.
fn two_partitions(brokers: &str, prefix: &str) -> String {
    let topic = unique(prefix);
    create_topic(brokers, &topic, 2);
    let zero: Vec<String> = (0..5).map(|i| format!("k{i}:zero {i}")).collect();
    let one: Vec<String> = (0..3).map(|i| format!("one {i}")).collect();
    produce_lines(brokers, &topic, 0, &zero);
    produce_lines(brokers, &topic, 1, &one);
    topic
}

fn sorted_lines(out: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort_unstable();
    lines
}

#[test]
fn consume_prints_each_value_then_exits_at_the_end() {
    let Some(brokers) = brokers() else { return };
    let topic = two_partitions(&brokers, "cli-consume-values");
    for runtime in ["tokio", "smol", "blocking"] {
        let (result, out) = consume(&["-b", &brokers, "-t", &topic, "-e", "--runtime", runtime]);
        assert_eq!(result.expect("consume"), "8 records\n", "{runtime}");
        let mut expected: Vec<String> = (0..5).map(|i| format!("zero {i}")).collect();
        expected.extend((0..3).map(|i| format!("one {i}")));
        expected.sort();
        assert_eq!(sorted_lines(&out), expected, "{runtime}");
    }
}

#[test]
fn consume_formats_like_kcat() {
    let Some(brokers) = brokers() else { return };
    let topic = two_partitions(&brokers, "cli-consume-format");
    let format = "%t|%p|%o|%k|%s|%T|%h|%%\\t\\n";
    let (result, out) = consume(&["-b", &brokers, "-t", &topic, "-e", "-p", "0", "-f", format]);
    assert_eq!(result.expect("consume"), "5 records\n");
    // Kafka 0.9 has no timestamps (-1) and no headers.
    let expected: String = (0..5)
        .map(|i| format!("{topic}|0|{i}|k{i}|zero {i}|-1||%\t\n"))
        .collect();
    assert_eq!(out, expected);
}

#[test]
fn consume_starts_where_asked_and_stops_after_count() {
    let Some(brokers) = brokers() else { return };
    let topic = two_partitions(&brokers, "cli-consume-offsets");
    let run = |extra: &[&str]| {
        let mut args = vec!["-b", brokers.as_str(), "-t", topic.as_str(), "-p", "0"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["-f", "%o\\n"]);
        let (result, out) = consume(&args);
        result.expect("consume");
        out
    };
    assert_eq!(run(&["-o", "3", "-e"]), "3\n4\n");
    assert_eq!(run(&["-o", "-2", "-e"]), "3\n4\n");
    assert_eq!(run(&["-o", "beginning", "-c", "2"]), "0\n1\n");
    assert_eq!(run(&["-o", "end", "-e"]), "");
    // Kafka 0.9's ListOffsets by time is "before": a time far ahead is the end.
    assert_eq!(run(&["-o", "@9999999999999", "-e"]), "");
}

#[test]
fn consume_with_a_group_commits_and_the_next_run_resumes() {
    let Some(brokers) = brokers() else { return };
    let topic = two_partitions(&brokers, "cli-consume-group");
    let group = unique("cli-group");
    let base = [
        "-b",
        brokers.as_str(),
        "-t",
        topic.as_str(),
        "-p",
        "0",
        "-f",
        "%o\\n",
    ];
    let run = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        let (result, out) = consume(&args);
        result.expect("consume");
        out
    };
    assert_eq!(run(&["--group", &group, "--commit", "-c", "2"]), "0\n1\n");
    // Without --commit the group's offset is read, not moved.
    assert_eq!(run(&["--group", &group, "-c", "1"]), "2\n");
    assert_eq!(run(&["--group", &group, "--commit", "-e"]), "2\n3\n4\n");
    assert_eq!(run(&["--group", &group, "-e"]), "");
}

#[test]
fn consume_reads_what_kcat_wrote() {
    let Some(brokers) = brokers() else { return };
    let kcat = std::env::var("GRETE_KCAT").expect("GRETE_KCAT");
    let topic = unique("cli-consume-kcat");
    create_topic(&brokers, &topic, 1);
    let mut child = Command::new(kcat)
        .args([
            "-P", "-b", &brokers, "-t", &topic, "-K", ":", "-z", "snappy",
        ])
        .args(["-X", "api.version.request=false"])
        .args(["-X", "broker.version.fallback=0.9.0.1"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("kcat");
    use std::io::Write;
    let input: String = (0..100).map(|i| format!("key{i}:value {i}\n")).collect();
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    assert!(child.wait().expect("kcat").success());
    let (result, out) = consume(&["-b", &brokers, "-t", &topic, "-e", "-f", "%k=%s\\n"]);
    assert_eq!(result.expect("consume"), "100 records\n");
    let expected: String = (0..100).map(|i| format!("key{i}=value {i}\n")).collect();
    assert_eq!(out, expected);
}

#[test]
fn consume_reads_several_topics_in_one_consumer() {
    let Some(brokers) = brokers() else { return };
    let a = two_partitions(&brokers, "cli-consume-multi-a");
    let b = two_partitions(&brokers, "cli-consume-multi-b");
    for runtime in ["tokio", "smol", "blocking"] {
        let args = [
            "-b",
            &brokers,
            "-t",
            &a,
            "-t",
            &b,
            "-e",
            "-f",
            "%t %p %o\n",
            "--runtime",
            runtime,
        ];
        let (result, out) = consume(&args);
        assert_eq!(result.expect("consume"), "16 records\n", "{runtime}");
        let mut expected: Vec<String> = Vec::new();
        for t in [&a, &b] {
            expected.extend((0..5).map(|o| format!("{t} 0 {o}")));
            expected.extend((0..3).map(|o| format!("{t} 1 {o}")));
        }
        expected.sort_unstable();
        assert_eq!(sorted_lines(&out), expected, "{runtime}");
    }
    // -o -N on each partition of each topic.
    let (result, out) = consume(&[
        "-b",
        &brokers,
        "-t",
        &a,
        "-t",
        &b,
        "-o",
        "-1",
        "-e",
        "-f",
        "%t %p %o\n",
    ]);
    assert_eq!(result.expect("consume"), "4 records\n");
    let mut expected = vec![
        format!("{a} 0 4"),
        format!("{a} 1 2"),
        format!("{b} 0 4"),
        format!("{b} 1 2"),
    ];
    expected.sort_unstable();
    assert_eq!(sorted_lines(&out), expected);
}

#[test]
fn consume_refuses_bad_options_with_a_clear_message() {
    let bad = |args: &[&str]| usage_error(consume(args).0);
    assert_eq!(bad(&["-t", "x"]), "give the brokers (-b)");
    assert!(bad(&["-b", "h:1", "-t", "x", "-o", "soon"]).starts_with("-o \"soon\""));
    assert!(bad(&["-b", "h:1", "-t", "x", "-f", "%z"]).contains("unknown %z"));
    assert_eq!(
        bad(&["-b", "h:1", "-t", "x", "--commit"]),
        "--commit needs --group"
    );
    assert!(bad(&["-b", "h:1", "-t", "x", "-p", "-1"]).starts_with("-p \"-1\""));
    assert_eq!(
        bad(&["-b", "h:1", "-t", "x", "-t", "y", "-p", "0"]),
        "-p needs a single topic (-t)"
    );
    assert_eq!(
        bad(&["-b", "h:1", "-t", "x", "-t", "x"]),
        "-t \"x\" given twice"
    );
}

#[test]
fn bench_consume_reports_rates_and_cpu_per_record() {
    let Some(brokers) = brokers() else { return };
    let topic = unique("cli-bench-consume");
    create_topic(&brokers, &topic, 2);
    let produced = produce::run_bench(
        [
            "-b", &brokers, "-t", &topic, "--count", "3000", "--size", "50", "--acks", "1",
        ]
        .map(String::from),
    )
    .expect("bench produce");
    assert!(produced.contains("delivered 3000"), "{produced}");
    for runtime in ["tokio", "smol", "blocking"] {
        let out = consume::run_bench_consume(
            [
                "-b",
                &brokers,
                "-t",
                &topic,
                "--count",
                "3000",
                "--runtime",
                runtime,
            ]
            .map(String::from),
        )
        .expect("bench consume");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(
            lines[0].starts_with("3000 records (150000 value bytes) in "),
            "{out}"
        );
        assert!(lines[0].ends_with(" MB/s"), "{out}");
        assert!(
            lines[1].starts_with("CPU (process, user+sys) ")
                && lines[1].ends_with(" us per record"),
            "{out}"
        );
    }
}
