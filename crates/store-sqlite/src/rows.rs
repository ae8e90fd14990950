//! How the shared SQL layer talks to rusqlite: values bound without copies, rows read
//! through [`SqlRow`], and the small helpers every method runs its queries with.

use rusqlite::types::{ToSqlOutput, Value as Sqlite, ValueRef};
use rusqlite::{Connection, Statement, ToSql, params_from_iter};
use tessera_domain::page::Page;
use tessera_store::StoreResult;
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

fn rows<T>(
    st: &mut Statement<'_>,
    q: &Query,
    mut each: impl FnMut(&dyn SqlRow) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut rows = st.query(params_from_iter(q.params.iter().map(Bind))).map_err(map_err)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(map_err)? {
        out.push(each(&Row(r))?);
    }
    Ok(out)
}

fn cached<'c>(c: &'c Connection, q: &Query) -> StoreResult<rusqlite::CachedStatement<'c>> {
    c.prepare_cached(q.sql(D)).map_err(map_err)
}

/// Runs a write; answers the rows it changed. A unique violation becomes the query's conflict.
pub fn exec(c: &Connection, q: &Query) -> StoreResult<usize> {
    cached(c, q)?.execute(params_from_iter(q.params.iter().map(Bind))).map_err(|e| q.explain(map_err(e)))
}

pub fn all<T>(c: &Connection, f: &Fetch<T>) -> StoreResult<Vec<T>> {
    rows(&mut *cached(c, &f.query)?, &f.query, |r| (f.decode)(r, 0))
}

pub fn one<T>(c: &Connection, f: &Fetch<T>) -> StoreResult<Option<T>> {
    Ok(all(c, f)?.into_iter().next())
}

/// A query answering one boolean (`SELECT EXISTS ...`).
pub fn flag(c: &Connection, q: &Query) -> StoreResult<bool> {
    Ok(rows(&mut *cached(c, q)?, q, |r| r.flag(0))?.first().copied().unwrap_or(false))
}

fn count(st: &mut Statement<'_>, q: &Query) -> StoreResult<i64> {
    Ok(rows(st, q, |r| r.int(0))?.first().copied().unwrap_or(0))
}

/// Fails with the check's error when its row does not exist.
pub fn check(c: &Connection, ch: &Check) -> StoreResult<()> {
    if flag(c, &ch.query)? { Ok(()) } else { Err(ch.missing.clone()) }
}

pub fn page<T>(c: &Connection, p: &ListPage<T>) -> StoreResult<Page<T>> {
    let total = p.count(D);
    let total = count(&mut *cached(c, &total)?, &total)?;
    let q = p.rows(D);
    let fetched = p.fetched(rows(&mut *cached(c, &q)?, &q, |r| p.row(r))?);
    let beyond = match p.probe(&fetched, D) {
        Some(probe) => flag(c, &probe)?,
        None => false,
    };
    Ok(p.page(fetched, total, beyond))
}

/// Runs a record query: the count, the page and the next page's token. Its statements vary
/// with every filter, so they are prepared afresh rather than crowding the statement cache.
pub fn record<T>(c: &Connection, rq: &RecordQuery<T>) -> StoreResult<Records<T>> {
    let fresh = |q: &Query| c.prepare(q.sql(D)).map_err(map_err);
    let total = match &rq.count {
        Some(q) => Some(count(&mut fresh(q)?, q)?),
        None => None,
    };
    let (items, next) = match &rq.rows {
        Some(q) => rq.finish(rows(&mut fresh(q)?, q, |r| rq.row(r))?),
        None => (vec![], None),
    };
    Ok(Records { count: total, items, next })
}
