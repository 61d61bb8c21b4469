//! Wire compression (OP_COMPRESSED): the three compressors MongoDB speaks,
//! by their wire ids. The agent offers the ones its connection string names
//! (`compressors=`) and uses the first the server accepts; the simulator
//! accepts what it is offered.

use std::io::{Read, Write};

/// A compressor, in the order of their wire ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compressor {
    /// Snappy's block format (id 1).
    Snappy,
    /// zlib (id 2), at the level the connection string asks for.
    Zlib {
        /// 0–9; the driver's default is 6, the agent's 1 (fastest).
        level: u32,
    },
    /// Zstandard (id 3), level 1.
    Zstd,
}

impl Compressor {
    /// From the name used in `hello`'s `compression` list and in URIs.
    pub fn from_name(name: &str, zlib_level: Option<i32>) -> Option<Compressor> {
        match name {
            "snappy" => Some(Compressor::Snappy),
            "zlib" => Some(Compressor::Zlib {
                level: zlib_level.map_or(1, |l| l.clamp(0, 9) as u32),
            }),
            "zstd" => Some(Compressor::Zstd),
            _ => None,
        }
    }

    /// The name `hello` uses.
    pub fn name(self) -> &'static str {
        match self {
            Compressor::Snappy => "snappy",
            Compressor::Zlib { .. } => "zlib",
            Compressor::Zstd => "zstd",
        }
    }

    /// The wire id in OP_COMPRESSED.
    pub fn id(self) -> u8 {
        match self {
            Compressor::Snappy => 1,
            Compressor::Zlib { .. } => 2,
            Compressor::Zstd => 3,
        }
    }

    /// Compresses a message body.
    pub fn compress(self, data: &[u8]) -> Vec<u8> {
        match self {
            // Both encoders only fail on allocation or on input above 4 GiB,
            // which a message (at most 48 MB) never is; an empty result then
            // fails the peer's decompression instead of panicking here.
            Compressor::Snappy => snap::raw::Encoder::new()
                .compress_vec(data)
                .unwrap_or_default(),
            Compressor::Zlib { level } => {
                let mut e = flate2::write::ZlibEncoder::new(
                    Vec::with_capacity(data.len() / 2),
                    flate2::Compression::new(level),
                );
                let _ = e.write_all(data);
                e.finish().unwrap_or_default()
            }
            Compressor::Zstd => zstd::bulk::compress(data, 1).unwrap_or_default(),
        }
    }

    /// Decompresses a body that claims to be `size` bytes; never allocates
    /// more than `size`.
    pub fn decompress(self, data: &[u8], size: usize) -> Result<Vec<u8>, String> {
        match self {
            Compressor::Snappy => {
                let claimed = snap::raw::decompress_len(data).map_err(|e| e.to_string())?;
                if claimed != size {
                    return Err(format!("snappy says {claimed} bytes, header said {size}"));
                }
                snap::raw::Decoder::new()
                    .decompress_vec(data)
                    .map_err(|e| e.to_string())
            }
            Compressor::Zlib { .. } => {
                let mut out = Vec::with_capacity(size);
                // One byte past `size` tells a body that is too long apart.
                flate2::read::ZlibDecoder::new(data)
                    .take(size as u64 + 1)
                    .read_to_end(&mut out)
                    .map_err(|e| e.to_string())?;
                Ok(out)
            }
            Compressor::Zstd => zstd::bulk::decompress(data, size).map_err(|e| e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_compressor_round_trips_and_refuses_a_wrong_size() {
        let data: Vec<u8> = (0..5000u32).flat_map(|i| (i % 97).to_le_bytes()).collect();
        for c in [
            Compressor::Snappy,
            Compressor::Zlib { level: 1 },
            Compressor::Zstd,
        ] {
            let packed = c.compress(&data);
            assert!(packed.len() < data.len(), "{} did not compress", c.name());
            assert_eq!(c.decompress(&packed, data.len()).unwrap(), data);
            let short = c.decompress(&packed, data.len() - 10);
            assert!(
                short.is_err() || short.unwrap().len() != data.len() - 10,
                "{} accepted a wrong size",
                c.name()
            );
            assert!(c.decompress(&[1, 2, 3, 4, 5], 100).is_err());
        }
    }

    #[test]
    fn names_and_ids_match_the_wire() {
        assert_eq!(Compressor::from_name("snappy", None).unwrap().id(), 1);
        assert_eq!(
            Compressor::from_name("zlib", Some(12)),
            Some(Compressor::Zlib { level: 9 })
        );
        assert_eq!(Compressor::from_name("zstd", None).unwrap().id(), 3);
        assert_eq!(Compressor::from_name("lz4", None), None);
    }
}
