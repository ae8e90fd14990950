//! `Set-Cookie` lines in lua-resty-session's attribute order (`session.new`, `save()`,
//! `destroy()`; reference 1.3, 1.10, 1.11):
//!
//! ```text
//! <name>=<value>[; Domain=d]; Path=p; SameSite=s[; Secure][; HttpOnly]
//!     [; Expires=<HTTP date>; Max-Age=<n>]                      (remember cookies)
//! <name>=[; Domain=d]; Path=p; SameSite=s[; Secure][; HttpOnly]; Expires=Thu, 01 Jan 1970 00:00:01 GMT; Max-Age=0
//! ```

use std::fmt::{self, Write as _};
use std::ops::RangeInclusive;

use crate::{MAX_TTL, SealError, chunk};

const EXPIRE_SUFFIX: &str = "; Expires=Thu, 01 Jan 1970 00:00:01 GMT; Max-Age=0";

/// The `SameSite` attribute, emitted verbatim (including the literal `Default`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SameSite {
    /// `Strict` (Kong's default).
    #[default]
    Strict,
    /// `Lax` (lua-resty-session's default).
    Lax,
    /// `None`; forces `Secure`.
    None,
    /// `Default`, written as is.
    Default,
}

impl SameSite {
    /// The attribute value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Strict => "Strict",
            Self::Lax => "Lax",
            Self::None => "None",
            Self::Default => "Default",
        }
    }

    /// Parses Kong's accepted values `Strict`, `Lax`, `None`, `Default`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "Strict" => Self::Strict,
            "Lax" => Self::Lax,
            "None" => Self::None,
            "Default" => Self::Default,
            _ => return None,
        })
    }
}

impl fmt::Display for SameSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Cookie attributes of a session configuration (Kong `cookie_*` fields).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CookieAttributes {
    /// `Path=` (`cookie_path`).
    pub path: String,
    /// `Domain=` (`cookie_domain`); left out when `None`, empty or `localhost`.
    pub domain: Option<String>,
    /// `SameSite=` (`cookie_same_site`).
    pub same_site: SameSite,
    /// `Secure` (`cookie_secure`); forced on by `SameSite=None`.
    pub secure: bool,
    /// `HttpOnly` (`cookie_http_only`).
    pub http_only: bool,
}

impl Default for CookieAttributes {
    /// Kong's defaults: `Path=/; SameSite=Strict; Secure; HttpOnly`.
    fn default() -> Self {
        Self { path: "/".into(), domain: None, same_site: SameSite::Strict, secure: true, http_only: true }
    }
}

impl CookieAttributes {
    /// Renders the attribute suffix once, for every line built from it.
    pub fn render(&self) -> CookieFlags {
        let mut s = String::with_capacity(64);
        if let Some(domain) = self.domain.as_deref().filter(|d| !d.is_empty() && *d != "localhost") {
            s.push_str("; Domain=");
            s.push_str(domain);
        }
        s.push_str("; Path=");
        s.push_str(&self.path);
        s.push_str("; SameSite=");
        s.push_str(self.same_site.as_str());
        if self.secure || self.same_site == SameSite::None {
            s.push_str("; Secure");
        }
        if self.http_only {
            s.push_str("; HttpOnly");
        }
        CookieFlags(s)
    }
}

/// The rendered attribute suffix (`; Path=/; SameSite=Strict; Secure; HttpOnly`), and the
/// line builders.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CookieFlags(String);

impl CookieFlags {
    /// The suffix as rendered.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// One `Set-Cookie` value: `name=value` plus attributes (plus `Expires`/`Max-Age` for a
    /// remember cookie).
    pub fn set_cookie(&self, name: &str, value: &str, remember: Option<&RememberExpiry>) -> String {
        let mut s = String::with_capacity(name.len() + value.len() + self.0.len() + 80);
        s.push_str(name);
        s.push('=');
        s.push_str(value);
        s.push_str(&self.0);
        if let Some(r) = remember {
            let _ = write!(s, "; Expires={}; Max-Age={}", http_date(r.expires), r.max_age);
        }
        s
    }

    /// The `Set-Cookie` values of a sealed value laid out over `name`, `name2`, ...; every
    /// chunk gets the same attributes (and the remember ones, if any).
    pub fn set_cookies(
        &self,
        name: &str,
        value: &str,
        remember: Option<&RememberExpiry>,
    ) -> Result<Vec<String>, SealError> {
        Ok(chunk::split(name, value)?.into_iter().map(|c| self.set_cookie(&c.name, c.value, remember)).collect())
    }

    /// A deletion line: empty value, attributes, `Expires` in 1970 and `Max-Age=0`.
    pub fn expire(&self, name: &str) -> String {
        let mut s = String::with_capacity(name.len() + self.0.len() + EXPIRE_SUFFIX.len() + 1);
        s.push_str(name);
        s.push('=');
        s.push_str(&self.0);
        s.push_str(EXPIRE_SUFFIX);
        s
    }

    /// Deletion lines for chunks `indexes` of `base` (1 is `base` itself): `1..=n` on logout,
    /// `new + 1..=old` for the surplus chunks after a renewal that shrank the value.
    pub fn expire_chunks(&self, base: &str, indexes: RangeInclusive<usize>) -> Vec<String> {
        indexes.map(|i| self.expire(&chunk::name(base, i))).collect()
    }
}

/// `Expires`/`Max-Age` of a remember cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RememberExpiry {
    /// Unix seconds written as `Expires`.
    pub expires: u64,
    /// `Max-Age` seconds.
    pub max_age: u64,
}

impl RememberExpiry {
    /// lua-resty-session's rule: `Max-Age` = `remember_rolling_timeout` (0 or over 400 days
    /// means 400 days), `Expires` = the remember session's creation time + `Max-Age` (so it does
    /// not move when the cookie is re-issued).
    pub fn new(creation_time: u64, remember_rolling_timeout: u64) -> Self {
        let max_age = if remember_rolling_timeout == 0 || remember_rolling_timeout > MAX_TTL {
            MAX_TTL
        } else {
            remember_rolling_timeout
        };
        Self { expires: creation_time.saturating_add(max_age), max_age }
    }
}

/// An HTTP date as `ngx.http_time` writes it: `Thu, 01 Jan 1970 00:00:01 GMT`.
pub fn http_date(unix: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = unix / 86_400;
    let secs = unix % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm, non-negative days).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kong_default_line() {
        let flags = CookieAttributes::default().render();
        assert_eq!(
            flags.set_cookie("session", "AQAA", None),
            "session=AQAA; Path=/; SameSite=Strict; Secure; HttpOnly"
        );
    }

    #[test]
    fn attribute_order_and_domain_rules() {
        let mut attrs = CookieAttributes {
            path: "/app".into(),
            domain: Some("example.com".into()),
            same_site: SameSite::Lax,
            secure: false,
            http_only: true,
        };
        assert_eq!(attrs.render().as_str(), "; Domain=example.com; Path=/app; SameSite=Lax; HttpOnly");
        for d in [None, Some(""), Some("localhost")] {
            attrs.domain = d.map(String::from);
            assert_eq!(attrs.render().as_str(), "; Path=/app; SameSite=Lax; HttpOnly");
        }
        attrs.same_site = SameSite::None;
        attrs.http_only = false;
        assert_eq!(attrs.render().as_str(), "; Path=/app; SameSite=None; Secure", "None forces Secure");
        attrs.same_site = SameSite::Default;
        assert_eq!(attrs.render().as_str(), "; Path=/app; SameSite=Default");
        assert_eq!(SameSite::from_name("Lax"), Some(SameSite::Lax));
        assert_eq!(SameSite::from_name("off"), None);
    }

    #[test]
    fn deletion_lines() {
        let flags = CookieAttributes::default().render();
        assert_eq!(
            flags.expire("session"),
            "session=; Path=/; SameSite=Strict; Secure; HttpOnly; Expires=Thu, 01 Jan 1970 00:00:01 GMT; Max-Age=0"
        );
        let lines = flags.expire_chunks("session", 2..=3);
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("session2=; Path=/"));
        assert!(lines[1].starts_with("session3=; Path=/"));
        assert_eq!(flags.expire_chunks("session", 1..=1), [flags.expire("session")]);
    }

    #[test]
    fn remember_line() {
        let flags = CookieAttributes { secure: false, same_site: SameSite::Lax, ..Default::default() }.render();
        let r = RememberExpiry::new(1_795_351_869, 604_800);
        assert_eq!(r, RememberExpiry { expires: 1_795_956_669, max_age: 604_800 });
        assert_eq!(
            flags.set_cookie("remember", "AQ", Some(&r)),
            "remember=AQ; Path=/; SameSite=Lax; HttpOnly; Expires=Sun, 29 Nov 2026 12:51:09 GMT; Max-Age=604800"
        );
        assert_eq!(RememberExpiry::new(10, 0).max_age, MAX_TTL);
        assert_eq!(RememberExpiry::new(10, MAX_TTL + 1).max_age, MAX_TTL);
        assert_eq!(RememberExpiry::new(10, MAX_TTL).max_age, MAX_TTL);
    }

    #[test]
    fn chunked_lines() {
        let value = "A".repeat(110 + 5000);
        let lines = CookieAttributes::default().render().set_cookies("session", &value, None).unwrap();
        assert_eq!(lines.len(), 2);
        assert!(lines[1].starts_with("session2=AAAA"));
        assert!(lines[1].ends_with("; Path=/; SameSite=Strict; Secure; HttpOnly"));
    }

    #[test]
    fn http_dates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(1), "Thu, 01 Jan 1970 00:00:01 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(http_date(1_795_351_819), "Sun, 22 Nov 2026 12:50:19 GMT");
        assert_eq!(http_date(4_102_444_800), "Fri, 01 Jan 2100 00:00:00 GMT");
        assert_eq!(http_date(253_402_300_799), "Fri, 31 Dec 9999 23:59:59 GMT");
    }
}
