//! The JSON wire types of the `/v2` API.
//!
//! Requests reject unknown fields, so a typo is an error rather than a silent no-op. A single
//! object is wrapped under its singular name (`{"role": {...}}`), a list under its plural
//! name with `meta` (`{"roles": [...], "meta": {...}}`). Instants are RFC 3339 strings in UTC.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub mod assignments;
pub mod gateway;
pub mod oidc;

/// Every 4xx/5xx body: `{"error": {"code", "message", "field"?}}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
pub struct ErrorDetail {
    /// A stable machine-readable code: `invalid_request`, `not_found`, `unauthorized`, ...
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub field: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default, JsonSchema)]
pub struct Meta {
    pub total: u64,
    pub links: Links,
}

/// Opaque cursors; an empty string means there is no such page.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default, JsonSchema)]
pub struct Links {
    pub next: String,
    pub prev: String,
}

// ---- users and API keys -------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserCreate {
    pub email: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    /// Optional; a user without a password signs in only with API keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// `POST /v2/users` body: a [`UserCreate`], optionally with the id the user is to have
/// (a UUID, such as a Kong consumer's id when moving from Kong, so that sessions naming it
/// keep working). Taken ids are a 409.
#[derive(Debug, Clone, Serialize, Deserialize, Default, JsonSchema)]
pub struct UserCreateWithId {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(flatten)]
    pub user: UserCreate,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// `active` or `disabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    /// `first_name last_name`, for Vultr compatibility.
    pub name: String,
    pub status: String,
    pub date_created: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct UserEnvelope {
    pub user: UserView,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct UserList {
    pub users: Vec<UserView>,
    pub meta: Meta,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyCreate {
    pub name: String,
    /// RFC 3339; omit for a key that does not expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_expire: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
pub struct ApiKeyView {
    pub id: String,
    pub user_id: String,
    pub name: String,
    /// The secret: present only in the answer to the create call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    pub date_created: String,
    pub date_expire: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ApiKeyEnvelope {
    pub api_key: ApiKeyView,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ApiKeyList {
    pub api_keys: Vec<ApiKeyView>,
    pub meta: Meta,
}

// ---- groups ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupInput {
    pub display_name: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
pub struct GroupView {
    pub id: String,
    pub display_name: String,
    pub description: String,
    pub date_created: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct GroupEnvelope {
    pub group: GroupView,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct GroupList {
    pub groups: Vec<GroupView>,
    pub meta: Meta,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupMemberAdd {
    pub user_id: String,
    /// Accepted and ignored: Vultr's guide sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct MemberList {
    pub members: Vec<UserView>,
    pub meta: Meta,
}

// ---- policies -------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyInput {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// `{"Version": "...", "Statement": [{"Effect", "Action", "Resource"}]}`: at most 6 144
    /// characters without the whitespace outside strings, 100 statements, and 200 actions and
    /// 200 resources in a statement.
    pub policy_document: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct PolicyView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub policy_document: Value,
    pub version: String,
    pub is_system_policy: bool,
    pub date_created: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PolicyEnvelope {
    pub policy: PolicyView,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PolicyList {
    pub policies: Vec<PolicyView>,
    pub meta: Meta,
}

// ---- roles and trusts -----------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleInput {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// `assumable` or `assignable`.
    pub role_type: String,
    /// Seconds, 900 to 43 200; 3 600 when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_session_duration: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
pub struct RoleView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub role_type: String,
    pub max_session_duration: i64,
    pub date_created: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RoleEnvelope {
    pub role: RoleView,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RoleList {
    pub roles: Vec<RoleView>,
    pub meta: Meta,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeOfDay {
    /// Hour, 0–23, inclusive (in `timezone`; UTC by default); 0 when only days are given.
    #[serde(default)]
    pub start: i64,
    /// Hour, 0–24, exclusive; smaller than `start` wraps past midnight. 24 when omitted.
    #[serde(default = "day_end")]
    pub end: i64,
    /// Vultr's form: `UTC` or a fixed offset such as `+02:00` (zone names need a timezone
    /// database this server does not carry, and are refused with a 400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Vultr's form: `monday` … `sunday`; omitted means every day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_of_week: Option<Vec<String>>,
}

fn day_end() -> i64 {
    24
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    /// IP addresses or CIDR blocks; empty means any address.
    #[serde(default)]
    pub ip_address: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_of_day: Option<TimeOfDay>,
    /// Claim → exact value, glob (`*`) or a list of either; a trust to an OIDC issuer must
    /// constrain `aud` and `sub`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc_claims: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrustInput {
    pub role_id: String,
    /// `TemporaryAssumption` (the default) is the only type this server evaluates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_group_id: Option<String>,
    /// Workloads whose tokens this issuer signs (with `conditions.oidc_claims`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_oidc_issuer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Conditions>,
    /// RFC 3339; after it the trust no longer allows assumption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
pub struct TrustView {
    pub id: String,
    pub role_id: String,
    pub trust_type: String,
    pub trusted_user_id: Option<String>,
    pub trusted_group_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_oidc_issuer_id: Option<String>,
    pub conditions: Conditions,
    pub valid_until: Option<String>,
    pub date_created: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TrustEnvelope {
    pub role_trust: TrustView,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TrustList {
    pub role_trusts: Vec<TrustView>,
    pub meta: Meta,
}

// ---- assumed roles --------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssumeContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssumeRequest {
    /// The user assuming (`api_key`); empty for a workload (`oidc`, `jwt`).
    #[serde(default)]
    pub user_id: String,
    /// With `auth_method` `oidc` or `jwt`: the issuer of the token sent as the bearer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc_issuer_id: Option<String>,
    pub role_id: String,
    pub session_name: String,
    /// `api_key` (default); `oidc` or `jwt` when the bearer is a workload's OIDC token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_method: Option<String>,
    /// Seconds; at most the role's `max_session_duration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<i64>,
    /// When set, the token works only from this address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    /// Vultr's form of `ip_address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<AssumeContext>,
    /// A session policy (a policy document): the session acts with the role's permissions
    /// intersected with it, never more. At most 2 048 characters without the whitespace outside
    /// strings (as AWS's), and 200 actions and 200 resources in a statement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct AssumedRoleView {
    pub id: String,
    /// Present only in the 201 answer to the assume call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<String>,
    /// Empty for a workload's session.
    pub user_id: String,
    /// The issuer whose token made a workload's session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc_issuer_id: Option<String>,
    pub role_id: String,
    pub session_name: String,
    pub duration: i64,
    pub ip_address: Option<String>,
    pub conditions_met: Vec<String>,
    /// Seconds left, computed when the answer is made.
    pub remaining_duration: i64,
    pub auth_method: String,
    pub source_ip: String,
    pub date_assumed: String,
    pub date_expires: String,
    /// `Active`, `Ended` or `Terminated`.
    pub status: String,
    pub end_reason: Option<String>,
    /// The session policy given at assume, if any (normalised).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AssumedRoleEnvelope {
    pub assumed_role_session: AssumedRoleView,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AssumedRoleList {
    pub assumed_role_sessions: Vec<AssumedRoleView>,
    pub meta: Meta,
}

/// `GET /healthz`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Health {
    pub status: String,
    pub store: String,
}

/// `GET /readyz`: `ready` (200) when every check passes, else `not_ready` (503) with the
/// failing checks saying why.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: String,
    pub checks: Vec<ReadinessCheck>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
pub struct ReadinessCheck {
    /// `store` (answers a read) or `change_feed` (other nodes' changes arrive).
    pub name: String,
    pub ok: bool,
    /// Why the check failed; absent when it passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

// ---- login sessions and the session query -------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    pub email: String,
    pub password: String,
    /// Only needed when one email exists in several organizations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
}

/// Seed 002's `iam.Session` record, for every kind of session.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
pub struct IamSessionView {
    /// The session's public id.
    pub moid: String,
    /// A public handle derived from the token's digest (never the token): a holder of the
    /// token can recompute it, nobody else can recover the token from it.
    pub session_id: String,
    /// `login`, `assumed_role` or `gateway`.
    pub kind: String,
    /// Empty for a workload's session.
    pub user_id: String,
    /// The user's email, or a workload's subject (its token's `sub`).
    pub user_id_or_email: String,
    /// How the session was made: `password`, `api_key`, `oidc`, `jwt`, ...
    #[serde(default)]
    pub auth_method: String,
    /// The issuer whose token made a workload's session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc_issuer_id: Option<String>,
    /// The assumed role's name (assumed-role sessions); for a login session, the user's
    /// assignable roles at sign-in, comma-separated (empty when it holds none).
    pub role: String,
    pub role_id: Option<String>,
    pub session_name: String,
    pub client_ip_address: String,
    pub create_time: String,
    pub mod_time: String,
    pub expiration: String,
    pub idle_time_expiration: Option<String>,
    pub end_time: Option<String>,
    /// `Active`, `Ended` or `Terminated`.
    pub status: String,
    /// `logout`, `idle_timeout`, `expired`, `terminated` or `replaced`.
    pub end_reason: Option<String>,
    /// Failed sign-ins between the previous successful one and this one.
    pub failed_logins: i64,
    pub last_login_time: Option<String>,
    pub last_login_client: String,
    /// The organization.
    pub account_moid: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SessionEnvelope {
    pub session: IamSessionView,
}

/// The answer to sign-in: the session and its token (shown only here; also set as a cookie).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SignInResponse {
    pub session: IamSessionView,
    pub token: String,
    /// Send as `X-CSRF-Token` on state changes authenticated by the session cookie when the
    /// client sends no `Origin` header (also set as the readable `tessera_csrf` cookie).
    #[serde(default)]
    pub csrf_token: String,
}

/// `GET /v2/iam/sessions`: Intersight's list shape. `Count` is the number of matches (absent
/// with `$inlinecount=none`); `Results` is absent with `$count=true`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SessionQueryResponse {
    /// `mo.AggregateTransform` for an answer to `$apply`, whose `Results` are its groups;
    /// absent otherwise.
    #[serde(rename = "ObjectType", default, skip_serializing_if = "Option::is_none")]
    pub object_type: Option<String>,
    #[serde(rename = "Count", default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(rename = "Results", default, skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<serde_json::Map<String, Value>>>,
    /// Pass as `$skiptoken` to continue an ordered scan where this page ended: unlike
    /// `$skip`, it costs the same at any depth. Absent on the last page.
    #[serde(rename = "NextSkipToken", default, skip_serializing_if = "Option::is_none")]
    pub next_skip_token: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionLimitsView {
    /// Seconds, 300–18 000.
    pub idle_timeout: i64,
    /// Seconds, 350–31 536 000.
    pub absolute_timeout: i64,
    /// 1–1 000.
    pub max_sessions_per_user: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SessionLimitsEnvelope {
    pub session_limits: SessionLimitsView,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
pub struct LoginLockView {
    pub user_id: String,
    pub failed_logins: i64,
    pub locked: bool,
    pub locked_until: Option<String>,
    pub lock_count: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct LoginLockEnvelope {
    pub login_lock: LoginLockView,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TerminatedCount {
    pub terminated: u64,
}

/// RFC 7662 §2.2. Inactive tokens answer only `{"active": false}`.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq, JsonSchema)]
pub struct IntrospectionResponse {
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// The user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The user's email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// The session id, for session tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    /// The assumed role, for role-session tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_id: Option<String>,
}

/// One audit event (`GET /v2/audit-events`): who did what to which object, when, from where,
/// and how it ended. Never holds a secret.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
pub struct AuditEventView {
    /// The event's id (time-ordered).
    pub moid: String,
    pub time: String,
    /// `api_key`, `login_session`, `role_session`, `gateway_session`, `system` or `anonymous`.
    pub actor_kind: String,
    /// The acting user's id (empty for `system`).
    pub actor_id: String,
    pub actor_email: String,
    /// The API key's or session's id the actor used (never its token).
    pub credential_id: String,
    /// The action: a policy action (`iam.user.Create`) or `iam.session.SignIn`,
    /// `iam.session.SignOut`, `iam.user.SetPassword`, `iam.user.Lockout`, `tessera.Bootstrap`.
    pub action: String,
    pub target_kind: String,
    pub target_id: String,
    pub source_ip: String,
    pub request_id: String,
    /// `success`, `failure` or `denied`.
    pub result: String,
    pub reason: String,
    /// The organization.
    pub account_moid: String,
}

/// `GET /v2/audit-events`: the session query's list shape.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AuditQueryResponse {
    #[serde(rename = "Count", default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(rename = "Results", default, skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<serde_json::Map<String, Value>>>,
    #[serde(rename = "NextSkipToken", default, skip_serializing_if = "Option::is_none")]
    pub next_skip_token: Option<String>,
}
