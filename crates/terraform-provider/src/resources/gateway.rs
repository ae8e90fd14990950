//! The session gateway's Kong-shaped objects (`/v2/gateway/{services,routes,plugins}`):
//! `tessera_gateway_service`, `tessera_gateway_route` and `tessera_plugin_session` (seed
//! 003's schema), through the client's typed gateway calls (`tessera_api_types::gateway`).
//! Planned attributes become a typed request (only what is set is sent); answers fill the
//! state.
//!
//! `created_at` and `updated_at` are arguments as in Kong's provider, but the server keeps
//! its own timestamps: a configured value is kept in the state as written.

use async_trait::async_trait;
use serde_json::{Map, Value as Json};
use tessera_api_types::gateway::{self as gw, GatewayObject};

use super::{id_of, state};
use crate::api::{Api, Error, Result, found, gone_is_fine};
use crate::engine::{Diags, ResourceImpl, set};
use crate::schema::{AttrSpec, BlockSpec, optional, optional_computed, required};
use crate::value::{Ty, Val, dyn_from_json, from_json, same_data, to_json};

/// A typed request from the planned attributes (the provider's values are JSON-shaped, so
/// the attributes' JSON is the request's: only what is known and set is sent).
fn request<T: GatewayObject>(body: Map<String, Json>) -> Result<T::Request> {
    serde_json::from_value(Json::Object(body)).map_err(|e| Error::new(format!("invalid {} body: {e}", T::PATH)))
}

/// An answer's fields, as the state functions read them.
fn fields<T: GatewayObject>(t: &T) -> Json {
    serde_json::to_value(t).unwrap_or_default()
}

async fn create<T: GatewayObject>(api: &Api, body: Map<String, Json>) -> Result<Json> {
    Ok(fields(&api.client.create_gateway::<T>(&request::<T>(body)?).await?))
}

async fn get<T: GatewayObject>(api: &Api, id: &str) -> Result<Option<T>> {
    found(api.client.get_gateway::<T>(id).await.map_err(Error::from))
}

async fn replace<T: GatewayObject>(api: &Api, id: &str, body: Map<String, Json>) -> Result<Json> {
    Ok(fields(&api.client.replace_gateway::<T>(id, &request::<T>(body)?).await?))
}

async fn delete<T: GatewayObject>(api: &Api, id: &str) -> Result<()> {
    gone_is_fine(api.client.delete_gateway::<T>(id).await.map_err(Error::from))
}

/// Kong's import id: the object's id, or seed 003's JSON form `{"id": "...", "workspace": "..."}`.
fn import_id(id: &str) -> Result<String> {
    if !id.trim_start().starts_with('{') {
        return Ok(id.to_owned());
    }
    let v: Json = serde_json::from_str(id).map_err(|e| Error::new(format!("the import id is not valid JSON: {e}")))?;
    v["id"].as_str().map(str::to_owned).ok_or_else(|| Error::new("the import id's JSON has no \"id\""))
}

fn common(desc: &'static str, attrs: Vec<AttrSpec>) -> BlockSpec {
    let mut all = vec![optional_computed(
        "id",
        Ty::Str,
        "The object's UUID; chosen by the server unless set. Changing it replaces the object.",
    )];
    all.extend(attrs);
    all.push(optional("tags", Ty::list(Ty::Str), "Strings for grouping and filtering."));
    all.push(optional_computed("created_at", Ty::Num, "Unix time the object was created."));
    all.push(optional_computed("updated_at", Ty::Num, "Unix time the object was last updated."));
    BlockSpec::new(desc, all)
}

/// Puts every known, non-null planned attribute named in `keys` into a Kong body.
fn body_of(planned: &Val, keys: &[&str]) -> Map<String, Json> {
    keys.iter()
        .filter_map(|k| {
            let v = planned.get(k);
            (v.is_wholly_known() && !v.is_null()).then(|| ((*k).to_owned(), to_json(v)))
        })
        .collect()
}

/// A JSON field as a typed state value.
fn field(obj: &Json, key: &str) -> Val {
    from_json(&obj[key])
}

/// `{"id": ...}` references keep only the id.
fn reference(obj: &Json, key: &str) -> Val {
    match obj[key]["id"].as_str() {
        Some(id) => Val::Obj([("id".to_owned(), Val::str(id))].into()),
        None => Val::Null,
    }
}

/// The timestamps: the state's once it has them (a configured value is kept as written, and
/// the server's own change only on updates, which plan them as unknown), else the server's.
fn stamps(obj: &Json, prior: &Val) -> [(&'static str, Val); 2] {
    ["created_at", "updated_at"].map(|k| match prior.get(k) {
        Val::Num(n) => (k, Val::Num(*n)),
        _ => (k, field(obj, k)),
    })
}

// ---- services ------------------------------------------------------------------------------

pub struct GatewayService;

const SERVICE_KEYS: &[&str] = &[
    "id",
    "name",
    "protocol",
    "host",
    "port",
    "path",
    "retries",
    "connect_timeout",
    "write_timeout",
    "read_timeout",
    "enabled",
    "tags",
];
const SERVICE_PARTS: &[&str] = &["protocol", "host", "port", "path"];

fn service_spec() -> BlockSpec {
    common(
        "A gateway service: the upstream that routes send requests to.",
        vec![
            optional("name", Ty::Str, "A unique name: letters, digits, `-`, `.`, `_`, `~`."),
            optional_computed(
                "url",
                Ty::Str,
                "Shorthand for `protocol`, `host`, `port` and `path`, e.g. `http://127.0.0.1:9000/api`; computed from them when not set.",
            ),
            optional_computed("protocol", Ty::Str, "`http` (TLS terminates in front of the gateway)."),
            optional_computed("host", Ty::Str, "The upstream's host name or address."),
            optional_computed("port", Ty::Num, "The upstream's port (80 when not set)."),
            optional_computed("path", Ty::Str, "A path prefix for upstream requests."),
            optional_computed("retries", Ty::Num, "Retries on failure (5)."),
            optional_computed("connect_timeout", Ty::Num, "Milliseconds (60000)."),
            optional_computed("write_timeout", Ty::Num, "Milliseconds (60000)."),
            optional_computed("read_timeout", Ty::Num, "Milliseconds (60000)."),
            optional_computed("enabled", Ty::Bool, "Whether the service takes traffic (true)."),
        ],
    )
}

/// `scheme://host:port/path`, lower-cased where case does not matter, port made explicit.
fn canonical_url(u: &str) -> Option<String> {
    let (scheme, rest) = u.trim().split_once("://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (h, p.parse::<u16>().ok()?),
        _ => (authority, 80),
    };
    Some(format!("{}://{}:{port}{path}", scheme.to_ascii_lowercase(), host.to_ascii_lowercase()))
}

fn service_state(obj: &Json, prior: &Val) -> Val {
    let mut pairs: Vec<(&str, Val)> = SERVICE_KEYS.iter().map(|k| (*k, field(obj, k))).collect();
    pairs.extend(stamps(obj, prior));
    let url = format!(
        "{}://{}:{}{}",
        obj["protocol"].as_str().unwrap_or("http"),
        obj["host"].as_str().unwrap_or_default(),
        obj["port"].as_i64().unwrap_or(80),
        obj["path"].as_str().unwrap_or_default()
    );
    pairs.push(("url", Val::str(url)));
    state(&service_spec(), pairs)
}

fn service_body(planned: &Val, config_url: bool) -> Map<String, Json> {
    let mut b = body_of(planned, SERVICE_KEYS);
    if config_url && let Some(url) = planned.get("url").as_str() {
        for k in SERVICE_PARTS {
            b.remove(*k);
        }
        b.insert("url".into(), Json::from(url));
    }
    b
}

#[async_trait]
impl ResourceImpl for GatewayService {
    fn name(&self) -> &'static str {
        "gateway_service"
    }
    fn schema(&self) -> BlockSpec {
        service_spec()
    }
    fn validate(&self, config: &Val, d: &mut Diags) {
        let parts = SERVICE_PARTS.iter().any(|k| !config.get(k).is_null());
        match (config.get("url").is_null(), parts) {
            (false, true) => d.error("url", "set either url or protocol/host/port/path, not both"),
            (true, false) => d.error("host", "one of url or host is required"),
            _ => {}
        }
        if let Some(u) = config.get("url").as_str()
            && canonical_url(u).is_none()
        {
            d.error("url", format!("url: '{u}' is not an absolute URL such as http://127.0.0.1:9000/api"));
        }
    }
    fn force_new(&self) -> &'static [&'static str] {
        &["id"]
    }
    fn volatile(&self) -> &'static [&'static str] {
        &["updated_at"]
    }
    fn equivalent(&self, attr: &str, a: &Val, b: &Val) -> bool {
        match (attr, a.as_str(), b.as_str()) {
            ("url", Some(x), Some(y)) => canonical_url(x).is_some() && canonical_url(x) == canonical_url(y),
            _ => false,
        }
    }
    fn plan(&self, prior: Option<&Val>, config: &Val, planned: &mut Val) {
        let Some(prior) = prior else { return };
        // A new url means new parts, and new parts a new url: known after apply.
        let url_changed = planned.get("url") != prior.get("url");
        let parts_changed = SERVICE_PARTS.iter().any(|k| planned.get(k) != prior.get(k));
        if !config.get("url").is_null() && url_changed {
            for k in SERVICE_PARTS {
                set(planned, k, Val::Unknown);
            }
        }
        if config.get("url").is_null() && parts_changed {
            set(planned, "url", Val::Unknown);
        }
    }

    async fn create(&self, api: &Api, planned: &Val) -> Result<Val> {
        let obj = create::<gw::Service>(api, service_body(planned, planned.get("host").is_unknown())).await?;
        Ok(service_state(&obj, planned))
    }
    async fn read(&self, api: &Api, prior: &Val) -> Result<Option<Val>> {
        Ok(get::<gw::Service>(api, &id_of(prior)?).await?.map(|o| service_state(&fields(&o), prior)))
    }
    async fn import(&self, api: &Api, id: &str) -> Result<Option<Val>> {
        Ok(get::<gw::Service>(api, &import_id(id)?).await?.map(|o| service_state(&fields(&o), &Val::Null)))
    }
    async fn update(&self, api: &Api, prior: &Val, planned: &Val) -> Result<Val> {
        // The url is what the configuration set when the parts are to be derived from it.
        let from_url = planned.get("host").is_unknown() || planned.get("url") != prior.get("url");
        let obj = replace::<gw::Service>(api, &id_of(prior)?, service_body(planned, from_url)).await?;
        Ok(service_state(&obj, planned))
    }
    async fn delete(&self, api: &Api, prior: &Val) -> Result<()> {
        delete::<gw::Service>(api, &id_of(prior)?).await
    }
}

// ---- routes --------------------------------------------------------------------------------

pub struct GatewayRoute;

const ROUTE_KEYS: &[&str] = &[
    "id",
    "name",
    "paths",
    "hosts",
    "methods",
    "protocols",
    "regex_priority",
    "https_redirect_status_code",
    "strip_path",
    "preserve_host",
    "service",
    "tags",
];

fn ref_ty() -> Ty {
    Ty::obj(&[("id", Ty::Str)])
}

fn route_spec() -> BlockSpec {
    common(
        "A gateway route: which requests (paths, hosts, methods) go to a service.",
        vec![
            optional("name", Ty::Str, "A unique name: letters, digits, `-`, `.`, `_`, `~`."),
            optional("paths", Ty::list(Ty::Str), "Path prefixes (`/api`), or Kong regexes (`~/users/\\d+$`)."),
            optional("hosts", Ty::list(Ty::Str), "Host names, optionally `*.example.com` or `example.*`."),
            optional("methods", Ty::list(Ty::Str), "HTTP methods such as `GET`."),
            optional_computed(
                "protocols",
                Ty::list(Ty::Str),
                "`http`, `https`, `ws`, `wss` (http and https when not set).",
            ),
            optional_computed("regex_priority", Ty::Num, "Orders routes whose regex paths match (higher first; 0)."),
            optional_computed(
                "https_redirect_status_code",
                Ty::Num,
                "Plain http to an https-only route: 426, or a redirect code 301/302/307/308 (426).",
            ),
            optional_computed("strip_path", Ty::Bool, "Remove the matched prefix before proxying (true)."),
            optional_computed("preserve_host", Ty::Bool, "Send the client's Host header upstream (false)."),
            required("service", ref_ty(), "The service the route sends to: `{ id = ... }`."),
        ],
    )
}

fn route_state(obj: &Json, prior: &Val) -> Val {
    let mut pairs: Vec<(&str, Val)> =
        ROUTE_KEYS.iter().filter(|k| **k != "service").map(|k| (*k, field(obj, k))).collect();
    pairs.push(("service", reference(obj, "service")));
    pairs.extend(stamps(obj, prior));
    state(&route_spec(), pairs)
}

#[async_trait]
impl ResourceImpl for GatewayRoute {
    fn name(&self) -> &'static str {
        "gateway_route"
    }
    fn schema(&self) -> BlockSpec {
        route_spec()
    }
    fn validate(&self, config: &Val, d: &mut Diags) {
        if ["paths", "hosts", "methods"]
            .iter()
            .all(|k| config.get(k).as_list().is_some_and(<[Val]>::is_empty) || config.get(k).is_null())
        {
            d.error("paths", "a route needs at least one of paths, hosts or methods");
        }
    }
    fn force_new(&self) -> &'static [&'static str] {
        &["id"]
    }
    fn volatile(&self) -> &'static [&'static str] {
        &["updated_at"]
    }
    fn equivalent(&self, attr: &str, a: &Val, b: &Val) -> bool {
        matches!(attr, "methods" | "hosts") && super::same_strings_ignoring_case(a, b)
    }

    async fn create(&self, api: &Api, planned: &Val) -> Result<Val> {
        let obj = create::<gw::Route>(api, body_of(planned, ROUTE_KEYS)).await?;
        Ok(route_state(&obj, planned))
    }
    async fn read(&self, api: &Api, prior: &Val) -> Result<Option<Val>> {
        Ok(get::<gw::Route>(api, &id_of(prior)?).await?.map(|o| route_state(&fields(&o), prior)))
    }
    async fn import(&self, api: &Api, id: &str) -> Result<Option<Val>> {
        Ok(get::<gw::Route>(api, &import_id(id)?).await?.map(|o| route_state(&fields(&o), &Val::Null)))
    }
    async fn update(&self, api: &Api, prior: &Val, planned: &Val) -> Result<Val> {
        let obj = replace::<gw::Route>(api, &id_of(prior)?, body_of(planned, ROUTE_KEYS)).await?;
        Ok(route_state(&obj, planned))
    }
    async fn delete(&self, api: &Api, prior: &Val) -> Result<()> {
        delete::<gw::Route>(api, &id_of(prior)?).await
    }
}

// ---- the session plugin --------------------------------------------------------------------

pub struct PluginSession;

const PLUGIN_KEYS: &[&str] = &[
    "id",
    "instance_name",
    "config",
    "enabled",
    "protocols",
    "route",
    "service",
    "tags",
    "ordering",
    "partials",
    "workspace",
];

/// The session plugin's `config` fields (Kong 3.12's, and Tessera's `unauthenticated`) and
/// the JSON type each takes.
const CONFIG_FIELDS: &[(&str, &str)] = &[
    ("absolute_timeout", "number"),
    ("audience", "string"),
    ("bind", "list"),
    ("cookie_domain", "string"),
    ("cookie_http_only", "bool"),
    ("cookie_name", "string"),
    ("cookie_path", "string"),
    ("cookie_same_site", "string"),
    ("cookie_secure", "bool"),
    ("hash_subject", "bool"),
    ("idling_timeout", "number"),
    ("logout_methods", "list"),
    ("logout_post_arg", "string"),
    ("logout_query_arg", "string"),
    ("read_body_for_logout", "bool"),
    ("remember", "bool"),
    ("remember_absolute_timeout", "number"),
    ("remember_cookie_name", "string"),
    ("remember_rolling_timeout", "number"),
    ("request_headers", "list"),
    ("response_headers", "list"),
    ("rolling_timeout", "number"),
    ("secret", "string"),
    ("stale_ttl", "number"),
    ("storage", "string"),
    ("store_metadata", "bool"),
    ("unauthenticated", "string"),
];

fn plugin_spec() -> BlockSpec {
    common(
        "Kong's `session` plugin on the Tessera gateway: signs users in with a session cookie, for every route, one service's routes or one route.",
        vec![
            optional("instance_name", Ty::Str, "A unique name for this plugin instance."),
            optional_computed(
                "config",
                Ty::Dyn,
                "The plugin's settings, an object with Kong's `session` fields (`secret`, `storage`, `cookie_name`, `rolling_timeout`, ...) and Tessera's `unauthenticated` (`reject`, `redirect` or `pass`). Fields left out take Kong's defaults; a generated `secret` is kept across updates.",
            ),
            optional_computed("enabled", Ty::Bool, "Whether the plugin is applied (true)."),
            optional_computed(
                "protocols",
                Ty::set(Ty::Str),
                "Protocols the plugin runs for: `grpc`, `grpcs`, `http`, `https`, `ws`, `wss`.",
            ),
            optional("route", ref_ty(), "Only requests through this route: `{ id = ... }`."),
            optional("service", ref_ty(), "Only requests to this service's routes: `{ id = ... }`."),
            optional(
                "ordering",
                Ty::Dyn,
                "Kong's plugin ordering, `{ before = { access = [...] }, after = { access = [...] } }`; stored, not used (the gateway runs one plugin).",
            ),
            optional("partials", Ty::Dyn, "Kong's partials, a list of `{ id, name, path }`; stored, not used."),
            optional_computed("workspace", Ty::Str, "The workspace name or id (`default`)."),
        ],
    )
}

fn json_kind(j: &Json) -> &'static str {
    match j {
        Json::Null => "null",
        Json::Bool(_) => "bool",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "list",
        Json::Object(_) => "object",
    }
}

fn check_config(config: &Val, d: &mut Diags) {
    if config.is_null() || !config.is_wholly_known() {
        return;
    }
    let Json::Object(m) = to_json(config) else {
        d.error("config", "config must be an object such as { cookie_name = \"session\" }");
        return;
    };
    for (k, v) in &m {
        let Some((_, want)) = CONFIG_FIELDS.iter().find(|(name, _)| name == k) else {
            let known: Vec<&str> = CONFIG_FIELDS.iter().map(|f| f.0).collect();
            d.error(
                "config",
                format!("config.{k} is not a setting of the session plugin; known: {}", known.join(", ")),
            );
            continue;
        };
        let got = json_kind(v);
        let list_of_strings = v.as_array().is_some_and(|a| a.iter().all(Json::is_string));
        if got != "null" && (got != *want || (*want == "list" && !list_of_strings)) {
            let want = if *want == "list" { "a list of strings" } else { want };
            d.error("config", format!("config.{k} must be {want}, found {got}"));
        }
    }
}

fn check_ordering(v: &Val, d: &mut Diags) {
    if v.is_null() || !v.is_wholly_known() {
        return;
    }
    let ok = match to_json(v) {
        Json::Object(m) => m.iter().all(|(k, phase)| {
            (k == "before" || k == "after")
                && (phase.is_null()
                    || phase.as_object().is_some_and(|p| {
                        p.values().all(|l| l.is_null() || l.as_array().is_some_and(|a| a.iter().all(Json::is_string)))
                    }))
        }),
        _ => false,
    };
    if !ok {
        d.error(
            "ordering",
            "ordering must look like { before = { access = [\"...\"] }, after = { access = [\"...\"] } }",
        );
    }
}

fn check_partials(v: &Val, d: &mut Diags) {
    if v.is_null() || !v.is_wholly_known() {
        return;
    }
    let ok = match to_json(v) {
        Json::Array(items) => items.iter().all(|p| {
            p.as_object().is_some_and(|o| {
                o.iter().all(|(k, v)| matches!(k.as_str(), "id" | "name" | "path") && (v.is_null() || v.is_string()))
            })
        }),
        _ => false,
    };
    if !ok {
        d.error("partials", "partials must be a list of { id, name, path } objects of strings");
    }
}

/// `b`'s fields are among `a`'s, with the same values (`a` is the prior value).
fn config_within(a: &Val, b: &Val) -> bool {
    match (to_json(a), to_json(b)) {
        (Json::Object(prior), Json::Object(now)) => {
            now.iter().filter(|(_, v)| !v.is_null()).all(|(k, v)| prior.get(k).is_some_and(|p| same_data(p, v)))
        }
        _ => false,
    }
}

fn plugin_state(obj: &Json, prior: &Val) -> Val {
    let mut pairs: Vec<(&str, Val)> = vec![
        ("id", field(obj, "id")),
        ("instance_name", field(obj, "instance_name")),
        ("enabled", field(obj, "enabled")),
        ("protocols", field(obj, "protocols")),
        ("route", reference(obj, "route")),
        ("service", reference(obj, "service")),
        ("tags", field(obj, "tags")),
        ("ordering", dyn_from_json(&obj["ordering"])),
        ("partials", dyn_from_json(&obj["partials"])),
        ("workspace", field(obj, "workspace")),
    ];
    // The configured fields only (all of them when none were configured), so a change made
    // outside Terraform shows as a change of exactly that field.
    let server = obj["config"].as_object().cloned().unwrap_or_default();
    let config = match to_json(prior.get("config")) {
        Json::Object(keys) => {
            // The API answers the secret as null (it is write-only): the configured one stays.
            let value = |k: &String, configured: &Json| match server.get(k) {
                Some(Json::Null) | None if k == "secret" => configured.clone(),
                v => v.cloned().unwrap_or(Json::Null),
            };
            let projected: Map<String, Json> = keys.iter().map(|(k, c)| (k.clone(), value(k, c))).collect();
            dyn_from_json(&Json::Object(projected))
        }
        _ => dyn_from_json(&Json::Object(server)),
    };
    pairs.push(("config", config));
    pairs.extend(stamps(obj, prior));
    state(&plugin_spec(), pairs)
}

fn plugin_body(planned: &Val, current_secret: Option<&str>) -> Map<String, Json> {
    let mut b = body_of(planned, PLUGIN_KEYS);
    b.insert("name".into(), Json::from("session"));
    let mut config = match b.remove("config") {
        Some(Json::Object(m)) => m,
        _ => Map::new(),
    };
    config.retain(|_, v| !v.is_null());
    if let Some(s) = current_secret
        && !config.contains_key("secret")
    {
        config.insert("secret".into(), Json::from(s));
    }
    b.insert("config".into(), Json::Object(config));
    b
}

#[async_trait]
impl ResourceImpl for PluginSession {
    fn name(&self) -> &'static str {
        "plugin_session"
    }
    fn schema(&self) -> BlockSpec {
        plugin_spec()
    }
    fn validate(&self, config: &Val, d: &mut Diags) {
        check_config(config.get("config"), d);
        check_ordering(config.get("ordering"), d);
        check_partials(config.get("partials"), d);
        if let Some(ps) = config.get("protocols").as_strings() {
            for p in ps {
                if !["grpc", "grpcs", "http", "https", "ws", "wss"].contains(&p.as_str()) {
                    d.error("protocols", format!("protocols: '{p}' is not one of grpc, grpcs, http, https, ws, wss"));
                }
            }
        }
    }
    fn force_new(&self) -> &'static [&'static str] {
        &["id"]
    }
    fn volatile(&self) -> &'static [&'static str] {
        &["updated_at"]
    }
    fn equivalent(&self, attr: &str, a: &Val, b: &Val) -> bool {
        attr == "config" && config_within(a, b)
    }

    async fn create(&self, api: &Api, planned: &Val) -> Result<Val> {
        let obj = create::<gw::Plugin>(api, plugin_body(planned, None)).await?;
        Ok(plugin_state(&obj, planned))
    }
    async fn read(&self, api: &Api, prior: &Val) -> Result<Option<Val>> {
        Ok(get::<gw::Plugin>(api, &id_of(prior)?).await?.map(|o| plugin_state(&fields(&o), prior)))
    }
    async fn import(&self, api: &Api, id: &str) -> Result<Option<Val>> {
        Ok(get::<gw::Plugin>(api, &import_id(id)?).await?.map(|o| plugin_state(&fields(&o), &Val::Null)))
    }
    async fn update(&self, api: &Api, prior: &Val, planned: &Val) -> Result<Val> {
        let id = id_of(prior)?;
        // Keep the secret the server generated unless the configuration sets one.
        let current =
            get::<gw::Plugin>(api, &id).await?.ok_or_else(|| Error::new("the plugin disappeared").at("id"))?;
        let secret = current.config.secret.as_deref();
        let obj = replace::<gw::Plugin>(api, &id, plugin_body(planned, secret)).await?;
        Ok(plugin_state(&obj, planned))
    }
    async fn delete(&self, api: &Api, prior: &Val) -> Result<()> {
        delete::<gw::Plugin>(api, &id_of(prior)?).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn urls_compare_with_explicit_ports() {
        assert_eq!(canonical_url("HTTP://Example.com/api").as_deref(), Some("http://example.com:80/api"));
        assert_eq!(canonical_url("http://127.0.0.1:9000"), canonical_url("http://127.0.0.1:9000"));
        assert!(canonical_url("nope").is_none());
    }

    #[test]
    fn a_configured_subset_of_the_config_means_no_change() {
        let prior = dyn_from_json(&json!({"cookie_name": "a", "remember": true, "idling_timeout": 900.0}));
        assert!(config_within(&prior, &dyn_from_json(&json!({"cookie_name": "a", "idling_timeout": 900}))));
        assert!(!config_within(&prior, &dyn_from_json(&json!({"cookie_name": "b"}))));
        assert!(!config_within(&prior, &dyn_from_json(&json!({"storage": "kong"}))));
    }

    #[test]
    fn config_settings_are_checked() {
        let mut d = Diags::default();
        check_config(&dyn_from_json(&json!({"cookie_nam": "a", "remember": "yes", "bind": ["ip"]})), &mut d);
        let msgs: Vec<String> = d.0.iter().map(|e| e.summary.clone()).collect();
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(msgs[0].contains("config.cookie_nam is not a setting"), "{msgs:?}");
        assert!(msgs[1].contains("config.remember must be bool"), "{msgs:?}");
    }
}
