//! What the simulation tests share: the seeds to run, a small deterministic die, and the
//! client settings of a modern broker.
#![allow(dead_code)]

use std::time::Duration;

use grete::config::{BrokerVersion, ClientConfig};

/// The seeds to run: `GRETE_SIM_SEEDS=n` runs `0..n`, `GRETE_SIM_SEED=s` only `s`.
pub fn seeds() -> std::ops::Range<u64> {
    if let Some(s) = std::env::var("GRETE_SIM_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        return s..s + 1;
    }
    let n = std::env::var("GRETE_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    0..n
}

pub struct Dice(pub u64);

impl Dice {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

pub fn modern(c: &mut ClientConfig) {
    c.broker_version = BrokerVersion::parse("2.8").unwrap();
    c.request_timeout = Duration::from_secs(5);
    c.connect_timeout = Duration::from_secs(1);
    c.reconnect_backoff_max = Duration::from_secs(1);
}
