//! Server side of SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802 / RFC 7677) as
//! mongod speaks it through `saslStart`/`saslContinue`: credential derivation
//! (including MongoDB's MD5 password digest for SCRAM-SHA-1) and the
//! two-step conversation with proof verification.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};

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

fn server_nonce() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let c = COUNTER.fetch_add(1, Ordering::Relaxed);
    let seed = format!(
        "{}:{}:{c}",
        bson::oid::ObjectId::new(),
        super::state::now_millis()
    );
    B64.encode(&Sha256::digest(seed.as_bytes())[..24])
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
