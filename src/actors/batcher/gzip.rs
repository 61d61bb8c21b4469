//! gzip with one reused compressor.
//!
//! `flate2::write::GzEncoder` builds a new deflate state per stream: about
//! 300 KB of tables, zeroed, and freshly faulted-in pages, for every batch.
//! At thousands of hosts that showed up as a fifth of the agent's CPU
//! (`mongomon bench --hosts 300` under `perf`). Here the deflate state lives
//! as long as the batcher and is reset between batches; the gzip framing
//! around it (RFC 1952: a 10-byte header, the raw deflate stream, CRC-32
//! and length) is written here.

use flate2::{Compress, Compression, FlushCompress, Status};

/// ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=255 (unknown).
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

pub struct Gzip {
    deflate: Compress,
}

impl Default for Gzip {
    fn default() -> Self {
        // Level 1: most of the size win for a fraction of the CPU; line
        // protocol and JSON compress 5–10× even so.
        Gzip {
            deflate: Compress::new(Compression::fast(), false),
        }
    }
}

impl Gzip {
    /// One complete gzip member holding `raw`.
    pub fn compress(&mut self, raw: &[u8]) -> std::io::Result<Vec<u8>> {
        self.deflate.reset();
        let mut out = Vec::with_capacity(raw.len() / 4 + 64);
        out.extend_from_slice(&HEADER);
        loop {
            if out.capacity() - out.len() < 4096 {
                out.reserve(out.capacity().max(4096));
            }
            let consumed = self.deflate.total_in() as usize;
            let status = self
                .deflate
                .compress_vec(&raw[consumed..], &mut out, FlushCompress::Finish)
                .map_err(std::io::Error::other)?;
            if status == Status::StreamEnd {
                break;
            }
        }
        out.extend_from_slice(&crc32fast::hash(raw).to_le_bytes());
        // ISIZE is the length modulo 2^32 by definition.
        out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(z: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(z)
            .read_to_end(&mut out)
            .expect("a valid gzip stream");
        out
    }

    #[test]
    fn reused_compressor_writes_valid_independent_members() {
        let mut gz = Gzip::default();
        let big: Vec<u8> = (0..3_000_000u32)
            .flat_map(|i| format!("m,host=h{} v={}i\n", i % 97, i).into_bytes())
            .take(3 << 20)
            .collect();
        for input in [&b"a,b=c d=1i 1\n"[..], &big[..], &[][..], &big[..1000]] {
            let z = gz.compress(input).unwrap();
            assert_eq!(&z[..2], &[0x1f, 0x8b]);
            assert_eq!(gunzip(&z), input, "round trip of {} bytes", input.len());
        }
        // Compressed, not stored.
        assert!(gz.compress(&big).unwrap().len() < big.len() / 3);
    }
}
