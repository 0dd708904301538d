//! Per-identity rate limits: a token bucket per identity, refilled continuously.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets kept before full (idle) ones are dropped.
const TIDY_AT: usize = 10_000;

/// Token buckets keyed by identity: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    /// `per_second` tokens a second with bursts of `burst`; `None` if `per_second` is 0
    /// (no limit).
    pub fn new(per_second: f64, burst: f64) -> Option<Self> {
        (per_second > 0.0).then(|| Self {
            rate: per_second,
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Takes `cost` tokens from `identity`'s bucket, or says how long until they would
    /// be there (nothing is taken then). A cost above the burst can never pass.
    pub fn take(&self, identity: &str, cost: u32) -> Result<(), Duration> {
        self.take_at(identity, cost, Instant::now())
    }

    fn take_at(&self, identity: &str, cost: u32, now: Instant) -> Result<(), Duration> {
        let cost = f64::from(cost);
        let Ok(mut buckets) = self.buckets.lock() else {
            // A poisoned lock: fail open rather than refuse everyone.
            return Ok(());
        };
        if buckets.len() >= TIDY_AT {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.updated).as_secs_f64() * rate < burst
            });
        }
        let bucket = buckets.entry(identity.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= cost {
            bucket.tokens -= cost;
            return Ok(());
        }
        if cost > self.burst {
            return Err(Duration::from_secs(3600));
        }
        Err(Duration::from_secs_f64((cost - bucket.tokens) / self.rate))
    }
}

/// The service's limiters.
#[derive(Debug, Default)]
pub struct Limits {
    /// Issuance and renewal, per identity.
    pub issuance: Option<RateLimiter>,
    /// KMS operations, per identity.
    pub kms: Option<RateLimiter>,
}

impl Limits {
    /// The limiters of `[limits]`.
    pub fn from_config(section: &crate::config::LimitsSection) -> Self {
        Self {
            issuance: RateLimiter::new(
                f64::from(section.issuance_per_minute) / 60.0,
                f64::from(section.issuance_per_minute),
            ),
            kms: RateLimiter::new(
                f64::from(section.kms_per_second),
                f64::from(section.kms_per_second),
            ),
        }
    }
}

/// Whole seconds for `Retry-After`, at least 1.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate_per_identity() {
        let limiter = RateLimiter::new(2.0, 3.0).unwrap();
        let start = Instant::now();
        for _ in 0..3 {
            limiter.take_at("a", 1, start).unwrap();
        }
        let wait = limiter.take_at("a", 1, start).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        // Another identity has its own bucket.
        limiter.take_at("b", 3, start).unwrap();
        // Half a second refills one token.
        let later = start + Duration::from_millis(500);
        limiter.take_at("a", 1, later).unwrap();
        assert!(limiter.take_at("a", 1, later).is_err());
        // Never more than the burst, however long the wait.
        let much_later = later + Duration::from_secs(3600);
        limiter.take_at("a", 3, much_later).unwrap();
        assert!(limiter.take_at("a", 1, much_later).is_err());
        // A cost above the burst never passes.
        assert!(limiter.take_at("c", 4, much_later).is_err());
        assert!(RateLimiter::new(0.0, 10.0).is_none());
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_secs(2)), 2);
    }
}
