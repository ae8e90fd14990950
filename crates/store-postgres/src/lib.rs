//! Tessera's store over PostgreSQL, for several stateless nodes on one database.
//!
//! Every write that a cache on another node must see publishes a `NOTIFY tessera_changes`
//! in its own transaction, so the notice goes out exactly when the change commits. Each
//! node keeps one dedicated `LISTEN` connection and turns notices into [`StoreChange`]s;
//! when that connection drops it reports [`StoreChange::FeedLost`] so the app stops
//! trusting its caches until [`StoreChange::FeedRestored`]. Every statement but the few that
//! are PostgreSQL's own (the feed, advisory locks, ending sessions by an id array) comes from
//! `tessera_store_sql`.
//!
//! Every write goes through one retry (`retry.rs`): a transaction PostgreSQL rolled back for a
//! deadlock or a serialization failure runs again from `BEGIN` (`PgStore::transaction` starts
//! every write's transaction; only the migrations, under their advisory lock, have their own),
//! and one that collides every time is [`StoreError::Contended`].

mod listen;
mod retry;
mod rows;
mod schema;
mod writer;

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use futures_util::future::BoxFuture;
use tessera_domain::FieldError;
use tessera_domain::Timestamp;
use tessera_domain::audit::AuditEvent;
use tessera_domain::ids::*;
use tessera_domain::login::{LockoutPolicy, LoginClaim, SessionLimits};
use tessera_domain::role::{Assignee, Role};
use tessera_domain::session::{EndReason, Session};
use tessera_domain::token::TokenDigest;
use tessera_domain::trust::RoleTrust;
use tessera_domain::user::{ApiKey, Group, Organization, User, UserStatus};
use tessera_store::audit::{self, Changed};
use tessera_store::*;
use tessera_store_sql::Query;
use tessera_store_sql::metrics::{StatementKind, StatementMetrics};
use tessera_store_sql::statements as sql;
use tokio::sync::broadcast;
use tokio_postgres::{GenericClient, NoTls};

use rows::{D, all, check, exec, flag, one, page, record};

/// The channel every node listens on.
pub const CHANNEL: &str = "tessera_changes";

pub struct PgStore {
    pool: Pool,
    /// Every statement's latency and errors.
    metrics: StatementMetrics,
    /// Writes run again after colliding with a concurrent one, and those given up: see [`retry`].
    retries: Arc<retry::RetryMetrics>,
    /// The change feed's health and lag, written by the listener task.
    feed: Arc<listen::FeedMetrics>,
    /// Session creates (the assume hot path), batched: see [`writer`].
    sessions: writer::SessionWriter,
    changes: broadcast::Sender<StoreChange>,
    listener: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        if let Some(l) = self.listener.take() {
            l.abort();
        }
    }
}

pub(crate) fn map_err(e: tokio_postgres::Error) -> StoreError {
    use tokio_postgres::error::SqlState;
    match e.code() {
        // PostgreSQL text cannot hold U+0000; SQLite can. The edge refuses it first; this
        // keeps any that slips through a 400 like on SQLite's side of the API, not a 500.
        Some(c) if *c == SqlState::CHARACTER_NOT_IN_REPERTOIRE || *c == SqlState::UNTRANSLATABLE_CHARACTER => {
            StoreError::Invalid(FieldError::new("text", "must not contain the NUL character (U+0000)"))
        }
        // Any other data exception (class 22) is a value the column cannot take.
        Some(c) if c.code().starts_with("22") => {
            StoreError::Invalid(FieldError::new("value", format!("is not valid here: {}", db_message(&e))))
        }
        // A deadlock or a serialization failure: PostgreSQL rolled the transaction back whole,
        // and running it again usually succeeds (`retry`), so it is no failure of the store.
        Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE => {
            StoreError::Contended(format!("{}: {}", c.code(), db_message(&e)))
        }
        // The server's own words name the constraint (`e.to_string()` is only "db error").
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => StoreError::Conflict(Conflict::Other(db_message(&e))),
        Some(c) if *c == SqlState::FOREIGN_KEY_VIOLATION => StoreError::NotFound(Entity::Referenced),
        Some(c) if *c == SqlState::QUERY_CANCELED || c.code().starts_with("08") || c.code().starts_with("57") => {
            StoreError::Unavailable(e.to_string())
        }
        Some(_) => StoreError::Internal(e.to_string()),
        // A parameter of the wrong type never reached the server: a bug above the store,
        // not an outage, so never "store unavailable".
        None if std::error::Error::source(&e).is_some_and(|s| s.is::<tokio_postgres::types::WrongType>()) => {
            StoreError::Invalid(FieldError::new("value", "has the wrong type for this query"))
        }
        // No SQLSTATE: the connection itself failed.
        None => StoreError::Unavailable(e.to_string()),
    }
}

fn db_message(e: &tokio_postgres::Error) -> String {
    e.as_db_error().map(|d| d.message().to_owned()).unwrap_or_else(|| e.to_string())
}

fn pool_err(e: deadpool_postgres::PoolError) -> StoreError {
    StoreError::Unavailable(format!("cannot get a PostgreSQL connection: {e}"))
}

/// Connection settings every connection gets: bounded waits, so an outage answers 503
/// quickly instead of hanging a request.
fn config(url: &str) -> StoreResult<tokio_postgres::Config> {
    let mut cfg: tokio_postgres::Config =
        url.parse().map_err(|e| StoreError::Unavailable(format!("invalid PostgreSQL URL: {e}")))?;
    cfg.connect_timeout(Duration::from_secs(3));
    cfg.keepalives(true);
    cfg.keepalives_idle(Duration::from_secs(10));
    cfg.options("-c statement_timeout=5000 -c idle_in_transaction_session_timeout=10000");
    cfg.application_name("tessera");
    Ok(cfg)
}

impl PgStore {
    /// Connects, migrates under an advisory lock, and starts listening for changes.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let cfg = config(url)?;
        let mgr = Manager::from_config(cfg.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(mgr)
            .max_size(16)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(3)))
            .create_timeout(Some(Duration::from_secs(3)))
            .recycle_timeout(Some(Duration::from_secs(3)))
            .build()
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        let feed = Arc::new(listen::FeedMetrics::default());
        schema::migrate(&mut pool.get().await.map_err(pool_err)?).await?;
        let retries = Arc::new(retry::RetryMetrics::default());
        let sessions = writer::SessionWriter::start(pool.clone(), Arc::clone(&retries)).await?;
        let changes = broadcast::channel(1024).0;
        let listener = Some(tokio::spawn(listen::run(cfg, pool.clone(), changes.clone(), Arc::clone(&feed))));
        Ok(Self { pool, metrics: StatementMetrics::default(), retries, feed, sessions, changes, listener })
    }

    /// Where the database's schema stands, over one connection, without migrating it.
    pub async fn schema_status(url: &str) -> StoreResult<tessera_store_sql::schema::SchemaStatus> {
        let (client, conn) = config(url)?.connect(NoTls).await.map_err(map_err)?;
        let driver = tokio::spawn(conn);
        let status = schema::status(&client).await;
        drop(client);
        let _ = driver.await;
        status
    }

    async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        self.pool.get().await.map_err(pool_err)
    }

    async fn fetch_one<T>(&self, f: sql::Fetch<T>) -> StoreResult<Option<T>> {
        one(&self.metrics, &**self.client().await?, &f).await
    }

    async fn fetch_all<T>(&self, f: sql::Fetch<T>) -> StoreResult<Vec<T>> {
        all(&self.metrics, &**self.client().await?, &f).await
    }

    const DIALECT: tessera_store_sql::Dialect = D;

    async fn records<T>(
        &self,
        rq: tessera_store_sql::record_query::RecordQuery<T>,
    ) -> StoreResult<tessera_store_sql::record_query::Records<T>> {
        record(&self.metrics, &**self.client().await?, &rq).await
    }

    async fn list<T>(&self, p: StoreResult<tessera_store_sql::paging::ListPage<T>>) -> StoreResult<Page<T>> {
        let p = p?;
        page(&self.metrics, &**self.client().await?, &p).await
    }

    /// Runs `body` in a transaction and commits it, with the task's staged audit event when
    /// the answer says the write changed something (see [`commit`]). A transaction that
    /// collides with a concurrent one is rolled back and run again from `BEGIN` ([`retry`]):
    /// `body` must build everything it writes from what it borrows, and keep nothing of a
    /// failed attempt. A body that answers early (nothing to do) commits a transaction that
    /// wrote nothing.
    async fn transaction<'env, T: Changed>(
        &'env self,
        body: impl for<'t> Fn(Tx<'t, 'env>) -> BoxFuture<'t, StoreResult<T>> + Send + Sync + 'env,
    ) -> StoreResult<T> {
        let body = &body;
        retry::retrying(&self.retries, || async move {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(map_err)?;
            let out = body(Tx { tx: &tx, env: PhantomData }).await?;
            commit(&self.metrics, tx, out).await
        })
        .await
    }

    /// [`Self::transaction`] for bookkeeping (sign-in claims, gateway key renewals): the commit
    /// never takes the staged audit event, which waits for the change it describes.
    async fn bookkeeping<'env, T: Send + 'env>(
        &'env self,
        body: impl for<'t> Fn(Tx<'t, 'env>) -> BoxFuture<'t, StoreResult<T>> + Send + Sync + 'env,
    ) -> StoreResult<T> {
        let out = self.transaction(move |tx| {
            let answer = body(tx);
            Box::pin(async move { answer.await.map(Unaudited) })
        });
        out.await.map(|u| u.0)
    }

    /// One statement that is a transaction of its own (no `BEGIN`), run again like a
    /// transaction when it collides with a concurrent one. Never takes the audit event.
    async fn exec_alone(&self, q: &Query) -> StoreResult<u64> {
        retry::retrying(&self.retries, || async move { exec(&self.metrics, &**self.client().await?, q).await }).await
    }

    /// One statement in a transaction of its own, with the task's audit event when it
    /// changed something and, when `change` is set, the notice other nodes' caches need.
    async fn write<T: Changed>(
        &self,
        q: Query,
        change: Option<StoreChange>,
        answer: impl Fn(u64) -> T + Send + Sync,
    ) -> StoreResult<T> {
        self.write_checked(&[], q, change, answer).await
    }

    /// A write whose rows must exist first (`checks`), then one statement, as [`Self::write`].
    async fn write_checked<T: Changed>(
        &self,
        checks: &[sql::Check],
        q: Query,
        change: Option<StoreChange>,
        answer: impl Fn(u64) -> T + Send + Sync,
    ) -> StoreResult<T> {
        let (q, change, answer) = (&q, &change, &answer);
        self.transaction(move |tx| {
            Box::pin(async move {
                for ch in checks {
                    check(&self.metrics, &*tx, ch).await?;
                }
                let n = exec(&self.metrics, &*tx, q).await?;
                if let Some(change) = change {
                    notify(&self.metrics, &*tx, change).await?;
                }
                Ok(answer(n))
            })
        })
        .await
    }

    /// A delete of several steps after an existence check, in one transaction.
    async fn delete_all(&self, exists: Query, steps: &[Query], changes: &[StoreChange]) -> StoreResult<bool> {
        let exists = &exists;
        self.transaction(move |tx| {
            Box::pin(async move {
                if !flag(&self.metrics, &*tx, exists).await? {
                    return Ok(false);
                }
                for q in steps {
                    exec(&self.metrics, &*tx, q).await?;
                }
                for change in changes {
                    notify(&self.metrics, &*tx, change).await?;
                }
                Ok(true)
            })
        })
        .await
    }
}

/// The transaction a body run by [`PgStore::transaction`] writes in (it derefs to the
/// driver's). `'env` is what the body borrows, which outlives the transaction, so the body's
/// future may hold both (the shape of `std::thread::Scope`).
struct Tx<'t, 'env: 't> {
    tx: &'t tokio_postgres::Transaction<'t>,
    env: PhantomData<&'t &'env ()>,
}

impl<'t> std::ops::Deref for Tx<'t, '_> {
    type Target = tokio_postgres::Transaction<'t>;
    fn deref(&self) -> &Self::Target {
        self.tx
    }
}

/// A bookkeeping answer: it never carries the staged audit event.
struct Unaudited<T>(T);

impl<T> Changed for Unaudited<T> {
    fn changed(&self) -> bool {
        false
    }
}

/// Publishes `change` to every node; inside a transaction, the notice goes out only if and
/// when that transaction commits.
pub(crate) async fn notify<C: GenericClient>(m: &StatementMetrics, c: &C, change: &StoreChange) -> StoreResult<()> {
    let payload = match change {
        StoreChange::Credentials => "c".to_owned(),
        StoreChange::Permissions => "p".to_owned(),
        StoreChange::Gateway => "g".to_owned(),
        StoreChange::SessionEnded { id, expires } => format!("e:{id}:{}", expires.0),
        StoreChange::FeedLost | StoreChange::FeedRestored => return Ok(()),
    };
    m.time_async(StatementKind::NOTIFY, async {
        c.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload]).await.map_err(map_err)
    })
    .await?;
    Ok(())
}

/// Commits a write's transaction. When the write changed something, the task's staged audit
/// event (see `tessera_store::audit`) is inserted first, in this transaction: the change and
/// its event commit or roll back together. Otherwise the event waits for the next write.
async fn commit<T: Changed>(m: &StatementMetrics, tx: deadpool_postgres::Transaction<'_>, out: T) -> StoreResult<T> {
    let Some(event) = out.changed().then(audit::take_staged).flatten() else {
        end(m, tx).await?;
        return Ok(out);
    };
    let done = match exec(m, &*tx, &sql::insert_audit_event(&event)).await {
        Ok(_) => end(m, tx).await,
        Err(e) => Err(e),
    };
    match done {
        Ok(()) => {
            audit::mark_recorded();
            Ok(out)
        }
        Err(e) => {
            audit::restore(event);
            Err(e)
        }
    }
}

/// Commits a transaction, counted as a `commit` statement.
async fn end(m: &StatementMetrics, tx: deadpool_postgres::Transaction<'_>) -> StoreResult<()> {
    m.time_async(StatementKind::COMMIT, async { tx.commit().await.map_err(map_err) }).await
}

async fn insert_api_key<C: GenericClient>(m: &StatementMetrics, c: &C, k: &ApiKey) -> StoreResult<()> {
    if exec(m, c, &sql::insert_api_key(k)).await? == 1 { Ok(()) } else { Err(sql::api_key_user_missing()) }
}

/// Ends the given active sessions in one statement and returns their records; notifies each
/// end. (PostgreSQL's own: the ids travel as one array.)
async fn end_ids<C: GenericClient>(
    m: &StatementMetrics,
    c: &C,
    org: OrgId,
    ids: &[String],
    reason: EndReason,
    now: Timestamp,
) -> StoreResult<Vec<Session>> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    static END_SESSIONS: &str = concat!(
        "UPDATE sessions s SET status = $3, end_reason = $4, end_time = $5, mod_time = $5 \
         WHERE s.org_id = $1 AND s.id = ANY($2) AND s.status = 'Active' RETURNING ",
        tessera_store_sql::session_cols!()
    );
    static KIND: std::sync::LazyLock<StatementKind> = std::sync::LazyLock::new(|| StatementKind::of(END_SESSIONS));
    let rows = m
        .time_async(*KIND, async {
            c.query(END_SESSIONS, &[&org.to_string(), &ids, &reason.status().as_str(), &reason.as_str(), &now.0])
                .await
                .map_err(map_err)
        })
        .await?;
    let ended = rows.iter().map(rows::decode_session).collect::<StoreResult<Vec<_>>>()?;
    for e in &ended {
        notify(m, c, &StoreChange::SessionEnded { id: e.id, expires: e.expires }).await?;
    }
    Ok(ended)
}

tessera_store_sql::sql_store! {
    PgStore;
    backend {
        fn backend(&self) -> &'static str {
            "postgres"
        }

        fn changes(&self) -> Option<broadcast::Receiver<StoreChange>> {
            Some(self.changes.subscribe())
        }

        fn render_metrics(&self, out: &mut String) {
            self.metrics.render(out);
            self.retries.render(out);
            self.feed.render(out);
        }
    }
    iam {
        async fn bootstrap(&self, bs: &Bootstrap) -> StoreResult<bool> {
            let steps = &sql::bootstrap(bs);
            self.transaction(move |tx| {
                Box::pin(async move {
                    tx.execute("SELECT pg_advisory_xact_lock(7272727273)", &[]).await.map_err(map_err)?;
                    if flag(&self.metrics, &*tx, &sql::any_organization()).await? {
                        return Ok(false);
                    }
                    for q in steps {
                        exec(&self.metrics, &*tx, q).await?;
                    }
                    insert_api_key(&self.metrics, &*tx, &bs.api_key).await?;
                    Ok(true)
                })
            })
            .await
        }

        async fn create_organization(&self, o: &Organization) -> StoreResult<()> {
            self.exec_alone(&sql::insert_organization(o)).await.map(|_| ())
        }

        async fn create_user(&self, user: &User, password_hash: Option<&str>) -> StoreResult<()> {
            self.write(sql::insert_user(user, password_hash), None, |_| ()).await
        }

        async fn update_user(&self, u: &User, now: Timestamp) -> StoreResult<Option<Vec<Session>>> {
            self.transaction(move |tx| {
                Box::pin(async move {
                    if exec(&self.metrics, &*tx, &sql::update_user(u)).await? != 1 {
                        return Ok(None);
                    }
                    let ended = if u.status == UserStatus::Disabled {
                        let ids = all(&self.metrics, &*tx, &sql::active_session_ids(u.org_id, u.id, None)).await?;
                        end_ids(&self.metrics, &*tx, u.org_id, &ids, EndReason::UserDisabled, now).await?
                    } else {
                        vec![]
                    };
                    notify(&self.metrics, &*tx, &StoreChange::Credentials).await?;
                    Ok(Some(ended))
                })
            })
            .await
        }

        async fn delete_user(&self, org: OrgId, uid: UserId, now: Timestamp) -> StoreResult<bool> {
            self.transaction(move |tx| {
                Box::pin(async move {
                    if !flag(&self.metrics, &*tx, &sql::user_exists(org, uid)).await? {
                        return Ok(false);
                    }
                    let ids = all(&self.metrics, &*tx, &sql::active_session_ids(org, uid, None)).await?;
                    end_ids(&self.metrics, &*tx, org, &ids, EndReason::Terminated, now).await?;
                    for q in &sql::delete_user(org, uid) {
                        exec(&self.metrics, &*tx, q).await?;
                    }
                    notify(&self.metrics, &*tx, &StoreChange::Credentials).await?;
                    notify(&self.metrics, &*tx, &StoreChange::Permissions).await?;
                    Ok(true)
                })
            })
            .await
        }

        async fn create_api_key(&self, key: &ApiKey) -> StoreResult<()> {
            self.transaction(move |tx| Box::pin(async move { insert_api_key(&self.metrics, &*tx, key).await })).await
        }

        async fn delete_api_key(&self, org: OrgId, uid: UserId, kid: ApiKeyId) -> StoreResult<bool> {
            self.write(sql::delete_api_key(org, uid, kid), Some(StoreChange::Credentials), |n| n == 1).await
        }

        async fn create_group(&self, g: &Group) -> StoreResult<()> {
            self.write(sql::insert_group(g), None, |_| ()).await
        }

        async fn update_group(&self, g: &Group) -> StoreResult<bool> {
            self.write(sql::update_group(g), None, |n| n == 1).await
        }

        async fn delete_group(&self, org: OrgId, gid: GroupId) -> StoreResult<bool> {
            self.delete_all(sql::group_exists(org, gid), &sql::delete_group(org, gid), &[StoreChange::Permissions]).await
        }

        async fn add_group_member(&self, org: OrgId, gid: GroupId, uid: UserId) -> StoreResult<bool> {
            let (checks, q) = sql::add_group_member(org, gid, uid);
            self.write_checked(&checks, q, Some(StoreChange::Permissions), |n| n == 1).await
        }

        async fn remove_group_member(&self, org: OrgId, gid: GroupId, uid: UserId) -> StoreResult<bool> {
            self.write(sql::remove_group_member(org, gid, uid), Some(StoreChange::Permissions), |n| n == 1).await
        }

        async fn create_policy(&self, p: &Policy) -> StoreResult<()> {
            self.write(sql::insert_policy(p), None, |_| ()).await
        }

        async fn update_policy(&self, p: &Policy) -> StoreResult<bool> {
            self.write(sql::update_policy(p), Some(StoreChange::Permissions), |n| n == 1).await
        }

        async fn delete_policy(&self, org: OrgId, pid: PolicyId) -> StoreResult<bool> {
            self.write(sql::delete_policy(org, pid), Some(StoreChange::Permissions), |n| n == 1).await
        }

        async fn attach_policy(&self, org: OrgId, pid: PolicyId, target: PolicyTarget) -> StoreResult<bool> {
            let (checks, q) = sql::attach_policy(org, pid, target);
            self.write_checked(&checks, q, Some(StoreChange::Permissions), |n| n == 1).await
        }

        async fn detach_policy(&self, org: OrgId, pid: PolicyId, target: PolicyTarget) -> StoreResult<bool> {
            self.write(sql::detach_policy(org, pid, target), Some(StoreChange::Permissions), |n| n == 1).await
        }

        async fn assign_role(&self, org: OrgId, rid: RoleId, to: Assignee, at: Timestamp) -> StoreResult<bool> {
            let (checks, q) = sql::assign_role(org, rid, to, at);
            self.write_checked(&checks, q, Some(StoreChange::Permissions), |n| n == 1).await
        }

        async fn unassign_role(&self, org: OrgId, rid: RoleId, from: Assignee) -> StoreResult<bool> {
            self.write(sql::unassign_role(org, rid, from), Some(StoreChange::Permissions), |n| n == 1).await
        }

        async fn create_role(&self, r: &Role) -> StoreResult<()> {
            self.write(sql::insert_role(r), None, |_| ()).await
        }

        async fn update_role(&self, r: &Role) -> StoreResult<bool> {
            // Cached assume facts hold the role: other nodes must re-read it.
            self.write(sql::update_role(r), Some(StoreChange::Permissions), |n| n == 1).await
        }

        async fn delete_role(&self, org: OrgId, rid: RoleId) -> StoreResult<bool> {
            self.delete_all(sql::role_exists(org, rid), &sql::delete_role(org, rid), &[StoreChange::Permissions]).await
        }

        async fn create_trust(&self, t: &RoleTrust) -> StoreResult<()> {
            let (checks, q) = sql::insert_trust(t);
            self.write_checked(&checks, q, Some(StoreChange::Permissions), |_| ()).await
        }

        async fn update_trust(&self, t: &RoleTrust) -> StoreResult<bool> {
            let (principal, q) = sql::update_trust(t);
            self.write_checked(&[principal], q, Some(StoreChange::Permissions), |n| n == 1).await
        }

        async fn delete_trust(&self, org: OrgId, tid: TrustId) -> StoreResult<bool> {
            self.write(sql::delete_trust(org, tid), Some(StoreChange::Permissions), |n| n == 1).await
        }

        async fn create_oidc_issuer(&self, i: &tessera_domain::oidc::OidcIssuer) -> StoreResult<()> {
            self.write(sql::insert_oidc_issuer(i), None, |_| ()).await
        }

        async fn update_oidc_issuer(&self, i: &tessera_domain::oidc::OidcIssuer) -> StoreResult<bool> {
            // Cached assume facts hold the issuer: other nodes must re-read it.
            self.write(sql::update_oidc_issuer(i), Some(StoreChange::Permissions), |n| n == 1).await
        }

        async fn delete_oidc_issuer(&self, org: OrgId, iid: OidcIssuerId) -> StoreResult<bool> {
            let steps = sql::delete_oidc_issuer(org, iid);
            self.delete_all(sql::oidc_issuer_exists(org, iid), &steps, &[StoreChange::Permissions]).await
        }
    }
    sessions {
        async fn create_session(&self, sess: &Session, digest: &TokenDigest) -> StoreResult<()> {
            // The hot path of assuming a role: queued for the session writer, which inserts
            // every session queued with it (and their events) in one statement. The event is
            // taken here, in the caller's task, and marked or put back here by the answer.
            let event = audit::take_staged();
            // Timed as the caller sees it: queued, then written with its batch.
            static KIND: std::sync::LazyLock<StatementKind> =
                std::sync::LazyLock::new(|| StatementKind::of(sql::SESSION_INSERT));
            let inserted = self
                .metrics
                .time_async(
                    *KIND,
                    self.sessions.create(sql::session_values(sess, digest), event.as_ref().map(sql::audit_values)),
                )
                .await;
            match (inserted, event) {
                (Ok(()), Some(_)) => {
                    audit::mark_recorded();
                    Ok(())
                }
                (Ok(()), None) => Ok(()),
                (Err(e), event) => {
                    if let Some(event) = event {
                        audit::restore(event);
                    }
                    Err(e)
                }
            }
        }

        async fn end_session(
            &self,
            org: OrgId,
            sid: SessionId,
            reason: EndReason,
            now: Timestamp,
        ) -> StoreResult<Option<Session>> {
            let ids = &[sid.to_string()];
            self.transaction(move |tx| {
                Box::pin(async move {
                    let ended = end_ids(&self.metrics, &*tx, org, ids, reason, now).await?;
                    Ok(ended.into_iter().next())
                })
            })
            .await
        }

        async fn touch_session(&self, org: OrgId, sid: SessionId, at: Timestamp) -> StoreResult<()> {
            self.exec_alone(&sql::touch_session(org, sid, at)).await.map(|_| ())
        }

        async fn end_user_sessions(
            &self,
            org: OrgId,
            uid: UserId,
            reason: EndReason,
            now: Timestamp,
            except: Option<SessionId>,
        ) -> StoreResult<Vec<Session>> {
            self.transaction(move |tx| {
                Box::pin(async move {
                    let ids = all(&self.metrics, &*tx, &sql::active_session_ids(org, uid, except)).await?;
                    end_ids(&self.metrics, &*tx, org, &ids, reason, now).await
                })
            })
            .await
        }

        async fn sweep_sessions(&self, now: Timestamp) -> StoreResult<u64> {
            // Each statement is whole on its own (the second finds what the first left), so
            // each is retried on its own.
            let [idle, expired] = sql::sweep_sessions(now);
            Ok(self.exec_alone(&idle).await? + self.exec_alone(&expired).await?)
        }

        async fn purge_sessions(&self, before: Timestamp) -> StoreResult<u64> {
            let [keys, sessions] = sql::purge_sessions(before);
            self.exec_alone(&keys).await?;
            self.exec_alone(&sessions).await
        }
    }
    login {
        async fn claim_login_attempt(
            &self,
            org: OrgId,
            uid: UserId,
            now: Timestamp,
            policy: &LockoutPolicy,
        ) -> StoreResult<Option<LoginClaim>> {
            self.bookkeeping(move |tx| {
                Box::pin(async move {
                    // The row lock orders every claim on this user, from every node: the next
                    // claim reads what this one wrote.
                    let Some(state) = one(&self.metrics, &*tx, &sql::login_state(org, uid)).await? else {
                        return Ok(None);
                    };
                    let claim = policy.claim(state, now);
                    if claim.admitted {
                        exec(&self.metrics, &*tx, &sql::write_login_state(org, uid, &claim.after)).await?;
                    }
                    Ok(Some(claim))
                })
            })
            .await
        }

        async fn record_login_success(
            &self,
            org: OrgId,
            uid: UserId,
            attempt: i64,
            now: Timestamp,
            client: &str,
            policy: &LockoutPolicy,
        ) -> StoreResult<bool> {
            self.bookkeeping(move |tx| {
                Box::pin(async move {
                    let Some(state) = one(&self.metrics, &*tx, &sql::login_state(org, uid)).await? else {
                        return Ok(false);
                    };
                    let after = policy.after_success(&state, attempt, now, client);
                    exec(&self.metrics, &*tx, &sql::write_login_state(org, uid, &after)).await?;
                    Ok(true)
                })
            })
            .await
        }

        async fn clear_login_lock(&self, org: OrgId, uid: UserId) -> StoreResult<bool> {
            self.write(sql::clear_login_lock(org, uid), None, |n| n == 1).await
        }

        async fn set_password(&self, org: OrgId, uid: UserId, hash: &str) -> StoreResult<bool> {
            self.write(sql::set_password(org, uid, hash), None, |n| n == 1).await
        }

        async fn put_session_limits(&self, org: OrgId, l: &SessionLimits) -> StoreResult<()> {
            self.write(sql::put_session_limits(org, l), None, |_| ()).await
        }

        async fn create_login_session(
            &self,
            x: &Session,
            d: &TokenDigest,
            max_active: u32,
            now: Timestamp,
        ) -> StoreResult<Vec<Session>> {
            // Serialise sign-ins of one principal so two at once cannot both skip the cap.
            let principal = &x.principal.user_id().map_or_else(|| x.principal.display_name().to_owned(), |u| u.to_string());
            const LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext($1))";
            static KIND: std::sync::LazyLock<StatementKind> = std::sync::LazyLock::new(|| StatementKind::of(LOCK));
            self.transaction(move |tx| {
                Box::pin(async move {
                    let lock = async { tx.execute(LOCK, &[principal]).await.map_err(map_err) };
                    self.metrics.time_async(*KIND, lock).await?;
                    let ids = all(&self.metrics, &*tx, &sql::sessions_beyond_cap(x, max_active, now)).await?;
                    let ended = end_ids(&self.metrics, &*tx, x.org_id, &ids, EndReason::Replaced, now).await?;
                    exec(&self.metrics, &*tx, &sql::insert_session(x, d)).await?;
                    Ok(ended)
                })
            })
            .await
        }
    }
    gateway {
        async fn put_gateway_object(&self, o: &GatewayObject, create: bool) -> StoreResult<bool> {
            // The objects it names are locked first (key share, in sorted order), before this
            // object's own row: a delete of one of them on another node either waits for this
            // transaction and then finds the reference, or has already locked it and this
            // write waits and then finds it gone. Locking them before the object's row keeps
            // a delete, which locks the plugins naming its object after that object, from
            // waiting on this write while it waits on the delete.
            let (checks, put, refs) =
                (&sql::gateway_ref_checks(o), &sql::put_gateway_object(o, create), &sql::put_gateway_refs(o));
            self.transaction(move |tx| {
                Box::pin(async move {
                    for ch in checks {
                        check(&self.metrics, &*tx, ch).await?;
                    }
                    if exec(&self.metrics, &*tx, put).await? != 1 {
                        return Ok(false);
                    }
                    for q in refs {
                        exec(&self.metrics, &*tx, q).await?;
                    }
                    notify(&self.metrics, &*tx, &StoreChange::Gateway).await?;
                    Ok(true)
                })
            })
            .await
        }

        async fn delete_gateway_object(&self, org: OrgId, kind: GatewayKind, id: uuid::Uuid) -> StoreResult<bool> {
            let (exists, steps) = sql::delete_gateway_object(org, kind, id);
            self.delete_all(exists, &steps, &[StoreChange::Gateway]).await.map_err(sql::gateway_in_use(kind, id))
        }

        async fn create_gateway_session(
            &self,
            sess: &Session,
            key: &TokenDigest,
            data: &str,
            key_expires: Timestamp,
        ) -> StoreResult<()> {
            let session = &sql::insert_session(sess, key);
            let gateway_key = &sql::insert_gateway_key(sess.org_id, sess.id, key, data, key_expires);
            self.transaction(move |tx| {
                Box::pin(async move {
                    exec(&self.metrics, &*tx, session).await?;
                    exec(&self.metrics, &*tx, gateway_key).await?;
                    Ok(())
                })
            })
            .await
        }

        async fn rekey_gateway_session(&self, rk: &GatewayRekey) -> StoreResult<bool> {
            let (active, writes) = &sql::rekey_gateway_session(rk);
            // A renewal is bookkeeping: no audit event of its own.
            self.bookkeeping(move |tx| {
                Box::pin(async move {
                    if !flag(&self.metrics, &*tx, active).await? {
                        return Ok(false);
                    }
                    for q in writes {
                        exec(&self.metrics, &*tx, q).await?;
                    }
                    Ok(true)
                })
            })
            .await
        }

        async fn delete_gateway_key(&self, key: &TokenDigest) -> StoreResult<()> {
            self.exec_alone(&sql::delete_gateway_key(key)).await.map(|_| ())
        }
    }
    audit {
        async fn record_audit_event(&self, event: &AuditEvent) -> StoreResult<()> {
            self.exec_alone(&sql::insert_audit_event(event)).await.map(|_| ())
        }

        async fn purge_audit_events(&self, before: Timestamp) -> StoreResult<u64> {
            self.exec_alone(&sql::purge_audit_events(before)).await
        }
    }
}
