//! The admin console: server-rendered HTML pages at `/ui` on the API listener.
//!
//! Every page calls the same `App` use cases as the `/v2` handlers, with the caller its
//! session cookie authenticates: the console has no other way into the store, and the app's
//! policy checks decide what it may show or change. Pages are `maud` templates (checked at
//! compile time, escaped by default); the one script is htmx, vendored from npm at a pinned
//! version (`assets/`), used only to refresh the live counts. Everything works without it.
//!
//! Security (see docs/console.md): a strict Content-Security-Policy on every answer, no inline
//! script or style; every state change is a form POST that must pass the API's own
//! cross-site check (`csrf::check_origin`) and carry the session's CSRF token
//! (`csrf::token_for`) in a hidden field; the sign-in form, which has no session yet, carries
//! its own double-submit token when no browser header proves the origin (login CSRF); the
//! session cookie is `HttpOnly`, `SameSite=Strict` and `Secure` over TLS; the only secret ever
//! put in a page is a new API key, once, on an answer marked `Cache-Control: no-store`.

pub mod assets;
mod assignments;
mod gateway;
mod iam;
mod sessions;
mod settings;

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::MethodRouter;
use maud::{DOCTYPE, Markup, html};
use tessera_app::{App, Caller, SignIn};

use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::extract::{config_of, credential, form_pairs, peer_ip};

/// The Content-Security-Policy of every console answer.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'";

/// The name of the hidden form field that carries the session's CSRF token.
pub const CSRF_FIELD: &str = "csrf_token";

/// One console page: its path and handler. The router adds these next to the `/v2` route
/// table; they are not part of the API (nor of its OpenAPI document), and each handler
/// authorizes through the app's use cases like the API's handlers do.
pub struct Page {
    pub path: &'static str,
    pub handler: MethodRouter<Arc<App>>,
}

/// Every console page.
pub fn pages() -> Vec<Page> {
    use axum::routing::{get, post};
    let mut pages = vec![
        Page { path: "/ui", handler: get(|| async { Redirect::to("/ui/sessions") }) },
        Page { path: "/ui/", handler: get(|| async { Redirect::to("/ui/sessions") }) },
        Page { path: "/ui/login", handler: get(login_form).post(login) },
        Page { path: "/ui/logout", handler: post(logout) },
        Page { path: "/ui/assets/{file}", handler: get(assets::serve) },
        Page { path: "/ui/{*rest}", handler: get(not_found) },
    ];
    pages.extend(sessions::pages());
    pages.extend(iam::pages());
    pages.extend(assignments::pages());
    pages.extend(gateway::pages());
    pages.extend(settings::pages());
    pages
        .into_iter()
        .map(|p| Page { path: p.path, handler: p.handler.layer(axum::middleware::map_response(security_headers)) })
        .collect()
}

/// Headers on every console answer.
async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Not `no-referrer`: with it Chromium sends `Origin: null` on the console's own form
    // posts, which the API's cross-site rule rightly refuses. `same-origin` gives other sites
    // no referrer at all (the console's URLs never leave it) and keeps the Origin header.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, private"));
    }
    res
}

// ---- who is asking ---------------------------------------------------------------------------

/// A signed-in console user: the caller its session cookie authenticates as, and the CSRF
/// token its forms carry.
pub struct Ui {
    pub caller: Caller,
    pub csrf: String,
    pub config: Arc<ServerConfig>,
}

/// Where a page that needs a session sends a visitor without one.
fn to_login(parts: &Parts) -> Response {
    let here = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/ui/sessions");
    let next = if parts.method == axum::http::Method::GET { safe_next(here) } else { "/ui/sessions" };
    Redirect::to(&format!("/ui/login?next={}", encode(next))).into_response()
}

impl FromRequestParts<Arc<App>> for Ui {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Self::Rejection> {
        let config = config_of(parts);
        // The console reads only its cookie: a bearer header is for the API.
        let token = match credential(parts) {
            Ok(Some(c)) if c.from_cookie => c.token,
            _ => return Err(to_login(parts)),
        };
        match app.authenticate(token, peer_ip(parts)).await {
            Ok(caller) => Ok(Ui { caller, csrf: crate::csrf::token_for(token), config }),
            Err(_) => Err(to_login(parts)),
        }
    }
}

/// A state change from a console form: the signed-in caller and the form's fields, after
/// the API's cross-site check and the session's CSRF token in the form are both verified.
pub struct Post {
    pub ui: Ui,
    pub form: Form,
}

/// The fields of a form POST.
#[derive(Debug, Default)]
pub struct Form(pub Vec<(String, String)>);

impl Form {
    pub fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
    }
    pub fn trimmed(&self, name: &str) -> &str {
        self.get(name).trim()
    }
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }
}

async fn read_form(body: axum::body::Body) -> Result<Form, Response> {
    let bytes = axum::body::to_bytes(body, crate::extract::MAX_BODY)
        .await
        .map_err(|_| error_page(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.").into_response())?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| error_page(StatusCode::BAD_REQUEST, "The form is not UTF-8.").into_response())?;
    Ok(Form(form_pairs(text)))
}

fn cross_site(e: ApiError) -> Response {
    error_page(StatusCode::FORBIDDEN, &e.message)
}

impl FromRequest<Arc<App>> for Post {
    type Rejection = Response;

    async fn from_request(req: Request, app: &Arc<App>) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let ui = Ui::from_request_parts(&mut parts, app).await?;
        // The same proof the API asks of a cookie-authenticated state change: a browser's
        // Sec-Fetch-Site/Origin must not say cross-site ...
        crate::csrf::check_origin(&parts, &ui.config).map_err(cross_site)?;
        let form = read_form(body).await?;
        // ... and the form carries the session's token, which a foreign page cannot know.
        let sent = form.get(CSRF_FIELD).as_bytes();
        if !bool::from(subtle::ConstantTimeEq::ct_eq(sent, ui.csrf.as_bytes())) {
            return Err(error_page(
                StatusCode::FORBIDDEN,
                "cross-site request refused: the form does not carry this session's CSRF token; reload the page and try again",
            ));
        }
        Ok(Post { ui, form })
    }
}

// ---- sign in and out -------------------------------------------------------------------------

/// A local console path to go to after sign-in, or `/ui/sessions`: never another site
/// (`//evil.example`, `/\evil.example`, `https://…`) nor a path outside the console.
pub fn safe_next(next: &str) -> &str {
    let ok = (next == "/ui" || next.starts_with("/ui/") || next.starts_with("/ui?"))
        && !next.contains("//")
        && !next.contains('\\')
        && !next.contains("/../")
        && !next.chars().any(|c| c.is_control() || c.is_whitespace());
    if ok { next } else { "/ui/sessions" }
}

fn query_param(parts_query: Option<&str>, name: &str) -> Option<String> {
    form_pairs(parts_query.unwrap_or("")).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// The name of the sign-in form's hidden field that echoes its token cookie.
pub const LOGIN_CSRF_FIELD: &str = "login_token";

/// The sign-in form token this browser's cookie holds, when it is one we could have issued.
fn login_cookie<'a>(parts: &'a Parts, config: &ServerConfig) -> Option<&'a str> {
    crate::extract::cookie(&parts.headers, &config.login_csrf_cookie_name()).filter(|t| well_formed_login_token(t))
}

/// A sign-in form token we issued: 32 random bytes, base64url.
fn well_formed_login_token(t: &str) -> bool {
    t.len() == 43 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// This browser's sign-in form token: the one its cookie holds (so two open tabs both work),
/// else a fresh one.
fn login_token(app: &App, parts: &Parts, config: &ServerConfig) -> String {
    use base64::Engine;
    match login_cookie(parts, config) {
        Some(t) => t.to_owned(),
        None => base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(app.form_nonce()),
    }
}

/// Login CSRF. A sign-in has no session to bind a token to, so the form's token is a double
/// submit (as Django and Rails protect their logins): a random value the sign-in page put in
/// both a `SameSite=Strict` cookie scoped to `/ui/login` and a hidden field. A foreign page can
/// neither read the cookie nor set it, so it cannot make the two agree. A browser that proves
/// the post same-origin by `Origin` or `Sec-Fetch-Site` needs no token, and one that says
/// cross-site is refused whatever it carries (both decided by `login`); one that says nothing
/// must carry the token, which this checks.
fn login_token_matches(parts: &Parts, config: &ServerConfig, form: &Form) -> bool {
    let cookie = login_cookie(parts, config);
    let sent = form.get(LOGIN_CSRF_FIELD).as_bytes();
    cookie.is_some_and(|c| bool::from(subtle::ConstantTimeEq::ct_eq(sent, c.as_bytes())))
}

async fn login_form(State(app): State<Arc<App>>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let config = config_of(&parts);
    let next = query_param(parts.uri.query(), "next").unwrap_or_default();
    let token = login_token(&app, &parts, &config);
    login_page(&config, StatusCode::OK, safe_next(&next), "", None, &token)
}

/// The sign-in page, its form carrying `token`, which the answer also sets as the cookie.
fn login_page(
    config: &ServerConfig,
    status: StatusCode,
    next: &str,
    email: &str,
    error: Option<&str>,
    token: &str,
) -> Response {
    let body = html! {
        main id="main" class="narrow" {
            h1 { "Sign in to Tessera" }
            @if let Some(e) = error {
                p id="login-error" class="error" role="alert" { (e) }
            }
            form method="post" action="/ui/login" {
                input type="hidden" name="next" value=(next);
                input type="hidden" name=(LOGIN_CSRF_FIELD) value=(token);
                div.field {
                    label for="email" { "Email" }
                    input id="email" name="email" type="email" autocomplete="username" required value=(email)
                        aria-describedby=[error.map(|_| "login-error")];
                }
                div.field {
                    label for="password" { "Password" }
                    input id="password" name="password" type="password" autocomplete="current-password" required;
                }
                button type="submit" { "Sign in" }
            }
        }
    };
    let mut res = (status, document("Sign in", None, body)).into_response();
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.append(header::SET_COOKIE, login_token_cookie(config, token, 2 * 3600));
    res
}

/// The sign-in form's token cookie: sent back only to the sign-in form's own path, never on
/// a request another site starts (`SameSite=Strict`), unread by scripts.
fn login_token_cookie(config: &ServerConfig, token: &str, max_age: i64) -> HeaderValue {
    let mut c = format!(
        "{}={token}; Path=/ui/login; SameSite=Strict; Max-Age={max_age}; HttpOnly",
        config.login_csrf_cookie_name()
    );
    if config.cookie_secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A `Set-Cookie` value for the console's session (or to clear it, with `max_age` 0).
fn session_cookie(config: &ServerConfig, name: &str, value: &str, max_age: i64, http_only: bool) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; SameSite=Strict; Max-Age={max_age}");
    if http_only {
        c.push_str("; HttpOnly");
    }
    if config.cookie_secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

async fn login(State(app): State<Arc<App>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let config = config_of(&parts);
    // Login CSRF: a foreign page must not sign the visitor in as someone else.
    let proven_same_origin = match crate::csrf::check_origin(&parts, &config) {
        Ok(proven) => proven,
        Err(e) => return cross_site(e),
    };
    let form = match read_form(body).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    if !proven_same_origin && !login_token_matches(&parts, &config, &form) {
        return error_page(
            StatusCode::FORBIDDEN,
            "cross-site request refused: the sign-in form's token is missing or does not match; reload the sign-in page and try again",
        );
    }
    let next = safe_next(form.get("next")).to_owned();
    let email = form.trimmed("email").to_owned();
    // The same use case as `POST /v2/sessions`: the same lockout, limits and audit events.
    let signed = app
        .sign_in(SignIn {
            email: email.clone(),
            password: form.get("password").to_owned(),
            organization: None,
            client_ip: peer_ip(&parts),
        })
        .await;
    match signed {
        Ok(signed) => {
            let max_age = signed.session.expires.0 - signed.session.created.0;
            let mut res = Redirect::to(&next).into_response();
            let h = res.headers_mut();
            h.append(header::SET_COOKIE, session_cookie(&config, &config.cookie_name, &signed.token, max_age, true));
            let csrf = crate::csrf::token_for(&signed.token);
            h.append(header::SET_COOKIE, session_cookie(&config, &config.csrf_cookie_name, &csrf, max_age, false));
            // Its job is done: the next sign-in page makes a fresh one.
            h.append(header::SET_COOKIE, login_token_cookie(&config, "", 0));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(e) => {
            let e = ApiError::from(e);
            let token = login_token(&app, &parts, &config);
            login_page(&config, e.status, &next, &email, Some(&e.message), &token)
        }
    }
}

async fn logout(State(app): State<Arc<App>>, Post { ui, .. }: Post) -> Response {
    let _ = app.sign_out(&ui.caller).await;
    let mut res = Redirect::to("/ui/login").into_response();
    let h = res.headers_mut();
    h.append(header::SET_COOKIE, session_cookie(&ui.config, &ui.config.cookie_name, "", 0, true));
    h.append(header::SET_COOKIE, session_cookie(&ui.config, &ui.config.csrf_cookie_name, "", 0, false));
    res
}

async fn not_found(_ui: Ui, uri: axum::http::Uri) -> Response {
    error_page(StatusCode::NOT_FOUND, &format!("There is no console page at {}.", uri.path()))
}

// ---- rendering -------------------------------------------------------------------------------

/// The navigation: (path, label).
const NAV: &[(&str, &str)] = &[
    ("/ui/sessions", "Sessions"),
    ("/ui/users", "Users"),
    ("/ui/groups", "Groups"),
    ("/ui/policies", "Policies"),
    ("/ui/roles", "Roles"),
    ("/ui/trusts", "Trusts"),
    ("/ui/oidc", "OIDC issuers"),
    ("/ui/gateway", "Gateway"),
    ("/ui/settings", "Settings"),
];

/// A whole page: the layout around `main`. `ui` is `None` on the sign-in page.
pub fn document(title: &str, ui: Option<(&Ui, &str)>, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // htmx without the inline <style> it would add, and without eval.
                meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"historyCacheSize":0}"#;
                title { (title) " · Tessera console" }
                link rel="stylesheet" href=(assets::css_url());
                script src=(assets::htmx_url()) defer {}
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header {
                    span.brand { "Tessera" }
                    @if let Some((ui, current)) = ui {
                        nav aria-label="Console" {
                            ul {
                                @for (path, label) in NAV {
                                    li {
                                        a href=(path) aria-current=[(*path == current).then_some("page")] { (label) }
                                    }
                                }
                            }
                        }
                        form.signout method="post" action="/ui/logout" {
                            (csrf_field(ui))
                            span { (ui.caller.display_name()) }
                            " "
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                (main)
            }
        }
    }
}

/// The hidden field every console form carries.
pub fn csrf_field(ui: &Ui) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(ui.csrf); }
}

/// A page of the console answered 200.
pub fn page(ui: &Ui, current: &str, title: &str, main: Markup) -> Response {
    document(title, Some((ui, current)), html! { main id="main" { (main) } }).into_response()
}

/// An error answered as a page with its status.
pub fn error_page(status: StatusCode, message: &str) -> Response {
    let body = html! {
        main id="main" class="narrow" {
            h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("Error")) }
            p role="alert" { (message) }
            p { a href="/ui/sessions" { "Back to the console" } }
        }
    };
    (status, document(status.canonical_reason().unwrap_or("Error"), None, body)).into_response()
}

/// What a failed use case answers in the console: the sign-in page for an ended session, a
/// page with the error's status and message otherwise.
pub fn failed(e: impl Into<ApiError>) -> Response {
    let e = e.into();
    if e.status == StatusCode::UNAUTHORIZED {
        return Redirect::to("/ui/login").into_response();
    }
    error_page(e.status, &e.message)
}

/// A flash message after a redirect travels in the URL as a fixed code, never as free text.
pub fn notice(code: &str) -> Option<&'static str> {
    Some(match code {
        "terminated" => "The session was terminated.",
        "terminated_user" => "All of the user's sessions were terminated.",
        "created" => "Created.",
        "saved" => "Saved.",
        "deleted" => "Deleted.",
        "unlocked" => "The login lock was cleared.",
        "password" => "The password was changed; the user's sessions were ended.",
        "enabled" => "Enabled.",
        "disabled" => "Disabled.",
        "revoked" => "The role session was revoked.",
        _ => return None,
    })
}

pub fn notice_banner(uri: &axum::http::Uri) -> Markup {
    let code = query_param(uri.query(), "done").unwrap_or_default();
    html! {
        div id="notice" role="status" aria-live="polite" {
            @if let Some(n) = notice(&code) { p.notice { (n) } }
        }
    }
}

/// An error shown next to the field it names.
pub fn field_error(id: &str, error: Option<&str>) -> Markup {
    html! {
        @if let Some(e) = error {
            p id=(format!("{id}-error")) class="error" role="alert" { (e) }
        }
    }
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A redirect after a successful change (303, so a reload does not repeat the POST).
pub fn done(to: &str, code: &str) -> Response {
    let sep = if to.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{to}{sep}done={code}")).into_response()
}

/// An id parsed from a path segment, as the API parses it.
pub fn id<T: std::str::FromStr>(name: &str, raw: &str) -> Result<T, ApiError> {
    crate::extract::path_id(name, raw)
}
