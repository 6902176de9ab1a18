//! Request signatures (`Authorization: DATAHUB <AccessId>:<Signature>`), as the SDK's
//! `aliyun_account.py` computes them: base64 of the HMAC-SHA1, keyed by the access key
//! secret, of
//!
//! ```text
//! METHOD \n Content-Type \n Date \n
//! every header named x-datahub-*, lower-cased and sorted: name:value \n
//! the url-decoded path [? query parameters sorted by name, k=v or k, joined by &]
//! ```
//!
//! Both sides compute it with [`signature`]: the client to sign, the server to check.

use base64::Engine;
use hmac::{Hmac, Mac};

/// The string that is signed. `headers` are every header of the request (any case; only
/// `x-datahub-*` ones count); `path` is the request path as sent, `query` its query string
/// (without `?`), if any.
pub fn canonical(
    method: &str,
    content_type: &str,
    date: &str,
    headers: &[(String, String)],
    path: &str,
    query: Option<&str>,
) -> String {
    let mut own: Vec<(String, &str)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str()))
        .filter(|(k, _)| k.starts_with("x-datahub-"))
        .collect();
    own.sort();
    let mut s = format!("{}\n{content_type}\n{date}\n", method.to_ascii_uppercase());
    for (k, v) in own {
        s.push_str(&k);
        s.push(':');
        s.push_str(v);
        s.push('\n');
    }
    s.push_str(&percent_encoding::percent_decode_str(path).decode_utf8_lossy());
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        let mut params: Vec<(String, Option<String>)> = q
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let dec = |s: &str| {
                    percent_encoding::percent_decode_str(&s.replace('+', " "))
                        .decode_utf8_lossy()
                        .into_owned()
                };
                match p.split_once('=') {
                    Some((k, v)) => (dec(k), Some(dec(v))),
                    None => (dec(p), None),
                }
            })
            .collect();
        params.sort();
        let joined: Vec<String> = params
            .into_iter()
            .map(|(k, v)| match v {
                Some(v) => format!("{k}={v}"),
                None => k,
            })
            .collect();
        s.push('?');
        s.push_str(&joined.join("&"));
    }
    s
}

/// The signature of `canonical` under `secret`.
pub fn signature(secret: &str, canonical: &str) -> String {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = match <Hmac<sha1::Sha1> as Mac>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(canonical.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The `Authorization` header value.
pub fn authorization(access_id: &str, signature: &str) -> String {
    format!("DATAHUB {access_id}:{signature}")
}

/// The access id and signature of an `Authorization` header value.
pub fn parse_authorization(value: &str) -> Option<(&str, &str)> {
    value.strip_prefix("DATAHUB ")?.split_once(':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canonical_string_is_the_sdks() {
        // The example canonical string of a PB put (../shared/DATAHUB.md).
        let headers = vec![
            ("x-datahub-request-action".to_string(), "pub".to_string()),
            ("X-Datahub-Client-Version".to_string(), "1.1".to_string()),
            ("x-datahub-content-raw-size".to_string(), "201".to_string()),
            ("Content-Encoding".to_string(), "lz4".to_string()),
        ];
        let c = canonical(
            "POST",
            "application/x-protobuf",
            "Mon, 23 Nov 2026 03:06:24 GMT",
            &headers,
            "/projects/cdcproj/topics/t_pb_lz4/shards",
            None,
        );
        assert_eq!(
            c,
            "POST\napplication/x-protobuf\nMon, 23 Nov 2026 03:06:24 GMT\nx-datahub-client-version:1.1\nx-datahub-content-raw-size:201\nx-datahub-request-action:pub\n/projects/cdcproj/topics/t_pb_lz4/shards"
        );
        let q = canonical(
            "GET",
            "",
            "d",
            &[],
            "/projects/p%20q",
            Some("b=2&a&c=x%2Fy"),
        );
        assert_eq!(q, "GET\n\nd\n/projects/p q?a&b=2&c=x/y");
    }

    #[test]
    fn the_signature_is_base64_hmac_sha1() {
        // RFC 2202 test case 2.
        assert_eq!(
            signature("Jefe", "what do ya want for nothing?"),
            "7/zfauXrL6LSdBbV8YTfnCWafHk="
        );
        let a = authorization("id", "sig");
        assert_eq!(parse_authorization(&a), Some(("id", "sig")));
        assert_eq!(parse_authorization("Basic x"), None);
    }
}
