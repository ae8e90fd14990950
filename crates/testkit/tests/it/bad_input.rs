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
        ("/v2/roles", "[]", StatusCode::BAD_REQUEST, Some("body"), "must be a JSON object"),
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

/// What a client can read back: every list the API offers, as JSON.
async fn everything_stored(t: &TestApp) -> Vec<Value> {
    let mut all = vec![];
    for path in [
        "/v2/users?per_page=500".to_owned(),
        format!("/v2/users/{}/apikeys", t.admin_id),
        "/v2/groups".into(),
        "/v2/policies".into(),
        "/v2/roles".into(),
        "/v2/role-trusts".into(),
        "/v2/gateway/services".into(),
        "/v2/gateway/routes".into(),
        "/v2/gateway/plugins".into(),
        "/v2/iam/sessions?$top=1000".into(),
    ] {
        let (status, body) = call(t, Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        all.push(body);
    }
    all
}

/// A NUL character (which PostgreSQL text cannot hold, and SQLite can) in every text field
/// the API stores: refused alike on both backends with a 400 naming the field, before
/// anything is written. Any other answer, a 500 in particular, fails here.
async fn a_nul_character_is_refused_alike_on_every_backend(backend: Backend) {
    let t = spawn_app(backend).await;
    let admin = t.admin_id.clone();
    let role = t
        .admin
        .create_role(&tessera_api_types::RoleInput {
            name: "r".into(),
            description: String::new(),
            role_type: "assumable".into(),
            max_session_duration: None,
        })
        .await
        .unwrap()
        .id;
    let before = everything_stored(&t).await;
    let n = r"a\u0000b";
    let cases: Vec<(Method, String, String, &str)> = vec![
        (Method::POST, "/v2/users".into(), format!(r#"{{"email":"x{n}@example.com"}}"#), "email"),
        (Method::POST, "/v2/users".into(), format!(r#"{{"email":"x@example.com","first_name":"{n}"}}"#), "first_name"),
        (Method::POST, "/v2/users".into(), format!(r#"{{"email":"x@example.com","last_name":"{n}"}}"#), "last_name"),
        (Method::PATCH, format!("/v2/users/{admin}"), format!(r#"{{"first_name":"{n}"}}"#), "first_name"),
        (Method::PATCH, format!("/v2/users/{admin}"), format!(r#"{{"email":"{n}@example.com"}}"#), "email"),
        (Method::POST, format!("/v2/users/{admin}/apikeys"), format!(r#"{{"name":"{n}"}}"#), "name"),
        (Method::POST, "/v2/groups".into(), format!(r#"{{"display_name":"{n}"}}"#), "display_name"),
        (Method::POST, "/v2/groups".into(), format!(r#"{{"display_name":"g","description":"{n}"}}"#), "description"),
        (Method::POST, "/v2/roles".into(), format!(r#"{{"name":"{n}","role_type":"assumable"}}"#), "name"),
        (
            Method::POST,
            "/v2/roles".into(),
            format!(r#"{{"name":"r2","role_type":"assumable","description":"{n}"}}"#),
            "description",
        ),
        (Method::PUT, format!("/v2/roles/{role}"), format!(r#"{{"name":"{n}","role_type":"assumable"}}"#), "name"),
        (
            Method::POST,
            "/v2/policies".into(),
            format!(
                r#"{{"name":"{n}","policy_document":{{"Statement":[{{"Effect":"Allow","Action":"iam.user.Read"}}]}}}}"#
            ),
            "name",
        ),
        (
            Method::POST,
            "/v2/policies".into(),
            format!(
                r#"{{"name":"p","description":"{n}","policy_document":{{"Statement":[{{"Effect":"Allow","Action":"iam.user.Read"}}]}}}}"#
            ),
            "description",
        ),
        (
            Method::POST,
            "/v2/policies".into(),
            format!(
                r#"{{"name":"p","policy_document":{{"Statement":[{{"Effect":"Allow","Action":"iam.user.Read","Resource":"{n}"}}]}}}}"#
            ),
            "policy_document.Statement[0].Resource",
        ),
        (
            Method::POST,
            "/v2/policies".into(),
            format!(
                r#"{{"name":"p","policy_document":{{"Statement":[{{"Sid":"{n}","Effect":"Allow","Action":"iam.user.Read"}}]}}}}"#
            ),
            "policy_document.Statement[0].Sid",
        ),
        (
            Method::POST,
            "/v2/role-trusts".into(),
            format!(r#"{{"role_id":"{role}","trusted_user_id":"{admin}","trust_type":"{n}"}}"#),
            "trust_type",
        ),
        (
            Method::POST,
            "/v2/assumed-roles/assume".into(),
            format!(r#"{{"user_id":"{admin}","role_id":"{role}","session_name":"{n}"}}"#),
            "session_name",
        ),
        (Method::POST, "/v2/sessions".into(), format!(r#"{{"email":"{n}@example.com","password":"x"}}"#), "email"),
        (
            Method::POST,
            "/v2/gateway/services".into(),
            format!(r#"{{"name":"{n}","url":"http://127.0.0.1:9"}}"#),
            "name",
        ),
        (Method::POST, "/v2/gateway/services".into(), format!(r#"{{"name":"s","url":"http://{n}:9"}}"#), "url"),
        (Method::POST, "/v2/gateway/routes".into(), format!(r#"{{"name":"{n}","paths":["/x"]}}"#), "name"),
        (
            Method::POST,
            "/v2/gateway/plugins".into(),
            format!(r#"{{"name":"session","config":{{"secret":"s","cookie_name":"{n}"}}}}"#),
            "config.cookie_name",
        ),
    ];
    for (method, path, body, field) in &cases {
        let (status, json) = call(&t, method.clone(), path, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path} {body}: {json}");
        assert_eq!(json["error"]["field"].as_str(), Some(*field), "{method} {path} {body}: {json}");
    }
    assert_eq!(everything_stored(&t).await, before, "nothing was stored");
    // A password is never stored as text, only its hash: one with a NUL works on both.
    let (status, json) = call(
        &t,
        Method::POST,
        "/v2/users",
        Some(&format!(r#"{{"email":"nul@example.com","password":"long {n} password"}}"#)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    let signed = t
        .anonymous()
        .sign_in(&tessera_api_types::SignInRequest {
            email: "nul@example.com".into(),
            password: "long a\u{0}b password".into(),
            organization_id: None,
        })
        .await;
    assert!(signed.is_ok(), "{signed:?}");
}

/// `$filter` text and `$skiptoken`s come from outside: a NUL, a token that is not ours, one
/// of the wrong type for the order, or one with a negative position are 400s on both
/// backends, never a 500 or a 503 "store unavailable".
async fn session_query_text_and_skip_tokens_are_checked_before_the_database(backend: Backend) {
    use base64::Engine;
    let t = spawn_app(backend).await;
    let token = |json: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
    let cases: Vec<(String, &str)> = vec![
        ("$filter=session_name%20eq%20'a%00b'".into(), "$filter"),
        ("$filter=contains(user_id_or_email,'%00')".into(), "$filter"),
        ("$filter=session_name%20in%20('a','%00')".into(), "$filter"),
        ("$skiptoken=zzz".into(), "$skiptoken"),
        ("$skiptoken=%00".into(), "$skiptoken"),
        (format!("$skiptoken={}", token("[]")), "$skiptoken"),
        (format!("$skiptoken={}", token(r#"{"i":1,"s":"x"}"#)), "$skiptoken"),
        (format!("$orderby=create_time&$skiptoken={}", token(r#"{"t":"x","s":1}"#)), "$skiptoken"),
        (format!("$orderby=user_id_or_email&$skiptoken={}", token(r#"{"i":5,"s":1}"#)), "$skiptoken"),
        (format!("$orderby=user_id_or_email&$skiptoken={}", token(r#"{"t":"a\u0000","s":1}"#)), "$skiptoken"),
        (format!("$orderby=failed_logins&$skiptoken={}", token(r#"{"i":1,"s":-1}"#)), "$skiptoken"),
        (format!("$orderby=end_time&$skiptoken={}", token(r#"{"i":1,"s":1}"#)), "$skiptoken"),
    ];
    for (query, field) in &cases {
        let (status, json) = call(&t, Method::GET, &format!("/v2/iam/sessions?{query}"), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {json}");
        assert_eq!(json["error"]["field"].as_str(), Some(*field), "{query}: {json}");
    }
    // A well-formed token past the end is simply an empty page, on both.
    let past = token(r#"{"i":9223372036854775807,"s":9223372036854775807}"#);
    let (status, json) =
        call(&t, Method::GET, &format!("/v2/iam/sessions?$orderby=create_time&$skiptoken={past}"), None).await;
    assert_eq!((status, json["Results"].as_array().map(Vec::len)), (StatusCode::OK, Some(0)), "{json}");
}

/// Control characters other than NUL (CR/LF, ESC and so ANSI escapes, DEL, C1, bidi
/// overrides) in any name a request stores are refused naming the field, on both backends,
/// and nothing is stored. Descriptions may hold line feeds and tabs, nothing else.
async fn control_characters_in_names_are_refused_naming_the_field(backend: Backend) {
    let t = spawn_app(backend).await;
    let admin = t.admin_id.clone();
    let (status, role) = call(&t, Method::POST, "/v2/roles", Some(r#"{"name":"ops","role_type":"assumable"}"#)).await;
    assert_eq!(status, StatusCode::CREATED);
    let role = role["role"]["id"].as_str().unwrap().to_owned();
    let before = everything_stored(&t).await;
    let mut cases: Vec<(Method, String, String, &str)> = vec![];
    for b in [r"a\r\nSet-Cookie: x", r"\u001b[31mred\u001b[0m", r"a\u007f", r"a\u0085", r"a\u202eb", r"a\u0007"] {
        cases.extend([
            (Method::POST, "/v2/users".into(), format!(r#"{{"email":"x{b}@example.com"}}"#), "email"),
            (
                Method::POST,
                "/v2/users".into(),
                format!(r#"{{"email":"x@example.com","first_name":"{b}"}}"#),
                "first_name",
            ),
            (
                Method::POST,
                "/v2/users".into(),
                format!(r#"{{"email":"x@example.com","last_name":"{b}"}}"#),
                "last_name",
            ),
            (Method::PATCH, format!("/v2/users/{admin}"), format!(r#"{{"first_name":"{b}"}}"#), "first_name"),
            (Method::POST, "/v2/groups".into(), format!(r#"{{"display_name":"{b}"}}"#), "display_name"),
            (
                Method::POST,
                "/v2/groups".into(),
                format!(r#"{{"display_name":"g","description":"{b}"}}"#),
                "description",
            ),
            (Method::POST, "/v2/roles".into(), format!(r#"{{"name":"{b}","role_type":"assumable"}}"#), "name"),
            (
                Method::POST,
                "/v2/policies".into(),
                format!(r#"{{"name":"{b}","policy_document":{{"Statement":[{{"Effect":"Allow","Action":"*"}}]}}}}"#),
                "name",
            ),
            (Method::POST, format!("/v2/users/{admin}/apikeys"), format!(r#"{{"name":"{b}"}}"#), "name"),
            (
                Method::POST,
                "/v2/assumed-roles/assume".into(),
                format!(r#"{{"user_id":"{admin}","role_id":"{role}","session_name":"{b}"}}"#),
                "session_name",
            ),
            (
                Method::POST,
                "/v2/sessions".into(),
                format!(r#"{{"email":"admin{b}@example.com","password":"p"}}"#),
                "email",
            ),
        ]);
    }
    for (method, path, body, field) in &cases {
        let (status, json) = call(&t, method.clone(), path, Some(body)).await;
        assert_error(status, &json, StatusCode::BAD_REQUEST, Some(field), "control characters");
    }
    assert_eq!(everything_stored(&t).await, before, "nothing was stored");
    let (status, group) =
        call(&t, Method::POST, "/v2/groups", Some(r#"{"display_name":"ops","description":"line one\n\tline two"}"#))
            .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    assert_eq!(group["group"]["description"], "line one\n\tline two");
}

/// A request body is a JSON object; an array (which serde would read as a struct's fields in
/// order) or any other value is refused naming the body.
async fn non_object_bodies_are_refused_naming_the_body(backend: Backend) {
    let t = spawn_app(backend).await;
    let before = everything_stored(&t).await;
    for (path, body) in [
        ("/v2/roles", r#"["ops","assumable"]"#),
        ("/v2/roles", r#""ops""#),
        ("/v2/roles", "42"),
        ("/v2/roles", "null"),
        ("/v2/users", r#"["ann@example.com","Ann","Lee",null]"#),
        ("/v2/groups", r#"["ops",""]"#),
        ("/v2/sessions", r#"["admin@example.com","password"]"#),
        ("/v2/gateway/services", r#"[{"name":"s","url":"http://127.0.0.1:1"}]"#),
    ] {
        let (status, json) = call(&t, Method::POST, path, Some(body)).await;
        assert_error(status, &json, StatusCode::BAD_REQUEST, Some("body"), "must be a JSON object");
    }
    assert_eq!(everything_stored(&t).await, before, "nothing was stored");
}

/// A Deny naming an id in upper case or in braces, with its action in mixed case, is stored
/// in the canonical form and applies.
async fn a_deny_naming_an_id_in_another_spelling_applies(backend: Backend) {
    let t = spawn_app(backend).await;
    let (victim, _) = t.user_with_policy("victim@example.com", None).await;
    let (other, _) = t.user_with_policy("other@example.com", None).await;
    let spelled = format!("{{{}}}", victim.id.to_uppercase());
    let doc = serde_json::json!({"Statement": [
        {"Effect": "Allow", "Action": "iam.user.*", "Resource": "*"},
        {"Effect": "Deny", "Action": "IAM.User.DELETE", "Resource": [spelled]},
    ]});
    let (_, deleter) = t.user_with_policy("deleter@example.com", Some(doc)).await;
    let (status, body) = deleter.raw(Method::DELETE, &format!("/v2/users/{}", victim.id), None).await.unwrap();
    assert_eq!(status, StatusCode::FORBIDDEN, "the Deny applies: {body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("explicitly denied"), "{body}");
    assert!(t.admin.get_user(&victim.id).await.is_ok(), "the user is still there");
    let (_, policies) = call(&t, Method::GET, "/v2/policies?per_page=500", None).await;
    let stored = policies["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "policy-for-deleter@example.com")
        .unwrap()["policy_document"]["Statement"][1]["Resource"]
        .clone();
    assert_eq!(stored, serde_json::json!([victim.id]), "stored lower-case, without braces");
    let (status, _) = deleter.raw(Method::DELETE, &format!("/v2/users/{}", other.id), None).await.unwrap();
    assert_eq!(status, StatusCode::NO_CONTENT, "the Allow still applies elsewhere");
    // Braces around something that is not an id are refused, naming the field.
    let (status, body) = call(
        &t,
        Method::POST,
        "/v2/policies",
        Some(r#"{"name":"p","policy_document":{"Statement":[{"Effect":"Deny","Action":"*","Resource":"{team}"}]}}"#),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, Some("policy_document.Statement[0].Resource"), "braces");
}

tessera_testkit::both_backends!(
    a_nul_character_is_refused_alike_on_every_backend,
    session_query_text_and_skip_tokens_are_checked_before_the_database,
    malformed_bodies_name_the_field,
    wrong_media_type_paths_and_paging_are_4xx,
    conflicts_and_missing_references_keep_existing_data,
    control_characters_in_names_are_refused_naming_the_field,
    non_object_bodies_are_refused_naming_the_body,
    a_deny_naming_an_id_in_another_spelling_applies,
);
