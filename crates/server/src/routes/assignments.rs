//! Handlers for assigning roles to users and groups, and for the caller's own user, groups,
//! roles and policies (`/v2/users/me…`), in Vultr's shapes.

use std::sync::Arc;

use crate::json::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use tessera_api_types::{self as wire, assignments as aw};
use tessera_app::{App, PolicySource};
use tessera_domain::role::Assignee;

use crate::convert::{assignment_view, caller_policy_view, group_view, meta, user_view, whole_list_meta};
use crate::error::ApiResult;
use crate::extract::{Authed, Paging, path_id};

type S = State<Arc<App>>;

async fn assign(
    app: &App,
    c: &tessera_app::Caller,
    role: &str,
    to: Assignee,
) -> ApiResult<(StatusCode, Json<aw::RoleAssignmentEnvelope>)> {
    let (a, added) = app.assign_role(c, path_id("role_id", role)?, to).await?;
    let status = if added { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(aw::RoleAssignmentEnvelope { assignment: assignment_view(&a) })))
}

/// `POST` (Vultr) or `PUT /v2/roles/{role_id}/users/{user_id}`: 201, or 200 when it already was.
pub async fn assign_user(
    State(app): S,
    Authed(c): Authed,
    Path((r, u)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<aw::RoleAssignmentEnvelope>)> {
    let to = Assignee::User(path_id("user_id", &u)?);
    assign(&app, &c, &r, to).await
}

pub async fn assign_group(
    State(app): S,
    Authed(c): Authed,
    Path((r, g)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<aw::RoleAssignmentEnvelope>)> {
    let to = Assignee::Group(path_id("group_id", &g)?);
    assign(&app, &c, &r, to).await
}

pub async fn unassign_user(
    State(app): S,
    Authed(c): Authed,
    Path((r, u)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    app.unassign_role(&c, path_id("role_id", &r)?, Assignee::User(path_id("user_id", &u)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn unassign_group(
    State(app): S,
    Authed(c): Authed,
    Path((r, g)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    app.unassign_role(&c, path_id("role_id", &r)?, Assignee::Group(path_id("group_id", &g)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list(
    app: &App,
    c: &tessera_app::Caller,
    role: &str,
    groups: bool,
    p: tessera_domain::page::PageRequest,
) -> ApiResult<Json<aw::RoleAssignmentList>> {
    let page = app.list_role_assignments(c, path_id("role_id", role)?, groups, p).await?;
    Ok(Json(aw::RoleAssignmentList {
        meta: meta(&page),
        assignments: page.items.iter().map(assignment_view).collect(),
    }))
}

pub async fn list_users(
    State(app): S,
    Authed(c): Authed,
    Path(r): Path<String>,
    Paging(p): Paging,
) -> ApiResult<Json<aw::RoleAssignmentList>> {
    list(&app, &c, &r, false, p).await
}

pub async fn list_groups(
    State(app): S,
    Authed(c): Authed,
    Path(r): Path<String>,
    Paging(p): Paging,
) -> ApiResult<Json<aw::RoleAssignmentList>> {
    list(&app, &c, &r, true, p).await
}

// ---- the caller's own view -------------------------------------------------------------------

pub async fn me(State(app): S, Authed(c): Authed) -> ApiResult<Json<wire::UserEnvelope>> {
    Ok(Json(wire::UserEnvelope { user: user_view(&app.my_user(&c).await?) }))
}

pub async fn my_groups(State(app): S, Authed(c): Authed) -> ApiResult<Json<wire::GroupList>> {
    let groups = app.my_groups(&c).await?;
    Ok(Json(wire::GroupList { meta: whole_list_meta(groups.len()), groups: groups.iter().map(group_view).collect() }))
}

pub async fn my_roles(State(app): S, Authed(c): Authed) -> ApiResult<Json<aw::UserRolesAnswer>> {
    let roles = app.my_roles(&c).await?;
    let all: Vec<aw::RoleAssignmentView> = roles.iter().map(assignment_view).collect();
    let (direct, inherited) = all.iter().cloned().partition(|a| a.user_id.is_some());
    Ok(Json(aw::UserRolesAnswer { meta: whole_list_meta(all.len()), roles: aw::UserRoles { all, direct, inherited } }))
}

pub async fn my_policies(State(app): S, Authed(c): Authed) -> ApiResult<Json<aw::UserPoliciesAnswer>> {
    let policies = app.my_policies(&c).await?;
    let direct = policies.iter().filter(|p| p.source == PolicySource::User).map(caller_policy_view).collect();
    let inherited = policies.iter().filter(|p| p.source != PolicySource::User).map(caller_policy_view).collect();
    let all: Vec<aw::UserPolicyView> = policies.iter().map(caller_policy_view).collect();
    Ok(Json(aw::UserPoliciesAnswer {
        meta: whole_list_meta(all.len()),
        policies: aw::UserPolicies { all, direct, inherited },
    }))
}
