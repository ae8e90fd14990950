//! Assuming a role: the trust and permission checks, and the assumed-role session's life.

use std::net::IpAddr;
use std::sync::Arc;

use tessera_domain::FieldError;
use tessera_domain::ids::{OrgId, RoleId, SessionId, UserId};
use tessera_domain::role::{RoleType, session_duration};
use tessera_domain::session::{EndReason, Principal, Session, SessionKind, SessionStart};
use tessera_domain::token::{TokenKind, mint};
use tessera_domain::trust::{AssumeContext, Assumer, evaluate_trusts};
use tessera_domain::user::UserStatus;
use tessera_store::audit as trail;
use tessera_store::{Page, PageRequest};

use crate::actions as act;
use crate::iam::RngRef;
use crate::{App, AppError, AppResult, Caller, CallerKind, not_found};

#[derive(Debug, Clone)]
pub struct AssumeInput {
    pub user_id: UserId,
    pub role_id: RoleId,
    pub session_name: String,
    pub auth_method: String,
    pub duration: Option<i64>,
    /// When set, the session token works only from this address.
    pub ip_address: Option<IpAddr>,
    /// The address the request came from.
    pub source_ip: Option<IpAddr>,
    /// A session policy: the session acts with the role's permissions intersected with it.
    pub policy: Option<tessera_domain::policy::PolicyDocument>,
}

/// A session just assumed, with its token: shown once, never stored.
#[derive(Debug, Clone)]
pub struct AssumedSession {
    pub session: Session,
    pub token: String,
}

impl App {
    /// Assumes a role. Every refusal for lack of right (a role session assuming again, a
    /// missing permission, an unmet trust, a disabled user) is recorded as `denied`.
    pub async fn assume_role(&self, caller: &Caller, input: AssumeInput) -> AppResult<AssumedSession> {
        let role = input.role_id;
        let assumed = self.assume(caller, input).await;
        self.metrics.assumes.observe(&assumed);
        self.recording_denial(caller, act::ROLE_ASSUME, "role", role, assumed).await
    }

    async fn assume(&self, caller: &Caller, input: AssumeInput) -> AppResult<AssumedSession> {
        if let CallerKind::RoleSession { .. } = caller.kind {
            return Err(AppError::Forbidden(
                "a role session cannot assume another role; use an API key or a login session".into(),
            ));
        }
        caller.authorize(act::ROLE_ASSUME, &input.role_id.to_string())?;
        if Some(input.user_id) != caller.user_id() {
            caller.authorize(act::ASSUMED_CREATE_FOR_USER, &input.user_id.to_string())?;
        }
        match input.auth_method.as_str() {
            "api_key" => {}
            "jwt" | "oidc" => {
                return Err(FieldError::new(
                    "auth_method",
                    "jwt and oidc take the workload's OIDC token as the bearer and oidc_issuer_id instead of user_id",
                )
                .into());
            }
            other => {
                return Err(FieldError::new(
                    "auth_method",
                    format!("expected one of \"api_key\", \"jwt\", \"oidc\", found \"{other}\""),
                )
                .into());
            }
        }
        let org = caller.org_id;
        let facts = self.assume_facts(org, input.role_id, input.user_id).await?;
        let (role, user, trusts, groups) = (&facts.role, &facts.user, &facts.trusts, &facts.groups);
        if role.role_type != RoleType::Assumable {
            return Err(FieldError::new(
                "role_id",
                format!("role {} is assignable; only assumable roles can be assumed", role.id),
            )
            .into());
        }
        let duration = session_duration(input.duration, role)?;
        if user.status != UserStatus::Active {
            return Err(AppError::Forbidden(format!("user {} is disabled", user.id)));
        }
        let now = self.now();
        let ctx =
            AssumeContext { who: Assumer::User { id: user.id, groups }, ip: input.ip_address.or(input.source_ip), now };
        let conditions_met =
            evaluate_trusts(trusts, role.id, &ctx).map_err(|refusal| AppError::Forbidden(refusal.0))?;

        let token = self.with_rng(|r| mint(TokenKind::RoleSession, &mut RngRef(r)));
        let session = Session {
            role_id: Some(role.id),
            role_name: role.name.clone(),
            session_name: input.session_name,
            bound_ip: input.ip_address,
            conditions_met,
            session_policy: input.policy,
            ..Session::start(SessionStart {
                id: self.new_session_id(),
                org_id: org,
                handle: token.digest.handle(),
                kind: SessionKind::AssumedRole,
                principal: Principal::user(user.id, user.email.as_str()),
                auth_method: input.auth_method,
                source_ip: input.source_ip.map(|ip| ip.to_canonical().to_string()).unwrap_or_default(),
                duration,
                idle_timeout: None,
                now,
            })
        };
        self.stage(caller, act::ROLE_ASSUME, "session", session.id);
        trail::reason(format!("role {} for user {}", role.id, user.id));
        self.store.create_session(&session, &token.digest).await?;
        tracing::info!(session = %session.id, role = %role.id, user = %user.id, "role assumed");
        Ok(AssumedSession { session, token: token.secret })
    }

    /// The role, user, trusts and groups an assume needs: cached while no user, role, trust,
    /// policy or membership changes (on any node: the store's change feed bumps the epochs).
    async fn assume_facts(&self, org: OrgId, role: RoleId, user: UserId) -> AppResult<Arc<AssumeFacts>> {
        let epochs = self.cache.epochs();
        if let Some(e) = epochs
            && let Some(hit) = self.cache.assume_facts.get(&(org, role, user))
            && hit.epochs == e
        {
            return Ok(hit);
        }
        // The four reads are independent: issue them together.
        let (r, u, trusts, groups) = tokio::join!(
            self.store.get_role(org, role),
            self.store.get_user(org, user),
            self.store.role_trusts(org, role),
            self.store.groups_of_user(org, user),
        );
        let role = r?.ok_or_else(|| not_found("Role"))?;
        let user = u?.ok_or_else(|| AppError::NotFound("Invalid user".into()))?;
        let facts =
            Arc::new(AssumeFacts { epochs: epochs.unwrap_or_default(), role, user, trusts: trusts?, groups: groups? });
        if epochs.is_some() {
            self.cache.assume_facts.insert((org, facts.role.id, facts.user.id), Arc::clone(&facts));
        }
        Ok(facts)
    }

    /// An assumed-role session as seen now (an expired one reads as ended).
    pub async fn get_assumed_session(&self, caller: &Caller, id: SessionId) -> AppResult<Session> {
        caller.authorize(act::ASSUMED_READ, &id.to_string())?;
        let s = self.store.get_session(caller.org_id, id).await?;
        match s {
            Some(s) if s.kind == SessionKind::AssumedRole => Ok(s.observe(self.now())),
            _ => Err(AppError::NotFound("Assumed Role Not Found".into())),
        }
    }

    /// Revokes an assumed-role session; its token stops working on the next request.
    pub async fn revoke_assumed_session(&self, caller: &Caller, id: SessionId) -> AppResult<()> {
        self.change(caller, act::ASSUMED_DELETE, &id.to_string(), "session").await?;
        let s = self.store.get_session(caller.org_id, id).await?;
        let Some(s) = s.filter(|s| s.kind == SessionKind::AssumedRole) else {
            return Err(AppError::NotFound("Assumed Role Not Found".into()));
        };
        self.end_session(caller.org_id, s.id, EndReason::Terminated).await?;
        Ok(())
    }

    /// Active assumed-role sessions of one user.
    pub async fn list_user_sessions(
        &self,
        caller: &Caller,
        user: UserId,
        page: PageRequest,
    ) -> AppResult<Page<Session>> {
        caller.authorize(act::ASSUMED_LIST, &user.to_string())?;
        self.store.get_user(caller.org_id, user).await?.ok_or_else(|| AppError::NotFound("Invalid user".into()))?;
        Ok(self
            .store
            .list_active_sessions(caller.org_id, user, Some(SessionKind::AssumedRole), self.now(), page)
            .await?)
    }

    /// Ends a session of any kind and makes every cached copy of it stop working here.
    pub(crate) async fn end_session(
        &self,
        org: tessera_domain::ids::OrgId,
        id: SessionId,
        reason: EndReason,
    ) -> AppResult<Option<Session>> {
        let ended = self.store.end_session(org, id, reason, self.now()).await?;
        if let Some(s) = &ended {
            self.cache.session_ended(s.id, s.expires);
        }
        Ok(ended)
    }
}

/// What assuming a role reads from the store, as of two cache epochs.
pub(crate) struct AssumeFacts {
    epochs: (u64, u64),
    role: tessera_domain::role::Role,
    user: tessera_domain::user::User,
    trusts: Vec<tessera_domain::trust::RoleTrust>,
    groups: Vec<tessera_domain::ids::GroupId>,
}
