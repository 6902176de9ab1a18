//! Table schemas: the column names and types a row is decoded with.

use std::fmt;

/// A table's identity at the source: database and table name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableId {
    /// Database (schema) name.
    pub db: String,
    /// Table name.
    pub table: String,
}

impl TableId {
    /// A table id from its two names.
    pub fn new(db: impl Into<String>, table: impl Into<String>) -> Self {
        Self {
            db: db.into(),
            table: table.into(),
        }
    }
}

impl fmt::Display for TableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`.`{}`", self.db, self.table)
    }
}

/// What a column holds, with the parameters that decide how a value is read and shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnType {
    /// TINYINT (1), SMALLINT (2), MEDIUMINT (3), INT (4) or BIGINT (8 bytes).
    Integer {
        /// Storage width in bytes.
        bytes: u8,
        /// UNSIGNED.
        unsigned: bool,
    },
    /// FLOAT.
    Float,
    /// DOUBLE.
    Double,
    /// DECIMAL(precision, scale).
    Decimal {
        /// Total digits.
        precision: u8,
        /// Digits after the point.
        scale: u8,
    },
    /// CHAR, VARCHAR, TEXT types: text in a character set.
    Text {
        /// Character set name (`utf8mb4`, `latin1`, `gbk`, ...).
        charset: String,
    },
    /// BINARY, VARBINARY, BLOB types (the `binary` character set).
    Binary {
        /// For BINARY(n): n. The binlog drops trailing zero bytes of BINARY(n) and the server
        /// pads them back on read; 0 for variable-length types.
        pad_to: u16,
    },
    /// DATE.
    Date,
    /// DATETIME(fsp).
    DateTime {
        /// Fractional digits.
        fsp: u8,
    },
    /// TIME(fsp).
    Time {
        /// Fractional digits.
        fsp: u8,
    },
    /// TIMESTAMP(fsp).
    Timestamp {
        /// Fractional digits.
        fsp: u8,
    },
    /// YEAR.
    Year,
    /// BIT(width).
    Bit {
        /// Bits, 1..=64.
        width: u8,
    },
    /// ENUM with its labels (UTF-8), in definition order.
    Enum {
        /// Labels.
        values: Vec<String>,
    },
    /// SET with its members (UTF-8), in definition order.
    Set {
        /// Members.
        values: Vec<String>,
    },
    /// JSON (MySQL binary JSON, or MariaDB's JSON alias of LONGTEXT).
    Json,
    /// GEOMETRY and its subtypes.
    Geometry,
    /// MySQL 9 VECTOR: carried as its bytes.
    Vector,
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Column name; `@1`, `@2`, ... when the source did not name it.
    pub name: String,
    /// Type, as used to decode and render values.
    pub ty: ColumnType,
    /// The source's type text, e.g. `decimal(5,2) unsigned`, when known.
    pub sql_type: String,
    /// Whether NULL is allowed.
    pub nullable: bool,
}

/// A table's columns and primary key, as in force at some position of the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    /// The table.
    pub id: TableId,
    /// Columns in table order.
    pub columns: Vec<Column>,
    /// Indices into `columns` of the primary key, in key order; empty when there is none.
    pub primary_key: Vec<usize>,
}

impl TableSchema {
    /// Names of the primary-key columns, in key order.
    pub fn primary_key_names(&self) -> Vec<&str> {
        self.primary_key
            .iter()
            .filter_map(|&i| self.columns.get(i))
            .map(|c| c.name.as_str())
            .collect()
    }
}

/// A column as the source declares it, for destinations that create tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDef {
    /// Name.
    pub name: String,
    /// The full type as `information_schema.columns.column_type` shows it
    /// (`decimal(10,2) unsigned`, `enum('a','b')`, `varchar(20)`).
    pub column_type: String,
    /// NULL allowed.
    pub nullable: bool,
    /// The default as an SQL expression (`'abc'`, `0`, `current_timestamp()`), if any.
    pub default: Option<String>,
    /// Character set of a text column.
    pub charset: Option<String>,
    /// Collation of a text column.
    pub collation: Option<String>,
    /// A JSON column (MariaDB's JSON is LONGTEXT with a `json_valid` check).
    pub json: bool,
    /// AUTO_INCREMENT.
    pub auto_increment: bool,
}

/// An index of a table (besides the primary key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexDef {
    /// Index name.
    pub name: String,
    /// UNIQUE.
    pub unique: bool,
    /// Columns in index order, each with its prefix length (`KEY (c(10))`) if any.
    pub columns: Vec<(String, Option<u64>)>,
}

/// A table's definition as the source has it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDef {
    /// Columns in table order.
    pub columns: Vec<ColumnDef>,
    /// Primary-key column names in key order (empty: none).
    pub primary_key: Vec<String>,
    /// Secondary indexes.
    pub indexes: Vec<IndexDef>,
}

/// What schema sync is handed for one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    /// The table's name at the destination (after rename).
    pub dest: TableId,
    /// The source definition (column subsets applied), when the destination needs it.
    pub def: Option<TableDef>,
}
