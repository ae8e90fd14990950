//! Role assignments (`/ui/roles/{id}/assignments`: the users and groups an assignable role is
//! given to, assign and unassign) and the delete pages of users, groups and roles. Each change
//! calls the same use case as its `/v2` handler (`assign_role`, `unassign_role`,
//! `delete_user`, `delete_group`, `delete_role`); a refusal (an assumable role, a missing
//! user) is shown next to the form that caused it.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::html;
use tessera_app::App;
use tessera_domain::ids::*;
use tessera_domain::page::PageRequest;
use tessera_domain::role::Assignee;

use super::{Page, Post, Ui, csrf_field, done, failed, field_error, id, notice_banner, page};
use crate::convert::{assignment_view, group_view, role_view, user_view};
use crate::error::ApiError;

pub fn pages() -> Vec<Page> {
    vec![
        Page { path: "/ui/roles/{role_id}/assignments", handler: get(assignments).post(assign) },
        Page { path: "/ui/roles/{role_id}/assignments/users/{user_id}/remove", handler: post(unassign_user) },
        Page { path: "/ui/roles/{role_id}/assignments/groups/{group_id}/remove", handler: post(unassign_group) },
        Page { path: "/ui/users/{user_id}/delete", handler: get(confirm_user).post(delete_user) },
        Page { path: "/ui/groups/{group_id}/delete", handler: get(confirm_group).post(delete_group) },
        Page { path: "/ui/roles/{role_id}/delete", handler: get(confirm_role).post(delete_role) },
    ]
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return failed(e),
        }
    };
}

const ALL: PageRequest = PageRequest { per_page: 500, cursor: None };

async fn assignments(State(app): State<Arc<App>>, ui: Ui, Path(raw): Path<String>, uri: Uri) -> Response {
    let rid: RoleId = tri!(id("role_id", &raw));
    assignments_page(&app, &ui, rid, &uri, None).await
}

/// The page, with `bad` (the form it belongs to, and the error) beside that form.
async fn assignments_page(app: &App, ui: &Ui, rid: RoleId, uri: &Uri, bad: Option<(&str, ApiError)>) -> Response {
    let r = role_view(&tri!(app.get_role(&ui.caller, rid).await));
    let users = tri!(app.list_role_assignments(&ui.caller, rid, false, ALL).await);
    let groups = tri!(app.list_role_assignments(&ui.caller, rid, true, ALL).await);
    let all_users = app.list_users(&ui.caller, ALL).await;
    let all_groups = app.list_groups(&ui.caller, ALL).await;
    let err = |form: &str| bad.as_ref().filter(|(f, _)| *f == form).map(|(_, e)| e.message.as_str());
    let base = format!("/ui/roles/{}/assignments", r.id);
    let main = html! {
        p { a href=(format!("/ui/roles/{}", r.id)) { "← Role " (r.name) } }
        h1 { "Assignments of role " (r.name) }
        (notice_banner(uri))
        @if r.role_type != "assignable" {
            p.muted { "This role is " (r.role_type) ": it is assumed through a trust, not assigned; the server refuses assignments of it." }
        }
        h2 { "Users" }
        table {
            thead { tr { th scope="col" { "User" } th scope="col" { "Assigned" } th scope="col" { "Action" } } }
            tbody {
                @for a in &users.items {
                    @let v = assignment_view(a);
                    @let uid = v.user_id.clone().unwrap_or_default();
                    tr {
                        td { a href=(format!("/ui/users/{uid}")) { (a.assignee_name) } }
                        td.mono { (v.date_assigned) }
                        td {
                            form.inline method="post" action=(format!("{base}/users/{uid}/remove")) {
                                (csrf_field(ui))
                                button.danger type="submit" aria-label=(format!("Unassign {}", a.assignee_name)) { "Unassign" }
                            }
                        }
                    }
                }
            }
        }
        form method="post" action=(base) aria-label="Assign to a user" {
            (csrf_field(ui))
            input type="hidden" name="to" value="user";
            div.row {
                div.field {
                    label for="assign-user" { "User" }
                    select id="assign-user" name="user_id" aria-invalid=[err("user").map(|_| "true")]
                        aria-describedby=[err("user").map(|_| "assign-user-error")] {
                        @if let Ok(us) = &all_users { @for u in &us.items { option value=(u.id) { (u.email.as_str()) } } }
                    }
                    (field_error("assign-user", err("user")))
                }
                div.field { button type="submit" { "Assign to user" } }
            }
        }
        h2 { "Groups" }
        table {
            thead { tr { th scope="col" { "Group" } th scope="col" { "Assigned" } th scope="col" { "Action" } } }
            tbody {
                @for a in &groups.items {
                    @let v = assignment_view(a);
                    @let gid = v.group_id.clone().unwrap_or_default();
                    tr {
                        td { a href=(format!("/ui/groups/{gid}")) { (a.assignee_name) } }
                        td.mono { (v.date_assigned) }
                        td {
                            form.inline method="post" action=(format!("{base}/groups/{gid}/remove")) {
                                (csrf_field(ui))
                                button.danger type="submit" aria-label=(format!("Unassign {}", a.assignee_name)) { "Unassign" }
                            }
                        }
                    }
                }
            }
        }
        form method="post" action=(base) aria-label="Assign to a group" {
            (csrf_field(ui))
            input type="hidden" name="to" value="group";
            div.row {
                div.field {
                    label for="assign-group" { "Group" }
                    select id="assign-group" name="group_id" aria-invalid=[err("group").map(|_| "true")]
                        aria-describedby=[err("group").map(|_| "assign-group-error")] {
                        @if let Ok(gs) = &all_groups { @for g in &gs.items { @let g = group_view(g); option value=(g.id) { (g.display_name) } } }
                    }
                    (field_error("assign-group", err("group")))
                }
                div.field { button type="submit" { "Assign to group" } }
            }
        }
    };
    let res = page(ui, "/ui/roles", "Role assignments", main);
    match bad {
        Some((_, e)) => (e.status, res).into_response(),
        None => res,
    }
}

async fn assign(State(app): State<Arc<App>>, uri: Uri, Path(raw): Path<String>, Post { ui, form }: Post) -> Response {
    let rid: RoleId = tri!(id("role_id", &raw));
    let (which, to) = if form.get("to") == "group" {
        ("group", crate::extract::body_id::<GroupId>("group_id", form.trimmed("group_id")).map(Assignee::Group))
    } else {
        ("user", crate::extract::body_id::<UserId>("user_id", form.trimmed("user_id")).map(Assignee::User))
    };
    let r = match to {
        Ok(to) => app.assign_role(&ui.caller, rid, to).await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match r {
        Ok(_) => done(&format!("/ui/roles/{rid}/assignments"), "saved"),
        Err(e)
            if e.status == StatusCode::BAD_REQUEST
                || e.status == StatusCode::NOT_FOUND
                || e.status == StatusCode::CONFLICT =>
        {
            assignments_page(&app, &ui, rid, &uri, Some((which, e))).await
        }
        Err(e) => failed(e),
    }
}

async fn unassign_user(
    State(app): State<Arc<App>>,
    Path((r, u)): Path<(String, String)>,
    Post { ui, .. }: Post,
) -> Response {
    let rid: RoleId = tri!(id("role_id", &r));
    let uid: UserId = tri!(id("user_id", &u));
    tri!(app.unassign_role(&ui.caller, rid, Assignee::User(uid)).await);
    done(&format!("/ui/roles/{rid}/assignments"), "deleted")
}

async fn unassign_group(
    State(app): State<Arc<App>>,
    Path((r, g)): Path<(String, String)>,
    Post { ui, .. }: Post,
) -> Response {
    let rid: RoleId = tri!(id("role_id", &r));
    let gid: GroupId = tri!(id("group_id", &g));
    tri!(app.unassign_role(&ui.caller, rid, Assignee::Group(gid)).await);
    done(&format!("/ui/roles/{rid}/assignments"), "deleted")
}

// ---- delete, with a confirmation step ---------------------------------------------------------

/// The confirmation page: what will be deleted, and the one form that deletes it.
fn confirm(ui: &Ui, current: &str, what: &str, name: &str, back: &str) -> Response {
    let main = html! {
        p { a href=(back) { "← Back" } }
        h1 { "Delete " (what) " " (name) "?" }
        p { "This cannot be undone." }
        form method="post" action=(format!("{back}/delete")) aria-label=(format!("Delete {what}")) {
            (csrf_field(ui))
            button.danger type="submit" { "Delete " (what) " " (name) }
            " "
            a href=(back) { "Cancel" }
        }
    };
    page(ui, current, &format!("Delete {what}"), main)
}

async fn confirm_user(State(app): State<Arc<App>>, ui: Ui, Path(raw): Path<String>) -> Response {
    let uid: UserId = tri!(id("user_id", &raw));
    let u = user_view(&tri!(app.get_user(&ui.caller, uid).await));
    confirm(&ui, "/ui/users", "user", &u.email, &format!("/ui/users/{}", u.id))
}

async fn delete_user(State(app): State<Arc<App>>, Path(raw): Path<String>, Post { ui, .. }: Post) -> Response {
    let uid: UserId = tri!(id("user_id", &raw));
    tri!(app.delete_user(&ui.caller, uid).await);
    done("/ui/users", "deleted")
}

async fn confirm_group(State(app): State<Arc<App>>, ui: Ui, Path(raw): Path<String>) -> Response {
    let gid: GroupId = tri!(id("group_id", &raw));
    let g = group_view(&tri!(app.get_group(&ui.caller, gid).await));
    confirm(&ui, "/ui/groups", "group", &g.display_name, &format!("/ui/groups/{}", g.id))
}

async fn delete_group(State(app): State<Arc<App>>, Path(raw): Path<String>, Post { ui, .. }: Post) -> Response {
    let gid: GroupId = tri!(id("group_id", &raw));
    tri!(app.delete_group(&ui.caller, gid).await);
    done("/ui/groups", "deleted")
}

async fn confirm_role(State(app): State<Arc<App>>, ui: Ui, Path(raw): Path<String>) -> Response {
    let rid: RoleId = tri!(id("role_id", &raw));
    let r = role_view(&tri!(app.get_role(&ui.caller, rid).await));
    confirm(&ui, "/ui/roles", "role", &r.name, &format!("/ui/roles/{}", r.id))
}

async fn delete_role(State(app): State<Arc<App>>, Path(raw): Path<String>, Post { ui, .. }: Post) -> Response {
    let rid: RoleId = tri!(id("role_id", &raw));
    tri!(app.delete_role(&ui.caller, rid).await);
    done("/ui/roles", "deleted")
}
