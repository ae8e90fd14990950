//! `Json`: a JSON answer, written into a buffer sized for a typical answer; and [`Object`], a
//! writer for the answers of the calls every client makes on every request ("who am I?",
//! introspection), whose values are mostly ids and times that never need escaping.
//!
//! axum's own `Json` starts from 128 bytes and grows by doubling: a 600-byte session view
//! (`GET /v2/sessions/current`, the call every client makes) reallocated and copied itself
//! three times on every answer. This one starts at [`INITIAL`] bytes, enough for every single
//! resource view; lists grow from there as before.
//!
//! serde_json escapes a string byte by byte through a table, ids and times included: a third
//! of the instructions of "who am I?" went to writing its answer. [`Object`] writes a string
//! as it is when no byte of it needs escaping (checked a word at a time), and hands the rest
//! to serde_json, so its output is byte for byte serde_json's (tests hold each writer to the
//! serialized wire type).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The buffer a JSON answer starts with.
const INITIAL: usize = 1024;

/// A JSON answer (`Content-Type: application/json`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        let mut buf = Vec::with_capacity(INITIAL);
        match serde_json::to_writer(&mut buf, &self.0) {
            Ok(()) => {
                let mut res = Response::new(axum::body::Body::from(buf));
                res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                res
            }
            Err(e) => {
                // Only a map with non-string keys or a failing `Serialize` impl: a bug of ours.
                tracing::error!(error = %e, "cannot serialize an answer");
                let mut res = Response::new(axum::body::Body::from(
                    r#"{"error":{"code":"internal","message":"internal error"}}"#,
                ));
                *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                res
            }
        }
    }
}

/// An answer [`Object`] wrote (`Content-Type: application/json`).
#[derive(Debug)]
pub struct Written(Vec<u8>);

impl IntoResponse for Written {
    fn into_response(self) -> Response {
        let mut res = Response::new(axum::body::Body::from(self.0));
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        res
    }
}

impl Written {
    /// A buffer for one answer, with `write` filling it.
    pub fn with(write: impl FnOnce(&mut Vec<u8>)) -> Self {
        let mut out = Vec::with_capacity(INITIAL);
        write(&mut out);
        Self(out)
    }

    #[cfg(test)]
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// A JSON object being written: keys in the order they are given, each value as serde_json
/// writes it.
pub struct Object<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Object<'a> {
    pub fn begin(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Self { out, first: true }
    }

    /// Keys are the program's own names (a test of each writer proves them plain text), so
    /// they are written as they are.
    fn key(&mut self, key: &'static str) {
        debug_assert!(plain(key.as_bytes()), "{key:?} needs escaping");
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        raw_string(self.out, key.as_bytes());
        self.out.push(b':');
    }

    pub fn str(&mut self, key: &'static str, value: &str) {
        self.key(key);
        string(self.out, value);
    }

    /// A UUID, hyphenated and lower case (as `Uuid`'s `Display` writes it).
    pub fn id(&mut self, key: &'static str, value: uuid::Uuid) {
        self.key(key);
        let mut buf = uuid::Uuid::encode_buffer();
        raw_string(self.out, value.hyphenated().encode_lower(&mut buf).as_bytes());
    }

    /// A time in RFC 3339 (`2026-12-01T05:00:00Z`), as the wire types write it.
    pub fn time(&mut self, key: &'static str, value: tessera_domain::Timestamp) {
        self.key(key);
        raw_string(self.out, value.rfc3339().as_bytes());
    }

    pub fn int(&mut self, key: &'static str, value: i64) {
        self.key(key);
        self.out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    pub fn bool(&mut self, key: &'static str, value: bool) {
        self.key(key);
        self.out.extend_from_slice(if value { b"true" } else { b"false" });
    }

    pub fn null(&mut self, key: &'static str) {
        self.key(key);
        self.out.extend_from_slice(b"null");
    }

    /// An object as the value of `key`; ends when the returned writer does.
    pub fn object(&mut self, key: &'static str) -> Object<'_> {
        self.key(key);
        Object::begin(self.out)
    }

    pub fn end(self) {
        self.out.push(b'}');
    }
}

/// `s` as a JSON string, exactly as serde_json writes it.
fn string(out: &mut Vec<u8>, s: &str) {
    if plain(s.as_bytes()) {
        raw_string(out, s.as_bytes());
    } else {
        // Writing into a `Vec` cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// `s` in quotes, as it is: only for text in which no byte needs escaping.
fn raw_string(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    out.extend_from_slice(s);
    out.push(b'"');
}

/// Whether no byte of `bytes` needs escaping in a JSON string (serde_json escapes exactly the
/// control characters below U+0020, the quote and the backslash). Eight bytes at a time: a
/// byte below 0x20 has a zero in its top three bits, and `"` and `\` are found as zero bytes
/// of the word XORed with them.
fn plain(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A high bit in each byte of `x` that is zero (may also mark the byte above a zero byte,
    // which does not matter: any mark means "not plain").
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        // A byte below 0x20 is one whose value minus 0x20 borrows: `w - 0x20…` with the
        // byte's high bit clear before and set after, bytes of 0x80 and above excluded.
        let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
        if control | zero(w ^ (ONES * u64::from(b'"'))) | zero(w ^ (ONES * u64::from(b'\\'))) != 0 {
            return false;
        }
    }
    chunks.remainder().iter().all(|&b| !ESCAPED[usize::from(b)])
}

/// The bytes serde_json escapes in a string.
const ESCAPED: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

#[cfg(test)]
mod tests {
    use super::*;

    /// The word-at-a-time check agrees with the byte-by-byte rule on every byte value at
    /// every position of a word, and next to any other byte (the borrow between bytes).
    #[test]
    fn plain_finds_exactly_the_bytes_serde_json_escapes() {
        let needs = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
        for b in 0..=255u8 {
            for at in 0..16 {
                for fill in [b'a', 0x00, 0x1f, 0x20, 0x21, 0x7f, 0x80, 0xff, b'"', b'\\'] {
                    let mut bytes = [fill; 16];
                    bytes[at] = b;
                    let expected = !bytes.iter().any(|&x| needs(x));
                    assert_eq!(plain(&bytes), expected, "byte {b:#04x} at {at} among {fill:#04x}");
                    assert_eq!(plain(&bytes[..at + 1]), !bytes[..at + 1].iter().any(|&x| needs(x)));
                }
            }
        }
    }

    /// Strings come out as serde_json writes them, escaped or not.
    #[test]
    fn strings_are_serde_jsons() {
        for s in [
            "",
            "plain",
            "ä ü €, 😀",
            "a\"b",
            "back\\slash",
            "tab\there",
            "\u{1}\u{1f}\u{7f}",
            "</script>",
            "0123456789abcdef\n",
        ] {
            let mut out = vec![];
            string(&mut out, s);
            assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn an_object_is_what_serde_json_writes_for_the_same_map() {
        let id = uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        let w = Written::with(|out| {
            let mut o = Object::begin(out);
            o.bool("active", true);
            o.str("name", "x\"y");
            o.id("id", id);
            o.int("n", -42);
            o.null("gone");
            let mut inner = o.object("inner");
            inner.int("max", i64::MAX);
            inner.end();
            o.end();
        });
        assert_eq!(
            w.text(),
            r#"{"active":true,"name":"x\"y","id":"01234567-89ab-cdef-0123-456789abcdef","n":-42,"gone":null,"inner":{"max":9223372036854775807}}"#
        );
    }

    #[tokio::test]
    async fn answers_the_value_as_json_with_its_content_type() {
        let res = Json(serde_json::json!({"allowed": true, "n": [1, 2]})).into_response();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap();
        assert_eq!(&bytes[..], br#"{"allowed":true,"n":[1,2]}"#);
    }

    #[tokio::test]
    async fn an_answer_that_cannot_be_serialized_is_a_json_500() {
        let mut bad = std::collections::HashMap::new();
        bad.insert((1, 2), "a map with non-string keys");
        let res = Json(bad).into_response();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["error"]["code"], "internal");
    }
}
