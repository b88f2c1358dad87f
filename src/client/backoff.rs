//! Reconnect backoff: exponential, capped, with jitter from the client's seeded rng.

use std::time::{Duration, Instant};

use crate::rng::Rng;

/// The reconnect state of one broker address.
#[derive(Debug, Clone, Default)]
pub(crate) struct Backoff {
    /// Consecutive failures since the last successful connection.
    pub(crate) failures: u32,
    /// No new connection before this instant.
    pub(crate) until: Option<Instant>,
    /// The last attempt failed for a reason retrying cannot fix: until `until`, requests
    /// for this address fail with it instead of waiting.
    pub(crate) fatal: Option<crate::error::Error>,
}

impl Backoff {
    /// Records a failure at `now`; returns the delay before the next attempt:
    /// `base * 2^(failures-1)`, capped at `max`, times a jitter factor in `[0.8, 1.2)`
    /// (and capped at `max` again).
    pub(crate) fn fail(
        &mut self,
        now: Instant,
        base: Duration,
        max: Duration,
        rng: &mut Rng,
    ) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let d = delay(self.failures, base, max, rng);
        self.until = Some(now + d);
        d
    }

    /// A connection succeeded.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
        self.until = None;
        self.fatal = None;
    }

    /// Time passed: the delay is over at `now` (and a fatal error with it: the next
    /// attempt may succeed, a certificate may have been fixed).
    pub(crate) fn expire(&mut self, now: Instant) {
        if self.until.is_some_and(|t| t <= now) {
            self.until = None;
            self.fatal = None;
        }
    }

    /// The fatal error of the last attempt while the delay runs.
    pub(crate) fn fatal(&self) -> Option<&crate::error::Error> {
        self.until.and(self.fatal.as_ref())
    }
}

/// The delay after `failures` consecutive failures.
pub(crate) fn delay(failures: u32, base: Duration, max: Duration, rng: &mut Rng) -> Duration {
    let exp = failures.saturating_sub(1).min(30);
    let raw = base.saturating_mul(1u32 << exp).min(max);
    let jitter = 0.8 + 0.4 * rng.unit();
    raw.mul_f64(jitter).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_with_bounded_jitter_and_a_cap() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(10);
        let mut rng = Rng::new(3);
        let mut prev_raw = Duration::ZERO;
        for n in 1..=12u32 {
            let d = delay(n, base, max, &mut rng);
            let raw = (base * 2u32.pow(n - 1)).min(max);
            assert!(
                d >= raw.mul_f64(0.8) && d <= raw.mul_f64(1.2).min(max),
                "{n}: {d:?}"
            );
            assert!(raw >= prev_raw);
            prev_raw = raw;
        }
        assert!(delay(1000, base, max, &mut rng) <= max);
    }

    #[test]
    fn jitter_is_deterministic_per_seed() {
        let run = |seed| {
            let mut rng = Rng::new(seed);
            let mut b = Backoff::default();
            let t0 = Instant::now();
            (0..6)
                .map(|_| {
                    b.fail(
                        t0,
                        Duration::from_millis(100),
                        Duration::from_secs(10),
                        &mut rng,
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
        let mut b = Backoff::default();
        b.fail(
            Instant::now(),
            Duration::from_millis(1),
            Duration::from_millis(2),
            &mut Rng::new(0),
        );
        b.reset();
        assert_eq!((b.failures, b.until, b.fatal), (0, None, None));
    }
}
