//! Retrying what a lost connection broke: exponential backoff with jitter, and which
//! PostgreSQL errors a retry can fix.

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

/// Whether retrying can fix `e`: a connection that broke or could not be made
/// (network error, backend terminated, server shutting down or starting up, too many
/// connections), a serialization failure or a deadlock. Everything else (table or
/// column missing, type changed, permission denied, bad data) fails the query: the
/// same statement would fail again.
pub fn is_transient(e: &tokio_postgres::Error) -> bool {
    let Some(code) = e.code() else {
        // No SQLSTATE: I/O, a closed connection, a refused connect, a timeout.
        return true;
    };
    let code = code.code();
    code.starts_with("08") // connection exception
        || code.starts_with("53") // insufficient resources (too many connections, disk full)
        || code.starts_with("57P") // admin/crash shutdown, cannot connect now
        || code == "40001" // serialization failure
        || code == "40P01" // deadlock detected
        || code == "55P03" // lock not available
        || code == "58030" // io error
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
