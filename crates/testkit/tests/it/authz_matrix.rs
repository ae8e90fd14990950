//! The authorization matrix, generated from the route table the router is built from
//! (`tessera_server::route_table`): every route × every kind of caller, over real HTTP.
//! No caller may get a 2xx its access does not allow, and every caller the table allows must
//! get one (so the matrix cannot pass by reaching nothing). A route added without a fixture
//! for its path or body fails here until it gets one.

use std::collections::HashMap;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tessera_api_types as wire;
use tessera_server::{Access, RouteSpec};
use tessera_testkit::{ADMIN_KEY, Backend, TestApp, allow, spawn_app};

const PASSWORD: &str = "correct horse battery staple";
/// The one action the narrow role allows.
const NARROW: &str = "iam.user.Read";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Anonymous,
    /// An API key of a user with no policy.
    NoPolicy,
    /// A role session whose role allows only [`NARROW`].
    NarrowRole,
    /// A login-session cookie of an administrator, with no same-origin proof.
    CookieNoProof,
    /// The bootstrap administrator's API key.
    Admin,
}

struct Caller {
    kind: Kind,
    token: Option<String>,
}

impl Caller {
    fn allows(&self, action: &str) -> bool {
        match self.kind {
            Kind::Anonymous | Kind::NoPolicy => false,
            Kind::NarrowRole => action == NARROW,
            Kind::CookieNoProof | Kind::Admin => true,
        }
    }
}

fn is_unsafe(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD" | "OPTIONS")
}

/// Whether the table lets `caller` get a 2xx from `route` (called from loopback, which may
/// ask forward-auth).
fn permitted(route: &RouteSpec, caller: &Caller) -> bool {
    let proof_missing = caller.kind == Kind::CookieNoProof && is_unsafe(route.method);
    match route.access {
        Access::Public => true,
        Access::Proxy => caller.kind != Kind::Anonymous,
        Access::Caller => caller.kind != Kind::Anonymous && !proof_missing,
        Access::Action(a) => caller.allows(a) && !proof_missing,
    }
}

async fn api(t: &TestApp, method: Method, path: &str, body: Value) -> Value {
    let (s, v) = t.admin.raw(method, path, Some(&body.to_string())).await.unwrap();
    assert!(s.is_success(), "fixture {path}: {s} {v}");
    v
}

/// An OIDC issuer with one inline Ed25519 key.
fn issuer_body() -> Value {
    json!({"uri": "https://issuer.example", "kty": "OKP", "crv": "Ed25519", "kid": "k",
        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})
}

/// The objects the routes' path parameters name, and the tokens of the callers.
struct World {
    ids: HashMap<&'static str, String>,
    victim_email: String,
    callers: Vec<Caller>,
}

async fn world(t: &TestApp) -> World {
    let mut ids = HashMap::new();
    // The victim objects every `{param}` points at.
    let victim = api(
        t,
        Method::POST,
        "/v2/users",
        json!({"email": "victim@example.com", "first_name": "V", "last_name": "", "password": PASSWORD}),
    )
    .await;
    let v = victim["user"]["id"].as_str().unwrap().to_owned();
    let key = api(t, Method::POST, &format!("/v2/users/{v}/apikeys"), json!({"name": "k"})).await;
    let group = api(t, Method::POST, "/v2/groups", json!({"display_name": "victims", "description": ""})).await;
    let g = group["group"]["id"].as_str().unwrap().to_owned();
    let policy = api(
        t,
        Method::POST,
        "/v2/policies",
        json!({"name": "victim-policy", "description": "", "policy_document": allow(&["iam.user.List"])}),
    )
    .await;
    let role = api(t, Method::POST, "/v2/roles", json!({"name": "victim-role", "role_type": "assumable"})).await;
    let r = role["role"]["id"].as_str().unwrap().to_owned();
    let trust = api(t, Method::POST, "/v2/role-trusts", json!({"role_id": r, "trusted_user_id": v})).await;
    // The administrator may assume it for itself (the STS endpoint assumes as the caller).
    api(t, Method::POST, "/v2/role-trusts", json!({"role_id": r, "trusted_user_id": t.admin_id})).await;
    let org = t.app.authenticate(ADMIN_KEY, None).await.unwrap().org_id.to_string();
    // Role assignments need an assignable role (the victim role is assumable).
    let assignable =
        api(t, Method::POST, "/v2/roles", json!({"name": "victim-assignable", "role_type": "assignable"})).await;
    let assignable = assignable["role"]["id"].as_str().unwrap().to_owned();
    let assumed =
        api(t, Method::POST, "/v2/assumed-roles/assume", json!({"user_id": v, "role_id": r, "session_name": "s"}))
            .await;
    let login = t
        .anonymous()
        .sign_in(&wire::SignInRequest {
            email: "victim@example.com".into(),
            password: PASSWORD.into(),
            organization_id: None,
        })
        .await
        .unwrap();
    let service =
        api(t, Method::POST, "/v2/gateway/services", json!({"name": "svc", "url": "http://127.0.0.1:9"})).await;
    let svc = service["service"]["id"].as_str().unwrap().to_owned();
    let route =
        api(t, Method::POST, "/v2/gateway/routes", json!({"name": "rt", "paths": ["/matrix"], "service": {"id": svc}}))
            .await;
    let rt = route["route"]["id"].as_str().unwrap().to_owned();
    // What creations hang from, so deleting the objects above never meets a reference.
    let spare =
        api(t, Method::POST, "/v2/gateway/services", json!({"name": "spare", "url": "http://127.0.0.1:9"})).await;
    let spare = spare["service"]["id"].as_str().unwrap().to_owned();
    let spare_route = api(
        t,
        Method::POST,
        "/v2/gateway/routes",
        json!({"name": "spare", "paths": ["/spare"], "service": {"id": spare}}),
    )
    .await;
    let spare_route = spare_route["route"]["id"].as_str().unwrap().to_owned();
    let plugin = api(
        t,
        Method::POST,
        "/v2/gateway/plugins",
        json!({"name": "session", "route": {"id": rt}, "config": {"cookie_secure": false}}),
    )
    .await;
    let ca_pem = crate::gateway_tls::Ca::new("matrix CA").pem();
    let ca = api(t, Method::POST, "/v2/gateway/ca_certificates", json!({"cert": ca_pem})).await;
    // Inline keys: reading the issuer's keys never leaves the machine.
    let issuer = api(t, Method::POST, "/v2/oidc/issuer", issuer_body()).await;
    for (name, value) in [
        ("issuer_id", issuer["id"].as_str().unwrap().to_owned()),
        ("user_id", v.clone()),
        ("apikey_id", key["api_key"]["id"].as_str().unwrap().to_owned()),
        ("group_id", g),
        ("policy_id", policy["policy"]["id"].as_str().unwrap().to_owned()),
        ("role_id", r),
        ("role_trust_id", trust["role_trust"]["id"].as_str().unwrap().to_owned()),
        ("session_id", assumed["assumed_role_session"]["id"].as_str().unwrap().to_owned()),
        ("moid", login.session.moid.clone()),
        ("service", svc),
        ("route", rt),
        ("plugin", plugin["plugin"]["id"].as_str().unwrap().to_owned()),
        ("spare_service", spare),
        ("spare_route", spare_route),
        ("org_id", org),
        ("assignable_role_id", assignable),
        ("ca_certificate", ca["ca_certificate"]["id"].as_str().unwrap().to_owned()),
        ("ca_pem", ca_pem),
    ] {
        ids.insert(name, value);
    }

    // The callers.
    let nobody =
        api(t, Method::POST, "/v2/users", json!({"email": "nobody@example.com", "first_name": "N", "last_name": ""}))
            .await;
    let nobody_key = api(
        t,
        Method::POST,
        &format!("/v2/users/{}/apikeys", nobody["user"]["id"].as_str().unwrap()),
        json!({"name": "m"}),
    )
    .await["api_key"]["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let narrow = narrow_role_session(t).await;
    let (boss, _) = t.user_with_policy("boss@example.com", Some(allow(&["*"]))).await;
    api(t, Method::PATCH, &format!("/v2/users/{}", boss.id), json!({"password": PASSWORD})).await;
    let boss_login = t
        .anonymous()
        .sign_in(&wire::SignInRequest {
            email: "boss@example.com".into(),
            password: PASSWORD.into(),
            organization_id: None,
        })
        .await
        .unwrap();
    let callers = vec![
        Caller { kind: Kind::Anonymous, token: None },
        Caller { kind: Kind::NoPolicy, token: Some(nobody_key) },
        Caller { kind: Kind::NarrowRole, token: Some(narrow) },
        Caller { kind: Kind::CookieNoProof, token: Some(boss_login.token) },
        Caller { kind: Kind::Admin, token: Some(ADMIN_KEY.into()) },
    ];
    World { ids, victim_email: "victim@example.com".into(), callers }
}

/// A role session of a role that allows only [`NARROW`], assumed by a user trusted for it.
async fn narrow_role_session(t: &TestApp) -> String {
    let (assumer, client) = t.user_with_policy("assumer@example.com", Some(allow(&["iam.role.AssumeRole"]))).await;
    let role = api(t, Method::POST, "/v2/roles", json!({"name": "narrow", "role_type": "assumable"})).await;
    let r = role["role"]["id"].as_str().unwrap().to_owned();
    let p = api(
        t,
        Method::POST,
        "/v2/policies",
        json!({"name": "narrow", "description": "", "policy_document": allow(&[NARROW])}),
    )
    .await;
    let p = p["policy"]["id"].as_str().unwrap();
    api(t, Method::POST, &format!("/v2/roles/{r}/policies/{p}"), json!({})).await;
    api(t, Method::POST, "/v2/role-trusts", json!({"role_id": r, "trusted_user_id": assumer.id})).await;
    let session = client
        .assume_role(&wire::AssumeRequest {
            user_id: assumer.id.clone(),
            role_id: r,
            session_name: "matrix".into(),
            auth_method: None,
            duration: None,
            ip_address: None,
            context: None,
            oidc_issuer_id: None,
            policy: None,
        })
        .await
        .unwrap();
    session.session_token.unwrap()
}

/// The concrete path of a route, its `{params}` filled from the world.
fn concrete(route: &RouteSpec, w: &World) -> String {
    let mut out = String::new();
    for segment in route.path.split('/').skip(1) {
        out.push('/');
        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            // Gateway objects share `{id}`: the collection names the kind.
            Some("id") => {
                let kind = route.path.split('/').nth(3).unwrap().trim_end_matches('s');
                out.push_str(w.ids.get(kind).unwrap_or_else(|| panic!("no fixture for {} {{id}}", route.path)));
            }
            // A role's assignments are to an assignable role.
            Some("role_id")
                if route.path.starts_with("/v2/roles/{role_id}/users")
                    || route.path.starts_with("/v2/roles/{role_id}/groups") =>
            {
                out.push_str(&w.ids["assignable_role_id"])
            }
            Some(param) => {
                out.push_str(w.ids.get(param).unwrap_or_else(|| panic!("no fixture for {{{param}}} in {}", route.path)))
            }
            None => out.push_str(segment),
        }
    }
    if route.path == "/v2/auth/check" {
        out.push_str("?action=iam.user.Delete");
    }
    out
}

/// A valid body for each route that takes one; `n` keeps created names unique.
fn body(route: &RouteSpec, w: &World, n: usize) -> Option<(String, &'static str)> {
    let ids = &w.ids;
    let json = |v: Value| Some((v.to_string(), "application/json"));
    match (route.method, route.path) {
        ("POST", "/v2/users") => {
            json(json!({"email": format!("new{n}@example.com"), "first_name": "N", "last_name": ""}))
        }
        ("PATCH", "/v2/users/{user_id}") => json(json!({"first_name": format!("V{n}")})),
        ("POST", "/v2/users/{user_id}/apikeys") => json(json!({"name": format!("k{n}")})),
        ("POST", "/v2/groups") => json(json!({"display_name": format!("g{n}"), "description": ""})),
        ("PUT", "/v2/groups/{group_id}") => json(json!({"display_name": "victims", "description": format!("{n}")})),
        ("POST", "/v2/groups/{group_id}/members") => json(json!({"user_id": ids["user_id"]})),
        ("POST", "/v2/policies") => {
            json(json!({"name": format!("p{n}"), "description": "", "policy_document": allow(&["iam.user.List"])}))
        }
        ("PUT", "/v2/policies/{policy_id}") => json(
            json!({"name": "victim-policy", "description": format!("{n}"), "policy_document": allow(&["iam.user.List"])}),
        ),
        ("POST", "/v2/roles") => json(json!({"name": format!("r{n}"), "role_type": "assumable"})),
        ("PUT", "/v2/roles/{role_id}") => {
            json(json!({"name": "victim-role", "role_type": "assumable", "description": format!("{n}")}))
        }
        ("POST", "/v2/role-trusts") | ("PUT", "/v2/role-trusts/{role_trust_id}") => {
            json(json!({"role_id": ids["role_id"], "trusted_user_id": ids["user_id"]}))
        }
        ("POST", "/v2/assumed-roles/assume") => {
            json(json!({"user_id": ids["user_id"], "role_id": ids["role_id"], "session_name": format!("m{n}")}))
        }
        ("POST", "/v2/assumed-roles/compatibility/aws/sts") => Some((
            format!(
                "Action=AssumeRole&RoleArn=arn:aws:iam::{}:role/{}&RoleSessionName=m{n}",
                ids["org_id"], ids["role_id"]
            ),
            "application/x-www-form-urlencoded",
        )),
        ("POST", "/v2/oidc/issuer") => json(json!({"uri": format!("https://issuer{n}.example")})),
        ("PATCH", "/v2/oidc/issuer/{issuer_id}") => json(issuer_body()),
        ("POST", "/v2/sessions") => json(json!({"email": w.victim_email, "password": PASSWORD})),
        ("PUT", "/v2/iam/session-limits") => {
            json(json!({"idle_timeout": 1800, "absolute_timeout": 57600, "max_sessions_per_user": 32}))
        }
        ("POST", "/v2/oauth2/introspect") => {
            Some(("token=tessera_ls_unknown".into(), "application/x-www-form-urlencoded"))
        }
        ("POST", "/v2/gateway/services") => json(json!({"name": format!("svc{n}"), "url": "http://127.0.0.1:9"})),
        ("PUT" | "PATCH", "/v2/gateway/services/{id}") => json(json!({"name": "svc", "url": "http://127.0.0.1:9"})),
        ("POST", "/v2/gateway/routes") => json(
            json!({"name": format!("rt{n}"), "paths": [format!("/m{n}")], "service": {"id": ids["spare_service"]}}),
        ),
        ("PUT" | "PATCH", "/v2/gateway/routes/{id}") => {
            json(json!({"name": "rt", "paths": ["/matrix"], "service": {"id": ids["service"]}}))
        }
        ("POST", "/v2/gateway/plugins") => {
            json(json!({"name": "session", "route": {"id": ids["spare_route"]}, "config": {"cookie_secure": false}}))
        }
        ("PUT" | "PATCH", "/v2/gateway/plugins/{id}") => {
            json(json!({"name": "session", "route": {"id": ids["route"]}, "config": {"cookie_secure": false}}))
        }
        // Each create a CA of its own (digests are unique); a replace keeps the fixture's.
        ("POST", "/v2/gateway/ca_certificates") => json(json!({"cert": crate::gateway_tls::Ca::new("m").pem()})),
        ("PUT" | "PATCH", "/v2/gateway/ca_certificates/{id}") => json(json!({"cert": ids["ca_pem"]})),
        _ => None,
    }
}

/// Deletions run last, leaves before what they hang from, and signing out very last.
fn order(route: &RouteSpec) -> usize {
    const DELETES: &[&str] = &[
        "/v2/users/{user_id}/apikeys/{apikey_id}",
        "/v2/groups/{group_id}/members/{user_id}",
        "/v2/policies/{policy_id}/users/{user_id}",
        "/v2/policies/{policy_id}/groups/{group_id}",
        "/v2/roles/{role_id}/policies/{policy_id}",
        "/v2/assumed-roles/{session_id}",
        "/v2/iam/sessions/{moid}",
        "/v2/users/{user_id}/sessions",
        "/v2/users/{user_id}/login-lock",
        "/v2/role-trusts/{role_trust_id}",
        "/v2/gateway/plugins/{id}",
        "/v2/gateway/routes/{id}",
        "/v2/gateway/services/{id}",
        "/v2/gateway/ca_certificates/{id}",
        "/v2/groups/{group_id}",
        "/v2/policies/{policy_id}",
        "/v2/roles/{role_id}",
        "/v2/users/{user_id}",
        "/v2/sessions/current",
    ];
    match route.method {
        "DELETE" => 1 + DELETES.iter().position(|p| *p == route.path).unwrap_or(0),
        _ => 0,
    }
}

async fn every_route_refuses_every_caller_its_access_does_not_allow(backend: Backend) {
    let t = spawn_app(backend).await;
    let w = world(&t).await;
    let mut routes = tessera_server::route_table();
    routes.sort_by_key(order);
    let http = reqwest::Client::new();
    let mut violations = vec![];
    let mut checked = 0;
    for (n, route) in routes.iter().enumerate() {
        let path = concrete(route, &w);
        let method = if route.method == "ANY" { "GET" } else { route.method };
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        // The administrator goes last, so its deletions do not hide the others' answers.
        for caller in &w.callers {
            let mut req = http.request(method.clone(), format!("{}{path}", t.url));
            req = match (&caller.token, caller.kind) {
                (None, _) => req,
                (Some(token), Kind::CookieNoProof) => req.header("cookie", format!("tessera_session={token}")),
                (Some(token), _) => req.bearer_auth(token),
            };
            if let Some((b, content_type)) = body(route, &w, n) {
                req = req.header("content-type", content_type).body(b);
            }
            let res = req.send().await.unwrap();
            let status = res.status();
            let answer: Value = res.json().await.unwrap_or(Value::Null);
            checked += 1;
            let ok = permitted(route, caller);
            let what = format!("{:?} {} {} → {status} {answer}", caller.kind, route.method, route.path);
            if status.is_success() && !ok {
                violations.push(format!("WRONG 2xx: {what}"));
            }
            let must_succeed = ok && matches!(route.access, Access::Action(_) | Access::Public);
            if must_succeed && !status.is_success() {
                violations.push(format!("allowed but refused (the matrix reached nothing): {what}"));
            }
            if !ok {
                let expected = match (caller.kind, route.access) {
                    (Kind::Anonymous, _) => StatusCode::UNAUTHORIZED,
                    (Kind::CookieNoProof, _) => StatusCode::FORBIDDEN,
                    (_, Access::Action(_)) => StatusCode::FORBIDDEN,
                    _ => status,
                };
                if status != expected {
                    violations.push(format!("expected {expected}: {what}"));
                }
                if caller.kind == Kind::CookieNoProof && answer["error"]["code"] != "cross_site_request" {
                    violations.push(format!("expected the CSRF refusal: {what}"));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "{} of {checked} calls broke the matrix:\n{}",
        violations.len(),
        violations.join("\n")
    );
    assert!(checked >= 80 * 5, "the matrix checked only {checked} calls");
    every_change_and_every_denial_is_in_the_audit_trail(&t, &routes).await;
}

/// Routes that take a body or an unsafe method but change nothing.
const NOT_CHANGES: &[&str] = &["/v2/oauth2/introspect", "/v2/auth/forward"];

/// The audit trail after the matrix: each unsafe route the administrator called left a
/// `success` event named by its action, and each refused caller with a token a `denied` one.
/// Generated from the same table, so a new route that changes state without recording it
/// fails here.
async fn every_change_and_every_denial_is_in_the_audit_trail(t: &TestApp, routes: &[RouteSpec]) {
    let (code, v) = t.admin.raw(Method::GET, "/v2/audit-events?$top=1000", None).await.unwrap();
    assert_eq!(code, StatusCode::OK, "{v}");
    let seen: std::collections::HashSet<(String, String)> = v["Results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap().to_owned(), e["result"].as_str().unwrap().to_owned()))
        .collect();
    let mut missing = vec![];
    for route in routes.iter().filter(|r| is_unsafe(r.method) && !NOT_CHANGES.contains(&r.path)) {
        let Access::Action(action) = route.access else { continue };
        for result in ["success", "denied"] {
            if !seen.contains(&(action.to_owned(), result.to_owned())) {
                missing.push(format!("{} {} ({action}, {result})", route.method, route.path));
            }
        }
    }
    for action in ["iam.session.SignIn", "iam.session.SignOut"] {
        if !seen.contains(&(action.to_owned(), "success".to_owned())) {
            missing.push(format!("{action} success"));
        }
    }
    assert!(missing.is_empty(), "changes without their audit event:\n{}", missing.join("\n"));
}

tessera_testkit::both_backends!(every_route_refuses_every_caller_its_access_does_not_allow);
