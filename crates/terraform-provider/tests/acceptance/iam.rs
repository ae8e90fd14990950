//! The IAM resources end to end: users, groups, policies, roles, trusts and role sessions.

use reqwest::Method;
use serde_json::json;

use crate::{Server, Tf, terraform};

/// Every IAM resource; `v` selects the first configuration or the updated one.
fn iam_config(v: u8, with_password: bool) -> String {
    let password = if with_password { r#"password   = "correct horse battery""# } else { "" };
    let (last, group_desc, members, role_max, role_policies, trust_extra, session_name) = match v {
        1 => (
            "Lee",
            "Operators",
            "[tessera_user.ann.id]",
            "7200",
            "[tessera_organization_policy.read.id]",
            r#"ip_range = ["127.0.0.1", "192.168.7.9/16"]
  hour_start = 9
  hour_end   = 17
  date_expires = "2031-01-01T01:00:00+01:00""#,
            "ci",
        ),
        _ => ("Lee-Smith", "Operators on call", "[]", "3600", "[]", "", "ci-2"),
    };
    let extra_statement = if v == 1 {
        ""
    } else {
        r#"
    statement {
      effect    = "Deny"
      actions   = ["iam.role.Delete"]
      resources = ["*"]
    }"#
    };
    format!(
        r#"
resource "tessera_user" "ann" {{
  email      = "Ann@Example.com"
  first_name = "Ann"
  last_name  = "{last}"
  {password}
}}

resource "tessera_group" "ops" {{
  name        = "ops"
  description = "{group_desc}"
  members     = {members}
}}

resource "tessera_organization_policy" "read" {{
  name        = "read-roles"
  description = "Read roles"
  document {{
    version = "2026-03-20"
    statement {{
      effect    = "allow"
      actions   = ["iam.role.Read", "iam.role.List"]
      resources = ["*"]
    }}{extra_statement}
  }}
}}

resource "tessera_organization_role" "deploy" {{
  name                 = "deploy"
  description          = "Deployments"
  type                 = "assumable"
  max_session_duration = {role_max}
  policies             = {role_policies}
}}

resource "tessera_organization_role_trust" "ann" {{
  role = tessera_organization_role.deploy.id
  user = tessera_user.ann.id
  {trust_extra}
}}

resource "tessera_organization_role_session" "s" {{
  user         = tessera_user.ann.id
  role         = tessera_organization_role.deploy.id
  session_name = "{session_name}"
  duration     = 1800
  ip_address   = "127.0.0.1"
  depends_on   = [tessera_organization_role_trust.ann]
}}
"#
    )
}

const ADDRESSES: &[&str] = &[
    "tessera_user.ann",
    "tessera_group.ops",
    "tessera_organization_policy.read",
    "tessera_organization_role.deploy",
    "tessera_organization_role_trust.ann",
    "tessera_organization_role_session.s",
];

#[test]
fn iam_resources_plan_apply_update_import_destroy() {
    let Some(tf_bin) = terraform() else { return };
    let server = Server::start();
    let tf = Tf::new(&tf_bin, &server, "iam");
    tf.config(&iam_config(1, true));
    tf.file(
        "outputs.tf",
        "output \"token\" {\n  value     = tessera_organization_role_session.s.token\n  sensitive = true\n}\n",
    );

    let plan = tf.assert_changes();
    assert!(plan.contains("Plan: 6 to add, 0 to change, 0 to destroy"), "{plan}");
    assert!(plan.contains("(sensitive value)"), "the password and token are sensitive:\n{plan}");
    tf.apply();
    tf.assert_no_changes();

    // What the API holds is what was written (in the server's normal forms).
    let user = tf.attrs("tessera_user.ann");
    assert_eq!(user["email"], "Ann@Example.com", "the configured spelling stays in the state");
    let (_, u) = server.call(Method::GET, &format!("/v2/users/{}", user["id"].as_str().unwrap()), None);
    assert_eq!(u["user"]["email"], "ann@example.com");
    let trust_id = tf.id("tessera_organization_role_trust.ann");
    let (_, t) = server.call(Method::GET, &format!("/v2/role-trusts/{trust_id}"), None);
    assert_eq!(t["role_trust"]["conditions"]["ip_address"], json!(["127.0.0.1/32", "192.168.0.0/16"]));
    assert_eq!(t["role_trust"]["conditions"]["time_of_day"], json!({"start": 9, "end": 17}));
    assert_eq!(t["role_trust"]["valid_until"], "2031-01-01T00:00:00Z");
    let role_id = tf.id("tessera_organization_role.deploy");
    let (_, p) = server.call(Method::GET, &format!("/v2/roles/{role_id}/policies"), None);
    assert_eq!(p["policies"].as_array().unwrap().len(), 1);

    // The session's token acts with the role's policies.
    let token = tf.output("token");
    let token = token.as_str().expect("token");
    assert!(token.starts_with("tessera_rs_"), "{token}");
    let session = tf.attrs("tessera_organization_role_session.s");
    assert_eq!(session["user_id"], session["user"], "user and user_id are one argument");
    assert_eq!(session["status"], "Active");
    assert_eq!(session["conditions_met"], json!(["valid_until", "ip_address", "time_of_day"]));
    let as_role = server.app().client(token);
    let role = server.block(as_role.get_role(&role_id)).expect("the role session reads the role");
    assert_eq!(role.name, "deploy");
    assert!(server.block(as_role.get_user(user["id"].as_str().unwrap())).is_err(), "and nothing else");

    // Update in place: names, descriptions, membership emptied, attachments detached, a
    // statement added, the trust's address and hour conditions cleared. The session's new
    // name replaces it.
    let old_session = tf.id("tessera_organization_role_session.s");
    tf.config(&iam_config(2, true));
    let plan = tf.assert_changes();
    assert!(plan.contains("Plan: 1 to add, 5 to change, 1 to destroy"), "{plan}");
    assert!(plan.contains("# tessera_organization_role_session.s must be replaced"), "{plan}");
    assert!(!plan.contains("tessera_organization_role_trust.ann must be replaced"), "{plan}");
    tf.apply();
    tf.assert_no_changes();
    let (_, t) = server.call(Method::GET, &format!("/v2/role-trusts/{trust_id}"), None);
    assert_eq!(t["role_trust"]["conditions"], json!({"ip_address": []}), "ip_range and hours cleared");
    assert_eq!(t["role_trust"]["valid_until"], json!(null));
    let (_, m) = server.call(Method::GET, &format!("/v2/groups/{}/members", tf.id("tessera_group.ops")), None);
    assert_eq!(m["members"], json!([]));
    let (_, p) = server.call(Method::GET, &format!("/v2/roles/{role_id}/policies"), None);
    assert_eq!(p["policies"], json!([]));
    let (_, old) = server.call(Method::GET, &format!("/v2/assumed-roles/{old_session}"), None);
    assert_eq!(old["assumed_role_session"]["status"], "Terminated", "the replaced session was revoked");

    // Import every object into a fresh state: the same configuration then plans nothing (the
    // password cannot be read back, so the import directory's configuration leaves it out).
    let imported = Tf::new(&tf_bin, &server, "iam-import");
    imported.config(&iam_config(2, false));
    for address in ADDRESSES {
        imported.import(address, &tf.id(address));
    }
    imported.assert_no_changes();
    let session = imported.attrs("tessera_organization_role_session.s");
    assert_eq!(session["token"], json!(null), "the token is not readable after an import");

    // Destroy: everything goes, the session is revoked.
    let new_session = tf.id("tessera_organization_role_session.s");
    let out = tf.destroy();
    assert!(out.stdout.contains("Resources: 6 destroyed"), "{}", out.stdout);
    for path in [
        format!("/v2/users/{}", user["id"].as_str().unwrap()),
        format!("/v2/roles/{role_id}"),
        format!("/v2/role-trusts/{trust_id}"),
    ] {
        assert_eq!(server.call(Method::GET, &path, None).0, 404, "{path} still exists");
    }
    let (_, s) = server.call(Method::GET, &format!("/v2/assumed-roles/{new_session}"), None);
    assert_eq!(s["assumed_role_session"]["status"], "Terminated", "destroy revokes the session: {s}");

    // The import directory's objects are gone outside its Terraform: they leave its state on
    // refresh and the plan creates them again, without an error.
    let plan = imported.assert_changes();
    assert!(plan.contains("Plan: 6 to add, 0 to change, 0 to destroy"), "{plan}");
}
