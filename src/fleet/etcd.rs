//! A small etcd v3 client over etcd's JSON gateway.
//!
//! Every etcd from 3.4 on serves its gRPC API as HTTP/JSON on the same
//! client URLs (`POST /v3/kv/range`, `/v3/lease/keepalive`, `/v3/watch`...):
//! keys and values in base64, 64-bit numbers as strings. Fleet mode needs
//! seven calls of it, and speaking them through awc (already in the tree,
//! with our rustls setup) avoids the tonic/prost stack and the `protoc` that
//! the crates.io gRPC clients need at build time, which a fresh machine does
//! not have (and `cargo run --release -- demo` must build there).
//!
//! Endpoints are tried in turn: a call that cannot reach one member (or
//! gets "no leader" from it) moves on to the next at once, so losing one
//! member of three costs a retry, not a lease. A member that lost its
//! leader holds calls instead until a new one is elected: for a renewal
//! running late the fleet asks every member at once
//! ([`Etcd::call_everywhere`]).

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use futures_util::StreamExt as _;
use serde_json::{json, Value};

/// What went wrong talking to etcd. Messages name the member (without
/// credentials) and never carry the password or the token.
#[derive(Debug, Clone)]
pub struct EtcdError {
    pub message: String,
    /// The cluster could not answer (no member reachable, no leader,
    /// timeout) as opposed to refusing the request.
    pub unavailable: bool,
}

impl std::fmt::Display for EtcdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EtcdError {}

fn unavailable(message: String) -> EtcdError {
    EtcdError {
        message,
        unavailable: true,
    }
}

/// One key as etcd holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kv {
    pub key: String,
    pub value: Vec<u8>,
    /// The lease the key lives under (0: none).
    pub lease: i64,
    pub create_revision: i64,
    pub mod_revision: i64,
}

/// One change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Put(Kv),
    Delete(String),
}

/// One write inside a transaction.
#[derive(Debug, Clone)]
pub enum Op {
    Put { key: String, value: Vec<u8> },
    Delete { key: String },
}

/// How to reach the cluster.
#[derive(Clone)]
pub struct EtcdOptions {
    /// `http(s)://host:port` of each member.
    pub endpoints: Vec<String>,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// User and password for etcd's authentication.
    pub credentials: Option<(String, String)>,
    /// Bound on each call (not on a watch, which is open-ended).
    pub timeout: Duration,
}

impl std::fmt::Debug for EtcdOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdOptions")
            .field("endpoints", &self.endpoints)
            .field("tls", &self.tls.is_some())
            .field(
                "credentials",
                &self.credentials.as_ref().map(|(u, _)| (u, "<redacted>")),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The client: one per actor, on that actor's thread (awc is not `Send`).
pub struct Etcd {
    opts: EtcdOptions,
    http: awc::Client,
    /// The member answering lately; calls start there.
    current: Cell<usize>,
    token: RefCell<Option<String>>,
    /// Calls made, for the fleet's request-rate figure.
    pub calls: Cell<u64>,
}

/// Encodes a key or value for the gateway.
fn b64(s: &[u8]) -> String {
    B64.encode(s)
}

/// The key just past every key starting with `prefix` (etcd's `range_end`
/// for a prefix query).
pub fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// A 64-bit number the gateway wrote as a string (or, rarely, a number);
/// absent fields are zero, as in protobuf.
fn int(v: &Value) -> i64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

fn kv(v: &Value) -> Option<Kv> {
    let key = B64.decode(v["key"].as_str()?).ok()?;
    let value = match v["value"].as_str() {
        Some(s) => B64.decode(s).ok()?,
        None => Vec::new(),
    };
    Some(Kv {
        key: String::from_utf8(key).ok()?,
        value,
        lease: int(&v["lease"]),
        create_revision: int(&v["create_revision"]),
        mod_revision: int(&v["mod_revision"]),
    })
}

/// Strips userinfo from an endpoint before it goes into a message.
fn shown(endpoint: &str) -> String {
    crate::redact::redact_uri(endpoint)
}

impl Etcd {
    pub fn new(opts: EtcdOptions) -> Etcd {
        let mut connector = awc::Connector::new().timeout(opts.timeout);
        if let Some(tls) = &opts.tls {
            connector = connector.rustls_0_23(tls.clone());
        }
        let http = awc::Client::builder()
            .connector(connector)
            .timeout(opts.timeout)
            .disable_redirects()
            .finish();
        Etcd {
            opts,
            http,
            current: Cell::new(0),
            token: RefCell::new(None),
            calls: Cell::new(0),
        }
    }

    pub fn endpoints(&self) -> &[String] {
        &self.opts.endpoints
    }

    /// The member calls go to first now.
    pub fn current_endpoint(&self) -> String {
        shown(&self.opts.endpoints[self.current.get() % self.opts.endpoints.len()])
    }

    async fn authenticate(&self, endpoint: &str) -> Result<(), EtcdError> {
        let Some((user, password)) = &self.opts.credentials else {
            return Ok(());
        };
        let body = json!({ "name": user, "password": password });
        let v = self
            .post_once(
                endpoint,
                "auth/authenticate",
                &body,
                false,
                self.opts.timeout,
            )
            .await?;
        match v["token"].as_str() {
            Some(t) => {
                *self.token.borrow_mut() = Some(t.to_string());
                Ok(())
            }
            None => Err(EtcdError {
                message: format!(
                    "etcd at {} did not accept fleet.username's password",
                    shown(endpoint)
                ),
                unavailable: false,
            }),
        }
    }

    async fn post_once(
        &self,
        endpoint: &str,
        path: &str,
        body: &Value,
        with_token: bool,
        timeout: Duration,
    ) -> Result<Value, EtcdError> {
        self.calls.set(self.calls.get() + 1);
        let url = format!("{}/v3/{path}", endpoint.trim_end_matches('/'));
        let mut req = self.http.post(&url).timeout(timeout);
        if with_token {
            if let Some(t) = self.token.borrow().as_deref() {
                req = req.insert_header((awc::http::header::AUTHORIZATION, t.to_string()));
            }
        }
        let mut resp = req
            .send_json(body)
            .await
            .map_err(|e| unavailable(format!("cannot reach etcd at {} ({e})", shown(endpoint))))?;
        let status = resp.status().as_u16();
        let bytes = resp.body().limit(64 << 20).await.map_err(|e| {
            unavailable(format!(
                "etcd at {} broke off its answer ({e})",
                shown(endpoint)
            ))
        })?;
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status == 200 {
            return Ok(v);
        }
        let mut msg = match v["message"].as_str().or_else(|| v["error"].as_str()) {
            Some(m) => m.to_string(),
            // Some refusals are plain text.
            None => String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
                .trim()
                .to_string(),
        };
        if msg.contains("CommonName") {
            msg.push_str(
                " (etcd's gateway refuses client certificates that have a CommonName when it runs with --client-cert-auth: issue fleet.tls_cert_file without one)",
            );
        }
        // gRPC codes: 14 unavailable, 4 deadline exceeded; a member
        // without a leader answers those too.
        let code = int(&v["code"]);
        let unavailable = status >= 500 && (code == 14 || code == 4 || code == 0)
            || msg.contains("no leader")
            || msg.contains("timed out");
        Err(EtcdError {
            message: format!(
                "etcd at {} answered {status}: {}",
                shown(endpoint),
                crate::redact::printable(&msg)
            ),
            unavailable,
        })
    }

    /// One attempt at member `i`: logs in first when there is no token,
    /// and once more when the member says the token expired.
    async fn call_at(
        &self,
        i: usize,
        path: &str,
        body: &Value,
        timeout: Duration,
    ) -> Result<Value, EtcdError> {
        let endpoint = &self.opts.endpoints[i];
        if self.opts.credentials.is_some() && self.token.borrow().is_none() {
            self.authenticate(endpoint).await?;
        }
        match self.post_once(endpoint, path, body, true, timeout).await {
            Err(e)
                if self.opts.credentials.is_some()
                    && (e.message.contains("token") || e.message.contains("Unauthenticated")) =>
            {
                // Tokens expire when idle (and etcd's simple tokens are
                // each member's own): log in here and try again once.
                *self.token.borrow_mut() = None;
                self.authenticate(endpoint).await?;
                self.post_once(endpoint, path, body, true, timeout).await
            }
            r => r,
        }
    }

    /// One call, tried on each member in turn until one answers.
    pub async fn call(&self, path: &str, body: Value) -> Result<Value, EtcdError> {
        let n = self.opts.endpoints.len();
        let mut last = unavailable("no etcd endpoint configured".into());
        for attempt in 0..n {
            let i = (self.current.get() + attempt) % n;
            match self.call_at(i, path, &body, self.opts.timeout).await {
                Ok(v) => {
                    self.current.set(i);
                    return Ok(v);
                }
                Err(e) if e.unavailable => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// One call sent to every member at once, each allowed `timeout`; the
    /// first answer wins and the others are dropped. For a renewal running
    /// late: while the members elect a new leader they hold requests rather
    /// than refuse them, so trying them one after another spends a whole
    /// timeout on each, and the lease can run out before the member that
    /// answers is asked. When none answers, a refusal (a wrong password) is
    /// reported before "unavailable", being what the operator must fix.
    pub async fn call_everywhere(
        &self,
        path: &str,
        body: Value,
        timeout: Duration,
    ) -> Result<Value, EtcdError> {
        let body = &body;
        let mut pending: futures_util::stream::FuturesUnordered<_> = (0..self.opts.endpoints.len())
            .map(|i| async move { (i, self.call_at(i, path, body, timeout).await) })
            .collect();
        let mut last = unavailable("no etcd endpoint configured".into());
        let mut refused = None;
        while let Some((i, r)) = pending.next().await {
            match r {
                Ok(v) => {
                    self.current.set(i);
                    return Ok(v);
                }
                Err(e) if e.unavailable => last = e,
                Err(e) => {
                    refused.get_or_insert(e);
                }
            }
        }
        Err(refused.unwrap_or(last))
    }

    /// A new lease of `ttl_secs`; returns its id and the TTL granted.
    pub async fn grant(&self, ttl_secs: u64) -> Result<(i64, u64), EtcdError> {
        let v = self.call("lease/grant", json!({ "TTL": ttl_secs })).await?;
        let id = int(&v["ID"]);
        if id == 0 {
            return Err(EtcdError {
                message: format!("etcd granted no lease ({})", v["error"]),
                unavailable: true,
            });
        }
        Ok((id, int(&v["TTL"]).max(0) as u64))
    }

    /// Renews a lease; `Ok(0)` when it no longer exists. `everywhere`: ask
    /// every member at once, waiting up to that long for each (see
    /// [`Etcd::call_everywhere`]).
    pub async fn keep_alive(
        &self,
        id: i64,
        everywhere: Option<Duration>,
    ) -> Result<u64, EtcdError> {
        let body = json!({ "ID": id.to_string() });
        let v = match everywhere {
            Some(timeout) => {
                self.call_everywhere("lease/keepalive", body, timeout)
                    .await?
            }
            None => self.call("lease/keepalive", body).await?,
        };
        let r = if v.get("result").is_some() {
            &v["result"]
        } else {
            &v
        };
        if let Some(e) = v.get("error") {
            return Err(unavailable(format!("etcd keepalive failed: {e}")));
        }
        Ok(int(&r["TTL"]).max(0) as u64)
    }

    /// The seconds a lease has left; 0 when it is gone.
    pub async fn time_to_live(&self, id: i64) -> Result<i64, EtcdError> {
        let v = self
            .call("lease/timetolive", json!({ "ID": id.to_string() }))
            .await?;
        Ok(int(&v["TTL"]))
    }

    pub async fn revoke(&self, id: i64) -> Result<(), EtcdError> {
        self.call("lease/revoke", json!({ "ID": id.to_string() }))
            .await
            .map(|_| ())
    }

    pub async fn put(&self, key: &str, value: &[u8], lease: i64) -> Result<(), EtcdError> {
        let mut body = json!({ "key": b64(key.as_bytes()), "value": b64(value) });
        if lease != 0 {
            body["lease"] = json!(lease.to_string());
        }
        self.call("kv/put", body).await.map(|_| ())
    }

    /// Every key under `prefix` and the store's revision at that moment.
    pub async fn range_prefix(&self, prefix: &str) -> Result<(i64, Vec<Kv>), EtcdError> {
        let v = self
            .call(
                "kv/range",
                json!({ "key": b64(prefix.as_bytes()), "range_end": b64(&prefix_end(prefix)) }),
            )
            .await?;
        let rev = int(&v["header"]["revision"]);
        let kvs = v["kvs"]
            .as_array()
            .map(|a| a.iter().filter_map(kv).collect())
            .unwrap_or_default();
        Ok((rev, kvs))
    }

    /// Puts `key` under `lease` only if it does not exist; true if it was
    /// created (the election: the first agent to create the key leads).
    pub async fn create(&self, key: &str, value: &[u8], lease: i64) -> Result<bool, EtcdError> {
        let k = b64(key.as_bytes());
        let v = self
            .call(
                "kv/txn",
                json!({
                    "compare": [{ "target": "CREATE", "result": "EQUAL", "key": k, "create_revision": "0" }],
                    "success": [{ "request_put": { "key": k, "value": b64(value), "lease": lease.to_string() } }],
                }),
            )
            .await?;
        Ok(v["succeeded"].as_bool().unwrap_or(false))
    }

    /// Applies writes only while `guard` still has `lease` (so that an
    /// agent that lost the leadership cannot overwrite its successor's
    /// work). Returns false when the guard failed. Chunks of 100 operations
    /// stay under etcd's default limit of 128 per transaction.
    pub async fn guarded_writes(
        &self,
        guard: &str,
        lease: i64,
        ops: &[Op],
    ) -> Result<bool, EtcdError> {
        for chunk in ops.chunks(100) {
            let success: Vec<Value> = chunk
                .iter()
                .map(|op| match op {
                    Op::Put { key, value } => {
                        json!({ "request_put": { "key": b64(key.as_bytes()), "value": b64(value) } })
                    }
                    Op::Delete { key } => {
                        json!({ "request_delete_range": { "key": b64(key.as_bytes()) } })
                    }
                })
                .collect();
            let v = self
                .call(
                    "kv/txn",
                    json!({
                        "compare": [{ "target": "LEASE", "result": "EQUAL", "key": b64(guard.as_bytes()), "lease": lease.to_string() }],
                        "success": success,
                    }),
                )
                .await?;
            if !v["succeeded"].as_bool().unwrap_or(false) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The answering member's version, for `mongomon check`.
    pub async fn status(&self) -> Result<String, EtcdError> {
        let v = self.call("maintenance/status", json!({})).await?;
        Ok(v["version"].as_str().unwrap_or("unknown").to_string())
    }

    /// Watches every key under `prefix` from `start_revision`; `on_events`
    /// gets each batch of changes. Returns when the stream ends or breaks
    /// (the caller reads the prefix again and watches anew).
    pub async fn watch(
        &self,
        prefix: &str,
        start_revision: i64,
        mut on_events: impl FnMut(Vec<Event>),
    ) -> EtcdError {
        let n = self.opts.endpoints.len();
        let i = self.current.get() % n;
        let endpoint = self.opts.endpoints[i].clone();
        // Another member next time, should this one be the reason.
        self.current.set((i + 1) % n);
        if self.opts.credentials.is_some() && self.token.borrow().is_none() {
            if let Err(e) = self.authenticate(&endpoint).await {
                return e;
            }
        }
        self.calls.set(self.calls.get() + 1);
        let body = json!({ "create_request": {
            "key": b64(prefix.as_bytes()),
            "range_end": b64(&prefix_end(prefix)),
            "start_revision": start_revision.to_string(),
        }});
        let url = format!("{}/v3/watch", endpoint.trim_end_matches('/'));
        let mut req = self.http.post(&url).timeout(self.opts.timeout);
        if let Some(t) = self.token.borrow().as_deref() {
            req = req.insert_header((awc::http::header::AUTHORIZATION, t.to_string()));
        }
        let mut resp = match req.send_json(&body).await {
            Ok(r) => r,
            Err(e) => {
                return unavailable(format!("cannot watch etcd at {} ({e})", shown(&endpoint)))
            }
        };
        if resp.status().as_u16() != 200 {
            if resp.status().as_u16() == 401 {
                *self.token.borrow_mut() = None;
            }
            return unavailable(format!(
                "etcd at {} refused the watch ({})",
                shown(&endpoint),
                resp.status()
            ));
        }
        self.current.set(i);
        let mut buf: Vec<u8> = Vec::new();
        while let Some(chunk) = resp.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    return unavailable(format!(
                        "the watch on etcd at {} broke ({e})",
                        shown(&endpoint)
                    ))
                }
            };
            buf.extend_from_slice(&chunk);
            // The gateway writes one JSON object per message; take every
            // complete one and keep the rest for the next chunk.
            let mut used = 0;
            let mut stream = serde_json::Deserializer::from_slice(&buf).into_iter::<Value>();
            let mut events = Vec::new();
            let mut failure = None;
            while let Some(item) = stream.next() {
                match item {
                    Ok(msg) => {
                        used = stream.byte_offset();
                        let r = &msg["result"];
                        if msg.get("error").is_some() || r["canceled"].as_bool() == Some(true) {
                            failure = Some(format!(
                                "etcd at {} ended the watch ({})",
                                shown(&endpoint),
                                crate::redact::printable(
                                    &r["cancel_reason"]
                                        .as_str()
                                        .map(str::to_string)
                                        .unwrap_or_else(|| msg["error"].to_string())
                                )
                            ));
                            break;
                        }
                        for ev in r["events"].as_array().into_iter().flatten() {
                            let Some(kv) = kv(&ev["kv"]) else { continue };
                            if ev["type"].as_str() == Some("DELETE") {
                                events.push(Event::Delete(kv.key));
                            } else {
                                events.push(Event::Put(kv));
                            }
                        }
                    }
                    Err(e) if e.is_eof() => break,
                    Err(e) => {
                        failure = Some(format!(
                            "etcd at {} sent a watch message that is not JSON ({e})",
                            shown(&endpoint)
                        ));
                        break;
                    }
                }
            }
            buf.drain(..used);
            if !events.is_empty() {
                on_events(events);
            }
            if let Some(f) = failure {
                return unavailable(f);
            }
        }
        unavailable(format!("etcd at {} closed the watch", shown(&endpoint)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_next_key() {
        assert_eq!(prefix_end("/a/"), b"/a0".to_vec());
        assert_eq!(prefix_end("a\u{7f}"), b"a\x80".to_vec());
    }

    #[test]
    fn gateway_numbers_and_keys_decode() {
        let v = json!({ "key": b64(b"/k"), "value": b64(b"v"), "lease": "42", "create_revision": 7, "mod_revision": "9" });
        let kv = kv(&v).unwrap();
        assert_eq!(kv.key, "/k");
        assert_eq!(kv.value, b"v");
        assert_eq!((kv.lease, kv.create_revision, kv.mod_revision), (42, 7, 9));
        // A deleted key's event has no value.
        let v = json!({ "key": b64(b"/k"), "mod_revision": "10" });
        assert_eq!(super::kv(&v).unwrap().value, Vec::<u8>::new());
        assert_eq!(int(&Value::Null), 0);
    }

    /// A stand-in member on loopback: answers every request with `reply`
    /// (status line and JSON body), or, with `None`, accepts and never
    /// answers (a member waiting for a leader). Returns its URL.
    fn member(reply: Option<&'static str>) -> String {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for mut c in l.incoming().flatten() {
                let Some((status, body)) = reply.and_then(|r| r.split_once('|')) else {
                    held.push(c);
                    continue;
                };
                // Reads the request head and body before answering.
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = c.read(&mut buf) {
                    req.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&req).to_lowercase();
                    if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if rest.len() >= len {
                            break;
                        }
                    }
                }
                let _ = write!(
                    c,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        url
    }

    fn client(endpoints: Vec<String>) -> Etcd {
        Etcd::new(EtcdOptions {
            endpoints,
            tls: None,
            credentials: None,
            timeout: Duration::from_secs(30),
        })
    }

    #[test]
    fn a_member_holding_the_call_does_not_hold_up_a_renewal_sent_everywhere() {
        actix_rt::System::new().block_on(async {
            let held = member(None);
            let answers = member(Some(r#"200 OK|{"result":{"ID":"7","TTL":"3"}}"#));
            let etcd = client(vec![held, answers.clone()]);
            // Calls start at the held member; asked one after another, the
            // renewal would wait there its whole 30 s.
            let r = actix_rt::time::timeout(
                Duration::from_secs(10),
                etcd.keep_alive(7, Some(Duration::from_secs(30))),
            )
            .await
            .expect("the answering member's reply is not held up by the other");
            assert_eq!(r.unwrap(), 3);
            // Later calls start at the member that answered.
            assert_eq!(etcd.current_endpoint(), answers);
        });
    }

    #[test]
    fn a_refusal_is_reported_before_unavailability_when_no_member_renews() {
        actix_rt::System::new().block_on(async {
            // A port nothing listens on: refused at once.
            let closed = {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                format!("http://{}", l.local_addr().unwrap())
            };
            let refuses = member(Some(
                r#"401 Unauthorized|{"error":"etcdserver: permission denied","code":7,"message":"etcdserver: permission denied"}"#,
            ));
            let etcd = client(vec![closed, refuses]);
            let e = etcd
                .keep_alive(7, Some(Duration::from_secs(30)))
                .await
                .unwrap_err();
            assert!(!e.unavailable, "{e}");
            assert!(e.message.contains("permission denied"), "{e}");
        });
    }

    #[test]
    fn options_never_show_the_password() {
        let o = EtcdOptions {
            endpoints: vec!["http://127.0.0.1:2379".into()],
            tls: None,
            credentials: Some(("agent".into(), "pw-Kx71-secret".into())),
            timeout: Duration::from_secs(1),
        };
        assert!(!format!("{o:?}").contains("Kx71"));
    }
}
