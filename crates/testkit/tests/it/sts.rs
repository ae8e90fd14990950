//! AWS STS compatibility (`POST /v2/assumed-roles/compatibility/aws/sts`): the XML answers
//! and errors over plain HTTP, and a round trip through the real AWS SDK for Python (boto3),
//! whose credentials' `SessionToken` must work against Tessera's API.

use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use serde_json::json;
use tessera_api_types as wire;
use tessera_client::ListParams;
use tessera_testkit::oidc::{SigningKey, TestIssuer};
use tessera_testkit::{ADMIN_KEY, Backend, T0, TestApp, allow, skip_unless_ci, spawn_app};

pub(crate) struct Setup {
    /// The assumer's API key.
    pub(crate) key: String,
    pub(crate) role_arn: String,
    /// An assumable role the assumer is not trusted for.
    other_arn: String,
}

/// A user allowed to assume, an assumable role trusted for it whose policy lists users, and
/// a second role it is not trusted for.
pub(crate) async fn setup(t: &TestApp) -> Setup {
    let org = t.app.authenticate(ADMIN_KEY, None).await.unwrap().org_id;
    let (user, _) = t.user_with_policy("ci@example.com", Some(allow(&["iam.role.AssumeRole"]))).await;
    let key = wire::ApiKeyCreate { name: "sts".into(), date_expire: None };
    let key = t.admin.create_api_key(&user.id, &key).await.unwrap().api_key.unwrap();
    let role = |name: &str| wire::RoleInput {
        name: name.into(),
        description: String::new(),
        role_type: "assumable".into(),
        max_session_duration: Some(3600),
    };
    let reader = t.admin.create_role(&role("reader")).await.unwrap();
    let other = t.admin.create_role(&role("other")).await.unwrap();
    let policy = t
        .admin
        .create_policy(&wire::PolicyInput {
            name: "list-users".into(),
            description: String::new(),
            policy_document: allow(&["iam.user.List"]),
        })
        .await
        .unwrap();
    t.admin.attach_policy_to_role(&reader.id, &policy.id).await.unwrap();
    let trust = wire::TrustInput { role_id: reader.id.clone(), trusted_user_id: Some(user.id), ..Default::default() };
    t.admin.create_trust(&trust).await.unwrap();
    Setup {
        key,
        role_arn: format!("arn:aws:iam::{org}:role/{}", reader.id),
        other_arn: format!("arn:aws:iam::{org}:role/{}", other.id),
    }
}

const AUD: &str = "sts.amazonaws.com";
const SUB: &str = "system:serviceaccount:ci:deployer";

/// A real OIDC issuer registered with Tessera and trusted by the setup's role for tokens with
/// [`AUD`] and [`SUB`]; returns it, its id, and a valid token.
async fn web_identity(t: &TestApp, s: &Setup) -> (TestIssuer, String, String) {
    let key = SigningKey::rsa("k1", 0);
    let issuer = TestIssuer::start(&[&key], 300).await;
    let body = json!({"issuer": {"source": "external", "uri": issuer.url}}).to_string();
    let (st, v) = t.admin.raw(reqwest::Method::POST, "/v2/oidc/issuer", Some(&body)).await.unwrap();
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let issuer_id = v["id"].as_str().unwrap().to_owned();
    let role = s.role_arn.rsplit('/').next().unwrap();
    let trust = json!({"role_id": role, "trusted_oidc_issuer_id": issuer_id,
        "conditions": {"oidc_claims": {"aud": AUD, "sub": SUB}}});
    let (st, v) = t.admin.raw(reqwest::Method::POST, "/v2/role-trusts", Some(&trust.to_string())).await.unwrap();
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let token = key.sign(&issuer.claims(SUB, AUD, T0.0, 900));
    (issuer, issuer_id, token)
}

pub(crate) fn sts_url(t: &TestApp) -> String {
    format!("{}/v2/assumed-roles/compatibility/aws/sts", t.url)
}

async fn post_form(t: &TestApp, bearer: Option<&str>, form: &[(&str, &str)]) -> (StatusCode, String) {
    let mut req = reqwest::Client::new().post(sts_url(t)).form(form);
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    assert_eq!(res.headers()["content-type"], "text/xml", "STS answers XML, errors included");
    (status, res.text().await.unwrap())
}

/// The text of the first `<tag>…</tag>` in `xml`.
fn element<'a>(xml: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let start = xml.find(&open).unwrap_or_else(|| panic!("no <{tag}> in {xml}")) + open.len();
    let end = xml[start..].find(&format!("</{tag}>")).unwrap() + start;
    &xml[start..end]
}

async fn assume_role_answers_sts_xml_with_a_working_session_token(backend: Backend) {
    let t = spawn_app(backend).await;
    let s = setup(&t).await;
    let form = [
        ("Action", "AssumeRole"),
        ("Version", "2011-06-15"),
        ("RoleArn", s.role_arn.as_str()),
        ("RoleSessionName", "deploy-42"),
        ("DurationSeconds", "900"),
    ];
    let (status, xml) = post_form(&t, Some(&s.key), &form).await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    assert!(xml.starts_with("<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"), "{xml}");
    let token = element(&xml, "SessionToken");
    assert!(token.starts_with("tessera_rs_"), "{xml}");
    assert!(element(&xml, "Arn").ends_with(":assumed-role/reader/deploy-42"), "{xml}");
    assert_eq!(element(&xml, "Expiration"), tessera_testkit::T0.plus_secs(900).to_rfc3339());
    assert_eq!(element(&xml, "SecretAccessKey").len(), 40);
    // The session token works as a bearer, with exactly the role's permissions; AccessKeyId
    // is the session's id, which an administrator reads and revokes.
    let session = t.client(token);
    session.list_users(&ListParams::default()).await.expect("the role allows listing users");
    let id = element(&xml, "AccessKeyId");
    let seen = t.admin.get_assumed_role(id).await.unwrap();
    assert_eq!(seen.session_name, "deploy-42");
    t.admin.revoke_assumed_role(id).await.unwrap();
    assert!(session.list_users(&ListParams::default()).await.is_err(), "revoked");

    // The answer's RequestId is the request's id: the client's own, else the one the server
    // made and echoed in `X-Request-Id`.
    let res = reqwest::Client::new()
        .post(sts_url(&t))
        .bearer_auth(&s.key)
        .header("x-request-id", "sts-client-7")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "sts-client-7");
    assert_eq!(element(&res.text().await.unwrap(), "RequestId"), "sts-client-7");
    let res = reqwest::Client::new().post(sts_url(&t)).bearer_auth(&s.key).form(&form).send().await.unwrap();
    let made = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(made.len(), 21, "{made}");
    assert_eq!(element(&res.text().await.unwrap(), "RequestId"), made);
}

/// A bearer, the form, and the status and STS error code it must get.
type Case<'a> = (Option<&'a str>, Vec<(&'a str, &'a str)>, StatusCode, &'a str);

async fn sts_errors_are_sts_xml(backend: Backend) {
    let t = spawn_app(backend).await;
    let s = setup(&t).await;
    let base = |arn: &'static str| [("Action", "AssumeRole"), ("RoleArn", arn), ("RoleSessionName", "x1")];
    let cases: Vec<Case> = vec![
        (Some(&s.key), base("arn:aws:iam::nope:role/x").to_vec(), StatusCode::BAD_REQUEST, "InvalidParameterValue"),
        (Some(&s.key), vec![("Action", "AssumeRole")], StatusCode::BAD_REQUEST, "MissingParameter"),
        (Some(&s.key), vec![("Action", "GetCallerIdentity")], StatusCode::BAD_REQUEST, "InvalidAction"),
        (
            Some(&s.key),
            vec![("Action", "AssumeRole"), ("RoleArn", &s.other_arn), ("RoleSessionName", "x1")],
            StatusCode::FORBIDDEN,
            "AccessDenied",
        ),
        (
            Some(&s.key),
            vec![("Action", "AssumeRole"), ("RoleArn", &s.role_arn), ("RoleSessionName", "a b")],
            StatusCode::BAD_REQUEST,
            "ValidationError",
        ),
        (
            Some(&s.key),
            vec![
                ("Action", "AssumeRole"),
                ("RoleArn", &s.role_arn),
                ("RoleSessionName", "x1"),
                ("DurationSeconds", "7200"),
            ],
            StatusCode::BAD_REQUEST,
            "ValidationError",
        ),
        (
            None,
            vec![("Action", "AssumeRole"), ("RoleArn", &s.role_arn), ("RoleSessionName", "x1")],
            StatusCode::UNAUTHORIZED,
            "InvalidClientTokenId",
        ),
        (
            None,
            vec![
                ("Action", "AssumeRoleWithWebIdentity"),
                ("RoleArn", &s.role_arn),
                ("RoleSessionName", "x1"),
                ("WebIdentityToken", "not-a-jwt"),
            ],
            StatusCode::BAD_REQUEST,
            "MissingParameter",
        ),
    ];
    for (bearer, form, status, code) in cases {
        let (got, xml) = post_form(&t, bearer, &form).await;
        assert_eq!((got, element(&xml, "Code")), (status, code), "{form:?}: {xml}");
        assert!(xml.starts_with("<ErrorResponse"), "{xml}");
        assert_eq!(element(&xml, "Type"), "Sender");
    }
}

async fn assume_role_with_web_identity_answers_sts_xml(backend: Backend) {
    let t = spawn_app(backend).await;
    let s = setup(&t).await;
    let (issuer, issuer_id, token) = web_identity(&t, &s).await;
    // No ProviderId, as the AWS SDKs' web-identity credential providers send it: the role
    // trusts one issuer, so that one is meant.
    let form = [
        ("Action", "AssumeRoleWithWebIdentity"),
        ("RoleArn", s.role_arn.as_str()),
        ("RoleSessionName", "ci-job"),
        ("WebIdentityToken", token.as_str()),
    ];
    let (status, xml) = post_form(&t, None, &form).await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    assert!(xml.starts_with("<AssumeRoleWithWebIdentityResponse"), "{xml}");
    assert_eq!(element(&xml, "SubjectFromWebIdentityToken"), SUB);
    assert_eq!(element(&xml, "Provider"), issuer_id);
    let session = t.client(element(&xml, "SessionToken"));
    session.list_users(&ListParams::default()).await.expect("the workload's session acts as the role");

    let expired = SigningKey::rsa("k1", 0).sign(&issuer.claims(SUB, AUD, T0.0 - 4_000, 600));
    let stale = [
        ("Action", "AssumeRoleWithWebIdentity"),
        ("RoleArn", s.role_arn.as_str()),
        ("RoleSessionName", "ci-job"),
        ("WebIdentityToken", expired.as_str()),
        ("ProviderId", issuer_id.as_str()),
    ];
    let (status, xml) = post_form(&t, None, &stale).await;
    assert_eq!((status, element(&xml, "Code")), (StatusCode::BAD_REQUEST, "ExpiredTokenException"), "{xml}");
    let wrong_sub = SigningKey::rsa("k1", 0).sign(&issuer.claims("system:serviceaccount:ci:other", AUD, T0.0, 600));
    let other = [
        ("Action", "AssumeRoleWithWebIdentity"),
        ("RoleArn", s.role_arn.as_str()),
        ("RoleSessionName", "ci-job"),
        ("WebIdentityToken", wrong_sub.as_str()),
    ];
    let (status, xml) = post_form(&t, None, &other).await;
    assert_eq!((status, element(&xml, "Code")), (StatusCode::FORBIDDEN, "AccessDenied"), "{xml}");

    // A RoleArn naming another organization than the issuer's is refused before any session
    // exists: no session is left behind for a token nobody received.
    let count = || async {
        t.admin.raw(reqwest::Method::GET, "/v2/iam/sessions?$count=true", None).await.unwrap().1["Count"].clone()
    };
    let before = count().await;
    let role = s.role_arn.rsplit('/').next().unwrap();
    let foreign_arn = format!("arn:aws:iam::{}:role/{role}", tessera_domain::ids::OrgId::from_random([7; 16]));
    let fresh = SigningKey::rsa("k1", 0).sign(&issuer.claims(SUB, AUD, T0.0, 600));
    let foreign = [
        ("Action", "AssumeRoleWithWebIdentity"),
        ("RoleArn", foreign_arn.as_str()),
        ("RoleSessionName", "ci-job"),
        ("WebIdentityToken", fresh.as_str()),
        ("ProviderId", issuer_id.as_str()),
    ];
    let (status, xml) = post_form(&t, None, &foreign).await;
    assert_eq!((status, element(&xml, "Code")), (StatusCode::BAD_REQUEST, "InvalidParameterValue"), "{xml}");
    assert!(element(&xml, "Message").contains("RoleArn"), "{xml}");
    assert_eq!(count().await, before, "a refused assume leaves no session");
}

/// What a caller without a valid token learns about the issuer it names: nothing it did not
/// send. Whichever organization its RoleArn names, an unsigned, forged or expired token gets
/// the same refusal (so the answers cannot be compared to find the issuer's organization), and
/// no answer names the issuer's organization unless the caller named it. Only a caller whose
/// token the issuer signed hears that the ARN names another organization.
async fn web_identity_refusals_reveal_no_organization(backend: Backend) {
    let t = spawn_app(backend).await;
    let s = setup(&t).await;
    let (issuer, issuer_id, valid) = web_identity(&t, &s).await;
    let org = t.app.authenticate(ADMIN_KEY, None).await.unwrap().org_id.to_string();
    let role = s.role_arn.rsplit('/').next().unwrap();
    let foreign_org = tessera_domain::ids::OrgId::from_random([7; 16]).to_string();
    let forged = SigningKey::rsa("k1", 1).sign(&issuer.claims(SUB, AUD, T0.0, 600));
    let expired = SigningKey::rsa("k1", 0).sign(&issuer.claims(SUB, AUD, T0.0 - 4_000, 600));
    let ask = |arn_org: String, token: String| {
        let arn = format!("arn:aws:iam::{arn_org}:role/{role}");
        let issuer_id = issuer_id.clone();
        let t = &t;
        async move {
            let form = [
                ("Action", "AssumeRoleWithWebIdentity"),
                ("RoleArn", arn.as_str()),
                ("RoleSessionName", "probe"),
                ("WebIdentityToken", token.as_str()),
                ("ProviderId", issuer_id.as_str()),
            ];
            let (status, xml) = post_form(t, None, &form).await;
            (status, element(&xml, "Code").to_owned(), element(&xml, "Message").to_owned())
        }
    };
    for (what, token) in
        [("an unsigned token", "not.a.token".to_owned()), ("a forged token", forged), ("an expired token", expired)]
    {
        let own = ask(org.clone(), token.clone()).await;
        let other = ask(foreign_org.clone(), token).await;
        assert_eq!(own, other, "{what}: the same refusal whichever organization the RoleArn names");
        assert!(matches!(other.1.as_str(), "InvalidIdentityToken" | "ExpiredTokenException"), "{what}: {other:?}");
        assert!(!other.2.contains(&org), "{what}: the answer names no organization the caller did not: {other:?}");
    }
    let (status, code, message) = ask(foreign_org.clone(), valid).await;
    assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "InvalidParameterValue"), "{message}");
    assert!(message.contains("RoleArn") && !message.contains(&org), "{message}");
}

/// A Python that imports boto3: `TESSERA_PYTHON`, the venv `cargo xtask tools` makes in
/// `.tools/boto3`, or the system's `python3`.
fn python_with_boto3() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/boto3/bin/python3");
    let candidates =
        std::env::var_os("TESSERA_PYTHON").map(PathBuf::from).into_iter().chain([venv, PathBuf::from("python3")]);
    for p in candidates {
        let ok = std::process::Command::new(&p).args(["-c", "import boto3"]).output();
        if ok.is_ok_and(|o| o.status.success()) {
            return Some(p);
        }
    }
    None
}

async fn boto3_assume_role_returns_credentials_that_work_against_tessera(backend: Backend) {
    let Some(python) = python_with_boto3() else {
        let why = "no Python with boto3 (run `cargo xtask tools`, or set TESSERA_PYTHON)";
        skip_unless_ci("sts::boto3_assume_role_returns_credentials_that_work_against_tessera", why);
        return;
    };
    let t = spawn_app(backend).await;
    let s = setup(&t).await;
    let (_issuer, issuer_id, token) = web_identity(&t, &s).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sts_boto3.py");
    let mut cmd = std::process::Command::new(python);
    cmd.arg(script)
        .env("TESSERA_STS_URL", sts_url(&t))
        .env("TESSERA_BEARER", &s.key)
        .env("ROLE_ARN", &s.role_arn)
        .env("BAD_ROLE_ARN", &s.other_arn)
        .env("WEB_IDENTITY_TOKEN", &token)
        .env("PROVIDER_ID", &issuer_id)
        // No AWS configuration of the machine may leak in.
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE");
    // The server answers on this runtime: wait for the SDK off it.
    let out = tokio::task::spawn_blocking(move || cmd.output()).await.unwrap().expect("python runs");
    assert!(out.status.success(), "boto3 script failed: {}", String::from_utf8_lossy(&out.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let creds = &answer["assume_role"];
    let token = creds["SessionToken"].as_str().unwrap();
    assert!(token.starts_with("tessera_rs_"), "{answer}");
    assert_eq!(creds["Expiration"], tessera_testkit::T0.plus_secs(900).to_rfc3339().replace('Z', "+00:00"));
    assert_eq!(answer["denied"], serde_json::json!({"error": "AccessDenied", "status": 403}), "{answer}");
    assert_eq!(answer["bad_arn"], serde_json::json!({"error": "InvalidParameterValue", "status": 400}));
    assert_eq!(answer["no_bearer"], serde_json::json!({"error": "InvalidClientTokenId", "status": 401}));
    // What the SDK returned works against Tessera's API, as the role.
    let users = t.client(token).list_users(&ListParams::default()).await.expect("the SessionToken works");
    assert!(users.users.iter().any(|u| u.email == "ci@example.com"));
    let refused = t.client(token).list_groups(&ListParams::default()).await;
    assert!(refused.is_err(), "the role allows nothing else");
    let session = t.admin.get_assumed_role(creds["AccessKeyId"].as_str().unwrap()).await.unwrap();
    assert_eq!(session.session_name, "boto3-ci");

    // The workload's round trip: no Tessera key at all, the SDK's unsigned call.
    let web = &answer["assume_role_with_web_identity"];
    let workload = t.client(web["SessionToken"].as_str().unwrap());
    workload.list_users(&ListParams::default()).await.expect("the web-identity SessionToken works");
    let session = t.admin.get_assumed_role(web["AccessKeyId"].as_str().unwrap()).await.unwrap();
    assert_eq!(
        (session.session_name.as_str(), session.oidc_issuer_id.as_deref()),
        ("boto3-web", Some(issuer_id.as_str()))
    );
    assert_eq!(answer["bad_token"], serde_json::json!({"error": "InvalidIdentityToken", "status": 400}), "{answer}");
}

tessera_testkit::both_backends!(
    assume_role_answers_sts_xml_with_a_working_session_token,
    sts_errors_are_sts_xml,
    assume_role_with_web_identity_answers_sts_xml,
    web_identity_refusals_reveal_no_organization,
    boto3_assume_role_returns_credentials_that_work_against_tessera,
);
