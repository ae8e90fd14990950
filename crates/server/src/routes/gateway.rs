//! `/v2/gateway/{services,routes,plugins,ca_certificates}`: Kong-shaped gateway objects. Bodies are Kong's
//! Admin API JSON, checked against the domain's objects (whose rules apply) and handed to the
//! app as JSON (a `PATCH` merges into the stored object); answers are the wire types of
//! `tessera_api_types::gateway` (one object under its singular name, a list under its plural
//! name with `meta`), converted from the domain here.

use std::sync::Arc;

use crate::json::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::Value;
use tessera_api_types::gateway::{self as wire, GatewayObject};
use tessera_app::App;
use tessera_app::gateway::GatewayResource;
use tessera_domain::gateway::{CaCertificate, Plugin, Route, Service, SessionConfig};

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

/// A domain object and its wire form: the one place a stored gateway object becomes JSON.
trait Wire: GatewayResource + Send + Sync + 'static {
    type Out: GatewayObject;
    fn wire(self) -> Self::Out;
}

fn id(id: Option<impl ToString>) -> String {
    id.map(|i| i.to_string()).unwrap_or_default()
}

fn wire_ref(r: Option<tessera_domain::gateway::Ref>) -> Option<wire::Ref> {
    r.map(|r| wire::Ref::new(r.id.to_string()))
}

impl Wire for Service {
    type Out = wire::Service;
    fn wire(self) -> wire::Service {
        wire::Service {
            id: id(self.id),
            name: self.name,
            url: None,
            protocol: self.protocol,
            host: self.host,
            port: self.port,
            path: self.path,
            retries: self.retries,
            connect_timeout: self.connect_timeout,
            write_timeout: self.write_timeout,
            read_timeout: self.read_timeout,
            enabled: self.enabled,
            tags: self.tags,
            created_at: self.created_at,
            updated_at: self.updated_at,
            tls_verify: self.tls_verify,
            ca_certificates: self.ca_certificates.map(|ids| ids.iter().map(ToString::to_string).collect()),
            tls_verify_depth: self.tls_verify_depth,
        }
    }
}

impl Wire for CaCertificate {
    type Out = wire::CaCertificate;
    fn wire(self) -> wire::CaCertificate {
        wire::CaCertificate {
            id: id(self.id),
            cert: self.cert,
            cert_digest: self.cert_digest.unwrap_or_default(),
            tags: self.tags,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

impl Wire for Route {
    type Out = wire::Route;
    fn wire(self) -> wire::Route {
        wire::Route {
            id: id(self.id),
            name: self.name,
            paths: self.paths,
            hosts: self.hosts,
            methods: self.methods,
            headers: self.headers,
            snis: self.snis,
            protocols: self.protocols,
            regex_priority: self.regex_priority,
            https_redirect_status_code: self.https_redirect_status_code,
            strip_path: self.strip_path,
            preserve_host: self.preserve_host,
            service: wire_ref(self.service),
            tags: self.tags,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

impl Wire for Plugin {
    type Out = wire::Plugin;
    fn wire(self) -> wire::Plugin {
        wire::Plugin {
            id: id(self.id),
            name: self.name,
            instance_name: self.instance_name,
            config: session_config(self.config),
            enabled: self.enabled,
            protocols: self.protocols,
            route: wire_ref(self.route),
            service: wire_ref(self.service),
            consumer: wire_ref(self.consumer),
            tags: self.tags,
            ordering: self.ordering,
            partials: self.partials,
            workspace: self.workspace,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// A plugin's config as answered: `secret` is write-only and reads as `null` (it keys every
/// session cookie; whoever reads the configuration must not be able to forge them). Writes
/// that leave it out or send `null` keep the stored one.
fn session_config(c: SessionConfig) -> wire::SessionPluginConfig {
    wire::SessionPluginConfig {
        secret: None,
        storage: c.storage,
        audience: c.audience,
        idling_timeout: c.idling_timeout,
        rolling_timeout: c.rolling_timeout,
        absolute_timeout: c.absolute_timeout,
        stale_ttl: c.stale_ttl,
        cookie_name: c.cookie_name,
        cookie_path: c.cookie_path,
        cookie_domain: c.cookie_domain,
        cookie_same_site: c.cookie_same_site,
        cookie_http_only: c.cookie_http_only,
        cookie_secure: c.cookie_secure,
        remember: c.remember,
        remember_cookie_name: c.remember_cookie_name,
        remember_rolling_timeout: c.remember_rolling_timeout,
        remember_absolute_timeout: c.remember_absolute_timeout,
        request_headers: c.request_headers,
        response_headers: c.response_headers,
        logout_methods: c.logout_methods,
        logout_query_arg: c.logout_query_arg,
        logout_post_arg: c.logout_post_arg,
        read_body_for_logout: c.read_body_for_logout,
        hash_subject: c.hash_subject,
        store_metadata: c.store_metadata,
        bind: c.bind,
        unauthenticated: c.unauthenticated,
    }
}

/// Answers go out through a JSON value, as they always have (so their keys keep their order).
fn answer(v: impl serde::Serialize) -> Json<Value> {
    Json(serde_json::to_value(v).unwrap_or_default())
}

fn one<T: Wire>(t: T) -> Json<Value> {
    answer(<T::Out as GatewayObject>::One::from(t.wire()))
}

async fn list<T: Wire>(State(app): S, Authed(c): Authed) -> ApiResult<Json<Value>> {
    let items: Vec<T::Out> = app.list_gateway_objects::<T>(&c).await?.into_iter().map(Wire::wire).collect();
    Ok(answer(<T::Out as GatewayObject>::List::from(items)))
}

async fn create<T: Wire>(
    State(app): S,
    Authed(c): Authed,
    headers: axum::http::HeaderMap,
    bytes: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let v = body::<T>(&headers, &bytes, false)?;
    let t: T = app.create_gateway_object(&c, v).await?;
    Ok((StatusCode::CREATED, one(t)))
}

async fn get<T: Wire>(State(app): S, Authed(c): Authed, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let t: T = app.get_gateway_object(&c, path_id("id", &id)?).await?;
    Ok(one(t))
}

/// `PUT` replaces (`MERGE = false`: the body is checked whole); `PATCH` merges the body into
/// the stored object (`MERGE = true`: the result is checked).
async fn update<T: Wire, const MERGE: bool>(
    State(app): S,
    Authed(c): Authed,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    bytes: Bytes,
) -> ApiResult<Json<Value>> {
    let id = path_id("id", &id)?;
    let v = body::<T>(&headers, &bytes, MERGE)?;
    if MERGE {
        // A merge is checked whole after merging, but each field it sends must already have
        // its documented type: `"id": {}` is a 400, not ignored.
        let _: <T::Out as GatewayObject>::Request = parse_json(&bytes)?;
    }
    let t: T = app.update_gateway_object(&c, id, v, MERGE).await?;
    Ok(one(t))
}

async fn delete<T: Wire>(State(app): S, Authed(c): Authed, Path(id): Path<String>) -> ApiResult<StatusCode> {
    app.delete_gateway_object::<T>(&c, path_id("id", &id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The gateway's routes under `/v2/gateway`, for the route table.
pub(crate) fn table() -> Vec<super::Entry> {
    use super::{Access::Action as A, at};
    use tessera_app::actions as act;
    fn kind<T: Wire>(
        base: &'static str,
        one: &'static str,
        [create, read, list, update, delete]: [&'static str; 5],
    ) -> Vec<super::Entry> {
        vec![
            at("GET", base, A(list), self::list::<T>),
            at("POST", base, A(create), self::create::<T>),
            at("GET", one, A(read), self::get::<T>),
            at("PUT", one, A(update), self::update::<T, false>),
            at("PATCH", one, A(update), self::update::<T, true>),
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
    t.extend(kind::<CaCertificate>(
        "/v2/gateway/ca_certificates",
        "/v2/gateway/ca_certificates/{id}",
        [
            act::GATEWAY_CA_CERTIFICATE_CREATE,
            act::GATEWAY_CA_CERTIFICATE_READ,
            act::GATEWAY_CA_CERTIFICATE_LIST,
            act::GATEWAY_CA_CERTIFICATE_UPDATE,
            act::GATEWAY_CA_CERTIFICATE_DELETE,
        ],
    ));
    t
}
