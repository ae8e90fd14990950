//! Sessions of every kind (assumed-role, login, gateway) and their lifetimes.
//!
//! One record serves all kinds so that one query lists them all (`kind` tells them apart),
//! and one function decides whether a session is still alive at a given instant, whether or
//! not any sweeper has run.

use std::net::IpAddr;

use crate::ids::{OidcIssuerId, OrgId, RoleId, SessionId, UserId};
use crate::time::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionKind {
    AssumedRole,
    Login,
    Gateway,
}

impl SessionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AssumedRole => "assumed_role",
            Self::Login => "login",
            Self::Gateway => "gateway",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::AssumedRole, Self::Login, Self::Gateway].into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    Active,
    /// Ended normally: logout, idle timeout, expiry, replaced by a newer session.
    Ended,
    /// Ended by an administrator (or its owner revoking it through the API).
    Terminated,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "Active",
            Self::Ended => "Ended",
            Self::Terminated => "Terminated",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Active, Self::Ended, Self::Terminated].into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    Logout,
    IdleTimeout,
    Expired,
    Terminated,
    Replaced,
    /// The user was disabled: its sessions are terminated, never suspended.
    UserDisabled,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::IdleTimeout => "idle_timeout",
            Self::Expired => "expired",
            Self::Terminated => "terminated",
            Self::Replaced => "replaced",
            Self::UserDisabled => "user_disabled",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Logout, Self::IdleTimeout, Self::Expired, Self::Terminated, Self::Replaced, Self::UserDisabled]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
    pub fn status(self) -> SessionStatus {
        match self {
            Self::Terminated | Self::UserDisabled => SessionStatus::Terminated,
            _ => SessionStatus::Ended,
        }
    }
}

/// A session as stored. The token is not here: only its digest is, in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub org_id: OrgId,
    /// The public `session_id`: [`crate::token::TokenDigest::handle`] of the session's token.
    pub handle: String,
    pub kind: SessionKind,
    /// Whom the session speaks for.
    pub principal: Principal,
    pub role_id: Option<RoleId>,
    pub role_name: String,
    pub session_name: String,
    pub auth_method: String,
    /// The requested lifetime in seconds.
    pub duration: i64,
    /// When set, the token works only from this address.
    pub bound_ip: Option<IpAddr>,
    /// The address the session was created from.
    pub source_ip: String,
    pub conditions_met: Vec<String>,
    pub created: Timestamp,
    pub modified: Timestamp,
    /// The absolute deadline.
    pub expires: Timestamp,
    /// Idle timeout in seconds, for kinds that have one.
    pub idle_timeout: Option<i64>,
    /// The last activity the store knows of (written back lazily, see the app's idle tracker).
    pub last_activity: Timestamp,
    pub status: SessionStatus,
    pub ended: Option<Timestamp>,
    pub end_reason: Option<EndReason>,
    pub failed_logins: i64,
    pub last_login_time: Option<Timestamp>,
    pub last_login_client: String,
    /// An assumed-role session's own inline policy (AWS STS's session policy): the session
    /// acts with the role's permissions intersected with it, never more.
    pub session_policy: Option<crate::policy::PolicyDocument>,
}

/// The parts of a session's record that change without a write: its activity, and an end the
/// clock decided (a deadline passed before any sweeper wrote it down). See
/// [`Session::state_at`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionState {
    pub last_activity: Timestamp,
    pub status: SessionStatus,
    pub ended: Option<Timestamp>,
    pub end_reason: Option<EndReason>,
}

/// Whom a session speaks for: a user, or a workload (an OIDC issuer's subject, with no user
/// behind it; such a session acts with exactly its role's policies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    User {
        id: UserId,
        /// Denormalised at creation so the record stays readable after the user is renamed.
        email: String,
    },
    Workload {
        issuer: OidcIssuerId,
        /// The token's `sub`.
        subject: String,
    },
}

impl Principal {
    pub fn user(id: UserId, email: impl Into<String>) -> Self {
        Self::User { id, email: email.into() }
    }

    /// The user behind the session, when there is one.
    pub fn user_id(&self) -> Option<UserId> {
        match self {
            Self::User { id, .. } => Some(*id),
            Self::Workload { .. } => None,
        }
    }

    /// The issuer whose token made the session, for a workload.
    pub fn oidc_issuer(&self) -> Option<OidcIssuerId> {
        match self {
            Self::Workload { issuer, .. } => Some(*issuer),
            Self::User { .. } => None,
        }
    }

    /// What a person reads as "who": the user's email, or the workload's subject.
    pub fn display_name(&self) -> &str {
        match self {
            Self::User { email, .. } => email,
            Self::Workload { subject, .. } => subject,
        }
    }
}

/// What every new session is made of; the kind-specific parts (role, binding, login
/// history) are set on the result with struct update syntax.
#[derive(Debug, Clone)]
pub struct SessionStart {
    pub id: SessionId,
    pub org_id: OrgId,
    pub handle: String,
    pub kind: SessionKind,
    pub principal: Principal,
    pub auth_method: String,
    /// The address the session is created from (canonical text, or empty).
    pub source_ip: String,
    /// The absolute lifetime in seconds.
    pub duration: i64,
    pub idle_timeout: Option<i64>,
    pub now: Timestamp,
}

/// Whether a session may authenticate a request at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    Dead(EndReason),
}

/// The part of a session that decides its liveness: small enough to keep for every cached
/// session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    /// Set once the session has ended (a non-active status without a reason reads as
    /// terminated).
    pub ended: Option<EndReason>,
    pub expires: Timestamp,
    pub idle_timeout: Option<i64>,
    /// The last activity the store knows of.
    pub last_activity: Timestamp,
}

impl Lifetime {
    pub fn idle_deadline(&self, last_activity: Timestamp) -> Option<Timestamp> {
        self.idle_timeout.map(|t| last_activity.plus_secs(t).min(self.expires))
    }

    /// Liveness at `now`, given the latest activity known (which may be newer than the
    /// stored one). Ended sessions stay ended; time-outs apply even when no sweeper has
    /// marked the record yet.
    pub fn liveness(&self, now: Timestamp, last_activity: Timestamp) -> Liveness {
        if let Some(reason) = self.ended {
            return Liveness::Dead(reason);
        }
        if now >= self.expires {
            return Liveness::Dead(EndReason::Expired);
        }
        if let Some(deadline) = self.idle_deadline(last_activity.max(self.last_activity))
            && now >= deadline
        {
            return Liveness::Dead(EndReason::IdleTimeout);
        }
        Liveness::Alive
    }
}

impl Session {
    /// A new active session: the one way every kind (assumed role, login, gateway) starts.
    pub fn start(s: SessionStart) -> Session {
        Session {
            id: s.id,
            org_id: s.org_id,
            handle: s.handle,
            kind: s.kind,
            principal: s.principal,
            role_id: None,
            role_name: String::new(),
            session_name: String::new(),
            auth_method: s.auth_method,
            duration: s.duration,
            bound_ip: None,
            source_ip: s.source_ip,
            conditions_met: vec![],
            created: s.now,
            modified: s.now,
            expires: s.now.plus_secs(s.duration),
            idle_timeout: s.idle_timeout,
            last_activity: s.now,
            status: SessionStatus::Active,
            ended: None,
            end_reason: None,
            failed_logins: 0,
            last_login_time: None,
            last_login_client: String::new(),
            session_policy: None,
        }
    }

    /// The user behind the session, when there is one.
    pub fn user_id(&self) -> Option<UserId> {
        self.principal.user_id()
    }

    pub fn lifetime(&self) -> Lifetime {
        let ended = match (self.end_reason, self.status) {
            (Some(r), _) => Some(r),
            (None, SessionStatus::Active) => None,
            (None, _) => Some(EndReason::Terminated),
        };
        Lifetime { ended, expires: self.expires, idle_timeout: self.idle_timeout, last_activity: self.last_activity }
    }

    pub fn idle_deadline(&self, last_activity: Timestamp) -> Option<Timestamp> {
        self.lifetime().idle_deadline(last_activity)
    }

    /// Decides liveness from the record alone, given the latest activity known (which may be
    /// newer than the stored one). Ended sessions stay ended; time-outs apply even when no
    /// sweeper has marked the record yet.
    pub fn liveness(&self, now: Timestamp, last_activity: Timestamp) -> Liveness {
        self.lifetime().liveness(now, last_activity)
    }

    /// Seconds left before the absolute deadline; 0 once the session is not alive.
    pub fn remaining_duration(&self, now: Timestamp) -> i64 {
        match self.liveness(now, self.last_activity) {
            Liveness::Alive => now.secs_until(self.expires),
            Liveness::Dead(_) => 0,
        }
    }

    /// The record as a reader should see it at `now`: a session whose deadline passed reads
    /// as ended even before a sweeper has written that down.
    pub fn observed_at(&self, now: Timestamp) -> Session {
        self.clone().observe(now)
    }

    /// The status and end reason [`Session::observed_at`] shows at `now`, without a copy.
    pub fn status_at(&self, now: Timestamp) -> (SessionStatus, Option<EndReason>) {
        match self.liveness(now, self.last_activity) {
            Liveness::Dead(reason) if self.end_reason.is_none() => (reason.status(), Some(reason)),
            _ => (self.status, self.end_reason),
        }
    }

    /// [`Session::observed_at`] of a record the caller owns (nothing is copied).
    pub fn observe(mut self, now: Timestamp) -> Session {
        let o = self.state_at(now, self.last_activity);
        (self.last_activity, self.status, self.ended, self.end_reason) =
            (o.last_activity, o.status, o.ended, o.end_reason);
        self
    }

    /// What [`Session::observe`] would change, at `now` with the latest activity `seen` (at
    /// least the stored one), without touching or copying the record: for a record shared
    /// by a cache.
    pub fn state_at(&self, now: Timestamp, seen: Timestamp) -> SessionState {
        let last_activity = self.last_activity.max(seen);
        let mut state =
            SessionState { last_activity, status: self.status, ended: self.ended, end_reason: self.end_reason };
        if let Liveness::Dead(reason) = self.liveness(now, last_activity)
            && self.end_reason.is_none()
        {
            state.ended = Some(match reason {
                EndReason::IdleTimeout => self.idle_deadline(last_activity).unwrap_or(now),
                _ => self.expires,
            });
            state.status = reason.status();
            state.end_reason = Some(reason);
        }
        state
    }

    /// Whether a request from `peer` may use this session's token.
    pub fn ip_allows(&self, peer: Option<IpAddr>) -> bool {
        ip_allows(self.bound_ip, peer)
    }
}

/// Whether a token bound to `bound` (if any) may be used from `peer`.
pub fn ip_allows(bound: Option<IpAddr>, peer: Option<IpAddr>) -> bool {
    match (bound, peer) {
        (None, _) => true,
        (Some(bound), Some(peer)) => bound.to_canonical() == peer.to_canonical(),
        (Some(_), None) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(idle: Option<i64>) -> Session {
        Session::start(SessionStart {
            id: SessionId::from_random([1; 16]),
            org_id: OrgId::from_random([2; 16]),
            handle: String::new(),
            kind: SessionKind::Login,
            principal: Principal::user(UserId::from_random([3; 16]), "a@b.c"),
            auth_method: "password".into(),
            source_ip: "127.0.0.1".into(),
            duration: 1_000,
            idle_timeout: idle,
            now: Timestamp(100),
        })
    }

    #[test]
    fn expiry_is_absolute() {
        let s = session(None);
        assert_eq!(s.liveness(Timestamp(1_099), Timestamp(100)), Liveness::Alive);
        assert_eq!(s.liveness(Timestamp(1_100), Timestamp(100)), Liveness::Dead(EndReason::Expired));
        assert_eq!(s.remaining_duration(Timestamp(600)), 500);
        assert_eq!(s.remaining_duration(Timestamp(5_000)), 0);
    }

    #[test]
    fn activity_moves_the_idle_deadline() {
        let s = session(Some(300));
        assert_eq!(s.liveness(Timestamp(400), Timestamp(100)), Liveness::Dead(EndReason::IdleTimeout));
        assert_eq!(s.liveness(Timestamp(400), Timestamp(350)), Liveness::Alive);
        // Activity never extends past the absolute deadline.
        assert_eq!(s.liveness(Timestamp(1_100), Timestamp(1_099)), Liveness::Dead(EndReason::Expired));
    }

    #[test]
    fn observed_record_reads_as_ended_without_a_sweeper() {
        let s = session(Some(300)).observed_at(Timestamp(500));
        assert_eq!(s.status, SessionStatus::Ended);
        assert_eq!(s.end_reason, Some(EndReason::IdleTimeout));
        assert_eq!(s.ended, Some(Timestamp(400)));
        assert_eq!(session(Some(300)).status_at(Timestamp(500)), (SessionStatus::Ended, Some(EndReason::IdleTimeout)));
        assert_eq!(session(Some(300)).status_at(Timestamp(350)), (SessionStatus::Active, None));
        // An end already written down is kept as it was.
        let mut ended = session(Some(300));
        (ended.status, ended.end_reason) = (SessionStatus::Terminated, Some(EndReason::Terminated));
        assert_eq!(ended.status_at(Timestamp(500)), (SessionStatus::Terminated, Some(EndReason::Terminated)));
        assert_eq!(ended.clone().observe(Timestamp(500)), ended);
    }

    #[test]
    fn ended_sessions_stay_ended_and_ip_binding_holds() {
        let mut s = session(None);
        s.end_reason = Some(EndReason::Terminated);
        s.status = SessionStatus::Terminated;
        assert_eq!(s.liveness(Timestamp(200), Timestamp(200)), Liveness::Dead(EndReason::Terminated));
        let mut b = session(None);
        b.bound_ip = Some("10.0.0.1".parse().unwrap());
        assert!(b.ip_allows(Some("10.0.0.1".parse().unwrap())));
        assert!(b.ip_allows(Some("::ffff:10.0.0.1".parse().unwrap())));
        assert!(!b.ip_allows(Some("10.0.0.2".parse().unwrap())));
        assert!(!b.ip_allows(None));
    }
}
