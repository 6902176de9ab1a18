//! Body compression as the SDK negotiates it: `Content-Encoding: lz4` is an LZ4 block without
//! a size prefix, the raw size travelling in `x-datahub-content-raw-size`; `zlib` and
//! `deflate` are zlib streams (the Java SDK's `deflate` is java.util.zip's zlib format; a raw
//! deflate stream is accepted too).

use std::io::{Read, Write};

/// A compression the protocol names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// No compression.
    None,
    /// LZ4 block.
    Lz4,
    /// zlib (`deflate` and `zlib`).
    Zlib,
}

impl Compression {
    /// From a `Content-Encoding` / `Accept-Encoding` / config name.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "" | "none" | "identity" => Compression::None,
            "lz4" => Compression::Lz4,
            "zlib" | "deflate" => Compression::Zlib,
            _ => return None,
        })
    }

    /// The header value.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Lz4 => "lz4",
            Compression::Zlib => "deflate",
        }
    }

    /// `data` compressed.
    pub fn compress(self, data: &[u8]) -> Vec<u8> {
        match self {
            Compression::None => data.to_vec(),
            Compression::Lz4 => lz4_flex::block::compress(data),
            Compression::Zlib => {
                let mut e =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
                // Writing to a Vec cannot fail.
                let _ = e.write_all(data);
                e.finish().unwrap_or_default()
            }
        }
    }

    /// `data` decompressed; `raw_size` is the announced size (needed by LZ4).
    pub fn decompress(self, data: &[u8], raw_size: Option<usize>) -> Result<Vec<u8>, String> {
        match self {
            Compression::None => Ok(data.to_vec()),
            Compression::Lz4 => {
                let size = raw_size.ok_or("lz4 body without x-datahub-content-raw-size")?;
                lz4_flex::block::decompress(data, size).map_err(|e| format!("lz4 body: {e}"))
            }
            Compression::Zlib => {
                let mut out = Vec::new();
                match flate2::read::ZlibDecoder::new(data).read_to_end(&mut out) {
                    Ok(_) => Ok(out),
                    Err(_) => {
                        out.clear();
                        flate2::read::DeflateDecoder::new(data)
                            .read_to_end(&mut out)
                            .map_err(|e| format!("deflate body: {e}"))?;
                        Ok(out)
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_compression_round_trips() {
        let data = b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".repeat(9);
        for c in [Compression::None, Compression::Lz4, Compression::Zlib] {
            let z = c.compress(&data);
            assert_eq!(
                c.decompress(&z, Some(data.len())).expect("round trip"),
                data,
                "{c:?}"
            );
        }
        assert!(Compression::Lz4.decompress(b"x", None).is_err());
        assert_eq!(Compression::parse("deflate"), Some(Compression::Zlib));
        assert_eq!(Compression::parse("snappy"), None);
    }
}
