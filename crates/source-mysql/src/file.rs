//! Offline decoding of recorded binlog files (`sluice capture --binlog-file`).
//!
//! Each event is framed here before `mysql_common` sees it: the header's size is checked against
//! the bytes the file still holds, so a truncated or corrupt file is an error naming the file and
//! offset, never a panic or a loop.

use std::fs::File;
use std::io::{BufReader, Read};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use mysql_async::binlog::events::{Event as RawEvent, TransactionPayloadEvent};
use mysql_async::binlog::EventType;
use mysql_common::binlog::consts::BinlogVersion;
use mysql_common::binlog::EventStreamReader;
use sluice_core::Event;

use crate::decode::{DecodeError, Decoder, Mode, SchemaHistory};

const HEADER_LEN: usize = 19;
const MAGIC: [u8; 4] = [0xfe, b'b', b'i', b'n'];

/// Why a binlog file could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Reading the file failed.
    #[error("{path}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file's bytes are not a valid binlog at some offset.
    #[error("{path} at offset {offset}: {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// Offset of the bad event.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// An event was read but could not be decoded.
    #[error("{path}")]
    Decode {
        /// The file.
        path: String,
        /// The decoding error (names the offset).
        source: DecodeError,
    },
    /// The consumer of the events stopped the reading.
    #[error("{0}")]
    Stopped(crate::EmitError),
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Decodes every event of the binlog file at `path`, handing each change event to `emit`.
/// `history` carries table schemas from earlier files (and gets this file's DDL).
pub fn decode_file(
    path: &Path,
    history: &mut SchemaHistory,
    emit: impl FnMut(Event) -> Result<(), crate::EmitError>,
) -> Result<(), FileError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut decoder = Decoder::new(name, Mode::Inspect).with_history(std::mem::take(history));
    let result = decode_with(path, &mut decoder, emit);
    *history = decoder.take_history();
    result
}

fn decode_with(
    path: &Path,
    decoder: &mut Decoder,
    mut emit: impl FnMut(Event) -> Result<(), crate::EmitError>,
) -> Result<(), FileError> {
    let shown = path.display().to_string();
    let io = |source| FileError::Io {
        path: shown.clone(),
        source,
    };
    let corrupt = |offset: u64, reason: String| FileError::Corrupt {
        path: shown.clone(),
        offset,
        reason,
    };
    let file = File::open(path).map_err(io)?;
    let mut input = BufReader::with_capacity(1 << 20, file);

    let mut magic = [0u8; 4];
    if read_up_to(&mut input, &mut magic).map_err(io)? != 4 || magic != MAGIC {
        return Err(corrupt(
            0,
            "not a binlog file (it does not start with \\xfebin)".into(),
        ));
    }
    let mut reader = EventStreamReader::new(BinlogVersion::Version4);
    let mut offset: u64 = 4;
    let mut buf = Vec::new();
    let mut events = Vec::new();
    loop {
        let mut header = [0u8; HEADER_LEN];
        let got = read_up_to(&mut input, &mut header).map_err(io)?;
        if got == 0 {
            break;
        }
        if got < HEADER_LEN {
            return Err(corrupt(
                offset,
                format!("truncated event header ({got} of {HEADER_LEN} bytes)"),
            ));
        }
        let size = u32::from_le_bytes([header[9], header[10], header[11], header[12]]) as usize;
        if size < HEADER_LEN {
            return Err(corrupt(
                offset,
                format!("event size {size} is smaller than its header"),
            ));
        }
        buf.clear();
        buf.extend_from_slice(&header);
        buf.resize(size, 0);
        let body = read_up_to(&mut input, &mut buf[HEADER_LEN..]).map_err(io)?;
        if body < size - HEADER_LEN {
            return Err(corrupt(
                offset,
                format!(
                    "truncated event: its header says {size} bytes, the file holds {}",
                    HEADER_LEN + body
                ),
            ));
        }
        let raw = guarded(|| reader.read(&buf[..]))
            .map_err(|e| {
                corrupt(
                    offset,
                    format!("unreadable event (type {}): {e}", header[4]),
                )
            })?
            .ok_or_else(|| corrupt(offset, "empty event".into()))?;
        decode_one(decoder, &raw, offset, &mut events).map_err(|source| FileError::Decode {
            path: shown.clone(),
            source,
        })?;
        if raw.header().event_type_raw() == EventType::TRANSACTION_PAYLOAD_EVENT as u8 {
            // MySQL 8 binlog_transaction_compression: the transaction's events, compressed.
            let tpe = guarded(|| raw.read_event::<TransactionPayloadEvent<'_>>())
                .map_err(|e| corrupt(offset, format!("transaction payload event: {e}")))?;
            // Streamed: a large compressed transaction is never decompressed whole.
            let mut inner = guarded(|| tpe.decompressed()).map_err(|e| {
                corrupt(
                    offset,
                    format!("transaction payload cannot be decompressed: {e}"),
                )
            })?;
            loop {
                let next = guarded(|| reader.read_decompressed(&mut inner)).map_err(|e| {
                    corrupt(offset, format!("event inside a transaction payload: {e}"))
                })?;
                let Some(ev) = next else { break };
                // Events inside a payload have no offset of their own: they share the payload's.
                decode_one(decoder, &ev, offset, &mut events).map_err(|source| {
                    FileError::Decode {
                        path: shown.clone(),
                        source,
                    }
                })?;
                for e in events.drain(..) {
                    emit(e).map_err(FileError::Stopped)?;
                }
            }
        }
        for e in events.drain(..) {
            emit(e).map_err(FileError::Stopped)?;
        }
        offset += size as u64;
    }
    Ok(())
}

fn decode_one(
    decoder: &mut Decoder,
    raw: &RawEvent,
    offset: u64,
    out: &mut Vec<Event>,
) -> Result<(), DecodeError> {
    decoder.decode(raw, offset, out)
}

/// Runs a `mysql_common` parse, turning a panic inside it into an error: damaged input must
/// give a message, never abort the process.
fn guarded<T>(f: impl FnOnce() -> std::io::Result<T>) -> std::io::Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::other("the event's bytes are malformed")),
    }
}
