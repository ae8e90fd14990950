//! The audit trail in PostgreSQL: reading events back and the audit query (inserting one is
//! part of every write's commit, in `lib.rs`).

use tessera_domain::Timestamp;
use tessera_domain::audit::{ActorKind, AuditEvent, AuditResult};
use tessera_store::audit::{AUDIT_COLS, AUDIT_WIDTH, AuditQueryResult};
use tessera_store::filter_sql::Dialect;
use tessera_store::record_query::record_query;
use tessera_store::{SessionQuery, StoreError, StoreResult};
use tokio_postgres::{GenericClient, Row};

fn bad(what: &str) -> StoreError {
    StoreError::Internal(format!("stored audit event is malformed: {what}"))
}

fn text(r: &Row, i: usize) -> StoreResult<String> {
    r.try_get(i).map_err(|e| bad(&e.to_string()))
}

fn event(r: &Row) -> StoreResult<AuditEvent> {
    Ok(AuditEvent {
        id: text(r, 0)?.parse().map_err(|_| bad("id"))?,
        org_id: text(r, 1)?.parse().map_err(|_| bad("org_id"))?,
        time: Timestamp(r.try_get(2).map_err(|e| bad(&e.to_string()))?),
        actor_kind: ActorKind::parse(&text(r, 3)?).ok_or_else(|| bad("actor_kind"))?,
        actor_id: text(r, 4)?,
        actor_email: text(r, 5)?,
        credential_id: text(r, 6)?,
        action: text(r, 7)?,
        target_kind: text(r, 8)?,
        target_id: text(r, 9)?,
        source_ip: text(r, 10)?,
        request_id: text(r, 11)?,
        result: AuditResult::parse(&text(r, 12)?).ok_or_else(|| bad("result"))?,
        reason: text(r, 13)?,
    })
}

pub async fn query<C: GenericClient>(c: &C, org: String, q: &SessionQuery) -> StoreResult<AuditQueryResult> {
    let sql = record_query(q, Dialect::Postgres, "audit_events a", "a", AUDIT_COLS, org);
    let (count, events, next) = crate::run_record_query(c, &sql, q, AUDIT_WIDTH, event).await?;
    Ok(AuditQueryResult { count, events, next })
}
