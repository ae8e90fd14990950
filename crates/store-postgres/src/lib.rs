//! Tessera's store over PostgreSQL, for several stateless nodes on one database.
//!
//! Every write that a cache on another node must see publishes a `NOTIFY tessera_changes`
//! in its own transaction, so the notice goes out exactly when the change commits. Each
//! node keeps one dedicated `LISTEN` connection and turns notices into [`StoreChange`]s;
//! when that connection drops it reports [`StoreChange::FeedLost`] so the app stops
//! trusting its caches until [`StoreChange::FeedRestored`].

mod audit_rows;
mod listen;
mod rows;
mod schema;

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tessera_domain::FieldError;
use tessera_domain::Timestamp;
use tessera_domain::audit::AuditEvent;
use tessera_domain::ids::*;
use tessera_domain::login::{LockoutPolicy, LoginClaim, LoginState, SessionLimits};
use tessera_domain::policy::PolicyDocument;
use tessera_domain::role::Role;
use tessera_domain::session::{EndReason, Session, SessionKind};
use tessera_domain::token::{TokenDigest, TokenKind};
use tessera_domain::trust::RoleTrust;
use tessera_domain::user::{ApiKey, Email, Group, Organization, User, UserStatus};
use tessera_store::audit::{self, Changed};
use tessera_store::filter_sql::{Dialect, SqlValue};
use tessera_store::record_query::{QuerySql, record_query};
use tessera_store::*;
use tokio::sync::broadcast;
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, NoTls, Row};

use rows::*;

/// The channel every node listens on.
pub const CHANNEL: &str = "tessera_changes";

pub struct PgStore {
    pool: Pool,
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

type P = Box<dyn ToSql + Sync + Send>;

fn b<T: ToSql + Sync + Send + 'static>(v: T) -> P {
    Box::new(v)
}

pub(crate) fn refs(p: &[P]) -> Vec<&(dyn ToSql + Sync)> {
    p.iter().map(|x| x.as_ref() as &(dyn ToSql + Sync)).collect()
}

fn s(id: impl std::fmt::Display) -> String {
    id.to_string()
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
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => StoreError::Conflict(e.to_string()),
        Some(c) if *c == SqlState::FOREIGN_KEY_VIOLATION => StoreError::MissingReference(e.to_string()),
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

fn conflict(e: StoreError, what: String) -> StoreError {
    match e {
        StoreError::Conflict(_) => StoreError::Conflict(what),
        other => other,
    }
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
        let mut store = Self { pool, changes: broadcast::channel(1024).0, listener: None };
        store.migrate().await?;
        store.listener = Some(tokio::spawn(listen::run(cfg, store.changes.clone())));
        Ok(store)
    }

    async fn migrate(&self) -> StoreResult<()> {
        let mut c = self.pool.get().await.map_err(pool_err)?;
        let tx = c.transaction().await.map_err(map_err)?;
        // One node migrates at a time; the others wait here, then find nothing to do.
        tx.execute("SELECT pg_advisory_xact_lock(7272727272)", &[]).await.map_err(map_err)?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS tessera_schema_version (version BIGINT NOT NULL)")
            .await
            .map_err(map_err)?;
        let current: i64 = tx
            .query_opt("SELECT version FROM tessera_schema_version", &[])
            .await
            .map_err(map_err)?
            .map(|r| r.get(0))
            .unwrap_or(0);
        for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(current as usize) {
            tx.batch_execute(sql).await.map_err(map_err)?;
            tx.execute("DELETE FROM tessera_schema_version", &[]).await.map_err(map_err)?;
            tx.execute("INSERT INTO tessera_schema_version (version) VALUES ($1)", &[&((i + 1) as i64)])
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        self.pool.get().await.map_err(pool_err)
    }
}

async fn notify<C: GenericClient>(c: &C, change: &StoreChange) -> StoreResult<()> {
    let payload = match change {
        StoreChange::Credentials => "c".to_owned(),
        StoreChange::Permissions => "p".to_owned(),
        StoreChange::Gateway => "g".to_owned(),
        StoreChange::SessionEnded { id, expires } => format!("e:{id}:{}", expires.0),
        StoreChange::FeedLost | StoreChange::FeedRestored => return Ok(()),
    };
    c.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload]).await.map_err(map_err)?;
    Ok(())
}

/// Commits a write's transaction. When the write changed something, the task's staged audit
/// event (see `tessera_store::audit`) is inserted first, in this transaction: the change and
/// its event commit or roll back together. Otherwise the event waits for the next write.
async fn commit<T: Changed>(tx: deadpool_postgres::Transaction<'_>, out: T) -> StoreResult<T> {
    let Some(event) = out.changed().then(audit::take_staged).flatten() else {
        tx.commit().await.map_err(map_err)?;
        return Ok(out);
    };
    let done = match insert_audit(&*tx, &event).await {
        Ok(()) => tx.commit().await.map_err(map_err),
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

const AUDIT_INSERT: &str = "INSERT INTO audit_events (id, org_id, time, actor_kind, actor_id, actor_email, \
     credential_id, action, target_kind, target_id, source_ip, request_id, result, reason)";

/// The values of an audit event's row, in [`AUDIT_INSERT`]'s order.
fn audit_values(e: &AuditEvent) -> Vec<P> {
    vec![
        b(e.id.to_string()),
        b(s(e.org_id)),
        b(e.time.0),
        b(e.actor_kind.as_str()),
        b(e.actor_id.clone()),
        b(e.actor_email.clone()),
        b(e.credential_id.clone()),
        b(e.action.clone()),
        b(e.target_kind.clone()),
        b(e.target_id.clone()),
        b(e.source_ip.clone()),
        b(e.request_id.clone()),
        b(e.result.as_str()),
        b(e.reason.clone()),
    ]
}

/// `VALUES ($from, ..., $from+13)`.
fn audit_placeholders(from: usize) -> String {
    let ps: Vec<String> = (from..from + 14).map(|n| format!("${n}")).collect();
    format!("VALUES ({})", ps.join(", "))
}

async fn insert_audit<C: GenericClient>(c: &C, e: &AuditEvent) -> StoreResult<()> {
    let values = audit_values(e);
    c.execute(&format!("{AUDIT_INSERT} {}", audit_placeholders(1)), &refs(&values)).await.map_err(map_err)?;
    Ok(())
}

async fn opt<C: GenericClient, T>(
    c: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    map: impl FnOnce(&Row) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    match c.query_opt(sql, params).await.map_err(map_err)? {
        Some(r) => Ok(Some(map(&r)?)),
        None => Ok(None),
    }
}

async fn all<C: GenericClient, T>(
    c: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    map: impl Fn(&Row) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    c.query(sql, params).await.map_err(map_err)?.iter().map(map).collect()
}

async fn exists_in_org<C: GenericClient>(c: &C, table: &str, org: OrgId, id: &str) -> StoreResult<bool> {
    let r = c
        .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {table} WHERE org_id = $1 AND id = $2)"), &[&s(org), &id])
        .await
        .map_err(map_err)?;
    Ok(r.get(0))
}

/// One keyset page; `from_where` uses `$1..$n` for `params`.
async fn page<C: GenericClient, T>(
    c: &C,
    cols: &str,
    from_where: &str,
    seq: &str,
    mut params: Vec<P>,
    req: PageRequest,
    map: impl Fn(&Row) -> StoreResult<T>,
) -> StoreResult<Page<T>> {
    let total: i64 =
        c.query_one(&format!("SELECT count(*) {from_where}"), &refs(&params)).await.map_err(map_err)?.get(0);
    let limit = i64::from(req.per_page.max(1));
    let n = params.len();
    let (cond, order) = match req.cursor {
        None => (String::new(), "ASC"),
        Some(Cursor::After(_)) => (format!(" AND {seq} > ${}", n + 1), "ASC"),
        Some(Cursor::Before(_)) => (format!(" AND {seq} < ${}", n + 1), "DESC"),
    };
    let base_len = params.len();
    if let Some(Cursor::After(x) | Cursor::Before(x)) = req.cursor {
        params.push(b(x));
    }
    let sql = format!("SELECT {cols}, {seq} {from_where}{cond} ORDER BY {seq} {order} LIMIT {}", limit + 1);
    let rows = c.query(&sql, &refs(&params)).await.map_err(map_err)?;
    let mut items: Vec<(T, i64)> = Vec::with_capacity(rows.len());
    for r in &rows {
        let last = r.len() - 1;
        items.push((map(r)?, r.try_get(last).map_err(map_err)?));
    }
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    if matches!(req.cursor, Some(Cursor::Before(_))) {
        items.reverse();
    }
    let (first, last) = match (items.first(), items.last()) {
        (Some(f), Some(l)) => (f.1, l.1),
        _ => return Ok(Page { items: vec![], total: total as u64, next: None, prev: None }),
    };
    params.truncate(base_len);
    let probe = match req.cursor {
        None => None,
        Some(Cursor::After(_)) => Some(("<", first)),
        Some(Cursor::Before(_)) => Some((">", last)),
    };
    let beyond = match probe {
        Some((op, at)) => {
            params.push(b(at));
            let sql = format!("SELECT EXISTS (SELECT 1 {from_where} AND {seq} {op} ${})", base_len + 1);
            let r = c.query_one(&sql, &refs(&params)).await.map_err(map_err)?;
            r.get::<_, bool>(0)
        }
        None => false,
    };
    let (has_prev, has_next) = match req.cursor {
        None => (false, more),
        Some(Cursor::After(_)) => (beyond, more),
        Some(Cursor::Before(_)) => (more, beyond),
    };
    Ok(Page {
        items: items.into_iter().map(|(t, _)| t).collect(),
        total: total as u64,
        next: has_next.then_some(Cursor::After(last)),
        prev: has_prev.then_some(Cursor::Before(first)),
    })
}

fn target_parts(t: PolicyTarget) -> (&'static str, &'static str, String) {
    match t {
        PolicyTarget::User(u) => ("user", "users", s(u)),
        PolicyTarget::Group(g) => ("group", "groups", s(g)),
        PolicyTarget::Role(r) => ("role", "roles", s(r)),
    }
}

async fn insert_user<C: GenericClient>(c: &C, u: &User, hash: Option<&str>) -> StoreResult<()> {
    c.execute(
        "INSERT INTO users (id, org_id, email, first_name, last_name, status, password_hash, date_created) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &s(u.id),
            &s(u.org_id),
            &u.email.as_str(),
            &u.first_name,
            &u.last_name,
            &u.status.as_str(),
            &hash,
            &u.date_created.0,
        ],
    )
    .await
    .map_err(|e| conflict(map_err(e), format!("a user with email {} already exists", u.email.as_str())))?;
    Ok(())
}

async fn insert_policy<C: GenericClient>(c: &C, p: &Policy) -> StoreResult<()> {
    c.execute(
        "INSERT INTO policies (id, org_id, name, description, document, date_created) VALUES ($1, $2, $3, $4, $5, $6)",
        &[&s(p.id), &s(p.org_id), &p.name, &p.description, &document_text(&p.document), &p.date_created.0],
    )
    .await
    .map_err(|e| conflict(map_err(e), format!("a policy named '{}' already exists", p.name)))?;
    Ok(())
}

async fn insert_api_key<C: GenericClient>(c: &C, k: &ApiKey) -> StoreResult<()> {
    let n = c
        .execute(
            "INSERT INTO api_keys (id, org_id, user_id, name, digest, date_created, date_expire) \
             SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM users WHERE id = $3 AND org_id = $2)",
            &[
                &s(k.id),
                &s(k.org_id),
                &s(k.user_id),
                &k.name,
                &&k.digest.0[..],
                &k.date_created.0,
                &k.date_expire.map(|t| t.0),
            ],
        )
        .await
        .map_err(map_err)?;
    if n == 1 { Ok(()) } else { Err(StoreError::MissingReference("Invalid user".into())) }
}

async fn insert_session<C: GenericClient>(c: &C, x: &Session, d: &TokenDigest) -> StoreResult<()> {
    let values = session_values(x, d, None);
    c.execute(session_insert_sql(false), &refs(&values)).await.map_err(map_err)?;
    Ok(())
}

/// The statement inserting a session and, when `audited`, its audit event in the same
/// statement (a data-modifying `WITH`: atomic without a transaction). Built once each.
fn session_insert_sql(audited: bool) -> &'static str {
    static SQL: std::sync::OnceLock<[String; 2]> = std::sync::OnceLock::new();
    let [plain, with_audit] = SQL.get_or_init(|| {
        let insert = "INSERT INTO sessions (id, org_id, kind, token_digest, user_id, user_email, role_id, role_name, \
             session_name, auth_method, duration, bound_ip, source_ip, conditions_met, create_time, mod_time, \
             expiration, idle_timeout, last_activity, idle_time_expiration, status, end_time, end_reason, \
             failed_logins, last_login_time, last_login_client) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, \
             $21, $22, $23, $24, $25, $26)";
        [insert.to_owned(), format!("WITH audit AS ({AUDIT_INSERT} {}) {insert}", audit_placeholders(27))]
    });
    if audited { with_audit } else { plain }
}

/// A session's row values in [`session_insert_sql`]'s order, then its event's (if any).
fn session_values(x: &Session, d: &TokenDigest, event: Option<&AuditEvent>) -> Vec<P> {
    let mut v: Vec<P> = vec![
        b(s(x.id)),
        b(s(x.org_id)),
        b(x.kind.as_str()),
        b(d.0.to_vec()),
        b(s(x.user_id)),
        b(x.user_email.clone()),
        b(x.role_id.map(s)),
        b(x.role_name.clone()),
        b(x.session_name.clone()),
        b(x.auth_method.clone()),
        b(x.duration),
        b(x.bound_ip.map(|ip| ip.to_string())),
        b(x.source_ip.clone()),
        b(serde_json::to_string(&x.conditions_met).unwrap_or_else(|_| "[]".into())),
        b(x.created.0),
        b(x.modified.0),
        b(x.expires.0),
        b(x.idle_timeout),
        b(x.last_activity.0),
        b(x.idle_deadline(x.last_activity).map(|t| t.0)),
        b(x.status.as_str()),
        b(x.ended.map(|t| t.0)),
        b(x.end_reason.map(|r| r.as_str())),
        b(x.failed_logins),
        b(x.last_login_time.map(|t| t.0)),
        b(x.last_login_client.clone()),
    ];
    if let Some(e) = event {
        v.extend(audit_values(e));
    }
    v
}

/// Ends the given active sessions and returns their records; notifies each end.
async fn end_ids<C: GenericClient>(
    c: &C,
    org: OrgId,
    ids: &[String],
    reason: EndReason,
    now: Timestamp,
) -> StoreResult<Vec<Session>> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let ended = all(
        c,
        &format!(
            "UPDATE sessions s SET status = $3, end_reason = $4, end_time = $5, mod_time = $5 \
             WHERE s.org_id = $1 AND s.id = ANY($2) AND s.status = 'Active' RETURNING {SESSION_COLS}"
        ),
        &[&s(org), &ids, &reason.status().as_str(), &reason.as_str(), &now.0],
        |r| session(r, 0),
    )
    .await?;
    for e in &ended {
        notify(c, &StoreChange::SessionEnded { id: e.id, expires: e.expires }).await?;
    }
    Ok(ended)
}

/// Ids of a user's active sessions of every kind, but `except`.
async fn active_session_ids<C: GenericClient>(
    c: &C,
    org: OrgId,
    uid: UserId,
    except: Option<SessionId>,
) -> StoreResult<Vec<String>> {
    Ok(c.query(
        "SELECT id FROM sessions WHERE org_id = $1 AND user_id = $2 AND status = 'Active' AND id <> $3",
        &[&s(org), &s(uid), &except.map(s).unwrap_or_default()],
    )
    .await
    .map_err(map_err)?
    .iter()
    .map(|r| r.get(0))
    .collect())
}

/// Reads a user's sign-in state and locks its row until the transaction ends.
async fn lock_login_state<C: GenericClient>(c: &C, org: OrgId, uid: UserId) -> StoreResult<Option<LoginState>> {
    opt(
        c,
        &format!("SELECT {LOGIN_STATE_COLS} FROM users u WHERE u.org_id = $1 AND u.id = $2 FOR UPDATE"),
        &[&s(org), &s(uid)],
        |r| login_state(r, 0),
    )
    .await
}

async fn write_login_state<C: GenericClient>(c: &C, org: OrgId, uid: UserId, st: &LoginState) -> StoreResult<()> {
    c.execute(
        "UPDATE users SET failed_logins = $3, window_failures = $4, window_start = $5, locked_until = $6, \
         lock_count = $7, last_login_time = $8, last_login_client = $9, login_attempts = $10, login_reset_by = $11 \
         WHERE org_id = $1 AND id = $2",
        &[
            &s(org),
            &s(uid),
            &st.failed_logins,
            &st.window_failures,
            &st.window_start.map(|t| t.0),
            &st.locked_until.map(|t| t.0),
            &st.lock_count,
            &st.last_login_time.map(|t| t.0),
            &st.last_login_client,
            &st.attempts,
            &st.reset_by,
        ],
    )
    .await
    .map_err(map_err)?;
    Ok(())
}

/// Runs a record query built by `record_query`: the count, the page's rows (read by `map`,
/// which has `width` columns), and where the next page starts.
pub(crate) async fn run_record_query<C: GenericClient, T>(
    c: &C,
    sql: &QuerySql,
    q: &SessionQuery,
    width: usize,
    map: impl Fn(&Row) -> StoreResult<T>,
) -> StoreResult<(Option<u64>, Vec<T>, Option<Keyset>)> {
    let count = match &sql.count {
        Some(count_sql) => {
            let bound: Vec<P> = sql.count_params.iter().map(bind_value).collect();
            let n: i64 = c.query_one(count_sql, &refs(&bound)).await.map_err(map_err)?.get(0);
            Some(n as u64)
        }
        None => None,
    };
    let Some(rows_sql) = &sql.rows else { return Ok((count, vec![], None)) };
    let bound: Vec<P> = sql.params.iter().map(bind_value).collect();
    let rows = c.query(rows_sql, &refs(&bound)).await.map_err(map_err)?;
    let more = rows.len() > q.top as usize;
    let rows = &rows[..rows.len().min(q.top as usize)];
    let items = rows.iter().map(map).collect::<StoreResult<Vec<_>>>()?;
    let next = match (more && q.keyset_capable(), rows.last()) {
        (true, Some(r)) => {
            let seq: i64 = r.get(width);
            let value = match q.order.first().map(|o| o.field.ty) {
                Some(tessera_domain::filter::FieldType::Text) => SqlValue::Text(r.get(width + 1)),
                Some(tessera_domain::filter::FieldType::Bool) => SqlValue::Bool(r.get(width + 1)),
                Some(_) => SqlValue::Int(r.get(width + 1)),
                None => SqlValue::Int(0),
            };
            Some(Keyset { value, seq })
        }
        _ => None,
    };
    Ok((count, items, next))
}

pub(crate) fn bind_value(v: &SqlValue) -> P {
    match v {
        SqlValue::Text(t) => b(t.clone()),
        SqlValue::Int(n) => b(*n),
        SqlValue::Bool(x) => b(*x),
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn changes(&self) -> Option<broadcast::Receiver<StoreChange>> {
        Some(self.changes.subscribe())
    }

    async fn bootstrap(&self, bs: &Bootstrap) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        tx.execute("SELECT pg_advisory_xact_lock(7272727273)", &[]).await.map_err(map_err)?;
        let any: bool = tx.query_one("SELECT EXISTS (SELECT 1 FROM organizations)", &[]).await.map_err(map_err)?.get(0);
        if any {
            return Ok(false);
        }
        let o = &bs.organization;
        tx.execute(
            "INSERT INTO organizations (id, name, date_created) VALUES ($1, $2, $3)",
            &[&s(o.id), &o.name, &o.date_created.0],
        )
        .await
        .map_err(map_err)?;
        insert_user(&*tx, &bs.admin, None).await?;
        insert_policy(&*tx, &bs.policy).await?;
        tx.execute(
            "INSERT INTO policy_attachments (org_id, policy_id, target_kind, target_id) VALUES ($1, $2, 'user', $3)",
            &[&s(o.id), &s(bs.policy.id), &s(bs.admin.id)],
        )
        .await
        .map_err(map_err)?;
        insert_api_key(&*tx, &bs.api_key).await?;
        commit(tx, true).await
    }

    async fn get_organization(&self, org: OrgId) -> StoreResult<Option<Organization>> {
        let c = self.client().await?;
        opt(&**c, "SELECT id, name, date_created FROM organizations WHERE id = $1", &[&s(org)], |r| {
            Ok(Organization { id: id(r, 0)?, name: r.get(1), date_created: Timestamp(r.get(2)) })
        })
        .await
    }

    async fn create_organization(&self, o: &Organization) -> StoreResult<()> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO organizations (id, name, date_created) VALUES ($1, $2, $3)",
            &[&s(o.id), &o.name, &o.date_created.0],
        )
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn create_user(&self, user: &User, password_hash: Option<&str>) -> StoreResult<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        insert_user(&*tx, user, password_hash).await?;
        commit(tx, ()).await
    }

    async fn get_user(&self, org: OrgId, uid: UserId) -> StoreResult<Option<User>> {
        let c = self.client().await?;
        let sql = format!("SELECT {} FROM users u WHERE u.org_id = $1 AND u.id = $2 FOR UPDATE", user_cols("u"));
        opt(&**c, &sql, &[&s(org), &s(uid)], |r| user(r, 0)).await
    }

    async fn list_users(&self, org: OrgId, req: PageRequest) -> StoreResult<Page<User>> {
        let c = self.client().await?;
        page(&**c, &user_cols("u"), "FROM users u WHERE u.org_id = $1", "u.seq", vec![b(s(org))], req, |r| user(r, 0))
            .await
    }

    async fn update_user(&self, u: &User, now: Timestamp) -> StoreResult<Option<Vec<Session>>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let n = tx
            .execute(
                "UPDATE users SET email = $3, first_name = $4, last_name = $5, status = $6 WHERE org_id = $1 AND id = $2",
                &[&s(u.org_id), &s(u.id), &u.email.as_str(), &u.first_name, &u.last_name, &u.status.as_str()],
            )
            .await
            .map_err(|e| conflict(map_err(e), format!("a user with email {} already exists", u.email.as_str())))?;
        if n != 1 {
            return Ok(None);
        }
        let ended = if u.status == UserStatus::Disabled {
            let ids = active_session_ids(&*tx, u.org_id, u.id, None).await?;
            end_ids(&*tx, u.org_id, &ids, EndReason::UserDisabled, now).await?
        } else {
            vec![]
        };
        notify(&*tx, &StoreChange::Credentials).await?;
        commit(tx, Some(ended)).await
    }

    async fn delete_user(&self, org: OrgId, uid: UserId, now: Timestamp) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        if !exists_in_org(&*tx, "users", org, &s(uid)).await? {
            return Ok(false);
        }
        let ids: Vec<String> = tx
            .query(
                "SELECT id FROM sessions WHERE org_id = $1 AND user_id = $2 AND status = 'Active'",
                &[&s(org), &s(uid)],
            )
            .await
            .map_err(map_err)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        end_ids(&*tx, org, &ids, EndReason::Terminated, now).await?;
        tx.execute(
            "DELETE FROM policy_attachments WHERE org_id = $1 AND target_kind = 'user' AND target_id = $2",
            &[&s(org), &s(uid)],
        )
        .await
        .map_err(map_err)?;
        tx.execute(
            "DELETE FROM role_trusts WHERE org_id = $1 AND principal_kind = 'user' AND principal_id = $2",
            &[&s(org), &s(uid)],
        )
        .await
        .map_err(map_err)?;
        tx.execute("DELETE FROM users WHERE org_id = $1 AND id = $2", &[&s(org), &s(uid)]).await.map_err(map_err)?;
        notify(&*tx, &StoreChange::Credentials).await?;
        notify(&*tx, &StoreChange::Permissions).await?;
        commit(tx, true).await
    }

    async fn create_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        insert_api_key(&*tx, key).await?;
        commit(tx, ()).await
    }

    async fn list_api_keys(&self, org: OrgId, uid: UserId, req: PageRequest) -> StoreResult<Page<ApiKey>> {
        let c = self.client().await?;
        page(
            &**c,
            API_KEY_COLS,
            "FROM api_keys k WHERE k.org_id = $1 AND k.user_id = $2",
            "k.seq",
            vec![b(s(org)), b(s(uid))],
            req,
            |r| api_key(r, 0),
        )
        .await
    }

    async fn delete_api_key(&self, org: OrgId, uid: UserId, kid: ApiKeyId) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let n = tx
            .execute(
                "DELETE FROM api_keys WHERE org_id = $1 AND user_id = $2 AND id = $3",
                &[&s(org), &s(uid), &s(kid)],
            )
            .await
            .map_err(map_err)?;
        notify(&*tx, &StoreChange::Credentials).await?;
        commit(tx, n == 1).await
    }

    async fn find_credential(&self, kind: TokenKind, digest: &TokenDigest) -> StoreResult<Option<Credential>> {
        let c = self.client().await?;
        let d = &digest.0[..];
        if kind == TokenKind::ApiKey {
            let sql = format!(
                "SELECT {API_KEY_COLS}, {} FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.digest = $1",
                user_cols("u")
            );
            return opt(&**c, &sql, &[&d], |r| {
                Ok(Credential::ApiKey { key: api_key(r, 0)?, user: user(r, API_KEY_WIDTH)? })
            })
            .await;
        }
        let sql = format!(
            "SELECT {SESSION_COLS}, {} FROM sessions s JOIN users u ON u.id = s.user_id AND u.org_id = s.org_id \
             WHERE s.token_digest = $1",
            user_cols("u")
        );
        opt(&**c, &sql, &[&d], |r| {
            Ok(Credential::Session { session: Box::new(session(r, 0)?), user: user(r, SESSION_WIDTH)? })
        })
        .await
    }

    async fn create_group(&self, g: &Group) -> StoreResult<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        tx.execute(
            "INSERT INTO groups (id, org_id, display_name, description, date_created) VALUES ($1, $2, $3, $4, $5)",
            &[&s(g.id), &s(g.org_id), &g.display_name, &g.description, &g.date_created.0],
        )
        .await
        .map_err(|e| conflict(map_err(e), format!("a group named '{}' already exists", g.display_name)))?;
        commit(tx, ()).await
    }

    async fn get_group(&self, org: OrgId, gid: GroupId) -> StoreResult<Option<Group>> {
        let c = self.client().await?;
        let sql = format!("SELECT {} FROM groups g WHERE g.org_id = $1 AND g.id = $2", group_cols("g"));
        opt(&**c, &sql, &[&s(org), &s(gid)], |r| group(r, 0)).await
    }

    async fn list_groups(&self, org: OrgId, req: PageRequest) -> StoreResult<Page<Group>> {
        let c = self.client().await?;
        page(&**c, &group_cols("g"), "FROM groups g WHERE g.org_id = $1", "g.seq", vec![b(s(org))], req, |r| {
            group(r, 0)
        })
        .await
    }

    async fn update_group(&self, g: &Group) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let n = tx
            .execute(
                "UPDATE groups SET display_name = $3, description = $4 WHERE org_id = $1 AND id = $2",
                &[&s(g.org_id), &s(g.id), &g.display_name, &g.description],
            )
            .await
            .map_err(|e| conflict(map_err(e), format!("a group named '{}' already exists", g.display_name)))?;
        commit(tx, n == 1).await
    }

    async fn delete_group(&self, org: OrgId, gid: GroupId) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        if !exists_in_org(&*tx, "groups", org, &s(gid)).await? {
            return Ok(false);
        }
        tx.execute(
            "DELETE FROM policy_attachments WHERE org_id = $1 AND target_kind = 'group' AND target_id = $2",
            &[&s(org), &s(gid)],
        )
        .await
        .map_err(map_err)?;
        tx.execute(
            "DELETE FROM role_trusts WHERE org_id = $1 AND principal_kind = 'group' AND principal_id = $2",
            &[&s(org), &s(gid)],
        )
        .await
        .map_err(map_err)?;
        tx.execute("DELETE FROM groups WHERE org_id = $1 AND id = $2", &[&s(org), &s(gid)]).await.map_err(map_err)?;
        notify(&*tx, &StoreChange::Permissions).await?;
        commit(tx, true).await
    }

    async fn add_group_member(&self, org: OrgId, gid: GroupId, uid: UserId) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        if !exists_in_org(&*tx, "groups", org, &s(gid)).await? {
            return Err(StoreError::MissingReference("Group not found".into()));
        }
        if !exists_in_org(&*tx, "users", org, &s(uid)).await? {
            return Err(StoreError::MissingReference("Invalid user".into()));
        }
        let n = tx
            .execute(
                "INSERT INTO group_members (org_id, group_id, user_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&s(org), &s(gid), &s(uid)],
            )
            .await
            .map_err(map_err)?;
        notify(&*tx, &StoreChange::Permissions).await?;
        commit(tx, n == 1).await
    }

    async fn remove_group_member(&self, org: OrgId, gid: GroupId, uid: UserId) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let n = tx
            .execute(
                "DELETE FROM group_members WHERE org_id = $1 AND group_id = $2 AND user_id = $3",
                &[&s(org), &s(gid), &s(uid)],
            )
            .await
            .map_err(map_err)?;
        notify(&*tx, &StoreChange::Permissions).await?;
        commit(tx, n == 1).await
    }

    async fn list_group_members(&self, org: OrgId, gid: GroupId, req: PageRequest) -> StoreResult<Page<User>> {
        let c = self.client().await?;
        page(
            &**c,
            &user_cols("u"),
            "FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 AND m.group_id = $2",
            "m.seq",
            vec![b(s(org)), b(s(gid))],
            req,
            |r| user(r, 0),
        )
        .await
    }

    async fn groups_of_user(&self, org: OrgId, uid: UserId) -> StoreResult<Vec<GroupId>> {
        let c = self.client().await?;
        all(
            &**c,
            "SELECT group_id FROM group_members WHERE org_id = $1 AND user_id = $2 ORDER BY seq",
            &[&s(org), &s(uid)],
            |r| id(r, 0),
        )
        .await
    }

    async fn create_policy(&self, p: &Policy) -> StoreResult<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        insert_policy(&*tx, p).await?;
        commit(tx, ()).await
    }

    async fn get_policy(&self, org: OrgId, pid: PolicyId) -> StoreResult<Option<Policy>> {
        let c = self.client().await?;
        let sql = format!("SELECT {} FROM policies p WHERE p.org_id = $1 AND p.id = $2", policy_cols("p"));
        opt(&**c, &sql, &[&s(org), &s(pid)], |r| policy(r, 0)).await
    }

    async fn list_policies(&self, org: OrgId, req: PageRequest) -> StoreResult<Page<Policy>> {
        let c = self.client().await?;
        page(&**c, &policy_cols("p"), "FROM policies p WHERE p.org_id = $1", "p.seq", vec![b(s(org))], req, |r| {
            policy(r, 0)
        })
        .await
    }

    async fn update_policy(&self, p: &Policy) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let n = tx
            .execute(
                "UPDATE policies SET name = $3, description = $4, document = $5 WHERE org_id = $1 AND id = $2",
                &[&s(p.org_id), &s(p.id), &p.name, &p.description, &document_text(&p.document)],
            )
            .await
            .map_err(|e| conflict(map_err(e), format!("a policy named '{}' already exists", p.name)))?;
        notify(&*tx, &StoreChange::Permissions).await?;
        commit(tx, n == 1).await
    }

    async fn delete_policy(&self, org: OrgId, pid: PolicyId) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let n = tx
            .execute("DELETE FROM policies WHERE org_id = $1 AND id = $2", &[&s(org), &s(pid)])
            .await
            .map_err(map_err)?;
        notify(&*tx, &StoreChange::Permissions).await?;
        commit(tx, n == 1).await
    }

    async fn attach_policy(&self, org: OrgId, pid: PolicyId, target: PolicyTarget) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let (kind, table, tid) = target_parts(target);
        if !exists_in_org(&*tx, "policies", org, &s(pid)).await? {
            return Err(StoreError::MissingReference("Policy not found".into()));
        }
        if !exists_in_org(&*tx, table, org, &tid).await? {
            let what = match target {
                PolicyTarget::User(_) => "Invalid user",
                PolicyTarget::Group(_) => "Group not found",
                PolicyTarget::Role(_) => "Role not found",
            };
            return Err(StoreError::MissingReference(what.into()));
        }
        let n = tx
            .execute(
                "INSERT INTO policy_attachments (org_id, policy_id, target_kind, target_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&s(org), &s(pid), &kind, &tid],
            )
            .await
            .map_err(map_err)?;
        notify(&*tx, &StoreChange::Permissions).await?;
        commit(tx, n == 1).await
    }

    async fn detach_policy(&self, org: OrgId, pid: PolicyId, target: PolicyTarget) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let (kind, _, tid) = target_parts(target);
        let n = tx
            .execute(
                "DELETE FROM policy_attachments WHERE org_id = $1 AND policy_id = $2 AND target_kind = $3 AND target_id = $4",
                &[&s(org), &s(pid), &kind, &tid],
            )
            .await
            .map_err(map_err)?;
        notify(&*tx, &StoreChange::Permissions).await?;
        commit(tx, n == 1).await
    }

    async fn list_attached_policies(
        &self,
        org: OrgId,
        target: PolicyTarget,
        req: PageRequest,
    ) -> StoreResult<Page<Policy>> {
        let c = self.client().await?;
        let (kind, _, tid) = target_parts(target);
        page(
            &**c,
            &policy_cols("p"),
            "FROM policy_attachments a JOIN policies p ON p.id = a.policy_id WHERE a.org_id = $1 AND a.target_kind = $2 AND a.target_id = $3",
            "a.seq",
            vec![b(s(org)), b(kind), b(tid)],
            req,
            |r| policy(r, 0),
        )
        .await
    }

    async fn list_policy_users(&self, org: OrgId, pid: PolicyId, req: PageRequest) -> StoreResult<Page<User>> {
        let c = self.client().await?;
        page(
            &**c,
            &user_cols("u"),
            "FROM policy_attachments a JOIN users u ON u.id = a.target_id WHERE a.org_id = $1 AND a.policy_id = $2 AND a.target_kind = 'user'",
            "a.seq",
            vec![b(s(org)), b(s(pid))],
            req,
            |r| user(r, 0),
        )
        .await
    }

    async fn list_policy_groups(&self, org: OrgId, pid: PolicyId, req: PageRequest) -> StoreResult<Page<Group>> {
        let c = self.client().await?;
        page(
            &**c,
            &group_cols("g"),
            "FROM policy_attachments a JOIN groups g ON g.id = a.target_id WHERE a.org_id = $1 AND a.policy_id = $2 AND a.target_kind = 'group'",
            "a.seq",
            vec![b(s(org)), b(s(pid))],
            req,
            |r| group(r, 0),
        )
        .await
    }

    async fn user_policy_documents(&self, org: OrgId, uid: UserId) -> StoreResult<Vec<PolicyDocument>> {
        let c = self.client().await?;
        let texts: Vec<String> = all(
            &**c,
            "SELECT p.document FROM policies p WHERE p.org_id = $1 AND p.id IN ( \
               SELECT policy_id FROM policy_attachments WHERE org_id = $1 AND target_kind = 'user' AND target_id = $2 \
               UNION SELECT a.policy_id FROM policy_attachments a JOIN group_members m ON m.group_id = a.target_id \
               WHERE a.org_id = $1 AND a.target_kind = 'group' AND m.user_id = $2) ORDER BY p.seq",
            &[&s(org), &s(uid)],
            |r| Ok(r.get(0)),
        )
        .await?;
        texts.iter().map(|t| document(t)).collect()
    }

    async fn role_policy_documents(&self, org: OrgId, rid: RoleId) -> StoreResult<Vec<PolicyDocument>> {
        let c = self.client().await?;
        let texts: Vec<String> = all(
            &**c,
            "SELECT p.document FROM policy_attachments a JOIN policies p ON p.id = a.policy_id \
             WHERE a.org_id = $1 AND a.target_kind = 'role' AND a.target_id = $2 ORDER BY a.seq",
            &[&s(org), &s(rid)],
            |r| Ok(r.get(0)),
        )
        .await?;
        texts.iter().map(|t| document(t)).collect()
    }

    async fn create_role(&self, r: &Role) -> StoreResult<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        tx.execute(
            "INSERT INTO roles (id, org_id, name, description, role_type, max_session_duration, date_created) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[&s(r.id), &s(r.org_id), &r.name, &r.description, &r.role_type.as_str(), &r.max_session_duration.secs(), &r.date_created.0],
        )
        .await
        .map_err(|e| conflict(map_err(e), format!("a role named '{}' already exists", r.name)))?;
        commit(tx, ()).await
    }

    async fn get_role(&self, org: OrgId, rid: RoleId) -> StoreResult<Option<Role>> {
        let c = self.client().await?;
        opt(
            &**c,
            &format!("SELECT {ROLE_COLS} FROM roles r WHERE r.org_id = $1 AND r.id = $2"),
            &[&s(org), &s(rid)],
            |r| role(r, 0),
        )
        .await
    }

    async fn list_roles(&self, org: OrgId, req: PageRequest) -> StoreResult<Page<Role>> {
        let c = self.client().await?;
        page(&**c, ROLE_COLS, "FROM roles r WHERE r.org_id = $1", "r.seq", vec![b(s(org))], req, |r| role(r, 0)).await
    }

    async fn update_role(&self, r: &Role) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let n = tx
            .execute(
                "UPDATE roles SET name = $3, description = $4, role_type = $5, max_session_duration = $6 WHERE org_id = $1 AND id = $2",
                &[&s(r.org_id), &s(r.id), &r.name, &r.description, &r.role_type.as_str(), &r.max_session_duration.secs()],
            )
            .await
            .map_err(|e| conflict(map_err(e), format!("a role named '{}' already exists", r.name)))?;
        // Cached assume facts hold the role: other nodes must re-read it.
        notify(&*tx, &StoreChange::Permissions).await?;
        commit(tx, n == 1).await
    }

    async fn delete_role(&self, org: OrgId, rid: RoleId) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        if !exists_in_org(&*tx, "roles", org, &s(rid)).await? {
            return Ok(false);
        }
        tx.execute(
            "DELETE FROM policy_attachments WHERE org_id = $1 AND target_kind = 'role' AND target_id = $2",
            &[&s(org), &s(rid)],
        )
        .await
        .map_err(map_err)?;
        tx.execute("DELETE FROM roles WHERE org_id = $1 AND id = $2", &[&s(org), &s(rid)]).await.map_err(map_err)?;
        notify(&*tx, &StoreChange::Permissions).await?;
        commit(tx, true).await
    }

    async fn create_trust(&self, t: &RoleTrust) -> StoreResult<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        if !exists_in_org(&*tx, "roles", t.org_id, &s(t.role_id)).await? {
            return Err(StoreError::MissingReference("Role not found".into()));
        }
        let (kind, pid) = principal_parts(&t.principal);
        let (table, missing) = if kind == "user" { ("users", "Invalid user") } else { ("groups", "Group not found") };
        if !exists_in_org(&*tx, table, t.org_id, &pid).await? {
            return Err(StoreError::MissingReference(missing.into()));
        }
        tx.execute(
            "INSERT INTO role_trusts (id, org_id, role_id, trust_type, principal_kind, principal_id, conditions, valid_until, date_created) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[&s(t.id), &s(t.org_id), &s(t.role_id), &t.trust_type, &kind, &pid, &conditions_text(&t.conditions), &t.valid_until.map(|v| v.0), &t.date_created.0],
        )
        .await
        .map_err(map_err)?;
        notify(&*tx, &StoreChange::Permissions).await?;
        commit(tx, ()).await
    }

    async fn get_trust(&self, org: OrgId, tid: TrustId) -> StoreResult<Option<RoleTrust>> {
        let c = self.client().await?;
        opt(
            &**c,
            &format!("SELECT {TRUST_COLS} FROM role_trusts t WHERE t.org_id = $1 AND t.id = $2"),
            &[&s(org), &s(tid)],
            |r| trust(r, 0),
        )
        .await
    }

    async fn list_trusts(&self, org: OrgId, rid: Option<RoleId>, req: PageRequest) -> StoreResult<Page<RoleTrust>> {
        let c = self.client().await?;
        match rid {
            Some(rid) => {
                page(
                    &**c,
                    TRUST_COLS,
                    "FROM role_trusts t WHERE t.org_id = $1 AND t.role_id = $2",
                    "t.seq",
                    vec![b(s(org)), b(s(rid))],
                    req,
                    |r| trust(r, 0),
                )
                .await
            }
            None => {
                page(&**c, TRUST_COLS, "FROM role_trusts t WHERE t.org_id = $1", "t.seq", vec![b(s(org))], req, |r| {
                    trust(r, 0)
                })
                .await
            }
        }
    }

    async fn update_trust(&self, t: &RoleTrust) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let (kind, pid) = principal_parts(&t.principal);
        let (table, missing) = if kind == "user" { ("users", "Invalid user") } else { ("groups", "Group not found") };
        if !exists_in_org(&*tx, table, t.org_id, &pid).await? {
            return Err(StoreError::MissingReference(missing.into()));
        }
        let n = tx
            .execute(
                "UPDATE role_trusts SET trust_type = $3, principal_kind = $4, principal_id = $5, conditions = $6, valid_until = $7 \
                 WHERE org_id = $1 AND id = $2",
                &[&s(t.org_id), &s(t.id), &t.trust_type, &kind, &pid, &conditions_text(&t.conditions), &t.valid_until.map(|v| v.0)],
            )
            .await
            .map_err(map_err)?;
        notify(&*tx, &StoreChange::Permissions).await?;
        commit(tx, n == 1).await
    }

    async fn delete_trust(&self, org: OrgId, tid: TrustId) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let n = tx
            .execute("DELETE FROM role_trusts WHERE org_id = $1 AND id = $2", &[&s(org), &s(tid)])
            .await
            .map_err(map_err)?;
        notify(&*tx, &StoreChange::Permissions).await?;
        commit(tx, n == 1).await
    }

    async fn role_trusts(&self, org: OrgId, rid: RoleId) -> StoreResult<Vec<RoleTrust>> {
        let c = self.client().await?;
        all(
            &**c,
            &format!("SELECT {TRUST_COLS} FROM role_trusts t WHERE t.org_id = $1 AND t.role_id = $2 ORDER BY t.seq"),
            &[&s(org), &s(rid)],
            |r| trust(r, 0),
        )
        .await
    }

    async fn create_session(&self, sess: &Session, digest: &TokenDigest) -> StoreResult<()> {
        let c = self.client().await?;
        // The hot path of assuming a role: the session and its event in one statement, no
        // transaction, prepared once per connection.
        let event = audit::take_staged();
        let values = session_values(sess, digest, event.as_ref());
        let inserted = match c.prepare_cached(session_insert_sql(event.is_some())).await {
            Ok(st) => c.execute(&st, &refs(&values)).await.map(|_| ()).map_err(map_err),
            Err(e) => Err(map_err(e)),
        };
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

    async fn get_session(&self, org: OrgId, sid: SessionId) -> StoreResult<Option<Session>> {
        let c = self.client().await?;
        opt(
            &**c,
            &format!("SELECT {SESSION_COLS} FROM sessions s WHERE s.org_id = $1 AND s.id = $2"),
            &[&s(org), &s(sid)],
            |r| session(r, 0),
        )
        .await
    }

    async fn list_active_sessions(
        &self,
        org: OrgId,
        uid: UserId,
        kind: Option<SessionKind>,
        now: Timestamp,
        req: PageRequest,
    ) -> StoreResult<Page<Session>> {
        let c = self.client().await?;
        let base = "FROM sessions s WHERE s.org_id = $1 AND s.user_id = $2 AND s.status = 'Active' \
                    AND s.expiration > $3 AND (s.idle_time_expiration IS NULL OR s.idle_time_expiration > $3)";
        let mut params = vec![b(s(org)), b(s(uid)), b(now.0)];
        let from_where = match kind {
            Some(k) => {
                params.push(b(k.as_str()));
                format!("{base} AND s.kind = $4")
            }
            None => base.to_owned(),
        };
        page(&**c, SESSION_COLS, &from_where, "s.seq", params, req, |r| session(r, 0)).await
    }

    async fn end_session(
        &self,
        org: OrgId,
        sid: SessionId,
        reason: EndReason,
        now: Timestamp,
    ) -> StoreResult<Option<Session>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let ended = end_ids(&*tx, org, &[s(sid)], reason, now).await?;
        commit(tx, ended.into_iter().next()).await
    }

    async fn touch_session(&self, org: OrgId, sid: SessionId, at: Timestamp) -> StoreResult<()> {
        let c = self.client().await?;
        c.execute(
            "UPDATE sessions SET last_activity = GREATEST(last_activity, $3), \
             idle_time_expiration = LEAST(expiration, GREATEST(last_activity, $3) + idle_timeout) \
             WHERE org_id = $1 AND id = $2 AND status = 'Active' AND idle_timeout IS NOT NULL",
            &[&s(org), &s(sid), &at.0],
        )
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn end_user_sessions(
        &self,
        org: OrgId,
        uid: UserId,
        reason: EndReason,
        now: Timestamp,
        except: Option<SessionId>,
    ) -> StoreResult<Vec<Session>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let ids = active_session_ids(&*tx, org, uid, except).await?;
        let ended = end_ids(&*tx, org, &ids, reason, now).await?;
        commit(tx, ended).await
    }

    async fn sweep_sessions(&self, now: Timestamp) -> StoreResult<u64> {
        let c = self.client().await?;
        let idle = c
            .execute(
                "UPDATE sessions SET status = 'Ended', end_reason = 'idle_timeout', end_time = idle_time_expiration, mod_time = $1 \
                 WHERE status = 'Active' AND idle_time_expiration <= $1 AND idle_time_expiration < expiration",
                &[&now.0],
            )
            .await
            .map_err(map_err)?;
        let expired = c
            .execute(
                "UPDATE sessions SET status = 'Ended', end_reason = 'expired', end_time = expiration, mod_time = $1 \
                 WHERE status = 'Active' AND expiration <= $1",
                &[&now.0],
            )
            .await
            .map_err(map_err)?;
        Ok(idle + expired)
    }

    async fn purge_sessions(&self, before: Timestamp) -> StoreResult<u64> {
        let c = self.client().await?;
        c.execute("DELETE FROM gateway_keys WHERE expires < $1", &[&before.0]).await.map_err(map_err)?;
        c.execute("DELETE FROM sessions WHERE status <> 'Active' AND end_time < $1", &[&before.0])
            .await
            .map_err(map_err)
    }

    async fn find_login(&self, email: &Email) -> StoreResult<Vec<LoginRecord>> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {}, u.password_hash, {LOGIN_STATE_COLS} FROM users u WHERE u.email = $1 ORDER BY u.seq",
            user_cols("u")
        );
        all(&**c, &sql, &[&email.as_str()], login).await
    }

    async fn claim_login_attempt(
        &self,
        org: OrgId,
        uid: UserId,
        now: Timestamp,
        policy: &LockoutPolicy,
    ) -> StoreResult<Option<LoginClaim>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        // The row lock orders every claim on this user, from every node: the next claim
        // reads what this one wrote.
        let Some(state) = lock_login_state(&*tx, org, uid).await? else { return Ok(None) };
        let claim = policy.claim(state, now);
        if claim.admitted {
            write_login_state(&*tx, org, uid, &claim.after).await?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(Some(claim))
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
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let Some(state) = lock_login_state(&*tx, org, uid).await? else { return Ok(false) };
        write_login_state(&*tx, org, uid, &policy.after_success(&state, attempt, now, client)).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn clear_login_lock(&self, org: OrgId, uid: UserId) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let n = tx
            .execute(
                "UPDATE users SET window_failures = 0, window_start = NULL, locked_until = NULL, lock_count = 0 \
                 WHERE org_id = $1 AND id = $2",
                &[&s(org), &s(uid)],
            )
            .await
            .map_err(map_err)?;
        commit(tx, n == 1).await
    }

    async fn set_password(&self, org: OrgId, uid: UserId, hash: &str) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let n = tx
            .execute("UPDATE users SET password_hash = $3 WHERE org_id = $1 AND id = $2", &[&s(org), &s(uid), &hash])
            .await
            .map_err(map_err)?;
        commit(tx, n == 1).await
    }

    async fn get_session_limits(&self, org: OrgId) -> StoreResult<SessionLimits> {
        let c = self.client().await?;
        let found = opt(
            &**c,
            "SELECT idle_timeout, absolute_timeout, max_sessions_per_user FROM session_limits WHERE org_id = $1",
            &[&s(org)],
            |r| {
                Ok(SessionLimits {
                    idle_timeout: r.get(0),
                    absolute_timeout: r.get(1),
                    max_sessions_per_user: r.get::<_, i64>(2) as u32,
                })
            },
        )
        .await?;
        Ok(found.unwrap_or_default())
    }

    async fn put_session_limits(&self, org: OrgId, l: &SessionLimits) -> StoreResult<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        tx.execute(
            "INSERT INTO session_limits (org_id, idle_timeout, absolute_timeout, max_sessions_per_user) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (org_id) DO UPDATE SET idle_timeout = EXCLUDED.idle_timeout, \
             absolute_timeout = EXCLUDED.absolute_timeout, max_sessions_per_user = EXCLUDED.max_sessions_per_user",
            &[&s(org), &l.idle_timeout, &l.absolute_timeout, &i64::from(l.max_sessions_per_user)],
        )
        .await
        .map_err(map_err)?;
        commit(tx, ()).await
    }

    async fn create_login_session(
        &self,
        x: &Session,
        d: &TokenDigest,
        max_active: u32,
        now: Timestamp,
    ) -> StoreResult<Vec<Session>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        // Serialise sign-ins of one user so two at once cannot both skip the cap.
        tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&s(x.user_id)]).await.map_err(map_err)?;
        let ids: Vec<String> = tx
            .query(
                "SELECT id FROM sessions WHERE org_id = $1 AND user_id = $2 AND kind = $3 AND status = 'Active' \
                 AND expiration > $4 AND (idle_time_expiration IS NULL OR idle_time_expiration > $4) \
                 ORDER BY seq DESC OFFSET $5",
                &[&s(x.org_id), &s(x.user_id), &x.kind.as_str(), &now.0, &i64::from(max_active.max(1) - 1)],
            )
            .await
            .map_err(map_err)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let ended = end_ids(&*tx, x.org_id, &ids, EndReason::Replaced, now).await?;
        insert_session(&*tx, x, d).await?;
        commit(tx, ended).await
    }

    async fn query_sessions(&self, org: OrgId, q: &SessionQuery) -> StoreResult<SessionQueryResult> {
        q.check().map_err(StoreError::Invalid)?;
        let c = self.client().await?;
        let sql = record_query(q, Dialect::Postgres, "sessions s", "s", SESSION_COLS, s(org));
        let (count, sessions, next) = run_record_query(&**c, &sql, q, SESSION_WIDTH, |r| session(r, 0)).await?;
        Ok(SessionQueryResult { count, sessions, next })
    }

    async fn put_gateway_object(&self, o: &GatewayObject, create: bool) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let (id, org, kind) = (s(o.id), s(o.org_id), o.kind.as_str());
        let n = if create {
            tx.execute(
                "INSERT INTO gateway_objects (id, org_id, kind, name, body, created, updated) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&id, &org, &kind, &o.name, &o.body, &o.created.0, &o.updated.0],
            )
            .await
        } else {
            tx.execute(
                "UPDATE gateway_objects SET name = $4, body = $5, updated = $6 WHERE id = $1 AND org_id = $2 AND kind = $3",
                &[&id, &org, &kind, &o.name, &o.body, &o.updated.0],
            )
            .await
        }
            .map_err(|e| match map_err(e) {
                StoreError::Conflict(_) => StoreError::Conflict(format!(
                    "a {} named '{}' already exists",
                    o.kind.as_str(),
                    o.name.as_deref().unwrap_or_default()
                )),
                other => other,
            })?;
        notify(&*tx, &StoreChange::Gateway).await?;
        commit(tx, n == 1).await
    }

    async fn get_gateway_object(
        &self,
        org: OrgId,
        kind: GatewayKind,
        id: uuid::Uuid,
    ) -> StoreResult<Option<GatewayObject>> {
        let c = self.client().await?;
        opt(
            &**c,
            "SELECT id, org_id, kind, name, body, created, updated FROM gateway_objects WHERE org_id = $1 AND kind = $2 AND id = $3",
            &[&s(org), &kind.as_str(), &s(id)],
            |r| gateway_object(r, kind),
        )
        .await
    }

    async fn list_gateway_objects(&self, org: Option<OrgId>, kind: GatewayKind) -> StoreResult<Vec<GatewayObject>> {
        let c = self.client().await?;
        let org = org.map(s);
        all(
            &**c,
            "SELECT id, org_id, kind, name, body, created, updated FROM gateway_objects \
             WHERE kind = $1 AND ($2::TEXT IS NULL OR org_id = $2) ORDER BY seq",
            &[&kind.as_str(), &org],
            |r| gateway_object(r, kind),
        )
        .await
    }

    async fn delete_gateway_object(&self, org: OrgId, kind: GatewayKind, id: uuid::Uuid) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let n = tx
            .execute(
                "DELETE FROM gateway_objects WHERE org_id = $1 AND kind = $2 AND id = $3",
                &[&s(org), &kind.as_str(), &s(id)],
            )
            .await
            .map_err(map_err)?;
        notify(&*tx, &StoreChange::Gateway).await?;
        commit(tx, n == 1).await
    }

    async fn create_gateway_session(
        &self,
        sess: &Session,
        key: &TokenDigest,
        data: &str,
        key_expires: Timestamp,
    ) -> StoreResult<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        insert_session(&*tx, sess, key).await?;
        tx.execute(
            "INSERT INTO gateway_keys (digest, org_id, session_id, data, expires) VALUES ($1, $2, $3, $4, $5)",
            &[&&key.0[..], &s(sess.org_id), &s(sess.id), &data, &key_expires.0],
        )
        .await
        .map_err(map_err)?;
        commit(tx, ()).await
    }

    async fn find_gateway_key(&self, key: &TokenDigest) -> StoreResult<Option<GatewayKey>> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {SESSION_COLS}, {}, k.data, k.expires FROM gateway_keys k \
             JOIN sessions s ON s.id = k.session_id JOIN users u ON u.id = s.user_id AND u.org_id = s.org_id \
             WHERE k.digest = $1",
            user_cols("u")
        );
        opt(&**c, &sql, &[&&key.0[..]], |r| {
            let at = SESSION_WIDTH + USER_WIDTH;
            Ok(GatewayKey {
                session: session(r, 0)?,
                user: user(r, SESSION_WIDTH)?,
                data: r.get(at),
                expires: Timestamp(r.get(at + 1)),
            })
        })
        .await
    }

    async fn rekey_gateway_session(&self, rk: &GatewayRekey) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let active = tx
            .query_opt(
                "SELECT 1 FROM sessions WHERE org_id = $1 AND id = $2 AND status = 'Active' FOR UPDATE",
                &[&s(rk.org_id), &s(rk.session)],
            )
            .await
            .map_err(map_err)?;
        if active.is_none() {
            return Ok(false);
        }
        tx.execute(
            "UPDATE gateway_keys SET expires = LEAST(expires, $2) WHERE digest = $1",
            &[&&rk.old.0[..], &rk.old_expires.0],
        )
        .await
        .map_err(map_err)?;
        tx.execute(
            "INSERT INTO gateway_keys (digest, org_id, session_id, data, expires) VALUES ($1, $2, $3, $4, $5)",
            &[&&rk.new.0[..], &s(rk.org_id), &s(rk.session), &rk.data, &rk.new_expires.0],
        )
        .await
        .map_err(map_err)?;
        tx.execute(
            "UPDATE sessions SET mod_time = $3 WHERE org_id = $1 AND id = $2",
            &[&s(rk.org_id), &s(rk.session), &rk.now.0],
        )
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn record_audit_event(&self, event: &AuditEvent) -> StoreResult<()> {
        let c = self.client().await?;
        insert_audit(&**c, event).await
    }

    async fn query_audit_events(&self, org: OrgId, q: &SessionQuery) -> StoreResult<AuditQueryResult> {
        q.check().map_err(StoreError::Invalid)?;
        let c = self.client().await?;
        audit_rows::query(&**c, s(org), q).await
    }

    async fn purge_audit_events(&self, before: Timestamp) -> StoreResult<u64> {
        let c = self.client().await?;
        c.execute("DELETE FROM audit_events WHERE time < $1", &[&before.0]).await.map_err(map_err)
    }

    async fn delete_gateway_key(&self, key: &TokenDigest) -> StoreResult<()> {
        let c = self.client().await?;
        c.execute("DELETE FROM gateway_keys WHERE digest = $1", &[&&key.0[..]]).await.map_err(map_err)?;
        Ok(())
    }
}

fn gateway_object(r: &Row, kind: GatewayKind) -> StoreResult<GatewayObject> {
    Ok(GatewayObject {
        id: id(r, 0)?,
        org_id: id(r, 1)?,
        kind,
        name: r.get(3),
        body: r.get(4),
        created: Timestamp(r.get(5)),
        updated: Timestamp(r.get(6)),
    })
}
