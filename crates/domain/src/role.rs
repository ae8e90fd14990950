//! Roles: a named set of policies that a session can carry for a bounded time.

use crate::error::FieldError;
use crate::ids::{GroupId, OrgId, RoleId, UserId};
use crate::time::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleType {
    /// Assumed through a trust, for a time-bound session.
    Assumable,
    /// Given directly to users and groups: its policies join theirs for as long as it is
    /// assigned (a login session's `role` names these). It cannot be assumed.
    Assignable,
}

impl RoleType {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        match s {
            "assumable" => Ok(Self::Assumable),
            "assignable" => Ok(Self::Assignable),
            other => Err(FieldError::new(
                "role_type",
                format!("expected \"assumable\" or \"assignable\", found \"{other}\""),
            )),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Assumable => "assumable",
            Self::Assignable => "assignable",
        }
    }
}

/// A role's longest session, in seconds: 900 to 43 200, as AWS STS and Vultr bound it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MaxSessionDuration(i64);

impl MaxSessionDuration {
    pub const MIN: i64 = 900;
    pub const MAX: i64 = 43_200;
    pub const DEFAULT: Self = Self(3_600);

    pub fn new(secs: i64) -> Result<Self, FieldError> {
        if (Self::MIN..=Self::MAX).contains(&secs) {
            Ok(Self(secs))
        } else {
            Err(FieldError::new(
                "max_session_duration",
                format!("must be between {} and {} seconds, found {secs}", Self::MIN, Self::MAX),
            ))
        }
    }
    pub fn secs(self) -> i64 {
        self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub id: RoleId,
    pub org_id: OrgId,
    pub name: String,
    pub description: String,
    pub role_type: RoleType,
    pub max_session_duration: MaxSessionDuration,
    pub date_created: Timestamp,
}

/// Whom an assignable role is assigned to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Assignee {
    User(UserId),
    /// Every member of the group, for as long as it is one.
    Group(GroupId),
}

/// An assignable role given to a user or a group, with when it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleAssignment {
    pub role: Role,
    pub assignee: Assignee,
    /// The user's email or the group's display name, for lists.
    pub assignee_name: String,
    pub date_assigned: Timestamp,
}

/// The duration a caller asked for, checked against the role: too long is an error, never a
/// silent cap, so a client learns the real lifetime of what it got.
pub fn session_duration(requested: Option<i64>, role: &Role) -> Result<i64, FieldError> {
    let max = role.max_session_duration.secs();
    let secs = requested.unwrap_or_else(|| max.min(MaxSessionDuration::DEFAULT.secs()));
    if secs < MaxSessionDuration::MIN {
        return Err(FieldError::new(
            "duration",
            format!("must be at least {} seconds, found {secs}", MaxSessionDuration::MIN),
        ));
    }
    if secs > max {
        return Err(FieldError::new(
            "duration",
            format!("{secs} seconds exceeds the role's max_session_duration of {max} seconds"),
        ));
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(max: i64) -> Role {
        Role {
            id: RoleId::from_random([1; 16]),
            org_id: OrgId::from_random([2; 16]),
            name: "r".into(),
            description: String::new(),
            role_type: RoleType::Assumable,
            max_session_duration: MaxSessionDuration::new(max).unwrap(),
            date_created: Timestamp(0),
        }
    }

    #[test]
    fn max_session_duration_bounds() {
        assert!(MaxSessionDuration::new(899).is_err());
        assert!(MaxSessionDuration::new(900).is_ok());
        assert!(MaxSessionDuration::new(43_200).is_ok());
        assert!(MaxSessionDuration::new(43_201).is_err());
    }

    #[test]
    fn duration_over_the_role_maximum_is_an_error_not_a_cap() {
        let r = role(7_200);
        assert_eq!(session_duration(Some(7_200), &r), Ok(7_200));
        let err = session_duration(Some(7_201), &r).unwrap_err();
        assert_eq!(err.field, "duration");
        assert!(err.message.contains("7200"));
        assert!(session_duration(Some(10), &r).is_err());
        assert_eq!(session_duration(None, &r), Ok(3_600));
        assert_eq!(session_duration(None, &role(900)), Ok(900));
    }
}
