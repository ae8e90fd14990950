//! The PostgreSQL schema, as numbered migrations recorded in `tessera_schema_version`,
//! applied under an advisory lock so nodes starting together never race.

pub const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE organizations (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        date_created BIGINT NOT NULL
    );
    CREATE TABLE users (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        org_id TEXT NOT NULL REFERENCES organizations(id),
        email TEXT NOT NULL,
        first_name TEXT NOT NULL,
        last_name TEXT NOT NULL,
        status TEXT NOT NULL,
        password_hash TEXT,
        date_created BIGINT NOT NULL,
        failed_logins BIGINT NOT NULL DEFAULT 0,
        window_failures BIGINT NOT NULL DEFAULT 0,
        window_start BIGINT,
        locked_until BIGINT,
        lock_count BIGINT NOT NULL DEFAULT 0,
        last_login_time BIGINT,
        last_login_client TEXT NOT NULL DEFAULT '',
        UNIQUE (org_id, email)
    );
    CREATE INDEX users_by_email ON users (email);
    CREATE TABLE api_keys (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        org_id TEXT NOT NULL,
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        digest BYTEA NOT NULL UNIQUE,
        date_created BIGINT NOT NULL,
        date_expire BIGINT
    );
    CREATE INDEX api_keys_by_user ON api_keys (org_id, user_id, seq);
    CREATE TABLE groups (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        org_id TEXT NOT NULL REFERENCES organizations(id),
        display_name TEXT NOT NULL,
        description TEXT NOT NULL,
        date_created BIGINT NOT NULL,
        UNIQUE (org_id, display_name)
    );
    CREATE TABLE group_members (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        org_id TEXT NOT NULL,
        group_id TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        UNIQUE (group_id, user_id)
    );
    CREATE INDEX group_members_by_user ON group_members (user_id);
    CREATE TABLE policies (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        org_id TEXT NOT NULL REFERENCES organizations(id),
        name TEXT NOT NULL,
        description TEXT NOT NULL,
        document TEXT NOT NULL,
        date_created BIGINT NOT NULL,
        UNIQUE (org_id, name)
    );
    CREATE TABLE policy_attachments (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        org_id TEXT NOT NULL,
        policy_id TEXT NOT NULL REFERENCES policies(id) ON DELETE CASCADE,
        target_kind TEXT NOT NULL,
        target_id TEXT NOT NULL,
        UNIQUE (target_kind, target_id, policy_id)
    );
    CREATE INDEX policy_attachments_by_policy ON policy_attachments (policy_id, target_kind);
    CREATE TABLE roles (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        org_id TEXT NOT NULL REFERENCES organizations(id),
        name TEXT NOT NULL,
        description TEXT NOT NULL,
        role_type TEXT NOT NULL,
        max_session_duration BIGINT NOT NULL,
        date_created BIGINT NOT NULL,
        UNIQUE (org_id, name)
    );
    CREATE TABLE role_trusts (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        org_id TEXT NOT NULL,
        role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
        trust_type TEXT NOT NULL,
        principal_kind TEXT NOT NULL,
        principal_id TEXT NOT NULL,
        conditions TEXT NOT NULL,
        valid_until BIGINT,
        date_created BIGINT NOT NULL
    );
    CREATE INDEX role_trusts_by_role ON role_trusts (role_id, seq);
    CREATE INDEX role_trusts_by_principal ON role_trusts (principal_id);
    CREATE TABLE sessions (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        org_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        token_digest BYTEA NOT NULL UNIQUE,
        user_id TEXT NOT NULL,
        user_email TEXT NOT NULL,
        role_id TEXT,
        role_name TEXT NOT NULL,
        session_name TEXT NOT NULL,
        auth_method TEXT NOT NULL,
        duration BIGINT NOT NULL,
        bound_ip TEXT,
        source_ip TEXT NOT NULL,
        conditions_met TEXT NOT NULL,
        create_time BIGINT NOT NULL,
        mod_time BIGINT NOT NULL,
        expiration BIGINT NOT NULL,
        idle_timeout BIGINT,
        last_activity BIGINT NOT NULL,
        idle_time_expiration BIGINT,
        status TEXT NOT NULL,
        end_time BIGINT,
        end_reason TEXT,
        failed_logins BIGINT NOT NULL,
        last_login_time BIGINT,
        last_login_client TEXT NOT NULL
    );
    CREATE INDEX sessions_by_user ON sessions (org_id, user_id, status, seq);
    CREATE INDEX sessions_by_create_time ON sessions (org_id, create_time, seq);
    CREATE INDEX sessions_by_status_expiration ON sessions (status, expiration);
    CREATE INDEX sessions_by_status_idle ON sessions (status, idle_time_expiration);
    CREATE INDEX sessions_by_end_time ON sessions (end_time) WHERE end_time IS NOT NULL;
    CREATE INDEX sessions_by_org_status_time ON sessions (org_id, status, create_time, seq);
    CREATE INDEX sessions_by_org_kind_time ON sessions (org_id, kind, create_time, seq);
    CREATE INDEX sessions_by_org_expiration ON sessions (org_id, expiration, seq);
    CREATE TABLE session_limits (
        org_id TEXT PRIMARY KEY REFERENCES organizations(id),
        idle_timeout BIGINT NOT NULL,
        absolute_timeout BIGINT NOT NULL,
        max_sessions_per_user BIGINT NOT NULL
    );
    "#,
    // 2: the gateway: Kong-shaped objects and server-side session keys.
    r#"
    CREATE TABLE gateway_objects (
        seq BIGSERIAL PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        org_id TEXT NOT NULL REFERENCES organizations(id),
        kind TEXT NOT NULL,
        name TEXT,
        body TEXT NOT NULL,
        created BIGINT NOT NULL,
        updated BIGINT NOT NULL
    );
    CREATE UNIQUE INDEX gateway_objects_by_name ON gateway_objects (org_id, kind, name);
    CREATE INDEX gateway_objects_by_kind ON gateway_objects (kind, seq);
    CREATE TABLE gateway_keys (
        digest BYTEA PRIMARY KEY,
        org_id TEXT NOT NULL,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        data TEXT NOT NULL,
        expires BIGINT NOT NULL
    );
    CREATE INDEX gateway_keys_by_session ON gateway_keys (session_id);
    "#,
    // 3: the session query by user email (the most common administrator question).
    r#"
    CREATE INDEX sessions_by_org_email ON sessions (org_id, user_email, seq);
    "#,
    // 4: sign-in attempts are claimed atomically and numbered; a disabled user's sessions
    // are terminated (before, disabling only suspended them, and enabling revived them).
    r#"
    ALTER TABLE users ADD COLUMN login_attempts BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE users ADD COLUMN login_reset_by BIGINT NOT NULL DEFAULT 0;
    UPDATE sessions SET status = 'Terminated', end_reason = 'user_disabled',
        end_time = extract(epoch FROM now())::BIGINT, mod_time = extract(epoch FROM now())::BIGINT
    WHERE status = 'Active' AND user_id IN (SELECT id FROM users WHERE status = 'disabled');
    "#,
    // 5: the audit trail. No foreign keys: an event must never make its change fail, and it
    // outlives the objects it names. Few indexes: every change writes a row, so each index is
    // paid on the hot path (one for the query, one for the retention purge).
    r#"
    CREATE TABLE audit_events (
        seq BIGSERIAL PRIMARY KEY,
        id TEXT NOT NULL,
        org_id TEXT NOT NULL,
        time BIGINT NOT NULL,
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
