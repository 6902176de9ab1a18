//! The pgoutput messages (protocol version 1) that carry rows: Relation, Insert, Update,
//! Delete, Truncate; Type and Origin are read past. Begin and Commit are decoded by the
//! replication client. Layouts: PostgreSQL's "Logical Replication Message Formats".

/// One column of a tuple as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Datum {
    /// SQL NULL.
    Null,
    /// An unchanged TOASTed value the server did not send again.
    Unchanged,
    /// The value's text output.
    Text(String),
}

/// A column of a Relation message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RelColumn {
    /// Part of the replica identity.
    pub(crate) key: bool,
    pub(crate) name: String,
    pub(crate) type_oid: u32,
    pub(crate) typmod: i32,
}

/// A decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    Relation {
        oid: u32,
        namespace: String,
        name: String,
        /// `d` default, `n` nothing, `f` full, `i` index.
        identity: u8,
        columns: Vec<RelColumn>,
    },
    Insert {
        oid: u32,
        new: Vec<Datum>,
    },
    Update {
        oid: u32,
        /// The old key (`K`) or the old row (`O`), when the server sent one.
        old: Option<(u8, Vec<Datum>)>,
        new: Vec<Datum>,
    },
    Delete {
        oid: u32,
        old: (u8, Vec<Datum>),
    },
    Truncate {
        oids: Vec<u32>,
    },
    /// Type, Origin and anything else that carries no row.
    Other(u8),
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("pgoutput: message ends early".into());
        }
        let (h, t) = self.0.split_at(n);
        self.0 = t;
        Ok(h)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn i16(&mut self) -> Result<i16, String> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Result<i32, String> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(self.i32()? as u32)
    }
    fn cstr(&mut self) -> Result<String, String> {
        let end = self
            .0
            .iter()
            .position(|&b| b == 0)
            .ok_or("pgoutput: a name without its end")?;
        let s = String::from_utf8(self.0[..end].to_vec())
            .map_err(|_| "pgoutput: a name that is not UTF-8")?;
        self.0 = &self.0[end + 1..];
        Ok(s)
    }
    fn tuple(&mut self) -> Result<Vec<Datum>, String> {
        let n = self.i16()?;
        let mut out = Vec::with_capacity(n.max(0) as usize);
        for _ in 0..n {
            out.push(match self.u8()? {
                b'n' => Datum::Null,
                b'u' => Datum::Unchanged,
                b't' => {
                    let len = self.i32()?;
                    let bytes = self.take(len.max(0) as usize)?;
                    Datum::Text(String::from_utf8(bytes.to_vec()).map_err(|_| {
                        "pgoutput: a value that is not UTF-8 (the database's encoding must be UTF8)"
                    })?)
                }
                other => {
                    return Err(format!(
                        "pgoutput: column kind {:?} (binary values are not asked for)",
                        other as char
                    ))
                }
            });
        }
        Ok(out)
    }
}

/// Decodes one pgoutput message.
pub(crate) fn decode(data: &[u8]) -> Result<Message, String> {
    let mut r = Reader(data);
    let tag = r.u8()?;
    Ok(match tag {
        b'R' => {
            let oid = r.u32()?;
            let namespace = r.cstr()?;
            let name = r.cstr()?;
            let identity = r.u8()?;
            let n = r.i16()?;
            let mut columns = Vec::with_capacity(n.max(0) as usize);
            for _ in 0..n {
                let flags = r.u8()?;
                columns.push(RelColumn {
                    key: flags & 1 == 1,
                    name: r.cstr()?,
                    type_oid: r.u32()?,
                    typmod: r.i32()?,
                });
            }
            Message::Relation {
                oid,
                namespace,
                name,
                identity,
                columns,
            }
        }
        b'I' => {
            let oid = r.u32()?;
            expect(r.u8()?, b'N')?;
            Message::Insert {
                oid,
                new: r.tuple()?,
            }
        }
        b'U' => {
            let oid = r.u32()?;
            let mut kind = r.u8()?;
            let mut old = None;
            if kind == b'K' || kind == b'O' {
                old = Some((kind, r.tuple()?));
                kind = r.u8()?;
            }
            expect(kind, b'N')?;
            Message::Update {
                oid,
                old,
                new: r.tuple()?,
            }
        }
        b'D' => {
            let oid = r.u32()?;
            let kind = r.u8()?;
            if kind != b'K' && kind != b'O' {
                return Err(format!(
                    "pgoutput: a delete with tuple kind {:?}",
                    kind as char
                ));
            }
            Message::Delete {
                oid,
                old: (kind, r.tuple()?),
            }
        }
        b'T' => {
            let n = r.i32()?;
            let _options = r.u8()?;
            let mut oids = Vec::with_capacity(n.max(0) as usize);
            for _ in 0..n {
                oids.push(r.u32()?);
            }
            Message::Truncate { oids }
        }
        other => Message::Other(other),
    })
}

fn expect(got: u8, want: u8) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "pgoutput: expected tuple kind {:?}, got {:?}",
            want as char, got as char
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuple(cols: &[Option<&str>]) -> Vec<u8> {
        let mut b = (cols.len() as i16).to_be_bytes().to_vec();
        for c in cols {
            match c {
                None => b.push(b'n'),
                Some("~") => b.push(b'u'),
                Some(t) => {
                    b.push(b't');
                    b.extend((t.len() as i32).to_be_bytes());
                    b.extend(t.as_bytes());
                }
            }
        }
        b
    }

    #[test]
    fn relation_and_rows_decode() -> Result<(), String> {
        let mut m = vec![b'R'];
        m.extend(16385u32.to_be_bytes());
        m.extend(b"public\0t\0d");
        m.extend(2i16.to_be_bytes());
        m.push(1);
        m.extend(b"id\0");
        m.extend(23u32.to_be_bytes());
        m.extend((-1i32).to_be_bytes());
        m.push(0);
        m.extend(b"v\0");
        m.extend(25u32.to_be_bytes());
        m.extend((-1i32).to_be_bytes());
        let Message::Relation { columns, name, .. } = decode(&m)? else {
            return Err("not a relation".into());
        };
        assert_eq!(name, "t");
        assert!(columns[0].key && !columns[1].key);
        assert_eq!(columns[1].type_oid, 25);

        let mut u = vec![b'U'];
        u.extend(16385u32.to_be_bytes());
        u.push(b'K');
        u.extend(tuple(&[Some("1"), None]));
        u.push(b'N');
        u.extend(tuple(&[Some("2"), Some("~")]));
        assert_eq!(
            decode(&u)?,
            Message::Update {
                oid: 16385,
                old: Some((b'K', vec![Datum::Text("1".into()), Datum::Null])),
                new: vec![Datum::Text("2".into()), Datum::Unchanged],
            }
        );
        assert!(
            decode(&u[..u.len() - 1]).is_err(),
            "a cut message is an error"
        );
        Ok(())
    }
}
