//! A small seedable pseudo-random generator (splitmix64), so that the core's choices
//! (reconnect jitter, SCRAM nonces, broker picks) are the same for the same seed.
//!
//! It is not a cryptographic generator. The SCRAM nonce only has to be unpredictable to an
//! observer who does not know the seed: by default ([`ClientConfig::rng_seed`] `None`) the
//! seed comes from the operating system's entropy (through the standard library's
//! `RandomState`, which is seeded from the OS), so that no two clients draw the same
//! nonces or the same reconnect jitter; a fixed seed makes a run reproducible.
//!
//! [`ClientConfig::rng_seed`]: crate::config::ClientConfig::rng_seed

/// A splitmix64 generator. `fork` derives independent child generators, one per
/// sub-state-machine, so that adding draws in one does not shift the others.
///
/// ```
/// use grete::rng::Rng;
/// let mut a = Rng::new(7);
/// let mut b = Rng::new(7);
/// assert_eq!(a.next_u64(), b.next_u64());
/// ```
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

impl Rng {
    /// A generator from a seed. Every seed, including 0, is fine.
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// A generator seeded from the operating system's entropy: every call gives another
    /// seed. (The standard library seeds `RandomState` from the OS once per thread and
    /// changes its keys for every new one; two of them hash the same input differently.)
    pub fn from_entropy() -> Rng {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(GOLDEN);
        Rng::new(hasher.finish())
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Multiply-shift: unbiased enough for jitter and picks, no loop.
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// A float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Fills `out` with random bytes.
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }

    /// A child generator with its own seed, derived from (and advancing) this one.
    pub fn fork(&mut self) -> Rng {
        Rng::new(self.next_u64() ^ 0x5851_f42d_4c95_7f2d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_different_seed_different() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(1);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(1);
                move |_| r.next_u64()
            })
            .collect();
        let c: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(2);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn entropy_seeds_differ() {
        let draws: std::collections::BTreeSet<u64> =
            (0..8).map(|_| Rng::from_entropy().next_u64()).collect();
        assert_eq!(draws.len(), 8);
    }

    #[test]
    fn below_stays_in_range_and_spreads() {
        let mut r = Rng::new(42);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            let x = r.below(10);
            assert!(x < 10);
            seen[x as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
        assert_eq!(r.below(0), 0);
        let u = r.unit();
        assert!((0.0..1.0).contains(&u));
    }

    #[test]
    fn forks_are_independent_of_later_parent_draws() {
        let mut p1 = Rng::new(9);
        let mut c1 = p1.fork();
        let mut p2 = Rng::new(9);
        let mut c2 = p2.fork();
        p2.next_u64();
        assert_eq!(c1.next_u64(), c2.next_u64());
        let mut bytes = [0u8; 13];
        c1.fill(&mut bytes);
        assert!(bytes.iter().any(|&b| b != 0));
    }
}
