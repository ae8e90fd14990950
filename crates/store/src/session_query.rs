//! The query over all sessions (`GET /v2/iam/sessions`): the fields a filter may name, and
//! the typed query every backend answers.

use tessera_domain::FieldError;
use tessera_domain::filter::{Expr, FieldDef, FieldType, OrderBy, Schema, Value};
use tessera_domain::page::PageToken;
use tessera_domain::session::Session;

const fn field(name: &'static str, ty: FieldType, nullable: bool) -> FieldDef {
    FieldDef { name, ty, nullable }
}

static SESSION_FIELDS: &[FieldDef] = &[
    field("moid", FieldType::Text, false),
    field("kind", FieldType::Text, false),
    field("user_id", FieldType::Text, false),
    field("user_id_or_email", FieldType::Text, false),
    field("role", FieldType::Text, false),
    field("role_id", FieldType::Text, true),
    field("session_name", FieldType::Text, false),
    field("auth_method", FieldType::Text, false),
    field("client_ip_address", FieldType::Text, false),
    field("create_time", FieldType::Time, false),
    field("mod_time", FieldType::Time, false),
    field("expiration", FieldType::Time, false),
    field("idle_time_expiration", FieldType::Time, true),
    field("end_time", FieldType::Time, true),
    field("status", FieldType::Text, false),
    field("end_reason", FieldType::Text, true),
    field("failed_logins", FieldType::Int, false),
    field("last_login_time", FieldType::Time, true),
    field("last_login_client", FieldType::Text, false),
    field("account_moid", FieldType::Text, false),
    field("oidc_issuer_id", FieldType::Text, true),
];

/// The fields of the `iam.Session` record that `$filter` and `$orderby` may name.
pub static SESSION_SCHEMA: Schema = Schema { fields: SESSION_FIELDS };

#[derive(Debug, Clone)]
pub struct SessionQuery {
    pub filter: Option<Expr>,
    /// Sort keys; rows tie-break on insertion order. Empty means insertion order.
    pub order: Vec<OrderBy>,
    pub top: u32,
    pub skip: u64,
    /// Continue after the page this token (a previous result's `next`) ended; only with at
    /// most one non-nullable sort key. The backend that made it reads it.
    pub after: Option<PageToken>,
    /// Count all matches.
    pub count: bool,
    /// Return rows (false for `$count=true`).
    pub rows: bool,
}

#[derive(Debug, Clone, Default)]
pub struct SessionQueryResult {
    pub count: Option<u64>,
    pub sessions: Vec<Session>,
    /// Set when more rows follow and the order allows a keyset continuation.
    pub next: Option<PageToken>,
}

impl SessionQuery {
    /// Checks what came from outside and is not already typed: no text may hold a NUL,
    /// which PostgreSQL cannot store. Every backend calls this first, so both answer such a
    /// query alike. (The skip token is checked by the backend that reads it.)
    pub fn check(&self) -> Result<(), FieldError> {
        if let Some(f) = &self.filter
            && has_nul(f)
        {
            return Err(FieldError::new("$filter", "a string must not contain the NUL character (U+0000)"));
        }
        Ok(())
    }

    /// Whether this order can continue by keyset: at most one key, and not a nullable one.
    pub fn keyset_capable(&self) -> bool {
        match self.order.as_slice() {
            [] => true,
            [o] => !o.field.nullable,
            _ => false,
        }
    }
}

/// Refuses what no backend can store, before an aggregation runs (as [`SessionQuery::check`]).
pub fn check_apply(a: &tessera_domain::filter::Apply) -> Result<(), FieldError> {
    match &a.filter {
        Some(f) if has_nul(f) => Err(FieldError::new("$apply", "a string must not contain the NUL character (U+0000)")),
        _ => Ok(()),
    }
}

fn has_nul(e: &Expr) -> bool {
    let text = |v: &Value| matches!(v, Value::Text(t) if t.contains('\0'));
    match e {
        Expr::Compare { value, .. } => text(value),
        Expr::In { values, .. } => values.iter().any(text),
        Expr::Func { value, .. } => value.contains('\0'),
        Expr::And(a, b) | Expr::Or(a, b) => has_nul(a) || has_nul(b),
        Expr::Not(a) => has_nul(a),
    }
}
