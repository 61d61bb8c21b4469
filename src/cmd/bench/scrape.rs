//! `bench --scrapes N`: times the agent's `/metrics` while it samples.
//!
//! A thread asks for `/metrics` as Prometheus does (OpenMetrics accepted,
//! one connection per scrape), N times spread evenly over the measured
//! window, and times each from connect to the last byte of the answer.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{quantiles, Quantiles};

/// How `/metrics` answered.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScrapeFigures {
    /// Scrapes answered 200.
    pub scrapes: u64,
    /// Scrapes that failed (other status, connection error).
    pub failures: u64,
    /// Connect to last byte.
    pub duration: Quantiles,
    /// The largest answer, and its series (lines that are not comments).
    pub body_bytes: u64,
    pub series: u64,
}

/// The scraping thread.
pub struct Scraper {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<ScrapeFigures>,
}

/// What Prometheus 2.x sends.
const ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

impl Scraper {
    pub fn start(addr: SocketAddr, n: u32, window: Duration) -> Scraper {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let every = window / n.max(1);
        let thread = std::thread::spawn(move || {
            let mut times = Vec::new();
            let mut f = ScrapeFigures::default();
            let start = Instant::now();
            for i in 0..n {
                let due = start + every * i;
                while Instant::now() < due {
                    if flag.load(Ordering::Relaxed) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20).min(every));
                }
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                let t = Instant::now();
                match scrape(addr) {
                    Ok(body) => {
                        times.push(t.elapsed().as_secs_f64() * 1000.0);
                        f.scrapes += 1;
                        if body.len() as u64 > f.body_bytes {
                            f.body_bytes = body.len() as u64;
                            f.series = body
                                .split(|b| *b == b'\n')
                                .filter(|l| !l.is_empty() && l[0] != b'#')
                                .count() as u64;
                        }
                    }
                    Err(_) => f.failures += 1,
                }
            }
            f.duration = quantiles(times);
            f
        });
        Scraper { stop, thread }
    }

    /// Stops scraping and returns the figures.
    pub fn finish(self) -> ScrapeFigures {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// One scrape: the body of a 200 answer.
fn scrape(addr: SocketAddr) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAccept: {ACCEPT}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    if !raw.starts_with(b"HTTP/1.1 200") {
        return Err(std::io::Error::other("not 200"));
    }
    Ok(raw.split_off(end + 4))
}
