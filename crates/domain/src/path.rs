//! Request-path normalisation for the gateway, and the rule for local redirect targets.
//!
//! The gateway routes on the normalised path and forwards exactly that path, so the route a
//! policy decision was made for and the resource the upstream serves are the same even when
//! the upstream normalises paths itself. Like Kong's router (and pingora, Envoy), it
//! percent-decodes unreserved characters (RFC 3986 §2.3), upper-cases the remaining escapes
//! (§6.2.2.1), removes dot segments (§5.2.4, after decoding, so `%2e%2e` is `..`) and collapses
//! repeated slashes. Where Kong keeps an encoded `/` encoded, this normaliser refuses the
//! ambiguous inputs outright, because upstreams disagree about them:
//!
//! - `%2F` and `%5C` (an encoded `/` or `\`): some upstreams decode them into separators;
//! - a raw `\`: some upstreams (IIS, many Windows stacks) read it as `/`;
//! - control characters, raw or encoded (`%00`-`%1F`, `%7F`): NUL truncation, header splitting;
//! - double encoding (`%25` followed by two hex digits): an upstream that decodes twice would
//!   see a dot segment or separator the gateway never saw;
//! - a dot segment carrying parameters (`..;x`, `.;x`, `..%3Bx`): servlet containers drop the
//!   `;x`, some after decoding;
//! - a segment of dots and spaces other than `.` and `..` (`...`, `..%20`): Windows drops
//!   trailing dots and spaces from names;
//! - a malformed escape (`%` not followed by two hex digits);
//! - escapes that do not decode to UTF-8 (overlong forms such as `%C0%AE` for `.` fooled
//!   upstreams that decoded them leniently).

/// Why a path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path must start with '/'")]
    NotAbsolute,
    #[error("a '%' in the path is not followed by two hexadecimal digits")]
    BadEscape,
    #[error("an encoded '/' or '\\' (%2F, %5C) in the path is ambiguous and refused")]
    EncodedSeparator,
    #[error("a '\\' in the path is ambiguous and refused")]
    Backslash,
    #[error("control characters (raw or percent-encoded) are refused in the path")]
    Control,
    #[error("double percent-encoding ('%25' followed by two hexadecimal digits) is refused in the path")]
    DoubleEncoding,
    #[error("a '.' or '..' segment with parameters (';' or '%3B') is refused in the path")]
    DotParameter,
    #[error("a segment of only dots and spaces other than '.' and '..' is refused in the path")]
    AmbiguousDots,
    #[error("percent-encoded bytes in the path must form UTF-8")]
    NotUtf8,
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Characters a path segment may hold as they are (RFC 3986 `pchar` without `%`, plus `/`).
fn allowed_raw(b: u8) -> bool {
    unreserved(b)
        || matches!(b, b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=' | b':' | b'@')
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn push_escape(out: &mut String, b: u8) {
    out.push('%');
    out.push(HEX[(b >> 4) as usize] as char);
    out.push(HEX[(b & 15) as usize] as char);
}

/// One segment in canonical form: unreserved characters decoded, every other escape in
/// upper case, anything outside `pchar` escaped.
fn canonical_segment(raw: &[u8]) -> Result<String, PathError> {
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'%' {
            let (Some(h), Some(l)) = (raw.get(i + 1).and_then(|&c| hex(c)), raw.get(i + 2).and_then(|&c| hex(c)))
            else {
                return Err(PathError::BadEscape);
            };
            let v = h << 4 | l;
            match v {
                b'/' | b'\\' => return Err(PathError::EncodedSeparator),
                v if control(v) => return Err(PathError::Control),
                v if unreserved(v) => out.push(v as char),
                v => push_escape(&mut out, v),
            }
            i += 3;
            continue;
        }
        match b {
            b'\\' => return Err(PathError::Backslash),
            b if control(b) => return Err(PathError::Control),
            b if allowed_raw(b) => out.push(b as char),
            b => push_escape(&mut out, b),
        }
        i += 1;
    }
    // Checked on the canonical form, so `%25%32%65` (which becomes `%252e`) is caught too.
    let o = out.as_bytes();
    if o.windows(5).any(|w| w[..3] == *b"%25" && hex(w[3]).is_some() && hex(w[4]).is_some()) {
        return Err(PathError::DoubleEncoding);
    }
    if o.contains(&b'%') && std::str::from_utf8(&decoded(o)).is_err() {
        return Err(PathError::NotUtf8);
    }
    Ok(out)
}

/// A canonical segment's name (before its `;parameters`, `;` raw or encoded), and whether it
/// has parameters.
pub fn segment_name(seg: &str) -> (&str, bool) {
    let cut = [seg.find(';'), seg.find("%3B")].into_iter().flatten().min();
    match cut {
        Some(i) => (&seg[..i], true),
        None => (seg, false),
    }
}

/// Every escape of a canonical segment decoded.
fn decoded(canonical: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(canonical.len());
    let mut i = 0;
    while i < canonical.len() {
        match (canonical[i], canonical.get(i + 1).and_then(|&c| hex(c)), canonical.get(i + 2).and_then(|&c| hex(c))) {
            (b'%', Some(h), Some(l)) => {
                out.push(h << 4 | l);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// The normalised form of a request path (without its query), or why it is refused.
/// Idempotent: `normalize(normalize(p)?) == normalize(p)`.
pub fn normalize(raw: &str) -> Result<String, PathError> {
    let rest = raw.strip_prefix('/').ok_or(PathError::NotAbsolute)?;
    let mut stack: Vec<String> = vec![];
    // Whether the output ends with '/': a trailing empty segment, or a trailing dot segment
    // (RFC 3986 §5.2.4: "/a/b/.." is "/a/").
    let mut trailing_slash = false;
    for seg in rest.split('/') {
        let seg = canonical_segment(seg.as_bytes())?;
        let (name, params) = segment_name(&seg);
        if name.len() > 2 && name.replace("%20", " ").bytes().all(|b| b == b'.' || b == b' ') {
            return Err(PathError::AmbiguousDots);
        }
        match name {
            "." | ".." if params => return Err(PathError::DotParameter),
            "." => trailing_slash = true,
            ".." => {
                stack.pop();
                trailing_slash = true;
            }
            // Repeated slashes collapse; a trailing one is kept.
            "" if !params => trailing_slash = true,
            _ => {
                stack.push(seg);
                trailing_slash = false;
            }
        }
    }
    let mut out = String::with_capacity(raw.len());
    for s in &stack {
        out.push('/');
        out.push_str(s);
    }
    if trailing_slash || stack.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// A redirect target that can only stay on this site: a normalised local path (with its
/// query and fragment), or None. Refused: anything not starting with exactly one `/` (so no
/// scheme, no `//host`, no `/\host`), control characters anywhere (raw or percent-encoded:
/// browsers drop a tab or newline and read `/\t/evil.com` as `//evil.com`), and every path
/// [`normalize`] refuses.
pub fn local_redirect(next: &str) -> Option<String> {
    let cut = next.find(['?', '#']).unwrap_or(next.len());
    let (path, tail) = next.split_at(cut);
    let b = path.as_bytes();
    if b.first() != Some(&b'/') || matches!(b.get(1), Some(b'/' | b'\\')) {
        return None;
    }
    let path = normalize(path).ok()?;
    // The query and fragment: visible ASCII only, and no control character once decoded.
    let t = tail.as_bytes();
    if !t.iter().all(|&c| (0x21..0x7f).contains(&c)) {
        return None;
    }
    for (i, _) in t.iter().enumerate().filter(|(_, c)| **c == b'%') {
        if let (Some(h), Some(l)) = (t.get(i + 1).and_then(|&c| hex(c)), t.get(i + 2).and_then(|&c| hex(c)))
            && control(h << 4 | l)
        {
            return None;
        }
    }
    Some(path + tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_go_in_every_spelling() {
        for (raw, want) in [
            ("/", "/"),
            ("/a/b", "/a/b"),
            ("/a/b/", "/a/b/"),
            ("/public/../app/secret.txt", "/app/secret.txt"),
            ("/public/%2e%2e/app/secret.txt", "/app/secret.txt"),
            ("/public/%2E%2E/app/secret.txt", "/app/secret.txt"),
            ("/public/.%2e/app/secret.txt", "/app/secret.txt"),
            ("/public/%2e./app/secret.txt", "/app/secret.txt"),
            ("/public/./../app/secret.txt", "/app/secret.txt"),
            ("/public/%2e/app", "/public/app"),
            ("/..", "/"),
            ("/../../app", "/app"),
            ("/a/b/..", "/a/"),
            ("/a/b/.", "/a/b/"),
            ("/a/.", "/a/"),
            ("/.", "/"),
            ("//app", "/app"),
            ("///app//x///", "/app/x/"),
            ("/a/..//b", "/b"),
            ("/..a/.b", "/..a/.b"),
        ] {
            assert_eq!(normalize(raw).as_deref(), Ok(want), "{raw}");
        }
    }

    #[test]
    fn unreserved_characters_are_decoded_and_other_escapes_upper_cased() {
        assert_eq!(normalize("/%61%7E%2d%5F").as_deref(), Ok("/a~-_"));
        assert_eq!(normalize("/a%3fb%3A%c3%a9").as_deref(), Ok("/a%3Fb%3A%C3%A9"));
        assert_eq!(normalize("/a b\"{}").as_deref(), Ok("/a%20b%22%7B%7D"));
        assert_eq!(normalize("/é").as_deref(), Ok("/%C3%A9"));
        assert_eq!(normalize("/a;b=c/x@y:z").as_deref(), Ok("/a;b=c/x@y:z"));
        assert_eq!(normalize("/100%25").as_deref(), Ok("/100%25"), "a lone encoded '%' is kept");
    }

    #[test]
    fn ambiguous_paths_are_refused() {
        for (raw, why) in [
            ("app", PathError::NotAbsolute),
            ("*", PathError::NotAbsolute),
            ("", PathError::NotAbsolute),
            ("/public/..%2fapp", PathError::EncodedSeparator),
            ("/public/..%2Fapp", PathError::EncodedSeparator),
            ("/public/..%5capp", PathError::EncodedSeparator),
            ("/public/..\\app", PathError::Backslash),
            ("/\\evil", PathError::Backslash),
            ("/a%00b", PathError::Control),
            ("/a%0d%0ab", PathError::Control),
            ("/a%7f", PathError::Control),
            ("/a\tb", PathError::Control),
            ("/a%zz", PathError::BadEscape),
            ("/a%2", PathError::BadEscape),
            ("/a%", PathError::BadEscape),
            ("/public/%252e%252e/app", PathError::DoubleEncoding),
            ("/%25%32%65", PathError::DoubleEncoding),
            ("/public/..;/app", PathError::DotParameter),
            ("/public/.;x/app", PathError::DotParameter),
            ("/public/%2e%2e;/app", PathError::DotParameter),
            ("/public/..%3bx/app", PathError::DotParameter),
            ("/public/.%3B/app", PathError::DotParameter),
            ("/...", PathError::AmbiguousDots),
            ("/public/..%20/app", PathError::AmbiguousDots),
            ("/public/. ./app", PathError::AmbiguousDots),
            ("/public/%c0%ae%c0%ae/app", PathError::NotUtf8),
            ("/a%e9", PathError::NotUtf8),
            ("/a%u002e", PathError::BadEscape),
        ] {
            assert_eq!(normalize(raw), Err(why), "{raw}");
        }
    }

    /// Inputs built from the pieces attacks are made of, from a seeded generator (the same
    /// cases on every run).
    fn arbitrary_paths(n: usize) -> impl Iterator<Item = String> {
        use rand::{Rng, SeedableRng};
        const PIECES: &[&str] = &[
            "/", "/", "/", ".", "..", "%2e", "%2E", "%2f", "%5C", "%25", "%252e", "a", "B", "~", "%7e", "%41", ";",
            ";x", "\\", "%00", "\t", "%0a", "é", " ", "%", "%z", "%c3%a9", ":", "@", "%3B", "%3b", "%2e%2e", "x=1",
            "%20",
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x7e55e7a);
        (0..n).map(move |_| {
            let mut s = String::new();
            if rng.gen_bool(0.95) {
                s.push('/');
            }
            for _ in 0..rng.gen_range(0..12) {
                s.push_str(PIECES[rng.gen_range(0..PIECES.len())]);
            }
            s
        })
    }

    #[test]
    fn normalised_paths_are_stable_and_hold_no_dot_segments() {
        let mut accepted = 0;
        for raw in arbitrary_paths(200_000) {
            let Ok(out) = normalize(&raw) else { continue };
            accepted += 1;
            assert_eq!(normalize(&out).as_deref(), Ok(out.as_str()), "idempotent for {raw:?}");
            assert!(out.starts_with('/'), "{raw:?} -> {out:?}");
            assert!(!out.contains("//"), "{raw:?} -> {out:?}");
            for seg in out.split('/') {
                let (name, _) = segment_name(seg);
                assert!(name != "." && name != "..", "{raw:?} -> {out:?}");
            }
            assert!(out.bytes().all(|b| (0x21..0x7f).contains(&b) && b != b'\\'), "{raw:?} -> {out:?}");
            let upper = out.to_ascii_uppercase();
            assert!(!upper.contains("%2F") && !upper.contains("%5C") && !upper.contains("%2E"), "{raw:?} -> {out:?}");
        }
        assert!(accepted > 10_000, "the generator must reach accepted paths too ({accepted})");
    }

    #[test]
    fn redirect_targets_stay_on_the_site() {
        for bad in [
            "https://evil.com",
            "//evil.com",
            "/\\evil.com",
            "/%09/evil.com",
            "/\t/evil.com",
            "/%2F%2Fevil.com",
            "/%2f/evil.com",
            "/%5Cevil.com",
            "%0d%0aSet-Cookie:x",
            "/x%0d%0aSet-Cookie:x",
            "/x?a=%0d%0aSet-Cookie:x",
            "/x?a=\r\nb",
            "/x?a b",
            "javascript:alert(1)",
            "evil.com",
            "",
            "/..;/x",
        ] {
            assert_eq!(local_redirect(bad), None, "{bad:?}");
        }
        for (good, want) in [
            ("/", "/"),
            ("/api/page?a=b&c=%20#top", "/api/page?a=b&c=%20#top"),
            ("/api/../app", "/app"),
            ("/./evil.com", "/evil.com"),
            ("/a//b", "/a/b"),
        ] {
            assert_eq!(local_redirect(good).as_deref(), Some(want), "{good:?}");
        }
    }
}
