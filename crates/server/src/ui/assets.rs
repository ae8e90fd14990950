//! The console's static files, embedded in the binary and served under a content-hashed name
//! with a year-long cache: a new build changes the name, so no browser keeps a stale copy.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// htmx, `dist/htmx.min.js` of npm's `htmx.org` 2.0.11 (0BSD, see `assets/README.md`).
pub const HTMX: &[u8] = include_bytes!("assets/htmx-2.0.11.min.js");
/// The sha256 of [`HTMX`] as npm ships it; `cargo xtask ui` checks it against the registry.
pub const HTMX_SHA256: &str = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717";
pub const CSS: &[u8] = include_bytes!("assets/console.css");

struct Hashed {
    htmx: String,
    css: String,
}

fn short_hash(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

fn names() -> &'static Hashed {
    static NAMES: OnceLock<Hashed> = OnceLock::new();
    NAMES.get_or_init(|| Hashed {
        htmx: format!("htmx-2.0.11.{}.js", short_hash(HTMX)),
        css: format!("console.{}.css", short_hash(CSS)),
    })
}

pub fn htmx_url() -> String {
    format!("/ui/assets/{}", names().htmx)
}

pub fn css_url() -> String {
    format!("/ui/assets/{}", names().css)
}

pub async fn serve(Path(file): Path<String>) -> Response {
    let n = names();
    let (body, ct) = if file == n.htmx {
        (HTMX, "text/javascript; charset=utf-8")
    } else if file == n.css {
        (CSS, "text/css; charset=utf-8")
    } else {
        return super::error_page(StatusCode::NOT_FOUND, "No such console asset.");
    };
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vendored_htmx_is_the_pinned_file() {
        let hex: String = Sha256::digest(HTMX).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, HTMX_SHA256, "assets/htmx-2.0.11.min.js changed; see assets/README.md");
    }
}
