//! The audit trail in SQLite: inserting an event (inside a write's savepoint), reading it
//! back, and the audit query.

use rusqlite::types::Type;
use rusqlite::{Connection, Row, params};
use tessera_domain::Timestamp;
use tessera_domain::audit::{ActorKind, AuditEvent, AuditResult};
use tessera_store::audit::{AUDIT_COLS, AUDIT_WIDTH, AuditQueryResult};
use tessera_store::filter_sql::Dialect;
use tessera_store::record_query::record_query;
use tessera_store::{SessionQuery, StoreResult};

use crate::engine::map_err;

/// Inserts `e` on `conn`, inside whatever transaction or savepoint is open there.
pub fn insert(conn: &Connection, e: &AuditEvent) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO audit_events (id, org_id, time, actor_kind, actor_id, actor_email, credential_id, action, \
         target_kind, target_id, source_ip, request_id, result, reason) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )
    .and_then(|mut st| {
        st.execute(params![
            e.id.to_string(),
            e.org_id.to_string(),
            e.time.0,
            e.actor_kind.as_str(),
            e.actor_id,
            e.actor_email,
            e.credential_id,
            e.action,
            e.target_kind,
            e.target_id,
            e.source_ip,
            e.request_id,
            e.result.as_str(),
            e.reason
        ])
    })
    .map(|_| ())
    .map_err(map_err)
}

fn bad(idx: usize, what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, format!("not {what}").into())
}

fn event(r: &Row<'_>) -> rusqlite::Result<AuditEvent> {
    let text = |i: usize| r.get::<_, String>(i);
    Ok(AuditEvent {
        id: text(0)?.parse().map_err(|_| bad(0, "an id"))?,
        org_id: text(1)?.parse().map_err(|_| bad(1, "an id"))?,
        time: Timestamp(r.get(2)?),
        actor_kind: ActorKind::parse(&text(3)?).ok_or_else(|| bad(3, "an actor kind"))?,
        actor_id: text(4)?,
        actor_email: text(5)?,
        credential_id: text(6)?,
        action: text(7)?,
        target_kind: text(8)?,
        target_id: text(9)?,
        source_ip: text(10)?,
        request_id: text(11)?,
        result: AuditResult::parse(&text(12)?).ok_or_else(|| bad(12, "a result"))?,
        reason: text(13)?,
    })
}

pub fn query(c: &Connection, org: &str, q: &SessionQuery) -> StoreResult<AuditQueryResult> {
    let sql = record_query(q, Dialect::Sqlite, "audit_events a", "a", AUDIT_COLS, org.to_owned());
    let (count, events, next) = crate::run_record_query(c, &sql, q, AUDIT_WIDTH, event)?;
    Ok(AuditQueryResult { count, events, next })
}
