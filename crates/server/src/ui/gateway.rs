//! Gateway pages: services, routes and session plugins, edited as the Kong Admin API JSON the
//! `/v2/gateway/*` routes take (every seed-003 field), through the same app use cases. A
//! refused object is shown again with the error next to the editor and the line it names.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};
use serde_json::Value;
use tessera_app::App;
use tessera_app::gateway::GatewayResource;
use tessera_domain::gateway::{Plugin, Route, Service};
use uuid::Uuid;

use super::iam::error_line;
use super::{Page, Post, Ui, csrf_field, done, failed, notice_banner, page};
use crate::error::ApiError;
use crate::extract::parse_json;

pub fn pages() -> Vec<Page> {
    vec![
        Page { path: "/ui/gateway", handler: get(overview) },
        Page { path: "/ui/gateway/{kind}", handler: get(list).post(create) },
        Page { path: "/ui/gateway/{kind}/{id}", handler: get(detail).post(update) },
        Page { path: "/ui/gateway/{kind}/{id}/enabled", handler: post(set_enabled) },
        Page { path: "/ui/gateway/{kind}/{id}/delete", handler: post(delete) },
    ]
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Services,
    Routes,
    Plugins,
}

impl Kind {
    fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "services" => Kind::Services,
            "routes" => Kind::Routes,
            "plugins" => Kind::Plugins,
            _ => return None,
        })
    }
    fn path(self) -> &'static str {
        match self {
            Kind::Services => "services",
            Kind::Routes => "routes",
            Kind::Plugins => "plugins",
        }
    }
    fn title(self) -> &'static str {
        match self {
            Kind::Services => "Services",
            Kind::Routes => "Routes",
            Kind::Plugins => "Plugins",
        }
    }
    fn template(self) -> &'static str {
        match self {
            Kind::Services => {
                "{\n  \"name\": \"app\",\n  \"url\": \"http://127.0.0.1:3000\",\n  \"retries\": 5,\n  \"connect_timeout\": 60000,\n  \"read_timeout\": 60000,\n  \"write_timeout\": 60000,\n  \"enabled\": true,\n  \"tags\": []\n}"
            }
            Kind::Routes => {
                "{\n  \"name\": \"app\",\n  \"paths\": [\"/app\"],\n  \"methods\": null,\n  \"hosts\": null,\n  \"strip_path\": true,\n  \"preserve_host\": false,\n  \"service\": {\"id\": \"SERVICE-ID\"},\n  \"tags\": []\n}"
            }
            Kind::Plugins => {
                "{\n  \"name\": \"session\",\n  \"route\": {\"id\": \"ROUTE-ID\"},\n  \"enabled\": true,\n  \"config\": {\n    \"cookie_name\": \"session\",\n    \"cookie_secure\": false,\n    \"cookie_same_site\": \"Strict\",\n    \"rolling_timeout\": 3600,\n    \"idling_timeout\": 900,\n    \"absolute_timeout\": 86400,\n    \"storage\": \"server\",\n    \"unauthenticated\": \"redirect\"\n  }\n}"
            }
        }
    }
}

macro_rules! kind {
    ($raw:expr) => {
        match Kind::parse(&$raw) {
            Some(k) => k,
            None => return super::error_page(StatusCode::NOT_FOUND, "No such kind of gateway object."),
        }
    };
}

/// An object as JSON, its id, display name and whether it is enabled.
struct Row {
    id: String,
    name: String,
    enabled: Option<bool>,
    json: Value,
}

fn row<T: GatewayResource>(mut t: T) -> Row {
    let id = t.id_mut().map(|u| u.to_string()).unwrap_or_default();
    let name = t.name().unwrap_or("").to_owned();
    let mut json = serde_json::to_value(&t).unwrap_or_default();
    // A plugin's secret keys every session cookie: write-only, as `/v2/gateway/plugins`
    // answers it (null). Saving the object without it keeps the stored one.
    if let Some(secret) = json.get_mut("config").and_then(|c| c.get_mut("secret")) {
        *secret = Value::Null;
    }
    Row { enabled: json.get("enabled").and_then(Value::as_bool), id, name, json }
}

async fn rows(app: &App, ui: &Ui, kind: Kind) -> Result<Vec<Row>, ApiError> {
    Ok(match kind {
        Kind::Services => app.list_gateway_objects::<Service>(&ui.caller).await?.into_iter().map(row).collect(),
        Kind::Routes => app.list_gateway_objects::<Route>(&ui.caller).await?.into_iter().map(row).collect(),
        Kind::Plugins => app.list_gateway_objects::<Plugin>(&ui.caller).await?.into_iter().map(row).collect(),
    })
}

async fn one(app: &App, ui: &Ui, kind: Kind, id: Uuid) -> Result<Row, ApiError> {
    Ok(match kind {
        Kind::Services => row(app.get_gateway_object::<Service>(&ui.caller, id).await?),
        Kind::Routes => row(app.get_gateway_object::<Route>(&ui.caller, id).await?),
        Kind::Plugins => row(app.get_gateway_object::<Plugin>(&ui.caller, id).await?),
    })
}

/// The body checked as `POST /v2/gateway/*` checks it (the object's shape, with the failing
/// field's path), then handed to the app as JSON.
fn checked<T: GatewayResource>(text: &str) -> Result<Value, ApiError> {
    let value: Value = parse_json(text.as_bytes())?;
    let _: T = parse_json(text.as_bytes())?;
    Ok(value)
}

async fn save(app: &App, ui: &Ui, kind: Kind, id: Option<Uuid>, text: &str) -> Result<String, ApiError> {
    async fn go<T: GatewayResource>(app: &App, ui: &Ui, id: Option<Uuid>, text: &str) -> Result<String, ApiError> {
        let body = checked::<T>(text)?;
        let mut t = match id {
            None => app.create_gateway_object::<T>(&ui.caller, body).await?,
            Some(id) => app.update_gateway_object::<T>(&ui.caller, id, body, false).await?,
        };
        Ok(t.id_mut().map(|u| u.to_string()).unwrap_or_default())
    }
    match kind {
        Kind::Services => go::<Service>(app, ui, id, text).await,
        Kind::Routes => go::<Route>(app, ui, id, text).await,
        Kind::Plugins => go::<Plugin>(app, ui, id, text).await,
    }
}

fn editor(ui: &Ui, action: &str, text: &str, bad: Option<&ApiError>, submit: &str) -> Markup {
    let line = bad.and_then(|e| error_line(text, &format!("body.{}", e.field.clone().unwrap_or_default()), &e.message));
    html! {
        form method="post" action=(action) aria-label=(submit) {
            (csrf_field(ui))
            div.field {
                label for="g-doc" { "Object (Kong Admin API JSON)" }
                textarea id="g-doc" name="object" spellcheck="false" rows="16"
                    aria-invalid=[bad.map(|_| "true")] aria-describedby=[bad.map(|_| "g-doc-error")] { (text) }
                @if let Some(e) = bad {
                    p id="g-doc-error" class="error" role="alert" {
                        @if let Some(f) = &e.field { "Field " code { (f) } ": " }
                        @if let Some(l) = line { "(line " (l) ") " }
                        (e.message)
                    }
                    @if let Some(l) = line {
                        ol.lines aria-label="The object, with the line the error refers to marked" {
                            @for (i, t) in text.lines().enumerate() {
                                li class=[(i + 1 == l).then_some("line-error")] { (t) " " }
                            }
                        }
                    }
                }
            }
            button type="submit" { (submit) }
        }
    }
}

fn table(ui: &Ui, kind: Kind, rows: &[Row]) -> Markup {
    html! {
        table {
            caption.muted { (kind.title()) }
            thead { tr { th scope="col" { "Name" } th scope="col" { "Id" } th scope="col" { "Enabled" } th scope="col" { "Object" } th scope="col" { "Action" } } }
            tbody {
                @for r in rows {
                    tr {
                        td { a href=(format!("/ui/gateway/{}/{}", kind.path(), r.id)) { @if r.name.is_empty() { "(unnamed)" } @else { (r.name) } } }
                        td.mono { (r.id) }
                        td { @match r.enabled { Some(true) => "yes", Some(false) => "no", None => "—" } }
                        td.mono { (r.json.to_string()) }
                        td { @if let Some(on) = r.enabled { (toggle(ui, kind, &r.id, on)) } }
                    }
                }
            }
        }
    }
}

fn toggle(ui: &Ui, kind: Kind, id: &str, on: bool) -> Markup {
    html! {
        form.inline method="post" action=(format!("/ui/gateway/{}/{id}/enabled", kind.path())) {
            (csrf_field(ui))
            input type="hidden" name="enabled" value=(if on { "false" } else { "true" });
            button.plain type="submit" { (if on { "Disable" } else { "Enable" }) }
        }
    }
}

async fn overview(State(app): State<Arc<App>>, ui: Ui, uri: Uri) -> Response {
    let mut sections = vec![];
    for k in [Kind::Services, Kind::Routes, Kind::Plugins] {
        match rows(&app, &ui, k).await {
            Ok(r) => sections.push((k, r)),
            Err(e) => return failed(e),
        }
    }
    let main = html! {
        h1 { "Gateway" }
        (notice_banner(&uri))
        p { "The session gateway's upstreams (services), the requests that reach them (routes) and the " code { "session" } " plugins that protect them. Changes apply to the running gateway at once." }
        @for (k, r) in &sections {
            h2 { a href=(format!("/ui/gateway/{}", k.path())) { (k.title()) } }
            (table(&ui, *k, r))
        }
    };
    page(&ui, "/ui/gateway", "Gateway", main)
}

async fn list(State(app): State<Arc<App>>, ui: Ui, Path(raw): Path<String>, uri: Uri) -> Response {
    let kind = kind!(raw);
    list_page(&app, &ui, kind, &uri, None, None).await
}

async fn list_page(app: &App, ui: &Ui, kind: Kind, uri: &Uri, text: Option<&str>, bad: Option<ApiError>) -> Response {
    let r = match rows(app, ui, kind).await {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    let main = html! {
        p { a href="/ui/gateway" { "← Gateway" } }
        h1 { "Gateway " (kind.title().to_lowercase()) }
        (notice_banner(uri))
        (table(ui, kind, &r))
        h2 { "New" }
        (editor(ui, &format!("/ui/gateway/{}", kind.path()), text.unwrap_or(kind.template()), bad.as_ref(), "Create"))
    };
    let mut res = page(ui, "/ui/gateway", kind.title(), main);
    if bad.is_some() {
        *res.status_mut() = StatusCode::BAD_REQUEST;
    }
    res
}

fn refusable(e: &ApiError) -> bool {
    matches!(e.status, StatusCode::BAD_REQUEST | StatusCode::CONFLICT | StatusCode::NOT_FOUND)
}

async fn create(State(app): State<Arc<App>>, Path(raw): Path<String>, uri: Uri, Post { ui, form }: Post) -> Response {
    let kind = kind!(raw);
    let text = form.get("object");
    match save(&app, &ui, kind, None, text).await {
        Ok(id) => done(&format!("/ui/gateway/{}/{id}", kind.path()), "created"),
        Err(e) if refusable(&e) => list_page(&app, &ui, kind, &uri, Some(text), Some(e)).await,
        Err(e) => failed(e),
    }
}

fn parse_uuid(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse::<Uuid>().map_err(|_| ApiError::invalid("path.id", format!("id '{raw}' is not a valid id")))
}

async fn detail(State(app): State<Arc<App>>, ui: Ui, Path((k, raw)): Path<(String, String)>, uri: Uri) -> Response {
    let kind = kind!(k);
    let id = match parse_uuid(&raw) {
        Ok(i) => i,
        Err(e) => return failed(e),
    };
    detail_page(&app, &ui, kind, id, &uri, None, None).await
}

async fn detail_page(
    app: &App,
    ui: &Ui,
    kind: Kind,
    id: Uuid,
    uri: &Uri,
    text: Option<&str>,
    bad: Option<ApiError>,
) -> Response {
    let r = match one(app, ui, kind, id).await {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    let pretty = serde_json::to_string_pretty(&r.json).unwrap_or_default();
    let base = format!("/ui/gateway/{}/{}", kind.path(), r.id);
    let main = html! {
        p { a href=(format!("/ui/gateway/{}", kind.path())) { "← " (kind.title()) } }
        h1 { (kind.title()) ": " (if r.name.is_empty() { r.id.as_str() } else { r.name.as_str() }) }
        (notice_banner(uri))
        @if let Some(on) = r.enabled { p { "Enabled: " (if on { "yes" } else { "no" }) " " (toggle(ui, kind, &r.id, on)) } }
        (editor(ui, &base, text.unwrap_or(&pretty), bad.as_ref(), "Save"))
        form method="post" action=(format!("{base}/delete")) {
            (csrf_field(ui))
            button.danger type="submit" { "Delete" }
        }
    };
    let mut res = page(ui, "/ui/gateway", kind.title(), main);
    if bad.is_some() {
        *res.status_mut() = StatusCode::BAD_REQUEST;
    }
    res
}

async fn update(
    State(app): State<Arc<App>>,
    Path((k, raw)): Path<(String, String)>,
    uri: Uri,
    Post { ui, form }: Post,
) -> Response {
    let kind = kind!(k);
    let id = match parse_uuid(&raw) {
        Ok(i) => i,
        Err(e) => return failed(e),
    };
    let text = form.get("object");
    match save(&app, &ui, kind, Some(id), text).await {
        Ok(_) => done(&format!("/ui/gateway/{}/{id}", kind.path()), "saved"),
        Err(e) if refusable(&e) => detail_page(&app, &ui, kind, id, &uri, Some(text), Some(e)).await,
        Err(e) => failed(e),
    }
}

async fn set_enabled(
    State(app): State<Arc<App>>,
    Path((k, raw)): Path<(String, String)>,
    Post { ui, form }: Post,
) -> Response {
    let kind = kind!(k);
    let id = match parse_uuid(&raw) {
        Ok(i) => i,
        Err(e) => return failed(e),
    };
    let on = form.get("enabled") == "true";
    let body = serde_json::json!({ "enabled": on });
    // `PATCH` semantics: merged into the stored object.
    let r = match kind {
        Kind::Services => app.update_gateway_object::<Service>(&ui.caller, id, body, true).await.map(|_| ()),
        Kind::Routes => app.update_gateway_object::<Route>(&ui.caller, id, body, true).await.map(|_| ()),
        Kind::Plugins => app.update_gateway_object::<Plugin>(&ui.caller, id, body, true).await.map(|_| ()),
    };
    match r {
        Ok(()) => done(&format!("/ui/gateway/{}/{id}", kind.path()), if on { "enabled" } else { "disabled" }),
        Err(e) => failed(e),
    }
}

async fn delete(
    State(app): State<Arc<App>>,
    Path((k, raw)): Path<(String, String)>,
    Post { ui, .. }: Post,
) -> Response {
    let kind = kind!(k);
    let id = match parse_uuid(&raw) {
        Ok(i) => i,
        Err(e) => return failed(e),
    };
    let r = match kind {
        Kind::Services => app.delete_gateway_object::<Service>(&ui.caller, id).await,
        Kind::Routes => app.delete_gateway_object::<Route>(&ui.caller, id).await,
        Kind::Plugins => app.delete_gateway_object::<Plugin>(&ui.caller, id).await,
    };
    match r {
        Ok(()) => done(&format!("/ui/gateway/{}", kind.path()), "deleted"),
        Err(e) => failed(e),
    }
}
