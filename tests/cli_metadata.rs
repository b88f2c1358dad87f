//! The `grete` example CLI's `metadata` command against kcat, on the Kafka 0.9 single
//! broker and three-broker cluster: both must report the same brokers, topics,
//! partitions, leaders, replicas and ISR. Skips unless `GRETE_KAFKA09_BROKERS`,
//! `GRETE_KAFKA09_CLUSTER3_BROKERS` and `GRETE_KCAT` are set (fails instead with
//! `GRETE_REQUIRE_BROKERS=1`). kcat (librdkafka 2.0.2) cannot talk to tansu, so the
//! comparison is 0.9 only.

// A test may read the clock (clippy.toml forbids it in the core).
#![allow(clippy::disallowed_methods)]

#[allow(dead_code)]
#[path = "../examples/grete/cli.rs"]
mod cli;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

/// Per partition: leader, replicas, ISR.
type Partitions = BTreeMap<i32, (i32, Vec<i32>, Vec<i32>)>;

#[derive(Debug, Default, PartialEq, Eq)]
struct Metadata {
    brokers: BTreeMap<i32, String>,
    topics: BTreeMap<String, Partitions>,
}

fn env(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            if std::env::var("GRETE_REQUIRE_BROKERS").as_deref() == Ok("1") {
                panic!("{var} is not set but GRETE_REQUIRE_BROKERS=1");
            }
            eprintln!("skipped: {var} is not set");
            None
        }
    }
}

fn ids(s: &str) -> Vec<i32> {
    s.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .filter(|x| !x.trim().is_empty())
        .map(|x| x.trim().parse().expect("broker id"))
        .collect()
}

/// Reads the CLI's own output back.
fn parse_cli(text: &str) -> Metadata {
    let mut m = Metadata::default();
    let mut section = "";
    let mut topic = String::new();
    for line in text.lines() {
        if line.starts_with("brokers (") {
            section = "brokers";
        } else if line.starts_with("topics (") {
            section = "topics";
        } else if let Some(rest) = line.strip_prefix("    ") {
            let f: Vec<&str> = rest.split_whitespace().collect();
            let value = |key: &str| {
                f.iter()
                    .find_map(|x| x.strip_prefix(key))
                    .unwrap_or_else(|| panic!("{key} in {line:?}"))
            };
            let p: i32 = f[0].parse().expect("partition");
            let leader: i32 = value("leader=").parse().expect("leader");
            let entry = (leader, ids(value("replicas=")), ids(value("isr=")));
            m.topics.entry(topic.clone()).or_default().insert(p, entry);
        } else if let Some(rest) = line.strip_prefix("  ") {
            let f: Vec<&str> = rest.split_whitespace().collect();
            if section == "brokers" {
                m.brokers.insert(f[0].parse().expect("id"), f[1].to_owned());
            } else {
                topic = f[0].to_owned();
                m.topics.entry(topic.clone()).or_default();
            }
        }
    }
    m
}

/// Reads `kcat -L` output.
fn parse_kcat(text: &str) -> Metadata {
    let mut m = Metadata::default();
    let mut topic = String::new();
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("broker ") {
            // broker ID at HOST:PORT [(controller)]
            let f: Vec<&str> = rest.split_whitespace().collect();
            m.brokers.insert(f[0].parse().expect("id"), f[2].to_owned());
        } else if let Some(rest) = t.strip_prefix("topic \"") {
            let end = rest.find('"').expect("topic name");
            topic = rest[..end].to_owned();
            m.topics.entry(topic.clone()).or_default();
        } else if let Some(rest) = t.strip_prefix("partition ") {
            // partition P, leader L, replicas: a,b,c, isrs: a,b,c[, error]
            let (head, isrs) = rest.split_once(", isrs: ").expect("isrs");
            let (head, replicas) = head.split_once(", replicas: ").expect("replicas");
            let (p, leader) = head.split_once(", leader ").expect("leader");
            let isrs = isrs.split(", ").next().unwrap_or_default();
            let entry = (
                leader.trim().parse().expect("leader"),
                ids(replicas),
                ids(isrs),
            );
            m.topics
                .entry(topic.clone())
                .or_default()
                .insert(p.trim().parse().expect("partition"), entry);
        }
    }
    m
}

fn kcat(kcat: &str, brokers: &str) -> String {
    let out = Command::new(kcat)
        .args(["-L", "-b", brokers, "-m", "10"])
        .args(["-X", "api.version.request=false"])
        .args(["-X", "broker.version.fallback=0.9.0.1"])
        .output()
        .expect("run kcat");
    assert!(
        out.status.success(),
        "kcat: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("kcat output")
}

fn grete_cli(args: &[&str]) -> String {
    match cli::run(args.iter().map(|s| s.to_string())) {
        Ok(out) => out,
        Err(e) => panic!("grete {args:?}: {e:?}"),
    }
}

/// Makes sure the cluster has a topic with `partitions` partitions, all with leaders.
fn ensure_topic(brokers: &str, prefix: &str, partitions: usize) {
    let config = cli::parse(["metadata", "-b", brokers].map(String::from))
        .expect("options")
        .config;
    let client = grete_blocking::KafkaClient::connect(config).expect("connect");
    let name = format!("{prefix}-{}", std::process::id());
    let start = Instant::now();
    loop {
        let ready = client.topic(&name).map(|t| {
            t.partitions().len() == partitions && t.partitions().iter().all(|p| p.leader.is_some())
        });
        if matches!(ready, Ok(true)) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{name}: {ready:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    client.close();
}

/// Compares the CLI and kcat; metadata can move between the two reads (a topic being
/// created by someone else, an ISR change), so a few attempts are allowed.
fn compare(brokers: &str, runtime: &str) {
    let kcat_bin = env("GRETE_KCAT").expect("GRETE_KCAT");
    let mut last = None;
    for _ in 0..5 {
        let ours = parse_cli(&grete_cli(&[
            "metadata",
            "-b",
            brokers,
            "--runtime",
            runtime,
        ]));
        let theirs = parse_kcat(&kcat(&kcat_bin, brokers));
        assert!(
            !ours.brokers.is_empty() && !ours.topics.is_empty(),
            "{ours:?}"
        );
        if ours == theirs {
            return;
        }
        last = Some((ours, theirs));
        std::thread::sleep(Duration::from_secs(1));
    }
    let (ours, theirs) = last.expect("compared");
    assert_eq!(ours, theirs, "grete (left) and kcat (right) disagree");
}

#[test]
fn metadata_matches_kcat_single_broker() {
    let (Some(brokers), Some(_)) = (env("GRETE_KAFKA09_BROKERS"), env("GRETE_KCAT")) else {
        return;
    };
    ensure_topic(&brokers, "grete-cli", 1);
    for runtime in ["blocking", "tokio", "smol"] {
        compare(&brokers, runtime);
    }
    // One topic only.
    let name = format!("grete-cli-{}", std::process::id());
    let one = parse_cli(&grete_cli(&["metadata", "-b", &brokers, "-t", &name]));
    assert_eq!(one.topics.keys().collect::<Vec<_>>(), vec![&name]);
}

#[test]
fn metadata_matches_kcat_three_brokers() {
    let (Some(brokers), Some(_)) = (env("GRETE_KAFKA09_CLUSTER3_BROKERS"), env("GRETE_KCAT"))
    else {
        return;
    };
    ensure_topic(&brokers, "grete-cli3", 3);
    for runtime in ["blocking", "tokio", "smol"] {
        compare(&brokers, runtime);
    }
    let ours = parse_cli(&grete_cli(&["metadata", "-b", &brokers]));
    assert_eq!(
        ours.brokers.keys().copied().collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
}

#[test]
fn metadata_through_zookeeper_matches_brokers() {
    let (Some(zk), Some(brokers)) = (
        env("GRETE_KAFKA09_CLUSTER3_ZK"),
        env("GRETE_KAFKA09_CLUSTER3_BROKERS"),
    ) else {
        return;
    };
    let by_brokers = parse_cli(&grete_cli(&["metadata", "-b", &brokers]));
    assert_eq!(by_brokers.brokers.len(), 3);
    for runtime in ["blocking", "tokio", "smol"] {
        let by_zk = parse_cli(&grete_cli(&["metadata", "-z", &zk, "--runtime", runtime]));
        assert_eq!(by_zk.brokers, by_brokers.brokers, "{runtime}");
    }
}

#[test]
fn usage_errors() {
    let run = |args: &[&str]| cli::run(args.iter().map(|s| s.to_string()));
    assert!(matches!(run(&[]), Err(cli::CliError::Usage(m)) if m.is_empty()));
    assert!(matches!(run(&["metadata"]), Err(cli::CliError::Usage(_))));
    assert!(matches!(run(&["nonsense"]), Err(cli::CliError::Usage(_))));
    assert!(matches!(
        run(&["metadata", "-b", "h:1", "--runtime", "rayon"]),
        Err(cli::CliError::Usage(_))
    ));
    assert!(matches!(
        run(&["metadata", "-b"]),
        Err(cli::CliError::Usage(_))
    ));
    assert!(matches!(
        run(&["metadata", "-b", "h:1", "-z", "z:2"]),
        Err(cli::CliError::Usage(_))
    ));
    assert!(matches!(
        run(&["metadata", "-b", "h:99999"]),
        Err(cli::CliError::Usage(_))
    ));
    let o = cli::parse(
        [
            "metadata",
            "-b",
            "a:1,b:2",
            "--broker-version=2.8",
            "--timeout",
            "3",
            "-t",
            "x",
        ]
        .map(String::from),
    )
    .expect("valid");
    assert_eq!(o.topics, vec!["x".to_owned()]);
    assert_eq!(o.config.request_timeout, Duration::from_secs(3));
    assert_eq!(o.config.broker_version.to_string(), "2.8.0");
}

#[test]
fn kcat_parser_reads_kcat_output() {
    let text = "Metadata for all topics (from broker 0: 127.0.0.1:1/0):\n 2 brokers:\n  broker 1 at h:1 (controller)\n  broker 2 at h:2\n 1 topics:\n  topic \"t\" with 2 partitions:\n    partition 0, leader 1, replicas: 1,2, isrs: 2,1\n    partition 1, leader -1, replicas: 2, isrs: , Broker: Leader not available\n";
    let m = parse_kcat(text);
    assert_eq!(m.brokers.len(), 2);
    assert_eq!(m.topics["t"][&0], (1, vec![1, 2], vec![2, 1]));
    assert_eq!(m.topics["t"][&1], (-1, vec![2], vec![]));
}
