//! The audit trail in PostgreSQL: reading events back and the audit query (inserting one is
//! part of every write's commit, in `lib.rs`).

use tessera_domain::Timestamp;
use tessera_domain::audit::{ActorKind, AuditEvent, AuditResult};
use tessera_domain::filter::FieldType;
use tessera_store::audit::{AUDIT_COLS, AUDIT_WIDTH, AuditQueryResult};
use tessera_store::filter_sql::{Dialect, SqlValue};
use tessera_store::record_query::record_query;
use tessera_store::{Keyset, SessionQuery, StoreError, StoreResult};
use tokio_postgres::{GenericClient, Row};

use crate::{bind_value, map_err, refs};

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
    let count = match &sql.count {
        Some(count_sql) => {
            let bound: Vec<_> = sql.count_params.iter().map(bind_value).collect();
            let n: i64 = c.query_one(count_sql, &refs(&bound)).await.map_err(map_err)?.get(0);
            Some(n as u64)
        }
        None => None,
    };
    let Some(rows_sql) = &sql.rows else { return Ok(AuditQueryResult { count, events: vec![], next: None }) };
    let bound: Vec<_> = sql.params.iter().map(bind_value).collect();
    let rows = c.query(rows_sql, &refs(&bound)).await.map_err(map_err)?;
    let more = rows.len() > q.top as usize;
    let rows = &rows[..rows.len().min(q.top as usize)];
    let events = rows.iter().map(event).collect::<StoreResult<Vec<_>>>()?;
    let next = match (more && q.keyset_capable(), rows.last()) {
        (true, Some(r)) => {
            let seq: i64 = r.get(AUDIT_WIDTH);
            let value = match q.order.first().map(|o| o.field.ty) {
                Some(FieldType::Text) => SqlValue::Text(r.get(AUDIT_WIDTH + 1)),
                Some(FieldType::Bool) => SqlValue::Bool(r.get(AUDIT_WIDTH + 1)),
                Some(_) => SqlValue::Int(r.get(AUDIT_WIDTH + 1)),
                None => SqlValue::Int(0),
            };
            Some(Keyset { value, seq })
        }
        _ => None,
    };
    Ok(AuditQueryResult { count, events, next })
}
