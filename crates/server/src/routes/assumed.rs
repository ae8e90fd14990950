//! Handlers for assuming roles and for the assumed-role sessions that result.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use tessera_api_types as wire;
use tessera_app::{App, AssumeInput};
use tessera_domain::user;

use crate::convert::{assumed_view, meta, parse_ip};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Authed, Body, Paging, body_id, path_id};

type S = State<Arc<App>>;

pub async fn assume(
    State(app): S,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Authed(c): Authed,
    Body(b): Body<wire::AssumeRequest>,
) -> ApiResult<(StatusCode, Json<wire::AssumedRoleEnvelope>)> {
    let context_ip = b.context.and_then(|c| c.ip_address);
    let ip = match (b.ip_address, context_ip) {
        (Some(a), Some(c)) if a.trim() != c.trim() => {
            return Err(ApiError::invalid(
                "context.ip_address",
                "ip_address and context.ip_address disagree; send one",
            ));
        }
        (Some(a), _) => Some(parse_ip("ip_address", &a)?),
        (None, Some(c)) => Some(parse_ip("context.ip_address", &c)?),
        (None, None) => None,
    };
    let input = AssumeInput {
        user_id: body_id("user_id", &b.user_id)?,
        role_id: body_id("role_id", &b.role_id)?,
        session_name: user::name("session_name", &b.session_name, 100)?,
        auth_method: b.auth_method.unwrap_or_else(|| "api_key".into()),
        duration: b.duration,
        ip_address: ip,
        source_ip: Some(peer.ip().to_canonical()),
    };
    let assumed = app.assume_role(&c, input).await?;
    let view = assumed_view(&assumed.session, Some(assumed.token), app.now());
    Ok((StatusCode::CREATED, Json(wire::AssumedRoleEnvelope { assumed_role_session: view })))
}

pub async fn get(
    State(app): S,
    Authed(c): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<wire::AssumedRoleEnvelope>> {
    let s = app.get_assumed_session(&c, path_id("session_id", &id)?).await?;
    Ok(Json(wire::AssumedRoleEnvelope { assumed_role_session: assumed_view(&s, None, app.now()) }))
}

pub async fn revoke(State(app): S, Authed(c): Authed, Path(id): Path<String>) -> ApiResult<StatusCode> {
    app.revoke_assumed_session(&c, path_id("session_id", &id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_for_user(
    State(app): S,
    Authed(c): Authed,
    Path(user): Path<String>,
    Paging(p): Paging,
) -> ApiResult<Json<wire::AssumedRoleList>> {
    let page = app.list_user_sessions(&c, path_id("user_id", &user)?, p).await?;
    let now = app.now();
    Ok(Json(wire::AssumedRoleList {
        meta: meta(&page),
        assumed_role_sessions: page.items.iter().map(|s| assumed_view(s, None, now)).collect(),
    }))
}
