//! Reading one HTTP/1.1 request from a keep-alive connection, for the small
//! in-process receivers of `demo`, `bench` and the discovery bench: the
//! request line and headers are skipped, the body is read by
//! `Content-Length` and decompressed when it says `Content-Encoding: gzip`
//! or `zstd`.

use std::io::{self, BufRead, Read};

/// Bodies are bounded by `upload.max_batch_bytes`; anything past this is
/// not a batch of ours.
pub const MAX_BODY: usize = 64 << 20;

/// How a request body is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEncoding {
    Identity,
    Gzip,
    Zstd,
}

/// One request body. `Ok(None)`: the peer closed the connection. An error
/// of kind `WouldBlock`/`TimedOut` before the first byte is a read timeout
/// with nothing lost (callers use it to check a stop flag); `InvalidData` is
/// a body that does not gunzip or is too large.
pub fn read_body(r: &mut impl BufRead) -> io::Result<Option<Vec<u8>>> {
    match read_raw_body(r)? {
        Some((body, encoding)) => decode_body(body, encoding).map(Some),
        None => Ok(None),
    }
}

/// Like [`read_body`], without decompressing: the bytes as sent, and their
/// encoding, for a receiver that decodes later, off its request path.
pub fn read_raw_body(r: &mut impl BufRead) -> io::Result<Option<(Vec<u8>, BodyEncoding)>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let (mut len, mut encoding) = (0usize, BodyEncoding::Identity);
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 {
            return Ok(None);
        }
        let h = h.trim_end().to_ascii_lowercase();
        if h.is_empty() {
            break;
        }
        if let Some(v) = h.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        } else if h.starts_with("content-encoding:") {
            if h.contains("gzip") {
                encoding = BodyEncoding::Gzip;
            } else if h.contains("zstd") {
                encoding = BodyEncoding::Zstd;
            }
        }
    }
    if len > MAX_BODY {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "body too large"));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(Some((body, encoding)))
}

/// Decompresses a body read by [`read_raw_body`].
pub fn decode_body(body: Vec<u8>, encoding: BodyEncoding) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    match encoding {
        BodyEncoding::Identity => return Ok(body),
        BodyEncoding::Gzip => flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut out)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
        BodyEncoding::Zstd => zstd::stream::read::Decoder::new(&body[..])
            .and_then(|mut d| d.read_to_end(&mut out))
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
    };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_plain_and_gzipped_bodies_then_eof() {
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(b"zipped").unwrap();
        let z = z.finish().unwrap();
        let mut wire = b"POST /w HTTP/1.1\r\nContent-Length: 5\r\n\r\nplain".to_vec();
        wire.extend_from_slice(
            format!(
                "POST /w HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
                z.len()
            )
            .as_bytes(),
        );
        wire.extend_from_slice(&z);
        let mut r = io::BufReader::new(&wire[..]);
        assert_eq!(read_body(&mut r).unwrap().unwrap(), b"plain");
        assert_eq!(read_body(&mut r).unwrap().unwrap(), b"zipped");
        assert!(read_body(&mut r).unwrap().is_none());
        let mut bad = io::BufReader::new(
            &b"POST / HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\nxyz"[..],
        );
        assert_eq!(
            read_body(&mut bad).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn reads_zstd_bodies() {
        let z = zstd::bulk::compress(b"squeezed", 1).unwrap();
        let mut wire = format!(
            "POST /w HTTP/1.1\r\nContent-Encoding: zstd\r\nContent-Length: {}\r\n\r\n",
            z.len()
        )
        .into_bytes();
        wire.extend_from_slice(&z);
        let mut r = io::BufReader::new(&wire[..]);
        assert_eq!(read_body(&mut r).unwrap().unwrap(), b"squeezed");
    }
}
