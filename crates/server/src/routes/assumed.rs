//! Handlers for assuming roles and for the assumed-role sessions that result.

use std::sync::Arc;

use crate::json::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use tessera_api_types as wire;
use tessera_app::{App, AssumeInput, WebIdentityAssume};
use tessera_domain::user;

use crate::convert::{assumed_view, meta, parse_ip, session_policy};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Authed, BearerOrCaller, Body, ClientIp, Paging, body_id, path_id};

type S = State<Arc<App>>;

/// Assumes a role: as a user (`auth_method` `api_key`, a Tessera credential as the bearer) or
/// as a workload (`oidc` or `jwt`, the workload's OIDC token as the bearer, and
/// `oidc_issuer_id` instead of `user_id`).
pub async fn assume(
    State(app): S,
    ClientIp(client): ClientIp,
    who: BearerOrCaller,
    Body(b): Body<wire::AssumeRequest>,
) -> ApiResult<(StatusCode, Json<wire::AssumedRoleEnvelope>)> {
    let ip = bound_ip(&b)?;
    let auth_method = b.auth_method.clone().unwrap_or_else(|| "api_key".into());
    let assumed = if matches!(auth_method.as_str(), "oidc" | "jwt") {
        let token = who.bearer.ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send the workload's OIDC token as Authorization: Bearer <token>",
            )
        })?;
        if !b.user_id.is_empty() {
            return Err(ApiError::invalid(
                "user_id",
                "user_id: a workload assumes as itself; send oidc_issuer_id instead of user_id",
            ));
        }
        let issuer = b.oidc_issuer_id.as_deref().ok_or_else(|| {
            ApiError::invalid("oidc_issuer_id", "oidc_issuer_id: the issuer of the bearer token is required")
        })?;
        let input = WebIdentityAssume {
            issuer_id: body_id("oidc_issuer_id", issuer)?,
            role_id: body_id("role_id", &b.role_id)?,
            session_name: user::name("session_name", &b.session_name, 100)?,
            auth_method,
            duration: b.duration,
            ip_address: ip,
            source_ip: client,
            policy: session_policy(b.policy.clone())?,
            // The issuer names the organization.
            organization: None,
        };
        app.assume_role_with_web_identity(&token, input).await?
    } else {
        let c = who.caller?;
        let input = AssumeInput {
            user_id: body_id("user_id", &b.user_id)?,
            role_id: body_id("role_id", &b.role_id)?,
            session_name: user::name("session_name", &b.session_name, 100)?,
            auth_method,
            duration: b.duration,
            ip_address: ip,
            source_ip: client,
            policy: session_policy(b.policy.clone())?,
        };
        app.assume_role(&c, input).await?
    };
    let view = assumed_view(&assumed.session, Some(assumed.token), app.now());
    Ok((StatusCode::CREATED, Json(wire::AssumedRoleEnvelope { assumed_role_session: view })))
}

/// The address the session is bound to: `ip_address`, or Vultr's `context.ip_address`.
fn bound_ip(b: &wire::AssumeRequest) -> ApiResult<Option<std::net::IpAddr>> {
    let context_ip = b.context.as_ref().and_then(|c| c.ip_address.clone());
    Ok(match (b.ip_address.clone(), context_ip) {
        (Some(a), Some(c)) if a.trim() != c.trim() => {
            return Err(ApiError::invalid(
                "context.ip_address",
                "ip_address and context.ip_address disagree; send one",
            ));
        }
        (Some(a), _) => Some(parse_ip("ip_address", &a)?),
        (None, Some(c)) => Some(parse_ip("context.ip_address", &c)?),
        (None, None) => None,
    })
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
