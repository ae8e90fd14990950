//! Tessera's embedded default store: one SQLite file in WAL mode.
//!
//! Open it with [`SqliteStore::open`]; the schema is migrated on open. Writes go through one
//! writer thread with group commit (see `engine`); reads use a small connection pool. Every
//! statement comes from `tessera_store_sql`; what is SQLite's own is how they run.

mod engine;
mod rows;
mod schema;

use std::path::Path;

use tessera_domain::Timestamp;
use tessera_domain::audit::AuditEvent;
use tessera_domain::ids::*;
use tessera_domain::login::{LockoutPolicy, LoginClaim, SessionLimits};
use tessera_domain::role::{Assignee, Role};
use tessera_domain::session::{EndReason, Session};
use tessera_domain::token::TokenDigest;
use tessera_domain::trust::RoleTrust;
use tessera_domain::user::{ApiKey, Group, Organization, User, UserStatus};
use tessera_store::*;
use tessera_store_sql::Query;
use tessera_store_sql::statements as sql;

use engine::Engine;
use rows::{Conn, D, all, check, exec, flag, one, page, record};

/// Where a database's schema stands (`tessera migrate --check`); the same for both backends.
pub use tessera_store_sql::schema::SchemaStatus;

pub struct SqliteStore {
    engine: Engine,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> StoreResult<Self> {
        Ok(Self { engine: Engine::open(path)? })
    }

    /// Where the file's schema stands, without migrating it (or creating a missing file).
    pub fn schema_status(path: &Path) -> StoreResult<tessera_store_sql::schema::SchemaStatus> {
        schema::status(path)
            .map_err(|e| StoreError::Unavailable(format!("cannot read SQLite database {}: {e}", path.display())))
    }

    /// Commits what is queued and stops the writer; later writes fail as unavailable.
    pub fn shutdown(&self) {
        self.engine.shutdown();
    }

    /// One write of one statement: whether it changed exactly one row.
    async fn write_one(&self, q: Query) -> StoreResult<bool> {
        self.engine.write(move |c| Ok(exec(c, &q)? == 1)).await
    }

    /// A delete of several steps after an existence check, in one write.
    async fn delete_all<const N: usize>(&self, exists: Query, steps: [Query; N]) -> StoreResult<bool> {
        self.engine
            .write(move |c| {
                if !flag(c, &exists)? {
                    return Ok(false);
                }
                steps.iter().try_for_each(|q| exec(c, q).map(|_| ()))?;
                Ok(true)
            })
            .await
    }

    async fn fetch_one<T: Send + 'static>(&self, f: sql::Fetch<T>) -> StoreResult<Option<T>> {
        self.engine.read(move |c| one(c, &f)).await
    }

    async fn fetch_all<T: Send + 'static>(&self, f: sql::Fetch<T>) -> StoreResult<Vec<T>> {
        self.engine.read(move |c| all(c, &f)).await
    }

    const DIALECT: tessera_store_sql::Dialect = D;

    async fn records<T: Send + 'static>(
        &self,
        rq: tessera_store_sql::record_query::RecordQuery<T>,
    ) -> StoreResult<tessera_store_sql::record_query::Records<T>> {
        self.engine.read(move |c| record(c, &rq)).await
    }

    async fn list<T: Send + 'static>(
        &self,
        p: StoreResult<tessera_store_sql::paging::ListPage<T>>,
    ) -> StoreResult<Page<T>> {
        let p = p?;
        self.engine.read(move |c| page(c, &p)).await
    }
}

fn insert_api_key(c: &Conn<'_>, k: &ApiKey) -> StoreResult<()> {
    if exec(c, &sql::insert_api_key(k))? == 1 { Ok(()) } else { Err(sql::api_key_user_missing()) }
}

/// Ends the given active sessions; answers the ended records.
fn end_ids(c: &Conn<'_>, org: OrgId, ids: &[String], reason: EndReason, now: Timestamp) -> StoreResult<Vec<Session>> {
    let mut ended = Vec::with_capacity(ids.len());
    for id in ids {
        if exec(c, &sql::end_session(org, id, reason, now))? == 1
            && let Some(s) = one(c, &sql::get_session(org, id))?
        {
            ended.push(s);
        }
    }
    Ok(ended)
}

tessera_store_sql::sql_store! {
    SqliteStore;
    backend {
        fn backend(&self) -> &'static str {
            "sqlite"
        }

        /// Statement latency and errors. The change feed is in-process (this store is one
        /// node's alone): always up, never lost, no lag to measure.
        fn render_metrics(&self, out: &mut String) {
            self.engine.metrics.render(out);
            tessera_store_sql::metrics::render_feed(out, true, 0);
        }
    }
    iam {
        async fn bootstrap(&self, b: &Bootstrap) -> StoreResult<bool> {
            let (writes, key) = (sql::bootstrap(b), b.api_key.clone());
            self.engine
                .write(move |c| {
                    if flag(c, &sql::any_organization())? {
                        return Ok(false);
                    }
                    for q in &writes {
                        exec(c, q)?;
                    }
                    insert_api_key(c, &key)?;
                    Ok(true)
                })
                .await
        }

        async fn create_organization(&self, o: &Organization) -> StoreResult<()> {
            let q = sql::insert_organization(o);
            self.engine.write(move |c| exec(c, &q).map(|_| ())).await
        }

        async fn create_user(&self, user: &User, password_hash: Option<&str>) -> StoreResult<()> {
            let q = sql::insert_user(user, password_hash);
            self.engine.write(move |c| exec(c, &q).map(|_| ())).await
        }

        async fn update_user(&self, u: &User, now: Timestamp) -> StoreResult<Option<Vec<Session>>> {
            let (q, org, uid, disabled) = (sql::update_user(u), u.org_id, u.id, u.status == UserStatus::Disabled);
            self.engine
                .write(move |c| {
                    if exec(c, &q)? != 1 {
                        return Ok(None);
                    }
                    if !disabled {
                        return Ok(Some(vec![]));
                    }
                    let ids = all(c, &sql::active_session_ids(org, uid, None))?;
                    end_ids(c, org, &ids, EndReason::UserDisabled, now).map(Some)
                })
                .await
        }

        async fn delete_user(&self, org: OrgId, uid: UserId, now: Timestamp) -> StoreResult<bool> {
            self.engine
                .write(move |c| {
                    if !flag(c, &sql::user_exists(org, uid))? {
                        return Ok(false);
                    }
                    exec(c, &sql::end_user_sessions(org, uid, EndReason::Terminated, now))?;
                    for q in &sql::delete_user(org, uid) {
                        exec(c, q)?;
                    }
                    Ok(true)
                })
                .await
        }

        async fn create_api_key(&self, key: &ApiKey) -> StoreResult<()> {
            let k = key.clone();
            self.engine.write(move |c| insert_api_key(c, &k)).await
        }

        async fn delete_api_key(&self, org: OrgId, uid: UserId, kid: ApiKeyId) -> StoreResult<bool> {
            self.write_one(sql::delete_api_key(org, uid, kid)).await
        }

        async fn create_group(&self, g: &Group) -> StoreResult<()> {
            let q = sql::insert_group(g);
            self.engine.write(move |c| exec(c, &q).map(|_| ())).await
        }

        async fn update_group(&self, g: &Group) -> StoreResult<bool> {
            self.write_one(sql::update_group(g)).await
        }

        async fn delete_group(&self, org: OrgId, gid: GroupId) -> StoreResult<bool> {
            self.delete_all(sql::group_exists(org, gid), sql::delete_group(org, gid)).await
        }

        async fn add_group_member(&self, org: OrgId, gid: GroupId, uid: UserId) -> StoreResult<bool> {
            let (checks, q) = sql::add_group_member(org, gid, uid);
            self.engine
                .write(move |c| {
                    checks.iter().try_for_each(|ch| check(c, ch))?;
                    Ok(exec(c, &q)? == 1)
                })
                .await
        }

        async fn remove_group_member(&self, org: OrgId, gid: GroupId, uid: UserId) -> StoreResult<bool> {
            self.write_one(sql::remove_group_member(org, gid, uid)).await
        }

        async fn create_policy(&self, policy: &Policy) -> StoreResult<()> {
            let q = sql::insert_policy(policy);
            self.engine.write(move |c| exec(c, &q).map(|_| ())).await
        }

        async fn update_policy(&self, pol: &Policy) -> StoreResult<bool> {
            self.write_one(sql::update_policy(pol)).await
        }

        async fn delete_policy(&self, org: OrgId, pid: PolicyId) -> StoreResult<bool> {
            self.write_one(sql::delete_policy(org, pid)).await
        }

        async fn attach_policy(&self, org: OrgId, pid: PolicyId, target: PolicyTarget) -> StoreResult<bool> {
            let (checks, q) = sql::attach_policy(org, pid, target);
            self.engine
                .write(move |c| {
                    checks.iter().try_for_each(|ch| check(c, ch))?;
                    Ok(exec(c, &q)? == 1)
                })
                .await
        }

        async fn detach_policy(&self, org: OrgId, pid: PolicyId, target: PolicyTarget) -> StoreResult<bool> {
            self.write_one(sql::detach_policy(org, pid, target)).await
        }

        async fn assign_role(&self, org: OrgId, rid: RoleId, to: Assignee, at: Timestamp) -> StoreResult<bool> {
            let (checks, q) = sql::assign_role(org, rid, to, at);
            self.engine
                .write(move |c| {
                    checks.iter().try_for_each(|ch| check(c, ch))?;
                    Ok(exec(c, &q)? == 1)
                })
                .await
        }

        async fn unassign_role(&self, org: OrgId, rid: RoleId, from: Assignee) -> StoreResult<bool> {
            self.write_one(sql::unassign_role(org, rid, from)).await
        }

        async fn create_role(&self, r: &Role) -> StoreResult<()> {
            let q = sql::insert_role(r);
            self.engine.write(move |c| exec(c, &q).map(|_| ())).await
        }

        async fn update_role(&self, r: &Role) -> StoreResult<bool> {
            self.write_one(sql::update_role(r)).await
        }

        async fn delete_role(&self, org: OrgId, rid: RoleId) -> StoreResult<bool> {
            self.delete_all(sql::role_exists(org, rid), sql::delete_role(org, rid)).await
        }

        async fn create_trust(&self, t: &RoleTrust) -> StoreResult<()> {
            let (checks, q) = sql::insert_trust(t);
            self.engine
                .write(move |c| {
                    checks.iter().try_for_each(|ch| check(c, ch))?;
                    exec(c, &q).map(|_| ())
                })
                .await
        }

        async fn update_trust(&self, t: &RoleTrust) -> StoreResult<bool> {
            let (principal, q) = sql::update_trust(t);
            self.engine
                .write(move |c| {
                    check(c, &principal)?;
                    Ok(exec(c, &q)? == 1)
                })
                .await
        }

        async fn delete_trust(&self, org: OrgId, tid: TrustId) -> StoreResult<bool> {
            self.write_one(sql::delete_trust(org, tid)).await
        }

        async fn create_oidc_issuer(&self, i: &tessera_domain::oidc::OidcIssuer) -> StoreResult<()> {
            let q = sql::insert_oidc_issuer(i);
            self.engine.write(move |c| exec(c, &q).map(|_| ())).await
        }

        async fn update_oidc_issuer(&self, i: &tessera_domain::oidc::OidcIssuer) -> StoreResult<bool> {
            self.write_one(sql::update_oidc_issuer(i)).await
        }

        async fn delete_oidc_issuer(&self, org: OrgId, iid: OidcIssuerId) -> StoreResult<bool> {
            self.delete_all(sql::oidc_issuer_exists(org, iid), sql::delete_oidc_issuer(org, iid)).await
        }
    }
    sessions {
        async fn create_session(&self, sess: &Session, digest: &TokenDigest) -> StoreResult<()> {
            let q = sql::insert_session(sess, digest);
            self.engine.write(move |c| exec(c, &q).map(|_| ())).await
        }

        async fn end_session(
            &self,
            org: OrgId,
            sid: SessionId,
            reason: EndReason,
            now: Timestamp,
        ) -> StoreResult<Option<Session>> {
            self.engine.write(move |c| Ok(end_ids(c, org, &[sid.to_string()], reason, now)?.pop())).await
        }

        async fn touch_session(&self, org: OrgId, sid: SessionId, at: Timestamp) -> StoreResult<()> {
            let q = sql::touch_session(org, sid, at);
            self.engine.write_unaudited(move |c| exec(c, &q).map(|_| ())).await
        }

        async fn end_user_sessions(
            &self,
            org: OrgId,
            uid: UserId,
            reason: EndReason,
            now: Timestamp,
            except: Option<SessionId>,
        ) -> StoreResult<Vec<Session>> {
            self.engine
                .write(move |c| {
                    let ids = all(c, &sql::active_session_ids(org, uid, except))?;
                    end_ids(c, org, &ids, reason, now)
                })
                .await
        }

        async fn sweep_sessions(&self, now: Timestamp) -> StoreResult<u64> {
            self.engine
                .write_unaudited(move |c| {
                    let [idle, expired] = sql::sweep_sessions(now);
                    Ok((exec(c, &idle)? + exec(c, &expired)?) as u64)
                })
                .await
        }

        async fn purge_sessions(&self, before: Timestamp) -> StoreResult<u64> {
            self.engine
                .write_unaudited(move |c| {
                    let [keys, sessions] = sql::purge_sessions(before);
                    exec(c, &keys)?;
                    Ok(exec(c, &sessions)? as u64)
                })
                .await
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
            let policy = *policy;
            // One write on the single writer: the read and the update cannot interleave with
            // another claim.
            self.engine
                .write_unaudited(move |c| {
                    let Some(state) = one(c, &sql::login_state(org, uid))? else { return Ok(None) };
                    let claim = policy.claim(state, now);
                    if claim.admitted {
                        exec(c, &sql::write_login_state(org, uid, &claim.after))?;
                    }
                    Ok(Some(claim))
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
            let (policy, client) = (*policy, client.to_owned());
            self.engine
                .write_unaudited(move |c| {
                    let Some(state) = one(c, &sql::login_state(org, uid))? else { return Ok(false) };
                    exec(c, &sql::write_login_state(org, uid, &policy.after_success(&state, attempt, now, &client)))?;
                    Ok(true)
                })
                .await
        }

        async fn clear_login_lock(&self, org: OrgId, uid: UserId) -> StoreResult<bool> {
            self.write_one(sql::clear_login_lock(org, uid)).await
        }

        async fn set_password(&self, org: OrgId, uid: UserId, hash: &str) -> StoreResult<bool> {
            self.write_one(sql::set_password(org, uid, hash)).await
        }

        async fn put_session_limits(&self, org: OrgId, l: &SessionLimits) -> StoreResult<()> {
            let q = sql::put_session_limits(org, l);
            self.engine.write(move |c| exec(c, &q).map(|_| ())).await
        }

        async fn create_login_session(
            &self,
            sess: &Session,
            digest: &TokenDigest,
            max_active: u32,
            now: Timestamp,
        ) -> StoreResult<Vec<Session>> {
            let (beyond, insert, org) =
                (sql::sessions_beyond_cap(sess, max_active, now), sql::insert_session(sess, digest), sess.org_id);
            self.engine
                .write(move |c| {
                    // Oldest first: everything beyond the newest (max_active - 1) makes room.
                    let ids = all(c, &beyond)?;
                    let ended = end_ids(c, org, &ids, EndReason::Replaced, now)?;
                    exec(c, &insert)?;
                    Ok(ended)
                })
                .await
        }
    }
    gateway {
        async fn put_gateway_object(&self, o: &GatewayObject, create: bool) -> StoreResult<bool> {
            let (checks, put, refs) = (sql::gateway_ref_checks(o), sql::put_gateway_object(o, create), sql::put_gateway_refs(o));
            self.engine
                .write(move |c| {
                    checks.iter().try_for_each(|ch| check(c, ch))?;
                    if exec(c, &put)? != 1 {
                        return Ok(false);
                    }
                    refs.iter().try_for_each(|q| exec(c, q).map(|_| ()))?;
                    Ok(true)
                })
                .await
        }

        async fn delete_gateway_object(&self, org: OrgId, kind: GatewayKind, id: uuid::Uuid) -> StoreResult<bool> {
            let (exists, steps) = sql::delete_gateway_object(org, kind, id);
            self.delete_all(exists, steps).await.map_err(sql::gateway_in_use(kind, id))
        }

        async fn create_gateway_session(
            &self,
            sess: &Session,
            key: &TokenDigest,
            data: &str,
            key_expires: Timestamp,
        ) -> StoreResult<()> {
            let (session, key) =
                (sql::insert_session(sess, key), sql::insert_gateway_key(sess.org_id, sess.id, key, data, key_expires));
            self.engine
                .write(move |c| {
                    exec(c, &session)?;
                    exec(c, &key).map(|_| ())
                })
                .await
        }

        async fn rekey_gateway_session(&self, rk: &GatewayRekey) -> StoreResult<bool> {
            let (active, writes) = sql::rekey_gateway_session(rk);
            self.engine
                .write_unaudited(move |c| {
                    if !flag(c, &active)? {
                        return Ok(false);
                    }
                    for q in &writes {
                        exec(c, q)?;
                    }
                    Ok(true)
                })
                .await
        }

        async fn delete_gateway_key(&self, key: &TokenDigest) -> StoreResult<()> {
            let q = sql::delete_gateway_key(key);
            self.engine.write_unaudited(move |c| exec(c, &q).map(|_| ())).await
        }
    }
    audit {
        async fn record_audit_event(&self, event: &AuditEvent) -> StoreResult<()> {
            let q = sql::insert_audit_event(event);
            self.engine.write_unaudited(move |c| exec(c, &q).map(|_| ())).await
        }

        async fn purge_audit_events(&self, before: Timestamp) -> StoreResult<u64> {
            let q = sql::purge_audit_events(before);
            self.engine.write_unaudited(move |c| exec(c, &q).map(|n| n as u64)).await
        }
    }
}
