//! Cookies over 4 KB: a value spread over `name`, `name2`..`name9` (lua-resty-session
//! `calculate_cookie_chunks()`, `save()`, `open()`; reference 1.9).
//!
//! The first cookie holds the 110-character header and the first
//! `4096 - 110 - len(name) - 1` payload characters; each later one holds
//! `4096 - len(name) - 2` characters. On open the count is recomputed from the header's
//! data-size field.

use std::borrow::Cow;

use crate::header::decode_raw;
use crate::{Flags, HEADER_ENCODED_SIZE, OpenError, SealError};

/// Limit of `name=value` (attributes not counted) per cookie.
pub const MAX_COOKIE_SIZE: usize = 4096;
/// Most cookies one session may use.
pub const MAX_COOKIES: usize = 9;
/// Total budget of all chunks.
pub const MAX_COOKIES_SIZE: usize = MAX_COOKIES * MAX_COOKIE_SIZE;

/// How many cookies a cookie-storage session with `data_size` payload characters needs under a
/// name of `name_len` bytes; `None` past 9 ("cookie size limit exceeded").
pub fn count(name_len: usize, data_size: usize) -> Option<usize> {
    let mut space_needed = name_len + 1 + HEADER_ENCODED_SIZE + data_size;
    if space_needed > MAX_COOKIES_SIZE {
        return None;
    }
    if space_needed <= MAX_COOKIE_SIZE {
        return Some(1);
    }
    for i in 2..=MAX_COOKIES {
        space_needed += name_len + 2;
        if space_needed > MAX_COOKIES_SIZE {
            return None;
        }
        if space_needed <= MAX_COOKIE_SIZE * i {
            return Some(i);
        }
    }
    None
}

/// Name of chunk `index` (1-based): `name` for 1, else `name` followed by the number
/// (`session2`, no separator).
pub fn name(base: &str, index: usize) -> Cow<'_, str> {
    if index <= 1 { Cow::Borrowed(base) } else { Cow::Owned(format!("{base}{index}")) }
}

/// One cookie of a (possibly) chunked value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk<'v> {
    /// Cookie name.
    pub name: String,
    /// Cookie value.
    pub value: &'v str,
}

/// Splits a sealed cookie value (header plus payload, or the header alone with server storage)
/// into the cookies lua-resty-session would set under `base` name.
pub fn split<'v>(base: &str, value: &'v str) -> Result<Vec<Chunk<'v>>, SealError> {
    if !value.is_ascii() {
        return Err(SealError::InvalidValue);
    }
    let data_size = value.len().saturating_sub(HEADER_ENCODED_SIZE);
    let n = count(base.len(), data_size).ok_or(SealError::CookieSizeLimit)?;
    if n == 1 {
        return Ok(vec![Chunk { name: base.to_owned(), value }]);
    }
    let mut chunks = Vec::with_capacity(n);
    let (first, mut rest) = value.split_at((MAX_COOKIE_SIZE - base.len() - 1).min(value.len()));
    chunks.push(Chunk { name: base.to_owned(), value: first });
    let per_chunk = MAX_COOKIE_SIZE - base.len() - 2;
    for i in 2..=n {
        let (piece, tail) = rest.split_at(per_chunk.min(rest.len()));
        chunks.push(Chunk { name: name(base, i).into_owned(), value: piece });
        rest = tail;
    }
    debug_assert!(rest.is_empty());
    Ok(chunks)
}

/// Reassembles a cookie value from the request's cookies: reads `base`, and when its header's
/// data size calls for more chunks (cookie storage only), appends `base2`..`baseN`.
/// `lookup` returns a request cookie's value by name. A value whose header does not decode
/// is returned as is, for [`crate::verify`] to reject with the precise error.
pub fn join<'a>(base: &str, mut lookup: impl FnMut(&str) -> Option<&'a str>) -> Result<Cow<'a, str>, OpenError> {
    let first = lookup(base).ok_or(OpenError::MissingCookie)?;
    let Ok(bytes) = decode_raw(first) else {
        return Ok(Cow::Borrowed(first));
    };
    if Flags(u16::from_le_bytes([bytes[1], bytes[2]])).contains(Flags::STORAGE) {
        return Ok(Cow::Borrowed(first));
    }
    let data_size = usize::from(bytes[44]) | usize::from(bytes[45]) << 8 | usize::from(bytes[46]) << 16;
    let n = count(base.len(), data_size).ok_or(OpenError::CookieSizeLimit)?;
    if n == 1 {
        return Ok(Cow::Borrowed(first));
    }
    let mut joined = String::with_capacity(HEADER_ENCODED_SIZE + data_size);
    joined.push_str(first);
    for i in 2..=n {
        joined.push_str(lookup(&name(base, i)).ok_or(OpenError::MissingChunk)?);
    }
    Ok(Cow::Owned(joined))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::Header;

    fn value_with_payload(payload_len: usize, flags: Flags) -> String {
        let header = Header {
            flags,
            sid: [1; 32],
            creation_time: 1,
            rolling_offset: 0,
            data_size: payload_len as u32,
            tag: [0; 16],
            idling_offset: 0,
            mac: [0; 16],
        };
        let mut v = header.encode();
        v.extend(std::iter::repeat_n('x', payload_len));
        v
    }

    #[test]
    fn counts() {
        assert_eq!(count(7, 0), Some(1));
        assert_eq!(count(7, 4096 - 8 - 110), Some(1));
        assert_eq!(count(7, 4096 - 8 - 110 + 1), Some(2));
        assert_eq!(count(7, 8000), Some(2));
        assert_eq!(count(7, 8266), Some(3));
        // Nine full chunks is the most there is.
        let nine = (4096 - 8 - 110) + 8 * (4096 - 9);
        assert_eq!(count(7, nine), Some(9));
        assert_eq!(count(7, nine + 1), None);
    }

    #[test]
    fn split_reference_layout() {
        // Reference 1.9: `session` 4088, `session2` 4087, `session3` 201 characters.
        let value = value_with_payload(8266, Flags::NONE);
        let chunks = split("session", &value).unwrap();
        let lens: Vec<(&str, usize)> = chunks.iter().map(|c| (c.name.as_str(), c.value.len())).collect();
        assert_eq!(lens, [("session", 4088), ("session2", 4087), ("session3", 201)]);
        assert!(chunks[0].value.starts_with(&value[..HEADER_ENCODED_SIZE]));
        for c in &chunks {
            assert!(c.name.len() + 1 + c.value.len() <= MAX_COOKIE_SIZE);
        }
        // 8000 payload characters (8110 with the header) take two cookies.
        let value = value_with_payload(8000, Flags::NONE);
        let lens: Vec<usize> = split("session", &value).unwrap().iter().map(|c| c.value.len()).collect();
        assert_eq!(lens, [4088, 4022]);
    }

    #[test]
    fn split_small_and_oversized() {
        let value = value_with_payload(135, Flags::NONE);
        let chunks = split("session", &value).unwrap();
        assert_eq!(chunks, [Chunk { name: "session".into(), value: &value }]);
        let nine = (4096 - 8 - 110) + 8 * (4096 - 9);
        assert_eq!(split("session", &value_with_payload(nine, Flags::NONE)).unwrap().len(), 9);
        assert_eq!(split("session", &value_with_payload(nine + 1, Flags::NONE)), Err(SealError::CookieSizeLimit));
        assert_eq!(split("session", "é"), Err(SealError::InvalidValue));
    }

    #[test]
    fn join_round_trip() {
        let value = value_with_payload(8266, Flags::NONE);
        let jar: HashMap<String, &str> =
            split("session", &value).unwrap().into_iter().map(|c| (c.name, c.value)).collect();
        let joined = join("session", |n| jar.get(n).copied()).unwrap();
        assert_eq!(joined, value);
        let mut partial = jar.clone();
        partial.remove("session3");
        assert_eq!(join("session", |n| partial.get(n).copied()), Err(OpenError::MissingChunk));
        assert_eq!(join("session", |_| None), Err(OpenError::MissingCookie));
        // Single cookie and undecodable cookie are borrowed back unchanged.
        let small = value_with_payload(10, Flags::NONE);
        assert!(matches!(join("s", |_| Some(small.as_str())).unwrap(), Cow::Borrowed(_)));
        assert_eq!(join("s", |_| Some("garbage")).unwrap(), "garbage");
        // Server storage: the data size is the stored ciphertext's, never chunks.
        let mut header = Header::decode(&value_with_payload(0, Flags::STORAGE)).unwrap();
        header.data_size = 100_000;
        let server = header.encode();
        assert_eq!(join("session", |_| Some(server.as_str())).unwrap(), server);
        // Beyond nine chunks.
        let mut header = Header::decode(&value).unwrap();
        header.data_size = 40_000;
        let big = header.encode();
        assert_eq!(join("session", |_| Some(big.as_str())), Err(OpenError::CookieSizeLimit));
    }
}
