//! How SQLite is driven: one writer thread that commits queued writes in groups, and a pool
//! of reader connections used from Tokio's blocking threads.
//!
//! Group commit is what makes durable writes fast: every acknowledged write has been
//! committed with `synchronous=FULL`, but one fsync covers every write that queued while the
//! previous commit was flushing. One failing write never takes its batch-mates down with it:
//! a batch runs bare first, and when a write in it fails, the batch is rolled back and runs
//! again with each write in its own SAVEPOINT, so that only the failing one is undone.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use rusqlite::{Connection, OpenFlags};
use tessera_domain::audit::AuditEvent;
use tessera_store::audit::{self, Changed};
use tessera_store::{StoreError, StoreResult};
use tessera_store_sql::metrics::{StatementKind, StatementMetrics};

use crate::rows::Conn;
use tokio::sync::oneshot;

type Job = Box<dyn Queued>;

/// One queued write: run (again, if its batch is replayed), then answered once its batch's
/// transaction has committed or failed.
trait Queued: Send {
    /// Runs the write inside the open transaction; `guarded` wraps it in its own SAVEPOINT,
    /// so that a failure undoes only its own changes. Answers whether it succeeded.
    fn run(&mut self, c: &Conn<'_>, guarded: bool) -> bool;
    /// Answers the caller with the transaction's outcome.
    fn finish(self: Box<Self>, commit: StoreResult<()>);
}

/// A write job: the caller's closure, the task's staged audit event, and the answer.
struct Write<T, F> {
    f: F,
    event: Option<AuditEvent>,
    changed: fn(&T) -> bool,
    result: Option<StoreResult<T>>,
    /// Whether the event was inserted with the write (in the last run).
    carried: bool,
    /// The answer, and the event back when it was not committed.
    tx: oneshot::Sender<(StoreResult<T>, Option<AuditEvent>)>,
}

impl<T, F> Write<T, F>
where
    F: Fn(&Conn<'_>) -> StoreResult<T>,
{
    /// The write and, when it changed something, its audit event.
    fn apply(&mut self, c: &Conn<'_>) -> StoreResult<T> {
        let out = (self.f)(c)?;
        if let Some(e) = self.event.as_ref().filter(|_| (self.changed)(&out)) {
            crate::rows::exec(c, &tessera_store_sql::statements::insert_audit_event(e))?;
            self.carried = true;
        }
        Ok(out)
    }
}

impl<T: Send, F> Queued for Write<T, F>
where
    F: Fn(&Conn<'_>) -> StoreResult<T> + Send,
{
    fn run(&mut self, c: &Conn<'_>, guarded: bool) -> bool {
        self.carried = false;
        let result = if guarded {
            // Cached statements: parsing these three per write showed in the profile.
            let exec = |sql: &str| c.conn.prepare_cached(sql).and_then(|mut st| st.execute([])).map(|_| ());
            match exec("SAVEPOINT job") {
                Ok(()) => {
                    let r = self.apply(c);
                    let end = if r.is_ok() {
                        exec("RELEASE job")
                    } else {
                        exec("ROLLBACK TO job").and_then(|()| exec("RELEASE job"))
                    };
                    match end {
                        Ok(()) => r,
                        Err(e) => Err(map_err(e)),
                    }
                }
                Err(e) => Err(map_err(e)),
            }
        } else {
            self.apply(c)
        };
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, commit: StoreResult<()>) {
        let result = self.result.unwrap_or_else(|| Err(StoreError::Unavailable("the write did not run".into())));
        let committed = self.carried && commit.is_ok() && result.is_ok();
        let left = if committed { None } else { self.event };
        let _ = self.tx.send((commit.and(result), left));
    }
}

/// How many queued writes one transaction may take; bounds the latency of the batch.
const MAX_BATCH: usize = 512;
const READ_POOL: usize = 4;

pub struct Engine {
    path: PathBuf,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    /// One permit per reader connection: reads beyond the pool wait for a connection instead
    /// of opening (and then closing) one, which cost more than the query itself.
    read_permits: Arc<tokio::sync::Semaphore>,
    /// Every statement's latency and errors, readers' and the writer's.
    pub metrics: Arc<StatementMetrics>,
}

pub fn map_err(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, msg) => match f.code {
            rusqlite::ErrorCode::ConstraintViolation => {
                let m = msg.clone().unwrap_or_default();
                if m.contains("FOREIGN KEY") {
                    StoreError::NotFound(tessera_store::Entity::Referenced)
                } else {
                    StoreError::Conflict(tessera_store::Conflict::Other(m))
                }
            }
            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked => {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Internal(e.to_string()),
        },
        _ => StoreError::Internal(e.to_string()),
    }
}

fn open_conn(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Every query the store runs stays prepared (the default of 16 evicts on the hot paths).
    conn.set_prepared_statement_cache_capacity(256);
    Ok(conn)
}

impl Engine {
    pub fn open(path: &Path) -> StoreResult<Self> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Unavailable(format!("cannot create data directory {}: {e}", dir.display())))?;
        }
        let mut conn = open_conn(path)
            .map_err(|e| StoreError::Unavailable(format!("cannot open SQLite database {}: {e}", path.display())))?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(map_err)?;
        // The writer's per-job SAVEPOINTs copy each page a job first touches into a
        // sub-journal, a temporary file by default: one `pwrite` per page, 17 % of the
        // writer's time under durable assumes. In memory it is a copy, freed at RELEASE (its
        // content never needed to survive a crash: the WAL holds what commits).
        conn.pragma_update(None, "temp_store", "MEMORY").map_err(map_err)?;
        // The writer walks every index of the tables it inserts into, several on random keys
        // (ids, token digests): a 16 MiB page cache (default 2 MiB) keeps their inner pages.
        // Pages are allocated as used, so an idle node does not hold it.
        conn.pragma_update(None, "cache_size", -16_384).map_err(map_err)?;
        crate::schema::migrate(&mut conn).map_err(map_err)?;
        let (tx, rx) = mpsc::channel::<Job>();
        let metrics = Arc::new(StatementMetrics::default());
        let counted = Arc::clone(&metrics);
        let writer = std::thread::Builder::new()
            .name("tessera-sqlite-writer".into())
            .spawn(move || write_loop(conn, &counted, rx))
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        Ok(Self {
            path: path.to_owned(),
            jobs: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            readers: Arc::new(Mutex::new(Vec::new())),
            read_permits: Arc::new(tokio::sync::Semaphore::new(READ_POOL)),
            metrics,
        })
    }

    /// Runs `f` inside the writer's transaction; resolves once the transaction committed.
    ///
    /// The task's staged audit event (if any) is taken here, before the write leaves the
    /// task, and inserted in the same savepoint when `f`'s answer says it changed something:
    /// the change and its event commit or roll back together.
    pub async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Changed + Send + 'static,
        F: Fn(&Conn<'_>) -> StoreResult<T> + Send + 'static,
    {
        self.submit(f, audit::take_staged(), T::changed).await
    }

    /// A bookkeeping write (a sign-in claim, recorded activity, a sweep): never carries the
    /// task's audit event.
    pub async fn write_unaudited<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: Fn(&Conn<'_>) -> StoreResult<T> + Send + 'static,
    {
        self.submit(f, None, |_| false).await
    }

    async fn submit<T, F>(&self, f: F, event: Option<AuditEvent>, changed: fn(&T) -> bool) -> StoreResult<T>
    where
        T: Send + 'static,
        F: Fn(&Conn<'_>) -> StoreResult<T> + Send + 'static,
    {
        let had_event = event.is_some();
        // The answer, and the event back when it was not committed.
        let (tx, rx) = oneshot::channel::<(StoreResult<T>, Option<AuditEvent>)>();
        let job: Job = Box::new(Write { f, event, changed, result: None, carried: false, tx });
        let sent = match self.jobs.lock().expect("writer queue lock").as_ref() {
            Some(jobs) => jobs.send(job).is_ok(),
            None => false,
        };
        if !sent {
            return Err(StoreError::Unavailable("the SQLite writer has stopped".into()));
        }
        let (result, left) =
            rx.await.unwrap_or_else(|_| (Err(StoreError::Unavailable("the SQLite writer has stopped".into())), None));
        match left {
            Some(e) => audit::restore(e),
            None if had_event && result.is_ok() => audit::mark_recorded(),
            None => {}
        }
        result
    }

    /// Runs `f` on a pooled read connection on a blocking thread.
    pub async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Conn<'_>) -> StoreResult<T> + Send + 'static,
    {
        let permit = Arc::clone(&self.read_permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Unavailable("the SQLite store is shut down".into()))?;
        let readers = Arc::clone(&self.readers);
        let metrics = Arc::clone(&self.metrics);
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let pooled = readers.lock().expect("reader pool lock").pop();
            let conn = match pooled {
                Some(c) => c,
                // Connections open lazily, at most one per permit.
                None => open_conn(&path).map_err(map_err)?,
            };
            let result = f(&Conn { conn: &conn, metrics: &metrics });
            readers.lock().expect("reader pool lock").push(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Internal(format!("reader task failed: {e}")))?
    }

    /// Stops the writer after it has committed everything queued.
    pub fn shutdown(&self) {
        self.jobs.lock().expect("writer queue lock").take();
        if let Some(handle) = self.writer.lock().expect("writer handle lock").take() {
            let _ = handle.join();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn write_loop(conn: Connection, metrics: &StatementMetrics, jobs: mpsc::Receiver<Job>) {
    let c = Conn { conn: &conn, metrics };
    let begin = || conn.execute_batch("BEGIN IMMEDIATE");
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = begin() {
            // Dropping the batch answers each waiting caller with "unavailable".
            tracing::error!(error = %e, "sqlite: cannot begin a write transaction");
            drop(batch);
            continue;
        }
        // Optimistically, every write runs bare: a SAVEPOINT per write copies each page the
        // write first touches into the sub-journal, and almost every write succeeds. When
        // one fails, the whole transaction is rolled back and the batch runs again, each
        // write in its own SAVEPOINT, so the failing one alone is undone (a batch of one
        // needs no replay: rolling back the transaction undoes exactly that write).
        let failed = !batch.iter_mut().all(|job| job.run(&c, false));
        let committed = if !failed {
            // The group commit, with its fsync: counted as one `commit` however many writes it carries.
            commit(&conn, metrics)
        } else if batch.len() == 1 {
            // The write's own error is its answer; nothing of it stays.
            let _ = conn.execute_batch("ROLLBACK");
            Ok(())
        } else {
            let _ = conn.execute_batch("ROLLBACK");
            match begin() {
                Ok(()) => {
                    for job in batch.iter_mut() {
                        job.run(&c, true);
                    }
                    commit(&conn, metrics)
                }
                Err(e) => {
                    tracing::error!(error = %e, "sqlite: cannot begin a write transaction");
                    Err(map_err(e))
                }
            }
        };
        for job in batch {
            job.finish(committed.clone());
        }
    }
}

/// Commits the open transaction (rolling it back when that fails).
fn commit(conn: &Connection, metrics: &StatementMetrics) -> StoreResult<()> {
    let committed = metrics.time(StatementKind::COMMIT, || conn.execute_batch("COMMIT").map_err(map_err));
    if committed.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    committed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The writer's settings are what the durability promise and the group commit's speed
    /// rest on: WAL, `synchronous=FULL` (a commit survives a power loss once acknowledged),
    /// and sub-journals in memory rather than one `pwrite` per page.
    #[tokio::test]
    async fn the_writer_commits_durably_and_keeps_its_savepoint_journal_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(&dir.path().join("t.db")).unwrap();
        let (journal, synchronous, temp_store) = engine
            .write_unaudited(|c| {
                let get = |name: &str| c.conn.pragma_query_value(None, name, |r| r.get::<_, rusqlite::types::Value>(0));
                Ok((get("journal_mode"), get("synchronous"), get("temp_store")))
            })
            .await
            .unwrap();
        use rusqlite::types::Value::{Integer, Text};
        assert_eq!(journal.unwrap(), Text("wal".into()));
        assert_eq!(synchronous.unwrap(), Integer(2), "synchronous=FULL");
        assert_eq!(temp_store.unwrap(), Integer(2), "temp_store=MEMORY");
    }
}
