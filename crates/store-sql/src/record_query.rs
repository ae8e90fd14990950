//! The SQL of a record query (`$filter`, `$orderby`, `$top`, `$skip`, skip tokens) over one
//! table of one organization, for either dialect: the sessions query and the audit query
//! are the same statement over different tables, built here once for both backends.

use tessera_domain::filter::FieldType;
use tessera_domain::page::PageToken;
use tessera_store::{SessionQuery, StoreResult};

use crate::filter::{Columns, filter_to_sql};
use crate::paging::{Keyset, keyset_token, read_keyset};
use crate::rows::Decode;
use crate::{Dialect, Query, SqlRow, Value, placeholder};

/// A record query's answer: the count (when asked for), the page, and the next page's token.
#[derive(Debug, Default)]
pub struct Records<T> {
    pub count: Option<i64>,
    pub items: Vec<T>,
    pub next: Option<PageToken>,
}

/// The table a record query reads, and how.
pub struct RecordTable<T> {
    /// `"audit_events a"`.
    pub table: &'static str,
    /// `"a"`.
    pub alias: &'static str,
    pub cols: &'static str,
    pub columns: &'static Columns,
    pub decode: Decode<T>,
}

/// The statements of one record query, and how to read their rows.
pub struct RecordQuery<T> {
    /// `SELECT count(*) ...` when the query counts.
    pub count: Option<Query>,
    /// The page: `cols`, then the table's `seq`, then (with an order) the sort key's column.
    pub rows: Option<Query>,
    width: usize,
    key: Option<FieldType>,
    top: usize,
    continues: bool,
    decode: Decode<T>,
}

/// Builds the statements of `q` over `t`, within organization `org`. Column names come from
/// the column map only; every value is bound. A skip token that does not continue `q`'s order
/// is invalid input.
pub fn record_query<T>(q: &SessionQuery, t: &RecordTable<T>, d: Dialect, org: String) -> StoreResult<RecordQuery<T>> {
    let after = read_keyset(q)?;
    let alias = t.alias;
    let mut params = vec![Value::Text(org)];
    let mut where_sql = format!("{alias}.org_id = {}", placeholder(d, 1));
    if let Some(f) = &q.filter {
        let frag = filter_to_sql(f, t.columns, d, 2);
        where_sql.push_str(" AND ");
        where_sql.push_str(&frag.sql);
        params.extend(frag.params);
    }
    let count =
        q.count.then(|| Query::built(format!("SELECT count(*) FROM {} WHERE {where_sql}", t.table), params.clone()));
    let key = q.order.first();
    let mut out = RecordQuery {
        count,
        rows: None,
        width: crate::width(t.cols),
        key: key.map(|o| o.field.ty),
        top: q.top as usize,
        continues: q.keyset_capable(),
        decode: t.decode,
    };
    if !q.rows {
        return Ok(out);
    }
    // Sort keys, always ending in the insertion sequence so pages never overlap.
    let descending = key.is_some_and(|o| o.descending);
    let mut order: Vec<String> = q
        .order
        .iter()
        .map(|o| {
            let dir = if o.descending { "DESC" } else { "ASC" };
            let c = t.columns.of(o.field);
            // NULLs sort last either way, as readers of "newest first" expect. Columns that
            // cannot be NULL sort plainly, so an index on them serves the order.
            if o.field.nullable { format!("{c} IS NULL, {c} {dir}") } else { format!("{c} {dir}") }
        })
        .collect();
    order.push(format!("{alias}.seq {}", if descending { "DESC" } else { "ASC" }));
    if let Some(after) = after {
        let n = params.len();
        let cmp = if descending { "<" } else { ">" };
        match key {
            Some(o) => {
                where_sql.push_str(&format!(
                    " AND ({c} {cmp} {a} OR ({c} = {a} AND {alias}.seq {cmp} {b}))",
                    c = t.columns.of(o.field),
                    a = placeholder(d, n + 1),
                    b = placeholder(d, n + 2)
                ));
                params.push(after.value);
            }
            None => where_sql.push_str(&format!(" AND {alias}.seq > {}", placeholder(d, n + 1))),
        }
        params.push(Value::Int(after.seq));
    }
    let rows = format!(
        "SELECT {cols}, {alias}.seq{key_col} FROM {table} WHERE {where_sql} ORDER BY {} LIMIT {} OFFSET {}",
        order.join(", "),
        i64::from(q.top) + 1,
        q.skip.min(i64::MAX as u64),
        cols = t.cols,
        table = t.table,
        key_col = key.map(|o| format!(", {}", t.columns.of(o.field))).unwrap_or_default(),
    );
    out.rows = Some(Query::built(rows, params));
    Ok(out)
}

impl<T> RecordQuery<T> {
    /// Decodes one row of [`Self::rows`]: the record and where a page after it would start.
    pub fn row(&self, r: &dyn SqlRow) -> StoreResult<(T, Keyset)> {
        let value = match self.key {
            None => Value::Int(0),
            Some(FieldType::Text) => Value::Text(r.text(self.width + 1)?),
            Some(FieldType::Bool) => Value::Bool(r.flag(self.width + 1)?),
            Some(FieldType::Int | FieldType::Time) => Value::Int(r.int(self.width + 1)?),
        };
        Ok(((self.decode)(r, 0)?, Keyset { value, seq: r.int(self.width)? }))
    }

    /// The page's records, and the token of the next page when more follow and the order
    /// continues by keyset.
    pub fn finish(&self, mut rows: Vec<(T, Keyset)>) -> (Vec<T>, Option<PageToken>) {
        let more = rows.len() > self.top;
        rows.truncate(self.top);
        let next = rows.last().filter(|_| more && self.continues).map(|(_, k)| keyset_token(k));
        (rows.into_iter().map(|(t, _)| t).collect(), next)
    }
}

#[cfg(test)]
mod tests {
    use tessera_domain::Timestamp;
    use tessera_domain::filter::{parse_filter, parse_orderby};
    use tessera_store::{AUDIT_SCHEMA, SessionQuery};

    use super::*;
    use crate::filter::AUDIT_COLUMNS;

    #[test]
    fn pages_continue_after_the_key_and_values_stay_bound() {
        let q = SessionQuery {
            filter: Some(parse_filter("action eq 'x''; --'", &AUDIT_SCHEMA, Timestamp(0)).unwrap()),
            order: parse_orderby("time desc", &AUDIT_SCHEMA).unwrap(),
            top: 10,
            skip: 0,
            after: Some(keyset_token(&Keyset { value: Value::Int(5), seq: 7 })),
            count: true,
            rows: true,
        };
        let t = RecordTable {
            table: "audit_events a",
            alias: "a",
            cols: "a.id",
            columns: &AUDIT_COLUMNS,
            decode: crate::rows::text,
        };
        let sql = record_query(&q, &t, Dialect::Postgres, "org".into()).unwrap();
        let count = sql.count.unwrap();
        assert_eq!(
            count.sql(Dialect::Postgres),
            "SELECT count(*) FROM audit_events a WHERE a.org_id = $1 AND a.action = $2"
        );
        let rows = sql.rows.unwrap();
        assert_eq!(
            rows.sql(Dialect::Postgres),
            "SELECT a.id, a.seq, a.time FROM audit_events a WHERE a.org_id = $1 AND a.action = $2 \
             AND (a.time < $3 OR (a.time = $3 AND a.seq < $4)) ORDER BY a.time DESC, a.seq DESC LIMIT 11 OFFSET 0"
        );
        assert_eq!(rows.params.len(), 4);
        assert_eq!(count.params.len(), 2);
    }
}
