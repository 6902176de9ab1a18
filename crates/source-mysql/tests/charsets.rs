//! Every character set the server offers, decoded as the server itself converts it: the oracle
//! is `CONVERT(bytes USING cs)` to utf8mb4 on the harness's MariaDB.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};
use sluice_source_mysql::decode::charset::{decode, supported};
use sluice_testkit::{ensure_up, Service, MARIADB};

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn connect() -> Result<Conn, mysql_async::Error> {
    Conn::new(Opts::from_url(&format!("mysql://root@{}", MARIADB.get()))?).await
}

/// What the server makes of each byte string `0x{lo..=hi}` (of `width` bytes) in `cs`: the
/// UTF-8 text, or None where it has no character (it shows `?`, or U+FFFD).
async fn server_text(
    c: &mut Conn,
    cs: &str,
    width: usize,
    lo: u32,
    hi: u32,
) -> Result<Vec<(Vec<u8>, Option<String>)>, mysql_async::Error> {
    let rows: Vec<(u32, Vec<u8>)> = c
        .query(format!(
            "SELECT seq, CAST(CONVERT(CONVERT(UNHEX(LPAD(HEX(seq), {w}, '0')) USING {cs}) USING utf8mb4) AS BINARY) \
             FROM mysql.seq_{lo}_to_{hi}",
            w = width * 2
        ))
        .await?;
    Ok(rows
        .into_iter()
        .map(|(n, text)| {
            let bytes = n.to_be_bytes()[4 - width..].to_vec();
            let text = String::from_utf8(text).ok();
            let questions = |s: &str| s.matches('?').count();
            let literal = bytes.iter().filter(|&&b| b == b'?').count();
            let text = text.filter(|t| questions(t) == literal && !t.contains('\u{fffd}'));
            (bytes, text)
        })
        .collect())
}

/// Every single byte of every single-byte character set converts as the server converts it.
#[tokio::test]
async fn single_byte_tables_are_the_servers() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    let mut c = connect().await?;
    let sets: Vec<(String, u32)> = c
        .query("SELECT character_set_name, maxlen FROM information_schema.character_sets")
        .await?;
    let mut checked = 0;
    for (cs, maxlen) in sets {
        if maxlen != 1 || cs == "binary" {
            continue;
        }
        assert!(supported().contains(&cs.as_str()), "{cs} has no table");
        for (bytes, want) in server_text(&mut c, &cs, 1, 0, 255).await? {
            let got = decode(&cs, &bytes).ok();
            assert_eq!(got, want, "{cs} byte {bytes:02x?}");
        }
        checked += 1;
    }
    assert!(checked >= 24, "only {checked} single-byte sets");
    Ok(())
}

/// The multi-byte sets read through `encoding_rs` with the server's differences.
const EUC_LIKE: [&str; 8] = [
    "big5", "cp932", "eucjpms", "euckr", "gb2312", "gbk", "sjis", "ujis",
];

/// Every multi-byte sequence the server converts, in each set of [`EUC_LIKE`]: every two-byte
/// sequence, and the three-byte plane (0x8F, JIS X 0212) of the EUC-JP sets.
async fn server_sequences(
    c: &mut Conn,
    cs: &str,
) -> Result<Vec<(Vec<u8>, String)>, mysql_async::Error> {
    let mut seqs = server_text(c, cs, 2, 0x8000, 0xffff).await?;
    if cs == "ujis" || cs == "eucjpms" {
        seqs.extend(server_text(c, cs, 3, 0x8f_a1a1, 0x8f_fefe).await?);
    }
    Ok(seqs
        .into_iter()
        .filter_map(|(b, t)| Some((b, t?)))
        // One character: a lead byte taken alone and followed by a second character is
        // covered by the single bytes.
        .filter(|(_, t)| t.chars().count() == 1)
        .collect())
}

/// Every multi-byte character set of the server is read, and every sequence the server
/// converts (see [`server_sequences`]) converts to the same text here. Sequences the server
/// refuses may decode here (the WHATWG decoders take supersets); a column never holds them.
#[tokio::test]
async fn multi_byte_sets_convert_as_the_server_does() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    let mut c = connect().await?;
    let sets: Vec<(String, u32)> = c
        .query("SELECT character_set_name, maxlen FROM information_schema.character_sets")
        .await?;
    let mut report = Vec::new();
    for (cs, maxlen) in sets {
        if maxlen == 1 {
            continue;
        }
        assert!(supported().contains(&cs.as_str()), "{cs} is not read");
        if !EUC_LIKE.contains(&cs.as_str()) {
            continue;
        }
        let seqs = server_sequences(&mut c, &cs).await?;
        assert!(seqs.len() > 5_000, "{cs}: {} sequences", seqs.len());
        let differ: Vec<String> = seqs
            .iter()
            .filter_map(|(bytes, want)| {
                let got = decode(&cs, bytes);
                (got.as_deref() != Ok(want.as_str()))
                    .then(|| format!("{bytes:02x?}: server {want:?}, here {got:?}"))
            })
            .collect();
        if !differ.is_empty() {
            report.push(format!(
                "{cs}: {} of {} differ, e.g. {}",
                differ.len(),
                seqs.len(),
                differ[..differ.len().min(5)].join("; ")
            ));
        }
    }
    assert!(report.is_empty(), "{}", report.join("\n"));
    Ok(())
}

/// UTF-16 (both byte orders), UCS-2 and UTF-32 as the server writes them.
#[tokio::test]
async fn unicode_encodings_read_back_as_the_text_stored() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    let mut c = connect().await?;
    let text = "Aé中\u{fffd}\u{ffff}😀\u{10ffff}";
    for cs in ["utf16", "utf16le", "utf32", "ucs2"] {
        let want: String = if cs == "ucs2" {
            text.chars().filter(|ch| u32::from(*ch) <= 0xffff).collect()
        } else {
            text.to_string()
        };
        let bytes: Option<Vec<u8>> = c
            .exec_first(
                format!("SELECT CAST(CONVERT(? USING {cs}) AS BINARY)"),
                (&want,),
            )
            .await?;
        let bytes = bytes.ok_or("no bytes")?;
        assert_eq!(decode(cs, &bytes).as_deref(), Ok(want.as_str()), "{cs}");
    }
    assert!(decode("utf16", &[0xd8, 0x00]).is_err(), "a lone surrogate");
    assert!(
        decode("utf32", &[0, 0x11, 0, 0]).is_err(),
        "beyond U+10FFFF"
    );
    Ok(())
}

/// Writes `src/decode/charset_overrides.rs`: where the server converts a sequence of an
/// [`EUC_LIKE`] set otherwise than the WHATWG decoder, the server's character. Run by hand with
/// `dev/services up`: `cargo test -p sluice-source-mysql --test charsets -- --ignored`.
#[tokio::test]
#[ignore]
async fn write_the_override_tables() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    let mut c = connect().await?;
    let mut out = String::from(
        "//! Where MariaDB converts a multi-byte sequence otherwise than the WHATWG decoder of its\n\
         //! character set, the server's character: by set, sorted by the sequence's bytes read as a\n\
         //! big-endian number. Generated by the ignored test `write_the_override_tables`\n\
         //! (tests/charsets.rs) from MariaDB 10.11; `multi_byte_sets_convert_as_the_server_does`\n\
         //! checks it. Do not edit by hand.\n\n\
         /// The overrides of a character set.\n\
         pub(super) fn overrides(charset: &str) -> &'static [(u32, char)] {\n    match charset {\n",
    );
    let mut tables = String::new();
    for cs in EUC_LIKE {
        let mut rows = Vec::new();
        for (bytes, want) in server_sequences(&mut c, cs).await? {
            let plain = sluice_source_mysql::decode::charset::whatwg_only(cs, &bytes);
            if plain.as_deref() != Some(want.as_str()) {
                let code = bytes.iter().fold(0u32, |a, b| (a << 8) | u32::from(*b));
                let ch = want.chars().next().ok_or("empty")?;
                rows.push((code, ch));
            }
        }
        rows.sort();
        let name = cs.to_uppercase();
        out.push_str(&format!("        \"{cs}\" => &{name},\n"));
        tables.push_str(&format!(
            "\n#[rustfmt::skip]\nconst {name}: [(u32, char); {}] = [\n",
            rows.len()
        ));
        for chunk in rows.chunks(6) {
            let items: Vec<String> = chunk
                .iter()
                .map(|(code, ch)| format!("(0x{code:X}, '\\u{{{:x}}}')", u32::from(*ch)))
                .collect();
            tables.push_str(&format!("    {},\n", items.join(", ")));
        }
        tables.push_str("];\n");
    }
    out.push_str("        _ => &[],\n    }\n}\n");
    out.push_str(&tables);
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/decode/charset_overrides.rs");
    std::fs::write(&path, out)?;
    Ok(())
}
