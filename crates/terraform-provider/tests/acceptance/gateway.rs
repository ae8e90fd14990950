//! The gateway resources end to end: services, routes and the session plugin.

use reqwest::Method;
use serde_json::json;

use crate::{Server, Tf, terraform};

fn gateway_config(v: u8) -> String {
    let (url, methods, cookie, enabled, tags) = match v {
        1 => ("http://127.0.0.1:9000/api", r#"["get", "post"]"#, "portal", "true", r#"["edge"]"#),
        _ => ("http://127.0.0.1:9001", r#"["GET"]"#, "portal_v2", "false", "null"),
    };
    format!(
        r#"
resource "tessera_gateway_service" "app" {{
  name = "app"
  url  = "{url}"
  tags = {tags}
}}

resource "tessera_gateway_route" "app" {{
  name    = "app"
  paths   = ["/app"]
  methods = {methods}
  service = {{ id = tessera_gateway_service.app.id }}
}}

resource "tessera_plugin_session" "app" {{
  instance_name = "app-session"
  enabled       = {enabled}
  route         = {{ id = tessera_gateway_route.app.id }}
  config = {{
    cookie_name     = "{cookie}"
    idling_timeout  = 0.19
    rolling_timeout = 600
    logout_methods  = ["POST"]
    unauthenticated = "redirect"
  }}
}}
"#
    )
}

#[test]
fn gateway_resources_plan_apply_update_import_destroy() {
    let Some(tf_bin) = terraform() else { return };
    let server = Server::start();
    let tf = Tf::new(&tf_bin, &server, "gateway");
    tf.config(&gateway_config(1));
    let plan = tf.assert_changes();
    assert!(plan.contains("Plan: 3 to add, 0 to change, 0 to destroy"), "{plan}");
    tf.apply();
    tf.assert_no_changes();

    let service_id = tf.id("tessera_gateway_service.app");
    let plugin_id = tf.id("tessera_plugin_session.app");
    let (_, s) = server.call(Method::GET, &format!("/v2/gateway/services/{service_id}"), None);
    assert_eq!((s["service"]["host"].as_str(), s["service"]["port"].as_i64()), (Some("127.0.0.1"), Some(9000)));
    let service = tf.attrs("tessera_gateway_service.app");
    assert_eq!(service["path"], "/api", "url parts are computed: {service}");
    let (_, p) = server.call(Method::GET, &format!("/v2/gateway/plugins/{plugin_id}"), None);
    // The secret is write-only: it reads as null (crates/testkit's gateway tests check that a
    // cookie sealed before an update still opens after it, i.e. the secret survives).
    assert!(p["plugin"]["config"]["secret"].is_null(), "the secret is never read back: {p}");
    assert_eq!(p["plugin"]["config"]["idling_timeout"], json!(0.19));
    assert_eq!(p["plugin"]["config"]["cookie_same_site"], "Strict", "unset fields take Kong's defaults");
    let route = tf.attrs("tessera_gateway_route.app");
    assert_eq!(route["methods"], json!(["get", "post"]), "the configured spelling stays in the state");

    // Update in place: a new url (new computed parts), methods, the plugin's config.
    tf.config(&gateway_config(2));
    let plan = tf.assert_changes();
    assert!(plan.contains("Plan: 0 to add, 3 to change, 0 to destroy"), "{plan}");
    tf.apply();
    tf.assert_no_changes();
    let (_, s) = server.call(Method::GET, &format!("/v2/gateway/services/{service_id}"), None);
    assert_eq!((s["service"]["port"].as_i64(), s["service"]["path"].as_str()), (Some(9001), None));
    let (_, p) = server.call(Method::GET, &format!("/v2/gateway/plugins/{plugin_id}"), None);
    assert_eq!(p["plugin"]["config"]["cookie_name"], "portal_v2");
    assert_eq!(p["plugin"]["enabled"], false);
    assert!(p["plugin"]["config"]["secret"].is_null(), "the secret is never read back: {p}");

    // Import into a fresh state: no changes.
    let imported = Tf::new(&tf_bin, &server, "gateway-import");
    imported.config(&gateway_config(2));
    for address in ["tessera_gateway_service.app", "tessera_gateway_route.app", "tessera_plugin_session.app"] {
        imported.import(address, &tf.id(address));
    }
    imported.assert_no_changes();

    let out = tf.destroy();
    assert!(out.stdout.contains("Resources: 3 destroyed"), "{}", out.stdout);
    for kind in ["services", "routes", "plugins"] {
        let (_, list) = server.call(Method::GET, &format!("/v2/gateway/{kind}"), None);
        assert_eq!(list["meta"]["total"], 0, "{kind} left behind: {list}");
    }
    let plan = imported.assert_changes();
    assert!(plan.contains("Plan: 3 to add, 0 to change, 0 to destroy"), "{plan}");
}
