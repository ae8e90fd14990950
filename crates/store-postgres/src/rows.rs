//! Mapping between PostgreSQL rows and domain values.

use std::str::FromStr;

use tessera_domain::Timestamp;
use tessera_domain::login::LoginState;
use tessera_domain::policy::PolicyDocument;
use tessera_domain::role::{MaxSessionDuration, Role, RoleType};
use tessera_domain::session::{EndReason, Session, SessionKind, SessionStatus};
use tessera_domain::token::TokenDigest;
use tessera_domain::trust::{HourWindow, RoleTrust, TrustConditions, TrustPrincipal};
use tessera_domain::user::{ApiKey, Email, Group, User, UserStatus};
use tessera_store::{LoginRecord, Policy, StoreError, StoreResult};
use tokio_postgres::Row;

fn bad(msg: impl Into<String>) -> StoreError {
    StoreError::Internal(format!("stored row is malformed: {}", msg.into()))
}

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, i: usize) -> StoreResult<T> {
    row.try_get(i).map_err(|e| bad(e.to_string()))
}

pub fn id<T: FromStr>(row: &Row, i: usize) -> StoreResult<T> {
    let s: String = get(row, i)?;
    s.parse().map_err(|_| bad(format!("not an id: {s}")))
}

fn ts(row: &Row, i: usize) -> StoreResult<Timestamp> {
    Ok(Timestamp(get(row, i)?))
}

fn opt_ts(row: &Row, i: usize) -> StoreResult<Option<Timestamp>> {
    Ok(get::<Option<i64>>(row, i)?.map(Timestamp))
}

pub fn user_cols(a: &str) -> String {
    format!("{a}.id, {a}.org_id, {a}.email, {a}.first_name, {a}.last_name, {a}.status, {a}.date_created")
}
pub const USER_WIDTH: usize = 7;

pub fn user(row: &Row, at: usize) -> StoreResult<User> {
    Ok(User {
        id: id(row, at)?,
        org_id: id(row, at + 1)?,
        email: Email::parse(&get::<String>(row, at + 2)?).map_err(|e| bad(e.message))?,
        first_name: get(row, at + 3)?,
        last_name: get(row, at + 4)?,
        status: UserStatus::parse(&get::<String>(row, at + 5)?).map_err(|e| bad(e.message))?,
        date_created: ts(row, at + 6)?,
    })
}

/// The sign-in state columns of `users`, in the order [`login_state`] reads them.
pub const LOGIN_STATE_COLS: &str = "u.failed_logins, u.window_failures, u.window_start, u.locked_until, u.lock_count, \
                                    u.last_login_time, u.last_login_client, u.login_attempts, u.login_reset_by";

pub fn login_state(row: &Row, at: usize) -> StoreResult<LoginState> {
    Ok(LoginState {
        failed_logins: get(row, at)?,
        window_failures: get(row, at + 1)?,
        window_start: opt_ts(row, at + 2)?,
        locked_until: opt_ts(row, at + 3)?,
        lock_count: get(row, at + 4)?,
        last_login_time: opt_ts(row, at + 5)?,
        last_login_client: get(row, at + 6)?,
        attempts: get(row, at + 7)?,
        reset_by: get(row, at + 8)?,
    })
}

/// A user with its password hash and sign-in state: `user_cols("u")`, `u.password_hash`,
/// then [`LOGIN_STATE_COLS`].
pub fn login(row: &Row) -> StoreResult<LoginRecord> {
    Ok(LoginRecord {
        user: user(row, 0)?,
        password_hash: get(row, USER_WIDTH)?,
        state: login_state(row, USER_WIDTH + 1)?,
    })
}

pub const API_KEY_COLS: &str = "k.id, k.org_id, k.user_id, k.name, k.digest, k.date_created, k.date_expire";
pub const API_KEY_WIDTH: usize = 7;

pub fn api_key(row: &Row, at: usize) -> StoreResult<ApiKey> {
    let digest: Vec<u8> = get(row, at + 4)?;
    Ok(ApiKey {
        id: id(row, at)?,
        org_id: id(row, at + 1)?,
        user_id: id(row, at + 2)?,
        name: get(row, at + 3)?,
        digest: TokenDigest::from_slice(&digest).ok_or_else(|| bad("digest is not 32 bytes"))?,
        date_created: ts(row, at + 5)?,
        date_expire: opt_ts(row, at + 6)?,
    })
}

pub fn group_cols(a: &str) -> String {
    format!("{a}.id, {a}.org_id, {a}.display_name, {a}.description, {a}.date_created")
}

pub fn group(row: &Row, at: usize) -> StoreResult<Group> {
    Ok(Group {
        id: id(row, at)?,
        org_id: id(row, at + 1)?,
        display_name: get(row, at + 2)?,
        description: get(row, at + 3)?,
        date_created: ts(row, at + 4)?,
    })
}

pub fn policy_cols(a: &str) -> String {
    format!("{a}.id, {a}.org_id, {a}.name, {a}.description, {a}.document, {a}.date_created")
}

pub fn document(text: &str) -> StoreResult<PolicyDocument> {
    let json = tessera_domain::policy::parse_document_json(text).map_err(|e| bad(e.to_string()))?;
    PolicyDocument::from_json(json, "document").map_err(|e| bad(e.to_string()))
}

pub fn document_text(doc: &PolicyDocument) -> String {
    serde_json::to_string(&doc.to_json()).expect("a policy document always serialises")
}

pub fn policy(row: &Row, at: usize) -> StoreResult<Policy> {
    Ok(Policy {
        id: id(row, at)?,
        org_id: id(row, at + 1)?,
        name: get(row, at + 2)?,
        description: get(row, at + 3)?,
        document: document(&get::<String>(row, at + 4)?)?,
        date_created: ts(row, at + 5)?,
    })
}

pub const ROLE_COLS: &str =
    "r.id, r.org_id, r.name, r.description, r.role_type, r.max_session_duration, r.date_created";

pub fn role(row: &Row, at: usize) -> StoreResult<Role> {
    Ok(Role {
        id: id(row, at)?,
        org_id: id(row, at + 1)?,
        name: get(row, at + 2)?,
        description: get(row, at + 3)?,
        role_type: RoleType::parse(&get::<String>(row, at + 4)?).map_err(|e| bad(e.message))?,
        max_session_duration: MaxSessionDuration::new(get(row, at + 5)?).map_err(|e| bad(e.message))?,
        date_created: ts(row, at + 6)?,
    })
}

pub const TRUST_COLS: &str = "t.id, t.org_id, t.role_id, t.trust_type, t.principal_kind, t.principal_id, \
                              t.conditions, t.valid_until, t.date_created";

pub fn conditions_text(c: &TrustConditions) -> String {
    let mut obj = serde_json::Map::new();
    obj.insert("ip_address".into(), c.ip_ranges.iter().map(|n| serde_json::Value::String(n.to_string())).collect());
    if let Some(w) = c.time_of_day {
        obj.insert("time_of_day".into(), serde_json::json!({"start": w.start, "end": w.end}));
    }
    serde_json::Value::Object(obj).to_string()
}

fn conditions(text: &str) -> StoreResult<TrustConditions> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let ip_ranges = v["ip_address"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str()?.parse().ok()).collect())
        .unwrap_or_default();
    let time_of_day = match &v["time_of_day"] {
        serde_json::Value::Object(o) => Some(
            HourWindow::new(
                o.get("start").and_then(|x| x.as_i64()).unwrap_or(0),
                o.get("end").and_then(|x| x.as_i64()).unwrap_or(24),
            )
            .map_err(|e| bad(e.message))?,
        ),
        _ => None,
    };
    Ok(TrustConditions { ip_ranges, time_of_day })
}

pub fn principal_parts(p: &TrustPrincipal) -> (&'static str, String) {
    match p {
        TrustPrincipal::User(u) => ("user", u.to_string()),
        TrustPrincipal::Group(g) => ("group", g.to_string()),
    }
}

pub fn trust(row: &Row, at: usize) -> StoreResult<RoleTrust> {
    let kind: String = get(row, at + 4)?;
    let principal = match kind.as_str() {
        "user" => TrustPrincipal::User(id(row, at + 5)?),
        "group" => TrustPrincipal::Group(id(row, at + 5)?),
        other => return Err(bad(format!("unknown principal kind {other}"))),
    };
    Ok(RoleTrust {
        id: id(row, at)?,
        org_id: id(row, at + 1)?,
        role_id: id(row, at + 2)?,
        trust_type: get(row, at + 3)?,
        principal,
        conditions: conditions(&get::<String>(row, at + 6)?)?,
        valid_until: opt_ts(row, at + 7)?,
        date_created: ts(row, at + 8)?,
    })
}

pub const SESSION_COLS: &str = "s.id, s.org_id, s.token_digest, s.kind, s.user_id, s.user_email, s.role_id, s.role_name, \
     s.session_name, s.auth_method, s.duration, s.bound_ip, s.source_ip, s.conditions_met, s.create_time, \
     s.mod_time, s.expiration, s.idle_timeout, s.last_activity, s.status, s.end_time, s.end_reason, \
     s.failed_logins, s.last_login_time, s.last_login_client";
pub const SESSION_WIDTH: usize = 25;

pub fn session(row: &Row, at: usize) -> StoreResult<Session> {
    let digest: Vec<u8> = get(row, at + 2)?;
    let kind: String = get(row, at + 3)?;
    let role_id: Option<String> = get(row, at + 6)?;
    let bound_ip: Option<String> = get(row, at + 11)?;
    let conditions: String = get(row, at + 13)?;
    let status: String = get(row, at + 19)?;
    let end_reason: Option<String> = get(row, at + 21)?;
    Ok(Session {
        id: id(row, at)?,
        org_id: id(row, at + 1)?,
        handle: TokenDigest::from_slice(&digest).map(|d| d.handle()).unwrap_or_default(),
        kind: SessionKind::parse(&kind).ok_or_else(|| bad("unknown session kind"))?,
        user_id: id(row, at + 4)?,
        user_email: get(row, at + 5)?,
        role_id: role_id.map(|r| r.parse()).transpose().map_err(|_| bad("bad role id"))?,
        role_name: get(row, at + 7)?,
        session_name: get(row, at + 8)?,
        auth_method: get(row, at + 9)?,
        duration: get(row, at + 10)?,
        bound_ip: bound_ip.map(|s| s.parse()).transpose().map_err(|_| bad("bad ip"))?,
        source_ip: get(row, at + 12)?,
        conditions_met: serde_json::from_str(&conditions).map_err(|e| bad(e.to_string()))?,
        created: ts(row, at + 14)?,
        modified: ts(row, at + 15)?,
        expires: ts(row, at + 16)?,
        idle_timeout: get(row, at + 17)?,
        last_activity: ts(row, at + 18)?,
        status: SessionStatus::parse(&status).ok_or_else(|| bad("unknown status"))?,
        ended: opt_ts(row, at + 20)?,
        end_reason: end_reason.map(|r| EndReason::parse(&r).ok_or_else(|| bad("unknown end reason"))).transpose()?,
        failed_logins: get(row, at + 22)?,
        last_login_time: opt_ts(row, at + 23)?,
        last_login_client: get(row, at + 24)?,
    })
}
