//! The collector's limits: request size, batch size, and a per-site rate (token bucket).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The most reports one request may carry (the SDK's batches are smaller).
pub const MAX_BATCH: usize = 50;
/// The most contributions one report may carry: the six statistics and up to 26 experiments
/// (the SDK sends one per statistic and running experiment).
pub const MAX_CONTRIBUTIONS: usize = 32;
/// How long reading one request body may take.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Per-site token bucket over reports: `per_minute` reports a minute on average, bursts up to
/// one minute's worth (and at least one full batch).
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    capacity: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> Self {
        let per_minute = f64::from(per_minute.max(1));
        RateLimiter { per_second: per_minute / 60.0, capacity: per_minute.max(MAX_BATCH as f64), buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes `n` reports' worth from `site`'s bucket, or says how long until it could.
    pub fn take(&self, site: &str, n: usize) -> Result<(), Duration> {
        self.take_at(site, n, Instant::now())
    }

    fn take_at(&self, site: &str, n: usize, now: Instant) -> Result<(), Duration> {
        let n = n as f64;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = buckets.entry(site.to_owned()).or_insert(Bucket { tokens: self.capacity, at: now });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.capacity);
        bucket.at = now;
        if bucket.tokens >= n {
            bucket.tokens -= n;
            Ok(())
        } else {
            let missing = n.min(self.capacity) - bucket.tokens;
            Err(Duration::from_secs_f64((missing / self.per_second).max(0.0)))
        }
    }
}

/// Whole seconds for `Retry-After` (at least 1).
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs_f64().ceil() as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refills_at_the_rate() {
        let limiter = RateLimiter::new(60);
        let t0 = Instant::now();
        assert!(limiter.take_at("s", 60, t0).is_ok());
        let wait = limiter.take_at("s", 1, t0).unwrap_err();
        assert_eq!(retry_after_secs(wait), 1);
        assert!(limiter.take_at("other", 1, t0).is_ok(), "sites have their own buckets");
        assert!(limiter.take_at("s", 2, t0 + Duration::from_secs(2)).is_ok());
        assert_eq!(retry_after_secs(limiter.take_at("s", 10, t0 + Duration::from_secs(2)).unwrap_err()), 10);
    }
}
