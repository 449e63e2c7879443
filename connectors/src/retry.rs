//! Retrying what a lost connection broke: exponential backoff with jitter. Which errors
//! a retry can fix is [`crate::error::Transience`].

use std::time::Duration;

use rand::Rng;

/// The first wait after a failure (ms).
pub const INITIAL_BACKOFF_MS: u64 = 100;
/// The longest wait between two attempts (ms).
pub const MAX_BACKOFF_MS: u64 = 30_000;

/// Exponential backoff with "equal jitter" (AWS architecture blog): attempt n waits a
/// random time in [d/2, d] where d = min(100 ms x 2^n, 30 s), so many queries that lost
/// the same database do not reconnect in lockstep.
#[derive(Debug, Default)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    /// The wait before the next attempt; each call doubles the ceiling up to 30 s.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = INITIAL_BACKOFF_MS.saturating_mul(1u64 << self.attempt.min(20)).min(MAX_BACKOFF_MS);
        self.attempt = self.attempt.saturating_add(1);
        let ms = rand::rng().random_range(ceiling / 2..=ceiling);
        Duration::from_millis(ms)
    }

    /// Attempts that failed so far.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_ceiling_with_jitter() {
        let mut b = Backoff::default();
        let first = b.next_delay().as_millis();
        assert!((50..=100).contains(&first), "{first}");
        let second = b.next_delay().as_millis();
        assert!((100..=200).contains(&second), "{second}");
        for _ in 0..20 {
            let d = b.next_delay().as_millis();
            assert!(d <= 30_000, "{d}");
        }
        let last = b.next_delay().as_millis();
        assert!((15_000..=30_000).contains(&last), "{last}");
        assert_eq!(b.attempts(), 23);
    }
}
