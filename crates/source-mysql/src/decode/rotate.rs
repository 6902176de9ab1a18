//! The file name a rotate event names.
//!
//! The artificial rotate a server sends first on a dump comes before the format description, so
//! the event stream cannot know whether the server checksums events and leaves a CRC32 checksum
//! on the end of the name. Guessing from the shape of the name is not enough: four checksum
//! bytes can themselves end in `.` and digits (`mariadb-bin.000001` + `0\x07.5` once reached a
//! checkpoint as a file that does not exist). So the last four bytes are cut off exactly when
//! they are the CRC32 of everything before them, as the server computes it; a real name matches
//! by chance with probability 2^-32.

use mysql_async::binlog::events::Event as RawEvent;

/// The length of a binlog event header (v4).
const HEADER_LEN: usize = 19;
/// The length of a CRC32 event checksum.
const CHECKSUM_LEN: usize = 4;

/// The file name of rotate event `ev` whose raw name field (the event's last bytes) is `raw`.
pub(super) fn file_name(ev: &RawEvent, raw: &[u8]) -> String {
    let h = ev.header();
    let mut header = [0u8; HEADER_LEN];
    header[0..4].copy_from_slice(&h.timestamp().to_le_bytes());
    header[4] = h.event_type_raw();
    header[5..9].copy_from_slice(&h.server_id().to_le_bytes());
    header[9..13].copy_from_slice(&h.event_size().to_le_bytes());
    header[13..17].copy_from_slice(&h.log_pos().to_le_bytes());
    header[17..19].copy_from_slice(&h.flags_raw().to_le_bytes());
    let name = if raw.len() > CHECKSUM_LEN && ends_in_its_checksum(&header, ev.data()) {
        &raw[..raw.len() - CHECKSUM_LEN]
    } else {
        raw
    };
    String::from_utf8_lossy(name).into_owned()
}

/// Whether `data` (the event after its header) ends in the CRC32 of the header and the rest.
fn ends_in_its_checksum(header: &[u8; HEADER_LEN], data: &[u8]) -> bool {
    let Some(split) = data.len().checked_sub(CHECKSUM_LEN) else {
        return false;
    };
    let (body, tail) = data.split_at(split);
    let mut crc = crc32fast::Hasher::new();
    crc.update(header);
    crc.update(body);
    crc.finalize().to_le_bytes() == tail
}

#[cfg(test)]
mod tests {
    use super::{ends_in_its_checksum, CHECKSUM_LEN, HEADER_LEN};

    /// An artificial rotate to `name` at `position`: header and data, with the checksum on the
    /// data's end when `checksummed`.
    fn rotate(name: &[u8], position: u64, checksummed: bool) -> ([u8; HEADER_LEN], Vec<u8>) {
        let mut data = position.to_le_bytes().to_vec();
        data.extend_from_slice(name);
        let size = HEADER_LEN + data.len() + if checksummed { CHECKSUM_LEN } else { 0 };
        let mut header = [0u8; HEADER_LEN];
        header[4] = 4; // ROTATE_EVENT
        header[5..9].copy_from_slice(&1u32.to_le_bytes());
        header[9..13].copy_from_slice(&(size as u32).to_le_bytes());
        header[17..19].copy_from_slice(&0x20u16.to_le_bytes()); // LOG_EVENT_ARTIFICIAL_F
        if checksummed {
            let mut crc = crc32fast::Hasher::new();
            crc.update(&header);
            crc.update(&data);
            data.extend_from_slice(&crc.finalize().to_le_bytes());
        }
        (header, data)
    }

    #[test]
    fn a_checksum_is_cut_off_only_when_it_is_one() {
        let (h, d) = rotate(b"mariadb-bin.000001", 4, true);
        assert!(ends_in_its_checksum(&h, &d));
        let (h, d) = rotate(b"mariadb-bin.000001", 4, false);
        assert!(!ends_in_its_checksum(&h, &d));
        // A name whose last four characters could pass for a checksum is left whole.
        let (h, d) = rotate(b"mariadb-bin.0000011234", 4, false);
        assert!(!ends_in_its_checksum(&h, &d));
        assert!(!ends_in_its_checksum(&h, &d[..3]));
    }

    #[test]
    fn a_checksum_that_looks_like_the_end_of_a_file_name_is_still_cut_off() {
        // Find a position whose checksum ends in `.` and a digit, as the one that once reached a
        // checkpoint did: a guess from the name's shape takes it for part of the name.
        let found = (4u64..2_000_000).find_map(|pos| {
            let (h, d) = rotate(b"mariadb-bin.000001", pos, true);
            let t = &d[d.len() - 2..];
            (t[0] == b'.' && t[1].is_ascii_digit()).then_some((h, d))
        });
        let (h, d) = found.expect("some position has such a checksum");
        assert!(ends_in_its_checksum(&h, &d));
    }
}
