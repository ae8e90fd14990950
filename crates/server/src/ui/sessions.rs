//! The sessions view: every kind of session in one table, over the same query use case as
//! `GET /v2/iam/sessions` (`$filter`, `$orderby`, `$top`, `$skiptoken`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use tessera_app::{App, AppError, SessionQueryText};
use tessera_domain::page::PageToken;

use super::{Page, Post, Ui, csrf_field, done, encode, failed, id, notice_banner, page, query_param};
use crate::convert::{SESSION_VIEW_FIELDS, iam_session_view};

pub fn pages() -> Vec<Page> {
    vec![
        Page { path: "/ui/sessions", handler: get(list) },
        Page { path: "/ui/sessions/counts", handler: get(counts) },
        Page { path: "/ui/sessions/{moid}", handler: get(detail) },
        Page { path: "/ui/sessions/{moid}/terminate", handler: post(terminate) },
        Page { path: "/ui/users/{user_id}/terminate-sessions", handler: post(terminate_user) },
    ]
}

/// Rows per page.
const TOP: u32 = 50;

/// The columns of the table: (field, header).
const COLUMNS: &[(&str, &str)] = &[
    ("kind", "Kind"),
    ("user_id_or_email", "User"),
    ("role", "Role"),
    ("status", "Status"),
    ("client_ip_address", "Client IP"),
    ("create_time", "Created"),
    ("expiration", "Expires"),
    ("end_reason", "End reason"),
];

const OPERATORS: &[&str] = &[
    "eq",
    "ne",
    "gt",
    "ge",
    "lt",
    "le",
    "and",
    "or",
    "not",
    "in",
    "contains(",
    "startswith(",
    "endswith(",
    "now() sub PT1H",
];

const KINDS: &[&str] = &["login", "assumed_role", "gateway"];
const STATUSES: &[&str] = &["Active", "Ended", "Terminated"];

/// The OData literal for a text value.
fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The `$filter` the quick filters (kind, status, user, last hour) stand for, joined with
/// what was typed.
fn compose(typed: &str, uri: &Uri) -> String {
    let q = uri.query();
    let mut parts = vec![];
    if !typed.trim().is_empty() {
        parts.push(if q.is_some_and(|_| has_quick(uri)) { format!("({})", typed.trim()) } else { typed.trim().into() });
    }
    if let Some(k) = query_param(q, "kind").filter(|k| !k.is_empty()) {
        parts.push(format!("kind eq {}", quoted(&k)));
    }
    if let Some(s) = query_param(q, "status").filter(|s| !s.is_empty()) {
        parts.push(format!("status eq {}", quoted(&s)));
    }
    if let Some(u) = query_param(q, "user").map(|u| u.trim().to_owned()).filter(|u| !u.is_empty()) {
        parts.push(format!("user_id_or_email eq {}", quoted(&u)));
    }
    if query_param(q, "recent").is_some_and(|r| r == "1") {
        parts.push("create_time gt now() sub PT1H".into());
    }
    parts.join(" and ")
}

fn has_quick(uri: &Uri) -> bool {
    let q = uri.query();
    ["kind", "status", "user"].iter().any(|k| query_param(q, k).is_some_and(|v| !v.trim().is_empty()))
        || query_param(q, "recent").is_some_and(|r| r == "1")
}

/// A `/ui/sessions` link with these options.
fn link(filter: &str, orderby: &str, skiptoken: Option<&str>) -> String {
    let mut s = format!("/ui/sessions?filter={}&orderby={}", encode(filter), encode(orderby));
    if let Some(t) = skiptoken {
        s.push_str("&skiptoken=");
        s.push_str(&encode(t));
    }
    s
}

/// An error of the query, and where in the text it points (a character offset).
struct QueryError {
    option: String,
    message: String,
    position: Option<usize>,
}

fn query_error(e: AppError) -> Result<QueryError, AppError> {
    match e {
        AppError::Invalid(f) => {
            let (position, message) = match f.message.strip_prefix("at ").and_then(|r| r.split_once(": ")) {
                Some((n, rest)) if n.parse::<usize>().is_ok() => (n.parse().ok(), rest.to_owned()),
                _ => (None, f.message.clone()),
            };
            Ok(QueryError { option: f.field, message, position })
        }
        other => Err(other),
    }
}

async fn list(State(app): State<Arc<App>>, ui: Ui, uri: Uri) -> Response {
    let q = uri.query();
    let filter = compose(&query_param(q, "filter").unwrap_or_default(), &uri);
    let orderby =
        query_param(q, "orderby").filter(|o| !o.trim().is_empty()).unwrap_or_else(|| "create_time desc".into());
    let skiptoken = query_param(q, "skiptoken").filter(|t| !t.is_empty());
    let query = SessionQueryText {
        filter: Some(filter.clone()),
        orderby: Some(orderby.clone()),
        top: Some(TOP),
        // Counting every match is a scan over a million rows: the table pages by keyset and
        // the live counts say how many there are.
        inline_count: false,
        after: skiptoken.clone().map(PageToken::new),
        ..Default::default()
    };
    let (rows, next, error) = match app.query_sessions(&ui.caller, query).await {
        Ok(r) => (r.sessions, r.next.map(PageToken::into_string), None),
        Err(e) => match query_error(e) {
            Ok(qe) => (vec![], None, Some(qe)),
            Err(other) => return failed(other),
        },
    };
    let filter_error = error.as_ref().filter(|e| e.option == "$filter");
    let other_error = error.as_ref().filter(|e| e.option != "$filter");
    let (sort_field, descending) = match orderby.trim().rsplit_once(' ') {
        Some((f, dir)) => (f.trim().to_owned(), dir.trim().eq_ignore_ascii_case("desc")),
        None => (orderby.trim().to_owned(), false),
    };
    let main = html! {
        h1 { "Sessions" }
        (notice_banner(&uri))
        // The counts are a scan each: they come in their own request (htmx loads them right
        // after the page and every 5 s), so the table answers at once at any size.
        section.counts id="counts" aria-label="Live counts by kind and status" aria-live="polite"
            hx-get="/ui/sessions/counts" hx-trigger="load, every 5s" hx-swap="outerHTML" {
            a href="/ui/sessions/counts" { "Counts by kind and status" }
        }
        form method="get" action="/ui/sessions" role="search" aria-label="Filter sessions" {
            div.field {
                label for="filter" { "$filter" }
                input id="filter" name="filter" type="text" class="mono" value=(filter) list="filter-terms"
                    size="80" spellcheck="false" autocomplete="off"
                    aria-invalid=[filter_error.map(|_| "true")]
                    aria-describedby="filter-help filter-error";
                datalist id="filter-terms" {
                    @for f in SESSION_VIEW_FIELDS { option value=(f) {} }
                    @for op in OPERATORS { option value=(op) {} }
                }
                p id="filter-help" class="muted" {
                    "OData: " code { "status eq 'Active' and kind in ('login','gateway')" } ", "
                    code { "contains(user_id_or_email,'@example.com')" } ", "
                    code { "create_time gt now() sub PT1H" } ". Fields: " (SESSION_VIEW_FIELDS.join(", ")) "."
                }
                div id="filter-error" aria-live="assertive" {
                    @if let Some(e) = filter_error {
                        @if let Some(p) = e.position {
                            pre.caret aria-hidden="true" { (filter) "\n" (" ".repeat(p)) "^" }
                        }
                        p.error role="alert" {
                            "$filter error"
                            @if let Some(p) = e.position { " at position " (p) }
                            ": " (e.message)
                        }
                    }
                }
            }
            input type="hidden" name="orderby" value=(orderby);
            button type="submit" { "Apply filter" }
            " "
            a href="/ui/sessions" { "Clear" }
        }
        form.quick method="get" action="/ui/sessions" aria-label="Quick filters" {
            input type="hidden" name="orderby" value=(orderby);
            div.field {
                label for="q-kind" { "Kind" }
                select id="q-kind" name="kind" {
                    option value="" { "any" }
                    @for k in KINDS { option value=(k) { (k) } }
                }
            }
            div.field {
                label for="q-status" { "Status" }
                select id="q-status" name="status" {
                    option value="" { "any" }
                    @for s in STATUSES { option value=(s) { (s) } }
                }
            }
            div.field {
                label for="q-user" { "User (email or id)" }
                input id="q-user" name="user" type="text";
            }
            div.field {
                label for="q-recent" { "Created in the last hour" }
                input id="q-recent" name="recent" type="checkbox" value="1";
            }
            div.field { button type="submit" { "Show" } }
        }
        @if let Some(e) = other_error {
            p.error role="alert" { (e.option) ": " (e.message) }
        }
        table aria-describedby="sessions-caption" {
            caption id="sessions-caption" class="muted" {
                "Sessions matching the filter, " (TOP) " per page, sorted by " (sort_field) (if descending { " (descending)" } else { "" })
            }
            thead {
                tr {
                    th scope="col" { "Id" }
                    @for (field, label) in COLUMNS {
                        @let here = sort_field == *field;
                        @let next_order = if here && !descending { format!("{field} desc") } else { format!("{field} asc") };
                        th scope="col" aria-sort=[here.then_some(if descending { "descending" } else { "ascending" })] {
                            a href=(link(&filter, &next_order, None)) { (label) @if here { (if descending { " ▼" } else { " ▲" }) } }
                        }
                    }
                    th scope="col" { "Action" }
                }
            }
            tbody {
                @for s in &rows {
                    @let v = iam_session_view(s);
                    tr {
                        td.mono { a href=(format!("/ui/sessions/{}", v.moid)) aria-label=(format!("Session {}", v.moid)) { (short(&v.moid)) } }
                        td { (v.kind) }
                        td { (v.user_id_or_email) }
                        td { (v.role) }
                        td { (v.status) }
                        td.mono { (v.client_ip_address) }
                        td.mono { (v.create_time) }
                        td.mono { (v.expiration) }
                        td { (v.end_reason.clone().unwrap_or_default()) }
                        td {
                            @if v.status == "Active" {
                                form.inline method="post" action=(format!("/ui/sessions/{}/terminate", v.moid)) {
                                    (csrf_field(&ui))
                                    button.danger type="submit" aria-label=(format!("Terminate session {}", v.moid)) { "Terminate" }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if rows.is_empty() && error.is_none() { p { "No session matches." } }
        nav.pager aria-label="Pages" {
            @if skiptoken.is_some() { a href=(link(&filter, &orderby, None)) { "First page" } }
            @if let Some(t) = &next { a href=(link(&filter, &orderby, Some(t))) rel="next" { "Next page" } }
        }
    };
    let mut res = page(&ui, "/ui/sessions", "Sessions", main);
    if error.is_some() {
        *res.status_mut() = axum::http::StatusCode::BAD_REQUEST;
    }
    res
}

/// The end of an id: ids are time-ordered, so their first characters are alike.
fn short(moid: &str) -> &str {
    moid.get(moid.len().saturating_sub(12)..).unwrap_or(moid)
}

/// Counts by kind and status: one `$count` query per pair.
/// Every kind × status with its count, from one `$apply` grouping (one scan, not nine).
async fn count_table(app: &App, ui: &Ui) -> Result<Vec<(&'static str, &'static str, u64)>, AppError> {
    let grouped = app.aggregate_sessions(&ui.caller, "groupby((kind,status),aggregate($count as n))").await?;
    let text = |c: &tessera_domain::filter::Cell| match c {
        tessera_domain::filter::Cell::Text(t) => t.clone(),
        _ => String::new(),
    };
    let mut out = vec![];
    for kind in KINDS {
        for status in STATUSES {
            let n = grouped
                .rows
                .iter()
                .find(|r| r.len() == 3 && text(&r[0]) == *kind && text(&r[1]) == *status)
                .map_or(0, |r| match r[2] {
                    tessera_domain::filter::Cell::Int(n) => n.max(0) as u64,
                    _ => 0,
                });
            out.push((*kind, *status, n));
        }
    }
    Ok(out)
}

async fn counts_widget(app: &App, ui: &Ui) -> Markup {
    let counts = count_table(app, ui).await;
    html! {
        section.counts id="counts" aria-label="Live counts by kind and status" aria-live="polite"
            hx-get="/ui/sessions/counts" hx-trigger="every 5s" hx-swap="outerHTML" {
            @match &counts {
                Ok(rows) => {
                    @for kind in KINDS {
                        span {
                            (kind) ": "
                            @for (k, status, n) in rows.iter().filter(|r| r.0 == *kind) {
                                @let _ = k;
                                (status) " " b data-kind=(kind) data-status=(status) { (n) } " "
                            }
                        }
                    }
                }
                Err(e) => { span.error { "Counts unavailable: " (e) } }
            }
        }
    }
}

/// The counts: the fragment htmx swaps in, or a page of its own when followed as a link.
async fn counts(State(app): State<Arc<App>>, ui: Ui, headers: axum::http::HeaderMap) -> Response {
    let widget = counts_widget(&app, &ui).await;
    if headers.contains_key("hx-request") {
        return widget.into_response();
    }
    page(
        &ui,
        "/ui/sessions",
        "Session counts",
        html! { h1 { "Sessions by kind and status" } (widget) p { a href="/ui/sessions" { "All sessions" } } },
    )
}

async fn detail(State(app): State<Arc<App>>, ui: Ui, Path(moid): Path<String>, uri: Uri) -> Response {
    let sid = match id("moid", &moid) {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let s = match app.get_session(&ui.caller, sid).await {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let v = iam_session_view(&s);
    let fields = match serde_json::to_value(&v) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    let main = html! {
        p { a href="/ui/sessions" { "← All sessions" } }
        h1 { "Session " span.mono { (v.moid) } }
        (notice_banner(&uri))
        dl.fields {
            @for (k, val) in &fields {
                dt { (k) }
                dd { (match val { serde_json::Value::String(s) => s.clone(), serde_json::Value::Null => "—".into(), other => other.to_string() }) }
            }
        }
        div.row {
            @if v.status == "Active" {
                form method="post" action=(format!("/ui/sessions/{}/terminate", v.moid)) {
                    (csrf_field(&ui))
                    button.danger type="submit" { "Terminate this session" }
                }
            }
            @if !v.user_id.is_empty() {
                form method="post" action=(format!("/ui/users/{}/terminate-sessions", v.user_id)) {
                    (csrf_field(&ui))
                    input type="hidden" name="back" value=(format!("/ui/sessions/{}", v.moid));
                    button.danger type="submit" { "Terminate all of " (v.user_id_or_email) "'s sessions" }
                }
                a href=(format!("/ui/users/{}", v.user_id)) { "User " (v.user_id_or_email) }
            }
        }
    };
    page(&ui, "/ui/sessions", "Session", main)
}

async fn terminate(State(app): State<Arc<App>>, Path(moid): Path<String>, Post { ui, .. }: Post) -> Response {
    let sid = match id("moid", &moid) {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    match app.terminate_session(&ui.caller, sid).await {
        Ok(_) => done(&format!("/ui/sessions/{moid}"), "terminated"),
        Err(e) => failed(e),
    }
}

async fn terminate_user(State(app): State<Arc<App>>, Path(user): Path<String>, Post { ui, form }: Post) -> Response {
    let uid = match id("user_id", &user) {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    match app.terminate_user_sessions(&ui.caller, uid).await {
        Ok(_) => {
            let back = super::safe_next(form.get("back"));
            let back = if back == "/ui/sessions" { format!("/ui/users/{user}") } else { back.to_owned() };
            done(&back, "terminated_user")
        }
        Err(e) => failed(e),
    }
}
