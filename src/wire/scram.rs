//! SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802 / RFC 7677) as mongod speaks
//! them through `saslStart`/`saslContinue`, both halves:
//!
//! - the server's (the simulator): credential derivation (including
//!   MongoDB's MD5 password digest for SCRAM-SHA-1) and the conversation
//!   with proof verification, [`Conversation`];
//! - the client's (the agent): [`ClientConversation`], with the salted
//!   password cached per credential, salt and iteration count, so that a
//!   reconnect, or a thousand hosts sharing one user, cost one PBKDF2.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Supported mechanisms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// SCRAM-SHA-1.
    Sha1,
    /// SCRAM-SHA-256.
    Sha256,
}

impl Mechanism {
    /// From the wire name.
    pub fn from_name(s: &str) -> Option<Mechanism> {
        match s {
            "SCRAM-SHA-1" => Some(Mechanism::Sha1),
            "SCRAM-SHA-256" => Some(Mechanism::Sha256),
            _ => None,
        }
    }

    /// Wire name.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Sha1 => "SCRAM-SHA-1",
            Mechanism::Sha256 => "SCRAM-SHA-256",
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Mechanism::Sha1 => match Hmac::<Sha1>::new_from_slice(key) {
                Ok(mut m) => {
                    m.update(data);
                    m.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            },
            Mechanism::Sha256 => match Hmac::<Sha256>::new_from_slice(key) {
                Ok(mut m) => {
                    m.update(data);
                    m.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            },
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Mechanism::Sha1 => Sha1::digest(data).to_vec(),
            Mechanism::Sha256 => Sha256::digest(data).to_vec(),
        }
    }

    /// PBKDF2 with a single output block (the digest size is all SCRAM needs).
    fn hi(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut s1 = salt.to_vec();
        s1.extend_from_slice(&1u32.to_be_bytes());
        let mut u = self.hmac(password, &s1);
        let mut out = u.clone();
        for _ in 1..iterations {
            u = self.hmac(password, &u);
            for (o, x) in out.iter_mut().zip(&u) {
                *o ^= x;
            }
        }
        out
    }
}

/// What the server stores for a user and mechanism.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredentials {
    /// Mechanism.
    pub mechanism: Mechanism,
    /// Salt.
    pub salt: Vec<u8>,
    /// Iteration count (mongod defaults: 10000 for SHA-1, 15000 for SHA-256).
    pub iterations: u32,
    /// H(ClientKey).
    pub stored_key: Vec<u8>,
    /// HMAC(SaltedPassword, "Server Key").
    pub server_key: Vec<u8>,
}

impl ScramCredentials {
    /// Derives credentials from a clear-text password.
    pub fn derive(mechanism: &str, user: &str, password: &str) -> Option<ScramCredentials> {
        let mech = Mechanism::from_name(mechanism)?;
        let (secret, iterations) = match mech {
            // MongoDB hashes the password with MD5 before SCRAM-SHA-1.
            Mechanism::Sha1 => {
                let d = md5::Md5::digest(format!("{user}:mongo:{password}").as_bytes());
                (hex(&d), 10_000)
            }
            // No SASLprep: the simulator's passwords are ASCII.
            Mechanism::Sha256 => (password.to_string(), 15_000),
        };
        let salt = Sha256::digest(format!("{mechanism}:{user}:salt").as_bytes())[..16].to_vec();
        let salted = mech.hi(secret.as_bytes(), &salt, iterations);
        let client_key = mech.hmac(&salted, b"Client Key");
        Some(ScramCredentials {
            mechanism: mech,
            salt,
            iterations,
            stored_key: mech.hash(&client_key),
            server_key: mech.hmac(&salted, b"Server Key"),
        })
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Errors of a conversation (all map to AuthenticationFailed on the wire).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScramError {
    /// Payload not in the expected SCRAM shape.
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    /// Wrong proof or unknown user.
    #[error("Authentication failed.")]
    Failed,
    /// The server's signature is wrong: it does not know the credential.
    #[error("the server's SCRAM signature does not match; it does not hold this credential")]
    ServerSignature,
}

/// State between saslStart and saslContinue.
#[derive(Debug, Clone)]
pub struct Conversation {
    /// User name from the client-first message.
    pub user: String,
    /// Mechanism.
    pub mechanism: Mechanism,
    client_first_bare: String,
    server_first: String,
    nonce: String,
    /// Credentials, None when the user is unknown (fail at the proof step,
    /// like mongod, so user existence does not leak early).
    creds: Option<ScramCredentials>,
    /// Set once the proof was verified.
    pub verified: bool,
}

/// Extracts the user name from a client-first message.
pub fn client_first_user(payload: &[u8]) -> Result<String, ScramError> {
    let text = std::str::from_utf8(payload).map_err(|_| ScramError::Malformed("not UTF-8"))?;
    let bare = gs2_strip(text)?;
    let user = bare
        .split(',')
        .find_map(|p| p.strip_prefix("n="))
        .ok_or(ScramError::Malformed("missing n="))?;
    Ok(user.replace("=2C", ",").replace("=3D", "="))
}

fn gs2_strip(text: &str) -> Result<&str, ScramError> {
    let mut it = text.splitn(3, ',');
    let flag = it.next().unwrap_or("");
    if !(flag == "n" || flag == "y") {
        return Err(ScramError::Malformed("channel binding not supported"));
    }
    it.next()
        .ok_or(ScramError::Malformed("missing gs2 header"))?;
    it.next()
        .ok_or(ScramError::Malformed("missing client-first-bare"))
}

/// 24 random bytes in base64: a nonce for either side.
fn nonce() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 24];
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        // The system's random source failed (it does not on Linux); a
        // counter and the clock still give a nonce that never repeats.
        static COUNTER: AtomicU64 = AtomicU64::new(1);
        let c = COUNTER.fetch_add(1, Ordering::Relaxed);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        b.copy_from_slice(&Sha256::digest(format!("{t}:{c}").as_bytes())[..24]);
    }
    B64.encode(b)
}

fn server_nonce() -> String {
    nonce()
}

impl Conversation {
    /// Handles the client-first message; returns the conversation and the server-first payload.
    pub fn start(
        mechanism: Mechanism,
        payload: &[u8],
        creds: Option<ScramCredentials>,
    ) -> Result<(Conversation, Vec<u8>), ScramError> {
        let text = std::str::from_utf8(payload).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let bare = gs2_strip(text)?.to_string();
        let user = client_first_user(payload)?;
        let cnonce = bare
            .split(',')
            .find_map(|p| p.strip_prefix("r="))
            .ok_or(ScramError::Malformed("missing r="))?;
        let nonce = format!("{cnonce}{}", server_nonce());
        let (salt, iters) = match &creds {
            Some(c) => (c.salt.clone(), c.iterations),
            None => (
                Sha256::digest(user.as_bytes())[..16].to_vec(),
                if mechanism == Mechanism::Sha1 {
                    10_000
                } else {
                    15_000
                },
            ),
        };
        let server_first = format!("r={nonce},s={},i={iters}", B64.encode(&salt));
        let conv = Conversation {
            user,
            mechanism,
            client_first_bare: bare,
            server_first: server_first.clone(),
            nonce,
            creds,
            verified: false,
        };
        Ok((conv, server_first.into_bytes()))
    }

    /// Verifies the client-final message; returns the server-final payload (`v=...`).
    pub fn finish(&mut self, payload: &[u8]) -> Result<Vec<u8>, ScramError> {
        let text = std::str::from_utf8(payload).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let (without_proof, proof_b64) = text
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("missing p="))?;
        let nonce = without_proof
            .split(',')
            .find_map(|p| p.strip_prefix("r="))
            .ok_or(ScramError::Malformed("missing r="))?;
        if nonce != self.nonce {
            return Err(ScramError::Failed);
        }
        let proof = B64
            .decode(proof_b64)
            .map_err(|_| ScramError::Malformed("bad proof encoding"))?;
        let creds = self.creds.as_ref().ok_or(ScramError::Failed)?;
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, self.server_first, without_proof
        );
        let m = self.mechanism;
        let client_sig = m.hmac(&creds.stored_key, auth_message.as_bytes());
        if proof.len() != client_sig.len() {
            return Err(ScramError::Failed);
        }
        let client_key: Vec<u8> = proof.iter().zip(&client_sig).map(|(a, b)| a ^ b).collect();
        if m.hash(&client_key) != creds.stored_key {
            return Err(ScramError::Failed);
        }
        self.verified = true;
        let server_sig = m.hmac(&creds.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_sig)).into_bytes())
    }
}

/// The secret SCRAM salts: SCRAM-SHA-1 uses MongoDB's MD5 digest of
/// `user:mongo:password`, SCRAM-SHA-256 the SASLprep'd password.
fn client_secret(m: Mechanism, user: &str, password: &str) -> Result<String, ScramError> {
    match m {
        Mechanism::Sha1 => Ok(hex(&md5::Md5::digest(
            format!("{user}:mongo:{password}").as_bytes(),
        ))),
        Mechanism::Sha256 => stringprep::saslprep(password)
            .map(|p| p.into_owned())
            .map_err(|_| ScramError::Malformed("the password has characters SASLprep prohibits")),
    }
}

/// Salted passwords by (mechanism, user, password, salt, iterations),
/// hashed so the map holds no password. Bounded: a new entry beyond the
/// bound clears it (only a fleet of distinct users would ever get there).
static SALTED: Mutex<Option<HashMap<[u8; 32], Vec<u8>>>> = Mutex::new(None);
const SALTED_MAX: usize = 1024;

fn salted_password(
    m: Mechanism,
    user: &str,
    secret: &str,
    salt: &[u8],
    iterations: u32,
) -> Vec<u8> {
    let mut h = Sha256::new();
    for part in [
        m.name().as_bytes(),
        user.as_bytes(),
        secret.as_bytes(),
        salt,
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h.update(iterations.to_le_bytes());
    let key: [u8; 32] = h.finalize().into();
    let mut cache = SALTED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(v) = cache.as_ref().and_then(|c| c.get(&key)) {
        return v.clone();
    }
    drop(cache);
    // PBKDF2 outside the lock: other connections keep authenticating.
    let salted = m.hi(secret.as_bytes(), salt, iterations);
    cache = SALTED.lock().unwrap_or_else(|p| p.into_inner());
    let map = cache.get_or_insert_with(HashMap::new);
    if map.len() >= SALTED_MAX {
        map.clear();
    }
    map.insert(key, salted.clone());
    salted
}

/// How many PBKDF2 derivations the process has run (the cache's misses).
pub fn derivations() -> usize {
    SALTED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .map_or(0, |m| m.len())
}

/// The client's half of one conversation.
#[derive(Debug, Clone)]
pub struct ClientConversation {
    mechanism: Mechanism,
    user: String,
    secret: String,
    client_first_bare: String,
    nonce: String,
    server_signature: Option<Vec<u8>>,
}

impl ClientConversation {
    /// Starts a conversation; [`Self::first_payload`] is `saslStart`'s payload.
    pub fn new(mechanism: Mechanism, user: &str, password: &str) -> Result<Self, ScramError> {
        let secret = client_secret(mechanism, user, password)?;
        let nonce = nonce();
        let escaped = user.replace('=', "=3D").replace(',', "=2C");
        Ok(ClientConversation {
            mechanism,
            user: user.to_string(),
            secret,
            client_first_bare: format!("n={escaped},r={nonce}"),
            nonce,
            server_signature: None,
        })
    }

    /// The mechanism this conversation speaks.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The client-first message (no channel binding).
    pub fn first_payload(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// Answers the server-first message with the client-final one (the proof).
    pub fn final_payload(&mut self, server_first: &[u8]) -> Result<Vec<u8>, ScramError> {
        let text =
            std::str::from_utf8(server_first).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let field = |k: &str| text.split(',').find_map(|p| p.strip_prefix(k));
        let nonce = field("r=").ok_or(ScramError::Malformed("missing r="))?;
        // The server's nonce must extend ours, or this is someone else's
        // conversation (or a replay).
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(ScramError::Malformed("server nonce does not extend ours"));
        }
        let salt = B64
            .decode(field("s=").ok_or(ScramError::Malformed("missing s="))?)
            .map_err(|_| ScramError::Malformed("bad salt encoding"))?;
        let iterations: u32 = field("i=")
            .ok_or(ScramError::Malformed("missing i="))?
            .parse()
            .map_err(|_| ScramError::Malformed("bad iteration count"))?;
        // RFC 7677 asks for at least 4096; a lower count is a downgrade.
        if iterations < 4096 {
            return Err(ScramError::Malformed("iteration count below 4096"));
        }
        let m = self.mechanism;
        let salted = salted_password(m, &self.user, &self.secret, &salt, iterations);
        let client_key = m.hmac(&salted, b"Client Key");
        let stored_key = m.hash(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.client_first_bare);
        let sig = m.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        let server_key = m.hmac(&salted, b"Server Key");
        self.server_signature = Some(m.hmac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks the server-final message: the server proves it knew the
    /// credential too.
    pub fn verify_server(&self, server_final: &[u8]) -> Result<(), ScramError> {
        let text =
            std::str::from_utf8(server_final).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        if text.starts_with("e=") {
            return Err(ScramError::Failed);
        }
        let v = text
            .split(',')
            .find_map(|p| p.strip_prefix("v="))
            .ok_or(ScramError::Malformed("missing v="))?;
        let got = B64
            .decode(v)
            .map_err(|_| ScramError::Malformed("bad signature encoding"))?;
        match &self.server_signature {
            Some(want) if *want == got => Ok(()),
            _ => Err(ScramError::ServerSignature),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Client side written independently from the server code path, following RFC 5802.
    fn client_final(
        m: Mechanism,
        password: &str,
        user: &str,
        cfb: &str,
        server_first: &str,
    ) -> String {
        let parts: Vec<&str> = server_first.split(',').collect();
        let nonce = &parts[0][2..];
        let salt = B64.decode(&parts[1][2..]).unwrap();
        let iters: u32 = parts[2][2..].parse().unwrap();
        let secret = match m {
            Mechanism::Sha1 => hex(&md5::Md5::digest(
                format!("{user}:mongo:{password}").as_bytes(),
            )),
            Mechanism::Sha256 => password.to_string(),
        };
        let salted = m.hi(secret.as_bytes(), &salt, iters);
        let ck = m.hmac(&salted, b"Client Key");
        let sk = m.hash(&ck);
        let without = format!("c=biws,r={nonce}");
        let am = format!("{cfb},{server_first},{without}");
        let sig = m.hmac(&sk, am.as_bytes());
        let proof: Vec<u8> = ck.iter().zip(sig).map(|(a, b)| a ^ b).collect();
        format!("{without},p={}", B64.encode(proof))
    }

    #[test]
    fn rfc7677_hi_vector() {
        // RFC 7677 example: password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations.
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = Mechanism::Sha256.hi(b"pencil", &salt, 4096);
        let ck = Mechanism::Sha256.hmac(&salted, b"Client Key");
        let sk = Mechanism::Sha256.hmac(&salted, b"Server Key");
        let am = "n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let sig = Mechanism::Sha256.hmac(&Mechanism::Sha256.hash(&ck), am.as_bytes());
        let proof: Vec<u8> = ck.iter().zip(sig).map(|(a, b)| a ^ b).collect();
        assert_eq!(
            B64.encode(proof),
            "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert_eq!(
            B64.encode(Mechanism::Sha256.hmac(&sk, am.as_bytes())),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    #[test]
    fn the_client_half_authenticates_against_the_server_half_and_caches_the_salt() {
        for m in [Mechanism::Sha1, Mechanism::Sha256] {
            let creds = ScramCredentials::derive(m.name(), "bob,=x", "pa55").unwrap();
            for attempt in 0..2 {
                let mut client = ClientConversation::new(m, "bob,=x", "pa55").unwrap();
                let before = derivations();
                let (mut conv, sf) =
                    Conversation::start(m, &client.first_payload(), Some(creds.clone())).unwrap();
                assert_eq!(conv.user, "bob,=x");
                let cf = client.final_payload(&sf).unwrap();
                let server_final = conv.finish(&cf).unwrap();
                client.verify_server(&server_final).unwrap();
                if attempt == 1 {
                    assert_eq!(derivations(), before, "the second login derived again");
                }
                assert_eq!(
                    client.verify_server(b"v=AAAA"),
                    Err(ScramError::ServerSignature)
                );
            }
            let mut wrong = ClientConversation::new(m, "bob,=x", "nope").unwrap();
            let (mut conv, sf) =
                Conversation::start(m, &wrong.first_payload(), Some(creds.clone())).unwrap();
            let cf = wrong.final_payload(&sf).unwrap();
            assert_eq!(conv.finish(&cf), Err(ScramError::Failed));
        }
    }

    #[test]
    fn the_client_refuses_a_foreign_nonce_and_a_weak_iteration_count() {
        let mut c = ClientConversation::new(Mechanism::Sha256, "u", "p").unwrap();
        assert!(c.final_payload(b"r=someoneelse,s=AAAA,i=15000").is_err());
        let ours = format!("r={}xyz,s=AAAA,i=100", c.nonce);
        assert!(c.final_payload(ours.as_bytes()).is_err());
    }

    #[test]
    fn conversation_accepts_right_and_rejects_wrong_password() {
        for m in [Mechanism::Sha1, Mechanism::Sha256] {
            let creds = ScramCredentials::derive(m.name(), "alice", "s3cret").unwrap();
            let cf = b"n,,n=alice,r=abcdefgh";
            let (mut conv, sf) = Conversation::start(m, cf, Some(creds.clone())).unwrap();
            let sf = String::from_utf8(sf).unwrap();
            let good = client_final(m, "s3cret", "alice", "n=alice,r=abcdefgh", &sf);
            assert!(conv.finish(good.as_bytes()).unwrap().starts_with(b"v="));
            let (mut conv, sf) = Conversation::start(m, cf, Some(creds)).unwrap();
            let sf = String::from_utf8(sf).unwrap();
            let bad = client_final(m, "wrong", "alice", "n=alice,r=abcdefgh", &sf);
            assert_eq!(conv.finish(bad.as_bytes()), Err(ScramError::Failed));
        }
    }
}
