//! A small HTTP receiver for the tests: records every request (body
//! gunzipped) and answers from a script, so retry and refusal paths can be
//! driven exactly. Serves keep-alive connections, as awc reuses them.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request as received.
#[derive(Debug, Clone)]
pub struct Request {
    pub at: Instant,
    pub path: String,
    pub headers: HashMap<String, String>,
    /// The body after gunzip (when Content-Encoding: gzip).
    pub body: Vec<u8>,
    /// The status this request was answered with.
    pub status: u16,
}

impl Request {
    pub fn header(&self, k: &str) -> Option<&str> {
        self.headers
            .get(&k.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }
}

/// The answer for the n-th request (0-based): status and extra headers.
/// Two pseudo-headers change how it is answered: `x-test-delay-ms: N`
/// waits N ms before answering (a slow receiver), and status 0 closes the
/// connection without any answer (a reset mid-request).
pub type Script = dyn Fn(usize, &Request) -> (u16, Vec<(String, String)>) + Send + Sync;

pub struct Receiver {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    /// Answers 204 to everything.
    pub fn accepting() -> Self {
        Self::scripted(|_, _| (204, vec![]))
    }

    pub fn scripted(
        script: impl Fn(usize, &Request) -> (u16, Vec<(String, String)>) + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let script: Arc<Script> = Arc::new(script);
        let (reqs, stop2) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (reqs, script, stop3) = (reqs.clone(), script.clone(), stop2.clone());
                        std::thread::spawn(move || serve(stream, reqs, script, stop3));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Receiver {
            port,
            requests,
            stop,
        }
    }

    /// Answers 204 after 700 ms while the flag it returns is set, at once
    /// after: batches are on the wire and in the spool when an agent dies.
    pub fn slow_while() -> (Self, Arc<AtomicBool>) {
        let slow = Arc::new(AtomicBool::new(true));
        let s2 = slow.clone();
        let rcv = Self::scripted(move |_, _| {
            let delay = if s2.load(Ordering::Relaxed) {
                "700"
            } else {
                "0"
            };
            (204, vec![("x-test-delay-ms".into(), delay.into())])
        });
        (rcv, slow)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/ingest", self.port)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

/// Every JSON line of every request answered 2xx, with its arrival.
pub fn accepted_json(reqs: &[Request]) -> Vec<(Instant, serde_json::Value)> {
    reqs.iter()
        .filter(|r| (200..300).contains(&r.status))
        .flat_map(|r| {
            r.text()
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .map(|v| (r.at, v))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Host samples (host, time, command) that were accepted under more than
/// one batch id: a copy sent twice must keep its batch's id, so that a
/// receiver can drop it.
pub fn split_across_batches(reqs: &[Request]) -> Vec<(String, i64, String)> {
    let mut seen: std::collections::BTreeMap<
        (String, i64, String),
        std::collections::BTreeSet<String>,
    > = Default::default();
    for r in reqs.iter().filter(|r| (200..300).contains(&r.status)) {
        let id = r.header("x-mongomon-batch-id").unwrap_or("").to_string();
        for line in r.text().lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let (Some(h), Some(ts)) = (v["host"].as_str(), v["ts_ms"].as_i64()) else {
                continue;
            };
            let cmd = v["command"].as_str().unwrap_or("").to_string();
            seen.entry((h.to_string(), ts, cmd))
                .or_default()
                .insert(id.clone());
        }
    }
    seen.into_iter()
        .filter(|(_, ids)| ids.len() > 1)
        .map(|(k, _)| k)
        .collect()
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(
    stream: TcpStream,
    reqs: Arc<Mutex<Vec<Request>>>,
    script: Arc<Script>,
    stop: Arc<AtomicBool>,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    while !stop.load(Ordering::Relaxed) {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                continue
            }
            Err(_) => return,
        }
        let _ = reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_secs(10)));
        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        match headers.get("content-encoding").map(String::as_str) {
            Some("gzip") => {
                let mut out = Vec::new();
                let _ = flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut out);
                body = out;
            }
            Some("snappy") => {
                body = snap::raw::Decoder::new()
                    .decompress_vec(&body)
                    .unwrap_or_default();
            }
            _ => {}
        }
        let mut req = Request {
            at: Instant::now(),
            path,
            headers,
            body,
            status: 0,
        };
        let (status, extra) = {
            let n = reqs.lock().unwrap().len();
            script(n, &req)
        };
        req.status = status;
        reqs.lock().unwrap().push(req);
        if status == 0 {
            let _ = writer.shutdown(std::net::Shutdown::Both);
            return;
        }
        let mut resp = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n");
        for (k, v) in extra {
            if k == "x-test-delay-ms" {
                std::thread::sleep(Duration::from_millis(v.parse().unwrap_or(0)));
                continue;
            }
            resp.push_str(&format!("{k}: {v}\r\n"));
        }
        resp.push_str("\r\n");
        if writer.write_all(resp.as_bytes()).is_err() {
            return;
        }
        let _ = reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_millis(200)));
    }
}
