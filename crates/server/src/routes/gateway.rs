//! `/v2/gateway/{services,routes,plugins}`: Kong-shaped gateway objects. Bodies are Kong's
//! Admin API JSON; answers follow this API's rule (one object under its singular name, a
//! list under its plural name with `meta`).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};
use tessera_app::App;
use tessera_app::gateway::GatewayResource;
use tessera_domain::gateway::{Plugin, Route, Service};

use crate::error::{ApiError, ApiResult};
use crate::extract::{Authed, parse_json, path_id};

type S = State<Arc<App>>;

/// Checks the body's shape against `T` (so errors carry the field's path) and hands the
/// JSON on. Content-Type must be JSON, as everywhere in the API.
fn body<T: GatewayResource>(headers: &axum::http::HeaderMap, bytes: &Bytes, partial: bool) -> ApiResult<Value> {
    let is_json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be JSON, sent with Content-Type: application/json",
        ));
    }
    let value: Value = parse_json(bytes)?;
    if !value.is_object() {
        return Err(ApiError::invalid("body", "the body must be a JSON object"));
    }
    if !partial {
        let _: T = parse_json(bytes)?;
    }
    Ok(value)
}

fn plural<T: GatewayResource>() -> String {
    format!("{}s", T::NOUN.to_lowercase())
}

/// An object as answered: a plugin's `config.secret` is write-only and reads as `null` (it
/// keys every session cookie; whoever reads the configuration must not be able to forge
/// them). Writes that leave it out or send `null` keep the stored one.
fn shown<T: GatewayResource>(t: &T) -> Value {
    let mut v = serde_json::to_value(t).unwrap_or_default();
    if T::KIND == tessera_store::GatewayKind::Plugin
        && let Some(config) = v.get_mut("config").and_then(Value::as_object_mut)
    {
        config.insert("secret".into(), Value::Null);
    }
    v
}

fn one<T: GatewayResource>(t: &T) -> Json<Value> {
    Json(json!({ T::NOUN.to_lowercase(): shown(t) }))
}

async fn list<T: GatewayResource>(State(app): S, Authed(c): Authed) -> ApiResult<Json<Value>> {
    let items: Vec<Value> = app.list_gateway_objects::<T>(&c).await?.iter().map(shown).collect();
    let total = items.len();
    Ok(Json(json!({ plural::<T>(): items, "meta": {"total": total, "links": {"next": "", "prev": ""}} })))
}

async fn create<T: GatewayResource>(
    State(app): S,
    Authed(c): Authed,
    headers: axum::http::HeaderMap,
    bytes: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let v = body::<T>(&headers, &bytes, false)?;
    let t: T = app.create_gateway_object(&c, v).await?;
    Ok((StatusCode::CREATED, one(&t)))
}

async fn get<T: GatewayResource>(State(app): S, Authed(c): Authed, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let t: T = app.get_gateway_object(&c, path_id("id", &id)?).await?;
    Ok(one(&t))
}

async fn put<T: GatewayResource>(
    State(app): S,
    Authed(c): Authed,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    bytes: Bytes,
) -> ApiResult<Json<Value>> {
    let id = path_id("id", &id)?;
    let v = body::<T>(&headers, &bytes, false)?;
    let t: T = app.update_gateway_object(&c, id, v, false).await?;
    Ok(one(&t))
}

async fn patch<T: GatewayResource>(
    State(app): S,
    Authed(c): Authed,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    bytes: Bytes,
) -> ApiResult<Json<Value>> {
    let id = path_id("id", &id)?;
    let v = body::<T>(&headers, &bytes, true)?;
    let t: T = app.update_gateway_object(&c, id, v, true).await?;
    Ok(one(&t))
}

async fn delete<T: GatewayResource>(State(app): S, Authed(c): Authed, Path(id): Path<String>) -> ApiResult<StatusCode> {
    app.delete_gateway_object::<T>(&c, path_id("id", &id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The gateway's routes under `/v2/gateway`, for the route table.
pub(crate) fn table() -> Vec<super::Entry> {
    use super::{Access::Action as A, at};
    use tessera_app::actions as act;
    fn kind<T: GatewayResource + Send + Sync + 'static>(
        base: &'static str,
        one: &'static str,
        [create, read, list, update, delete]: [&'static str; 5],
    ) -> Vec<super::Entry> {
        vec![
            at("GET", base, A(list), self::list::<T>),
            at("POST", base, A(create), self::create::<T>),
            at("GET", one, A(read), self::get::<T>),
            at("PUT", one, A(update), self::put::<T>),
            at("PATCH", one, A(update), self::patch::<T>),
            at("DELETE", one, A(delete), self::delete::<T>),
        ]
    }
    let mut t = kind::<Service>(
        "/v2/gateway/services",
        "/v2/gateway/services/{id}",
        [
            act::GATEWAY_SERVICE_CREATE,
            act::GATEWAY_SERVICE_READ,
            act::GATEWAY_SERVICE_LIST,
            act::GATEWAY_SERVICE_UPDATE,
            act::GATEWAY_SERVICE_DELETE,
        ],
    );
    t.extend(kind::<Route>(
        "/v2/gateway/routes",
        "/v2/gateway/routes/{id}",
        [
            act::GATEWAY_ROUTE_CREATE,
            act::GATEWAY_ROUTE_READ,
            act::GATEWAY_ROUTE_LIST,
            act::GATEWAY_ROUTE_UPDATE,
            act::GATEWAY_ROUTE_DELETE,
        ],
    ));
    t.extend(kind::<Plugin>(
        "/v2/gateway/plugins",
        "/v2/gateway/plugins/{id}",
        [
            act::GATEWAY_PLUGIN_CREATE,
            act::GATEWAY_PLUGIN_READ,
            act::GATEWAY_PLUGIN_LIST,
            act::GATEWAY_PLUGIN_UPDATE,
            act::GATEWAY_PLUGIN_DELETE,
        ],
    ));
    t
}
