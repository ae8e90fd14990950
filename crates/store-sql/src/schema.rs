//! The schema both SQL backends migrate to: one numbered list of migrations, written once
//! and rendered per dialect (the column types and the few spellings that differ), so the two
//! databases hold the same tables, columns and indexes under the same migration numbers.
//!
//! Ids are hyphenated UUID text; instants are 64-bit integer Unix seconds; every table has an
//! integer `seq` primary key that orders rows by insertion and carries keyset paging.

use crate::Dialect;

const MIGRATIONS: &[&str] = &[
    // 1: the spine.
    r#"
    CREATE TABLE organizations (
        seq {SEQ},
        id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        date_created {INT} NOT NULL
    );
    CREATE TABLE users (
        seq {SEQ},
        id TEXT NOT NULL UNIQUE,
        org_id TEXT NOT NULL REFERENCES organizations(id),
        email TEXT NOT NULL,
        first_name TEXT NOT NULL,
        last_name TEXT NOT NULL,
        status TEXT NOT NULL,
        password_hash TEXT,
        date_created {INT} NOT NULL,
        UNIQUE (org_id, email)
    );
    CREATE TABLE api_keys (
        seq {SEQ},
        id TEXT NOT NULL UNIQUE,
        org_id TEXT NOT NULL,
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        digest {BYTES} NOT NULL UNIQUE,
        date_created {INT} NOT NULL,
        date_expire {INT}
    );
    CREATE INDEX api_keys_by_user ON api_keys (org_id, user_id, seq);
    CREATE TABLE groups (
        seq {SEQ},
        id TEXT NOT NULL UNIQUE,
        org_id TEXT NOT NULL REFERENCES organizations(id),
        display_name TEXT NOT NULL,
        description TEXT NOT NULL,
        date_created {INT} NOT NULL,
        UNIQUE (org_id, display_name)
    );
    CREATE TABLE group_members (
        seq {SEQ},
        org_id TEXT NOT NULL,
        group_id TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        UNIQUE (group_id, user_id)
    );
    CREATE INDEX group_members_by_user ON group_members (user_id);
    CREATE TABLE policies (
        seq {SEQ},
        id TEXT NOT NULL UNIQUE,
        org_id TEXT NOT NULL REFERENCES organizations(id),
        name TEXT NOT NULL,
        description TEXT NOT NULL,
        document TEXT NOT NULL,
        date_created {INT} NOT NULL,
        UNIQUE (org_id, name)
    );
    CREATE TABLE policy_attachments (
        seq {SEQ},
        org_id TEXT NOT NULL,
        policy_id TEXT NOT NULL REFERENCES policies(id) ON DELETE CASCADE,
        target_kind TEXT NOT NULL,
        target_id TEXT NOT NULL,
        UNIQUE (target_kind, target_id, policy_id)
    );
    CREATE INDEX policy_attachments_by_policy ON policy_attachments (policy_id, target_kind);
    CREATE TABLE roles (
        seq {SEQ},
        id TEXT NOT NULL UNIQUE,
        org_id TEXT NOT NULL REFERENCES organizations(id),
        name TEXT NOT NULL,
        description TEXT NOT NULL,
        role_type TEXT NOT NULL,
        max_session_duration {INT} NOT NULL,
        date_created {INT} NOT NULL,
        UNIQUE (org_id, name)
    );
    CREATE TABLE role_trusts (
        seq {SEQ},
        id TEXT NOT NULL UNIQUE,
        org_id TEXT NOT NULL,
        role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
        trust_type TEXT NOT NULL,
        principal_kind TEXT NOT NULL,
        principal_id TEXT NOT NULL,
        conditions TEXT NOT NULL,
        valid_until {INT},
        date_created {INT} NOT NULL
    );
    CREATE INDEX role_trusts_by_role ON role_trusts (role_id, seq);
    CREATE INDEX role_trusts_by_principal ON role_trusts (principal_id);
    CREATE TABLE sessions (
        seq {SEQ},
        id TEXT NOT NULL UNIQUE,
        org_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        token_digest {BYTES} NOT NULL UNIQUE,
        user_id TEXT NOT NULL,
        user_email TEXT NOT NULL,
        role_id TEXT,
        role_name TEXT NOT NULL,
        session_name TEXT NOT NULL,
        auth_method TEXT NOT NULL,
        duration {INT} NOT NULL,
        bound_ip TEXT,
        source_ip TEXT NOT NULL,
        conditions_met TEXT NOT NULL,
        create_time {INT} NOT NULL,
        mod_time {INT} NOT NULL,
        expiration {INT} NOT NULL,
        idle_timeout {INT},
        last_activity {INT} NOT NULL,
        idle_time_expiration {INT},
        status TEXT NOT NULL,
        end_time {INT},
        end_reason TEXT,
        failed_logins {INT} NOT NULL,
        last_login_time {INT},
        last_login_client TEXT NOT NULL
    );
    CREATE INDEX sessions_by_user ON sessions (org_id, user_id, status, seq);
    CREATE INDEX sessions_by_create_time ON sessions (org_id, create_time, seq);
    CREATE INDEX sessions_by_status_expiration ON sessions (status, expiration);
    "#,
    // 2: sign-in (password state on users, per-organization session limits).
    r#"
    ALTER TABLE users ADD COLUMN failed_logins {INT} NOT NULL DEFAULT 0;
    ALTER TABLE users ADD COLUMN window_failures {INT} NOT NULL DEFAULT 0;
    ALTER TABLE users ADD COLUMN window_start {INT};
    ALTER TABLE users ADD COLUMN locked_until {INT};
    ALTER TABLE users ADD COLUMN lock_count {INT} NOT NULL DEFAULT 0;
    ALTER TABLE users ADD COLUMN last_login_time {INT};
    ALTER TABLE users ADD COLUMN last_login_client TEXT NOT NULL DEFAULT '';
    CREATE INDEX users_by_email ON users (email);
    CREATE TABLE session_limits (
        org_id TEXT PRIMARY KEY REFERENCES organizations(id),
        idle_timeout {INT} NOT NULL,
        absolute_timeout {INT} NOT NULL,
        max_sessions_per_user {INT} NOT NULL
    );
    CREATE INDEX sessions_by_status_idle ON sessions (status, idle_time_expiration);
    CREATE INDEX sessions_by_end_time ON sessions (end_time) WHERE end_time IS NOT NULL;
    "#,
    // 3: the session query's common filters and orders.
    r#"
    CREATE INDEX sessions_by_org_status_time ON sessions (org_id, status, create_time, seq);
    CREATE INDEX sessions_by_org_kind_time ON sessions (org_id, kind, create_time, seq);
    CREATE INDEX sessions_by_org_expiration ON sessions (org_id, expiration, seq);
    "#,
    // 4: the gateway: Kong-shaped objects and server-side session keys.
    r#"
    CREATE TABLE gateway_objects (
        seq {SEQ},
        id TEXT NOT NULL UNIQUE,
        org_id TEXT NOT NULL REFERENCES organizations(id),
        kind TEXT NOT NULL,
        name TEXT,
        body TEXT NOT NULL,
        created {INT} NOT NULL,
        updated {INT} NOT NULL
    );
    CREATE UNIQUE INDEX gateway_objects_by_name ON gateway_objects (org_id, kind, name);
    CREATE INDEX gateway_objects_by_kind ON gateway_objects (kind, seq);
    CREATE TABLE gateway_keys (
        digest {BYTES} PRIMARY KEY,
        org_id TEXT NOT NULL,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        data TEXT NOT NULL,
        expires {INT} NOT NULL
    ) {WITHOUT_ROWID};
    CREATE INDEX gateway_keys_by_session ON gateway_keys (session_id);
    "#,
    // 5: the session query by user email (the most common administrator question).
    r#"
    CREATE INDEX sessions_by_org_email ON sessions (org_id, user_email, seq);
    "#,
    // 6: sign-in attempts are claimed atomically and numbered; a disabled user's sessions
    // are terminated (before, disabling only suspended them, and enabling revived them).
    r#"
    ALTER TABLE users ADD COLUMN login_attempts {INT} NOT NULL DEFAULT 0;
    ALTER TABLE users ADD COLUMN login_reset_by {INT} NOT NULL DEFAULT 0;
    UPDATE sessions SET status = 'Terminated', end_reason = 'user_disabled',
        end_time = {NOW}, mod_time = {NOW}
    WHERE status = 'Active' AND user_id IN (SELECT id FROM users WHERE status = 'disabled');
    "#,
    // 7: the audit trail. No foreign keys: an event must never make its change fail, and it
    // outlives the objects it names. Few indexes: every change writes a row, so each index is
    // paid on the hot path (one for the query, one for the retention purge).
    r#"
    CREATE TABLE audit_events (
        seq {SEQ},
        id TEXT NOT NULL,
        org_id TEXT NOT NULL,
        time {INT} NOT NULL,
        actor_kind TEXT NOT NULL,
        actor_id TEXT NOT NULL,
        actor_email TEXT NOT NULL,
        credential_id TEXT NOT NULL,
        action TEXT NOT NULL,
        target_kind TEXT NOT NULL,
        target_id TEXT NOT NULL,
        source_ip TEXT NOT NULL,
        request_id TEXT NOT NULL,
        result TEXT NOT NULL,
        reason TEXT NOT NULL,
        CHECK (action <> '')
    );
    CREATE INDEX audit_events_by_org ON audit_events (org_id, seq);
    CREATE INDEX audit_events_by_time ON audit_events (time);
    "#,
    // 8: workload identity. OIDC issuers (inline keys as a JWKS JSON text, null when the keys
    // are discovered); a workload's session names its issuer, its subject sits in
    // `user_email` and its `user_id` is empty (see `statements::principal_columns`).
    r#"
    CREATE TABLE oidc_issuers (
        seq {SEQ},
        id TEXT NOT NULL UNIQUE,
        org_id TEXT NOT NULL REFERENCES organizations(id),
        source TEXT NOT NULL,
        uri TEXT NOT NULL,
        inline_keys TEXT,
        date_created {INT} NOT NULL
    );
    CREATE INDEX oidc_issuers_by_org ON oidc_issuers (org_id, seq);
    ALTER TABLE sessions ADD COLUMN oidc_issuer_id TEXT;
    CREATE INDEX sessions_by_org_issuer ON sessions (org_id, oidc_issuer_id, seq);
    "#,
    // 9: assignable roles assigned to users and groups (their policies join the users'), and
    // a session's own inline policy (AWS STS's session policy; null when none was given).
    // The foreign keys remove an assignment with its role, user or group.
    r#"
    CREATE TABLE role_user_assignments (
        seq {SEQ},
        org_id TEXT NOT NULL,
        role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        date_assigned {INT} NOT NULL,
        UNIQUE (role_id, user_id)
    );
    CREATE INDEX role_user_assignments_by_user ON role_user_assignments (user_id);
    CREATE TABLE role_group_assignments (
        seq {SEQ},
        org_id TEXT NOT NULL,
        role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
        group_id TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
        date_assigned {INT} NOT NULL,
        UNIQUE (role_id, group_id)
    );
    CREATE INDEX role_group_assignments_by_group ON role_group_assignments (group_id);
    ALTER TABLE sessions ADD COLUMN session_policy TEXT;
    "#,
    // 10: fewer session indexes: every session insert (an assume-role is one) writes each
    // index that covers the row, so each kept index names the query it serves:
    // - `id` UNIQUE: one session by id (whoami on a miss, get, terminate, end);
    // - `token_digest` UNIQUE: a token to its session (authentication on a cache miss);
    // - sessions_by_user (org_id, user_id, status, seq): a user's active sessions (the
    //   per-user cap at sign-in, ending a user's sessions);
    // - sessions_by_create_time (org_id, create_time, seq): the session query, unfiltered or
    //   by time, newest or oldest first;
    // - sessions_by_org_status_time (org_id, status, create_time, seq): the session query by
    //   status (Intersight's default view);
    // - sessions_by_org_email (org_id, user_email, seq): the session query by user email;
    // - sessions_by_status_expiration, sessions_by_status_idle: the sweep's expired and idle
    //   sessions (and the session query's own sweep, at most once a second);
    // - sessions_by_end_time (partial: ended sessions only): the retention purge.
    // Dropped: by kind and by expiration per organization (rare query shapes; a kind filter
    // matches a large share, which the time order reaches quickly), and the issuer index
    // now covers only sessions that have an issuer (a filter on it implies one).
    r#"
    DROP INDEX IF EXISTS sessions_by_org_kind_time;
    DROP INDEX IF EXISTS sessions_by_org_expiration;
    DROP INDEX IF EXISTS sessions_by_org_issuer;
    CREATE INDEX sessions_by_org_issuer ON sessions (org_id, oidc_issuer_id, seq) WHERE oidc_issuer_id IS NOT NULL;
    "#,
    // 11: the users list without a scan. `users_by_org` serves its page (an index range in
    // `seq` order for one organization: before, SQLite sorted every user of the organization
    // and PostgreSQL could walk past other organizations' users), and `list_totals` holds
    // its `meta.total`, kept by triggers in the transaction of every insert and delete, so
    // a page no longer counts the organization's users (`SELECT count(*)` over 100 000
    // users took 5-20 ms). Triggers rather than a statement beside each write: the total is
    // exact whichever path writes the table. The backfill runs after the triggers exist: on
    // PostgreSQL creating a trigger waits for transactions writing the table, and the
    // backfill's snapshot then sees their rows; the triggers count what comes after.
    r#"
    CREATE INDEX users_by_org ON users (org_id, seq);
    CREATE TABLE list_totals (
        org_id TEXT NOT NULL,
        list TEXT NOT NULL,
        total {INT} NOT NULL,
        PRIMARY KEY (org_id, list)
    ) {WITHOUT_ROWID};
    {USERS_TOTAL_TRIGGERS}
    INSERT INTO list_totals (org_id, list, total) SELECT org_id, 'users', count(*) FROM users GROUP BY org_id;
    "#,
    // 12: one `session` plugin per scope on every node at once. Each node refused a second
    // one by reading first, which two nodes could both pass; `scope_key` (set for session
    // plugins only, NULL for every other object, and NULLs never collide) is now unique per
    // organization and kind. The backfill gives existing session plugins their key; where
    // a race already left two in one scope, the oldest keeps it (the one the gateway
    // applies), and the newer stays keyless until it is changed.
    r#"
    ALTER TABLE gateway_objects ADD COLUMN scope_key TEXT;
    UPDATE gateway_objects SET scope_key = {SESSION_PLUGIN_SCOPE}
        WHERE kind = 'plugin' AND {PLUGIN_NAME} = 'session';
    UPDATE gateway_objects SET scope_key = NULL WHERE scope_key IS NOT NULL AND EXISTS (
        SELECT 1 FROM gateway_objects older WHERE older.org_id = gateway_objects.org_id
        AND older.kind = gateway_objects.kind AND older.scope_key = gateway_objects.scope_key
        AND older.seq < gateway_objects.seq);
    CREATE UNIQUE INDEX gateway_objects_scope_key_unique ON gateway_objects (org_id, kind, scope_key);
    "#,
    // 13: references between gateway objects the database itself keeps (a service's CA
    // certificates). The app checks that a named object exists before it writes, but a
    // delete on another node can pass between that check and the write; the foreign keys
    // decide instead: naming a deleted object fails, and deleting a named object fails
    // (PostgreSQL locks the named row for the writer's transaction, so neither can slip
    // past the other). A reference goes with the object that holds it.
    r#"
    CREATE TABLE gateway_refs (
        org_id TEXT NOT NULL,
        from_id TEXT NOT NULL REFERENCES gateway_objects(id) ON DELETE CASCADE,
        to_id TEXT NOT NULL REFERENCES gateway_objects(id),
        PRIMARY KEY (from_id, to_id)
    ) {WITHOUT_ROWID};
    CREATE INDEX gateway_refs_by_to ON gateway_refs (to_id);
    "#,
    // 14: the database keeps every reference between gateway objects, not only a service's
    // CA certificates: a route's service, and a plugin's route and service. Each node checked
    // these by reading first, which a delete on another node could pass: a route could be
    // left naming a deleted service, and a plugin created while its route was deleted could
    // outlive it. The backfill reads the references from the stored bodies. A reference
    // whose object is already gone (left by such a race) is skipped, so the migration never
    // fails on one: the object keeps its body but nothing guards that reference (the gateway
    // skips a route without its service and applies a plugin only on its route or service,
    // so it acts on nothing), and writing it again is refused until it names an object that
    // exists; deleting it works as for any object.
    r#"
    INSERT INTO gateway_refs (org_id, from_id, to_id)
        SELECT o.org_id, o.id, t.id FROM gateway_objects o JOIN gateway_objects t
        ON t.org_id = o.org_id AND t.kind = 'service' AND t.id = {BODY_SERVICE_ID}
        WHERE o.kind IN ('route', 'plugin');
    INSERT INTO gateway_refs (org_id, from_id, to_id)
        SELECT o.org_id, o.id, t.id FROM gateway_objects o JOIN gateway_objects t
        ON t.org_id = o.org_id AND t.kind = 'route' AND t.id = {BODY_ROUTE_ID}
        WHERE o.kind = 'plugin';
    "#,
];

/// A session plugin's `scope_key` as the app writes it (`tessera_app`'s gateway): its
/// route's and service's ids, `*` for none.
const SQLITE_SESSION_PLUGIN_SCOPE: &str = "'session route=' || coalesce(json_extract(body, '$.route.id'), '*') \
     || ' service=' || coalesce(json_extract(body, '$.service.id'), '*')";
const POSTGRES_SESSION_PLUGIN_SCOPE: &str = "'session route=' \
     || coalesce(jsonb_extract_path_text(body::jsonb, 'route', 'id'), '*') \
     || ' service=' || coalesce(jsonb_extract_path_text(body::jsonb, 'service', 'id'), '*')";

/// SQLite's triggers keeping `list_totals` for `users` (migration 11).
const SQLITE_USERS_TOTAL_TRIGGERS: &str = r#"
    CREATE TRIGGER users_total_insert AFTER INSERT ON users BEGIN
        INSERT INTO list_totals (org_id, list, total) VALUES (NEW.org_id, 'users', 1)
        ON CONFLICT (org_id, list) DO UPDATE SET total = total + 1;
    END;
    CREATE TRIGGER users_total_delete AFTER DELETE ON users BEGIN
        UPDATE list_totals SET total = total - 1 WHERE org_id = OLD.org_id AND list = 'users';
    END;
"#;

/// PostgreSQL's triggers keeping `list_totals` for `users` (migration 11), over one function
/// that takes the list's name. Concurrent inserts in one organization serialize on its total's
/// row until they commit (an `UPDATE` waits for the row's lock, then adds to the newest
/// value), so no increment is lost; user creation is not a hot path.
const POSTGRES_USERS_TOTAL_TRIGGERS: &str = r#"
    CREATE FUNCTION tessera_list_total() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO list_totals (org_id, list, total) VALUES (NEW.org_id, TG_ARGV[0], 1)
            ON CONFLICT (org_id, list) DO UPDATE SET total = list_totals.total + 1;
        ELSE
            UPDATE list_totals SET total = total - 1 WHERE org_id = OLD.org_id AND list = TG_ARGV[0];
        END IF;
        RETURN NULL;
    END $$;
    CREATE TRIGGER users_total_insert AFTER INSERT ON users
        FOR EACH ROW EXECUTE FUNCTION tessera_list_total('users');
    CREATE TRIGGER users_total_delete AFTER DELETE ON users
        FOR EACH ROW EXECUTE FUNCTION tessera_list_total('users');
"#;

/// The migrations, numbered from 1, in `d`'s spelling.
pub fn migrations(d: Dialect) -> Vec<String> {
    let words: &[(&str, &str)] = match d {
        Dialect::Sqlite => &[
            ("{SEQ}", "INTEGER PRIMARY KEY"),
            ("{INT}", "INTEGER"),
            ("{BYTES}", "BLOB"),
            ("{NOW}", "CAST(strftime('%s', 'now') AS INTEGER)"),
            // Keyed by the digest alone: no rowid to keep beside it.
            ("{WITHOUT_ROWID}", "WITHOUT ROWID"),
            ("{USERS_TOTAL_TRIGGERS}", SQLITE_USERS_TOTAL_TRIGGERS),
            ("{SESSION_PLUGIN_SCOPE}", SQLITE_SESSION_PLUGIN_SCOPE),
            ("{PLUGIN_NAME}", "json_extract(body, '$.name')"),
            ("{BODY_SERVICE_ID}", "json_extract(o.body, '$.service.id')"),
            ("{BODY_ROUTE_ID}", "json_extract(o.body, '$.route.id')"),
        ],
        Dialect::Postgres => &[
            ("{SEQ}", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
            ("{INT}", "BIGINT"),
            ("{BYTES}", "BYTEA"),
            ("{NOW}", "extract(epoch FROM now())::BIGINT"),
            ("{WITHOUT_ROWID}", ""),
            ("{USERS_TOTAL_TRIGGERS}", POSTGRES_USERS_TOTAL_TRIGGERS),
            ("{SESSION_PLUGIN_SCOPE}", POSTGRES_SESSION_PLUGIN_SCOPE),
            ("{PLUGIN_NAME}", "jsonb_extract_path_text(body::jsonb, 'name')"),
            ("{BODY_SERVICE_ID}", "jsonb_extract_path_text(o.body::jsonb, 'service', 'id')"),
            ("{BODY_ROUTE_ID}", "jsonb_extract_path_text(o.body::jsonb, 'route', 'id')"),
        ],
    };
    MIGRATIONS.iter().map(|m| words.iter().fold((*m).to_owned(), |sql, (from, to)| sql.replace(from, to))).collect()
}

/// Where a database's schema stands against the migrations this Tessera knows
/// (`tessera migrate --check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaStatus {
    /// Migrations applied (0: an empty or missing database).
    pub current: usize,
    /// Migrations this Tessera knows.
    pub known: usize,
}

impl SchemaStatus {
    pub fn pending(&self) -> usize {
        self.known.saturating_sub(self.current)
    }
    pub fn is_newer(&self) -> bool {
        self.current > self.known
    }
}

/// Why a node refuses a database a newer Tessera has migrated (both backends say the same).
pub fn newer_schema(found: usize, known: usize) -> String {
    format!(
        "the database's schema is version {found}, newer than this Tessera knows ({known}): \
         run the newer Tessera, or restore a backup taken before it migrated"
    )
}

/// PostgreSQL databases migrated before the numbering was shared counted five migrations:
/// their first held what is now 1 to 3, and each later one is now two further on.
pub fn postgres_version_from_old_numbering(old: i64) -> i64 {
    if old <= 0 { 0 } else { old + 2 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_rendered() {
        for d in [Dialect::Sqlite, Dialect::Postgres] {
            for m in migrations(d) {
                assert!(!m.contains('{'), "{m}");
            }
        }
    }
}
