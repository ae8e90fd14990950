//! The session writer: the assume hot path's inserts, batched.
//!
//! Each request enqueues its session's row (and its audit event's) and waits for its own
//! answer. A few writer tasks each take whatever is queued at that moment — never waiting for
//! more: a lone request is written at once — and insert the lot in **one statement** (arrays
//! unnested into `sessions` and `audit_events`, a data-modifying `WITH`), so many sessions
//! cost one statement, one commit and one WAL flush instead of one each (at 64 concurrent
//! assumes, about 15 sessions per commit: BENCHMARKS.md, row 2b).
//!
//! A caller is answered `Ok` only once the statement holding its row has committed. When a
//! batch fails on its data (a duplicate, a value a column cannot take, an event breaking the
//! table's rule), nothing of it was written, and each row is written again on its own so that
//! only the bad row fails. When the database is unreachable every caller gets that error. A
//! batch (or a row) that collides with a concurrent write is rolled back whole and written
//! again (`retry`); one that collides on every attempt answers each of its callers
//! `Contended`, with none of its rows written.
//! Session creates send no `NOTIFY`: no cache holds a session before it exists.

use std::sync::Arc;

use deadpool_postgres::Pool;
use tessera_store::{StoreError, StoreResult};
use tessera_store_sql::Value;
use tessera_store_sql::statements as sql;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_postgres::types::{IsNull, Kind, ToSql, Type, WrongType};

use crate::retry::{RetryMetrics, retrying};
use crate::rows::{binds, refs};
use crate::{map_err, pool_err};

/// The most sessions one statement inserts. With 64 requests at once a batch holds at most
/// 64; the bound keeps a statement's size and a batch's latency in check beyond that.
const MAX_BATCH: usize = 256;
/// Requests queued beyond this wait for room (backpressure) rather than growing memory.
const QUEUE: usize = 4_096;
/// Writer tasks, each with its own connection while it writes: one batch is collected while
/// another commits. One, two and four measured alike on two cores (BENCHMARKS.md, row 2b).
const WRITERS: usize = 2;

/// One queued create: the session's row and, when it carries one, its audit event's row.
struct Create {
    session: Vec<Value>,
    event: Option<Vec<Value>>,
    done: oneshot::Sender<StoreResult<()>>,
}

/// The queue of session creates and the tasks that write them. Dropping it closes the queue;
/// the writers finish what they hold and stop.
pub(crate) struct SessionWriter {
    queue: mpsc::Sender<Create>,
}

impl SessionWriter {
    /// Learns the column types from the one-row statement, builds the batch statement, and
    /// starts the writers.
    pub(crate) async fn start(pool: Pool, retries: Arc<RetryMetrics>) -> StoreResult<Self> {
        let batch = {
            let c = pool.get().await.map_err(pool_err)?;
            let one = c.prepare(single_sql(true)).await.map_err(map_err)?;
            Arc::new(batch_sql(one.params()))
        };
        let (queue, rx) = mpsc::channel(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..WRITERS {
            tokio::spawn(run(pool.clone(), Arc::clone(&batch), Arc::clone(&rx), Arc::clone(&retries)));
        }
        Ok(Self { queue })
    }

    /// Inserts a session (and its audit event) and answers once it is committed.
    pub(crate) async fn create(&self, session: Vec<Value>, event: Option<Vec<Value>>) -> StoreResult<()> {
        let (done, answer) = oneshot::channel();
        self.queue.send(Create { session, event, done }).await.map_err(|_| stopped())?;
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the PostgreSQL session writer has stopped".into())
}

/// One writer: takes what is queued (waiting only while nothing is), writes it, answers.
async fn run(
    pool: Pool,
    batch_sql: Arc<String>,
    queue: Arc<Mutex<mpsc::Receiver<Create>>>,
    retries: Arc<RetryMetrics>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        // The lock is held only while taking: the other writer collects the next batch while
        // this one writes.
        if queue.lock().await.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        write(&pool, &batch_sql, &mut batch, &retries).await;
    }
}

/// Writes `batch` and answers each of its callers; leaves `batch` empty.
async fn write(pool: &Pool, batch_sql: &str, batch: &mut Vec<Create>, retries: &RetryMetrics) {
    let c = match pool.get().await {
        Ok(c) => c,
        Err(e) => return answer_all(batch, Err(pool_err(e))),
    };
    let c = &c;
    if batch.len() > 1 {
        let rows: &[Create] = batch;
        match retrying(retries, || insert_many(c, batch_sql, rows)).await {
            Ok(()) => return answer_all(batch, Ok(())),
            // The database is away, or the batch collided on every attempt: writing its rows
            // one by one would only fail slower (the collision is no fault of one row).
            Err(e @ (StoreError::Unavailable(_) | StoreError::Contended(_))) => return answer_all(batch, Err(e)),
            Err(e) => {
                tracing::debug!(rows = batch.len(), error = %e, "postgres: a session batch failed; writing its rows one by one");
            }
        }
    }
    for x in batch.drain(..) {
        let r = retrying(retries, || insert_one(c, &x)).await;
        answer(x, r);
    }
}

fn answer_all(batch: &mut Vec<Create>, r: StoreResult<()>) {
    for x in batch.drain(..) {
        answer(x, r.clone());
    }
}

fn answer(x: Create, r: StoreResult<()>) {
    // A caller that went away (its request was cancelled) needs no answer.
    let _ = x.done.send(r);
}

/// The one-row statement: a session (`$1..$28`) and, when `audited`, its event after it, in
/// the same statement (a data-modifying `WITH`: atomic without a transaction).
fn single_sql(audited: bool) -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if !audited {
        return sql::SESSION_INSERT;
    }
    SQL.get_or_init(|| {
        let first = sql::SESSION_INSERT_PARAMS + 1;
        let ps: Vec<String> = (first..first + sql::AUDIT_INSERT_PARAMS).map(|n| format!("${n}")).collect();
        format!("WITH audit AS ({} VALUES ({})) {}", sql::AUDIT_INSERT, ps.join(", "), sql::SESSION_INSERT)
    })
}

/// The many-row statement: each column's values as one array parameter, of the type the
/// one-row statement's parameter has (PostgreSQL infers those from the columns), unnested into
/// rows. The events' arrays may be shorter than the sessions' (a create outside any audit
/// scope has none).
fn batch_sql(types: &[Type]) -> String {
    let arrays = |from: usize, to: usize| {
        (from..to).map(|i| format!("${}::{}[]", i + 1, types[i].name())).collect::<Vec<_>>().join(", ")
    };
    let n = sql::SESSION_INSERT_PARAMS;
    format!(
        "WITH audit AS ({} SELECT * FROM unnest({})) {} SELECT * FROM unnest({})",
        sql::AUDIT_INSERT,
        arrays(n, types.len()),
        sql::SESSION_INSERT_INTO,
        arrays(0, n)
    )
}

async fn insert_one(c: &deadpool_postgres::Object, x: &Create) -> StoreResult<()> {
    let mut values = x.session.clone();
    if let Some(e) = &x.event {
        values.extend(e.iter().cloned());
    }
    let b = binds(&values);
    let st = c.prepare_cached(single_sql(x.event.is_some())).await.map_err(map_err)?;
    c.execute(&st, &refs(&b)).await.map(|_| ()).map_err(map_err)
}

async fn insert_many(c: &deadpool_postgres::Object, batch_sql: &str, batch: &[Create]) -> StoreResult<()> {
    let sessions = columns(batch.iter().map(|x| x.session.as_slice()), sql::SESSION_INSERT_PARAMS);
    let events = columns(batch.iter().filter_map(|x| x.event.as_deref()), sql::AUDIT_INSERT_PARAMS);
    let params: Vec<&(dyn ToSql + Sync)> =
        sessions.iter().chain(events.iter()).map(|c| c as &(dyn ToSql + Sync)).collect();
    let st = c.prepare_cached(batch_sql).await.map_err(map_err)?;
    c.execute(&st, &params).await.map(|_| ()).map_err(map_err)
}

/// Rows turned into columns: `width` arrays, each holding one column's value of every row.
fn columns<'a>(rows: impl Iterator<Item = &'a [Value]>, width: usize) -> Vec<Column<'a>> {
    let mut cols: Vec<Column<'a>> = (0..width).map(|_| Column(Vec::new())).collect();
    for row in rows {
        for (col, v) in cols.iter_mut().zip(row) {
            col.0.push(v);
        }
    }
    cols
}

/// One column of a batch, bound as an array of the parameter's element type. A value of
/// another type is `WrongType`, as for a single value (so invalid input, never an outage).
#[derive(Debug)]
struct Column<'a>(Vec<&'a Value>);

type Encoded = Result<IsNull, Box<dyn std::error::Error + Sync + Send>>;

impl<'a> Column<'a> {
    /// The column's values as `T`s (`None` for a null); `pick` answers `None` for a value of
    /// another type.
    fn each<T>(&self, ty: &Type, pick: impl Fn(&'a Value) -> Option<T>) -> Result<Vec<Option<T>>, WrongType> {
        self.0
            .iter()
            .map(|v| match v {
                Value::NullText | Value::NullInt => Ok(None),
                v => pick(v).map(Some).ok_or_else(|| WrongType::new::<T>(ty.clone())),
            })
            .collect()
    }
}

impl ToSql for Column<'_> {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Encoded {
        let Kind::Array(elem) = ty.kind() else { return Err(Box::new(WrongType::new::<Vec<Value>>(ty.clone()))) };
        match *elem {
            Type::TEXT => {
                self.each(elem, |v| if let Value::Text(s) = v { Some(s.as_str()) } else { None })?.to_sql(ty, out)
            }
            Type::INT8 => self.each(elem, |v| if let Value::Int(n) = v { Some(*n) } else { None })?.to_sql(ty, out),
            Type::BYTEA => {
                self.each(elem, |v| if let Value::Bytes(b) = v { Some(b.as_slice()) } else { None })?.to_sql(ty, out)
            }
            Type::BOOL => self.each(elem, |v| if let Value::Bool(b) = v { Some(*b) } else { None })?.to_sql(ty, out),
            _ => Err(Box::new(WrongType::new::<Vec<Value>>(ty.clone()))),
        }
    }

    fn accepts(ty: &Type) -> bool {
        matches!(ty.kind(), Kind::Array(_))
    }

    tokio_postgres::types::to_sql_checked!();
}
