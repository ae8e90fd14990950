//! The plaintext: a JSON array of `[data, audience, subject]` triples, raw-deflated when that
//! makes a long one shorter (lua-resty-session `save()`, `open()`; reference 1.6, 2.2).

use std::fmt;
use std::io::{Read as _, Write as _};

use serde::de::{self, IgnoredAny, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::{MAX_INFLATED_SIZE, OpenError, SealError};

/// One audience's session inside a cookie: `[data, audience, subject]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEntry {
    /// The application's data (Kong: `[consumer_id, credential_id, groups?]`).
    pub data: Value,
    /// The audience (application) name; Kong's default is `default`.
    pub audience: String,
    /// The subject. `None` is lua-resty-session's nil subject, encoded by leaving out the
    /// third element (as lua-cjson does); a JSON `null` subject also decodes as `None`.
    pub subject: Option<String>,
}

impl SessionEntry {
    /// An entry with a subject.
    pub fn new(data: Value, audience: impl Into<String>, subject: impl Into<String>) -> Self {
        Self { data, audience: audience.into(), subject: Some(subject.into()) }
    }
}

/// All audiences' sessions carried by one cookie, in cookie order.
pub type SessionData = Vec<SessionEntry>;

impl Serialize for SessionEntry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let len = if self.subject.is_some() { 3 } else { 2 };
        let mut seq = serializer.serialize_seq(Some(len))?;
        seq.serialize_element(&self.data)?;
        seq.serialize_element(&self.audience)?;
        if let Some(subject) = &self.subject {
            seq.serialize_element(subject)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for SessionEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = SessionEntry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a [data, audience, subject] array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SessionEntry, A::Error> {
                let data: Value = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let audience: String = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(1, &self))?;
                let subject: Option<String> = seq.next_element::<Option<String>>()?.flatten();
                // lua-resty-session reads only the first three elements.
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(SessionEntry { data, audience, subject })
            }
        }
        deserializer.deserialize_seq(EntryVisitor)
    }
}

/// JSON-encodes the entries and deflates the result when it is longer than `threshold` bytes
/// (0 disables) and deflating makes it shorter. Returns the plaintext and whether it is
/// deflated.
pub(crate) fn encode_plaintext(data: &[SessionEntry], threshold: usize) -> Result<(Vec<u8>, bool), SealError> {
    let json = serde_json::to_vec(data).map_err(|_| SealError::Json)?;
    if threshold != 0 && json.len() > threshold {
        let mut enc = flate2::write::DeflateEncoder::new(Vec::with_capacity(json.len() / 2), Default::default());
        if enc.write_all(&json).is_ok()
            && let Ok(deflated) = enc.finish()
            && deflated.len() < json.len()
        {
            return Ok((deflated, true));
        }
    }
    Ok((json, false))
}

/// Inflates (if flagged) and JSON-decodes a decrypted plaintext.
pub(crate) fn decode_plaintext(plaintext: &[u8], deflated: bool) -> Result<SessionData, OpenError> {
    if deflated {
        return serde_json::from_slice(&inflate(plaintext)?).map_err(|_| OpenError::InvalidJson);
    }
    serde_json::from_slice(plaintext).map_err(|_| OpenError::InvalidJson)
}

/// Raw inflate (zlib windowBits -15), at most [`MAX_INFLATED_SIZE`] bytes.
pub(crate) fn inflate(deflated: &[u8]) -> Result<Vec<u8>, OpenError> {
    let mut out = Vec::with_capacity(deflated.len().saturating_mul(4).min(MAX_INFLATED_SIZE));
    let mut dec = flate2::read::DeflateDecoder::new(deflated).take(MAX_INFLATED_SIZE as u64 + 1);
    dec.read_to_end(&mut out).map_err(|_| OpenError::InflateFailed)?;
    if out.len() > MAX_INFLATED_SIZE {
        return Err(OpenError::InflateFailed);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn json_shape() {
        let data = vec![
            SessionEntry::new(json!(["a", "b"]), "default", "alice"),
            SessionEntry { data: json!({}), audience: "second".into(), subject: None },
        ];
        let (pt, deflated) = encode_plaintext(&data, 1024).unwrap();
        assert!(!deflated);
        assert_eq!(std::str::from_utf8(&pt).unwrap(), r#"[[["a","b"],"default","alice"],[{},"second"]]"#);
        assert_eq!(decode_plaintext(&pt, false).unwrap(), data);
    }

    #[test]
    fn lenient_decoding() {
        let d = decode_plaintext(br#"[[{},"a",null],[1,"b","s",4,5]]"#, false).unwrap();
        assert_eq!(d[0].subject, None);
        assert_eq!(d[1], SessionEntry::new(json!(1), "b", "s"));
        assert_eq!(decode_plaintext(br#"[[{}]]"#, false), Err(OpenError::InvalidJson));
        assert_eq!(decode_plaintext(br#"{"a":1}"#, false), Err(OpenError::InvalidJson));
        assert_eq!(decode_plaintext(b"\x01\x02", true), Err(OpenError::InflateFailed));
    }

    #[test]
    fn deflate_only_when_long_and_smaller() {
        let long = vec![SessionEntry::new(json!({"blob": "a".repeat(2000)}), "default", "bob")];
        let (pt, deflated) = encode_plaintext(&long, 1024).unwrap();
        assert!(deflated);
        assert!(pt.len() < 200);
        assert_eq!(decode_plaintext(&pt, true).unwrap(), long);
        let (_, deflated) = encode_plaintext(&long, 0).unwrap();
        assert!(!deflated, "threshold 0 disables compression");
        // Over the threshold but not smaller once deflated: stays as it is.
        let short = vec![SessionEntry::new(json!({}), "a", "b")];
        let (pt, deflated) = encode_plaintext(&short, 10).unwrap();
        assert!(!deflated);
        assert_eq!(pt, br#"[[{},"a","b"]]"#);
    }
}
