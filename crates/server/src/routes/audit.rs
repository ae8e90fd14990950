//! The audit trail over HTTP: the per-request audit scope (where a change came from) and
//! `GET /v2/audit-events`, which takes the session query's options.

use std::sync::Arc;

use crate::json::Json;
use axum::extract::State;
use tessera_api_types as wire;
use tessera_app::App;
use tessera_domain::audit::AuditEvent;
use tessera_domain::page::PageToken;

use crate::error::ApiResult;
use crate::extract::{Authed, project, record_query_options};

/// The fields `$select` may keep, in the order an event is rendered.
pub const AUDIT_VIEW_FIELDS: &[&str] = &[
    "moid",
    "time",
    "actor_kind",
    "actor_id",
    "actor_email",
    "credential_id",
    "action",
    "target_kind",
    "target_id",
    "source_ip",
    "request_id",
    "result",
    "reason",
    "account_moid",
];

fn view(e: &AuditEvent) -> wire::AuditEventView {
    wire::AuditEventView {
        moid: e.id.to_string(),
        time: e.time.to_rfc3339(),
        actor_kind: e.actor_kind.as_str().to_owned(),
        actor_id: e.actor_id.clone(),
        actor_email: e.actor_email.clone(),
        credential_id: e.credential_id.clone(),
        action: e.action.clone(),
        target_kind: e.target_kind.clone(),
        target_id: e.target_id.clone(),
        source_ip: e.source_ip.clone(),
        request_id: e.request_id.clone(),
        result: e.result.as_str().to_owned(),
        reason: e.reason.clone(),
        account_moid: e.org_id.to_string(),
    }
}

/// `GET /v2/audit-events`: the organization's audit trail, oldest first unless ordered.
pub async fn query(
    State(app): State<Arc<App>>,
    Authed(c): Authed,
    uri: axum::http::Uri,
) -> ApiResult<Json<wire::AuditQueryResponse>> {
    let (q, select) = record_query_options(uri.query().unwrap_or(""), AUDIT_VIEW_FIELDS, false)?;
    let count_only = q.count_only;
    let result = app.query_audit_events(&c, q).await?;
    let results = (!count_only).then(|| {
        result
            .events
            .iter()
            .map(|e| {
                let m = match serde_json::to_value(view(e)) {
                    Ok(serde_json::Value::Object(m)) => m,
                    _ => serde_json::Map::new(),
                };
                project(m, select.as_deref())
            })
            .collect()
    });
    Ok(Json(wire::AuditQueryResponse {
        count: result.count,
        results,
        next_skip_token: result.next.map(PageToken::into_string),
    }))
}
