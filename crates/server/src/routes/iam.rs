//! Handlers for users, API keys, groups, policies, roles and role trusts.

use std::sync::Arc;

use crate::json::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::json;
use tessera_api_types as wire;
use tessera_app::{App, NewApiKey};
use tessera_domain::ids::*;
use tessera_domain::policy::PolicyTarget;
use tessera_domain::user;

use crate::convert::*;
use crate::error::ApiResult;
use crate::extract::{Authed, Body, Paging, path_id};

type S = State<Arc<App>>;
type Created<T> = (StatusCode, Json<T>);

// ---- users ---------------------------------------------------------------------------------

pub async fn create_user(
    State(app): S,
    Authed(c): Authed,
    Body(b): Body<wire::UserCreateWithId>,
) -> ApiResult<Created<wire::UserEnvelope>> {
    let id = match b.id.as_deref() {
        None => None,
        Some(s) => Some(
            s.parse::<tessera_domain::ids::UserId>()
                .ok()
                .filter(|id| !id.0.is_nil())
                .ok_or_else(|| tessera_domain::FieldError::new("id", "must be a UUID (not the nil UUID)"))?,
        ),
    };
    let u = app.create_user_with_id(&c, id, new_user(b.user)?).await?;
    Ok((StatusCode::CREATED, Json(wire::UserEnvelope { user: user_view(&u) })))
}

pub async fn list_users(State(app): S, Authed(c): Authed, Paging(p): Paging) -> ApiResult<Json<wire::UserList>> {
    let page = app.list_users(&c, p).await?;
    Ok(Json(wire::UserList { meta: meta(&page), users: page.items.iter().map(user_view).collect() }))
}

pub async fn get_user(State(app): S, Authed(c): Authed, Path(id): Path<String>) -> ApiResult<Json<wire::UserEnvelope>> {
    let u = app.get_user(&c, path_id("user_id", &id)?).await?;
    Ok(Json(wire::UserEnvelope { user: user_view(&u) }))
}

pub async fn update_user(
    State(app): S,
    Authed(c): Authed,
    Path(id): Path<String>,
    Body(b): Body<wire::UserUpdate>,
) -> ApiResult<Json<wire::UserEnvelope>> {
    let id = path_id("user_id", &id)?;
    let u = app.update_user(&c, id, user_patch(b)?).await?;
    Ok(Json(wire::UserEnvelope { user: user_view(&u) }))
}

pub async fn delete_user(State(app): S, Authed(c): Authed, Path(id): Path<String>) -> ApiResult<StatusCode> {
    app.delete_user(&c, path_id("user_id", &id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn create_api_key(
    State(app): S,
    Authed(c): Authed,
    Path(id): Path<String>,
    Body(b): Body<wire::ApiKeyCreate>,
) -> ApiResult<Created<wire::ApiKeyEnvelope>> {
    let user = path_id("user_id", &id)?;
    let input = NewApiKey {
        name: user::name("name", &b.name, 100)?,
        date_expire: b.date_expire.as_deref().map(|s| parse_time("date_expire", s)).transpose()?,
    };
    let created = app.create_api_key(&c, user, input).await?;
    Ok((StatusCode::CREATED, Json(wire::ApiKeyEnvelope { api_key: api_key_view(&created.key, Some(created.secret)) })))
}

pub async fn list_api_keys(
    State(app): S,
    Authed(c): Authed,
    Path(id): Path<String>,
    Paging(p): Paging,
) -> ApiResult<Json<wire::ApiKeyList>> {
    let page = app.list_api_keys(&c, path_id("user_id", &id)?, p).await?;
    Ok(Json(wire::ApiKeyList {
        meta: meta(&page),
        api_keys: page.items.iter().map(|k| api_key_view(k, None)).collect(),
    }))
}

pub async fn delete_api_key(
    State(app): S,
    Authed(c): Authed,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    app.delete_api_key(&c, path_id("user_id", &id)?, path_id("apikey_id", &key)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_user_policies(
    State(app): S,
    Authed(c): Authed,
    Path(id): Path<String>,
    Paging(p): Paging,
) -> ApiResult<Json<wire::PolicyList>> {
    let page = app.list_attached_policies(&c, PolicyTarget::User(path_id("user_id", &id)?), p).await?;
    Ok(Json(wire::PolicyList { meta: meta(&page), policies: page.items.iter().map(policy_view).collect() }))
}

// ---- groups --------------------------------------------------------------------------------

pub async fn create_group(
    State(app): S,
    Authed(c): Authed,
    Body(b): Body<wire::GroupInput>,
) -> ApiResult<Created<wire::GroupEnvelope>> {
    let g = app.create_group(&c, group_input(b)?).await?;
    Ok((StatusCode::CREATED, Json(wire::GroupEnvelope { group: group_view(&g) })))
}

pub async fn list_groups(State(app): S, Authed(c): Authed, Paging(p): Paging) -> ApiResult<Json<wire::GroupList>> {
    let page = app.list_groups(&c, p).await?;
    Ok(Json(wire::GroupList { meta: meta(&page), groups: page.items.iter().map(group_view).collect() }))
}

pub async fn get_group(
    State(app): S,
    Authed(c): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<wire::GroupEnvelope>> {
    let g = app.get_group(&c, path_id("group_id", &id)?).await?;
    Ok(Json(wire::GroupEnvelope { group: group_view(&g) }))
}

pub async fn update_group(
    State(app): S,
    Authed(c): Authed,
    Path(id): Path<String>,
    Body(b): Body<wire::GroupInput>,
) -> ApiResult<Json<wire::GroupEnvelope>> {
    let id = path_id("group_id", &id)?;
    let g = app.update_group(&c, id, group_input(b)?).await?;
    Ok(Json(wire::GroupEnvelope { group: group_view(&g) }))
}

pub async fn delete_group(State(app): S, Authed(c): Authed, Path(id): Path<String>) -> ApiResult<StatusCode> {
    app.delete_group(&c, path_id("group_id", &id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn add_member(
    State(app): S,
    Authed(c): Authed,
    Path(id): Path<String>,
    Body(b): Body<wire::GroupMemberAdd>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let group: GroupId = path_id("group_id", &id)?;
    let user: UserId = crate::extract::body_id("user_id", &b.user_id)?;
    let added = app.add_group_member(&c, group, user).await?;
    let status = if added { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(json!({"member": {"group_id": group.to_string(), "user_id": user.to_string()}}))))
}

pub async fn list_members(
    State(app): S,
    Authed(c): Authed,
    Path(id): Path<String>,
    Paging(p): Paging,
) -> ApiResult<Json<wire::MemberList>> {
    let page = app.list_group_members(&c, path_id("group_id", &id)?, p).await?;
    Ok(Json(wire::MemberList { meta: meta(&page), members: page.items.iter().map(user_view).collect() }))
}

pub async fn remove_member(
    State(app): S,
    Authed(c): Authed,
    Path((id, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    app.remove_group_member(&c, path_id("group_id", &id)?, path_id("user_id", &user)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_group_policies(
    State(app): S,
    Authed(c): Authed,
    Path(id): Path<String>,
    Paging(p): Paging,
) -> ApiResult<Json<wire::PolicyList>> {
    let page = app.list_attached_policies(&c, PolicyTarget::Group(path_id("group_id", &id)?), p).await?;
    Ok(Json(wire::PolicyList { meta: meta(&page), policies: page.items.iter().map(policy_view).collect() }))
}

// ---- policies ------------------------------------------------------------------------------

pub async fn create_policy(
    State(app): S,
    Authed(c): Authed,
    Body(b): Body<wire::PolicyInput>,
) -> ApiResult<Created<wire::PolicyEnvelope>> {
    let p = app.create_policy(&c, policy_input(b)?).await?;
    Ok((StatusCode::CREATED, Json(wire::PolicyEnvelope { policy: policy_view(&p) })))
}

pub async fn list_policies(State(app): S, Authed(c): Authed, Paging(p): Paging) -> ApiResult<Json<wire::PolicyList>> {
    let page = app.list_policies(&c, p).await?;
    Ok(Json(wire::PolicyList { meta: meta(&page), policies: page.items.iter().map(policy_view).collect() }))
}

pub async fn get_policy(
    State(app): S,
    Authed(c): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<wire::PolicyEnvelope>> {
    let p = app.get_policy(&c, path_id("policy_id", &id)?).await?;
    Ok(Json(wire::PolicyEnvelope { policy: policy_view(&p) }))
}

pub async fn update_policy(
    State(app): S,
    Authed(c): Authed,
    Path(id): Path<String>,
    Body(b): Body<wire::PolicyInput>,
) -> ApiResult<Json<wire::PolicyEnvelope>> {
    let id = path_id("policy_id", &id)?;
    let p = app.update_policy(&c, id, policy_input(b)?).await?;
    Ok(Json(wire::PolicyEnvelope { policy: policy_view(&p) }))
}

pub async fn delete_policy(State(app): S, Authed(c): Authed, Path(id): Path<String>) -> ApiResult<StatusCode> {
    app.delete_policy(&c, path_id("policy_id", &id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn attachment(policy: PolicyId, target: PolicyTarget, added: bool) -> (StatusCode, Json<serde_json::Value>) {
    let (kind, id) = match target {
        PolicyTarget::User(u) => ("user", u.to_string()),
        PolicyTarget::Group(g) => ("group", g.to_string()),
        PolicyTarget::Role(r) => ("role", r.to_string()),
    };
    let status = if added { StatusCode::CREATED } else { StatusCode::OK };
    (status, Json(json!({"attachment": {"policy_id": policy.to_string(), "target_type": kind, "target_id": id}})))
}

pub async fn attach_user(
    State(app): S,
    Authed(c): Authed,
    Path((p, u)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let (p, t) = (path_id("policy_id", &p)?, PolicyTarget::User(path_id("user_id", &u)?));
    let added = app.attach_policy(&c, p, t).await?;
    Ok(attachment(p, t, added))
}

pub async fn detach_user(
    State(app): S,
    Authed(c): Authed,
    Path((p, u)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    app.detach_policy(&c, path_id("policy_id", &p)?, PolicyTarget::User(path_id("user_id", &u)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn attach_group(
    State(app): S,
    Authed(c): Authed,
    Path((p, g)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let (p, t) = (path_id("policy_id", &p)?, PolicyTarget::Group(path_id("group_id", &g)?));
    let added = app.attach_policy(&c, p, t).await?;
    Ok(attachment(p, t, added))
}

pub async fn detach_group(
    State(app): S,
    Authed(c): Authed,
    Path((p, g)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    app.detach_policy(&c, path_id("policy_id", &p)?, PolicyTarget::Group(path_id("group_id", &g)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_policy_users(
    State(app): S,
    Authed(c): Authed,
    Path(id): Path<String>,
    Paging(p): Paging,
) -> ApiResult<Json<wire::UserList>> {
    let page = app.list_policy_users(&c, path_id("policy_id", &id)?, p).await?;
    Ok(Json(wire::UserList { meta: meta(&page), users: page.items.iter().map(user_view).collect() }))
}

pub async fn list_policy_groups(
    State(app): S,
    Authed(c): Authed,
    Path(id): Path<String>,
    Paging(p): Paging,
) -> ApiResult<Json<wire::GroupList>> {
    let page = app.list_policy_groups(&c, path_id("policy_id", &id)?, p).await?;
    Ok(Json(wire::GroupList { meta: meta(&page), groups: page.items.iter().map(group_view).collect() }))
}

// ---- roles ---------------------------------------------------------------------------------

pub async fn create_role(
    State(app): S,
    Authed(c): Authed,
    Body(b): Body<wire::RoleInput>,
) -> ApiResult<Created<wire::RoleEnvelope>> {
    let r = app.create_role(&c, role_input(b)?).await?;
    Ok((StatusCode::CREATED, Json(wire::RoleEnvelope { role: role_view(&r) })))
}

pub async fn list_roles(State(app): S, Authed(c): Authed, Paging(p): Paging) -> ApiResult<Json<wire::RoleList>> {
    let page = app.list_roles(&c, p).await?;
    Ok(Json(wire::RoleList { meta: meta(&page), roles: page.items.iter().map(role_view).collect() }))
}

pub async fn get_role(State(app): S, Authed(c): Authed, Path(id): Path<String>) -> ApiResult<Json<wire::RoleEnvelope>> {
    let r = app.get_role(&c, path_id("role_id", &id)?).await?;
    Ok(Json(wire::RoleEnvelope { role: role_view(&r) }))
}

pub async fn update_role(
    State(app): S,
    Authed(c): Authed,
    Path(id): Path<String>,
    Body(b): Body<wire::RoleInput>,
) -> ApiResult<Json<wire::RoleEnvelope>> {
    let id = path_id("role_id", &id)?;
    let r = app.update_role(&c, id, role_input(b)?).await?;
    Ok(Json(wire::RoleEnvelope { role: role_view(&r) }))
}

pub async fn delete_role(State(app): S, Authed(c): Authed, Path(id): Path<String>) -> ApiResult<StatusCode> {
    app.delete_role(&c, path_id("role_id", &id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_role_policies(
    State(app): S,
    Authed(c): Authed,
    Path(id): Path<String>,
    Paging(p): Paging,
) -> ApiResult<Json<wire::PolicyList>> {
    let page = app.list_attached_policies(&c, PolicyTarget::Role(path_id("role_id", &id)?), p).await?;
    Ok(Json(wire::PolicyList { meta: meta(&page), policies: page.items.iter().map(policy_view).collect() }))
}

pub async fn attach_role_policy(
    State(app): S,
    Authed(c): Authed,
    Path((r, p)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let (t, p) = (PolicyTarget::Role(path_id("role_id", &r)?), path_id("policy_id", &p)?);
    let added = app.attach_policy(&c, p, t).await?;
    Ok(attachment(p, t, added))
}

pub async fn detach_role_policy(
    State(app): S,
    Authed(c): Authed,
    Path((r, p)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    app.detach_policy(&c, path_id("policy_id", &p)?, PolicyTarget::Role(path_id("role_id", &r)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- role trusts ---------------------------------------------------------------------------

pub async fn create_trust(
    State(app): S,
    Authed(c): Authed,
    Body(b): Body<wire::TrustInput>,
) -> ApiResult<Created<wire::TrustEnvelope>> {
    let t = app.create_trust(&c, trust_input(b)?).await?;
    Ok((StatusCode::CREATED, Json(wire::TrustEnvelope { role_trust: trust_view(&t) })))
}

pub async fn list_trusts(State(app): S, Authed(c): Authed, Paging(p): Paging) -> ApiResult<Json<wire::TrustList>> {
    let page = app.list_trusts(&c, None, p).await?;
    Ok(Json(wire::TrustList { meta: meta(&page), role_trusts: page.items.iter().map(trust_view).collect() }))
}

pub async fn list_trusts_by_role(
    State(app): S,
    Authed(c): Authed,
    Path(role): Path<String>,
    Paging(p): Paging,
) -> ApiResult<Json<wire::TrustList>> {
    let page = app.list_trusts(&c, Some(path_id("role_id", &role)?), p).await?;
    Ok(Json(wire::TrustList { meta: meta(&page), role_trusts: page.items.iter().map(trust_view).collect() }))
}

pub async fn get_trust(
    State(app): S,
    Authed(c): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<wire::TrustEnvelope>> {
    let t = app.get_trust(&c, path_id("role_trust_id", &id)?).await?;
    Ok(Json(wire::TrustEnvelope { role_trust: trust_view(&t) }))
}

pub async fn update_trust(
    State(app): S,
    Authed(c): Authed,
    Path(id): Path<String>,
    Body(b): Body<wire::TrustInput>,
) -> ApiResult<Json<wire::TrustEnvelope>> {
    let id = path_id("role_trust_id", &id)?;
    let t = app.update_trust(&c, id, trust_input(b)?).await?;
    Ok(Json(wire::TrustEnvelope { role_trust: trust_view(&t) }))
}

pub async fn delete_trust(State(app): S, Authed(c): Authed, Path(id): Path<String>) -> ApiResult<StatusCode> {
    app.delete_trust(&c, path_id("role_trust_id", &id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
