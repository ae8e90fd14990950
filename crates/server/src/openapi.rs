//! The OpenAPI 3.1 document of the API (`GET /v2/openapi.json`, published as
//! `docs/openapi.json`), built from the code: one [`Operation`] per route of the route table
//! (a test fails on a route without an operation or an operation without a route), and every
//! body's schema derived (`schemars`) from the very wire type the handler reads or writes.
//!
//! Requests and answers are described with the contract they are used under: a request's
//! optional fields are those serde fills by default, an answer's those it may leave out. A
//! type used both ways whose two schemas differ gets a second component, `<Name>Input`.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::{JsonSchema, Schema};
use serde_json::{Map, Value, json};
use tessera_api_types::{self as wire, gateway as gw};

/// The error codes an answer's `error.code` may hold, with the status each comes with.
pub const ERROR_CODES: &[(&str, u16, &str)] = &[
    (
        "invalid_request",
        400,
        "a parameter or body field is wrong; `field` names it (a JSON path, `path.<name>` or a query option)",
    ),
    ("unauthorized", 401, "no credential, or one that is unknown, expired, ended or bound to another address"),
    ("forbidden", 403, "the caller's policies do not allow the action; the message names it"),
    ("cross_site_request", 403, "a state change carried by the session cookie without a same-origin proof"),
    ("not_found", 404, "no such object (or route)"),
    ("method_not_allowed", 405, "the path exists, the method does not"),
    ("conflict", 409, "a name or email already taken, or an object still in use"),
    ("payload_too_large", 413, "the body is over 256 KiB"),
    ("uri_too_long", 414, "the request target is too long"),
    ("unsupported_media_type", 415, "the body is not `application/json` (or, for introspection, not a form)"),
    ("headers_too_large", 431, "the request headers are too large"),
    ("too_many_requests", 429, "the server is overloaded; retry after `Retry-After` seconds"),
    ("unavailable", 503, "the store cannot be reached; retry shortly"),
    ("internal", 500, "a bug: details are in the server's log, never in the answer"),
];

/// Which query options an operation reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    None,
    /// `per_page` and `cursor`.
    Paging,
    /// The OData-style options of a record query.
    Records,
    /// Those of the session query, which also takes `$apply`.
    SessionRecords,
    /// `action` and `resource` of `GET /v2/auth/check`.
    Check,
}

/// What a request carries as its body.
#[derive(Clone, Copy)]
enum RequestBody {
    None,
    Json(fn(&mut SchemaGenerator) -> Schema),
    /// `application/x-www-form-urlencoded` with a `token` (RFC 7662).
    IntrospectionForm,
    /// AWS STS's query protocol: a form with `Action` and its parameters; answers are XML.
    StsForm,
}

/// One success answer: its status, its JSON body (none for 204) and what it means.
#[derive(Clone, Copy)]
struct Answer {
    status: u16,
    body: Option<fn(&mut SchemaGenerator) -> Schema>,
    description: &'static str,
}

/// One operation of the document; `method` and `path` are exactly a route table entry's.
#[derive(Clone)]
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    id: String,
    summary: &'static str,
    /// The action a caller's policies must allow, or who may call.
    access: &'static str,
    public: bool,
    query: Query,
    body: RequestBody,
    answers: Vec<Answer>,
    /// The singular name its 201 answer wraps the new object under; links lead from it to
    /// the operations on `{path}/{id}`.
    creates: Option<&'static str>,
}

fn schema_of<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

fn op(method: &'static str, path: &'static str, id: &str, summary: &'static str, access: &'static str) -> Operation {
    Operation {
        method,
        path,
        id: id.to_owned(),
        summary,
        access,
        public: access == "none",
        query: Query::None,
        body: RequestBody::None,
        answers: vec![],
        creates: None,
    }
}

impl Operation {
    fn json<T: JsonSchema>(mut self) -> Self {
        self.body = RequestBody::Json(schema_of::<T>);
        self
    }
    fn query(mut self, q: Query) -> Self {
        self.query = q;
        self
    }
    fn ok<T: JsonSchema>(self) -> Self {
        self.answer::<T>(200, "OK")
    }
    fn created<T: JsonSchema>(self) -> Self {
        self.answer::<T>(201, "Created")
    }
    fn answer<T: JsonSchema>(mut self, status: u16, description: &'static str) -> Self {
        self.answers.push(Answer { status, body: Some(schema_of::<T>), description });
        self
    }
    fn no_content(mut self, description: &'static str) -> Self {
        self.answers.push(Answer { status: 204, body: None, description });
        self
    }
    fn creates(mut self, name: &'static str) -> Self {
        self.creates = Some(name);
        self
    }
    /// The names of the `{…}` segments of the path.
    fn path_params(&self) -> Vec<&'static str> {
        self.path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect()
    }
}

// ---- answers the handlers build without a wire type of their own -------------------------------

/// `POST /v2/groups/{group_id}/members`.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct MemberAnswer {
    member: Member,
}

#[derive(JsonSchema)]
#[allow(dead_code)]
struct Member {
    group_id: String,
    user_id: String,
}

/// Attaching a policy to a user, a group or a role.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct AttachmentAnswer {
    attachment: Attachment,
}

#[derive(JsonSchema)]
#[allow(dead_code)]
struct Attachment {
    policy_id: String,
    /// `user`, `group` or `role`.
    target_type: String,
    target_id: String,
}

/// `GET /v2/auth/check`: only ever `true` (a refusal is a 403).
#[derive(JsonSchema)]
#[allow(dead_code)]
struct CheckAnswer {
    allowed: bool,
    action: String,
    resource: String,
}

/// The operations of the API, in the route table's order.
pub fn operations() -> Vec<Operation> {
    use Query::{Check, Paging, Records, SessionRecords};
    let mut v = vec![
        op("GET", "/healthz", "health", "Whether the server is alive", "none").ok::<wire::Health>(),
        op("GET", "/readyz", "ready", "Whether the node is ready for traffic (store, change feed)", "none")
            .ok::<wire::Readiness>()
            .answer::<wire::Readiness>(503, "Not ready: the failing checks say why"),
        op("GET", "/v2/openapi.json", "openapi", "This document", "none").ok::<Value>(),
        // users and their keys
        op("GET", "/v2/users", "listUsers", "List users", "iam.user.List").query(Paging).ok::<wire::UserList>(),
        op("POST", "/v2/users", "createUser", "Create a user", "iam.user.Create")
            .json::<wire::UserCreateWithId>()
            .created::<wire::UserEnvelope>()
            .creates("user"),
        op("GET", "/v2/users/{user_id}", "getUser", "Read a user", "iam.user.Read").ok::<wire::UserEnvelope>(),
        op(
            "PATCH",
            "/v2/users/{user_id}",
            "updateUser",
            "Change a user; `status: disabled` ends its sessions",
            "iam.user.Update",
        )
        .json::<wire::UserUpdate>()
        .ok::<wire::UserEnvelope>(),
        op(
            "DELETE",
            "/v2/users/{user_id}",
            "deleteUser",
            "Delete a user, its keys, memberships and sessions",
            "iam.user.Delete",
        )
        .no_content("Deleted"),
        op(
            "GET",
            "/v2/users/{user_id}/apikeys",
            "listApiKeys",
            "List a user's API keys (no secrets)",
            "iam.apikey.List",
        )
        .query(Paging)
        .ok::<wire::ApiKeyList>(),
        op(
            "POST",
            "/v2/users/{user_id}/apikeys",
            "createApiKey",
            "Create an API key; its secret is shown only here",
            "iam.apikey.Create",
        )
        .json::<wire::ApiKeyCreate>()
        .created::<wire::ApiKeyEnvelope>(),
        op(
            "DELETE",
            "/v2/users/{user_id}/apikeys/{apikey_id}",
            "deleteApiKey",
            "Delete an API key",
            "iam.apikey.Delete",
        )
        .no_content("Deleted"),
        op("GET", "/v2/users/me", "getMe", "The caller's own user", "caller").ok::<wire::UserEnvelope>(),
        op("GET", "/v2/users/me/groups", "listMyGroups", "The caller's groups", "caller").ok::<wire::GroupList>(),
        op(
            "GET",
            "/v2/users/me/roles",
            "listMyRoles",
            "The caller's assignable roles: direct, inherited, all",
            "caller",
        )
        .ok::<wire::assignments::UserRolesAnswer>(),
        op(
            "GET",
            "/v2/users/me/policies",
            "listMyPolicies",
            "Every policy the caller holds, and through what",
            "caller",
        )
        .ok::<wire::assignments::UserPoliciesAnswer>(),
        op(
            "GET",
            "/v2/users/{user_id}/policies",
            "listUserPolicies",
            "Policies attached to a user directly",
            "iam.user.Read",
        )
        .query(Paging)
        .ok::<wire::PolicyList>(),
        // groups
        op("GET", "/v2/groups", "listGroups", "List groups", "iam.group.List").query(Paging).ok::<wire::GroupList>(),
        op("POST", "/v2/groups", "createGroup", "Create a group", "iam.group.Create")
            .json::<wire::GroupInput>()
            .created::<wire::GroupEnvelope>()
            .creates("group"),
        op("GET", "/v2/groups/{group_id}", "getGroup", "Read a group", "iam.group.Read").ok::<wire::GroupEnvelope>(),
        op("PUT", "/v2/groups/{group_id}", "updateGroup", "Replace a group", "iam.group.Update")
            .json::<wire::GroupInput>()
            .ok::<wire::GroupEnvelope>(),
        op("DELETE", "/v2/groups/{group_id}", "deleteGroup", "Delete a group", "iam.group.Delete")
            .no_content("Deleted"),
        op("GET", "/v2/groups/{group_id}/members", "listMembers", "List a group's members", "iam.group.ListMembers")
            .query(Paging)
            .ok::<wire::MemberList>(),
        op("POST", "/v2/groups/{group_id}/members", "addMember", "Add a user to a group", "iam.group.AddMember")
            .json::<wire::GroupMemberAdd>()
            .answer::<MemberAnswer>(200, "Already a member")
            .answer::<MemberAnswer>(201, "Added"),
        op(
            "DELETE",
            "/v2/groups/{group_id}/members/{user_id}",
            "removeMember",
            "Remove a user from a group",
            "iam.group.RemoveMember",
        )
        .no_content("Removed"),
        op(
            "GET",
            "/v2/groups/{group_id}/policies",
            "listGroupPolicies",
            "Policies attached to a group",
            "iam.group.Read",
        )
        .query(Paging)
        .ok::<wire::PolicyList>(),
        // policies and their attachments
        op("GET", "/v2/policies", "listPolicies", "List policies", "iam.policy.List")
            .query(Paging)
            .ok::<wire::PolicyList>(),
        op("POST", "/v2/policies", "createPolicy", "Create a policy", "iam.policy.Create")
            .json::<wire::PolicyInput>()
            .created::<wire::PolicyEnvelope>()
            .creates("policy"),
        op("GET", "/v2/policies/{policy_id}", "getPolicy", "Read a policy", "iam.policy.Read")
            .ok::<wire::PolicyEnvelope>(),
        op(
            "PUT",
            "/v2/policies/{policy_id}",
            "updatePolicy",
            "Replace a policy (its whole document)",
            "iam.policy.Update",
        )
        .json::<wire::PolicyInput>()
        .ok::<wire::PolicyEnvelope>(),
        op("DELETE", "/v2/policies/{policy_id}", "deletePolicy", "Delete a policy", "iam.policy.Delete")
            .no_content("Deleted"),
        op(
            "GET",
            "/v2/policies/{policy_id}/users",
            "listPolicyUsers",
            "Users a policy is attached to",
            "iam.policy.ListUsers",
        )
        .query(Paging)
        .ok::<wire::UserList>(),
        op(
            "POST",
            "/v2/policies/{policy_id}/users/{user_id}",
            "attachUser",
            "Attach a policy to a user",
            "iam.policy.AttachUser",
        )
        .answer::<AttachmentAnswer>(200, "Attached already")
        .answer::<AttachmentAnswer>(201, "Attached"),
        op(
            "DELETE",
            "/v2/policies/{policy_id}/users/{user_id}",
            "detachUser",
            "Detach a policy from a user",
            "iam.policy.DetachUser",
        )
        .no_content("Detached"),
        op(
            "GET",
            "/v2/policies/{policy_id}/groups",
            "listPolicyGroups",
            "Groups a policy is attached to",
            "iam.policy.ListGroups",
        )
        .query(Paging)
        .ok::<wire::GroupList>(),
        op(
            "POST",
            "/v2/policies/{policy_id}/groups/{group_id}",
            "attachGroup",
            "Attach a policy to a group",
            "iam.policy.AttachGroup",
        )
        .answer::<AttachmentAnswer>(200, "Attached already")
        .answer::<AttachmentAnswer>(201, "Attached"),
        op(
            "DELETE",
            "/v2/policies/{policy_id}/groups/{group_id}",
            "detachGroup",
            "Detach a policy from a group",
            "iam.policy.DetachGroup",
        )
        .no_content("Detached"),
        // roles and trusts
        op("GET", "/v2/roles", "listRoles", "List roles", "iam.role.List").query(Paging).ok::<wire::RoleList>(),
        op("POST", "/v2/roles", "createRole", "Create a role", "iam.role.Create")
            .json::<wire::RoleInput>()
            .created::<wire::RoleEnvelope>()
            .creates("role"),
        op("GET", "/v2/roles/{role_id}", "getRole", "Read a role", "iam.role.Read").ok::<wire::RoleEnvelope>(),
        op("PUT", "/v2/roles/{role_id}", "updateRole", "Replace a role", "iam.role.Update")
            .json::<wire::RoleInput>()
            .ok::<wire::RoleEnvelope>(),
        op("DELETE", "/v2/roles/{role_id}", "deleteRole", "Delete a role and its trusts", "iam.role.Delete")
            .no_content("Deleted"),
        op("GET", "/v2/roles/{role_id}/policies", "listRolePolicies", "A role's policies", "iam.role.ListPolicies")
            .query(Paging)
            .ok::<wire::PolicyList>(),
        op(
            "POST",
            "/v2/roles/{role_id}/policies/{policy_id}",
            "attachRolePolicy",
            "Attach a policy to a role",
            "iam.role.AttachPolicy",
        )
        .answer::<AttachmentAnswer>(200, "Attached already")
        .answer::<AttachmentAnswer>(201, "Attached"),
        op(
            "DELETE",
            "/v2/roles/{role_id}/policies/{policy_id}",
            "detachRolePolicy",
            "Detach a policy from a role",
            "iam.role.DetachPolicy",
        )
        .no_content("Detached"),
        op(
            "GET",
            "/v2/roles/{role_id}/users",
            "listRoleUsers",
            "The users an assignable role is assigned to",
            "iam.role.ListUsers",
        )
        .query(Paging)
        .ok::<wire::assignments::RoleAssignmentList>(),
        op(
            "POST",
            "/v2/roles/{role_id}/users/{user_id}",
            "assignRoleToUser",
            "Assign an assignable role (Vultr's method)",
            "iam.role.AttachUser",
        )
        .answer::<wire::assignments::RoleAssignmentEnvelope>(201, "Assigned")
        .answer::<wire::assignments::RoleAssignmentEnvelope>(200, "Already assigned"),
        op(
            "PUT",
            "/v2/roles/{role_id}/users/{user_id}",
            "putRoleAssignmentUser",
            "Assign an assignable role (idempotent)",
            "iam.role.AttachUser",
        )
        .answer::<wire::assignments::RoleAssignmentEnvelope>(201, "Assigned")
        .answer::<wire::assignments::RoleAssignmentEnvelope>(200, "Already assigned"),
        op(
            "DELETE",
            "/v2/roles/{role_id}/users/{user_id}",
            "unassignRoleFromUser",
            "Take an assigned role back",
            "iam.role.DetachUser",
        )
        .no_content("Unassigned"),
        op(
            "GET",
            "/v2/roles/{role_id}/groups",
            "listRoleGroups",
            "The groups an assignable role is assigned to",
            "iam.role.ListGroups",
        )
        .query(Paging)
        .ok::<wire::assignments::RoleAssignmentList>(),
        op(
            "POST",
            "/v2/roles/{role_id}/groups/{group_id}",
            "assignRoleToGroup",
            "Assign an assignable role (Vultr's method)",
            "iam.role.AttachGroup",
        )
        .answer::<wire::assignments::RoleAssignmentEnvelope>(201, "Assigned")
        .answer::<wire::assignments::RoleAssignmentEnvelope>(200, "Already assigned"),
        op(
            "PUT",
            "/v2/roles/{role_id}/groups/{group_id}",
            "putRoleAssignmentGroup",
            "Assign an assignable role (idempotent)",
            "iam.role.AttachGroup",
        )
        .answer::<wire::assignments::RoleAssignmentEnvelope>(201, "Assigned")
        .answer::<wire::assignments::RoleAssignmentEnvelope>(200, "Already assigned"),
        op(
            "DELETE",
            "/v2/roles/{role_id}/groups/{group_id}",
            "unassignRoleFromGroup",
            "Take an assigned role back",
            "iam.role.DetachGroup",
        )
        .no_content("Unassigned"),
        op("GET", "/v2/role-trusts", "listTrusts", "List role trusts", "iam.roletrust.List")
            .query(Paging)
            .ok::<wire::TrustList>(),
        op("POST", "/v2/role-trusts", "createTrust", "Create a role trust", "iam.roletrust.Create")
            .json::<wire::TrustInput>()
            .created::<wire::TrustEnvelope>()
            .creates("role_trust"),
        op("GET", "/v2/role-trusts/by-role/{role_id}", "listTrustsByRole", "A role's trusts", "iam.roletrust.List")
            .query(Paging)
            .ok::<wire::TrustList>(),
        op("GET", "/v2/role-trusts/{role_trust_id}", "getTrust", "Read a role trust", "iam.roletrust.Read")
            .ok::<wire::TrustEnvelope>(),
        op(
            "PUT",
            "/v2/role-trusts/{role_trust_id}",
            "updateTrust",
            "Replace a role trust (not its role)",
            "iam.roletrust.Update",
        )
        .json::<wire::TrustInput>()
        .ok::<wire::TrustEnvelope>(),
        op("DELETE", "/v2/role-trusts/{role_trust_id}", "deleteTrust", "Delete a role trust", "iam.roletrust.Delete")
            .no_content("Deleted"),
        // OIDC issuers
        op("GET", "/v2/oidc/issuer", "listOidcIssuers", "List OIDC issuers", "iam.oidcissuer.List")
            .query(Paging)
            .ok::<wire::oidc::IssuerList>(),
        op("POST", "/v2/oidc/issuer", "createOidcIssuer", "Register an OIDC issuer", "iam.oidcissuer.Create")
            .json::<wire::oidc::IssuerInput>()
            .created::<wire::oidc::IssuerView>(),
        op("GET", "/v2/oidc/issuer/{issuer_id}", "getOidcIssuer", "Read an OIDC issuer", "iam.oidcissuer.Read")
            .ok::<wire::oidc::IssuerEnvelope>(),
        op(
            "PATCH",
            "/v2/oidc/issuer/{issuer_id}",
            "updateOidcIssuer",
            "Replace an OIDC issuer",
            "iam.oidcissuer.Update",
        )
        .json::<wire::oidc::IssuerInput>()
        .ok::<wire::oidc::IssuerEnvelope>(),
        op(
            "DELETE",
            "/v2/oidc/issuer/{issuer_id}",
            "deleteOidcIssuer",
            "Delete an OIDC issuer and its trusts",
            "iam.oidcissuer.Delete",
        )
        .no_content("Deleted"),
        op(
            "GET",
            "/v2/oidc/issuer/{issuer_id}/jwks",
            "getOidcIssuerJwks",
            "The issuer's public keys",
            "iam.oidcissuer.Read",
        )
        .ok::<wire::oidc::Jwks>(),
        // assumed roles
        op(
            "POST",
            "/v2/assumed-roles/assume",
            "assumeRole",
            "Assume a role: a role-session token",
            "iam.role.AssumeRole",
        )
        .json::<wire::AssumeRequest>()
        .created::<wire::AssumedRoleEnvelope>(),
        op(
            "GET",
            "/v2/assumed-roles/users/{user_id}/sessions",
            "listAssumedRoles",
            "A user's active role sessions",
            "iam.assumedrole.List",
        )
        .query(Paging)
        .ok::<wire::AssumedRoleList>(),
        op("GET", "/v2/assumed-roles/{session_id}", "getAssumedRole", "Read a role session", "iam.assumedrole.Read")
            .ok::<wire::AssumedRoleEnvelope>(),
        op(
            "DELETE",
            "/v2/assumed-roles/{session_id}",
            "revokeAssumedRole",
            "Revoke a role session",
            "iam.assumedrole.Delete",
        )
        .no_content("Revoked: the token stops working on the next request"),
        op(
            "POST",
            "/v2/assumed-roles/compatibility/aws/sts",
            "awsStsCompatibility",
            "AWS STS's AssumeRole and AssumeRoleWithWebIdentity (form in, XML out; see docs/sts.md)",
            "iam.role.AssumeRole",
        ),
        // login sessions and session administration
        op("POST", "/v2/sessions", "signIn", "Sign in: a login session (also set as a cookie)", "none")
            .json::<wire::SignInRequest>()
            .created::<wire::SignInResponse>(),
        op("GET", "/v2/sessions/current", "currentSession", "The caller's own session", "caller")
            .ok::<wire::SessionEnvelope>(),
        op("DELETE", "/v2/sessions/current", "signOut", "Sign out (ends the caller's session)", "caller")
            .no_content("Signed out"),
        op("GET", "/v2/iam/sessions", "querySessions", "Query sessions of every kind", "iam.session.List")
            .query(SessionRecords)
            .ok::<wire::SessionQueryResponse>(),
        op("GET", "/v2/iam/sessions/{moid}", "getSession", "Read a session", "iam.session.Read")
            .ok::<wire::SessionEnvelope>(),
        op("DELETE", "/v2/iam/sessions/{moid}", "terminateSession", "Terminate a session", "iam.session.Terminate")
            .ok::<wire::SessionEnvelope>(),
        op(
            "GET",
            "/v2/iam/session-limits",
            "getSessionLimits",
            "The organization's session limits",
            "iam.sessionlimits.Read",
        )
        .ok::<wire::SessionLimitsEnvelope>(),
        op("PUT", "/v2/iam/session-limits", "putSessionLimits", "Set the session limits", "iam.sessionlimits.Update")
            .json::<wire::SessionLimitsView>()
            .ok::<wire::SessionLimitsEnvelope>(),
        op(
            "DELETE",
            "/v2/users/{user_id}/sessions",
            "terminateUserSessions",
            "Terminate a user's sessions",
            "iam.session.Terminate",
        )
        .ok::<wire::TerminatedCount>(),
        op("GET", "/v2/users/{user_id}/login-lock", "getLoginLock", "A user's sign-in lock", "iam.user.Read")
            .ok::<wire::LoginLockEnvelope>(),
        op(
            "DELETE",
            "/v2/users/{user_id}/login-lock",
            "clearLoginLock",
            "Clear a user's sign-in lock",
            "iam.user.Unlock",
        )
        .no_content("Cleared"),
        op("POST", "/v2/oauth2/introspect", "introspect", "RFC 7662 token introspection", "iam.session.Introspect")
            .ok::<wire::IntrospectionResponse>(),
        op(
            "ANY",
            "/v2/auth/forward",
            "forwardAuth",
            "Forward-auth for a trusted proxy: identity headers",
            "trusted proxy",
        ),
        op("GET", "/v2/auth/check", "checkAction", "Whether the caller may perform an action", "caller")
            .query(Check)
            .ok::<CheckAnswer>(),
        // the audit trail
        op("GET", "/v2/audit-events", "queryAuditEvents", "Query the audit trail", "iam.auditevent.List")
            .query(Records)
            .ok::<wire::AuditQueryResponse>(),
    ];
    for o in &mut v {
        if o.path == "/v2/oauth2/introspect" {
            o.body = RequestBody::IntrospectionForm;
        }
        if o.path == "/v2/assumed-roles/compatibility/aws/sts" {
            o.body = RequestBody::StsForm;
            o.answers.push(Answer { status: 200, body: None, description: "STS's XML answer with the credentials" });
        }
        if o.path == "/v2/auth/forward" {
            o.answers.push(Answer { status: 200, body: None, description: "Valid: the `X-Tessera-*` headers say who" });
        }
    }
    v.extend(gateway_operations::<gw::Service>("Service", "service", "gateway.service"));
    v.extend(gateway_operations::<gw::Route>("Route", "route", "gateway.route"));
    v.extend(gateway_operations::<gw::Plugin>("Plugin", "plugin", "gateway.plugin"));
    v.extend(gateway_operations::<gw::CaCertificate>("CaCertificate", "ca_certificate", "gateway.cacertificate"));
    v
}

fn gateway_operations<T: gw::GatewayObject + JsonSchema>(
    title: &str,
    singular: &'static str,
    action: &'static str,
) -> Vec<Operation>
where
    T::Request: JsonSchema,
    T::One: JsonSchema,
    T::List: JsonSchema,
{
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let base = T::PATH;
    let one = leak(format!("{base}/{{id}}"));
    let a = |what: &str| leak(format!("{action}.{what}"));
    vec![
        op("GET", base, &format!("listGateway{title}s"), "List the gateway's objects of this kind", a("List"))
            .ok::<T::List>(),
        op("POST", base, &format!("createGateway{title}"), "Create a gateway object", a("Create"))
            .json::<T::Request>()
            .created::<T::One>()
            .creates(singular),
        op("GET", one, &format!("getGateway{title}"), "Read a gateway object", a("Read")).ok::<T::One>(),
        op("PUT", one, &format!("replaceGateway{title}"), "Replace a gateway object", a("Update"))
            .json::<T::Request>()
            .ok::<T::One>(),
        op("PATCH", one, &format!("updateGateway{title}"), "Change a gateway object (merges)", a("Update"))
            .json::<T::Request>()
            .ok::<T::One>(),
        op("DELETE", one, &format!("deleteGateway{title}"), "Delete a gateway object", a("Delete"))
            .no_content("Deleted"),
    ]
}

/// The document, built once.
pub fn document() -> &'static Value {
    static DOC: LazyLock<Value> = LazyLock::new(build);
    &DOC
}

/// `GET /v2/openapi.json`.
pub(crate) async fn serve() -> Response {
    static BYTES: LazyLock<Vec<u8>> =
        LazyLock::new(|| serde_json::to_vec(document()).expect("the document serializes"));
    ([(header::CONTENT_TYPE, "application/json")], axum::body::Bytes::from_static(&BYTES)).into_response()
}

const COMPONENTS: &str = "#/components/schemas";

fn generator(serialize: bool) -> SchemaGenerator {
    let s = SchemaSettings::draft2020_12().with(|s| {
        s.definitions_path = COMPONENTS.into();
        s.meta_schema = None;
    });
    if serialize { s.for_serialize() } else { s.for_deserialize() }.into_generator()
}

fn build() -> Value {
    let ops = operations();
    let mut answers = generator(true);
    let mut requests = generator(false);
    let mut paths = Map::new();
    let mut request_schemas: Vec<(String, String, Value)> = vec![];
    for o in &ops {
        let methods: &[&str] = if o.method == "ANY" {
            &["get", "put", "post", "delete", "options", "head", "patch", "trace"]
        } else {
            &[o.method]
        };
        for m in methods {
            let m = m.to_ascii_lowercase();
            let mut item = operation_object(o, &m, &mut answers);
            if let RequestBody::Json(f) = o.body {
                request_schemas.push((o.path.to_owned(), m.clone(), f(&mut requests).to_value()));
                item["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": null}}});
            }
            paths
                .entry(o.path.to_owned())
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("a path item")
                .insert(m, item);
        }
    }
    let mut schemas = answers.take_definitions(true);
    // Request components that differ from the answer component of the same name are renamed.
    let mut request_defs = requests.take_definitions(true);
    let renames: Vec<String> = request_defs
        .iter()
        .filter(|(name, schema)| schemas.get(*name).is_some_and(|s| s != *schema))
        .map(|(name, _)| name.clone())
        .collect();
    let rename = |v: &mut Value| rename_refs(v, &renames);
    for (name, mut schema) in std::mem::take(&mut request_defs) {
        rename(&mut schema);
        let name = if renames.contains(&name) { format!("{name}Input") } else { name };
        schemas.insert(name, schema);
    }
    for (path, m, mut schema) in request_schemas {
        rename(&mut schema);
        paths[&path][&m]["requestBody"]["content"]["application/json"]["schema"] = schema;
    }
    schemas.insert("ErrorBody".into(), error_schema());
    for (method, path, example) in request_examples() {
        if let Some(content) = paths.get_mut(path).and_then(|p| p.get_mut(method)).and_then(|o| {
            o.get_mut("requestBody").and_then(|b| b.get_mut("content")).and_then(|c| c.get_mut("application/json"))
        }) {
            content["example"] = example;
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Tessera",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The session authority's `/v2` API. Generated from the code (`crates/server/src/openapi.rs`); see docs/api.md for the rules behind each call.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"sessionCookie": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key (`tessera_ak_…`), a login-session token (`tessera_ls_…`) or an assumed-role session token (`tessera_rs_…`).",
                },
                "sessionCookie": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "tessera_session",
                    "description": "The login session's cookie that sign-in sets; a state change it carries needs `Origin` or `X-CSRF-Token`.",
                },
            },
            "parameters": parameters(),
            "responses": error_answers(),
        },
    })
}

fn rename_refs(v: &mut Value, renames: &[String]) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get_mut("$ref")
                && let Some(name) = r.strip_prefix(&format!("{COMPONENTS}/"))
                && renames.iter().any(|n| n == name)
            {
                *r = format!("{COMPONENTS}/{name}Input");
            }
            m.values_mut().for_each(|v| rename_refs(v, renames));
        }
        Value::Array(a) => a.iter_mut().for_each(|v| rename_refs(v, renames)),
        _ => {}
    }
}

fn error_schema() -> Value {
    let codes: Vec<&str> = ERROR_CODES.iter().map(|(c, ..)| *c).collect();
    let list: String = ERROR_CODES.iter().map(|(c, s, m)| format!("\n- `{c}` ({s}): {m}")).collect();
    json!({
        "type": "object",
        "description": format!("Every 4xx and 5xx answer.{list}"),
        "required": ["error"],
        "properties": {"error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "enum": codes},
                "message": {"type": "string"},
                "field": {"type": "string", "description": "The failing field: a JSON path of the body, `path.<name>`, or a query option."},
            },
        }},
    })
}

fn parameters() -> Value {
    let q = |name: &str, schema: Value, description: &str| json!({"name": name, "in": "query", "required": false, "schema": schema, "description": description});
    json!({
        "per_page": q("per_page", json!({"type": "integer", "minimum": 1, "maximum": 500, "default": 100}), "Objects per page."),
        "cursor": q("cursor", json!({"type": "string"}), "`meta.links.next` or `meta.links.prev` of a previous page; opaque."),
        "filter": q("$filter", json!({"type": "string"}), "A filter, e.g. `status eq 'Active' and create_time gt now() sub PT2H` (see docs/api.md for the grammar)."),
        "orderby": q("$orderby", json!({"type": "string"}), "`field [asc|desc]`, comma-separated."),
        "top": q("$top", json!({"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}), "At most this many results."),
        "skip": q("$skip", json!({"type": "integer", "minimum": 0}), "Skip this many results."),
        "select": q("$select", json!({"type": "string"}), "The fields to return, comma-separated."),
        "count": q("$count", json!({"type": "boolean"}), "`true`: answer only `Count`."),
        "inlinecount": q("$inlinecount", json!({"type": "string", "enum": ["allpages", "none"], "default": "allpages"}), "`none` leaves `Count` out."),
        "skiptoken": q("$skiptoken", json!({"type": "string"}), "`NextSkipToken` of the previous page; opaque."),
        "apply": q("$apply", json!({"type": "string"}), "Aggregation instead of records: `groupby((kind,status),aggregate($count as count))`, `aggregate($count as total)`, with optional `filter(...)/` steps first; stands alone (no other option with it). The answer's `ObjectType` is `mo.AggregateTransform` and each of `Results` is one group (see docs/api.md)."),
    })
}

/// The error answers every operation shares, by status: `components/responses/<status>`.
const ERROR_ANSWERS: &[(u16, &str)] = &[
    (400, "A parameter or field is invalid; `field` names it"),
    (401, "No valid credential (for sign-in: wrong email or password, a locked or disabled account)"),
    (403, "Not allowed; or a cookie-carried change (or a sign-in) without a same-origin proof"),
    (404, "No such object"),
    (409, "A name or email taken, or an object still in use"),
    (413, "The body is over 256 KiB"),
    (415, "The body's content type is not the one this operation takes"),
    (429, "Overloaded: retry after `Retry-After` seconds"),
    (
        503,
        "`unavailable`: the store cannot be reached; retry shortly. `contended`: the write collided with concurrent \
         ones on every attempt and was rolled back (nothing saved); send it again after `Retry-After`",
    ),
];

fn error_answers() -> Value {
    let mut m = Map::new();
    for (status, description) in ERROR_ANSWERS {
        let mut answer = json!({"description": description, "content": {"application/json": {"schema": {"$ref": format!("{COMPONENTS}/ErrorBody")}}}});
        if *status == 503 {
            answer["headers"] = json!({"Retry-After": {
                "description": "Seconds to wait before sending the request again (sent with `contended`)",
                "schema": {"type": "integer", "minimum": 0}
            }});
        }
        m.insert(status.to_string(), answer);
    }
    Value::Object(m)
}

fn error_answer(status: u16) -> Value {
    json!({"$ref": format!("#/components/responses/{status}")})
}

fn operation_object(o: &Operation, method: &str, g: &mut SchemaGenerator) -> Value {
    let mut params: Vec<Value> = o
        .path_params()
        .into_iter()
        .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}))
        .collect();
    let refs: &[&str] = match o.query {
        Query::None => &[],
        Query::Paging => &["per_page", "cursor"],
        Query::Records => &["filter", "orderby", "top", "skip", "select", "count", "inlinecount", "skiptoken"],
        Query::SessionRecords => {
            &["filter", "orderby", "top", "skip", "select", "count", "inlinecount", "skiptoken", "apply"]
        }
        Query::Check => &[],
    };
    params.extend(refs.iter().map(|r| json!({"$ref": format!("#/components/parameters/{r}")})));
    if o.query == Query::Check {
        params.push(json!({"name": "action", "in": "query", "required": true, "schema": {"type": "string"}, "description": "A policy action, e.g. `iam.role.Read`."}));
        params.push(
            json!({"name": "resource", "in": "query", "required": false, "schema": {"type": "string", "default": "*"}}),
        );
    }
    let mut responses = Map::new();
    for a in &o.answers {
        let mut r = json!({"description": a.description});
        if let Some(f) = a.body {
            r["content"] = json!({"application/json": {"schema": f(g).to_value()}});
        }
        responses.insert(a.status.to_string(), r);
    }
    let has_input = !params.is_empty() || !matches!(o.body, RequestBody::None);
    if has_input {
        responses.entry("400").or_insert_with(|| error_answer(400));
    }
    if !o.public {
        responses.entry("401").or_insert_with(|| error_answer(401));
        responses.entry("403").or_insert_with(|| error_answer(403));
    }
    if o.method == "POST" && o.path == "/v2/sessions" {
        responses.entry("401").or_insert_with(|| error_answer(401));
        responses.entry("403").or_insert_with(|| error_answer(403));
        responses.entry("429").or_insert_with(|| error_answer(429));
    }
    // `/v2/sessions/current` with an API key: there is no session to read or end; and a body
    // may name an object (a role, a user, a service) that does not exist.
    if !o.path_params().is_empty() || o.path == "/v2/sessions/current" || matches!(o.body, RequestBody::Json(_)) {
        responses.entry("404").or_insert_with(|| error_answer(404));
    }
    if matches!(o.method, "POST" | "PUT" | "PATCH" | "DELETE") && !o.public {
        responses.entry("409").or_insert_with(|| error_answer(409));
    }
    if !matches!(o.body, RequestBody::None) {
        responses.entry("413").or_insert_with(|| error_answer(413));
        responses.entry("415").or_insert_with(|| error_answer(415));
    }
    if !o.public {
        responses.entry("429").or_insert_with(|| error_answer(429));
    }
    responses.entry("503").or_insert_with(|| error_answer(503));
    let mut item = json!({
        "operationId": if o.method == "ANY" { format!("{}_{method}", o.id) } else { o.id.clone() },
        "summary": o.summary,
        "description": format!("Needs: {}.", if o.public { "nothing (public)" } else { o.access }),
        "tags": [tag(o.path)],
        "parameters": params,
        "responses": responses,
    });
    if o.public {
        item["security"] = json!([]);
    }
    if matches!(o.body, RequestBody::StsForm) {
        let text = |d: &str| json!({"type": "string", "description": d});
        item["requestBody"] = json!({"required": true, "content": {"application/x-www-form-urlencoded": {"schema": {
            "type": "object", "required": ["Action", "RoleArn", "RoleSessionName"], "properties": {
                "Action": {"type": "string", "enum": ["AssumeRole", "AssumeRoleWithWebIdentity"]},
                "RoleArn": text("arn:aws:iam::<organization id>:role/<role id>"),
                "RoleSessionName": text("2 to 64 of letters, digits and _+=,.@-"),
                "DurationSeconds": {"type": "integer", "description": "at most the role's max_session_duration"},
                "WebIdentityToken": text("AssumeRoleWithWebIdentity: the workload's OIDC token"),
                "ProviderId": text("AssumeRoleWithWebIdentity: the Tessera OIDC issuer id"),
                "Policy": text("a session policy (a policy document as JSON): the session gets the role's permissions intersected with it"),
            },
        }}}});
        item["responses"]["200"]["content"] = json!({"text/xml": {"schema": {"type": "string"}}});
        // STS's own refusals are its XML `ErrorResponse`; the API's (a missing credential,
        // a body over the limit) stay `ErrorBody`. Found by schemathesis (ST105).
        if let Some(responses) = item["responses"].as_object_mut() {
            for (status, r) in responses.iter_mut().filter(|(s, _)| !s.starts_with('2')) {
                *r = json!({
                    "description": format!("Refused ({status}): STS's XML ErrorResponse, or the API's ErrorBody"),
                    "content": {
                        "text/xml": {"schema": {"type": "string"}},
                        "application/json": {"schema": {"$ref": format!("{COMPONENTS}/ErrorBody")}},
                    },
                });
            }
        }
    }
    if matches!(o.body, RequestBody::IntrospectionForm) {
        item["requestBody"] = json!({"required": true, "content": {"application/x-www-form-urlencoded": {"schema": {
            "type": "object", "required": ["token"], "properties": {"token": {"type": "string", "description": "The token to introspect."}},
        }}}});
    }
    if let Some(name) = o.creates {
        item["responses"]["201"]["links"] = links_from(o, name);
    }
    item
}

/// Links from a create to the operations on the object it made (`{path}/{x_id}`), so
/// clients and schemathesis's stateful phase can follow them.
fn links_from(create: &Operation, name: &str) -> Value {
    let mut links = Map::new();
    for o in operations() {
        let Some(rest) = o.path.strip_prefix(create.path).and_then(|r| r.strip_prefix('/')) else { continue };
        let params = o.path_params();
        let [param] = params.as_slice() else { continue };
        if o.method == "ANY" || !rest.starts_with(&format!("{{{param}}}")) {
            continue;
        }
        links.insert(
            o.id.clone(),
            json!({"operationId": o.id, "parameters": {*param: format!("$response.body#/{name}/id")}}),
        );
    }
    Value::Object(links)
}

fn tag(path: &str) -> &'static str {
    let seg = path.trim_start_matches("/v2/").split('/').next().unwrap_or("");
    match seg {
        "users" | "groups" | "policies" | "roles" | "role-trusts" | "oidc" => "iam",
        "assumed-roles" => "assumed roles",
        "sessions" | "iam" | "oauth2" | "auth" => "sessions",
        "audit-events" => "audit",
        "gateway" => "gateway",
        _ => "server",
    }
}

/// The service id the route example names (a test puts the example service's real id there).
pub const EXAMPLE_SERVICE_ID: &str = "0190f3a1-7c2d-7b31-9d3e-00000000005e";

/// One example request body for the operations a newcomer calls first (method in lowercase,
/// as in the document). Each is accepted by the server as it stands: a test sends every one.
pub fn request_examples() -> Vec<(&'static str, &'static str, Value)> {
    let role = "0190f3a1-7c2d-7b31-9d3e-6a1b2c3d4e5f";
    let user = "0190f3a1-7c2d-7b31-9d3e-000000000001";
    vec![
        (
            "post",
            "/v2/users",
            json!({"email": "ann@example.com", "first_name": "Ann", "last_name": "Lee", "password": "correct horse battery staple"}),
        ),
        ("post", "/v2/groups", json!({"display_name": "operators", "description": "On-call operators"})),
        (
            "post",
            "/v2/policies",
            json!({"name": "read-users", "description": "Read any user", "policy_document": {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": ["iam.user.Read", "iam.user.List"], "Resource": ["*"]}]
            }}),
        ),
        ("post", "/v2/roles", json!({"name": "deployer", "role_type": "assumable", "max_session_duration": 3600})),
        (
            "post",
            "/v2/role-trusts",
            json!({"role_id": role, "trust_type": "TemporaryAssumption", "trusted_user_id": user,
                   "conditions": {"ip_address": ["10.0.0.0/8"]}, "valid_until": "2099-01-01T00:00:00Z"}),
        ),
        (
            "post",
            "/v2/assumed-roles/assume",
            json!({"user_id": user, "role_id": role, "session_name": "deploy-42", "duration": 900}),
        ),
        ("post", "/v2/sessions", json!({"email": "ann@example.com", "password": "correct horse battery staple"})),
        ("post", "/v2/users/{user_id}/apikeys", json!({"name": "ci", "date_expire": "2099-01-01T00:00:00Z"})),
        (
            "put",
            "/v2/iam/session-limits",
            json!({"idle_timeout": 1800, "absolute_timeout": 43200, "max_sessions_per_user": 5}),
        ),
        ("post", "/v2/gateway/services", json!({"name": "app", "url": "http://127.0.0.1:3000"})),
        (
            "post",
            "/v2/gateway/routes",
            json!({"name": "app", "paths": ["/app"], "strip_path": true, "service": {"id": EXAMPLE_SERVICE_ID}}),
        ),
        (
            "post",
            "/v2/gateway/plugins",
            json!({"name": "session", "config": {
                "secret": "a-long-random-secret-shared-by-every-node", "idling_timeout": 900, "cookie_secure": true
            }}),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_has_one_operation_and_every_operation_a_route() {
        let routes: std::collections::BTreeSet<(&str, &str)> =
            crate::route_table().iter().map(|r| (r.method, r.path)).collect();
        let ops: std::collections::BTreeSet<(&str, &str)> = operations().iter().map(|o| (o.method, o.path)).collect();
        let no_op: Vec<_> = routes.difference(&ops).collect();
        let no_route: Vec<_> = ops.difference(&routes).collect();
        assert!(no_op.is_empty(), "routes without an operation in openapi.rs: {no_op:?}");
        assert!(no_route.is_empty(), "operations without a route: {no_route:?}");
        assert_eq!(operations().len(), routes.len(), "an operation is listed twice");
        // The access the document states is the table's.
        for r in crate::route_table() {
            let o = operations().into_iter().find(|o| (o.method, o.path) == (r.method, r.path)).unwrap();
            let expected = match r.access {
                crate::Access::Public => "none",
                crate::Access::Caller => "caller",
                crate::Access::Proxy => "trusted proxy",
                crate::Access::Action(a) => a,
            };
            assert_eq!(o.access, expected, "{} {}", r.method, r.path);
        }
    }
}
