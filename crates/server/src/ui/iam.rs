//! IAM pages: users (status, password, API keys, login lock, role sessions), groups and
//! members, policies, roles, trusts and OIDC issuers. Each change calls the same use case and
//! the same edge conversion (`convert`) as the `/v2` handler for it, so a value the API
//! refuses is refused here with the same message, shown next to its field.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};
use serde_json::Value;
use tessera_api_types as wire;
use tessera_app::{App, AssumeInput, NewApiKey};
use tessera_domain::ids::*;
use tessera_domain::page::{PageRequest, PageToken};
use tessera_domain::policy::PolicyTarget;
use tessera_domain::user;

use super::{Page, Post, Ui, csrf_field, done, encode, failed, field_error, id, notice_banner, page, query_param};
use crate::convert::*;
use crate::error::ApiError;
use crate::extract::ClientIp;

pub fn pages() -> Vec<Page> {
    vec![
        Page { path: "/ui/users", handler: get(users).post(create_user) },
        Page { path: "/ui/users/{user_id}", handler: get(user_detail) },
        Page { path: "/ui/users/{user_id}/status", handler: post(set_status) },
        Page { path: "/ui/users/{user_id}/password", handler: post(set_password) },
        Page { path: "/ui/users/{user_id}/unlock", handler: post(unlock) },
        Page { path: "/ui/users/{user_id}/keys", handler: post(create_key) },
        Page { path: "/ui/users/{user_id}/keys/{key_id}/delete", handler: post(delete_key) },
        Page { path: "/ui/users/{user_id}/assume", handler: post(assume) },
        Page { path: "/ui/role-sessions/{session_id}/revoke", handler: post(revoke_role_session) },
        Page { path: "/ui/groups", handler: get(groups).post(create_group) },
        Page { path: "/ui/groups/{group_id}", handler: get(group_detail) },
        Page { path: "/ui/groups/{group_id}/members", handler: post(add_member) },
        Page { path: "/ui/groups/{group_id}/members/{user_id}/remove", handler: post(remove_member) },
        Page { path: "/ui/policies", handler: get(policies).post(create_policy) },
        Page { path: "/ui/policies/{policy_id}", handler: get(policy_detail).post(update_policy) },
        Page { path: "/ui/policies/{policy_id}/delete", handler: post(delete_policy) },
        Page { path: "/ui/roles", handler: get(roles).post(create_role) },
        Page { path: "/ui/roles/{role_id}", handler: get(role_detail).post(update_role) },
        Page { path: "/ui/roles/{role_id}/policies", handler: post(attach_role_policy) },
        Page { path: "/ui/roles/{role_id}/policies/{policy_id}/detach", handler: post(detach_role_policy) },
        Page { path: "/ui/trusts", handler: get(trusts).post(create_trust) },
        Page { path: "/ui/trusts/{trust_id}/delete", handler: post(delete_trust) },
        Page { path: "/ui/oidc", handler: get(issuers).post(create_issuer) },
        Page { path: "/ui/oidc/{issuer_id}/delete", handler: post(delete_issuer) },
    ]
}

/// Rows per list page.
const PER_PAGE: u32 = 100;

fn paging(uri: &Uri) -> PageRequest {
    PageRequest {
        per_page: PER_PAGE,
        cursor: query_param(uri.query(), "cursor").filter(|c| !c.is_empty()).map(PageToken::new),
    }
}

fn pager(base: &str, next: Option<PageToken>) -> Markup {
    html! {
        nav.pager aria-label="Pages" {
            @if let Some(t) = next { a rel="next" href=(format!("{base}?cursor={}", encode(&t.into_string()))) { "Next page" } }
        }
    }
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return failed(e),
        }
    };
}

macro_rules! path_id {
    ($name:literal, $raw:expr) => {
        match id($name, &$raw) {
            Ok(v) => v,
            Err(e) => return failed(e),
        }
    };
}

/// A form's error: which field, and the message.
struct Bad {
    field: String,
    message: String,
}

impl From<ApiError> for Bad {
    fn from(e: ApiError) -> Self {
        Bad { field: e.field.clone().unwrap_or_default(), message: e.message }
    }
}

impl Bad {
    fn on(&self, field: &str) -> Option<&str> {
        (self.field == field || self.field.starts_with(&format!("{field}."))).then_some(self.message.as_str())
    }
}

/// An input with its label and, when the last attempt failed on it, the error beside it.
fn input(id: &str, name: &str, label: &str, kind: &str, value: &str, bad: Option<&Bad>, field: &str) -> Markup {
    let err = bad.and_then(|b| b.on(field));
    html! {
        div.field {
            label for=(id) { (label) }
            input id=(id) name=(name) type=(kind) value=(value)
                aria-invalid=[err.map(|_| "true")] aria-describedby=[err.map(|_| format!("{id}-error"))];
            (field_error(id, err))
        }
    }
}

/// A form's other errors (those that name no field shown).
fn general_error(bad: Option<&Bad>, shown: &[&str]) -> Markup {
    html! {
        @if let Some(b) = bad.filter(|b| !shown.iter().any(|f| b.on(f).is_some())) {
            p.error role="alert" { (b.message) }
        }
    }
}

fn with_status(mut res: Response, status: StatusCode) -> Response {
    *res.status_mut() = status;
    res
}

// ---- users -----------------------------------------------------------------------------------

async fn users(State(app): State<Arc<App>>, ui: Ui, uri: Uri) -> Response {
    users_page(&app, &ui, &uri, None, None).await
}

async fn users_page(app: &App, ui: &Ui, uri: &Uri, form: Option<&super::Form>, bad: Option<Bad>) -> Response {
    let list = tri!(app.list_users(&ui.caller, paging(uri)).await);
    let v = |n: &str| form.map_or(String::new(), |f| f.get(n).to_owned());
    let b = bad.as_ref();
    let main = html! {
        h1 { "Users" }
        (notice_banner(uri))
        table {
            caption.muted { (list.total) " users" }
            thead { tr { th scope="col" { "Email" } th scope="col" { "Name" } th scope="col" { "Status" } th scope="col" { "Created" } } }
            tbody {
                @for u in &list.items {
                    @let v = user_view(u);
                    tr {
                        td { a href=(format!("/ui/users/{}", v.id)) { (v.email) } }
                        td { (v.name) }
                        td { (v.status) }
                        td.mono { (v.date_created) }
                    }
                }
            }
        }
        (pager("/ui/users", list.next))
        h2 id="new-user" { "New user" }
        form method="post" action="/ui/users" aria-labelledby="new-user" {
            (csrf_field(ui))
            (general_error(b, &["email", "first_name", "last_name", "password"]))
            (input("u-email", "email", "Email", "email", &v("email"), b, "email"))
            (input("u-first", "first_name", "First name", "text", &v("first_name"), b, "first_name"))
            (input("u-last", "last_name", "Last name", "text", &v("last_name"), b, "last_name"))
            (input("u-password", "password", "Password (optional; without one the user signs in with keys only)", "password", "", b, "password"))
            button type="submit" { "Create user" }
        }
    };
    let res = page(ui, "/ui/users", "Users", main);
    if bad.is_some() { with_status(res, StatusCode::BAD_REQUEST) } else { res }
}

async fn create_user(State(app): State<Arc<App>>, uri: Uri, Post { ui, form }: Post) -> Response {
    let password = Some(form.get("password").to_owned()).filter(|p| !p.is_empty());
    let input = wire::UserCreate {
        email: form.trimmed("email").to_owned(),
        first_name: form.trimmed("first_name").to_owned(),
        last_name: form.trimmed("last_name").to_owned(),
        password,
    };
    let result = match new_user(input) {
        Ok(n) => app.create_user(&ui.caller, n).await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match result {
        Ok(u) => done(&format!("/ui/users/{}", u.id), "created"),
        Err(e) if e.status == StatusCode::BAD_REQUEST || e.status == StatusCode::CONFLICT => {
            let mut bad = Bad::from(e);
            if bad.field.is_empty() {
                bad.field = "email".into();
            }
            users_page(&app, &ui, &uri, Some(&form), Some(bad)).await
        }
        Err(e) => failed(e),
    }
}

/// The one-time secret shown after it was created: a new API key or role session token.
struct Secret {
    label: &'static str,
    value: String,
}

async fn user_detail(State(app): State<Arc<App>>, ui: Ui, Path(raw): Path<String>, uri: Uri) -> Response {
    let uid: UserId = path_id!("user_id", raw);
    user_page(&app, &ui, uid, &uri, None, None).await
}

async fn user_page(app: &App, ui: &Ui, uid: UserId, uri: &Uri, secret: Option<Secret>, bad: Option<Bad>) -> Response {
    let u = user_view(&tri!(app.get_user(&ui.caller, uid).await));
    let keys = tri!(app.list_api_keys(&ui.caller, uid, PageRequest { per_page: 500, cursor: None }).await);
    let lock = app.get_login_lock(&ui.caller, uid).await.ok().map(|l| login_lock_view(&l));
    let role_sessions = app.list_user_sessions(&ui.caller, uid, PageRequest { per_page: 100, cursor: None }).await;
    let roles = app.list_roles(&ui.caller, PageRequest { per_page: 500, cursor: None }).await;
    let now = app.now();
    let b = bad.as_ref();
    let base = format!("/ui/users/{}", u.id);
    let main = html! {
        p { a href="/ui/users" { "← All users" } }
        h1 { "User " (u.email) }
        (notice_banner(uri))
        @if let Some(s) = &secret {
            section.secret aria-labelledby="secret-title" {
                h2 id="secret-title" { "New " (s.label) }
                p { "Copy it now: it is shown only this once and cannot be shown again." }
                p { code id="new-secret" { (s.value) } }
            }
        }
        dl.fields {
            dt { "Id" } dd { (u.id) }
            dt { "Email" } dd { (u.email) }
            dt { "Name" } dd { (u.name) }
            dt { "Status" } dd id="user-status" { (u.status) }
            dt { "Created" } dd { (u.date_created) }
        }
        div.row {
            form method="post" action=(format!("{base}/status")) {
                (csrf_field(ui))
                @if u.status == "active" {
                    input type="hidden" name="status" value="disabled";
                    button.danger type="submit" { "Disable user" }
                } @else {
                    input type="hidden" name="status" value="active";
                    button type="submit" { "Enable user" }
                }
            }
            form method="post" action=(format!("{base}/terminate-sessions")) {
                (csrf_field(ui))
                button.danger type="submit" { "Terminate all sessions" }
            }
            a href=(format!("/ui/sessions?user={}", encode(&u.email))) { "Sessions of this user" }
            a.danger href=(format!("{base}/delete")) { "Delete user…" }
        }
        h2 { "Login lock" }
        @match &lock {
            Some(l) => {
                p id="lock-state" {
                    @if l.locked { strong { "Locked" } @if let Some(t) = &l.locked_until { " until " (t) } } @else { "Not locked" }
                    ". Failed sign-ins: " (l.failed_logins) "; times locked: " (l.lock_count) "."
                }
                @if l.locked || l.failed_logins > 0 {
                    form method="post" action=(format!("{base}/unlock")) {
                        (csrf_field(ui))
                        button type="submit" { "Clear the login lock" }
                    }
                }
            }
            None => p.muted { "Not available to you." }
        }
        h2 id="pw-title" { "Reset password" }
        form method="post" action=(format!("{base}/password")) aria-labelledby="pw-title" {
            (csrf_field(ui))
            (input("new-password", "password", "New password", "password", "", b, "password"))
            button type="submit" { "Set password" }
        }
        h2 { "API keys" }
        table {
            thead { tr { th scope="col" { "Name" } th scope="col" { "Id" } th scope="col" { "Created" } th scope="col" { "Expires" } th scope="col" { "Action" } } }
            tbody {
                @for k in &keys.items {
                    @let k = api_key_view(k, None);
                    tr {
                        td { (k.name) } td.mono { (k.id) } td.mono { (k.date_created) } td.mono { (k.date_expire.unwrap_or_default()) }
                        td {
                            form.inline method="post" action=(format!("{base}/keys/{}/delete", k.id)) {
                                (csrf_field(ui))
                                button.danger type="submit" aria-label=(format!("Delete key {}", k.name)) { "Delete" }
                            }
                        }
                    }
                }
            }
        }
        form method="post" action=(format!("{base}/keys")) aria-label="New API key" {
            (csrf_field(ui))
            div.row {
                (input("key-name", "name", "Key name", "text", "", b, "name"))
                (input("key-expire", "date_expire", "Expires (RFC 3339, optional)", "text", "", b, "date_expire"))
                div.field { button type="submit" { "Create API key" } }
            }
        }
        h2 { "Role sessions" }
        @match &role_sessions {
            Ok(list) => {
                table {
                    thead { tr { th scope="col" { "Id" } th scope="col" { "Role" } th scope="col" { "Name" } th scope="col" { "Status" } th scope="col" { "Expires" } th scope="col" { "Action" } } }
                    tbody {
                        @for s in &list.items {
                            @let v = assumed_view(s, None, now);
                            tr {
                                td.mono { a href=(format!("/ui/sessions/{}", v.id)) { (v.id) } }
                                td { (s.role_name) } td { (s.session_name) } td { (s.status.as_str()) } td.mono { (iam_session_view(s).expiration) }
                                td {
                                    @if s.status.as_str() == "Active" {
                                        form.inline method="post" action=(format!("/ui/role-sessions/{}/revoke", v.id)) {
                                            (csrf_field(ui))
                                            input type="hidden" name="user_id" value=(u.id);
                                            button.danger type="submit" { "Revoke" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            Err(e) => p.muted { (e) }
        }
        h2 id="assume-title" { "Assume a role for this user" }
        form method="post" action=(format!("{base}/assume")) aria-labelledby="assume-title" {
            (csrf_field(ui))
            div.row {
                div.field {
                    label for="assume-role" { "Role" }
                    select id="assume-role" name="role_id" {
                        @if let Ok(r) = &roles { @for r in &r.items { option value=(r.id) { (r.name) } } }
                    }
                }
                (input("assume-name", "session_name", "Session name", "text", "console", b, "session_name"))
                (input("assume-duration", "duration", "Duration (seconds, optional)", "number", "", b, "duration"))
                div.field { button type="submit" { "Assume role" } }
            }
            (general_error(b, &["password", "name", "date_expire", "session_name", "duration"]))
        }
    };
    let mut res = page(ui, "/ui/users", "User", main);
    if secret.is_some() {
        res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if bad.is_some() { with_status(res, StatusCode::BAD_REQUEST) } else { res }
}

async fn set_status(State(app): State<Arc<App>>, Path(raw): Path<String>, Post { ui, form }: Post) -> Response {
    let uid: UserId = path_id!("user_id", raw);
    let status = form.get("status").to_owned();
    let patch = tri!(user_patch(wire::UserUpdate { status: Some(status.clone()), ..Default::default() }));
    tri!(app.update_user(&ui.caller, uid, patch).await);
    done(&format!("/ui/users/{uid}"), if status == "active" { "enabled" } else { "disabled" })
}

async fn set_password(
    State(app): State<Arc<App>>,
    uri: Uri,
    Path(raw): Path<String>,
    Post { ui, form }: Post,
) -> Response {
    let uid: UserId = path_id!("user_id", raw);
    // The same use case as `PATCH /v2/users/{id}` with a password.
    let patch =
        tri!(user_patch(wire::UserUpdate { password: Some(form.get("password").to_owned()), ..Default::default() }));
    match app.update_user(&ui.caller, uid, patch).await.map_err(ApiError::from) {
        Ok(_) => done(&format!("/ui/users/{uid}"), "password"),
        Err(e) if e.status == StatusCode::BAD_REQUEST => {
            let mut bad = Bad::from(e);
            bad.field = "password".into();
            user_page(&app, &ui, uid, &uri, None, Some(bad)).await
        }
        Err(e) => failed(e),
    }
}

async fn unlock(State(app): State<Arc<App>>, Path(raw): Path<String>, Post { ui, .. }: Post) -> Response {
    let uid: UserId = path_id!("user_id", raw);
    tri!(app.clear_login_lock(&ui.caller, uid).await);
    done(&format!("/ui/users/{uid}"), "unlocked")
}

async fn create_key(
    State(app): State<Arc<App>>,
    uri: Uri,
    Path(raw): Path<String>,
    Post { ui, form }: Post,
) -> Response {
    let uid: UserId = path_id!("user_id", raw);
    let input = (|| {
        Ok::<_, ApiError>(NewApiKey {
            name: user::name("name", form.trimmed("name"), 100)?,
            date_expire: Some(form.trimmed("date_expire"))
                .filter(|s| !s.is_empty())
                .map(|s| parse_time("date_expire", s))
                .transpose()?,
        })
    })();
    let created = match input {
        Ok(i) => app.create_api_key(&ui.caller, uid, i).await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match created {
        // Shown on this answer only (no-store); the page a reload or a link reaches has no secret.
        Ok(c) => user_page(&app, &ui, uid, &uri, Some(Secret { label: "API key", value: c.secret }), None).await,
        Err(e) if e.status == StatusCode::BAD_REQUEST => user_page(&app, &ui, uid, &uri, None, Some(e.into())).await,
        Err(e) => failed(e),
    }
}

async fn delete_key(
    State(app): State<Arc<App>>,
    Path((raw, key)): Path<(String, String)>,
    Post { ui, .. }: Post,
) -> Response {
    let uid: UserId = path_id!("user_id", raw);
    let kid: ApiKeyId = path_id!("apikey_id", key);
    tri!(app.delete_api_key(&ui.caller, uid, kid).await);
    done(&format!("/ui/users/{uid}"), "deleted")
}

async fn assume(
    State(app): State<Arc<App>>,
    uri: Uri,
    Path(raw): Path<String>,
    // The browser's address, as `POST /v2/assumed-roles/assume` takes it: a trust's
    // `ip_address` condition is checked against it, and the session records it.
    ClientIp(client): ClientIp,
    Post { ui, form }: Post,
) -> Response {
    let uid: UserId = path_id!("user_id", raw);
    let input = (|| {
        Ok::<_, ApiError>(AssumeInput {
            user_id: uid,
            role_id: crate::extract::body_id("role_id", form.trimmed("role_id"))?,
            session_name: user::name("session_name", form.trimmed("session_name"), 100)?,
            auth_method: "api_key".into(),
            duration: match form.trimmed("duration") {
                "" => None,
                d => Some(d.parse().map_err(|_| ApiError::invalid("duration", "duration: a number of seconds"))?),
            },
            ip_address: None,
            source_ip: client,
            policy: None,
        })
    })();
    let assumed = match input {
        Ok(i) => app.assume_role(&ui.caller, i).await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match assumed {
        Ok(a) => {
            user_page(&app, &ui, uid, &uri, Some(Secret { label: "role session token", value: a.token }), None).await
        }
        Err(e) if e.status == StatusCode::BAD_REQUEST || e.status == StatusCode::FORBIDDEN => {
            user_page(&app, &ui, uid, &uri, None, Some(e.into())).await
        }
        Err(e) => failed(e),
    }
}

async fn revoke_role_session(
    State(app): State<Arc<App>>,
    Path(raw): Path<String>,
    Post { ui, form }: Post,
) -> Response {
    let sid: SessionId = path_id!("session_id", raw);
    tri!(app.revoke_assumed_session(&ui.caller, sid).await);
    let to = match form.trimmed("user_id").parse::<UserId>() {
        Ok(u) => format!("/ui/users/{u}"),
        Err(_) => format!("/ui/sessions/{sid}"),
    };
    done(&to, "revoked")
}

// ---- groups ----------------------------------------------------------------------------------

async fn groups(State(app): State<Arc<App>>, ui: Ui, uri: Uri) -> Response {
    groups_page(&app, &ui, &uri, None).await
}

async fn groups_page(app: &App, ui: &Ui, uri: &Uri, bad: Option<Bad>) -> Response {
    let list = tri!(app.list_groups(&ui.caller, paging(uri)).await);
    let b = bad.as_ref();
    let main = html! {
        h1 { "Groups" }
        (notice_banner(uri))
        table {
            thead { tr { th scope="col" { "Name" } th scope="col" { "Description" } th scope="col" { "Created" } } }
            tbody {
                @for g in &list.items {
                    tr { td { a href=(format!("/ui/groups/{}", g.id)) { (g.display_name) } } td { (g.description) } td.mono { (group_view(g).date_created) } }
                }
            }
        }
        (pager("/ui/groups", list.next))
        h2 id="new-group" { "New group" }
        form method="post" action="/ui/groups" aria-labelledby="new-group" {
            (csrf_field(ui))
            (general_error(b, &["display_name", "description"]))
            (input("g-name", "display_name", "Name", "text", "", b, "display_name"))
            (input("g-desc", "description", "Description", "text", "", b, "description"))
            button type="submit" { "Create group" }
        }
    };
    let res = page(ui, "/ui/groups", "Groups", main);
    if bad.is_some() { with_status(res, StatusCode::BAD_REQUEST) } else { res }
}

async fn create_group(State(app): State<Arc<App>>, uri: Uri, Post { ui, form }: Post) -> Response {
    let input = wire::GroupInput {
        display_name: form.trimmed("display_name").to_owned(),
        description: form.trimmed("description").to_owned(),
    };
    let r = match group_input(input) {
        Ok(i) => app.create_group(&ui.caller, i).await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match r {
        Ok(g) => done(&format!("/ui/groups/{}", g.id), "created"),
        Err(e) if e.status.is_client_error() && e.status != StatusCode::FORBIDDEN => {
            groups_page(&app, &ui, &uri, Some(e.into())).await
        }
        Err(e) => failed(e),
    }
}

async fn group_detail(State(app): State<Arc<App>>, ui: Ui, Path(raw): Path<String>, uri: Uri) -> Response {
    let gid: GroupId = path_id!("group_id", raw);
    let g = group_view(&tri!(app.get_group(&ui.caller, gid).await));
    let members = tri!(app.list_group_members(&ui.caller, gid, PageRequest { per_page: 500, cursor: None }).await);
    let users = app.list_users(&ui.caller, PageRequest { per_page: 500, cursor: None }).await;
    let main = html! {
        p { a href="/ui/groups" { "← All groups" } }
        h1 { "Group " (g.display_name) }
        (notice_banner(&uri))
        p { (g.description) }
        p { a.danger href=(format!("/ui/groups/{}/delete", g.id)) { "Delete group…" } }
        h2 { "Members" }
        table {
            thead { tr { th scope="col" { "Email" } th scope="col" { "Action" } } }
            tbody {
                @for m in &members.items {
                    tr {
                        td { a href=(format!("/ui/users/{}", m.id)) { (m.email.as_str()) } }
                        td {
                            form.inline method="post" action=(format!("/ui/groups/{}/members/{}/remove", g.id, m.id)) {
                                (csrf_field(&ui))
                                button.danger type="submit" aria-label=(format!("Remove {}", m.email.as_str())) { "Remove" }
                            }
                        }
                    }
                }
            }
        }
        form method="post" action=(format!("/ui/groups/{}/members", g.id)) aria-label="Add a member" {
            (csrf_field(&ui))
            div.row {
                div.field {
                    label for="member" { "User" }
                    select id="member" name="user_id" {
                        @if let Ok(us) = &users { @for u in &us.items { option value=(u.id) { (u.email.as_str()) } } }
                    }
                }
                div.field { button type="submit" { "Add member" } }
            }
        }
    };
    page(&ui, "/ui/groups", "Group", main)
}

async fn add_member(State(app): State<Arc<App>>, Path(raw): Path<String>, Post { ui, form }: Post) -> Response {
    let gid: GroupId = path_id!("group_id", raw);
    let uid = tri!(crate::extract::body_id::<UserId>("user_id", form.trimmed("user_id")));
    tri!(app.add_group_member(&ui.caller, gid, uid).await);
    done(&format!("/ui/groups/{gid}"), "saved")
}

async fn remove_member(
    State(app): State<Arc<App>>,
    Path((g, u)): Path<(String, String)>,
    Post { ui, .. }: Post,
) -> Response {
    let gid: GroupId = path_id!("group_id", g);
    let uid: UserId = path_id!("user_id", u);
    tri!(app.remove_group_member(&ui.caller, gid, uid).await);
    done(&format!("/ui/groups/{gid}"), "deleted")
}

// ---- policies --------------------------------------------------------------------------------

const POLICY_TEMPLATE: &str = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\n      \"Effect\": \"Allow\",\n      \"Action\": [\"iam.user.Read\"],\n      \"Resource\": \"*\"\n    }\n  ]\n}";

/// The line (1-based) of `text` an error refers to: serde's "line N" for a syntax error, else
/// the line of the last key the error's JSON path names (`policy_document.Statement[0].Action`).
pub fn error_line(text: &str, field: &str, message: &str) -> Option<usize> {
    if let Some(i) = message.find(" line ") {
        let n: String = message[i + 6..].chars().take_while(char::is_ascii_digit).collect();
        if let Ok(n) = n.parse() {
            return Some(n);
        }
    }
    let lines: Vec<&str> = text.lines().collect();
    let mut at = 0usize;
    let mut found = None;
    for seg in field.split('.').skip(1) {
        let key = seg.split('[').next().unwrap_or(seg);
        if key.is_empty() {
            continue;
        }
        let mut idx = seg.split('[').nth(1).and_then(|s| s.trim_end_matches(']').parse::<usize>().ok());
        let quoted = format!("\"{key}\"");
        let pos = lines.iter().enumerate().skip(at).find(|(_, l)| l.contains(&quoted)).map(|(i, _)| i)?;
        at = pos;
        found = Some(pos + 1);
        // An index into a list of objects: the n-th '{' after the key; into a list of values
        // on their own lines: the n-th line after the key.
        if let Some(n) = idx.take() {
            let objects: Vec<usize> = lines
                .iter()
                .enumerate()
                .skip(pos + 1)
                .filter(|(_, l)| l.trim_start().starts_with('{'))
                .map(|(i, _)| i)
                .collect();
            if let Some(&line) = objects.get(n) {
                at = line;
                found = Some(line + 1);
            } else if lines.get(pos).is_some_and(|l| l.trim_end().ends_with('[')) && pos + 1 + n < lines.len() {
                at = pos + 1 + n;
                found = Some(at + 1);
            }
        }
    }
    found
}

/// A JSON document editor: a textarea, and the lines of the text with the failing one marked.
fn doc_editor(id: &str, name: &str, label: &str, text: &str, bad: Option<&Bad>, field: &str) -> Markup {
    let err = bad.and_then(|b| b.on(field).or_else(|| b.on(name)));
    let line = err.and_then(|m| error_line(text, bad.map_or("", |b| b.field.as_str()), m));
    html! {
        div.field {
            label for=(id) { (label) }
            textarea id=(id) name=(name) spellcheck="false" rows="16"
                aria-invalid=[err.map(|_| "true")] aria-describedby=[err.map(|_| format!("{id}-error"))] { (text) }
            @if let Some(e) = err {
                p id=(format!("{id}-error")) class="error" role="alert" {
                    @if let Some(l) = line { "Line " (l) ": " }
                    (e)
                }
                @if let Some(l) = line {
                    ol.lines aria-label="The document, with the line the error refers to marked" {
                        @for (i, t) in text.lines().enumerate() {
                            li class=[(i + 1 == l).then_some("line-error")] aria-current=[(i + 1 == l).then_some("true")] { (t) " " }
                        }
                    }
                }
            }
        }
    }
}

fn policy_form(
    ui: &Ui,
    action: &str,
    name: &str,
    description: &str,
    doc: &str,
    bad: Option<&Bad>,
    submit: &str,
) -> Markup {
    html! {
        form method="post" action=(action) aria-label=(submit) {
            (csrf_field(ui))
            (general_error(bad, &["name", "description", "policy_document"]))
            (input("p-name", "name", "Name", "text", name, bad, "name"))
            (input("p-desc", "description", "Description", "text", description, bad, "description"))
            (doc_editor("p-doc", "policy_document", "Policy document (JSON)", doc, bad, "policy_document"))
            button type="submit" { (submit) }
        }
    }
}

/// The body the API would take, from the form: the document must be JSON.
fn policy_from_form(form: &super::Form) -> Result<tessera_app::PolicyInput, ApiError> {
    let doc: Value = serde_json::from_str(form.get("policy_document"))
        .map_err(|e| ApiError::invalid("policy_document", format!("policy_document is not JSON: {e}")))?;
    policy_input(wire::PolicyInput {
        name: form.trimmed("name").to_owned(),
        description: form.trimmed("description").to_owned(),
        policy_document: doc,
    })
}

async fn policies(State(app): State<Arc<App>>, ui: Ui, uri: Uri) -> Response {
    policies_page(&app, &ui, &uri, None, None).await
}

async fn policies_page(app: &App, ui: &Ui, uri: &Uri, form: Option<&super::Form>, bad: Option<Bad>) -> Response {
    let list = tri!(app.list_policies(&ui.caller, paging(uri)).await);
    let f = |n: &str, d: &str| form.map_or(d.to_owned(), |f| f.get(n).to_owned());
    let main = html! {
        h1 { "Policies" }
        (notice_banner(uri))
        table {
            thead { tr { th scope="col" { "Name" } th scope="col" { "Description" } th scope="col" { "Created" } } }
            tbody {
                @for p in &list.items {
                    @let v = policy_view(p);
                    tr { td { a href=(format!("/ui/policies/{}", v.id)) { (v.name) } } td { (v.description) } td.mono { (v.date_created) } }
                }
            }
        }
        (pager("/ui/policies", list.next))
        h2 { "New policy" }
        (policy_form(ui, "/ui/policies", &f("name", ""), &f("description", ""), &f("policy_document", POLICY_TEMPLATE), bad.as_ref(), "Create policy"))
    };
    let res = page(ui, "/ui/policies", "Policies", main);
    if bad.is_some() { with_status(res, StatusCode::BAD_REQUEST) } else { res }
}

async fn create_policy(State(app): State<Arc<App>>, uri: Uri, Post { ui, form }: Post) -> Response {
    let r = match policy_from_form(&form) {
        Ok(i) => app.create_policy(&ui.caller, i).await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match r {
        Ok(p) => done(&format!("/ui/policies/{}", p.id), "created"),
        Err(e) if e.status == StatusCode::BAD_REQUEST || e.status == StatusCode::CONFLICT => {
            policies_page(&app, &ui, &uri, Some(&form), Some(e.into())).await
        }
        Err(e) => failed(e),
    }
}

async fn policy_detail(State(app): State<Arc<App>>, ui: Ui, Path(raw): Path<String>, uri: Uri) -> Response {
    let pid: PolicyId = path_id!("policy_id", raw);
    policy_page(&app, &ui, pid, &uri, None, None).await
}

async fn policy_page(
    app: &App,
    ui: &Ui,
    pid: PolicyId,
    uri: &Uri,
    form: Option<&super::Form>,
    bad: Option<Bad>,
) -> Response {
    let p = policy_view(&tri!(app.get_policy(&ui.caller, pid).await));
    let doc = serde_json::to_string_pretty(&p.policy_document).unwrap_or_default();
    let f = |n: &str, d: &str| form.map_or(d.to_owned(), |f| f.get(n).to_owned());
    let action = format!("/ui/policies/{}", p.id);
    let main = html! {
        p { a href="/ui/policies" { "← All policies" } }
        h1 { "Policy " (p.name) }
        (notice_banner(uri))
        p.muted { "Id " span.mono { (p.id) } ", created " (p.date_created) }
        (policy_form(ui, &action, &f("name", &p.name), &f("description", &p.description), &f("policy_document", &doc), bad.as_ref(), "Save policy"))
        form method="post" action=(format!("{action}/delete")) {
            (csrf_field(ui))
            button.danger type="submit" { "Delete policy" }
        }
    };
    let res = page(ui, "/ui/policies", "Policy", main);
    if bad.is_some() { with_status(res, StatusCode::BAD_REQUEST) } else { res }
}

async fn update_policy(
    State(app): State<Arc<App>>,
    uri: Uri,
    Path(raw): Path<String>,
    Post { ui, form }: Post,
) -> Response {
    let pid: PolicyId = path_id!("policy_id", raw);
    let r = match policy_from_form(&form) {
        Ok(i) => app.update_policy(&ui.caller, pid, i).await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match r {
        Ok(_) => done(&format!("/ui/policies/{pid}"), "saved"),
        Err(e) if e.status == StatusCode::BAD_REQUEST || e.status == StatusCode::CONFLICT => {
            policy_page(&app, &ui, pid, &uri, Some(&form), Some(e.into())).await
        }
        Err(e) => failed(e),
    }
}

async fn delete_policy(State(app): State<Arc<App>>, Path(raw): Path<String>, Post { ui, .. }: Post) -> Response {
    let pid: PolicyId = path_id!("policy_id", raw);
    tri!(app.delete_policy(&ui.caller, pid).await);
    done("/ui/policies", "deleted")
}

// ---- roles -----------------------------------------------------------------------------------

fn role_form(ui: &Ui, action: &str, r: &wire::RoleInput, bad: Option<&Bad>, submit: &str) -> Markup {
    let dur = r.max_session_duration.map(|d| d.to_string()).unwrap_or_default();
    html! {
        form method="post" action=(action) aria-label=(submit) {
            (csrf_field(ui))
            (general_error(bad, &["name", "description", "role_type", "max_session_duration"]))
            (input("r-name", "name", "Name", "text", &r.name, bad, "name"))
            (input("r-desc", "description", "Description", "text", &r.description, bad, "description"))
            div.field {
                label for="r-type" { "Role type" }
                select id="r-type" name="role_type" {
                    @for t in ["assumable", "attachable"] { option value=(t) selected[r.role_type == t] { (t) } }
                }
                (field_error("r-type", bad.and_then(|b| b.on("role_type"))))
            }
            (input("r-dur", "max_session_duration", "Max session duration (seconds)", "number", &dur, bad, "max_session_duration"))
            button type="submit" { (submit) }
        }
    }
}

fn role_from_form(form: &super::Form) -> Result<wire::RoleInput, ApiError> {
    Ok(wire::RoleInput {
        name: form.trimmed("name").to_owned(),
        description: form.trimmed("description").to_owned(),
        role_type: form.trimmed("role_type").to_owned(),
        max_session_duration: match form.trimmed("max_session_duration") {
            "" => None,
            d => Some(d.parse().map_err(|_| {
                ApiError::invalid("max_session_duration", "max_session_duration: a whole number of seconds")
            })?),
        },
    })
}

async fn roles(State(app): State<Arc<App>>, ui: Ui, uri: Uri) -> Response {
    roles_page(&app, &ui, &uri, None, None).await
}

async fn roles_page(app: &App, ui: &Ui, uri: &Uri, input: Option<wire::RoleInput>, bad: Option<Bad>) -> Response {
    let list = tri!(app.list_roles(&ui.caller, paging(uri)).await);
    let input = input.unwrap_or(wire::RoleInput {
        name: String::new(),
        description: String::new(),
        role_type: "assumable".into(),
        max_session_duration: Some(3600),
    });
    let main = html! {
        h1 { "Roles" }
        (notice_banner(uri))
        table {
            thead { tr { th scope="col" { "Name" } th scope="col" { "Type" } th scope="col" { "Max duration (s)" } th scope="col" { "Description" } } }
            tbody {
                @for r in &list.items {
                    @let v = role_view(r);
                    tr { td { a href=(format!("/ui/roles/{}", v.id)) { (v.name) } } td { (v.role_type) } td { (v.max_session_duration) } td { (v.description) } }
                }
            }
        }
        (pager("/ui/roles", list.next))
        h2 { "New role" }
        (role_form(ui, "/ui/roles", &input, bad.as_ref(), "Create role"))
    };
    let res = page(ui, "/ui/roles", "Roles", main);
    if bad.is_some() { with_status(res, StatusCode::BAD_REQUEST) } else { res }
}

async fn create_role(State(app): State<Arc<App>>, uri: Uri, Post { ui, form }: Post) -> Response {
    let (wire_in, r) = match role_from_form(&form) {
        Ok(w) => {
            let r = match role_input(w.clone()) {
                Ok(i) => app.create_role(&ui.caller, i).await.map_err(ApiError::from),
                Err(e) => Err(e),
            };
            (Some(w), r)
        }
        Err(e) => (None, Err(e)),
    };
    match r {
        Ok(r) => done(&format!("/ui/roles/{}", r.id), "created"),
        Err(e) if e.status == StatusCode::BAD_REQUEST || e.status == StatusCode::CONFLICT => {
            roles_page(&app, &ui, &uri, wire_in, Some(e.into())).await
        }
        Err(e) => failed(e),
    }
}

async fn role_detail(State(app): State<Arc<App>>, ui: Ui, Path(raw): Path<String>, uri: Uri) -> Response {
    let rid: RoleId = path_id!("role_id", raw);
    role_page(&app, &ui, rid, &uri, None, None).await
}

async fn role_page(
    app: &App,
    ui: &Ui,
    rid: RoleId,
    uri: &Uri,
    input: Option<wire::RoleInput>,
    bad: Option<Bad>,
) -> Response {
    let r = role_view(&tri!(app.get_role(&ui.caller, rid).await));
    let attached = tri!(
        app.list_attached_policies(&ui.caller, PolicyTarget::Role(rid), PageRequest { per_page: 500, cursor: None })
            .await
    );
    let all = app.list_policies(&ui.caller, PageRequest { per_page: 500, cursor: None }).await;
    let trusts = app.list_trusts(&ui.caller, Some(rid), PageRequest { per_page: 500, cursor: None }).await;
    let input = input.unwrap_or(wire::RoleInput {
        name: r.name.clone(),
        description: r.description.clone(),
        role_type: r.role_type.clone(),
        max_session_duration: Some(r.max_session_duration),
    });
    let action = format!("/ui/roles/{}", r.id);
    let main = html! {
        p { a href="/ui/roles" { "← All roles" } }
        h1 { "Role " (r.name) }
        (notice_banner(uri))
        p.muted { "Id " span.mono { (r.id) } }
        (role_form(ui, &action, &input, bad.as_ref(), "Save role"))
        p {
            a href=(format!("{action}/assignments")) { "Users and groups this role is assigned to" }
            " · "
            a.danger href=(format!("{action}/delete")) { "Delete role…" }
        }
        h2 { "Attached policies" }
        table {
            thead { tr { th scope="col" { "Policy" } th scope="col" { "Action" } } }
            tbody {
                @for p in &attached.items {
                    tr {
                        td { a href=(format!("/ui/policies/{}", p.id)) { (p.name) } }
                        td {
                            form.inline method="post" action=(format!("{action}/policies/{}/detach", p.id)) {
                                (csrf_field(ui))
                                button.danger type="submit" aria-label=(format!("Detach {}", p.name)) { "Detach" }
                            }
                        }
                    }
                }
            }
        }
        form method="post" action=(format!("{action}/policies")) aria-label="Attach a policy" {
            (csrf_field(ui))
            div.row {
                div.field {
                    label for="attach-policy" { "Policy" }
                    select id="attach-policy" name="policy_id" {
                        @if let Ok(all) = &all { @for p in &all.items { option value=(p.id) { (p.name) } } }
                    }
                }
                div.field { button type="submit" { "Attach policy" } }
            }
        }
        h2 { "Trusts" }
        @if let Ok(t) = &trusts { (trust_table(ui, &t.items)) }
        p { a href="/ui/trusts" { "Add a trust" } }
    };
    let res = page(ui, "/ui/roles", "Role", main);
    if bad.is_some() { with_status(res, StatusCode::BAD_REQUEST) } else { res }
}

async fn update_role(
    State(app): State<Arc<App>>,
    uri: Uri,
    Path(raw): Path<String>,
    Post { ui, form }: Post,
) -> Response {
    let rid: RoleId = path_id!("role_id", raw);
    let (wire_in, r) = match role_from_form(&form) {
        Ok(w) => {
            let r = match role_input(w.clone()) {
                Ok(i) => app.update_role(&ui.caller, rid, i).await.map_err(ApiError::from),
                Err(e) => Err(e),
            };
            (Some(w), r)
        }
        Err(e) => (None, Err(e)),
    };
    match r {
        Ok(_) => done(&format!("/ui/roles/{rid}"), "saved"),
        Err(e) if e.status == StatusCode::BAD_REQUEST || e.status == StatusCode::CONFLICT => {
            role_page(&app, &ui, rid, &uri, wire_in, Some(e.into())).await
        }
        Err(e) => failed(e),
    }
}

async fn attach_role_policy(State(app): State<Arc<App>>, Path(raw): Path<String>, Post { ui, form }: Post) -> Response {
    let rid: RoleId = path_id!("role_id", raw);
    let pid = tri!(crate::extract::body_id::<PolicyId>("policy_id", form.trimmed("policy_id")));
    tri!(app.attach_policy(&ui.caller, pid, PolicyTarget::Role(rid)).await);
    done(&format!("/ui/roles/{rid}"), "saved")
}

async fn detach_role_policy(
    State(app): State<Arc<App>>,
    Path((r, p)): Path<(String, String)>,
    Post { ui, .. }: Post,
) -> Response {
    let rid: RoleId = path_id!("role_id", r);
    let pid: PolicyId = path_id!("policy_id", p);
    tri!(app.detach_policy(&ui.caller, pid, PolicyTarget::Role(rid)).await);
    done(&format!("/ui/roles/{rid}"), "saved")
}

// ---- trusts ----------------------------------------------------------------------------------

fn trust_table(ui: &Ui, trusts: &[tessera_domain::trust::RoleTrust]) -> Markup {
    html! {
        table {
            thead { tr { th scope="col" { "Id" } th scope="col" { "Role" } th scope="col" { "Principal" } th scope="col" { "Conditions" } th scope="col" { "Valid until" } th scope="col" { "Action" } } }
            tbody {
                @for t in trusts {
                    @let v = trust_view(t);
                    tr {
                        td.mono { (v.id) }
                        td { a href=(format!("/ui/roles/{}", v.role_id)) { (v.role_id) } }
                        td.mono {
                            @if let Some(u) = &v.trusted_user_id { "user " a href=(format!("/ui/users/{u}")) { (u) } }
                            @if let Some(g) = &v.trusted_group_id { "group " a href=(format!("/ui/groups/{g}")) { (g) } }
                            @if let Some(i) = &v.trusted_oidc_issuer_id { "OIDC issuer " (i) }
                        }
                        td.mono { (serde_json::to_string(&v.conditions).unwrap_or_default()) }
                        td.mono { (v.valid_until.clone().unwrap_or_default()) }
                        td {
                            form.inline method="post" action=(format!("/ui/trusts/{}/delete", v.id)) {
                                (csrf_field(ui))
                                button.danger type="submit" aria-label=(format!("Delete trust {}", v.id)) { "Delete" }
                            }
                        }
                    }
                }
            }
        }
    }
}

const TRUST_TEMPLATE: &str = "{\n  \"role_id\": \"\",\n  \"trusted_user_id\": \"\",\n  \"conditions\": {\n    \"ip_address\": [\"10.0.0.0/8\"],\n    \"time_of_day\": {\"start\": \"08:00\", \"end\": \"18:00\", \"days_of_week\": [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]}\n  }\n}";

async fn trusts(State(app): State<Arc<App>>, ui: Ui, uri: Uri) -> Response {
    trusts_page(&app, &ui, &uri, None, None).await
}

async fn trusts_page(app: &App, ui: &Ui, uri: &Uri, text: Option<&str>, bad: Option<Bad>) -> Response {
    let list = tri!(app.list_trusts(&ui.caller, None, paging(uri)).await);
    let main = html! {
        h1 { "Role trusts" }
        (notice_banner(uri))
        p { "A trust lets a principal (a user, a group, or an OIDC issuer's workloads) assume a role, under conditions (source addresses, time of day, OIDC claims)." }
        (trust_table(ui, &list.items))
        (pager("/ui/trusts", list.next))
        h2 { "New trust" }
        form method="post" action="/ui/trusts" aria-label="New trust" {
            (csrf_field(ui))
            (doc_editor("t-doc", "trust", "Trust (JSON, as POST /v2/role-trusts takes it)", text.unwrap_or(TRUST_TEMPLATE), bad.as_ref(), ""))
            button type="submit" { "Create trust" }
        }
    };
    let res = page(ui, "/ui/trusts", "Trusts", main);
    if bad.is_some() { with_status(res, StatusCode::BAD_REQUEST) } else { res }
}

async fn create_trust(State(app): State<Arc<App>>, uri: Uri, Post { ui, form }: Post) -> Response {
    let text = form.get("trust");
    let r = match crate::extract::parse_json::<wire::TrustInput>(text.as_bytes()).and_then(trust_input) {
        Ok(i) => app.create_trust(&ui.caller, i).await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match r {
        Ok(_) => done("/ui/trusts", "created"),
        Err(e)
            if e.status == StatusCode::BAD_REQUEST
                || e.status == StatusCode::NOT_FOUND
                || e.status == StatusCode::CONFLICT =>
        {
            let mut bad = Bad::from(e);
            // Every error of this form is shown at its one editor, with the path it names.
            bad.field = format!("trust.{}", bad.field);
            bad.message = bad.message.clone();
            trusts_page(&app, &ui, &uri, Some(text), Some(bad)).await
        }
        Err(e) => failed(e),
    }
}

async fn delete_trust(State(app): State<Arc<App>>, Path(raw): Path<String>, Post { ui, .. }: Post) -> Response {
    let tid: TrustId = path_id!("role_trust_id", raw);
    tri!(app.delete_trust(&ui.caller, tid).await);
    done("/ui/trusts", "deleted")
}

// ---- OIDC issuers ----------------------------------------------------------------------------

const ISSUER_TEMPLATE: &str =
    "{\n  \"uri\": \"https://token.actions.githubusercontent.com\",\n  \"source\": \"external\"\n}";

async fn issuers(State(app): State<Arc<App>>, ui: Ui, uri: Uri) -> Response {
    issuers_page(&app, &ui, &uri, None, None).await
}

async fn issuers_page(app: &App, ui: &Ui, uri: &Uri, text: Option<&str>, bad: Option<Bad>) -> Response {
    let list = tri!(app.list_oidc_issuers(&ui.caller, paging(uri)).await);
    let main = html! {
        h1 { "OIDC issuers" }
        (notice_banner(uri))
        table {
            thead { tr { th scope="col" { "Id" } th scope="col" { "Issuer" } th scope="col" { "Details" } th scope="col" { "Action" } } }
            tbody {
                @for i in &list.items {
                    @let v = issuer_view(i);
                    @let j = serde_json::to_value(&v).unwrap_or_default();
                    tr {
                        td.mono { (j.get("id").and_then(Value::as_str).unwrap_or_default()) }
                        td.mono { (j.get("uri").and_then(Value::as_str).unwrap_or_default()) }
                        td.mono { (j.to_string()) }
                        td {
                            form.inline method="post" action=(format!("/ui/oidc/{}/delete", j.get("id").and_then(Value::as_str).unwrap_or_default())) {
                                (csrf_field(ui))
                                button.danger type="submit" { "Delete" }
                            }
                        }
                    }
                }
            }
        }
        (pager("/ui/oidc", list.next))
        p { "Role assignments: a role's users and groups are listed by " code { "GET /v2/roles/{id}/users" } "; trusts for an issuer's workloads are on the " a href="/ui/trusts" { "Trusts" } " page." }
        h2 { "New issuer" }
        form method="post" action="/ui/oidc" aria-label="New OIDC issuer" {
            (csrf_field(ui))
            (doc_editor("i-doc", "issuer", "Issuer (JSON, as POST /v2/oidc/issuer takes it)", text.unwrap_or(ISSUER_TEMPLATE), bad.as_ref(), ""))
            button type="submit" { "Create issuer" }
        }
    };
    let res = page(ui, "/ui/oidc", "OIDC issuers", main);
    if bad.is_some() { with_status(res, StatusCode::BAD_REQUEST) } else { res }
}

async fn create_issuer(State(app): State<Arc<App>>, uri: Uri, Post { ui, form }: Post) -> Response {
    let text = form.get("issuer");
    let r = match crate::extract::parse_json::<wire::oidc::IssuerInput>(text.as_bytes()).and_then(issuer_input) {
        Ok(i) => app.create_oidc_issuer(&ui.caller, i).await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match r {
        Ok(_) => done("/ui/oidc", "created"),
        Err(e) if e.status == StatusCode::BAD_REQUEST || e.status == StatusCode::CONFLICT => {
            let mut bad = Bad::from(e);
            bad.field = format!("issuer.{}", bad.field);
            issuers_page(&app, &ui, &uri, Some(text), Some(bad)).await
        }
        Err(e) => failed(e),
    }
}

async fn delete_issuer(State(app): State<Arc<App>>, Path(raw): Path<String>, Post { ui, .. }: Post) -> Response {
    let iid: OidcIssuerId = path_id!("issuer_id", raw);
    tri!(app.delete_oidc_issuer(&ui.caller, iid).await);
    done("/ui/oidc", "deleted")
}

#[cfg(test)]
mod tests {
    use super::error_line;

    #[test]
    fn a_policy_error_points_at_its_line() {
        let doc = super::POLICY_TEMPLATE;
        assert_eq!(error_line(doc, "policy_document.Statement[0].Action", "bad action"), Some(6));
        assert_eq!(error_line(doc, "policy_document.Statement[0].Effect", "bad effect"), Some(5));
        assert_eq!(error_line("{\n  \"a\": ,\n}", "policy_document", "expected value at line 2 column 8"), Some(2));
    }
}
