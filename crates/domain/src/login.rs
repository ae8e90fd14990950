//! Password sign-in rules: session limits per organization and the failed-login lockout.

use crate::error::FieldError;
use crate::time::Timestamp;

/// Per-organization limits on login sessions (Intersight's `iam.SessionLimits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Seconds without activity after which a session ends: 300–18 000, default 1 800.
    pub idle_timeout: i64,
    /// Seconds after sign-in at which a session ends regardless: 350–31 536 000, default 57 600.
    pub absolute_timeout: i64,
    /// Most active login sessions per user; a sign-in beyond it ends the oldest (default 32).
    pub max_sessions_per_user: u32,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self { idle_timeout: 1_800, absolute_timeout: 57_600, max_sessions_per_user: 32 }
    }
}

impl SessionLimits {
    pub fn new(idle_timeout: i64, absolute_timeout: i64, max_sessions_per_user: i64) -> Result<Self, FieldError> {
        if !(300..=18_000).contains(&idle_timeout) {
            return Err(FieldError::new(
                "idle_timeout",
                format!("must be between 300 and 18000 seconds, found {idle_timeout}"),
            ));
        }
        if !(350..=31_536_000).contains(&absolute_timeout) {
            return Err(FieldError::new(
                "absolute_timeout",
                format!("must be between 350 and 31536000 seconds, found {absolute_timeout}"),
            ));
        }
        if !(1..=1_000).contains(&max_sessions_per_user) {
            return Err(FieldError::new(
                "max_sessions_per_user",
                format!("must be between 1 and 1000, found {max_sessions_per_user}"),
            ));
        }
        Ok(Self { idle_timeout, absolute_timeout, max_sessions_per_user: max_sessions_per_user as u32 })
    }
}

/// What is known about a user's recent sign-in attempts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoginState {
    /// Failed attempts since the last successful sign-in (reported on the next success).
    pub failed_logins: i64,
    /// Failures inside the current counting window.
    pub window_failures: i64,
    pub window_start: Option<Timestamp>,
    pub locked_until: Option<Timestamp>,
    /// How many times the account was locked since the last success; each lock doubles.
    pub lock_count: i64,
    pub last_login_time: Option<Timestamp>,
    pub last_login_client: String,
}

/// The lockout policy: `max_failures` inside `window` seconds lock the account for
/// `base_lock * 2^(locks so far)` seconds, capped at `max_lock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    pub max_failures: i64,
    pub window: i64,
    pub base_lock: i64,
    pub max_lock: i64,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self { max_failures: 5, window: 900, base_lock: 60, max_lock: 3_600 }
    }
}

impl LoginState {
    pub fn is_locked(&self, now: Timestamp) -> bool {
        self.locked_until.is_some_and(|t| now < t)
    }
}

impl LockoutPolicy {
    /// The state after one more failed attempt at `now`.
    pub fn on_failure(&self, mut s: LoginState, now: Timestamp) -> LoginState {
        s.failed_logins += 1;
        let in_window = s.window_start.is_some_and(|start| now.0 - start.0 < self.window);
        if in_window {
            s.window_failures += 1;
        } else {
            s.window_start = Some(now);
            s.window_failures = 1;
        }
        if s.window_failures >= self.max_failures && !s.is_locked(now) {
            let factor = 1_i64.checked_shl(s.lock_count.clamp(0, 30) as u32).unwrap_or(i64::MAX);
            let secs = self.base_lock.saturating_mul(factor).min(self.max_lock);
            s.locked_until = Some(now.plus_secs(secs));
            s.lock_count += 1;
            s.window_failures = 0;
            s.window_start = None;
        }
        s
    }

    /// The state after a successful sign-in from `client` at `now`.
    pub fn on_success(&self, now: Timestamp, client: &str) -> LoginState {
        LoginState { last_login_time: Some(now), last_login_client: client.to_owned(), ..LoginState::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_bounded() {
        assert!(SessionLimits::new(299, 57_600, 32).is_err());
        assert!(SessionLimits::new(300, 349, 32).is_err());
        assert!(SessionLimits::new(300, 350, 0).is_err());
        assert_eq!(SessionLimits::new(1_800, 57_600, 32).unwrap(), SessionLimits::default());
    }

    #[test]
    fn five_failures_lock_with_a_growing_delay() {
        let p = LockoutPolicy::default();
        let mut s = LoginState::default();
        let t = Timestamp(1_000);
        for i in 0..4 {
            s = p.on_failure(s, t.plus_secs(i));
            assert!(!s.is_locked(t.plus_secs(i)));
        }
        s = p.on_failure(s, t.plus_secs(4));
        assert_eq!(s.locked_until, Some(t.plus_secs(64)));
        assert!(s.is_locked(t.plus_secs(63)) && !s.is_locked(t.plus_secs(64)));
        for i in 0..5 {
            s = p.on_failure(s, t.plus_secs(100 + i));
        }
        assert_eq!(s.locked_until, Some(t.plus_secs(104 + 120)), "second lock doubles");
        assert_eq!(s.failed_logins, 10);
        let ok = p.on_success(t.plus_secs(1_000), "10.0.0.1");
        assert_eq!((ok.failed_logins, ok.lock_count, ok.locked_until), (0, 0, None));
        assert_eq!(ok.last_login_client, "10.0.0.1");
    }

    #[test]
    fn failures_outside_the_window_do_not_accumulate() {
        let p = LockoutPolicy::default();
        let mut s = LoginState::default();
        for i in 0..10 {
            s = p.on_failure(s, Timestamp(i * 1_000));
        }
        assert!(s.locked_until.is_none());
        assert_eq!(s.failed_logins, 10);
    }

    #[test]
    fn the_lock_is_capped() {
        let p = LockoutPolicy::default();
        let mut s = LoginState { lock_count: 40, ..Default::default() };
        for i in 0..5 {
            s = p.on_failure(s, Timestamp(i));
        }
        assert_eq!(s.locked_until, Some(Timestamp(4 + 3_600)));
    }
}
