//! How the shared SQL layer talks to rusqlite: values bound without copies, rows read
//! through [`SqlRow`], and the small helpers every method runs its queries with.

use rusqlite::types::{ToSqlOutput, Value as Sqlite, ValueRef};
use rusqlite::{Connection, Statement, ToSql, params_from_iter};
use tessera_domain::page::Page;
use tessera_store::StoreResult;
use tessera_store_sql::metrics::StatementMetrics;
use tessera_store_sql::paging::ListPage;
use tessera_store_sql::record_query::{RecordQuery, Records};
use tessera_store_sql::rows::malformed;
use tessera_store_sql::statements::{Check, Fetch};
use tessera_store_sql::{Dialect, Query, SqlRow, Value};

use crate::engine::map_err;

pub const D: Dialect = Dialect::Sqlite;

struct Bind<'a>(&'a Value);

impl ToSql for Bind<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0 {
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::Int(n) => ToSqlOutput::Owned(Sqlite::Integer(*n)),
            Value::Bool(b) => ToSqlOutput::Owned(Sqlite::Integer(i64::from(*b))),
            Value::Bytes(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            Value::NullText | Value::NullInt => ToSqlOutput::Owned(Sqlite::Null),
        })
    }
}

struct Row<'a, 'b>(&'a rusqlite::Row<'b>);

impl SqlRow for Row<'_, '_> {
    fn text(&self, i: usize) -> StoreResult<String> {
        self.0.get(i).map_err(malformed)
    }
    fn opt_text(&self, i: usize) -> StoreResult<Option<String>> {
        self.0.get(i).map_err(malformed)
    }
    fn int(&self, i: usize) -> StoreResult<i64> {
        self.0.get(i).map_err(malformed)
    }
    fn opt_int(&self, i: usize) -> StoreResult<Option<i64>> {
        self.0.get(i).map_err(malformed)
    }
    fn bytes(&self, i: usize) -> StoreResult<Vec<u8>> {
        self.0.get(i).map_err(malformed)
    }
    fn flag(&self, i: usize) -> StoreResult<bool> {
        self.0.get(i).map_err(malformed)
    }
}

/// A connection and the store's statement metrics: every helper below runs one statement
/// through it and counts it.
pub struct Conn<'a> {
    pub conn: &'a Connection,
    pub metrics: &'a StatementMetrics,
}

/// Prepares `q` (kept in the connection's statement cache unless `fresh`), runs it and reads
/// its rows, counted as one statement.
fn rows<T>(
    c: &Conn<'_>,
    q: &Query,
    fresh: bool,
    mut each: impl FnMut(&dyn SqlRow) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    c.metrics.time(q.kind(), || {
        let mut run = |st: &mut Statement<'_>| {
            let mut rows = st.query(params_from_iter(q.params.iter().map(Bind))).map_err(map_err)?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(map_err)? {
                out.push(each(&Row(r))?);
            }
            Ok(out)
        };
        if fresh {
            run(&mut c.conn.prepare(q.sql(D)).map_err(map_err)?)
        } else {
            run(&mut *c.conn.prepare_cached(q.sql(D)).map_err(map_err)?)
        }
    })
}

/// Runs a write; answers the rows it changed. A unique violation becomes the query's conflict.
pub fn exec(c: &Conn<'_>, q: &Query) -> StoreResult<usize> {
    c.metrics.time(q.kind(), || {
        c.conn
            .prepare_cached(q.sql(D))
            .and_then(|mut st| st.execute(params_from_iter(q.params.iter().map(Bind))))
            .map_err(|e| q.explain(map_err(e)))
    })
}

pub fn all<T>(c: &Conn<'_>, f: &Fetch<T>) -> StoreResult<Vec<T>> {
    rows(c, &f.query, false, |r| (f.decode)(r, 0))
}

pub fn one<T>(c: &Conn<'_>, f: &Fetch<T>) -> StoreResult<Option<T>> {
    Ok(all(c, f)?.into_iter().next())
}

/// A query answering one boolean (`SELECT EXISTS ...`).
pub fn flag(c: &Conn<'_>, q: &Query) -> StoreResult<bool> {
    Ok(rows(c, q, false, |r| r.flag(0))?.first().copied().unwrap_or(false))
}

fn count(c: &Conn<'_>, q: &Query, fresh: bool) -> StoreResult<i64> {
    Ok(rows(c, q, fresh, |r| r.int(0))?.first().copied().unwrap_or(0))
}

/// Fails with the check's error when its row does not exist.
pub fn check(c: &Conn<'_>, ch: &Check) -> StoreResult<()> {
    if flag(c, &ch.query)? { Ok(()) } else { Err(ch.missing.clone()) }
}

pub fn page<T>(c: &Conn<'_>, p: &ListPage<T>) -> StoreResult<Page<T>> {
    let total = count(c, &p.count(D), false)?;
    let fetched = p.fetched(rows(c, &p.rows(D), false, |r| p.row(r))?);
    let beyond = match p.probe(&fetched, D) {
        Some(probe) => flag(c, &probe)?,
        None => false,
    };
    Ok(p.page(fetched, total, beyond))
}

/// Runs a record query: the count, the page and the next page's token. Its statements vary
/// with every filter, so they are prepared afresh rather than crowding the statement cache.
pub fn record<T>(c: &Conn<'_>, rq: &RecordQuery<T>) -> StoreResult<Records<T>> {
    let total = match &rq.count {
        Some(q) => Some(count(c, q, true)?),
        None => None,
    };
    let (items, next) = match &rq.rows {
        Some(q) => rq.finish(rows(c, q, true, |r| rq.row(r))?),
        None => (vec![], None),
    };
    Ok(Records { count: total, items, next })
}
