//! Settings: the organization's session limits (the use cases of
//! `GET/PUT /v2/iam/session-limits`), and the server's effective configuration, read-only,
//! as `tessera config check` prints it (secrets redacted).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use maud::html;
use tessera_app::App;
use tessera_domain::login::SessionLimits;

use super::{Page, Post, Ui, csrf_field, done, failed, field_error, notice_banner, page};
use crate::error::ApiError;

pub fn pages() -> Vec<Page> {
    vec![Page { path: "/ui/settings", handler: get(show).post(save) }]
}

async fn show(State(app): State<Arc<App>>, ui: Ui, uri: Uri) -> Response {
    render(&app, &ui, &uri, None, None).await
}

/// The three fields as typed, and which one failed.
type Typed = [String; 3];

async fn render(app: &App, ui: &Ui, uri: &Uri, typed: Option<Typed>, bad: Option<ApiError>) -> Response {
    let limits = match app.get_session_limits(&ui.caller).await {
        Ok(l) => l,
        Err(e) => return failed(e),
    };
    let values = typed.unwrap_or_else(|| {
        [
            limits.idle_timeout.to_string(),
            limits.absolute_timeout.to_string(),
            i64::from(limits.max_sessions_per_user).to_string(),
        ]
    });
    let err_on = |f: &str| bad.as_ref().filter(|e| e.field.as_deref() == Some(f)).map(|e| e.message.as_str());
    let fields = [
        ("idle_timeout", "Idle timeout (seconds)"),
        ("absolute_timeout", "Absolute timeout (seconds)"),
        ("max_sessions_per_user", "Most sessions per user (0: no limit)"),
    ];
    let other = bad.as_ref().filter(|e| !fields.iter().any(|(f, _)| e.field.as_deref() == Some(*f)));
    let main = html! {
        h1 { "Settings" }
        (notice_banner(uri))
        h2 id="limits-title" { "Session limits" }
        form method="post" action="/ui/settings" aria-labelledby="limits-title" {
            (csrf_field(ui))
            @if let Some(e) = other { p.error role="alert" { (e.message) } }
            @for (i, (name, label)) in fields.iter().enumerate() {
                @let id = format!("s-{name}");
                @let err = err_on(name);
                div.field {
                    label for=(id) { (label) }
                    input id=(id) name=(name) type="number" value=(values[i])
                        aria-invalid=[err.map(|_| "true")] aria-describedby=[err.map(|_| format!("{id}-error"))];
                    (field_error(&id, err))
                }
            }
            button type="submit" { "Save limits" }
        }
        h2 { "Server configuration" }
        p.muted { "The effective configuration of this node, read-only, as " code { "tessera config check" } " prints it; secrets are shown as ***." }
        @match &ui.config.effective_config {
            Some(text) => pre id="effective-config" tabindex="0" aria-label="Effective configuration" { (text) },
            None => p { "This server was started without a configuration to show." },
        }
    };
    let mut res = page(ui, "/ui/settings", "Settings", main);
    if bad.is_some() {
        *res.status_mut() = StatusCode::BAD_REQUEST;
    }
    res
}

async fn save(State(app): State<Arc<App>>, uri: Uri, Post { ui, form }: Post) -> Response {
    let typed: Typed = [
        form.trimmed("idle_timeout").to_owned(),
        form.trimmed("absolute_timeout").to_owned(),
        form.trimmed("max_sessions_per_user").to_owned(),
    ];
    let number = |i: usize, f: &str| {
        typed[i].parse::<i64>().map_err(|_| ApiError::invalid(f, format!("{f}: a whole number, found '{}'", typed[i])))
    };
    let r = (|| {
        let idle = number(0, "idle_timeout")?;
        let absolute = number(1, "absolute_timeout")?;
        let max = number(2, "max_sessions_per_user")?;
        SessionLimits::new(idle, absolute, max).map_err(ApiError::from)
    })();
    let r = match r {
        Ok(l) => app.put_session_limits(&ui.caller, l).await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match r {
        Ok(_) => done("/ui/settings", "saved"),
        Err(e) if e.status == StatusCode::BAD_REQUEST => render(&app, &ui, &uri, Some(typed), Some(e)).await,
        Err(e) => failed(e),
    }
}
