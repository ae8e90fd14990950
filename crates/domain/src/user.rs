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
        let s = s.trim();
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

/// A free-text name field: trimmed, non-empty, bounded.
pub fn name(field: &str, s: &str, max: usize) -> Result<String, FieldError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if t.chars().count() > max {
        return Err(FieldError::new(field, format!("must be at most {max} characters")));
    }
    if t.chars().any(char::is_control) {
        return Err(FieldError::new(field, "must not contain control characters"));
    }
    Ok(t.to_owned())
}

/// Optional free text (descriptions, last names): bounded, may be empty.
pub fn text(field: &str, s: &str, max: usize) -> Result<String, FieldError> {
    if s.chars().count() > max {
        return Err(FieldError::new(field, format!("must be at most {max} characters")));
    }
    Ok(s.trim().to_owned())
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
}
