//! How the shared SQL layer talks to tokio-postgres: values bound as the parameter types the
//! server asks for, rows read through [`SqlRow`], and the helpers every method runs its
//! queries with (on a pooled client or inside a transaction alike).

use std::error::Error;

use bytes::BytesMut;
use tessera_domain::page::Page;
use tessera_store::StoreResult;
use tessera_store_sql::metrics::StatementMetrics;
use tessera_store_sql::paging::ListPage;
use tessera_store_sql::record_query::{RecordQuery, Records};
use tessera_store_sql::rows::malformed;
use tessera_store_sql::statements::{Check, Fetch};
use tessera_store_sql::{Dialect, Query, SqlRow, Value};
use tokio_postgres::GenericClient;
use tokio_postgres::types::{IsNull, ToSql, Type};

use crate::map_err;

pub const D: Dialect = Dialect::Postgres;

/// A bound value; each variant checks the parameter's type as its Rust type would, so a value
/// of the wrong type is still `WrongType` (and so invalid input, never an outage).
#[derive(Debug)]
pub struct Bind<'a>(pub &'a Value);

type Encoded = Result<IsNull, Box<dyn Error + Sync + Send>>;

impl ToSql for Bind<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Encoded {
        match self.0 {
            Value::Text(s) => s.to_sql(ty, out),
            Value::Int(n) => n.to_sql(ty, out),
            Value::Bool(b) => b.to_sql(ty, out),
            Value::Bytes(b) => b.to_sql(ty, out),
            Value::NullText | Value::NullInt => Ok(IsNull::Yes),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn to_sql_checked(&self, ty: &Type, out: &mut BytesMut) -> Encoded {
        match self.0 {
            Value::Text(s) => s.to_sql_checked(ty, out),
            Value::Int(n) => n.to_sql_checked(ty, out),
            Value::Bool(b) => b.to_sql_checked(ty, out),
            Value::Bytes(b) => b.to_sql_checked(ty, out),
            Value::NullText => None::<String>.to_sql_checked(ty, out),
            Value::NullInt => None::<i64>.to_sql_checked(ty, out),
        }
    }
}

pub fn binds(values: &[Value]) -> Vec<Bind<'_>> {
    values.iter().map(Bind).collect()
}

pub fn refs<'a>(binds: &'a [Bind<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    binds.iter().map(|b| b as &(dyn ToSql + Sync)).collect()
}

struct Row<'a>(&'a tokio_postgres::Row);

impl SqlRow for Row<'_> {
    fn text(&self, i: usize) -> StoreResult<String> {
        self.0.try_get(i).map_err(malformed)
    }
    fn opt_text(&self, i: usize) -> StoreResult<Option<String>> {
        self.0.try_get(i).map_err(malformed)
    }
    fn int(&self, i: usize) -> StoreResult<i64> {
        self.0.try_get(i).map_err(malformed)
    }
    fn opt_int(&self, i: usize) -> StoreResult<Option<i64>> {
        self.0.try_get(i).map_err(malformed)
    }
    fn bytes(&self, i: usize) -> StoreResult<Vec<u8>> {
        self.0.try_get(i).map_err(malformed)
    }
    fn flag(&self, i: usize) -> StoreResult<bool> {
        self.0.try_get(i).map_err(malformed)
    }
}

/// Runs `q` and reads its rows, counted in `m` as one statement.
async fn rows<C: GenericClient, T>(
    m: &StatementMetrics,
    c: &C,
    q: &Query,
    mut each: impl FnMut(&dyn SqlRow) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    m.time_async(q.kind(), async {
        let b = binds(&q.params);
        let rows = c.query(q.sql(D), &refs(&b)).await.map_err(map_err)?;
        rows.iter().map(|r| each(&Row(r))).collect()
    })
    .await
}

/// Runs a write; answers the rows it changed. A unique violation becomes the query's conflict.
pub async fn exec<C: GenericClient>(m: &StatementMetrics, c: &C, q: &Query) -> StoreResult<u64> {
    m.time_async(q.kind(), async {
        let b = binds(&q.params);
        c.execute(q.sql(D), &refs(&b)).await.map_err(|e| q.explain(map_err(e)))
    })
    .await
}

pub async fn all<C: GenericClient, T>(m: &StatementMetrics, c: &C, f: &Fetch<T>) -> StoreResult<Vec<T>> {
    rows(m, c, &f.query, |r| (f.decode)(r, 0)).await
}

pub async fn one<C: GenericClient, T>(m: &StatementMetrics, c: &C, f: &Fetch<T>) -> StoreResult<Option<T>> {
    Ok(all(m, c, f).await?.into_iter().next())
}

/// A query answering one boolean (`SELECT EXISTS ...`).
pub async fn flag<C: GenericClient>(m: &StatementMetrics, c: &C, q: &Query) -> StoreResult<bool> {
    Ok(rows(m, c, q, |r| r.flag(0)).await?.first().copied().unwrap_or(false))
}

async fn count<C: GenericClient>(m: &StatementMetrics, c: &C, q: &Query) -> StoreResult<i64> {
    Ok(rows(m, c, q, |r| r.int(0)).await?.first().copied().unwrap_or(0))
}

/// Fails with the check's error when its row does not exist.
pub async fn check<C: GenericClient>(m: &StatementMetrics, c: &C, ch: &Check) -> StoreResult<()> {
    if flag(m, c, &ch.query).await? { Ok(()) } else { Err(ch.missing.clone()) }
}

/// A list page: the total and the rows are asked together, so the driver pipelines them on
/// the connection (one wait for both instead of one after the other).
pub async fn page<C: GenericClient, T>(m: &StatementMetrics, c: &C, p: &ListPage<T>) -> StoreResult<Page<T>> {
    let (total, rows_query) = (p.count(D), p.rows(D));
    let (total, items) =
        futures_util::future::try_join(count(m, c, &total), rows(m, c, &rows_query, |r| p.row(r))).await?;
    let fetched = p.fetched(items);
    let beyond = match p.probe(&fetched, D) {
        Some(probe) => flag(m, c, &probe).await?,
        None => false,
    };
    Ok(p.page(fetched, total, beyond))
}

/// Runs a record query: the count, the page and the next page's token.
pub async fn record<C: GenericClient, T>(m: &StatementMetrics, c: &C, rq: &RecordQuery<T>) -> StoreResult<Records<T>> {
    let total = match &rq.count {
        Some(q) => Some(count(m, c, q).await?),
        None => None,
    };
    let (items, next) = match &rq.rows {
        Some(q) => rq.finish(rows(m, c, q, |r| rq.row(r)).await?),
        None => (vec![], None),
    };
    Ok(Records { count: total, items, next })
}

/// A session from a row of `session_cols` (for the statements that are PostgreSQL's own).
pub fn decode_session(r: &tokio_postgres::Row) -> StoreResult<tessera_domain::session::Session> {
    tessera_store_sql::rows::session(&Row(r), 0)
}
