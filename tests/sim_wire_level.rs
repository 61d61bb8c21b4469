//! Raw-socket tests: malformed input never crashes the simulator and never
//! affects other connections; legacy OP_QUERY handshakes get OP_REPLY.

#[path = "sim_common/mod.rs"]
mod common;
use bson::doc;
use common::*;
use mongomon::wire::frame as wire;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// True when the server closed the connection (EOF or reset) within 3 s.
async fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 64];
    match tokio::time::timeout(Duration::from_secs(3), s.read(&mut b)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) => false,
        Err(_) => false,
    }
}

async fn still_serving(addr: SocketAddr) {
    let r = raw_cmd(addr, ping())
        .await
        .expect("other clients keep being served");
    assert_eq!(r.get_f64("ok").unwrap(), 1.0);
}

#[tokio::test]
async fn malformed_input_closes_only_that_connection() {
    let sim = start(RS3);
    let addr = sim.set_members("rs0")[0];
    // A healthy connection opened before the abuse keeps working afterwards.
    let mut healthy = TcpStream::connect(addr).await.unwrap();
    raw_on(&mut healthy, ping()).await.unwrap();

    // 1. Garbage bytes (length field is nonsense).
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(
        closed_by_server(&mut s).await,
        "garbage must close the connection"
    );

    // 2. Huge length (above maxMessageSizeBytes).
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut h = Vec::new();
    h.extend_from_slice(&(100_000_000i32).to_le_bytes());
    h.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
    h.extend_from_slice(&wire::OP_MSG.to_le_bytes());
    s.write_all(&h).await.unwrap();
    assert!(
        closed_by_server(&mut s).await,
        "huge length must close the connection"
    );

    // 3. Truncated message: header promises more than is sent, then EOF.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let full = wire::encode_op_msg_request(3, &doc! {"ping": 1, "$db": "admin"}, false);
    s.write_all(&full[..full.len() - 7]).await.unwrap();
    s.shutdown().await.unwrap();
    assert!(closed_by_server(&mut s).await);

    // 4. Complete frame whose BSON is truncated: error reply, connection survives.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut body = vec![0u8, 0, 0, 0, 0];
    body.extend_from_slice(&(200i32).to_le_bytes()); // BSON claims 200 bytes
    body.extend_from_slice(&[0x10, b'a', 0, 1, 0, 0, 0, 0]);
    let mut msg = Vec::new();
    msg.extend_from_slice(&((16 + body.len()) as i32).to_le_bytes());
    msg.extend_from_slice(&[9, 0, 0, 0, 0, 0, 0, 0]);
    msg.extend_from_slice(&wire::OP_MSG.to_le_bytes());
    msg.extend_from_slice(&body);
    s.write_all(&msg).await.unwrap();
    let err = read_reply(&mut s).await.unwrap();
    assert_eq!(err.get_f64("ok").unwrap(), 0.0);
    assert_eq!(err.get_i32("code").unwrap(), 22);
    assert_eq!(err.get_str("codeName").unwrap(), "InvalidBSON");
    assert_eq!(
        raw_on(&mut s, ping()).await.unwrap().get_f64("ok").unwrap(),
        1.0
    );

    // 5. OP_COMPRESSED is never negotiated: connection closed.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut m = Vec::new();
    m.extend_from_slice(&(16 + 9 + 4i32).to_le_bytes());
    m.extend_from_slice(&[5, 0, 0, 0, 0, 0, 0, 0]);
    m.extend_from_slice(&wire::OP_COMPRESSED.to_le_bytes());
    m.extend_from_slice(&wire::OP_MSG.to_le_bytes());
    m.extend_from_slice(&(4i32).to_le_bytes());
    m.push(1); // snappy
    m.extend_from_slice(&[0, 0, 0, 0]);
    s.write_all(&m).await.unwrap();
    assert!(
        closed_by_server(&mut s).await,
        "OP_COMPRESSED must close the connection"
    );

    // 6. Unknown opcode.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut m = Vec::new();
    m.extend_from_slice(&(20i32).to_le_bytes());
    m.extend_from_slice(&[5, 0, 0, 0, 0, 0, 0, 0]);
    m.extend_from_slice(&(4242i32).to_le_bytes());
    m.extend_from_slice(&[0, 0, 0, 0]);
    s.write_all(&m).await.unwrap();
    assert!(closed_by_server(&mut s).await);

    // 7. Negative length.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&[0xff; 16]).await.unwrap();
    assert!(closed_by_server(&mut s).await);

    assert_eq!(
        raw_on(&mut healthy, ping())
            .await
            .unwrap()
            .get_f64("ok")
            .unwrap(),
        1.0
    );
    still_serving(addr).await;
    sim.shutdown();
}

#[tokio::test]
async fn op_query_is_master_gets_op_reply_and_checksums_are_verified() {
    let sim = start(RS3);
    let addr = sim.set_members("rs0")[1];
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&wire::encode_op_query_request(
        11,
        "admin",
        &doc! {"isMaster": 1, "helloOk": true},
    ))
    .await
    .unwrap();
    let mut h = [0u8; 16];
    tokio::time::timeout(Duration::from_secs(3), s.read_exact(&mut h))
        .await
        .unwrap()
        .unwrap();
    let len = i32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
    assert_eq!(
        i32::from_le_bytes([h[8], h[9], h[10], h[11]]),
        11,
        "responseTo echoes requestID"
    );
    assert_eq!(
        i32::from_le_bytes([h[12], h[13], h[14], h[15]]),
        wire::OP_REPLY
    );
    let mut body = vec![0u8; len - 16];
    s.read_exact(&mut body).await.unwrap();
    let mut all = h.to_vec();
    all.extend_from_slice(&body);
    let reply = wire::decode_reply(&all).unwrap();
    assert!(!reply.get_bool("ismaster").unwrap());
    assert!(reply.get_bool("secondary").unwrap());
    assert_eq!(reply.get_str("setName").unwrap(), "rs0");
    assert!(reply.get_bool("helloOk").unwrap());
    assert!(
        !reply.contains_key("compression"),
        "never advertise compressors"
    );
    // OP_QUERY on a non-command namespace is refused by closing.
    let mut q = wire::encode_op_query_request(12, "admin", &doc! {"x": 1});
    let ns_at = 16 + 4;
    q[ns_at + 6..ns_at + 10].copy_from_slice(b"coll");
    s.write_all(&q).await.unwrap();
    assert!(closed_by_server(&mut s).await);

    // OP_MSG with a valid CRC-32C trailer is answered; a bad one gets an error.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&wire::encode_op_msg_request(5, &ping(), true))
        .await
        .unwrap();
    assert_eq!(
        read_reply(&mut s).await.unwrap().get_f64("ok").unwrap(),
        1.0
    );
    let mut bad = wire::encode_op_msg_request(6, &ping(), true);
    let n = bad.len();
    bad[n - 1] ^= 0x55;
    s.write_all(&bad).await.unwrap();
    let e = read_reply(&mut s).await.unwrap();
    assert_eq!(e.get_f64("ok").unwrap(), 0.0);
    assert!(e.get_str("errmsg").unwrap().contains("checksum"));
    still_serving(addr).await;
    sim.shutdown();
}

#[tokio::test]
async fn many_abusive_clients_do_not_disturb_a_driver() {
    let sim = start(RS3);
    let addr = sim.set_members("rs0")[0];
    let client = direct(addr).await;
    let mut tasks = Vec::new();
    for i in 0..50u8 {
        tasks.push(tokio::spawn(async move {
            if let Ok(Ok(mut s)) =
                tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await
            {
                let junk: Vec<u8> = (0..64u8)
                    .map(|b| b.wrapping_mul(31).wrapping_add(i))
                    .collect();
                let _ = s.write_all(&junk).await;
                let mut b = [0u8; 8];
                let _ = tokio::time::timeout(Duration::from_secs(2), s.read(&mut b)).await;
            }
        }));
        if i % 10 == 0 {
            assert_eq!(
                run(&client, "admin", doc! {"ping": 1})
                    .await
                    .unwrap()
                    .get_f64("ok")
                    .unwrap(),
                1.0
            );
        }
    }
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    assert_eq!(
        run(&client, "admin", doc! {"serverStatus": 1})
            .await
            .unwrap()
            .get_str("process")
            .unwrap(),
        "mongod"
    );
    sim.shutdown();
}
