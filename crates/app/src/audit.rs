//! The audit trail's use-case side: every change a caller makes is authorized and described
//! in one step ([`App::change`]), refusals that matter are recorded on their own, and the
//! trail is queried like the sessions.
//!
//! A change's event is *staged* in the request's audit scope (opened by the server around
//! every request, see `tessera_store::audit`) and the store inserts it in the same
//! transaction as the change itself. Events never hold a secret: ids, names of actions, the
//! client's address and a short reason the app writes itself, never a request body.

use std::fmt::Display;

use tessera_domain::FieldError;
use tessera_domain::Timestamp;
use tessera_domain::audit::{ActorKind, AuditEvent, AuditResult};
use tessera_domain::filter::{Schema, parse_filter, parse_orderby};
use tessera_domain::ids::OrgId;
use tessera_domain::session::Principal;
pub use tessera_store::audit::RequestScope;
use tessera_store::audit::{self as trail, Origin};
use tessera_store::{AUDIT_SCHEMA, AuditQueryResult, SessionQuery};

use crate::actions as act;
use crate::{App, AppError, AppResult, Caller, CallerKind, DEFAULT_TOP, MAX_TOP, SessionQueryText};

/// Audit names of changes no policy action guards (every other event is named by the action
/// that authorized it).
pub mod events {
    /// A password sign-in created a login (or gateway) session; or failed.
    pub const SIGN_IN: &str = "iam.session.SignIn";
    /// A caller ended its own session.
    pub const SIGN_OUT: &str = "iam.session.SignOut";
    /// A user's password was set (the password itself is never recorded).
    pub const SET_PASSWORD: &str = "iam.user.SetPassword";
    /// Failed sign-ins locked an account.
    pub const LOCKOUT: &str = "iam.user.Lockout";
    /// The first start wrote the organization, its administrator and key.
    pub const BOOTSTRAP: &str = "tessera.Bootstrap";
}

/// How long audit events are kept by default: 90 days.
pub const DEFAULT_AUDIT_RETENTION: i64 = 90 * 86_400;

/// Who acts, as an audit event names them.
pub(crate) struct Actor {
    pub kind: ActorKind,
    pub org: OrgId,
    pub id: String,
    pub email: String,
    pub credential: String,
}

impl Actor {
    pub fn of(caller: &Caller) -> Self {
        let (kind, credential) = match caller.kind {
            CallerKind::ApiKey(k) => (ActorKind::ApiKey, k.to_string()),
            CallerKind::LoginSession(s) => (ActorKind::LoginSession, s.to_string()),
            CallerKind::RoleSession { session, .. } => (ActorKind::RoleSession, session.to_string()),
        };
        // A workload is named by its issuer (the id) and its subject (where a user's email goes).
        let id = match caller.principal() {
            Principal::User { id, .. } => id.to_string(),
            Principal::Workload { issuer, .. } => issuer.to_string(),
        };
        Self { kind, org: caller.org_id, id, email: caller.display_name().to_owned(), credential }
    }
}

impl App {
    /// A new event, stamped now, from the current request's origin.
    pub(crate) fn audit_event(
        &self,
        actor: Actor,
        action: &str,
        target_kind: &str,
        target_id: impl Display,
        result: AuditResult,
    ) -> AuditEvent {
        let now = self.now();
        let random: [u8; 10] = self.with_rng(|r| {
            let mut b = [0u8; 10];
            r.fill_bytes(&mut b);
            b
        });
        let origin = trail::origin().unwrap_or_default();
        AuditEvent {
            id: uuid::Builder::from_unix_timestamp_millis(now.0.max(0) as u64 * 1_000, &random).into_uuid(),
            org_id: actor.org,
            time: now,
            actor_kind: actor.kind,
            actor_id: actor.id,
            actor_email: actor.email,
            credential_id: actor.credential,
            action: action.to_owned(),
            target_kind: target_kind.to_owned(),
            target_id: target_id.to_string(),
            source_ip: origin.source_ip.map(|ip| ip.to_string()).unwrap_or_default(),
            request_id: origin.request_id,
            result,
            reason: String::new(),
        }
    }

    /// Authorizes `caller` for `action` on `resource` and stages the event of the change
    /// that follows (about a `target_kind` named `resource`; a create names its new id with
    /// [`tessera_store::audit::retarget`]). A refusal is recorded as `denied` on its own and
    /// answered as the 403 it is.
    pub(crate) async fn change(
        &self,
        caller: &Caller,
        action: &'static str,
        resource: &str,
        target_kind: &'static str,
    ) -> AppResult<()> {
        self.change_as(caller, action, action, resource, target_kind).await
    }

    /// [`App::change`] for a change whose audit name differs from the action authorizing it.
    pub(crate) async fn change_as(
        &self,
        caller: &Caller,
        authorizing: &'static str,
        audit_name: &'static str,
        resource: &str,
        target_kind: &'static str,
    ) -> AppResult<()> {
        match caller.authorize(authorizing, resource) {
            Ok(()) => {
                self.stage(caller, audit_name, target_kind, resource);
                Ok(())
            }
            Err(AppError::Forbidden(why)) => {
                let e = self
                    .audit_event(Actor::of(caller), audit_name, target_kind, resource, AuditResult::Denied)
                    .with_reason(why.as_str());
                self.record_refusal(&e).await;
                Err(AppError::Forbidden(why))
            }
            Err(other) => Err(other),
        }
    }

    /// Records a `denied` event when `result` is a 403 (for use cases whose refusals come
    /// from more than one check), and passes `result` on.
    pub(crate) async fn recording_denial<T>(
        &self,
        caller: &Caller,
        action: &str,
        target_kind: &str,
        target_id: impl Display,
        result: AppResult<T>,
    ) -> AppResult<T> {
        if let Err(AppError::Forbidden(why)) = &result {
            let e = self
                .audit_event(Actor::of(caller), action, target_kind, target_id, AuditResult::Denied)
                .with_reason(why.as_str());
            self.record_refusal(&e).await;
        }
        result
    }

    /// Stages the event of a change that needs no authorization (signing out).
    pub(crate) fn stage(&self, caller: &Caller, action: &str, target_kind: &str, target_id: impl Display) {
        trail::stage(self.audit_event(Actor::of(caller), action, target_kind, target_id, AuditResult::Success));
    }

    /// Writes an event of an attempt that changed nothing. Its failure never changes the
    /// answer the caller gets (it is logged, without the event's contents).
    pub(crate) async fn record_refusal(&self, event: &AuditEvent) {
        if let Err(e) = self.store.record_audit_event(event).await {
            tracing::error!(action = %event.action, error = %e, "could not record an audit event");
        }
    }

    /// The audit trail of the caller's organization, with the options of the session query.
    pub async fn query_audit_events(&self, caller: &Caller, q: SessionQueryText) -> AppResult<AuditQueryResult> {
        caller.authorize(act::AUDIT_LIST, "*")?;
        let query = record_query(q, &AUDIT_SCHEMA, self.now())?;
        Ok(self.store.query_audit_events(caller.org_id, &query).await?)
    }

    /// Keeps audit events for `secs` before the sweep purges them.
    pub fn with_audit_retention(mut self, secs: i64) -> Self {
        self.audit_retention = secs.max(0);
        self
    }

    /// Deletes audit events older than the retention; part of [`App::sweep`].
    pub(crate) async fn purge_audit_events(&self) -> AppResult<u64> {
        Ok(self.store.purge_audit_events(self.now().plus_secs(-self.audit_retention)).await?)
    }
}

/// Opens the audit scope of one request: events it causes carry where it came from.
pub fn request_scope<F: std::future::Future>(
    source_ip: Option<std::net::IpAddr>,
    request_id: String,
    fut: F,
) -> RequestScope<F> {
    trail::request_scope(Origin { source_ip, request_id }, fut)
}

/// The request id of the current request's scope (the client's `X-Request-Id`, or the one
/// the server made for it); empty outside a request.
pub fn request_id() -> String {
    trail::origin().map(|o| o.request_id).unwrap_or_default()
}

/// Parses and checks the text options of a record query against `schema`; every refusal
/// names the option.
pub(crate) fn record_query(q: SessionQueryText, schema: &Schema, now: Timestamp) -> AppResult<SessionQuery> {
    let invalid =
        |field: &str, e: tessera_domain::filter::FilterError| AppError::Invalid(FieldError::new(field, e.to_string()));
    let filter = q
        .filter
        .as_deref()
        .filter(|f| !f.trim().is_empty())
        .map(|f| parse_filter(f, schema, now))
        .transpose()
        .map_err(|e| invalid("$filter", e))?;
    let order = q
        .orderby
        .as_deref()
        .filter(|o| !o.trim().is_empty())
        .map(|o| parse_orderby(o, schema))
        .transpose()
        .map_err(|e| invalid("$orderby", e))?
        .unwrap_or_default();
    let top = q.top.unwrap_or(DEFAULT_TOP);
    if !(1..=MAX_TOP).contains(&top) {
        return Err(AppError::Invalid(FieldError::new("$top", format!("must be from 1 to {MAX_TOP}, found {top}"))));
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
    query.check()?;
    Ok(query)
}

impl App {
    /// An event about a sign-in of `user` (who is the actor once it succeeded, and the
    /// target either way). The client's address comes from the request, or from the sign-in
    /// itself when there is no request scope (the gateway listener).
    pub(crate) fn sign_in_event(
        &self,
        user: &tessera_domain::user::User,
        actor: ActorKind,
        action: &str,
        credential: impl Display,
        result: AuditResult,
        client_ip: Option<std::net::IpAddr>,
    ) -> AuditEvent {
        let who = Actor {
            kind: actor,
            org: user.org_id,
            id: user.id.to_string(),
            email: user.email.as_str().to_owned(),
            credential: credential.to_string(),
        };
        let mut e = self.audit_event(who, action, "user", user.id, result);
        if e.source_ip.is_empty() {
            e.source_ip = client_ip.map(|ip| ip.to_canonical().to_string()).unwrap_or_default();
        }
        e
    }
}
