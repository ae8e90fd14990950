//! The SQLite schema, as numbered migrations recorded in `PRAGMA user_version`.
//!
//! Ids are hyphenated UUID text; instants are INTEGER Unix seconds; every table has an
//! INTEGER `seq` primary key that orders rows by insertion and carries keyset paging.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: the spine.
    r#"
    CREATE TABLE organizations (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        date_created INTEGER NOT NULL
    );
    CREATE TABLE users (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        org_id TEXT NOT NULL REFERENCES organizations(id),
        email TEXT NOT NULL,
        first_name TEXT NOT NULL,
        last_name TEXT NOT NULL,
        status TEXT NOT NULL,
        password_hash TEXT,
        date_created INTEGER NOT NULL,
        UNIQUE (org_id, email)
    );
    CREATE TABLE api_keys (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        org_id TEXT NOT NULL,
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        digest BLOB NOT NULL UNIQUE,
        date_created INTEGER NOT NULL,
        date_expire INTEGER
    );
    CREATE INDEX api_keys_by_user ON api_keys (org_id, user_id, seq);
    CREATE TABLE groups (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        org_id TEXT NOT NULL REFERENCES organizations(id),
        display_name TEXT NOT NULL,
        description TEXT NOT NULL,
        date_created INTEGER NOT NULL,
        UNIQUE (org_id, display_name)
    );
    CREATE TABLE group_members (
        seq INTEGER PRIMARY KEY,
        org_id TEXT NOT NULL,
        group_id TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        UNIQUE (group_id, user_id)
    );
    CREATE INDEX group_members_by_user ON group_members (user_id);
    CREATE TABLE policies (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        org_id TEXT NOT NULL REFERENCES organizations(id),
        name TEXT NOT NULL,
        description TEXT NOT NULL,
        document TEXT NOT NULL,
        date_created INTEGER NOT NULL,
        UNIQUE (org_id, name)
    );
    CREATE TABLE policy_attachments (
        seq INTEGER PRIMARY KEY,
        org_id TEXT NOT NULL,
        policy_id TEXT NOT NULL REFERENCES policies(id) ON DELETE CASCADE,
        target_kind TEXT NOT NULL,
        target_id TEXT NOT NULL,
        UNIQUE (target_kind, target_id, policy_id)
    );
    CREATE INDEX policy_attachments_by_policy ON policy_attachments (policy_id, target_kind);
    CREATE TABLE roles (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        org_id TEXT NOT NULL REFERENCES organizations(id),
        name TEXT NOT NULL,
        description TEXT NOT NULL,
        role_type TEXT NOT NULL,
        max_session_duration INTEGER NOT NULL,
        date_created INTEGER NOT NULL,
        UNIQUE (org_id, name)
    );
    CREATE TABLE role_trusts (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        org_id TEXT NOT NULL,
        role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
        trust_type TEXT NOT NULL,
        principal_kind TEXT NOT NULL,
        principal_id TEXT NOT NULL,
        conditions TEXT NOT NULL,
        valid_until INTEGER,
        date_created INTEGER NOT NULL
    );
    CREATE INDEX role_trusts_by_role ON role_trusts (role_id, seq);
    CREATE INDEX role_trusts_by_principal ON role_trusts (principal_id);
    CREATE TABLE sessions (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        org_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        token_digest BLOB NOT NULL UNIQUE,
        user_id TEXT NOT NULL,
        user_email TEXT NOT NULL,
        role_id TEXT,
        role_name TEXT NOT NULL,
        session_name TEXT NOT NULL,
        auth_method TEXT NOT NULL,
        duration INTEGER NOT NULL,
        bound_ip TEXT,
        source_ip TEXT NOT NULL,
        conditions_met TEXT NOT NULL,
        create_time INTEGER NOT NULL,
        mod_time INTEGER NOT NULL,
        expiration INTEGER NOT NULL,
        idle_timeout INTEGER,
        last_activity INTEGER NOT NULL,
        idle_time_expiration INTEGER,
        status TEXT NOT NULL,
        end_time INTEGER,
        end_reason TEXT,
        failed_logins INTEGER NOT NULL,
        last_login_time INTEGER,
        last_login_client TEXT NOT NULL
    );
    CREATE INDEX sessions_by_user ON sessions (org_id, user_id, status, seq);
    CREATE INDEX sessions_by_create_time ON sessions (org_id, create_time, seq);
    CREATE INDEX sessions_by_status_expiration ON sessions (status, expiration);
    "#,
    // 2: sign-in (password state on users, per-organization session limits).
    r#"
    ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE users ADD COLUMN window_failures INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE users ADD COLUMN window_start INTEGER;
    ALTER TABLE users ADD COLUMN locked_until INTEGER;
    ALTER TABLE users ADD COLUMN lock_count INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE users ADD COLUMN last_login_time INTEGER;
    ALTER TABLE users ADD COLUMN last_login_client TEXT NOT NULL DEFAULT '';
    CREATE INDEX users_by_email ON users (email);
    CREATE TABLE session_limits (
        org_id TEXT PRIMARY KEY REFERENCES organizations(id),
        idle_timeout INTEGER NOT NULL,
        absolute_timeout INTEGER NOT NULL,
        max_sessions_per_user INTEGER NOT NULL
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
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        org_id TEXT NOT NULL REFERENCES organizations(id),
        kind TEXT NOT NULL,
        name TEXT,
        body TEXT NOT NULL,
        created INTEGER NOT NULL,
        updated INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX gateway_objects_by_name ON gateway_objects (org_id, kind, name);
    CREATE INDEX gateway_objects_by_kind ON gateway_objects (kind, seq);
    CREATE TABLE gateway_keys (
        digest BLOB PRIMARY KEY,
        org_id TEXT NOT NULL,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        data TEXT NOT NULL,
        expires INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX gateway_keys_by_session ON gateway_keys (session_id);
    "#,
    // 5: the session query by user email (the most common administrator question).
    r#"
    CREATE INDEX sessions_by_org_email ON sessions (org_id, user_email, seq);
    "#,
    // 6: sign-in attempts are claimed atomically and numbered; a disabled user's sessions
    // are terminated (before, disabling only suspended them, and enabling revived them).
    r#"
    ALTER TABLE users ADD COLUMN login_attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE users ADD COLUMN login_reset_by INTEGER NOT NULL DEFAULT 0;
    UPDATE sessions SET status = 'Terminated', end_reason = 'user_disabled',
        end_time = CAST(strftime('%s', 'now') AS INTEGER), mod_time = CAST(strftime('%s', 'now') AS INTEGER)
    WHERE status = 'Active' AND user_id IN (SELECT id FROM users WHERE status = 'disabled');
    "#,
    // 7: the audit trail. No foreign keys: an event must never make its change fail, and it
    // outlives the objects it names. Few indexes: every change writes a row, so each index is
    // paid on the hot path (one for the query, one for the retention purge).
    r#"
    CREATE TABLE audit_events (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        org_id TEXT NOT NULL,
        time INTEGER NOT NULL,
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
];

/// Brings the database up to the newest schema, each migration in its own transaction.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: usize = conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}
