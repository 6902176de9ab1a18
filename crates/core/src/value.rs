//! Typed column values, exact to the byte.

/// One column value as the source stored it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A column the source did not log for this row (a partial row image, e.g.
    /// `binlog_row_image=MINIMAL`). Formats omit it; destinations that need whole rows refuse it.
    Unavailable,
    /// A signed integer of any width (TINYINT .. BIGINT).
    Int(i64),
    /// An unsigned integer of any width, up to 18446744073709551615.
    UInt(u64),
    /// FLOAT, kept as the 4-byte value so it round-trips.
    Float(f32),
    /// DOUBLE.
    Double(f64),
    /// DECIMAL as its exact digits, with exactly the column's scale (`"1.50"`).
    Decimal(String),
    /// A character string converted to UTF-8 from the column's character set.
    Text(String),
    /// Bytes of a binary string, BLOB, or a string with a binary collation.
    Bytes(Vec<u8>),
    /// DATE; all parts zero for the zero date.
    Date {
        /// Year, 0..=9999.
        year: u16,
        /// Month, 0..=12.
        month: u8,
        /// Day, 0..=31.
        day: u8,
    },
    /// DATETIME with its fractional precision.
    DateTime {
        /// Year.
        year: u16,
        /// Month.
        month: u8,
        /// Day.
        day: u8,
        /// Hour.
        hour: u8,
        /// Minute.
        minute: u8,
        /// Second.
        second: u8,
        /// Microseconds.
        micros: u32,
        /// Fractional digits of the column, 0..=6.
        fsp: u8,
    },
    /// TIME, which may be negative and exceed 24 hours (up to 838).
    Time {
        /// Whether the value is negative.
        negative: bool,
        /// Hours, 0..=838.
        hours: u32,
        /// Minutes.
        minutes: u8,
        /// Seconds.
        seconds: u8,
        /// Microseconds.
        micros: u32,
        /// Fractional digits of the column, 0..=6.
        fsp: u8,
    },
    /// TIMESTAMP as seconds since the Unix epoch, UTC; 0 with 0 micros is the zero timestamp.
    Timestamp {
        /// Seconds since 1970-01-01 00:00:00 UTC.
        seconds: i64,
        /// Microseconds.
        micros: u32,
        /// Fractional digits of the column, 0..=6.
        fsp: u8,
    },
    /// YEAR; 0 for the zero year.
    Year(u16),
    /// BIT(n) as its unsigned value.
    Bit {
        /// The bits as an unsigned number.
        value: u64,
        /// The column width n, 1..=64.
        width: u8,
    },
    /// ENUM: the 1-based index and its label (index 0 is the empty error value).
    Enum {
        /// 1-based index into the column's values; 0 means the empty string.
        index: u16,
        /// The label, UTF-8.
        label: String,
    },
    /// SET: the bit mask and the text MySQL shows (`"a,c"`).
    Set {
        /// Bit i set means value i is a member.
        bits: u64,
        /// Members joined by commas, in definition order.
        text: String,
    },
    /// A JSON document as canonical JSON text.
    Json(String),
    /// GEOMETRY: SRID and well-known binary.
    Geometry {
        /// Spatial reference id.
        srid: u32,
        /// Well-known binary.
        wkb: Vec<u8>,
    },
}

impl Value {
    /// Whether this is SQL NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}
