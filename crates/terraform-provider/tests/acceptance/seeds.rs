//! The seeds' Terraform examples with `tessera` for `vultr` and `kong-gateway`: seed 001's
//! role, trust and session with `depends_on` created in one apply, seed 000's session on
//! existing objects by id, and seed 003's session plugin with every field. Placeholders are
//! replaced with valid values; each applies, plans nothing more, and destroys cleanly.

use reqwest::Method;
use serde_json::json;

use crate::{Server, Tf, terraform};

/// Seed 001 ("How to Assume a Role", Terraform tab), with the objects it refers to.
const SEED_001: &str = r#"
resource "tessera_user" "new_user" {
  email      = "new.user@example.com"
  first_name = "New"
  last_name  = "User"
  password   = "a long enough password"
}

resource "tessera_organization_policy" "my_policy" {
  name        = "assume-deploy"
  description = "What the deploy role may do"
  document {
    version = "2026-03-20"
    statement {
      effect    = "Allow"
      actions   = ["iam.role.Read", "iam.assumedrole.Read"]
      resources = ["*"]
    }
  }
}

resource "tessera_organization_role" "my_role" {
  name                 = "deploy"
  description          = "Assumable deploy role"
  type                 = "assumable"
  max_session_duration = 3600
  policies             = [tessera_organization_policy.my_policy.id]
}

resource "tessera_organization_role_trust" "my_role_trust" {
  role         = tessera_organization_role.my_role.id
  user         = tessera_user.new_user.id
  type         = "TemporaryAssumption"
  ip_range     = ["10.0.0.0/24"]
  hour_start   = 0
  hour_end     = 24
  date_expires = "2031-01-01T00:00:00Z"
}

resource "tessera_organization_role_session" "my_session" {
  user_id      = tessera_user.new_user.id
  role_id      = tessera_organization_role.my_role.id
  session_name = "deploy-session"
  duration     = 3600
  ip_address   = "10.0.0.1"

  depends_on = [tessera_organization_role_trust.my_role_trust]
}
"#;

/// Seed 000's example, on the user and role seed 001 made (by literal id, as in the seed).
fn seed_000(user: &str, role: &str) -> String {
    format!(
        r#"
resource "tessera_organization_role_session" "sss" {{
  user = "{user}"
  role = "{role}"
  session_name = "my-terraform-session"
  duration = 2300
  ip_address = "10.0.0.1"
}}
"#
    )
}

#[test]
fn seeds_000_and_001_apply_and_destroy() {
    let Some(tf_bin) = terraform() else { return };
    let server = Server::start();
    let tf = Tf::new(&tf_bin, &server, "seed-001");
    tf.config(SEED_001);
    let out = tf.apply();
    assert!(out.stdout.contains("tessera_organization_role_session.my_session: Creation complete"), "{}", out.stdout);
    assert!(out.stdout.contains("Resources: 5 added"), "{}", out.stdout);
    tf.assert_no_changes();

    let (user, role) = (tf.id("tessera_user.new_user"), tf.id("tessera_organization_role.my_role"));
    tf.file("seed_000.tf", &seed_000(&user, &role));
    let out = tf.apply();
    assert!(out.stdout.contains("Resources: 1 added"), "{}", out.stdout);
    tf.assert_no_changes();
    let sss = tf.attrs("tessera_organization_role_session.sss");
    assert_eq!((sss["user"].as_str(), sss["role"].as_str()), (Some(user.as_str()), Some(role.as_str())));
    assert_eq!((sss["duration"].as_f64(), sss["remaining_duration"].as_f64()), (Some(2300.0), Some(2300.0)));
    assert_eq!(sss["ip_address"], "10.0.0.1");
    let sessions =
        [tf.id("tessera_organization_role_session.my_session"), tf.id("tessera_organization_role_session.sss")];

    let out = tf.destroy();
    assert!(out.stdout.contains("Resources: 6 destroyed"), "{}", out.stdout);
    for s in sessions {
        let (_, v) = server.call(Method::GET, &format!("/v2/assumed-roles/{s}"), None);
        assert_eq!(v["assumed_role_session"]["status"], "Terminated", "{v}");
    }
    let (_, roles) = server.call(Method::GET, "/v2/roles", None);
    assert_eq!(roles["meta"]["total"], 0, "{roles}");
}

/// Seed 003's example: every field, placeholders made valid, the route and service its own.
/// Seed 003 as written (`true`), or as an import directory can hold it (`false`): without the
/// stamps, and without the secret, which is write-only and so cannot be imported (like a
/// user's password).
fn seed_003(as_written: bool) -> String {
    let stamps = if as_written { ("  created_at    = 1\n", "  updated_at = 4\n") } else { ("", "") };
    let secret = if as_written { "    secret          = \"my_secret\"\n" } else { "" };
    format!(
        r#"
resource "tessera_gateway_service" "my_service" {{
  name = "my-service"
  url  = "http://127.0.0.1:9000"
}}

resource "tessera_gateway_route" "my_route" {{
  name    = "my-route"
  paths   = ["/app"]
  service = {{ id = tessera_gateway_service.my_service.id }}
}}

resource "tessera_plugin_session" "my_pluginsession" {{
  config = {{
    absolute_timeout = 3.79
    audience         = "my_audience"
    bind = [
      "scheme"
    ]
    cookie_domain    = "example.com"
    cookie_http_only = false
    cookie_name      = "my_cookie_name"
    cookie_path      = "/my_cookie_path"
    cookie_same_site = "Strict"
    cookie_secure    = false
    hash_subject     = true
    idling_timeout   = 0.19
    logout_methods = [
      "GET"
    ]
    logout_post_arg           = "my_logout_post_arg"
    logout_query_arg          = "my_logout_query_arg"
    read_body_for_logout      = false
    remember                  = false
    remember_absolute_timeout = 4.46
    remember_cookie_name      = "my_remember_cookie_name"
    remember_rolling_timeout  = 6.15
    request_headers = [
      "id"
    ]
    response_headers = [
      "subject"
    ]
    rolling_timeout = 8.85
{secret}    stale_ttl       = 7.29
    storage         = "cookie"
    store_metadata  = true
  }}
{created_at}  enabled       = false
  id            = "3473c251-5b6c-4f45-b1ff-7ede735a366d"
  instance_name = "my_instance_name"
  ordering = {{
    after = {{
      access = [
        "..."
      ]
    }}
    before = {{
      access = [
        "..."
      ]
    }}
  }}
  partials = [
    {{
      id   = "0b8f1ae4-9c2e-4a77-9f0e-2f3c7d1e5a6b"
      name = "my_name"
      path = "my_path"
    }}
  ]
  protocols = [
    "wss"
  ]
  route = {{
    id = tessera_gateway_route.my_route.id
  }}
  service = {{
    id = tessera_gateway_service.my_service.id
  }}
  tags = [
    "..."
  ]
{updated_at}  workspace  = "747d1e5-8246-4f65-a939-b392f1ee17f8"
}}
"#,
        secret = secret,
        created_at = stamps.0,
        updated_at = stamps.1
    )
}

#[test]
fn seed_003_plugin_session_applies_imports_and_destroys() {
    let Some(tf_bin) = terraform() else { return };
    let server = Server::start();
    let tf = Tf::new(&tf_bin, &server, "seed-003");
    tf.config(&seed_003(true));
    let out = tf.apply();
    assert!(out.stdout.contains("Resources: 3 added"), "{}", out.stdout);
    tf.assert_no_changes();

    let id = "3473c251-5b6c-4f45-b1ff-7ede735a366d";
    let (_, p) = server.call(Method::GET, &format!("/v2/gateway/plugins/{id}"), None);
    let p = &p["plugin"];
    assert_eq!(p["config"]["absolute_timeout"], json!(3.79));
    assert!(p["config"]["secret"].is_null(), "the secret is write-only: {p}");
    let configured = tf.attrs("tessera_plugin_session.my_pluginsession");
    assert_eq!(configured["config"]["secret"], "my_secret", "the configured secret stays in the state");
    assert_eq!(p["ordering"], json!({"after": {"access": ["..."]}, "before": {"access": ["..."]}}));
    assert_eq!(p["workspace"], "747d1e5-8246-4f65-a939-b392f1ee17f8");
    assert_eq!(p["protocols"], json!(["wss"]));
    let state = tf.attrs("tessera_plugin_session.my_pluginsession");
    assert_eq!((state["created_at"].as_f64(), state["updated_at"].as_f64()), (Some(1.0), Some(4.0)));

    // Seed 003's import syntax: the JSON id with the workspace.
    let imported = Tf::new(&tf_bin, &server, "seed-003-import");
    imported.config(&seed_003(false));
    imported.import("tessera_gateway_service.my_service", &tf.id("tessera_gateway_service.my_service"));
    imported.import("tessera_gateway_route.my_route", &tf.id("tessera_gateway_route.my_route"));
    imported.import(
        "tessera_plugin_session.my_pluginsession",
        &format!(r#"{{"id": "{id}", "workspace": "747d1e5-8246-4f65-a939-b392f1ee17f8"}}"#),
    );
    imported.assert_no_changes();

    let out = tf.destroy();
    assert!(out.stdout.contains("Resources: 3 destroyed"), "{}", out.stdout);
    for kind in ["services", "routes", "plugins"] {
        let (_, list) = server.call(Method::GET, &format!("/v2/gateway/{kind}"), None);
        assert_eq!(list["meta"]["total"], 0, "{kind} left behind: {list}");
    }
}
