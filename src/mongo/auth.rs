//! Authentication on a fresh connection: SCRAM-SHA-256, SCRAM-SHA-1,
//! MONGODB-X509 and PLAIN, each started speculatively inside the handshake
//! (`hello`'s `speculativeAuthenticate`) so that a login usually costs no
//! extra round trip, and finished with `saslContinue` or a full
//! conversation when the server did not take the shortcut.

use bson::spec::BinarySubtype;
use bson::{doc, Binary, Bson, Document, RawDocument};

use super::conn::{ConnError, Io};
use crate::wire::scram::{ClientConversation, Mechanism, ScramError};

/// A target's credential, resolved from the connection string and the config.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// SCRAM; `mechanism` None lets the server's `saslSupportedMechs` decide
    /// (SCRAM-SHA-256 when it is offered).
    Scram {
        mechanism: Option<Mechanism>,
        user: String,
        password: String,
        source: String,
    },
    /// The client certificate names the user; `user` may say it too.
    X509 { user: Option<String> },
    /// LDAP through `$external` (or another source).
    Plain {
        user: String,
        password: String,
        source: String,
    },
}

impl std::fmt::Debug for Credential {
    // The password never reaches a log line, not even a debug one.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Scram {
                mechanism,
                user,
                source,
                ..
            } => write!(f, "Scram({mechanism:?}, {user}@{source})"),
            Credential::X509 { user } => write!(f, "X509({user:?})"),
            Credential::Plain { user, source, .. } => write!(f, "Plain({user}@{source})"),
        }
    }
}

impl Credential {
    /// What the handshake's `saslSupportedMechs` asks about, when the
    /// mechanism is the server's choice.
    pub fn sasl_supported_mechs(&self) -> Option<String> {
        match self {
            Credential::Scram {
                mechanism: None,
                user,
                source,
                ..
            } => Some(format!("{source}.{user}")),
            _ => None,
        }
    }
}

/// A conversation begun inside the handshake.
pub enum Pending {
    None,
    Scram(ClientConversation),
    X509,
}

fn binary(bytes: Vec<u8>) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Generic,
        bytes,
    })
}

fn auth_error(message: impl Into<String>) -> ConnError {
    ConnError {
        kind: "auth",
        message: message.into(),
        code: Some(18),
    }
}

fn scram_error(e: ScramError) -> ConnError {
    auth_error(format!("SCRAM: {e}"))
}

/// The `speculativeAuthenticate` document for the handshake, and what to
/// remember of it. SCRAM without a named mechanism speculates with
/// SCRAM-SHA-256, as the drivers do.
pub fn speculative(cred: &Credential) -> Result<(Option<Document>, Pending), ConnError> {
    match cred {
        Credential::Scram {
            mechanism,
            user,
            password,
            source,
        } => {
            let m = mechanism.unwrap_or(Mechanism::Sha256);
            let conv = ClientConversation::new(m, user, password).map_err(scram_error)?;
            let d = doc! {
                "saslStart": 1,
                "mechanism": m.name(),
                "payload": binary(conv.first_payload()),
                "db": source.as_str(),
                "options": {"skipEmptyExchange": true},
            };
            Ok((Some(d), Pending::Scram(conv)))
        }
        Credential::X509 { user } => {
            let mut d = doc! {"authenticate": 1, "mechanism": "MONGODB-X509", "db": "$external"};
            if let Some(u) = user {
                d.insert("user", u.as_str());
            }
            Ok((Some(d), Pending::X509))
        }
        // PLAIN is one round trip anyway; speculating would send the
        // password before the server is known to want it.
        Credential::Plain { .. } => Ok((None, Pending::None)),
    }
}

/// Finishes authentication after the handshake's reply `hello`.
pub async fn finish(
    io: &mut Io,
    cred: &Credential,
    pending: Pending,
    hello: &RawDocument,
) -> Result<(), ConnError> {
    let spec = hello.get_document("speculativeAuthenticate").ok();
    match (cred, pending) {
        (
            Credential::Scram {
                mechanism,
                user,
                password,
                source,
            },
            Pending::Scram(conv),
        ) => {
            if let Some(spec) = spec {
                return scram_continue(io, conv, spec, source).await;
            }
            // No shortcut: pick the mechanism as the server advises and
            // hold the whole conversation.
            let m = match mechanism {
                Some(m) => *m,
                None => {
                    let offered = hello.get_array("saslSupportedMechs").ok().map(|a| {
                        a.into_iter()
                            .filter_map(|v| v.ok().and_then(|v| v.as_str()))
                            .any(|s| s == "SCRAM-SHA-256")
                    });
                    // No list at all (an unknown user, or an old server):
                    // SCRAM-SHA-1, which every version speaks.
                    if offered == Some(true) {
                        Mechanism::Sha256
                    } else {
                        Mechanism::Sha1
                    }
                }
            };
            let conv = if m == conv.mechanism() {
                conv
            } else {
                ClientConversation::new(m, user, password).map_err(scram_error)?
            };
            let start = doc! {
                "saslStart": 1,
                "mechanism": m.name(),
                "payload": binary(conv.first_payload()),
                "options": {"skipEmptyExchange": true},
            };
            let reply = io.command(source, start, false).await?;
            scram_continue(io, conv, &reply, source).await
        }
        (Credential::X509 { user }, Pending::X509) => {
            if spec.is_some() {
                return Ok(());
            }
            let mut d = doc! {"authenticate": 1, "mechanism": "MONGODB-X509"};
            if let Some(u) = user {
                d.insert("user", u.as_str());
            }
            io.command("$external", d, false).await.map(|_| ())
        }
        (
            Credential::Plain {
                user,
                password,
                source,
            },
            _,
        ) => {
            let mut payload = Vec::with_capacity(user.len() + password.len() + 2);
            payload.push(0);
            payload.extend_from_slice(user.as_bytes());
            payload.push(0);
            payload.extend_from_slice(password.as_bytes());
            let start = doc! {"saslStart": 1, "mechanism": "PLAIN", "payload": binary(payload), "autoAuthorize": 1};
            let reply = io.command(source, start, false).await?;
            if reply.get_bool("done").unwrap_or(false) {
                Ok(())
            } else {
                Err(auth_error(
                    "PLAIN: the server did not finish the conversation",
                ))
            }
        }
        _ => Err(auth_error(
            "authentication state lost between handshake and login",
        )),
    }
}

fn payload_of(reply: &RawDocument) -> Result<Vec<u8>, ConnError> {
    match reply.get_binary("payload") {
        Ok(b) => Ok(b.bytes.to_vec()),
        Err(_) => Err(auth_error("SCRAM: the server's reply has no payload")),
    }
}

/// From the server-first message on: the proof, the server's signature
/// and, unless skipped, the final empty round.
async fn scram_continue(
    io: &mut Io,
    mut conv: ClientConversation,
    server_first: &RawDocument,
    source: &str,
) -> Result<(), ConnError> {
    let id = server_first
        .get("conversationId")
        .ok()
        .flatten()
        .and_then(|v| v.to_raw_bson().try_into().ok())
        .unwrap_or(Bson::Int32(1));
    let proof = conv
        .final_payload(&payload_of(server_first)?)
        .map_err(scram_error)?;
    let reply = io
        .command(
            source,
            doc! {"saslContinue": 1, "conversationId": id.clone(), "payload": binary(proof)},
            false,
        )
        .await?;
    conv.verify_server(&payload_of(&reply)?)
        .map_err(scram_error)?;
    if !reply.get_bool("done").unwrap_or(false) {
        let last = io
            .command(
                source,
                doc! {"saslContinue": 1, "conversationId": id, "payload": binary(Vec::new())},
                false,
            )
            .await?;
        if !last.get_bool("done").unwrap_or(false) {
            return Err(auth_error(
                "SCRAM: the server did not finish the conversation",
            ));
        }
    }
    Ok(())
}
