//! Handlers for OIDC issuers (`/v2/oidc/issuer`), in Vultr's shapes.

use std::sync::Arc;

use crate::json::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use tessera_api_types as wire;
use tessera_app::App;

use crate::convert::{issuer_input, issuer_view, jwks_view, meta};
use crate::error::ApiResult;
use crate::extract::{Authed, Body, Paging, parse_json, path_id};

type S = State<Arc<App>>;

/// Vultr's clients send the issuer wrapped (`{"issuer": {...}}`) or flat: both are read.
fn input(body: serde_json::Value) -> ApiResult<tessera_app::IssuerInput> {
    let wrapped = body.as_object().is_some_and(|o| o.len() == 1 && o.contains_key("issuer"));
    let bytes = body.to_string().into_bytes();
    let wire = if wrapped {
        parse_json::<wire::oidc::IssuerInputEnvelope>(&bytes)?.issuer
    } else {
        parse_json::<wire::oidc::IssuerInput>(&bytes)?
    };
    issuer_input(wire)
}

/// Answers the issuer itself, unwrapped, as govultr decodes a create.
pub async fn create(
    State(app): S,
    Authed(c): Authed,
    Body(b): Body<serde_json::Value>,
) -> ApiResult<(StatusCode, Json<wire::oidc::IssuerView>)> {
    let issuer = app.create_oidc_issuer(&c, input(b)?).await?;
    Ok((StatusCode::CREATED, Json(issuer_view(&issuer))))
}

pub async fn list(State(app): S, Authed(c): Authed, Paging(p): Paging) -> ApiResult<Json<wire::oidc::IssuerList>> {
    let page = app.list_oidc_issuers(&c, p).await?;
    Ok(Json(wire::oidc::IssuerList { issuers: page.items.iter().map(issuer_view).collect(), meta: meta(&page) }))
}

pub async fn get(
    State(app): S,
    Authed(c): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<wire::oidc::IssuerEnvelope>> {
    let issuer = app.get_oidc_issuer(&c, path_id("issuer_id", &id)?).await?;
    Ok(Json(wire::oidc::IssuerEnvelope { issuer: issuer_view(&issuer) }))
}

pub async fn update(
    State(app): S,
    Authed(c): Authed,
    Path(id): Path<String>,
    Body(b): Body<serde_json::Value>,
) -> ApiResult<Json<wire::oidc::IssuerEnvelope>> {
    let issuer = app.update_oidc_issuer(&c, path_id("issuer_id", &id)?, input(b)?).await?;
    Ok(Json(wire::oidc::IssuerEnvelope { issuer: issuer_view(&issuer) }))
}

pub async fn delete(State(app): S, Authed(c): Authed, Path(id): Path<String>) -> ApiResult<StatusCode> {
    app.delete_oidc_issuer(&c, path_id("issuer_id", &id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn jwks(State(app): S, Authed(c): Authed, Path(id): Path<String>) -> ApiResult<Json<wire::oidc::Jwks>> {
    let keys = app.oidc_issuer_jwks(&c, path_id("issuer_id", &id)?).await?;
    Ok(Json(jwks_view(&keys)))
}
