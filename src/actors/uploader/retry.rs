//! Retry = classification + policy.
//!
//! [`UploadError::is_retriable`] decides *what* is tried again: server
//! errors (5xx), 408, 429, timeouts and connection or TLS failures, because
//! they pass. Other 4xx mean the receiver will never take this batch.
//! [`Backoff`] decides *when*: capped exponential growth with full jitter,
//! i.e. attempt n waits a uniform random time in `[0, min(max, initial ×
//! multiplier^n)]`, so many agents that lost the same receiver do not come
//! back in lockstep. A `Retry-After` from the receiver overrides the delay.

use std::time::{Duration, SystemTime};

use crate::config::RetrySettings;

/// Why an upload attempt failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UploadError {
    #[error("receiver answered HTTP {status}: {body}")]
    Status {
        status: u16,
        retry_after: Option<Duration>,
        body: String,
    },
    #[error("request timed out")]
    Timeout,
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    #[error("bad request URL: {0}")]
    Url(String),
    #[error("{0}")]
    Other(String),
}

impl UploadError {
    /// Whether the same batch may succeed later.
    pub fn is_retriable(&self) -> bool {
        match self {
            UploadError::Status { status, .. } => {
                *status >= 500 || *status == 408 || *status == 429
            }
            UploadError::Timeout
            | UploadError::Connect(_)
            | UploadError::Tls(_)
            | UploadError::Other(_) => true,
            UploadError::Url(_) => false,
        }
    }

    /// A stable name for logs and metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            UploadError::Status { status, .. } if *status >= 500 => "http_5xx",
            UploadError::Status { status: 429, .. } => "http_429",
            UploadError::Status { .. } => "http_4xx",
            UploadError::Timeout => "timeout",
            UploadError::Connect(_) => "connect",
            UploadError::Tls(_) => "tls",
            UploadError::Url(_) => "url",
            UploadError::Other(_) => "other",
        }
    }

    /// The delay the receiver asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            UploadError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The longest `Retry-After` obeyed.
pub const RETRY_AFTER_LIMIT: Duration = Duration::from_secs(15 * 60);

/// The retry schedule for one batch at a time.
pub struct Backoff {
    settings: RetrySettings,
    attempt: u32,
    rng: Jitter,
}

/// Uniform numbers in [0, 1): xorshift64*, seeded from the clock. Good
/// enough to spread retries; not for anything secret.
pub struct Jitter(u64);

impl Jitter {
    pub fn from_clock() -> Self {
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15)
            ^ (std::process::id() as u64) << 32;
        Jitter(seed | 1)
    }

    #[cfg(test)]
    pub fn seeded(seed: u64) -> Self {
        Jitter(seed | 1)
    }

    fn next(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Backoff {
    pub fn new(settings: RetrySettings, rng: Jitter) -> Self {
        Backoff {
            settings,
            attempt: 0,
            rng,
        }
    }

    /// The cap of the next delay, before jitter.
    pub fn ceiling(&self) -> Duration {
        let grow = self.settings.multiplier.powi(self.attempt.min(64) as i32);
        let ms = (self.settings.initial.as_millis() as f64 * grow)
            .min(self.settings.max.as_millis() as f64);
        Duration::from_millis(ms as u64)
    }

    /// The delay before the next attempt, or `None` when the retries allowed
    /// by `max_retries` are used up.
    pub fn next_delay(&mut self, retry_after: Option<Duration>) -> Option<Duration> {
        if let Some(max) = self.settings.max_retries {
            if self.attempt >= max {
                return None;
            }
        }
        let ceiling = self.ceiling();
        self.attempt += 1;
        if let Some(wait) = retry_after {
            // The receiver knows best, even past our own cap (coming back
            // sooner only earns another 429); a date far in the future is
            // bounded so a wrong clock cannot stall the target for hours.
            return Some(wait.min(RETRY_AFTER_LIMIT));
        }
        Some(Duration::from_millis(
            (ceiling.as_millis() as f64 * self.rng.next()) as u64,
        ))
    }

    /// Attempts failed so far for the current batch.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// After a success: the next failure starts from `initial` again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    pub fn set_settings(&mut self, settings: RetrySettings) {
        self.settings = settings;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(max_retries: Option<u32>) -> RetrySettings {
        RetrySettings {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(1000),
            multiplier: 2.0,
            max_retries,
        }
    }

    #[test]
    fn ceilings_grow_then_cap() {
        let mut b = Backoff::new(settings(None), Jitter::seeded(7));
        let mut ceilings = Vec::new();
        for _ in 0..6 {
            ceilings.push(b.ceiling().as_millis());
            let d = b.next_delay(None).unwrap();
            assert!(d <= Duration::from_millis(*ceilings.last().unwrap() as u64));
        }
        assert_eq!(ceilings, vec![100, 200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.ceiling().as_millis(), 100);
    }

    #[test]
    fn jitter_spreads_over_the_whole_range() {
        let mut b = Backoff::new(settings(None), Jitter::seeded(42));
        let delays: Vec<u128> = (0..200)
            .map(|_| {
                b.reset();
                b.next_delay(None).unwrap().as_millis()
            })
            .collect();
        assert!(delays.iter().any(|d| *d < 25));
        assert!(delays.iter().any(|d| *d > 75));
        assert!(delays.iter().all(|d| *d <= 100));
    }

    #[test]
    fn retry_limit_and_retry_after() {
        let mut b = Backoff::new(settings(Some(2)), Jitter::seeded(1));
        assert_eq!(
            b.next_delay(Some(Duration::from_millis(300))),
            Some(Duration::from_millis(300))
        );
        assert_eq!(
            b.next_delay(Some(Duration::from_secs(60))),
            Some(Duration::from_secs(60)),
            "Retry-After is obeyed past retry_max_ms"
        );
        assert_eq!(b.next_delay(None), None);
    }

    #[test]
    fn classification() {
        let status = |s| UploadError::Status {
            status: s,
            retry_after: None,
            body: String::new(),
        };
        for s in [500, 502, 503, 504, 408, 429] {
            assert!(status(s).is_retriable(), "{s}");
        }
        for s in [400, 401, 403, 404, 413, 422] {
            assert!(!status(s).is_retriable(), "{s}");
        }
        assert!(UploadError::Timeout.is_retriable());
        assert!(UploadError::Connect("refused".into()).is_retriable());
        assert!(UploadError::Tls("bad cert".into()).is_retriable());
        assert_eq!(status(503).kind(), "http_5xx");
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
