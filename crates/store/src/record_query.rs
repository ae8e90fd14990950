//! The SQL of a record query (`$filter`, `$orderby`, `$top`, `$skip`, skip tokens) over one
//! table of one organization, for either dialect: the sessions query and the audit query
//! are the same statement over different tables, built here once for both backends.

use crate::SessionQuery;
use crate::filter_sql::{Dialect, SqlValue, filter_to_sql};

/// The statements a backend runs, with their bound values in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuerySql {
    /// `SELECT count(*) ...` when the query counts.
    pub count: Option<String>,
    pub count_params: Vec<SqlValue>,
    /// The page: `cols`, then the table's `seq`, then (with an order) the sort key's column.
    pub rows: Option<String>,
    pub params: Vec<SqlValue>,
}

/// Builds the statements of `q` over `table` (`"audit_events a"`) whose alias is `alias`,
/// reading `cols`, within organization `org`. Column names come from the schema only;
/// every value is bound.
pub fn record_query(q: &SessionQuery, d: Dialect, table: &str, alias: &str, cols: &str, org: String) -> QuerySql {
    let ph = |n: usize| match d {
        Dialect::Sqlite => format!("?{n}"),
        Dialect::Postgres => format!("${n}"),
    };
    let mut params = vec![SqlValue::Text(org)];
    let mut where_sql = format!("{alias}.org_id = {}", ph(1));
    if let Some(f) = &q.filter {
        let frag = filter_to_sql(f, d, 2);
        where_sql.push_str(" AND ");
        where_sql.push_str(&frag.sql);
        params.extend(frag.params);
    }
    let count = q.count.then(|| format!("SELECT count(*) FROM {table} WHERE {where_sql}"));
    let count_params = params.clone();
    if !q.rows {
        return QuerySql { count, count_params, rows: None, params: vec![] };
    }
    // Sort keys, always ending in the insertion sequence so pages never overlap.
    let key = q.order.first();
    let descending = key.is_some_and(|o| o.descending);
    let mut order: Vec<String> = q
        .order
        .iter()
        .map(|o| {
            let dir = if o.descending { "DESC" } else { "ASC" };
            // NULLs sort last either way, as readers of "newest first" expect. Columns that
            // cannot be NULL sort plainly, so an index on them serves the order.
            if o.field.nullable {
                format!("{c} IS NULL, {c} {dir}", c = o.field.column)
            } else {
                format!("{} {dir}", o.field.column)
            }
        })
        .collect();
    order.push(format!("{alias}.seq {}", if descending { "DESC" } else { "ASC" }));
    if let Some(after) = q.after.as_ref().filter(|_| q.keyset_capable()) {
        let n = params.len();
        let cmp = if descending { "<" } else { ">" };
        match key {
            Some(o) => {
                where_sql.push_str(&format!(
                    " AND ({c} {cmp} {a} OR ({c} = {a} AND {alias}.seq {cmp} {b}))",
                    c = o.field.column,
                    a = ph(n + 1),
                    b = ph(n + 2)
                ));
                params.push(after.value.clone());
            }
            None => where_sql.push_str(&format!(" AND {alias}.seq > {}", ph(n + 1))),
        }
        params.push(SqlValue::Int(after.seq));
    }
    let rows = format!(
        "SELECT {cols}, {alias}.seq{key_col} FROM {table} WHERE {where_sql} ORDER BY {} LIMIT {} OFFSET {}",
        order.join(", "),
        i64::from(q.top) + 1,
        q.skip.min(i64::MAX as u64),
        key_col = key.map(|o| format!(", {}", o.field.column)).unwrap_or_default(),
    );
    QuerySql { count, count_params, rows: Some(rows), params }
}

#[cfg(test)]
mod tests {
    use tessera_domain::Timestamp;
    use tessera_domain::filter::{parse_filter, parse_orderby};

    use super::*;
    use crate::audit::AUDIT_SCHEMA;
    use crate::{Keyset, SessionQuery};

    #[test]
    fn pages_continue_after_the_key_and_values_stay_bound() {
        let q = SessionQuery {
            filter: Some(parse_filter("action eq 'x''; --'", &AUDIT_SCHEMA, Timestamp(0)).unwrap()),
            order: parse_orderby("time desc", &AUDIT_SCHEMA).unwrap(),
            top: 10,
            skip: 0,
            after: Some(Keyset { value: SqlValue::Int(5), seq: 7 }),
            count: true,
            rows: true,
        };
        let sql = record_query(&q, Dialect::Postgres, "audit_events a", "a", "a.id", "org".into());
        assert_eq!(
            sql.count.as_deref(),
            Some("SELECT count(*) FROM audit_events a WHERE a.org_id = $1 AND a.action = $2")
        );
        assert_eq!(
            sql.rows.as_deref(),
            Some(
                "SELECT a.id, a.seq, a.time FROM audit_events a WHERE a.org_id = $1 AND a.action = $2 \
                 AND (a.time < $3 OR (a.time = $3 AND a.seq < $4)) ORDER BY a.time DESC, a.seq DESC LIMIT 11 OFFSET 0"
            )
        );
        assert_eq!(sql.params.len(), 4);
        assert_eq!(sql.count_params.len(), 2);
    }
}
