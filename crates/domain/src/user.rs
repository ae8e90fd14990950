//! Users, organizations, groups and API keys.

use crate::error::FieldError;
use crate::ids::{ApiKeyId, GroupId, OrgId, UserId};
use crate::time::Timestamp;
use crate::token::TokenDigest;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: OrgId,
    pub name: String,
    pub date_created: Timestamp,
}

/// An email address, trimmed and lower-cased so sign-in is not case-sensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let s = checked_text("email", s, TextKind::Line)?.trim();
        let valid = s.len() <= 254
            && s.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && !s.chars().any(|c| c.is_whitespace() || c.is_control())
            });
        if valid {
            Ok(Self(s.to_lowercase()))
        } else {
            Err(FieldError::new("email", format!("'{s}' is not an email address")))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    Active,
    /// A disabled user's keys and sessions stop working at once.
    Disabled,
}

impl UserStatus {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        match s {
            "active" => Ok(Self::Active),
            "disabled" => Ok(Self::Disabled),
            other => Err(FieldError::new("status", format!("expected \"active\" or \"disabled\", found \"{other}\""))),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub org_id: OrgId,
    pub email: Email,
    pub first_name: String,
    pub last_name: String,
    pub status: UserStatus,
    pub date_created: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub org_id: OrgId,
    pub user_id: UserId,
    pub name: String,
    pub digest: TokenDigest,
    pub date_created: Timestamp,
    pub date_expire: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: GroupId,
    pub org_id: OrgId,
    pub display_name: String,
    pub description: String,
    pub date_created: Timestamp,
}

/// What a text field may hold besides printable characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// One line: names, emails, session names. No control character at all.
    Line,
    /// Free text such as a description: line feeds and tabs are allowed, nothing else.
    Multiline,
}

/// Refuses characters that have no business in stored text: every control character (C0,
/// DEL, C1: NUL, CR/LF, ESC and so ANSI escape sequences), the Unicode line and paragraph
/// separators, and the bidirectional overrides that make a log line or a console read
/// differently from what is stored. Every name type goes through here, so a value that
/// reaches the store or a log is printable.
pub fn checked_text<'a>(field: &str, s: &'a str, kind: TextKind) -> Result<&'a str, FieldError> {
    let allowed = |c: char| kind == TextKind::Multiline && (c == '\n' || c == '\t');
    let refused = |c: char| {
        (c.is_control() && !allowed(c))
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    match s.chars().enumerate().find(|&(_, c)| refused(c)) {
        None => Ok(s),
        Some((at, c)) => Err(FieldError::new(
            field,
            format!("must not contain control characters (found U+{:04X} at character {at})", u32::from(c)),
        )),
    }
}

/// A free-text name field: trimmed, non-empty, bounded, one printable line.
pub fn name(field: &str, s: &str, max: usize) -> Result<String, FieldError> {
    let t = checked_text(field, s, TextKind::Line)?.trim();
    if t.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if t.chars().count() > max {
        return Err(FieldError::new(field, format!("must be at most {max} characters")));
    }
    Ok(t.to_owned())
}

/// Optional one-line text (first and last names): bounded, may be empty, printable.
pub fn text(field: &str, s: &str, max: usize) -> Result<String, FieldError> {
    let t = checked_text(field, s, TextKind::Line)?;
    if t.chars().count() > max {
        return Err(FieldError::new(field, format!("must be at most {max} characters")));
    }
    Ok(t.trim().to_owned())
}

/// Optional free text (descriptions): bounded, may be empty, may hold line feeds and tabs.
pub fn description(field: &str, s: &str, max: usize) -> Result<String, FieldError> {
    let t = checked_text(field, s, TextKind::Multiline)?;
    if t.chars().count() > max {
        return Err(FieldError::new(field, format!("must be at most {max} characters")));
    }
    Ok(t.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(Email::parse(" Ann@Example.COM ").unwrap().as_str(), "ann@example.com");
        for bad in ["", "ann", "@x", "ann@", "a b@x", "a@b@c"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("name", "  ops  ", 10).unwrap(), "ops");
        assert_eq!(name("name", "   ", 10).unwrap_err().field, "name");
        assert!(name("name", "abcdefghijk", 10).is_err());
        assert!(name("name", "a\u{0}", 10).is_err());
    }

    #[test]
    fn control_characters_are_refused_naming_the_field() {
        for bad in
            ["a\u{0}b", "a\rb", "a\nb", "\u{1b}[31mred", "a\u{7f}", "a\u{85}", "a\u{202e}b", "a\u{2028}b", "a\tb"]
        {
            let err = name("session_name", bad, 100).unwrap_err();
            assert_eq!(err.field, "session_name", "{bad:?}");
            assert!(err.message.contains("control characters"), "{bad:?}: {}", err.message);
            assert_eq!(text("last_name", bad, 100).unwrap_err().field, "last_name", "{bad:?}");
        }
        assert_eq!(Email::parse("ann\u{1b}@example.com").unwrap_err().field, "email");
        assert_eq!(Email::parse("ann@example.com\r\n").unwrap_err().field, "email");
        assert_eq!(description("description", "line one\n\tline two", 100).unwrap(), "line one\n\tline two");
        for bad in ["a\rb", "a\u{0}", "\u{1b}[2J", "a\u{7}"] {
            assert_eq!(description("description", bad, 100).unwrap_err().field, "description", "{bad:?}");
        }
        assert_eq!(
            name("name", "Zoë 東京 ops-1", 100).unwrap(),
            "Zoë 東京 ops-1",
            "printable text of any script is kept"
        );
    }
}
