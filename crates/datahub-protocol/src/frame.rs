//! The frame around every protobuf body, both ways: `"DHUB"`, the CRC-32C of the protobuf
//! bytes and their length (both big-endian `u32`), then the bytes. A reader checks the CRC.

/// The frame's magic.
pub const MAGIC: &[u8; 4] = b"DHUB";
/// Bytes before the protobuf body.
pub const HEADER_LEN: usize = 12;

/// `pb` framed.
pub fn encode(pb: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + pb.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&crc32c::crc32c(pb).to_be_bytes());
    out.extend_from_slice(&(pb.len() as u32).to_be_bytes());
    out.extend_from_slice(pb);
    out
}

/// The protobuf bytes of a frame, checked.
pub fn decode(frame: &[u8]) -> Result<&[u8], String> {
    if frame.len() < HEADER_LEN || &frame[..4] != MAGIC {
        return Err("not a DataHub protobuf frame (no DHUB header)".into());
    }
    let word =
        |at: usize| u32::from_be_bytes([frame[at], frame[at + 1], frame[at + 2], frame[at + 3]]);
    let (crc, len) = (word(4), word(8) as usize);
    let body = frame
        .get(HEADER_LEN..HEADER_LEN + len)
        .filter(|_| frame.len() == HEADER_LEN + len)
        .ok_or_else(|| {
            format!(
                "protobuf frame says {len} bytes but holds {}",
                frame.len() - HEADER_LEN
            )
        })?;
    if crc32c::crc32c(body) != crc {
        return Err("protobuf frame: crc check error".into());
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_round_trips_and_a_flipped_byte_is_caught() {
        let f = encode(b"hello");
        assert_eq!(&f[..4], b"DHUB");
        assert_eq!(&f[8..12], &5u32.to_be_bytes());
        assert_eq!(decode(&f), Ok(&b"hello"[..]));
        let mut bad = f.clone();
        bad[13] ^= 1;
        assert!(decode(&bad).expect_err("crc").contains("crc"));
        assert!(decode(&f[..14]).is_err());
        assert!(decode(b"XHUB00000000").is_err());
    }
}
