//! Mapping between rows and domain values: the column lists and the readers that go with them.

use std::str::FromStr;

use rusqlite::Row;
use rusqlite::types::Type;
use tessera_domain::Timestamp;
use tessera_domain::policy::PolicyDocument;
use tessera_domain::role::{MaxSessionDuration, Role, RoleType};
use tessera_domain::session::{EndReason, Session, SessionKind, SessionStatus};
use tessera_domain::token::TokenDigest;
use tessera_domain::trust::{HourWindow, RoleTrust, TrustConditions, TrustPrincipal};
use tessera_domain::user::{ApiKey, Email, Group, User, UserStatus};
use tessera_store::Policy;

fn bad(idx: usize, msg: impl Into<String>) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, msg.into().into())
}

pub fn id<T: FromStr>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T> {
    let s: String = row.get(idx)?;
    s.parse().map_err(|_| bad(idx, format!("not an id: {s}")))
}

fn ts(row: &Row<'_>, idx: usize) -> rusqlite::Result<Timestamp> {
    Ok(Timestamp(row.get(idx)?))
}

fn opt_ts(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<Timestamp>> {
    Ok(row.get::<_, Option<i64>>(idx)?.map(Timestamp))
}

/// Column list for users, with a table alias.
pub fn user_cols(a: &str) -> String {
    format!("{a}.id, {a}.org_id, {a}.email, {a}.first_name, {a}.last_name, {a}.status, {a}.date_created")
}

pub const USER_WIDTH: usize = 7;

pub fn user(row: &Row<'_>, at: usize) -> rusqlite::Result<User> {
    Ok(User {
        id: id(row, at)?,
        org_id: id(row, at + 1)?,
        email: Email::parse(&row.get::<_, String>(at + 2)?).map_err(|e| bad(at + 2, e.message))?,
        first_name: row.get(at + 3)?,
        last_name: row.get(at + 4)?,
        status: UserStatus::parse(&row.get::<_, String>(at + 5)?).map_err(|e| bad(at + 5, e.message))?,
        date_created: ts(row, at + 6)?,
    })
}

pub const API_KEY_COLS: &str = "k.id, k.org_id, k.user_id, k.name, k.digest, k.date_created, k.date_expire";
pub const API_KEY_WIDTH: usize = 7;

pub fn api_key(row: &Row<'_>, at: usize) -> rusqlite::Result<ApiKey> {
    let digest: Vec<u8> = row.get(at + 4)?;
    Ok(ApiKey {
        id: id(row, at)?,
        org_id: id(row, at + 1)?,
        user_id: id(row, at + 2)?,
        name: row.get(at + 3)?,
        digest: TokenDigest::from_slice(&digest).ok_or_else(|| bad(at + 4, "digest is not 32 bytes"))?,
        date_created: ts(row, at + 5)?,
        date_expire: opt_ts(row, at + 6)?,
    })
}

pub fn group_cols(a: &str) -> String {
    format!("{a}.id, {a}.org_id, {a}.display_name, {a}.description, {a}.date_created")
}

pub fn group(row: &Row<'_>, at: usize) -> rusqlite::Result<Group> {
    Ok(Group {
        id: id(row, at)?,
        org_id: id(row, at + 1)?,
        display_name: row.get(at + 2)?,
        description: row.get(at + 3)?,
        date_created: ts(row, at + 4)?,
    })
}

pub fn policy_cols(a: &str) -> String {
    format!("{a}.id, {a}.org_id, {a}.name, {a}.description, {a}.document, {a}.date_created")
}

pub fn document(text: &str) -> Result<PolicyDocument, String> {
    let json = tessera_domain::policy::parse_document_json(text).map_err(|e| e.to_string())?;
    PolicyDocument::from_json(json, "document").map_err(|e| e.to_string())
}

pub fn document_text(doc: &PolicyDocument) -> String {
    serde_json::to_string(&doc.to_json()).expect("a policy document always serialises")
}

pub fn policy(row: &Row<'_>, at: usize) -> rusqlite::Result<Policy> {
    let text: String = row.get(at + 4)?;
    Ok(Policy {
        id: id(row, at)?,
        org_id: id(row, at + 1)?,
        name: row.get(at + 2)?,
        description: row.get(at + 3)?,
        document: document(&text).map_err(|e| bad(at + 4, e))?,
        date_created: ts(row, at + 5)?,
    })
}

pub const ROLE_COLS: &str =
    "r.id, r.org_id, r.name, r.description, r.role_type, r.max_session_duration, r.date_created";

pub fn role(row: &Row<'_>, at: usize) -> rusqlite::Result<Role> {
    Ok(Role {
        id: id(row, at)?,
        org_id: id(row, at + 1)?,
        name: row.get(at + 2)?,
        description: row.get(at + 3)?,
        role_type: RoleType::parse(&row.get::<_, String>(at + 4)?).map_err(|e| bad(at + 4, e.message))?,
        max_session_duration: MaxSessionDuration::new(row.get(at + 5)?).map_err(|e| bad(at + 5, e.message))?,
        date_created: ts(row, at + 6)?,
    })
}

pub const TRUST_COLS: &str = "t.id, t.org_id, t.role_id, t.trust_type, t.principal_kind, t.principal_id, \
                              t.conditions, t.valid_until, t.date_created";

/// Conditions are stored as the JSON the API speaks: `{"ip_address": [...], "time_of_day": {...}}`.
pub fn conditions_text(c: &TrustConditions) -> String {
    let mut obj = serde_json::Map::new();
    obj.insert("ip_address".into(), c.ip_ranges.iter().map(|n| serde_json::Value::String(n.to_string())).collect());
    if let Some(w) = c.time_of_day {
        obj.insert("time_of_day".into(), serde_json::json!({"start": w.start, "end": w.end}));
    }
    serde_json::Value::Object(obj).to_string()
}

pub fn conditions(text: &str) -> Result<TrustConditions, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
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
            .map_err(|e| e.message)?,
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

pub fn trust(row: &Row<'_>, at: usize) -> rusqlite::Result<RoleTrust> {
    let kind: String = row.get(at + 4)?;
    let principal = match kind.as_str() {
        "user" => TrustPrincipal::User(id(row, at + 5)?),
        "group" => TrustPrincipal::Group(id(row, at + 5)?),
        other => return Err(bad(at + 4, format!("unknown principal kind {other}"))),
    };
    let text: String = row.get(at + 6)?;
    Ok(RoleTrust {
        id: id(row, at)?,
        org_id: id(row, at + 1)?,
        role_id: id(row, at + 2)?,
        trust_type: row.get(at + 3)?,
        principal,
        conditions: conditions(&text).map_err(|e| bad(at + 6, e))?,
        valid_until: opt_ts(row, at + 7)?,
        date_created: ts(row, at + 8)?,
    })
}

pub const SESSION_COLS: &str = "s.id, s.org_id, s.token_digest, s.kind, s.user_id, s.user_email, s.role_id, s.role_name, \
     s.session_name, s.auth_method, s.duration, s.bound_ip, s.source_ip, s.conditions_met, s.create_time, \
     s.mod_time, s.expiration, s.idle_timeout, s.last_activity, s.status, s.end_time, s.end_reason, \
     s.failed_logins, s.last_login_time, s.last_login_client";
pub const SESSION_WIDTH: usize = 25;

pub fn session(row: &Row<'_>, at: usize) -> rusqlite::Result<Session> {
    let kind: String = row.get(at + 3)?;
    let role_id: Option<String> = row.get(at + 6)?;
    let bound_ip: Option<String> = row.get(at + 11)?;
    let conditions: String = row.get(at + 13)?;
    let status: String = row.get(at + 19)?;
    let end_reason: Option<String> = row.get(at + 21)?;
    let digest: Vec<u8> = row.get(at + 2)?;
    Ok(Session {
        id: id(row, at)?,
        org_id: id(row, at + 1)?,
        handle: TokenDigest::from_slice(&digest).map(|d| d.handle()).unwrap_or_default(),
        kind: SessionKind::parse(&kind).ok_or_else(|| bad(at + 3, "unknown session kind"))?,
        user_id: id(row, at + 4)?,
        user_email: row.get(at + 5)?,
        role_id: role_id.map(|r| r.parse()).transpose().map_err(|_| bad(at + 6, "bad role id"))?,
        role_name: row.get(at + 7)?,
        session_name: row.get(at + 8)?,
        auth_method: row.get(at + 9)?,
        duration: row.get(at + 10)?,
        bound_ip: bound_ip.map(|s| s.parse()).transpose().map_err(|_| bad(at + 11, "bad ip"))?,
        source_ip: row.get(at + 12)?,
        conditions_met: serde_json::from_str(&conditions).map_err(|e| bad(at + 13, e.to_string()))?,
        created: ts(row, at + 14)?,
        modified: ts(row, at + 15)?,
        expires: ts(row, at + 16)?,
        idle_timeout: row.get(at + 17)?,
        last_activity: ts(row, at + 18)?,
        status: SessionStatus::parse(&status).ok_or_else(|| bad(at + 19, "unknown status"))?,
        ended: opt_ts(row, at + 20)?,
        end_reason: end_reason
            .map(|r| EndReason::parse(&r).ok_or_else(|| bad(at + 21, "unknown end reason")))
            .transpose()?,
        failed_logins: row.get(at + 22)?,
        last_login_time: opt_ts(row, at + 23)?,
        last_login_client: row.get(at + 24)?,
    })
}
