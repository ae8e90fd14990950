//! Translation of a checked filter AST to parameterized SQL, for SQLite and PostgreSQL.
//!
//! Column names come only from the schema's static `FieldDef::column`; every value becomes a
//! bound parameter. String functions use `instr`/`strpos` and `substr`, never `LIKE`, so
//! `%`, `_` and `\` in a value are literal and matching is case-sensitive on both backends.

use tessera_domain::filter::{CmpOp, Expr, StrFunc, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlValue {
    Text(String),
    Int(i64),
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlFragment {
    pub sql: String,
    pub params: Vec<SqlValue>,
}

struct Builder {
    dialect: Dialect,
    next: usize,
    params: Vec<SqlValue>,
}

impl Builder {
    fn bind(&mut self, v: SqlValue) -> String {
        self.params.push(v);
        let n = self.next;
        self.next += 1;
        match self.dialect {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}"),
        }
    }

    fn value(&mut self, v: &Value) -> Option<String> {
        let sql = match v {
            Value::Text(s) => SqlValue::Text(s.clone()),
            Value::Int(n) => SqlValue::Int(*n),
            Value::Bool(b) => SqlValue::Bool(*b),
            Value::Time(t) => SqlValue::Int(t.0),
            Value::Null => return None,
        };
        Some(self.bind(sql))
    }

    fn expr(&mut self, e: &Expr, out: &mut String) {
        match e {
            Expr::Compare { field, op, value } => match self.value(value) {
                None => {
                    let not = if *op == CmpOp::Ne { " NOT" } else { "" };
                    out.push_str(&format!("{} IS{not} NULL", field.column));
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
                    out.push_str(&format!("{} {op} {p}", field.column));
                }
            },
            Expr::In { field, values } => {
                let ps: Vec<String> = values.iter().filter_map(|v| self.value(v)).collect();
                out.push_str(&format!("{} IN ({})", field.column, ps.join(", ")));
            }
            Expr::Func { func, field, value } => {
                let c = field.column;
                let p = self.bind(SqlValue::Text(value.clone()));
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

/// Translates `expr`; placeholders start at `first_param` (1-based) so the caller can bind
/// its own parameters (such as the organization) first.
pub fn filter_to_sql(expr: &Expr, dialect: Dialect, first_param: usize) -> SqlFragment {
    let mut b = Builder { dialect, next: first_param, params: Vec::new() };
    let mut sql = String::new();
    b.expr(expr, &mut sql);
    SqlFragment { sql, params: b.params }
}

#[cfg(test)]
mod tests {
    use tessera_domain::Timestamp;
    use tessera_domain::filter::{FieldDef, FieldType, Schema, parse_filter};

    use super::*;

    static FIELDS: &[FieldDef] = &[
        FieldDef { name: "status", column: "s.status", ty: FieldType::Text, nullable: false },
        FieldDef { name: "failed_logins", column: "s.failed_logins", ty: FieldType::Int, nullable: false },
        FieldDef { name: "create_time", column: "s.create_time", ty: FieldType::Time, nullable: false },
        FieldDef { name: "end_time", column: "s.end_time", ty: FieldType::Time, nullable: true },
    ];
    static SCHEMA: Schema = Schema { fields: FIELDS };

    fn sql(f: &str, d: Dialect) -> SqlFragment {
        filter_to_sql(&parse_filter(f, &SCHEMA, Timestamp(1_000)).unwrap(), d, 2)
    }

    #[test]
    fn values_are_always_bound() {
        let q = sql("status eq 'x''; DROP TABLE s; --' and failed_logins gt 3", Dialect::Sqlite);
        assert_eq!(q.sql, "(s.status = ?2 AND s.failed_logins > ?3)");
        assert_eq!(q.params, vec![SqlValue::Text("x'; DROP TABLE s; --".into()), SqlValue::Int(3)]);
        let q = sql("status eq 'a' or create_time ge now() sub PT10S", Dialect::Postgres);
        assert_eq!(q.sql, "(s.status = $2 OR s.create_time >= $3)");
        assert_eq!(q.params, vec![SqlValue::Text("a".into()), SqlValue::Int(990)]);
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
        assert_eq!(q.params, vec![SqlValue::Text("x".into())]);
    }
}
