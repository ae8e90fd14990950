//! The gateway sign-in (`/.tessera/login`) under fuzz input: its body (a form or JSON) and
//! query parsed as the sign-in does (`tessera_gateway::sign_in_redirect`), and the rule for
//! local redirect targets (`tessera_domain::path::local_redirect`) that decides the
//! `Location` of the 303 after a form sign-in.
//!
//! Whatever `next` is, the target is a local path: it starts with one `/` (never `//` or
//! `/\`, which browsers read as another host), holds only visible ASCII (a header value that
//! cannot split the response, and no tab or newline a browser would drop to make `//`), and
//! reads the same when the browser's own clean-up (dropping tab/CR/LF, `\` as `/`) runs on it.

use tessera_domain::path::local_redirect;
use tessera_gateway::sign_in_redirect;

/// Runs one input. The first byte picks what is fed: 0 = `next` alone into the rule; 1 = a
/// form body, 2 = a JSON body, each `body 0xFF query` through the sign-in's own parsing.
pub fn fuzz_login(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    match mode % 3 {
        0 => {
            let next = String::from_utf8_lossy(rest);
            check_target(&next, local_redirect(&next));
        }
        m => {
            let [body, query] = crate::split_parts(rest, 2)[..] else { unreachable!() };
            let query = (!query.is_empty()).then(|| String::from_utf8_lossy(query));
            let what = format!("body {:?}, query {query:?}", body.escape_ascii().to_string());
            if let Ok(target) = sign_in_redirect(m == 2, body, query.as_deref()) {
                check_target(&what, Some(target));
            }
        }
    }
}

/// The properties of a redirect target chosen for `next` (`None` means the fallback `/`).
pub fn check_target(next: &str, target: Option<String>) {
    let Some(t) = target else { return };
    let b = t.as_bytes();
    assert_eq!(b.first(), Some(&b'/'), "{next:?} -> {t:?}");
    assert!(!matches!(b.get(1), Some(b'/' | b'\\')), "{next:?} -> {t:?} leaves the site");
    assert!(b.iter().all(|c| (0x21..0x7f).contains(c)), "{next:?} -> {t:?}: not a clean header value");
    // What a browser resolves: WHATWG URL parsing removes tab and newlines and reads `\` as `/`
    // in special (http) URLs, and percent-escapes it leaves alone.
    let browser: String =
        t.chars().filter(|c| !matches!(c, '\t' | '\n' | '\r')).map(|c| if c == '\\' { '/' } else { c }).collect();
    assert!(!browser.starts_with("//"), "{next:?} -> {t:?}: a browser reads another host");
    let decoded = crate::gateway_path::upstream_view(t.split(['?', '#']).next().unwrap_or("/"));
    assert!(
        decoded.iter().flatten().all(|c| *c >= 0x20 && *c != 0x7f),
        "{next:?} -> {t:?}: a control character once decoded"
    );
    // A target is its own target: the page posts it back as `next` on a failed sign-in.
    assert_eq!(local_redirect(&t).as_deref(), Some(t.as_str()), "{next:?} -> {t:?} is not stable");
}
