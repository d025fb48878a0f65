//! Prometheus metrics, written in the text exposition format (version 0.0.4) by hand: a few
//! counters, gauges and one histogram do not need a metrics framework.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `pith_gateway_requests_total` | counter | `route`, `method`, `status` |
//! | `pith_gateway_request_duration_seconds` | histogram | `route` |
//! | `pith_gateway_worker_healthy` | gauge (0/1) | `worker` |
//! | `pith_gateway_worker_in_flight` | gauge | `worker` |
//! | `pith_gateway_failovers_total` | counter | `reason` (`connect`, `draining`) |
//! | `pith_gateway_rate_limited_total` | counter | |
//! | `pith_gateway_invocations_total` | counter | `outcome` |
//! | `pith_gateway_receipts_total` | counter | `outcome` (`stored`, `rejected` (claims), `missing`, `bad_signature_not_served` (signature checked when read back)) |

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram buckets, seconds.
pub const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The gateway's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    failovers_connect: AtomicU64,
    failovers_draining: AtomicU64,
    failovers_model: AtomicU64,
    rate_limited: AtomicU64,
    invocations: Mutex<BTreeMap<&'static str, u64>>,
    receipts: Mutex<BTreeMap<&'static str, u64>>,
}

/// Why an invocation moved to another worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailoverReason {
    /// The connection could not be made: nothing was sent.
    Connect,
    /// The worker refused with `draining` before running anything.
    Draining,
    /// The worker does not serve the inference program's model (`model_unavailable`).
    Model,
}

/// A worker's state as the metrics show it.
#[derive(Debug, Clone)]
pub struct WorkerGauge {
    /// Address.
    pub address: String,
    /// Passing health checks.
    pub healthy: bool,
    /// Invocations relayed to it right now.
    pub in_flight: u64,
}

impl Metrics {
    /// Count a finished request and its latency.
    pub fn observe_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((route.to_string(), method.to_string(), status))
                .or_default() += 1;
        }
        if let Ok(mut m) = self.latency.lock() {
            let h = m.entry(route.to_string()).or_default();
            let secs = elapsed.as_secs_f64();
            for (i, bound) in BUCKETS.iter().enumerate() {
                if secs <= *bound {
                    if let Some(c) = h.counts.get_mut(i) {
                        *c += 1;
                    }
                }
            }
            h.count += 1;
            h.sum += secs;
        }
    }

    /// Count a failover.
    pub fn failover(&self, reason: FailoverReason) {
        match reason {
            FailoverReason::Connect => self.failovers_connect.fetch_add(1, Ordering::Relaxed),
            FailoverReason::Draining => self.failovers_draining.fetch_add(1, Ordering::Relaxed),
            FailoverReason::Model => self.failovers_model.fetch_add(1, Ordering::Relaxed),
        };
    }

    /// Count a request refused by the rate limiter.
    pub fn rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    /// Count an invocation outcome (`ok`, `no_worker`, `failed_after_delivery`, ...).
    pub fn invocation(&self, outcome: &'static str) {
        if let Ok(mut m) = self.invocations.lock() {
            *m.entry(outcome).or_default() += 1;
        }
    }

    /// Count a receipt outcome (`stored`, `rejected`, `missing`, `in_stream`).
    pub fn receipt(&self, outcome: &'static str) {
        if let Ok(mut m) = self.receipts.lock() {
            *m.entry(outcome).or_default() += 1;
        }
    }

    /// Failovers so far (all reasons).
    pub fn failovers(&self) -> u64 {
        self.failovers_connect.load(Ordering::Relaxed)
            + self.failovers_draining.load(Ordering::Relaxed)
            + self.failovers_model.load(Ordering::Relaxed)
    }

    /// The text exposition, with the workers' gauges as they are now.
    pub fn render(&self, workers: &[WorkerGauge]) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP pith_gateway_requests_total HTTP requests answered, by route template, method and status."
        );
        let _ = writeln!(out, "# TYPE pith_gateway_requests_total counter");
        if let Ok(m) = self.requests.lock() {
            for ((route, method, status), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "pith_gateway_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                    escape(route),
                    escape(method)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP pith_gateway_request_duration_seconds Time to answer a request, by route template."
        );
        let _ = writeln!(
            out,
            "# TYPE pith_gateway_request_duration_seconds histogram"
        );
        if let Ok(m) = self.latency.lock() {
            for (route, h) in m.iter() {
                let r = escape(route);
                for (bound, c) in BUCKETS.iter().zip(h.counts.iter()) {
                    let _ = writeln!(
                        out,
                        "pith_gateway_request_duration_seconds_bucket{{route=\"{r}\",le=\"{bound}\"}} {c}"
                    );
                }
                let _ = writeln!(
                    out,
                    "pith_gateway_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    out,
                    "pith_gateway_request_duration_seconds_sum{{route=\"{r}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    out,
                    "pith_gateway_request_duration_seconds_count{{route=\"{r}\"}} {}",
                    h.count
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP pith_gateway_worker_healthy Whether the worker passes the gateway's health checks."
        );
        let _ = writeln!(out, "# TYPE pith_gateway_worker_healthy gauge");
        for w in workers {
            let _ = writeln!(
                out,
                "pith_gateway_worker_healthy{{worker=\"{}\"}} {}",
                w.address,
                u8::from(w.healthy)
            );
        }
        let _ = writeln!(
            out,
            "# HELP pith_gateway_worker_in_flight Invocations relayed to the worker and not yet answered."
        );
        let _ = writeln!(out, "# TYPE pith_gateway_worker_in_flight gauge");
        for w in workers {
            let _ = writeln!(
                out,
                "pith_gateway_worker_in_flight{{worker=\"{}\"}} {}",
                w.address, w.in_flight
            );
        }
        let _ = writeln!(
            out,
            "# HELP pith_gateway_failovers_total Invocations moved to another worker because the first never received them."
        );
        let _ = writeln!(out, "# TYPE pith_gateway_failovers_total counter");
        let _ = writeln!(
            out,
            "pith_gateway_failovers_total{{reason=\"connect\"}} {}",
            self.failovers_connect.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "pith_gateway_failovers_total{{reason=\"draining\"}} {}",
            self.failovers_draining.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "pith_gateway_failovers_total{{reason=\"model\"}} {}",
            self.failovers_model.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP pith_gateway_rate_limited_total Requests refused by the per-IP rate limit."
        );
        let _ = writeln!(out, "# TYPE pith_gateway_rate_limited_total counter");
        let _ = writeln!(
            out,
            "pith_gateway_rate_limited_total {}",
            self.rate_limited.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP pith_gateway_invocations_total Invocations by outcome."
        );
        let _ = writeln!(out, "# TYPE pith_gateway_invocations_total counter");
        if let Ok(m) = self.invocations.lock() {
            for (k, n) in m.iter() {
                let _ = writeln!(out, "pith_gateway_invocations_total{{outcome=\"{k}\"}} {n}");
            }
        }
        let _ = writeln!(
            out,
            "# HELP pith_gateway_receipts_total Worker receipts by outcome of the gateway's check."
        );
        let _ = writeln!(out, "# TYPE pith_gateway_receipts_total counter");
        if let Ok(m) = self.receipts.lock() {
            for (k, n) in m.iter() {
                let _ = writeln!(out, "pith_gateway_receipts_total{{outcome=\"{k}\"}} {n}");
            }
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.observe_request("/v1/health", "GET", 200, Duration::from_micros(700));
        m.observe_request("/v1/health", "GET", 200, Duration::from_millis(30));
        let text = m.render(&[]);
        assert!(text.contains(
            "pith_gateway_requests_total{route=\"/v1/health\",method=\"GET\",status=\"200\"} 2"
        ));
        assert!(text.contains(
            "pith_gateway_request_duration_seconds_bucket{route=\"/v1/health\",le=\"0.0005\"} 0"
        ));
        assert!(text.contains(
            "pith_gateway_request_duration_seconds_bucket{route=\"/v1/health\",le=\"0.001\"} 1"
        ));
        assert!(text.contains(
            "pith_gateway_request_duration_seconds_bucket{route=\"/v1/health\",le=\"0.05\"} 2"
        ));
        assert!(text.contains(
            "pith_gateway_request_duration_seconds_bucket{route=\"/v1/health\",le=\"+Inf\"} 2"
        ));
    }
}
