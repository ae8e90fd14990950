//! Row codecs: the column lists and the decoders that read them, for every stored type, over
//! any driver's row through [`SqlRow`]; and the stored formats of JSON-valued columns.
//!
//! A column list and its decoder sit side by side, and a list's width is counted from the
//! list itself ([`crate::width`]), so a join's offsets can never drift from its columns.

use std::str::FromStr;

use tessera_domain::Timestamp;
use tessera_domain::audit::{ActorKind, AuditEvent, AuditResult};
use tessera_domain::login::{LoginState, SessionLimits};
use tessera_domain::oidc::{IssuerKeys, IssuerUri, JwkSet, OidcClaims, OidcIssuer};
use tessera_domain::policy::PolicyDocument;
use tessera_domain::role::{MaxSessionDuration, Role, RoleType};
use tessera_domain::session::{EndReason, Principal, Session, SessionKind, SessionStatus};
use tessera_domain::token::TokenDigest;
use tessera_domain::trust::{RoleTrust, TimeOfDay, TrustConditions, TrustPrincipal};
use tessera_domain::user::{ApiKey, Email, Group, Organization, User, UserStatus};
use tessera_store::{Credential, GatewayKey, GatewayKind, GatewayObject, LoginRecord, Policy, StoreError, StoreResult};

use crate::width;

/// One result row, as each backend's driver hands it out (`rusqlite::Row`,
/// `tokio_postgres::Row`). Integers are 64-bit on both backends; a failed read is a
/// malformed row ([`malformed`]).
pub trait SqlRow {
    fn text(&self, i: usize) -> StoreResult<String>;
    fn opt_text(&self, i: usize) -> StoreResult<Option<String>>;
    fn int(&self, i: usize) -> StoreResult<i64>;
    fn opt_int(&self, i: usize) -> StoreResult<Option<i64>>;
    fn bytes(&self, i: usize) -> StoreResult<Vec<u8>>;
    /// A boolean result (`EXISTS`): PostgreSQL's `boolean`, SQLite's 0 or 1.
    fn flag(&self, i: usize) -> StoreResult<bool>;
}

/// The error of a stored row that does not decode.
pub fn malformed(msg: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(format!("stored row is malformed: {msg}"))
}

/// Decodes a value of `T` starting at a column.
pub type Decode<T> = fn(&dyn SqlRow, usize) -> StoreResult<T>;

fn id<T: FromStr>(r: &dyn SqlRow, i: usize) -> StoreResult<T> {
    let s = r.text(i)?;
    s.parse().map_err(|_| malformed(format!("not an id: {s}")))
}

fn ts(r: &dyn SqlRow, i: usize) -> StoreResult<Timestamp> {
    Ok(Timestamp(r.int(i)?))
}

fn opt_ts(r: &dyn SqlRow, i: usize) -> StoreResult<Option<Timestamp>> {
    Ok(r.opt_int(i)?.map(Timestamp))
}

pub fn organization(r: &dyn SqlRow, at: usize) -> StoreResult<Organization> {
    Ok(Organization { id: id(r, at)?, name: r.text(at + 1)?, date_created: ts(r, at + 2)? })
}

/// The columns of `users u`.
#[macro_export]
#[doc(hidden)]
macro_rules! user_cols {
    () => {
        "u.id, u.org_id, u.email, u.first_name, u.last_name, u.status, u.date_created"
    };
}
pub const USER_COLS: &str = user_cols!();
pub const USER_WIDTH: usize = width(USER_COLS);

pub fn user(r: &dyn SqlRow, at: usize) -> StoreResult<User> {
    Ok(User {
        id: id(r, at)?,
        org_id: id(r, at + 1)?,
        email: Email::parse(&r.text(at + 2)?).map_err(|e| malformed(e.message))?,
        first_name: r.text(at + 3)?,
        last_name: r.text(at + 4)?,
        status: UserStatus::parse(&r.text(at + 5)?).map_err(|e| malformed(e.message))?,
        date_created: ts(r, at + 6)?,
    })
}

/// The sign-in state columns of `users u`, in the order [`login_state`] reads them.
#[macro_export]
#[doc(hidden)]
macro_rules! login_state_cols {
    () => {
        "u.failed_logins, u.window_failures, u.window_start, u.locked_until, u.lock_count, \
         u.last_login_time, u.last_login_client, u.login_attempts, u.login_reset_by"
    };
}

pub fn login_state(r: &dyn SqlRow, at: usize) -> StoreResult<LoginState> {
    Ok(LoginState {
        failed_logins: r.int(at)?,
        window_failures: r.int(at + 1)?,
        window_start: opt_ts(r, at + 2)?,
        locked_until: opt_ts(r, at + 3)?,
        lock_count: r.int(at + 4)?,
        last_login_time: opt_ts(r, at + 5)?,
        last_login_client: r.text(at + 6)?,
        attempts: r.int(at + 7)?,
        reset_by: r.int(at + 8)?,
    })
}

/// A user with its password hash and sign-in state: [`USER_COLS`], `u.password_hash`, then
/// the sign-in state columns.
pub fn login(r: &dyn SqlRow, at: usize) -> StoreResult<LoginRecord> {
    Ok(LoginRecord {
        user: user(r, at)?,
        password_hash: r.opt_text(at + USER_WIDTH)?,
        state: login_state(r, at + USER_WIDTH + 1)?,
    })
}

pub fn session_limits(r: &dyn SqlRow, at: usize) -> StoreResult<SessionLimits> {
    Ok(SessionLimits {
        idle_timeout: r.int(at)?,
        absolute_timeout: r.int(at + 1)?,
        max_sessions_per_user: u32::try_from(r.int(at + 2)?).map_err(malformed)?,
    })
}

#[macro_export]
#[doc(hidden)]
macro_rules! api_key_cols {
    () => {
        "k.id, k.org_id, k.user_id, k.name, k.digest, k.date_created, k.date_expire"
    };
}
pub const API_KEY_WIDTH: usize = width(api_key_cols!());

fn digest(r: &dyn SqlRow, i: usize) -> StoreResult<TokenDigest> {
    TokenDigest::from_slice(&r.bytes(i)?).ok_or_else(|| malformed("digest is not 32 bytes"))
}

pub fn api_key(r: &dyn SqlRow, at: usize) -> StoreResult<ApiKey> {
    Ok(ApiKey {
        id: id(r, at)?,
        org_id: id(r, at + 1)?,
        user_id: id(r, at + 2)?,
        name: r.text(at + 3)?,
        digest: digest(r, at + 4)?,
        date_created: ts(r, at + 5)?,
        date_expire: opt_ts(r, at + 6)?,
    })
}

#[macro_export]
#[doc(hidden)]
macro_rules! group_cols {
    () => {
        "g.id, g.org_id, g.display_name, g.description, g.date_created"
    };
}

pub fn group(r: &dyn SqlRow, at: usize) -> StoreResult<Group> {
    Ok(Group {
        id: id(r, at)?,
        org_id: id(r, at + 1)?,
        display_name: r.text(at + 2)?,
        description: r.text(at + 3)?,
        date_created: ts(r, at + 4)?,
    })
}

#[macro_export]
#[doc(hidden)]
macro_rules! policy_cols {
    () => {
        "p.id, p.org_id, p.name, p.description, p.document, p.date_created"
    };
}

/// A policy document as stored: the JSON the API speaks.
pub fn document(text: &str) -> StoreResult<PolicyDocument> {
    let json = tessera_domain::policy::parse_document_json(text).map_err(malformed)?;
    PolicyDocument::from_json(json, "document").map_err(malformed)
}

pub fn document_text(doc: &PolicyDocument) -> String {
    serde_json::to_string(&doc.to_json()).expect("a policy document always serialises")
}

/// A lone `p.document` column.
pub fn document_column(r: &dyn SqlRow, at: usize) -> StoreResult<PolicyDocument> {
    document(&r.text(at)?)
}

pub fn policy(r: &dyn SqlRow, at: usize) -> StoreResult<Policy> {
    Ok(Policy {
        id: id(r, at)?,
        org_id: id(r, at + 1)?,
        name: r.text(at + 2)?,
        description: r.text(at + 3)?,
        document: document(&r.text(at + 4)?)?,
        date_created: ts(r, at + 5)?,
    })
}

#[macro_export]
#[doc(hidden)]
macro_rules! role_cols {
    () => {
        "r.id, r.org_id, r.name, r.description, r.role_type, r.max_session_duration, r.date_created"
    };
}

pub fn role(r: &dyn SqlRow, at: usize) -> StoreResult<Role> {
    Ok(Role {
        id: id(r, at)?,
        org_id: id(r, at + 1)?,
        name: r.text(at + 2)?,
        description: r.text(at + 3)?,
        role_type: RoleType::parse(&r.text(at + 4)?).map_err(|e| malformed(e.message))?,
        max_session_duration: MaxSessionDuration::new(r.int(at + 5)?).map_err(|e| malformed(e.message))?,
        date_created: ts(r, at + 6)?,
    })
}

/// A role assignment: the role's columns, then the assignee's kind (`user` or `group`), id
/// and name, and when it was assigned.
pub fn role_assignment(r: &dyn SqlRow, at: usize) -> StoreResult<tessera_domain::role::RoleAssignment> {
    use tessera_domain::role::Assignee;
    let assignee = match r.text(at + 7)?.as_str() {
        "user" => Assignee::User(id(r, at + 8)?),
        "group" => Assignee::Group(id(r, at + 8)?),
        other => return Err(malformed(format!("unknown assignee kind {other}"))),
    };
    Ok(tessera_domain::role::RoleAssignment {
        role: role(r, at)?,
        assignee,
        assignee_name: r.text(at + 9)?,
        date_assigned: ts(r, at + 10)?,
    })
}

#[macro_export]
#[doc(hidden)]
macro_rules! trust_cols {
    () => {
        "t.id, t.org_id, t.role_id, t.trust_type, t.principal_kind, t.principal_id, t.conditions, t.valid_until, \
         t.date_created"
    };
}

/// Conditions are stored as the JSON the API speaks: `{"ip_address": [...], "time_of_day": {...}}`.
pub fn conditions_text(c: &TrustConditions) -> String {
    let mut obj = serde_json::Map::new();
    obj.insert("ip_address".into(), c.ip_ranges.iter().map(|n| serde_json::Value::String(n.to_string())).collect());
    if let Some(w) = &c.time_of_day {
        let mut t = serde_json::json!({"start": w.hours.start, "end": w.hours.end});
        if w.zone.offset_secs != 0 {
            t["timezone"] = w.zone.name.clone().into();
        }
        if let Some(days) = w.day_names() {
            t["days_of_week"] = days.into();
        }
        obj.insert("time_of_day".into(), t);
    }
    if !c.oidc_claims.is_empty() {
        obj.insert("oidc_claims".into(), c.oidc_claims.to_json());
    }
    serde_json::Value::Object(obj).to_string()
}

pub fn conditions(text: &str) -> StoreResult<TrustConditions> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(malformed)?;
    let ip_ranges = v["ip_address"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str()?.parse().ok()).collect())
        .unwrap_or_default();
    let time_of_day = match &v["time_of_day"] {
        serde_json::Value::Object(o) => {
            let days: Option<Vec<String>> = o
                .get("days_of_week")
                .and_then(|d| d.as_array())
                .map(|a| a.iter().filter_map(|d| d.as_str().map(str::to_owned)).collect());
            Some(
                TimeOfDay::new(
                    Some(o.get("start").and_then(|x| x.as_i64()).unwrap_or(0)),
                    Some(o.get("end").and_then(|x| x.as_i64()).unwrap_or(24)),
                    o.get("timezone").and_then(|z| z.as_str()),
                    days.as_deref(),
                )
                .map_err(|e| malformed(e.message))?,
            )
        }
        _ => None,
    };
    let oidc_claims = match &v["oidc_claims"] {
        serde_json::Value::Null => OidcClaims::default(),
        claims => OidcClaims::parse(claims, "oidc_claims").map_err(|e| malformed(e.message))?,
    };
    Ok(TrustConditions { ip_ranges, time_of_day, oidc_claims })
}

/// A trust's principal as its two columns: `principal_kind`, `principal_id`.
pub fn principal_parts(p: &TrustPrincipal) -> (&'static str, String) {
    match p {
        TrustPrincipal::User(u) => ("user", u.to_string()),
        TrustPrincipal::Group(g) => ("group", g.to_string()),
        TrustPrincipal::OidcIssuer(i) => ("oidc_issuer", i.to_string()),
    }
}

pub fn trust(r: &dyn SqlRow, at: usize) -> StoreResult<RoleTrust> {
    let principal = match r.text(at + 4)?.as_str() {
        "user" => TrustPrincipal::User(id(r, at + 5)?),
        "group" => TrustPrincipal::Group(id(r, at + 5)?),
        "oidc_issuer" => TrustPrincipal::OidcIssuer(id(r, at + 5)?),
        other => return Err(malformed(format!("unknown principal kind {other}"))),
    };
    Ok(RoleTrust {
        id: id(r, at)?,
        org_id: id(r, at + 1)?,
        role_id: id(r, at + 2)?,
        trust_type: r.text(at + 3)?,
        principal,
        conditions: conditions(&r.text(at + 6)?)?,
        valid_until: opt_ts(r, at + 7)?,
        date_created: ts(r, at + 8)?,
    })
}

#[macro_export]
#[doc(hidden)]
macro_rules! session_cols {
    () => {
        "s.id, s.org_id, s.token_digest, s.kind, s.user_id, s.user_email, s.role_id, s.role_name, \
         s.session_name, s.auth_method, s.duration, s.bound_ip, s.source_ip, s.conditions_met, s.create_time, \
         s.mod_time, s.expiration, s.idle_timeout, s.last_activity, s.status, s.end_time, s.end_reason, \
         s.failed_logins, s.last_login_time, s.last_login_client, s.oidc_issuer_id, s.session_policy"
    };
}
pub const SESSION_COLS: &str = session_cols!();
pub const SESSION_WIDTH: usize = width(SESSION_COLS);

/// The stored form of `conditions_met`: a JSON array of strings.
pub fn conditions_met_text(met: &[String]) -> String {
    serde_json::to_string(met).unwrap_or_else(|_| "[]".into())
}

pub fn session(r: &dyn SqlRow, at: usize) -> StoreResult<Session> {
    let role_id = r.opt_text(at + 6)?;
    let bound_ip = r.opt_text(at + 11)?;
    let end_reason = r.opt_text(at + 21)?;
    Ok(Session {
        id: id(r, at)?,
        org_id: id(r, at + 1)?,
        handle: TokenDigest::from_slice(&r.bytes(at + 2)?).map(|d| d.handle()).unwrap_or_default(),
        kind: SessionKind::parse(&r.text(at + 3)?).ok_or_else(|| malformed("unknown session kind"))?,
        principal: match r.opt_text(at + 25)? {
            None => Principal::user(id(r, at + 4)?, r.text(at + 5)?),
            Some(issuer) => Principal::Workload {
                issuer: issuer.parse().map_err(|_| malformed("bad oidc issuer id"))?,
                subject: r.text(at + 5)?,
            },
        },
        role_id: role_id.map(|r| r.parse()).transpose().map_err(|_| malformed("bad role id"))?,
        role_name: r.text(at + 7)?,
        session_name: r.text(at + 8)?,
        auth_method: r.text(at + 9)?,
        duration: r.int(at + 10)?,
        bound_ip: bound_ip.map(|s| s.parse()).transpose().map_err(|_| malformed("bad ip"))?,
        source_ip: r.text(at + 12)?,
        conditions_met: serde_json::from_str(&r.text(at + 13)?).map_err(malformed)?,
        created: ts(r, at + 14)?,
        modified: ts(r, at + 15)?,
        expires: ts(r, at + 16)?,
        idle_timeout: r.opt_int(at + 17)?,
        last_activity: ts(r, at + 18)?,
        status: SessionStatus::parse(&r.text(at + 19)?).ok_or_else(|| malformed("unknown status"))?,
        ended: opt_ts(r, at + 20)?,
        end_reason: end_reason
            .map(|e| EndReason::parse(&e).ok_or_else(|| malformed("unknown end reason")))
            .transpose()?,
        failed_logins: r.int(at + 22)?,
        last_login_time: opt_ts(r, at + 23)?,
        last_login_client: r.text(at + 24)?,
        session_policy: r.opt_text(at + 26)?.map(|d| document(&d)).transpose()?,
    })
}

/// An API key and its user: `api_key_cols`, then [`USER_COLS`].
pub fn api_key_credential(r: &dyn SqlRow, at: usize) -> StoreResult<Credential> {
    Ok(Credential::ApiKey { key: api_key(r, at)?, user: user(r, at + API_KEY_WIDTH)? })
}

/// A session and its user: [`SESSION_COLS`], then [`USER_COLS`] (null for a workload's
/// session, which has no user).
pub fn session_credential(r: &dyn SqlRow, at: usize) -> StoreResult<Credential> {
    let session = Box::new(session(r, at)?);
    let user = match r.opt_text(at + SESSION_WIDTH)? {
        Some(_) => Some(user(r, at + SESSION_WIDTH)?),
        None => None,
    };
    Ok(Credential::Session { session, user })
}

#[macro_export]
#[doc(hidden)]
macro_rules! oidc_issuer_cols {
    () => {
        "i.id, i.org_id, i.source, i.uri, i.inline_keys, i.date_created"
    };
}

/// Inline keys as stored: the key set's JSON, or null for an issuer whose keys are discovered.
pub fn inline_keys_text(k: &IssuerKeys) -> Option<String> {
    match k {
        IssuerKeys::Discovered => None,
        IssuerKeys::Inline(set) => Some(set.to_json().to_string()),
    }
}

pub fn oidc_issuer(r: &dyn SqlRow, at: usize) -> StoreResult<OidcIssuer> {
    let keys = match r.opt_text(at + 4)? {
        None => IssuerKeys::Discovered,
        Some(text) => {
            let v: serde_json::Value = serde_json::from_str(&text).map_err(malformed)?;
            IssuerKeys::Inline(JwkSet::parse_strict(&v).map_err(malformed)?)
        }
    };
    Ok(OidcIssuer {
        id: id(r, at)?,
        org_id: id(r, at + 1)?,
        source: r.text(at + 2)?,
        uri: IssuerUri::parse(&r.text(at + 3)?, "uri").map_err(|e| malformed(e.message))?,
        keys,
        date_created: ts(r, at + 5)?,
    })
}

/// A gateway key: [`SESSION_COLS`], [`USER_COLS`], `k.data`, `k.expires`.
pub fn gateway_key(r: &dyn SqlRow, at: usize) -> StoreResult<GatewayKey> {
    let after = at + SESSION_WIDTH + USER_WIDTH;
    Ok(GatewayKey {
        session: session(r, at)?,
        user: user(r, at + SESSION_WIDTH)?,
        data: r.text(after)?,
        expires: Timestamp(r.int(after + 1)?),
    })
}

pub fn gateway_kind(s: &str) -> StoreResult<GatewayKind> {
    match s {
        "service" => Ok(GatewayKind::Service),
        "route" => Ok(GatewayKind::Route),
        "plugin" => Ok(GatewayKind::Plugin),
        "ca_certificate" => Ok(GatewayKind::CaCertificate),
        other => Err(malformed(format!("unknown gateway kind {other}"))),
    }
}

/// `id, org_id, kind, name, body, created, updated, scope_key` of `gateway_objects`, and its
/// refs (ids separated by spaces, or null).
pub fn gateway_object(r: &dyn SqlRow, at: usize) -> StoreResult<GatewayObject> {
    Ok(GatewayObject {
        id: id(r, at)?,
        org_id: id(r, at + 1)?,
        kind: gateway_kind(&r.text(at + 2)?)?,
        name: r.opt_text(at + 3)?,
        body: r.text(at + 4)?,
        created: ts(r, at + 5)?,
        updated: ts(r, at + 6)?,
        scope_key: r.opt_text(at + 7)?,
        refs: {
            let text = r.opt_text(at + 8)?.unwrap_or_default();
            let mut refs = text
                .split_ascii_whitespace()
                .map(|i| i.parse().map_err(|_| malformed(format!("bad gateway ref {i}"))))
                .collect::<StoreResult<Vec<uuid::Uuid>>>()?;
            refs.sort_unstable();
            refs
        },
    })
}

#[macro_export]
#[doc(hidden)]
macro_rules! audit_cols {
    () => {
        "a.id, a.org_id, a.time, a.actor_kind, a.actor_id, a.actor_email, a.credential_id, a.action, \
         a.target_kind, a.target_id, a.source_ip, a.request_id, a.result, a.reason"
    };
}
pub const AUDIT_COLS: &str = audit_cols!();
pub const AUDIT_WIDTH: usize = width(AUDIT_COLS);

pub fn audit_event(r: &dyn SqlRow, at: usize) -> StoreResult<AuditEvent> {
    Ok(AuditEvent {
        id: id(r, at)?,
        org_id: id(r, at + 1)?,
        time: ts(r, at + 2)?,
        actor_kind: ActorKind::parse(&r.text(at + 3)?).ok_or_else(|| malformed("actor_kind"))?,
        actor_id: r.text(at + 4)?,
        actor_email: r.text(at + 5)?,
        credential_id: r.text(at + 6)?,
        action: r.text(at + 7)?,
        target_kind: r.text(at + 8)?,
        target_id: r.text(at + 9)?,
        source_ip: r.text(at + 10)?,
        request_id: r.text(at + 11)?,
        result: AuditResult::parse(&r.text(at + 12)?).ok_or_else(|| malformed("result"))?,
        reason: r.text(at + 13)?,
    })
}

/// A lone text column (an id).
pub fn text(r: &dyn SqlRow, at: usize) -> StoreResult<String> {
    r.text(at)
}

pub fn flag(r: &dyn SqlRow, at: usize) -> StoreResult<bool> {
    r.flag(at)
}

pub fn int(r: &dyn SqlRow, at: usize) -> StoreResult<i64> {
    r.int(at)
}

pub fn parsed_id<T: FromStr>(r: &dyn SqlRow, at: usize) -> StoreResult<T> {
    id(r, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_are_counted_from_the_lists() {
        assert_eq!((USER_WIDTH, API_KEY_WIDTH, SESSION_WIDTH, AUDIT_WIDTH), (7, 7, 27, 14));
    }

    #[test]
    fn trust_conditions_round_trip_through_their_json() {
        use tessera_domain::trust::HourWindow;
        let c = TrustConditions {
            ip_ranges: vec!["10.0.0.0/8".parse().unwrap()],
            time_of_day: Some(TimeOfDay::utc_hours(HourWindow::new(9, 17).unwrap())),
            oidc_claims: OidcClaims::default(),
        };
        let text = conditions_text(&c);
        assert_eq!(text, r#"{"ip_address":["10.0.0.0/8"],"time_of_day":{"end":17,"start":9}}"#);
        assert_eq!(conditions(&text).unwrap(), c);
    }
}
