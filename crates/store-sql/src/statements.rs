//! Every statement the SQL backends run, once, and the values each binds, in order.
//!
//! A function here answers what to run for one store operation (a [`Query`], a [`Fetch`]
//! that also says how to decode the rows, or a [`ListPage`]); the backend decides how (on
//! which connection, in which transaction). What a conflict or a missing reference
//! names is decided here too, so both backends answer alike (the app words the message).

use tessera_domain::Timestamp;
use tessera_domain::audit::AuditEvent;
use tessera_domain::ids::{ApiKeyId, GroupId, OidcIssuerId, OrgId, PolicyId, RoleId, SessionId, TrustId, UserId};
use tessera_domain::login::{LoginState, SessionLimits};
use tessera_domain::oidc::OidcIssuer;
use tessera_domain::page::PageRequest;
use tessera_domain::role::{Assignee, Role, RoleAssignment};
use tessera_domain::session::{EndReason, Principal, Session, SessionKind};
use tessera_domain::token::{TokenDigest, TokenKind};
use tessera_domain::trust::RoleTrust;
use tessera_domain::user::{ApiKey, Email, Group, Organization, User};
use tessera_store::{
    AuditQueryResult, Bootstrap, Conflict, Credential, Entity, GatewayKey, GatewayKind, GatewayObject, GatewayRekey,
    LoginRecord, Policy, PolicyTarget, SessionQuery, SessionQueryResult, StoreError, StoreResult,
};

use crate::filter::{AUDIT_COLUMNS, SESSION_COLUMNS};
use crate::paging::ListPage;
use crate::record_query::{RecordQuery, RecordTable, Records, record_query};
use crate::rows::{self, Decode, conditions_met_text, conditions_text, document_text, principal_parts};
use crate::{Dialect, Query, Stmt, Value, values};

/// A query and the decoder of its rows.
pub struct Fetch<T> {
    pub query: Query,
    pub decode: Decode<T>,
}

impl<T> Fetch<T> {
    fn new(stmt: &'static Stmt, params: Vec<Value>, decode: Decode<T>) -> Self {
        Self { query: Query::new(stmt, params), decode }
    }
}

/// A row that must exist before a write, and the error when it does not.
pub struct Check {
    pub query: Query,
    pub missing: StoreError,
}

fn s(id: impl std::fmt::Display) -> String {
    id.to_string()
}

fn missing(what: Entity) -> StoreError {
    StoreError::NotFound(what)
}

// Existence within one organization.
static USER_EXISTS: Stmt = Stmt::new("SELECT EXISTS (SELECT 1 FROM users WHERE org_id = $1 AND id = $2)");
static GROUP_EXISTS: Stmt = Stmt::new("SELECT EXISTS (SELECT 1 FROM groups WHERE org_id = $1 AND id = $2)");
static POLICY_EXISTS: Stmt = Stmt::new("SELECT EXISTS (SELECT 1 FROM policies WHERE org_id = $1 AND id = $2)");
static ROLE_EXISTS: Stmt = Stmt::new("SELECT EXISTS (SELECT 1 FROM roles WHERE org_id = $1 AND id = $2)");
static OIDC_ISSUER_EXISTS: Stmt = Stmt::new("SELECT EXISTS (SELECT 1 FROM oidc_issuers WHERE org_id = $1 AND id = $2)");

fn exists(stmt: &'static Stmt, org: OrgId, id: impl std::fmt::Display) -> Query {
    Query::new(stmt, values![s(org), s(id)])
}

pub fn user_exists(org: OrgId, id: UserId) -> Query {
    exists(&USER_EXISTS, org, id)
}
pub fn group_exists(org: OrgId, id: GroupId) -> Query {
    exists(&GROUP_EXISTS, org, id)
}
pub fn role_exists(org: OrgId, id: RoleId) -> Query {
    exists(&ROLE_EXISTS, org, id)
}

fn user_check(org: OrgId, id: impl std::fmt::Display) -> Check {
    Check { query: exists(&USER_EXISTS, org, id), missing: missing(Entity::User) }
}
fn group_check(org: OrgId, id: impl std::fmt::Display) -> Check {
    Check { query: exists(&GROUP_EXISTS, org, id), missing: missing(Entity::Group) }
}
fn role_check(org: OrgId, id: impl std::fmt::Display) -> Check {
    Check { query: exists(&ROLE_EXISTS, org, id), missing: missing(Entity::Role) }
}

// Organizations and bootstrap.
static ANY_ORGANIZATION: Stmt = Stmt::new("SELECT EXISTS (SELECT 1 FROM organizations)");
static INSERT_ORGANIZATION: Stmt = Stmt::new("INSERT INTO organizations (id, name, date_created) VALUES ($1, $2, $3)");
static GET_ORGANIZATION: Stmt = Stmt::new("SELECT id, name, date_created FROM organizations WHERE id = $1");

pub fn any_organization() -> Query {
    Query::new(&ANY_ORGANIZATION, vec![])
}
pub fn insert_organization(o: &Organization) -> Query {
    Query::new(&INSERT_ORGANIZATION, values![s(o.id), &o.name, o.date_created.0])
}
/// The first start's writes after the organization check, in order: the organization, its
/// administrator, the policy and its attachment to the administrator. (The API key follows,
/// through [`insert_api_key`].)
pub fn bootstrap(b: &Bootstrap) -> [Query; 4] {
    let (_, attach) = attach_policy(b.organization.id, b.policy.id, PolicyTarget::User(b.admin.id));
    [insert_organization(&b.organization), insert_user(&b.admin, None), insert_policy(&b.policy), attach]
}
pub fn get_organization(org: OrgId) -> Fetch<Organization> {
    Fetch::new(&GET_ORGANIZATION, values![s(org)], rows::organization)
}

// Users.
static INSERT_USER: Stmt = Stmt::new(
    "INSERT INTO users (id, org_id, email, first_name, last_name, status, password_hash, date_created) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
);
static GET_USER: Stmt =
    Stmt::new(concat!("SELECT ", crate::user_cols!(), " FROM users u WHERE u.org_id = $1 AND u.id = $2"));
static UPDATE_USER: Stmt = Stmt::new(
    "UPDATE users SET email = $3, first_name = $4, last_name = $5, status = $6 WHERE org_id = $1 AND id = $2",
);
static DELETE_USER: Stmt = Stmt::new("DELETE FROM users WHERE org_id = $1 AND id = $2");
/// The organization's user count, kept by the schema's triggers (migration 11); an
/// organization whose users were never written has no row.
static USERS_TOTAL: Stmt =
    Stmt::new("SELECT COALESCE((SELECT total FROM list_totals WHERE org_id = $1 AND list = 'users'), 0)");
static DELETE_ATTACHMENTS_TO: Stmt =
    Stmt::new("DELETE FROM policy_attachments WHERE org_id = $1 AND target_kind = $2 AND target_id = $3");
static DELETE_TRUSTS_OF: Stmt =
    Stmt::new("DELETE FROM role_trusts WHERE org_id = $1 AND principal_kind = $2 AND principal_id = $3");

fn user_email_taken(email: &str) -> Conflict {
    Conflict::UserEmail(email.to_owned())
}

pub fn insert_user(u: &User, hash: Option<&str>) -> Query {
    Query::new(
        &INSERT_USER,
        values![
            s(u.id),
            s(u.org_id),
            u.email.as_str(),
            &u.first_name,
            &u.last_name,
            u.status.as_str(),
            hash,
            u.date_created.0
        ],
    )
    .on_conflict(user_email_taken(u.email.as_str()))
}
pub fn get_user(org: OrgId, id: UserId) -> Fetch<User> {
    Fetch::new(&GET_USER, values![s(org), s(id)], rows::user)
}
pub fn list_users(org: OrgId, req: &PageRequest) -> StoreResult<ListPage<User>> {
    let total = Query::new(&USERS_TOTAL, values![s(org)]);
    Ok(ListPage::new(
        crate::user_cols!(),
        "FROM users u WHERE u.org_id = $1",
        "u.seq",
        values![s(org)],
        req,
        rows::user,
    )?
    .kept_total(total))
}
pub fn update_user(u: &User) -> Query {
    Query::new(
        &UPDATE_USER,
        values![s(u.org_id), s(u.id), u.email.as_str(), &u.first_name, &u.last_name, u.status.as_str()],
    )
    .on_conflict(user_email_taken(u.email.as_str()))
}

/// What deleting a user removes besides its sessions, in order: attachments, the trusts that
/// name it, then the user (keys and memberships go with it by cascade).
pub fn delete_user(org: OrgId, id: UserId) -> [Query; 3] {
    [
        Query::new(&DELETE_ATTACHMENTS_TO, values![s(org), "user", s(id)]),
        Query::new(&DELETE_TRUSTS_OF, values![s(org), "user", s(id)]),
        Query::new(&DELETE_USER, values![s(org), s(id)]),
    ]
}

// API keys and credentials.
static INSERT_API_KEY: Stmt = Stmt::new(
    "INSERT INTO api_keys (id, org_id, user_id, name, digest, date_created, date_expire) \
     SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM users WHERE id = $3 AND org_id = $2)",
);
static DELETE_API_KEY: Stmt = Stmt::new("DELETE FROM api_keys WHERE org_id = $1 AND user_id = $2 AND id = $3");
static FIND_API_KEY: Stmt = Stmt::new(concat!(
    "SELECT ",
    crate::api_key_cols!(),
    ", ",
    crate::user_cols!(),
    " FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.digest = $1"
));
// A workload's session has no user (the left join); a user's session whose user is gone
// resolves to nothing.
static FIND_SESSION: Stmt = Stmt::new(concat!(
    "SELECT ",
    crate::session_cols!(),
    ", ",
    crate::user_cols!(),
    " FROM sessions s LEFT JOIN users u ON u.id = s.user_id AND u.org_id = s.org_id \
     WHERE s.token_digest = $1 AND (u.id IS NOT NULL OR s.oidc_issuer_id IS NOT NULL)"
));

/// Inserts the key when its user exists in its organization: one row inserted, or the user
/// is missing ([`api_key_user_missing`]).
pub fn insert_api_key(k: &ApiKey) -> Query {
    Query::new(
        &INSERT_API_KEY,
        values![
            s(k.id),
            s(k.org_id),
            s(k.user_id),
            &k.name,
            k.digest.0.to_vec(),
            k.date_created.0,
            k.date_expire.map(|t| t.0)
        ],
    )
}
pub fn api_key_user_missing() -> StoreError {
    missing(Entity::User)
}
pub fn list_api_keys(org: OrgId, user: UserId, req: &PageRequest) -> StoreResult<ListPage<ApiKey>> {
    ListPage::new(
        crate::api_key_cols!(),
        "FROM api_keys k WHERE k.org_id = $1 AND k.user_id = $2",
        "k.seq",
        values![s(org), s(user)],
        req,
        rows::api_key,
    )
}
pub fn delete_api_key(org: OrgId, user: UserId, id: ApiKeyId) -> Query {
    Query::new(&DELETE_API_KEY, values![s(org), s(user), s(id)])
}
/// The one indexed read of the authentication path, in the table the token's kind names.
pub fn find_credential(kind: TokenKind, digest: &TokenDigest) -> Fetch<Credential> {
    match kind {
        TokenKind::ApiKey => Fetch::new(&FIND_API_KEY, values![digest.0.to_vec()], rows::api_key_credential),
        _ => Fetch::new(&FIND_SESSION, values![digest.0.to_vec()], rows::session_credential),
    }
}

// Groups.
static INSERT_GROUP: Stmt =
    Stmt::new("INSERT INTO groups (id, org_id, display_name, description, date_created) VALUES ($1, $2, $3, $4, $5)");
static GET_GROUP: Stmt =
    Stmt::new(concat!("SELECT ", crate::group_cols!(), " FROM groups g WHERE g.org_id = $1 AND g.id = $2"));
static UPDATE_GROUP: Stmt =
    Stmt::new("UPDATE groups SET display_name = $3, description = $4 WHERE org_id = $1 AND id = $2");
static DELETE_GROUP: Stmt = Stmt::new("DELETE FROM groups WHERE org_id = $1 AND id = $2");
static ADD_MEMBER: Stmt =
    Stmt::new("INSERT INTO group_members (org_id, group_id, user_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING");
static REMOVE_MEMBER: Stmt =
    Stmt::new("DELETE FROM group_members WHERE org_id = $1 AND group_id = $2 AND user_id = $3");
static GROUPS_OF_USER: Stmt =
    Stmt::new("SELECT group_id FROM group_members WHERE org_id = $1 AND user_id = $2 ORDER BY seq");

fn group_name_taken(name: &str) -> Conflict {
    Conflict::GroupName(name.to_owned())
}

pub fn insert_group(g: &Group) -> Query {
    Query::new(&INSERT_GROUP, values![s(g.id), s(g.org_id), &g.display_name, &g.description, g.date_created.0])
        .on_conflict(group_name_taken(&g.display_name))
}
pub fn get_group(org: OrgId, id: GroupId) -> Fetch<Group> {
    Fetch::new(&GET_GROUP, values![s(org), s(id)], rows::group)
}
pub fn list_groups(org: OrgId, req: &PageRequest) -> StoreResult<ListPage<Group>> {
    ListPage::new(crate::group_cols!(), "FROM groups g WHERE g.org_id = $1", "g.seq", values![s(org)], req, rows::group)
}
pub fn update_group(g: &Group) -> Query {
    Query::new(&UPDATE_GROUP, values![s(g.org_id), s(g.id), &g.display_name, &g.description])
        .on_conflict(group_name_taken(&g.display_name))
}
/// Attachments to the group, the trusts that name it, then the group.
pub fn delete_group(org: OrgId, id: GroupId) -> [Query; 3] {
    [
        Query::new(&DELETE_ATTACHMENTS_TO, values![s(org), "group", s(id)]),
        Query::new(&DELETE_TRUSTS_OF, values![s(org), "group", s(id)]),
        Query::new(&DELETE_GROUP, values![s(org), s(id)]),
    ]
}
/// The group and the user must exist in the organization; the insert answers 0 rows when
/// the user already was a member.
pub fn add_group_member(org: OrgId, group: GroupId, user: UserId) -> ([Check; 2], Query) {
    ([group_check(org, group), user_check(org, user)], Query::new(&ADD_MEMBER, values![s(org), s(group), s(user)]))
}
pub fn remove_group_member(org: OrgId, group: GroupId, user: UserId) -> Query {
    Query::new(&REMOVE_MEMBER, values![s(org), s(group), s(user)])
}
pub fn list_group_members(org: OrgId, group: GroupId, req: &PageRequest) -> StoreResult<ListPage<User>> {
    ListPage::new(
        crate::user_cols!(),
        "FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 AND m.group_id = $2",
        "m.seq",
        values![s(org), s(group)],
        req,
        rows::user,
    )
}
pub fn groups_of_user(org: OrgId, user: UserId) -> Fetch<GroupId> {
    Fetch::new(&GROUPS_OF_USER, values![s(org), s(user)], rows::parsed_id)
}
static GROUP_NAMES_OF_USER: Stmt = Stmt::new(
    "SELECT g.display_name FROM group_members m JOIN groups g ON g.id = m.group_id AND g.org_id = m.org_id \
     WHERE m.org_id = $1 AND m.user_id = $2 ORDER BY m.seq",
);
pub fn group_names_of_user(org: OrgId, user: UserId) -> Fetch<String> {
    Fetch::new(&GROUP_NAMES_OF_USER, values![s(org), s(user)], rows::text)
}

// Policies.
static INSERT_POLICY: Stmt = Stmt::new(
    "INSERT INTO policies (id, org_id, name, description, document, date_created) VALUES ($1, $2, $3, $4, $5, $6)",
);
static GET_POLICY: Stmt =
    Stmt::new(concat!("SELECT ", crate::policy_cols!(), " FROM policies p WHERE p.org_id = $1 AND p.id = $2"));
static UPDATE_POLICY: Stmt =
    Stmt::new("UPDATE policies SET name = $3, description = $4, document = $5 WHERE org_id = $1 AND id = $2");
static DELETE_POLICY: Stmt = Stmt::new("DELETE FROM policies WHERE org_id = $1 AND id = $2");
static ATTACH: Stmt = Stmt::new(
    "INSERT INTO policy_attachments (org_id, policy_id, target_kind, target_id) VALUES ($1, $2, $3, $4) \
     ON CONFLICT DO NOTHING",
);
static DETACH: Stmt = Stmt::new(
    "DELETE FROM policy_attachments WHERE org_id = $1 AND policy_id = $2 AND target_kind = $3 AND target_id = $4",
);
static USER_POLICY_DOCUMENTS: Stmt = Stmt::new(
    "SELECT p.document FROM policies p WHERE p.org_id = $1 AND p.id IN ( \
       SELECT policy_id FROM policy_attachments WHERE org_id = $1 AND target_kind = 'user' AND target_id = $2 \
       UNION SELECT a.policy_id FROM policy_attachments a JOIN group_members m ON m.group_id = a.target_id \
       WHERE a.org_id = $1 AND a.target_kind = 'group' AND m.user_id = $2 \
       UNION SELECT a.policy_id FROM policy_attachments a JOIN role_user_assignments ra ON ra.role_id = a.target_id \
       JOIN roles r ON r.id = ra.role_id AND r.role_type = 'assignable' \
       WHERE a.org_id = $1 AND a.target_kind = 'role' AND ra.user_id = $2 \
       UNION SELECT a.policy_id FROM policy_attachments a JOIN role_group_assignments ra ON ra.role_id = a.target_id \
       JOIN roles r ON r.id = ra.role_id AND r.role_type = 'assignable' \
       JOIN group_members m ON m.group_id = ra.group_id \
       WHERE a.org_id = $1 AND a.target_kind = 'role' AND m.user_id = $2) ORDER BY p.seq",
);
static ROLE_POLICY_DOCUMENTS: Stmt = Stmt::new(
    "SELECT p.document FROM policy_attachments a JOIN policies p ON p.id = a.policy_id \
     WHERE a.org_id = $1 AND a.target_kind = 'role' AND a.target_id = $2 ORDER BY a.seq",
);

fn policy_name_taken(name: &str) -> Conflict {
    Conflict::PolicyName(name.to_owned())
}

fn target_parts(t: PolicyTarget) -> (&'static str, String) {
    match t {
        PolicyTarget::User(u) => ("user", s(u)),
        PolicyTarget::Group(g) => ("group", s(g)),
        PolicyTarget::Role(r) => ("role", s(r)),
    }
}

pub fn insert_policy(p: &Policy) -> Query {
    Query::new(
        &INSERT_POLICY,
        values![s(p.id), s(p.org_id), &p.name, &p.description, document_text(&p.document), p.date_created.0],
    )
    .on_conflict(policy_name_taken(&p.name))
}
pub fn get_policy(org: OrgId, id: PolicyId) -> Fetch<Policy> {
    Fetch::new(&GET_POLICY, values![s(org), s(id)], rows::policy)
}
pub fn list_policies(org: OrgId, req: &PageRequest) -> StoreResult<ListPage<Policy>> {
    ListPage::new(
        crate::policy_cols!(),
        "FROM policies p WHERE p.org_id = $1",
        "p.seq",
        values![s(org)],
        req,
        rows::policy,
    )
}
pub fn update_policy(p: &Policy) -> Query {
    Query::new(&UPDATE_POLICY, values![s(p.org_id), s(p.id), &p.name, &p.description, document_text(&p.document)])
        .on_conflict(policy_name_taken(&p.name))
}
pub fn delete_policy(org: OrgId, id: PolicyId) -> Query {
    Query::new(&DELETE_POLICY, values![s(org), s(id)])
}
/// The policy and its target must exist in the organization; the insert answers 0 rows
/// when the policy already was attached there.
pub fn attach_policy(org: OrgId, policy: PolicyId, target: PolicyTarget) -> ([Check; 2], Query) {
    let policy_check = Check { query: exists(&POLICY_EXISTS, org, policy), missing: missing(Entity::Policy) };
    let target_check = match target {
        PolicyTarget::User(u) => user_check(org, u),
        PolicyTarget::Group(g) => group_check(org, g),
        PolicyTarget::Role(r) => role_check(org, r),
    };
    let (kind, id) = target_parts(target);
    ([policy_check, target_check], Query::new(&ATTACH, values![s(org), s(policy), kind, id]))
}
pub fn detach_policy(org: OrgId, policy: PolicyId, target: PolicyTarget) -> Query {
    let (kind, id) = target_parts(target);
    Query::new(&DETACH, values![s(org), s(policy), kind, id])
}
pub fn list_attached_policies(org: OrgId, target: PolicyTarget, req: &PageRequest) -> StoreResult<ListPage<Policy>> {
    let (kind, id) = target_parts(target);
    ListPage::new(
        crate::policy_cols!(),
        "FROM policy_attachments a JOIN policies p ON p.id = a.policy_id \
         WHERE a.org_id = $1 AND a.target_kind = $2 AND a.target_id = $3",
        "a.seq",
        values![s(org), kind, id],
        req,
        rows::policy,
    )
}
pub fn list_policy_users(org: OrgId, policy: PolicyId, req: &PageRequest) -> StoreResult<ListPage<User>> {
    ListPage::new(
        crate::user_cols!(),
        "FROM policy_attachments a JOIN users u ON u.id = a.target_id \
         WHERE a.org_id = $1 AND a.policy_id = $2 AND a.target_kind = 'user'",
        "a.seq",
        values![s(org), s(policy)],
        req,
        rows::user,
    )
}
pub fn list_policy_groups(org: OrgId, policy: PolicyId, req: &PageRequest) -> StoreResult<ListPage<Group>> {
    ListPage::new(
        crate::group_cols!(),
        "FROM policy_attachments a JOIN groups g ON g.id = a.target_id \
         WHERE a.org_id = $1 AND a.policy_id = $2 AND a.target_kind = 'group'",
        "a.seq",
        values![s(org), s(policy)],
        req,
        rows::group,
    )
}
pub fn user_policy_documents(org: OrgId, user: UserId) -> Fetch<tessera_domain::policy::PolicyDocument> {
    Fetch::new(&USER_POLICY_DOCUMENTS, values![s(org), s(user)], rows::document_column)
}
pub fn role_policy_documents(org: OrgId, role: RoleId) -> Fetch<tessera_domain::policy::PolicyDocument> {
    Fetch::new(&ROLE_POLICY_DOCUMENTS, values![s(org), s(role)], rows::document_column)
}

// Roles and trusts.
static INSERT_ROLE: Stmt = Stmt::new(
    "INSERT INTO roles (id, org_id, name, description, role_type, max_session_duration, date_created) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)",
);
static GET_ROLE: Stmt =
    Stmt::new(concat!("SELECT ", crate::role_cols!(), " FROM roles r WHERE r.org_id = $1 AND r.id = $2"));
static UPDATE_ROLE: Stmt = Stmt::new(
    "UPDATE roles SET name = $3, description = $4, role_type = $5, max_session_duration = $6 \
     WHERE org_id = $1 AND id = $2",
);
static DELETE_ROLE: Stmt = Stmt::new("DELETE FROM roles WHERE org_id = $1 AND id = $2");
static INSERT_TRUST: Stmt = Stmt::new(
    "INSERT INTO role_trusts (id, org_id, role_id, trust_type, principal_kind, principal_id, conditions, \
     valid_until, date_created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
);
static GET_TRUST: Stmt =
    Stmt::new(concat!("SELECT ", crate::trust_cols!(), " FROM role_trusts t WHERE t.org_id = $1 AND t.id = $2"));
static UPDATE_TRUST: Stmt = Stmt::new(
    "UPDATE role_trusts SET trust_type = $3, principal_kind = $4, principal_id = $5, conditions = $6, \
     valid_until = $7 WHERE org_id = $1 AND id = $2",
);
static DELETE_TRUST: Stmt = Stmt::new("DELETE FROM role_trusts WHERE org_id = $1 AND id = $2");
static ROLE_TRUSTS: Stmt = Stmt::new(concat!(
    "SELECT ",
    crate::trust_cols!(),
    " FROM role_trusts t WHERE t.org_id = $1 AND t.role_id = $2 ORDER BY t.seq"
));

// Role assignments (assignable roles given to users and groups).
static ASSIGN_USER: Stmt = Stmt::new(
    "INSERT INTO role_user_assignments (org_id, role_id, user_id, date_assigned) VALUES ($1, $2, $3, $4) \
     ON CONFLICT DO NOTHING",
);
static ASSIGN_GROUP: Stmt = Stmt::new(
    "INSERT INTO role_group_assignments (org_id, role_id, group_id, date_assigned) VALUES ($1, $2, $3, $4) \
     ON CONFLICT DO NOTHING",
);
static UNASSIGN_USER: Stmt =
    Stmt::new("DELETE FROM role_user_assignments WHERE org_id = $1 AND role_id = $2 AND user_id = $3");
static UNASSIGN_GROUP: Stmt =
    Stmt::new("DELETE FROM role_group_assignments WHERE org_id = $1 AND role_id = $2 AND group_id = $3");
/// A user's assignable roles, given to it directly and through its groups: complete (a
/// login session's `role` and `/v2/users/me/roles` are built from it).
static ROLES_OF_USER: Stmt = Stmt::new(concat!(
    "SELECT ",
    crate::role_cols!(),
    ", 'user', a.user_id, '', a.date_assigned FROM role_user_assignments a JOIN roles r ON r.id = a.role_id \
     WHERE a.org_id = $1 AND a.user_id = $2 AND r.role_type = 'assignable' \
     UNION ALL SELECT ",
    crate::role_cols!(),
    ", 'group', a.group_id, g.display_name, a.date_assigned FROM role_group_assignments a \
     JOIN roles r ON r.id = a.role_id JOIN groups g ON g.id = a.group_id \
     JOIN group_members m ON m.group_id = a.group_id \
     WHERE a.org_id = $1 AND m.user_id = $2 AND r.role_type = 'assignable' ORDER BY 11, 1"
));

fn assignee_check(org: OrgId, to: Assignee) -> Check {
    match to {
        Assignee::User(u) => user_check(org, u),
        Assignee::Group(g) => group_check(org, g),
    }
}

/// The role and the assignee must exist in the organization; the insert answers 0 rows when
/// the role already was assigned there.
pub fn assign_role(org: OrgId, role: RoleId, to: Assignee, at: Timestamp) -> ([Check; 2], Query) {
    let q = match to {
        Assignee::User(u) => Query::new(&ASSIGN_USER, values![s(org), s(role), s(u), at.0]),
        Assignee::Group(g) => Query::new(&ASSIGN_GROUP, values![s(org), s(role), s(g), at.0]),
    };
    ([role_check(org, role), assignee_check(org, to)], q)
}
pub fn unassign_role(org: OrgId, role: RoleId, from: Assignee) -> Query {
    match from {
        Assignee::User(u) => Query::new(&UNASSIGN_USER, values![s(org), s(role), s(u)]),
        Assignee::Group(g) => Query::new(&UNASSIGN_GROUP, values![s(org), s(role), s(g)]),
    }
}
/// The users (`groups` false) or groups a role is assigned to, oldest assignment first.
pub fn list_role_assignments(
    org: OrgId,
    role: RoleId,
    groups: bool,
    req: &PageRequest,
) -> StoreResult<ListPage<RoleAssignment>> {
    let (cols, from) = if groups {
        (
            concat!(crate::role_cols!(), ", 'group', a.group_id, g.display_name, a.date_assigned"),
            "FROM role_group_assignments a JOIN roles r ON r.id = a.role_id JOIN groups g ON g.id = a.group_id \
             WHERE a.org_id = $1 AND a.role_id = $2",
        )
    } else {
        (
            concat!(crate::role_cols!(), ", 'user', a.user_id, u.email, a.date_assigned"),
            "FROM role_user_assignments a JOIN roles r ON r.id = a.role_id JOIN users u ON u.id = a.user_id \
             WHERE a.org_id = $1 AND a.role_id = $2",
        )
    };
    ListPage::new(cols, from, "a.seq", values![s(org), s(role)], req, rows::role_assignment)
}
pub fn roles_of_user(org: OrgId, user: UserId) -> Fetch<RoleAssignment> {
    Fetch::new(&ROLES_OF_USER, values![s(org), s(user)], rows::role_assignment)
}

fn role_name_taken(name: &str) -> Conflict {
    Conflict::RoleName(name.to_owned())
}

pub fn insert_role(r: &Role) -> Query {
    Query::new(
        &INSERT_ROLE,
        values![
            s(r.id),
            s(r.org_id),
            &r.name,
            &r.description,
            r.role_type.as_str(),
            r.max_session_duration.secs(),
            r.date_created.0
        ],
    )
    .on_conflict(role_name_taken(&r.name))
}
pub fn get_role(org: OrgId, id: RoleId) -> Fetch<Role> {
    Fetch::new(&GET_ROLE, values![s(org), s(id)], rows::role)
}
pub fn list_roles(org: OrgId, req: &PageRequest) -> StoreResult<ListPage<Role>> {
    ListPage::new(crate::role_cols!(), "FROM roles r WHERE r.org_id = $1", "r.seq", values![s(org)], req, rows::role)
}
pub fn update_role(r: &Role) -> Query {
    Query::new(
        &UPDATE_ROLE,
        values![s(r.org_id), s(r.id), &r.name, &r.description, r.role_type.as_str(), r.max_session_duration.secs()],
    )
    .on_conflict(role_name_taken(&r.name))
}
/// Attachments to the role, then the role (its trusts go with it by cascade).
pub fn delete_role(org: OrgId, id: RoleId) -> [Query; 2] {
    [
        Query::new(&DELETE_ATTACHMENTS_TO, values![s(org), "role", s(id)]),
        Query::new(&DELETE_ROLE, values![s(org), s(id)]),
    ]
}

fn principal_check(t: &RoleTrust) -> Check {
    use tessera_domain::trust::TrustPrincipal;
    match t.principal {
        TrustPrincipal::User(u) => user_check(t.org_id, u),
        TrustPrincipal::Group(g) => group_check(t.org_id, g),
        TrustPrincipal::OidcIssuer(i) => oidc_issuer_check(t.org_id, i),
    }
}

/// The role and the principal must exist in the trust's organization.
pub fn insert_trust(t: &RoleTrust) -> ([Check; 2], Query) {
    let (kind, id) = principal_parts(&t.principal);
    let insert = Query::new(
        &INSERT_TRUST,
        values![
            s(t.id),
            s(t.org_id),
            s(t.role_id),
            &t.trust_type,
            kind,
            id,
            conditions_text(&t.conditions),
            t.valid_until.map(|v| v.0),
            t.date_created.0
        ],
    );
    ([role_check(t.org_id, t.role_id), principal_check(t)], insert)
}
pub fn get_trust(org: OrgId, id: TrustId) -> Fetch<RoleTrust> {
    Fetch::new(&GET_TRUST, values![s(org), s(id)], rows::trust)
}
pub fn list_trusts(org: OrgId, role: Option<RoleId>, req: &PageRequest) -> StoreResult<ListPage<RoleTrust>> {
    match role {
        Some(role) => ListPage::new(
            crate::trust_cols!(),
            "FROM role_trusts t WHERE t.org_id = $1 AND t.role_id = $2",
            "t.seq",
            values![s(org), s(role)],
            req,
            rows::trust,
        ),
        None => ListPage::new(
            crate::trust_cols!(),
            "FROM role_trusts t WHERE t.org_id = $1",
            "t.seq",
            values![s(org)],
            req,
            rows::trust,
        ),
    }
}
/// The principal must exist in the trust's organization.
pub fn update_trust(t: &RoleTrust) -> (Check, Query) {
    let (kind, id) = principal_parts(&t.principal);
    let update = Query::new(
        &UPDATE_TRUST,
        values![
            s(t.org_id),
            s(t.id),
            &t.trust_type,
            kind,
            id,
            conditions_text(&t.conditions),
            t.valid_until.map(|v| v.0)
        ],
    );
    (principal_check(t), update)
}
pub fn delete_trust(org: OrgId, id: TrustId) -> Query {
    Query::new(&DELETE_TRUST, values![s(org), s(id)])
}
pub fn role_trusts(org: OrgId, role: RoleId) -> Fetch<RoleTrust> {
    Fetch::new(&ROLE_TRUSTS, values![s(org), s(role)], rows::trust)
}

// OIDC issuers.
static INSERT_OIDC_ISSUER: Stmt = Stmt::new(
    "INSERT INTO oidc_issuers (id, org_id, source, uri, inline_keys, date_created) VALUES ($1, $2, $3, $4, $5, $6)",
);
static GET_OIDC_ISSUER: Stmt =
    Stmt::new(concat!("SELECT ", crate::oidc_issuer_cols!(), " FROM oidc_issuers i WHERE i.org_id = $1 AND i.id = $2"));
static FIND_OIDC_ISSUER: Stmt =
    Stmt::new(concat!("SELECT ", crate::oidc_issuer_cols!(), " FROM oidc_issuers i WHERE i.id = $1"));
static UPDATE_OIDC_ISSUER: Stmt =
    Stmt::new("UPDATE oidc_issuers SET source = $3, uri = $4, inline_keys = $5 WHERE org_id = $1 AND id = $2");
static DELETE_OIDC_ISSUER: Stmt = Stmt::new("DELETE FROM oidc_issuers WHERE org_id = $1 AND id = $2");

fn oidc_issuer_check(org: OrgId, id: OidcIssuerId) -> Check {
    Check { query: exists(&OIDC_ISSUER_EXISTS, org, id), missing: missing(Entity::OidcIssuer) }
}
pub fn oidc_issuer_exists(org: OrgId, id: OidcIssuerId) -> Query {
    exists(&OIDC_ISSUER_EXISTS, org, id)
}
pub fn insert_oidc_issuer(i: &OidcIssuer) -> Query {
    Query::new(
        &INSERT_OIDC_ISSUER,
        values![s(i.id), s(i.org_id), &i.source, i.uri.as_str(), rows::inline_keys_text(&i.keys), i.date_created.0],
    )
}
pub fn get_oidc_issuer(org: OrgId, id: OidcIssuerId) -> Fetch<OidcIssuer> {
    Fetch::new(&GET_OIDC_ISSUER, values![s(org), s(id)], rows::oidc_issuer)
}
/// By id alone: a token presented to assume names its issuer, and so its organization.
pub fn find_oidc_issuer(id: OidcIssuerId) -> Fetch<OidcIssuer> {
    Fetch::new(&FIND_OIDC_ISSUER, values![s(id)], rows::oidc_issuer)
}
pub fn list_oidc_issuers(org: OrgId, req: &PageRequest) -> StoreResult<ListPage<OidcIssuer>> {
    ListPage::new(
        crate::oidc_issuer_cols!(),
        "FROM oidc_issuers i WHERE i.org_id = $1",
        "i.seq",
        values![s(org)],
        req,
        rows::oidc_issuer,
    )
}
pub fn update_oidc_issuer(i: &OidcIssuer) -> Query {
    Query::new(
        &UPDATE_OIDC_ISSUER,
        values![s(i.org_id), s(i.id), &i.source, i.uri.as_str(), rows::inline_keys_text(&i.keys)],
    )
}
/// The trusts that name the issuer, then the issuer (its sessions stay, as a user's
/// records do, until they end and are purged).
pub fn delete_oidc_issuer(org: OrgId, id: OidcIssuerId) -> [Query; 2] {
    [
        Query::new(&DELETE_TRUSTS_OF, values![s(org), "oidc_issuer", s(id)]),
        Query::new(&DELETE_OIDC_ISSUER, values![s(org), s(id)]),
    ]
}

// Sessions.
/// The columns `INSERT INTO sessions` names, in [`session_values`]' order.
macro_rules! session_insert {
    () => {
        "INSERT INTO sessions (id, org_id, kind, token_digest, user_id, user_email, role_id, \
         role_name, session_name, auth_method, duration, bound_ip, source_ip, conditions_met, create_time, mod_time, \
         expiration, idle_timeout, last_activity, idle_time_expiration, status, end_time, end_reason, failed_logins, \
         last_login_time, last_login_client, oidc_issuer_id, session_policy)"
    };
}
/// `INSERT INTO sessions` and its columns, without the rows (a backend's own statement
/// supplies them, e.g. PostgreSQL's batch of many sessions).
pub const SESSION_INSERT_INTO: &str = session_insert!();
/// One session's row, in [`session_values`]' order.
pub const SESSION_INSERT: &str = concat!(
    session_insert!(),
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, \
     $23, $24, $25, $26, $27, $28)"
);
/// How many values [`SESSION_INSERT`] binds (a statement that appends its own starts after).
pub const SESSION_INSERT_PARAMS: usize = 28;
static INSERT_SESSION: Stmt = Stmt::new(SESSION_INSERT);
static GET_SESSION: Stmt =
    Stmt::new(concat!("SELECT ", crate::session_cols!(), " FROM sessions s WHERE s.org_id = $1 AND s.id = $2"));
static END_SESSION: Stmt = Stmt::new(
    "UPDATE sessions SET status = $3, end_reason = $4, end_time = $5, mod_time = $5 \
     WHERE org_id = $1 AND id = $2 AND status = 'Active'",
);
static END_USER_SESSIONS: Stmt = Stmt::new(
    "UPDATE sessions SET status = $3, end_reason = $4, end_time = $5, mod_time = $5 \
     WHERE org_id = $1 AND user_id = $2 AND status = 'Active'",
);
static ACTIVE_SESSION_IDS: Stmt =
    Stmt::new("SELECT id FROM sessions WHERE org_id = $1 AND user_id = $2 AND status = 'Active' AND id <> $3");
// SQLite's scalar `max`/`min` are PostgreSQL's `GREATEST`/`LEAST`.
static TOUCH_SESSION: Stmt = Stmt::pair(
    "UPDATE sessions SET last_activity = GREATEST(last_activity, $3), \
     idle_time_expiration = LEAST(expiration, GREATEST(last_activity, $3) + idle_timeout) \
     WHERE org_id = $1 AND id = $2 AND status = 'Active' AND idle_timeout IS NOT NULL",
    "UPDATE sessions SET last_activity = max(last_activity, $3), \
     idle_time_expiration = min(expiration, max(last_activity, $3) + idle_timeout) \
     WHERE org_id = $1 AND id = $2 AND status = 'Active' AND idle_timeout IS NOT NULL",
);
// Idle first: a session whose idle deadline came before its absolute one ended idle, even
// if both have passed by now.
static SWEEP_IDLE: Stmt = Stmt::new(
    "UPDATE sessions SET status = 'Ended', end_reason = 'idle_timeout', end_time = idle_time_expiration, \
     mod_time = $1 WHERE status = 'Active' AND idle_time_expiration <= $1 AND idle_time_expiration < expiration",
);
static SWEEP_EXPIRED: Stmt = Stmt::new(
    "UPDATE sessions SET status = 'Ended', end_reason = 'expired', end_time = expiration, mod_time = $1 \
     WHERE status = 'Active' AND expiration <= $1",
);
static PURGE_GATEWAY_KEYS: Stmt = Stmt::new("DELETE FROM gateway_keys WHERE expires < $1");
static PURGE_SESSIONS: Stmt = Stmt::new("DELETE FROM sessions WHERE status <> 'Active' AND end_time < $1");
// PostgreSQL has no `LIMIT -1`; SQLite needs a LIMIT before OFFSET.
static SESSIONS_BEYOND_CAP: Stmt = Stmt::pair(
    "SELECT id FROM sessions WHERE org_id = $1 AND user_id = $2 AND kind = $3 AND status = 'Active' \
     AND expiration > $4 AND (idle_time_expiration IS NULL OR idle_time_expiration > $4) \
     ORDER BY seq DESC OFFSET $5",
    "SELECT id FROM sessions WHERE org_id = $1 AND user_id = $2 AND kind = $3 AND status = 'Active' \
     AND expiration > $4 AND (idle_time_expiration IS NULL OR idle_time_expiration > $4) \
     ORDER BY seq DESC LIMIT -1 OFFSET $5",
);

/// A principal as its three columns: `user_id`, `user_email`, `oidc_issuer_id`.
///
/// A workload has no user: its `user_id` is the empty string (the column predates workloads
/// and is `NOT NULL`; SQLite cannot relax that without rebuilding `sessions`, which
/// `gateway_keys` cascades from), and `user_email` holds its subject, so the session query's
/// `user_id_or_email` finds workloads by subject like users by email.
fn principal_columns(p: &Principal) -> (String, String, Option<String>) {
    match p {
        Principal::User { id, email } => (s(id), email.clone(), None),
        Principal::Workload { issuer, subject } => (String::new(), subject.clone(), Some(s(issuer))),
    }
}

/// A session's row values in [`SESSION_INSERT`]'s order.
pub fn session_values(x: &Session, d: &TokenDigest) -> Vec<Value> {
    let (user_id, user_email, issuer) = principal_columns(&x.principal);
    values![
        s(x.id),
        s(x.org_id),
        x.kind.as_str(),
        d.0.to_vec(),
        user_id,
        user_email,
        x.role_id.map(s),
        &x.role_name,
        &x.session_name,
        &x.auth_method,
        x.duration,
        x.bound_ip.map(|ip| ip.to_string()),
        &x.source_ip,
        conditions_met_text(&x.conditions_met),
        x.created.0,
        x.modified.0,
        x.expires.0,
        x.idle_timeout,
        x.last_activity.0,
        x.idle_deadline(x.last_activity).map(|t| t.0),
        x.status.as_str(),
        x.ended.map(|t| t.0),
        x.end_reason.map(|r| r.as_str()),
        x.failed_logins,
        x.last_login_time.map(|t| t.0),
        &x.last_login_client,
        issuer,
        x.session_policy.as_ref().map(document_text)
    ]
}
pub fn insert_session(x: &Session, d: &TokenDigest) -> Query {
    Query::new(&INSERT_SESSION, session_values(x, d))
}
pub fn get_session(org: OrgId, id: impl std::fmt::Display) -> Fetch<Session> {
    Fetch::new(&GET_SESSION, values![s(org), s(id)], rows::session)
}
pub fn list_active_sessions(
    org: OrgId,
    user: UserId,
    kind: Option<SessionKind>,
    now: Timestamp,
    req: &PageRequest,
) -> StoreResult<ListPage<Session>> {
    const ACTIVE: &str = "FROM sessions s WHERE s.org_id = $1 AND s.user_id = $2 AND s.status = 'Active' \
         AND s.expiration > $3 AND (s.idle_time_expiration IS NULL OR s.idle_time_expiration > $3)";
    let cols = crate::session_cols!();
    match kind {
        Some(k) => ListPage::new(
            cols,
            format!("{ACTIVE} AND s.kind = $4"),
            "s.seq",
            values![s(org), s(user), now.0, k.as_str()],
            req,
            rows::session,
        ),
        None => ListPage::new(cols, ACTIVE, "s.seq", values![s(org), s(user), now.0], req, rows::session),
    }
}
/// Ends one session if it is active (0 rows when it was not).
pub fn end_session(org: OrgId, id: &str, reason: EndReason, now: Timestamp) -> Query {
    Query::new(&END_SESSION, values![s(org), id, reason.status().as_str(), reason.as_str(), now.0])
}
/// Ends every active session of a user at once.
pub fn end_user_sessions(org: OrgId, user: UserId, reason: EndReason, now: Timestamp) -> Query {
    Query::new(&END_USER_SESSIONS, values![s(org), s(user), reason.status().as_str(), reason.as_str(), now.0])
}
/// Ids of a user's active sessions of every kind, but `except`.
pub fn active_session_ids(org: OrgId, user: UserId, except: Option<SessionId>) -> Fetch<String> {
    Fetch::new(&ACTIVE_SESSION_IDS, values![s(org), s(user), except.map(s).unwrap_or_default()], rows::text)
}
pub fn touch_session(org: OrgId, id: SessionId, at: Timestamp) -> Query {
    Query::new(&TOUCH_SESSION, values![s(org), s(id), at.0])
}
/// Idle sessions, then expired ones.
pub fn sweep_sessions(now: Timestamp) -> [Query; 2] {
    [Query::new(&SWEEP_IDLE, values![now.0]), Query::new(&SWEEP_EXPIRED, values![now.0])]
}
/// Expired gateway keys, then ended sessions (the count is the sessions').
pub fn purge_sessions(before: Timestamp) -> [Query; 2] {
    [Query::new(&PURGE_GATEWAY_KEYS, values![before.0]), Query::new(&PURGE_SESSIONS, values![before.0])]
}
/// The user's active sessions of the new one's kind beyond the newest `max_active - 1`: the
/// ones a new login session replaces.
pub fn sessions_beyond_cap(x: &Session, max_active: u32, now: Timestamp) -> Fetch<String> {
    let (user_id, _, _) = principal_columns(&x.principal);
    Fetch::new(
        &SESSIONS_BEYOND_CAP,
        values![s(x.org_id), user_id, x.kind.as_str(), now.0, i64::from(max_active.max(1) - 1)],
        rows::text,
    )
}

/// Answers the session query's statements.
pub fn query_sessions(org: OrgId, q: &SessionQuery, d: Dialect) -> StoreResult<RecordQuery<Session>> {
    static TABLE: RecordTable<Session> = RecordTable {
        table: "sessions s",
        alias: "s",
        cols: crate::session_cols!(),
        columns: &SESSION_COLUMNS,
        decode: rows::session,
    };
    q.check().map_err(StoreError::Invalid)?;
    record_query(q, &TABLE, d, s(org))
}
pub fn session_query_result(r: Records<Session>) -> SessionQueryResult {
    SessionQueryResult { count: r.count.map(|n| n.max(0) as u64), sessions: r.items, next: r.next }
}

// Sign-in.
static FIND_LOGIN: Stmt = Stmt::new(concat!(
    "SELECT ",
    crate::user_cols!(),
    ", u.password_hash, ",
    crate::login_state_cols!(),
    " FROM users u WHERE u.email = $1 ORDER BY u.seq"
));
// On PostgreSQL the row stays locked until the transaction ends, so claims on one user from
// every node are ordered; SQLite's single writer orders them already.
static LOGIN_STATE: Stmt = Stmt::pair(
    concat!("SELECT ", crate::login_state_cols!(), " FROM users u WHERE u.org_id = $1 AND u.id = $2 FOR UPDATE"),
    concat!("SELECT ", crate::login_state_cols!(), " FROM users u WHERE u.org_id = $1 AND u.id = $2"),
);
static WRITE_LOGIN_STATE: Stmt = Stmt::new(
    "UPDATE users SET failed_logins = $3, window_failures = $4, window_start = $5, locked_until = $6, \
     lock_count = $7, last_login_time = $8, last_login_client = $9, login_attempts = $10, login_reset_by = $11 \
     WHERE org_id = $1 AND id = $2",
);
static CLEAR_LOGIN_LOCK: Stmt = Stmt::new(
    "UPDATE users SET window_failures = 0, window_start = NULL, locked_until = NULL, lock_count = 0 \
     WHERE org_id = $1 AND id = $2",
);
static SET_PASSWORD: Stmt = Stmt::new("UPDATE users SET password_hash = $3 WHERE org_id = $1 AND id = $2");
static GET_SESSION_LIMITS: Stmt =
    Stmt::new("SELECT idle_timeout, absolute_timeout, max_sessions_per_user FROM session_limits WHERE org_id = $1");
static PUT_SESSION_LIMITS: Stmt = Stmt::new(
    "INSERT INTO session_limits (org_id, idle_timeout, absolute_timeout, max_sessions_per_user) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (org_id) DO UPDATE SET idle_timeout = excluded.idle_timeout, \
     absolute_timeout = excluded.absolute_timeout, max_sessions_per_user = excluded.max_sessions_per_user",
);

pub fn find_login(email: &Email) -> Fetch<LoginRecord> {
    Fetch::new(&FIND_LOGIN, values![email.as_str()], rows::login)
}
/// A user's sign-in state, locked for the transaction where the dialect locks rows.
pub fn login_state(org: OrgId, user: UserId) -> Fetch<LoginState> {
    Fetch::new(&LOGIN_STATE, values![s(org), s(user)], rows::login_state)
}
pub fn write_login_state(org: OrgId, user: UserId, st: &LoginState) -> Query {
    Query::new(
        &WRITE_LOGIN_STATE,
        values![
            s(org),
            s(user),
            st.failed_logins,
            st.window_failures,
            st.window_start.map(|t| t.0),
            st.locked_until.map(|t| t.0),
            st.lock_count,
            st.last_login_time.map(|t| t.0),
            &st.last_login_client,
            st.attempts,
            st.reset_by
        ],
    )
}
pub fn clear_login_lock(org: OrgId, user: UserId) -> Query {
    Query::new(&CLEAR_LOGIN_LOCK, values![s(org), s(user)])
}
pub fn set_password(org: OrgId, user: UserId, hash: &str) -> Query {
    Query::new(&SET_PASSWORD, values![s(org), s(user), hash])
}
pub fn get_session_limits(org: OrgId) -> Fetch<SessionLimits> {
    Fetch::new(&GET_SESSION_LIMITS, values![s(org)], rows::session_limits)
}
pub fn put_session_limits(org: OrgId, l: &SessionLimits) -> Query {
    Query::new(
        &PUT_SESSION_LIMITS,
        values![s(org), l.idle_timeout, l.absolute_timeout, i64::from(l.max_sessions_per_user)],
    )
}

// Gateway objects and server-side gateway sessions.
static INSERT_GATEWAY_OBJECT: Stmt = Stmt::new(
    "INSERT INTO gateway_objects (id, org_id, kind, name, body, created, updated, scope_key) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
);
static UPDATE_GATEWAY_OBJECT: Stmt = Stmt::new(
    "UPDATE gateway_objects SET name = $4, body = $5, updated = $6, scope_key = $7 \
     WHERE id = $1 AND org_id = $2 AND kind = $3",
);
/// A gateway object's columns and its refs (ids joined by spaces), in each dialect's words.
macro_rules! gateway_object_cols {
    ($agg:literal) => {
        concat!(
            "SELECT id, org_id, kind, name, body, created, updated, scope_key, (SELECT ",
            $agg,
            " FROM gateway_refs r WHERE r.from_id = gateway_objects.id) FROM gateway_objects "
        )
    };
}
static GET_GATEWAY_OBJECT: Stmt = Stmt::pair(
    concat!(gateway_object_cols!("string_agg(r.to_id, ' ')"), "WHERE org_id = $1 AND kind = $2 AND id = $3"),
    concat!(gateway_object_cols!("group_concat(r.to_id, ' ')"), "WHERE org_id = $1 AND kind = $2 AND id = $3"),
);
static LIST_GATEWAY_OBJECTS: Stmt = Stmt::pair(
    concat!(
        gateway_object_cols!("string_agg(r.to_id, ' ')"),
        "WHERE kind = $1 AND (CAST($2 AS TEXT) IS NULL OR org_id = $2) ORDER BY seq"
    ),
    concat!(
        gateway_object_cols!("group_concat(r.to_id, ' ')"),
        "WHERE kind = $1 AND (CAST($2 AS TEXT) IS NULL OR org_id = $2) ORDER BY seq"
    ),
);
static DELETE_GATEWAY_REFS: Stmt = Stmt::new("DELETE FROM gateway_refs WHERE from_id = $1");
static INSERT_GATEWAY_REF: Stmt = Stmt::new("INSERT INTO gateway_refs (org_id, from_id, to_id) VALUES ($1, $2, $3)");
/// An object another one names, in the writer's organization. PostgreSQL takes the row's
/// key-share lock (what a foreign key's check takes): a delete of it on another node waits for
/// the writer's transaction, and a writer waits for a delete already under way, then finds the
/// row gone. SQLite's single writer serialises both.
static GATEWAY_REF_EXISTS: Stmt = Stmt::pair(
    "SELECT EXISTS (SELECT 1 FROM gateway_objects WHERE org_id = $1 AND id = $2 FOR KEY SHARE)",
    "SELECT EXISTS (SELECT 1 FROM gateway_objects WHERE org_id = $1 AND id = $2)",
);
/// The object a delete removes, locked on PostgreSQL against every writer naming it (a
/// writer's key-share lock and this one exclude each other).
static LOCK_GATEWAY_OBJECT: Stmt = Stmt::pair(
    "SELECT EXISTS (SELECT 1 FROM gateway_objects WHERE org_id = $1 AND kind = $2 AND id = $3 FOR UPDATE)",
    "SELECT EXISTS (SELECT 1 FROM gateway_objects WHERE org_id = $1 AND kind = $2 AND id = $3)",
);
/// The plugins naming a deleted object go with it. On PostgreSQL they are locked in the order
/// of their ids first (the subquery's `ORDER BY id FOR UPDATE`: rows are locked after the
/// sort), not in whatever order the plan meets them: deleting a route and deleting its service
/// both delete the plugins naming the two, and two deletes that met them in different orders
/// (the references' physical order differs from the objects' once space is reused) each held
/// a plugin the other waited for. SQLite's single writer runs one delete at a time.
static DELETE_PLUGINS_NAMING: Stmt = Stmt::pair(
    "DELETE FROM gateway_objects WHERE org_id = $1 AND kind = 'plugin' AND id IN ( \
     SELECT id FROM gateway_objects WHERE org_id = $1 AND kind = 'plugin' \
     AND id IN (SELECT from_id FROM gateway_refs WHERE to_id = $2) ORDER BY id FOR UPDATE)",
    "DELETE FROM gateway_objects WHERE org_id = $1 AND kind = 'plugin' \
     AND id IN (SELECT from_id FROM gateway_refs WHERE to_id = $2)",
);
static DELETE_GATEWAY_OBJECT: Stmt =
    Stmt::new("DELETE FROM gateway_objects WHERE org_id = $1 AND kind = $2 AND id = $3");
static INSERT_GATEWAY_KEY: Stmt =
    Stmt::new("INSERT INTO gateway_keys (digest, org_id, session_id, data, expires) VALUES ($1, $2, $3, $4, $5)");
static FIND_GATEWAY_KEY: Stmt = Stmt::new(concat!(
    "SELECT ",
    crate::session_cols!(),
    ", ",
    crate::user_cols!(),
    ", k.data, k.expires FROM gateway_keys k JOIN sessions s ON s.id = k.session_id \
     JOIN users u ON u.id = s.user_id AND u.org_id = s.org_id WHERE k.digest = $1"
));
// PostgreSQL locks the session for the renewal; SQLite's single writer serialises it.
static SESSION_ACTIVE: Stmt = Stmt::pair(
    "SELECT EXISTS (SELECT 1 FROM sessions WHERE org_id = $1 AND id = $2 AND status = 'Active' FOR UPDATE)",
    "SELECT EXISTS (SELECT 1 FROM sessions WHERE org_id = $1 AND id = $2 AND status = 'Active')",
);
static SHORTEN_GATEWAY_KEY: Stmt = Stmt::pair(
    "UPDATE gateway_keys SET expires = LEAST(expires, $2) WHERE digest = $1",
    "UPDATE gateway_keys SET expires = min(expires, $2) WHERE digest = $1",
);
static SESSION_MODIFIED: Stmt = Stmt::new("UPDATE sessions SET mod_time = $3 WHERE org_id = $1 AND id = $2");
static DELETE_GATEWAY_KEY: Stmt = Stmt::new("DELETE FROM gateway_keys WHERE digest = $1");

/// Inserts (`create`) or replaces a gateway object; a duplicate name within the organization
/// and kind is a conflict.
pub fn put_gateway_object(o: &GatewayObject, create: bool) -> Query {
    let (id, org, kind) = (s(o.id), s(o.org_id), o.kind.as_str());
    let (name, scope) = (o.name.as_deref(), o.scope_key.as_deref());
    let q = if create {
        Query::new(&INSERT_GATEWAY_OBJECT, values![id, org, kind, name, &o.body, o.created.0, o.updated.0, scope])
    } else {
        Query::new(&UPDATE_GATEWAY_OBJECT, values![id, org, kind, name, &o.body, o.updated.0, scope])
    };
    // The ids are unique across organizations, and a client may choose one on create. SQLite
    // names the columns (`gateway_objects.id`), PostgreSQL the index (`gateway_objects_id_key`,
    // `gateway_objects_scope_key_unique`).
    let taken = format!("a {kind} with id {} already exists", o.id);
    q.on_conflict(Conflict::GatewayName { kind: o.kind, name: o.name.clone().unwrap_or_default() })
        .on_conflict_naming(
            &["scope_key"],
            Conflict::GatewayScope { kind: o.kind, scope: o.scope_key.clone().unwrap_or_default() },
        )
        .on_conflict_naming(&["gateway_objects.id", "gateway_objects_id_key"], Conflict::Other(taken))
}
/// What a write of `o` checks before [`put_gateway_object`]: that each object it names exists
/// in its organization, in the order of `refs` (sorted, so writers naming the same objects
/// lock them in one order), each locked on PostgreSQL until the write commits.
pub fn gateway_ref_checks(o: &GatewayObject) -> Vec<Check> {
    let check = |to: &uuid::Uuid| Check {
        query: Query::new(&GATEWAY_REF_EXISTS, values![s(o.org_id), s(to)]),
        missing: missing(Entity::Referenced),
    };
    o.refs.iter().map(check).collect()
}
/// What replaces an object's refs after [`put_gateway_object`] wrote it: the old ones go, the
/// new ones are inserted (each insert fails on the foreign key when the named object is gone).
pub fn put_gateway_refs(o: &GatewayObject) -> Vec<Query> {
    let mut qs = vec![Query::new(&DELETE_GATEWAY_REFS, values![s(o.id)])];
    qs.extend(o.refs.iter().map(|to| Query::new(&INSERT_GATEWAY_REF, values![s(o.org_id), s(o.id), s(to)])));
    qs
}
/// A delete refused by the foreign key of `gateway_refs` is the object still being named.
pub fn gateway_in_use(kind: GatewayKind, id: uuid::Uuid) -> impl Fn(StoreError) -> StoreError {
    move |e| match e {
        StoreError::NotFound(Entity::Referenced) => StoreError::Conflict(Conflict::GatewayInUse { kind, id }),
        e => e,
    }
}
pub fn get_gateway_object(org: OrgId, kind: GatewayKind, id: impl std::fmt::Display) -> Fetch<GatewayObject> {
    Fetch::new(&GET_GATEWAY_OBJECT, values![s(org), kind.as_str(), s(id)], rows::gateway_object)
}
pub fn list_gateway_objects(org: Option<OrgId>, kind: GatewayKind) -> Fetch<GatewayObject> {
    Fetch::new(&LIST_GATEWAY_OBJECTS, values![kind.as_str(), org.map(s)], rows::gateway_object)
}
/// A delete: whether the object exists (locked on PostgreSQL, see [`LOCK_GATEWAY_OBJECT`]),
/// then the writes, in one transaction: the plugins that name it (Kong deletes a route's or
/// service's plugins with it), then the object, which the foreign key of `gateway_refs`
/// refuses while anything else names it (a route its service, a service its CA
/// certificate; see [`gateway_in_use`]).
pub fn delete_gateway_object(org: OrgId, kind: GatewayKind, id: impl std::fmt::Display) -> (Query, [Query; 2]) {
    let (org, id) = (s(org), s(id));
    (
        Query::new(&LOCK_GATEWAY_OBJECT, values![org.clone(), kind.as_str(), id.clone()]),
        [
            Query::new(&DELETE_PLUGINS_NAMING, values![org.clone(), id.clone()]),
            Query::new(&DELETE_GATEWAY_OBJECT, values![org, kind.as_str(), id]),
        ],
    )
}
pub fn insert_gateway_key(org: OrgId, session: SessionId, key: &TokenDigest, data: &str, expires: Timestamp) -> Query {
    Query::new(&INSERT_GATEWAY_KEY, values![key.0.to_vec(), s(org), s(session), data, expires.0])
}
pub fn find_gateway_key(key: &TokenDigest) -> Fetch<GatewayKey> {
    Fetch::new(&FIND_GATEWAY_KEY, values![key.0.to_vec()], rows::gateway_key)
}
/// Renewal: whether the session is still active (locked where the dialect locks), then the
/// writes: shorten the old key, add the new one, touch the session.
pub fn rekey_gateway_session(rk: &GatewayRekey) -> (Query, [Query; 3]) {
    (
        Query::new(&SESSION_ACTIVE, values![s(rk.org_id), s(rk.session)]),
        [
            Query::new(&SHORTEN_GATEWAY_KEY, values![rk.old.0.to_vec(), rk.old_expires.0]),
            insert_gateway_key(rk.org_id, rk.session, &rk.new, &rk.data, rk.new_expires),
            Query::new(&SESSION_MODIFIED, values![s(rk.org_id), s(rk.session), rk.now.0]),
        ],
    )
}
pub fn delete_gateway_key(key: &TokenDigest) -> Query {
    Query::new(&DELETE_GATEWAY_KEY, values![key.0.to_vec()])
}

// The audit trail.
/// The columns `INSERT INTO audit_events` names, in [`audit_values`]' order.
macro_rules! audit_insert {
    () => {
        "INSERT INTO audit_events (id, org_id, time, actor_kind, actor_id, actor_email, credential_id, action, \
         target_kind, target_id, source_ip, request_id, result, reason)"
    };
}
pub const AUDIT_INSERT: &str = audit_insert!();
/// How many values [`AUDIT_INSERT`] binds.
pub const AUDIT_INSERT_PARAMS: usize = 14;
static INSERT_AUDIT_EVENT: Stmt =
    Stmt::new(concat!(audit_insert!(), " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"));
static PURGE_AUDIT_EVENTS: Stmt = Stmt::new("DELETE FROM audit_events WHERE time < $1");

/// The values of an audit event's row, in [`AUDIT_INSERT`]'s order.
pub fn audit_values(e: &AuditEvent) -> Vec<Value> {
    values![
        e.id.to_string(),
        s(e.org_id),
        e.time.0,
        e.actor_kind.as_str(),
        &e.actor_id,
        &e.actor_email,
        &e.credential_id,
        &e.action,
        &e.target_kind,
        &e.target_id,
        &e.source_ip,
        &e.request_id,
        e.result.as_str(),
        &e.reason
    ]
}
pub fn insert_audit_event(e: &AuditEvent) -> Query {
    Query::new(&INSERT_AUDIT_EVENT, audit_values(e))
}
pub fn purge_audit_events(before: Timestamp) -> Query {
    Query::new(&PURGE_AUDIT_EVENTS, values![before.0])
}
/// Answers the audit query's statements.
pub fn query_audit_events(org: OrgId, q: &SessionQuery, d: Dialect) -> StoreResult<RecordQuery<AuditEvent>> {
    static TABLE: RecordTable<AuditEvent> = RecordTable {
        table: "audit_events a",
        alias: "a",
        cols: crate::audit_cols!(),
        columns: &AUDIT_COLUMNS,
        decode: rows::audit_event,
    };
    q.check().map_err(StoreError::Invalid)?;
    record_query(q, &TABLE, d, s(org))
}
pub fn audit_query_result(r: Records<AuditEvent>) -> AuditQueryResult {
    AuditQueryResult { count: r.count.map(|n| n.max(0) as u64), events: r.items, next: r.next }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_differences_between_dialects_are_only_the_pairs() {
        assert_eq!(
            GET_USER.text(Dialect::Sqlite),
            "SELECT u.id, u.org_id, u.email, u.first_name, u.last_name, u.status, u.date_created FROM users u \
             WHERE u.org_id = ?1 AND u.id = ?2"
        );
        assert!(TOUCH_SESSION.text(Dialect::Postgres).contains("GREATEST"));
        assert!(TOUCH_SESSION.text(Dialect::Sqlite).contains("max(last_activity, ?3)"));
        assert!(SESSIONS_BEYOND_CAP.text(Dialect::Sqlite).ends_with("LIMIT -1 OFFSET ?5"));
    }
}
