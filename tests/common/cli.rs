//! What the CLI tests share: the brokers `scripts/test` started, unique topic names, and
//! topics created on the Kafka 0.9 single broker (through the including test's `cli`).
#![allow(dead_code)]

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::cli;

pub fn env(var: &str) -> Option<String> {
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

/// The 0.9 broker, when it and kcat are there.
pub fn brokers() -> Option<String> {
    let brokers = env("GRETE_KAFKA09_BROKERS")?;
    env("GRETE_KCAT")?;
    Some(brokers)
}

pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// Creates `topic` with `partitions` partitions on the 0.9 single broker (0.9 has no
/// CreateTopics: the scripts run kafka-topics.sh), and waits until each has a leader.
pub fn create_topic(brokers: &str, topic: &str, partitions: u32) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kafka09");
    let out = Command::new("bash")
        .args([script, "create-topic", topic, &partitions.to_string(), "1"])
        .output()
        .expect("run scripts/kafka09");
    assert!(
        out.status.success(),
        "create-topic: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let options = cli::parse(["metadata", "-b", brokers, "-t", topic].map(String::from))
        .expect("metadata options");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let cluster = cli::fetch(&options).expect("metadata");
        let ready = cluster.topic(topic).is_some_and(|t| {
            t.partitions.len() == partitions as usize
                && t.partitions.values().all(|p| p.leader.is_some())
        });
        if ready {
            return;
        }
        assert!(Instant::now() < deadline, "{topic}: no leaders after 60 s");
        std::thread::sleep(Duration::from_millis(200));
    }
}
