//! Tessera's embedded default store: one SQLite file in WAL mode.
//!
//! Open it with [`SqliteStore::open`]; the schema is migrated on open. Writes go through one
//! writer thread with group commit (see `engine`); reads use a small connection pool.

mod audit;
mod engine;
mod rows;
mod schema;

use std::path::Path;

use async_trait::async_trait;
use rusqlite::types::ToSql;
use rusqlite::{Connection, OptionalExtension, Row, params};
use tessera_domain::Timestamp;
use tessera_domain::ids::*;
use tessera_domain::login::{LockoutPolicy, LoginClaim, LoginState, SessionLimits};
use tessera_domain::policy::PolicyDocument;
use tessera_domain::role::Role;
use tessera_domain::session::{EndReason, Session, SessionKind};
use tessera_domain::token::{TokenDigest, TokenKind};
use tessera_domain::trust::RoleTrust;
use tessera_domain::user::{ApiKey, Email, Group, Organization, User, UserStatus};
use tessera_store::filter_sql::{Dialect, SqlValue};
use tessera_store::record_query::{QuerySql, record_query};
use tessera_store::*;

use engine::{Engine, map_err};
use rows::*;

pub struct SqliteStore {
    engine: Engine,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> StoreResult<Self> {
        Ok(Self { engine: Engine::open(path)? })
    }

    /// Commits what is queued and stops the writer; later writes fail as unavailable.
    pub fn shutdown(&self) {
        self.engine.shutdown();
    }
}

type Params = Vec<Box<dyn ToSql + Send>>;

fn p(v: impl ToSql + Send + 'static) -> Box<dyn ToSql + Send> {
    Box::new(v)
}

fn refs(params: &Params) -> Vec<&dyn ToSql> {
    params.iter().map(|b| b.as_ref() as &dyn ToSql).collect()
}

/// One keyset page: `from_where` is `FROM ... WHERE ...` using `?1..?n` for `params`;
/// `seq` is the ordering column; `cols` are read by `map` starting at column 0.
fn page<T>(
    conn: &Connection,
    cols: &str,
    from_where: &str,
    seq: &str,
    params: &Params,
    req: PageRequest,
    map: impl Fn(&Row<'_>) -> rusqlite::Result<T>,
) -> StoreResult<Page<T>> {
    let args = refs(params);
    let total: i64 = conn
        .prepare_cached(&format!("SELECT count(*) {from_where}"))
        .and_then(|mut st| st.query_row(&args[..], |r| r.get(0)))
        .map_err(map_err)?;
    let limit = req.per_page.max(1) as i64;
    let n = params.len();
    let (cond, order) = match req.cursor {
        None => (String::new(), "ASC"),
        Some(Cursor::After(_)) => (format!(" AND {seq} > ?{}", n + 1), "ASC"),
        Some(Cursor::Before(_)) => (format!(" AND {seq} < ?{}", n + 1), "DESC"),
    };
    let sql = format!("SELECT {cols}, {seq} {from_where}{cond} ORDER BY {seq} {order} LIMIT {}", limit + 1);
    let mut args2 = args.clone();
    let pos = match req.cursor {
        Some(Cursor::After(x)) | Some(Cursor::Before(x)) => x,
        None => 0,
    };
    if req.cursor.is_some() {
        args2.push(&pos);
    }
    let mut stmt = conn.prepare_cached(&sql).map_err(map_err)?;
    let width = stmt.column_count() - 1;
    let mut rows: Vec<(T, i64)> = stmt
        .query_map(&args2[..], |r| Ok((map(r)?, r.get::<_, i64>(width)?)))
        .map_err(map_err)?
        .collect::<Result<_, _>>()
        .map_err(map_err)?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    if matches!(req.cursor, Some(Cursor::Before(_))) {
        rows.reverse();
    }
    let (first, last) = match (rows.first(), rows.last()) {
        (Some(f), Some(l)) => (f.1, l.1),
        _ => return Ok(Page { items: vec![], total: total as u64, next: None, prev: None }),
    };
    let exists = |op: &str, at: i64| -> StoreResult<bool> {
        let mut a = args.clone();
        a.push(&at);
        conn.prepare_cached(&format!("SELECT EXISTS (SELECT 1 {from_where} AND {seq} {op} ?{})", n + 1))
            .and_then(|mut st| st.query_row(&a[..], |r| r.get(0)))
            .map_err(map_err)
    };
    let (has_prev, has_next) = match req.cursor {
        None => (false, more),
        Some(Cursor::After(_)) => (exists("<", first)?, more),
        Some(Cursor::Before(_)) => (more, exists(">", last)?),
    };
    Ok(Page {
        items: rows.into_iter().map(|(t, _)| t).collect(),
        total: total as u64,
        next: has_next.then_some(Cursor::After(last)),
        prev: has_prev.then_some(Cursor::Before(first)),
    })
}

fn s(id: impl std::fmt::Display) -> String {
    id.to_string()
}

fn exists_in_org(conn: &Connection, table: &str, org: OrgId, id: &str) -> StoreResult<bool> {
    conn.prepare_cached(&format!("SELECT EXISTS (SELECT 1 FROM {table} WHERE org_id = ?1 AND id = ?2)"))
        .and_then(|mut st| st.query_row(params![s(org), id], |r| r.get(0)))
        .map_err(map_err)
}

fn target_parts(t: PolicyTarget) -> (&'static str, &'static str, String) {
    match t {
        PolicyTarget::User(u) => ("user", "users", s(u)),
        PolicyTarget::Group(g) => ("group", "groups", s(g)),
        PolicyTarget::Role(r) => ("role", "roles", s(r)),
    }
}

fn insert_user(conn: &Connection, u: &User, hash: Option<&str>) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO users (id, org_id, email, first_name, last_name, status, password_hash, date_created) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut st| {
        st.execute(params![
            s(u.id),
            s(u.org_id),
            u.email.as_str(),
            u.first_name,
            u.last_name,
            u.status.as_str(),
            hash,
            u.date_created.0
        ])
    })
    .map_err(|e| match map_err(e) {
        StoreError::Conflict(_) => {
            StoreError::Conflict(format!("a user with email {} already exists", u.email.as_str()))
        }
        other => other,
    })?;
    Ok(())
}

fn insert_policy(conn: &Connection, p: &Policy) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO policies (id, org_id, name, description, document, date_created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut st| {
        st.execute(params![s(p.id), s(p.org_id), p.name, p.description, document_text(&p.document), p.date_created.0])
    })
    .map_err(|e| match map_err(e) {
        StoreError::Conflict(_) => StoreError::Conflict(format!("a policy named '{}' already exists", p.name)),
        other => other,
    })?;
    Ok(())
}

fn insert_api_key(conn: &Connection, k: &ApiKey) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO api_keys (id, org_id, user_id, name, digest, date_created, date_expire) \
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE EXISTS (SELECT 1 FROM users WHERE id = ?3 AND org_id = ?2)",
    )
    .and_then(|mut st| {
        st.execute(params![
            s(k.id),
            s(k.org_id),
            s(k.user_id),
            k.name,
            &k.digest.0[..],
            k.date_created.0,
            k.date_expire.map(|t| t.0)
        ])
    })
    .map_err(map_err)
    .and_then(|n| if n == 1 { Ok(()) } else { Err(StoreError::MissingReference("Invalid user".into())) })
}

fn one<T>(
    conn: &Connection,
    sql: &str,
    args: &[&dyn ToSql],
    map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> StoreResult<Option<T>> {
    conn.prepare_cached(sql).and_then(|mut st| st.query_row(args, map).optional()).map_err(map_err)
}

fn documents(conn: &Connection, sql: &str, args: &[&dyn ToSql]) -> StoreResult<Vec<PolicyDocument>> {
    let mut st = conn.prepare_cached(sql).map_err(map_err)?;
    let texts: Vec<String> =
        st.query_map(args, |r| r.get(0)).map_err(map_err)?.collect::<Result<_, _>>().map_err(map_err)?;
    texts.iter().map(|t| document(t).map_err(StoreError::Internal)).collect()
}

fn end_sessions_of_user(
    conn: &Connection,
    org: OrgId,
    user: UserId,
    reason: EndReason,
    now: Timestamp,
) -> StoreResult<usize> {
    conn.prepare_cached(
        "UPDATE sessions SET status = ?1, end_reason = ?2, end_time = ?3, mod_time = ?3 \
         WHERE org_id = ?4 AND user_id = ?5 AND status = 'Active'",
    )
    .and_then(|mut st| st.execute(params![reason.status().as_str(), reason.as_str(), now.0, s(org), s(user)]))
    .map_err(map_err)
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn bootstrap(&self, b: &Bootstrap) -> StoreResult<bool> {
        let b = b.clone();
        self.engine
            .write(move |c| {
                let any: bool = c.query_row("SELECT EXISTS (SELECT 1 FROM organizations)", [], |r| r.get(0)).map_err(map_err)?;
                if any {
                    return Ok(false);
                }
                let o = &b.organization;
                c.execute(
                    "INSERT INTO organizations (id, name, date_created) VALUES (?1, ?2, ?3)",
                    params![s(o.id), o.name, o.date_created.0],
                )
                .map_err(map_err)?;
                insert_user(c, &b.admin, None)?;
                insert_policy(c, &b.policy)?;
                c.execute(
                    "INSERT INTO policy_attachments (org_id, policy_id, target_kind, target_id) VALUES (?1, ?2, 'user', ?3)",
                    params![s(o.id), s(b.policy.id), s(b.admin.id)],
                )
                .map_err(map_err)?;
                insert_api_key(c, &b.api_key)?;
                Ok(true)
            })
            .await
    }

    async fn get_organization(&self, org: OrgId) -> StoreResult<Option<Organization>> {
        self.engine
            .read(move |c| {
                one(c, "SELECT id, name, date_created FROM organizations WHERE id = ?1", &[&s(org)], |r| {
                    Ok(Organization { id: id(r, 0)?, name: r.get(1)?, date_created: Timestamp(r.get(2)?) })
                })
            })
            .await
    }

    async fn create_organization(&self, o: &Organization) -> StoreResult<()> {
        let o = o.clone();
        self.engine
            .write(move |c| {
                c.execute(
                    "INSERT INTO organizations (id, name, date_created) VALUES (?1, ?2, ?3)",
                    params![s(o.id), o.name, o.date_created.0],
                )
                .map(|_| ())
                .map_err(map_err)
            })
            .await
    }

    async fn create_user(&self, user: &User, password_hash: Option<&str>) -> StoreResult<()> {
        let (u, h) = (user.clone(), password_hash.map(str::to_owned));
        self.engine.write(move |c| insert_user(c, &u, h.as_deref())).await
    }

    async fn get_user(&self, org: OrgId, uid: UserId) -> StoreResult<Option<User>> {
        self.engine
            .read(move |c| {
                let sql = format!("SELECT {} FROM users u WHERE u.org_id = ?1 AND u.id = ?2", user_cols("u"));
                one(c, &sql, &[&s(org), &s(uid)], |r| user(r, 0))
            })
            .await
    }

    async fn list_users(&self, org: OrgId, req: PageRequest) -> StoreResult<Page<User>> {
        self.engine
            .read(move |c| {
                page(c, &user_cols("u"), "FROM users u WHERE u.org_id = ?1", "u.seq", &vec![p(s(org))], req, |r| {
                    user(r, 0)
                })
            })
            .await
    }

    async fn update_user(&self, u: &User, now: Timestamp) -> StoreResult<Option<Vec<Session>>> {
        let u = u.clone();
        self.engine
            .write(move |c| {
                let found = c
                    .prepare_cached(
                        "UPDATE users SET email = ?3, first_name = ?4, last_name = ?5, status = ?6 WHERE org_id = ?1 AND id = ?2",
                    )
                    .and_then(|mut st| st.execute(params![s(u.org_id), s(u.id), u.email.as_str(), u.first_name, u.last_name, u.status.as_str()]))
                    .map(|n| n == 1)
                    .map_err(|e| match map_err(e) {
                        StoreError::Conflict(_) => StoreError::Conflict(format!("a user with email {} already exists", u.email.as_str())),
                        other => other,
                    })?;
                if !found {
                    return Ok(None);
                }
                if u.status != UserStatus::Disabled {
                    return Ok(Some(vec![]));
                }
                let ids = active_session_ids(c, u.org_id, u.id, None)?;
                end_ids(c, u.org_id, &ids, EndReason::UserDisabled, now).map(Some)
            })
            .await
    }

    async fn delete_user(&self, org: OrgId, uid: UserId, now: Timestamp) -> StoreResult<bool> {
        self.engine
            .write(move |c| {
                if !exists_in_org(c, "users", org, &s(uid))? {
                    return Ok(false);
                }
                end_sessions_of_user(c, org, uid, EndReason::Terminated, now)?;
                c.execute(
                    "DELETE FROM policy_attachments WHERE org_id = ?1 AND target_kind = 'user' AND target_id = ?2",
                    params![s(org), s(uid)],
                )
                .map_err(map_err)?;
                c.execute(
                    "DELETE FROM role_trusts WHERE org_id = ?1 AND principal_kind = 'user' AND principal_id = ?2",
                    params![s(org), s(uid)],
                )
                .map_err(map_err)?;
                c.execute("DELETE FROM users WHERE org_id = ?1 AND id = ?2", params![s(org), s(uid)])
                    .map_err(map_err)?;
                Ok(true)
            })
            .await
    }

    async fn create_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        let k = key.clone();
        self.engine.write(move |c| insert_api_key(c, &k)).await
    }

    async fn list_api_keys(&self, org: OrgId, uid: UserId, req: PageRequest) -> StoreResult<Page<ApiKey>> {
        self.engine
            .read(move |c| {
                page(
                    c,
                    API_KEY_COLS,
                    "FROM api_keys k WHERE k.org_id = ?1 AND k.user_id = ?2",
                    "k.seq",
                    &vec![p(s(org)), p(s(uid))],
                    req,
                    |r| api_key(r, 0),
                )
            })
            .await
    }

    async fn delete_api_key(&self, org: OrgId, uid: UserId, kid: ApiKeyId) -> StoreResult<bool> {
        self.engine
            .write(move |c| {
                c.execute(
                    "DELETE FROM api_keys WHERE org_id = ?1 AND user_id = ?2 AND id = ?3",
                    params![s(org), s(uid), s(kid)],
                )
                .map(|n| n == 1)
                .map_err(map_err)
            })
            .await
    }

    async fn find_credential(&self, kind: TokenKind, digest: &TokenDigest) -> StoreResult<Option<Credential>> {
        let d = *digest;
        self.engine
            .read(move |c| {
                let key_sql = format!("SELECT {API_KEY_COLS}, {} FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.digest = ?1", user_cols("u"));
                let session_sql = format!("SELECT {SESSION_COLS}, {} FROM sessions s JOIN users u ON u.id = s.user_id AND u.org_id = s.org_id WHERE s.token_digest = ?1", user_cols("u"));
                if kind == TokenKind::ApiKey {
                    return one(c, &key_sql, &[&&d.0[..]], |r| Ok(Credential::ApiKey { key: api_key(r, 0)?, user: user(r, API_KEY_WIDTH)? }));
                }
                one(c, &session_sql, &[&&d.0[..]], |r| Ok(Credential::Session { session: Box::new(session(r, 0)?), user: user(r, SESSION_WIDTH)? }))
            })
            .await
    }

    async fn create_group(&self, g: &Group) -> StoreResult<()> {
        let g = g.clone();
        self.engine
            .write(move |c| {
                c.execute(
                    "INSERT INTO groups (id, org_id, display_name, description, date_created) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![s(g.id), s(g.org_id), g.display_name, g.description, g.date_created.0],
                )
                .map_err(|e| match map_err(e) {
                    StoreError::Conflict(_) => StoreError::Conflict(format!("a group named '{}' already exists", g.display_name)),
                    other => other,
                })?;
                Ok(())
            })
            .await
    }

    async fn get_group(&self, org: OrgId, gid: GroupId) -> StoreResult<Option<Group>> {
        self.engine
            .read(move |c| {
                let sql = format!("SELECT {} FROM groups g WHERE g.org_id = ?1 AND g.id = ?2", group_cols("g"));
                one(c, &sql, &[&s(org), &s(gid)], |r| group(r, 0))
            })
            .await
    }

    async fn list_groups(&self, org: OrgId, req: PageRequest) -> StoreResult<Page<Group>> {
        self.engine
            .read(move |c| {
                page(c, &group_cols("g"), "FROM groups g WHERE g.org_id = ?1", "g.seq", &vec![p(s(org))], req, |r| {
                    group(r, 0)
                })
            })
            .await
    }

    async fn update_group(&self, g: &Group) -> StoreResult<bool> {
        let g = g.clone();
        self.engine
            .write(move |c| {
                c.execute(
                    "UPDATE groups SET display_name = ?3, description = ?4 WHERE org_id = ?1 AND id = ?2",
                    params![s(g.org_id), s(g.id), g.display_name, g.description],
                )
                .map(|n| n == 1)
                .map_err(|e| match map_err(e) {
                    StoreError::Conflict(_) => {
                        StoreError::Conflict(format!("a group named '{}' already exists", g.display_name))
                    }
                    other => other,
                })
            })
            .await
    }

    async fn delete_group(&self, org: OrgId, gid: GroupId) -> StoreResult<bool> {
        self.engine
            .write(move |c| {
                if !exists_in_org(c, "groups", org, &s(gid))? {
                    return Ok(false);
                }
                c.execute(
                    "DELETE FROM policy_attachments WHERE org_id = ?1 AND target_kind = 'group' AND target_id = ?2",
                    params![s(org), s(gid)],
                )
                .map_err(map_err)?;
                c.execute(
                    "DELETE FROM role_trusts WHERE org_id = ?1 AND principal_kind = 'group' AND principal_id = ?2",
                    params![s(org), s(gid)],
                )
                .map_err(map_err)?;
                c.execute("DELETE FROM groups WHERE org_id = ?1 AND id = ?2", params![s(org), s(gid)])
                    .map_err(map_err)?;
                Ok(true)
            })
            .await
    }

    async fn add_group_member(&self, org: OrgId, gid: GroupId, uid: UserId) -> StoreResult<bool> {
        self.engine
            .write(move |c| {
                if !exists_in_org(c, "groups", org, &s(gid))? {
                    return Err(StoreError::MissingReference("Group not found".into()));
                }
                if !exists_in_org(c, "users", org, &s(uid))? {
                    return Err(StoreError::MissingReference("Invalid user".into()));
                }
                c.execute(
                    "INSERT INTO group_members (org_id, group_id, user_id) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                    params![s(org), s(gid), s(uid)],
                )
                .map(|n| n == 1)
                .map_err(map_err)
            })
            .await
    }

    async fn remove_group_member(&self, org: OrgId, gid: GroupId, uid: UserId) -> StoreResult<bool> {
        self.engine
            .write(move |c| {
                c.execute(
                    "DELETE FROM group_members WHERE org_id = ?1 AND group_id = ?2 AND user_id = ?3",
                    params![s(org), s(gid), s(uid)],
                )
                .map(|n| n == 1)
                .map_err(map_err)
            })
            .await
    }

    async fn list_group_members(&self, org: OrgId, gid: GroupId, req: PageRequest) -> StoreResult<Page<User>> {
        self.engine
            .read(move |c| {
                page(
                    c,
                    &user_cols("u"),
                    "FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.org_id = ?1 AND m.group_id = ?2",
                    "m.seq",
                    &vec![p(s(org)), p(s(gid))],
                    req,
                    |r| user(r, 0),
                )
            })
            .await
    }

    async fn groups_of_user(&self, org: OrgId, uid: UserId) -> StoreResult<Vec<GroupId>> {
        self.engine
            .read(move |c| {
                let mut st = c
                    .prepare_cached(
                        "SELECT group_id FROM group_members WHERE org_id = ?1 AND user_id = ?2 ORDER BY seq",
                    )
                    .map_err(map_err)?;
                st.query_map(params![s(org), s(uid)], |r| id(r, 0))
                    .map_err(map_err)?
                    .collect::<Result<_, _>>()
                    .map_err(map_err)
            })
            .await
    }

    async fn create_policy(&self, policy: &Policy) -> StoreResult<()> {
        let pol = policy.clone();
        self.engine.write(move |c| insert_policy(c, &pol)).await
    }

    async fn get_policy(&self, org: OrgId, pid: PolicyId) -> StoreResult<Option<Policy>> {
        self.engine
            .read(move |c| {
                let sql = format!("SELECT {} FROM policies p WHERE p.org_id = ?1 AND p.id = ?2", policy_cols("p"));
                one(c, &sql, &[&s(org), &s(pid)], |r| policy(r, 0))
            })
            .await
    }

    async fn list_policies(&self, org: OrgId, req: PageRequest) -> StoreResult<Page<Policy>> {
        self.engine
            .read(move |c| {
                page(c, &policy_cols("p"), "FROM policies p WHERE p.org_id = ?1", "p.seq", &vec![p(s(org))], req, |r| {
                    policy(r, 0)
                })
            })
            .await
    }

    async fn update_policy(&self, pol: &Policy) -> StoreResult<bool> {
        let pol = pol.clone();
        self.engine
            .write(move |c| {
                c.execute(
                    "UPDATE policies SET name = ?3, description = ?4, document = ?5 WHERE org_id = ?1 AND id = ?2",
                    params![s(pol.org_id), s(pol.id), pol.name, pol.description, document_text(&pol.document)],
                )
                .map(|n| n == 1)
                .map_err(|e| match map_err(e) {
                    StoreError::Conflict(_) => {
                        StoreError::Conflict(format!("a policy named '{}' already exists", pol.name))
                    }
                    other => other,
                })
            })
            .await
    }

    async fn delete_policy(&self, org: OrgId, pid: PolicyId) -> StoreResult<bool> {
        self.engine
            .write(move |c| {
                c.execute("DELETE FROM policies WHERE org_id = ?1 AND id = ?2", params![s(org), s(pid)])
                    .map(|n| n == 1)
                    .map_err(map_err)
            })
            .await
    }

    async fn attach_policy(&self, org: OrgId, pid: PolicyId, target: PolicyTarget) -> StoreResult<bool> {
        self.engine
            .write(move |c| {
                let (kind, table, tid) = target_parts(target);
                if !exists_in_org(c, "policies", org, &s(pid))? {
                    return Err(StoreError::MissingReference("Policy not found".into()));
                }
                if !exists_in_org(c, table, org, &tid)? {
                    let what = match target {
                        PolicyTarget::User(_) => "Invalid user",
                        PolicyTarget::Group(_) => "Group not found",
                        PolicyTarget::Role(_) => "Role not found",
                    };
                    return Err(StoreError::MissingReference(what.into()));
                }
                c.execute(
                    "INSERT INTO policy_attachments (org_id, policy_id, target_kind, target_id) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                    params![s(org), s(pid), kind, tid],
                )
                .map(|n| n == 1)
                .map_err(map_err)
            })
            .await
    }

    async fn detach_policy(&self, org: OrgId, pid: PolicyId, target: PolicyTarget) -> StoreResult<bool> {
        self.engine
            .write(move |c| {
                let (kind, _, tid) = target_parts(target);
                c.execute(
                    "DELETE FROM policy_attachments WHERE org_id = ?1 AND policy_id = ?2 AND target_kind = ?3 AND target_id = ?4",
                    params![s(org), s(pid), kind, tid],
                )
                .map(|n| n == 1)
                .map_err(map_err)
            })
            .await
    }

    async fn list_attached_policies(
        &self,
        org: OrgId,
        target: PolicyTarget,
        req: PageRequest,
    ) -> StoreResult<Page<Policy>> {
        self.engine
            .read(move |c| {
                let (kind, _, tid) = target_parts(target);
                page(
                    c,
                    &policy_cols("p"),
                    "FROM policy_attachments a JOIN policies p ON p.id = a.policy_id WHERE a.org_id = ?1 AND a.target_kind = ?2 AND a.target_id = ?3",
                    "a.seq",
                    &vec![p(s(org)), p(kind), p(tid)],
                    req,
                    |r| policy(r, 0),
                )
            })
            .await
    }

    async fn list_policy_users(&self, org: OrgId, pid: PolicyId, req: PageRequest) -> StoreResult<Page<User>> {
        self.engine
            .read(move |c| {
                page(
                    c,
                    &user_cols("u"),
                    "FROM policy_attachments a JOIN users u ON u.id = a.target_id WHERE a.org_id = ?1 AND a.policy_id = ?2 AND a.target_kind = 'user'",
                    "a.seq",
                    &vec![p(s(org)), p(s(pid))],
                    req,
                    |r| user(r, 0),
                )
            })
            .await
    }

    async fn list_policy_groups(&self, org: OrgId, pid: PolicyId, req: PageRequest) -> StoreResult<Page<Group>> {
        self.engine
            .read(move |c| {
                page(
                    c,
                    &group_cols("g"),
                    "FROM policy_attachments a JOIN groups g ON g.id = a.target_id WHERE a.org_id = ?1 AND a.policy_id = ?2 AND a.target_kind = 'group'",
                    "a.seq",
                    &vec![p(s(org)), p(s(pid))],
                    req,
                    |r| group(r, 0),
                )
            })
            .await
    }

    async fn user_policy_documents(&self, org: OrgId, uid: UserId) -> StoreResult<Vec<PolicyDocument>> {
        self.engine
            .read(move |c| {
                documents(
                    c,
                    "SELECT p.document FROM policies p WHERE p.org_id = ?1 AND p.id IN ( \
                       SELECT policy_id FROM policy_attachments WHERE org_id = ?1 AND target_kind = 'user' AND target_id = ?2 \
                       UNION SELECT a.policy_id FROM policy_attachments a JOIN group_members m ON m.group_id = a.target_id \
                       WHERE a.org_id = ?1 AND a.target_kind = 'group' AND m.user_id = ?2) ORDER BY p.seq",
                    &[&s(org), &s(uid)],
                )
            })
            .await
    }

    async fn role_policy_documents(&self, org: OrgId, rid: RoleId) -> StoreResult<Vec<PolicyDocument>> {
        self.engine
            .read(move |c| {
                documents(
                    c,
                    "SELECT p.document FROM policy_attachments a JOIN policies p ON p.id = a.policy_id \
                     WHERE a.org_id = ?1 AND a.target_kind = 'role' AND a.target_id = ?2 ORDER BY a.seq",
                    &[&s(org), &s(rid)],
                )
            })
            .await
    }

    async fn create_role(&self, r: &Role) -> StoreResult<()> {
        let r = r.clone();
        self.engine
            .write(move |c| {
                c.execute(
                    "INSERT INTO roles (id, org_id, name, description, role_type, max_session_duration, date_created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![s(r.id), s(r.org_id), r.name, r.description, r.role_type.as_str(), r.max_session_duration.secs(), r.date_created.0],
                )
                .map_err(|e| match map_err(e) {
                    StoreError::Conflict(_) => StoreError::Conflict(format!("a role named '{}' already exists", r.name)),
                    other => other,
                })?;
                Ok(())
            })
            .await
    }

    async fn get_role(&self, org: OrgId, rid: RoleId) -> StoreResult<Option<Role>> {
        self.engine
            .read(move |c| {
                one(
                    c,
                    &format!("SELECT {ROLE_COLS} FROM roles r WHERE r.org_id = ?1 AND r.id = ?2"),
                    &[&s(org), &s(rid)],
                    |r| role(r, 0),
                )
            })
            .await
    }

    async fn list_roles(&self, org: OrgId, req: PageRequest) -> StoreResult<Page<Role>> {
        self.engine
            .read(move |c| {
                page(c, ROLE_COLS, "FROM roles r WHERE r.org_id = ?1", "r.seq", &vec![p(s(org))], req, |r| role(r, 0))
            })
            .await
    }

    async fn update_role(&self, r: &Role) -> StoreResult<bool> {
        let r = r.clone();
        self.engine
            .write(move |c| {
                c.execute(
                    "UPDATE roles SET name = ?3, description = ?4, role_type = ?5, max_session_duration = ?6 WHERE org_id = ?1 AND id = ?2",
                    params![s(r.org_id), s(r.id), r.name, r.description, r.role_type.as_str(), r.max_session_duration.secs()],
                )
                .map(|n| n == 1)
                .map_err(|e| match map_err(e) {
                    StoreError::Conflict(_) => StoreError::Conflict(format!("a role named '{}' already exists", r.name)),
                    other => other,
                })
            })
            .await
    }

    async fn delete_role(&self, org: OrgId, rid: RoleId) -> StoreResult<bool> {
        self.engine
            .write(move |c| {
                if !exists_in_org(c, "roles", org, &s(rid))? {
                    return Ok(false);
                }
                c.execute(
                    "DELETE FROM policy_attachments WHERE org_id = ?1 AND target_kind = 'role' AND target_id = ?2",
                    params![s(org), s(rid)],
                )
                .map_err(map_err)?;
                c.execute("DELETE FROM roles WHERE org_id = ?1 AND id = ?2", params![s(org), s(rid)])
                    .map_err(map_err)?;
                Ok(true)
            })
            .await
    }

    async fn create_trust(&self, t: &RoleTrust) -> StoreResult<()> {
        let t = t.clone();
        self.engine
            .write(move |c| {
                if !exists_in_org(c, "roles", t.org_id, &s(t.role_id))? {
                    return Err(StoreError::MissingReference("Role not found".into()));
                }
                let (kind, pid) = principal_parts(&t.principal);
                let (table, missing) = if kind == "user" { ("users", "Invalid user") } else { ("groups", "Group not found") };
                if !exists_in_org(c, table, t.org_id, &pid)? {
                    return Err(StoreError::MissingReference(missing.into()));
                }
                c.execute(
                    "INSERT INTO role_trusts (id, org_id, role_id, trust_type, principal_kind, principal_id, conditions, valid_until, date_created) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![s(t.id), s(t.org_id), s(t.role_id), t.trust_type, kind, pid, conditions_text(&t.conditions), t.valid_until.map(|v| v.0), t.date_created.0],
                )
                .map_err(map_err)?;
                Ok(())
            })
            .await
    }

    async fn get_trust(&self, org: OrgId, tid: TrustId) -> StoreResult<Option<RoleTrust>> {
        self.engine
            .read(move |c| {
                one(
                    c,
                    &format!("SELECT {TRUST_COLS} FROM role_trusts t WHERE t.org_id = ?1 AND t.id = ?2"),
                    &[&s(org), &s(tid)],
                    |r| trust(r, 0),
                )
            })
            .await
    }

    async fn list_trusts(&self, org: OrgId, rid: Option<RoleId>, req: PageRequest) -> StoreResult<Page<RoleTrust>> {
        self.engine
            .read(move |c| match rid {
                Some(rid) => page(
                    c,
                    TRUST_COLS,
                    "FROM role_trusts t WHERE t.org_id = ?1 AND t.role_id = ?2",
                    "t.seq",
                    &vec![p(s(org)), p(s(rid))],
                    req,
                    |r| trust(r, 0),
                ),
                None => {
                    page(c, TRUST_COLS, "FROM role_trusts t WHERE t.org_id = ?1", "t.seq", &vec![p(s(org))], req, |r| {
                        trust(r, 0)
                    })
                }
            })
            .await
    }

    async fn update_trust(&self, t: &RoleTrust) -> StoreResult<bool> {
        let t = t.clone();
        self.engine
            .write(move |c| {
                let (kind, pid) = principal_parts(&t.principal);
                let (table, missing) = if kind == "user" { ("users", "Invalid user") } else { ("groups", "Group not found") };
                if !exists_in_org(c, table, t.org_id, &pid)? {
                    return Err(StoreError::MissingReference(missing.into()));
                }
                c.execute(
                    "UPDATE role_trusts SET trust_type = ?3, principal_kind = ?4, principal_id = ?5, conditions = ?6, valid_until = ?7 WHERE org_id = ?1 AND id = ?2",
                    params![s(t.org_id), s(t.id), t.trust_type, kind, pid, conditions_text(&t.conditions), t.valid_until.map(|v| v.0)],
                )
                .map(|n| n == 1)
                .map_err(map_err)
            })
            .await
    }

    async fn delete_trust(&self, org: OrgId, tid: TrustId) -> StoreResult<bool> {
        self.engine
            .write(move |c| {
                c.execute("DELETE FROM role_trusts WHERE org_id = ?1 AND id = ?2", params![s(org), s(tid)])
                    .map(|n| n == 1)
                    .map_err(map_err)
            })
            .await
    }

    async fn role_trusts(&self, org: OrgId, rid: RoleId) -> StoreResult<Vec<RoleTrust>> {
        self.engine
            .read(move |c| {
                let sql = format!(
                    "SELECT {TRUST_COLS} FROM role_trusts t WHERE t.org_id = ?1 AND t.role_id = ?2 ORDER BY t.seq"
                );
                let mut st = c.prepare_cached(&sql).map_err(map_err)?;
                st.query_map(params![s(org), s(rid)], |r| trust(r, 0))
                    .map_err(map_err)?
                    .collect::<Result<_, _>>()
                    .map_err(map_err)
            })
            .await
    }

    async fn create_session(&self, sess: &Session, digest: &TokenDigest) -> StoreResult<()> {
        let (x, d) = (sess.clone(), *digest);
        self.engine.write(move |c| insert_session(c, &x, &d)).await
    }

    async fn get_session(&self, org: OrgId, sid: SessionId) -> StoreResult<Option<Session>> {
        self.engine
            .read(move |c| {
                one(
                    c,
                    &format!("SELECT {SESSION_COLS} FROM sessions s WHERE s.org_id = ?1 AND s.id = ?2"),
                    &[&s(org), &s(sid)],
                    |r| session(r, 0),
                )
            })
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
        self.engine
            .read(move |c| {
                let base = "FROM sessions s WHERE s.org_id = ?1 AND s.user_id = ?2 AND s.status = 'Active' \
                     AND s.expiration > ?3 AND (s.idle_time_expiration IS NULL OR s.idle_time_expiration > ?3)";
                let mut params = vec![p(s(org)), p(s(uid)), p(now.0)];
                let from_where = match kind {
                    Some(k) => {
                        params.push(p(k.as_str()));
                        format!("{base} AND s.kind = ?4")
                    }
                    None => base.to_owned(),
                };
                page(c, SESSION_COLS, &from_where, "s.seq", &params, req, |r| session(r, 0))
            })
            .await
    }

    async fn end_session(
        &self,
        org: OrgId,
        sid: SessionId,
        reason: EndReason,
        now: Timestamp,
    ) -> StoreResult<Option<Session>> {
        self.engine
            .write(move |c| {
                let n = c
                    .prepare_cached(
                        "UPDATE sessions SET status = ?3, end_reason = ?4, end_time = ?5, mod_time = ?5 WHERE org_id = ?1 AND id = ?2 AND status = 'Active'",
                    )
                    .and_then(|mut st| st.execute(params![s(org), s(sid), reason.status().as_str(), reason.as_str(), now.0]))
                    .map_err(map_err)?;
                if n == 0 {
                    return Ok(None);
                }
                one(c, &format!("SELECT {SESSION_COLS} FROM sessions s WHERE s.org_id = ?1 AND s.id = ?2"), &[&s(org), &s(sid)], |r| session(r, 0))
            })
            .await
    }

    async fn touch_session(&self, org: OrgId, sid: SessionId, at: Timestamp) -> StoreResult<()> {
        self.engine
            .write_unaudited(move |c| {
                c.prepare_cached(
                    "UPDATE sessions SET last_activity = max(last_activity, ?3), \
                     idle_time_expiration = min(expiration, max(last_activity, ?3) + idle_timeout) \
                     WHERE org_id = ?1 AND id = ?2 AND status = 'Active' AND idle_timeout IS NOT NULL",
                )
                .and_then(|mut st| st.execute(params![s(org), s(sid), at.0]))
                .map(|_| ())
                .map_err(map_err)
            })
            .await
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
                let ids = active_session_ids(c, org, uid, except)?;
                end_ids(c, org, &ids, reason, now)
            })
            .await
    }

    async fn sweep_sessions(&self, now: Timestamp) -> StoreResult<u64> {
        self.engine
            .write_unaudited(move |c| {
                // Idle first: a session whose idle deadline came before its absolute one ended
                // idle, even if both have passed by now.
                let idle = c
                    .prepare_cached(
                        "UPDATE sessions SET status = 'Ended', end_reason = 'idle_timeout', \
                         end_time = idle_time_expiration, mod_time = ?1 \
                         WHERE status = 'Active' AND idle_time_expiration <= ?1 AND idle_time_expiration < expiration",
                    )
                    .and_then(|mut st| st.execute(params![now.0]))
                    .map_err(map_err)?;
                let expired = c
                    .prepare_cached(
                        "UPDATE sessions SET status = 'Ended', end_reason = 'expired', end_time = expiration, \
                         mod_time = ?1 WHERE status = 'Active' AND expiration <= ?1",
                    )
                    .and_then(|mut st| st.execute(params![now.0]))
                    .map_err(map_err)?;
                Ok((expired + idle) as u64)
            })
            .await
    }

    async fn purge_sessions(&self, before: Timestamp) -> StoreResult<u64> {
        self.engine
            .write_unaudited(move |c| {
                c.prepare_cached("DELETE FROM gateway_keys WHERE expires < ?1")
                    .and_then(|mut st| st.execute(params![before.0]))
                    .map_err(map_err)?;
                c.prepare_cached("DELETE FROM sessions WHERE status != 'Active' AND end_time < ?1")
                    .and_then(|mut st| st.execute(params![before.0]))
                    .map(|n| n as u64)
                    .map_err(map_err)
            })
            .await
    }

    async fn find_login(&self, email: &Email) -> StoreResult<Vec<LoginRecord>> {
        let email = email.as_str().to_owned();
        self.engine
            .read(move |c| {
                let sql = format!(
                    "SELECT {}, u.password_hash, {LOGIN_STATE_COLS} FROM users u WHERE u.email = ?1 ORDER BY u.seq",
                    user_cols("u")
                );
                let mut st = c.prepare_cached(&sql).map_err(map_err)?;
                st.query_map(params![email], |r| {
                    Ok(LoginRecord { user: user(r, 0)?, password_hash: r.get(7)?, state: login_state(r, 8)? })
                })
                .map_err(map_err)?
                .collect::<Result<_, _>>()
                .map_err(map_err)
            })
            .await
    }

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
                let Some(state) = read_login_state(c, org, uid)? else { return Ok(None) };
                let claim = policy.claim(state, now);
                if claim.admitted {
                    write_login_state(c, org, uid, &claim.after)?;
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
                let Some(state) = read_login_state(c, org, uid)? else { return Ok(false) };
                write_login_state(c, org, uid, &policy.after_success(&state, attempt, now, &client))?;
                Ok(true)
            })
            .await
    }

    async fn clear_login_lock(&self, org: OrgId, uid: UserId) -> StoreResult<bool> {
        self.engine
            .write(move |c| {
                c.prepare_cached(
                    "UPDATE users SET window_failures = 0, window_start = NULL, locked_until = NULL, lock_count = 0 \
                     WHERE org_id = ?1 AND id = ?2",
                )
                .and_then(|mut st| st.execute(params![s(org), s(uid)]))
                .map(|n| n == 1)
                .map_err(map_err)
            })
            .await
    }

    async fn set_password(&self, org: OrgId, uid: UserId, hash: &str) -> StoreResult<bool> {
        let hash = hash.to_owned();
        self.engine
            .write(move |c| {
                c.execute(
                    "UPDATE users SET password_hash = ?3 WHERE org_id = ?1 AND id = ?2",
                    params![s(org), s(uid), hash],
                )
                .map(|n| n == 1)
                .map_err(map_err)
            })
            .await
    }

    async fn get_session_limits(&self, org: OrgId) -> StoreResult<SessionLimits> {
        self.engine
            .read(move |c| {
                let found = one(
                    c,
                    "SELECT idle_timeout, absolute_timeout, max_sessions_per_user FROM session_limits WHERE org_id = ?1",
                    &[&s(org)],
                    |r| {
                        Ok(SessionLimits {
                            idle_timeout: r.get(0)?,
                            absolute_timeout: r.get(1)?,
                            max_sessions_per_user: r.get::<_, i64>(2)? as u32,
                        })
                    },
                )?;
                Ok(found.unwrap_or_default())
            })
            .await
    }

    async fn put_session_limits(&self, org: OrgId, l: &SessionLimits) -> StoreResult<()> {
        let l = *l;
        self.engine
            .write(move |c| {
                c.execute(
                    "INSERT INTO session_limits (org_id, idle_timeout, absolute_timeout, max_sessions_per_user) \
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (org_id) DO UPDATE SET idle_timeout = excluded.idle_timeout, \
                     absolute_timeout = excluded.absolute_timeout, max_sessions_per_user = excluded.max_sessions_per_user",
                    params![s(org), l.idle_timeout, l.absolute_timeout, l.max_sessions_per_user as i64],
                )
                .map(|_| ())
                .map_err(map_err)
            })
            .await
    }

    async fn create_login_session(
        &self,
        sess: &Session,
        digest: &TokenDigest,
        max_active: u32,
        now: Timestamp,
    ) -> StoreResult<Vec<Session>> {
        let (x, d) = (sess.clone(), *digest);
        self.engine
            .write(move |c| {
                // Oldest first: everything beyond the newest (max_active - 1) makes room.
                let ids: Vec<String> = {
                    let mut st = c
                        .prepare_cached(
                            "SELECT id FROM sessions WHERE org_id = ?1 AND user_id = ?2 AND kind = ?3 AND status = 'Active' \
                             AND expiration > ?4 AND (idle_time_expiration IS NULL OR idle_time_expiration > ?4) \
                             ORDER BY seq DESC LIMIT -1 OFFSET ?5",
                        )
                        .map_err(map_err)?;
                    st.query_map(
                        params![s(x.org_id), s(x.user_id), x.kind.as_str(), now.0, (max_active.max(1) - 1) as i64],
                        |r| r.get(0),
                    )
                    .map_err(map_err)?
                    .collect::<Result<_, _>>()
                    .map_err(map_err)?
                };
                let ended = end_ids(c, x.org_id, &ids, EndReason::Replaced, now)?;
                insert_session(c, &x, &d)?;
                Ok(ended)
            })
            .await
    }

    async fn query_sessions(&self, org: OrgId, q: &SessionQuery) -> StoreResult<SessionQueryResult> {
        q.check().map_err(StoreError::Invalid)?;
        let q = q.clone();
        self.engine.read(move |c| query_sessions(c, org, &q)).await
    }

    async fn put_gateway_object(&self, o: &GatewayObject, create: bool) -> StoreResult<bool> {
        let o = o.clone();
        self.engine
            .write(move |c| {
                let sql = if create {
                    "INSERT INTO gateway_objects (id, org_id, kind, name, body, created, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                } else {
                    "UPDATE gateway_objects SET name = ?4, body = ?5, updated = ?7 WHERE id = ?1 AND org_id = ?2 AND kind = ?3"
                };
                let n = c
                    .prepare_cached(sql)
                    .and_then(|mut st| {
                        st.execute(params![s(o.id), s(o.org_id), o.kind.as_str(), o.name, o.body, o.created.0, o.updated.0])
                    })
                    .map_err(|e| match map_err(e) {
                        StoreError::Conflict(_) => StoreError::Conflict(format!(
                            "a {} named '{}' already exists",
                            o.kind.as_str(),
                            o.name.as_deref().unwrap_or_default()
                        )),
                        other => other,
                    })?;
                Ok(n == 1)
            })
            .await
    }

    async fn get_gateway_object(
        &self,
        org: OrgId,
        kind: GatewayKind,
        id: uuid::Uuid,
    ) -> StoreResult<Option<GatewayObject>> {
        self.engine
            .read(move |c| {
                one(
                    c,
                    "SELECT id, org_id, kind, name, body, created, updated FROM gateway_objects WHERE org_id = ?1 AND kind = ?2 AND id = ?3",
                    &[&s(org), &kind.as_str(), &s(id)],
                    |r| gateway_object(r, kind),
                )
            })
            .await
    }

    async fn list_gateway_objects(&self, org: Option<OrgId>, kind: GatewayKind) -> StoreResult<Vec<GatewayObject>> {
        self.engine
            .read(move |c| {
                let mut st = c
                    .prepare_cached(
                        "SELECT id, org_id, kind, name, body, created, updated FROM gateway_objects \
                         WHERE kind = ?1 AND (?2 IS NULL OR org_id = ?2) ORDER BY seq",
                    )
                    .map_err(map_err)?;
                st.query_map(params![kind.as_str(), org.map(s)], |r| gateway_object(r, kind))
                    .map_err(map_err)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(map_err)
            })
            .await
    }

    async fn delete_gateway_object(&self, org: OrgId, kind: GatewayKind, id: uuid::Uuid) -> StoreResult<bool> {
        self.engine
            .write(move |c| {
                c.execute(
                    "DELETE FROM gateway_objects WHERE org_id = ?1 AND kind = ?2 AND id = ?3",
                    params![s(org), kind.as_str(), s(id)],
                )
                .map(|n| n == 1)
                .map_err(map_err)
            })
            .await
    }

    async fn create_gateway_session(
        &self,
        sess: &Session,
        key: &TokenDigest,
        data: &str,
        key_expires: Timestamp,
    ) -> StoreResult<()> {
        let (x, k, data) = (sess.clone(), *key, data.to_owned());
        self.engine
            .write(move |c| {
                insert_session(c, &x, &k)?;
                c.prepare_cached(
                    "INSERT INTO gateway_keys (digest, org_id, session_id, data, expires) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .and_then(|mut st| st.execute(params![&k.0[..], s(x.org_id), s(x.id), data, key_expires.0]))
                .map_err(map_err)?;
                Ok(())
            })
            .await
    }

    async fn find_gateway_key(&self, key: &TokenDigest) -> StoreResult<Option<GatewayKey>> {
        let k = *key;
        self.engine
            .read(move |c| {
                let sql = format!(
                    "SELECT {SESSION_COLS}, {}, k.data, k.expires FROM gateway_keys k \
                     JOIN sessions s ON s.id = k.session_id JOIN users u ON u.id = s.user_id AND u.org_id = s.org_id \
                     WHERE k.digest = ?1",
                    user_cols("u")
                );
                one(c, &sql, &[&&k.0[..]], |r| {
                    let at = SESSION_WIDTH + USER_WIDTH;
                    Ok(GatewayKey {
                        session: session(r, 0)?,
                        user: user(r, SESSION_WIDTH)?,
                        data: r.get(at)?,
                        expires: Timestamp(r.get(at + 1)?),
                    })
                })
            })
            .await
    }

    async fn rekey_gateway_session(&self, rk: &GatewayRekey) -> StoreResult<bool> {
        let rk = rk.clone();
        self.engine
            .write_unaudited(move |c| {
                let active: Option<i64> = one(
                    c,
                    "SELECT 1 FROM sessions WHERE org_id = ?1 AND id = ?2 AND status = 'Active'",
                    &[&s(rk.org_id), &s(rk.session)],
                    |r| r.get(0),
                )?;
                if active.is_none() {
                    return Ok(false);
                }
                c.prepare_cached("UPDATE gateway_keys SET expires = min(expires, ?2) WHERE digest = ?1")
                    .and_then(|mut st| st.execute(params![&rk.old.0[..], rk.old_expires.0]))
                    .map_err(map_err)?;
                c.prepare_cached(
                    "INSERT INTO gateway_keys (digest, org_id, session_id, data, expires) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .and_then(|mut st| {
                    st.execute(params![&rk.new.0[..], s(rk.org_id), s(rk.session), rk.data, rk.new_expires.0])
                })
                .map_err(map_err)?;
                c.prepare_cached("UPDATE sessions SET mod_time = ?3 WHERE org_id = ?1 AND id = ?2")
                    .and_then(|mut st| st.execute(params![s(rk.org_id), s(rk.session), rk.now.0]))
                    .map_err(map_err)?;
                Ok(true)
            })
            .await
    }

    async fn record_audit_event(&self, event: &tessera_domain::audit::AuditEvent) -> StoreResult<()> {
        let e = event.clone();
        self.engine.write_unaudited(move |c| audit::insert(c, &e)).await
    }

    async fn query_audit_events(&self, org: OrgId, q: &SessionQuery) -> StoreResult<AuditQueryResult> {
        q.check().map_err(StoreError::Invalid)?;
        let q = q.clone();
        self.engine.read(move |c| audit::query(c, &s(org), &q)).await
    }

    async fn purge_audit_events(&self, before: Timestamp) -> StoreResult<u64> {
        self.engine
            .write_unaudited(move |c| {
                c.execute("DELETE FROM audit_events WHERE time < ?1", params![before.0])
                    .map(|n| n as u64)
                    .map_err(map_err)
            })
            .await
    }

    async fn delete_gateway_key(&self, key: &TokenDigest) -> StoreResult<()> {
        let k = *key;
        self.engine
            .write_unaudited(move |c| {
                c.execute("DELETE FROM gateway_keys WHERE digest = ?1", params![&k.0[..]]).map(|_| ()).map_err(map_err)
            })
            .await
    }
}

fn gateway_object(r: &Row<'_>, kind: GatewayKind) -> rusqlite::Result<GatewayObject> {
    Ok(GatewayObject {
        id: id(r, 0)?,
        org_id: id(r, 1)?,
        kind,
        name: r.get(3)?,
        body: r.get(4)?,
        created: Timestamp(r.get(5)?),
        updated: Timestamp(r.get(6)?),
    })
}

/// The sign-in state columns of `users`, in the order [`login_state`] reads them.
const LOGIN_STATE_COLS: &str = "u.failed_logins, u.window_failures, u.window_start, u.locked_until, u.lock_count, \
                                u.last_login_time, u.last_login_client, u.login_attempts, u.login_reset_by";

fn login_state(r: &Row<'_>, at: usize) -> rusqlite::Result<LoginState> {
    Ok(LoginState {
        failed_logins: r.get(at)?,
        window_failures: r.get(at + 1)?,
        window_start: r.get::<_, Option<i64>>(at + 2)?.map(Timestamp),
        locked_until: r.get::<_, Option<i64>>(at + 3)?.map(Timestamp),
        lock_count: r.get(at + 4)?,
        last_login_time: r.get::<_, Option<i64>>(at + 5)?.map(Timestamp),
        last_login_client: r.get(at + 6)?,
        attempts: r.get(at + 7)?,
        reset_by: r.get(at + 8)?,
    })
}

fn read_login_state(c: &Connection, org: OrgId, uid: UserId) -> StoreResult<Option<LoginState>> {
    one(
        c,
        &format!("SELECT {LOGIN_STATE_COLS} FROM users u WHERE u.org_id = ?1 AND u.id = ?2"),
        &[&s(org), &s(uid)],
        |r| login_state(r, 0),
    )
}

fn write_login_state(c: &Connection, org: OrgId, uid: UserId, st: &LoginState) -> StoreResult<()> {
    c.prepare_cached(
        "UPDATE users SET failed_logins = ?3, window_failures = ?4, window_start = ?5, locked_until = ?6, \
         lock_count = ?7, last_login_time = ?8, last_login_client = ?9, login_attempts = ?10, login_reset_by = ?11 \
         WHERE org_id = ?1 AND id = ?2",
    )
    .and_then(|mut q| {
        q.execute(params![
            s(org),
            s(uid),
            st.failed_logins,
            st.window_failures,
            st.window_start.map(|t| t.0),
            st.locked_until.map(|t| t.0),
            st.lock_count,
            st.last_login_time.map(|t| t.0),
            st.last_login_client,
            st.attempts,
            st.reset_by
        ])
    })
    .map(|_| ())
    .map_err(map_err)
}

/// Ids of a user's active sessions of every kind, but `except`.
fn active_session_ids(c: &Connection, org: OrgId, uid: UserId, except: Option<SessionId>) -> StoreResult<Vec<String>> {
    let mut st = c
        .prepare_cached("SELECT id FROM sessions WHERE org_id = ?1 AND user_id = ?2 AND status = 'Active' AND id != ?3")
        .map_err(map_err)?;
    st.query_map(params![s(org), s(uid), except.map(s).unwrap_or_default()], |r| r.get(0))
        .map_err(map_err)?
        .collect::<Result<_, _>>()
        .map_err(map_err)
}

fn end_ids(c: &Connection, org: OrgId, ids: &[String], reason: EndReason, now: Timestamp) -> StoreResult<Vec<Session>> {
    let mut ended = Vec::with_capacity(ids.len());
    for id in ids {
        c.prepare_cached(
            "UPDATE sessions SET status = ?3, end_reason = ?4, end_time = ?5, mod_time = ?5 \
             WHERE org_id = ?1 AND id = ?2 AND status = 'Active'",
        )
        .and_then(|mut st| st.execute(params![s(org), id, reason.status().as_str(), reason.as_str(), now.0]))
        .map_err(map_err)?;
        if let Some(sess) = one(
            c,
            &format!("SELECT {SESSION_COLS} FROM sessions s WHERE s.org_id = ?1 AND s.id = ?2"),
            &[&s(org), id],
            |r| session(r, 0),
        )? {
            ended.push(sess);
        }
    }
    Ok(ended)
}

fn insert_session(c: &Connection, x: &Session, d: &TokenDigest) -> StoreResult<()> {
    let idle_exp = x.idle_deadline(x.last_activity).map(|t| t.0);
    c.prepare_cached(
            "INSERT INTO sessions (id, org_id, kind, token_digest, user_id, user_email, role_id, role_name, session_name, auth_method, \
             duration, bound_ip, source_ip, conditions_met, create_time, mod_time, expiration, idle_timeout, last_activity, \
             idle_time_expiration, status, end_time, end_reason, failed_logins, last_login_time, last_login_client) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26)",
        )
        .and_then(|mut st| {
            st.execute(params![
                s(x.id),
                s(x.org_id),
                x.kind.as_str(),
                &d.0[..],
                s(x.user_id),
                x.user_email,
                x.role_id.map(s),
                x.role_name,
                x.session_name,
                x.auth_method,
                x.duration,
                x.bound_ip.map(|ip| ip.to_string()),
                x.source_ip,
                serde_json::to_string(&x.conditions_met).unwrap_or_else(|_| "[]".into()),
                x.created.0,
                x.modified.0,
                x.expires.0,
                x.idle_timeout,
                x.last_activity.0,
                idle_exp,
                x.status.as_str(),
                x.ended.map(|t| t.0),
                x.end_reason.map(|r| r.as_str()),
                x.failed_logins,
                x.last_login_time.map(|t| t.0),
                x.last_login_client
            ])
        })
        .map_err(map_err)?;
    Ok(())
}

fn bind_value(v: &SqlValue) -> Box<dyn ToSql + Send> {
    match v {
        SqlValue::Text(s) => Box::new(s.clone()),
        SqlValue::Int(n) => Box::new(*n),
        SqlValue::Bool(b) => Box::new(i64::from(*b)),
    }
}

fn query_sessions(c: &Connection, org: OrgId, q: &SessionQuery) -> StoreResult<SessionQueryResult> {
    let sql = record_query(q, Dialect::Sqlite, "sessions s", "s", SESSION_COLS, s(org));
    let (count, sessions, next) = run_record_query(c, &sql, q, SESSION_WIDTH, |r| session(r, 0))?;
    Ok(SessionQueryResult { count, sessions, next })
}

/// Runs a record query built by `record_query`: the count, the page's rows (read by `map`,
/// which has `width` columns), and where the next page starts.
pub(crate) fn run_record_query<T>(
    c: &Connection,
    sql: &QuerySql,
    q: &SessionQuery,
    width: usize,
    map: impl Fn(&Row<'_>) -> rusqlite::Result<T>,
) -> StoreResult<(Option<u64>, Vec<T>, Option<Keyset>)> {
    let count = match &sql.count {
        Some(count_sql) => {
            let bound: Params = sql.count_params.iter().map(bind_value).collect();
            let n: i64 = c
                .prepare(count_sql)
                .and_then(|mut st| st.query_row(&refs(&bound)[..], |r| r.get(0)))
                .map_err(map_err)?;
            Some(n as u64)
        }
        None => None,
    };
    let Some(rows_sql) = &sql.rows else { return Ok((count, vec![], None)) };
    let bound: Params = sql.params.iter().map(bind_value).collect();
    let keyed = !q.order.is_empty();
    let mut st = c.prepare(rows_sql).map_err(map_err)?;
    let mut rows: Vec<(T, i64, Option<rusqlite::types::Value>)> = st
        .query_map(&refs(&bound)[..], |r| {
            let key = if keyed { Some(r.get::<_, rusqlite::types::Value>(width + 1)?) } else { None };
            Ok((map(r)?, r.get(width)?, key))
        })
        .map_err(map_err)?
        .collect::<Result<_, _>>()
        .map_err(map_err)?;
    let more = rows.len() > q.top as usize;
    rows.truncate(q.top as usize);
    let next = match (more && q.keyset_capable(), rows.last()) {
        (true, Some((_, seq, key))) => Some(Keyset {
            value: match key {
                Some(rusqlite::types::Value::Integer(n)) => SqlValue::Int(*n),
                Some(rusqlite::types::Value::Text(t)) => SqlValue::Text(t.clone()),
                _ => SqlValue::Int(0),
            },
            seq: *seq,
        }),
        _ => None,
    };
    Ok((count, rows.into_iter().map(|(t, _, _)| t).collect(), next))
}
