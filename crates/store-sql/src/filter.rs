//! Translation of a checked filter AST to parameterized SQL, and the column of each field.
//!
//! Column names come only from the static maps below, never from the domain or the user;
//! every value becomes a bound parameter. String functions use `instr`/`strpos` and `substr`,
//! never `LIKE`, so `%`, `_` and `\` in a value are literal and matching is case-sensitive on
//! both backends.

use tessera_domain::filter::{CmpOp, Expr, FieldDef, StrFunc, Value as FilterValue};

use crate::{Dialect, Value, placeholder};

/// The SQL column of each queryable field of one record type.
#[derive(Debug)]
pub struct Columns(pub &'static [(&'static str, &'static str)]);

impl Columns {
    /// The column of `field`. Every field of the schema this map serves has one (a test
    /// checks it), so a miss is a bug, never input.
    pub fn of(&self, field: &FieldDef) -> &'static str {
        self.0
            .iter()
            .find(|(name, _)| *name == field.name)
            .map(|(_, c)| *c)
            .expect("every queryable field has a column")
    }
}

/// `sessions s`: the fields of `store::SESSION_SCHEMA`.
pub static SESSION_COLUMNS: Columns = Columns(&[
    ("moid", "s.id"),
    ("kind", "s.kind"),
    ("user_id", "s.user_id"),
    ("user_id_or_email", "s.user_email"),
    ("role", "s.role_name"),
    ("role_id", "s.role_id"),
    ("session_name", "s.session_name"),
    ("auth_method", "s.auth_method"),
    ("client_ip_address", "s.source_ip"),
    ("create_time", "s.create_time"),
    ("mod_time", "s.mod_time"),
    ("expiration", "s.expiration"),
    ("idle_time_expiration", "s.idle_time_expiration"),
    ("end_time", "s.end_time"),
    ("status", "s.status"),
    ("end_reason", "s.end_reason"),
    ("failed_logins", "s.failed_logins"),
    ("last_login_time", "s.last_login_time"),
    ("last_login_client", "s.last_login_client"),
    ("account_moid", "s.org_id"),
    ("oidc_issuer_id", "s.oidc_issuer_id"),
]);

/// `audit_events a`: the fields of `store::AUDIT_SCHEMA`.
pub static AUDIT_COLUMNS: Columns = Columns(&[
    ("moid", "a.id"),
    ("time", "a.time"),
    ("actor_kind", "a.actor_kind"),
    ("actor_id", "a.actor_id"),
    ("actor_email", "a.actor_email"),
    ("credential_id", "a.credential_id"),
    ("action", "a.action"),
    ("target_kind", "a.target_kind"),
    ("target_id", "a.target_id"),
    ("source_ip", "a.source_ip"),
    ("request_id", "a.request_id"),
    ("result", "a.result"),
    ("reason", "a.reason"),
    ("account_moid", "a.org_id"),
]);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlFragment {
    pub sql: String,
    pub params: Vec<Value>,
}

struct Builder<'a> {
    dialect: Dialect,
    columns: &'a Columns,
    next: usize,
    params: Vec<Value>,
}

/// A filter value as a bound value; `None` for null (compared with `IS NULL`).
pub fn bound(v: &FilterValue) -> Option<Value> {
    match v {
        FilterValue::Text(s) => Some(Value::Text(s.clone())),
        FilterValue::Int(n) => Some(Value::Int(*n)),
        FilterValue::Bool(b) => Some(Value::Bool(*b)),
        FilterValue::Time(t) => Some(Value::Int(t.0)),
        FilterValue::Null => None,
    }
}

impl Builder<'_> {
    fn bind(&mut self, v: Value) -> String {
        self.params.push(v);
        let n = self.next;
        self.next += 1;
        placeholder(self.dialect, n)
    }

    fn value(&mut self, v: &FilterValue) -> Option<String> {
        bound(v).map(|v| self.bind(v))
    }

    fn expr(&mut self, e: &Expr, out: &mut String) {
        match e {
            Expr::Compare { field, op, value } => {
                let c = self.columns.of(field);
                match self.value(value) {
                    None => {
                        let not = if *op == CmpOp::Ne { " NOT" } else { "" };
                        out.push_str(&format!("{c} IS{not} NULL"));
                    }
                    Some(p) => {
                        let op = match op {
                            CmpOp::Eq => "=",
                            CmpOp::Ne => "<>",
                            CmpOp::Gt => ">",
                            CmpOp::Ge => ">=",
                            CmpOp::Lt => "<",
                            CmpOp::Le => "<=",
                        };
                        out.push_str(&format!("{c} {op} {p}"));
                    }
                }
            }
            Expr::In { field, values } => {
                let c = self.columns.of(field);
                let ps: Vec<String> = values.iter().filter_map(|v| self.value(v)).collect();
                out.push_str(&format!("{c} IN ({})", ps.join(", ")));
            }
            Expr::Func { func, field, value } => {
                let c = self.columns.of(field);
                let p = self.bind(Value::Text(value.clone()));
                let sql = match (func, self.dialect) {
                    (StrFunc::Contains, Dialect::Sqlite) => format!("instr({c}, {p}) > 0"),
                    (StrFunc::Contains, Dialect::Postgres) => format!("strpos({c}, {p}) > 0"),
                    (StrFunc::StartsWith, _) => format!("substr({c}, 1, length({p})) = {p}"),
                    (StrFunc::EndsWith, _) => {
                        format!("(length({c}) >= length({p}) AND substr({c}, length({c}) - length({p}) + 1) = {p})")
                    }
                };
                out.push_str(&sql);
            }
            Expr::And(a, b) | Expr::Or(a, b) => {
                let op = if matches!(e, Expr::And(..)) { " AND " } else { " OR " };
                out.push('(');
                self.expr(a, out);
                out.push_str(op);
                self.expr(b, out);
                out.push(')');
            }
            Expr::Not(inner) => {
                // NOT over a NULL comparison is NULL in SQL; COALESCE makes "not" mean "not
                // matched", which is what a reader of the filter expects.
                out.push_str("NOT COALESCE(");
                self.expr(inner, out);
                out.push_str(", FALSE)");
            }
        }
    }
}

/// Translates `expr` over `columns`; placeholders start at `first_param` (1-based) so the
/// caller can bind its own parameters (such as the organization) first.
pub fn filter_to_sql(expr: &Expr, columns: &Columns, dialect: Dialect, first_param: usize) -> SqlFragment {
    let mut b = Builder { dialect, columns, next: first_param, params: Vec::new() };
    let mut sql = String::new();
    b.expr(expr, &mut sql);
    SqlFragment { sql, params: b.params }
}

#[cfg(test)]
mod tests {
    use tessera_domain::Timestamp;
    use tessera_domain::filter::parse_filter;
    use tessera_store::{AUDIT_SCHEMA, SESSION_SCHEMA};

    use super::*;

    fn sql(f: &str, d: Dialect) -> SqlFragment {
        filter_to_sql(&parse_filter(f, &SESSION_SCHEMA, Timestamp(1_000)).unwrap(), &SESSION_COLUMNS, d, 2)
    }

    #[test]
    fn every_queryable_field_has_a_column() {
        for f in SESSION_SCHEMA.fields {
            assert!(SESSION_COLUMNS.0.iter().any(|(n, _)| *n == f.name), "{}", f.name);
        }
        for f in AUDIT_SCHEMA.fields {
            assert!(AUDIT_COLUMNS.0.iter().any(|(n, _)| *n == f.name), "{}", f.name);
        }
        assert_eq!(SESSION_COLUMNS.0.len(), SESSION_SCHEMA.fields.len());
        assert_eq!(AUDIT_COLUMNS.0.len(), AUDIT_SCHEMA.fields.len());
    }

    #[test]
    fn values_are_always_bound() {
        let q = sql("status eq 'x''; DROP TABLE s; --' and failed_logins gt 3", Dialect::Sqlite);
        assert_eq!(q.sql, "(s.status = ?2 AND s.failed_logins > ?3)");
        assert_eq!(q.params, vec![Value::Text("x'; DROP TABLE s; --".into()), Value::Int(3)]);
        let q = sql("status eq 'a' or create_time ge now() sub PT10S", Dialect::Postgres);
        assert_eq!(q.sql, "(s.status = $2 OR s.create_time >= $3)");
        assert_eq!(q.params, vec![Value::Text("a".into()), Value::Int(990)]);
    }

    #[test]
    fn nulls_lists_not_and_functions() {
        assert_eq!(sql("end_time eq null", Dialect::Sqlite).sql, "s.end_time IS NULL");
        assert_eq!(sql("end_time ne null", Dialect::Postgres).sql, "s.end_time IS NOT NULL");
        let q = sql("status in ('a','b')", Dialect::Postgres);
        assert_eq!((q.sql.as_str(), q.params.len()), ("s.status IN ($2, $3)", 2));
        assert_eq!(sql("not status eq 'a'", Dialect::Sqlite).sql, "NOT COALESCE(s.status = ?2, FALSE)");
        assert_eq!(sql("contains(status,'%')", Dialect::Sqlite).sql, "instr(s.status, ?2) > 0");
        assert_eq!(sql("contains(status,'%')", Dialect::Postgres).sql, "strpos(s.status, $2) > 0");
        assert_eq!(sql("startswith(status,'_')", Dialect::Sqlite).sql, "substr(s.status, 1, length(?2)) = ?2");
        let q = sql("endswith(status,'x')", Dialect::Postgres);
        assert_eq!(
            q.sql,
            "(length(s.status) >= length($2) AND substr(s.status, length(s.status) - length($2) + 1) = $2)"
        );
        assert_eq!(q.params, vec![Value::Text("x".into())]);
    }
}
