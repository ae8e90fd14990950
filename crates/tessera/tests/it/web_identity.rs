//! `tessera assume --web-identity-token-file F --oidc-issuer I`: the real binary assumes a role
//! with a workload's OIDC token, no API key in sight, against a real `tessera serve`.

use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};
use tessera_api_types as wire;

use crate::Node;

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

#[tokio::test]
async fn a_workload_assumes_with_its_token_file() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&format!("sqlite://{}", dir.path().join("tessera.db").display())).await;
    let api = &node.client;

    // An issuer with one inline Ed25519 key (this test holds the private half).
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let issuer_uri = "https://ci.example/oidc";
    let body = json!({"uri": issuer_uri, "kty": "OKP", "crv": "Ed25519", "kid": "k1",
        "x": b64(key.public_key().as_ref())});
    let (status, issuer) = api.raw(Method::POST, "/v2/oidc/issuer", Some(&body.to_string())).await.unwrap();
    assert_eq!(status, 201, "{issuer}");
    let issuer = issuer["id"].as_str().unwrap().to_owned();
    let role = api
        .create_role(&wire::RoleInput {
            name: "deployer".into(),
            description: String::new(),
            role_type: "assumable".into(),
            max_session_duration: None,
        })
        .await
        .unwrap();
    let policy = api
        .create_policy(&wire::PolicyInput {
            name: "list-users".into(),
            description: String::new(),
            policy_document: json!({"Version": "2026-03-20",
                "Statement": [{"Effect": "Allow", "Action": ["iam.user.List"], "Resource": ["*"]}]}),
        })
        .await
        .unwrap();
    api.attach_policy_to_role(&role.id, &policy.id).await.unwrap();
    let trust = json!({"role_id": role.id, "trusted_oidc_issuer_id": issuer,
        "conditions": {"oidc_claims": {"aud": "tessera", "sub": "repo:acme/*"}}});
    let (status, body) = api.raw(Method::POST, "/v2/role-trusts", Some(&trust.to_string())).await.unwrap();
    assert_eq!(status, 201, "{body}");

    // The token, as a platform would write it to a file (the server runs on the real clock).
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let claims = json!({"iss": issuer_uri, "sub": "repo:acme/api", "aud": "tessera", "iat": now, "exp": now + 600});
    let signed = format!("{}.{}", b64(br#"{"alg":"EdDSA","kid":"k1"}"#), b64(claims.to_string().as_bytes()));
    let jwt = format!("{signed}.{}", b64(key.sign(signed.as_bytes()).as_ref()));
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{jwt}\n")).unwrap();

    let assume = |role: &str| {
        Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["assume", "--role", role, "--oidc-issuer", &issuer, "--web-identity-token-file"])
            .arg(&file)
            .args(["--session-name", "ci", "--output", "json"])
            .env("TESSERA_ENDPOINT", format!("http://127.0.0.1:{}", node.port))
            .env_remove("TESSERA_API_KEY")
            .stdin(Stdio::null())
            .output()
            .expect("tessera runs")
    };
    let out = assume(&role.id);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let session: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(session["oidc_issuer_id"], issuer.as_str());
    assert_eq!(session["auth_method"], "oidc");
    let token = session["session_token"].as_str().unwrap();
    let workload = tessera_client::Client::new(format!("http://127.0.0.1:{}", node.port), Some(token.into()));
    workload.list_users(&Default::default()).await.expect("the role's policy allows listing users");
    assert!(workload.list_groups(&Default::default()).await.is_err(), "and nothing else");

    // A role name cannot be looked up without an API key: the CLI says so.
    let out = assume("deployer");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--role must be the role's id"));
}
