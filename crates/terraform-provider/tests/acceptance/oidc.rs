//! `tessera_oidc_issuer` and trusts to it (`oidc_issuer`, `oidc_claims`): plan, apply, no
//! changes, an in-place key change, import, destroy.

use reqwest::Method;
use serde_json::json;

use crate::{Server, Tf, terraform};

/// Another Ed25519 public key (any 32 bytes; nothing is signed with it).
const X2: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

fn config(x: &str, sub: &str, jwt: &str) -> String {
    format!(
        r#"
resource "tessera_oidc_issuer" "ci" {{
  uri = "https://ci.example/oidc"
  kty = "OKP"
  crv = "Ed25519"
  kid = "k1"
  x   = "{x}"
}}

resource "tessera_organization_role" "deploy" {{
  name = "deploy"
  type = "assumable"
}}

resource "tessera_organization_role_trust" "ci" {{
  role        = tessera_organization_role.deploy.id
  oidc_issuer = tessera_oidc_issuer.ci.id
  oidc_claims = {{
    aud = ["tessera"]
    sub = ["{sub}"]
  }}
}}

resource "tessera_organization_role_session" "ci" {{
  role               = tessera_organization_role.deploy.id
  session_name       = "ci"
  oidc_issuer_id     = tessera_oidc_issuer.ci.id
  web_identity_token = "{jwt}"
  depends_on         = [tessera_organization_role_trust.ci]
}}
"#
    )
}

#[test]
fn oidc_issuer_and_trust_plan_apply_update_import_destroy() {
    let Some(tf_bin) = terraform() else { return };
    let server = Server::start();
    let tf = Tf::new(&tf_bin, &server, "oidc");
    // The workload's key and token (the server's clock is the test clock).
    let key = tessera_testkit::oidc::SigningKey::ed25519("k1");
    let x1 = key.jwk()["x"].as_str().unwrap().to_owned();
    let now = server.app().app.now().0;
    let claims = json!({"iss": "https://ci.example/oidc", "sub": "repo:acme/api", "aud": "tessera",
        "iat": now, "exp": now + 3600});
    let jwt = key.sign(&claims);
    tf.config(&config(&x1, "repo:acme/*", &jwt));
    let plan = tf.assert_changes();
    assert!(plan.contains("Plan: 4 to add, 0 to change, 0 to destroy"), "{plan}");
    assert!(!plan.contains(&jwt), "the web identity token is sensitive:\n{plan}");
    tf.apply();
    tf.assert_no_changes();

    // The session was assumed as the workload, and its token acts with the role's policies.
    let session = tf.attrs("tessera_organization_role_session.ci");
    assert_eq!((session["user_id"].as_str(), session["auth_method"].as_str()), (Some(""), Some("oidc")));
    let (_, s) = server.call(Method::GET, &format!("/v2/assumed-roles/{}", session["id"].as_str().unwrap()), None);
    assert_eq!(s["assumed_role_session"]["status"], "Active");

    let issuer = tf.id("tessera_oidc_issuer.ci");
    let (_, i) = server.call(Method::GET, &format!("/v2/oidc/issuer/{issuer}"), None);
    assert_eq!((i["issuer"]["kid"].as_str(), i["issuer"]["keys_source"].as_str()), (Some("k1"), Some("inline")));
    let (_, keys) = server.call(Method::GET, &format!("/v2/oidc/issuer/{issuer}/jwks"), None);
    assert_eq!(keys["keys"][0]["x"], x1.as_str());
    let trust = tf.id("tessera_organization_role_trust.ci");
    let (_, t) = server.call(Method::GET, &format!("/v2/role-trusts/{trust}"), None);
    assert_eq!(t["role_trust"]["trusted_oidc_issuer_id"], issuer.as_str());
    assert_eq!(t["role_trust"]["conditions"]["oidc_claims"], json!({"aud": "tessera", "sub": "repo:acme/*"}));

    // A new key and a narrower subject change in place: the trust keeps its id.
    tf.config(&config(X2, "repo:acme/api", &jwt));
    let plan = tf.assert_changes();
    assert!(plan.contains("0 to add, 2 to change, 0 to destroy"), "{plan}");
    tf.apply();
    tf.assert_no_changes();
    assert_eq!(tf.id("tessera_organization_role_trust.ci"), trust);
    let (_, keys) = server.call(Method::GET, &format!("/v2/oidc/issuer/{issuer}/jwks"), None);
    assert_eq!(keys["keys"][0]["x"], X2);

    // Import by id reads the issuer back.
    tf.ok(&["state", "rm", "tessera_oidc_issuer.ci"]);
    tf.ok(&["import", "tessera_oidc_issuer.ci", &issuer]);
    assert_eq!(tf.attrs("tessera_oidc_issuer.ci")["uri"], "https://ci.example/oidc");

    tf.destroy();
    let (status, _) = server.call(Method::GET, &format!("/v2/oidc/issuer/{issuer}"), None);
    assert_eq!(status, 404);
}
