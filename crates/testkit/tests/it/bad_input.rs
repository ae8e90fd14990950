//! Bad input of every kind: always a 4xx JSON error naming what and where, never a 500,
//! and nothing stored changes.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tessera_client::ListParams;
use tessera_testkit::{Backend, TestApp, spawn_app};

async fn call(t: &TestApp, method: Method, path: &str, body: Option<&str>) -> (StatusCode, Value) {
    t.admin.raw(method, path, body).await.unwrap()
}

fn assert_error(status: StatusCode, body: &Value, want: StatusCode, field: Option<&str>, contains: &str) {
    assert_eq!(status, want, "{body}");
    let e = &body["error"];
    assert!(e["code"].is_string(), "{body}");
    assert!(e["message"].as_str().unwrap_or("").contains(contains), "message {:?} lacks {contains:?}", e["message"]);
    assert_eq!(e["field"].as_str(), field, "{body}");
}

async fn malformed_bodies_name_the_field(backend: Backend) {
    let t = spawn_app(backend).await;
    let cases: &[(&str, &str, StatusCode, Option<&str>, &str)] = &[
        ("/v2/roles", "{", StatusCode::BAD_REQUEST, None, "invalid JSON body"),
        ("/v2/roles", "[]", StatusCode::BAD_REQUEST, None, "invalid JSON body"),
        (
            "/v2/roles",
            r#"{"name":"r","role_type":"assumable","colour":"red"}"#,
            StatusCode::BAD_REQUEST,
            Some("colour"),
            "unknown field `colour`",
        ),
        (
            "/v2/roles",
            r#"{"name":"r","role_type":"assumable","max_session_duration":"long"}"#,
            StatusCode::BAD_REQUEST,
            Some("max_session_duration"),
            "invalid type",
        ),
        (
            "/v2/roles",
            r#"{"name":"r","role_type":"assumable","max_session_duration":60}"#,
            StatusCode::BAD_REQUEST,
            Some("max_session_duration"),
            "between 900 and 43200",
        ),
        (
            "/v2/roles",
            r#"{"name":"r","role_type":"sometimes"}"#,
            StatusCode::BAD_REQUEST,
            Some("role_type"),
            "assumable",
        ),
        (
            "/v2/roles",
            r#"{"name":"  ","role_type":"assumable"}"#,
            StatusCode::BAD_REQUEST,
            Some("name"),
            "must not be empty",
        ),
        ("/v2/roles", r#"{"role_type":"assumable"}"#, StatusCode::BAD_REQUEST, None, "missing field `name`"),
        ("/v2/users", r#"{"email":"not-an-email"}"#, StatusCode::BAD_REQUEST, Some("email"), "not an email address"),
        (
            "/v2/policies",
            r#"{"name":"p","policy_document":{"Statement":[{"Effect":"Allow","Action":"iam.user.Read","Resource":"*","Condition":{}}]}}"#,
            StatusCode::BAD_REQUEST,
            Some("policy_document.Statement[0].Condition"),
            "unknown field `Condition`",
        ),
        (
            "/v2/policies",
            r#"{"name":"p","policy_document":{"Statement":[{"Effect":"Perhaps","Action":"x.y"}]}}"#,
            StatusCode::BAD_REQUEST,
            Some("policy_document.Statement[0].Effect"),
            "Allow",
        ),
        (
            "/v2/role-trusts",
            r#"{"role_id":"nope","trusted_user_id":"x"}"#,
            StatusCode::BAD_REQUEST,
            Some("trusted_user_id"),
            "not a valid id",
        ),
        (
            "/v2/role-trusts",
            r#"{"role_id":"00000000-0000-4000-8000-000000000000"}"#,
            StatusCode::BAD_REQUEST,
            Some("trusted_user_id"),
            "exactly one principal",
        ),
        (
            "/v2/role-trusts",
            r#"{"role_id":"00000000-0000-4000-8000-000000000000","trusted_user_id":"00000000-0000-4000-8000-000000000001","conditions":{"ip_address":["10.0.0.0/33"]}}"#,
            StatusCode::BAD_REQUEST,
            Some("conditions.ip_address[0]"),
            "10.0.0.0/33",
        ),
        (
            "/v2/role-trusts",
            r#"{"role_id":"00000000-0000-4000-8000-000000000000","trusted_user_id":"00000000-0000-4000-8000-000000000001","conditions":{"time_of_day":{"start":25,"end":3}}}"#,
            StatusCode::BAD_REQUEST,
            Some("conditions.time_of_day.start"),
            "0 to 23",
        ),
        (
            "/v2/role-trusts",
            r#"{"role_id":"00000000-0000-4000-8000-000000000000","trusted_user_id":"00000000-0000-4000-8000-000000000001","valid_until":"tomorrow"}"#,
            StatusCode::BAD_REQUEST,
            Some("valid_until"),
            "RFC 3339",
        ),
        (
            "/v2/assumed-roles/assume",
            r#"{"user_id":"00000000-0000-4000-8000-000000000001","role_id":"00000000-0000-4000-8000-000000000000","session_name":"s","ip_address":"300.1.1.1"}"#,
            StatusCode::BAD_REQUEST,
            Some("ip_address"),
            "not an IP address",
        ),
        (
            "/v2/assumed-roles/assume",
            r#"{"user_id":"00000000-0000-4000-8000-000000000001","role_id":"00000000-0000-4000-8000-000000000000","session_name":"s","auth_method":"password"}"#,
            StatusCode::BAD_REQUEST,
            Some("auth_method"),
            "api_key",
        ),
    ];
    let roles_before = t.admin.list_roles(&ListParams::default()).await.unwrap().meta.total;
    for (path, body, status, field, contains) in cases {
        let (got, json) = call(&t, Method::POST, path, Some(body)).await;
        assert_error(got, &json, *status, *field, contains);
    }
    assert_eq!(
        t.admin.list_roles(&ListParams::default()).await.unwrap().meta.total,
        roles_before,
        "nothing was stored"
    );
}

async fn wrong_media_type_paths_and_paging_are_4xx(backend: Backend) {
    let t = spawn_app(backend).await;
    let res = reqwest::Client::new()
        .post(format!("{}/v2/roles", t.url))
        .bearer_auth(tessera_testkit::ADMIN_KEY)
        .header("content-type", "text/plain")
        .body("name=r")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let big = format!(r#"{{"name":"{}","role_type":"assumable"}}"#, "x".repeat(300 * 1024));
    let (status, body) = call(&t, Method::POST, "/v2/roles", Some(&big)).await;
    assert_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE, None, "exceeds");
    let (status, body) = call(&t, Method::GET, "/v2/roles/not-a-uuid", None).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, Some("path.role_id"), "not a valid id");
    let (status, body) = call(&t, Method::GET, "/v2/roles/00000000-0000-4000-8000-000000000000", None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, None, "Role not found");
    let (status, body) = call(&t, Method::GET, "/v2/users?per_page=0", None).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, Some("per_page"), "1 to 500");
    let (status, body) = call(&t, Method::GET, "/v2/users?cursor=garbage", None).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, Some("cursor"), "cursor");
    let (status, body) = call(&t, Method::PATCH, "/v2/roles", None).await;
    assert_error(status, &body, StatusCode::METHOD_NOT_ALLOWED, None, "PATCH");
    let (status, body) = call(&t, Method::GET, "/v3/roles", None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, None, "no route");
}

async fn conflicts_and_missing_references_keep_existing_data(backend: Backend) {
    let t = spawn_app(backend).await;
    let body = r#"{"name":"ops","role_type":"assumable","description":"first"}"#;
    let (status, first) = call(&t, Method::POST, "/v2/roles", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, json) =
        call(&t, Method::POST, "/v2/roles", Some(r#"{"name":"ops","role_type":"assignable","description":"second"}"#))
            .await;
    assert_error(status, &json, StatusCode::CONFLICT, None, "already exists");
    let id = first["role"]["id"].as_str().unwrap();
    let (_, kept) = call(&t, Method::GET, &format!("/v2/roles/{id}"), None).await;
    assert_eq!(kept["role"]["description"], "first");
    let (status, json) =
        call(&t, Method::POST, &format!("/v2/roles/{id}/policies/00000000-0000-4000-8000-000000000000"), None).await;
    assert_error(status, &json, StatusCode::NOT_FOUND, None, "Policy not found");
    let (status, json) = call(&t, Method::POST, "/v2/users", Some(r#"{"email":"ADMIN@example.com"}"#)).await;
    assert_error(status, &json, StatusCode::CONFLICT, None, "already exists");
}

tessera_testkit::both_backends!(
    malformed_bodies_name_the_field,
    wrong_media_type_paths_and_paging_are_4xx,
    conflicts_and_missing_references_keep_existing_data,
);
