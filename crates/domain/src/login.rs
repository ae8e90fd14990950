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
    /// Attempts ever admitted (see [`LockoutPolicy::claim`]); never reset, so it numbers
    /// concurrent attempts in the order the store admitted them.
    pub attempts: i64,
    /// The number of the admitted attempt whose success last reset this state.
    pub reset_by: i64,
}

/// One sign-in attempt, claimed before the password is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginClaim {
    /// Whether the password may be checked at all: never while the account is locked.
    pub admitted: bool,
    /// This attempt's number (`LoginState::attempts` after it); 0 when not admitted.
    pub attempt: i64,
    /// The state before this attempt: what a successful sign-in reports.
    pub before: LoginState,
    /// The state the claim stores: this attempt already counted as a failure.
    pub after: LoginState,
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

    /// Claims one attempt at `now`, before any password is checked. While the account is
    /// locked the claim is refused and nothing changes. Otherwise the attempt is counted as
    /// a failure at once, so however many attempts run in parallel, at most `max_failures`
    /// of them are admitted before the lock: the store applies this in one atomic write.
    pub fn claim(&self, s: LoginState, now: Timestamp) -> LoginClaim {
        if s.is_locked(now) {
            return LoginClaim { admitted: false, attempt: 0, before: s.clone(), after: s };
        }
        let mut after = self.on_failure(s.clone(), now);
        after.attempts = s.attempts.saturating_add(1);
        LoginClaim { admitted: true, attempt: after.attempts, before: s, after }
    }

    /// The state after admitted attempt number `attempt` proved the password, given the
    /// stored state `current`, which may already count attempts admitted after it. The
    /// outcome is that of the same attempts in sequence: the success resets the state as of
    /// its own place, and the later attempts (still pending or failed) count again after it.
    /// A success older than the one that last reset the state changes nothing.
    pub fn after_success(&self, current: &LoginState, attempt: i64, now: Timestamp, client: &str) -> LoginState {
        if attempt <= current.reset_by {
            return current.clone();
        }
        let mut s = self.on_success(now, client);
        s.attempts = current.attempts.max(attempt);
        s.reset_by = attempt;
        // Later admitted attempts are bounded by the lock; the cap only keeps a corrupt row
        // from looping for long.
        let later = (current.attempts - attempt).clamp(0, 10_000);
        for _ in 0..later {
            s = self.on_failure(s, now);
        }
        s
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
    fn a_claim_counts_the_attempt_before_the_password_is_checked() {
        let p = LockoutPolicy::default();
        let t = Timestamp(1_000);
        let mut s = LoginState::default();
        let mut admitted = 0;
        // Fifty attempts racing: each claim sees the previous one's write, as the store
        // guarantees; exactly `max_failures` are admitted and the account ends locked.
        for i in 0..50 {
            let c = p.claim(s, t);
            if c.admitted {
                admitted += 1;
                assert_eq!(c.attempt, i + 1);
                assert_eq!(c.after.failed_logins, c.before.failed_logins + 1);
            } else {
                assert_eq!(c.before, c.after, "a refused claim changes nothing");
            }
            s = c.after;
        }
        assert_eq!(admitted, 5);
        assert!(s.is_locked(t));
        assert_eq!((s.failed_logins, s.attempts, s.lock_count), (5, 5, 1));
        // The lock lapses: the next claim is admitted and starts a new window.
        let c = p.claim(s, t.plus_secs(60));
        assert!(c.admitted && !c.after.is_locked(t.plus_secs(60)));
        assert_eq!((c.after.window_failures, c.after.failed_logins), (1, 6));
    }

    #[test]
    fn a_success_resets_as_of_its_place_in_the_sequence() {
        let p = LockoutPolicy::default();
        let t = Timestamp(1_000);
        // Two failures, then the right password (attempt 3), then two more attempts are
        // admitted while attempt 3 is still being checked; the fifth locks the account.
        let mut s = LoginState::default();
        let mut claims = vec![];
        for _ in 0..5 {
            let c = p.claim(s, t);
            s = c.after.clone();
            claims.push(c);
        }
        assert!(claims.iter().all(|c| c.admitted), "the fifth locks, but is itself admitted");
        assert!(s.is_locked(t));
        assert_eq!(claims[2].before.failed_logins, 2, "what the success reports");
        let ok = p.after_success(&s, 3, t, "10.0.0.1");
        // In sequence: w w R w w. The success clears the first two and the lock; the two
        // after it count again.
        assert!(!ok.is_locked(t));
        assert_eq!((ok.failed_logins, ok.window_failures, ok.lock_count), (2, 2, 0));
        assert_eq!((ok.attempts, ok.reset_by, ok.last_login_client.as_str()), (5, 3, "10.0.0.1"));
        // Three more failures lock again, as they would in sequence.
        let mut again = ok.clone();
        for _ in 0..3 {
            again = p.claim(again, t).after;
        }
        assert!(again.is_locked(t));
        // A success of attempt 2 recorded after 3's changes nothing.
        assert_eq!(p.after_success(&ok, 2, t, "10.0.0.2"), ok);
        // A later success resets again from its own place.
        let later = p.after_success(&ok, 4, t, "10.0.0.3");
        assert_eq!((later.failed_logins, later.reset_by, later.attempts), (1, 4, 5));
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
