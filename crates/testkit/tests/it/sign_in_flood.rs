//! A sign-in flood cannot starve the token-authenticated path: password hashing is bounded
//! (a few at a time and a short queue), sign-ins past the queue are refused at once with 429
//! and `Retry-After`, and token-authenticated reads made during the flood all succeed.
//! (How fast, and how much memory, is measured by `examples/sign_in_flood.rs`, not here.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::StatusCode;
use tessera_api_types as wire;
use tessera_testkit::{Backend, allow, spawn_app};

const PASSWORD: &str = "correct horse battery staple";
const FLOOD: usize = 200;

async fn a_sign_in_flood_is_shed_with_429_and_token_reads_keep_working(backend: Backend) {
    let t = spawn_app(backend).await;
    let user = t
        .admin
        .create_user(&wire::UserCreate {
            email: "lee@example.com".into(),
            first_name: "Lee".into(),
            last_name: String::new(),
            password: Some(PASSWORD.into()),
        })
        .await
        .unwrap();
    let (_, reader) = t.user_with_policy("reader@example.com", Some(allow(&["iam.user.Read", "iam.user.List"]))).await;
    let limits = t.app.password_hashing().limits();
    assert!(FLOOD > 2 * (limits.permits + limits.queue), "the flood must overflow the queue: {limits:?}");

    let flooding = Arc::new(AtomicBool::new(true));
    let reads = tokio::spawn({
        let flooding = Arc::clone(&flooding);
        let user = user.id.clone();
        async move {
            let mut statuses = vec![];
            while flooding.load(Ordering::Acquire) || statuses.len() < 20 {
                let status = match reader.get_user(&user).await {
                    Ok(_) => StatusCode::OK,
                    Err(e) => e.status().unwrap_or(StatusCode::IM_A_TEAPOT),
                };
                statuses.push(status);
            }
            statuses
        }
    });

    // Every sign-in of the flood costs a hash: unknown emails are checked against a decoy hash
    // so they take as long as a wrong password.
    let http = reqwest::Client::new();
    let sign_ins = (0..FLOOD).map(|i| {
        let req = http
            .post(format!("{}/v2/sessions", t.url))
            .json(&serde_json::json!({"email": format!("ghost{i}@example.com"), "password": PASSWORD}));
        async move {
            let res = req.send().await.expect("an answer, not a dropped connection");
            let status = res.status();
            let retry_after = res.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
            let body: serde_json::Value = res.json().await.expect("a JSON answer");
            (status, retry_after, body)
        }
    });
    let answers = futures_util::future::join_all(sign_ins).await;
    flooding.store(false, Ordering::Release);
    let reads = reads.await.unwrap();

    let (mut checked, mut shed) = (0, 0);
    for (status, retry_after, body) in &answers {
        match *status {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                shed += 1;
                let secs: u64 = retry_after.as_deref().expect("Retry-After on a 429").parse().unwrap();
                assert!((1..=60).contains(&secs), "Retry-After: {secs}");
                assert_eq!(body["error"]["code"], "too_many_requests", "{body}");
            }
            other => panic!("a sign-in answered {other}: {body}"),
        }
    }
    assert!(checked >= 1, "some sign-ins were checked");
    assert!(shed >= 1, "sign-ins past the queue were refused ({checked} checked)");
    assert!(reads.len() >= 20);
    let failed: Vec<_> = reads.iter().filter(|s| !s.is_success()).collect();
    assert!(
        failed.is_empty(),
        "{} of {} token-authenticated reads failed during the flood: {failed:?}",
        failed.len(),
        reads.len()
    );
    // Once the flood is over, sign-in works again at once.
    let signed = t
        .anonymous()
        .sign_in(&wire::SignInRequest {
            email: "lee@example.com".into(),
            password: PASSWORD.into(),
            organization_id: None,
        })
        .await
        .expect("a sign-in after the flood");
    assert_eq!(signed.session.user_id, user.id);
}

tessera_testkit::both_backends!(a_sign_in_flood_is_shed_with_429_and_token_reads_keep_working);
