//! The query over all sessions (`GET /v2/iam/sessions`): the fields a filter may name, and
//! the typed query every backend answers.

use tessera_domain::FieldError;
use tessera_domain::filter::{Expr, FieldDef, FieldType, OrderBy, Schema, Value};
use tessera_domain::session::Session;

use crate::filter_sql::SqlValue;

const fn field(name: &'static str, column: &'static str, ty: FieldType, nullable: bool) -> FieldDef {
    FieldDef { name, column, ty, nullable }
}

static SESSION_FIELDS: &[FieldDef] = &[
    field("moid", "s.id", FieldType::Text, false),
    field("kind", "s.kind", FieldType::Text, false),
    field("user_id", "s.user_id", FieldType::Text, false),
    field("user_id_or_email", "s.user_email", FieldType::Text, false),
    field("role", "s.role_name", FieldType::Text, false),
    field("role_id", "s.role_id", FieldType::Text, true),
    field("session_name", "s.session_name", FieldType::Text, false),
    field("auth_method", "s.auth_method", FieldType::Text, false),
    field("client_ip_address", "s.source_ip", FieldType::Text, false),
    field("create_time", "s.create_time", FieldType::Time, false),
    field("mod_time", "s.mod_time", FieldType::Time, false),
    field("expiration", "s.expiration", FieldType::Time, false),
    field("idle_time_expiration", "s.idle_time_expiration", FieldType::Time, true),
    field("end_time", "s.end_time", FieldType::Time, true),
    field("status", "s.status", FieldType::Text, false),
    field("end_reason", "s.end_reason", FieldType::Text, true),
    field("failed_logins", "s.failed_logins", FieldType::Int, false),
    field("last_login_time", "s.last_login_time", FieldType::Time, true),
    field("last_login_client", "s.last_login_client", FieldType::Text, false),
    field("account_moid", "s.org_id", FieldType::Text, false),
];

/// The fields of the `iam.Session` record that `$filter` and `$orderby` may name.
pub static SESSION_SCHEMA: Schema = Schema { fields: SESSION_FIELDS };

/// Where the next page of an ordered scan starts: the last row's sort value and sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyset {
    pub value: SqlValue,
    pub seq: i64,
}

#[derive(Debug, Clone)]
pub struct SessionQuery {
    pub filter: Option<Expr>,
    /// Sort keys; rows tie-break on insertion order. Empty means insertion order.
    pub order: Vec<OrderBy>,
    pub top: u32,
    pub skip: u64,
    /// Continue after this position (only with at most one non-nullable sort key).
    pub after: Option<Keyset>,
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
    pub next: Option<Keyset>,
}

impl SessionQuery {
    /// Checks what came from outside and is not already typed: the skip token must fit the
    /// order it continues (a forged one must never reach the database as a parameter of
    /// the wrong type), and no text may hold a NUL, which PostgreSQL cannot store. Every
    /// backend calls this first, so both answer such a query alike.
    pub fn check(&self) -> Result<(), FieldError> {
        if let Some(f) = &self.filter
            && has_nul(f)
        {
            return Err(FieldError::new("$filter", "a string must not contain the NUL character (U+0000)"));
        }
        let Some(after) = &self.after else { return Ok(()) };
        let invalid = |why: &str| Err(FieldError::new("$skiptoken", format!("$skiptoken is not valid: {why}")));
        if !self.keyset_capable() {
            return invalid("a skip token continues an order by at most one non-nullable field");
        }
        if after.seq < 0 {
            return invalid("use the NextSkipToken of the previous page");
        }
        let fits = match (self.order.first().map(|o| o.field.ty), &after.value) {
            // Insertion order continues from the sequence alone.
            (None, _) => true,
            (Some(FieldType::Text), SqlValue::Text(t)) => !t.contains('\0'),
            (Some(FieldType::Int | FieldType::Time), SqlValue::Int(_)) => true,
            (Some(FieldType::Bool), SqlValue::Bool(_)) => true,
            _ => false,
        };
        if fits {
            Ok(())
        } else {
            invalid("it does not continue this $orderby; use the NextSkipToken of the previous page")
        }
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
