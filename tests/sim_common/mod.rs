//! Helpers shared by the integration tests: topologies, driver clients and a
//! raw OP_MSG client. Every network operation is bounded by a timeout.
#![allow(dead_code)]

use bson::{doc, Document};
use mongodb::options::{ClientOptions, ReadPreference, SelectionCriteria};
use mongodb::Client;
use mongomon::sim::{SimHandle, Simulator, Topology};
use mongomon::wire::frame as wire;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Three-member replica set on free ports, no control endpoint.
pub const RS3: &str = r#"
[simulator]
control = "127.0.0.1:0"
[[replica_set]]
name = "rs0"
version = "7.0.12"
[[replica_set.members]]
host = "127.0.0.1:0"
priority = 2.0
[[replica_set.members]]
host = "127.0.0.1:0"
[[replica_set.members]]
host = "127.0.0.1:0"
"#;

/// Two shards of three members, three config servers, two mongos.
pub const SHARDED: &str = r#"
[[sharded_cluster]]
name = "c1"
version = "6.0.14"
[sharded_cluster.config_server]
name = "cfg"
members = [{ host = "127.0.0.1:0" }, { host = "127.0.0.1:0" }, { host = "127.0.0.1:0" }]
[[sharded_cluster.shards]]
name = "shard01"
members = [{ host = "127.0.0.1:0" }, { host = "127.0.0.1:0" }, { host = "127.0.0.1:0" }]
[[sharded_cluster.shards]]
name = "shard02"
members = [{ host = "127.0.0.1:0" }, { host = "127.0.0.1:0" }, { host = "127.0.0.1:0" }]
[[sharded_cluster.mongos]]
host = "127.0.0.1:0"
[[sharded_cluster.mongos]]
host = "127.0.0.1:0"
"#;

pub fn start(toml: &str) -> SimHandle {
    Simulator::start(Topology::from_toml_str(toml).expect("topology")).expect("simulator starts")
}

/// Driver client talking to exactly one host.
pub async fn direct(addr: SocketAddr) -> Client {
    direct_with(addr, "").await
}

pub async fn direct_with(addr: SocketAddr, extra: &str) -> Client {
    let uri = format!("mongodb://{addr}/?directConnection=true&serverSelectionTimeoutMS=3000&connectTimeoutMS=2000{extra}");
    let opts = ClientOptions::parse(uri).await.expect("uri");
    Client::with_options(opts).expect("client")
}

pub fn primary_pref() -> SelectionCriteria {
    SelectionCriteria::ReadPreference(ReadPreference::Primary)
}

/// Runs a command through the driver with a hard time bound.
pub async fn run(client: &Client, db: &str, cmd: Document) -> mongodb::error::Result<Document> {
    match tokio::time::timeout(
        Duration::from_secs(10),
        client.database(db).run_command(cmd),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => panic!("driver command did not finish within 10 s"),
    }
}

pub fn error_code(e: &mongodb::error::Error) -> Option<i32> {
    match e.kind.as_ref() {
        mongodb::error::ErrorKind::Command(c) => Some(c.code),
        _ => None,
    }
}

/// Sends one OP_MSG command over a raw socket and reads the reply.
pub async fn raw_cmd(addr: SocketAddr, cmd: Document) -> std::io::Result<Document> {
    let mut s = tokio::time::timeout(Duration::from_secs(3), TcpStream::connect(addr)).await??;
    raw_on(&mut s, cmd).await
}

pub async fn raw_on(s: &mut TcpStream, cmd: Document) -> std::io::Result<Document> {
    let msg = wire::encode_op_msg_request(1, &cmd, false);
    s.write_all(&msg).await?;
    read_reply(s).await
}

pub async fn read_reply(s: &mut TcpStream) -> std::io::Result<Document> {
    let fut = async {
        let mut h = [0u8; 16];
        s.read_exact(&mut h).await?;
        let len = i32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        if !(16..=48_000_000).contains(&len) {
            return Err(std::io::Error::other("bad reply length"));
        }
        let mut body = vec![0u8; len - 16];
        s.read_exact(&mut body).await?;
        let mut all = h.to_vec();
        all.extend_from_slice(&body);
        wire::decode_reply(&all).map_err(|e| std::io::Error::other(e.to_string()))
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .map_err(|_| std::io::Error::other("reply timeout"))?
}

pub fn ping() -> Document {
    doc! { "ping": 1, "$db": "admin" }
}
