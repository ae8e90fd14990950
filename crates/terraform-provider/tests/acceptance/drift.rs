//! Changes made outside Terraform: drift shows in the plan, and objects deleted through the
//! API leave the state on refresh (the plan creates them again) instead of failing.

use reqwest::Method;
use serde_json::json;

use crate::{Server, Tf, terraform};

const CONFIG: &str = r#"
resource "tessera_user" "bob" {
  email      = "bob@example.com"
  first_name = "Bob"
}

resource "tessera_group" "ops" {
  name        = "ops"
  description = "Operators"
}

resource "tessera_organization_role" "deploy" {
  name                 = "deploy"
  type                 = "assumable"
  max_session_duration = 7200
}

resource "tessera_organization_role_trust" "bob" {
  role     = tessera_organization_role.deploy.id
  user     = tessera_user.bob.id
  ip_range = ["10.0.0.0/8"]
}

resource "tessera_gateway_service" "app" {
  host = "127.0.0.1"
  port = 9000
}

resource "tessera_plugin_session" "global" {
  config = {
    cookie_name = "portal"
    remember    = true
  }
}
"#;

#[test]
fn drift_is_planned_and_objects_deleted_outside_terraform_are_recreated() {
    let Some(tf_bin) = terraform() else { return };
    let server = Server::start();
    let tf = Tf::new(&tf_bin, &server, "drift");
    tf.config(CONFIG);
    tf.apply();
    tf.assert_no_changes();

    let id = |a: &str| tf.id(a);
    let (user, group, role, trust, service, plugin) = (
        id("tessera_user.bob"),
        id("tessera_group.ops"),
        id("tessera_organization_role.deploy"),
        id("tessera_organization_role_trust.bob"),
        id("tessera_gateway_service.app"),
        id("tessera_plugin_session.global"),
    );
    let changes: Vec<(Method, String, serde_json::Value)> = vec![
        (Method::PATCH, format!("/v2/users/{user}"), json!({"first_name": "Mallory"})),
        (Method::PUT, format!("/v2/groups/{group}"), json!({"display_name": "ops", "description": "changed"})),
        (
            Method::PUT,
            format!("/v2/roles/{role}"),
            json!({"name": "deploy", "role_type": "assumable", "max_session_duration": 900}),
        ),
        (
            Method::PUT,
            format!("/v2/role-trusts/{trust}"),
            json!({"role_id": role, "trusted_user_id": user, "conditions": {"ip_address": ["0.0.0.0/0"]}}),
        ),
        (Method::PATCH, format!("/v2/gateway/services/{service}"), json!({"port": 9999})),
        (Method::PATCH, format!("/v2/gateway/plugins/{plugin}"), json!({"config": {"cookie_name": "hijacked"}})),
    ];
    for (method, path, body) in changes {
        let (status, answer) = server.call(method, &path, Some(body));
        assert_eq!(status, 200, "{path}: {answer}");
    }
    let plan = tf.assert_changes();
    assert!(plan.contains("Plan: 0 to add, 6 to change, 0 to destroy"), "{plan}");
    for expected in [
        r#"~ first_name   = "Mallory" -> "Bob""#,
        r#"~ description  = "changed" -> "Operators""#,
        "~ max_session_duration = 900 -> 7200",
        r#"- "0.0.0.0/0","#,
        "~ port",
        r#"~ cookie_name = "hijacked" -> "portal""#,
    ] {
        assert!(plan.contains(expected), "the plan does not show {expected:?}:\n{plan}");
    }
    tf.apply();
    tf.assert_no_changes();
    let (_, p) = server.call(Method::GET, &format!("/v2/gateway/plugins/{plugin}"), None);
    assert_eq!(p["plugin"]["config"]["cookie_name"], "portal");

    // Deleted outside Terraform: gone from the state on refresh, planned anew, no error.
    for path in [
        format!("/v2/groups/{group}"),
        format!("/v2/role-trusts/{trust}"),
        format!("/v2/gateway/plugins/{plugin}"),
        format!("/v2/gateway/services/{service}"),
    ] {
        assert_eq!(server.call(Method::DELETE, &path, None).0, 204, "{path}");
    }
    let plan = tf.assert_changes();
    assert!(plan.contains("Plan: 4 to add, 0 to change, 0 to destroy"), "{plan}");
    assert!(!plan.contains("Error"), "{plan}");
    tf.apply();
    tf.assert_no_changes();
    tf.destroy();
}
