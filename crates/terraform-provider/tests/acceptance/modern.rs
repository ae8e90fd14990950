//! The same provider under Terraform 1.15.5 (stricter schema checks, `import {}` blocks):
//! apply, plan nothing, import everything with `import` blocks into a fresh state, destroy.

use crate::{Server, Tf, terraform_1_15};

const CONFIG: &str = r#"
resource "tessera_user" "u" {
  email      = "modern@example.com"
  first_name = "Mo"
}

resource "tessera_group" "g" {
  name    = "modern"
  members = [tessera_user.u.id]
}

resource "tessera_organization_policy" "p" {
  name = "modern-read"
  document {
    statement {
      effect    = "Allow"
      actions   = ["iam.role.Read"]
      resources = ["*"]
    }
  }
}

resource "tessera_organization_role" "r" {
  name     = "modern"
  type     = "assumable"
  policies = [tessera_organization_policy.p.id]
}

resource "tessera_organization_role_trust" "t" {
  role     = tessera_organization_role.r.id
  group    = tessera_group.g.id
  ip_range = ["10.0.0.0/8"]
}

resource "tessera_organization_role_session" "s" {
  user_id      = tessera_user.u.id
  role_id      = tessera_organization_role.r.id
  session_name = "modern"
  ip_address   = "10.1.2.3"
  depends_on   = [tessera_organization_role_trust.t]
}

resource "tessera_gateway_service" "svc" {
  url = "http://127.0.0.1:9000"
}

resource "tessera_gateway_route" "rt" {
  paths   = ["/m"]
  service = { id = tessera_gateway_service.svc.id }
}

resource "tessera_plugin_session" "ps" {
  route = { id = tessera_gateway_route.rt.id }
  config = {
    cookie_name     = "modern"
    absolute_timeout = 3.79
    bind            = ["ip"]
  }
  ordering = { before = { access = ["x"] } }
  partials = [{ id = "0b8f1ae4-9c2e-4a77-9f0e-2f3c7d1e5a6b", name = "p" }]
}
"#;

const ADDRESSES: &[&str] = &[
    "tessera_user.u",
    "tessera_group.g",
    "tessera_organization_policy.p",
    "tessera_organization_role.r",
    "tessera_organization_role_trust.t",
    "tessera_organization_role_session.s",
    "tessera_gateway_service.svc",
    "tessera_gateway_route.rt",
    "tessera_plugin_session.ps",
];

#[test]
fn terraform_1_15_applies_imports_with_import_blocks_and_destroys() {
    let Some(tf_bin) = terraform_1_15() else { return };
    let server = Server::start();
    let tf = Tf::new(&tf_bin, &server, "tf1.15");
    tf.config(CONFIG);
    tf.ok(&["validate", "-no-color"]);
    tf.apply();
    tf.assert_no_changes();

    let imported = Tf::new(&tf_bin, &server, "tf1.15-import");
    let blocks: String =
        ADDRESSES.iter().map(|a| format!("import {{\n  to = {a}\n  id = \"{}\"\n}}\n", tf.id(a))).collect();
    imported.config(&format!("{CONFIG}\n{blocks}"));
    let plan = imported.assert_changes();
    assert!(plan.contains("Plan: 9 to import, 0 to add, 0 to change, 0 to destroy"), "{plan}");
    let out = imported.apply();
    assert!(out.stdout.contains("Resources: 9 imported, 0 added, 0 changed, 0 destroyed"), "{}", out.stdout);
    imported.assert_no_changes();

    let out = tf.destroy();
    assert!(out.stdout.contains("Resources: 9 destroyed"), "{}", out.stdout);
}
