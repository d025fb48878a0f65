//! Per-client-IP token buckets: each IP gets `rate` tokens per second up to a burst of
//! `burst`; a request takes one token or is refused with `429 rate_limited`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Largest number of IPs tracked; past it, buckets that are full again are dropped.
const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// A token bucket per client IP.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl RateLimiter {
    /// `rate` requests per second per IP, bursts up to `burst` (at least 1).
    pub fn new(rate: f64, burst: f64) -> Self {
        Self {
            rate: rate.max(0.0),
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take a token for `ip` at `now`; false when the bucket is empty.
    pub fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        let Ok(mut buckets) = self.buckets.lock() else {
            return true;
        };
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(&ip) {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * rate < burst
            });
        }
        let b = buckets.entry(ip).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate).min(self.burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refill_per_ip() {
        let l = RateLimiter::new(2.0, 2.0);
        let t0 = Instant::now();
        let a: IpAddr = "127.0.0.1".parse().unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let b = IpAddr::from([127, 0, 0, 2]);
        assert!(l.allow(a, t0));
        assert!(l.allow(a, t0));
        assert!(
            !l.allow(a, t0),
            "third request in the same instant is over the burst"
        );
        assert!(l.allow(b, t0), "another IP has its own bucket");
        assert!(
            !l.allow(a, t0 + Duration::from_millis(100)),
            "0.2 tokens is not enough"
        );
        assert!(
            l.allow(a, t0 + Duration::from_millis(600)),
            "refilled at 2/s"
        );
    }
}
