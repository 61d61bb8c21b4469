//! MongoDB wire protocol framing, both directions: message headers, OP_MSG,
//! OP_QUERY/OP_REPLY and OP_COMPRESSED. The simulator decodes [`Request`]s
//! and frames replies; the agent's connection frames commands
//! ([`encode_command`], [`encode_query_command`]) and reads replies as raw
//! BSON ([`parse_reply`]). Nothing here knows about commands or topology.
//!
//! Everything here treats the peer as hostile: lengths are checked before any
//! allocation, BSON is checked before it is handed on, and every failure is a
//! [`WireError`] so that the connection can answer or close without panicking.

use bson::{Document, RawDocumentBuf};
use thiserror::Error;

use super::compress::Compressor;
use tokio::io::{AsyncRead, AsyncReadExt};

/// OP_REPLY (legacy reply to OP_QUERY).
pub const OP_REPLY: i32 = 1;
/// OP_QUERY (legacy; still used for the first handshake by some drivers).
pub const OP_QUERY: i32 = 2004;
/// OP_COMPRESSED: another message, compressed with a negotiated compressor.
pub const OP_COMPRESSED: i32 = 2012;
/// OP_MSG, the modern opcode.
pub const OP_MSG: i32 = 2013;

/// Largest message mongod accepts (`maxMessageSizeBytes`).
pub const MAX_MESSAGE_SIZE: usize = 48_000_000;
/// Header length in bytes.
pub const HEADER_LEN: usize = 16;

/// OP_MSG flag: a CRC-32C checksum trails the message.
pub const FLAG_CHECKSUM_PRESENT: u32 = 1;
/// OP_MSG flag: the sender will send another message without waiting.
pub const FLAG_MORE_TO_COME: u32 = 1 << 1;
/// OP_MSG flag: the client accepts exhaust (streamed) replies.
pub const FLAG_EXHAUST_ALLOWED: u32 = 1 << 16;

/// Framing and decoding failures. None of them is fatal to the simulator, only
/// (at most) to the connection that produced it.
#[derive(Debug, Error)]
pub enum WireError {
    /// The peer closed the connection (cleanly or not).
    #[error("connection closed: {0}")]
    Io(#[from] std::io::Error),
    /// messageLength below the header size or above `maxMessageSizeBytes`.
    #[error("invalid message length {0}")]
    BadLength(i64),
    /// Opcode we do not implement.
    #[error("unsupported opcode {0}")]
    UnknownOpcode(i32),
    /// OP_COMPRESSED with a compressor that was not negotiated (or none was).
    #[error("OP_COMPRESSED with compressor id {0}, which was not negotiated")]
    Compressed(u8),
    /// The compressed body does not decompress to what its header claims.
    #[error("OP_COMPRESSED body cannot be decompressed: {0}")]
    Decompress(String),
    /// A reply that answers another request than the one outstanding.
    #[error("reply answers request {got}, expected {expected}")]
    ResponseTo {
        /// The request id sent.
        expected: i32,
        /// The responseTo received.
        got: i32,
    },
    /// The body is shorter than its own structure claims, or a field is invalid.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The OP_MSG checksum does not match the bytes.
    #[error("OP_MSG checksum mismatch")]
    Checksum,
}

/// The fixed 16-byte header in front of every message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Total length including the header.
    pub length: i32,
    /// Sender-chosen id.
    pub request_id: i32,
    /// Id of the request this message answers (0 in requests).
    pub response_to: i32,
    /// Opcode.
    pub op_code: i32,
}

impl Header {
    /// Parses a header from exactly 16 bytes and checks the length bounds.
    pub fn parse(b: &[u8; HEADER_LEN]) -> Result<Header, WireError> {
        let h = Header {
            length: le_i32(&b[0..4]),
            request_id: le_i32(&b[4..8]),
            response_to: le_i32(&b[8..12]),
            op_code: le_i32(&b[12..16]),
        };
        if h.length < HEADER_LEN as i32 || h.length as usize > MAX_MESSAGE_SIZE {
            return Err(WireError::BadLength(h.length as i64));
        }
        Ok(h)
    }
}

/// How the request arrived, which decides the reply's framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// OP_MSG: reply with OP_MSG.
    Msg {
        /// The request's flagBits.
        flags: u32,
    },
    /// OP_QUERY on a `$cmd` namespace: reply with OP_REPLY.
    Query,
}

/// A decoded command request.
#[derive(Debug, Clone)]
pub struct Request {
    /// The request header.
    pub header: Header,
    /// How to frame the reply.
    pub framing: Framing,
    /// The command document (with kind-1 sequences merged in as arrays, and
    /// `$db` set for OP_QUERY).
    pub command: Document,
    /// Database the command targets.
    pub db: String,
}

impl Request {
    /// True when the client said it does not want a reply (moreToCome on a request).
    pub fn more_to_come(&self) -> bool {
        matches!(self.framing, Framing::Msg { flags } if flags & FLAG_MORE_TO_COME != 0)
    }
}

/// Reads one message from `r`. Returns the header and body (without header).
pub async fn read_message<R: AsyncRead + Unpin>(r: &mut R) -> Result<(Header, Vec<u8>), WireError> {
    let mut body = Vec::new();
    let header = read_message_into(r, &mut body).await?;
    Ok((header, body))
}

/// Reads one message from `r` into `body` (cleared first).
pub async fn read_message_into<R: AsyncRead + Unpin>(
    r: &mut R,
    body: &mut Vec<u8>,
) -> Result<Header, WireError> {
    let mut hb = [0u8; HEADER_LEN];
    r.read_exact(&mut hb).await?;
    let header = Header::parse(&hb)?;
    body.clear();
    let len = header.length as usize - HEADER_LEN;
    body.reserve_exact(len);
    // Into the spare capacity, without zeroing it first: a 38 KB
    // serverStatus per host and round adds up.
    let mut rest = (&mut *r).take(len as u64);
    while body.len() < len {
        if rest.read_buf(body).await? == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
    }
    Ok(header)
}

/// Decodes a message body into a [`Request`]. `compressors` are the ones
/// negotiated on this connection: OP_COMPRESSED with any other is refused.
pub fn decode_request(header: Header, body: &[u8]) -> Result<Request, WireError> {
    decode_request_with(header, body, &[])
}

/// [`decode_request`] on a connection that negotiated `compressors`.
pub fn decode_request_with(
    header: Header,
    body: &[u8],
    compressors: &[Compressor],
) -> Result<Request, WireError> {
    match header.op_code {
        OP_MSG => decode_op_msg(header, body),
        OP_QUERY => decode_op_query(header, body),
        OP_COMPRESSED => {
            let (inner, plain) = decompress(header, body, compressors)?;
            if inner.op_code == OP_COMPRESSED {
                return Err(WireError::Malformed(
                    "OP_COMPRESSED inside OP_COMPRESSED".into(),
                ));
            }
            decode_request_with(inner, &plain, &[])
        }
        other => Err(WireError::UnknownOpcode(other)),
    }
}

/// Unwraps an OP_COMPRESSED body: the original header (its length as if
/// uncompressed) and the decompressed body.
pub fn decompress(
    header: Header,
    body: &[u8],
    compressors: &[Compressor],
) -> Result<(Header, Vec<u8>), WireError> {
    if body.len() < 9 {
        return Err(WireError::Malformed(
            "OP_COMPRESSED shorter than its fields".into(),
        ));
    }
    let op_code = le_i32(&body[0..4]);
    let size = le_i32(&body[4..8]);
    let id = body[8];
    let Some(c) = compressors.iter().copied().find(|c| c.id() == id) else {
        return Err(WireError::Compressed(id));
    };
    if size < 0 || size as usize > MAX_MESSAGE_SIZE - HEADER_LEN {
        return Err(WireError::BadLength(size as i64));
    }
    let plain = c
        .decompress(&body[9..], size as usize)
        .map_err(WireError::Decompress)?;
    if plain.len() != size as usize {
        return Err(WireError::Decompress(format!(
            "{} bytes, header said {size}",
            plain.len()
        )));
    }
    let inner = Header {
        length: size + HEADER_LEN as i32,
        request_id: header.request_id,
        response_to: header.response_to,
        op_code,
    };
    Ok((inner, plain))
}

/// Wraps a complete message (header included) as OP_COMPRESSED.
pub fn compress(msg: &[u8], c: Compressor) -> Vec<u8> {
    let h = &msg[..HEADER_LEN];
    let body = &msg[HEADER_LEN..];
    let packed = c.compress(body);
    let len = HEADER_LEN + 9 + packed.len();
    let mut out = Vec::with_capacity(len);
    push_header(
        &mut out,
        len,
        le_i32(&h[4..8]),
        le_i32(&h[8..12]),
        OP_COMPRESSED,
    );
    out.extend_from_slice(&h[12..16]);
    out.extend_from_slice(&(body.len() as i32).to_le_bytes());
    out.push(c.id());
    out.extend_from_slice(&packed);
    out
}

/// Reads the reply to request `request_id` from a message the agent
/// received: OP_MSG (checksum verified when present) or OP_REPLY, either
/// possibly inside OP_COMPRESSED with one of `compressors`. The document
/// is checked to be well-formed BSON and returned raw, in `body`'s own
/// allocation (the connection keeps no buffer the size of its largest
/// reply between rounds).
pub fn parse_reply(
    header: Header,
    mut body: Vec<u8>,
    request_id: i32,
    compressors: &[Compressor],
) -> Result<RawDocumentBuf, WireError> {
    if header.response_to != request_id {
        return Err(WireError::ResponseTo {
            expected: request_id,
            got: header.response_to,
        });
    }
    let (start, end) = match header.op_code {
        OP_MSG => {
            if body.len() < 5 {
                return Err(WireError::Malformed("OP_MSG reply too short".into()));
            }
            let flags = le_i32(&body[0..4]) as u32;
            let end = checked_end(header, &body, flags)?;
            if body[4] != 0 {
                return Err(WireError::Malformed(format!(
                    "reply starts with section kind {}, not a body",
                    body[4]
                )));
            }
            (5, end)
        }
        OP_REPLY => {
            if body.len() < 20 {
                return Err(WireError::Malformed("OP_REPLY too short".into()));
            }
            if le_i32(&body[16..20]) < 1 {
                return Err(WireError::Malformed("OP_REPLY without a document".into()));
            }
            (20, body.len())
        }
        OP_COMPRESSED => {
            let (inner, plain) = decompress(header, &body, compressors)?;
            if inner.op_code == OP_COMPRESSED {
                return Err(WireError::Malformed(
                    "OP_COMPRESSED inside OP_COMPRESSED".into(),
                ));
            }
            return parse_reply(inner, plain, request_id, &[]);
        }
        other => return Err(WireError::UnknownOpcode(other)),
    };
    check_doc(&body[start..end])?;
    body.truncate(end);
    body.drain(..start);
    RawDocumentBuf::from_bytes(body).map_err(|e| WireError::Malformed(format!("invalid BSON: {e}")))
}

/// `b` must be exactly one document, valid BSON all the way down (every
/// later read of it can then trust its lengths).
fn check_doc(b: &[u8]) -> Result<(), WireError> {
    if b.len() < 5 {
        return Err(WireError::Malformed("truncated BSON document".into()));
    }
    let len = le_i32(&b[0..4]);
    if len < 5 || len as usize != b.len() {
        return Err(WireError::Malformed(format!(
            "BSON length {len} does not match the {} bytes of the message",
            b.len()
        )));
    }
    super::raw::validate(b).map_err(|e| WireError::Malformed(format!("invalid BSON: {e}")))
}

/// Where an OP_MSG body's sections end: before the CRC-32C trailer, which
/// is verified, when the flags say there is one.
fn checked_end(header: Header, body: &[u8], flags: u32) -> Result<usize, WireError> {
    if flags & FLAG_CHECKSUM_PRESENT == 0 {
        return Ok(body.len());
    }
    if body.len() < 9 {
        return Err(WireError::Malformed(
            "checksum flag set but message too short".into(),
        ));
    }
    let end = body.len() - 4;
    verify_checksum(header, body, end)?;
    Ok(end)
}

fn verify_checksum(header: Header, body: &[u8], end: usize) -> Result<(), WireError> {
    let expected = le_i32(&body[end..]) as u32;
    // The CRC covers the header too, so rebuild it.
    let mut c = Crc32c::new();
    c.update(&header.length.to_le_bytes());
    c.update(&header.request_id.to_le_bytes());
    c.update(&header.response_to.to_le_bytes());
    c.update(&header.op_code.to_le_bytes());
    c.update(&body[..end]);
    if c.finish() != expected {
        return Err(WireError::Checksum);
    }
    Ok(())
}

fn decode_op_msg(header: Header, body: &[u8]) -> Result<Request, WireError> {
    if body.len() < 5 {
        return Err(WireError::Malformed(
            "OP_MSG shorter than flagBits + one section".into(),
        ));
    }
    let flags = le_i32(&body[0..4]) as u32;
    // Bits 0-15 are "required": an unknown required bit must be rejected.
    let known = FLAG_CHECKSUM_PRESENT | FLAG_MORE_TO_COME;
    if flags & 0xFFFF & !known != 0 {
        return Err(WireError::Malformed(format!(
            "unknown required OP_MSG flag bits {flags:#x}"
        )));
    }
    let end = checked_end(header, body, flags)?;
    let mut pos = 4;
    let mut command: Option<Document> = None;
    let mut sequences: Vec<(String, Vec<bson::Bson>)> = Vec::new();
    while pos < end {
        let kind = body[pos];
        pos += 1;
        match kind {
            0 => {
                let (doc, used) = read_doc(&body[pos..end])?;
                if command.is_some() {
                    return Err(WireError::Malformed("more than one kind-0 section".into()));
                }
                command = Some(doc);
                pos += used;
            }
            1 => {
                if end - pos < 4 {
                    return Err(WireError::Malformed("truncated document sequence".into()));
                }
                let size = le_i32(&body[pos..pos + 4]);
                if size < 5 || size as usize > end - pos {
                    return Err(WireError::Malformed(format!(
                        "bad document sequence size {size}"
                    )));
                }
                let seq = &body[pos + 4..pos + size as usize];
                let nul = seq.iter().position(|&b| b == 0).ok_or_else(|| {
                    WireError::Malformed("unterminated sequence identifier".into())
                })?;
                let ident = String::from_utf8(seq[..nul].to_vec())
                    .map_err(|_| WireError::Malformed("sequence identifier is not UTF-8".into()))?;
                let mut docs = Vec::new();
                let mut p = nul + 1;
                while p < seq.len() {
                    let (d, used) = read_doc(&seq[p..])?;
                    docs.push(bson::Bson::Document(d));
                    p += used;
                }
                sequences.push((ident, docs));
                pos += size as usize;
            }
            k => {
                return Err(WireError::Malformed(format!(
                    "unknown OP_MSG section kind {k}"
                )))
            }
        }
    }
    let mut command =
        command.ok_or_else(|| WireError::Malformed("OP_MSG without a body section".into()))?;
    for (ident, docs) in sequences {
        // Drivers send e.g. `documents` of an insert this way; merge as an array.
        command.insert(ident, bson::Bson::Array(docs));
    }
    let db = match command.get("$db") {
        Some(bson::Bson::String(s)) => s.clone(),
        _ => return Err(WireError::Malformed("OP_MSG command without $db".into())),
    };
    Ok(Request {
        header,
        framing: Framing::Msg { flags },
        command,
        db,
    })
}

fn decode_op_query(header: Header, body: &[u8]) -> Result<Request, WireError> {
    if body.len() < 4 {
        return Err(WireError::Malformed("OP_QUERY too short".into()));
    }
    let nul = body[4..]
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| WireError::Malformed("unterminated fullCollectionName".into()))?;
    let ns = std::str::from_utf8(&body[4..4 + nul])
        .map_err(|_| WireError::Malformed("namespace is not UTF-8".into()))?
        .to_string();
    let mut pos = 4 + nul + 1;
    if body.len() < pos + 8 {
        return Err(WireError::Malformed(
            "OP_QUERY missing skip/return counts".into(),
        ));
    }
    pos += 8;
    let (mut query, _) = read_doc(&body[pos..])?;
    let Some(db) = ns.strip_suffix(".$cmd") else {
        return Err(WireError::Malformed(format!(
            "OP_QUERY on {ns} is not a command namespace"
        )));
    };
    // Old shells wrap the command as {$query: {...}, $readPreference: ...}.
    if let Ok(inner) = query.get_document("$query") {
        query = inner.clone();
    }
    query.insert("$db", db.to_string());
    Ok(Request {
        header,
        framing: Framing::Query,
        command: query,
        db: db.to_string(),
    })
}

/// Reads one BSON document from the front of `b`, returning it and its size.
fn read_doc(b: &[u8]) -> Result<(Document, usize), WireError> {
    if b.len() < 5 {
        return Err(WireError::Malformed("truncated BSON document".into()));
    }
    let len = le_i32(&b[0..4]);
    if len < 5 || len as usize > b.len() {
        return Err(WireError::Malformed(format!(
            "BSON length {len} exceeds message"
        )));
    }
    let doc = Document::from_reader(&b[..len as usize])
        .map_err(|e| WireError::Malformed(format!("invalid BSON: {e}")))?;
    Ok((doc, len as usize))
}

/// Builds a complete OP_MSG reply around an already encoded BSON document.
pub fn encode_op_msg(request_id: i32, response_to: i32, flags: u32, doc: &[u8]) -> Vec<u8> {
    let len = HEADER_LEN + 4 + 1 + doc.len();
    let mut out = Vec::with_capacity(len);
    push_header(&mut out, len, request_id, response_to, OP_MSG);
    out.extend_from_slice(&flags.to_le_bytes());
    out.push(0);
    out.extend_from_slice(doc);
    out
}

/// Builds a complete OP_REPLY around an already encoded BSON document.
pub fn encode_op_reply(request_id: i32, response_to: i32, doc: &[u8]) -> Vec<u8> {
    let len = HEADER_LEN + 4 + 8 + 4 + 4 + doc.len();
    let mut out = Vec::with_capacity(len);
    push_header(&mut out, len, request_id, response_to, OP_REPLY);
    // responseFlags: AwaitCapable (8), as mongod sets it.
    out.extend_from_slice(&8i32.to_le_bytes());
    out.extend_from_slice(&0i64.to_le_bytes()); // cursorID
    out.extend_from_slice(&0i32.to_le_bytes()); // startingFrom
    out.extend_from_slice(&1i32.to_le_bytes()); // numberReturned
    out.extend_from_slice(doc);
    out
}

fn push_header(out: &mut Vec<u8>, len: usize, request_id: i32, response_to: i32, op: i32) {
    out.extend_from_slice(&(len as i32).to_le_bytes());
    out.extend_from_slice(&request_id.to_le_bytes());
    out.extend_from_slice(&response_to.to_le_bytes());
    out.extend_from_slice(&op.to_le_bytes());
}

/// Frames an encoded command (which carries its own `$db`) as an OP_MSG
/// request into `out` (cleared first). `checksum` appends a CRC-32C trailer.
pub fn encode_command(out: &mut Vec<u8>, request_id: i32, doc: &[u8], checksum: bool) {
    let flags = if checksum { FLAG_CHECKSUM_PRESENT } else { 0 };
    let len = HEADER_LEN + 4 + 1 + doc.len() + if checksum { 4 } else { 0 };
    out.clear();
    out.reserve(len);
    push_header(out, len, request_id, 0, OP_MSG);
    out.extend_from_slice(&flags.to_le_bytes());
    out.push(0);
    out.extend_from_slice(doc);
    if checksum {
        let mut c = Crc32c::new();
        c.update(out);
        out.extend_from_slice(&c.finish().to_le_bytes());
    }
}

/// Frames an encoded command as a legacy OP_QUERY on `db.$cmd` into `out`:
/// what the first handshake uses, since every server from 3.6 to 8.0
/// answers `isMaster` that way before anything is known about it.
pub fn encode_query_command(out: &mut Vec<u8>, request_id: i32, db: &str, doc: &[u8]) {
    let len = HEADER_LEN + 4 + db.len() + 5 + 1 + 8 + doc.len();
    out.clear();
    out.reserve(len);
    push_header(out, len, request_id, 0, OP_QUERY);
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(db.as_bytes());
    out.extend_from_slice(b".$cmd\0");
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&(-1i32).to_le_bytes());
    out.extend_from_slice(doc);
}

/// Encodes a request the way a driver would; used by tests. `checksum`
/// appends a CRC-32C trailer.
pub fn encode_op_msg_request(request_id: i32, doc: &Document, checksum: bool) -> Vec<u8> {
    let body = bson::to_vec(doc).unwrap_or_default();
    let mut out = Vec::new();
    encode_command(&mut out, request_id, &body, checksum);
    out
}

/// Encodes a legacy OP_QUERY command on `db.$cmd`; used by tests.
pub fn encode_op_query_request(request_id: i32, db: &str, doc: &Document) -> Vec<u8> {
    let body = bson::to_vec(doc).unwrap_or_default();
    let mut out = Vec::new();
    encode_query_command(&mut out, request_id, db, &body);
    out
}

/// Extracts the reply document from a complete OP_MSG or OP_REPLY message
/// (header included). Used by tests that talk raw TCP.
pub fn decode_reply(msg: &[u8]) -> Result<Document, WireError> {
    if msg.len() < HEADER_LEN {
        return Err(WireError::Malformed("short reply".into()));
    }
    let mut hb = [0u8; HEADER_LEN];
    hb.copy_from_slice(&msg[..HEADER_LEN]);
    let h = Header::parse(&hb)?;
    let body = &msg[HEADER_LEN..];
    match h.op_code {
        OP_MSG if body.len() > 5 => Ok(read_doc(&body[5..])?.0),
        OP_REPLY if body.len() > 20 => Ok(read_doc(&body[20..])?.0),
        op => Err(WireError::UnknownOpcode(op)),
    }
}

fn le_i32(b: &[u8]) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    i32::from_le_bytes(a)
}

/// CRC-32C (Castagnoli), table driven; OP_MSG checksums use it.
pub struct Crc32c {
    crc: u32,
}

const fn crc32c_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CRC32C_TABLE: [u32; 256] = crc32c_table();

impl Default for Crc32c {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc32c {
    /// Starts a new checksum.
    pub fn new() -> Self {
        Crc32c { crc: !0 }
    }
    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.crc = CRC32C_TABLE[((self.crc ^ b as u32) & 0xFF) as usize] ^ (self.crc >> 8);
        }
    }
    /// Final value.
    pub fn finish(&self) -> u32 {
        !self.crc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn crc32c_known_vector() {
        let mut c = Crc32c::new();
        c.update(b"123456789");
        assert_eq!(c.finish(), 0xE306_9283);
    }

    #[test]
    fn op_msg_roundtrip_with_checksum_and_sequence() {
        let msg = encode_op_msg_request(7, &doc! {"insert": "c", "$db": "test"}, true);
        let mut hb = [0u8; HEADER_LEN];
        hb.copy_from_slice(&msg[..16]);
        let h = Header::parse(&hb).unwrap();
        let r = decode_request(h, &msg[16..]).unwrap();
        assert_eq!(r.db, "test");
        // Corrupt one byte: checksum must fail.
        let mut bad = msg.clone();
        bad[30] ^= 1;
        assert!(matches!(
            decode_request(h, &bad[16..]),
            Err(WireError::Checksum)
        ));

        // Hand-built kind-1 section.
        let body_doc = bson::to_vec(&doc! {"insert": "c", "$db": "test"}).unwrap();
        let d1 = bson::to_vec(&doc! {"_id": 1}).unwrap();
        let mut body = vec![0, 0, 0, 0, 0];
        body.extend_from_slice(&body_doc);
        body.push(1);
        let size = 4 + "documents".len() + 1 + d1.len();
        body.extend_from_slice(&(size as i32).to_le_bytes());
        body.extend_from_slice(b"documents\0");
        body.extend_from_slice(&d1);
        let h = Header {
            length: (16 + body.len()) as i32,
            request_id: 1,
            response_to: 0,
            op_code: OP_MSG,
        };
        let r = decode_request(h, &body).unwrap();
        assert_eq!(r.command.get_array("documents").unwrap().len(), 1);
    }

    #[test]
    fn rejects_bad_lengths_and_truncation() {
        let mut hb = [0u8; 16];
        hb[0..4].copy_from_slice(&(-5i32).to_le_bytes());
        assert!(Header::parse(&hb).is_err());
        hb[0..4].copy_from_slice(&(100_000_000i32).to_le_bytes());
        assert!(Header::parse(&hb).is_err());
        let h = Header {
            length: 30,
            request_id: 1,
            response_to: 0,
            op_code: OP_MSG,
        };
        assert!(decode_request(h, &[0, 0, 0, 0, 0, 50, 0, 0, 0, 1]).is_err());
        let h = Header {
            length: 30,
            request_id: 1,
            response_to: 0,
            op_code: 9999,
        };
        assert!(matches!(
            decode_request(h, &[0; 14]),
            Err(WireError::UnknownOpcode(9999))
        ));
    }
}
