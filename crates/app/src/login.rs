//! Login sessions: password sign-in, the failed-login lockout, sign-out, administration of
//! sessions, session limits, token introspection and the periodic sweep.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use tessera_domain::Timestamp;
use tessera_domain::audit::{ActorKind, AuditResult};
use tessera_domain::filter::{parse_filter, parse_orderby};
use tessera_domain::ids::{OrgId, SessionId, UserId};
use tessera_domain::login::{LoginState, SessionLimits};
use tessera_domain::session::{EndReason, Principal, Session, SessionKind, SessionStart};
use tessera_domain::token::{TokenKind, mint};
use tessera_domain::user::{Email, User, UserStatus};
use tessera_store::audit as trail;
use tessera_store::{LoginRecord, PageToken, SESSION_SCHEMA, SessionQuery, SessionQueryResult};

use crate::actions as act;
use crate::audit::events::{LOCKOUT, SET_PASSWORD, SIGN_IN, SIGN_OUT};
use crate::iam::{RngRef, check_password};
use crate::{App, AppError, AppResult, Caller, CallerKind, System};

/// The one answer to every failed sign-in, so it never tells whether an email exists or an
/// account is locked.
pub const SIGN_IN_FAILED: &str = "invalid email or password, or the account is temporarily locked";

#[derive(Debug, Clone)]
pub struct SignIn {
    pub email: String,
    pub password: String,
    /// Only needed when the same email exists in several organizations with the same password.
    pub organization: Option<OrgId>,
    pub client_ip: Option<IpAddr>,
}

/// A session just created by sign-in, with its token (shown once).
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub session: Session,
    pub token: String,
}

/// What an administrator sees of a user's failed sign-ins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginLock {
    pub user_id: UserId,
    pub failed_logins: i64,
    pub locked: bool,
    pub locked_until: Option<Timestamp>,
    pub lock_count: i64,
}

/// The options of `GET /v2/iam/sessions`, as text; parsed and checked here.
#[derive(Debug, Clone, Default)]
pub struct SessionQueryText {
    pub filter: Option<String>,
    pub orderby: Option<String>,
    pub top: Option<u32>,
    pub skip: Option<u64>,
    /// `$count=true`: only the number of matches.
    pub count_only: bool,
    /// `$inlinecount`: `allpages` (default) or `none`.
    pub inline_count: bool,
    pub after: Option<PageToken>,
}

pub const DEFAULT_TOP: u32 = 100;
pub const MAX_TOP: u32 = 1_000;

/// RFC 7662 introspection of one token.
#[derive(Debug, Clone)]
pub struct Introspection {
    pub active: bool,
    pub caller: Option<Caller>,
    pub expires: Option<Timestamp>,
    pub issued: Option<Timestamp>,
    pub token_type: &'static str,
}

fn verify_password(hash: &str, password: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    match PasswordHash::new(hash) {
        Ok(parsed) => argon2::Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// A real hash to verify against when there is no user, so an unknown email costs the same
/// time as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| crate::iam::hash_password("decoy-password-never-matches", [7u8; 16]).unwrap_or_default())
}

/// The caller's own session as it reads now: the record (shared with the credential's cache
/// entry, not copied) and what has changed since it was stored (activity, an end the clock
/// decided). [`CurrentSession::to_session`] puts the two together.
#[derive(Debug, Clone)]
pub struct CurrentSession {
    pub record: Arc<Session>,
    pub state: tessera_domain::session::SessionState,
}

impl CurrentSession {
    /// The record with its current state written in (a copy).
    pub fn to_session(&self) -> Session {
        let mut s = Session::clone(&self.record);
        let st = self.state;
        (s.last_activity, s.status, s.ended, s.end_reason) = (st.last_activity, st.status, st.ended, st.end_reason);
        s
    }
}

impl App {
    /// Verifies `password` against `hash` (or a decoy hash, so an unknown email costs the same)
    /// on the bounded hashing gate, under the caller's admission. No store connection is held
    /// while this waits or runs.
    async fn verify(&self, hash: Option<String>, password: &str) -> AppResult<bool> {
        let password = password.to_owned();
        self.hashing
            .run(move || match hash {
                Some(h) => verify_password(&h, &password),
                None => {
                    let _ = verify_password(decoy_hash(), &password);
                    false
                }
            })
            .await
    }

    /// Checks an email and password with the lockout rules, recording the outcome, and
    /// answers the user and its failed-login state from before this sign-in. Every failure
    /// answers [`SIGN_IN_FAILED`] after the same amount of work.
    pub async fn check_password(&self, req: &SignIn) -> AppResult<(User, LoginState)> {
        // Counted here, so the API's, the console's and the gateway's sign-ins all are.
        let checked = self.check_password_once(req).await;
        self.metrics.sign_ins.observe(&checked);
        checked
    }

    async fn check_password_once(&self, req: &SignIn) -> AppResult<(User, LoginState)> {
        let email = Email::parse(&req.email)?;
        if req.password.is_empty() || req.password.len() > 1024 {
            return Err(AppError::Unauthorized(SIGN_IN_FAILED.into()));
        }
        // Admitted to password hashing before anything is read or counted: a sign-in refused
        // under a flood (429) touches no store connection and counts no failure.
        let _admitted = self.hashing.admit()?;
        let mut candidates: Vec<LoginRecord> = self.store.find_login(&email).await?;
        if let Some(org) = req.organization {
            candidates.retain(|c| c.user.org_id == org);
        }
        let now = self.now();
        let client = req.client_ip.map(|ip| ip.to_canonical().to_string()).unwrap_or_default();
        if candidates.is_empty() {
            self.verify(None, &req.password).await?;
            return Err(AppError::Unauthorized(SIGN_IN_FAILED.into()));
        }
        for c in candidates {
            // The attempt is claimed (and counted as a failure) in one atomic store write
            // before any hash runs, so parallel guesses, on one node or many, cannot slip
            // past the lock: at most `max_failures` of them are ever checked per lock.
            let claim = match c.password_hash {
                Some(_) => self.store.claim_login_attempt(c.user.org_id, c.user.id, now, &self.lockout).await?,
                None => None,
            };
            let admitted = claim.as_ref().filter(|k| k.admitted && c.user.status == UserStatus::Active);
            // A refused attempt still spends a (decoy) hash, so a locked account answers
            // after the same time as a wrong password.
            let hash = if admitted.is_some() { c.password_hash.clone() } else { None };
            let verified = self.verify(hash, &req.password).await?;
            if !(verified && admitted.is_some()) {
                let why = match (&c.password_hash, &claim) {
                    (None, _) => "the user has no password",
                    (_, Some(k)) if !k.admitted => "the account is locked",
                    _ if c.user.status != UserStatus::Active => "the user is disabled",
                    _ => "wrong password",
                };
                let e = self
                    .sign_in_event(&c.user, ActorKind::Anonymous, SIGN_IN, "", AuditResult::Failure, req.client_ip)
                    .with_reason(why);
                self.record_refusal(&e).await;
            }
            if admitted.is_some() {
                self.password_checks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            match admitted {
                Some(k) if verified => {
                    let (org, id) = (c.user.org_id, c.user.id);
                    self.store.record_login_success(org, id, k.attempt, now, &client, &self.lockout).await?;
                    return Ok((c.user, k.before.clone()));
                }
                Some(k) if k.after.is_locked(now) && !k.before.is_locked(now) => {
                    let until = k.after.locked_until.unwrap_or(now);
                    self.metrics.lockouts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(user = %c.user.id, until = %until, "account locked after failed sign-ins");
                    let e = self
                        .sign_in_event(&c.user, ActorKind::Anonymous, LOCKOUT, "", AuditResult::Failure, req.client_ip)
                        .with_reason(format!("locked until {until} after failed sign-ins"));
                    self.record_refusal(&e).await;
                }
                _ => {}
            }
        }
        Err(AppError::Unauthorized(SIGN_IN_FAILED.into()))
    }

    /// How many real password hashes sign-in has checked on this node (decoys for unknown
    /// emails and locked accounts are not counted): what the lockout bounds.
    pub fn password_checks(&self) -> u64 {
        self.password_checks.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub async fn sign_in(&self, req: SignIn) -> AppResult<SignedIn> {
        let (user, previous) = self.check_password(&req).await?;
        let now = self.now();
        let client = req.client_ip.map(|ip| ip.to_canonical().to_string()).unwrap_or_default();
        // The session's `role` names the user's assignable roles as of sign-in.
        let (limits, roles) =
            tokio::join!(self.store.get_session_limits(user.org_id), self.assigned_role_names(user.org_id, user.id));
        let limits = limits?;
        let token = self.with_rng(|r| mint(TokenKind::LoginSession, &mut RngRef(r)));
        let session = Session {
            role_name: roles?,
            failed_logins: previous.failed_logins,
            last_login_time: previous.last_login_time,
            last_login_client: previous.last_login_client,
            ..Session::start(SessionStart {
                id: self.new_session_id(),
                org_id: user.org_id,
                handle: token.digest.handle(),
                kind: SessionKind::Login,
                principal: Principal::user(user.id, user.email.as_str()),
                auth_method: "password".into(),
                source_ip: client,
                duration: limits.absolute_timeout,
                idle_timeout: Some(limits.idle_timeout),
                now,
            })
        };
        let event = self.sign_in_event(
            &user,
            ActorKind::LoginSession,
            SIGN_IN,
            session.id,
            AuditResult::Success,
            req.client_ip,
        );
        let (created, _) = trail::scope(
            event,
            self.store.create_login_session(&session, &token.digest, limits.max_sessions_per_user, now),
        )
        .await;
        let replaced = created?;
        for old in replaced {
            self.cache.session_ended(old.id, old.expires);
        }
        tracing::info!(session = %session.id, user = %user.id, "signed in");
        Ok(SignedIn { session, token: token.secret })
    }

    /// The caller's own session (login or assumed-role), as seen now. Answered from the
    /// credential cache: the record is read from the store once per cached credential (a
    /// live session's row changes afterwards only in its activity, which this node tracks;
    /// ending it refuses the token before this is reached).
    pub async fn current_session(&self, caller: &Caller) -> AppResult<CurrentSession> {
        let id = match caller.kind {
            CallerKind::LoginSession(id) | CallerKind::RoleSession { session: id, .. } => id,
            CallerKind::ApiKey(_) => {
                return Err(AppError::NotFound("the caller authenticated with an API key, not a session".into()));
            }
        };
        let record =
            self.own_session_record(caller).await?.ok_or_else(|| AppError::NotFound("Session not found".into()))?;
        // The latest activity this node saw (this very request's, for an idle-tracked
        // session) before deciding liveness, as the authentication that let it in did.
        let seen = self.cache.activity_of(id).unwrap_or(record.last_activity);
        let state = record.state_at(self.now(), seen);
        Ok(CurrentSession { record, state })
    }

    /// Signs the caller out: its session ends with `end_reason=logout`.
    pub async fn sign_out(&self, caller: &Caller) -> AppResult<()> {
        let id = match caller.kind {
            CallerKind::LoginSession(id) | CallerKind::RoleSession { session: id, .. } => id,
            CallerKind::ApiKey(_) => {
                return Err(AppError::NotFound("the caller authenticated with an API key, not a session".into()));
            }
        };
        self.stage(caller, SIGN_OUT, "session", id);
        self.end_session(caller.org_id, id, EndReason::Logout).await?;
        Ok(())
    }

    /// Any session of the organization, by id.
    pub async fn get_session(&self, caller: &Caller, id: SessionId) -> AppResult<Session> {
        caller.authorize(act::SESSION_READ, &id.to_string())?;
        let s = self
            .store
            .get_session(caller.org_id, id)
            .await?
            .ok_or_else(|| AppError::NotFound("Session not found".into()))?;
        Ok(s.observe(self.now()))
    }

    /// Terminates a session (`Terminated`); it stops working on the next request.
    pub async fn terminate_session(&self, caller: &Caller, id: SessionId) -> AppResult<Session> {
        self.change(caller, act::SESSION_TERMINATE, &id.to_string(), "session").await?;
        match self.end_session(caller.org_id, id, EndReason::Terminated).await? {
            Some(s) => Ok(s),
            None => {
                let s = self.store.get_session(caller.org_id, id).await?;
                s.map(|s| s.observe(self.now())).ok_or_else(|| AppError::NotFound("Session not found".into()))
            }
        }
    }

    /// Terminates every active session of a user; returns how many ended.
    pub async fn terminate_user_sessions(&self, caller: &Caller, user: UserId) -> AppResult<usize> {
        self.change(caller, act::SESSION_TERMINATE, &user.to_string(), "user").await?;
        self.store.get_user(caller.org_id, user).await?.ok_or_else(|| AppError::NotFound("Invalid user".into()))?;
        let ended = self.store.end_user_sessions(caller.org_id, user, EndReason::Terminated, self.now(), None).await?;
        for s in &ended {
            self.cache.session_ended(s.id, s.expires);
        }
        Ok(ended.len())
    }

    /// Sets a user's password; the user's other sessions end (the caller's own stays).
    pub async fn set_password(&self, caller: &Caller, user: UserId, password: &str) -> AppResult<usize> {
        self.change_as(caller, act::USER_UPDATE, SET_PASSWORD, &user.to_string(), "user").await?;
        check_password(password)?;
        let hash = self.password_hash(Some(password)).await?.unwrap_or_default();
        if !self.store.set_password(caller.org_id, user, &hash).await? {
            return Err(AppError::NotFound("Invalid user".into()));
        }
        let keep = match caller.kind {
            CallerKind::LoginSession(id) if caller.user_id() == Some(user) => Some(id),
            _ => None,
        };
        let ended = self.store.end_user_sessions(caller.org_id, user, EndReason::Terminated, self.now(), keep).await?;
        for s in &ended {
            self.cache.session_ended(s.id, s.expires);
        }
        Ok(ended.len())
    }

    pub async fn get_login_lock(&self, caller: &Caller, user: UserId) -> AppResult<LoginLock> {
        caller.authorize(act::USER_READ, &user.to_string())?;
        let state = self.login_state(caller.org_id, user).await?;
        let now = self.now();
        Ok(LoginLock {
            user_id: user,
            failed_logins: state.failed_logins,
            locked: state.is_locked(now),
            locked_until: state.locked_until.filter(|t| *t > now),
            lock_count: state.lock_count,
        })
    }

    /// Clears a lock; the user can sign in again at once. The count of failed attempts is
    /// kept, so the user still learns of them on the next sign-in.
    pub async fn clear_login_lock(&self, caller: &Caller, user: UserId) -> AppResult<()> {
        self.change(caller, act::USER_UNLOCK, &user.to_string(), "user").await?;
        if !self.store.clear_login_lock(caller.org_id, user).await? {
            return Err(AppError::NotFound("Invalid user".into()));
        }
        Ok(())
    }

    async fn login_state(&self, org: OrgId, user: UserId) -> AppResult<LoginState> {
        let u = self.store.get_user(org, user).await?.ok_or_else(|| AppError::NotFound("Invalid user".into()))?;
        let records = self.store.find_login(&u.email).await?;
        Ok(records.into_iter().find(|r| r.user.id == user).map(|r| r.state).unwrap_or_default())
    }

    pub async fn get_session_limits(&self, caller: &Caller) -> AppResult<SessionLimits> {
        caller.authorize(act::SESSION_LIMITS_READ, "*")?;
        Ok(self.store.get_session_limits(caller.org_id).await?)
    }

    pub async fn put_session_limits(&self, caller: &Caller, limits: SessionLimits) -> AppResult<SessionLimits> {
        self.change(caller, act::SESSION_LIMITS_UPDATE, "*", "session_limits").await?;
        trail::retarget(caller.org_id);
        self.store.put_session_limits(caller.org_id, &limits).await?;
        Ok(limits)
    }

    /// RFC 7662: describes a token to an authorized caller of the same organization. A token
    /// of another organization, or any invalid token, is simply inactive.
    pub async fn introspect(&self, caller: &Caller, token: &str, peer: Option<IpAddr>) -> AppResult<Introspection> {
        caller.authorize(act::SESSION_INTROSPECT, "*")?;
        let inactive = Introspection { active: false, caller: None, expires: None, issued: None, token_type: "" };
        let subject = match self.authenticate(token, peer).await {
            Ok(c) if c.org_id == caller.org_id => c,
            Ok(_) | Err(AppError::Unauthorized(_)) => return Ok(inactive),
            Err(e) => return Err(e),
        };
        let token_type = match subject.kind {
            CallerKind::LoginSession(_) => "login_session",
            CallerKind::RoleSession { .. } => "role_session",
            CallerKind::ApiKey(_) => "api_key",
        };
        // Creation and expiry are in the credential's cache entry: nothing is read.
        let times = App::own_session_times(&subject);
        Ok(Introspection {
            active: true,
            expires: times.map(|t| t.1),
            issued: times.map(|t| t.0),
            caller: Some(subject),
            token_type,
        })
    }

    /// The query over all sessions of the caller's organization.
    pub async fn query_sessions(&self, caller: &Caller, q: SessionQueryText) -> AppResult<SessionQueryResult> {
        caller.authorize(act::SESSION_LIST, "*")?;
        let now = self.now();
        let invalid = |field: &str, e: tessera_domain::filter::FilterError| {
            AppError::Invalid(tessera_domain::FieldError::new(field, e.to_string()))
        };
        let filter = q
            .filter
            .as_deref()
            .filter(|f| !f.trim().is_empty())
            .map(|f| parse_filter(f, &SESSION_SCHEMA, now))
            .transpose()
            .map_err(|e| invalid("$filter", e))?;
        let order = q
            .orderby
            .as_deref()
            .filter(|o| !o.trim().is_empty())
            .map(|o| parse_orderby(o, &SESSION_SCHEMA))
            .transpose()
            .map_err(|e| invalid("$orderby", e))?
            .unwrap_or_default();
        let top = q.top.unwrap_or(DEFAULT_TOP);
        if !(1..=MAX_TOP).contains(&top) {
            return Err(AppError::Invalid(tessera_domain::FieldError::new(
                "$top",
                format!("must be from 1 to {MAX_TOP}, found {top}"),
            )));
        }
        let query = SessionQuery {
            filter,
            order,
            top,
            skip: q.skip.unwrap_or(0),
            after: q.after,
            count: q.count_only || q.inline_count,
            rows: !q.count_only,
        };
        // A skip token comes from outside: it must fit the order it continues before any
        // query runs (the store checks again; this answers before the sweep).
        query.check()?;
        self.sweep_if_due(now).await?;
        let mut result = self.store.query_sessions(caller.org_id, &query).await?;
        result.sessions = std::mem::take(&mut result.sessions).into_iter().map(|s| s.observe(now)).collect();
        Ok(result)
    }

    /// Marks timed-out sessions ended at most once a second, so a query filtering on
    /// `status` sees what authentication sees.
    pub(crate) async fn sweep_if_due(&self, now: Timestamp) -> AppResult<()> {
        let last = self.last_sweep.load(std::sync::atomic::Ordering::Relaxed);
        if now.0 > last
            && self
                .last_sweep
                .compare_exchange(
                    last,
                    now.0,
                    std::sync::atomic::Ordering::Relaxed,
                    std::sync::atomic::Ordering::Relaxed,
                )
                .is_ok()
        {
            self.store.sweep_sessions(now).await?;
        }
        Ok(())
    }

    /// Ends sessions whose deadlines passed and purges records older than the retention.
    /// Run periodically by the server; nothing depends on it for correctness of auth.
    pub async fn sweep(&self, by: System) -> AppResult<(u64, u64)> {
        let now = self.now();
        tracing::debug!(by = %by, "sweeping");
        let ended = self.store.sweep_sessions(now).await?;
        let purged = self.store.purge_sessions(now.plus_secs(-self.session_retention)).await?;
        self.purge_audit_events().await?;
        self.cache.prune(now);
        Ok((ended, purged))
    }
}
