//! The route table of the `/v2` API: every route, its method, who may call it, and its
//! handler. The router is built from this table and nothing else, so the authorization matrix
//! test (`crates/testkit/tests/it/authz_matrix.rs`), which walks [`route_table`], covers every
//! route there is; a tidy test in this crate checks no route is added around it.

pub mod assignments;
pub mod assumed;
pub mod audit;
pub mod gateway;
pub mod iam;
pub mod oidc;
pub mod sessions;
pub mod sts;

use std::sync::Arc;

use axum::handler::Handler;
use axum::routing::{MethodFilter, MethodRouter};
use tessera_app::App;
use tessera_app::actions as act;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without credentials (health, sign-in).
    Public,
    /// Any authenticated caller, about itself (its own session, `auth/check`).
    Caller,
    /// A caller whose policies allow this action; the app checks it before anything else.
    Action(&'static str),
    /// A forward-auth caller (a trusted proxy or a configured local one), with a token to check.
    Proxy,
}

/// One route of the table, without its handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSpec {
    /// `GET`, `POST`, `PUT`, `PATCH`, `DELETE`, or `ANY`.
    pub method: &'static str,
    /// The path template, `{name}` for a path parameter.
    pub path: &'static str,
    pub access: Access,
}

pub(crate) struct Entry {
    pub spec: RouteSpec,
    pub handler: MethodRouter<Arc<App>>,
}

/// A table entry whose method router answers exactly the method named in its spec.
fn at<H, T>(method: &'static str, path: &'static str, access: Access, handler: H) -> Entry
where
    H: Handler<T, Arc<App>>,
    T: 'static,
{
    let handler = match method {
        // Every method of RFC 9110 (and PATCH), not any token a client sends: `QUERY` or
        // `FOO` gets 405 like elsewhere, not a forward-auth 200 (found by schemathesis).
        "ANY" => {
            use MethodFilter as M;
            let standard = M::GET.or(M::HEAD).or(M::POST).or(M::PUT).or(M::PATCH).or(M::DELETE).or(M::OPTIONS);
            axum::routing::on(standard.or(M::TRACE), handler)
        }
        m => {
            let method = axum::http::Method::from_bytes(m.as_bytes()).expect("a method name");
            axum::routing::on(MethodFilter::try_from(method).expect("a routable method"), handler)
        }
    };
    Entry { spec: RouteSpec { method, path, access }, handler }
}

use Access::{Action as A, Caller, Proxy, Public};

/// Every route of the API, in the order the documentation lists them.
pub(crate) fn table() -> Vec<Entry> {
    let mut t = vec![
        at("GET", "/healthz", Public, crate::healthz),
        at("GET", "/readyz", Public, crate::readyz),
        at("GET", "/v2/openapi.json", Public, crate::openapi::serve),
        // users and their keys
        at("GET", "/v2/users", A(act::USER_LIST), iam::list_users),
        at("POST", "/v2/users", A(act::USER_CREATE), iam::create_user),
        at("GET", "/v2/users/{user_id}", A(act::USER_READ), iam::get_user),
        at("PATCH", "/v2/users/{user_id}", A(act::USER_UPDATE), iam::update_user),
        at("DELETE", "/v2/users/{user_id}", A(act::USER_DELETE), iam::delete_user),
        at("GET", "/v2/users/{user_id}/apikeys", A(act::APIKEY_LIST), iam::list_api_keys),
        at("POST", "/v2/users/{user_id}/apikeys", A(act::APIKEY_CREATE), iam::create_api_key),
        at("DELETE", "/v2/users/{user_id}/apikeys/{apikey_id}", A(act::APIKEY_DELETE), iam::delete_api_key),
        // the caller itself
        at("GET", "/v2/users/me", Caller, assignments::me),
        at("GET", "/v2/users/me/groups", Caller, assignments::my_groups),
        at("GET", "/v2/users/me/roles", Caller, assignments::my_roles),
        at("GET", "/v2/users/me/policies", Caller, assignments::my_policies),
        at("GET", "/v2/users/{user_id}/policies", A(act::USER_READ), iam::list_user_policies),
        // groups
        at("GET", "/v2/groups", A(act::GROUP_LIST), iam::list_groups),
        at("POST", "/v2/groups", A(act::GROUP_CREATE), iam::create_group),
        at("GET", "/v2/groups/{group_id}", A(act::GROUP_READ), iam::get_group),
        at("PUT", "/v2/groups/{group_id}", A(act::GROUP_UPDATE), iam::update_group),
        at("DELETE", "/v2/groups/{group_id}", A(act::GROUP_DELETE), iam::delete_group),
        at("GET", "/v2/groups/{group_id}/members", A(act::GROUP_LIST_MEMBERS), iam::list_members),
        at("POST", "/v2/groups/{group_id}/members", A(act::GROUP_ADD_MEMBER), iam::add_member),
        at("DELETE", "/v2/groups/{group_id}/members/{user_id}", A(act::GROUP_REMOVE_MEMBER), iam::remove_member),
        at("GET", "/v2/groups/{group_id}/policies", A(act::GROUP_READ), iam::list_group_policies),
        // policies and their attachments
        at("GET", "/v2/policies", A(act::POLICY_LIST), iam::list_policies),
        at("POST", "/v2/policies", A(act::POLICY_CREATE), iam::create_policy),
        at("GET", "/v2/policies/{policy_id}", A(act::POLICY_READ), iam::get_policy),
        at("PUT", "/v2/policies/{policy_id}", A(act::POLICY_UPDATE), iam::update_policy),
        at("DELETE", "/v2/policies/{policy_id}", A(act::POLICY_DELETE), iam::delete_policy),
        at("GET", "/v2/policies/{policy_id}/users", A(act::POLICY_LIST_USERS), iam::list_policy_users),
        at("POST", "/v2/policies/{policy_id}/users/{user_id}", A(act::POLICY_ATTACH_USER), iam::attach_user),
        at("DELETE", "/v2/policies/{policy_id}/users/{user_id}", A(act::POLICY_DETACH_USER), iam::detach_user),
        at("GET", "/v2/policies/{policy_id}/groups", A(act::POLICY_LIST_GROUPS), iam::list_policy_groups),
        at("POST", "/v2/policies/{policy_id}/groups/{group_id}", A(act::POLICY_ATTACH_GROUP), iam::attach_group),
        at("DELETE", "/v2/policies/{policy_id}/groups/{group_id}", A(act::POLICY_DETACH_GROUP), iam::detach_group),
        // roles and trusts
        at("GET", "/v2/roles", A(act::ROLE_LIST), iam::list_roles),
        at("POST", "/v2/roles", A(act::ROLE_CREATE), iam::create_role),
        at("GET", "/v2/roles/{role_id}", A(act::ROLE_READ), iam::get_role),
        at("PUT", "/v2/roles/{role_id}", A(act::ROLE_UPDATE), iam::update_role),
        at("DELETE", "/v2/roles/{role_id}", A(act::ROLE_DELETE), iam::delete_role),
        at("GET", "/v2/roles/{role_id}/policies", A(act::ROLE_LIST_POLICIES), iam::list_role_policies),
        at("POST", "/v2/roles/{role_id}/policies/{policy_id}", A(act::ROLE_ATTACH_POLICY), iam::attach_role_policy),
        at("DELETE", "/v2/roles/{role_id}/policies/{policy_id}", A(act::ROLE_DETACH_POLICY), iam::detach_role_policy),
        at("GET", "/v2/roles/{role_id}/users", A(act::ROLE_LIST_USERS), assignments::list_users),
        at("POST", "/v2/roles/{role_id}/users/{user_id}", A(act::ROLE_ATTACH_USER), assignments::assign_user),
        at("PUT", "/v2/roles/{role_id}/users/{user_id}", A(act::ROLE_ATTACH_USER), assignments::assign_user),
        at("DELETE", "/v2/roles/{role_id}/users/{user_id}", A(act::ROLE_DETACH_USER), assignments::unassign_user),
        at("GET", "/v2/roles/{role_id}/groups", A(act::ROLE_LIST_GROUPS), assignments::list_groups),
        at("POST", "/v2/roles/{role_id}/groups/{group_id}", A(act::ROLE_ATTACH_GROUP), assignments::assign_group),
        at("PUT", "/v2/roles/{role_id}/groups/{group_id}", A(act::ROLE_ATTACH_GROUP), assignments::assign_group),
        at("DELETE", "/v2/roles/{role_id}/groups/{group_id}", A(act::ROLE_DETACH_GROUP), assignments::unassign_group),
        at("GET", "/v2/role-trusts", A(act::TRUST_LIST), iam::list_trusts),
        at("POST", "/v2/role-trusts", A(act::TRUST_CREATE), iam::create_trust),
        at("GET", "/v2/role-trusts/by-role/{role_id}", A(act::TRUST_LIST), iam::list_trusts_by_role),
        at("GET", "/v2/role-trusts/{role_trust_id}", A(act::TRUST_READ), iam::get_trust),
        at("PUT", "/v2/role-trusts/{role_trust_id}", A(act::TRUST_UPDATE), iam::update_trust),
        at("DELETE", "/v2/role-trusts/{role_trust_id}", A(act::TRUST_DELETE), iam::delete_trust),
        // OIDC issuers (workload identity)
        at("GET", "/v2/oidc/issuer", A(act::OIDC_ISSUER_LIST), oidc::list),
        at("POST", "/v2/oidc/issuer", A(act::OIDC_ISSUER_CREATE), oidc::create),
        at("GET", "/v2/oidc/issuer/{issuer_id}", A(act::OIDC_ISSUER_READ), oidc::get),
        at("PATCH", "/v2/oidc/issuer/{issuer_id}", A(act::OIDC_ISSUER_UPDATE), oidc::update),
        at("DELETE", "/v2/oidc/issuer/{issuer_id}", A(act::OIDC_ISSUER_DELETE), oidc::delete),
        at("GET", "/v2/oidc/issuer/{issuer_id}/jwks", A(act::OIDC_ISSUER_READ), oidc::jwks),
        // assumed roles
        at("POST", "/v2/assumed-roles/assume", A(act::ROLE_ASSUME), assumed::assume),
        at("GET", "/v2/assumed-roles/users/{user_id}/sessions", A(act::ASSUMED_LIST), assumed::list_for_user),
        at("GET", "/v2/assumed-roles/{session_id}", A(act::ASSUMED_READ), assumed::get),
        at("DELETE", "/v2/assumed-roles/{session_id}", A(act::ASSUMED_DELETE), assumed::revoke),
        at("POST", "/v2/assumed-roles/compatibility/aws/sts", A(act::ROLE_ASSUME), sts::sts),
        // login sessions and session administration
        at("POST", "/v2/sessions", Public, sessions::sign_in),
        at("GET", "/v2/sessions/current", Caller, sessions::current),
        at("DELETE", "/v2/sessions/current", Caller, sessions::sign_out),
        at("GET", "/v2/iam/sessions", A(act::SESSION_LIST), sessions::query),
        at("GET", "/v2/iam/sessions/{moid}", A(act::SESSION_READ), sessions::get),
        at("DELETE", "/v2/iam/sessions/{moid}", A(act::SESSION_TERMINATE), sessions::terminate),
        at("GET", "/v2/iam/session-limits", A(act::SESSION_LIMITS_READ), sessions::get_limits),
        at("PUT", "/v2/iam/session-limits", A(act::SESSION_LIMITS_UPDATE), sessions::put_limits),
        at("DELETE", "/v2/users/{user_id}/sessions", A(act::SESSION_TERMINATE), sessions::terminate_user),
        at("GET", "/v2/users/{user_id}/login-lock", A(act::USER_READ), sessions::get_lock),
        at("DELETE", "/v2/users/{user_id}/login-lock", A(act::USER_UNLOCK), sessions::clear_lock),
        at("POST", "/v2/oauth2/introspect", A(act::SESSION_INTROSPECT), sessions::introspect),
        at("ANY", "/v2/auth/forward", Proxy, sessions::forward_auth),
        at("GET", "/v2/auth/check", Caller, sessions::check),
        // the audit trail
        at("GET", "/v2/audit-events", A(act::AUDIT_LIST), audit::query),
    ];
    t.extend(gateway::table());
    t
}

/// Every route of the API: what the router serves, for tests and documentation.
pub fn route_table() -> Vec<RouteSpec> {
    table().into_iter().map(|e| e.spec).collect()
}
